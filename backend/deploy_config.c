// SPDX-License-Identifier: MIT
/*
 * A deployment's `config` (entry, command, port, replicas, host,
 * ready_timeout, max_body, read_timeout, raw, and the autoscale keys
 * min_replicas, max_replicas, target_in_flight, scale_out_cooldown,
 * scale_in_cooldown), and its `env`, parsed and checked.  Pure: no
 * I/O, no state; called on FUSE request threads (inside the write of
 * `deploy`) and on the worker (a new generation), and by its unit test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "deploy_parts.h"

static const char *const dep_keys[] = {
	"entry", "command", "port", "replicas", "host", "ready_timeout",
	"max_body", "read_timeout", "min_replicas", "max_replicas",
	"target_in_flight", "scale_out_cooldown", "scale_in_cooldown", "raw",
	NULL
};

/* `raw`, by enum deploy_raw: what run() of mlfs-serve is given. */
static const char *const raw_names[] = { "no", "yes", "request", NULL };

/* Names of env lines the daemon sets itself for a replica (beyond the
 * MLFS_ ones env_parse refuses): a line could only hide them. */
static const char *const env_daemon_keys[] = {
	"AZUREML_MODEL_DIR", "PORT", NULL
};

/* Autoscale keys other than max_replicas: they mean nothing without it. */
static const char *const scale_keys[] = {
	"min_replicas", "target_in_flight", "scale_out_cooldown",
	"scale_in_cooldown", NULL
};

static int host_valid(const char *h)
{
	unsigned char a[16];

	return !strcmp(h, "localhost") || inet_pton(AF_INET, h, a) == 1 ||
	       inet_pton(AF_INET6, h, a) == 1;
}

static int entry_valid(const char *s, struct err *e)
{
	const char *p = s;

	if (!*s || strlen(s) >= sizeof(((struct deploy_spec *)0)->entry))
		return err_set(e, -EINVAL, "config: entry must name the entry"
			       " script, e.g. entry = score.py");
	if (*s == '/')
		return err_set(e, -EINVAL, "config: entry '%s' must be relative"
			       " to the deployment's folder", s);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && !strncmp(p, "..", 2))
			return err_set(e, -EINVAL, "config: entry '%s' must stay"
				       " inside the deployment's folder", s);
		p += n + (p[n] == '/');
	}
	return 0;
}

static int config_number(const struct kv_list *cfg, const char *key,
			 long min, long max, int *out, struct err *e)
{
	const char *v = kv_get(cfg, key);
	long n;
	int rc;

	if (!v)
		return 0;
	rc = parse_int(v, min, max, &n, key, e);
	if (rc)
		return rc;
	*out = (int)n;
	return 0;
}

/* `raw = no | yes | request`: mlfs-serve's alone, so not with command
 * (a key that would silently do nothing is refused). */
static int config_raw(const struct kv_list *cfg, struct deploy_spec *s,
		      struct err *e)
{
	const char *v = kv_get(cfg, "raw");

	if (!v)
		return 0;
	for (int i = 0; raw_names[i]; i++)
		if (!strcmp(v, raw_names[i]))
			s->raw = i;
	if (s->raw == RAW_NO && strcmp(v, "no"))
		return err_set(e, -EINVAL, "config: raw must be no, yes (run()"
			       " gets the body as bytes) or request (run() gets"
			       " the whole request), not '%s'", v);
	if (s->raw != RAW_NO && kv_get(cfg, "command"))
		return err_set(e, -EINVAL, "config: raw is mlfs-serve's and"
			       " means nothing with command");
	return 0;
}

const char *deploy_raw_name(int raw)
{
	return raw > 0 && raw < RAW_COUNT ? raw_names[raw] : "no";
}

static int config_values(const struct kv_list *cfg, struct deploy_spec *s,
			 struct err *e)
{
	const char *v;
	int rc;

	rc = config_number(cfg, "port", 0, 65535, &s->port, e);
	if (!rc)
		rc = config_number(cfg, "replicas", 1, MAX_REPLICAS,
				   &s->replicas, e);
	if (!rc)
		rc = config_number(cfg, "ready_timeout", 1, 3600,
				   &s->ready_timeout, e);
	if (!rc)
		rc = config_number(cfg, "read_timeout", 1, 3600,
				   &s->read_timeout, e);
	if (!rc && (v = kv_get(cfg, "max_body")))
		rc = parse_int(v, 1, 16L << 30, &s->max_body, "max_body", e);
	if (rc)
		return rc;
	v = kv_get(cfg, "host");
	if (v && (!host_valid(v) || strlen(v) >= sizeof(s->host)))
		return err_set(e, -EINVAL, "config: host must be an IP address"
			       " such as 127.0.0.1 or 0.0.0.0, not '%s'", v);
	if (v)
		snprintf(s->host, sizeof(s->host), "%s", v);
	v = kv_get(cfg, "command");
	if (v && strlen(v) >= sizeof(s->command))
		return err_set(e, -EINVAL, "config: command is longer than %zu"
			       " bytes", sizeof(s->command) - 1);
	if (v)
		snprintf(s->command, sizeof(s->command), "%s", v);
	v = kv_get(cfg, "entry");
	if (v && (rc = entry_valid(v, e)))
		return rc;
	if (v)
		snprintf(s->entry, sizeof(s->entry), "%s", v);
	return config_raw(cfg, s, e);
}

/* Only with max_replicas: a key that would silently do nothing is
 * refused. */
static int scale_off(const struct kv_list *cfg, struct err *e)
{
	for (int i = 0; scale_keys[i]; i++)
		if (kv_get(cfg, scale_keys[i]))
			return err_set(e, -EINVAL, "config: %s needs"
				       " max_replicas (autoscale is off"
				       " without it)", scale_keys[i]);
	return 0;
}

static int scale_numbers(const struct kv_list *cfg, struct deploy_scale *c,
			 struct err *e)
{
	int rc;

	rc = config_number(cfg, "max_replicas", 1, MAX_REPLICAS, &c->max, e);
	if (!rc)
		rc = config_number(cfg, "min_replicas", 1, MAX_REPLICAS,
				   &c->min, e);
	if (!rc)
		rc = config_number(cfg, "target_in_flight", 1, 10000,
				   &c->target, e);
	if (!rc)
		rc = config_number(cfg, "scale_out_cooldown", 0, 3600,
				   &c->out_cooldown, e);
	if (!rc)
		rc = config_number(cfg, "scale_in_cooldown", 0, 3600,
				   &c->in_cooldown, e);
	return rc;
}

/*
 * Autoscale: on when max_replicas is set.  `replicas` is then the count
 * a new generation starts with (default min_replicas) and must lie in
 * [min_replicas, max_replicas].
 */
static int config_scale(const struct kv_list *cfg, struct deploy_spec *s,
			int partial, struct err *e)
{
	struct deploy_scale *c = &s->scale;
	int rc;

	if (!kv_get(cfg, "max_replicas") && partial) {
		rc = scale_numbers(cfg, c, e);	/* each value on its own */
		memset(c, 0, sizeof(*c));
		return rc;
	}
	if (!kv_get(cfg, "max_replicas"))
		return scale_off(cfg, e);
	c->min = 1;
	c->target = SCALE_TARGET_DEFAULT;
	c->out_cooldown = SCALE_OUT_COOLDOWN_DEFAULT;
	c->in_cooldown = SCALE_IN_COOLDOWN_DEFAULT;
	rc = scale_numbers(cfg, c, e);
	if (rc)
		return rc;
	if (c->min > c->max)
		return err_set(e, -EINVAL, "config: min_replicas (%d) is more"
			       " than max_replicas (%d)", c->min, c->max);
	if (!kv_get(cfg, "replicas"))
		s->replicas = c->min;
	if (s->replicas < c->min || s->replicas > c->max)
		return err_set(e, -EINVAL, "config: replicas (%d) must lie"
			       " between min_replicas (%d) and max_replicas"
			       " (%d): it is the count autoscale starts from",
			       s->replicas, c->min, c->max);
	return 0;
}

static int config_parse(const char *buf, size_t len, struct deploy_spec *s,
			int partial, struct err *e)
{
	struct kv_list cfg = { 0 };
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->entry, sizeof(s->entry), "score.py");
	s->replicas = 1;
	s->ready_timeout = 120;
	s->max_body = MAX_BODY_DEFAULT;
	s->read_timeout = READ_TIMEOUT_DEFAULT;
	rc = kv_parse(buf, len, &cfg, e);
	if (!rc)
		rc = kv_check_keys(&cfg, dep_keys, "deployment", e);
	if (!rc)
		rc = config_values(&cfg, s, e);
	if (!rc)
		rc = config_scale(&cfg, s, partial, e);
	kv_free(&cfg);
	return rc;
}

int deploy_config_parse(const char *buf, size_t len, struct deploy_spec *s,
			struct err *e)
{
	return config_parse(buf, len, s, 0, e);
}

int deploy_config_check(const char *buf, size_t len, struct err *e)
{
	struct deploy_spec s;

	return config_parse(buf, len, &s, 1, e);
}

int deploy_env_parse(const char *buf, size_t len, struct kv_list *out,
		     struct err *e)
{
	int rc = env_parse(buf, len, out, e);

	for (int i = 0; !rc && env_daemon_keys[i]; i++)
		if (kv_get(out, env_daemon_keys[i]))
			rc = err_set(e, -EINVAL, "env: %s is set by mlfs for"
				     " each replica and cannot be changed",
				     env_daemon_keys[i]);
	if (rc)
		kv_free(out);
	return rc;
}
