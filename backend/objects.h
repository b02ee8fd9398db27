/* SPDX-License-Identifier: MIT */
/*
 * The object model: targets, runs, deployments, models and model versions,
 * as rows of the store, and the control files each kind shows.
 */
#ifndef MLFS_OBJECTS_H
#define MLFS_OBJECTS_H

#include <stdint.h>
#include <sys/types.h>

#include "deploy_row.h"
#include "parse.h"

enum obj_kind {
	K_NONE = 0,
	K_TARGET = 1,
	K_RUN = 2,
	K_DEPLOYMENT = 3,
	K_MODEL = 4,
	K_VERSION = 5,		/* models/<name>/<version>, parent = the model */
	K_COUNT
};

/*
 * Control files.  One numbering for all kinds (an object's inode number is
 * derived from its id and this index, see fs/node.h); each kind shows a
 * subset, listed in ws.c's file tables.  F_DIR is the object folder itself.
 */
enum ctl_file {
	F_DIR = 0,
	F_TYPE, F_CONFIG, F_CTL, F_STATUS, F_ERROR, F_NODES, F_INFO,
	F_COMMAND, F_TARGET, F_ENV, F_RESOURCES, F_EXIT_CODE, F_LOG,
	F_METRICS, F_OUTPUTS, F_MODEL, F_SCORING_URI, F_KEY,
	F_COUNT
};

#define FBIT(f)		(1u << (f))

/*
 * Texts of an object kept in the store beyond its control files (whose
 * texts are numbered by enum ctl_file).  The numbers are stored in the
 * database: never renumber.
 */
enum obj_text {
	TEXT_APPLIED_CONFIG = 40,	/* a target's config as provisioned */
	TEXT_VERSION_SOURCE = 41,	/* a version's source (kv: run, run_id,
					 * path) */
	TEXT_DEPLOY_REQ = 42,		/* a deployment's last request */
};

/* Run states, as shown in `status`. */
#define RS_DRAFT	"Draft"
#define RS_QUEUED	"Queued"
#define RS_STARTING	"Starting"
#define RS_RUNNING	"Running"
#define RS_COMPLETED	"Completed"
#define RS_FAILED	"Failed"
#define RS_CANCELED	"Canceled"

/* Target states. */
#define TS_DRAFT	"Draft"
#define TS_CREATING	"Creating"
#define TS_SUCCEEDED	"Succeeded"
#define TS_UPDATING	"Updating"
#define TS_DELETING	"Deleting"
#define TS_FAILED	"Failed"

/* Deployment states. */
#define DS_DRAFT	"Draft"
#define DS_TRANSITIONING "Transitioning"
#define DS_HEALTHY	"Healthy"
#define DS_UNHEALTHY	"Unhealthy"
#define DS_FAILED	"Failed"

#define STATE_MAX	16
#define ID_TEXT_MAX	128

/*
 * One object, as copied out of the store.  Plain data: the copy belongs to
 * whoever fetched it and is never shared between threads.
 */
struct obj {
	int64_t id;
	int kind;
	int64_t parent;			/* model id for versions, else 0 */
	char name[MLFS_NAME_MAX + 1];
	char state[STATE_MAX];
	char error[ERR_MSG_MAX];
	uint32_t uid, gid;
	uint32_t mode;			/* the folder's permission bits */
	double created, changed;	/* unix time, seconds */

	/* runs */
	int64_t target_id;		/* resolved at submit */
	int64_t seq;			/* FIFO order among queued runs */
	int exit_code;			/* -1 while none */
	double queued, started, ended;
	int cancel;			/* 1: cancel requested */
	char backend_id[ID_TEXT_MAX];	/* pid, Slurm job id, remote pid */
	char node[ID_TEXT_MAX];		/* where it ran */
	char gpus[ID_TEXT_MAX];		/* CUDA_VISIBLE_DEVICES given */

	/* targets */
	char type[32];
	/* driver's private persistent state (small text), e.g. offsets */
	char ddata[1024];

	/* deployments: their own tables (deploy_row.h) */
	struct dep_row dep;
};

static inline int run_state_final(const char *s)
{
	return s[0] == 'C' ? (s[1] == 'o' || s[1] == 'a') : s[0] == 'F';
}

static inline int run_state_active(const char *s)
{
	/* Queued, Starting, Running */
	return (s[0] == 'Q' || s[0] == 'S' || s[0] == 'R');
}

#endif
