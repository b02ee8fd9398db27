// SPDX-License-Identifier: MIT
/*
 * Who uses an environment: a run's or a deployment's `environment`
 * setting checked and resolved to the image id (runs at submit,
 * deployments at deploy), and the deployments that name one or run in an
 * image (the environments' busy check, the pruning of images), and the
 * images in use, for the slurm driver's image caches.  Apart
 * from env.c and the deploy_*.c files, which both call it, so that
 * neither calls the other.
 */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy_i.h"
#include "env_i.h"
#include "ws_i.h"

/* ---- runs naming one ------------------------------------------------------ */

int env_run_check(struct ws *ws, const char *buf, size_t len,
		  struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj env;
	int rc;

	rc = first_word(buf, len, name, sizeof(name), e);
	if (rc || !name[0])
		return rc;
	rc = name_valid(name, e);
	if (!rc && ws_find(ws, K_ENVIRONMENT, 0, name, &env))
		rc = err_set(e, -EINVAL, "there is no environment '%s' (see"
			     " environments/)", name);
	return rc;
}

int env_run_image(struct ws *ws, const struct obj *o, char *image,
		  size_t sz, struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj env;
	int rc;

	image[0] = '\0';
	rc = ws_read_word(ws, o->id, F_ENVIRONMENT, "environment", name,
			  sizeof(name), e);
	if (rc || !name[0])
		return rc;
	if (ws_find(ws, K_ENVIRONMENT, 0, name, &env))
		return err_set(e, -EINVAL, "environment: there is no"
			       " environment '%s' (see environments/)", name);
	if (env.state != ES_READY || !env.node[0])
		return err_set(e, -EINVAL, "environment '%s' is %s, not Ready:"
			       " build it first (echo build >"
			       " environments/%s/ctl)", name,
			       state_name(env.state), name);
	snprintf(image, sz, "%s", env.node);
	return 0;
}

/* ---- images in use (the image caches of the slurm driver) ---------------- */

int ws_images_held(struct ws *ws,
		   int (*cb)(void *arg, const char *image, int run),
		   void *arg)
{
	return store_list_held_images(ws->st, cb, arg);
}

/* ---- the image of a generation (info.json, environments) ----------------- */

void deploy_gen_image(struct ws *ws, int64_t id, int gen, char *buf,
		      size_t sz)
{
	struct kv_list kv = { 0 };
	char path[PATH_MAX], sub[64], text[4096];
	const char *v;
	struct err e;
	ssize_t n = -1;
	int fd;

	buf[0] = '\0';
	if (gen <= 0)
		return;
	snprintf(sub, sizeof(sub), DEP_GEN "/%d/spec", gen);
	ws_obj_path(ws, id, sub, path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text));
		close(fd);
	}
	if (n <= 0 || kv_parse(text, n, &kv, &e))
		return;
	v = kv_get(&kv, "image");
	snprintf(buf, sz, "%s", v ? v : "");
	kv_free(&kv);
}

struct hold_ctx {
	struct ws *ws;
	const char *name;		/* an environment's name, or NULL */
	const char *image;		/* an image id, or NULL/"" */
	char *dep;			/* the first deployment holding it */
	size_t sz;
};

/* Does deployment @o, not Draft, name the environment or run (or last
 * ran) in the image? */
static int hold_cb(void *arg, const struct obj *o)
{
	struct hold_ctx *c = arg;
	char word[MLFS_NAME_MAX + 2], img[128];
	struct err e;
	int held = 0;

	if (o->state == DS_DRAFT)
		return 0;
	if (c->name && !ws_read_word(c->ws, o->id, F_ENVIRONMENT,
				     "environment", word, sizeof(word), &e))
		held = !strcmp(word, c->name);
	for (int i = 0; !held && c->image && c->image[0] && i < 2; i++) {
		deploy_gen_image(c->ws, o->id, i ? o->dep.last_gen : o->dep.gen,
				 img, sizeof(img));
		held = !strcmp(img, c->image);
	}
	if (held)
		snprintf(c->dep, c->sz, "%s", o->name);
	return held;
}

int deploy_holds_env(struct ws *ws, const char *name, const char *image,
		     char *dep, size_t sz)
{
	struct hold_ctx c = { ws, name, image, dep, sz };

	dep[0] = '\0';
	ws_list(ws, K_DEPLOYMENT, 0, 0, hold_cb, &c);
	return dep[0] != '\0';
}
