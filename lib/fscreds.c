// SPDX-License-Identifier: MIT
/* Another user's rights for file access, on this thread only (fscreds.h):
 * FUSE request threads and the backend worker, each for itself. */
#include "fscreds.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

int fscreds_user_groups(uid_t uid, gid_t gid, gid_t *list, int max)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = max;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res) {
		list[0] = gid;
		return 1;
	}
	if (getgrouplist(res->pw_name, gid, list, &n) < 0)
		n = max;
	return n;
}

void fscreds_restore(struct fscreds *s)
{
	if (!s->on)
		return;
	syscall(SYS_setfsuid, s->fsuid);	/* first: root's rights back */
	syscall(SYS_setfsgid, s->fsgid);
	syscall(SYS_setgroups, s->ngroups, s->groups);
	s->on = 0;
}

int fscreds_wear(struct fscreds *s, uid_t uid, gid_t gid, int n,
		 const gid_t *groups)
{
	s->on = 0;
	s->ngroups = getgroups(FSCREDS_GROUPS, s->groups);
	if (s->ngroups < 0)
		return -errno;
	s->fsuid = (uid_t)syscall(SYS_setfsuid, -1);
	s->fsgid = (gid_t)syscall(SYS_setfsgid, -1);
	if (syscall(SYS_setgroups, n, groups))
		return -errno;
	s->on = 1;
	syscall(SYS_setfsgid, gid);
	syscall(SYS_setfsuid, uid);
	/* the calls return the old ids, never an error: ask again */
	if ((uid_t)syscall(SYS_setfsuid, -1) != uid ||
	    (gid_t)syscall(SYS_setfsgid, -1) != gid) {
		fscreds_restore(s);
		return -EPERM;
	}
	return 0;
}

int fscreds_wear_user(struct fscreds *s, uid_t uid, gid_t gid)
{
	static __thread gid_t list[FSCREDS_GROUPS];
	int n;

	s->on = 0;
	if (uid == (uid_t)-1 || geteuid() != 0 || uid == 0)
		return 0;
	n = fscreds_user_groups(uid, gid, list, FSCREDS_GROUPS);
	return fscreds_wear(s, uid, gid, n, list);
}
