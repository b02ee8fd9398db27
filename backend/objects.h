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
	K_ENDPOINT = 6,
	K_ENVIRONMENT = 7,	/* environments/<name>: a container image */
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
	F_AFTER, F_WAIT, F_REPLICAS, F_INPUTS,
	F_KEYS, F_TRAFFIC, F_MIRROR, F_STATS, F_ENDPOINT,
	F_PARAMS, F_METRICS_SVG, F_TASKS,
	F_IMAGE, F_ENVIRONMENT,
	F_COUNT
};
_Static_assert(F_COUNT <= 64, "a control file set is one 64-bit word");

/* A set of control files: one bit each (ws_inval, ws_update_obj). */
typedef uint64_t fmask_t;
#define FBIT(f)		((fmask_t)1 << (f))

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
	TEXT_EP_PRIMARY = 43,		/* an endpoint's keys (hex) */
	TEXT_EP_SECONDARY = 44,
	TEXT_RUN_IMAGE = 45,		/* the image id of a run's environment,
					 * fixed at submit */
};

/*
 * Object states: one enum for every kind, as struct obj has one state for
 * every kind and kinds share names (Draft, Failed): one value, one name
 * (state_name, in state.c).  The prefix says which kind shows a state;
 * models, versions and the root are Ready (VS_READY).  The store keeps
 * the names.
 */
enum obj_state {
	STATE_NONE = 0,		/* none: a name the store has, unknown */
	RS_DRAFT,
	RS_QUEUED,
	RS_STARTING,
	RS_RUNNING,
	RS_COMPLETED,
	RS_FAILED,
	RS_CANCELED,
	TS_CREATING,
	TS_SUCCEEDED,
	TS_UPDATING,
	TS_DELETING,
	DS_TRANSITIONING,
	DS_HEALTHY,
	DS_UNHEALTHY,
	VS_READY,
	VS_IN_USE,		/* a deployment serves the version: frozen */
	ES_BUILDING,		/* an environment's image is being made */
	STATE_COUNT,
	/* the names kinds share */
	TS_DRAFT = RS_DRAFT,
	TS_FAILED = RS_FAILED,
	DS_DRAFT = RS_DRAFT,
	DS_FAILED = RS_FAILED,
	ES_DRAFT = RS_DRAFT,
	ES_READY = VS_READY,
	ES_FAILED = RS_FAILED,
};

/* The user-visible name of @s ("Running"), "" for STATE_NONE. */
const char *state_name(enum obj_state s);
/* The state named @name, STATE_NONE when none is. */
enum obj_state state_parse(const char *name);

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
	enum obj_state state;
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

	/* targets; endpoints: what ctl last asked, "start" or "stop" */
	char type[32];
	/* driver's private persistent state (small text), e.g. offsets */
	char ddata[1024];

	/* deployments: their own tables (deploy_row.h) */
	struct dep_row dep;
};

static inline int run_state_final(enum obj_state s)
{
	return s == RS_COMPLETED || s == RS_FAILED || s == RS_CANCELED;
}

static inline int run_state_active(enum obj_state s)
{
	return s == RS_QUEUED || s == RS_STARTING || s == RS_RUNNING;
}

#endif
