// SPDX-License-Identifier: MIT
/*
 * mlfs-ranks - the launcher of a run with procs_per_node > 1 inside its
 * container (a run in an environment on the local target):
 *
 *   mlfs-ranks N COMMAND
 *
 * runs `/bin/sh -c COMMAND` N times with the rank variables, their lines
 * relayed to stdout with the rank in front: mlfs-ranks.c, as mlfs-run -n
 * does outside a container.  Linked statically, so that it runs in any
 * image (it is mounted in from the daemon's own folder, /mlfs/lib); the
 * image needs /bin/sh only, as for any run in it.  The environment is
 * the container's (podman's --env-file).
 */
#include <stdio.h>
#include <stdlib.h>

#include "mlfs-ranks.h"

extern char **environ;

static char **container_env(void)
{
	return environ;
}

int main(int argc, char **argv)
{
	char *end;
	long n = argc == 3 ? strtol(argv[1], &end, 10) : 0;

	if (argc != 3 || *end || n < 1 || n > 256) {
		fprintf(stderr, "usage: mlfs-ranks N COMMAND (N: 1 to 256)\n");
		return 2;
	}
	ranks_forward_signals();
	ranks_main((int)n, argv[2], container_env);
	return 127;	/* ranks_main never returns */
}
