// SPDX-License-Identifier: MIT
/*
 * The controller of a managed cluster, on the daemon's machine: the files
 * mlfs generates for it (slurm.conf, the munge key 0400, the JWT key, the
 * power helper's settings), and munged, slurmctld and slurmrestd started
 * as processes of their own (a session each, pid files), watched by the
 * worker's refresh, started again when one is gone, adopted by a daemon
 * that restarts, stopped by deprovision.  Worker thread only.
 *
 * Where things are: <state>/objects/<id>/cluster/ (0700, the daemon's)
 * holds everything secret and the controller's state; /run/mlfs-cluster/
 * <key>/ (0755) holds what must be reachable by other users or at the
 * same path on every machine: munged's socket and the copy of slurm.conf
 * slurmrestd (which refuses to run as root) reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "../lib/clock.h"
#include "../lib/copy.h"
#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/spawn.h"
#include "cluster_i.h"
#include "proc.h"
#include "slurm_i.h"
#include "ssh_exec.h"

#define SAFE_PATH	"PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define START_WAIT	30.0		/* s for a controller daemon to start */

enum { P_MUNGED, P_CTLD, P_REST };

static const char *const proc_names[] = { "munged", "slurmctld",
					  "slurmrestd" };

/* ---- paths and files ------------------------------------------------------ */

static void path_in(char *buf, const char *dir, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

/* Write @len bytes to @path (mode @mode) through a temporary name. */
static int write_file(const char *path, const void *buf, size_t len,
		      mode_t mode, struct err *e)
{
	char tmp[PATH_MAX + 8];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	if (fd < 0)
		return err_set(e, -errno, "cannot write %s: %s", tmp,
			       strerror(errno));
	if (write(fd, buf, len) != (ssize_t)len)
		rc = -EIO;
	if (fchmod(fd, mode) && !rc)
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return err_set(e, rc, "cannot write %s: %s", path,
			       strerror(-rc));
	}
	return 0;
}

/* A secret of @n random bytes at @path, made once. */
static int secret(const char *path, size_t n, mode_t mode, struct err *e)
{
	unsigned char buf[1024];
	size_t got = 0;
	ssize_t r;
	int rc;

	if (!access(path, F_OK))
		return 0;
	while (got < n) {
		r = getrandom(buf + got, n - got, 0);
		if (r < 0 && errno != EINTR)
			return err_set(e, -errno, "getrandom: %s",
				       strerror(errno));
		got += r > 0 ? (size_t)r : 0;
	}
	rc = write_file(path, buf, n, mode, e);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* A folder of ours at @path with @mode: made, or checked to be ours and
 * no symlink. */
static int own_dir(const char *path, mode_t mode, struct err *e)
{
	struct stat st;

	if (mkdir(path, mode) && errno != EEXIST)
		return err_set(e, -errno, "cannot create %s: %s", path,
			       strerror(errno));
	if (lstat(path, &st))
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return err_set(e, -EPERM, "%s is not a folder of the daemon's"
			       " user: remove it", path);
	if (chmod(path, mode))
		return err_set(e, -errno, "chmod %s: %s", path,
			       strerror(errno));
	return 0;
}

static void load_ports(struct cluster *cl)
{
	char p[PATH_MAX];
	FILE *f;

	path_in(p, cl->dir, "ports");
	f = fopen(p, "re");
	if (!f)
		return;
	if (fscanf(f, "ctld %d rest %d", &cl->ctld_port, &cl->rest_port) != 2)
		cl->ctld_port = cl->rest_port = 0;
	fclose(f);
}

struct cluster *cl_get(struct target_ctx *t, struct err *e)
{
	struct slurm_target *st = sl_new(t, e);
	struct cluster *cl;
	uint64_t h;

	if (!st)
		return NULL;
	if (st->ext)
		return st->ext;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	ws_obj_path(t->ws, t->obj.id, "cluster", cl->dir);
	h = fnv1a64(ws_state_dir(t->ws), strlen(ws_state_dir(t->ws)));
	h = fnv1a64_add(h, &t->obj.id, sizeof(t->obj.id));
	snprintf(cl->key, sizeof(cl->key), "%012llx",
		 (unsigned long long)(h & 0xffffffffffffull));
	snprintf(cl->run, sizeof(cl->run), "%s/%s", CL_RUNDIR, cl->key);
	for (int i = 0; i < 3; i++)
		cl->procs[i].name = proc_names[i];
	load_ports(cl);
	st->ext = cl;
	st->over = &cl->slurm_kv;
	return cl;
}

/* ---- ports ------------------------------------------------------------------ */

static int port_free(int port, int loopback)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	sa.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
	if (fd < 0)
		return 0;
	ok = !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ok;
}

/* Two free ports for slurmctld and slurmrestd, kept in DIR/ports so that
 * a restart finds the same. */
static int pick_ports(struct cluster *cl, struct err *e)
{
	char p[PATH_MAX], txt[64];
	int base = 20000 + (int)(strtoull(cl->key, NULL, 16) % 20000);

	if (cl->ctld_port && cl->rest_port)
		return 0;
	for (int i = 0; i < 4000 && !cl->rest_port; i++) {
		int a = 20000 + (base - 20000 + 2 * i) % 20000;

		if (port_free(a, 0) && port_free(a + 1, 1)) {
			cl->ctld_port = a;
			cl->rest_port = a + 1;
		}
	}
	if (!cl->rest_port)
		return err_set(e, -EADDRINUSE, "no two free TCP ports for"
			       " slurmctld and slurmrestd");
	snprintf(txt, sizeof(txt), "ctld %d rest %d\n", cl->ctld_port,
		 cl->rest_port);
	path_in(p, cl->dir, "ports");
	return write_file(p, txt, strlen(txt), 0600, e);
}

/* ---- slurm.conf ------------------------------------------------------------- */

/* "node1,node2,…" of the first @n nodes. */
static void node_list(int n, char *buf, size_t len)
{
	size_t used = 0;
	char name[32];

	buf[0] = '\0';
	for (int i = 0; i < n && used < len; i++) {
		cluster_node_name(i, name, sizeof(name));
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i ? "," : "", name);
	}
}

/*
 * slurmctld runs only where SlurmctldHost names the machine's own name.
 * cred_expire: a job requeued (its node could not be started) may start
 * again cred_expire + 1 s later (Slurm's default, 120 s, is long to wait
 * for a host that is merely down).
 */
static void conf_head(FILE *f, const struct cluster *cl, const char *ctl)
{
	char host[256] = "localhost";

	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	fprintf(f, "# Written by mlfs for a managed cluster: do not edit.\n"
		"ClusterName=mlfs%.10s\n"
		"SlurmctldHost=%s(%s)\n"
		"SlurmctldPort=%d\n"
		"SlurmUser=root\nSlurmdUser=root\n"
		"AuthType=auth/munge\n"
		"AuthInfo=socket=%s/munge/munge.socket,cred_expire=30\n"
		"AuthAltTypes=auth/jwt\n"
		"AuthAltParameters=jwt_key=%s/jwt.key\n"
		"CredType=cred/munge\n"
		"StateSaveLocation=%s/ctld\n"
		"SlurmctldPidFile=%s/slurmctld.pid\n"
		"SlurmctldLogFile=%s/slurmctld.log\n"
		"SlurmdSpoolDir=%s/slurmd/spool\n"
		"SlurmdPidFile=%s/slurmd/slurmd.pid\n"
		"SlurmdLogFile=%s/slurmd/slurmd.log\n",
		cl->key, host, ctl, cl->ctld_port, cl->run, cl->dir, cl->dir,
		cl->dir, cl->dir, cl->run, cl->run, cl->run);
	fprintf(f, "ProctrackType=proctrack/linuxproc\n"
		"TaskPlugin=task/none\n"
		"JobAcctGatherType=jobacct_gather/none\n"
		"SelectType=select/cons_tres\n"
		"SelectTypeParameters=CR_Core\n"
		"AccountingStorageType=accounting_storage/none\n"
		"JobCompType=jobcomp/none\n"
		"MpiDefault=none\n"
		"MailProg=/bin/true\n"
		"GresTypes=gpu\n"
		"ReturnToService=2\n"
		"MinJobAge=3600\n"
		"SchedulerParameters=batch_sched_delay=0\n"
		"SlurmctldParameters=power_save_interval=1,"
		"power_save_min_interval=0\n"
		"PrivateData=cloud\n"
		"TreeWidth=65533\n"
		"DebugFlags=NO_CONF_HASH\n");
}

static void conf_power(FILE *f, const struct cluster *cl,
		       const struct cluster_cfg *c)
{
	char list[CL_HOSTS_MAX * 12];

	fprintf(f, "ResumeProgram=%s/resume\n"
		"SuspendProgram=%s/suspend\n"
		"SuspendTime=%ld\n"
		"SuspendTimeout=5\n"
		"ResumeTimeout=%ld\n"
		"ResumeRate=0\nSuspendRate=0\n",
		cl->dir, cl->dir, c->idle_s, c->resume_s);
	node_list(c->nhosts, list, sizeof(list));
	if (c->min_nodes > 0)
		fprintf(f, "SuspendExcNodes=%s:%ld\n", list, c->min_nodes);
}

static void conf_nodes(FILE *f, const struct cluster *cl,
		       const struct cluster_cfg *c)
{
	char name[32], list[CL_HOSTS_MAX * 12];

	fprintf(f, "SlurmdPort=%d\n", c->slurmd_port);
	for (int i = 0; i < cl->nhosts; i++) {
		const struct cl_host *h = &cl->hosts[i];

		cluster_node_name(i, name, sizeof(name));
		fprintf(f, "NodeName=%s NodeAddr=%s NodeHostname=%s CPUs=%ld"
			" RealMemory=%llu", name, h->addr, name,
			h->cpus > 0 ? h->cpus : 1, h->mem_mib);
		if (h->gpus > 0)
			fprintf(f, " Gres=gpu:%ld", h->gpus);
		fprintf(f, " State=CLOUD\n");
	}
	node_list((int)c->max_nodes, list, sizeof(list));
	fprintf(f, "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE"
		" State=UP\n", CL_PARTITION, list);
}

/* The gres.conf lines of the GPU hosts ("" when none has one). */
static void gres_conf(FILE *f, const struct cluster *cl)
{
	char name[32];

	for (int i = 0; i < cl->nhosts; i++) {
		if (cl->hosts[i].gpus <= 0)
			continue;
		cluster_node_name(i, name, sizeof(name));
		fprintf(f, "NodeName=%s Name=gpu File=/dev/nvidia[0-%ld]\n",
			name, cl->hosts[i].gpus - 1);
	}
}

static int write_conf(struct cluster *cl, const struct cluster_cfg *c,
		      const char *ctl, struct err *e)
{
	char *text = NULL, *gres = NULL, p[PATH_MAX];
	size_t len = 0, glen = 0;
	FILE *f = open_memstream(&text, &len);
	FILE *g = open_memstream(&gres, &glen);
	int rc = 0;

	if (!f || !g) {
		if (f)
			fclose(f);
		free(text);
		return err_set(e, -ENOMEM, "out of memory");
	}
	conf_head(f, cl, ctl);
	conf_power(f, cl, c);
	conf_nodes(f, cl, c);
	gres_conf(g, cl);
	if (fclose(f) | fclose(g))
		rc = err_set(e, -ENOMEM, "out of memory");
	path_in(p, cl->dir, "slurm.conf");
	if (!rc)
		rc = write_file(p, text, len, 0644, e);
	path_in(p, cl->run, "slurm.conf");
	if (!rc)
		rc = write_file(p, text, len, 0644, e);
	path_in(p, cl->dir, "gres.conf");
	if (!rc && glen)
		rc = write_file(p, gres, glen, 0644, e);
	else if (!rc)
		unlink(p);	/* no GPU host (any more) */
	path_in(p, cl->run, "gres.conf");
	if (!rc && glen)
		rc = write_file(p, gres, glen, 0644, e);
	else if (!rc)
		unlink(p);
	free(text);
	free(gres);
	return rc;
}

/* ---- the power helper's files ------------------------------------------ */

static int write_wrapper(const struct cluster *cl, const char *helper,
			 const char *verb, struct err *e)
{
	char p[PATH_MAX], txt[3 * PATH_MAX];

	snprintf(txt, sizeof(txt), "#!/bin/sh\nexec '%s' '%s' %s \"$1\"\n",
		 helper, cl->dir, verb);
	path_in(p, cl->dir, verb);
	return write_file(p, txt, strlen(txt), 0700, e);
}

static int write_power(struct target_ctx *t, const struct cluster *cl,
		       const struct cluster_cfg *c, const char *identity,
		       struct err *e)
{
	char p[PATH_MAX], helper[PATH_MAX], *txt = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	snprintf(helper, sizeof(helper), "%s/mlfs-cluster-power",
		 ws_helper_dir(t->ws));
	if (strchr(helper, '\'') || strchr(cl->dir, '\''))
		return err_set(e, -EINVAL, "the state folder's path holds a"
			       " quote: a cluster cannot be made there");
	if (access(helper, X_OK))
		return err_set(e, -ENOENT, "%s is missing: mlfs is not fully"
			       " installed", helper);
	f = open_memstream(&txt, &len);
	if (!f)
		return err_set(e, -ENOMEM, "out of memory");
	fprintf(f, "user %s\nport %d\nidentity %s\nknown_hosts %s/known_hosts"
		"\nconnect_timeout %d\nrun %s\nslurm_conf %s/slurm.conf\n",
		c->user, c->port, identity, cl->dir, c->connect_timeout,
		cl->run, cl->run);
	rc = fclose(f) ? err_set(e, -ENOMEM, "out of memory") : 0;
	path_in(p, cl->dir, "power.conf");
	if (!rc)
		rc = write_file(p, txt, len, 0600, e);
	free(txt);
	txt = NULL;
	f = rc ? NULL : open_memstream(&txt, &len);
	if (!rc && !f)
		rc = err_set(e, -ENOMEM, "out of memory");
	for (int i = 0; !rc && i < c->nhosts; i++)
		fprintf(f, "node%d %s\n", i + 1, c->hosts[i]);
	if (f && fclose(f) && !rc)
		rc = err_set(e, -ENOMEM, "out of memory");
	path_in(p, cl->dir, "hosts.map");
	if (!rc)
		rc = write_file(p, txt, len, 0600, e);
	free(txt);
	if (!rc)
		rc = write_wrapper(cl, helper, "resume", e);
	if (!rc)
		rc = write_wrapper(cl, helper, "suspend", e);
	return rc;
}

static int save_facts(const struct cluster *cl, const char *ctl,
		      const char *identity, struct err *e)
{
	char p[PATH_MAX], *txt = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&txt, &len);
	int rc;

	if (!f)
		return err_set(e, -ENOMEM, "out of memory");
	fprintf(f, "controller %s\nidentity %s\n", ctl, identity);
	for (int i = 0; i < cl->nhosts; i++)
		fprintf(f, "host %s %ld %llu %ld\n", cl->hosts[i].addr,
			cl->hosts[i].cpus, cl->hosts[i].mem_mib,
			cl->hosts[i].gpus);
	rc = fclose(f) ? err_set(e, -ENOMEM, "out of memory") : 0;
	path_in(p, cl->dir, "facts");
	if (!rc)
		rc = write_file(p, txt, len, 0600, e);
	free(txt);
	return rc;
}

int cl_load_facts(struct cluster *cl, char *ctl, size_t n, char *identity,
		  struct err *e)
{
	char p[PATH_MAX], line[PATH_MAX + 32], word[PATH_MAX];
	struct cl_host h;
	FILE *f;

	path_in(p, cl->dir, "facts");
	f = fopen(p, "re");
	if (!f)
		return err_set(e, -ENOENT, "the cluster was not provisioned"
			       " (%s is missing)", p);
	ctl[0] = identity[0] = '\0';
	cl->nhosts = 0;
	while (fgets(line, sizeof(line), f)) {
		word[0] = '\0';
		if (sscanf(line, "controller %255s", word) == 1)
			snprintf(ctl, n, "%s", word);
		else if (sscanf(line, "identity %4095s", word) == 1)
			snprintf(identity, PATH_MAX, "%s", word);
		else if (cl->nhosts < CL_HOSTS_MAX &&
			 sscanf(line, "host %255s %ld %llu %ld", h.addr,
				&h.cpus, &h.mem_mib, &h.gpus) == 4)
			cl->hosts[cl->nhosts++] = h;
	}
	fclose(f);
	return 0;
}

int cl_write_files(struct target_ctx *t, struct cluster *cl,
		   const struct cluster_cfg *c, const char *ctl,
		   const char *identity, struct err *e)
{
	char p[PATH_MAX];
	int rc;

	rc = own_dir(cl->dir, 0700, e);
	path_in(p, cl->dir, "ctld");
	if (!rc)
		rc = own_dir(p, 0700, e);
	if (!rc)
		rc = own_dir(CL_RUNDIR, 0755, e);
	if (!rc)
		rc = own_dir(cl->run, 0755, e);
	/* munged's socket here serves slurmctld alone (root): no other user
	 * of this machine may get a credential the cluster takes, so its
	 * folder is 0700 (munged then wants --force); on the hosts, jobs
	 * need it and it is open as usual */
	path_in(p, cl->run, "munge");
	if (!rc)
		rc = own_dir(p, 0700, e);
	path_in(p, cl->dir, "munge.key");
	if (!rc)
		rc = secret(p, 1024, 0400, e);
	path_in(p, cl->dir, "jwt.key");
	if (!rc)
		rc = secret(p, 64, 0600, e);
	if (!rc)
		rc = pick_ports(cl, e);
	if (!rc)
		rc = write_conf(cl, c, ctl, e);
	if (!rc)
		rc = write_power(t, cl, c, identity, e);
	if (!rc)
		rc = save_facts(cl, ctl, identity, e);
	return rc;
}

/* ---- processes ------------------------------------------------------------ */

/* Is @p still the process we started or adopted? */
static int proc_alive(struct cl_proc *p)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	if (p->pid <= 0)
		return 0;
	waitpid((pid_t)p->pid, NULL, WNOHANG);	/* ours: reap a zombie */
	if (proc_start_ticks((pid_t)p->pid) != p->start)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/exe", p->pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	return strstr(exe, p->name) != NULL;
}

/* Adopt the pid in @pidfile if it runs @p's program. */
static int proc_adopt(struct cl_proc *p, const char *pidfile)
{
	FILE *f = fopen(pidfile, "re");
	long pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	p->pid = pid;
	p->start = pid > 0 ? proc_start_ticks((pid_t)pid) : 0;
	return proc_alive(p);
}

/* Spawn @argv with @env in a session of its own, output to @logpath. */
static long spawn_logged(char *const argv[], char *const env[],
			 const char *logpath, struct err *e)
{
	return spawn_session(argv, env, logpath, NULL, e);
}

/* Run a daemonizing program; wait (bounded) for its pid file. */
static int start_daemon(struct cl_proc *p, char *const argv[],
			char *const env[], const char *logpath,
			const char *pidfile, struct err *e)
{
	long pid;
	int st;
	double until = mono_s() + START_WAIT;

	unlink(pidfile);
	pid = spawn_logged(argv, env, logpath, e);
	if (pid < 0)
		return (int)pid;
	if (waitpid((pid_t)pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st))
		return err_set(e, -EIO, "%s did not start (exit %d): see %s",
			       p->name, WEXITSTATUS(st), logpath);
	while (mono_s() < until) {
		if (proc_adopt(p, pidfile))
			return 0;
		usleep(50 * 1000);
	}
	return err_set(e, -EIO, "%s did not start within %.0f s: see %s",
		       p->name, START_WAIT, logpath);
}

static int start_munged(struct cluster *cl, struct err *e)
{
	char sock[PATH_MAX], key[PATH_MAX], pid[PATH_MAX], log[PATH_MAX],
	     seed[PATH_MAX], a1[PATH_MAX + 16], a2[PATH_MAX + 16],
	     a3[PATH_MAX + 16], a4[PATH_MAX + 16], a5[PATH_MAX + 16];
	char *env[] = { SAFE_PATH, NULL };
	char *argv[] = { "/usr/sbin/munged", "--force", a1, a2, a3, a4, a5,
			 NULL };

	snprintf(sock, sizeof(sock), "%s/munge/munge.socket", cl->run);
	path_in(key, cl->dir, "munge.key");
	path_in(pid, cl->dir, "munged.pid");
	path_in(log, cl->dir, "munged.log");
	path_in(seed, cl->dir, "munged.seed");
	snprintf(a1, sizeof(a1), "--socket=%s", sock);
	snprintf(a2, sizeof(a2), "--key-file=%s", key);
	snprintf(a3, sizeof(a3), "--pid-file=%s", pid);
	snprintf(a4, sizeof(a4), "--log-file=%s", log);
	snprintf(a5, sizeof(a5), "--seed-file=%s", seed);
	return start_daemon(&cl->procs[P_MUNGED], argv, env, log, pid, e);
}

static int start_ctld(struct cluster *cl, struct err *e)
{
	char conf[PATH_MAX], env1[PATH_MAX + 16], pid[PATH_MAX],
	     log[PATH_MAX];
	char *env[] = { SAFE_PATH, env1, NULL };
	char *argv[] = { "/usr/sbin/slurmctld", "-f", conf, NULL };

	path_in(conf, cl->run, "slurm.conf");
	snprintf(env1, sizeof(env1), "SLURM_CONF=%s", conf);
	path_in(pid, cl->dir, "slurmctld.pid");
	path_in(log, cl->dir, "slurmctld.out");
	return start_daemon(&cl->procs[P_CTLD], argv, env, log, pid, e);
}

/* slurmrestd refuses root: it runs as the packaged `slurm` user. */
static int start_rest(struct cluster *cl, struct err *e)
{
	char conf[PATH_MAX], env1[PATH_MAX + 16], addr[64], pidf[PATH_MAX],
	     log[PATH_MAX], txt[32];
	char *env[] = { SAFE_PATH, env1, "SLURM_JWT=daemon", NULL };
	char *argv[] = { "/usr/bin/setpriv", "--reuid=slurm", "--regid=slurm",
			 "--clear-groups", "/usr/sbin/slurmrestd", "-f", conf,
			 "-a", "rest_auth/jwt", "-s", "openapi/v0.0.38", addr,
			 NULL };
	struct cl_proc *p = &cl->procs[P_REST];
	long pid;

	if (!getpwnam("slurm"))
		return err_set(e, -ENOENT, "no user 'slurm' on this machine:"
			       " apt-get install slurmrestd");
	path_in(conf, cl->run, "slurm.conf");
	snprintf(env1, sizeof(env1), "SLURM_CONF=%s", conf);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", cl->rest_port);
	path_in(log, cl->dir, "slurmrestd.log");
	pid = spawn_logged(argv, env, log, e);
	if (pid < 0)
		return (int)pid;
	p->pid = pid;
	p->start = proc_start_ticks((pid_t)pid);
	snprintf(txt, sizeof(txt), "%ld\n", pid);
	path_in(pidf, cl->dir, "slurmrestd.pid");
	return write_file(pidf, txt, strlen(txt), 0600, e);
}

/* Is slurmrestd answering on its port yet?  (It is ready when it listens.) */
static int rest_listens(const struct cluster *cl)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)cl->rest_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ok;
}

static int wait_rest(struct cluster *cl, struct err *e)
{
	double until = mono_s() + START_WAIT;

	while (mono_s() < until) {
		if (rest_listens(cl))
			return 0;
		/* still setpriv for a moment: is our child alive at all? */
		if (waitpid((pid_t)cl->procs[P_REST].pid, NULL, WNOHANG))
			break;
		usleep(50 * 1000);
	}
	return err_set(e, -EIO, "slurmrestd did not start: see %s/"
		       "slurmrestd.log", cl->dir);
}

typedef int (*start_fn)(struct cluster *cl, struct err *e);

static void note_restart(char *buf, size_t n, const char *name)
{
	size_t used = strlen(buf);

	if (used < n)
		snprintf(buf + used, n - used, "%s%s", used ? ", " : "", name);
}

int cl_ensure(struct target_ctx *t, struct cluster *cl, char *restarted,
	      size_t n, struct err *e)
{
	static const start_fn start[] = { start_munged, start_ctld,
					  start_rest };
	static const char *const pidfiles[] = { "munged.pid", "slurmctld.pid",
						"slurmrestd.pid" };
	char p[PATH_MAX];
	int rc = 0;

	(void)t;
	if (restarted && n)
		restarted[0] = '\0';
	if (mono_s() < cl->retry_at)
		return err_set(e, -EAGAIN, "the controller is down: %s",
			       cl->down_why);
	for (int i = 0; !rc && i < 3; i++) {
		struct cl_proc *pr = &cl->procs[i];

		path_in(p, cl->dir, pidfiles[i]);
		if (proc_alive(pr) || proc_adopt(pr, p))
			continue;
		if (restarted)
			note_restart(restarted, n, pr->name);
		rc = start[i](cl, e);
		if (!rc && i == P_REST)
			rc = wait_rest(cl, e);
	}
	cl->checked_at = mono_s();
	/* a start that fails is tried again after 2, 4, … 60 s */
	cl->backoff = rc ? (cl->backoff ? cl->backoff * 2 : 2) : 0;
	if (cl->backoff > 60)
		cl->backoff = 60;
	cl->retry_at = rc ? mono_s() + cl->backoff : 0;
	if (rc)
		snprintf(cl->down_why, sizeof(cl->down_why), "%s", e->msg);
	return rc;
}

/* Is @p gone (reaped when it is our child)?  Waits up to @secs. */
static int proc_gone(struct cl_proc *p, double secs)
{
	double until = mono_s() + secs;

	while (proc_start_ticks((pid_t)p->pid) == p->start) {
		if (waitpid((pid_t)p->pid, NULL, WNOHANG) == p->pid)
			return 1;	/* ours, reaped */
		if (mono_s() >= until)
			return 0;
		usleep(50 * 1000);
	}
	return 1;
}

/* TERM, KILL after 10 s; returns once the process is gone. */
static void stop_proc(struct cl_proc *p)
{
	if (!proc_alive(p))
		return;
	kill((pid_t)p->pid, SIGTERM);
	if (!proc_gone(p, 10.0)) {
		kill((pid_t)p->pid, SIGKILL);
		proc_gone(p, 5.0);
	}
	p->pid = 0;
}

/* What a deprovisioned cluster leaves: nothing secret, nothing running. */
static void remove_files(struct cluster *cl)
{
	static const char *const gone[] = {
		"munge.key", "jwt.key", "token", "ports", "slurm.conf",
		"gres.conf", "power.conf", "hosts.map", "resume", "suspend",
		"munged.seed", "known_hosts", "facts", "probe", NULL
	};
	char p[PATH_MAX];

	for (int i = 0; gone[i]; i++) {
		path_in(p, cl->dir, gone[i]);
		unlink(p);
	}
	path_in(p, cl->dir, "ctld");
	remove_tree(p);
	remove_tree(cl->run);
	cl->ctld_port = cl->rest_port = 0;
	explicit_bzero(cl->token, sizeof(cl->token));
	cl->token_at = 0;
}

void cl_stop(struct target_ctx *t, struct cluster *cl, int remove)
{
	static const char *const pidfiles[] = { "munged.pid", "slurmctld.pid",
						"slurmrestd.pid" };
	char p[PATH_MAX];

	(void)t;
	for (int i = 2; i >= 0; i--) {
		path_in(p, cl->dir, pidfiles[i]);
		if (!proc_alive(&cl->procs[i]))
			proc_adopt(&cl->procs[i], p);
		stop_proc(&cl->procs[i]);
		unlink(p);
	}
	if (remove)
		remove_files(cl);
}

/* ---- scontrol and the token ------------------------------------------------- */

int cl_scontrol(struct cluster *cl, char *out, size_t n, struct err *e,
		const char *arg, ...)
{
	char conf[PATH_MAX + 16];
	char *argv[16] = { "/usr/bin/env", "-i", SAFE_PATH, conf,
			   "/usr/bin/scontrol" };
	struct sx_result res;
	va_list ap;
	int i = 5, rc;

	snprintf(conf, sizeof(conf), "SLURM_CONF=%s/slurm.conf", cl->run);
	va_start(ap, arg);
	for (const char *a = arg; a && i < 15; a = va_arg(ap, const char *))
		argv[i++] = (char *)a;
	va_end(ap);
	argv[i] = NULL;
	rc = sx_run(argv, 30, 65536, &res);
	if (!rc && res.status)
		rc = err_set(e, -EIO, "scontrol %s failed: %s", arg,
			     res.err[0] ? res.err : "no reason given");
	else if (rc)
		err_set(e, rc, "cannot run scontrol: %s", res.err);
	if (!rc && out && n)
		snprintf(out, n, "%s", res.out ? res.out : "");
	sx_result_free(&res);
	return rc;
}

int cl_token(struct cluster *cl, const char *user, struct err *e)
{
	char arg[128], life[64], out[8192], *p;
	int rc;

	if (cl->token[0] && wall_s() - cl->token_at < CL_TOKEN_LIFE / 2)
		return 0;
	snprintf(arg, sizeof(arg), "username=%s", user);
	snprintf(life, sizeof(life), "lifespan=%d", CL_TOKEN_LIFE);
	rc = cl_scontrol(cl, out, sizeof(out), e, "token", arg, life, NULL);
	if (rc)
		return rc;
	p = strstr(out, "SLURM_JWT=");
	if (!p)
		return err_set(e, -EIO, "scontrol token gave no token");
	p += 10;
	p[strcspn(p, " \t\r\n")] = '\0';
	snprintf(cl->token, sizeof(cl->token), "%s", p);
	explicit_bzero(out, sizeof(out));
	cl->token_at = wall_s();
	return 0;
}

int cl_local_version(char *buf, size_t n, struct err *e)
{
	char *argv[] = { "/usr/sbin/slurmctld", "-V", NULL };
	struct sx_result res;
	int rc;

	buf[0] = '\0';
	if (access(argv[0], X_OK))
		return err_set(e, -ENOENT, "Slurm is not installed on this"
			       " machine: apt-get install slurmctld slurmrestd"
			       " slurm-client slurm-wlm-jwt-plugin munge");
	rc = sx_run(argv, 10, 4096, &res);
	if (!rc && !res.status && res.out && n > 1)
		sscanf(res.out, "%*s %31s", buf);
	sx_result_free(&res);
	buf[strcspn(buf, "\n")] = '\0';
	if (!buf[0])
		return err_set(e, -EIO, "slurmctld -V gave no version");
	return 0;
}
