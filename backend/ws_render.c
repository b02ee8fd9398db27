// SPDX-License-Identifier: MIT
/*
 * Generated files: status, error, exit_code, ctl (the commands valid now),
 * scoring_uri and info.json (the common keys here, the kind's own from its
 * kind_ops json hook), rendered from the row on each open.  Runs on FUSE
 * request threads.
 */
#include "ws.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_i.h"

static int dup_text(const char *s, char **buf, size_t *len)
{
	*len = strlen(s);
	*buf = strdup(s);
	return *buf ? 0 : -ENOMEM;
}

int ws_line_text(const char *s, char **buf, size_t *len)
{
	char tmp[ERR_MSG_MAX + 2];

	if (!s[0])
		return dup_text("", buf, len);
	snprintf(tmp, sizeof(tmp), "%s\n", s);
	return dup_text(tmp, buf, len);
}

/* The commands valid now on @o, for reading its ctl. */
static const char *ctl_valid(const struct obj *o)
{
	const struct kind_ops *k = ws_kind(o->kind);

	return k->ctl_valid ? k->ctl_valid(o) : "";
}

/* A string in info.json: always valid UTF-8 (see text_clean). */
void ws_json_str(cJSON *j, const char *key, const char *v)
{
	/* each byte may become 4 (\xNN); text_clean keeps 5 bytes spare */
	size_t n = strlen(v) * 4 + 8;
	char *clean = malloc(n);

	if (!clean)
		return;
	ws_text_clean(v, clean, n);
	cJSON_AddStringToObject(j, key, clean);
	free(clean);
}

void ws_json_time(cJSON *j, const char *key, double t)
{
	char ts[32];

	ws_iso_time(t, ts, sizeof(ts));
	if (ts[0])
		cJSON_AddStringToObject(j, key, ts);
	else
		cJSON_AddNullToObject(j, key);
}

/* Add setting @file as a string (trailing newline dropped). */
void ws_json_setting(struct ws *ws, cJSON *j, const char *key,
			 int64_t id, int file)
{
	size_t len;
	char *buf;

	if (ws_read_text(ws, id, file, &buf, &len))
		return;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	ws_json_str(j, key, buf);
	free(buf);
}

static void json_common(cJSON *j, const struct obj *o)
{
	cJSON_AddStringToObject(j, "name", o->name);
	cJSON_AddStringToObject(j, "kind", kind_name(o->kind));
	cJSON_AddStringToObject(j, "status", state_name(o->state));
	ws_json_str(j, "error", o->error);
	cJSON_AddNumberToObject(j, "uid", o->uid);
	cJSON_AddNumberToObject(j, "gid", o->gid);
	ws_json_time(j, "created", o->created);
	ws_json_time(j, "changed", o->changed);
}

static int render_info(struct ws *ws, const struct obj *o, char **buf,
		       size_t *len)
{
	const struct kind_ops *k = ws_kind(o->kind);
	cJSON *j = cJSON_CreateObject();
	char *s;

	if (!j)
		return -ENOMEM;
	json_common(j, o);
	if (k->json)
		k->json(ws, j, o);
	s = cJSON_Print(j);
	cJSON_Delete(j);
	if (!s)
		return -ENOMEM;
	*len = strlen(s) + 1;
	*buf = malloc(*len + 1);
	if (*buf) {
		memcpy(*buf, s, *len - 1);
		(*buf)[*len - 1] = '\n';
		(*buf)[*len] = '\0';
	}
	free(s);
	return *buf ? 0 : -ENOMEM;
}

int ws_render(struct ws *ws, const struct obj *o, int file, char **buf,
	      size_t *len)
{
	const struct kind_ops *k = ws_kind(o->kind);
	char tmp[32];
	int rc;

	if (k->render && (rc = k->render(o, file, buf, len)) != -ENOENT)
		return rc;
	switch (file) {
	case F_STATUS:
		return ws_line_text(state_name(o->state), buf, len);
	case F_ERROR:
		return ws_line_text(o->error, buf, len);
	case F_EXIT_CODE:
		if (o->exit_code < 0)
			return dup_text("", buf, len);
		snprintf(tmp, sizeof(tmp), "%d\n", o->exit_code);
		return dup_text(tmp, buf, len);
	case F_CTL:
		return dup_text(ctl_valid(o), buf, len);
	case F_INFO:
		return render_info(ws, o, buf, len);
	default:
		return ws_read_text(ws, o->id, file, buf, len);
	}
}
