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
 *
 * A run of several nodes (a Slurm target: one container per node) says
 * which node this is by MLFS_RANKS_NODE, MLFS_RANKS_NODES, MLFS_RANKS_ADDR
 * (rank 0's address) and MLFS_RANKS_PORT (podman's --env: theirs, not the
 * run's env lines), read here and removed before the ranks start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlfs-ranks.h"

extern char **environ;

static char **container_env(void)
{
	return environ;
}

/* The variable @name as a number in [@lo, @hi], or -1. */
static long num_env(const char *name, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return -1;
	n = strtol(v, &end, 10);
	return *end || n < lo || n > hi ? -1 : n;
}

/* The node's place among several (all four variables), or 0 with none;
 * -1 when they are there but wrong. */
static int node_env(void)
{
	static char addr[256];
	const char *a = getenv("MLFS_RANKS_ADDR");
	long nodes = num_env("MLFS_RANKS_NODES", 1, 1L << 20);
	long node = num_env("MLFS_RANKS_NODE", 0, (1L << 20) - 1);
	long port = num_env("MLFS_RANKS_PORT", 1, 65535);

	if (!getenv("MLFS_RANKS_NODES"))
		return 0;
	if (nodes < 0 || node < 0 || node >= nodes || port < 0 || !a ||
	    !*a || strlen(a) >= sizeof(addr))
		return -1;
	snprintf(addr, sizeof(addr), "%s", a);
	ranks_set_node((int)node, (int)nodes, addr, (int)port);
	unsetenv("MLFS_RANKS_NODE");
	unsetenv("MLFS_RANKS_NODES");
	unsetenv("MLFS_RANKS_ADDR");
	unsetenv("MLFS_RANKS_PORT");
	return 0;
}

int main(int argc, char **argv)
{
	char *end;
	long n = argc == 3 ? strtol(argv[1], &end, 10) : 0;

	if (argc != 3 || *end || n < 1 || n > 256) {
		fprintf(stderr, "usage: mlfs-ranks N COMMAND (N: 1 to 256)\n");
		return 2;
	}
	if (node_env()) {
		fprintf(stderr, "mlfs-ranks: MLFS_RANKS_NODE, _NODES, _ADDR"
			" and _PORT do not say a node of the run\n");
		return 2;
	}
	ranks_forward_signals();
	ranks_main((int)n, argv[2], container_env);
	return 127;	/* ranks_main never returns */
}
