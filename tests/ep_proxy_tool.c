// SPDX-License-Identifier: MIT
/*
 * ep-proxy-tool: an endpoint's proxy by hand, for scripts/bench.sh
 * `endpoint` (until the endpoints/ folder drives it):
 *
 *   ep-proxy-tool start DIR PORT KEY NAME:HOST:PORT:DEPKEY[:WEIGHT]...
 *       writes the proxy's files in DIR and starts it; prints its pid
 *   ep-proxy-tool weights DIR NAME=WEIGHT...
 *       applies the weights; prints how long the runtime API took (ms)
 *   ep-proxy-tool stop DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/clock.h"
#include "endpoint_proxy.h"

static int usage(void)
{
	fprintf(stderr, "usage: ep-proxy-tool start DIR PORT KEY"
		" NAME:HOST:PORT:DEPKEY[:WEIGHT]... | weights DIR"
		" NAME=WEIGHT... | stop DIR\n");
	return 2;
}

/* NAME:HOST:PORT:DEPKEY[:WEIGHT] into @b. */
static int backend_arg(char *arg, struct ep_backend *b)
{
	char *f[5] = { 0 };
	int n = 0;

	for (char *s = strtok(arg, ":"); s && n < 5; s = strtok(NULL, ":"))
		f[n++] = s;
	if (n < 4)
		return -EINVAL;
	snprintf(b->name, sizeof(b->name), "%s", f[0]);
	snprintf(b->host, sizeof(b->host), "%s", f[1]);
	b->port = atoi(f[2]);
	snprintf(b->key, sizeof(b->key), "%s", f[3]);
	b->weight = n > 4 ? atoi(f[4]) : 100;
	return 0;
}

static int start(int argc, char **argv)
{
	static struct ep_proxy p;
	const char *keys[1];
	struct err e = { { 0 } };
	pid_t pid;

	if (argc < 6)
		return usage();
	p.dir = argv[2];
	p.tag = "bench";
	ep_config_parse("", 0, &p.cfg, &e);
	p.port = atoi(argv[3]);
	keys[0] = argv[4];
	for (int i = 5; i < argc && p.n < EP_DEPS_MAX; i++)
		if (backend_arg(argv[i], &p.b[p.n++]))
			return usage();
	if (ep_proxy_files(&p, keys, 1, &e) ||
	    ep_proxy_start(p.dir, "/dev/null", &pid, &e)) {
		fprintf(stderr, "ep-proxy-tool: %s\n", e.msg);
		return 1;
	}
	printf("%ld\n", (long)pid);
	return 0;
}

static int weights(int argc, char **argv)
{
	char cmds[4096] = "", map[4096] = "";
	struct err e = { { 0 } };
	double t0;
	int lo = 0;

	if (argc < 4)
		return usage();
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		int w = eq ? atoi(eq + 1) : 0;

		if (!eq)
			return usage();
		snprintf(cmds + strlen(cmds), sizeof(cmds) - strlen(cmds),
			 "set server split/%.*s weight %d\n",
			 (int)(eq - argv[i]), argv[i], w);
		/* the split map's range, as ep_split_map makes it */
		if (w > 0 && lo + w <= 100)
			snprintf(map + strlen(map), sizeof(map) - strlen(map),
				 "%d:%d %.*s\n", lo, lo + w - 1,
				 (int)(eq - argv[i]), argv[i]);
		lo += w > 0 && lo + w <= 100 ? w : 0;
	}
	t0 = mono_s();
	if (ep_proxy_map_swap(argv[2], EP_FILE_SPLIT, map, 2000, &e) ||
	    ep_proxy_api(argv[2], cmds, 2000, NULL, &e)) {
		fprintf(stderr, "ep-proxy-tool: %s\n", e.msg);
		return 1;
	}
	printf("%.2f\n", (mono_s() - t0) * 1000);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "start"))
		return start(argc, argv);
	if (!strcmp(argv[1], "weights"))
		return weights(argc, argv);
	if (!strcmp(argv[1], "stop")) {
		ep_proxy_stop(ep_proxy_adopt(argv[2]), argv[2], 2000);
		return 0;
	}
	return usage();
}
