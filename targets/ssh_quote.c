// SPDX-License-Identifier: MIT
/*
 * ssh_quote.c — pure helpers for the SSH driver (see ssh_quote.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ssh_quote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/vec.h"

#define HOST_MAX 253
#define LABEL_MAX 63
#define USER_MAX 32
#define PATH_MAX_LEN 4095
#define SHOW_MAX 64

/* ---- shell quoting ---------------------------------------------------- */

char *sh_quote(const char *s)
{
	size_t n = 3, i;
	char *out, *p;

	for (i = 0; s[i]; i++)
		n += s[i] == '\'' ? 4 : 1;
	out = malloc(n);
	if (!out)
		return NULL;
	p = out;
	*p++ = '\'';
	for (i = 0; s[i]; i++) {
		if (s[i] == '\'') {
			/* close, an escaped quote, reopen */
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = s[i];
		}
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

char *sh_quote_path(const char *path)
{
	char *rest, *out;

	if (strcmp(path, "~") == 0)
		return strdup("\"$HOME\"");
	if (strncmp(path, "~/", 2) != 0)
		return sh_quote(path);
	if (!path[2])
		return strdup("\"$HOME\"/");
	rest = sh_quote(path + 2);
	if (!rest)
		return NULL;
	if (asprintf(&out, "\"$HOME\"/%s", rest) < 0)
		out = NULL;
	free(rest);
	return out;
}

/* ---- argv_buf --------------------------------------------------------- */

/* Take ownership of @s (NULL means a failed allocation). */
static int argv_take(struct argv_buf *a, char *s)
{
	if (a->err) {
		free(s);
		return a->err;
	}
	if (!s || vec_reserve(a, 2)) {
		free(s);
		a->err = -ENOMEM;
		return a->err;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

int argv_push(struct argv_buf *a, const char *s)
{
	return argv_take(a, a->err ? NULL : strdup(s));
}

int argv_push_fmt(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->err)
		return a->err;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return argv_take(a, s);
}

void argv_free(struct argv_buf *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct argv_buf)ARGV_BUF_INIT;
}

/* ---- sentences -------------------------------------------------------- */

/*
 * Write @s into @out (size @n) printable and short: control and non-ASCII
 * bytes as \xNN, " and \ escaped, cut with "..." after SHOW_MAX bytes.
 */
static void show(const char *s, char *out, size_t n)
{
	size_t o = 0, i;
	unsigned char c;

	for (i = 0; s[i] && o + 8 < n; i++) {
		if (i == SHOW_MAX) {
			o += snprintf(out + o, n - o, "...");
			break;
		}
		c = s[i];
		if (c < 0x20 || c >= 0x7f)
			o += snprintf(out + o, n - o, "\\x%02x", c);
		else if (c == '"' || c == '\\')
			o += snprintf(out + o, n - o, "\\%c", c);
		else
			out[o++] = c;
	}
	out[o] = '\0';
}

/* Fill @why with: KEY "VALUE" WHAT. Returns -EINVAL. */
__attribute__((format(printf, 5, 6)))
static int refuse(char *why, size_t len, const char *key, const char *value,
		  const char *what, ...)
{
	char shown[SHOW_MAX * 4 + 8], tail[SSH_WHY_MAX];
	va_list ap;

	if (!why || !len)
		return -EINVAL;
	va_start(ap, what);
	vsnprintf(tail, sizeof(tail), what, ap);
	va_end(ap);
	show(value, shown, sizeof(shown));
	snprintf(why, len, "%s \"%s\" %s", key, shown, tail);
	return -EINVAL;
}

/* Fill @why with: KEY is empty. Returns -EINVAL. */
static int refuse_empty(char *why, size_t len, const char *key)
{
	if (why && len)
		snprintf(why, len, "%s is empty", key);
	return -EINVAL;
}

/* Name a byte for a sentence: "whitespace", "\";\"", "a backtick", … */
static const char *name_byte(unsigned char c, char *buf, size_t n)
{
	if (c == ' ' || c == '\t')
		return "whitespace";
	if (c < 0x20 || c == 0x7f)
		return "a control character";
	if (c >= 0x80)
		return "a non-ASCII byte";
	if (c == '"')
		return "a double quote";
	if (c == '\'')
		return "a single quote";
	if (c == '`')
		return "a backtick";
	snprintf(buf, n, "\"%c\"", c);
	return buf;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* ---- host ------------------------------------------------------------- */

static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == ':' || c == '%';
}

/* A bare IPv6 literal, with an optional %zone. */
static int check_ipv6(const char *host, char *why, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 1];
	struct in6_addr in;
	const char *zone = strchr(host, '%');
	size_t n = zone ? (size_t)(zone - host) : strlen(host);

	if (n >= sizeof(addr))
		return refuse(why, len, "host", host, "is not an IPv6 address");
	memcpy(addr, host, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET6, addr, &in) != 1)
		return refuse(why, len, "host", host, "is not an IPv6 address");
	if (zone && (!zone[1] || strpbrk(zone + 1, ":%")))
		return refuse(why, len, "host", host, "has a malformed %%zone");
	return 0;
}

/* Dot-separated labels of 1–63 characters. */
static int check_labels(const char *host, char *why, size_t len)
{
	const char *p = host, *dot;
	size_t n;

	if (strchr(host, '%'))
		return refuse(why, len, "host", host, "is not a hostname: it contains \"%%\"");
	while (*p) {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0)
			return refuse(why, len, "host", host, "is not a hostname: it has an empty label");
		if (n > LABEL_MAX)
			return refuse(why, len, "host", host,
				      "is not a hostname: a label is longer than %d characters",
				      LABEL_MAX);
		if (!dot)
			break;
		p = dot + 1; /* one trailing dot (FQDN) is fine */
	}
	return 0;
}

int ssh_check_host(const char *host, char *why, size_t len)
{
	char b[8];
	size_t i;

	if (!host || !*host)
		return refuse_empty(why, len, "host");
	if (host[0] == '-')
		return refuse(why, len, "host", host, "is not a hostname: it starts with \"-\"");
	for (i = 0; host[i]; i++)
		if (!host_char(host[i]))
			return refuse(why, len, "host", host,
				      "is not a hostname: it contains %s",
				      name_byte(host[i], b, sizeof(b)));
	if (i > HOST_MAX)
		return refuse(why, len, "host", host,
			      "is not a hostname: it is longer than %d characters", HOST_MAX);
	if (strchr(host, ':'))
		return check_ipv6(host, why, len);
	return check_labels(host, why, len);
}

/* ---- user ------------------------------------------------------------- */

static bool user_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int ssh_check_user(const char *user, char *why, size_t len)
{
	char b[8];
	size_t i;

	if (!user || !*user)
		return refuse_empty(why, len, "user");
	if (!((user[0] >= 'a' && user[0] <= 'z') ||
	      (user[0] >= 'A' && user[0] <= 'Z') || user[0] == '_'))
		return refuse(why, len, "user", user,
			      "is not a user name: it must start with a letter or \"_\"");
	for (i = 0; user[i]; i++)
		if (!user_char(user[i]))
			return refuse(why, len, "user", user,
				      "is not a user name: it contains %s",
				      name_byte(user[i], b, sizeof(b)));
	if (i > USER_MAX)
		return refuse(why, len, "user", user,
			      "is not a user name: it is longer than %d characters", USER_MAX);
	return 0;
}

/* ---- paths ------------------------------------------------------------ */

int ssh_check_identity_file(const char *path, char *why, size_t len)
{
	const char *k = "identity_file";

	if (!path || !*path)
		return refuse_empty(why, len, k);
	if (path[0] == '-')
		return refuse(why, len, k, path, "starts with \"-\"");
	if (path[0] != '/')
		return refuse(why, len, k, path, "is not an absolute path");
	if (has_control(path))
		return refuse(why, len, k, path, "contains a control character");
	if (strpbrk(path, "%$"))
		return refuse(why, len, k, path,
			      "contains \"%%\" or \"$\", which ssh would expand");
	if (strlen(path) > PATH_MAX_LEN)
		return refuse(why, len, k, path, "is too long");
	return 0;
}

/* True when some "/"-separated component of @p is "..". */
static bool has_dotdot(const char *p)
{
	const char *c = p;

	for (;;) {
		if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || !c[2]))
			return true;
		c = strchr(c, '/');
		if (!c)
			return false;
		c++;
	}
}

int ssh_check_workdir(const char *path, char *why, size_t len)
{
	return ssh_check_dir("workdir", path, why, len);
}

int ssh_check_dir(const char *k, const char *path, char *why, size_t len)
{
	if (!path || !*path)
		return refuse_empty(why, len, k);
	if (path[0] != '/' && strcmp(path, "~") != 0 && strncmp(path, "~/", 2) != 0)
		return refuse(why, len, k, path, "is neither an absolute path nor \"~/...\"");
	if (has_control(path))
		return refuse(why, len, k, path, "contains a control character");
	if (has_dotdot(path))
		return refuse(why, len, k, path, "has a \"..\" component");
	if (strpbrk(path, "*?[\\"))
		return refuse(why, len, k, path,
			      "contains one of * ? [ \\, which rsync would take as a pattern");
	if (strlen(path) > PATH_MAX_LEN)
		return refuse(why, len, k, path, "is too long");
	return 0;
}

/* ---- numbers ---------------------------------------------------------- */

/* Digits only (no sign, no spaces), lo..hi. */
static int check_num(const char *k, const char *s, int lo, int hi, int *out,
		     char *why, size_t len)
{
	long v = 0;
	size_t i;

	if (!s || !*s)
		return refuse_empty(why, len, k);
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 9)
			return refuse(why, len, k, s, "is not a number from %d to %d", lo, hi);
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return refuse(why, len, k, s, "is not a number from %d to %d", lo, hi);
	if (out)
		*out = (int)v;
	return 0;
}

int ssh_check_port(const char *s, int *out, char *why, size_t len)
{
	return check_num("port", s, 1, 65535, out, why, len);
}

int ssh_check_connect_timeout(const char *s, int *out, char *why, size_t len)
{
	return check_num("connect_timeout", s, 1, 300, out, why, len);
}

int ssh_check_max_concurrent(const char *s, int *out, char *why, size_t len)
{
	return check_num("max_concurrent", s, 1, 1024, out, why, len);
}

/* ---- command lines ---------------------------------------------------- */

/* ssh expands % and ${} in UserKnownHostsFile: "${" cannot be escaped. */
static int check_known_hosts(const char *path, char *why, size_t len)
{
	if (!*path)
		return refuse_empty(why, len, "known_hosts");
	if (has_control(path) || strstr(path, "${"))
		return refuse(why, len, "known_hosts", path,
			      "contains a control character or \"${\"");
	return 0;
}

/*
 * The value of "-o UserKnownHostsFile=…": ssh splits it on whitespace and
 * expands %: double-quote it, escape " and \, double %. NULL on ENOMEM.
 */
static char *known_hosts_opt(const char *path)
{
	size_t n = strlen(path), i;
	char *out, *p;

	out = malloc(sizeof("UserKnownHostsFile=\"\"") + 2 * n);
	if (!out)
		return NULL;
	p = out + sprintf(out, "UserKnownHostsFile=\"");
	for (i = 0; i < n; i++) {
		if (path[i] == '"' || path[i] == '\\')
			*p++ = '\\';
		else if (path[i] == '%')
			*p++ = '%';
		*p++ = path[i];
	}
	strcpy(p, "\"");
	return out;
}

/* The values a target gives, with defaults applied. */
struct resolved {
	int port;
	int timeout;
};

static int check_target(const struct ssh_target *t, struct resolved *r,
			char *why, size_t len)
{
	char num[16];
	int err;

	r->port = t->port ? t->port : 22;
	r->timeout = t->connect_timeout ? t->connect_timeout : 10;
	err = ssh_check_host(t->host, why, len);
	if (!err)
		err = ssh_check_user(t->user, why, len);
	if (!err && t->identity_file)
		err = ssh_check_identity_file(t->identity_file, why, len);
	if (!err && t->known_hosts)
		err = check_known_hosts(t->known_hosts, why, len);
	snprintf(num, sizeof(num), "%d", r->port);
	if (!err && (r->port < 1 || r->port > 65535))
		err = check_num("port", num, 1, 65535, NULL, why, len);
	snprintf(num, sizeof(num), "%d", r->timeout);
	if (!err && (r->timeout < 1 || r->timeout > 300))
		err = check_num("connect_timeout", num, 1, 300, NULL, why, len);
	return err;
}

/* The options shared by ssh and the ssh inside rsync -e. */
static int push_common(const struct ssh_target *t, const struct resolved *r,
		       struct argv_buf *a)
{
	/* no ssh_config: ssh runs as the daemon's user (root), whose
	 * ~/.ssh/config must not lend its keys or hosts to a user's target */
	argv_push(a, "-F");
	argv_push(a, "none");
	argv_push(a, "-o");
	argv_push(a, "BatchMode=yes");
	argv_push(a, "-o");
	argv_push_fmt(a, "ConnectTimeout=%d", r->timeout);
	argv_push(a, "-o");
	argv_push(a, "ServerAliveInterval=5");
	argv_push(a, "-o");
	argv_push(a, "ServerAliveCountMax=3");
	argv_push(a, "-o");
	argv_push_fmt(a, "StrictHostKeyChecking=%s",
		      t->strict_host_key ? "yes" : "accept-new");
	if (t->known_hosts) {
		argv_push(a, "-o");
		argv_take(a, known_hosts_opt(t->known_hosts));
	}
	if (t->identity_file) {
		argv_push(a, "-o");
		argv_push(a, "IdentitiesOnly=yes");
		argv_push(a, "-i");
		argv_push(a, t->identity_file);
	}
	return a->err;
}

int ssh_argv(const struct ssh_target *t, struct argv_buf *a, char *why, size_t len)
{
	struct resolved r;
	int err;

	err = check_target(t, &r, why, len);
	if (err)
		return err;
	argv_push(a, "ssh");
	push_common(t, &r, a);
	argv_push(a, "-p");
	argv_push_fmt(a, "%d", r.port);
	argv_push(a, "-l");
	argv_push(a, t->user);
	argv_push(a, "--");
	argv_push(a, t->host);
	return a->err;
}

/* Length of @s in rsync's -e quoting: 'word', a ' inside doubled. */
static size_t rsync_word_len(const char *s)
{
	size_t n = 3; /* quotes and a separating space */

	for (; *s; s++)
		n += *s == '\'' ? 2 : 1;
	return n;
}

/* Join @w (n words) as one rsync -e string: 'w1' 'w2' … */
static char *rsync_join(char *const *w, size_t n)
{
	size_t total = 1, i;
	char *out, *p;
	const char *s;

	for (i = 0; i < n; i++)
		total += rsync_word_len(w[i]);
	out = malloc(total);
	if (!out)
		return NULL;
	p = out;
	for (i = 0; i < n; i++) {
		if (i)
			*p++ = ' ';
		*p++ = '\'';
		for (s = w[i]; *s; s++) {
			if (*s == '\'')
				*p++ = '\'';
			*p++ = *s;
		}
		*p++ = '\'';
	}
	*p = '\0';
	return out;
}

int rsync_argv(const struct ssh_target *t, struct argv_buf *a, char *why, size_t len)
{
	struct argv_buf e = ARGV_BUF_INIT;
	struct resolved r;
	int err;

	err = check_target(t, &r, why, len);
	if (err)
		return err;
	argv_push(&e, "ssh");
	push_common(t, &r, &e);
	argv_push(&e, "-p");
	argv_push_fmt(&e, "%d", r.port);
	err = e.err;
	if (!err) {
		argv_push(a, "rsync");
		argv_push(a, "-e");
		argv_take(a, rsync_join(e.v, e.n));
		err = a->err;
	}
	argv_free(&e);
	return err;
}

char *ssh_remote_spec(const struct ssh_target *t, const char *path)
{
	char *out;
	int n;

	if (strchr(t->host, ':'))	/* IPv6: brackets */
		n = asprintf(&out, "%s@[%s]:%s", t->user, t->host, path);
	else
		n = asprintf(&out, "%s@%s:%s", t->user, t->host, path);
	return n < 0 ? NULL : out;
}
