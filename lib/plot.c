// SPDX-License-Identifier: MIT
/*
 * SVG pictures of metrics (see plot.h).  The layout is fixed in pixels so
 * that a browser, rsvg-convert or a test can find the plot area: charts
 * are stacked, each CHART_H high, its plot area at (PAD_L, PAD_T) inside.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

#define SVG_W		720
#define CHART_H		240
#define HEAD_H		28
#define PAD_L		72
#define PAD_R		24
#define PAD_T		34
#define PAD_B		44
#define PLOT_W		(SVG_W - PAD_L - PAD_R)
#define PLOT_H		(CHART_H - PAD_T - PAD_B)
#define NAME_MAX_LEN	160

static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#17becf",
};

/* ---- text ---------------------------------------------------------------- */

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL,
			      b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->s && b->len + n < b->cap) {
			b->len += n;
			return;
		}
		if (vec_grow(&b->s, &b->cap, b->len + n + 1 + b->cap, 1)) {
			b->oom = 1;
			return;
		}
	}
}

void sb_escape(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sb_printf(b, "&amp;"); break;
		case '<': sb_printf(b, "&lt;"); break;
		case '>': sb_printf(b, "&gt;"); break;
		case '"': sb_printf(b, "&quot;"); break;
		case '\'': sb_printf(b, "&#39;"); break;
		default: sb_printf(b, "%c", *s);
		}
	}
}

void sb_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static int sb_take(struct sbuf *b, char **out, size_t *out_len)
{
	if (b->oom || !b->s) {
		sb_free(b);
		return -ENOMEM;
	}
	*out = b->s;
	*out_len = b->len;
	return 0;
}

/* ---- series ------------------------------------------------------------- */

struct point {
	double x, y;
	size_t seq;		/* order of arrival: ties of x keep it */
};

struct series {
	char name[NAME_MAX_LEN];
	VEC(struct point) p;
};

struct chart_set {
	struct series s[PLOT_SERIES_MAX];
	int n;
	int more;		/* metrics beyond PLOT_SERIES_MAX */
	size_t seq;
};

static struct series *series_of(struct chart_set *cs, const char *name)
{
	for (int i = 0; i < cs->n; i++)
		if (!strcmp(cs->s[i].name, name))
			return &cs->s[i];
	if (cs->n == PLOT_SERIES_MAX) {
		cs->more = 1;
		return NULL;
	}
	snprintf(cs->s[cs->n].name, NAME_MAX_LEN, "%s", name);
	return &cs->s[cs->n++];
}

/* One `name value step time` line (NUL-terminated); bad ones skipped. */
static int add_line(struct chart_set *cs, const char *line)
{
	char name[NAME_MAX_LEN];
	double v, step;
	struct series *s;
	int used = 0;

	if (sscanf(line, "%159s %lf %lf%n", name, &v, &step, &used) != 3 ||
	    !used || !isfinite(v) || !isfinite(step))
		return 0;
	s = series_of(cs, name);
	if (!s)
		return 0;
	if (vec_push(&s->p, ((struct point){ step, v, cs->seq++ })))
		return -ENOMEM;
	return 0;
}

static int by_x(const void *a, const void *b)
{
	const struct point *p = a, *q = b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

static void set_free(struct chart_set *cs)
{
	for (int i = 0; i < cs->n; i++)
		vec_free(&cs->s[i].p);
}

/* Parse @len bytes of a metrics file; each series sorted by step. */
static int set_load(struct chart_set *cs, const char *buf, size_t len)
{
	char line[512];
	size_t i = 0, j, l;

	memset(cs, 0, sizeof(*cs));
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);

		j = nl ? (size_t)(nl - buf) : len;
		l = j - i < sizeof(line) ? j - i : 0;	/* longer: not ours */
		memcpy(line, buf + i, l);
		line[l] = '\0';
		if (l && add_line(cs, line)) {
			set_free(cs);
			return -ENOMEM;
		}
		i = j + 1;
	}
	for (int k = 0; k < cs->n; k++)
		qsort(cs->s[k].p.v, cs->s[k].p.n, sizeof(struct point), by_x);
	return 0;
}

/* ---- axes --------------------------------------------------------------- */

/* A "nice" tick spacing (1, 2 or 5 times a power of ten) near @raw. */
static double nice_step(double raw)
{
	double p = pow(10, floor(log10(raw))), f = raw / p;

	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

struct axis {
	double lo, hi, tick;
};

/* An axis covering [lo, hi]; a flat range is widened so it shows. */
static struct axis axis_of(double lo, double hi, int ticks)
{
	struct axis a;

	if (!(hi > lo)) {
		double d = fabs(lo) > 1e-300 ? fabs(lo) * 0.1 : 1;

		lo -= d;
		hi += d;
	}
	a.tick = nice_step((hi - lo) / ticks);
	a.lo = floor(lo / a.tick) * a.tick;
	a.hi = ceil(hi / a.tick) * a.tick;
	if (!(a.hi > a.lo))	/* precision lost at huge magnitudes */
		a.hi = a.lo + a.tick;
	return a;
}

static double px(const struct axis *a, double v, double size)
{
	return (v - a->lo) / (a->hi - a->lo) * size;
}

static void num_text(char *buf, size_t sz, double v, double tick)
{
	if (fabs(v) < tick * 1e-6)
		v = 0;		/* -0 and 1e-17 from the arithmetic */
	snprintf(buf, sz, "%.4g", v);
}

static void draw_ticks(struct sbuf *b, int y0, const struct axis *xa,
		       const struct axis *ya)
{
	char t[48];

	for (double v = ya->lo; v <= ya->hi + ya->tick / 2; v += ya->tick) {
		double y = y0 + PAD_T + PLOT_H - px(ya, v, PLOT_H);

		num_text(t, sizeof(t), v, ya->tick);
		sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\""
			  " stroke=\"#e6e6e6\"/><text x=\"%d\" y=\"%.1f\""
			  " text-anchor=\"end\">%s</text>\n", PAD_L, y,
			  PAD_L + PLOT_W, y, PAD_L - 6, y + 4, t);
	}
	for (double v = xa->lo; v <= xa->hi + xa->tick / 2; v += xa->tick) {
		double x = PAD_L + px(xa, v, PLOT_W);

		num_text(t, sizeof(t), v, xa->tick);
		sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\""
			  " stroke=\"#888\"/><text x=\"%.1f\" y=\"%d\""
			  " text-anchor=\"middle\">%s</text>\n", x,
			  y0 + PAD_T + PLOT_H, x, y0 + PAD_T + PLOT_H + 5, x,
			  y0 + PAD_T + PLOT_H + 18, t);
	}
}

/* ---- one chart ---------------------------------------------------------- */

static void range_of(const struct series *s, double *xlo, double *xhi,
		     double *ylo, double *yhi)
{
	*xlo = s->p.v[0].x;
	*xhi = s->p.v[s->p.n - 1].x;
	*ylo = *yhi = s->p.v[0].y;
	for (size_t i = 1; i < s->p.n; i++) {
		if (s->p.v[i].y < *ylo)
			*ylo = s->p.v[i].y;
		if (s->p.v[i].y > *yhi)
			*yhi = s->p.v[i].y;
	}
}

static void path_point(struct sbuf *b, int first, double x, double y)
{
	sb_printf(b, "%c%.1f %.1f", first ? 'M' : 'L', x, y);
}

/*
 * The line: per pixel column the lowest and the highest value (in their
 * order), so 100,000 points cost ~2 x PLOT_W vertices and look the same.
 */
static void draw_line(struct sbuf *b, int y0, const struct series *s,
		      const struct axis *xa, const struct axis *ya,
		      const char *color)
{
	const struct point *p = s->p.v;
	size_t i = 0, n = s->p.n;
	int first = 1;

	sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\""
		  " stroke-linejoin=\"round\" d=\"", color);
	while (i < n) {
		long col = lround(px(xa, p[i].x, PLOT_W));
		size_t lo = i, hi = i, j = i;

		for (; j < n && lround(px(xa, p[j].x, PLOT_W)) == col; j++) {
			if (p[j].y < p[lo].y)
				lo = j;
			if (p[j].y > p[hi].y)
				hi = j;
		}
		for (int k = 0; k < 2; k++) {
			size_t q = (k == 0) == (lo <= hi) ? lo : hi;

			path_point(b, first, PAD_L + px(xa, p[q].x, PLOT_W),
				   y0 + PAD_T + PLOT_H -
				   px(ya, p[q].y, PLOT_H));
			first = 0;
		}
		i = j;
	}
	sb_printf(b, "\"/>\n");
}

static void draw_chart(struct sbuf *b, int idx, const struct series *s)
{
	const char *color = palette[idx % (sizeof(palette) / sizeof(*palette))];
	int y0 = HEAD_H + idx * CHART_H;
	const struct point *last = &s->p.v[s->p.n - 1];
	double xlo, xhi, ylo, yhi;
	struct axis xa, ya;

	range_of(s, &xlo, &xhi, &ylo, &yhi);
	xa = axis_of(xlo, xhi, 6);
	ya = axis_of(ylo, yhi, 4);
	sb_printf(b, "<g class=\"chart\" id=\"chart-%d\">\n<text x=\"%d\""
		  " y=\"%d\" font-weight=\"bold\">", idx, PAD_L, y0 + 20);
	sb_escape(b, s->name);
	sb_printf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">"
		  "last %.6g at step %.0f (%zu point%s)</text>\n",
		  PAD_L + PLOT_W, y0 + 20, last->y, last->x, s->p.n,
		  s->p.n == 1 ? "" : "s");
	sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\""
		  " fill=\"#fff\" stroke=\"#888\"/>\n", PAD_L, y0 + PAD_T,
		  PLOT_W, PLOT_H);
	draw_ticks(b, y0, &xa, &ya);
	sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step"
		  "</text>\n", PAD_L + PLOT_W / 2, y0 + CHART_H - 8);
	draw_line(b, y0, s, &xa, &ya, color);
	sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>"
		  "\n</g>\n", PAD_L + px(&xa, last->x, PLOT_W),
		  y0 + PAD_T + PLOT_H - px(&ya, last->y, PLOT_H), color);
}

int plot_metrics_svg(const char *metrics, size_t len, char **out,
		     size_t *out_len)
{
	struct sbuf b = { 0 };
	struct chart_set cs;
	int h;

	if (set_load(&cs, metrics, len))
		return -ENOMEM;
	h = HEAD_H + (cs.n ? cs.n : 1) * CHART_H;
	sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg"
		  " xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\""
		  " height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\""
		  " font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\""
		  " fill=\"#fafafa\"/>\n<text x=\"8\" y=\"18\" fill=\"#555\">%d"
		  " metric%s%s</text>\n", SVG_W, h, SVG_W, h, cs.n,
		  cs.n == 1 ? "" : "s", cs.more ? " (more not drawn)" : "");
	if (!cs.n)
		sb_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\""
			  " fill=\"#555\">no metrics yet</text>\n", SVG_W / 2,
			  HEAD_H + CHART_H / 2);
	for (int i = 0; i < cs.n; i++)
		draw_chart(&b, i, &cs.s[i]);
	sb_printf(&b, "</svg>\n");
	set_free(&cs);
	return sb_take(&b, out, out_len);
}

/* ---- summary and sparkline ---------------------------------------------- */

/* Values of @s in arrival order would zigzag a step-sorted line: the
 * summary keeps step order, as the chart does. */
static void summary_line(struct sbuf *b, const struct series *s)
{
	size_t n = s->p.n, k = n < PLOT_SPARK_MAX ? n : PLOT_SPARK_MAX;

	sb_printf(b, "%s %.10g %zu", s->name, s->p.v[n - 1].y, n);
	for (size_t i = 0; i < k; i++) {
		size_t at = k == 1 ? n - 1 : i * (n - 1) / (k - 1);

		sb_printf(b, " %.4g", s->p.v[at].y);
	}
	sb_printf(b, "\n");
}

int plot_summary(const char *metrics, size_t len, char **out,
		 size_t *out_len)
{
	struct sbuf b = { 0 };
	struct chart_set cs;

	if (set_load(&cs, metrics, len))
		return -ENOMEM;
	sb_printf(&b, "%s", "");	/* an empty summary is "" */
	for (int i = 0; i < cs.n; i++)
		summary_line(&b, &cs.s[i]);
	set_free(&cs);
	return sb_take(&b, out, out_len);
}

void plot_sparkline(struct sbuf *b, const double *v, size_t n, int w, int h,
		    const char *color)
{
	double lo, hi;

	if (!n)
		return;
	lo = hi = v[0];
	for (size_t i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	sb_printf(b, "<svg class=\"spark\" width=\"%d\" height=\"%d\""
		  " viewBox=\"0 0 %d %d\">", w, h, w, h);
	if (n == 1) {
		sb_printf(b, "<circle cx=\"%d\" cy=\"%d\" r=\"2.5\" fill=\"%s\""
			  "/></svg>", w / 2, h / 2, color);
		return;
	}
	sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\""
		  " stroke-width=\"1.5\" points=\"", color);
	/* whole pixels: a page of 10,000 runs stays small and quick */
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%ld,%ld", i ? " " : "",
			  lround(1 + (double)i * (w - 2) / (n - 1)), hi > lo ?
			  lround(h - 1 - (v[i] - lo) / (hi - lo) * (h - 2)) :
			  (long)h / 2);
	sb_printf(b, "\"/></svg>");
}
