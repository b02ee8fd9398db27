/* SPDX-License-Identifier: MIT */
/*
 * Inode numbers.  Everything the daemon generates has a computed inode
 * number, so it needs no table and no memory per node:
 *
 *   1..7                      the root and the fixed top-level entries
 *   (object id << 8) | file   an object's folder (F_DIR) and control files
 *     | (version << 40)       generated files: a version of their bytes
 *   USER_BIT | n              a user's file or folder below an object
 *
 * A generated file (status, info.json, ctl …) is a new inode each time its
 * bytes change: the version is a hash of them.  The kernel caches an
 * inode's size and pages apart and may pair a size it learnt before a
 * change with bytes it reads after; an inode whose bytes never change
 * cannot be read torn.  A change drops the name's cached entry, and the
 * next lookup finds the new version.  Object ids stay below 2^32.
 *
 * Object ids come from SQLite AUTOINCREMENT and are never reused, so a
 * removed object's numbers never alias a new one.  User nodes live in a
 * table keyed by ino and by each of their names (parent + name), with the
 * kernel's lookup count; they are mapped to paths under the state dir on
 * use (no file descriptor per node).  A node is one kernel inode: a
 * hard-linked user file has one node for all its names (node.c says why);
 * one that lost its last name while the kernel holds it (a file open
 * while unlinked or replaced) keeps its backing file by fd until it is
 * forgotten.
 */
#ifndef MLFS_NODE_H
#define MLFS_NODE_H

#include <limits.h>
#include <stdint.h>

#include "../backend/objects.h"

enum {
	INO_ROOT = 1,
	INO_README,
	INO_EVENTS,
	INO_TARGETS,
	INO_RUNS,
	INO_DEPLOYMENTS,
	INO_MODELS,
	INO_ENDPOINTS,
	INO_ENVIRONMENTS,
	INO_RUNS_PAGE,		/* runs/index.html */
	INO_FIXED_MAX,
};

#define USER_BIT	(1ULL << 62)

#define VER_SHIFT	40
#define VER_MASK	((1U << 22) - 1)

static inline uint64_t obj_ino(int64_t id, int file)
{
	return ((uint64_t)id << 8) | (unsigned)file;
}

/* Version @ver of generated file @file of object @id. */
static inline uint64_t obj_ino_v(int64_t id, int file, unsigned ver)
{
	return obj_ino(id, file) | ((uint64_t)(ver & VER_MASK) << VER_SHIFT);
}

static inline int ino_is_obj(uint64_t ino)
{
	return !(ino & USER_BIT) && ino >= 256;
}

static inline int64_t ino_obj(uint64_t ino)
{
	return (int64_t)((ino & ((1ULL << VER_SHIFT) - 1)) >> 8);
}

static inline unsigned ino_ver(uint64_t ino)
{
	return (unsigned)(ino >> VER_SHIFT) & VER_MASK;
}

/* The inode number without its version (what stat shows). */
static inline uint64_t ino_base(uint64_t ino)
{
	return ino & ~((uint64_t)VER_MASK << VER_SHIFT);
}

static inline int ino_file(uint64_t ino)
{
	return (int)(ino & 0xff);
}

static inline int ino_is_user(uint64_t ino)
{
	return (ino & USER_BIT) != 0;
}

/* The top folder of @kind (runs/ …), or 0. */
uint64_t kind_top_ino(int kind);
/* The kind whose objects live in top folder @ino, or K_NONE. */
int top_ino_kind(uint64_t ino);
/* The inode of the page generated among @kind's objects in its top
 * folder (runs/index.html; its name is the backend's), or 0. */
uint64_t kind_page_ino(int kind);
/* The kind whose page is inode @ino, or K_NONE. */
int page_ino_kind(uint64_t ino);

/* ---- user nodes ------------------------------------------------------ */

struct node_table;

int nodes_init(struct node_table **tp);
void nodes_free(struct node_table *t);

/*
 * nodes_get - the user node for @name in folder @parent (an object folder,
 * an outputs folder or another user node), created with lookup count 0 if
 * missing.  Returns its inode number, 0 on ENOMEM.
 */
uint64_t nodes_get(struct node_table *t, uint64_t parent, const char *name);
/* The user node for @name in folder @parent, 0 when the table has none
 * (never made). */
uint64_t nodes_find(struct node_table *t, uint64_t parent, const char *name);
/* Count one more kernel reference (a successful lookup reply). */
void nodes_ref(struct node_table *t, uint64_t ino);
/* The kernel forgot @n references; the node goes at zero. */
void nodes_forget(struct node_table *t, uint64_t ino, uint64_t n);
/*
 * nodes_get_linked - the node for @name in @parent, a name of a file with
 * several links (backing inode @backing) among the files of object @obj
 * below @root: the node of its other names if the table has one, so that
 * the kernel sees one inode.  Its ino, 0 on ENOMEM.
 */
uint64_t nodes_get_linked(struct node_table *t, uint64_t parent,
			  const char *name, uint64_t backing, int64_t obj,
			  int root);
/* Node @ino got the name @name in @parent (LINK) among the files of @obj
 * below @root.  0, -ENOENT (no such node, or no name left), -ENOMEM. */
int nodes_link(struct node_table *t, uint64_t ino, uint64_t parent,
	       const char *name, int64_t obj, int root);
/* Is @name in @parent its node's last name, and does the kernel hold the
 * node (it may be open)? */
int nodes_held(struct node_table *t, uint64_t parent, const char *name);
/*
 * The name @name in @parent no longer maps to its node (unlink).  @fd
 * (O_PATH of the backing file, or -1) is taken: kept by the node if that
 * was its last name and the kernel holds it, else closed.
 */
void nodes_unlink(struct node_table *t, uint64_t parent, const char *name,
		  int fd);
/* Move a name (rename).  A node at the target loses that name, and takes
 * @fd as nodes_unlink does; two names of one node both stay. */
void nodes_move(struct node_table *t, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, int fd);
/* Swap two names (RENAME_EXCHANGE). */
void nodes_exchange(struct node_table *t, uint64_t parent, const char *name,
		    uint64_t newparent, const char *newname);
/* The name @name in @parent became control file @alias (a rename onto a
 * setting): its node, while the kernel holds it, answers as @alias. */
void nodes_redirect(struct node_table *t, uint64_t parent, const char *name,
		    uint64_t alias);
/* The control file nameless node @ino answers as, or 0. */
uint64_t nodes_alias(struct node_table *t, uint64_t ino);
/* The backing file of nameless node @ino: a new fd (O_PATH) and the
 * object and root it was below; 0, or -ENOENT when it has none. */
int nodes_orphan(struct node_table *t, uint64_t ino, int *fd, int64_t *obj,
		 int *root);

/* Record the backing file's inode number of user node @ino. */
void nodes_set_backing(struct node_table *t, uint64_t ino, uint64_t backing);
/* The user nodes (but @except) whose backing file is @backing (hard
 * links), at most @max into @out; returns how many. */
int nodes_by_backing(struct node_table *t, uint64_t backing, uint64_t except,
		     uint64_t *out, int max);

/*
 * The longest path of a user node below its object's root.  A path given
 * to one syscall is at most PATH_MAX, but relative to a folder deep in a
 * run folder (its cwd, an fd) it may name a node much further down, as
 * on a local disk; the backing path is longer still ("files/" before it).
 * Such paths are opened a piece at a time (fs/at.c).
 */
#define USER_PATH_MAX	(4 * PATH_MAX)

/*
 * nodes_path - resolve @ino (any inode under an object) into the object
 * id, its root (the object inode's file at the top: F_DIR for the user's
 * files, a control folder such as outputs/; what it may be is the
 * backend's to say) and the path relative to that root ("" for the root
 * itself).
 * Returns 0, -ENOENT (unknown node), -ENAMETOOLONG (longer than
 * USER_PATH_MAX, or than @relsz).
 */
int nodes_path(struct node_table *t, uint64_t ino, int64_t *obj, int *root,
	       char *rel, size_t relsz);

/*
 * The nodes whose first name lies below folder @top (an object's control
 * folder, obj_ino(id, root), or a user folder), at any depth: a malloc'd
 * array in *@out (NULL when none), their number returned; -ENOMEM.
 */
int nodes_below(struct node_table *t, uint64_t top, uint64_t **out);

#endif
