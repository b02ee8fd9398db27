// SPDX-License-Identifier: MIT
/*
 * An endpoint's HAProxy as a process.  It runs in master-worker mode in a
 * session of its own: it outlives a daemon crash and the next daemon
 * adopts it by its pid file (checked against /proc, so a reused pid is
 * never taken for it).  Its files sit in a private folder (0700) of the
 * daemon's, never one a user can write: the maps hold the keys.  The
 * runtime API (a unix socket there, 0600) changes weights, keys and the
 * mirror between two requests; a reload (SIGUSR2 to the master) starts a
 * new worker on the same listening socket, the old one finishing its
 * requests, so that a change of the deployments behind it loses nothing.
 */
#include "endpoint_proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/spawn.h"

#define START_WAIT_S	10.0	/* for the API to answer once started */
#define API_MS		2000

/* @dir/@name into @buf; 0 or -ENAMETOOLONG. */
static int path_in(char *buf, size_t sz, const char *dir, const char *name)
{
	return (size_t)snprintf(buf, sz, "%s/%s", dir, name) < sz ? 0 :
	       -ENAMETOOLONG;
}

/* ---- files ------------------------------------------------------------- */

/* @text into @dir/@name whole: a new file (0600, O_EXCL, no link
 * followed) renamed over the old one. */
static int put_file(const char *dir, const char *name, const char *text,
		    struct err *e)
{
	char path[4200], tmp[4300];
	size_t len = strlen(text);
	int fd, rc = 0;

	if (path_in(path, sizeof(path), dir, name))
		return err_set(e, -ENAMETOOLONG, "the proxy's folder %s has"
			       " too long a name", dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return err_set(e, -errno, "cannot write %s: %s", tmp,
			       strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || fsync(fd))
		rc = -EIO;
	if (close(fd) || rc || rename(tmp, path)) {
		unlink(tmp);
		return err_set(e, -EIO, "cannot write %s", path);
	}
	return 0;
}

/* p->dir: a folder of the daemon's own, 0700, not a link. */
static int private_dir(const char *dir, struct err *e)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(e, -errno, "cannot make %s: %s", dir,
			       strerror(errno));
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077))
		return err_set(e, -EPERM, "%s is not a private folder of the"
			       " daemon's", dir);
	return 0;
}

/* The text @made (0 when its maker succeeded) into @name, freed. */
static int put_made(const char *dir, const char *name, int made, char *text,
		    struct err *e)
{
	int rc;

	if (made || !text) {
		free(text);
		return err_set(e, -ENOMEM, "out of memory");
	}
	rc = put_file(dir, name, text, e);
	free(text);
	return rc;
}

/* The maps and the configuration of @p. */
static int put_texts(const struct ep_proxy *p, const char *const *keys,
		     int nkeys, struct err *e)
{
	char *t = NULL;
	int made, rc;

	made = ep_keys_map(keys, nkeys, &t);
	rc = put_made(p->dir, EP_FILE_KEYS, made, t, e);
	t = NULL;
	made = rc ? 0 : ep_names_map(p, &t);
	if (!rc)
		rc = put_made(p->dir, EP_FILE_NAMES, made, t, e);
	t = NULL;
	made = rc ? 0 : ep_split_map(p, &t);
	if (!rc)
		rc = put_made(p->dir, EP_FILE_SPLIT, made, t, e);
	t = NULL;
	made = rc ? 0 : ep_mirror_map(p, &t);
	if (!rc)
		rc = put_made(p->dir, EP_FILE_MIRROR, made, t, e);
	t = NULL;
	if (!rc)
		rc = ep_proxy_config(p, &t, e);
	if (!rc)
		rc = put_made(p->dir, EP_FILE_CFG, 0, t, e);
	return rc;
}

int ep_proxy_files(const struct ep_proxy *p, const char *const *keys,
		   int nkeys, struct err *e)
{
	int rc = private_dir(p->dir, e);

	if (!rc)
		rc = put_file(p->dir, EP_FILE_LUA, ep_mirror_lua(), e);
	if (!rc)
		rc = put_texts(p, keys, nkeys, e);
	return rc;
}

/* ---- the API ----------------------------------------------------------- */

static int api_connect(const char *dir, int ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	int fd;

	if (path_in(sa.sun_path, sizeof(sa.sun_path), dir, EP_FILE_API))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* The whole answer to @cmd (the proxy closes after one command). */
static int api_one(const char *dir, const char *cmd, size_t len, int ms,
		   char **reply)
{
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd = api_connect(dir, ms);
	ssize_t r = 0;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return fd < 0 ? fd : -ENOMEM;
	}
	if (write(fd, cmd, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		r = -1;
	while (r >= 0 && (r = read(fd, buf + n, cap - n - 1)) > 0)
		if ((n += r) + 1 == cap && !(buf = realloc(buf, cap *= 2)))
			break;
	close(fd);
	if (r < 0 || !buf) {
		free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*reply = buf;
	return 0;
}

/* Is @s a success: empty but for blanks, or what `set server ... addr`
 * says when it took the address ("IP changed from ...", "no need to
 * change the addr, port changed from ...": its refusals say otherwise)? */
static int done(const char *s)
{
	s += strspn(s, " \t\r\n");
	if (!strncmp(s, "IP changed from ", 16) ||
	    !strncmp(s, "no need to change the addr", 26))
		return 1;
	return *s == '\0';
}

int ep_proxy_api(const char *dir, const char *cmds, int ms, char **reply,
		 struct err *e)
{
	char *ans = NULL;

	if (reply)
		*reply = NULL;
	for (const char *s = cmds, *nl; *s; s = nl ? nl + 1 : s + strlen(s)) {
		size_t len;

		nl = strchr(s, '\n');
		len = nl ? (size_t)(nl - s) : strlen(s);
		if (!len)
			continue;
		free(ans);
		ans = NULL;
		if (api_one(dir, s, len, ms, &ans))
			return err_set(e, -EIO, "the endpoint's proxy does not"
				       " answer on %s/" EP_FILE_API, dir);
		if (!reply && !done(ans)) {
			err_set(e, -EIO, "the endpoint's proxy refused '%.*s':"
				" %.*s", (int)len, s, (int)strcspn(ans, "\n"),
				ans);
			free(ans);
			return -EIO;
		}
	}
	if (reply)
		*reply = ans;
	else
		free(ans);
	return 0;
}

/* "prepare map @dir/@map": the new version's number, or -EIO. */
static long map_prepare(const char *dir, const char *map, int ms,
			struct err *e)
{
	char cmd[4300], *ans = NULL, *at;
	long ver = -1;

	snprintf(cmd, sizeof(cmd), "prepare map %s/%s", dir, map);
	if (ep_proxy_api(dir, cmd, ms, &ans, e))
		return -EIO;
	at = ans ? strstr(ans, "New version created:") : NULL;
	if (at)
		ver = strtol(at + 20, NULL, 10);
	if (ver < 0)
		err_set(e, -EIO, "the endpoint's proxy refused 'prepare map"
			" %s': %.*s", map, ans ? (int)strcspn(ans, "\n") : 0,
			ans ? ans : "");
	free(ans);
	return ver < 0 ? -EIO : ver;
}

int ep_proxy_map_swap(const char *dir, const char *map, const char *text,
		      int ms, struct err *e)
{
	long ver = map_prepare(dir, map, ms, e);
	size_t n = 1, sz;
	char *cmd, *o;
	int rc;

	if (ver < 0)
		return (int)ver;
	for (const char *s = text; (s = strchr(s, '\n')); s++)
		n++;
	/* each line: "add map @VER DIR/MAP " before it, "; " after */
	sz = strlen(text) + n * (strlen(dir) + strlen(map) + 48);
	cmd = o = malloc(sz);
	if (!cmd)
		return err_set(e, -ENOMEM, "out of memory");
	/* one line, commands parted by ';': the additions and the commit
	 * in one connection (the entries are names and ranges: no ';') */
	for (const char *s = text, *nl; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		if (!nl)
			break;
		o += snprintf(o, sz - (size_t)(o - cmd), "add map @%ld %s/%s"
			      " %.*s; ", ver, dir, map, (int)(nl - s), s);
	}
	snprintf(o, sz - (size_t)(o - cmd), "commit map @%ld %s/%s", ver,
		 dir, map);
	rc = ep_proxy_api(dir, cmd, ms, NULL, e);
	free(cmd);
	return rc;
}

/* ---- the process ------------------------------------------------------- */

/* The last line of @dir's EP_FILE_ERRLOG into @e's sentence. */
static int start_failed(const char *dir, const char *why, struct err *e)
{
	char path[4200], buf[4096], *last = "";
	ssize_t n = 0;
	int fd;

	if (!path_in(path, sizeof(path), dir, EP_FILE_ERRLOG) &&
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
		off_t end = lseek(fd, 0, SEEK_END);

		n = pread(fd, buf, sizeof(buf) - 1, end > (off_t)sizeof(buf) -
			  1 ? end - (off_t)sizeof(buf) + 1 : 0);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	last = strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf;
	return err_set(e, -EIO, "the endpoint's proxy %s%s%s", why,
		       *last ? ": " : "", last);
}

/* Wait (bounded) for @pid's API; reap it if it ended. */
static int wait_api(const char *dir, pid_t pid, struct err *e)
{
	double until = mono_s() + START_WAIT_S;
	char *ans;
	int st;

	while (mono_s() < until) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return start_failed(dir, "did not start", e);
		if (!api_one(dir, "show info", 9, 200, &ans)) {
			free(ans);
			return 0;
		}
		usleep(20 * 1000);
	}
	return start_failed(dir, "did not answer in time", e);
}

static int write_pid(const char *dir, pid_t pid, struct err *e)
{
	char txt[32];

	snprintf(txt, sizeof(txt), "%ld\n", (long)pid);
	return put_file(dir, EP_FILE_PID, txt, e);
}

int ep_proxy_start(const char *dir, const char *access_log, pid_t *pid,
		   struct err *e)
{
	char cfg[4200], errlog[4200], sock[4200];
	char *argv[] = { EP_HAPROXY, "-W", "-db", "-f", cfg, NULL };
	/* it runs as the daemon: nothing of a user's environment */
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	pid_t p;
	int rc;

	if (path_in(cfg, sizeof(cfg), dir, EP_FILE_CFG) ||
	    path_in(errlog, sizeof(errlog), dir, EP_FILE_ERRLOG) ||
	    path_in(sock, sizeof(sock), dir, EP_FILE_API))
		return err_set(e, -ENAMETOOLONG, "the proxy's folder %s has"
			       " too long a name", dir);
	unlink(sock);		/* a stale one would answer nobody */
	p = spawn_session(argv, env, access_log, errlog, e);
	if (p < 0)
		return (int)p;
	rc = wait_api(dir, p, e);
	if (!rc)
		rc = write_pid(dir, p, e);
	if (rc) {
		ep_proxy_stop(p, dir, 1000);
		return rc;
	}
	*pid = p;
	return 0;
}

int ep_proxy_is(pid_t pid, const char *dir)
{
	char path[64], cmd[8192], want[4200];
	ssize_t n;
	int fd;

	if (pid <= 0 || path_in(want, sizeof(want), dir, EP_FILE_CFG))
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	/* argv: haproxy -W -db -f CFG (NUL-separated); the master re-execs
	 * itself on a reload with more words after these */
	for (char *s = cmd; s < cmd + n; s += strlen(s) + 1)
		if (!strcmp(s, want))
			return !strcmp(cmd, EP_HAPROXY) ||
			       strstr(cmd, "haproxy") != NULL;
	return 0;
}

pid_t ep_proxy_adopt(const char *dir)
{
	char path[4200];
	long pid = 0;
	FILE *f;

	if (path_in(path, sizeof(path), dir, EP_FILE_PID))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return ep_proxy_is((pid_t)pid, dir) ? (pid_t)pid : 0;
}

int ep_proxy_reload(pid_t pid)
{
	return kill(pid, SIGUSR2) ? -errno : 0;
}

/* Gone (reaped when it is our child, or no longer that proxy)? */
static int proxy_gone(pid_t pid, const char *dir)
{
	int st;

	if (waitpid(pid, &st, WNOHANG) == pid)
		return 1;
	return !ep_proxy_is(pid, dir) || kill(pid, 0);
}

void ep_proxy_stop(pid_t pid, const char *dir, int grace_ms)
{
	double until = mono_s() + grace_ms / 1000.0;

	if (pid <= 0 || !ep_proxy_is(pid, dir))
		return;
	kill(pid, SIGTERM);
	while (!proxy_gone(pid, dir) && mono_s() < until)
		usleep(10 * 1000);
	if (!proxy_gone(pid, dir))
		kill(pid, SIGKILL);
	until = mono_s() + 2.0;
	while (!proxy_gone(pid, dir) && mono_s() < until)
		usleep(10 * 1000);
}
