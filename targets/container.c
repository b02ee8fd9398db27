// SPDX-License-Identifier: MIT
/*
 * The `podman run` of a run in an environment (see container.h): one
 * builder for the local and the ssh target, so that a run gets the same
 * container wherever it runs.
 */
#include "container.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/hash.h"

void ct_name(const char *state, long long id, char *buf, size_t sz)
{
	snprintf(buf, sz, "mlfs-%08x-%lld", fnv1a32_str(state), id);
}

unsigned long ct_limit(unsigned long long hard)
{
	if (!hard || hard == (unsigned long long)RLIM_INFINITY ||
	    hard > CT_ULIMIT_MAX)
		return CT_ULIMIT_MAX;
	return (unsigned long)hard;
}

struct sink {
	void (*word)(void *ctx, const char *w);
	void *ctx;
};

__attribute__((format(printf, 2, 3)))
static void put(const struct sink *s, const char *fmt, ...)
{
	char w[4096 + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w, sizeof(w), fmt, ap);
	va_end(ap);
	s->word(s->ctx, w);
}

/* Who it is, what it may do and use. */
static void put_limits(const struct sink *s, const struct ct_spec *c)
{
	/* the creator's ids, not a user namespace: podman 4.3 here leaves
	 * a build's RUN layers owned by the build namespace's host ids,
	 * and a container with any id map then cannot even be set up;
	 * rootless podman (an ssh login) maps its own user with keep-id */
	if (c->keep_id)
		put(s, "--userns=keep-id");
	put(s, "--user=%u:%u", c->uid, c->gid);
	put(s, "--cap-drop=all");
	put(s, "--security-opt=no-new-privileges");
	if (c->network)
		put(s, "--network=%s", c->network);
	put(s, "--ulimit=nofile=%lu:%lu", c->nofile, c->nofile);
	put(s, "--ulimit=nproc=%lu:%lu", c->nproc, c->nproc);
	put(s, "--pids-limit=%ld", c->pids);
	if (c->memory_mib)
		put(s, "--memory=%llum", c->memory_mib);
	if (c->cpu_milli > 0)
		put(s, "--cpus=%ld.%03ld", c->cpu_milli / 1000,
		    c->cpu_milli % 1000);
}

/* The inputs, read-only; the GPUs by CDI; variables set per task. */
static void put_extras(const struct sink *s, const struct ct_spec *c)
{
	const char *g = c->gpus;

	for (int i = 0; i < c->ninputs; i++)
		put(s, "--volume=%s:" CT_INPUTS "/%s:ro", c->inputs[i].src,
		    c->inputs[i].name);
	while (g && *g) {
		size_t l = strcspn(g, ",");

		if (l)
			put(s, "--device=nvidia.com/gpu=%.*s", (int)l, g);
		g += l + (g[l] == ',');
	}
	/* podman takes these values from its own environment (the
	 * launcher's, per task); they win over the env file's */
	for (int i = 0; c->pass_env && c->pass_env[i]; i++)
		put(s, "--env=%s", c->pass_env[i]);
}

void ct_args(const struct ct_spec *c, void (*word)(void *ctx, const char *w),
	     void *ctx)
{
	struct sink s = { word, ctx };

	word(ctx, c->podman);
	if (c->quiet)
		put(&s, "--log-level=error");
	put(&s, "run");
	put(&s, "--rm");
	put(&s, "--name=%s", c->name);
	put(&s, "--runtime=runc");
	put(&s, "--init");	/* pid 1 passes SIGTERM on (cancel) */
	put_limits(&s, c);
	put(&s, "--volume=%s:/work", c->work);
	put(&s, "--workdir=/work");
	put(&s, "--volume=%s:/mlfs/metrics.raw", c->metrics);
	put(&s, "--volume=%s:/mlfs/params.raw", c->params);
	put(&s, "--volume=%s:/mlfs/lib:ro", c->lib);
	put_extras(&s, c);
	put(&s, "--env-file=%s", c->env_file);
	word(ctx, c->image);
	if (c->launcher) {
		for (int i = 0; c->launcher[i]; i++)
			word(ctx, c->launcher[i]);
	} else {
		put(&s, "/bin/sh");
		put(&s, "-c");
	}
	word(ctx, c->command);	/* any length */
}

void ct_gpus_inside(const char *gpus, char *out, size_t sz)
{
	size_t o = 0;
	int n = 0;

	out[0] = '\0';
	while (gpus && *gpus) {
		size_t l = strcspn(gpus, ",");

		if (l && o + 12 < sz)
			o += snprintf(out + o, sz - o, "%s%d", n ? "," : "", n);
		n += l > 0;
		gpus += l + (gpus[l] == ',');
	}
}

void ct_env(FILE *f, const char *run, const char *gpus,
	    const struct kv_list *env)
{
	const char *pp = kv_get(env, "PYTHONPATH");

	fprintf(f, "HOME=/work\nLANG=C.UTF-8\nMLFS_RUN=%s\n", run);
	fprintf(f, "MLFS_OUTPUTS=/work/outputs\n");
	fprintf(f, "MLFS_METRICS=/mlfs/metrics.raw\n");
	fprintf(f, "MLFS_PARAMS=/mlfs/params.raw\n");
	if (gpus && gpus[0]) {
		char in[256];

		ct_gpus_inside(gpus, in, sizeof(in));
		fprintf(f, "CUDA_VISIBLE_DEVICES=%s\n", in);
	}
	for (int i = 0; i < env->n; i++)
		if (strcmp(env->items[i].key, "PYTHONPATH"))
			fprintf(f, "%s=%s\n", env->items[i].key,
				env->items[i].value);
	fprintf(f, "PYTHONPATH=%s%s/mlfs/lib\n", pp && *pp ? pp : "",
		pp && *pp ? ":" : "");
}

int ct_failure(const char *text, size_t len, char *why, size_t n)
{
	static const struct {
		const char *word, *pkg;
	} missing[] = {
		{ "catatonit",	"catatonit" },	/* --init */
		{ "newuidmap",	"uidmap" },	/* rootless podman */
		{ "newgidmap",	"uidmap" },
		{ "runc",	"runc" },
		{ "conmon",	"conmon" },
	};
	const char *best = NULL, *p = text, *end = text + len, *eol;
	const char *pkg = NULL;
	int ml;

	for (; p < end; p = eol + 1) {
		eol = memchr(p, '\n', end - p);
		if (!eol)
			eol = end;
		if (eol - p > 7 && !memcmp(p, "Error: ", 7))
			best = p;
		if (eol == end)
			break;
	}
	if (!best)
		return 0;
	best += 7;
	eol = memchr(best, '\n', end - best);
	ml = (int)((eol ? eol : end) - best);
	if (ml > 300)
		ml = 300;
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
		if (memmem(best, ml, missing[i].word, strlen(missing[i].word)) &&
		    (memmem(best, ml, "not found", 9) ||
		     memmem(best, ml, "no such file", 12))) {
			pkg = missing[i].pkg;
			break;
		}
	snprintf(why, n, "podman could not start the run's container: %.*s%s%s%s",
		 ml, best, pkg ? " (apt-get install " : "", pkg ? pkg : "",
		 pkg ? ")" : "");
	return 1;
}

int ct_run_failure(const char *dir, char *why, size_t n)
{
	char path[4096], buf[4096];
	struct stat st;
	ssize_t got = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/log", dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		got = pread(fd, buf, sizeof(buf), st.st_size > (off_t)sizeof(buf) ?
			    st.st_size - (off_t)sizeof(buf) : 0);
	close(fd);
	return got > 0 ? ct_failure(buf, (size_t)got, why, n) : 0;
}
void ct_env_inputs(FILE *f, const struct ct_input *inputs, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "MLFS_INPUT_%s=" CT_INPUTS "/%s\n", inputs[i].name,
			inputs[i].name);
}

/* ---- CDI ---------------------------------------------------------------- */

const char *const ct_cdi_dirs[] = { "/etc/cdi", "/var/run/cdi", NULL };

/* "kind" then ':' then "nvidia.com/gpu", each maybe quoted (YAML, JSON). */
static int kind_is_gpu(const char *p)
{
	static const char want[] = "nvidia.com/gpu";

	while ((p = strstr(p, "kind"))) {
		const char *q = p + 4;

		q += *q == '"';
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q++ != ':')
			goto next;
		while (*q == ' ' || *q == '\t')
			q++;
		q += *q == '"' || *q == '\'';
		if (!strncmp(q, want, sizeof(want) - 1) &&
		    !isalnum((unsigned char)q[sizeof(want) - 1]) &&
		    q[sizeof(want) - 1] != '.' && q[sizeof(want) - 1] != '/')
			return 1;
next:
		p += 4;
	}
	return 0;
}

static int spec_name(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".yaml")) ||
			       (l > 4 && !strcmp(n + l - 4, ".yml")) ||
			       (l > 5 && !strcmp(n + l - 5, ".json")));
}

/* One spec file in the folder @dfd: of the GPU kind? */
static int spec_is_gpu(int dfd, const char *name)
{
	char buf[65536];
	struct stat st;
	ssize_t n;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
			O_NOCTTY), hit = 0;

	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			hit = kind_is_gpu(buf);
		}
	}
	close(fd);
	return hit;
}

int ct_cdi_has_gpu(const char *const *dirs)
{
	struct dirent *de;
	int hit = 0;

	for (int i = 0; dirs[i] && !hit; i++) {
		DIR *d = opendir(dirs[i]);

		while (d && !hit && (de = readdir(d)))
			if (spec_name(de->d_name))
				hit = spec_is_gpu(dirfd(d), de->d_name);
		if (d)
			closedir(d);
	}
	return hit;
}

const char *const ct_array_env[] = {
	"MLFS_ARRAY_INDEX", "MLFS_ARRAY_COUNT", NULL
};
