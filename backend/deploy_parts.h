/* SPDX-License-Identifier: MIT */
/*
 * Shared by the deploy_*.c files only (deploy_i.h is what the rest of
 * backend/ calls): limits, the ctl verbs, and the helpers one part of a
 * deployment's life lends another.
 *
 *   deploy_config.c  a deployment's `config`, parsed (pure)
 *   deploy_ctl.c     FUSE request threads: ctl verbs, checks, info.json
 *   deploy_gen.c     worker thread: generations (spec files, snapshots)
 *   deploy_sm.c      worker thread: the state machine (replicas, rolling
 *                    updates, restarts with backoff, health, logs)
 */
#ifndef MLFS_DEPLOY_PARTS_H
#define MLFS_DEPLOY_PARTS_H

#include <string.h>

#include "deploy_i.h"

#define MAX_REPLICAS	16

#define MAX_BODY_DEFAULT	(100L << 20)	/* mlfs-serve's defaults */
#define READ_TIMEOUT_DEFAULT	30

/* autoscale defaults (config: target_in_flight, scale_*_cooldown) */
#define SCALE_TARGET_DEFAULT		2	/* one running, one waiting */
#define SCALE_OUT_COOLDOWN_DEFAULT	5	/* s */
#define SCALE_IN_COOLDOWN_DEFAULT	60	/* s */

enum { V_NONE, V_DEPLOY, V_RESTART, V_DELETE };
extern const char *const verb_names[];	/* by V_*: "", "deploy", … */

static inline int is_state(const struct obj *o, enum obj_state s)
{
	return o->state == s;
}

/* A state in which replicas may be serving (and the model is in use). */
static inline int live_state(enum obj_state s)
{
	return s == DS_TRANSITIONING || s == DS_HEALTHY || s == DS_UNHEALTHY;
}

/* deploy_ctl.c */
/* `config` and `env`, and the entry script config names in the
 * deployment's files. */
int check_config(struct ws *ws, const struct obj *o, struct deploy_spec *s,
		 struct err *e);
/* No host in config: where the target's replicas listen by default. */
void default_host(struct deploy_spec *s, const struct driver *drv);
/* The serial of the last request written and its verb (V_NONE: none). */
long req_serial(struct ws *ws, int64_t id, int *verb);

/* deploy_gen.c (worker) */
int spec_write(const struct deploy_ctx *d, const struct deploy_spec *s);
int spec_read(const struct deploy_ctx *d, int gen, struct deploy_spec *s);
/* A new generation for @verb (V_DEPLOY: the settings as they are now;
 * V_RESTART: the last one deployed, anew), recorded.  0 or -errno +
 * sentence. */
int gen_make(struct deploy_ctx *d, int verb, struct deploy_spec *s,
	     struct err *e);
/* Remove generation folders nothing uses any more. */
void gen_gc(struct deploy_ctx *d);

#endif
