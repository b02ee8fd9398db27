// SPDX-License-Identifier: MIT
/*
 * Paths of user files: struct at holds the backing folder of a user node
 * by fd, found as the daemon under objects/ID (at_find) and opened as the
 * caller without following symlinks (at_open, over beneath.h); the object
 * that owns a node (owner_of), and which folders hold user files; the
 * node a user entry gets (user_node), and what a node that lost its
 * last name still is (the file it held, or a control file).  FUSE
 * request threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "fs_i.h"

void at_close(struct at *a)
{
	if (a->obj >= 0)
		close(a->obj);
	if (a->dir >= 0)
		close(a->dir);
	a->obj = a->dir = -1;
}

/* objects/ID of @id, opened by the daemon. */
static int obj_fd(struct mlfs *m, int64_t id)
{
	char name[32];

	snprintf(name, sizeof(name), "%lld", (long long)id);
	return beneath_open(m->objects_fd, name, O_PATH | O_DIRECTORY, 0);
}

/* Split @rel (the node's path below its root) into @a's folder and name. */
static int at_split(struct at *a, char *rel)
{
	char *slash = strrchr(rel, '/');
	const char *base = slash ? slash + 1 : rel;

	if (strlen(base) > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(a->name, base, strlen(base) + 1);
	if (slash)
		*slash = '\0';
	else
		rel[0] = '\0';
	if ((size_t)snprintf(a->path, sizeof(a->path), "%s%s%s",
			     ws_user_dir(a->root), rel[0] ? "/" : "", rel) >=
	    sizeof(a->path))
		return -ENAMETOOLONG;
	return 0;
}

/* Nameless node @ino: the backing file it held (a file unlinked or
 * replaced while the kernel still has it, open perhaps), as @a's own
 * "folder" with an empty name. */
static int at_orphan(struct mlfs *m, uint64_t ino, struct at *a)
{
	int rc = nodes_orphan(m->nodes, ino, &a->dir, &a->id, &a->root);

	a->name[0] = '\0';
	a->path[0] = '\0';
	a->orphan = !rc;
	return rc;
}

/* nodes_path, and only below a folder of user files: the table makes
 * nodes nowhere else, so any other root is a stale inode, not a path. */
static int user_path(struct mlfs *m, uint64_t ino, int64_t *id, int *root,
		     char *rel, size_t relsz)
{
	int rc = nodes_path(m->nodes, ino, id, root, rel, relsz);

	if (!rc && !(ws_root_flags(*root) & FD_DIRECTORY))
		return -ENOENT;
	return rc;
}

/* User node or object root @ino (with @child: its entry @child), as the
 * daemon: 0 or -errno. */
int at_find(struct mlfs *m, uint64_t ino, const char *child,
	    struct at *a)
{
	char rel[USER_PATH_MAX];
	size_t l;
	int rc;

	rc = user_path(m, ino, &a->id, &a->root, rel, sizeof(rel));
	if (rc == -ENOENT && !child && ino_is_user(ino))
		return at_orphan(m, ino, a);
	if (rc)
		return rc;
	l = strlen(rel);
	if (child && l + strlen(child) + 2 > sizeof(rel))
		return -ENAMETOOLONG;
	if (child)
		snprintf(rel + l, sizeof(rel) - l, "%s%s", l ? "/" : "", child);
	rc = at_split(a, rel);
	if (rc)
		return rc;
	a->obj = obj_fd(m, a->id);
	return a->obj < 0 ? a->obj : 0;
}

/* Open the head of @path below @fd that one syscall takes (PATH_MAX),
 * cut at a '/', and point *@rest past it: fd or -errno. */
static int open_head(int fd, char *path, char **rest)
{
	char *cut = path + PATH_MAX - 1;
	int nfd;

	while (cut > path && *cut != '/')
		cut--;
	if (cut == path)
		return -ENAMETOOLONG;
	*cut = '\0';
	nfd = beneath_open(fd, path, O_PATH | O_DIRECTORY, 0);
	*cut = '/';
	*rest = cut + 1;
	return nfd;
}

/* The folder of @a, with the current (the caller's) credentials; an
 * orphan holds its file already; a path longer than PATH_MAX a piece at
 * a time, each beneath the one before. */
int at_open(struct at *a)
{
	char *p = a->path;
	int fd = a->obj, nfd;

	if (a->orphan)
		return 0;
	while (strlen(p) >= PATH_MAX) {
		nfd = open_head(fd, p, &p);
		if (fd != a->obj)
			close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
	}
	a->dir = beneath_open(fd, p, O_PATH | O_DIRECTORY, 0);
	if (fd != a->obj)
		close(fd);
	return a->dir < 0 ? a->dir : 0;
}

/* Open what @a names (never a symlink): fd or -errno.  An orphan is
 * opened again through /proc, which checks the caller's rights on the
 * file as an open by name does. */
int at_openat(const struct at *a, int flags, mode_t mode)
{
	char proc[32];
	int fd;

	if (a->orphan) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a->dir);
		fd = open(proc, (flags & ~O_NOFOLLOW) | O_CLOEXEC, mode);
	} else {
		fd = openat(a->dir, a->name[0] ? a->name : ".",
			    flags | O_NOFOLLOW | O_CLOEXEC, mode);
	}
	return fd < 0 ? -errno : fd;
}

/* The flags of an *at() call on what @a names: AT_EMPTY_PATH for the
 * folder itself (an object's root, an orphan). */
int at_flags(const struct at *a)
{
	return AT_SYMLINK_NOFOLLOW | (a->name[0] ? 0 : AT_EMPTY_PATH);
}

/* lstat of what @a names. */
int at_stat(const struct at *a, struct stat *st)
{
	if (fstatat(a->dir, a->name, st, at_flags(a)))
		return -errno;
	return 0;
}

/* A path for code that takes one (backend/): the held folder through
 * /proc, which pins it, and the name. */
void at_proc_path(const struct at *a, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d%s%s", a->dir,
		 a->name[0] ? "/" : "", a->name);
}

/* Does @parent hold user files (an object folder with files, outputs/,
 * or a user folder)? */
int holds_user_files(uint64_t parent, const struct obj *o)
{
	if (ino_is_user(parent))
		return 1;
	if (!ino_is_obj(parent))
		return 0;
	return ws_holds_user_files(o, ino_file(parent));
}

/* The object that owns @ino (any node below an object).  0 or -ENOENT. */
int owner_of(struct mlfs *m, uint64_t ino, struct obj *o, int *root)
{
	char rel[8];
	int64_t id;
	int r, rc;

	if (ino_is_obj(ino)) {
		*root = ino_file(ino);
		return ws_get(m->ws, ino_obj(ino), o);
	}
	if (!ino_is_user(ino))
		return -ENOENT;
	rc = user_path(m, ino, &id, &r, rel, sizeof(rel));
	if (rc && rc != -ENAMETOOLONG)
		return rc;
	if (rc) {
		char big[USER_PATH_MAX];

		rc = user_path(m, ino, &id, &r, big, sizeof(big));
		if (rc)
			return rc;
	}
	*root = r;
	return ws_get(m->ws, id, o);
}

/*
 * The node for user entry @name of @parent, whose backing file has @st.
 * A file with several links among an object's own files shares one node
 * with its other names (one kernel inode, as on a local disk); not below
 * outputs/, which runs change behind our back, nor among files shared
 * with other objects (a model version's), which a write may unshare.
 * Its ino, 0 on ENOMEM.
 */
uint64_t user_node(struct mlfs *m, uint64_t parent, const char *name,
		   const struct stat *st)
{
	struct obj o;
	uint64_t ino;
	int root;

	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 &&
	    !owner_of(m, parent, &o, &root) && root == F_DIR &&
	    !ws_files_shared(&o))
		return nodes_get_linked(m->nodes, parent, name, st->st_ino,
					o.id, root);
	ino = nodes_get(m->nodes, parent, name);
	if (ino)
		nodes_set_backing(m->nodes, ino, st->st_ino);
	return ino;
}

/*
 * Before @a's name goes (unlink, rename over it): its file, held by an
 * O_PATH fd, when that is its last name and the kernel holds its node --
 * it may be open, and a local disk keeps an open file.  The fd or -1.
 * As the caller, after at_open.
 */
int at_hold(struct mlfs *m, uint64_t parent, const struct at *a)
{
	struct stat st;
	int fd;

	if (!nodes_held(m->nodes, parent, a->name))
		return -1;
	fd = at_openat(a, O_PATH, 0);
	if (fd >= 0 && (fstat(fd, &st) || st.st_nlink > 1)) {
		/* another name keeps it (a node per name: outputs/) */
		close(fd);
		fd = -1;
	}
	return fd < 0 ? -1 : fd;
}

/* The inode @ino answers as: a control file for a user node whose name
 * a setting took by rename (the kernel may still hold it under the
 * setting's name), else itself. */
uint64_t real_ino(struct mlfs *m, uint64_t ino)
{
	uint64_t alias = ino_is_user(ino) ? nodes_alias(m->nodes, ino) : 0;

	return alias ? alias : ino;
}

/* Where generated file @file of @o (a log, metrics) lies on disk. */
int disk_file_path(struct mlfs *m, const struct obj *o, int file,
		   char *path)
{
	switch (file) {
	case F_LOG:
		ws_obj_path(m->ws, o->id, RUN_LOG, path);
		return 0;
	case F_METRICS:
		ws_obj_path(m->ws, o->id, RUN_METRICS, path);
		return 0;
	case F_STATS:
		ws_obj_path(m->ws, o->id, "stats", path);
		return 0;
	case F_PARAMS:
		ws_obj_path(m->ws, o->id, RUN_PARAMS, path);
		return 0;
	case F_METRICS_SVG:
		ws_obj_path(m->ws, o->id, RUN_PLOT, path);
		return 0;
	default:
		return -ENOENT;
	}
}
