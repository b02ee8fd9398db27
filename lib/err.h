/* SPDX-License-Identifier: MIT */
/*
 * The error of every layer: a negative errno returned, and one human
 * sentence (no trailing newline) in a struct err the caller gave.  Any
 * thread; no globals.
 */
#ifndef MLFS_ERR_H
#define MLFS_ERR_H

#define ERR_MSG_MAX	512

struct err {
	char msg[ERR_MSG_MAX];
};

/* Fill @e with a printf-style sentence and return @rc (a negative errno). */
int err_set(struct err *e, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
