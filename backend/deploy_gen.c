// SPDX-License-Identifier: MIT
/*
 * A deployment's generations, on the target's worker thread: each
 * `deploy` or `restart` makes one, <dir>/gen/<n>/ with a snapshot of the
 * user's files (code/, made with their rights), the spec it serves
 * (model version, entry, command, host, port, replicas ...) and the
 * `env` lines its replicas get (env, 0600: secrets); the state
 * machine (deploy_sm.c) starts replicas from it and, after a daemon
 * restart, reads the serving one back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "deploy_parts.h"
#include "env_i.h"
#include "ws_i.h"

static void gen_path(const struct deploy_ctx *d, int gen, const char *sub,
		     char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s/%d%s%s", d->dir, DEP_GEN, gen,
		 sub ? "/" : "", sub ? sub : "");
}

int spec_write(const struct deploy_ctx *d, const struct deploy_spec *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	gen_path(d, s->gen, "spec", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "version_id = %lld\nmodel = %s\nentry = %s\ncommand = %s\n"
		"host = %s\nport = %d\nreplicas = %d\nready_timeout = %d\n"
		"max_body = %ld\nread_timeout = %d\nraw = %s\n",
		(long long)s->version_id, s->model, s->entry, s->command,
		s->host, s->port, s->replicas, s->ready_timeout, s->max_body,
		s->read_timeout, deploy_raw_name(s->raw));
	fprintf(f, "min_replicas = %d\nmax_replicas = %d\n"
		"target_in_flight = %d\nscale_out_cooldown = %d\n"
		"scale_in_cooldown = %d\n", s->scale.min, s->scale.max,
		s->scale.target, s->scale.out_cooldown, s->scale.in_cooldown);
	if (s->image[0])
		fprintf(f, "image = %s\n", s->image);
	if (fclose(f) || rename(tmp, path))
		return -errno;
	return 0;
}

static const char *kv_or(const struct kv_list *kv, const char *key,
			 const char *def)
{
	const char *v = kv_get(kv, key);

	return v ? v : def;
}

/* Autoscale as recorded (generations older than it: off, max 0). */
static void spec_read_scale(const struct kv_list *kv, struct deploy_scale *c)
{
	const char *v;

	c->min = (v = kv_get(kv, "min_replicas")) ? atoi(v) : 0;
	c->max = (v = kv_get(kv, "max_replicas")) ? atoi(v) : 0;
	c->target = (v = kv_get(kv, "target_in_flight")) ? atoi(v) : 0;
	c->out_cooldown = (v = kv_get(kv, "scale_out_cooldown")) ? atoi(v) : 0;
	c->in_cooldown = (v = kv_get(kv, "scale_in_cooldown")) ? atoi(v) : 0;
	if (c->min < 1 || c->max > MAX_REPLICAS || c->min > c->max ||
	    c->target < 1)
		memset(c, 0, sizeof(*c));
}

/* `raw` as recorded (generations older than it: no). */
static int spec_read_raw(const char *v)
{
	for (int i = 0; v && i < RAW_COUNT; i++)
		if (!strcmp(v, deploy_raw_name(i)))
			return i;
	return RAW_NO;
}

int spec_read(const struct deploy_ctx *d, int gen, struct deploy_spec *s)
{
	struct kv_list kv = { 0 };
	struct err e;
	char path[PATH_MAX], buf[4096];
	const char *v;
	ssize_t n;
	int fd, rc;

	gen_path(d, gen, "spec", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -EIO;
	memset(s, 0, sizeof(*s));
	rc = kv_parse(buf, n, &kv, &e);
	if (rc)
		return rc;
	s->gen = gen;
	s->version_id = (v = kv_get(&kv, "version_id")) ? atoll(v) : 0;
	snprintf(s->model, sizeof(s->model), "%s", kv_or(&kv, "model", ""));
	snprintf(s->entry, sizeof(s->entry), "%s", kv_or(&kv, "entry", ""));
	snprintf(s->command, sizeof(s->command), "%s",
		 kv_or(&kv, "command", ""));
	snprintf(s->image, sizeof(s->image), "%s", kv_or(&kv, "image", ""));
	snprintf(s->host, sizeof(s->host), "%s",
		 kv_or(&kv, "host", "127.0.0.1"));
	s->port = (v = kv_get(&kv, "port")) ? atoi(v) : 0;
	s->replicas = (v = kv_get(&kv, "replicas")) ? atoi(v) : 1;
	s->ready_timeout = (v = kv_get(&kv, "ready_timeout")) ? atoi(v) : 120;
	/* generations recorded before these keys: the defaults */
	s->max_body = (v = kv_get(&kv, "max_body")) ? atol(v) : 0;
	s->read_timeout = (v = kv_get(&kv, "read_timeout")) ? atoi(v) : 0;
	if (s->max_body <= 0)
		s->max_body = MAX_BODY_DEFAULT;
	if (s->read_timeout <= 0)
		s->read_timeout = READ_TIMEOUT_DEFAULT;
	spec_read_scale(&kv, &s->scale);
	s->raw = spec_read_raw(kv_get(&kv, "raw"));
	kv_free(&kv);
	gen_path(d, gen, "code", s->code);
	ws_obj_path(d->ws, s->version_id, RUN_FILES, s->model_dir);
	if (s->replicas < 1 || s->replicas > MAX_REPLICAS)
		s->replicas = 1;
	return 0;
}

/* ---- env ----------------------------------------------------------------- */

/* @path anew with @len bytes of @buf, 0600: the daemon's alone. */
static int env_put(const char *path, const char *buf, size_t len)
{
	int fd, rc = 0;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (len && write(fd, buf, len) != (ssize_t)len)
		rc = -EIO;
	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

/* File @name of generation @gen, whole, into *@buf (NUL ended).  A
 * missing one is empty. */
static int gen_read(const struct deploy_ctx *d, int gen, const char *name,
		    char **buf, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n = 0;
	int fd;

	*len = 0;
	gen_path(d, gen, name, path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return -errno;
	if (fd >= 0 && (fstat(fd, &st) || st.st_size >= SETTING_MAX)) {
		close(fd);
		return -EIO;
	}
	*buf = malloc(fd >= 0 ? st.st_size + 1 : 1);
	if (*buf && fd >= 0)
		n = read(fd, *buf, st.st_size);
	if (fd >= 0)
		close(fd);
	if (!*buf || n < 0) {
		free(*buf);
		return n < 0 ? -EIO : -ENOMEM;
	}
	(*buf)[n] = '\0';
	*len = n;
	return 0;
}

int deploy_gen_env(const struct deploy_ctx *d, int gen, struct kv_list *out)
{
	struct err e;
	size_t len;
	char *buf;
	int rc;

	out->items = NULL;
	out->n = 0;
	rc = gen_read(d, gen, "env", &buf, &len);
	if (rc)
		return rc;
	rc = deploy_env_parse(buf, len, out, &e);
	free(buf);
	return rc;
}

/* The `env` setting as it is now, checked, for generation @gen. */
static int env_from_settings(struct deploy_ctx *d, int gen, struct err *e)
{
	struct kv_list env = { 0 };
	char path[PATH_MAX];
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(d->ws, d->obj.id, F_ENV, &buf, &len);
	if (rc)
		return err_set(e, rc, "cannot read env");
	rc = deploy_env_parse(buf, len, &env, e);
	kv_free(&env);
	gen_path(d, gen, "env", path);
	if (!rc && env_put(path, buf, len))
		rc = err_set(e, -EIO, "cannot record the env of generation %d",
			     gen);
	free(buf);
	return rc;
}

/* `restart`: generation @gen gets the env of generation @old. */
static int env_from_gen(struct deploy_ctx *d, int old, int gen,
			struct err *e)
{
	char path[PATH_MAX];
	size_t len;
	char *buf;
	int rc;

	rc = gen_read(d, old, "env", &buf, &len);
	gen_path(d, gen, "env", path);
	if (!rc) {
		rc = env_put(path, buf, len);
		free(buf);
	}
	return rc ? err_set(e, -EIO, "cannot record the env of generation"
			    " %d", gen) : 0;
}

/* ---- generations ------------------------------------------------------- */

/* The number and folder of a new generation. */
static int gen_dir(struct deploy_ctx *d)
{
	char path[PATH_MAX];

	d->last_gen++;
	gen_path(d, d->last_gen, NULL, path);
	remove_tree(path);	/* a leftover of a crash */
	mkdir(path, 0711);
	return d->last_gen;
}

/* A new generation for `deploy`: the settings as they are now. */
static int gen_from_settings(struct deploy_ctx *d, struct deploy_spec *s,
			     struct err *e)
{
	char files[PATH_MAX];
	struct obj v, m;
	int rc;

	rc = check_config(d->ws, &d->obj, s, e);
	if (rc)
		return rc;
	default_host(s, d->t->drv);
	/* the version the write resolved (and marked in use), not the
	 * `model` file as it may be by now */
	if (ws_get(d->ws, d->obj.dep.model_version, &v) || ws_get(d->ws, v.parent, &m))
		return err_set(e, -ENOENT, "the model version to deploy was"
			       " removed meanwhile");
	snprintf(s->model, sizeof(s->model), "%s:%s", m.name, v.name);
	s->version_id = v.id;
	/* the environment's image as it is now: fixed for the generation */
	rc = env_run_image(d->ws, &d->obj, s->image, sizeof(s->image), e);
	if (rc)
		return rc;
	ws_obj_path(d->ws, v.id, RUN_FILES, s->model_dir);
	if (!s->port && d->serving.gen)
		s->port = d->serving.port;	/* same URI across updates */
	ws_obj_path(d->ws, d->obj.id, RUN_FILES, files);
	s->gen = gen_dir(d);
	gen_path(d, s->gen, "code", s->code);
	rc = env_from_settings(d, s->gen, e);
	if (rc)
		return rc;
	/* the snapshot is its creator's, made with their rights (copy.h) */
	return copy_tree_as(files, s->code, d->obj.uid, d->obj.gid, e);
}

/* A new generation for `restart`: the last one deployed, anew. */
static int gen_from_last(struct deploy_ctx *d, struct deploy_spec *s,
			 struct err *e)
{
	int last = d->serving.gen ? d->serving.gen :
		   d->obj.dep.last_gen;
	char old[PATH_MAX];

	if (!last || spec_read(d, last, s))
		return err_set(e, -ENOENT, "nothing deployed before to restart:"
			       " use deploy");
	snprintf(old, sizeof(old), "%s", s->code);
	s->gen = gen_dir(d);
	gen_path(d, s->gen, "code", s->code);
	if (env_from_gen(d, last, s->gen, e))
		return -EIO;
	return copy_tree_as(old, s->code, d->obj.uid, d->obj.gid, e);
}

int gen_make(struct deploy_ctx *d, int verb, struct deploy_spec *s,
	     struct err *e)
{
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", d->dir, DEP_GEN);
	mkdir(dir, 0711);
	rc = verb == V_DEPLOY ? gen_from_settings(d, s, e) :
	     gen_from_last(d, s, e);
	if (!rc && spec_write(d, s))
		rc = err_set(e, -EIO, "cannot record generation %d", s->gen);
	return rc;
}

void gen_gc(struct deploy_ctx *d)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int g, used;

	snprintf(path, sizeof(path), "%s/%s", d->dir, DEP_GEN);
	dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		g = atoi(de->d_name);
		if (g <= 0 || g == d->serving.gen || g == d->coming.gen ||
		    g == d->obj.dep.last_gen)
			continue;
		used = 0;
		for (struct replica *r = d->reps; r; r = r->next)
			used |= r->gen == g;
		if (!used) {
			gen_path(d, g, NULL, path);
			remove_tree(path);
		}
	}
	if (dir)
		closedir(dir);
}
