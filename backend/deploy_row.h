/* SPDX-License-Identifier: MIT */
/*
 * What the store keeps of a deployment beyond its object row, in its own
 * tables (store.c: `deployments`, one row each, and `replicas`, one row a
 * replica).  It travels inside struct obj (objects.h) so that one copy of
 * the row renders every file of the deployment as it was at that moment
 * (fs/ renders old versions of generated files from old rows).  Written by
 * deploy_ctl.c (model version) and the worker's deploy_sm.c (the rest).
 */
#ifndef MLFS_DEPLOY_ROW_H
#define MLFS_DEPLOY_ROW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DEP_URI_MAX	128
#define DEP_REPS_MAX	48	/* two full generations and their leftovers */

/* One replica as the worker last saved it. */
struct dep_replica {
	int64_t pid;			/* the engine's pid (local or remote) */
	int32_t gen;
	int16_t slot;
	uint8_t state;			/* enum replica_state (driver.h), 0: ? */
	uint8_t restarts;		/* crashes of this slot in a row */
};

struct dep_row {
	int64_t model_version;		/* the model version (object id) */
	char scoring_uri[DEP_URI_MAX];	/* while something serves, else "" */
	int gen;			/* the generation serving, 0: none */
	int last_gen;			/* highest generation number used */
	int port;			/* the port serving (or coming) */
	long req_done;			/* serial of the last request taken */
	int nreps;
	struct dep_replica reps[DEP_REPS_MAX];	/* in the worker's order */
};

/* The name of replica state @state (enum replica_state), as info.json
 * shows it and the store keeps it; NULL for none. */
static inline const char *dep_rep_state_name(int state)
{
	static const char *const names[] = {
		NULL, "starting", "ready", "stopping", "exited", "restarting",
	};

	return state > 0 && state < (int)(sizeof(names) / sizeof(names[0])) ?
	       names[state] : NULL;
}

/* The state named @name (see dep_rep_state_name), 0 when unknown. */
static inline int dep_rep_state_parse(const char *name)
{
	for (int i = 1; dep_rep_state_name(i); i++)
		if (!strcmp(name, dep_rep_state_name(i)))
			return i;
	return 0;
}

#endif
