// SPDX-License-Identifier: MIT
/*
 * The slurm driver's array runs (resources `array`): one Slurm job array,
 * submitted with the run's `array` text as it is (Slurm's --array takes
 * the grammar of lib/array.h, %M included), each task writing its log
 * straight into <run>/tasks/I/log on the shared file system.  Here, on
 * the worker thread, the records slurmrestd gives of the array (one per
 * task that started, plus one standing for the tasks not yet started) are
 * turned into tasks/I/{status,exit_code} (backend/run_array.c), and the
 * run into their aggregate, as on the local target.
 *
 * Nothing here is kept that a restart would need: the job id is the run's
 * backend_id, and what each task last was is in its folder.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/ws.h"
#include "slurm_i.h"

/* The position of index @idx among the run's, or -1. */
static int task_of(const struct slurm_run *sr, long idx)
{
	int lo = 0, hi = sr->ntasks - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;

		if (sr->idx[mid] == idx)
			return mid;
		if (sr->idx[mid] < idx)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* What the records of our array say of each task, into @now and @code;
 * a task without a record of its own has not started: the state of the
 * record that stands for those (pending, or cancelled before starting). */
static void read_records(const struct slurm_run *sr,
			 const struct slurm_job *jobs, size_t n,
			 unsigned char *now, int *code)
{
	enum obj_state s, rest = STATE_NONE;
	char why[ERR_MSG_MAX];
	int k;

	for (size_t i = 0; i < n; i++) {
		if (jobs[i].array_job_id != sr->job_id)
			continue;
		s = slurm_api_run_state(&jobs[i], why, sizeof(why));
		if (s == RS_STARTING)	/* placed: counts against %M */
			s = RS_RUNNING;
		if (jobs[i].array_task_id < 0) {
			rest = s;
		} else if ((k = task_of(sr, jobs[i].array_task_id)) >= 0) {
			now[k] = (unsigned char)s;
			code[k] = jobs[i].exit_code;
		}
	}
	for (k = 0; k < sr->ntasks; k++)
		if (!now[k]) {
			now[k] = (unsigned char)rest;
			code[k] = -1;	/* never ran */
		}
}

/* Write the tasks that changed and whose new state is final (@ends) or
 * not: ends first, so that a reader of tasks/ never sees more tasks
 * Running than Slurm lets run.  A final state is never left. */
static void write_tasks(struct run_ctx *r, const unsigned char *now,
			const int *code, int ends)
{
	struct slurm_run *sr = r->priv;

	for (int k = 0; k < sr->ntasks; k++) {
		if (!sr->tstate[k])	/* first look since (re)start */
			sr->tstate[k] = (unsigned char)
				run_array_task_state(r, sr->idx[k]);
		if (!now[k] || now[k] == sr->tstate[k] ||
		    run_state_final(sr->tstate[k]) ||
		    run_state_final(now[k]) != ends)
			continue;
		run_array_task_set(r, sr->idx[k], now[k], code[k]);
		sr->tstate[k] = now[k];
	}
}

struct tally {
	int final, started, canceled;
	int fail_code;		/* of the first failed index, -1: none */
};

static void tally(const struct slurm_run *sr, const int *code,
		  struct tally *c)
{
	memset(c, 0, sizeof(*c));
	c->fail_code = -1;
	for (int k = 0; k < sr->ntasks; k++) {
		enum obj_state s = sr->tstate[k];

		c->final += run_state_final(s);
		c->started += s != RS_QUEUED && s != STATE_NONE;
		c->canceled += s == RS_CANCELED;
		if (s == RS_FAILED && c->fail_code < 0)
			c->fail_code = code[k] >= 0 ? code[k] : 1;
	}
}

/* Every task ended: the run's aggregate, as the local target's. */
static void array_finish(struct target_ctx *t, struct run_ctx *r,
			 const struct tally *c)
{
	char why[ERR_MSG_MAX];
	int nf;

	sl_run_home(t, r);
	nf = run_array_end(r, r->obj.cancel, why, sizeof(why));
	if (r->obj.cancel)	/* `error` keeps why (ws_run_cancel_for) */
		ws_run_transition(r->ws, r, RS_CANCELED, -1, NULL);
	else if (nf > 0)
		ws_run_transition(r->ws, r, RS_FAILED, c->fail_code, why);
	else if (nf < 0)
		ws_run_transition(r->ws, r, RS_FAILED, -1, "the array's"
				  " tasks/ folder is gone");
	else if (c->canceled)
		ws_run_transition(r->ws, r, RS_CANCELED, -1, "the job array"
				  " was cancelled in Slurm");
	else
		ws_run_transition(r->ws, r, RS_COMPLETED, 0, "");
}

int sl_array_apply(struct target_ctx *t, struct run_ctx *r,
		   const struct slurm_job *jobs, size_t n)
{
	struct slurm_run *sr = r->priv;
	unsigned char *now;
	struct tally c;
	int *code, moved = 0;

	if (sl_array_tasks(r))
		return 0;	/* out of memory: the next round */
	now = calloc(sr->ntasks ? sr->ntasks : 1, 1);
	code = calloc(sr->ntasks ? sr->ntasks : 1, sizeof(*code));
	if (now && code) {
		read_records(sr, jobs, n, now, code);
		write_tasks(r, now, code, 1);
		write_tasks(r, now, code, 0);
		tally(sr, code, &c);
		moved = 1;
		if (c.final == sr->ntasks)
			array_finish(t, r, &c);
		else if (c.started && r->obj.state != RS_RUNNING)
			ws_run_transition(r->ws, r, RS_RUNNING, -1, NULL);
		else
			moved = 0;
	}
	free(now);
	free(code);
	return moved;
}
