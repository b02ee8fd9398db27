// SPDX-License-Identifier: MIT
/*
 * Names and listings: LOOKUP (a name to an inode; a generated file's
 * inode names the version of its bytes), FORGET, and OPENDIR, READDIR,
 * RELEASEDIR, which stream objects from the backend and user entries from
 * backing folders kept open between calls (dc[] in struct mlfs).  FUSE
 * request threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "fs_i.h"

struct dh {
	uint64_t ino;
	uid_t uid;		/* whose rights opened it */
	DIR *dir;		/* the backing folder, for user entries */
	long pos;		/* index of the next backing entry */
};

/* Answer a LOOKUP with @ino (@v: what resolving it found, or NULL). */
int reply_entry(fuse_req_t req, struct mlfs *m, uint64_t ino,
		const struct ctl_view *v)
{
	struct fuse_entry_param e = { 0 };
	int rc;

	if (v && v->user)
		e.attr = v->ust;
	rc = v && v->user ? 0 : v ? ctl_attr(m, ino, &v->o, v->len, &e.attr) :
	     do_getattr(req, m, ino, &e.attr);
	if (rc)
		return rc;
	e.ino = ino;
	e.attr_timeout = timeout_for(m, ino);
	e.entry_timeout = v && !v->user ? ctl_name_timeout(m, ino, &v->o) :
			  name_timeout(m, ino);
	if (ino_is_user(ino))
		nodes_ref(m->nodes, ino);
	if (fuse_reply_entry(req, &e) && ino_is_user(ino))
		nodes_forget(m->nodes, ino, 1);
	return 0;
}

static void reply_negative(fuse_req_t req, double timeout)
{
	struct fuse_entry_param e = { 0 };

	e.entry_timeout = timeout;
	fuse_reply_entry(req, &e);
}

static uint64_t lookup_root(const char *name)
{
	static const struct { const char *n; uint64_t ino; } tab[] = {
		{ "README", INO_README }, { "events", INO_EVENTS },
		{ "targets", INO_TARGETS }, { "runs", INO_RUNS },
		{ "deployments", INO_DEPLOYMENTS }, { "models", INO_MODELS },
		{ "endpoints", INO_ENDPOINTS },
		{ "environments", INO_ENVIRONMENTS },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(tab[i].n, name))
			return tab[i].ino;
	return 0;
}

/* A user entry @name below @parent: 0 and *ino, its attributes in
 * *@st, or -errno. */
int lookup_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		const char *name, uint64_t *ino, struct stat *st)
{
	int rc = backing_stat(req, m, parent, name, st);

	if (rc)
		return rc;
	*ino = user_node(m, parent, name, st);
	user_stat(st);
	return *ino ? 0 : -ENOMEM;
}

/* The inode of control file @fd of @o: for a generated file, the
 * version of its bytes now (and their length in *@len, else -1). */
static int ctl_ino(struct mlfs *m, const struct obj *o,
		   const struct file_desc *fd, uint64_t *ino, ssize_t *len)
{
	size_t n;
	char *buf;
	int rc;

	*ino = obj_ino(o->id, fd->file);
	*len = -1;
	if (!versioned(fd))
		return 0;
	rc = ws_render(m->ws, o, fd->file, &buf, &n);
	if (rc)
		return rc;
	*ino = obj_ino_v(o->id, fd->file, bytes_ver(buf, n));
	*len = (ssize_t)n;
	free(buf);
	return 0;
}

int is_page(uint64_t parent, const char *name)
{
	int kind = top_ino_kind(parent);
	const char *page = kind_page_ino(kind) ? ws_kind_page(kind) : NULL;

	return page && !strcmp(name, page);
}

/* Resolve @name in @parent to *@ino.  When @name is a control file,
 * *@v (if not NULL) gets its object and the length ctl_ino found; else
 * v->o.id is 0. */
int do_lookup(fuse_req_t req, struct mlfs *m, uint64_t parent,
	      const char *name, uint64_t *ino, struct ctl_view *v)
{
	const struct file_desc *fd;
	struct obj o;
	int kind, rc;

	*ino = 0;
	if (v)
		v->o.id = v->user = 0;
	if (parent == INO_ROOT) {
		*ino = lookup_root(name);
		return *ino ? 0 : -ENOENT;
	}
	kind = top_ino_kind(parent);
	if (is_page(parent, name)) {
		*ino = kind_page_ino(kind);
		return 0;
	}
	if (kind) {
		rc = ws_find(m->ws, kind, 0, name, &o);
		if (!rc)
			*ino = obj_ino(o.id, F_DIR);
		return rc;
	}
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR) {
		rc = ws_get(m->ws, ino_obj(parent), &o);
		if (rc)
			return rc;
		if (ws_child_kind(&o)) {
			rc = ws_find(m->ws, ws_child_kind(&o), o.id, name, &o);
			if (!rc)
				*ino = obj_ino(o.id, F_DIR);
			return rc;
		}
		fd = ws_file_by_name(o.kind, name);
		if (fd && v) {
			v->o = o;
			return ctl_ino(m, &o, fd, ino, &v->len);
		}
		if (fd)
			return ctl_ino(m, &o, fd, ino, &(ssize_t){ 0 });
		if (!holds_user_files(parent, &o))
			return -ENOENT;
	}
	if (!v)
		return lookup_user(req, m, parent, name, ino,
				   &(struct stat){ 0 });
	v->user = 1;
	return lookup_user(req, m, parent, name, ino, &v->ust);
}

void mlfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mlfs *m = M(req);
	struct ctl_view v;
	uint64_t ino;
	int rc;

	rc = do_lookup(req, m, parent, name, &ino, &v);
	if (!rc)
		rc = reply_entry(req, m, ino, v.o.id || v.user ? &v : NULL);
	/* A name missing in a kind's folder or an object's may come to be
	 * behind the kernel's back (`register` makes models/NAME and its
	 * version, `clone` a run), and its cached absence would be dropped
	 * only by the notifier, a moment after the write that made it:
	 * absence is cached below user folders (and the root) only. */
	if (rc == -ENOENT)
		reply_negative(req, ino_is_user(parent) || parent == FUSE_ROOT_ID ?
			       timeout_for(m, parent) : 0);
	else if (rc)
		fuse_reply_err(req, -rc);
}

void mlfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	if (ino_is_user(ino))
		nodes_forget(M(req)->nodes, ino, n);
	fuse_reply_none(req);
}

void mlfs_forget_multi(fuse_req_t req, size_t count,
		       struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		if (ino_is_user(f[i].ino))
			nodes_forget(M(req)->nodes, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, len;
	int full;
};

/* Add one entry; returns 1 when the reply buffer is full. */
static int dir_add(struct dirbuf *b, const char *name, uint64_t ino,
		   mode_t mode, off_t next)
{
	struct stat st = { .st_ino = ino, .st_mode = mode };
	size_t n;

	n = fuse_add_direntry(b->req, b->buf + b->len, b->size - b->len, name,
			      &st, next);
	if (n > b->size - b->len) {
		b->full = 1;
		return 1;
	}
	b->len += n;
	return 0;
}

/* Offsets: 1 ".", 2 "..", then object id + 2 in top and model folders,
 * 3 + i for control files, USER_OFF + i for backing entries. */
#define USER_OFF 1024
#define PAGE_OFF ((off_t)1 << 62)

struct list_ctx {
	struct dirbuf *b;
};

static int list_cb(void *arg, const struct obj *o)
{
	struct list_ctx *c = arg;

	return dir_add(c->b, o->name, obj_ino(o->id, F_DIR), S_IFDIR,
		       o->id + 2);
}

static void list_objects(struct mlfs *m, struct dirbuf *b, int kind,
			 int64_t parent, off_t off)
{
	struct list_ctx c = { b };

	ws_list(m->ws, kind, parent, off > 2 ? off - 2 : 0, list_cb, &c);
}

static void list_root(struct dirbuf *b, off_t off)
{
	static const struct { const char *n; uint64_t ino; mode_t mode; } tab[] = {
		{ "README", INO_README, S_IFREG }, { "events", INO_EVENTS, S_IFREG },
		{ "targets", INO_TARGETS, S_IFDIR }, { "runs", INO_RUNS, S_IFDIR },
		{ "deployments", INO_DEPLOYMENTS, S_IFDIR },
		{ "models", INO_MODELS, S_IFDIR },
		{ "endpoints", INO_ENDPOINTS, S_IFDIR },
		{ "environments", INO_ENVIRONMENTS, S_IFDIR },
	};

	for (size_t i = off > 2 ? off - 2 : 0; i < sizeof(tab) / sizeof(tab[0]);
	     i++)
		if (dir_add(b, tab[i].n, tab[i].ino, tab[i].mode, i + 3))
			return;
}

static void list_ctl(const struct obj *o, struct dirbuf *b, off_t off)
{
	const struct file_desc *f;
	int n;

	f = ws_files(o->kind, &n);
	for (int i = off >= 3 ? off - 2 : 0; i < n; i++)
		/* found by name only: a walk of the tree (grep -r, find,
		 * cp -r, rsync) never reads it, for the read blocks */
		if (!(f[i].flags & FD_WAIT) &&
		    dir_add(b, f[i].name, obj_ino(o->id, f[i].file),
			    f[i].flags & FD_DIRECTORY ? S_IFDIR : S_IFREG,
			    3 + i))
			return;
}

static void list_backing(struct mlfs *m, struct dh *d, struct dirbuf *b,
			 off_t off)
{
	long want = off >= USER_OFF ? off - USER_OFF : 0;
	struct dirent *de;
	long here;

	if (!d->dir)
		return;
	if (want != d->pos) {
		rewinddir(d->dir);
		d->pos = 0;
	}
	for (;;) {
		here = telldir(d->dir);
		de = readdir(d->dir);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (d->pos < want) {
			d->pos++;
			continue;
		}
		if (dir_add(b, de->d_name, user_st_ino(de->d_ino),
			    DTTOIF(de->d_type), USER_OFF + d->pos + 1)) {
			seekdir(d->dir, here);
			return;
		}
		d->pos++;
	}
}

/* A stream of the backing folder of @ino, if it lists user files, opened
 * as @req's caller; NULL if none. */
static DIR *dir_backing(fuse_req_t req, struct mlfs *m, uint64_t ino)
{
	struct obj o;
	DIR *dir;
	AT(a);
	int fd;

	if (!ino_is_user(ino) && !(ino_is_obj(ino) && !ws_get(m->ws,
	    ino_obj(ino), &o) && holds_user_files(ino, &o)))
		return NULL;
	if (at_find(m, ino, NULL, &a))
		return NULL;
	{
		AS_CALLER(req);
		fd = at_open(&a) ? -1 : at_openat(&a, O_RDONLY | O_DIRECTORY, 0);
	}
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir && fd >= 0)
		close(fd);
	return dir;
}

/* A stream of @ino's backing folder: from the cache when one stopped at
 * @pos for the same user, else opened anew.  The caller owns it until
 * dir_put. */
static struct dh *dir_get(fuse_req_t req, struct mlfs *m, uint64_t ino,
			  long pos)
{
	uid_t uid = fuse_req_ctx(req)->uid;
	struct dh *d = NULL;

	pthread_mutex_lock(&m->dc_lock);
	for (size_t i = 0; i < sizeof(m->dc) / sizeof(m->dc[0]); i++) {
		if (m->dc[i] && m->dc[i]->ino == ino && m->dc[i]->pos == pos &&
		    m->dc[i]->uid == uid) {
			d = m->dc[i];
			m->dc[i] = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&m->dc_lock);
	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->ino = ino;
	d->uid = uid;
	d->dir = dir_backing(req, m, ino);
	return d;
}

void dh_free(struct dh *d)
{
	if (d && d->dir)
		closedir(d->dir);
	free(d);
}

/* Keep @d for the next call if the listing has more; else close it. */
static void dir_put(struct mlfs *m, struct dh *d, int more)
{
	struct dh *old = NULL;
	static unsigned next;

	if (!more || !d->dir) {
		dh_free(d);
		return;
	}
	pthread_mutex_lock(&m->dc_lock);
	next = (next + 1) % (sizeof(m->dc) / sizeof(m->dc[0]));
	old = m->dc[next];
	m->dc[next] = d;
	pthread_mutex_unlock(&m->dc_lock);
	dh_free(old);
}

void mlfs_opendir(fuse_req_t req, fuse_ino_t ino,
		  struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);

	if (m->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

void mlfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		  off_t off, struct fuse_file_info *fi)
{
	struct mlfs *m = M(req);
	struct dirbuf b = { .req = req, .size = size };
	struct dh *d = NULL;
	struct obj o;
	int kind;

	(void)fi;
	b.buf = malloc(size);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off < 1 && dir_add(&b, ".", ino, S_IFDIR, 1))
		goto out_reply;
	if (off < 2 && dir_add(&b, "..", INO_ROOT, S_IFDIR, 2))
		goto out_reply;
	kind = top_ino_kind(ino);
	if (ino == INO_ROOT) {
		list_root(&b, off);
	} else if (kind) {
		list_objects(m, &b, kind, 0, off);
		/* the kind's page (runs/index.html) last, at an offset no
		 * object id reaches */
		if (kind_page_ino(kind) && ws_kind_page(kind) && !b.full &&
		    off < PAGE_OFF)
			dir_add(&b, ws_kind_page(kind), kind_page_ino(kind),
				S_IFREG, PAGE_OFF);
	} else if (ino_is_obj(ino) && ino_file(ino) == F_DIR &&
		   !ws_get(m->ws, ino_obj(ino), &o) && ws_child_kind(&o)) {
		list_objects(m, &b, ws_child_kind(&o), o.id, off);
	} else {
		if (ino_is_obj(ino) && ino_file(ino) == F_DIR &&
		    !ws_get(m->ws, ino_obj(ino), &o) && off < USER_OFF)
			list_ctl(&o, &b, off);
		if (!b.full) {
			d = dir_get(req, m, ino,
				    off >= USER_OFF ? off - USER_OFF : 0);
			if (d)
				list_backing(m, d, &b, off);
		}
	}
out_reply:
	fuse_reply_buf(req, b.buf, b.len);
	free(b.buf);
	if (d)
		dir_put(m, d, b.full);
}

void mlfs_releasedir(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}
