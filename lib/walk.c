// SPDX-License-Identifier: MIT
/* The entries of one open folder (walk.h). */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* A dup of @dir rather than a new open of ".": it needs no right the
 * caller may have lost since it opened @dir (a worker wearing a user's
 * credentials reads a folder the daemon opened). */
static int reopen(int dir)
{
	int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

int dir_each(int dir, int depth, dir_each_fn fn, void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (depth > WALK_DEPTH_MAX)
		return -ELOOP;
	fd = reopen(dir);
	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rewinddir(d);	/* the dup shares @dir's offset: from the start */
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = fn(dir, de->d_name, arg);
	}
	closedir(d);
	return rc;
}
