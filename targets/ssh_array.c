// SPDX-License-Identifier: MIT
/*
 * The tasks of an array run on an ssh target (see ssh_array.h).  The host
 * holds the truth (tasks.ev only grows, each task's log too); here the
 * daemon follows it with offsets kept in memory and in the sizes of the
 * local logs, so that after a restart reading tasks.ev again from its
 * start changes nothing already right: a line is applied only when it
 * moves a task forward.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/ws.h"
#include "../lib/array.h"
#include "../lib/log.h"
#include "ssh_array.h"

#define TASK_MIN_BYTES	4096		/* per task asked: SSH_ASK_MAX of them
					 * fill one run's LOG_CHUNK (1 MiB) */

/* The local state of task @t, as tasks/ shows it (adopted runs). */
static void task_load(struct run_ctx *r, struct ssh_task *t)
{
	char st[32];

	run_array_status(r, t->idx, st, sizeof(st));
	t->st = !strcmp(st, "Running\n") ? 'R' :
		!st[0] || !strcmp(st, "Queued\n") ? 'Q' : 'E';
	t->off = run_array_log(r, t->idx, NULL, 0);
	if (t->off < 0)
		t->off = 0;
	t->size = -1;
}

struct ssh_arr *ssh_arr_new(struct run_ctx *r, int *rc)
{
	struct array_spec s;
	struct ssh_arr *a;

	*rc = array_parse(r->res.array, 1, &s) ? -EINVAL : 0;
	if (*rc)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a)
		a->t = calloc(s.n ? s.n : 1, sizeof(*a->t));
	*rc = !a || !a->t ? -ENOMEM : run_array_make(r, s.idx, s.n);
	if (*rc) {
		free(s.idx);
		ssh_arr_free(a);
		return NULL;
	}
	a->n = s.n;
	for (int i = 0; i < s.n; i++) {
		a->t[i].idx = s.idx[i];
		task_load(r, &a->t[i]);
	}
	free(s.idx);
	return a;
}

void ssh_arr_free(struct ssh_arr *a)
{
	if (a)
		free(a->t);
	free(a);
}

static struct ssh_task *task_of(struct ssh_arr *a, int idx)
{
	int lo = 0, hi = a->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;

		if (a->t[mid].idx == idx)
			return &a->t[mid];
		if (a->t[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Its log is still to be read. */
static int wanted(const struct ssh_task *t)
{
	return t->st == 'R' || (t->st == 'E' && t->off < t->size);
}

int ssh_arr_asks(struct ssh_arr *a, long long budget,
		 struct ssh_task_ask *out)
{
	int k = 0, i, last = a->cursor;
	long long each;

	for (int j = 0; j < a->n && k < SSH_ASK_MAX; j++) {
		i = (a->cursor + j) % a->n;
		if (!wanted(&a->t[i]))
			continue;
		out[k].idx = a->t[i].idx;
		out[k++].off = a->t[i].off;
		last = i + 1;
	}
	a->cursor = a->n ? last % a->n : 0;	/* the others next round */
	each = k ? budget / k : 0;
	for (i = 0; i < k; i++)
		out[i].max = each < TASK_MIN_BYTES ? TASK_MIN_BYTES : each;
	return k;
}

static int final_word(const char *w)
{
	return !strcmp(w, "Completed") || !strcmp(w, "Failed") ||
	       !strcmp(w, "Canceled");
}

/* One line of tasks.ev: "s I" or "e I CODE SIZE STATUS". */
static void ev_line(struct ssh_arr *a, struct run_ctx *r, const char *line)
{
	char kind, word[16], text[24];
	struct ssh_task *t;
	long long size;
	int idx, code, k;

	k = sscanf(line, "%c %d %d %lld %15s", &kind, &idx, &code, &size,
		   word);
	t = k >= 2 ? task_of(a, idx) : NULL;
	if (!t) {
		log_warn("run %s: unexpected line in tasks.ev on the host",
			 r->obj.name);
		return;
	}
	if (kind == 's' && t->st == 'Q') {
		t->st = 'R';
		run_array_put(r, idx, "status", "Running\n");
	} else if (kind == 'e' && k == 5 && final_word(word)) {
		t->size = size;
		if (t->st == 'E')
			return;
		t->st = 'E';
		snprintf(text, sizeof(text), "%d\n", code);
		run_array_put(r, idx, "exit_code", text);
		snprintf(text, sizeof(text), "%s\n", word);
		run_array_put(r, idx, "status", text);
	}
}

/* The whole lines of the events chunk; a cut last line waits for the
 * next round (the offset stops before it). */
static void take_events(struct ssh_arr *a, struct run_ctx *r,
			const struct ssh_poll_reply *p)
{
	const char *s = p->ev, *end = p->ev + p->ev_n, *nl;
	char line[96];

	a->ev_size = p->ev_size;
	while (s < end && (nl = memchr(s, '\n', end - s))) {
		snprintf(line, sizeof(line), "%.*s", (int)(nl - s), s);
		ev_line(a, r, line);
		a->ev_off += nl + 1 - s;
		s = nl + 1;
	}
}

static void take_logs(struct ssh_arr *a, struct run_ctx *r,
		      const struct ssh_poll_reply *p)
{
	struct ssh_task_reply tr;
	struct ssh_task *t;
	long long size;
	size_t pos = 0;

	while (ssh_poll_task(p, &pos, &tr) == 1) {
		t = task_of(a, tr.idx);
		if (!t || tr.log_n <= 0)
			continue;
		size = run_array_log(r, tr.idx, tr.log, tr.log_n);
		t->off = size >= 0 ? size : t->off + tr.log_n;
	}
}

int ssh_arr_take(struct ssh_arr *a, struct run_ctx *r,
		 const struct ssh_poll_reply *p)
{
	if (p->ev)
		take_events(a, r, p);
	take_logs(a, r, p);
	if (!p->ev || a->ev_off < a->ev_size)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (a->t[i].st == 'E' && a->t[i].off < a->t[i].size)
			return 0;
	return 1;
}
