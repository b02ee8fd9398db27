// SPDX-License-Identifier: MIT
/*
 * Workers: one thread per target that has work (its runs, its
 * provisioning), so that a slow or unreachable engine delays only its own
 * runs; target id 0 is housekeeping (emptying the trash).  A worker owns
 * its struct target_ctx and run_ctx: no other thread touches them.
 * FUSE threads talk to a worker only through worker_kick() (ws.c), which
 * calls worker_wake through the hook ws_open.c registers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy_i.h"
#include "endpoint_i.h"
#include "env_i.h"
#include "../lib/log.h"
#include "../lib/plot.h"
#include "../lib/vec.h"
#include "ws_i.h"

#define MAX_KICKS	4096

struct tworker {
	struct ws *ws;
	int64_t target_id;		/* 0: housekeeping */
	pthread_t thr;
	int wake_fd;			/* eventfd */
	pthread_mutex_t lock;		/* guards kicks, overflow */
	VEC(int64_t) kicks;		/* ids to look at again */
	int overflow;			/* too many kicks: rescan the store */
	struct tworker *next;		/* ws->workers, under ws->req_lock */

	/* worker thread only */
	struct target_ctx t;
	int have_target;
	struct run_ctx *runs;		/* tracked runs, by seq */
	int ino_fd;			/* inotify on started runs' folders */
	double ino_last;		/* when inotify last woke us */
	double refreshed;		/* when nodes were last refreshed */
	struct deploy_ctx *deps;	/* tracked deployments (deploy_sm.c) */
};

/* Log growth is seen at once through inotify, but at most this often. */
#define INOTIFY_MIN_S	0.01
#define TICK_MS		200

/* ---- run contexts ---------------------------------------------------------- */

static void run_free(struct tworker *w, struct run_ctx *r)
{
	if (r->watch >= 0 && w->ino_fd >= 0)
		inotify_rm_watch(w->ino_fd, r->watch);
	if (w->have_target && w->t.drv->release_run)
		w->t.drv->release_run(&w->t, r);
	free(r->command);
	kv_free(&r->env);
	free(r->inputs);
	free(r);
}

static struct run_ctx *run_find(struct tworker *w, int64_t id)
{
	for (struct run_ctx *r = w->runs; r; r = r->next)
		if (r->obj.id == id)
			return r;
	return NULL;
}

/* Insert @r keeping the list in seq (FIFO) order. */
static void run_insert(struct tworker *w, struct run_ctx *r)
{
	struct run_ctx **pp = &w->runs;

	while (*pp && (*pp)->obj.seq < r->obj.seq)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
}

static int run_load_settings(struct ws *ws, struct run_ctx *r,
			     struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, r->obj.id, F_COMMAND, &r->command, &len);
	if (rc)
		return err_set(e, rc, "cannot read command");
	rc = ws_read_text(ws, r->obj.id, F_ENV, &buf, &len);
	if (!rc) {
		rc = env_parse(buf, len, &r->env, e);
		free(buf);
	}
	if (!rc && !(rc = ws_read_text(ws, r->obj.id, F_RESOURCES, &buf,
					&len))) {
		rc = resources_parse(buf, len, &r->res, e);
		free(buf);
	}
	if (!rc && !(rc = ws_read_text(ws, r->obj.id, F_AFTER, &buf, &len))) {
		rc = after_parse(buf, len, &r->after, e);
		free(buf);
	}
	if (!rc) {
		run_inputs_runs(ws, r->obj.id, &r->after);
		rc = run_inputs_resolve(ws, r, e);
	}
	if (!rc && !store_text_get(ws->st, r->obj.id, TEXT_RUN_IMAGE, &buf,
				   &len)) {
		snprintf(r->image, sizeof(r->image), "%s", buf);
		free(buf);
	}
	return rc;
}

static struct run_ctx *run_new(struct tworker *w, const struct obj *o)
{
	struct run_ctx *r;
	struct err e = { { 0 } };
	char path[PATH_MAX];
	struct stat st;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ws = w->ws;
	r->obj = *o;
	r->t = &w->t;
	r->wait_fd = -1;
	r->watch = -1;
	ws_obj_path(w->ws, o->id, NULL, r->dir);
	if (run_load_settings(w->ws, r, &e)) {
		ws_run_transition(w->ws, r, RS_FAILED, -1, e.msg);
		run_free(w, r);
		return NULL;
	}
	ws_obj_path(w->ws, o->id, RUN_LOG, path);
	if (!stat(path, &st))
		r->log_size = st.st_size;
	return r;
}

/* ---- target ------------------------------------------------------------ */

static int target_load(struct tworker *w, struct err *e)
{
	struct target_ctx *t = &w->t;
	struct obj o;
	int rc;

	rc = ws_get(w->ws, w->target_id, &o);
	if (rc)
		return err_set(e, rc, "target %lld vanished",
			       (long long)w->target_id);
	if (w->have_target && !strcmp(o.type, t->obj.type)) {
		t->obj = o;
		kv_free(&t->config);
		return ws_load_config(w->ws, o.id, &t->config, e);
	}
	if (w->have_target && t->drv->release)
		t->drv->release(t);
	kv_free(&t->config);
	memset(t, 0, sizeof(*t));
	t->ws = w->ws;
	t->obj = o;
	t->drv = driver_find(o.type);
	w->have_target = t->drv != NULL;
	if (!t->drv)
		return err_set(e, -EINVAL, "unknown type '%s'", o.type);
	return ws_load_config(w->ws, o.id, &t->config, e);
}

static int target_to(struct tworker *w, enum obj_state state,
		     const char *error)
{
	struct obj o = w->t.obj;

	o.state = state;
	snprintf(o.error, sizeof(o.error), "%s", error ? error : "");
	if (ws_update_obj(w->ws, &o, w->t.obj.state, FBIT(F_NODES) |
			  FBIT(F_CTL)))
		return -EAGAIN;
	w->t.obj = o;
	return 0;
}

static void target_provision(struct tworker *w)
{
	struct err e = { { 0 } };
	char *nodes = NULL;
	int rc;

	rc = target_load(w, &e);
	if (!rc && w->t.drv->provision)
		rc = w->t.drv->provision(&w->t, &nodes, &e);
	if (!rc && nodes)
		ws_target_set_nodes(w->ws, &w->t, nodes);
	free(nodes);
	if (rc)
		target_to(w, TS_FAILED, e.msg[0] ? e.msg : strerror(-rc));
	else
		target_to(w, TS_SUCCEEDED, NULL);
}

static void target_deprovision(struct tworker *w)
{
	struct err e = { { 0 } };
	int rc;

	rc = target_load(w, &e);
	if (!rc && w->t.drv->deprovision)
		rc = w->t.drv->deprovision(&w->t, &e);
	if (rc) {
		target_to(w, TS_FAILED, e.msg[0] ? e.msg : strerror(-rc));
		return;
	}
	ws_target_set_nodes(w->ws, &w->t, "");
	target_to(w, TS_DRAFT, NULL);
}

/* Updating: the driver applies the live keys (resize); runs go on. */
static void target_update(struct tworker *w)
{
	struct err e = { { 0 } };
	char *nodes = NULL;
	int rc = 0;

	if (w->t.drv->update)
		rc = w->t.drv->update(&w->t, &nodes, &e);
	if (nodes)
		ws_target_set_nodes(w->ws, &w->t, nodes);
	free(nodes);
	target_to(w, TS_SUCCEEDED, rc ? (e.msg[0] ? e.msg : strerror(-rc))
				       : NULL);
}

/* Refresh nodes (e.g. GPU detection of the local target at start-up). */
static void target_refresh(struct tworker *w)
{
	struct err e = { { 0 } };
	char *nodes = NULL;

	if (w->t.drv->refresh && !w->t.drv->refresh(&w->t, &nodes, &e) &&
	    nodes)
		ws_target_set_nodes(w->ws, &w->t, nodes);
	free(nodes);
}

static void target_step(struct tworker *w)
{
	struct err e = { { 0 } };

	if (target_load(w, &e)) {
		log_warn("target %lld: %s", (long long)w->target_id, e.msg);
		return;
	}
	if (w->t.obj.state == TS_CREATING)
		target_provision(w);
	else if (w->t.obj.state == TS_DELETING)
		target_deprovision(w);
	else if (w->t.obj.state == TS_UPDATING)
		target_update(w);
}

/* An idle target's nodes are refreshed every refresh_seconds (a busy one
 * refreshes them from its poll). */
static int idle_refresh_due(struct tworker *w)
{
	int every = w->t.drv->refresh_seconds;

	if (every <= 0 || w->t.obj.state != TS_SUCCEEDED)
		return 0;
	if (wall_s() - w->refreshed < every)
		return 0;
	w->refreshed = wall_s();
	return 1;
}

/* ---- runs ------------------------------------------------------------- */

/* A run the store says is active: track it (adopting it after a restart). */
static void run_track(struct tworker *w, const struct obj *o)
{
	struct err e = { { 0 } };
	struct run_ctx *r;
	int rc;

	r = run_new(w, o);
	if (!r)
		return;
	if (o->state != RS_QUEUED || o->backend_id[0]) {
		rc = w->t.drv->adopt ? w->t.drv->adopt(&w->t, r, &e) : -ENOENT;
		if (rc == 0) {
			r->started = 1;
			run_metrics_recover(w->ws, r);
			log_info("adopted run %s (%s)", o->name, o->backend_id);
		} else if (rc != -ENOENT) {
			ws_run_transition(w->ws, r, RS_FAILED, -1, e.msg);
			run_free(w, r);
			return;
		}
		/* -ENOENT: it never reached the engine: start it again */
	}
	run_insert(w, r);
}

static void kick_one(struct tworker *w, int64_t id)
{
	struct run_ctx *r;
	struct obj o;

	/* housekeeping: the trash is emptied anyway; the endpoints' worker
	 * looks at all of them each time */
	if (w->target_id <= 0)
		return;
	if (id == w->target_id) {
		target_step(w);
		return;
	}
	if (!ws_get(w->ws, id, &o) && o.kind == K_DEPLOYMENT) {
		if (w->have_target)
			deploy_track(&w->t, &w->deps, &o);
		return;
	}
	if (ws_get(w->ws, id, &o) || o.kind != K_RUN)
		return;
	r = run_find(w, id);
	if (r)
		r->obj = o;
	else if (run_state_active(o.state))
		run_track(w, &o);
}

static int active_cb(void *arg, const struct obj *o)
{
	struct tworker *w = arg;

	if (o->target_id == w->target_id && !run_find(w, o->id))
		run_track(w, o);
	return 0;
}

static void drain_kicks(struct tworker *w)
{
	int64_t *ids;
	size_t n;
	int overflow;

	pthread_mutex_lock(&w->lock);
	ids = w->kicks.v;
	n = w->kicks.n;
	overflow = w->overflow;
	w->kicks.v = NULL;
	w->kicks.n = w->kicks.cap = 0;
	w->overflow = 0;
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++)
		kick_one(w, ids[i]);
	free(ids);
	if (overflow)
		store_list_active_runs(w->ws->st, active_cb, w);
}

static void run_cancel_step(struct tworker *w, struct run_ctx *r)
{
	struct err e = { { 0 } };

	if (!r->obj.cancel || run_state_final(r->obj.state))
		return;
	if (!r->started) {
		ws_run_transition(w->ws, r, RS_CANCELED, -1, NULL);
		return;
	}
	/* the engine held it for its `after`: no longer waiting */
	if (!strncmp(r->obj.error, "waiting for ", 12))
		ws_run_note(w->ws, r, NULL);
	if (w->t.drv->cancel && w->t.drv->cancel(&w->t, r, &e))
		ws_run_note(w->ws, r, e.msg);
}

/*
 * The owner of a queued run may still use the target: one made private
 * since the submit takes no more runs of others (their runs fail with
 * the reason); runs already on the engine go on, as an open file does.
 */
static int still_usable(struct tworker *w, struct run_ctx *r)
{
	struct err e = { { 0 } };
	struct obj t;

	if (ws_get(w->ws, w->target_id, &t) ||
	    !ws_target_usable(&t, r->obj.uid, r->obj.gid, &e))
		return 1;
	ws_run_transition(w->ws, r, RS_FAILED, -1, e.msg);
	return 0;
}

/*
 * `after`: a run waits, saying for which runs in `error`, until they all
 * ended as it needs, without holding its place (first come, first served
 * among the runs that may start); one that ended otherwise cancels it.
 * Once ready it stays so: its runs are final.
 */
static int after_ready(struct tworker *w, struct run_ctx *r)
{
	char why[ERR_MSG_MAX];
	int st;

	if (!r->after.n)
		return 1;
	st = run_after_state(w->ws, &r->after, why, sizeof(why));
	if (st == AFTER_WAIT) {
		ws_run_note(w->ws, r, why);
	} else if (st == AFTER_CANCEL) {
		ws_run_transition(w->ws, r, RS_CANCELED, -1, why);
	} else {
		r->after.n = 0;
		if (!strncmp(r->obj.error, "waiting for ", 12))
			ws_run_note(w->ws, r, NULL);
	}
	return st == AFTER_READY;
}

/*
 * @r's `after` as the engine can hold it: every run not ended yet is
 * started on this target (one that ended as needed drops out).  The
 * count in @deps, or -1 when one is elsewhere or not started: then the
 * worker waits for it itself.
 */
static int held_deps(struct tworker *w, struct run_ctx *r,
		     struct run_dep *deps)
{
	struct run_ctx *d;
	struct obj o;
	int n = 0;

	for (int i = 0; i < r->after.n; i++) {
		if (ws_find(w->ws, K_RUN, 0, r->after.deps[i].name, &o))
			return -1;
		if (run_state_final(o.state))
			continue;	/* ended as needed: AFTER_WAIT says */
		d = run_find(w, o.id);
		if (!d || !d->started)
			return -1;
		deps[n].run = d;
		deps[n++].any = r->after.deps[i].any;
	}
	return n;
}

/* "waiting for prep (Slurm dependency)": the engine holds @r. */
static void held_note(struct tworker *w, struct run_ctx *r, const char *why)
{
	char note[ERR_MSG_MAX];

	snprintf(note, sizeof(note), "%.*s (%s)", ERR_MSG_MAX - 64, why,
		 w->t.drv->after_by ? w->t.drv->after_by : "held by the"
		 " target");
	ws_run_note(w->ws, r, note);
}

/*
 * A run with `after` on a target whose engine can hold it: handed to the
 * engine at once, with its dependencies, when every run it waits for is
 * started here.  1 when done so (or failed), 0 when the worker waits.
 */
static int start_held(struct tworker *w, struct run_ctx *r)
{
	struct run_dep deps[AFTER_MAX];
	struct err e = { { 0 } };
	char why[ERR_MSG_MAX];
	int n, rc;

	if (!w->t.drv->start_after ||
	    run_after_state(w->ws, &r->after, why, sizeof(why)) != AFTER_WAIT)
		return 0;
	n = held_deps(w, r, deps);
	if (n <= 0)
		return 0;
	if (!still_usable(w, r))
		return 1;
	/* no ->can_start: the engine queues it, and it cannot start before
	 * the runs it waits for, which hold its place */
	rc = w->t.drv->start_after(&w->t, r, deps, n, &e);
	if (rc == 1)
		return 0;
	if (rc && !run_state_final(r->obj.state))
		ws_run_transition(w->ws, r, RS_FAILED, -1, e.msg);
	else if (!rc && r->started && r->obj.state == RS_QUEUED)
		held_note(w, r, why);
	return 1;
}

/*
 * A run the engine holds for its `after` (or any started run whose `after`
 * is not settled yet, as after a restart): while it is Queued, `error`
 * says for which runs; when one of them ended otherwise than it needs,
 * it is canceled with the sentence the worker's own wait gives.  Once it
 * left Queued the engine has decided: the runs ended as it needed.
 */
static void after_held(struct tworker *w, struct run_ctx *r)
{
	char why[ERR_MSG_MAX];
	int st;

	if (!r->started || !r->after.n || r->obj.cancel ||
	    run_state_final(r->obj.state))
		return;
	st = run_after_state(w->ws, &r->after, why, sizeof(why));
	if (r->obj.state == RS_QUEUED && st == AFTER_CANCEL) {
		ws_run_cancel_for(w->ws, r, why);	/* next tick: cancel */
		return;
	}
	if (r->obj.state == RS_QUEUED && st == AFTER_WAIT) {
		held_note(w, r, why);
		return;
	}
	if (st != AFTER_WAIT || r->obj.state != RS_QUEUED)
		r->after.n = 0;
	if (!strncmp(r->obj.error, "waiting for ", 12))
		ws_run_note(w->ws, r, NULL);
}

static void schedule(struct tworker *w)
{
	struct err e;

	if (w->t.obj.state != TS_SUCCEEDED &&
	    w->t.obj.state != TS_UPDATING)
		return;
	for (struct run_ctx *r = w->runs; r; r = r->next) {
		/* Starting and not started: adoption found it never reached
		 * the engine (a crash between the two): start it now */
		if (r->started || r->obj.cancel ||
		    (r->obj.state != RS_QUEUED &&
		     r->obj.state != RS_STARTING))
			continue;
		if (r->after.n && start_held(w, r))
			continue;
		if (!after_ready(w, r) || !still_usable(w, r))
			continue;
		if (w->t.drv->can_start && !w->t.drv->can_start(&w->t, r))
			break;		/* FIFO: nobody overtakes */
		memset(&e, 0, sizeof(e));
		if (w->t.drv->start(&w->t, r, &e) && !run_state_final(r->obj.state))
			ws_run_transition(w->ws, r, RS_FAILED, -1, e.msg);
	}
}

static void watch_log(struct tworker *w, struct run_ctx *r)
{
	char path[PATH_MAX];
	struct stat st;

	if (r->watch < 0 && w->ino_fd >= 0)
		r->watch = inotify_add_watch(w->ino_fd, r->dir, IN_MODIFY |
					     IN_CREATE | IN_MOVED_TO);
	ws_obj_path(w->ws, r->obj.id, RUN_LOG, path);
	if (stat(path, &st) || st.st_size == r->log_size)
		return;
	if (w->ws->hooks.inval_grow)
		w->ws->hooks.inval_grow(w->ws->hooks.ctx, r->obj.id, F_LOG,
					r->log_size);
	r->log_size = st.st_size;
}

/* Log and metrics growth of every started run (cheap: one stat each). */
static void watch_files(struct tworker *w)
{
	for (struct run_ctx *r = w->runs; r; r = r->next) {
		if (r->started) {
			watch_log(w, r);
			run_metrics_pump(w->ws, r);
			run_params_pump(w->ws, r);
			run_plot_refresh(w->ws, r,
					 run_state_final(r->obj.state));
		}
	}
	deploy_watch_logs(w->deps);
}

static void runs_step(struct tworker *w)
{
	struct run_ctx **pp, *r, *started[256];
	int n = 0;

	for (r = w->runs; r; r = r->next)
		run_cancel_step(w, r);
	for (r = w->runs; r; r = r->next) {
		if (!r->started || run_state_final(r->obj.state))
			continue;
		started[n++] = r;
		if (n == (int)(sizeof(started) / sizeof(started[0]))) {
			w->t.drv->poll(&w->t, started, n);
			n = 0;
		}
	}
	if (n)
		w->t.drv->poll(&w->t, started, n);
	for (r = w->runs; r; r = r->next)
		after_held(w, r);
	schedule(w);
	watch_files(w);
	for (pp = &w->runs; (r = *pp);) {
		if (run_state_final(r->obj.state) ||
		    !run_state_active(r->obj.state)) {
			*pp = r->next;
			run_free(w, r);
			continue;
		}
		pp = &r->next;
	}
}

/* ---- the loop ------------------------------------------------------------ */

/*
 * Sleep until a kick, a run's wait_fd, file growth (inotify, coalesced to
 * INOTIFY_MIN_S) or the tick.  Returns 1 when only files grew.
 */
static int wait_events(struct tworker *w)
{
	struct pollfd pfd[64];
	int n = 0, timeout = -1, ino_at = -1, other;
	char buf[4096];
	uint64_t v;

	pfd[n++] = (struct pollfd){ .fd = w->wake_fd, .events = POLLIN };
	if (w->have_target && w->t.drv->refresh_seconds > 0)
		timeout = w->t.drv->refresh_seconds * 1000;
	if (!w->target_id)
		timeout = SPACE_TICK_MS;	/* housekeeping */
	if (w->target_id == EP_WORKER_ID)
		timeout = EP_TICK_MS;
	if (w->target_id == ENV_WORKER_ID)
		timeout = env_timeout_ms();
	for (struct run_ctx *r = w->runs; r; r = r->next) {
		if (r->wait_fd >= 0 && n < 63)
			pfd[n++] = (struct pollfd){ .fd = r->wait_fd,
						    .events = POLLIN };
		timeout = TICK_MS;
	}
	timeout = deploy_timeout_ms(w->deps, timeout);
	if (w->ino_fd >= 0 && (w->runs || w->deps)) {
		if (wall_s() - w->ino_last >= INOTIFY_MIN_S) {
			ino_at = n;
			pfd[n++] = (struct pollfd){ .fd = w->ino_fd,
						    .events = POLLIN };
		} else {
			timeout = (int)(INOTIFY_MIN_S * 1000) + 1;
		}
	}
	if (poll(pfd, n, timeout) < 0 && errno != EINTR)
		return 0;
	if ((pfd[0].revents & POLLIN) && read(w->wake_fd, &v, sizeof(v)) < 0) {
		/* a spurious wake-up */
	}
	other = 0;
	for (int i = 0; i < n; i++)
		if (i != ino_at && pfd[i].revents)
			other = 1;
	if (ino_at >= 0 && (pfd[ino_at].revents & POLLIN)) {
		while (read(w->ino_fd, buf, sizeof(buf)) > 0)
			;
		w->ino_last = wall_s();
		return !other;
	}
	return 0;
}

static int stopping(struct ws *ws)
{
	int s;

	pthread_mutex_lock(&ws->req_lock);
	s = ws->stopping;
	pthread_mutex_unlock(&ws->req_lock);
	return s;
}

/* Housekeeping: the store's reserve made again is said in events. */
static void space_ticked(struct ws *ws)
{
	if (space_tick(ws))
		ws_event_line(ws, "workspace", "-", "space is back: the"
			      " store's reserve is made again");
}

static void *worker_main(void *arg)
{
	struct tworker *w = arg;
	struct err e = { { 0 } };

	if (w->target_id > 0 && target_load(w, &e))
		log_warn("worker for target %lld: %s", (long long)w->target_id,
			 e.msg);
	else if (w->target_id > 0 && w->t.obj.state == TS_SUCCEEDED) {
		target_refresh(w);	/* e.g. GPUs, before adopting runs */
		w->refreshed = wall_s();
	}
	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	while (!stopping(w->ws)) {
		drain_kicks(w);
		if (!w->target_id) {
			ws_trash_empty(w->ws);
			env_prune(w->ws);
			space_ticked(w->ws);
			ep_orphans(w->ws);
		} else if (w->target_id == EP_WORKER_ID) {
			ep_step(w->ws);
		} else if (w->target_id == ENV_WORKER_ID) {
			env_step(w->ws);
		} else if (w->have_target)
			runs_step(w);
		if (w->target_id && w->have_target && w->deps)
			deploy_step(&w->t, &w->deps, w->ino_fd);
		if (w->have_target && !w->runs && idle_refresh_due(w))
			target_refresh(w);
		while (wait_events(w) && !stopping(w->ws))
			watch_files(w);
	}
	deploy_release_all(&w->t, &w->deps, w->ino_fd);
	if (w->target_id == EP_WORKER_ID)
		ep_release();
	if (w->target_id == ENV_WORKER_ID)
		env_release();
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	while (w->runs) {
		struct run_ctx *r = w->runs;

		w->runs = r->next;
		run_free(w, r);
	}
	if (w->have_target && w->t.drv->release)
		w->t.drv->release(&w->t);
	kv_free(&w->t.config);
	return NULL;
}

static struct tworker *worker_new(struct ws *ws, int64_t target_id)
{
	struct tworker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->ws = ws;
	w->target_id = target_id;
	pthread_mutex_init(&w->lock, NULL);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0 || pthread_create(&w->thr, NULL, worker_main, w)) {
		log_err("cannot start a worker: %s", strerror(errno));
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		free(w);
		return NULL;
	}
	return w;
}

/* The worker of @target_id, started on first use.  Under ws->req_lock. */
static struct tworker *worker_get(struct ws *ws, int64_t target_id)
{
	struct tworker *w;

	for (w = ws->workers; w; w = w->next)
		if (w->target_id == target_id)
			return w;
	if (ws->stopping || !ws->started)
		return NULL;
	w = worker_new(ws, target_id);
	if (w) {
		w->next = ws->workers;
		ws->workers = w;
	}
	return w;
}

static void worker_post(struct tworker *w, int64_t id)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	if (w->kicks.n >= MAX_KICKS || vec_push(&w->kicks, id))
		w->overflow = 1;
	pthread_mutex_unlock(&w->lock);
	if (write(w->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the worker is awake anyway */
	}
}

/* Every worker runs its loop once more (WORKERS_ALL). */
static void worker_wake_all(struct ws *ws)
{
	uint64_t one = 1;

	pthread_mutex_lock(&ws->req_lock);
	for (struct tworker *w = ws->workers; w; w = w->next)
		if (write(w->wake_fd, &one, sizeof(one)) < 0) {
			/* saturated: it wakes anyway */
		}
	pthread_mutex_unlock(&ws->req_lock);
}

void worker_wake(struct ws *ws, int64_t id)
{
	const struct kind_ops *k;
	struct tworker *w;
	int64_t target = 0;
	struct obj o;

	if (id == WORKERS_ALL) {
		worker_wake_all(ws);
		return;
	}
	if (id && !ws_get(ws, id, &o)) {
		k = ws_kind(o.kind);
		target = k->worker_of ? k->worker_of(&o) : 0;
	}
	if (id && !target)
		return;
	pthread_mutex_lock(&ws->req_lock);
	w = worker_get(ws, target);
	if (w)
		worker_post(w, id ? id : 0);
	pthread_mutex_unlock(&ws->req_lock);
}

static int start_cb(void *arg, const struct obj *o)
{
	worker_wake(arg, o->id);
	return 0;
}

/* Targets whose nodes go stale (e.g. a Slurm partition) get a worker. */
static int refresh_cb(void *arg, const struct obj *o)
{
	const struct driver *d = driver_find(o->type);

	if (d && d->refresh_seconds > 0 && o->state == TS_SUCCEEDED)
		worker_wake(arg, o->id);
	return 0;
}

int worker_start(struct ws *ws)
{
	struct obj local;

	pthread_mutex_lock(&ws->req_lock);
	ws->started = 1;
	pthread_mutex_unlock(&ws->req_lock);
	worker_wake(ws, 0);
	if (!ws_find(ws, K_TARGET, 0, "local", &local))
		worker_wake(ws, local.id);
	store_list_busy_targets(ws->st, start_cb, ws);
	store_list(ws->st, K_TARGET, 0, 0, refresh_cb, ws);
	deploy_start_all(ws);
	ep_start_all(ws);
	env_start_all(ws);
	return store_list_active_runs(ws->st, start_cb, ws);
}

void worker_stop(struct ws *ws)
{
	struct tworker *w, *next;
	uint64_t one = 1;

	pthread_mutex_lock(&ws->req_lock);
	ws->stopping = 1;
	w = ws->workers;
	ws->workers = NULL;
	pthread_mutex_unlock(&ws->req_lock);
	for (; w; w = next) {
		next = w->next;
		if (write(w->wake_fd, &one, sizeof(one)) < 0) {
			/* saturated: it wakes anyway */
		}
		pthread_join(w->thr, NULL);
		close(w->wake_fd);
		vec_free(&w->kicks);
		pthread_mutex_destroy(&w->lock);
		free(w);
	}
}
