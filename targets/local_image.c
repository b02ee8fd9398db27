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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "../lib/hash.h"

#define CT_ULIMIT_MAX	32768	/* as builds: below the hard limits */

void local_image_name(const struct run_ctx *r, char *buf, size_t sz)
{
	const char *s = ws_state_dir(r->ws);
	uint32_t h = fnv1a32_add(FNV32_BASIS, s, strlen(s));

	snprintf(buf, sz, "mlfs-%08x-%lld", h, (long long)r->obj.id);
}

/* One word, or a formatted one, NUL-terminated, into @f. */
__attribute__((format(printf, 2, 3)))
static void word(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\0', f);
}

static unsigned long below_hard(int res)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > CT_ULIMIT_MAX)
		return CT_ULIMIT_MAX;
	return (unsigned long)rl.rlim_max;
}

/* Who it is, what it may do and use. */
static void words_limits(FILE *f, const struct run_ctx *r, long pids)
{
	unsigned long n = below_hard(RLIMIT_NOFILE);
	unsigned long p = below_hard(RLIMIT_NPROC);

	/* the creator's ids, not a user namespace: podman 4.3 here leaves
	 * a build's RUN layers owned by the build namespace's host ids,
	 * and a container with any id map then cannot even be set up */
	word(f, "--user=%u:%u", r->obj.uid, r->obj.gid);
	word(f, "--cap-drop=all");
	word(f, "--security-opt=no-new-privileges");
	word(f, "--ulimit=nofile=%lu:%lu", n, n);
	word(f, "--ulimit=nproc=%lu:%lu", p, p);
	word(f, "--pids-limit=%ld", pids);
	if (r->res.memory_mib)
		word(f, "--memory=%llum",
		     (unsigned long long)r->res.memory_mib);
	if (r->res.cpu_milli > 0)
		word(f, "--cpus=%ld.%03ld", r->res.cpu_milli / 1000,
		     r->res.cpu_milli % 1000);
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
	char name[64];
	int rc;
	FILE *f = create_in(r, RUN_CT_ARGS, &rc);

	if (!f)
		return rc;
	local_image_name(r, name, sizeof(name));
	word(f, "%s", podman);
	word(f, "run");
	word(f, "--rm");
	word(f, "--name=%s", name);
	word(f, "--runtime=runc");
	word(f, "--init");	/* pid 1 passes SIGTERM on (cancel) */
	words_limits(f, r, pids);
	word(f, "--volume=%s:/work", work);
	word(f, "--workdir=/work");
	word(f, "--volume=%s/%s:/mlfs/metrics.raw", r->dir, RUN_METRICS_RAW);
	word(f, "--volume=%s/%s:/mlfs/params.raw", r->dir, RUN_PARAMS_RAW);
	word(f, "--volume=%s:/mlfs/lib:ro", ws_helper_dir(r->ws));
	word(f, "--env-file=%s/%s", r->dir, RUN_CT_ENV);
	word(f, "%s", r->image);
	word(f, "/bin/sh");
	word(f, "-c");
	word(f, "%s", r->command);
	return fclose(f) ? -EIO : 0;
}

/* KEY=VALUE lines: mlfs's, then the run's env lines (theirs win). */
static int write_env(struct run_ctx *r)
{
	const char *pp = kv_get(&r->env, "PYTHONPATH");
	int rc;
	FILE *f = create_in(r, RUN_CT_ENV, &rc);

	if (!f)
		return rc;
	fprintf(f, "HOME=/work\nLANG=C.UTF-8\nMLFS_RUN=%s\n", r->obj.name);
	fprintf(f, "MLFS_OUTPUTS=/work/outputs\n");
	fprintf(f, "MLFS_METRICS=/mlfs/metrics.raw\n");
	fprintf(f, "MLFS_PARAMS=/mlfs/params.raw\n");
	if (r->obj.gpus[0])
		fprintf(f, "CUDA_VISIBLE_DEVICES=%s\n", r->obj.gpus);
	for (int i = 0; i < r->env.n; i++)
		if (strcmp(r->env.items[i].key, "PYTHONPATH"))
			fprintf(f, "%s=%s\n", r->env.items[i].key,
				r->env.items[i].value);
	fprintf(f, "PYTHONPATH=%s%s/mlfs/lib\n", pp && *pp ? pp : "",
		pp && *pp ? ":" : "");
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
