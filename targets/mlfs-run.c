// SPDX-License-Identifier: MIT
/*
 * mlfs-run - the supervisor of one local run.
 *
 *   mlfs-run [-u UID -g GID] [-c CGROUP_DIR]... [-n PROCS] [-i ARGS] RUNDIR
 *            WORKDIR COMMAND
 *
 * Started by the daemon (posix_spawn, its own session) and independent of
 * it from then on: a daemon crash loses nothing.  It
 *   1. claims RUNDIR/pid with O_EXCL, so that a run never starts twice
 *      (a second supervisor for the same run exits 99 without running);
 *   2. forks the command, `/bin/sh -c COMMAND` in WORKDIR, in its own
 *      process group, stdout and stderr appended to RUNDIR/log;
 *   3. records "SUPERVISOR_PID CHILD_PGID START_TICKS" in RUNDIR/pid;
 *   4. waits, then writes the exit code (128 + signal when killed) to
 *      RUNDIR/exit atomically (exit.tmp + rename).
 * With -u/-g (the daemon runs as root) the command runs as that user: its
 * groups, uid and gid, dropped for good (checked); the log is opened before.
 * With -c the child joins each CGROUP_DIR (cgroup.procs) first, while it
 * is still root, so that all it ever forks is in the run's cgroups; the
 * supervisor stays out of them, to outlive their kill and record the exit.
 * The daemon cancels by signalling the child's process group directly.
 * With -n PROCS (resources: procs_per_node > 1) the child is the launcher
 * of PROCS copies of the command instead (mlfs-ranks.c), in that group.
 * With -i ARGS (a run in an environment) the child runs, as root, the
 * command whose words the daemon wrote into RUNDIR/ARGS (NUL after each:
 * podman run …), with PATH and HOME only: the run's env lines reach the
 * container through podman's --env-file, never a root process; no user
 * switch (podman runs the command as the run's creator, --user; -u/-g
 * say whose rights open the inputs).  Each input is opened as that user
 * and a read-only view of it mounted on RUNDIR/ct.inputs/NAME, in a mount
 * namespace of the child's own, for podman to mount in (ct_inputs).  With
 * -a too, each task of the array is a container of its own (NAME-tI,
 * ct_task).  Once it ended, the container is removed (podman rm -f, its
 * name from --name=): a podman killed by the cancel's SIGKILL leaves none.
 * With -a ARRAY (resources: array) the child, still root, is the launcher
 * of the array's tasks (mlfs-array.c): at most MAX at once, each stopped
 * after LIMIT seconds (0: never), KILL GRACE seconds after TERM.
 * It links against libc only, so that it starts fast.
 *
 *   mlfs-run -v -u UID -g GID RUNDIR PROGRAM [ARG]...
 *
 * is the inputs of a container that a Slurm job starts as root on a node
 * (targets/slurm_image.c): the views of the MLFS_INPUT_NAME=PATH in its
 * environment on RUNDIR/ct.inputs/NAME, each opened as UID (ct_inputs, in
 * a mount namespace of its own), then exec of PROGRAM (podman run …, by
 * its absolute path) in that namespace without those variables; an input
 * that user cannot open exits 126 with its line on stderr.  No pid file,
 * no exit file: the job waits for it.
 *
 * Environment: the daemon starts it with a daemon-built one only; the
 * run's own `env` lines come as MLFS_ENV_KEY=VALUE, a name nothing in libc
 * or ld.so reads, so that LD_PRELOAD, GCONV_PATH & co never act in this
 * root process.  The command gets, after the privileges are gone: PATH,
 * HOME, USER, LOGNAME, SHELL (passwd), LANG (C.UTF-8) unless the env lines
 * set them, the other MLFS_* (and CUDA_VISIBLE_DEVICES) as the daemon gave
 * them, then the env lines.
 *
 * Inputs: each MLFS_INPUT_NAME=PATH the daemon gave is made read-only for
 * the command when the supervisor is root: in a mount namespace of the
 * child's own, PATH -- opened with the run's user's rights, so a path the
 * user could not reach is refused -- is covered by a read-only copy of
 * its own mount (open_tree, mount_setattr, move_mount onto the same fd:
 * what the view shows is what was there, never another tree).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlfs-array.h"
#include "mlfs-ranks.h"
#include "proc.h"

#define EXIT_TAKEN 99

static void on_signal(int sig)
{
	(void)sig;	/* the supervisor outlives its run's signals */
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

static uid_t run_uid = (uid_t)-1;
static int procs = 1;		/* -n: processes of the run on this node */
static const char *ct_args;	/* -i: the container's command file */
static const char *cg_dirs[4];
static int cg_n;

/* Join the run's cgroups, or exit 126: never run uncontained. */
static void join_cgroups(void)
{
	char path[4096];
	int fd;

	for (int i = 0; i < cg_n; i++) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dirs[i]);
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			dprintf(2, "mlfs: cannot join the cgroup %s: %s\n",
				cg_dirs[i], strerror(errno));
			_exit(126);
		}
		close(fd);
	}
}

static gid_t run_gid = (gid_t)-1;

static void fail_user(void)
{
	dprintf(2, "mlfs: cannot run as uid %d gid %d: %s\n", (int)run_uid,
		(int)run_gid, strerror(errno));
	_exit(126);
}

/* The run's user's groups, while still root (permission checks count
 * them; become_user takes them for good). */
static void user_groups(void)
{
	struct passwd *pw;

	if (run_uid == (uid_t)-1)
		return;
	pw = getpwuid(run_uid);
	if (pw ? initgroups(pw->pw_name, run_gid) : setgroups(1, &run_gid))
		fail_user();
}

/* Become the run's user for good: groups, gids, uids, and check that none
 * of root's can be taken back; on failure say why in the log, exit 126. */
static void become_user(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (run_uid == (uid_t)-1 || (run_uid == getuid() && run_gid == getgid()))
		return;
	user_groups();
	if (setresgid(run_gid, run_gid, run_gid) ||
	    setresuid(run_uid, run_uid, run_uid))
		fail_user();
	errno = EPERM;
	if (run_uid != 0 && (!setresuid(0, 0, 0) || !setresgid(0, 0, 0) ||
			     !setgroups(0, NULL)))
		fail_user();	/* must be impossible now */
	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg) ||
	    ru != run_uid || eu != run_uid || su != run_uid ||
	    rg != run_gid || eg != run_gid || sg != run_gid)
		fail_user();
}

/* ---- inputs: read-only views ---------------------------------------------- */

extern char **environ;

#define ENV_INPUT	"MLFS_INPUT_"
#define INPUTS_MAX	64

static void fail_input(const char *path, const char *what)
{
	dprintf(2, "mlfs: input %s: %s: %s\n", path, what, strerror(errno));
	_exit(126);
}

/* @path opened (O_PATH) with the run's user's rights: their groups are
 * set, the effective ids theirs for the lookup, root's again after. */
static int open_as_user(const char *path)
{
	int fd, err;

	if (run_uid != (uid_t)-1 && (setegid(run_gid) || seteuid(run_uid)))
		fail_user();
	fd = open(path, O_PATH | O_CLOEXEC);
	err = errno;
	if (run_uid != (uid_t)-1 && (seteuid(0) || setegid(0)))
		fail_user();
	errno = err;
	return fd;
}

/* Cover what @fd is with a read-only copy of itself (and all below). */
static void read_only(int fd, const char *path)
{
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
	int t;

	t = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
		      AT_EMPTY_PATH | AT_RECURSIVE);
	if (t < 0 || mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &a,
				   sizeof(a)) ||
	    move_mount(t, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH |
		       MOVE_MOUNT_T_EMPTY_PATH))
		fail_input(path, "cannot make a read-only view of it");
	close(t);
}

/* Every input read-only for the command (root only: a supervisor that
 * is not root cannot mount; the run then reads the paths as they are). */
static void input_views(void)
{
	size_t pl = strlen(ENV_INPUT);
	const char *path[INPUTS_MAX];
	int fd[INPUTS_MAX], n = 0;

	if (geteuid() != 0)
		return;
	for (char **p = environ; *p && n < INPUTS_MAX; p++)
		if (!strncmp(*p, ENV_INPUT, pl) && strchr(*p, '='))
			path[n++] = strchr(*p, '=') + 1;
	if (!n)
		return;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL))
		fail_input("", "cannot make a mount namespace");
	user_groups();
	for (int i = 0; i < n; i++)
		if ((fd[i] = open_as_user(path[i])) < 0)
			fail_input(path[i], "cannot open it");
	for (int i = 0; i < n; i++)
		read_only(fd[i], path[i]);
}

/* ---- the command's environment ------------------------------------------ */

#define ENV_USER	"MLFS_ENV_"	/* the run's env lines, see above */
#define ENV_MAX		4096

struct env {
	char *v[ENV_MAX + 1];
	int n;
};

/* Is the name of @kv (NAME=...) in @e already? */
static int env_has(const struct env *e, const char *kv)
{
	size_t l = strcspn(kv, "=");

	for (int i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], kv, l) && e->v[i][l] == '=')
			return 1;
	return 0;
}

/* The env line KEY among the user's (MLFS_ENV_KEY=) in environ? */
static int user_sets(const char *key)
{
	size_t pl = strlen(ENV_USER), kl = strlen(key);

	for (char **p = environ; *p; p++)
		if (!strncmp(*p, ENV_USER, pl) && !strncmp(*p + pl, key, kl) &&
		    (*p)[pl + kl] == '=')
			return 1;
	return 0;
}

static void env_put(struct env *e, const char *k, const char *v)
{
	char *kv;

	if (e->n >= ENV_MAX || user_sets(k) || asprintf(&kv, "%s=%s", k, v) < 0)
		return;
	e->v[e->n++] = kv;
}

/* Built in the child, after become_user: uid and passwd are the run's. */
static char **command_env(void)
{
	static struct env e;
	size_t pl = strlen(ENV_USER);
	struct passwd *pw = getpwuid(getuid());
	char num[16];

	snprintf(num, sizeof(num), "%u", (unsigned)getuid());
	env_put(&e, "PATH", getuid() ? "/usr/local/bin:/usr/bin:/bin" :
		"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env_put(&e, "HOME", pw && *pw->pw_dir ? pw->pw_dir : "/");
	env_put(&e, "USER", pw ? pw->pw_name : num);
	env_put(&e, "LOGNAME", pw ? pw->pw_name : num);
	env_put(&e, "SHELL", pw && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
	env_put(&e, "LANG", "C.UTF-8");
	for (char **p = environ; *p && e.n < ENV_MAX; p++)
		if (strncmp(*p, ENV_USER, pl) && strchr(*p, '='))
			e.v[e.n++] = *p;
	for (char **p = environ; *p && e.n < ENV_MAX; p++)
		if (!strncmp(*p, ENV_USER, pl) && strchr(*p + pl, '=') &&
		    !env_has(&e, *p + pl))
			e.v[e.n++] = *p + pl;
	e.v[e.n] = NULL;
	return e.v;
}

#define CT_ARGS_MAX	(64 * 1024)
#define CT_WORDS_MAX	256

/* RUNDIR/ARGS as words into @argv (static storage); the count. */
static int container_words(const char *rundir, char **argv)
{
	static char buf[CT_ARGS_MAX];
	char path[4096];
	ssize_t len;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/%s", rundir, ct_args);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; len > 0 && i < len && n < CT_WORDS_MAX; ) {
		argv[n++] = buf + i;
		i += (ssize_t)strnlen(buf + i, (size_t)(len - i)) + 1;
	}
	argv[n] = NULL;
	return len > 0 && buf[len - 1] == '\0' ? n : 0;
}

static void container_exec(const char *rundir)
{
	static char *env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL
	};
	char *argv[CT_WORDS_MAX + 1];

	if (!container_words(rundir, argv) || chdir("/")) {
		dprintf(2, "mlfs: cannot read the container's command %s\n",
			ct_args);
		_exit(126);
	}
	execve(argv[0], argv, env);
	dprintf(2, "mlfs: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* podman rm -f NAME@suffix, NAME from --name= of RUNDIR/ARGS: a podman
 * killed before its --rm leaves its container behind. */
static void container_remove_as(const char *rundir, const char *suffix)
{
	char *argv[CT_WORDS_MAX + 1], *rm[7], name[512];
	pid_t pid;
	int n, fd;

	/* -t 0: KILL at once, its podman is gone (killed after the
	 * grace) and the caller must not wait podman's 10 s for it */
	n = container_words(rundir, argv);
	rm[0] = n ? argv[0] : NULL;
	rm[1] = "rm";
	rm[2] = "-f";
	rm[3] = "-t";
	rm[4] = "0";
	rm[5] = NULL;
	rm[6] = NULL;
	for (int i = 0; i < n && rm[0]; i++)
		if (!strncmp(argv[i], "--name=", 7) &&
		    snprintf(name, sizeof(name), "%s%s", argv[i] + 7,
			     suffix) < (int)sizeof(name))
			rm[5] = name;
	if (!rm[0] || !rm[5])
		return;
	pid = fork();
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(rm[0], rm);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* After the run: its container removed (gone already after --rm). */
static void container_remove(const char *rundir)
{
	container_remove_as(rundir, "");
}

/* ---- an array's tasks in containers ------------------------------------- */

/*
 * A task of an array in an environment is a container of its own, named
 * NAME-tI: its own limits (memory and cpus are a task's), its own end; the
 * launcher stays outside, root, and signals each task's podman (which
 * passes TERM on) as it signals a task.  MLFS_ARRAY_INDEX and _COUNT
 * (set by the launcher) reach the container through --env=NAME words.
 */
static void ct_task(void *ctx)
{
	static char nm[512];
	const char *rundir = ctx, *idx = getenv("MLFS_ARRAY_INDEX");
	const char *cnt = getenv("MLFS_ARRAY_COUNT");
	char *argv[CT_WORDS_MAX + 1], ev[2][64];
	char *env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", ev[0],
		ev[1], NULL
	};
	int fd, n;

	fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
	n = container_words(rundir, argv);
	for (int i = 0; i < n; i++)
		if (!strncmp(argv[i], "--name=", 7)) {
			snprintf(nm, sizeof(nm), "%s-t%s", argv[i], idx);
			argv[i] = nm;
		}
	snprintf(ev[0], sizeof(ev[0]), "MLFS_ARRAY_INDEX=%s", idx);
	snprintf(ev[1], sizeof(ev[1]), "MLFS_ARRAY_COUNT=%s", cnt);
	if (!n || chdir("/")) {
		dprintf(2, "mlfs: cannot read the container's command %s\n",
			ct_args);
		_exit(126);
	}
	execve(argv[0], argv, env);
	dprintf(2, "mlfs: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* A task's podman was killed (TERM did not end it within the grace):
 * its container is still there. */
static void ct_task_ended(void *ctx, int idx, int status)
{
	char sfx[24];

	if (!WIFSIGNALED(status))
		return;		/* podman ended: --rm removed it */
	snprintf(sfx, sizeof(sfx), "-t%d", idx);
	container_remove_as(ctx, sfx);
}

/* ---- inputs of a run in a container ------------------------------------- */

#define CT_INPUTS_DIR	"ct.inputs"	/* local_image.h: RUN_CT_INPUTS */

/* Where @fd (opened as the user) is covered by its read-only view:
 * RUNDIR/ct.inputs/NAME, made here (root's, in the daemon's folder) as
 * a folder or an empty file, as the input is. */
static void ct_input_point(const char *rundir, const char *name, int fd,
			   char *path, size_t sz)
{
	struct stat st;
	int f;

	snprintf(path, sz, "%s/%s", rundir, CT_INPUTS_DIR);
	if (mkdir(path, 0700) && errno != EEXIST)
		fail_input(path, "cannot make");
	snprintf(path, sz, "%s/%s/%s", rundir, CT_INPUTS_DIR, name);
	if (fstat(fd, &st))
		fail_input(path, "cannot stat it");
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(path, 0700) && errno != EEXIST)
			fail_input(path, "cannot make");
		return;
	}
	f = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f < 0)
		fail_input(path, "cannot make");
	close(f);
}

/* Mount a read-only copy of what @fd is on @path (and all below it). */
static void ct_input_mount(int fd, const char *src, const char *path)
{
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
	int t;

	t = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
		      AT_EMPTY_PATH | AT_RECURSIVE);
	if (t < 0 || mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &a,
				   sizeof(a)) ||
	    move_mount(t, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH))
		fail_input(src, "cannot make a read-only view of it");
	close(t);
}

/*
 * The inputs of a run in a container: in a mount namespace of the child's
 * own (podman, conmon and the container are made in it; it ends with
 * them), each MLFS_INPUT_NAME=PATH is opened with the run's user's rights
 * and a read-only view of it is mounted on RUNDIR/ct.inputs/NAME, which
 * podman mounts at /mlfs/inputs/NAME (--volume …:ro): podman resolves no
 * path of the user's, and the view is what the user could open, nothing
 * that a link swapped in later would name.
 */
static void ct_inputs(const char *rundir)
{
	size_t pl = strlen(ENV_INPUT);
	char name[128], point[4096];
	const char *eq;
	size_t nl;
	int fd, n = 0;

	for (char **p = environ; *p; p++)
		n += !strncmp(*p, ENV_INPUT, pl) && strchr(*p, '=');
	if (!n)
		return;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL))
		fail_input("", "cannot make a mount namespace");
	user_groups();
	for (char **p = environ; *p; p++) {
		if (strncmp(*p, ENV_INPUT, pl) || !(eq = strchr(*p, '=')))
			continue;
		nl = (size_t)(eq - *p) - pl;
		if (!nl || nl >= sizeof(name) || memchr(*p + pl, '/', nl))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)nl, *p + pl);
		if ((fd = open_as_user(eq + 1)) < 0)
			fail_input(eq + 1, "cannot open it");
		ct_input_point(rundir, name, fd, point, sizeof(point));
		ct_input_mount(fd, eq + 1, point);
		close(fd);
	}
	if (setgroups(0, NULL))		/* podman runs with root's own */
		fail_input("", "cannot drop the user's groups");
}

/* -v: the inputs' views, then PROGRAM in their namespace (see above). */
static int views_exec(const char *rundir, char **argv)
{
	size_t pl = strlen(ENV_INPUT);
	char **p;

	ct_inputs(rundir);
	for (p = environ; *p;)
		if (!strncmp(*p, ENV_INPUT, pl) && strchr(*p, '=')) {
			char name[160];

			snprintf(name, sizeof(name), "%.*s",
				 (int)(strchr(*p, '=') - *p), *p);
			unsetenv(name);		/* environ shifts down */
		} else {
			p++;
		}
	if (argv[0][0] != '/') {
		dprintf(2, "mlfs-run: %s: not an absolute path\n", argv[0]);
		return 127;
	}
	execv(argv[0], argv);
	dprintf(2, "mlfs-run: cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

struct command {
	const char *workdir, *cmd;
};

/* In the process of the command (a run's, or an array's task): stdout
 * and stderr are set; join the cgroups, drop to the user, exec. */
static void exec_command(void *ctx)
{
	const struct command *c = ctx;
	int fd;

	join_cgroups();
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	input_views();
	become_user();
	if (chdir(c->workdir)) {
		dprintf(2, "mlfs: cannot enter the working directory %s: %s\n",
			c->workdir, strerror(errno));
		_exit(126);
	}
	if (faccessat(AT_FDCWD, ".", W_OK, AT_EACCESS) && errno == EROFS) {
		dprintf(2, "mlfs: an input holds the working directory %s,"
			" which its read-only view would make read-only\n",
			c->workdir);
		_exit(126);
	}
	if (procs > 1)
		ranks_main(procs, c->cmd, command_env);
	execle("/bin/sh", "sh", "-c", c->cmd, (char *)NULL, command_env());
	dprintf(2, "mlfs: cannot run /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

static struct array_opts array = { .max = 1, .grace = 10 };

static void child(const char *rundir, const char *workdir, const char *cmd)
{
	struct command c = { workdir, cmd };
	char path[4096];
	sigset_t none;
	int fd;

	setpgid(0, 0);
	/* the supervisor's no-op handlers would swallow a cancel that comes
	 * before exec: back to the defaults, then deliver what is pending */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(path, sizeof(path), "%s/log", rundir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (ct_args)
		ct_inputs(rundir);
	if (array.spec && ct_args) {	/* a container a task */
		array.rundir = rundir;
		array.ended = ct_task_ended;
		array.ended_ctx = (void *)rundir;
		array_main(&array, ct_task, (void *)rundir);
	}
	if (array.spec) {	/* the launcher stays root, out of cgroups */
		array.rundir = rundir;
		array_main(&array, exec_command, &c);
	}
	if (ct_args)
		container_exec(rundir);
	exec_command(&c);
}

/*
 * The exit file's space is taken when the run starts (exit_fd, exit.tmp
 * filled with blanks): a run that fills the disk still gets its exit code
 * recorded -- rewriting reserved bytes, shrinking and renaming need no
 * new space.
 */
static int exit_fd = -1;

static void reserve_exit(const char *rundir)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s/exit.tmp", rundir);
	exit_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			       O_NOFOLLOW, 0644);
	if (exit_fd >= 0 && write_all(exit_fd, "                \n", 17)) {
		close(exit_fd);
		exit_fd = -1;
	}
}

static int record_exit(const char *rundir, int status)
{
	char tmp[4096], path[4096], line[32];
	int code, fd = exit_fd, n;

	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
	snprintf(tmp, sizeof(tmp), "%s/exit.tmp", rundir);
	snprintf(path, sizeof(path), "%s/exit", rundir);
	if (fd < 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			       O_NOFOLLOW, 0644);
	if (fd < 0)
		return 1;
	n = snprintf(line, sizeof(line), "%d\n", code);
	if (pwrite(fd, line, n, 0) != n || ftruncate(fd, n) || fsync(fd) ||
	    close(fd) || rename(tmp, path))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096], line[96];
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;
	int fd, status, n;
	pid_t pid;

	int opt, views = 0;

	while ((opt = getopt(argc, argv, "+u:g:c:n:i:a:m:t:k:v")) != -1) {
		if (opt == 'u')
			run_uid = (uid_t)strtoul(optarg, NULL, 10);
		else if (opt == 'g')
			run_gid = (gid_t)strtoul(optarg, NULL, 10);
		else if (opt == 'c' && cg_n < 4)
			cg_dirs[cg_n++] = optarg;
		else if (opt == 'n')
			procs = atoi(optarg);
		else if (opt == 'i')
			ct_args = optarg;
		else if (opt == 'a')
			array.spec = optarg;
		else if (opt == 'm')
			array.max = atoi(optarg);
		else if (opt == 't')
			array.limit = atol(optarg);
		else if (opt == 'k')
			array.grace = atol(optarg);
		else if (opt == 'v')
			views = 1;
		else
			return 2;
	}
	argv += optind - 1;
	argc -= optind - 1;
	if (views) {
		if (argc < 3 || run_uid == (uid_t)-1 || run_gid == (gid_t)-1) {
			fprintf(stderr, "usage: mlfs-run -v -u UID -g GID"
				" RUNDIR PROGRAM [ARG]...\n");
			return 2;
		}
		return views_exec(argv[1], argv + 2);
	}
	if (argc != 4 || (run_uid == (uid_t)-1) != (run_gid == (gid_t)-1) ||
	    procs < 1 || procs > 256 || array.max < 1 ||
	    (array.spec && procs > 1)) {
		fprintf(stderr, "usage: mlfs-run [-u UID -g GID] [-c CGROUP_DIR]..."
			" [-n PROCS | -a ARRAY [-m MAX] [-t LIMIT] [-k GRACE]]"
			" [-i ARGS] RUNDIR WORKDIR COMMAND\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/pid", argv[1]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return errno == EEXIST ? EXIT_TAKEN : 1;
	reserve_exit(argv[1]);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, NULL);	/* until the child is set up */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pid = fork();
	if (pid < 0) {
		close(fd);
		return record_exit(argv[1], 127 << 8);
	}
	if (pid == 0)
		child(argv[1], argv[2], argv[3]);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	setpgid(pid, pid);
	n = snprintf(line, sizeof(line), "%d %d %llu\n", (int)getpid(),
		     (int)pid, proc_start_ticks(0));
	if (write_all(fd, line, n) || fsync(fd))
		perror("mlfs-run: pid file");
	close(fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (ct_args)
		container_remove(argv[1]);
	return record_exit(argv[1], status);
}
