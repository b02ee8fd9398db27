// SPDX-License-Identifier: MIT
/*
 * The names of object states (enum obj_state, objects.h): what `status`,
 * info.json and the events show, and what the store keeps.  Pure, on any
 * thread.
 */
#include <string.h>

#include "objects.h"

static const char *const state_names[STATE_COUNT] = {
	[STATE_NONE]		= "",
	[RS_DRAFT]		= "Draft",
	[RS_QUEUED]		= "Queued",
	[RS_STARTING]		= "Starting",
	[RS_RUNNING]		= "Running",
	[RS_COMPLETED]		= "Completed",
	[RS_FAILED]		= "Failed",
	[RS_CANCELED]		= "Canceled",
	[TS_CREATING]		= "Creating",
	[TS_SUCCEEDED]		= "Succeeded",
	[TS_UPDATING]		= "Updating",
	[TS_DELETING]		= "Deleting",
	[DS_TRANSITIONING]	= "Transitioning",
	[DS_HEALTHY]		= "Healthy",
	[DS_UNHEALTHY]		= "Unhealthy",
	[VS_READY]		= "Ready",
	[VS_IN_USE]		= "InUse",
	[ES_BUILDING]		= "Building",
};

const char *state_name(enum obj_state s)
{
	return (unsigned)s < STATE_COUNT ? state_names[s] : "";
}

enum obj_state state_parse(const char *name)
{
	for (int s = STATE_NONE + 1; s < STATE_COUNT; s++)
		if (!strcmp(name, state_names[s]))
			return s;
	return STATE_NONE;
}
