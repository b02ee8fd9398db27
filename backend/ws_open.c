// SPDX-License-Identifier: MIT
/*
 * Open, start and close the workspace: the state dir's folders, events,
 * the store, the built-in local target, the repairs after a crash
 * (reconcile), and the registration of the kinds and of the worker's
 * hooks.  The top floor of backend/ (see ws_i.h): called from fs/main.c
 * on the main thread, before and after the FUSE loop.
 */
#include "ws.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "ws_i.h"

struct reconcile {
	struct ws *ws;
	int repaired;
};

static int reconcile_obj(void *arg, int64_t id)
{
	struct reconcile *rc = arg;
	char path[PATH_MAX];
	struct stat st;
	struct obj o;

	if (store_get(rc->ws->st, id, &o))
		return 0;
	ws_obj_path(rc->ws, id, NULL, path);
	if (!stat(path, &st))
		return 0;
	if (!ws_make_obj_dirs(rc->ws, &o)) {
		log_warn("repaired: %s '%s' had no folder; made an empty one",
			 kind_name(o.kind), o.name);
		rc->repaired++;
	}
	return 0;
}

/* Folders under objects/ without a row: left by a crash in mkdir/rmdir. */
static void reconcile_orphans(struct ws *ws, int *repaired)
{
	char path[PATH_MAX], to[PATH_MAX + 64];
	struct dirent *de;
	struct obj o;
	char *end;
	long long id;
	DIR *d;

	snprintf(path, sizeof(path), "%s/objects", ws->dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		id = strtoll(de->d_name, &end, 10);
		if (*end == '\0' && id > 0 && !store_get(ws->st, id, &o))
			continue;
		snprintf(path, sizeof(path), "%s/objects/%s", ws->dir,
			 de->d_name);
		snprintf(to, sizeof(to), "%s/trash/orphan-%s", ws->dir,
			 de->d_name);
		if (!rename(path, to)) {
			log_warn("repaired: objects/%s had no record; moved to"
				 " the trash", de->d_name);
			(*repaired)++;
		}
	}
	closedir(d);
}

/*
 * The state dir and objects/ are 0711: a run, executing as its owner,
 * reaches its working copy through them (search permission), but nobody
 * lists them.  What holds secrets below is 0600 (workspace.db and its
 * -wal and -shm, see store.c) or in a 0700 folder.  The trash holds only
 * what is being deleted: nobody's business, 0700.
 */
static int open_dirs(struct ws *ws, struct err *e)
{
	const char *subs[] = { "", "/objects", "/trash" };
	const mode_t modes[] = { 0711, 0711, 0700 };
	char path[PATH_MAX];
	int rc;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", ws->dir, subs[i]);
		rc = ws_mkdir_p(path, modes[i]);
		if (!rc && chmod(path, modes[i]))
			rc = -errno;
		if (rc)
			return err_set(e, rc, "cannot create %s: %s", path,
				       strerror(-rc));
	}
	return 0;
}

static int open_events(struct ws *ws, struct err *e)
{
	struct stat st;

	snprintf(ws->events_path, sizeof(ws->events_path), "%s/events",
		 ws->dir);
	ws->events_fd = open(ws->events_path, O_WRONLY | O_APPEND | O_CREAT |
			     O_CLOEXEC, 0644);
	if (ws->events_fd < 0 || fstat(ws->events_fd, &st))
		return err_set(e, -errno, "cannot open %s: %s", ws->events_path,
			       strerror(errno));
	ws->events_size = st.st_size;
	return 0;
}

static int own_files_obj(void *arg, int64_t id)
{
	struct ws *ws = arg;
	struct obj o;

	if (!ws_get(ws, id, &o))
		ws_make_obj_dirs(ws, &o);
	return 0;
}

/*
 * Once per state dir, for a root daemon: the files/ folder of each object
 * becomes its creator's, as make_obj_dirs makes it now (users' files are
 * worked on with the users' own rights, who must be able to create in it).
 * A state dir made before that had them root's.  STATE/owners-1 says done.
 */
static void own_files(struct ws *ws, int fresh)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/owners-1", ws->dir);
	if (geteuid() != 0 || !access(path, F_OK))
		return;
	if (!fresh)
		store_list_ids(ws->st, own_files_obj, ws);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd >= 0)
		close(fd);
}

int ws_cpus(void)
{
	cpu_set_t set;
	long n;

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* The kinds, by enum obj_kind: adding a kind is its file and a line here. */
static void kinds_register(void)
{
	ws_kind_register(K_TARGET, &target_kind);
	ws_kind_register(K_RUN, &run_kind);
	ws_kind_register(K_DEPLOYMENT, &deployment_kind);
	ws_kind_register(K_ENDPOINT, &endpoint_kind);
	ws_kind_register(K_ENVIRONMENT, &env_kind);
	ws_kind_register(K_MODEL, &model_kind);
	ws_kind_register(K_VERSION, &version_kind);
}

int ws_open(struct ws **wsp, const char *state_dir, struct err *e)
{
	char path[PATH_MAX];
	struct reconcile rec;
	struct ws *ws;
	int rc, fresh;

	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return err_set(e, -ENOMEM, "out of memory");
	ws->dir = strdup(state_dir);
	ws->events_fd = -1;
	ws->ncpu = ws_cpus();
	ws->kick = worker_wake;
	ws->stop = worker_stop;
	kinds_register();
	pthread_mutex_init(&ws->ev_lock, NULL);
	pthread_mutex_init(&ws->space_lock, NULL);
	pthread_mutex_init(&ws->seq_lock, NULL);
	pthread_mutex_init(&ws->req_lock, NULL);
	rc = open_dirs(ws, e);
	if (!rc)
		rc = open_events(ws, e);
	if (rc)
		goto out_close;
	snprintf(path, sizeof(path), "%s/workspace.db", ws->dir);
	fresh = access(path, F_OK) != 0;
	rc = store_open(path, &ws->st, e);
	if (!rc)
		rc = target_ensure_local(ws, e);
	if (rc)
		goto out_close;
	space_open(ws);
	own_files(ws, fresh);
	ws->seq = store_max_seq(ws->st);
	/* After a clean stop the files match the store: skip the scan, so
	 * that 100,000 runs mount at once.  Else (a crash) reconcile. */
	snprintf(path, sizeof(path), "%s/clean", ws->dir);
	if (unlink(path) && !fresh) {
		rec.ws = ws;
		rec.repaired = 0;
		store_list_ids(ws->st, reconcile_obj, &rec);
		reconcile_orphans(ws, &rec.repaired);
		log_info("start-up after an unclean stop: %d inconsistencies"
			 " repaired", rec.repaired);
	}
	ws->opened = 1;
	*wsp = ws;
	return 0;

out_close:
	ws_close(ws);
	return rc;
}

int ws_start(struct ws *ws)
{
	return worker_start(ws);
}

void ws_close(struct ws *ws)
{
	char path[PATH_MAX];
	int fd;

	if (!ws)
		return;
	ws->stop(ws);
	store_close(ws->st);
	ws->st = NULL;
	snprintf(path, sizeof(path), "%s/clean", ws->dir);
	fd = ws->opened ? open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (fd >= 0)
		close(fd);
	if (ws->events_fd >= 0)
		close(ws->events_fd);
	free(ws->dir);
	free(ws);
}
