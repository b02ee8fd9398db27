/* SPDX-License-Identifier: MIT */
/*
 * slurm_api.h — the slurmrestd JSON layer of the slurm driver: builds request
 * bodies and parses answers.  Pure: no I/O, no globals, no allocation kept
 * between calls.  Every parser accepts any input (malformed, wrong types,
 * huge numbers) without crashing and explains a refusal in one sentence.
 *
 * What differs between slurmrestd API versions lives in one table in
 * slurm_api.c; callers hold a `const struct slurm_api *` from it.
 */
#ifndef MLFS_SLURM_API_H
#define MLFS_SLURM_API_H

#include <stdbool.h>
#include <stddef.h>

#include "../backend/objects.h"

/* One supported slurmrestd API version (an entry of the table). */
struct slurm_api {
	const char *name;	/* "v0.0.38" */
	const char *prefix;	/* "/slurm/v0.0.38": prepend to "/ping", "/jobs"… */
	bool env_as_list;	/* submit: environment ["K=V"] (else {"K": "V"}) */
	const char *gres_key;	/* submit: key for GPUs per node */
	const char *gres_prefix; /* submit: its value is this + the count */
};

/* slurm_api_find() - the table entry named @version ("v0.0.38"), or NULL. */
const struct slurm_api *slurm_api_find(const char *version);

/*
 * slurm_api_newest() - the newest table entry among @versions (names such as
 * "v0.0.38"; unknown ones are skipped), or NULL when none is known.
 */
const struct slurm_api *slurm_api_newest(const char *const *versions,
					 size_t n);

/*
 * slurm_api_discover() - picks the version to speak from the answer to
 * slurmrestd's `GET /openapi` (the OpenAPI document of every loaded plugin:
 * its "paths" keys look like "/slurm/v0.0.38/ping").  Returns the newest
 * known version offered, or NULL with a sentence in @err (not JSON, no
 * paths, or only versions this build does not know — which are named).
 */
const struct slurm_api *slurm_api_discover(const char *openapi_json,
					   char *err, size_t errlen);

/* What a run asks of Slurm.  Zero / NULL fields are left to Slurm. */
struct slurm_job_spec {
	const char *name;
	const char *partition;
	const char *cwd;		/* required: else slurmrestd's own cwd */
	const char *stdout_path;	/* Slurm patterns like %j allowed */
	const char *stderr_path;	/* NULL: stderr goes with stdout */
	const char *const *env;		/* KEY=VALUE strings, all the job gets */
	size_t env_count;
	unsigned nodes;
	unsigned cpus_per_task;
	unsigned tasks_per_node;	/* 0: Slurm's default, one */
	unsigned gpus_per_node;		/* -> gres "gpu:N" */
	unsigned long long memory_mib;	/* per node */
	unsigned time_limit_min;
	const char *dependency;		/* "afterok:12:13,afterany:14" */
	const char *array;		/* "0-99%8": a job array (lib/array.h) */
	const char *script;		/* required; "#!/bin/bash\n" prepended if it has no #! */
};

/*
 * slurm_api_submit_body() - the JSON body for POST {prefix}/job/submit.
 * The job's environment is exactly @spec->env plus PATH=/usr/local/bin:
 * /usr/bin:/bin when @spec->env has no PATH (slurmrestd requires a non-empty
 * environment and passes nothing of its own).
 * Returns a malloc'd string, or NULL with a sentence in @err (no script, no
 * cwd, an env entry without '=', out of memory).
 */
char *slurm_api_submit_body(const struct slurm_api *api,
			    const struct slurm_job_spec *spec,
			    char *err, size_t errlen);

/*
 * slurm_api_parse_error() - the first entry of an answer's "errors" array.
 * Returns 0 with the Slurm error number in @number (error_number, or
 * error_code in submit answers; 0 if absent) and a sentence in @msg;
 * -ENOENT when the answer carries no error; -EBADMSG when it is not a JSON
 * object (then @msg says so).
 */
int slurm_api_parse_error(const char *json, int *number, char *msg,
			  size_t msglen);

#define SLURM_ERR_INVALID_JOB_ID 2017	/* unknown or purged job */

/*
 * slurm_api_parse_submit() - the answer to POST job/submit.
 * Returns 0 with the new job's id in @job_id — even when "errors" is not
 * empty, since Slurm can queue a job and complain at once (then @err holds
 * that complaint, else it is empty); -EIO with Slurm's sentence when no job
 * was created; -EBADMSG when the answer is not JSON or lacks both.
 */
int slurm_api_parse_submit(const char *json, unsigned long *job_id,
			   char *err, size_t errlen);

/* One job of a jobs answer. */
struct slurm_job {
	unsigned long job_id;
	char state[32];		/* Slurm's job_state, e.g. "RUNNING" */
	int exit_code;		/* exited: its code; signaled: 128+sig; -1 unknown */
	char reason[64];	/* Slurm's state_reason, e.g. "NonZeroExitCode" */
	char nodes[256];	/* node list expression, "" while pending */
	/* a job array: each task has a record of its own, and one record
	 * (task -1, job_id == array_job_id) stands for the tasks not yet
	 * started, until the last of them starts */
	unsigned long array_job_id;	/* 0: not an array's */
	long array_task_id;		/* -1: none */
};

/*
 * slurm_api_parse_jobs() - the answer to GET jobs or GET job/{id}.
 * Returns 0 with a malloc'd array (free() it; NULL when @n is 0); entries
 * without a usable job_id are skipped.  Returns -ENOENT with Slurm's sentence
 * when the answer has no jobs and error 2017 (unknown or purged job), -EIO
 * with the sentence for another error, -EBADMSG when it is not a jobs answer.
 */
int slurm_api_parse_jobs(const char *json, struct slurm_job **jobs, size_t *n,
			 char *err, size_t errlen);

/* slurm_api_exit_code() - decodes a raw wait status: as in struct slurm_job. */
int slurm_api_exit_code(long long wait_status);

/*
 * slurm_api_run_state() - the mlfs run state for @job: RS_QUEUED,
 * RS_STARTING, RS_RUNNING, RS_COMPLETED, RS_FAILED or RS_CANCELED.  For
 * RS_FAILED, @why gets a sentence ("the job reached its time limit");
 * otherwise @why is "".  Returns STATE_NONE for a state mlfs does not map
 * (the caller keeps its state).
 */
enum obj_state slurm_api_run_state(const struct slurm_job *job, char *why,
				   size_t whylen);

/* One node of a nodes answer. */
struct slurm_node {
	char name[64];
	char state[64];		/* lower case, flags joined by '+': "idle+drain" */
	unsigned cpus;
	unsigned long long memory_mib;	/* real_memory */
	unsigned gpus;		/* summed from gres "gpu:N" / "gpu:type:N" */
	char partitions[256];	/* comma-separated */
	char reason[256];	/* why it is down or drained, or "" */
};

/*
 * slurm_api_parse_nodes() - the answer to GET nodes.  Same returns as
 * slurm_api_parse_jobs() (entries without a name are skipped; no -ENOENT).
 */
int slurm_api_parse_nodes(const char *json, struct slurm_node **nodes,
			  size_t *n, char *err, size_t errlen);

/* slurm_api_gres_gpus() - GPUs in a gres string ("gpu:a100:2(S:0),mps:100" → 2). */
unsigned slurm_api_gres_gpus(const char *gres);

/* slurm_api_node_in() - does @node belong to partition @partition? */
bool slurm_api_node_in(const struct slurm_node *node, const char *partition);

/*
 * slurm_api_partition() - does partition @name exist in the answer to GET
 * partitions?  Returns 0 and copies its node list expression ("node[1-2]")
 * into @nodes; -ENOENT with "no partition NAME in this cluster (it has A,
 * B)"; -EBADMSG / -EIO as slurm_api_parse_jobs().  Which nodes exactly: filter
 * slurm_api_parse_nodes() with slurm_api_node_in().
 */
int slurm_api_partition(const char *json, const char *name, char *nodes,
			size_t nodeslen, char *err, size_t errlen);

#endif /* MLFS_SLURM_API_H */
