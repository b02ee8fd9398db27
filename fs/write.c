// SPDX-License-Identifier: MIT
/*
 * WRITE and WRITE_BUF: a command to ctl, acted on inside the write
 * (ws_ctl; the worker thread carries on what it starts), the bytes of a
 * setting, or those of a user file, written as the caller and spliced
 * from the request's pipe when they come in one.  FUSE request threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "fs_i.h"

/* Open user file @ino for one write (no handles: FUSE_CAP_NO_OPEN).
 * The fd, or -1 with *err set to -errno. */
static int open_user_for_write(fuse_req_t req, struct mlfs *m, uint64_t ino,
			       ssize_t *err)
{
	int root, fd;

	fd = open_held(req, m, ino, O_WRONLY, &root);
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

/* write without a handle: a ctl command (*@ctl set), a setting, a user
 * file. */
static int write_ino(fuse_req_t req, struct mlfs *m, uint64_t ino,
		     const char *buf, size_t *size, off_t off, int *ctl)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	const struct file_desc *fd;
	struct obj o;
	int rc;

	if (ino_is_user(ino))
		return write_user(req, m, ino, buf, *size, off, size);
	if (!ino_is_obj(ino))
		return -EACCES;
	if (ws_get(m->ws, ino_obj(ino), &o))
		return -ENOENT;		/* removed meanwhile */
	fd = ws_file_by_id(o.kind, ino_file(ino));
	if (!fd || !(fd->flags & (FD_CTL | FD_SETTING)))
		return -EACCES;
	if (fd->flags & FD_SETTING) {
		rc = ws_setting_write(m->ws, o.id, fd->file, buf, *size, off);
		trunc_written(m, o.id, fd->file, ctx->pid, off, rc);
		return rc;
	}
	*ctl = 1;
	if (*size > CTL_WRITE_MAX)
		return -EFBIG;
	return ws_ctl(m->ws, o.id, buf, *size, ctx->uid, ctx->gid);
}

void mlfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mlfs *m = M(req);
	ssize_t n;
	int rc;

	if (!h) {
		int ctl = 0;

		ino = real_ino(m, ino);
		rc = write_ino(req, m, ino, buf, &size, off, &ctl);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_write(req, size);
		/*
		 * The written bytes sit in ctl's page cache: drop them, once
		 * answered.  Until then the kernel may hold the page locked,
		 * and the notifier would wait for it: were the daemon killed
		 * meanwhile, that thread, asleep in the kernel, would keep the
		 * process and its connection alive, and the write would never
		 * be answered (a deadlock only an abort through fusectl ends).
		 */
		if (ctl)
			inval_inode(m, ino, 0);
		return;
	}
	switch (h->kind) {
	case FH_CTL:
		rc = size > CTL_WRITE_MAX ? -EFBIG :
		     ws_ctl(m->ws, h->id, buf, size, ctx->uid, ctx->gid);
		break;
	case FH_SETTING:
		rc = ws_setting_write(m->ws, h->id, h->file, buf, size, off);
		trunc_written(m, h->id, h->file, ctx->pid, off, rc);
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
void mlfs_write_buf(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_bufvec *in, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	int fd = h && h->kind == FH_FD ? h->fd : -1;
	ssize_t n;

	if (!h)
		ino = real_ino(M(req), ino);
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
