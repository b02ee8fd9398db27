// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for after_parse: the bytes of a run's `after` file.
 * Invariants on success: at most AFTER_MAX runs, each a valid name, none
 * twice, `any` 0 or 1.  On refusal: -EINVAL and a printable one-line
 * sentence ending with a period.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_list(const struct after_list *l)
{
	struct err e;

	need(l->n >= 0 && l->n <= AFTER_MAX);
	for (int i = 0; i < l->n; i++) {
		need(!name_valid(l->deps[i].name, &e));
		need(l->deps[i].any == 0 || l->deps[i].any == 1);
		for (int j = 0; j < i; j++)
			need(strcmp(l->deps[i].name, l->deps[j].name));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct after_list *l = malloc(sizeof(*l));
	struct err e;
	int rc;

	need(l != NULL);
	memset(&e, 0, sizeof(e));
	rc = after_parse((const char *)data, size, l, &e);
	if (rc) {
		need(rc == -EINVAL);
		check_sentence(&e);
	} else {
		check_list(l);
	}
	free(l);
	return 0;
}
