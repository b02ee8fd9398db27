// SPDX-License-Identifier: MIT
/*
 * Unit test of backend/parse.c: every function with good, bad and hostile
 * inputs (NUL bytes, invalid UTF-8, 1 MiB lines, 100,000 lines), the exact
 * errno and, where a script or a user relies on it, the sentence.
 *
 * Output: one "ok N - what" / "not ok N - what" line per check, then
 * "N passed, M failed"; the exit status is 1 if anything failed.
 */
#include "parse.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Parsers must be linear: the tests compare the time of 100,000 lines with
 * that of 10,000 measured in the same run (a quadratic parser: 100 times),
 * never with a fixed number of milliseconds -- machines differ 3x and more,
 * sanitizers more again.  The figures are printed as # lines.
 */

static int n_pass, n_fail;

static bool check(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		n_pass++;
	else
		n_fail++;
	printf("%s %d - ", ok ? "ok" : "not ok", n_pass + n_fail);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

/* ---- helpers ------------------------------------------------------------ */

/* A sentence: non-empty, printable ASCII, no newline, ends with '.'. */
static bool sentence_ok(const struct err *e)
{
	size_t n = strnlen(e->msg, sizeof(e->msg));
	size_t i;

	if (n == 0 || n >= sizeof(e->msg) || e->msg[n - 1] != '.')
		return false;
	for (i = 0; i < n; i++)
		if (e->msg[i] < 0x20 || e->msg[i] > 0x7e)
			return false;
	return true;
}

static void reset(struct err *e)
{
	memset(e->msg, 0, sizeof(e->msg));
}

/*
 * A refusal: @rc is -EINVAL, the sentence is sane and holds each of the
 * NULL-terminated substrings.
 */
static void refused(int rc, const struct err *e, const char *what, ...)
{
	const char *sub;
	bool ok = rc == -EINVAL && sentence_ok(e);
	va_list ap;

	va_start(ap, what);
	while ((sub = va_arg(ap, const char *)))
		if (!strstr(e->msg, sub)) {
			ok = false;
			printf("# missing \"%s\"\n", sub);
		}
	va_end(ap);
	if (!check(ok, "%s", what))
		printf("# rc %d, msg \"%s\"\n", rc, e->msg);
}

/* This thread's CPU time: what the parser did, not how long other
 * processes of a loaded machine held the CPU meanwhile. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* @n copies of @c followed by @tail, NUL-terminated; caller frees. */
static char *repeat(char c, size_t n, const char *tail)
{
	size_t t = strlen(tail);
	char *s = malloc(n + t + 1);

	if (!s)
		abort();
	memset(s, c, n);
	memcpy(s + n, tail, t + 1);
	return s;
}

/* A growing text buffer. */
struct buf {
	char *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k >= 0 && b->n + k < b->cap)
			break;
		b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->n += k;
}

/* ---- err_set ------------------------------------------------------------ */

static void test_err_set(void)
{
	struct err e;
	char *big = repeat('x', 2000, "");
	int rc;

	rc = err_set(&e, -EBUSY, "run %s is %s.", "train-1", "Running");
	check(rc == -EBUSY && !strcmp(e.msg, "run train-1 is Running."),
	      "err_set: returns rc and formats");
	rc = err_set(&e, -EINVAL, "%s", big);
	check(rc == -EINVAL && strlen(e.msg) == ERR_MSG_MAX - 1,
	      "err_set: a long sentence is truncated, NUL-terminated");
	check(err_set(NULL, -EIO, "x") == -EIO, "err_set: NULL err is fine");
	free(big);
}

/* ---- name_valid --------------------------------------------------------- */

static void test_name_good(void)
{
	static const char *const good[] = {
		"a", "Z", "0", "train-1", "A.b_c-d", "0abc", "a..b", "run.",
		"x-", "local", NULL,
	};
	char *n63 = repeat('a', 63, "");
	struct err e;
	int i;

	for (i = 0; good[i]; i++)
		check(name_valid(good[i], &e) == 0, "name: accepts \"%s\"",
		      good[i]);
	check(name_valid(n63, &e) == 0, "name: accepts 63 characters");
	free(n63);
}

static void test_name_bad(void)
{
	char *n64 = repeat('a', 64, "");
	char *huge = repeat('a', 1 << 20, "");
	struct err e;

	refused(name_valid("", &e), &e, "name: rejects \"\"", "empty", NULL);
	refused(name_valid(NULL, &e), &e, "name: rejects NULL", NULL);
	refused(name_valid(".", &e), &e, "name: rejects \".\"", "'.'", NULL);
	refused(name_valid("..", &e), &e, "name: rejects \"..\"", "'..'",
		NULL);
	refused(name_valid("-rf", &e), &e, "name: rejects a leading dash",
		"'-rf'", "start with", NULL);
	refused(name_valid(".hidden", &e), &e, "name: rejects a leading dot",
		"'.hidden'", NULL);
	refused(name_valid("_x", &e), &e, "name: rejects a leading underscore",
		"'_x'", NULL);
	refused(name_valid("a b", &e), &e, "name: rejects a blank",
		"'a b'", "' '", "position 2", NULL);
	refused(name_valid("a/b", &e), &e, "name: rejects a slash", "'a/b'",
		NULL);
	refused(name_valid("submit\n", &e), &e,
		"name: rejects a newline, escaped", "'submit\\x0a'", NULL);
	refused(name_valid("a\x1b[31m", &e), &e,
		"name: rejects an escape sequence, escaped", "\\x1b", NULL);
	refused(name_valid("caf\xc3\xa9", &e), &e,
		"name: rejects UTF-8, escaped", "caf\\xc3\\xa9", NULL);
	refused(name_valid("a\xff\xfe", &e), &e,
		"name: rejects invalid UTF-8, escaped", "\\xff\\xfe", NULL);
	refused(name_valid("it's", &e), &e, "name: quotes a quote",
		"'it\\'s'", NULL);
	refused(name_valid(n64, &e), &e, "name: rejects 64 characters",
		"too long", "64", "63", NULL);
	refused(name_valid(huge, &e), &e,
		"name: rejects a 1 MiB name with a short sentence",
		"too long", "...", NULL);
	free(n64);
	free(huge);
}

/* ---- ctl_split ---------------------------------------------------------- */

#define NCMD 8

static int split(const char *s, size_t len, struct ctl_cmd *c, struct err *e)
{
	reset(e);
	return ctl_split(s, len, c, NCMD, e);
}

static int splits(const char *s, struct ctl_cmd *c, struct err *e)
{
	return split(s, strlen(s), c, e);
}

static bool is_cmd(const struct ctl_cmd *c, int argc, const char *a0,
		   const char *a1, const char *a2, const char *a3)
{
	const char *want[CTL_MAX_ARGS] = { a0, a1, a2, a3 };
	int i;

	if (c->argc != argc)
		return false;
	for (i = 0; i < CTL_MAX_ARGS; i++)
		if (strcmp(c->argv[i], i < argc ? want[i] : ""))
			return false;
	return true;
}

static void test_ctl_good(void)
{
	struct ctl_cmd c[NCMD];
	struct err e;

	check(splits("submit\n", c, &e) == 1 &&
	      is_cmd(&c[0], 1, "submit", 0, 0, 0), "ctl: \"submit\\n\"");
	check(splits("submit", c, &e) == 1 &&
	      is_cmd(&c[0], 1, "submit", 0, 0, 0),
	      "ctl: \"submit\" without a newline");
	check(splits("submit\r\n", c, &e) == 1 &&
	      is_cmd(&c[0], 1, "submit", 0, 0, 0),
	      "ctl: \"submit\\r\\n\" drops the \\r");
	check(splits("cancel\r", c, &e) == 1 &&
	      is_cmd(&c[0], 1, "cancel", 0, 0, 0), "ctl: \"cancel\\r\"");
	check(splits("", c, &e) == 0, "ctl: empty write is 0 commands");
	check(split(NULL, 0, c, &e) == 0, "ctl: NULL, 0 is 0 commands");
	check(splits("\n\n \t \n\r\n", c, &e) == 0,
	      "ctl: blank lines are 0 commands");
	check(splits("# provision later\n  # indented\n", c, &e) == 0,
	      "ctl: comment lines are skipped");
	check(splits("resize 1 4\n", c, &e) == 1 &&
	      is_cmd(&c[0], 3, "resize", "1", "4", 0), "ctl: resize 1 4");
	check(splits("\t resize\t 1   4 \t\n", c, &e) == 1 &&
	      is_cmd(&c[0], 3, "resize", "1", "4", 0),
	      "ctl: blanks and tabs around words");
	check(splits("provision\n\n# c\nresize 1 2\ndeprovision", c, &e) == 3 &&
	      is_cmd(&c[0], 1, "provision", 0, 0, 0) &&
	      is_cmd(&c[1], 3, "resize", "1", "2", 0) &&
	      is_cmd(&c[2], 1, "deprovision", 0, 0, 0),
	      "ctl: several commands in one write");
	check(splits("a b c d", c, &e) == 1 && is_cmd(&c[0], 4, "a", "b", "c", "d"),
	      "ctl: 4 words");
	check(splits("submit\xff\xfe", c, &e) == 1 &&
	      !strcmp(c[0].argv[0], "submit\xff\xfe"),
	      "ctl: invalid UTF-8 is kept verbatim (the verb check refuses it)");
	check(ctl_split("a\nb", 3, c, 2, &e) == 2,
	      "ctl: exactly max commands");
	check(ctl_split("\n#\n", 3, NULL, 0, &e) == 0,
	      "ctl: max 0 with only blank input");
}

static void test_ctl_words(void)
{
	char *w255 = repeat('w', 255, "\n");
	char *w256 = repeat('w', 256, "\n");
	struct ctl_cmd c[NCMD];
	struct err e;

	check(splits(w255, c, &e) == 1 && strlen(c[0].argv[0]) == 255,
	      "ctl: a word of 255 bytes");
	refused(splits(w256, c, &e), &e, "ctl: a word of 256 bytes",
		"too long", "256", "255", "line 1", NULL);
	refused(splits("a b c d e", c, &e), &e, "ctl: 5 words",
		"more than 4 words", "'a b c d e'", NULL);
	refused(splits("submit\nresize 1 2 3 4", c, &e), &e,
		"ctl: 5 words on line 2", "line 2", NULL);
	free(w255);
	free(w256);
}

static void test_ctl_bad(void)
{
	struct ctl_cmd c[NCMD];
	struct err e;

	refused(split("sub\0mit\n", 8, c, &e), &e, "ctl: a NUL byte",
		"NUL", "line 1", NULL);
	refused(split("submit\n\0", 8, c, &e), &e, "ctl: a NUL byte on line 2",
		"NUL", "line 2", NULL);
	refused(split("# \0\n", 4, c, &e), &e,
		"ctl: a NUL byte in a comment", "NUL", NULL);
	refused(splits("submit\x1b[31m", c, &e), &e,
		"ctl: an escape sequence", "control character", "\\x1b", NULL);
	refused(splits("sub\rmit", c, &e), &e, "ctl: a \\r inside a line",
		"\\x0d", NULL);
	refused(splits("submit\r\r\n", c, &e), &e, "ctl: two \\r at the end",
		"\\x0d", NULL);
	refused(splits("submit\x7f", c, &e), &e, "ctl: DEL", "\\x7f", NULL);
	refused(splits("ok\n\nbad\x01", c, &e), &e, "ctl: line number counts blank lines",
		"line 3", NULL);
	refused(ctl_split("a\nb\nc", 5, c, 2, &e), &e,
		"ctl: more than max commands", "too many commands", NULL);
	refused(ctl_split("a", 1, NULL, 0, &e), &e, "ctl: max 0", NULL);
}

static void test_ctl_huge(void)
{
	char *line = repeat('a', 1 << 20, "\n");
	struct ctl_cmd c[NCMD];
	struct buf b = { 0 };
	struct err e;
	double t;
	int i;

	refused(splits(line, c, &e), &e,
		"ctl: a 1 MiB word, with a short sentence", "too long", NULL);
	for (i = 0; i < (1 << 20); i += 2)
		line[i] = ' ';
	refused(splits(line, c, &e), &e, "ctl: a 1 MiB line of words",
		"more than 4 words", NULL);
	for (i = 0; i < 100000; i++)
		buf_add(&b, i % 2 ? "# comment %d\n" : "\n", i);
	buf_add(&b, "submit\n");
	t = now_ms();
	check(split(b.p, b.n, c, &e) == 1 && is_cmd(&c[0], 1, "submit", 0, 0, 0),
	      "ctl: 100,000 blank and comment lines then a command");
	t = now_ms() - t;
	printf("# ctl: 100,000 lines in %.1f ms\n", t);
	b.n = 0;
	for (i = 0; i < 100000; i++)
		buf_add(&b, "submit\n");
	refused(split(b.p, b.n, c, &e), &e,
		"ctl: 100,000 commands with room for 8", "at most 8", NULL);
	free(b.p);
	free(line);
}

/* ---- kv_parse ----------------------------------------------------------- */

static int kv(const char *s, size_t len, struct kv_list *l, struct err *e)
{
	reset(e);
	return kv_parse(s, len, l, e);
}

static int kvs(const char *s, struct kv_list *l, struct err *e)
{
	return kv(s, strlen(s), l, e);
}

static bool val_is(const struct kv_list *l, const char *k, const char *v)
{
	const char *got = kv_get(l, k);

	return got && !strcmp(got, v);
}

static void kv_refused(const char *s, size_t len, const char *what,
		       const char *sub1, const char *sub2)
{
	struct kv_list l = { (void *)1, 42 };
	struct err e;
	int rc = kv(s, len, &l, &e);

	refused(rc, &e, what, sub1, sub2, NULL);
	check(l.n == 0 && l.items == NULL, "%s: list left empty", what);
}

static void test_kv_good(void)
{
	struct kv_list l;
	struct err e;

	check(kvs("entry = score.py\nport = 0\nreplicas = 1\n", &l, &e) == 0 &&
	      l.n == 3 && val_is(&l, "entry", "score.py") &&
	      val_is(&l, "port", "0") && val_is(&l, "replicas", "1") &&
	      !strcmp(l.items[0].key, "entry"),
	      "kv: three lines, in order");
	kv_free(&l);
	check(l.n == 0 && !l.items, "kv: kv_free empties the list");
	kv_free(&l);
	kv_free(NULL);
	check(kvs("  key\t=\t value with  spaces \t", &l, &e) == 0 &&
	      val_is(&l, "key", "value with  spaces"),
	      "kv: blanks trimmed around key and value, kept inside");
	kv_free(&l);
	check(kvs("url = http://h/?a=b#frag", &l, &e) == 0 &&
	      val_is(&l, "url", "http://h/?a=b#frag"),
	      "kv: a value may hold '=' and '#'");
	kv_free(&l);
	check(kvs("empty =\nx=1", &l, &e) == 0 && val_is(&l, "empty", "") &&
	      val_is(&l, "x", "1"), "kv: an empty value, no blanks needed");
	kv_free(&l);
	check(kvs("# c\n\n   # c2\n\t\n_k9 = v", &l, &e) == 0 && l.n == 1 &&
	      val_is(&l, "_k9", "v"), "kv: comments and blank lines skipped");
	kv_free(&l);
	check(kvs("a = 1\r\nb = 2\r\n", &l, &e) == 0 && val_is(&l, "a", "1") &&
	      val_is(&l, "b", "2"), "kv: CRLF line endings");
	kv_free(&l);
	check(kvs("a = x\ty", &l, &e) == 0 && val_is(&l, "a", "x\ty"),
	      "kv: a tab inside a value");
	kv_free(&l);
	check(kvs("a = caf\xc3\xa9 \xff", &l, &e) == 0 &&
	      val_is(&l, "a", "caf\xc3\xa9 \xff"),
	      "kv: UTF-8 and invalid UTF-8 values kept verbatim");
	kv_free(&l);
	check(kv("", 0, &l, &e) == 0 && l.n == 0, "kv: empty buffer");
	check(kv(NULL, 0, &l, &e) == 0 && l.n == 0, "kv: NULL, 0");
	check(kv_get(&l, "a") == NULL, "kv: kv_get of a missing key is NULL");
}

static void test_kv_bad(void)
{
	kv_refused("novalue", 7, "kv: a line without '='", "config line 1",
		   "'novalue'");
	kv_refused("a=1\nKey = 1", 10, "kv: an upper-case key", "line 2",
		   "'Key'");
	kv_refused("1abc = 2", 8, "kv: a key starting with a digit",
		   "'1abc'", NULL);
	kv_refused("a-b = 2", 7, "kv: a dash in a key", "'a-b'", NULL);
	kv_refused("a b = 2", 7, "kv: a blank in a key", "'a b'", NULL);
	kv_refused(" = 3", 4, "kv: no key", "no key", NULL);
	kv_refused("a=1\nb=2\na=3\n", 12, "kv: a key given twice",
		   "config line 3", "first on line 1");
	kv_refused("a=1\nb=\0", 7, "kv: a NUL byte", "line 2",
		   "NUL byte");
	kv_refused("a=\x1b[0m", 6, "kv: a control character", "\\x1b",
		   NULL);
	kv_refused("a=1\r\r\n", 6, "kv: a \\r before the final one", "\\x0d",
		   NULL);
	kv_refused("#\x01\n", 3, "kv: a control character in a comment",
		   "\\x01", NULL);
	kv_refused("k\xc3\xa9 = 1", 7, "kv: a UTF-8 key", "'k\\xc3\\xa9'",
		   NULL);
}

static void test_kv_huge(void)
{
	char *line = repeat('v', 1 << 20, "");
	struct buf b = { 0 };
	struct kv_list l;
	struct err e;
	double t;
	int i;

	memcpy(line, "big = ", 6);
	check(kvs(line, &l, &e) == 0 && strlen(kv_get(&l, "big")) ==
	      (1 << 20) - 6, "kv: a 1 MiB value");
	kv_free(&l);
	line[4] = 'x';
	kv_refused(line, 1 << 20, "kv: a 1 MiB line without '=', short sentence",
		   "'big x vvvv", "...'");
	for (i = 0; i < 100000; i++)
		buf_add(&b, "key_%d = value %d\n", i, i);
	t = now_ms();
	i = kv(b.p, b.n, &l, &e);
	t = now_ms() - t;
	check(i == 0 && l.n == 100000 && val_is(&l, "key_99999", "value 99999"),
	      "kv: 100,000 lines");
	printf("# kv: 100,000 lines in %.1f ms\n", t);
	kv_free(&l);
	buf_add(&b, "key_0 = again\n");
	t = now_ms();
	kv_refused(b.p, b.n, "kv: a duplicate on line 100,001",
		   "line 100001", "first on line 1");
	t = now_ms() - t;
	printf("# kv: ...found in %.1f ms\n", t);
	b.n = 0;
	for (i = 0; i < 100000; i++)
		buf_add(&b, "same = %d\n", i);
	kv_refused(b.p, b.n, "kv: 100,000 lines of one key", "line 2", NULL);
	free(b.p);
	free(line);
}

static int env(const char *s, size_t len, struct kv_list *l, struct err *e);

/* What one parser does with @lines generated lines (timed by best_ms). */
enum parse_kind { P_CTL, P_KV, P_ENV };

static void parse_once(enum parse_kind k, const struct buf *b)
{
	struct ctl_cmd c[NCMD];
	struct kv_list l;
	struct err e;

	if (k == P_CTL) {
		split(b->p, b->n, c, &e);
		return;
	}
	if (k == P_KV ? kv(b->p, b->n, &l, &e) : env(b->p, b->n, &l, &e))
		return;
	kv_free(&l);
}

/* Best of three timings of @k over @lines lines, in ms. */
static double best_ms(enum parse_kind k, int lines)
{
	struct buf b = { 0 };
	double best = 1e9, t;
	int i;

	for (i = 0; i < lines; i++)
		buf_add(&b, k == P_CTL ? "# comment %d\n" : k == P_KV ?
			"key_%d = value %d\n" : "VAR_%d=value %d\n", i, i);
	if (k == P_CTL)
		buf_add(&b, "submit\n");
	for (i = 0; i < 3; i++) {
		t = now_ms();
		parse_once(k, &b);
		t = now_ms() - t;
		best = t < best ? t : best;
	}
	free(b.p);
	return best;
}

/* Linear: 10 times the lines, about 10 times the time (quadratic: 100). */
static void test_scaling(void)
{
	static const char *const names[] = { "ctl", "kv", "env" };

	for (int k = P_CTL; k <= P_ENV; k++) {
		double t10k = best_ms(k, 10000), t100k = best_ms(k, 100000);

		check(t100k < 30 * t10k + 1,
		      "%s: 100,000 lines take %.1f times as long as 10,000 "
		      "(%.1f ms, %.1f ms)", names[k], t100k / t10k, t100k, t10k);
	}
}

static void test_kv_check_keys(void)
{
	static const char *const allowed[] = {
		"entry", "port", "replicas", NULL
	};
	static const char *const none[] = { NULL };
	struct kv_list l;
	struct err e;

	kvs("entry = a\nport = 1", &l, &e);
	check(kv_check_keys(&l, allowed, "local", &e) == 0,
	      "kv_check_keys: known keys");
	kv_free(&l);
	kvs("entry = a\nfoo = 1", &l, &e);
	reset(&e);
	check(kv_check_keys(&l, allowed, "local", &e) == -EINVAL &&
	      !strcmp(e.msg, "unknown config key 'foo' for type local (known: entry, port, replicas)."),
	      "kv_check_keys: exact sentence for an unknown key");
	refused(kv_check_keys(&l, none, "ssh", &e), &e,
		"kv_check_keys: nothing allowed", "(known: none)", NULL);
	refused(kv_check_keys(&l, allowed, NULL, &e), &e,
		"kv_check_keys: no type", "'foo'", NULL);
	kv_free(&l);
	check(kv_check_keys(&l, allowed, "local", &e) == 0,
	      "kv_check_keys: empty list");
	check(kv_check_keys(NULL, allowed, "local", &e) == 0,
	      "kv_check_keys: NULL list");
	check(kv_get(NULL, "a") == NULL, "kv_get: NULL list");
}

static void test_kv_check_many_keys(void)
{
	static const char *const many[] = {
		"a_rather_long_key_number_one", "a_rather_long_key_number_two",
		"a_rather_long_key_number_three", "a_rather_long_key_number_four",
		"a_rather_long_key_number_five", "a_rather_long_key_number_six",
		"a_rather_long_key_number_seven", "a_rather_long_key_number_eight",
		NULL
	};
	struct kv_list l;
	struct err e;

	kvs("zzz = 1", &l, &e);
	refused(kv_check_keys(&l, many, "slurm", &e), &e,
		"kv_check_keys: a long known list is cut short",
		"(known: a_rather_long_key_number_one, ", "...).", NULL);
	kv_free(&l);
}

/* ---- env_parse ---------------------------------------------------------- */

static int env(const char *s, size_t len, struct kv_list *l, struct err *e)
{
	reset(e);
	return env_parse(s, len, l, e);
}

static int envs(const char *s, struct kv_list *l, struct err *e)
{
	return env(s, strlen(s), l, e);
}

static void env_refused(const char *s, size_t len, const char *what,
			const char *sub1, const char *sub2)
{
	struct kv_list l = { (void *)1, 42 };
	struct err e;
	int rc = env(s, len, &l, &e);

	refused(rc, &e, what, sub1, sub2, NULL);
	check(l.n == 0 && l.items == NULL, "%s: list left empty", what);
}

static void test_env_good(void)
{
	struct kv_list l;
	struct err e;

	check(envs("A=1\nB_2=two words  \n", &l, &e) == 0 && l.n == 2 &&
	      val_is(&l, "A", "1") && val_is(&l, "B_2", "two words  "),
	      "env: values verbatim, trailing blanks kept");
	kv_free(&l);
	check(envs("  \tPATH=/usr/bin:/bin", &l, &e) == 0 &&
	      val_is(&l, "PATH", "/usr/bin:/bin"),
	      "env: blanks before the name trimmed");
	kv_free(&l);
	check(envs("X= lead\nY=a=b#c\nZ=", &l, &e) == 0 &&
	      val_is(&l, "X", " lead") && val_is(&l, "Y", "a=b#c") &&
	      val_is(&l, "Z", ""), "env: leading blank, '=' and '#' in values");
	kv_free(&l);
	check(envs("V=x\r\nW=y\r", &l, &e) == 0 && val_is(&l, "V", "x") &&
	      val_is(&l, "W", "y"), "env: a trailing \\r dropped");
	kv_free(&l);
	check(envs("# comment\n\n  # indented\n_u=1\nlower=2\nmlfs_x=3", &l, &e)
	      == 0 && l.n == 3, "env: comments, '_', lower case, mlfs_ prefix");
	kv_free(&l);
	check(envs("U=\xff\xc3\x28", &l, &e) == 0 &&
	      val_is(&l, "U", "\xff\xc3\x28"), "env: invalid UTF-8 value verbatim");
	kv_free(&l);
	check(env("", 0, &l, &e) == 0 && l.n == 0, "env: empty");
}

static void test_env_bad(void)
{
	env_refused("1X=1", 4, "env: a name starting with a digit", "'1X'",
		    "env line 1");
	env_refused("X-Y=1", 5, "env: a dash in a name", "'X-Y'", NULL);
	env_refused("X Y=1", 5, "env: a blank in a name", "'X Y'", NULL);
	env_refused("X =1", 4, "env: a blank before '='", "no blanks", NULL);
	env_refused("=1", 2, "env: no name", "no name", NULL);
	env_refused("A=1\nNOEQ", 8, "env: no '='", "env line 2", "no '='");
	env_refused("MLFS_RUN=x", 10, "env: MLFS_RUN is reserved",
		    "'MLFS_RUN'", "reserved");
	env_refused("MLFS_=x", 7, "env: MLFS_ is reserved", "reserved", NULL);
	env_refused("A=1\nB=2\nA=2", 11, "env: a name given twice",
		    "env line 3", "first on line 1");
	env_refused("A=x\0y", 5, "env: a NUL byte in a value", "NUL",
		    "line 1");
	env_refused("\xc3\xa9=1", 4, "env: a UTF-8 name", "\\xc3\\xa9", NULL);
}

/* A line without '=' may be a secret whose NAME= was forgotten: the
 * sentence (which goes to events) does not repeat it. */
static void test_env_secret(void)
{
	struct kv_list l;
	struct err e;

	check(env("sk_live_0123", 12, &l, &e) == -EINVAL &&
	      strstr(e.msg, "line 1") && !strstr(e.msg, "sk_live"),
	      "env: a line without '=' is not repeated in the sentence");
}

static void test_env_huge(void)
{
	char *line = repeat('v', 1 << 20, "\n");
	struct buf b = { 0 };
	struct kv_list l;
	struct err e;
	double t;
	int i;

	memcpy(line, "BIG=", 4);
	check(envs(line, &l, &e) == 0 &&
	      strlen(kv_get(&l, "BIG")) == (1 << 20) - 4, "env: a 1 MiB value");
	kv_free(&l);
	for (i = 0; i < 100000; i++)
		buf_add(&b, "VAR_%d=value %d\n", i, i);
	t = now_ms();
	i = env(b.p, b.n, &l, &e);
	t = now_ms() - t;
	check(i == 0 && l.n == 100000 && val_is(&l, "VAR_12345", "value 12345"),
	      "env: 100,000 lines");
	printf("# env: 100,000 lines in %.1f ms\n", t);
	kv_free(&l);
	buf_add(&b, "MLFS_OUTPUTS=/tmp\n");
	env_refused(b.p, b.n, "env: MLFS_ on line 100,001", "line 100001",
		    NULL);
	free(b.p);
	free(line);
}

/* ---- parse_int ---------------------------------------------------------- */

static void int_ok(const char *s, long min, long max, long want)
{
	struct err e;
	long v = 12345;

	check(parse_int(s, min, max, &v, "n", &e) == 0 && v == want,
	      "int: \"%s\" in [%ld, %ld] is %ld", s, min, max, want);
}

static void int_bad(const char *s, long min, long max)
{
	struct err e;
	long v = 12345;
	int rc = parse_int(s, min, max, &v, "n", &e);

	refused(rc, &e, "int: rejects a value", "n must be an integer", NULL);
	check(v == 12345, "int: \"%.40s\" in [%ld, %ld] leaves *out alone",
	      s ? s : "(null)", min, max);
}

static void test_int(void)
{
	char *huge = repeat('9', 1 << 20, "");
	struct err e;
	long v;

	int_ok("5", 1, 10, 5);
	int_ok("1", 1, 10, 1);
	int_ok("10", 1, 10, 10);
	int_ok("007", 0, 10, 7);
	int_ok("+3", 0, 10, 3);
	int_ok("-1", -5, 5, -1);
	int_ok("-0", -5, 5, 0);
	int_ok("9223372036854775807", LONG_MIN, LONG_MAX, LONG_MAX);
	int_ok("-9223372036854775808", LONG_MIN, LONG_MAX, LONG_MIN);
	int_bad("0", 1, 10);
	int_bad("11", 1, 10);
	int_bad("-1", 0, 10);
	int_bad("", 0, 10);
	int_bad(NULL, 0, 10);
	int_bad(" 5", 0, 10);
	int_bad("5 ", 0, 10);
	int_bad("5x", 0, 10);
	int_bad("0x10", 0, 100);
	int_bad("1e3", 0, 10000);
	int_bad("+", 0, 10);
	int_bad("--1", -5, 5);
	int_bad("9223372036854775808", LONG_MIN, LONG_MAX);
	int_bad("-9223372036854775809", LONG_MIN, LONG_MAX);
	int_bad("99999999999999999999999999", LONG_MIN, LONG_MAX);
	int_bad(huge, LONG_MIN, LONG_MAX);
	reset(&e);
	parse_int("abc", 1, 1024, &v, "nodes", &e);
	check(!strcmp(e.msg, "nodes must be an integer from 1 to 1024, not 'abc'."),
	      "int: exact sentence");
	free(huge);
}

/* ---- parse_mem_mib ------------------------------------------------------ */

static void mem_ok(const char *s, uint64_t want)
{
	uint64_t v = 0;
	struct err e;
	int rc = parse_mem_mib(s, &v, &e);

	check(rc == 0 && v == want,
	      "mem: \"%s\" is %llu MiB (got %llu)", s,
	      (unsigned long long)want, (unsigned long long)v);
}

static void mem_bad(const char *s, const char *sub)
{
	uint64_t v = 777;
	struct err e;
	char what[96];
	int rc;

	reset(&e);
	rc = parse_mem_mib(s, &v, &e);
	snprintf(what, sizeof(what), "mem: rejects \"%.40s\"", s ? s : "(null)");
	refused(rc, &e, what, sub, NULL);
	check(v == 777, "mem: ...and leaves *mib alone");
}

static void test_mem(void)
{
	char *huge = repeat('9', 1 << 20, "G");

	mem_ok("512M", 512);
	mem_ok("1G", 1024);
	mem_ok("1.5G", 1536);
	mem_ok("1.25G", 1280);
	mem_ok("2048", 2048);
	mem_ok("1.5", 2);
	mem_ok("0.1M", 1);
	mem_ok("1T", 1048576);
	mem_ok("1K", 1);
	mem_ok("0.5K", 1);
	mem_ok("1024K", 1);
	mem_ok("1025K", 2);
	mem_ok("3145728K", 3072);
	mem_ok("1g", 1024);
	mem_ok("1GB", 1024);
	mem_ok("1GiB", 1024);
	mem_ok("1.999999999G", 2048);
	mem_ok("16777215T", 17592184995840ull);
	mem_ok("17592186044415", 17592186044415ull);
	mem_bad("0", "more than 0");
	mem_bad("0.0G", "more than 0");
	mem_bad("0K", "more than 0");
	mem_bad("10Q", "'10Q'");
	mem_bad("-1G", "'-1G'");
	mem_bad("", "like 512M");
	mem_bad(NULL, "like 512M");
	mem_bad("G", "like 512M");
	mem_bad("1.G", "like 512M");
	mem_bad(".5G", "like 512M");
	mem_bad("1 G", "like 512M");
	mem_bad(" 1G", "like 512M");
	mem_bad("1G ", "like 512M");
	mem_bad("1.5.5G", "like 512M");
	mem_bad("1e3M", "like 512M");
	mem_bad("1,5G", "like 512M");
	mem_bad("1GG", "like 512M");
	mem_bad("1B", "like 512M");
	mem_bad("1.0000000001G", "like 512M");
	mem_bad("1G\n", "\\x0a");
	mem_bad("16777216T", "too large");
	mem_bad("17592186044416", "too large");
	mem_bad("18446744073709551616", "too large");
	mem_bad("99999999999999999999999999999G", "too large");
	mem_bad(huge, "too large");
	free(huge);
}

/* ---- parse_duration ----------------------------------------------------- */

static void dur_ok(const char *s, uint64_t want)
{
	uint64_t v = 0;
	struct err e;
	int rc = parse_duration(s, &v, &e);

	check(rc == 0 && v == want,
	      "time: \"%s\" is %llu s (got %llu)", s,
	      (unsigned long long)want, (unsigned long long)v);
}

static void dur_bad(const char *s, const char *sub)
{
	uint64_t v = 777;
	struct err e;
	char what[96];
	int rc;

	reset(&e);
	rc = parse_duration(s, &v, &e);
	snprintf(what, sizeof(what), "time: rejects \"%.40s\"", s ? s : "(null)");
	refused(rc, &e, what, sub, NULL);
	check(v == 777, "time: ...and leaves *secs alone");
}

static void test_duration(void)
{
	char *huge = repeat('9', 1 << 20, "");

	dur_ok("1:00:00", 3600);
	dur_ok("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
	dur_ok("90s", 90);
	dur_ok("10m", 600);
	dur_ok("2h", 7200);
	dur_ok("1d", 86400);
	dur_ok("1D", 86400);
	dur_ok("90", 5400);
	dur_ok("1:30", 90);
	dur_ok("0:30", 30);
	dur_ok("2-3", 2 * 86400 + 3 * 3600);
	dur_ok("2-3:30", 2 * 86400 + 3 * 3600 + 30 * 60);
	dur_ok("0-0:0:1", 1);
	dur_ok("100:00:00", 360000);
	dur_ok("3650d", 3650ull * 86400);
	dur_ok("3650-00:00:00", 3650ull * 86400);
	dur_bad("0", "more than 0");
	dur_bad("0s", "more than 0");
	dur_bad("0-0", "more than 0");
	dur_bad("-1", "like 90");
	dur_bad("1:60", "seconds must be below 60");
	dur_bad("1:60:00", "minutes must be below 60");
	dur_bad("1-24", "hours must be below 24");
	dur_bad("1-1:60", "minutes must be below 60");
	dur_bad("", "like 90");
	dur_bad(NULL, "like 90");
	dur_bad("1::2", "like 90");
	dur_bad("1:2:3:4", "like 90");
	dur_bad("1-2-3", "like 90");
	dur_bad("1-", "like 90");
	dur_bad(":30", "like 90");
	dur_bad("1h30m", "like 90");
	dur_bad("1.5h", "like 90");
	dur_bad(" 1h", "like 90");
	dur_bad("1h ", "like 90");
	dur_bad("h", "like 90");
	dur_bad("1x", "'1x'");
	dur_bad("1:00:00\n", "\\x0a");
	dur_bad("3651d", "too long");
	dur_bad("99999999999999999999999", "too long");
	dur_bad("99999999999999999999999-23:59:59", "too long");
	dur_bad("18446744073709551615s", "too long");
	dur_bad(huge, "too long");
	free(huge);
}

/* ---- resources_parse ---------------------------------------------------- */

static const struct resources sentinel = { 9, 9, 9, 9, 9 };

static int resn(const char *s, size_t len, struct resources *r,
		struct err *e)
{
	*r = sentinel;
	reset(e);
	return resources_parse(s, len, r, e);
}

static int res(const char *s, struct resources *r, struct err *e)
{
	return resn(s, strlen(s), r, e);
}

static void res_badn(const char *s, size_t len, const char *what,
		     const char *sub)
{
	struct resources r;
	struct err e;
	int rc = resn(s, len, &r, &e);

	refused(rc, &e, what, sub, NULL);
	check(!memcmp(&r, &sentinel, sizeof(r)), "%s: leaves *r alone", what);
}

static void res_bad(const char *s, const char *what, const char *sub)
{
	res_badn(s, strlen(s), what, sub);
}

static void test_procs_per_node(void)
{
	struct resources r;
	struct err e;

	check(res("", &r, &e) == 0 && r.procs_per_node == 1,
	      "resources: procs_per_node defaults to 1");
	check(res("nodes = 2\nprocs_per_node = 4\ngpus = 8", &r, &e) == 0 &&
	      r.procs_per_node == 4 && r.nodes == 2 && r.gpus == 8,
	      "resources: procs_per_node 4 with 8 GPUs");
	check(res("procs_per_node = 256", &r, &e) == 0 &&
	      r.procs_per_node == 256, "resources: procs_per_node 256");
	res_bad("procs_per_node = 0", "resources: procs_per_node 0",
		"procs_per_node must be an integer from 1 to 256, not '0'.");
	res_bad("procs_per_node = 257", "resources: procs_per_node 257",
		"procs_per_node must be an integer from 1 to 256, not '257'.");
	res_bad("procs_per_node = four", "resources: procs_per_node four",
		"not 'four'");
	res_bad("procs_per_node = 2.5", "resources: procs_per_node 2.5",
		"not '2.5'");
	res_bad("procs_per_node = -1", "resources: procs_per_node -1",
		"not '-1'");
	res_bad("procs_per_node =", "resources: procs_per_node empty",
		"procs_per_node must be");
	res_bad("gpus = 3\nprocs_per_node = 2", "resources: 3 GPUs, 2 procs",
		"gpus = 3 does not split evenly across procs_per_node = 2:"
		" make gpus a multiple of it.");
	res_bad("procs_per_node = 4\ngpus = 2", "resources: 2 GPUs, 4 procs",
		"does not split evenly");
}

static void test_resources(void)
{
	struct resources r;
	struct err e;

	check(res("", &r, &e) == 0 && r.nodes == 1 && r.cpus == 1 &&
	      r.gpus == 0 && r.memory_mib == 0 && r.time_secs == 0,
	      "resources: empty is all defaults");
	check(res("# just a comment\n\n", &r, &e) == 0 && r.nodes == 1,
	      "resources: comments only");
	check(res("nodes = 2\ncpus = 4\ngpus = 1\nmemory = 1.5G\ntime = 1:00:00\n",
		  &r, &e) == 0 && r.nodes == 2 && r.cpus == 4 && r.gpus == 1 &&
	      r.memory_mib == 1536 && r.time_secs == 3600,
	      "resources: every key");
	check(res("cpus=8\r\n", &r, &e) == 0 && r.cpus == 8 && r.nodes == 1,
	      "resources: one key, others default");
	check(res("nodes = 1024\ncpus = 4096\ngpus = 64", &r, &e) == 0 &&
	      r.nodes == 1024 && r.cpus == 4096 && r.gpus == 64,
	      "resources: upper bounds");
	res_bad("disk = 10G", "resources: an unknown key",
		"unknown resources key 'disk' (known: nodes, cpus, gpus, memory,"
		" time, procs_per_node, array)");
	check(res("array = 0-99%8", &r, &e) == 0 && r.array_n == 100 &&
	      r.array_max == 8 && !strcmp(r.array, "0-99%8"),
	      "resources: array 0-99%%8");
	check(res("array = 5", &r, &e) == 0 && r.array_n == 1 &&
	      r.array_max == 0, "resources: array of one index");
	check(res("array = 1,3,5-9:2,20-21", &r, &e) == 0 && r.array_n == 7,
	      "resources: array list with a step");
	check(res("", &r, &e) == 0 && r.array_n == 0 && !r.array[0],
	      "resources: no array by default");
	res_bad("array = 9-0", "resources: array reversed",
		"array range 9-0 is reversed: write 0-9.");
	res_bad("array = 0-10000", "resources: array of 10001 tasks",
		"has more than 10000 tasks");
	res_bad("array = 0-9%0", "resources: array %0", "at least 1");
	res_bad("array = 1,2,1", "resources: array index twice",
		"gives index 1 twice");
	res_bad("array = x", "resources: array garbage", "array must be like");
	res_bad("array = 0-1000001", "resources: array index too large",
		"array index 1000001 is too large");
	res_bad("array = 0-3\nnodes = 2", "resources: array of 2 nodes",
		"cannot be combined with nodes");
	res_bad("nodes = 0", "resources: nodes 0",
		"nodes must be an integer from 1 to 1024, not '0'.");
	res_bad("nodes = 1025", "resources: nodes 1025", "'1025'");
	res_bad("cpus = 4097", "resources: cpus 4097", "cpus must be");
	check(res("cpus = 0.5", &r, &e) == 0 && r.cpus == 1 &&
	      r.cpu_milli == 500, "resources: cpus 0.5 is a half, one for schedulers");
	check(res("cpus = 2.25", &r, &e) == 0 && r.cpus == 3 &&
	      r.cpu_milli == 2250, "resources: cpus 2.25");
	check(res("cpus = 3", &r, &e) == 0 && r.cpu_milli == 3000,
	      "resources: whole cpus in thousandths too");
	check(res("", &r, &e) == 0 && r.cpu_milli == 0 && r.cpus == 1,
	      "resources: cpus not set: one for schedulers, no quota");
	res_bad("cpus = 0.0001", "resources: cpus 0.0001", "cpus must be a number");
	res_bad("cpus = 0.0", "resources: cpus 0.0", "cpus must be a number");
	res_bad("cpus = 4096.5", "resources: cpus 4096.5", "not '4096.5'");
	res_bad("cpus = 1.", "resources: cpus 1.", "cpus must be a number");
	res_bad("cpus = .5", "resources: cpus .5", "cpus must be a number");
	res_bad("gpus = 65", "resources: gpus 65", "gpus must be");
	res_bad("gpus = -1", "resources: gpus -1", "gpus must be");
	res_bad("memory = 10Q", "resources: memory 10Q", "'10Q'");
	res_bad("memory =", "resources: empty memory", "memory must be");
	res_bad("time = 0", "resources: time 0", "time must be more than 0");
	res_bad("time = 1:60", "resources: time 1:60", "seconds");
	res_bad("nodes = 1\nnodes = 2", "resources: a key twice",
		"resources line 2");
	res_bad("nodes 2", "resources: no '='", "resources line 1");
	res_badn("nodes = 2\0", 10, "resources: a NUL byte",
		 "resources line 1 contains a NUL byte.");
	test_procs_per_node();
}

/* ---- param_parse_line, metric_param_line -------------------------------- */

static void param_ok(int metrics, const char *s, const char *name,
		     const char *value)
{
	char n[129] = "";
	const char *v = NULL;
	size_t vl = 0;
	int rc = metrics ? metric_param_line(s, n, sizeof(n), &v, &vl) :
		 param_parse_line(s, n, sizeof(n), &v, &vl);

	check(rc == 0 && !strcmp(n, name) && vl == strlen(value) &&
	      !memcmp(v, value, vl), "param%s: \"%s\" -> %s = '%s'",
	      metrics ? " (metrics)" : "", s, name, value);
}

static void param_bad(int metrics, const char *s, const char *what)
{
	char n[129];
	const char *v;
	size_t vl;
	int rc = metrics ? metric_param_line(s, n, sizeof(n), &v, &vl) :
		 param_parse_line(s, n, sizeof(n), &v, &vl);

	check(rc == -EINVAL, "param%s: rejects %s", metrics ? " (metrics)" :
	      "", what);
}

static void test_params(void)
{
	char *long_v = repeat('v', PARAM_VALUE_MAX + 1, "");
	char *ok_v = repeat('v', PARAM_VALUE_MAX, "");
	char line[PARAM_VALUE_MAX + 16];

	param_ok(0, "kernel linear", "kernel", "linear");
	param_ok(0, "  lr\t0.1  \r", "lr", "0.1");
	param_ok(0, "cmd python3 train.py --lr 0.1", "cmd",
		 "python3 train.py --lr 0.1");
	param_ok(0, "note caf\xc3\xa9 <b>&", "note", "caf\xc3\xa9 <b>&");
	param_ok(1, "kernel linear", "kernel", "linear");
	param_ok(1, "optimizer adam beta 0.9", "optimizer", "adam beta 0.9");
	param_ok(1, "tag 1st-try", "tag", "1st-try");
	param_bad(0, "", "an empty line");
	param_bad(0, "kernel", "a name alone");
	param_bad(0, "kernel   \r", "a blank value");
	param_bad(0, "ker$nel x", "a bad name");
	param_bad(0, "=x y", "a name starting with =");
	snprintf(line, sizeof(line), "k %s", long_v);
	param_bad(0, line, "a value over PARAM_VALUE_MAX");
	snprintf(line, sizeof(line), "k %s", ok_v);
	param_ok(0, line, "k", ok_v);
	param_bad(1, "loss 0.3 x", "a number with a bad step (metric)");
	param_bad(1, "loss 0.3 1 2", "a number and three words (metric)");
	param_bad(1, "loss nan", "nan: a metric gone wrong, not text");
	param_bad(1, "loss -inf", "-inf");
	param_bad(1, "loss 0x10", "hex");
	param_bad(1, "loss 1e999", "overflow");
	free(long_v);
	free(ok_v);
}

/* ---- metric_parse_line -------------------------------------------------- */

static void metric_ok(const char *s, int want, const char *name, double v,
		      long long step)
{
	char n[129] = "";
	double got = -1;
	long long st = -1;
	int rc;

	rc = metric_parse_line(s, n, sizeof(n), &got, &st);
	check(rc == want && !strcmp(n, name) && got == v &&
	      (want == 0 ? st == -1 : st == step),
	      "metric: \"%s\" -> %s %g %lld (rc %d)", s, name, v, step, rc);
}

static void metric_bad(const char *s, const char *what)
{
	char n[129] = "unchanged";
	double v = 7;
	long long st = 7;
	int rc = metric_parse_line(s, n, sizeof(n), &v, &st);

	check(rc == -EINVAL && v == 7 && st == 7 && !strcmp(n, "unchanged"),
	      "metric: rejects %s", what);
}

static void test_metric_good(void)
{
	char *n128 = repeat('n', 128, " 1");
	char name[129], small[5];
	double v;

	metric_ok("loss 0.5", 0, "loss", 0.5, 0);
	metric_ok("loss 0.5 10", 1, "loss", 0.5, 10);
	metric_ok("  acc\t0.9  3  ", 1, "acc", 0.9, 3);
	metric_ok("train/loss:avg-1.x_y 1e-3 0", 1, "train/loss:avg-1.x_y",
		  1e-3, 0);
	metric_ok("loss -1.5e+10", 0, "loss", -1.5e10, 0);
	metric_ok("loss .5", 0, "loss", 0.5, 0);
	metric_ok("loss 5.", 0, "loss", 5.0, 0);
	metric_ok("loss +1", 0, "loss", 1.0, 0);
	metric_ok("loss 1\r", 0, "loss", 1.0, 0);
	metric_ok("loss 1e-400", 0, "loss", 0.0, 0);
	metric_ok("step 1 9223372036854775807", 1, "step", 1.0, LLONG_MAX);
	check(metric_parse_line(n128, name, sizeof(name), &v, NULL) == 0 &&
	      strlen(name) == 128, "metric: a name of 128 characters");
	check(metric_parse_line("loss 1 5", small, sizeof(small), &v, NULL)
	      == 1 && !strcmp(small, "loss"),
	      "metric: a name that just fits name_sz, step NULL");
	check(metric_parse_line("lossy 1", small, sizeof(small), &v, NULL)
	      == -EINVAL, "metric: a name that does not fit name_sz");
	free(n128);
}

static void test_metric_bad(void)
{
	char *n129 = repeat('n', 129, " 1");
	char *huge = repeat('1', 1 << 20, "");

	metric_bad("", "an empty line");
	metric_bad("loss", "a name alone");
	metric_bad("loss abc", "a word as value");
	metric_bad("loss nan", "nan");
	metric_bad("loss inf", "inf");
	metric_bad("loss -infinity", "-infinity");
	metric_bad("loss 1e999", "an overflowing value");
	metric_bad("loss 0x10", "a hex value");
	metric_bad("loss 1e", "an exponent without digits");
	metric_bad("loss .", "a lone point");
	metric_bad("loss 1 -1", "a negative step");
	metric_bad("loss 1 1.5", "a fractional step");
	metric_bad("loss 1 99999999999999999999", "an overflowing step");
	metric_bad("loss 1 2 3", "4 words");
	metric_bad("bad$name 1", "a '$' in the name");
	metric_bad("caf\xc3\xa9 1", "a UTF-8 name");
	metric_bad("\xff\xfe 1", "an invalid UTF-8 name");
	metric_bad("loss\x1b 1", "a control character in the name");
	metric_bad("loss 1\x0b", "a vertical tab");
	metric_bad(n129, "a name of 129 characters");
	metric_bad(huge, "a 1 MiB word");
	huge[0] = 'x';
	huge[1] = ' ';
	metric_bad(huge, "a 1 MiB value");
	metric_bad(NULL, "NULL");
	check(metric_parse_line("loss 1", NULL, 129, &(double){ 0 }, NULL) ==
	      -EINVAL, "metric: rejects a NULL name buffer");
	free(n129);
	free(huge);
}

/* ---- first_word --------------------------------------------------------- */

static int fw(const char *s, size_t len, char *out, size_t sz, struct err *e)
{
	reset(e);
	memset(out, 'X', sz);
	return first_word(s, len, out, sz, e);
}

static void fw_ok(const char *s, const char *want)
{
	char out[64];
	struct err e;

	check(fw(s, strlen(s), out, sizeof(out), &e) == 0 && !strcmp(out, want),
	      "first_word: \"%s\" -> \"%s\"", s, want);
}

static void fw_bad(const char *s, size_t len, const char *what,
		   const char *sub)
{
	char out[64];
	struct err e;
	int rc = fw(s, len, out, sizeof(out), &e);

	refused(rc, &e, what, sub, NULL);
	check(out[0] == '\0', "%s: out is empty", what);
}

static void test_first_word(void)
{
	char *w63 = repeat('w', 63, "\n");
	char *w64 = repeat('w', 64, "\n");
	char *huge = repeat('w', 1 << 20, "");

	fw_ok("local\n", "local");
	fw_ok("local", "local");
	fw_ok("  slurm \t\n\n \t\n", "slurm");
	fw_ok("ssh\r\n\r\n", "ssh");
	fw_ok("", "");
	fw_ok("\n", "");
	fw_ok(" \t \n  \n", "");
	fw_ok("m:1\n", "m:1");
	w63[63] = '\0';
	fw_ok(w63, w63);
	fw_bad("local remote\n", 13, "first_word: two words",
	       "'local remote'");
	fw_bad("local\nremote\n", 13, "first_word: a second line",
	       "line 2");
	fw_bad("\nlocal", 6, "first_word: a word on line 2 only", "line 2");
	fw_bad(w64, 65, "first_word: 64 bytes into 64", "too long");
	fw_bad(huge, 1 << 20, "first_word: 1 MiB", "too long");
	fw_bad("loc\0al", 6, "first_word: a NUL byte", "NUL");
	fw_bad("loc\x1b" "al", 6, "first_word: a control character",
	       "\\x1b");
	fw_bad("a\n\n\n\x01", 5, "first_word: a control character on line 4",
	       "line 4");
	check(first_word("a", 1, w64, 0, NULL) == -EINVAL,
	      "first_word: out_sz 0");
	free(w63);
	free(w64);
	free(huge);
}

/* ---- inputs the fuzzers found (tests/fuzz/regress/) ---------------------- */

/*
 * fuzz_resources, tests/fuzz/regress/resources/mem-huge-kib-saturated:
 * integer parts saturated at 1e15, which divided by 1024 for K came out
 * under the limit, so this 46-digit size was accepted as 976562500000 MiB.
 */
static void test_regress_mem_kib(void)
{
	mem_bad("6777777777777777777777777777777777777777777777K", "too large");
	mem_bad("99999999999999999999K", "too large");
	mem_bad("18014398509481984K", "too large");
	mem_ok("18014398509480960K", 17592186044415ull);
	mem_bad("18014398509480961K", "too large");
	mem_ok("16777215.999999T", 17592186044415ull);
	mem_bad("16777215.9999999T", "too large");
}

/*
 * Found by review while strengthening fuzz_resources: duration fields
 * saturated at 1e15 and 1e15 * 86400 wrapped 64 bits (refused only by
 * luck).  Fields now saturate at 1e12.
 */
static void test_regress_duration_wrap(void)
{
	dur_bad("999999999999999999d", "too long");
	dur_bad("213503982334602d", "too long");
	dur_bad("213503982334602-0", "too long");
	dur_bad("5124095576030432:0:0", "too long");
	dur_bad("307445734561825861", "too long");
}

static void test_regressions(void)
{
	test_regress_mem_kib();
	test_regress_duration_wrap();
}

/* ---- after_parse ----------------------------------------------------------- */

static int aft(const char *s, struct after_list *l, struct err *e)
{
	reset(e);
	return after_parse(s, strlen(s), l, e);
}

static void aft_bad(const char *s, const char *what, const char *sub)
{
	struct after_list *l = malloc(sizeof(*l));
	struct err e;

	refused(aft(s, l, &e), &e, what, sub, NULL);
	free(l);
}

static void test_after(void)
{
	struct after_list *l = malloc(sizeof(*l));
	char big[AFTER_MAX * 8 + 64];
	struct err e;
	size_t n = 0;

	check(!aft("", l, &e) && l->n == 0, "after: empty is no run");
	check(!aft("# none\n\n  \n", l, &e) && l->n == 0,
	      "after: comments and blank lines");
	check(!aft("prep", l, &e) && l->n == 1 && !strcmp(l->deps[0].name,
	      "prep") && !l->deps[0].any, "after: a name, Completed needed");
	check(!aft("a Completed\n\tb any\r\nc", l, &e) && l->n == 3 &&
	      !l->deps[0].any && l->deps[1].any && !l->deps[2].any &&
	      !strcmp(l->deps[1].name, "b"), "after: conditions, CRLF, tabs");
	aft_bad("a done", "after: an unknown condition", "not a condition");
	aft_bad("a any more", "after: three words", "one run");
	aft_bad("../etc", "after: a bad name", NULL);
	aft_bad("a\nb\na any", "after: a name twice", "twice");
	reset(&e);
	refused(after_parse("a\0b", 3, l, &e), &e, "after: a NUL byte", NULL);
	for (int i = 0; i <= AFTER_MAX; i++)
		n += snprintf(big + n, sizeof(big) - n, "r%d\n", i);
	aft_bad(big, "after: one run too many", "at most");
	big[n - 4] = '\0';	/* drop the last line: AFTER_MAX runs */
	check(!aft(big, l, &e) && l->n == AFTER_MAX, "after: %d runs",
	      AFTER_MAX);
	free(l);
}

/* ---- inputs_parse ---------------------------------------------------------- */

static int inp(const char *s, struct input_list *l, struct err *e)
{
	reset(e);
	return inputs_parse(s, strlen(s), l, e);
}

static void inp_bad(const char *s, const char *what, const char *sub)
{
	struct input_list *l = malloc(sizeof(*l));
	struct err e;

	refused(inp(s, l, &e), &e, what, sub, NULL);
	free(l);
}

static void test_inputs(void)
{
	struct input_list *l = malloc(sizeof(*l));
	char big[INPUTS_MAX * 16 + 64];
	struct err e;
	size_t n = 0;

	check(!inp("# none\n\n", l, &e) && l->n == 0, "inputs: none");
	check(!inp("data /srv/my data/\r\n", l, &e) && l->n == 1 &&
	      l->in[0].kind == INPUT_PATH && !strcmp(l->in[0].name, "data") &&
	      !strcmp(l->in[0].path, "/srv/my data"),
	      "inputs: an absolute path with a space, trailing / dropped, CRLF");
	check(!inp("prev runs/a/outputs\n_x2 runs/a/outputs/sub/f.csv", l, &e) &&
	      l->n == 2 && l->in[0].kind == INPUT_RUN &&
	      !strcmp(l->in[0].obj, "a") && !*l->in[0].path &&
	      !strcmp(l->in[1].path, "sub/f.csv"), "inputs: a run's outputs");
	check(!inp("m models/fraud/3/w.bin", l, &e) && l->n == 1 &&
	      l->in[0].kind == INPUT_MODEL && !strcmp(l->in[0].obj, "fraud") &&
	      !strcmp(l->in[0].ver, "3") && !strcmp(l->in[0].path, "w.bin"),
	      "inputs: a model version's file");
	check(!inp("root /", l, &e) && !strcmp(l->in[0].path, "/"),
	      "inputs: / stays /");
	inp_bad("1x /a", "inputs: a digit first", "not an input name");
	inp_bad("a-b /a", "inputs: a dash in the name", "not an input name");
	inp_bad("data", "inputs: no path", "no path");
	inp_bad("data rel/x", "inputs: a relative path", "runs/RUN/outputs");
	inp_bad("data runs/a/work", "inputs: not outputs", "runs/RUN/outputs");
	inp_bad("data runs/a", "inputs: a run alone", "runs/RUN/outputs");
	inp_bad("data models/m", "inputs: a model alone", "models/MODEL");
	inp_bad("data runs/../outputs", "inputs: a bad run name",
		"runs/RUN/outputs");
	inp_bad("data runs/a/outputs/../../files", "inputs: .. below outputs",
		"'..'");
	inp_bad("data models/m/1/x/..", "inputs: .. at the end", "'..'");
	inp_bad("a /x\nb /y\na /z", "inputs: a name twice", "twice");
	inp_bad("a /x\x01y", "inputs: a control byte", "control");
	reset(&e);
	refused(inputs_parse("a /x\0y", 6, l, &e), &e, "inputs: a NUL byte",
		NULL);
	check(!inp("a /x..y/..z", l, &e), "inputs: dots that are not '..'");
	for (int i = 0; i <= INPUTS_MAX; i++)
		n += snprintf(big + n, sizeof(big) - n, "i%d /d%d\n", i, i);
	inp_bad(big, "inputs: one too many", "at most");
	free(l);
}

int main(void)
{
	test_err_set();
	test_name_good();
	test_name_bad();
	test_ctl_good();
	test_ctl_words();
	test_ctl_bad();
	test_ctl_huge();
	test_kv_good();
	test_kv_bad();
	test_kv_huge();
	test_scaling();
	test_kv_check_keys();
	test_kv_check_many_keys();
	test_env_good();
	test_env_bad();
	test_env_secret();
	test_env_huge();
	test_int();
	test_mem();
	test_duration();
	test_resources();
	test_after();
	test_inputs();
	test_metric_good();
	test_metric_bad();
	test_params();
	test_first_word();
	test_regressions();
	printf("%d passed, %d failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
