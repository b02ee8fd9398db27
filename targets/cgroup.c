// SPDX-License-Identifier: MIT
/*
 * Cgroups for local runs and replicas (see cgroup.h for the layout).
 *
 * Why the subtree hangs below the daemon's own cgroup in each hierarchy:
 * a daemon confined by its caller (a memory cgroup of a container, a
 * systemd service) stays inside its confinement, and two daemons on two
 * state dirs never share a subtree.  The cgroups are root's (0755): a
 * run's user can neither leave nor widen them.
 *
 * Every call runs on the worker thread (never a FUSE request): ending a
 * cgroup may wait a few seconds for the kernel.
 */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/hash.h"
#include "../lib/log.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* ---- parsing (pure) ------------------------------------------------------ */

static int in_list(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word), i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && list[j] != ',')
			j++;
		if (j - i == wl && !strncmp(list + i, word, wl))
			return 1;
		i = j + 1;
	}
	return 0;
}

static void copy_field(char *dst, size_t n, const char *s, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

int cg_parse_self(const char *text, const char *ctrl, char *path, size_t n)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ?
	     strchr(l, '\n') + 1 : NULL) {
		const char *c1 = strchr(l, ':'), *end = strchrnul(l, '\n');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		int hit;

		if (!c2 || c2 > end)
			continue;
		hit = ctrl ? in_list(c1 + 1, c2 - c1 - 1, ctrl) :
		      c1 - l == 1 && *l == '0' && c2 == c1 + 1;
		if (hit) {
			copy_field(path, n, c2 + 1, end - c2 - 1);
			return 0;
		}
	}
	return -ENOENT;
}

/* The @i-th blank-separated field of [s, end): its start and length. */
static const char *field(const char *s, const char *end, int i, size_t *len)
{
	while (s < end && *s == ' ')
		s++;
	for (; i > 0 && s < end; i--) {
		while (s < end && *s != ' ')
			s++;
		while (s < end && *s == ' ')
			s++;
	}
	*len = strcspn(s, " \n");
	if (s + *len > end)
		*len = end - s;
	return s < end ? s : NULL;
}

static int mount_hit(const char *l, const char *end, const char *ctrl)
{
	const char *sep = strstr(l, " - "), *fs, *opts;
	size_t fl, ol;

	if (!sep || sep > end)
		return 0;
	fs = field(sep + 3, end, 0, &fl);
	opts = field(sep + 3, end, 2, &ol);
	if (!fs || !opts)
		return 0;
	if (!ctrl)
		return fl == 7 && !strncmp(fs, "cgroup2", 7);
	return fl == 6 && !strncmp(fs, "cgroup", 6) && in_list(opts, ol, ctrl);
}

int cg_parse_mount(const char *text, const char *ctrl, char *mnt, size_t mn,
		   char *root, size_t rn)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ?
	     strchr(l, '\n') + 1 : NULL) {
		const char *end = strchrnul(l, '\n'), *r, *m;
		size_t rl, ml;

		if (!mount_hit(l, end, ctrl))
			continue;
		r = field(l, end, 3, &rl);
		m = field(l, end, 4, &ml);
		if (!r || !m)
			continue;
		copy_field(root, rn, r, rl);
		copy_field(mnt, mn, m, ml);
		return 0;
	}
	return -ENOENT;
}

void cg_mem_spelling(uint64_t mib, char *buf, size_t n)
{
	if (mib && mib % (1024 * 1024) == 0)
		snprintf(buf, n, "%lluT", (unsigned long long)(mib >> 20));
	else if (mib && mib % 1024 == 0)
		snprintf(buf, n, "%lluG", (unsigned long long)(mib >> 10));
	else
		snprintf(buf, n, "%lluM", (unsigned long long)mib);
}

long cg_parse_keyed(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ?
	     strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, kl) && l[kl] == ' ')
			return strtol(l + kl + 1, NULL, 10);
	return 0;
}

long cg_parse_oom_control(const char *text)
{
	return cg_parse_keyed(text, "oom_kill");
}

size_t cg_own_base(const char *own, uint32_t h)
{
	char leaf[32];
	size_t ol = strlen(own), ll;

	ll = snprintf(leaf, sizeof(leaf), "/mlfs-%08x/" CG_DAEMON_LEAF, h);
	if (ol >= ll && !strcmp(own + ol - ll, leaf))
		return ol - ll;
	return ol;
}

/* <mnt><own relative to the mount's root>/mlfs-<h> into @out.  A daemon
 * that already sits in its own leaf (cg_own_base) has the same subtree. */
static void subtree(const char *mnt, const char *root, const char *own,
		    uint32_t h, char *out)
{
	size_t rl = strlen(root);
	int ol;

	if (strcmp(root, "/") && !strncmp(own, root, rl))
		own += rl;
	ol = cg_own_base(own, h);
	if (ol == 1 && own[0] == '/')
		ol = 0;
	snprintf(out, PATH_MAX, "%s%.*s/mlfs-%08x", mnt, ol, own, h);
}

#ifndef CG_PURE	/* the unit test links the parsers alone */

/* ---- state --------------------------------------------------------------- */

enum { V1_FREEZER, V1_MEMORY, V1_PIDS, V1_CPU, V1_N };
static const char *const v1_ctrl[V1_N] = { "freezer", "memory", "pids", "cpu" };

/* Written once by cg_setup under @lock, read-only after. */
static struct {
	pthread_mutex_t lock;
	int done;
	int ver;			/* 1, 2, or 0: process groups */
	char v1[V1_N][PATH_MAX];	/* subtree per controller, "" none */
	char v2[PATH_MAX];		/* unified subtree, "" none */
	char v2_mnt[PATH_MAX];		/* where the unified hierarchy is */
} cg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static ssize_t read_text(const char *path, char *buf, size_t n)
{
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, n - 1);
	close(fd);
	if (len < 0)
		return -errno;
	buf[len] = '\0';
	return len;
}

static int put(const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int put(const char *dir, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX], val[64];
	va_list ap;
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (write(fd, val, n) != n)
		rc = -errno;
	close(fd);
	return rc;
}

static void find_bases(const char *self, const char *mi, uint32_t h)
{
	char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];

	for (int i = 0; i < V1_N; i++)
		if (!cg_parse_mount(mi, v1_ctrl[i], mnt, sizeof(mnt), root,
				    sizeof(root)) &&
		    !cg_parse_self(self, v1_ctrl[i], own, sizeof(own)))
			subtree(mnt, root, own, h, cg.v1[i]);
	if (!cg_parse_mount(mi, NULL, mnt, sizeof(mnt), root, sizeof(root)) &&
	    !cg_parse_self(self, NULL, own, sizeof(own))) {
		subtree(mnt, root, own, h, cg.v2);
		snprintf(cg.v2_mnt, sizeof(cg.v2_mnt), "%s", mnt);
	}
}

static int make_dir(const char *path)
{
	return mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
}

static int use_v1(void)
{
	if (!cg.v1[V1_FREEZER][0] || make_dir(cg.v1[V1_FREEZER]))
		return 0;
	for (int i = V1_MEMORY; i < V1_N; i++)
		if (cg.v1[i][0] && make_dir(cg.v1[i])) {
			log_warn("cgroups: cannot use the %s controller (%s):"
				 " its limits are not applied", v1_ctrl[i],
				 strerror(errno));
			cg.v1[i][0] = '\0';
		}
	return 1;
}

/*
 * v2's "no internal processes" rule: a cgroup other than the root may hand
 * controllers to its children only while it holds no process itself.  So
 * the daemon leaves the cgroup it was started in for a leaf of its own
 * subtree, mlfs-<h>/daemon: then mlfs-<h> holds no process, and neither
 * does the cgroup it was started in when the daemon was alone there (a
 * systemd service with Delegate=yes).  At the top of the hierarchy (the
 * root cgroup, where the rule does not apply, or a container's root, which
 * the daemon cannot leave) it stays where it is.
 */
static void move_to_leaf(const char *parent)
{
	char leaf[PATH_MAX + 16];
	int rc;

	if (!strcmp(parent, cg.v2_mnt))
		return;
	snprintf(leaf, sizeof(leaf), "%s/" CG_DAEMON_LEAF, cg.v2);
	rc = make_dir(leaf);
	if (!rc)
		rc = put(leaf, "cgroup.procs", "%d", (int)getpid());
	if (rc)
		log_warn("cgroups: cannot move the daemon into %s: %s", leaf,
			 strerror(-rc));
}

/* v2: the controllers must be enabled in the parent of our subtree and in
 * the subtree itself; a parent holding other processes than the daemon
 * refuses (EBUSY), and then runs are still contained and ended by
 * cgroup.kill, only without limits. */
static int use_v2(void)
{
	static const char *const ctrls[] = { "memory", "pids", "cpu" };
	char parent[PATH_MAX], off[32] = "";

	if (!cg.v2[0] || make_dir(cg.v2))
		return 0;
	snprintf(parent, sizeof(parent), "%s", cg.v2);
	*strrchr(parent, '/') = '\0';
	move_to_leaf(parent);
	for (size_t i = 0; i < 3; i++)
		if (put(parent, "cgroup.subtree_control", "+%s", ctrls[i]) ||
		    put(cg.v2, "cgroup.subtree_control", "+%s", ctrls[i]))
			snprintf(off + strlen(off), sizeof(off) - strlen(off),
				 " %s", ctrls[i]);
	if (*off)
		log_warn("cgroups: cannot enable these controllers below %s:%s;"
			 " their limits are not applied", parent, off);
	return 2;
}

static int is_cgroup2(const char *path)
{
	struct statfs fs;

	return !statfs(path, &fs) && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static int choose(const char *mode)
{
	if (!strcmp(mode, "off"))
		return 0;
	if (!strcmp(mode, "v1"))
		return use_v1();
	if (!strcmp(mode, "v2"))
		return use_v2();
	if (is_cgroup2("/sys/fs/cgroup"))
		return use_v2();
	return use_v1() ? 1 : use_v2();
}

/* Remove what ended objects left: rmdir refuses a cgroup with processes
 * (EBUSY), so the cgroups of runs still going stay; one frozen by a kill
 * a crash interrupted is thawed. */
static void sweep(const char *base)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	d = opendir(base);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "run-", 4) &&
		    strncmp(de->d_name, "rep-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
		if (rmdir(path) && base == cg.v1[V1_FREEZER])
			put(path, "freezer.state", "THAWED");
	}
	if (d)
		closedir(d);
}

static void setup_locked(const char *state_dir, const char *mode)
{
	char self[8192], mi[65536], real[PATH_MAX];

	if (!realpath(state_dir, real))
		snprintf(real, sizeof(real), "%s", state_dir);
	if (geteuid() == 0 && read_text("/proc/self/cgroup", self,
					 sizeof(self)) > 0 &&
	    read_text("/proc/self/mountinfo", mi, sizeof(mi)) > 0)
		find_bases(self, mi, fnv1a32_str(real));
	cg.ver = choose(mode && *mode ? mode : "auto");
	for (int i = 0; cg.ver == 1 && i < V1_N; i++)
		if (cg.v1[i][0])
			sweep(cg.v1[i]);
	if (cg.ver == 2)
		sweep(cg.v2);
	if (cg.ver)
		log_info("cgroups: v%d, runs under %s", cg.ver, cg.ver == 1 ?
			 cg.v1[V1_FREEZER] : cg.v2);
	else if (strcmp(mode ? mode : "", "off"))
		log_warn("cgroups are not usable here (not root, or no writable"
			 " cgroup hierarchy): runs and replicas are ended by"
			 " process group only, without memory, CPU or process"
			 " limits");
}

void cg_setup(const char *state_dir, const char *mode)
{
	pthread_mutex_lock(&cg.lock);
	if (!cg.done)
		setup_locked(state_dir, mode);
	cg.done = 1;
	pthread_mutex_unlock(&cg.lock);
}

int cg_on(void)
{
	return cg.ver != 0;
}

/* ---- objects ------------------------------------------------------------- */

/* The directories @name has or would have in the hierarchy in use, the
 * freezer's (v1) first. */
static int all_dirs(const char *name, char dirs[CG_DIRS_MAX][4096])
{
	int n = 0;

	if (cg.ver == 2)
		snprintf(dirs[n++], PATH_MAX, "%s/%s", cg.v2, name);
	for (int i = 0; cg.ver == 1 && i < V1_N; i++)
		if (cg.v1[i][0])
			snprintf(dirs[n++], PATH_MAX, "%s/%s", cg.v1[i], name);
	return n;
}

int cg_dirs(const char *name, char dirs[CG_DIRS_MAX][4096])
{
	char all[CG_DIRS_MAX][4096];
	int n = all_dirs(name, all), k = 0;

	for (int i = 0; i < n; i++)
		if (!access(all[i], F_OK))
			memcpy(dirs[k++], all[i], sizeof(all[i]));
	return k;
}

static const char *v1_dir(const char *name, int ctrl, char *buf)
{
	if (cg.ver != 1 || !cg.v1[ctrl][0])
		return NULL;
	snprintf(buf, PATH_MAX, "%s/%s", cg.v1[ctrl], name);
	return buf;
}

static int limits_v1(const char *name, const struct cg_limits *lim)
{
	char d[PATH_MAX];
	int rc = 0;

	if (lim->pids && v1_dir(name, V1_PIDS, d))
		rc = put(d, "pids.max", "%ld", lim->pids);
	if (!rc && lim->cpu_milli && v1_dir(name, V1_CPU, d)) {
		rc = put(d, "cpu.cfs_period_us", "100000");
		if (!rc)
			rc = put(d, "cpu.cfs_quota_us", "%ld",
				 lim->cpu_milli * 100);
	}
	if (rc || !lim->memory_mib)
		return rc;
	if (!v1_dir(name, V1_MEMORY, d))
		return -ENOTSUP;
	rc = put(d, "memory.limit_in_bytes", "%llu",
		 (unsigned long long)lim->memory_mib << 20);
	/* swap too, where the kernel accounts it (absent otherwise) */
	if (!rc && put(d, "memory.memsw.limit_in_bytes", "%llu",
		       (unsigned long long)lim->memory_mib << 20))
		log_debug("cgroups: %s: no swap limit", name);
	return rc;
}

static int limits_v2(const char *dir, const struct cg_limits *lim)
{
	int rc = 0;

	if (lim->memory_mib) {
		rc = put(dir, "memory.max", "%llu",
			 (unsigned long long)lim->memory_mib << 20);
		if (!rc)
			put(dir, "memory.swap.max", "0");	/* may be absent */
	}
	if (!rc && lim->pids)
		rc = put(dir, "pids.max", "%ld", lim->pids);
	if (!rc && lim->cpu_milli)
		rc = put(dir, "cpu.max", "%ld 100000", lim->cpu_milli * 100);
	return rc == -ENOENT ? -ENOTSUP : rc;
}

int cg_create(const char *name, const struct cg_limits *lim,
	      char dirs[CG_DIRS_MAX][4096], struct err *e)
{
	int n, rc = 0;

	if (!cg_on())
		return 0;
	n = all_dirs(name, dirs);
	for (int i = 0; i < n && !rc; i++)
		rc = make_dir(dirs[i]);
	if (!rc)
		rc = cg.ver == 1 ? limits_v1(name, lim) : limits_v2(dirs[0], lim);
	if (rc == -ENOTSUP) {
		log_warn("cgroups: %s: the kernel offers no controller for a"
			 " limit asked for: it is not applied", name);
		rc = 0;
	}
	if (rc) {
		cg_remove(name);
		return err_set(e, rc, "cannot set up the cgroup of %s: %s",
			       name, strerror(-rc));
	}
	return n;
}

/* The pids of @dir/cgroup.procs into @pids (at most @max). */
static int procs(const char *dir, pid_t *pids, int max)
{
	char path[PATH_MAX + 16];
	int n = 0, p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%d", &p) == 1)
		pids[n++] = p;
	fclose(f);
	return n;
}

int cg_signal(const char *name, int sig)
{
	char dirs[CG_DIRS_MAX][4096];
	pid_t pids[4096];
	int n;

	if (!cg_on() || !cg_dirs(name, dirs))
		return 0;
	n = procs(dirs[0], pids, 4096);
	for (int i = 0; i < n; i++)
		kill(pids[i], sig);
	return n;
}

/* One v1 round: freeze (nothing forks while we look), SIGKILL each pid,
 * thaw so that the kills land. */
static void kill_round_v1(const char *fz)
{
	pid_t pids[4096];
	char st[32];
	int n;

	put(fz, "freezer.state", "FROZEN");
	for (int i = 0; i < 100; i++) {
		char path[PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/freezer.state", fz);
		if (read_text(path, st, sizeof(st)) <= 0 ||
		    !strncmp(st, "FROZEN", 6))
			break;
		nap_ms(5);
	}
	n = procs(fz, pids, 4096);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	put(fz, "freezer.state", "THAWED");
}

int cg_kill(const char *name)
{
	char dirs[CG_DIRS_MAX][4096];
	pid_t one;
	int n;

	if (!cg_on() || !(n = cg_dirs(name, dirs)))
		return 0;
	for (int i = 0; i < 500; i++) {		/* about 5 s at most */
		if (!procs(dirs[0], &one, 1))
			return 0;
		if (cg.ver == 1)
			kill_round_v1(dirs[0]);
		else if (put(dirs[0], "cgroup.kill", "1"))
			cg_signal(name, SIGKILL);	/* before Linux 5.14 */
		nap_ms(10);
	}
	log_warn("cgroups: processes of %s outlive SIGKILL", name);
	return -EBUSY;
}

int cg_oom_killed(const char *name)
{
	char d[PATH_MAX], path[PATH_MAX + 32], buf[1024];
	long n;

	if (cg.ver == 2) {
		snprintf(path, sizeof(path), "%s/%s/memory.events", cg.v2, name);
		return read_text(path, buf, sizeof(buf)) > 0 &&
		       cg_parse_keyed(buf, "oom_kill") > 0;
	}
	if (!v1_dir(name, V1_MEMORY, d))
		return 0;
	snprintf(path, sizeof(path), "%s/memory.oom_control", d);
	if (read_text(path, buf, sizeof(buf)) <= 0)
		return 0;
	if (strstr(buf, "oom_kill "))
		return cg_parse_oom_control(buf) > 0;
	snprintf(path, sizeof(path), "%s/memory.failcnt", d);	/* old kernels */
	n = read_text(path, buf, sizeof(buf)) > 0 ? atol(buf) : 0;
	return n > 0;
}

void cg_remove(const char *name)
{
	char dirs[CG_DIRS_MAX][4096];
	int n = cg_on() ? all_dirs(name, dirs) : 0;

	for (int i = 0; i < n; i++)
		for (int k = 0; k < 100 && rmdir(dirs[i]) && errno == EBUSY; k++)
			nap_ms(10);	/* the last ones are still exiting */
}

#endif /* CG_PURE */
