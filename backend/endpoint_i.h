/* SPDX-License-Identifier: MIT */
/*
 * Private to backend/: the endpoint kind (endpoint.c, FUSE threads) and
 * its worker side (endpoint_sm.c, the endpoints' worker and housekeeping).
 *
 * How an endpoint uses the fields of struct obj:
 *   type        what ctl last asked: "start" or "stop" ("": never)
 *   node        the scoring URI once a port is known
 *   ddata       "port N": the port picked at the first start, kept
 *   backend_id  the proxy master's pid while it runs
 * and the texts TEXT_EP_PRIMARY, TEXT_EP_SECONDARY hold the keys (the
 * files keys/primary and keys/secondary are a copy for their owner).
 */
#ifndef MLFS_ENDPOINT_I_H
#define MLFS_ENDPOINT_I_H

#include "endpoint_config.h"
#include "objects.h"
#include "parse.h"

struct ws;

/* The endpoints' worker: one thread for all of them (worker.c). */
#define EP_WORKER_ID	(-2)
/* It looks at every started endpoint this often. */
#define EP_TICK_MS	1000
/* Waits for the runtime API on a FUSE thread (a local unix socket). */
#define EP_API_MS	1000

/* ---- endpoint_sm.c ------------------------------------------------------- */

/* Worker: one look at every endpoint (start, supervise, stop). */
void ep_step(struct ws *ws);
/* Worker exit: forget the proxies (they keep serving). */
void ep_release(void);
/* Housekeeping: stop the proxies of endpoints that are gone. */
void ep_orphans(struct ws *ws);
/* ws_start: wake the endpoints' worker when an endpoint is started. */
void ep_start_all(struct ws *ws);
/* The endpoint deployment @id joined into @name ("" none). */
void ep_joined(struct ws *ws, int64_t id, char *name, size_t sz);
/* <state>/endpoints/ID: the proxy's private folder. */
void ep_proxy_dir(struct ws *ws, int64_t id, char *buf, size_t sz);
/* The keys of @id (store texts) into @k, "" when none. */
void ep_keys_get(struct ws *ws, int64_t id, char k[2][EP_KEY_MAX]);

/*
 * ep_apply - a change of @o's @file written by a user (F_TRAFFIC,
 * F_MIRROR, F_KEYS) given to its running proxy at once through the
 * runtime API (a local unix socket, EP_API_MS at most per command); its
 * files are made from the store at its next start or reload.  @add and
 * @del (F_KEYS): a key accepted, a key refused (NULL: none).  A proxy not
 * running takes it at its start.  0 or -EIO with a sentence.
 */
int ep_apply(struct ws *ws, const struct obj *o, int file, const char *add,
	     const char *del, struct err *e);

/* @dep (a deployment behind @o) out of its running proxy's routing, see
 * ep_dep_deleted.  0 or -EIO with a sentence. */
int ep_leave(struct ws *ws, const struct obj *o, const char *dep,
	     struct err *e);

/* ---- endpoint.c ---------------------------------------------------------- */

/* A deployment's `endpoint` (deployment.c): empty, `-` or the name of an
 * endpoint of the same owner.  0 or -EINVAL with a sentence. */
int ep_join_check(struct ws *ws, const struct obj *dep, const char *buf,
		  size_t len, struct err *e);

/*
 * ep_dep_deleted - deployment @dep is being deleted (deploy_ctl.c, inside
 * the write of `delete`, before its replicas are told to stop): when it
 * is behind an endpoint, its line leaves that endpoint's `traffic` (the
 * others' weights scaled to sum to 100, ep_traffic_drop), a `mirror`
 * naming it is cleared, each with an `events` line, and the running
 * proxy routes nothing more to it (ep_leave).  A proxy that does not
 * answer leaves the endpoint's `error` saying so; the delete goes on.
 */
void ep_dep_deleted(struct ws *ws, const struct obj *dep);

#endif
