// SPDX-License-Identifier: MIT
/*
 * The launcher of `procs_per_node = N` runs on one node (local target),
 * torchrun's job without torch: N copies of the command, each with the
 * variables PyTorch's env:// reads, their output relayed to the log line
 * by line with the rank in front, the first failure ending the others.
 *
 * It runs inside mlfs-run's child, as the run's user and in the run's
 * cgroups, as the leader of the process group the daemon signals on
 * cancel and at the time limit: a TERM to the group reaches every rank,
 * and the leader (whose handler does nothing) stays to record their
 * codes.  The relay is this process, not the daemon: a daemon crash
 * loses no line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlfs-ranks.h"

#define RANKS_MAX	256	/* resources: procs_per_node <= 256 */
#define LINE_MAX_R	4096	/* a longer line is cut into pieces */
#define KILL_AFTER_S	10	/* TERM, then KILL, after a failure */

struct rank {
	pid_t pid;		/* 0 once reaped */
	int fd;			/* its stdout+stderr pipe, -1 at EOF */
	size_t len;		/* bytes of a partial line in buf */
	char buf[LINE_MAX_R];
};

static struct rank ranks[RANKS_MAX];

/* This node among the run's (ranks_set_node); one node by default. */
static int node_rank, num_nodes = 1, master_port, ranks_n;
static const char *master_addr = "127.0.0.1";

void ranks_set_node(int node, int nodes, const char *addr, int port)
{
	node_rank = node;
	num_nodes = nodes;
	master_addr = addr;
	master_port = port;
}

/* In a container (mlfs-ranks): each rank leads a process group of its
 * own, and the leader passes the signals it gets on to them, since the
 * container's init (catatonit) passes them to its child only. */
static int forward;
static volatile sig_atomic_t got_sig;

static void on_signal(int sig)
{
	if (sig != SIGCHLD)
		got_sig = sig;	/* wakes poll; the leader outlives TERM */
}

void ranks_forward_signals(void)
{
	forward = 1;
}

/* @sig to every rank still running: its group. */
static void signal_ranks(int n, int sig)
{
	for (int r = 0; r < n; r++)
		if (ranks[r].pid > 0)
			kill(-ranks[r].pid, sig);
}

void ranks_gpus(const char *all, int local_rank, int n, char *out,
		size_t out_sz)
{
	int count = *all ? 1 : 0, per, first, i = 0;
	const char *p;
	size_t o = 0;

	for (p = all; *p; p++)
		count += *p == ',';
	per = n > 0 ? count / n : 0;
	if (per < 1 || local_rank < 0 || local_rank >= n) {
		snprintf(out, out_sz, "%s", all);
		return;
	}
	first = local_rank * per;
	out[0] = '\0';
	for (p = all; *p && i < first + per; i++) {
		size_t l = strcspn(p, ",");

		if (i >= first && o + l + 2 <= out_sz)
			o += snprintf(out + o, out_sz - o, "%s%.*s",
				      o ? "," : "", (int)l, p);
		p += l + (p[l] == ',');
	}
}

/* A port free now on 127.0.0.1, as the kernel picks for bind(port 0); it
 * is released just before the ranks start (rank 0 binds it a moment
 * later: torchrun's way).  29500, PyTorch's default, if none is found. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 29500;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void setenv_int(const char *k, long v)
{
	char num[24];

	snprintf(num, sizeof(num), "%ld", v);
	setenv(k, num, 1);
}

/* In rank @r's process: its variables, then the command. */
static void rank_exec(int r, int n, int port, int out, const char *cmd,
		      ranks_env_fn env)
{
	const char *all = getenv("CUDA_VISIBLE_DEVICES");
	char gpus[1024];

	sigset_t none;

	/* the leader's no-op handlers would swallow a cancel before exec:
	 * the defaults, then what came meanwhile (blocked since fork) */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	if (forward)
		setpgid(0, 0);
	sigprocmask(SIG_SETMASK, &none, NULL);
	dup2(out, 1);
	dup2(out, 2);
	setenv_int("RANK", (long)node_rank * n + r);
	setenv_int("LOCAL_RANK", r);
	setenv_int("WORLD_SIZE", (long)num_nodes * n);
	setenv_int("LOCAL_WORLD_SIZE", n);
	setenv_int("NODE_RANK", node_rank);
	setenv_int("MLFS_NODE_RANK", node_rank);
	setenv_int("MLFS_NUM_NODES", num_nodes);
	setenv("MASTER_ADDR", master_addr, 1);
	setenv_int("MASTER_PORT", port);
	if (all) {
		ranks_gpus(all, r, n, gpus, sizeof(gpus));
		setenv("CUDA_VISIBLE_DEVICES", gpus, 1);
	}
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, env());
	dprintf(2, "mlfs: cannot run /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

static int start_ranks(int n, const char *cmd, ranks_env_fn env)
{
	int port = master_port > 0 ? master_port : free_port(), p[2];
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	for (int r = 0; r < n; r++) {
		ranks[r].fd = -1;
		if (pipe2(p, O_CLOEXEC))
			return -1;
		sigprocmask(SIG_BLOCK, &block, &old);
		ranks[r].pid = fork();
		if (ranks[r].pid == 0)
			rank_exec(r, n, port, p[1], cmd, env);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(p[1]);
		if (ranks[r].pid < 0) {
			ranks[r].pid = 0;
			close(p[0]);
			return -1;
		}
		if (forward)	/* before a signal of ours reaches it */
			setpgid(ranks[r].pid, ranks[r].pid);
		ranks[r].fd = p[0];
	}
	return 0;
}

/* ---- the relay ---------------------------------------------------------- */

static void write_all(const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(1, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)	/* a full disk: lose the line, not the run */
			return;
		buf += w;
		len -= w;
	}
}

/* The lines of one read, prefixed, go out in one write(2): O_APPEND keeps
 * each write whole, and a line per write cost 10x a direct log. */
static char out[LINE_MAX_R * 16];
static size_t out_len;

static void out_flush(void)
{
	write_all(out, out_len);
	out_len = 0;
}

/* "R: " + @len bytes + newline into the output buffer. */
static void emit(int r, const char *s, size_t len)
{
	char pre[16];
	int o = snprintf(pre, sizeof(pre), "%ld: ",
			 (long)node_rank * ranks_n + r);	/* RANK */

	if (out_len + o + len + 1 > sizeof(out))
		out_flush();
	memcpy(out + out_len, pre, o);
	memcpy(out + out_len + o, s, len);
	out_len += o + len;
	out[out_len++] = '\n';
}

/* Emit the complete lines of rank @r's buffer; a partial one at EOF, or
 * one that fills the whole buffer, goes out as it is. */
static void flush_lines(int r, int eof)
{
	struct rank *k = &ranks[r];
	size_t start = 0, left;
	char *nl;

	while ((nl = memchr(k->buf + start, '\n', k->len - start))) {
		emit(r, k->buf + start, nl - (k->buf + start));
		start = nl - k->buf + 1;
	}
	left = k->len - start;
	if (left && (eof || left == sizeof(k->buf))) {
		emit(r, k->buf + start, left);
		start = k->len;
	}
	memmove(k->buf, k->buf + start, k->len - start);
	k->len -= start;
}

static void read_rank(int r)
{
	struct rank *k = &ranks[r];
	ssize_t n = read(k->fd, k->buf + k->len, sizeof(k->buf) - k->len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		flush_lines(r, 1);
		out_flush();
		close(k->fd);
		k->fd = -1;
		return;
	}
	k->len += n;
	flush_lines(r, 0);
	out_flush();
}

/* Wait up to @ms for output (or a signal), and relay it.  How many pipes
 * had something (bytes or their end). */
static int relay(int n, int ms)
{
	struct pollfd pf[RANKS_MAX];
	int idx[RANKS_MAX], m = 0, got = 0;

	for (int r = 0; r < n; r++)
		if (ranks[r].fd >= 0) {
			pf[m] = (struct pollfd){ .fd = ranks[r].fd,
						 .events = POLLIN };
			idx[m++] = r;
		}
	if (m && poll(pf, m, ms) > 0)
		for (int i = 0; i < m; i++)
			if (pf[i].revents) {
				read_rank(idx[i]);
				got++;
			}
	return got;
}

static int pipes_open(int n)
{
	int open = 0;

	for (int r = 0; r < n; r++)
		open += ranks[r].fd >= 0;
	return open;
}

/* ---- waiting ------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int code_of(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
}

/* Reap what has ended (block when @block); the first non-zero code goes
 * to *@first.  How many ranks are still alive. */
static int reap(int n, int block, int *first)
{
	int status, alive = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
		for (int r = 0; r < n; r++)
			if (ranks[r].pid == pid)
				ranks[r].pid = 0;
		if (!*first && code_of(status))
			*first = code_of(status);
		block = 0;
	}
	for (int r = 0; r < n; r++)
		alive += ranks[r].pid > 0;
	return alive;
}

/* After a failure: TERM the group (this process shrugs it off), and
 * KILL_AFTER_S later each rank that is still there. */
static void stop_others(int n, double *failed_at)
{
	if (!*failed_at) {
		*failed_at = now_s();
		if (forward)
			signal_ranks(n, SIGTERM);
		else
			kill(0, SIGTERM);
		return;
	}
	if (now_s() - *failed_at < KILL_AFTER_S)
		return;
	for (int r = 0; r < n; r++)
		if (ranks[r].pid > 0)
			kill(forward ? -ranks[r].pid : ranks[r].pid, SIGKILL);
}

void ranks_main(int n, const char *cmd, ranks_env_fn env)
{
	struct sigaction sa = { .sa_handler = on_signal };
	double failed_at = 0;
	int first = 0, alive, open;

	if (n > RANKS_MAX)
		n = RANKS_MAX;
	ranks_n = n;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	if (start_ranks(n, cmd, env)) {
		dprintf(2, "mlfs: cannot start the processes: %s\n",
			strerror(errno));
		first = 127;
	}
	do {
		if (got_sig && forward) {
			signal_ranks(n, got_sig);
			got_sig = 0;
		}
		relay(n, 1000);
		open = pipes_open(n);
		alive = reap(n, !open && !first, &first);
		if (first && alive)
			stop_others(n, &failed_at);
		if (first && alive && !open)
			poll(NULL, 0, 1000);	/* SIGCHLD cuts it short */
	} while (alive);
	/* What the ranks left in their pipes; not what a process they left
	 * behind (holding a pipe open) writes later: the run has ended. */
	for (int i = 0; i < 1024 && relay(n, 0) > 0; i++)
		;
	for (int r = 0; r < n; r++)
		if (ranks[r].fd >= 0)
			flush_lines(r, 1);
	out_flush();
	_exit(first);
}
