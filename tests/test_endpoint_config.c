// SPDX-License-Identifier: MIT
/*
 * Unit test of backend/endpoint_config.c: an endpoint's `traffic`,
 * `mirror` and `config` as users write them, good and bad; the proxy's
 * configuration, maps and runtime-API commands.  When HAProxy is
 * installed its own parser checks the configuration (`haproxy -c`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "endpoint_config.h"
#include "tap.h"

static int traffic(const char *text, struct ep_traffic *t, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return ep_traffic_parse(text, strlen(text), t, e);
}

static void traffic_good(void)
{
	struct ep_traffic t;
	struct err e;

	CHECK(traffic("", &t, &e) == 0 && t.n == 0, "empty traffic: none");
	CHECK(traffic("blue 100\n", &t, &e) == 0 && t.n == 1 &&
	      t.w[0].weight == 100, "one deployment at 100");
	CHECK(traffic("blue 90\ngreen 10", &t, &e) == 0 && t.n == 2 &&
	      !strcmp(t.w[1].name, "green") && t.w[1].weight == 10,
	      "blue 90, green 10, no trailing newline");
	CHECK(traffic("# canary\n  blue\t 95 \n\ngreen 5\n", &t, &e) == 0 &&
	      t.n == 2 && t.w[0].weight == 95, "comments, blanks, tabs");
	CHECK(traffic("blue 100\ngreen 0\n", &t, &e) == 0 && t.n == 2 &&
	      t.w[1].weight == 0, "a weight of 0 keeps a deployment listed");
}

/* @text without @name's line, as text again: @want. */
static void drop_is(const char *text, const char *name, int had,
		    const char *want)
{
	struct ep_traffic t;
	struct err e;
	char *out = NULL;
	int rc = traffic(text, &t, &e);

	if (rc == -EINVAL && strstr(e.msg, "sum to"))
		rc = 0;	/* a split not finished yet: t is filled */
	int ok = rc == 0 && ep_traffic_drop(&t, name) == had &&
		 !ep_traffic_text(&t, &out) && !strcmp(out, want);

	/* one TAP line: the texts' newlines shown as / */
	for (char *c = out; c && *c; c++)
		*c = *c == '\n' ? '/' : *c;
	CHECK(ok, "%s without %s (got '%s')", text[0] ? "a split" : "none",
	      name, out ? out : "?");
	free(out);
}

static void traffic_drops(void)
{
	drop_is("blue 50\ngreen 50\n", "green", 1, "blue 100\n");
	drop_is("blue 20\ngreen 50\nred 30\n", "green", 1,
		"blue 40\nred 60\n");
	/* README's example: 71.4 and 28.6, the point to the larger
	 * remainder */
	drop_is("blue 50\ngreen 30\nred 20\n", "green", 1,
		"blue 71\nred 29\n");
	/* 100/3 each: 33, 33, 34 by the largest remainder, ties to the
	 * earlier line */
	drop_is("a 25\nb 25\nc 25\nd 25\n", "d", 1, "a 34\nb 33\nc 33\n");
	drop_is("blue 90\ngreen 10\ncanary 0\n", "green", 1,
		"blue 100\ncanary 0\n");
	drop_is("blue 100\ngreen 0\n", "blue", 1, "");
	drop_is("blue 100\n", "blue", 1, "");
	drop_is("blue 100\n", "green", 0, "blue 100\n");
	drop_is("", "green", 0, "");
	drop_is("blue 30\ngreen 20\n", "green", 1, "blue 30\n");
}

static void traffic_bad(const char *text, const char *why,
			const char *words)
{
	struct ep_traffic t;
	struct err e;
	int rc = traffic(text, &t, &e);

	CHECK(rc == -EINVAL && strstr(e.msg, words), "%s: EINVAL (%s)", why,
	      e.msg);
}

static void traffic_bads(void)
{
	char many[1024] = "";

	traffic_bad("blue 90\ngreen 20\n", "sum 110", "sum to 110");
	traffic_bad("blue 50\n", "sum 50", "sum to 50");
	traffic_bad("blue 0\n", "sum 0", "sum to 0");
	traffic_bad("blue\n", "no weight", "line 1");
	traffic_bad("blue 90\ngreen ten\n", "weight not a number", "line 2");
	traffic_bad("blue -10\ngreen 110\n", "negative weight", "line 1");
	traffic_bad("blue 101\n", "weight over 100", "0 to 100");
	traffic_bad("blue 50.5\ngreen 49.5\n", "fraction", "integer");
	traffic_bad("blue 50\nblue 50\n", "a name twice", "twice");
	traffic_bad("../etc 100\n", "not a name", "not a deployment name");
	traffic_bad("blue 50 x\ngreen 50\n", "a third word", "line 1");
	for (int i = 0; i < EP_DEPS_MAX + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "d%d %d\n", i, i ? 0 : 100);
	traffic_bad(many, "too many deployments", "at most");
}

static int mirror(const char *text, struct ep_mirror *m, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return ep_mirror_parse(text, strlen(text), m, e);
}

static void mirrors(void)
{
	struct ep_mirror m;
	struct err e;

	CHECK(mirror("", &m, &e) == 0 && !m.name[0], "empty mirror: off");
	CHECK(mirror("green 20\n", &m, &e) == 0 &&
	      !strcmp(m.name, "green") && m.percent == 20, "green 20");
	CHECK(mirror("green 0\n", &m, &e) == 0 && m.percent == 0, "green 0");
	CHECK(mirror("green 120\n", &m, &e) == -EINVAL &&
	      strstr(e.msg, "0 to 100"), "120%%: EINVAL (%s)", e.msg);
	CHECK(mirror("green 10\nblue 10\n", &m, &e) == -EINVAL &&
	      strstr(e.msg, "one line"), "two lines: EINVAL (%s)", e.msg);
	CHECK(mirror("green\n", &m, &e) == -EINVAL &&
	      strstr(e.msg, "PERCENT"), "no percent: EINVAL (%s)", e.msg);
}

static int config(const char *text, struct ep_config *c, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return ep_config_parse(text, strlen(text), c, e);
}

static void configs(void)
{
	struct ep_config c;
	struct err e;

	CHECK(config("", &c, &e) == 0 && !strcmp(c.host, "127.0.0.1") &&
	      c.port == 0 && c.request_timeout_ms == 60000 &&
	      c.max_body == 100L << 20, "defaults");
	CHECK(config("host = 0.0.0.0\nport = 8443\nrequest_timeout_ms = 500\n"
		      "max_body = 64K\n", &c, &e) == 0 && c.port == 8443 &&
	      c.request_timeout_ms == 500 && c.max_body == 65536,
	      "every key");
	CHECK(config("colour = red\n", &c, &e) == -EINVAL &&
	      strstr(e.msg, "colour"), "unknown key (%s)", e.msg);
	CHECK(config("port = 70000\n", &c, &e) == -EINVAL &&
	      strstr(e.msg, "port"), "port too large (%s)", e.msg);
	CHECK(config("max_body = 2G\n", &c, &e) == -EINVAL &&
	      strstr(e.msg, "max_body"), "max_body 2G (%s)", e.msg);
	CHECK(config("max_body = 0\n", &c, &e) == -EINVAL,
	      "max_body 0 (%s)", e.msg);
	CHECK(config("max_body = 5X\n", &c, &e) == -EINVAL,
	      "max_body 5X (%s)", e.msg);
	CHECK(config("host = a\"b\n", &c, &e) == -EINVAL &&
	      strstr(e.msg, "host"), "host with a quote (%s)", e.msg);
	CHECK(config("request_timeout_ms = 10\n", &c, &e) == -EINVAL,
	      "request_timeout_ms too short (%s)", e.msg);
}

/* An endpoint with blue and green behind it, in @dir. */
static void proxy_fill(struct ep_proxy *p, const char *dir)
{
	struct err e;

	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->tag = "7";
	ep_config_parse("", 0, &p->cfg, &e);
	p->port = 18080;
	p->n = 2;
	snprintf(p->b[0].name, EP_NAME_MAX, "blue");
	snprintf(p->b[0].host, 256, "127.0.0.1");
	p->b[0].port = 8001;
	snprintf(p->b[0].key, EP_KEY_MAX, "bluekey");
	p->b[0].weight = 90;
	p->b[0].nrep = 2;	/* blue's replicas' direct ports; green: none */
	p->b[0].rep[0] = 41001;
	p->b[0].rep[1] = 41002;
	ep_slots_fill(&p->b[0]);
	ep_slots_fill(&p->b[1]);
	snprintf(p->b[1].name, EP_NAME_MAX, "green");
	snprintf(p->b[1].host, 256, "127.0.0.1");
	p->b[1].port = 8002;
	snprintf(p->b[1].key, EP_KEY_MAX, "greenkey");
	p->b[1].weight = 10;
	snprintf(p->mirror.name, EP_NAME_MAX, "green");
	p->mirror.percent = 20;
}

/* The key check comes before every line that sends anything anywhere. */
static void proxy_text(void)
{
	struct ep_proxy p;
	struct err e;
	char *cfg = NULL, *deny, *mir, *use;

	proxy_fill(&p, "/state/ep/7");
	CHECK(ep_proxy_config(&p, &cfg, &e) == 0 && cfg, "config made");
	if (!cfg)
		return;
	deny = strstr(cfg, "deny_status 401");
	mir = strstr(cfg, "lua.mirror");
	use = strstr(cfg, "use_backend");
	CHECK(deny && mir && use && deny < mir && deny < use,
	      "the key check precedes the mirror and the pin");
	CHECK(strstr(cfg, "server blue abns@mlfs-ep-7-blue weight 90"
		     " track dep_blue/blue") != NULL, "blue weighted 90");
	CHECK(strstr(cfg, "\"Bearer greenkey\"") != NULL,
	      "green's own key on its hop");
#define OPTS "check inter 1s fall 2 rise 1 pool-max-conn -1 pool-purge-delay 5s"
	CHECK(strstr(cfg, "backend dep_blue\n\tbalance leastconn\n") &&
	      strstr(cfg, "\tserver r1 127.0.0.1:41001 " OPTS "\n"
		     "\tserver r2 127.0.0.1:41002 " OPTS "\n"
		     "\tserver r3 127.0.0.1:1 " OPTS " disabled\n") &&
	      strstr(cfg, "\tserver r48 127.0.0.1:1 " OPTS " disabled\n"
		     "\tserver blue 127.0.0.1:8001 " OPTS " backup\n") &&
	      !strstr(cfg, "dep_blue/r49"),
	      "blue: a slot per replica (idle connections pooled), the"
	      " others disabled up to 48, the service the backup");
	CHECK(strstr(cfg, "\tserver r1 127.0.0.1:1 " OPTS " disabled\n") &&
	      strstr(cfg, "\tserver r48 127.0.0.1:1 " OPTS " disabled\n"
		     "\tserver green 127.0.0.1:8002 " OPTS " backup\n"),
	      "green (no direct port known): its slots disabled, the"
	      " service alone");
	CHECK(strstr(cfg, " %[var(txn.dep)] %ST %Ta\"") &&
	      strstr(cfg, "backend dep_green\n\tbalance leastconn\n\toption"
		     " httpchk GET /\n\thttp-request set-var(txn.dep)"
		     " str(green)\n") &&
	      strstr(cfg, "\thttp-after-response set-var(txn.dep) srv_name\n"),
	      "the access line names the deployment, whichever server");
	CHECK(strstr(cfg, "bind 127.0.0.1:18080") != NULL, "binds");
	CHECK(strstr(cfg, "bind 127.0.0.1:18080\n\toption"
		     " idle-close-on-response\n") != NULL,
	      "a reload closes no idle keep-alive connection under a client");
	CHECK(strstr(cfg, "\thttp-request set-var(txn.d) rand(100),map_int("
		     "/state/ep/7/split.map,-) unless pinned\n") &&
	      strstr(cfg, "\tuse_backend dep_blue if { var(txn.d) -m str"
		     " blue } { nbsrv(dep_blue) gt 0 }\n\tuse_backend"
		     " dep_green if { var(txn.d) -m str green } { nbsrv("
		     "dep_green) gt 0 }\n\tdefault_backend split\n"),
	      "one hop: a drawn deployment's own backend while it is up,"
	      " else the split");
	CHECK(strstr(cfg, "dep_%[req.hdr(azureml-model-deployment),map("
		     "/state/ep/7/names.map)] if pinned\n") &&
	      strstr(cfg, "if pinned") < strstr(cfg, "var(txn.d) -m str"),
	      "a pinned request is routed before the draw");
	CHECK(!strstr(cfg, "http-buffer-request") &&
	      strstr(cfg, "\thttp-request wait-for-body time 60000ms if"
		     " !mirror_off\n"),
	      "the body is waited for only when the mirror is on");
	free(cfg);
	snprintf(p.b[0].rhost, sizeof(p.b[0].rhost), "192.0.2.7");
	CHECK(ep_proxy_config(&p, &cfg, &e) == 0 && cfg &&
	      strstr(cfg, "\tserver r1 192.0.2.7:41001 " OPTS "\n") &&
	      strstr(cfg, "\tserver r48 192.0.2.7:1 " OPTS " disabled\n"),
	      "replicas on an ssh host: the slots at the host's address");
	free(cfg);
	cfg = NULL;
	snprintf(p.b[0].rhost, sizeof(p.b[0].rhost), "a b");
	CHECK(ep_proxy_config(&p, &cfg, &e) == -EINVAL,
	      "a replicas' address with a blank is refused");
	p.b[0].rhost[0] = '\0';
	snprintf(p.b[1].key, EP_KEY_MAX, "a\" b");
	CHECK(ep_proxy_config(&p, &cfg, &e) == -EINVAL &&
	      strstr(e.msg, "green"), "a key with a quote is refused (%s)",
	      e.msg);
}

/* The split map for blue, green at weights @b, @g (green gone: @gone). */
static void split_case(struct ep_proxy *p, int b, int g, int gone,
		       const char *want, const char *what)
{
	char *s = NULL;

	p->b[0].weight = b;
	p->b[1].weight = g;
	p->b[1].gone = gone;
	CHECK(ep_split_map(p, &s) == 0 && !strcmp(s, want), "split map: %s",
	      what);
	free(s);
}

static void split_maps(struct ep_proxy *p)
{
	split_case(p, 90, 10, 0, "0:89 blue\n90:99 green\n",
		   "blue 0-89, green 90-99");
	split_case(p, 0, 100, 0, "0:99 green\n", "a weight of 0 has no range");
	split_case(p, 30, 70, 1, "0:29 blue\n",
		   "one gone has no range, 30-99 left to the fallback");
	split_case(p, 90, 90, 0, "0:89 blue\n", "never past 99");
	split_case(p, 90, 10, 0, "0:89 blue\n90:99 green\n", "back");
}

static void proxy_cmds(void)
{
	struct ep_proxy p;
	struct ep_traffic t;
	struct err e;
	char *s = NULL;

	proxy_fill(&p, "/d");
	traffic("green 100\n", &t, &e);
	CHECK(ep_weight_cmds(&p, &t, &s) == 0 && !strcmp(s,
	      "set server split/blue weight 0\n"
	      "set server split/green weight 100\n"),
	      "weights: blue 0, green 100");
	free(s);
	CHECK(ep_key_cmds(&p, "new", "old", &s) == 0 && !strcmp(s,
	      "add map /d/keys.map new 1\ndel map /d/keys.map old\n"),
	      "the new key is added before the old goes");
	free(s);
	CHECK(ep_mirror_cmds(&p, &p.mirror, &s) == 0 &&
	      !strncmp(s, "set map /d/mirror.map pct 0\n", 28) &&
	      strstr(s, "set map /d/mirror.map pct 20\n") ==
	      s + strlen(s) - 29, "mirror: off first, on last");
	free(s);
	split_maps(&p);
	p.b[1].weight = 10;
	snprintf(p.mirror.name, EP_NAME_MAX, "purple");
	CHECK(ep_mirror_map(&p, &s) == 0 && strstr(s, "pct 0\n"),
	      "a mirror naming no member copies nothing");
	free(s);
}

static const char csv[] =
"# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,"
"econ,eresp,wretr,wredis,status,weight,hrsp_5xx,\n"
"dep_blue,blue,0,0,1,2,,10,0,0,0,0,,0,0,0,0,UP,1,0,\n"
"dep_blue,BACKEND,1,1,2,2,,12,0,0,0,0,,0,0,0,0,UP,1,0,\n"
"dep_green,green,0,0,0,0,,3,0,0,0,0,,1,0,0,0,DOWN,1,2,\n"
"dep_green,BACKEND,0,0,0,0,,3,0,0,0,0,,1,1,0,0,DOWN,0,2,\n";

static void stats(void)
{
	const char *log =
		"ck line\n"
		"2026-12-06T17:00:00Z blue 200 4\n"
		"2026-12-06T17:00:00Z blue 200 2\n"
		"2026-12-06T17:00:00Z green 503 9\n"
		"2026-12-06T17:00:01Z blue 200 100\n"
		"2026-12-06T17:00:01Z <NOSRV> 401 0\n"
		"2026-12-06T17:00:01Z blue 200 3";
	struct ep_proxy p;
	char *s = NULL;

	proxy_fill(&p, "/d");
	p.b[0].replicas = 2;
	CHECK(ep_stats_text(&p, csv, log, strlen(log), &s) == 0 && s,
	      "stats made");
	CHECK(s && !strcmp(s, "blue 12 0 3 100 2 3 up\n"
			   "green 3 4 9 9 0 0 down\n"),
	      "stats: requests, errors, p50, p99, replicas, in flight,"
	      " state: %s", s ? s : "");
	free(s);
	/* the service's server down, a replica's slot up: blue is up (the
	 * proxy still sends to it) */
	{
		char *c2 = strdup(csv), *at = c2 ? strstr(c2, "dep_blue,blue,") : NULL;

		if (at)
			memcpy(strstr(at, ",UP,"), ",DN,", 4);
		CHECK(c2 && ep_stats_text(&p, c2, log, strlen(log), &s) == 0 &&
		      s && !strncmp(s, "blue 12 0 3 100 2 3 up\n", 23),
		      "up while its backend is: %s", s ? s : "");
		free(s);
		free(c2);
	}
	CHECK(ep_stats_text(&p, NULL, NULL, 0, &s) == 0 && s &&
	      !strcmp(s, "blue 0 0 - - 2 0 ?\ngreen 0 0 - - 0 0 ?\n"),
	      "stats of a proxy that says nothing");
	free(s);
}

/* @text (freed here) into @dir/@name. */
static void put(const char *dir, const char *name, char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text ? text : "", f);
		fclose(f);
	}
	free(text);
}

/* HAProxy's own parser on what we generate, with every file in place. */
static void haproxy_check(void)
{
	char dir[] = "/tmp/mlfs-ep-test.XXXXXX", cmd[256], *txt = NULL;
	const char *keys[] = { "k1", "k2" };
	struct ep_proxy p;
	struct err e;
	int st;

	if (access("/usr/sbin/haproxy", X_OK)) {
		printf("ok %d - # SKIP haproxy not installed\n", ++tap_n);
		return;
	}
	if (!mkdtemp(dir))
		return;
	proxy_fill(&p, dir);
	ep_proxy_config(&p, &txt, &e);
	put(dir, EP_FILE_CFG, txt);
	txt = NULL;
	ep_keys_map(keys, 2, &txt);
	put(dir, EP_FILE_KEYS, txt);
	txt = NULL;
	ep_names_map(&p, &txt);
	put(dir, EP_FILE_NAMES, txt);
	txt = NULL;
	ep_mirror_map(&p, &txt);
	put(dir, EP_FILE_MIRROR, txt);
	txt = NULL;
	ep_split_map(&p, &txt);
	put(dir, EP_FILE_SPLIT, txt);
	put(dir, EP_FILE_LUA, strdup(ep_mirror_lua()));
	snprintf(cmd, sizeof(cmd), "haproxy -q -c -f %s/" EP_FILE_CFG, dir);
	st = system(cmd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "haproxy -c accepts the configuration");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		printf("# could not remove %s\n", dir);
}

/* A replica's slot pointed at it, or put in maintenance, at run time. */
static void rep_cmds(void)
{
	struct ep_proxy p;
	char buf[512];

	proxy_fill(&p, "/state/ep/7");
	CHECK(ep_rep_has(&p.b[0], 41002) && !ep_rep_has(&p.b[0], 41003) &&
	      !ep_rep_has(&p.b[1], 41001), "which replicas have a server");
	CHECK(p.b[0].slot[0] == 41001 && p.b[0].slot[1] == 41002 &&
	      !p.b[0].slot[2] && !p.b[1].slot[0],
	      "a new configuration's slots: the replicas in order");
	CHECK(!ep_slot_cmd(&p.b[0], 2, 41003, buf, sizeof(buf)) &&
	      !strcmp(buf, "set server dep_blue/r3 addr 127.0.0.1 port 41003\n"
		      "set server dep_blue/r3 state ready\n"),
	      "a new replica: slot 3 pointed at it, readied");
	CHECK(!ep_slot_cmd(&p.b[0], 0, 0, buf, sizeof(buf)) &&
	      !strcmp(buf, "set server dep_blue/r1 state maint\n"),
	      "a replica gone: its slot in maintenance");
	snprintf(p.b[0].rhost, sizeof(p.b[0].rhost), "192.0.2.7");
	CHECK(!ep_slot_cmd(&p.b[0], 2, 41003, buf, sizeof(buf)) &&
	      !strcmp(buf, "set server dep_blue/r3 addr 192.0.2.7 port 41003\n"
		      "set server dep_blue/r3 state ready\n"),
	      "replicas on an ssh host: their slots at the host's address");
	p.b[0].rhost[0] = '\0';
	CHECK(ep_slot_free(&p.b[0]) == 2, "the first free slot: r3");
	p.b[0].slot[0] = 0;
	p.b[0].freed[0] = ++p.b[0].nfreed;
	CHECK(ep_slot_free(&p.b[0]) == 2,
	      "a slot just freed is taken last (r3 before r1)");
	for (int k = 2; k < EP_REPS_MAX; k++)
		p.b[0].slot[k] = 42000 + k;
	CHECK(ep_slot_free(&p.b[0]) == 0, "… and taken when alone");
	p.b[0].slot[0] = 41009;
	CHECK(ep_slot_free(&p.b[0]) == -1, "none free: -1");
	CHECK(ep_slot_cmd(&p.b[0], 1, 41001, buf, 40) == -ENAMETOOLONG,
	      "a buffer too small is refused");
	CHECK(ep_slot_cmd(&p.b[0], EP_REPS_MAX, 41001, buf,
			  sizeof(buf)) == -EINVAL &&
	      ep_slot_cmd(&p.b[0], -1, 0, buf, sizeof(buf)) == -EINVAL,
	      "no slot past the last");
}

int main(void)
{
	traffic_good();
	traffic_bads();
	traffic_drops();
	mirrors();
	configs();
	proxy_text();
	rep_cmds();
	proxy_cmds();
	stats();
	haproxy_check();
	return tap_done();
}
