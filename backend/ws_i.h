/* SPDX-License-Identifier: MIT */
/*
 * Private to backend/: the workspace structure, the kind table and the
 * helpers the core (ws.c) lends to the files above it.
 *
 * Floors, lowest first.  A file calls and includes only files of floors
 * below its own; where a lower file must reach a higher one it calls a
 * hook the higher one registered (ws->kick, ws->stop, the kind table):
 *   1  parse.c, state.c, log.c, driver.c, fscreds.c
 *   2  store.c (SQL), userfile.c
 *   3  space.c                  the workspace on a full disk
 *   4  ws.c                     the core: events, transactions, lookups,
 *                               create/remove/rename, ctl dispatch, trash
 *   5  ws_owner.c               chmod/chown, who may use a target
 *      ws_settings.c            setting files (store texts), file modes
 *      ws_render.c              generated files, info.json
 *      run_inputs.c             `inputs`: what they name, where it is
 *      run_after.c              `after` (and inputs' runs): checks, and
 *                               where a run's are
 *   6  model.c                  the model and version kinds, register
 *   7  deploy_*.c               deployments: config, ctl, state machine
 *   8  run.c, target.c,         the run, target and deployment kinds
 *      deployment.c, endpoint.c  endpoint_sm.c (the endpoints' worker
 *                               side) below endpoint.c and worker.c
 *      env.c                    environments; env_sm.c (their worker
 *                               side: builds) below env.c and worker.c
 *      run_plots.c              a run's params and metrics.svg
 *      run_index.c              runs/index.html
 *   9  worker.c                 the worker threads
 *  10  ws_open.c                open/reconcile/close: registers the kinds
 *                               and the worker's hooks
 * Below all of them: lib/ (copy, http, log, clock, hash, vec, err).
 */
#ifndef MLFS_WS_I_H
#define MLFS_WS_I_H

#include <pthread.h>
#include <stdint.h>

#include "../lib/clock.h"
#include "store.h"
#include "ws.h"

struct tworker;
struct cJSON;
struct ctl_cmd;

/*
 * What an object kind decides, one table per kind (run.c, target.c,
 * deployment.c, model.c), registered by ws_open.c.  The core dispatches
 * through it and knows no kind.  NULL hooks mean what their comment says.
 */
struct kind_ops {
	const char *name;		/* in events and info.json */
	const struct file_desc *files;	/* control files, listing order */
	int nfiles;
	enum obj_state initial_state;	/* at mkdir */
	mode_t mode;			/* a new folder's, whatever the umask */
	int user_files;			/* its folder holds user files */
	int files_shared;		/* may be names of others' (register) */
	int child_kind;			/* of the objects its folder holds, or
					 * K_NONE */
	/* a file generated among the kind's objects (runs/index.html), a
	 * name no object may take (NULL: none), and its text as @uid
	 * (primary group @gid) sees it: 0 with a malloc'd *@buf, or -errno */
	const char *page;
	int (*page_render)(struct ws *ws, uint32_t uid, uint32_t gid,
			   char **buf, size_t *len);
	/* ctl: one command (NULL: the kind takes none) */
	int (*verb)(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e);
	/* ctl read: the commands valid now (NULL: none) */
	const char *(*ctl_valid)(const struct obj *o);
	/* info.json: the kind's keys after the common ones (NULL: none) */
	void (*json)(struct ws *ws, struct cJSON *j, const struct obj *o);
	/* why rmdir/rename are refused now, -EBUSY/-EPERM (NULL: never) */
	int (*busy)(struct ws *ws, const struct obj *o, struct err *e);
	/* rmdir, after busy: e.g. -ENOTEMPTY (NULL: removable) */
	int (*may_remove)(struct ws *ws, const struct obj *o, struct err *e);
	/* rename, after busy (NULL: allowed) */
	int (*may_rename)(const struct obj *o, struct err *e);
	/* may setting @file be written now: 0, -EROFS (NULL: never) */
	int (*setting_writable)(const struct obj *o, int file);
	/* 1 while the user files may change (NULL: never) */
	int (*files_writable)(const struct obj *o);
	/* why they may not, when the kind has its own sentence (NULL: the
	 * core's) */
	void (*files_readonly_why)(const struct obj *o, struct err *e);
	/* 1 when nothing of @o changes any more (NULL: never) */
	int (*settled)(const struct obj *o);
	/* 1 when user entries below control folder @root (F_DIR: files/)
	 * may be removed (NULL: always) */
	int (*user_removable)(const struct obj *o, int root);
	/* unlink of a control file (rm -r): 0 or -EBUSY (NULL: 0) */
	int (*unlink_ctl)(struct ws *ws, const struct obj *o);
	/* the target whose worker advances @o (NULL: none) */
	int64_t (*worker_of)(const struct obj *o);
	/* a generated file of the kind's own: its text, or -ENOENT for the
	 * core's rendering (NULL: none) */
	int (*render)(const struct obj *o, int file, char **buf, size_t *len);
	/* mkdir, once the folder is made: what the kind makes at once
	 * (an endpoint's keys); failing undoes the mkdir (NULL: nothing) */
	int (*made)(struct ws *ws, const struct obj *o, struct err *e);
	/* a setting's text checked inside the write: 0, -EINVAL with a
	 * sentence, or 1 for the core's check (NULL: the core's) */
	int (*setting_check)(struct ws *ws, const struct obj *o, int file,
			     const char *buf, size_t len, struct err *e);
	/* a setting written (committed): applied now, e.g. an endpoint's
	 * traffic (NULL: nothing) */
	void (*setting_changed)(struct ws *ws, const struct obj *o, int file);
};

/* @s and a newline ("" stays empty), malloc'd into *@buf. */
int ws_line_text(const char *s, char **buf, size_t *len);

/* The table of @kind (registered by ws_open.c); never NULL: an unknown
 * kind gets one named "?" with no files and every hook NULL. */
const struct kind_ops *ws_kind(int kind);
void ws_kind_register(int kind, const struct kind_ops *ops);

struct ws {
	char *dir;			/* state dir, absolute */
	char helper_dir[4096];		/* ws_set_helper_dir ("": unset) */
	char events_path[4096];
	struct store *st;
	struct ws_hooks hooks;		/* set once before ws_start */
	/* wake the worker serving object @id (0: housekeeping), set by
	 * ws_open.c: the core is below the worker and never calls it */
	void (*kick)(struct ws *ws, int64_t id);
	/* stop the workers (ws_close), set by ws_open.c */
	void (*stop)(struct ws *ws);
	int ncpu;

	pthread_mutex_t ev_lock;	/* guards events_fd, events_size,
					 * events_room, events_cannot */
	int events_fd;
	off_t events_size;
	off_t events_room;		/* allocated up to here (space.c) */
	int events_cannot;		/* the fs cannot allocate ahead */

	pthread_mutex_t space_lock;	/* guards reserve_missing */
	int reserve_missing;		/* the store's reserve is used up */
	double space_checked;		/* housekeeping thread only */

	pthread_mutex_t seq_lock;	/* guards seq */
	int64_t seq;

	/* workers: one thread per target with work, plus housekeeping */
	pthread_mutex_t req_lock;	/* guards workers, stopping */
	struct tworker *workers;
	int stopping;
	int started;			/* ws_start ran: workers may start */
	int opened;			/* ws_open completed: mark a clean stop */
};

/* worker.c (registered as ws->kick and ws->stop by ws_open.c) */
int worker_start(struct ws *ws);
void worker_stop(struct ws *ws);
void worker_wake(struct ws *ws, int64_t id);
/* ws.c: ask the worker to look at object @id again (new submit, cancel,
 * …) through ws->kick: callable from any floor.  WORKERS_ALL: every
 * worker looks at its runs again (a run ended: runs waiting for it,
 * `after`, may start on any target). */
#define WORKERS_ALL	(-1)
void worker_kick(struct ws *ws, int64_t id);

/* space.c: the workspace on a full disk */
#define SPACE_TICK_MS	5000		/* housekeeping looks this often */
/* At ws_open: the store's reserve and room ahead in events. */
void space_open(struct ws *ws);
/* Before a write of the workspace's own: on a full disk, free the store's
 * reserve (once) so that the store grows into it, not the disk.  1 when
 * it freed it now (then the caller says so in events). */
int space_before_write(struct ws *ws);
/* Such a write failed with ENOSPC: free the reserve if still there.  1
 * when the caller may try once more (and says so in events). */
int space_use_reserve(struct ws *ws);
/* Housekeeping: make the reserve again when there is room.  1 when it was
 * made again (the caller says so in events: space.c is below them). */
int space_tick(struct ws *ws);
/* 1 when the state dir's file system has (almost) no room left. */
int space_full(const struct ws *ws);
/* Append "the file system of the state dir … is full" to @error. */
void space_note(const struct ws *ws, char *error, size_t size);
/* Under ev_lock, after an append: keep room allocated past its end. */
void space_events_room(struct ws *ws);

/* ws.c, for the files above it */
/* One events line, "<time> <kind> <name> <text>". */
void ws_event_line(struct ws *ws, const char *kind, const char *name,
		   const char *text);
void ws_inval(struct ws *ws, int64_t id, fmask_t mask);
/* Everything below @o's FD_ENGINE folders may have changed (it ended):
 * the FUSE layer's inval_folder hook for each. */
void ws_engine_folders_changed(struct ws *ws, const struct obj *o);
int ws_update_obj(struct ws *ws, struct obj *o, enum obj_state expect,
		  fmask_t mask);
int ws_load_config(struct ws *ws, int64_t id, struct kv_list *cfg,
		   struct err *e);
/* Parse a target's config text (`host` may repeat). */
int ws_config_parse(const char *buf, size_t len, struct kv_list *cfg,
		    struct err *e);
void ws_trash_empty(struct ws *ws);
int ws_read_text(struct ws *ws, int64_t id, int file, char **buf,
		 size_t *len);
/* The line "no space left … uses its reserve" in events. */
void ws_space_event(struct ws *ws);
/* @o's change @text in events, under its display name ("m:3"). */
void ws_obj_event(struct ws *ws, const struct obj *o, const char *text);
/* Record a refusal of @o: @e to `error` and events.  Returns @rc. */
int ws_refuse_obj(struct ws *ws, struct obj *o, int rc, const struct err *e);
/* -EBUSY when ws_busy says so, else 0 (a kind's unlink_ctl hook). */
int ws_ebusy(struct ws *ws, const struct obj *o);
/* The change_begin hook for @id (before a store write without update). */
void ws_change_begin(struct ws *ws, int64_t id);
/* The first word of text @file of @id into @out; "" when empty.  0 or
 * -errno with a sentence naming @what. */
int ws_read_word(struct ws *ws, int64_t id, int file, const char *what,
		 char *out, size_t sz, struct err *e);
/* UTC ISO 8601 of unix time @t, "" when none. */
void ws_iso_time(double t, char *buf, size_t sz);
/* @in as printable UTF-8 (control bytes and invalid UTF-8 as \xNN). */
void ws_text_clean(const char *in, char *out, size_t sz);
int ws_mkdir_p(const char *path, mode_t mode);
/* objects/ID (and files/ for kinds with user files), the owner's. */
int ws_make_obj_dirs(struct ws *ws, const struct obj *o);
/* Files that change with every state transition. */
#define STATE_FILES (FBIT(F_STATUS) | FBIT(F_INFO) | FBIT(F_ERROR) | \
		     FBIT(F_EXIT_CODE) | FBIT(F_CTL))

/* ws_settings.c */
/* May setting @file of @o be written now? 0 or -EROFS. */
int ws_setting_writable(const struct obj *o, int file);

/* ws_render.c: info.json helpers for the kinds */
void ws_json_str(struct cJSON *j, const char *key, const char *v);
void ws_json_time(struct cJSON *j, const char *key, double t);
/* Setting @file of @id as a string (trailing newline dropped). */
void ws_json_setting(struct ws *ws, struct cJSON *j, const char *key,
		     int64_t id, int file);

/* target.c, for ws_open.c: the built-in local target on first use. */
int target_ensure_local(struct ws *ws, struct err *e);

/* The kinds (their tables, for ws_open.c) */
extern const struct kind_ops run_kind, target_kind, deployment_kind,
	model_kind, version_kind, endpoint_kind, env_kind;

/* run_after.c: `after`, the runs a run waits for */
/* Is @buf a valid `after` of run @o: a sentence names the line, the
 * unknown run or the cycle.  0 or -EINVAL (-ENOMEM). */
/* run_index.c: runs/index.html, run_kind's page_render */
int run_index_page(struct ws *ws, uint32_t uid, uint32_t gid, char **buf,
		   size_t *len);
int run_after_check(struct ws *ws, const struct obj *o, const char *buf,
		    size_t len, struct err *e);
/* Is @buf a valid `inputs` of run @o (the runs and model versions it
 * names exist; a run named makes no cycle)?  0 or -EINVAL + sentence. */
int run_inputs_check(struct ws *ws, const struct obj *o, const char *buf,
		     size_t len, struct err *e);
enum { AFTER_READY, AFTER_WAIT, AFTER_CANCEL };
/* Where the runs of @l are: AFTER_READY all ended as needed; AFTER_WAIT
 * (@why: "waiting for a, b"); AFTER_CANCEL one cannot be (@why: the
 * sentence).  Worker threads. */
int run_after_state(struct ws *ws, const struct after_list *l, char *why,
		    size_t sz);

/* run_inputs.c: `inputs`, what a run reads by reference */
/* The model version input @in names exists (other kinds: 0); else
 * -EINVAL + sentence. */
int run_inputs_model_check(struct ws *ws, const struct input *in,
			   struct err *e);
/* Add to @l the runs whose outputs run @id reads and @l does not name
 * (each must complete); past AFTER_MAX they are left out. */
void run_inputs_runs(struct ws *ws, int64_t id, struct after_list *l);
struct run_ctx;
/* Worker: @r->inputs, @r->ninputs: each input's name and the path where
 * it is on the daemon's machine.  0 or -errno + sentence. */
int run_inputs_resolve(struct ws *ws, struct run_ctx *r, struct err *e);
/* run_plots.c: a run's params and pictures (worker threads) */
/* Name the first malformed line of @var in run @r's error (once). */
void run_bad_line(struct ws *ws, struct run_ctx *r, const char *var,
		  const char *line, const char *want);
/* Apply the complete `name value` lines of @buf (modified) to params. */
int run_params_merge(struct ws *ws, struct run_ctx *r, char *buf,
		     size_t len, const char *var);
/* New lines of $MLFS_PARAMS into params. */
void run_params_pump(struct ws *ws, struct run_ctx *r);
/* Redraw metrics.svg and the summary if metrics changed (@final: the
 * run ended, no throttling). */
void run_plot_refresh(struct ws *ws, struct run_ctx *r, int final);
/* run_metrics.c: new complete lines of $MLFS_METRICS into metrics */
void run_metrics_pump(struct ws *ws, struct run_ctx *r);
/* After a restart: skip the raw lines metrics already holds. */
void run_metrics_recover(struct ws *ws, struct run_ctx *r);

#endif
