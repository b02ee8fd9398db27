/* SPDX-License-Identifier: MIT */
/*
 * Private to the slurm driver: what its files share.  The layers, each
 * calling only down:
 *
 *   slurm.c         the driver table, provision and release
 *   slurm_poll.c    following the jobs' states (the poll round)
 *   slurm_array.c   an array run's tasks: their records, the aggregate
 *   slurm_jobs.c    a run's job: copy, script, submit, cancel, adopt,
 *                   the files brought home
 *   slurm_conn.c    the connection to slurmrestd: url, token, calls, nodes
 *   slurm_config.c  the target's config keys (pure)
 *   slurm_api.c     the JSON of each API version (pure)
 *
 * Everything but slurm_config.c runs on the backend's worker thread.
 */
#ifndef MLFS_SLURM_I_H
#define MLFS_SLURM_I_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "../backend/driver.h"
#include "../lib/clock.h"
#include "../lib/hash.h"
#include "../lib/http.h"
#include "slurm_api.h"

#define NODES_EVERY	30.0	/* seconds between refreshes of `nodes` */

/* A target's config, parsed anew at every entry (pointers into it). */
struct slurm_cfg {
	const char *url;
	const char *user;		/* NULL: the daemon's user */
	const char *token;
	const char *token_file;
	const char *partition;		/* NULL: the cluster's default */
	const struct slurm_api *api;	/* NULL: discover */
	const char *workdir;		/* NULL: each run's own folder */
	const char *podman;		/* on the nodes; NULL: in the job's
					 * PATH (runs in environments) */
	double poll_s;
	long timeout_s;
};

/* Per target, worker thread only. */
struct slurm_target {
	struct slurm_cfg cfg;
	struct http *http;
	char http_for[PATH_MAX];	/* url + timeout the handle was made for */
	const struct slurm_api *api;	/* NULL until discovered */
	uint64_t token_id;		/* hash of the token sent, 0: none */
	double token_at;		/* when token_file was last read */
	char marker[PATH_MAX];		/* "mlfs:<state dir>:" */
	char down[ERR_MSG_MAX];		/* why the last call failed, or "" */
	int last_rc;			/* http_* result of the last call */
	double retry_at;		/* no new call before (monotonic) */
	double nodes_at;		/* last refresh of `nodes` */
	/* polling: measured costs in seconds, EWMA */
	double one_cost;		/* one GET /job/{id} */
	double all_cost;		/* one round of GET /jobs */
	double all_at;			/* when all_cost was last measured */
	time_t since;			/* update_time for the next GET /jobs */
	double full_at;			/* last answer without update_time */
	struct slurm_job *cache;	/* last full GET /jobs, by job id */
	size_t ncache;
	double cache_at;		/* when it was last known current */
	/* the image cache (slurm_image_cache.c) */
	double images_at;		/* its last pass (monotonic), 0 none */
	int images_due;			/* a pass at the next chance */
	int images_refused;		/* its folder is not the daemon's:
					 * said once in events */
	/* a managed cluster (cluster.c) gives its own config and state */
	const struct kv_list *over;	/* parsed instead of t->config */
	void *ext;			/* the cluster driver's */
};

/* Per run, worker thread only. */
struct slurm_run {
	unsigned long job_id;		/* 0 until known */
	int uncertain;			/* a POST may have made a job we lack */
	int searched;			/* looked for our comment already */
	int noted;			/* r->obj.error holds our outage note */
	double due;			/* next poll (monotonic) */
	double cancel_next;		/* next DELETE allowed (monotonic) */
	const char *dependency;		/* during slurm_start_after only */
	/* an array (resources `array`): its indices, their last states */
	int *idx;			/* ascending; NULL until read */
	unsigned char *tstate;		/* enum obj_state each, 0: unread */
	int ntasks;
};

enum { M_GET, M_POST, M_DELETE };

/* The next poll round: rounds are aligned, so due runs come together. */
static inline double next_round(const struct slurm_target *st)
{
	/* (no libm in the link: the clock is positive, truncation floors) */
	return ((long long)(mono_s() / st->cfg.poll_s) + 1) * st->cfg.poll_s;
}

/* ---- slurm_config.c (pure) ---------------------------------------------- */

/* The config keys, and those a provisioned target may change. */
extern const char *const slurm_keys[];
extern const char *const slurm_live_keys[];

/* Parse @kv into @c (pointers into @kv).  0 or -EINVAL + sentence. */
int slurm_cfg_parse(const struct kv_list *kv, struct slurm_cfg *c,
		    struct err *e);
int slurm_validate(const struct kv_list *kv, struct err *e);
/* Can the target's `nodes` hold @res?  0 (also when unknown) or -EINVAL. */
int slurm_check_run(const struct kv_list *cfg, const char *nodes,
		    const struct resources *res, struct err *e);

/* ---- slurm_conn.c ------------------------------------------------------- */

/* Drop the connection (made again by the next sl_ready). */
void sl_free_http(struct slurm_target *st);
/* The target's state, made on first use (NULL: out of memory). */
struct slurm_target *sl_new(struct target_ctx *t, struct err *e);
/* The target's state (made on first use), its config parsed anew; NULL
 * with a sentence when the config is invalid or memory is out. */
struct slurm_target *sl_get(struct target_ctx *t, struct err *e);
/* Working connection, token and API version: see slurm_conn.c. */
int sl_ready(struct target_ctx *t, struct slurm_target **stp,
	     struct err *e);
/* One request to slurmrestd: see slurm_conn.c for the outcomes. */
int sl_call(struct slurm_target *st, int method, const char *path,
	    const char *body, struct http_result *res, struct err *e);
/* The API prefix + @suffix into @buf. */
void sl_api_path(const struct slurm_target *st, char *buf, size_t len,
		 const char *suffix);
/* Is slurmctld up?  Does the configured partition exist?  0 or -errno. */
int sl_ping(struct slurm_target *st, struct err *e);
int sl_partition(struct slurm_target *st, struct err *e);
/* The `nodes` text (malloc'd) of the partition.  0 or -errno. */
int sl_nodes(struct slurm_target *st, char **text, struct err *e);

/* ---- slurm.c ------------------------------------------------------------ */

/* Free the target's state (t->priv): the driver's release. */
void sl_release(struct target_ctx *t);

/* ---- slurm_jobs.c ------------------------------------------------------- */

/* The run's state, made on first use; NULL when out of memory. */
struct slurm_run *sl_run_get(struct run_ctx *r);
/* Note an outage on @r; drop the note (1 when there was one). */
void sl_run_note(struct run_ctx *r, const char *why);
int sl_run_unnote(struct run_ctx *r);
/* Folder @name in @dfd, made (@mode; 0: never made, -ENOENT when
 * missing) and opened without following a link; it must be the daemon's
 * and written by nobody else: its fd, or -errno (-EPERM: a link, or
 * another's). */
int sl_own_dir_at(int dfd, const char *name, mode_t mode);
/* The workdir's mlfs-HASH folder (path into @path), made and checked as
 * sl_own_dir_at does: its fd, or -errno with a sentence in @e. */
int sl_work_top(const struct target_ctx *t, char *path, struct err *e);

/*
 * sl_work_anchor - the run's working copy @work (sl_work_path) as a path
 * through the held fd of the workdir's mlfs-HASH folder (sl_work_top):
 * "/proc/self/fd/N/ID-NAME" into @buf, so that a user who renames entries
 * of a workdir they may write, between the check and what the daemon then
 * does by path (copy, chown, remove, as root), sends none of it elsewhere.
 * The fd into *@fd: close it once done.  Without a workdir: @work itself
 * and *@fd -1.  0 or -errno with a sentence.
 */
int sl_work_anchor(const struct target_ctx *t, const char *work, char *buf,
		   int *fd, struct err *e);
/* Where the job works (PATH_MAX bytes). */
void sl_work_path(const struct target_ctx *t, const struct run_ctx *r,
		  char *buf);
/* Look for @r's job by its comment: 0 found, -ENOENT none, or -errno. */
int sl_run_search(struct slurm_target *st, struct run_ctx *r,
		  struct err *e);
int slurm_can_start(struct target_ctx *t, struct run_ctx *r);
int slurm_start(struct target_ctx *t, struct run_ctx *r, struct err *e);
int slurm_start_after(struct target_ctx *t, struct run_ctx *r,
		      const struct run_dep *deps, int n, struct err *e);
int slurm_cancel(struct target_ctx *t, struct run_ctx *r, struct err *e);
int slurm_adopt(struct target_ctx *t, struct run_ctx *r, struct err *e);
void slurm_release_run(struct target_ctx *t, struct run_ctx *r);
/* A run's job is over: outputs back from a workdir, the working copy
 * handed to the run's user. */
void sl_run_home(struct target_ctx *t, const struct run_ctx *r);
/* An array run's indices (sr->idx, sr->ntasks), read once from its
 * `array`: 0 or -errno. */
int sl_array_tasks(struct run_ctx *r);

/* ---- slurm_image_cache.c (its config key: slurm_image_cache.h) ---------- */

/*
 * sl_cache_top_name - the name of the workspace's folder in a target's
 * workdir ("mlfs-<hash of the state dir>") into @buf.
 */
void sl_cache_top_name(const struct target_ctx *t, char *buf, size_t len);

/*
 * sl_cache_touch - a run uses cache file @name of folder @dfd again:
 * its time is now (the cache's "recently used", kept in the file's
 * mtime).  0, or -errno (-ENOENT: a pass removed it: stage it anew).
 * Ordered against the passes (a pass never removes a file between its
 * decision and a run's touch).
 */
int sl_cache_touch(int dfd, const char *name);

/*
 * sl_cache_prune - a pass over @t's image cache when one is due (every
 * SL_CACHE_EVERY_S, and at once after sl_cache_ended): removes what
 * slurm_image_cache.c's top comment says, one `events` line each.  Never
 * creates the cache nor follows a link to it.
 */
void sl_cache_prune(struct target_ctx *t);

/* sl_cache_ended - a run in an environment of @t ended: a pass is due. */
void sl_cache_ended(struct target_ctx *t);

/*
 * sl_cache_empty - @t is deprovisioned: a pass that removes every file
 * no unfinished run uses (a workdir's cache is shared by the workspace's
 * targets with that workdir, whose runs hold their files).
 */
void sl_cache_empty(struct target_ctx *t);

/* ---- slurm_poll.c ------------------------------------------------------- */

/* One poll round: the due runs' states, and now and then `nodes`. */
void slurm_poll(struct target_ctx *t, struct run_ctx **runs, int n);

/* ---- slurm_array.c ------------------------------------------------------ */

/* Bring array run @r and its tasks to what the @n records @jobs say (those
 * of other jobs are skipped); the run ends once every task has.  1 when
 * the run's state moved (and was saved). */
int sl_array_apply(struct target_ctx *t, struct run_ctx *r,
		    const struct slurm_job *jobs, size_t n);

#endif /* MLFS_SLURM_I_H */
