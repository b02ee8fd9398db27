// SPDX-License-Identifier: MIT
/*
 * The slurm driver's poll: the states of the started runs' jobs, applied
 * to the runs (outputs brought back from a workdir, the working copy
 * handed to the run's user); `nodes` refreshed every NODES_EVERY.
 * Backend worker thread only.
 *
 * Polling: one round every poll_seconds for the started runs, either one
 * GET /jobs?update_time=T (answered 304 when nothing changed in the whole
 * cluster since T) or one GET /job/{id} per active run, whichever the
 * measured costs say is cheaper: /jobs grows with every job slurmctld
 * remembers (MinJobAge), per-job GETs only with our active runs.
 *
 * Outages: while slurmrestd is unreachable (or refuses the token, or cannot
 * reach slurmctld) runs keep their last known state with a note in `error`
 * and `events`; the note goes when it answers again.  Every call is bounded
 * by timeout_seconds; no call is retried before poll_seconds have passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../backend/ws.h"
#include "slurm_i.h"
#include "slurm_image.h"

#define FULL_EVERY	60.0	/* GET /jobs without update_time this often */
#define PROBE_EVERY	300.0	/* re-measure GET /jobs this often */
#define CACHE_SECONDS	0.5	/* a GET /jobs answer serves this long */

/* ---- runs: states ------------------------------------------------------- */

static int boring_reason(const char *reason)
{
	return !reason[0] || !strcmp(reason, "None") ||
	       !strcmp(reason, "NonZeroExitCode");
}

static void failed_why(const struct slurm_job *j, const char *slurm_why,
		       char *buf, size_t len)
{
	int code = j->exit_code;

	if (strcmp(j->state, "FAILED") || code < 0 || !boring_reason(j->reason))
		snprintf(buf, len, "%s (Slurm job %lu)", slurm_why, j->job_id);
	else if (code > 128)
		snprintf(buf, len, "the command was killed by signal %d (%s)",
			 code - 128, strsignal(code - 128));
	else
		snprintf(buf, len, "the command exited with code %d", code);
}

static void run_finish(struct target_ctx *t, struct run_ctx *r,
		       const struct slurm_job *j, enum obj_state state,
		       const char *slurm_why)
{
	char why[ERR_MSG_MAX];

	sl_run_home(t, r);
	if (state == RS_COMPLETED) {
		ws_run_transition(r->ws, r, state, 0, "");
	} else if (state == RS_CANCELED) {
		/* canceled by mlfs: `error` keeps why (ws_run_cancel_for) */
		ws_run_transition(r->ws, r, state, j->exit_code, r->obj.cancel ?
				  NULL : "the job was cancelled in Slurm");
	} else {
		/* a container that could not start said why */
		if (!sl_image_failed(r, why, sizeof(why)))
			failed_why(j, slurm_why, why, sizeof(why));
		ws_run_transition(r->ws, r, state, j->exit_code, why);
	}
}

/* A job submitted with a dependency (slurm_start_after) that Slurm says
 * can never start: canceled, with the sentence of `after` once mlfs has
 * seen the run it waited for end (a later poll, if not yet). */
static void never_satisfied(struct run_ctx *r, const struct slurm_job *j)
{
	char why[ERR_MSG_MAX];

	if (strcmp(j->state, "PENDING") ||
	    strcmp(j->reason, "DependencyNeverSatisfied") || r->obj.cancel)
		return;
	snprintf(why, sizeof(why), "canceled: Slurm says job %lu can never"
		 " start (DependencyNeverSatisfied)", j->job_id);
	ws_run_after_cancel(r->ws, r, why);
}

/* Bring @r to the state of its job @j. */
static void run_apply(struct target_ctx *t, struct run_ctx *r,
		      const struct slurm_job *j)
{
	char why[ERR_MSG_MAX];
	enum obj_state state = slurm_api_run_state(j, why, sizeof(why));
	int changed = sl_run_unnote(r);

	if (j->nodes[0] && strcmp(r->obj.node, j->nodes)) {
		snprintf(r->obj.node, sizeof(r->obj.node), "%s", j->nodes);
		changed = 1;
	}
	if (state == STATE_NONE || state == r->obj.state) {
		if (changed)
			ws_run_save(r->ws, r);
		never_satisfied(r, j);
		return;
	}
	if (run_state_final(state))
		run_finish(t, r, j, state, why);
	else
		ws_run_transition(r->ws, r, state, -1, NULL);
}

/* An array run @r from the records @jobs (@n) of its tasks and others. */
static void array_apply(struct target_ctx *t, struct run_ctx *r,
			const struct slurm_job *jobs, size_t n)
{
	struct slurm_run *sr = r->priv;
	int changed = sl_run_unnote(r);

	if (sl_array_apply(t, r, jobs, n))
		return;
	if (changed)
		ws_run_save(r->ws, r);
	for (size_t i = 0; i < n; i++)	/* the record of the tasks to come */
		if (jobs[i].job_id == sr->job_id &&
		    jobs[i].array_task_id < 0)
			never_satisfied(r, &jobs[i]);
}

/* Slurm no longer knows the job: its outcome is lost. */
static void run_vanished(struct run_ctx *r, unsigned long id)
{
	char why[ERR_MSG_MAX];

	sl_run_unnote(r);
	if (r->res.array_n)	/* its tasks left under way: Failed */
		run_array_end(r, 0, why, sizeof(why));
	snprintf(why, sizeof(why), "Slurm no longer knows job %lu (it ended"
		 " longer ago than MinJobAge, or was purged): its outcome is"
		 " unknown", id);
	ws_run_transition(r->ws, r, RS_FAILED, -1, why);
}

static void ewma(double *avg, double x)
{
	*avg = *avg > 0 ? 0.7 * *avg + 0.3 * x : x;
}

/* GET /job/{id}: the job's records into *@jobs (malloc'd), of a job
 * array all its tasks'.  0, -ENOENT when Slurm does not know it, -errno. */
static int fetch_job(struct slurm_target *st, unsigned long id,
		     struct slurm_job **jobs, size_t *n, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], msg[ERR_MSG_MAX];
	double t0 = mono_s();
	int rc;

	snprintf(path, sizeof(path), "%s/job/%lu", st->api->prefix, id);
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && (rc = slurm_api_parse_jobs(res.body, jobs, n, msg,
					      sizeof(msg))))
		rc = err_set(e, rc, "%s", msg);
	http_result_free(&res);
	ewma(&st->one_cost, mono_s() - t0);
	if (!rc && (!*n || (*jobs)[0].array_job_id != id) &&
	    (!*n || (*jobs)[0].job_id != id))
		rc = err_set(e, -ENOENT, "job %lu is not in the answer", id);
	return rc == 1 ? -EIO : rc;
}

/* Poll one run by its own GET; -EAGAIN stops the round. */
static int poll_one(struct target_ctx *t, struct run_ctx *r)
{
	struct slurm_target *st = t->priv;
	struct slurm_run *sr = r->priv;
	struct err e = { { 0 } };
	struct slurm_job *jobs = NULL;
	size_t n = 0;
	int rc;

	rc = fetch_job(st, sr->job_id, &jobs, &n, &e);
	if (!rc && r->res.array_n)
		array_apply(t, r, jobs, n);
	else if (!rc)
		run_apply(t, r, &jobs[0]);
	free(jobs);
	if (rc == -ENOENT)
		run_vanished(r, sr->job_id);
	else if (rc && rc != -EAGAIN)
		log_warn("run %s: polling job %lu: %s", r->obj.name,
			 sr->job_id, e.msg);
	return rc == -EAGAIN ? rc : 0;
}

static int job_cmp(const void *a, const void *b)
{
	unsigned long x = ((const struct slurm_job *)a)->job_id;
	unsigned long y = ((const struct slurm_job *)b)->job_id;

	return x < y ? -1 : x > y;
}

/* Refresh st->cache with GET /jobs?update_time (304: still current). */
static int fetch_all(struct slurm_target *st, struct err *e)
{
	struct http_result res = { 0 };
	struct slurm_job *jobs = NULL;
	char path[160], msg[ERR_MSG_MAX];
	double now = mono_s();
	time_t asked = time(NULL);
	size_t n = 0;
	int rc, full = !st->since || now - st->full_at > FULL_EVERY;

	if (now - st->cache_at < CACHE_SECONDS)
		return 0;
	if (full)
		sl_api_path(st, path, sizeof(path), "/jobs");
	else
		snprintf(path, sizeof(path), "%s/jobs?update_time=%lu",
			 st->api->prefix, (unsigned long)st->since);
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && (rc = slurm_api_parse_jobs(res.body, &jobs, &n, msg,
					      sizeof(msg))))
		rc = err_set(e, rc, "%s", msg);
	http_result_free(&res);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		qsort(jobs, n, sizeof(*jobs), job_cmp);
		free(st->cache);
		st->cache = jobs;
		st->ncache = n;
		st->full_at = full ? now : st->full_at;
	}
	st->since = asked - 1;	/* a second of slack for clock skew */
	st->cache_at = mono_s();
	ewma(&st->all_cost, st->cache_at - now);
	st->all_at = st->cache_at;
	return 0;
}

/* Poll @runs with one GET /jobs; runs missing from it by their own GET. */
static int poll_all(struct target_ctx *t, struct run_ctx **runs, int n,
		    struct err *e)
{
	struct slurm_target *st = t->priv;
	struct slurm_job key, *j;
	int rc;

	rc = fetch_all(st, e);
	for (int i = 0; !rc && i < n; i++) {
		key.job_id = ((struct slurm_run *)runs[i]->priv)->job_id;
		j = bsearch(&key, st->cache, st->ncache, sizeof(key), job_cmp);
		if (j && runs[i]->res.array_n)	/* the records of its tasks */
			array_apply(t, runs[i], st->cache, st->ncache);
		else if (j)
			run_apply(t, runs[i], j);
		else
			rc = poll_one(t, runs[i]);
	}
	return rc;
}

/* GET /jobs for this round?  Whichever costs less, measured. */
static int use_all(const struct slurm_target *st, int n)
{
	if (n < 2)
		return 0;
	if (!st->all_cost || mono_s() - st->all_at > PROBE_EVERY)
		return 1;
	return n * st->one_cost >= st->all_cost;
}

static int poll_states(struct target_ctx *t, struct run_ctx **runs, int n,
		       struct err *e)
{
	struct slurm_target *st = t->priv;
	int rc = 0;

	log_debug("target %s: polling %d job%s by %s (measured: GET /jobs"
		  " %.1f ms a round, GET /job/{id} %.1f ms each)", t->obj.name,
		  n, n == 1 ? "" : "s", use_all(st, n) ? "GET /jobs" :
		  "GET /job/{id} each", st->all_cost * 1e3, st->one_cost * 1e3);
	if (use_all(st, n))
		return poll_all(t, runs, n, e);
	for (int i = 0; !rc && i < n; i++)
		rc = poll_one(t, runs[i]);
	if (rc)
		err_set(e, rc, "%s", st->down);
	return rc;
}

/* A run whose POST may have made a job: find it, or submit again. */
static void poll_uncertain(struct slurm_target *st, struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;
	struct err e = { { 0 } };
	int rc;

	rc = sl_run_search(st, r, &e);
	if (rc == -ENOENT) {
		sr->uncertain = 0;
		r->started = 0;		/* the worker starts it again */
	} else if (rc == -EAGAIN) {
		sl_run_note(r, e.msg);
	}
}

/* The runs due now with known jobs, into @due; uncertain ones resolved. */
static int due_runs(struct slurm_target *st, struct run_ctx **runs, int n,
		    struct run_ctx **due, int ready)
{
	double now = mono_s();
	int m = 0;

	for (int i = 0; i < n; i++) {
		struct slurm_run *sr = sl_run_get(runs[i]);

		if (!sr || sr->due > now)
			continue;
		sr->due = next_round(st);
		if (sr->job_id)
			due[m++] = runs[i];
		else if (sr->uncertain && ready)
			poll_uncertain(st, runs[i]);
	}
	return m;
}

static void refresh_nodes(struct target_ctx *t, struct slurm_target *st)
{
	struct err e = { { 0 } };
	char *nodes = NULL;

	if (mono_s() - st->nodes_at < NODES_EVERY || mono_s() < st->retry_at)
		return;
	if (!sl_nodes(st, &nodes, &e))
		ws_target_set_nodes(t->ws, t, nodes);
	free(nodes);
}

void slurm_poll(struct target_ctx *t, struct run_ctx **runs, int n)
{
	struct slurm_target *st;
	struct err e = { { 0 } };
	struct run_ctx **due;
	int m, rc;

	rc = sl_ready(t, &st, &e);
	if (!st)
		return;
	due = calloc(n, sizeof(*due));
	if (!due)
		return;
	m = due_runs(st, runs, n, due, !rc);
	if (m && !rc)
		rc = poll_states(t, due, m, &e);
	for (int i = 0; rc < 0 && i < m; i++)
		if (!run_state_final(due[i]->obj.state))
			sl_run_note(due[i], e.msg);
	for (int i = 0; i < m; i++)	/* its image may be unused now */
		if (run_state_final(due[i]->obj.state) && due[i]->image[0])
			sl_cache_ended(t);
	free(due);
	sl_cache_prune(t);
	if (!rc)
		refresh_nodes(t, st);
}
