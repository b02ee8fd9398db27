/* SPDX-License-Identifier: MIT */
/*
 * The entries of one open folder, for the walks of lib/ (copy.c's copies,
 * chown and rm -r, digest.c's manifest): one loop, with the checks every
 * walk needs.  Any thread.
 */
#ifndef MLFS_WALK_H
#define MLFS_WALK_H

/* The deepest folder a walk enters: deeper is -ELOOP (each level holds
 * a descriptor, and no tree of ours is that deep but a hostile one). */
#define WALK_DEPTH_MAX	512

/* Entry @name of the open folder @dir: 0 to go on; anything else ends
 * the walk of @dir, and dir_each returns it. */
typedef int (*dir_each_fn)(int dir, const char *name, void *arg);

/*
 * dir_each - call @fn for each entry of the open folder @dir but "." and
 * "..", in readdir's order, @dir's own descriptor passed on: @fn names the
 * entry relative to it (fstatat, openat with O_NOFOLLOW), never by path,
 * so that a folder of the tree swapped for a symlink meanwhile is not
 * followed; nothing is followed or stat'ed here.  The folder is read from
 * its start through a dup of @dir (which shares @dir's offset): @dir stays
 * open and may be walked again.  @depth is @dir's depth in the walk (the
 * top's is 0).
 * Returns 0, what @fn returned first that was not 0, -ELOOP (@depth past
 * WALK_DEPTH_MAX: @fn not called) or -errno (the folder cannot be read).
 */
int dir_each(int dir, int depth, dir_each_fn fn, void *arg);

#endif
