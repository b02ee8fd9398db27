/* SPDX-License-Identifier: MIT */
/* Private to backend/: the workspace structure shared by ws.c and worker.c. */
#ifndef MLFS_WS_I_H
#define MLFS_WS_I_H

#include <pthread.h>
#include <stdint.h>

#include "store.h"
#include "ws.h"

struct tworker;

struct ws {
	char *dir;			/* state dir, absolute */
	char events_path[4096];
	struct store *st;
	struct ws_hooks hooks;		/* set once before ws_start */
	int ncpu;

	pthread_mutex_t ev_lock;	/* guards events_fd, events_size,
					 * events_room, events_cannot */
	int events_fd;
	off_t events_size;
	off_t events_room;		/* allocated up to here (space.c) */
	int events_cannot;		/* the fs cannot allocate ahead */

	pthread_mutex_t space_lock;	/* guards reserve_missing */
	int reserve_missing;		/* the store's reserve is used up */
	double space_checked;		/* housekeeping thread only */

	pthread_mutex_t seq_lock;	/* guards seq */
	int64_t seq;

	/* workers: one thread per target with work, plus housekeeping */
	pthread_mutex_t req_lock;	/* guards workers, stopping */
	struct tworker *workers;
	int stopping;
	int started;			/* ws_start ran: workers may start */
	int opened;			/* ws_open completed: mark a clean stop */
};

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* worker.c */
int worker_start(struct ws *ws);
void worker_stop(struct ws *ws);
/* Ask the worker to look at object @id again (new submit, cancel, …). */
void worker_kick(struct ws *ws, int64_t id);

/* space.c: the workspace on a full disk */
#define SPACE_TICK_MS	5000		/* housekeeping looks this often */
/* At ws_open: the store's reserve and room ahead in events. */
void space_open(struct ws *ws);
/* Before a write of the workspace's own: on a full disk, free the store's
 * reserve (once) so that the store grows into it, not the disk. */
void space_before_write(struct ws *ws);
/* Such a write failed with ENOSPC: free the reserve if still there.  1
 * when the caller may try once more. */
int space_use_reserve(struct ws *ws);
/* Housekeeping: make the reserve again when there is room. */
void space_tick(struct ws *ws);
/* 1 when the state dir's file system has (almost) no room left. */
int space_full(const struct ws *ws);
/* Append "the file system of the state dir … is full" to @error. */
void space_note(const struct ws *ws, char *error, size_t size);
/* Under ev_lock, after an append: keep room allocated past its end. */
void space_events_room(struct ws *ws);

/* ws.c, for worker.c and space.c */
/* One events line, "<time> <kind> <name> <text>". */
void ws_event_line(struct ws *ws, const char *kind, const char *name,
		   const char *text);
void ws_inval(struct ws *ws, int64_t id, unsigned mask);
int ws_update_obj(struct ws *ws, struct obj *o, const char *expect,
		  unsigned mask);
int ws_load_config(struct ws *ws, int64_t id, struct kv_list *cfg,
		   struct err *e);
void ws_trash_empty(struct ws *ws);
int ws_read_text(struct ws *ws, int64_t id, int file, char **buf,
		 size_t *len);

#endif
