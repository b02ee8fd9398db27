/* SPDX-License-Identifier: MIT */
/*
 * Paths below a folder that a user can change.  A user reaches the
 * backing folders of their objects in the state dir and can put a symlink
 * anywhere in them, at any moment; so a backing path is never given to a
 * path system call.  It is resolved below a folder fd without following
 * any symlink, and what it names is then used through that fd.
 */
#ifndef MLFS_BENEATH_H
#define MLFS_BENEATH_H

#include <sys/types.h>

/*
 * beneath_open - open @path ("a/b/c"; "" is @dirfd itself) below folder
 * @dirfd with @flags and @mode, following no symlink and never leaving
 * @dirfd: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or, on a kernel
 * without it, one O_NOFOLLOW component at a time.  Returns the fd, or
 * -ELOOP (a symlink on the way), -ENOTDIR, -ENOENT, -EACCES … as the
 * kernel says.
 */
int beneath_open(int dirfd, const char *path, int flags, mode_t mode);

#endif
