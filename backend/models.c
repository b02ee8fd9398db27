// SPDX-License-Identifier: MIT
/*
 * Models: `register NAME [PATH]` makes a version of models/NAME from a
 * Completed run's outputs (hard links to them: ws_user_file_write parts a
 * file from the run's before it is changed); a version that a deployment
 * serves is InUse (its files are read-only, rmdir says EBUSY) until no
 * deployment does.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../targets/copy.h"
#include "deploy_i.h"
#include "log.h"
#include "ws_i.h"

/* ---- register ------------------------------------------------------------ */

/* PATH of `register NAME PATH`: relative, inside outputs/, no "..". */
static int path_valid(const char *p, struct err *e)
{
	const char *s = p;

	if (p[0] == '/')
		return err_set(e, -EINVAL, "PATH '%s' must be relative to the"
			       " run's outputs/", p);
	while (*s) {
		size_t n = strcspn(s, "/");

		if ((n == 2 && !strncmp(s, "..", 2)))
			return err_set(e, -EINVAL, "PATH '%s' must stay inside"
				       " the run's outputs/", p);
		s += n;
		while (*s == '/')
			s++;
	}
	return 0;
}

static int dir_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int empty = 1;

	while (d && empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return empty;
}

/* The file or folder to register: @src (a folder) and @name in it, or
 * name "" for the whole of outputs/. */
static int register_source(struct ws *ws, const struct obj *run,
			   const struct ctl_cmd *c, char *src, char *name,
			   struct err *e)
{
	char outputs[PATH_MAX], path[PATH_MAX + 256], *slash;
	struct stat st;

	ws_obj_path(ws, run->id, RUN_WORK "/outputs", outputs);
	name[0] = '\0';
	if (c->argc < 3) {
		snprintf(src, PATH_MAX, "%s", outputs);
		if (dir_empty(outputs))
			return err_set(e, -ENOENT, "run '%s' has nothing in"
				       " outputs/ to register", run->name);
		return 0;
	}
	if (path_valid(c->argv[2], e))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", outputs, c->argv[2]);
	while (strlen(path) > strlen(outputs) + 1 &&
	       path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	if (lstat(path, &st) || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return err_set(e, -ENOENT, "runs/%s/outputs/%s is not a file"
			       " or folder", run->name, c->argv[2]);
	slash = strrchr(path, '/');
	*slash = '\0';
	snprintf(src, PATH_MAX, "%s", path);
	snprintf(name, NAME_MAX + 1, "%s", slash + 1);
	return 0;
}

/* A model is its creator's: only they (or root) add versions to it.  The
 * run's owner is who registers (only they, or root, write its ctl). */
static int model_owned(const struct obj *run, const struct obj *m,
		       struct err *e)
{
	if (run->uid == 0 || run->uid == m->uid)
		return 0;
	return err_set(e, -EACCES, "model '%s' belongs to uid %u: only its"
		       " owner adds versions to it (register under another"
		       " name)", m->name, m->uid);
}

/* models/NAME, made when missing.  0 or -errno with a sentence. */
static int model_get(struct ws *ws, const struct obj *run, const char *name,
		     struct obj *m, struct err *e)
{
	int rc;

	if (!ws_find(ws, K_MODEL, 0, name, m))
		return model_owned(run, m, e);
	rc = ws_create(ws, K_MODEL, 0, name, run->uid, run->gid, m, e);
	if (rc == -EEXIST && !ws_find(ws, K_MODEL, 0, name, m))
		return model_owned(run, m, e);
	if (!rc && ws->hooks.inval_entry)
		ws->hooks.inval_entry(ws->hooks.ctx, K_MODEL, 0, name);
	return rc;
}

/* A new version of @m named by the next integer (retried on a race). */
static int version_new(struct ws *ws, const struct obj *run,
		       const struct obj *m, struct obj *v, struct err *e)
{
	char name[32];
	int rc = -EEXIST;

	for (int i = 0; i < 8 && rc == -EEXIST; i++) {
		snprintf(name, sizeof(name), "%lld",
			 (long long)store_next_version(ws->st, m->id));
		memset(e, 0, sizeof(*e));
		rc = ws_create(ws, K_VERSION, m->id, name, run->uid, run->gid,
			       v, e);
	}
	return rc;
}

static void source_save(struct ws *ws, const struct obj *run,
			const struct obj *v, const struct ctl_cmd *c)
{
	char text[512];

	snprintf(text, sizeof(text), "run = %s\nrun_id = %lld\npath = outputs%s%s\n",
		 run->name, (long long)run->id, c->argc > 2 ? "/" : "",
		 c->argc > 2 ? c->argv[2] : "");
	store_text_put(ws->st, v->id, TEXT_VERSION_SOURCE, text, strlen(text));
}

int model_register(struct ws *ws, const struct obj *run,
		   const struct ctl_cmd *c, struct err *e)
{
	char src[PATH_MAX], name[NAME_MAX + 1], dst[PATH_MAX], ev[256];
	struct obj m, v;
	int rc;

	if (c->argc < 2 || c->argc > 3)
		return err_set(e, -EINVAL, "usage: register NAME [PATH]");
	if (strcmp(run->state, RS_COMPLETED))
		return err_set(e, -EBUSY, "run '%s' is %s: register works only"
			       " on a Completed run", run->name, run->state);
	rc = name_valid(c->argv[1], e);
	if (!rc)
		rc = register_source(ws, run, c, src, name, e);
	if (!rc)
		rc = model_get(ws, run, c->argv[1], &m, e);
	if (!rc)
		rc = version_new(ws, run, &m, &v, e);
	if (rc)
		return rc;
	ws_obj_path(ws, v.id, RUN_FILES, dst);
	/* new names of the outputs' files, not copies: instant, however big
	 * the model (its files are parted from the run's when written) */
	rc = link_into(src, name[0] ? name : NULL, dst, e);
	if (!rc && geteuid() == 0 && run->uid)
		chown_tree(dst, run->uid, run->gid);
	if (rc) {
		struct err ignore = { { 0 } };

		ws_remove(ws, v.id, &ignore);
		return err_set(e, -EIO, "cannot register: %s", e->msg);
	}
	source_save(ws, run, &v, c);
	snprintf(ev, sizeof(ev), "%s:%s", m.name, v.name);
	snprintf(src, sizeof(src), "registered from run %s", run->name);
	ws_event(ws, K_VERSION, ev, src);
	ws_inval(ws, m.id, FBIT(F_DIR));
	if (ws->hooks.inval_entry)
		ws->hooks.inval_entry(ws->hooks.ctx, K_VERSION, m.id, v.name);
	return 0;
}

/* ---- versions in use ----------------------------------------------------- */

struct users {
	int n;
	char names[256];
};

static int user_cb(void *arg, const struct obj *o)
{
	struct users *u = arg;
	size_t l = strlen(u->names);

	if (u->n++ < 4)
		snprintf(u->names + l, sizeof(u->names) - l, "%s%s",
			 l ? ", " : "", o->name);
	return 0;
}

int version_busy(struct ws *ws, const struct obj *o, struct err *e)
{
	struct users u = { 0 };
	struct obj m;

	if (strcmp(o->state, VS_IN_USE))
		return 0;
	store_list_version_users(ws->st, o->id, user_cb, &u);
	if (store_get(ws->st, o->parent, &m))
		snprintf(m.name, sizeof(m.name), "?");
	return err_set(e, -EBUSY, "model %s:%s is in use by deployment %s:"
		       " delete the deployment first", m.name, o->name,
		       u.n ? u.names : "(one going away)");
}

/* One transaction: count the users and set the state to match. */
static int sync_one(struct ws *ws, int64_t id, struct obj *v)
{
	struct users u = { 0 };
	const char *want;
	int rc;

	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = store_get(ws->st, id, v);
	if (rc || v->kind != K_VERSION)
		goto out_rollback;
	rc = store_list_version_users(ws->st, id, user_cb, &u);
	if (rc)
		goto out_rollback;
	want = u.n ? VS_IN_USE : VS_READY;
	if (!strcmp(v->state, want))
		goto out_rollback;	/* nothing to change */
	snprintf(v->state, sizeof(v->state), "%s", want);
	v->changed = now_s();
	rc = store_update(ws->st, v);
	if (rc)
		goto out_rollback;
	rc = store_commit(ws->st);
	return rc ? rc : 1;

out_rollback:
	store_rollback(ws->st);
	return rc;
}

void models_sync_use(struct ws *ws, int64_t id)
{
	char name[2 * MLFS_NAME_MAX + 2];
	struct obj v, m;

	if (id <= 0 || sync_one(ws, id, &v) != 1)
		return;
	if (store_get(ws->st, v.parent, &m))
		return;
	snprintf(name, sizeof(name), "%s:%s", m.name, v.name);
	ws_event(ws, K_VERSION, name, v.state);
	ws_inval(ws, v.id, FBIT(F_INFO) | FBIT(F_DIR));
}

struct idlist {
	int64_t *ids;
	int n, cap;
};

static int id_cb(void *arg, const struct obj *o)
{
	struct idlist *l = arg;
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

void models_reconcile(struct ws *ws)
{
	struct idlist l = { 0 };

	store_list_kind_state(ws->st, K_VERSION, VS_IN_USE, id_cb, &l);
	for (int i = 0; i < l.n; i++)
		models_sync_use(ws, l.ids[i]);
	free(l.ids);
}

/* ---- info.json ----------------------------------------------------------- */

static int json_user_cb(void *arg, const struct obj *o)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(o->name));
	return 0;
}

void version_json(struct ws *ws, cJSON *j, const struct obj *o)
{
	struct kv_list src = { 0 };
	struct err e;
	struct obj m;
	size_t len;
	char *buf;

	if (!store_get(ws->st, o->parent, &m))
		cJSON_AddStringToObject(j, "model", m.name);
	cJSON_AddStringToObject(j, "version", o->name);
	if (!ws_read_text(ws, o->id, TEXT_VERSION_SOURCE, &buf, &len)) {
		if (len && !kv_parse(buf, len, &src, &e)) {
			const char *run = kv_get(&src, "run");
			const char *path = kv_get(&src, "path");

			cJSON_AddStringToObject(j, "run", run ? run : "");
			cJSON_AddStringToObject(j, "run_path",
						path ? path : "");
		} else {
			cJSON_AddNullToObject(j, "run");
		}
		kv_free(&src);
		free(buf);
	}
	store_list_version_users(ws->st, o->id, json_user_cb,
				 cJSON_AddArrayToObject(j, "deployments"));
}
