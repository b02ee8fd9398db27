// SPDX-License-Identifier: MIT
/*
 * Every SQL statement of mlfs lives in this file (the statement table),
 * but for the schema and its migrations (store_schema.c).  Called from
 * any thread: one connection under one recursive mutex (store.h).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "store_i.h"

#define OBJ_COLS "id, kind, parent, name, state, error, uid, gid, created, " \
	"changed, target_id, seq, exit_code, queued, started, ended, cancel, " \
	"backend_id, node, gpus, type, ddata, mode, d.model_version, " \
	"d.scoring_uri, d.gen, d.last_gen, d.req_done, d.port"
/* an object's row with its deployment's, if it is one */
#define OBJ_FROM " FROM objects LEFT JOIN deployments d USING (id)"

const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT " OBJ_COLS OBJ_FROM " WHERE id = :id",
	[S_FIND] = "SELECT " OBJ_COLS OBJ_FROM
		   " WHERE kind = :kind AND parent = :parent AND name = :name",
	[S_INSERT] = "INSERT INTO objects (kind, parent, name, state, error,"
		     " uid, gid, created, changed, type, mode)"
		     " VALUES (:kind, :parent, :name, :state, :error, :uid,"
		     " :gid, :created, :changed, :type, :mode)",
	[S_UPDATE] = "UPDATE objects SET name = :name, state = :state,"
		     " error = :error, changed = :changed,"
		     " target_id = :target_id, seq = :seq,"
		     " exit_code = :exit_code, queued = :queued,"
		     " started = :started, ended = :ended, cancel = :cancel,"
		     " backend_id = :backend_id, node = :node, gpus = :gpus,"
		     " type = :type, ddata = :ddata WHERE id = :id",
	[S_DELETE] = "DELETE FROM objects WHERE id = :id",
	[S_DELETE_TEXTS] = "DELETE FROM texts WHERE obj = :id",
	[S_LIST] = "SELECT " OBJ_COLS OBJ_FROM
		   " WHERE kind = :kind AND parent = :parent AND id > :after"
		   " ORDER BY id",
	[S_ACTIVE] = "SELECT " OBJ_COLS OBJ_FROM " WHERE kind = 2 AND"
		     " state IN (:s1, :s2, :s3) ORDER BY seq",
	[S_BUSY_TARGETS] = "SELECT " OBJ_COLS OBJ_FROM " WHERE kind = 1"
			   " AND state IN (:s1, :s2, :s3)"
			   " ORDER BY id",
	[S_COUNT_ACTIVE] = "SELECT count(*) FROM objects WHERE kind = 2 AND"
			   " state IN (:s1, :s2, :s3)"
			   " AND target_id = :target",
	[S_MAX_SEQ] = "SELECT coalesce(max(seq), 0) FROM objects WHERE kind = 2",
	[S_IDS] = "SELECT id FROM objects ORDER BY id",
	[S_TEXT_GET] = "SELECT value FROM texts WHERE obj = :id AND file = :file",
	[S_TEXT_PUT] = "INSERT OR REPLACE INTO texts (obj, file, value)"
		       " VALUES (:id, :file, :value)",
	/* versions named by integers: the next one (1 for a new model) */
	[S_NEXT_VERSION] = "SELECT coalesce(max(CAST(name AS INTEGER)), 0) + 1"
			   " FROM objects WHERE kind = 5 AND parent = :model"
			   " AND name NOT GLOB '*[^0-9]*'",
	[S_VERSION_USERS] = "SELECT " OBJ_COLS OBJ_FROM " WHERE kind = 3"
			    " AND d.model_version = :version AND state IN"
			    " (:s1, :s2, :s3)"
			    " ORDER BY id",
	[S_LIVE_DEPLOYMENTS] = "SELECT " OBJ_COLS OBJ_FROM " WHERE"
			       " kind = 3 AND state IN"
			       " (:s1, :s2, :s3)"
			       " ORDER BY id",
	[S_KIND_STATE] = "SELECT " OBJ_COLS OBJ_FROM
			 " WHERE kind = :kind AND state = :state ORDER BY id",
	[S_RESERVE_SIZE] = "SELECT coalesce(max(length(pad)), 0) FROM reserve",
	[S_RESERVE_PUT] = "INSERT OR REPLACE INTO reserve (id, pad)"
			  " VALUES (1, zeroblob(:bytes))",
	[S_RESERVE_DROP] = "DELETE FROM reserve",
	/* owner and mode apart from store_update: a worker writing back its
	 * copy of a row must not undo a chmod made meanwhile */
	[S_SET_OWNER] = "UPDATE objects SET uid = :uid, gid = :gid,"
			" mode = :mode WHERE id = :id",
	[S_DEP_PUT] = "INSERT OR REPLACE INTO deployments (id, model_version,"
		      " scoring_uri, gen, last_gen, req_done, port)"
		      " VALUES (:id, :model_version, :scoring_uri, :gen,"
		      " :last_gen, :req_done, :port)",
	[S_DEP_DELETE] = "DELETE FROM deployments WHERE id = :id",
	[S_REPS_GET] = "SELECT slot, gen, pid, state, restarts FROM replicas"
		       " WHERE deployment = :id ORDER BY ord",
	[S_REPS_DELETE] = "DELETE FROM replicas WHERE deployment = :id",
	[S_REP_PUT] = "INSERT INTO replicas (deployment, ord, slot, gen, pid,"
		      " state, restarts) VALUES (:id, :ord, :slot, :gen, :pid,"
		      " :state, :restarts)",
	/* a deployment's update writes three tables: all or none, inside
	 * the caller's transaction or not */
	[S_SAVEPOINT] = "SAVEPOINT store_update",
	[S_RELEASE] = "RELEASE store_update",
	[S_ROLLBACK_TO] = "ROLLBACK TO store_update",
	/* image ids in use: each environment's (kind 7) current one, and
	 * the one each unfinished run (kind 2) recorded at submit */
	[S_HELD_IMAGES] = "SELECT node, 0 FROM objects WHERE kind = 7"
			  " AND node <> '' UNION ALL"
			  " SELECT CAST(t.value AS TEXT), 1 FROM objects o"
			  " JOIN texts t ON t.obj = o.id AND t.file = :file"
			  " WHERE o.kind = 2 AND o.state IN (:s1, :s2, :s3)",
};

static int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	default:
		return -EIO;
	}
}

int sql_fail(struct store *s, int rc, const char *what)
{
	log_err("store: %s: %s", what, sqlite3_errmsg(s->db));
	return sql_errno(rc);
}

static void bind_i64(sqlite3_stmt *st, const char *name, int64_t v)
{
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, name), v);
}

static void bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1,
			  SQLITE_STATIC);
}

#define ACTIVE_RUNS	{ RS_QUEUED, RS_STARTING, RS_RUNNING }
#define BUSY_TARGETS	{ TS_CREATING, TS_UPDATING, TS_DELETING }
#define LIVE_DEPLOYMENTS { DS_TRANSITIONING, DS_HEALTHY, DS_UNHEALTHY }

/* The states a statement's "state IN (:s1, :s2, :s3)" names. */
static const enum obj_state in_states[S_COUNT][3] = {
	[S_ACTIVE]		= ACTIVE_RUNS,
	[S_COUNT_ACTIVE]	= ACTIVE_RUNS,
	[S_BUSY_TARGETS]	= BUSY_TARGETS,
	[S_VERSION_USERS]	= LIVE_DEPLOYMENTS,
	[S_LIVE_DEPLOYMENTS]	= LIVE_DEPLOYMENTS,
	[S_HELD_IMAGES]		= ACTIVE_RUNS,
};

/* Statement @id, reset, its state names bound (the store keeps names). */
static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmt[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (in_states[id][0]) {
		bind_text(st, ":s1", state_name(in_states[id][0]));
		bind_text(st, ":s2", state_name(in_states[id][1]));
		bind_text(st, ":s3", state_name(in_states[id][2]));
	}
	return st;
}

static void bind_real(sqlite3_stmt *st, const char *name, double v)
{
	sqlite3_bind_double(st, sqlite3_bind_parameter_index(st, name), v);
}

void sql_col_text(sqlite3_stmt *st, int col, char *dst, size_t sz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, sz, "%s", t ? (const char *)t : "");
}

/* The state named in column @col, STATE_NONE for a name it does not know. */
static enum obj_state col_state(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return state_parse(t ? (const char *)t : "");
}

/* The deployments columns from @col on (NULL before its first save). */
static void row_to_dep(sqlite3_stmt *st, int col, struct obj *o)
{
	struct dep_row *d = &o->dep;

	d->model_version = sqlite3_column_int64(st, col);
	sql_col_text(st, col + 1, d->scoring_uri, sizeof(d->scoring_uri));
	d->gen = sqlite3_column_int(st, col + 2);
	d->last_gen = sqlite3_column_int(st, col + 3);
	d->req_done = sqlite3_column_int64(st, col + 4);
	d->port = sqlite3_column_int(st, col + 5);
}

static void row_to_obj(sqlite3_stmt *st, struct obj *o)
{
	memset(o, 0, sizeof(*o));
	o->id = sqlite3_column_int64(st, 0);
	o->kind = sqlite3_column_int(st, 1);
	o->parent = sqlite3_column_int64(st, 2);
	sql_col_text(st, 3, o->name, sizeof(o->name));
	o->state = col_state(st, 4);
	sql_col_text(st, 5, o->error, sizeof(o->error));
	o->uid = sqlite3_column_int64(st, 6);
	o->gid = sqlite3_column_int64(st, 7);
	o->created = sqlite3_column_double(st, 8);
	o->changed = sqlite3_column_double(st, 9);
	o->target_id = sqlite3_column_int64(st, 10);
	o->seq = sqlite3_column_int64(st, 11);
	o->exit_code = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 :
		       sqlite3_column_int(st, 12);
	o->queued = sqlite3_column_double(st, 13);
	o->started = sqlite3_column_double(st, 14);
	o->ended = sqlite3_column_double(st, 15);
	o->cancel = sqlite3_column_int(st, 16);
	sql_col_text(st, 17, o->backend_id, sizeof(o->backend_id));
	sql_col_text(st, 18, o->node, sizeof(o->node));
	sql_col_text(st, 19, o->gpus, sizeof(o->gpus));
	sql_col_text(st, 20, o->type, sizeof(o->type));
	sql_col_text(st, 21, o->ddata, sizeof(o->ddata));
	o->mode = sqlite3_column_int(st, 22) & 07777;
	if (o->kind == K_DEPLOYMENT)
		row_to_dep(st, 23, o);
}

int sql_exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_err("store: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return sql_errno(rc) ? sql_errno(rc) : -EIO;
	}
	return 0;
}

/* The value of a PRAGMA that answers one integer, or -1. */
int sql_pragma_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL))
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int store_prepare_all(struct store *s, struct err *e)
{
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
				       NULL) != SQLITE_OK)
			return err_set(e, -EIO, "cannot prepare statement %d: %s",
				       i, sqlite3_errmsg(s->db));
	}
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->wal_path);
	free(s);
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sql_fail(s, rc, what);
	return 0;
}

/* step_done, then the statement reset (it holds nothing after). */
static int run_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = step_done(s, st, what);

	sqlite3_reset(st);
	return rc;
}

int store_begin(struct store *s)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = step_done(s, stmt(s, S_BEGIN), "begin");
	if (rc)
		pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_commit(struct store *s)
{
	int rc = step_done(s, stmt(s, S_COMMIT), "commit");

	/* a failed COMMIT (disk full) may have rolled back already */
	if (rc && !sqlite3_get_autocommit(s->db))
		step_done(s, stmt(s, S_ROLLBACK), "rollback");
	sqlite3_reset(s->stmt[S_COMMIT]);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void store_rollback(struct store *s)
{
	step_done(s, stmt(s, S_ROLLBACK), "rollback");
	sqlite3_reset(s->stmt[S_ROLLBACK]);
	pthread_mutex_unlock(&s->lock);
}

/* The replicas of deployment @o, from their table. */
static int reps_load(struct store *s, struct obj *o)
{
	struct dep_row *d = &o->dep;
	sqlite3_stmt *st = stmt(s, S_REPS_GET);
	char state[16];
	int rc;

	bind_i64(st, ":id", o->id);
	d->nreps = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && d->nreps < DEP_REPS_MAX) {
		struct dep_replica *r = &d->reps[d->nreps++];

		r->slot = sqlite3_column_int(st, 0);
		r->gen = sqlite3_column_int(st, 1);
		r->pid = sqlite3_column_int64(st, 2);
		sql_col_text(st, 3, state, sizeof(state));
		r->state = dep_rep_state_parse(state);
		r->restarts = sqlite3_column_int(st, 4);
	}
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : sql_fail(s, rc, "replicas");
	sqlite3_reset(st);
	return rc;
}

/* The row of @o as store_get gives it: its deployment's replicas too. */
static int row_complete(struct store *s, sqlite3_stmt *st, struct obj *o)
{
	row_to_obj(st, o);
	return o->kind == K_DEPLOYMENT ? reps_load(s, o) : 0;
}

static int rep_put(struct store *s, int64_t id, int ord,
		   const struct dep_replica *r)
{
	sqlite3_stmt *st = stmt(s, S_REP_PUT);
	const char *state = dep_rep_state_name(r->state);

	bind_i64(st, ":id", id);
	bind_i64(st, ":ord", ord);
	bind_i64(st, ":slot", r->slot);
	bind_i64(st, ":gen", r->gen);
	bind_i64(st, ":pid", r->pid);
	bind_text(st, ":state", state ? state : "");
	bind_i64(st, ":restarts", r->restarts);
	return run_done(s, st, "replica put");
}

/* Write deployment @id's own row and its replicas (replacing theirs). */
int store_dep_put(struct store *s, int64_t id, const struct dep_row *d)
{
	sqlite3_stmt *st = stmt(s, S_DEP_PUT);
	int rc;

	bind_i64(st, ":id", id);
	bind_i64(st, ":model_version", d->model_version);
	bind_text(st, ":scoring_uri", d->scoring_uri);
	bind_i64(st, ":gen", d->gen);
	bind_i64(st, ":last_gen", d->last_gen);
	bind_i64(st, ":req_done", d->req_done);
	bind_i64(st, ":port", d->port);
	rc = run_done(s, st, "deployment put");
	if (!rc) {
		st = stmt(s, S_REPS_DELETE);
		bind_i64(st, ":id", id);
		rc = run_done(s, st, "replicas delete");
	}
	for (int i = 0; !rc && i < d->nreps && i < DEP_REPS_MAX; i++)
		rc = rep_put(s, id, i, &d->reps[i]);
	return rc;
}

static int fetch_one(struct store *s, sqlite3_stmt *st, struct obj *o)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		rc = row_complete(s, st, o);
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = sql_fail(s, rc, "select");
	}
	sqlite3_reset(st);
	return rc;
}

int store_get(struct store *s, int64_t id, struct obj *o)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_GET);
	bind_i64(st, ":id", id);
	rc = fetch_one(s, st, o);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_find(struct store *s, int kind, int64_t parent, const char *name,
	       struct obj *o)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_FIND);
	bind_i64(st, ":kind", kind);
	bind_i64(st, ":parent", parent);
	bind_text(st, ":name", name);
	rc = fetch_one(s, st, o);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_insert(struct store *s, struct obj *o)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_INSERT);
	bind_i64(st, ":kind", o->kind);
	bind_i64(st, ":parent", o->parent);
	bind_text(st, ":name", o->name);
	bind_text(st, ":state", state_name(o->state));
	bind_text(st, ":error", o->error);
	bind_i64(st, ":uid", o->uid);
	bind_i64(st, ":gid", o->gid);
	bind_real(st, ":created", o->created);
	bind_real(st, ":changed", o->changed);
	bind_text(st, ":type", o->type);
	bind_i64(st, ":mode", o->mode & 07777);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		o->id = sqlite3_last_insert_rowid(s->db);
		rc = 0;
	} else {
		rc = (rc & 0xff) == SQLITE_CONSTRAINT ? -EEXIST :
		     sql_fail(s, rc, "insert");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_set_owner(struct store *s, int64_t id, uint32_t uid, uint32_t gid,
		    uint32_t mode)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_SET_OWNER);
	bind_i64(st, ":id", id);
	bind_i64(st, ":uid", uid);
	bind_i64(st, ":gid", gid);
	bind_i64(st, ":mode", mode & 07777);
	rc = step_done(s, st, "set owner");
	if (!rc && !sqlite3_changes(s->db))
		rc = -ENOENT;
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The objects row of @o (a deployment's other tables: dep_update). */
static int obj_update(struct store *s, const struct obj *o)
{
	sqlite3_stmt *st;
	int rc;

	st = stmt(s, S_UPDATE);
	bind_i64(st, ":id", o->id);
	bind_text(st, ":name", o->name);
	bind_text(st, ":state", state_name(o->state));
	bind_text(st, ":error", o->error);
	bind_real(st, ":changed", o->changed);
	bind_i64(st, ":target_id", o->target_id);
	bind_i64(st, ":seq", o->seq);
	if (o->exit_code >= 0)
		bind_i64(st, ":exit_code", o->exit_code);
	bind_real(st, ":queued", o->queued);
	bind_real(st, ":started", o->started);
	bind_real(st, ":ended", o->ended);
	bind_i64(st, ":cancel", o->cancel);
	/* a deployment's is its scoring URI's copy (row_to_dep) */
	bind_text(st, ":backend_id", o->kind == K_DEPLOYMENT ? "" :
		  o->backend_id);
	bind_text(st, ":node", o->node);
	bind_text(st, ":gpus", o->gpus);
	bind_text(st, ":type", o->type);
	bind_text(st, ":ddata", o->ddata);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = (rc & 0xff) == SQLITE_CONSTRAINT ? -EEXIST :
		     sql_fail(s, rc, "update");
	sqlite3_reset(st);
	return rc;
}

/* A deployment: its objects row, its own row and its replicas, all or
 * none (a savepoint: inside the caller's transaction or alone). */
static int dep_update(struct store *s, const struct obj *o)
{
	int rc;

	rc = run_done(s, stmt(s, S_SAVEPOINT), "savepoint");
	if (rc)
		return rc;
	rc = obj_update(s, o);
	if (!rc)
		rc = store_dep_put(s, o->id, &o->dep);
	if (rc)
		run_done(s, stmt(s, S_ROLLBACK_TO), "rollback to savepoint");
	run_done(s, stmt(s, S_RELEASE), "release savepoint");
	return rc;
}

int store_update(struct store *s, const struct obj *o)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = o->kind == K_DEPLOYMENT ? dep_update(s, o) : obj_update(s, o);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_DELETE);
	bind_i64(st, ":id", id);
	rc = step_done(s, st, "delete");
	if (!rc) {
		st = stmt(s, S_DELETE_TEXTS);
		bind_i64(st, ":id", id);
		rc = step_done(s, st, "delete texts");
	}
	sqlite3_reset(st);
	for (int i = 0; !rc && i < 2; i++) {	/* a deployment's, if any */
		st = stmt(s, i ? S_REPS_DELETE : S_DEP_DELETE);
		bind_i64(st, ":id", id);
		rc = run_done(s, st, "delete deployment");
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int each_row(struct store *s, sqlite3_stmt *st,
		    int (*cb)(void *arg, const struct obj *o), void *arg)
{
	struct obj o;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_complete(s, st, &o) || cb(arg, &o))
			break;
	}
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : sql_fail(s, rc, "list");
	sqlite3_reset(st);
	return rc;
}

int store_list(struct store *s, int kind, int64_t parent, int64_t after,
	       int (*cb)(void *arg, const struct obj *o), void *arg)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_LIST);
	bind_i64(st, ":kind", kind);
	bind_i64(st, ":parent", parent);
	bind_i64(st, ":after", after);
	rc = each_row(s, st, cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_list_active_runs(struct store *s,
			   int (*cb)(void *arg, const struct obj *o),
			   void *arg)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = each_row(s, stmt(s, S_ACTIVE), cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_list_busy_targets(struct store *s,
			    int (*cb)(void *arg, const struct obj *o),
			    void *arg)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = each_row(s, stmt(s, S_BUSY_TARGETS), cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int64_t single_int(struct store *s, sqlite3_stmt *st)
{
	int64_t v = -EIO;
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		sql_fail(s, rc, "count");
	sqlite3_reset(st);
	return v;
}

int store_list_held_images(struct store *s,
			   int (*cb)(void *arg, const char *image, int run),
			   void *arg)
{
	sqlite3_stmt *st;
	const unsigned char *v;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_HELD_IMAGES);
	bind_i64(st, ":file", TEXT_RUN_IMAGE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_text(st, 0);
		if (v && *v && cb(arg, (const char *)v,
				  sqlite3_column_int(st, 1)))
			break;
	}
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 :
	     sql_fail(s, rc, "held images");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_count_active_runs(struct store *s, int64_t target_id)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_COUNT_ACTIVE);
	bind_i64(st, ":target", target_id);
	n = single_int(s, st);
	pthread_mutex_unlock(&s->lock);
	return (int)n;
}

int64_t store_next_version(struct store *s, int64_t model_id)
{
	sqlite3_stmt *st;
	int64_t n;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_NEXT_VERSION);
	bind_i64(st, ":model", model_id);
	n = single_int(s, st);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int store_list_version_users(struct store *s, int64_t version_id,
			     int (*cb)(void *arg, const struct obj *o),
			     void *arg)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_VERSION_USERS);
	bind_i64(st, ":version", version_id);
	rc = each_row(s, st, cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_list_live_deployments(struct store *s,
				int (*cb)(void *arg, const struct obj *o),
				void *arg)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = each_row(s, stmt(s, S_LIVE_DEPLOYMENTS), cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_list_kind_state(struct store *s, int kind, enum obj_state state,
			  int (*cb)(void *arg, const struct obj *o),
			  void *arg)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_KIND_STATE);
	bind_i64(st, ":kind", kind);
	bind_text(st, ":state", state_name(state));
	rc = each_row(s, st, cb, arg);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The one integer statement @id (no parameters) answers, or -errno. */
static int64_t locked_int(struct store *s, enum stmt_id id)
{
	int64_t n;

	pthread_mutex_lock(&s->lock);
	n = single_int(s, stmt(s, id));
	pthread_mutex_unlock(&s->lock);
	return n;
}

int64_t store_max_seq(struct store *s)
{
	int64_t n = locked_int(s, S_MAX_SEQ);

	return n < 0 ? 0 : n;
}

int store_list_ids(struct store *s, int (*cb)(void *arg, int64_t id),
		   void *arg)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_IDS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(arg, sqlite3_column_int64(st, 0)))
			break;
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : sql_fail(s, rc, "ids");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_text_get(struct store *s, int64_t id, int file, char **buf,
		   size_t *len)
{
	sqlite3_stmt *st;
	const void *blob;
	int rc, n;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_TEXT_GET);
	bind_i64(st, ":id", id);
	bind_i64(st, ":file", file);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 0);
		n = sqlite3_column_bytes(st, 0);
		*buf = malloc(n + 1);
		if (*buf) {
			if (n)
				memcpy(*buf, blob, n);
			(*buf)[n] = '\0';
			*len = n;
			rc = 0;
		} else {
			rc = -ENOMEM;
		}
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : sql_fail(s, rc, "text get");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_text_put(struct store *s, int64_t id, int file, const char *buf,
		   size_t len)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_TEXT_PUT);
	bind_i64(st, ":id", id);
	bind_i64(st, ":file", file);
	sqlite3_bind_blob(st, sqlite3_bind_parameter_index(st, ":value"),
			  buf ? buf : "", (int)len, SQLITE_STATIC);
	rc = step_done(s, st, "text put");
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_reserve(struct store *s, size_t bytes)
{
	struct stat st;
	sqlite3_stmt *q;
	int64_t have;
	int rc;

	pthread_mutex_lock(&s->lock);
	have = single_int(s, stmt(s, S_RESERVE_SIZE));
	if (have >= (int64_t)bytes && !stat(s->wal_path, &st) &&
	    st.st_size >= (off_t)bytes) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	rc = store_begin(s);
	if (!rc) {
		q = stmt(s, S_RESERVE_PUT);
		bind_i64(q, ":bytes", (int64_t)bytes);
		rc = step_done(s, q, "reserve");
		sqlite3_reset(q);
		if (rc)
			store_rollback(s);
		else
			rc = store_commit(s);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int64_t store_reserve_size(struct store *s)
{
	return locked_int(s, S_RESERVE_SIZE);
}

int store_release_reserve(struct store *s)
{
	int rc, secure;

	pthread_mutex_lock(&s->lock);
	/* zeros need no overwriting: secure_delete (on in Debian's SQLite)
	 * would write every freed page again, 4 MiB the full disk has not */
	secure = sql_pragma_int(s, "PRAGMA secure_delete");
	sql_exec(s, "PRAGMA secure_delete = 0");
	rc = step_done(s, stmt(s, S_RESERVE_DROP), "release reserve");
	sqlite3_reset(s->stmt[S_RESERVE_DROP]);
	if (!rc)
		rc = sqlite3_changes(s->db) > 0;
	if (secure > 0)
		sql_exec(s, "PRAGMA secure_delete = 1");
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_check(struct store *s, struct err *e)
{
	sqlite3_stmt *st;
	const char *t;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL)) {
		pthread_mutex_unlock(&s->lock);
		return err_set(e, -EIO, "integrity check failed to run");
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		t = (const char *)sqlite3_column_text(st, 0);
		if (!t || strcmp(t, "ok"))
			rc = err_set(e, -EIO, "integrity check: %s", t ? t : "?");
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
