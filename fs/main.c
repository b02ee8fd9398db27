// SPDX-License-Identifier: MIT
/*
 * mlfs - mount an ML workspace as a directory tree.
 *
 *   mlfs [-f] [-d] [--state DIR] [-o FUSE_OPTIONS] MOUNTPOINT
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backend/driver.h"
#include "../lib/log.h"
#include "../backend/ws.h"
#include "fs.h"

#ifndef MLFS_VERSION
#define MLFS_VERSION "0"
#endif

extern char **environ;

struct conf {
	char *state;
	double timeout;
	int allow_other;
	int help;
	int version;
};

#define MLFS_OPT(t, p, v) { t, offsetof(struct conf, p), v }

static const struct fuse_opt conf_opts[] = {
	MLFS_OPT("--state=%s", state, 0),
	MLFS_OPT("--state %s", state, 0),
	MLFS_OPT("state=%s", state, 0),
	MLFS_OPT("cache_timeout=%lf", timeout, 0),
	FUSE_OPT_KEY("allow_other", 1),
	MLFS_OPT("-h", help, 1),
	MLFS_OPT("--help", help, 1),
	MLFS_OPT("-V", version, 1),
	MLFS_OPT("--version", version, 1),
	FUSE_OPT_END
};

static int conf_proc(void *data, const char *arg, int key,
		     struct fuse_args *outargs)
{
	struct conf *c = data;

	(void)arg;
	(void)outargs;
	if (key == 1)
		c->allow_other = 1;
	return 1;	/* keep it: the kernel needs allow_other too */
}

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [--state DIR] [-o OPTIONS] MOUNTPOINT\n"
	       "\n"
	       "Mount an ML workspace: targets/, runs/, deployments/, models/.\n"
	       "\n"
	       "  -f               stay in the foreground, log to stderr\n"
	       "  -d               debug: log every FUSE request (implies -f)\n"
	       "  --state DIR      the workspace's state (default\n"
	       "                   $XDG_DATA_HOME/mlfs/default or\n"
	       "                   ~/.local/share/mlfs/default)\n"
	       "  -o OPTIONS       FUSE mount options, plus:\n"
	       "     cache_timeout=SECONDS  kernel cache timeout (86400)\n"
	       "     allow_other            let other users in (forces\n"
	       "                            default_permissions)\n"
	       "\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n", prog);
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, 0700) && errno != EEXIST ? -errno : 0;
}

static char *default_state(void)
{
	const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *s = NULL;

	if (x && x[0] == '/')
		return asprintf(&s, "%s/mlfs/default", x) < 0 ? NULL : s;
	if (!home || home[0] != '/')
		home = "/root";
	return asprintf(&s, "%s/.local/share/mlfs/default", home) < 0 ? NULL : s;
}

/* Run fusermount3 -uz @mnt and wait for it. */
static int run_fusermount(const char *mnt)
{
	char *argv[] = { "fusermount3", "-uz", (char *)mnt, NULL };
	int status;
	pid_t pid;

	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ))
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * A crashed daemon leaves a dead mount ("Transport endpoint is not
 * connected").  Clear it, before mounting, or say what to run.
 */
static int clear_dead_mount(const char *mnt)
{
	struct statfs sf;

	/* statfs always reaches the daemon (stat may be answered from the
	 * kernel's cache of the root's attributes) */
	if (!statfs(mnt, &sf))
		return 0;
	if (errno != ENOTCONN && errno != ECONNABORTED)
		return 0;	/* fuse_session_mount will explain */
	fprintf(stderr, "mlfs: %s is a dead mount of a crashed daemon;"
		" clearing it\n", mnt);
	if (umount2(mnt, MNT_DETACH) && run_fusermount(mnt)) {
		fprintf(stderr, "mlfs: cannot clear the dead mount: run"
			" 'fusermount3 -uz %s' and try again\n", mnt);
		return -1;
	}
	return 0;
}

/* One daemon per workspace: an flock on <state>/lock, held until exit. */
static int lock_state(const char *state)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", state);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "mlfs: the workspace %s is in use by another"
			" mlfs daemon\n", state);
		return -1;
	}
	return fd;
}

static void set_helper_dir(struct ws *ws)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return;
	exe[n] = '\0';
	ws_set_helper_dir(ws, dirname(exe));
}

static int run_session(struct fuse_args *args, struct fuse_cmdline_opts *o,
		       struct ws *ws, struct conf *c)
{
	struct mlfs_opts mo = { .timeout = c->timeout,
				.shared = c->allow_other };
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	struct mlfs *m;
	int rc = 1;

	m = mlfs_new(ws, &mo);
	if (!m)
		return 1;
	se = fuse_session_new(args, &mlfs_ops, sizeof(mlfs_ops), m);
	if (!se)
		goto out_free;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	signal(SIGHUP, log_hup);	/* reopen the log, do not exit */
	if (fuse_session_mount(se, o->mountpoint))
		goto out_signals;
	if (fuse_daemonize(o->foreground))
		goto out_unmount;
	mlfs_attach(m, se, o->mountpoint);
	if (ws_start(ws))
		log_warn("the workers did not all start");
	log_info("mounted %s (state %s)", o->mountpoint, ws_state_dir(ws));
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 16);
	fuse_loop_cfg_set_idle_threads(lc, 4);
	/* a signal (SIGTERM, SIGINT) ends the loop with its number: a clean
	 * exit like an unmount; only a negative value is an error */
	rc = fuse_session_loop_mt(se, lc) < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
	log_info("unmounting %s", o->mountpoint);
	mlfs_quiesce(m);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	ws_close(ws);
	fuse_session_destroy(se);
	mlfs_free(m);
	return rc;
out_free:
	ws_close(ws);
	mlfs_free(m);
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts o = { 0 };
	struct conf c = { .timeout = 86400 };
	char state[PATH_MAX], logp[PATH_MAX + 16], opt[PATH_MAX + 64];
	struct err e = { { 0 } };
	struct ws *ws;
	int lock, rc;

	if (fuse_opt_parse(&args, &c, conf_opts, conf_proc))
		return 2;
	if (c.help) {
		usage(argv[0]);
		return 0;
	}
	if (c.version) {
		printf("mlfs %s (libfuse %s)\n", MLFS_VERSION, fuse_pkgversion());
		return 0;
	}
	if (fuse_parse_cmdline(&args, &o) || !o.mountpoint) {
		usage(argv[0]);
		return 2;
	}
	/* the daemon's files get the modes it asks for, whatever umask it
	 * was started with: a strict one would close objects/ID (0711) to
	 * the other users' runs and requests, a lax one open its files;
	 * users' own files take their callers' umask (fs/namespace.c) */
	umask(022);
	if (!c.state)
		c.state = default_state();
	if (!c.state || mkdir_p(c.state) || !realpath(c.state, state)) {
		fprintf(stderr, "mlfs: cannot use the state directory %s: %s\n",
			c.state ? c.state : "(none)", strerror(errno));
		return 1;
	}
	lock = lock_state(state);
	if (lock < 0)
		return 1;
	if (clear_dead_mount(o.mountpoint))
		return 1;
	if (!o.foreground) {
		snprintf(logp, sizeof(logp), "%s/mlfs.log", state);
		log_init(logp, o.debug);
	} else {
		log_init(NULL, o.debug);
	}
	rc = ws_open(&ws, state, &e);
	if (rc) {
		fprintf(stderr, "mlfs: %s\n", e.msg);
		return 1;
	}
	set_helper_dir(ws);
	snprintf(opt, sizeof(opt), "-ofsname=mlfs:%s,subtype=mlfs%s", state,
		 c.allow_other ? ",default_permissions" : "");
	fuse_opt_add_arg(&args, opt);
	rc = run_session(&args, &o, ws, &c);
	fuse_opt_free_args(&args);
	free(o.mountpoint);
	free(c.state);
	close(lock);
	return rc;
}
