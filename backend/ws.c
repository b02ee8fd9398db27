// SPDX-License-Identifier: MIT
/*
 * The workspace: objects, control files, state machines, events.
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "deploy_i.h"
#include "../lib/log.h"
#include "userfile.h"
#include "ws_i.h"

/* ---- control-file tables ------------------------------------------------ */

static const struct file_desc target_files[] = {
	{ "type",	F_TYPE,		FD_SETTING },
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "error",	F_ERROR,	FD_GEN },
	{ "nodes",	F_NODES,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

static const struct file_desc run_files[] = {
	{ "command",	F_COMMAND,	FD_SETTING },
	{ "target",	F_TARGET,	FD_SETTING },
	{ "env",	F_ENV,		FD_SETTING },
	{ "resources",	F_RESOURCES,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "exit_code",	F_EXIT_CODE,	FD_GEN },
	{ "log",	F_LOG,		FD_DISK },
	{ "metrics",	F_METRICS,	FD_DISK },
	{ "outputs",	F_OUTPUTS,	FD_DIRECTORY },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

static const struct file_desc deployment_files[] = {
	{ "model",	F_MODEL,	FD_SETTING },
	{ "target",	F_TARGET,	FD_SETTING },
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "scoring_uri", F_SCORING_URI,	FD_GEN },
	{ "key",	F_KEY,		FD_GEN | FD_SECRET },
	{ "log",	F_LOG,		FD_DISK },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

static const struct file_desc version_files[] = {
	{ "info.json",	F_INFO,		FD_GEN },
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

const struct file_desc *ws_files(int kind, int *n)
{
	switch (kind) {
	case K_TARGET:
		*n = N(target_files);
		return target_files;
	case K_RUN:
		*n = N(run_files);
		return run_files;
	case K_DEPLOYMENT:
		*n = N(deployment_files);
		return deployment_files;
	case K_VERSION:
		*n = N(version_files);
		return version_files;
	default:
		*n = 0;
		return NULL;
	}
}

const struct file_desc *ws_file_by_name(int kind, const char *name)
{
	const struct file_desc *f;
	int n;

	f = ws_files(kind, &n);
	for (int i = 0; i < n; i++)
		if (!strcmp(f[i].name, name))
			return &f[i];
	return NULL;
}

const struct file_desc *ws_file_by_id(int kind, int file)
{
	const struct file_desc *f;
	int n;

	f = ws_files(kind, &n);
	for (int i = 0; i < n; i++)
		if (f[i].file == file)
			return &f[i];
	return NULL;
}

const char *kind_name(int kind)
{
	static const char *const names[K_COUNT] = {
		[K_TARGET] = "target", [K_RUN] = "run",
		[K_DEPLOYMENT] = "deployment", [K_MODEL] = "model",
		[K_VERSION] = "model",
	};

	return kind > 0 && kind < K_COUNT ? names[kind] : "?";
}

/* ---- paths and small helpers -------------------------------------------- */

const char *ws_state_dir(const struct ws *ws)
{
	return ws->dir;
}

const char *ws_events_path(const struct ws *ws)
{
	return ws->events_path;
}

void ws_obj_path(const struct ws *ws, int64_t id, const char *sub, char *buf)
{
	if (sub)
		snprintf(buf, PATH_MAX, "%s/objects/%lld/%s", ws->dir,
			 (long long)id, sub);
	else
		snprintf(buf, PATH_MAX, "%s/objects/%lld", ws->dir,
			 (long long)id);
}

static void iso_time(double t, char *buf, size_t sz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		buf[0] = '\0';
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The display name of @o for events: runs/x is "x", versions "m:3". */
static void display_name(struct ws *ws, const struct obj *o, char *buf,
			 size_t sz)
{
	struct obj m;

	if (o->kind == K_VERSION && !store_get(ws->st, o->parent, &m))
		snprintf(buf, sz, "%s:%s", m.name, o->name);
	else
		snprintf(buf, sz, "%s", o->name);
}

/* ---- printable text ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at @p (of @n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t need;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/*
 * text_clean - copy @in into @out (NUL-terminated, cut to fit) as
 * printable UTF-8: control bytes, DEL and invalid UTF-8 become \xNN, so
 * that events, error files and info.json stay readable whatever users or
 * engines wrote.
 */
static void text_clean(const char *in, char *out, size_t sz)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, n = strlen(in), l;

	while (*p && o + 5 < sz) {
		l = utf8_len(p, n - (size_t)(p - (const unsigned char *)in));
		if (l == 1 && *p >= 0x20 && *p != 0x7f) {
			out[o++] = (char)*p++;
		} else if (l > 1) {
			memcpy(out + o, p, l);
			o += l;
			p += l;
		} else {
			o += snprintf(out + o, sz - o, "\\x%02x", *p++);
		}
	}
	out[o] = '\0';
}

/* ---- events --------------------------------------------------------------- */

void ws_event_line(struct ws *ws, const char *kind, const char *name,
		   const char *text)
{
	char line[ERR_MSG_MAX + 256], ts[32];
	off_t old;
	int n;

	char clean[ERR_MSG_MAX + 64];

	text_clean(text, clean, sizeof(clean));
	iso_time(now_s(), ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s %s %s %s\n", ts, kind, name, clean);
	if (n >= (int)sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	for (int i = 0; i < n - 1; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	pthread_mutex_lock(&ws->ev_lock);
	old = ws->events_size;
	if (write(ws->events_fd, line, n) == n)
		ws->events_size += n;
	else
		log_err("events: cannot append: %s", strerror(errno));
	space_events_room(ws);
	pthread_mutex_unlock(&ws->ev_lock);
	if (ws->hooks.inval_events)
		ws->hooks.inval_events(ws->hooks.ctx, old);
}

void ws_event(struct ws *ws, int kind, const char *name, const char *text)
{
	ws_event_line(ws, kind_name(kind), name, text);
}

static void obj_event(struct ws *ws, const struct obj *o, const char *text)
{
	char name[2 * MLFS_NAME_MAX + 2];

	display_name(ws, o, name, sizeof(name));
	ws_event_line(ws, kind_name(o->kind), name, text);
}

/* ---- invalidation --------------------------------------------------------- */

void ws_inval(struct ws *ws, int64_t id, unsigned mask)
{
	if (ws->hooks.inval_files && mask)
		ws->hooks.inval_files(ws->hooks.ctx, id, mask);
}

/* Files that change with every state transition. */
#define STATE_FILES (FBIT(F_STATUS) | FBIT(F_INFO) | FBIT(F_ERROR) | \
		     FBIT(F_EXIT_CODE) | FBIT(F_CTL))
#define RUN_SETTINGS (FBIT(F_COMMAND) | FBIT(F_TARGET) | FBIT(F_ENV) | \
		      FBIT(F_RESOURCES))
#define TARGET_SETTINGS (FBIT(F_TYPE) | FBIT(F_CONFIG))

static void change_begin(struct ws *ws, int64_t id)
{
	if (ws->hooks.change_begin)
		ws->hooks.change_begin(ws->hooks.ctx, id);
}

/* One try of ws_update_obj: the row as it was into @cur. */
static int update_once(struct ws *ws, struct obj *o, const char *expect,
		       struct obj *cur)
{
	int rc;

	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = store_get(ws->st, o->id, cur);
	if (rc)
		goto out_rollback;
	if (expect && strcmp(cur->state, expect)) {
		*o = *cur;
		rc = -EAGAIN;
		goto out_rollback;
	}
	o->changed = now_s();
	o->cancel |= cur->cancel;	/* set by ctl writes, never cleared */
	if (strcmp(o->error, cur->error)) {
		char clean[ERR_MSG_MAX];

		text_clean(o->error, clean, sizeof(clean));
		memcpy(o->error, clean, sizeof(clean));
	}
	rc = store_update(ws->st, o);
	if (rc)
		goto out_rollback;
	return store_commit(ws->st);

out_rollback:
	store_rollback(ws->st);
	return rc;
}

/*
 * ws_update_obj - write @o in one transaction if the stored state is still
 * @expect (NULL: any).  Logs the state change to events and invalidates
 * @mask plus the state files.  0, -EAGAIN (then @o is reloaded), -errno.
 *
 * change_begin (no lock held) lets the FUSE layer keep the row as it was:
 * the kernel may still ask for the old bytes of a file it looked up.
 */
int ws_update_obj(struct ws *ws, struct obj *o, const char *expect,
		  unsigned mask)
{
	struct obj cur, want = *o;
	int rc;

	change_begin(ws, o->id);
	/* the workspace's own bookkeeping goes on when the disk is full */
	space_before_write(ws);
	rc = update_once(ws, o, expect, &cur);
	if (rc == -ENOSPC && space_use_reserve(ws)) {
		*o = want;
		rc = update_once(ws, o, expect, &cur);
	}
	if (rc)
		return rc;
	/* the kernel's caches first: whoever sees the events line and reads
	 * the object's files gets the new bytes */
	ws_inval(ws, o->id, mask | STATE_FILES);
	if (strcmp(cur.state, o->state))
		obj_event(ws, o, o->state);
	return 0;
}

/*
 * refuse - record a refusal: the sentence goes to the object's `error` and
 * to events.  Returns @rc.
 */
static int refuse(struct ws *ws, struct obj *o, int rc, const struct err *e)
{
	struct obj cur;
	char text[ERR_MSG_MAX + 16];

	if (!store_get(ws->st, o->id, &cur)) {
		/* expect the state just read: a worker's transition made
		 * meanwhile must not be undone by this stale copy */
		for (int i = 0; i < 3; i++) {
			snprintf(cur.error, sizeof(cur.error), "%s", e->msg);
			if (ws_update_obj(ws, &cur, cur.state, FBIT(F_ERROR) |
					  FBIT(F_INFO)) != -EAGAIN)
				break;
		}
		*o = cur;
	}
	snprintf(text, sizeof(text), "error: %s", e->msg);
	obj_event(ws, o, text);
	return rc;
}

/* ---- lookups ------------------------------------------------------------ */

int ws_get(struct ws *ws, int64_t id, struct obj *o)
{
	return store_get(ws->st, id, o);
}

int ws_find(struct ws *ws, int kind, int64_t parent, const char *name,
	    struct obj *o)
{
	return store_find(ws->st, kind, parent, name, o);
}

int ws_list(struct ws *ws, int kind, int64_t parent, int64_t after,
	    int (*cb)(void *arg, const struct obj *o), void *arg)
{
	return store_list(ws->st, kind, parent, after, cb, arg);
}

int ws_read_text(struct ws *ws, int64_t id, int file, char **buf, size_t *len)
{
	int rc = store_text_get(ws->st, id, file, buf, len);

	if (rc == -ENOENT) {
		*buf = strdup("");
		*len = 0;
		rc = *buf ? 0 : -ENOMEM;
	}
	return rc;
}

int ws_load_config(struct ws *ws, int64_t id, struct kv_list *cfg,
		   struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, F_CONFIG, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read config: %s", strerror(-rc));
	rc = kv_parse(buf, len, cfg, e);
	free(buf);
	return rc;
}

/* ---- creation, removal, rename ---------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The folder of @o, and for objects with user files their files/ folder,
 * owned by the object's creator: a root daemon makes and changes the
 * files below it as their caller (fs/creds.h), so the creator must own
 * it.  Given by fd, never by path: nothing below objects/ID is followed.
 */
static int make_obj_dirs(struct ws *ws, const struct obj *o)
{
	char path[PATH_MAX];
	int dir, files, rc;

	/* 0711: a run executing as its creator must reach its working copy,
	 * but nobody may list the folders */
	ws_obj_path(ws, o->id, NULL, path);
	rc = mkdir_p(path, 0711);
	if (rc || (o->kind != K_RUN && o->kind != K_DEPLOYMENT &&
		   o->kind != K_VERSION))
		return rc;
	dir = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	if (mkdirat(dir, RUN_FILES, 0755) && errno != EEXIST)
		rc = -errno;
	files = rc ? -1 : openat(dir, RUN_FILES, O_RDONLY | O_DIRECTORY |
				 O_NOFOLLOW | O_CLOEXEC);
	if (!rc && files < 0)
		rc = -errno;
	if (!rc && geteuid() == 0 && fchown(files, o->uid, o->gid))
		rc = -errno;
	if (files >= 0)
		close(files);
	close(dir);
	return rc;
}

static const char *initial_state(int kind)
{
	switch (kind) {
	case K_TARGET:
		return TS_DRAFT;
	case K_RUN:
		return RS_DRAFT;
	case K_DEPLOYMENT:
		return DS_DRAFT;
	default:
		return "Ready";
	}
}

int ws_create(struct ws *ws, int kind, int64_t parent, const char *name,
	      uint32_t uid, uint32_t gid, struct obj *out, struct err *e)
{
	struct obj o = { 0 };
	int rc;

	rc = name_valid(name, e);
	if (rc)
		return rc;
	if (space_full(ws))
		return err_set(e, -ENOSPC, "%s '%s' was not made: no space left"
			       " on the file system of the state dir %s",
			       kind_name(kind), name, ws->dir);
	o.kind = kind;
	o.parent = parent;
	snprintf(o.name, sizeof(o.name), "%s", name);
	snprintf(o.state, sizeof(o.state), "%s", initial_state(kind));
	o.uid = uid;
	o.gid = gid;
	/* whatever the umask: a target runs on its creator's credentials
	 * (ssh key, Slurm token), so it is theirs until they share it */
	o.mode = kind == K_TARGET ? 0700 : 0755;
	o.created = o.changed = now_s();
	o.exit_code = -1;
	rc = store_insert(ws->st, &o);
	if (rc == -EEXIST)
		return err_set(e, rc, "%s '%s' already exists", kind_name(kind),
			       name);
	if (rc)
		return err_set(e, rc, "cannot record %s '%s': %s",
			       kind_name(kind), name, strerror(-rc));
	rc = make_obj_dirs(ws, &o);
	if (rc) {
		store_delete(ws->st, o.id);
		return err_set(e, rc, "cannot create the folder of %s '%s': %s",
			       kind_name(kind), name, strerror(-rc));
	}
	obj_event(ws, &o, "created");
	*out = o;
	return 0;
}

static int busy_reason(struct ws *ws, const struct obj *o, struct err *e)
{
	int n;

	switch (o->kind) {
	case K_RUN:
		if (run_state_active(o->state))
			return err_set(e, -EBUSY, "run '%s' is %s: cancel it"
				       " first", o->name, o->state);
		return 0;
	case K_TARGET:
		if (!strcmp(o->name, "local"))
			return err_set(e, -EPERM, "the local target is built in"
				       " and cannot be removed");
		if (!strcmp(o->state, TS_CREATING) ||
		    !strcmp(o->state, TS_UPDATING) ||
		    !strcmp(o->state, TS_DELETING))
			return err_set(e, -EBUSY, "target '%s' is %s", o->name,
				       o->state);
		n = store_count_active_runs(ws->st, o->id);
		if (n > 0)
			return err_set(e, -EBUSY, "target '%s' has %d active"
				       " run%s", o->name, n, n == 1 ? "" : "s");
		return deployments_busy(ws, o, e);
	case K_DEPLOYMENT:
		if (strcmp(o->state, DS_DRAFT) && strcmp(o->state, DS_FAILED))
			return err_set(e, -EBUSY, "deployment '%s' is %s:"
				       " delete it first", o->name, o->state);
		return 0;
	case K_VERSION:
		return version_busy(ws, o, e);
	default:
		return 0;
	}
}

/* Move the object's folder to the trash; the worker deletes it. */
static void trash_obj(struct ws *ws, int64_t id)
{
	char from[PATH_MAX], to[PATH_MAX];

	ws_obj_path(ws, id, NULL, from);
	snprintf(to, sizeof(to), "%s/trash/%lld", ws->dir, (long long)id);
	if (rename(from, to) && errno != ENOENT)
		log_warn("cannot move %s to the trash: %s", from,
			 strerror(errno));
	worker_kick(ws, 0);
}

int ws_busy(struct ws *ws, const struct obj *o)
{
	struct err e;

	return busy_reason(ws, o, &e) == -EBUSY;
}

void ws_refuse(struct ws *ws, int64_t id, int rc, const struct err *e)
{
	struct obj o;

	if (!store_get(ws->st, id, &o))
		refuse(ws, &o, rc, e);
}

static int count_cb(void *arg, const struct obj *o)
{
	(void)o;
	++*(int *)arg;
	return 1;
}

static int remove_once(struct ws *ws, int64_t id, struct err *e)
{
	struct obj o;
	int rc, n = 0;

	rc = store_begin(ws->st);
	if (rc)
		return err_set(e, rc, "the store is unavailable");
	rc = store_get(ws->st, id, &o);
	if (rc) {
		store_rollback(ws->st);
		return err_set(e, rc, "no such object");
	}
	rc = busy_reason(ws, &o, e);
	if (!rc && o.kind == K_MODEL) {
		store_list(ws->st, K_VERSION, o.id, 0, count_cb, &n);
		if (n)
			rc = err_set(e, -ENOTEMPTY, "model '%s' still has"
				     " versions", o.name);
	}
	if (!rc)
		rc = store_delete(ws->st, id);
	if (rc) {
		store_rollback(ws->st);
		if (!e->msg[0])
			err_set(e, rc, "cannot remove %s", o.name);
		if (rc == -EBUSY || rc == -EPERM || rc == -ENOTEMPTY)
			refuse(ws, &o, rc, e);
		return rc;
	}
	rc = store_commit(ws->st);
	if (rc)
		return err_set(e, rc, "cannot remove %s: the store failed",
			       o.name);
	obj_event(ws, &o, "removed");
	trash_obj(ws, id);
	return 0;
}

int ws_remove(struct ws *ws, int64_t id, struct err *e)
{
	int rc;

	/* removing is how a user frees space: it works on a full disk */
	space_before_write(ws);
	rc = remove_once(ws, id, e);
	if (rc == -ENOSPC && space_use_reserve(ws)) {
		memset(e, 0, sizeof(*e));
		rc = remove_once(ws, id, e);
	}
	return rc;
}

int ws_rename(struct ws *ws, int64_t id, const char *newname, struct err *e)
{
	char old[MLFS_NAME_MAX + 1];
	struct obj o;
	int rc;

	rc = name_valid(newname, e);
	if (rc)
		return rc;
	rc = store_begin(ws->st);
	if (rc)
		return err_set(e, rc, "the store is unavailable");
	rc = store_get(ws->st, id, &o);
	if (!rc)
		rc = busy_reason(ws, &o, e);
	if (!rc && o.kind == K_TARGET && o.state[0] != 'D')
		rc = err_set(e, -EBUSY, "target '%s' is %s: only a Draft"
			     " target can be renamed", o.name, o.state);
	if (rc)
		goto out_rollback;
	snprintf(old, sizeof(old), "%s", o.name);
	snprintf(o.name, sizeof(o.name), "%s", newname);
	o.changed = now_s();
	rc = store_update(ws->st, &o);
	if (rc == -EEXIST)
		err_set(e, rc, "%s '%s' already exists", kind_name(o.kind),
			newname);
	if (rc)
		goto out_rollback;
	rc = store_commit(ws->st);
	if (rc)
		return err_set(e, rc, "the store failed");
	ws_inval(ws, id, FBIT(F_INFO));
	{
		char text[MLFS_NAME_MAX + 32];

		snprintf(text, sizeof(text), "renamed from %s", old);
		obj_event(ws, &o, text);
	}
	return 0;

out_rollback:
	store_rollback(ws->st);
	if (!e->msg[0])
		err_set(e, rc, "cannot rename: %s", strerror(-rc));
	if (rc == -EBUSY || rc == -EEXIST)
		ws_refuse(ws, id, rc, e);
	return rc;
}

int ws_files_shared(const struct obj *o)
{
	return o->kind == K_VERSION;
}

int ws_user_file_write(struct ws *ws, const struct obj *o, const char *path)
{
	(void)ws;
	return ws_files_shared(o) ? unshare_file(path) : 0;
}

int ws_files_writable(const struct obj *o)
{
	switch (o->kind) {
	case K_RUN:
		return !strcmp(o->state, RS_DRAFT);
	case K_DEPLOYMENT:
		return 1;
	case K_VERSION:
		return !strcmp(o->state, "Ready") || !strcmp(o->state, "Draft");
	default:
		return 0;
	}
}

/* ---- settings ------------------------------------------------------------ */

/* May @file of @o be written now? 0 or -EROFS. */
static int setting_writable(const struct obj *o, int file)
{
	switch (o->kind) {
	case K_RUN:
		return strcmp(o->state, RS_DRAFT) ? -EROFS : 0;
	case K_TARGET:
		if (!strcmp(o->state, TS_DRAFT) || !strcmp(o->state, TS_FAILED))
			return 0;
		/* live keys: applied by `provision` on a Succeeded target */
		if (file == F_CONFIG && !strcmp(o->state, TS_SUCCEEDED))
			return 0;
		return -EROFS;
	case K_DEPLOYMENT:
		return strcmp(o->state, DS_TRANSITIONING) ? 0 : -EROFS;
	default:
		return -EROFS;
	}
}

static int setting_check(struct ws *ws, int64_t id, int file, struct obj *o)
{
	const struct file_desc *fd;
	int rc;

	rc = store_get(ws->st, id, o);
	if (rc)
		return rc;
	fd = ws_file_by_id(o->kind, file);
	if (!fd || !(fd->flags & FD_SETTING))
		return -EACCES;
	return setting_writable(o, file);
}

static int setting_too_big(struct ws *ws, int64_t id)
{
	struct err e;

	err_set(&e, -EFBIG, "a setting file holds less than %d bytes",
		SETTING_MAX);
	ws_refuse(ws, id, -EFBIG, &e);
	return -EFBIG;
}

/* A refused write to a setting: say why in `error` (after the store's
 * transaction: refuse() writes the row itself). */
static int setting_refused(struct ws *ws, const struct obj *o, int file,
			   int rc)
{
	const struct file_desc *fd;
	struct err e;

	fd = ws_file_by_id(o->kind, file);
	if (!fd || (rc != -EROFS && rc != -ENOSPC))
		return rc;
	if (rc == -ENOSPC)
		err_set(&e, rc, "%s was not changed: no space left on the file"
			" system of the state dir %s", fd->name, ws->dir);
	else
		err_set(&e, rc, "%s is read-only while %s '%s' is %s",
			fd->name, kind_name(o->kind), o->name, o->state);
	ws_refuse(ws, o->id, rc, &e);
	return rc;
}

static int setting_store(struct ws *ws, const struct obj *o, int file,
			 const char *buf, size_t len)
{
	int rc;

	/* a full disk's last room is the workspace's own (see space.c) */
	if (space_full(ws))
		return -ENOSPC;
	rc = store_text_put(ws->st, o->id, file, buf, len);

	if (!rc && file == F_CONFIG)
		ws_inval(ws, o->id, FBIT(F_INFO));
	return rc;
}

int ws_setting_write(struct ws *ws, int64_t id, int file, const char *buf,
		     size_t len, off_t off)
{
	size_t cur_len, new_len;
	char *cur = NULL, *nb;
	struct obj o;
	int rc;

	/* a write reaching the limit is refused whole: the kernel cuts big
	 * writes into 1 MiB pieces, and a first piece accepted would
	 * replace the setting by the head of a refused write */
	if (off < 0 || (uint64_t)off + len >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = ws_read_text(ws, id, file, &cur, &cur_len);
	if (rc)
		goto out_rollback;
	new_len = (size_t)off + len > cur_len ? (size_t)off + len : cur_len;
	nb = realloc(cur, new_len + 1);
	if (!nb) {
		rc = -ENOMEM;
		goto out_rollback;
	}
	cur = nb;
	if ((size_t)off > cur_len)
		memset(cur + cur_len, 0, off - cur_len);
	memcpy(cur + off, buf, len);
	rc = setting_store(ws, &o, file, cur, new_len);
	if (rc)
		goto out_rollback;
	free(cur);
	rc = store_commit(ws->st);
	return rc ? setting_refused(ws, &o, file, rc) : 0;

out_rollback:
	free(cur);
	store_rollback(ws->st);
	return setting_refused(ws, &o, file, rc);
}

int ws_setting_truncate(struct ws *ws, int64_t id, int file, off_t size)
{
	size_t cur_len;
	char *cur = NULL, *nb;
	struct obj o;
	int rc;

	if (size < 0 || size >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = ws_read_text(ws, id, file, &cur, &cur_len);
	if (rc)
		goto out_rollback;
	nb = realloc(cur, size + 1);
	if (!nb) {
		rc = -ENOMEM;
		goto out_rollback;
	}
	cur = nb;
	if ((size_t)size > cur_len)
		memset(cur + cur_len, 0, size - cur_len);
	rc = setting_store(ws, &o, file, cur, size);
	if (rc)
		goto out_rollback;
	free(cur);
	rc = store_commit(ws->st);
	return rc ? setting_refused(ws, &o, file, rc) : 0;

out_rollback:
	free(cur);
	store_rollback(ws->st);
	return setting_refused(ws, &o, file, rc);
}

int ws_setting_replace(struct ws *ws, int64_t id, int file, const char *buf,
		       size_t len)
{
	struct obj o;
	int rc;

	if (len >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = setting_store(ws, &o, file, buf, len);
	if (rc) {
		store_rollback(ws->st);
		return setting_refused(ws, &o, file, rc);
	}
	rc = store_commit(ws->st);
	if (rc)
		return setting_refused(ws, &o, file, rc);
	ws_inval(ws, id, FBIT(file));
	return 0;
}

/* ---- rendering ------------------------------------------------------------ */

static int dup_text(const char *s, char **buf, size_t *len)
{
	*len = strlen(s);
	*buf = strdup(s);
	return *buf ? 0 : -ENOMEM;
}

static int line_text(const char *s, char **buf, size_t *len)
{
	char tmp[ERR_MSG_MAX + 2];

	if (!s[0])
		return dup_text("", buf, len);
	snprintf(tmp, sizeof(tmp), "%s\n", s);
	return dup_text(tmp, buf, len);
}

static const char *ctl_valid(struct ws *ws, const struct obj *o)
{
	const struct driver *d;

	switch (o->kind) {
	case K_RUN:
		if (!strcmp(o->state, RS_DRAFT))
			return "submit\n";
		if (run_state_active(o->state))
			return "cancel\n";
		if (!strcmp(o->state, RS_COMPLETED))
			return "register NAME [PATH]\n";
		return "";
	case K_TARGET:
		if (!strcmp(o->state, TS_DRAFT) || !strcmp(o->state, TS_FAILED))
			return "provision\n";
		if (strcmp(o->state, TS_SUCCEEDED))
			return "";
		d = driver_find(o->type);
		(void)ws;
		return d && d->live_keys && d->live_keys[0] ?
		       "provision\ndeprovision\n" : "deprovision\n";
	case K_DEPLOYMENT:
		if (!strcmp(o->state, DS_DRAFT))
			return "deploy\n";
		if (!strcmp(o->state, DS_TRANSITIONING))
			return "delete\n";
		return "deploy\nrestart\ndelete\n";
	default:
		return "";
	}
}

/* A string in info.json: always valid UTF-8 (see text_clean). */
static void json_str(cJSON *j, const char *key, const char *v)
{
	size_t n = strlen(v) * 4 + 1;
	char *clean = malloc(n);

	if (!clean)
		return;
	text_clean(v, clean, n);
	cJSON_AddStringToObject(j, key, clean);
	free(clean);
}

static void json_time(cJSON *j, const char *key, double t)
{
	char ts[32];

	iso_time(t, ts, sizeof(ts));
	if (ts[0])
		cJSON_AddStringToObject(j, key, ts);
	else
		cJSON_AddNullToObject(j, key);
}

/* Add setting @file as a string (trailing newline dropped). */
static void json_setting(struct ws *ws, cJSON *j, const char *key,
			 int64_t id, int file)
{
	size_t len;
	char *buf;

	if (ws_read_text(ws, id, file, &buf, &len))
		return;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	json_str(j, key, buf);
	free(buf);
}

/* Keys whose values are secrets and never shown. */
static int secret_key(const char *k)
{
	return strstr(k, "token") || strstr(k, "password") ||
	       strstr(k, "secret") || !strcmp(k, "key");
}

static void json_config(struct ws *ws, cJSON *j, int64_t id)
{
	struct kv_list cfg = { 0 };
	struct err e;
	cJSON *c;

	if (ws_load_config(ws, id, &cfg, &e))
		return;
	c = cJSON_AddObjectToObject(j, "config");
	for (int i = 0; i < cfg.n; i++)
		json_str(c, cfg.items[i].key, secret_key(cfg.items[i].key) ?
			 "(hidden)" : cfg.items[i].value);
	kv_free(&cfg);
}

static void json_nodes(struct ws *ws, cJSON *j, int64_t id)
{
	char *buf, *line, *save = NULL;
	cJSON *arr, *n;
	char name[128], state[64], mem[64];
	long cpus, gpus;
	size_t len;

	arr = cJSON_AddArrayToObject(j, "nodes");
	if (ws_read_text(ws, id, F_NODES, &buf, &len))
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%127s %63s %ld %63s %ld", name, state, &cpus,
			   mem, &gpus) != 5)
			continue;
		n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "name", name);
		cJSON_AddStringToObject(n, "state", state);
		cJSON_AddNumberToObject(n, "cpus", cpus);
		cJSON_AddStringToObject(n, "memory", mem);
		cJSON_AddNumberToObject(n, "gpus", gpus);
		cJSON_AddItemToArray(arr, n);
	}
	free(buf);
}

static void json_common(cJSON *j, const struct obj *o)
{
	cJSON_AddStringToObject(j, "name", o->name);
	cJSON_AddStringToObject(j, "kind", kind_name(o->kind));
	cJSON_AddStringToObject(j, "status", o->state);
	json_str(j, "error", o->error);
	cJSON_AddNumberToObject(j, "uid", o->uid);
	cJSON_AddNumberToObject(j, "gid", o->gid);
	json_time(j, "created", o->created);
	json_time(j, "changed", o->changed);
}

static void json_run(struct ws *ws, cJSON *j, const struct obj *o)
{
	struct obj t;

	json_setting(ws, j, "command", o->id, F_COMMAND);
	if (o->target_id && !store_get(ws->st, o->target_id, &t))
		cJSON_AddStringToObject(j, "target", t.name);
	else
		json_setting(ws, j, "target", o->id, F_TARGET);
	json_setting(ws, j, "resources", o->id, F_RESOURCES);
	if (o->exit_code >= 0)
		cJSON_AddNumberToObject(j, "exit_code", o->exit_code);
	else
		cJSON_AddNullToObject(j, "exit_code");
	json_time(j, "queued", o->queued);
	json_time(j, "started", o->started);
	json_time(j, "ended", o->ended);
	/* only once ended: a generated file must not change by itself */
	if (o->started > 0 && o->ended > 0)
		cJSON_AddNumberToObject(j, "duration_seconds",
					o->ended - o->started);
	cJSON_AddStringToObject(j, "backend_id", o->backend_id);
	cJSON_AddStringToObject(j, "node", o->node);
	cJSON_AddStringToObject(j, "gpus", o->gpus);
	cJSON_AddBoolToObject(j, "cancel_requested", o->cancel);
}

static int render_info(struct ws *ws, const struct obj *o, char **buf,
		       size_t *len)
{
	cJSON *j = cJSON_CreateObject();
	char *s;

	if (!j)
		return -ENOMEM;
	json_common(j, o);
	switch (o->kind) {
	case K_RUN:
		json_run(ws, j, o);
		break;
	case K_TARGET:
		json_setting(ws, j, "type", o->id, F_TYPE);
		json_config(ws, j, o->id);
		json_nodes(ws, j, o->id);
		break;
	case K_DEPLOYMENT:
		deployment_json(ws, j, o);
		break;
	case K_VERSION:
		version_json(ws, j, o);
		break;
	default:
		break;
	}
	s = cJSON_Print(j);
	cJSON_Delete(j);
	if (!s)
		return -ENOMEM;
	*len = strlen(s) + 1;
	*buf = malloc(*len + 1);
	if (*buf) {
		memcpy(*buf, s, *len - 1);
		(*buf)[*len - 1] = '\n';
		(*buf)[*len] = '\0';
	}
	free(s);
	return *buf ? 0 : -ENOMEM;
}

int ws_render(struct ws *ws, const struct obj *o, int file, char **buf,
	      size_t *len)
{
	char tmp[32];

	switch (file) {
	case F_STATUS:
		return line_text(o->state, buf, len);
	case F_ERROR:
		return line_text(o->error, buf, len);
	case F_EXIT_CODE:
		if (o->exit_code < 0)
			return dup_text("", buf, len);
		snprintf(tmp, sizeof(tmp), "%d\n", o->exit_code);
		return dup_text(tmp, buf, len);
	case F_CTL:
		return dup_text(ctl_valid(ws, o), buf, len);
	case F_INFO:
		return render_info(ws, o, buf, len);
	case F_SCORING_URI:	/* kept in the row: one transaction */
		return line_text(o->backend_id, buf, len);
	default:
		return ws_read_text(ws, o->id, file, buf, len);
	}
}

unsigned ws_file_mode(struct ws *ws, const struct obj *o, int file)
{
	const struct file_desc *fd = ws_file_by_id(o->kind, file);
	size_t len;
	char *buf;
	int secret;

	if (!fd)
		return 0;
	if (fd->flags & FD_DIRECTORY)
		return 0755;
	if (fd->flags & FD_CTL)
		return 0644;
	if (fd->flags & FD_SECRET)
		return 0600;
	if (!(fd->flags & FD_SETTING))
		return 0444;
	secret = 0;
	if (file == F_CONFIG && !ws_read_text(ws, o->id, file, &buf, &len)) {
		secret = strstr(buf, "token") != NULL;
		free(buf);
	}
	if (setting_writable(o, file))
		return secret ? 0400 : 0444;
	return secret ? 0600 : 0644;
}

/* ---- ctl: runs -------------------------------------------------------- */

/* Prefix the sentence in @e with "@what: " (e->msg is copied first: it
 * cannot be both source and destination of err_set). */
static int err_prefix(struct err *e, int rc, const char *what)
{
	char tmp[ERR_MSG_MAX];

	snprintf(tmp, sizeof(tmp), "%s", e->msg);
	return err_set(e, rc, "%s: %s", what, tmp);
}

/* Texts beyond the control files, private to the backend. */
#define TEXT_APPLIED_CONFIG	40	/* a target's config as provisioned */

static int trim_len(const char *s, size_t len)
{
	size_t a = 0;

	while (a < len && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' ||
			   s[a] == '\r'))
		a++;
	return a < len;
}

static int read_word(struct ws *ws, int64_t id, int file, const char *what,
		     char *out, size_t sz, struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, file, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read %s", what);
	rc = first_word(buf, len, out, sz, e);
	free(buf);
	if (rc)
		return err_prefix(e, rc, what);
	return 0;
}

/* ---- ownership ---------------------------------------------------------- */

/* @uid's login for a sentence, else "uid N". */
static void user_name(uint32_t uid, char *buf, size_t sz)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	if (!getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) && res)
		snprintf(buf, sz, "%s", pw.pw_name);
	else
		snprintf(buf, sz, "uid %u", uid);
}

/* The rwx bits of @o that apply to @uid (primary group @gid): the owner's,
 * else the group's if @uid is in the object's group, else the others'. */
static unsigned perm_bits(const struct obj *o, uint32_t uid, uint32_t gid)
{
	if (uid == o->uid)
		return (o->mode >> 6) & 7;
	if (userfile_in_group(uid, gid, o->gid))
		return (o->mode >> 3) & 7;
	return o->mode & 7;
}

int ws_target_usable(const struct obj *t, uint32_t uid, uint32_t gid,
		     struct err *e)
{
	char owner[64];

	if (uid == 0 || (perm_bits(t, uid, gid) & 1))
		return 0;
	if (uid == t->uid)
		return err_set(e, -EACCES, "target '%s' (mode %04o) is not"
			       " usable even by its owner: chmod u+x"
			       " targets/%s", t->name, t->mode, t->name);
	user_name(t->uid, owner, sizeof(owner));
	return err_set(e, -EACCES, "target '%s' is private to %s: ask its"
		       " owner to share it (chmod go+x targets/%s)", t->name,
		       owner, t->name);
}

/*
 * Group and others never get write permission on an object folder: what
 * is inside belongs to its owner (a model's versions, a run's files), so
 * only the read and search bits change; no set-id or sticky bit.
 */
static uint32_t folder_mode(mode_t mode)
{
	return (mode & 0555) | 0200;
}

int ws_obj_chmod(struct ws *ws, int64_t id, uint32_t uid, mode_t mode)
{
	struct obj o;
	int rc;

	rc = store_get(ws->st, id, &o);
	if (rc)
		return rc;
	if (uid != 0 && uid != o.uid)
		return -EPERM;
	rc = store_set_owner(ws->st, id, o.uid, o.gid, folder_mode(mode));
	if (!rc)
		ws_inval(ws, id, FBIT(F_DIR));
	return rc;
}

/* chown: root gives an object to anyone; its owner may only change the
 * group, to one of their own groups (the kernel's rule for files). */
int ws_obj_chown(struct ws *ws, int64_t id, uint32_t uid, uint32_t gid,
		 uint32_t new_uid, uint32_t new_gid)
{
	struct obj o;
	int rc;

	rc = store_get(ws->st, id, &o);
	if (rc)
		return rc;
	if (new_uid == (uint32_t)-1)
		new_uid = o.uid;
	if (new_gid == (uint32_t)-1)
		new_gid = o.gid;
	if (uid != 0 && (uid != o.uid || new_uid != o.uid ||
			 (new_gid != o.gid &&
			  !userfile_in_group(uid, gid, new_gid))))
		return -EPERM;
	rc = store_set_owner(ws->st, id, new_uid, new_gid, o.mode);
	if (!rc)
		ws_inval(ws, id, FBIT(F_DIR));
	return rc;
}

/* The deployment's target (the one `deploy` will take, or the one it
 * serves on for `restart`) may be used by the deployment's owner. */
static int deploy_target_usable(struct ws *ws, const struct obj *o,
				const char *verb, struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj t;

	if (!strcmp(verb, "restart")) {
		if (ws_get(ws, o->target_id, &t))
			return 0;	/* deploy.c says why */
		return ws_target_usable(&t, o->uid, o->gid, e);
	}
	if (strcmp(verb, "deploy"))
		return 0;
	if (read_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e))
		return 0;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (store_find(ws->st, K_TARGET, 0, name, &t))
		return 0;
	return ws_target_usable(&t, o->uid, o->gid, e);
}

/* Config keys that name a file the driver reads (any type). */
static const char *const file_keys[] = { "token_file", "identity_file" };

/*
 * Each file a target's config names must be readable by the target's
 * owner, checked inside the write with the owner's rights (only opened:
 * the driver reads it on the worker, with the same rights).
 */
static int file_keys_check(const struct obj *o, const struct kv_list *cfg,
			   struct err *e)
{
	const char *v;
	int fd;

	for (size_t i = 0; i < sizeof(file_keys) / sizeof(file_keys[0]); i++) {
		v = kv_get(cfg, file_keys[i]);
		if (!v || !*v)
			continue;
		fd = userfile_open(o->uid, o->gid, file_keys[i], v, e);
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}

/* Load the target a run names and check it can take runs. */
static int submit_target(struct ws *ws, const struct obj *o, struct obj *t,
			 struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	int rc;

	rc = read_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e);
	if (rc)
		return rc;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (store_find(ws->st, K_TARGET, 0, name, t))
		return err_set(e, -ENOENT, "unknown target '%s': see targets/",
			       name);
	if (strcmp(t->state, TS_SUCCEEDED))
		return err_set(e, -EBUSY, "target '%s' is %s, not Succeeded:"
			       " provision it first (echo provision >"
			       " targets/%s/ctl)", name, t->state, name);
	return 0;
}

/* Check everything a submit needs, without changing anything. */
static int submit_check(struct ws *ws, const struct obj *o, struct obj *t,
			struct err *e)
{
	struct kv_list env = { 0 }, cfg = { 0 };
	const struct driver *d;
	struct resources res;
	char *buf, *nodes;
	size_t len;
	int rc, blank;

	rc = ws_read_text(ws, o->id, F_COMMAND, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read command");
	blank = !trim_len(buf, len);
	if (blank || memchr(buf, '\0', len)) {
		free(buf);
		return err_set(e, -EINVAL, "command is %s: write the shell"
			       " command to runs/%s/command", blank ? "empty" :
			       "not text (it holds a NUL byte)", o->name);
	}
	free(buf);
	rc = submit_target(ws, o, t, e);
	if (rc)
		return rc;
	rc = ws_read_text(ws, o->id, F_ENV, &buf, &len);
	if (!rc) {
		rc = env_parse(buf, len, &env, e);
		free(buf);
		kv_free(&env);
		if (rc)
			return rc;	/* the sentence names env */
	}
	rc = ws_read_text(ws, o->id, F_RESOURCES, &buf, &len);
	if (!rc) {
		rc = resources_parse(buf, len, &res, e);
		free(buf);
		if (rc)
			return rc;	/* the sentence names resources */
	}
	d = driver_find(t->type);
	if (!d)
		return err_set(e, -EIO, "target '%s' has unknown type '%s'",
			       t->name, t->type);
	if (!d->check_run)
		return 0;
	rc = ws_load_config(ws, t->id, &cfg, e);
	if (!rc && !(rc = ws_read_text(ws, t->id, F_NODES, &nodes, &len))) {
		rc = d->check_run(&cfg, nodes, &res, e);
		free(nodes);
	}
	kv_free(&cfg);
	return rc;
}

static int run_submit(struct ws *ws, struct obj *o, struct err *e)
{
	struct obj t;
	int rc;

	if (strcmp(o->state, RS_DRAFT))
		return err_set(e, -EBUSY, "run '%s' is %s: submit works only on"
			       " a Draft run", o->name, o->state);
	if (geteuid() != 0 && o->uid != geteuid())
		return err_set(e, -EACCES, "run '%s' belongs to uid %u, and this"
			       " daemon (uid %u, not root) runs only its own"
			       " user's runs", o->name, o->uid,
			       (unsigned)geteuid());
	rc = submit_check(ws, o, &t, e);
	if (!rc)	/* the run runs as its owner: theirs is the right */
		rc = ws_target_usable(&t, o->uid, o->gid, e);
	if (rc)
		return rc;
	pthread_mutex_lock(&ws->seq_lock);
	o->seq = ++ws->seq;
	pthread_mutex_unlock(&ws->seq_lock);
	snprintf(o->state, sizeof(o->state), "%s", RS_QUEUED);
	o->target_id = t.id;
	o->queued = now_s();
	o->error[0] = '\0';
	o->exit_code = -1;
	rc = ws_update_obj(ws, o, RS_DRAFT, RUN_SETTINGS);
	if (rc == -EAGAIN)
		return err_set(e, -EBUSY, "run '%s' changed to %s meanwhile",
			       o->name, o->state);
	if (rc)
		return err_set(e, rc, "cannot record the submit: %s",
			       strerror(-rc));
	worker_kick(ws, o->id);
	return 0;
}

static int run_cancel(struct ws *ws, struct obj *o, struct err *e)
{
	int rc;

	if (!run_state_active(o->state))
		return err_set(e, -EBUSY, "run '%s' is %s: only a Queued,"
			       " Starting or Running run can be canceled",
			       o->name, o->state);
	if (o->cancel)
		return 0;
	o->cancel = 1;
	rc = ws_update_obj(ws, o, o->state, 0);
	if (rc == -EAGAIN && run_state_active(o->state)) {
		o->cancel = 1;
		rc = ws_update_obj(ws, o, o->state, 0);
	}
	if (rc)
		return err_set(e, rc == -EAGAIN ? -EBUSY : rc, "run '%s' is %s"
			       " now", o->name, o->state);
	obj_event(ws, o, "cancel requested");
	worker_kick(ws, o->id);
	return 0;
}

static int run_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e)
{
	if (!strcmp(c->argv[0], "submit") && c->argc == 1)
		return run_submit(ws, o, e);
	if (!strcmp(c->argv[0], "cancel") && c->argc == 1)
		return run_cancel(ws, o, e);
	if (!strcmp(c->argv[0], "register"))
		return model_register(ws, o, c, e);
	if (!strcmp(c->argv[0], "submit") || !strcmp(c->argv[0], "cancel"))
		return err_set(e, -EINVAL, "'%s' takes no arguments",
			       c->argv[0]);
	return err_set(e, -EINVAL, "unknown command '%s' for a run (commands:"
		       " submit, cancel, register)", c->argv[0]);
}

/* ---- ctl: targets ------------------------------------------------------- */

static int target_config(struct ws *ws, const struct obj *o,
			 const struct driver *d, struct kv_list *cfg,
			 struct err *e)
{
	int rc;

	rc = ws_load_config(ws, o->id, cfg, e);
	if (rc)
		return rc;	/* the sentence names config */
	rc = kv_check_keys(cfg, d->config_keys, d->type, e);
	if (!rc && d->validate)
		rc = d->validate(cfg, e);
	if (!rc)
		rc = file_keys_check(o, cfg, e);
	if (rc)
		kv_free(cfg);
	return rc;
}

static int applied_config_save(struct ws *ws, int64_t id)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, F_CONFIG, &buf, &len);
	if (!rc)
		rc = store_text_put(ws->st, id, TEXT_APPLIED_CONFIG, buf, len);
	free(buf);
	return rc;
}

static int is_live_key(const struct driver *d, const char *k)
{
	for (int i = 0; d->live_keys && d->live_keys[i]; i++)
		if (!strcmp(d->live_keys[i], k))
			return 1;
	return 0;
}

/* Count the keys whose values differ between @a and @b; refuse non-live. */
static int config_diff(const struct driver *d, const struct kv_list *a,
		       const struct kv_list *b, struct err *e)
{
	const struct kv_list *l[2] = { a, b };
	int changed = 0;

	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < l[s]->n; i++) {
			const char *k = l[s]->items[i].key;
			const char *va = kv_get(a, k), *vb = kv_get(b, k);

			if (va && vb && !strcmp(va, vb))
				continue;
			if (!is_live_key(d, k))
				return err_set(e, -EBUSY, "config key '%s' cannot"
					       " change while the target is"
					       " Succeeded: deprovision first",
					       k);
			changed++;
		}
	}
	return changed;
}

/* `provision` on a Succeeded target: apply changed live config keys. */
static int target_update(struct ws *ws, struct obj *o, struct err *e)
{
	struct kv_list cfg = { 0 }, old = { 0 };
	const struct driver *d = driver_find(o->type);
	size_t len;
	char *buf;
	int rc;

	if (!d)
		return err_set(e, -EIO, "unknown type '%s'", o->type);
	rc = target_config(ws, o, d, &cfg, e);
	if (rc)
		return rc;
	rc = ws_read_text(ws, o->id, TEXT_APPLIED_CONFIG, &buf, &len);
	if (!rc) {
		rc = kv_parse(buf, len, &old, e);
		free(buf);
	}
	if (!rc)
		rc = config_diff(d, &old, &cfg, e);
	kv_free(&cfg);
	kv_free(&old);
	if (rc <= 0)
		return rc;
	snprintf(o->state, sizeof(o->state), "%s", TS_UPDATING);
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, TS_SUCCEEDED, 0);
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       o->state);
	applied_config_save(ws, o->id);
	worker_kick(ws, o->id);
	return 0;
}

static int target_provision(struct ws *ws, struct obj *o, struct err *e)
{
	char type[32], expect[STATE_MAX];
	struct kv_list cfg = { 0 };
	const struct driver *d;
	int rc;

	if (!strcmp(o->state, TS_SUCCEEDED))
		return target_update(ws, o, e);
	if (strcmp(o->state, TS_DRAFT) && strcmp(o->state, TS_FAILED))
		return err_set(e, -EBUSY, "target '%s' is %s", o->name,
			       o->state);
	rc = read_word(ws, o->id, F_TYPE, "type", type, sizeof(type), e);
	if (rc)
		return rc;
	if (!type[0])
		return err_set(e, -EINVAL, "type is empty: write one of %s to"
			       " targets/%s/type", driver_types(), o->name);
	d = driver_find(type);
	if (!d)
		return err_set(e, -EINVAL, "unknown type '%s' (known: %s)",
			       type, driver_types());
	rc = target_config(ws, o, d, &cfg, e);
	kv_free(&cfg);
	if (rc)
		return rc;
	snprintf(expect, sizeof(expect), "%s", o->state);
	snprintf(o->state, sizeof(o->state), "%s", TS_CREATING);
	snprintf(o->type, sizeof(o->type), "%s", type);
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, expect, TARGET_SETTINGS | FBIT(F_NODES));
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       o->state);
	applied_config_save(ws, o->id);
	worker_kick(ws, o->id);
	return 0;
}

static int target_deprovision(struct ws *ws, struct obj *o, struct err *e)
{
	char expect[STATE_MAX];
	int n, rc;

	if (strcmp(o->state, TS_SUCCEEDED) && strcmp(o->state, TS_FAILED))
		return err_set(e, -EBUSY, "target '%s' is %s: nothing to"
			       " deprovision", o->name, o->state);
	n = store_count_active_runs(ws->st, o->id);
	if (n > 0)
		return err_set(e, -EBUSY, "target '%s' has %d active run%s",
			       o->name, n, n == 1 ? "" : "s");
	rc = deployments_busy(ws, o, e);
	if (rc)
		return rc;
	snprintf(expect, sizeof(expect), "%s", o->state);
	snprintf(o->state, sizeof(o->state), "%s", TS_DELETING);
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, expect, 0);
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       o->state);
	worker_kick(ws, o->id);
	return 0;
}

static int target_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		       struct err *e)
{
	long lo, hi;
	int rc;

	if (!strcmp(c->argv[0], "provision") && c->argc == 1)
		return target_provision(ws, o, e);
	if (!strcmp(c->argv[0], "deprovision") && c->argc == 1)
		return target_deprovision(ws, o, e);
	if (!strcmp(c->argv[0], "resize")) {
		if (c->argc != 3)
			return err_set(e, -EINVAL, "usage: resize MIN MAX");
		rc = parse_int(c->argv[1], 0, 100000, &lo, "MIN", e);
		if (!rc)
			rc = parse_int(c->argv[2], 1, 100000, &hi, "MAX", e);
		if (!rc && lo > hi)
			rc = err_set(e, -EINVAL, "MIN %ld is larger than MAX"
				     " %ld", lo, hi);
		if (rc)
			return rc;
		return err_set(e, -ENOTSUP, "target type %s cannot resize",
			       o->type[0] ? o->type : "(none yet)");
	}
	if (!strcmp(c->argv[0], "provision") ||
	    !strcmp(c->argv[0], "deprovision"))
		return err_set(e, -EINVAL, "'%s' takes no arguments",
			       c->argv[0]);
	return err_set(e, -EINVAL, "unknown command '%s' for a target"
		       " (commands: provision, deprovision, resize MIN MAX)",
		       c->argv[0]);
}

#define CTL_MAX_CMDS 16

int ws_ctl(struct ws *ws, int64_t id, const char *buf, size_t len,
	   uint32_t uid, uint32_t gid)
{
	struct ctl_cmd *cmds;
	struct err e = { { 0 } };
	struct obj o;
	int n, rc = 0;

	(void)uid;
	(void)gid;
	if (store_get(ws->st, id, &o))
		return -ENOENT;
	cmds = calloc(CTL_MAX_CMDS, sizeof(*cmds));
	if (!cmds)
		return -ENOMEM;
	n = ctl_split(buf, len, cmds, CTL_MAX_CMDS, &e);
	if (n < 0)
		rc = n;
	for (int i = 0; !rc && i < n; i++) {
		switch (o.kind) {
		case K_RUN:
			rc = run_verb(ws, &o, &cmds[i], &e);
			break;
		case K_TARGET:
			rc = target_verb(ws, &o, &cmds[i], &e);
			break;
		case K_DEPLOYMENT:
			rc = deploy_target_usable(ws, &o, cmds[i].argv[0], &e);
			if (!rc)
				rc = deployment_verb(ws, &o, &cmds[i], &e);
			break;
		default:
			rc = err_set(&e, -EINVAL, "%s folders take no commands"
				     " yet", kind_name(o.kind));
			break;
		}
	}
	free(cmds);
	if (rc)
		return refuse(ws, &o, rc, &e);
	return 0;
}

/* ---- for the worker and drivers ---------------------------------------- */

int ws_run_transition(struct ws *ws, struct run_ctx *r, const char *state,
		      int exit_code, const char *error)
{
	struct obj o = r->obj;
	unsigned mask = 0;
	double now = now_s();
	int rc;

	snprintf(o.state, sizeof(o.state), "%s", state);
	if (exit_code >= 0)
		o.exit_code = exit_code;
	if (error)
		snprintf(o.error, sizeof(o.error), "%s", error);
	/* a run that failed on a full disk says so: its writes failed */
	if (!strcmp(state, RS_FAILED) && space_full(ws))
		space_note(ws, o.error, sizeof(o.error));
	if ((!strcmp(state, RS_STARTING) || !strcmp(state, RS_RUNNING)) &&
	    o.started <= 0)
		o.started = now;
	if (run_state_final(state)) {
		if (o.ended <= 0)
			o.ended = now;
		if (o.started <= 0)
			o.started = o.ended;
		mask |= FBIT(F_LOG) | FBIT(F_METRICS) | FBIT(F_CTL);
	}
	rc = ws_update_obj(ws, &o, r->obj.state, mask);
	if (!rc || rc == -EAGAIN)
		r->obj = o;
	if (!rc && run_state_final(state) && ws->hooks.inval_outputs)
		ws->hooks.inval_outputs(ws->hooks.ctx, o.id);
	return rc;
}

int ws_run_save(struct ws *ws, struct run_ctx *r)
{
	struct obj o = r->obj;
	int rc;

	rc = ws_update_obj(ws, &o, r->obj.state, 0);
	if (!rc || rc == -EAGAIN)
		r->obj = o;
	return rc;
}

int ws_run_note(struct ws *ws, struct run_ctx *r, const char *error)
{
	char text[ERR_MSG_MAX + 16];
	int rc;

	if (!strcmp(r->obj.error, error ? error : ""))
		return 0;
	snprintf(r->obj.error, sizeof(r->obj.error), "%s", error ? error : "");
	rc = ws_run_save(ws, r);
	if (!rc && error && error[0]) {
		snprintf(text, sizeof(text), "error: %s", error);
		obj_event(ws, &r->obj, text);
	}
	return rc;
}

int ws_target_set_nodes(struct ws *ws, struct target_ctx *t, const char *nodes)
{
	size_t len;
	char *cur;
	int rc, same;

	rc = ws_read_text(ws, t->obj.id, F_NODES, &cur, &len);
	if (rc)
		return rc;
	same = !strcmp(cur, nodes);
	free(cur);
	if (same)
		return 0;
	change_begin(ws, t->obj.id);
	rc = store_text_put(ws->st, t->obj.id, F_NODES, nodes, strlen(nodes));
	if (!rc)
		ws_inval(ws, t->obj.id, FBIT(F_NODES) | FBIT(F_INFO));
	return rc;
}

/* ---- trash -------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) && errno != ENOENT ? 0 : 0;
	if (unlink(path) && errno == EISDIR)
		rmdir(path);
	return 0;
}

/* Make every folder below @path writable so that it can be emptied. */
static int unlock_one(const char *path, const struct stat *sb, int flag,
		      struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D && (sb->st_mode & 0700) != 0700)
		chmod(path, sb->st_mode | 0700);
	return 0;
}

void ws_trash_empty(struct ws *ws)
{
	char path[PATH_MAX], sub[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/trash", ws->dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		nftw(sub, unlock_one, 16, FTW_PHYS);
		nftw(sub, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

/* ---- open, reconcile, close ------------------------------------------- */

static int ensure_local(struct ws *ws, struct err *e)
{
	char cfg[256];
	struct obj o;
	int rc;

	if (!store_find(ws->st, K_TARGET, 0, "local", &o))
		return 0;
	rc = ws_create(ws, K_TARGET, 0, "local", getuid(), getgid(), &o, e);
	if (rc)
		return rc;
	snprintf(cfg, sizeof(cfg),
		 "# The built-in local target: runs are processes on this"
		 " machine.\n# max_concurrent = %d\n"
		 "# cancel_grace_seconds = 10\n", ws->ncpu);
	store_text_put(ws->st, o.id, F_TYPE, "local\n", 6);
	store_text_put(ws->st, o.id, F_CONFIG, cfg, strlen(cfg));
	store_text_put(ws->st, o.id, TEXT_APPLIED_CONFIG, cfg, strlen(cfg));
	snprintf(o.state, sizeof(o.state), "%s", TS_SUCCEEDED);
	snprintf(o.type, sizeof(o.type), "local");
	/* the local machine is everyone's: runs there run as their owner */
	if (store_set_owner(ws->st, o.id, o.uid, o.gid, 0755))
		return err_set(e, -EIO, "cannot record the local target");
	return store_update(ws->st, &o) ?
	       err_set(e, -EIO, "cannot record the local target") : 0;
}

struct reconcile {
	struct ws *ws;
	int repaired;
};

static int reconcile_obj(void *arg, int64_t id)
{
	struct reconcile *rc = arg;
	char path[PATH_MAX];
	struct stat st;
	struct obj o;

	if (store_get(rc->ws->st, id, &o))
		return 0;
	ws_obj_path(rc->ws, id, NULL, path);
	if (!stat(path, &st))
		return 0;
	if (!make_obj_dirs(rc->ws, &o)) {
		log_warn("repaired: %s '%s' had no folder; made an empty one",
			 kind_name(o.kind), o.name);
		rc->repaired++;
	}
	return 0;
}

/* Folders under objects/ without a row: left by a crash in mkdir/rmdir. */
static void reconcile_orphans(struct ws *ws, int *repaired)
{
	char path[PATH_MAX], to[PATH_MAX + 64];
	struct dirent *de;
	struct obj o;
	char *end;
	long long id;
	DIR *d;

	snprintf(path, sizeof(path), "%s/objects", ws->dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		id = strtoll(de->d_name, &end, 10);
		if (*end == '\0' && id > 0 && !store_get(ws->st, id, &o))
			continue;
		snprintf(path, sizeof(path), "%s/objects/%s", ws->dir,
			 de->d_name);
		snprintf(to, sizeof(to), "%s/trash/orphan-%s", ws->dir,
			 de->d_name);
		if (!rename(path, to)) {
			log_warn("repaired: objects/%s had no record; moved to"
				 " the trash", de->d_name);
			(*repaired)++;
		}
	}
	closedir(d);
}

/*
 * The state dir and objects/ are 0711: a run, executing as its owner,
 * reaches its working copy through them (search permission), but nobody
 * lists them.  What holds secrets below is 0600 (workspace.db and its
 * -wal and -shm, see store.c) or in a 0700 folder.  The trash holds only
 * what is being deleted: nobody's business, 0700.
 */
static int open_dirs(struct ws *ws, struct err *e)
{
	const char *subs[] = { "", "/objects", "/trash" };
	const mode_t modes[] = { 0711, 0711, 0700 };
	char path[PATH_MAX];
	int rc;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", ws->dir, subs[i]);
		rc = mkdir_p(path, modes[i]);
		if (!rc && chmod(path, modes[i]))
			rc = -errno;
		if (rc)
			return err_set(e, rc, "cannot create %s: %s", path,
				       strerror(-rc));
	}
	return 0;
}

static int open_events(struct ws *ws, struct err *e)
{
	struct stat st;

	snprintf(ws->events_path, sizeof(ws->events_path), "%s/events",
		 ws->dir);
	ws->events_fd = open(ws->events_path, O_WRONLY | O_APPEND | O_CREAT |
			     O_CLOEXEC, 0644);
	if (ws->events_fd < 0 || fstat(ws->events_fd, &st))
		return err_set(e, -errno, "cannot open %s: %s", ws->events_path,
			       strerror(errno));
	ws->events_size = st.st_size;
	return 0;
}

static int own_files_obj(void *arg, int64_t id)
{
	struct ws *ws = arg;
	struct obj o;

	if (!ws_get(ws, id, &o))
		make_obj_dirs(ws, &o);
	return 0;
}

/*
 * Once per state dir, for a root daemon: the files/ folder of each object
 * becomes its creator's, as make_obj_dirs makes it now (users' files are
 * worked on with the users' own rights, who must be able to create in it).
 * A state dir made before that had them root's.  STATE/owners-1 says done.
 */
static void own_files(struct ws *ws, int fresh)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/owners-1", ws->dir);
	if (geteuid() != 0 || !access(path, F_OK))
		return;
	if (!fresh)
		store_list_ids(ws->st, own_files_obj, ws);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd >= 0)
		close(fd);
}

int ws_cpus(void)
{
	cpu_set_t set;
	long n;

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int ws_open(struct ws **wsp, const char *state_dir, struct err *e)
{
	char path[PATH_MAX];
	struct reconcile rec;
	struct ws *ws;
	int rc, fresh;

	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return err_set(e, -ENOMEM, "out of memory");
	ws->dir = strdup(state_dir);
	ws->events_fd = -1;
	ws->ncpu = ws_cpus();
	pthread_mutex_init(&ws->ev_lock, NULL);
	pthread_mutex_init(&ws->space_lock, NULL);
	pthread_mutex_init(&ws->seq_lock, NULL);
	pthread_mutex_init(&ws->req_lock, NULL);
	rc = open_dirs(ws, e);
	if (!rc)
		rc = open_events(ws, e);
	if (rc)
		goto out_close;
	snprintf(path, sizeof(path), "%s/workspace.db", ws->dir);
	fresh = access(path, F_OK) != 0;
	rc = store_open(path, &ws->st, e);
	if (!rc)
		rc = ensure_local(ws, e);
	if (rc)
		goto out_close;
	space_open(ws);
	own_files(ws, fresh);
	ws->seq = store_max_seq(ws->st);
	/* After a clean stop the files match the store: skip the scan, so
	 * that 100,000 runs mount at once.  Else (a crash) reconcile. */
	snprintf(path, sizeof(path), "%s/clean", ws->dir);
	if (unlink(path) && !fresh) {
		rec.ws = ws;
		rec.repaired = 0;
		store_list_ids(ws->st, reconcile_obj, &rec);
		reconcile_orphans(ws, &rec.repaired);
		log_info("start-up after an unclean stop: %d inconsistencies"
			 " repaired", rec.repaired);
	}
	ws->opened = 1;
	*wsp = ws;
	return 0;

out_close:
	ws_close(ws);
	return rc;
}

void ws_set_hooks(struct ws *ws, const struct ws_hooks *hooks)
{
	ws->hooks = *hooks;
}

int ws_start(struct ws *ws)
{
	return worker_start(ws);
}

void ws_close(struct ws *ws)
{
	char path[PATH_MAX];
	int fd;

	if (!ws)
		return;
	worker_stop(ws);
	store_close(ws->st);
	ws->st = NULL;
	snprintf(path, sizeof(path), "%s/clean", ws->dir);
	fd = ws->opened ? open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (fd >= 0)
		close(fd);
	if (ws->events_fd >= 0)
		close(ws->events_fd);
	free(ws->dir);
	free(ws);
}
