/* SPDX-License-Identifier: MIT */
/* NVIDIA GPU detection through nvidia-smi (absent = no GPUs). */
#ifndef MLFS_GPU_H
#define MLFS_GPU_H

#include <stddef.h>
#include <stdint.h>

struct gpu_info {
	int index;
	char name[96];
	long memory_mib;
};

/*
 * gpu_detect - run `nvidia-smi --query-gpu=index,name,memory.total
 * --format=csv,noheader,nounits` (PATH lookup, 10 s timeout) and fill at
 * most @max entries.  Returns the number of GPUs; 0 when nvidia-smi is
 * missing, fails or times out.
 */
int gpu_detect(struct gpu_info *gpus, int max);

/* Parse nvidia-smi's CSV output (pure; exposed for tests). */
int gpu_parse(const char *csv, struct gpu_info *gpus, int max);

/* ---- handing GPUs out to runs (a target's worker thread only) ----------- */

#define GPU_MAX 64

struct gpu_pool {
	int n;				/* GPUs the target has */
	int64_t busy[GPU_MAX];		/* run holding each GPU, 0 when free */
};

int gpu_pool_free(const struct gpu_pool *p);
/* Give run @id @want free GPUs; their indices go to @list ("0,2"). */
void gpu_pool_take(struct gpu_pool *p, int64_t id, long want, char *list,
		   size_t sz);
/* Mark the GPUs in @list as held by @id again (after a restart). */
void gpu_pool_retake(struct gpu_pool *p, int64_t id, const char *list);
void gpu_pool_put(struct gpu_pool *p, int64_t id);

/* The GPU count of a target's `nodes` text: the 5th column of its first
 * line ("name state cpus memory gpus"), 0 when absent. */
long nodes_gpus(const char *nodes);

struct resources;
struct err;
/*
 * check_one_node - can a one-node target (@what: "a local target", "an
 * ssh target") whose `nodes` text is @nodes ever run @res?  0, or -EINVAL
 * with a sentence (more than one node, more GPUs than it has).
 */
int check_one_node(const struct resources *res, const char *nodes,
		   const char *what, struct err *e);

#endif
