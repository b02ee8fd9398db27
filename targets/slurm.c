// SPDX-License-Identifier: MIT
/*
 * The slurm driver: a run is a batch job of a Slurm cluster, driven through
 * slurmrestd (REST + JSON over one kept-alive connection per target, see
 * backend/http.h; the JSON shapes and what differs between API versions
 * live in slurm_api.c, the one version table).
 *
 * Files: the job works in a copy of the run's files (under `workdir`, by
 * default the run's own folder, which the tree shows as outputs/) and
 * writes its stdout and stderr straight into the run's log, so tail -f
 * works and a daemon crash loses nothing.  With nodes > 1 the batch script
 * starts the command once per node with srun, each line of output prefixed
 * with the node's name.
 *
 * Nothing is submitted twice: each job carries the comment
 * "mlfs:<state dir>:<run id>"; the run's ddata says "submit" from just
 * before the POST until its job id is stored, and a run found in that
 * state (after a crash, or after a POST whose outcome is unknown) is looked
 * up by its comment before it is submitted again.
 *
 * Polling: one round every poll_seconds for the started runs, either one
 * GET /jobs?update_time=T (answered 304 when nothing changed in the whole
 * cluster since T) or one GET /job/{id} per active run, whichever the
 * measured costs say is cheaper: /jobs grows with every job slurmctld
 * remembers (MinJobAge), per-job GETs only with our active runs.
 *
 * Outages: while slurmrestd is unreachable (or refuses the token, or cannot
 * reach slurmctld) runs keep their last known state with a note in `error`
 * and `events`; the note goes when it answers again.  Every call is bounded
 * by timeout_seconds; no call is retried before poll_seconds have passed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../backend/driver.h"
#include "../lib/http.h"
#include "../lib/log.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "../lib/copy.h"
#include "slurm_api.h"

#define POLL_DEFAULT	2.0	/* seconds between two polls of a run */
#define TIMEOUT_DEFAULT	10	/* seconds for one HTTP call */
#define NODES_EVERY	30.0	/* seconds between refreshes of `nodes` */
#define FULL_EVERY	60.0	/* GET /jobs without update_time this often */
#define PROBE_EVERY	300.0	/* re-measure GET /jobs this often */
#define CACHE_SECONDS	0.5	/* a GET /jobs answer serves this long */
#define TOKEN_MAX	8192
#define SUBMIT_MARK	"submit"	/* ddata while a POST may be under way */

static const char *const slurm_keys[] = {
	"url", "user", "token", "token_file", "partition", "api_version",
	"workdir", "poll_seconds", "timeout_seconds", NULL
};

static const char *const slurm_live_keys[] = {
	"token", "token_file", "poll_seconds", "timeout_seconds", NULL
};

/* A target's config, parsed anew at every entry (pointers into it). */
struct slurm_cfg {
	const char *url;
	const char *user;		/* NULL: the daemon's user */
	const char *token;
	const char *token_file;
	const char *partition;		/* NULL: the cluster's default */
	const struct slurm_api *api;	/* NULL: discover */
	const char *workdir;		/* NULL: each run's own folder */
	double poll_s;
	long timeout_s;
};

/* Per target, worker thread only. */
struct slurm_target {
	struct slurm_cfg cfg;
	struct http *http;
	char http_for[PATH_MAX];	/* url + timeout the handle was made for */
	const struct slurm_api *api;	/* NULL until discovered */
	uint64_t token_id;		/* hash of the token sent, 0: none */
	double token_at;		/* when token_file was last read */
	char marker[PATH_MAX];		/* "mlfs:<state dir>:" */
	char down[ERR_MSG_MAX];		/* why the last call failed, or "" */
	int last_rc;			/* http_* result of the last call */
	double retry_at;		/* no new call before (monotonic) */
	double nodes_at;		/* last refresh of `nodes` */
	/* polling: measured costs in seconds, EWMA */
	double one_cost;		/* one GET /job/{id} */
	double all_cost;		/* one round of GET /jobs */
	double all_at;			/* when all_cost was last measured */
	time_t since;			/* update_time for the next GET /jobs */
	double full_at;			/* last answer without update_time */
	struct slurm_job *cache;	/* last full GET /jobs, by job id */
	size_t ncache;
	double cache_at;		/* when it was last known current */
};

/* Per run, worker thread only. */
struct slurm_run {
	unsigned long job_id;		/* 0 until known */
	int uncertain;			/* a POST may have made a job we lack */
	int searched;			/* looked for our comment already */
	int noted;			/* r->obj.error holds our outage note */
	double due;			/* next poll (monotonic) */
	double cancel_next;		/* next DELETE allowed (monotonic) */
};

enum { M_GET, M_POST, M_DELETE };

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The next poll round: rounds are aligned, so due runs come together. */
static double next_round(const struct slurm_target *st)
{
	/* (no libm in the link: the clock is positive, truncation floors) */
	return ((long long)(mono() / st->cfg.poll_s) + 1) * st->cfg.poll_s;
}

/* ---- config (pure) ------------------------------------------------------ */

static const char *cfg_str(const struct kv_list *kv, const char *key)
{
	const char *v = kv_get(kv, key);

	return v && *v ? v : NULL;
}

static int cfg_url(const char *url, struct err *e)
{
	if (!url)
		return err_set(e, -EINVAL, "config needs url = the address of"
			       " slurmrestd (http://HOST:PORT or"
			       " unix:/path/to/socket)");
	if ((!strncmp(url, "http://", 7) && url[7]) ||
	    (!strncmp(url, "https://", 8) && url[8]) ||
	    (!strncmp(url, "unix:/", 6) && url[6]))
		return 0;
	return err_set(e, -EINVAL, "url must start with http://, https:// or"
		       " unix:/, not '%.100s'", url);
}

static const struct slurm_api *cfg_api(const char *v)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%s", v[0] == 'v' ? "" : "v", v);
	return slurm_api_find(name);
}

static int cfg_seconds(const char *v, double min, double max, double *out,
		       const char *what, struct err *e)
{
	char *end;
	double d;

	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
		return err_set(e, -EINVAL, "%s must be a number of seconds"
			       " from %g to %g, not '%.40s'", what, min, max, v);
	*out = d;
	return 0;
}

static int cfg_name(const char *v, const char *what, struct err *e)
{
	for (const char *p = v; p && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return err_set(e, -EINVAL, "%s '%.64s' has a character"
				       " Slurm does not allow ('%c')", what, v,
				       *p);
	return 0;
}

static int cfg_more(const struct kv_list *kv, struct slurm_cfg *c,
		    struct err *e)
{
	const char *v = cfg_str(kv, "api_version");
	double d = TIMEOUT_DEFAULT;
	int rc;

	if (c->token && c->token_file)
		return err_set(e, -EINVAL, "set token or token_file, not both");
	if (c->token_file && c->token_file[0] != '/')
		return err_set(e, -EINVAL, "token_file must be an absolute"
			       " path");
	if (c->workdir && c->workdir[0] != '/')
		return err_set(e, -EINVAL, "workdir must be an absolute path"
			       " on a filesystem the compute nodes share");
	if (v && !(c->api = cfg_api(v)))
		return err_set(e, -EINVAL, "api_version '%.32s' is not one"
			       " mlfs speaks (v0.0.37, v0.0.38, v0.0.39)", v);
	rc = cfg_seconds(cfg_str(kv, "poll_seconds"), 0.1, 3600, &c->poll_s,
			 "poll_seconds", e);
	if (!rc)
		rc = cfg_seconds(cfg_str(kv, "timeout_seconds"), 1, 600, &d,
				 "timeout_seconds", e);
	c->timeout_s = (long)d + (d > (long)d);
	if (!rc)
		rc = cfg_name(c->partition, "partition", e);
	if (!rc)
		rc = cfg_name(c->user, "user", e);
	return rc;
}

/* Parse @kv into @c (pointers into @kv).  0 or -EINVAL + sentence. */
static int cfg_parse(const struct kv_list *kv, struct slurm_cfg *c,
		     struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->url = cfg_str(kv, "url");
	c->user = cfg_str(kv, "user");
	c->token = cfg_str(kv, "token");
	c->token_file = cfg_str(kv, "token_file");
	c->partition = cfg_str(kv, "partition");
	c->workdir = cfg_str(kv, "workdir");
	c->poll_s = POLL_DEFAULT;
	c->timeout_s = TIMEOUT_DEFAULT;
	if (cfg_url(c->url, e))
		return -EINVAL;
	return cfg_more(kv, c, e);
}

static int slurm_validate(const struct kv_list *kv, struct err *e)
{
	struct slurm_cfg c;

	return cfg_parse(kv, &c, e);
}

/* ---- check_run (pure) --------------------------------------------------- */

struct node_caps {
	long count, cpus, gpus;
	unsigned long long mem_mib;
};

static void node_caps(const char *text, struct node_caps *caps)
{
	char name[128], state[64];
	unsigned long long mem;
	long cpus, gpus;
	const char *p;

	memset(caps, 0, sizeof(*caps));
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (sscanf(p, "%127s %63s %ld %lluM %ld", name, state, &cpus,
			   &mem, &gpus) != 5)
			continue;
		caps->count++;
		caps->cpus = cpus > caps->cpus ? cpus : caps->cpus;
		caps->gpus = gpus > caps->gpus ? gpus : caps->gpus;
		caps->mem_mib = mem > caps->mem_mib ? mem : caps->mem_mib;
	}
}

static int slurm_check_run(const struct kv_list *cfg, const char *nodes,
			   const struct resources *res, struct err *e)
{
	struct node_caps c;

	(void)cfg;
	node_caps(nodes, &c);
	if (!c.count)
		return 0;	/* not known yet: Slurm will judge */
	if (res->nodes > c.count)
		return err_set(e, -EINVAL, "the run asks for nodes = %ld but"
			       " the target has %ld node%s", res->nodes,
			       c.count, c.count == 1 ? "" : "s");
	if (res->cpus > c.cpus)
		return err_set(e, -EINVAL, "the run asks for cpus = %ld but"
			       " the largest node has %ld", res->cpus, c.cpus);
	if (res->gpus > c.gpus)
		return err_set(e, -EINVAL, "the run asks for gpus = %ld per"
			       " node but the target's nodes have at most %ld",
			       res->gpus, c.gpus);
	if (c.mem_mib && res->memory_mib > c.mem_mib)
		return err_set(e, -EINVAL, "the run asks for memory = %lluM"
			       " but the largest node has %lluM",
			       (unsigned long long)res->memory_mib, c.mem_mib);
	return 0;
}

/* ---- the connection ------------------------------------------------------ */

static void sl_free_http(struct slurm_target *st)
{
	http_free(st->http);
	st->http = NULL;
	st->token_id = 0;
	st->http_for[0] = '\0';
}

static struct slurm_target *sl_get(struct target_ctx *t, struct err *e)
{
	struct slurm_target *st = t->priv;

	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st) {
			err_set(e, -ENOMEM, "out of memory");
			return NULL;
		}
		snprintf(st->marker, sizeof(st->marker), "mlfs:%s:",
			 ws_state_dir(t->ws));
		t->priv = st;
	}
	if (cfg_parse(&t->config, &st->cfg, e))
		return NULL;
	return st;
}

/* Backs off and returns -EAGAIN with the sentence in @e and st->down. */
static int sl_down(struct slurm_target *st, struct err *e, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

static int sl_down(struct slurm_target *st, struct err *e, const char *fmt,
		   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->down, sizeof(st->down), fmt, ap);
	va_end(ap);
	st->retry_at = mono() + st->cfg.poll_s;
	return err_set(e, -EAGAIN, "%s", st->down);
}

static const char *sl_user(const struct slurm_cfg *c)
{
	struct passwd *pw;

	if (c->user)
		return c->user;
	pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "root";
}

/* The connection for the current url and timeout, made when missing. */
static int sl_handle(struct slurm_target *st, struct err *e)
{
	char want[PATH_MAX], msg[ERR_MSG_MAX];
	long ms = st->cfg.timeout_s * 1000;

	snprintf(want, sizeof(want), "%ld %s", st->cfg.timeout_s, st->cfg.url);
	if (st->http && !strcmp(want, st->http_for))
		return 0;
	sl_free_http(st);
	st->http = http_new(st->cfg.url, ms, ms, msg, sizeof(msg));
	if (!st->http)
		return err_set(e, -EINVAL, "%s", msg);
	snprintf(st->http_for, sizeof(st->http_for), "%s", want);
	if (http_set_header(st->http, "X-SLURM-USER-NAME", sl_user(&st->cfg)))
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/*
 * Read token_file into @buf: the token, blanks and "SLURM_JWT=" dropped.
 * It is opened with the rights of the target's owner, never the daemon's:
 * a root daemon would else send any root file to a URL the user chose.
 */
static int token_read(const struct obj *owner, const char *path, char *buf,
		      size_t len, struct err *e)
{
	size_t n;
	char *txt, *p;
	int rc;

	rc = userfile_read(owner->uid, owner->gid, "token_file", path, &txt,
			   &n, e);
	if (rc)
		return rc;
	p = txt + strspn(txt, " \t\r\n");
	if (!strncmp(p, "SLURM_JWT=", 10))
		p += 10;
	snprintf(buf, len, "%s", p);
	explicit_bzero(txt, n);
	free(txt);
	buf[strcspn(buf, " \t\r\n")] = '\0';
	if (!buf[0])
		return err_set(e, -EINVAL, "token_file %s is empty", path);
	return 0;
}

/* Send the configured token; token_file is read again once a second, so a
 * renewed token is picked up without a restart. */
static int sl_token(struct slurm_target *st, const struct obj *owner,
		    struct err *e)
{
	char buf[TOKEN_MAX] = "";
	const char *tok = st->cfg.token;
	uint64_t id;
	int rc = 0;

	if (st->cfg.token_file) {
		if (st->token_id && mono() - st->token_at < 1.0)
			return 0;
		rc = token_read(owner, st->cfg.token_file, buf, sizeof(buf),
				e);
		st->token_at = mono();
		tok = buf;
	}
	id = !rc && tok ? fnv(tok) | 1 : 0;
	if (!rc && id != st->token_id &&
	    http_set_header(st->http, "X-SLURM-USER-TOKEN", tok))
		rc = err_set(e, -EINVAL, "the token holds a line break");
	if (!rc)
		st->token_id = id;
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* Classify a failed call: see sl_call. */
static int sl_failed(struct slurm_target *st, int rc, struct http_result *res,
		     const char *msg, struct err *e)
{
	char why[ERR_MSG_MAX] = "";
	int num = 0;

	if (rc != -EREMOTEIO)
		return sl_down(st, e, "slurmrestd is unreachable: %s", msg);
	if (res->status == 304)
		return 1;
	if (res->body)
		slurm_api_parse_error(res->body, &num, why, sizeof(why));
	if (res->status == 401 || res->status == 403)
		return sl_down(st, e, "%ld from slurmrestd: check token (user"
			       " %s)", res->status, sl_user(&st->cfg));
	st->down[0] = '\0';
	if (num == SLURM_ERR_INVALID_JOB_ID)
		return err_set(e, -ENOENT, "%s", why);
	if (res->status >= 500 && num <= 0)
		return sl_down(st, e, "%ld from slurmrestd: check token (or is"
			       " slurmctld down?): %s", res->status,
			       why[0] ? why : "no reason given");
	return err_set(e, -EIO, "%ld from slurmrestd: %s", res->status,
		       why[0] ? why : "no reason given");
}

/*
 * sl_call - one request to slurmrestd (@path includes the API prefix).
 * Returns 0 for a 2xx answer; 1 for 304 (nothing changed); -ENOENT when
 * Slurm does not know the job (error 2017); -EAGAIN when slurmrestd cannot
 * serve us now (unreachable, token refused, slurmctld down: also kept in
 * st->down, with a back-off of poll_seconds); -EIO for another refusal,
 * with Slurm's sentence.  @res must be freed in every case.
 */
static int sl_call(struct slurm_target *st, int method, const char *path,
		   const char *body, struct http_result *res, struct err *e)
{
	char msg[ERR_MSG_MAX] = "";
	int rc;

	if (method == M_POST)
		rc = http_post_json(st->http, path, body, res, msg, sizeof(msg));
	else if (method == M_DELETE)
		rc = http_delete(st->http, path, res, msg, sizeof(msg));
	else
		rc = http_get(st->http, path, res, msg, sizeof(msg));
	st->last_rc = rc;
	if (!rc) {
		st->down[0] = '\0';
		return 0;
	}
	return sl_failed(st, rc, res, msg, e);
}

/* Learn the API version from GET /openapi (unless api_version says). */
static int sl_api(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	char msg[ERR_MSG_MAX];
	int rc;

	if (st->cfg.api)
		st->api = st->cfg.api;
	if (st->api)
		return 0;
	rc = sl_call(st, M_GET, "/openapi", NULL, &res, e);
	if (!rc) {
		st->api = slurm_api_discover(res.body, msg, sizeof(msg));
		if (!st->api)
			rc = err_set(e, -EIO, "%s", msg);
	} else if (rc > 0) {
		rc = err_set(e, -EIO, "GET /openapi answered 304");
	}
	http_result_free(&res);
	return rc;
}

/*
 * sl_ready - the target's state with a working connection, token and API
 * version in *@stp.  0; -EAGAIN while backing off after a failure (the
 * sentence in @e); or what sl_call returns.
 */
static int sl_ready(struct target_ctx *t, struct slurm_target **stp,
		    struct err *e)
{
	struct slurm_target *st = sl_get(t, e);
	int rc;

	*stp = st;
	if (!st)
		return -EINVAL;
	if (mono() < st->retry_at)
		return err_set(e, -EAGAIN, "%s", st->down);
	rc = sl_handle(st, e);
	if (!rc)
		rc = sl_token(st, &t->obj, e);
	if (!rc)
		rc = sl_api(st, e);
	if (rc && rc != -EAGAIN)	/* e.g. no API version: back off too */
		rc = sl_down(st, e, "%s", e->msg);
	return rc;
}

/* The API prefix + @suffix into @buf. */
static void api_path(const struct slurm_target *st, char *buf, size_t len,
		     const char *suffix)
{
	snprintf(buf, len, "%s%s", st->api->prefix, suffix);
}

/* ---- provision, nodes ------------------------------------------------------ */

/* Any "DOWN" among the pings of a GET ping answer? */
static int ping_down(const char *json, char *host, size_t len)
{
	cJSON *root = cJSON_Parse(json ? json : ""), *p, *v;
	int down = 0;

	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "pings")) {
		v = cJSON_GetObjectItemCaseSensitive(p, "ping");
		if (!v)
			v = cJSON_GetObjectItemCaseSensitive(p, "pinged");
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "DOWN")) {
			v = cJSON_GetObjectItemCaseSensitive(p, "hostname");
			snprintf(host, len, "%s", cJSON_IsString(v) ?
				 v->valuestring : "its host");
			down = 1;
		}
	}
	cJSON_Delete(root);
	return down;
}

static int sl_ping(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], host[128];
	int rc;

	api_path(st, path, sizeof(path), "/ping");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && ping_down(res.body, host, sizeof(host)))
		rc = err_set(e, -EIO, "slurmrestd answers but slurmctld on %s"
			     " is DOWN", host);
	http_result_free(&res);
	return rc < 0 ? rc : 0;
}

static int sl_partition(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], nodes[256], msg[ERR_MSG_MAX];
	int rc;

	if (!st->cfg.partition)
		return 0;
	api_path(st, path, sizeof(path), "/partitions");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && slurm_api_partition(res.body, st->cfg.partition, nodes,
				       sizeof(nodes), msg, sizeof(msg)))
		rc = err_set(e, -ENOENT, "%s", msg);
	http_result_free(&res);
	return rc < 0 ? rc : 0;
}

/* The `nodes` text: one line a node of the partition. */
static char *nodes_text(const struct slurm_target *st,
			const struct slurm_node *nd, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!st->cfg.partition ||
		    slurm_api_node_in(&nd[i], st->cfg.partition))
			fprintf(f, "%s %s %u %lluM %u\n", nd[i].name,
				nd[i].state[0] ? nd[i].state : "unknown",
				nd[i].cpus, nd[i].memory_mib, nd[i].gpus);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

static int sl_nodes(struct slurm_target *st, char **text, struct err *e)
{
	struct http_result res = { 0 };
	struct slurm_node *nd = NULL;
	char path[128], msg[ERR_MSG_MAX];
	size_t n = 0;
	int rc;

	api_path(st, path, sizeof(path), "/nodes");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && slurm_api_parse_nodes(res.body, &nd, &n, msg, sizeof(msg)))
		rc = err_set(e, -EIO, "%s", msg);
	http_result_free(&res);
	if (rc)
		return rc < 0 ? rc : -EIO;
	*text = nodes_text(st, nd, n);
	free(nd);
	st->nodes_at = mono();
	return *text ? 0 : err_set(e, -ENOMEM, "out of memory");
}

static int slurm_provision(struct target_ctx *t, char **nodes, struct err *e)
{
	struct slurm_target *st = sl_get(t, e);
	int rc;

	if (!st)
		return -EINVAL;
	sl_free_http(st);	/* check everything afresh */
	st->api = NULL;
	st->retry_at = 0;
	rc = sl_ready(t, &st, e);
	if (!rc)
		rc = sl_ping(st, e);
	if (!rc)
		rc = sl_partition(st, e);
	if (!rc)
		rc = sl_nodes(st, nodes, e);
	return rc;
}

static int slurm_refresh(struct target_ctx *t, char **nodes, struct err *e)
{
	struct slurm_target *st;
	int rc;

	rc = sl_ready(t, &st, e);
	return rc ? rc : sl_nodes(st, nodes, e);
}

static int slurm_deprovision(struct target_ctx *t, struct err *e)
{
	struct slurm_target *st = t->priv;

	(void)e;
	if (st) {
		sl_free_http(st);
		st->api = NULL;
	}
	return 0;
}

/* ---- runs: notes -------------------------------------------------------- */

static struct slurm_run *sr_get(struct run_ctx *r)
{
	if (!r->priv)
		r->priv = calloc(1, sizeof(struct slurm_run));
	return r->priv;
}

/* Note an outage on @r (one events line when the text changes). */
static void run_note(struct run_ctx *r, const char *why)
{
	struct slurm_run *sr = r->priv;

	if (sr)
		sr->noted = 1;
	ws_run_note(r->ws, r, why);
}

/* slurmrestd answered: drop our outage note from r->obj (not saved). */
static int run_unnote(struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;

	if (!sr || !sr->noted)
		return 0;
	sr->noted = 0;
	r->obj.error[0] = '\0';
	return 1;
}

/* ---- runs: the job ---------------------------------------------------------- */

/* Where the job works: <run>/work, or <workdir>/mlfs-<hash>/<id>-<name>. */
static void work_path(const struct target_ctx *t, const struct run_ctx *r,
		      char *buf)
{
	const struct slurm_target *st = t->priv;

	if (!st->cfg.workdir)
		snprintf(buf, PATH_MAX, "%s/%s", r->dir, RUN_WORK);
	else
		snprintf(buf, PATH_MAX, "%s/mlfs-%08x/%lld-%s",
			 st->cfg.workdir,
			 (unsigned)fnv(ws_state_dir(t->ws)),
			 (long long)r->obj.id, r->obj.name);
}

/* The working copy; with a workdir also an empty <run>/work/outputs. */
static int make_copy(const struct target_ctx *t, const struct run_ctx *r,
		     const char *work, struct err *e)
{
	char files[PATH_MAX], path[PATH_MAX], *slash;

	snprintf(files, sizeof(files), "%s/%s", r->dir, RUN_FILES);
	if (!((struct slurm_target *)t->priv)->cfg.workdir)
		return copy_tree_fresh(files, work, e);
	snprintf(path, sizeof(path), "%s", work);
	slash = strrchr(path, '/');
	*slash = '\0';
	if (mkdir(path, 0755) && errno != EEXIST)
		return err_set(e, -errno, "cannot make %s: %s", path,
			       strerror(errno));
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/outputs", r->dir, RUN_WORK);
	mkdir(path, 0755);
	return copy_tree_fresh(files, work, e);
}

/* @s in single quotes for sh, malloc'd. */
static char *sq(const char *s)
{
	size_t n = 3;
	char *q, *p;

	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	q = p = malloc(n);
	if (!q)
		return NULL;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* The job's environment is exactly the one submitted (run_env, and PATH)
 * plus Slurm's own SLURM_*: HOME, USER, LOGNAME and SHELL of the job's
 * user come from its passwd entry on the node, unless env set them. */
#define LOGIN_ENV \
	"u=$(id -un); p=$(getent passwd \"$u\")\n" \
	"export USER=\"${USER:-$u}\" LOGNAME=\"${LOGNAME:-$u}\"" \
	" HOME=\"${HOME:-$(echo \"$p\" | cut -d: -f6)}\"" \
	" SHELL=\"${SHELL:-$(echo \"$p\" | cut -d: -f7)}\"\n" \
	"unset u p\n"

/* One task per node; each line of output prefixed with the node's name;
 * rank 0 runs on the batch host, whose address srun passes to every task. */
#define MULTI_SCRIPT \
	"#!/bin/bash\n" \
	"# mlfs run %s: the command once per node (srun)\n" \
	"cd %s || exit 1\n" \
	LOGIN_ENV \
	"export MLFS_NUM_NODES=$SLURM_JOB_NUM_NODES\n" \
	"export MASTER_PORT=$((20000 + SLURM_JOB_ID %% 20000))\n" \
	"exec srun --nodes=$SLURM_JOB_NUM_NODES --ntasks=$SLURM_JOB_NUM_NODES" \
	" --ntasks-per-node=1 --kill-on-bad-exit=1 /bin/bash -c '\n" \
	"export MLFS_NODE_RANK=$SLURM_NODEID" \
	" MASTER_ADDR=$SLURM_LAUNCH_NODE_IPADDR\n" \
	"/bin/sh -c \"$1\" 2>&1 | sed -u \"s/^/$SLURMD_NODENAME: /\"\n" \
	"exit ${PIPESTATUS[0]}' mlfs-node %s\n"

#define SINGLE_SCRIPT \
	"#!/bin/bash\n" \
	"# mlfs run %s\n" \
	"cd %s || exit 1\n" \
	LOGIN_ENV \
	"exec /bin/sh -c %s\n"

static char *run_script(const struct run_ctx *r, const char *work)
{
	char *qw = sq(work), *qc = sq(r->command), *s = NULL;

	if (qw && qc && asprintf(&s, r->res.nodes > 1 ? MULTI_SCRIPT :
				 SINGLE_SCRIPT, r->obj.name, qw, qc) < 0)
		s = NULL;
	free(qw);
	free(qc);
	return s;
}

struct strv {
	char **v;
	size_t n;
};

static int strv_addf(struct strv *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int strv_addf(struct strv *sv, const char *fmt, ...)
{
	char **nv = realloc(sv->v, (sv->n + 1) * sizeof(*nv));
	va_list ap;
	int rc;

	if (!nv)
		return -ENOMEM;
	sv->v = nv;
	va_start(ap, fmt);
	rc = vasprintf(&sv->v[sv->n], fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	sv->n++;
	return 0;
}

static void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

/* The job's environment: the run's env lines, then MLFS_*, LANG unless
 * env sets it (PATH: slurm_api; HOME, USER …: LOGIN_ENV).  Nothing of the
 * daemon's own. */
static int run_env(const struct run_ctx *r, const char *work, struct strv *sv)
{
	int rc = 0;

	if (!kv_get(&r->env, "LANG"))
		rc = strv_addf(sv, "LANG=C.UTF-8");
	for (int i = 0; i < r->env.n && !rc; i++)
		rc = strv_addf(sv, "%s=%s", r->env.items[i].key,
			       r->env.items[i].value);
	if (!rc)
		rc = strv_addf(sv, "MLFS_RUN=%s", r->obj.name);
	if (!rc)
		rc = strv_addf(sv, "MLFS_OUTPUTS=%s/outputs", work);
	if (!rc)
		rc = strv_addf(sv, "MLFS_METRICS=%s/%s", r->dir,
			       RUN_METRICS_RAW);
	if (!rc && r->res.nodes <= 1)
		rc = strv_addf(sv, "MLFS_NODE_RANK=0");
	if (!rc && r->res.nodes <= 1)
		rc = strv_addf(sv, "MLFS_NUM_NODES=1");
	return rc;
}

/* @path with '%' doubled: Slurm expands %j and friends in file names. */
static void no_patterns(const char *path, char *buf, size_t len)
{
	size_t o = 0;

	for (; *path && o + 2 < len; path++) {
		if (*path == '%')
			buf[o++] = '%';
		buf[o++] = *path;
	}
	buf[o] = '\0';
}

/* Add job.comment to a submit body (slurm_api has no field for it). */
static char *with_comment(char *body, const char *comment)
{
	cJSON *root = cJSON_Parse(body);
	cJSON *job = cJSON_GetObjectItemCaseSensitive(root, "job");
	char *out = NULL;

	if (cJSON_IsObject(job) &&
	    cJSON_AddStringToObject(job, "comment", comment))
		out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	free(body);
	return out;
}

static void job_spec(const struct run_ctx *r, const struct slurm_cfg *c,
		     struct slurm_job_spec *s)
{
	s->name = r->obj.name;
	s->partition = c->partition;
	s->nodes = (unsigned)r->res.nodes;
	s->cpus_per_task = (unsigned)r->res.cpus;
	s->gpus_per_node = (unsigned)r->res.gpus;
	s->memory_mib = r->res.memory_mib;
	s->time_limit_min = (unsigned)((r->res.time_secs + 59) / 60);
}

/* The JSON body of POST job/submit for @r, malloc'd, or NULL + @e. */
static char *job_body(const struct target_ctx *t, const struct run_ctx *r,
		      const char *work, struct err *e)
{
	const struct slurm_target *st = t->priv;
	struct slurm_job_spec spec = { 0 };
	char log_path[PATH_MAX], out_path[PATH_MAX * 2];
	char comment[PATH_MAX + 32], msg[ERR_MSG_MAX];
	struct strv env = { 0 };
	char *script, *body = NULL;

	script = run_script(r, work);
	if (!script || run_env(r, work, &env))
		goto out_nomem;
	snprintf(log_path, sizeof(log_path), "%s/%s", r->dir, RUN_LOG);
	no_patterns(log_path, out_path, sizeof(out_path));
	job_spec(r, &st->cfg, &spec);
	spec.cwd = work;
	spec.stdout_path = out_path;
	spec.env = (const char *const *)env.v;
	spec.env_count = env.n;
	spec.script = script;
	body = slurm_api_submit_body(st->api, &spec, msg, sizeof(msg));
	if (!body) {
		err_set(e, -EINVAL, "%s", msg);
		goto out_free;
	}
	snprintf(comment, sizeof(comment), "%s%lld", st->marker,
		 (long long)r->obj.id);
	body = with_comment(body, comment);
	if (body)
		goto out_free;
out_nomem:
	err_set(e, -ENOMEM, "out of memory");
out_free:
	strv_free(&env);
	free(script);
	return body;
}

/* ---- runs: submit -------------------------------------------------------- */

/* Record job @id as @r's: the job id is stored before anything else. */
static int run_submitted(struct run_ctx *r, unsigned long id,
			 const char *complaint)
{
	struct slurm_run *sr = r->priv;
	int rc;

	sr->job_id = id;
	sr->uncertain = 0;
	sr->due = next_round(r->t->priv);
	snprintf(r->obj.backend_id, sizeof(r->obj.backend_id), "slurm %lu",
		 id);
	r->obj.ddata[0] = '\0';
	run_unnote(r);
	rc = ws_run_save(r->ws, r);
	if (rc)
		log_warn("run %s: job %lu submitted but not recorded (%s);"
			 " a restart finds it by its comment", r->obj.name,
			 id, strerror(-rc));
	r->started = 1;
	if (complaint && complaint[0])
		log_warn("run %s: Slurm queued job %lu and said: %s",
			 r->obj.name, id, complaint);
	return 0;
}

/* The id of the job whose comment is @comment in a GET jobs answer. */
static unsigned long find_comment(const char *json, const char *comment)
{
	cJSON *root = cJSON_Parse(json ? json : ""), *j, *c, *id;
	unsigned long found = 0;

	cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(root, "jobs")) {
		c = cJSON_GetObjectItemCaseSensitive(j, "comment");
		id = cJSON_GetObjectItemCaseSensitive(j, "job_id");
		if (cJSON_IsString(c) && !strcmp(c->valuestring, comment) &&
		    cJSON_IsNumber(id) && id->valuedouble >= 1) {
			found = (unsigned long)id->valuedouble;
			break;
		}
	}
	cJSON_Delete(root);
	return found;
}

/*
 * run_search - look for a job of @r that a POST may have made.
 * 0 found (and recorded); -ENOENT none; -EAGAIN / -EIO with a sentence.
 */
static int run_search(struct slurm_target *st, struct run_ctx *r,
		      struct err *e)
{
	struct http_result res = { 0 };
	char path[128], comment[PATH_MAX + 32];
	unsigned long id = 0;
	int rc;

	api_path(st, path, sizeof(path), "/jobs");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	snprintf(comment, sizeof(comment), "%s%lld", st->marker,
		 (long long)r->obj.id);
	if (!rc)
		id = find_comment(res.body, comment);
	http_result_free(&res);
	if (rc)
		return rc < 0 ? rc : -EIO;
	((struct slurm_run *)r->priv)->searched = 1;
	if (!id)
		return -ENOENT;
	log_info("run %s: found its job %lu by its comment", r->obj.name, id);
	return run_submitted(r, id, NULL);
}

/* After a POST without a job id: back off, or fail the run. */
static int submit_failed(struct slurm_target *st, struct run_ctx *r, int rc,
			 const char *slurm_msg, struct err *e)
{
	struct slurm_run *sr = r->priv;

	if (rc == -EAGAIN) {
		/* no answer, and not refused at connect: it may have arrived */
		if (st->last_rc != -EREMOTEIO && st->last_rc != -ECONNREFUSED &&
		    st->last_rc != -EHOSTUNREACH) {
			sr->uncertain = 1;
			sr->searched = 0;
			r->started = 1;	/* poll and cancel resolve it */
		}
		run_note(r, e->msg);
		return 0;
	}
	return err_set(e, -EIO, "Slurm refused the job: %s",
		       slurm_msg[0] ? slurm_msg : e->msg);
}

static int post_job(struct slurm_target *st, struct run_ctx *r,
		    const char *body, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], msg[ERR_MSG_MAX] = "";
	unsigned long id = 0;
	int rc;

	api_path(st, path, sizeof(path), "/job/submit");
	rc = sl_call(st, M_POST, path, body, &res, e);
	if (res.body)
		slurm_api_parse_submit(res.body, &id, msg, sizeof(msg));
	http_result_free(&res);
	if (id)
		return run_submitted(r, id, msg);
	if (rc == 0 || rc == 1)
		rc = err_set(e, -EIO, "%s", msg[0] ? msg :
			     "slurmrestd sent no job id");
	return submit_failed(st, r, rc, msg, e);
}

/* Mark @r as being submitted (ddata), so that a crash leaves a trace. */
static int mark_submit(struct run_ctx *r, struct err *e)
{
	int rc;

	snprintf(r->obj.ddata, sizeof(r->obj.ddata), "%s", SUBMIT_MARK);
	rc = ws_run_save(r->ws, r);
	return rc ? err_set(e, rc, "cannot record the submit: %s",
			    strerror(-rc)) : 0;
}

static int run_submit(struct target_ctx *t, struct slurm_target *st,
		      struct run_ctx *r, struct err *e)
{
	char work[PATH_MAX], *body;
	int rc;

	work_path(t, r, work);
	rc = make_copy(t, r, work, e);
	if (rc)
		return rc;
	body = job_body(t, r, work, e);
	if (!body)
		return -EINVAL;
	rc = mark_submit(r, e);
	if (!rc)
		rc = post_job(st, r, body, e);
	free(body);
	return rc;
}

static int slurm_can_start(struct target_ctx *t, struct run_ctx *r)
{
	(void)t;
	(void)r;
	return 1;	/* Slurm queues */
}

static int slurm_start(struct target_ctx *t, struct run_ctx *r,
		       struct err *e)
{
	struct slurm_target *st;
	struct slurm_run *sr = sr_get(r);
	int rc;

	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	rc = sl_ready(t, &st, e);
	if (rc == -EAGAIN) {
		run_note(r, e->msg);	/* stays Queued: tried again later */
		return 0;
	}
	if (rc)
		return rc;
	if (!sr->searched && !strcmp(r->obj.ddata, SUBMIT_MARK)) {
		/* a POST before a crash may have made its job */
		rc = run_search(st, r, e);
		if (rc == -EAGAIN)
			run_note(r, e->msg);
		if (rc != -ENOENT)
			return rc == -EAGAIN ? 0 : rc;
	}
	return run_submit(t, st, r, e);
}

/* ---- runs: states ------------------------------------------------------- */

static int boring_reason(const char *reason)
{
	return !reason[0] || !strcmp(reason, "None") ||
	       !strcmp(reason, "NonZeroExitCode");
}

static void failed_why(const struct slurm_job *j, const char *slurm_why,
		       char *buf, size_t len)
{
	int code = j->exit_code;

	if (strcmp(j->state, "FAILED") || code < 0 || !boring_reason(j->reason))
		snprintf(buf, len, "%s (Slurm job %lu)", slurm_why, j->job_id);
	else if (code > 128)
		snprintf(buf, len, "the command was killed by signal %d (%s)",
			 code - 128, strsignal(code - 128));
	else
		snprintf(buf, len, "the command exited with code %d", code);
}

/* With a workdir: move (or copy) outputs back, drop the working copy. */
static void outputs_back(const struct target_ctx *t, const struct run_ctx *r)
{
	char work[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
	struct err e = { { 0 } };

	if (!((struct slurm_target *)t->priv)->cfg.workdir)
		return;
	work_path(t, r, work);
	snprintf(src, sizeof(src), "%s/outputs", work);
	snprintf(dst, sizeof(dst), "%s/%s/outputs", r->dir, RUN_WORK);
	remove_tree(dst);
	if (rename(src, dst) && copy_tree_fresh(src, dst, &e))
		log_warn("run %s: outputs not copied back: %s", r->obj.name,
			 e.msg);
	remove_tree(work);
}

/* The working copy, outputs and all, is the run's user's once the job is
 * over (a root daemon), whoever the job ran as, and no file in it keeps a
 * set-id bit: the job's user may be another, root even. */
static void hand_over(const struct run_ctx *r)
{
	int mine = geteuid() != 0 || r->obj.uid == 0;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	if (chown_tree(path, mine ? (uid_t)-1 : r->obj.uid, r->obj.gid) &&
	    errno != ENOENT)
		log_warn("run %s: cannot give its outputs to uid %u",
			 r->obj.name, r->obj.uid);
}

static void run_finish(struct target_ctx *t, struct run_ctx *r,
		       const struct slurm_job *j, const char *state,
		       const char *slurm_why)
{
	char why[ERR_MSG_MAX];

	outputs_back(t, r);
	hand_over(r);
	if (!strcmp(state, RS_COMPLETED)) {
		ws_run_transition(r->ws, r, state, 0, "");
	} else if (!strcmp(state, RS_CANCELED)) {
		ws_run_transition(r->ws, r, state, j->exit_code, r->obj.cancel ?
				  "" : "the job was cancelled in Slurm");
	} else {
		failed_why(j, slurm_why, why, sizeof(why));
		ws_run_transition(r->ws, r, state, j->exit_code, why);
	}
}

/* Bring @r to the state of its job @j. */
static void run_apply(struct target_ctx *t, struct run_ctx *r,
		      const struct slurm_job *j)
{
	char why[ERR_MSG_MAX];
	const char *state = slurm_api_run_state(j, why, sizeof(why));
	int changed = run_unnote(r);

	if (j->nodes[0] && strcmp(r->obj.node, j->nodes)) {
		snprintf(r->obj.node, sizeof(r->obj.node), "%s", j->nodes);
		changed = 1;
	}
	if (!state || !strcmp(state, r->obj.state)) {
		if (changed)
			ws_run_save(r->ws, r);
		return;
	}
	if (run_state_final(state))
		run_finish(t, r, j, state, why);
	else
		ws_run_transition(r->ws, r, state, -1, NULL);
}

/* Slurm no longer knows the job: its outcome is lost. */
static void run_vanished(struct run_ctx *r, unsigned long id)
{
	char why[ERR_MSG_MAX];

	run_unnote(r);
	snprintf(why, sizeof(why), "Slurm no longer knows job %lu (it ended"
		 " longer ago than MinJobAge, or was purged): its outcome is"
		 " unknown", id);
	ws_run_transition(r->ws, r, RS_FAILED, -1, why);
}

static void ewma(double *avg, double x)
{
	*avg = *avg > 0 ? 0.7 * *avg + 0.3 * x : x;
}

static int fetch_one(struct slurm_target *st, unsigned long id,
		     struct slurm_job *job, struct err *e)
{
	struct http_result res = { 0 };
	struct slurm_job *jobs = NULL;
	char path[128], msg[ERR_MSG_MAX];
	double t0 = mono();
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/job/%lu", st->api->prefix, id);
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && (rc = slurm_api_parse_jobs(res.body, &jobs, &n, msg,
					      sizeof(msg))))
		rc = err_set(e, rc, "%s", msg);
	http_result_free(&res);
	ewma(&st->one_cost, mono() - t0);
	if (!rc && (!n || jobs[0].job_id != id))
		rc = err_set(e, -ENOENT, "job %lu is not in the answer", id);
	if (!rc)
		*job = jobs[0];
	free(jobs);
	return rc == 1 ? -EIO : rc;
}

/* Poll one run by its own GET; -EAGAIN stops the round. */
static int poll_one(struct target_ctx *t, struct run_ctx *r)
{
	struct slurm_target *st = t->priv;
	struct slurm_run *sr = r->priv;
	struct err e = { { 0 } };
	struct slurm_job job;
	int rc;

	rc = fetch_one(st, sr->job_id, &job, &e);
	if (!rc)
		run_apply(t, r, &job);
	else if (rc == -ENOENT)
		run_vanished(r, sr->job_id);
	else if (rc != -EAGAIN)
		log_warn("run %s: polling job %lu: %s", r->obj.name,
			 sr->job_id, e.msg);
	return rc == -EAGAIN ? rc : 0;
}

static int job_cmp(const void *a, const void *b)
{
	unsigned long x = ((const struct slurm_job *)a)->job_id;
	unsigned long y = ((const struct slurm_job *)b)->job_id;

	return x < y ? -1 : x > y;
}

/* Refresh st->cache with GET /jobs?update_time (304: still current). */
static int fetch_all(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	struct slurm_job *jobs = NULL;
	char path[160], msg[ERR_MSG_MAX];
	double now = mono();
	time_t asked = time(NULL);
	size_t n = 0;
	int rc, full = !st->since || now - st->full_at > FULL_EVERY;

	if (now - st->cache_at < CACHE_SECONDS)
		return 0;
	if (full)
		api_path(st, path, sizeof(path), "/jobs");
	else
		snprintf(path, sizeof(path), "%s/jobs?update_time=%lu",
			 st->api->prefix, (unsigned long)st->since);
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && (rc = slurm_api_parse_jobs(res.body, &jobs, &n, msg,
					      sizeof(msg))))
		rc = err_set(e, rc, "%s", msg);
	http_result_free(&res);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		qsort(jobs, n, sizeof(*jobs), job_cmp);
		free(st->cache);
		st->cache = jobs;
		st->ncache = n;
		st->full_at = full ? now : st->full_at;
	}
	st->since = asked - 1;	/* a second of slack for clock skew */
	st->cache_at = mono();
	ewma(&st->all_cost, st->cache_at - now);
	st->all_at = st->cache_at;
	return 0;
}

/* Poll @runs with one GET /jobs; runs missing from it by their own GET. */
static int poll_all(struct target_ctx *t, struct run_ctx **runs, int n,
		    struct err *e)
{
	struct slurm_target *st = t->priv;
	struct slurm_job key, *j;
	int rc;

	rc = fetch_all(st, e);
	for (int i = 0; !rc && i < n; i++) {
		key.job_id = ((struct slurm_run *)runs[i]->priv)->job_id;
		j = bsearch(&key, st->cache, st->ncache, sizeof(key), job_cmp);
		if (j)
			run_apply(t, runs[i], j);
		else
			rc = poll_one(t, runs[i]);
	}
	return rc;
}

/* GET /jobs for this round?  Whichever costs less, measured. */
static int use_all(const struct slurm_target *st, int n)
{
	if (n < 2)
		return 0;
	if (!st->all_cost || mono() - st->all_at > PROBE_EVERY)
		return 1;
	return n * st->one_cost >= st->all_cost;
}

static int poll_states(struct target_ctx *t, struct run_ctx **runs, int n,
		       struct err *e)
{
	struct slurm_target *st = t->priv;
	int rc = 0;

	log_debug("target %s: polling %d job%s by %s (measured: GET /jobs"
		  " %.1f ms a round, GET /job/{id} %.1f ms each)", t->obj.name,
		  n, n == 1 ? "" : "s", use_all(st, n) ? "GET /jobs" :
		  "GET /job/{id} each", st->all_cost * 1e3, st->one_cost * 1e3);
	if (use_all(st, n))
		return poll_all(t, runs, n, e);
	for (int i = 0; !rc && i < n; i++)
		rc = poll_one(t, runs[i]);
	if (rc)
		err_set(e, rc, "%s", st->down);
	return rc;
}

/* A run whose POST may have made a job: find it, or submit again. */
static void poll_uncertain(struct slurm_target *st, struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;
	struct err e = { { 0 } };
	int rc;

	rc = run_search(st, r, &e);
	if (rc == -ENOENT) {
		sr->uncertain = 0;
		r->started = 0;		/* the worker starts it again */
	} else if (rc == -EAGAIN) {
		run_note(r, e.msg);
	}
}

/* The runs due now with known jobs, into @due; uncertain ones resolved. */
static int due_runs(struct slurm_target *st, struct run_ctx **runs, int n,
		    struct run_ctx **due, int ready)
{
	double now = mono();
	int m = 0;

	for (int i = 0; i < n; i++) {
		struct slurm_run *sr = sr_get(runs[i]);

		if (!sr || sr->due > now)
			continue;
		sr->due = next_round(st);
		if (sr->job_id)
			due[m++] = runs[i];
		else if (sr->uncertain && ready)
			poll_uncertain(st, runs[i]);
	}
	return m;
}

static void refresh_nodes(struct target_ctx *t, struct slurm_target *st)
{
	struct err e = { { 0 } };
	char *nodes = NULL;

	if (mono() - st->nodes_at < NODES_EVERY || mono() < st->retry_at)
		return;
	if (!sl_nodes(st, &nodes, &e))
		ws_target_set_nodes(t->ws, t, nodes);
	free(nodes);
}

static void slurm_poll(struct target_ctx *t, struct run_ctx **runs, int n)
{
	struct slurm_target *st;
	struct err e = { { 0 } };
	struct run_ctx **due;
	int m, rc;

	rc = sl_ready(t, &st, &e);
	if (!st)
		return;
	due = calloc(n, sizeof(*due));
	if (!due)
		return;
	m = due_runs(st, runs, n, due, !rc);
	if (m && !rc)
		rc = poll_states(t, due, m, &e);
	for (int i = 0; rc < 0 && i < m; i++)
		if (!run_state_final(due[i]->obj.state))
			run_note(due[i], e.msg);
	free(due);
	if (!rc)
		refresh_nodes(t, st);
}

/* ---- cancel, adopt ---------------------------------------------------------- */

static int cancel_job(struct slurm_target *st, struct run_ctx *r,
		      struct err *e)
{
	struct slurm_run *sr = r->priv;
	struct http_result res = { 0 };
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "%s/job/%lu", st->api->prefix,
		 sr->job_id);
	rc = sl_call(st, M_DELETE, path, NULL, &res, e);
	http_result_free(&res);
	if (rc && rc != -EAGAIN)	/* gone or ending anyway: the poll says */
		log_info("run %s: cancel of job %lu: %s", r->obj.name,
			 sr->job_id, e->msg);
	sr->due = 0;			/* poll at the next tick */
	return rc == -EAGAIN ? rc : 0;
}

static int slurm_cancel(struct target_ctx *t, struct run_ctx *r,
			struct err *e)
{
	struct slurm_run *sr = r->priv;
	struct slurm_target *st;
	int rc;

	if (!sr || mono() < sr->cancel_next)
		return 0;
	rc = sl_ready(t, &st, e);
	if (st)
		sr->cancel_next = mono() + st->cfg.poll_s;
	if (!rc && !sr->job_id) {
		rc = run_search(st, r, e);
		if (rc == -ENOENT) {	/* never reached Slurm */
			sr->uncertain = 0;
			r->started = 0;
			return 0;
		}
	}
	if (!rc)
		rc = cancel_job(st, r, e);
	if (rc == -EAGAIN)
		run_note(r, e->msg);
	return rc == -EAGAIN ? 0 : rc;
}

static int slurm_adopt(struct target_ctx *t, struct run_ctx *r,
		       struct err *e)
{
	struct slurm_run *sr;
	unsigned long id;

	(void)t;
	if (sscanf(r->obj.backend_id, "slurm %lu", &id) != 1 || !id)
		return -ENOENT;	/* start() looks for it by its comment */
	sr = sr_get(r);
	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	sr->job_id = id;
	return 0;
}

static void slurm_release_run(struct target_ctx *t, struct run_ctx *r)
{
	(void)t;
	free(r->priv);
	r->priv = NULL;
}

static void slurm_release(struct target_ctx *t)
{
	struct slurm_target *st = t->priv;

	if (!st)
		return;
	http_free(st->http);
	free(st->cache);
	free(st);
	t->priv = NULL;
}

const struct driver slurm_driver = {
	.type		= "slurm",
	.config_keys	= slurm_keys,
	.live_keys	= slurm_live_keys,
	.can_host	= 0,
	.refresh_seconds = (int)NODES_EVERY,
	.validate	= slurm_validate,
	.check_run	= slurm_check_run,
	.provision	= slurm_provision,
	.deprovision	= slurm_deprovision,
	.refresh	= slurm_refresh,
	.can_start	= slurm_can_start,
	.start		= slurm_start,
	.poll		= slurm_poll,
	.cancel		= slurm_cancel,
	.adopt		= slurm_adopt,
	.release_run	= slurm_release_run,
	.release	= slurm_release,
};
