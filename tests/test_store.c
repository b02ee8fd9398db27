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
	snprintf(o.state, sizeof(o.state), "Draft");
	o.created = o.changed = 1.0;
	o.exit_code = -1;
	return o;
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
		CHECK(v == 4 && idx == 1, "schema version 4 with the listing"
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
	snprintf(a.state, sizeof(a.state), "Running");
	a.exit_code = 3;
	snprintf(a.backend_id, sizeof(a.backend_id), "pid 42");
	CHECK(store_update(s, &a) == 0, "update");
	store_get(s, a.id, &got);
	CHECK(!strcmp(got.state, "Running") && got.exit_code == 3 &&
	      !strcmp(got.backend_id, "pid 42"), "update persists fields");
	snprintf(c.name, sizeof(c.name), "r1");
	CHECK(store_update(s, &c) == -EEXIST, "rename onto a taken name");
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
	CHECK(store_max_seq(s) == 0, "max seq");
	store_close(s);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path))
		return 2;
	return tap_done();
}
