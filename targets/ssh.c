// SPDX-License-Identifier: MIT
/*
 * The SSH driver: an existing Linux machine attached over OpenSSH.
 *
 * Every remote step is the system's ssh (or rsync, or tar piped into ssh)
 * started with
 * posix_spawnp, argv only, each value quoted for the remote shell
 * (ssh_script.c), each call killed after a timeout (ssh_exec.c).  Calls
 * share one connection per target (ControlMaster, socket in the target's
 * folder), so a poll costs one round trip on an open connection.
 *
 * Its files, each calling only down (never sideways nor up):
 *
 *   ssh.c         the driver table, config validation (pure), attach
 *                 (provision, refresh) and detach
 *   ssh_run.c     runs: slots, setup, poll, fetch, cancel, adopt
 *   ssh_deploy.c  deployments: replicas on the host
 *   ssh_common.c  what runs and deployments share (ssh_common.h): the target's
 *                 state, the connection, remote calls, copies
 *   ssh_script.c, ssh_quote.c, ssh_exec.c: the remote scripts, quoting,
 *                 and running ssh/rsync/tar with a timeout
 *
 * Worker thread only, except ssh_validate and ssh_check_run (pure).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/driver.h"
#include "../lib/log.h"
#include "../lib/vec.h"
#include "../backend/ws.h"
#include "gpu.h"
#include "ssh_deploy.h"
#include "ssh_exec.h"
#include "ssh_common.h"
#include "ssh_quote.h"
#include "ssh_run.h"
#include "ssh_script.h"

#define REMOVE_BATCH	1000		/* folders per remove round trip */

static const char *const ssh_keys[] = {
	"host", "port", "user", "identity_file", "workdir", "max_concurrent",
	"connect_timeout", "cancel_grace_seconds", "transfer", "input_cache",
	"direct_ports", NULL
};

static const char *const ssh_live_keys[] = {
	"max_concurrent", "cancel_grace_seconds", "input_cache", NULL
};

/* ---- validation (pure) ------------------------------------------------- */

static int check_transfer(const char *v, struct err *e)
{
	/* "scp", the old name of what is now tar, stays accepted: scp itself
	 * is never run (it follows symlinks; see ssh_copy) */
	if (!strcmp(v, "auto") || !strcmp(v, "rsync") || !strcmp(v, "tar") ||
	    !strcmp(v, "scp"))
		return 0;
	return err_set(e, -EINVAL, "transfer must be auto, rsync or tar, not"
		       " '%.64s'", v);
}

static int ssh_validate(const struct kv_list *cfg, struct err *e)
{
	char why[SSH_WHY_MAX];
	const char *v;
	long n;
	int rc = 0, x;

	v = kv_get(cfg, "host");
	if (!v || !*v)
		return err_set(e, -EINVAL, "config needs host = NAME: the"
			       " machine to attach");
	rc = ssh_check_host(v, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "user")))
		rc = ssh_check_user(v, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "port")))
		rc = ssh_check_port(v, &x, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "identity_file")))
		rc = ssh_check_identity_file(v, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "workdir")))
		rc = ssh_check_workdir(v, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "input_cache")))
		rc = ssh_check_dir("input_cache", v, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "max_concurrent")))
		rc = ssh_check_max_concurrent(v, &x, why, sizeof(why));
	if (!rc && (v = kv_get(cfg, "connect_timeout")))
		rc = ssh_check_connect_timeout(v, &x, why, sizeof(why));
	if (rc)
		return err_set(e, rc, "%s", why);
	v = kv_get(cfg, "cancel_grace_seconds");
	if (v && (rc = parse_int(v, 0, 3600, &n, "cancel_grace_seconds", e)))
		return rc;
	v = kv_get(cfg, "direct_ports");
	if (v && strcmp(v, "yes") && strcmp(v, "no"))
		return err_set(e, -EINVAL, "direct_ports must be yes or no,"
			       " not '%.64s'", v);
	v = kv_get(cfg, "transfer");
	return v ? check_transfer(v, e) : 0;
}

static int ssh_check_run(const struct kv_list *cfg, const char *nodes,
			 const struct resources *res, struct err *e)
{
	(void)cfg;
	return check_one_node(res, nodes, "an ssh target", e);
}

/* ---- provision, detach ------------------------------------------------- */

struct detect {
	char workdir[1024];
	char host[128];
	char os[64];
	long cpus, gpus;
	unsigned long long memory;
	int rsync, setsid;
};

static void detect_parse(const char *out, struct detect *d)
{
	const char *line = out;

	memset(d, 0, sizeof(*d));
	while (line && *line) {
		if (!strncmp(line, "workdir ", 8))
			sscanf(line + 8, "%1023[^\n]", d->workdir);
		else if (!strncmp(line, "host ", 5))
			sscanf(line + 5, "%127s", d->host);
		else if (!strncmp(line, "os ", 3))
			sscanf(line + 3, "%63s", d->os);
		sscanf(line, "cpus %ld", &d->cpus);
		sscanf(line, "gpus %ld", &d->gpus);
		sscanf(line, "memory %llu", &d->memory);
		sscanf(line, "rsync %d", &d->rsync);
		sscanf(line, "setsid %d", &d->setsid);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
}

/* Connect and read the host's facts; a sentence about any failure. */
static int detect(struct target_ctx *t, int strict, struct detect *d,
		  struct err *e)
{
	struct sx_result res;
	struct ssh_conn c;
	char why[ERR_MSG_MAX];
	char *script;
	int rc;

	rc = ssh_conn_of(t, strict, &c, e);
	if (rc)
		return rc;
	script = ssh_script_detect(ssh_workdir(t));
	if (!script)
		return err_set(e, -ENOMEM, "out of memory");
	rc = ssh_conn_exec(&c, script, SSH_CALL_TIMEOUT, 65536, &res);
	free(script);
	if (rc)
		return err_set(e, -EIO, "%s", res.err);
	if (ssh_conn_why(&c, &res, SSH_CALL_TIMEOUT, why, sizeof(why)) !=
	    SX_OK) {
		sx_result_free(&res);
		return err_set(e, -EIO, "%s", why);
	}
	detect_parse(res.out ? res.out : "", d);
	sx_result_free(&res);
	if (strcmp(d->os, "Linux"))
		return err_set(e, -EIO, "%s runs %s: the ssh target needs a"
			       " Linux host", c.t.host, d->os[0] ? d->os :
			       "an unknown system");
	if (!d->setsid)
		return err_set(e, -EIO, "%s has no setsid command (util-linux):"
			       " runs could not outlive the connection",
			       c.t.host);
	return 0;
}

static int make_nodes(struct target_ctx *t, const struct detect *d,
		      char **nodes, struct err *e)
{
	struct ssh_tgt *s = ssh_tgt_of(t);

	s->cpus = d->cpus > 0 ? d->cpus : 1;
	s->gpus.n = d->gpus < GPU_MAX ? (int)d->gpus : GPU_MAX;
	s->nodes_read = 1;
	snprintf(s->node, sizeof(s->node), "%s", d->host[0] ? d->host :
		 ssh_host(t));
	if (asprintf(nodes, "%s up %ld %lluM %d\n", s->node, s->cpus,
		     d->memory / (1024 * 1024), s->gpus.n) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* Attach: a fresh connection (accept-new: a first key is recorded, a
 * changed one refused), the workdir made, cores, memory, GPUs read. */
static int ssh_provision(struct target_ctx *t, char **nodes, struct err *e)
{
	const char *id = kv_get(&t->config, "identity_file");
	struct ssh_tgt *s = ssh_tgt_of(t);
	struct ssh_conn c;
	struct detect d;
	int rc;

	char copy[PATH_MAX];

	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	/* read again at each provision: a new key is taken */
	rc = id && *id ? ssh_identity_copy(t, id, 1, copy, e) :
	     ssh_identity_needed(t, e);
	if (rc)
		return rc;
	rc = ssh_conn_of(t, 0, &c, e);
	if (rc)
		return rc;
	ssh_conn_close(&c);	/* check the host key on a new connection */
	rc = detect(t, 0, &d, e);
	if (rc)
		return rc;
	rc = ssh_use_rsync(t, d.rsync, e);
	if (rc < 0)
		return rc;
	s->rsync = rc;
	log_info("target %s: attached %s@%s:%d (%s, workdir %s, %s)",
		 t->obj.name, c.t.user, c.t.host, c.t.port ? c.t.port : 22,
		 d.host, d.workdir, s->rsync ? "rsync" : "tar");
	return make_nodes(t, &d, nodes, e);
}

static int ssh_refresh(struct target_ctx *t, char **nodes, struct err *e)
{
	struct detect d;
	int rc;

	rc = detect(t, 1, &d, e);
	if (rc)
		return rc;
	rc = ssh_use_rsync(t, d.rsync, e);
	if (rc < 0)
		return rc;
	ssh_tgt_of(t)->rsync = rc;
	return make_nodes(t, &d, nodes, e);
}

struct rid_list {
	int64_t target;
	char **v;
	int n;
	size_t cap;
};

/* Collect the remote folders of the target's finished runs. */
static int rid_cb(void *arg, const struct obj *o)
{
	struct rid_list *l = arg;
	char rid[48];

	if (o->target_id != l->target || !run_state_final(o->state) ||
	    sscanf(o->backend_id, "ssh %*s %47s", rid) != 1)
		return 0;
	if (vec_reserve(l, 2))
		return 1;
	l->v[l->n] = strdup(rid);
	if (l->v[l->n])
		l->v[++l->n] = NULL;
	return 0;
}

static int remove_batch(struct ssh_conn *c, const char *workdir,
			char **rids, char *why, size_t n)
{
	struct sx_result res;
	enum sx_why w;
	char *script;

	script = ssh_script_remove(workdir, (const char *const *)rids);
	if (!script)
		return -ENOMEM;
	if (ssh_conn_exec(c, script, SSH_CALL_TIMEOUT, 4096, &res)) {
		free(script);
		snprintf(why, n, "%s", res.err);
		return -EIO;
	}
	free(script);
	w = ssh_conn_why(c, &res, SSH_CALL_TIMEOUT, why, n);
	sx_result_free(&res);
	return w == SX_OK ? 0 : -EIO;
}

/* Remove the working copies of the target's finished runs from the host. */
static int remove_copies(struct target_ctx *t, struct ssh_conn *c, char *why,
			 size_t n)
{
	struct rid_list l = { .target = t->obj.id };
	int rc = 0;

	ws_list(t->ws, K_RUN, 0, 0, rid_cb, &l);
	for (int i = 0; i < l.n && !rc; i += REMOVE_BATCH) {
		int end = i + REMOVE_BATCH < l.n ? i + REMOVE_BATCH : l.n;
		char *keep = l.v[end];

		l.v[end] = NULL;
		rc = remove_batch(c, ssh_workdir(t), l.v + i, why, n);
		l.v[end] = keep;
	}
	for (int i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

/* Forget the target's state (what runs on the host keeps running). */
static void tgt_free(struct target_ctx *t)
{
	struct ssh_tgt *s = t->priv;

	if (s)
		ssh_deploy_free(s->dep);
	free(s);
	t->priv = NULL;
}

/* Detach: no active runs nor live deployments (the workspace checked);
 * remove the finished runs' working copies (best effort: an unreachable
 * host is detached anyway, with a warning in events), close the shared
 * connection. */
static int ssh_deprovision(struct target_ctx *t, struct err *e)
{
	char why[ERR_MSG_MAX], text[ERR_MSG_MAX + 64];
	struct ssh_conn c;
	int rc;

	rc = ssh_conn_of(t, 1, &c, e);
	if (rc)
		return rc;
	if (remove_copies(t, &c, why, sizeof(why))) {
		log_warn("target %s: %s", t->obj.name, why);
		snprintf(text, sizeof(text), "warning: the working copies on"
			 " the host were not removed: %s", why);
		ws_event(t->ws, K_TARGET, t->obj.name, text);
	}
	ssh_conn_close(&c);
	tgt_free(t);
	return 0;
}

static void ssh_release(struct target_ctx *t)
{
	struct ssh_conn c;
	struct err e;

	if (t->obj.state == TS_SUCCEEDED && kv_get(&t->config, "host") &&
	    !ssh_conn_of(t, 1, &c, &e))
		ssh_conn_close(&c);
	tgt_free(t);
}

const struct driver ssh_driver = {
	.type		= "ssh",
	.config_keys	= ssh_keys,
	.live_keys	= ssh_live_keys,
	.can_host	= 1,
	.inputs		= 1,
	.arrays		= 1,
	.environments	= 1,
	.deploy_host	= "0.0.0.0",
	.validate	= ssh_validate,
	.check_run	= ssh_check_run,
	.provision	= ssh_provision,
	.deprovision	= ssh_deprovision,
	.refresh	= ssh_refresh,
	.can_start	= ssh_can_start,
	.start		= ssh_start,
	.poll		= ssh_poll,
	.cancel		= ssh_cancel,
	.adopt		= ssh_adopt,
	.release_run	= ssh_release_run,
	.release	= ssh_release,
	.check_deploy	= NULL,		/* a fixed port: checked on the host */
	.replica_start	= ssh_replica_start,
	.replica_poll	= ssh_replica_poll,
	.replica_stop	= ssh_replica_stop,
	.replica_adopt	= ssh_replica_adopt,
	.replica_load	= ssh_replica_load,
	.replica_release = ssh_replica_release,
	.health		= ssh_health,
	.service_host	= ssh_service_host,
	.direct_host	= ssh_direct_host,
	.undeploy	= ssh_undeploy,
};
