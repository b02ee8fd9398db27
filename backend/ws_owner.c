// SPDX-License-Identifier: MIT
/*
 * Ownership of object folders: chmod and chown by their owner or root, and
 * who may use a target (its x bits).  Runs on FUSE request threads (and
 * ws_target_usable on the worker, before a run starts).
 */
#include "ws.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>

#include "userfile.h"
#include "ws_i.h"

/* @uid's login for a sentence, else "uid N". */
static void user_name(uint32_t uid, char *buf, size_t sz)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	if (!getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) && res)
		snprintf(buf, sz, "%s", pw.pw_name);
	else
		snprintf(buf, sz, "uid %u", uid);
}

/* The rwx bits of @o that apply to @uid (primary group @gid): the owner's,
 * else the group's if @uid is in the object's group, else the others'. */
static unsigned perm_bits(const struct obj *o, uint32_t uid, uint32_t gid)
{
	if (uid == o->uid)
		return (o->mode >> 6) & 7;
	if (userfile_in_group(uid, gid, o->gid))
		return (o->mode >> 3) & 7;
	return o->mode & 7;
}

int ws_target_usable(const struct obj *t, uint32_t uid, uint32_t gid,
		     struct err *e)
{
	char owner[64];

	if (uid == 0 || (perm_bits(t, uid, gid) & 1))
		return 0;
	if (uid == t->uid)
		return err_set(e, -EACCES, "target '%s' (mode %04o) is not"
			       " usable even by its owner: chmod u+x"
			       " targets/%s", t->name, t->mode, t->name);
	user_name(t->uid, owner, sizeof(owner));
	return err_set(e, -EACCES, "target '%s' is private to %s: ask its"
		       " owner to share it (chmod go+x targets/%s)", t->name,
		       owner, t->name);
}

/*
 * Group and others never get write permission on an object folder: what
 * is inside belongs to its owner (a model's versions, a run's files), so
 * only the read and search bits change; no set-id or sticky bit.
 */
static uint32_t folder_mode(mode_t mode)
{
	return (mode & 0555) | 0200;
}

int ws_obj_chmod(struct ws *ws, int64_t id, uint32_t uid, mode_t mode)
{
	struct obj o;
	int rc;

	rc = store_get(ws->st, id, &o);
	if (rc)
		return rc;
	if (uid != 0 && uid != o.uid)
		return -EPERM;
	rc = store_set_owner(ws->st, id, o.uid, o.gid, folder_mode(mode));
	if (!rc)
		ws_inval(ws, id, FBIT(F_DIR));
	return rc;
}

/* chown: root gives an object to anyone; its owner may only change the
 * group, to one of their own groups (the kernel's rule for files). */
int ws_obj_chown(struct ws *ws, int64_t id, uint32_t uid, uint32_t gid,
		 uint32_t new_uid, uint32_t new_gid)
{
	struct obj o;
	int rc;

	rc = store_get(ws->st, id, &o);
	if (rc)
		return rc;
	if (new_uid == (uint32_t)-1)
		new_uid = o.uid;
	if (new_gid == (uint32_t)-1)
		new_gid = o.gid;
	if (uid != 0 && (uid != o.uid || new_uid != o.uid ||
			 (new_gid != o.gid &&
			  !userfile_in_group(uid, gid, new_gid))))
		return -EPERM;
	rc = store_set_owner(ws->st, id, new_uid, new_gid, o.mode);
	if (!rc)
		ws_inval(ws, id, FBIT(F_DIR));
	return rc;
}
