// SPDX-License-Identifier: MIT
/*
 * Opening the store: its files (private, 0600), its schema and its
 * history, the migrations that take a workspace.db of any older mlfs to
 * this one, in SQL and, where SQL alone cannot (4 -> 5), in C.  Part of
 * the store module (store_i.h): it calls down into store.c, never the
 * reverse.  Runs once, in store_open, before any other thread uses the
 * store.
 */
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
#include "store.h"
#include "store_i.h"

/* Schema migrations: migrations[i] takes user_version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE objects ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  kind INTEGER NOT NULL,"
	"  parent INTEGER NOT NULL DEFAULT 0,"
	"  name TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  uid INTEGER NOT NULL DEFAULT 0,"
	"  gid INTEGER NOT NULL DEFAULT 0,"
	"  created REAL NOT NULL,"
	"  changed REAL NOT NULL,"
	"  target_id INTEGER NOT NULL DEFAULT 0,"
	"  seq INTEGER NOT NULL DEFAULT 0,"
	"  exit_code INTEGER,"
	"  queued REAL NOT NULL DEFAULT 0,"
	"  started REAL NOT NULL DEFAULT 0,"
	"  ended REAL NOT NULL DEFAULT 0,"
	"  cancel INTEGER NOT NULL DEFAULT 0,"
	"  backend_id TEXT NOT NULL DEFAULT '',"
	"  node TEXT NOT NULL DEFAULT '',"
	"  gpus TEXT NOT NULL DEFAULT '',"
	"  type TEXT NOT NULL DEFAULT '',"
	"  ddata TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE UNIQUE INDEX objects_by_name ON objects(kind, parent, name);"
	"CREATE INDEX objects_by_state ON objects(kind, state);"
	"CREATE TABLE texts ("
	"  obj INTEGER NOT NULL,"
	"  file INTEGER NOT NULL,"
	"  value BLOB NOT NULL,"
	"  PRIMARY KEY (obj, file)"
	") WITHOUT ROWID;",
	/* 1 -> 2: listings (readdir) walk a folder by id: without this index
	 * each readdir call sorted the whole folder (quadratic listings) */
	"CREATE INDEX objects_by_parent ON objects(kind, parent, id);",
	/* 2 -> 3: pages kept for a full disk (see store_reserve) */
	"CREATE TABLE reserve (id INTEGER PRIMARY KEY, pad BLOB NOT NULL);",
	/* 3 -> 4: an object folder's permission bits (chmod, and who may
	 * use a target); targets made before were shared with everyone,
	 * which let any user run on another's credentials: private now */
	"ALTER TABLE objects ADD COLUMN mode INTEGER NOT NULL DEFAULT 493;"
	"UPDATE objects SET mode = 448 WHERE kind = 1 AND name <> 'local';",
	/* 4 -> 5: deployments in their own tables, no longer in the seq,
	 * backend_id and ddata columns of objects (see migrate_deployments) */
	"CREATE TABLE deployments ("
	"  id INTEGER PRIMARY KEY,"	/* the deployment's objects.id */
	"  model_version INTEGER NOT NULL DEFAULT 0,"
	"  scoring_uri TEXT NOT NULL DEFAULT '',"
	"  gen INTEGER NOT NULL DEFAULT 0,"
	"  last_gen INTEGER NOT NULL DEFAULT 0,"
	"  req_done INTEGER NOT NULL DEFAULT 0,"
	"  port INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX deployments_by_version ON deployments(model_version);"
	"CREATE TABLE replicas ("
	"  deployment INTEGER NOT NULL,"
	"  ord INTEGER NOT NULL,"	/* place in the worker's list */
	"  slot INTEGER NOT NULL,"
	"  gen INTEGER NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"	/* starting, ready, stopping, ... */
	"  restarts INTEGER NOT NULL,"
	"  PRIMARY KEY (deployment, ord)"
	") WITHOUT ROWID;",
};

static int migrate_deployments(struct store *s);

/* Work in C after migrations[i] (NULL: none), in its transaction. */
static int (*const migration_fns[])(struct store *s) = {
	[4] = migrate_deployments,
};

/* ---- 4 -> 5: deployments out of the objects row ------------------------ */

/* The number after " KEY=" in an old ddata text, 0 when none. */
static long legacy_long(const char *dd, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "%s=", key);
	for (p = strstr(dd, pat); p; p = strstr(p + 1, pat))
		if (p == dd || p[-1] == ' ')
			return strtol(p + strlen(pat), NULL, 10);
	return 0;
}

/* An old ddata: "gen=N last=M req=R port=P reps=SLOT:GEN:PID:L:N,…",
 * L a letter of "?srtxw" (enum replica_state). */
static void legacy_ddata(const char *dd, struct dep_row *d)
{
	static const char letters[] = "?srtxw";
	const char *p = strstr(dd, "reps="), *l;
	int slot, gen, restarts, n;
	long pid;
	char st;

	d->gen = legacy_long(dd, "gen");
	d->last_gen = legacy_long(dd, "last");
	d->req_done = legacy_long(dd, "req");
	d->port = legacy_long(dd, "port");
	for (p = p ? p + 5 : NULL; p && d->nreps < DEP_REPS_MAX &&
	     sscanf(p, "%d:%d:%ld:%c:%d,%n", &slot, &gen, &pid, &st,
		    &restarts, &n) == 5; p += n) {
		struct dep_replica *r = &d->reps[d->nreps++];

		l = strchr(letters, st);
		r->slot = slot;
		r->gen = gen;
		r->pid = pid;
		r->state = l ? l - letters : 0;
		r->restarts = restarts;
	}
}

static int legacy_rows(struct store *s)
{
	const char *sql = "SELECT id, seq, backend_id, ddata FROM objects"
			  " WHERE kind = 3";
	sqlite3_stmt *st;
	struct dep_row d;
	char dd[1024];
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL))
		return sql_fail(s, SQLITE_ERROR, "old deployments");
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		memset(&d, 0, sizeof(d));
		d.model_version = sqlite3_column_int64(st, 1);
		sql_col_text(st, 2, d.scoring_uri, sizeof(d.scoring_uri));
		sql_col_text(st, 3, dd, sizeof(dd));
		legacy_ddata(dd, &d);
		rc = store_dep_put(s, sqlite3_column_int64(st, 0), &d);
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Each deployment's model version (objects.seq), scoring URI (backend_id)
 * and ddata into the deployments and replicas tables, nothing lost; then
 * those columns of deployments are emptied.  Runs before prepare_all:
 * prepares the statements it uses and leaves them to it.
 */
static int migrate_deployments(struct store *s)
{
	static const enum stmt_id used[] = { S_DEP_PUT, S_REPS_DELETE,
					     S_REP_PUT };
	int rc = 0;

	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]) && !rc; i++)
		if (sqlite3_prepare_v2(s->db, stmt_sql[used[i]], -1,
				       &s->stmt[used[i]], NULL))
			rc = sql_fail(s, SQLITE_ERROR, "prepare");
	if (!rc)
		rc = legacy_rows(s);
	if (!rc)
		rc = sql_exec(s, "UPDATE objects SET seq = 0, backend_id = '',"
			      " ddata = '' WHERE kind = 3");
	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++) {
		sqlite3_finalize(s->stmt[used[i]]);
		s->stmt[used[i]] = NULL;
	}
	return rc;
}

/* The work in C of migration @v -> @v + 1, if it has some. */
static int migrate_c(struct store *s, int v)
{
	int n = sizeof(migration_fns) / sizeof(migration_fns[0]);

	return v < n && migration_fns[v] ? migration_fns[v](s) : 0;
}

static int store_migrate(struct store *s, struct err *e)
{
	int n = sizeof(migrations) / sizeof(migrations[0]);
	int v = sql_pragma_int(s, "PRAGMA user_version");
	char sql[64];

	if (v < 0)
		return err_set(e, -EIO, "cannot read the schema version: %s",
			       sqlite3_errmsg(s->db));
	if (v > n)
		return err_set(e, -EPROTO, "the workspace has schema version %d,"
			       " newer than this mlfs (%d): upgrade mlfs", v, n);
	for (; v < n; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sql_exec(s, "BEGIN IMMEDIATE") ||
		    sql_exec(s, migrations[v]) || migrate_c(s, v) ||
		    sql_exec(s, sql) || sql_exec(s, "COMMIT")) {
			sql_exec(s, "ROLLBACK");
			return err_set(e, -EIO, "schema migration %d -> %d failed:"
				       " %s", v, v + 1, sqlite3_errmsg(s->db));
		}
		log_info("store: migrated schema to version %d", v + 1);
	}
	return 0;
}

/*
 * The database and its -wal and -shm hold every setting (tokens, env
 * secrets, deployment keys): the daemon's user's alone.  SQLite makes the
 * -wal and -shm with the database's mode, so the database is made 0600
 * before SQLite sees it; files of an older mlfs are brought to 0600 too.
 */
static int private_file(const char *path, int create)
{
	int fd, rc = 0;

	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		  (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return errno == ENOENT && !create ? 0 : -errno;
	if (fchmod(fd, 0600))
		rc = -errno;
	close(fd);
	return rc;
}

static int private_files(const char *path)
{
	const char *sfx[] = { "-wal", "-shm" };
	char p[PATH_MAX];
	int rc = 0;

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && !rc; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		rc = private_file(p, 0);
	}
	return rc;
}

int store_open(const char *path, struct store **sp, struct err *e)
{
	pthread_mutexattr_t ma;
	struct store *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	rc = private_file(path, 1);
	if (!rc)
		rc = private_files(path);
	if (rc) {
		rc = err_set(e, rc, "cannot make %s private (0600): %s", path,
			     strerror(-rc));
		goto out_close;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, -EIO, "cannot open %s: %s", path,
			     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto out_close;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 0);
	rc = sql_exec(s, "PRAGMA journal_mode = WAL;"
		      "PRAGMA synchronous = NORMAL;"
		      "PRAGMA foreign_keys = OFF;"
		      "PRAGMA cache_size = -4096;");
	if (rc) {
		rc = err_set(e, rc, "cannot set up %s: %s", path,
			     sqlite3_errmsg(s->db));
		goto out_close;
	}
	/* the WAL keeps its length across restarts (see store_reserve) */
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL,
			     &(int){ 1 });
	if (asprintf(&s->wal_path, "%s-wal", path) < 0) {
		s->wal_path = NULL;
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out_close;
	}
	rc = store_migrate(s, e);
	if (!rc)
		rc = store_prepare_all(s, e);
	if (!rc && private_files(path))	/* made now, by another umask? */
		rc = err_set(e, -EIO, "cannot make %s-wal private", path);
	if (rc)
		goto out_close;
	*sp = s;
	return 0;

out_close:
	store_close(s);
	return rc;
}
