/* SPDX-License-Identifier: MIT */
/*
 * The local driver's deployment ops (see struct driver in
 * backend/driver.h): replicas are processes on this machine.
 */
#ifndef MLFS_LOCAL_DEPLOY_H
#define MLFS_LOCAL_DEPLOY_H

#include "../backend/driver.h"

int local_check_deploy(const struct kv_list *config,
		       const struct deploy_spec *s, struct err *e);
int local_replica_start(struct target_ctx *t, struct deploy_ctx *d,
			struct deploy_spec *s, struct replica *r,
			struct err *e);
int local_replica_poll(struct target_ctx *t, struct deploy_ctx *d,
		       const struct deploy_spec *s, struct replica *r,
		       struct err *e);
void local_replica_stop(struct target_ctx *t, struct deploy_ctx *d,
			struct replica *r, int force);
int local_replica_adopt(struct target_ctx *t, struct deploy_ctx *d,
			struct replica **list);
int local_replica_load(struct target_ctx *t, struct deploy_ctx *d,
		       struct replica *r);
void local_replica_release(struct target_ctx *t, struct deploy_ctx *d,
			   struct replica *r);
int local_health(struct target_ctx *t, struct deploy_ctx *d,
		 const struct deploy_spec *s, struct err *e);

#endif
