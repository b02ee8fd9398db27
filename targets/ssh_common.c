// SPDX-License-Identifier: MIT
/*
 * What the SSH driver's runs (ssh_run.c) and deployments (ssh_deploy.c)
 * share, declared in ssh_common.h: the target's state, the connection to the
 * host (user, identity file copied with the owner's rights, known_hosts,
 * the shared ControlMaster socket), one remote call, one copy each way
 * (rsync or tar), appending to a local file.  They call down into this
 * file, never into each other.  Backend worker thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backend/driver.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "../lib/copy.h"
#include "ssh_exec.h"
#include "ssh_common.h"
#include "ssh_quote.h"
#include "ssh_script.h"

#define DEFAULT_WORKDIR	"~/.mlfs"

unsigned int ssh_rnd32(void)
{
	unsigned int v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned int)(mono_s() * 1e6) ^ (unsigned int)getpid();
	return v;
}

/* ---- the target's state ------------------------------------------------ */

struct ssh_tgt *ssh_tgt_of(struct target_ctx *t)
{
	struct ssh_tgt *s = t->priv;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		s->rsync = -1;
		t->priv = s;
	}
	return s;
}

const char *ssh_default_user(struct ssh_tgt *s)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!s->user[0] && !getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res)
	    && res)
		snprintf(s->user, sizeof(s->user), "%s", pw.pw_name);
	return s->user[0] ? s->user : "root";
}

/*
 * The key ssh is given: ssh runs as the daemon's user (root), and would
 * read identity_file with root's rights.  So the daemon reads it with the
 * rights of the target's owner and gives ssh a copy of those bytes, 0600 in
 * <objects>/<id>/keys/ (0700, the daemon's: no user can put a link there).
 * Made again at each provision; made when missing (a target provisioned by
 * an older mlfs).  0, or -errno with a sentence.
 */
int ssh_identity_copy(struct target_ctx *t, const char *path, int fresh,
		      char *out, struct err *e)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 8];
	size_t len;
	char *buf;
	int fd, rc;

	ws_obj_path(t->ws, t->obj.id, "keys", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(e, -errno, "cannot create %s: %s", dir,
			       strerror(errno));
	snprintf(out, PATH_MAX, "%s/identity", dir);
	if (!fresh && !access(out, F_OK))
		return 0;
	rc = userfile_read(t->obj.uid, t->obj.gid, "identity_file", path,
			   &buf, &len, e);
	if (rc)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.new", out);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	rc = fd < 0 ? -errno : 0;
	if (!rc && write(fd, buf, len) != (ssize_t)len)
		rc = -EIO;
	if (fd >= 0 && close(fd) && !rc)
		rc = -errno;
	explicit_bzero(buf, len);
	free(buf);
	if (!rc && rename(tmp, out))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return err_set(e, rc, "cannot keep a copy of identity_file %s:"
			       " %s", path, strerror(-rc));
	}
	return 0;
}

/*
 * Without identity_file, ssh would offer the keys (and agent) of the
 * daemon's user: a root daemon's to a host a user names.  Only a target of
 * the daemon's own user may go without one.
 */
int ssh_identity_needed(struct target_ctx *t, struct err *e)
{
	if (geteuid() != 0 || t->obj.uid == 0)
		return 0;
	return err_set(e, -EACCES, "identity_file is required: the daemon runs"
		       " as root, and ssh without one would log in with root's"
		       " own keys; set identity_file to a key of yours");
}

int ssh_conn_of(struct target_ctx *t, int strict, struct ssh_conn *c,
		struct err *e)
{
	const struct kv_list *cfg = &t->config;
	struct ssh_tgt *s = ssh_tgt_of(t);
	char dir[PATH_MAX];
	const char *id;
	int rc;

	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	memset(c, 0, sizeof(*c));
	c->t.host = cfg_str(cfg, "host", "");
	c->t.user = cfg_str(cfg, "user", ssh_default_user(s));
	c->t.port = (int)cfg_long(cfg, "port", 22);
	id = kv_get(cfg, "identity_file");
	c->identity_shown = id && *id ? id : NULL;
	c->t.identity_file = NULL;
	c->t.connect_timeout = (int)cfg_long(cfg, "connect_timeout", 10);
	c->t.strict_host_key = strict;
	ws_obj_path(t->ws, t->obj.id, NULL, dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return err_set(e, -errno, "cannot create %s: %s", dir,
			       strerror(errno));
	ws_obj_path(t->ws, t->obj.id, "known_hosts", c->known_hosts);
	c->t.known_hosts = c->known_hosts;
	rc = c->identity_shown ? ssh_identity_copy(t, id, 0, c->identity, e) :
	     ssh_identity_needed(t, e);
	if (rc)
		return rc;
	c->t.identity_file = c->identity_shown ? c->identity : NULL;
	rc = ssh_conn_control_path(dir, c->control_path,
				   sizeof(c->control_path));
	if (rc)
		c->control_path[0] = '\0';	/* no sharing: slower, works */
	return 0;
}

const char *ssh_workdir(struct target_ctx *t)
{
	return cfg_str(&t->config, "workdir", DEFAULT_WORKDIR);
}

const char *ssh_host(struct target_ctx *t)
{
	return cfg_str(&t->config, "host", "?");
}

/* Is @prog an executable in our PATH? */
static int have_local(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t l = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)l, l ? p : ".",
			 prog);
		if (!access(buf, X_OK))
			return 1;
		p += l + (p[l] == ':');
	}
	return 0;
}

int ssh_use_rsync(struct target_ctx *t, int host_has, struct err *e)
{
	const char *mode = cfg_str(&t->config, "transfer", "auto");
	int local = have_local("rsync");

	if (!strcmp(mode, "tar") || !strcmp(mode, "scp"))	/* scp: old name */
		return 0;
	if (!strcmp(mode, "rsync") && !(local && host_has))
		return err_set(e, -EIO, "transfer = rsync, but %s has no rsync",
			       local ? "the host" : "this machine");
	return local && host_has;
}

int ssh_stage(const char *src, const char *priv, uid_t uid, gid_t gid,
	      char *stage, char *why, size_t n)
{
	struct stat st;
	struct err e;
	int rc;

	if (mkdir(priv, 0700) && errno != EEXIST) {
		snprintf(why, n, "cannot make %s: %s", priv, strerror(errno));
		return -errno;
	}
	if (lstat(priv, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, n, "%s is not the daemon's alone", priv);
		return -EPERM;
	}
	snprintf(stage, PATH_MAX, "%s/up", priv);
	if (geteuid() != 0 || uid == 0)
		uid = (uid_t)-1;
	rc = copy_tree_as(src, stage, uid, gid, &e);
	if (rc)
		snprintf(why, n, "%s", e.msg);
	return rc;
}

int ssh_append(const char *dir, const char *name, const char *data,
		       size_t n)
{
	char path[PATH_MAX];
	ssize_t w;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (n > 0) {
		w = write(fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -EIO;
		}
		data += w;
		n -= w;
	}
	close(fd);
	return 0;
}

/* ---- remote calls and copies ------------------------------------------- */

int ssh_remote(struct ssh_conn *c, char *script, size_t out_max,
	       struct sx_result *res, char *why, size_t n)
{
	enum sx_why w;

	if (!script) {
		snprintf(why, n, "out of memory");
		return -ENOMEM;
	}
	if (ssh_conn_exec(c, script, SSH_CALL_TIMEOUT, out_max, res)) {
		free(script);
		snprintf(why, n, "%s", res->err);
		return -EIO;
	}
	free(script);
	w = ssh_conn_why(c, res, SSH_CALL_TIMEOUT, why, n);
	if (w == SX_OK)
		return 0;
	sx_result_free(res);
	return w == SX_REMOTE ? -EIO : -EHOSTUNREACH;
}

/* Does the host have rsync?  Known from provision; after a restart whose
 * refresh could not reach the host, asked now.  0 or -EHOSTUNREACH. */
static int know_rsync(struct target_ctx *t, struct ssh_conn *c, char *why,
		      size_t n)
{
	struct ssh_tgt *s = ssh_tgt_of(t);
	struct sx_result res;
	struct err e;
	int rc, has;

	if (s->rsync >= 0)
		return 0;
	rc = ssh_remote(c, strdup("if command -v rsync >/dev/null 2>&1; then"
			      " echo yes; fi"), SSH_OUT_MAX, &res, why,
			n);
	if (rc == -EHOSTUNREACH)
		return rc;
	has = !rc && res.out && strstr(res.out, "yes");
	if (!rc)
		sx_result_free(&res);
	s->rsync = ssh_use_rsync(t, has, &e) > 0;
	return 0;
}

/* The end of an rsync command line: flags, "--", source, destination. */
static void copy_args(struct argv_buf *a, int up, const char *local,
		      const char *spec)
{
	const char *from = up ? local : spec, *to = up ? spec : local;

	/* "DIR/": the folder's content; links as links, never followed;
	 * what a local copy keeps: times (-t, -p: make then judges the copy
	 * as it would the run's folder, and rsync skips unchanged files),
	 * hard links (-H) and holes (-S) */
	argv_push(a, "-rlptsHS");
	argv_push(a, "--chmod=u+rwX,ug-s");	/* no set-id file */
	argv_push(a, "--");
	argv_push_fmt(a, "%s/", from);
	argv_push_fmt(a, "%s/", to);
}

/* The remote half of a tar copy: unpack into @rpath (made) or pack it. */
static char *tar_remote(int up, const char *rpath)
{
	char *q = sh_quote(rpath), *script = NULL;
	const char *dot = rpath[0] == '/' ? "" : "./";
	int w;

	if (!q)
		return NULL;
	/* a login that is root keeps the files its own, as rsync does */
	if (up)
		w = asprintf(&script, "mkdir -p -- %s%s && exec tar -C %s%s"
			     " --no-same-owner -xpf -", dot, q, dot, q);
	else
		w = asprintf(&script, "exec tar -C %s%s -cf - .", dot, q);
	free(q);
	return w < 0 ? NULL : script;
}

/* tar ends "Exiting with failure status due to previous errors": the
 * error is the line before (last of @err's other lines) into @why. */
static void tar_why(const char *err, char *why, size_t n)
{
	const char *p = err, *line = NULL, *end;
	size_t len = 0;

	while (*p) {
		end = strchrnul(p, '\n');
		if (end > p && !memmem(p, end - p, "Exiting with failure", 20)) {
			line = p;
			len = end - p;
		}
		p = *end ? end + 1 : end;
	}
	if (line)
		snprintf(why, n, "%.*s", (int)len, line);
}

/*
 * Copy by tar over ssh, where rsync is missing.  Never scp: its -r follows
 * symlinks, so a daemon running as root would send the file a user's link
 * names (/etc/shadow) as that link's bytes.  GNU tar walks by folder fds
 * with O_NOFOLLOW and stores links as links; on extraction it refuses
 * "..", strips a leading "/", and makes a link that points outside only
 * at the end, so that no member is written through one; it makes no
 * device node (below).  The local side
 * keeps modes (no set-id bit sent), mtimes to the nanosecond (pax
 * headers), hard links and holes.
 */
static int tar_copy(struct ssh_conn *c, int up, const char *local,
		    const char *rpath, char *why, size_t n)
{
	struct argv_buf rem = ARGV_BUF_INIT, loc = ARGV_BUF_INIT;
	char *script = tar_remote(up, rpath), *q = NULL;
	struct sx_result res;
	enum sx_why w;
	int rc;

	rc = ssh_conn_argv(c, "ssh", &rem, why, n);
	if (!rc) {
		q = script ? sh_quote(script) : NULL;
		if (q)
			argv_push_fmt(&rem, "sh -c %s", q);
		else
			rem.err = -ENOMEM;
	}
	free(q);
	free(script);
	if (!up && geteuid() == 0) {
		/* a root tar would make the device nodes a host sends (a
		 * /dev/mem the run's user then owns): without CAP_MKNOD it
		 * cannot, and the copy fails with tar's sentence */
		argv_push(&loc, "setpriv");
		argv_push(&loc, "--bounding-set=-mknod");
		argv_push(&loc, "--");
	}
	argv_push(&loc, "tar");
	argv_push(&loc, "-C");
	argv_push(&loc, local);
	if (up) {
		argv_push(&loc, "--format=posix");
		argv_push(&loc, "--pax-option=delete=atime,delete=ctime");
		argv_push(&loc, "--mode=u+rwX,ug-s");
		argv_push(&loc, "--sparse");
		argv_push(&loc, "-cf");
		argv_push(&loc, "-");
		argv_push(&loc, ".");
	} else {
		argv_push(&loc, "--no-same-owner");
		argv_push(&loc, "-xpf");
		argv_push(&loc, "-");
	}
	if (rc || rem.err || loc.err) {
		if (!rc)
			snprintf(why, n, "out of memory");
		argv_free(&rem);
		argv_free(&loc);
		return -EIO;
	}
	rc = up ? sx_pipe(loc.v, rem.v, 1, SSH_COPY_TIMEOUT, &res) :
		  sx_pipe(rem.v, loc.v, 0, SSH_COPY_TIMEOUT, &res);
	argv_free(&rem);
	argv_free(&loc);
	if (rc) {
		snprintf(why, n, "%s", res.err);
		return -EIO;
	}
	w = ssh_conn_why(c, &res, SSH_COPY_TIMEOUT, why, n);
	if (w == SX_REMOTE)
		tar_why(res.err, why, n);
	return w == SX_OK ? 0 : w == SX_REMOTE ? -EIO : -EHOSTUNREACH;
}

int ssh_copy(struct target_ctx *t, struct ssh_conn *c, const char *rid,
	     int up, const char *local, const char *sub, char *why, size_t n)
{
	return ssh_copy_in(t, c, ssh_workdir(t), rid, up, local, sub, why, n);
}

int ssh_copy_in(struct target_ctx *t, struct ssh_conn *c, const char *base,
		const char *rid, int up, const char *local, const char *sub,
		char *why, size_t n)
{
	struct argv_buf a = ARGV_BUF_INIT;
	char rpath[PATH_MAX], *spec;
	struct sx_result res;
	enum sx_why w;
	int rc, rsync;

	if (know_rsync(t, c, why, n))
		return -EHOSTUNREACH;
	rsync = ssh_tgt_of(t)->rsync > 0;
	if (ssh_copy_path(base, rid, sub, rpath, sizeof(rpath))) {
		snprintf(why, n, "the remote path is too long");
		return -EIO;
	}
	if (!rsync)
		return tar_copy(c, up, local, rpath, why, n);
	spec = ssh_remote_spec(&c->t, rpath);
	rc = ssh_conn_argv(c, "rsync", &a, why, n);
	if (!rc && spec)
		copy_args(&a, up, local, spec);
	free(spec);
	if (rc || !spec || a.err) {
		if (!rc)
			snprintf(why, n, "out of memory");
		argv_free(&a);
		return -EIO;
	}
	rc = sx_run(a.v, SSH_COPY_TIMEOUT, 4096, &res);
	argv_free(&a);
	if (rc) {
		snprintf(why, n, "%s", res.err);
		return -EIO;
	}
	w = ssh_conn_why(c, &res, SSH_COPY_TIMEOUT, why, n);
	sx_result_free(&res);
	return w == SX_OK ? 0 : w == SX_REMOTE ? -EIO : -EHOSTUNREACH;
}
