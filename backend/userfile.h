/* SPDX-License-Identifier: MIT */
/*
 * Files a user named in a setting (token_file, identity_file), opened with
 * that user's rights: the root daemon never opens a user's path as root.
 * And which of a run's user files its working copy is made of.
 */
#ifndef MLFS_USERFILE_H
#define MLFS_USERFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "parse.h"

/* Largest file userfile_read returns (a token, a private key). */
#define USERFILE_MAX	(64 * 1024)

/*
 * userfile_open - open @path read-only as @uid/@gid (with @uid's groups),
 * on the calling thread.  Regular files only; no /proc or /sys file, no
 * magic link.  Returns an fd, or -EACCES with "KEY PATH: the target's
 * creator (uid N) cannot read it", or another -errno with a sentence that
 * names @key.  A daemon that is not root opens with its own rights.
 */
int userfile_open(uid_t uid, gid_t gid, const char *key, const char *path,
		  struct err *e);

/* userfile_read - the whole file (at most USERFILE_MAX bytes), malloc'd and
 * NUL-terminated in *@buf, *@len bytes.  0 or -errno + sentence. */
int userfile_read(uid_t uid, gid_t gid, const char *key, const char *path,
		  char **buf, size_t *len, struct err *e);

/* userfile_in_group - is @uid (whose primary group is @gid) in @grp?  Its
 * groups as a login gives them (the group database). */
int userfile_in_group(uid_t uid, gid_t gid, gid_t grp);

/*
 * A folder code/ among a run's files is the root of its working copy (as
 * Azure ML's jobs take `code:`): a project copied into it cannot collide
 * with the run's control files (target, env, log, ...).  Without one, the
 * root is the run's files themselves.
 */
#define USERFILE_CODE	"code"

/*
 * userfile_work_root_open - open the root of the working copy of the run
 * whose folder is @dir (<state>/objects/<id>): <dir>/files/code when that
 * is a folder, else <dir>/files.  A symlink named code is an ordinary
 * file, never followed, as is a file named code.  The fd (O_DIRECTORY,
 * opened without following a symlink) is the folder checked here whatever
 * is renamed later: a program copying from /proc/PID/fd/N copies it.
 * *@code is 1 when the root is code/.  fd, or -errno (-ENOENT, -ENOTDIR:
 * the run has no files folder).
 */
int userfile_work_root_open(const char *dir, int *code);

/*
 * userfile_work_root - the path of that root into @buf (@n bytes), for a
 * copy that opens it again without following a symlink (copy_tree_as):
 * 1 when it is code/, 0 when the run's files (also when they are
 * missing: the copy says so), or -errno with a sentence.
 */
int userfile_work_root(const char *dir, char *buf, size_t n, struct err *e);

#endif
