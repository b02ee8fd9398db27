// SPDX-License-Identifier: MIT
/* Unit test of a deployment's `config` parser (backend/deploy_config.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "deploy_i.h"
#include "tap.h"

static int parse(const char *text, struct deploy_spec *s, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return deploy_config_parse(text, strlen(text), s, e);
}

static void defaults(void)
{
	struct deploy_spec s;
	struct err e;

	CHECK(parse("", &s, &e) == 0, "an empty config is fine");
	CHECK(!strcmp(s.entry, "score.py") && !s.command[0] && !s.host[0],
	      "defaults: entry score.py, no command, no host");
	CHECK(s.port == 0 && s.replicas == 1 && s.ready_timeout == 120,
	      "defaults: port 0, 1 replica, ready_timeout 120");
	CHECK(s.max_body == 100L << 20 && s.read_timeout == 30,
	      "defaults: mlfs-serve's max_body and read_timeout");
	CHECK(parse("# just a comment\n\n", &s, &e) == 0 && s.replicas == 1,
	      "comments and blank lines");
}

static void good(void)
{
	struct deploy_spec s;
	struct err e;

	CHECK(parse("entry = app/serve.py\nport = 8080\nreplicas = 16\n"
		    "host = 0.0.0.0\nready_timeout = 3600\n", &s, &e) == 0,
	      "a full config: %s", e.msg);
	CHECK(!strcmp(s.entry, "app/serve.py") && s.port == 8080 &&
	      s.replicas == 16 && !strcmp(s.host, "0.0.0.0") &&
	      s.ready_timeout == 3600, "its values");
	CHECK(parse("command = python3 -m http.server $PORT\nhost = ::1\n"
		    "max_body = 1024\nread_timeout = 1\nport = 65535\n",
		    &s, &e) == 0, "a command, IPv6 host: %s", e.msg);
	CHECK(!strcmp(s.command, "python3 -m http.server $PORT") &&
	      !strcmp(s.host, "::1") && s.max_body == 1024 &&
	      s.read_timeout == 1 && s.port == 65535, "their values");
	CHECK(parse("host = localhost\n", &s, &e) == 0 &&
	      !strcmp(s.host, "localhost"), "host localhost");
	CHECK(parse("entry = a/./b.py\n", &s, &e) == 0, "entry with ./");
	CHECK(parse("max_body = 17179869184\n", &s, &e) == 0 &&
	      s.max_body == 16L << 30, "max_body up to 16 GiB");
}

static void bad(const char *text, const char *why, const char *words)
{
	struct deploy_spec s;
	struct err e;
	int rc = parse(text, &s, &e);

	CHECK(rc == -EINVAL && strstr(e.msg, words), "%s: EINVAL (%s)", why,
	      e.msg);
}

static void bads(void)
{
	char long_cmd[1100];

	bad("colour = blue\n", "unknown key", "colour");
	bad("port = 65536\n", "port too large", "port");
	bad("port = -1\n", "negative port", "port");
	bad("port = eighty\n", "port not a number", "port");
	bad("replicas = 0\n", "no replicas", "replicas");
	bad("replicas = 17\n", "more than 16 replicas", "replicas");
	bad("ready_timeout = 0\n", "ready_timeout 0", "ready_timeout");
	bad("read_timeout = 3601\n", "read_timeout too long", "read_timeout");
	bad("max_body = 0\n", "max_body 0", "max_body");
	bad("host = example.com\n", "host not an address", "IP address");
	bad("host = 300.1.1.1\n", "host out of range", "IP address");
	bad("entry = /etc/passwd\n", "absolute entry", "relative");
	bad("entry = ../x.py\n", "entry going up", "inside");
	bad("entry = a/../../x.py\n", "entry going up inside", "inside");
	bad("entry = a/..\n", "entry ending in ..", "inside");
	memset(long_cmd, 'x', sizeof(long_cmd));
	memcpy(long_cmd, "command = ", 10);
	long_cmd[sizeof(long_cmd) - 1] = '\0';
	bad(long_cmd, "command too long", "longer than");
	bad("port 80\n", "not key = value", "");
}

/* Autoscale (issue 16): defaults, what `replicas` means, refusals. */
static void scale(void)
{
	struct deploy_spec s;
	struct err e;

	CHECK(parse("replicas = 3\n", &s, &e) == 0 && s.scale.max == 0 &&
	      s.replicas == 3, "no max_replicas: a fixed count, autoscale off");
	CHECK(parse("max_replicas = 4\n", &s, &e) == 0 && s.scale.min == 1 &&
	      s.scale.max == 4 && s.replicas == 1 && s.scale.target == 2 &&
	      s.scale.out_cooldown == 5 && s.scale.in_cooldown == 60,
	      "max_replicas alone: min 1, target 2, cool-downs 5 s and 60 s,"
	      " starts with min");
	CHECK(parse("min_replicas = 2\nmax_replicas = 5\nreplicas = 3\n"
		    "target_in_flight = 8\nscale_out_cooldown = 0\n"
		    "scale_in_cooldown = 3600\n", &s, &e) == 0 &&
	      s.scale.min == 2 && s.scale.max == 5 && s.replicas == 3 &&
	      s.scale.target == 8 && s.scale.out_cooldown == 0 &&
	      s.scale.in_cooldown == 3600, "every autoscale key (%s)", e.msg);
	CHECK(parse("min_replicas = 3\nmax_replicas = 3\n", &s, &e) == 0 &&
	      s.replicas == 3, "min = max: starts with it");
	bad("min_replicas = 4\nmax_replicas = 2\n", "min > max",
	    "more than max_replicas");
	bad("max_replicas = 0\n", "max_replicas 0", "max_replicas");
	bad("max_replicas = 17\n", "max_replicas over 16", "max_replicas");
	bad("min_replicas = 0\nmax_replicas = 2\n", "min_replicas 0",
	    "min_replicas");
	bad("max_replicas = 2\nreplicas = 3\n", "replicas above max",
	    "must lie between");
	bad("min_replicas = 2\nmax_replicas = 4\nreplicas = 1\n",
	    "replicas below min", "must lie between");
	bad("max_replicas = 2\ntarget_in_flight = 0\n", "target 0",
	    "target_in_flight");
	bad("max_replicas = 2\nscale_in_cooldown = -1\n", "negative cooldown",
	    "scale_in_cooldown");
	bad("max_replicas = 2\nscale_out_cooldown = 3601\n",
	    "cooldown over an hour", "scale_out_cooldown");
	bad("min_replicas = 2\n", "min without max", "needs max_replicas");
	bad("target_in_flight = 4\n", "target without max",
	    "needs max_replicas");
	/* inside a write the rest may come with the next line */
	memset(&e, 0, sizeof(e));
	CHECK(deploy_config_check("min_replicas = 2\n", 17, &e) == 0,
	      "write: min_replicas before max_replicas's line (%s)", e.msg);
	CHECK(deploy_config_check("target_in_flight = 0\n", 21, &e) ==
	      -EINVAL && strstr(e.msg, "target_in_flight"),
	      "write: a value out of range without max_replicas (%s)", e.msg);
	CHECK(deploy_config_check("min_replicas = 3\nmax_replicas = 2\n", 34,
				  &e) == -EINVAL, "write: min > max");
}

/* raw (issue 16 item 4): what run() gets; mlfs-serve's only. */
static void raw(void)
{
	struct deploy_spec s;
	struct err e;

	CHECK(parse("", &s, &e) == 0 && s.raw == RAW_NO, "raw: no by default");
	CHECK(parse("raw = yes\n", &s, &e) == 0 && s.raw == RAW_YES,
	      "raw = yes");
	CHECK(parse("raw = request\n", &s, &e) == 0 && s.raw == RAW_REQUEST,
	      "raw = request");
	CHECK(parse("raw = no\n", &s, &e) == 0 && s.raw == RAW_NO, "raw = no");
	CHECK(!strcmp(deploy_raw_name(RAW_REQUEST), "request") &&
	      !strcmp(deploy_raw_name(RAW_NO), "no") &&
	      !strcmp(deploy_raw_name(99), "no"), "raw names, a bad one is no");
	bad("raw = maybe\n", "raw not a mode", "raw must be no, yes");
	bad("raw = Yes\n", "raw in another case", "raw must be");
	bad("raw = yes\ncommand = sleep 9\n", "raw with command",
	    "means nothing with command");
}

static int env(const char *text, struct kv_list *l, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return deploy_env_parse(text, strlen(text), l, e);
}

/* A deployment's env: a run's lines, less the names mlfs sets. */
static void envs(void)
{
	struct kv_list l;
	struct err e;

	CHECK(env("A=1\nPATH=/opt/bin\nPYTHONPATH=/x\n", &l, &e) == 0 &&
	      l.n == 3 && !strcmp(kv_get(&l, "PATH"), "/opt/bin"),
	      "env: lines as a run's (%s)", e.msg);
	kv_free(&l);
	CHECK(env("PORT=1\n", &l, &e) == -EINVAL &&
	      strstr(e.msg, "PORT is set by mlfs") && l.n == 0 && !l.items,
	      "env: PORT refused, list freed (%s)", e.msg);
	CHECK(env("A=1\nAZUREML_MODEL_DIR=/tmp\n", &l, &e) == -EINVAL &&
	      strstr(e.msg, "AZUREML_MODEL_DIR"), "env: AZUREML_MODEL_DIR"
	      " refused (%s)", e.msg);
	CHECK(env("MLFS_KEY=x\n", &l, &e) == -EINVAL &&
	      strstr(e.msg, "reserved"), "env: MLFS_ refused (%s)", e.msg);
	CHECK(env("TOKEN s3cr3t\n", &l, &e) == -EINVAL &&
	      !strstr(e.msg, "s3cr3t"), "env: a bad line is not repeated"
	      " (%s)", e.msg);
}

int main(void)
{
	defaults();
	good();
	bads();
	scale();
	raw();
	envs();
	return tap_done();
}
