/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4), and the digest of a file tree by its content: for
 * names that must change whenever the content does and only then (the ssh
 * driver's cache of inputs on a host).  Pure but for tree_digest's reads;
 * any thread.
 */
#ifndef MLFS_DIGEST_H
#define MLFS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sha256 {
	uint32_t h[8];
	uint64_t len;			/* bytes so far */
	unsigned char buf[64];
	size_t n;			/* bytes in buf */
};

void sha256_init(struct sha256 *s);
void sha256_add(struct sha256 *s, const void *data, size_t len);
/* The 32-byte digest into @out; @s is spent. */
void sha256_end(struct sha256 *s, unsigned char out[32]);

/*
 * tree_digest - the SHA-256, in 64 lowercase hex digits into @hex, of the
 * manifest of the tree at @path (a folder, not followed if a link): one
 * record per entry below it, sorted by relative path, each its type and
 * permission bits, its path and then a regular file's SHA-256 or a
 * link's target (folders: nothing).  Owners and times are not in it: two
 * trees with the same names, modes and bytes have the same digest.  Read
 * with the caller's rights, by folder fds, never following a link.
 * 0 or -errno with a sentence.
 */
int tree_digest(const char *path, char hex[65], struct err *e);

#endif
