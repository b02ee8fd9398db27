/* SPDX-License-Identifier: MIT */
/*
 * A growable array: a pointer, a count and a capacity, the capacity
 * doubling (from 16) as elements come.  Either a VEC(type) or any struct
 * with the fields `v`, `n`, `cap` (size_t), or vec_grow() on an array of
 * one's own.  No locking: a vector belongs to whoever holds the struct.
 *
 *	VEC(int64_t) ids = { 0 };
 *
 *	if (vec_push(&ids, o->id))
 *		return -ENOMEM;
 *	...
 *	vec_free(&ids);
 *
 * The macros evaluate @vec more than once: pass a plain pointer.
 */
#ifndef MLFS_VEC_H
#define MLFS_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VEC(type)	struct { type *v; size_t n, cap; }

/*
 * vec_grow - make room for @need elements of @size bytes in the array
 * whose pointer is at @pv (a `type **`) and whose capacity is *@cap.
 * 0, or -ENOMEM with the array and *@cap unchanged (no memory, or more
 * bytes than a size_t counts).
 */
static inline int vec_grow(void *pv, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 16;
	void *v, *nv;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (!size || n > SIZE_MAX / size)
		return -ENOMEM;
	memcpy(&v, pv, sizeof(v));
	nv = realloc(v, n * size);
	if (!nv)
		return -ENOMEM;
	memcpy(pv, &nv, sizeof(nv));
	*cap = n;
	return 0;
}

/* Room for @more elements after the @vec->n there are.  0 or -ENOMEM. */
#define vec_reserve(vec, more)						\
	vec_grow(&(vec)->v, &(vec)->cap, (vec)->n + (more),		\
		 sizeof(*(vec)->v))

/* Append @x (evaluated at most once).  0 or -ENOMEM (@vec unchanged). */
#define vec_push(vec, x)						\
	(vec_reserve((vec), 1) ? -ENOMEM : ((vec)->v[(vec)->n++] = (x), 0))

/* Free the array (not what its elements point to); @vec is empty after. */
#define vec_free(vec)							\
	(free((vec)->v), (vec)->v = NULL, (vec)->n = (vec)->cap = 0)

#endif
