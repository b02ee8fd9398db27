// SPDX-License-Identifier: MIT
/*
 * The SSH driver's deployments: each replica is a server process on the
 * attached host, started detached (setsid) under a small sh wrapper that
 * records its pids (with their start times and the boot id) and its exit
 * status in a folder of its own (see ssh_script.h for the layout).  The
 * replica therefore outlives the ssh connection and the daemon; a
 * restarted daemon re-reads <dir>/replicas/gGEN-SLOT.ssh (the remote
 * folder, the pid, the port, how much of the log it has) and asks the
 * host which of them still run.
 *
 * A generation's files (its code snapshot, the model version's folder,
 * mlfs-serve.py and the key) are copied once per generation, before its
 * first replica starts; a model the previous generation already holds is
 * copied on the host instead of over the network.
 *
 * Every tick deploy_sm.c polls each replica; the first poll of a round makes
 * one ssh round trip for all the target's replicas (every deployment's):
 * the signals still to send, the folders to remove, then each replica's
 * state, whether it listens yet (its own process group holds a listening
 * socket on the port: /proc on the host, POSIX sh + awk), the new bytes of
 * its log (appended to the deployment's log) and, once it is gone, its
 * one-line start failure.  A round every DEP_POLL_FAST s while something
 * starts or stops, else every DEP_POLL_SLOW s.  replica_stop signals at
 * once (a round trip for that replica alone), as a local replica is told.
 *
 * A generation in an environment (its spec's image) has its image put
 * into the host's podman first (ssh_image_ensure: the check and the copy
 * of runs), and each of its replicas is `podman run` of the server in
 * it, under the same wrapper (ssh_script.h says how it is watched).
 *
 * The scoring URI uses the target's host; replicas listen on 0.0.0.0
 * there unless the deployment's config says another host.
 *
 * Worker thread only: the table (struct ssh_dep) is the target worker's,
 * like the rest of struct ssh_tgt, and needs no lock.
 */
#include "ssh_deploy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../backend/ws.h"
#include "../lib/copy.h"
#include "replica.h"
#include "ssh_common.h"
#include "ssh_dep_i.h"
#include "ssh_image.h"
#include "ssh_quote.h"
#include "ssh_script.h"

#define DEP_POLL_FAST	0.25		/* s between rounds while starting */
#define DEP_POLL_SLOW	1.0		/* s between rounds while serving */
#define DEP_LOG_CHUNK	(1 << 20)	/* log bytes per replica and round */
#define DEP_OUT_MAX	(48 << 20)
#define PROBE_MS	1000		/* GET /: connect, then answer */
#define LIVE_EVERY_S	2.0		/* a liveness probe of each replica */
#define LIVE_NONE_S	30.0		/* ... of one that had no liveness port */
#define LIVE_FAILS	3		/* unanswered in a row: killed */
#define SERVE_DIR	"ssh-serve"	/* <dir>/replicas/ssh-serve/: staging */

/* ---- the round: one ssh call for all the target's replicas -------------- */

static enum rstate rstate_of(const char *w)
{
	static const struct { const char *w; enum rstate st; } m[] = {
		{ "starting", ST_STARTING }, { "ready", ST_READY },
		{ "running", ST_RUNNING },
		{ "exited", ST_EXITED }, { "lost", ST_LOST },
		{ "nodir", ST_NODIR },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (!strcmp(w, m[i].w))
			return m[i].st;
	return ST_UNKNOWN;
}

static int final_state(enum rstate st)
{
	return st == ST_EXITED || st == ST_LOST || st == ST_NODIR;
}

/*
 * The bytes of @x's log the host sent: while it runs, up to the last
 * newline (the rest comes with the next round), so that the lines of
 * replicas sharing the log do not cut each other.
 */
static void take_log(struct ssh_rent *x, const struct ssh_poll_reply *p)
{
	long long n = p->log_n;
	const char *nl;

	if (!final_state(x->st) && n > 0 &&
	    (nl = memrchr(p->log, '\n', n)) != NULL)
		n = nl - p->log + 1;
	x->caught_up = x->log_off + p->log_n >= p->log_size;
	if (n > 0 && ssh_append(x->dir, RUN_LOG, p->log, n)) {
		log_warn("deployment %s: cannot append to its log", x->name);
		n = 0;
	}
	if (n > 0) {
		x->log_off += n;
		rec_write(x);
	}
}

/* Is a liveness probe of @x due with this round?  (The host starts it,
 * and sends its answer with a later round.) */
static int live_ask(struct ssh_rent *x)
{
	if (x->st != ST_RUNNING || x->want_ready || x->stopping ||
	    x->orphan || x->wedged || x->sig || mono_s() < x->live_at)
		return 0;
	x->live_at = mono_s() + LIVE_EVERY_S;
	return 1;
}

/* What the probe said (enum ssh_live): LIVE_FAILS unanswered in a row and
 * the replica is killed with the next round; the poll then reports it
 * gone, with the reason. */
static void live_result(struct ssh_rent *x, int live)
{
	if (live == SSH_LIVE_NOT_ASKED)
		return;
	if (live == SSH_LIVE_NONE)
		x->live_at = mono_s() + LIVE_NONE_S;
	x->live_fails = live == SSH_LIVE_FAILED ? x->live_fails + 1 : 0;
	if (x->live_fails < LIVE_FAILS || x->wedged || x->stopping)
		return;
	log_warn("deployment %s: replica pid %ld did not answer GET / on its"
		 " liveness port %d times in a row: killing it", x->name,
		 x->pid, LIVE_FAILS);
	x->wedged = 1;
	x->sig = "KILL";
}

static void apply_reply(struct ssh_rent *x, const struct ssh_poll_reply *p)
{
	x->st = rstate_of(p->status);
	if ((x->st == ST_STARTING || x->st == ST_READY ||
	     x->st == ST_RUNNING) && p->arg > 0 && x->pid != p->arg) {
		x->pid = (long)p->arg;
		rec_write(x);
	}
	if (x->st == ST_EXITED)
		x->code = p->arg >= 0 && p->arg < 256 ? (int)p->arg : -1;
	if (final_state(x->st) && p->met_n > 0) {
		const char *nl = memchr(p->met, '\n', p->met_n);

		snprintf(x->err, sizeof(x->err), "%.*s", (int)(nl ? nl - p->met :
			 p->met_n), p->met);
	}
	take_log(x, p);
	live_result(x, p->live);
	x->in_flight = x->st == ST_RUNNING ? p->in_flight : -1;
	if (p->direct_port > 0 && p->direct_port != x->port)
		x->direct_port = p->direct_port;
}

/* Ask a serving replica its direct port until it is known (see
 * ssh_script.h: seen listening there by its own processes). */
static int direct_ask(const struct ssh_rent *x)
{
	return x->serve && !x->direct_port && !x->stopping && !x->orphan &&
	       (x->st == ST_READY || x->st == ST_RUNNING);
}

/* The script for the entries @who (item i is @who[i]'s), with the trash
 * when @ntrash is dt->ntrash (0: none). */
static char *round_script(struct target_ctx *t, struct ssh_dep *dt,
			  struct ssh_rent **who, int n, char (*dirs)[PATH_MAX],
			  int ntrash)
{
	struct ssh_dep_item *items = calloc(n ? n : 1, sizeof(*items));
	char (*tdirs)[PATH_MAX] = calloc(ntrash + 1, sizeof(*tdirs));
	const char **trash = calloc(ntrash + 1, sizeof(*trash));
	long long lmax = n <= 16 ? DEP_LOG_CHUNK : (16 << 20) / n;
	char *script = NULL;
	int m = 0;

	for (int i = 0; items && tdirs && trash && i < ntrash; i++)
		if (!ssh_run_dir(ssh_workdir(t), dt->trash[i], tdirs[i],
				 PATH_MAX))
			trash[m++] = tdirs[i];
	for (int i = 0; items && tdirs && trash && i < n; i++) {
		if (ssh_run_dir(ssh_workdir(t), who[i]->rdir, dirs[i],
				PATH_MAX))
			dirs[i][0] = '\0';
		items[i] = (struct ssh_dep_item){
			.dir = dirs[i],
			.log_off = who[i]->log_off,
			.log_max = lmax < 65536 ? 65536 : lmax,
			.listen_port = who[i]->want_ready ? who[i]->port : 0,
			.sig = who[i]->sig,
			.live_port = live_ask(who[i]) ? who[i]->port : 0,
			.direct_ask = direct_ask(who[i]),
		};
	}
	if (items && tdirs && trash)
		script = ssh_script_dep_poll(items, n, trash);
	free(items);
	free(tdirs);
	free(trash);
	return script;
}

/* Orphans (a launch that failed midway) are forgotten once gone. */
static void drop_orphans(struct ssh_dep *dt)
{
	for (struct ssh_rent *x = dt->reps, *next; x; x = next) {
		next = x->next;
		if (x->orphan && final_state(x->st))
			ent_drop(dt, x);
	}
}

static void round_apply(struct ssh_rent **who, int n,
			const struct sx_result *res)
{
	struct ssh_poll_reply p;
	size_t pos = 0;
	int rc;

	for (int i = 0; i < n; i++)
		who[i]->sig = NULL;	/* sent */
	while ((rc = ssh_poll_parse(res->out ? res->out : "", res->out_len,
				    &pos, &p)) == 1)
		if (p.index >= 0 && p.index < n)
			apply_reply(who[p.index], &p);
	if (rc < 0)
		log_warn("unexpected output from a host's replica poll");
}

/* When the next round is due: soon while anything starts, stops, or has
 * more log to send. */
static void round_next(struct ssh_dep *dt)
{
	double every = DEP_POLL_SLOW;

	for (struct ssh_rent *x = dt->reps; x; x = x->next) {
		if (!x->caught_up || x->sig) {
			dt->next_poll = 0;
			return;
		}
		if (x->want_ready || x->stopping || x->orphan ||
		    (x->st != ST_READY && x->st != ST_RUNNING))
			every = DEP_POLL_FAST;
	}
	dt->next_poll = mono_s() + every;
}

/* One round trip for @n entries @who (and the trash with @trash): 0 when
 * the host answered, else -errno (the states stay as they were, the
 * signals are sent with the next round). */
static int round_trip(struct target_ctx *t, struct ssh_dep *dt,
		      struct ssh_rent **who, int n, int trash, char *why,
		      size_t len)
{
	char (*dirs)[PATH_MAX] = calloc(n + 1, sizeof(*dirs));
	struct sx_result res;
	struct ssh_conn c;
	struct err e;
	int rc;

	if (!dirs) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	rc = ssh_conn_of(t, 1, &c, &e);
	if (rc)
		snprintf(why, len, "%s", e.msg);
	else
		rc = ssh_remote(&c, round_script(t, dt, who, n, dirs, trash ?
						 dt->ntrash : 0),
				DEP_OUT_MAX, &res, why, len);
	if (!rc) {
		if (trash)
			trash_clear(dt);
		round_apply(who, n, &res);
		sx_result_free(&res);
		drop_orphans(dt);
	}
	free(dirs);
	return rc;
}

/* The round for every entry of the target, and the trash. */
static int dep_round(struct target_ctx *t, struct ssh_dep *dt)
{
	char why[ERR_MSG_MAX];
	struct ssh_rent **who;
	int n = 0, rc;

	for (struct ssh_rent *x = dt->reps; x; x = x->next)
		n++;
	who = calloc(n + 1, sizeof(*who));
	n = 0;
	for (struct ssh_rent *x = dt->reps; who && x; x = x->next)
		who[n++] = x;
	rc = who ? round_trip(t, dt, who, n, 1, why, sizeof(why)) : -ENOMEM;
	free(who);
	if (!rc) {
		round_next(dt);
		if (dt->down)
			log_info("target %s: the host answers again",
				 t->obj.name);
		dt->down = 0;
		return 0;
	}
	if (!dt->down)
		log_warn("target %s: cannot read the replicas' state: %s",
			 t->obj.name, rc == -ENOMEM ? "out of memory" : why);
	dt->down = 1;
	dt->next_poll = mono_s() + SSH_RETRY_EVERY;
	return rc;
}

/* ---- start -------------------------------------------------------------- */

/* In an environment: where the container sees the generation's files
 * (as on the local target, local_deploy.c). */
#define CT_MODEL	"/mlfs/model"
#define CT_REP		"/mlfs/rep"

/* The container of replica @x: mlfs-<hash of the state dir>-d<ID>-g<GEN>-
 * r<SLOT>-<RND>, its folder's name: each replica's own.  (A restart of a
 * slot under the old name raced podman's cleanup of the old container,
 * which conmon runs on its own after the exit: "unable to determine if
 * …/shm is mounted".) */
static void ct_name(const struct deploy_ctx *d, const struct ssh_rent *x,
		    char *buf, size_t sz)
{
	const char *s = ws_state_dir(d->ws), *r = strrchr(x->rdir, '/');

	snprintf(buf, sz, "mlfs-%08x-d%lld-g%d-%s", fnv1a32(s, strlen(s)),
		 (long long)d->obj.id, x->gen, r ? r + 1 : x->rdir);
}

static int env_write(FILE *f, const struct kv_list *env)
{
	char *q;

	for (int i = 0; i < env->n; i++) {
		q = sh_quote(env->items[i].value);
		if (!q)
			return -ENOMEM;
		fprintf(f, "export %s=%s\n", env->items[i].key, q);
		free(q);
	}
	return ferror(f) ? -EIO : 0;
}

/* Generation @gen's env lines as `export KEY='VALUE'` lines (0600), which
 * the replica's wrapper sources on the host: on no command line there. */
static int env_stage(const struct deploy_ctx *d, int gen, const char *dir,
		     char *why, size_t n)
{
	char path[PATH_MAX + 8];
	struct kv_list env;
	FILE *f;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/env", dir);
	rc = deploy_gen_env(d, gen, &env);
	if (rc) {
		snprintf(why, n, "cannot read the env of generation %d: %s",
			 gen, strerror(-rc));
		return -EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	rc = f ? env_write(f, &env) : -EIO;
	if (f && fclose(f))
		rc = -EIO;
	else if (!f && fd >= 0)
		close(fd);
	kv_free(&env);
	if (rc)
		snprintf(why, n, "cannot write %s", path);
	return rc ? -EIO : 0;
}

/* A generation in an environment: the container's KEY=VALUE lines,
 * podman's --env-file (0600; the key among them), in place of env: the
 * defaults, the env lines, then mlfs's own (they win; the replica's
 * number and port are on podman's command line). */
static int ct_env_stage(const struct deploy_ctx *d,
			const struct deploy_spec *s, const char *dir,
			char *why, size_t n)
{
	char path[PATH_MAX + 8];
	struct kv_list env;
	FILE *f;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/ct.env", dir);
	rc = deploy_gen_env(d, s->gen, &env);
	if (rc) {
		snprintf(why, n, "cannot read the env of generation %d: %s",
			 s->gen, strerror(-rc));
		return -EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f) {
		fputs("HOME=/tmp\nLANG=C.UTF-8\nPYTHONUNBUFFERED=1\n", f);
		for (int i = 0; i < env.n; i++)
			fprintf(f, "%s=%s\n", env.items[i].key,
				env.items[i].value);
		fprintf(f, "AZUREML_MODEL_DIR=" CT_MODEL "\nMLFS_KEY=%s\n"
			"MLFS_ERROR_FILE=" CT_REP "/err\n"
			"MLFS_STATS_FILE=" CT_REP "/stats\n"
			"MLFS_DEPLOYMENT=%s\nMLFS_HOST=%s\n", d->key,
			d->obj.name, s->host);
		rc = ferror(f) ? -EIO : 0;
		if (fclose(f))
			rc = -EIO;
	} else {
		rc = -EIO;
		if (fd >= 0)
			close(fd);
	}
	kv_free(&env);
	if (rc)
		snprintf(why, n, "cannot write %s", path);
	return rc;
}

/* <dir>/replicas/ssh-serve: mlfs-serve.py, the key and the env (0600;
 * ct.env in an environment), to copy. */
static int serve_stage(const struct deploy_ctx *d, const struct deploy_spec *s,
		       char *dir, char *why, size_t n)
{
	char path[PATH_MAX + 8];
	struct err e;
	int fd, rc;

	snprintf(dir, PATH_MAX, "%s/%s/%s", d->dir, DEP_REPLICAS, SERVE_DIR);
	remove_tree(dir);
	if (mkdir(dir, 0700)) {
		snprintf(why, n, "cannot create %s: %s", dir, strerror(errno));
		return -EIO;
	}
	rc = copy_into(ws_helper_dir(d->ws), "mlfs-serve.py", dir, &e);
	if (rc) {
		snprintf(why, n, "%s", e.msg);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/key", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, d->key, strlen(d->key)) < 0 || close(fd)) {
		snprintf(why, n, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	if (s->image[0])
		return ct_env_stage(d, s, dir, why, n);
	return env_stage(d, s->gen, dir, why, n);
}

/* Is @word a whole line of @out? */
static int has_line(const char *out, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 :
	     NULL)
		if (!strncmp(p, word, n) && (p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

/* Copy @src to @sub of @g on the host from a copy made as the deployment's
 * user in <dir>/replicas/ssh-up (the daemon's alone): the snapshot of the
 * code is theirs, and reachable, while it is sent. */
static int copy_staged(struct target_ctx *t, struct ssh_conn *c,
		       const struct deploy_ctx *d, const struct ssh_gen *g,
		       const char *src, const char *sub, char *why, size_t n)
{
	char priv[PATH_MAX], stage[PATH_MAX];
	int rc;

	snprintf(priv, sizeof(priv), "%s/%s/ssh-up", d->dir, DEP_REPLICAS);
	rc = ssh_stage(src, priv, d->obj.uid, d->obj.gid, stage, why, n);
	if (!rc)
		rc = ssh_copy(t, c, g->dir, 1, stage, sub, why, n);
	remove_tree(stage);
	return rc == -EHOSTUNREACH || !rc ? rc : -EIO;
}

/* A generation in an environment: its image in the host's podman (the
 * check and the copy of runs, ssh_image.c), the line saying it was
 * copied into the deployment's log.  0, or -errno with a whole sentence
 * in @why, "environment: " first (1, no podman there: -ENOENT). */
static int image_stage(struct target_ctx *t, struct ssh_conn *c,
		       const struct deploy_ctx *d, const struct deploy_spec *s,
		       const char *gdir, char *why, size_t n)
{
	char said[512] = "", msg[ERR_MSG_MAX];
	struct ssh_podman h;
	int rc;

	rc = ssh_image_ensure(t, c, gdir, s->image, "the deployment's"
			      " replicas run in containers", &h, said,
			      sizeof(said), msg, sizeof(msg));
	if (rc == 1 || rc == -EHOSTUNREACH) {
		snprintf(why, n, "%s", msg);
		return rc == 1 ? -ENOENT : rc;
	}
	if (rc) {
		snprintf(why, n, "environment: the image %.19s cannot be put"
			 " into podman on %s: %s", s->image, ssh_host(t), msg);
		return -EIO;
	}
	if (said[0] && ssh_append(d->dir, RUN_LOG, said, strlen(said)))
		log_warn("deployment %s: cannot append to its log",
			 d->obj.name);
	return 0;
}

/* Copy generation @s's files into @g on the host (once: a restarted
 * daemon finds them complete there).  0 or -errno with @why. */
static int gen_copy(struct target_ctx *t, struct ssh_conn *c,
		    const struct deploy_ctx *d, const struct deploy_spec *s,
		    struct ssh_gen *g, char *why, size_t n)
{
	char gdir[PATH_MAX], vid[24], serve[PATH_MAX];
	struct sx_result res;
	int rc, have_model;

	if (ssh_run_dir(ssh_workdir(t), g->dir, gdir, sizeof(gdir))) {
		snprintf(why, n, "the remote path is too long");
		return -EIO;
	}
	snprintf(vid, sizeof(vid), "%lld", (long long)s->version_id);
	rc = ssh_remote(c, ssh_script_dep_stage(gdir, vid), SSH_OUT_MAX, &res,
			why, n);
	if (rc)
		return rc;
	g->copied = has_line(res.out, "staged");
	g->marked = g->copied;
	have_model = has_line(res.out, "model");
	sx_result_free(&res);
	if (g->copied)
		return 0;
	if (s->image[0]) {
		rc = image_stage(t, c, d, s, gdir, why, n);
		if (rc)
			return rc;
	}
	rc = serve_stage(d, s, serve, why, n);
	if (!rc)
		rc = ssh_copy(t, c, g->dir, 1, serve, "serve", why, n);
	remove_tree(serve);	/* the key stays in the store only */
	if (!rc)
		rc = copy_staged(t, c, d, g, s->code, "code", why, n);
	if (!rc && !have_model)
		rc = copy_staged(t, c, d, g, s->model_dir, "model", why, n);
	g->copied = !rc;
	return rc;
}

/* "started PID START PORT" | "busy PORT" | "fail SENTENCE". */
static int launch_parse(const char *out, struct ssh_rent *x, char *why,
			size_t n)
{
	const char *p = out ? strstr(out, "started ") : NULL;
	unsigned long long start;
	long pid;
	int port;

	if (p && sscanf(p, "started %ld %llu %d", &pid, &start, &port) == 3) {
		x->pid = pid;
		x->port = port;
		return 0;
	}
	if ((p = out ? strstr(out, "busy ") : NULL) &&
	    sscanf(p, "busy %d", &port) == 1)
		return -EADDRINUSE;
	p = out ? strstr(out, "fail ") : NULL;
	snprintf(why, n, "%.*s", p ? (int)strcspn(p + 5, "\n") : 40,
		 p ? p + 5 : "the host's answer made no sense");
	return -EIO;
}

static int launch(struct target_ctx *t, struct ssh_conn *c,
		  const struct deploy_ctx *d, const struct deploy_spec *s,
		  struct ssh_gen *g, struct ssh_rent *x, char *why, size_t n)
{
	char gdir[PATH_MAX], vid[24], ctn[96];
	struct ssh_dep_launch l = {
		.gen_dir = gdir, .rep = strrchr(x->rdir, '/') + 1,
		.mark = !g->marked, .model_id = vid, .port = s->port,
		.check_port = s->port && !port_held(dep_of(t), x, s->port),
		.seed = ssh_rnd32(), .command = s->command[0] ? s->command : NULL,
		.entry = s->entry, .host = s->host, .name = d->obj.name,
		.max_body = s->max_body, .read_timeout = s->read_timeout,
		.slot = x->slot, .raw = s->raw ? deploy_raw_name(s->raw) : NULL,
		.image = s->image[0] ? s->image : NULL, .ct_name = ctn,
		.ct_uid = d->obj.uid, .ct_gid = d->obj.gid,
	};
	struct sx_result res;
	int rc;

	snprintf(vid, sizeof(vid), "%lld", (long long)s->version_id);
	ct_name(d, x, ctn, sizeof(ctn));
	if (ssh_run_dir(ssh_workdir(t), g->dir, gdir, sizeof(gdir))) {
		snprintf(why, n, "the remote path is too long");
		return -EIO;
	}
	rc = ssh_remote(c, ssh_script_dep_launch(&l), SSH_OUT_MAX, &res, why,
			n);
	if (rc)
		return rc;
	g->marked = 1;
	rc = launch_parse(res.out, x, why, n);
	sx_result_free(&res);
	return rc;
}

static int start_failed(struct target_ctx *t, const struct deploy_spec *s,
			int rc, const char *what, const char *why,
			struct err *e)
{
	if (rc == -EADDRINUSE)
		return err_set(e, rc, "port %d on %s is already in use: choose"
			       " another in config (or port = 0)", s->port,
			       ssh_host(t));
	if (rc == -EHOSTUNREACH)
		return err_set(e, rc, "%s", why);
	return err_set(e, rc, "%s %s: %s", what, ssh_host(t), why);
}

int ssh_replica_start(struct target_ctx *t, struct deploy_ctx *d,
		      struct deploy_spec *s, struct replica *r,
		      struct err *e)
{
	struct ssh_dep *dt = dep_of(t);
	char why[ERR_MSG_MAX], tag[16];
	struct ssh_ref *ref = calloc(1, sizeof(*ref));
	struct ssh_rent *x;
	struct ssh_conn c;
	struct ssh_gen *g;
	int rc;

	if (!dt || !ref) {
		free(ref);
		return err_set(e, -ENOMEM, "out of memory");
	}
	rc = ssh_conn_of(t, 1, &c, e);
	if (!rc && dep_tag(d, tag, sizeof(tag)))
		rc = err_set(e, -EIO, "cannot write %s/%s/%s", d->dir,
			     DEP_REPLICAS, TAG_FILE);
	g = rc ? NULL : gen_get(dt, d, s->gen, tag);
	if (!rc && !g)
		rc = err_set(e, -ENOMEM, "out of memory");
	if (!rc && g->img_why[0])	/* not sent again at each restart */
		rc = err_set(e, -EIO, "%s", g->img_why);
	if (!rc && !g->copied && (rc = gen_copy(t, &c, d, s, g, why,
						 sizeof(why)))) {
		if (!strncmp(why, "environment: ", 13) &&
		    rc != -EHOSTUNREACH)	/* a sentence, for good */
			snprintf(g->img_why, sizeof(g->img_why), "%s", why);
		if (!strncmp(why, "environment: ", 13))
			err_set(e, rc, "%s", why);
		else
			start_failed(t, s, rc, "cannot copy the deployment's"
				     " files to", why, e);
	}
	x = rc ? NULL : ent_new(dt, d, s->gen, r->slot);
	if (!rc && !x)
		rc = err_set(e, -ENOMEM, "out of memory");
	if (rc) {
		free(ref);
		return rc;
	}
	snprintf(x->rdir, sizeof(x->rdir), "%s/r%d-%08x", g->dir, r->slot,
		 ssh_rnd32());
	x->port = s->port;
	rec_write(x);		/* before anything runs there */
	rc = launch(t, &c, d, s, g, x, why, sizeof(why));
	if (rc) {
		rec_remove(x);
		x->orphan = 1;	/* the next round kills what may run */
		x->sig = "KILL";
		dt->next_poll = 0;
		free(ref);
		return start_failed(t, s, rc, "cannot start the server on", why,
				    e);
	}
	if (!s->port)
		s->port = x->port;
	rec_write(x);
	ref->id = x->id;
	r->priv = ref;
	r->pid = x->pid;
	dt->next_poll = mono_s() + DEP_POLL_FAST;
	return 0;
}

/* ---- poll, stop, release ------------------------------------------------ */

int ssh_replica_poll(struct target_ctx *t, struct deploy_ctx *d,
		     const struct deploy_spec *s, struct replica *r,
		     struct err *e)
{
	struct ssh_dep *dt = dep_of(t);
	struct ssh_rent *x = ent_of(dt, r);

	(void)d;
	if (!x) {
		replica_exit_reason(NULL, -1, e);
		return REP_EXITED;
	}
	x->want_ready = r->state == REP_STARTING;
	x->serve = !s->command[0];
	if (mono_s() >= dt->next_poll)
		dep_round(t, dt);
	if (x->pid > 0 && x->pid != r->pid)
		r->pid = x->pid;
	if (x->direct_port && !r->direct_port)
		r->direct_port = x->direct_port;
	if (x->st == ST_READY && r->state == REP_STARTING)
		return REP_READY;
	if (!final_state(x->st) || !x->caught_up)
		return r->state;
	r->exit_code = x->code;
	if (x->st == ST_NODIR)
		err_set(e, -EIO, "is gone: its folder on %s vanished",
			ssh_host(t));
	else if (x->wedged)
		err_set(e, -EIO, "stopped answering its liveness probe (GET /"
			" on its own port on %s, %d times in a row)",
			ssh_host(t), LIVE_FAILS);
	else
		replica_exit_reason(x->err, x->st == ST_EXITED ? x->code : -1,
				    e);
	return REP_EXITED;
}

int ssh_replica_load(struct target_ctx *t, struct deploy_ctx *d,
		     struct replica *r)
{
	struct ssh_rent *x = ent_of(dep_of(t), r);

	(void)d;
	return x ? x->in_flight : -1;
}

void ssh_replica_stop(struct target_ctx *t, struct deploy_ctx *d,
		      struct replica *r, int force)
{
	struct ssh_dep *dt = dep_of(t);
	struct ssh_rent *x = ent_of(dt, r);

	(void)d;
	if (!x || final_state(x->st))
		return;
	x->sig = force ? "KILL" : "TERM";
	x->stopping = 1;
	dt->next_poll = mono_s() + DEP_POLL_FAST;
	/* at once, as a local replica is told: a rolling update's old
	 * replicas drain as soon as the new ones serve; when the host cannot
	 * be reached now, the next round sends it */
	if (!dt->down) {
		char why[ERR_MSG_MAX];
		struct ssh_rent *one[1] = { x };

		if (round_trip(t, dt, one, 1, 0, why, sizeof(why)))
			dt->next_poll = 0;
	}
}

/* Is generation @gen of @d still wanted (serving, coming, in use)? */
static int gen_wanted(const struct ssh_dep *dt, const struct deploy_ctx *d,
		      int gen)
{
	if (gen == d->serving.gen || (d->coming.gen && gen == d->coming.gen))
		return 1;
	for (const struct ssh_rent *x = dt->reps; x; x = x->next)
		if (x->dep == d->obj.id && x->gen == gen)
			return 1;
	return 0;
}

void ssh_replica_release(struct target_ctx *t, struct deploy_ctx *d,
			 struct replica *r)
{
	struct ssh_dep *dt = dep_of(t);
	struct ssh_rent *x = ent_of(dt, r);
	struct ssh_gen *g;
	int gen = r->gen;

	free(r->priv);
	r->priv = NULL;
	if (!x)
		return;
	ent_drop(dt, x);
	g = gen_find(dt, d->obj.id, gen);
	if (g && !gen_wanted(dt, d, gen)) {
		trash_add(dt, g->dir);
		gen_drop(dt, d->obj.id, gen);
	}
}

/* ---- adopt -------------------------------------------------------------- */

/* An entry from the record @name in <dir>/replicas, or NULL. */
static struct ssh_rent *rec_load(struct ssh_dep *dt, const struct deploy_ctx *d,
				 const char *name)
{
	char path[PATH_MAX + 300], rdir[128];
	long long off;
	int gen, slot, port;
	struct ssh_rent *x;
	struct ssh_gen *g;
	long pid;
	FILE *f;

	if (sscanf(name, "g%d-%d", &gen, &slot) != 2 ||
	    strcmp(strchr(name, '.') ? strchr(name, '.') : "", REC_EXT))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s/%s", d->dir, DEP_REPLICAS, name);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (fscanf(f, "%127s %ld %d %lld", rdir, &pid, &port, &off) != 4 ||
	    !strchr(rdir, '/') || strstr(rdir, "..")) {
		fclose(f);
		unlink(path);
		return NULL;
	}
	fclose(f);
	x = ent_new(dt, d, gen, slot);
	if (!x)
		return NULL;
	snprintf(x->rdir, sizeof(x->rdir), "%s", rdir);
	x->pid = pid;
	x->port = port;
	x->log_off = off;
	x->caught_up = 1;
	g = gen_get(dt, d, gen, "");
	if (g) {	/* the folder the record names, copied and marked */
		snprintf(g->dir, sizeof(g->dir), "%.*s",
			 (int)(strrchr(rdir, '/') - rdir), rdir);
		g->copied = g->marked = 1;
	}
	return x;
}

int ssh_replica_adopt(struct target_ctx *t, struct deploy_ctx *d,
		      struct replica **list)
{
	struct ssh_dep *dt = dep_of(t);
	char dir[PATH_MAX];
	struct ssh_rent *mine[64], *x;
	struct replica *r;
	struct dirent *de;
	int m = 0, n = 0, reached;
	DIR *dd;

	if (!dt)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/%s", d->dir, DEP_REPLICAS);
	dd = opendir(dir);
	while (dd && m < 64 && (de = readdir(dd)))
		if ((x = rec_load(dt, d, de->d_name)))
			mine[m++] = x;
	if (dd)
		closedir(dd);
	if (!m)
		return 0;
	/* one round for them; unreachable: assume they still run */
	reached = !dep_round(t, dt);
	for (int i = 0; i < m; i++) {
		x = mine[i];
		if (reached && final_state(x->st)) {
			ent_drop(dt, x);	/* gone: a reboot, a crash */
			continue;
		}
		r = calloc(1, sizeof(*r));
		if (r && !(r->priv = calloc(1, sizeof(struct ssh_ref)))) {
			free(r);
			r = NULL;
		}
		if (!r) {
			ent_drop(dt, x);
			continue;
		}
		((struct ssh_ref *)r->priv)->id = x->id;
		r->gen = x->gen;
		r->slot = x->slot;
		r->pid = x->pid;
		r->next = *list;
		*list = r;
		n++;
	}
	return n;
}

/* ---- health, URI, undeploy ---------------------------------------------- */

int ssh_health(struct target_ctx *t, struct deploy_ctx *d,
	       const struct deploy_spec *s, struct err *e)
{
	(void)d;
	return replica_probe(ssh_host(t), s->port, PROBE_MS, e);
}

void ssh_service_host(struct target_ctx *t, const struct deploy_spec *s,
		      char *buf, size_t n)
{
	(void)s;
	snprintf(buf, n, "%s", ssh_host(t));
}

/*
 * An endpoint's proxy on this machine reaches each replica at its own
 * port on the host, where it reaches the service: at the address the
 * replicas listen on when the deployment names one, else at the host's
 * (its name resolved here; IPv4 for replicas on 0.0.0.0).  "" with
 * direct_ports = no (a firewall that lets only the service's port
 * through): the proxy then sends to the service's port, balanced by the
 * host's kernel per connection.
 */
void ssh_direct_host(struct target_ctx *t, const struct deploy_spec *s,
		     char *buf, size_t n)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	const char *v = kv_get(&t->config, "direct_ports");
	const char *host = s->host;
	struct addrinfo *res = NULL;
	char ip[INET6_ADDRSTRLEN] = "";

	buf[0] = '\0';
	if (v && !strcmp(v, "no"))
		return;
	/* replicas on 0.0.0.0 have IPv4 only ("::" both) */
	if (!*host || !strcmp(host, "0.0.0.0")) {
		host = ssh_host(t);
		hints.ai_family = AF_INET;
	} else if (!strcmp(host, "::")) {
		host = ssh_host(t);
	}
	if (getaddrinfo(host, NULL, &hints, &res) || !res) {
		log_warn("deployment on %s: cannot resolve %s: an endpoint"
			 " sends to its service's port for now", ssh_host(t),
			 host);
		return;
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET,
			  &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
			  sizeof(ip));
	else if (res->ai_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip,
			  sizeof(ip));
	freeaddrinfo(res);
	snprintf(buf, n, "%s", ip);
}

/* Nothing of @d runs: remove its folder from the host (best effort; an
 * unreachable host keeps it, with a warning in the log). */
void ssh_undeploy(struct target_ctx *t, struct deploy_ctx *d)
{
	struct ssh_dep *dt = dep_of(t);
	char tag[16], rel[64];

	if (!dt || dep_tag(d, tag, sizeof(tag)))
		return;
	snprintf(rel, sizeof(rel), "deploy-%lld-%s", (long long)d->obj.id, tag);
	trash_add(dt, rel);
	gen_drop(dt, d->obj.id, -1);
	if (dep_round(t, dt))
		log_warn("deployment %s: its folder %s stays on %s for now",
			 d->obj.name, rel, ssh_host(t));
}

void ssh_deploy_free(struct ssh_dep *dt)
{
	if (!dt)
		return;
	while (dt->reps) {
		struct ssh_rent *x = dt->reps;

		dt->reps = x->next;
		free(x);
	}
	while (dt->gens) {
		struct ssh_gen *g = dt->gens;

		dt->gens = g->next;
		free(g);
	}
	trash_clear(dt);
	free(dt);
}
