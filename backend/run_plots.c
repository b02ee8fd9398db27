// SPDX-License-Identifier: MIT
/*
 * A run's params and pictures, kept on disk by its target's worker:
 * `params` (from $MLFS_PARAMS and the text values of $MLFS_METRICS; a
 * param is set once, a later value replaces it), `metrics.svg` and the
 * summary runs/index.html reads (lib/plot.c draws both), and the one
 * sentence in `error` that names a malformed line.  Worker threads only;
 * the files are the daemon's, in the run's folder, replaced by rename so
 * that a reader keeps the bytes it opened.
 */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/plot.h"
#include "../lib/vec.h"
#include "ws_i.h"

#define PARAMS_MAX	1000		/* names a run may set */
#define RAW_MAX		(1 << 24)	/* bytes read of a raw file at once */
#define PLOT_BIG	(1 << 20)	/* metrics this big: redraw at most */
#define PLOT_BIG_S	5.0		/* every PLOT_BIG_S seconds */

struct param {
	char name[METRIC_NAME_BUF];
	char *value;
};

typedef VEC(struct param) param_vec;

/* ---- the error sentence ------------------------------------------------- */

/* Name the first malformed line of a run in its `error`, once: a run
 * that writes a million bad lines gets one sentence, not a million. */
void run_bad_line(struct ws *ws, struct run_ctx *r, const char *var,
		  const char *line, const char *want)
{
	char clean[256], msg[ERR_MSG_MAX];

	if (r->bad_line || r->obj.error[0])
		return;
	r->bad_line = 1;
	snprintf(msg, sizeof(msg), "%.60s", line);
	ws_text_clean(msg, clean, sizeof(clean));
	snprintf(msg, sizeof(msg), "$%s line '%s' is malformed (lines are"
		 " %s): it and any later malformed lines were skipped", var,
		 clean, want);
	ws_run_note(ws, r, msg);
}

/* ---- params ------------------------------------------------------------- */

static void params_free(param_vec *pv)
{
	for (size_t i = 0; i < pv->n; i++)
		free(pv->v[i].value);
	vec_free(pv);
}

/* Set @name to @len bytes at @value.  1 changed, 0 same, -E2BIG full,
 * -ENOMEM. */
static int params_set(param_vec *pv, const char *name, const char *value,
		      size_t len)
{
	struct param p = { { 0 } };
	char *v = strndup(value, len);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < pv->n; i++) {
		if (strcmp(pv->v[i].name, name))
			continue;
		if (!strcmp(pv->v[i].value, v)) {
			free(v);
			return 0;
		}
		free(pv->v[i].value);
		pv->v[i].value = v;
		return 1;
	}
	if (pv->n >= PARAMS_MAX) {
		free(v);
		return -E2BIG;
	}
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.value = v;
	if (vec_push(pv, p)) {
		free(v);
		return -ENOMEM;
	}
	return 1;
}

/* The params file as it is (our own writing: no line is malformed). */
static void params_load(const char *path, param_vec *pv)
{
	char line[PARAM_VALUE_MAX + METRIC_NAME_BUF + 4], name[METRIC_NAME_BUF];
	const char *v;
	size_t vl;
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!param_parse_line(line, name, sizeof(name), &v, &vl))
			params_set(pv, name, v, vl);
	}
	if (f)
		fclose(f);
}

static int params_save(const char *path, const param_vec *pv)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int bad;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (size_t i = 0; i < pv->n; i++)
		fprintf(f, "%s %s\n", pv->v[i].name, pv->v[i].value);
	bad = ferror(f);
	if (fclose(f) || bad || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* One raw param line into @pv; a malformed one named (once) in error. */
static int param_line(struct ws *ws, struct run_ctx *r, param_vec *pv,
		      const char *line, const char *var)
{
	char name[METRIC_NAME_BUF];
	const char *v;
	size_t vl;
	int rc;

	if (!line[0])
		return 0;
	if (param_parse_line(line, name, sizeof(name), &v, &vl)) {
		run_bad_line(ws, r, var, line, "`name value`");
		return 0;
	}
	rc = params_set(pv, name, v, vl);
	if (rc == -E2BIG)
		run_bad_line(ws, r, var, line, "at most 1000 names");
	return rc > 0;
}

int run_params_merge(struct ws *ws, struct run_ctx *r, char *buf,
		     size_t len, const char *var)
{
	char path[PATH_MAX], *p, *nl, *end = buf + len;
	param_vec pv = { 0 };
	int changed = 0;

	ws_obj_path(ws, r->obj.id, RUN_PARAMS, path);
	params_load(path, &pv);
	for (p = buf; p < end && (nl = memchr(p, '\n', end - p)); p = nl + 1) {
		*nl = '\0';
		changed |= param_line(ws, r, &pv, p, var);
	}
	if (changed && params_save(path, &pv))
		log_warn("run %s: cannot write its params", r->obj.name);
	else if (changed && ws->hooks.inval_grow)
		ws->hooks.inval_grow(ws->hooks.ctx, r->obj.id, F_PARAMS, 0);
	params_free(&pv);
	return 0;
}

/* New complete lines of params.raw.  Applying a line twice changes
 * nothing, so after a restart the file is read again from the start. */
void run_params_pump(struct ws *ws, struct run_ctx *r)
{
	char raw[PATH_MAX], *buf, *last;
	struct stat st;
	ssize_t n;
	int fd;

	ws_obj_path(ws, r->obj.id, RUN_PARAMS_RAW, raw);
	fd = open(raw, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size <= r->params_off) {
		close(fd);
		return;
	}
	if (st.st_size - r->params_off > RAW_MAX)
		r->params_off = st.st_size - RAW_MAX;
	buf = malloc(st.st_size - r->params_off);
	n = buf ? pread(fd, buf, st.st_size - r->params_off, r->params_off) :
	    -1;
	close(fd);
	last = n > 0 ? memrchr(buf, '\n', n) : NULL;
	if (last) {
		r->params_off += last + 1 - buf;
		run_params_merge(ws, r, buf, last + 1 - buf, "MLFS_PARAMS");
	}
	free(buf);
}

/* ---- metrics.svg and the summary ------------------------------------------ */

static int write_file(const char *dir_path, const char *name,
		      const char *buf, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	ssize_t w = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir_path, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return -errno;
	w = write(fd, buf, len);
	if (close(fd) || w != (ssize_t)len || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

static char *read_metrics(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	off_t off;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	*len = 0;
	if (fd < 0 || fstat(fd, &st))
		goto out;
	/* a huge file: its tail (its first line may be cut: skipped) */
	off = st.st_size > 8 * RAW_MAX ? st.st_size - 8 * RAW_MAX : 0;
	buf = malloc(st.st_size - off + 1);
	n = buf ? pread(fd, buf, st.st_size - off, off) : -1;
	if (n > 0)
		*len = n;
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

/* Draw metrics.svg and the summary from @len bytes of metrics. */
static int plot_write(struct ws *ws, struct run_ctx *r, const char *m,
		      size_t len)
{
	char dir[PATH_MAX], *svg = NULL, *sum = NULL;
	size_t sl, ml;
	int rc;

	ws_obj_path(ws, r->obj.id, NULL, dir);
	rc = plot_metrics_svg(m ? m : "", len, &svg, &sl);
	if (!rc)
		rc = plot_summary(m ? m : "", len, &sum, &ml);
	if (!rc)
		rc = write_file(dir, RUN_SUMMARY, sum, ml);
	if (!rc)
		rc = write_file(dir, RUN_PLOT, svg, sl);
	free(svg);
	free(sum);
	return rc;
}

void run_plot_refresh(struct ws *ws, struct run_ctx *r, int final)
{
	char path[PATH_MAX], *m;
	struct stat st;
	size_t len;
	double now = wall_s();

	ws_obj_path(ws, r->obj.id, RUN_METRICS, path);
	if (stat(path, &st))
		st.st_size = 0;
	if (r->plot_at > 0 && st.st_size == r->plot_size)
		return;		/* drawn from these very bytes */
	if (!final && r->plot_at > 0 && st.st_size > PLOT_BIG &&
	    now - r->plot_at < PLOT_BIG_S)
		return;		/* a big one, drawn a moment ago */
	m = read_metrics(path, &len);
	if (plot_write(ws, r, m, len)) {
		log_warn("run %s: cannot draw metrics.svg", r->obj.name);
	} else {
		r->plot_size = st.st_size;
		r->plot_at = now;
		if (ws->hooks.inval_grow)
			ws->hooks.inval_grow(ws->hooks.ctx, r->obj.id,
					     F_METRICS_SVG, 0);
	}
	free(m);
}
