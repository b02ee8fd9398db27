// SPDX-License-Identifier: MIT
/*
 * `inputs`: what a run reads by reference, never copied through the
 * mount.  Lines `NAME PATH` (parse.c inputs_parse); the run gets
 * $MLFS_INPUT_NAME, the path where it finds it:
 *   /ABSOLUTE/PATH            that path, read with the run's user's rights
 *   runs/RUN/outputs[/SUB]    RUN's outputs in the state dir; the run waits
 *                             for RUN to complete, as if `after` named it
 *   models/M/V[/SUB]          the version's files in the state dir
 * Checked inside the write (the runs and versions named exist, no cycle
 * through `after`: run_after.c's run_inputs_check) and again at submit;
 * resolved on the worker at start.
 * The drivers decide how the run sees them (local: a read-only view).
 */
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "ws_i.h"

/* The `inputs` of run @id, parsed into @l (allocated by the caller);
 * unreadable counts as none, an invalid one is said in @e. */
static int inputs_of(struct ws *ws, int64_t id, struct input_list *l,
		     struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	l->n = 0;
	if (ws_read_text(ws, id, F_INPUTS, &buf, &len))
		return 0;
	rc = inputs_parse(buf, len, l, e);
	free(buf);
	return rc;
}

void run_inputs_runs(struct ws *ws, int64_t id, struct after_list *l)
{
	struct input_list *in = malloc(sizeof(*in));
	struct err e;
	int i, j;

	if (!in)
		return;
	if (inputs_of(ws, id, in, &e))
		in->n = 0;
	for (i = 0; i < in->n && l->n < AFTER_MAX; i++) {
		if (in->in[i].kind != INPUT_RUN)
			continue;
		for (j = 0; j < l->n; j++)
			if (!strcmp(l->deps[j].name, in->in[i].obj))
				break;
		if (j < l->n)
			continue;	/* `after` says how: theirs stands */
		snprintf(l->deps[l->n].name, sizeof(l->deps[0].name), "%s",
			 in->in[i].obj);
		l->deps[l->n++].any = 0;
	}
	free(in);
}

/* Model @m's version @v, or -EINVAL with a sentence. */
static int find_version(struct ws *ws, const struct input *in,
			struct obj *v, struct err *e)
{
	struct obj m;

	if (ws_find(ws, K_MODEL, 0, in->obj, &m))
		return err_set(e, -EINVAL, "input '%s': there is no model '%s'"
			       " (see models/)", in->name, in->obj);
	if (ws_find(ws, K_VERSION, m.id, in->ver, v))
		return err_set(e, -EINVAL, "input '%s': model '%s' has no"
			       " version '%s'", in->name, in->obj, in->ver);
	return 0;
}

int run_inputs_model_check(struct ws *ws, const struct input *in,
			   struct err *e)
{
	struct obj v;

	return in->kind == INPUT_MODEL ? find_version(ws, in, &v, e) : 0;
}

/* Where @in is on the daemon's machine, into @path (PATH_MAX). */
static int input_where(struct ws *ws, const struct input *in, char *path,
		       struct err *e)
{
	char sub[PATH_MAX];
	struct obj o;
	int rc;

	if (in->kind == INPUT_PATH) {
		snprintf(path, PATH_MAX, "%s", in->path);
		return 0;
	}
	if (in->kind == INPUT_MODEL) {
		rc = find_version(ws, in, &o, e);
		snprintf(sub, sizeof(sub), RUN_FILES "%s%s", *in->path ? "/" :
			 "", in->path);
	} else {
		rc = ws_find(ws, K_RUN, 0, in->obj, &o) ?
		     err_set(e, -ENOENT, "input '%s': run '%s' is gone",
			     in->name, in->obj) : 0;
		snprintf(sub, sizeof(sub), RUN_WORK "/outputs%s%s",
			 *in->path ? "/" : "", in->path);
	}
	if (!rc)
		ws_obj_path(ws, o.id, sub, path);
	return rc;
}

int run_inputs_resolve(struct ws *ws, struct run_ctx *r, struct err *e)
{
	struct input_list *l = malloc(sizeof(*l));
	int rc;

	r->ninputs = 0;
	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	rc = inputs_of(ws, r->obj.id, l, e);
	if (!rc && l->n && !(r->inputs = calloc(l->n, sizeof(*r->inputs))))
		rc = err_set(e, -ENOMEM, "out of memory");
	for (int i = 0; !rc && i < l->n; i++) {
		snprintf(r->inputs[i].name, sizeof(r->inputs[i].name), "%s",
			 l->in[i].name);
		rc = input_where(ws, &l->in[i], r->inputs[i].path, e);
		if (!rc)
			r->ninputs++;
	}
	free(l);
	return rc;
}
