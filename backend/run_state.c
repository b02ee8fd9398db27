// SPDX-License-Identifier: MIT
/*
 * A run's state changes, reported by its worker and its target's driver
 * (worker threads only).  At the end, what the run wrote is taken in
 * (run_metrics.c, run_plots.c) before the state says it ended.
 */
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/clock.h"
#include "ws_i.h"

int ws_run_transition(struct ws *ws, struct run_ctx *r,
		      enum obj_state state, int exit_code, const char *error)
{
	struct obj o;
	fmask_t mask = 0;
	double now = wall_s();
	int rc;

	/* the run's last metrics and params lines are taken in (a malformed
	 * one named in its error) before a reader can see it ended */
	if (run_state_final(state) && r->started) {
		run_metrics_pump(ws, r);
		run_params_pump(ws, r);
	}
	o = r->obj;
	o.state = state;
	if (exit_code >= 0)
		o.exit_code = exit_code;
	if (error)
		snprintf(o.error, sizeof(o.error), "%s", error);
	/* a run that failed on a full disk says so: its writes failed */
	if (state == RS_FAILED && space_full(ws))
		space_note(ws, o.error, sizeof(o.error));
	if ((state == RS_STARTING || state == RS_RUNNING) &&
	    o.started <= 0)
		o.started = now;
	if (run_state_final(state)) {
		if (o.ended <= 0)
			o.ended = now;
		if (o.started <= 0)
			o.started = o.ended;
		mask |= FBIT(F_LOG) | FBIT(F_METRICS) | FBIT(F_CTL) |
			FBIT(F_WAIT);
	}
	/* what the engine wrote is final now: the kernel's copies go before
	 * a reader can see the run ended */
	if (run_state_final(state))
		ws_engine_folders_changed(ws, &o);
	rc = ws_update_obj(ws, &o, r->obj.state, mask);
	if (!rc || rc == -EAGAIN)
		r->obj = o;
	if (!rc && run_state_final(state))
		worker_kick(ws, WORKERS_ALL);	/* runs `after` this one */
	return rc;
}
