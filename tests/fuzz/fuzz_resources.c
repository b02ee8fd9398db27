// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the `resources` file and the value parsers under
 * it: resources_parse on the raw bytes, then parse_int, parse_mem_mib and
 * parse_duration on the input as one NUL-terminated string.
 * Invariants: results inside their documented ranges; *out untouched on
 * refusal; parse_int agrees with strtol; parse_mem_mib and parse_duration
 * agree with a reckoning in long double (sizes to 1 MiB, durations
 * exactly) and refuse anything that reckons over their limits; printable
 * one-line sentences.
 */
#include "parse.h"
#include "fuzz.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_MAX		(UINT64_MAX >> 20)
#define TIME_MAX	(3650ull * 86400)

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

/* Digits at *@p as a long double (exact below 2^64); false if none. */
static bool digits(const char **p, long double *v)
{
	const char *s = *p;

	for (*v = 0; **p >= '0' && **p <= '9'; (*p)++)
		*v = *v * 10 + (**p - '0');
	return *p > s;
}

/* MiB of @s reckoned in long double, for "D[.D][unit]"; false otherwise. */
static bool mem_reference(const char *s, long double *mib)
{
	long double ip, fp = 0, scale = 1;
	const char *p = s;
	int c;

	if (!digits(&p, &ip))
		return false;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++) {
			fp = fp * 10 + (*p - '0');
			scale *= 10;
		}
	*mib = ip + fp / scale;
	c = *p ? *p & ~0x20 : 'M';
	switch (c) {
	case 'K':
		*mib /= 1024;
		return true;
	case 'M':
		return true;
	case 'G':
		*mib *= 1024;
		return true;
	case 'T':
		*mib *= 1024 * 1024;
		return true;
	}
	return false;
}

/* Accepted sizes are right to 1 MiB; sizes over the limit are refused. */
static void fuzz_mem(const char *s)
{
	long double ref;
	uint64_t v = 7;
	struct err e;
	int rc;

	rc = parse_mem_mib(s, &v, &e);
	if (rc) {
		need(rc == -EINVAL && v == 7);
		check_sentence(&e);
	} else {
		need(v > 0 && v <= MEM_MAX);
	}
	if (!mem_reference(s, &ref))
		return;
	if (ref > (long double)MEM_MAX + 1)
		need(rc != 0);
	if (!rc)
		need(fabsl((long double)v - ceill(ref)) <= 1);
}

/*
 * Seconds of @s reckoned in long double: "N<unit>", or up to three
 * ':'-separated fields after an optional "D-"; false for anything else.
 * Field bounds are not checked here.
 */
static bool dur_reference(const char *s, long double *secs)
{
	static const long double mul[2][3][3] = {
		{ { 60 }, { 60, 1 }, { 3600, 60, 1 } },
		{ { 3600 }, { 3600, 60 }, { 3600, 60, 1 } },
	};
	long double f[3], day = 0;
	const char *p = s;
	int nf = 0, has_day = 0, i;

	if (!digits(&p, &f[0]))
		return false;
	if (*p && strchr("smhdSMHD", *p) && !p[1]) {
		static const char units[] = "smhd";
		static const long double unit_secs[] = { 1, 60, 3600, 86400 };

		*secs = f[0] * unit_secs[strchr(units, *p | 0x20) - units];
		return true;
	}
	if (*p == '-') {
		has_day = 1;
		day = f[0];
		p++;
		if (!digits(&p, &f[0]))
			return false;
	}
	for (nf = 1; *p == ':' && nf < 3; nf++) {
		p++;
		if (!digits(&p, &f[nf]))
			return false;
	}
	if (*p)
		return false;
	*secs = day * 86400;
	for (i = 0; i < nf; i++)
		*secs += f[i] * mul[has_day][nf - 1][i];
	return true;
}

/* Accepted durations are exact; a well-formed one over the limit is refused. */
static void fuzz_duration(const char *s)
{
	long double ref;
	uint64_t v = 7;
	struct err e;
	int rc;

	rc = parse_duration(s, &v, &e);
	if (rc) {
		need(rc == -EINVAL && v == 7);
		check_sentence(&e);
	} else {
		need(v > 0 && v <= TIME_MAX);
	}
	if (!dur_reference(s, &ref)) {
		need(rc != 0);
		return;
	}
	if (ref > TIME_MAX)
		need(rc != 0);
	if (!rc)
		need((long double)v == ref);
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
