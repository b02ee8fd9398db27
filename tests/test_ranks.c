// SPDX-License-Identifier: MIT
/* Unit test of the GPU split of procs_per_node runs (targets/mlfs-ranks.c). */
#include <string.h>

#include "../targets/mlfs-ranks.h"
#include "tap.h"

static const char *share(const char *all, int rank, int n)
{
	static char out[64];

	ranks_gpus(all, rank, n, out, sizeof(out));
	return out;
}

int main(void)
{
	CHECK(!strcmp(share("0,1,2,3", 0, 2), "0,1"), "4 GPUs, 2 procs: 0,1");
	CHECK(!strcmp(share("0,1,2,3", 1, 2), "2,3"), "4 GPUs, 2 procs: 2,3");
	CHECK(!strcmp(share("0,1,2,3", 3, 4), "3"), "one each: the last");
	CHECK(!strcmp(share("5,7,9", 1, 3), "7"), "the devices' own numbers");
	CHECK(!strcmp(share("0,1,2,3,4,5", 2, 3), "4,5"), "6 GPUs, 3 procs");
	CHECK(!strcmp(share("0,1,2", 1, 2), "1"),
	      "uneven: equal shares, one left");
	CHECK(!strcmp(share("0", 1, 2), "0"), "fewer GPUs than procs: shared");
	CHECK(!strcmp(share("", 1, 4), ""), "none: stays empty (hidden)");
	CHECK(!strcmp(share("0,1", 5, 2), "0,1"), "a rank out of range: all");
	CHECK(!strcmp(share("GPU-aa,GPU-bb", 1, 2), "GPU-bb"), "UUIDs");
	return tap_done();
}
