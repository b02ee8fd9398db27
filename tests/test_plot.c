// SPDX-License-Identifier: MIT
/*
 * Unit test of lib/plot.c: metrics.svg, the summary and sparklines, on
 * good, empty, hostile and huge input.  The pictures themselves are
 * checked in a real browser by tests/it/22-params-plots.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/plot.h"
#include "tap.h"

static char *svg_of(const char *m, size_t *len)
{
	char *out = NULL;

	if (plot_metrics_svg(m, strlen(m), &out, len))
		return NULL;
	return out;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Every < is closed by a > and no tag runs into the text (cheap
 * well-formedness; the browser test reads it for real). */
static int balanced(const char *s)
{
	int in = 0;

	for (; *s; s++) {
		if (*s == '<' && in++)
			return 0;
		if (*s == '>' && !in--)
			return 0;
	}
	return !in;
}

static void test_charts(void)
{
	const char *m = "loss 0.9 0 1.0\nloss 0.5 1 2.0\nacc 0.1 0 1.0\n"
			"loss 0.3 2 3.0\nacc 0.7 5 4.0\n";
	size_t len;
	char *s = svg_of(m, &len);

	CHECK(s && strlen(s) == len, "an SVG of two metrics");
	if (!s)
		return;
	CHECK(!strncmp(s, "<?xml", 5) && strstr(s, "</svg>\n"),
	      "a complete document");
	CHECK(count(s, "class=\"chart\"") == 2, "one chart per metric");
	CHECK(strstr(s, ">loss<") && strstr(s, ">acc<"), "titled by name");
	CHECK(strstr(s, "last 0.3 at step 2 (3 points)"), "the last value");
	CHECK(count(s, "<path ") == 2, "one line each");
	CHECK(strstr(s, ">step<"), "the x axis is labelled");
	CHECK(strstr(s, ">0.8<") || strstr(s, ">0.9<"), "y ticks are numbers");
	CHECK(balanced(s), "tags balanced");
	free(s);
}

static void test_empty_and_junk(void)
{
	size_t len;
	char *s = svg_of("", &len);

	CHECK(s && strstr(s, "no metrics yet") && balanced(s),
	      "no metrics: a picture that says so");
	free(s);
	s = svg_of("x\n\n<script> 1 2 3\nloss nan 1 1\nloss 1e999 1 1\n"
		   "a&b 1 2 3\n", &len);
	CHECK(s && !strstr(s, "<script>") && strstr(s, "a&amp;b") &&
	      count(s, "class=\"chart\"") == 2 && balanced(s),
	      "names are escaped, NaN and overflow dropped");
	free(s);
	s = svg_of("flat 5 0 0\nflat 5 1 0\n", &len);
	CHECK(s && strstr(s, "<path") && !strstr(s, "nan") &&
	      !strstr(s, "inf"), "a flat line gets a visible range");
	free(s);
	s = svg_of("one 3 7 0", &len);
	CHECK(s && strstr(s, "<circle") && !strstr(s, "nan"),
	      "one point (no newline) is a dot");
	free(s);
}

static void test_many_series(void)
{
	char buf[64 * 40];
	size_t len, o = 0;
	char *s;

	for (int i = 0; i < 40; i++)
		o += snprintf(buf + o, sizeof(buf) - o, "m%d %d 0 0\n", i, i);
	s = svg_of(buf, &len);
	CHECK(s && count(s, "class=\"chart\"") == PLOT_SERIES_MAX &&
	      strstr(s, "more not drawn"), "at most %d charts",
	      PLOT_SERIES_MAX);
	free(s);
}

/* 100,000 points: reduced to pixel columns, size bounded. */
static void test_big(void)
{
	size_t cap = 100000 * 40, o = 0, len;
	char *buf = malloc(cap), *s;
	struct timespec a, b;

	for (int i = 0; i < 100000; i++)
		o += snprintf(buf + o, cap - o, "loss %.6f %d 0\n",
			      1.0 / (1 + i % 977) + (i % 2) * 0.01, i);
	clock_gettime(CLOCK_MONOTONIC, &a);
	s = NULL;
	plot_metrics_svg(buf, o, &s, &len);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK(s && len < 64 * 1024, "100k points -> %zu bytes", s ? len : 0);
	printf("# 100k points rendered in %.1f ms\n",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	free(s);
	free(buf);
}

static void test_summary(void)
{
	char *out = NULL, line[8192];
	size_t len, o = 0;

	CHECK(!plot_summary("b 1 0 0\na 2 0 0\nb 3 1 0\n", 24, &out, &len) &&
	      !strcmp(out, "b 3 2 1 3\na 2 1 2\n"), "summary: %s",
	      out ? out : "(null)");
	free(out);
	for (int i = 0; i < 200; i++)
		o += snprintf(line + o, sizeof(line) - o, "x %d %d 0\n", i, i);
	CHECK(!plot_summary(line, o, &out, &len) &&
	      !strncmp(out, "x 199 200 0 ", 12) &&
	      strstr(out, " 199\n") && count(out, " ") == 2 + PLOT_SPARK_MAX,
	      "a long series keeps %d points, first and last",
	      PLOT_SPARK_MAX);
	free(out);
	CHECK(!plot_summary("", 0, &out, &len) && len == 0, "empty summary");
	free(out);
}

static void test_sparkline(void)
{
	struct sbuf b = { 0 };
	double v[] = { 1, 3, 2 };

	plot_sparkline(&b, v, 0, 80, 20, "#1f77b4");
	CHECK(b.len == 0, "no values, no picture");
	plot_sparkline(&b, v, 3, 80, 20, "#1f77b4");
	CHECK(b.s && strstr(b.s, "<polyline") && strstr(b.s, "1,19") &&
	      strstr(b.s, "40,1") && balanced(b.s), "a line: %s", b.s);
	sb_free(&b);
	plot_sparkline(&b, v, 1, 80, 20, "#1f77b4");
	CHECK(b.s && strstr(b.s, "<circle"), "one value is a dot");
	sb_free(&b);
	sb_escape(&b, "<a href='x'>&\"");
	CHECK(b.s && !strcmp(b.s, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"),
	      "escape: %s", b.s);
	sb_free(&b);
}

int main(void)
{
	test_charts();
	test_empty_and_junk();
	test_many_series();
	test_big();
	test_summary();
	test_sparkline();
	return tap_done();
}
