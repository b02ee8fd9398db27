// SPDX-License-Identifier: MIT
/*
 * Deployments: the ctl verbs, checked inside the write (deploy, restart,
 * delete), and the state machine the target's worker runs:
 *
 *   deploy/restart  a new generation (a snapshot of the user's files, the
 *                   model version, the config) comes up beside the one
 *                   serving; once all its replicas listen and GET / answers
 *                   the old ones are told to drain (a rolling update).
 *   a crash         the replica is started again with backoff, Unhealthy
 *                   meanwhile; MAX_RESTARTS crashes in a row: Failed.
 *   delete          every replica drains and stops: Draft.
 *
 * The worker owns every struct deploy_ctx; FUSE threads only write the
 * request text (TEXT_DEPLOY_REQ) and the state, then kick the worker.
 * See deploy_i.h for how the fields of struct obj are used.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "deploy_i.h"
#include "../lib/log.h"
#include "ws_i.h"

#define MAX_REPLICAS	16
#define MAX_RESTARTS	5	/* crashes in a row before Failed */
#define UP_RESETS_S	60.0	/* up this long: the crash count restarts */
#define STOP_GRACE_S	10.0	/* TERM (drain), then KILL */
#define HEALTH_EVERY_S	5.0
#define HEALTH_FAILS	3	/* failed GET / in a row: Unhealthy */
#define FAST_TICK_MS	50	/* while replicas start or stop */
#define SLOW_TICK_MS	200

enum { V_NONE, V_DEPLOY, V_RESTART, V_DELETE };
static const char *const verb_names[] = { "", "deploy", "restart", "delete" };

static const char *const dep_keys[] = {
	"entry", "command", "port", "replicas", "host", "ready_timeout",
	"max_body", "read_timeout", NULL
};

#define MAX_BODY_DEFAULT	(100L << 20)	/* mlfs-serve's defaults */
#define READ_TIMEOUT_DEFAULT	30

static int is_state(const struct obj *o, const char *s)
{
	return !strcmp(o->state, s);
}

/* A state in which replicas may be serving (and the model is in use). */
static int live_state(const char *s)
{
	return !strcmp(s, DS_TRANSITIONING) || !strcmp(s, DS_HEALTHY) ||
	       !strcmp(s, DS_UNHEALTHY);
}

/* ---- config (pure) ------------------------------------------------------ */

static int host_valid(const char *h)
{
	unsigned char a[16];

	return !strcmp(h, "localhost") || inet_pton(AF_INET, h, a) == 1 ||
	       inet_pton(AF_INET6, h, a) == 1;
}

static int entry_valid(const char *s, struct err *e)
{
	const char *p = s;

	if (!*s || strlen(s) >= sizeof(((struct deploy_spec *)0)->entry))
		return err_set(e, -EINVAL, "config: entry must name the entry"
			       " script, e.g. entry = score.py");
	if (*s == '/')
		return err_set(e, -EINVAL, "config: entry '%s' must be relative"
			       " to the deployment's folder", s);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && !strncmp(p, "..", 2))
			return err_set(e, -EINVAL, "config: entry '%s' must stay"
				       " inside the deployment's folder", s);
		p += n + (p[n] == '/');
	}
	return 0;
}

static int config_number(const struct kv_list *cfg, const char *key,
			 long min, long max, int *out, struct err *e)
{
	const char *v = kv_get(cfg, key);
	long n;
	int rc;

	if (!v)
		return 0;
	rc = parse_int(v, min, max, &n, key, e);
	if (rc)
		return rc;
	*out = (int)n;
	return 0;
}

static int config_values(const struct kv_list *cfg, struct deploy_spec *s,
			 struct err *e)
{
	const char *v;
	int rc;

	rc = config_number(cfg, "port", 0, 65535, &s->port, e);
	if (!rc)
		rc = config_number(cfg, "replicas", 1, MAX_REPLICAS,
				   &s->replicas, e);
	if (!rc)
		rc = config_number(cfg, "ready_timeout", 1, 3600,
				   &s->ready_timeout, e);
	if (!rc)
		rc = config_number(cfg, "read_timeout", 1, 3600,
				   &s->read_timeout, e);
	if (!rc && (v = kv_get(cfg, "max_body")))
		rc = parse_int(v, 1, 16L << 30, &s->max_body, "max_body", e);
	if (rc)
		return rc;
	v = kv_get(cfg, "host");
	if (v && (!host_valid(v) || strlen(v) >= sizeof(s->host)))
		return err_set(e, -EINVAL, "config: host must be an IP address"
			       " such as 127.0.0.1 or 0.0.0.0, not '%s'", v);
	if (v)
		snprintf(s->host, sizeof(s->host), "%s", v);
	v = kv_get(cfg, "command");
	if (v && strlen(v) >= sizeof(s->command))
		return err_set(e, -EINVAL, "config: command is longer than %zu"
			       " bytes", sizeof(s->command) - 1);
	if (v)
		snprintf(s->command, sizeof(s->command), "%s", v);
	v = kv_get(cfg, "entry");
	if (v && (rc = entry_valid(v, e)))
		return rc;
	if (v)
		snprintf(s->entry, sizeof(s->entry), "%s", v);
	return 0;
}

int deploy_config_parse(const char *buf, size_t len, struct deploy_spec *s,
			struct err *e)
{
	struct kv_list cfg = { 0 };
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->entry, sizeof(s->entry), "score.py");
	s->replicas = 1;
	s->ready_timeout = 120;
	s->max_body = MAX_BODY_DEFAULT;
	s->read_timeout = READ_TIMEOUT_DEFAULT;
	rc = kv_parse(buf, len, &cfg, e);
	if (!rc)
		rc = kv_check_keys(&cfg, dep_keys, "deployment", e);
	if (!rc)
		rc = config_values(&cfg, s, e);
	kv_free(&cfg);
	return rc;
}

/* ---- ddata: small persistent state ---------------------------------------- */

static long ddata_long(const char *dd, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "%s=", key);
	for (p = strstr(dd, pat); p; p = strstr(p + 1, pat))
		if (p == dd || p[-1] == ' ')
			return strtol(p + strlen(pat), NULL, 10);
	return 0;
}

static char rep_letter(int state)
{
	static const char l[] = "?srtxw";

	return state > 0 && state < (int)sizeof(l) - 1 ? l[state] : '?';
}

static void ddata_render(const struct deploy_ctx *d, long req, char *out,
			 size_t sz)
{
	size_t n;

	n = snprintf(out, sz, "gen=%d last=%d req=%ld port=%d reps=",
		     d->serving.gen, d->last_gen, req,
		     d->serving.gen ? d->serving.port : d->coming.port);
	for (const struct replica *r = d->reps; r && n + 40 < sz; r = r->next)
		n += snprintf(out + n, sz - n, "%d:%d:%ld:%c:%d,", r->slot,
			      r->gen, r->pid, rep_letter(r->state),
			      r->restarts);
}

/* ---- settings, read inside the write ---------------------------------------- */

static int setting_word(struct ws *ws, int64_t id, int file, const char *what,
			char *out, size_t sz, struct err *e)
{
	char tmp[ERR_MSG_MAX];
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, file, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read %s", what);
	rc = first_word(buf, len, out, sz, e);
	free(buf);
	if (rc) {
		snprintf(tmp, sizeof(tmp), "%s", e->msg);
		return err_set(e, rc, "%s: %s", what, tmp);
	}
	return 0;
}

/* The model version named in `model`: NAME:VERSION.  Fills s->model. */
static int check_model(struct ws *ws, const struct obj *o,
		       struct deploy_spec *s, struct obj *v, struct err *e)
{
	char text[2 * MLFS_NAME_MAX + 8], *colon;
	struct obj m;
	int rc;

	rc = setting_word(ws, o->id, F_MODEL, "model", text, sizeof(text), e);
	if (rc)
		return rc;
	if (!text[0])
		return err_set(e, -EINVAL, "model is empty: write NAME:VERSION"
			       " (from models/) to deployments/%s/model",
			       o->name);
	colon = strchr(text, ':');
	if (!colon || colon == text || !colon[1])
		return err_set(e, -EINVAL, "model must be NAME:VERSION, e.g."
			       " iris:1, not '%s'", text);
	*colon = '\0';
	if (ws_find(ws, K_MODEL, 0, text, &m))
		return err_set(e, -ENOENT, "no model '%s' in models/", text);
	if (ws_find(ws, K_VERSION, m.id, colon + 1, v))
		return err_set(e, -ENOENT, "model '%s' has no version '%s'",
			       text, colon + 1);
	snprintf(s->model, sizeof(s->model), "%s:%s", text, colon + 1);
	s->version_id = v->id;
	ws_obj_path(ws, v->id, RUN_FILES, s->model_dir);
	return 0;
}

/* `config`, and the entry script it names in the deployment's files. */
static int check_config(struct ws *ws, const struct obj *o,
			struct deploy_spec *s, struct err *e)
{
	char path[PATH_MAX + 300];
	struct stat st;
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, o->id, F_CONFIG, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read config");
	rc = deploy_config_parse(buf, len, s, e);
	free(buf);
	if (rc || s->command[0])
		return rc;
	ws_obj_path(ws, o->id, RUN_FILES, path);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s",
		 s->entry);
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return err_set(e, -ENOENT, "the entry script %s is not in"
			       " deployments/%s/: copy it there (or set entry"
			       " or command in config)", s->entry, o->name);
	return 0;
}

/* The target named in `target` (default local) must host deployments. */
static int check_target(struct ws *ws, const struct obj *o, struct obj *t,
			const struct driver **drv, struct err *e)
{
	char name[MLFS_NAME_MAX + 2], type[32];
	int rc;

	rc = setting_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e);
	if (rc)
		return rc;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (ws_find(ws, K_TARGET, 0, name, t))
		return err_set(e, -ENOENT, "unknown target '%s': see targets/",
			       name);
	snprintf(type, sizeof(type), "%s", t->type);
	if (!type[0] && setting_word(ws, t->id, F_TYPE, "type", type,
				     sizeof(type), e))
		type[0] = '\0';
	*drv = driver_find(type);
	if (*drv && !(*drv)->can_host)
		return err_set(e, -ENOTSUP, "target '%s' (type %s) cannot host"
			       " deployments: use a local or ssh target", name,
			       type);
	if (!*drv)
		return err_set(e, -EINVAL, "target '%s' has no known type",
			       name);
	if (strcmp(t->state, TS_SUCCEEDED))
		return err_set(e, -EBUSY, "target '%s' is %s, not Succeeded:"
			       " provision it first", name, t->state);
	return 0;
}

/* No host in config: where the target's replicas listen by default. */
static void default_host(struct deploy_spec *s, const struct driver *drv)
{
	if (!s->host[0])
		snprintf(s->host, sizeof(s->host), "%s", drv->deploy_host ?
			 drv->deploy_host : "127.0.0.1");
}

/* A fixed port must be free, unless this deployment already serves on it. */
static int check_port(struct ws *ws, const struct obj *o,
		      const struct obj *t, const struct driver *drv,
		      const struct deploy_spec *s, struct err *e)
{
	struct kv_list cfg = { 0 };
	int rc;

	if (!s->port || !drv->check_deploy)
		return 0;
	if ((is_state(o, DS_HEALTHY) || is_state(o, DS_UNHEALTHY)) &&
	    ddata_long(o->ddata, "port") == s->port)
		return 0;
	rc = ws_load_config(ws, t->id, &cfg, e);
	if (!rc)
		rc = drv->check_deploy(&cfg, s, e);
	kv_free(&cfg);
	return rc;
}

/* The bearer key: made once, at the first deploy. */
static int ensure_key(struct ws *ws, int64_t id)
{
	unsigned char raw[24];
	char hex[sizeof(raw) * 2 + 2];
	size_t len;
	char *cur;

	if (!ws_read_text(ws, id, F_KEY, &cur, &len)) {
		free(cur);
		if (len >= 16)
			return 0;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	snprintf(hex + 2 * sizeof(raw), 2, "\n");
	return store_text_put(ws->st, id, F_KEY, hex, strlen(hex));
}

/* ---- ctl verbs -------------------------------------------------------------- */

static long req_serial(struct ws *ws, int64_t id, int *verb)
{
	char name[16] = "";
	long serial = 0;
	size_t len;
	char *buf;

	*verb = V_NONE;
	if (ws_read_text(ws, id, TEXT_DEPLOY_REQ, &buf, &len))
		return 0;
	if (sscanf(buf, "%ld %15s", &serial, name) != 2)
		serial = 0;
	free(buf);
	for (int v = V_DEPLOY; v <= V_DELETE; v++)
		if (!strcmp(name, verb_names[v]))
			*verb = v;
	return serial;
}

static int verb_allowed(const struct obj *o, int verb, struct err *e)
{
	if (verb == V_DEPLOY && is_state(o, DS_TRANSITIONING))
		return err_set(e, -EBUSY, "deployment '%s' is Transitioning:"
			       " wait until it is Healthy, Unhealthy or Failed,"
			       " or delete it", o->name);
	if (verb == V_RESTART && (is_state(o, DS_DRAFT) ||
				  is_state(o, DS_TRANSITIONING)))
		return err_set(e, -EBUSY, "deployment '%s' is %s: restart works"
			       " on a Healthy, Unhealthy or Failed deployment",
			       o->name, o->state);
	if (verb == V_DELETE && is_state(o, DS_DRAFT))
		return err_set(e, -EBUSY, "deployment '%s' is Draft: nothing to"
			       " delete", o->name);
	return 0;
}

/*
 * Hand @verb to the worker: the state becomes Transitioning (retried if
 * the worker moved it meanwhile), then the request text, then a kick.
 */
static int dep_request(struct ws *ws, struct obj *o, int verb,
		       int64_t version, int64_t target, struct err *e)
{
	int64_t old_version = o->seq;
	char text[64];
	struct obj n;
	int rc = -EAGAIN, dummy;

	for (int i = 0; i < 4 && rc == -EAGAIN; i++) {
		rc = verb_allowed(o, verb, e);
		if (rc)
			return rc;
		n = *o;
		snprintf(n.state, sizeof(n.state), "%s", DS_TRANSITIONING);
		n.error[0] = '\0';
		n.queued = now_s();
		if (version)
			n.seq = version;
		if (target)
			n.target_id = target;
		rc = ws_update_obj(ws, &n, o->state, FBIT(F_KEY) |
				   FBIT(F_SCORING_URI));
		*o = n;
	}
	if (rc)
		return err_set(e, rc == -EAGAIN ? -EBUSY : rc, "deployment '%s'"
			       " changed meanwhile: try again", o->name);
	snprintf(text, sizeof(text), "%ld %s\n", req_serial(ws, o->id, &dummy)
		 + 1, verb_names[verb]);
	store_text_put(ws->st, o->id, TEXT_DEPLOY_REQ, text, strlen(text));
	models_sync_use(ws, o->seq);
	if (old_version != o->seq)
		models_sync_use(ws, old_version);
	worker_kick(ws, o->id);
	return 0;
}

static int dep_deploy(struct ws *ws, struct obj *o, struct err *e)
{
	const struct driver *drv = NULL;
	struct deploy_spec s;
	struct obj v, t;
	int rc;

	rc = verb_allowed(o, V_DEPLOY, e);
	if (!rc)
		rc = check_model(ws, o, &s, &v, e);
	if (!rc) {
		char model[sizeof(s.model)];

		snprintf(model, sizeof(model), "%s", s.model);
		rc = check_config(ws, o, &s, e);
		snprintf(s.model, sizeof(s.model), "%s", model);
	}
	if (!rc)
		rc = check_target(ws, o, &t, &drv, e);
	if (rc)
		return rc;
	default_host(&s, drv);
	if ((is_state(o, DS_HEALTHY) || is_state(o, DS_UNHEALTHY)) &&
	    o->target_id && o->target_id != t.id)
		return err_set(e, -EBUSY, "deployment '%s' is served by another"
			       " target: delete it before moving it to '%s'",
			       o->name, t.name);
	rc = check_port(ws, o, &t, drv, &s, e);
	if (rc)
		return rc;
	if (ensure_key(ws, o->id))
		return err_set(e, -EIO, "cannot make the deployment's key");
	return dep_request(ws, o, V_DEPLOY, v.id, t.id, e);
}

static int dep_restart(struct ws *ws, struct obj *o, struct err *e)
{
	struct obj v, t;
	int rc;

	rc = verb_allowed(o, V_RESTART, e);
	if (rc)
		return rc;
	if (!ddata_long(o->ddata, "gen") && !ddata_long(o->ddata, "last"))
		return err_set(e, -EBUSY, "deployment '%s' has never been"
			       " deployed: use deploy", o->name);
	if (ws_get(ws, o->seq, &v))
		return err_set(e, -ENOENT, "the model version deployment '%s'"
			       " served is gone: deploy another", o->name);
	if (ws_get(ws, o->target_id, &t) || strcmp(t.state, TS_SUCCEEDED))
		return err_set(e, -EBUSY, "the target of deployment '%s' is"
			       " not Succeeded", o->name);
	return dep_request(ws, o, V_RESTART, 0, 0, e);
}

int deployment_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e)
{
	int verb = V_NONE;

	for (int v = V_DEPLOY; v <= V_DELETE; v++)
		if (!strcmp(c->argv[0], verb_names[v]))
			verb = v;
	if (verb == V_NONE)
		return err_set(e, -EINVAL, "unknown command '%s' for a"
			       " deployment (commands: deploy, restart,"
			       " delete)", c->argv[0]);
	if (c->argc != 1)
		return err_set(e, -EINVAL, "'%s' takes no arguments",
			       c->argv[0]);
	if (verb == V_DEPLOY)
		return dep_deploy(ws, o, e);
	if (verb == V_RESTART)
		return dep_restart(ws, o, e);
	return dep_request(ws, o, V_DELETE, 0, 0, e);
}

/* ---- generations: spec files and snapshots ---------------------------------- */

static void gen_path(const struct deploy_ctx *d, int gen, const char *sub,
		     char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s/%d%s%s", d->dir, DEP_GEN, gen,
		 sub ? "/" : "", sub ? sub : "");
}

static int spec_write(const struct deploy_ctx *d, const struct deploy_spec *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	gen_path(d, s->gen, "spec", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "version_id = %lld\nmodel = %s\nentry = %s\ncommand = %s\n"
		"host = %s\nport = %d\nreplicas = %d\nready_timeout = %d\n"
		"max_body = %ld\nread_timeout = %d\n",
		(long long)s->version_id, s->model, s->entry, s->command,
		s->host, s->port, s->replicas, s->ready_timeout, s->max_body,
		s->read_timeout);
	if (fclose(f) || rename(tmp, path))
		return -errno;
	return 0;
}

static const char *kv_or(const struct kv_list *kv, const char *key,
			 const char *def)
{
	const char *v = kv_get(kv, key);

	return v ? v : def;
}

static int spec_read(const struct deploy_ctx *d, int gen,
		     struct deploy_spec *s)
{
	struct kv_list kv = { 0 };
	struct err e;
	char path[PATH_MAX], buf[4096];
	const char *v;
	ssize_t n;
	int fd, rc;

	gen_path(d, gen, "spec", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -EIO;
	memset(s, 0, sizeof(*s));
	rc = kv_parse(buf, n, &kv, &e);
	if (rc)
		return rc;
	s->gen = gen;
	s->version_id = (v = kv_get(&kv, "version_id")) ? atoll(v) : 0;
	snprintf(s->model, sizeof(s->model), "%s", kv_or(&kv, "model", ""));
	snprintf(s->entry, sizeof(s->entry), "%s", kv_or(&kv, "entry", ""));
	snprintf(s->command, sizeof(s->command), "%s",
		 kv_or(&kv, "command", ""));
	snprintf(s->host, sizeof(s->host), "%s",
		 kv_or(&kv, "host", "127.0.0.1"));
	s->port = (v = kv_get(&kv, "port")) ? atoi(v) : 0;
	s->replicas = (v = kv_get(&kv, "replicas")) ? atoi(v) : 1;
	s->ready_timeout = (v = kv_get(&kv, "ready_timeout")) ? atoi(v) : 120;
	/* generations recorded before these keys: the defaults */
	s->max_body = (v = kv_get(&kv, "max_body")) ? atol(v) : 0;
	s->read_timeout = (v = kv_get(&kv, "read_timeout")) ? atoi(v) : 0;
	if (s->max_body <= 0)
		s->max_body = MAX_BODY_DEFAULT;
	if (s->read_timeout <= 0)
		s->read_timeout = READ_TIMEOUT_DEFAULT;
	kv_free(&kv);
	gen_path(d, gen, "code", s->code);
	ws_obj_path(d->ws, s->version_id, RUN_FILES, s->model_dir);
	if (s->replicas < 1 || s->replicas > MAX_REPLICAS)
		s->replicas = 1;
	return 0;
}

/* The number and folder of a new generation. */
static int gen_dir(struct deploy_ctx *d)
{
	char path[PATH_MAX];

	d->last_gen++;
	gen_path(d, d->last_gen, NULL, path);
	remove_tree(path);	/* a leftover of a crash */
	mkdir(path, 0711);
	return d->last_gen;
}

/* A new generation for `deploy`: the settings as they are now. */
static int gen_from_settings(struct deploy_ctx *d, struct deploy_spec *s,
			     struct err *e)
{
	char files[PATH_MAX];
	struct obj v, m;
	int rc;

	rc = check_config(d->ws, &d->obj, s, e);
	if (rc)
		return rc;
	default_host(s, d->t->drv);
	/* the version the write resolved (and marked in use), not the
	 * `model` file as it may be by now */
	if (ws_get(d->ws, d->obj.seq, &v) || ws_get(d->ws, v.parent, &m))
		return err_set(e, -ENOENT, "the model version to deploy was"
			       " removed meanwhile");
	snprintf(s->model, sizeof(s->model), "%s:%s", m.name, v.name);
	s->version_id = v.id;
	ws_obj_path(d->ws, v.id, RUN_FILES, s->model_dir);
	if (!s->port && d->serving.gen)
		s->port = d->serving.port;	/* same URI across updates */
	ws_obj_path(d->ws, d->obj.id, RUN_FILES, files);
	s->gen = gen_dir(d);
	gen_path(d, s->gen, "code", s->code);
	/* the snapshot is its creator's, made with their rights (copy.h) */
	return copy_tree_as(files, s->code, d->obj.uid, d->obj.gid, e);
}

/* A new generation for `restart`: the last one deployed, anew. */
static int gen_from_last(struct deploy_ctx *d, struct deploy_spec *s,
			 struct err *e)
{
	int last = d->serving.gen ? d->serving.gen :
		   (int)ddata_long(d->obj.ddata, "last");
	char old[PATH_MAX];

	if (!last || spec_read(d, last, s))
		return err_set(e, -ENOENT, "nothing deployed before to restart:"
			       " use deploy");
	snprintf(old, sizeof(old), "%s", s->code);
	s->gen = gen_dir(d);
	gen_path(d, s->gen, "code", s->code);
	return copy_tree_as(old, s->code, d->obj.uid, d->obj.gid, e);
}

static int gen_make(struct deploy_ctx *d, int verb, struct deploy_spec *s,
		    struct err *e)
{
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", d->dir, DEP_GEN);
	mkdir(dir, 0711);
	rc = verb == V_DEPLOY ? gen_from_settings(d, s, e) :
	     gen_from_last(d, s, e);
	if (!rc && spec_write(d, s))
		rc = err_set(e, -EIO, "cannot record generation %d", s->gen);
	return rc;
}

/* Remove generation folders nothing uses any more. */
static void gen_gc(struct deploy_ctx *d)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int g, used;

	snprintf(path, sizeof(path), "%s/%s", d->dir, DEP_GEN);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		g = atoi(de->d_name);
		if (g <= 0 || g == d->serving.gen || g == d->coming.gen ||
		    g == (int)ddata_long(d->obj.ddata, "last"))
			continue;
		used = 0;
		for (struct replica *r = d->reps; r; r = r->next)
			used |= r->gen == g;
		if (!used) {
			gen_path(d, g, NULL, path);
			remove_tree(path);
		}
	}
	if (dir)
		closedir(dir);
}

/* ---- saving ---------------------------------------------------------------- */

static void scoring_uri(const struct deploy_ctx *d, const struct deploy_spec *s,
			char *buf, size_t sz)
{
	char host[256];

	if (d->t->drv->service_host) {
		d->t->drv->service_host(d->t, s, host, sizeof(host));
	} else if (!strcmp(s->host, "0.0.0.0") || !strcmp(s->host, "::")) {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", s->host);
	}
	snprintf(buf, sz, strchr(host, ':') ? "http://[%s]:%d/score" :
		 "http://%s:%d/score", host, s->port);
}

/*
 * dep_save - write @state (and @error, NULL to keep) with the replica table,
 * the scoring URI and the request taken.  0, or -EAGAIN when a ctl write
 * moved the deployment meanwhile (d->obj reloaded).
 */
static int dep_save(struct deploy_ctx *d, const char *state,
		    const char *error)
{
	struct obj o = d->obj;
	int was_live = live_state(d->obj.state), rc;

	snprintf(o.state, sizeof(o.state), "%s", state);
	if (error)
		snprintf(o.error, sizeof(o.error), "%s", error);
	ddata_render(d, d->req_done, o.ddata, sizeof(o.ddata));
	o.backend_id[0] = '\0';
	if (d->serving.gen && live_state(state))
		scoring_uri(d, &d->serving, o.backend_id, sizeof(o.backend_id));
	if (!strcmp(state, DS_HEALTHY) && !is_state(&d->obj, DS_HEALTHY))
		o.started = now_s();
	rc = ws_update_obj(d->ws, &o, d->obj.state, FBIT(F_SCORING_URI));
	d->obj = o;
	if (rc)
		return rc;
	if (was_live != live_state(state))
		models_sync_use(d->ws, o.seq);
	return 0;
}

static void dep_note(struct deploy_ctx *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dep_note(struct deploy_ctx *d, const char *fmt, ...)
{
	char text[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ws_event(d->ws, K_DEPLOYMENT, d->obj.name, text);
}

/* ---- replicas ---------------------------------------------------------------- */

static const struct driver *drv(const struct deploy_ctx *d)
{
	return d->t->drv;
}

static struct deploy_spec *spec_of(struct deploy_ctx *d,
				   const struct replica *r)
{
	return r->gen == d->coming.gen && d->coming.gen ? &d->coming :
	       &d->serving;
}

static int rep_start(struct deploy_ctx *d, struct deploy_spec *s,
		     struct replica *r, struct err *e)
{
	int picked = !s->port, rc;

	r->state = REP_STARTING;
	r->started = now_s();
	r->ready = 0;
	r->exit_code = -1;
	rc = drv(d)->replica_start(d->t, d, s, r, e);
	if (rc)
		r->state = REP_EXITED;
	/* the port the driver picked, for adoption after a restart */
	if (picked && s->port && spec_write(d, s))
		log_warn("deployment %s: cannot record the port of generation"
			 " %d", d->obj.name, s->gen);
	return rc;
}

static struct replica *rep_new(struct deploy_ctx *d, int gen, int slot)
{
	struct replica *r = calloc(1, sizeof(*r)), **pp = &d->reps;

	if (!r)
		return NULL;
	r->gen = gen;
	r->slot = slot;
	r->exit_code = -1;
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	return r;
}

static void rep_stop(struct deploy_ctx *d, struct replica *r)
{
	if (r->state == REP_WAITING) {
		r->state = REP_EXITED;
		return;
	}
	if (r->state != REP_STARTING && r->state != REP_READY)
		return;
	drv(d)->replica_stop(d->t, d, r, 0);
	r->state = REP_STOPPING;
	r->stop_sent = now_s();
}

static void stop_gen(struct deploy_ctx *d, int gen, int all)
{
	for (struct replica *r = d->reps; r; r = r->next)
		if (all || r->gen == gen)
			rep_stop(d, r);
}

/* Forget exited replicas; KILL those that outstay the drain.  Returns
 * how many were forgotten. */
static int reap(struct deploy_ctx *d)
{
	struct replica **pp = &d->reps, *r;
	int n = 0;

	while ((r = *pp)) {
		if (r->state == REP_STOPPING && !r->killed &&
		    now_s() - r->stop_sent > STOP_GRACE_S) {
			drv(d)->replica_stop(d->t, d, r, 1);
			r->killed = 1;
		}
		if (r->state != REP_EXITED) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		drv(d)->replica_release(d->t, d, r);
		free(r);
		n++;
	}
	return n;
}

static int count_gen(const struct deploy_ctx *d, int gen, int state)
{
	int n = 0;

	for (const struct replica *r = d->reps; r; r = r->next)
		n += r->gen == gen && (!state || r->state == state);
	return n;
}

/* ---- transitions ------------------------------------------------------------- */

/* Nothing can serve: stop everything, Failed with @why. */
static void dep_fail(struct deploy_ctx *d, const char *why)
{
	stop_gen(d, 0, 1);
	d->coming.gen = 0;
	d->verb = V_NONE;
	dep_save(d, DS_FAILED, why);
}

static void rollout_failed(struct deploy_ctx *d, const char *why)
{
	char text[ERR_MSG_MAX];
	int alive;

	stop_gen(d, d->coming.gen, 0);
	d->coming.gen = 0;
	d->verb = V_NONE;
	alive = d->serving.gen ? count_gen(d, d->serving.gen, REP_READY) : 0;
	if (!alive) {
		dep_fail(d, why);
		return;
	}
	snprintf(text, sizeof(text), "the update failed (%s); the previous"
		 " generation keeps serving", why);
	dep_save(d, alive == d->serving.replicas ? DS_HEALTHY : DS_UNHEALTHY,
		 text);
}

static void finish_rollout(struct deploy_ctx *d)
{
	for (struct replica *r = d->reps; r; r = r->next)
		if (r->gen != d->coming.gen)
			rep_stop(d, r);
	d->serving = d->coming;
	d->coming.gen = 0;
	d->verb = V_NONE;
	d->health_fails = 0;
	d->next_health = now_s() + HEALTH_EVERY_S;
	dep_save(d, DS_HEALTHY, "");
	log_info("deployment %s: generation %d serves on port %d (%.2f s)",
		 d->obj.name, d->serving.gen, d->serving.port,
		 now_s() - d->verb_at);
}

/* A replica of the serving generation died: restart it with backoff. */
static void crash(struct deploy_ctx *d, struct replica *r, const char *why)
{
	char text[ERR_MSG_MAX];
	double wait;

	if (r->ready > 0 && now_s() - r->ready > UP_RESETS_S)
		r->restarts = 0;
	r->restarts++;
	drv(d)->replica_release(d->t, d, r);
	r->priv = NULL;
	r->pid = 0;
	if (r->restarts > MAX_RESTARTS) {
		snprintf(text, sizeof(text), "replica %d crashed %d times in a"
			 " row; the last time it %s", r->slot, r->restarts, why);
		r->state = REP_EXITED;
		dep_fail(d, text);
		return;
	}
	wait = 0.2 * (1 << (r->restarts - 1));
	r->state = REP_WAITING;
	r->restart_at = now_s() + (wait > 10 ? 10 : wait);
	snprintf(text, sizeof(text), "replica %d %s; restarting it in %.1f s",
		 r->slot, why, wait);
	dep_note(d, "%s", text);
	dep_save(d, DS_UNHEALTHY, text);
}

static void on_exit_rep(struct deploy_ctx *d, struct replica *r,
			const char *why)
{
	char text[ERR_MSG_MAX];
	int prev = r->state;

	r->state = REP_EXITED;
	if (prev == REP_STOPPING)
		return;
	if (r->gen == d->coming.gen && d->coming.gen) {
		snprintf(text, sizeof(text), "replica %d %s", r->slot, why);
		rollout_failed(d, text);
	} else if (r->gen == d->serving.gen && d->verb == V_NONE &&
		   (is_state(&d->obj, DS_HEALTHY) ||
		    is_state(&d->obj, DS_UNHEALTHY))) {
		crash(d, r, why);
	}
}

/* Poll every running replica; returns 1 when one changed. */
static int poll_replicas(struct deploy_ctx *d)
{
	struct err e;
	int st, changed = 0;

	for (struct replica *r = d->reps; r; r = r->next) {
		if (r->state != REP_STARTING && r->state != REP_READY &&
		    r->state != REP_STOPPING)
			continue;
		memset(&e, 0, sizeof(e));
		st = drv(d)->replica_poll(d->t, d, spec_of(d, r), r, &e);
		if (st == REP_EXITED) {
			on_exit_rep(d, r, e.msg[0] ? e.msg : "exited");
			changed = 1;
		} else if (r->state == REP_STARTING && st == REP_READY) {
			r->state = REP_READY;
			r->ready = now_s();
			changed = 1;
		}
	}
	return changed;
}

/* ---- requests ------------------------------------------------------------------- */

static void begin_rollout(struct deploy_ctx *d, int verb)
{
	struct err e = { { 0 } };
	struct deploy_spec s;
	struct replica *r;
	int rc;

	rc = gen_make(d, verb, &s, &e);
	if (!rc)
		d->coming = s;
	for (int i = 1; !rc && i <= s.replicas; i++) {
		r = rep_new(d, s.gen, i);
		rc = r ? rep_start(d, &d->coming, r, &e) :
		     err_set(&e, -ENOMEM, "out of memory");
	}
	if (rc) {
		rollout_failed(d, e.msg[0] ? e.msg : strerror(-rc));
		return;
	}
	dep_save(d, DS_TRANSITIONING, NULL);	/* the replica table */
}

/* Take the request written since the last one (kick after a ctl write). */
static void take_request(struct deploy_ctx *d)
{
	long serial;
	int verb;

	serial = req_serial(d->ws, d->obj.id, &verb);
	if (serial <= d->req_done || verb == V_NONE)
		return;
	if (!is_state(&d->obj, DS_TRANSITIONING) &&
	    dep_save(d, DS_TRANSITIONING, "") == -EAGAIN &&
	    !is_state(&d->obj, DS_TRANSITIONING))
		return;		/* the next kick tries again */
	d->req_done = serial;
	if (d->coming.gen)
		stop_gen(d, d->coming.gen, 0);
	d->coming.gen = 0;
	d->verb = verb;
	d->verb_at = now_s();
	if (verb == V_DELETE)
		stop_gen(d, 0, 1);
	else
		begin_rollout(d, verb);
}

static int health_ok(struct deploy_ctx *d, struct err *e)
{
	if (!drv(d)->health)
		return 1;
	return drv(d)->health(d->t, d, d->coming.gen ? &d->coming :
			      &d->serving, e) == 0;
}

static void step_rollout(struct deploy_ctx *d)
{
	struct err e = { { 0 } };
	char text[ERR_MSG_MAX];
	struct deploy_spec *s = &d->coming;

	if (!s->gen)
		return;
	if (count_gen(d, s->gen, REP_READY) == s->replicas) {
		if (health_ok(d, &e)) {
			finish_rollout(d);
			return;
		}
	}
	if (now_s() - d->verb_at > s->ready_timeout) {
		snprintf(text, sizeof(text), "the server did not %s on port %d"
			 " within %d s%s%s", e.msg[0] ? "answer GET /" :
			 "listen", s->port, s->ready_timeout,
			 e.msg[0] ? ": " : "", e.msg);
		rollout_failed(d, text);
	}
}

static void step_delete(struct deploy_ctx *d)
{
	if (d->reps)
		return;
	d->serving.gen = 0;
	d->coming.gen = 0;
	d->verb = V_NONE;
	if (!dep_save(d, DS_DRAFT, ""))
		gen_gc(d);
}

/* Slots of the serving generation without a replica (after adoption). */
static int fill_slots(struct deploy_ctx *d)
{
	struct replica *r;
	int made = 0;

	for (int i = 1; i <= d->serving.replicas; i++) {
		int have = 0;

		for (r = d->reps; r; r = r->next)
			have |= r->gen == d->serving.gen && r->slot == i &&
				r->state != REP_STOPPING && r->state != REP_EXITED;
		if (!have && (r = rep_new(d, d->serving.gen, i))) {
			r->state = REP_WAITING;
			r->restart_at = now_s();
			made++;
		}
	}
	return made;
}

static void restart_due(struct deploy_ctx *d)
{
	struct err e;

	for (struct replica *r = d->reps; r; r = r->next) {
		if (r->state != REP_WAITING || r->gen != d->serving.gen ||
		    now_s() < r->restart_at)
			continue;
		memset(&e, 0, sizeof(e));
		if (rep_start(d, &d->serving, r, &e)) {
			r->state = REP_READY;	/* so that crash() counts it */
			crash(d, r, e.msg);
			if (is_state(&d->obj, DS_FAILED))
				return;
		}
	}
}

static void step_serving(struct deploy_ctx *d)
{
	struct err e = { { 0 } };
	int ready;

	if (!d->serving.gen)
		return;
	fill_slots(d);
	restart_due(d);
	if (is_state(&d->obj, DS_FAILED))
		return;
	ready = count_gen(d, d->serving.gen, REP_READY) == d->serving.replicas;
	if (now_s() < d->next_health || (!ready && is_state(&d->obj,
							    DS_UNHEALTHY)))
		return;
	d->next_health = now_s() + (ready && is_state(&d->obj, DS_HEALTHY) ?
				    HEALTH_EVERY_S : 1.0);
	if (health_ok(d, &e)) {
		d->health_fails = 0;
		if (ready && is_state(&d->obj, DS_UNHEALTHY))
			dep_save(d, DS_HEALTHY, "");
	} else if (++d->health_fails >= HEALTH_FAILS &&
		   is_state(&d->obj, DS_HEALTHY)) {
		dep_save(d, DS_UNHEALTHY, e.msg);
	}
}

/* ---- tracking ----------------------------------------------------------------- */

/* After a daemon restart: the replicas still running, the generation. */
static void adopt(struct deploy_ctx *d)
{
	struct replica *list = NULL, *r, *next;
	int n;

	d->serving.gen = (int)ddata_long(d->obj.ddata, "gen");
	d->last_gen = (int)ddata_long(d->obj.ddata, "last");
	if (d->serving.gen && spec_read(d, d->serving.gen, &d->serving))
		d->serving.gen = 0;
	if (d->serving.gen && !d->serving.port)	/* recorded before the pick */
		d->serving.port = (int)ddata_long(d->obj.ddata, "port");
	n = drv(d)->replica_adopt ? drv(d)->replica_adopt(d->t, d, &list) : 0;
	for (r = list; n > 0 && r; r = next) {
		next = r->next;
		r->next = NULL;
		r->exit_code = -1;
		r->started = r->ready = now_s();
		r->state = REP_STARTING;	/* READY once seen listening */
		if (r->gen > d->last_gen)
			d->last_gen = r->gen;
		r->next = d->reps;
		d->reps = r;
		if (r->gen != d->serving.gen)
			rep_stop(d, r);
	}
	if (n > 0)
		log_info("deployment %s: adopted %d replica%s", d->obj.name, n,
			 n == 1 ? "" : "s");
	d->req_done = ddata_long(d->obj.ddata, "req");
	if (is_state(&d->obj, DS_TRANSITIONING) && d->req_done > 0)
		d->req_done--;	/* the request being carried out starts over */
	if (!d->serving.gen && !is_state(&d->obj, DS_TRANSITIONING))
		dep_fail(d, "the daemon restarted and found no generation to"
			 " serve");
	else if (is_state(&d->obj, DS_HEALTHY) &&
		 count_gen(d, d->serving.gen, 0) < d->serving.replicas)
		dep_save(d, DS_UNHEALTHY, "replicas were missing after the"
			 " daemon restarted: starting them again");
	models_sync_use(d->ws, d->obj.seq);
}

static struct deploy_ctx *dep_new(struct target_ctx *t, const struct obj *o)
{
	struct deploy_ctx *d = calloc(1, sizeof(*d));
	size_t len;
	char *key;

	if (!d)
		return NULL;
	d->ws = t->ws;
	d->t = t;
	d->obj = *o;
	d->watch = -1;
	ws_obj_path(t->ws, o->id, NULL, d->dir);
	if (!ws_read_text(t->ws, o->id, F_KEY, &key, &len)) {
		key[strcspn(key, "\r\n")] = '\0';
		snprintf(d->key, sizeof(d->key), "%s", key);
		free(key);
	}
	return d;
}

static struct deploy_ctx *dep_find(struct deploy_ctx *list, int64_t id)
{
	for (; list; list = list->next)
		if (list->obj.id == id)
			return list;
	return NULL;
}

void deploy_track(struct target_ctx *t, struct deploy_ctx **list,
		  const struct obj *o)
{
	struct deploy_ctx *d = dep_find(*list, o->id);

	if (!t->drv || !t->drv->replica_start)
		return;
	if (d) {
		d->obj = *o;
		take_request(d);
		return;
	}
	if (!live_state(o->state))
		return;
	d = dep_new(t, o);
	if (!d)
		return;
	d->next = *list;
	*list = d;
	adopt(d);
	take_request(d);
}

static void watch_log(struct deploy_ctx *d, int ino_fd)
{
	char path[PATH_MAX];
	struct stat st;

	if (d->watch < 0 && ino_fd >= 0)
		d->watch = inotify_add_watch(ino_fd, d->dir, IN_MODIFY |
					     IN_CREATE);
	ws_obj_path(d->ws, d->obj.id, RUN_LOG, path);
	if (stat(path, &st) || st.st_size == d->log_size)
		return;
	if (d->ws->hooks.inval_grow)
		d->ws->hooks.inval_grow(d->ws->hooks.ctx, d->obj.id, F_LOG,
					d->log_size);
	d->log_size = st.st_size;
}

void deploy_watch_logs(struct deploy_ctx *list)
{
	for (; list; list = list->next)
		watch_log(list, -1);
}

static void dep_step(struct deploy_ctx *d)
{
	char before[sizeof(d->obj.ddata)];

	ddata_render(d, 0, before, sizeof(before));
	poll_replicas(d);
	if (d->verb == V_DELETE)
		step_delete(d);
	else if (d->verb)
		step_rollout(d);
	else if (is_state(&d->obj, DS_HEALTHY) ||
		 is_state(&d->obj, DS_UNHEALTHY))
		step_serving(d);
	if (reap(d) && !d->verb)
		gen_gc(d);	/* generations nothing runs any more */
	{
		char after[sizeof(d->obj.ddata)];

		ddata_render(d, 0, after, sizeof(after));
		if (strcmp(before, after) && live_state(d->obj.state))
			dep_save(d, d->obj.state, NULL);	/* info.json */
	}
}

static void dep_free(struct deploy_ctx *d, int ino_fd)
{
	struct replica *r;

	if (d->watch >= 0 && ino_fd >= 0)
		inotify_rm_watch(ino_fd, d->watch);
	while ((r = d->reps)) {
		d->reps = r->next;
		if (r->state == REP_EXITED && drv(d)->replica_release)
			drv(d)->replica_release(d->t, d, r);
		else
			free(r->priv);	/* still serving: only forget it */
		free(r);
	}
	free(d);
}

void deploy_step(struct target_ctx *t, struct deploy_ctx **list, int ino_fd)
{
	struct deploy_ctx **pp = list, *d;

	(void)t;
	while ((d = *pp)) {
		dep_step(d);
		watch_log(d, ino_fd);
		if (!d->reps && !d->verb && !live_state(d->obj.state)) {
			*pp = d->next;
			if (drv(d)->undeploy)
				drv(d)->undeploy(d->t, d);
			dep_free(d, ino_fd);
			continue;
		}
		pp = &d->next;
	}
}

int deploy_timeout_ms(const struct deploy_ctx *list, int timeout)
{
	int want = -1;

	for (; list; list = list->next) {
		want = SLOW_TICK_MS;
		if (list->verb)
			return timeout >= 0 && timeout < FAST_TICK_MS ?
			       timeout : FAST_TICK_MS;
		for (const struct replica *r = list->reps; r; r = r->next)
			if (r->state != REP_READY)
				return timeout >= 0 && timeout < FAST_TICK_MS ?
				       timeout : FAST_TICK_MS;
	}
	if (want < 0)
		return timeout;
	return timeout >= 0 && timeout < want ? timeout : want;
}

void deploy_release_all(struct target_ctx *t, struct deploy_ctx **list,
			int ino_fd)
{
	struct deploy_ctx *d;

	(void)t;
	while ((d = *list)) {
		*list = d->next;
		dep_free(d, ino_fd);
	}
}

static int kick_cb(void *arg, const struct obj *o)
{
	struct { int64_t *ids; int n, cap; } *l = arg;
	int64_t *n;

	if (l->n == l->cap) {
		n = realloc(l->ids, (l->cap ? l->cap * 2 : 16) * sizeof(*n));
		if (!n)
			return 1;
		l->ids = n;
		l->cap = l->cap ? l->cap * 2 : 16;
	}
	l->ids[l->n++] = o->id;
	return 0;
}

struct on_target {
	int64_t target;
	int n;
	char first[MLFS_NAME_MAX + 2];
};

static int on_target_cb(void *arg, const struct obj *o)
{
	struct on_target *l = arg;

	if (o->target_id == l->target && !l->n++)
		snprintf(l->first, sizeof(l->first), "%s", o->name);
	return 0;
}

int deployments_busy(struct ws *ws, const struct obj *t, struct err *e)
{
	struct on_target l = { .target = t->id };

	store_list_live_deployments(ws->st, on_target_cb, &l);
	if (!l.n)
		return 0;
	if (l.n == 1)
		return err_set(e, -EBUSY, "target '%s' serves deployment '%s':"
			       " delete it first", t->name, l.first);
	return err_set(e, -EBUSY, "target '%s' serves %d deployments ('%s'"
		       " and others): delete them first", t->name, l.n,
		       l.first);
}

void deploy_start_all(struct ws *ws)
{
	struct { int64_t *ids; int n, cap; } l = { 0 };

	store_list_live_deployments(ws->st, kick_cb, &l);
	for (int i = 0; i < l.n; i++)
		worker_kick(ws, l.ids[i]);
	free(l.ids);
	models_reconcile(ws);
}

/* ---- info.json ------------------------------------------------------------------ */

static void json_setting_word(struct ws *ws, cJSON *j, const char *key,
			      int64_t id, int file)
{
	char word[256];
	struct err e;

	if (setting_word(ws, id, file, key, word, sizeof(word), &e))
		word[0] = '\0';
	cJSON_AddStringToObject(j, key, word);
}

static void json_replicas(cJSON *j, const char *dd)
{
	cJSON *arr = cJSON_AddArrayToObject(j, "replicas"), *r;
	const char *p = strstr(dd, "reps=");
	int slot, gen, restarts, n;
	long pid;
	char st;

	static const struct { char c; const char *name; } names[] = {
		{ 's', "starting" }, { 'r', "ready" }, { 't', "stopping" },
		{ 'x', "exited" }, { 'w', "restarting" },
	};

	for (p = p ? p + 5 : NULL; p && sscanf(p, "%d:%d:%ld:%c:%d,%n", &slot,
						  &gen, &pid, &st, &restarts,
						  &n) == 5; p += n) {
		r = cJSON_CreateObject();
		cJSON_AddNumberToObject(r, "slot", slot);
		cJSON_AddNumberToObject(r, "generation", gen);
		cJSON_AddNumberToObject(r, "pid", pid);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].c == st)
				cJSON_AddStringToObject(r, "state",
							names[i].name);
		cJSON_AddNumberToObject(r, "restarts", restarts);
		cJSON_AddItemToArray(arr, r);
	}
}

static void json_when(cJSON *j, const char *key, double t)
{
	time_t tt = (time_t)t;
	char buf[32];
	struct tm tm;

	if (t <= 0) {
		cJSON_AddNullToObject(j, key);
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(j, key, buf);
}

void deployment_json(struct ws *ws, cJSON *j, const struct obj *o)
{
	struct kv_list cfg = { 0 };
	struct err e;
	struct obj t;
	cJSON *c;

	json_setting_word(ws, j, "model", o->id, F_MODEL);
	if (live_state(o->state) && !ws_get(ws, o->target_id, &t))
		cJSON_AddStringToObject(j, "target", t.name);
	else
		json_setting_word(ws, j, "target", o->id, F_TARGET);
	if (!ws_load_config(ws, o->id, &cfg, &e)) {
		c = cJSON_AddObjectToObject(j, "config");
		for (int i = 0; i < cfg.n; i++)
			cJSON_AddStringToObject(c, cfg.items[i].key,
						cfg.items[i].value);
	}
	kv_free(&cfg);
	cJSON_AddStringToObject(j, "scoring_uri", o->backend_id);
	if (ddata_long(o->ddata, "port"))
		cJSON_AddNumberToObject(j, "port", ddata_long(o->ddata, "port"));
	cJSON_AddNumberToObject(j, "generation", ddata_long(o->ddata, "gen"));
	json_when(j, "requested", o->queued);
	json_when(j, "healthy_since", is_state(o, DS_HEALTHY) ? o->started : 0);
	json_replicas(j, o->ddata);
}
