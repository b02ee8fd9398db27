// SPDX-License-Identifier: MIT
/*
 * Endpoints, the worker's side: the endpoints' worker (one thread for all
 * of them, EP_WORKER_ID) looks at each started endpoint every EP_TICK_MS:
 * its proxy running (started, or adopted after a daemon restart by its pid
 * file; restarted when it died), reloaded when the deployments behind it
 * or its config changed, its `stats` written, its status Healthy or
 * Unhealthy (a deployment with weight out of the rotation).  Housekeeping
 * stops the proxies of endpoints that were removed.  A user's change
 * (traffic, mirror, a key) reaches a running proxy through ep_apply on the
 * FUSE thread that wrote it: the runtime API is a local unix socket,
 * answered between two requests, each command bounded by EP_API_MS.
 *
 * What the proxy runs with is kept per endpoint in struct ep_live, guarded
 * by ep_lock (the worker and FUSE threads both send it commands: one at a
 * time, so that an older text never overwrites a newer one).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "deploy_i.h"
#include "endpoint_i.h"
#include "endpoint_proxy.h"
#include "ws_i.h"

#define STOP_GRACE_MS	2000
#define LOG_TAIL	65536	/* of the log, for the percentiles */
#define EP_MAX		256	/* endpoints looked at per tick */
/* the proxy's workers drop to nobody under a root daemon */
#define NOBODY		65534

struct ep_live {
	int64_t id;
	pid_t pid;			/* its master, 0: none */
	char dir[PATH_MAX];
	char tag[32];
	struct ep_proxy p;		/* p.dir, p.tag: the two above */
	uint64_t fp;			/* what it was started or reloaded
					 * with (members, config) */
	int seen;			/* this tick */
	struct ep_live *next;
};

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep_live *lives;

void ep_proxy_dir(struct ws *ws, int64_t id, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s/endpoints/%lld", ws_state_dir(ws),
		 (long long)id);
}

/* Under ep_lock. */
static struct ep_live *live_find(int64_t id)
{
	for (struct ep_live *l = lives; l; l = l->next)
		if (l->id == id)
			return l;
	return NULL;
}

static uint64_t dir_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct ep_live *live_get(struct ws *ws, int64_t id)
{
	struct ep_live *l;

	pthread_mutex_lock(&ep_lock);
	l = live_find(id);
	if (!l && (l = calloc(1, sizeof(*l)))) {
		l->id = id;
		ep_proxy_dir(ws, id, l->dir, sizeof(l->dir));
		/* the abstract sockets between the proxy's two hops are
		 * the host's: the state dir makes two daemons' apart */
		snprintf(l->tag, sizeof(l->tag), "%llx-%lld",
			 (unsigned long long)dir_hash(ws_state_dir(ws)),
			 (long long)id);
		l->next = lives;
		lives = l;
	}
	pthread_mutex_unlock(&ep_lock);
	return l;
}

/* ---- what the proxy is given --------------------------------------------- */

void ep_joined(struct ws *ws, int64_t id, char *name, size_t sz)
{
	struct err e;

	if (ws_read_word(ws, id, F_ENDPOINT, "endpoint", name, sz, &e) ||
	    !strcmp(name, "-"))
		name[0] = '\0';
}

void ep_keys_get(struct ws *ws, int64_t id, char k[2][EP_KEY_MAX])
{
	struct err e;

	for (int i = 0; i < 2; i++)
		if (ws_read_word(ws, id, i ? TEXT_EP_SECONDARY :
				 TEXT_EP_PRIMARY, "key", k[i], EP_KEY_MAX, &e))
			k[i][0] = '\0';
}

/* traffic and mirror as stored.  1 when the traffic is a split (its
 * weights sum to 100, or it is empty), 0 when it is not (yet): lines
 * still to come, see endpoint.c's traffic_check. */
static int load_split(struct ws *ws, int64_t id, struct ep_traffic *t,
		      struct ep_mirror *m)
{
	struct err e;
	size_t len;
	char *buf;
	int ok = 1;

	memset(t, 0, sizeof(*t));
	memset(m, 0, sizeof(*m));
	if (!ws_read_text(ws, id, F_TRAFFIC, &buf, &len)) {
		if (ep_traffic_parse(buf, len, t, &e)) {
			memset(t, 0, sizeof(*t));
			ok = 0;
		}
		free(buf);
	}
	if (!ws_read_text(ws, id, F_MIRROR, &buf, &len)) {
		if (ep_mirror_parse(buf, len, m, &e))
			memset(m, 0, sizeof(*m));
		free(buf);
	}
	return ok;
}

static int weight_in(const struct ep_traffic *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->w[i].name, name))
			return t->w[i].weight;
	return 0;
}

/* http://HOST:PORT/score or http://[V6]:PORT/score */
static int uri_split(const char *uri, char *host, size_t sz, int *port)
{
	const char *h = uri + 7, *end;
	size_t n;

	if (strncmp(uri, "http://", 7))
		return -EINVAL;
	if (*h == '[') {
		end = strchr(++h, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
	} else {
		end = strchr(h, ':');
		if (!end)
			return -EINVAL;
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= sz)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = atoi(end + (*end == ']' ? 2 : 1));
	return *port > 0 && *port < 65536 ? 0 : -EINVAL;
}

struct members_ctx {
	struct ws *ws;
	const struct obj *ep;
	struct ep_proxy *p;
	const struct ep_traffic *t;
};

/*
 * Does @d serve?  Healthy or Unhealthy; or Transitioning while a
 * generation of it serves on the same address (a rolling update, a
 * restart, autoscale's new replicas, a delete draining): it stays in the
 * proxy, so that new replicas never take it out of the rotation nor
 * reload the proxy when it is back.
 */
static int serves(const struct obj *d)
{
	return d->state == DS_HEALTHY || d->state == DS_UNHEALTHY ||
	       (d->state == DS_TRANSITIONING && d->dep.gen > 0 &&
		d->dep.scoring_uri[0]);
}

/* A deployment of the endpoint's owner that joined it and serves. */
static int member_cb(void *arg, const struct obj *d)
{
	struct members_ctx *c = arg;
	char name[MLFS_NAME_MAX + 2], k[EP_KEY_MAX];
	struct ep_backend *b;
	struct err e;
	int desired;

	if (c->p->n >= EP_DEPS_MAX || d->uid != c->ep->uid || !serves(d))
		return 0;
	ep_joined(c->ws, d->id, name, sizeof(name));
	if (strcmp(name, c->ep->name))
		return 0;
	b = &c->p->b[c->p->n];
	memset(b, 0, sizeof(*b));
	if (uri_split(deploy_scoring_uri(d), b->host, sizeof(b->host),
		      &b->port) ||
	    ws_read_word(c->ws, d->id, F_KEY, "key", k, sizeof(k), &e))
		return 0;
	snprintf(b->name, sizeof(b->name), "%s", d->name);
	b->id = d->id;
	snprintf(b->key, sizeof(b->key), "%s", k);
	b->weight = weight_in(c->t, d->name);
	deploy_replica_counts(d, &b->replicas, &desired);
	b->nrep = deploy_direct_ports(d->id, b->rhost, sizeof(b->rhost),
				      b->rep, EP_REPS_MAX);
	ep_slots_fill(b);	/* what a new configuration starts with */
	c->p->n++;
	return 0;
}

/* A free port on @host, or 0. */
static int pick_port(const char *host)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd, port = 0;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* The port: config's, else the one picked at the first start (kept in
 * the row: the URI stays), else a free one now. */
static int port_of(const struct obj *o, const struct ep_config *c)
{
	int port = 0;

	if (c->port)
		return c->port;
	if (sscanf(o->ddata, "port %d", &port) == 1 && port > 0)
		return port;
	return pick_port(c->host);
}

/*
 * build - what the proxy of @o runs with, into @l->p: config, port,
 * the deployments behind it, traffic and mirror.  0 or -EINVAL with a
 * sentence (a config that no longer parses, no free port).
 */
static int build(struct ws *ws, const struct obj *o, struct ep_proxy *p,
		 struct ep_live *l, struct err *e)
{
	struct ep_traffic t;
	struct members_ctx c = { ws, o, p, &t };
	size_t len;
	char *buf;
	int rc;

	memset(p, 0, sizeof(*p));
	p->dir = l->dir;
	p->tag = l->tag;
	rc = ws_read_text(ws, o->id, F_CONFIG, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read config");
	rc = ep_config_parse(buf, len, &p->cfg, e);
	free(buf);
	if (rc)
		return rc;
	p->port = port_of(o, &p->cfg);
	if (!p->port)
		return err_set(e, -EADDRINUSE, "no free port on %s",
			       p->cfg.host);
	if (geteuid() == 0)
		p->run_uid = p->run_gid = NOBODY;
	load_split(ws, o->id, &t, &p->mirror);
	ws_list(ws, K_DEPLOYMENT, 0, 0, member_cb, &c);
	return 0;
}

/* What a reload is for: the deployments behind it and the config. */
static uint64_t fingerprint(const struct ep_proxy *p)
{
	uint64_t h = 0;
	char text[512];

	for (int i = -1; i < p->n; i++) {
		if (i < 0)
			snprintf(text, sizeof(text), "%s %d %d %ld %ld",
				 p->cfg.host, p->port,
				 p->run_uid, p->cfg.request_timeout_ms,
				 p->cfg.max_body);
		else
			snprintf(text, sizeof(text), "%s %s %d %s",
				 p->b[i].name, p->b[i].host, p->b[i].port,
				 p->b[i].key);
		h = h * 31 + dir_hash(text);
	}
	return h;
}

/*
 * @p's weights and mirror as stored now, under ep_lock: a change written
 * while @p was built (a user's, or a deployment deleted) is not undone by
 * the files made from it.  A split not finished yet keeps what the proxy
 * runs with (@l's).
 */
static void split_fresh(struct ws *ws, const struct ep_live *l,
			struct ep_proxy *p)
{
	struct ep_traffic t;
	int ok = load_split(ws, l->id, &t, &p->mirror);

	for (int i = 0; i < p->n; i++) {
		const char *name = p->b[i].name;

		if (ok) {
			p->b[i].weight = weight_in(&t, name);
			continue;
		}
		p->b[i].weight = 0;
		for (int j = 0; j < l->p.n; j++)
			if (!strcmp(l->p.b[j].name, name))
				p->b[i].weight = l->p.b[j].weight;
	}
}

/* The fingerprint of @p's config alone (no deployment). */
static uint64_t fp_head(const struct ep_proxy *p)
{
	struct ep_proxy head = *p;

	head.n = 0;
	return fingerprint(&head);
}

/* @p's files (keys from the store).  Under ep_lock. */
static int put_files(struct ws *ws, const struct ep_proxy *p, int64_t id,
		     struct err *e)
{
	char k[2][EP_KEY_MAX];
	const char *keys[2];
	int n = 0;

	ep_keys_get(ws, id, k);
	for (int i = 0; i < 2; i++)
		if (k[i][0])
			keys[n++] = k[i];
	return ep_proxy_files(p, keys, n, e);
}

/* The runtime-API commands for @file (F_TRAFFIC, F_MIRROR, F_KEYS, 0:
 * traffic and mirror) of @l as stored, @add and @del keys.  Under
 * ep_lock. */
static int split_cmds(struct ws *ws, struct ep_live *l, int file,
		      const char *add, const char *del, char **out)
{
	struct ep_traffic t;
	int ok = load_split(ws, l->id, &t, &l->p.mirror);

	*out = NULL;
	if (file == F_KEYS)
		return ep_key_cmds(&l->p, add, del, out);
	if (file == F_MIRROR)
		return ep_mirror_cmds(&l->p, &l->p.mirror, out);
	/* lines still to come: the proxy keeps its weights */
	if (!ok || !l->p.n)
		return 0;
	for (int i = 0; i < l->p.n; i++)
		l->p.b[i].weight = weight_in(&t, l->p.b[i].name);
	return ep_weight_cmds(&l->p, &t, out);
}

/* @l's split map, from the weights it runs with (l->p), swapped in whole.
 * Under ep_lock. */
static int send_map(struct ep_live *l, struct err *e)
{
	char *text = NULL;
	int rc;

	if (ep_split_map(&l->p, &text))
		return err_set(e, -ENOMEM, "out of memory");
	rc = ep_proxy_map_swap(l->dir, EP_FILE_SPLIT, text, EP_API_MS, e);
	free(text);
	return rc;
}

/*
 * Send @l's proxy what @file now says.  Only the commands: its files are
 * written from the store whenever it starts or reloads (build), so that
 * what it reads then is the store's whatever was sent now.  Under ep_lock.
 */
static int send_split(struct ws *ws, struct ep_live *l, int file,
		      const char *add, const char *del, struct err *e)
{
	char *cmds = NULL, *m = NULL;
	int rc;

	if (split_cmds(ws, l, file, add, del, &cmds))
		return err_set(e, -ENOMEM, "out of memory");
	/* new weights: the split map first (most requests follow it),
	 * then the fallback's */
	if (cmds && file != F_KEYS && file != F_MIRROR)
		rc = send_map(l, e);
	else
		rc = 0;
	if (!rc && cmds)
		rc = ep_proxy_api(l->dir, cmds, EP_API_MS, NULL, e);
	if (!rc && !file && !ep_mirror_cmds(&l->p, &l->p.mirror, &m))
		rc = ep_proxy_api(l->dir, m, EP_API_MS, NULL, e);
	free(cmds);
	free(m);
	return rc;
}

int ep_apply(struct ws *ws, const struct obj *o, int file, const char *add,
	     const char *del, struct err *e)
{
	struct ep_live *l;
	int rc = 0;

	pthread_mutex_lock(&ep_lock);
	l = live_find(o->id);
	/* not running: the worker gives it the store's texts at start */
	if (l && l->pid)
		rc = send_split(ws, l, file, add, del, e);
	pthread_mutex_unlock(&ep_lock);
	if (rc) {
		char tmp[ERR_MSG_MAX];

		snprintf(tmp, sizeof(tmp), "%s", e->msg);
		err_set(e, -EIO, "the proxy did not take the change (it takes"
			" it at its next start): %s", tmp);
	}
	return rc;
}

/* @dep's weight in @p (what the proxy runs with) set to @w. */
static void set_weight(struct ep_proxy *p, const char *dep, int w)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->b[i].name, dep))
			p->b[i].weight = w;
}

static int in_proxy(const struct ep_proxy *p, const char *dep)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->b[i].name, dep))
			return 1;
	return 0;
}

/*
 * A deployment behind @o leaving its routing (it is deleted): the weights
 * and the mirror as stored now (its line gone), its weight 0 whatever the
 * text says (a split not finished keeps the proxy's last one), its name
 * out of the names map (a request pinned to it: 404).  It leaves the
 * configuration at the next reload, once it no longer serves.
 */
int ep_leave(struct ws *ws, const struct obj *o, const char *dep,
	     struct err *e)
{
	char *cmds = NULL;
	struct ep_live *l;
	int rc = 0;

	pthread_mutex_lock(&ep_lock);
	l = live_find(o->id);
	if (l && l->pid)
		rc = send_split(ws, l, 0, NULL, NULL, e);
	/* one not in the proxy yet has nothing to leave (the reload that
	 * would have added it leaves it out: it no longer serves) */
	if (!rc && l && l->pid && in_proxy(&l->p, dep)) {
		set_weight(&l->p, dep, 0);
		rc = send_map(l, e);
		if (!rc && asprintf(&cmds, "set server split/%s weight 0\n"
				    "del map %s/" EP_FILE_NAMES " %s\n", dep,
				    l->dir, dep) < 0)
			rc = err_set(e, -ENOMEM, "out of memory");
	}
	if (cmds)
		rc = ep_proxy_api(l->dir, cmds, EP_API_MS, NULL, e);
	pthread_mutex_unlock(&ep_lock);
	free(cmds);
	return rc;
}

/* ---- the proxy's life ---------------------------------------------------- */

/* Start @l's proxy on @p (files first), or adopt the one running on its
 * pid file.  0 or -errno with a sentence. */
static int proxy_start(struct ws *ws, const struct obj *o, struct ep_live *l,
		       struct ep_proxy *p, struct err *e)
{
	char log[PATH_MAX];
	pid_t pid;
	int rc;

	pid = ep_proxy_adopt(l->dir);
	if (pid) {
		pthread_mutex_lock(&ep_lock);
		l->pid = pid;
		l->p = *p;
		l->fp = 0;	/* what it runs is not known: reloaded */
		pthread_mutex_unlock(&ep_lock);
		ws_obj_event(ws, o, "proxy adopted");
		return 0;
	}
	snprintf(log, sizeof(log), "%s/endpoints", ws_state_dir(ws));
	rc = ws_mkdir_p(log, 0700);
	if (rc)
		return err_set(e, rc, "cannot make %s: %s", log,
			       strerror(-rc));
	pthread_mutex_lock(&ep_lock);
	split_fresh(ws, l, p);
	rc = put_files(ws, p, o->id, e);
	pthread_mutex_unlock(&ep_lock);
	ws_obj_path(ws, o->id, RUN_LOG, log);
	if (!rc)
		rc = ep_proxy_start(l->dir, log, &pid, e);
	if (rc)
		return rc;
	pthread_mutex_lock(&ep_lock);
	l->pid = pid;
	l->p = *p;
	l->fp = fingerprint(p);
	/* what users wrote while it started */
	send_split(ws, l, 0, NULL, NULL, e);
	pthread_mutex_unlock(&ep_lock);
	return 0;
}

/* The deployments behind @l changed, or its config: files, reload. */
static int proxy_reload(struct ws *ws, const struct obj *o, struct ep_live *l,
			struct ep_proxy *p, struct err *e)
{
	int rc;

	pthread_mutex_lock(&ep_lock);
	split_fresh(ws, l, p);
	rc = put_files(ws, p, o->id, e);
	if (!rc && (rc = ep_proxy_reload(l->pid)))
		err_set(e, rc, "the proxy was not reloaded: %s",
			strerror(-rc));
	if (!rc) {
		l->p = *p;
		l->fp = fingerprint(p);
	}
	pthread_mutex_unlock(&ep_lock);
	return rc;
}

static void proxy_stop(struct ep_live *l)
{
	pid_t pid;

	pthread_mutex_lock(&ep_lock);
	pid = l->pid;
	l->pid = 0;
	pthread_mutex_unlock(&ep_lock);
	if (!pid)
		pid = ep_proxy_adopt(l->dir);
	if (pid)
		ep_proxy_stop(pid, l->dir, STOP_GRACE_MS);
}

/* @b of @p: the same deployment at the same address and key, not gone. */
static int runs_as(const struct ep_proxy *p, const struct ep_backend *b)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->b[i].name, b->name))
			return !p->b[i].gone && p->b[i].port == b->port &&
			       !strcmp(p->b[i].host, b->host) &&
			       !strcmp(p->b[i].key, b->key);
	return 0;
}

/* Under ep_lock: @l's proxy puts each deployment of l->p that @p no
 * longer has in maintenance.  0 or -EIO with a sentence. */
static int retire(struct ep_live *l, const struct ep_proxy *p, struct err *e)
{
	char cmds[1024], del[1024];
	int rc = 0, retired = 0;

	for (int i = 0; !rc && i < l->p.n; i++) {
		struct ep_backend *b = &l->p.b[i];

		if (b->gone || in_proxy(p, b->name))
			continue;
		snprintf(cmds, sizeof(cmds), "set server dep_%s/%s state"
			 " maint\nset server split/%s weight 0\n", b->name,
			 b->name, b->name);
		rc = ep_proxy_api(l->dir, cmds, EP_API_MS, NULL, e);
		/* and its replicas' servers: no request drawn to it */
		for (int j = 0; !rc && j < EP_REPS_MAX; j++)
			if (b->slot[j] &&
			    !ep_slot_cmd(b, j, 0, cmds, sizeof(cmds)))
				rc = ep_proxy_api(l->dir, cmds, EP_API_MS,
						  NULL, e);
		/* (gone from the map already when it was deleted) */
		snprintf(del, sizeof(del), "del map %s/" EP_FILE_NAMES " %s\n",
			 l->dir, b->name);
		if (!rc)
			ep_proxy_api(l->dir, del, EP_API_MS, NULL, NULL);
		b->gone = !rc;
		retired += b->gone;
	}
	/* out of the split map too (in maintenance, its dep_D has no server
	 * up: a request drawing it took the fallback meanwhile) */
	return !rc && retired ? send_map(l, e) : rc;
}

/*
 * Deployments only left @l's proxy (deleted, stopped serving, or left the
 * endpoint; the config the same): they are put in maintenance through the
 * runtime API, without a reload, and leave its configuration at the next
 * reload.  A reload under keep-alive clients can fail a request that
 * meets its old worker closing (seen in a client loop across a delete),
 * so it is kept for what needs one: a deployment joining, a config
 * change.  1 when that was all, 0 when a reload is needed.
 */
static int departures_only(struct ep_live *l, const struct ep_proxy *p)
{
	struct err e = { { 0 } };
	int rc;

	if (!l->fp)
		return 0;	/* adopted: what it runs is not known */
	pthread_mutex_lock(&ep_lock);
	rc = fp_head(p) == fp_head(&l->p);
	for (int i = 0; rc && i < p->n; i++)
		rc = runs_as(&l->p, &p->b[i]);
	if (rc && retire(l, p, &e))
		rc = 0;		/* the reload takes it out then */
	if (rc)
		l->fp = fingerprint(p);
	pthread_mutex_unlock(&ep_lock);
	return rc;
}

/*
 * Under ep_lock: the replica servers of @l's proxy follow the replicas of
 * @p's deployments (autoscale, a rolling update, a restart), through the
 * runtime API: a slot whose replica is gone goes into maintenance, a new
 * replica takes the slot free the longest (its address set, then
 * readied).  The slots are fixed servers of the configuration: none is
 * added or deleted.  A command the proxy refuses leaves the slot as it
 * was known (retried at the next look); the first failure ends it.
 */
static void reps_sync(struct ep_live *l, const struct ep_proxy *p)
{
	char cmd[512];

	for (int i = 0; i < p->n; i++) {
		const struct ep_backend *now = &p->b[i];
		struct ep_backend *was = NULL;
		int j, k, moved;

		for (j = 0; j < l->p.n && !was; j++)
			if (!l->p.b[j].gone &&
			    !strcmp(l->p.b[j].name, now->name))
				was = &l->p.b[j];
		if (!was)
			continue;	/* joins at the next reload */
		/* replicas at another address now: every slot is let go */
		moved = strcmp(was->rhost, now->rhost) != 0;
		for (k = 0; k < EP_REPS_MAX; k++) {
			if (!was->slot[k] ||
			    (!moved && ep_rep_has(now, was->slot[k])))
				continue;
			if (ep_slot_cmd(was, k, 0, cmd, sizeof(cmd)) ||
			    ep_proxy_api(l->dir, cmd, EP_API_MS, NULL, NULL))
				return;
			was->slot[k] = 0;
			was->freed[k] = ++was->nfreed;
		}
		/* the slots readied now point there */
		snprintf(was->rhost, sizeof(was->rhost), "%s", now->rhost);
		for (j = 0; j < now->nrep; j++) {
			int port = now->rep[j];

			for (k = 0; k < EP_REPS_MAX && was->slot[k] != port; k++)
				;
			if (k < EP_REPS_MAX)
				continue;	/* has its server */
			k = ep_slot_free(was);
			if (k < 0)
				break;		/* no slot free */
			if (ep_slot_cmd(was, k, port, cmd, sizeof(cmd)) ||
			    ep_proxy_api(l->dir, cmd, EP_API_MS, NULL, NULL))
				return;
			was->slot[k] = port;
		}
		memcpy(was->rep, now->rep, sizeof(was->rep));
		was->nrep = now->nrep;
	}
}

/* Is deployment @id in @p and not gone? */
static int has_dep(const struct ep_proxy *p, int64_t id)
{
	for (int i = 0; p && i < p->n; i++)
		if (p->b[i].id == id && !p->b[i].gone)
			return 1;
	return 0;
}

/*
 * Tell the deployments' workers which of their replicas @l's proxy sends
 * to now (its slots in use; none when @l has no proxy): a replica leaving
 * is drained once its slot is in maintenance (deploy_direct.c).  Those of
 * @was (what the proxy ran with before) no longer behind it: to none.
 * Under ep_lock.
 */
static void used_report(struct ws *ws, const struct ep_live *l,
			const struct ep_proxy *was)
{
	const struct ep_proxy *now = l->pid ? &l->p : NULL;
	int port[EP_REPS_MAX], n;

	for (int i = 0; was && i < was->n; i++)
		if (!has_dep(now, was->b[i].id))
			deploy_direct_used(ws, was->b[i].id, l->id, NULL, 0);
	for (int i = 0; now && i < now->n; i++) {
		const struct ep_backend *b = &now->b[i];

		n = 0;
		for (int k = 0; !b->gone && k < EP_REPS_MAX; k++)
			if (b->slot[k])
				port[n++] = b->slot[k];
		deploy_direct_used(ws, b->id, l->id, port, n);
	}
}

/* ---- stats and health ---------------------------------------------------- */

/* The last LOG_TAIL bytes of @o's log, malloc'd. */
static char *log_tail(struct ws *ws, const struct obj *o, size_t *n)
{
	char path[PATH_MAX], *buf;
	long size;
	FILE *f;

	*n = 0;
	ws_obj_path(ws, o->id, RUN_LOG, path);
	buf = malloc(LOG_TAIL + 1);
	f = buf ? fopen(path, "re") : NULL;
	if (!f)
		return buf;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > LOG_TAIL ? size - LOG_TAIL : 0, SEEK_SET);
	*n = fread(buf, 1, LOG_TAIL, f);
	fclose(f);
	buf[*n] = '\0';
	return buf;
}

/* @text into objects/ID/stats whole (the daemon's own folder). */
static void stats_put(struct ws *ws, const struct obj *o, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	ws_obj_path(ws, o->id, "stats", path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	f = fopen(tmp, "wxe");
	if (!f)
		return;
	fputs(text, f);
	if (fclose(f) || rename(tmp, path))
		unlink(tmp);
	ws_inval(ws, o->id, FBIT(F_STATS));
}

/* The first deployment with weight that the proxy took out of the
 * rotation, from the stats text, into @down ("" none). */
static void first_down(const struct ep_proxy *p, const char *stats,
		       char *down, size_t sz)
{
	char name[EP_NAME_MAX + 1], state[16];
	const char *line = stats;

	down[0] = '\0';
	for (; line && *line; line = strchr(line, '\n'), line += !!line) {
		if (sscanf(line, "%64s %*s %*s %*s %*s %*s %*s %15s", name,
			   state) != 2 || strcmp(state, "down"))
			continue;
		for (int i = 0; i < p->n; i++)
			if (!strcmp(p->b[i].name, name) && p->b[i].weight) {
				snprintf(down, sz, "%s", name);
				return;
			}
	}
}

/* stats written; the deployment out of the rotation into @down. */
static void stats_step(struct ws *ws, const struct obj *o,
		       struct ep_live *l, char *down, size_t sz)
{
	char *csv = NULL, *log, *text = NULL;
	struct err e;
	size_t n;

	down[0] = '\0';
	if (ep_proxy_api(l->dir, "show stat", EP_API_MS, &csv, &e))
		return;
	log = log_tail(ws, o, &n);
	pthread_mutex_lock(&ep_lock);
	if (log && !ep_stats_text(&l->p, csv, log, n, &text)) {
		first_down(&l->p, text, down, sz);
		stats_put(ws, o, text);
	}
	pthread_mutex_unlock(&ep_lock);
	free(text);
	free(log);
	free(csv);
}

/* ---- the step ------------------------------------------------------------ */

/* Save @state, @error ("" none) and the proxy's facts when they
 * changed. */
static void save(struct ws *ws, struct obj *o, enum obj_state state,
		 const char *error, const struct ep_live *l, int port)
{
	struct obj n = *o;
	char uri[sizeof(n.node)];
	const char *host;

	n.state = state;
	snprintf(n.error, sizeof(n.error), "%s", error);
	snprintf(n.backend_id, sizeof(n.backend_id), "%ld",
		 l ? (long)l->pid : 0L);
	if (port) {
		host = l->p.cfg.host;
		snprintf(n.ddata, sizeof(n.ddata), "port %d", port);
		snprintf(uri, sizeof(uri), strchr(host, ':') ?
			 "http://[%s]:%d/score" : "http://%s:%d/score", host,
			 port);
		snprintf(n.node, sizeof(n.node), "%s", uri);
	}
	if (n.state == o->state && !strcmp(n.error, o->error) &&
	    !strcmp(n.ddata, o->ddata) && !strcmp(n.node, o->node) &&
	    !strcmp(n.backend_id, o->backend_id))
		return;
	if (!ws_update_obj(ws, &n, o->state, FBIT(F_SCORING_URI)))
		*o = n;
}

static void failed(struct ws *ws, struct obj *o, struct ep_live *l,
		   const struct err *e)
{
	proxy_stop(l);
	save(ws, o, DS_FAILED, e->msg, l, 0);
}

/* ep_up's proxy: built into @p, (re)started or reloaded as needed, its
 * replica slots following the replicas.  0 or -errno with a sentence. */
static int ep_up_step(struct ws *ws, struct obj *o, struct ep_live *l,
		      struct ep_proxy *p, struct err *e)
{
	int rc;

	rc = build(ws, o, p, l, e);
	if (rc)
		return rc;
	if (l->pid && !ep_proxy_is(l->pid, l->dir)) {
		ws_obj_event(ws, o, "the proxy exited: started again");
		pthread_mutex_lock(&ep_lock);
		l->pid = 0;
		pthread_mutex_unlock(&ep_lock);
	}
	if (!l->pid)
		rc = proxy_start(ws, o, l, p, e);
	else if (l->fp != fingerprint(p) && !departures_only(l, p))
		rc = proxy_reload(ws, o, l, p, e);
	if (rc)
		return rc;
	pthread_mutex_lock(&ep_lock);
	reps_sync(l, p);
	pthread_mutex_unlock(&ep_lock);
	return 0;
}

/* A started endpoint: its proxy up and current, its health; the
 * deployments' workers told which replicas it sends to. */
static void ep_up(struct ws *ws, struct obj *o, struct ep_live *l)
{
	struct err e = { { 0 } };
	struct ep_proxy *p = malloc(sizeof(*p)), *before = malloc(sizeof(*p));
	char down[EP_NAME_MAX], why[ERR_MSG_MAX];
	int rc, was = l->pid != 0;

	if (!p || !before) {
		free(p);
		free(before);
		return;
	}
	pthread_mutex_lock(&ep_lock);
	*before = l->p;
	pthread_mutex_unlock(&ep_lock);
	rc = ep_up_step(ws, o, l, p, &e);
	if (rc)
		failed(ws, o, l, &e);
	pthread_mutex_lock(&ep_lock);
	used_report(ws, l, before);
	pthread_mutex_unlock(&ep_lock);
	if (!rc) {
		if (!was)
			save(ws, o, DS_TRANSITIONING, "", l, p->port);
		stats_step(ws, o, l, down, sizeof(down));
		why[0] = '\0';
		if (down[0])
			snprintf(why, sizeof(why), "deployment '%s' is out of"
				 " the rotation: its replicas do not answer"
				 " (its weight goes to the others)", down);
		save(ws, o, down[0] ? DS_UNHEALTHY : DS_HEALTHY, why, l,
		     p->port);
	}
	free(p);
	free(before);
}

static void ep_down(struct ws *ws, struct obj *o, struct ep_live *l)
{
	if (o->state == DS_DRAFT)
		return;
	proxy_stop(l);
	pthread_mutex_lock(&ep_lock);
	used_report(ws, l, &l->p);	/* to none */
	pthread_mutex_unlock(&ep_lock);
	save(ws, o, DS_DRAFT, "", l, 0);
}

static void ep_one(struct ws *ws, int64_t id)
{
	struct ep_live *l;
	struct obj o;

	if (ws_get(ws, id, &o) || o.kind != K_ENDPOINT)
		return;
	if (strcmp(o.type, "start") && strcmp(o.type, "stop"))
		return;
	if (!strcmp(o.type, "start") && o.state == DS_FAILED)
		return;		/* until the user starts it again */
	l = live_get(ws, id);
	if (!l)
		return;
	l->seen = 1;
	if (!strcmp(o.type, "start"))
		ep_up(ws, &o, l);
	else
		ep_down(ws, &o, l);
}

struct ids {
	int n;
	int64_t id[EP_MAX];
};

static int id_cb(void *arg, const struct obj *o)
{
	struct ids *s = arg;

	if (s->n < EP_MAX)
		s->id[s->n++] = o->id;
	return s->n >= EP_MAX;
}

/* Entries of endpoints gone (housekeeping stops their proxies): their
 * deployments' replicas no longer held for them. */
static void live_sweep(struct ws *ws)
{
	struct ep_live **pp, *l;

	pthread_mutex_lock(&ep_lock);
	for (pp = &lives; (l = *pp);) {
		if (l->seen) {
			l->seen = 0;
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		l->pid = 0;
		used_report(ws, l, &l->p);
		free(l);
	}
	pthread_mutex_unlock(&ep_lock);
}

void ep_step(struct ws *ws)
{
	struct ids *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	ws_list(ws, K_ENDPOINT, 0, 0, id_cb, s);
	for (int i = 0; i < s->n; i++)
		ep_one(ws, s->id[i]);
	free(s);
	live_sweep(ws);
}

void ep_release(void)
{
	pthread_mutex_lock(&ep_lock);
	while (lives) {
		struct ep_live *l = lives;

		lives = l->next;
		free(l);
	}
	pthread_mutex_unlock(&ep_lock);
}

static int start_cb(void *arg, const struct obj *o)
{
	if (!strcmp(o->type, "start")) {
		worker_kick(arg, o->id);
		return 1;
	}
	return 0;
}

void ep_start_all(struct ws *ws)
{
	ws_list(ws, K_ENDPOINT, 0, 0, start_cb, ws);
}

/* ---- housekeeping -------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void ep_orphans(struct ws *ws)
{
	char path[PATH_MAX], sub[PATH_MAX + 32];
	struct dirent *de;
	struct obj o;
	pid_t pid;
	DIR *d;

	snprintf(path, sizeof(path), "%s/endpoints", ws_state_dir(ws));
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		long long id = atoll(de->d_name);

		if (id <= 0 || (!ws_get(ws, id, &o) && o.kind == K_ENDPOINT))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		pid = ep_proxy_adopt(sub);
		if (pid)
			ep_proxy_stop(pid, sub, STOP_GRACE_MS);
		nftw(sub, rm_one, 8, FTW_DEPTH | FTW_PHYS);
		log_info("endpoint %lld removed: its proxy stopped", id);
	}
	closedir(d);
}
