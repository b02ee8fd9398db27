// SPDX-License-Identifier: MIT
#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The root's folders of objects: one line each, both directions. */
static const struct {
	uint64_t ino;
	int kind;
} tops[] = {
	{ INO_TARGETS,		K_TARGET },
	{ INO_RUNS,		K_RUN },
	{ INO_DEPLOYMENTS,	K_DEPLOYMENT },
	{ INO_MODELS,		K_MODEL },
};

uint64_t kind_top_ino(int kind)
{
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
		if (tops[i].kind == kind)
			return tops[i].ino;
	return 0;
}

int top_ino_kind(uint64_t ino)
{
	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
		if (tops[i].ino == ino)
			return tops[i].kind;
	return K_NONE;
}

struct unode {
	uint64_t ino;
	uint64_t parent;
	char *name;		/* NULL once unlinked */
	uint64_t nlookup;
	uint64_t backing;	/* the backing file's inode, 0 unknown */
	struct unode *by_ino_next;
	struct unode *by_name_next;
};

struct node_table {
	pthread_mutex_t lock;	/* guards everything below */
	uint64_t next;
	size_t nbuckets, count;
	struct unode **by_ino;
	struct unode **by_name;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static size_t name_hash(const struct node_table *t, uint64_t parent,
			const char *name)
{
	uint64_t h = mix(parent);

	for (const unsigned char *p = (const void *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return mix(h) & (t->nbuckets - 1);
}

static size_t ino_hash(const struct node_table *t, uint64_t ino)
{
	return mix(ino) & (t->nbuckets - 1);
}

int nodes_init(struct node_table **tp)
{
	struct node_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->nbuckets = 1024;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = calloc(t->nbuckets, sizeof(*t->by_name));
	if (!t->by_ino || !t->by_name) {
		nodes_free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->next = 1;
	*tp = t;
	return 0;
}

void nodes_free(struct node_table *t)
{
	struct unode *n, *next;

	if (!t)
		return;
	for (size_t i = 0; t->by_ino && i < t->nbuckets; i++) {
		for (n = t->by_ino[i]; n; n = next) {
			next = n->by_ino_next;
			free(n->name);
			free(n);
		}
	}
	free(t->by_ino);
	free(t->by_name);
	free(t);
}

static struct unode *find_ino(struct node_table *t, uint64_t ino)
{
	struct unode *n = t->by_ino[ino_hash(t, ino)];

	while (n && n->ino != ino)
		n = n->by_ino_next;
	return n;
}

static struct unode *find_name(struct node_table *t, uint64_t parent,
			       const char *name)
{
	struct unode *n = t->by_name[name_hash(t, parent, name)];

	while (n && (n->parent != parent || strcmp(n->name, name)))
		n = n->by_name_next;
	return n;
}

static void unhash_name(struct node_table *t, struct unode *n)
{
	struct unode **pp;

	if (!n->name)
		return;
	pp = &t->by_name[name_hash(t, n->parent, n->name)];
	while (*pp && *pp != n)
		pp = &(*pp)->by_name_next;
	if (*pp)
		*pp = n->by_name_next;
	free(n->name);
	n->name = NULL;
}

static void hash_name(struct node_table *t, struct unode *n)
{
	size_t h = name_hash(t, n->parent, n->name);

	n->by_name_next = t->by_name[h];
	t->by_name[h] = n;
}

static void grow(struct node_table *t)
{
	struct unode **bi, **bn, *n, *next;
	size_t old = t->nbuckets;
	struct unode **oi = t->by_ino;

	bi = calloc(old * 2, sizeof(*bi));
	bn = calloc(old * 2, sizeof(*bn));
	if (!bi || !bn) {
		free(bi);
		free(bn);
		return;
	}
	free(t->by_name);
	t->by_ino = bi;
	t->by_name = bn;
	t->nbuckets = old * 2;
	for (size_t i = 0; i < old; i++) {
		for (n = oi[i]; n; n = next) {
			size_t h = ino_hash(t, n->ino);

			next = n->by_ino_next;
			n->by_ino_next = t->by_ino[h];
			t->by_ino[h] = n;
			if (n->name)
				hash_name(t, n);
		}
	}
	free(oi);
}

uint64_t nodes_get(struct node_table *t, uint64_t parent, const char *name)
{
	struct unode *n;
	uint64_t ino = 0;
	size_t h;

	pthread_mutex_lock(&t->lock);
	n = find_name(t, parent, name);
	if (n) {
		ino = n->ino;
		goto out_unlock;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto out_unlock;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		goto out_unlock;
	}
	n->ino = USER_BIT | t->next++;
	n->parent = parent;
	if (t->count >= t->nbuckets)
		grow(t);
	h = ino_hash(t, n->ino);
	n->by_ino_next = t->by_ino[h];
	t->by_ino[h] = n;
	hash_name(t, n);
	t->count++;
	ino = n->ino;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void nodes_ref(struct node_table *t, uint64_t ino)
{
	struct unode *n;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

static void drop(struct node_table *t, struct unode *n)
{
	struct unode **pp = &t->by_ino[ino_hash(t, n->ino)];

	while (*pp && *pp != n)
		pp = &(*pp)->by_ino_next;
	if (*pp)
		*pp = n->by_ino_next;
	unhash_name(t, n);
	t->count--;
	free(n);
}

void nodes_forget(struct node_table *t, uint64_t ino, uint64_t count)
{
	struct unode *n;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (!n->nlookup)
			drop(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

void nodes_unlink(struct node_table *t, uint64_t parent, const char *name)
{
	struct unode *n;

	pthread_mutex_lock(&t->lock);
	n = find_name(t, parent, name);
	if (n) {
		unhash_name(t, n);
		if (!n->nlookup)
			drop(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

void nodes_move(struct node_table *t, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname)
{
	struct unode *n, *victim;
	char *nn;

	pthread_mutex_lock(&t->lock);
	victim = find_name(t, newparent, newname);
	if (victim) {
		unhash_name(t, victim);
		if (!victim->nlookup)
			drop(t, victim);
	}
	n = find_name(t, parent, name);
	nn = strdup(newname);
	if (n && nn) {
		unhash_name(t, n);
		n->parent = newparent;
		n->name = nn;
		hash_name(t, n);
	} else {
		free(nn);
	}
	pthread_mutex_unlock(&t->lock);
}

int nodes_path(struct node_table *t, uint64_t ino, int64_t *obj, int *root,
	       char *rel, size_t relsz)
{
	char buf[USER_PATH_MAX];
	size_t pos = sizeof(buf) - 1;
	struct unode *n;
	int rc = 0;

	buf[pos] = '\0';
	pthread_mutex_lock(&t->lock);
	while (ino_is_user(ino)) {
		size_t l;

		n = find_ino(t, ino);
		if (!n || !n->name) {
			rc = -ENOENT;
			goto out_unlock;
		}
		l = strlen(n->name);
		if (l + 1 >= pos) {
			rc = -ENAMETOOLONG;
			goto out_unlock;
		}
		pos -= l;
		memcpy(buf + pos, n->name, l);
		buf[--pos] = '/';
		ino = n->parent;
	}
out_unlock:
	pthread_mutex_unlock(&t->lock);
	if (rc)
		return rc;
	if (!ino_is_obj(ino))
		return -ENOENT;
	*obj = ino_obj(ino);
	*root = ino_file(ino);
	if (*root != F_DIR && *root != F_OUTPUTS)
		return -ENOENT;
	if (strlen(buf + pos) >= relsz)
		return -ENAMETOOLONG;
	/* skip the leading '/' */
	snprintf(rel, relsz, "%s", buf[pos] == '/' ? buf + pos + 1 : buf + pos);
	return 0;
}

void nodes_set_backing(struct node_table *t, uint64_t ino, uint64_t backing)
{
	struct unode *n;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n)
		n->backing = backing;
	pthread_mutex_unlock(&t->lock);
}

int nodes_by_backing(struct node_table *t, uint64_t backing, uint64_t except,
		     uint64_t *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nbuckets && n < max; i++)
		for (struct unode *u = t->by_ino[i]; u && n < max;
		     u = u->by_ino_next)
			if (u->backing == backing && u->ino != except)
				out[n++] = u->ino;
	pthread_mutex_unlock(&t->lock);
	return n;
}
