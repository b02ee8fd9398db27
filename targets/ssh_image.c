// SPDX-License-Identifier: MIT
/*
 * A run in an environment on an ssh host (see ssh_image.h).  One round
 * trip asks the host for podman (in the login's PATH), the login's ids
 * and hard limits, the run's folder as an absolute path and whether its
 * podman has the image; a missing image is streamed from this machine's
 * podman into the host's (podman save | ssh … podman load: never a file,
 * never through the daemon's memory).  Then the container's command line
 * is built by container.c, as on the local target, with the host's
 * values: the run's folder on the host gives /work (work/), the metrics
 * and params files and mlfs.py (py/).
 *
 * Who runs the container: the ssh login, with its podman.  A login that
 * is not root runs rootless podman (its own image store, which needs its
 * entries in /etc/subuid and /etc/subgid): --userns=keep-id keeps its
 * uid inside, so that it owns work/ there as here.  A root login runs
 * rootful podman: the command as root inside, with no capability and no
 * new privileges; the same login's run without a container would be root
 * on the host itself.  Either way --network=host, the network the run
 * would have without a container (rootless podman's own network needs
 * /dev/net/tun, which many hosts do not give; rootful podman's costs a
 * start ~0.6 s).
 */
#include "ssh_image.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/driver.h"
#include "../backend/ws.h"
#include "cgroup.h"
#include "container.h"
#include "ssh_common.h"
#include "ssh_quote.h"
#include "ssh_script.h"

/* After d=DIR and i=IMAGE: prints nopodman, or podman PATH, ids U G,
 * limits N P, image CODE [why LINE], cdi 0|1 (a CDI spec of the kind
 * nvidia.com/gpu in podman's folders), dir ABS (last: it may be long). */
static const char check_script[] =
	"cd -- \"$d\" || exit 1\n"
	"p=$(command -v podman 2>/dev/null) || p=\n"
	"case $p in /*) ;; *) echo nopodman; exit 0 ;; esac\n"
	"echo \"podman $p\"\n"
	"echo \"ids $(id -u) $(id -g)\"\n"
	"awk '/^Max open files/ { n = $5 } /^Max processes/ { p = $4 }"
	" END { print \"limits\", n + 0, p + 0 }' /proc/self/limits\n"
	"w=$(\"$p\" --log-level=error image exists \"$i\" 2>&1); c=$?\n"
	"echo \"image $c\"\n"
	"if grep -qsE 'kind\"?[[:space:]]*:[[:space:]]*[\"'\\'']?nvidia\\.com/gpu'"
	" /etc/cdi/* /var/run/cdi/*; then echo 'cdi 1'; else echo 'cdi 0'; fi\n"
	"[ -z \"$w\" ] || printf 'why %s\\n' \"$(printf '%s\\n' \"$w\" |"
	" tail -n 1)\"\n"
	"echo \"dir $(pwd -P)\"\n";

/* After d=, p=PODMAN, i= and lg=: load the image from stdin, check that
 * it is the one asked for, and say so: in the file lg of d (a run's log
 * on the host), or on stderr when lg is empty (a deployment's log is
 * here; sx_pipe keeps stderr only).  podman's failure in
 * one line: its first (the last is a follow-up); the ids a rootless
 * login cannot map explained (a root daemon's builds leave RUN layers
 * owned by the build namespace's host ids, 2147483647 here). */
static const char load_script[] =
	"cd -- \"$d\" || exit 1\n"
	"o=$(\"$p\" --log-level=error load -q 2>&1 >/dev/null) || {\n"
	"  case $o in *'insufficient UIDs'*) echo 'the image holds files of"
	" user ids that this login'\\''s rootless podman cannot map: an"
	" image whose RUN steps a root daemon built loads only into a root"
	" login'\\''s podman' >&2 ;;\n"
	"  *) printf '%s\\n' \"$o\" | grep . | head -n 1 >&2 ;; esac\n"
	"  exit 1\n"
	"}\n"
	"s=$(\"$p\" --log-level=error image inspect --format '{{.Size}}'"
	" \"$i\" 2>/dev/null) ||"
	" { echo \"podman load did not give the image $i\" >&2; exit 1; }\n"
	"awk -v s=\"$s\" -v i=\"$i\" -v h=\"$(uname -n)\" 'BEGIN { printf"
	" \"mlfs: the image %s was not on %s: copied (podman save | podman"
	" load), %.1f MB\\n\", i, h, s / 1e6 }' |\n"
	"if [ -n \"$lg\" ]; then cat >>\"$lg\"; else cat >&2; fi\n";

/* "d=DIR\ni=IMAGE\nlg=LOG\n[p=PODMAN\n]" + @body, malloc'd, or NULL
 * (@log: "log", or "" for stdout). */
static char *script_of(const char *dir, const char *image, const char *podman,
		       const char *log, const char *body)
{
	char *qd = sh_quote_path(dir), *qi = sh_quote(image);
	char *qp = podman ? sh_quote(podman) : NULL, *s = NULL;

	if (qd && qi && (qp || !podman) &&
	    asprintf(&s, "d=%s\ni=%s\nlg=%s\n%s%s%s%s", qd, qi, log,
		     qp ? "p=" : "", qp ? qp : "", qp ? "\n" : "", body) < 0)
		s = NULL;
	free(qd);
	free(qi);
	free(qp);
	return s;
}

/* One line of the check's output into @h. */
static void check_line(struct ssh_podman *h, const char *l)
{
	if (!strncmp(l, "podman ", 7))
		snprintf(h->podman, sizeof(h->podman), "%s", l + 7);
	else if (!strncmp(l, "dir ", 4))
		snprintf(h->dir, sizeof(h->dir), "%s", l + 4);
	else if (!strncmp(l, "why ", 4))
		snprintf(h->why, sizeof(h->why), "%s", l + 4);
	else if (sscanf(l, "ids %u %u", &h->uid, &h->gid) == 2 ||
		 sscanf(l, "limits %llu %llu", &h->nofile, &h->nproc) == 2 ||
		 sscanf(l, "image %d", &h->image) == 1 ||
		 sscanf(l, "cdi %d", &h->cdi) == 1)
		return;
}

/* Ask the host.  0 (@h filled; h->podman "" when it has none), or
 * -errno with @why. */
static int host_check(struct ssh_conn *c, const char *dir, const char *image,
		      struct ssh_podman *h, char *why, size_t n)
{
	struct sx_result res;
	char *save, *l;
	int rc;

	memset(h, 0, sizeof(*h));
	h->image = -1;
	rc = ssh_remote(c, script_of(dir, image, NULL, "", check_script),
			SSH_OUT_MAX, &res, why, n);
	if (rc)
		return rc;
	for (l = strtok_r(res.out ? res.out : "", "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		check_line(h, l);
	sx_result_free(&res);
	if (h->podman[0] && (!h->dir[0] || h->image < 0)) {
		snprintf(why, n, "unexpected output from the host's check of"
			 " podman");
		return -EIO;
	}
	return 0;
}

/* podman save here | podman load there; the line saying so into @dir/log
 * on the host (@said NULL), else into @said. */
static int image_copy(struct ssh_conn *c, const char *dir, const char *image,
		      const char *podman, char *said, size_t sn, char *why,
		      size_t n)
{
	struct argv_buf loc = ARGV_BUF_INIT, rem = ARGV_BUF_INIT;
	char here[PATH_MAX], *script, *q;
	struct sx_result res;
	const char *l;
	enum sx_why w;
	int rc;

	if (env_podman(here, sizeof(here))) {
		snprintf(why, n, "this machine has no podman to send the image"
			 " from (apt-get install podman runc catatonit)");
		return -EIO;
	}
	argv_push(&loc, here);
	argv_push(&loc, "--log-level=error");
	argv_push(&loc, "save");
	argv_push(&loc, image);
	rc = ssh_conn_argv(c, "ssh", &rem, why, n);
	script = script_of(dir, image, podman, said ? "''" : "log",
			   load_script);
	q = script ? sh_quote(script) : NULL;
	if (q)
		argv_push_fmt(&rem, "sh -c %s", q);
	free(q);
	free(script);
	if (!rc && (!q || loc.err || rem.err)) {
		snprintf(why, n, "out of memory");
		rc = -ENOMEM;
	}
	if (!rc && sx_pipe(loc.v, rem.v, 1, SSH_COPY_TIMEOUT, &res)) {
		snprintf(why, n, "%s", res.err);
		rc = -EIO;
	} else if (!rc) {
		w = ssh_conn_why(c, &res, SSH_COPY_TIMEOUT, why, n);
		rc = w == SX_OK ? 0 : w == SX_REMOTE ? -EIO : -EHOSTUNREACH;
		if (!rc && said && (l = strstr(res.err, "mlfs: the image ")))
			snprintf(said, sn, "%.*s\n", (int)strcspn(l, "\n"), l);
	}
	argv_free(&loc);
	argv_free(&rem);
	return rc;
}

struct line {
	FILE *f;
	const char *name;		/* --name=NAME: written as "$n" */
};

/* One word, quoted for sh, and a blank, into the line @ctx; the name as
 * "$n", which the line sets (an array's task: NAME-tI). */
static void word(void *ctx, const char *w)
{
	struct line *l = ctx;
	char *q;

	if (!strncmp(w, "--name=", 7) && !strcmp(w + 7, l->name)) {
		fputs("--name=\"$n\" ", l->f);
		return;
	}
	q = sh_quote(w);
	fputs(q ? q : "''", l->f);	/* ENOMEM: the line fails to run */
	fputc(' ', l->f);
	free(q);
}

/* A port for the ranks' MASTER_PORT, picked on the host, outside the
 * container (inside, the launcher's pid is 2 or so: no fallback). */
static const char ranks_port[] =
	"MLFS_MASTER_PORT=$(python3 -c 'import socket; s = socket.socket();"
	" s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])' 2>/dev/null)"
	" || MLFS_MASTER_PORT=$((20000 + $$ % 20000))\n"
	"export MLFS_MASTER_PORT\n";

/* The wrapper's command: the container, then its removal when podman
 * was killed (cancel's KILL) before its --rm.  The trap keeps this shell
 * waiting for podman through a TERM (podman passes TERM on). */
static char *ct_line(const struct ct_spec *s)
{
	char *buf = NULL, *qp = sh_quote(s->podman), *qn = sh_quote(s->name);
	size_t len;
	FILE *f = qp && qn ? open_memstream(&buf, &len) : NULL;
	struct line l = { f, s->name };

	if (f) {
		/* rootful podman's netavark runs iptables: sbin too, as
		 * mlfs-run -i gives the local one; an array's task (its
		 * launcher sets MLFS_ARRAY_INDEX) has a container of its
		 * own, NAME-tI */
		fputs("trap 'c=1' TERM INT HUP\n"
		      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		      "/sbin:/bin; export PATH\n", f);
		fprintf(f, "n=%s${MLFS_ARRAY_INDEX:+-t$MLFS_ARRAY_INDEX}\n", qn);
		if (s->launcher)
			fputs(ranks_port, f);
		ct_args(s, word, &l);
		fprintf(f, "\ns=$?\n%s --log-level=error rm -f -- \"$n\""
			" >/dev/null 2>&1\nexit $s\n", qp);
		if (fclose(f)) {
			free(buf);
			buf = NULL;
		}
	}
	free(qp);
	free(qn);
	return buf;
}

static char *ct_env_text(struct run_ctx *r, const struct ct_input *in,
			 int nin)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	ct_env(f, r->obj.name, r->res.gpus > 0 ? r->obj.gpus : NULL, &r->env);
	ct_env_inputs(f, in, nin);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The inputs in the host's cache ("MLFS_INPUT_NAME", PATH, … NULL, from
 * ssh_inputs_send) as the container's mounts: PATH, the entry or the
 * file in it, at /mlfs/inputs/NAME.  Their count, -ENOMEM, -EINVAL (a
 * path podman's --volume cannot take). */
static int ct_inputs(const char *const *env, struct ct_input **out)
{
	size_t pl = strlen("MLFS_INPUT_");
	int n = 0;

	*out = NULL;
	while (env && env[2 * n] && env[2 * n + 1])
		n++;
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		if (strncmp(env[2 * i], "MLFS_INPUT_", pl) ||
		    env[2 * i + 1][0] != '/' || strchr(env[2 * i + 1], ':'))
			return -EINVAL;
		(*out)[i].name = env[2 * i] + pl;
		(*out)[i].src = env[2 * i + 1];
	}
	return n;
}

/* The words of procs_per_node = N: the sh launcher in the container. */
static int ct_ranks(struct run_ctx *r, char **text, const char **launcher)
{
	if (r->res.procs_per_node <= 1)
		return 0;
	*text = ssh_script_ranks((int)r->res.procs_per_node, 1);
	if (!*text)
		return -ENOMEM;
	launcher[0] = "/bin/sh";
	launcher[1] = "-c";
	launcher[2] = *text;
	launcher[3] = "mlfs-ranks";
	launcher[4] = NULL;
	return 1;
}

static const char *const ranks_env[] = { "MLFS_MASTER_PORT", NULL };

/* The container's command and env file, from the host's values. */
static int ct_fill(struct run_ctx *r, const struct ssh_podman *h,
		   const struct ct_input *in, int nin, struct ssh_ct *ct)
{
	char work[PATH_MAX + 8], met[PATH_MAX + 8], par[PATH_MAX + 8];
	char lib[PATH_MAX + 8], envf[PATH_MAX + 8], *ranks = NULL;
	const char *launcher[5];
	struct ct_spec s = {
		.podman = h->podman, .quiet = 1, .name = ct->name,
		.uid = h->uid, .gid = h->gid, .keep_id = h->uid != 0,
		.network = "host",
		.nofile = ct_limit(h->nofile), .nproc = ct_limit(h->nproc),
		.pids = CG_PIDS_DEFAULT, .memory_mib = r->res.memory_mib,
		.cpu_milli = r->res.cpu_milli,
		.work = work, .metrics = met, .params = par, .lib = lib,
		.env_file = envf, .image = r->image, .command = r->command,
		.inputs = in, .ninputs = nin,
		.gpus = r->res.gpus > 0 ? r->obj.gpus : NULL,
		.pass_env = r->res.array_n > 0 ? ct_array_env : NULL,
	};
	int rc = ct_ranks(r, &ranks, launcher);

	if (rc < 0)
		return rc;
	if (rc) {
		s.launcher = launcher;
		s.pass_env = ranks_env;
	}

	snprintf(ct->podman, sizeof(ct->podman), "%s", h->podman);
	ct_name(ws_state_dir(r->ws), (long long)r->obj.id, ct->name,
		sizeof(ct->name));
	snprintf(work, sizeof(work), "%s/work", h->dir);
	snprintf(met, sizeof(met), "%s/metrics", h->dir);
	snprintf(par, sizeof(par), "%s/params", h->dir);
	snprintf(lib, sizeof(lib), "%s/py", h->dir);
	snprintf(envf, sizeof(envf), "%s/ct.env", h->dir);
	ct->cmd = ct_line(&s);
	ct->env = ct_env_text(r, in, nin);
	free(ranks);
	return ct->cmd && ct->env ? 0 : -ENOMEM;
}

/* Rootless podman could not make its user namespace: @msg (podman's
 * words, may be @why) named newuidmap. */
static int uidmap_missing(struct target_ctx *t, const char *msg, char *why,
			  size_t n)
{
	char said[ERR_MSG_MAX / 2];

	snprintf(said, sizeof(said), "%s", msg);
	snprintf(why, n, "podman cannot make its user namespace (%s): rootless"
		 " podman, as a login that is not root runs it, needs"
		 " newuidmap (apt-get install uidmap on %s)", said,
		 ssh_host(t));
	return -EIO;
}

int ssh_image_ensure(struct target_ctx *t, struct ssh_conn *c,
		     const char *dir, const char *image, const char *what,
		     struct ssh_podman *h, char *said, size_t sn, char *why,
		     size_t n)
{
	int rc;

	rc = host_check(c, dir, image, h, why, n);
	if (rc && strstr(why, "newuidmap"))
		return uidmap_missing(t, why, why, n);
	if (rc)
		return rc;
	if (!h->podman[0]) {
		snprintf(why, n, "environment: %s has no podman, and %s there"
			 " (apt-get install podman runc catatonit uidmap on"
			 " %s)", ssh_host(t), what, ssh_host(t));
		return 1;
	}
	if (h->image > 1 && strstr(h->why, "newuidmap"))
		return uidmap_missing(t, h->why, why, n);
	if (h->image > 1) {
		snprintf(why, n, "podman cannot use its image store (%s)%s",
			 h->why[0] ? h->why : "no reason given", h->uid ?
			 "; a login that is not root runs rootless podman,"
			 " which needs its lines in /etc/subuid and"
			 " /etc/subgid" : "");
		return -EIO;
	}
	if (h->image == 1)
		rc = image_copy(c, dir, image, h->podman, said, sn, why, n);
	if (rc && strstr(why, "newuidmap"))
		return uidmap_missing(t, why, why, n);
	return rc;
}

int ssh_image_prepare(struct target_ctx *t, struct ssh_conn *c,
		      struct run_ctx *r, const char *dir,
		      const char *const *inputs, struct ssh_ct *ct,
		      char *why, size_t n)
{
	struct ssh_podman h;
	struct ct_input *in;
	int rc, nin;

	memset(ct, 0, sizeof(*ct));
	rc = ssh_image_ensure(t, c, dir, r->image, "the run runs in a"
			      " container", &h, NULL, 0, why, n);
	if (rc)
		return rc;
	if (r->res.gpus > 0 && !h.cdi) {
		snprintf(why, n, "environment: " CT_NO_CDI, ssh_host(t));
		return 1;
	}
	nin = ct_inputs(inputs, &in);
	if (nin == -EINVAL) {
		snprintf(why, n, "environment: an input's path on %s (%s) is"
			 " not one podman can mount (absolute, no ':')",
			 ssh_host(t), inputs[1]);
		free(in);
		return 1;
	}
	rc = nin < 0 ? nin : ct_fill(r, &h, in, nin, ct);
	free(in);
	if (rc)
		snprintf(why, n, "out of memory");
	return rc;
}

void ssh_image_free(struct ssh_ct *ct)
{
	free(ct->cmd);
	free(ct->env);
	ct->cmd = ct->env = NULL;
}
