// SPDX-License-Identifier: MIT
/*
 * SHA-256 and the content digest of a tree (digest.h).  The manifest is
 * built in memory (one record per entry, a few hundred bytes each), then
 * sorted and hashed: inputs are folders of data files, not millions of
 * entries.
 */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

/* ---- SHA-256 ------------------------------------------------------------ */

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void block(struct sha256 *s, const unsigned char *p)
{
	uint32_t w[64], v[8], t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 64; i++)
		w[i] = w[i - 16] + (ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^
				    (w[i - 15] >> 3)) + w[i - 7] +
		       (ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10));
	memcpy(v, s->h, sizeof(v));
	for (i = 0; i < 64; i++) {
		t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
		     ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
		t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
		     ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (i = 0; i < 8; i++)
		s->h[i] += v[i];
}

void sha256_init(struct sha256 *s)
{
	static const uint32_t h0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, h0, sizeof(h0));
	s->len = 0;
	s->n = 0;
}

void sha256_add(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t k;

	s->len += len;
	while (len > 0) {
		k = 64 - s->n < len ? 64 - s->n : len;
		memcpy(s->buf + s->n, p, k);
		s->n += k;
		p += k;
		len -= k;
		if (s->n == 64) {
			block(s, s->buf);
			s->n = 0;
		}
	}
}

void sha256_end(struct sha256 *s, unsigned char out[32])
{
	uint64_t bits = s->len * 8;
	unsigned char pad[72] = { 0x80 };
	size_t padn = (s->n < 56 ? 56 : 120) - s->n;

	for (int i = 0; i < 8; i++)
		pad[padn + i] = (unsigned char)(bits >> (56 - 8 * i));
	sha256_add(s, pad, padn + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(s->h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
		out[4 * i + 3] = (unsigned char)s->h[i];
	}
}

static void to_hex(const unsigned char d[32], char hex[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* ---- the manifest of a tree ----------------------------------------------- */

/* One entry: "MODE\0PATH\0DATA\0" in rec, sorted by path. */
struct rec {
	char *path;			/* points into text */
	char *text;
	size_t len;
};

struct manifest {
	struct rec *v;
	size_t n, cap;
	char where[PATH_MAX];		/* the entry a failure was at */
};

static int rec_add(struct manifest *m, mode_t mode, const char *path,
		   const char *data)
{
	struct rec *r;
	char *t;
	int w;

	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;

		r = realloc(m->v, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		m->v = r;
		m->cap = cap;
	}
	w = asprintf(&t, "%o%c%s%c%s%c", (unsigned)mode, 0, path, 0, data, 0);
	if (w < 0)
		return -ENOMEM;
	r = &m->v[m->n++];
	r->text = t;
	r->len = (size_t)w;
	r->path = t + strlen(t) + 1;
	return 0;
}

/* The SHA-256 of the file @name of @dir, in hex. */
static int file_hex(int dir, const char *name, char hex[65])
{
	unsigned char buf[65536], d[32];
	struct sha256 s;
	ssize_t r;
	int fd;

	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sha256_init(&s);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		sha256_add(&s, buf, (size_t)r);
	close(fd);
	if (r < 0)
		return -errno;
	sha256_end(&s, d);
	to_hex(d, hex);
	return 0;
}

static int walk(struct manifest *m, int dir, const char *rel, int depth);

/* The record of entry @name (relative path @path) of @dir. */
static int one_entry(struct manifest *m, int dir, const char *name,
		     const char *path, int depth)
{
	char data[PATH_MAX] = "";
	struct stat st;
	ssize_t l;
	int rc = 0, sub;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISREG(st.st_mode))
		rc = file_hex(dir, name, data);
	else if (S_ISLNK(st.st_mode) &&
		 (l = readlinkat(dir, name, data, sizeof(data) - 1)) >= 0)
		data[l] = '\0';
	if (!rc)
		rc = rec_add(m, st.st_mode & (S_IFMT | 07777), path, data);
	if (rc || !S_ISDIR(st.st_mode))
		return rc;
	sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (sub < 0)
		return -errno;
	rc = walk(m, sub, path, depth + 1);
	close(sub);
	return rc;
}

/* One folder of the walk: its path from the top ("" the top's). */
struct digest_level {
	struct manifest *m;
	const char *rel;
	int depth;
};

static int walk_one(int dir, const char *name, void *arg)
{
	struct digest_level *l = arg;
	char path[PATH_MAX];
	int rc;

	if (snprintf(path, sizeof(path), "%s%s%s", l->rel, *l->rel ? "/" : "",
		     name) >= (int)sizeof(path))
		rc = -ENAMETOOLONG;
	else
		rc = one_entry(l->m, dir, name, path, l->depth);
	if (rc && !l->m->where[0])
		snprintf(l->m->where, sizeof(l->m->where), "%s", path);
	return rc;
}

static int walk(struct manifest *m, int dir, const char *rel, int depth)
{
	struct digest_level l = { m, rel, depth };

	return dir_each(dir, depth, walk_one, &l);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->path,
		      ((const struct rec *)b)->path);
}

int tree_digest(const char *path, char hex[65], struct err *e)
{
	struct manifest m = { 0 };
	unsigned char d[32];
	struct sha256 s;
	int fd, rc;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? -errno : walk(&m, fd, "", 0);
	if (fd >= 0)
		close(fd);
	if (!rc) {
		qsort(m.v, m.n, sizeof(*m.v), by_path);
		sha256_init(&s);
		for (size_t i = 0; i < m.n; i++)
			sha256_add(&s, m.v[i].text, m.v[i].len);
		sha256_end(&s, d);
		to_hex(d, hex);
	}
	for (size_t i = 0; i < m.n; i++)
		free(m.v[i].text);
	free(m.v);
	if (rc)
		return err_set(e, rc, "cannot read %s%s%s: %s", path,
			       m.where[0] ? "/" : "", m.where, strerror(-rc));
	return 0;
}
