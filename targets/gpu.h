/* SPDX-License-Identifier: MIT */
/* NVIDIA GPU detection through nvidia-smi (absent = no GPUs). */
#ifndef MLFS_GPU_H
#define MLFS_GPU_H

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

#endif
