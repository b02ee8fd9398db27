// SPDX-License-Identifier: MIT
/*
 * test_slurm_config.c — unit tests of targets/slurm_config.c: the slurm
 * target's config keys, parsed from `key = value` text as a user writes
 * them, good and bad, and the check of a run's resources against the
 * target's `nodes` text.  Pure: no slurmrestd, no files.
 *
 * Prints one TAP line per check; exits 1 if any check fails.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "slurm_i.h"
#include "slurm_image_cache.h"

static int nchecks, nfailed;

static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	nchecks++;
	if (!ok)
		nfailed++;
	printf("%s %d - ", ok ? "ok" : "not ok", nchecks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

/* @text on one line ("a = 1; b = 2"), for the TAP lines. */
static const char *oneline(const char *text)
{
	static char buf[512];
	size_t o = 0;

	for (; *text && o + 3 < sizeof(buf); text++) {
		if (*text != '\n') {
			buf[o++] = *text;
		} else if (text[1]) {
			buf[o++] = ';';
			buf[o++] = ' ';
		}
	}
	buf[o] = '\0';
	return buf;
}

/* Parse @text as a config into @c; the kv_list stays in @kv. */
static int parse(const char *text, struct kv_list *kv, struct slurm_cfg *c,
		 struct err *e)
{
	memset(e, 0, sizeof(*e));
	if (kv_parse(text, strlen(text), kv, e)) {
		printf("Bail out! the test's config does not parse: %s\n",
		       e->msg);
		return -1000;
	}
	return slurm_cfg_parse(kv, c, e);
}

/* @text is valid, and slurm_validate agrees. */
static void good(const char *text, struct slurm_cfg *c, struct kv_list *kv)
{
	struct err e;
	int rc = parse(text, kv, c, &e);

	check(rc == 0, "valid: %s (%s)", oneline(text), e.msg);
	check(slurm_validate(kv, &e) == 0, "slurm_validate accepts it");
}

/* @text is refused with -EINVAL and a sentence containing @words. */
static void bad(const char *text, const char *words)
{
	struct slurm_cfg c;
	struct kv_list kv = { 0 };
	struct err e;
	int rc = parse(text, &kv, &c, &e);

	check(rc == -EINVAL && strstr(e.msg, words), "refused: %s -> '%s'",
	      oneline(text), e.msg);
	check(slurm_validate(&kv, &e) == -EINVAL, "slurm_validate refuses it");
	kv_free(&kv);
}

/* url = http://h and @line: slurm_validate refuses it with @words, but
 * the worker's parse takes it (an edit not applied stops no run). */
static void bad_bound(const char *line, const char *words)
{
	char text[256];
	struct slurm_cfg c;
	struct kv_list kv = { 0 };
	struct err e;
	int rc;

	snprintf(text, sizeof(text), "url = http://h\n%s", line);
	rc = parse(text, &kv, &c, &e);
	check(rc == 0, "the worker's parse takes %s", oneline(line));
	rc = slurm_validate(&kv, &e);
	check(rc == -EINVAL && strstr(e.msg, words), "slurm_validate refuses"
	      " %s -> '%s'", oneline(text), e.msg);
	kv_free(&kv);
}

static void test_defaults(void)
{
	struct kv_list kv = { 0 };
	struct slurm_cfg c;

	good("url = http://127.0.0.1:6820\n", &c, &kv);
	check(!strcmp(c.url, "http://127.0.0.1:6820"), "url kept");
	check(!c.user && !c.token && !c.token_file && !c.partition &&
	      !c.workdir && !c.api, "unset keys are NULL");
	check(c.poll_s == 2.0, "poll_seconds defaults to 2 (%g)", c.poll_s);
	check(c.timeout_s == 10, "timeout_seconds defaults to 10 (%ld)",
	      c.timeout_s);
	kv_free(&kv);
}

static void test_all_keys(void)
{
	struct kv_list kv = { 0 };
	struct slurm_cfg c;

	good("# a cluster\nurl = unix:/run/slurmrestd.sock\nuser = alice\n"
	     "token_file = /home/alice/.jwt\npartition = debug-1\n"
	     "api_version = 0.0.38\nworkdir = /shared/mlfs\n"
	     "podman = /opt/podman/bin/podman\n"
	     "poll_seconds = 0.5\ntimeout_seconds = 2.5\n", &c, &kv);
	check(!strcmp(c.user, "alice") && !strcmp(c.partition, "debug-1"),
	      "user and partition kept");
	check(!strcmp(c.token_file, "/home/alice/.jwt") && !c.token,
	      "token_file kept");
	check(c.api && !strcmp(c.api->name, "v0.0.38"),
	      "api_version without v is found (%s)", c.api ? c.api->name : "-");
	check(!strcmp(c.workdir, "/shared/mlfs"), "workdir kept");
	check(!strcmp(c.podman, "/opt/podman/bin/podman"), "podman kept");
	check(c.poll_s == 0.5, "poll_seconds 0.5 (%g)", c.poll_s);
	check(c.timeout_s == 3, "timeout_seconds 2.5 rounds up to 3 (%ld)",
	      c.timeout_s);
	kv_free(&kv);
	good("url = https://slurm.example:6820\ntoken = abc.def\n"
	     "api_version = v0.0.39\nuser =\n", &c, &kv);
	check(c.api && !strcmp(c.api->name, "v0.0.39"), "api_version v0.0.39");
	check(!c.user, "an empty user is the daemon's");
	check(!strcmp(c.token, "abc.def"), "token kept");
	kv_free(&kv);
}

static void test_bad(void)
{
	bad("partition = x\n", "config needs url");
	bad("url =\n", "config needs url");
	bad("url = ftp://host\n", "url must start with");
	bad("url = http://\n", "url must start with");
	bad("url = unix:\n", "url must start with");
	bad("url = http://h\ntoken = a\ntoken_file = /t\n", "not both");
	bad("url = http://h\ntoken_file = jwt\n", "token_file must be an"
	    " absolute path");
	bad("url = http://h\nworkdir = shared\n", "workdir must be an"
	    " absolute path");
	bad("url = http://h\npodman = podman\n", "podman must be the"
	    " absolute path");
	bad("url = http://h\napi_version = 0.0.36\n", "not one mlfs speaks");
	bad("url = http://h\npoll_seconds = 0\n", "poll_seconds must be");
	bad("url = http://h\npoll_seconds = 5s\n", "poll_seconds must be");
	bad("url = http://h\npoll_seconds = nan\n", "poll_seconds must be");
	bad("url = http://h\ntimeout_seconds = 601\n", "timeout_seconds must");
	bad("url = http://h\npartition = a b\n", "partition 'a b' has a"
	    " character");
	bad("url = http://h\nuser = bob;rm\n", "user 'bob;rm' has a character");
	bad_bound("image_cache_mb = -1\n", "image_cache_mb (the bound of the"
		  " image cache, in MiB) must be an integer from 0 to"
		  " 16777216, not '-1'");
	bad_bound("image_cache_mb = 10G\n", "not '10G'");
	bad_bound("image_cache_mb = 16777217\n", "not '16777217'");
	bad_bound("image_cache_mb = 1.5\n", "not '1.5'");
}

/* image_cache_mb: the default, 0, the largest. */
static void test_cache_mb(void)
{
	struct kv_list kv = { 0 };
	struct slurm_cfg c;
	struct err e = { { 0 } };
	long mb = -1;
	int rc;

	good("url = http://h\n", &c, &kv);
	rc = sl_cache_mb(&kv, &mb, &e);
	check(!rc && mb == SL_CACHE_MB_DEFAULT,
	      "image_cache_mb defaults to 10240 (%ld)", mb);
	kv_free(&kv);
	good("url = http://h\nimage_cache_mb = 0\n", &c, &kv);
	check(!sl_cache_mb(&kv, &mb, &e) && mb == 0, "image_cache_mb = 0");
	kv_free(&kv);
	good("url = http://h\nimage_cache_mb = 16777216\n", &c, &kv);
	check(!sl_cache_mb(&kv, &mb, &e) && mb == SL_CACHE_MB_MAX,
	      "image_cache_mb = 16777216 (16 TiB)");
	kv_free(&kv);
}

static void test_keys(void)
{
	int n = 0, live = 0;

	for (const char *const *k = slurm_keys; *k; k++)
		n++;
	for (const char *const *k = slurm_live_keys; *k; k++) {
		bool known = false;

		for (const char *const *a = slurm_keys; *a; a++)
			known |= !strcmp(*a, *k);
		check(known, "live key %s is a config key", *k);
		live++;
	}
	check(n == 11 && live == 5, "11 keys, 5 of them live (%d, %d)", n, live);
}

/* slurm_check_run against @nodes: @want (0 or -EINVAL). */
static void fits(const char *nodes, long n, long cpus, long gpus,
		 uint64_t mib, int want, const char *words)
{
	struct resources res = { .nodes = n, .cpus = cpus, .gpus = gpus,
				 .memory_mib = mib };
	struct err e = { { 0 } };
	int rc = slurm_check_run(NULL, nodes, &res, &e);

	check(rc == want && (!words || strstr(e.msg, words)),
	      "nodes=%ld cpus=%ld gpus=%ld memory=%lluM: %d '%s'", n, cpus,
	      gpus, (unsigned long long)mib, rc, e.msg);
}

static void test_check_run(void)
{
	const char *two = "n1 idle 4 8000M 0\nn2 mixed 8 16000M 2\n";

	fits(NULL, 64, 4096, 64, 1 << 30, 0, NULL);
	fits("", 2, 1, 0, 0, 0, NULL);
	fits("garbage\n", 2, 1, 0, 0, 0, NULL);
	fits(two, 2, 8, 2, 16000, 0, NULL);
	fits(two, 3, 1, 0, 0, -EINVAL, "has 2 nodes");
	fits("n1 idle 4 8000M 0\n", 2, 1, 0, 0, -EINVAL, "has 1 node");
	fits(two, 1, 9, 0, 0, -EINVAL, "largest node has 8");
	fits(two, 1, 1, 3, 0, -EINVAL, "at most 2");
	fits(two, 1, 1, 0, 16001, -EINVAL, "largest node has 16000M");
}

int main(void)
{
	test_defaults();
	test_all_keys();
	test_bad();
	test_keys();
	test_cache_mb();
	test_check_run();
	printf("1..%d\n", nchecks);
	if (nfailed)
		printf("# %d of %d checks failed\n", nfailed, nchecks);
	return nfailed ? 1 : 0;
}
