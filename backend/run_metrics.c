// SPDX-License-Identifier: MIT
/*
 * A run's metrics: the complete lines a run appends to metrics.raw
 * ($MLFS_METRICS) become `name value step time` lines of `metrics`; text
 * values are params (run_plots.c).  Worker threads only, and the run's
 * end (run_state.c) pumps once more before its state changes.
 */
#include "ws.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/plot.h"
#include "ws_i.h"

/* Count earlier lines of @name in @path for the default step. */
static long long metric_count(const char *path, const char *name)
{
	char line[512], n[160];
	long long count = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%159s", n) == 1 && !strcmp(n, name))
			count++;
	fclose(f);
	return count;
}

#define PARAM_MARK	"@param "	/* a param in $MLFS_METRICS, where a
					 * target has no $MLFS_PARAMS (ssh) */

/*
 * Not a metric: a param (`kernel linear`, or `@param lr 0.1`) goes to
 * @params as a `name value` line; anything else is named in error.
 */
static void metrics_other(struct ws *ws, struct run_ctx *r,
			  const char *line, struct sbuf *params)
{
	char name[METRIC_NAME_BUF];
	const char *v;
	size_t vl;
	int rc;

	if (!strncmp(line, PARAM_MARK, strlen(PARAM_MARK)))
		rc = param_parse_line(line + strlen(PARAM_MARK), name,
				      sizeof(name), &v, &vl);
	else
		rc = metric_param_line(line, name, sizeof(name), &v, &vl);
	if (!rc)
		sb_printf(params, "%s %.*s\n", name, (int)vl, v);
	else if (line[strspn(line, " \t\r")])
		run_bad_line(ws, r, "MLFS_METRICS", line,
			     "`name number [step]`; text values are params");
}

static void metrics_line(struct ws *ws, struct run_ctx *r,
			 const char *line, FILE *out, const char *out_path,
			 struct sbuf *params)
{
	char name[160];
	long long step;
	double value;
	int rc;

	rc = metric_parse_line(line, name, sizeof(name), &value, &step);
	if (rc < 0) {
		metrics_other(ws, r, line, params);
		return;
	}
	if (rc == 0) {
		fflush(out);
		step = metric_count(out_path, name);
	}
	fprintf(out, "%s %.15g %lld %.3f\n", name, value, step, wall_s());
}

/*
 * Convert new complete lines of metrics.raw.  The offset lives in memory;
 * at adoption it is recovered from the metrics file (see run_metrics_recover).
 */
void run_metrics_pump(struct ws *ws, struct run_ctx *r)
{
	char raw[PATH_MAX], out_path[PATH_MAX], *buf, *p, *nl;
	struct sbuf params = { 0 };
	struct stat st, ost;
	ssize_t n;
	FILE *out;
	int fd;

	ws_obj_path(ws, r->obj.id, RUN_METRICS_RAW, raw);
	fd = open(raw, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	/* the size of what was opened, a regular file */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size <= r->metrics_off) {
		close(fd);
		return;
	}
	if (st.st_size - r->metrics_off > (1 << 24))
		r->metrics_off = st.st_size - (1 << 24);
	buf = malloc(st.st_size - r->metrics_off + 1);
	n = buf ? pread(fd, buf, st.st_size - r->metrics_off, r->metrics_off) : -1;
	close(fd);
	if (n <= 0) {
		free(buf);
		return;
	}
	buf[n] = '\0';
	ws_obj_path(ws, r->obj.id, RUN_METRICS, out_path);
	out = fopen(out_path, "a");
	if (!out) {
		free(buf);
		return;
	}
	ost.st_size = 0;
	fstat(fileno(out), &ost);
	for (p = buf; (nl = memchr(p, '\n', buf + n - p)); p = nl + 1) {
		*nl = '\0';
		metrics_line(ws, r, p, out, out_path, &params);
	}
	r->metrics_off += p - buf;
	fclose(out);
	free(buf);
	if (params.len)
		run_params_merge(ws, r, params.s, params.len,
				 "MLFS_METRICS");
	sb_free(&params);
	if (ws->hooks.inval_grow)
		ws->hooks.inval_grow(ws->hooks.ctx, r->obj.id, F_METRICS,
					ost.st_size);
}

/* After a restart: the number of raw lines already converted equals the
 * number of lines in metrics, skip that many complete raw lines. */
void run_metrics_recover(struct ws *ws, struct run_ctx *r)
{
	char path[PATH_MAX], line[4096];
	long long done = 0, seen = 0;
	FILE *f;

	ws_obj_path(ws, r->obj.id, RUN_METRICS, path);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			done++;
		fclose(f);
	}
	ws_obj_path(ws, r->obj.id, RUN_METRICS_RAW, path);
	f = fopen(path, "r");
	if (!f)
		return;
	while (seen < done && fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);
		char n[160];
		double v;
		long long s;

		r->metrics_off += l;
		if (l && line[l - 1] == '\n') {
			line[l - 1] = '\0';
			if (metric_parse_line(line, n, sizeof(n), &v, &s) >= 0)
				seen++;
		}
	}
	fclose(f);
}
