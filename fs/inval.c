// SPDX-License-Identifier: MIT
/*
 * Kernel cache invalidation.  The backend's hooks (hook_files, hook_grow,
 * hook_events, hook_entry, hook_folder) run on the thread that committed
 * a change: the worker thread, or a FUSE request thread (a ctl write, a
 * mkdir...); inval_name and inval_inode are called from both.  What may
 * wait for a kernel lock (a name, a file's pages) goes to the notifier
 * thread, which alone does it.  mlfs_attach starts that thread and
 * installs the hooks once mounted; mlfs_quiesce stops the thread and every
 * notification once the session loop has ended (both on the main thread).
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "fs_i.h"

/*
 * Invalidations may wait for kernel locks: a name for its folder's, an
 * inode's pages for each page's, and the tasks holding those may be
 * waiting for the answer to a request of theirs.  A thread answering
 * requests must not wait for them (a cycle through two requests
 * deadlocks: `echo submit > r/ctl` racing `rm -r r`), nor a worker (its
 * target's runs would stall, and it could not stop once requests are no
 * longer answered): they go to the notifier thread, which does them one
 * by one.  Only those that cannot wait are done at once: attributes, and a
 * folder's listing (its pages are locked only to fill them from an
 * answered READDIR).
 */
static void kernel_inval_inode(struct mlfs *m, uint64_t ino, off_t off)
{
	pthread_rwlock_rdlock(&m->live_lock);
	if (m->live)
		fuse_lowlevel_notify_inval_inode(m->se, ino, off, 0);
	pthread_rwlock_unlock(&m->live_lock);
}

static void kernel_inval_entry(struct mlfs *m, uint64_t parent,
			       const char *name)
{
	pthread_rwlock_rdlock(&m->live_lock);
	if (m->live)
		fuse_lowlevel_notify_inval_entry(m->se, parent, name,
						 strlen(name));
	pthread_rwlock_unlock(&m->live_lock);
}

static void *notifier_main(void *arg)
{
	struct mlfs *m = arg;
	struct pending *p;

	pthread_mutex_lock(&m->q_lock);
	for (;;) {
		while (!m->q && !m->q_stop)
			pthread_cond_wait(&m->q_cond, &m->q_lock);
		if (m->q_stop)
			break;	/* what is left is dropped with the mount */
		p = m->q;
		m->q = p->next;
		if (!m->q)
			m->q_tail = &m->q;
		pthread_mutex_unlock(&m->q_lock);
		if (p->name[0])
			kernel_inval_entry(m, p->ino, p->name);
		else
			kernel_inval_inode(m, p->ino, p->off);
		free(p);
		pthread_mutex_lock(&m->q_lock);
	}
	pthread_mutex_unlock(&m->q_lock);
	return NULL;
}

static void enqueue(struct mlfs *m, uint64_t ino, const char *name, off_t off)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->ino = ino;
	p->off = off;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	pthread_mutex_lock(&m->q_lock);
	*m->q_tail = p;
	m->q_tail = &p->next;
	pthread_cond_signal(&m->q_cond);
	pthread_mutex_unlock(&m->q_lock);
}

/* Drop the cached name @name in folder @parent, on the notifier. */
void inval_name(struct mlfs *m, uint64_t parent, const char *name)
{
	enqueue(m, parent, name, 0);
}

/*
 * Invalidate @ino's attributes and its pages from @off (-1: none): a
 * file's pages on the notifier, its attributes with them (in order with
 * the other drops); attributes alone and folders at once (see above), so
 * that a new entry (a model's version, say) is listed as soon as the
 * write that made it returns.
 */
void inval_inode(struct mlfs *m, uint64_t ino, off_t off)
{
	int dir = top_ino_kind(ino) != K_NONE ||
		  (ino_is_obj(ino) &&
		   (ws_root_flags(ino_file(ino)) & FD_DIRECTORY));

	if (off >= 0 && !dir)
		enqueue(m, ino, NULL, off);
	else
		kernel_inval_inode(m, ino, off);
}

/*
 * Files of @id in @mask changed.  A generated file's name is dropped so
 * that the next lookup finds its new version; an active object's names
 * are looked up on every open anyway (see name_timeout), so this matters
 * for finished ones and may come a moment later.  A setting changes only
 * its mode here (its bytes are written through the kernel).
 */
static void hook_files(void *ctx, int64_t id, fmask_t mask)
{
	struct mlfs *m = ctx;
	const struct file_desc *fd;
	struct obj o;

	if (ws_get(m->ws, id, &o))
		return;
	for (int f = 0; f < F_COUNT; f++) {
		if (!(mask & FBIT(f)))
			continue;
		fd = ws_file_by_id(o.kind, f);
		if (versioned(fd))
			inval_name(m, obj_ino(id, F_DIR), fd->name);
		else
			inval_inode(m, obj_ino(id, f), fd && (fd->flags &
				    FD_SETTING) ? -1 : 0);
	}
	if (mask & FBIT(F_STATUS))
		wait_changed(m, &o);
}

static void hook_grow(void *ctx, int64_t id, int file, off_t old)
{
	struct mlfs *m = ctx;

	if (file == F_METRICS_SVG)	/* and the summary the page reads */
		runs_page_stale(m);
	inval_inode(m, obj_ino(id, file), old);
}

static void hook_events(void *ctx, off_t old)
{
	struct mlfs *m = ctx;

	inval_inode(m, INO_EVENTS, old);
}

static void hook_entry(void *ctx, int kind, int64_t parent, const char *name)
{
	struct mlfs *m = ctx;
	uint64_t p = parent ? obj_ino(parent, F_DIR) : kind_top_ino(kind);

	runs_page_stale(m);	/* a run made, removed or renamed */
	inval_name(m, p, name);
	inval_inode(m, p, 0);		/* and the folder's cached listing */
}

/*
 * Everything below @id's folder @root may have changed behind the kernel's
 * back (an engine wrote it: a run's outputs/, its tasks/I/status): the
 * folder's listing and each file and folder the kernel may hold below it,
 * at any depth.  Their attributes at once; their pages on the notifier
 * (nobody but the engine writes there, so no writer holds them locked).
 */
static void hook_folder(void *ctx, int64_t id, int root)
{
	struct mlfs *m = ctx;
	uint64_t top = obj_ino(id, root), *v = NULL;
	int n;

	inval_inode(m, top, 0);
	n = nodes_below(m->nodes, top, &v);
	for (int i = 0; i < n; i++) {
		kernel_inval_inode(m, v[i], -1);
		enqueue(m, v[i], NULL, 0);
	}
	free(v);
}

static void hook_user(void *ctx, int64_t id, int root, const char *name)
{
	struct mlfs *m = ctx;
	uint64_t ino = nodes_find(m->nodes, obj_ino(id, root), name);

	if (ino)
		inval_inode(m, ino, 0);
}

void mlfs_attach(struct mlfs *m, struct fuse_session *se,
		 const char *mountpoint)
{
	struct ws_hooks h = {
		.ctx		= m,
		.inval_files	= hook_files,
		.inval_grow	= hook_grow,
		.inval_events	= hook_events,
		.inval_entry	= hook_entry,
		.inval_folder	= hook_folder,
		.inval_user	= hook_user,
		.change_begin	= hook_change_begin,
	};

	m->se = se;
	m->live = 1;
	m->mountpoint = strdup(mountpoint);
	ws_set_hooks(m->ws, &h);
	m->have_notifier = !pthread_create(&m->notifier, NULL, notifier_main,
					   m);
}

/* The device minor of our mount (its fusectl connection), read from
 * /proc/self/mountinfo: a stat of the mountpoint would ask ourselves. */
static int conn_of(const char *mountpoint)
{
	char line[4096], mp[PATH_MAX];
	unsigned maj, min;
	int conn = -1;
	FILE *f;

	f = mountpoint ? fopen("/proc/self/mountinfo", "re") : NULL;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min,
			   mp) == 3 && !strcmp(mp, mountpoint))
			conn = (int)min;	/* the last: ours, on top */
	if (f)
		fclose(f);
	return conn;
}

/* Abort our FUSE connection (fusectl), which ends every request and
 * notification in flight.  Best effort: fusectl may not be mounted. */
static void abort_conn(struct mlfs *m)
{
	int fd, conn = conn_of(m->mountpoint);
	char path[64];

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%d/abort",
		 conn);
	fd = conn >= 0 ? open(path, O_WRONLY | O_CLOEXEC) : -1;
	if (fd >= 0 && write(fd, "1", 1) != 1)
		log_warn("cannot abort FUSE connection %d", conn);
	if (fd >= 0)
		close(fd);
}

void mlfs_quiesce(struct mlfs *m)
{
	struct timespec until;

	wait_stop(m);
	if (m->have_notifier) {
		pthread_mutex_lock(&m->q_lock);
		m->q_stop = 1;
		pthread_cond_signal(&m->q_cond);
		pthread_mutex_unlock(&m->q_lock);
		/* a name waiting for a folder whose holder waits for an answer
		 * that no thread gives any more: abort to free both */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2;
		if (pthread_timedjoin_np(m->notifier, NULL, &until)) {
			log_warn("an invalidation did not end: aborting the"
				 " FUSE connection");
			abort_conn(m);
			pthread_join(m->notifier, NULL);
		}
		m->have_notifier = 0;
	}
	pthread_rwlock_wrlock(&m->live_lock);
	m->live = 0;
	pthread_rwlock_unlock(&m->live_lock);
}
