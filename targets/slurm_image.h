/* SPDX-License-Identifier: MIT */
/*
 * slurm_image.h — a run in an environment on a Slurm (or managed cluster)
 * target: the image staged for the nodes, the files the container needs
 * in the run's folder, and the batch script that loads the image into the
 * node's podman when it lacks it and runs the container there (the same
 * `podman run` as on the local and ssh targets, container.h).  Worker
 * thread only.
 */
#ifndef MLFS_SLURM_IMAGE_H
#define MLFS_SLURM_IMAGE_H

#include <stddef.h>

#include "../backend/driver.h"

/* In the run's folder: the sentence a job that could not start its
 * container leaves (the daemon made it empty, the job user's, 0600). */
#define RUN_CT_ERROR	"container.error"

/*
 * sl_image_prepare - for run @r (r->image set) whose working copy @work is
 * made: stage the image for the nodes (podman save into the target's
 * image cache on the shared file system, once per image and job user),
 * write the container's env file and the empty error file, make the
 * metrics and params files (and an array's tasks/I/log) and give the
 * working copy to the user the command runs as inside; @script gets the
 * batch script (malloc'd): the container on the node Slurm picked, or one
 * on each node (nodes > 1, by srun), the ranks inside by mlfs-ranks, the
 * inputs read-only, the GPUs by CDI.
 * 0, or -errno with a sentence (the run cannot be submitted).
 */
int sl_image_prepare(struct target_ctx *t, struct run_ctx *r,
		     const char *work, char **script, struct err *e);

/*
 * sl_image_failed - the sentence the job of @r left when it could not
 * run its container (no podman on the node, an image that does not
 * load), into @buf: 1, or 0 when it left none.
 */
int sl_image_failed(const struct run_ctx *r, char *buf, size_t len);

#endif
