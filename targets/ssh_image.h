/* SPDX-License-Identifier: MIT */
/*
 * ssh_image.h — a run in an environment on an ssh host: podman and the
 * image there (copied when missing), and the `podman run` its wrapper
 * runs (container.h, as on the local target).  Worker thread only.
 */
#ifndef MLFS_SSH_IMAGE_H
#define MLFS_SSH_IMAGE_H

#include <limits.h>
#include <stddef.h>

#include "../backend/driver.h"
#include "ssh_exec.h"

/* What the launch of a run in an environment needs (malloc'd strings). */
struct ssh_ct {
	char *cmd;			/* the sh line: podman run … */
	char *env;			/* the env file's text */
	char podman[512];		/* podman on the host */
	char name[64];			/* the container's name */
};

/* What a host said of its podman. */
struct ssh_podman {
	char podman[512];		/* its path, "" none */
	char dir[PATH_MAX];		/* the folder asked in, absolute */
	unsigned uid, gid;		/* the login's */
	unsigned long long nofile, nproc;	/* hard limits, 0 unknown */
	int image;			/* podman image exists: 0 yes, 1 no */
	int cdi;			/* a CDI spec of nvidia.com/gpu */
	char why[256];			/* its last line of stderr */
};

/*
 * ssh_image_ensure - on the host, in its folder @dir (which exists
 * there): find podman (in the login's PATH) and make sure its store has
 * @image, copied from this machine's podman when missing (podman save |
 * ssh … podman load, streamed; an image the host has is never sent
 * again).  The line saying it was copied, and how big, goes into @dir/log
 * on the host when @said is NULL, else into @said.  @what ends the
 * sentence of a host without podman: "HOST has no podman, and @what
 * there (apt-get install podman runc on HOST)".  0 (@h filled); 1 when
 * the host has no podman; -EHOSTUNREACH or -EIO; the sentence in @why.
 */
int ssh_image_ensure(struct target_ctx *t, struct ssh_conn *c,
		     const char *dir, const char *image, const char *what,
		     struct ssh_podman *h, char *said, size_t sn, char *why,
		     size_t n);

/*
 * ssh_image_prepare - for run @r (r->image set) whose folder @dir is made
 * on the host: find podman there, its login's ids and limits; copy the
 * image when the host's podman lacks it (podman save here | podman load
 * there, streamed; a line in the run's log says so and how big: an image
 * the host has is never sent again); fill @ct (free it with
 * ssh_image_free): the inputs in the host's cache @inputs ("MLFS_INPUT_
 * NAME", PATH, … NULL, from ssh_inputs_send) mounted read-only at
 * /mlfs/inputs/NAME, the run's GPUs by CDI, an array's task a container
 * of its own (NAME-tI), procs_per_node > 1 by the sh launcher inside.
 * 0; 1 when the run cannot run there (no podman, GPUs without a CDI
 * spec there: the sentence in @why names the host and the packages);
 * -EHOSTUNREACH or -EIO with a sentence in @why.
 */
int ssh_image_prepare(struct target_ctx *t, struct ssh_conn *c,
		      struct run_ctx *r, const char *dir,
		      const char *const *inputs, struct ssh_ct *ct,
		      char *why, size_t n);

void ssh_image_free(struct ssh_ct *ct);

#endif
