/* SPDX-License-Identifier: MIT */
/*
 * The SSH driver's deployment ops (see struct driver in backend/driver.h):
 * replicas are server processes on the attached host.  Worker only.
 */
#ifndef MLFS_SSH_DEPLOY_H
#define MLFS_SSH_DEPLOY_H

#include "../backend/driver.h"

struct ssh_dep;

int ssh_replica_start(struct target_ctx *t, struct deploy_ctx *d,
		      struct deploy_spec *s, struct replica *r,
		      struct err *e);
int ssh_replica_poll(struct target_ctx *t, struct deploy_ctx *d,
		     const struct deploy_spec *s, struct replica *r,
		     struct err *e);
int ssh_replica_load(struct target_ctx *t, struct deploy_ctx *d,
		     struct replica *r);
void ssh_replica_stop(struct target_ctx *t, struct deploy_ctx *d,
		      struct replica *r, int force);
int ssh_replica_adopt(struct target_ctx *t, struct deploy_ctx *d,
		      struct replica **list);
void ssh_replica_release(struct target_ctx *t, struct deploy_ctx *d,
			 struct replica *r);
int ssh_health(struct target_ctx *t, struct deploy_ctx *d,
	       const struct deploy_spec *s, struct err *e);
void ssh_service_host(struct target_ctx *t, const struct deploy_spec *s,
		      char *buf, size_t n);
void ssh_direct_host(struct target_ctx *t, const struct deploy_spec *s,
		     char *buf, size_t n);
void ssh_undeploy(struct target_ctx *t, struct deploy_ctx *d);

/* Free the target's replica table (at release: the replicas keep
 * running on the host, and the next daemon adopts them). */
void ssh_deploy_free(struct ssh_dep *dep);

#endif
