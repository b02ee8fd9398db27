/* SPDX-License-Identifier: MIT */
/*
 * What the parsers of parse.c and parse_num.c share: sentences quoting a
 * value, the key/value reader, and the ASCII character classes.  Pure;
 * any thread.
 */
#ifndef MLFS_PARSE_I_H
#define MLFS_PARSE_I_H

#include <stdbool.h>
#include <stddef.h>

#include "parse.h"

#define QUOTE_IN_MAX	48	/* bytes of a value shown before "..." */

/* A value made fit for a sentence: each byte may become \xNN. */
struct quote {
	char s[QUOTE_IN_MAX * 4 + sizeof("...")];
};

/* parse.c: @s (NULL: "") quoted for a sentence, in @q. */
const char *quote_str(struct quote *q, const char *s);
/* parse.c: kv_parse, with @what ("config", "resources") in sentences. */
int kv_parse_as(const char *buf, size_t len, struct kv_list *out,
		const char *what, struct err *e);
/* parse.c: the NULL-terminated @allowed keys, comma-separated, in @buf. */
const char *join_keys(const char *const *allowed, char *buf,
		      size_t sz);

/* Locale-independent classes: the grammar is ASCII whatever the locale. */
static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static inline bool is_alpha(char c)
{
	return is_lower(c) || (c >= 'A' && c <= 'Z');
}

static inline bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static inline bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

#endif
