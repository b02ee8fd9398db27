/* SPDX-License-Identifier: MIT */
/*
 * Private to backend/: the environment kind (env.c, FUSE threads) and its
 * worker side (env_sm.c, the environments' worker: builds).
 *
 * How an environment uses the fields of struct obj:
 *   type        what ctl last asked: "build", "rebuild" or "cancel"
 *   backend_id  the pid of the podman process of the build under way
 *   node        the image id ("sha256:…") once Ready
 *   ddata       "key HEX": the hash of the folder and config last built,
 *               then " made" when the image is the build's or import's
 *               (not an image of the store's it adopted: never removed)
 * (not `cancel`: a run's cancel is never cleared, a build's is).
 */
#ifndef MLFS_ENV_I_H
#define MLFS_ENV_I_H

#include <stddef.h>
#include <sys/types.h>

#include "objects.h"
#include "parse.h"

struct ws;

/* The environments' worker: one thread for all builds (worker.c). */
#define ENV_WORKER_ID	(-3)
/* It looks at the builds under way this often. */
#define ENV_TICK_MS	100


/* An environment's `config`: what the image is made from. */
struct env_config {
	char image[256];	/* image = NAME[:TAG] ("" none) */
	char rootfs[1024];	/* rootfs = PATH (a tarball, "" none) */
};

/* ---- env.c ------------------------------------------------------------ */

/* Parse @buf as an environment's config.  0 or -EINVAL + sentence. */
int env_config_parse(const char *buf, size_t len, struct env_config *c,
		     struct err *e);

/* ---- env_use.c -------------------------------------------------------- */

/* A run's or a deployment's `environment`: empty, or an environment that
 * exists.  0 or -EINVAL with a sentence. */
int env_run_check(struct ws *ws, const char *buf, size_t len,
		  struct err *e);
/* At submit (deploy): the environment run (deployment) @o names must be
 * Ready; its image id into @image ("" when @o names none).  0 or -EINVAL
 * + sentence. */
int env_run_image(struct ws *ws, const struct obj *o, char *image,
		  size_t sz, struct err *e);

/* The image id generation @gen of deployment @id runs in, into @buf (""
 * none, or no such generation). */
void deploy_gen_image(struct ws *ws, int64_t id, int gen, char *buf,
		      size_t sz);
/*
 * deploy_holds_env - is environment @name (NULL: any) named by a
 * deployment that is not Draft, or image @image (NULL: none) the one its
 * serving or last generation runs in?  1 and the deployment's name in
 * @dep, else 0.
 */
int deploy_holds_env(struct ws *ws, const char *name, const char *image,
		     char *dep, size_t sz);

/* ---- env_podman.c (env_podman: driver.h) ------------------------------ */

/* podman with @argv, its output into @out, waited for (a short query):
 * its wait status, -1 when it did not start. */
int env_podman_wait(char *const argv[], const char *out);
/* Queue @o's image for removal from podman's store, if @o made it (built
 * or imported; not an image it adopted): @o's image is being superseded,
 * lost, or @o removed.  Any thread. */
void env_prune_add(struct ws *ws, const struct obj *o);
/* Housekeeping worker: remove the queued images nothing holds any more
 * (no environment, unfinished run or live deployment); at most every
 * few seconds. */
void env_prune(struct ws *ws);

/* ---- env_sm.c --------------------------------------------------------- */

/* Worker: one look at every environment (start, watch, cancel builds). */
void env_step(struct ws *ws);
/* Worker: how long it may sleep (ENV_TICK_MS while builds run, else -1). */
int env_timeout_ms(void);
/* Worker exit: forget the builds (a restarted daemon starts them anew). */
void env_release(void);
/* ws_start: wake the environments' worker when a build was under way. */
void env_start_all(struct ws *ws);
/* The first id and count of the `containers` entry of /etc/subuid
 * (@file) for the builds' user namespace.  0 or -ENOENT. */
int env_subid(const char *file, unsigned long *first, unsigned long *count);

#endif
