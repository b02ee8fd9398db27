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

/* ---- open, read, write ------------------------------------------------------ */

static struct fh *fh_new(enum fh_kind kind, int64_t id, int file)
{
	struct fh *h = calloc(1, sizeof(*h));

	if (h) {
		h->kind = kind;
		h->fd = -1;
		h->id = id;
		h->file = file;
	}
	return h;
}

static void fh_free(struct fh *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	free(h->buf);
	free(h);
}

static int wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int open_ctl_file(struct mlfs *m, const struct obj *o, int file,
			 struct fuse_file_info *fi, struct fh **hp)
{
	const struct file_desc *fd = ws_file_by_id(o->kind, file);
	char path[PATH_MAX];
	struct fh *h;
	int rc = 0;

	if (!fd)
		return -ENOENT;
	if (fd->flags & FD_DIRECTORY)
		return -EISDIR;
	if (wants_write(fi->flags) && !(fd->flags & (FD_SETTING | FD_CTL)))
		return -EACCES;
	if ((fd->flags & FD_SETTING) && wants_write(fi->flags) &&
	    !(ws_file_mode(m->ws, o, file) & 0200))
		return -EROFS;
	h = fh_new(fd->flags & FD_SETTING ? FH_SETTING :
		   fd->flags & FD_CTL ? FH_CTL :
		   fd->flags & FD_DISK ? FH_FD : FH_BUF, o->id, file);
	if (!h)
		return -ENOMEM;
	if (h->kind == FH_FD) {
		disk_file_path(m, o, file, path);
		h->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (h->fd < 0 && errno != ENOENT)
			rc = -errno;
	} else if (h->kind != FH_SETTING) {
		rc = ws_render(m->ws, o, file, &h->buf, &h->len);
	} else if (fi->flags & O_TRUNC) {
		rc = ws_setting_truncate(m->ws, o->id, file, 0);
	}
	if (rc) {
		fh_free(h);
		return rc;
	}
	fi->direct_io = h->kind == FH_CTL;
	fi->keep_cache = h->kind != FH_CTL;
	*hp = h;
	return 0;
}

/* May the user's files of @o below @root change now?  A refusal is
 * explained in the object's `error`. */
int user_writable(struct mlfs *m, const struct obj *o, int root)
{
	struct err e;

	if (root != F_OUTPUTS && ws_files_writable(o))
		return 0;
	if (root == F_OUTPUTS)
		err_set(&e, -EROFS, "outputs/ of run '%s' is written by the run"
			" only", o->name);
	else if (o->kind == K_VERSION)
		err_set(&e, -EROFS, "version %s of this model is in use by a deployment:"
			" its files are read-only", o->name);
	else
		err_set(&e, -EROFS, "the files of %s '%s' are read-only since"
			" it was submitted (it is %s)", kind_name(o->kind),
			o->name, o->state);
	ws_refuse(m->ws, o->id, -EROFS, &e);
	return -EROFS;
}

/*
 * User file @ino of @o, @a, is about to change (as the caller).  The
 * backend may make it a file of its own first (a model version's file
 * that still is a name of a run's output): then the old inode's other
 * names lose a link and this one has a new inode number, which the
 * kernel caches.
 */
int before_user_write(struct mlfs *m, uint64_t ino,
		      const struct obj *o, const struct at *a)
{
	char path[PATH_MAX + 64];
	uint64_t alias[16];
	struct stat sa, sb;
	int rc, n;

	if (!ws_files_shared(o) || at_stat(a, &sa))
		return 0;
	at_proc_path(a, path, sizeof(path));
	rc = ws_user_file_write(m->ws, o, path);
	if (rc || at_stat(a, &sb) || sa.st_ino == sb.st_ino)
		return rc;
	nodes_set_backing(m->nodes, ino, sb.st_ino);
	inval_inode(m, ino, -1);
	n = nodes_by_backing(m->nodes, sa.st_ino, ino, alias, 16);
	for (int i = 0; i < n; i++)
		inval_inode(m, alias[i], -1);
	return 0;
}

/*
 * Open user file @ino with @flags as @req's caller: the fd, or -errno.
 * A write is first checked against the object's state (as the daemon:
 * a refusal is explained in `error`).
 */
static int open_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
		     int flags, int *root)
{
	struct obj o;
	AT(a);
	int rc;

	rc = at_find(m, ino, NULL, &a);
	if (!rc)
		rc = ws_get(m->ws, a.id, &o);
	if (!rc && wants_write(flags))
		rc = user_writable(m, &o, a.root);
	if (rc)
		return rc;
	*root = a.root;
	AS_CALLER(req);
	rc = at_open(&a);
	if (!rc && wants_write(flags))
		rc = before_user_write(m, ino, &o, &a);
	if (rc)
		return rc;
	return at_openat(&a, flags & ~(O_CREAT | O_EXCL | O_NOCTTY), 0);
}

static int open_user_file(fuse_req_t req, struct mlfs *m, uint64_t ino,
			  struct fuse_file_info *fi, struct fh **hp)
{
	struct fh *h;
	int root, fd;

	fd = open_user(req, m, ino, fi->flags, &root);
	if (fd < 0)
		return fd;
	h = fh_new(FH_FD, 0, 0);
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	fi->keep_cache = root != F_OUTPUTS;
	*hp = h;
	return 0;
}

static void mlfs_open(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);
	struct fh *h = NULL;
	struct obj o;
	int rc;

	if (m->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (ino == INO_README) {
		rc = wants_write(fi->flags) ? -EACCES : 0;
		h = rc ? NULL : fh_new(FH_BUF, 0, 0);
		if (h)
			h->buf = strdup(readme_text);
		if (h)
			h->len = sizeof(readme_text) - 1;
		fi->keep_cache = 1;
	} else if (ino == INO_EVENTS) {
		rc = wants_write(fi->flags) ? -EACCES : 0;
		h = rc ? NULL : fh_new(FH_FD, 0, 0);
		if (h)
			h->fd = open(ws_events_path(M(req)->ws),
				     O_RDONLY | O_CLOEXEC);
		fi->keep_cache = 1;
	} else if (ino_is_user(ino)) {
		rc = open_user_file(req, m, ino, fi, &h);
	} else if (ino_is_obj(ino)) {
		rc = ws_get(m->ws, ino_obj(ino), &o);
		if (!rc)
			rc = open_ctl_file(m, &o, ino_file(ino), fi, &h);
	} else {
		rc = -EISDIR;
	}
	if (!rc && !h)
		rc = -ENOMEM;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi))
		fh_free(h);
}

static void reply_slice(fuse_req_t req, const char *buf, size_t len,
			size_t size, off_t off)
{
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf + off, len - off < size ? len - off : size);
}

/* Reply with bytes of the file at @path (spliced, no copy). */
static void reply_path(fuse_req_t req, const char *path, size_t size,
		       off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		if (errno == ENOENT)
			fuse_reply_buf(req, NULL, 0);	/* not written yet */
		else
			fuse_reply_err(req, errno);
		return;
	}
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
	close(fd);
}

static void reply_fd(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* Read user file @ino as @req's caller. */
static void read_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
		      size_t size, off_t off)
{
	int root, fd;

	fd = open_user(req, m, ino, O_RDONLY, &root);
	if (fd == -ENOENT) {
		fuse_reply_buf(req, NULL, 0);	/* gone meanwhile */
	} else if (fd < 0) {
		fuse_reply_err(req, -fd);
	} else {
		reply_fd(req, fd, size, off);
		close(fd);
	}
}

/* read without a handle (FUSE_CAP_NO_OPEN_SUPPORT): decide by inode. */
static void read_ino(fuse_req_t req, struct mlfs *m, uint64_t ino,
		     size_t size, off_t off)
{
	const struct file_desc *fd;
	char path[PATH_MAX], *buf;
	struct obj o;
	size_t len;
	int rc;

	if (ino == INO_README) {
		reply_slice(req, readme_text, sizeof(readme_text) - 1, size, off);
		return;
	}
	if (ino == INO_EVENTS) {
		reply_path(req, ws_events_path(m->ws), size, off);
		return;
	}
	if (ino_is_user(ino)) {
		read_user(req, m, ino, size, off);
		return;
	}
	rc = ino_is_obj(ino) ? ws_get(m->ws, ino_obj(ino), &o) : -EISDIR;
	fd = rc ? NULL : ws_file_by_id(o.kind, ino_file(ino));
	if (!rc && (!fd || (fd->flags & FD_DIRECTORY)))
		rc = -EISDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fd->flags & FD_DISK) {
		disk_file_path(m, &o, fd->file, path);
		reply_path(req, path, size, off);
		return;
	}
	if (!versioned(fd)) {
		rc = ws_render(m->ws, &o, fd->file, &buf, &len);
	} else {
		/* a version gone from the stash (rare: its pages were
		 * dropped while someone kept it open): the bytes of now */
		buf = NULL;
		rc = version_bytes(m, ino, &o, fd->file, &buf, &len);
		if (rc == -ESTALE && buf)
			rc = 0;
	}
	if (rc) {
		free(buf);
		fuse_reply_err(req, -rc);
		return;
	}
	reply_slice(req, buf, len, size, off);
	free(buf);
}

static void mlfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	size_t len;
	char *buf;
	int rc;

	if (!h) {
		read_ino(req, M(req), ino, size, off);
		return;
	}
	switch (h->kind) {
	case FH_BUF:
	case FH_CTL:
		reply_slice(req, h->buf, h->len, size, off);
		return;
	case FH_SETTING:
		rc = ws_render(M(req)->ws, &(struct obj){ .id = h->id },
			       h->file, &buf, &len);
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
		reply_slice(req, buf, len, size, off);
		free(buf);
		return;
	case FH_FD:
		if (h->fd < 0)
			fuse_reply_buf(req, NULL, 0);
		else
			reply_fd(req, h->fd, size, off);
		return;
	}
}

/* Open user file @ino for one write (no handles: FUSE_CAP_NO_OPEN).
 * The fd, or -1 with *err set to -errno. */
static int open_user_for_write(fuse_req_t req, struct mlfs *m, uint64_t ino,
			       ssize_t *err)
{
	int root, fd;

	fd = open_user(req, m, ino, O_WRONLY, &root);
	if (fd < 0)
		*err = fd;
	return fd;
}

/* A file with hard links changed: the kernel caches each name apart.
 * Notified with no lock held: a READ of another name may hold its page
 * while it resolves its path in the node table. */
static void wrote_user(struct mlfs *m, uint64_t ino, int fd)
{
	uint64_t alias[16];
	struct stat st;
	int n;

	if (fstat(fd, &st) || st.st_nlink < 2)
		return;
	n = nodes_by_backing(m->nodes, st.st_ino, ino, alias, 16);
	for (int i = 0; i < n; i++)
		inval_inode(m, alias[i], 0);
}

/* A write to user file @ino failed with @rc: a full disk is explained in
 * its object's `error` (the write itself fails with ENOSPC). */
static void explain_write(struct mlfs *m, uint64_t ino, int rc)
{
	struct err e;
	struct obj o;
	int root;

	if ((rc != -ENOSPC && rc != -EDQUOT) || owner_of(m, ino, &o, &root))
		return;
	err_set(&e, rc, "a file of %s '%s' was not written: no space left on"
		" the file system of the state dir %s", kind_name(o.kind),
		o.name, ws_state_dir(m->ws));
	ws_refuse(m->ws, o.id, rc, &e);
}

/* write to a user file without a handle: open, pwrite, close. */
/*
 * Write @in to user file @fd at @off as @req's caller (a write as root
 * would keep the set-id bits a user's write clears), within the room
 * users have.  Bytes written or -errno.
 */
static ssize_t user_write(fuse_req_t req, struct mlfs *m, int fd,
			  struct fuse_bufvec *in, off_t off)
{
	size_t size = ws_user_room(m->ws, fuse_buf_size(in));
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);

	if (!size && fuse_buf_size(in))
		return -ENOSPC;
	dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	dst.buf[0].fd = fd;
	dst.buf[0].pos = off;
	AS_CALLER(req);
	return fuse_buf_copy(&dst, in, FUSE_BUF_SPLICE_NONBLOCK);
}

/* The same from memory. */
static ssize_t user_pwrite(fuse_req_t req, struct mlfs *m, int fd,
			   const char *buf, size_t size, off_t off)
{
	struct fuse_bufvec in = FUSE_BUFVEC_INIT(size);

	in.buf[0].mem = (void *)buf;
	return user_write(req, m, fd, &in, off);
}

static int write_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
		      const char *buf, size_t size, off_t off, size_t *done)
{
	ssize_t n, err = 0;
	int rc, fd;

	fd = open_user_for_write(req, m, ino, &err);
	if (fd < 0)
		return (int)err;
	n = user_pwrite(req, m, fd, buf, size, off);
	rc = n < 0 ? (int)n : 0;
	if (!rc)
		wrote_user(m, ino, fd);
	close(fd);
	*done = n < 0 ? 0 : (size_t)n;
	explain_write(m, ino, rc);
	return rc;
}

/* write without a handle: a ctl command, a setting, a user file. */
static int write_ino(fuse_req_t req, struct mlfs *m, uint64_t ino,
		     const char *buf, size_t *size, off_t off)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	const struct file_desc *fd;
	struct obj o;

	if (ino_is_user(ino))
		return write_user(req, m, ino, buf, *size, off, size);
	if (!ino_is_obj(ino))
		return -EACCES;
	if (ws_get(m->ws, ino_obj(ino), &o))
		return -ENOENT;		/* removed meanwhile */
	fd = ws_file_by_id(o.kind, ino_file(ino));
	if (!fd || !(fd->flags & (FD_CTL | FD_SETTING)))
		return -EACCES;
	if (fd->flags & FD_SETTING)
		return ws_setting_write(m->ws, o.id, fd->file, buf, *size, off);
	/* the written bytes sit in ctl's page cache: drop them (later: the
	 * kernel holds those pages locked until this write is answered) */
	inval_inode(m, ino, 0);
	if (*size > CTL_WRITE_MAX)
		return -EFBIG;
	return ws_ctl(m->ws, o.id, buf, *size, ctx->uid, ctx->gid);
}

static void mlfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mlfs *m = M(req);
	ssize_t n;
	int rc;

	if (!h) {
		rc = write_ino(req, m, ino, buf, &size, off);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_write(req, size);
		return;
	}
	switch (h->kind) {
	case FH_CTL:
		rc = size > CTL_WRITE_MAX ? -EFBIG :
		     ws_ctl(m->ws, h->id, buf, size, ctx->uid, ctx->gid);
		break;
	case FH_SETTING:
		rc = ws_setting_write(m->ws, h->id, h->file, buf, size, off);
		break;
	case FH_FD:
		n = user_pwrite(req, m, h->fd, buf, size, off);
		rc = n < 0 ? (int)n : 0;
		explain_write(m, ino, rc);
		if (!rc)
			size = n;
		break;
	default:
		rc = -EACCES;
		break;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/*
 * write_buf: with FUSE_CAP_SPLICE_READ the bytes may still sit in a pipe;
 * user files take them straight from it (splice), everything else gets a
 * copy in memory first.
 */
static void mlfs_write_buf(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_bufvec *in, off_t off,
			   struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	int fd = h && h->kind == FH_FD ? h->fd : -1;
	ssize_t n;

	if (!h && ino_is_user(ino))
		fd = open_user_for_write(req, M(req), ino, &n);
	if (!h && ino_is_user(ino) && fd < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	if (fd >= 0) {
		n = user_write(req, M(req), fd, in, off);
		if (n > 0)
			wrote_user(M(req), ino, fd);
		if (!h)
			close(fd);
		explain_write(M(req), ino, n < 0 ? (int)n : 0);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_write(req, (size_t)n);
		return;
	}
	mem.buf[0].mem = malloc(size ? size : 1);
	if (!mem.buf[0].mem) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fuse_buf_copy(&mem, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		mlfs_write(req, ino, mem.buf[0].mem, (size_t)n, off, fi);
	free(mem.buf[0].mem);
}

static void mlfs_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	(void)ino;
	fh_free((struct fh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Nothing to do at close: ENOSYS tells the kernel never to ask again. */
static void mlfs_flush(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void mlfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int root, fd, rc = 0;

	if (h && h->kind == FH_FD && h->fd >= 0) {
		rc = (datasync ? fdatasync(h->fd) : fsync(h->fd)) ? errno : 0;
	} else if (!h && ino_is_user(ino) &&
		   (fd = open_user(req, M(req), ino, O_RDONLY, &root)) >= 0) {
		rc = (datasync ? fdatasync(fd) : fsync(fd)) ? errno : 0;
		close(fd);
	}
	fuse_reply_err(req, rc == EINVAL || rc == EBADF ? 0 : rc);
}

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
