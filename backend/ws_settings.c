// SPDX-License-Identifier: MIT
/*
 * Setting files (command, env, config, type, …): user-editable texts kept
 * in the store, written like small files (partial writes, truncate,
 * rename-over) while the object's kind allows it, checked inside the
 * write (setting_valid), and the mode bits of every control file.  Runs
 * on FUSE request threads.
 */
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_i.h"
#include "driver.h"
#include "ws_i.h"

int ws_setting_writable(const struct obj *o, int file)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->setting_writable ? k->setting_writable(o, file) : -EROFS;
}

static int setting_check(struct ws *ws, int64_t id, int file, struct obj *o)
{
	const struct file_desc *fd;
	int rc;

	rc = store_get(ws->st, id, o);
	if (rc)
		return rc;
	fd = ws_file_by_id(o->kind, file);
	if (!fd || !(fd->flags & FD_SETTING))
		return -EACCES;
	return ws_setting_writable(o, file);
}

/* The one word of @buf, which must be a valid name when there is one. */
static int name_word(const char *buf, size_t len, char *out, size_t sz,
		     struct err *e)
{
	int rc = first_word(buf, len, out, sz, e);

	return rc || !out[0] ? rc : name_valid(out, e);
}

/* `model`: NAME:VERSION (which exists is known at deploy). */
static int model_valid(const char *buf, size_t len, struct err *e)
{
	char text[2 * MLFS_NAME_MAX + 8], *colon;
	struct err ne;
	int rc;

	rc = first_word(buf, len, text, sizeof(text), e);
	if (rc || !text[0])
		return rc;
	colon = strchr(text, ':');
	if (colon)
		*colon = '\0';
	if (!colon || name_valid(text, &ne) || name_valid(colon + 1, &ne))
		return err_set(e, -EINVAL, "it must be NAME:VERSION, e.g."
			       " iris:1");
	return 0;
}

static int command_valid(const char *buf, size_t len, struct err *e)
{
	if (memchr(buf, '\0', len))
		return err_set(e, -EINVAL, "it is not text (it holds a NUL"
			       " byte)");
	return 0;
}

/* `type`: one word, a driver's (or none yet). */
static int type_valid(const char *buf, size_t len, struct err *e)
{
	char type[32];
	int rc;

	rc = first_word(buf, len, type, sizeof(type), e);
	if (!rc && type[0] && !driver_find(type))
		rc = err_set(e, -EINVAL, "unknown type '%s' (known: %s)",
			     type, driver_types());
	return rc;
}

/* `config`: a target's lines (the keys its type takes are known at
 * provision), or a deployment's, every key and value. */
static int config_valid(const struct obj *o, const char *buf, size_t len,
			struct err *e)
{
	struct kv_list cfg = { 0 };
	int rc;

	if (o->kind == K_DEPLOYMENT)
		return deploy_config_check(buf, len, e);
	rc = ws_config_parse(buf, len, &cfg, e);
	kv_free(&cfg);
	return rc;
}

/*
 * Are the first @len bytes of setting @file of @o valid?  Each file on
 * its own: its syntax and values.  What depends on other files or objects
 * (the target exists and is provisioned, the keys a type takes, the model
 * version, an empty command) is known at use: submit, provision, deploy.
 * But `after` names runs: an unknown one or a cycle is refused at once,
 * where the mistake is made (and checked again at submit).
 */
static int setting_valid(struct ws *ws, const struct obj *o, int file,
			 const char *buf, size_t len, struct err *e)
{
	const struct kind_ops *k = ws_kind(o->kind);
	struct kv_list env = { 0 };
	struct resources res;
	char word[MLFS_NAME_MAX + 2];
	int rc = 0;

	if (k->setting_check) {
		rc = k->setting_check(ws, o, file, buf, len, e);
		if (rc != 1)
			return rc;
	}
	switch (file) {
	case F_COMMAND:
		return command_valid(buf, len, e);
	case F_TARGET:
		return name_word(buf, len, word, sizeof(word), e);
	case F_ENV:
		rc = o->kind == K_DEPLOYMENT ?
		     deploy_env_parse(buf, len, &env, e) :
		     env_parse(buf, len, &env, e);
		kv_free(&env);
		return rc;
	case F_RESOURCES:
		return resources_parse(buf, len, &res, e);
	case F_TYPE:
		return type_valid(buf, len, e);
	case F_CONFIG:
		return config_valid(o, buf, len, e);
	case F_MODEL:
		return model_valid(buf, len, e);
	case F_AFTER:
		return run_after_check(ws, o, buf, len, e);
	case F_INPUTS:
		return run_inputs_check(ws, o, buf, len, e);
	}
	return 0;
}

/* How much of a setting a write lets be checked: its complete lines up to
 * @end, where the write ended (a line without its newline may still be
 * growing: `printf 'cpus '; printf '= 2\n'`; the lines after @end, not
 * rewritten yet, are an editor's old bytes). */
static size_t complete_lines(const char *buf, size_t end)
{
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	return end;
}

static int setting_too_big(struct ws *ws, int64_t id)
{
	struct err e;

	err_set(&e, -EFBIG, "a setting file holds less than %d bytes",
		SETTING_MAX);
	ws_refuse(ws, id, -EFBIG, &e);
	return -EFBIG;
}

/* A refused write to a setting: say why in `error` (after the store's
 * transaction: ws_refuse_obj() writes the row itself); @why: the
 * sentence of an invalid value. */
static int setting_refused(struct ws *ws, const struct obj *o, int file,
			   int rc, const struct err *why)
{
	const struct file_desc *fd;
	struct err e;

	fd = ws_file_by_id(o->kind, file);
	if (!fd || (rc != -EROFS && rc != -ENOSPC && rc != -EINVAL) ||
	    (rc == -EINVAL && (!why || !why->msg[0])))
		return rc;
	if (rc == -EINVAL)
		err_set(&e, rc, "%s was not changed: %s", fd->name, why->msg);
	else if (rc == -ENOSPC)
		err_set(&e, rc, "%s was not changed: no space left on the file"
			" system of the state dir %s", fd->name, ws->dir);
	else
		err_set(&e, rc, "%s is read-only while %s '%s' is %s",
			fd->name, kind_name(o->kind), o->name,
			state_name(o->state));
	ws_refuse(ws, o->id, rc, &e);
	return rc;
}

static int setting_store(struct ws *ws, const struct obj *o, int file,
			 const char *buf, size_t len)
{
	int rc;

	/* a full disk's last room is the workspace's own (see space.c) */
	if (space_full(ws))
		return -ENOSPC;
	rc = store_text_put(ws->st, o->id, file, buf, len);

	if (!rc && file == F_CONFIG)
		ws_inval(ws, o->id, FBIT(F_INFO));
	return rc;
}

/* The kind applies what was written (after the commit: the text is the
 * store's whatever the proxy or worker then does). */
static void setting_changed(struct ws *ws, const struct obj *o, int file)
{
	const struct kind_ops *k = ws_kind(o->kind);

	if (k->setting_changed)
		k->setting_changed(ws, o, file);
}

int ws_setting_write(struct ws *ws, int64_t id, int file, const char *buf,
		     size_t len, off_t off)
{
	struct err e = { { 0 } };
	size_t cur_len, new_len;
	char *cur = NULL, *nb;
	struct obj o;
	int rc;

	/* a write reaching the limit is refused whole: the kernel cuts big
	 * writes into 1 MiB pieces, and a first piece accepted would
	 * replace the setting by the head of a refused write */
	if (off < 0 || (uint64_t)off + len >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = ws_read_text(ws, id, file, &cur, &cur_len);
	if (rc)
		goto out_rollback;
	new_len = (size_t)off + len > cur_len ? (size_t)off + len : cur_len;
	nb = realloc(cur, new_len + 1);
	if (!nb) {
		rc = -ENOMEM;
		goto out_rollback;
	}
	cur = nb;
	if ((size_t)off > cur_len)
		memset(cur + cur_len, 0, off - cur_len);
	memcpy(cur + off, buf, len);
	rc = setting_valid(ws, &o, file, cur, complete_lines(cur, off + len), &e);
	if (!rc)
		rc = setting_store(ws, &o, file, cur, new_len);
	if (rc)
		goto out_rollback;
	free(cur);
	rc = store_commit(ws->st);
	if (rc)
		return setting_refused(ws, &o, file, rc, &e);
	setting_changed(ws, &o, file);
	return 0;

out_rollback:
	free(cur);
	store_rollback(ws->st);
	return setting_refused(ws, &o, file, rc, &e);
}

int ws_setting_truncate(struct ws *ws, int64_t id, int file, off_t size)
{
	size_t cur_len;
	char *cur = NULL, *nb;
	struct obj o;
	int rc;

	if (size < 0 || size >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = ws_read_text(ws, id, file, &cur, &cur_len);
	if (rc)
		goto out_rollback;
	nb = realloc(cur, size + 1);
	if (!nb) {
		rc = -ENOMEM;
		goto out_rollback;
	}
	cur = nb;
	if ((size_t)size > cur_len)
		memset(cur + cur_len, 0, size - cur_len);
	rc = setting_store(ws, &o, file, cur, size);
	if (rc)
		goto out_rollback;
	free(cur);
	rc = store_commit(ws->st);
	return rc ? setting_refused(ws, &o, file, rc, NULL) : 0;

out_rollback:
	free(cur);
	store_rollback(ws->st);
	return setting_refused(ws, &o, file, rc, NULL);
}

void ws_setting_restore(struct ws *ws, int64_t id, int file,
			const char *buf, size_t len)
{
	struct obj o;
	int rc;

	if (len >= SETTING_MAX || store_begin(ws->st))
		return;
	rc = setting_check(ws, id, file, &o);
	if (!rc)
		rc = setting_store(ws, &o, file, buf, len);
	if (rc)
		store_rollback(ws->st);
	else if (!store_commit(ws->st))
		ws_inval(ws, id, FBIT(file));
}

int ws_setting_replace(struct ws *ws, int64_t id, int file, const char *buf,
		       size_t len)
{
	struct err e = { { 0 } };
	struct obj o;
	int rc;

	if (len >= SETTING_MAX)
		return setting_too_big(ws, id);
	rc = store_begin(ws->st);
	if (rc)
		return rc;
	rc = setting_check(ws, id, file, &o);
	/* the whole file, its last line too: nothing more comes */
	if (!rc)
		rc = setting_valid(ws, &o, file, buf, len, &e);
	if (!rc)
		rc = setting_store(ws, &o, file, buf, len);
	if (rc) {
		store_rollback(ws->st);
		return setting_refused(ws, &o, file, rc, &e);
	}
	rc = store_commit(ws->st);
	if (rc)
		return setting_refused(ws, &o, file, rc, &e);
	ws_inval(ws, id, FBIT(file));
	setting_changed(ws, &o, file);
	return 0;
}

unsigned ws_file_mode(struct ws *ws, const struct obj *o, int file)
{
	const struct file_desc *fd = ws_file_by_id(o->kind, file);
	size_t len;
	char *buf;
	int secret;

	if (!fd)
		return 0;
	if (fd->flags & FD_DIRECTORY)
		return 0755;
	if (fd->flags & FD_CTL)
		return 0644;
	if ((fd->flags & FD_SECRET) && !(fd->flags & FD_SETTING))
		return 0600;
	if (!(fd->flags & FD_SETTING))
		return 0444;
	/* a deployment's env holds secrets: its owner's alone */
	secret = !!(fd->flags & FD_SECRET);
	if (file == F_CONFIG && !ws_read_text(ws, o->id, file, &buf, &len)) {
		secret = strstr(buf, "token") != NULL;
		free(buf);
	}
	if (ws_setting_writable(o, file))
		return secret ? 0400 : 0444;
	return secret ? 0600 : 0644;
}
