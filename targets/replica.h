/* SPDX-License-Identifier: MIT */
/*
 * What the drivers that host deployments (local_deploy.c, ssh_deploy.c)
 * share about a replica: the sentence for its end, and the GET / that
 * tells whether a service answers.
 */
#ifndef MLFS_REPLICA_H
#define MLFS_REPLICA_H

#include <sys/socket.h>

#include "../backend/parse.h"

/*
 * replica_exit_reason - the sentence for a replica that ended, into @e
 * (-EIO): its one-line start failure @err_line when it wrote one (may be
 * NULL), else how it ended: @code > 128 a signal, >= 0 an exit code, < 0
 * unknown.
 */
void replica_exit_reason(const char *err_line, int code, struct err *e);

/*
 * replica_stats_in_flight - the count in what a replica wrote to its
 * MLFS_STATS_FILE ("in_flight N\n", mlfs-serve.py): N, or -1 when @text
 * is not that (empty, a user's own server, garbage).
 */
int replica_stats_in_flight(const char *text);

/*
 * replica_stats_direct_port - the port of mlfs-serve's line "direct_port
 * P" in the same text: its own port on 127.0.0.1 that serves the whole
 * service (an endpoint's proxy balances each request over the replicas
 * there); 0 when @text has none.  What a replica says is a claim: check
 * that it listens there (listen_own) before use.
 */
int replica_stats_direct_port(const char *text);

/* @host:@port as a socket address (numeric port; @host resolved).
 * 0 or -EINVAL. */
int replica_addr(const char *host, int port, struct sockaddr_storage *sa,
		 socklen_t *len);

/*
 * replica_probe - GET / on @host:@port, allowing @ms to connect and as
 * long again for the answer.  0 when it answers 2xx, else -errno with a
 * sentence naming @host:@port.
 */
int replica_probe(const char *host, int port, int ms, struct err *e);

/*
 * replica_probe_send - the same GET /, without waiting for the answer (the
 * worker must not block on a replica that stopped answering): the socket,
 * once connected within @ms, for replica_probe_check; or -errno.
 */
int replica_probe_send(const char *host, int port, int ms);
/* The answer on @fd so far: 1 a 2xx came, 0 nothing yet, -errno closed,
 * failed or not 2xx. */
int replica_probe_check(int fd);

#endif
