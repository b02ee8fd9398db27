// SPDX-License-Identifier: MIT
/*
 * Opening a file a user named, with that user's rights; and finding the
 * folder a run's working copy is made of (code/ or all its files).
 *
 * The calling thread (and only it: credentials are per thread in Linux,
 * which is why setgroups is the raw syscall, not glibc's process-wide one)
 * takes the user's fsuid, fsgid and groups for the one open(), then its own
 * back.  A fsuid other than 0 drops CAP_DAC_OVERRIDE and its kin, so the
 * kernel checks every path component as it would for the user.  Magic links
 * (/proc/self/fd/N would reach the daemon's own files: a thread of the same
 * process passes ptrace checks) and /proc or /sys files are refused.
 */
#include "userfile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/fscreds.h"
#include "driver.h"

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#define GROUPS_MAX	256

int userfile_in_group(uid_t uid, gid_t gid, gid_t grp)
{
	gid_t groups[GROUPS_MAX];
	int n;

	if (grp == gid)
		return 1;
	n = fscreds_user_groups(uid, gid, groups, GROUPS_MAX);
	for (int i = 0; i < n; i++)
		if (groups[i] == grp)
			return 1;
	return 0;
}

static int open_plain(const char *path)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	long fd;
#ifdef SYS_openat2
	struct open_how how = { .flags = flags,
				.resolve = RESOLVE_NO_MAGICLINKS };

	fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd < 0 ? -errno : (int)fd;
#endif
	fd = open(path, flags);
	return fd < 0 ? -errno : (int)fd;
}

/* open() with the user's fsuid, fsgid and groups; the thread's own after. */
static int open_as(uid_t uid, gid_t gid, const gid_t *groups, int n,
		   const char *path)
{
	struct fscreds s;
	int fd;

	fd = fscreds_wear(&s, uid, gid, n, groups);
	if (!fd)
		fd = open_plain(path);
	fscreds_restore(&s);
	return fd;
}

/* Regular files only, and none of the kernel's: /proc/self/... would be
 * the daemon's own. */
static int plain_file(int fd)
{
	struct statfs sfs;
	struct stat st;

	if (fstat(fd, &st) || fstatfs(fd, &sfs))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC)
		return -EACCES;
	return 0;
}

int userfile_open(uid_t uid, gid_t gid, const char *key, const char *path,
		  struct err *e)
{
	gid_t groups[GROUPS_MAX];
	int n, fd, rc;

	if (path[0] != '/')
		return err_set(e, -EINVAL, "%s %s is not an absolute path",
			       key, path);
	if (geteuid() != 0 || uid == 0) {
		fd = open_plain(path);
	} else {
		n = fscreds_user_groups(uid, gid, groups, GROUPS_MAX);
		fd = n < 0 ? -ENOMEM : open_as(uid, gid, groups, n, path);
	}
	if (fd == -EACCES || fd == -EPERM)
		return err_set(e, -EACCES, "%s %s: the target's creator (uid %u)"
			       " cannot read it", key, path, (unsigned)uid);
	if (fd == -ELOOP)	/* RESOLVE_NO_MAGICLINKS (or a loop) */
		return err_set(e, -EACCES, "%s %s: a link into /proc (or a"
			       " loop of links) is never followed for a"
			       " setting", key, path);
	if (fd < 0)
		return err_set(e, fd, "%s %s cannot be read: %s", key, path,
			       strerror(-fd));
	rc = plain_file(fd);
	if (rc) {
		close(fd);
		return err_set(e, rc == -EINVAL ? -EINVAL : -EACCES,
			       "%s %s: %s", key, path, rc == -EINVAL ?
			       "not a regular file" : "a file of the kernel's"
			       " (/proc, /sys) is never read for a setting");
	}
	return fd;
}

int userfile_read(uid_t uid, gid_t gid, const char *key, const char *path,
		  char **buf, size_t *len, struct err *e)
{
	size_t got = 0;
	ssize_t n;
	char *b;
	int fd;

	fd = userfile_open(uid, gid, key, path, e);
	if (fd < 0)
		return fd;
	b = malloc(USERFILE_MAX + 1);
	if (!b) {
		close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	while (got < USERFILE_MAX &&
	       (n = read(fd, b + got, USERFILE_MAX - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			free(b);
			return err_set(e, (int)n, "%s %s cannot be read: %s",
				       key, path, strerror((int)-n));
		}
		got += n;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

/* ---- the root of a run's working copy ------------------------------------ */


#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

int userfile_work_root_open(const char *dir, int *code)
{
	char files[PATH_MAX];
	struct stat st;
	int d, c;

	*code = 0;
	if (snprintf(files, sizeof(files), "%s/%s", dir, RUN_FILES) >=
	    (int)sizeof(files))
		return -ENAMETOOLONG;
	d = open(files, DIR_FLAGS);
	if (d < 0)
		return -errno;
	/* only a folder, and not through a symlink: anything else named
	 * code is one of the project's files */
	if (fstatat(d, USERFILE_CODE, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISDIR(st.st_mode))
		return d;
	c = openat(d, USERFILE_CODE, DIR_FLAGS);
	close(d);
	if (c < 0)
		return -errno;
	*code = 1;
	return c;
}

int userfile_work_root(const char *dir, char *buf, size_t n, struct err *e)
{
	int fd, code, len;

	fd = userfile_work_root_open(dir, &code);
	if (fd >= 0)
		close(fd);
	else if (fd != -ENOENT)
		return err_set(e, fd, "cannot open the run's files: %s",
			       strerror(-fd));
	len = snprintf(buf, n, "%s/%s%s", dir, RUN_FILES,
		       code ? "/" USERFILE_CODE : "");
	if (len < 0 || (size_t)len >= n)
		return err_set(e, -ENAMETOOLONG, "the path of the run's files"
			       " is too long");
	return code;
}
