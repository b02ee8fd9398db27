// SPDX-License-Identifier: MIT
/*
 * The cluster driver (type = cluster): a Slurm cluster that the workspace
 * makes, grows and shrinks itself, out of machines reached over ssh.
 *
 * provision checks the hosts (cluster_hosts.c), writes the cluster's
 * files and starts its controller here (cluster_ctl.c): munged,
 * slurmctld, slurmrestd.  The hosts' nodes are Slurm CLOUD nodes: Slurm's
 * power saving starts slurmd on a host when a job needs it and stops it
 * after idle_seconds (targets/mlfs-cluster-power, over ssh); min_nodes of
 * them are kept up, only the first max_nodes are in the partition.
 *
 * Runs take the slurm driver's code path unchanged: its functions get a
 * config made here (url of our slurmrestd, a token minted for the
 * target's owner, our partition) through slurm_target.over.
 *
 * The refresh (every REFRESH_S while idle, from the poll while runs are
 * active) supervises the controller (a process gone is started again and
 * said in events), reads the nodes (an events line per state change),
 * keeps min_nodes up and gives down nodes another chance.  Worker thread
 * only, but for validate and check_run (cluster_config.c).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "../lib/clock.h"
#include "../lib/log.h"
#include "cluster_i.h"
#include "slurm_i.h"
#include "ssh_common.h"

#define REFRESH_S	2	/* seconds between two refreshes */
#define DOWN_RETRY_S	60.0	/* a down node gets another try after */
#define DOWN_RETRY_MAX_S 1920.0	/* … doubled at each try, up to */
#define MIN_EVERY_S	15.0	/* between two power-ups for min_nodes */
#define WAIT_REFRESH_S	0.5	/* between refreshes while a run waits */
#define ASKED_UP_S	10.0	/* a node asked up reads powered_down till then */

/* ---- the cluster's view --------------------------------------------------- */

struct cl_view {
	struct kv_list copy;
	struct cluster_cfg c;
	struct cluster *cl;
};

static int view(struct target_ctx *t, struct cl_view *v, struct err *e)
{
	int rc;

	memset(v, 0, sizeof(*v));
	rc = cluster_cfg_parse(&t->config, &v->copy, &v->c, e);
	if (!rc) {
		v->cl = cl_get(t, e);
		rc = v->cl ? 0 : -ENOMEM;
	}
	return rc;
}

static void view_done(struct cl_view *v)
{
	kv_free(&v->copy);
}

static const char *owner_name(const struct target_ctx *t, char *buf,
			      size_t n)
{
	struct passwd *pw = getpwuid(t->obj.uid);

	snprintf(buf, n, "%s", pw ? pw->pw_name : "");
	return buf;
}

/* The slurm driver's config for our controller, with a token for the
 * target's owner (minted again when old). */
static int slurm_side(struct target_ctx *t, struct cluster *cl,
		      struct err *e)
{
	char user[64];
	int rc;

	if (cl->slurm_kv.n && wall_s() - cl->token_at < CL_TOKEN_LIFE / 2)
		return 0;	/* current */
	if (!owner_name(t, user, sizeof(user))[0])
		return err_set(e, -ENOENT, "the target's owner (uid %u) has no"
			       " user name", t->obj.uid);
	rc = cl_token(cl, user, e);
	if (rc)
		return rc;
	snprintf(cl->kv_text, sizeof(cl->kv_text),
		 "url = http://127.0.0.1:%d\nuser = %s\ntoken = %s\n"
		 "partition = %s\napi_version = v0.0.38\npoll_seconds = 1\n",
		 cl->rest_port, user, cl->token, CL_PARTITION);
	kv_free(&cl->slurm_kv);
	return kv_parse(cl->kv_text, strlen(cl->kv_text), &cl->slurm_kv, e);
}

/* ---- nodes -------------------------------------------------------------------- */

/* Slurm's state ("idle+cloud+powered_down") as one of ours. */
static const char *node_word(const char *s)
{
	if (!strncmp(s, "down", 4) || strstr(s, "drain") ||
	    strstr(s, "fail"))
		return "down";
	if (strstr(s, "powering_down") || strstr(s, "power_down"))
		return "powering_down";
	if (strstr(s, "powered_down"))
		return "powered_down";
	if (strstr(s, "powering_up"))
		return "powering_up";
	if (strstr(s, "not_responding"))
		return "down";
	if (!strncmp(s, "allocated", 9) || !strncmp(s, "completing", 10))
		return "allocated";
	if (!strncmp(s, "mixed", 5))
		return "mixed";
	if (!strncmp(s, "idle", 4))
		return "idle";
	return "unknown";
}

/* The index of node @name ("node3" → 2), or -1. */
static int node_index(const char *name, int n)
{
	char *end;
	long i;

	if (strncmp(name, "node", 4))
		return -1;
	i = strtol(name + 4, &end, 10);
	return *end || i < 1 || i > n ? -1 : (int)i - 1;
}

static void node_event(struct target_ctx *t, struct cluster *cl, int i,
		       const char *addr, const char *word, const char *reason)
{
	char text[512], name[32];

	if (!strcmp(cl->last[i], word))
		return;
	cluster_node_name(i, name, sizeof(name));
	if (cl->last[i][0]) {
		snprintf(text, sizeof(text), "node %s %s%s%s", name, word,
			 reason[0] ? " " : "", reason);
		ws_event(t->ws, K_TARGET, t->obj.name, text);
	}
	if (reason[0]) {	/* the last node that went down says why */
		snprintf(text, sizeof(text), "node %s (%s) is down: %s", name,
			 addr, reason);
		ws_target_note(t->ws, t, text);
	}
	snprintf(cl->last[i], sizeof(cl->last[i]), "%s", word);
}

/* Our `nodes` text: NAME STATE CPUS MEMORY GPUS ADDRESS [reason]. */
static char *nodes_text(struct target_ctx *t, struct cluster *cl,
			const struct cluster_cfg *c, struct slurm_node *nd,
			size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		int i = node_index(nd[k].name, c->nhosts);
		const char *w = node_word(nd[k].state);
		const char *why = strcmp(w, "down") ? "" : nd[k].reason;

		if (i < 0)
			continue;
		/* Slurm takes a power_up at its next power-save pass (every
		 * second): until then the node still reads powered_down, and
		 * asking again would move its boot request past the boot
		 * time the node reports, which Slurm then ignores until
		 * resume_seconds pass */
		if (!strcmp(w, "powered_down") && cl->asked_up[i] &&
		    mono_s() - cl->asked_up[i] < ASKED_UP_S)
			w = "powering_up";
		else if (strcmp(w, "powered_down"))
			cl->asked_up[i] = 0;
		cl->state[i] = w;
		cl->off[i] = strstr(nd[k].state, "powered_down") != NULL;
		snprintf(cl->reason[i], sizeof(cl->reason[i]), "%s", why);
		node_event(t, cl, i, c->hosts[i], w, why);
		fprintf(f, "%s %s %u %lluM %u %s%s%s\n", nd[k].name, w,
			nd[k].cpus, nd[k].memory_mib, nd[k].gpus, c->hosts[i],
			why[0] ? " " : "", why);
	}
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

static int read_nodes(struct target_ctx *t, struct cluster *cl,
		      const struct cluster_cfg *c, char **text, struct err *e)
{
	struct slurm_target *st;
	struct http_result res = { 0 };
	struct slurm_node *nd = NULL;
	char path[128], msg[ERR_MSG_MAX];
	size_t n = 0;
	int rc;

	rc = sl_ready(t, &st, e);
	if (rc)
		return rc;
	sl_api_path(st, path, sizeof(path), "/nodes");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	if (!rc && slurm_api_parse_nodes(res.body, &nd, &n, msg, sizeof(msg)))
		rc = err_set(e, -EIO, "%s", msg);
	http_result_free(&res);
	if (!rc) {
		*text = nodes_text(t, cl, c, nd, n);
		rc = *text ? 0 : err_set(e, -ENOMEM, "out of memory");
	}
	free(nd);
	return rc < 0 ? rc : (rc ? -EIO : 0);
}

/* Nodes in the partition that are up or on their way. */
static int nodes_up(const struct cluster *cl, const struct cluster_cfg *c)
{
	int up = 0;

	for (int i = 0; i < c->max_nodes; i++)
		up += cl->state[i] && strcmp(cl->state[i], "powered_down") &&
		      strcmp(cl->state[i], "powering_down") &&
		      strcmp(cl->state[i], "down");
	return up;
}

/* Power up @need of the powered-down nodes in the partition; returns how
 * many were asked for. */
static int power_up(struct cluster *cl, const struct cluster_cfg *c, int need)
{
	char list[CL_HOSTS_MAX * 12] = "", name[32];
	char arg[sizeof(list) + 16];
	size_t used = 0;
	int n = 0;
	struct err e;

	for (int i = 0; i < c->max_nodes && n < need; i++) {
		if (!cl->state[i] || strcmp(cl->state[i], "powered_down"))
			continue;
		cluster_node_name(i, name, sizeof(name));
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%s", used ? "," : "", name);
		cl->state[i] = "powering_up";	/* until the next refresh */
		cl->asked_up[i] = mono_s();
		n++;
	}
	if (!n)
		return 0;
	snprintf(arg, sizeof(arg), "nodename=%s", list);
	if (cl_scontrol(cl, NULL, 0, &e, "update", arg, "state=power_up",
			NULL))
		log_warn("cluster: %s", e.msg);
	return n;
}

/* Power up powered-down nodes until min_nodes are up. */
static void keep_min(struct cluster *cl, const struct cluster_cfg *c)
{
	int need = (int)c->min_nodes - nodes_up(cl, c);

	if (need <= 0 || mono_s() - cl->min_at < MIN_EVERY_S)
		return;
	if (power_up(cl, c, need))
		cl->min_at = mono_s();
}

/*
 * A node that is down (its host could not be started: mlfs's helper set
 * it down, or it did not register within resume_seconds) is offered again
 * after DOWN_RETRY_S, then twice as long after each failed try (a host
 * that stays away does not draw every job to itself): powered off first
 * when Slurm still waits for it, then returned to service powered down,
 * so that the next job that needs it tries its host again.
 */
static void retry_down(struct cluster *cl, const struct cluster_cfg *c)
{
	char arg[64], name[32];
	struct err e;

	for (int i = 0; i < c->nhosts; i++) {
		const char *s = cl->state[i];

		if (s && (!strcmp(s, "idle") || !strcmp(s, "allocated") ||
			  !strcmp(s, "mixed")))
			cl->retry_s[i] = 0;	/* it started: no backoff */
		if (!s || strcmp(s, "down")) {
			cl->down_at[i] = 0;
			continue;
		}
		if (!cl->retry_s[i])
			cl->retry_s[i] = DOWN_RETRY_S;
		if (!cl->down_at[i])
			cl->down_at[i] = mono_s();
		if (mono_s() - cl->down_at[i] < cl->retry_s[i])
			continue;
		cluster_node_name(i, name, sizeof(name));
		snprintf(arg, sizeof(arg), "nodename=%s", name);
		if (cl_scontrol(cl, NULL, 0, &e, "update", arg, cl->off[i] ?
				"state=resume" : "state=power_down_force",
				NULL))
			log_warn("cluster: %s", e.msg);
		cl->down_at[i] = 0;
		if (cl->off[i] && cl->retry_s[i] < DOWN_RETRY_MAX_S)
			cl->retry_s[i] *= 2;	/* 1, 2, 4 … 32 min */
	}
}

/* The files in /run are gone after a reboot: made again from what
 * provision learnt, before the controller starts. */
static int run_files(struct target_ctx *t, struct cl_view *v, struct err *e)
{
	char conf[PATH_MAX], ctl[256], id[PATH_MAX];
	int rc;

	snprintf(conf, sizeof(conf), "%s/slurm.conf", v->cl->run);
	if (!access(conf, F_OK))
		return 0;
	rc = cl_load_facts(v->cl, ctl, sizeof(ctl), id, e);
	return rc ? rc : cl_write_files(t, v->cl, &v->c, ctl, id, e);
}

/* Supervision and nodes: one refresh. */
static int refresh(struct target_ctx *t, struct cl_view *v, char **nodes,
		   struct err *e)
{
	char again[128] = "", text[256];
	int rc;

	rc = run_files(t, v, e);
	if (!rc)
		rc = cl_ensure(t, v->cl, again, sizeof(again), e);
	if (again[0]) {
		snprintf(text, sizeof(text), "controller: %s %s again (%s)",
			 again, strchr(again, ',') ? "were started" :
			 "was started", rc ? e->msg : "it had stopped");
		ws_event(t->ws, K_TARGET, t->obj.name, text);
	}
	if (!rc)
		rc = slurm_side(t, v->cl, e);
	if (!rc)
		rc = read_nodes(t, v->cl, &v->c, nodes, e);
	if (!rc) {
		keep_min(v->cl, &v->c);
		retry_down(v->cl, &v->c);
	}
	v->cl->checked_at = mono_s();
	return rc;
}

static int cluster_refresh(struct target_ctx *t, char **nodes, struct err *e)
{
	struct cl_view v;
	int rc;

	rc = view(t, &v, e);
	if (!rc)
		rc = refresh(t, &v, nodes, e);
	view_done(&v);
	if (!rc)	/* the image cache's pass, when due */
		sl_cache_prune(t);
	return rc;
}

/* ---- provision, update, deprovision ---------------------------------------- */

static int identity_of(struct target_ctx *t, const struct cluster_cfg *c,
		       char *out, struct err *e)
{
	out[0] = '\0';
	if (c->identity_file)
		return ssh_identity_copy(t, c->identity_file, 1, out, e);
	return ssh_identity_needed(t, e);
}

static int cluster_provision(struct target_ctx *t, char **nodes,
			     struct err *e)
{
	char version[32], ctl[256] = "", id[PATH_MAX];
	struct cl_view v;
	int rc;

	if (geteuid() != 0)
		return err_set(e, -EPERM, "a managed cluster needs the daemon"
			       " to run as root (it starts munged and"
			       " slurmctld for the cluster)");
	rc = view(t, &v, e);
	if (!rc)
		rc = cl_local_version(version, sizeof(version), e);
	if (!rc)
		rc = mkdir(v.cl->dir, 0700) && errno != EEXIST ?
		     err_set(e, -errno, "cannot create %s", v.cl->dir) : 0;
	if (!rc)
		rc = identity_of(t, &v.c, id, e);
	if (!rc)
		rc = cl_hosts_check(t, v.cl, &v.c, id, version, ctl,
				    sizeof(ctl), e);
	if (!rc)
		rc = cl_write_files(t, v.cl, &v.c, ctl, id, e);
	if (!rc)
		rc = cl_ensure(t, v.cl, NULL, 0, e);
	if (!rc)
		rc = slurm_side(t, v.cl, e);
	if (!rc)
		rc = refresh(t, &v, nodes, e);
	if (rc && v.cl)		/* files stay for a look: deprovision */
		cl_stop(t, v.cl, 0);
	view_done(&v);
	return rc;
}

/* resize / live keys: slurm.conf written again, slurmctld reconfigured
 * (no job is touched), the partition follows max_nodes. */
static int cluster_update(struct target_ctx *t, char **nodes, struct err *e)
{
	char ctl[256], id[PATH_MAX];
	struct cl_view v;
	int rc;

	rc = view(t, &v, e);
	if (!rc)
		rc = cl_load_facts(v.cl, ctl, sizeof(ctl), id, e);
	if (!rc)
		rc = cl_write_files(t, v.cl, &v.c, ctl, id, e);
	if (!rc)
		rc = cl_scontrol(v.cl, NULL, 0, e, "reconfigure", NULL);
	if (!rc) {
		v.cl->min_at = 0;
		rc = refresh(t, &v, nodes, e);
	}
	view_done(&v);
	return rc;
}

static int cluster_deprovision(struct target_ctx *t, struct err *e)
{
	struct err he = { { 0 } };
	struct cl_view v;
	char text[ERR_MSG_MAX + 64];
	int rc;

	rc = view(t, &v, e);
	if (!rc && cl_hosts_clean(t, v.cl, &v.c, &he)) {
		snprintf(text, sizeof(text), "deprovision: %s", he.msg);
		ws_event(t->ws, K_TARGET, t->obj.name, text);
	}
	if (!v.cl)
		v.cl = cl_get(t, e);
	if (v.cl) {
		cl_stop(t, v.cl, 1);
		memset(v.cl->last, 0, sizeof(v.cl->last));
		kv_free(&v.cl->slurm_kv);
	}
	{
		char p[PATH_MAX];

		ws_obj_path(t->ws, t->obj.id, "keys/identity", p);
		unlink(p);
	}
	view_done(&v);
	return rc;
}

/* ---- runs: the slurm driver's, once the controller is up ------------------ */

/* Ready for the slurm code: supervision at most every REFRESH_S. */
static int ready(struct target_ctx *t)
{
	struct cluster *cl;
	struct err e = { { 0 } };
	char *nodes = NULL;

	cl = cl_get(t, &e);
	if (!cl)
		return -ENOMEM;
	if (cl->slurm_kv.n && mono_s() - cl->checked_at <
	    (cl->wait_run ? WAIT_REFRESH_S : REFRESH_S))
		return 0;
	if (!cluster_refresh(t, &nodes, &e) && nodes)
		ws_target_set_nodes(t->ws, t, nodes);
	free(nodes);
	return cl->slurm_kv.n ? 0 : -EAGAIN;
}

/* Nodes of the partition in @word ("idle"), or up (idle, mixed,
 * allocated) when @word is NULL. */
static int count_nodes(const struct cluster *cl, const struct cluster_cfg *c,
		       const char *word)
{
	int n = 0;

	for (int i = 0; i < c->max_nodes; i++) {
		const char *s = cl->state[i];

		if (!s)
			continue;
		if (word ? !strcmp(s, word) : (!strcmp(s, "idle") ||
		    !strcmp(s, "mixed") || !strcmp(s, "allocated")))
			n++;
	}
	return n;
}

/*
 * Slurm 22.05 launches a job that it placed on a node still powering up
 * only at its next periodic check (job_time_limit, every 30 s), long after
 * the node came up.  So a run that needs more nodes than are up waits
 * here, Queued, while we power up the missing ones; it goes to Slurm once
 * they are up (Slurm starts it at once); a node that goes down meanwhile
 * is replaced by another powered-down one at once.  After resume_seconds,
 * or when not enough nodes can come up (down ones), it goes to Slurm anyway,
 * which powers nodes up, places it elsewhere or keeps it pending: never a
 * run held here for good.  Runs wait in order (the worker's FIFO): one
 * at a time.
 */
static int wait_for_nodes(struct target_ctx *t, struct run_ctx *r)
{
	struct cluster *cl;
	struct cl_view v;
	struct err e = { { 0 } };
	int need = r->res.nodes > 0 ? (int)r->res.nodes : 1, up, coming, go;
	char why[128];

	if (view(t, &v, &e))
		return 0;
	cl = v.cl;
	up = count_nodes(cl, &v.c, NULL);
	coming = count_nodes(cl, &v.c, "powering_up");
	go = up >= need ||
	     up + coming + count_nodes(cl, &v.c, "powered_down") < need;
	if (!go && cl->wait_run != r->obj.id) {
		cl->wait_run = r->obj.id;
		cl->wait_since = mono_s();
		power_up(cl, &v.c, need - up - coming);
		snprintf(why, sizeof(why), "waiting for %d node%s of %s to"
			 " start", need - up, need - up > 1 ? "s" : "",
			 t->obj.name);
		sl_run_get(r);
		sl_run_note(r, why);
	} else if (!go && mono_s() - cl->wait_since > (double)v.c.resume_s) {
		go = 1;
	} else if (!go && up + coming < need) {
		/* one it asked for went down (its host is cut off): others
		 * are powered up now, not after resume_seconds */
		power_up(cl, &v.c, need - up - coming);
	}
	if (go && cl->wait_run == r->obj.id)
		cl->wait_run = 0;
	view_done(&v);
	return go;
}

static int cluster_can_start(struct target_ctx *t, struct run_ctx *r)
{
	return !ready(t) && wait_for_nodes(t, r) && slurm_can_start(t, r);
}

static int cluster_start(struct target_ctx *t, struct run_ctx *r,
			 struct err *e)
{
	ready(t);
	return slurm_start(t, r, e);
}

static int cluster_start_after(struct target_ctx *t, struct run_ctx *r,
			       const struct run_dep *deps, int n,
			       struct err *e)
{
	ready(t);
	return slurm_start_after(t, r, deps, n, e);
}

static void cluster_poll(struct target_ctx *t, struct run_ctx **runs, int n)
{
	ready(t);
	slurm_poll(t, runs, n);
}

static int cluster_cancel(struct target_ctx *t, struct run_ctx *r,
			  struct err *e)
{
	ready(t);
	return slurm_cancel(t, r, e);
}

static int cluster_adopt(struct target_ctx *t, struct run_ctx *r,
			 struct err *e)
{
	ready(t);
	return slurm_adopt(t, r, e);
}

static void cluster_release(struct target_ctx *t)
{
	struct slurm_target *st = t->priv;
	struct cluster *cl = st ? st->ext : NULL;

	if (cl) {
		kv_free(&cl->slurm_kv);
		explicit_bzero(cl->token, sizeof(cl->token));
		free(cl);
		st->ext = NULL;
		st->over = NULL;
	}
	sl_release(t);
}

const struct driver cluster_driver = {
	.type		= "cluster",
	.config_keys	= cluster_keys,
	.live_keys	= cluster_live_keys,
	.multi_keys	= cluster_multi_keys,
	.can_host	= 0,
	.inputs		= 1,
	.arrays		= 1,
	.environments	= 1,
	.refresh_seconds = REFRESH_S,
	.validate	= cluster_validate,
	.check_run	= cluster_check_run,
	.provision	= cluster_provision,
	.deprovision	= cluster_deprovision,
	.update		= cluster_update,
	.refresh	= cluster_refresh,
	.can_start	= cluster_can_start,
	.start		= cluster_start,
	.start_after	= cluster_start_after,
	.after_by	= "Slurm dependency",
	.poll		= cluster_poll,
	.cancel		= cluster_cancel,
	.adopt		= cluster_adopt,
	.release_run	= slurm_release_run,
	.release	= cluster_release,
};
