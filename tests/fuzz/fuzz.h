/* SPDX-License-Identifier: MIT */
/*
 * What every fuzz target checks: a broken promise aborts (libFuzzer
 * reports it with the input), and a refusal's error is one printable
 * line ending with a full stop -- the sentence a user reads in `error`.
 */
#ifndef MLFS_FUZZ_H
#define MLFS_FUZZ_H

#include "../../lib/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline void need(bool ok)
{
	if (!ok)
		abort();
}

static inline void check_sentence(const struct err *e)
{
	size_t n = strnlen(e->msg, sizeof(e->msg));

	need(n > 0 && n < sizeof(e->msg) && e->msg[n - 1] == '.');
	for (size_t i = 0; i < n; i++)
		need(e->msg[i] >= 0x20 && e->msg[i] <= 0x7e);
}

#endif
