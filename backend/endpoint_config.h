/* SPDX-License-Identifier: MIT */
/*
 * Endpoints (pure: no I/O): the files a user writes (`traffic`, `mirror`,
 * `config`) parsed and checked, and what the proxy (HAProxy) is given: its
 * configuration, its map files, the runtime-API commands that change
 * weights, keys and the mirror without a reload.  See endpoint_config.c
 * for the shape of the proxy; unit-tested by tests/test_endpoint_config.c.
 */
#ifndef MLFS_ENDPOINT_CONFIG_H
#define MLFS_ENDPOINT_CONFIG_H

#include <stddef.h>

#include "parse.h"

#define EP_DEPS_MAX	16	/* deployments behind one endpoint */
#define EP_REPS_MAX	48	/* replicas of one, each a server */
#define EP_NAME_MAX	64	/* an object name and its NUL */
#define EP_KEY_MAX	128	/* a key (hex) and its NUL */
/* the proxy's buffer: a mirrored body must fit in it whole */
#define EP_BUFSIZE	65536
/* copies to the mirror under way at most (more: not copied) */
#define EP_MIRROR_INFLIGHT	"64"
#define EP_PIN_HEADER	"azureml-model-deployment"

/* `traffic`: lines `DEPLOYMENT WEIGHT`, weights summing to 100. */
struct ep_weight {
	char name[EP_NAME_MAX];
	int weight;		/* 0..100 */
};

struct ep_traffic {
	int n;			/* 0: no line (nothing routed yet) */
	struct ep_weight w[EP_DEPS_MAX];
};

/*
 * ep_traffic_parse - parse @buf (@len bytes): blank lines and `#` comments
 * skipped; each other line `NAME WEIGHT` with a valid object name and an
 * integer 0..100, each name once, at most EP_DEPS_MAX lines, the weights
 * summing to exactly 100 (an empty file is no traffic: allowed).
 * 0 or -EINVAL with a sentence that names the line.
 */
int ep_traffic_parse(const char *buf, size_t len, struct ep_traffic *t,
		     struct err *e);

/*
 * ep_traffic_drop - @name's line taken out of @t (a deployment deleted).
 * When @t was a split (its weights summed to 100), the others' weights
 * are scaled to sum to 100 again (largest remainder, a weight of 0 stays
 * 0); when none of them had weight, no line is left (no split: only
 * pinned requests are routed).  A @t not summing to 100 (lines still to
 * come) only loses the line.  1 when @name had a line, else 0.
 */
int ep_traffic_drop(struct ep_traffic *t, const char *name);

/* @t as the text of `traffic` (`NAME WEIGHT` lines), malloc'd into *@out.
 * 0 or -ENOMEM. */
int ep_traffic_text(const struct ep_traffic *t, char **out);

/* `mirror`: empty (off) or one line `DEPLOYMENT PERCENT`. */
struct ep_mirror {
	char name[EP_NAME_MAX];	/* "": off */
	int percent;		/* 0..100 of requests copied */
};

/* ep_mirror_parse - as above; PERCENT an integer 0..100 (0: off).
 * 0 or -EINVAL with a sentence. */
int ep_mirror_parse(const char *buf, size_t len, struct ep_mirror *m,
		    struct err *e);

/* `config`: `key = value` lines; every key optional. */
struct ep_config {
	char host[256];		/* bind address, default 127.0.0.1 */
	int port;		/* 0: a free port picked at the first start */
	long request_timeout_ms;	/* client and server, default 60000 */
	long max_body;		/* bytes, default 100 MiB (as deployments);
				 * larger: 413 */
};

/* The keys `config` takes, NULL-terminated. */
extern const char *const ep_config_keys[];

/*
 * ep_config_parse - keys host (an IP address or a name, no blanks),
 * port (0..65535), request_timeout_ms (100..3600000), max_body (bytes
 * with an optional K, M or G suffix, binary; 1..1G).  Unknown keys and bad
 * values: -EINVAL with a sentence naming the key.
 */
int ep_config_parse(const char *buf, size_t len, struct ep_config *c,
		    struct err *e);

/* ---- the proxy -------------------------------------------------------- */

/* A deployment behind the endpoint, as the proxy reaches it. */
struct ep_backend {
	char name[EP_NAME_MAX];
	int64_t id;		/* the deployment's object id */
	char host[256];		/* its service address (IPv6: no
				 * brackets) */
	int port;
	char key[EP_KEY_MAX];	/* the deployment's own bearer key */
	int weight;		/* from `traffic`, 0 when not listed */
	int replicas;		/* its replicas serving (for `stats`) */
	/* its ready replicas' direct ports at rhost, ascending: a server
	 * each, requests balanced over them (least connections); the
	 * service's address is the backup (none known yet, or replicas
	 * without them) */
	int nrep;
	int rep[EP_REPS_MAX];
	char rhost[64];		/* an IP literal ("": 127.0.0.1) */
	/* the proxy's replica servers r1..rN: slot[i] is the direct port
	 * server r(i+1) sends to, 0 when it is disabled (no replica) */
	int slot[EP_REPS_MAX];
	/* when each slot was last freed (a count; 0: never): a new replica
	 * takes the slot free the longest, so that connections the proxy
	 * kept to a replica that left are closed before the slot is
	 * pointed anywhere else */
	unsigned long freed[EP_REPS_MAX];
	unsigned long nfreed;
	int gone;		/* left the endpoint: in maintenance (no
				 * request, no check) until the next reload
				 * drops it; not in `stats` */
};

struct ep_proxy {
	const char *dir;	/* the proxy's private folder (0700): the
				 * API socket, maps, Lua; absolute */
	const char *tag;	/* unique per endpoint (its id): the names of
				 * the abstract sockets between two hops */
	struct ep_config cfg;
	int port;		/* the port to bind (cfg.port or picked) */
	int n;
	struct ep_backend b[EP_DEPS_MAX];
	struct ep_mirror mirror;
	int run_uid, run_gid;	/* > 0: the workers drop to these after
				 * binding (a root daemon's proxy) */
};

/* The names of the files the proxy reads below ep_proxy.dir. */
#define EP_FILE_CFG	"haproxy.cfg"
#define EP_FILE_KEYS	"keys.map"	/* endpoint key -> 1 */
#define EP_FILE_NAMES	"names.map"	/* deployment name -> itself */
/* the split: a range of rand(100) (LO:HI) -> the deployment it picks */
#define EP_FILE_SPLIT	"split.map"
/* the mirror map: dep, pct, addr, auth -> their values */
#define EP_FILE_MIRROR	"mirror.map"
#define EP_FILE_LUA	"mirror.lua"
#define EP_FILE_API	"api.sock"

/*
 * ep_proxy_config - the HAProxy configuration for @p, malloc'd into *@out
 * (NUL-terminated).  0 or -ENOMEM / -EINVAL (a field the proxy's syntax
 * cannot carry, e.g. a blank or quote in a host).
 */
int ep_proxy_config(const struct ep_proxy *p, char **out, struct err *e);

/* The text of the keys map: one line per key in @keys (@n of them). */
int ep_keys_map(const char *const *keys, int n, char **out);
/* The names map: each deployment of @p on a line. */
int ep_names_map(const struct ep_proxy *p, char **out);
/*
 * ep_split_map - the split map of @p: each deployment with weight (and
 * not gone) on a line `LO:HI NAME`, the ranges of 0..99 one after the
 * other, HI - LO + 1 its weight.  Weights summing to less than 100 leave
 * the top of 0..99 without a line: those requests take the health-aware
 * weighted backend (the two-hop path).
 */
int ep_split_map(const struct ep_proxy *p, char **out);
/* The mirror map: dep, pct, addr and auth of @p's mirror (pct 0 when the
 * mirror is off or names no deployment of @p). */
int ep_mirror_map(const struct ep_proxy *p, char **out);
/* The Lua action that copies requests (a constant). */
const char *ep_mirror_lua(void);

/*
 * ep_weight_cmds - the runtime-API commands that give @p's deployments
 * the weights of @t (those not listed: 0) in the `split` backend (the
 * fallback), one per line, malloc'd into *@out.  HAProxy applies each at
 * once, between two requests: nothing is reloaded and no request fails.
 * The split map (what most requests follow) is replaced apart, whole:
 * ep_proxy_map_swap with ep_split_map's text.
 */
int ep_weight_cmds(const struct ep_proxy *p, const struct ep_traffic *t,
		   char **out);
/* The commands that make @m the mirror of @p (set map on the mirror
 * map). */
int ep_mirror_cmds(const struct ep_proxy *p, const struct ep_mirror *m,
		   char **out);
/* The commands that accept key @add and then refuse key @del (either may
 * be NULL): a regenerated key is valid before the old one goes. */
int ep_key_cmds(const struct ep_proxy *p, const char *add, const char *del,
		char **out);

/* Has deployment @b a server for the replica whose direct port is
 * @port?  1 or 0. */
int ep_rep_has(const struct ep_backend *b, int port);

/* Slot i of @b to the replica rep[i], each other slot disabled: what a
 * new configuration starts with. */
void ep_slots_fill(struct ep_backend *b);

/* The free slot of @b (no replica) freed the longest ago, never used
 * first; -1 when none is free. */
int ep_slot_free(const struct ep_backend *b);

/*
 * ep_slot_cmd - the runtime-API commands that point server r(@slot+1) of
 * deployment @b at the replica whose direct port is @port and ready it,
 * or (@port 0) put it in maintenance, into @buf (@sz).  No server is
 * added or deleted and nothing reloaded: no request is failed by it.
 * 0, -EINVAL (no such slot) or -ENAMETOOLONG.
 */
int ep_slot_cmd(const struct ep_backend *b, int slot, int port, char *buf,
		size_t sz);

/*
 * ep_stats_text - the `stats` file: one line per deployment of @p,
 *   NAME REQUESTS ERRORS P50_MS P99_MS REPLICAS IN_FLIGHT STATE
 * REQUESTS, ERRORS (5xx answers, failed connections and answers) and
 * IN_FLIGHT from the proxy's `show stat` CSV @csv (since its last start
 * or reload: each worker process counts its own);
 * P50_MS and P99_MS over the access lines in @log (@len bytes, the
 * recent part of the log: `TIME DEPLOYMENT STATUS MS`), `-` when none;
 * STATE up, down (out of the rotation) or ? (the proxy does not say).
 * malloc'd into *@out; 0 or -ENOMEM.
 */
int ep_stats_text(const struct ep_proxy *p, const char *csv,
		  const char *log, size_t len, char **out);

#endif
