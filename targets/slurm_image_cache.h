/* SPDX-License-Identifier: MIT */
/*
 * slurm_image_cache.h — pruning of a Slurm (or managed cluster) target's
 * image cache, the `podman save` files slurm_image.c stages for the nodes
 * (<id>-<job uid>.tar).  A file goes once its image is no environment's
 * and no unfinished run's; above the target's `image_cache_mb` the least
 * recently used files that no unfinished run needs go too.  This header
 * is the pure part, the config's key (slurm_config.c, cluster_config.c);
 * the worker's calls are declared in slurm_i.h.
 */
#ifndef MLFS_SLURM_IMAGE_CACHE_H
#define MLFS_SLURM_IMAGE_CACHE_H

#include <stddef.h>

#include "../backend/driver.h"

#define SL_CACHE_KEY		"image_cache_mb"
#define SL_CACHE_MB_DEFAULT	10240L		/* 10 GiB */
#define SL_CACHE_MB_MAX		16777216L	/* 16 TiB */

/*
 * sl_cache_mb - the target's bound on its image cache, `image_cache_mb`
 * of @kv, into @mb (MiB; SL_CACHE_MB_DEFAULT when unset; 0: keep only
 * what unfinished runs use).  Pure.  0 or -EINVAL with a sentence.
 */
static inline int sl_cache_mb(const struct kv_list *kv, long *mb,
			      struct err *e)
{
	const char *v = kv_get(kv, SL_CACHE_KEY);

	*mb = SL_CACHE_MB_DEFAULT;
	if (!v || !*v)
		return 0;
	return parse_int(v, 0, SL_CACHE_MB_MAX, mb, SL_CACHE_KEY " (the"
			 " bound of the image cache, in MiB)", e);
}

#endif
