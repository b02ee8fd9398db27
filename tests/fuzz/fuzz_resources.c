// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the `resources` file and the value parsers under
 * it: resources_parse on the raw bytes, then parse_int, parse_mem_mib and
 * parse_duration on the input as one NUL-terminated string.
 * Invariants: results inside their documented ranges; *out untouched on
 * refusal; parse_int agrees with strtol; parse_mem_mib agrees with a
 * floating-point reckoning to within 1 MiB; parse_duration agrees with a
 * simple reckoning of the unit forms; printable one-line sentences.
 */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_MAX		(UINT64_MAX >> 20)
#define TIME_MAX	(3650ull * 86400)

static void need(bool ok)
{
	if (!ok)
		abort();
}

static void check_sentence(const struct err *e)
{
	size_t n = strnlen(e->msg, sizeof(e->msg)), i;

	need(n > 0 && n < sizeof(e->msg) && e->msg[n - 1] == '.');
	for (i = 0; i < n; i++)
		need(e->msg[i] >= 0x20 && e->msg[i] <= 0x7e);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	static const struct resources sentinel = { -7, -7, -7, 7, 7 };
	struct resources r = sentinel;
	struct err e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = resources_parse((const char *)data, size, &r, &e);
	if (rc) {
		need(rc == -EINVAL || rc == -ENOMEM);
		need(!memcmp(&r, &sentinel, sizeof(r)));
		check_sentence(&e);
		return;
	}
	need(r.nodes >= 1 && r.nodes <= 1024);
	need(r.cpus >= 1 && r.cpus <= 4096);
	need(r.gpus >= 0 && r.gpus <= 64);
	need(r.memory_mib <= MEM_MAX);
	need(r.time_secs <= TIME_MAX);
}

static void fuzz_int(const char *s)
{
	struct err e;
	long v = 12345, ref;
	char *end;
	int rc;

	rc = parse_int(s, -1000000, 1000000, &v, "n", &e);
	errno = 0;
	ref = strtol(s, &end, 10);
	if (rc) {
		need(rc == -EINVAL && v == 12345);
		check_sentence(&e);
		/* strtol also takes leading blanks; we must not. */
		need(!*s || *end || errno || s[0] == ' ' ||
		     (s[0] >= '\t' && s[0] <= '\r') ||
		     ref < -1000000 || ref > 1000000);
		return;
	}
	need(!*end && !errno && v == ref);
}

/* The value of @s by floating point, for plain "D[.D][unit]" forms. */
static bool mem_reference(const char *s, double *mib)
{
	char *end;
	double d = strtod(s, &end);
	int c = *end & ~0x20;

	if (end == s || s[0] < '0' || s[0] > '9')
		return false;
	if (!*end)
		c = 'M';
	switch (c) {
	case 'K':
		*mib = d / 1024;
		return true;
	case 'M':
		*mib = d;
		return true;
	case 'G':
		*mib = d * 1024;
		return true;
	case 'T':
		*mib = d * 1024 * 1024;
		return true;
	}
	return false;
}

static void fuzz_mem(const char *s)
{
	uint64_t v = 7;
	double ref;
	struct err e;
	int rc;

	rc = parse_mem_mib(s, &v, &e);
	if (rc) {
		need(rc == -EINVAL && v == 7);
		check_sentence(&e);
		return;
	}
	need(v > 0 && v <= MEM_MAX);
	if (mem_reference(s, &ref) && ref < 1e12)
		need(fabs((double)v - ceil(ref)) <= 1.0);
}

static void fuzz_duration(const char *s)
{
	uint64_t v = 7;
	struct err e;
	char *end;
	unsigned long long n;
	int rc;

	rc = parse_duration(s, &v, &e);
	if (rc) {
		need(rc == -EINVAL && v == 7);
		check_sentence(&e);
		return;
	}
	need(v > 0 && v <= TIME_MAX);
	if (s[0] < '0' || s[0] > '9')
		abort();
	n = strtoull(s, &end, 10);
	if (!*end)
		need(v == n * 60);
	else if (!end[1] && (*end == 's' || *end == 'h'))
		need(v == n * (*end == 's' ? 1 : 3600));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	need(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_file(data, size);
	fuzz_int(s);
	fuzz_mem(s);
	fuzz_duration(s);
	free(s);
	return 0;
}
