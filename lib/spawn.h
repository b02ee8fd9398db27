/* SPDX-License-Identifier: MIT */
/*
 * A program started from the (multithreaded) daemon so that it outlives
 * it: posix_spawn, a session of its own, no signal blocked.  Any thread.
 */
#ifndef MLFS_SPAWN_H
#define MLFS_SPAWN_H

#include <sys/types.h>

#include "err.h"

/*
 * spawn_session - start @argv (argv[0] an absolute path) with exactly
 * @env, stdin /dev/null, stdout appended to @out and stderr to @errout
 * (NULL: with stdout), each opened 0600 without following a link.
 * Its pid, or -errno with a sentence.
 */
pid_t spawn_session(char *const argv[], char *const env[], const char *out,
		    const char *errout, struct err *e);

#endif
