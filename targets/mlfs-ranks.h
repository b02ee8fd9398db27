/* SPDX-License-Identifier: MIT */
/*
 * The launcher of a run with several processes on one node (resources
 * `procs_per_node = N`), part of mlfs-run: libc only.
 */
#ifndef MLFS_RANKS_H
#define MLFS_RANKS_H

#include <stddef.h>

/* Builds the command's environment in a rank's process (after setenv). */
typedef char **(*ranks_env_fn)(void);

/*
 * ranks_main - run `/bin/sh -c @cmd` @n times and exit with the run's code.
 * Called in the run's child: the process group leader, already the run's
 * user, in the working directory, stdout and stderr on the log.  Each
 * process gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, NODE_RANK,
 * MLFS_NODE_RANK, MLFS_NUM_NODES, MASTER_ADDR (127.0.0.1), MASTER_PORT
 * (a free port) and its share of CUDA_VISIBLE_DEVICES; each line it
 * prints reaches the log as "RANK: line".  The exit code is the first
 * non-zero one (128 + signal when killed); when one process fails the
 * others get TERM, then KILL 10 s later.  Never returns.
 */
void ranks_main(int n, const char *cmd, ranks_env_fn env);

/*
 * ranks_set_node - before ranks_main, for a run of several nodes (each
 * runs ranks_main with the same N): this node is @node of @nodes, rank 0
 * listens at @addr, port @port (0: a free one here, one node only).  RANK
 * is then @node * N + the local rank, WORLD_SIZE @nodes * N, NODE_RANK
 * and MLFS_NODE_RANK @node, MLFS_NUM_NODES @nodes; the log's prefix is
 * RANK.  @addr is kept, not copied.
 */
void ranks_set_node(int node, int nodes, const char *addr, int port);

/*
 * ranks_forward_signals - before ranks_main, in a container: each rank
 * in a process group of its own, and TERM, INT, HUP that reach the
 * leader passed on to every rank (catatonit, the container's init,
 * passes a signal to its child only; nothing signals the group).
 */
void ranks_forward_signals(void);

/*
 * ranks_gpus - the share of the devices in @all ("0,1,2,3") of the
 * process @local_rank out of @n, into @out: consecutive, all shares
 * equal.  With fewer devices than processes (none, or an empty list)
 * @all is copied whole: they share.  Pure, for the unit test.
 */
void ranks_gpus(const char *all, int local_rank, int n, char *out,
		size_t out_sz);

#endif
