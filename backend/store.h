/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store.  This module owns every SQL statement of the project:
 * prepared once, named parameters, BEGIN IMMEDIATE for writes, errors
 * returned as -errno (never exit()).
 *
 * Locking: one connection guarded by one recursive mutex.  Single calls
 * lock for their own duration; store_begin() takes the lock and holds it
 * (with the transaction) until store_commit()/store_rollback(), so a
 * caller can read, check and write atomically.
 */
#ifndef MLFS_STORE_H
#define MLFS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "objects.h"
#include "parse.h"

struct store;

/* Open or create @path (WAL), apply migrations.  0 or -errno + sentence. */
int store_open(const char *path, struct store **sp, struct err *e);
void store_close(struct store *s);

int store_begin(struct store *s);	/* lock + BEGIN IMMEDIATE */
int store_commit(struct store *s);	/* COMMIT + unlock; rolls back on failure */
void store_rollback(struct store *s);	/* ROLLBACK + unlock */

int store_get(struct store *s, int64_t id, struct obj *o);	/* -ENOENT */
int store_find(struct store *s, int kind, int64_t parent, const char *name,
	       struct obj *o);					/* -ENOENT */
/* Insert @o (id ignored, set on return).  -EEXIST on a taken name. */
int store_insert(struct store *s, struct obj *o);
/* Write every mutable column of @o; a deployment's own row and replicas
 * (o->dep) too, all or none. */
int store_update(struct store *s, const struct obj *o);
/* Set the owner and the permission bits of @id (kept apart from
 * store_update, which never writes them).  0, -ENOENT or -errno. */
int store_set_owner(struct store *s, int64_t id, uint32_t uid, uint32_t gid,
		    uint32_t mode);
/* Delete the row and its texts (a deployment's tables too). */
int store_delete(struct store *s, int64_t id);

/* Objects of @kind under @parent with id > @after, by id, until @cb != 0.
 * @cb runs with the store locked and must not call the store. */
int store_list(struct store *s, int kind, int64_t parent, int64_t after,
	       int (*cb)(void *arg, const struct obj *o), void *arg);
/* Runs in an active state (Queued, Starting, Running), by seq. */
int store_list_active_runs(struct store *s,
			   int (*cb)(void *arg, const struct obj *o),
			   void *arg);
/* Targets in a transient state (Creating, Updating, Deleting). */
int store_list_busy_targets(struct store *s,
			    int (*cb)(void *arg, const struct obj *o),
			    void *arg);
/* Each image id in use, once per holder: every environment's current
 * image (@run 0) and the image every active run recorded at submit
 * (@run 1); @cb returns non-zero to stop.  0 or -errno. */
int store_list_held_images(struct store *s,
			   int (*cb)(void *arg, const char *image, int run),
			   void *arg);
/* Number of active runs whose target is @target_id. */
int store_count_active_runs(struct store *s, int64_t target_id);
/* The next integer version name of model @model_id (1 when none). */
int64_t store_next_version(struct store *s, int64_t model_id);
/* Deployments serving (Transitioning, Healthy, Unhealthy) model version
 * @version_id (their dep.model_version), by id.  Same @cb rules as store_list. */
int store_list_version_users(struct store *s, int64_t version_id,
			     int (*cb)(void *arg, const struct obj *o),
			     void *arg);
/* Deployments in Transitioning, Healthy or Unhealthy, by id. */
int store_list_live_deployments(struct store *s,
				int (*cb)(void *arg, const struct obj *o),
				void *arg);
/* Objects of @kind in @state, by id. */
int store_list_kind_state(struct store *s, int kind, enum obj_state state,
			  int (*cb)(void *arg, const struct obj *o),
			  void *arg);
/* Largest seq so far (0 if none). */
int64_t store_max_seq(struct store *s);
/* Every object id, in id order (for start-up reconciliation). */
int store_list_ids(struct store *s, int (*cb)(void *arg, int64_t id),
		   void *arg);

/* Texts (settings, nodes, keys): one blob per (object, file).
 * store_text_get: 0 with a malloc'd *buf (NUL-terminated, *len bytes
 * without the NUL), -ENOENT when unset. */
int store_text_get(struct store *s, int64_t id, int file, char **buf,
		   size_t *len);
int store_text_put(struct store *s, int64_t id, int file, const char *buf,
		   size_t len);

/*
 * store_reserve - keep room the store needs on a full disk: a row of
 * @bytes zero bytes, whose pages (freed by store_release_reserve) take new
 * rows without growing the file, and a WAL at least that long, kept across
 * restarts, which transactions rewrite in place.  0, or -ENOSPC (no room
 * for it now: try again later), -errno.
 */
int store_reserve(struct store *s, size_t bytes);
/* Bytes of the reserve now (0: none), or -errno. */
int64_t store_reserve_size(struct store *s);
/* Free the reserve's pages for the store's next writes.  1 when there was
 * a reserve, 0 when there was none, -errno. */
int store_release_reserve(struct store *s);

/* PRAGMA integrity_check: 0 if "ok", else -EIO with the first complaint. */
int store_check(struct store *s, struct err *e);

#endif
