// SPDX-License-Identifier: MIT
/*
 * The environments' worker side: builds.  One thread for all environments
 * (ENV_WORKER_ID); it starts a build when ctl asked for one, watches the
 * podman process it started (waitpid, every ENV_TICK_MS while one runs),
 * stops it on cancel, and records the image id or the failure.
 *
 * Safety (the daemon runs as root for several users):
 *  - the folder is copied out WITH THE CREATOR'S RIGHTS (copy_files_as:
 *    a file they may not read is not copied; symlinks are copied as
 *    links, never followed) into the daemon's own objects/ID/build/ctx,
 *    and podman builds from that copy, never from the user's folder;
 *  - `rootfs = PATH` is opened as the creator (userfile_open);
 *  - RUN steps run in a user namespace of the `containers` entry of
 *    /etc/subuid and /etc/subgid (root inside is an unprivileged id
 *    outside), with podman's default capabilities inside it only;
 *  - podman gets a fixed environment, never the user's.
 */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/copy.h"
#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/spawn.h"
#include "driver.h"
#include "env_i.h"
#include "userfile.h"
#include "ws_i.h"

#define BUILD_DIR	"build"		/* objects/ID/build: the daemon's */
#define KILL_AFTER_S	5.0		/* SIGTERM, then SIGKILL */
#define ENV_ULIMIT_MAX	32768		/* nofile and nproc at most */

enum how { HOW_BUILD, HOW_IMPORT, HOW_INSPECT };

/* A podman process this worker started.  Worker thread only. */
struct build {
	int64_t id;
	pid_t pid;
	enum how how;
	uint64_t key;
	double term_sent;		/* cancel: when SIGTERM went */
	struct build *next;
};

static struct build *builds;

static struct build *build_find(int64_t id)
{
	for (struct build *b = builds; b; b = b->next)
		if (b->id == id)
			return b;
	return NULL;
}

static void build_drop(struct build *gone)
{
	for (struct build **p = &builds; *p; p = &(*p)->next)
		if (*p == gone) {
			*p = gone->next;
			free(gone);
			return;
		}
}

int env_timeout_ms(void)
{
	return builds ? ENV_TICK_MS : -1;
}

void env_release(void)
{
	while (builds)
		build_drop(builds);
}

/* ---- the machine ---------------------------------------------------------- */

int env_subid(const char *file, unsigned long *first, unsigned long *count)
{
	char line[256];
	FILE *f = fopen(file, "re");
	int rc = -ENOENT;

	if (!f)
		return -ENOENT;
	while (rc && fgets(line, sizeof(line), f))
		if (sscanf(line, "containers:%lu:%lu", first, count) == 2 &&
		    *count >= 65536)
			rc = 0;
	fclose(f);
	return rc;
}

/* min(hard limit, @cap): podman's --ulimit must stay below the machine's
 * hard limits (runc fails to set a higher one). */
static unsigned long limit_below(int res, unsigned long cap)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) || rl.rlim_max == RLIM_INFINITY)
		return cap;
	return rl.rlim_max < cap ? (unsigned long)rl.rlim_max : cap;
}

/* ---- state changes ---------------------------------------------------------- */

/* @o to @state with @error ("" none) and image @image (NULL: kept). */
static void env_to(struct ws *ws, struct obj *o, enum obj_state state,
		   const char *image, const char *error)
{
	struct obj n = *o;

	n.state = state;
	n.backend_id[0] = '\0';
	if (image)
		snprintf(n.node, sizeof(n.node), "%s", image);
	snprintf(n.error, sizeof(n.error), "%s", error);
	if (ws_update_obj(ws, &n, o->state, FBIT(F_IMAGE) | FBIT(F_LOG)))
		log_warn("environment %s: cannot record %s", o->name,
			 state_name(state));
	*o = n;
}

static void env_fail(struct ws *ws, struct obj *o, const struct err *e)
{
	char text[ERR_MSG_MAX + 16];

	env_prune_add(ws, o);	/* its image, if it made one, is lost */
	env_to(ws, o, ES_FAILED, "", e->msg);
	snprintf(text, sizeof(text), "error: %s", e->msg);
	ws_obj_event(ws, o, text);
}

/* One line into the build's log (the daemon's words among podman's). */
static void log_line(struct ws *ws, const struct obj *o, const char *text)
{
	char path[PATH_MAX];
	int fd;

	ws_obj_path(ws, o->id, RUN_LOG, path);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (dprintf(fd, "mlfs: %s\n", text) < 0) {
		/* the state and error say it too */
	}
	close(fd);
}

/* ---- the build's inputs ------------------------------------------------------ */

/* objects/ID/build anew, the daemon's, 0700; its ctx/ the creator's. */
static int build_dirs(struct ws *ws, const struct obj *o, struct err *e)
{
	char dir[PATH_MAX], ctx[PATH_MAX + 8];
	int rc;

	ws_obj_path(ws, o->id, BUILD_DIR, dir);
	rc = remove_tree(dir);
	if (rc && rc != -ENOENT)
		return err_set(e, rc, "cannot clear the build folder: %s",
			       strerror(-rc));
	snprintf(ctx, sizeof(ctx), "%s/ctx", dir);
	if (mkdir(dir, 0700) || mkdir(ctx, 0700) ||
	    (geteuid() == 0 && chown(ctx, o->uid, o->gid)))
		return err_set(e, -errno, "cannot make the build folder: %s",
			       strerror(errno));
	return 0;
}

/* The folder's files into build/ctx, read and made as the creator. */
static int build_copy(struct ws *ws, const struct obj *o, struct err *e)
{
	char src[PATH_MAX], dst[PATH_MAX], why[ERR_MSG_MAX];
	int rc;

	ws_obj_path(ws, o->id, RUN_FILES, src);
	ws_obj_path(ws, o->id, BUILD_DIR "/ctx", dst);
	if (access(src, F_OK))
		return 0;	/* no files: config alone */
	rc = copy_files_as(src, dst, o->uid, o->gid, e);
	if (rc) {
		snprintf(why, sizeof(why), "%s", e->msg);
		err_set(e, rc, "the folder was not copied as its creator (uid"
			" %u): %s", o->uid, why);
	}
	return rc;
}

/* The key being summed: nftw's callback takes no argument, and only the
 * environments' worker thread builds. */
static uint64_t tree_key;

/* nftw: path, type, mode, size and bytes of each entry into tree_key. */
static int key_one(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	char buf[65536], link[PATH_MAX];
	ssize_t n;
	int fd;

	(void)ftw;
	tree_key = fnv1a64_add(tree_key, path, strlen(path) + 1);
	tree_key = fnv1a64_add(tree_key, &st->st_mode, sizeof(st->st_mode));
	if (flag == FTW_SL) {
		n = readlink(path, link, sizeof(link));
		if (n > 0)
			tree_key = fnv1a64_add(tree_key, link, (size_t)n);
	}
	if (flag != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		tree_key = fnv1a64_add(tree_key, buf, (size_t)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* The hash of the copy and the config: the same key, the same image. */
static uint64_t build_key(struct ws *ws, const struct obj *o,
			  const char *cfg, size_t len)
{
	char ctx[PATH_MAX];

	ws_obj_path(ws, o->id, BUILD_DIR "/ctx", ctx);
	tree_key = fnv1a64_add(FNV64_BASIS, cfg, len);
	if (nftw(ctx, key_one, 16, FTW_PHYS))
		tree_key ^= (uint64_t)(wall_s() * 1e6);	/* never cached */
	return tree_key;
}

/* `rootfs = PATH`, opened as the creator, copied into build/rootfs.tar. */
static int rootfs_copy(struct ws *ws, const struct obj *o, const char *path,
		       struct err *e)
{
	char dst[PATH_MAX];
	int in, out, rc = 0;
	ssize_t n;

	in = userfile_open(o->uid, o->gid, "rootfs", path, e);
	if (in < 0)
		return in;
	ws_obj_path(ws, o->id, BUILD_DIR "/rootfs.tar", dst);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   0600);
	if (out < 0)
		rc = -errno;
	while (!rc && (n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)))
		if (n < 0)
			rc = -errno;
	close(in);
	if (out >= 0 && close(out) && !rc)
		rc = -EIO;
	return rc ? err_set(e, rc, "config: rootfs %s was not copied: %s",
			    path, strerror(-rc)) : 0;
}

/* Containerfile or Dockerfile of the copy ("" none), a regular file. */
static void build_file(struct ws *ws, const struct obj *o, char *name,
		       size_t sz)
{
	static const char *const names[] = { "Containerfile", "Dockerfile" };
	char path[PATH_MAX + 32];
	struct stat st;

	name[0] = '\0';
	for (int i = 0; i < 2 && !name[0]; i++) {
		ws_obj_path(ws, o->id, BUILD_DIR "/ctx/", path);
		strncat(path, names[i], sizeof(path) - strlen(path) - 1);
		if (!lstat(path, &st) && S_ISREG(st.st_mode))
			snprintf(name, sz, "%s", names[i]);
	}
}

/* ---- starting ---------------------------------------------------------------- */

struct argv {
	char *v[40];
	int n;
	char bufs[12][PATH_MAX + 64];
	int nb;
};

static void arg(struct argv *a, const char *s)
{
	if (a->n < 39)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

/* A formatted argument (kept in @a). */
__attribute__((format(printf, 2, 3)))
static void argf(struct argv *a, const char *fmt, ...)
{
	va_list ap;

	if (a->nb >= 12)
		return;
	va_start(ap, fmt);
	vsnprintf(a->bufs[a->nb], sizeof(a->bufs[0]), fmt, ap);
	va_end(ap);
	arg(a, a->bufs[a->nb++]);
}

/* podman's options every build and import shares. */
static void argv_common(struct argv *a, const char *podman)
{
	argf(a, "%s", podman);	/* kept in @a: the caller's buffer goes */
	arg(a, "--log-level=error");
}

/* --ulimit below the machine's hard limits: runc cannot raise them (and
 * failed on a CI machine at 65536 processes with 96367 allowed). */
static void ulimits(struct argv *a)
{
	unsigned long n = limit_below(RLIMIT_NOFILE, ENV_ULIMIT_MAX);
	unsigned long p = limit_below(RLIMIT_NPROC, ENV_ULIMIT_MAX);

	argf(a, "--ulimit=nofile=%lu:%lu", n, n);
	argf(a, "--ulimit=nproc=%lu:%lu", p, p);
}

/* podman build: RUN steps in the `containers` user namespace. */
static int argv_build(struct argv *a, struct ws *ws, const struct obj *o,
		      const char *file, struct err *e)
{
	unsigned long u0, un, g0, gn;
	char dir[PATH_MAX];

	if (env_subid("/etc/subuid", &u0, &un) ||
	    env_subid("/etc/subgid", &g0, &gn))
		return err_set(e, -EPERM, "builds run in a user namespace of"
			       " their own, and /etc/subuid or /etc/subgid has"
			       " no 'containers' entry of 65536 ids or more"
			       " (scripts/deps.sh env adds"
			       " containers:2147483647:2147483648)");
	ws_obj_path(ws, o->id, BUILD_DIR, dir);
	arg(a, "build");
	arg(a, "--runtime=runc");
	argf(a, "--iidfile=%s/iid", dir);
	argf(a, "--file=%s/ctx/%s", dir, file);
	argf(a, "--userns-uid-map=0:%lu:65536", u0);
	argf(a, "--userns-gid-map=0:%lu:65536", g0);
	ulimits(a);
	/* no intermediate image per step, no build container left by a
	 * failure: what a build leaves is the image alone, which env_prune
	 * can remove whole */
	arg(a, "--layers=false");
	arg(a, "--force-rm");
	if (!strcmp(o->type, "rebuild"))
		arg(a, "--no-cache");
	argf(a, "%s/ctx", dir);
	return 0;
}

/* The command for @o's build into @a, and how its id is found. */
static int build_argv(struct argv *a, struct ws *ws, const struct obj *o,
		      const struct env_config *c, enum how *how,
		      struct err *e)
{
	char podman[PATH_MAX], file[32], dir[PATH_MAX];

	if (env_podman(podman, sizeof(podman)))
		return err_set(e, -ENOENT, ENV_NO_PODMAN);
	build_file(ws, o, file, sizeof(file));
	if (file[0] && (c->image[0] || c->rootfs[0]))
		return err_set(e, -EINVAL, "environment '%s' has a %s and its"
			       " config names %s: keep one", o->name, file,
			       c->image[0] ? "an image" : "a rootfs");
	argv_common(a, podman);
	ws_obj_path(ws, o->id, BUILD_DIR, dir);
	if (c->image[0]) {
		*how = HOW_INSPECT;
		arg(a, "image");
		arg(a, "inspect");
		arg(a, "--format={{.Id}}");
		arg(a, c->image);
		return 0;
	}
	if (c->rootfs[0]) {
		*how = HOW_IMPORT;
		arg(a, "import");
		arg(a, "--quiet");
		argf(a, "%s/rootfs.tar", dir);
		return rootfs_copy(ws, o, c->rootfs, e);
	}
	if (!file[0])
		return err_set(e, -ENOENT, "environment '%s' has nothing to"
			       " build from: copy a Containerfile (or"
			       " Dockerfile) into it, or write image = NAME or"
			       " rootfs = PATH to its config", o->name);
	*how = HOW_BUILD;
	return argv_build(a, ws, o, file, e);
}

/* The config of @o parsed (it was checked when written). */
static int build_config(struct ws *ws, const struct obj *o,
			struct env_config *c, uint64_t *key, struct err *e)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, o->id, F_CONFIG, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read config");
	rc = env_config_parse(buf, len, c, e);
	if (!rc)
		*key = build_key(ws, o, buf, len);
	free(buf);
	return rc;
}

/* The same folder and config as the last good build, and its image is
 * still in the store: Ready at once. */
static int build_cached(struct ws *ws, struct obj *o, uint64_t key)
{
	char want[64], podman[PATH_MAX];
	char *argv[] = { podman, "image", "exists", o->node, NULL };

	snprintf(want, sizeof(want), "key %016llx", (unsigned long long)key);
	if (strcmp(o->type, "build") || strncmp(o->ddata, want, 20) ||
	    strncmp(o->node, "sha256:", 7) || env_podman(podman,
							  sizeof(podman)))
		return 0;
	if (env_podman_wait(argv, "/dev/null") != 0)
		return 0;
	log_line(ws, o, "unchanged since its last build: that image again");
	env_to(ws, o, ES_READY, NULL, "");
	return 1;
}

static void log_start(struct ws *ws, const struct obj *o)
{
	char path[PATH_MAX], text[128];
	int fd;

	ws_obj_path(ws, o->id, RUN_LOG, path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	snprintf(text, sizeof(text), "%s of environment %s",
		 o->type, o->name);
	log_line(ws, o, text);
}

/* The pid into backend_id, on the store's row as it is now (a cancel
 * written meanwhile is kept; the next look stops the build). */
static void build_pid_save(struct ws *ws, int64_t id, pid_t pid)
{
	struct obj cur;

	if (ws_get(ws, id, &cur) || cur.state != ES_BUILDING)
		return;
	snprintf(cur.backend_id, sizeof(cur.backend_id), "%d", (int)pid);
	ws_update_obj(ws, &cur, ES_BUILDING, 0);
}

static void build_start(struct ws *ws, struct obj *o)
{
	static char *const env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL
	};
	char logp[PATH_MAX], outp[PATH_MAX];
	struct env_config c;
	struct argv a = { .n = 0 };
	struct err e = { { 0 } };
	struct build *b;
	uint64_t key = 0;
	enum how how = HOW_BUILD;
	pid_t pid;
	int rc;

	log_start(ws, o);
	rc = build_dirs(ws, o, &e);
	if (!rc)
		rc = build_copy(ws, o, &e);
	if (!rc)
		rc = build_config(ws, o, &c, &key, &e);
	if (!rc && build_cached(ws, o, key))
		return;
	if (!rc)
		rc = build_argv(&a, ws, o, &c, &how, &e);
	b = rc ? NULL : calloc(1, sizeof(*b));
	if (!rc && !b)
		rc = err_set(&e, -ENOMEM, "out of memory");
	ws_obj_path(ws, o->id, RUN_LOG, logp);
	ws_obj_path(ws, o->id, BUILD_DIR "/out", outp);
	pid = rc ? -1 : spawn_session(a.v, env, how == HOW_BUILD ? logp :
				      outp, logp, &e);
	if (pid < 0) {
		free(b);
		log_line(ws, o, e.msg);
		env_fail(ws, o, &e);
		return;
	}
	*b = (struct build){ o->id, pid, how, key, 0, builds };
	builds = b;
	build_pid_save(ws, o->id, pid);
}

/* ---- finishing -------------------------------------------------------------- */

/* The image id the build left: iid file or the last line of out. */
static int build_image(struct ws *ws, const struct obj *o, enum how how,
		       char *id, size_t sz)
{
	char path[PATH_MAX], buf[4096], *s, *nl;
	ssize_t n;
	int fd;

	ws_obj_path(ws, o->id, how == HOW_BUILD ? BUILD_DIR "/iid" :
		    BUILD_DIR "/out", path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	nl = strrchr(buf, '\n');
	s = nl ? nl + 1 : buf;
	if (strncmp(s, "sha256:", 7))
		snprintf(id, sz, "sha256:%s", s);
	else
		snprintf(id, sz, "%s", s);
	return strlen(id) == 71 && strspn(id + 7, "0123456789abcdef") == 64 ?
	       0 : -EINVAL;
}

/* The last lines of the log, at most @sz bytes, joined by " | ". */
static void log_tail(struct ws *ws, const struct obj *o, char *out,
		     size_t sz)
{
	char path[PATH_MAX], buf[400];
	ssize_t n;
	off_t end;
	int fd;

	out[0] = '\0';
	ws_obj_path(ws, o->id, RUN_LOG, path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	n = pread(fd, buf, sizeof(buf) - 1, end > 399 ? end - 399 : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = '|';
	ws_text_clean(strchr(buf, '|') && end > 399 ? strchr(buf, '|') + 1 :
		      buf, out, sz);
}

static void build_done(struct ws *ws, struct obj *o, struct build *b,
		       int status)
{
	char id[128], tail[300], text[200];
	struct err e = { { 0 } };
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	if (!strcmp(o->type, "cancel")) {
		err_set(&e, -ECANCELED, "the build was canceled");
		log_line(ws, o, e.msg);
		env_fail(ws, o, &e);
		return;
	}
	if (code == 0 && !build_image(ws, o, b->how, id, sizeof(id))) {
		if (strcmp(o->node, id))
			env_prune_add(ws, o);	/* superseded */
		snprintf(o->ddata, sizeof(o->ddata), "key %016llx%s",
			 (unsigned long long)b->key,
			 b->how == HOW_INSPECT ? "" : " made");
		snprintf(text, sizeof(text), "Ready: image %s", id);
		log_line(ws, o, text);
		env_to(ws, o, ES_READY, id, "");
		return;
	}
	log_tail(ws, o, tail, sizeof(tail));
	err_set(&e, -EIO, "the build failed (podman exit %d); the end of its"
		" log: %s", code, tail);
	env_fail(ws, o, &e);
}

/* A build of a daemon that was killed: its podman is stopped (its
 * output went to a log this one starts anew), and the build starts
 * again. */
static void stale_stop(const struct obj *o)
{
	char path[64], comm[32] = "";
	pid_t pid = (pid_t)atoi(o->backend_id);
	FILE *f;

	if (pid <= 1)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	if (!strncmp(comm, "podman", 6))
		kill(-pid, SIGKILL);
}

static void build_watch(struct ws *ws, struct obj *o, struct build *b)
{
	int status;
	pid_t got;

	if (!strcmp(o->type, "cancel") && !b->term_sent) {
		kill(-b->pid, SIGTERM);
		b->term_sent = wall_s();
	} else if (b->term_sent && wall_s() - b->term_sent > KILL_AFTER_S) {
		kill(-b->pid, SIGKILL);
	}
	got = waitpid(b->pid, &status, WNOHANG);
	if (got == 0)
		return;
	if (got < 0)
		status = 0xff00;	/* not ours any more: a failure */
	build_done(ws, o, b, status);
	build_drop(b);
}

static int step_cb(void *arg, const struct obj *cur)
{
	struct ws *ws = arg;
	struct obj o = *cur;
	struct build *b = build_find(o.id);
	struct err e = { { 0 } };

	if (o.state != ES_BUILDING)
		return 0;
	if (b) {
		build_watch(ws, &o, b);
		return 0;
	}
	if (o.backend_id[0])
		stale_stop(&o);
	if (!strcmp(o.type, "cancel")) {
		err_set(&e, -ECANCELED, "the build was canceled");
		env_fail(ws, &o, &e);
		return 0;
	}
	build_start(ws, &o);
	return 0;
}

void env_step(struct ws *ws)
{
	ws_list(ws, K_ENVIRONMENT, 0, 0, step_cb, ws);
}

static int start_cb(void *arg, const struct obj *o)
{
	if (o->state == ES_BUILDING)
		worker_kick(arg, o->id);
	return 0;
}

void env_start_all(struct ws *ws)
{
	ws_list(ws, K_ENVIRONMENT, 0, 0, start_cb, ws);
}

