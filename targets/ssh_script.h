/* SPDX-License-Identifier: MIT */
/*
 * ssh_script.h — the POSIX sh scripts the SSH driver runs on a host, and
 * the parser of what the poll script prints.  Pure: no I/O.  Every value
 * that reaches a script is quoted with sh_quote()/sh_quote_path().
 *
 * A run's folder on the host, D = WORKDIR/RID:
 *   work/      the working copy (the run's files; outputs/ inside)
 *   log        stdout + stderr of the command
 *   metrics    $MLFS_METRICS
 *   params     $MLFS_PARAMS
 *   py/        mlfs.py, on PYTHONPATH after the run's own (import mlfs)
 *   launched   made just before the command is started: never start twice
 *   boot pid   boot id; "PID STARTTIME" of the wrapper (= pgid = session)
 *   exit       the exit code, written by the wrapper when the command ends
 * and, for an array run (resources `array`), written by its launcher:
 *   tasks/I/   log, exit (the task's code), pid ("PID STARTTIME" = pgid)
 *   tasks.ev   "s I" when task I starts, "e I CODE LOGSIZE STATUS" when it
 *              ends (STATUS Completed, Failed or Canceled): only grows
 *   ct.env ct.name ct.podman
 *              a run in an environment: its container's env file, name
 *              and the podman that runs it (ssh_launch)
 * The command runs detached (setsid) under a small sh wrapper: it survives
 * the ssh connection and the mlfs daemon.
 *
 * Each builder returns a malloc'd script, or NULL on ENOMEM.
 */
#ifndef MLFS_SSH_SCRIPT_H
#define MLFS_SSH_SCRIPT_H

#include <stddef.h>

/*
 * Provision: create @workdir, print "workdir ABS", "host NAME", "os OS",
 * "cpus N", "memory BYTES", "gpus N" (+ one "gpu …" line each),
 * "rsync 0|1", "setsid 0|1".
 */
char *ssh_script_detect(const char *workdir);

/* Before the upload: make @dir; print "launched" when the run was started
 * there before (adopt it), else remove an old work/ and print "fresh". */
char *ssh_script_create(const char *dir);

struct ssh_launch {
	const char *dir;		/* WORKDIR/RID */
	const char *name;		/* MLFS_RUN */
	const char *command;
	const char *gpus;		/* CUDA_VISIBLE_DEVICES, NULL: leave */
	const char *const *env;		/* KEY, VALUE, KEY, VALUE …, NULL */
	int procs;			/* procs_per_node; 0 or 1: one */
	const char *const *inputs;	/* "MLFS_INPUT_NAME", PATH … NULL */
	const char *pylib;		/* mlfs.py's text for D/py, or NULL */
	const char *array;		/* SPEC of lib/array.h without %M (only
					 * 0-9 , - :), or NULL: no array */
	int array_max;			/* tasks at once (>= 1) */
	long task_limit;		/* s a task may run, 0: no limit */
	long task_grace;		/* s between a task's TERM and KILL */
	/* A run in an environment (else all NULL): the sh line run in
	 * place of @command (podman run …, see ssh_image.h), the text of
	 * its --env-file (D/ct.env, 0600: the env lines go there, @env is
	 * NULL), the container's name (D/ct.name) and podman (D/ct.podman),
	 * which cancel uses.  D/metrics, D/params and D/py are made: they
	 * are mounted in. */
	const char *ct_cmd;
	const char *ct_env;
	const char *ct_name;
	const char *ct_podman;
};

/* Start the command detached unless @dir was launched before; print
 * "started PID" or "launched" (already); exit 1 when it does not start.
 * With l->array, a launcher in POSIX sh runs the command once per index,
 * at most l->array_max at once, each in a session of its own with
 * MLFS_ARRAY_INDEX and MLFS_ARRAY_COUNT, its output on tasks/I/log; it
 * stops a task past l->task_limit (TERM, KILL l->task_grace s later), and
 * on TERM stops them all and starts no more (exit 143); else it exits 0
 * when every task did, or the code of the first to fail.  NULL (EINVAL)
 * for an array spec with other characters. */
char *ssh_script_launch(const struct ssh_launch *l);

/* The launcher of procs_per_node = @n in POSIX sh (run as `sh -c TEXT
 * mlfs-ranks COMMAND`), malloc'd or NULL: its rank files in .. (the
 * run's folder, from work/), or with @in_container in /dev/shm. */
char *ssh_script_ranks(int n, int in_container);

/* A task of an array whose log the poll reads. */
struct ssh_task_ask {
	int idx;
	long long off, max;		/* bytes of its log here, cap */
};

struct ssh_poll_item {
	const char *dir;
	long long log_off, log_max;	/* bytes of log already here, cap */
	long long met_off, met_max;	/* same for metrics */
	long long par_off, par_max;	/* same for params */
	int array;			/* an array run: read tasks.ev, … */
	long long ev_off, ev_max;	/* … from here, at most this */
	const struct ssh_task_ask *tasks;	/* … and these tasks' logs */
	int ntasks;
};

/*
 * One round trip for @n runs: for each, in order,
 *   "@@mlfs I STATUS\n" "N SIZE\n" N bytes of log "N SIZE\n" N bytes of metrics
 *   "N SIZE\n" N bytes of params
 * and for an array run "+ev N SIZE\n" N bytes of tasks.ev, then for each
 * task asked "+t IDX N SIZE\n" N bytes of its log.
 * STATUS: nodir | fresh | starting | running PID | exited CODE | lost.
 */
char *ssh_script_poll(const struct ssh_poll_item *items, int n);

/* Send @sig ("TERM", "KILL") to the run's process group if it is alive,
 * to the session of each live task of an array run (tasks/I/pid), and to
 * its container (D/ct.name) if it has one: a podman client killed would
 * leave the container running; KILL also removes it. */
char *ssh_script_signal(const char *dir, const char *sig);

/* Remove the folders @rids (NULL-terminated) under @workdir. */
char *ssh_script_remove(const char *workdir, const char *const *rids);

/*
 * Deployments.  One generation of a deployment on the host,
 * G = WORKDIR/deploy-ID-TAG/gGEN:
 *   code/ model/ serve/   the code snapshot, the model version's files,
 *                         mlfs-serve.py, the bearer key and env (0600):
 *                         copied
 *   staged model.id       written by the first launch: the copies are
 *                         complete; which model version model/ holds
 *   R = rSLOT-RND/        one replica:
 *     boot pid            boot id; "PID STARTTIME" of its wrapper (= pgid)
 *     spid                "PID STARTTIME" of the server (the wrapper's child)
 *     log err exit        stdout + stderr; a one-line start failure
 *                         ($MLFS_ERROR_FILE); the server's exit status
 *     stats               "in_flight N" ($MLFS_STATS_FILE, mlfs-serve)
 * The server runs detached (setsid) under a sh wrapper that reads the key
 * from serve/key into its environment and sources serve/env (the
 * deployment's env lines as `export KEY='VALUE'`, 0600, absent in
 * generations staged before env existed): on no command line.
 *
 * A generation in an environment has serve/ct.env instead of serve/env
 * (the container's KEY=VALUE lines, the key among them, 0600: podman's
 * --env-file), and each replica's server is `podman run` of mlfs-serve
 * in the image, attached, under a small sh that removes the container
 * once podman returns (a podman killed leaves it), before the wrapper
 * records the exit.  R also holds
 *     ct.name ct.podman    the container's name; podman's path
 *     ct                   the container's init pid (podman --pidfile)
 *     ct.user              "UID GID" the server runs as, when not the
 *                          login (a root login): R/in is theirs
 *     in/                  mounted at /mlfs/rep: err and stats
 * Readiness and the liveness probe look at the processes of the init's
 * session; signals go to the init (--init passes TERM on: a drain; KILL
 * ends the container); the poll reads in/err and in/stats with the
 * rights of who runs inside (setpriv) and never through a link there
 * (dd iflag=nofollow).  Removing a folder (the trash) removes its containers first.
 */

/* Before the copies: make @gen_dir; print "staged" when it is complete,
 * else empty it and print "fresh", after "model" when the model/ of a
 * complete sibling generation holding @model_id was copied in on the host
 * (then the model need not be sent again). */
char *ssh_script_dep_stage(const char *gen_dir, const char *model_id);

struct ssh_dep_launch {
	const char *gen_dir;		/* G */
	const char *rep;		/* R's name, made here (must not exist) */
	int mark;			/* write staged and model.id first */
	const char *model_id;
	int port;			/* 0: pick a free one on the host */
	int check_port;			/* print "busy" if something listens */
	unsigned int seed;		/* where the pick starts */
	const char *command;		/* the user's server, or NULL: */
	const char *entry;		/*   mlfs-serve.py --entry ENTRY */
	const char *host;		/* --host, $MLFS_HOST */
	long max_body;			/* --max-body when > 0 */
	int read_timeout;		/* --read-timeout when > 0 */
	const char *raw;		/* --raw, or NULL */
	const char *name;		/* $MLFS_DEPLOYMENT */
	int slot;			/* $MLFS_REPLICA */
	/* in an environment: the server runs in a container of the host's
	 * podman (the image there already), named ct_name; a root login
	 * runs it as ct_uid:ct_gid (the deployment's creator), another
	 * login rootless as itself (--userns=keep-id) */
	const char *image;		/* the image id, or NULL */
	const char *ct_name;		/* the replica's own */
	unsigned ct_uid, ct_gid;
};

/* Start one replica detached; print "started PID STARTTIME PORT" (PID 0
 * when the server exited at once: the poll tells why), "busy PORT", or
 * "fail SENTENCE" when it cannot start (exit 1: R could not be made). */
char *ssh_script_dep_launch(const struct ssh_dep_launch *l);

struct ssh_dep_item {
	const char *dir;		/* G/R */
	long long log_off, log_max;	/* bytes of log already here, cap */
	int listen_port;		/* > 0: say "ready" once R listens */
	const char *sig;		/* "TERM", "KILL" or NULL: send first */
	int live_port;			/* > 0: probe the liveness port of the
					 * server serving on this port */
	int direct_ask;			/* 1: say its direct port ("dP") once
					 * its own server listens there */
};

/*
 * One round trip for @n replicas: send the signals, remove the folders
 * @trash (NULL-terminated; may be NULL), then for each item in order
 *   "@@mlfs I STATUS\n" "N SIZE\n" N bytes of log "N SIZE\n" N bytes of err
 * (as ssh_poll_parse reads it, err in place of metrics, sent once the
 * server is gone).  STATUS: nodir | starting PID (not listening yet, or
 * PID 0: not started yet) | ready PID | running PID (alive; not asked
 * whether it listens: listen_port 0; with live_port, a liveness probe is
 * started and the last one's answer L given: "running PID L", L 1, 0 or -;
 * then fN, the requests in flight it wrote to R/stats, "f-" unknown;
 * a ready or running one asked direct_ask adds dP when R/stats names its
 * direct port P and its own process group listens there)
 * | exited CODE | lost.  Signals go to R's
 * process group while its wrapper or its server (checked by start time
 * and boot) lives, so never to a reused pid.
 */
char *ssh_script_dep_poll(const struct ssh_dep_item *items, int n,
			  const char *const *trash);

/* What the poll printed for one run (or replica). */
struct ssh_poll_reply {
	int index;
	char status[16];		/* nodir fresh starting running exited
					 * lost (runs), ready (replicas) */
	long long arg;			/* PID or exit code, -1 if none */
	const char *log;		/* bytes into the parsed buffer */
	long long log_n, log_size;
	const char *met;		/* metrics (runs), err (replicas) */
	long long met_n, met_size;
	const char *par;		/* params (runs; none: par_size 0) */
	long long par_n, par_size;
	int live;			/* enum ssh_live */
	int in_flight;			/* "running PID … fN": N, else -1 */
	int direct_port;		/* "… dP": P, else 0 */
	const char *ev;			/* an array's tasks.ev (ev_size 0:
					 * none) */
	long long ev_n, ev_size;
	const char *tasks;		/* its "+t" replies (ssh_poll_task) */
	size_t tasks_len;
};

/* One task's log in an array run's reply. */
struct ssh_task_reply {
	int idx;
	const char *log;
	long long log_n, log_size;
};

/* The next "+t" reply at *@pos of r->tasks: 1, 0 at the end, -EINVAL. */
int ssh_poll_task(const struct ssh_poll_reply *r, size_t *pos,
		  struct ssh_task_reply *t);

/* The liveness probe's answer in a replica's reply. */
enum ssh_live {
	SSH_LIVE_NOT_ASKED,			/* no probe this round */
	SSH_LIVE_OK,			/* GET / on its own port answered */
	SSH_LIVE_FAILED,			/* not within 3 s */
	SSH_LIVE_NONE,			/* no liveness port (a user's server) */
};

/*
 * ssh_poll_parse - parse the next reply at *@pos in @buf (@len bytes).
 * Returns 1 and advances *@pos, 0 at the end, -EINVAL when the bytes do
 * not follow the format (the rest is ignored).
 */
int ssh_poll_parse(const char *buf, size_t len, size_t *pos,
		   struct ssh_poll_reply *r);

/* "D" for @workdir and @rid: "WORKDIR/RID" with "~" kept for quoting. */
int ssh_run_dir(const char *workdir, const char *rid, char *out, size_t n);

/* The same path as rsync and tar want it (relative to the home for "~"). */
int ssh_copy_path(const char *workdir, const char *rid, const char *sub,
		  char *out, size_t n);

#endif /* MLFS_SSH_SCRIPT_H */
