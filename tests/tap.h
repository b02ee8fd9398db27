/* SPDX-License-Identifier: MIT */
/* A tiny TAP-style checker for the unit tests. */
#ifndef MLFS_TAP_H
#define MLFS_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define CHECK(cond, ...) do {						\
	tap_n++;							\
	if (cond) {							\
		printf("ok %d - ", tap_n);				\
	} else {							\
		tap_failed++;						\
		printf("not ok %d - (%s:%d) ", tap_n, __FILE__, __LINE__); \
	}								\
	printf(__VA_ARGS__);						\
	printf("\n");							\
} while (0)

static inline int tap_done(void)
{
	printf("%d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
