// SPDX-License-Identifier: MIT
/*
 * Pure parsers of values, see parse.h: whole numbers, memory sizes,
 * durations, resources, and metrics lines.  Inputs are users' and run
 * processes', as in parse.c, whose rules apply here too (loops linear in
 * their input, no recursion, values quoted in sentences).  Any thread (no
 * state).
 */
#include "parse.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/array.h"
#include "parse_i.h"

/* ---- numbers ------------------------------------------------------------ */

/*
 * Digits at @p into @v, saturating at @sat (so that callers can multiply
 * without overflow and still see "too large").  NULL if no digit.
 */
static const char *scan_digits(const char *p, uint64_t sat, uint64_t *v)
{
	if (!is_digit(*p))
		return NULL;
	for (*v = 0; is_digit(*p); p++)
		*v = *v > (sat - 9) / 10 ? sat : *v * 10 + (*p - '0');
	return p;
}

int parse_int(const char *s, long min, long max, long *out, const char *what,
	      struct err *e)
{
	uint64_t mag, lim = (uint64_t)LONG_MAX + 1;
	const char *p = s;
	bool neg = false;
	struct quote q;
	long v;

	if (!p)
		goto refuse;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	p = scan_digits(p, lim + 1, &mag);
	if (!p || *p || mag > lim || (!neg && mag == lim))
		goto refuse;
	if (!neg)
		v = (long)mag;
	else
		v = mag ? -(long)(mag - 1) - 1 : 0;	/* LONG_MIN too */
	if (v < min || v > max)
		goto refuse;
	*out = v;
	return 0;
refuse:
	return err_set(e, -EINVAL, "%s must be an integer from %ld to %ld, not '%s'.",
		       what ? what : "the value", min, max, quote_str(&q, s));
}

/* ---- memory sizes ------------------------------------------------------- */

#define MEM_MAX_MIB	(UINT64_MAX >> 20)	/* bytes still fit 64 bits */
#define MEM_FRAC_MAX	9			/* decimals after the point */
/*
 * Integer parts saturate here: above MEM_MAX_MIB even in KiB (so that a
 * saturated "...K" is still too large), and small enough that the
 * arithmetic in mem_scale cannot overflow.
 */
#define MEM_SAT		1000000000000000000ull	/* 1e18 */

struct decimal {
	uint64_t ip;		/* integer part, saturated at MEM_SAT */
	uint64_t fp;		/* fraction digits as an integer */
	uint64_t scale;		/* 10^(number of fraction digits) */
};

/* "12" or "1.5" at @p; returns the end or NULL. */
static const char *scan_decimal(const char *p, struct decimal *d)
{
	int nd;

	p = scan_digits(p, MEM_SAT, &d->ip);
	d->fp = 0;
	d->scale = 1;
	if (!p || *p != '.')
		return p;
	if (!is_digit(*++p))
		return NULL;
	for (nd = 0; is_digit(*p); p++, nd++) {
		if (nd == MEM_FRAC_MAX)
			return NULL;
		d->fp = d->fp * 10 + (*p - '0');
		d->scale *= 10;
	}
	return p;
}

/* Unit letter → shift from MiB (K = -10); "i", "B" may follow.  -1: bad. */
static int mem_unit(const char *p, int *shift)
{
	static const char units[] = "KMGT";
	const char *u;

	if (!*p) {
		*shift = 0;
		return 0;
	}
	u = strchr(units, *p & ~0x20);
	if (!u || !*u)
		return -1;
	*shift = (int)(u - units) * 10 - 10;
	p++;
	if (*p == 'i')
		p++;
	if ((*p & ~0x20) == 'B')
		p++;
	return *p ? -1 : 0;
}

/* ceil(d * 2^shift), shift in {-10, 0, 10, 20}; > MEM_MAX_MIB if too large */
static uint64_t mem_scale(const struct decimal *d, int shift)
{
	uint64_t m, frac;

	if (shift < 0) {
		frac = (d->ip % 1024) * d->scale + d->fp;
		return d->ip / 1024 +
		       (frac + 1024 * d->scale - 1) / (1024 * d->scale);
	}
	m = 1ull << shift;
	if (d->ip > MEM_MAX_MIB / m)
		return MEM_MAX_MIB + 1;
	return d->ip * m + (d->fp * m + d->scale - 1) / d->scale;
}

int parse_mem_mib(const char *s, uint64_t *mib, struct err *e)
{
	struct decimal d;
	struct quote q;
	const char *p;
	uint64_t v;
	int shift;

	p = s ? scan_decimal(s, &d) : NULL;
	if (!p || mem_unit(p, &shift))
		return err_set(e, -EINVAL,
			       "memory must be a size like 512M, 1G or 1.5G (K, M, G or T; MiB without a unit), not '%s'.",
			       quote_str(&q, s));
	v = mem_scale(&d, shift);
	if (!v)
		return err_set(e, -EINVAL, "memory must be more than 0, not '%s'.",
			       quote_str(&q, s));
	if (v > MEM_MAX_MIB)
		return err_set(e, -EINVAL,
			       "memory '%s' is too large (the limit is 16 EiB).",
			       quote_str(&q, s));
	*mib = v;
	return 0;
}

/* ---- durations ---------------------------------------------------------- */

#define DUR_MAX_DAYS	3650
#define DUR_MAX		((uint64_t)DUR_MAX_DAYS * 86400)
/*
 * Fields saturate here: any saturated field makes a duration over DUR_MAX,
 * and days * 86400 + hours * 3600 + … cannot overflow 64 bits.
 */
#define DUR_SAT		1000000000000ull	/* 1e12 */

/*
 * [D-]F[:F[:F]] as scanned.  What each field means depends on the form:
 * "M", "M:S", "H:M:S" without a day count, "H", "H:M", "H:M:S" after one.
 */
struct dur {
	bool has_day;
	uint64_t day;
	uint64_t f[3];
	int nf;
};

enum dur_field { DF_HOURS, DF_MINUTES, DF_SECONDS };

static const struct {
	const char *name;
	uint64_t secs;
	uint64_t below;		/* bound when not the leading field */
} dur_fields[] = {
	[DF_HOURS]	= { "hours",	3600,	24 },
	[DF_MINUTES]	= { "minutes",	60,	60 },
	[DF_SECONDS]	= { "seconds",	1,	60 },
};

static const enum dur_field dur_forms[2][3][3] = {
	{ { DF_MINUTES }, { DF_MINUTES, DF_SECONDS },
	  { DF_HOURS, DF_MINUTES, DF_SECONDS } },
	{ { DF_HOURS }, { DF_HOURS, DF_MINUTES },
	  { DF_HOURS, DF_MINUTES, DF_SECONDS } },
};

static int dur_scan(const char *p, struct dur *d)
{
	p = scan_digits(p, DUR_SAT, &d->f[0]);
	if (!p)
		return -1;
	d->has_day = *p == '-';
	if (d->has_day) {
		d->day = d->f[0];
		p = scan_digits(p + 1, DUR_SAT, &d->f[0]);
		if (!p)
			return -1;
	}
	for (d->nf = 1; *p == ':' && d->nf < 3; d->nf++) {
		p = scan_digits(p + 1, DUR_SAT, &d->f[d->nf]);
		if (!p)
			return -1;
	}
	return *p ? -1 : 0;
}

/*
 * Seconds of a scanned duration, or -1 with *@bad the field out of range.
 * The leading field of "M", "M:S" and "H:M:S" is not bounded ("90",
 * "100:00:00"); the others are (minutes and seconds below 60, hours below
 * 24 after a day count).  Fields are saturated at DUR_SAT: no overflow.
 */
static int dur_value(const struct dur *d, uint64_t *secs,
		     enum dur_field *bad)
{
	const enum dur_field *form = dur_forms[d->has_day][d->nf - 1];
	uint64_t t = d->has_day ? d->day * 86400 : 0;
	int i;

	for (i = 0; i < d->nf; i++) {
		if ((i > 0 || d->has_day) &&
		    d->f[i] >= dur_fields[form[i]].below) {
			*bad = form[i];
			return -1;
		}
		t += d->f[i] * dur_fields[form[i]].secs;
	}
	*secs = t;
	return 0;
}

/* "90s", "10m", "2h", "1d": 0 and *@secs set, or -1 if not that form. */
static int dur_unit(const char *s, uint64_t *secs)
{
	const char *p;
	uint64_t v;

	p = scan_digits(s, DUR_SAT, &v);
	if (!p || !*p || p[1])
		return -1;
	switch (*p | 0x20) {
	case 's':
		*secs = v;
		return 0;
	case 'm':
		*secs = v * 60;
		return 0;
	case 'h':
		*secs = v * 3600;
		return 0;
	case 'd':
		*secs = v * 86400;
		return 0;
	}
	return -1;
}

/* Seconds of @s: 0; -1 if malformed; 1 with *@bad out of range. */
static int dur_parse(const char *s, uint64_t *t, enum dur_field *bad)
{
	struct dur d = { 0 };

	if (!dur_unit(s, t))
		return 0;
	if (dur_scan(s, &d))
		return -1;
	return dur_value(&d, t, bad) ? 1 : 0;
}

int parse_duration(const char *s, uint64_t *secs, struct err *e)
{
	enum dur_field bad = DF_SECONDS;
	uint64_t t = 0;
	struct quote q;
	int rc;

	rc = s ? dur_parse(s, &t, &bad) : -1;
	if (rc < 0)
		return err_set(e, -EINVAL,
			       "time must be a duration like 90 (minutes), 1:30:00, 2-03:04:05 or 2h, not '%s'.",
			       quote_str(&q, s));
	if (rc > 0)
		return err_set(e, -EINVAL,
			       "time '%s' is invalid: %s must be below %d.",
			       quote_str(&q, s), dur_fields[bad].name,
			       (int)dur_fields[bad].below);
	if (!t)
		return err_set(e, -EINVAL, "time must be more than 0, not '%s'.",
			       quote_str(&q, s));
	if (t > DUR_MAX)
		return err_set(e, -EINVAL,
			       "time '%s' is too long (at most %d days).",
			       quote_str(&q, s), DUR_MAX_DAYS);
	*secs = t;
	return 0;
}

/* ---- resources ---------------------------------------------------------- */

/* cpus: a whole number as before, or a fraction such as 0.5 (thousandths
 * at most): schedulers get whole CPUs (rounded up), the local target's CPU
 * quota the exact amount. */
static int parse_cpus(const char *s, struct resources *r, struct err *e)
{
	struct decimal d;
	struct quote q;
	const char *p;
	uint64_t milli;
	int rc;

	if (!strchr(s, '.')) {
		rc = parse_int(s, 1, 4096, &r->cpus, "cpus", e);
		r->cpu_milli = r->cpus * 1000;
		return rc;
	}
	p = scan_decimal(s, &d);
	milli = p && !*p && d.scale <= 1000 && d.ip <= 4096 ?
		d.ip * 1000 + d.fp * (1000 / d.scale) : 0;
	if (milli < 1 || milli > 4096000)
		return err_set(e, -EINVAL, "cpus must be a number from 0.001 to"
			       " 4096 (like 2 or 0.5), not '%s'.",
			       quote_str(&q, s));
	r->cpu_milli = (long)milli;
	r->cpus = (long)((milli + 999) / 1000);
	return 0;
}

static const char *const res_keys[] = {
	"nodes", "cpus", "gpus", "memory", "time", "procs_per_node", "array",
	NULL
};

/* Why lib/array.h refused @v, as a sentence. */
static int array_refused(const char *v, int rc, const struct array_spec *a,
			 struct err *e)
{
	struct quote q;

	switch (rc) {
	case ARR_REVERSED:
		return err_set(e, -EINVAL, "array range %ld-%ld is reversed:"
			       " write %ld-%ld.", a->a, a->b, a->b, a->a);
	case ARR_INDEX:
		return err_set(e, -EINVAL, "array index %ld is too large (at"
			       " most %d).", a->a, ARRAY_INDEX_MAX);
	case ARR_TOO_MANY:
		return err_set(e, -EINVAL, "array '%s' has more than %d tasks:"
			       " split it into several runs.",
			       quote_str(&q, v), ARRAY_TASKS_MAX);
	case ARR_MAX_ZERO:
		return err_set(e, -EINVAL, "array '%s': %%0 would run no task:"
			       " the number after %% (tasks at once) must be"
			       " at least 1.", quote_str(&q, v));
	case ARR_TWICE:
		return err_set(e, -EINVAL, "array '%s' gives index %ld twice.",
			       quote_str(&q, v), a->a);
	case ARR_NOMEM:
		return err_set(e, -ENOMEM, "out of memory");
	}
	return err_set(e, -EINVAL, "array must be like 0-99, 0-99%%8 (8 at"
		       " once), 0-98:2 (every second), 5 or 1,3,5, not '%s'.",
		       quote_str(&q, v));
}

static int parse_array(const char *v, struct resources *r, struct err *e)
{
	struct array_spec a;
	int rc;

	rc = array_parse(v, 0, &a);
	if (rc)
		return array_refused(v, rc, &a, e);
	snprintf(r->array, sizeof(r->array), "%s", v);
	r->array_n = a.n;
	r->array_max = a.max;
	return 0;
}

static int res_set(struct resources *r, const struct kv *kv, struct err *e)
{
	char known[64];
	struct quote q;

	if (!strcmp(kv->key, "nodes"))
		return parse_int(kv->value, 1, 1024, &r->nodes, "nodes", e);
	if (!strcmp(kv->key, "cpus"))
		return parse_cpus(kv->value, r, e);
	if (!strcmp(kv->key, "gpus"))
		return parse_int(kv->value, 0, 64, &r->gpus, "gpus", e);
	if (!strcmp(kv->key, "memory"))
		return parse_mem_mib(kv->value, &r->memory_mib, e);
	if (!strcmp(kv->key, "time"))
		return parse_duration(kv->value, &r->time_secs, e);
	if (!strcmp(kv->key, "procs_per_node"))
		return parse_int(kv->value, 1, 256, &r->procs_per_node,
				 "procs_per_node", e);
	if (!strcmp(kv->key, "array"))
		return parse_array(kv->value, r, e);
	return err_set(e, -EINVAL, "unknown resources key '%s' (known: %s).",
		       quote_str(&q, kv->key),
		       join_keys(res_keys, known, sizeof(known)));
}

/* Each process of a node gets the same number of its GPUs (one each is
 * the usual): an uneven split is refused where it is written. */
static int gpus_split(const struct resources *r, struct err *e)
{
	if (r->gpus % r->procs_per_node == 0)
		return 0;
	return err_set(e, -EINVAL, "gpus = %ld does not split evenly across"
		       " procs_per_node = %ld: make gpus a multiple of it.",
		       r->gpus, r->procs_per_node);
}

int resources_parse(const char *buf, size_t len, struct resources *r,
		    struct err *e)
{
	struct resources t = { .nodes = 1, .cpus = 1, .procs_per_node = 1 };
	struct kv_list l;
	int i, rc;

	rc = kv_parse_as(buf, len, &l, "resources", e);
	for (i = 0; !rc && i < l.n; i++)
		rc = res_set(&t, &l.items[i], e);
	kv_free(&l);
	if (!rc)
		rc = gpus_split(&t, e);
	if (!rc && t.array_n && (t.nodes > 1 || t.procs_per_node > 1))
		rc = err_set(e, -EINVAL, "an array's task is one process on one"
			     " node: array cannot be combined with nodes or"
			     " procs_per_node above 1 yet.");
	if (!rc)
		*r = t;
	return rc;
}

/* ---- metrics ------------------------------------------------------------ */

#define METRIC_NAME_MAX		128
#define METRIC_VALUE_MAX	128	/* longer numbers are not plausible */

static bool is_metric_char(char c)
{
	return is_alnum(c) || strchr("_.:/-", c) != NULL;
}

/* [+-]? (D+ (. D*)? | . D+) ([eE] [+-]? D+)? over exactly @n bytes */
static bool is_decimal_float(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	size_t digits = 0;

	if (p < end && (*p == '+' || *p == '-'))
		p++;
	for (; p < end && is_digit(*p); p++)
		digits++;
	if (p < end && *p == '.')
		for (p++; p < end && is_digit(*p); p++)
			digits++;
	if (!digits)
		return false;
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
	}
	return p == end;
}

/*
 * strtod is correctly rounded but also takes "inf", "nan", hex and
 * leading blanks: the grammar is checked first, so it sees plain decimals
 * only.  It follows LC_NUMERIC; the daemon keeps the "C" locale.
 */
static int metric_value(const char *s, size_t n, double *v)
{
	char buf[METRIC_VALUE_MAX + 1];
	char *end;

	if (n > METRIC_VALUE_MAX || !is_decimal_float(s, n))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*v = strtod(buf, &end);
	if (end != buf + n || !isfinite(*v))
		return -EINVAL;
	return 0;
}

static int metric_step(const char *s, size_t n, long long *step)
{
	unsigned long long v = 0;
	size_t i;

	if (!n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]) ||
		    v > (unsigned long long)(LLONG_MAX - (s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*step = (long long)v;
	return 0;
}

/* Up to 4 blank-separated words of @s (@n bytes); returns how many. */
static int split_words(const char *s, size_t n, const char **w, size_t *wn)
{
	size_t i = 0, start;
	int nw = 0;

	for (;;) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n || nw == 4)
			return nw;
		for (start = i; i < n && !is_blank(s[i]); i++)
			;
		w[nw] = s + start;
		wn[nw++] = i - start;
	}
}

static bool metric_name_ok(const char *s, size_t n, size_t name_sz)
{
	size_t i;

	if (!n || n > METRIC_NAME_MAX || n >= name_sz)
		return false;
	for (i = 0; i < n; i++)
		if (!is_metric_char(s[i]))
			return false;
	return true;
}

int metric_parse_line(const char *line, char *name, size_t name_sz,
		      double *value, long long *step)
{
	const char *w[4];
	size_t wn[4], n;
	long long st = 0;
	double v;
	int nw;

	if (!line || !name)
		return -EINVAL;
	n = strlen(line);
	if (n && line[n - 1] == '\r')
		n--;
	nw = split_words(line, n, w, wn);
	if (nw < 2 || nw > 3 || !metric_name_ok(w[0], wn[0], name_sz))
		return -EINVAL;
	if (metric_value(w[1], wn[1], &v))
		return -EINVAL;
	if (nw == 3 && metric_step(w[2], wn[2], &st))
		return -EINVAL;
	memcpy(name, w[0], wn[0]);
	name[wn[0]] = '\0';
	*value = v;
	if (nw == 3 && step)
		*step = st;
	return nw == 3;
}

/* Blanks and a CR around @s[0..*n) dropped. */
static const char *trim_blanks(const char *s, size_t *n)
{
	while (*n && is_blank(*s)) {
		s++;
		(*n)--;
	}
	while (*n && (is_blank(s[*n - 1]) || s[*n - 1] == '\r'))
		(*n)--;
	return s;
}

/* A word strtod would take whole ("nan", "inf", "0x1p3", "1e999"): a
 * metric gone wrong, not a text param. */
static bool looks_numeric(const char *s, size_t n)
{
	char buf[METRIC_VALUE_MAX + 1], *end;

	if (is_decimal_float(s, n))
		return true;
	if (!n || n > METRIC_VALUE_MAX)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	strtod(buf, &end);
	return end == buf + n;
}

int param_parse_line(const char *line, char *name, size_t name_sz,
		     const char **value, size_t *value_len)
{
	size_t n, nl = 0;
	const char *s;

	if (!line || !name)
		return -EINVAL;
	n = strlen(line);
	s = trim_blanks(line, &n);
	while (nl < n && !is_blank(s[nl]))
		nl++;
	if (!metric_name_ok(s, nl, name_sz))
		return -EINVAL;
	memcpy(name, s, nl);
	name[nl] = '\0';
	n -= nl;
	*value = trim_blanks(s + nl, &n);
	*value_len = n;
	return n && n <= PARAM_VALUE_MAX ? 0 : -EINVAL;
}

int metric_param_line(const char *line, char *name, size_t name_sz,
		      const char **value, size_t *value_len)
{
	size_t w = 0;

	if (param_parse_line(line, name, name_sz, value, value_len))
		return -EINVAL;
	while (w < *value_len && !is_blank((*value)[w]))
		w++;
	return looks_numeric(*value, w) ? -EINVAL : 0;
}
