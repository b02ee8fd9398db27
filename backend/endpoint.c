// SPDX-License-Identifier: MIT
/*
 * The endpoint kind: its control files and its table.  An endpoint puts
 * one stable URI and two keys in front of the deployments that joined it
 * (their `endpoint` file).  FUSE threads: mkdir makes the keys; `traffic`,
 * `mirror` and `config` are checked inside the write, and traffic, mirror
 * and a regenerated key are given to the running proxy there too (its
 * runtime API is a local unix socket answered between two requests,
 * endpoint_sm.c's ep_apply, bounded by EP_API_MS); start and stop are
 * carried out by the endpoints' worker (endpoint_sm.c).
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint_i.h"
#include "ws_i.h"

#define KEYS_DIR	"keys"

static const struct file_desc endpoint_files[] = {
	{ "scoring_uri", F_SCORING_URI,	FD_GEN },
	{ "keys",	F_KEYS,		FD_DIRECTORY | FD_SECRET, KEYS_DIR },
	{ "traffic",	F_TRAFFIC,	FD_SETTING },
	{ "mirror",	F_MIRROR,	FD_SETTING },
	{ "config",	F_CONFIG,	FD_SETTING },
	{ "ctl",	F_CTL,		FD_CTL },
	{ "status",	F_STATUS,	FD_GEN },
	{ "log",	F_LOG,		FD_DISK },
	{ "stats",	F_STATS,	FD_DISK },
	{ "error",	F_ERROR,	FD_GEN },
	{ "info.json",	F_INFO,		FD_GEN },
};

static const char *const key_names[2] = { "primary", "secondary" };

/* ---- keys ---------------------------------------------------------------- */

/* A new key: 32 random bytes in hex. */
static int key_new(char *hex, size_t sz)
{
	unsigned char raw[32];

	if (sz < 2 * sizeof(raw) + 1 ||
	    getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* keys/@name, the owner's copy: 0600, theirs, in the daemon's own
 * folder, by fd.  Rewritten in place, not renamed over: the kernel keeps
 * the name's inode, and the next read sees the new key. */
static int key_file(struct ws *ws, const struct obj *o, int which,
		    const char *key)
{
	char path[PATH_MAX], text[EP_KEY_MAX + 2];
	int dir, fd, rc = 0;
	size_t len;

	len = (size_t)snprintf(text, sizeof(text), "%s\n", key);
	ws_obj_path(ws, o->id, KEYS_DIR, path);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	dir = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	fd = openat(dir, key_names[which], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = openat(dir, key_names[which], O_WRONLY | O_CREAT |
			    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = -errno;
	if (!rc && geteuid() == 0 && fchown(fd, o->uid, o->gid))
		rc = -errno;
	if (!rc && (fchmod(fd, 0600) ||
		    pwrite(fd, text, len, 0) != (ssize_t)len ||
		    ftruncate(fd, (off_t)len)))
		rc = -EIO;
	if (fd >= 0 && close(fd) && !rc)
		rc = -EIO;
	close(dir);
	if (!rc && ws->hooks.inval_user)
		ws->hooks.inval_user(ws->hooks.ctx, o->id, F_KEYS,
				     key_names[which]);
	return rc;
}

/* Key @which of @o made anew: the store's text first (the source the
 * proxy is given), then the owner's file.  The old one into @old. */
static int key_make(struct ws *ws, const struct obj *o, int which,
		    char *old, struct err *e)
{
	char k[2][EP_KEY_MAX], hex[EP_KEY_MAX];
	int rc;

	ep_keys_get(ws, o->id, k);
	snprintf(old, EP_KEY_MAX, "%s", k[which]);
	rc = key_new(hex, sizeof(hex));
	if (!rc)
		rc = store_text_put(ws->st, o->id, which ? TEXT_EP_SECONDARY :
				    TEXT_EP_PRIMARY, hex, strlen(hex));
	if (!rc)
		rc = key_file(ws, o, which, hex);
	if (rc)
		return err_set(e, rc, "the %s key of endpoint '%s' was not"
			       " made: %s", key_names[which], o->name,
			       strerror(-rc));
	return 0;
}

/* mkdir: both keys at once. */
static int endpoint_made(struct ws *ws, const struct obj *o, struct err *e)
{
	char old[EP_KEY_MAX];
	int rc;

	rc = key_make(ws, o, 0, old, e);
	if (!rc)
		rc = key_make(ws, o, 1, old, e);
	return rc;
}

/* ---- ctl ---------------------------------------------------------------- */

static int live(const struct obj *o)
{
	return o->state == DS_HEALTHY || o->state == DS_UNHEALTHY ||
	       o->state == DS_TRANSITIONING;
}

/* Ask the worker for @want ("start", "stop"): Transitioning until it
 * is done.  Asking again what is under way changes nothing. */
static int endpoint_want(struct ws *ws, struct obj *o, const char *want)
{
	struct obj n;
	int rc;

	for (int i = 0; i < 5; i++) {
		n = *o;
		if (!strcmp(n.type, want) && (live(&n) == !strcmp(want,
								  "start")))
			return 0;
		snprintf(n.type, sizeof(n.type), "%s", want);
		if (!strcmp(want, "start") || live(&n))
			n.state = DS_TRANSITIONING;
		n.error[0] = '\0';
		rc = ws_update_obj(ws, &n, o->state, 0);
		if (rc != -EAGAIN) {
			if (!rc)
				*o = n;
			if (!rc)
				worker_kick(ws, o->id);
			return rc;
		}
		*o = n;
	}
	return -EAGAIN;
}

static int endpoint_regenerate(struct ws *ws, struct obj *o,
			       const struct ctl_cmd *c, struct err *e)
{
	char old[EP_KEY_MAX], k[2][EP_KEY_MAX], text[64];
	int which, rc;

	if (c->argc != 2 || (strcmp(c->argv[1], "primary") &&
			     strcmp(c->argv[1], "secondary")))
		return err_set(e, -EINVAL, "usage: regenerate primary|"
			       "secondary");
	which = !strcmp(c->argv[1], "secondary");
	rc = key_make(ws, o, which, old, e);
	if (rc)
		return rc;
	ep_keys_get(ws, o->id, k);
	/* the new key is accepted before the old one goes; the other key
	 * is valid throughout */
	if (ep_apply(ws, o, F_KEYS, k[which], old, e))
		ws_refuse_obj(ws, o, -EIO, e);
	snprintf(text, sizeof(text), "key %s regenerated", key_names[which]);
	ws_obj_event(ws, o, text);
	return 0;
}

static int endpoint_verb(struct ws *ws, struct obj *o,
			 const struct ctl_cmd *c, struct err *e)
{
	const char *v = c->argv[0];

	if (!strcmp(v, "regenerate"))
		return endpoint_regenerate(ws, o, c, e);
	if (strcmp(v, "start") && strcmp(v, "stop"))
		return err_set(e, -EINVAL, "unknown command '%s' (endpoints"
			       " take start, stop, regenerate primary|"
			       "secondary)", v);
	if (c->argc != 1)
		return err_set(e, -EINVAL, "usage: %s", v);
	return endpoint_want(ws, o, v);
}

static const char *endpoint_ctl_valid(const struct obj *o)
{
	if (live(o))
		return "stop\nregenerate primary\nregenerate secondary\n";
	return "start\nregenerate primary\nregenerate secondary\n";
}

/* ---- settings ------------------------------------------------------------ */

/* Each name of a `traffic` or `mirror` is a deployment (joined or not
 * yet: a split may be written before the green one joins). */
static int names_exist(struct ws *ws, const char *what, const char *name,
		       struct err *e)
{
	struct obj d;

	if (!name[0] || !ws_find(ws, K_DEPLOYMENT, 0, name, &d))
		return 0;
	return err_set(e, -EINVAL, "%s: there is no deployment '%s'", what,
		       name);
}

/* The weights of @t summed. */
static int traffic_sum(const struct ep_traffic *t)
{
	int sum = 0;

	for (int i = 0; i < t->n; i++)
		sum += t->w[i].weight;
	return sum;
}

/*
 * Inside a write, weights summing to less than 100 are let through: more
 * lines may follow (bash's printf writes a line at a time).  Such a text
 * is not given to the proxy, which keeps the last split that summed to
 * 100.  Over 100, a bad line or name: refused at once.
 */
static int traffic_check(struct ws *ws, const char *buf, size_t len,
			 struct err *e)
{
	struct ep_traffic t;
	int rc;

	rc = ep_traffic_parse(buf, len, &t, e);
	if (rc == -EINVAL && strstr(e->msg, "weights sum to") &&
	    traffic_sum(&t) < 100)
		rc = 0;
	for (int i = 0; !rc && i < t.n; i++)
		rc = names_exist(ws, "traffic", t.w[i].name, e);
	return rc;
}

static int mirror_check(struct ws *ws, const char *buf, size_t len,
			struct err *e)
{
	struct ep_mirror m;
	int rc;

	rc = ep_mirror_parse(buf, len, &m, e);
	return rc ? rc : names_exist(ws, "mirror", m.name, e);
}

static int endpoint_setting_check(struct ws *ws, const struct obj *o,
				  int file, const char *buf, size_t len,
				  struct err *e)
{
	struct ep_config c;

	(void)o;
	switch (file) {
	case F_TRAFFIC:
		return traffic_check(ws, buf, len, e);
	case F_MIRROR:
		return mirror_check(ws, buf, len, e);
	case F_CONFIG:
		return ep_config_parse(buf, len, &c, e);
	}
	return 1;
}

/* traffic and mirror reach the running proxy inside the write; config
 * at the worker's next look (a reload). */
static void endpoint_setting_changed(struct ws *ws, const struct obj *o,
				     int file)
{
	struct err e = { { 0 } };
	struct obj cur;

	if (file == F_CONFIG) {
		worker_kick(ws, o->id);
		return;
	}
	if (file != F_TRAFFIC && file != F_MIRROR)
		return;
	if (ep_apply(ws, o, file, NULL, NULL, &e) && !ws_get(ws, o->id, &cur))
		ws_refuse_obj(ws, &cur, -EIO, &e);
}

static int endpoint_setting_writable(const struct obj *o, int file)
{
	(void)o;
	(void)file;
	return 0;
}

/* ---- the rest of the table ----------------------------------------------- */

static void endpoint_readonly_why(const struct obj *o, struct err *e)
{
	err_set(e, -EROFS, "keys/ of endpoint '%s' is written by mlfs only"
		" (echo 'regenerate primary' > ctl makes a new key)",
		o->name);
}

static int endpoint_user_removable(const struct obj *o, int root)
{
	(void)o;
	(void)root;
	return 0;
}

static int64_t endpoint_worker(const struct obj *o)
{
	(void)o;
	return EP_WORKER_ID;
}

static int endpoint_render(const struct obj *o, int file, char **buf,
			   size_t *len)
{
	if (file != F_SCORING_URI)
		return -ENOENT;
	return ws_line_text(o->node, buf, len);
}

/* The deployments of the same owner that joined @o, as an array. */
struct join_ctx {
	struct ws *ws;
	const struct obj *ep;
	cJSON *arr;
};

static int join_cb(void *arg, const struct obj *d)
{
	struct join_ctx *c = arg;
	char name[MLFS_NAME_MAX + 2];

	ep_joined(c->ws, d->id, name, sizeof(name));
	if (!strcmp(name, c->ep->name) && d->uid == c->ep->uid)
		cJSON_AddItemToArray(c->arr, cJSON_CreateString(d->name));
	return 0;
}

static void endpoint_json(struct ws *ws, cJSON *j, const struct obj *o)
{
	struct join_ctx c = { ws, o, cJSON_CreateArray() };

	ws_json_str(j, "scoring_uri", o->node);
	ws_json_setting(ws, j, "traffic", o->id, F_TRAFFIC);
	ws_json_setting(ws, j, "mirror", o->id, F_MIRROR);
	ws_json_setting(ws, j, "config", o->id, F_CONFIG);
	if (c.arr) {
		ws_list(ws, K_DEPLOYMENT, 0, 0, join_cb, &c);
		cJSON_AddItemToObject(j, "deployments", c.arr);
	}
}

const struct kind_ops endpoint_kind = {
	.name			= "endpoint",
	.files			= endpoint_files,
	.nfiles			= sizeof(endpoint_files) /
				  sizeof(endpoint_files[0]),
	.initial_state		= DS_DRAFT,
	.mode			= 0755,
	.user_files		= 0,
	.files_shared		= 0,
	.child_kind		= K_NONE,
	.verb			= endpoint_verb,
	.ctl_valid		= endpoint_ctl_valid,
	.json			= endpoint_json,
	/* rmdir at any time: the housekeeping stops its proxy */
	.busy			= NULL,
	.may_remove		= NULL,
	.may_rename		= NULL,
	.setting_writable	= endpoint_setting_writable,
	/* keys/ is the daemon's to write */
	.files_writable		= NULL,
	.files_readonly_why	= endpoint_readonly_why,
	.settled		= NULL,
	.user_removable		= endpoint_user_removable,
	.unlink_ctl		= NULL,
	.worker_of		= endpoint_worker,
	.render			= endpoint_render,
	.made			= endpoint_made,
	.setting_check		= endpoint_setting_check,
	.setting_changed	= endpoint_setting_changed,
};

/* ---- deployments joining ------------------------------------------------- */

int ep_join_check(struct ws *ws, const struct obj *dep, const char *buf,
		  size_t len, struct err *e)
{
	char name[MLFS_NAME_MAX + 2];
	struct obj ep;
	int rc;

	rc = first_word(buf, len, name, sizeof(name), e);
	if (rc || !name[0] || !strcmp(name, "-"))
		return rc;
	rc = name_valid(name, e);
	if (rc)
		return rc;
	if (ws_find(ws, K_ENDPOINT, 0, name, &ep))
		return err_set(e, -EINVAL, "there is no endpoint '%s'", name);
	/* the proxy sends the deployment's own key: only its owner may put
	 * it behind an endpoint, and only one of theirs */
	if (ep.uid != dep->uid)
		return err_set(e, -EINVAL, "endpoint '%s' is another user's",
			       name);
	return 0;
}

/* ---- a deployment deleted ------------------------------------------------ */

/* @t in one line for `events`: "blue 70, red 30" ("" none). */
static void traffic_line(const struct ep_traffic *t, char *buf, size_t sz)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < t->n && off < sz; i++)
		off += (size_t)snprintf(buf + off, sz - off, "%s%s %d",
					i ? ", " : "", t->w[i].name,
					t->w[i].weight);
}

/* Replace @file of @o by @text in one transaction with the read that
 * made it (a user's write in between is not lost: it comes first or
 * after).  @edit makes the new text from the stored one: 1 changed. */
typedef int (*text_edit)(const char *cur, size_t len, const char *dep,
			 char **out, char *note, size_t sz);

static int setting_edit(struct ws *ws, const struct obj *o, int file,
			const char *dep, text_edit edit, char *note,
			size_t sz)
{
	char *cur = NULL, *out = NULL;
	size_t len = 0;
	int rc, changed = 0;

	rc = store_begin(ws->st);
	if (rc)
		return rc;
	if (ws_read_text(ws, o->id, file, &cur, &len))
		len = 0;
	changed = edit(cur ? cur : "", len, dep, &out, note, sz);
	if (changed > 0)
		rc = store_text_put(ws->st, o->id, file, out, strlen(out));
	free(cur);
	free(out);
	if (changed <= 0 || rc) {
		store_rollback(ws->st);
		return rc;
	}
	rc = store_commit(ws->st);
	if (!rc)
		ws_inval(ws, o->id, FBIT(file) | FBIT(F_INFO));
	return rc ? rc : 1;
}

static int traffic_without(const char *cur, size_t len, const char *dep,
			   char **out, char *note, size_t sz)
{
	struct ep_traffic t;
	struct err e;
	char line[512];

	/* a split still to be finished parses with its lines all there */
	if (ep_traffic_parse(cur, len, &t, &e) &&
	    !strstr(e.msg, "weights sum to"))
		return 0;
	if (!ep_traffic_drop(&t, dep) || ep_traffic_text(&t, out))
		return 0;
	traffic_line(&t, line, sizeof(line));
	if (t.n)
		snprintf(note, sz, "deployment '%s' deleted: out of traffic,"
			 " now %s", dep, line);
	else
		snprintf(note, sz, "deployment '%s' deleted: out of traffic,"
			 " which is empty now (no deployment with weight is"
			 " left: only pinned requests are routed)", dep);
	return 1;
}

static int mirror_without(const char *cur, size_t len, const char *dep,
			  char **out, char *note, size_t sz)
{
	struct ep_mirror m;
	struct err e;

	if (ep_mirror_parse(cur, len, &m, &e) || strcmp(m.name, dep))
		return 0;
	*out = strdup("");
	if (!*out)
		return 0;
	snprintf(note, sz, "deployment '%s' deleted: the mirror to it is"
		 " cleared", dep);
	return 1;
}

void ep_dep_deleted(struct ws *ws, const struct obj *dep)
{
	char name[MLFS_NAME_MAX + 2], note[1024];
	struct err e = { { 0 } };
	struct obj ep;

	ep_joined(ws, dep->id, name, sizeof(name));
	if (!name[0] || ws_find(ws, K_ENDPOINT, 0, name, &ep) ||
	    ep.uid != dep->uid)
		return;
	if (setting_edit(ws, &ep, F_TRAFFIC, dep->name, traffic_without,
			 note, sizeof(note)) > 0)
		ws_obj_event(ws, &ep, note);
	if (setting_edit(ws, &ep, F_MIRROR, dep->name, mirror_without, note,
			 sizeof(note)) > 0)
		ws_obj_event(ws, &ep, note);
	if (ep_leave(ws, &ep, dep->name, &e)) {
		char tmp[ERR_MSG_MAX];

		snprintf(tmp, sizeof(tmp), "%s", e.msg);
		err_set(&e, -EIO, "deployment '%s' was deleted, but the proxy"
			" did not take it out of its routing: %s", dep->name,
			tmp);
		ws_refuse_obj(ws, &ep, -EIO, &e);
	}
}
