// SPDX-License-Identifier: MIT
#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int no_openat2;		/* the kernel said ENOSYS once */

static int open_how(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned)flags | O_CLOEXEC,
		.mode = flags & (O_CREAT | O_TMPFILE) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Open folder @comp of @fd on the way, O_NOFOLLOW: a symlink there is
 * -ELOOP, as openat2 says. */
static int open_step(int fd, const char *comp)
{
	struct stat st;
	int nfd;

	nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (nfd >= 0)
		return nfd;
	nfd = -errno;
	if (nfd == -ENOTDIR && !fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISLNK(st.st_mode))
		nfd = -ELOOP;
	return nfd;
}

/* The same by hand: each folder opened O_NOFOLLOW, ".." refused. */
static int open_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX], *comp, *next;
	int fd = dirfd, nfd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (comp = buf; ; comp = next) {
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		if (!strcmp(comp, ".."))
			nfd = -EXDEV;
		else if (next)
			nfd = open_step(fd, *comp ? comp : ".");
		else if ((nfd = openat(fd, *comp ? comp : ".", flags |
				       O_NOFOLLOW | O_CLOEXEC, mode)) < 0)
			nfd = -errno;
		if (fd != dirfd)
			close(fd);
		if (nfd < 0 || !next)
			return nfd;
		fd = nfd;
	}
}

int beneath_open(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd;

	if (!*path)
		path = ".";
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		fd = open_how(dirfd, path, flags, mode);
		if (fd != -ENOSYS)
			return fd;
		__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
	}
	return open_walk(dirfd, path, flags, mode);
}
