// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: every reader of slurmrestd answers (targets/slurm_api.c)
 * on the same input.  Invariants: no crash, strings NUL-terminated within
 * their fields, mapped states are one of mlfs's words.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slurm_api.h"

static void check_state(const struct slurm_job *j)
{
	static const enum obj_state ok[] = { RS_QUEUED, RS_STARTING,
					     RS_RUNNING, RS_COMPLETED,
					     RS_FAILED, RS_CANCELED };
	enum obj_state s;
	char why[256];

	if (memchr(j->state, '\0', sizeof(j->state)) == NULL)
		abort();
	s = slurm_api_run_state(j, why, sizeof(why));
	if (s == STATE_NONE)
		return;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (s == ok[i])
			return;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slurm_job *jobs = NULL;
	struct slurm_node *nodes = NULL;
	char err[256], nl[256], *json;
	unsigned long id;
	size_t n = 0;
	int num;

	json = malloc(size + 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	if (!slurm_api_parse_jobs(json, &jobs, &n, err, sizeof(err)))
		for (size_t i = 0; i < n; i++)
			check_state(&jobs[i]);
	free(jobs);
	n = 0;
	if (!slurm_api_parse_nodes(json, &nodes, &n, err, sizeof(err)))
		for (size_t i = 0; i < n; i++)
			if (!memchr(nodes[i].name, '\0', sizeof(nodes[i].name)))
				abort();
	free(nodes);
	slurm_api_parse_submit(json, &id, err, sizeof(err));
	slurm_api_parse_error(json, &num, err, sizeof(err));
	slurm_api_partition(json, "debug", nl, sizeof(nl), err, sizeof(err));
	slurm_api_discover(json, err, sizeof(err));
	slurm_api_gres_gpus(json);
	free(json);
	return 0;
}
