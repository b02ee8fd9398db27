/* SPDX-License-Identifier: MIT */
/*
 * ssh_exec.h — running ssh, rsync and tar for the SSH driver: spawn with
 * posix_spawnp (argv only, never a local shell), capture stdout and the
 * tail of stderr through pipes, kill the child when its time is up, reap
 * it by its pid.  Plus the connection options every call shares (batch
 * mode, our known_hosts, connection sharing) and the sentences that
 * explain a failed connection.
 *
 * Worker thread only: every function here may block up to its timeout.
 */
#ifndef MLFS_SSH_EXEC_H
#define MLFS_SSH_EXEC_H

#include <stddef.h>

#include "ssh_quote.h"

#define SX_ERR_MAX	1024

/* What a finished (or killed) child left behind. */
struct sx_result {
	int status;		/* exit code; -1 when killed or not started */
	int timed_out;		/* killed at the deadline */
	char *out;		/* stdout, NUL-terminated, malloc'd (may be NULL) */
	size_t out_len;
	int out_cut;		/* stdout was longer than the cap */
	char err[SX_ERR_MAX];	/* the last bytes of stderr */
};

/*
 * sx_run - run @argv (argv[0] looked up in PATH) with stdin from
 * /dev/null, in a process group of its own, keeping at most @out_max bytes
 * of stdout.  After @timeout_s seconds the child is killed (SIGKILL).  The
 * child is always reaped.  Returns 0 when it ran (its exit code in
 * res->status, which the caller checks), or -errno when it could not be
 * started (res->err says why).  Free res with sx_result_free().
 */
int sx_run(char *const argv[], int timeout_s, size_t out_max,
	   struct sx_result *res);
/*
 * sx_pipe - run @from | @to, both as sx_run runs one (own process groups,
 * killed at the deadline, always reaped), stderr of both into res->err.
 * @remote says which is the ssh (0: @from, 1: @to): res->status is its
 * exit code when not 0 (255: the connection failed), else 1 when the
 * other failed, else 0.  Returns as sx_run.
 */
int sx_pipe(char *const from[], char *const to[], int remote, int timeout_s,
	    struct sx_result *res);
void sx_result_free(struct sx_result *res);

/* A connection to one host, as the driver's calls share it. */
struct ssh_conn {
	struct ssh_target t;		/* borrowed strings */
	char known_hosts[4096];
	char identity[4096];		/* the daemon's copy of the key */
	const char *identity_shown;	/* identity_file as the user set it */
	char control_path[108];		/* "" = no connection sharing */
};

/*
 * ssh_conn_control_path - pick the ControlPath for the object folder
 * @objdir: "@objdir/cm" when short and plain enough for ssh, else
 * /tmp/mlfs-<uid>/<hash> (a private folder created here).  0 or -errno.
 */
int ssh_conn_control_path(const char *objdir, char *out, size_t n);

/*
 * ssh_conn_argv - the start of a command line for @kind ("ssh" or
 * "rsync"), with the shared options (-o ControlMaster=auto …).  For ssh
 * the caller then pushes the remote command as one word; for rsync, its
 * flags, "--", sources and destination.  0, -EINVAL with a
 * sentence in @why, or -ENOMEM.
 */
int ssh_conn_argv(const struct ssh_conn *c, const char *kind,
		  struct argv_buf *a, char *why, size_t len);

/*
 * ssh_conn_exec - run the POSIX sh @script on the host as one round trip
 * (`sh -c SCRIPT` after the ssh options).  Returns as sx_run, or -EINVAL
 * / -ENOMEM from building the command line (sentence in res->err).
 */
int ssh_conn_exec(const struct ssh_conn *c, const char *script,
		  int timeout_s, size_t out_max, struct sx_result *res);

/* Stop the shared connection, if any (ssh -O exit).  Never fails. */
void ssh_conn_close(const struct ssh_conn *c);

/* Why a call failed, for sentences and decisions. */
enum sx_why {
	SX_OK = 0,
	SX_UNREACHABLE,		/* the network or the server: try again later */
	SX_HOSTKEY_CHANGED,	/* the host key differs from known_hosts */
	SX_HOSTKEY_UNKNOWN,	/* strict checking and no known key */
	SX_AUTH,		/* the key was refused */
	SX_REMOTE,		/* connected; the remote command failed */
};

/*
 * ssh_conn_why - classify the result of an ssh or rsync call (or a tar pipe) and write
 * one sentence about it (naming USER@HOST:PORT) into @buf.  ssh's own
 * failures (exit code 255, a timeout) are the connection's; any other
 * non-zero code is SX_REMOTE with the last line of stderr.
 */
enum sx_why ssh_conn_why(const struct ssh_conn *c, const struct sx_result *res,
			 int timeout_s, char *buf, size_t n);

#endif /* MLFS_SSH_EXEC_H */
