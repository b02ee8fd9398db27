// SPDX-License-Identifier: MIT
/*
 * The run kind: its control files, `submit`, `cancel`, `register` and
 * `clone` (checked and recorded inside the ctl write, on the FUSE request
 * thread), its info.json, and the transitions the worker and the drivers
 * report (ws_run_save, ws_run_note: worker threads only; their state
 * changes are in run_state.c).
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "deploy_i.h"
#include "env_i.h"
#include "userfile.h"
#include "ws_i.h"

static const struct file_desc run_files[] = {
	{ "command",	F_COMMAND,	FD_SETTING },
	{ "target",	F_TARGET,	FD_SETTING },
	{ "env",	F_ENV,		FD_SETTING },
	{ "resources",	F_RESOURCES,	FD_SETTING },
	{ "after",	F_AFTER,	FD_SETTING },
	{ "inputs",	F_INPUTS,	FD_SETTING },
	{ "environment", F_ENVIRONMENT,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "exit_code",	F_EXIT_CODE,	FD_GEN },
	{ "log",	F_LOG,		FD_DISK },
	{ "metrics",	F_METRICS,	FD_DISK },
	{ "metrics.svg", F_METRICS_SVG,	FD_DISK },
	{ "params",	F_PARAMS,	FD_DISK },
	{ "outputs",	F_OUTPUTS,	FD_DIRECTORY | FD_ENGINE,
	  RUN_WORK "/outputs", "the run" },
	{ "tasks",	F_TASKS,	FD_DIRECTORY | FD_ENGINE,
	  RUN_TASKS, "mlfs" },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
	{ "wait",	F_WAIT,		FD_WAIT },
};

#define RUN_SETTINGS (FBIT(F_COMMAND) | FBIT(F_TARGET) | FBIT(F_ENV) | \
		      FBIT(F_RESOURCES) | FBIT(F_AFTER) | FBIT(F_INPUTS) | \
		      FBIT(F_ENVIRONMENT))

#define RUN_IMAGE_MAX	128

static int trim_len(const char *s, size_t len)
{
	size_t a = 0;

	while (a < len && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' ||
			   s[a] == '\r'))
		a++;
	return a < len;
}

/* The exact image a run in an environment ran in (fixed at submit). */
static void json_image(struct ws *ws, cJSON *j, const struct obj *o)
{
	size_t len;
	char *buf;

	if (store_text_get(ws->st, o->id, TEXT_RUN_IMAGE, &buf, &len))
		return;
	ws_json_str(j, "image", buf);
	free(buf);
}

static void json_run(struct ws *ws, cJSON *j, const struct obj *o)
{
	struct obj t;

	ws_json_setting(ws, j, "command", o->id, F_COMMAND);
	if (o->target_id && !store_get(ws->st, o->target_id, &t))
		cJSON_AddStringToObject(j, "target", t.name);
	else
		ws_json_setting(ws, j, "target", o->id, F_TARGET);
	ws_json_setting(ws, j, "resources", o->id, F_RESOURCES);
	ws_json_setting(ws, j, "after", o->id, F_AFTER);
	ws_json_setting(ws, j, "inputs", o->id, F_INPUTS);
	ws_json_setting(ws, j, "environment", o->id, F_ENVIRONMENT);
	json_image(ws, j, o);
	if (o->exit_code >= 0)
		cJSON_AddNumberToObject(j, "exit_code", o->exit_code);
	else
		cJSON_AddNullToObject(j, "exit_code");
	ws_json_time(j, "queued", o->queued);
	ws_json_time(j, "started", o->started);
	ws_json_time(j, "ended", o->ended);
	/* only once ended: a generated file must not change by itself */
	if (o->started > 0 && o->ended > 0)
		cJSON_AddNumberToObject(j, "duration_seconds",
					o->ended - o->started);
	cJSON_AddStringToObject(j, "backend_id", o->backend_id);
	cJSON_AddStringToObject(j, "node", o->node);
	cJSON_AddStringToObject(j, "gpus", o->gpus);
	cJSON_AddBoolToObject(j, "cancel_requested", o->cancel);
}

/* Load the target a run names and check it can take runs. */
static int submit_target(struct ws *ws, const struct obj *o, struct obj *t,
			 struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	int rc;

	rc = ws_read_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e);
	if (rc)
		return rc;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (store_find(ws->st, K_TARGET, 0, name, t))
		return err_set(e, -ENOENT, "unknown target '%s': see targets/",
			       name);
	if (t->state != TS_SUCCEEDED)
		return err_set(e, -EBUSY, "target '%s' is %s, not Succeeded:"
			       " provision it first (echo provision >"
			       " targets/%s/ctl)", name,
			       state_name(t->state), name);
	return 0;
}

/*
 * A project's code/outputs is where the run's outputs start (the working
 * copy is made of code/): a folder, or nothing.  A file or a symlink there
 * would stand where the run writes its outputs and where outputs/ shows
 * them.
 */
static int submit_code_check(struct ws *ws, const struct obj *o,
			     struct err *e)
{
	char dir[PATH_MAX];
	struct stat st;
	int fd, code, rc;

	ws_obj_path(ws, o->id, NULL, dir);
	fd = userfile_work_root_open(dir, &code);
	if (fd < 0)	/* no files: nothing to check; else the copy says */
		return 0;
	rc = code ? fstatat(fd, "outputs", &st, AT_SYMLINK_NOFOLLOW) : -1;
	close(fd);
	if (rc || S_ISDIR(st.st_mode))
		return 0;
	return err_set(e, -EINVAL, "runs/%s/code/outputs is %s: ./outputs of"
		       " the working copy is the folder the run's outputs go"
		       " to; rename it", o->name, S_ISLNK(st.st_mode) ?
		       "a symbolic link" : "not a folder");
}

typedef int (*names_check)(struct ws *ws, const struct obj *o,
			   const char *buf, size_t len, struct err *e);

/* The runs (and versions) setting @file names still exist and make no
 * cycle: one may have been removed, or made to wait for this one, since
 * the write that checked them.  @what names the setting. */
static int submit_recheck(struct ws *ws, const struct obj *o, int file,
			  const char *what, names_check check, struct err *e)
{
	struct err why;
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, o->id, file, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read %s", what);
	rc = check(ws, o, buf, len, &why);
	free(buf);
	return rc ? err_set(e, rc, "%s: %s", what, why.msg) : 0;
}

/* Does `inputs` say something? */
static int has_inputs(struct ws *ws, const struct obj *o)
{
	struct input_list *l = malloc(sizeof(*l));
	struct err e;
	size_t len;
	char *buf;
	int n = 0;

	if (l && !ws_read_text(ws, o->id, F_INPUTS, &buf, &len)) {
		if (!inputs_parse(buf, len, l, &e))
			n = l->n;
		free(buf);
	}
	free(l);
	return n > 0;
}

static int submit_env_check(struct ws *ws, const struct obj *o,
			    const struct obj *t, char *image, struct err *e)
{
	const struct driver *d = driver_find(t->type);
	int rc;

	rc = env_run_image(ws, o, image, RUN_IMAGE_MAX, e);
	if (rc || !image[0])
		return rc;
	if (!d || !d->environments)
		return err_set(e, -EINVAL, "environment: target '%s' (%s)"
			       " cannot run in an environment yet; the local,"
			       " ssh, slurm and cluster targets can", t->name,
			       t->type);
	/* locally podman runs as root, the creator inside; on an ssh host
	 * the login runs it (targets/ssh_image.c) */
	if (!strcmp(t->type, "local") && (o->uid == 0 || geteuid() != 0))
		return err_set(e, -EINVAL, "environment: %s", o->uid == 0 ?
			       "a run of root cannot run in an environment"
			       " (a container never gets the host's root)" :
			       "runs in environments need a daemon that runs"
			       " as root");
	return 0;
}

/* Check everything a submit needs, without changing anything. */
static int submit_check(struct ws *ws, const struct obj *o, struct obj *t,
			char *image, struct err *e)
{
	struct kv_list env = { 0 }, cfg = { 0 };
	const struct driver *d;
	struct resources res = { 0 };
	char *buf, *nodes;
	size_t len;
	int rc, blank;

	rc = ws_read_text(ws, o->id, F_COMMAND, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read command");
	blank = !trim_len(buf, len);
	if (blank || memchr(buf, '\0', len)) {
		free(buf);
		return err_set(e, -EINVAL, "command is %s: write the shell"
			       " command to runs/%s/command", blank ? "empty" :
			       "not text (it holds a NUL byte)", o->name);
	}
	free(buf);
	rc = submit_code_check(ws, o, e);
	if (!rc)
		rc = submit_target(ws, o, t, e);
	if (rc)
		return rc;
	rc = ws_read_text(ws, o->id, F_ENV, &buf, &len);
	if (!rc) {
		rc = env_parse(buf, len, &env, e);
		free(buf);
		kv_free(&env);
		if (rc)
			return rc;	/* the sentence names env */
	}
	rc = ws_read_text(ws, o->id, F_RESOURCES, &buf, &len);
	if (!rc) {
		rc = resources_parse(buf, len, &res, e);
		free(buf);
		if (rc)
			return rc;	/* the sentence names resources */
	}
	rc = submit_recheck(ws, o, F_AFTER, "after", run_after_check, e);
	if (!rc)
		rc = submit_recheck(ws, o, F_INPUTS, "inputs", run_inputs_check,
				    e);
	if (rc)
		return rc;
	d = driver_find(t->type);
	if (!d)
		return err_set(e, -EIO, "target '%s' has unknown type '%s'",
			       t->name, t->type);
	rc = submit_env_check(ws, o, t, image, e);
	if (rc)
		return rc;
	/* a container a node: Slurm's jobs start one on each (srun); the
	 * local and ssh targets are one machine */
	if (image[0] && res.nodes > 1 && strcmp(t->type, "slurm") &&
	    strcmp(t->type, "cluster"))
		return err_set(e, -EINVAL, "environment: nodes > 1 does not"
			       " run in an environment on a %s target (a"
			       " container runs on one machine; slurm and"
			       " cluster targets run one a node)", t->type);
	if (!d->inputs && has_inputs(ws, o))
		return err_set(e, -EINVAL, "inputs: target '%s' (%s) cannot"
			       " give a run its inputs yet; the local, ssh,"
			       " slurm and cluster targets can", t->name, t->type);
	if (!d->arrays && res.array_n)
		return err_set(e, -EINVAL, "resources: target '%s' (%s) cannot"
			       " run an array yet; the local, ssh, slurm and"
			       " cluster targets can (or submit one run a"
			       " task)", t->name, t->type);
	if (!d->check_run)
		return 0;
	rc = ws_load_config(ws, t->id, &cfg, e);
	if (!rc && !(rc = ws_read_text(ws, t->id, F_NODES, &nodes, &len))) {
		rc = d->check_run(&cfg, nodes, &res, e);
		free(nodes);
	}
	kv_free(&cfg);
	return rc;
}

static int run_submit(struct ws *ws, struct obj *o, struct err *e)
{
	char image[RUN_IMAGE_MAX];
	struct obj t;
	int rc;

	if (o->state != RS_DRAFT)
		return err_set(e, -EBUSY, "run '%s' is %s: submit works only on"
			       " a Draft run", o->name, state_name(o->state));
	if (geteuid() != 0 && o->uid != geteuid())
		return err_set(e, -EACCES, "run '%s' belongs to uid %u, and this"
			       " daemon (uid %u, not root) runs only its own"
			       " user's runs", o->name, o->uid,
			       (unsigned)geteuid());
	rc = submit_check(ws, o, &t, image, e);
	if (!rc)	/* the run runs as its owner: theirs is the right */
		rc = ws_target_usable(&t, o->uid, o->gid, e);
	if (!rc)
		rc = store_text_put(ws->st, o->id, TEXT_RUN_IMAGE, image,
				    strlen(image));
	if (rc)
		return rc;
	pthread_mutex_lock(&ws->seq_lock);
	o->seq = ++ws->seq;
	pthread_mutex_unlock(&ws->seq_lock);
	o->state = RS_QUEUED;
	o->target_id = t.id;
	o->queued = wall_s();
	o->error[0] = '\0';
	o->exit_code = -1;
	rc = ws_update_obj(ws, o, RS_DRAFT, RUN_SETTINGS);
	if (rc == -EAGAIN)
		return err_set(e, -EBUSY, "run '%s' changed to %s meanwhile",
			       o->name, state_name(o->state));
	if (rc)
		return err_set(e, rc, "cannot record the submit: %s",
			       strerror(-rc));
	worker_kick(ws, o->id);
	return 0;
}

static int run_cancel(struct ws *ws, struct obj *o, struct err *e)
{
	int rc;

	if (!run_state_active(o->state))
		return err_set(e, -EBUSY, "run '%s' is %s: only a Queued,"
			       " Starting or Running run can be canceled",
			       o->name, state_name(o->state));
	if (o->cancel)
		return 0;
	o->cancel = 1;
	rc = ws_update_obj(ws, o, o->state, 0);
	if (rc == -EAGAIN && run_state_active(o->state)) {
		o->cancel = 1;
		rc = ws_update_obj(ws, o, o->state, 0);
	}
	if (rc)
		return err_set(e, rc == -EAGAIN ? -EBUSY : rc, "run '%s' is %s"
			       " now", o->name, state_name(o->state));
	ws_obj_event(ws, o, "cancel requested");
	worker_kick(ws, o->id);
	return 0;
}

/* ---- clone: a Draft copy of a run's files and settings ------------------ */

/*
 * The settings of @o into the new run @n as they are, unchecked: a
 * Draft's settings are checked when they are used (submit), and `after`
 * can make no cycle through a run nothing waits for yet.  Not the target
 * a submit chose, state, times, results: @n is a Draft.
 */
static int clone_settings(struct ws *ws, const struct obj *o,
			  const struct obj *n, struct err *e)
{
	static const int files[] = {
		F_COMMAND, F_TARGET, F_ENV, F_RESOURCES, F_AFTER, F_INPUTS,
		F_ENVIRONMENT
	};
	size_t len;
	char *buf;
	int rc;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		rc = ws_read_text(ws, o->id, files[i], &buf, &len);
		if (!rc) {
			rc = len ? store_text_put(ws->st, n->id, files[i],
						  buf, len) : 0;
			free(buf);
		}
		if (rc)
			return err_set(e, rc, "cannot copy the %s of run '%s':"
				       " %s", ws_file_by_id(K_RUN,
				       files[i])->name, o->name, strerror(-rc));
	}
	return 0;
}

/*
 * The user files of @o (code/ with them; outputs, log and metrics live
 * elsewhere) into @n's, read and made as the writer of the command: a
 * file they may not read is not copied (the clone fails), and every file
 * of the copy is theirs, set-id bits dropped.
 */
static int clone_files(struct ws *ws, const struct obj *o,
		       const struct obj *n, const struct ctl_cmd *c,
		       struct err *e)
{
	char src[PATH_MAX], dst[PATH_MAX];

	ws_obj_path(ws, o->id, RUN_FILES, src);
	ws_obj_path(ws, n->id, RUN_FILES, dst);
	return copy_files_as(src, dst, c->uid, c->gid, e);
}

/*
 * clone NEW: a Draft run NEW, the writer's, with @o's settings and files,
 * made inside the write (a local copy, reflinked where the file system
 * can): when `echo clone B > ctl` returns, B is complete and may be
 * submitted at once.  Any state of @o; @o itself does not change.
 */
static int run_clone(struct ws *ws, const struct obj *o,
		     const struct ctl_cmd *c, struct err *e)
{
	char why[ERR_MSG_MAX], text[MLFS_NAME_MAX + 32];
	struct err ignore = { { 0 } };
	struct obj n;
	int rc;

	if (c->argc != 2)
		return err_set(e, -EINVAL, "usage: clone NEW (the name of the"
			       " new run)");
	rc = ws_create(ws, K_RUN, 0, c->argv[1], c->uid, c->gid, &n, e);
	if (rc == -EEXIST)
		return err_set(e, rc, "clone: run '%s' already exists: name"
			       " a new run", c->argv[1]);
	if (rc) {
		snprintf(why, sizeof(why), "%s", e->msg);
		return err_set(e, rc, "clone: %s", why);
	}
	rc = clone_settings(ws, o, &n, e);
	if (!rc)
		rc = clone_files(ws, o, &n, c, e);
	if (rc) {
		/* e->msg is both the reason and where the sentence goes */
		snprintf(why, sizeof(why), "%s", e->msg);
		ws_remove(ws, n.id, &ignore);
		return err_set(e, rc, "clone %s: %s", c->argv[1], why);
	}
	snprintf(text, sizeof(text), "cloned from run %s", o->name);
	ws_obj_event(ws, &n, text);
	if (ws->hooks.inval_entry)
		ws->hooks.inval_entry(ws->hooks.ctx, K_RUN, 0, n.name);
	return 0;
}

static int run_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e)
{
	if (!strcmp(c->argv[0], "submit") && c->argc == 1)
		return run_submit(ws, o, e);
	if (!strcmp(c->argv[0], "cancel") && c->argc == 1)
		return run_cancel(ws, o, e);
	if (!strcmp(c->argv[0], "register"))
		return model_register(ws, o, c, e);
	if (!strcmp(c->argv[0], "clone"))
		return run_clone(ws, o, c, e);
	if (!strcmp(c->argv[0], "submit") || !strcmp(c->argv[0], "cancel"))
		return err_set(e, -EINVAL, "'%s' takes no arguments",
			       c->argv[0]);
	return err_set(e, -EINVAL, "unknown command '%s' for a run (commands:"
		       " submit, cancel, register, clone)", c->argv[0]);
}

int ws_run_save(struct ws *ws, struct run_ctx *r)
{
	struct obj o = r->obj;
	int rc;

	rc = ws_update_obj(ws, &o, r->obj.state, 0);
	if (!rc || rc == -EAGAIN)
		r->obj = o;
	return rc;
}

int ws_run_note(struct ws *ws, struct run_ctx *r, const char *error)
{
	char text[ERR_MSG_MAX + 16];
	int rc;

	if (!strcmp(r->obj.error, error ? error : ""))
		return 0;
	snprintf(r->obj.error, sizeof(r->obj.error), "%s", error ? error : "");
	rc = ws_run_save(ws, r);
	if (!rc && error && error[0]) {
		snprintf(text, sizeof(text), "error: %s", error);
		ws_obj_event(ws, &r->obj, text);
	}
	return rc;
}

int ws_run_cancel_for(struct ws *ws, struct run_ctx *r, const char *why)
{
	char text[ERR_MSG_MAX + 32];
	int rc;

	r->obj.cancel = 1;
	snprintf(r->obj.error, sizeof(r->obj.error), "%s", why);
	rc = ws_run_save(ws, r);
	if (!rc) {
		snprintf(text, sizeof(text), "cancel requested: %s", why);
		ws_obj_event(ws, &r->obj, text);
	}
	return rc;
}

int ws_run_after_cancel(struct ws *ws, struct run_ctx *r, const char *why)
{
	char sentence[ERR_MSG_MAX];
	int st = run_after_state(ws, &r->after, sentence, sizeof(sentence));

	if (r->obj.cancel || st == AFTER_WAIT)
		return st == AFTER_WAIT ? -EAGAIN : 0;
	return ws_run_cancel_for(ws, r, st == AFTER_CANCEL ? sentence : why);
}

/* ---- the run kind -------------------------------------------------------- */

static const char *run_ctl_valid(const struct obj *o)
{
	/* <NEW>, not a name: the text written back (a copy tool copying
	 * a run folder) is refused, never a clone called NEW */
	if (o->state == RS_DRAFT)
		return "submit\nclone <NEW>\n";
	if (run_state_active(o->state))
		return "cancel\nclone <NEW>\n";
	if (o->state == RS_COMPLETED)
		return "register NAME [PATH]\nclone <NEW>\n";
	return "clone <NEW>\n";
}

static int run_busy(struct ws *ws, const struct obj *o, struct err *e)
{
	(void)ws;
	if (run_state_active(o->state))
		return err_set(e, -EBUSY, "run '%s' is %s: cancel it"
			       " first", o->name, state_name(o->state));
	return 0;
}

static int run_draft(const struct obj *o)
{
	return o->state == RS_DRAFT;
}

/* `environment` names an environment (Ready is checked at submit). */
static int run_setting_check(struct ws *ws, const struct obj *o, int file,
			     const char *buf, size_t len, struct err *e)
{
	(void)o;
	if (file != F_ENVIRONMENT)
		return 1;
	return env_run_check(ws, buf, len, e);
}

static int run_setting_writable(const struct obj *o, int file)
{
	(void)file;
	return run_draft(o) ? 0 : -EROFS;
}

/* Not while it runs; outputs/ only once it ended; tasks/ never. */
static int run_user_removable(const struct obj *o, int root)
{
	if (root == F_TASKS || run_state_active(o->state))
		return 0;
	return root != F_OUTPUTS || run_state_final(o->state);
}

static int64_t run_worker(const struct obj *o)
{
	return o->target_id;
}

/* A finished run changes no more. */
static int run_settled(const struct obj *o)
{
	return run_state_final(o->state);
}

const struct kind_ops run_kind = {
	.name			= "run",
	.files			= run_files,
	.nfiles			= sizeof(run_files) / sizeof(run_files[0]),
	.initial_state		= RS_DRAFT,
	.mode			= 0755,
	.user_files		= 1,
	.files_shared		= 0,
	.child_kind		= K_NONE,
	.page			= "index.html",
	.page_render		= run_index_page,
	.verb			= run_verb,
	.ctl_valid		= run_ctl_valid,
	.json			= json_run,
	.busy			= run_busy,
	.may_remove		= NULL,
	.may_rename		= NULL,
	.setting_writable	= run_setting_writable,
	.files_writable		= run_draft,
	.files_readonly_why	= NULL,
	.settled		= run_settled,
	.user_removable		= run_user_removable,
	.unlink_ctl		= ws_ebusy,
	.worker_of		= run_worker,
	.render			= NULL,
	.setting_check		= run_setting_check,
};
