// SPDX-License-Identifier: MIT
/*
 * The local driver: runs are processes on this machine, each under its own
 * supervisor (mlfs-run), which records the exit code even when the daemon
 * is gone.  Concurrency limit max_concurrent (default: cores), FIFO;
 * NVIDIA GPUs detected with nvidia-smi and handed out exclusively through
 * CUDA_VISIBLE_DEVICES.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backend/driver.h"
#include "../lib/log.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "cgroup.h"
#include "container.h"
#include "../lib/copy.h"
#include "../lib/clock.h"
#include "../lib/vec.h"
#include "gpu.h"
#include "local_deploy.h"
#include "local_image.h"
#include "proc.h"

static const char *const local_keys[] = {
	"max_concurrent", "cancel_grace_seconds", "pids_max", NULL
};

struct local_target {
	int running;			/* runs holding a slot */
	struct gpu_pool gpus;
};

struct local_run {
	pid_t pid;			/* supervisor */
	pid_t pgid;			/* the command's process group */
	int holds_slot;			/* slots it holds (0: none) */
	int timed_out;
	double term_sent;
};

static long cfg_long(const struct kv_list *cfg, const char *key, long def)
{
	const char *v = kv_get(cfg, key);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static long max_concurrent(const struct kv_list *cfg)
{
	return cfg_long(cfg, "max_concurrent", ws_cpus());
}

static int local_validate(const struct kv_list *cfg, struct err *e)
{
	const char *v;
	long n;
	int rc;

	v = kv_get(cfg, "max_concurrent");
	if (v && (rc = parse_int(v, 1, 4096, &n, "max_concurrent", e)))
		return rc;
	v = kv_get(cfg, "cancel_grace_seconds");
	if (v && (rc = parse_int(v, 0, 3600, &n, "cancel_grace_seconds", e)))
		return rc;
	v = kv_get(cfg, "pids_max");
	if (v && (rc = parse_int(v, 1, 4194304, &n, "pids_max", e)))
		return rc;
	return 0;
}

static int local_check_run(const struct kv_list *cfg, const char *nodes,
			   const struct resources *res, struct err *e)
{
	(void)cfg;
	return check_one_node(res, nodes, "a local target", e);
}

static struct local_target *lt(struct target_ctx *t)
{
	if (!t->priv)
		t->priv = calloc(1, sizeof(struct local_target));
	return t->priv;
}

static int local_nodes(struct target_ctx *t, char **nodes, struct err *e)
{
	struct gpu_info gpus[GPU_MAX];
	char host[256], mem[32];
	long cpus = ws_cpus();
	int n;

	/* here too, so that what a crash left is swept early */
	cg_setup(ws_state_dir(t->ws), getenv("MLFS_CGROUP"));
	n = gpu_detect(gpus, GPU_MAX);
	if (lt(t))
		lt(t)->gpus.n = n;
	if (gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(mem, sizeof(mem), "%lluM",
		 (unsigned long long)(sysconf(_SC_PHYS_PAGES) *
				      (sysconf(_SC_PAGESIZE) / 1024) / 1024));
	if (asprintf(nodes, "%s up %ld %s %d\n", host, cpus, mem, n) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

static int local_provision(struct target_ctx *t, char **nodes, struct err *e)
{
	return local_nodes(t, nodes, e);
}

static int local_deprovision(struct target_ctx *t, struct err *e)
{
	(void)t;
	(void)e;
	return 0;
}

/* The slots of max_concurrent a run holds: 1, or an array's tasks at
 * once (its %M, or all), at most max_concurrent. */
static long run_slots(struct target_ctx *t, const struct run_ctx *r)
{
	long n = r->res.array_n, max = max_concurrent(&t->config);

	if (!n)
		return 1;
	if (r->res.array_max && r->res.array_max < n)
		n = r->res.array_max;
	return n < max ? n : max;
}

static int local_can_start(struct target_ctx *t, struct run_ctx *r)
{
	struct local_target *l = lt(t);

	if (!l || l->running + run_slots(t, r) > max_concurrent(&t->config))
		return 0;
	return gpu_pool_free(&l->gpus) >= r->res.gpus;
}

/* ---- environment ------------------------------------------------------- */

struct envp {
	char **v;
	size_t n, cap;
};

static int envp_add(struct envp *e, const char *kv)
{
	if (vec_reserve(e, 2))
		return -ENOMEM;
	e->v[e->n] = strdup(kv);
	if (!e->v[e->n])
		return -ENOMEM;
	e->v[++e->n] = NULL;
	return 0;
}

static int envp_addf(struct envp *e, const char *k, const char *v)
{
	char *kv;
	int rc;

	if (asprintf(&kv, "%s=%s", k, v) < 0)
		return -ENOMEM;
	rc = envp_add(e, kv);
	free(kv);
	return rc;
}

static void envp_free(struct envp *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

/*
 * What mlfs-run (root) starts with: nothing of the daemon's own
 * environment, MLFS_* and CUDA_VISIBLE_DEVICES, and the run's env lines
 * as MLFS_ENV_KEY=VALUE: names that neither ld.so nor libc read in the
 * root supervisor; it applies them to the command only, after dropping
 * its privileges, with PATH, HOME, … (see mlfs-run.c).
 */
/* The run's PYTHONPATH: its env line's, then the folder of mlfs.py
 * (import mlfs), so that a module of the user's of that name wins. */
static void python_path(const struct run_ctx *r, char *buf, size_t len)
{
	const char *own = kv_get(&r->env, "PYTHONPATH");

	snprintf(buf, len, "%s%s%s", own && *own ? own : "",
		 own && *own ? ":" : "", ws_helper_dir(r->ws));
}

static int run_envp(struct run_ctx *r, struct envp *e, const char *work)
{
	char path[PATH_MAX], *key;
	int rc = 0;

	for (int i = 0; i < r->env.n && !rc; i++) {
		if (!strcmp(r->env.items[i].key, "PYTHONPATH"))
			continue;	/* python_path below */
		if (asprintf(&key, "MLFS_ENV_%s", r->env.items[i].key) < 0)
			return -ENOMEM;
		rc = envp_addf(e, key, r->env.items[i].value);
		free(key);
	}
	python_path(r, path, sizeof(path));
	if (!rc)
		rc = envp_addf(e, "MLFS_ENV_PYTHONPATH", path);
	if (!rc)
		rc = envp_addf(e, "MLFS_RUN", r->obj.name);
	snprintf(path, sizeof(path), "%s/outputs", work);
	if (!rc)
		rc = envp_addf(e, "MLFS_OUTPUTS", path);
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_METRICS_RAW);
	if (!rc)
		rc = envp_addf(e, "MLFS_METRICS", path);
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_PARAMS_RAW);
	if (!rc)
		rc = envp_addf(e, "MLFS_PARAMS", path);
	if (!rc && (r->res.gpus > 0 || lt(r->t)->gpus.n > 0))
		rc = envp_addf(e, "CUDA_VISIBLE_DEVICES", r->obj.gpus);
	/* mlfs-run makes each read-only for the command when root */
	for (int i = 0; i < r->ninputs && !rc; i++) {
		if (asprintf(&key, "MLFS_INPUT_%s", r->inputs[i].name) < 0)
			return -ENOMEM;
		rc = envp_addf(e, key, r->inputs[i].path);
		free(key);
	}
	return rc;
}

/* ---- start ------------------------------------------------------------- */

/* Runs execute as their creator when the daemon is root. */
static int run_as_creator(const struct run_ctx *r)
{
	return geteuid() == 0 && r->obj.uid != 0;
}

/* ---- cgroups ------------------------------------------------------------ */

/* The run's cgroup is named by its id alone: a restarted daemon finds it. */
static void run_cg(const struct run_ctx *r, char *name)
{
	snprintf(name, CG_NAME_MAX, "run-%lld", (long long)r->obj.id);
}

static void cg_init(struct run_ctx *r)
{
	cg_setup(ws_state_dir(r->ws), getenv("MLFS_CGROUP"));
}

/* Make the run's cgroup with its limits; its directories into @dirs (for
 * mlfs-run -c).  How many, 0 without cgroups, or -errno. */
static int run_cg_create(struct target_ctx *t, struct run_ctx *r,
			 char dirs[CG_DIRS_MAX][4096], struct err *e)
{
	/* memory and cpus are per task of an array, as per process */
	long k = r->res.array_n ? run_slots(t, r) : r->res.procs_per_node;
	struct cg_limits lim = {
		.memory_mib	= r->res.memory_mib * k,
		/* cpus counts per process, as Slurm's cpus per task */
		.cpu_milli	= r->res.cpu_milli * k,
		.pids		= cfg_long(&t->config, "pids_max",
					   CG_PIDS_DEFAULT),
	};
	char name[CG_NAME_MAX];

	cg_init(r);
	run_cg(r, name);
	return cg_create(name, &lim, dirs, e);
}

/* End every process of the run and drop its cgroup: 1 when the kernel
 * killed one of them for want of memory. */
static int run_cg_end(struct run_ctx *r)
{
	char name[CG_NAME_MAX];
	int oom;

	run_cg(r, name);
	oom = cg_oom_killed(name);
	cg_kill(name);
	cg_remove(name);
	return oom;
}

/* mlfs-run -a SPEC -m MAX -t LIMIT -k GRACE for an array run. */
static int array_args(struct run_ctx *r, char **argv, char num[3][24])
{
	int n = 0;

	if (!r->res.array_n)
		return 0;
	snprintf(num[0], sizeof(num[0]), "%ld", run_slots(r->t, r));
	snprintf(num[1], sizeof(num[1]), "%llu",
		 (unsigned long long)r->res.time_secs);
	snprintf(num[2], sizeof(num[2]), "%ld",
		 cfg_long(&r->t->config, "cancel_grace_seconds", 10));
	argv[n++] = "-a";
	argv[n++] = r->res.array;
	argv[n++] = "-m";
	argv[n++] = num[0];
	argv[n++] = "-t";
	argv[n++] = num[1];
	argv[n++] = "-k";
	argv[n++] = num[2];
	return n;
}

static int spawn_supervisor(struct run_ctx *r, const char *work,
			    char cgd[CG_DIRS_MAX][4096], int ncg, pid_t *pid,
			    struct err *e)
{
	char helper[PATH_MAX], uid[16], gid[16], procs[16], num[3][24];
	char *argv[22 + 2 * CG_DIRS_MAX];
	posix_spawnattr_t attr;
	struct envp env = { 0 };
	sigset_t none;
	int rc, n = 0;

	snprintf(helper, sizeof(helper), "%s/mlfs-run",
		 ws_helper_dir(r->ws));
	argv[n++] = "mlfs-run";
	if (r->image[0]) {	/* podman as root; the creator inside */
		argv[n++] = "-i";
		argv[n++] = RUN_CT_ARGS;
	}
	/* in a container: who opens the inputs (podman runs as root) */
	if (run_as_creator(r)) {
		snprintf(uid, sizeof(uid), "%u", r->obj.uid);
		snprintf(gid, sizeof(gid), "%u", r->obj.gid);
		argv[n++] = "-u";
		argv[n++] = uid;
		argv[n++] = "-g";
		argv[n++] = gid;
	}
	for (int i = 0; i < ncg; i++) {
		argv[n++] = "-c";
		argv[n++] = cgd[i];
	}
	if (r->res.procs_per_node > 1 && !r->image[0]) {
		snprintf(procs, sizeof(procs), "%ld", r->res.procs_per_node);
		argv[n++] = "-n";
		argv[n++] = procs;
	}
	n += array_args(r, argv + n, num);
	argv[n++] = r->dir;
	argv[n++] = (char *)work;
	argv[n++] = r->command;
	argv[n] = NULL;
	rc = run_envp(r, &env, work);
	if (rc)
		return err_set(e, rc, "out of memory");
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
				 POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(pid, helper, NULL, &attr, argv, env.v);
	posix_spawnattr_destroy(&attr);
	envp_free(&env);
	if (rc)
		return err_set(e, -rc, "cannot start %s: %s", helper,
			       strerror(rc));
	return 0;
}

/* The metrics (or params) file, the run's user's (the folder it is in
 * is the daemon's: the user can write the file, never replace it). */
static int make_raw(struct run_ctx *r, const char *name, struct err *e)
{
	char path[PATH_MAX];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(e, -errno, "cannot create %s: %s", name,
			       strerror(errno));
	rc = run_as_creator(r) && fchown(fd, r->obj.uid, r->obj.gid) ? -errno : 0;
	close(fd);
	if (rc)
		return err_set(e, rc, "cannot give %s to uid %u: %s", name,
			       r->obj.uid, strerror(-rc));
	return 0;
}

static int make_metrics(struct run_ctx *r, struct err *e)
{
	int rc = make_raw(r, RUN_METRICS_RAW, e);

	return rc ? rc : make_raw(r, RUN_PARAMS_RAW, e);
}

/* The working copy, made as the run's user (0700, theirs), of code/ or
 * of all the run's files (the backend says which). */
static int make_work(struct run_ctx *r, const char *work, struct err *e)
{
	char root[PATH_MAX];
	int rc;

	rc = userfile_work_root(r->dir, root, sizeof(root), e);
	if (rc < 0)
		return rc;
	if (!run_as_creator(r))
		return copy_tree_as(root, work, getuid(), getgid(), e);
	return copy_tree_as(root, work, r->obj.uid, r->obj.gid, e);
}

static int local_start(struct target_ctx *t, struct run_ctx *r,
		       struct err *e)
{
	struct local_target *l = lt(t);
	char work[PATH_MAX], pidf[PATH_MAX];
	char cgd[CG_DIRS_MAX][4096];
	struct local_run *lr;
	pid_t pid;
	int rc, ncg;

	snprintf(pidf, sizeof(pidf), "%s/%s", r->dir, RUN_PID);
	if (!access(pidf, F_OK))	/* a supervisor claimed it before */
		return t->drv->adopt(t, r, e);
	rc = ws_run_transition(r->ws, r, RS_STARTING, -1, NULL);
	if (rc)
		return rc == -EAGAIN ? 0 : err_set(e, rc, "the store failed");
	snprintf(work, sizeof(work), "%s/%s", r->dir, RUN_WORK);
	/* the GPUs first: a container's --device names them */
	gpu_pool_take(&l->gpus, r->obj.id, r->res.gpus, r->obj.gpus,
		      sizeof(r->obj.gpus));
	rc = make_work(r, work, e);
	if (!rc)
		rc = make_metrics(r, e);
	if (!rc && r->image[0])
		rc = local_image_files(r, work, cfg_long(&t->config,
				       "pids_max", CG_PIDS_DEFAULT), e);
	ncg = rc ? rc : run_cg_create(t, r, cgd, e);
	if (ncg < 0) {
		gpu_pool_put(&l->gpus, r->obj.id);
		return ncg;
	}
	lr = calloc(1, sizeof(*lr));
	if (!lr) {
		gpu_pool_put(&l->gpus, r->obj.id);
		run_cg_end(r);
		return err_set(e, -ENOMEM, "out of memory");
	}
	rc = spawn_supervisor(r, work, cgd, ncg, &pid, e);
	if (rc) {
		gpu_pool_put(&l->gpus, r->obj.id);
		run_cg_end(r);
		free(lr);
		return rc;
	}
	r->priv = lr;
	lr->pid = pid;
	lr->holds_slot = run_slots(t, r);
	l->running += lr->holds_slot;
	r->started = 1;
	r->wait_fd = pidfd_open(pid, 0);
	snprintf(r->obj.backend_id, sizeof(r->obj.backend_id), "pid %d",
		 (int)pid);
	gethostname(r->obj.node, sizeof(r->obj.node) - 1);
	ws_run_transition(r->ws, r, RS_RUNNING, -1, NULL);
	return 0;
}

/* ---- poll --------------------------------------------------------------- */

/* A file the supervisor wrote in the run's (daemon-only) folder, opened
 * without following a symlink. */
static FILE *open_record(struct run_ctx *r, const char *name)
{
	char path[PATH_MAX];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

/* Read RUNDIR/pid: supervisor pid, child pgid, start ticks. */
static int read_pid_file(struct run_ctx *r, pid_t *pid, pid_t *pgid,
			 unsigned long long *ticks)
{
	int n = 0, p = 0, g = 0;
	FILE *f;

	f = open_record(r, RUN_PID);
	if (!f)
		return -ENOENT;
	n = fscanf(f, "%d %d %llu", &p, &g, ticks);
	fclose(f);
	if (n != 3)
		return -EAGAIN;
	*pid = p;
	*pgid = g;
	return 0;
}

static int read_exit(struct run_ctx *r, int *code)
{
	FILE *f;
	int n;

	f = open_record(r, RUN_EXIT);
	if (!f)
		return -ENOENT;
	n = fscanf(f, "%d", code);
	fclose(f);
	return n == 1 ? 0 : -EIO;
}

static int supervisor_alive(struct local_run *lr)
{
	int status;

	if (lr->pid <= 0)
		return 0;
	if (waitpid(lr->pid, &status, WNOHANG) == lr->pid)
		return 0;
	return kill(lr->pid, 0) == 0 || errno == EPERM;
}

static void release_slot(struct target_ctx *t, struct run_ctx *r, int ended)
{
	struct local_run *lr = r->priv;
	struct local_target *l = lt(t);

	if (lr && lr->holds_slot) {
		l->running -= lr->holds_slot;
		lr->holds_slot = 0;
		gpu_pool_put(&l->gpus, r->obj.id);
	}
	/* Reap our supervisor: once the run has ended it exits right after
	 * writing the exit file (an adopted one is not our child: ECHILD at
	 * once); a run still going (the daemon stops) is left to run. */
	if (lr && lr->pid > 0) {
		int flags = ended ? 0 : WNOHANG;

		while (waitpid(lr->pid, NULL, flags) < 0 && errno == EINTR)
			;
		lr->pid = 0;
	}
	if (r->wait_fd >= 0) {
		close(r->wait_fd);
		r->wait_fd = -1;
	}
}

/* The end of an array run: Completed when every task is, else Failed
 * with the failed tasks named (the exit code: the first to fail). */
static void finish_array(struct run_ctx *r, int code, int oom)
{
	char why[ERR_MSG_MAX], lim[32];
	size_t o;
	int nf;

	nf = run_array_end(r, r->obj.cancel, why, sizeof(why));
	if (r->obj.cancel) {
		ws_run_transition(r->ws, r, RS_CANCELED, code, NULL);
		return;
	}
	if (!nf && !code) {
		ws_run_transition(r->ws, r, RS_COMPLETED, 0, NULL);
		return;
	}
	if (nf <= 0)
		snprintf(why, sizeof(why), "the array's launcher ended with"
			 " code %d before its tasks did (see the log)", code);
	o = strlen(why);
	if (oom && o < sizeof(why)) {
		cg_mem_spelling(r->res.memory_mib, lim, sizeof(lim));
		snprintf(why + o, sizeof(why) - o, "; the run ran out of"
			 " memory (limit %s a task)", lim);
	}
	ws_run_transition(r->ws, r, RS_FAILED, code, why);
}

static void finish(struct target_ctx *t, struct run_ctx *r, int code)
{
	struct local_run *lr = r->priv;
	char why[ERR_MSG_MAX], lim[32];
	int oom;

	oom = run_cg_end(r);	/* no setsid child outlives its run */
	release_slot(t, r, 1);
	if (r->res.array_n) {
		finish_array(r, code, oom);
	} else if (r->obj.cancel && !lr->timed_out) {
		ws_run_transition(r->ws, r, RS_CANCELED, code, NULL);
	} else if (lr->timed_out) {
		snprintf(why, sizeof(why), "the run exceeded its time limit of"
			 " %llu s and was stopped",
			 (unsigned long long)r->res.time_secs);
		ws_run_transition(r->ws, r, RS_FAILED, code, why);
	} else if (oom) {
		cg_mem_spelling(r->res.memory_mib, lim, sizeof(lim));
		snprintf(why, sizeof(why), "the run ran out of memory (limit"
			 " %s)", lim);
		ws_run_transition(r->ws, r, RS_FAILED, code, why);
	} else if (code == 0) {
		ws_run_transition(r->ws, r, RS_COMPLETED, 0, NULL);
	} else {
		if (code > 128)
			snprintf(why, sizeof(why), "the command was killed by"
				 " signal %d (%s)", code - 128,
				 strsignal(code - 128));
		else if (!r->image[0] || code != 125 ||
			 !ct_run_failure(r->dir, why, sizeof(why)))
			snprintf(why, sizeof(why), "the command exited with"
				 " code %d", code);
		ws_run_transition(r->ws, r, RS_FAILED, code, why);
	}
}

/* Signal the command's process group: 0, or -EAGAIN while the supervisor
 * has not recorded it yet (just started). */
static int signal_group(struct run_ctx *r, int sig)
{
	struct local_run *lr = r->priv;
	unsigned long long ticks;
	pid_t pid, pgid, leader_sid;

	if (lr->pgid <= 0 && !read_pid_file(r, &pid, &pgid, &ticks))
		lr->pgid = pgid;
	if (lr->pgid <= 0)
		return -EAGAIN;
	/* The group's id is its leader's pid: once the whole group has
	 * ended, another process may have it.  A leader that is there must
	 * be in the supervisor's session (whose id no new process can take
	 * while any member lives); a group whose leader has ended is
	 * signalled for its members left. */
	pid = lr->pid;
	if (pid <= 0 && read_pid_file(r, &pid, &pgid, &ticks))
		pid = 0;
	leader_sid = proc_session(lr->pgid);
	if (!leader_sid || (pid > 0 && leader_sid == pid))
		kill(-lr->pgid, sig);
	return 0;
}

/* TERM now, KILL after cancel_grace_seconds: called every tick. */
static void stop_step(struct target_ctx *t, struct run_ctx *r)
{
	struct local_run *lr = r->priv;
	long grace = cfg_long(&t->config, "cancel_grace_seconds", 10);

	char name[CG_NAME_MAX];

	run_cg(r, name);
	/* an array's launcher passes TERM on and KILLs its tasks after
	 * the grace itself: it must live till then to see them end */
	if (r->res.array_n)
		grace += 5;
	if (!lr->term_sent) {
		if (!signal_group(r, SIGTERM))
			lr->term_sent = wall_s();
		cg_signal(name, SIGTERM);	/* setsid children too */
	} else if (wall_s() - lr->term_sent >= grace) {
		signal_group(r, SIGKILL);
		cg_kill(name);
	}
}

static void poll_one(struct target_ctx *t, struct run_ctx *r)
{
	struct local_run *lr = r->priv;
	int code;

	if (!lr)
		return;
	if (read_exit(r, &code) == 0) {
		finish(t, r, code);
		return;
	}
	if (!supervisor_alive(lr)) {
		if (read_exit(r, &code) == 0) {
			finish(t, r, code);
			return;
		}
		run_cg_end(r);
		release_slot(t, r, 1);
		ws_run_transition(r->ws, r, RS_FAILED, -1, "the run's"
				  " supervisor died without recording an exit"
				  " code");
		return;
	}
	/* an array's time limit is each task's: its launcher's */
	if (r->res.time_secs && !r->res.array_n && r->obj.started > 0 &&
	    wall_s() - r->obj.started > (double)r->res.time_secs) {
		lr->timed_out = 1;
		stop_step(t, r);
	}
}

static void local_poll(struct target_ctx *t, struct run_ctx **runs, int n)
{
	for (int i = 0; i < n; i++)
		poll_one(t, runs[i]);
}

static int local_cancel(struct target_ctx *t, struct run_ctx *r,
			struct err *e)
{
	(void)e;
	if (r->priv)
		stop_step(t, r);
	return 0;
}

/* ---- adopt ---------------------------------------------------------- */

static int local_adopt(struct target_ctx *t, struct run_ctx *r,
		       struct err *e)
{
	struct local_target *l = lt(t);
	unsigned long long ticks = 0;
	struct local_run *lr;
	pid_t pid = 0, pgid = 0;
	int rc, code;

	cg_init(r);
	rc = read_pid_file(r, &pid, &pgid, &ticks);
	for (int i = 0; rc == -EAGAIN && i < 40; i++) {
		nap_ms(50);	/* the supervisor is writing it */
		rc = read_pid_file(r, &pid, &pgid, &ticks);
	}
	if (rc == -ENOENT)
		return -ENOENT;		/* never started: start it */
	lr = calloc(1, sizeof(*lr));
	if (!lr)
		return err_set(e, -ENOMEM, "out of memory");
	r->priv = lr;
	r->started = 1;
	if (rc == 0 && proc_start_ticks(pid) == ticks) {
		lr->pid = pid;
		lr->pgid = pgid;
		r->wait_fd = pidfd_open(pid, 0);
	}
	lr->holds_slot = run_slots(t, r);
	l->running += lr->holds_slot;
	gpu_pool_retake(&l->gpus, r->obj.id, r->obj.gpus);
	if (r->obj.state != RS_RUNNING && read_exit(r, &code))
		ws_run_transition(r->ws, r, RS_RUNNING, -1, NULL);
	return 0;
}

static void local_release_run(struct target_ctx *t, struct run_ctx *r)
{
	release_slot(t, r, run_state_final(r->obj.state));
	free(r->priv);
	r->priv = NULL;
}

static void local_release(struct target_ctx *t)
{
	free(t->priv);
	t->priv = NULL;
}

const struct driver local_driver = {
	.type		= "local",
	.config_keys	= local_keys,
	.live_keys	= local_keys,
	.can_host	= 1,
	.inputs		= 1,
	.environments	= 1,
	.arrays		= 1,
	.validate	= local_validate,
	.check_run	= local_check_run,
	.provision	= local_provision,
	.deprovision	= local_deprovision,
	.refresh	= local_nodes,
	.can_start	= local_can_start,
	.start		= local_start,
	.poll		= local_poll,
	.cancel		= local_cancel,
	.adopt		= local_adopt,
	.release_run	= local_release_run,
	.release	= local_release,
	.check_deploy	= local_check_deploy,
	.replica_start	= local_replica_start,
	.replica_poll	= local_replica_poll,
	.replica_stop	= local_replica_stop,
	.replica_adopt	= local_replica_adopt,
	.replica_load	= local_replica_load,
	.replica_release = local_replica_release,
	.health		= local_health,
};
