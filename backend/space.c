// SPDX-License-Identifier: MIT
/*
 * The workspace on a full disk.  What the daemon itself must still write
 * when the file system of the state dir is full -- a run's final state, a
 * refusal's sentence, a cancel, the removal that frees space -- has room
 * kept for it: the store's reserve (store_reserve: pages, and a WAL that
 * transactions rewrite in place) and room allocated past the end of
 * `events` (fallocate, FALLOC_FL_KEEP_SIZE).  The first write of the
 * workspace's own on a full disk frees the reserve's pages, before the
 * store would need to grow its file (a checkpoint that cannot grow it
 * leaves the WAL to grow, and then nothing commits); a write that still
 * fails for lack of space tries once more.  What users write (their files,
 * settings, new objects) gets ENOSPC.  Housekeeping makes the reserve
 * again once there is room.
 *
 * Below the core (ws.c): it writes no events line itself; the callers say
 * what space_use_reserve and space_tick did.  Runs on FUSE request threads
 * (before writes) and on the housekeeping worker (space_tick).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../lib/log.h"
#include "ws_i.h"

#define RESERVE_BYTES	(4 << 20)
#define EVENTS_ROOM	(256 << 10)
#define FULL_BYTES	(1 << 20)	/* less room than this: full */
#define TICK_S		(SPACE_TICK_MS / 1000.0)

/* Bytes a user may still write on the state dir's file system. */
static unsigned long long room(const struct ws *ws)
{
	struct statvfs sv;

	if (statvfs(ws->dir, &sv))
		return ~0ULL;
	return (unsigned long long)sv.f_bavail * sv.f_frsize;
}

int space_full(const struct ws *ws)
{
	return room(ws) < FULL_BYTES;
}

size_t ws_user_room(const struct ws *ws, size_t size)
{
	unsigned long long r = room(ws);

	if (r <= FULL_BYTES)
		return 0;
	return r - FULL_BYTES < size ? r - FULL_BYTES : size;
}

void space_note(const struct ws *ws, char *error, size_t size)
{
	size_t n = strlen(error);

	snprintf(error + n, size - n, "%sthe file system of the state dir %s"
		 " is full", n ? "; " : "", ws->dir);
}

/* Under ev_lock: keep room allocated past the end of events, so that its
 * lines are written on a full disk too. */
void space_events_room(struct ws *ws)
{
	if (ws->events_fd < 0 || ws->events_cannot ||
	    ws->events_room - ws->events_size > EVENTS_ROOM / 4)
		return;
	if (!fallocate(ws->events_fd, FALLOC_FL_KEEP_SIZE, ws->events_size,
		       EVENTS_ROOM))
		ws->events_room = ws->events_size + EVENTS_ROOM;
	else if (errno == EOPNOTSUPP)
		ws->events_cannot = 1;	/* the file system cannot */
}

static int make_reserve(struct ws *ws)
{
	int rc;

	/* on a full disk only see whether it is there (writing it fails) */
	if (room(ws) < 2 * RESERVE_BYTES + FULL_BYTES)
		rc = store_reserve_size(ws->st) >= RESERVE_BYTES ? 0 : -ENOSPC;
	else
		rc = store_reserve(ws->st, RESERVE_BYTES);

	pthread_mutex_lock(&ws->space_lock);
	ws->reserve_missing = rc != 0;
	pthread_mutex_unlock(&ws->space_lock);
	return rc;
}

void space_open(struct ws *ws)
{
	int rc = make_reserve(ws);

	if (rc)
		log_warn("no room for the store's reserve on the state dir %s"
			 " (%s): made when there is", ws->dir, strerror(-rc));
	pthread_mutex_lock(&ws->ev_lock);
	space_events_room(ws);
	pthread_mutex_unlock(&ws->ev_lock);
}

int space_before_write(struct ws *ws)
{
	int missing;

	pthread_mutex_lock(&ws->space_lock);
	missing = ws->reserve_missing;
	pthread_mutex_unlock(&ws->space_lock);
	return !missing && space_full(ws) ? space_use_reserve(ws) : 0;
}

int space_use_reserve(struct ws *ws)
{
	int rc;

	pthread_mutex_lock(&ws->space_lock);
	rc = store_release_reserve(ws->st);
	if (rc > 0)
		ws->reserve_missing = 1;
	pthread_mutex_unlock(&ws->space_lock);
	if (rc <= 0)
		return 0;
	log_warn("no space left on the file system of the state dir %s: the"
		 " store uses its reserve", ws->dir);
	return 1;
}

int space_tick(struct ws *ws)
{
	int missing;

	if (wall_s() - ws->space_checked < TICK_S)
		return 0;
	ws->space_checked = wall_s();
	pthread_mutex_lock(&ws->ev_lock);
	space_events_room(ws);
	pthread_mutex_unlock(&ws->ev_lock);
	pthread_mutex_lock(&ws->space_lock);
	missing = ws->reserve_missing;
	pthread_mutex_unlock(&ws->space_lock);
	if (!missing || make_reserve(ws))
		return 0;
	log_info("space is back on the state dir %s: the store's reserve is"
		 " made again", ws->dir);
	return 1;
}
