// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for an endpoint's `traffic`, `mirror` and `config`
 * (backend/endpoint_config.c), on the raw bytes a user writes.
 * Invariants: accepted traffic has at most EP_DEPS_MAX valid names, each
 * once, weights 0..100 summing to 100 (or no line at all); an accepted
 * mirror names a valid deployment with 0..100 or nothing; an accepted
 * config is in its ranges and always makes a proxy configuration (nothing
 * the proxy's syntax would misread gets through); a refusal is -EINVAL
 * with one printable sentence ending in a full stop.
 */
#include "endpoint_config.h"
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_refusal(int rc, const struct err *e)
{
	need(rc == -EINVAL || rc == -ENOMEM);
	check_sentence(e);
}

static void fuzz_traffic(const char *d, size_t n)
{
	struct ep_traffic t;
	struct err e, ne;
	int sum = 0, rc = ep_traffic_parse(d, n, &t, &e);

	if (rc) {
		check_refusal(rc, &e);
		return;
	}
	need(t.n >= 0 && t.n <= EP_DEPS_MAX);
	for (int i = 0; i < t.n; i++) {
		need(!name_valid(t.w[i].name, &ne));
		need(t.w[i].weight >= 0 && t.w[i].weight <= 100);
		for (int j = 0; j < i; j++)
			need(strcmp(t.w[i].name, t.w[j].name));
		sum += t.w[i].weight;
	}
	need(!t.n || sum == 100);
}

static void fuzz_mirror(const char *d, size_t n)
{
	struct ep_mirror m;
	struct err e, ne;
	int rc = ep_mirror_parse(d, n, &m, &e);

	if (rc) {
		check_refusal(rc, &e);
		return;
	}
	need(!m.name[0] || !name_valid(m.name, &ne));
	need(m.percent >= 0 && m.percent <= 100);
}

static void fuzz_config(const char *d, size_t n)
{
	struct ep_proxy p = { .dir = "/d", .tag = "1" };
	struct err e;
	char *text = NULL;
	int rc = ep_config_parse(d, n, &p.cfg, &e);

	if (rc) {
		check_refusal(rc, &e);
		return;
	}
	need(p.cfg.port >= 0 && p.cfg.port <= 65535);
	need(p.cfg.request_timeout_ms >= 100 &&
	     p.cfg.request_timeout_ms <= 3600000);
	need(p.cfg.max_body >= 1 && p.cfg.max_body <= 1L << 30);
	p.port = p.cfg.port;
	need(!ep_proxy_config(&p, &text, &e) && text);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_traffic((const char *)data, size);
	fuzz_mirror((const char *)data, size);
	fuzz_config((const char *)data, size);
	return 0;
}
