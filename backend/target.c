// SPDX-License-Identifier: MIT
/*
 * The target kind: its control files, `provision`, `deprovision` and
 * `resize` (checked and recorded inside the ctl write, on the FUSE request
 * thread; the driver's slow work is the worker's), its info.json, and the
 * nodes list the worker reports (ws_target_set_nodes: worker threads).
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy_i.h"
#include "userfile.h"
#include "ws_i.h"

static const struct file_desc target_files[] = {
	{ "type",	F_TYPE,		FD_SETTING },
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "error",	F_ERROR,	FD_GEN },
	{ "nodes",	F_NODES,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

#define TARGET_SETTINGS (FBIT(F_TYPE) | FBIT(F_CONFIG))

/* Keys whose values are secrets and never shown. */
static int secret_key(const char *k)
{
	return strstr(k, "token") || strstr(k, "password") ||
	       strstr(k, "secret") || !strcmp(k, "key");
}

static void json_config(struct ws *ws, cJSON *j, int64_t id)
{
	struct kv_list cfg = { 0 };
	struct err e;
	cJSON *c;

	if (ws_load_config(ws, id, &cfg, &e))
		return;
	c = cJSON_AddObjectToObject(j, "config");
	for (int i = 0; i < cfg.n; i++)
		ws_json_str(c, cfg.items[i].key, secret_key(cfg.items[i].key) ?
			 "(hidden)" : cfg.items[i].value);
	kv_free(&cfg);
}

static void json_nodes(struct ws *ws, cJSON *j, int64_t id)
{
	char *buf, *line, *save = NULL;
	cJSON *arr, *n;
	char name[128], state[64], mem[64];
	long cpus, gpus;
	size_t len;

	arr = cJSON_AddArrayToObject(j, "nodes");
	if (ws_read_text(ws, id, F_NODES, &buf, &len))
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%127s %63s %ld %63s %ld", name, state, &cpus,
			   mem, &gpus) != 5)
			continue;
		n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "name", name);
		cJSON_AddStringToObject(n, "state", state);
		cJSON_AddNumberToObject(n, "cpus", cpus);
		cJSON_AddStringToObject(n, "memory", mem);
		cJSON_AddNumberToObject(n, "gpus", gpus);
		cJSON_AddItemToArray(arr, n);
	}
	free(buf);
}

/* Config keys that name a file the driver reads (any type). */
static const char *const file_keys[] = { "token_file", "identity_file" };

/*
 * Each file a target's config names must be readable by the target's
 * owner, checked inside the write with the owner's rights (only opened:
 * the driver reads it on the worker, with the same rights).
 */
static int file_keys_check(const struct obj *o, const struct kv_list *cfg,
			   struct err *e)
{
	const char *v;
	int fd;

	for (size_t i = 0; i < sizeof(file_keys) / sizeof(file_keys[0]); i++) {
		v = kv_get(cfg, file_keys[i]);
		if (!v || !*v)
			continue;
		fd = userfile_open(o->uid, o->gid, file_keys[i], v, e);
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}

/* ---- ctl: targets ------------------------------------------------------- */

/* A key on several lines, unless the driver takes it so. */
static int config_repeats(const struct kv_list *cfg, const struct driver *d,
			  struct err *e)
{
	const char *const *m;

	for (int i = 0; i < cfg->n; i++) {
		const char *k = cfg->items[i].key;

		for (m = d->multi_keys; m && *m && strcmp(*m, k); m++)
			;
		if ((!m || !*m) && kv_count(cfg, k) > 1)
			return err_set(e, -EINVAL, "config gives '%s' on %d"
				       " lines: a target of type %s takes"
				       " one", k, kv_count(cfg, k), d->type);
	}
	return 0;
}

static int target_config(struct ws *ws, const struct obj *o,
			 const struct driver *d, struct kv_list *cfg,
			 struct err *e)
{
	int rc;

	rc = ws_load_config(ws, o->id, cfg, e);
	if (rc)
		return rc;	/* the sentence names config */
	rc = kv_check_keys(cfg, d->config_keys, d->type, e);
	if (!rc)
		rc = config_repeats(cfg, d, e);
	if (!rc && d->validate)
		rc = d->validate(cfg, e);
	if (!rc)
		rc = file_keys_check(o, cfg, e);
	if (rc)
		kv_free(cfg);
	return rc;
}

static int applied_config_save(struct ws *ws, int64_t id)
{
	size_t len;
	char *buf;
	int rc;

	rc = ws_read_text(ws, id, F_CONFIG, &buf, &len);
	if (!rc)
		rc = store_text_put(ws->st, id, TEXT_APPLIED_CONFIG, buf, len);
	free(buf);
	return rc;
}

static int is_live_key(const struct driver *d, const char *k)
{
	for (int i = 0; d->live_keys && d->live_keys[i]; i++)
		if (!strcmp(d->live_keys[i], k))
			return 1;
	return 0;
}

/* Does @k have the same values, line by line, in @a and @b? */
static int same_values(const struct kv_list *a, const struct kv_list *b,
		       const char *k)
{
	int i = 0, j = 0;

	for (;; i++, j++) {
		while (i < a->n && strcmp(a->items[i].key, k))
			i++;
		while (j < b->n && strcmp(b->items[j].key, k))
			j++;
		if (i == a->n || j == b->n)
			return i == a->n && j == b->n;
		if (strcmp(a->items[i].value, b->items[j].value))
			return 0;
	}
}

/* Count the keys whose values differ between @a and @b; refuse non-live. */
static int config_diff(const struct driver *d, const struct kv_list *a,
		       const struct kv_list *b, struct err *e)
{
	const struct kv_list *l[2] = { a, b };
	int changed = 0;

	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < l[s]->n; i++) {
			const char *k = l[s]->items[i].key;

			if (same_values(a, b, k))
				continue;
			if (!is_live_key(d, k))
				return err_set(e, -EBUSY, "config key '%s' cannot"
					       " change while the target is"
					       " Succeeded: deprovision first",
					       k);
			changed++;
		}
	}
	return changed;
}

/* `provision` on a Succeeded target: apply changed live config keys
 * (@files: which of its files changed too, for the kernel's cache). */
static int target_update(struct ws *ws, struct obj *o, unsigned files,
			 struct err *e)
{
	struct kv_list cfg = { 0 }, old = { 0 };
	const struct driver *d = driver_find(o->type);
	size_t len;
	char *buf;
	int rc;

	if (!d)
		return err_set(e, -EIO, "unknown type '%s'", o->type);
	rc = target_config(ws, o, d, &cfg, e);
	if (rc)
		return rc;
	rc = ws_read_text(ws, o->id, TEXT_APPLIED_CONFIG, &buf, &len);
	if (!rc) {
		rc = ws_config_parse(buf, len, &old, e);
		free(buf);
	}
	if (!rc)
		rc = config_diff(d, &old, &cfg, e);
	kv_free(&cfg);
	kv_free(&old);
	if (rc <= 0)
		return rc;
	o->state = TS_UPDATING;
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, TS_SUCCEEDED, files);
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       state_name(o->state));
	applied_config_save(ws, o->id);
	worker_kick(ws, o->id);
	return 0;
}

static int target_provision(struct ws *ws, struct obj *o, struct err *e)
{
	char type[32];
	enum obj_state expect = o->state;
	struct kv_list cfg = { 0 };
	const struct driver *d;
	int rc;

	if (o->state == TS_SUCCEEDED)
		return target_update(ws, o, 0, e);
	if (o->state != TS_DRAFT && o->state != TS_FAILED)
		return err_set(e, -EBUSY, "target '%s' is %s", o->name,
			       state_name(o->state));
	rc = ws_read_word(ws, o->id, F_TYPE, "type", type, sizeof(type), e);
	if (rc)
		return rc;
	if (!type[0])
		return err_set(e, -EINVAL, "type is empty: write one of %s to"
			       " targets/%s/type", driver_types(), o->name);
	d = driver_find(type);
	if (!d)
		return err_set(e, -EINVAL, "unknown type '%s' (known: %s)",
			       type, driver_types());
	rc = target_config(ws, o, d, &cfg, e);
	kv_free(&cfg);
	if (rc)
		return rc;
	o->state = TS_CREATING;
	snprintf(o->type, sizeof(o->type), "%s", type);
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, expect, TARGET_SETTINGS | FBIT(F_NODES));
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       state_name(o->state));
	applied_config_save(ws, o->id);
	worker_kick(ws, o->id);
	return 0;
}

static int target_deprovision(struct ws *ws, struct obj *o, struct err *e)
{
	enum obj_state expect = o->state;
	int n, rc;

	if (o->state != TS_SUCCEEDED && o->state != TS_FAILED)
		return err_set(e, -EBUSY, "target '%s' is %s: nothing to"
			       " deprovision", o->name, state_name(o->state));
	n = store_count_active_runs(ws->st, o->id);
	if (n > 0)
		return err_set(e, -EBUSY, "target '%s' has %d active run%s",
			       o->name, n, n == 1 ? "" : "s");
	rc = deployments_busy(ws, o, e);
	if (rc)
		return rc;
	o->state = TS_DELETING;
	o->error[0] = '\0';
	rc = ws_update_obj(ws, o, expect, 0);
	if (rc)
		return err_set(e, -EBUSY, "target '%s' is %s now", o->name,
			       state_name(o->state));
	worker_kick(ws, o->id);
	return 0;
}

/* @text with the line of @key set to @val (appended when missing).
 * malloc'd, NULL when out of memory. */
static char *config_set(const char *text, const char *key, long val)
{
	size_t kl = strlen(key), len = 0;
	const char *p, *eol, *k;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);
	int done = 0;

	if (!f)
		return NULL;
	for (p = text; *p; p = *eol ? eol + 1 : eol) {
		eol = p + strcspn(p, "\n");
		k = p + strspn(p, " \t");
		if (!done && !strncmp(k, key, kl) &&
		    strspn(k + kl, " \t") + k + kl < eol &&
		    k[kl + strspn(k + kl, " \t")] == '=') {
			fprintf(f, "%s = %ld\n", key, val);
			done = 1;
			continue;
		}
		fprintf(f, "%.*s\n", (int)(eol - p), p);
	}
	if (!done)
		fprintf(f, "%s = %ld\n", key, val);
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* Check @text as the config of @o's type. */
static int config_check(const struct driver *d, const char *text,
			struct err *e)
{
	struct kv_list cfg = { 0 };
	int rc;

	rc = ws_config_parse(text, strlen(text), &cfg, e);
	if (!rc)
		rc = kv_check_keys(&cfg, d->config_keys, d->type, e);
	if (!rc)
		rc = config_repeats(&cfg, d, e);
	if (!rc && d->validate)
		rc = d->validate(&cfg, e);
	kv_free(&cfg);
	return rc;
}

/*
 * `resize MIN MAX`: min_nodes and max_nodes are set in `config` (so that
 * it says what the target has), and a provisioned target applies them
 * live (Updating → Succeeded, on the worker); a Draft one only records
 * them.
 */
static int target_resize(struct ws *ws, struct obj *o, long lo, long hi,
			 struct err *e)
{
	const struct driver *d = driver_find(o->type);
	char *text = NULL, *a = NULL, *b = NULL;
	size_t len;
	int rc;

	if (!d || !d->update)
		return err_set(e, -ENOTSUP, "target type %s cannot resize",
			       o->type[0] ? o->type : "(none yet)");
	if (o->state != TS_SUCCEEDED && o->state != TS_DRAFT &&
	    o->state != TS_FAILED)
		return err_set(e, -EBUSY, "target '%s' is %s", o->name,
			       state_name(o->state));
	rc = ws_read_text(ws, o->id, F_CONFIG, &text, &len);
	if (rc)
		return err_set(e, rc, "cannot read config: %s", strerror(-rc));
	a = config_set(text, "min_nodes", lo);
	b = a ? config_set(a, "max_nodes", hi) : NULL;
	rc = b ? config_check(d, b, e) : err_set(e, -ENOMEM, "out of memory");
	if (!rc)
		rc = store_text_put(ws->st, o->id, F_CONFIG, b, strlen(b));
	free(text);
	free(a);
	free(b);
	if (rc)
		return rc;
	if (o->state != TS_SUCCEEDED) {
		o->error[0] = '\0';
		return ws_update_obj(ws, o, o->state, FBIT(F_CONFIG));
	}
	rc = target_update(ws, o, FBIT(F_CONFIG), e);
	return rc < 0 ? rc : 0;
}

static int target_verb(struct ws *ws, struct obj *o, const struct ctl_cmd *c,
		       struct err *e)
{
	long lo, hi;
	int rc;

	if (!strcmp(c->argv[0], "provision") && c->argc == 1)
		return target_provision(ws, o, e);
	if (!strcmp(c->argv[0], "deprovision") && c->argc == 1)
		return target_deprovision(ws, o, e);
	if (!strcmp(c->argv[0], "resize")) {
		if (c->argc != 3)
			return err_set(e, -EINVAL, "usage: resize MIN MAX");
		rc = parse_int(c->argv[1], 0, 100000, &lo, "MIN", e);
		if (!rc)
			rc = parse_int(c->argv[2], 1, 100000, &hi, "MAX", e);
		if (!rc && lo > hi)
			rc = err_set(e, -EINVAL, "MIN %ld is larger than MAX"
				     " %ld", lo, hi);
		if (rc)
			return rc;
		return target_resize(ws, o, lo, hi, e);
	}
	if (!strcmp(c->argv[0], "provision") ||
	    !strcmp(c->argv[0], "deprovision"))
		return err_set(e, -EINVAL, "'%s' takes no arguments",
			       c->argv[0]);
	return err_set(e, -EINVAL, "unknown command '%s' for a target"
		       " (commands: provision, deprovision, resize MIN MAX)",
		       c->argv[0]);
}

int ws_target_set_nodes(struct ws *ws, struct target_ctx *t, const char *nodes)
{
	size_t len;
	char *cur;
	int rc, same;

	rc = ws_read_text(ws, t->obj.id, F_NODES, &cur, &len);
	if (rc)
		return rc;
	same = !strcmp(cur, nodes);
	free(cur);
	if (same)
		return 0;
	ws_change_begin(ws, t->obj.id);
	rc = store_text_put(ws->st, t->obj.id, F_NODES, nodes, strlen(nodes));
	if (!rc)
		ws_inval(ws, t->obj.id, FBIT(F_NODES) | FBIT(F_INFO));
	return rc;
}


/* At ws_open: the built-in `local` target, made on first use. */
int target_ensure_local(struct ws *ws, struct err *e)
{
	char cfg[256];
	struct obj o;
	int rc;

	if (!store_find(ws->st, K_TARGET, 0, "local", &o))
		return 0;
	rc = ws_create(ws, K_TARGET, 0, "local", getuid(), getgid(), &o, e);
	if (rc)
		return rc;
	snprintf(cfg, sizeof(cfg),
		 "# The built-in local target: runs are processes on this"
		 " machine.\n# max_concurrent = %d\n"
		 "# cancel_grace_seconds = 10\n", ws->ncpu);
	store_text_put(ws->st, o.id, F_TYPE, "local\n", 6);
	store_text_put(ws->st, o.id, F_CONFIG, cfg, strlen(cfg));
	store_text_put(ws->st, o.id, TEXT_APPLIED_CONFIG, cfg, strlen(cfg));
	o.state = TS_SUCCEEDED;
	snprintf(o.type, sizeof(o.type), "local");
	/* the local machine is everyone's: runs there run as their owner */
	if (store_set_owner(ws->st, o.id, o.uid, o.gid, 0755))
		return err_set(e, -EIO, "cannot record the local target");
	return store_update(ws->st, &o) ?
	       err_set(e, -EIO, "cannot record the local target") : 0;
}

/* ---- the target kind ----------------------------------------------------- */

static const char *target_ctl_valid(const struct obj *o)
{
	const struct driver *d;

	if (o->state == TS_DRAFT || o->state == TS_FAILED)
		return "provision\n";
	if (o->state != TS_SUCCEEDED)
		return "";
	d = driver_find(o->type);
	if (d && d->update)
		return "provision\ndeprovision\nresize MIN MAX\n";
	return d && d->live_keys && d->live_keys[0] ?
	       "provision\ndeprovision\n" : "deprovision\n";
}

static void target_json(struct ws *ws, cJSON *j, const struct obj *o)
{
	ws_json_setting(ws, j, "type", o->id, F_TYPE);
	json_config(ws, j, o->id);
	json_nodes(ws, j, o->id);
}

static int target_busy(struct ws *ws, const struct obj *o, struct err *e)
{
	int n;

	if (!strcmp(o->name, "local"))
		return err_set(e, -EPERM, "the local target is built in"
			       " and cannot be removed");
	if (o->state == TS_CREATING ||
	    o->state == TS_UPDATING ||
	    o->state == TS_DELETING)
		return err_set(e, -EBUSY, "target '%s' is %s", o->name,
			       state_name(o->state));
	n = store_count_active_runs(ws->st, o->id);
	if (n > 0)
		return err_set(e, -EBUSY, "target '%s' has %d active"
			       " run%s", o->name, n, n == 1 ? "" : "s");
	return deployments_busy(ws, o, e);
}

static int target_may_rename(const struct obj *o, struct err *e)
{
	/* (busy refused Deleting already) */
	if (o->state != TS_DRAFT)
		return err_set(e, -EBUSY, "target '%s' is %s: only a Draft"
			       " target can be renamed", o->name,
			       state_name(o->state));
	return 0;
}

static int target_setting_writable(const struct obj *o, int file)
{
	if (o->state == TS_DRAFT || o->state == TS_FAILED)
		return 0;
	/* live keys: applied by `provision` on a Succeeded target */
	if (file == F_CONFIG && o->state == TS_SUCCEEDED)
		return 0;
	return -EROFS;
}

static int64_t target_worker(const struct obj *o)
{
	return o->id;
}

const struct kind_ops target_kind = {
	.name			= "target",
	.files			= target_files,
	.nfiles			= sizeof(target_files) /
				  sizeof(target_files[0]),
	.initial_state		= TS_DRAFT,
	/* whatever the umask: a target runs on its creator's credentials
	 * (ssh key, Slurm token), so it is theirs until they share it */
	.mode			= 0700,
	.user_files		= 0,
	.files_shared		= 0,
	.child_kind		= K_NONE,
	.verb			= target_verb,
	.ctl_valid		= target_ctl_valid,
	.json			= target_json,
	.busy			= target_busy,
	.may_remove		= NULL,
	.may_rename		= target_may_rename,
	.setting_writable	= target_setting_writable,
	.files_writable		= NULL,
	.files_readonly_why	= NULL,
	.settled		= NULL,
	.user_removable		= NULL,
	.unlink_ctl		= ws_ebusy,
	.worker_of		= target_worker,
	.render			= NULL,
};

int ws_target_note(struct ws *ws, struct target_ctx *t, const char *error)
{
	struct obj o;
	int rc;

	if (ws_get(ws, t->obj.id, &o))
		return -ENOENT;
	if (!strcmp(o.error, error ? error : ""))
		return 0;
	snprintf(o.error, sizeof(o.error), "%s", error ? error : "");
	rc = ws_update_obj(ws, &o, o.state, FBIT(F_ERROR));
	if (!rc)
		t->obj = o;
	return rc;
}
