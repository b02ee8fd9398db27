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

/* An input of the run (its `inputs`): @src, a path of the machine that
 * runs podman, is mounted read-only at /mlfs/inputs/NAME (CT_INPUTS). */
#define CT_INPUTS	"/mlfs/inputs"
#define CT_LIB		"/mlfs/lib"	/* mlfs.py's folder, read-only */

/* The sentence of a run that asks for GPUs where podman has no CDI spec
 * for them (%s: the machine). */
#define CT_NO_CDI	"the run asks for GPUs and %s has no CDI spec for" \
	" nvidia.com/gpu in /etc/cdi or /var/run/cdi, which podman needs to" \
	" pass them into a container (nvidia-ctk cdi generate" \
	" --output=/etc/cdi/nvidia.yaml, from NVIDIA's container toolkit)"

struct ct_input {
	const char *name;		/* [A-Za-z_][A-Za-z0-9_]* */
	const char *src;
};

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
	/* optional (zero: none) */
	const struct ct_input *inputs;	/* --volume=SRC:/mlfs/inputs/NAME:ro */
	int ninputs;
	const char *const *pass_env;	/* --env=NAME each (NULL-ended): the
					 * value from podman's own environment
					 * (an array's MLFS_ARRAY_INDEX, set
					 * per task by its launcher) */
	const char *gpus;		/* the machine's GPU indices "0,2":
					 * --device=nvidia.com/gpu=I (CDI) */
	const char *const *launcher;	/* words in place of /bin/sh -c, given
					 * the command last (procs_per_node) */
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
 * mounts (the inputs read-only), the GPUs, the env file, the image,
 * /bin/sh -c COMMAND (or the launcher's words and COMMAND).
 */
void ct_args(const struct ct_spec *c, void (*word)(void *ctx, const char *w),
	     void *ctx);

/*
 * ct_env - the KEY=VALUE lines of the env file into @f: mlfs's (HOME,
 * LANG, MLFS_RUN @run, MLFS_OUTPUTS, MLFS_METRICS, MLFS_PARAMS, and
 * CUDA_VISIBLE_DEVICES @gpus unless NULL or empty), then the run's env
 * lines @env (theirs win), PYTHONPATH last with /mlfs/lib after theirs.
 * CUDA_VISIBLE_DEVICES is numbered as inside (ct_gpus_inside).
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

/*
 * ct_env_inputs - MLFS_INPUT_NAME=/mlfs/inputs/NAME for each of the @n
 * @inputs into @f, after ct_env's lines (mlfs's win: the path is where
 * podman mounts it).
 */
void ct_env_inputs(FILE *f, const struct ct_input *inputs, int n);

/*
 * ct_gpus_inside - the GPUs @gpus ("2,3") as the container numbers them,
 * into @out ("0,1"): it sees only the devices it was given, from 0, as
 * nvidia-smi there shows them.  "" for an empty list.  Pure.
 */
void ct_gpus_inside(const char *gpus, char *out, size_t sz);

/*
 * ct_cdi_has_gpu - does one of the CDI spec folders @dirs (NULL-ended;
 * podman 4.3 reads /etc/cdi and /var/run/cdi) hold a spec (*.yaml,
 * *.yml, *.json) of the kind nvidia.com/gpu?  1 or 0.  Reads root's
 * files only: the folders are the machine's.
 */
int ct_cdi_has_gpu(const char *const *dirs);

/* An array's task variables, for ct_spec.pass_env. */
extern const char *const ct_array_env[];

/* The folders podman 4.3 reads CDI specs from. */
extern const char *const ct_cdi_dirs[];

#endif
