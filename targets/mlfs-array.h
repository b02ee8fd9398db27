/* SPDX-License-Identifier: MIT */
/*
 * The launcher of an array run (resources `array = SPEC`, local target),
 * part of mlfs-run: libc only.
 */
#ifndef MLFS_ARRAY_LAUNCH_H
#define MLFS_ARRAY_LAUNCH_H

/* Sets up and execs the command in a task's process; never returns. */
typedef void (*array_exec_fn)(void *ctx);

struct array_opts {
	const char *rundir;	/* RUNDIR: tasks/ is made there */
	const char *spec;	/* lib/array.h */
	int max;		/* tasks at once (>= 1) */
	long limit;		/* seconds a task may run, 0: no limit */
	long grace;		/* seconds between TERM and KILL */
	/* called in the launcher once a task has ended and its exit code
	 * and status are written (NULL: nothing to do): a task in a
	 * container removes what a killed podman left */
	void (*ended)(void *ctx, int idx, int status);
	void *ended_ctx;
};

/*
 * array_main - run the tasks of @o and exit with the run's code.  Called
 * in mlfs-run's child, still root (a task drops to the run's user in
 * @run), the leader of the process group the daemon signals on cancel;
 * stdout is the run's log.  It makes RUNDIR/tasks/I/{status,exit_code,log}
 * for every index I first (Queued), starts at most o->max tasks at once,
 * each `@run(@ctx)` in a process group of its own with MLFS_ARRAY_INDEX
 * and MLFS_ARRAY_COUNT set and stdout + stderr on tasks/I/log, writes
 * "mlfs: task I started" and "mlfs: task I ended (exit N)" to the run's
 * log, a task's exit code and then its status when it ends, and stops a
 * task that runs past o->limit (TERM, KILL after o->grace).  A TERM to it
 * (cancel) ends the running tasks the same way and starts no more; the
 * ones never started become Canceled.  Its exit code: 0 when every task
 * exited 0, else the code of the first task to fail, 143 when canceled.  Never returns.
 */
void array_main(const struct array_opts *o, array_exec_fn run, void *ctx);

#endif
