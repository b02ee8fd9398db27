// SPDX-License-Identifier: MIT
/*
 * Copies of file trees (copy.h): working copies of runs, snapshots of a
 * deployment's files, model versions; chown and rm -r without following
 * symlinks.  Any thread: the backend worker (working copies, snapshots)
 * and FUSE request threads (unshare_file before a write); what a walk
 * keeps between calls is in its own struct copy_ctx.
 *
 * A copy keeps what `cp -a` keeps: bytes (holes stay holes; cloned where
 * the file system can), modes without set-id bits, times to the
 * nanosecond (make judges a working copy as it would the run's folder),
 * symlinks as links, hard links within the tree as links.  Owners are
 * whoever makes the copy (copy_tree_as: the run's owner).
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>		/* FICLONE */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fscreds.h"
#include "hash.h"
#include "walk.h"

/*
 * The walks below hold a folder open (O_NOFOLLOW) and name its entries
 * relative to it: swapping a folder of the tree for a symlink while they
 * run never makes them act outside the tree (a path walk, nftw's, would
 * follow the new link between its lstat and its next step).
 */
typedef int (*entry_fn)(int dir, const char *name, const struct stat *st,
			void *arg);

/* One level of walk_at: what its entries are handed to, and the first
 * failure, which ends nothing (rm -r and chown do what they can). */
struct walk_level {
	entry_fn pre, post;
	void *arg;
	int depth, rc;
};

static int walk_at(int dir, int depth, entry_fn pre, entry_fn post,
		   void *arg);

static int walk_one(int dir, const char *name, void *arg)
{
	struct walk_level *w = arg;
	struct stat st;
	int sub, r;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	if (w->pre && w->pre(dir, name, &st, w->arg) && !w->rc)
		w->rc = -errno;
	if (S_ISDIR(st.st_mode)) {
		sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		if (sub >= 0) {
			r = walk_at(sub, w->depth + 1, w->pre, w->post, w->arg);
			w->rc = w->rc ? w->rc : r;
			close(sub);
		}
	}
	if (w->post && w->post(dir, name, &st, w->arg) && !w->rc)
		w->rc = -errno;
	return 0;
}

/* Call @pre for each entry of @dir (before its content), @post after. */
static int walk_at(int dir, int depth, entry_fn pre, entry_fn post,
		   void *arg)
{
	struct walk_level w = { pre, post, arg, depth, 0 };
	int rc = dir_each(dir, depth, walk_one, &w);

	return rc ? rc : w.rc;
}

static int rm_entry(int dir, const char *name, const struct stat *st,
		    void *arg)
{
	(void)arg;
	unlinkat(dir, name, S_ISDIR(st->st_mode) ? AT_REMOVEDIR : 0);
	return 0;
}

struct owner {
	uid_t uid;
	gid_t gid;
};

/* A regular file: chowned and stripped of set-id bits through an fd
 * opened without following (the name may have become a symlink since
 * fstatat: fchmodat would follow it). */
static int own_file(int dir, const char *name, const struct owner *o)
{
	struct stat st;
	int fd, rc = 0;

	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		    O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto out_close;
	if (o->uid != (uid_t)-1 && fchown(fd, o->uid, o->gid))
		rc = -1;
	else if ((st.st_mode & 06000) && fchmod(fd, st.st_mode & 0777))
		rc = -1;
out_close:
	close(fd);
	return rc;
}

/* chown without following; no set-id bit left on a file */
static int chown_entry(int dir, const char *name, const struct stat *st,
		       void *arg)
{
	const struct owner *o = arg;

	if (S_ISREG(st->st_mode))
		return own_file(dir, name, o);
	if (o->uid == (uid_t)-1)
		return 0;
	return fchownat(dir, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW);
}

/* Open the parent of @path and point *@base at its last name. */
static int open_parent(const char *path, char *buf, size_t sz,
		       const char **base)
{
	char *slash;
	int fd;

	snprintf(buf, sz, "%s", path);
	slash = strrchr(buf, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	*slash = '\0';
	*base = slash + 1;
	fd = open(slash == buf ? "/" : buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	struct owner o = { uid, gid };
	int fd, rc;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = uid != (uid_t)-1 && fchown(fd, uid, gid) ? -errno :
	     walk_at(fd, 0, chown_entry, NULL, &o);
	close(fd);
	return rc;
}

int remove_tree(const char *path)
{
	char buf[PATH_MAX];
	const char *base;
	struct stat st;
	int dir, fd, rc = 0;

	dir = open_parent(path, buf, sizeof(buf), &base);
	if (dir < 0)
		return dir == -ENOENT ? 0 : dir;
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW)) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		fd = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
		if (fd >= 0) {
			walk_at(fd, 0, NULL, rm_entry, NULL);
			close(fd);
		}
	}
	if (unlinkat(dir, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) &&
	    errno != ENOENT)
		rc = -errno;
out_close:
	close(dir);
	return rc;
}

/* ---- one file ------------------------------------------------------- */

/* The times of @st on @fd (or on @name of @fd, a link itself). */
static int set_times(int fd, const char *name, const struct stat *st)
{
	const struct timespec ts[2] = { st->st_atim, st->st_mtim };
	int rc;

	rc = name ? utimensat(fd, name, ts, AT_SYMLINK_NOFOLLOW) :
		    futimens(fd, ts);
	return rc ? -errno : 0;
}

static int pwrite_all(int fd, const char *buf, size_t n, off_t off)
{
	ssize_t w;

	for (; n; buf += w, n -= w, off += w) {
		w = pwrite(fd, buf, n, off);
		if (w < 0)
			return -errno;
	}
	return 0;
}

/* Bytes [@off, @end) of @in to the same place in @out: in the kernel
 * (copy_file_range), else through a buffer.  A file that shrank meanwhile
 * ends the copy early.  0 or -errno. */
static int copy_range(int in, int out, off_t off, off_t end)
{
	char buf[1 << 16];
	ssize_t n;
	int rc;

	while (off < end) {
		loff_t io = off, oo = off;

		n = copy_file_range(in, &io, out, &oo, end - off, 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
			      errno == EINVAL || errno == EOPNOTSUPP))
			break;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		off += n;
	}
	while (off < end) {
		n = pread(in, buf, end - off < (off_t)sizeof(buf) ?
			  (size_t)(end - off) : sizeof(buf), off);
		if (n <= 0)
			return n < 0 ? -errno : 0;
		rc = pwrite_all(out, buf, n, off);
		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

/* The data of @in (@size bytes) into @out, extent by extent: its holes
 * stay holes (a `truncate -s 2G` file is copied at once and takes no
 * room).  A file system without SEEK_DATA calls it all data. */
static int copy_data(int in, int out, off_t size)
{
	off_t data, hole = 0;
	int rc;

	while (hole < size) {
		data = lseek(in, hole, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;		/* only a hole is left */
		if (data < 0 && errno == EINVAL)
			return copy_range(in, out, hole, size);
		if (data < 0)
			return -errno;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		hole = hole < size ? hole : size;
		rc = copy_range(in, out, data, hole);
		if (rc)
			return rc;
	}
	/* a hole at the end, which no extent reaches */
	return ftruncate(out, size) ? -errno : 0;
}

/* What one copy learns once for all its files. */
struct file_opts {
	int no_clone;	/* FICLONE failed: the file system cannot clone */
	mode_t umask;	/* the daemon's: it cuts the mode a file is made with */
};

/* The daemon's umask, from /proc: umask(2) reads it only by setting it,
 * which other threads' creations would see.  0777 when unknown. */
static mode_t read_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	mode_t mask = 0777;
	char line[128];
	unsigned m;

	if (!f)
		return mask;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1) {
			mask = m & 0777;
			break;
		}
	fclose(f);
	return mask;
}

/* The bytes of @in (as @st saw it) into the new, empty @out. */
static int copy_content(int in, int out, const struct stat *st,
			struct file_opts *o)
{
	if (!st->st_size)
		return 0;
	/* a clone shares the extents (btrfs, xfs, bcachefs): instant, no
	 * second copy of the bytes, holes kept; elsewhere it fails at once,
	 * and is not tried again in this copy */
	if (!o->no_clone) {
		if (!ioctl(out, FICLONE, in))
			return 0;
		o->no_clone = errno == EOPNOTSUPP || errno == ENOTTY ||
			      errno == EXDEV;
	}
	/* as many bytes in blocks as in the file: no hole to look for */
	if ((off_t)st->st_blocks * 512 >= st->st_size)
		return copy_range(in, out, 0, st->st_size);
	return copy_data(in, out, st->st_size);
}

/* Copy file @sname of folder @sdir into a new file @dname of @ddir: its
 * bytes (holes kept), then its mode and times. */
static int copy_file_as(int sdir, const char *sname, int ddir,
			const char *dname, struct file_opts *o)
{
	struct stat st;
	int in, out, rc;

	/* O_NONBLOCK: a file swapped for a fifo must not hang the copy */
	in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0)
		return -errno;
	if (fstat(in, &st) || !S_ISREG(st.st_mode)) {
		close(in);
		return -EINVAL;	/* it changed under us: not what we saw */
	}
	/* no set-id bits: a copy must not make a set-id file its author
	 * could not have made (a root-owned one, before any chown) */
	out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, st.st_mode & 0777);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	rc = copy_content(in, out, &st, o);
	/* the bits the daemon's umask took (a 0666 file stays 0666) */
	if (!rc && (st.st_mode & o->umask & 0777) &&
	    fchmod(out, st.st_mode & 0777))
		rc = -errno;
	if (!rc)	/* last: writing the bytes set them to now */
		rc = set_times(out, NULL, &st);
	close(in);
	if (close(out) && !rc)
		rc = -errno;
	return rc;
}

static int copy_link(int sdir, int ddir, const char *name,
		     const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlinkat(sdir, name, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (symlinkat(target, ddir, name))
		return -errno;
	return set_times(ddir, name, st);
}

/* ---- a tree --------------------------------------------------------- */

/*
 * Files with several names met so far in one copy: the first name is
 * copied, the next ones become links to that copy.  An open-addressing
 * table from (dev, ino) to the copy's path from the top folder: a tree
 * of many hard links is copied in linear time, and no descriptor is held
 * per file.
 */
struct link_seen {
	dev_t dev;
	ino_t ino;
	char *path;	/* from the top folder; NULL: a free slot */
};

struct links {
	struct link_seen *v;
	size_t n, cap;	/* cap 0 or a power of 2, kept at most half full */
};

/* One copy: what its walk carries from entry to entry. */
struct copy_ctx {
	int top;		/* the folder the copy is made in */
	int share;		/* link_into: files become new names */
	struct file_opts fo;
	struct links links;
	char rel[PATH_MAX];	/* the folder being filled, from top: "a/b/" */
	int rel_lost;		/* folders entered that rel could not name */
	char where[PATH_MAX];	/* the entry a failure came from */
};

/* The slot of (@dev, @ino) in @v: its entry, or the free slot for it. */
static struct link_seen *link_slot(struct link_seen *v, size_t cap,
				   dev_t dev, ino_t ino)
{
	size_t i = fnv1a64_add(fnv1a64_add(FNV64_BASIS, &dev, sizeof(dev)),
			       &ino, sizeof(ino)) & (cap - 1);

	while (v[i].path && (v[i].dev != dev || v[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static int link_grow(struct links *l)
{
	size_t cap = l->cap ? l->cap * 2 : 64;
	struct link_seen *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->cap; i++)
		if (l->v[i].path)
			*link_slot(v, cap, l->v[i].dev, l->v[i].ino) = l->v[i];
	free(l->v);
	l->v = v;
	l->cap = cap;
	return 0;
}

static const char *link_find(const struct links *l, const struct stat *st)
{
	if (!l->cap)
		return NULL;
	return link_slot(l->v, l->cap, st->st_dev, st->st_ino)->path;
}

/* @st was copied to @name of the folder being filled.  Not remembered
 * when memory or the path runs out: its next name is then a copy. */
static void link_add(struct copy_ctx *c, const struct stat *st,
		     const char *name)
{
	struct links *l = &c->links;
	char *path;

	if (c->rel_lost || ((l->n + 1) * 2 > l->cap && link_grow(l)))
		return;
	if (asprintf(&path, "%s%s", c->rel, name) < 0)
		return;
	*link_slot(l->v, l->cap, st->st_dev, st->st_ino) =
		(struct link_seen){ st->st_dev, st->st_ino, path };
	l->n++;
}

static void links_free(struct links *l)
{
	for (size_t i = 0; i < l->cap; i++)
		free(l->v[i].path);
	free(l->v);
}

/* @name of @ddir becomes a new name of the copy at @path (from the top
 * folder); the folders on the way are opened without following links. */
static int link_again(const struct copy_ctx *c, const char *path, int ddir,
		      const char *name)
{
	char buf[PATH_MAX], *comp = buf, *slash;
	int fd = c->top, nfd, rc;

	snprintf(buf, sizeof(buf), "%s", path);
	for (; (slash = strchr(comp, '/')); comp = slash + 1) {
		*slash = '\0';
		nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		rc = -errno;
		if (fd != c->top)
			close(fd);
		if (nfd < 0)
			return rc;
		fd = nfd;
	}
	rc = linkat(fd, comp, ddir, name, 0) ? -errno : 0;
	if (fd != c->top)
		close(fd);
	return rc;
}

/* Entering folder @name: rel follows.  Its length before, for rel_leave. */
static size_t rel_enter(struct copy_ctx *c, const char *name)
{
	size_t len = strlen(c->rel);

	if (c->rel_lost || len + strlen(name) + 2 > sizeof(c->rel))
		c->rel_lost++;
	else
		sprintf(c->rel + len, "%s/", name);
	return len;
}

static void rel_leave(struct copy_ctx *c, size_t len)
{
	if (c->rel_lost)
		c->rel_lost--;
	else
		c->rel[len] = '\0';
}

static int copy_reg(struct copy_ctx *c, int sdir, int ddir, const char *name,
		    const struct stat *st)
{
	const char *seen;
	int rc;

	if (c->share && !linkat(sdir, name, ddir, name, 0))
		return 0;	/* else (another file system …) a copy */
	if (c->share || st->st_nlink < 2)
		return copy_file_as(sdir, name, ddir, name, &c->fo);
	seen = link_find(&c->links, st);
	/* a hard link within the tree: a link again (else a copy) */
	if (seen && !link_again(c, seen, ddir, name))
		return 0;
	rc = copy_file_as(sdir, name, ddir, name, &c->fo);
	if (!rc && !seen)
		link_add(c, st, name);
	return rc;
}

static int copy_dir(struct copy_ctx *c, int sdir, int ddir, int depth);

static int copy_subdir(struct copy_ctx *c, int sdir, int ddir,
		       const char *name, const struct stat *st, int depth)
{
	size_t len;
	int s, d, rc;

	if (mkdirat(ddir, name, 0700))
		return -errno;
	s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	len = rel_enter(c, name);
	rc = (s < 0 || d < 0) ? -errno : copy_dir(c, s, d, depth + 1);
	rel_leave(c, len);
	/* folders keep setgid (it only picks the group of new files, and
	 * the copy is made as its owner, so the kernel drops it where the
	 * owner could not set it), never setuid */
	if (!rc && fchmod(d, st->st_mode & 03777))
		rc = -errno;
	if (!rc)	/* after its entries, whose making changed them */
		rc = set_times(d, NULL, st);
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	return rc;
}

static int copy_entry(struct copy_ctx *c, int sdir, int ddir,
		      const char *name, int depth)
{
	struct stat st;

	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISLNK(st.st_mode))
		return copy_link(sdir, ddir, name, &st);
	if (S_ISREG(st.st_mode))
		return copy_reg(c, sdir, ddir, name, &st);
	if (S_ISDIR(st.st_mode))
		return copy_subdir(c, sdir, ddir, name, &st, depth);
	return 0;	/* fifos, sockets, devices: not copied */
}

/* One folder of a copy: where its entries go. */
struct copy_level {
	struct copy_ctx *c;
	int ddir, depth;
};

static int copy_one(int sdir, const char *name, void *arg)
{
	struct copy_level *l = arg;
	struct copy_ctx *c = l->c;
	int rc = copy_entry(c, sdir, l->ddir, name, l->depth);

	if (rc && !c->where[0])
		snprintf(c->where, sizeof(c->where), "%s%s", c->rel, name);
	return rc;
}

static int copy_dir(struct copy_ctx *c, int sdir, int ddir, int depth)
{
	struct copy_level l = { c, ddir, depth };

	return dir_each(sdir, depth, copy_one, &l);
}

/*
 * Copy entry @name of folder @s (NULL: all its entries) into folder @d;
 * @share: files become new names of the same inodes.  0 or -errno, and
 * the path of the entry that failed in @where.
 */
static int copy_walk(int s, int d, const char *name, int share,
		     char *where, size_t wsz)
{
	struct copy_ctx *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->top = d;
	c->share = share;
	c->fo.umask = read_umask();
	rc = name ? copy_entry(c, s, d, name, 0) : copy_dir(c, s, d, 0);
	snprintf(where, wsz, "%s", c->where);
	links_free(&c->links);
	free(c);
	return rc;
}

/* ---- working copies -------------------------------------------------------- */

/* @dst anew (0755, or 0700 for its owner @uid:@gid): an open fd. */
static int make_top(const char *dst, uid_t uid, gid_t gid, struct err *e)
{
	int rc, d;

	rc = remove_tree(dst);
	if (rc)
		return err_set(e, rc, "cannot clear the old working copy: %s",
			       strerror(-rc));
	if (mkdir(dst, 0700))
		return err_set(e, -errno, "cannot make the working copy: %s",
			       strerror(errno));
	d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return err_set(e, -errno, "cannot open the working copy: %s",
			       strerror(errno));
	rc = uid == (uid_t)-1 ? fchmod(d, 0755) :
	     geteuid() == 0 ? fchown(d, uid, gid) : 0;
	if (rc) {
		rc = err_set(e, -errno, "cannot give the working copy to uid"
			     " %u: %s", (unsigned)uid, strerror(errno));
		close(d);
		return rc;
	}
	return d;
}

/* Copy the content of @src into the open folder @d, and make outputs/. */
static int copy_top(const char *src, int d, struct err *e)
{
	char where[PATH_MAX] = "";
	int s, rc;

	s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = s < 0 ? -errno : copy_walk(s, d, NULL, 0, where, sizeof(where));
	if (s >= 0)
		close(s);
	if (rc)
		return err_set(e, rc, "cannot copy the run's files%s%s: %s",
			       where[0] ? " at " : "", where, strerror(-rc));
	if (mkdirat(d, "outputs", 0755) && errno != EEXIST)
		return err_set(e, -errno, "cannot make outputs/: %s",
			       strerror(errno));
	return 0;
}

/*
 * The start of a copy as @uid:@gid: @dst made anew for them (make_top),
 * and their fsuid, fsgid and groups worn on this worker thread, so that
 * the copy reads and creates exactly what the owner may.  The open @dst,
 * or -errno with a sentence in @e (nothing left to undo); the caller ends
 * with copy_as_end.
 */
static int copy_as_begin(const char *dst, uid_t uid, gid_t gid,
			 struct fscreds *c, struct err *e)
{
	int d, rc;

	d = make_top(dst, uid, gid, e);
	if (d < 0)
		return d;
	rc = fscreds_wear_user(c, uid, gid);
	if (!rc)
		return d;
	fscreds_restore(c);
	close(d);
	return err_set(e, rc, "cannot take the credentials of uid %u: %s",
		       (unsigned)uid, strerror(-rc));
}

static void copy_as_end(struct fscreds *c, int d)
{
	fscreds_restore(c);
	close(d);
}

int copy_tree_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		 struct err *e)
{
	struct fscreds c;
	int d, rc;

	d = copy_as_begin(dst, uid, gid, &c, e);
	if (d < 0)
		return d;
	rc = copy_top(src, d, e);
	copy_as_end(&c, d);
	return rc;
}

/* Regular file @in into a new file @name of folder @d (mode, times). */
static int copy_open_file(int in, int d, const char *name)
{
	struct file_opts o = { .umask = read_umask() };
	struct stat st;
	int out, rc;

	if (fstat(in, &st))
		return -errno;
	out = openat(d, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, st.st_mode & 0777);
	if (out < 0)
		return -errno;
	rc = copy_content(in, out, &st, &o);
	if (!rc && fchmod(out, st.st_mode & 0777))
		rc = -errno;
	if (!rc)
		rc = set_times(out, NULL, &st);
	if (close(out) && !rc)
		rc = -errno;
	return rc;
}

/* What @src names (looked up now: the caller wears the user's rights)
 * into the open folder @d. */
static int copy_input_top(const char *src, int d, char *where, size_t wsz)
{
	const char *base = strrchr(src, '/');
	struct stat st;
	int s, rc;

	/* O_NONBLOCK: a fifo named as an input must not hang the worker */
	s = open(src, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return -errno;
	if (fstat(s, &st))
		rc = -errno;
	else if (S_ISDIR(st.st_mode))
		rc = copy_walk(s, d, NULL, 0, where, wsz);
	else if (S_ISREG(st.st_mode) && base && base[1])
		rc = copy_open_file(s, d, base + 1);
	else
		rc = -EINVAL;	/* neither a folder nor a file */
	close(s);
	return rc || S_ISDIR(st.st_mode) ? rc : 1;	/* 1: a file */
}

int copy_input_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		  struct err *e)
{
	char where[PATH_MAX] = "";
	struct fscreds c;
	int d, rc;

	d = copy_as_begin(dst, uid, gid, &c, e);
	if (d < 0)
		return d;
	rc = copy_input_top(src, d, where, sizeof(where));
	copy_as_end(&c, d);
	if (rc == -EINVAL && !where[0])
		return err_set(e, rc, "%s is neither a folder nor a file", src);
	if (rc < 0)
		return err_set(e, rc, "cannot read %s%s%s as uid %u: %s", src,
			       where[0] ? " at " : "", where,
			       (unsigned)(uid == (uid_t)-1 ? geteuid() : uid),
			       strerror(-rc));
	return rc;
}

int copy_tree_fresh(const char *src, const char *dst, struct err *e)
{
	return copy_tree_as(src, dst, (uid_t)-1, (gid_t)-1, e);
}

static int copy_into_as(const char *src, const char *name, const char *dst,
			int share, struct err *e)
{
	char where[PATH_MAX] = "";
	int s, d, rc;

	s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = (s < 0 || d < 0) ? -errno :
	     copy_walk(s, d, name, share, where, sizeof(where));
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	if (rc)
		return err_set(e, rc, "cannot copy %s%s%s: %s", name ? name :
			       "the files", where[0] ? " at " : "", where,
			       strerror(-rc));
	return 0;
}

int copy_files_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		  struct err *e)
{
	char where[PATH_MAX] = "";
	struct fscreds c;
	int s, d, rc;

	/* both folders opened with the daemon's rights (the state dir is
	 * its own), everything in them read and made with @uid's */
	s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = (s < 0 || d < 0) ? -errno : fscreds_wear_user(&c, uid, gid);
	if (!rc) {
		rc = copy_walk(s, d, NULL, 0, where, sizeof(where));
		fscreds_restore(&c);
	}
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	if (rc)
		return err_set(e, rc, "cannot copy the files%s%s as uid %u: %s",
			       where[0] ? " at " : "", where, (unsigned)uid,
			       strerror(-rc));
	return 0;
}

int copy_into(const char *src, const char *name, const char *dst,
	      struct err *e)
{
	return copy_into_as(src, name, dst, 0, e);
}

int link_into(const char *src, const char *name, const char *dst,
	      struct err *e)
{
	return copy_into_as(src, name, dst, 1, e);
}

int unshare_file(const char *path)
{
	struct file_opts fo = { .umask = 0777 };	/* fchmod: one file */
	char tmp[PATH_MAX + 16], *slash;
	const char *name;
	struct stat st;
	int dir, rc;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(st.st_mode) || st.st_nlink < 2)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", path);
	slash = strrchr(tmp, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	dir = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	/* the name from @path: tmp is about to be overwritten */
	name = path + (slash - tmp) + 1;
	snprintf(tmp, sizeof(tmp), ".%s.mlfs-unshare", name);
	unlinkat(dir, tmp, 0);
	rc = copy_file_as(dir, name, dir, tmp, &fo);
	if (!rc && fchownat(dir, tmp, st.st_uid, st.st_gid,
			    AT_SYMLINK_NOFOLLOW) && geteuid() == 0)
		rc = -errno;
	if (!rc && renameat(dir, tmp, dir, name))
		rc = -errno;
	if (rc)
		unlinkat(dir, tmp, 0);
	close(dir);
	return rc;
}
