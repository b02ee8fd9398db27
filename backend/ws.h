/* SPDX-License-Identifier: MIT */
/*
 * The workspace: objects, their control files, the state machines, the
 * events stream and the worker that advances them.  The FUSE layer (fs/)
 * calls only this API; drivers (targets/) report progress through it.
 *
 * Thread-safety: every function may be called from any thread unless it
 * says "worker only".  Each state change is one SQLite transaction, one
 * line in `events`, then the invalidation hooks for exactly the files it
 * changed, called with no lock held.
 */
#ifndef MLFS_WS_H
#define MLFS_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "driver.h"
#include "objects.h"
#include "parse.h"

struct ws;

/* Cache invalidation, supplied by the FUSE layer.  Any may be NULL. */
struct ws_hooks {
	void *ctx;
	/* Content and attributes of these control files of object @id. */
	void (*inval_files)(void *ctx, int64_t id, fmask_t files_mask);
	/* A file grew from @old_size (log, metrics): attributes + tail. */
	void (*inval_grow)(void *ctx, int64_t id, int file, off_t old_size);
	/* The events file grew from @old_size. */
	void (*inval_events)(void *ctx, off_t old_size);
	/* The name @name in the folder of object @parent_id (0: the top
	 * folder of @kind, e.g. runs/) appeared, vanished or changed. */
	void (*inval_entry)(void *ctx, int kind, int64_t parent_id,
			    const char *name);
	/* Everything below control folder @root of object @id (an
	 * FD_ENGINE folder: a run's outputs/) may have changed. */
	void (*inval_folder)(void *ctx, int64_t id, int root);
	/* The bytes of user file @name, directly below control folder
	 * @root of object @id, changed behind the kernel (an endpoint's
	 * regenerated key). */
	void (*inval_user)(void *ctx, int64_t id, int root, const char *name);
	/* A change to object @id is about to be committed (called with no
	 * lock held, before the transaction): keep what its files show now,
	 * for the kernel may still ask for those bytes after the change. */
	void (*change_begin)(void *ctx, int64_t id);
};

/* Control-file descriptions, per kind. */
enum file_flags {
	FD_SETTING = 1 << 0,	/* user-editable text kept in the store */
	FD_GEN = 1 << 1,	/* generated from the row on each open */
	FD_DISK = 1 << 2,	/* a file in the object's folder on disk */
	FD_CTL = 1 << 3,	/* write = commands, read = valid commands */
	FD_DIRECTORY = 1 << 4,	/* a folder on disk (outputs/) */
	FD_SECRET = 1 << 5,	/* mode 0600 */
	FD_WAIT = 1 << 6,	/* a read answers once the object is final */
	/* with FD_DIRECTORY: results an engine writes (a run's outputs/,
	 * an array's tasks/), read-only through the mount and changed
	 * behind the kernel's back until the object settles */
	FD_ENGINE = 1 << 7,
};

struct file_desc {
	const char *name;
	int file;		/* enum ctl_file */
	int flags;
	const char *dir;	/* FD_DIRECTORY: its folder below objects/ID */
	const char *writer;	/* FD_ENGINE: who writes it, for a refusal */
};

/* The control files of @kind, in listing order; *n set to the count. */
const struct file_desc *ws_files(int kind, int *n);
/* The control file called @name in a folder of @kind, or NULL. */
const struct file_desc *ws_file_by_name(int kind, const char *name);
const struct file_desc *ws_file_by_id(int kind, int file);

/* ---- life cycle ---------------------------------------------------------- */

/*
 * ws_open - open (create, migrate) the workspace in @state_dir.
 * Creates the folder, the store, the `local` target on first use, and
 * reconciles the store with the files (logging what it repaired).
 * Returns 0 or -errno with a sentence.
 */
int ws_open(struct ws **wsp, const char *state_dir, struct err *e);
void ws_set_hooks(struct ws *ws, const struct ws_hooks *hooks);
/* Start the worker thread (after daemonizing): adopts active runs. */
int ws_start(struct ws *ws);
/* Stop the worker; runs keep going on their engines. */
void ws_close(struct ws *ws);
const char *ws_state_dir(const struct ws *ws);
/* Where mlfs-run, mlfs-serve.py and the other helpers live: set once by
 * main after ws_open, before ws_start; "." until then.  The drivers read
 * it on the worker threads. */
void ws_set_helper_dir(struct ws *ws, const char *dir);
const char *ws_helper_dir(const struct ws *ws);
/* The CPUs this process may run on (its affinity, as nproc counts them:
 * a daemon confined to some cores runs that many at once by default). */
int ws_cpus(void);
/* How much of a @size-byte write to a user's file may go to disk: users
 * leave the last MiB of the state dir's file system to the workspace's
 * own records (a full disk, backend/space.c); a root daemon's reserved
 * blocks are not counted (f_bavail).  0 when full. */
size_t ws_user_room(const struct ws *ws, size_t size);
/* <state>/objects/<id>[/sub] into @buf (PATH_MAX). */
void ws_obj_path(const struct ws *ws, int64_t id, const char *sub, char *buf);
/* <state>/events */
const char *ws_events_path(const struct ws *ws);

/* ---- lookups ------------------------------------------------------------- */

int ws_get(struct ws *ws, int64_t id, struct obj *o);		/* 0, -ENOENT */
int ws_find(struct ws *ws, int kind, int64_t parent, const char *name,
	    struct obj *o);					/* 0, -ENOENT */
/*
 * ws_list - call @cb for each object of @kind under @parent whose id is
 * greater than @after, in id order, until @cb returns non-zero.
 * Streams from the store: memory does not grow with the count.
 */
int ws_list(struct ws *ws, int kind, int64_t parent, int64_t after,
	    int (*cb)(void *arg, const struct obj *o), void *arg);

/* ---- objects ------------------------------------------------------------- */

/*
 * ws_create - mkdir of a new object.  0 (and *out), -EINVAL bad name,
 * -EEXIST taken, -EIO.
 */
int ws_create(struct ws *ws, int kind, int64_t parent, const char *name,
	      uint32_t uid, uint32_t gid, struct obj *out, struct err *e);
/*
 * ws_remove - rmdir of an object: removes its row and bytes.  -EBUSY when
 * it is active (a run not finished, a target with active runs or being
 * provisioned, a deployment serving, a model version in use).
 */
int ws_remove(struct ws *ws, int64_t id, struct err *e);
/* ws_rename - mv within the same folder kind.  -EBUSY active, -EEXIST. */
int ws_rename(struct ws *ws, int64_t id, const char *newname,
	      struct err *e);
/*
 * ws_target_usable - may @uid (primary group @gid) run on target @t?  Its
 * x bits by the owner, group, other rule; root always.  0, or -EACCES
 * with a sentence naming the owner.  Cheap (may look up groups).
 */
int ws_target_usable(const struct obj *t, uint32_t uid, uint32_t gid,
		     struct err *e);
/*
 * ws_obj_chmod, ws_obj_chown - chmod and chown of an object folder by
 * @uid: its owner or root (chown of the owner: root only; a group: one
 * of the caller's).  Group and others never get write permission.  0,
 * -EPERM, -ENOENT, -errno.  (uint32_t)-1 keeps an id.
 */
int ws_obj_chmod(struct ws *ws, int64_t id, uint32_t uid, mode_t mode);
int ws_obj_chown(struct ws *ws, int64_t id, uint32_t uid, uint32_t gid,
		 uint32_t new_uid, uint32_t new_gid);
/* 1 when the object is active (ws_remove would say EBUSY). */
int ws_busy(struct ws *ws, const struct obj *o);
/* Record a refusal decided outside ws.c: @e's sentence goes to the
 * object's `error` and to events. */
void ws_refuse(struct ws *ws, int64_t id, int rc, const struct err *e);
/* 1 while the user's files in the object's folder may change. */
int ws_files_writable(const struct obj *o);
/* May the user files of @o below control folder @root (F_DIR: files/)
 * change now?  0, or -EROFS with the reason in @o's `error`. */
int ws_may_write_files(struct ws *ws, const struct obj *o, int root);
/* 1 when nothing of @o changes any more (a finished run): the kernel may
 * keep what it cached. */
int ws_obj_settled(const struct obj *o);
/* 1 when the user files of @o may be names of other objects' files (a
 * model version's, of a run's outputs): see ws_user_file_write. */
int ws_files_shared(const struct obj *o);
/*
 * ws_user_file_write - user file @path of @o is about to be changed
 * (written, truncated, chmod…): a model version's file that is still a
 * name of a run's output (register links them) becomes a file of its own
 * first.  0 or -errno.
 */
int ws_user_file_write(struct ws *ws, const struct obj *o, const char *path);

/* ---- questions of the FUSE layer: object policy lives here, not in fs/ */

/* The kind of the objects @o's folder holds (a model: its versions), or
 * K_NONE: its entries are control and user files. */
int ws_child_kind(const struct obj *o);
/* 1 when folder @file of @o (F_DIR: the object folder) holds user files. */
int ws_holds_user_files(const struct obj *o, int file);
/* The folder below objects/ID where the user files under control folder
 * @root live (F_DIR: files/, a run's outputs/: work/outputs). */
const char *ws_user_dir(int root);
/* The FD_ flags of control folder @root of any kind, whose entries are
 * user files: FD_DIRECTORY, with FD_ENGINE (written by an engine) or
 * FD_SECRET (mode 0600) where they apply; F_DIR (the object folder) is
 * FD_DIRECTORY; 0 when @root holds no user files.  The FUSE layer asks
 * this rather than knowing folders by name. */
int ws_root_flags(int root);
/* 1 when user entries below @root of @o may be removed now (else the
 * caller refuses with EROFS, see ws_files_writable). */
int ws_user_removable(const struct obj *o, int root);
/* unlink of a control file of @o (rm -r of its folder): nothing changes;
 * 0, or -EBUSY while it is active, so that rm -r stops early. */
int ws_may_unlink_ctl(struct ws *ws, const struct obj *o);
/* rmdir of control file @file of @o: 0 (nothing changes), -EBUSY while
 * active, -ENOTDIR when it is no folder. */
int ws_may_rmdir_file(struct ws *ws, const struct obj *o, int file);

/* ---- control files ------------------------------------------------------- */

/*
 * ws_render - the content of a generated or setting file of @o as a
 * malloc'd buffer (*len bytes).  0 or -errno.
 */
int ws_render(struct ws *ws, const struct obj *o, int file, char **buf,
	      size_t *len);
/* Mode bits (without S_IFREG) of control file @file of @o. */
unsigned ws_file_mode(struct ws *ws, const struct obj *o, int file);

/*
 * ws_setting_write - write @len bytes at @off into a setting file
 * (truncating it first to @off when @trunc).  0, -EROFS frozen, -EFBIG past
 * SETTING_MAX, -EACCES not a setting.
 */
/* A setting holds less than 1020 KiB: the largest request the kernel
 * sends (fs/fs_i.h MAX_WRITE), so that the first piece of a write too big
 * for a setting already reaches the limit, and no head of it is kept. */
#define SETTING_MAX	((1 << 20) - 4096)
int ws_setting_write(struct ws *ws, int64_t id, int file, const char *buf,
		     size_t len, off_t off);
int ws_setting_truncate(struct ws *ws, int64_t id, int file, off_t size);
/* Put back the text a setting had before a truncate whose write was then
 * refused (unchecked: it was the setting; the refusal's sentence stays in
 * `error`).  Nothing when the setting is frozen meanwhile. */
void ws_setting_restore(struct ws *ws, int64_t id, int file,
			const char *buf, size_t len);
/* Replace a setting whole (rename-over by editors). */
int ws_setting_replace(struct ws *ws, int64_t id, int file, const char *buf,
		       size_t len);

/*
 * ws_ctl - commands written to an object's ctl file, acted on inside the
 * write: 0, or -errno (EINVAL malformed, ENOENT unknown target/model,
 * EBUSY wrong state, ENOTSUP the driver lacks the verb, EIO) with the
 * sentence also written to the object's `error` file and to `events`.
 */
int ws_ctl(struct ws *ws, int64_t id, const char *buf, size_t len,
	   uint32_t uid, uint32_t gid);

/* ---- for drivers and the worker (worker only) --------------------------- */

/*
 * ws_run_transition - move @r to @state (exit code, error sentence or NULL
 * to leave) in one transaction, if its stored state is still the one
 * r->obj holds.  0, -EAGAIN if someone else moved it (r->obj reloaded).
 */
int ws_run_transition(struct ws *ws, struct run_ctx *r,
		      enum obj_state state, int exit_code, const char *error);
/* Persist r->obj's backend fields (backend_id, node, gpus, ddata). */
int ws_run_save(struct ws *ws, struct run_ctx *r);
/* Set the error text of run @r without a state change (e.g. engine
 * unreachable); one events line when it changes. */
int ws_run_note(struct ws *ws, struct run_ctx *r, const char *error);
/*
 * run_array_end - an array run @r ended (worker): settle the tasks its
 * launcher left Queued or Running (Canceled when @canceled, else Failed:
 * lost) and put the sentence naming the failed and the lost tasks in @why
 * ("" when none), e.g. "tasks 3, 17 failed (exit 1)", "task 0 failed
 * (exit 1); tasks 1-3 were lost (their launcher died)".  How many failed
 * or were lost, or -ENOENT when the run has no tasks/ folder (its
 * launcher never ran).
 */
int run_array_end(struct run_ctx *r, int canceled, char *why, size_t sz);
/*
 * For a target whose tasks mlfs-array does not start (Slurm: a job
 * array), worker only.  run_array_make_tasks: tasks/I for the @n indices
 * @idx, Queued, with an empty exit_code and log (0 or -errno + @e).
 * run_array_task_state: what tasks/@idx/status says (STATE_NONE: none).
 * run_array_task_set: task @idx is @s (its exit_code @code once final,
 * when >= 0), and a line in the run's log as mlfs-array writes them.
 */
int run_array_make_tasks(struct run_ctx *r, const int *idx, int n,
			 struct err *e);
enum obj_state run_array_task_state(const struct run_ctx *r, int idx);
void run_array_task_set(struct run_ctx *r, int idx, enum obj_state s,
			int code);
/*
 * The writers of tasks/ for a driver that learns its tasks' states from
 * the host (worker): run_array_make makes tasks/I for each of the @n
 * indices @idx that has none yet (status Queued, exit_code and log
 * empty); run_array_put sets tasks/I/@name to @text atomically;
 * run_array_log appends @n bytes to tasks/I/log and returns its size (@n
 * 0: just the size); run_array_status reads tasks/I/status into @buf.
 * 0 (a size) or -errno.
 */
int run_array_make(struct run_ctx *r, const int *idx, int n);
int run_array_put(struct run_ctx *r, int idx, const char *name,
		  const char *text);
long long run_array_log(struct run_ctx *r, int idx, const char *data,
			size_t n);
int run_array_status(struct run_ctx *r, int idx, char *buf, size_t sz);
/*
 * ws_run_cancel_for - cancel started run @r for a reason of its own: the
 * worker stops it as for `cancel` (the engine is asked each tick, also
 * after a restart), and @why, in `error` now, stays there when it ends
 * Canceled.  0 or -errno.
 */
int ws_run_cancel_for(struct ws *ws, struct run_ctx *r, const char *why);
/*
 * ws_run_after_cancel - the engine says queued @r can never start for
 * the runs it waits for: cancel it (ws_run_cancel_for) with the sentence
 * of `after` when one of them ended otherwise than it needs, else with
 * @why.  -EAGAIN when mlfs has not seen them all end yet (ask again at
 * the next poll); 0 (also when a cancel is under way) or -errno.
 */
int ws_run_after_cancel(struct ws *ws, struct run_ctx *r, const char *why);
int ws_target_set_nodes(struct ws *ws, struct target_ctx *t,
			const char *nodes);
/* Set the error text of target @t without a state change ("" clears). */
int ws_target_note(struct ws *ws, struct target_ctx *t, const char *error);

/*
 * ws_images_held - each image id in use in the workspace, once per
 * holder: every environment's current image (@run 0) and the image each
 * unfinished run (Queued, Starting, Running) recorded at submit (@run 1).
 * @cb returns non-zero to stop.  Any thread; one indexed query.  0 or
 * -errno.
 */
int ws_images_held(struct ws *ws,
		   int (*cb)(void *arg, const char *image, int run),
		   void *arg);

/* Append one line to `events`: "<time> <kind> <name> <text>". */
void ws_event(struct ws *ws, int kind, const char *name, const char *text);
const char *kind_name(int kind);

/* The name of the page generated among @kind's objects (runs/index.html:
 * the runs, their status, duration, and each metric's last value and
 * sparkline), a name no object may take; NULL when the kind has none. */
const char *ws_kind_page(int kind);
/*
 * ws_page - @kind's page as @uid (primary group @gid) sees it (the runs
 * it may look into).  0 with a malloc'd *@buf, -ENOENT (no page), or
 * -errno.
 */
int ws_page(struct ws *ws, int kind, uint32_t uid, uint32_t gid, char **buf,
	    size_t *len);

#endif
