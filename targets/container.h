/* SPDX-License-Identifier: MIT */
/*
 * container.h — the `podman run` of a run in an environment, the same on
 * every target that runs one (local_image.c on this machine, ssh_image.c
 * on an ssh host): the words of its command line and the lines of its
 * --env-file.  Pure: the caller says where each word goes (a NUL-separated
 * file for mlfs-run, a quoted sh line for the host), and which paths.
 */
#ifndef MLFS_CONTAINER_H
#define MLFS_CONTAINER_H

#include <stddef.h>
#include <stdio.h>

#include "../backend/parse.h"

#define CT_ULIMIT_MAX	32768	/* as builds: below the hard limits */

/* What differs between the machines a container runs on. */
struct ct_spec {
	const char *podman;		/* its absolute path */
	int quiet;			/* --log-level=error: no warnings */
	const char *name;		/* --name, mlfs-<state hash>-<id> */
	unsigned uid, gid;		/* --user: who runs the command */
	int keep_id;			/* rootless podman: keep-id */
	const char *network;		/* --network, NULL: podman's own */
	unsigned long nofile, nproc;	/* --ulimit, soft = hard */
	long pids;			/* --pids-limit */
	unsigned long long memory_mib;	/* --memory, 0: none */
	long cpu_milli;			/* --cpus, 0: none */
	const char *work;		/* mounted at /work, the working dir */
	const char *metrics, *params;	/* /mlfs/metrics.raw, params.raw */
	const char *lib;		/* mlfs.py's folder, /mlfs/lib (ro) */
	const char *env_file;		/* --env-file (ct_env's lines) */
	const char *image;		/* the image id */
	const char *command;		/* run by /bin/sh -c */
};

/* ct_name - the container's name for the run @id of the workspace whose
 * state folder is @state: mlfs-<hash of @state>-<id>. */
void ct_name(const char *state, long long id, char *buf, size_t sz);

/* ct_limit - @hard (a hard rlimit, 0 or RLIM_INFINITY: unknown) capped to
 * CT_ULIMIT_MAX: runc cannot raise a limit above the hard one. */
unsigned long ct_limit(unsigned long long hard);

/*
 * ct_args - call @word(@ctx, WORD) for each word of the command line:
 * podman run --rm --name … --runtime=runc --init, then who the command
 * runs as (never with a capability or new privileges), its limits, the
 * mounts, the env file, the image, /bin/sh -c COMMAND.
 */
void ct_args(const struct ct_spec *c, void (*word)(void *ctx, const char *w),
	     void *ctx);

/*
 * ct_env - the KEY=VALUE lines of the env file into @f: mlfs's (HOME,
 * LANG, MLFS_RUN @run, MLFS_OUTPUTS, MLFS_METRICS, MLFS_PARAMS, and
 * CUDA_VISIBLE_DEVICES @gpus unless NULL or empty), then the run's env
 * lines @env (theirs win), PYTHONPATH last with /mlfs/lib after theirs.
 * podman reads the file as data: no value reaches a shell or a command
 * line.
 */
void ct_env(FILE *f, const char *run, const char *gpus,
	    const struct kv_list *env);

/*
 * ct_failure - podman's own failure (it exits 125) in @text, the end of
 * a run's log: its last "Error: " line as one sentence into @why, with
 * the package to install when the message names a missing program.
 * Returns 1, or 0 when @text holds no such line (@why untouched).
 */
int ct_failure(const char *text, size_t len, char *why, size_t n);

/* ct_run_failure - ct_failure on the last 4 KiB of the log in the run's
 * folder @dir (a run in an environment whose podman exited 125). */
int ct_run_failure(const char *dir, char *why, size_t n);

#endif
