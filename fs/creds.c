// SPDX-License-Identifier: MIT
/*
 * Per-thread credentials by raw system calls: glibc's setgroups() and
 * setfs*id() wrappers may act on every thread of the process (setxid
 * broadcast), the kernel's calls change only the calling thread.
 * Changing the fsuid away from 0 drops the file-system capabilities of
 * the thread (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN …); back to 0 brings
 * them back.
 */
#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../backend/log.h"

#define SMALL_GROUPS	64

static int daemon_root;			/* set once by creds_init */
static gid_t root_gid;
static gid_t root_groups[SMALL_GROUPS];
static int root_ngroups;

void creds_init(void)
{
	int n;

	daemon_root = geteuid() == 0;
	root_gid = getegid();
	n = getgroups(SMALL_GROUPS, root_groups);
	root_ngroups = n < 0 ? 0 : n;
}

static long thread_setgroups(size_t n, const gid_t *list)
{
	return syscall(SYS_setgroups, n, list);
}

/* The caller's supplementary groups on this thread; none when they
 * cannot be read (fewer rights, never more). */
static void take_groups(fuse_req_t req)
{
	gid_t small[SMALL_GROUPS], *list = small;
	int n;

	n = fuse_req_getgroups(req, SMALL_GROUPS, small);
	if (n > SMALL_GROUPS) {
		list = calloc(n, sizeof(*list));
		n = list ? fuse_req_getgroups(req, n, list) : -ENOMEM;
	}
	if (n < 0 || thread_setgroups(n, list))
		thread_setgroups(0, NULL);
	if (list != small)
		free(list);
}

struct creds creds_enter(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct creds c = { 0 };

	if (!daemon_root || ctx->uid == 0)
		return c;
	take_groups(req);
	syscall(SYS_setfsgid, ctx->gid);
	syscall(SYS_setfsuid, ctx->uid);
	/* the calls return the old ids, never an error: ask again */
	if ((uid_t)syscall(SYS_setfsuid, -1) != ctx->uid ||
	    (gid_t)syscall(SYS_setfsgid, -1) != ctx->gid) {
		log_err("cannot take the credentials of uid %u: stopping",
			(unsigned)ctx->uid);
		abort();
	}
	c.on = 1;
	return c;
}

void creds_leave(struct creds *c)
{
	if (!c->on)
		return;
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, root_gid);
	thread_setgroups(root_ngroups, root_groups);
	c->on = 0;
}
