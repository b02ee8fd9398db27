// SPDX-License-Identifier: MIT
/*
 * runs/NAME/wait: a READ answered once the run is final, with its state.
 * The request is kept, not a thread: wait_read() files it and returns,
 * and the hook that learns of the run's last transition (inval.c's
 * hook_files, on the thread that committed it) answers it.  The run's
 * removal answers it ENOENT, the end of the session EIO.
 *
 * The kernel opens files itself here (FUSE_CAP_NO_OPEN_SUPPORT), so the
 * READ comes from the page cache: one readahead for the file's page,
 * sent in the background (async read), which every reader of that run's
 * wait then waits for, on the page's lock: 50 readers, one request.  A
 * reader's Ctrl-C ends its own wait (a killable one) and no INTERRUPT
 * comes: the request stays filed for the next reader, until the run
 * ends.  A READ sent synchronously (a kernel that opens through us, or
 * without async read) is interrupted: then wait_interrupted answers it
 * EINTR.
 *
 * Who answers a request is decided under w_lock: whoever takes it off the
 * list.  No lock is held across a reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

struct waiter {
	fuse_req_t req;
	int64_t id;		/* the run */
	size_t size;
	off_t off;
	struct waiter *next;
};

/* The bytes of a final run's wait file: its state and a newline. */
static size_t wait_text(const struct obj *o, char *buf, size_t sz)
{
	return (size_t)snprintf(buf, sz, "%s\n", state_name(o->state));
}

off_t wait_size(const struct obj *o)
{
	char buf[32];

	/* until then a page the READ fills (the kernel asks nothing past
	 * the size it knows, and trims it to the short answer) */
	return ws_obj_settled(o) ? (off_t)wait_text(o, buf, sizeof(buf))
					 : WAIT_SIZE;
}

static void reply_state(fuse_req_t req, const struct obj *o, size_t size,
			off_t off)
{
	char buf[32];
	size_t len = wait_text(o, buf, sizeof(buf));

	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf + off, len - off < size ? len - off
							   : size);
}

/* Take the waiter of @req off the list: it is ours to answer. */
static struct waiter *take_req(struct mlfs *m, fuse_req_t req)
{
	struct waiter **pp, *w = NULL;

	pthread_mutex_lock(&m->w_lock);
	for (pp = &m->waiters; *pp; pp = &(*pp)->next) {
		if ((*pp)->req == req) {
			w = *pp;
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&m->w_lock);
	return w;
}

/* libfuse calls this with the request alive; @req is looked up, never a
 * waiter pointer kept: another thread may have answered and freed it. */
static void wait_interrupted(fuse_req_t req, void *data)
{
	struct waiter *w = take_req(data, req);

	if (!w)
		return;
	free(w);
	fuse_reply_err(req, EINTR);
}

/*
 * File @req, a READ of the wait file of run @id, unless it can be
 * answered now: the run is final (or gone), the session ends, or the
 * reader was interrupted before the interrupt function was set.
 */
void wait_read(fuse_req_t req, struct mlfs *m, int64_t id, size_t size,
	       off_t off)
{
	struct waiter *w = calloc(1, sizeof(*w));
	struct obj o;
	int rc;

	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	*w = (struct waiter){ .req = req, .id = id, .size = size, .off = off };
	/* set first: once filed, another thread may answer and free @req */
	fuse_req_interrupt_func(req, wait_interrupted, m);
	pthread_mutex_lock(&m->w_lock);
	rc = m->w_stop ? -EIO : fuse_req_interrupted(req) ? -EINTR :
	     ws_get(m->ws, id, &o);
	if (!rc && !ws_obj_settled(&o)) {
		w->next = m->waiters;
		m->waiters = w;
		pthread_mutex_unlock(&m->w_lock);
		return;
	}
	pthread_mutex_unlock(&m->w_lock);
	free(w);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_state(req, &o, size, off);
}

/* Move the waiters @pick chooses from the list to *@out (under w_lock). */
static void take_if(struct mlfs *m, struct waiter **out,
		    int (*pick)(struct mlfs *m, struct waiter *w, void *arg),
		    void *arg)
{
	struct waiter **pp = &m->waiters, *w;

	while ((w = *pp)) {
		if (pick(m, w, arg)) {
			*pp = w->next;
			w->next = *out;
			*out = w;
		} else {
			pp = &w->next;
		}
	}
}

static int pick_id(struct mlfs *m, struct waiter *w, void *arg)
{
	(void)m;
	return w->id == *(int64_t *)arg;
}

/* Answer each of @list: with the run's state when it is final, else
 * with @err (the run is gone, the session ends). */
static void answer_all(struct mlfs *m, struct waiter *list, int err)
{
	struct waiter *w;
	struct obj o;

	while ((w = list)) {
		list = w->next;
		if (!err && !ws_get(m->ws, w->id, &o) &&
		    ws_obj_settled(&o))
			reply_state(w->req, &o, w->size, w->off);
		else
			fuse_reply_err(w->req, err ? err : ENOENT);
		free(w);
	}
}

void wait_changed(struct mlfs *m, const struct obj *o)
{
	struct waiter *list = NULL;
	int64_t id = o->id;

	if (!ws_obj_settled(o))	/* only runs have waiters */
		return;
	pthread_mutex_lock(&m->w_lock);
	take_if(m, &list, pick_id, &id);
	pthread_mutex_unlock(&m->w_lock);
	answer_all(m, list, 0);
}

static int pick_gone(struct mlfs *m, struct waiter *w, void *arg)
{
	struct obj o;

	(void)arg;
	return ws_get(m->ws, w->id, &o) == -ENOENT;
}

void wait_sweep(struct mlfs *m)
{
	struct waiter *list = NULL;

	pthread_mutex_lock(&m->w_lock);
	take_if(m, &list, pick_gone, NULL);
	pthread_mutex_unlock(&m->w_lock);
	answer_all(m, list, ENOENT);
}

void wait_stop(struct mlfs *m)
{
	struct waiter *list;

	pthread_mutex_lock(&m->w_lock);
	m->w_stop = 1;
	list = m->waiters;
	m->waiters = NULL;
	pthread_mutex_unlock(&m->w_lock);
	answer_all(m, list, EIO);
}
