/* SPDX-License-Identifier: MIT */
/*
 * Private to the SSH driver: what its target ops (ssh.c), runs (ssh_run.c)
 * and deployments (ssh_deploy.c) share, the connection to the host, remote
 * calls and copies, all in ssh_common.c.  Worker thread only.
 */
#ifndef MLFS_SSH_COMMON_H
#define MLFS_SSH_COMMON_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "../backend/driver.h"
#include "../lib/clock.h"
#include "gpu.h"
#include "ssh_exec.h"

#define SSH_CALL_TIMEOUT	30	/* s, one remote command */
#define SSH_COPY_TIMEOUT	600	/* s, one upload or download */
#define SSH_RETRY_EVERY		2.0	/* s between tries while unreachable */
#define SSH_OUT_MAX		65536	/* stdout kept of a plain remote call */

struct ssh_dep;				/* ssh_deploy.c's, per target */

/* Per target (t->priv), worker only. */
struct ssh_tgt {
	int running;			/* runs holding a slot */
	int nodes_read;			/* cpus, gpus known */
	long cpus;
	struct gpu_pool gpus;
	int rsync;			/* -1 unknown, else the host has it */
	double next_poll;		/* monotonic */
	char node[128];			/* the host's name, from `nodes` */
	char user[64];			/* the default user (ours) */
	struct ssh_dep *dep;		/* replicas on the host, or NULL */
};

/* The value of @key in the target's config, or @def (cfg_long: also when
 * the value is empty). */
static inline long cfg_long(const struct kv_list *cfg, const char *key,
			    long def)
{
	const char *v = kv_get(cfg, key);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static inline const char *cfg_str(const struct kv_list *cfg, const char *key,
				  const char *def)
{
	const char *v = kv_get(cfg, key);

	return v ? v : def;
}

/* A random 32-bit number for remote folder names (a clock-based one if
 * getrandom fails). */
unsigned int ssh_rnd32(void);

/* The target's state, made on first use; NULL when out of memory. */
struct ssh_tgt *ssh_tgt_of(struct target_ctx *t);

/* The daemon's user's name: who ssh logs in as unless `user` says. */
const char *ssh_default_user(struct ssh_tgt *s);

/*
 * ssh_identity_copy - the copy of identity_file (read with the rights of
 * the target's owner) that ssh is given, its path into @out (PATH_MAX);
 * @fresh: read it again.  0 or -errno with a sentence.
 */
int ssh_identity_copy(struct target_ctx *t, const char *path, int fresh,
		      char *out, struct err *e);
/* Without identity_file: 0 unless the daemon is root and the target not
 * root's (-EACCES with a sentence). */
int ssh_identity_needed(struct target_ctx *t, struct err *e);

/* Copy with rsync (1) or tar (0), from `transfer` and whether the host
 * (@host_has) and this machine have rsync; -EIO when transfer = rsync
 * cannot be honoured. */
int ssh_use_rsync(struct target_ctx *t, int host_has, struct err *e);

/* `host` of the target's config ("?" when unset). */
const char *ssh_host(struct target_ctx *t);
/* `workdir` of the target's config, or the default (~/.mlfs). */
const char *ssh_workdir(struct target_ctx *t);

/*
 * ssh_conn_of - the connection to @t's host, from its config (strings
 * borrowed from t->config: valid until the worker reloads it).  @strict:
 * the host key must already be in our known_hosts (anything but
 * provision).  0 or -errno with a sentence.
 */
int ssh_conn_of(struct target_ctx *t, int strict, struct ssh_conn *c,
		struct err *e);

/*
 * ssh_remote - run @script (freed here; NULL means out of memory) on the
 * host, keeping at most @out_max bytes of its output: 0 with the output in
 * @res (free it with sx_result_free), -EHOSTUNREACH (the connection;
 * sentence in @why) or -EIO (the script failed; its last line in @why).
 */
int ssh_remote(struct ssh_conn *c, char *script, size_t out_max,
	       struct sx_result *res, char *why, size_t n);

/*
 * ssh_copy - copy between this machine and WORKDIR/@rid on the host: @up
 * copies the content of the local folder @local into WORKDIR/@rid/@sub,
 * else the content of WORKDIR/@rid/@sub into @local.  rsync when both
 * sides have it, else tar piped through ssh; links are sent as links,
 * never followed, whichever copies.  0, -EHOSTUNREACH (the connection) or
 * -EIO, with a sentence in @why.
 */
int ssh_copy(struct target_ctx *t, struct ssh_conn *c, const char *rid,
	     int up, const char *local, const char *sub, char *why, size_t n);

/* ssh_copy into or out of @base/@rid/@sub on the host, @base a folder of
 * the host other than the workdir (ssh_input_cache). */
int ssh_copy_in(struct target_ctx *t, struct ssh_conn *c, const char *base,
		const char *rid, int up, const char *local, const char *sub,
		char *why, size_t n);

/*
 * ssh_stage - copy the folder @src, read with the rights of its owner
 * @uid:@gid (a root daemon; else as the daemon), into @priv/up, to send
 * from: @src stays its owner's to change while the copy goes out (even
 * swap a folder for a link), @priv is a folder only the daemon can reach
 * (made 0700 if missing).  The path into @stage (PATH_MAX); remove it
 * with remove_tree().  0 or -errno with a sentence in @why.
 */
int ssh_stage(const char *src, const char *priv, uid_t uid, gid_t gid,
	      char *stage, char *why, size_t n);

/* Append @n bytes to the file @dir/@name (made if missing).  0 or -errno. */
int ssh_append(const char *dir, const char *name, const char *data, size_t n);

#endif /* MLFS_SSH_COMMON_H */
