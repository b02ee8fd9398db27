/* SPDX-License-Identifier: MIT */
/*
 * The SSH driver's replica table, shared by ssh_deploy.c (the rounds,
 * start, stop, adopt) and ssh_dep_table.c (the table and the local
 * records).  Worker thread only: the table is the target worker's, like
 * the rest of struct ssh_tgt, and needs no lock.
 */
#ifndef MLFS_SSH_DEP_I_H
#define MLFS_SSH_DEP_I_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../backend/driver.h"

#define REC_EXT		".ssh"		/* <dir>/replicas/gGEN-SLOT.ssh */
#define TAG_FILE	"ssh.tag"	/* <dir>/replicas/ssh.tag */

/* A generation's folder on the host. */
struct ssh_gen {
	int64_t dep;
	int gen;
	char dir[80];			/* deploy-ID-TAG/gGEN, under workdir */
	int copied;			/* code, model, serve are there */
	int marked;			/* and `staged` says so */
	char img_why[ERR_MSG_MAX];	/* its image cannot be put there (no
					 * podman, a load that failed): the
					 * sentence, for each later start */
	struct ssh_gen *next;
};

/* What the host last said of a replica (mlfs_rep in ssh_script.c). */
enum rstate { ST_UNKNOWN, ST_STARTING, ST_READY, ST_RUNNING, ST_EXITED,
	      ST_LOST, ST_NODIR };

/* One replica on the host: the target's table. */
struct ssh_rent {
	unsigned long id;
	int64_t dep;
	int gen, slot;
	char name[MLFS_NAME_MAX + 1];	/* the deployment's, for messages */
	char dir[PATH_MAX];		/* the deployment's local folder */
	char rdir[128];			/* deploy-ID-TAG/gGEN/rSLOT-RND */
	int port;
	long pid;			/* the server's, on the host */
	long long log_off;		/* bytes of its log appended here */
	int want_ready;			/* ask whether it listens */
	const char *sig;		/* to send with the next round */
	int stopping;
	int orphan;			/* no struct replica: kill, forget */
	/* what the last round said */
	enum rstate st;
	int code;
	int caught_up;			/* the whole log is here */
	int in_flight;			/* requests it serves, -1: unknown */
	int direct_port;		/* its own port on the host, 0: not
					 * known (yet) */
	int serve;			/* mlfs-serve (not a `command`): has
					 * a direct port to ask for */
	char err[256];
	/* its liveness probe, run by the round on the host */
	double live_at;			/* when the next is due (monotonic) */
	int live_fails;			/* unanswered in a row */
	int wedged;			/* killed for it */
	struct ssh_rent *next;
};

/* Per target (ssh_tgt.dep). */
struct ssh_dep {
	struct ssh_rent *reps;
	struct ssh_gen *gens;
	char **trash;			/* folders to remove, under workdir */
	int ntrash;
	size_t trash_cap;
	unsigned long next_id;
	double next_poll;		/* monotonic */
	int down;			/* the last round did not get through */
};

/* r->priv: deploy_sm.c may free() it on its own, so it holds no links. */
struct ssh_ref {
	unsigned long id;
};

/* ssh_dep_table.c: the target's table (made on first use), a replica's
 * entry, the local records, the generations, the trash. */
struct ssh_dep *dep_of(struct target_ctx *t);
struct ssh_rent *ent_of(struct ssh_dep *dt, const struct replica *r);
void rec_write(const struct ssh_rent *x);
void rec_remove(const struct ssh_rent *x);
int dep_tag(const struct deploy_ctx *d, char *tag, size_t n);
struct ssh_gen *gen_find(struct ssh_dep *dt, int64_t dep, int gen);
struct ssh_gen *gen_get(struct ssh_dep *dt, const struct deploy_ctx *d,
			int gen, const char *tag);
void gen_drop(struct ssh_dep *dt, int64_t dep, int gen);
void trash_add(struct ssh_dep *dt, const char *rel);
void trash_clear(struct ssh_dep *dt);
struct ssh_rent *ent_new(struct ssh_dep *dt,
			 const struct deploy_ctx *d, int gen, int slot);
void ent_drop(struct ssh_dep *dt, struct ssh_rent *x);
int port_held(const struct ssh_dep *dt, const struct ssh_rent *me,
	      int port);

#endif
