// SPDX-License-Identifier: MIT
/*
 * The hosts of a managed cluster, over ssh, at provision and deprovision:
 * each is checked (reachable; slurmd and munged there and of this
 * machine's Slurm version, installed with apt when the ssh user is root
 * on a Debian host and `install` allows; its cores, memory and GPUs; the
 * state folder reachable at the same path, since the jobs write their
 * logs and outputs there), and cleaned (slurmd and munged stopped, the
 * cluster's files removed) through the power helper.  Worker thread only:
 * each call may block up to its timeouts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "cluster_i.h"
#include "ssh_exec.h"

#define CHECK_TIMEOUT	60	/* s, the check of one host */
#define INSTALL_TIMEOUT	900	/* s, apt-get install on one host */
#define CLEAN_TIMEOUT	120	/* s, stopping the daemons on all hosts */

/* What a host said about itself. */
struct host_facts {
	char client[64];	/* the address it sees us at */
	char slurmd[32];	/* its Slurm version, "" none */
	int munged, apt, root, sudo;
	long cpus, gpus;
	unsigned long long mem_mib;
	char probe[64];		/* what it read of our probe file */
};

static void host_conn(const struct cluster *cl, const struct cluster_cfg *c,
		      const char *identity, int i, struct ssh_conn *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->t.host = c->hosts[i];
	sc->t.user = c->user;
	sc->t.port = c->port;
	sc->t.connect_timeout = c->connect_timeout;
	sc->t.strict_host_key = false;	/* accept-new, then pinned */
	snprintf(sc->identity, sizeof(sc->identity), "%s", identity);
	sc->t.identity_file = identity[0] ? sc->identity : NULL;
	snprintf(sc->known_hosts, sizeof(sc->known_hosts), "%s/known_hosts",
		 cl->dir);
	sc->t.known_hosts = sc->known_hosts;
}

/* The check, one round trip: "key value" lines. */
static char *check_script(const char *probe)
{
	char *q = sh_quote(probe), *s = NULL;

	if (q && asprintf(&s,
	    "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; export PATH\n"
	    "S=; [ \"$(id -u)\" = 0 ] && echo root 1 || S='sudo -n'\n"
	    "echo \"client ${SSH_CLIENT%%%% *}\"\n"
	    "[ -n \"$S\" ] && $S true 2>/dev/null && echo sudo 1\n"
	    "command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]"
	    " && echo apt 1\n"
	    "v=$(slurmd -V 2>/dev/null) && echo \"slurmd ${v#* }\"\n"
	    "command -v munged >/dev/null 2>&1 && echo munged 1\n"
	    "slurmd -C 2>/dev/null | head -n 1 | sed 's/^/conf /'\n"
	    "echo gpus $(nvidia-smi -L 2>/dev/null | grep -c '^GPU')\n"
	    "echo probe $($S cat %s 2>/dev/null)\n", q) < 0)
		s = NULL;
	free(q);
	return s;
}

static void conf_field(const char *line, const char *key, long long *out)
{
	const char *p = strstr(line, key);

	if (p)
		*out = strtoll(p + strlen(key), NULL, 10);
}

static void parse_facts(const char *out, struct host_facts *f)
{
	char key[32], val[512];
	const char *p;
	long long v;

	memset(f, 0, sizeof(*f));
	for (p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		val[0] = '\0';
		if (sscanf(p, "%31s %511[^\n]", key, val) < 1)
			continue;
		if (!strcmp(key, "client"))
			snprintf(f->client, sizeof(f->client), "%s", val);
		else if (!strcmp(key, "slurmd"))
			snprintf(f->slurmd, sizeof(f->slurmd), "%s", val);
		else if (!strcmp(key, "probe"))
			snprintf(f->probe, sizeof(f->probe), "%s", val);
		f->root |= !strcmp(key, "root");
		f->sudo |= !strcmp(key, "sudo");
		f->apt |= !strcmp(key, "apt");
		f->munged |= !strcmp(key, "munged");
		if (!strcmp(key, "gpus"))
			f->gpus = strtol(val, NULL, 10);
		if (strcmp(key, "conf"))
			continue;
		v = 0;
		conf_field(val, "CPUs=", &v);
		f->cpus = (long)v;
		v = 0;
		conf_field(val, "RealMemory=", &v);
		f->mem_mib = (unsigned long long)v;
	}
}

static int ask_host(const struct ssh_conn *sc, const char *script, int to,
		    struct sx_result *res, struct err *e)
{
	char why[ERR_MSG_MAX];
	int rc;

	rc = ssh_conn_exec(sc, script, to, 65536, res);
	if (rc)
		return err_set(e, rc, "host %s: %s", sc->t.host, res->err);
	if (ssh_conn_why(sc, res, to, why, sizeof(why)) != SX_OK)
		return err_set(e, -EHOSTUNREACH, "host %s: %s", sc->t.host,
			       why);
	return 0;
}

static int install(const struct ssh_conn *sc, struct err *e)
{
	struct sx_result res;
	int rc;

	rc = ask_host(sc, "DEBIAN_FRONTEND=noninteractive apt-get install -y"
		      " -q --no-install-recommends slurmd munge >/dev/null"
		      " 2>&1 || { echo 'apt-get install slurmd munge failed';"
		      " exit 1; }", INSTALL_TIMEOUT, &res, e);
	sx_result_free(&res);
	return rc;
}

/* Same major.minor ("22.05")? */
static int same_release(const char *a, const char *b)
{
	const char *da = strchr(a, '.'), *db = strchr(b, '.');
	size_t la, lb;

	if (!da || !db)
		return !strcmp(a, b);
	la = (size_t)(da - a) + 1 + strcspn(da + 1, ".");
	lb = (size_t)(db - b) + 1 + strcspn(db + 1, ".");
	return la == lb && !strncmp(a, b, la);
}

/* Does the host have what slurmd needs?  0 or -errno + sentence. */
static int judge(const struct ssh_conn *sc, const struct cluster_cfg *c,
		 const struct host_facts *f, const char *version,
		 const char *state_dir, const char *nonce, struct err *e)
{
	const char *h = sc->t.host;

	if (!f->slurmd[0] || !f->munged)
		return err_set(e, -ENOENT, "host %s has no %s: run `apt-get"
			       " install slurmd munge` there as root (mlfs"
			       " does it itself only with user = root, install"
			       " = yes, on Debian or Ubuntu)", h,
			       f->slurmd[0] ? "munged" : "slurmd");
	if (!same_release(f->slurmd, version))
		return err_set(e, -EINVAL, "host %s has Slurm %s but this"
			       " machine has %s: install the same release"
			       " there", h, f->slurmd, version);
	if (!f->root && !f->sudo)
		return err_set(e, -EACCES, "host %s: user %s is not root and"
			       " cannot run sudo -n (slurmd must run as root):"
			       " log in as root or allow passwordless sudo",
			       h, c->user);
	if (strcmp(f->probe, nonce))
		return err_set(e, -ENOENT, "host %s does not see the state"
			       " folder %s at the same path (Slurm jobs write"
			       " their log and outputs there): share it, e.g."
			       " over NFS, at the same path", h, state_dir);
	if (f->cpus <= 0)
		return err_set(e, -EIO, "host %s: slurmd -C told no CPU count",
			       h);
	return 0;
}

/* Run the check script on the host and read its answers into @f. */
static int ask_facts(const struct ssh_conn *sc, const char *script,
		     struct host_facts *f, struct err *e)
{
	struct sx_result res;
	int rc;

	rc = ask_host(sc, script, CHECK_TIMEOUT, &res, e);
	if (!rc)
		parse_facts(res.out ? res.out : "", f);
	sx_result_free(&res);
	return rc;
}

static int check_one(struct target_ctx *t, const struct cluster_cfg *c,
		     const struct ssh_conn *sc, const char *script,
		     const char *version, const char *nonce,
		     struct host_facts *f, struct err *e)
{
	int rc;

	rc = ask_facts(sc, script, f, e);
	if (!rc && (!f->slurmd[0] || !f->munged) && f->root && f->apt &&
	    c->install) {
		rc = install(sc, e);
		if (!rc)
			rc = ask_facts(sc, script, f, e);
	}
	if (rc)
		return rc;
	return judge(sc, c, f, version, ws_state_dir(t->ws), nonce, e);
}

/* A random word the hosts must read back from the state folder. */
static int write_probe(const struct cluster *cl, char *path, char *nonce,
		       struct err *e)
{
	unsigned char r[12];
	FILE *f;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return err_set(e, -EIO, "getrandom failed");
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(nonce + 2 * i, "%02x", r[i]);
	snprintf(path, PATH_MAX, "%s/probe", cl->dir);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n", nonce) < 0 || fclose(f))
		return err_set(e, -EIO, "cannot write %s", path);
	return 0;
}

int cl_hosts_check(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, const char *identity,
		   const char *version, char *ctl_addr, size_t n,
		   struct err *e)
{
	char probe[PATH_MAX], nonce[32], *script;
	struct host_facts f;
	struct ssh_conn sc;
	int rc;

	rc = write_probe(cl, probe, nonce, e);
	if (rc)
		return rc;
	script = check_script(probe);
	if (!script)
		return err_set(e, -ENOMEM, "out of memory");
	for (int i = 0; !rc && i < c->nhosts; i++) {
		host_conn(cl, c, identity, i, &sc);
		rc = check_one(t, c, &sc, script, version, nonce, &f, e);
		if (rc)
			break;
		snprintf(cl->hosts[i].addr, sizeof(cl->hosts[i].addr), "%s",
			 c->hosts[i]);
		cl->hosts[i].cpus = f.cpus;
		cl->hosts[i].gpus = f.gpus;
		cl->hosts[i].mem_mib = f.mem_mib;
		if (!i)
			snprintf(ctl_addr, n, "%s", c->controller ?
				 c->controller : f.client);
	}
	cl->nhosts = rc ? 0 : c->nhosts;
	free(script);
	unlink(probe);
	if (!rc && !ctl_addr[0])
		rc = err_set(e, -EIO, "host %s did not say where it sees this"
			     " machine: set controller = ADDRESS", c->hosts[0]);
	return rc;
}

int cl_hosts_clean(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, struct err *e)
{
	char helper[PATH_MAX], list[CL_HOSTS_MAX * 12] = "";
	char *argv[] = { helper, cl->dir, "clean", list, NULL };
	struct sx_result res;
	size_t used = 0;
	int rc;

	snprintf(helper, sizeof(helper), "%s/mlfs-cluster-power",
		 ws_helper_dir(t->ws));
	for (int i = 0; i < c->nhosts && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%snode%d", i ? "," : "", i + 1);
	rc = sx_run(argv, CLEAN_TIMEOUT, 4096, &res);
	if (!rc && res.status)
		rc = err_set(e, -EIO, "a host could not be cleaned (slurmd or"
			     " munged may still run there): see %s/power.log",
			     cl->dir);
	else if (rc)
		err_set(e, rc, "cannot run %s: %s", helper, res.err);
	sx_result_free(&res);
	return rc;
}
