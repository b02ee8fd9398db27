/* SPDX-License-Identifier: MIT */
/*
 * The driver interface: one ops table per engine (targets/<engine>.c).
 *
 * Threads: validate and check_run are pure and fast and may run on a FUSE
 * request thread (inside the write to ctl).  Everything else runs on the
 * worker thread only, which owns every struct target_ctx and run_ctx; a
 * driver may block there (network, process start) but every network call
 * has a timeout.  A driver never touches the mountpoint.
 *
 * A driver reports progress through the ws_* functions in ws.h
 * (ws_run_transition, ws_run_save, ws_target_set_nodes), each one SQLite
 * transaction + one events line + cache invalidation.
 */
#ifndef MLFS_DRIVER_H
#define MLFS_DRIVER_H

#include <limits.h>
#include <stdint.h>

#include "objects.h"
#include "parse.h"

struct ws;
struct deploy_ctx;
struct deploy_spec;
struct replica;

struct target_ctx {
	struct ws *ws;
	struct obj obj;			/* the target's row */
	struct kv_list config;		/* parsed `config` */
	const struct driver *drv;
	void *priv;			/* the driver's, freed by ->release */
	int active;			/* runs the worker tracks on it */
};

/* An input of a run (its `inputs`), resolved: $MLFS_INPUT_<name> */
struct run_input {
	char name[INPUT_NAME_MAX + 1];
	char path[PATH_MAX];		/* on the daemon's machine */
};

struct run_ctx {
	struct ws *ws;
	struct obj obj;			/* the run's row, kept current */
	struct target_ctx *t;
	char *command;			/* the `command` setting */
	struct kv_list env;		/* the `env` setting, parsed */
	struct resources res;
	struct after_list after;	/* runs it waits for (with the runs
					 * its inputs read); emptied once
					 * they all ended as needed */
	struct run_input *inputs;	/* `inputs`, resolved at load */
	int ninputs;
	char image[128];		/* its environment's image id, "" none */
	char dir[PATH_MAX];		/* <state>/objects/<id> */
	int wait_fd;			/* readable when the run may have ended; -1 */
	int started;			/* the engine has it (spawned / submitted) */
	double cancel_sent;		/* when TERM was sent, 0 if not */
	void *priv;			/* the driver's */
	/* worker bookkeeping */
	int64_t log_size;
	int64_t metrics_off;		/* bytes of metrics.raw converted */
	int64_t params_off;		/* bytes of params.raw applied */
	int64_t plot_size;		/* metrics' size metrics.svg shows */
	double plot_at;			/* when metrics.svg was made, 0 never */
	int bad_line;			/* a malformed line is in `error` */
	int watch;			/* inotify watch on dir, -1 if none */
	struct run_ctx *next;
};

/* Paths inside a run's folder (<state>/objects/<id>/…) */
#define RUN_FILES	"files"		/* the user's files, frozen at submit */
#define RUN_WORK	"work"		/* the working copy (local target) */
#define RUN_LOG		"log"		/* stdout + stderr */
#define RUN_METRICS_RAW	"metrics.raw"	/* $MLFS_METRICS */
#define RUN_METRICS	"metrics"	/* name value step time */
#define RUN_PARAMS_RAW	"params.raw"	/* $MLFS_PARAMS */
#define RUN_PARAMS	"params"	/* name value, one line per name */
#define RUN_PLOT	"metrics.svg"	/* the chart of metrics */
#define RUN_SUMMARY	"metrics.sum"	/* for runs/index.html */
#define RUN_EXIT	"exit"		/* exit code, written by the supervisor */
#define RUN_PID		"pid"		/* supervisor pid, child pgid, start */
#define RUN_TASKS	"tasks"		/* an array's tasks/I/{status,
					 * exit_code,log}, its launcher's */

/* A run another run waits for (its `after`), started on the same target:
 * what ->start_after hands to the engine. */
struct run_dep {
	struct run_ctx *run;
	int any;			/* 1: however it ends; 0: Completed */
};

struct driver {
	const char *type;
	const char *const *config_keys;	/* NULL-terminated */
	const char *const *live_keys;	/* changeable while provisioned */
	const char *const *multi_keys;	/* may be given on several lines */
	int can_host;			/* can host deployments */
	int inputs;			/* gives runs their `inputs` */
	int arrays;			/* runs arrays (resources `array`) */
	int environments;		/* runs in containers (`environment`) */
	const char *deploy_host;	/* bind address of replicas when the
					 * deployment's config sets no host
					 * (NULL: 127.0.0.1) */
	int refresh_seconds;		/* ->refresh while idle, 0: at start */

	/* Pure: check a target's config.  0 or -EINVAL + sentence. */
	int (*validate)(const struct kv_list *config, struct err *e);
	/* Pure: can this target ever run @res?  0 or -EINVAL + sentence.
	 * @nodes_text is the target's `nodes` file (may be empty). */
	int (*check_run)(const struct kv_list *config, const char *nodes_text,
			 const struct resources *res, struct err *e);

	/* Worker: make the target usable; fill @nodes (one line a node:
	 * "name state cpus memory gpus").  0 or -errno + sentence. */
	int (*provision)(struct target_ctx *t, char **nodes, struct err *e);
	int (*deprovision)(struct target_ctx *t, struct err *e);
	/* Worker, Updating: apply the live keys of the config now (e.g.
	 * `resize MIN MAX`, which only drivers with ->update take); fill
	 * @nodes as provision does.  0 or -errno + sentence (the target
	 * stays Succeeded, the sentence in `error`). */
	int (*update)(struct target_ctx *t, char **nodes, struct err *e);
	/* Worker: refresh `nodes` now and then (may be NULL). */
	int (*refresh)(struct target_ctx *t, char **nodes, struct err *e);

	/* Worker: 1 if @r may start now (capacity, GPUs), else 0. */
	int (*can_start)(struct target_ctx *t, struct run_ctx *r);
	/* Worker: hand @r to the engine.  Sets r->started, r->obj.backend_id
	 * and reports state through ws_run_transition. */
	int (*start)(struct target_ctx *t, struct run_ctx *r, struct err *e);
	/* Worker, optional: as ->start, but the engine itself holds @r
	 * until the runs @deps (every run of r->after not ended yet, each
	 * started on this target) end as they must, and drops it when one
	 * cannot (the worker cancels it then, with the sentence of `after`).
	 * Returns 1 when the engine cannot hold these (one has no engine id
	 * yet): nothing done, the worker waits for them itself. */
	int (*start_after)(struct target_ctx *t, struct run_ctx *r,
			   const struct run_dep *deps, int n, struct err *e);
	/* What holds a run started by ->start_after, for its `error`:
	 * "waiting for prep (<after_by>)". */
	const char *after_by;
	/* Worker: called every tick for the target's started runs (the driver
	 * decides when an engine round-trip is due).  Reports transitions. */
	void (*poll)(struct target_ctx *t, struct run_ctx **runs, int n);
	/* Worker: stop @r (TERM, then KILL after the grace period: the driver
	 * is called again each tick while r->obj.cancel is set). */
	int (*cancel)(struct target_ctx *t, struct run_ctx *r, struct err *e);
	/* Worker, at start-up: re-attach to a run the engine had before the
	 * daemon stopped.  0, or -ENOENT if it never reached the engine. */
	int (*adopt)(struct target_ctx *t, struct run_ctx *r, struct err *e);
	/* Worker: forget driver state of a run that left the worker. */
	void (*release_run)(struct target_ctx *t, struct run_ctx *r);
	void (*release)(struct target_ctx *t);

	/* ---- deployments (can_host; see struct replica) ---- */
	/* Pure, inside the write of `deploy`: can @s be served (e.g. is its
	 * fixed port free)?  0 or -errno (EADDRINUSE …) + sentence. */
	int (*check_deploy)(const struct kv_list *config,
			    const struct deploy_spec *s, struct err *e);
	/* Worker: start replica @r of generation @s and return at once.
	 * Picks a free port first when s->port is 0.  Sets r->pid. */
	int (*replica_start)(struct target_ctx *t, struct deploy_ctx *d,
			     struct deploy_spec *s, struct replica *r,
			     struct err *e);
	/* Worker, every tick, cheap: REP_STARTING, REP_READY (it listens on
	 * s->port) or REP_EXITED (r->exit_code, the reason in @e). */
	int (*replica_poll)(struct target_ctx *t, struct deploy_ctx *d,
			    const struct deploy_spec *s, struct replica *r,
			    struct err *e);
	/* Worker: TERM (@force 0: the server drains) or KILL (@force 1). */
	void (*replica_stop)(struct target_ctx *t, struct deploy_ctx *d,
			     struct replica *r, int force);
	/* Worker, at start-up: the replicas of @d the engine still runs,
	 * each a calloc'd struct replica (gen, slot, pid, priv) pushed on
	 * *@list.  Returns how many, or -errno. */
	int (*replica_adopt)(struct target_ctx *t, struct deploy_ctx *d,
			     struct replica **list);
	/* Worker, cheap: the requests replica @r is serving (in flight), as
	 * the replica last told it (mlfs-serve's MLFS_STATS_FILE), or -1
	 * when unknown (a user's own server, not told yet).  May be NULL. */
	int (*replica_load)(struct target_ctx *t, struct deploy_ctx *d,
			    struct replica *r);
	/* Worker: forget an exited replica (reap it, drop its files). */
	void (*replica_release)(struct target_ctx *t, struct deploy_ctx *d,
				struct replica *r);
	/* Worker: GET / of the service, short timeout.  0 or -errno +
	 * sentence. */
	int (*health)(struct target_ctx *t, struct deploy_ctx *d,
		      const struct deploy_spec *s, struct err *e);
	/* Worker: the host name clients reach @s at, for scoring_uri (NULL:
	 * s->host, or this machine's name when that is 0.0.0.0 or ::). */
	void (*service_host)(struct target_ctx *t, const struct deploy_spec *s,
			     char *buf, size_t n);
	/* Worker: the address (an IP literal) at which an endpoint's proxy
	 * here reaches the replicas' direct ports, "" when it must not
	 * (NULL: 127.0.0.1, where a replica on this machine has its own).
	 * May resolve a name: asked once a generation. */
	void (*direct_host)(struct target_ctx *t, const struct deploy_spec *s,
			    char *buf, size_t n);
	/* Worker: nothing of @d runs any more (Draft after delete, or
	 * Failed): drop what the engine keeps for it (may be NULL). */
	void (*undeploy)(struct target_ctx *t, struct deploy_ctx *d);
};

/*
 * Deployments.  The workspace (backend/deploy_sm.c) runs the state machine:
 * generations, rolling updates, restarts with backoff, health; a driver
 * only starts, watches and stops single replicas (server processes that
 * share one port with SO_REUSEPORT).
 */

/* What one generation of a deployment serves, fixed when `deploy` or
 * `restart` is taken; kept in <dir>/gen/<gen>/spec. */
struct deploy_spec {
	int gen;			/* 1, 2, …; 0: none */
	int64_t version_id;		/* the model version's object id */
	char model[2 * MLFS_NAME_MAX + 2];	/* NAME:VERSION */
	char code[PATH_MAX];		/* snapshot of the user's files: cwd */
	char model_dir[PATH_MAX];	/* AZUREML_MODEL_DIR */
	char entry[256];		/* the entry script, relative */
	char command[1024];		/* a server of the user's, or "" */
	char image[128];		/* its environment's image id, "" none:
					 * the replicas run in that image */
	char host[64];
	int port;			/* 0 until picked */
	int replicas;			/* autoscaled: the count now */
	int ready_timeout;		/* seconds a replica may take to listen */
	long max_body;			/* bytes of a request body (mlfs-serve) */
	int read_timeout;		/* seconds for a head, a body's pauses */
	int raw;			/* enum deploy_raw: run()'s argument */
	struct deploy_scale {		/* autoscale; max 0: off */
		int min, max;		/* replicas */
		int target;		/* requests in flight per replica */
		int out_cooldown;	/* s after a change before scaling out */
		int in_cooldown;	/* s of lower load before scaling in */
	} scale;
};

/* config `raw`: what mlfs-serve gives run() (see mlfs-serve.py). */
enum deploy_raw {
	RAW_NO,				/* text (bytes when not UTF-8) */
	RAW_YES,			/* the body as bytes */
	RAW_REQUEST,			/* the request: method, headers … */
	RAW_COUNT
};

/* "no", "yes" or "request": mlfs-serve's --raw. */
const char *deploy_raw_name(int raw);

/*
 * deploy_gen_env - the `env` lines generation @gen of @d was deployed
 * with (a copy of the setting taken at `deploy`, kept 0600 beside its
 * spec; none for a generation made before env existed).  Worker only.
 * 0 (@out filled, kv_free it) or -errno.
 */
int deploy_gen_env(const struct deploy_ctx *d, int gen,
		   struct kv_list *out);

enum replica_state {
	REP_STARTING = 1,		/* spawned, not listening yet */
	REP_READY,			/* listening */
	REP_STOPPING,			/* TERM sent */
	REP_EXITED,			/* gone: release it */
	REP_WAITING,			/* crashed: restart at restart_at */
};

struct replica {
	int gen, slot;
	int state;			/* enum replica_state */
	long pid;			/* the engine's pid (local or remote) */
	int direct_port;		/* its own port on 127.0.0.1 serving the
					 * whole service (checked), 0: none */
	int exit_code;			/* -1: unknown */
	int restarts;			/* crashes of this slot in a row */
	int killed;			/* KILL sent after the grace */
	int term_due;			/* stopping, its TERM held while an
					 * endpoint's proxy still sends to it */
	double started, ready, stop_sent, restart_at;
	void *priv;			/* the driver's */
	struct replica *next;
};

struct deploy_ctx {
	struct ws *ws;
	struct obj obj;			/* the deployment's row, kept current */
	struct target_ctx *t;
	char dir[PATH_MAX];		/* <state>/objects/<id> */
	char key[160];			/* the bearer key */
	struct deploy_spec serving;	/* the generation serving (gen 0: none) */
	struct deploy_spec coming;	/* the one being rolled out (0: none) */
	int last_gen;			/* highest generation number used */
	int verb;			/* the request being carried out, 0 none */
	long req_done;			/* serial of the last request taken */
	double verb_at;			/* when it was taken */
	struct replica *reps;
	double next_health;
	int health_fails;
	int64_t log_size;
	double scaled_at;		/* last autoscale change (wall) */
	double low_since;		/* load under the count since, 0: not */
	char direct_host[64];		/* drv->direct_host's answer ... */
	int direct_gen;			/* ... for this generation */
	double direct_at;		/* and when ("": asked again later) */
	int watch;			/* inotify watch on dir, -1 if none */
	void *priv;			/* the driver's */
	struct deploy_ctx *next;
};

/* <dir>/… of a deployment */
#define DEP_GEN		"gen"		/* gen/<n>/spec, gen/<n>/code/ */
#define DEP_REPLICAS	"replicas"	/* the drivers' replica records */

const struct driver *driver_find(const char *type);
/* Comma-separated list of known types, for error sentences. */
const char *driver_types(void);

extern const struct driver local_driver;
extern const struct driver slurm_driver;
extern const struct driver ssh_driver;
extern const struct driver cluster_driver;

/* backend/env_podman.c: podman, for builds and for runs in environments */
#define ENV_NO_PODMAN	"podman is not installed (apt-get install podman" \
			" runc catatonit uidmap)"

/* The absolute path of podman into @buf, or -ENOENT. */
int env_podman(char *buf, size_t sz);

#endif
