// SPDX-License-Identifier: MIT
/*
 * Copies of file trees (copy.h): working copies of runs, snapshots of a
 * deployment's files, model versions; chown and rm -r without following
 * symlinks.  Any thread: the backend worker (working copies, snapshots)
 * and FUSE request threads (unshare_file before a write); what a walk
 * keeps between calls is per thread (__thread).
 */
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fscreds.h"
#include "vec.h"

/*
 * The walks below hold a folder open (O_NOFOLLOW) and name its entries
 * relative to it: swapping a folder of the tree for a symlink while they
 * run never makes them act outside the tree (a path walk, nftw's, would
 * follow the new link between its lstat and its next step).
 */
typedef int (*entry_fn)(int dir, const char *name, const struct stat *st,
			void *arg);

/* Call @pre for each entry of @dir (before its content), @post after. */
static int walk_at(int dir, int depth, entry_fn pre, entry_fn post, void *arg)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, sub, rc = 0;

	if (depth > 512)
		return -ELOOP;
	fd = dup(dir);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d)
		return fd >= 0 ? (close(fd), -errno) : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (pre && pre(dir, de->d_name, &st, arg) && !rc)
			rc = -errno;
		if (S_ISDIR(st.st_mode)) {
			sub = openat(dir, de->d_name, O_RDONLY | O_DIRECTORY |
				     O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				int r = walk_at(sub, depth + 1, pre, post, arg);

				rc = rc ? rc : r;
				close(sub);
			}
		}
		if (post && post(dir, de->d_name, &st, arg) && !rc)
			rc = -errno;
	}
	closedir(d);
	return rc;
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

/* Copy file @sname of folder @sdir into a new file @dname of @ddir. */
static int copy_file_as(int sdir, const char *sname, int ddir,
			const char *dname, mode_t mode)
{
	int in, out, rc = 0;
	ssize_t n;

	struct stat st;

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
		     O_CLOEXEC, mode & 0777);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	do {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
	} while (n > 0);
	if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
		char buf[1 << 16];

		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n) {
				n = -1;
				break;
			}
	}
	if (n < 0)
		rc = -errno;
	close(in);
	if (close(out) && !rc)
		rc = -errno;
	return rc;
}

static int copy_file(int sdir, int ddir, const char *name, mode_t mode)
{
	return copy_file_as(sdir, name, ddir, name, mode);
}

static int copy_link(int sdir, int ddir, const char *name)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlinkat(sdir, name, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	return symlinkat(target, ddir, name) ? -errno : 0;
}

/* Files with several links seen so far: copied once, then linked. */
struct links {
	struct link_seen {
		dev_t dev;
		ino_t ino;
		int dir;	/* the folder (fd) it was copied into */
		char name[NAME_MAX + 1];
	} *v;
	size_t n, cap;
};

static __thread struct links *cur_links;
/* link_into: regular files become new names of the same inodes */
static __thread int share_files;

static struct link_seen *link_find(const struct stat *st)
{
	for (size_t i = 0; cur_links && i < cur_links->n; i++)
		if (cur_links->v[i].dev == st->st_dev &&
		    cur_links->v[i].ino == st->st_ino)
			return &cur_links->v[i];
	return NULL;
}

static void link_add(const struct stat *st, int dir, const char *name)
{
	struct links *l = cur_links;

	if (!l || vec_reserve(l, 1))
		return;
	l->v[l->n].dev = st->st_dev;
	l->v[l->n].ino = st->st_ino;
	l->v[l->n].dir = dup(dir);
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	if (l->v[l->n].dir >= 0)
		l->n++;
}

static int copy_dir(int sdir, int ddir, int depth, char *where, size_t wsz);

static int copy_entry(int sdir, int ddir, const char *name, int depth,
		      char *where, size_t wsz)
{
	struct stat st;
	int s, d, rc;

	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISLNK(st.st_mode))
		return copy_link(sdir, ddir, name);
	if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !share_files) {
		struct link_seen *seen = link_find(&st);

		if (seen)	/* a hard link within the run: link again */
			return linkat(seen->dir, seen->name, ddir, name, 0) ?
			       -errno : 0;
		rc = copy_file(sdir, ddir, name, st.st_mode);
		if (!rc)
			link_add(&st, ddir, name);
		return rc;
	}
	if (S_ISREG(st.st_mode) && share_files &&
	    !linkat(sdir, name, ddir, name, 0))
		return 0;	/* else (another file system …) a copy */
	if (S_ISREG(st.st_mode))
		return copy_file(sdir, ddir, name, st.st_mode);
	if (!S_ISDIR(st.st_mode))
		return 0;	/* fifos, sockets, devices: not copied */
	if (mkdirat(ddir, name, 0700))
		return -errno;
	s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = (s < 0 || d < 0) ? -errno : copy_dir(s, d, depth + 1, where, wsz);
	/* folders keep setgid (it only picks the group of new files, and
	 * the copy is made as its owner, so the kernel drops it where the
	 * owner could not set it), never setuid */
	if (!rc && fchmod(d, st.st_mode & 03777))
		rc = -errno;
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	return rc;
}

static int copy_dir(int sdir, int ddir, int depth, char *where, size_t wsz)
{
	struct dirent *de;
	DIR *dir;
	int fd, rc = 0;

	if (depth > 512)
		return -ELOOP;
	fd = dup(sdir);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir)
		return -errno;
	while (!rc && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = copy_entry(sdir, ddir, de->d_name, depth, where, wsz);
		if (rc && !where[0])
			snprintf(where, wsz, "%s", de->d_name);
	}
	closedir(dir);
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
	char where[NAME_MAX + 1] = "";
	struct links links = { 0 };
	int s, rc;

	s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	cur_links = &links;
	rc = s < 0 ? -errno : copy_dir(s, d, 0, where, sizeof(where));
	cur_links = NULL;
	for (size_t i = 0; i < links.n; i++)
		close(links.v[i].dir);
	free(links.v);
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

int copy_tree_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		 struct err *e)
{
	struct fscreds c;
	int d, rc;

	d = make_top(dst, uid, gid, e);
	if (d < 0)
		return d;
	/* the owner's fsuid, fsgid and groups on this worker thread: the
	 * copy reads and creates exactly what the owner may */
	rc = fscreds_wear_user(&c, uid, gid);
	if (rc)
		rc = err_set(e, rc, "cannot take the credentials of uid %u: %s",
			     (unsigned)uid, strerror(-rc));
	else
		rc = copy_top(src, d, e);
	fscreds_restore(&c);
	close(d);
	return rc;
}

int copy_tree_fresh(const char *src, const char *dst, struct err *e)
{
	return copy_tree_as(src, dst, (uid_t)-1, (gid_t)-1, e);
}

/* Shared by copy_into: a links table around one copy. */
static int copy_with_links(int s, int d, const char *name, char *where,
			   size_t wsz)
{
	struct links links = { 0 };
	int rc;

	cur_links = &links;
	rc = name ? copy_entry(s, d, name, 0, where, wsz) :
		    copy_dir(s, d, 0, where, wsz);
	cur_links = NULL;
	for (size_t i = 0; i < links.n; i++)
		close(links.v[i].dir);
	free(links.v);
	return rc;
}

int copy_into(const char *src, const char *name, const char *dst,
	      struct err *e)
{
	char where[NAME_MAX + 1] = "";
	int s, d, rc;

	s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = (s < 0 || d < 0) ? -errno :
	     copy_with_links(s, d, name, where, sizeof(where));
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

int link_into(const char *src, const char *name, const char *dst,
	      struct err *e)
{
	int rc;

	share_files = 1;
	rc = copy_into(src, name, dst, e);
	share_files = 0;
	return rc;
}

int unshare_file(const char *path)
{
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
	rc = copy_file_as(dir, name, dir, tmp, st.st_mode);
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
