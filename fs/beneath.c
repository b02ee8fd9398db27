// SPDX-License-Identifier: MIT
#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
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
			nfd = openat(fd, *comp ? comp : ".", O_PATH | O_DIRECTORY |
				     O_NOFOLLOW | O_CLOEXEC);
		else
			nfd = openat(fd, *comp ? comp : ".", flags | O_NOFOLLOW |
				     O_CLOEXEC, mode);
		if (nfd < 0 && nfd != -EXDEV)
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
