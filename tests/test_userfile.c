// SPDX-License-Identifier: MIT
/*
 * userfile_open: a file opened with another user's rights, on this thread
 * only.  Needs root (skipped otherwise): nobody (65534) is the user.
 * userfile_work_root: the root of a run's working copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "userfile.h"

#define NOBODY 65534

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* userfile_work_root: code/ when it is a folder, else the run's files. */
static void work_root(const char *dir)
{
	char run[256], path[512], buf[512];
	struct err e = { { 0 } };
	int fd, code = -1;

	snprintf(run, sizeof(run), "%s/run", dir);
	CHECK(userfile_work_root(run, buf, sizeof(buf), &e) == 0 &&
	      !strcmp(buf + strlen(run), "/files"),
	      "no files/: the files (the copy says what is missing)");
	snprintf(path, sizeof(path), "%s/files", run);
	mkdir(run, 0755);
	mkdir(path, 0755);
	CHECK(userfile_work_root(run, buf, sizeof(buf), &e) == 0 &&
	      !strcmp(buf, path), "no code: the files");
	snprintf(path, sizeof(path), "%s/files/code", run);
	put(path, "a script named code\n", 0644);
	CHECK(userfile_work_root(run, buf, sizeof(buf), &e) == 0,
	      "a file named code: the files");
	unlink(path);
	CHECK(symlink("/etc", path) == 0 &&
	      userfile_work_root(run, buf, sizeof(buf), &e) == 0,
	      "a symlink named code to a folder: the files");
	unlink(path);
	mkdir(path, 0755);
	CHECK(userfile_work_root(run, buf, sizeof(buf), &e) == 1 &&
	      !strcmp(buf, path), "a folder code/: code/ (%s)", buf);
	fd = userfile_work_root_open(run, &code);
	CHECK(fd >= 0 && code == 1, "… opened, and said to be code/");
	if (fd >= 0)
		close(fd);
	CHECK(userfile_work_root(run, buf, 8, &e) == -ENAMETOOLONG &&
	      e.msg[0], "a path too long: ENAMETOOLONG (%s)", e.msg);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/files", run);
	rmdir(path);
	rmdir(run);
}

int main(void)
{
	char dir[] = "/tmp/mlfs-userfile-XXXXXX", p[256], q[256];
	gid_t before[64], after[64];
	int nb, na, fd, rootfd;
	struct err e = { { 0 } };
	size_t len;
	char *buf;

	if (geteuid() != 0) {
		printf("ok 1 # SKIP needs root\n");
		return 0;
	}
	if (!mkdtemp(dir))
		return 2;
	chmod(dir, 0755);
	nb = getgroups(64, before);
	snprintf(p, sizeof(p), "%s/root-only", dir);
	put(p, "root secret\n", 0600);
	fd = userfile_open(NOBODY, NOBODY, "token_file", p, &e);
	CHECK(fd == -EACCES && strstr(e.msg, "cannot read it"),
	      "a root-only file as nobody: EACCES (%d: %s)", fd, e.msg);
	CHECK((uid_t)setfsuid(-1) == 0 && (gid_t)setfsgid(-1) == 0,
	      "the thread's fsuid and fsgid are root's again");
	na = getgroups(64, after);
	CHECK(na == nb && !memcmp(before, after, nb * sizeof(gid_t)),
	      "the thread's groups are its own again");
	CHECK(userfile_read(0, 0, "token_file", p, &buf, &len, &e) == 0 &&
	      len == 12 && !strcmp(buf, "root secret\n"), "root reads it");
	free(buf);

	/* a file nobody may read, reached through a magic link to an fd
	 * the daemon holds: refused though the mode would let nobody in */
	snprintf(q, sizeof(q), "%s/open", dir);
	put(q, "any\n", 0644);
	rootfd = open(p, O_RDONLY);
	snprintf(q, sizeof(q), "/proc/self/fd/%d", rootfd);
	fd = userfile_open(NOBODY, NOBODY, "token_file", q, &e);
	CHECK(fd == -EACCES, "/proc/self/fd/N of a root file: refused (%s)", e.msg);
	if (fd >= 0)
		close(fd);
	close(rootfd);
	snprintf(q, sizeof(q), "%s/open", dir);
	rootfd = open(q, O_RDONLY);
	snprintf(q, sizeof(q), "/proc/self/fd/%d", rootfd);
	fd = userfile_open(NOBODY, NOBODY, "token_file", q, &e);
	CHECK(fd == -EACCES, "/proc/self/fd/N even of a readable file (%s)", e.msg);
	if (fd >= 0)
		close(fd);
	close(rootfd);
	fd = userfile_open(NOBODY, NOBODY, "token_file", "/proc/self/status",
			   &e);
	CHECK(fd == -EACCES, "/proc/self/status: a kernel file (%s)", e.msg);
	fd = userfile_open(0, 0, "token_file", "/proc/self/status", &e);
	CHECK(fd == -EACCES, "… refused to root too (%s)", e.msg);

	snprintf(q, sizeof(q), "%s/fifo", dir);
	mkfifo(q, 0666);
	fd = userfile_open(NOBODY, NOBODY, "token_file", q, &e);
	CHECK(fd == -EINVAL, "a FIFO: EINVAL, not a hang (%s)", e.msg);
	fd = userfile_open(NOBODY, NOBODY, "token_file", "rel/path", &e);
	CHECK(fd == -EINVAL, "a relative path: EINVAL (%s)", e.msg);
	snprintf(q, sizeof(q), "%s/open", dir);
	CHECK(userfile_read(NOBODY, NOBODY, "token_file", q, &buf, &len,
			    &e) == 0 && !strcmp(buf, "any\n"),
	      "a file nobody may read is read");
	free(buf);
	CHECK(userfile_in_group(NOBODY, NOBODY, NOBODY) &&
	      !userfile_in_group(NOBODY, NOBODY, 0), "groups of nobody");

	work_root(dir);
	unlink(p);
	unlink(q);
	snprintf(q, sizeof(q), "%s/fifo", dir);
	unlink(q);
	rmdir(dir);
	return tap_done();
}
