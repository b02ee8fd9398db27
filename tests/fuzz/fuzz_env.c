// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for env_parse: the bytes of a run's `env` file.
 * Invariants on success: every name matches [A-Za-z_][A-Za-z0-9_]* and
 * does not start with MLFS_, names are unique, each "NAME=value" appears
 * verbatim in the input, and the list is what a line-by-line reference
 * reading of the input gives, in order.  On refusal: -EINVAL (or -ENOMEM), an
 * empty list and a printable one-line sentence.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_ok(const char *k)
{
	size_t i;

	if (!is_alpha_(k[0]) || !strncmp(k, "MLFS_", 5))
		return false;
	for (i = 1; k[i]; i++)
		if (!is_alpha_(k[i]) && !(k[i] >= '0' && k[i] <= '9'))
			return false;
	return true;
}

/* "NAME=value" is in the input. */
static bool in_input(const struct kv *kv, const uint8_t *data, size_t size)
{
	size_t kn = strlen(kv->key), vn = strlen(kv->value);
	char *line = malloc(kn + vn + 2);
	bool found;

	need(line != NULL);
	memcpy(line, kv->key, kn);
	line[kn] = '=';
	memcpy(line + kn + 1, kv->value, vn + 1);
	found = memmem(data, size, line, kn + vn + 1) != NULL;
	free(line);
	return found;
}

/* Each non-blank, non-comment line is item @i's NAME=value. */
static void check_reference(const struct kv_list *l, const char *p,
			    size_t size)
{
	const char *end = p + size, *nl, *s, *e, *eq;
	int i = 0;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		e = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		for (s = p; s < e && (*s == ' ' || *s == '\t'); s++)
			;
		if (s == e || *s == '#')
			continue;
		need(i < l->n);
		eq = memchr(s, '=', e - s);
		need(eq != NULL);
		need(strlen(l->items[i].key) == (size_t)(eq - s) &&
		     !memcmp(l->items[i].key, s, eq - s));
		need(strlen(l->items[i].value) == (size_t)(e - eq - 1) &&
		     !memcmp(l->items[i].value, eq + 1, e - eq - 1));
		i++;
	}
	need(i == l->n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_list l = { (struct kv *)1, -1 };
	struct err e;
	int rc, i, j;

	memset(&e, 0, sizeof(e));
	rc = env_parse((const char *)data, size, &l, &e);
	if (rc) {
		need(rc == -EINVAL || rc == -ENOMEM);
		need(l.n == 0 && l.items == NULL);
		check_sentence(&e);
		return 0;
	}
	need(l.n >= 0);
	for (i = 0; i < l.n; i++) {
		need(name_ok(l.items[i].key));
		need(!strchr(l.items[i].value, '\n'));
		need(in_input(&l.items[i], data, size));
		need(kv_get(&l, l.items[i].key) == l.items[i].value);
		for (j = 0; j < i && l.n < 2000; j++)
			need(strcmp(l.items[i].key, l.items[j].key));
	}
	check_reference(&l, (const char *)data, size);
	kv_free(&l);
	return 0;
}
