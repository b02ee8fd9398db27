// SPDX-License-Identifier: MIT
/*
 * Pure parsers, see parse.h: names, ctl lines, key/value lists (config,
 * env) and one-value files; numbers, sizes, durations, resources and
 * metrics are in parse_num.c.  Any thread (no state).
 *
 * Inputs come from users (writes to control and setting files) and from
 * run processes (the metrics file): they may be huge, binary or hostile.
 * So every loop here is linear in its input, nothing recurses, and
 * duplicate keys are found with a hash set rather than by comparing every
 * pair.  Sentences quote offending values through quote(), which truncates
 * them and escapes everything but printable ASCII, so that an `error` file
 * or the `events` stream never carries terminal escapes, NUL bytes or
 * broken UTF-8.
 *
 * Sentences start in lower case (a caller may prefix "cannot submit: ")
 * and end with a period.
 */
#include "parse.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/hash.h"
#include "parse_i.h"

/* ---- sentences ---------------------------------------------------------- */

static const char *quote(struct quote *q, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = len < QUOTE_IN_MAX ? len : QUOTE_IN_MAX;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '\\' || c == '\'') {
			q->s[o++] = '\\';
			q->s[o++] = c;
		} else if (c >= 0x20 && c < 0x7f) {
			q->s[o++] = c;
		} else {
			q->s[o++] = '\\';
			q->s[o++] = 'x';
			q->s[o++] = hex[c >> 4];
			q->s[o++] = hex[c & 15];
		}
	}
	if (len > n) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o] = '\0';
	return q->s;
}

const char *quote_str(struct quote *q, const char *s)
{
	return s ? quote(q, s, strlen(s)) : quote(q, "", 0);
}

/* ---- characters and lines ----------------------------------------------- */

/* A NUL byte or a control character other than tab. */
static bool is_bad_byte(char c)
{
	unsigned char u = c;

	return (u < 0x20 && u != '\t') || u == 0x7f;
}

static size_t find_bad_byte(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (is_bad_byte(s[i]))
			break;
	return i;
}

/* "<what> line <no> contains …", or "<what> contains …" when @no is 0. */
static int bad_byte(struct err *e, const char *what, size_t no, char c)
{
	char where[64];
	struct quote q;

	if (no)
		snprintf(where, sizeof(where), "%s line %zu", what, no);
	else
		snprintf(where, sizeof(where), "%s", what);
	if (!c)
		return err_set(e, -EINVAL, "%s contains a NUL byte.", where);
	return err_set(e, -EINVAL, "%s contains the control character '%s'.",
		       where, quote(&q, &c, 1));
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static bool is_blank_span(const char *s, size_t n)
{
	trim(&s, &n);
	return n == 0;
}

struct lines {
	const char *p, *end;
	size_t no;		/* number of the line last returned, from 1 */
};

static void lines_init(struct lines *it, const char *buf, size_t len)
{
	it->p = buf;
	it->end = buf ? buf + len : buf;
	it->no = 0;
}

/*
 * The next line, without its '\n' and without one trailing '\r' (files
 * saved by Windows editors); false at the end.  No line follows a final
 * '\n'.
 */
static bool next_line(struct lines *it, const char **s, size_t *n)
{
	const char *nl;

	if (it->p >= it->end)
		return false;
	nl = memchr(it->p, '\n', it->end - it->p);
	*s = it->p;
	*n = (nl ? nl : it->end) - it->p;
	it->p = nl ? nl + 1 : it->end;
	it->no++;
	if (*n && (*s)[*n - 1] == '\r')
		(*n)--;
	return true;
}

/* ---- names -------------------------------------------------------------- */

static bool is_name_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

int name_valid(const char *s, struct err *e)
{
	struct quote q, qc;
	size_t len, i;

	if (!s || !*s)
		return err_set(e, -EINVAL, "a name must not be empty.");
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return err_set(e, -EINVAL, "'%s' is not a valid name.", s);
	len = strlen(s);
	if (!is_alnum(s[0]))
		return err_set(e, -EINVAL,
			       "name '%s' must start with a letter or a digit.",
			       quote(&q, s, len));
	for (i = 1; i < len && is_name_char(s[i]); i++)
		;
	if (i < len)
		return err_set(e, -EINVAL,
			       "name '%s' contains '%s' (at position %zu); use only letters, digits, '.', '_' and '-'.",
			       quote(&q, s, len), quote(&qc, s + i, 1), i + 1);
	if (len > MLFS_NAME_MAX)
		return err_set(e, -EINVAL,
			       "name '%s' is too long (%zu characters, at most %d).",
			       quote(&q, s, len), len, MLFS_NAME_MAX);
	return 0;
}

/* ---- ctl lines ---------------------------------------------------------- */

static int ctl_words(const char *s, size_t n, size_t no, struct ctl_cmd *c,
		     struct err *e)
{
	struct quote q;
	size_t i = 0, w;

	memset(c, 0, sizeof(*c));
	for (;;) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n)
			return 0;
		for (w = i; i < n && !is_blank(s[i]); i++)
			;
		if (c->argc == CTL_MAX_ARGS)
			return err_set(e, -EINVAL,
				       "ctl line %zu has more than %d words: '%s'.",
				       no, CTL_MAX_ARGS, quote(&q, s, n));
		if (i - w >= CTL_WORD_MAX)
			return err_set(e, -EINVAL,
				       "ctl line %zu: the word '%s' is too long (%zu bytes, at most %d).",
				       no, quote(&q, s + w, i - w), i - w,
				       CTL_WORD_MAX - 1);
		memcpy(c->argv[c->argc++], s + w, i - w);
	}
}

int ctl_split(const char *buf, size_t len, struct ctl_cmd *cmds, int max,
	      struct err *e)
{
	struct lines it;
	const char *s;
	size_t n, bad;
	int count = 0, rc;

	lines_init(&it, buf, len);
	while (next_line(&it, &s, &n)) {
		bad = find_bad_byte(s, n);
		if (bad < n)
			return bad_byte(e, "ctl", it.no, s[bad]);
		trim(&s, &n);
		if (!n || *s == '#')
			continue;
		if (count >= max)
			return err_set(e, -EINVAL,
				       "too many commands in one write (at most %d).",
				       max < 0 ? 0 : max);
		rc = ctl_words(s, n, it.no, &cmds[count], e);
		if (rc)
			return rc;
		count++;
	}
	return count;
}

/* ---- key/value lists ---------------------------------------------------- */

void kv_free(struct kv_list *l)
{
	int i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

const char *kv_get(const struct kv_list *l, const char *key)
{
	int i;

	if (!l || !key)
		return NULL;
	for (i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].key, key))
			return l->items[i].value;
	return NULL;
}

/*
 * A list under construction.  @slot is an open-addressing hash set of
 * items, so that finding a duplicate key stays linear in the input even
 * for 100,000 lines; each slot keeps the key's hash to skip most string
 * comparisons, and @aux keeps it per item to rebuild the set on growth
 * without hashing again.
 */
struct kv_slot {
	unsigned int item;	/* index + 1, 0 = free */
	unsigned int hash;
};

struct kv_aux {
	size_t line;		/* for "first on line N" */
	unsigned int hash;
};

struct kv_build {
	struct kv_list *out;
	const char *what;	/* "config", "env", … for sentences */
	const char *const *multi;	/* keys that may repeat, or NULL */
	size_t cap;
	struct kv_aux *aux;
	struct kv_slot *slot;
	size_t nslot;		/* a power of two, >= 2 * cap */
};

static unsigned int key_hash(const char *s, size_t n)
{
	uint64_t h = fnv1a64(s, n);

	h ^= h >> 33;				/* spread into the low bits */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (unsigned int)h;
}

/* The slot holding key @s (hash @h), or the free slot where it would go. */
static size_t kvb_find(const struct kv_build *b, const char *s, size_t n,
		       unsigned int h)
{
	size_t mask = b->nslot - 1;
	size_t i = h & mask;
	const char *k;

	for (; b->slot[i].item; i = (i + 1) & mask) {
		if (b->slot[i].hash != h)
			continue;
		k = b->out->items[b->slot[i].item - 1].key;
		if (!strncmp(k, s, n) && k[n] == '\0')
			break;
	}
	return i;
}

/* Room for one more item; the set is rebuilt at twice the size. */
static int kvb_grow(struct kv_build *b)
{
	size_t cap = b->cap ? 2 * b->cap : 16;
	struct kv *items;
	struct kv_aux *aux;
	size_t i, j, mask;

	if (cap > INT_MAX)
		return -ENOMEM;
	items = realloc(b->out->items, cap * sizeof(*items));
	if (!items)
		return -ENOMEM;
	b->out->items = items;
	aux = realloc(b->aux, cap * sizeof(*aux));
	if (!aux)
		return -ENOMEM;
	b->aux = aux;
	free(b->slot);
	b->nslot = 2 * cap;
	b->slot = calloc(b->nslot, sizeof(*b->slot));
	if (!b->slot)
		return -ENOMEM;
	b->cap = cap;
	mask = b->nslot - 1;
	for (i = 0; i < (size_t)b->out->n; i++) {
		for (j = aux[i].hash & mask; b->slot[j].item; j = (j + 1) & mask)
			;
		b->slot[j].item = i + 1;
		b->slot[j].hash = aux[i].hash;
	}
	return 0;
}

static char *memdup0(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Is the key @k (@kn bytes) one of @keys (NULL-terminated, or NULL)? */
static int key_in(const char *const *keys, const char *k, size_t kn)
{
	for (; keys && *keys; keys++)
		if (strlen(*keys) == kn && !memcmp(*keys, k, kn))
			return 1;
	return 0;
}

static int kvb_add(struct kv_build *b, const char *k, size_t kn,
		   const char *v, size_t vn, size_t no, struct err *e)
{
	struct kv_list *l = b->out;
	unsigned int h = key_hash(k, kn);
	struct kv *kv;
	struct quote q;
	size_t i;

	if ((size_t)l->n == b->cap && kvb_grow(b))
		return err_set(e, -ENOMEM, "out of memory reading %s.",
			       b->what);
	i = kvb_find(b, k, kn, h);
	if (b->slot[i].item && !key_in(b->multi, k, kn))
		return err_set(e, -EINVAL,
			       "%s line %zu: the key '%s' is given twice (first on line %zu).",
			       b->what, no, quote(&q, k, kn),
			       b->aux[b->slot[i].item - 1].line);
	kv = &l->items[l->n];
	kv->key = memdup0(k, kn);
	kv->value = memdup0(v, vn);
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		return err_set(e, -ENOMEM, "out of memory reading %s.",
			       b->what);
	}
	b->aux[l->n].line = no;
	b->aux[l->n].hash = h;
	l->n++;
	if (!b->slot[i].item) {	/* a repeat keeps the first in the set */
		b->slot[i].hash = h;
		b->slot[i].item = (unsigned int)l->n;
	}
	return 0;
}

/* Frees the scaffolding, and the list too on failure. */
static int kvb_done(struct kv_build *b, int rc)
{
	free(b->aux);
	free(b->slot);
	if (rc)
		kv_free(b->out);
	return rc;
}

/* ---- key = value config ------------------------------------------------- */

/* [a-z_][a-z0-9_]* */
static bool config_key_valid(const char *s, size_t n)
{
	size_t i;

	if (!n || !(is_lower(s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!(is_lower(s[i]) || is_digit(s[i]) || s[i] == '_'))
			return false;
	return true;
}

static int kv_line(struct kv_build *b, const char *s, size_t n, size_t no,
		   struct err *e)
{
	const char *eq, *k, *v;
	size_t kn, vn, bad;
	struct quote q;

	bad = find_bad_byte(s, n);
	if (bad < n)
		return bad_byte(e, b->what, no, s[bad]);
	trim(&s, &n);
	if (!n || *s == '#')
		return 0;
	eq = memchr(s, '=', n);
	if (!eq)
		return err_set(e, -EINVAL,
			       "%s line %zu has no '=' (expected key = value): '%s'.",
			       b->what, no, quote(&q, s, n));
	k = s;
	kn = eq - s;
	trim(&k, &kn);
	v = eq + 1;
	vn = s + n - v;
	trim(&v, &vn);
	if (!kn)
		return err_set(e, -EINVAL, "%s line %zu has no key before '='.",
			       b->what, no);
	if (!config_key_valid(k, kn))
		return err_set(e, -EINVAL,
			       "%s line %zu: '%s' is not a valid key (use a-z, 0-9 and '_', not starting with a digit).",
			       b->what, no, quote(&q, k, kn));
	return kvb_add(b, k, kn, v, vn, no, e);
}

static int kv_parse_with(const char *buf, size_t len, struct kv_list *out,
			 const char *what, const char *const *multi,
			 struct err *e)
{
	struct kv_build b = { .out = out, .what = what, .multi = multi };
	struct lines it;
	const char *s;
	size_t n;
	int rc = 0;

	out->items = NULL;
	out->n = 0;
	lines_init(&it, buf, len);
	while (!rc && next_line(&it, &s, &n))
		rc = kv_line(&b, s, n, it.no, e);
	return kvb_done(&b, rc);
}

int kv_parse_as(const char *buf, size_t len, struct kv_list *out,
		const char *what, struct err *e)
{
	return kv_parse_with(buf, len, out, what, NULL, e);
}

int kv_parse(const char *buf, size_t len, struct kv_list *out, struct err *e)
{
	return kv_parse_with(buf, len, out, "config", NULL, e);
}

int kv_parse_multi(const char *buf, size_t len, struct kv_list *out,
		   const char *const *multi, struct err *e)
{
	return kv_parse_with(buf, len, out, "config", multi, e);
}

int kv_count(const struct kv_list *l, const char *key)
{
	int n = 0;

	for (int i = 0; i < l->n; i++)
		n += !strcmp(l->items[i].key, key);
	return n;
}

/* Index of the first key of @l not in @allowed, or -1. */
static int first_unknown(const struct kv_list *l, const char *const *allowed)
{
	const char *const *a;
	int i;

	for (i = 0; i < l->n; i++) {
		for (a = allowed; a && *a; a++)
			if (!strcmp(*a, l->items[i].key))
				break;
		if (!a || !*a)
			return i;
	}
	return -1;
}

/* "a, b, c" into @buf, truncated with "..." if it does not fit. */
const char *join_keys(const char *const *allowed, char *buf,
		      size_t sz)
{
	size_t o = 0, n;

	buf[0] = '\0';
	for (; allowed && *allowed; allowed++) {
		n = strlen(*allowed);
		if (o + n + 2 + 4 > sz) {
			strcpy(buf + o, "...");
			return buf;
		}
		if (o) {
			memcpy(buf + o, ", ", 2);
			o += 2;
		}
		memcpy(buf + o, *allowed, n + 1);
		o += n;
	}
	return o ? buf : "none";
}

int kv_check_keys(const struct kv_list *l, const char *const *allowed,
		  const char *type, struct err *e)
{
	char known[200];
	struct quote q, qt;
	int i;

	if (!l)
		return 0;
	i = first_unknown(l, allowed);
	if (i < 0)
		return 0;
	if (!type)
		return err_set(e, -EINVAL, "unknown config key '%s' (known: %s).",
			       quote_str(&q, l->items[i].key),
			       join_keys(allowed, known, sizeof(known)));
	return err_set(e, -EINVAL,
		       "unknown config key '%s' for type %s (known: %s).",
		       quote_str(&q, l->items[i].key), quote_str(&qt, type),
		       join_keys(allowed, known, sizeof(known)));
}

/* ---- env lines ---------------------------------------------------------- */

/* [A-Za-z_][A-Za-z0-9_]* */
static bool env_key_valid(const char *s, size_t n)
{
	size_t i;

	if (!n || !(is_alpha(s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!(is_alnum(s[i]) || s[i] == '_'))
			return false;
	return true;
}

static int env_key_check(const char *k, size_t kn, size_t no, struct err *e)
{
	struct quote q;

	if (!kn)
		return err_set(e, -EINVAL, "env line %zu has no name before '='.",
			       no);
	if (is_blank(k[kn - 1]))
		return err_set(e, -EINVAL,
			       "env line %zu: no blanks are allowed before '=' (write NAME=value): '%s'.",
			       no, quote(&q, k, kn));
	if (!env_key_valid(k, kn))
		return err_set(e, -EINVAL,
			       "env line %zu: '%s' is not a valid variable name (use A-Z, a-z, 0-9 and '_', not starting with a digit).",
			       no, quote(&q, k, kn));
	if (kn >= 5 && !memcmp(k, "MLFS_", 5))
		return err_set(e, -EINVAL,
			       "env line %zu: '%s' is reserved (mlfs sets the MLFS_ variables itself).",
			       no, quote(&q, k, kn));
	return 0;
}

static int env_line(struct kv_build *b, const char *s, size_t n, size_t no,
		    struct err *e)
{
	const char *eq;
	size_t kn;
	int rc;

	if (memchr(s, '\0', n))
		return bad_byte(e, "env", no, '\0');
	while (n && is_blank(*s)) {
		s++;
		n--;
	}
	if (!n || *s == '#')
		return 0;
	eq = memchr(s, '=', n);
	/* the line is not repeated: it may be a secret (a value whose
	 * NAME= was forgotten), and the sentence goes to events */
	if (!eq)
		return err_set(e, -EINVAL,
			       "env line %zu has no '=' (expected NAME=value).",
			       no);
	kn = eq - s;
	rc = env_key_check(s, kn, no, e);
	if (rc)
		return rc;
	return kvb_add(b, s, kn, eq + 1, n - kn - 1, no, e);
}

int env_parse(const char *buf, size_t len, struct kv_list *out,
	      struct err *e)
{
	struct kv_build b = { .out = out, .what = "env" };
	struct lines it;
	const char *s;
	size_t n;
	int rc = 0;

	out->items = NULL;
	out->n = 0;
	lines_init(&it, buf, len);
	while (!rc && next_line(&it, &s, &n))
		rc = env_line(&b, s, n, it.no, e);
	return kvb_done(&b, rc);
}

/* ---- one-value files ---------------------------------------------------- */

static int first_word_rest(struct lines *it, struct err *e)
{
	const char *s;
	size_t n;
	struct quote q;

	while (next_line(it, &s, &n))
		if (!is_blank_span(s, n))
			return err_set(e, -EINVAL,
				       "line %zu is not blank ('%s'); this file holds a single value.",
				       it->no, quote(&q, s, n));
	return 0;
}

int first_word(const char *buf, size_t len, char *out, size_t out_sz,
	       struct err *e)
{
	struct lines it;
	const char *s = "";
	size_t n = 0, w, bad;
	struct quote q;
	int rc;

	if (!out || !out_sz)
		return err_set(e, -EINVAL, "there is no room for the value.");
	out[0] = '\0';
	lines_init(&it, buf, len);
	next_line(&it, &s, &n);
	bad = find_bad_byte(s, n);
	if (bad < n)
		return bad_byte(e, "the value", 0, s[bad]);
	trim(&s, &n);
	for (w = 0; w < n && !is_blank(s[w]); w++)
		;
	if (w < n)
		return err_set(e, -EINVAL,
			       "'%s' has more than one word; this file holds a single value.",
			       quote(&q, s, n));
	rc = first_word_rest(&it, e);
	if (rc)
		return rc;
	if (n >= out_sz)
		return err_set(e, -EINVAL,
			       "'%s' is too long (%zu bytes, at most %zu).",
			       quote(&q, s, n), n, out_sz - 1);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* ---- after ---------------------------------------------------------------- */

static int after_mode(const char *word, int *any, struct err *e)
{
	struct quote q;

	if (!strcmp(word, "Completed")) {
		*any = 0;
		return 0;
	}
	if (!strcmp(word, "any")) {
		*any = 1;
		return 0;
	}
	return err_set(e, -EINVAL, "'%s' is not a condition: write"
		       " 'NAME' or 'NAME Completed' (it must complete) or"
		       " 'NAME any' (it must only end).",
		       quote(&q, word, strlen(word)));
}

static int after_add(struct after_list *out, const struct ctl_cmd *c,
		     struct err *e)
{
	struct after_dep *d = &out->deps[out->n];
	struct quote q;
	int rc;

	if (c->argc > 2)
		return err_set(e, -EINVAL, "'%s ...' has %d words: a line names"
			       " one run and at most a condition.",
			       quote(&q, c->argv[0], strlen(c->argv[0])),
			       c->argc);
	rc = name_valid(c->argv[0], e);
	if (rc)
		return rc;
	d->any = 0;
	if (c->argc == 2 && (rc = after_mode(c->argv[1], &d->any, e)))
		return rc;
	for (int i = 0; i < out->n; i++)
		if (!strcmp(out->deps[i].name, c->argv[0]))
			return err_set(e, -EINVAL, "run '%s' is named twice.",
				       c->argv[0]);
	snprintf(d->name, sizeof(d->name), "%s", c->argv[0]);
	out->n++;
	return 0;
}

/* Lines that say something (not blank, not a '#' comment). */
static size_t said_lines(const char *buf, size_t len)
{
	struct lines it;
	const char *s;
	size_t n, count = 0;

	lines_init(&it, buf, len);
	while (next_line(&it, &s, &n)) {
		trim(&s, &n);
		count += n && *s != '#';
	}
	return count;
}

int after_parse(const char *buf, size_t len, struct after_list *out,
		struct err *e)
{
	struct ctl_cmd *cmds;
	int n, rc = 0;

	out->n = 0;
	if (said_lines(buf, len) > AFTER_MAX)
		return err_set(e, -EINVAL, "a run waits for at most %d runs.",
			       AFTER_MAX);
	cmds = calloc(AFTER_MAX, sizeof(*cmds));
	if (!cmds)
		return err_set(e, -ENOMEM, "out of memory.");
	n = ctl_split(buf, len, cmds, AFTER_MAX, e);
	if (n < 0)
		rc = n;
	for (int i = 0; !rc && i < n; i++)
		rc = after_add(out, &cmds[i], e);
	free(cmds);
	return rc;
}

/* ---- inputs --------------------------------------------------------------- */

static int input_name(const char *s, size_t n, char *out, struct err *e)
{
	struct quote q;
	size_t i;

	for (i = 0; i < n; i++)
		if (!(is_alnum(s[i]) || s[i] == '_') || (!i && is_digit(s[i])))
			break;
	if (!n || i < n || n > INPUT_NAME_MAX)
		return err_set(e, -EINVAL, "'%s' is not an input name: letters,"
			       " digits and _, not a digit first, at most %d"
			       " (it becomes $MLFS_INPUT_NAME).",
			       quote(&q, s, n), INPUT_NAME_MAX);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Is there a `..` among the '/'-separated parts of @s? */
static bool has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/') && (!p[2] || p[2] == '/'))
			return true;
	return false;
}

/* "A/B[/SUB]": the object name A and, when @ver, B (else B must be
 * @fixed), SUB into in->path. */
static int input_ref(const char *s, struct input *in, const char *fixed,
		     struct err *e)
{
	const char *a = s, *b = strchr(a, '/'), *c;
	char name[2][MLFS_NAME_MAX + 2];
	size_t la, lb;

	if (!b)
		return -1;
	c = strchr(b + 1, '/');
	la = (size_t)(b - a);
	lb = c ? (size_t)(c - b - 1) : strlen(b + 1);
	if (la > MLFS_NAME_MAX || lb > MLFS_NAME_MAX)
		return -1;
	memcpy(name[0], a, la);
	name[0][la] = '\0';
	memcpy(name[1], b + 1, lb);
	name[1][lb] = '\0';
	if (name_valid(name[0], e) ||
	    (fixed ? strcmp(name[1], fixed) != 0 : name_valid(name[1], e)))
		return -1;
	snprintf(in->obj, sizeof(in->obj), "%s", name[0]);
	if (!fixed)
		snprintf(in->ver, sizeof(in->ver), "%s", name[1]);
	c = c ? c + 1 : "";
	while (*c == '/')
		c++;
	snprintf(in->path, sizeof(in->path), "%s", c);
	return 0;
}

static int input_path(const char *s, size_t n, struct input *in,
		      struct err *e)
{
	char p[INPUT_PATH_MAX];
	struct quote q;
	struct err ignored;
	int rc = -1;

	while (n > 1 && s[n - 1] == '/')
		n--;
	if (n >= sizeof(p))
		return err_set(e, -EINVAL, "input '%s': the path is longer than"
			       " %d bytes.", in->name, INPUT_PATH_MAX - 1);
	memcpy(p, s, n);
	p[n] = '\0';
	if (p[0] == '/') {
		in->kind = INPUT_PATH;
		snprintf(in->path, sizeof(in->path), "%s", p);
		return 0;
	}
	if (!strncmp(p, "runs/", 5)) {
		in->kind = INPUT_RUN;
		rc = input_ref(p + 5, in, "outputs", &ignored);
	} else if (!strncmp(p, "models/", 7)) {
		in->kind = INPUT_MODEL;
		rc = input_ref(p + 7, in, NULL, &ignored);
	}
	if (rc)
		return err_set(e, -EINVAL, "input '%s': '%s' is not a path mlfs"
			       " reads: write /ABSOLUTE/PATH,"
			       " runs/RUN/outputs[/...] or"
			       " models/MODEL/VERSION[/...].",
			       in->name, quote(&q, p, n));
	if (has_dotdot(in->path))
		return err_set(e, -EINVAL, "input '%s': '..' cannot be part of"
			       " '%s' (name what is inside).", in->name,
			       quote(&q, p, n));
	return 0;
}

static int input_line(const char *s, size_t n, size_t no,
		      struct input_list *out, struct err *e)
{
	struct input *in = &out->in[out->n];
	size_t w, bad = find_bad_byte(s, n);
	struct quote q;
	int rc;

	if (bad < n)
		return bad_byte(e, "inputs", no, s[bad]);
	for (w = 0; w < n && !is_blank(s[w]); w++)
		;
	memset(in, 0, sizeof(*in));
	rc = input_name(s, w, in->name, e);
	if (rc)
		return rc;
	s += w;
	n -= w;
	trim(&s, &n);
	if (!n)
		return err_set(e, -EINVAL, "input '%s' has no path: write"
			       " 'NAME PATH' on line %zu.", in->name, no);
	for (int i = 0; i < out->n; i++)
		if (!strcmp(out->in[i].name, in->name))
			return err_set(e, -EINVAL, "input '%s' is named twice.",
				       quote(&q, in->name, strlen(in->name)));
	rc = input_path(s, n, in, e);
	if (!rc)
		out->n++;
	return rc;
}

int inputs_parse(const char *buf, size_t len, struct input_list *out,
		 struct err *e)
{
	struct lines it;
	const char *s;
	size_t n;
	int rc = 0;

	out->n = 0;
	if (said_lines(buf, len) > INPUTS_MAX)
		return err_set(e, -EINVAL, "a run has at most %d inputs.",
			       INPUTS_MAX);
	lines_init(&it, buf, len);
	while (!rc && next_line(&it, &s, &n)) {
		trim(&s, &n);
		if (n && *s != '#')
			rc = input_line(s, n, it.no, out, e);
	}
	return rc;
}
