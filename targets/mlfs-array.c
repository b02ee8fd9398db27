// SPDX-License-Identifier: MIT
/*
 * The launcher of an array run (see mlfs-array.h): N tasks of one run,
 * at most M at once, inside mlfs-run -- so that a daemon crash loses
 * nothing and a restarted daemon adopts the whole array as it adopts a
 * run (the pid file names this launcher's process group).
 *
 * It stays root: the task folders are the daemon's (a run's user can read
 * them through the mount, never replace them), each task's log is opened
 * here before the task drops its privileges, as mlfs-run does for a run's
 * log.  Each task has a process group of its own, so that one task's time
 * limit ends that task's processes only; a cancel (TERM to this group)
 * is passed on to every task's group.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/array.h"
#include "mlfs-array.h"

struct task {
	int idx;		/* its array index */
	pid_t pid;		/* 0: slot free */
	double started;
	double term_at;		/* TERM sent, 0: not */
	int timed_out;
};

static volatile sig_atomic_t stop_asked;

static void on_term(int sig)
{
	(void)sig;
	stop_asked = 1;
}

static void on_tick(int sig)
{
	(void)sig;	/* wakes waitpid */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* RUNDIR/tasks/I/NAME := @text, atomically (a reader sees the old or the
 * new text, never a part): RUNDIR/task.tmp, then rename. */
static void put(const struct array_opts *o, int idx, const char *name,
		const char *text)
{
	char tmp[4096], path[4096];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/task.tmp", o->rundir);
	snprintf(path, sizeof(path), "%s/tasks/%d/%s", o->rundir, idx, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return;
	if (write(fd, text, len) != (ssize_t)len || close(fd) ||
	    rename(tmp, path))
		unlink(tmp);
}

/* tasks/I with status Queued, an empty exit_code and log, for all I. */
static int make_tasks(const struct array_opts *o, const struct array_spec *s)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/tasks", o->rundir);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	for (int i = 0; i < s->n; i++) {
		snprintf(path, sizeof(path), "%s/tasks/%d", o->rundir,
			 s->idx[i]);
		if (mkdir(path, 0755) && errno != EEXIST)
			return -1;
		put(o, s->idx[i], "exit_code", "");
		put(o, s->idx[i], "status", "Queued\n");
		snprintf(path, sizeof(path), "%s/tasks/%d/log", o->rundir,
			 s->idx[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			  0644);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* In the task's process: its log, its group, its variables, the command. */
static void task_child(const struct array_opts *o, int idx, int count,
		       array_exec_fn run, void *ctx)
{
	char path[4096], num[16];
	sigset_t none;
	int fd;

	setpgid(0, 0);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(path, sizeof(path), "%s/tasks/%d/log", o->rundir, idx);
	fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	snprintf(num, sizeof(num), "%d", idx);
	setenv("MLFS_ARRAY_INDEX", num, 1);
	snprintf(num, sizeof(num), "%d", count);
	setenv("MLFS_ARRAY_COUNT", num, 1);
	run(ctx);
	_exit(127);
}

static int task_start(const struct array_opts *o, struct task *t, int idx,
		      int count, array_exec_fn run, void *ctx)
{
	pid_t pid;

	put(o, idx, "status", "Running\n");
	pid = fork();
	if (pid == 0)
		task_child(o, idx, count, run, ctx);
	if (pid < 0) {
		dprintf(1, "mlfs: task %d cannot start: %s\n", idx,
			strerror(errno));
		put(o, idx, "exit_code", "127\n");
		put(o, idx, "status", "Failed\n");
		return -1;
	}
	setpgid(pid, pid);	/* before any signal of ours reaches it */
	memset(t, 0, sizeof(*t));
	t->idx = idx;
	t->pid = pid;
	t->started = now_s();
	dprintf(1, "mlfs: task %d started\n", idx);
	return 0;
}

/* Record the end of @t; its exit code. */
static int task_end(const struct array_opts *o, struct task *t, int status)
{
	char line[32];
	int code;

	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
	snprintf(line, sizeof(line), "%d\n", code);
	put(o, t->idx, "exit_code", line);
	put(o, t->idx, "status", !code ? "Completed\n" :
	    stop_asked && !t->timed_out ? "Canceled\n" : "Failed\n");
	if (t->timed_out)
		dprintf(1, "mlfs: task %d exceeded its time limit of %ld s and"
			" was stopped\n", t->idx, o->limit);
	dprintf(1, "mlfs: task %d ended (exit %d)\n", t->idx, code);
	if (o->ended)
		o->ended(o->ended_ctx, t->idx, status);
	t->pid = 0;
	return code;
}

/* TERM to a task's group, KILL o->grace seconds later. */
static void task_stop(const struct array_opts *o, struct task *t, double now)
{
	if (!t->term_at) {
		kill(-t->pid, SIGTERM);
		t->term_at = now;
	} else if (now - t->term_at >= o->grace) {
		kill(-t->pid, SIGKILL);
	}
}

/* Each tick: time limits, and a cancel passed on. */
static void tick(const struct array_opts *o, struct task *run, int max)
{
	double now = now_s();

	for (int i = 0; i < max; i++) {
		struct task *t = &run[i];

		if (!t->pid)
			continue;
		if (!stop_asked && o->limit && now - t->started > o->limit)
			t->timed_out = 1;
		if (stop_asked || t->timed_out)
			task_stop(o, t, now);
	}
}

static struct task *task_of(struct task *run, int max, pid_t pid)
{
	for (int i = 0; i < max; i++)
		if (run[i].pid == pid)
			return &run[i];
	return NULL;
}

static struct task *free_slot(struct task *run, int max)
{
	return task_of(run, max, 0);
}

static void signals(void)
{
	struct sigaction term = { .sa_handler = on_term };
	struct sigaction alrm = { .sa_handler = on_tick };
	struct itimerval iv = { { 0, 200000 }, { 0, 200000 } };
	sigset_t none;

	/* no SA_RESTART: a signal ends waitpid, the loop looks again */
	sigaction(SIGTERM, &term, NULL);
	sigaction(SIGINT, &term, NULL);
	sigaction(SIGHUP, &term, NULL);
	sigaction(SIGALRM, &alrm, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setitimer(ITIMER_REAL, &iv, NULL);
}

void array_main(const struct array_opts *o, array_exec_fn run, void *ctx)
{
	struct array_spec s;
	struct task *slots, *t;
	int next = 0, running = 0, first = 0, status, code;
	pid_t pid;

	if (array_parse(o->spec, 1, &s) || make_tasks(o, &s)) {
		dprintf(1, "mlfs: cannot set up the array %s\n", o->spec);
		_exit(126);
	}
	slots = calloc(o->max, sizeof(*slots));
	if (!slots)
		_exit(126);
	signals();
	while (running || (next < s.n && !stop_asked)) {
		while (!stop_asked && running < o->max && next < s.n) {
			t = free_slot(slots, o->max);
			if (!task_start(o, t, s.idx[next], s.n, run, ctx))
				running++;
			else if (!first)
				first = 127;
			next++;
		}
		pid = waitpid(-1, &status, 0);
		if (pid > 0 && (t = task_of(slots, o->max, pid))) {
			code = task_end(o, t, status);
			running--;
			if (code && !first)
				first = code;
		}
		tick(o, slots, o->max);
	}
	for (; next < s.n; next++)	/* canceled before they started */
		put(o, s.idx[next], "status", "Canceled\n");
	_exit(stop_asked ? 143 : first);
}
