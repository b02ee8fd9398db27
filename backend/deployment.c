// SPDX-License-Identifier: MIT
/*
 * The deployment kind: its control files and its table.  `deploy`,
 * `restart` and `delete` are checked here for the target's permission and
 * then by deploy_ctl.c (deployment_verb), inside the ctl write on the FUSE
 * request thread; the replicas' state machine is deploy_sm.c's, on the
 * target's worker.
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "deploy_i.h"
#include "endpoint_i.h"
#include "env_i.h"
#include "ws_i.h"

static const struct file_desc deployment_files[] = {
	{ "model",	F_MODEL,	FD_SETTING },
	{ "target",	F_TARGET,	FD_SETTING },
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "env",	F_ENV,		FD_SETTING | FD_SECRET },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "scoring_uri", F_SCORING_URI,	FD_GEN },
	{ "key",	F_KEY,		FD_GEN | FD_SECRET },
	{ "log",	F_LOG,		FD_DISK },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
	{ "replicas",	F_REPLICAS,	FD_GEN },
	{ "endpoint",	F_ENDPOINT,	FD_SETTING },
	{ "environment", F_ENVIRONMENT,	FD_SETTING },
};


/* The deployment's target (the one `deploy` will take, or the one it
 * serves on for `restart`) may be used by the deployment's owner. */
static int deploy_target_usable(struct ws *ws, const struct obj *o,
				const char *verb, struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj t;

	if (!strcmp(verb, "restart")) {
		if (ws_get(ws, o->target_id, &t))
			return 0;	/* deploy_ctl.c says why */
		return ws_target_usable(&t, o->uid, o->gid, e);
	}
	if (strcmp(verb, "deploy"))
		return 0;
	if (ws_read_word(ws, o->id, F_TARGET, "target", name, sizeof(name), e))
		return 0;
	if (!name[0])
		snprintf(name, sizeof(name), "local");
	if (store_find(ws->st, K_TARGET, 0, name, &t))
		return 0;
	return ws_target_usable(&t, o->uid, o->gid, e);
}


static int deployment_kind_verb(struct ws *ws, struct obj *o,
				const struct ctl_cmd *c, struct err *e)
{
	int rc;

	rc = deploy_target_usable(ws, o, c->argv[0], e);
	/* out of an endpoint's routing before a replica is told to stop:
	 * no request is sent to one draining */
	if (!rc && !strcmp(c->argv[0], "delete") && c->argc == 1 &&
	    o->state != DS_DRAFT)
		ep_dep_deleted(ws, o);
	if (!rc)
		rc = deployment_verb(ws, o, c, e);
	return rc;
}

static const char *deployment_ctl_valid(const struct obj *o)
{
	if (o->state == DS_DRAFT)
		return "deploy\n";
	if (o->state == DS_TRANSITIONING)
		return "delete\n";
	return "deploy\nrestart\ndelete\n";
}

static int deployment_busy(struct ws *ws, const struct obj *o, struct err *e)
{
	(void)ws;
	if (o->state != DS_DRAFT && o->state != DS_FAILED)
		return err_set(e, -EBUSY, "deployment '%s' is %s:"
			       " delete it first", o->name,
			       state_name(o->state));
	return 0;
}

static int deployment_setting_writable(const struct obj *o, int file)
{
	/* joining or leaving an endpoint changes nothing it serves */
	if (file == F_ENDPOINT)
		return 0;
	return o->state == DS_TRANSITIONING ? -EROFS : 0;
}

static int deployment_setting_check(struct ws *ws, const struct obj *o,
				    int file, const char *buf, size_t len,
				    struct err *e)
{
	/* an environment that exists (Ready is checked at deploy) */
	if (file == F_ENVIRONMENT)
		return env_run_check(ws, buf, len, e);
	if (file != F_ENDPOINT)
		return 1;
	return ep_join_check(ws, o, buf, len, e);
}

/* The endpoint joined looks again now (the one left, at its next tick). */
static void deployment_setting_changed(struct ws *ws, const struct obj *o,
				       int file)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj ep;

	if (file != F_ENDPOINT)
		return;
	ep_joined(ws, o->id, name, sizeof(name));
	if (name[0] && !ws_find(ws, K_ENDPOINT, 0, name, &ep))
		worker_kick(ws, ep.id);
}

static int deployment_files_writable(const struct obj *o)
{
	(void)o;
	return 1;
}

static int64_t deployment_worker(const struct obj *o)
{
	return o->target_id;
}

/* `replicas`: "ready N" and "desired M" of the serving generation (or
 * the one coming up when none serves yet). */
static int replicas_render(const struct obj *o, char **buf, size_t *len)
{
	int ready, desired;
	char text[64];

	deploy_replica_counts(o, &ready, &desired);
	snprintf(text, sizeof(text), "ready %d\ndesired %d\n", ready,
		 desired);
	*buf = strdup(text);
	if (!*buf)
		return -ENOMEM;
	*len = strlen(text);
	return 0;
}

/* scoring_uri, replicas: kept in the deployment's row (one transaction
 * with its state). */
static int deployment_render(const struct obj *o, int file, char **buf,
			     size_t *len)
{
	if (file == F_REPLICAS)
		return replicas_render(o, buf, len);
	if (file != F_SCORING_URI)
		return -ENOENT;
	return ws_line_text(deploy_scoring_uri(o), buf, len);
}

const struct kind_ops deployment_kind = {
	.name			= "deployment",
	.files			= deployment_files,
	.nfiles			= sizeof(deployment_files) /
				  sizeof(deployment_files[0]),
	.initial_state		= DS_DRAFT,
	.mode			= 0755,
	.user_files		= 1,
	.files_shared		= 0,
	.child_kind		= K_NONE,
	.verb			= deployment_kind_verb,
	.ctl_valid		= deployment_ctl_valid,
	.json			= deployment_json,
	.busy			= deployment_busy,
	.may_remove		= NULL,
	.may_rename		= NULL,
	.setting_writable	= deployment_setting_writable,
	.files_writable		= deployment_files_writable,
	.files_readonly_why	= NULL,
	.settled		= NULL,
	.user_removable		= NULL,
	/* rm -r of a serving deployment empties nothing and then fails at
	 * rmdir with EBUSY */
	.unlink_ctl		= NULL,
	.worker_of		= deployment_worker,
	.render			= deployment_render,
	.made			= NULL,
	.setting_check		= deployment_setting_check,
	.setting_changed	= deployment_setting_changed,
};
