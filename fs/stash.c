// SPDX-License-Identifier: MIT
/*
 * Versions of generated files (struct stripe and struct vlen in fs_i.h
 * say why): hook_change_begin keeps an object's row before each change,
 * on the thread committing it (the worker thread or a FUSE request
 * thread); FUSE request threads name a rendering's version (bytes_ver),
 * find a version's bytes again (version_bytes) and the sizes of versions
 * given out (len_note, len_find).  sl_lock guards the stash and the sizes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/hash.h"
#include "fs_i.h"

static struct stripe *stripe_of(struct mlfs *m, int64_t id)
{
	return &m->stripes[(uint64_t)id % NSTRIPES];
}

/* A change to @id is about to be committed: keep the row as it is. */
void hook_change_begin(void *ctx, int64_t id)
{
	struct mlfs *m = ctx;
	struct stripe *s = stripe_of(m, id);
	struct obj old;

	runs_page_stale(m);
	if (ws_get(m->ws, id, &old))
		return;
	pthread_mutex_lock(&m->sl_lock);
	s->old[s->next] = old;
	s->next = (s->next + 1) % NSTASH;
	pthread_mutex_unlock(&m->sl_lock);
}

void len_note(struct mlfs *m, uint64_t ino, size_t len)
{
	struct vlen *v = &m->lens[(ino ^ (ino >> VER_SHIFT)) % NLENS];

	pthread_mutex_lock(&m->sl_lock);
	v->ino = ino;
	v->len = len;
	pthread_mutex_unlock(&m->sl_lock);
}

/* The size of version @ino if the table has it: 0, else -ESTALE. */
int len_find(struct mlfs *m, uint64_t ino, size_t *len)
{
	struct vlen *v = &m->lens[(ino ^ (ino >> VER_SHIFT)) % NLENS];
	int rc = -ESTALE;

	pthread_mutex_lock(&m->sl_lock);
	if (v->ino == ino) {
		*len = v->len;
		rc = 0;
	}
	pthread_mutex_unlock(&m->sl_lock);
	return rc;
}

/* Does this control file come in versions (its bytes are generated)? */
int versioned(const struct file_desc *fd)
{
	return fd && (fd->flags & (FD_GEN | FD_CTL));
}

/* The version of @len bytes at @buf: FNV-1a, folded to VER_MASK bits. */
unsigned bytes_ver(const char *buf, size_t len)
{
	uint32_t h = fnv1a32(buf, len);

	return (h ^ (h >> 22)) & VER_MASK;
}

/*
 * The bytes of version ino_ver(@ino) of generated file @file of @o: the
 * current rendering, or one of the rows kept before recent changes.
 * 0 with a malloc'd *buf; -ESTALE when the version is gone (then *buf is
 * the current rendering, NULL if none); other -errno.
 */
int version_bytes(struct mlfs *m, uint64_t ino, const struct obj *o,
		  int file, char **buf, size_t *len)
{
	struct stripe *s = stripe_of(m, o->id);
	struct obj old[NSTASH];
	size_t ol;
	char *ob;
	int rc, n = 0;

	*buf = NULL;
	rc = ws_render(m->ws, o, file, buf, len);
	if (rc || bytes_ver(*buf, *len) == ino_ver(ino))
		return rc;
	pthread_mutex_lock(&m->sl_lock);
	for (int i = 0; i < NSTASH; i++)
		if (s->old[i].id == o->id)
			old[n++] = s->old[i];
	pthread_mutex_unlock(&m->sl_lock);
	for (int i = 0; i < n; i++) {
		if (ws_render(m->ws, &old[i], file, &ob, &ol))
			continue;
		if (bytes_ver(ob, ol) == ino_ver(ino)) {
			free(*buf);
			*buf = ob;
			*len = ol;
			return 0;
		}
		free(ob);
	}
	return -ESTALE;
}

/* runs/index.html is generated too, but per reader and without
 * versions: see struct page_snap. */
void runs_page_stale(struct mlfs *m)
{
	__atomic_add_fetch(&m->runs_gen, 1, __ATOMIC_RELEASE);
}

void runs_page_free(struct mlfs *m)
{
	for (size_t i = 0; i < sizeof(m->pages) / sizeof(m->pages[0]); i++)
		free(m->pages[i].buf);
}

/* A copy of the kept rendering for @uid/@gid at @gen: 0, or -ENOENT. */
static int page_kept(struct mlfs *m, uint32_t uid, uint32_t gid,
		     unsigned gen, char **buf, size_t *len, struct timespec *at)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&m->sl_lock);
	for (size_t i = 0; i < sizeof(m->pages) / sizeof(m->pages[0]); i++) {
		struct page_snap *p = &m->pages[i];

		if (!p->buf || p->uid != uid || p->gid != gid || p->gen != gen)
			continue;
		*buf = malloc(p->len + 1);
		rc = *buf ? 0 : -ENOMEM;
		if (*buf)
			memcpy(*buf, p->buf, p->len + 1);
		*len = p->len;
		*at = p->at;
		break;
	}
	pthread_mutex_unlock(&m->sl_lock);
	return rc;
}

/* Keep a copy of @buf for @uid/@gid, in its slot or the oldest. */
static void page_keep(struct mlfs *m, uint32_t uid, uint32_t gid,
		      unsigned gen, const char *buf, size_t len,
		      struct timespec at)
{
	const size_t n = sizeof(m->pages) / sizeof(m->pages[0]);
	char *copy = malloc(len + 1);
	struct page_snap *p = NULL;

	if (!copy)
		return;
	memcpy(copy, buf, len + 1);
	pthread_mutex_lock(&m->sl_lock);
	for (size_t i = 0; i < n && !p; i++)
		if (m->pages[i].buf && m->pages[i].uid == uid &&
		    m->pages[i].gid == gid)
			p = &m->pages[i];
	if (!p)
		p = &m->pages[m->pages_next++ % n];
	free(p->buf);
	*p = (struct page_snap){ uid, gid, gen, copy, len, at };
	pthread_mutex_unlock(&m->sl_lock);
}

int runs_page(fuse_req_t req, struct mlfs *m, char **buf, size_t *len,
	      struct timespec *at)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	unsigned gen = __atomic_load_n(&m->runs_gen, __ATOMIC_ACQUIRE);
	struct timespec now;
	int rc;

	if (!page_kept(m, c->uid, c->gid, gen, buf, len, at ? at : &now))
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	rc = ws_page(m->ws, page_ino_kind(INO_RUNS_PAGE), c->uid, c->gid, buf,
		     len);
	if (!rc)
		page_keep(m, c->uid, c->gid, gen, *buf, *len, now);
	if (at)
		*at = now;
	return rc;
}
