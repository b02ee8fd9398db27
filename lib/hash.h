/* SPDX-License-Identifier: MIT */
/*
 * FNV-1a, the one hash of mlfs: for names made from paths, versions of
 * generated files, hash sets.  Not for anything an attacker may choose to
 * collide at a cost to us beyond a slower lookup.  Pure; any thread.
 */
#ifndef MLFS_HASH_H
#define MLFS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FNV32_BASIS	2166136261u
#define FNV32_PRIME	16777619u
#define FNV64_BASIS	14695981039346656037ull
#define FNV64_PRIME	1099511628211ull

/*
 * A 64-bit basis one digit short of FNV's (…603 for …6037).  The ssh
 * driver's remote run folders (ssh_exec.c) and the Slurm driver's job
 * names (slurm.c) were named with it, and those names outlive a daemon
 * (a restarted one adopts by them): they keep it.  New uses take
 * FNV64_BASIS.
 */
#define FNV64_BASIS_SHORT	1469598103934665603ull

/* Hash @len bytes at @buf on top of @h (a basis, or an earlier result). */
static inline uint32_t fnv1a32_add(uint32_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV32_PRIME;
	return h;
}

static inline uint64_t fnv1a64_add(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV64_PRIME;
	return h;
}

static inline uint32_t fnv1a32(const void *buf, size_t len)
{
	return fnv1a32_add(FNV32_BASIS, buf, len);
}

static inline uint64_t fnv1a64(const void *buf, size_t len)
{
	return fnv1a64_add(FNV64_BASIS, buf, len);
}

/* The NUL-terminated string @s, without its NUL. */
static inline uint32_t fnv1a32_str(const char *s)
{
	return fnv1a32_add(FNV32_BASIS, s, strlen(s));
}

static inline uint64_t fnv1a64_str(const char *s)
{
	return fnv1a64_add(FNV64_BASIS, s, strlen(s));
}

#endif
