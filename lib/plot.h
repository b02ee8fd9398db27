/* SPDX-License-Identifier: MIT */
/*
 * Pictures of metrics, as SVG text: a chart of every metric against step
 * (metrics.svg), a small summary of each metric (its last value and a few
 * points, for the runs' index page) and the sparkline drawn from it.
 * Pure: bytes in, bytes out, no I/O, any thread.  The input is a run's
 * `metrics` file (`name value step time` lines); lines that do not parse
 * are skipped, never trusted.
 */
#ifndef MLFS_PLOT_H
#define MLFS_PLOT_H

#include <stddef.h>

/* A growing text; on ENOMEM it stays as it was and ->oom is set. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* @s with &, <, >, " and ' escaped for XML/HTML text and attributes. */
void sb_escape(struct sbuf *b, const char *s);
void sb_free(struct sbuf *b);

#define PLOT_SERIES_MAX	32	/* metrics drawn; more are named, not drawn */
#define PLOT_SPARK_MAX	24	/* points a summary keeps per metric */

/*
 * plot_metrics_svg - the SVG document of @len bytes of a metrics file:
 * one chart per metric (up to PLOT_SERIES_MAX, in order of first
 * appearance), value against step, with axes, ticks and labels; a large
 * series is reduced to the min and max of each pixel column, so that
 * cost and size stay bounded.  0 with a malloc'd NUL-terminated *@out
 * and its length in *@out_len, or -ENOMEM.
 */
int plot_metrics_svg(const char *metrics, size_t len, char **out,
		     size_t *out_len);

/*
 * plot_summary - the summary of a metrics file: one line per metric,
 * `name last_value count v1 v2 ... vK` (K <= PLOT_SPARK_MAX, the values
 * evenly taken along the series, the last one included).  Same outcomes
 * as plot_metrics_svg.
 */
int plot_summary(const char *metrics, size_t len, char **out,
		 size_t *out_len);

/*
 * plot_sparkline - append to @b an inline <svg> of @w x @h pixels drawing
 * @n values as a line in @color (a CSS colour the caller chose); a single
 * value is a dot.  Nothing for n == 0.
 */
void plot_sparkline(struct sbuf *b, const double *v, size_t n, int w, int h,
		    const char *color);

#endif
