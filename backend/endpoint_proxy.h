/* SPDX-License-Identifier: MIT */
/*
 * An endpoint's proxy as a process: its files written, started, adopted
 * after a daemon restart, told to change (runtime API) or reload, stopped.
 * Slow parts (start, the API) belong on a worker, never on a FUSE thread.
 */
#ifndef MLFS_ENDPOINT_PROXY_H
#define MLFS_ENDPOINT_PROXY_H

#include <sys/types.h>

#include "endpoint_config.h"

#define EP_HAPROXY	"/usr/sbin/haproxy"
#define EP_FILE_PID	"haproxy.pid"
#define EP_FILE_ERRLOG	"proxy.log"	/* the proxy's own messages */

/*
 * ep_proxy_files - write every file of @p below p->dir (made 0700 when
 * missing): the configuration and maps (0600, each replaced whole by a
 * rename, never through a link), with @keys (@nkeys) in the key map.
 * 0 or -errno with a sentence.
 */
int ep_proxy_files(const struct ep_proxy *p, const char *const *keys,
		   int nkeys, struct err *e);

/*
 * ep_proxy_start - start HAProxy (master-worker, a session of its own so
 * that it outlives the daemon) on p->dir's configuration, access lines
 * appended to @access_log, its own messages to EP_FILE_ERRLOG; waits
 * (bounded) until its API answers.  The master's pid into *@pid.
 * 0 or -EIO with a sentence that quotes the proxy's last message.
 */
int ep_proxy_start(const char *dir, const char *access_log, pid_t *pid,
		   struct err *e);

/* Is @pid the master of the proxy of @dir (its command line names that
 * configuration)?  1 or 0: a pid reused by anything else is not. */
int ep_proxy_is(pid_t pid, const char *dir);

/* The pid in @dir's pid file when it is that proxy's master, else 0. */
pid_t ep_proxy_adopt(const char *dir);

/* Re-read the configuration (a new worker takes the listening socket
 * over; the old one finishes its requests).  0 or -errno. */
int ep_proxy_reload(pid_t pid);

/* Stop the proxy (TERM, then KILL after @grace_ms) and wait for it. */
void ep_proxy_stop(pid_t pid, const char *dir, int grace_ms);

/*
 * ep_proxy_api - send @cmds (lines) to the runtime API of @dir, one
 * connection each, waiting at most @ms for each answer; an answer that is
 * not empty (HAProxy's "done" is empty or "Done."; `set server ... addr`
 * says its own) fails.  The last
 * answer into @reply (may be NULL), malloc'd.  0 or -EIO with a sentence.
 */
int ep_proxy_api(const char *dir, const char *cmds, int ms, char **reply,
		 struct err *e);

/*
 * ep_proxy_map_swap - replace the map @map (a file name below @dir) of
 * @dir's proxy by @text (`KEY VALUE` lines) at once: a new version
 * prepared, filled and committed, so that no request sees half of it.
 * 0 or -EIO with a sentence.
 */
int ep_proxy_map_swap(const char *dir, const char *map, const char *text,
		      int ms, struct err *e);

#endif
