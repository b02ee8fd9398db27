// SPDX-License-Identifier: MIT
/*
 * The slurm driver's config (pure: no I/O): the keys a target takes, their
 * parsing and validation (slurm_validate, on the FUSE thread that writes
 * `provision`), and whether a run's resources fit the target's `nodes`
 * (slurm_check_run, on the FUSE thread that writes `submit`).  The worker
 * parses the config anew on each entry (sl_get).  Unit-tested by
 * tests/test_slurm_config.c.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm_i.h"
#include "slurm_image_cache.h"

#define POLL_DEFAULT	2.0	/* seconds between two polls of a run */
#define TIMEOUT_DEFAULT	10	/* seconds for one HTTP call */

const char *const slurm_keys[] = {
	"url", "user", "token", "token_file", "partition", "api_version",
	"workdir", "podman", "poll_seconds", "timeout_seconds", SL_CACHE_KEY,
	NULL
};

const char *const slurm_live_keys[] = {
	"token", "token_file", "poll_seconds", "timeout_seconds", SL_CACHE_KEY,
	NULL
};

/* ---- config (pure) ------------------------------------------------------ */

static const char *cfg_str(const struct kv_list *kv, const char *key)
{
	const char *v = kv_get(kv, key);

	return v && *v ? v : NULL;
}

static int cfg_url(const char *url, struct err *e)
{
	if (!url)
		return err_set(e, -EINVAL, "config needs url = the address of"
			       " slurmrestd (http://HOST:PORT or"
			       " unix:/path/to/socket)");
	if ((!strncmp(url, "http://", 7) && url[7]) ||
	    (!strncmp(url, "https://", 8) && url[8]) ||
	    (!strncmp(url, "unix:/", 6) && url[6]))
		return 0;
	return err_set(e, -EINVAL, "url must start with http://, https:// or"
		       " unix:/, not '%.100s'", url);
}

static const struct slurm_api *cfg_api(const char *v)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%s", v[0] == 'v' ? "" : "v", v);
	return slurm_api_find(name);
}

static int cfg_seconds(const char *v, double min, double max, double *out,
		       const char *what, struct err *e)
{
	char *end;
	double d;

	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
		return err_set(e, -EINVAL, "%s must be a number of seconds"
			       " from %g to %g, not '%.40s'", what, min, max, v);
	*out = d;
	return 0;
}

static int cfg_name(const char *v, const char *what, struct err *e)
{
	for (const char *p = v; p && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return err_set(e, -EINVAL, "%s '%.64s' has a character"
				       " Slurm does not allow ('%c')", what, v,
				       *p);
	return 0;
}

static int cfg_more(const struct kv_list *kv, struct slurm_cfg *c,
		    struct err *e)
{
	const char *v = cfg_str(kv, "api_version");
	double d = TIMEOUT_DEFAULT;
	int rc;

	if (c->token && c->token_file)
		return err_set(e, -EINVAL, "set token or token_file, not both");
	if (c->token_file && c->token_file[0] != '/')
		return err_set(e, -EINVAL, "token_file must be an absolute"
			       " path");
	if (c->workdir && c->workdir[0] != '/')
		return err_set(e, -EINVAL, "workdir must be an absolute path"
			       " on a filesystem the compute nodes share");
	if (c->podman && (c->podman[0] != '/' || strpbrk(c->podman, "\t\n")))
		return err_set(e, -EINVAL, "podman must be the absolute path"
			       " of podman on the compute nodes");
	if (v && !(c->api = cfg_api(v)))
		return err_set(e, -EINVAL, "api_version '%.32s' is not one"
			       " mlfs speaks (v0.0.37, v0.0.38, v0.0.39)", v);
	rc = cfg_seconds(cfg_str(kv, "poll_seconds"), 0.1, 3600, &c->poll_s,
			 "poll_seconds", e);
	if (!rc)
		rc = cfg_seconds(cfg_str(kv, "timeout_seconds"), 1, 600, &d,
				 "timeout_seconds", e);
	c->timeout_s = (long)d + (d > (long)d);
	if (!rc)
		rc = cfg_name(c->partition, "partition", e);
	if (!rc)
		rc = cfg_name(c->user, "user", e);
	return rc;
}

int slurm_cfg_parse(const struct kv_list *kv, struct slurm_cfg *c,
		    struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->url = cfg_str(kv, "url");
	c->user = cfg_str(kv, "user");
	c->token = cfg_str(kv, "token");
	c->token_file = cfg_str(kv, "token_file");
	c->partition = cfg_str(kv, "partition");
	c->workdir = cfg_str(kv, "workdir");
	c->podman = cfg_str(kv, "podman");
	c->poll_s = POLL_DEFAULT;
	c->timeout_s = TIMEOUT_DEFAULT;
	if (cfg_url(c->url, e))
		return -EINVAL;
	return cfg_more(kv, c, e);
}

/* image_cache_mb is checked here, not by slurm_cfg_parse: the worker
 * parses the config anew at each entry, also a config edited and not
 * applied yet, and a bad bound must not stop the target's runs
 * (slurm_image_cache.c reads it, the default when bad). */
int slurm_validate(const struct kv_list *kv, struct err *e)
{
	struct slurm_cfg c;
	long mb;
	int rc;

	rc = slurm_cfg_parse(kv, &c, e);
	return rc ? rc : sl_cache_mb(kv, &mb, e);
}

/* ---- check_run (pure) --------------------------------------------------- */

struct node_caps {
	long count, cpus, gpus;
	unsigned long long mem_mib;
};

static void node_caps(const char *text, struct node_caps *caps)
{
	char name[128], state[64];
	unsigned long long mem;
	long cpus, gpus;
	const char *p;

	memset(caps, 0, sizeof(*caps));
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (sscanf(p, "%127s %63s %ld %lluM %ld", name, state, &cpus,
			   &mem, &gpus) != 5)
			continue;
		caps->count++;
		caps->cpus = cpus > caps->cpus ? cpus : caps->cpus;
		caps->gpus = gpus > caps->gpus ? gpus : caps->gpus;
		caps->mem_mib = mem > caps->mem_mib ? mem : caps->mem_mib;
	}
}

int slurm_check_run(const struct kv_list *cfg, const char *nodes,
		    const struct resources *res, struct err *e)
{
	struct node_caps c;

	(void)cfg;
	node_caps(nodes, &c);
	if (!c.count)
		return 0;	/* not known yet: Slurm will judge */
	if (res->nodes > c.count)
		return err_set(e, -EINVAL, "the run asks for nodes = %ld but"
			       " the target has %ld node%s", res->nodes,
			       c.count, c.count == 1 ? "" : "s");
	if (res->cpus > c.cpus)
		return err_set(e, -EINVAL, "the run asks for cpus = %ld but"
			       " the largest node has %ld", res->cpus, c.cpus);
	if (res->gpus > c.gpus)
		return err_set(e, -EINVAL, "the run asks for gpus = %ld per"
			       " node but the target's nodes have at most %ld",
			       res->gpus, c.gpus);
	if (c.mem_mib && res->memory_mib > c.mem_mib)
		return err_set(e, -EINVAL, "the run asks for memory = %lluM"
			       " but the largest node has %lluM",
			       (unsigned long long)res->memory_mib, c.mem_mib);
	return 0;
}
