/* SPDX-License-Identifier: MIT */
/*
 * Which processes listen on which TCP port (from /proc): see listen.c.
 */
#ifndef MLFS_LISTEN_H
#define MLFS_LISTEN_H

#include <sys/types.h>

/* Does a process of group @pgid hold a listening TCP socket on @port
 * (IPv4 or IPv6)?  1 or 0. */
int listen_by_group(pid_t pgid, int port);

/* The process of session @sid that listens on @port (a container's: its
 * init leads the session, the server has a group of its own), or 0. */
pid_t listen_in_session(pid_t sid, int port);

/* The one port other than @port and @other on which @pid itself listens
 * at 127.0.0.1 (the liveness port of mlfs-serve), or 0: none, or more
 * than one. */
int listen_probe_port(pid_t pid, int port, int other);

/* Does @pid itself listen at 127.0.0.1:@port?  1 or 0. */
int listen_own(pid_t pid, int port);

/* Once per process: net.ipv4.tcp_migrate_req on (root only), so that a
 * replica closing its listening socket as it drains hands the connections
 * still being made to the others instead of resetting them. */
void listen_handover(void);

#endif
