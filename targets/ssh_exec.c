// SPDX-License-Identifier: MIT
/*
 * ssh_exec.c — spawning ssh, rsync and tar for the SSH driver (see
 * ssh_exec.h).
 */
#include "ssh_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/hash.h"

extern char **environ;

/* Seconds ssh keeps an idle shared connection open. */
#define CONTROL_PERSIST	60

/* ---- spawning ---------------------------------------------------------- */

struct sx_pipes {
	int out[2];
	int err[2];
};

static void pipes_close(struct sx_pipes *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->out[i] >= 0)
			close(p->out[i]);
		if (p->err[i] >= 0)
			close(p->err[i]);
		p->out[i] = p->err[i] = -1;
	}
}

static int pipes_open(struct sx_pipes *p)
{
	p->out[0] = p->out[1] = p->err[0] = p->err[1] = -1;
	if (pipe2(p->out, O_CLOEXEC) || pipe2(p->err, O_CLOEXEC)) {
		int rc = -errno;

		pipes_close(p);
		return rc;
	}
	fcntl(p->out[0], F_SETFL, O_NONBLOCK);
	fcntl(p->err[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* stdin @in (-1: /dev/null), stdout @out, stderr @err, default signals,
 * own group. */
static int spawn_io(char *const argv[], int in, int out, int err, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (in < 0)
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
						 0);
	else
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

static int spawn_child(char *const argv[], struct sx_pipes *p, pid_t *pid)
{
	return spawn_io(argv, -1, p->out[1], p->err[1], pid);
}

/* Keep the last SX_ERR_MAX-1 bytes of stderr. */
static void err_append(struct sx_result *res, const char *buf, size_t n)
{
	size_t have = strlen(res->err), room = SX_ERR_MAX - 1;

	if (n >= room) {
		memcpy(res->err, buf + n - room, room);
		res->err[room] = '\0';
		return;
	}
	if (have + n > room) {
		memmove(res->err, res->err + (have + n - room), room - n);
		have = room - n;
	}
	memcpy(res->err + have, buf, n);
	res->err[have + n] = '\0';
}

/* Keep the first @out_max bytes of stdout. */
static void out_append(struct sx_result *res, const char *buf, size_t n,
		       size_t out_max)
{
	size_t keep = res->out_len + n > out_max ? out_max - res->out_len : n;
	char *o;

	if (keep < n)
		res->out_cut = 1;
	if (!keep)
		return;
	o = realloc(res->out, res->out_len + keep + 1);
	if (!o) {
		res->out_cut = 1;
		return;
	}
	res->out = o;
	memcpy(o + res->out_len, buf, keep);
	res->out_len += keep;
	o[res->out_len] = '\0';
}

/* Take what @fd holds now.  1 at EOF (or an error), else 0. */
static int drain_fd(int fd, struct sx_result *res, size_t out_max, int is_out)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : 1;
		if (is_out)
			out_append(res, buf, n, out_max);
		else
			err_append(res, buf, n);
	}
}

/*
 * Read both pipes until the children (@pid[0..n-1]) have exited (and the
 * pipes are drained) or the deadline; @status[i] is each one's wait
 * status, -1 when it was killed at the deadline.  Ends at the children's
 * exit, not at EOF: a shared-connection master ssh forks off may hold the
 * pipes open for a minute.
 */
static void collect_all(const pid_t *pid, int *status, int n,
			struct sx_pipes *p, int timeout_s, size_t out_max,
			struct sx_result *res)
{
	struct pollfd pfd[4] = {	/* the pipes, then a pidfd per child */
		{ .fd = p->out[0], .events = POLLIN },
		{ .fd = p->err[0], .events = POLLIN },
	};
	double deadline = mono_s() + timeout_s;
	int left = n, done[2] = { 0, 0 };

	for (int i = 0; i < n; i++)
		pfd[2 + i] = (struct pollfd){ .fd = pidfd_open(pid[i], 0),
					      .events = POLLIN };
	while (left) {
		poll(pfd, 2 + n, 100);
		for (int i = 0; i < 2; i++)
			if (pfd[i].fd >= 0 && drain_fd(pfd[i].fd, res, out_max,
							i == 0))
				pfd[i].fd = -1;
		for (int i = 0; i < n; i++)
			if (!done[i] && waitpid(pid[i], &status[i], WNOHANG) ==
			    pid[i]) {
				done[i] = 1;
				left--;
				if (pfd[2 + i].fd >= 0)	/* no more wake-ups */
					close(pfd[2 + i].fd);
				pfd[2 + i].fd = -1;
			}
		if (left && mono_s() > deadline) {
			for (int i = 0; i < n; i++) {
				if (done[i])
					continue;
				kill(pid[i], SIGKILL);
				while (waitpid(pid[i], &status[i], 0) < 0 &&
				       errno == EINTR)
					;
				status[i] = -1;
			}
			res->timed_out = 1;
			left = 0;
		}
	}
	for (int i = 0; i < n; i++)
		if (pfd[2 + i].fd >= 0)
			close(pfd[2 + i].fd);
	for (int i = 0; i < 2; i++)	/* what they wrote just before exiting */
		drain_fd(i ? p->err[0] : p->out[0], res, out_max, i == 0);
}

static int exit_code(int status)
{
	return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void collect(pid_t pid, struct sx_pipes *p, int timeout_s,
		    size_t out_max, struct sx_result *res)
{
	int status;

	collect_all(&pid, &status, 1, p, timeout_s, out_max, res);
	res->status = exit_code(status);
}

int sx_run(char *const argv[], int timeout_s, size_t out_max,
	   struct sx_result *res)
{
	struct sx_pipes p;
	pid_t pid;
	int rc;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	rc = pipes_open(&p);
	if (rc) {
		snprintf(res->err, sizeof(res->err), "cannot make a pipe: %s",
			 strerror(-rc));
		return rc;
	}
	rc = spawn_child(argv, &p, &pid);
	close(p.out[1]);
	close(p.err[1]);
	p.out[1] = p.err[1] = -1;
	if (rc) {
		snprintf(res->err, sizeof(res->err), "cannot run %s: %s",
			 argv[0], strerror(-rc));
		pipes_close(&p);
		return rc;
	}
	collect(pid, &p, timeout_s, out_max, res);
	pipes_close(&p);
	return 0;
}

int sx_pipe(char *const from[], char *const to[], int remote,
	    int timeout_s, struct sx_result *res)
{
	char *const *argv[2] = { from, to };
	int link[2], rc = 0, status[2] = { -1, -1 }, code[2];
	struct sx_pipes p;
	pid_t pid[2];
	int n = 0;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	rc = pipes_open(&p);
	if (!rc && pipe2(link, O_CLOEXEC)) {
		rc = -errno;
		pipes_close(&p);
	}
	if (rc) {
		snprintf(res->err, sizeof(res->err), "cannot make a pipe: %s",
			 strerror(-rc));
		return rc;
	}
	rc = spawn_io(from, -1, link[1], p.err[1], &pid[0]);
	if (!rc) {
		n = 1;
		rc = spawn_io(to, link[0], p.out[1], p.err[1], &pid[1]);
		if (!rc)
			n = 2;
	}
	close(link[0]);
	close(link[1]);
	close(p.out[1]);
	close(p.err[1]);
	p.out[1] = p.err[1] = -1;
	if (rc) {
		snprintf(res->err, sizeof(res->err), "cannot run %s: %s",
			 argv[n][0], strerror(-rc));
		if (n) {
			kill(pid[0], SIGKILL);
			while (waitpid(pid[0], NULL, 0) < 0 && errno == EINTR)
				;
		}
		pipes_close(&p);
		return rc;
	}
	collect_all(pid, status, 2, &p, timeout_s, 4096, res);
	pipes_close(&p);
	sx_result_free(res);
	for (int i = 0; i < 2; i++)
		code[i] = exit_code(status[i]);
	/* ssh's own verdict first (255: the connection); then the local
	 * side's failure, as a remote one: its stderr says what */
	if (res->timed_out)
		res->status = -1;
	else if (code[remote])
		res->status = code[remote];
	else
		res->status = code[!remote] ? 1 : 0;
	return 0;
}

void sx_result_free(struct sx_result *res)
{
	free(res->out);
	res->out = NULL;
	res->out_len = 0;
}

/* ---- connection options ------------------------------------------------ */

/* Characters ssh takes literally in a ControlPath (no %, ~, blanks, quotes). */
static int plain_path(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '/' || *s == '.' ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* /tmp/mlfs-<uid>, ours and private, or -errno. */
static int private_tmp(char *dir, size_t n)
{
	struct stat st;

	snprintf(dir, n, "/tmp/mlfs-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077))
		return -EPERM;
	return 0;
}

int ssh_conn_control_path(const char *objdir, char *out, size_t n)
{
	char dir[64];
	int rc;

	/* ssh binds "<path>.<16 random characters>" first, then renames:
	 * leave room for that in sun_path (108 bytes). */
	if (strlen(objdir) + sizeof("/cm") + 18 <= 100 && plain_path(objdir)) {
		snprintf(out, n, "%s/cm", objdir);
		return 0;
	}
	rc = private_tmp(dir, sizeof(dir));
	if (rc)
		return rc;
	snprintf(out, n, "%s/%016llx", dir,
		 (unsigned long long)fnv1a64_add(FNV64_BASIS_SHORT, objdir,
						  strlen(objdir)));
	return 0;
}

/* The options we add to ssh's own: sharing and quiet logs. */
static void push_extra(const struct ssh_conn *c, struct argv_buf *a)
{
	argv_push(a, "-o");
	argv_push(a, "LogLevel=ERROR");
	if (!c->control_path[0])
		return;
	argv_push(a, "-o");
	argv_push(a, "ControlMaster=auto");
	argv_push(a, "-o");
	argv_push_fmt(a, "ControlPath=%s", c->control_path);
	argv_push(a, "-o");
	argv_push_fmt(a, "ControlPersist=%d", CONTROL_PERSIST);
}

/* ssh: our options go right after "ssh", before "--" and the host. */
static int ssh_line(const struct ssh_conn *c, struct argv_buf *a, char *why,
		    size_t len)
{
	struct argv_buf base = ARGV_BUF_INIT;
	int rc;

	rc = ssh_argv(&c->t, &base, why, len);
	if (!rc) {
		argv_push(a, base.v[0]);
		push_extra(c, a);
		for (size_t i = 1; i < base.n; i++)
			argv_push(a, base.v[i]);
		rc = a->err;
	}
	argv_free(&base);
	return rc;
}

/* rsync: our options join the one "-e" element, in rsync's quoting. */
static int rsync_line(const struct ssh_conn *c, struct argv_buf *a, char *why,
		      size_t len)
{
	struct argv_buf extra = ARGV_BUF_INIT;
	size_t at = a->n + 2;	/* "rsync" "-e" "<ssh …>" */
	char *joined;
	int rc;

	rc = rsync_argv(&c->t, a, why, len);
	if (rc)
		return rc;
	push_extra(c, &extra);
	for (size_t i = 0; i < extra.n && !extra.err; i++) {
		/* plain values: no ' to double */
		if (asprintf(&joined, "%s '%s'", a->v[at], extra.v[i]) < 0) {
			extra.err = -ENOMEM;
			break;
		}
		free(a->v[at]);
		a->v[at] = joined;
	}
	rc = extra.err;
	argv_free(&extra);
	return rc;
}

int ssh_conn_argv(const struct ssh_conn *c, const char *kind,
		  struct argv_buf *a, char *why, size_t len)
{
	if (!strcmp(kind, "rsync"))
		return rsync_line(c, a, why, len);
	return ssh_line(c, a, why, len);
}

int ssh_conn_exec(const struct ssh_conn *c, const char *script,
		  int timeout_s, size_t out_max, struct sx_result *res)
{
	struct argv_buf a = ARGV_BUF_INIT;
	char *q;
	int rc;

	rc = ssh_conn_argv(c, "ssh", &a, res->err, sizeof(res->err));
	if (!rc) {
		q = sh_quote(script);
		if (q)
			argv_push_fmt(&a, "sh -c %s", q);
		else
			a.err = -ENOMEM;
		free(q);
		rc = a.err;
	}
	if (rc) {
		char why[SX_ERR_MAX];

		snprintf(why, sizeof(why), "%s", res->err);
		memset(res, 0, sizeof(*res));
		res->status = -1;
		snprintf(res->err, sizeof(res->err), "%s",
			 rc == -ENOMEM ? "out of memory" : why);
		argv_free(&a);
		return rc;
	}
	rc = sx_run(a.v, timeout_s, out_max, res);
	argv_free(&a);
	return rc;
}

void ssh_conn_close(const struct ssh_conn *c)
{
	struct argv_buf a = ARGV_BUF_INIT;
	struct sx_result res;
	struct stat st;
	char why[SSH_WHY_MAX];

	if (!c->control_path[0] || stat(c->control_path, &st))
		return;
	if (!ssh_line(c, &a, why, sizeof(why))) {
		/* "ssh … -- HOST" → "ssh … -O exit -- HOST" */
		char *host = a.v[a.n - 1], *dashes = a.v[a.n - 2];

		a.n -= 2;
		argv_push(&a, "-O");
		argv_push(&a, "exit");
		argv_push(&a, dashes);
		argv_push(&a, host);
		free(host);
		free(dashes);
		if (!a.err && !sx_run(a.v, 10, 4096, &res))
			sx_result_free(&res);
	}
	argv_free(&a);
}

/* ---- sentences --------------------------------------------------------- */

/* The last non-empty line of @s, printable, into @out. */
static void last_line(const char *s, char *out, size_t n)
{
	const char *end = s + strlen(s), *start;
	size_t o = 0;

	while (end > s && (end[-1] == '\n' || end[-1] == '\r' ||
			   end[-1] == ' '))
		end--;
	start = end;
	while (start > s && start[-1] != '\n')
		start--;
	for (; start < end && o + 1 < n; start++)
		out[o++] = (unsigned char)*start < 0x20 ? ' ' : *start;
	out[o] = '\0';
}

static const char *const unreachable_marks[] = {
	"Connection refused", "Connection timed out", "Operation timed out",
	"No route to host", "Network is unreachable", "Could not resolve",
	"Connection closed", "Connection reset", "Broken pipe",
	"connection unexpectedly closed", "Name or service not known",
	"Temporary failure in name resolution", "kex_exchange_identification",
	"Connection to ", NULL
};

static int has_mark(const char *s, const char *const *marks)
{
	for (int i = 0; marks[i]; i++)
		if (strstr(s, marks[i]))
			return 1;
	return 0;
}

enum sx_why ssh_conn_why(const struct ssh_conn *c, const struct sx_result *res,
			 int timeout_s, char *buf, size_t n)
{
	const char *e = res->err, *user = c->t.user, *host = c->t.host;
	int port = c->t.port ? c->t.port : 22;
	char line[256];

	last_line(e, line, sizeof(line));
	if (res->status == 0 && !res->timed_out) {
		buf[0] = '\0';
		return SX_OK;
	}
	if (res->timed_out) {
		snprintf(buf, n, "host %s:%d is unreachable: no answer within"
			 " %d s", host, port, timeout_s);
		return SX_UNREACHABLE;
	}
	if (strstr(e, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
	    strstr(e, "Host key for ") || strstr(e, "has changed and you")) {
		snprintf(buf, n, "the host key of %s:%d has changed since it"
			 " was first accepted (kept in %s): refusing to"
			 " connect; if the change is expected, remove that"
			 " file's line for the host and provision again",
			 host, port, c->known_hosts);
		return SX_HOSTKEY_CHANGED;
	}
	if (strstr(e, "Host key verification failed") ||
	    strstr(e, "No ED25519 host key is known") ||
	    strstr(e, "host key is known")) {
		snprintf(buf, n, "the host key of %s:%d is not in %s: provision"
			 " the target to accept it", host, port,
			 c->known_hosts);
		return SX_HOSTKEY_UNKNOWN;
	}
	if (strstr(e, "Permission denied") ||
	    strstr(e, "Too many authentication failures")) {
		snprintf(buf, n, "%s@%s:%d refused the key%s%s: %s", user, host,
			 port, c->identity_shown ? " " : "",
			 c->identity_shown ? c->identity_shown : "", line);
		return SX_AUTH;
	}
	if (res->status == 255 || res->status < 0 ||
	    has_mark(e, unreachable_marks)) {
		snprintf(buf, n, "host %s:%d is unreachable: %s", host, port,
			 line[0] ? line : "the connection was lost");
		return SX_UNREACHABLE;
	}
	snprintf(buf, n, "the command on %s:%d failed (exit code %d)%s%s",
		 host, port, res->status, line[0] ? ": " : "", line);
	return SX_REMOTE;
}
