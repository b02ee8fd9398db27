// SPDX-License-Identifier: MIT
/*
 * Models: `register NAME [PATH]` makes a version of models/NAME from a
 * Completed run's outputs (hard links to them: ws_user_file_write parts a
 * file from the run's before it is changed; never through a symlink, only
 * the run owner's own files, set-id bits dropped); a version that a deployment
 * serves is InUse (its files are read-only, rmdir says EBUSY) until no
 * deployment does.  And the tables of the model and version kinds.
 * register runs on the FUSE request thread of the ctl write;
 * models_sync_use on whichever thread changed a deployment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy_i.h"
#include "../lib/log.h"
#include "../lib/vec.h"
#include "ws_i.h"

/* ---- register: the files, by fd, never through a symlink ---------------- */

/*
 * The run's outputs are the user's: any name in them may be a symlink to a
 * root file, or be swapped for one while register walks them.  So every
 * entry is opened O_PATH|O_NOFOLLOW from the fd of its folder, checked by
 * fstat (a symlink is refused, a file not the run owner's is refused), and
 * linked by that fd (linkat AT_EMPTY_PATH): what was checked is what is
 * linked.  A file with a set-id bit is copied without it instead (a link
 * would share the inode, and stripping its bits would change the run's).
 */
struct reg {
	uid_t uid;		/* the run's owner: the version's files are theirs */
	gid_t gid;
	int check_only;		/* the first pass: look, make nothing */
	int depth;
	const char *run;	/* its name, for sentences */
	char path[PATH_MAX];	/* "outputs/…" of the entry at hand */
};

static size_t path_push(struct reg *g, const char *name)
{
	size_t l = strlen(g->path);

	snprintf(g->path + l, sizeof(g->path) - l, l ? "/%s" : "%s", name);
	return l;
}

static int refuse_symlink(const struct reg *g, struct err *e)
{
	return err_set(e, -EINVAL, "%s is a symbolic link: register copies"
		       " only regular files and folders", g->path);
}

/* The file or folder in @st is the run owner's (a root daemon only: a
 * daemon run by its user reaches nothing that user cannot). */
static int reg_owned(const struct reg *g, const struct stat *st,
		     struct err *e)
{
	if (geteuid() != 0 || st->st_uid == g->uid)
		return 0;
	return err_set(e, -EACCES, "%s belongs to uid %u, not to the run's"
		       " owner: register takes only the run's own files",
		       g->path, (unsigned)st->st_uid);
}

/* A new name @name in @ddir for the inode of O_PATH fd @fd. */
static int link_fd(int fd, int ddir, const char *name)
{
	char proc[64];

	if (!linkat(fd, "", ddir, name, AT_EMPTY_PATH))
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH: the same inode by /proc */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, ddir, name, AT_SYMLINK_FOLLOW) ?
	       -errno : 0;
}

static int copy_bytes(int in, int out)
{
	char buf[1 << 16];
	ssize_t n;

	while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
		;
	if (n == 0)
		return 0;
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL)
		return -errno;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			return errno ? -errno : -EIO;
	return n < 0 ? -errno : 0;
}

/* A copy of the file (O_PATH fd @fd) as @name in @ddir: the run owner's,
 * mode without set-id bits. */
static int copy_fd(const struct reg *g, int fd, const struct stat *st,
		   int ddir, const char *name)
{
	char proc[64];
	int in, out, rc;

	/* the inode checked, reopened (its magic link is followed as such) */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	in = open(proc, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, 0600);
	rc = out < 0 ? -errno : copy_bytes(in, out);
	if (!rc && geteuid() == 0 && fchown(out, g->uid, g->gid))
		rc = -errno;
	if (!rc && fchmod(out, st->st_mode & 0777))
		rc = -errno;
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

static int reg_fd(struct reg *g, int fd, const struct stat *st, int ddir,
		  const char *name, struct err *e);

/* Every entry of the folder @dfd (readable fd) into @ddir. */
static int reg_children(struct reg *g, int dfd, int ddir, struct err *e)
{
	struct dirent *de;
	struct stat st;
	int d2 = dup(dfd), fd, rc = 0;
	DIR *dir = d2 >= 0 ? fdopendir(d2) : NULL;

	if (!dir)
		return err_set(e, -errno, "cannot read %s: %s", g->path,
			       strerror(errno));
	while (!rc && (de = readdir(dir))) {
		size_t l;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		l = path_push(g, de->d_name);
		fd = openat(dfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st))
			rc = err_set(e, -errno, "cannot open %s: %s", g->path,
				     strerror(errno));
		else
			rc = reg_fd(g, fd, &st, ddir, de->d_name, e);
		if (fd >= 0)
			close(fd);
		if (!rc)
			g->path[l] = '\0';
	}
	closedir(dir);
	return rc;
}

/* The folder (O_PATH fd @fd) as a new folder @name of @ddir, or with
 * @name NULL its entries straight into @ddir. */
static int reg_dir(struct reg *g, int fd, const struct stat *st, int ddir,
		   const char *name, struct err *e)
{
	int s, d = -1, rc;

	if (g->depth > 256)
		return err_set(e, -ELOOP, "%s is nested too deep", g->path);
	s = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s < 0)
		return err_set(e, -errno, "cannot open %s: %s", g->path,
			       strerror(errno));
	if (!g->check_only && name && mkdirat(ddir, name, 0700))
		rc = -errno;
	else
		rc = 0;
	if (!rc && !g->check_only)
		d = name ? openat(ddir, name, O_RDONLY | O_DIRECTORY |
				  O_NOFOLLOW | O_CLOEXEC) : dup(ddir);
	if (!rc && !g->check_only && d < 0)
		rc = -errno;
	if (rc) {
		close(s);
		return err_set(e, rc, "cannot make %s in the version: %s",
			       g->path, strerror(-rc));
	}
	g->depth++;
	rc = reg_children(g, s, d, e);
	g->depth--;
	if (!rc && d >= 0 && geteuid() == 0 && fchown(d, g->uid, g->gid))
		rc = err_set(e, -errno, "cannot give %s to its owner: %s",
			     g->path, strerror(errno));
	if (!rc && d >= 0 && fchmod(d, st->st_mode & 0777))
		rc = err_set(e, -errno, "cannot set the mode of %s: %s",
			     g->path, strerror(errno));
	if (d >= 0)
		close(d);
	close(s);
	return rc;
}

/* One entry (O_PATH fd @fd, @st its fstat) as @name in @ddir. */
static int reg_fd(struct reg *g, int fd, const struct stat *st, int ddir,
		  const char *name, struct err *e)
{
	int rc;

	if (S_ISLNK(st->st_mode))
		return refuse_symlink(g, e);
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return 0;	/* fifos, sockets, devices: not copied */
	rc = reg_owned(g, st, e);
	if (rc)
		return rc;
	if (S_ISDIR(st->st_mode))
		return reg_dir(g, fd, st, ddir, name, e);
	if (g->check_only)
		return 0;
	rc = st->st_mode & (S_ISUID | S_ISGID) ? copy_fd(g, fd, st, ddir, name)
	     : link_fd(fd, ddir, name);
	if (rc == -EMLINK)	/* too many names already: a copy */
		rc = copy_fd(g, fd, st, ddir, name);
	if (rc)
		return err_set(e, rc, "cannot put %s in the version: %s",
			       g->path, strerror(-rc));
	return 0;
}

/* ---- register: what PATH names ------------------------------------------- */

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

static int fd_dir_empty(int fd)
{
	int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = d >= 0 ? fdopendir(d) : NULL;
	struct dirent *de;
	int empty = 1;

	if (!dir && d >= 0)
		close(d);
	while (dir && empty && (de = readdir(dir)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	if (dir)
		closedir(dir);
	return empty;
}

/* What register copies: the O_PATH fd of the entry, its fstat, its name
 * ("" for the whole of outputs/). */
struct reg_src {
	int fd;
	struct stat st;
	char name[NAME_MAX + 1];
};

/* Step from @src into its entry @name (no symlink followed). */
static int src_step(struct reg *g, struct reg_src *src, const char *name,
		    struct err *e)
{
	int fd = openat(src->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	path_push(g, name);
	if (fd < 0 || fstat(fd, &src->st)) {
		int rc = -errno;

		if (fd >= 0)
			close(fd);
		return err_set(e, rc == -ENOENT || rc == -ENOTDIR ? -ENOENT : rc,
			       "runs/%s/%s is not a file or folder", g->run,
			       g->path);
	}
	close(src->fd);
	src->fd = fd;
	snprintf(src->name, sizeof(src->name), "%s", name);
	if (S_ISLNK(src->st.st_mode))
		return refuse_symlink(g, e);
	return reg_owned(g, &src->st, e);
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


/* Walk PATH component by component from the fd of outputs/. */
static int src_walk(struct reg *g, struct reg_src *src, const char *path,
		    struct err *e)
{
	char comp[NAME_MAX + 1];
	const char *p = path;
	int rc = 0;

	while (*p && !rc) {
		size_t n = strcspn(p, "/");

		if (n > NAME_MAX)
			return err_set(e, -ENAMETOOLONG, "PATH '%s' has a name"
				       " longer than %d bytes", path, NAME_MAX);
		snprintf(comp, sizeof(comp), "%.*s", (int)n, p);
		p += n;
		while (*p == '/')
			p++;
		if (!n || !strcmp(comp, "."))
			continue;
		if (!S_ISDIR(src->st.st_mode))
			return err_set(e, -ENOENT, "runs/%s/%s is not a folder",
				       g->run, g->path);
		rc = src_step(g, src, comp, e);
	}
	return rc;
}

/*
 * The entry to register, from the run's working copy: outputs/ (refused
 * if a symlink) then each component of PATH.  g->path ends as the name
 * shown in sentences.  0 (src->fd to close) or -errno with a sentence.
 */
static int register_source(struct ws *ws, const struct obj *run,
			   const struct ctl_cmd *c, struct reg *g,
			   struct reg_src *src, struct err *e)
{
	char work[PATH_MAX];
	int rc;

	ws_obj_path(ws, run->id, RUN_WORK, work);
	src->fd = open(work, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (src->fd < 0)
		return err_set(e, -ENOENT, "run '%s' has no working copy to"
			       " register from", run->name);
	g->run = run->name;
	g->path[0] = '\0';
	rc = src_step(g, src, "outputs", e);
	src->name[0] = '\0';
	if (rc == -ENOENT || (!rc && !S_ISDIR(src->st.st_mode)))
		return err_set(e, -ENOENT, "run '%s' has no outputs/ folder",
			       run->name);
	if (!rc && c->argc > 2 && !(rc = path_valid(c->argv[2], e)))
		rc = src_walk(g, src, c->argv[2], e);
	if (!rc && !src->name[0] && fd_dir_empty(src->fd))
		return err_set(e, -ENOENT, "run '%s' has nothing in outputs/"
			       " to register", run->name);
	return rc;
}
/* models/NAME, made when missing (*@made then 1).  0 or -errno with a
 * sentence. */
static int model_get(struct ws *ws, const struct obj *run, const char *name,
		     struct obj *m, int *made, struct err *e)
{
	int rc;

	*made = 0;
	if (!ws_find(ws, K_MODEL, 0, name, m))
		return model_owned(run, m, e);
	rc = ws_create(ws, K_MODEL, 0, name, run->uid, run->gid, m, e);
	if (rc == -EEXIST && !ws_find(ws, K_MODEL, 0, name, m))
		return model_owned(run, m, e);
	*made = !rc;
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

/* A model this register made, when the register fails: it goes. */
static void model_drop(struct ws *ws, const struct obj *m, int made)
{
	struct err ignore = { { 0 } };

	if (made && !ws_remove(ws, m->id, &ignore) && ws->hooks.inval_entry)
		ws->hooks.inval_entry(ws->hooks.ctx, K_MODEL, 0, m->name);
}

/* The files of the version @v: the second pass, by fd.  On failure the
 * version goes, and the model too when this register made it. */
static int register_fill(struct ws *ws, struct reg *g, struct reg_src *src,
			 const struct obj *m, int made, const struct obj *v,
			 struct err *e)
{
	char dst[PATH_MAX], why[ERR_MSG_MAX];
	struct err ignore = { { 0 } };
	int d, rc;

	ws_obj_path(ws, v->id, RUN_FILES, dst);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	g->check_only = 0;
	rc = d < 0 ? err_set(e, -errno, "cannot open the version's folder: %s",
			     strerror(errno)) :
	     reg_fd(g, src->fd, &src->st, d, src->name[0] ? src->name : NULL,
		    e);
	if (!rc && geteuid() == 0 && fchown(d, g->uid, g->gid))
		rc = err_set(e, -errno, "cannot give the version's folder to"
			     " its owner: %s", strerror(errno));
	if (d >= 0)
		close(d);
	if (!rc)
		return 0;
	/* e->msg is both the reason and where the sentence goes: copy it */
	snprintf(why, sizeof(why), "%s", e->msg);
	ws_remove(ws, v->id, &ignore);
	model_drop(ws, m, made);
	return err_set(e, rc, "%s", why);
}

int model_register(struct ws *ws, const struct obj *run,
		   const struct ctl_cmd *c, struct err *e)
{
	struct reg_src src = { .fd = -1 };
	struct reg g = { .uid = run->uid, .gid = run->gid, .check_only = 1 };
	char ev[2 * MLFS_NAME_MAX + 2], text[MLFS_NAME_MAX + 32];
	struct obj m, v;
	int made = 0, rc;

	if (c->argc < 2 || c->argc > 3)
		return err_set(e, -EINVAL, "usage: register NAME [PATH]");
	if (run->state != RS_COMPLETED)
		return err_set(e, -EBUSY, "run '%s' is %s: register works only"
			       " on a Completed run", run->name,
			       state_name(run->state));
	rc = name_valid(c->argv[1], e);
	if (!rc)
		rc = register_source(ws, run, c, &g, &src, e);
	/* a first pass makes nothing: most refusals leave no trace */
	if (!rc)
		rc = reg_fd(&g, src.fd, &src.st, -1, src.name[0] ? src.name :
			    NULL, e);
	if (!rc)
		rc = model_get(ws, run, c->argv[1], &m, &made, e);
	if (!rc && (rc = version_new(ws, run, &m, &v, e)))
		model_drop(ws, &m, made);
	if (!rc)
		rc = register_fill(ws, &g, &src, &m, made, &v, e);
	if (src.fd >= 0)
		close(src.fd);
	if (rc)
		return rc;
	source_save(ws, run, &v, c);
	snprintf(ev, sizeof(ev), "%s:%s", m.name, v.name);
	snprintf(text, sizeof(text), "registered from run %s", run->name);
	ws_event(ws, K_VERSION, ev, text);
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

	if (o->state != VS_IN_USE)
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
	enum obj_state want;
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
	if (v->state == want)
		goto out_rollback;	/* nothing to change */
	v->state = want;
	v->changed = wall_s();
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
	ws_event(ws, K_VERSION, name, state_name(v.state));
	ws_inval(ws, v.id, FBIT(F_INFO) | FBIT(F_DIR));
}

struct idlist {
	int64_t *v;
	size_t n, cap;
};

static int id_cb(void *arg, const struct obj *o)
{
	struct idlist *l = arg;

	return vec_push(l, o->id) ? 1 : 0;
}

void models_reconcile(struct ws *ws)
{
	struct idlist l = { 0 };

	store_list_kind_state(ws->st, K_VERSION, VS_IN_USE, id_cb, &l);
	for (size_t i = 0; i < l.n; i++)
		models_sync_use(ws, l.v[i]);
	vec_free(&l);
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

/* ---- the model and version kinds ----------------------------------------- */

static int count_cb(void *arg, const struct obj *o)
{
	(void)o;
	++*(int *)arg;
	return 1;
}

static int model_may_remove(struct ws *ws, const struct obj *o, struct err *e)
{
	int n = 0;

	store_list(ws->st, K_VERSION, o->id, 0, count_cb, &n);
	if (n)
		return err_set(e, -ENOTEMPTY, "model '%s' still has"
			       " versions", o->name);
	return 0;
}

/* models/NAME: a folder of versions, nothing else. */
const struct kind_ops model_kind = {
	.name			= "model",
	.files			= NULL,
	.nfiles			= 0,
	.initial_state		= VS_READY,
	.mode			= 0755,
	.user_files		= 0,
	.files_shared		= 0,
	.child_kind		= K_VERSION,
	.verb			= NULL,
	.ctl_valid		= NULL,
	.json			= NULL,
	.busy			= NULL,
	.may_remove		= model_may_remove,
	.may_rename		= NULL,
	.setting_writable	= NULL,
	.files_writable		= NULL,
	.files_readonly_why	= NULL,
	.settled		= NULL,
	.user_removable		= NULL,
	.unlink_ctl		= NULL,
	.worker_of		= NULL,
	.render			= NULL,
};

static const struct file_desc version_files[] = {
	{ "info.json",	F_INFO,		FD_GEN },
};


static int version_files_writable(const struct obj *o)
{
	return o->state == VS_READY || o->state == RS_DRAFT;
}

static int version_user_removable(const struct obj *o, int root)
{
	(void)root;
	return version_files_writable(o);
}

/* models/NAME/VERSION: files made by register (or copied in), frozen
 * while a deployment serves them. */
/* The sentence for a write refused in a version's files. */
static void version_readonly_why(const struct obj *o, struct err *e)
{
	err_set(e, -EROFS, "version %s of this model is in use by a deployment:"
		" its files are read-only", o->name);
}

const struct kind_ops version_kind = {
	.name			= "model",
	.files			= version_files,
	.nfiles			= sizeof(version_files) /
				  sizeof(version_files[0]),
	.initial_state		= VS_READY,
	.mode			= 0755,
	.user_files		= 1,
	.files_shared		= 1,
	.child_kind		= K_NONE,
	.verb			= NULL,
	.ctl_valid		= NULL,
	.json			= version_json,
	.busy			= version_busy,
	.may_remove		= NULL,
	.may_rename		= NULL,
	.setting_writable	= NULL,
	.files_writable		= version_files_writable,
	.files_readonly_why	= version_readonly_why,
	.settled		= NULL,
	.user_removable		= version_user_removable,
	.unlink_ctl		= ws_ebusy,
	.worker_of		= NULL,
	.render			= NULL,
};
