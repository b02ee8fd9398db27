// SPDX-License-Identifier: MIT
/*
 * The slurm driver: a run is a batch job of a Slurm cluster, driven through
 * slurmrestd (REST + JSON over one kept-alive connection per target, see
 * lib/http.h; the JSON shapes and what differs between API versions
 * live in slurm_api.c, the one version table).
 *
 * Files: the job works in a copy of the run's files (under `workdir`, by
 * default the run's own folder, which the tree shows as outputs/) and
 * writes its stdout and stderr straight into the run's log, so tail -f
 * works and a daemon crash loses nothing.  With nodes > 1 the batch script
 * starts the command once per node with srun, each line of output prefixed
 * with the node's name.
 *
 * Nothing is submitted twice (slurm_jobs.c); outages and polling are
 * explained in slurm_poll.c.
 *
 * Where it lives (slurm_i.h): this file is the driver table, provision and
 * release; slurm_poll.c follows the jobs' states, slurm_jobs.c makes,
 * submits and cancels them, slurm_conn.c talks to slurmrestd,
 * slurm_config.c parses the config (pure).  Worker thread only, but for
 * slurm_validate and slurm_check_run.
 */
#include <errno.h>
#include <stdlib.h>

#include "slurm_i.h"

/* ---- provision ---------------------------------------------------------- */

static int slurm_provision(struct target_ctx *t, char **nodes, struct err *e)
{
	struct slurm_target *st = sl_get(t, e);
	int rc;

	if (!st)
		return -EINVAL;
	sl_free_http(st);	/* check everything afresh */
	st->api = NULL;
	st->retry_at = 0;
	rc = sl_ready(t, &st, e);
	if (!rc)
		rc = sl_ping(st, e);
	if (!rc)
		rc = sl_partition(st, e);
	if (!rc)
		rc = sl_nodes(st, nodes, e);
	return rc;
}

static int slurm_refresh(struct target_ctx *t, char **nodes, struct err *e)
{
	struct slurm_target *st;
	int rc;

	sl_cache_prune(t);	/* idle: the image cache's pass, when due */
	rc = sl_ready(t, &st, e);
	return rc ? rc : sl_nodes(st, nodes, e);
}

static int slurm_deprovision(struct target_ctx *t, struct err *e)
{
	struct slurm_target *st = t->priv;

	(void)e;
	sl_cache_empty(t);
	if (st) {
		sl_free_http(st);
		st->api = NULL;
	}
	return 0;
}

void sl_release(struct target_ctx *t)
{
	struct slurm_target *st = t->priv;

	if (!st)
		return;
	http_free(st->http);
	free(st->cache);
	free(st);
	t->priv = NULL;
}

const struct driver slurm_driver = {
	.type		= "slurm",
	.config_keys	= slurm_keys,
	.live_keys	= slurm_live_keys,
	.can_host	= 0,
	.inputs		= 1,
	.arrays		= 1,
	.environments	= 1,
	.refresh_seconds = (int)NODES_EVERY,
	.validate	= slurm_validate,
	.check_run	= slurm_check_run,
	.provision	= slurm_provision,
	.deprovision	= slurm_deprovision,
	.refresh	= slurm_refresh,
	.can_start	= slurm_can_start,
	.start		= slurm_start,
	.start_after	= slurm_start_after,
	.after_by	= "Slurm dependency",
	.poll		= slurm_poll,
	.cancel		= slurm_cancel,
	.adopt		= slurm_adopt,
	.release_run	= slurm_release_run,
	.release	= sl_release,
};
