// SPDX-License-Identifier: MIT
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The root's folders of objects: one line each, both directions; and the
 * inode of the page a kind generates among its objects (0: none). */
static const struct {
	uint64_t ino;
	int kind;
	uint64_t page;
} tops[] = {
	{ INO_TARGETS,		K_TARGET,	0 },
	{ INO_RUNS,		K_RUN,		INO_RUNS_PAGE },
	{ INO_DEPLOYMENTS,	K_DEPLOYMENT,	0 },
	{ INO_MODELS,		K_MODEL,	0 },
	{ INO_ENDPOINTS,	K_ENDPOINT,	0 },
	{ INO_ENVIRONMENTS,	K_ENVIRONMENT,	0 },
};

#define NTOPS	(sizeof(tops) / sizeof(tops[0]))

/* The line of @kind in tops, or NTOPS. */
static size_t top_of(int kind)
{
	size_t i = 0;

	while (i < NTOPS && tops[i].kind != kind)
		i++;
	return i;
}

uint64_t kind_page_ino(int kind)
{
	size_t i = top_of(kind);

	return i < NTOPS ? tops[i].page : 0;
}

/* The kind whose top folder (@page: whose page) is inode @ino. */
static int kind_at(uint64_t ino, int page)
{
	for (size_t i = 0; i < NTOPS; i++)
		if (ino && (page ? tops[i].page : tops[i].ino) == ino)
			return tops[i].kind;
	return K_NONE;
}

int page_ino_kind(uint64_t ino)
{
	return kind_at(ino, 1);
}

uint64_t kind_top_ino(int kind)
{
	size_t i = top_of(kind);

	return i < NTOPS ? tops[i].ino : 0;
}

int top_ino_kind(uint64_t ino)
{
	return kind_at(ino, 0);
}

/*
 * A user node is one kernel inode.  Most have one name.  A hard-linked
 * file among an object's files has one node for all its names (shared),
 * so that the kernel keeps one set of attributes and one page cache for
 * it, as for a file on a local disk: with a node per name, a change
 * through one would have to reach the caches of the others before its
 * answer, which waits for their page locks and can deadlock two writers.
 * A node whose last name goes while the kernel still holds it (a file
 * open while unlinked or replaced) keeps its backing file by fd until it
 * is forgotten; one whose name a setting took answers as that control
 * file meanwhile (alias).
 */
struct uname {
	uint64_t parent;
	char *name;
	struct unode *node;
	struct uname *hash_next;	/* by (parent, name) */
	struct uname *next;		/* the node's other names */
};

struct unode {
	uint64_t ino;
	uint64_t nlookup;
	uint64_t backing;	/* the backing file's inode, 0 unknown */
	struct uname *names;	/* NULL once every name went */
	int shared;		/* takes the other names of its backing file */
	int64_t obj;		/* where a shared or nameless node lies */
	int root;
	int fd;			/* nameless: its backing file (O_PATH), or -1 */
	uint64_t alias;		/* nameless: the control file it became */
	struct unode *by_ino_next;
	struct unode *by_backing_next;
};

struct node_table {
	pthread_mutex_t lock;	/* guards everything below */
	uint64_t next;
	size_t nbuckets, count;
	struct unode **by_ino;
	struct uname **by_name;
	struct unode **by_backing;	/* nodes whose backing is known */
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
	t->by_backing = calloc(t->nbuckets, sizeof(*t->by_backing));
	if (!t->by_ino || !t->by_name || !t->by_backing) {
		nodes_free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->next = 1;
	*tp = t;
	return 0;
}

static void free_node(struct unode *n)
{
	struct uname *u, *next;

	for (u = n->names; u; u = next) {
		next = u->next;
		free(u->name);
		free(u);
	}
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

void nodes_free(struct node_table *t)
{
	struct unode *n, *next;

	if (!t)
		return;
	for (size_t i = 0; t->by_ino && i < t->nbuckets; i++) {
		for (n = t->by_ino[i]; n; n = next) {
			next = n->by_ino_next;
			free_node(n);
		}
	}
	free(t->by_ino);
	free(t->by_name);
	free(t->by_backing);
	free(t);
}

static struct unode *find_ino(struct node_table *t, uint64_t ino)
{
	struct unode *n = t->by_ino[ino_hash(t, ino)];

	while (n && n->ino != ino)
		n = n->by_ino_next;
	return n;
}

static struct uname *find_name(struct node_table *t, uint64_t parent,
			       const char *name)
{
	struct uname *u = t->by_name[name_hash(t, parent, name)];

	while (u && (u->parent != parent || strcmp(u->name, name)))
		u = u->hash_next;
	return u;
}

static void hash_name(struct node_table *t, struct uname *u)
{
	size_t h = name_hash(t, u->parent, u->name);

	u->hash_next = t->by_name[h];
	t->by_name[h] = u;
}

static void unhash_name(struct node_table *t, struct uname *u)
{
	struct uname **pp = &t->by_name[name_hash(t, u->parent, u->name)];

	while (*pp && *pp != u)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = u->hash_next;
}

static void hash_backing(struct node_table *t, struct unode *n)
{
	size_t h = ino_hash(t, n->backing);

	n->by_backing_next = t->by_backing[h];
	t->by_backing[h] = n;
}

static void unhash_backing(struct node_table *t, struct unode *n)
{
	struct unode **pp;

	if (!n->backing)
		return;
	pp = &t->by_backing[ino_hash(t, n->backing)];
	while (*pp && *pp != n)
		pp = &(*pp)->by_backing_next;
	if (*pp)
		*pp = n->by_backing_next;
}

/* Take name @u away from its node (freed). */
static void unname(struct node_table *t, struct uname *u)
{
	struct uname **pp = &u->node->names;

	unhash_name(t, u);
	while (*pp && *pp != u)
		pp = &(*pp)->next;
	if (*pp)
		*pp = u->next;
	free(u->name);
	free(u);
}

/* Rebuild the three indexes at twice the size (best effort). */
static void grow(struct node_table *t)
{
	struct unode **bi, **bb, *n, *next;
	struct uname **bn;
	size_t old = t->nbuckets;
	struct unode **oi = t->by_ino;

	bi = calloc(old * 2, sizeof(*bi));
	bn = calloc(old * 2, sizeof(*bn));
	bb = calloc(old * 2, sizeof(*bb));
	if (!bi || !bn || !bb) {
		free(bi);
		free(bn);
		free(bb);
		return;
	}
	free(t->by_name);
	free(t->by_backing);
	t->by_ino = bi;
	t->by_name = bn;
	t->by_backing = bb;
	t->nbuckets = old * 2;
	for (size_t i = 0; i < old; i++) {
		for (n = oi[i]; n; n = next) {
			size_t h = ino_hash(t, n->ino);

			next = n->by_ino_next;
			n->by_ino_next = t->by_ino[h];
			t->by_ino[h] = n;
			for (struct uname *u = n->names; u; u = u->next)
				hash_name(t, u);
			if (n->backing)
				hash_backing(t, n);
		}
	}
	free(oi);
}

static struct unode *new_node(struct node_table *t)
{
	struct unode *n = calloc(1, sizeof(*n));
	size_t h;

	if (!n)
		return NULL;
	n->ino = USER_BIT | t->next++;
	n->fd = -1;
	if (t->count >= t->nbuckets)
		grow(t);
	h = ino_hash(t, n->ino);
	n->by_ino_next = t->by_ino[h];
	t->by_ino[h] = n;
	t->count++;
	return n;
}

static void drop(struct node_table *t, struct unode *n)
{
	struct unode **pp = &t->by_ino[ino_hash(t, n->ino)];

	while (*pp && *pp != n)
		pp = &(*pp)->by_ino_next;
	if (*pp)
		*pp = n->by_ino_next;
	while (n->names)
		unname(t, n->names);
	unhash_backing(t, n);
	t->count--;
	free_node(n);
}

/* Give node @n the name @name in @parent: 0 or -ENOMEM. */
static int add_name(struct node_table *t, struct unode *n, uint64_t parent,
		    const char *name)
{
	struct uname *u = calloc(1, sizeof(*u));

	if (u)
		u->name = strdup(name);
	if (!u || !u->name) {
		free(u);
		return -ENOMEM;
	}
	u->parent = parent;
	u->node = n;
	u->next = n->names;
	n->names = u;
	hash_name(t, u);
	return 0;
}

/* A new node named @name in @parent; its ino, 0 on ENOMEM. */
static uint64_t new_named(struct node_table *t, uint64_t parent,
			  const char *name)
{
	struct unode *n = new_node(t);

	if (n && add_name(t, n, parent, name)) {
		drop(t, n);
		n = NULL;
	}
	return n ? n->ino : 0;
}

uint64_t nodes_get(struct node_table *t, uint64_t parent, const char *name)
{
	struct uname *u;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	ino = u ? u->node->ino : new_named(t, parent, name);
	pthread_mutex_unlock(&t->lock);
	return ino;
}

/* The shared node of @backing below @obj's @root that still has names. */
static struct unode *find_shared(struct node_table *t, uint64_t backing,
				 int64_t obj, int root)
{
	struct unode *n = t->by_backing[ino_hash(t, backing)];

	while (n && !(n->backing == backing && n->shared && n->names &&
		      n->obj == obj && n->root == root))
		n = n->by_backing_next;
	return n;
}

static void set_backing(struct node_table *t, struct unode *n,
			uint64_t backing)
{
	if (n->backing == backing)
		return;
	unhash_backing(t, n);
	n->backing = backing;
	if (backing)
		hash_backing(t, n);
}

uint64_t nodes_get_linked(struct node_table *t, uint64_t parent,
			  const char *name, uint64_t backing, int64_t obj,
			  int root)
{
	struct unode *n;
	struct uname *u;
	uint64_t ino = 0;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	if (u) {
		ino = u->node->ino;
		goto out_unlock;
	}
	n = find_shared(t, backing, obj, root);
	if (!n && (n = new_node(t))) {
		n->shared = 1;
		n->obj = obj;
		n->root = root;
		set_backing(t, n, backing);
	}
	if (n && !add_name(t, n, parent, name))
		ino = n->ino;
	else if (n && !n->names)
		drop(t, n);
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

/* The object and root below which folder @ino lies. */
static int root_of(struct node_table *t, uint64_t ino, int64_t *obj,
		   int *root)
{
	struct unode *n;

	while (ino_is_user(ino)) {
		n = find_ino(t, ino);
		if (!n || !n->names)
			return -ENOENT;
		ino = n->names->parent;
	}
	if (!ino_is_obj(ino))
		return -ENOENT;
	*obj = ino_obj(ino);
	*root = ino_file(ino);
	return 0;
}

/*
 * Name @u goes.  When it was its node's last and the kernel still holds
 * the node, the node keeps @fd (its backing file) or answers as @alias;
 * else @fd is closed, and a node nobody holds goes.
 */
static void name_gone(struct node_table *t, struct uname *u, int fd,
		      uint64_t alias)
{
	struct unode *n = u->node;
	int last = n->names == u && !u->next;

	if (last && n->nlookup && n->fd < 0 &&
	    !root_of(t, u->parent, &n->obj, &n->root)) {
		n->fd = fd;
		n->alias = alias;
		fd = -1;
	}
	unname(t, u);
	if (fd >= 0)
		close(fd);
	if (!n->names && !n->nlookup)
		drop(t, n);
}

uint64_t nodes_find(struct node_table *t, uint64_t parent, const char *name)
{
	struct uname *u;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	ino = u ? u->node->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

int nodes_held(struct node_table *t, uint64_t parent, const char *name)
{
	struct uname *u;
	int held;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	held = u && u->node->nlookup && u->node->names == u && !u->next;
	pthread_mutex_unlock(&t->lock);
	return held;
}

/* Name @name of @parent goes (name_gone), under the lock. */
static void name_goes(struct node_table *t, uint64_t parent,
		      const char *name, int fd, uint64_t alias)
{
	struct uname *u;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	if (u)
		name_gone(t, u, fd, alias);
	else if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&t->lock);
}

void nodes_unlink(struct node_table *t, uint64_t parent, const char *name,
		  int fd)
{
	name_goes(t, parent, name, fd, 0);
}

void nodes_redirect(struct node_table *t, uint64_t parent, const char *name,
		    uint64_t alias)
{
	name_goes(t, parent, name, -1, alias);
}

uint64_t nodes_alias(struct node_table *t, uint64_t ino)
{
	struct unode *n;
	uint64_t alias = 0;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n && !n->names)
		alias = n->alias;
	pthread_mutex_unlock(&t->lock);
	return alias;
}

int nodes_orphan(struct node_table *t, uint64_t ino, int *fd, int64_t *obj,
		 int *root)
{
	struct unode *n;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n && !n->names && n->fd >= 0) {
		*fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 0);
		*obj = n->obj;
		*root = n->root;
		rc = *fd < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Rename @u to @name in @parent: 0 or -ENOMEM (then unchanged). */
static int rename_name(struct node_table *t, struct uname *u,
		       uint64_t parent, const char *name)
{
	char *nn = strdup(name);

	if (!nn)
		return -ENOMEM;
	unhash_name(t, u);
	free(u->name);
	u->parent = parent;
	u->name = nn;
	hash_name(t, u);
	return 0;
}

void nodes_move(struct node_table *t, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, int fd)
{
	struct uname *u, *victim;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	victim = find_name(t, newparent, newname);
	if (u && victim && u->node == victim->node) {
		/* two names of one file: rename(2) leaves both */
	} else {
		if (victim)
			name_gone(t, victim, fd, 0);
		else if (fd >= 0)
			close(fd);
		fd = -1;
		if (u && rename_name(t, u, newparent, newname))
			name_gone(t, u, -1, 0);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&t->lock);
}

void nodes_exchange(struct node_table *t, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname)
{
	struct uname *u, *v;
	char *nn;

	pthread_mutex_lock(&t->lock);
	u = find_name(t, parent, name);
	v = find_name(t, newparent, newname);
	if (u && v) {
		unhash_name(t, u);
		unhash_name(t, v);
		nn = u->name;
		u->name = v->name;
		v->name = nn;
		u->parent = newparent;
		v->parent = parent;
		hash_name(t, u);
		hash_name(t, v);
	} else if (u || v) {
		/* a name the table did not know: forget the other */
		name_gone(t, u ? u : v, -1, 0);
	}
	pthread_mutex_unlock(&t->lock);
}

int nodes_link(struct node_table *t, uint64_t ino, uint64_t parent,
	       const char *name, int64_t obj, int root)
{
	struct uname *stale;
	struct unode *n;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	stale = find_name(t, parent, name);
	if (stale && (!n || stale->node != n))
		name_gone(t, stale, -1, 0);
	else if (stale)
		rc = 0;
	if (n && n->names && !stale) {
		n->shared = 1;
		n->obj = obj;
		n->root = root;
		rc = add_name(t, n, parent, name);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
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
		if (!n || !n->names) {
			rc = -ENOENT;
			goto out_unlock;
		}
		l = strlen(n->names->name);
		if (l + 1 >= pos) {
			rc = -ENAMETOOLONG;
			goto out_unlock;
		}
		pos -= l;
		memcpy(buf + pos, n->names->name, l);
		buf[--pos] = '/';
		ino = n->names->parent;
	}
out_unlock:
	pthread_mutex_unlock(&t->lock);
	if (rc)
		return rc;
	if (!ino_is_obj(ino))
		return -ENOENT;
	*obj = ino_obj(ino);
	*root = ino_file(ino);
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
		set_backing(t, n, backing);
	pthread_mutex_unlock(&t->lock);
}

int nodes_by_backing(struct node_table *t, uint64_t backing, uint64_t except,
		     uint64_t *out, int max)
{
	struct unode *u;
	int n = 0;

	pthread_mutex_lock(&t->lock);
	for (u = t->by_backing[ino_hash(t, backing)]; u && n < max;
	     u = u->by_backing_next)
		if (u->backing == backing && u->ino != except)
			out[n++] = u->ino;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Does the chain of first names from @n reach folder @top? */
static int lies_below(struct node_table *t, struct unode *n, uint64_t top)
{
	for (int depth = 0; n && n->names && depth < 4096; depth++) {
		uint64_t parent = n->names->parent;

		if (parent == top)
			return 1;
		if (!ino_is_user(parent))
			return 0;
		n = find_ino(t, parent);
	}
	return 0;
}

int nodes_below(struct node_table *t, uint64_t top, uint64_t **out)
{
	uint64_t *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct unode *u;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nbuckets && !rc; i++) {
		for (u = t->by_ino[i]; u && !rc; u = u->by_ino_next) {
			if (!lies_below(t, u, top))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				v = nv;
			}
			v[n++] = u->ino;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (rc || n > INT_MAX) {
		free(v);
		return -ENOMEM;
	}
	*out = v;
	return (int)n;
}
