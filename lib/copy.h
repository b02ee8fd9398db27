/* SPDX-License-Identifier: MIT */
/* Copying a run's files into a working copy. */
#ifndef MLFS_COPY_H
#define MLFS_COPY_H

#include <sys/types.h>

#include "err.h"

/*
 * copy_tree_fresh - make @dst a copy of the tree @src: regular files
 * copied (copy_file_range), symlinks copied as links (never followed),
 * folders recreated, modes kept but set-id bits (a folder keeps setgid).
 * A leftover @dst (a copy half made before a crash) is removed first.
 * Also makes @dst/outputs.  @dst is 0755, the daemon's.
 * 0 or -errno with a sentence.
 */
int copy_tree_fresh(const char *src, const char *dst, struct err *e);

/*
 * copy_tree_as - copy_tree_fresh made as @uid:@gid when the daemon is root
 * (and @uid is not): @dst is made by the daemon, given to @uid (fchown)
 * with mode 0700, and everything in it is read and created with the
 * owner's fsuid, fsgid and groups on this thread only, so that the kernel
 * checks the owner's rights and a file of the copy is never anyone else's.
 * @uid (uid_t)-1: as copy_tree_fresh.  0 or -errno with a sentence.
 */
int copy_tree_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		 struct err *e);

/*
 * copy_files_as - copy everything in folder @src into the existing folder
 * @dst as copy_tree_fresh copies, read and made with the fsuid, fsgid and
 * groups of @uid:@gid when the daemon is root (so a file @uid may not
 * read is not copied: the copy fails), and without making outputs/.
 * @uid (uid_t)-1: with the daemon's rights.  0 or -errno with a sentence.
 */
int copy_files_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		  struct err *e);

/*
 * copy_input_as - a copy of what @src names, looked up (links followed)
 * and read with the fsuid, fsgid and groups of @uid:@gid when the daemon
 * is root, so that it holds only what @uid may read: a folder's content
 * into @dst, or a regular file as @dst/BASENAME.  @dst is made anew as
 * copy_tree_as makes it, without outputs/ (a run's input, not a working
 * copy).  @uid (uid_t)-1: with the daemon's rights.  0 (a folder), 1 (a
 * file) or -errno with a sentence naming @src.
 */
int copy_input_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		  struct err *e);

/*
 * copy_into - copy entry @name of folder @src (a file or a whole tree),
 * or with @name NULL everything in @src, into the existing folder @dst,
 * as copy_tree_fresh copies.  0 or -errno with a sentence.
 */
int copy_into(const char *src, const char *name, const char *dst,
	      struct err *e);

/*
 * link_into - as copy_into, but regular files become new names (hard
 * links) of the same inodes, copied only where a link cannot be made.
 * Instant, and no second copy of the bytes: for registering outputs as a
 * model version (which unshare_file parts before it is written).
 */
int link_into(const char *src, const char *name, const char *dst,
	      struct err *e);

/* The regular file @path, if it has other names, becomes a copy of its
 * own (same bytes, mode and owner), so that writing it changes only it.
 * 0 or -errno. */
int unshare_file(const char *path);

/* chown -R @path to @uid:@gid without following symlinks (by folder fds:
 * a folder swapped for a symlink meanwhile is not followed either), and
 * no file in it keeps a set-id bit (files are changed through fds opened
 * O_NOFOLLOW).  @uid (uid_t)-1: only the bits.  0 or -errno. */
int chown_tree(const char *path, uid_t uid, gid_t gid);

/* rm -r @path without following symlinks (by folder fds, as chown_tree).
 * 0 or -errno. */
int remove_tree(const char *path);

#endif
