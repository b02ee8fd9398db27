// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for ctl_split: the bytes of a write(2) to a ctl file.
 * Invariants on success: every command has 1..CTL_MAX_ARGS words, every
 * word is non-empty, shorter than CTL_WORD_MAX, free of blanks and control
 * bytes, and copied from the input; unused words are empty; the commands
 * are what a simple line-by-line reading of the input gives.  On refusal: -EINVAL and a
 * printable one-line sentence.  The output arrays are heap blocks of the
 * exact size, so that AddressSanitizer sees any write past @max.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CMDS	8

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Each non-blank, non-comment line, split at blanks the simple way, is
 * command @i; returns the number of commands.
 */
static int check_reference(const struct ctl_cmd *cmds, int n, const char *p,
			   size_t size)
{
	const char *end = p + size, *nl, *e, *w;
	int count = 0, argc;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		e = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		while (p < e && is_blank(*p))
			p++;
		if (p == e || *p == '#')
			continue;
		need(count < n);
		for (argc = 0; p < e; argc++) {
			for (w = p; p < e && !is_blank(*p); p++)
				;
			need(argc < cmds[count].argc);
			need(strlen(cmds[count].argv[argc]) == (size_t)(p - w) &&
			     !memcmp(cmds[count].argv[argc], w, p - w));
			while (p < e && is_blank(*p))
				p++;
		}
		need(argc == cmds[count].argc);
		count++;
	}
	return count;
}

static void check_cmd(const struct ctl_cmd *c, const uint8_t *data,
		      size_t size)
{
	size_t len, j;
	int i;

	need(c->argc >= 1 && c->argc <= CTL_MAX_ARGS);
	need(c->argv[0][0] != '#');
	for (i = 0; i < CTL_MAX_ARGS; i++) {
		len = strnlen(c->argv[i], CTL_WORD_MAX);
		need(len < CTL_WORD_MAX);
		if (i >= c->argc) {
			need(len == 0);
			continue;
		}
		need(len > 0);
		for (j = 0; j < len; j++) {
			unsigned char u = c->argv[i][j];

			need(!is_blank(u) && u >= 0x20 && u != 0x7f);
		}
		need(memmem(data, size, c->argv[i], len) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_cmd *cmds = malloc(MAX_CMDS * sizeof(*cmds));
	struct ctl_cmd *one = malloc(sizeof(*one));
	const char *buf = (const char *)data;
	struct err e;
	int rc, rc1, i;

	need(cmds && one);
	memset(&e, 0, sizeof(e));
	rc = ctl_split(buf, size, cmds, MAX_CMDS, &e);
	if (rc < 0) {
		need(rc == -EINVAL);
		check_sentence(&e);
	} else {
		need(rc <= MAX_CMDS);
		for (i = 0; i < rc; i++)
			check_cmd(&cmds[i], data, size);
		need(check_reference(cmds, rc, buf, size) == rc);
	}
	/* The same write with room for one command. */
	memset(&e, 0, sizeof(e));
	rc1 = ctl_split(buf, size, one, 1, &e);
	if (rc < 0 || rc > 1) {
		need(rc1 == -EINVAL);
		check_sentence(&e);
	} else {
		need(rc1 == rc);
		if (rc == 1)
			need(!memcmp(one, &cmds[0], sizeof(*one)));
	}
	free(one);
	free(cmds);
	return 0;
}
