// SPDX-License-Identifier: MIT
/*
 * Deployments on FUSE request threads: the ctl verbs (deploy, restart,
 * delete), checked inside the write (model, config, entry script, target,
 * port) and handed to the target's worker by writing the request text
 * (TEXT_DEPLOY_REQ) and the state, then a kick; whether a target still
 * serves deployments; info.json.  deploy_start_all runs once, in ws_start.
 * The worker (deploy_sm.c) owns every struct deploy_ctx; nothing here
 * touches one.  See deploy_i.h for how the fields of struct obj are used.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/vec.h"
#include "deploy_parts.h"
#include "env_i.h"
#include "ws_i.h"

const char *const verb_names[] = { "", "deploy", "restart", "delete" };

/* ---- settings, read inside the write ---------------------------------------- */

/* The model version named in `model`: NAME:VERSION.  Fills s->model. */
static int check_model(struct ws *ws, const struct obj *o,
		       struct deploy_spec *s, struct obj *v, struct err *e)
{
	char text[2 * MLFS_NAME_MAX + 8], *colon;
	struct obj m;
	int rc;

	rc = ws_read_word(ws, o->id, F_MODEL, "model", text, sizeof(text), e);
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

/* `env` as it will be used: the write let a last line without its
 * newline through (it may have been growing). */
static int check_env(struct ws *ws, const struct obj *o, struct err *e)
{
	struct kv_list env = { 0 };
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, o->id, F_ENV, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read env");
	rc = deploy_env_parse(buf, len, &env, e);
	free(buf);
	kv_free(&env);
	return rc;
}

/* `config` and `env`, and the entry script config names in the
 * deployment's files. */
int check_config(struct ws *ws, const struct obj *o, struct deploy_spec *s,
		 struct err *e)
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
	if (!rc)
		rc = check_env(ws, o, e);
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

	rc = ws_read_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e);
	if (rc)
		return rc;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (ws_find(ws, K_TARGET, 0, name, t))
		return err_set(e, -ENOENT, "unknown target '%s': see targets/",
			       name);
	snprintf(type, sizeof(type), "%s", t->type);
	if (!type[0] && ws_read_word(ws, t->id, F_TYPE, "type", type,
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
	if (t->state != TS_SUCCEEDED)
		return err_set(e, -EBUSY, "target '%s' is %s, not Succeeded:"
			       " provision it first", name,
			       state_name(t->state));
	return 0;
}

void default_host(struct deploy_spec *s, const struct driver *drv)
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
	    o->dep.port == s->port)
		return 0;
	rc = ws_load_config(ws, t->id, &cfg, e);
	if (!rc)
		rc = drv->check_deploy(&cfg, s, e);
	kv_free(&cfg);
	return rc;
}

/* `environment`: a Ready one, on a target whose replicas can run in it
 * (local: podman here; ssh: the host's podman, the image copied there),
 * for a deployment of a user's (as runs: run.c). */
static int check_environment(struct ws *ws, const struct obj *o,
			     const struct driver *drv, struct err *e)
{
	char image[128];
	int rc;

	rc = env_run_image(ws, o, image, sizeof(image), e);
	if (rc || !image[0])
		return rc;
	if (strcmp(drv->type, "local") && strcmp(drv->type, "ssh"))
		return err_set(e, -EINVAL, "environment: replicas run in an"
			       " environment on a local or ssh target only"
			       " (this one is %s)", drv->type);
	if (o->uid == 0 || geteuid() != 0)
		return err_set(e, -EINVAL, "environment: %s", o->uid == 0 ?
			       "a deployment of root cannot run in an"
			       " environment (a container never gets the"
			       " host's root)" : "deployments in environments"
			       " need a daemon that runs as root");
	return 0;
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

long req_serial(struct ws *ws, int64_t id, int *verb)
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
			       o->name, state_name(o->state));
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
	int64_t old_version = o->dep.model_version;
	char text[64];
	struct obj n;
	int rc = -EAGAIN, dummy;

	for (int i = 0; i < 4 && rc == -EAGAIN; i++) {
		rc = verb_allowed(o, verb, e);
		if (rc)
			return rc;
		n = *o;
		n.state = DS_TRANSITIONING;
		n.error[0] = '\0';
		n.queued = wall_s();
		if (version)
			n.dep.model_version = version;
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
	models_sync_use(ws, o->dep.model_version);
	if (old_version != o->dep.model_version)
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
	rc = check_environment(ws, o, drv, e);
	if (rc)
		return rc;
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
	if (!o->dep.gen && !o->dep.last_gen)
		return err_set(e, -EBUSY, "deployment '%s' has never been"
			       " deployed: use deploy", o->name);
	if (ws_get(ws, o->dep.model_version, &v))
		return err_set(e, -ENOENT, "the model version deployment '%s'"
			       " served is gone: deploy another", o->name);
	if (ws_get(ws, o->target_id, &t) || t.state != TS_SUCCEEDED)
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

struct kicks {
	int64_t *v;
	size_t n, cap;
};

static int kick_cb(void *arg, const struct obj *o)
{
	struct kicks *l = arg;

	return vec_push(l, o->id) ? 1 : 0;
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
	struct kicks l = { 0 };

	store_list_live_deployments(ws->st, kick_cb, &l);
	for (size_t i = 0; i < l.n; i++)
		worker_kick(ws, l.v[i]);
	vec_free(&l);
	models_reconcile(ws);
}

/* ---- info.json ------------------------------------------------------------------ */

static void json_setting_word(struct ws *ws, cJSON *j, const char *key,
			      int64_t id, int file)
{
	char word[256];
	struct err e;

	if (ws_read_word(ws, id, file, key, word, sizeof(word), &e))
		word[0] = '\0';
	cJSON_AddStringToObject(j, key, word);
}

static void json_replicas(cJSON *j, const struct dep_row *d)
{
	cJSON *arr = cJSON_AddArrayToObject(j, "replicas"), *r;
	const char *state;

	for (int i = 0; i < d->nreps; i++) {
		r = cJSON_CreateObject();
		cJSON_AddNumberToObject(r, "slot", d->reps[i].slot);
		cJSON_AddNumberToObject(r, "generation", d->reps[i].gen);
		cJSON_AddNumberToObject(r, "pid", d->reps[i].pid);
		state = dep_rep_state_name(d->reps[i].state);
		if (state)
			cJSON_AddStringToObject(r, "state", state);
		cJSON_AddNumberToObject(r, "restarts", d->reps[i].restarts);
		cJSON_AddItemToArray(arr, r);
	}
}

/* The exact image the serving generation runs in (none: no key). */
static void json_image(struct ws *ws, cJSON *j, const struct obj *o)
{
	char image[128];

	deploy_gen_image(ws, o->id, o->dep.gen, image, sizeof(image));
	if (image[0])
		cJSON_AddStringToObject(j, "image", image);
}

void deploy_replica_counts(const struct obj *o, int *ready, int *desired)
{
	const struct dep_row *d = &o->dep;
	int gen = d->gen;

	*ready = *desired = 0;
	if (!live_state(o->state))
		return;
	for (int i = 0; !d->gen && i < d->nreps; i++)
		if (d->reps[i].gen > gen)
			gen = d->reps[i].gen;
	for (int i = 0; i < d->nreps; i++) {
		if (d->reps[i].gen != gen)
			continue;
		*ready += d->reps[i].state == REP_READY;
		*desired += d->reps[i].state != REP_STOPPING &&
			    d->reps[i].state != REP_EXITED;
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

static void json_counts(cJSON *j, const struct obj *o)
{
	int ready, desired;

	deploy_replica_counts(o, &ready, &desired);
	cJSON_AddNumberToObject(j, "replicas_ready", ready);
	cJSON_AddNumberToObject(j, "replicas_desired", desired);
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
	json_setting_word(ws, j, "endpoint", o->id, F_ENDPOINT);
	json_setting_word(ws, j, "environment", o->id, F_ENVIRONMENT);
	json_image(ws, j, o);
	if (!ws_load_config(ws, o->id, &cfg, &e)) {
		c = cJSON_AddObjectToObject(j, "config");
		for (int i = 0; i < cfg.n; i++)
			cJSON_AddStringToObject(c, cfg.items[i].key,
						cfg.items[i].value);
	}
	kv_free(&cfg);
	cJSON_AddStringToObject(j, "scoring_uri", o->dep.scoring_uri);
	if (o->dep.port)
		cJSON_AddNumberToObject(j, "port", o->dep.port);
	cJSON_AddNumberToObject(j, "generation", o->dep.gen);
	json_when(j, "requested", o->queued);
	json_when(j, "healthy_since", is_state(o, DS_HEALTHY) ? o->started : 0);
	json_replicas(j, &o->dep);
	json_counts(j, o);
}
