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

static int write_args(struct run_ctx *r, const char *podman,
		      const char *work, long pids)
{
	char name[64], met[PATH_MAX], par[PATH_MAX], envf[PATH_MAX];
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
	};
	int rc;
	FILE *f = create_in(r, RUN_CT_ARGS, &rc);

	if (!f)
		return rc;
	local_image_name(r, name, sizeof(name));
	snprintf(met, sizeof(met), "%s/%s", r->dir, RUN_METRICS_RAW);
	snprintf(par, sizeof(par), "%s/%s", r->dir, RUN_PARAMS_RAW);
	snprintf(envf, sizeof(envf), "%s/%s", r->dir, RUN_CT_ENV);
	ct_args(&c, word, f);
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
	return fclose(f) ? -EIO : 0;
}

int local_image_files(struct run_ctx *r, const char *work, long pids,
		      struct err *e)
{
	char podman[PATH_MAX];
	int rc;

	if (env_podman(podman, sizeof(podman)))
		return err_set(e, -ENOENT, "environment: " ENV_NO_PODMAN);
	if (r->res.procs_per_node > 1)
		return err_set(e, -EINVAL, "environment: procs_per_node > 1"
			       " does not run in an environment yet");
	rc = write_args(r, podman, work, pids);
	if (!rc)
		rc = write_env(r);
	return rc ? err_set(e, rc, "cannot write the container's command:"
			    " %s", strerror(-rc)) : 0;
}
