/* SPDX-License-Identifier: MIT */
/*
 * ssh_quote.h — pure helpers for the SSH driver: POSIX shell quoting, a
 * growable argv for posix_spawn, validation of the ssh target's config
 * values, and the ssh and rsync command lines built from them.
 *
 * Nothing here does I/O. Functions that can refuse return 0 or a negative
 * errno and, on refusal, write one human sentence (no trailing newline) to
 * the caller's buffer `why` of `len` bytes (`why` may be NULL).
 */
#ifndef MLFS_SSH_QUOTE_H
#define MLFS_SSH_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

/* Room for any sentence written to `why`. */
#define SSH_WHY_MAX 256

/*
 * sh_quote() - quote @s as one literal word for a POSIX sh.
 *
 * Returns a malloc'd string such that `sh -c "printf %s <result>"` prints
 * exactly @s, whatever bytes it holds (quotes, $, backticks, newlines,
 * spaces, a leading -). The empty string becomes ''. NULL on ENOMEM.
 */
char *sh_quote(const char *s);

/*
 * sh_quote_path() - like sh_quote(), but keeps a leading "~" or "~/"
 * meaning the login's home: "~/a b" becomes "$HOME"/'a b'. NULL on ENOMEM.
 */
char *sh_quote_path(const char *path);

/*
 * A growable, always NULL-terminated argv (v[n] == NULL once anything was
 * pushed). Start from ARGV_BUF_INIT. The first failure is sticky in @err:
 * later pushes do nothing and return it, so a caller may push many
 * elements and check once.
 */
struct argv_buf {
	char **v;
	size_t n;
	size_t cap;
	int err;
};

#define ARGV_BUF_INIT { NULL, 0, 0, 0 }

/* Append a copy of @s. Returns 0, or -ENOMEM (also kept in a->err). */
int argv_push(struct argv_buf *a, const char *s);

/* Append a printf-formatted element. Returns 0, or -ENOMEM. */
int argv_push_fmt(struct argv_buf *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Free every element and the array; leaves @a as ARGV_BUF_INIT. */
void argv_free(struct argv_buf *a);

/*
 * Validation of the values an ssh target's config puts on a command line.
 * Each returns 0 when the value is acceptable, else -EINVAL and a sentence
 * such as: host "-oProxyCommand=x" is not a hostname: it starts with "-"
 */

/* A hostname, an IPv4 address or a bare IPv6 address (no brackets). */
int ssh_check_host(const char *host, char *why, size_t len);

/* A user name: [A-Za-z_][A-Za-z0-9._-]*, at most 32 characters. */
int ssh_check_user(const char *user, char *why, size_t len);

/* An absolute path without control characters, "%" or "$" (ssh expands those). */
int ssh_check_identity_file(const char *path, char *why, size_t len);

/*
 * An absolute path, "~" or "~/…": no control characters, no ".." component,
 * none of * ? [ \ (rsync would treat it as a pattern).
 */
int ssh_check_workdir(const char *path, char *why, size_t len);
/* The same check of a folder on the host named by config key @k. */
int ssh_check_dir(const char *k, const char *path, char *why, size_t len);

/* Decimal numbers, digits only, in range; the value is stored in *out. */
int ssh_check_port(const char *s, int *out, char *why, size_t len);            /* 1–65535 */
int ssh_check_connect_timeout(const char *s, int *out, char *why, size_t len); /* 1–300 */
int ssh_check_max_concurrent(const char *s, int *out, char *why, size_t len);  /* 1–1024 */

/* What the command lines are built from. The strings are borrowed. */
struct ssh_target {
	const char *host;          /* required */
	const char *user;          /* required */
	int port;                  /* 0: 22 */
	const char *identity_file; /* NULL: ssh's default keys (no -i, no IdentitiesOnly) */
	const char *known_hosts;   /* NULL: ssh's default files */
	int connect_timeout;       /* seconds; 0: 10 */
	bool strict_host_key;      /* StrictHostKeyChecking=yes, else accept-new */
};

/*
 * ssh_argv() - append
 *   ssh -o BatchMode=yes -o ConnectTimeout=N -o ServerAliveInterval=5
 *       -o ServerAliveCountMax=3 -o StrictHostKeyChecking=accept-new|yes
 *       -o UserKnownHostsFile="KNOWN" -o IdentitiesOnly=yes -i ID
 *       -p PORT -l USER -- HOST
 * to @a; the caller then pushes the remote command as ONE word (built with
 * sh_quote()). Every value is a separate element: no local shell.
 * Returns 0, -EINVAL (a value is refused, sentence in @why) or -ENOMEM.
 */
int ssh_argv(const struct ssh_target *t, struct argv_buf *a, char *why, size_t len);

/*
 * rsync_argv() - append "rsync -e 'ssh' '-o' … '-p' 'PORT'" (one -e
 * element, each word in rsync's own single quotes); the caller then pushes
 * its rsync flags, "--", sources and destination (ssh_remote_spec()).
 * Returns as ssh_argv().
 */
int rsync_argv(const struct ssh_target *t, struct argv_buf *a, char *why, size_t len);

/*
 * ssh_remote_spec() - "USER@HOST:PATH" for rsync, with an IPv6
 * HOST in brackets. Give @path absolute, or relative (taken from the
 * login's home) instead of "~/…". malloc'd; NULL on ENOMEM.
 */
char *ssh_remote_spec(const struct ssh_target *t, const char *path);

#endif /* MLFS_SSH_QUOTE_H */
