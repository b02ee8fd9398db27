/* SPDX-License-Identifier: MIT */
/* The FUSE layer: path → node, the low-level ops table, invalidation. */
#ifndef MLFS_FS_H
#define MLFS_FS_H

#include "fuse_version.h"

struct ws;

struct mlfs_opts {
	double timeout;		/* kernel cache timeout for generated nodes */
	int shared;		/* -o allow_other: top folders are 1777 */
};

/* The ops table and the context it needs. */
extern const struct fuse_lowlevel_ops mlfs_ops;

struct mlfs *mlfs_new(struct ws *ws, const struct mlfs_opts *o);
/* Once mounted on @mountpoint: install the invalidation hooks in @ws. */
void mlfs_attach(struct mlfs *m, struct fuse_session *se,
		 const char *mountpoint);
/* When the session loop has ended, before the session is unmounted: no
 * notification reaches the kernel any more (pending ones are dropped). */
void mlfs_quiesce(struct mlfs *m);
void mlfs_free(struct mlfs *m);

#endif
