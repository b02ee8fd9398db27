/* SPDX-License-Identifier: MIT */
/*
 * Run arrays: the `array` value of `resources`.  Header-only: the daemon's
 * parser (backend/parse_num.c) and the run supervisor mlfs-run (libc only)
 * read the same text the same way.
 *
 *   SPEC  = ITEM [ "," ITEM ]... [ "%" M ]
 *   ITEM  = N | A "-" B | A "-" B ":" STEP
 *
 * Indices 0..ARRAY_INDEX_MAX, at most ARRAY_TASKS_MAX tasks, each index
 * once; the tasks are the indices in ascending order; M (1..) tasks at
 * most at once, 0 when not given.  Slurm's --array takes the same text.
 */
#ifndef MLFS_ARRAY_H
#define MLFS_ARRAY_H

#include <stdlib.h>
#include <string.h>

#define ARRAY_INDEX_MAX	1000000
#define ARRAY_TASKS_MAX	10000
#define ARRAY_SPEC_MAX	256

enum array_error {
	ARR_OK,
	ARR_SYNTAX,		/* not the grammar above */
	ARR_REVERSED,		/* A-B with B < A: a, b */
	ARR_INDEX,		/* an index above ARRAY_INDEX_MAX: a */
	ARR_TOO_MANY,		/* more than ARRAY_TASKS_MAX tasks */
	ARR_MAX_ZERO,		/* %0 */
	ARR_TWICE,		/* index a given twice */
	ARR_NOMEM,
};

struct array_spec {
	int n;			/* tasks */
	int max;		/* %M, 0: not given */
	int *idx;		/* the indices, ascending (NULL: not asked) */
	long a, b;		/* the numbers an error is about */
};

/* A decimal number of at most 7 digits at *@p; -1 when none. */
static inline long array_num(const char **p)
{
	long v = 0;
	int d = 0;

	while (**p >= '0' && **p <= '9' && d < 8) {
		v = v * 10 + (**p - '0');
		(*p)++;
		d++;
	}
	return d && d < 8 ? v : -1;
}

/* One ITEM at *@p into @seen (a bitmap of ARRAY_INDEX_MAX + 1 bits). */
static inline int array_item(const char **p, unsigned char *seen,
			     struct array_spec *s)
{
	long a, b, step = 1;

	a = array_num(p);
	b = a;
	if (a < 0)
		return ARR_SYNTAX;
	if (**p == '-') {
		(*p)++;
		if ((b = array_num(p)) < 0)
			return ARR_SYNTAX;
		if (**p == ':') {
			(*p)++;
			if ((step = array_num(p)) < 1)
				return ARR_SYNTAX;
		}
	}
	s->a = a;
	s->b = b;
	if (b < a)
		return ARR_REVERSED;
	if (b > ARRAY_INDEX_MAX) {
		s->a = b;
		return ARR_INDEX;
	}
	for (long i = a; i <= b; i += step) {
		if (seen[i / 8] & (1 << (i % 8))) {
			s->a = i;
			return ARR_TWICE;
		}
		seen[i / 8] |= 1 << (i % 8);
		if (++s->n > ARRAY_TASKS_MAX)
			return ARR_TOO_MANY;
	}
	return ARR_OK;
}

static inline int array_items(const char *p, unsigned char *seen,
			      struct array_spec *s)
{
	int rc;

	for (;;) {
		rc = array_item(&p, seen, s);
		if (rc)
			return rc;
		if (*p != ',')
			break;
		p++;
	}
	if (*p == '%') {
		p++;
		if ((s->max = (int)array_num(&p)) < 0)
			return ARR_SYNTAX;
		if (!s->max)
			return ARR_MAX_ZERO;
	}
	return *p ? ARR_SYNTAX : ARR_OK;
}

/* The indices of @seen, ascending, into s->idx (s->n of them). */
static inline int array_list(const unsigned char *seen, struct array_spec *s)
{
	int k = 0;

	s->idx = malloc(sizeof(int) * (s->n ? s->n : 1));
	if (!s->idx)
		return ARR_NOMEM;
	for (long i = 0; i <= ARRAY_INDEX_MAX && k < s->n; i++)
		if (seen[i / 8] & (1 << (i % 8)))
			s->idx[k++] = (int)i;
	return ARR_OK;
}

/*
 * array_parse - read @text into @s; with @list, s->idx is malloc'd (free
 * it).  ARR_OK or an enum array_error, s->a and s->b saying where.
 */
static inline int array_parse(const char *text, int list,
			      struct array_spec *s)
{
	unsigned char *seen = calloc(ARRAY_INDEX_MAX / 8 + 1, 1);
	int rc;

	memset(s, 0, sizeof(*s));
	if (!seen)
		return ARR_NOMEM;
	rc = strlen(text) >= ARRAY_SPEC_MAX ? ARR_SYNTAX :
	     array_items(text, seen, s);
	if (!rc && list)
		rc = array_list(seen, s);
	free(seen);
	return rc;
}

#endif
