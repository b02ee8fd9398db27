/* SPDX-License-Identifier: MIT */
/*
 * The caller's credentials on a FUSE request thread.  A root daemon that
 * lets other users in works on their files as them: the fsuid, fsgid and
 * supplementary groups of this thread only, so that the kernel's own
 * checks apply to the backing files (OpenSSH's rule: the privileged part
 * never touches a user's files with its own rights).  A daemon that is not
 * root, and requests from root, are left as they are.
 *
 *	{
 *		AS_CALLER(req);
 *		fd = openat(...);	// as the caller
 *	}				// root's credentials again
 *
 * The scope restores root's credentials on every way out of the block.
 */
#ifndef MLFS_CREDS_H
#define MLFS_CREDS_H

#include "fuse_version.h"

struct creds {
	int on;		/* this thread wears a caller's credentials */
};

/* Once, at start: remember the daemon's own groups. */
void creds_init(void);
/* Take the credentials of @req's caller (a no-op unless the daemon is
 * root and the caller is not).  Never fails: the daemon aborts rather
 * than go on as root for a user. */
struct creds creds_enter(fuse_req_t req);
/* Back to the daemon's own credentials. */
void creds_leave(struct creds *c);

#define AS_CALLER(req) \
	struct creds caller_creds__ __attribute__((cleanup(creds_leave))) = \
		creds_enter(req)

#endif
