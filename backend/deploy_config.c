// SPDX-License-Identifier: MIT
/*
 * A deployment's `config` (entry, command, port, replicas, host,
 * ready_timeout, max_body, read_timeout), parsed and checked.  Pure: no
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
	"max_body", "read_timeout", NULL
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
	return 0;
}

int deploy_config_parse(const char *buf, size_t len, struct deploy_spec *s,
			struct err *e)
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
	kv_free(&cfg);
	return rc;
}
