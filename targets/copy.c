// SPDX-License-Identifier: MIT
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;
static __thread int chown_err;

static int chown_entry(const char *path, const struct stat *sb, int flag,
		       struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) && !chown_err)
		chown_err = -errno;
	return 0;
}

int chown_tree(const char *path, uid_t uid, gid_t gid)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int rc;

	/* nftw has no user argument: one chown at a time */
	pthread_mutex_lock(&lock);
	chown_uid = uid;
	chown_gid = gid;
	chown_err = 0;
	rc = nftw(path, chown_entry, 32, FTW_PHYS) ? -errno : chown_err;
	pthread_mutex_unlock(&lock);
	return rc;
}

int remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS))
		return -errno;
	return 0;
}

/* Copy file @sname of folder @sdir into a new file @dname of @ddir. */
static int copy_file_as(int sdir, const char *sname, int ddir,
			const char *dname, mode_t mode)
{
	int in, out, rc = 0;
	ssize_t n;

	in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     mode & 07777);
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
	struct link_seen *v;

	if (!l)
		return;
	if (l->n == l->cap) {
		v = realloc(l->v, (l->cap ? l->cap * 2 : 16) * sizeof(*v));
		if (!v)
			return;
		l->v = v;
		l->cap = l->cap ? l->cap * 2 : 16;
	}
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
	if (!rc && fchmod(d, st.st_mode & 07777))
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

int copy_tree_fresh(const char *src, const char *dst, struct err *e)
{
	char where[NAME_MAX + 1] = "", out[PATH_MAX];
	struct links links = { 0 };
	int s, d, rc;

	rc = remove_tree(dst);
	if (rc)
		return err_set(e, rc, "cannot clear the old working copy: %s",
			       strerror(-rc));
	if (mkdir(dst, 0755))
		return err_set(e, -errno, "cannot make the working copy: %s",
			       strerror(errno));
	s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cur_links = &links;
	rc = (s < 0 || d < 0) ? -errno : copy_dir(s, d, 0, where, sizeof(where));
	cur_links = NULL;
	for (size_t i = 0; i < links.n; i++)
		close(links.v[i].dir);
	free(links.v);
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	if (rc)
		return err_set(e, rc, "cannot copy the run's files%s%s: %s",
			       where[0] ? " at " : "", where, strerror(-rc));
	snprintf(out, sizeof(out), "%s/outputs", dst);
	if (mkdir(out, 0755) && errno != EEXIST)
		return err_set(e, -errno, "cannot make outputs/: %s",
			       strerror(errno));
	return 0;
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
