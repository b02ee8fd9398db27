// SPDX-License-Identifier: MIT
/*
 * A setting's text kept across `echo bad > resources`.
 *
 * The shell opens with O_TRUNC; the kernel sends that as a SETATTR of size
 * 0 (there are no OPEN requests: no_open), and only then the WRITE, which
 * is checked and may be refused.  Refused, the setting would stay empty:
 * bad input would have lost the old text.  So a truncate to 0 of a setting
 * keeps its text here, and the next write to it at offset 0 by the same
 * process, when refused, puts that text back.  A write that succeeds, or
 * comes from another process, or too late, only drops the kept text.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_i.h"

#define KEEP_SECS	10	/* open(O_TRUNC) to write(2): one shell line */

static double now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct kept *kept_find(struct mlfs *m, int64_t id, int file)
{
	for (int i = 0; i < NKEPT; i++)
		if (m->kept[i].buf && m->kept[i].id == id &&
		    m->kept[i].file == file)
			return &m->kept[i];
	return NULL;
}

static void kept_drop(struct kept *k)
{
	free(k->buf);
	k->buf = NULL;
}

/* Settings @file of object @id is about to be truncated to 0 by @pid. */
void trunc_keep(struct mlfs *m, int64_t id, int file, pid_t pid)
{
	struct kept *k;
	char *buf;
	size_t len;

	if (ws_render(m->ws, &(struct obj){ .id = id }, file, &buf, &len))
		return;
	if (!len) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&m->kept_lock);
	k = kept_find(m, id, file);
	if (!k)
		k = &m->kept[m->kept_next++ % NKEPT];
	kept_drop(k);
	*k = (struct kept){ .id = id, .file = file, .pid = pid, .buf = buf,
			    .len = len, .at = now_secs() };
	pthread_mutex_unlock(&m->kept_lock);
}

/* A write to that setting at @off by @pid ended with @rc. */
void trunc_written(struct mlfs *m, int64_t id, int file, pid_t pid,
		   off_t off, int rc)
{
	struct kept *k, mine = { 0 };

	pthread_mutex_lock(&m->kept_lock);
	k = kept_find(m, id, file);
	if (k) {
		mine = *k;
		k->buf = NULL;
	}
	pthread_mutex_unlock(&m->kept_lock);
	if (!mine.buf)
		return;
	/* EROFS: frozen meanwhile (submitted), nothing may change it */
	if (rc && rc != -EROFS && !off && mine.pid == pid &&
	    now_secs() - mine.at < KEEP_SECS)
		ws_setting_restore(m->ws, id, file, mine.buf, mine.len);
	free(mine.buf);
}

void trunc_free(struct mlfs *m)
{
	for (int i = 0; i < NKEPT; i++)
		kept_drop(&m->kept[i]);
}
