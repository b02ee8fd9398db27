// SPDX-License-Identifier: MIT
/*
 * podman for the environments: where it is, a short query run to its end,
 * and the removal of the images the workspace made once nothing holds
 * them.  Below env.c and env_sm.c (both queue images here), above
 * env_use.c (who holds one).
 */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/log.h"
#include "../lib/spawn.h"
#include "driver.h"
#include "env_i.h"
#include "store.h"
#include "ws_i.h"

int env_podman(char *buf, size_t sz)
{
	static const char *const where[] = {
		"/usr/bin/podman", "/usr/local/bin/podman", "/bin/podman",
	};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (!access(where[i], X_OK)) {
			snprintf(buf, sz, "%s", where[i]);
			return 0;
		}
	return -ENOENT;
}

/* Run podman with @argv and wait (a short query); its status. */
int env_podman_wait(char *const argv[], const char *out)
{
	static char *const env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL
	};
	struct err e;
	int status;
	pid_t pid;

	pid = spawn_session(argv, env, out, NULL, &e);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/* ---- pruning: the images the workspace made, once nothing holds them -- */

/*
 * <state>/env-prune: image ids (one a line) an environment made -- built
 * or imported, never an image of the store's it adopted (image = NAME) --
 * and no longer its image: superseded by a build, lost with a failed one,
 * or the environment removed.  The housekeeping worker (env_prune) removes
 * each from podman's store once no environment, unfinished run or live
 * deployment holds it, and keeps the others for a later look.  The mutex
 * orders the appends (FUSE threads, the environments' worker) against the
 * rewrite.
 */
#define PRUNE_FILE	"env-prune"
#define PRUNE_EVERY_S	5.0	/* a held image is looked at again */
#define PRUNE_STUCK_S	60.0	/* one a foreign container uses */

static pthread_mutex_t prune_lock = PTHREAD_MUTEX_INITIALIZER;
static double prune_next;	/* under prune_lock: when to look again */

static void prune_path(struct ws *ws, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/" PRUNE_FILE, ws_state_dir(ws));
}

/* Did the environment make its image (ddata "key HEX made")? */
static int env_made(const struct obj *o)
{
	size_t n = strlen(o->ddata);

	return n > 5 && !strcmp(o->ddata + n - 5, " made") &&
	       !strncmp(o->node, "sha256:", 7);
}

void env_prune_add(struct ws *ws, const struct obj *o)
{
	char path[PATH_MAX];
	int fd;

	if (!env_made(o))
		return;
	prune_path(ws, path);
	pthread_mutex_lock(&prune_lock);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s\n", o->node) < 0)
		log_warn("environment %s: cannot queue image %s for removal",
			 o->name, o->node);
	if (fd >= 0)
		close(fd);
	prune_next = 0;
	pthread_mutex_unlock(&prune_lock);
}

struct held_ctx {
	struct ws *ws;
	const char *image;
	int held;
};

/* An environment whose image it is, or one building (its FROM may be). */
static int env_holds_cb(void *arg, const struct obj *o)
{
	struct held_ctx *c = arg;

	c->held = !strcmp(o->node, c->image) || o->state == ES_BUILDING;
	return c->held;
}

static int run_holds_cb(void *arg, const struct obj *o)
{
	struct held_ctx *c = arg;
	size_t len;
	char *buf;

	if (!run_state_active(o->state) ||
	    store_text_get(c->ws->st, o->id, TEXT_RUN_IMAGE, &buf, &len))
		return 0;
	c->held = !strcmp(buf, c->image);
	free(buf);
	return c->held;
}

/* Is @image an environment's, an unfinished run's or a live deployment's,
 * or is a build under way? */
static int image_held(struct ws *ws, const char *image)
{
	struct held_ctx c = { ws, image, 0 };
	char dep[MLFS_NAME_MAX + 1];

	ws_list(ws, K_ENVIRONMENT, 0, 0, env_holds_cb, &c);
	if (!c.held)
		ws_list(ws, K_RUN, 0, 0, run_holds_cb, &c);
	return c.held || deploy_holds_env(ws, NULL, image, dep, sizeof(dep));
}

/* Is @name buildah's working container of a build FROM @image: "<first
 * 12 hex digits of the id>-working-container", maybe "-N" after? */
static int leftover_name(const char *name, const char *image)
{
	static const char tail[] = "-working-container";
	size_t t = sizeof(tail) - 1;

	if (strncmp(name, image + 7, 12) || strncmp(name + 12, tail, t))
		return 0;
	name += 12 + t;
	return !*name || (*name == '-' && name[1] &&
			  strspn(name + 1, "0123456789") == strlen(name + 1));
}

/*
 * The working containers that builds FROM @image left when they were
 * killed (cancel, a daemon killed during a build): podman never removes
 * them, and they hold the image.  Removed only when no build of the
 * workspace runs (image_held said so).
 */
static void leftovers_remove(struct ws *ws, const char *podman,
			     const char *image)
{
	char *ps[] = { (char *)podman, "--log-level=error", "ps", "-a",
		       "--external", "--format={{.ID}} {{.Names}}", NULL };
	char *rm[] = { (char *)podman, "--log-level=error", "rm", "-f", NULL,
		       NULL };
	char path[PATH_MAX], line[512], id[128], name[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/" PRUNE_FILE ".ps", ws_state_dir(ws));
	if (env_podman_wait(ps, path) != 0)
		return;
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %255s", id, name) != 2 ||
		    !leftover_name(name, image))
			continue;
		rm[4] = id;
		env_podman_wait(rm, "/dev/null");
	}
	if (f)
		fclose(f);
	unlink(path);
}

/* podman rmi: 1 gone (or never there), 0 kept (a container uses it).
 * --no-prune: its parent may be another environment's image. */
static int image_remove(struct ws *ws, const char *image)
{
	char podman[PATH_MAX];
	char *argv[] = { podman, "--log-level=error", "rmi", "--no-prune",
			 (char *)image, NULL };
	int status;

	if (env_podman(podman, sizeof(podman)))
		return 1;
	status = env_podman_wait(argv, "/dev/null");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
		leftovers_remove(ws, podman, image);
		status = env_podman_wait(argv, "/dev/null");
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return 0;
	if (status)
		log_info("image %s was not removed (podman rmi status %d)",
			 image, status);
	return 1;
}

#define PRUNE_MAX	(64 * 1024)	/* bytes of queue: 900 images */

/* The queue's whole lines into @buf (PRUNE_MAX, NUL ended): their length,
 * or -errno. */
static ssize_t prune_read(struct ws *ws, char *buf)
{
	char path[PATH_MAX], *end;
	ssize_t n;
	int fd;

	prune_path(ws, path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, PRUNE_MAX - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	end = strrchr(buf, '\n');	/* a line cut short is no id */
	if (!end)
		end = buf - 1;
	end[1] = '\0';
	return end + 1 - buf;
}

/* The queue anew: @keep's lines, then those appended since @done bytes
 * were read.  Under prune_lock. */
static void prune_write(struct ws *ws, const char *keep, size_t done)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *more = malloc(PRUNE_MAX);
	ssize_t n = more ? prune_read(ws, more) : -ENOMEM;
	int fd, rc;

	prune_path(ws, path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = n < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, 0600);
	if (fd >= 0) {
		rc = dprintf(fd, "%s%s", keep, (size_t)n > done ? more + done :
			     "");
		if (close(fd) || rc < 0 || rename(tmp, path))
			log_warn("cannot rewrite %s", path);
	}
	free(more);
}

/* sha256: and 64 hex digits: never a prefix podman would match others by. */
static int image_id_valid(const char *s)
{
	return strlen(s) == 71 && !strncmp(s, "sha256:", 7) &&
	       strspn(s + 7, "0123456789abcdef") == 64;
}

/* Each id of @lines: kept in @keep while held, else removed.  Returns
 * how many a container outside the workspace's knowledge still uses. */
static int prune_lines(struct ws *ws, char *lines, char *keep)
{
	char *line, *save = NULL;
	size_t k = 0;
	int held, stuck = 0;

	for (line = strtok_r(lines, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!image_id_valid(line) || strstr(keep, line))
			continue;	/* garbage, or twice in the queue */
		held = image_held(ws, line);
		if (!held && !image_remove(ws, line))
			held = ++stuck;
		if (held && k + 73 < PRUNE_MAX)
			k += sprintf(keep + k, "%s\n", line);
	}
	return stuck;
}

void env_prune(struct ws *ws)
{
	char *buf, *keep;
	ssize_t done = 0;
	int due, stuck;

	pthread_mutex_lock(&prune_lock);
	due = mono_s() >= prune_next;
	if (due)
		prune_next = mono_s() + PRUNE_EVERY_S;
	pthread_mutex_unlock(&prune_lock);
	if (!due)
		return;
	buf = malloc(PRUNE_MAX);
	keep = calloc(1, PRUNE_MAX);
	if (buf && keep)
		done = prune_read(ws, buf);
	if (done > 0) {
		stuck = prune_lines(ws, buf, keep);
		pthread_mutex_lock(&prune_lock);
		prune_write(ws, keep, (size_t)done);
		if (stuck && prune_next)	/* no podman rmi every few s */
			prune_next = mono_s() + PRUNE_STUCK_S;
		pthread_mutex_unlock(&prune_lock);
	}
	free(buf);
	free(keep);
}
