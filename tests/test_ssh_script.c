// SPDX-License-Identifier: MIT
/*
 * test_ssh_script.c — unit tests of targets/ssh_script.c: the paths, the
 * poll output parser, and the remote scripts run for real through the
 * local /bin/sh (no ssh needed: the scripts are what ssh would run).
 *
 *   gcc -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -Itargets \
 *       targets/ssh_script.c targets/ssh_quote.c tests/test_ssh_script.c \
 *       -o /tmp/t && /tmp/t
 */
#include "ssh_script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("FAIL - %s%s%s\n", what, detail ? ": " : "",
		       detail ? detail : "");
	}
}

static void check_str(const char *what, const char *want, const char *got)
{
	char d[512];

	snprintf(d, sizeof(d), "want '%s', got '%s'", want, got);
	check(!strcmp(want, got), what, d);
}

/* ---- paths ------------------------------------------------------------- */

static void test_paths(void)
{
	char b[256];

	ssh_run_dir("~", "5-ab", b, sizeof(b));
	check_str("run dir under ~", "~/5-ab", b);
	ssh_run_dir("/srv/w/", "5-ab", b, sizeof(b));
	check_str("run dir, trailing slash", "/srv/w/5-ab", b);
	ssh_run_dir("/", "5-ab", b, sizeof(b));
	check_str("run dir under /", "/5-ab", b);
	ssh_copy_path("~/.mlfs", "5-ab", "work", b, sizeof(b));
	check_str("copy path from the home", ".mlfs/5-ab/work", b);
	ssh_copy_path("~", "5-ab", "work/outputs", b, sizeof(b));
	check_str("copy path for ~", "5-ab/work/outputs", b);
	ssh_copy_path("~/", "5-ab", "", b, sizeof(b));
	check_str("copy path for ~/", "5-ab", b);
	ssh_copy_path("/a b/c/", "5-ab", "work", b, sizeof(b));
	check_str("copy path, absolute", "/a b/c/5-ab/work", b);
	check(ssh_run_dir("/x", "5-ab", b, 4) == -ENAMETOOLONG,
	      "too long is refused", NULL);
}

/* ---- the parser -------------------------------------------------------- */

static void test_parse(void)
{
	/* junk from a login script, then two replies; the log holds a
	 * fake header and a NUL byte */
	static const char out[] =
		"Welcome!\n"
		"@@mlfs 0 running 123\n"
		"18 40\n@@mlfs 9 lost\n\0ab\n"
		"0 0\n"
		"@@mlfs 1 exited 3\n"
		"0 7\n"
		"4 4\nm 1\n";
	struct ssh_poll_reply r;
	size_t pos = 0, len = sizeof(out) - 1;

	check(ssh_poll_parse(out, len, &pos, &r) == 1, "first reply", NULL);
	check(r.index == 0 && !strcmp(r.status, "running") && r.arg == 123,
	      "… status running 123", r.status);
	check(r.log_n == 18 && r.log_size == 40 &&
	      !memcmp(r.log, "@@mlfs 9 lost\n\0ab\n", 18), "… exact log bytes",
	      NULL);
	check(r.met_n == 0, "… no metrics", NULL);
	check(ssh_poll_parse(out, len, &pos, &r) == 1, "second reply", NULL);
	check(r.index == 1 && !strcmp(r.status, "exited") && r.arg == 3,
	      "… exited 3", r.status);
	check(r.met_n == 4 && !memcmp(r.met, "m 1\n", 4), "… metrics bytes",
	      NULL);
	check(ssh_poll_parse(out, len, &pos, &r) == 0, "then the end", NULL);

	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 running 1\n99 99\nabc", 28, &pos, &r)
	      == -EINVAL, "a count past the end is refused", NULL);
	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 fresh\n-1 0\n0 0\n", 24, &pos, &r)
	      == -EINVAL, "a negative count is refused", NULL);
	pos = 0;
	check(ssh_poll_parse("nothing here\n", 13, &pos, &r) == 0,
	      "no marker: nothing", NULL);
}

/* ---- the scripts through /bin/sh --------------------------------------- */

/* Run @script with sh -c; its stdout (malloc'd) in *out. Exit status. */
static int run_sh(const char *script, char **out, size_t *len)
{
	char buf[65536];
	FILE *f = popen(script, "r");
	size_t n;
	int st;

	*out = NULL;
	*len = 0;
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	st = pclose(f);
	*out = malloc(n + 1);
	memcpy(*out, buf, n + 1);
	*len = n;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Poll @dir once; the status word and arg, the log bytes from @off. */
static int poll_one(const char *dir, long long off, struct ssh_poll_reply *r,
		    char **out)
{
	struct ssh_poll_item it = { dir, off, 1 << 20, 0, 1 << 20 };
	char *script = ssh_script_poll(&it, 1);
	size_t len, pos = 0;
	int rc;

	run_sh(script, out, &len);
	free(script);
	rc = ssh_poll_parse(*out, len, &pos, r);
	return rc;
}

/* Wait up to 10 s for the run in @dir to leave "running"/"starting". */
static void wait_end(const char *dir, struct ssh_poll_reply *r)
{
	char *out;

	for (int i = 0; i < 200; i++) {
		poll_one(dir, 0, r, &out);
		free(out);
		if (strcmp(r->status, "running") && strcmp(r->status, "starting"))
			return;
		usleep(50000);
	}
}

static char *launch(const char *dir, const char *cmd, const char *const *env)
{
	struct ssh_launch l = { dir, "r'1", cmd, NULL, env };
	char *script = ssh_script_launch(&l), *out;
	size_t len;

	run_sh(script, &out, &len);
	free(script);
	return out;
}

static void test_run(const char *tmp)
{
	static const char *const env[] = {
		"TRICKY", "a'b $(echo no) `x` \"q\"\nline2", NULL
	};
	char dir[512], *create, *out;
	struct ssh_poll_reply r;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/w d/7-abc", tmp);
	check(poll_one(dir, 0, &r, &out) == 1 && !strcmp(r.status, "nodir"),
	      "poll: nodir before create", r.status);
	free(out);
	create = ssh_script_create(dir);
	run_sh(create, &out, &len);
	check(strstr(out, "fresh") != NULL, "create: fresh", out);
	free(out);
	check(poll_one(dir, 0, &r, &out) == 1 && !strcmp(r.status, "fresh"),
	      "poll: fresh after create", r.status);
	free(out);

	out = launch(dir, "printf '%s|%s\\n' \"$TRICKY\" \"$MLFS_RUN\";"
		     " echo 'm 1' >> \"$MLFS_METRICS\"; exit 3", env);
	check(!strncmp(out, "started ", 8), "launch: started PID", out);
	free(out);
	wait_end(dir, &r);
	check(!strcmp(r.status, "exited") && r.arg == 3, "poll: exited 3",
	      r.status);
	poll_one(dir, 0, &r, &out);
	check(r.log_n == r.log_size && r.log_n > 0 &&
	      !memcmp(r.log, "a'b $(echo no) `x` \"q\"\nline2|r'1\n",
		      r.log_n), "env and name arrive literally in the log",
	      NULL);
	check(r.met_n == 4 && !memcmp(r.met, "m 1\n", 4), "metrics file",
	      NULL);
	free(out);
	poll_one(dir, 4, &r, &out);
	check(r.log_n == r.log_size - 4, "poll from an offset", NULL);
	free(out);

	out = launch(dir, "echo twice >> log2", NULL);
	check(!strcmp(out, "launched\n"), "a second launch is refused", out);
	free(out);
	run_sh(create, &out, &len);
	check(!strcmp(out, "launched\n"), "create after launch says launched",
	      out);
	free(out);
	free(create);
}

static void test_signal(const char *tmp)
{
	char dir[512], *s, *out;
	struct ssh_poll_reply r;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/8-def", tmp);
	s = ssh_script_create(dir);
	run_sh(s, &out, &len);
	free(s);
	free(out);
	free(launch(dir, "sleep 30", NULL));
	poll_one(dir, 0, &r, &out);
	check(!strcmp(r.status, "running") && r.arg > 0, "poll: running PID",
	      r.status);
	free(out);
	s = ssh_script_signal(dir, "TERM");
	check(run_sh(s, &out, &len) == 0, "signal TERM", NULL);
	free(s);
	free(out);
	wait_end(dir, &r);
	check(!strcmp(r.status, "exited") && r.arg == 143,
	      "TERM: the wrapper records 143", r.status);
}

int main(void)
{
	char tmp[] = "/tmp/test_ssh_script.XXXXXX", cmd[600], *out;
	size_t len;

	test_paths();
	test_parse();
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_run(tmp);
	test_signal(tmp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	run_sh(cmd, &out, &len);
	free(out);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
