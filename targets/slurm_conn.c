// SPDX-License-Identifier: MIT
/*
 * The slurm driver's connection to slurmrestd: one kept-alive HTTP handle
 * per target (lib/http.h), made again when url or timeout_seconds
 * change; the token (token_file read again once a second, with the
 * owner's rights); the API version (config or GET /openapi); one call
 * with the classification of its failures and the back-off that follows
 * an outage; and the cluster's answers about itself: ping, partition,
 * nodes.  Backend worker thread only.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../lib/log.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "slurm_i.h"

#define TOKEN_MAX	8192

/* ---- the connection ------------------------------------------------------ */

void sl_free_http(struct slurm_target *st)
{
	http_free(st->http);
	st->http = NULL;
	st->token_id = 0;
	st->http_for[0] = '\0';
}

struct slurm_target *sl_new(struct target_ctx *t, struct err *e)
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
	return st;
}

struct slurm_target *sl_get(struct target_ctx *t, struct err *e)
{
	struct slurm_target *st = sl_new(t, e);

	if (!st)
		return NULL;
	if (slurm_cfg_parse(st->over ? st->over : &t->config, &st->cfg, e))
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
	st->retry_at = mono_s() + st->cfg.poll_s;
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
		if (st->token_id && mono_s() - st->token_at < 1.0)
			return 0;
		rc = token_read(owner, st->cfg.token_file, buf, sizeof(buf),
				e);
		st->token_at = mono_s();
		tok = buf;
	}
	id = !rc && tok ? fnv1a64_add(FNV64_BASIS_SHORT, tok, strlen(tok)) | 1
			 : 0;
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
int sl_call(struct slurm_target *st, int method, const char *path,
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
int sl_ready(struct target_ctx *t, struct slurm_target **stp,
	     struct err *e)
{
	struct slurm_target *st = sl_get(t, e);
	int rc;

	*stp = st;
	if (!st)
		return -EINVAL;
	if (mono_s() < st->retry_at)
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

void sl_api_path(const struct slurm_target *st, char *buf, size_t len,
		 const char *suffix)
{
	snprintf(buf, len, "%s%s", st->api->prefix, suffix);
}

/* ---- the cluster: ping, partition, nodes ---------------------------------- */

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

int sl_ping(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], host[128];
	int rc;

	sl_api_path(st, path, sizeof(path), "/ping");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && ping_down(res.body, host, sizeof(host)))
		rc = err_set(e, -EIO, "slurmrestd answers but slurmctld on %s"
			     " is DOWN", host);
	http_result_free(&res);
	return rc < 0 ? rc : 0;
}

int sl_partition(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], nodes[256], msg[ERR_MSG_MAX];
	int rc;

	if (!st->cfg.partition)
		return 0;
	sl_api_path(st, path, sizeof(path), "/partitions");
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

int sl_nodes(struct slurm_target *st, char **text, struct err *e)
{
	struct http_result res = { 0 };
	struct slurm_node *nd = NULL;
	char path[128], msg[ERR_MSG_MAX];
	size_t n = 0;
	int rc;

	sl_api_path(st, path, sizeof(path), "/nodes");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && slurm_api_parse_nodes(res.body, &nd, &n, msg, sizeof(msg)))
		rc = err_set(e, -EIO, "%s", msg);
	http_result_free(&res);
	if (rc)
		return rc < 0 ? rc : -EIO;
	*text = nodes_text(st, nd, n);
	free(nd);
	st->nodes_at = mono_s();
	return *text ? 0 : err_set(e, -ENOMEM, "out of memory");
}
