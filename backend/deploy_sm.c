// SPDX-License-Identifier: MIT
/*
 * The state machine of deployments, run by each target's worker thread:
 *
 *   deploy/restart  a new generation (a snapshot of the user's files, the
 *                   model version, the config) comes up beside the one
 *                   serving; once all its replicas listen and GET / answers
 *                   the old ones are told to drain (a rolling update).
 *   a crash         the replica is started again with backoff, Unhealthy
 *                   meanwhile; MAX_RESTARTS crashes in a row: Failed.
 *   delete          every replica drains and stops: Draft.
 *
 * The worker owns every struct deploy_ctx; FUSE threads (deploy_ctl.c) only
 * write the request text (TEXT_DEPLOY_REQ) and the state, then kick the
 * worker.  Generations are made in deploy_gen.c.  See deploy_i.h for how
 * the fields of struct obj are used.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy_parts.h"
#include "../lib/log.h"
#include "ws_i.h"

#define MAX_RESTARTS	5	/* crashes in a row before Failed */
#define UP_RESETS_S	60.0	/* up this long: the crash count restarts */
#define LEAVE_MAX_S	5.0	/* TERM held while a proxy sends to it */
#define STOP_GRACE_S	10.0	/* TERM (drain), then KILL ... */
#define STOP_BUSY_S	35.0	/* ... unless it still answers requests
				 * (mlfs-serve ends a drain at 30 s) */
#define HEALTH_EVERY_S	5.0
#define HEALTH_FAILS	3	/* failed GET / in a row: Unhealthy */
#define FAST_TICK_MS	50	/* while replicas start or stop */
#define SLOW_TICK_MS	200

/* What the store keeps of @d (all but the model version and the URI). */
static void dep_fill(const struct deploy_ctx *d, long req, struct dep_row *o)
{
	o->gen = d->serving.gen;
	o->last_gen = d->last_gen;
	o->req_done = req;
	o->port = d->serving.gen ? d->serving.port : d->coming.port;
	o->nreps = 0;
	for (const struct replica *r = d->reps; r && o->nreps < DEP_REPS_MAX;
	     r = r->next) {
		struct dep_replica *k = &o->reps[o->nreps++];

		k->slot = r->slot;
		k->gen = r->gen;
		k->pid = r->pid;
		k->state = r->state;
		k->restarts = r->restarts;
	}
}

/* ---- saving ---------------------------------------------------------------- */

static void scoring_uri(const struct deploy_ctx *d, const struct deploy_spec *s,
			char *buf, size_t sz)
{
	char host[256];

	if (d->t->drv->service_host) {
		d->t->drv->service_host(d->t, s, host, sizeof(host));
	} else if (!strcmp(s->host, "0.0.0.0") || !strcmp(s->host, "::")) {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", s->host);
	}
	snprintf(buf, sz, strchr(host, ':') ? "http://[%s]:%d/score" :
		 "http://%s:%d/score", host, s->port);
}

/*
 * dep_save - write @state (and @error, NULL to keep) with the replica table,
 * the scoring URI and the request taken.  0, or -EAGAIN when a ctl write
 * moved the deployment meanwhile (d->obj reloaded).
 */
static int dep_save(struct deploy_ctx *d, enum obj_state state,
		    const char *error)
{
	struct obj o = d->obj;
	int was_live = live_state(d->obj.state), rc;

	o.state = state;
	if (error)
		snprintf(o.error, sizeof(o.error), "%s", error);
	dep_fill(d, d->req_done, &o.dep);
	o.dep.scoring_uri[0] = '\0';
	if (d->serving.gen && live_state(state))
		scoring_uri(d, &d->serving, o.dep.scoring_uri,
			    sizeof(o.dep.scoring_uri));
	if (state == DS_HEALTHY && !is_state(&d->obj, DS_HEALTHY))
		o.started = wall_s();
	rc = ws_update_obj(d->ws, &o, d->obj.state, FBIT(F_SCORING_URI) |
			   FBIT(F_REPLICAS));
	d->obj = o;
	if (rc)
		return rc;
	if (was_live != live_state(state))
		models_sync_use(d->ws, o.dep.model_version);
	return 0;
}

static void dep_note(struct deploy_ctx *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dep_note(struct deploy_ctx *d, const char *fmt, ...)
{
	char text[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ws_event(d->ws, K_DEPLOYMENT, d->obj.name, text);
}

/* ---- replicas ---------------------------------------------------------------- */

static const struct driver *drv(const struct deploy_ctx *d)
{
	return d->t->drv;
}

static struct deploy_spec *spec_of(struct deploy_ctx *d,
				   const struct replica *r)
{
	return r->gen == d->coming.gen && d->coming.gen ? &d->coming :
	       &d->serving;
}

static int rep_start(struct deploy_ctx *d, struct deploy_spec *s,
		     struct replica *r, struct err *e)
{
	int picked = !s->port, rc;

	r->state = REP_STARTING;
	r->direct_port = 0;
	r->started = wall_s();
	r->ready = 0;
	r->exit_code = -1;
	rc = drv(d)->replica_start(d->t, d, s, r, e);
	if (rc)
		r->state = REP_EXITED;
	/* the port the driver picked, for adoption after a restart */
	if (picked && s->port && spec_write(d, s))
		log_warn("deployment %s: cannot record the port of generation"
			 " %d", d->obj.name, s->gen);
	return rc;
}

static struct replica *rep_new(struct deploy_ctx *d, int gen, int slot)
{
	struct replica *r = calloc(1, sizeof(*r)), **pp = &d->reps;

	if (!r)
		return NULL;
	r->gen = gen;
	r->slot = slot;
	r->exit_code = -1;
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	return r;
}

/*
 * Send @r (stopping) its drain, TERM, unless an endpoint's proxy still
 * sends to its direct port: its drain closes that port, and a request the
 * proxy sent there would fail.  No longer published, it leaves the proxy
 * at the endpoints' next look (woken by the change), which lets it go
 * (deploy_direct.c); held LEAVE_MAX_S at most.
 */
static void rep_term(struct deploy_ctx *d, struct replica *r)
{
	if (!r->term_due)
		return;
	if (wall_s() - r->stop_sent < LEAVE_MAX_S &&
	    deploy_direct_in_use(d->obj.id, r->direct_port))
		return;
	drv(d)->replica_stop(d->t, d, r, 0);
	r->term_due = 0;
	r->stop_sent = wall_s();
}

static void rep_stop(struct deploy_ctx *d, struct replica *r)
{
	if (r->state == REP_WAITING) {
		r->state = REP_EXITED;
		return;
	}
	if (r->state != REP_STARTING && r->state != REP_READY)
		return;
	r->state = REP_STOPPING;
	r->stop_sent = wall_s();
	r->term_due = 1;
	rep_term(d, r);
}

static void stop_gen(struct deploy_ctx *d, int gen, int all)
{
	for (struct replica *r = d->reps; r; r = r->next)
		if (all || r->gen == gen)
			rep_stop(d, r);
}

/* A stopping replica is KILLed after STOP_GRACE_S, or STOP_BUSY_S while
 * it says it still answers requests: a drain (rolling update, scale-in)
 * cuts no request that ends in time. */
static int stop_overdue(struct deploy_ctx *d, struct replica *r)
{
	double held = wall_s() - r->stop_sent;
	int busy;

	if (r->killed || held <= STOP_GRACE_S)
		return 0;
	busy = drv(d)->replica_load ? drv(d)->replica_load(d->t, d, r) : -1;
	return busy <= 0 || held > STOP_BUSY_S;
}

/* Forget exited replicas; KILL those that outstay the drain.  Returns
 * how many were forgotten. */
static int reap(struct deploy_ctx *d)
{
	struct replica **pp = &d->reps, *r;
	int n = 0;

	while ((r = *pp)) {
		if (r->state == REP_STOPPING && !r->term_due &&
		    stop_overdue(d, r)) {
			drv(d)->replica_stop(d->t, d, r, 1);
			r->killed = 1;
		}
		if (r->state != REP_EXITED) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		drv(d)->replica_release(d->t, d, r);
		free(r);
		n++;
	}
	return n;
}

static int count_gen(const struct deploy_ctx *d, int gen, int state)
{
	int n = 0;

	for (const struct replica *r = d->reps; r; r = r->next)
		n += r->gen == gen && (!state || r->state == state);
	return n;
}

/* ---- transitions ------------------------------------------------------------- */

/* Nothing can serve: stop everything, Failed with @why. */
static void dep_fail(struct deploy_ctx *d, const char *why)
{
	stop_gen(d, 0, 1);
	d->coming.gen = 0;
	d->verb = V_NONE;
	dep_save(d, DS_FAILED, why);
}

static void rollout_failed(struct deploy_ctx *d, const char *why)
{
	char text[ERR_MSG_MAX];
	int alive;

	stop_gen(d, d->coming.gen, 0);
	d->coming.gen = 0;
	d->verb = V_NONE;
	alive = d->serving.gen ? count_gen(d, d->serving.gen, REP_READY) : 0;
	if (!alive) {
		dep_fail(d, why);
		return;
	}
	snprintf(text, sizeof(text), "the update failed (%s); the previous"
		 " generation keeps serving", why);
	dep_save(d, alive == d->serving.replicas ? DS_HEALTHY : DS_UNHEALTHY,
		 text);
}

static void finish_rollout(struct deploy_ctx *d)
{
	for (struct replica *r = d->reps; r; r = r->next)
		if (r->gen != d->coming.gen)
			rep_stop(d, r);
	d->serving = d->coming;
	d->coming.gen = 0;
	d->verb = V_NONE;
	d->health_fails = 0;
	d->next_health = wall_s() + HEALTH_EVERY_S;
	dep_save(d, DS_HEALTHY, "");
	log_info("deployment %s: generation %d serves on port %d (%.2f s)",
		 d->obj.name, d->serving.gen, d->serving.port,
		 wall_s() - d->verb_at);
}

/* A replica of the serving generation died: restart it with backoff. */
static void crash(struct deploy_ctx *d, struct replica *r, const char *why)
{
	char text[ERR_MSG_MAX];
	double wait;

	if (r->ready > 0 && wall_s() - r->ready > UP_RESETS_S)
		r->restarts = 0;
	r->restarts++;
	drv(d)->replica_release(d->t, d, r);
	r->priv = NULL;
	r->pid = 0;
	r->direct_port = 0;
	if (r->restarts > MAX_RESTARTS) {
		snprintf(text, sizeof(text), "replica %d crashed %d times in a"
			 " row; the last time it %s", r->slot, r->restarts, why);
		r->state = REP_EXITED;
		dep_fail(d, text);
		return;
	}
	wait = 0.2 * (1 << (r->restarts - 1));
	r->state = REP_WAITING;
	r->restart_at = wall_s() + (wait > 10 ? 10 : wait);
	snprintf(text, sizeof(text), "replica %d %s; restarting it in %.1f s",
		 r->slot, why, wait);
	dep_note(d, "%s", text);
	dep_save(d, DS_UNHEALTHY, text);
}

static void on_exit_rep(struct deploy_ctx *d, struct replica *r,
			const char *why)
{
	char text[ERR_MSG_MAX];
	int prev = r->state;

	r->state = REP_EXITED;
	if (prev == REP_STOPPING)
		return;
	if (r->gen == d->coming.gen && d->coming.gen) {
		snprintf(text, sizeof(text), "replica %d %s", r->slot, why);
		rollout_failed(d, text);
	} else if (r->gen == d->serving.gen && d->verb == V_NONE &&
		   (is_state(&d->obj, DS_HEALTHY) ||
		    is_state(&d->obj, DS_UNHEALTHY))) {
		crash(d, r, why);
	}
}

/* Poll every running replica; returns 1 when one changed. */
static int poll_replicas(struct deploy_ctx *d)
{
	struct err e;
	int st, changed = 0;

	for (struct replica *r = d->reps; r; r = r->next) {
		if (r->state != REP_STARTING && r->state != REP_READY &&
		    r->state != REP_STOPPING)
			continue;
		memset(&e, 0, sizeof(e));
		st = drv(d)->replica_poll(d->t, d, spec_of(d, r), r, &e);
		if (st == REP_EXITED) {
			on_exit_rep(d, r, e.msg[0] ? e.msg : "exited");
			changed = 1;
		} else if (r->state == REP_STARTING && st == REP_READY) {
			r->state = REP_READY;
			r->ready = wall_s();
			changed = 1;
		}
	}
	return changed;
}

/* ---- requests ------------------------------------------------------------------- */

/* An update of an autoscaled deployment starts with as many replicas as
 * serve now (within the new limits): an update under load does not fall
 * back to min_replicas. */
static void scale_keep(struct deploy_ctx *d)
{
	struct deploy_spec *s = &d->coming;
	int n = d->serving.replicas;

	if (!s->scale.max || !d->serving.gen || !d->serving.scale.max ||
	    n == s->replicas)
		return;
	s->replicas = n < s->scale.min ? s->scale.min :
		      n > s->scale.max ? s->scale.max : n;
	if (spec_write(d, s))
		log_warn("deployment %s: cannot record the replica count of"
			 " generation %d", d->obj.name, s->gen);
}

static void begin_rollout(struct deploy_ctx *d, int verb)
{
	struct err e = { { 0 } };
	struct deploy_spec s;
	struct replica *r;
	int rc;

	rc = gen_make(d, verb, &s, &e);
	if (!rc)
		d->coming = s;
	if (!rc)
		scale_keep(d);
	for (int i = 1; !rc && i <= s.replicas; i++) {
		r = rep_new(d, s.gen, i);
		rc = r ? rep_start(d, &d->coming, r, &e) :
		     err_set(&e, -ENOMEM, "out of memory");
	}
	if (rc) {
		rollout_failed(d, e.msg[0] ? e.msg : strerror(-rc));
		return;
	}
	dep_save(d, DS_TRANSITIONING, NULL);	/* the replica table */
}

/* Take the request written since the last one (kick after a ctl write). */
static void take_request(struct deploy_ctx *d)
{
	long serial;
	int verb;

	serial = req_serial(d->ws, d->obj.id, &verb);
	if (serial <= d->req_done || verb == V_NONE)
		return;
	if (!is_state(&d->obj, DS_TRANSITIONING) &&
	    dep_save(d, DS_TRANSITIONING, "") == -EAGAIN &&
	    !is_state(&d->obj, DS_TRANSITIONING))
		return;		/* the next kick tries again */
	d->req_done = serial;
	if (d->coming.gen)
		stop_gen(d, d->coming.gen, 0);
	d->coming.gen = 0;
	d->verb = verb;
	d->verb_at = wall_s();
	if (verb == V_DELETE)
		stop_gen(d, 0, 1);
	else
		begin_rollout(d, verb);
}

static int health_ok(struct deploy_ctx *d, struct err *e)
{
	if (!drv(d)->health)
		return 1;
	return drv(d)->health(d->t, d, d->coming.gen ? &d->coming :
			      &d->serving, e) == 0;
}

static void step_rollout(struct deploy_ctx *d)
{
	struct err e = { { 0 } };
	char text[ERR_MSG_MAX];
	struct deploy_spec *s = &d->coming;

	if (!s->gen)
		return;
	if (count_gen(d, s->gen, REP_READY) == s->replicas) {
		if (health_ok(d, &e)) {
			finish_rollout(d);
			return;
		}
	}
	if (wall_s() - d->verb_at > s->ready_timeout) {
		snprintf(text, sizeof(text), "the server did not %s on port %d"
			 " within %d s%s%s", e.msg[0] ? "answer GET /" :
			 "listen", s->port, s->ready_timeout,
			 e.msg[0] ? ": " : "", e.msg);
		rollout_failed(d, text);
	}
}

static void step_delete(struct deploy_ctx *d)
{
	if (d->reps)
		return;
	d->serving.gen = 0;
	d->coming.gen = 0;
	d->verb = V_NONE;
	if (!dep_save(d, DS_DRAFT, ""))
		gen_gc(d);
}

/* Slots of the serving generation without a replica (after adoption). */
static int fill_slots(struct deploy_ctx *d)
{
	struct replica *r;
	int made = 0;

	for (int i = 1; i <= d->serving.replicas; i++) {
		int have = 0;

		for (r = d->reps; r; r = r->next)
			have |= r->gen == d->serving.gen && r->slot == i &&
				r->state != REP_STOPPING && r->state != REP_EXITED;
		if (!have && (r = rep_new(d, d->serving.gen, i))) {
			r->state = REP_WAITING;
			r->restart_at = wall_s();
			made++;
		}
	}
	return made;
}

static void restart_due(struct deploy_ctx *d)
{
	struct err e;

	for (struct replica *r = d->reps; r; r = r->next) {
		if (r->state != REP_WAITING || r->gen != d->serving.gen ||
		    wall_s() < r->restart_at)
			continue;
		memset(&e, 0, sizeof(e));
		if (rep_start(d, &d->serving, r, &e)) {
			r->state = REP_READY;	/* so that crash() counts it */
			crash(d, r, e.msg);
			if (is_state(&d->obj, DS_FAILED))
				return;
		}
	}
}

/* ---- autoscale --------------------------------------------------------------- */

/* The requests in flight on the serving generation's ready replicas, as
 * each told it (replica_load), or -1 when none could tell. */
static int load_now(struct deploy_ctx *d)
{
	int sum = 0, known = 0, n;

	if (!drv(d)->replica_load)
		return -1;
	for (struct replica *r = d->reps; r; r = r->next) {
		if (r->gen != d->serving.gen || r->state != REP_READY)
			continue;
		n = drv(d)->replica_load(d->t, d, r);
		if (n >= 0) {
			sum += n;
			known++;
		}
	}
	return known ? sum : -1;
}

/* Replicas for @load requests in flight: target_in_flight each, within
 * [min_replicas, max_replicas]. */
static int scale_want(const struct deploy_scale *c, int load)
{
	int want = (load + c->target - 1) / c->target;

	return want < c->min ? c->min : want > c->max ? c->max : want;
}

/*
 * Serve with @want replicas: new slots start (fill_slots), the highest
 * slots drain through the rolling update's stop (TERM: each answers what
 * it holds, then exits).  The count is recorded in the generation's spec
 * first, so that a restarted daemon adopts the same number.
 */
static void scale_to(struct deploy_ctx *d, int want, int load)
{
	struct deploy_spec *s = &d->serving;
	int old = s->replicas;

	s->replicas = want;
	d->scaled_at = wall_s();
	d->low_since = 0;
	if (spec_write(d, s))
		log_warn("deployment %s: cannot record the replica count of"
			 " generation %d", d->obj.name, s->gen);
	for (struct replica *r = d->reps; r; r = r->next)
		if (r->gen == s->gen && r->slot > want)
			rep_stop(d, r);
	fill_slots(d);
	dep_note(d, "autoscale: %d -> %d replicas (%d requests in flight,"
		 " target %d per replica)", old, want, load, s->scale.target);
	log_info("deployment %s: autoscale %d -> %d replicas (%d in flight)",
		 d->obj.name, old, want, load);
}

/*
 * Out as soon as the load asks for more (scale_out_cooldown after the last
 * change); in only once it has asked for fewer for scale_in_cooldown
 * without a break, so that a short lull does not drain replicas a burst
 * needs again.
 */
static void autoscale(struct deploy_ctx *d)
{
	const struct deploy_scale *c = &d->serving.scale;
	double now = wall_s();
	int load, want;

	if (!c->max)
		return;
	load = load_now(d);
	if (load < 0)
		return;
	want = scale_want(c, load);
	if (want >= d->serving.replicas)
		d->low_since = 0;
	if (want > d->serving.replicas) {
		if (now - d->scaled_at >= c->out_cooldown)
			scale_to(d, want, load);
		return;
	}
	if (want == d->serving.replicas)
		return;
	if (!d->low_since)
		d->low_since = now;
	if (now - d->low_since >= c->in_cooldown)
		scale_to(d, want, load);
}

static void step_serving(struct deploy_ctx *d)
{
	struct err e = { { 0 } };
	int ready;

	if (!d->serving.gen)
		return;
	fill_slots(d);
	restart_due(d);
	if (is_state(&d->obj, DS_FAILED))
		return;
	autoscale(d);
	ready = count_gen(d, d->serving.gen, REP_READY) == d->serving.replicas;
	if (wall_s() < d->next_health || (!ready && is_state(&d->obj,
							    DS_UNHEALTHY)))
		return;
	d->next_health = wall_s() + (ready && is_state(&d->obj, DS_HEALTHY) ?
				    HEALTH_EVERY_S : 1.0);
	if (health_ok(d, &e)) {
		d->health_fails = 0;
		if (ready && is_state(&d->obj, DS_UNHEALTHY))
			dep_save(d, DS_HEALTHY, "");
	} else if (++d->health_fails >= HEALTH_FAILS &&
		   is_state(&d->obj, DS_HEALTHY)) {
		dep_save(d, DS_UNHEALTHY, e.msg);
	}
}

/* ---- tracking ----------------------------------------------------------------- */

/* After a daemon restart: the replicas still running, the generation. */
static void adopt(struct deploy_ctx *d)
{
	struct replica *list = NULL, *r, *next;
	int n;

	d->serving.gen = d->obj.dep.gen;
	d->last_gen = d->obj.dep.last_gen;
	if (d->serving.gen && spec_read(d, d->serving.gen, &d->serving))
		d->serving.gen = 0;
	if (d->serving.gen && !d->serving.port)	/* recorded before the pick */
		d->serving.port = d->obj.dep.port;
	n = drv(d)->replica_adopt ? drv(d)->replica_adopt(d->t, d, &list) : 0;
	for (r = list; n > 0 && r; r = next) {
		next = r->next;
		r->next = NULL;
		r->exit_code = -1;
		r->started = r->ready = wall_s();
		r->state = REP_STARTING;	/* READY once seen listening */
		if (r->gen > d->last_gen)
			d->last_gen = r->gen;
		r->next = d->reps;
		d->reps = r;
		/* another generation's, or a slot autoscale had drained */
		if (r->gen != d->serving.gen || r->slot > d->serving.replicas)
			rep_stop(d, r);
	}
	if (n > 0)
		log_info("deployment %s: adopted %d replica%s", d->obj.name, n,
			 n == 1 ? "" : "s");
	d->req_done = d->obj.dep.req_done;
	if (is_state(&d->obj, DS_TRANSITIONING) && d->req_done > 0)
		d->req_done--;	/* the request being carried out starts over */
	if (!d->serving.gen && !is_state(&d->obj, DS_TRANSITIONING))
		dep_fail(d, "the daemon restarted and found no generation to"
			 " serve");
	else if (is_state(&d->obj, DS_HEALTHY) &&
		 count_gen(d, d->serving.gen, 0) < d->serving.replicas)
		dep_save(d, DS_UNHEALTHY, "replicas were missing after the"
			 " daemon restarted: starting them again");
	models_sync_use(d->ws, d->obj.dep.model_version);
}

static struct deploy_ctx *dep_new(struct target_ctx *t, const struct obj *o)
{
	struct deploy_ctx *d = calloc(1, sizeof(*d));
	size_t len;
	char *key;

	if (!d)
		return NULL;
	d->ws = t->ws;
	d->t = t;
	d->obj = *o;
	d->watch = -1;
	ws_obj_path(t->ws, o->id, NULL, d->dir);
	if (!ws_read_text(t->ws, o->id, F_KEY, &key, &len)) {
		key[strcspn(key, "\r\n")] = '\0';
		snprintf(d->key, sizeof(d->key), "%s", key);
		free(key);
	}
	return d;
}

static struct deploy_ctx *dep_find(struct deploy_ctx *list, int64_t id)
{
	for (; list; list = list->next)
		if (list->obj.id == id)
			return list;
	return NULL;
}

void deploy_track(struct target_ctx *t, struct deploy_ctx **list,
		  const struct obj *o)
{
	struct deploy_ctx *d = dep_find(*list, o->id);

	if (!t->drv || !t->drv->replica_start)
		return;
	if (d) {
		d->obj = *o;
		take_request(d);
		return;
	}
	if (!live_state(o->state))
		return;
	d = dep_new(t, o);
	if (!d)
		return;
	d->next = *list;
	*list = d;
	adopt(d);
	take_request(d);
}

static void watch_log(struct deploy_ctx *d, int ino_fd)
{
	char path[PATH_MAX];
	struct stat st;

	if (d->watch < 0 && ino_fd >= 0)
		d->watch = inotify_add_watch(ino_fd, d->dir, IN_MODIFY |
					     IN_CREATE);
	ws_obj_path(d->ws, d->obj.id, RUN_LOG, path);
	if (stat(path, &st) || st.st_size == d->log_size)
		return;
	if (d->ws->hooks.inval_grow)
		d->ws->hooks.inval_grow(d->ws->hooks.ctx, d->obj.id, F_LOG,
					d->log_size);
	d->log_size = st.st_size;
}

void deploy_watch_logs(struct deploy_ctx *list)
{
	for (; list; list = list->next)
		watch_log(list, -1);
}

/* ---- direct ports: what the endpoints' worker balances over ------------ */

#define DIRECT_RETRY_S	30.0	/* a host that had no address: asked again */

/* Where the direct ports of @d's replicas are reached (drv->direct_host),
 * asked once for the generation serving (the first one coming before). */
static const char *direct_host(struct deploy_ctx *d)
{
	const struct deploy_spec *s = d->serving.gen ? &d->serving : &d->coming;

	if (s->gen == d->direct_gen &&
	    (d->direct_host[0] || wall_s() - d->direct_at < DIRECT_RETRY_S))
		return d->direct_host;
	d->direct_gen = s->gen;
	d->direct_at = wall_s();
	if (drv(d)->direct_host)
		drv(d)->direct_host(d->t, s, d->direct_host,
				    sizeof(d->direct_host));
	else
		snprintf(d->direct_host, sizeof(d->direct_host), "127.0.0.1");
	return d->direct_host;
}

/* The ready replicas of @d that have a direct port (deploy_direct.c). */
static void direct_publish(struct deploy_ctx *d)
{
	int port[DEP_REPS_MAX], n = 0;

	for (const struct replica *r = d->reps; r && n < DEP_REPS_MAX;
	     r = r->next)
		if (r->state == REP_READY && r->direct_port > 0)
			port[n++] = r->direct_port;
	deploy_direct_publish(d->ws, d->obj.id, n ? direct_host(d) : NULL,
			      port, n);
}

static void dep_step(struct deploy_ctx *d)
{
	struct dep_row before = { 0 }, after = { 0 };

	dep_fill(d, 0, &before);
	poll_replicas(d);
	if (d->verb == V_DELETE)
		step_delete(d);
	else if (d->verb)
		step_rollout(d);
	else if (is_state(&d->obj, DS_HEALTHY) ||
		 is_state(&d->obj, DS_UNHEALTHY))
		step_serving(d);
	if (reap(d) && !d->verb)
		gen_gc(d);	/* generations nothing runs any more */
	direct_publish(d);
	for (struct replica *r = d->reps; r; r = r->next)
		rep_term(d, r);		/* held ones the proxy let go */
	dep_fill(d, 0, &after);
	if (memcmp(&before, &after, sizeof(before)) &&
	    live_state(d->obj.state))
		dep_save(d, d->obj.state, NULL);	/* info.json */
}

static void dep_free(struct deploy_ctx *d, int ino_fd)
{
	struct replica *r;

	if (d->watch >= 0 && ino_fd >= 0)
		inotify_rm_watch(ino_fd, d->watch);
	deploy_direct_publish(d->ws, d->obj.id, NULL, NULL, 0);
	while ((r = d->reps)) {
		d->reps = r->next;
		if (r->state == REP_EXITED && drv(d)->replica_release)
			drv(d)->replica_release(d->t, d, r);
		else
			free(r->priv);	/* still serving: only forget it */
		free(r);
	}
	free(d);
}

void deploy_step(struct target_ctx *t, struct deploy_ctx **list, int ino_fd)
{
	struct deploy_ctx **pp = list, *d;

	(void)t;
	while ((d = *pp)) {
		dep_step(d);
		watch_log(d, ino_fd);
		if (!d->reps && !d->verb && !live_state(d->obj.state)) {
			*pp = d->next;
			if (drv(d)->undeploy)
				drv(d)->undeploy(d->t, d);
			dep_free(d, ino_fd);
			continue;
		}
		pp = &d->next;
	}
}

int deploy_timeout_ms(const struct deploy_ctx *list, int timeout)
{
	int want = -1;

	for (; list; list = list->next) {
		want = SLOW_TICK_MS;
		if (list->verb)
			return timeout >= 0 && timeout < FAST_TICK_MS ?
			       timeout : FAST_TICK_MS;
		for (const struct replica *r = list->reps; r; r = r->next)
			if (r->state != REP_READY)
				return timeout >= 0 && timeout < FAST_TICK_MS ?
				       timeout : FAST_TICK_MS;
	}
	if (want < 0)
		return timeout;
	return timeout >= 0 && timeout < want ? timeout : want;
}

void deploy_release_all(struct target_ctx *t, struct deploy_ctx **list,
			int ino_fd)
{
	struct deploy_ctx *d;

	(void)t;
	while ((d = *list)) {
		*list = d->next;
		dep_free(d, ino_fd);
	}
}
