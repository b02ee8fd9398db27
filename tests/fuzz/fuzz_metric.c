// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for metric_parse_line: a line a run appended to
 * $MLFS_METRICS, as a NUL-terminated string.  Invariants: the result is
 * -EINVAL, 0 or 1; on success the name is 1..128 bytes of
 * [A-Za-z0-9_.:/-], the value is finite and a step is non-negative; with
 * a small name buffer (a heap block of the exact size) the name still
 * fits and the result agrees with the large buffer's; a parsed line
 * printed back with %.17g parses to the same name, value and step.
 */
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL	8

static bool name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > 128)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.:/-", s[i])))
			return false;
	return true;
}

static void round_trip(const char *name, double v, long long step, int rc)
{
	char line[300], n2[129];
	double v2 = 0;
	long long step2 = -1;

	if (rc)
		snprintf(line, sizeof(line), "%s %.17g %lld", name, v, step);
	else
		snprintf(line, sizeof(line), "%s %.17g", name, v);
	need(metric_parse_line(line, n2, sizeof(n2), &v2, &step2) == rc);
	need(!strcmp(n2, name) && !memcmp(&v2, &v, sizeof(v)) &&
	     step2 == step);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *small = malloc(SMALL);
	char name[129];
	double v = 0, v2 = 0;
	long long step = -1, step2 = -1;
	int rc, rc2;

	need(s && small);
	memcpy(s, data, size);
	s[size] = '\0';
	rc = metric_parse_line(s, name, sizeof(name), &v, &step);
	need(rc == -EINVAL || rc == 0 || rc == 1);
	if (rc >= 0) {
		need(name_ok(name));
		need(isfinite(v));
		need(rc == 0 ? step == -1 : step >= 0);
		round_trip(name, v, step, rc);
	}
	rc2 = metric_parse_line(s, small, SMALL, &v2, &step2);
	if (rc >= 0 && strlen(name) < SMALL) {
		need(rc2 == rc && !strcmp(small, name) && v2 == v &&
		     step2 == step);
	} else {
		need(rc2 == -EINVAL);
	}
	free(small);
	free(s);
	return 0;
}
