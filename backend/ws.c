// SPDX-License-Identifier: MIT
/*
 * The workspace's core: the kind registry, paths, events, transactions
 * (ws_update_obj), invalidation hooks, lookups, mkdir/rmdir/rename of
 * objects, ctl dispatch, the trash.  It knows no kind: what differs
 * between runs, targets, deployments and models is asked of their
 * struct kind_ops (ws_i.h).  Called on FUSE request threads and on the
 * worker threads; the trash is emptied by the housekeeping worker.
 */
#include "ws.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "../lib/log.h"
#include "userfile.h"
#include "ws_i.h"

/* ---- the kinds ----------------------------------------------------------- */

/*
 * Written once, by ws_open.c before any other thread starts, and only
 * read after: no lock.
 */
static const struct kind_ops *kinds[K_COUNT];

static const struct kind_ops no_kind = {
	.name			= "?",
	.files			= NULL,
	.nfiles			= 0,
	.initial_state		= VS_READY,
	.mode			= 0755,
};

void ws_kind_register(int kind, const struct kind_ops *ops)
{
	if (kind > 0 && kind < K_COUNT)
		kinds[kind] = ops;
}

const struct kind_ops *ws_kind(int kind)
{
	return kind > 0 && kind < K_COUNT && kinds[kind] ? kinds[kind] :
	       &no_kind;
}

const struct file_desc *ws_files(int kind, int *n)
{
	const struct kind_ops *k = ws_kind(kind);

	*n = k->nfiles;
	return k->files;
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
	return ws_kind(kind)->name;
}

/* ---- paths and small helpers -------------------------------------------- */

const char *ws_state_dir(const struct ws *ws)
{
	return ws->dir;
}

void ws_set_helper_dir(struct ws *ws, const char *dir)
{
	snprintf(ws->helper_dir, sizeof(ws->helper_dir), "%s", dir);
}

const char *ws_helper_dir(const struct ws *ws)
{
	return ws->helper_dir[0] ? ws->helper_dir : ".";
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

void ws_iso_time(double t, char *buf, size_t sz)
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

/* The display name of @o for events: runs/x is "x", versions (the one
 * kind with a parent) "m:3". */
static void display_name(struct ws *ws, const struct obj *o, char *buf,
			 size_t sz)
{
	struct obj m;

	if (o->parent && !store_get(ws->st, o->parent, &m))
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
void ws_text_clean(const char *in, char *out, size_t sz)
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
/* ---- events -------------------------------------------------------------- */

void ws_event_line(struct ws *ws, const char *kind, const char *name,
		   const char *text)
{
	char line[ERR_MSG_MAX + 256], ts[32];
	off_t old;
	int n;

	char clean[ERR_MSG_MAX + 64];

	ws_text_clean(text, clean, sizeof(clean));
	ws_iso_time(wall_s(), ts, sizeof(ts));
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

void ws_space_event(struct ws *ws)
{
	ws_event_line(ws, "workspace", "-", "no space left on the file system"
		      " of the state dir: the store uses its reserve; free some"
		      " space");
}

/* space.c is below events: what it did is said here. */
static void before_write(struct ws *ws)
{
	if (space_before_write(ws))
		ws_space_event(ws);
}

static int use_reserve(struct ws *ws)
{
	if (!space_use_reserve(ws))
		return 0;
	ws_space_event(ws);
	return 1;
}

void ws_event(struct ws *ws, int kind, const char *name, const char *text)
{
	ws_event_line(ws, kind_name(kind), name, text);
}

void ws_obj_event(struct ws *ws, const struct obj *o, const char *text)
{
	char name[2 * MLFS_NAME_MAX + 2];

	display_name(ws, o, name, sizeof(name));
	ws_event_line(ws, kind_name(o->kind), name, text);
}
/* ---- invalidation -------------------------------------------------------- */

void ws_inval(struct ws *ws, int64_t id, fmask_t mask)
{
	if (ws->hooks.inval_files && mask)
		ws->hooks.inval_files(ws->hooks.ctx, id, mask);
}


void ws_change_begin(struct ws *ws, int64_t id)
{
	if (ws->hooks.change_begin)
		ws->hooks.change_begin(ws->hooks.ctx, id);
}

/* One try of ws_update_obj: the row as it was into @cur. */
static int update_once(struct ws *ws, struct obj *o, enum obj_state expect,
		       struct obj *cur)
{
	int rc;

	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = store_get(ws->st, o->id, cur);
	if (rc)
		goto out_rollback;
	if (cur->state != expect) {
		*o = *cur;
		rc = -EAGAIN;
		goto out_rollback;
	}
	o->changed = wall_s();
	o->cancel |= cur->cancel;	/* set by ctl writes, never cleared */
	if (strcmp(o->error, cur->error)) {
		char clean[ERR_MSG_MAX];

		ws_text_clean(o->error, clean, sizeof(clean));
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
 * @expect.  Logs the state change to events and invalidates
 * @mask plus the state files.  0, -EAGAIN (then @o is reloaded), -errno.
 *
 * change_begin (no lock held) lets the FUSE layer keep the row as it was:
 * the kernel may still ask for the old bytes of a file it looked up.
 */
int ws_update_obj(struct ws *ws, struct obj *o, enum obj_state expect,
		  fmask_t mask)
{
	struct obj cur, want = *o;
	int rc;

	ws_change_begin(ws, o->id);
	/* the workspace's own bookkeeping goes on when the disk is full */
	before_write(ws);
	rc = update_once(ws, o, expect, &cur);
	if (rc == -ENOSPC && use_reserve(ws)) {
		*o = want;
		rc = update_once(ws, o, expect, &cur);
	}
	if (rc)
		return rc;
	/* the kernel's caches first: whoever sees the events line and reads
	 * the object's files gets the new bytes */
	ws_inval(ws, o->id, mask | STATE_FILES);
	if (cur.state != o->state)
		ws_obj_event(ws, o, state_name(o->state));
	return 0;
}

/*
 * refuse - record a refusal: the sentence goes to the object's `error` and
 * to events.  Returns @rc.
 */
int ws_refuse_obj(struct ws *ws, struct obj *o, int rc, const struct err *e)
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
	ws_obj_event(ws, o, text);
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

/* Keys a target's config may give on several lines (a driver that takes
 * one refuses the repeat: struct driver's multi_keys). */
static const char *const config_multi_keys[] = { "host", NULL };

int ws_load_config(struct ws *ws, int64_t id, struct kv_list *cfg,
		   struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, F_CONFIG, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read config: %s", strerror(-rc));
	rc = ws_config_parse(buf, len, cfg, e);
	free(buf);
	return rc;
}

int ws_config_parse(const char *buf, size_t len, struct kv_list *cfg,
		    struct err *e)
{
	return kv_parse_multi(buf, len, cfg, config_multi_keys, e);
}
/* ---- creation, removal, rename ---------------------------------------- */

int ws_mkdir_p(const char *path, mode_t mode)
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
int ws_make_obj_dirs(struct ws *ws, const struct obj *o)
{
	char path[PATH_MAX];
	int dir, files, rc;

	/* 0711: a run executing as its creator must reach its working copy,
	 * but nobody may list the folders */
	ws_obj_path(ws, o->id, NULL, path);
	rc = ws_mkdir_p(path, 0711);
	if (rc || !ws_kind(o->kind)->user_files)
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

const char *ws_kind_page(int kind)
{
	return ws_kind(kind)->page;
}

int ws_page(struct ws *ws, int kind, uint32_t uid, uint32_t gid, char **buf,
	    size_t *len)
{
	const struct kind_ops *k = ws_kind(kind);

	if (!k->page || !k->page_render)
		return -ENOENT;
	return k->page_render(ws, uid, gid, buf, len);
}

/* The name of a kind's page is no object's (runs/index.html). */
static int name_free(int kind, const char *name, struct err *e)
{
	const char *page = ws_kind_page(kind);

	if (page && !strcmp(name, page))
		return err_set(e, -EEXIST, "%ss/%s is the page of all %ss:"
			       " choose another name", kind_name(kind), page,
			       kind_name(kind));
	return 0;
}

int ws_create(struct ws *ws, int kind, int64_t parent, const char *name,
	      uint32_t uid, uint32_t gid, struct obj *out, struct err *e)
{
	struct obj o = { 0 };
	int rc;

	rc = name_valid(name, e);
	if (!rc)
		rc = name_free(kind, name, e);
	if (rc)
		return rc;
	if (space_full(ws))
		return err_set(e, -ENOSPC, "%s '%s' was not made: no space left"
			       " on the file system of the state dir %s",
			       kind_name(kind), name, ws->dir);
	o.kind = kind;
	o.parent = parent;
	snprintf(o.name, sizeof(o.name), "%s", name);
	o.state = ws_kind(kind)->initial_state;
	o.uid = uid;
	o.gid = gid;
	/* whatever the umask: a target runs on its creator's credentials
	 * (ssh key, Slurm token), so it is theirs until they share it */
	o.mode = ws_kind(kind)->mode;
	o.created = o.changed = wall_s();
	o.exit_code = -1;
	rc = store_insert(ws->st, &o);
	if (rc == -EEXIST)
		return err_set(e, rc, "%s '%s' already exists", kind_name(kind),
			       name);
	if (rc)
		return err_set(e, rc, "cannot record %s '%s': %s",
			       kind_name(kind), name, strerror(-rc));
	rc = ws_make_obj_dirs(ws, &o);
	if (!rc && ws_kind(kind)->made) {
		rc = ws_kind(kind)->made(ws, &o, e);
		if (rc) {
			store_delete(ws->st, o.id);
			return rc;
		}
	}
	if (rc) {
		store_delete(ws->st, o.id);
		return err_set(e, rc, "cannot create the folder of %s '%s': %s",
			       kind_name(kind), name, strerror(-rc));
	}
	ws_obj_event(ws, &o, "created");
	*out = o;
	return 0;
}

static int busy_reason(struct ws *ws, const struct obj *o, struct err *e)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->busy ? k->busy(ws, o, e) : 0;
}

void worker_kick(struct ws *ws, int64_t id)
{
	if (ws->kick)
		ws->kick(ws, id);
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

int ws_ebusy(struct ws *ws, const struct obj *o)
{
	return ws_busy(ws, o) ? -EBUSY : 0;
}

void ws_refuse(struct ws *ws, int64_t id, int rc, const struct err *e)
{
	struct obj o;

	if (!store_get(ws->st, id, &o))
		ws_refuse_obj(ws, &o, rc, e);
}

static int remove_once(struct ws *ws, int64_t id, struct err *e)
{
	const struct kind_ops *k;
	struct obj o;
	int rc;

	rc = store_begin(ws->st);
	if (rc)
		return err_set(e, rc, "the store is unavailable");
	rc = store_get(ws->st, id, &o);
	if (rc) {
		store_rollback(ws->st);
		return err_set(e, rc, "no such object");
	}
	k = ws_kind(o.kind);
	rc = busy_reason(ws, &o, e);
	if (!rc && k->may_remove)
		rc = k->may_remove(ws, &o, e);
	if (!rc)
		rc = store_delete(ws->st, id);
	if (rc) {
		store_rollback(ws->st);
		if (!e->msg[0])
			err_set(e, rc, "cannot remove %s", o.name);
		if (rc == -EBUSY || rc == -EPERM || rc == -ENOTEMPTY)
			ws_refuse_obj(ws, &o, rc, e);
		return rc;
	}
	rc = store_commit(ws->st);
	if (rc)
		return err_set(e, rc, "cannot remove %s: the store failed",
			       o.name);
	ws_obj_event(ws, &o, "removed");
	trash_obj(ws, id);
	return 0;
}

int ws_remove(struct ws *ws, int64_t id, struct err *e)
{
	int rc;

	/* removing is how a user frees space: it works on a full disk */
	before_write(ws);
	rc = remove_once(ws, id, e);
	if (rc == -ENOSPC && use_reserve(ws)) {
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
	if (!rc)
		rc = name_free(o.kind, newname, e);
	if (!rc && ws_kind(o.kind)->may_rename)
		rc = ws_kind(o.kind)->may_rename(&o, e);
	if (rc)
		goto out_rollback;
	snprintf(old, sizeof(old), "%s", o.name);
	snprintf(o.name, sizeof(o.name), "%s", newname);
	o.changed = wall_s();
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
		ws_obj_event(ws, &o, text);
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
	return ws_kind(o->kind)->files_shared;
}

int ws_user_file_write(struct ws *ws, const struct obj *o, const char *path)
{
	(void)ws;
	return ws_files_shared(o) ? unshare_file(path) : 0;
}

int ws_files_writable(const struct obj *o)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->files_writable ? k->files_writable(o) : 0;
}

/* The sentence of a refused write below @root of @o (not writable now). */
static void files_readonly_why(const struct obj *o, int root, struct err *e)
{
	const struct kind_ops *k = ws_kind(o->kind);
	const struct file_desc *fd = ws_file_by_id(o->kind, root);

	if (fd && (fd->flags & FD_ENGINE))
		err_set(e, -EROFS, "%s/ of %s '%s' is written by %s only",
			fd->name, k->name, o->name, fd->writer);
	else if (k->files_readonly_why)
		k->files_readonly_why(o, e);
	else
		err_set(e, -EROFS, "the files of %s '%s' are read-only since"
			" it was submitted (it is %s)", k->name, o->name,
			state_name(o->state));
}

int ws_may_write_files(struct ws *ws, const struct obj *o, int root)
{
	struct err e;

	if (!(ws_root_flags(root) & FD_ENGINE) && ws_files_writable(o))
		return 0;
	files_readonly_why(o, root, &e);
	ws_refuse(ws, o->id, -EROFS, &e);
	return -EROFS;
}

int ws_obj_settled(const struct obj *o)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->settled ? k->settled(o) : 0;
}

/* ---- questions of the FUSE layer ----------------------------------------- */

int ws_child_kind(const struct obj *o)
{
	return ws_kind(o->kind)->child_kind;
}

int ws_holds_user_files(const struct obj *o, int file)
{
	const struct file_desc *fd;

	if (file == F_DIR)
		return ws_kind(o->kind)->user_files;
	fd = ws_file_by_id(o->kind, file);
	return fd && (fd->flags & FD_DIRECTORY);
}

/* The FD_DIRECTORY entry of file @root in any kind's table (one
 * numbering for all kinds: the first that shows it says), or NULL. */
static const struct file_desc *root_desc(int root)
{
	const struct file_desc *fd;

	for (int k = 1; k < K_COUNT; k++) {
		fd = ws_file_by_id(k, root);
		if (fd && (fd->flags & FD_DIRECTORY))
			return fd;
	}
	return NULL;
}

const char *ws_user_dir(int root)
{
	const struct file_desc *fd = root == F_DIR ? NULL : root_desc(root);

	return fd && fd->dir ? fd->dir : RUN_FILES;
}

int ws_root_flags(int root)
{
	const struct file_desc *fd;

	if (root == F_DIR)
		return FD_DIRECTORY;
	fd = root_desc(root);
	return fd ? fd->flags : 0;
}

void ws_engine_folders_changed(struct ws *ws, const struct obj *o)
{
	const struct file_desc *f;
	int n;

	if (!ws->hooks.inval_folder)
		return;
	f = ws_files(o->kind, &n);
	for (int i = 0; i < n; i++)
		if (f[i].flags & FD_ENGINE)
			ws->hooks.inval_folder(ws->hooks.ctx, o->id, f[i].file);
}

int ws_user_removable(const struct obj *o, int root)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->user_removable ? k->user_removable(o, root) : 1;
}

int ws_may_unlink_ctl(struct ws *ws, const struct obj *o)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->unlink_ctl ? k->unlink_ctl(ws, o) : 0;
}

int ws_may_rmdir_file(struct ws *ws, const struct obj *o, int file)
{
	const struct file_desc *fd = ws_file_by_id(o->kind, file);

	if (!fd || !(fd->flags & FD_DIRECTORY))
		return -ENOTDIR;
	return ws_ebusy(ws, o);
}

/* ---- reading settings ---------------------------------------------------- */

/* Prefix the sentence in @e with "@what: " (e->msg is copied first: it
 * cannot be both source and destination of err_set). */
static int err_prefix(struct err *e, int rc, const char *what)
{
	char tmp[ERR_MSG_MAX];

	snprintf(tmp, sizeof(tmp), "%s", e->msg);
	return err_set(e, rc, "%s: %s", what, tmp);
}

/* Texts beyond the control files, private to the backend. */
int ws_read_word(struct ws *ws, int64_t id, int file, const char *what,
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

/* ---- ctl: dispatch to the kind ------------------------------------------ */

#define CTL_MAX_CMDS 16

/*
 * `cat ctl` writes what a word stands for as <NEW>.  A write holding such
 * a word is what a copy tool does when it copies a run folder (cp -rT,
 * rsync, shutil.copytree write A's ctl text into B's ctl): refused whole,
 * so that the `submit` before it on a Draft's ctl does nothing either.
 */
static int ctl_placeholder(const struct ctl_cmd *cmds, int n, struct err *e)
{
	const struct ctl_cmd *c;

	for (int i = 0; i < n; i++) {
		c = &cmds[i];
		for (int j = 1; j < c->argc; j++)
			if (c->argv[j][0] == '<')
				return err_set(e, -EINVAL, "'%s' stands for a"
					       " name (as cat ctl shows the"
					       " commands): nothing done, write"
					       " '%s' with a name", c->argv[j],
					       c->argv[0]);
	}
	return 0;
}

int ws_ctl(struct ws *ws, int64_t id, const char *buf, size_t len,
	   uint32_t uid, uint32_t gid)
{
	const struct kind_ops *k;
	struct ctl_cmd *cmds;
	struct err e = { { 0 } };
	struct obj o;
	int n, rc = 0;

	if (store_get(ws->st, id, &o))
		return -ENOENT;
	k = ws_kind(o.kind);
	cmds = calloc(CTL_MAX_CMDS, sizeof(*cmds));
	if (!cmds)
		return -ENOMEM;
	n = ctl_split(buf, len, cmds, CTL_MAX_CMDS, &e);
	rc = n < 0 ? n : ctl_placeholder(cmds, n, &e);
	for (int i = 0; !rc && i < n; i++) {
		cmds[i].uid = uid;	/* a verb acting as the caller */
		cmds[i].gid = gid;
		if (k->verb)
			rc = k->verb(ws, &o, &cmds[i], &e);
		else
			rc = err_set(&e, -EINVAL, "%s folders take no commands"
				     " yet", kind_name(o.kind));
	}
	free(cmds);
	if (rc)
		return ws_refuse_obj(ws, &o, rc, &e);
	return 0;
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
void ws_set_hooks(struct ws *ws, const struct ws_hooks *hooks)
{
	ws->hooks = *hooks;
}
