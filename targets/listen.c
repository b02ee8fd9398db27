// SPDX-License-Identifier: MIT
/*
 * Which processes listen on which TCP port, read from /proc/net/tcp{,6}
 * and /proc/PID/fd (a listening socket's inode, then the fds that hold
 * it): whether a local replica's process group listens on the service's
 * port yet, and mlfs-serve's own liveness port.  No state; backend worker
 * thread (local_deploy.c's replica poll).  And the kernel's hand-over of
 * a closed listener's pending connections (listen_handover).
 */
#include "listen.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"

/* Inodes of the TCP sockets listening on @port (both families). */
static int listen_inodes(int port, unsigned long *ino, int max)
{
	static const char *const files[] = { "/proc/net/tcp",
					     "/proc/net/tcp6" };
	char line[512], local[128];
	unsigned long inode;
	unsigned st, p;
	int n = 0;
	FILE *f;

	for (size_t i = 0; i < 2; i++) {
		f = fopen(files[i], "re");
		if (!f)
			continue;
		while (n < max && fgets(line, sizeof(line), f)) {
			if (sscanf(line, " %*s %127s %*s %x %*s %*s %*s %*s %*s"
				   " %lu", local, &st, &inode) != 3 ||
			    st != 0x0A)
				continue;
			if (sscanf(strrchr(local, ':') ? strrchr(local, ':') + 1
				   : "", "%x", &p) == 1 && (int)p == port)
				ino[n++] = inode;
		}
		fclose(f);
	}
	return n;
}

static int pid_holds(pid_t pid, const unsigned long *ino, int n)
{
	char path[64], link[64], want[40];
	struct dirent *de;
	ssize_t l;
	DIR *d;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && !found && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid,
			 de->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		for (int i = 0; i < n && !found; i++) {
			snprintf(want, sizeof(want), "socket:[%lu]", ino[i]);
			found = !strcmp(link, want);
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* Field 5 of /proc/PID/stat, the process group, or (@session) field 6,
 * the session. */
static pid_t proc_group(pid_t pid, int session)
{
	char path[64], buf[512], *p;
	int pgrp = 0, sid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %d %d", &pgrp, &sid) != 2)
		return 0;
	return session ? sid : pgrp;
}

/* The process of group (or @session) @id that listens on @port, or 0. */
static pid_t listener_in(pid_t id, int port, int session)
{
	unsigned long ino[64];
	struct dirent *de;
	pid_t pid, found = 0;
	int n;
	DIR *d;

	n = listen_inodes(port, ino, 64);
	if (!n)
		return 0;
	if (pid_holds(id, ino, n))
		return id;
	d = opendir("/proc");
	while (d && !found && (de = readdir(d))) {
		pid = atoi(de->d_name);
		if (pid > 0 && pid != id && proc_group(pid, session) == id &&
		    pid_holds(pid, ino, n))
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

int listen_by_group(pid_t pgid, int port)
{
	return listener_in(pgid, port, 0) != 0;
}

pid_t listen_in_session(pid_t sid, int port)
{
	return listener_in(sid, port, 1);
}

/* Listening TCP sockets on 127.0.0.1 (inode and port), up to @max. */
static int loopback_listeners(unsigned long *ino, int *ports, int max)
{
	char line[512];
	unsigned long inode;
	unsigned st, port;
	int n = 0;
	FILE *f = fopen("/proc/net/tcp", "re");

	while (f && n < max && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*s 0100007F:%x %*s %x %*s %*s %*s %*s %*s"
			   " %lu", &port, &st, &inode) != 3 || st != 0x0A)
			continue;
		ino[n] = inode;
		ports[n++] = (int)port;
	}
	if (f)
		fclose(f);
	return n;
}

/* mlfs-serve's own liveness port: a socket that @pid itself listens on at
 * 127.0.0.1, other than the service's @port and its direct port @other
 * (0: not known yet).  0: none (a server of the user's, by `command`, has
 * none: the deployment's GET / watches it), or not sure which (two
 * candidates while the direct port is not known). */
int listen_probe_port(pid_t pid, int port, int other)
{
	unsigned long ino[256];
	int ports[256], n, found = 0;

	n = loopback_listeners(ino, ports, 256);
	for (int i = 0; i < n; i++) {
		if (ports[i] == port || ports[i] == other ||
		    !pid_holds(pid, &ino[i], 1))
			continue;
		if (found)
			return 0;
		found = ports[i];
	}
	return found;
}

int listen_own(pid_t pid, int port)
{
	unsigned long ino[256];
	int ports[256], n;

	n = loopback_listeners(ino, ports, 256);
	for (int i = 0; i < n; i++)
		if (ports[i] == port && pid_holds(pid, &ino[i], 1))
			return 1;
	return 0;
}

/*
 * The replicas of a deployment share its port (SO_REUSEPORT), and a
 * draining one closes its listening socket: the kernel resets the
 * connections still in that socket's handshake or accept queue unless
 * net.ipv4.tcp_migrate_req hands them to another socket of the group (a
 * client connecting during a rolling update got "connection reset", 9 in
 * 100 closes of a listener under a connect loop here).  Set once, when
 * the daemon may (root) and it is off; the host's other services share
 * it, and it changes nothing but that hand-over.
 */
static void migrate_once(void)
{
	const char *path = "/proc/sys/net/ipv4/tcp_migrate_req";
	char v = '0';
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;		/* an old kernel, or not root */
	if (pread(fd, &v, 1, 0) == 1 && v == '0') {
		if (pwrite(fd, "1\n", 2, 0) == 2)
			log_info("net.ipv4.tcp_migrate_req set to 1: a"
				 " replica that stops listening hands its"
				 " pending connections to the others");
		else
			log_warn("cannot set net.ipv4.tcp_migrate_req: a"
				 " connection made as a replica drains may"
				 " be reset");
	}
	close(fd);
}

void listen_handover(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, migrate_once);
}
