// SPDX-License-Identifier: MIT
/*
 * The FUSE layer.  Thin: it maps inodes to workspace objects and files,
 * and asks backend/ (ws.h) for everything else.  Low-level API, so that
 * the kernel can cache entries, attributes and small files with long
 * timeouts and the backend can invalidate exactly what a change touched.
 *
 * This file: the ops table, which hands each request to the file of its
 * concern (fs_i.h lists them), the INIT negotiation (on the first request
 * thread), and the life of struct mlfs: mlfs_new before the mount and
 * mlfs_free after it, on the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "creds.h"
#include "fs_i.h"

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
	/* the caller's umask comes with CREATE, MKDIR and MKNOD and is
	 * applied by the backing file system, as on a local disk (see
	 * namespace.c); else the kernel would apply it and the daemon's
	 * own umask would mask users' files once more */
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	/* the daemon decides what the page cache may keep (keep_cache and
	 * explicit invalidation), not the mtime */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->max_write = MAX_WRITE;
	conn->max_readahead = 1 << 20;
	/* a READ of runs/NAME/wait is the page cache's readahead, a
	 * background request that stays with us until the run ends (see
	 * wait.c): one per run waited for.  The kernel's default, 12 in
	 * flight, would let 12 waits hold back every other read of the
	 * mount; this many leave room for a sweep's waits */
	conn->max_background = WAIT_BACKGROUND;
	conn->congestion_threshold = WAIT_BACKGROUND * 3 / 4;
}

const struct fuse_lowlevel_ops mlfs_ops = {
	.init		= mlfs_init,
	.lookup		= mlfs_lookup,
	.forget		= mlfs_forget,
	.forget_multi	= mlfs_forget_multi,
	.getattr	= mlfs_getattr,
	.setattr	= mlfs_setattr,
	.readlink	= mlfs_readlink,
	.mknod		= mlfs_mknod,
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
	.fallocate	= mlfs_fallocate,
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
	pthread_mutex_init(&m->w_lock, NULL);
	pthread_mutex_init(&m->kept_lock, NULL);
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
	runs_page_free(m);
	trunc_free(m);
	free(m);
}
