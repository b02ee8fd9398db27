// SPDX-License-Identifier: MIT
/*
 * Opening and reading files: OPEN of control files (a generated file's
 * rendering is held by the handle), of files on disk (log, metrics,
 * events) and of user files (as the caller, once the object's state
 * allows a write); READ with a handle or without (FUSE_CAP_NO_OPEN_SUPPORT),
 * RELEASE, FLUSH, FSYNC; FALLOCATE of user files.  FUSE request threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "fs_i.h"

struct fh *fh_new(enum fh_kind kind, int64_t id, int file)
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

void fh_free(struct fh *h)
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
			 struct fuse_file_info *fi, pid_t pid, struct fh **hp)
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
	h = fh_new(fd->flags & FD_WAIT ? FH_WAIT :
		   fd->flags & FD_SETTING ? FH_SETTING :
		   fd->flags & FD_CTL ? FH_CTL :
		   fd->flags & FD_DISK ? FH_FD : FH_BUF, o->id, file);
	if (!h)
		return -ENOMEM;
	if (h->kind == FH_FD) {
		disk_file_path(m, o, file, path);
		h->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (h->fd < 0 && errno != ENOENT)
			rc = -errno;
	} else if (h->kind != FH_SETTING && h->kind != FH_WAIT) {
		rc = ws_render(m->ws, o, file, &h->buf, &h->len);
	} else if (fi->flags & O_TRUNC) {
		trunc_keep(m, o->id, file, pid);
		rc = ws_setting_truncate(m->ws, o->id, file, 0);
	}
	if (rc) {
		fh_free(h);
		return rc;
	}
	fi->direct_io = h->kind == FH_CTL || h->kind == FH_WAIT;
	fi->keep_cache = !fi->direct_io;
	*hp = h;
	return 0;
}

/* May the user's files of @o below @root change now?  A refusal is
 * explained in the object's `error`. */
int user_writable(struct mlfs *m, const struct obj *o, int root)
{
	return ws_may_write_files(m->ws, o, root);
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
 * Open user file @ino with @flags: the fd, or -errno.  As @req's caller,
 * or (@held) as the daemon for a file the kernel holds open (open_held);
 * the backend's step before a write is the caller's either way.  A write
 * is first checked against the object's state (as the daemon: a refusal
 * is explained in `error`).
 */
static int open_as(fuse_req_t req, struct mlfs *m, uint64_t ino,
		   int flags, int *root, int held)
{
	struct creds c = { 0 };
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
	c = creds_enter(req);
	rc = at_open(&a);
	if (!rc && wants_write(flags))
		rc = before_user_write(m, ino, &o, &a);
	if (held)
		creds_leave(&c);
	if (!rc)
		rc = at_openat(&a, flags & ~(O_CREAT | O_EXCL | O_NOCTTY), 0);
	creds_leave(&c);
	return rc;
}

/* Open user file @ino with @flags as @req's caller (OPEN). */
int open_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
	      int flags, int *root)
{
	return open_as(req, m, ino, flags, root, 0);
}

/*
 * The same for a READ, WRITE or FSYNC without a handle, or an ftruncate:
 * the caller holds the file open, with the rights the kernel checked at
 * open (default_permissions when other users come in; else the daemon's
 * user is the only caller).  A local disk lets an open file be used
 * whatever its mode became since (cp writes to the copy of a read-only
 * file it made 0444; a file made with mode 0 is written through its fd):
 * the file is opened as the daemon, and only written as the caller.
 */
int open_held(fuse_req_t req, struct mlfs *m, uint64_t ino,
	      int flags, int *root)
{
	return open_as(req, m, ino, flags, root, 1);
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
	/* an engine's folders (a run's outputs/) and secrets (an
	 * endpoint's keys/) change behind the kernel's back (a run writes,
	 * `regenerate` replaces a key) */
	fi->keep_cache = !(ws_root_flags(root) & (FD_ENGINE | FD_SECRET));
	*hp = h;
	return 0;
}

void mlfs_open(fuse_req_t req, fuse_ino_t ino,
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
	ino = real_ino(m, ino);
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
	} else if (ino == INO_RUNS_PAGE) {
		rc = wants_write(fi->flags) ? -EACCES : 0;
		h = rc ? NULL : fh_new(FH_BUF, 0, 0);
		if (h && runs_page(req, m, &h->buf, &h->len, NULL)) {
			fh_free(h);
			h = NULL;
		}
		fi->direct_io = 1;	/* each open renders anew */
	} else if (ino_is_user(ino)) {
		rc = open_user_file(req, m, ino, fi, &h);
	} else if (ino_is_obj(ino)) {
		rc = ws_get(m->ws, ino_obj(ino), &o);
		if (!rc)
			rc = open_ctl_file(m, &o, ino_file(ino), fi,
					   fuse_req_ctx(req)->pid, &h);
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

	fd = open_held(req, m, ino, O_RDONLY, &root);
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
	if (ino == INO_RUNS_PAGE) {
		rc = runs_page(req, m, &buf, &len, NULL);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			reply_slice(req, buf, len, size, off);
		if (!rc)
			free(buf);
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
	if (fd->flags & FD_WAIT) {
		wait_read(req, m, o.id, size, off);
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

void mlfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	size_t len;
	char *buf;
	int rc;

	if (!h) {
		read_ino(req, M(req), real_ino(M(req), ino), size, off);
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
	case FH_WAIT:
		wait_read(req, M(req), h->id, size, off);
		return;
	case FH_FD:
		if (h->fd < 0)
			fuse_reply_buf(req, NULL, 0);
		else
			reply_fd(req, h->fd, size, off);
		return;
	}
}

void mlfs_release(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi)
{
	(void)ino;
	fh_free((struct fh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Nothing to do at close: ENOSYS tells the kernel never to ask again. */
void mlfs_flush(fuse_req_t req, fuse_ino_t ino,
		struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

void mlfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int root, fd, rc = 0;

	ino = real_ino(M(req), ino);
	if (h && h->kind == FH_FD && h->fd >= 0) {
		rc = (datasync ? fdatasync(h->fd) : fsync(h->fd)) ? errno : 0;
	} else if (!h && ino_is_user(ino) &&
		   (fd = open_held(req, M(req), ino, O_RDONLY, &root)) >= 0) {
		rc = (datasync ? fdatasync(fd) : fsync(fd)) ? errno : 0;
		close(fd);
	}
	fuse_reply_err(req, rc == EINVAL || rc == EBADF ? 0 : rc);
}

/* The modes passed to the backing file system; the kernel sends no other
 * (it refuses collapse and insert itself). */
#define FALLOC_MODES	(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | \
			 FALLOC_FL_ZERO_RANGE)

/* Room for @len more bytes of user files: a full disk's last room is the
 * workspace's own (as for writes), explained in the object's `error`. */
static int fallocate_room(struct mlfs *m, uint64_t ino, int mode, off_t len)
{
	struct err e;
	struct obj o;
	int root;

	if ((mode & FALLOC_FL_PUNCH_HOLE) ||
	    ws_user_room(m->ws, (size_t)len) >= (size_t)len)
		return 0;
	if (!owner_of(m, ino, &o, &root)) {
		err_set(&e, -ENOSPC, "a file of %s '%s' was not allocated: no"
			" space left on the file system of the state dir %s",
			kind_name(o.kind), o.name, ws_state_dir(m->ws));
		ws_refuse(m->ws, o.id, -ENOSPC, &e);
	}
	return -ENOSPC;
}

/*
 * fallocate(2) of a user file (posix_fallocate, `fallocate -l`, a punched
 * hole), by the backing file system as the caller, once the object's
 * state allows a write (as a WRITE).  Control files: EOPNOTSUPP.
 */
void mlfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		    off_t len, struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);
	int root, fd, rc;

	(void)fi;	/* no handles for user files (FUSE_CAP_NO_OPEN) */
	if (!ino_is_user(ino) || (mode & ~FALLOC_MODES)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	rc = fallocate_room(m, ino, mode, len);
	fd = rc ? rc : open_user(req, m, ino, O_WRONLY, &root);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	{
		AS_CALLER(req);
		rc = fallocate(fd, mode, off, len) ? errno : 0;
	}
	close(fd);
	fuse_reply_err(req, rc);
}
