// SPDX-License-Identifier: MIT
/* The clocks, see clock.h.  Any thread. */
#include "clock.h"

#include <time.h>

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double wall_s(void)
{
	return clock_s(CLOCK_REALTIME);
}

double mono_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	nanosleep(&ts, NULL);
}
