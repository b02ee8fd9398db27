// SPDX-License-Identifier: MIT
/*
 * Array runs (resources `array`): what the tasks' records say once the
 * run ended.  A target's launcher writes <run>/tasks/I/{status,exit_code,
 * log} (mlfs-array.c on the local target), or its driver does with the
 * writers below from what the host said (ssh); the run's folder shows
 * tasks/ as it is.  Here, on the worker thread, the run's end: tasks a
 * killed launcher left Queued or Running are settled (Failed: lost), and
 * the failed and the lost ones named in one sentence for `error`.
 *
 * A target whose tasks are not started by mlfs-array (Slurm: a job array)
 * keeps the same records through run_array_make_tasks and
 * run_array_task_set, so tasks/ reads the same on every target.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ws.h"
#include "driver.h"

#define SHOWN_MAX	12	/* items of the list before "…" */

struct failed {
	int idx, code;
};

static int by_index(const void *a, const void *b)
{
	const struct failed *x = a, *y = b;

	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* "3, 5-9, 12" of the sorted @f, at most SHOWN_MAX items, into @out. */
static void index_list(const struct failed *f, int n, char *out, size_t sz)
{
	size_t o = 0;
	int items = 0, i = 0, j;

	out[0] = '\0';
	while (i < n && o < sz) {
		for (j = i; j + 1 < n && f[j + 1].idx == f[j].idx + 1; j++)
			;
		if (items++ == SHOWN_MAX) {
			snprintf(out + o, sz - o, ", …");
			return;
		}
		if (j > i)
			o += snprintf(out + o, sz - o, "%s%d-%d", i ? ", " : "",
				      f[i].idx, f[j].idx);
		else
			o += snprintf(out + o, sz - o, "%s%d", i ? ", " : "",
				      f[i].idx);
		i = j + 1;
	}
}

/* "(exit 1)" when all failed the same way, else "(exits 1, 2, …)". */
static void codes(const struct failed *f, int n, char *out, size_t sz)
{
	size_t o = snprintf(out, sz, "(exit %d", f[0].code);
	int shown[4], k = 1;

	shown[0] = f[0].code;
	for (int i = 1; i < n && o < sz; i++) {
		int seen = 0;

		for (int j = 0; j < k; j++)
			seen |= shown[j] == f[i].code;
		if (seen)
			continue;
		if (k == 1)
			o = snprintf(out, sz, "(exits %d", f[0].code);
		if (k == 4) {
			o += snprintf(out + o, sz - o, ", …");
			break;
		}
		shown[k++] = f[i].code;
		o += snprintf(out + o, sz - o, ", %d", f[i].code);
	}
	if (o < sz)
		snprintf(out + o, sz - o, ")");
}

/* "tasks 3, 17 failed (exit 1)", "task 4 failed (exit 2)", "12 of 100
 * tasks failed: 1-10, 50, 70 (exits 1, 137)". */
static void failed_sentence(struct failed *f, int n, int total, char *out,
			    size_t sz)
{
	char list[256], why[64];

	qsort(f, n, sizeof(*f), by_index);
	index_list(f, n, list, sizeof(list));
	codes(f, n, why, sizeof(why));
	if (n == 1)
		snprintf(out, sz, "task %s failed %s", list, why);
	else if (n <= 3)
		snprintf(out, sz, "tasks %s failed %s", list, why);
	else
		snprintf(out, sz, "%d of %d tasks failed: %s %s", n, total,
			 list, why);
}

/* "task 3 was lost (its launcher died)", "tasks 3, 4 were lost (their
 * launcher died)", "12 of 100 tasks were lost: 1-10, 50, 70 (their
 * launcher died)": they have no exit code of their own to show. */
static void lost_sentence(struct failed *f, int n, int total, char *out,
			  size_t sz)
{
	char list[256];

	qsort(f, n, sizeof(*f), by_index);
	index_list(f, n, list, sizeof(list));
	if (n == 1)
		snprintf(out, sz, "task %s was lost (its launcher died)",
			 list);
	else if (n <= 3)
		snprintf(out, sz, "tasks %s were lost (their launcher died)",
			 list);
	else
		snprintf(out, sz, "%d of %d tasks were lost: %s (their"
			 " launcher died)", n, total, list);
}

/* The text of file @name of the task folder @dfd (up to @sz - 1 bytes);
 * "" when it cannot be read. */
static void task_read(int dfd, const char *name, char *buf, size_t sz)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sz - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void task_write(int dfd, const char *name, const char *text)
{
	int fd = openat(dfd, ".status.tmp", O_WRONLY | O_CREAT | O_TRUNC |
			O_NOFOLLOW | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0)
		return;
	if (write(fd, text, len) != (ssize_t)len || close(fd) ||
	    renameat(dfd, ".status.tmp", dfd, name))
		unlinkat(dfd, ".status.tmp", 0);
}

/* The folder tasks/@idx of @r (made when @make), or -errno. */
static int task_dir(struct run_ctx *r, int idx, int make)
{
	char path[PATH_MAX], name[16];
	int tdfd, dfd;

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_TASKS);
	if (make && mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	tdfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tdfd < 0)
		return -errno;
	snprintf(name, sizeof(name), "%d", idx);
	if (make && mkdirat(tdfd, name, 0755) && errno != EEXIST) {
		close(tdfd);
		return -errno;
	}
	dfd = openat(tdfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	close(tdfd);
	return dfd < 0 ? -errno : dfd;
}

int run_array_make(struct run_ctx *r, const int *idx, int n)
{
	int dfd, fd;

	for (int i = 0; i < n; i++) {
		dfd = task_dir(r, idx[i], 1);
		if (dfd < 0)
			return dfd;
		fd = openat(dfd, "status", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {		/* made before (adopted): as it is */
			close(fd);
			close(dfd);
			continue;
		}
		task_write(dfd, "exit_code", "");
		fd = openat(dfd, "log", O_WRONLY | O_CREAT | O_NOFOLLOW |
			    O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		task_write(dfd, "status", "Queued\n");
		close(dfd);
	}
	return 0;
}

int run_array_put(struct run_ctx *r, int idx, const char *name,
		  const char *text)
{
	int dfd = task_dir(r, idx, 0);

	if (dfd < 0)
		return dfd;
	task_write(dfd, name, text);
	close(dfd);
	return 0;
}

long long run_array_log(struct run_ctx *r, int idx, const char *data,
			size_t n)
{
	int dfd = task_dir(r, idx, 0), fd;
	struct stat st;
	long long size = -EIO;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, "log", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (!n || write(fd, data, n) == (ssize_t)n) &&
	    !fstat(fd, &st))
		size = st.st_size;
	if (fd >= 0)
		close(fd);
	close(dfd);
	return size;
}

int run_array_status(struct run_ctx *r, int idx, char *buf, size_t sz)
{
	int dfd = task_dir(r, idx, 0);

	buf[0] = '\0';
	if (dfd < 0)
		return dfd;
	task_read(dfd, "status", buf, sz);
	close(dfd);
	return 0;
}
/* What the tasks' folders say: the failed ones, and those lost by a
 * launcher that died (left Queued or Running: not Canceled ones). */
struct tally {
	struct failed *failed, *lost;
	int nf, nl, total;
};

/*
 * Look at one task folder: a task left Queued or Running by a launcher
 * that is gone is Canceled (@canceled) or Failed, and then lost; a task
 * that failed on its own is pushed on @t's failed.  Returns 1 when it
 * counts as a task.
 */
static int task_look(int tdfd, const char *name, int canceled,
		     struct tally *t)
{
	char status[32], code[16];
	int dfd;

	dfd = openat(tdfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (dfd < 0)
		return 0;
	task_read(dfd, "status", status, sizeof(status));
	if (!strcmp(status, "Queued\n") || !strcmp(status, "Running\n")) {
		task_write(dfd, "status", canceled ? "Canceled\n" :
			   "Failed\n");
		if (!canceled)
			t->lost[t->nl++].idx = atoi(name);
	} else if (!strcmp(status, "Failed\n")) {
		task_read(dfd, "exit_code", code, sizeof(code));
		t->failed[t->nf].idx = atoi(name);
		t->failed[t->nf].code = code[0] ? atoi(code) : -1;
		t->nf++;
	}
	close(dfd);
	return 1;
}

/* "task 0 failed (exit 1); tasks 1-3 were lost (their launcher died)". */
static void array_sentence(struct tally *t, char *why, size_t sz)
{
	size_t o = 0;

	if (t->nf)
		failed_sentence(t->failed, t->nf, t->total, why, sz);
	o = strlen(why);
	if (t->nl && o + 2 < sz) {
		if (o)
			o += snprintf(why + o, sz - o, "; ");
		lost_sentence(t->lost, t->nl, t->total, why + o, sz - o);
	}
}

int run_array_end(struct run_ctx *r, int canceled, char *why, size_t sz)
{
	struct tally t = { 0 };
	struct dirent *d;
	char path[PATH_MAX];
	int tdfd;
	DIR *dir;

	why[0] = '\0';
	t.failed = calloc(r->res.array_n + 1, sizeof(*t.failed));
	t.lost = calloc(r->res.array_n + 1, sizeof(*t.lost));
	snprintf(path, sizeof(path), "%s/tasks", r->dir);
	tdfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	dir = tdfd >= 0 ? fdopendir(tdfd) : NULL;
	if (!t.failed || !t.lost || !dir) {
		if (tdfd >= 0 && !dir)
			close(tdfd);
		free(t.failed);
		free(t.lost);
		return -ENOENT;
	}
	while ((d = readdir(dir)) && t.total < r->res.array_n)
		if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
			t.total += task_look(tdfd, d->d_name, canceled, &t);
	closedir(dir);
	array_sentence(&t, why, sz);
	free(t.failed);
	free(t.lost);
	return t.nf + t.nl;
}

int run_array_make_tasks(struct run_ctx *r, const int *idx, int n,
			 struct err *e)
{
	int rc = run_array_make(r, idx, n);

	if (rc)
		return err_set(e, rc, "cannot make the folders of the array's"
			       " tasks: %s", strerror(-rc));
	return 0;
}

enum obj_state run_array_task_state(const struct run_ctx *r, int idx)
{
	char status[32];

	run_array_status((struct run_ctx *)r, idx, status, sizeof(status));
	status[strcspn(status, "\n")] = '\0';
	return state_parse(status);
}

/* "mlfs: task 4 started" in the run's log, as mlfs-array.c writes it. */
static void task_log_line(const struct run_ctx *r, int idx,
			  enum obj_state s, int code)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_LOG);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return;
	if (s == RS_RUNNING)
		dprintf(fd, "mlfs: task %d started\n", idx);
	else if (s == RS_CANCELED)
		dprintf(fd, "mlfs: task %d canceled\n", idx);
	else if (code >= 0)
		dprintf(fd, "mlfs: task %d ended (exit %d)\n", idx, code);
	else
		dprintf(fd, "mlfs: task %d ended (%s)\n", idx, state_name(s));
	close(fd);
}

void run_array_task_set(struct run_ctx *r, int idx, enum obj_state s,
			int code)
{
	char text[32];
	int dfd = task_dir(r, idx, 0), ran_unseen;

	if (dfd < 0)
		return;
	/* a task that ran between two looks is seen only once ended: the
	 * log still says it started (the log tells every task that ran) */
	ran_unseen = run_state_final(s) && code >= 0 &&
		     run_array_task_state(r, idx) != RS_RUNNING;
	/* exit_code before status: a reader that sees the end sees it */
	if (run_state_final(s) && code >= 0) {
		snprintf(text, sizeof(text), "%d\n", code);
		task_write(dfd, "exit_code", text);
	}
	snprintf(text, sizeof(text), "%s\n", state_name(s));
	task_write(dfd, "status", text);
	close(dfd);
	if (ran_unseen)
		task_log_line(r, idx, RS_RUNNING, -1);
	task_log_line(r, idx, s, code);
}
