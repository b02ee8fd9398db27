/* SPDX-License-Identifier: MIT */
/*
 * Another user's rights for file access, on this thread only.  A root
 * daemon works on a user's files as that user -- the fsuid, fsgid and
 * supplementary groups of the calling thread -- so that the kernel's own
 * checks apply (OpenSSH's rule: the privileged part never touches a user's
 * files with its own rights).  By raw system calls: glibc's setgroups()
 * and setfs*id() wrappers may act on every thread of the process (setxid
 * broadcast); the kernel's change only the caller.  With an fsuid other
 * than 0 the kernel also drops the thread's file capabilities
 * (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN …); back to 0 restores them.
 *
 * Used by the FUSE request threads (fs/creds.c), the copies made as a
 * run's owner (lib/copy.c) and files named in settings
 * (backend/userfile.c).
 */
#ifndef MLFS_FSCREDS_H
#define MLFS_FSCREDS_H

#include <sys/types.h>

#define FSCREDS_GROUPS	1024

/* What a thread wore before fscreds_wear. */
struct fscreds {
	int on;			/* fscreds_restore has something to undo */
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[FSCREDS_GROUPS];
};

/* The groups of @uid as a login gives them, @gid first (only @gid for a
 * uid without a passwd entry; the first @max when there are more: fewer
 * rights, never more).  The count. */
int fscreds_user_groups(uid_t uid, gid_t gid, gid_t *list, int max);

/* Wear @uid, @gid and the @n @groups on this thread, the old ones saved
 * in @s.  0, or -errno with nothing changed. */
int fscreds_wear(struct fscreds *s, uid_t uid, gid_t gid, int n,
		 const gid_t *groups);

/* Wear the login credentials of @uid:@gid -- nothing to do (0, @s->on
 * clear) unless the daemon is root and @uid another user.  0 or -errno. */
int fscreds_wear_user(struct fscreds *s, uid_t uid, gid_t gid);

/* Back to what @s saved (nothing unless @s->on).  Root's rights first. */
void fscreds_restore(struct fscreds *s);

#endif
