// SPDX-License-Identifier: MIT
/*
 * test_ssh_quote.c — unit tests of targets/ssh_quote.c.
 *
 *   gcc -std=gnu11 -Wall -Wextra -fsanitize=address,undefined -Itargets \
 *       targets/ssh_quote.c tests/test_ssh_quote.c -o /tmp/t && /tmp/t
 *
 * One line per check ("ok - …" / "FAIL - …"), then "N passed, N failed,
 * N skipped"; exit 1 on any failure. Quoting is checked through a real
 * /bin/sh. With SSH_HOST, SSH_PORT, SSH_USER, SSH_IDENTITY and
 * SSH_KNOWN_HOSTS in the environment (`set -a; . DIR/host.env` after
 * scripts/ssh-host.sh start DIR), the built ssh/rsync command lines are
 * also run for real against that server; otherwise those checks are skipped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ssh_quote.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int passed, failed, skipped;

static void check(int ok, const char *what, const char *detail)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("FAIL - %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	}
}

static void skip(const char *what, const char *why)
{
	skipped++;
	printf("skip - %s (%s)\n", what, why);
}

/* A string made printable for a check's name. */
static const char *vis(const char *s)
{
	static char buf[8][96];
	static int k;
	char *b = buf[k++ % 8];
	size_t o = 0;

	for (; *s && o < sizeof(buf[0]) - 6; s++) {
		unsigned char c = *s;

		if (c < 0x20 || c >= 0x7f)
			o += sprintf(b + o, "\\x%02x", c);
		else
			b[o++] = c;
	}
	b[o] = '\0';
	return b;
}

/*
 * Run @argv (posix_spawnp), stdin /dev/null, stdout captured into a
 * malloc'd buffer (*out, *outlen), stderr to /dev/null unless @show_err.
 * Returns the exit status, or -1.
 */
static int run(char *const argv[], char **out, size_t *outlen, int show_err)
{
	posix_spawn_file_actions_t fa;
	int fd[2], status = -1;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;
	pid_t pid;

	if (!buf || pipe(fd))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
	if (!show_err)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclose(&fa, fd[0]);
	posix_spawn_file_actions_addclose(&fa, fd[1]);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ))
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(fd[1]);
	while (pid > 0 && (r = read(fd[0], buf + n, cap - n - 1)) > 0) {
		n += r;
		if (n + 1 == cap && !(buf = realloc(buf, cap *= 2)))
			break;
	}
	close(fd[0]);
	if (pid > 0 && waitpid(pid, &status, 0) == pid)
		status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (buf)
		buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return status;
}

/* /bin/sh -c @cmd; returns its stdout (malloc'd) and length. */
static char *sh_out(const char *cmd, size_t *n, int *status)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
	char *out;

	*status = run(argv, &out, n, 1);
	return out;
}

static const char *nasty[] = {
	"", "plain", "a b", "  lead and trail  ", "it's", "'", "''", "'''a'",
	"\"dq\"", "$HOME", "${HOME}", "$(id)", "`id`", "a\nb\n", "\n", "-n",
	"-e", "--", "-", "\\", "\\'", "\\n", "*", "?", "[a]", "~", "~root",
	"a;b|c&d>e<f", "tab\there", "\x01\x02\x1b[31m\x7f", "h\xc3\xa9llo \xe2\x9c\x93",
	"%s%n%%", "!!", "#comment", "a=b", "{a,b}", "$'\\n'", "'\"'\"'",
};

/* printf %s QUOTED through sh (and nested: sh -c QUOTED(printf %s QUOTED)). */
static void test_quote_roundtrip(void)
{
	char name[256], *q, *cmd, *q2, *out;
	size_t i, n;
	int st;

	for (i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		const char *s = nasty[i];

		q = sh_quote(s);
		if (asprintf(&cmd, "printf %%s %s", q) < 0)
			abort();
		out = sh_out(cmd, &n, &st);
		snprintf(name, sizeof(name), "sh_quote round-trip \"%s\"", vis(s));
		check(st == 0 && n == strlen(s) && memcmp(out, s, n) == 0, name, vis(out));
		free(out);

		q2 = sh_quote(cmd);
		free(cmd);
		if (asprintf(&cmd, "sh -c %s", q2) < 0)
			abort();
		out = sh_out(cmd, &n, &st);
		snprintf(name, sizeof(name), "sh_quote nested round-trip \"%s\"", vis(s));
		check(st == 0 && n == strlen(s) && memcmp(out, s, n) == 0, name, vis(out));
		free(out);
		free(cmd);
		free(q2);
		free(q);
	}
}

static void test_quote_long(void)
{
	char *s = malloc(20001), *q, *cmd, *out;
	size_t i, n;
	int st;

	for (i = 0; i < 20000; i++)
		s[i] = "a'b\" $`\n\\"[i % 9];
	s[20000] = '\0';
	q = sh_quote(s);
	if (asprintf(&cmd, "printf %%s %s", q) < 0)
		abort();
	out = sh_out(cmd, &n, &st);
	check(st == 0 && n == 20000 && memcmp(out, s, n) == 0,
	      "sh_quote round-trip of 20000 mixed bytes", NULL);
	free(out);
	free(cmd);
	free(q);
	free(s);
	q = sh_quote("it's");
	check(strcmp(q, "'it'\\''s'") == 0, "sh_quote(\"it's\") is 'it'\\''s'", q);
	free(q);
	q = sh_quote("");
	check(strcmp(q, "''") == 0, "sh_quote(\"\") is ''", q);
	free(q);
}

static void test_quote_path(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "~", "/h'o me" },
		{ "~/", "/h'o me/" },
		{ "~/a b/$x", "/h'o me/a b/$x" },
		{ "/abs/it's", "/abs/it's" },
		{ "~root/x", "~root/x" },
	};
	char name[128], *q, *cmd, *out;
	size_t i, n;
	int st;

	setenv("HOME", "/h'o me", 1);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		q = sh_quote_path(t[i].in);
		if (asprintf(&cmd, "printf %%s %s", q) < 0)
			abort();
		out = sh_out(cmd, &n, &st);
		snprintf(name, sizeof(name), "sh_quote_path \"%s\" gives \"%s\"", t[i].in, t[i].want);
		check(st == 0 && strcmp(out, t[i].want) == 0, name, out);
		free(out);
		free(cmd);
		free(q);
	}
}

static void test_argv_buf(void)
{
	struct argv_buf a = ARGV_BUF_INIT;
	char want[16];
	int i, ok = 1;

	check(a.v == NULL && a.n == 0, "argv_buf starts empty", NULL);
	for (i = 0; i < 1000; i++)
		ok &= argv_push_fmt(&a, "x%d", i) == 0;
	argv_push(&a, "last one");
	check(ok && a.n == 1001 && !a.err, "argv_buf holds 1001 pushes", NULL);
	for (i = 0; i < 1000; i++) {
		snprintf(want, sizeof(want), "x%d", i);
		ok &= strcmp(a.v[i], want) == 0;
	}
	check(ok && strcmp(a.v[1000], "last one") == 0, "argv_buf keeps order and content", NULL);
	check(a.v[a.n] == NULL, "argv_buf is NULL-terminated", NULL);
	argv_free(&a);
	check(a.v == NULL && a.n == 0 && a.cap == 0, "argv_free resets", NULL);
	argv_push(&a, "one");
	check(a.n == 1 && a.v[1] == NULL, "argv_buf reusable after free", NULL);
	argv_free(&a);
}

typedef int (*check_str_fn)(const char *, char *, size_t);
typedef int (*check_num_fn)(const char *, int *, char *, size_t);

static void expect_str(const char *fname, check_str_fn f, const char *v, int good,
		       const char *want_why)
{
	char why[SSH_WHY_MAX] = "", name[320];
	int r = f(v, why, sizeof(why));
	int ok = good ? r == 0 && !why[0] : r == -EINVAL && why[0];

	if (ok && want_why)
		ok = strcmp(why, want_why) == 0;
	snprintf(name, sizeof(name), "%s \"%s\" %s%s%s", fname, vis(v ? v : "(null)"),
		 good ? "accepted" : "refused", why[0] ? ": " : "", why);
	check(ok, name, want_why);
}

static void expect_num(const char *fname, check_num_fn f, const char *v, int want)
{
	char why[SSH_WHY_MAX] = "", name[320];
	int out = -1, r = f(v, &out, why, sizeof(why));
	int ok = want >= 0 ? r == 0 && out == want : r == -EINVAL && why[0];

	snprintf(name, sizeof(name), "%s \"%s\" %s%s%s", fname, vis(v), want >= 0 ? "accepted" : "refused",
		 why[0] ? ": " : "", why);
	check(ok, name, NULL);
}

static void test_host(void)
{
	static const char *good[] = {
		"localhost", "example.com", "a-b.c_d.example.", "127.0.0.1", "10.1.2.3",
		"::1", "fe80::1%eth0", "2001:db8::42", "::ffff:127.0.0.1", "H0ST",
	};
	static const char *bad[] = {
		"", "-oProxyCommand=touch /tmp/x", "-host", "a b", "a\tb", "a;b", "a|b",
		"a&b", "$(id)", "a`id`", "a'b", "a\"b", "a/b", "user@host", "a\nb",
		"a\x7f", "h\xc3\xa9", "a..b", ".a", "[::1]", "1.2.3.4:22", ":::",
		"fe80::1%", "example.com%x", "a,b", "a*b",
	};
	char long_label[80], long_host[300];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_str("host", ssh_check_host, good[i], 1, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_str("host", ssh_check_host, bad[i], 0, NULL);
	expect_str("host", ssh_check_host, "-oProxyCommand=x", 0,
		   "host \"-oProxyCommand=x\" is not a hostname: it starts with \"-\"");
	expect_str("host", ssh_check_host, "a b", 0,
		   "host \"a b\" is not a hostname: it contains whitespace");
	expect_str("host", ssh_check_host, "a;b", 0,
		   "host \"a;b\" is not a hostname: it contains \";\"");
	expect_str("host", ssh_check_host, "", 0, "host is empty");
	expect_str("host", ssh_check_host, NULL, 0, "host is empty");
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	expect_str("host", ssh_check_host, long_label, 0, NULL);
	long_label[63] = '\0';
	expect_str("host", ssh_check_host, long_label, 1, NULL);
	for (i = 0; i < 254; i++)
		long_host[i] = i % 2 ? '.' : 'a';
	long_host[254] = '\0';
	expect_str("host", ssh_check_host, long_host, 0, NULL);
	long_host[253] = '\0';
	expect_str("host", ssh_check_host, long_host, 1, NULL);
}

static void test_user(void)
{
	static const char *good[] = {
		"root", "_svc", "a", "Alice.B-c_d", "u123", "abcdefghijklmnopqrstuvwxyz012345",
	};
	static const char *bad[] = {
		"", "a;b", "a b", "-l", "1abc", ".x", "a@b", "a$b", "a/b", "a\nb",
		"abcdefghijklmnopqrstuvwxyz0123456", "a:b", "\xc3\xa9",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_str("user", ssh_check_user, good[i], 1, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_str("user", ssh_check_user, bad[i], 0, NULL);
	expect_str("user", ssh_check_user, "a;b", 0,
		   "user \"a;b\" is not a user name: it contains \";\"");
}

static void test_paths(void)
{
	static const char *id_good[] = {
		"/root/.ssh/id_ed25519", "/tmp/a b/it's key", "/x",
	};
	static const char *id_bad[] = {
		"", "-i/x", "id_ed25519", "~/.ssh/id", "/a\nb", "/a%hb", "/a/${HOME}/k",
	};
	static const char *wd_good[] = {
		"/srv/mlfs", "~", "~/mlfs", "~/", "/a b/it's/$x", "/x/./y", "/x/..y/z..", "/x/.../y",
	};
	static const char *wd_bad[] = {
		"", "/x/../etc", "..", "/..", "/x/..", "~/../x", "relative", "-x",
		"~root/x", "/a\nb", "/a\tb", "/a*", "/a?", "/a[b]", "/a\\b",
	};
	size_t i;

	for (i = 0; i < sizeof(id_good) / sizeof(id_good[0]); i++)
		expect_str("identity_file", ssh_check_identity_file, id_good[i], 1, NULL);
	for (i = 0; i < sizeof(id_bad) / sizeof(id_bad[0]); i++)
		expect_str("identity_file", ssh_check_identity_file, id_bad[i], 0, NULL);
	for (i = 0; i < sizeof(wd_good) / sizeof(wd_good[0]); i++)
		expect_str("workdir", ssh_check_workdir, wd_good[i], 1, NULL);
	for (i = 0; i < sizeof(wd_bad) / sizeof(wd_bad[0]); i++)
		expect_str("workdir", ssh_check_workdir, wd_bad[i], 0, NULL);
	expect_str("workdir", ssh_check_workdir, "/x/../etc", 0,
		   "workdir \"/x/../etc\" has a \"..\" component");
}

static void test_numbers(void)
{
	expect_num("port", ssh_check_port, "22", 22);
	expect_num("port", ssh_check_port, "1", 1);
	expect_num("port", ssh_check_port, "65535", 65535);
	expect_num("port", ssh_check_port, "0", -1);
	expect_num("port", ssh_check_port, "65536", -1);
	expect_num("port", ssh_check_port, "-1", -1);
	expect_num("port", ssh_check_port, "+22", -1);
	expect_num("port", ssh_check_port, " 22", -1);
	expect_num("port", ssh_check_port, "22 ", -1);
	expect_num("port", ssh_check_port, "0x16", -1);
	expect_num("port", ssh_check_port, "", -1);
	expect_num("port", ssh_check_port, "99999999999999999999", -1);
	expect_num("port", ssh_check_port, "22;id", -1);
	expect_num("connect_timeout", ssh_check_connect_timeout, "1", 1);
	expect_num("connect_timeout", ssh_check_connect_timeout, "300", 300);
	expect_num("connect_timeout", ssh_check_connect_timeout, "0", -1);
	expect_num("connect_timeout", ssh_check_connect_timeout, "301", -1);
	expect_num("max_concurrent", ssh_check_max_concurrent, "1", 1);
	expect_num("max_concurrent", ssh_check_max_concurrent, "1024", 1024);
	expect_num("max_concurrent", ssh_check_max_concurrent, "0", -1);
	expect_num("max_concurrent", ssh_check_max_concurrent, "1025", -1);
}

/* Compare @a with the NULL-terminated @want. */
static void expect_argv(const char *name, const struct argv_buf *a, const char *const *want)
{
	char detail[512] = "";
	size_t i;
	int ok = 1;

	for (i = 0; want[i] && ok; i++) {
		ok = i < a->n && strcmp(a->v[i], want[i]) == 0;
		if (!ok)
			snprintf(detail, sizeof(detail), "element %zu is \"%s\", want \"%s\"", i,
				 i < a->n ? a->v[i] : "(end)", want[i]);
	}
	if (ok && a->n != i) {
		ok = 0;
		snprintf(detail, sizeof(detail), "%zu elements, want %zu", a->n, i);
	}
	if (ok && a->v[a->n] != NULL) {
		ok = 0;
		snprintf(detail, sizeof(detail), "not NULL-terminated");
	}
	check(ok, name, detail);
}

static void test_argv_builders(void)
{
	struct ssh_target t = {
		.host = "example.com", .user = "alice", .port = 2222,
		.identity_file = "/k/id ed", .known_hosts = "/st ate/k%h\"\\q",
		.connect_timeout = 7, .strict_host_key = true,
	};
	static const char *const want_ssh[] = {
		"ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=\"/st ate/k%%h\\\"\\\\q\"",
		"-o", "IdentitiesOnly=yes", "-i", "/k/id ed",
		"-p", "2222", "-l", "alice", "--", "example.com", NULL,
	};
	static const char *const want_min[] = {
		"ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
		"-o", "StrictHostKeyChecking=accept-new",
		"-p", "22", "-l", "bob", "--", "::1", NULL,
	};
	static const char *const want_rsync[] = {
		"rsync", "-e",
		"'ssh' '-F' 'none' '-o' 'BatchMode=yes' '-o' 'ConnectTimeout=7' "
		"'-o' 'ServerAliveInterval=5' '-o' 'ServerAliveCountMax=3' "
		"'-o' 'StrictHostKeyChecking=yes' "
		"'-o' 'UserKnownHostsFile=\"/st ate/k%%h\\\"\\\\q\"' "
		"'-o' 'IdentitiesOnly=yes' '-i' '/k/id ed' '-p' '2222'",
		NULL,
	};
	struct ssh_target m = { .host = "::1", .user = "bob" };
	struct argv_buf a = ARGV_BUF_INIT;
	char why[SSH_WHY_MAX] = "", *spec;
	int r;

	r = ssh_argv(&t, &a, why, sizeof(why));
	check(r == 0, "ssh_argv accepts a full target", why);
	expect_argv("ssh_argv full: exact elements", &a, want_ssh);
	argv_free(&a);

	r = ssh_argv(&m, &a, why, sizeof(why));
	check(r == 0, "ssh_argv accepts a minimal target", why);
	expect_argv("ssh_argv minimal: defaults, no -i, no known_hosts", &a, want_min);
	argv_free(&a);

	r = rsync_argv(&t, &a, why, sizeof(why));
	check(r == 0, "rsync_argv accepts a full target", why);
	expect_argv("rsync_argv: one -e element, rsync-quoted", &a, want_rsync);
	argv_free(&a);

	t.identity_file = "/k/it's";
	rsync_argv(&t, &a, why, sizeof(why));
	check(a.n == 3 && strstr(a.v[2], "'-i' '/k/it''s'") != NULL,
	      "rsync_argv doubles a ' inside a word", a.n == 3 ? a.v[2] : NULL);
	argv_free(&a);

	spec = ssh_remote_spec(&t, "/w/run 1");
	check(strcmp(spec, "alice@example.com:/w/run 1") == 0, "ssh_remote_spec host", spec);
	free(spec);
	spec = ssh_remote_spec(&m, "w/r");
	check(strcmp(spec, "bob@[::1]:w/r") == 0, "ssh_remote_spec brackets IPv6", spec);
	free(spec);

	t.host = "-oProxyCommand=touch /tmp/x";
	why[0] = '\0';
	r = ssh_argv(&t, &a, why, sizeof(why));
	check(r == -EINVAL && a.n == 0 && strstr(why, "is not a hostname"),
	      "ssh_argv refuses host -oProxyCommand=touch /tmp/x, pushes nothing", why);
	argv_free(&a);
	t.host = "example.com";
	t.user = "a;b";
	r = ssh_argv(&t, &a, why, sizeof(why));
	check(r == -EINVAL && a.n == 0 && strstr(why, "user \"a;b\""), "ssh_argv refuses user a;b", why);
	argv_free(&a);
	t.user = "alice";
	t.port = 70000;
	r = rsync_argv(&t, &a, why, sizeof(why));
	check(r == -EINVAL && a.n == 0 && strstr(why, "port \"70000\""), "rsync_argv refuses port 70000", why);
	argv_free(&a);
	t.port = 22;
	t.identity_file = "relative";
	r = ssh_argv(&t, &a, why, sizeof(why));
	check(r == -EINVAL && a.n == 0 && strstr(why, "identity_file"),
	      "ssh_argv refuses a relative identity_file", why);
	argv_free(&a);
	t.identity_file = NULL;
	t.known_hosts = "/x/${HOME}";
	r = ssh_argv(&t, &a, why, sizeof(why));
	check(r == -EINVAL && a.n == 0 && strstr(why, "known_hosts"),
	      "ssh_argv refuses known_hosts with ${, pushes nothing", why);
	argv_free(&a);
}

/* ---- optional: against a real sshd (scripts/ssh-host.sh) --------------- */

static int real_target(struct ssh_target *t, char *kh_copy, size_t n)
{
	const char *port = getenv("SSH_PORT");
	char cmd[1024], *q;
	int st;
	size_t len;

	if (!port || !getenv("SSH_HOST") || !getenv("SSH_USER") ||
	    !getenv("SSH_IDENTITY") || !getenv("SSH_KNOWN_HOSTS"))
		return -1;
	/* a known_hosts path that needs every escape */
	snprintf(kh_copy, n, "/tmp/mlfs-tsq kh%%h \"q\\ #%d", (int)getpid());
	q = sh_quote(kh_copy);
	snprintf(cmd, sizeof(cmd), "cp \"$SSH_KNOWN_HOSTS\" %s", q);
	free(q);
	free(sh_out(cmd, &len, &st));
	*t = (struct ssh_target){
		.host = getenv("SSH_HOST"), .user = getenv("SSH_USER"),
		.port = atoi(port), .identity_file = getenv("SSH_IDENTITY"),
		.known_hosts = kh_copy, .connect_timeout = 5, .strict_host_key = true,
	};
	return st == 0 ? 0 : -1;
}

static void test_real(void)
{
	struct ssh_target t;
	struct argv_buf a = ARGV_BUF_INIT;
	char kh[256], why[SSH_WHY_MAX], dir[] = "/tmp/mlfs-tsq-XXXXXX";
	char name[256], *q, *cmd, *out, *spec, *path;
	size_t i, n;
	int st;

	if (real_target(&t, kh, sizeof(kh))) {
		skip("real ssh/rsync", "no SSH_* variables from ssh-host.sh host.env");
		return;
	}
	for (i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		ssh_argv(&t, &a, why, sizeof(why));
		q = sh_quote(nasty[i]);
		argv_push_fmt(&a, "printf %%s %s", q);
		st = run(a.v, &out, &n, 1);
		snprintf(name, sizeof(name), "real ssh printf round-trip \"%s\"", vis(nasty[i]));
		check(st == 0 && n == strlen(nasty[i]) && memcmp(out, nasty[i], n) == 0,
		      name, vis(out));
		free(out);
		free(q);
		argv_free(&a);
	}
	if (!mkdtemp(dir) || chmod(dir, 01777))
		abort(); /* SSH_USER may be another user */
	if (asprintf(&path, "%s/it's a $file `x`", dir) < 0)
		abort();
	q = sh_quote(path);
	if (asprintf(&cmd, "cmp /etc/hostname %s", q) < 0)
		abort();
	free(q);
	/* rsync: upload a file, compare */
	spec = ssh_remote_spec(&t, path);
	rsync_argv(&t, &a, why, sizeof(why));
	argv_push(&a, "-a");
	argv_push(&a, "--");
	argv_push(&a, "/etc/hostname");
	argv_push(&a, spec);
	st = run(a.v, &out, &n, 1);
	free(out);
	argv_free(&a);
	out = sh_out(cmd, &n, &st);
	check(st == 0, "real rsync -e to a path with ' $ ` and spaces", NULL);
	free(out);
	free(cmd);
	unlink(path);
	rmdir(dir);
	unlink(kh);
	free(spec);
	free(path);
}

int main(void)
{
	test_quote_roundtrip();
	test_quote_long();
	test_quote_path();
	test_argv_buf();
	test_host();
	test_user();
	test_paths();
	test_numbers();
	test_argv_builders();
	test_real();
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
