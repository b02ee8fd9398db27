// SPDX-License-Identifier: MIT
/* Unit test of the SQLite store: migrations, rows, texts, listing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "tap.h"

static int count_cb(void *arg, const struct obj *o)
{
	(void)o;
	++*(int *)arg;
	return 0;
}

static int first_cb(void *arg, const struct obj *o)
{
	*(int64_t *)arg = o->id;
	return 1;
}

static struct obj mk(int kind, int64_t parent, const char *name)
{
	struct obj o = { 0 };

	o.kind = kind;
	o.parent = parent;
	snprintf(o.name, sizeof(o.name), "%s", name);
	o.state = RS_DRAFT;
	o.created = o.changed = 1.0;
	o.exit_code = -1;
	return o;
}

/* "IMAGE:RUN " for each held image, appended to the buffer @arg. */
static int held_cb(void *arg, const char *image, int run)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 256 - n, "%s:%d ", image, run);
	return 0;
}

/* The images in use: environments' current ones, active runs' ones (not
 * a Draft's, not a finished run's); @running is an active run. */
static void test_held(struct store *s, int64_t running)
{
	struct obj env = mk(K_ENVIRONMENT, 0, "e1"), draft = mk(K_RUN, 0, "h1");
	struct obj done = mk(K_RUN, 0, "h2"), none = mk(K_ENVIRONMENT, 0, "e2");
	char buf[256] = "";

	env.state = ES_READY;
	snprintf(env.node, sizeof(env.node), "sha256:aa");
	store_insert(s, &env);
	store_update(s, &env);
	store_insert(s, &none);		/* no image yet */
	store_insert(s, &draft);
	store_text_put(s, draft.id, TEXT_RUN_IMAGE, "sha256:dd", 9);
	done.state = RS_COMPLETED;
	store_insert(s, &done);
	store_update(s, &done);
	store_text_put(s, done.id, TEXT_RUN_IMAGE, "sha256:cc", 9);
	store_text_put(s, running, TEXT_RUN_IMAGE, "sha256:bb", 9);
	CHECK(store_list_held_images(s, held_cb, buf) == 0 &&
	      !strcmp(buf, "sha256:aa:0 sha256:bb:1 "), "held images: the"
	      " environment's and the active run's (%s)", buf);
	store_delete(s, env.id);
	store_delete(s, none.id);
	store_delete(s, draft.id);
	store_delete(s, done.id);
}

/* A workspace.db as schema 4 left it (mlfs before deployments had their
 * own tables), with deployments in the old encoding. */
static const char schema4[] =
	"CREATE TABLE objects (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind INTEGER NOT NULL, parent INTEGER NOT NULL DEFAULT 0,"
	" name TEXT NOT NULL, state TEXT NOT NULL,"
	" error TEXT NOT NULL DEFAULT '', uid INTEGER NOT NULL DEFAULT 0,"
	" gid INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,"
	" changed REAL NOT NULL, target_id INTEGER NOT NULL DEFAULT 0,"
	" seq INTEGER NOT NULL DEFAULT 0, exit_code INTEGER,"
	" queued REAL NOT NULL DEFAULT 0, started REAL NOT NULL DEFAULT 0,"
	" ended REAL NOT NULL DEFAULT 0, cancel INTEGER NOT NULL DEFAULT 0,"
	" backend_id TEXT NOT NULL DEFAULT '', node TEXT NOT NULL DEFAULT '',"
	" gpus TEXT NOT NULL DEFAULT '', type TEXT NOT NULL DEFAULT '',"
	" ddata TEXT NOT NULL DEFAULT '',"
	" mode INTEGER NOT NULL DEFAULT 493);"
	"CREATE UNIQUE INDEX objects_by_name ON objects(kind, parent, name);"
	"CREATE INDEX objects_by_state ON objects(kind, state);"
	"CREATE TABLE texts (obj INTEGER NOT NULL, file INTEGER NOT NULL,"
	" value BLOB NOT NULL, PRIMARY KEY (obj, file)) WITHOUT ROWID;"
	"CREATE INDEX objects_by_parent ON objects(kind, parent, id);"
	"CREATE TABLE reserve (id INTEGER PRIMARY KEY, pad BLOB NOT NULL);"
	"INSERT INTO objects (id, kind, name, state, created, changed,"
	" target_id, seq, queued, started, backend_id, ddata) VALUES"
	" (1, 1, 'local', 'Succeeded', 1, 1, 0, 0, 0, 0, '', 'x=1'),"
	" (2, 2, 'r', 'Running', 1, 1, 1, 9, 2, 3, 'pid 42', 'off=7'),"
	" (3, 3, 'web', 'Healthy', 1, 1, 1, 7, 4, 5,"
	"  'http://h:8080/score', 'gen=3 last=4 req=5 port=8080"
	" reps=1:3:123:r:0,2:4:456:s:2,1:2:99:t:1,3:4:77:?:6,'),"
	" (4, 3, 'idle', 'Draft', 1, 1, 0, 0, 0, 0, '', ''),"
	" (5, 3, 'old', 'Failed', 1, 1, 1, 6, 0, 0, '',"
	"  'gen=0 last=2 req=3 port=0 reps=');"
	"INSERT INTO texts VALUES (3, 42, '5 deploy');"
	"PRAGMA user_version = 4;";

static void make_schema4(const char *path)
{
	sqlite3 *db;

	unlink(path);
	sqlite3_open(path, &db);
	CHECK(sqlite3_exec(db, schema4, NULL, NULL, NULL) == SQLITE_OK,
	      "a database at schema 4: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

static int rep_is(const struct dep_replica *r, int slot, int gen, long pid,
		  int state, int restarts)
{
	return r->slot == slot && r->gen == gen && r->pid == pid &&
	       r->state == state && r->restarts == restarts;
}

static void check_web(struct store *s, const char *when)
{
	const struct dep_row *d;
	struct obj o;

	CHECK(store_get(s, 3, &o) == 0 && o.kind == K_DEPLOYMENT &&
	      o.state == DS_HEALTHY && o.target_id == 1 &&
	      o.queued == 4 && o.started == 5, "%s: the row of web", when);
	d = &o.dep;
	CHECK(d->model_version == 7 && !strcmp(d->scoring_uri,
	      "http://h:8080/score"), "%s: model version and scoring URI",
	      when);
	CHECK(d->gen == 3 && d->last_gen == 4 && d->req_done == 5 &&
	      d->port == 8080, "%s: gen, last, req, port", when);
	CHECK(d->nreps == 4 && rep_is(&d->reps[0], 1, 3, 123, 2, 0) &&
	      rep_is(&d->reps[1], 2, 4, 456, 1, 2) &&
	      rep_is(&d->reps[2], 1, 2, 99, 3, 1) &&
	      rep_is(&d->reps[3], 3, 4, 77, 0, 6),
	      "%s: the four replicas, in order (%d)", when, d->nreps);
	CHECK(!o.backend_id[0] && !o.ddata[0] &&
	      !o.seq, "%s: the old columns hold nothing of their own", when);
}

static int web_cb(void *arg, const struct obj *o)
{
	*(int *)arg += o->id == 3 && o->dep.nreps == 4;
	return 0;
}

/* Schema 4 -> 5: deployments move to their own tables, nothing lost. */
static void migration(const char *dir)
{
	char path[256], *buf;
	struct store *s;
	struct err e;
	struct obj o;
	size_t len;
	int n = 0;

	snprintf(path, sizeof(path), "%s/old.db", dir);
	make_schema4(path);
	CHECK(store_open(path, &s, &e) == 0, "open migrates schema 4");
	check_web(s, "migrated");
	CHECK(store_get(s, 2, &o) == 0 && o.seq == 9 &&
	      !strcmp(o.backend_id, "pid 42") && !strcmp(o.ddata, "off=7"),
	      "a run keeps seq, backend_id and ddata");
	CHECK(store_get(s, 1, &o) == 0 && !strcmp(o.ddata, "x=1"),
	      "a target keeps ddata");
	CHECK(store_get(s, 4, &o) == 0 && !o.dep.model_version &&
	      !o.dep.gen && !o.dep.nreps && !o.backend_id[0],
	      "a Draft deployment: all zero");
	CHECK(store_get(s, 5, &o) == 0 && o.dep.model_version == 6 &&
	      o.dep.last_gen == 2 && o.dep.req_done == 3 && !o.dep.nreps,
	      "a Failed one keeps its version, last and req");
	CHECK(store_text_get(s, 3, 42, &buf, &len) == 0 &&
	      !strcmp(buf, "5 deploy"), "texts are kept");
	free(buf);
	store_list_version_users(s, 7, web_cb, &n);
	CHECK(n == 1, "web serves version 7, replicas and all");
	n = 0;
	store_list_version_users(s, 6, count_cb, &n);
	CHECK(n == 0, "a Failed deployment serves nothing");
	store_get(s, 3, &o);
	snprintf(o.name, sizeof(o.name), "web2");
	store_update(s, &o);
	store_close(s);
	CHECK(store_open(path, &s, &e) == 0, "reopen the migrated database");
	check_web(s, "reopened after an update");
	store_close(s);
}

/* A deployment's own row and replicas through update and delete. */
static void deployment_rows(struct store *s)
{
	struct obj d = mk(K_DEPLOYMENT, 0, "d"), other, got;

	CHECK(store_insert(s, &d) == 0, "insert a deployment");
	CHECK(store_get(s, d.id, &got) == 0 && !got.dep.nreps &&
	      !got.dep.scoring_uri[0], "a new deployment has no replicas");
	d.dep.model_version = 11;
	snprintf(d.dep.scoring_uri, sizeof(d.dep.scoring_uri), "http://x/s");
	d.dep.nreps = 2;
	d.dep.reps[0] = (struct dep_replica){ .pid = 5, .gen = 1, .slot = 1,
					      .state = 2 };
	d.dep.reps[1] = (struct dep_replica){ .pid = 6, .gen = 2, .slot = 1,
					      .state = 5, .restarts = 3 };
	CHECK(store_update(s, &d) == 0 && store_get(s, d.id, &got) == 0 &&
	      got.dep.model_version == 11 && got.dep.nreps == 2 &&
	      rep_is(&got.dep.reps[1], 1, 2, 6, 5, 3) &&
	      !strcmp(got.dep.scoring_uri, "http://x/s") &&
	      !got.backend_id[0], "update writes them");
	d.dep.nreps = 1;
	store_update(s, &d);
	CHECK(store_get(s, d.id, &got) == 0 && got.dep.nreps == 1,
	      "an update replaces the replicas");
	other = mk(K_DEPLOYMENT, 0, "e");
	store_insert(s, &other);
	store_get(s, d.id, &got);
	snprintf(got.name, sizeof(got.name), "e");
	got.dep.nreps = 0;
	CHECK(store_update(s, &got) == -EEXIST && store_get(s, d.id, &got) ==
	      0 && got.dep.nreps == 1 && !strcmp(got.name, "d"),
	      "a refused rename leaves it whole");
	CHECK(store_delete(s, d.id) == 0 && store_get(s, d.id, &got) ==
	      -ENOENT, "delete it");
	d = mk(K_DEPLOYMENT, 0, "d");
	CHECK(store_insert(s, &d) == 0 && store_get(s, d.id, &got) == 0 &&
	      !got.dep.nreps && !got.dep.model_version,
	      "its tables went with it");
}

/* Every state's name parses back to it; the names users see. */
static void state_names(void)
{
	int ok = 1;

	for (int s = STATE_NONE + 1; s < STATE_COUNT; s++)
		ok &= state_name(s)[0] && (int)state_parse(state_name(s)) == s;
	CHECK(ok, "each state's name parses back to it");
	CHECK(!strcmp(state_name(RS_CANCELED), "Canceled") &&
	      !strcmp(state_name(TS_SUCCEEDED), "Succeeded") &&
	      !strcmp(state_name(DS_TRANSITIONING), "Transitioning") &&
	      !strcmp(state_name(VS_IN_USE), "InUse") &&
	      TS_FAILED == RS_FAILED && DS_DRAFT == RS_DRAFT,
	      "the names are the ones users see, shared ones once");
	CHECK(state_parse("running") == STATE_NONE && !state_name(-1)[0],
	      "an unknown name is no state, and no state has no name");
}

/* The state column of row @id as stored, read apart from the store. */
static const char *stored_state(const char *path, int64_t id)
{
	static char text[32];
	sqlite3_stmt *st;
	sqlite3 *db;

	text[0] = '\0';
	sqlite3_open(path, &db);
	if (!sqlite3_prepare_v2(db, "SELECT state FROM objects WHERE id = ?",
				-1, &st, NULL)) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(text, sizeof(text), "%s",
				 (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return text;
}

int main(void)
{
	char dir[] = "/tmp/mlfs-store-XXXXXX", path[256];
	struct store *s;
	struct err e;
	struct obj a, b, c, got;
	char *buf;
	size_t len;
	int n, rc;
	int64_t first;

	if (!mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/ws.db", dir);
	rc = store_open(path, &s, &e);
	CHECK(rc == 0, "open creates and migrates");
	{
		sqlite3 *db;
		sqlite3_stmt *st;
		struct stat pst;
		int v = -1, idx = 0;

		sqlite3_open(path, &db);
		if (!sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) &&
		    sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (!sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master"
					" WHERE name = 'objects_by_parent'", -1,
					&st, NULL) && sqlite3_step(st) == SQLITE_ROW)
			idx = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
		CHECK(v == 5 && idx == 1, "schema version 5 with the listing"
		      " index (version %d)", v);
		CHECK((stat(path, &pst), (pst.st_mode & 0777) == 0600),
		      "the database is 0600 (%o)", pst.st_mode & 0777);
	}
	a = mk(K_RUN, 0, "r1");
	CHECK(store_insert(s, &a) == 0 && a.id > 0, "insert r1");
	CHECK(store_set_owner(s, a.id, 7, 8, 0750) == 0 &&
	      store_get(s, a.id, &got) == 0 && got.uid == 7 && got.gid == 8 &&
	      got.mode == 0750, "owner and mode are kept (%o)", got.mode);
	CHECK(store_update(s, &a) == 0 && store_get(s, a.id, &got) == 0 &&
	      got.mode == 0750 && got.uid == 7, "an update leaves them");
	CHECK(store_set_owner(s, 99999, 0, 0, 0) == -ENOENT,
	      "set_owner of no row: ENOENT");
	b = mk(K_RUN, 0, "r1");
	CHECK(store_insert(s, &b) == -EEXIST, "same name -> EEXIST");
	b = mk(K_TARGET, 0, "r1");
	CHECK(store_insert(s, &b) == 0, "same name, other kind is fine");
	c = mk(K_RUN, 0, "r2");
	store_insert(s, &c);
	CHECK(c.id > b.id, "ids grow");
	CHECK(store_find(s, K_RUN, 0, "r2", &got) == 0 && got.id == c.id,
	      "find by name");
	CHECK(store_find(s, K_RUN, 0, "nope", &got) == -ENOENT,
	      "find unknown -> ENOENT");
	CHECK(store_get(s, a.id, &got) == 0 && got.exit_code == -1,
	      "exit code NULL reads as -1");
	a.state = RS_RUNNING;
	a.exit_code = 3;
	snprintf(a.backend_id, sizeof(a.backend_id), "pid 42");
	CHECK(store_update(s, &a) == 0, "update");
	store_get(s, a.id, &got);
	CHECK(got.state == RS_RUNNING && got.exit_code == 3 &&
	      !strcmp(got.backend_id, "pid 42"), "update persists fields");
	snprintf(c.name, sizeof(c.name), "r1");
	CHECK(store_update(s, &c) == -EEXIST, "rename onto a taken name");
	CHECK(!strcmp(stored_state(path, a.id), "Running"),
	      "the store keeps the state's name");
	n = 0;
	store_list_active_runs(s, count_cb, &n);
	CHECK(n == 1, "one active run");
	CHECK(store_count_active_runs(s, 0) == 1, "count active by target");
	n = 0;
	store_list(s, K_RUN, 0, 0, count_cb, &n);
	CHECK(n == 2, "list runs");
	first = 0;
	store_list(s, K_RUN, 0, a.id, first_cb, &first);
	CHECK(first == c.id, "list resumes after an id");
	test_held(s, a.id);
	CHECK(store_text_get(s, a.id, F_COMMAND, &buf, &len) == -ENOENT,
	      "unset text -> ENOENT");
	CHECK(store_text_put(s, a.id, F_COMMAND, "a\0b", 3) == 0, "put text");
	CHECK(store_text_get(s, a.id, F_COMMAND, &buf, &len) == 0 && len == 3 &&
	      !memcmp(buf, "a\0b", 3), "text keeps NUL bytes");
	free(buf);
	CHECK(store_begin(s) == 0, "begin");
	store_delete(s, a.id);
	store_rollback(s);
	CHECK(store_get(s, a.id, &got) == 0, "rollback keeps the row");
	store_begin(s);
	store_delete(s, a.id);
	CHECK(store_commit(s) == 0, "commit");
	CHECK(store_get(s, a.id, &got) == -ENOENT, "delete removes the row");
	CHECK(store_text_get(s, a.id, F_COMMAND, &buf, &len) == -ENOENT,
	      "delete removes texts");
	CHECK(store_reserve_size(s) == 0, "no reserve at first");
	CHECK(store_reserve(s, 1 << 20) == 0, "make a 1 MiB reserve");
	CHECK(store_reserve_size(s) == 1 << 20, "the reserve is 1 MiB");
	{
		struct stat st;

		snprintf(path, sizeof(path), "%s/ws.db-wal", dir);
		CHECK(!stat(path, &st) && st.st_size >= 1 << 20,
		      "the WAL is at least as long (%lld)",
		      (long long)st.st_size);
		snprintf(path, sizeof(path), "%s/ws.db", dir);
	}
	CHECK(store_reserve(s, 1 << 20) == 0, "making it again is a no-op");
	CHECK(store_release_reserve(s) == 1, "release the reserve");
	CHECK(store_reserve_size(s) == 0, "no reserve after the release");
	CHECK(store_release_reserve(s) == 0, "a second release finds none");
	CHECK(store_reserve(s, 1 << 20) == 0, "make it again");
	CHECK(store_check(s, &e) == 0, "integrity check ok");
	store_close(s);
	{
		struct stat st;

		snprintf(path, sizeof(path), "%s/ws.db-wal", dir);
		CHECK(!stat(path, &st) && st.st_size >= 1 << 20,
		      "the WAL keeps its length after the close");
		snprintf(path, sizeof(path), "%s/ws.db", dir);
	}
	rc = store_open(path, &s, &e);
	CHECK(rc == 0 && store_get(s, c.id, &got) == 0, "reopen keeps data");
	deployment_rows(s);
	CHECK(store_max_seq(s) == 0, "max seq");
	store_close(s);
	migration(dir);
	state_names();
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path))
		return 2;
	return tap_done();
}
