// SPDX-License-Identifier: MIT
/*
 * runs/index.html: every run the reader may look into, with its status,
 * duration, and the last value and a sparkline of each metric, rendered
 * on each open (FUSE request threads).  Cheap: one pass over the runs in
 * the store, then one small summary file per run that the worker keeps
 * beside metrics.svg (run_plots.c); never the metrics themselves.
 */
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/plot.h"
#include "../lib/vec.h"
#include "ws_i.h"

#define PAGE_COLS	8	/* metric columns; more are left out */
#define SUM_MAX		(64 * 1024)

struct row {
	int64_t id;
	char name[MLFS_NAME_MAX + 1];
	enum obj_state state;
	double started, ended;
	char *sum;		/* its summary, "" when none */
};

struct page {
	VEC(struct row) rows;
	char cols[PAGE_COLS][METRIC_NAME_BUF];
	int ncols, more;
	uint32_t uid, gid;
};

/* May @uid (primary group @gid) look into run @o?  Read and search on
 * its folder, as `ls runs/NAME` would need.  Supplementary groups are
 * not known here: a run shared only with one of them is left out. */
static int may_look(const struct obj *o, uint32_t uid, uint32_t gid)
{
	unsigned bits = o->mode & 07;

	if (uid == 0)
		return 1;
	if (uid == o->uid)
		bits = (o->mode >> 6) & 07;
	else if (gid == o->gid)
		bits = (o->mode >> 3) & 07;
	return (bits & 05) == 05;
}

static int row_cb(void *arg, const struct obj *o)
{
	struct page *p = arg;
	struct row r = { .id = o->id, .state = o->state,
			 .started = o->started, .ended = o->ended };

	if (!may_look(o, p->uid, p->gid))
		return 0;
	snprintf(r.name, sizeof(r.name), "%s", o->name);
	return vec_push(&p->rows, r) ? -ENOMEM : 0;
}

static char *read_small(const char *path)
{
	char *buf = malloc(SUM_MAX + 1);
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (buf && fd >= 0)
		n = read(fd, buf, SUM_MAX);
	if (fd >= 0)
		close(fd);
	if (buf)
		buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static const char *next_line(const char *l)
{
	l += strcspn(l, "\n");
	return *l ? l + 1 : l;
}

static void add_col(struct page *p, const char *name)
{
	for (int i = 0; i < p->ncols; i++)
		if (!strcmp(p->cols[i], name))
			return;
	if (p->ncols == PAGE_COLS) {
		p->more = 1;
		return;
	}
	snprintf(p->cols[p->ncols++], METRIC_NAME_BUF, "%s", name);
}

/* Each run's summary, and the metric names of all, in order seen. */
static int load_sums(struct ws *ws, struct page *p)
{
	char path[PATH_MAX], name[METRIC_NAME_BUF];

	for (size_t i = 0; i < p->rows.n; i++) {
		struct row *r = &p->rows.v[i];

		ws_obj_path(ws, r->id, RUN_SUMMARY, path);
		r->sum = read_small(path);
		if (!r->sum)
			return -ENOMEM;
		for (const char *l = r->sum; *l; l = next_line(l))
			if (sscanf(l, "%128s", name) == 1)
				add_col(p, name);
	}
	return 0;
}

/* h:mm:ss once ended; while running, since when (a page that changes
 * only with the runs can be kept: see fs/stash.c runs_page) */
static void duration(struct sbuf *b, const struct row *r)
{
	long s = r->ended > 0 && r->started > 0 && r->ended >= r->started ?
		 (long)(r->ended - r->started) : -1;
	char ts[32];

	if (s >= 0) {
		sb_printf(b, "<td class=\"num\">%ld:%02ld:%02ld</td>",
			  s / 3600, s / 60 % 60, s % 60);
		return;
	}
	ts[0] = '\0';
	if (r->started > 0 && r->ended <= 0)
		ws_iso_time(r->started, ts, sizeof(ts));
	sb_printf(b, ts[0] ? "<td>since %s</td>" : "<td>%s</td>", ts);
}

/* One metric's cell: its last value and sparkline, from the summary
 * line `name last count v1 ... vK`. */
static void metric_cell(struct sbuf *b, const char *sum, const char *col)
{
	size_t cl = strlen(col);
	double v[PLOT_SPARK_MAX], last;
	const char *l = sum;
	int n = 0, used;
	long long count;

	while (*l && !(!strncmp(l, col, cl) && l[cl] == ' '))
		l = next_line(l);
	if (!*l || sscanf(l + cl, " %lf %lld%n", &last, &count, &used) < 2) {
		sb_printf(b, "<td></td>");
		return;
	}
	for (l += cl + used; n < PLOT_SPARK_MAX && *l && *l != '\n'; n++) {
		char *end;

		v[n] = strtod(l, &end);
		if (end == l)
			break;
		l = end;
	}
	sb_printf(b, "<td class=\"num\">%.4g ", last);
	plot_sparkline(b, v, n, 80, 20, "#1f77b4");
	sb_printf(b, "</td>");
}

static const char page_head[] =
	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	"<title>runs</title>\n<style>\n"
	"body{font-family:sans-serif;font-size:13px;margin:12px}\n"
	"table{border-collapse:collapse}\n"
	"th,td{border:1px solid #ddd;padding:3px 8px;white-space:nowrap}\n"
	"th{background:#f0f0f0;text-align:left}\n"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
	"svg.spark{vertical-align:middle}\n"
	".Completed{color:#2ca02c}.Failed{color:#d62728}"
	".Canceled{color:#888}.Running{color:#1f77b4}\n"
	"</style></head><body>\n";

static void render_rows(struct sbuf *b, const struct page *p)
{
	for (size_t i = 0; i < p->rows.n; i++) {
		const struct row *r = &p->rows.v[i];
		const char *st = state_name(r->state);

		sb_printf(b, "<tr><td><a href=\"");
		sb_escape(b, r->name);
		sb_printf(b, "/metrics.svg\">");
		sb_escape(b, r->name);
		sb_printf(b, "</a></td><td class=\"%s\">%s</td>", st, st);
		duration(b, r);
		for (int c = 0; c < p->ncols; c++)
			metric_cell(b, r->sum, p->cols[c]);
		sb_printf(b, "</tr>\n");
	}
}

static void render(struct sbuf *b, const struct page *p)
{
	sb_printf(b, "%s<h1>runs</h1>\n<p>%zu run%s%s</p>\n<table>\n<tr>"
		  "<th>run</th><th>status</th><th>duration</th>", page_head,
		  p->rows.n, p->rows.n == 1 ? "" : "s", p->more ?
		  "; the first 8 metrics are shown" : "");
	for (int c = 0; c < p->ncols; c++) {
		sb_printf(b, "<th>");
		sb_escape(b, p->cols[c]);
		sb_printf(b, "</th>");
	}
	sb_printf(b, "</tr>\n");
	render_rows(b, p);
	sb_printf(b, "</table>\n</body></html>\n");
}

int run_index_page(struct ws *ws, uint32_t uid, uint32_t gid, char **buf,
		   size_t *len)
{
	struct page p = { .uid = uid, .gid = gid };
	struct sbuf b = { 0 };
	int rc;

	rc = ws_list(ws, K_RUN, 0, 0, row_cb, &p);
	if (!rc)
		rc = load_sums(ws, &p);
	if (!rc)
		render(&b, &p);
	for (size_t i = 0; i < p.rows.n; i++)
		free(p.rows.v[i].sum);
	vec_free(&p.rows);
	if (!rc && (b.oom || !b.s))
		rc = -ENOMEM;
	if (rc) {
		sb_free(&b);
		return rc;
	}
	*buf = b.s;
	*len = b.len;
	return 0;
}
