// SPDX-License-Identifier: MIT
/*
 * A local run in an environment: the podman command and its environment
 * file, written by the daemon into the run's own folder (0600, root's)
 * and run by the supervisor (mlfs-run -i) as root with a fixed
 * environment: the run's env lines go into the container only (podman
 * reads them as data from --env-file), never into a root process.
 */
#include "local_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "container.h"

void local_image_name(const struct run_ctx *r, char *buf, size_t sz)
{
	ct_name(ws_state_dir(r->ws), (long long)r->obj.id, buf, sz);
}

unsigned long local_image_ulimit(int res)
{
	struct rlimit rl;

	if (getrlimit(res, &rl))
		return CT_ULIMIT_MAX;
	return ct_limit(rl.rlim_max);
}

/* One word and its NUL into the FILE @ctx. */
static void word(void *ctx, const char *w)
{
	fputs(w, ctx);
	fputc('\0', ctx);
}

/* @name in the run's folder anew: root's, 0600, no link followed. */
static FILE *create_in(const struct run_ctx *r, const char *name, int *rc)
{
	char path[PATH_MAX];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	*rc = fd < 0 ? -errno : -ENOMEM;
	if (!f && fd >= 0)
		close(fd);
	return f;
}

/* Each input at /mlfs/inputs/NAME: mlfs-run mounts a read-only view of
 * it (opened as the run's user) on RUNDIR/ct.inputs/NAME, which podman
 * mounts in; podman never resolves a path of the user's. */
static struct ct_input *inputs_of(const struct run_ctx *r, char **paths)
{
	struct ct_input *in = calloc(r->ninputs + 1, sizeof(*in));

	*paths = calloc(r->ninputs + 1, PATH_MAX);
	if (!in || !*paths) {
		free(in);
		free(*paths);
		return NULL;
	}
	for (int i = 0; i < r->ninputs; i++) {
		char *p = *paths + (size_t)i * PATH_MAX;

		snprintf(p, PATH_MAX, "%s/%s/%s", r->dir, RUN_CT_INPUTS,
			 r->inputs[i].name);
		in[i].name = r->inputs[i].name;
		in[i].src = p;
	}
	return in;
}

static int write_args(struct run_ctx *r, const char *podman,
		      const char *work, long pids)
{
	char name[64], met[PATH_MAX], par[PATH_MAX], envf[PATH_MAX];
	char procs[16], ranks[PATH_MAX], *paths = NULL;
	const char *launcher[] = { ranks, procs, NULL };
	struct ct_spec c = {
		.podman = podman, .name = name,
		.uid = r->obj.uid, .gid = r->obj.gid,
		.nofile = local_image_ulimit(RLIMIT_NOFILE),
		.nproc = local_image_ulimit(RLIMIT_NPROC),
		.pids = pids, .memory_mib = r->res.memory_mib,
		.cpu_milli = r->res.cpu_milli,
		.work = work, .metrics = met, .params = par,
		.lib = ws_helper_dir(r->ws), .env_file = envf,
		.image = r->image, .command = r->command,
		/* the network the run has without a container: no more,
		 * and podman's own costs ~0.6 s a start (netavark) */
		.network = "host",
		.pass_env = r->res.array_n > 0 ? ct_array_env : NULL,
		.gpus = r->res.gpus > 0 ? r->obj.gpus : NULL,
		.ninputs = r->ninputs,
	};
	int rc;
	FILE *f;

	c.inputs = inputs_of(r, &paths);
	if (!c.inputs)
		return -ENOMEM;
	if (r->res.procs_per_node > 1) {	/* mlfs-ranks, static */
		snprintf(ranks, sizeof(ranks), "%s/%s", CT_LIB, RUN_CT_RANKS);
		snprintf(procs, sizeof(procs), "%ld", r->res.procs_per_node);
		c.launcher = launcher;
	}
	f = create_in(r, RUN_CT_ARGS, &rc);
	if (!f) {
		free((void *)c.inputs);
		free(paths);
		return rc;
	}
	local_image_name(r, name, sizeof(name));
	snprintf(met, sizeof(met), "%s/%s", r->dir, RUN_METRICS_RAW);
	snprintf(par, sizeof(par), "%s/%s", r->dir, RUN_PARAMS_RAW);
	snprintf(envf, sizeof(envf), "%s/%s", r->dir, RUN_CT_ENV);
	ct_args(&c, word, f);
	free((void *)c.inputs);
	free(paths);
	return fclose(f) ? -EIO : 0;
}

/* KEY=VALUE lines: mlfs's, then the run's env lines (theirs win). */
static int write_env(struct run_ctx *r)
{
	int rc;
	FILE *f = create_in(r, RUN_CT_ENV, &rc);

	if (!f)
		return rc;
	ct_env(f, r->obj.name, r->obj.gpus, &r->env);
	for (int i = 0; i < r->ninputs; i++) {
		struct ct_input in = { r->inputs[i].name, NULL };

		ct_env_inputs(f, &in, 1);
	}
	return fclose(f) ? -EIO : 0;
}

static int ranks_missing(const struct run_ctx *r)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", ws_helper_dir(r->ws),
		 RUN_CT_RANKS);
	return access(path, X_OK) != 0;
}

int local_image_files(struct run_ctx *r, const char *work, long pids,
		      struct err *e)
{
	char podman[PATH_MAX];
	int rc;

	if (env_podman(podman, sizeof(podman)))
		return err_set(e, -ENOENT, "environment: " ENV_NO_PODMAN);
	if (r->res.gpus > 0 && !ct_cdi_has_gpu(ct_cdi_dirs))
		return err_set(e, -ENODEV, "environment: " CT_NO_CDI,
			       "this machine");
	if (r->res.procs_per_node > 1 && ranks_missing(r))
		return err_set(e, -ENOENT, "environment: %s/%s is missing:"
			       " procs_per_node > 1 in a container needs it"
			       " (it is built with mlfs)", ws_helper_dir(r->ws),
			       RUN_CT_RANKS);
	rc = write_args(r, podman, work, pids);
	if (!rc)
		rc = write_env(r);
	return rc ? err_set(e, rc, "cannot write the container's command:"
			    " %s", strerror(-rc)) : 0;
}
