/* SPDX-License-Identifier: MIT */
/*
 * Files a user named in a setting (token_file, identity_file), opened with
 * that user's rights: the root daemon never opens a user's path as root.
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

#endif
