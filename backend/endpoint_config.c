// SPDX-License-Identifier: MIT
/*
 * Endpoints (pure): the user's `traffic`, `mirror` and `config` files, and
 * what HAProxy is given.  The proxy's shape (HAProxy 2.6, Debian 12):
 *
 *   frontend ep        binds HOST:PORT; refuses a body over max_body (413)
 *                      and a key not in keys.map (401) before anything
 *                      else, so a wrong key never reaches a replica; drops
 *                      the client's Authorization; copies a share of the
 *                      requests to the mirror (mirror.lua, its answer
 *                      dropped; the body is waited for only then); a
 *                      request naming a deployment in the pin header goes
 *                      to that deployment's backend (404 for a name not
 *                      behind the endpoint); any other draws rand(100) and
 *                      split.map names the deployment whose range holds
 *                      it: straight to its backend dep_D when D has a
 *                      server up, else to `split`.
 *   backend dep_D      per deployment D: sets D's own bearer key and sends
 *                      each request to the ready replica with the fewest
 *                      requests at hand, at its direct port, health-checked
 *                      with GET /.  The replicas are slots r1..rN, fixed
 *                      servers (N = EP_REPS_MAX, those without a replica
 *                      disabled) that the runtime API points at a new
 *                      replica's port and readies, or puts in maintenance
 *                      when it goes (`set server ... addr`, `state`):
 *                      never added or deleted (HAProxy 2.6's `del server`
 *                      crashed its worker under a client loop across
 *                      rolling updates, its `leastconn` ignored servers
 *                      added at run time and gave them no idle pool).  D's
 *                      service address is the backup server, used while no
 *                      replica's direct port is known (an ssh target has
 *                      none).  One hop from the client's request to the
 *                      replica.  (The service's shared port alone balances
 *                      connections by a hash: a few keep-alive connections
 *                      from the proxy can all land on one replica.)
 *   backend split      the fallback (a drawn deployment down, a draw with
 *                      no range): one server per deployment, weighted by
 *                      `traffic` (`set server split/D weight W`), each
 *                      tracking dep_D/D, so that a deployment whose
 *                      replicas all fail leaves the rotation and its
 *                      weight goes to the others.  Its servers reach dep_D
 *                      through frontend in_D on an abstract socket: a
 *                      second hop, taken only while a deployment is down.
 *
 * Keys, the mirror, the names and the split live in map files that the
 * runtime API changes without a reload (`add map`, `del map`, `set map`;
 * the split replaced whole by `prepare map` and `commit map`, so that no
 * request sees half of a change); the fallback's weights too (`set
 * server`).  Only a deployment joining or leaving rewrites the
 * configuration (a seamless reload: the listening socket is kept).
 */
#include "endpoint_config.h"
#include "parse_i.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lines -------------------------------------------------------------- */

/* The next line of @buf from *@off into @line (trimmed; # comments and
 * blank lines skipped); *@no its number.  1, 0 at the end, -EINVAL too
 * long. */
static int next_line(const char *buf, size_t len, size_t *off, int *no,
		     char *line, size_t sz)
{
	while (*off < len) {
		const char *s = buf + *off, *nl = memchr(s, '\n', len - *off);
		size_t n = nl ? (size_t)(nl - s) : len - *off;

		*off += n + (nl != NULL);
		(*no)++;
		while (n && isspace((unsigned char)*s))
			s++, n--;
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (!n || *s == '#')
			continue;
		if (n >= sz)
			return -EINVAL;
		memcpy(line, s, n);
		line[n] = '\0';
		return 1;
	}
	return 0;
}

/* `NAME NUMBER` of @line into @name and *@num (0..100); @what names the
 * file in the sentence. */
static int name_num(char *line, int no, const char *what, char *name,
		    int *num, struct err *e)
{
	char *sp = strpbrk(line, " \t"), *end;
	struct quote q;
	struct err ne;
	long v;

	if (!sp)
		return err_set(e, -EINVAL, "%s line %d: want 'DEPLOYMENT %s',"
			       " not '%s'.", what, no, !strcmp(what, "traffic")
			       ? "WEIGHT" : "PERCENT", quote_str(&q, line));
	*sp++ = '\0';
	sp += strspn(sp, " \t");
	if (name_valid(line, &ne) || strlen(line) >= EP_NAME_MAX)
		return err_set(e, -EINVAL, "%s line %d: '%s' is not a"
			       " deployment name.", what, no,
			       quote_str(&q, line));
	errno = 0;
	v = strtol(sp, &end, 10);
	if (!isdigit((unsigned char)*sp) || *end || errno || v > 100)
		return err_set(e, -EINVAL, "%s line %d: '%s' must be an integer"
			       " from 0 to 100.", what, no, quote_str(&q, sp));
	snprintf(name, EP_NAME_MAX, "%s", line);
	*num = (int)v;
	return 0;
}

/* ---- traffic ------------------------------------------------------------ */

static int traffic_add(struct ep_traffic *t, char *line, int no,
		       struct err *e)
{
	struct ep_weight w;
	int rc = name_num(line, no, "traffic", w.name, &w.weight, e);

	if (rc)
		return rc;
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->w[i].name, w.name))
			return err_set(e, -EINVAL, "traffic line %d: '%s' is"
				       " given twice.", no, w.name);
	if (t->n == EP_DEPS_MAX)
		return err_set(e, -EINVAL, "traffic: at most %d deployments"
			       " share an endpoint.", EP_DEPS_MAX);
	t->w[t->n++] = w;
	return 0;
}

int ep_traffic_parse(const char *buf, size_t len, struct ep_traffic *t,
		     struct err *e)
{
	char line[256];
	size_t off = 0;
	int no = 0, rc, sum = 0;

	memset(t, 0, sizeof(*t));
	while ((rc = next_line(buf, len, &off, &no, line, sizeof(line))) > 0) {
		rc = traffic_add(t, line, no, e);
		if (rc)
			return rc;
	}
	if (rc)
		return err_set(e, rc, "traffic line %d is too long.", no);
	for (int i = 0; i < t->n; i++)
		sum += t->w[i].weight;
	if (t->n && sum != 100)
		return err_set(e, -EINVAL, "traffic: the weights sum to %d,"
			       " not 100.", sum);
	return 0;
}

/* @t's weights (summing to @rest > 0) scaled to sum to 100: floors
 * first, then a point each to the largest remainders (the earlier line
 * on a tie).  A weight of 0 stays 0: its remainder is 0, and fewer points
 * are left over than lines with a remainder. */
static void traffic_scale(struct ep_traffic *t, int rest)
{
	int rem[EP_DEPS_MAX], left = 100, best;

	for (int i = 0; i < t->n; i++) {
		rem[i] = t->w[i].weight * 100 % rest;
		t->w[i].weight = t->w[i].weight * 100 / rest;
		left -= t->w[i].weight;
	}
	for (; left > 0; left--) {
		best = 0;
		for (int i = 1; i < t->n; i++)
			if (rem[i] > rem[best])
				best = i;
		t->w[best].weight++;
		rem[best] = -1;
	}
}

int ep_traffic_drop(struct ep_traffic *t, const char *name)
{
	int sum = 0, at = -1, rest;

	for (int i = 0; i < t->n; i++) {
		sum += t->w[i].weight;
		if (!strcmp(t->w[i].name, name))
			at = i;
	}
	if (at < 0)
		return 0;
	rest = sum - t->w[at].weight;
	memmove(&t->w[at], &t->w[at + 1],
		(size_t)(t->n - at - 1) * sizeof(t->w[0]));
	t->n--;
	if (sum != 100)
		return 1;	/* lines still to come: the user's to finish */
	if (!rest)
		t->n = 0;	/* nothing with weight left: no split */
	else
		traffic_scale(t, rest);
	return 1;
}

int ep_traffic_text(const struct ep_traffic *t, char **out)
{
	size_t sz = (size_t)t->n * (EP_NAME_MAX + 8) + 1, off = 0;
	char *buf = malloc(sz);

	if (!buf)
		return -ENOMEM;
	buf[0] = '\0';
	for (int i = 0; i < t->n; i++)
		off += (size_t)snprintf(buf + off, sz - off, "%s %d\n",
					t->w[i].name, t->w[i].weight);
	*out = buf;
	return 0;
}

/* ---- mirror ------------------------------------------------------------- */

int ep_mirror_parse(const char *buf, size_t len, struct ep_mirror *m,
		    struct err *e)
{
	char line[256], extra[8];
	size_t off = 0;
	int no = 0, rc;

	memset(m, 0, sizeof(*m));
	rc = next_line(buf, len, &off, &no, line, sizeof(line));
	if (rc < 0)
		return err_set(e, rc, "mirror line %d is too long.", no);
	if (!rc)
		return 0;
	rc = name_num(line, no, "mirror", m->name, &m->percent, e);
	if (rc)
		return rc;
	if (next_line(buf, len, &off, &no, extra, sizeof(extra)))
		return err_set(e, -EINVAL, "mirror: one line"
			       " 'DEPLOYMENT PERCENT' (line %d is more).", no);
	return 0;
}

/* ---- config ------------------------------------------------------------- */

const char *const ep_config_keys[] = {
	"host", "port", "request_timeout_ms", "max_body", NULL
};

/* A size in bytes: digits and an optional K, M or G (binary). */
static int parse_bytes(const char *s, long *out, struct err *e)
{
	struct quote q;
	char *end;
	long long v;
	int shift = 0;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end && !end[1])
		shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' ||
			*end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 :
			-1;
	if (!isdigit((unsigned char)*s) || errno || shift < 0 ||
	    (*end && !shift) || v < 1 || v > (1LL << (30 - shift)))
		return err_set(e, -EINVAL, "config: max_body must be a size"
			       " from 1 to 1G (K, M or G), not '%s'.",
			       quote_str(&q, s));
	*out = (long)(v << shift);
	return 0;
}

/* A host as the proxy's `bind` takes it: letters, digits, . : - only. */
static int parse_host(const char *s, char *out, size_t sz, struct err *e)
{
	struct quote q;

	if (!*s || strlen(s) >= sz ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789.:-") != strlen(s))
		return err_set(e, -EINVAL, "config: host must be an address"
			       " or a host name, not '%s'.", quote_str(&q, s));
	snprintf(out, sz, "%s", s);
	return 0;
}

static int config_fill(const struct kv_list *kv, struct ep_config *c,
		       struct err *e)
{
	const char *v;
	long n;
	int rc = 0;

	if ((v = kv_get(kv, "host")))
		rc = parse_host(v, c->host, sizeof(c->host), e);
	if (!rc && (v = kv_get(kv, "port"))) {
		rc = parse_int(v, 0, 65535, &n, "config: port", e);
		c->port = (int)n;
	}
	if (!rc && (v = kv_get(kv, "request_timeout_ms")))
		rc = parse_int(v, 100, 3600000, &c->request_timeout_ms,
			       "config: request_timeout_ms", e);
	if (!rc && (v = kv_get(kv, "max_body")))
		rc = parse_bytes(v, &c->max_body, e);
	return rc;
}

int ep_config_parse(const char *buf, size_t len, struct ep_config *c,
		    struct err *e)
{
	struct kv_list kv = { 0 };
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(c->host, sizeof(c->host), "127.0.0.1");
	c->request_timeout_ms = 60000;
	c->max_body = 100L << 20;
	rc = kv_parse(buf, len, &kv, e);
	if (!rc)
		rc = kv_check_keys(&kv, ep_config_keys, "endpoint", e);
	if (!rc)
		rc = config_fill(&kv, c, e);
	kv_free(&kv);
	return rc;
}

/* ---- the proxy's texts ------------------------------------------------- */

/* A growing text (open_memstream): out(t, fmt, ...) appends. */
struct text {
	FILE *f;
	char *buf;
	size_t len;
};

static int text_open(struct text *t)
{
	t->buf = NULL;
	t->f = open_memstream(&t->buf, &t->len);
	return t->f ? 0 : -ENOMEM;
}

__attribute__((format(printf, 2, 3)))
static void out(struct text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(t->f, fmt, ap);
	va_end(ap);
}

/* Close @t: its text into *@res, or -ENOMEM. */
static int text_close(struct text *t, char **res)
{
	int bad = ferror(t->f);

	if (fclose(t->f) || bad) {
		free(t->buf);
		return -ENOMEM;
	}
	*res = t->buf;
	return 0;
}

/* @host:@port as an address the proxy takes (IPv6 in brackets is not its
 * syntax: it splits at the last colon). */
static void cfg_addr(struct text *t, const char *host, int port)
{
	out(t, "%s:%d", host, port);
}

/* Each server of a deployment: watched by a GET / every second (down
 * after 2 failures, up after 1 answer), and its idle keep-alive
 * connections kept for the next requests (said, not left to defaults that
 * changed from one HAProxy to the next). */
#define EP_SERVER_OPTS	" check inter 1s fall 2 rise 1 pool-max-conn -1" \
			" pool-purge-delay 5s"

static void cfg_global(struct text *t, const struct ep_proxy *p)
{
	long ms = p->cfg.request_timeout_ms;

	out(t, "global\n"
	    "\tstats socket %s/" EP_FILE_API " mode 600 level admin"
	    " expose-fd listeners\n"
	    "\tlua-load %s/" EP_FILE_LUA "\n"
	    "\ttune.bufsize %d\n", p->dir, p->dir, EP_BUFSIZE);
	if (p->run_uid > 0)
		out(t, "\tuid %d\n\tgid %d\n", p->run_uid, p->run_gid);
	out(t, "\n");
	out(t, "defaults\n"
	    "\tmode http\n"
	    /* access lines on stdout (the endpoint's log), the proxy's
	     * own messages on stderr */
	    "\tlog stdout format raw local0\n"
	    "\ttimeout connect 5s\n"
	    "\ttimeout client %ldms\n"
	    "\ttimeout server %ldms\n"
	    "\ttimeout http-request %ldms\n"
	    "\ttimeout queue %ldms\n"
	    "\tretries 2\n"
	    "\toption redispatch\n\n", ms, ms, ms, ms);
}

/* The mirror: off (pct 0) costs a map lookup per request; on, the
 * request's body is waited for (the copy carries it) and copied. */
static void cfg_mirror(struct text *t, const struct ep_proxy *p)
{
	out(t, "\thttp-request set-var(txn.m_pct) str(pct),map(%s/"
	    EP_FILE_MIRROR ",0)\n"
	    "\tacl mirror_off var(txn.m_pct) -m str 0\n"
	    "\thttp-request wait-for-body time %ldms if !mirror_off\n"
	    "\thttp-request set-var(txn.m_addr) str(addr),map(%s/"
	    EP_FILE_MIRROR ",-) if !mirror_off\n"
	    "\thttp-request set-var(txn.m_auth) str(auth),map(%s/"
	    EP_FILE_MIRROR ",-) if !mirror_off\n"
	    "\thttp-request lua.mirror if !mirror_off\n", p->dir,
	    p->cfg.request_timeout_ms, p->dir, p->dir);
}

/* Pinned, else drawn: straight to dep_D while D has a server up; the
 * rest (D down, or no range drawn) to the weighted, health-aware split. */
static void cfg_routes(struct text *t, const struct ep_proxy *p)
{
	out(t, "\thttp-request set-var(txn.d) rand(100),map_int(%s/"
	    EP_FILE_SPLIT ",-) unless pinned\n"
	    "\tuse_backend dep_%%[req.hdr(" EP_PIN_HEADER "),map(%s/"
	    EP_FILE_NAMES ")] if pinned\n", p->dir, p->dir);
	for (int i = 0; i < p->n; i++)
		out(t, "\tuse_backend dep_%s if { var(txn.d) -m str %s }"
		    " { nbsrv(dep_%s) gt 0 }\n", p->b[i].name,
		    p->b[i].name, p->b[i].name);
	out(t, "\tdefault_backend split\n\n");
}

/* The key check, the pin and the mirror: the order is the point (a wrong
 * key is refused before anything is sent anywhere). */
static void cfg_frontend(struct text *t, const struct ep_proxy *p)
{
	out(t, "frontend ep\n\tbind ");
	cfg_addr(t, p->cfg.host, p->port);
	/* a reload's old worker answers the next request on an idle
	 * keep-alive connection with `Connection: close` instead of closing
	 * it under a client that is sending one (which would fail it) */
	out(t, "\n\toption idle-close-on-response");
	/* time (UTC, as in events), deployment (set by the backend that
	 * took the request: its servers are the replicas; `-` for one
	 * refused before), status, ms */
	out(t, "\n\tlog-format \"%%[date,utime(%%Y-%%m-%%dT%%H:%%M:%%SZ)]"
	    " %%[var(txn.dep)] %%ST %%Ta\"\n"
	    "\thttp-request deny deny_status 413 if"
	    " { req.hdr_val(content-length) gt %ld }\n"
	    "\thttp-request deny deny_status 401 unless"
	    " { req.hdr(authorization),regsub(\"^Bearer +\",\"\"),"
	    "map(%s/" EP_FILE_KEYS ") -m found }\n"
	    "\thttp-request del-header authorization\n"
	    "\tacl pinned req.hdr(" EP_PIN_HEADER ") -m found\n"
	    "\thttp-request deny deny_status 404 if pinned"
	    " !{ req.hdr(" EP_PIN_HEADER "),map(%s/" EP_FILE_NAMES ")"
	    " -m found }\n", p->cfg.max_body, p->dir, p->dir);
	cfg_mirror(t, p);
	cfg_routes(t, p);
}

/* The fallback: weighted over the deployments up, each reached by its
 * in_D frontend (a second hop). */
static void cfg_split(struct text *t, const struct ep_proxy *p)
{
	out(t, "backend split\n\tbalance random\n"
	    "\thttp-after-response set-var(txn.dep) srv_name\n");
	for (int i = 0; i < p->n; i++)
		out(t, "\tserver %s abns@mlfs-ep-%s-%s weight %d"
		    " track dep_%s/%s\n", p->b[i].name, p->tag,
		    p->b[i].name, p->b[i].weight, p->b[i].name,
		    p->b[i].name);
	out(t, "\n");
}

/* Where @b's replicas have their direct ports. */
static const char *rep_host(const struct ep_backend *b)
{
	return b->rhost[0] ? b->rhost : "127.0.0.1";
}

/* Deployment @b's backend, its own key, its health; and the frontend
 * that the fallback's second hop reaches it by. */
static void cfg_dep(struct text *t, const struct ep_proxy *p,
		    const struct ep_backend *b)
{
	out(t, "frontend in_%s\n\tbind abns@mlfs-ep-%s-%s\n\tno log\n"
	    "\tdefault_backend dep_%s\n\n", b->name, p->tag, b->name,
	    b->name);
	out(t, "backend dep_%s\n\tbalance leastconn\n\toption httpchk GET /\n"
	    "\thttp-request set-var(txn.dep) str(%s)\n"
	    "\thttp-request set-header authorization \"Bearer %s\"\n",
	    b->name, b->name, b->key);
	for (int i = 0; i < EP_REPS_MAX; i++) {
		out(t, "\tserver r%d ", i + 1);
		cfg_addr(t, rep_host(b), b->slot[i] ? b->slot[i] : 1);
		out(t, EP_SERVER_OPTS "%s\n", b->slot[i] ? "" : " disabled");
	}
	out(t, "\tserver %s ", b->name);
	cfg_addr(t, b->host, b->port);
	out(t, EP_SERVER_OPTS " backup\n\n");
}

int ep_rep_has(const struct ep_backend *b, int port)
{
	for (int i = 0; i < b->nrep; i++)
		if (b->rep[i] == port)
			return 1;
	return 0;
}

int ep_slot_free(const struct ep_backend *b)
{
	int best = -1;

	for (int k = 0; k < EP_REPS_MAX; k++)
		if (!b->slot[k] && (best < 0 || b->freed[k] < b->freed[best]))
			best = k;
	return best;
}

void ep_slots_fill(struct ep_backend *b)
{
	memset(b->slot, 0, sizeof(b->slot));
	memset(b->freed, 0, sizeof(b->freed));
	b->nfreed = 0;
	for (int i = 0; i < b->nrep && i < EP_REPS_MAX; i++)
		b->slot[i] = b->rep[i];
}

int ep_slot_cmd(const struct ep_backend *b, int slot, int port, char *buf,
		size_t sz)
{
	int n;

	if (slot < 0 || slot >= EP_REPS_MAX)
		return -EINVAL;
	if (port)
		n = snprintf(buf, sz, "set server dep_%s/r%d addr %s"
			     " port %d\nset server dep_%s/r%d state ready\n",
			     b->name, slot + 1, rep_host(b), port, b->name,
			     slot + 1);
	else
		n = snprintf(buf, sz, "set server dep_%s/r%d state maint\n",
			     b->name, slot + 1);
	return n > 0 && (size_t)n < sz ? 0 : -ENAMETOOLONG;
}

/* Nothing the proxy's syntax would read otherwise: no blank, quote or
 * backslash in a host or key (names are object names already). */
static int cfg_safe(const char *s)
{
	return *s && !strpbrk(s, " \t\n\"'\\#%$");
}

static int proxy_check(const struct ep_proxy *p, struct err *e)
{
	if (!cfg_safe(p->dir) || !cfg_safe(p->tag) || !cfg_safe(p->cfg.host))
		return err_set(e, -EINVAL, "the proxy's folder, tag or host"
			       " has a character its configuration cannot"
			       " carry.");
	for (int i = 0; i < p->n; i++)
		if (!cfg_safe(p->b[i].host) || !cfg_safe(p->b[i].key) ||
		    !cfg_safe(rep_host(&p->b[i])))
			return err_set(e, -EINVAL, "deployment '%s' has an"
				       " address or key the proxy cannot"
				       " carry.", p->b[i].name);
	return 0;
}

int ep_proxy_config(const struct ep_proxy *p, char **res, struct err *e)
{
	struct text t;
	int rc = proxy_check(p, e);

	if (rc)
		return rc;
	if (text_open(&t))
		return err_set(e, -ENOMEM, "out of memory.");
	out(&t, "# made by mlfs for one endpoint: do not edit\n");
	cfg_global(&t, p);
	cfg_frontend(&t, p);
	cfg_split(&t, p);
	for (int i = 0; i < p->n; i++)
		cfg_dep(&t, p, &p->b[i]);
	if (text_close(&t, res))
		return err_set(e, -ENOMEM, "out of memory.");
	return 0;
}

/* ---- maps ------------------------------------------------------------- */

int ep_keys_map(const char *const *keys, int n, char **res)
{
	struct text t;

	if (text_open(&t))
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		if (keys[i] && cfg_safe(keys[i]))
			out(&t, "%s 1\n", keys[i]);
	return text_close(&t, res);
}

int ep_names_map(const struct ep_proxy *p, char **res)
{
	struct text t;

	if (text_open(&t))
		return -ENOMEM;
	for (int i = 0; i < p->n; i++)
		out(&t, "%s %s\n", p->b[i].name, p->b[i].name);
	return text_close(&t, res);
}

int ep_split_map(const struct ep_proxy *p, char **res)
{
	struct text t;
	int lo = 0;

	if (text_open(&t))
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		int w = p->b[i].gone ? 0 : p->b[i].weight;

		if (w <= 0 || lo + w > 100)
			continue;
		out(&t, "%d:%d %s\n", lo, lo + w - 1, p->b[i].name);
		lo += w;
	}
	return text_close(&t, res);
}

static const struct ep_backend *find_dep(const struct ep_proxy *p,
					 const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->b[i].name, name))
			return &p->b[i];
	return NULL;
}

/* The mirror's four entries, each after @pre ("" for the file,
 * "set map FILE " for the API), the share last. */
static void mirror_entries(struct text *t, const struct ep_proxy *p,
			   const struct ep_mirror *m, const char *pre)
{
	const struct ep_backend *b = m->name[0] ? find_dep(p, m->name) : NULL;

	out(t, "%sdep %s\n", pre, b ? b->name : "-");
	out(t, "%saddr %s:%d\n", pre, b ? b->host : "127.0.0.1",
	    b ? b->port : 1);
	out(t, "%sauth %s\n", pre, b ? b->key : "-");
	out(t, "%spct %d\n", pre, b ? m->percent : 0);
}

int ep_mirror_map(const struct ep_proxy *p, char **res)
{
	struct text t;

	if (text_open(&t))
		return -ENOMEM;
	mirror_entries(&t, p, &p->mirror, "");
	return text_close(&t, res);
}

/* ---- runtime API ------------------------------------------------------ */

static int weight_of(const struct ep_traffic *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->w[i].name, name))
			return t->w[i].weight;
	return 0;
}

int ep_weight_cmds(const struct ep_proxy *p, const struct ep_traffic *tr,
		   char **res)
{
	struct text t;

	if (text_open(&t))
		return -ENOMEM;
	for (int i = 0; i < p->n; i++)
		out(&t, "set server split/%s weight %d\n", p->b[i].name,
		    weight_of(tr, p->b[i].name));
	return text_close(&t, res);
}

int ep_mirror_cmds(const struct ep_proxy *p, const struct ep_mirror *m,
		   char **res)
{
	struct text t;
	char pre[4200];

	if (text_open(&t))
		return -ENOMEM;
	snprintf(pre, sizeof(pre), "set map %s/" EP_FILE_MIRROR " ", p->dir);
	/* off first, on last: the Lua side never copies to a half-set
	 * target */
	out(&t, "%spct 0\n", pre);
	mirror_entries(&t, p, m, pre);
	return text_close(&t, res);
}

int ep_key_cmds(const struct ep_proxy *p, const char *add, const char *del,
		char **res)
{
	struct text t;

	if (text_open(&t))
		return -ENOMEM;
	if (add && cfg_safe(add))
		out(&t, "add map %s/" EP_FILE_KEYS " %s 1\n", p->dir, add);
	if (del && cfg_safe(del))
		out(&t, "del map %s/" EP_FILE_KEYS " %s\n", p->dir, del);
	return text_close(&t, res);
}

/* ---- the mirror ------------------------------------------------------- */

/*
 * Lua (HAProxy 2.6 has no mirror of its own): for `pct` % of requests,
 * a task sends a copy of the buffered body to the mirror's deployment with
 * its key; the answer and any failure are dropped, and the client's
 * request goes on at once (the task runs beside it).
 */
static const char mirror_lua[] =
"-- made by mlfs: copies a share of the requests to the mirror\n"
"-- (one Lua state for all threads: the count below is shared)\n"
"local inflight, most = 0, " EP_MIRROR_INFLIGHT "\n"
"core.register_action(\"mirror\", {\"http-req\"}, function(txn)\n"
"\tlocal pct = tonumber(txn:get_var(\"txn.m_pct\") or \"0\") or 0\n"
"\tif pct <= 0 or math.random(100) > pct then return end\n"
"\t-- a slow mirror does not pile copies up: past `most`, none\n"
"\tif inflight >= most then return end\n"
"\tlocal addr = txn:get_var(\"txn.m_addr\")\n"
"\tlocal auth = txn:get_var(\"txn.m_auth\")\n"
"\tif not addr or addr == \"-\" or not auth then return end\n"
"\tlocal body = txn.sf:req_body() or \"\"\n"
"\tlocal want = tonumber(txn.sf:req_hdr(\"content-length\") or \"0\")\n"
"\t-- a body larger than the buffer is not copied half\n"
"\tif want and #body < want then return end\n"
"\tlocal ct = txn.sf:req_hdr(\"content-type\") or \"application/json\"\n"
"\tlocal path = txn.sf:path() or \"/score\"\n"
"\tinflight = inflight + 1\n"
"\tcore.register_task(function()\n"
"\t\tlocal hc = core.httpclient()\n"
"\t\tpcall(hc.post, hc, {url = \"http://\" .. addr .. path,\n"
"\t\t\tbody = body, timeout = 10000, headers = {\n"
"\t\t\t[\"content-type\"] = {ct},\n"
"\t\t\t[\"authorization\"] = {\"Bearer \" .. auth}}})\n"
"\t\tinflight = inflight - 1\n"
"\tend)\n"
"end, 0)\n";

const char *ep_mirror_lua(void)
{
	return mirror_lua;
}

/* ---- stats ------------------------------------------------------------ */

/* Column @name of the CSV header @hdr ("# pxname,svname,..."), or -1. */
static int csv_col(const char *hdr, const char *name)
{
	size_t n = strlen(name);
	int col = 0;

	if (!strncmp(hdr, "# ", 2))
		hdr += 2;
	for (const char *s = hdr; *s && *s != '\n'; col++) {
		if (!strncmp(s, name, n) && (s[n] == ',' || s[n] == '\n' ||
					     !s[n]))
			return col;
		s += strcspn(s, ",\n");
		if (*s == ',')
			s++;
	}
	return -1;
}

/* Field @col of CSV line @line into @buf ("" when missing). */
static void csv_field(const char *line, int col, char *buf, size_t sz)
{
	size_t n;

	buf[0] = '\0';
	for (int i = 0; i < col && col >= 0; i++) {
		line += strcspn(line, ",\n");
		if (*line != ',')
			return;
		line++;
	}
	n = strcspn(line, ",\n");
	if (col < 0 || n >= sz)
		return;
	memcpy(buf, line, n);
	buf[n] = '\0';
}

static long csv_num(const char *line, int col)
{
	char buf[32];

	csv_field(line, col, buf, sizeof(buf));
	return strtol(buf, NULL, 10);
}

/* The line of @csv for proxy @px, server @sv, or NULL. */
static const char *csv_row(const char *csv, const char *px, const char *sv)
{
	char want[200];
	size_t n = (size_t)snprintf(want, sizeof(want), "%s,%s,", px, sv);

	for (const char *s = csv; s && *s; s = strchr(s, '\n'), s += !!s)
		if (!strncmp(s, want, n))
			return s;
	return NULL;
}

struct dep_stat {
	long req, err, flight;
	const char *state;
};

static void dep_stat(const char *csv, const char *name, struct dep_stat *d)
{
	char px[80], st[32];
	const char *be, *sv;

	snprintf(px, sizeof(px), "dep_%s", name);
	be = csv_row(csv, px, "BACKEND");
	sv = csv_row(csv, px, name);
	memset(d, 0, sizeof(*d));
	d->state = "?";
	if (be) {
		d->req = csv_num(be, csv_col(csv, "stot"));
		d->err = csv_num(be, csv_col(csv, "hrsp_5xx")) +
			 csv_num(be, csv_col(csv, "econ")) +
			 csv_num(be, csv_col(csv, "eresp"));
		d->flight = csv_num(be, csv_col(csv, "scur")) +
			    csv_num(be, csv_col(csv, "qcur"));
	}
	/* up while the backend has a server up, the replicas' slots or the
	 * service's address: the proxy's own test (nbsrv) for sending to it.
	 * The service's server alone said down while a slot still took
	 * requests to a stopped replica (45, under ASan) */
	if (be || sv) {
		csv_field(be ? be : sv, csv_col(csv, "status"), st,
			  sizeof(st));
		d->state = !strncmp(st, "UP", 2) ? "up" : st[0] ? "down" : "?";
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The times (ms) of @name's access lines in @log into @ms (at most
 * @max); their number.  A line cut by the start of @log, or not an
 * access line, matches nothing. */
static int log_times(const char *log, size_t len, const char *name,
		     int *ms, int max)
{
	char line[256], dep[EP_NAME_MAX + 8];
	const char *s = log, *end = log + len;
	int n = 0, status, t;

	while (s < end && n < max) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t l = (size_t)((nl ? nl : end) - s);

		if (l < sizeof(line)) {
			memcpy(line, s, l);
			line[l] = '\0';
			if (sscanf(line, "%*s %71s %d %d", dep, &status,
				   &t) == 3 && !strcmp(dep, name) && t >= 0)
				ms[n++] = t;
		}
		s += l + 1;
	}
	return n;
}

/* Percentile @pc of the sorted @v (@n > 0), nearest rank. */
static int pctl(const int *v, int n, int pc)
{
	int rank = (pc * n + 99) / 100;

	return v[rank > 0 ? rank - 1 : 0];
}

#define STATS_SAMPLES	4096

static void stats_line(struct text *t, const struct ep_backend *b,
		       const char *csv, const char *log, size_t len, int *ms)
{
	struct dep_stat d;
	int n = log_times(log, len, b->name, ms, STATS_SAMPLES);

	dep_stat(csv ? csv : "", b->name, &d);
	out(t, "%s %ld %ld ", b->name, d.req, d.err);
	qsort(ms, n, sizeof(*ms), cmp_int);
	if (n)
		out(t, "%d %d", pctl(ms, n, 50), pctl(ms, n, 99));
	else
		out(t, "- -");
	out(t, " %d %ld %s\n", b->replicas, d.flight, d.state);
}

int ep_stats_text(const struct ep_proxy *p, const char *csv,
		  const char *log, size_t len, char **res)
{
	int *ms = malloc(STATS_SAMPLES * sizeof(*ms));
	struct text t;

	if (!ms || text_open(&t)) {
		free(ms);
		return -ENOMEM;
	}
	for (int i = 0; i < p->n; i++)
		if (!p->b[i].gone)
			stats_line(&t, &p->b[i], csv, log ? log : "",
				   log ? len : 0, ms);
	free(ms);
	return text_close(&t, res);
}
