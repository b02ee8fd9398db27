/* SPDX-License-Identifier: MIT */
/*
 * The SSH driver's run ops (see struct driver in backend/driver.h), in
 * ssh_run.c: a run is a detached process on the attached host.  Worker
 * thread only.
 */
#ifndef MLFS_SSH_RUN_H
#define MLFS_SSH_RUN_H

#include "../backend/driver.h"

int ssh_can_start(struct target_ctx *t, struct run_ctx *r);
int ssh_start(struct target_ctx *t, struct run_ctx *r, struct err *e);
void ssh_poll(struct target_ctx *t, struct run_ctx **runs, int n);
int ssh_cancel(struct target_ctx *t, struct run_ctx *r, struct err *e);
int ssh_adopt(struct target_ctx *t, struct run_ctx *r, struct err *e);
void ssh_release_run(struct target_ctx *t, struct run_ctx *r);

#endif
