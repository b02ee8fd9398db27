// SPDX-License-Identifier: MIT
/*
 * The environment kind: a container image the workspace builds and keeps
 * (environments/NAME/).  Its folder holds what the image is made of -- a
 * Containerfile (or Dockerfile) and its context, copied in by the user --
 * or its `config` names an image of the machine's store (image = NAME) or
 * a root file system tarball to import (rootfs = PATH).  FUSE threads:
 * ctl build/rebuild/cancel are recorded here; the build itself runs on
 * the environments' worker (env_sm.c), never on a request thread.
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_i.h"
#include "env_i.h"
#include "ws_i.h"

static const struct file_desc env_files[] = {
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "image",	F_IMAGE,	FD_GEN },
	{ "log",	F_LOG,		FD_DISK },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

/* ---- config ------------------------------------------------------------- */

/* NAME[:TAG] or an id as podman takes them: no blank, no option. */
static int image_name_valid(const char *s, struct err *e)
{
	size_t n = strlen(s);

	if (!n || s[0] == '-' || n >= 256 || strspn(s,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-/:@") != n)
		return err_set(e, -EINVAL, "config: image '%s' is not an image"
			       " name (NAME[:TAG] or an id)", s);
	return 0;
}

int env_config_parse(const char *buf, size_t len, struct env_config *c,
		     struct err *e)
{
	static const char *const keys[] = { "image", "rootfs", NULL };
	struct kv_list kv = { 0 };
	const char *v;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = kv_parse(buf, len, &kv, e);
	if (!rc)
		rc = kv_check_keys(&kv, keys, "environment", e);
	if (!rc && kv_get(&kv, "image") && kv_get(&kv, "rootfs"))
		rc = err_set(e, -EINVAL, "config: give image or rootfs, not"
			     " both");
	v = kv_get(&kv, "image");
	if (!rc && v) {
		rc = image_name_valid(v, e);
		snprintf(c->image, sizeof(c->image), "%s", v);
	}
	v = kv_get(&kv, "rootfs");
	if (!rc && v && (v[0] != '/' || strlen(v) >= sizeof(c->rootfs)))
		rc = err_set(e, -EINVAL, "config: rootfs must be an absolute"
			     " path (of a tarball of a root file system)");
	if (!rc && v)
		snprintf(c->rootfs, sizeof(c->rootfs), "%s", v);
	kv_free(&kv);
	return rc;
}

/* ---- ctl ---------------------------------------------------------------- */

/* Building, for @what ("build", "rebuild"): the worker starts it. */
static int env_build(struct ws *ws, struct obj *o, const char *what,
		     struct err *e)
{
	struct obj n;
	int rc = -EAGAIN;

	for (int i = 0; i < 5 && rc == -EAGAIN; i++) {
		if (o->state == ES_BUILDING)
			return err_set(e, -EBUSY, "environment '%s' is being"
				       " built: wait, or echo cancel > ctl",
				       o->name);
		n = *o;
		n.state = ES_BUILDING;
		snprintf(n.type, sizeof(n.type), "%s", what);
		n.backend_id[0] = '\0';
		n.error[0] = '\0';
		rc = ws_update_obj(ws, &n, o->state, FBIT(F_IMAGE));
		*o = n;
	}
	if (rc)
		return err_set(e, rc, "cannot record the build: %s",
			       strerror(-rc));
	worker_kick(ws, o->id);
	return 0;
}

static int env_cancel(struct ws *ws, struct obj *o, struct err *e)
{
	struct obj n;
	int rc = -EAGAIN;

	for (int i = 0; i < 5 && rc == -EAGAIN; i++) {
		if (o->state != ES_BUILDING)
			return err_set(e, -EBUSY, "environment '%s' is %s: only"
				       " a build under way can be canceled",
				       o->name, state_name(o->state));
		n = *o;
		snprintf(n.type, sizeof(n.type), "cancel");
		rc = ws_update_obj(ws, &n, ES_BUILDING, 0);
		*o = n;
	}
	if (rc)
		return err_set(e, rc, "cannot record the cancel: %s",
			       strerror(-rc));
	ws_obj_event(ws, o, "cancel requested");
	worker_kick(ws, o->id);
	return 0;
}

static int env_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		    struct err *e)
{
	const char *v = c->argv[0];

	if (strcmp(v, "build") && strcmp(v, "rebuild") && strcmp(v, "cancel"))
		return err_set(e, -EINVAL, "unknown command '%s' for an"
			       " environment (commands: build, rebuild,"
			       " cancel)", v);
	if (c->argc != 1)
		return err_set(e, -EINVAL, "'%s' takes no arguments", v);
	if (!strcmp(v, "cancel"))
		return env_cancel(ws, o, e);
	return env_build(ws, o, v, e);
}

static const char *env_ctl_valid(const struct obj *o)
{
	if (o->state == ES_BUILDING)
		return "cancel\n";
	return "build\nrebuild\n";
}

/* ---- runs that use an environment ----------------------------------------- */

struct use_ctx {
	struct ws *ws;
	const char *name;
	char run[MLFS_NAME_MAX + 1];
};

/* The first word of run @id's `environment` into @out ("" none). */
static void run_env_name(struct ws *ws, int64_t id, char *out, size_t sz)
{
	struct err e;

	if (ws_read_word(ws, id, F_ENVIRONMENT, "environment", out, sz, &e))
		out[0] = '\0';
}

static int use_cb(void *arg, const struct obj *r)
{
	struct use_ctx *c = arg;
	char name[MLFS_NAME_MAX + 2];

	if (!run_state_active(r->state))
		return 0;
	run_env_name(c->ws, r->id, name, sizeof(name));
	if (strcmp(name, c->name))
		return 0;
	snprintf(c->run, sizeof(c->run), "%s", r->name);
	return 1;
}

/* Building, or used by a Queued, Starting or Running run or by a
 * deployment: not removed. */
static int env_busy(struct ws *ws, const struct obj *o, struct err *e)
{
	struct use_ctx c = { ws, o->name, "" };

	if (o->state == ES_BUILDING)
		return err_set(e, -EBUSY, "environment '%s' is being built:"
			       " echo cancel > ctl first", o->name);
	ws_list(ws, K_RUN, 0, 0, use_cb, &c);
	if (c.run[0])
		return err_set(e, -EBUSY, "environment '%s' is used by run"
			       " '%s', which is not finished", o->name,
			       c.run);
	if (deploy_holds_env(ws, o->name, o->state == ES_READY ? o->node :
			     NULL, c.run, sizeof(c.run)))
		return err_set(e, -EBUSY, "environment '%s' is used by"
			       " deployment '%s': delete that first (echo"
			       " delete > deployments/%s/ctl)", o->name,
			       c.run, c.run);
	return 0;
}

/* rmdir, once not busy: its image leaves podman's store when nothing
 * holds it any more (env_prune, on the housekeeping worker). */
static int env_may_remove(struct ws *ws, const struct obj *o, struct err *e)
{
	(void)e;
	env_prune_add(ws, o);
	return 0;
}

/* ---- the rest of the table ----------------------------------------------- */

static int env_setting_check(struct ws *ws, const struct obj *o, int file,
			     const char *buf, size_t len, struct err *e)
{
	struct env_config c;

	(void)ws;
	(void)o;
	if (file != F_CONFIG)
		return 1;
	return env_config_parse(buf, len, &c, e);
}

/* What it is made of changes only while no build reads it. */
static int env_setting_writable(const struct obj *o, int file)
{
	(void)file;
	return o->state == ES_BUILDING ? -EROFS : 0;
}

static int env_files_writable(const struct obj *o)
{
	return o->state != ES_BUILDING;
}

/* Not while a build copies them. */
static int env_user_removable(const struct obj *o, int root)
{
	(void)root;
	return o->state != ES_BUILDING;
}

static void env_readonly_why(const struct obj *o, struct err *e)
{
	err_set(e, -EROFS, "environment '%s' is being built from its files:"
		" wait, or echo cancel > ctl", o->name);
}

static int64_t env_worker(const struct obj *o)
{
	(void)o;
	return ENV_WORKER_ID;
}

static int env_render(const struct obj *o, int file, char **buf,
		      size_t *len)
{
	if (file != F_IMAGE)
		return -ENOENT;
	return ws_line_text(o->state == ES_READY ? o->node : "", buf, len);
}

static void env_json(struct ws *ws, cJSON *j, const struct obj *o)
{
	ws_json_str(j, "image", o->state == ES_READY ? o->node : "");
	ws_json_setting(ws, j, "config", o->id, F_CONFIG);
	ws_json_str(j, "last_command", o->type);
}

const struct kind_ops env_kind = {
	.name			= "environment",
	.files			= env_files,
	.nfiles			= sizeof(env_files) / sizeof(env_files[0]),
	.initial_state		= ES_DRAFT,
	.mode			= 0755,
	.user_files		= 1,
	.files_shared		= 0,
	.child_kind		= K_NONE,
	.verb			= env_verb,
	.ctl_valid		= env_ctl_valid,
	.json			= env_json,
	.busy			= env_busy,
	.may_remove		= env_may_remove,
	.may_rename		= NULL,
	.setting_writable	= env_setting_writable,
	.files_writable		= env_files_writable,
	.files_readonly_why	= env_readonly_why,
	.settled		= NULL,
	.user_removable		= env_user_removable,
	.unlink_ctl		= ws_ebusy,
	.worker_of		= env_worker,
	.render			= env_render,
	.made			= NULL,
	.setting_check		= env_setting_check,
	.setting_changed	= NULL,
};
