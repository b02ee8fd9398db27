// SPDX-License-Identifier: MIT
/*
 * Array runs (resources `array`): what the tasks' records say once the
 * run ended.  A target's launcher writes <run>/tasks/I/{status,exit_code,
 * log} (mlfs-array.c on the local target); the run's folder shows tasks/
 * as it is.  Here, on the worker thread, the run's end: tasks a killed
 * launcher left Queued or Running are settled, and the failed ones named
 * in one sentence for `error`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static void run_array_sentence(struct failed *f, int n, int total,
			       char *out, size_t sz)
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

/*
 * Look at one task folder: a task left Queued or Running by a launcher
 * that is gone is Canceled (@canceled) or Failed; a failed one is pushed
 * on @f.  Returns 1 when it counts as a task.
 */
static int task_look(int tdfd, const char *name, int canceled,
		     struct failed *f, int *nf)
{
	char status[32], code[16];
	int dfd;

	dfd = openat(tdfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (dfd < 0)
		return 0;
	task_read(dfd, "status", status, sizeof(status));
	if (!strcmp(status, "Queued\n") || !strcmp(status, "Running\n"))
		task_write(dfd, "status", canceled ? "Canceled\n" :
			   "Failed\n");
	else if (!strcmp(status, "Failed\n")) {
		task_read(dfd, "exit_code", code, sizeof(code));
		f[*nf].idx = atoi(name);
		f[*nf].code = code[0] ? atoi(code) : -1;
		(*nf)++;
	}
	close(dfd);
	return 1;
}

int run_array_end(struct run_ctx *r, int canceled, char *why, size_t sz)
{
	struct failed *f;
	struct dirent *d;
	char path[PATH_MAX];
	int tdfd, nf = 0, total = 0;
	DIR *dir;

	why[0] = '\0';
	f = calloc(r->res.array_n + 1, sizeof(*f));
	snprintf(path, sizeof(path), "%s/tasks", r->dir);
	tdfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	dir = tdfd >= 0 ? fdopendir(tdfd) : NULL;
	if (!f || !dir) {
		if (tdfd >= 0 && !dir)
			close(tdfd);
		free(f);
		return -ENOENT;
	}
	while ((d = readdir(dir)) && total < r->res.array_n)
		if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
			total += task_look(tdfd, d->d_name, canceled, f, &nf);
	closedir(dir);
	if (nf)
		run_array_sentence(f, nf, total, why, sz);
	free(f);
	return nf;
}
