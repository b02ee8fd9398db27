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

	pthread_mutex_t ev_lock;	/* guards events_fd, events_size */
	int events_fd;
	off_t events_size;

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

/* ws.c, for worker.c */
void ws_inval(struct ws *ws, int64_t id, unsigned mask);
int ws_update_obj(struct ws *ws, struct obj *o, const char *expect,
		  unsigned mask);
int ws_load_config(struct ws *ws, int64_t id, struct kv_list *cfg,
		   struct err *e);
void ws_trash_empty(struct ws *ws);
int ws_read_text(struct ws *ws, int64_t id, int file, char **buf,
		 size_t *len);

#endif
