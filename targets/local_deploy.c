// SPDX-License-Identifier: MIT
/*
 * The local driver's deployments: each replica is a process on this
 * machine, started with posix_spawn in a session (and process group) of
 * its own, stdout and stderr appended to the deployment's log, its pid
 * and start time in <dir>/replicas/g<GEN>-<SLOT>.pid so that a restarted
 * daemon adopts it (the start time tells it from a process that reused
 * the pid).  It is stopped by that pid only: TERM, then KILL.  With
 * cgroups (cgroup.h) each replica has one, rep-<id>-g<gen>-<slot>, joined
 * before the server starts; its end kills every process of it.
 *
 * replicas/ is the daemon's alone (0711, never the deployment user's):
 * what the daemon reads back there, and kills by, nobody else can write.
 * A replica tells a start failure in replicas/g<GEN>-<SLOT>/err, in a
 * folder of its user's own; the daemon reads it without following a
 * symlink, and only a file of that user's.
 *
 * A replica is ready when a process of its group holds a listening TCP
 * socket on the deployment's port (/proc/net/tcp{,6} and /proc/PID/fd):
 * a new replica counts only once it listens itself, not because an old
 * one answers on the shared port.
 *
 * A replica of a generation with an image (the deployment's environment)
 * is podman run of the server in a container instead: see "in an
 * environment" below.
 */
#include "local_deploy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/vec.h"
#include "../backend/ws.h"
#include "cgroup.h"
#include "../lib/copy.h"
#include "listen.h"
#include "local_image.h"
#include "proc.h"
#include "replica.h"

struct local_rep {
	pid_t pid;			/* also the process group */
	unsigned long long ticks;	/* start time, against pid reuse */
	int child;			/* ours to reap */
	pid_t ct;			/* in an environment: the container's
					 * init, 0 until podman wrote it */
	unsigned long long ct_ticks;
	pid_t srv;			/* the process that listens, 0 unknown */
	/* the liveness probe of this replica (see live_step) */
	int probe_fd;			/* a GET / in flight, or -1 */
	int probe_port;			/* its own port, 0 until found */
	double probe_at;		/* when sent, or when the next is due */
	int probe_fails;		/* in a row */
	int wedged;			/* KILLed for not answering */
};

#define LIVE_EVERY_S	2.0	/* a GET / to each ready replica */
#define LIVE_WAIT_S	3.0	/* its answer within this */
#define LIVE_FAILS	3	/* unanswered in a row: killed, restarted */

static struct local_rep *rep_priv(pid_t pid)
{
	struct local_rep *lr = calloc(1, sizeof(*lr));

	if (lr) {
		lr->pid = pid;
		lr->probe_fd = -1;
	}
	return lr;
}

/* ---- ports -------------------------------------------------------------- */

/* Bind @host:@port as a new server would (SO_REUSEADDR, no REUSEPORT):
 * 0 and the port bound, or -errno. */
static int try_bind(const char *host, int port, int *bound)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd, one = 1, rc;

	rc = replica_addr(host, port, &sa, &len);
	if (rc)
		return rc;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, (struct sockaddr *)&sa, len) ? -errno : 0;
	if (!rc && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		*bound = ntohs(sa.ss_family == AF_INET6 ?
			       ((struct sockaddr_in6 *)&sa)->sin6_port :
			       ((struct sockaddr_in *)&sa)->sin_port);
	close(fd);
	return rc;
}

int local_check_deploy(const struct kv_list *config,
		       const struct deploy_spec *s, struct err *e)
{
	int bound, rc;

	(void)config;
	rc = try_bind(s->host, s->port, &bound);
	if (rc == -EADDRINUSE)
		return err_set(e, -EADDRINUSE, "port %d on %s is already in use:"
			       " choose another in config (or port = 0)",
			       s->port, s->host);
	if (rc)
		return err_set(e, rc, "cannot listen on %s:%d: %s", s->host,
			       s->port, strerror(-rc));
	return 0;
}

/* ---- files -------------------------------------------------------------- */

static void rep_file(const struct deploy_ctx *d, const struct replica *r,
		     const char *ext, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s/g%d-%d.%s", d->dir, DEP_REPLICAS,
		 r->gen, r->slot, ext);
}

/* A file in the replica's own folder: err (MLFS_ERROR_FILE), stats
 * (MLFS_STATS_FILE). */
static void rep_own(const struct deploy_ctx *d, const struct replica *r,
		    const char *name, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s/g%d-%d/%s", d->dir, DEP_REPLICAS,
		 r->gen, r->slot, name);
}

static void rep_err(const struct deploy_ctx *d, const struct replica *r,
		    char *buf)
{
	rep_own(d, r, "err", buf);
}

static int uses_creator(const struct deploy_ctx *d)
{
	return geteuid() == 0 && d->obj.uid != 0;
}

/*
 * replicas/, opened: the daemon's own, 0711.  One left by an older mlfs
 * (given to the deployment's user) or not a folder is removed first:
 * nothing in a folder a user could write is trusted.  fd or -errno.
 */
static int open_replicas(const struct deploy_ctx *d, int make)
{
	char dir[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "%s/%s", d->dir, DEP_REPLICAS);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) || st.st_uid != geteuid() ||
			(st.st_mode & 022))) {
		close(fd);
		fd = -1;
		if (!make)
			return -EPERM;
		remove_tree(dir);
	}
	if (fd < 0 && make) {
		if (mkdir(dir, 0711) && errno != EEXIST)
			return -errno;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd >= 0 && make && fchmod(fd, 0711)) {
		close(fd);
		return -errno;
	}
	return fd < 0 ? -errno : fd;
}

/* Folder g<GEN>-<SLOT> of replicas/ anew, the replica user's (0700). */
static int make_rep_dir(const struct deploy_ctx *d, const struct replica *r,
			int dir)
{
	char name[64], path[PATH_MAX];
	int fd, rc = 0;

	snprintf(name, sizeof(name), "g%d-%d", r->gen, r->slot);
	snprintf(path, sizeof(path), "%s/%s/%s", d->dir, DEP_REPLICAS, name);
	remove_tree(path);
	if (mkdirat(dir, name, 0700))
		return -errno;
	fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (uses_creator(d) && fchown(fd, d->obj.uid, d->obj.gid))
		rc = -errno;
	close(fd);
	return rc;
}

static int write_pid_file(const struct deploy_ctx *d, const struct replica *r,
			  const struct local_rep *lr)
{
	char name[64], tmp[72], line[64];
	int dir, fd, n, rc = 0;

	dir = open_replicas(d, 0);
	if (dir < 0)
		return dir;
	snprintf(name, sizeof(name), "g%d-%d.pid", r->gen, r->slot);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dir, tmp, 0);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out_close_dir;
	}
	n = snprintf(line, sizeof(line), "%d %llu\n", (int)lr->pid, lr->ticks);
	if (write(fd, line, n) != n)
		rc = -EIO;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(dir, tmp, dir, name))
		rc = -errno;
out_close_dir:
	close(dir);
	return rc;
}

/* ---- start ---------------------------------------------------------------- */

struct envp {
	char **v;
	int n;
	size_t cap;
	int oom;			/* an envp_add failed */
};

static int envp_add(struct envp *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int envp_add(struct envp *e, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (vec_reserve(e, 2)) {
		e->oom = 1;
		return -ENOMEM;
	}
	va_start(ap, fmt);
	rc = vasprintf(&e->v[e->n], fmt, ap);
	va_end(ap);
	if (rc < 0) {
		e->oom = 1;
		return -ENOMEM;
	}
	e->v[++e->n] = NULL;
	return 0;
}

static void envp_free(struct envp *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

/* HOME, USER, LOGNAME, SHELL of the replica's user (passwd), a default
 * PATH and LANG: nothing of the daemon's own environment. */
static int rep_defaults(const struct deploy_ctx *d, struct envp *e)
{
	uid_t uid = uses_creator(d) ? d->obj.uid : getuid();
	struct passwd pw, *p = NULL;
	char buf[4096], num[16];
	int rc;

	getpwuid_r(uid, &pw, buf, sizeof(buf), &p);
	snprintf(num, sizeof(num), "%u", (unsigned)uid);
	rc = envp_add(e, "PATH=%s", uid ? "/usr/local/bin:/usr/bin:/bin" :
		      "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		      "/sbin:/bin");
	if (!rc)
		rc = envp_add(e, "HOME=%s", p && *p->pw_dir ? p->pw_dir : "/");
	if (!rc)
		rc = envp_add(e, "USER=%s", p ? p->pw_name : num);
	if (!rc)
		rc = envp_add(e, "LOGNAME=%s", p ? p->pw_name : num);
	if (!rc)
		rc = envp_add(e, "SHELL=%s", p && *p->pw_shell ? p->pw_shell :
			      "/bin/sh");
	if (!rc)
		rc = envp_add(e, "LANG=C.UTF-8");
	return rc;
}

/*
 * The generation's env lines, as MLFS_ENV_KEY=VALUE: a name nothing in
 * libc or ld.so reads, so that LD_PRELOAD & co never act in the root sh
 * and setpriv that start the server (as mlfs-run does for runs).
 * mlfs-serve.py, as the replica's user, makes them KEY=VALUE.
 */
static int rep_user_env(const struct deploy_ctx *d,
			const struct deploy_spec *s, struct envp *e, int *n)
{
	struct kv_list env;
	int rc;

	rc = deploy_gen_env(d, s->gen, &env);
	for (int i = 0; !rc && i < env.n; i++)
		rc = envp_add(e, "MLFS_ENV_%s=%s", env.items[i].key,
			      env.items[i].value);
	*n = env.n;
	kv_free(&env);
	return rc;
}

/* Built by the daemon alone: setpriv runs as root with it.  *@nenv: how
 * many env lines the user gave. */
static int rep_envp(const struct deploy_ctx *d, const struct deploy_spec *s,
		    const struct replica *r, struct envp *e, int *nenv)
{
	char err[PATH_MAX];
	int rc;

	rc = rep_defaults(d, e);
	if (!rc)
		rc = rep_user_env(d, s, e, nenv);
	rep_err(d, r, err);
	if (!rc)
		rc = envp_add(e, "AZUREML_MODEL_DIR=%s", s->model_dir);
	if (!rc)
		rc = envp_add(e, "MLFS_KEY=%s", d->key);
	if (!rc)
		rc = envp_add(e, "MLFS_ERROR_FILE=%s", err);
	rep_own(d, r, "stats", err);
	if (!rc)
		rc = envp_add(e, "MLFS_STATS_FILE=%s", err);
	if (!rc)
		rc = envp_add(e, "MLFS_DEPLOYMENT=%s", d->obj.name);
	if (!rc)
		rc = envp_add(e, "MLFS_REPLICA=%d", r->slot);
	if (!rc)
		rc = envp_add(e, "MLFS_HOST=%s", s->host);
	if (!rc)
		rc = envp_add(e, "PORT=%d", s->port);
	if (!rc)
		rc = envp_add(e, "PYTHONUNBUFFERED=1");
	return rc;
}

static int spawn_rep(const struct deploy_ctx *d, const struct deploy_spec *s,
		     char *const argv[], char *const envp[], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char log[PATH_MAX];
	sigset_t none, def;
	int rc;

	ws_obj_path(d->ws, d->obj.id, RUN_LOG, log);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_APPEND |
					 O_CREAT | O_NOFOLLOW, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addchdir_np(&fa, s->code);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
				 POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* ---- cgroups -------------------------------------------------------------- */

static void rep_cg(const struct deploy_ctx *d, const struct replica *r,
		   char *name)
{
	snprintf(name, CG_NAME_MAX, "rep-%lld-g%d-%d", (long long)d->obj.id,
		 r->gen, r->slot);
}

/*
 * The replica's cgroup, and the words that join it in front of @argv: a
 * root /bin/sh (the daemon's words only, no user's) writes its own pid into
 * each cgroup.procs and execs the rest, so that the server is contained
 * from its first instruction.  Returns the number of words, or -errno.
 */
static int rep_cg_join(struct target_ctx *t, struct deploy_ctx *d,
		       struct replica *r, char dirs[CG_DIRS_MAX][4096],
		       char **argv, struct err *e)
{
	static char sh[] = "/bin/sh", c[] = "-c", me[] = "mlfs-cgjoin",
		    sep[] = "--", join[] = "for d; do [ \"$d\" = -- ] && break;"
		    " echo 0 > \"$d/cgroup.procs\" || exit 126; shift; done;"
		    " shift; exec \"$@\"";
	const char *pm = kv_get(&t->config, "pids_max");
	struct cg_limits lim = {
		.pids = pm && *pm ? atol(pm) : CG_PIDS_DEFAULT,
	};
	char name[CG_NAME_MAX];
	int n, k = 0;

	cg_setup(ws_state_dir(d->ws), getenv("MLFS_CGROUP"));
	rep_cg(d, r, name);
	n = cg_create(name, &lim, dirs, e);
	if (n <= 0)
		return n;
	argv[k++] = sh;
	argv[k++] = c;
	argv[k++] = join;
	argv[k++] = me;
	for (int i = 0; i < n; i++)
		argv[k++] = dirs[i];
	argv[k++] = sep;
	return k;
}

static void rep_cg_end(struct deploy_ctx *d, struct replica *r)
{
	char name[CG_NAME_MAX];

	rep_cg(d, r, name);
	cg_kill(name);
	cg_remove(name);
}

/* Debian's python3 (scripts/deps.sh installs it) rather than whatever PATH
 * finds first: a per-user interpreter (pyenv …) may be out of the reach of
 * the deployment's owner. */
static char *python3(void)
{
	static char sys_py[] = "/usr/bin/python3", any[] = "python3";

	return access(sys_py, X_OK) ? any : sys_py;
}

/*
 * A root daemon runs a deployment as its creator, as runs are: argv is
 * prefixed with util-linux's setpriv (uid, gid, groups).  Returns the
 * number of words put in @pre.
 */
static int as_creator(const struct deploy_ctx *d, char pre[4][32])
{
	if (!uses_creator(d))
		return 0;
	snprintf(pre[0], 32, "setpriv");
	snprintf(pre[1], 32, "--reuid=%u", d->obj.uid);
	snprintf(pre[2], 32, "--regid=%u", d->obj.gid);
	snprintf(pre[3], 32, getpwuid(d->obj.uid) ? "--init-groups" :
		 "--clear-groups");
	return 4;
}

/*
 * The server's argv after the daemon's words: mlfs-serve.py, or the
 * user's command in /bin/sh -c, which mlfs-serve.py --exec-env starts
 * when there are env lines (it turns MLFS_ENV_KEY into KEY, as the user).
 */
static void server_argv(const struct deploy_spec *s, int nenv,
			char *helper, char nums[3][24], char **argv)
{
	char *serve[] = { python3(), helper, "--entry", (char *)s->entry,
			  "--host", (char *)s->host, "--port", nums[0],
			  "--max-body", nums[1], "--read-timeout", nums[2],
			  "--raw", (char *)deploy_raw_name(s->raw), NULL };
	char *shell[] = { python3(), helper, "--exec-env", "--", "/bin/sh",
			  "-c", (char *)s->command, NULL };
	char **cmd = serve;
	int k = 0;

	snprintf(nums[0], 24, "%d", s->port);
	snprintf(nums[1], 24, "%ld", s->max_body);
	snprintf(nums[2], 24, "%d", s->read_timeout);
	if (s->command[0])
		cmd = nenv ? shell : shell + 4;
	while (cmd[k]) {
		argv[k] = cmd[k];
		k++;
	}
	argv[k] = NULL;
}

/* argv: the cgroup joiner, setpriv, the server (server_argv).  The
 * number of words, or -errno + sentence (no cgroup left then). */
static int rep_argv(struct target_ctx *t, struct deploy_ctx *d,
		    struct replica *r, char cgd[CG_DIRS_MAX][4096],
		    char pre[4][32], char **cmd, char **argv, struct err *e)
{
	int n, j;

	j = rep_cg_join(t, d, r, cgd, argv, e);
	if (j < 0)
		return j;
	n = as_creator(d, pre);
	for (int i = 0; i < n; i++)
		argv[j + i] = pre[i];
	if (n)
		argv[j + n++] = "--";
	n += j;
	for (int i = 0; cmd[i]; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	return n;
}

/* replicas/g<GEN>-<SLOT>/ anew.  0 or -errno + sentence. */
static int rep_folder(struct deploy_ctx *d, struct replica *r, struct err *e)
{
	int dir, rc;

	dir = open_replicas(d, 1);
	rc = dir < 0 ? dir : make_rep_dir(d, r, dir);
	if (dir >= 0)
		close(dir);
	return rc ? err_set(e, rc, "cannot make the replica's folder: %s",
			    strerror(-rc)) : 0;
}

/* @pid spawned: ours to reap, recorded for a restarted daemon. */
static void rep_started(struct deploy_ctx *d, struct replica *r,
			struct local_rep *lr, pid_t pid)
{
	lr->pid = pid;
	lr->child = 1;
	lr->ticks = proc_start_ticks(pid);
	r->priv = lr;
	r->pid = pid;
	if (write_pid_file(d, r, lr))
		log_warn("deployment %s: cannot record replica %d's pid",
			 d->obj.name, r->slot);
}

/* ---- in an environment -------------------------------------------------- */

/*
 * A replica of a generation with an image is `podman run`, attached, as
 * root with a fixed environment: that podman process is the one
 * replicas/g<GEN>-<SLOT>.pid records and the daemon reaps, so that
 * crashes, adoption and restarts go as for a process.  Inside, the
 * server runs as the deployment's creator (--user: never root unless root
 * made it), with no capability and no new privileges.
 *  - --network=host: the replicas of a deployment share its port with
 *    SO_REUSEPORT and a rolling update starts new ones on the port the
 *    old ones hold; a port published per container (-p) cannot be
 *    shared, and the readiness check reads the host's /proc/net/tcp.
 *  - --log-driver=passthrough: the server writes into the deployment's
 *    log itself (the fds podman was given), not through conmon.
 *  - --pidfile: podman writes the container's init (replicas/g<GEN>-<SLOT>.ct);
 *    readiness, the liveness probe and stop act on it (its session holds
 *    the server; KILL to it ends the container's pid namespace).
 *  - the env lines, the key and the replica's variables go in an
 *    --env-file (0600, the daemon's): data for podman, never on a command
 *    line nor in a root process's environment.
 * Mounted: the model version's files (/mlfs/model), the generation's
 * snapshot (/mlfs/code, the working directory) and mlfs-serve
 * (/mlfs/lib), read-only; the replica's own folder (/mlfs/rep: its err
 * and stats files) read-write.
 */
#define CT_MODEL	"/mlfs/model"
#define CT_CODE		"/mlfs/code"
#define CT_LIB		"/mlfs/lib"
#define CT_REP		"/mlfs/rep"

/* mlfs-<hash of the state dir>-d<ID>-g<GEN>-<SLOT>: one workspace's
 * replicas never take another's name (runs: local_image_name). */
static void ct_name(const struct deploy_ctx *d, const struct replica *r,
		    char *buf, size_t sz)
{
	const char *s = ws_state_dir(d->ws);
	uint32_t h = fnv1a32_add(FNV32_BASIS, s, strlen(s));

	snprintf(buf, sz, "mlfs-%08x-d%lld-g%d-%d", h, (long long)d->obj.id,
		 r->gen, r->slot);
}

/* The container's KEY=VALUE lines: defaults, the generation's env lines,
 * then mlfs's own (they win). */
static int ct_env_lines(const struct deploy_ctx *d,
			const struct deploy_spec *s, const struct replica *r,
			FILE *f)
{
	struct kv_list env;
	int rc;

	fprintf(f, "HOME=/tmp\nLANG=C.UTF-8\nPYTHONUNBUFFERED=1\n");
	rc = deploy_gen_env(d, s->gen, &env);
	for (int i = 0; !rc && i < env.n; i++)
		fprintf(f, "%s=%s\n", env.items[i].key, env.items[i].value);
	kv_free(&env);
	fprintf(f, "AZUREML_MODEL_DIR=" CT_MODEL "\nMLFS_KEY=%s\n"
		"MLFS_ERROR_FILE=" CT_REP "/err\n"
		"MLFS_STATS_FILE=" CT_REP "/stats\n", d->key);
	fprintf(f, "MLFS_DEPLOYMENT=%s\nMLFS_REPLICA=%d\nMLFS_HOST=%s\n"
		"PORT=%d\n", d->obj.name, r->slot, s->host, s->port);
	return rc;
}

/* replicas/g<GEN>-<SLOT>.env anew (0600, no link followed), and the .ct
 * of an earlier container of the slot gone.  0 or -errno + sentence. */
static int ct_files(const struct deploy_ctx *d, const struct deploy_spec *s,
		    const struct replica *r, struct err *e)
{
	char name[64];
	FILE *f = NULL;
	int dir, fd, rc;

	dir = open_replicas(d, 0);
	if (dir < 0)
		return err_set(e, dir, "cannot open the replicas' folder");
	snprintf(name, sizeof(name), "g%d-%d.ct", r->gen, r->slot);
	unlinkat(dir, name, 0);
	snprintf(name, sizeof(name), "g%d-%d.env", r->gen, r->slot);
	unlinkat(dir, name, 0);
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	close(dir);
	if (fd >= 0 && !(f = fdopen(fd, "w")))
		close(fd);
	rc = f ? ct_env_lines(d, s, r, f) : -errno;
	if (f && fclose(f) && !rc)
		rc = -EIO;
	return rc ? err_set(e, rc, "cannot write the container's environment:"
			    " %s", strerror(-rc)) : 0;
}

/* Who runs inside, what it may do, where it logs and what it sees. */
static void ct_opts(struct target_ctx *t, const struct deploy_ctx *d,
		    const struct deploy_spec *s, const struct replica *r,
		    struct envp *a)
{
	const char *pm = kv_get(&t->config, "pids_max");
	unsigned long n = local_image_ulimit(RLIMIT_NOFILE);
	unsigned long p = local_image_ulimit(RLIMIT_NPROC);
	char path[PATH_MAX];

	envp_add(a, "--user=%u:%u", uses_creator(d) ? d->obj.uid : getuid(),
		 uses_creator(d) ? d->obj.gid : getgid());
	envp_add(a, "--cap-drop=all");
	envp_add(a, "--security-opt=no-new-privileges");
	envp_add(a, "--ulimit=nofile=%lu:%lu", n, n);
	envp_add(a, "--ulimit=nproc=%lu:%lu", p, p);
	envp_add(a, "--pids-limit=%ld", pm && *pm ? atol(pm) :
		 (long)CG_PIDS_DEFAULT);
	envp_add(a, "--network=host");
	envp_add(a, "--log-driver=passthrough");
	rep_file(d, r, "ct", path);
	envp_add(a, "--pidfile=%s", path);
	rep_file(d, r, "env", path);
	envp_add(a, "--env-file=%s", path);
	envp_add(a, "--volume=%s:" CT_MODEL ":ro", s->model_dir);
	envp_add(a, "--volume=%s:" CT_CODE ":ro", s->code);
	envp_add(a, "--volume=%s:" CT_LIB ":ro", ws_helper_dir(d->ws));
	rep_own(d, r, "", path);
	envp_add(a, "--volume=%s:" CT_REP, path);
	envp_add(a, "--workdir=" CT_CODE);
}

/* podman run …, the image, and the server: mlfs-serve, or the user's
 * command in /bin/sh -c (the env lines are the container's already). */
static void ct_argv(struct target_ctx *t, const struct deploy_ctx *d,
		    const struct deploy_spec *s, const struct replica *r,
		    const char *podman, struct envp *a)
{
	char name[96];

	ct_name(d, r, name, sizeof(name));
	envp_add(a, "%s", podman);
	envp_add(a, "run");
	envp_add(a, "--rm");
	envp_add(a, "--replace");	/* a leftover of a crash */
	envp_add(a, "--name=%s", name);
	envp_add(a, "--runtime=runc");
	envp_add(a, "--init");	/* passes TERM on: the server drains */
	ct_opts(t, d, s, r, a);
	envp_add(a, "%s", s->image);
	if (s->command[0]) {
		envp_add(a, "/bin/sh");
		envp_add(a, "-c");
		envp_add(a, "%s", s->command);
		return;
	}
	envp_add(a, "python3");
	envp_add(a, CT_LIB "/mlfs-serve.py");
	envp_add(a, "--entry=%s", s->entry);
	envp_add(a, "--host=%s", s->host);
	envp_add(a, "--port=%d", s->port);
	envp_add(a, "--max-body=%ld", s->max_body);
	envp_add(a, "--read-timeout=%d", s->read_timeout);
	envp_add(a, "--raw=%s", deploy_raw_name(s->raw));
}

static int ct_start(struct target_ctx *t, struct deploy_ctx *d,
		    struct deploy_spec *s, struct replica *r, struct err *e)
{
	static char *const env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL
	};
	struct envp argv = { 0 };
	char podman[PATH_MAX];
	struct local_rep *lr = NULL;
	pid_t pid;
	int rc;

	if (env_podman(podman, sizeof(podman)))
		return err_set(e, -ENOENT, "environment: " ENV_NO_PODMAN);
	rc = rep_folder(d, r, e);
	if (!rc)
		rc = ct_files(d, s, r, e);
	if (!rc) {
		ct_argv(t, d, s, r, podman, &argv);
		lr = rep_priv(0);
	}
	if (!rc && (argv.oom || !lr))
		rc = err_set(e, -ENOMEM, "out of memory");
	if (!rc && (rc = -spawn_rep(d, s, argv.v, env, &pid)))
		err_set(e, rc, "cannot start %s: %s", podman, strerror(-rc));
	envp_free(&argv);
	if (rc) {
		free(lr);
		return rc;
	}
	rep_started(d, r, lr, pid);
	return 0;
}

/* The container's init, once podman wrote it (replicas/ is the daemon's
 * alone) and while it lives: 1, else 0 (a process replica: never). */
static int ct_find(const struct deploy_ctx *d, const struct replica *r,
		   struct local_rep *lr)
{
	char path[PATH_MAX], line[32];
	struct stat st;
	ssize_t n = -1;
	int fd;

	if (lr->ct)
		return proc_start_ticks(lr->ct) == lr->ct_ticks;
	rep_file(d, r, "ct", path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid())
		n = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[n > 0 ? n : 0] = '\0';
	lr->ct = atoi(line) > 1 ? atoi(line) : 0;
	lr->ct_ticks = lr->ct ? proc_start_ticks(lr->ct) : 0;
	if (!lr->ct_ticks)
		lr->ct = 0;
	return lr->ct != 0;
}

/* @sig to the replica: its container's init when it has one (it passes
 * TERM on; KILL ends the container), else its process group. */
static void rep_signal(const struct deploy_ctx *d, const struct replica *r,
		       struct local_rep *lr, int sig)
{
	if (ct_find(d, r, lr))
		kill(lr->ct, sig);
	else
		kill(-lr->pid, sig);
}

/* The process serving the replica's port: the replica's own pid, or in
 * a container the one of the init's session that listens.  0: none yet. */
static pid_t rep_server(const struct deploy_ctx *d, const struct replica *r,
			const struct deploy_spec *s, struct local_rep *lr)
{
	if (!s->image[0])
		return listen_by_group(lr->pid, s->port) ? lr->pid : 0;
	if (!ct_find(d, r, lr))
		return 0;
	return listen_in_session(lr->ct, s->port);
}

int local_replica_start(struct target_ctx *t, struct deploy_ctx *d,
			struct deploy_spec *s, struct replica *r,
			struct err *e)
{
	char helper[PATH_MAX], nums[3][24], pre[4][32], *argv[40], *cmd[16];
	char cgd[CG_DIRS_MAX][4096];
	struct envp env = { 0 };
	struct local_rep *lr;
	int rc, nenv = 0;
	pid_t pid;

	if (!s->port && (rc = try_bind(s->host, 0, &s->port)))
		return err_set(e, rc, "cannot find a free port on %s: %s",
			       s->host, strerror(-rc));
	listen_handover();
	if (s->image[0])
		return ct_start(t, d, s, r, e);
	snprintf(helper, sizeof(helper), "%s/mlfs-serve.py",
		 ws_helper_dir(d->ws));
	rc = rep_envp(d, s, r, &env, &nenv);
	if (rc) {
		envp_free(&env);
		return err_set(e, rc, "cannot make the replica's environment:"
			       " %s", strerror(-rc));
	}
	server_argv(s, nenv, helper, nums, cmd);
	rc = rep_argv(t, d, r, cgd, pre, cmd, argv, e);
	if (rc < 0) {
		envp_free(&env);
		return rc;
	}
	rc = rep_folder(d, r, e);
	lr = rc ? NULL : rep_priv(0);
	if (!rc && !lr)
		rc = err_set(e, -ENOMEM, "out of memory");
	if (!rc && (rc = -spawn_rep(d, s, argv, env.v, &pid)))
		err_set(e, rc, "cannot start %s: %s", argv[0], strerror(-rc));
	envp_free(&env);
	if (rc) {
		free(lr);
		rep_cg_end(d, r);
		return rc;
	}
	rep_started(d, r, lr, pid);
	lr->srv = pid;	/* setpriv and the server exec: the same pid */
	return 0;
}

/* ---- poll ----------------------------------------------------------------- */

/* 1 while @lr runs; else 0 with *code (-1 unknown). */
static int rep_alive(struct local_rep *lr, int *code)
{
	int status;
	pid_t p;

	*code = -1;
	if (lr->child) {
		p = waitpid(lr->pid, &status, WNOHANG);
		if (p == lr->pid) {
			lr->child = 0;
			lr->ticks = 0;
			*code = WIFEXITED(status) ? WEXITSTATUS(status) :
				128 + WTERMSIG(status);
			return 0;
		}
		if (p == 0)
			return 1;
		lr->child = 0;	/* not ours after all (ECHILD) */
	}
	return lr->ticks && proc_start_ticks(lr->pid) == lr->ticks;
}

/* The start of file @name of the replica's folder into @buf (NUL ended;
 * "" when unreadable).  The user's folder: no symlink, and only a file
 * of the user's (not a hard link to someone else's) is read. */
static void read_own(const struct deploy_ctx *d, const struct replica *r,
		     const char *name, char *buf, size_t sz)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n = -1;
	int fd;

	rep_own(d, r, name, path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1 &&
	    st.st_uid == (uses_creator(d) ? d->obj.uid : geteuid()))
		n = read(fd, buf, sz - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

static void exit_reason(const struct deploy_ctx *d, const struct replica *r,
			const struct deploy_spec *s, int code, struct err *e)
{
	char line[ERR_MSG_MAX - 64];

	read_own(d, r, "err", line, sizeof(line));
	line[strcspn(line, "\n")] = '\0';
	/* podman's own codes: it failed, or the server is not in the image */
	if (s->image[0] && !line[0] && code >= 125 && code <= 127)
		err_set(e, -EIO, "podman could not run the server in image"
			" %.19s (exit %d%s): see log", s->image, code,
			code == 125 ? "" : "; does the image have python3?");
	else
		replica_exit_reason(line, code, e);
}

int local_replica_load(struct target_ctx *t, struct deploy_ctx *d,
		       struct replica *r)
{
	char buf[64];

	(void)t;
	read_own(d, r, "stats", buf, sizeof(buf));
	return replica_stats_in_flight(buf);
}

/*
 * The replica's direct port (mlfs-serve's "direct_port P" in its stats
 * file), once its server is seen to listen there itself: a replica's word
 * alone never sends an endpoint's requests, with this deployment's key,
 * to a port it names.  0: none (yet).
 */
static int direct_port(const struct deploy_ctx *d, const struct replica *r,
		       const struct deploy_spec *s, const struct local_rep *lr)
{
	char buf[64];
	int port;

	read_own(d, r, "stats", buf, sizeof(buf));
	port = replica_stats_direct_port(buf);
	return port && port != s->port && listen_own(lr->srv, port) ? port : 0;
}

/* A probe ended: @ok, or one more failure; LIVE_FAILS in a row and the
 * replica is killed (poll then reports it with the reason). */
static void live_result(const struct deploy_ctx *d, struct local_rep *lr,
			int ok)
{
	if (lr->probe_fd >= 0)
		close(lr->probe_fd);
	lr->probe_fd = -1;
	lr->probe_at = mono_s() + LIVE_EVERY_S;
	lr->probe_fails = ok ? 0 : lr->probe_fails + 1;
	if (lr->probe_fails < LIVE_FAILS || lr->wedged)
		return;
	log_warn("deployment %s: replica pid %d did not answer GET / on"
		 " 127.0.0.1:%d %d times in a row: killing it", d->obj.name,
		 (int)lr->pid, lr->probe_port, LIVE_FAILS);
	lr->wedged = 1;
	kill(lr->ct ? lr->ct : -lr->pid, SIGKILL);
}

/*
 * The liveness probe of one ready replica, without blocking the worker:
 * a GET / is sent to the replica's own port, its answer looked for at the
 * next ticks.  A SIGSTOPped replica, or one whose event loop is wedged,
 * still gets connected by the kernel but never answers.
 */
static void live_step(const struct deploy_ctx *d, struct replica *r,
		      const struct deploy_spec *s, struct local_rep *lr)
{
	int rc;

	if (!lr->srv)	/* adopted: found again */
		lr->srv = rep_server(d, r, s, lr);
	if (!r->direct_port && lr->srv)
		r->direct_port = direct_port(d, r, s, lr);
	if (lr->probe_fd >= 0) {
		rc = replica_probe_check(lr->probe_fd);
		if (rc || mono_s() - lr->probe_at > LIVE_WAIT_S)
			live_result(d, lr, rc > 0);
		return;
	}
	if (mono_s() < lr->probe_at || lr->wedged)
		return;
	if (!lr->probe_port && lr->srv)
		lr->probe_port = listen_probe_port(lr->srv, s->port,
						   r->direct_port);
	if (!lr->probe_port) {
		lr->probe_at = mono_s() + LIVE_EVERY_S;
		return;
	}
	rc = replica_probe_send("127.0.0.1", lr->probe_port, 500);
	lr->probe_at = mono_s();
	if (rc < 0)
		live_result(d, lr, 0);
	else
		lr->probe_fd = rc;
}

int local_replica_poll(struct target_ctx *t, struct deploy_ctx *d,
		       const struct deploy_spec *s, struct replica *r,
		       struct err *e)
{
	struct local_rep *lr = r->priv;
	int code;

	(void)t;
	if (!lr || !rep_alive(lr, &code)) {
		exit_reason(d, r, s, lr ? code : -1, e);
		if (lr && lr->wedged)
			err_set(e, -EIO, "stopped answering its liveness probe"
				" (GET / on 127.0.0.1:%d, %d times in a row)",
				lr->probe_port, LIVE_FAILS);
		r->exit_code = lr ? code : -1;
		return REP_EXITED;
	}
	if (r->state == REP_STARTING && (lr->srv = rep_server(d, r, s, lr)))
		return REP_READY;
	if (r->state == REP_READY)
		live_step(d, r, s, lr);
	return r->state;
}

void local_replica_stop(struct target_ctx *t, struct deploy_ctx *d,
			struct replica *r, int force)
{
	struct local_rep *lr = r->priv;
	char name[CG_NAME_MAX];
	int code;

	(void)t;
	if (lr && rep_alive(lr, &code))
		rep_signal(d, r, lr, force ? SIGKILL : SIGTERM);
	rep_cg(d, r, name);
	if (force)
		cg_kill(name);
	else
		cg_signal(name, SIGTERM);	/* its setsid children too */
}

/* ---- adopt, release ------------------------------------------------------ */

/* Read pid and start time from record @name of the open replicas/. */
static int read_record(int dir, const char *name, int *pid,
		       unsigned long long *ticks)
{
	char line[64];
	struct stat st;
	ssize_t n = -1;
	int fd;

	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid())
		n = read(fd, line, sizeof(line) - 1);
	close(fd);
	line[n > 0 ? n : 0] = '\0';
	return sscanf(line, "%d %llu", pid, ticks) == 2 ? 0 : -1;
}

static struct replica *adopted(int gen, int slot, int pid,
			       unsigned long long ticks)
{
	struct replica *r = calloc(1, sizeof(*r));
	struct local_rep *lr = rep_priv(pid);

	if (!r || !lr) {
		free(r);
		free(lr);
		return NULL;
	}
	lr->ticks = ticks;
	r->gen = gen;
	r->slot = slot;
	r->pid = pid;
	r->priv = lr;
	return r;
}

int local_replica_adopt(struct target_ctx *t, struct deploy_ctx *d,
			struct replica **list)
{
	unsigned long long ticks;
	struct replica *r;
	struct dirent *de;
	int gen, slot, pid, n = 0, dir;
	DIR *dd;

	(void)t;
	cg_setup(ws_state_dir(d->ws), getenv("MLFS_CGROUP"));
	dir = open_replicas(d, 0);	/* none, or not the daemon's alone */
	dd = dir >= 0 ? fdopendir(dir) : NULL;
	if (!dd && dir >= 0)
		close(dir);
	while (dd && (de = readdir(dd))) {
		if (sscanf(de->d_name, "g%d-%d.pid", &gen, &slot) != 2 ||
		    !strstr(de->d_name, ".pid") || strstr(de->d_name, ".tmp"))
			continue;
		if (read_record(dir, de->d_name, &pid, &ticks) || pid <= 0 ||
		    !ticks || proc_start_ticks(pid) != ticks) {
			unlinkat(dir, de->d_name, 0);	/* a reboot, a crash */
			continue;
		}
		r = adopted(gen, slot, pid, ticks);
		if (!r)
			break;
		r->next = *list;
		*list = r;
		n++;
	}
	if (dd)
		closedir(dd);
	return n;
}

void local_replica_release(struct target_ctx *t, struct deploy_ctx *d,
			   struct replica *r)
{
	struct local_rep *lr = r->priv;
	char path[PATH_MAX];
	int code;

	(void)t;
	if (lr && lr->child && !rep_alive(lr, &code))
		lr->child = 0;
	rep_cg_end(d, r);	/* no stray child outlives its replica */
	if (lr && ct_find(d, r, lr))	/* its podman was killed alone */
		kill(lr->ct, SIGKILL);
	rep_file(d, r, "pid", path);
	unlink(path);
	rep_file(d, r, "ct", path);
	unlink(path);
	rep_file(d, r, "env", path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s/g%d-%d", d->dir, DEP_REPLICAS,
		 r->gen, r->slot);
	remove_tree(path);
	if (lr && lr->probe_fd >= 0)
		close(lr->probe_fd);
	free(lr);
	r->priv = NULL;
}

/* ---- health ------------------------------------------------------------------- */

int local_health(struct target_ctx *t, struct deploy_ctx *d,
		 const struct deploy_spec *s, struct err *e)
{
	const char *host = s->host;

	(void)t;
	(void)d;
	if (!strcmp(host, "0.0.0.0"))
		host = "127.0.0.1";
	else if (!strcmp(host, "::"))
		host = "::1";
	return replica_probe(host, s->port, 1000, e);
}
