// SPDX-License-Identifier: MIT
/* The table of drivers, one per engine. */
#include "driver.h"

#include <pthread.h>
#include <string.h>

/*
 * Each entry names a driver's ops table in targets/ (local.c, slurm.c,
 * ssh.c): an edge from backend/ up to targets/ made by the linker, not by
 * an include, so scripts/check-layers.sh does not see it.  It is the one
 * such edge and is meant: the backend calls drivers only through these
 * tables, and no file of targets/ is named here otherwise.
 */
static const struct driver *const drivers[] = {
	&local_driver,
	&slurm_driver,
	&ssh_driver,
	&cluster_driver,
};

const struct driver *driver_find(const char *type)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (!strcmp(drivers[i]->type, type))
			return drivers[i];
	return NULL;
}

static char type_list[256];

static void make_type_list(void)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (i)
			strcat(type_list, ", ");
		strcat(type_list, drivers[i]->type);
	}
}

const char *driver_types(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, make_type_list);
	return type_list;
}
