// SPDX-License-Identifier: MIT
/* spawn_session, see spawn.h. */
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>

#define OUT_FLAGS	(O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW)

pid_t spawn_session(char *const argv[], char *const env[], const char *out,
		    const char *errout, struct err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int rc;

	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, OUT_FLAGS, 0600);
	if (errout)
		posix_spawn_file_actions_addopen(&fa, 2, errout, OUT_FLAGS,
						 0600);
	else
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
				 POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc)
		return err_set(e, -rc, "cannot start %s: %s", argv[0],
			       strerror(rc));
	return pid;
}
