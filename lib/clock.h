/* SPDX-License-Identifier: MIT */
/*
 * The clocks, in seconds as doubles: wall time for what users see
 * (events, info.json, ages), the monotonic clock for deadlines and
 * intervals (it never jumps when the wall clock is set).  Any thread.
 */
#ifndef MLFS_CLOCK_H
#define MLFS_CLOCK_H

/* Seconds since the epoch (CLOCK_REALTIME). */
double wall_s(void);

/* Seconds on CLOCK_MONOTONIC: only differences between two calls mean
 * anything. */
double mono_s(void);

/* Sleep about @ms milliseconds (>= 0); a signal may cut it short. */
void nap_ms(long ms);

#endif
