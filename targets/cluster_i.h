/* SPDX-License-Identifier: MIT */
/*
 * Private to the cluster driver (type = cluster): a Slurm cluster that mlfs
 * makes out of machines reached over ssh.  The layers, each calling only
 * down:
 *
 *   cluster.c         the driver table: provision, deprovision, resize,
 *                     refresh (nodes, supervision); runs go to the slurm
 *                     driver's code (slurm_i.h) with a config made here
 *   cluster_hosts.c   the hosts over ssh: checks, install, probe, cleanup
 *   cluster_ctl.c     the controller on this machine: generated files,
 *                     munged + slurmctld + slurmrestd started, watched,
 *                     adopted and stopped; scontrol calls; the token
 *   cluster_config.c  the config keys (pure)
 *
 * The hosts' slurmd is started and stopped by Slurm's power saving
 * through targets/mlfs-cluster-power (a shell helper slurmctld runs).
 * Everything but cluster_config.c runs on the backend's worker thread.
 */
#ifndef MLFS_CLUSTER_I_H
#define MLFS_CLUSTER_I_H

#include <limits.h>
#include <stdint.h>

#include "../backend/driver.h"

#define CL_HOSTS_MAX	64
#define CL_RUNDIR	"/run/mlfs-cluster"	/* on every machine */
#define CL_PARTITION	"mlfs"
#define CL_TOKEN_LIFE	(7 * 86400)	/* seconds a minted token lasts */

/* A cluster's config, parsed (pointers into the kv_list). */
struct cluster_cfg {
	const char *hosts[CL_HOSTS_MAX];
	int nhosts;
	const char *user;		/* ssh user on the hosts */
	int port;
	const char *identity_file;	/* NULL: none given */
	long min_nodes, max_nodes;
	long idle_s;			/* SuspendTime */
	long resume_s;			/* ResumeTimeout */
	const char *controller;		/* NULL: as the first host sees us */
	int slurmd_port;
	int connect_timeout;
	int install;			/* apt-get install on root Debian hosts */
};

/* ---- cluster_config.c (pure) -------------------------------------------- */

extern const char *const cluster_keys[];
extern const char *const cluster_live_keys[];
extern const char *const cluster_multi_keys[];

/* Parse a copy of @kv (made in @copy: `hosts` is split in place) into
 * @c, whose strings point into @copy: kv_free(@copy) when done with @c,
 * also on failure.  0 or -EINVAL + sentence. */
int cluster_cfg_parse(const struct kv_list *kv, struct kv_list *copy,
		      struct cluster_cfg *c, struct err *e);
int cluster_validate(const struct kv_list *kv, struct err *e);
/* Can @res ever run on the first max_nodes nodes of @nodes? */
int cluster_check_run(const struct kv_list *cfg, const char *nodes,
		      const struct resources *res, struct err *e);
/* The Slurm name of host @i (0-based): "node1", … */
void cluster_node_name(int i, char *buf, size_t n);

/* ---- per target state (t->priv's ext), worker only ---------------------- */

struct cl_proc {
	const char *name;		/* "munged", "slurmctld", "slurmrestd" */
	long pid;
	unsigned long long start;	/* /proc/PID/stat starttime */
};

struct cl_host {
	char addr[256];
	long cpus, gpus;
	unsigned long long mem_mib;
};

struct cluster {
	char dir[PATH_MAX];		/* <state>/objects/<id>/cluster (0700) */
	char run[PATH_MAX];		/* /run/mlfs-cluster/<key> */
	char key[32];			/* names this cluster on every machine */
	char token[4096];		/* JWT for the target's owner */
	double token_at;		/* wall time it was minted */
	int ctld_port, rest_port;
	struct cl_proc procs[3];	/* munged, slurmctld, slurmrestd */
	struct cl_host hosts[CL_HOSTS_MAX];
	int nhosts;
	double checked_at;		/* last supervision (monotonic) */
	double min_at;			/* last power-up for min_nodes */
	int64_t wait_run;		/* the run waiting for nodes, 0: none */
	double wait_since;		/* … since (monotonic) */
	double retry_at;		/* no controller start before */
	int backoff;			/* seconds, after a failed start */
	char down_why[256];		/* why the last start failed */
	/* per node, from the last refresh */
	const char *state[CL_HOSTS_MAX];	/* our word, NULL unknown */
	char last[CL_HOSTS_MAX][24];	/* the word last said in events */
	char reason[CL_HOSTS_MAX][256];
	int off[CL_HOSTS_MAX];		/* Slurm says powered_down */
	double down_at[CL_HOSTS_MAX];	/* when down was first seen */
	double retry_s[CL_HOSTS_MAX];	/* its next try after (backoff) */
	double asked_up[CL_HOSTS_MAX];	/* when we asked Slurm to power it
					 * up (monotonic), 0 not lately */
	char kv_text[8192];		/* the slurm driver's config */
	struct kv_list slurm_kv;
};

/* ---- cluster_ctl.c ------------------------------------------------------ */

/* The cluster's state, made and its paths set on first use. */
struct cluster *cl_get(struct target_ctx *t, struct err *e);
/* Write slurm.conf (slurmctld at @ctl), the keys, the power helper's
 * files (ssh with @identity, "" for none).  0 or -errno + sentence. */
int cl_write_files(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, const char *ctl,
		   const char *identity, struct err *e);
/* Start what is not running (adopting what is).  @restarted: a line per
 * process started again, for events.  0 or -errno + sentence. */
int cl_ensure(struct target_ctx *t, struct cluster *cl, char *restarted,
	      size_t n, struct err *e);
/* What provision learnt, for a later slurm.conf (resize, restart): the
 * controller address into @ctl, the identity copy into @identity
 * (PATH_MAX, "" none), the hosts into cl->hosts.  0 or -errno. */
int cl_load_facts(struct cluster *cl, char *ctl, size_t n, char *identity,
		  struct err *e);
/* Stop the controller's processes, remove the secrets and run files. */
void cl_stop(struct target_ctx *t, struct cluster *cl, int remove);
/* scontrol ARGS… against the cluster: 0, or -EIO with its sentence. */
int cl_scontrol(struct cluster *cl, char *out, size_t n, struct err *e,
		const char *arg, ...) __attribute__((sentinel));
/* A token for @user (minted when missing or old). */
int cl_token(struct cluster *cl, const char *user, struct err *e);
/* The version of Slurm on this machine ("22.05.8"), @n >= 32. */
int cl_local_version(char *buf, size_t n, struct err *e);

/* ---- cluster_hosts.c ---------------------------------------------------- */

/* Check every host (one after the other), install when allowed, read its
 * capacity into cl->hosts; find the controller address when not set.
 * 0 or -errno with the first host's reason. */
int cl_hosts_check(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, const char *identity,
		   const char *version, char *ctl_addr, size_t n,
		   struct err *e);
/* Stop slurmd and munged of this cluster on every host and remove its
 * files there.  0, or -EIO with the hosts that could not be cleaned. */
int cl_hosts_clean(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, struct err *e);

#endif /* MLFS_CLUSTER_I_H */
