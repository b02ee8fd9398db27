// SPDX-License-Identifier: MIT
/*
 * The caller's credentials on a FUSE request thread (creds.h), worn with
 * lib/fscreds.c: this thread only.
 */
#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fscreds.h"
#include "../lib/log.h"

#define SMALL_GROUPS	64

static int daemon_root;			/* set once by creds_init */
static __thread struct fscreds worn;	/* what creds_leave gives back */

void creds_init(void)
{
	daemon_root = geteuid() == 0;
}

/* The caller's supplementary groups into @list (*@list replaced when
 * there are more than SMALL_GROUPS; free it if not @small); none when
 * they cannot be read (fewer rights, never more).  The count. */
static int caller_groups(fuse_req_t req, gid_t *small, gid_t **list)
{
	int n;

	*list = small;
	n = fuse_req_getgroups(req, SMALL_GROUPS, small);
	if (n > SMALL_GROUPS) {
		*list = calloc(n, sizeof(**list));
		n = *list ? fuse_req_getgroups(req, n, *list) : -ENOMEM;
	}
	return n < 0 ? 0 : n;
}

struct creds creds_enter(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t small[SMALL_GROUPS], *list;
	struct creds c = { 0 };
	int n, rc;

	/* nested in an operation that wears them already: nothing to do */
	if (!daemon_root || ctx->uid == 0 || worn.on)
		return c;
	n = caller_groups(req, small, &list);
	rc = fscreds_wear(&worn, ctx->uid, ctx->gid, n, list);
	if (list != small)
		free(list);
	if (rc) {
		log_err("cannot take the credentials of uid %u: %s; stopping",
			(unsigned)ctx->uid, strerror(-rc));
		abort();
	}
	c.on = 1;
	return c;
}

void creds_leave(struct creds *c)
{
	if (!c->on)
		return;
	fscreds_restore(&worn);
	c->on = 0;
}
