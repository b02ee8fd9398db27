/* SPDX-License-Identifier: MIT */
/*
 * Private to backend/: models (registration, versions in use) and
 * deployments (ctl verbs, the worker's state machine), called from the
 * hooks in ws.c and worker.c.
 *
 * How a deployment uses the fields of struct obj:
 *   target_id   the target serving it (resolved at deploy)
 *   queued      when the last deploy/restart/delete was written
 *   started     when it last became Healthy
 *   dep         its own tables (deploy_row.h): the model version it
 *               serves, the scoring URI while something serves, the
 *               generations, the port and the replicas the worker saved
 * and the text TEXT_DEPLOY_REQ holds the last request ("SERIAL VERB"),
 * which the worker carries out once (dep.req_done is the last it took).
 * seq, backend_id and ddata are not a deployment's (the store fills
 * backend_id with the scoring URI for ws.c's ws_render, see
 * deploy_scoring_uri).
 */
#ifndef MLFS_DEPLOY_I_H
#define MLFS_DEPLOY_I_H

#include <cjson/cJSON.h>

#include "driver.h"
#include "objects.h"
#include "parse.h"

struct ws;

/* Texts beyond the control files: enum obj_text in objects.h. */


/* ---- model.c ------------------------------------------------------------- */

/*
 * model_register - `register NAME [PATH]` on a Completed run: a new
 * version (next integer) of models/NAME, made from the run's outputs/ (or
 * the file or folder outputs/PATH).  0, or -EINVAL (usage, name, path),
 * -EBUSY (not Completed), -ENOENT (nothing there), -EIO, with a sentence.
 */
int model_register(struct ws *ws, const struct obj *run,
		   const struct ctl_cmd *c, struct err *e);
/* -EBUSY + sentence while a deployment serves version @o, else 0. */
int version_busy(struct ws *ws, const struct obj *o, struct err *e);
/* info.json of a version: model, source run, deployments serving it. */
void version_json(struct ws *ws, cJSON *j, const struct obj *o);
/* Set version @id InUse or Ready from the deployments serving it. */
void models_sync_use(struct ws *ws, int64_t id);
/* At start-up: every InUse version checked again. */
void models_reconcile(struct ws *ws);

/* ---- deploy_ctl.c (FUSE threads), deploy_sm.c (the worker) --------------- */

/*
 * deployment_verb - deploy | restart | delete, checked inside the write
 * (model, config, entry script, target, port) and handed to the target's
 * worker.  0 or -errno (EINVAL, ENOENT, EBUSY, ENOTSUP, EADDRINUSE) with
 * a sentence.
 */
int deployment_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e);
/* -EBUSY + sentence while a deployment is live on target @t, else 0. */
int deployments_busy(struct ws *ws, const struct obj *t, struct err *e);
/* info.json of a deployment. */
void deployment_json(struct ws *ws, cJSON *j, const struct obj *o);
/*
 * deploy_config_parse - a deployment's `config` (pure): entry, command,
 * port, replicas, host, ready_timeout into @s (defaults for the rest;
 * host stays "" when unset: the target's driver has the default).
 * 0 or -EINVAL with a sentence.
 */
int deploy_config_parse(const char *buf, size_t len, struct deploy_spec *s,
			struct err *e);
/*
 * deploy_config_check - the same, inside a write of `config` (pure): the
 * text may be incomplete (bash's printf writes a line at a time), so an
 * autoscale key without max_replicas yet is let through (its value
 * checked); deploy refuses it if it stays so.  0 or -EINVAL + sentence.
 */
int deploy_config_check(const char *buf, size_t len, struct err *e);

/*
 * deploy_env_parse - a deployment's `env` (pure): a run's env lines
 * (env_parse) less the names the daemon sets for each replica
 * (AZUREML_MODEL_DIR, PORT).  0 (@out filled, kv_free it) or -EINVAL +
 * a sentence that never repeats a value.
 */
int deploy_env_parse(const char *buf, size_t len, struct kv_list *out,
		     struct err *e);

/* What `scoring_uri` shows ("" while nothing serves; no newline). */
static inline const char *deploy_scoring_uri(const struct obj *o)
{
	return o->dep.scoring_uri;
}

/* The model version (object id) deployment @o serves or last served. */
static inline int64_t deploy_model_version(const struct obj *o)
{
	return o->dep.model_version;
}

/*
 * deploy_replica_counts - from the row: the replicas of the serving
 * generation (the newest one while none serves) that are ready, and those
 * it should have (autoscale's count: neither stopping nor gone; one
 * waiting to restart counts).  0 and 0 when nothing runs.
 */
void deploy_replica_counts(const struct obj *o, int *ready, int *desired);

/*
 * The replicas' direct ports, between a deployment's worker and the
 * endpoints' (deploy_direct.c; any thread):
 * deploy_direct_publish - deployment @id's ready replicas have direct
 *   ports @port (@n; 0: none, or forgotten) at address @host (an IP
 *   literal: 127.0.0.1 for a local target's, the host's for ssh); a
 *   change wakes the endpoints' worker whose proxy uses them.
 * deploy_direct_ports - those ports, ascending, into @port (at most @max)
 *   and their address into @host: an endpoint's proxy sends each request
 *   to one of them.  Their number; 0 when none is known (a server of the
 *   user's `command`, a host that says direct_ports = no, or not polled
 *   yet): the proxy uses the service's address.
 * deploy_direct_used - the proxy of endpoint @ep sends to @id's replicas
 *   at @port (@n; 0: to none any more); a port let go wakes @id's worker.
 * deploy_direct_in_use - does a proxy still send to @id's replica at
 *   @port?  1 or 0: its drain waits for it.
 */
#define DEP_DIRECT_HOST_MAX 64	/* an IPv6 literal and more */
void deploy_direct_publish(struct ws *ws, int64_t id, const char *host,
			   const int *port, int n);
int deploy_direct_ports(int64_t id, char *host, size_t hsz, int *port,
			int max);
void deploy_direct_used(struct ws *ws, int64_t id, int64_t ep,
			const int *port, int n);
int deploy_direct_in_use(int64_t id, int port);

/* Worker only: track deployment @o (adopting its replicas after a
 * restart) or refresh the tracked copy. */
void deploy_track(struct target_ctx *t, struct deploy_ctx **list,
		  const struct obj *o);
/* Worker only: advance every tracked deployment one step. */
void deploy_step(struct target_ctx *t, struct deploy_ctx **list,
		 int ino_fd);
/* Worker only: log growth of tracked deployments (cheap: one stat). */
void deploy_watch_logs(struct deploy_ctx *list);
/* The worker's poll timeout given @timeout (-1: none) and @list. */
int deploy_timeout_ms(const struct deploy_ctx *list, int timeout);
/* Worker exit: forget everything; replicas keep serving. */
void deploy_release_all(struct target_ctx *t, struct deploy_ctx **list,
			int ino_fd);
/* ws_start: kick every live deployment (adoption), check versions. */
void deploy_start_all(struct ws *ws);

#endif
