// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for kv_parse and kv_check_keys: the bytes of a `config`
 * file.  Invariants on success: every key matches [a-z_][a-z0-9_]*, keys
 * are unique, kv_get finds each value, values have no control byte but
 * tab and no blank at either end, and the list is what a line-by-line
 * reference reading of the input gives, in order.  On refusal: -EINVAL (or -ENOMEM), an
 * empty list and a printable one-line sentence.
 */
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool key_ok(const char *k)
{
	size_t i;

	if (!((k[0] >= 'a' && k[0] <= 'z') || k[0] == '_'))
		return false;
	for (i = 1; k[i]; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

static bool value_ok(const char *v)
{
	size_t n = strlen(v), i;

	if (n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' ||
		  v[n - 1] == '\t'))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char u = v[i];

		if ((u < 0x20 && u != '\t') || u == 0x7f)
			return false;
	}
	return true;
}

static void check_list(const struct kv_list *l)
{
	int i, j;

	need(l->n >= 0 && (l->n == 0 || l->items));
	for (i = 0; i < l->n; i++) {
		need(key_ok(l->items[i].key));
		need(value_ok(l->items[i].value));
		need(kv_get(l, l->items[i].key) == l->items[i].value);
		for (j = 0; j < i && l->n < 2000; j++)
			need(strcmp(l->items[i].key, l->items[j].key));
	}
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Each non-blank, non-comment line, trimmed, is item @i's "key = value". */
static void check_reference(const struct kv_list *l, const char *p,
			    size_t size)
{
	const char *end = p + size, *nl, *s, *e, *eq, *ke, *vs;
	int i = 0;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		e = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		for (s = p; s < e && is_blank(*s); s++)
			;
		while (e > s && is_blank(e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		need(i < l->n);
		eq = memchr(s, '=', e - s);
		need(eq != NULL);
		for (ke = eq; ke > s && is_blank(ke[-1]); ke--)
			;
		for (vs = eq + 1; vs < e && is_blank(*vs); vs++)
			;
		need(strlen(l->items[i].key) == (size_t)(ke - s) &&
		     !memcmp(l->items[i].key, s, ke - s));
		need(strlen(l->items[i].value) == (size_t)(e - vs) &&
		     !memcmp(l->items[i].value, vs, e - vs));
		i++;
	}
	need(i == l->n);
}

static void check_keys(const struct kv_list *l)
{
	static const char *const allowed[] = { "entry", "port", "replicas",
					       NULL };
	struct err e;
	int i, rc, unknown = 0;

	for (i = 0; i < l->n; i++)
		unknown |= strcmp(l->items[i].key, "entry") &&
			   strcmp(l->items[i].key, "port") &&
			   strcmp(l->items[i].key, "replicas");
	memset(&e, 0, sizeof(e));
	rc = kv_check_keys(l, allowed, "local", &e);
	need(rc == (unknown ? -EINVAL : 0));
	if (rc) {
		check_sentence(&e);
		need(!strncmp(e.msg, "unknown config key '", 20));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_list l = { (struct kv *)1, -1 };
	struct err e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = kv_parse((const char *)data, size, &l, &e);
	if (rc) {
		need(rc == -EINVAL || rc == -ENOMEM);
		need(l.n == 0 && l.items == NULL);
		check_sentence(&e);
		return 0;
	}
	check_list(&l);
	check_reference(&l, (const char *)data, size);
	check_keys(&l);
	kv_free(&l);
	need(l.n == 0 && l.items == NULL);
	return 0;
}
