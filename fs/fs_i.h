/* SPDX-License-Identifier: MIT */
/*
 * The FUSE layer's private header: struct mlfs, the context that every
 * request, the notifier thread and the backend's hooks reach, and what
 * the files of fs/ share.  Where each concern lives:
 *   ops.c        the ops table, INIT, mlfs_new and mlfs_free
 *   inval.c      kernel invalidation: the notifier thread, the backend's
 *                change hooks, mlfs_attach and mlfs_quiesce
 *   stash.c      versions of generated files: rows kept before changes,
 *                sizes of versions given out
 *   at.c         struct at: a user node's backing file, held by fd
 *   attr.c       GETATTR, SETATTR, STATFS and the cache timeouts
 *   dir.c        LOOKUP, FORGET, OPENDIR, READDIR
 *   io.c         OPEN, READ, RELEASE, FLUSH, FSYNC, FALLOCATE
 *   write.c      WRITE, WRITE_BUF: ctl commands, settings, user files
 *   wait.c       READ of runs/NAME/wait, answered when the run ends
 *   namespace.c  CREATE, MKDIR, MKNOD, UNLINK, RMDIR, RENAME, LINK,
 *                SYMLINK, READLINK
 *
 * Replies pass a positive errno; helpers return 0 or -errno.
 */
#ifndef MLFS_FS_I_H
#define MLFS_FS_I_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "../backend/ws.h"
#include "fs.h"
#include "node.h"

/* Cache timeout for files written behind the kernel's back (outputs). */
#define SHORT_TIMEOUT	1.0
#define CTL_WRITE_MAX	(64 * 1024)
/*
 * The largest WRITE: 1 MiB with libfuse's 4 KiB of header is a request
 * that still fits a pipe of the default maximum size (fs.pipe-max-size,
 * 1 MiB), so that libfuse splices requests instead of copying them out
 * (a bigger one makes it fall back to read(2) for good).
 */
#define MAX_WRITE	((1 << 20) - 4096)
_Static_assert(SETTING_MAX <= MAX_WRITE, "a write too big for a setting"
	       " must reach the limit in its first piece");
/* st_blksize of user files: cp and friends size their buffers by it;
 * a write of this size is one request. */
#define USER_BLKSIZE	MAX_WRITE

#define NKEPT	16	/* truncated settings remembered at once */

struct mlfs {
	struct ws *ws;
	struct node_table *nodes;
	int objects_fd;		/* the state dir's objects/ */
	struct fuse_session *se;
	double timeout;
	int shared;		/* other users come in (allow_other) */
	uid_t uid;
	gid_t gid;
	struct timespec mounted;

	/* Entry invalidations that must wait until the request that caused
	 * them has been answered (the kernel holds the folder's lock until
	 * then).  Handled by the notifier thread. */
	pthread_mutex_t q_lock;		/* guards q, q_tail, q_stop */
	pthread_cond_t q_cond;
	struct pending *q, **q_tail;	/* first in, first done */
	int q_stop;
	pthread_t notifier;
	int have_notifier;
	/* Notifications go to the kernel only while live: mlfs_quiesce
	 * ends that before the session's file descriptor is closed. */
	pthread_rwlock_t live_lock;	/* guards live, held around a call */
	int live;
	char *mountpoint;

	/* Negotiated at init: the kernel opens files and folders without
	 * asking (FUSE_CAP_NO_OPEN_SUPPORT / _NO_OPENDIR_SUPPORT), caches
	 * every file's pages and every folder's listing, and we answer each
	 * read, write and readdir without a handle. */
	int no_open;
	int no_opendir;

	/* Backing folder streams kept between readdir calls, so that a long
	 * listing continues where it stopped instead of re-reading. */
	pthread_mutex_t dc_lock;	/* guards dc[] */
	struct dh *dc[8];

	/* Objects as they were before their latest changes (see struct
	 * stripe). */
	pthread_mutex_t sl_lock;	/* guards stripes[], lens[], pages[] */
	struct stripe *stripes;		/* NSTRIPES */
	struct vlen *lens;		/* NLENS */

	/* runs/index.html as last rendered for a few readers: its size
	 * (GETATTR) and its bytes (READs without a handle) must be the same
	 * rendering, and `ls -l runs` must not render it each time.  A
	 * rendering holds while runs_gen is what it was (every change of an
	 * object, a run made or removed, a run's metrics.svg redrawn bumps
	 * it; atomic). */
	struct page_snap {
		uint32_t uid, gid;
		unsigned gen;
		char *buf;		/* NULL: an empty slot */
		size_t len;
		struct timespec at;	/* when rendered: its mtime */
	} pages[8];
	unsigned pages_next;
	unsigned runs_gen;

	/* Settings' text before a truncate, until the write that follows
	 * (trunc.c): a refused write puts it back. */
	pthread_mutex_t kept_lock;	/* guards kept[], kept_next */
	struct kept {
		int64_t id;
		int file;
		pid_t pid;
		char *buf;		/* NULL: an empty slot */
		size_t len;
		double at;		/* CLOCK_MONOTONIC seconds */
	} kept[NKEPT];
	unsigned kept_next;

	/* READs of runs' wait files, answered when their run ends
	 * (wait.c); w_stop: the session ends, answer at once. */
	pthread_mutex_t w_lock;		/* guards waiters, w_stop */
	struct waiter *waiters;
	int w_stop;
};

/*
 * Generated files are versioned inodes (fs/node.h): the kernel may hold a
 * version whose bytes the object no longer renders, e.g. a LOOKUP answered
 * just before a change and the READ that follows it just after.  Such a
 * request is answered from the object as it was before its latest
 * changes: each change records the object's old row here first (a ring
 * per stripe of object ids), and a version is found again by rendering
 * those rows.
 */
#define NSTRIPES 256
#define NSTASH 4		/* changes of one stripe a request may straddle */

struct stripe {
	struct obj old[NSTASH];	/* the last changes, oldest overwritten */
	unsigned next;
};

/*
 * The sizes of versions given out, in a table of NLENS slots by inode
 * (a newer one takes the slot).  A version's size never changes: the
 * kernel may ask for it again long after its bytes left the stash (an
 * unlink of a control file by a racing rm -r drops the cached attributes
 * of a file someone holds open), and gets it here.
 */
#define NLENS 4096

struct vlen {
	uint64_t ino;
	size_t len;
};

struct pending {
	uint64_t ino;		/* inode to invalidate, or the parent */
	char name[NAME_MAX + 1];	/* entry to invalidate; "" for an inode */
	off_t off;		/* the inode's pages from there (-1: none) */
	struct pending *next;
};

enum fh_kind { FH_BUF, FH_SETTING, FH_CTL, FH_FD, FH_WAIT };

struct fh {
	enum fh_kind kind;
	int fd;
	int64_t id;
	int file;
	char *buf;
	size_t len;
};

static const char readme_text[] =
	"mlfs: this folder is an ML workspace.\n"
	"\n"
	"  targets/NAME/   where runs execute: mkdir, write type and config,\n"
	"                  echo provision > ctl.  targets/local exists already.\n"
	"  runs/NAME/      mkdir, copy your files in, write command (and target,\n"
	"                  env, resources), then: echo submit > ctl\n"
	"                  status, exit_code, log, metrics, outputs/ follow it;\n"
	"                  cat runs/NAME/wait blocks until it ends (not listed).\n"
	"                  array = 0-99%8 in resources: 100 tasks, 8 at once,\n"
	"                  each with $MLFS_ARRAY_INDEX; tasks/I/ shows each.\n"
	"  deployments/    models served over HTTP.\n"
	"  models/NAME/V/  registered model files.\n"
	"  events          one line per state change: tail -f events\n"
	"\n"
	"A refused command fails the write with an errno and leaves one\n"
	"sentence in the object's error file.  cat ctl lists the commands\n"
	"valid now.  See mlfs(1).\n";

static inline struct mlfs *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * Where a user node's backing file is, held by fd: @dir, the folder that
 * holds it, and @name in it ("" for the object's root itself).  Found in
 * two steps.  at_find, as the daemon: the node's object and path, and
 * objects/ID, which only the daemon writes.  at_open, as the caller: the
 * folder below it, resolved without following symlinks (beneath.h).
 * Everything after is done on @dir and @name by *at() calls that never
 * follow a symlink either.  AT() declares one that closes itself.
 */
struct at {
	int obj;		/* objects/ID (O_PATH), by the daemon */
	int dir;		/* the folder (O_PATH), by the caller */
	int64_t id;		/* the object */
	int root;		/* F_DIR (files/) or a folder ws_root_flags names */
	int orphan;		/* @dir is the file of a nameless node */
	char name[NAME_MAX + 1];
	char path[USER_PATH_MAX + 16];	/* of @dir, below objects/ID */
};

#define AT(a)	struct at a __attribute__((cleanup(at_close))) = \
			{ .obj = -1, .dir = -1 }

/* What a lookup of a control file learnt: its object and, for a
 * generated file, the length of the version it found (else -1); of a
 * user entry, its attributes (answered as they are, not looked for
 * again). */
struct ctl_view {
	struct obj o;
	ssize_t len;
	int user;		/* or a user entry: its attributes */
	struct stat ust;
};

/* inval.c */
void inval_name(struct mlfs *m, uint64_t parent, const char *name);
void inval_inode(struct mlfs *m, uint64_t ino, off_t off);

/* stash.c */
void hook_change_begin(void *ctx, int64_t id);
void len_note(struct mlfs *m, uint64_t ino, size_t len);
int len_find(struct mlfs *m, uint64_t ino, size_t *len);
int versioned(const struct file_desc *fd);
unsigned bytes_ver(const char *buf, size_t len);
int version_bytes(struct mlfs *m, uint64_t ino, const struct obj *o,
		  int file, char **buf, size_t *len);

/* wait.c */
/* The size a wait file shows while its run is not final. */
#define WAIT_SIZE	4096
/* Background requests the kernel may have in flight (ops.c): runs
 * waited for at once, and the mount's other readahead. */
#define WAIT_BACKGROUND	4096
off_t wait_size(const struct obj *o);
void wait_read(fuse_req_t req, struct mlfs *m, int64_t id, size_t size,
	       off_t off);
/* @o changed: answer its waiters once it is a final run. */
void wait_changed(struct mlfs *m, const struct obj *o);
/* A run was removed: answer its waiters ENOENT. */
void wait_sweep(struct mlfs *m);
/* The session ends: answer every waiter EIO, and new ones at once. */
void wait_stop(struct mlfs *m);

/* at.c */
void at_close(struct at *a);
int at_find(struct mlfs *m, uint64_t ino, const char *child,
	    struct at *a);
int at_open(struct at *a);
int at_openat(const struct at *a, int flags, mode_t mode);
int at_stat(const struct at *a, struct stat *st);
int at_flags(const struct at *a);
uint64_t user_node(struct mlfs *m, uint64_t parent, const char *name,
		   const struct stat *st);
uint64_t real_ino(struct mlfs *m, uint64_t ino);
int at_hold(struct mlfs *m, uint64_t parent, const struct at *a);
void at_proc_path(const struct at *a, char *buf, size_t size);
int holds_user_files(uint64_t parent, const struct obj *o);
int owner_of(struct mlfs *m, uint64_t ino, struct obj *o, int *root);
int disk_file_path(struct mlfs *m, const struct obj *o, int file,
		   char *path);

/* attr.c */
int ctl_attr(struct mlfs *m, uint64_t ino, const struct obj *o,
	     ssize_t known, struct stat *st);
uint64_t user_st_ino(uint64_t backing);
void user_stat(struct stat *st);
int backing_stat(fuse_req_t req, struct mlfs *m, uint64_t ino,
		 const char *name, struct stat *st);
/* runs/index.html as @req's caller sees it (malloc'd): the rendering
 * kept for that reader while nothing changed, else a new one. */
int runs_page(fuse_req_t req, struct mlfs *m, char **buf, size_t *len,
	      struct timespec *at);
/* Something a rendering of runs/index.html shows may have changed. */
void runs_page_stale(struct mlfs *m);

/* trunc.c: a setting's text across a truncate and a refused write */
void trunc_keep(struct mlfs *m, int64_t id, int file, pid_t pid);
void trunc_written(struct mlfs *m, int64_t id, int file, pid_t pid,
		   off_t off, int rc);
void trunc_free(struct mlfs *m);
void runs_page_free(struct mlfs *m);
int do_getattr(fuse_req_t req, struct mlfs *m, uint64_t ino,
	       struct stat *st);
double timeout_for(struct mlfs *m, uint64_t ino);
double ctl_name_timeout(struct mlfs *m, uint64_t ino,
			const struct obj *o);
double name_timeout(struct mlfs *m, uint64_t ino);
void mlfs_getattr(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi);
void mlfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		  int to_set, struct fuse_file_info *fi);
void mlfs_statfs(fuse_req_t req, fuse_ino_t ino);

/* dir.c */
int reply_entry(fuse_req_t req, struct mlfs *m, uint64_t ino,
		const struct ctl_view *v);
int lookup_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		const char *name, uint64_t *ino, struct stat *st);
/* Is @name in top folder @parent its kind's page (runs/index.html)? */
int is_page(uint64_t parent, const char *name);
int do_lookup(fuse_req_t req, struct mlfs *m, uint64_t parent,
	      const char *name, uint64_t *ino, struct ctl_view *v);
void mlfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void mlfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n);
void mlfs_forget_multi(fuse_req_t req, size_t count,
		       struct fuse_forget_data *f);
void dh_free(struct dh *d);
void mlfs_opendir(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi);
void mlfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		  off_t off, struct fuse_file_info *fi);
void mlfs_releasedir(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi);

/* io.c */
struct fh *fh_new(enum fh_kind kind, int64_t id, int file);
void fh_free(struct fh *h);
int user_writable(struct mlfs *m, const struct obj *o, int root);
int before_user_write(struct mlfs *m, uint64_t ino,
		      const struct obj *o, const struct at *a);
int open_user(fuse_req_t req, struct mlfs *m, uint64_t ino,
	      int flags, int *root);
int open_held(fuse_req_t req, struct mlfs *m, uint64_t ino,
	      int flags, int *root);
void mlfs_open(fuse_req_t req, fuse_ino_t ino,
	       struct fuse_file_info *fi);
void mlfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi);
void mlfs_release(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi);
void mlfs_flush(fuse_req_t req, fuse_ino_t ino,
		struct fuse_file_info *fi);
void mlfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		struct fuse_file_info *fi);
void mlfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		    off_t len, struct fuse_file_info *fi);

/* write.c */
void mlfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		size_t size, off_t off, struct fuse_file_info *fi);
void mlfs_write_buf(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_bufvec *in, off_t off,
		    struct fuse_file_info *fi);

/* namespace.c */
void mlfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, struct fuse_file_info *fi);
void mlfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode);
void mlfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, dev_t rdev);
void mlfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void mlfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void mlfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname,
		 unsigned int flags);
void mlfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		  const char *name);
void mlfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	       const char *newname);
void mlfs_readlink(fuse_req_t req, fuse_ino_t ino);

#endif
