/* SPDX-License-Identifier: MIT */
/*
 * Process start time, to tell a pid from a later process that reused it.
 * Header-only: mlfs-run (libc only) and the daemon share it.
 */
#ifndef MLFS_PROC_H
#define MLFS_PROC_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Field FIELD (>= 3) of /proc/PID/stat (0: self) as a number; 0 when
 * the process is gone. */
static inline unsigned long long proc_stat_field(pid_t pid, int field)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	/* after ")": state is field 3 */
	for (int f = 2; p && f < field; f++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* Start time of PID (0: self) in clock ticks since boot (field 22); 0
 * when the process is gone. */
static inline unsigned long long proc_start_ticks(pid_t pid)
{
	return proc_stat_field(pid, 22);
}

/* The session of PID (field 6); 0 when the process is gone. */
static inline pid_t proc_session(pid_t pid)
{
	return (pid_t)proc_stat_field(pid, 6);
}

#endif
