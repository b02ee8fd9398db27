// SPDX-License-Identifier: MIT
/*
 * A run's `inputs` on an ssh host: each sent once into a cache on the
 * host, keyed by content, and named to the run by $MLFS_INPUT_<NAME>.
 * Backend worker thread only (reads, digests and copies take time).
 *
 * Each input is first copied here with the rights of the run's user
 * (copy_input_as: a root daemon never reads for a user what the user
 * could not), into the run's work/ (the daemon's alone until its outputs
 * are handed over); the copy's content digest (tree_digest: names, modes,
 * bytes) is its KEY.  On the host, CACHE/KEY is complete once it exists:
 * it is sent to CACHE/KEY.tmp.RND, made read-only there (chmod -R a-w)
 * and renamed into place, so that a run never sees half an input and two
 * runs sending the same one at once both end with one copy.  A later run
 * with the same content (any user's: the key is the content) sends
 * nothing.  CACHE is the config's input_cache, else WORKDIR/inputs.
 *
 * Read-only is the permission bits alone: the run's command runs as the
 * ssh login that owns the cache, and may chmod it back.  It protects the
 * cache from a run's mistakes, not from a run that means to change it.
 */
#include "ssh_inputs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "../lib/digest.h"
#include "../lib/log.h"
#include "ssh_common.h"
#include "ssh_quote.h"

#define STAGE_DIR	"in"		/* work/in: the copy being sent */

/* The cache folder on the host, as the config names it. */
static void cache_dir(struct target_ctx *t, char *out, size_t n)
{
	const char *v = kv_get(&t->config, "input_cache");
	const char *w = ssh_workdir(t);
	size_t l = strlen(w);

	if (v && *v) {
		snprintf(out, n, "%s", v);
		return;
	}
	while (l > 1 && w[l - 1] == '/')
		l--;
	snprintf(out, n, "%.*s/inputs", (int)l, w);
}

/* Ask the host whether CACHE/@key is there; its absolute folder into
 * @abs (PATH_MAX).  1: there, 0: not, or -errno with @why. */
static int cache_has(struct ssh_conn *c, const char *cache, const char *key,
		     char *abs, char *why, size_t n)
{
	char *q = sh_quote_path(cache), *script = NULL, *p;
	struct sx_result res;
	int rc;

	if (q && asprintf(&script, "mkdir -p -- %s && cd -- %s || exit 1\n"
			  "echo \"dir $(pwd -P)\"\n"
			  "if [ -d %s ]; then echo have; fi\n", q, q, key) < 0)
		script = NULL;
	free(q);
	rc = ssh_remote(c, script, SSH_OUT_MAX, &res, why, n);
	if (rc)
		return rc;
	p = res.out ? strstr(res.out, "dir /") : NULL;
	if (!p || sscanf(p + 4, "%4095[^\n]", abs) != 1) {
		snprintf(why, n, "the host did not say where %s is", cache);
		rc = -EIO;
	} else {
		rc = strstr(p, "\nhave") ? 1 : 0;
	}
	sx_result_free(&res);
	return rc;
}

/* CACHE/@tmp, sent complete: read-only, then CACHE/@key.  When another
 * run put @key there meanwhile, @tmp goes and theirs stands. */
static int cache_commit(struct ssh_conn *c, const char *cache,
			const char *tmp, const char *key, char *why, size_t n)
{
	char *q = sh_quote_path(cache), *script = NULL;
	struct sx_result res;
	int rc;

	if (q && asprintf(&script, "cd -- %s || exit 1\n"
			  "chmod -R a-w -- %s || exit 1\n"
			  "mv -T -- %s %s 2>/dev/null && exit 0\n"
			  "chmod -R u+w -- %s; rm -rf -- %s\n"
			  "[ -d %s ] || { echo 'cannot put the input in"
			  " place' >&2; exit 1; }\n",
			  q, tmp, tmp, key, tmp, tmp, key) < 0)
		script = NULL;
	free(q);
	rc = ssh_remote(c, script, SSH_OUT_MAX, &res, why, n);
	if (!rc)
		sx_result_free(&res);
	return rc;
}

/* Make sure CACHE/@key on the host holds the copy @stage.  Its absolute
 * path into @abs.  0 or -errno with @why. */
static int cache_put(struct target_ctx *t, struct ssh_conn *c,
		     const char *stage, const char *key, const char *name,
		     char *abs, char *why, size_t n)
{
	char cache[PATH_MAX], tmp[128];
	int rc;

	cache_dir(t, cache, sizeof(cache));
	rc = cache_has(c, cache, key, abs, why, n);
	if (rc)
		return rc < 0 ? rc : 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%08x", key, ssh_rnd32());
	rc = ssh_copy_in(t, c, cache, tmp, 1, stage, "", why, n);
	if (!rc)
		rc = cache_commit(c, cache, tmp, key, why, n);
	if (!rc)
		log_info("target %s: input %s sent to %s/%s", t->obj.name,
			 name, cache, key);
	return rc;
}

/* A root daemon copies as the run's user (as ssh_stage does). */
static void stage_ids(const struct run_ctx *r, uid_t *uid, gid_t *gid)
{
	*uid = geteuid() != 0 || r->obj.uid == 0 ? (uid_t)-1 : r->obj.uid;
	*gid = r->obj.gid;
}

/* work/, where inputs are staged, is the daemon's alone (a root daemon's
 * copy as the user is made in it: no one else may reach it). */
static int work_private(const struct run_ctx *r, char *why, size_t n)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	if (!lstat(path, &st) && S_ISDIR(st.st_mode) &&
	    st.st_uid == geteuid() && !(st.st_mode & 077))
		return 0;
	snprintf(why, n, "%s is not the daemon's alone", path);
	return -EPERM;
}

/* Input @i of @r: staged, sent if the host lacks it, its path on the
 * host into @where (PATH_MAX).  0, 1 (the run fails: @why) or -errno. */
static int send_one(struct target_ctx *t, struct ssh_conn *c,
		    struct run_ctx *r, int i, char *where, char *why,
		    size_t n)
{
	const struct run_input *in = &r->inputs[i];
	char stage[PATH_MAX], key[65], abs[PATH_MAX];
	const char *base = strrchr(in->path, '/');
	struct err e;
	uid_t uid;
	gid_t gid;
	int file, rc;

	rc = work_private(r, why, n);
	if (rc)
		return rc;
	stage_ids(r, &uid, &gid);
	snprintf(stage, sizeof(stage), "%s/%s/%s", r->dir, RUN_WORK,
		 STAGE_DIR);
	file = copy_input_as(in->path, stage, uid, gid, &e);
	rc = file < 0 ? file : tree_digest(stage, key, &e);
	if (rc) {
		remove_tree(stage);
		snprintf(why, n, "input '%s': %s", in->name, e.msg);
		return 1;
	}
	rc = cache_put(t, c, stage, key, in->name, abs, why, n);
	remove_tree(stage);
	if (rc)
		return rc;
	if (snprintf(where, PATH_MAX, "%s/%s%s%s", abs, key, file ? "/" : "",
		     file ? base + 1 : "") >= PATH_MAX) {
		snprintf(why, n, "input '%s': the path on the host is too"
			 " long", in->name);
		return 1;
	}
	return 0;
}

int ssh_inputs_send(struct target_ctx *t, struct ssh_conn *c,
		    struct run_ctx *r, char ***env, char *why, size_t n)
{
	char where[PATH_MAX], **v;
	int rc = 0, k = 0;

	*env = v = calloc(2 * r->ninputs + 1, sizeof(*v));
	if (!v) {
		snprintf(why, n, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < r->ninputs && !rc; i++) {
		rc = send_one(t, c, r, i, where, why, n);
		if (rc)
			return rc;
		if (asprintf(&v[k], "MLFS_INPUT_%s", r->inputs[i].name) < 0)
			v[k] = NULL;
		else
			v[k + 1] = strdup(where);
		if (!v[k] || !v[k + 1]) {
			snprintf(why, n, "out of memory");
			rc = -ENOMEM;
		}
		k += 2;
	}
	return rc;
}

void ssh_inputs_free(char **env)
{
	for (int i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}
