// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for inputs_parse: the bytes of a run's `inputs` file.
 * Invariants on success: at most INPUTS_MAX inputs, each name of the
 * environment's alphabet and unique; a path is absolute (INPUT_PATH), or
 * a valid run / model and version with a SUB without control bytes,
 * never a `..` part and never starting with '/'.  On refusal: -EINVAL
 * and a printable one-line sentence ending with a period.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9') || strlen(s) > INPUT_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool no_dotdot(const char *s)
{
	const char *p;

	for (p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/') && (!p[2] || p[2] == '/'))
			return false;
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return false;
	return true;
}

static void check_one(const struct input *in)
{
	struct err e;

	need(env_name(in->name));
	need(printable(in->path));
	if (in->kind == INPUT_PATH) {
		need(in->path[0] == '/');
		return;
	}
	need(in->kind == INPUT_RUN || in->kind == INPUT_MODEL);
	need(!name_valid(in->obj, &e));
	need(in->kind == INPUT_RUN || !name_valid(in->ver, &e));
	need(in->path[0] != '/' && no_dotdot(in->path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input_list *l = malloc(sizeof(*l));
	struct err e;
	int rc;

	need(l != NULL);
	memset(&e, 0, sizeof(e));
	rc = inputs_parse((const char *)data, size, l, &e);
	if (rc) {
		need(rc == -EINVAL);
		check_sentence(&e);
	} else {
		need(l->n >= 0 && l->n <= INPUTS_MAX);
		for (int i = 0; i < l->n; i++) {
			check_one(&l->in[i]);
			for (int j = 0; j < i; j++)
				need(strcmp(l->in[i].name, l->in[j].name));
		}
	}
	free(l);
	return 0;
}
