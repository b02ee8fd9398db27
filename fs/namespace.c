// SPDX-License-Identifier: MIT
/*
 * Making and removing names: CREATE, MKDIR (objects, model versions, user
 * folders), MKNOD (FIFOs, sockets, empty files; no devices), UNLINK,
 * RMDIR (objects through the backend, user entries as their caller),
 * RENAME (objects, user entries, an editor's rename onto a setting), LINK,
 * SYMLINK, READLINK.  FUSE request threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "creds.h"
#include "fs_i.h"

/* Refusal @rc, with one sentence in @o's `error` when it has one:
 * "<kind> '<name>' @why". */
static int explain(struct mlfs *m, const struct obj *o, int rc,
		   const char *why)
{
	struct err e;

	if (!ws_file_by_id(o->kind, F_ERROR))
		return rc;
	err_set(&e, rc, "%s '%s' %s", kind_name(o->kind), o->name, why);
	ws_refuse(m->ws, o->id, rc, &e);
	return rc;
}

/*
 * Where can user entry @name be made below @parent?  Fills @a (found,
 * not yet opened).  -EPERM where only folders or control files belong (the
 * root, runs/ and the other top folders: as mkdir of a file name there;
 * a target's folder), -EEXIST for control-file names, -EROFS when frozen.
 * Entries are made as their caller, who owns them (and the kernel checks
 * the folder's mode).
 */
static int user_target(struct mlfs *m, uint64_t parent, const char *name,
		       struct at *a, struct obj *o)
{
	int root, rc;

	if (!ino_is_obj(parent) && !ino_is_user(parent))
		return -EPERM;
	rc = owner_of(m, parent, o, &root);
	if (rc)
		return rc;
	if (ino_is_obj(parent) && !holds_user_files(parent, o))
		return explain(m, o, -EPERM, "holds only its control files:"
			       " files go into a run or a deployment folder");
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    ws_file_by_name(o->kind, name))
		return -EEXIST;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	rc = user_writable(m, o, root);
	if (rc)
		return rc;
	return at_find(m, parent, name, a);
}

/*
 * The caller's umask (FUSE_CAP_DONT_MASK: the kernel passes it instead of
 * applying it), applied by the backing file system as on a local disk (a
 * default ACL there wins over it, as it does there).  A umask is shared
 * by the threads of a process: each request thread takes its own copy
 * once (unshare(CLONE_FS)), so that one caller's umask reaches neither
 * another request nor the daemon's own files, and it is set back as soon
 * as the entry is made.  Without a copy (unshare refused), the mode is
 * masked here, and the daemon's umask masks it once more.
 */
static __thread int own_umask;	/* 1: this thread's own; -1: shared */

static mode_t umask_enter(fuse_req_t req, mode_t *mode)
{
	mode_t um = fuse_req_ctx(req)->umask;

	if (!own_umask)
		own_umask = unshare(CLONE_FS) ? -1 : 1;
	if (own_umask < 0) {
		*mode &= ~um;
		return (mode_t)-1;
	}
	return umask(um);
}

static void umask_leave(mode_t *old)
{
	if (*old != (mode_t)-1)
		umask(*old);
}

/* In a scope: the caller's umask, and *@mode masked when it must be. */
#define WITH_UMASK(req, mode) \
	mode_t caller_umask__ __attribute__((cleanup(umask_leave))) = \
		umask_enter(req, mode)

/* Create user file @a as @req's caller: the fd or -errno. */
static int create_as_caller(fuse_req_t req, struct at *a, int flags,
			    mode_t mode)
{
	AS_CALLER(req);
	int rc = at_open(a);

	if (rc)
		return rc;
	WITH_UMASK(req, &mode);
	return at_openat(a, (flags | O_CREAT) & ~O_NOCTTY, mode);
}

/* The entry of a file just created at @fd: 0 or -ENOMEM. */
static int created_entry(struct mlfs *m, uint64_t parent, const char *name,
			 int fd, struct fuse_entry_param *e)
{
	e->ino = nodes_get(m->nodes, parent, name);
	if (!e->ino || fstat(fd, &e->attr))
		return -ENOMEM;
	nodes_set_backing(m->nodes, e->ino, e->attr.st_ino);
	e->attr.st_ino = user_st_ino(e->attr.st_ino);
	e->attr.st_blksize = USER_BLKSIZE;
	e->attr_timeout = e->entry_timeout = m->timeout;
	return 0;
}

void mlfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = { 0 };
	struct mlfs *m = M(req);
	struct obj o;
	struct fh *h;
	int rc, fd;
	AT(a);

	rc = user_target(m, parent, name, &a, &o);
	fd = rc ? rc : create_as_caller(req, &a, fi->flags, mode);
	h = fd >= 0 ? fh_new(FH_FD, o.id, 0) : NULL;
	rc = fd < 0 ? fd : !h ? -ENOMEM : 0;
	if (h)
		h->fd = fd;
	else if (fd >= 0)
		close(fd);
	if (!rc)
		rc = created_entry(m, parent, name, fd, &e);
	if (rc) {
		fh_free(h);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->keep_cache = 1;
	if (m->no_open) {
		/* no OPEN, no RELEASE: writes find the file by inode */
		fh_free(h);
		h = NULL;
	}
	fi->fh = (uintptr_t)h;
	nodes_ref(m->nodes, e.ino);
	if (fuse_reply_create(req, &e, fi)) {
		nodes_forget(m->nodes, e.ino, 1);
		fh_free(h);
	}
}

/* Make @a as @req's caller: symlink @link, or (@mode's type) a FIFO,
 * socket or empty file, or else a folder. */
static int make_as_caller(fuse_req_t req, struct at *a, mode_t mode,
			  const char *link)
{
	AS_CALLER(req);
	int rc = at_open(a);

	if (rc)
		return rc;
	if (link)
		return symlinkat(link, a->dir, a->name) ? -errno : 0;
	WITH_UMASK(req, &mode);
	if (mode & S_IFMT)
		rc = mknodat(a->dir, a->name, mode, 0);
	else
		rc = mkdirat(a->dir, a->name, mode);
	return rc ? -errno : 0;
}

/* A user folder, symlink or node @name in @parent: made and answered. */
static int make_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		     const char *name, mode_t mode, const char *link)
{
	struct ctl_view v = { .user = 1 };
	struct obj o;
	uint64_t ino;
	AT(a);
	int rc;

	rc = user_target(m, parent, name, &a, &o);
	if (!rc)
		rc = make_as_caller(req, &a, mode, link);
	if (!rc)
		rc = lookup_user(req, m, parent, name, &ino, &v.ust);
	if (!rc)
		rc = reply_entry(req, m, ino, &v);
	return rc;
}

void mlfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct mlfs *m = M(req);
	struct err e = { { 0 } };
	struct obj o;
	int kind, rc;

	kind = top_ino_kind(parent);
	if (kind) {
		rc = ws_create(m->ws, kind, 0, name, ctx->uid, ctx->gid, &o, &e);
		runs_page_stale(m);	/* runs/index.html lists it */
	} else if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(parent), &o) && ws_child_kind(&o)) {
		rc = ws_create(m->ws, ws_child_kind(&o), o.id, name, ctx->uid,
			       ctx->gid, &o, &e);
	} else if (parent == INO_ROOT) {
		rc = -EPERM;
	} else {
		rc = make_user(req, m, parent, name, mode & 07777, NULL);
		if (!rc)
			return;
	}
	if (!rc)
		rc = reply_entry(req, m, obj_ino(o.id, F_DIR), NULL);
	if (rc) {
		if (e.msg[0])
			log_debug("mkdir %s: %s", name, e.msg);
		fuse_reply_err(req, -rc);
	}
}

/*
 * mknod(2) among user files: FIFOs and sockets (and empty files), as
 * their caller, who needs no privilege for them.  Device nodes are
 * refused: through a workspace they would give a user's runs a door to
 * the machine's devices that a run folder does not need.
 */
void mlfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, dev_t rdev)
{
	struct mlfs *m = M(req);
	struct obj o;
	int root, rc;

	(void)rdev;
	switch (mode & S_IFMT) {
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFREG:
		rc = make_user(req, m, parent, name, mode, NULL);
		break;
	case S_IFCHR:
	case S_IFBLK:
		rc = ino_is_user(parent) || ino_is_obj(parent) ?
		     owner_of(m, parent, &o, &root) : -EPERM;
		rc = rc ? -EPERM : explain(m, &o, -EPERM, "takes no device"
					   " node among its files (FIFOs and"
					   " sockets it takes)");
		break;
	default:
		rc = -EINVAL;
	}
	if (rc)
		fuse_reply_err(req, -rc);
}

/* May user entries below @parent be removed?  Draft or finished objects.
 * Fills @a (found, not yet opened). */
static int user_removable(struct mlfs *m, uint64_t parent, const char *name,
			  struct at *a)
{
	struct obj o;
	int root, rc;

	rc = owner_of(m, parent, &o, &root);
	if (rc)
		return rc;
	if (!ws_user_removable(&o, root))
		return user_writable(m, &o, F_DIR);
	return at_find(m, parent, name, a);
}

/* Remove user entry @name of @parent (@flags: AT_REMOVEDIR) as @req's
 * caller. */
static int remove_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		       const char *name, int flags)
{
	int rc, held = -1;
	AT(a);

	rc = user_removable(m, parent, name, &a);
	if (!rc) {
		AS_CALLER(req);
		rc = at_open(&a);
		if (!rc && !flags)
			held = at_hold(m, parent, &a);
		if (!rc && unlinkat(a.dir, a.name, flags))
			rc = -errno;
	}
	if (!rc)
		nodes_unlink(m->nodes, parent, name, held);
	else if (held >= 0)
		close(held);
	return rc;
}

void mlfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct file_desc *fd;
	struct mlfs *m = M(req);
	struct obj o;
	int rc;

	if (parent < INO_FIXED_MAX) {
		fuse_reply_err(req, parent == INO_ROOT ||
			       is_page(parent, name) ?
			       EPERM : EISDIR);
		return;
	}
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    !ws_get(m->ws, ino_obj(parent), &o) &&
	    (fd = ws_file_by_name(o.kind, name))) {
		/* rm -r of an object folder: nothing changes; refused while
		 * the object is active, so that rm -r stops early */
		rc = fd->flags & FD_DIRECTORY ? -EISDIR :
		     ws_may_unlink_ctl(m->ws, &o);
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_err(req, -remove_user(req, m, parent, name, 0));
}

void mlfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct file_desc *fd;
	struct mlfs *m = M(req);
	struct err e = { { 0 } };
	uint64_t ino;
	struct obj o;
	int rc;

	if (parent == INO_ROOT) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (top_ino_kind(parent) || (ino_is_obj(parent) &&
	    ino_file(parent) == F_DIR && !ws_get(m->ws, ino_obj(parent), &o) &&
	    ws_child_kind(&o))) {
		rc = do_lookup(req, m, parent, name, &ino, NULL);
		if (!rc)
			rc = ws_remove(m->ws, ino_obj(ino), &e);
		runs_page_stale(m);
		if (!rc)
			wait_sweep(m);	/* readers of its wait: ENOENT */
		if (rc && e.msg[0])
			log_debug("rmdir %s: %s", name, e.msg);
		fuse_reply_err(req, -rc);
		return;
	}
	if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
	    !ws_get(m->ws, ino_obj(parent), &o) &&
	    (fd = ws_file_by_name(o.kind, name))) {
		rc = ws_may_rmdir_file(m->ws, &o, fd->file);
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_err(req, -remove_user(req, m, parent, name, AT_REMOVEDIR));
}

/* The bytes of user file @a, read as @req's caller: malloc'd, or NULL
 * with *rc set. */
static char *slurp_as_caller(fuse_req_t req, struct at *a, ssize_t *len,
			     int *rc)
{
	AS_CALLER(req);
	struct stat st;
	char *buf;
	int f;

	*rc = at_open(a);
	/* O_NONBLOCK: a FIFO must not hold this thread until a writer
	 * comes; only a regular file's bytes make a setting */
	f = *rc ? *rc : at_openat(a, O_RDONLY | O_NONBLOCK, 0);
	if (f < 0) {
		*rc = f;
		return NULL;
	}
	*rc = fstat(f, &st) ? -errno : !S_ISREG(st.st_mode) ? -EINVAL :
	      st.st_size > SETTING_MAX ? -EFBIG : 0;
	buf = *rc ? NULL : malloc(st.st_size + 1);
	*len = buf ? read(f, buf, st.st_size) : -1;
	close(f);
	if (!*rc && *len < 0)
		*rc = -EIO;
	if (*rc) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* An editor's rename-over of a setting: take the file's bytes. */
static int rename_onto_setting(fuse_req_t req, struct mlfs *m,
			       uint64_t parent, const char *name,
			       const struct obj *o, const struct file_desc *fd)
{
	ssize_t n;
	char *buf;
	AT(a);
	int rc;

	if (!(fd->flags & FD_SETTING))
		return -EACCES;
	rc = user_removable(m, parent, name, &a);
	if (rc)
		return rc;
	buf = slurp_as_caller(req, &a, &n, &rc);
	if (rc)
		return rc;
	rc = ws_setting_replace(m->ws, o->id, fd->file, buf, n);
	free(buf);
	if (rc)
		return rc;
	{
		AS_CALLER(req);
		unlinkat(a.dir, a.name, 0);
	}
	/* the kernel moves the source's inode under the setting's name
	 * until the notifier drops that name: meanwhile it answers as the
	 * setting, so that a stat or open of the name never fails */
	nodes_redirect(m->nodes, parent, name, obj_ino(o->id, fd->file));
	/* the setting's old pages first: once the name is dropped, a
	 * lookup finds the setting's own inode again, and an open of it
	 * read what a reader had cached before the replace (17, once) */
	inval_inode(m, obj_ino(o->id, fd->file), 0);
	inval_name(m, obj_ino(o->id, F_DIR), fd->name);
	return 0;
}

static int rename_object(fuse_req_t req, struct mlfs *m, uint64_t parent,
			 const char *name, const char *newname)
{
	struct err e = { { 0 } };
	uint64_t ino;
	int rc;

	rc = do_lookup(req, m, parent, name, &ino, NULL);
	if (!rc)
		rc = ws_rename(m->ws, ino_obj(ino), newname, &e);
	runs_page_stale(m);
	if (rc && e.msg[0])
		log_debug("rename %s: %s", name, e.msg);
	return rc;
}

/* Open both folders of a link as @req's caller, then link. */
static int link_as_caller(fuse_req_t req, struct at *from, struct at *to)
{
	AS_CALLER(req);
	int rc = at_open(from);

	if (!rc)
		rc = at_open(to);
	if (rc)
		return rc;
	if (linkat(from->dir, from->name, to->dir, to->name, 0))
		return -errno;
	return 0;
}

/*
 * The same for a rename into @newparent.  *@held: the file a replaced
 * name held, if the kernel may have it open (at_hold), else -1.
 */
static int rename_as_caller(fuse_req_t req, struct mlfs *m,
			    uint64_t newparent, struct at *from, struct at *to,
			    unsigned flags, int *held)
{
	AS_CALLER(req);
	int rc = at_open(from);

	*held = -1;
	if (!rc)
		rc = at_open(to);
	if (!rc && !(flags & RENAME_EXCHANGE))
		*held = at_hold(m, newparent, to);
	if (!rc && renameat2(from->dir, from->name, to->dir, to->name, flags))
		rc = -errno;
	if (rc && *held >= 0) {
		close(*held);
		*held = -1;
	}
	return rc;
}

static int rename_user(fuse_req_t req, struct mlfs *m, uint64_t parent,
		       const char *name, uint64_t newparent,
		       const char *newname, unsigned flags)
{
	int rc, held;
	struct obj no;
	AT(from);
	AT(to);

	rc = user_removable(m, parent, name, &from);
	if (!rc)
		rc = user_target(m, newparent, newname, &to, &no);
	if (!rc && from.id != no.id)
		rc = -EXDEV;
	if (!rc)
		rc = rename_as_caller(req, m, newparent, &from, &to, flags,
				      &held);
	if (!rc && (flags & RENAME_EXCHANGE))
		nodes_exchange(m->nodes, parent, name, newparent, newname);
	else if (!rc)
		nodes_move(m->nodes, parent, name, newparent, newname, held);
	return rc;
}

void mlfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname,
		 unsigned int flags)
{
	const struct file_desc *fd;
	struct mlfs *m = M(req);
	struct obj o;
	int rc;

	if (parent == INO_ROOT || newparent == INO_ROOT) {
		rc = -EPERM;
	} else if (top_ino_kind(parent) || top_ino_kind(newparent)) {
		/* an object never replaces another (EEXIST): that is
		 * RENAME_NOREPLACE already; only EXCHANGE is refused */
		rc = parent != newparent ? -EXDEV :
		     (flags & ~RENAME_NOREPLACE) ? -EINVAL :
		     rename_object(req, m, parent, name, newname);
	} else if (ino_is_obj(parent) && ino_file(parent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(parent), &o) &&
		   ws_file_by_name(o.kind, name)) {
		rc = -EACCES;	/* control files stay where they are */
	} else if (ino_is_obj(newparent) && ino_file(newparent) == F_DIR &&
		   !ws_get(m->ws, ino_obj(newparent), &o) &&
		   (fd = ws_file_by_name(o.kind, newname))) {
		rc = flags ? -EINVAL :
		     rename_onto_setting(req, m, parent, name, &o, fd);
	} else {
		rc = rename_user(req, m, parent, name, newparent, newname,
				 flags);
	}
	fuse_reply_err(req, -rc);
}

void mlfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		  const char *name)
{
	int rc = make_user(req, M(req), parent, name, 0, link);

	if (rc)
		fuse_reply_err(req, -rc);
}

/* The node of @newname, a new name of node @ino among @o's files below
 * @root: @ino itself where one node takes every name (see user_node). */
static uint64_t linked_node(struct mlfs *m, uint64_t ino, uint64_t newparent,
			    const char *newname, const struct obj *o,
			    int root)
{
	if (root == F_DIR && !ws_files_shared(o) &&
	    !nodes_link(m->nodes, ino, newparent, newname, o->id, root))
		return ino;
	return nodes_get(m->nodes, newparent, newname);
}

void mlfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	       const char *newname)
{
	struct mlfs *m = M(req);
	struct obj no;
	AT(from);
	AT(to);
	int rc;

	rc = ino_is_user(ino) ? at_find(m, ino, NULL, &from) : -EPERM;
	if (!rc)
		rc = user_target(m, newparent, newname, &to, &no);
	if (!rc && from.id != no.id)
		rc = -EXDEV;
	if (!rc)
		rc = link_as_caller(req, &from, &to);
	if (!rc)	/* the first name's link count changed (attrs only) */
		inval_inode(m, ino, -1);
	if (!rc)
		rc = reply_entry(req, m, linked_node(m, ino, newparent, newname,
						     &no, to.root), NULL);
	if (rc)
		fuse_reply_err(req, -rc);
}

void mlfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[PATH_MAX];
	ssize_t n = -EINVAL;
	AT(a);

	if (ino_is_user(ino)) {
		n = at_find(M(req), ino, NULL, &a);
		if (!n) {
			AS_CALLER(req);
			n = at_open(&a);
			if (!n && (n = readlinkat(a.dir, a.name, target,
						  sizeof(target) - 1)) < 0)
				n = -errno;
		}
	}
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}
