/* SPDX-License-Identifier: MIT */
/*
 * A run's `inputs` on an ssh host (ssh_inputs.c): sent once into a cache
 * on the host keyed by content, reused by later runs.  Worker thread only.
 */
#ifndef MLFS_SSH_INPUTS_H
#define MLFS_SSH_INPUTS_H

#include <stddef.h>

#include "../backend/driver.h"
#include "ssh_exec.h"

/*
 * ssh_inputs_send - copy each of @r's inputs with its user's rights and
 * make sure the host's cache holds it; *@env: "MLFS_INPUT_NAME", path on
 * the host, … NULL (free with ssh_inputs_free, whatever the result).
 * 0; 1 when an input cannot be read (the run fails with @why, which names
 * it); -EHOSTUNREACH (try again later) or -errno, with @why.
 */
int ssh_inputs_send(struct target_ctx *t, struct ssh_conn *c,
		    struct run_ctx *r, char ***env, char *why, size_t n);

void ssh_inputs_free(char **env);

#endif
