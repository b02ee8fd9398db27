/* SPDX-License-Identifier: MIT */
/*
 * ssh_script.h — the POSIX sh scripts the SSH driver runs on a host, and
 * the parser of what the poll script prints.  Pure: no I/O.  Every value
 * that reaches a script is quoted with sh_quote()/sh_quote_path().
 *
 * A run's folder on the host, D = WORKDIR/RID:
 *   work/      the working copy (the run's files; outputs/ inside)
 *   log        stdout + stderr of the command
 *   metrics    $MLFS_METRICS
 *   launched   made just before the command is started: never start twice
 *   boot pid   boot id; "PID STARTTIME" of the wrapper (= pgid = session)
 *   exit       the exit code, written by the wrapper when the command ends
 * The command runs detached (setsid) under a small sh wrapper: it survives
 * the ssh connection and the mlfs daemon.
 *
 * Each builder returns a malloc'd script, or NULL on ENOMEM.
 */
#ifndef MLFS_SSH_SCRIPT_H
#define MLFS_SSH_SCRIPT_H

#include <stddef.h>

/*
 * Provision: create @workdir, print "workdir ABS", "host NAME", "os OS",
 * "cpus N", "memory BYTES", "gpus N" (+ one "gpu …" line each),
 * "rsync 0|1", "setsid 0|1".
 */
char *ssh_script_detect(const char *workdir);

/* Before the upload: make @dir; print "launched" when the run was started
 * there before (adopt it), else remove an old work/ and print "fresh". */
char *ssh_script_create(const char *dir);

struct ssh_launch {
	const char *dir;		/* WORKDIR/RID */
	const char *name;		/* MLFS_RUN */
	const char *command;
	const char *gpus;		/* CUDA_VISIBLE_DEVICES, NULL: leave */
	const char *const *env;		/* KEY, VALUE, KEY, VALUE …, NULL */
};

/* Start the command detached unless @dir was launched before; print
 * "started PID" or "launched" (already); exit 1 when it does not start. */
char *ssh_script_launch(const struct ssh_launch *l);

struct ssh_poll_item {
	const char *dir;
	long long log_off, log_max;	/* bytes of log already here, cap */
	long long met_off, met_max;	/* same for metrics */
};

/*
 * One round trip for @n runs: for each, in order,
 *   "@@mlfs I STATUS\n" "N SIZE\n" N bytes of log "N SIZE\n" N bytes of metrics
 * STATUS: nodir | fresh | starting | running PID | exited CODE | lost.
 */
char *ssh_script_poll(const struct ssh_poll_item *items, int n);

/* Send @sig ("TERM", "KILL") to the run's process group if it is alive. */
char *ssh_script_signal(const char *dir, const char *sig);

/* Remove the folders @rids (NULL-terminated) under @workdir. */
char *ssh_script_remove(const char *workdir, const char *const *rids);

/* What the poll printed for one run. */
struct ssh_poll_reply {
	int index;
	char status[16];		/* nodir fresh starting running exited lost */
	long long arg;			/* PID or exit code */
	const char *log;		/* bytes into the parsed buffer */
	long long log_n, log_size;
	const char *met;
	long long met_n, met_size;
};

/*
 * ssh_poll_parse - parse the next reply at *@pos in @buf (@len bytes).
 * Returns 1 and advances *@pos, 0 at the end, -EINVAL when the bytes do
 * not follow the format (the rest is ignored).
 */
int ssh_poll_parse(const char *buf, size_t len, size_t *pos,
		   struct ssh_poll_reply *r);

/* "D" for @workdir and @rid: "WORKDIR/RID" with "~" kept for quoting. */
int ssh_run_dir(const char *workdir, const char *rid, char *out, size_t n);

/* The same path as scp and rsync want it (relative to the home for "~"). */
int ssh_copy_path(const char *workdir, const char *rid, const char *sub,
		  char *out, size_t n);

#endif /* MLFS_SSH_SCRIPT_H */
