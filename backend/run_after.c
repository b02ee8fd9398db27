// SPDX-License-Identifier: MIT
/*
 * `after`: the runs a run waits for.  Checked inside the write of the
 * setting and again at submit (every run it names exists, and none of
 * them waits, through its own `after`, for this one); then, on the
 * worker, asked before each start: the run waits while one of them has
 * not ended, and is canceled when one it needs Completed ended otherwise.
 * The names stay in the store (the setting, frozen at submit): a restart
 * finds them again.
 */
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/vec.h"
#include "ws_i.h"

/* Runs visited by one cycle search at most: a chain longer than this is
 * refused rather than walked (a write must answer). */
#define AFTER_WALK_MAX	4096

/* The `after` of run @id, parsed; an unreadable or invalid one (it was
 * checked when written) counts as empty. */
static void after_of(struct ws *ws, int64_t id, struct after_list *l)
{
	struct err e;
	size_t len;
	char *buf;

	l->n = 0;
	if (ws_read_text(ws, id, F_AFTER, &buf, &len))
		return;
	if (after_parse(buf, len, l, &e))
		l->n = 0;
	free(buf);
	run_inputs_runs(ws, id, l);	/* an input's run is waited for */
}

static int seen(const int64_t *v, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return 1;
	return 0;
}

/*
 * Does run @from reach run @self through `after` lines?  A walk over the
 * runs named, each once.  1 yes, 0 no, -E2BIG too many to walk.
 */
static int reaches(struct ws *ws, int64_t from, int64_t self)
{
	VEC(int64_t) todo = { 0 };
	struct after_list *l = malloc(sizeof(*l));
	struct obj d;
	size_t next = 0;
	int rc = 0;

	if (!l || vec_push(&todo, from))
		rc = -ENOMEM;
	while (!rc && next < todo.n) {
		if (todo.v[next] == self) {
			rc = 1;
			break;
		}
		after_of(ws, todo.v[next++], l);
		for (int i = 0; !rc && i < l->n; i++) {
			if (ws_find(ws, K_RUN, 0, l->deps[i].name, &d) ||
			    seen(todo.v, todo.n, d.id))
				continue;
			if (todo.n >= AFTER_WALK_MAX)
				rc = -E2BIG;
			else if (vec_push(&todo, d.id))
				rc = -ENOMEM;
		}
	}
	vec_free(&todo);
	free(l);
	return rc;
}

static int dep_check(struct ws *ws, const struct obj *o,
		     const struct after_dep *dep, struct err *e)
{
	struct obj d;
	int rc;

	if (!strcmp(dep->name, o->name))
		return err_set(e, -EINVAL, "run '%s' cannot wait for itself",
			       o->name);
	if (ws_find(ws, K_RUN, 0, dep->name, &d))
		return err_set(e, -EINVAL, "there is no run '%s' (see runs/)",
			       dep->name);
	rc = reaches(ws, d.id, o->id);
	if (rc == 1)
		return err_set(e, -EINVAL, "run '%s' waits, through its own"
			       " after, for '%s': that would be a cycle",
			       dep->name, o->name);
	if (rc == -E2BIG)
		return err_set(e, -EINVAL, "the runs '%s' waits for are more"
			       " than %d deep", dep->name, AFTER_WALK_MAX);
	return rc ? err_set(e, rc, "cannot check '%s': %s", dep->name,
			    strerror(-rc)) : 0;
}

/* One input: its run exists and makes no cycle, its version exists. */
static int input_check(struct ws *ws, const struct obj *o,
		       const struct input *in, struct err *e)
{
	struct after_dep d = { .any = 0 };
	struct err why;

	if (in->kind != INPUT_RUN)
		return run_inputs_model_check(ws, in, e);
	snprintf(d.name, sizeof(d.name), "%s", in->obj);
	if (dep_check(ws, o, &d, &why))
		return err_set(e, -EINVAL, "input '%s': %s", in->name,
			       why.msg);
	return 0;
}

int run_inputs_check(struct ws *ws, const struct obj *o, const char *buf,
		     size_t len, struct err *e)
{
	struct input_list *l = malloc(sizeof(*l));
	int rc;

	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	rc = inputs_parse(buf, len, l, e);
	for (int i = 0; !rc && i < l->n; i++)
		rc = input_check(ws, o, &l->in[i], e);
	free(l);
	return rc;
}

int run_after_check(struct ws *ws, const struct obj *o, const char *buf,
		    size_t len, struct err *e)
{
	struct after_list *l = malloc(sizeof(*l));
	int rc;

	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	rc = after_parse(buf, len, l, e);
	for (int i = 0; !rc && i < l->n; i++)
		rc = dep_check(ws, o, &l->deps[i], e);
	free(l);
	return rc;
}

/* Append ", NAME" (or "NAME" first) to @out, if room is left. */
static void name_add(char *out, size_t sz, const char *name)
{
	size_t n = strlen(out);

	if (n + strlen(name) + 8 < sz)
		snprintf(out + n, sz - n, "%s%s", n ? ", " : "", name);
	else if (n >= 3 && n + 6 < sz && strcmp(out + n - 3, "..."))
		snprintf(out + n, sz - n, ", ...");
}

/* One dependency: 1 it ended as needed, 0 not yet, -1 it cannot be
 * (@why says so). */
static int dep_state(struct ws *ws, const struct after_dep *dep,
		     char *why, size_t sz)
{
	struct obj d;

	if (ws_find(ws, K_RUN, 0, dep->name, &d)) {
		snprintf(why, sz, "canceled: run '%s', which it waits for, is"
			 " gone (removed or renamed)", dep->name);
		return -1;
	}
	if (!run_state_final(d.state))
		return 0;
	if (dep->any || d.state == RS_COMPLETED)
		return 1;
	snprintf(why, sz, "canceled: run '%s' ended %s, and this run waited"
		 " for it to complete (write '%s any' in after to run"
		 " anyway)", dep->name, state_name(d.state), dep->name);
	return -1;
}

int run_after_state(struct ws *ws, const struct after_list *l, char *why,
		    size_t sz)
{
	char names[ERR_MSG_MAX - 32] = "";
	int waiting = 0, rc;

	for (int i = 0; i < l->n; i++) {
		rc = dep_state(ws, &l->deps[i], why, sz);
		if (rc < 0)
			return AFTER_CANCEL;
		if (!rc) {
			waiting = 1;
			name_add(names, sizeof(names), l->deps[i].name);
		}
	}
	if (!waiting)
		return AFTER_READY;
	snprintf(why, sz, "waiting for %s", names);
	return AFTER_WAIT;
}
