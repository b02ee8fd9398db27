// SPDX-License-Identifier: MIT
/* The table of drivers, one per engine. */
#include "driver.h"

#include <string.h>

static const struct driver *const drivers[] = {
	&local_driver,
	&ssh_driver,
};

char mlfs_helper_dir[PATH_MAX] = ".";

const struct driver *driver_find(const char *type)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (!strcmp(drivers[i]->type, type))
			return drivers[i];
	return NULL;
}

const char *driver_types(void)
{
	static char list[256];

	if (!list[0]) {
		for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
			if (i)
				strcat(list, ", ");
			strcat(list, drivers[i]->type);
		}
	}
	return list;
}
