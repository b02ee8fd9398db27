// SPDX-License-Identifier: MIT
/*
 * The cluster driver's config (pure: no I/O): its keys, their parsing and
 * validation (cluster_validate, on the FUSE thread that writes `provision`
 * or `resize`), and whether a run's resources fit the nodes the cluster
 * may use (cluster_check_run, on the FUSE thread that writes `submit`).
 * Unit-tested by tests/test_cluster_config.c.
 *
 *   hosts = A B C        the machines (also: one `host = A` line each)
 *   user = root          ssh user on them
 *   port = 22            their sshd's port
 *   identity_file = P    the ssh key (read with the target owner's rights)
 *   min_nodes = 0        nodes kept up when idle
 *   max_nodes = N        nodes the cluster may use (default: all hosts)
 *   idle_seconds = 120   an idle node above min_nodes stops after this
 *   resume_seconds = 300 how long a node may take to start
 *   controller = ADDR    where the hosts reach this machine (default: the
 *                        address the first host sees our ssh come from)
 *   slurmd_port = 6818   slurmd's port on the hosts
 *   connect_timeout = 10 seconds for an ssh connection
 *   install = yes        apt-get install slurmd munge where missing
 *   image_cache_mb = 10240  bound of the image cache (slurm_image_cache.h)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"
#include "slurm_image_cache.h"
#include "ssh_quote.h"

const char *const cluster_keys[] = {
	"hosts", "host", "user", "port", "identity_file", "min_nodes",
	"max_nodes", "idle_seconds", "resume_seconds", "controller",
	"slurmd_port", "connect_timeout", "install", SL_CACHE_KEY, NULL
};

const char *const cluster_live_keys[] = {
	"min_nodes", "max_nodes", "idle_seconds", SL_CACHE_KEY, NULL
};

const char *const cluster_multi_keys[] = { "host", NULL };

void cluster_node_name(int i, char *buf, size_t n)
{
	snprintf(buf, n, "node%d", i + 1);
}

static int add_host(struct cluster_cfg *c, const char *h, struct err *e)
{
	char why[ERR_MSG_MAX];

	if (ssh_check_host(h, why, sizeof(why)))
		return err_set(e, -EINVAL, "%s", why);
	for (int i = 0; i < c->nhosts; i++)
		if (!strcmp(c->hosts[i], h))
			return err_set(e, -EINVAL, "host %s is listed twice",
				       h);
	if (c->nhosts == CL_HOSTS_MAX)
		return err_set(e, -EINVAL, "a cluster takes at most %d hosts",
			       CL_HOSTS_MAX);
	c->hosts[c->nhosts++] = h;
	return 0;
}

/* The hosts of `hosts` (split in place: @kv is a copy the caller owns)
 * and of `host` lines, in order. */
static int parse_hosts(const struct kv_list *kv, struct cluster_cfg *c,
		       struct err *e)
{
	int rc = 0;

	for (int i = 0; !rc && i < kv->n; i++) {
		const char *k = kv->items[i].key;
		char *v = kv->items[i].value, *w, *save = NULL;

		if (!strcmp(k, "host")) {
			rc = add_host(c, v, e);
			continue;
		}
		if (strcmp(k, "hosts"))
			continue;
		/* split the value in place: the list is ours, parsed anew */
		for (w = strtok_r(v, " \t,", &save); !rc && w;
		     w = strtok_r(NULL, " \t,", &save))
			rc = add_host(c, w, e);
	}
	if (!rc && !c->nhosts)
		rc = err_set(e, -EINVAL, "config needs hosts = the machines of"
			     " the cluster (addresses or names, space"
			     " separated)");
	return rc;
}

static int num(const struct kv_list *kv, const char *key, long lo, long hi,
	       long def, long *out, struct err *e)
{
	const char *v = kv_get(kv, key);
	char *end;
	long x;

	*out = def;
	if (!v || !*v)
		return 0;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || end == v || x < lo || x > hi)
		return err_set(e, -EINVAL, "%s must be a whole number from %ld"
			       " to %ld, not '%.40s'", key, lo, hi, v);
	*out = x;
	return 0;
}

static int parse_words(const struct kv_list *kv, struct cluster_cfg *c,
		       struct err *e)
{
	char why[ERR_MSG_MAX];
	const char *v;

	c->user = kv_get(kv, "user");
	if (!c->user || !*c->user)
		c->user = "root";
	if (ssh_check_user(c->user, why, sizeof(why)))
		return err_set(e, -EINVAL, "%s", why);
	v = kv_get(kv, "identity_file");
	c->identity_file = v && *v ? v : NULL;
	if (c->identity_file &&
	    ssh_check_identity_file(c->identity_file, why, sizeof(why)))
		return err_set(e, -EINVAL, "%s", why);
	v = kv_get(kv, "controller");
	c->controller = v && *v ? v : NULL;
	if (c->controller && ssh_check_host(c->controller, why, sizeof(why)))
		return err_set(e, -EINVAL, "controller: %s", why);
	v = kv_get(kv, "install");
	c->install = !v || !*v || !strcmp(v, "yes");
	if (v && *v && strcmp(v, "yes") && strcmp(v, "no"))
		return err_set(e, -EINVAL, "install must be yes or no, not"
			       " '%.20s'", v);
	return 0;
}

static int parse_numbers(const struct kv_list *kv, struct cluster_cfg *c,
			 struct err *e)
{
	long port = 22, sport = 6818, ct = 10;
	int rc;

	rc = num(kv, "port", 1, 65535, 22, &port, e);
	if (!rc)
		rc = num(kv, "slurmd_port", 1, 65535, 6818, &sport, e);
	if (!rc)
		rc = num(kv, "connect_timeout", 1, 120, 10, &ct, e);
	if (!rc)
		rc = num(kv, "min_nodes", 0, CL_HOSTS_MAX, 0, &c->min_nodes, e);
	if (!rc)
		rc = num(kv, "max_nodes", 1, CL_HOSTS_MAX, c->nhosts,
			 &c->max_nodes, e);
	if (!rc)
		rc = num(kv, "idle_seconds", 5, 7 * 86400, 120, &c->idle_s, e);
	if (!rc)
		rc = num(kv, "resume_seconds", 10, 3600, 300, &c->resume_s, e);
	c->port = (int)port;
	c->slurmd_port = (int)sport;
	c->connect_timeout = (int)ct;
	return rc;
}

static int cfg_parse(const struct kv_list *kv, struct cluster_cfg *c,
		     struct err *e)
{
	int rc;

	memset(c, 0, sizeof(*c));
	rc = parse_hosts(kv, c, e);
	if (!rc)
		rc = parse_words(kv, c, e);
	if (!rc)
		rc = parse_numbers(kv, c, e);
	if (rc)
		return rc;
	if (c->max_nodes > c->nhosts)
		return err_set(e, -EINVAL, "max_nodes = %ld but the cluster has"
			       " %d host%s", c->max_nodes, c->nhosts,
			       c->nhosts == 1 ? "" : "s");
	if (c->min_nodes > c->max_nodes)
		return err_set(e, -EINVAL, "min_nodes = %ld is larger than"
			       " max_nodes = %ld", c->min_nodes, c->max_nodes);
	return 0;
}

int cluster_cfg_parse(const struct kv_list *kv, struct kv_list *copy,
		      struct cluster_cfg *c, struct err *e)
{
	copy->n = 0;
	copy->items = calloc((size_t)kv->n + 1, sizeof(*copy->items));
	if (!copy->items)
		return err_set(e, -ENOMEM, "out of memory");
	for (int i = 0; i < kv->n; i++) {
		copy->items[i].key = strdup(kv->items[i].key);
		copy->items[i].value = strdup(kv->items[i].value);
		copy->n++;
		if (!copy->items[i].key || !copy->items[i].value)
			return err_set(e, -ENOMEM, "out of memory");
	}
	return cfg_parse(copy, c, e);
}

int cluster_validate(const struct kv_list *kv, struct err *e)
{
	struct kv_list copy = { 0 };
	struct cluster_cfg c;
	long mb;
	int rc;

	rc = cluster_cfg_parse(kv, &copy, &c, e);
	kv_free(&copy);
	return rc ? rc : sl_cache_mb(kv, &mb, e);
}

/* ---- check_run (pure) ---------------------------------------------------- */

/* How many of the first @max lines of @nodes can hold one node of @res;
 * *@lines: how many node lines there were. */
static long fitting(const char *nodes, long max, const struct resources *res,
		    long *lines)
{
	char name[128], state[64];
	unsigned long long mem;
	long cpus, gpus, fit = 0;
	const char *p;

	*lines = 0;
	for (p = nodes; p && *p && *lines < max;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (sscanf(p, "%127s %63s %ld %lluM %ld", name, state, &cpus,
			   &mem, &gpus) != 5)
			continue;
		++*lines;
		if (res->cpus <= cpus && res->gpus <= gpus &&
		    (!res->memory_mib || !mem || res->memory_mib <= mem))
			fit++;
	}
	return fit;
}

int cluster_check_run(const struct kv_list *cfg, const char *nodes,
		      const struct resources *res, struct err *e)
{
	struct kv_list copy = { 0 };
	struct cluster_cfg c;
	long fit, lines;
	struct err ign;
	int bad;

	bad = cluster_cfg_parse(cfg, &copy, &c, &ign);
	kv_free(&copy);
	if (bad)
		return 0;	/* provision said why */
	if (res->nodes > c.max_nodes)
		return err_set(e, -EINVAL, "the run asks for nodes = %ld but the"
			       " cluster has max_nodes = %ld", res->nodes,
			       c.max_nodes);
	fit = fitting(nodes, c.max_nodes, res, &lines);
	if (!lines)
		return 0;	/* not known yet: Slurm will judge */
	if (res->nodes > lines)
		return err_set(e, -EINVAL, "the run asks for nodes = %ld but the"
			       " cluster has %ld", res->nodes, lines);
	if (fit < res->nodes) {
		char mem[48] = "";

		if (res->memory_mib)
			snprintf(mem, sizeof(mem), ", memory = %lluM",
				 (unsigned long long)res->memory_mib);
		return err_set(e, -EINVAL, "the run asks for %ld node%s with"
			       " cpus = %ld, gpus = %ld%s each, but only %ld"
			       " of the %ld nodes the cluster may use can give"
			       " that", res->nodes, res->nodes == 1 ? "" : "s",
			       res->cpus, res->gpus, mem, fit, lines);
	}
	return 0;
}
