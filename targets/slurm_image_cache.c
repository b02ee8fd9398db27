// SPDX-License-Identifier: MIT
/*
 * The image cache of a Slurm or managed cluster target, pruned (see
 * slurm_image_cache.h; slurm_image.c stages the files).  On the target's
 * worker: a pass every SL_CACHE_EVERY_S (from the poll while runs are
 * active, from the refresh while idle), at once after a run in an
 * environment ended, and at deprovision.
 *
 * What a pass removes:
 *  - a file whose image is no environment's current image and no
 *    unfinished run's (Queued, Starting, Running: the image it recorded
 *    at submit), whatever the bound;
 *  - while the files add up to more than `image_cache_mb`, the least
 *    recently used one (mtime: staged, or used by a run since,
 *    sl_cache_touch) that no unfinished run uses: an environment's
 *    current image is staged again by its next run.
 * An unfinished run's file is never removed.  The runs and environments
 * counted are the whole workspace's: a workdir's cache folder is shared
 * by the workspace's targets with that workdir (the folder is named after
 * the state dir), so a run of another target holds its file too.
 *
 * Hostile folders: the cache folder is opened without following a link
 * and must be the daemon's, written by nobody else (with a workdir its
 * mlfs-HASH folder too), else nothing is done there; it is never created
 * here.  A file is removed by unlinkat in that folder's fd, and only a
 * file of the daemon's own: a name "<64 hex digits>-<uid>.tar", a
 * regular file with one link, owned by that uid (or by the daemon); a
 * link, a folder, a foreign file or any other name is left alone.  Files
 * the daemon was writing when it died (".<name>.<target id>.part") go
 * after PART_STALE_S without a write.
 *
 * Passes of several targets (one worker each) and a run's sl_cache_touch
 * take cache_lock: a target's run that finds its file touches it under
 * the lock, so a pass of another target sharing the folder either sees
 * the run (it was submitted before the pass read the runs: its image is
 * held) or removed the file before the touch (which then fails, and the
 * run stages the image again).
 */
#include "slurm_image_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "../lib/clock.h"
#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/vec.h"
#include "slurm_i.h"

#define SL_CACHE_EVERY_S 30.0	/* between two passes of a target */
#define PART_STALE_S	3600	/* a .part file without a write is left */
#define IMAGES_DIR	"images"
#define HEX_LEN		64	/* a sha256 image id's hex digits */
#define MIB		(1024.0 * 1024.0)

/* Orders every pass against the touches of runs (see the top). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* One of the cache's files. */
struct entry {
	char name[NAME_MAX + 1];
	long long size;
	struct timespec used;		/* mtime: staged or last touched */
	int held;			/* 2: an unfinished run's image, 1: an
					 * environment's current one, 0: none */
};

/* Image ids in use, and by whom (ws_images_held). */
struct held {
	char hex[HEX_LEN + 1];
	int run;
};

typedef VEC(struct held) held_vec;
typedef VEC(struct entry) entry_vec;

void sl_cache_top_name(const struct target_ctx *t, char *buf, size_t len)
{
	const char *state = ws_state_dir(t->ws);

	snprintf(buf, len, "mlfs-%08x",
		 (unsigned)fnv1a64_add(FNV64_BASIS_SHORT, state,
				       strlen(state)));
}

int sl_cache_touch(int dfd, const char *name)
{
	int rc;

	pthread_mutex_lock(&cache_lock);
	rc = utimensat(dfd, name, NULL, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	pthread_mutex_unlock(&cache_lock);
	return rc;
}

/* ---- the folder ----------------------------------------------------------- */

int sl_own_dir_at(int dfd, const char *name, mode_t mode)
{
	struct stat sb;
	int fd;

	if (mode && mkdirat(dfd, name, mode) && errno != EEXIST)
		return -errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
	if (fstat(fd, &sb) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 0022)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* The cache folder of @t (as slurm_image.c's cache_open finds it, never
 * made here): its fd, or -errno; its path into @path for the log. */
static int cache_dir(struct target_ctx *t, const struct slurm_target *st,
		     char *path)
{
	char top[64];
	int md, fd;

	if (st->cfg.workdir) {
		sl_cache_top_name(t, top, sizeof(top));
		snprintf(path, PATH_MAX, "%s/%s", st->cfg.workdir, top);
		fd = open(st->cfg.workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		md = fd < 0 ? -errno : sl_own_dir_at(fd, top, 0);
		if (fd >= 0)
			close(fd);
	} else {
		ws_obj_path(t->ws, t->obj.id, NULL, path);
		md = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			  O_CLOEXEC);
		md = md < 0 ? -errno : md;
	}
	if (md < 0)
		return md;
	strncat(path, "/" IMAGES_DIR, PATH_MAX - strlen(path) - 1);
	fd = sl_own_dir_at(md, IMAGES_DIR, 0);
	close(md);
	return fd;
}

/* ---- what is in use ------------------------------------------------------- */

static int held_cb(void *arg, const char *image, int run)
{
	held_vec *v = arg;
	struct held h = { .run = run };

	if (strncmp(image, "sha256:", 7) || strlen(image + 7) != HEX_LEN)
		return 0;	/* no file of ours is named after it */
	memcpy(h.hex, image + 7, HEX_LEN + 1);
	return vec_push(v, h) ? 1 : 0;
}

/* 2: an unfinished run uses image @hex, 1: an environment's, 0: none. */
static int held_by(const held_vec *v, const char *hex)
{
	int held = 0;

	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->v[i].hex, hex, HEX_LEN))
			held = v->v[i].run ? 2 : held > 1 ? held : 1;
	return held;
}

/* ---- the files ---------------------------------------------------------- */

/* Is @name "<64 hex>-<uid>.tar"?  Its uid into @uid. */
static int cache_name(const char *name, uid_t *uid)
{
	const char *p = name + HEX_LEN;
	unsigned long u;
	char *end;

	if (strspn(name, "0123456789abcdef") != HEX_LEN || *p != '-' ||
	    p[1] < '0' || p[1] > '9')
		return 0;
	errno = 0;
	u = strtoul(p + 1, &end, 10);
	if (errno || strcmp(end, ".tar") || u > (uid_t)-1 - 1)
		return 0;
	*uid = (uid_t)u;
	return 1;
}

/* A file the daemon made: a regular file with one link, @uid's (the job
 * user's it was given to) or the daemon's. */
static int own_file(const struct stat *sb, uid_t uid)
{
	return S_ISREG(sb->st_mode) && sb->st_nlink == 1 &&
	       (sb->st_uid == uid || sb->st_uid == geteuid());
}

/* ".<cache name>.<digits>.part" of the daemon's, unwritten for long. */
static int stale_part(int dfd, const char *name)
{
	char base[NAME_MAX + 1];
	const char *dot;
	struct stat sb;
	size_t len = strlen(name);
	uid_t uid;

	if (name[0] != '.' || len < 6 || strcmp(name + len - 5, ".part"))
		return 0;
	dot = memrchr(name, '.', len - 5);
	if (!dot || dot == name || (size_t)(dot - name) >= sizeof(base) ||
	    strspn(dot + 1, "0123456789") != (size_t)(name + len - 5 - dot - 1))
		return 0;
	memcpy(base, name + 1, (size_t)(dot - name - 1));
	base[dot - name - 1] = '\0';
	if (!cache_name(base, &uid) ||
	    fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) ||
	    !own_file(&sb, uid))
		return 0;
	return time(NULL) - sb.st_mtim.tv_sec > PART_STALE_S;
}

static void part_removed(struct target_ctx *t, const char *name)
{
	char text[NAME_MAX + 128];

	snprintf(text, sizeof(text), "image cache: removed %s: a podman save"
		 " left unfinished (the daemon stopped while it wrote)", name);
	ws_event(t->ws, K_TARGET, t->obj.name, text);
}

/* The cache's own files into @files, each with its holder. */
static int list_files(int dfd, const held_vec *held, entry_vec *files,
		      struct target_ctx *t)
{
	struct dirent *de;
	struct entry en;
	struct stat sb;
	DIR *d;
	uid_t uid;
	int fd = dup(dfd);

	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (stale_part(dfd, de->d_name) &&
		    !unlinkat(dfd, de->d_name, 0))
			part_removed(t, de->d_name);
		if (!cache_name(de->d_name, &uid) ||
		    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ||
		    !own_file(&sb, uid))
			continue;	/* not the daemon's: left alone */
		memset(&en, 0, sizeof(en));
		snprintf(en.name, sizeof(en.name), "%s", de->d_name);
		en.size = (long long)sb.st_size;
		en.used = sb.st_mtim;
		en.held = held_by(held, de->d_name);
		if (vec_push(files, en))
			break;
	}
	closedir(d);
	return 0;
}

/* Remove @en (still the file listed: same size and time) and say why. */
static void remove_file(struct target_ctx *t, int dfd,
			const struct entry *en, const char *why)
{
	char text[NAME_MAX + 256];
	struct stat sb;
	uid_t uid;

	if (!cache_name(en->name, &uid) ||
	    fstatat(dfd, en->name, &sb, AT_SYMLINK_NOFOLLOW) ||
	    !own_file(&sb, uid) || sb.st_mtim.tv_sec != en->used.tv_sec ||
	    sb.st_mtim.tv_nsec != en->used.tv_nsec)
		return;		/* used meanwhile, or gone */
	if (unlinkat(dfd, en->name, 0)) {
		log_warn("target %s: image cache: cannot remove %s: %s",
			 t->obj.name, en->name, strerror(errno));
		return;
	}
	snprintf(text, sizeof(text), "image cache: removed %s (%.1f MB): %s",
		 en->name, (double)en->size / 1e6, why);
	ws_event(t->ws, K_TARGET, t->obj.name, text);
}

/* The least recently used file nobody runs in, or NULL. */
static struct entry *lru(entry_vec *files)
{
	struct entry *best = NULL;

	for (size_t i = 0; i < files->n; i++) {
		struct entry *en = &files->v[i];

		if (en->held > 1 || en->size < 0)
			continue;
		if (!best || en->used.tv_sec < best->used.tv_sec ||
		    (en->used.tv_sec == best->used.tv_sec &&
		     en->used.tv_nsec < best->used.tv_nsec))
			best = en;
	}
	return best;
}

/* Files of no one, then the least recently used above @mb (-1: the
 * target is deprovisioned: every file no unfinished run uses). */
static void prune_files(struct target_ctx *t, int dfd, entry_vec *files,
			long mb)
{
	double total = 0, bound = mb < 0 ? 0 : (double)mb * MIB;
	struct entry *en;
	char why[160];

	for (size_t i = 0; i < files->n; i++) {
		en = &files->v[i];
		if (!en->held) {
			remove_file(t, dfd, en, "its image is no environment's"
				    " and no unfinished run's");
			en->size = -1;
		} else {
			total += (double)en->size;
		}
	}
	while (total > bound && (en = lru(files))) {
		if (mb < 0)
			snprintf(why, sizeof(why), "the target is"
				 " deprovisioned");
		else
			snprintf(why, sizeof(why), "the least recently used,"
				 " the cache holding %.1f MB, over %s = %ld",
				 total / 1e6, SL_CACHE_KEY, mb);
		remove_file(t, dfd, en, why);
		total -= (double)en->size;
		en->size = -1;
	}
}

/* The cache's folder @path is a link or another's: said once. */
static void refused(struct target_ctx *t, struct slurm_target *st,
		    const char *path)
{
	char text[PATH_MAX + 160];

	if (st->images_refused)
		return;
	st->images_refused = 1;
	snprintf(text, sizeof(text), "image cache: %s is not"
		 " the daemon's own folder (a link, or others may write it):"
		 " nothing there is removed", path);
	ws_event(t->ws, K_TARGET, t->obj.name, text);
}

/* One pass over @t's cache, with the bound @mb (-1: deprovisioned). */
static void pass(struct target_ctx *t, struct slurm_target *st, long mb)
{
	char path[PATH_MAX];
	held_vec held = { 0 };
	entry_vec files = { 0 };
	int dfd, rc;

	dfd = cache_dir(t, st, path);
	if (dfd == -EPERM)
		refused(t, st, path);
	else if (dfd < 0 && dfd != -ENOENT)
		log_warn("target %s: image cache %s not pruned: %s",
			 t->obj.name, path, strerror(-dfd));
	if (dfd < 0)
		return;
	st->images_refused = 0;
	pthread_mutex_lock(&cache_lock);
	rc = ws_images_held(t->ws, held_cb, &held);
	if (!rc)
		rc = list_files(dfd, &held, &files, t);
	if (!rc)
		prune_files(t, dfd, &files, mb);
	else
		log_warn("target %s: image cache not pruned: %s", t->obj.name,
			 strerror(-rc));
	pthread_mutex_unlock(&cache_lock);
	vec_free(&held);
	vec_free(&files);
	close(dfd);
}

/* The target's state with its config parsed, or NULL (not ready). */
static struct slurm_target *target(struct target_ctx *t)
{
	struct err e = { { 0 } };

	return sl_get(t, &e);
}

void sl_cache_prune(struct target_ctx *t)
{
	const struct slurm_target *now = t->priv;
	struct slurm_target *st;
	struct err e = { { 0 } };
	long mb;

	if (now && !now->images_due && now->images_at &&
	    mono_s() - now->images_at < SL_CACHE_EVERY_S)
		return;
	st = target(t);
	if (!st)
		return;
	st->images_due = 0;
	st->images_at = mono_s();
	if (sl_cache_mb(&t->config, &mb, &e))
		mb = SL_CACHE_MB_DEFAULT;	/* edited, not applied yet */
	pass(t, st, mb);
}

void sl_cache_ended(struct target_ctx *t)
{
	struct slurm_target *st = t->priv;

	if (st)
		st->images_due = 1;
}

void sl_cache_empty(struct target_ctx *t)
{
	struct slurm_target *st = target(t);

	if (st)
		pass(t, st, -1);
}
