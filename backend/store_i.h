/* SPDX-License-Identifier: MIT */
/*
 * Private to the store module (store.c: the statements and their calls;
 * store_schema.c: the schema and its migrations).  No other file sees
 * SQL.
 */
#ifndef MLFS_STORE_I_H
#define MLFS_STORE_I_H

#include <pthread.h>
#include <sqlite3.h>

#include "store.h"

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_GET, S_FIND, S_INSERT, S_UPDATE, S_DELETE, S_DELETE_TEXTS,
	S_LIST, S_ACTIVE, S_BUSY_TARGETS, S_COUNT_ACTIVE, S_MAX_SEQ, S_IDS,
	S_TEXT_GET, S_TEXT_PUT,
	S_NEXT_VERSION, S_VERSION_USERS, S_LIVE_DEPLOYMENTS, S_KIND_STATE,
	S_RESERVE_SIZE, S_RESERVE_PUT, S_RESERVE_DROP, S_SET_OWNER,
	S_DEP_PUT, S_DEP_DELETE, S_REPS_GET, S_REPS_DELETE, S_REP_PUT,
	S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO, S_HELD_IMAGES,
	S_COUNT
};
/* SQL of each statement, by enum stmt_id (store.c). */
extern const char *const stmt_sql[S_COUNT];

struct store {
	pthread_mutex_t lock;	/* recursive; guards db and stmt[] */
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	char *wal_path;		/* <db>-wal */
};
/* store.c */
/* Log @what with SQLite's message; @rc as -errno. */
int sql_fail(struct store *s, int rc, const char *what);
/* Run @sql (several statements); 0 or -errno, logged. */
int sql_exec(struct store *s, const char *sql);
/* The value of a PRAGMA that answers one integer, or -1. */
int sql_pragma_int(struct store *s, const char *sql);
/* Column @col as text into @dst ("" for NULL). */
void sql_col_text(sqlite3_stmt *st, int col, char *dst, size_t sz);
/* Write deployment @id's own row and its replicas (replacing theirs);
 * uses S_DEP_PUT, S_REPS_DELETE, S_REP_PUT. */
int store_dep_put(struct store *s, int64_t id, const struct dep_row *d);

/* Prepare every statement of the table; 0 or -errno + sentence. */
int store_prepare_all(struct store *s, struct err *e);

#endif
