// SPDX-License-Identifier: MIT
/*
 * The FUSE layer.  Thin: it maps inodes to workspace objects and files,
 * and asks backend/ (ws.h) for everything else.  Low-level API, so that
 * the kernel can cache entries, attributes and small files with long
 * timeouts and the backend can invalidate exactly what a change touched.
 *
 * Replies pass a positive errno; helpers return 0 or -errno.
 */
#include "fs.h"
#include "fs_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../backend/log.h"
#include "../backend/ws.h"
#include "beneath.h"
#include "creds.h"
#include "node.h"

/* ---- creating and removing ---------------------------------------------- */

/*
 * Where can user entry @name be made below @parent?  Fills @a (found,
 * not yet opened).  -EPERM in generated folders, -EEXIST for control-file
 * names, -EROFS when frozen.  Entries are made as their caller, who owns
 * them (and the kernel checks the folder's mode).
 */
static int user_target(struct mlfs *m, uint64_t parent, const char *name,
		       struct at *a, struct obj *o)
{
	int root, rc;

	rc = owner_of(m, parent, o, &root);
	if (rc)
		return rc;
	if (ino_is_obj(parent) && !holds_user_files(parent, o))
		return -EPERM;
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    ws_file_by_name(o->kind, name))
		return -EEXIST;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	rc = user_writable(m, o, root);
	if (rc)
		return rc;
	return at_find(m, parent, name, a);
}

/* Create user file @a as @req's caller: the fd or -errno. */
static int create_as_caller(fuse_req_t req, struct at *a, int flags,
			    mode_t mode)
{
	AS_CALLER(req);
	int rc = at_open(a);

	if (rc)
		return rc;
	return at_openat(a, (flags | O_CREAT) & ~O_NOCTTY, mode);
}

/* The entry of a file just created at @fd: 0 or -ENOMEM. */
static int created_entry(struct mlfs *m, uint64_t parent, const char *name,
			 int fd, struct fuse_entry_param *e)
{
	e->ino = nodes_get(m->nodes, parent, name);
	if (!e->ino || fstat(fd, &e->attr))
		return -ENOMEM;
	nodes_set_backing(m->nodes, e->ino, e->attr.st_ino);
	e->attr.st_ino = user_st_ino(e->attr.st_ino);
	e->attr.st_blksize = USER_BLKSIZE;
	e->attr_timeout = e->entry_timeout = m->timeout;
	return 0;
}

static void mlfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = { 0 };
	struct mlfs *m = M(req);
	struct obj o;
	struct fh *h;
	int rc, fd;
	AT(a);

	rc = user_target(m, parent, name, &a, &o);
	fd = rc ? rc : create_as_caller(req, &a, fi->flags, mode);
	h = fd >= 0 ? fh_new(FH_FD, o.id, 0) : NULL;
	rc = fd < 0 ? fd : !h ? -ENOMEM : 0;
	if (h)
		h->fd = fd;
	else if (fd >= 0)
		close(fd);
	if (!rc)
		rc = created_entry(m, parent, name, fd, &e);
	if (rc) {
		fh_free(h);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->keep_cache = 1;
	if (m->no_open) {
		/* no OPEN, no RELEASE: writes find the file by inode */
		fh_free(h);
		h = NULL;
	}
	fi->fh = (uintptr_t)h;
	nodes_ref(m->nodes, e.ino);
	if (fuse_reply_create(req, &e, fi)) {
		nodes_forget(m->nodes, e.ino, 1);
		fh_free(h);
	}
}

/* mkdir @a, or symlink @link at @a, as @req's caller. */
static int make_as_caller(fuse_req_t req, struct at *a, mode_t mode,
			  const char *link)
{
	AS_CALLER(req);
	int rc = at_open(a);

	if (!rc && (link ? symlinkat(link, a->dir, a->name) :
		    mkdirat(a->dir, a->name, mode)))
		rc = -errno;
	return rc;
}

/* A user folder or symlink @name in @parent: made and answered. */
static int make_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		     const char *name, mode_t mode, const char *link)
{
	struct ctl_view v = { .user = 1 };
	struct obj o;
	uint64_t ino;
	AT(a);
	int rc;

	rc = user_target(m, parent, name, &a, &o);
	if (!rc)
		rc = make_as_caller(req, &a, mode, link);
	if (!rc)
		rc = lookup_user(req, m, parent, name, &ino, &v.ust);
	if (!rc)
		rc = reply_entry(req, m, ino, &v);
	return rc;
}

static void mlfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mlfs *m = M(req);
	struct err e = { { 0 } };
	struct obj o;
	int kind, rc;

	kind = top_ino_kind(parent);
	if (kind) {
		rc = ws_create(m->ws, kind, 0, name, ctx->uid, ctx->gid, &o, &e);
	} else if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(parent), &o) && o.kind == K_MODEL) {
		rc = ws_create(m->ws, K_VERSION, o.id, name, ctx->uid, ctx->gid,
			       &o, &e);
	} else if (parent == INO_ROOT) {
		rc = -EPERM;
	} else {
		rc = make_user(req, m, parent, name, mode, NULL);
		if (!rc)
			return;
	}
	if (!rc)
		rc = reply_entry(req, m, obj_ino(o.id, F_DIR), NULL);
	if (rc) {
		if (e.msg[0])
			log_debug("mkdir %s: %s", name, e.msg);
		fuse_reply_err(req, -rc);
	}
}

/* May user entries below @parent be removed?  Draft or finished objects.
 * Fills @a (found, not yet opened). */
static int user_removable(struct mlfs *m, uint64_t parent, const char *name,
			  struct at *a)
{
	struct obj o;
	int root, rc;

	rc = owner_of(m, parent, &o, &root);
	if (rc)
		return rc;
	if ((o.kind == K_RUN && run_state_active(o.state)) ||
	    (root == F_OUTPUTS && o.kind == K_RUN && !run_state_final(o.state)) ||
	    (o.kind == K_VERSION && !ws_files_writable(&o)))
		return user_writable(m, &o, F_DIR);
	return at_find(m, parent, name, a);
}

/* unlink of a control file (rm -r of an object folder): nothing changes;
 * refused while the object is active, so that rm -r stops early. */
static int unlink_ctl(struct mlfs *m, const struct obj *o)
{
	if (o->kind == K_RUN && run_state_active(o->state))
		return -EBUSY;
	if ((o->kind == K_TARGET || o->kind == K_VERSION) &&
	    ws_busy(m->ws, o))
		return -EBUSY;
	return 0;
}

/* Remove user entry @name of @parent (@flags: AT_REMOVEDIR) as @req's
 * caller. */
static int remove_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		       const char *name, int flags)
{
	AT(a);
	int rc;

	rc = user_removable(m, parent, name, &a);
	if (!rc) {
		AS_CALLER(req);
		rc = at_open(&a);
		if (!rc && unlinkat(a.dir, a.name, flags))
			rc = -errno;
	}
	if (!rc)
		nodes_unlink(m->nodes, parent, name);
	return rc;
}

static void mlfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct file_desc *fd;
	struct mlfs *m = M(req);
	struct obj o;
	int rc;

	if (parent < INO_FIXED_MAX) {
		fuse_reply_err(req, parent == INO_ROOT ? EPERM : EISDIR);
		return;
	}
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    !ws_get(m->ws, ino_obj(parent), &o) &&
	    (fd = ws_file_by_name(o.kind, name))) {
		rc = fd->flags & FD_DIRECTORY ? -EISDIR : unlink_ctl(m, &o);
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_err(req, -remove_user(req, m, parent, name, 0));
}

static void mlfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mlfs *m = M(req);
	struct err e = { { 0 } };
	uint64_t ino;
	struct obj o;
	int rc;

	if (parent == INO_ROOT) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (top_ino_kind(parent) || (ino_is_obj(parent) &&
	    ino_file(parent) == F_DIR && !ws_get(m->ws, ino_obj(parent), &o) &&
	    o.kind == K_MODEL)) {
		rc = do_lookup(req, m, parent, name, &ino, NULL);
		if (!rc)
			rc = ws_remove(m->ws, ino_obj(ino), &e);
		if (rc && e.msg[0])
			log_debug("rmdir %s: %s", name, e.msg);
		fuse_reply_err(req, -rc);
		return;
	}
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    !ws_get(m->ws, ino_obj(parent), &o) &&
	    ws_file_by_name(o.kind, name)) {
		rc = !strcmp(name, "outputs") ?
		     (run_state_active(o.state) ? -EBUSY : 0) : -ENOTDIR;
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_err(req, -remove_user(req, m, parent, name, AT_REMOVEDIR));
}

/* The bytes of user file @a, read as @req's caller: malloc'd, or NULL
 * with *rc set. */
static char *slurp_as_caller(fuse_req_t req, struct at *a, ssize_t *len,
			     int *rc)
{
	AS_CALLER(req);
	struct stat st;
	char *buf;
	int f;

	*rc = at_open(a);
	f = *rc ? *rc : at_openat(a, O_RDONLY, 0);
	if (f < 0) {
		*rc = f;
		return NULL;
	}
	*rc = fstat(f, &st) || st.st_size > SETTING_MAX ? -EFBIG : 0;
	buf = *rc ? NULL : malloc(st.st_size + 1);
	*len = buf ? read(f, buf, st.st_size) : -1;
	close(f);
	if (!*rc && *len < 0)
		*rc = -EIO;
	if (*rc) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* An editor's rename-over of a setting: take the file's bytes. */
static int rename_onto_setting(fuse_req_t req, struct mlfs *m,
			       uint64_t parent, const char *name,
			       const struct obj *o, const struct file_desc *fd)
{
	ssize_t n;
	char *buf;
	AT(a);
	int rc;

	if (!(fd->flags & FD_SETTING))
		return -EACCES;
	rc = user_removable(m, parent, name, &a);
	if (rc)
		return rc;
	buf = slurp_as_caller(req, &a, &n, &rc);
	if (rc)
		return rc;
	rc = ws_setting_replace(m->ws, o->id, fd->file, buf, n);
	free(buf);
	if (rc)
		return rc;
	{
		AS_CALLER(req);
		unlinkat(a.dir, a.name, 0);
	}
	nodes_unlink(m->nodes, parent, name);
	inval_name(m, obj_ino(o->id, F_DIR), fd->name);
	inval_inode(m, obj_ino(o->id, fd->file), 0);
	return 0;
}

static int rename_object(fuse_req_t req, struct mlfs *m, uint64_t parent,
			 const char *name, const char *newname)
{
	struct err e = { { 0 } };
	uint64_t ino;
	int rc;

	rc = do_lookup(req, m, parent, name, &ino, NULL);
	if (!rc)
		rc = ws_rename(m->ws, ino_obj(ino), newname, &e);
	if (rc && e.msg[0])
		log_debug("rename %s: %s", name, e.msg);
	return rc;
}

/* Open both folders of a rename or link as @req's caller, then act. */
static int two_as_caller(fuse_req_t req, struct at *from, struct at *to,
			 unsigned flags, int link)
{
	AS_CALLER(req);
	int rc = at_open(from);

	if (!rc)
		rc = at_open(to);
	if (rc)
		return rc;
	if (link ? linkat(from->dir, from->name, to->dir, to->name, 0) :
	    renameat2(from->dir, from->name, to->dir, to->name, flags))
		return -errno;
	return 0;
}

static int rename_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		       const char *name, uint64_t newparent,
		       const char *newname, unsigned flags)
{
	struct obj no;
	AT(from);
	AT(to);
	int rc;

	rc = user_removable(m, parent, name, &from);
	if (!rc)
		rc = user_target(m, newparent, newname, &to, &no);
	if (!rc && from.id != no.id)
		rc = -EXDEV;
	if (!rc)
		rc = two_as_caller(req, &from, &to, flags, 0);
	if (!rc)
		nodes_move(m->nodes, parent, name, newparent, newname);
	return rc;
}

static void mlfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	const struct file_desc *fd;
	struct mlfs *m = M(req);
	struct obj o;
	int rc;

	if (parent == INO_ROOT || newparent == INO_ROOT) {
		rc = -EPERM;
	} else if (top_ino_kind(parent) || top_ino_kind(newparent)) {
		/* an object never replaces another (EEXIST): that is
		 * RENAME_NOREPLACE already; only EXCHANGE is refused */
		rc = parent != newparent ? -EXDEV :
		     (flags & ~RENAME_NOREPLACE) ? -EINVAL :
		     rename_object(req, m, parent, name, newname);
	} else if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(parent), &o) &&
		   ws_file_by_name(o.kind, name)) {
		rc = -EACCES;	/* control files stay where they are */
	} else if (ino_is_obj(newparent) && ino_file(newparent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(newparent), &o) &&
		   (fd = ws_file_by_name(o.kind, newname))) {
		rc = flags ? -EINVAL :
		     rename_onto_setting(req, m, parent, name, &o, fd);
	} else {
		rc = rename_user(req, m, parent, name, newparent, newname,
				 flags);
	}
	fuse_reply_err(req, -rc);
}

static void mlfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	int rc = make_user(req, M(req), parent, name, 0, link);

	if (rc)
		fuse_reply_err(req, -rc);
}

static void mlfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		      const char *newname)
{
	struct mlfs *m = M(req);
	struct obj no;
	AT(from);
	AT(to);
	int rc;

	rc = ino_is_user(ino) ? at_find(m, ino, NULL, &from) : -EPERM;
	if (!rc)
		rc = user_target(m, newparent, newname, &to, &no);
	if (!rc && from.id != no.id)
		rc = -EXDEV;
	if (!rc)
		rc = two_as_caller(req, &from, &to, 0, 1);
	if (!rc)	/* the first name's link count changed (attrs only) */
		inval_inode(m, ino, -1);
	if (!rc)
		rc = reply_entry(req, m, nodes_get(m->nodes, newparent, newname),
				 NULL);
	if (rc)
		fuse_reply_err(req, -rc);
}

static void mlfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[PATH_MAX];
	ssize_t n = -EINVAL;
	AT(a);

	if (ino_is_user(ino)) {
		n = at_find(M(req), ino, NULL, &a);
		if (!n) {
			AS_CALLER(req);
			n = at_open(&a);
			if (!n && (n = readlinkat(a.dir, a.name, target,
						  sizeof(target) - 1)) < 0)
				n = -errno;
		}
	}
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

/* ---- init ------------------------------------------------------------- */

static void mlfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mlfs *m = userdata;

	if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
		m->no_open = 1;
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
		m->no_opendir = 1;
	/* without OPEN requests, O_TRUNC must come as a SETATTR */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC && !m->no_open)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	/* the daemon decides what the page cache may keep (keep_cache and
	 * explicit invalidation), not the mtime */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->max_write = MAX_WRITE;
	conn->max_readahead = 1 << 20;
}

const struct fuse_lowlevel_ops mlfs_ops = {
	.init		= mlfs_init,
	.lookup		= mlfs_lookup,
	.forget		= mlfs_forget,
	.forget_multi	= mlfs_forget_multi,
	.getattr	= mlfs_getattr,
	.setattr	= mlfs_setattr,
	.readlink	= mlfs_readlink,
	.mknod		= NULL,
	.mkdir		= mlfs_mkdir,
	.unlink		= mlfs_unlink,
	.rmdir		= mlfs_rmdir,
	.symlink	= mlfs_symlink,
	.rename		= mlfs_rename,
	.link		= mlfs_link,
	.open		= mlfs_open,
	.read		= mlfs_read,
	.write		= mlfs_write,
	.write_buf	= mlfs_write_buf,
	.flush		= mlfs_flush,
	.release	= mlfs_release,
	.fsync		= mlfs_fsync,
	.opendir	= mlfs_opendir,
	.readdir	= mlfs_readdir,
	.releasedir	= mlfs_releasedir,
	.statfs		= mlfs_statfs,
	.create		= mlfs_create,
};

/* The state dir's objects/, which the daemon made and only it writes. */
static int open_objects(struct ws *ws)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/objects", ws_state_dir(ws));
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

struct mlfs *mlfs_new(struct ws *ws, const struct mlfs_opts *o)
{
	struct mlfs *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	creds_init();
	m->objects_fd = open_objects(ws);
	if (m->objects_fd < 0) {
		log_err("cannot open %s/objects: %s", ws_state_dir(ws),
			strerror(errno));
		free(m);
		return NULL;
	}
	if (nodes_init(&m->nodes)) {
		close(m->objects_fd);
		free(m);
		return NULL;
	}
	m->ws = ws;
	m->timeout = o->timeout;
	m->shared = o->shared;
	m->uid = getuid();
	m->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &m->mounted);
	pthread_mutex_init(&m->q_lock, NULL);
	pthread_cond_init(&m->q_cond, NULL);
	m->q_tail = &m->q;
	pthread_rwlock_init(&m->live_lock, NULL);
	pthread_mutex_init(&m->dc_lock, NULL);
	pthread_mutex_init(&m->sl_lock, NULL);
	m->stripes = calloc(NSTRIPES, sizeof(*m->stripes));
	m->lens = calloc(NLENS, sizeof(*m->lens));
	if (!m->stripes || !m->lens) {
		close(m->objects_fd);
		nodes_free(m->nodes);
		free(m->stripes);
		free(m->lens);
		free(m);
		return NULL;
	}
	return m;
}

void mlfs_free(struct mlfs *m)
{
	struct pending *p;

	if (!m)
		return;
	mlfs_quiesce(m);
	while ((p = m->q)) {
		m->q = p->next;
		free(p);
	}
	pthread_rwlock_destroy(&m->live_lock);
	free(m->mountpoint);
	for (size_t i = 0; i < sizeof(m->dc) / sizeof(m->dc[0]); i++)
		dh_free(m->dc[i]);
	nodes_free(m->nodes);
	close(m->objects_fd);
	free(m->stripes);
	free(m->lens);
	free(m);
}
