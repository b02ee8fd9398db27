// SPDX-License-Identifier: MIT
/*
 * test_cluster_config.c — unit tests of targets/cluster_config.c: the
 * managed cluster's config keys as a user writes them, good and bad (one
 * host line each or a hosts list, duplicates, min > max, …), and the
 * check of a run's resources against the nodes the cluster may use.
 * Pure: no ssh, no Slurm, no files.
 *
 * Prints one TAP line per check; exits 1 if any check fails.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster_i.h"
#include "tap.h"

static const char *const multi[] = { "host", NULL };

/* Validate @text: 0 or -errno, the sentence in @msg. */
static int validate(const char *text, char *msg, size_t n)
{
	struct kv_list kv = { 0 };
	struct err e = { { 0 } };
	int rc;

	rc = kv_parse_multi(text, strlen(text), &kv, multi, &e);
	if (!rc)
		rc = cluster_validate(&kv, &e);
	snprintf(msg, n, "%s", e.msg);
	kv_free(&kv);
	return rc;
}

static void good(const char *text, int nhosts, long min, long max)
{
	struct kv_list kv = { 0 }, copy = { 0 };
	struct cluster_cfg c;
	struct err e = { { 0 } };
	int rc;

	rc = kv_parse_multi(text, strlen(text), &kv, multi, &e);
	if (!rc)
		rc = cluster_cfg_parse(&kv, &copy, &c, &e);
	CHECK(!rc && c.nhosts == nhosts && c.min_nodes == min &&
	      c.max_nodes == max, "accepted with %d hosts, min %ld max %ld: %s",
	      nhosts, min, max, rc ? e.msg : "ok");
	/* the caller's list is untouched: parsing again gives the same */
	if (!rc) {
		struct kv_list copy2 = { 0 };
		struct cluster_cfg c2;

		rc = cluster_cfg_parse(&kv, &copy2, &c2, &e);
		CHECK(!rc && c2.nhosts == nhosts, "parsing twice gives the"
		      " same hosts (%d)", c2.nhosts);
		kv_free(&copy2);
	}
	kv_free(&copy);
	kv_free(&kv);
}

static void bad(const char *text, const char *want)
{
	char msg[512];
	int rc = validate(text, msg, sizeof(msg));

	CHECK(rc == -EINVAL && strstr(msg, want), "refused (%s): %s", want,
	      msg);
}

static void fits(const char *cfg, const char *nodes, const char *res_text,
		 int want_ok, const char *want)
{
	struct kv_list kv = { 0 };
	struct resources res;
	struct err e = { { 0 } };
	int rc;

	kv_parse_multi(cfg, strlen(cfg), &kv, multi, &e);
	resources_parse(res_text, strlen(res_text), &res, &e);
	memset(&e, 0, sizeof(e));
	rc = cluster_check_run(&kv, nodes, &res, &e);
	if (want_ok)
		CHECK(!rc, "run fits (%s): %s", res_text, e.msg);
	else
		CHECK(rc == -EINVAL && strstr(e.msg, want), "run refused (%s):"
		      " %s", res_text, e.msg);
	kv_free(&kv);
}

int main(void)
{
	const char *nodes3 =
		"node1 powered_down 2 4000M 0 10.0.0.11\n"
		"node2 idle 2 4000M 0 10.0.0.12\n"
		"node3 down 8 64000M 4 10.0.0.13 mlfs: cannot start\n";

	good("hosts = 10.0.0.11 10.0.0.12 10.0.0.13\n", 3, 0, 3);
	good("host = a.example\nhost = b.example\nmax_nodes = 1\n", 2, 0, 1);
	good("hosts = a, b\nhost = c\nmin_nodes = 1\nmax_nodes = 2\n", 3, 1,
	     2);
	bad("user = root\n", "config needs hosts");
	bad("hosts = a b a\n", "host a is listed twice");
	bad("hosts = a\nhost = a\n", "listed twice");
	bad("hosts = a b\nmin_nodes = 2\nmax_nodes = 1\n",
	    "min_nodes = 2 is larger than max_nodes = 1");
	bad("hosts = a b\nmax_nodes = 3\n", "the cluster has 2 hosts");
	bad("hosts = -oProxyCommand=x\n", "starts with");
	bad("hosts = a\nuser = ro ot\n", "user");
	bad("hosts = a\nidentity_file = key\n", "identity_file");
	bad("hosts = a\nidle_seconds = 1\n", "idle_seconds");
	bad("hosts = a\nport = 70000\n", "port");
	bad("hosts = a\ninstall = maybe\n", "install must be yes or no");
	bad("hosts = a\ncontroller = $(x)\n", "controller");
	bad("hosts = a\nimage_cache_mb = lots\n", "image_cache_mb (the bound"
	    " of the image cache, in MiB) must be an integer from 0 to");
	bad("hosts = a\nimage_cache_mb = -5\n", "image_cache_mb");

	fits("hosts = a b c\n", nodes3, "nodes = 2\n", 1, "");
	fits("hosts = a b c\nmax_nodes = 2\n", nodes3, "nodes = 3\n", 0,
	     "max_nodes = 2");
	fits("hosts = a b c\n", nodes3, "gpus = 1\n", 1, "");
	fits("hosts = a b c\nmax_nodes = 2\n", nodes3, "gpus = 1\n", 0,
	     "only 0 of the 2 nodes");
	fits("hosts = a b c\n", nodes3, "cpus = 4\nnodes = 2\n", 0,
	     "only 1 of");
	fits("hosts = a b c\n", "", "nodes = 3\n", 1, "");
	fits("hosts = a b c\n", nodes3, "memory = 8G\n", 1, "");
	fits("hosts = a b c\nmax_nodes = 2\n", nodes3, "memory = 8G\n", 0,
	     "memory");

	return tap_done();
}
