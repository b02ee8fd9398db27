/* SPDX-License-Identifier: MIT */
/*
 * A local run in an environment (its `environment`, an image id fixed at
 * submit): the podman command its supervisor runs instead of the shell.
 */
#ifndef MLFS_LOCAL_IMAGE_H
#define MLFS_LOCAL_IMAGE_H

#include <stddef.h>

#include "../backend/driver.h"

/* Where the command and the environment go, in the run's folder. */
#define RUN_CT_ARGS	"container.args"
#define RUN_CT_ENV	"container.env"
/* Where mlfs-run mounts the read-only view of each input (NAME below). */
#define RUN_CT_INPUTS	"ct.inputs"
/* The launcher of procs_per_node > 1 in a container: a static program
 * beside mlfs-run, at /mlfs/lib (CT_LIB) inside. */
#define RUN_CT_RANKS	"mlfs-ranks"

/*
 * local_image_files - write RUN_CT_ARGS (podman run's argv, NUL after
 * each word) and RUN_CT_ENV (--env-file) for run @r whose working copy
 * is @work, with at most @pids processes.  The container: the run's
 * creator's uid and gid (--user; never the host's root), no capability,
 * no new privileges, the host's network, the working copy at /work,
 * $MLFS_METRICS and $MLFS_PARAMS at /mlfs, the mlfs module at /mlfs/lib
 * (read-only), resources as --memory, --cpus, --pids-limit; the inputs
 * read-only at /mlfs/inputs/NAME (mlfs-run makes their views), the run's
 * GPUs by CDI (-ENODEV with a sentence when the machine has no CDI spec
 * for them), an array's MLFS_ARRAY_* per task, mlfs-ranks for
 * procs_per_node > 1.  0 or -errno with a sentence.
 */
int local_image_files(struct run_ctx *r, const char *work, long pids,
		      struct err *e);

/* The container's name for run @r: mlfs-<state hash>-<id>. */
void local_image_name(const struct run_ctx *r, char *buf, size_t sz);

/* An --ulimit for resource @res (RLIMIT_NOFILE, RLIMIT_NPROC): below the
 * machine's hard limit (runc cannot raise it), at most 32768. */
unsigned long local_image_ulimit(int res);

#endif
