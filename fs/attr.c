// SPDX-License-Identifier: MIT
/*
 * Attributes: GETATTR and SETATTR of every node (the fixed ones, object
 * folders, control files, user files as their caller), STATFS, and how
 * long the kernel may keep an attribute or a name (timeout_for,
 * name_timeout).  FUSE request threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "fs_i.h"

static void fixed_attr(struct mlfs *m, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_atim = st->st_mtim = st->st_ctim = m->mounted;
	st->st_blksize = 4096;
	if (ino == INO_README) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = sizeof(readme_text) - 1;
	} else {
		/* with other users in, anyone may make objects; the sticky
		 * bit keeps them from removing each other's */
		st->st_mode = S_IFDIR | (m->shared && top_ino_kind(ino) ?
					 01777 : 0755);
		st->st_nlink = 2;
	}
}

static void obj_times(const struct obj *o, struct stat *st)
{
	st->st_mtim.tv_sec = (time_t)o->changed;
	st->st_mtim.tv_nsec = (long)((o->changed - (time_t)o->changed) * 1e9);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* Attributes of control file @ino of @o (for a generated file, of the
 * version @ino names; @known: its length if just rendered, else -1). */
int ctl_attr(struct mlfs *m, uint64_t ino, const struct obj *o,
	     ssize_t known, struct stat *st)
{
	int file = ino_file(ino);
	const struct file_desc *fd = ws_file_by_id(o->kind, file);
	char path[PATH_MAX];
	struct stat bs;
	size_t len = 0;
	char *buf = NULL;
	int rc;

	if (!fd)
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino_base(ino);	/* one number for all versions */
	st->st_uid = o->uid;
	st->st_gid = o->gid;
	st->st_blksize = 4096;
	obj_times(o, st);
	st->st_nlink = 1;
	st->st_mode = S_IFREG | ws_file_mode(m->ws, o, file);
	if (fd->flags & FD_DIRECTORY) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (fd->flags & FD_DISK) {
		disk_file_path(m, o, file, path);
		if (!stat(path, &bs)) {
			st->st_size = bs.st_size;
			st->st_mtim = bs.st_mtim;
			st->st_blocks = bs.st_blocks;
		}
	} else if (fd->flags & FD_WAIT) {
		st->st_size = wait_size(o);
	} else if (known >= 0) {
		st->st_size = known;
	} else {
		rc = versioned(fd) ? version_bytes(m, ino, o, file, &buf, &len) :
		     ws_render(m->ws, o, file, &buf, &len);
		free(buf);
		if (rc == -ESTALE)
			rc = len_find(m, ino, &len);
		if (rc)
			return rc == -ESTALE ? rc : -EIO;
		st->st_size = len;
	}
	if (versioned(fd))
		len_note(m, ino, st->st_size);
	return 0;
}

static int obj_attr(struct mlfs *m, uint64_t ino, struct stat *st)
{
	struct obj o;
	int rc;

	rc = ws_get(m->ws, ino_obj(ino), &o);
	if (rc)
		return rc;
	if (ino_file(ino) != F_DIR)
		return ctl_attr(m, ino, &o, -1, st);
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | o.mode;	/* a target: 0700 until shared */
	st->st_nlink = 2;
	st->st_uid = o.uid;
	st->st_gid = o.gid;
	st->st_blksize = 4096;
	obj_times(&o, st);
	return 0;
}

/*
 * The inode number stat shows for a user file: its backing file's, tagged
 * (USER_BIT) apart from generated ones, so that two hard links show one
 * inode, as cp -a, tar and du expect.  The FUSE node id stays per name.
 */
uint64_t user_st_ino(uint64_t backing)
{
	return USER_BIT | (backing & (USER_BIT - 1));
}

/* What stat shows of a user file whose backing file has @st. */
void user_stat(struct stat *st)
{
	st->st_ino = user_st_ino(st->st_ino);
	st->st_blksize = USER_BLKSIZE;
}

/* The backing attributes of user node @ino (or of its entry @name),
 * looked at as the caller: 0 or -errno. */
int backing_stat(fuse_req_t req, struct mlfs *m, uint64_t ino,
		 const char *name, struct stat *st)
{
	AT(a);
	int rc;

	rc = at_find(m, ino, name, &a);
	if (rc)
		return rc;
	AS_CALLER(req);
	rc = at_open(&a);
	return rc ? rc : at_stat(&a, st);
}

static int user_attr(fuse_req_t req, struct mlfs *m, uint64_t ino,
		     struct stat *st)
{
	int rc = backing_stat(req, m, ino, NULL, st);

	if (rc)
		return rc;
	user_stat(st);
	return 0;
}

/* runs/index.html: its size is that of a rendering now (it is read with
 * direct_io, so a later rendering of another size is read whole). */
static int page_attr(fuse_req_t req, struct mlfs *m, struct stat *st)
{
	size_t len;
	char *buf;
	struct timespec at;
	int rc = runs_page(req, m, &buf, &len, &at);

	if (rc)
		return rc;
	free(buf);
	fixed_attr(m, INO_RUNS_PAGE, st);
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = len;
	st->st_mtim = st->st_ctim = at;
	return 0;
}

int do_getattr(fuse_req_t req, struct mlfs *m, uint64_t ino,
	       struct stat *st)
{
	if (ino == INO_RUNS_PAGE)
		return page_attr(req, m, st);
	if (ino == INO_EVENTS) {
		fixed_attr(m, ino, st);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (!stat(ws_events_path(m->ws), &(struct stat){ 0 })) {
			struct stat es;

			stat(ws_events_path(m->ws), &es);
			st->st_size = es.st_size;
			st->st_mtim = es.st_mtim;
		}
		return 0;
	}
	if (ino < INO_FIXED_MAX) {
		fixed_attr(m, ino, st);
		return 0;
	}
	if (ino_is_user(ino))
		return user_attr(req, m, ino, st);
	return obj_attr(m, ino, st);
}

/* Cache timeout for @ino: short below an engine's folder (a run's
 * outputs/) until its object settles, none for events (its size), long
 * elsewhere. */
double timeout_for(struct mlfs *m, uint64_t ino)
{
	struct obj o;
	int root;

	if (ino == INO_EVENTS || ino == INO_RUNS_PAGE)
		return 0;	/* its size, fresh for every read */
	/* a run writes its outputs behind the kernel's back until it ends
	 * (its end invalidates the folder); then they never change */
	if ((ino_is_obj(ino) && (ws_root_flags(ino_file(ino)) & FD_ENGINE) &&
	     !ws_get(m->ws, ino_obj(ino), &o)) ||
	    (ino_is_user(ino) && !owner_of(m, ino, &o, &root) &&
	     (ws_root_flags(root) & FD_ENGINE)))
		return ws_obj_settled(&o) ? m->timeout : SHORT_TIMEOUT;
	return m->timeout;
}

/*
 * How long the kernel may keep the name of @ino without asking again.  A
 * generated file's version changes with its object: names of objects that
 * may still change are looked up on every open (a lookup, and the pages
 * of an unchanged version stay cached), so that no change needs the
 * kernel's folder lock to be seen at once.  Finished runs, the bulk of a
 * workspace, keep theirs, dropped by the notifier on the rare change; but
 * `error`, which refusals of rmdir, unlink… change while the kernel holds
 * the folder's lock, is always looked up.
 */
double ctl_name_timeout(struct mlfs *m, uint64_t ino,
			const struct obj *o)
{
	const struct file_desc *fd = ws_file_by_id(o->kind, ino_file(ino));

	if (ino_file(ino) == F_ERROR)
		return 0;
	if (!versioned(fd) || ws_obj_settled(o))
		return timeout_for(m, ino);
	return 0;
}

double name_timeout(struct mlfs *m, uint64_t ino)
{
	struct obj o;

	if (!ino_is_obj(ino) || ino_file(ino) == F_DIR)
		return timeout_for(m, ino);
	if (ws_get(m->ws, ino_obj(ino), &o))
		return 0;
	return ctl_name_timeout(m, ino, &o);
}

void mlfs_getattr(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);
	struct stat st;
	int rc;

	(void)fi;
	ino = real_ino(m, ino);
	rc = do_getattr(req, m, ino, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout_for(m, ino));
}

/* chmod of @a, never through a symlink: the file held by an O_PATH fd,
 * changed through /proc (fchmod refuses O_PATH fds). */
static int at_chmod(const struct at *a, mode_t mode)
{
	char proc[64];
	struct stat st;
	int fd, rc = 0;

	fd = at_openat(a, O_PATH, 0);
	if (fd < 0)
		return fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st))
		rc = -errno;
	else if (S_ISLNK(st.st_mode))
		rc = -EOPNOTSUPP;
	else if (chmod(proc, mode))
		rc = -errno;
	close(fd);
	return rc;
}

static int at_truncate(const struct at *a, off_t size)
{
	int fd = at_openat(a, O_WRONLY, 0), rc = 0;

	if (fd < 0)
		return fd;
	if (ftruncate(fd, size))
		rc = -errno;
	close(fd);
	return rc;
}

static int at_utimens(const struct at *a, const struct stat *attr,
		      int to_set)
{
	struct timespec tv[2];

	tv[0] = to_set & FUSE_SET_ATTR_ATIME_NOW ?
		(struct timespec){ 0, UTIME_NOW } :
		to_set & FUSE_SET_ATTR_ATIME ? attr->st_atim :
		(struct timespec){ 0, UTIME_OMIT };
	tv[1] = to_set & FUSE_SET_ATTR_MTIME_NOW ?
		(struct timespec){ 0, UTIME_NOW } :
		to_set & FUSE_SET_ATTR_MTIME ? attr->st_mtim :
		(struct timespec){ 0, UTIME_OMIT };
	if (utimensat(a->dir, a->name, tv, at_flags(a)))
		return -errno;
	return 0;
}

/* The changes of a SETATTR to @a (opened), as the caller. */
static int setattr_at(const struct at *a, const struct stat *attr,
		      int to_set, struct fh *h)
{
	int rc = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		rc = at_chmod(a, attr->st_mode);
	if (!rc && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(a->dir, a->name,
		     to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
		     to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1,
		     at_flags(a)))
		rc = -errno;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
		rc = h ? (ftruncate(h->fd, attr->st_size) ? -errno : 0) :
		     at_truncate(a, attr->st_size);
	if (!rc && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
		rc = at_utimens(a, attr, to_set);
	return rc;
}

/* A truncate through a file the caller holds open for writing (ftruncate,
 * open with O_TRUNC): opened with the rights checked at open (open_held),
 * truncated as the caller (who may not keep set-id bits). */
static int truncate_held(fuse_req_t req, struct mlfs *m, uint64_t ino,
			 off_t size)
{
	int root, fd, rc = 0;

	fd = open_held(req, m, ino, O_WRONLY, &root);
	if (fd < 0)
		return fd;
	{
		AS_CALLER(req);
		if (ftruncate(fd, size))
			rc = -errno;
	}
	close(fd);
	return rc;
}

/*
 * The kernel's chmod before a write or truncate by a caller who may write
 * the file but does not own it: it asks to clear a regular file's set-id
 * bits, as a chmod as that caller, which the backing file system refuses
 * (EPERM: pjdfstest chmod/12) where a local disk clears them whoever
 * writes.  Checked as the caller, then done as the daemon, on one fd (no
 * name swapped meanwhile can take the chmod), and only ever clearing
 * those bits of the file's current mode.  1 when @mode is such a request
 * (the result in *@rc, @c left), else 0.
 */
static int kill_setid(const struct at *a, mode_t mode, struct creds *c,
		      int *rc)
{
	char proc[32];
	mode_t gone;
	struct stat st;
	int fd;

	fd = at_openat(a, O_PATH, 0);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st)) {
		close(fd);
		return 0;
	}
	gone = (st.st_mode & 07777) & ~(mode & 07777);
	if (!S_ISREG(st.st_mode) || !gone || (mode & 07777 & ~st.st_mode) ||
	    (gone & ~(mode_t)(S_ISUID | S_ISGID)) ||
	    faccessat(fd, "", W_OK, AT_EACCESS | AT_EMPTY_PATH)) {
		close(fd);
		return 0;
	}
	creds_leave(c);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	*rc = fstat(fd, &st) || chmod(proc, st.st_mode & 07777 &
				      ~(mode_t)(S_ISUID | S_ISGID)) ? -errno : 0;
	close(fd);
	return 1;
}

static int setattr_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
			struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct fh *h = fi ? (struct fh *)(uintptr_t)fi->fh : NULL;
	struct creds c;
	struct obj o;
	AT(a);
	int rc;

	if (fi && !h && (to_set & FUSE_SET_ATTR_SIZE)) {
		rc = truncate_held(req, m, ino, attr->st_size);
		to_set &= ~FUSE_SET_ATTR_SIZE;
		if (rc || !to_set)
			return rc;
	}
	rc = at_find(m, ino, NULL, &a);
	if (!rc)
		rc = ws_get(m->ws, a.id, &o);
	if (!rc)
		rc = user_writable(m, &o, a.root);
	if (rc)
		return rc;
	c = creds_enter(req);
	rc = at_open(&a);
	if (!rc)
		rc = before_user_write(m, ino, &o, &a);
	if (!rc && to_set == FUSE_SET_ATTR_MODE &&
	    kill_setid(&a, attr->st_mode, &c, &rc))
		return rc;
	if (!rc)
		rc = setattr_at(&a, attr, to_set,
				h && h->kind == FH_FD ? h : NULL);
	creds_leave(&c);
	return rc;
}

static int setattr_ctl(struct mlfs *m, uint64_t ino, struct stat *attr,
		       int to_set, pid_t pid)
{
	const struct file_desc *fd;
	struct obj o;
	int rc;

	rc = ws_get(m->ws, ino_obj(ino), &o);
	if (rc)
		return rc;
	fd = ws_file_by_id(o.kind, ino_file(ino));
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
		      FUSE_SET_ATTR_GID))
		return -EPERM;
	if (!(to_set & FUSE_SET_ATTR_SIZE))
		return 0;	/* times: accepted, generated anyway */
	if (fd && (fd->flags & FD_CTL))
		return 0;	/* `echo x > ctl` truncates first */
	if (!fd || !(fd->flags & FD_SETTING))
		return -EACCES;
	if (!attr->st_size)	/* `echo x > setting`: x may be refused */
		trunc_keep(m, o.id, fd->file, pid);
	return ws_setting_truncate(m->ws, o.id, fd->file, attr->st_size);
}

/* chmod, chown of an object folder (sharing a target); times ignored. */
static int setattr_obj(struct mlfs *m, uint64_t ino, struct stat *attr,
		       int to_set, const struct fuse_ctx *ctx)
{
	int rc = 0;

	if (to_set & FUSE_SET_ATTR_SIZE)
		return -EISDIR;
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		rc = ws_obj_chown(m->ws, ino_obj(ino), ctx->uid, ctx->gid,
				  to_set & FUSE_SET_ATTR_UID ? attr->st_uid :
				  (uint32_t)-1, to_set & FUSE_SET_ATTR_GID ?
				  attr->st_gid : (uint32_t)-1);
	if (!rc && (to_set & FUSE_SET_ATTR_MODE))
		rc = ws_obj_chmod(m->ws, ino_obj(ino), ctx->uid,
				  attr->st_mode);
	return rc;
}

void mlfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		  int to_set, struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);
	struct stat st;
	int rc;

	ino = real_ino(m, ino);
	if (ino_is_user(ino))
		rc = setattr_user(req, m, ino, attr, to_set, fi);
	else if (ino_is_obj(ino) && ino_file(ino) != F_DIR)
		rc = setattr_ctl(m, ino, attr, to_set, fuse_req_ctx(req)->pid);
	else if (ino_is_obj(ino))
		rc = setattr_obj(m, ino, attr, to_set, fuse_req_ctx(req));
	else if (to_set & FUSE_SET_ATTR_SIZE)
		rc = ino < INO_FIXED_MAX && ino != INO_ROOT &&
		     top_ino_kind(ino) == K_NONE ? -EACCES : -EISDIR;
	else
		rc = (to_set & ~(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				 FUSE_SET_ATTR_ATIME_NOW |
				 FUSE_SET_ATTR_MTIME_NOW)) ? -EPERM : 0;
	if (!rc)
		rc = do_getattr(req, m, ino, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout_for(m, ino));
}

void mlfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(ws_state_dir(M(req)->ws), &sv))
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}
