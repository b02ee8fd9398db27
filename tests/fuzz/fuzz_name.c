// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for object names and one-value files: name_valid on
 * the input as a NUL-terminated string, against an independent reading of
 * [A-Za-z0-9][A-Za-z0-9._-]{0,62}; and first_word on the raw bytes (the
 * `target` and `type` files).  Invariants: name_valid accepts exactly the
 * grammar; a first_word result fits, has no blank or control byte and
 * comes from the input; printable one-line sentences.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OUT_SZ	(MLFS_NAME_MAX + 1)

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool grammar(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > 63 || !alnum(s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static void fuzz_name(const char *s)
{
	struct err e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = name_valid(s, &e);
	need(rc == 0 || rc == -EINVAL);
	need((rc == 0) == grammar(s));
	if (rc)
		check_sentence(&e);
}

static void fuzz_first_word(const uint8_t *data, size_t size)
{
	char *out = malloc(OUT_SZ);	/* exact size: ASan sees overflows */
	struct err e;
	size_t n, i;
	int rc;

	need(out != NULL);
	memset(&e, 0, sizeof(e));
	rc = first_word((const char *)data, size, out, OUT_SZ, &e);
	if (rc) {
		need(rc == -EINVAL && out[0] == '\0');
		check_sentence(&e);
		free(out);
		return;
	}
	n = strnlen(out, OUT_SZ);
	need(n < OUT_SZ);
	for (i = 0; i < n; i++)
		need((unsigned char)out[i] > ' ' && out[i] != 0x7f);
	need(!n || memmem(data, size, out, n));
	if (n)
		fuzz_name(out);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	need(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_name(s);
	fuzz_first_word(data, size);
	free(s);
	return 0;
}
