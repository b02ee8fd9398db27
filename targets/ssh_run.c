// SPDX-License-Identifier: MIT
/*
 * The SSH driver's runs: a slot and GPUs on the host, setup (folder,
 * upload, launch), the poll round of all the target's runs, fetch
 * (outputs back, final state), cancel and the time limit, adopt after a
 * restart.  Backend worker thread only.
 *
 * A run's life: start copies its files to WORKDIR/RID/work and launches
 * the command detached under a wrapper that records its pid, its log and
 * its exit code on the host (see ssh_script.h).  Every ~0.5 s one round
 * trip reads the status of all the target's runs with the new bytes of
 * their logs and metrics, which are appended to the local files; when a
 * run has exited and its log is caught up, outputs/ is copied back and the
 * final state reported.  An array run (resources `array`) is one such
 * launch whose command is a launcher of its tasks on the host; the same
 * round trip brings its tasks' states and logs (ssh_array.c).  The remote id RID is saved (backend_id) before
 * anything happens on the host, and the host refuses to launch a folder
 * twice (the `launched` marker): after a restart or a network cut the
 * driver re-reads the folder's state and carries on; nothing runs twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backend/driver.h"
#include "../lib/log.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "../lib/array.h"
#include "../lib/copy.h"
#include "gpu.h"
#include "container.h"
#include "ssh_array.h"
#include "ssh_exec.h"
#include "ssh_common.h"
#include "ssh_image.h"
#include "ssh_inputs.h"
#include "ssh_quote.h"
#include "ssh_run.h"
#include "ssh_script.h"

#define POLL_EVERY	0.5		/* s between status round trips */
#define START_WAIT	60.0		/* s a launched run may lack a pid */
#define LOG_CHUNK	(1 << 20)	/* log bytes per run and poll */
#define MET_CHUNK	(256 << 10)
#define PY_MAX		(64 << 10)	/* bytes of mlfs.py sent */
#define POLL_OUT_MAX	(48 << 20)
#define EV_CHUNK	(256 << 10)	/* bytes of an array's tasks.ev */
#define ARRAY_GRACE	5		/* s more than its launcher's own */

enum phase {
	PH_UNKNOWN,	/* to be read from the host (after a restart, a cut) */
	PH_SETUP,	/* not launched: create, upload, launch */
	PH_RUNNING,	/* launched: poll */
	PH_FETCH,	/* exited, log read: copy outputs back, finish */
};

/* Per run, worker only. */
struct ssh_run {
	enum phase phase;
	char rid[48];			/* the folder under workdir */
	int holds_slot;			/* slots of max_concurrent held */
	struct ssh_arr *arr;		/* an array's tasks, or NULL */
	int code;			/* exit code once known */
	int timed_out;
	int noted;			/* an "unreachable" note is shown */
	double term_sent;		/* monotonic; 0: not yet */
	int kill_sent;
	double starting_since;		/* launched, no pid seen yet */
	double next_try;		/* monotonic, for setup/fetch/signals */
	int caught_up;			/* PH_FETCH: the log and metrics are here */
	char fetch_err[256];
};

/* The node line's columns: name state cpus memory gpus. */
static int nodes_parse(const char *nodes, char *name, size_t name_sz,
		       long *cpus, long *gpus)
{
	char n[128], state[64], mem[64];

	*cpus = 0;
	*gpus = 0;
	if (!nodes || sscanf(nodes, "%127s %63s %ld %63s %ld", n, state, cpus,
			     mem, gpus) != 5)
		return -EINVAL;
	if (name)
		snprintf(name, name_sz, "%s", n);
	return 0;
}

/* Read cpus, GPUs and the node name from the target's `nodes` file. */
static void st_load_nodes(struct target_ctx *t, struct ssh_tgt *s)
{
	long cpus, gpus;
	size_t len;
	char *buf;

	if (s->nodes_read)
		return;
	if (ws_render(t->ws, &t->obj, F_NODES, &buf, &len))
		return;
	if (!nodes_parse(buf, s->node, sizeof(s->node), &cpus, &gpus)) {
		s->cpus = cpus;
		s->gpus.n = gpus < GPU_MAX ? (int)gpus : GPU_MAX;
		s->nodes_read = 1;
	}
	free(buf);
}

static int max_concurrent(struct target_ctx *t, struct ssh_tgt *s)
{
	return (int)cfg_long(&t->config, "max_concurrent",
			     s->cpus > 0 ? s->cpus : 1);
}

/* ---- slots and GPUs ---------------------------------------------------- */

/* The slots of max_concurrent a run holds: 1, or an array's tasks at
 * once (its %M, or all), at most max_concurrent (as on the local target). */
static int run_slots(struct target_ctx *t, struct ssh_tgt *s,
		     const struct run_ctx *r)
{
	long n = r->res.array_n, max = max_concurrent(t, s);

	if (!n)
		return 1;
	if (r->res.array_max && r->res.array_max < n)
		n = r->res.array_max;
	n = n < max ? n : max;
	return n > 0 ? (int)n : 1;
}

int ssh_can_start(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_tgt *s = ssh_tgt_of(t);

	if (!s)
		return 0;
	st_load_nodes(t, s);
	if (s->running + run_slots(t, s, r) > max_concurrent(t, s))
		return 0;
	return gpu_pool_free(&s->gpus) >= r->res.gpus;
}

/* Give @r its slots and its GPUs (r->obj.gpus = "0,1"). */
static void slot_take(struct target_ctx *t, struct ssh_tgt *s,
		      struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	sr->holds_slot = run_slots(t, s, r);
	s->running += sr->holds_slot;
	gpu_pool_take(&s->gpus, r->obj.id, r->res.gpus, r->obj.gpus,
		      sizeof(r->obj.gpus));
}

/* After a restart: the slots, and the GPUs r->obj.gpus lists. */
static void slot_retake(struct target_ctx *t, struct ssh_tgt *s,
			struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	sr->holds_slot = run_slots(t, s, r);
	s->running += sr->holds_slot;
	gpu_pool_retake(&s->gpus, r->obj.id, r->obj.gpus);
}

static void slot_put(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_tgt *s = t->priv;
	struct ssh_run *sr = r->priv;

	if (!s || !sr || !sr->holds_slot)
		return;
	s->running -= sr->holds_slot;
	sr->holds_slot = 0;
	gpu_pool_put(&s->gpus, r->obj.id);
}

/* ---- local files ------------------------------------------------------- */

static long long file_size(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) ? 0 : (long long)st.st_size;
}

/* The log (so that tail -f has a file from the start) and work/outputs. */
static void local_prepare(struct run_ctx *r)
{
	char path[PATH_MAX];

	ssh_append(r->dir, RUN_LOG, "", 0);
	/* the daemon's alone until outputs are in and handed over */
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/outputs", r->dir, RUN_WORK);
	mkdir(path, 0700);
}

/* Outputs came in as the daemon's, with the modes the host gave: no file
 * keeps a set-id bit, and everything becomes the run's user's (a root
 * daemon), the working copy 0700 as on the local target. */
static void hand_over(struct run_ctx *r)
{
	int mine = geteuid() != 0 || r->obj.uid == 0;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	if (chown_tree(path, mine ? (uid_t)-1 : r->obj.uid, r->obj.gid))
		log_warn("run %s: cannot give its outputs to uid %u",
			 r->obj.name, r->obj.uid);
}

/* ---- run outcomes ------------------------------------------------------ */

/* The host cannot be reached now: say so; the run keeps its state. */
static void note_down(struct run_ctx *r, const char *why)
{
	struct ssh_run *sr = r->priv;

	sr->noted = 1;
	sr->next_try = mono_s() + SSH_RETRY_EVERY;
	ws_run_note(r->ws, r, why);
}

static void note_clear(struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	if (sr->noted) {
		sr->noted = 0;
		ws_run_note(r->ws, r, "");
	}
}

/* An array's tasks left Queued or Running end with the run: Canceled
 * (@canceled) or Failed.  The sentence naming failed tasks into @why. */
static int settle_tasks(struct run_ctx *r, int canceled, char *why,
			size_t n)
{
	why[0] = '\0';
	return r->res.array_n ? run_array_end(r, canceled, why, n) : 0;
}

static void fail_run(struct target_ctx *t, struct run_ctx *r, const char *why)
{
	char ignored[ERR_MSG_MAX];

	slot_put(t, r);
	settle_tasks(r, 0, ignored, sizeof(ignored));
	ws_run_transition(r->ws, r, RS_FAILED, -1, why);
}

/* Canceled before its command was launched. */
static void cancel_unlaunched(struct target_ctx *t, struct run_ctx *r)
{
	char ignored[ERR_MSG_MAX];

	slot_put(t, r);
	settle_tasks(r, 1, ignored, sizeof(ignored));
	ws_run_transition(r->ws, r, RS_CANCELED, -1, "");
}

static void code_sentence(int code, char *why, size_t n)
{
	if (code > 128 && code < 128 + 65)
		snprintf(why, n, "the command was killed by signal %d (%s)",
			 code - 128, strsignal(code - 128));
	else
		snprintf(why, n, "the command exited with code %d", code);
}

static void vanished(struct target_ctx *t, char *why, size_t n)
{
	snprintf(why, n, "the run's process on %s vanished without recording"
		 " an exit code (killed, or the host restarted)", ssh_host(t));
}

/* The end of an array run (its launcher's code, -1 none): Completed when
 * every task is, else Failed with the failed tasks named. */
static void finish_array(struct target_ctx *t, struct run_ctx *r, int code)
{
	struct ssh_run *sr = r->priv;
	char why[ERR_MSG_MAX];
	int nf;

	nf = settle_tasks(r, r->obj.cancel, why, sizeof(why));
	if (r->obj.cancel) {
		ws_run_transition(r->ws, r, RS_CANCELED, code, "");
		return;
	}
	if (!nf && !code) {
		ws_run_transition(r->ws, r, RS_COMPLETED, 0, sr->fetch_err);
		return;
	}
	if (nf <= 0 && code < 0)
		vanished(t, why, sizeof(why));
	else if (nf <= 0)
		snprintf(why, sizeof(why), "the array's launcher ended with"
			 " code %d before its tasks did (see the log)", code);
	ws_run_transition(r->ws, r, RS_FAILED, code, why);
}

/* The run ended with @code (-1: vanished without one): report it. */
static void finish(struct target_ctx *t, struct run_ctx *r, int code)
{
	struct ssh_run *sr = r->priv;
	char why[ERR_MSG_MAX];

	slot_put(t, r);
	if (r->res.array_n) {
		finish_array(t, r, code);
	} else if (r->obj.cancel && !sr->timed_out) {
		ws_run_transition(r->ws, r, RS_CANCELED, code, "");
	} else if (sr->timed_out) {
		snprintf(why, sizeof(why), "the run exceeded its time limit of"
			 " %llu s and was stopped",
			 (unsigned long long)r->res.time_secs);
		ws_run_transition(r->ws, r, RS_FAILED, code, why);
	} else if (code < 0) {
		vanished(t, why, sizeof(why));
		ws_run_transition(r->ws, r, RS_FAILED, -1, why);
	} else if (code == 0) {
		ws_run_transition(r->ws, r, RS_COMPLETED, 0, sr->fetch_err);
	} else {
		if (!r->image[0] || code != 125 ||
		    !ct_run_failure(r->dir, why, sizeof(why)))
			code_sentence(code, why, sizeof(why));
		ws_run_transition(r->ws, r, RS_FAILED, code, why);
	}
}

static int run_dir(struct target_ctx *t, struct run_ctx *r, char *out,
		   size_t n)
{
	struct ssh_run *sr = r->priv;

	return ssh_run_dir(ssh_workdir(t), sr->rid, out, n);
}

/* ---- setup: create, upload, launch ------------------------------------- */

/* The run is Running on the host with wrapper pid @pid. */
static void mark_running(struct run_ctx *r, long pid)
{
	struct ssh_run *sr = r->priv;
	char *p;

	sr->phase = PH_RUNNING;
	sr->starting_since = 0;
	p = strstr(r->obj.backend_id, " pid ");
	if (pid > 0 && !p) {
		size_t l = strlen(r->obj.backend_id);

		snprintf(r->obj.backend_id + l, sizeof(r->obj.backend_id) - l,
			 " pid %ld", pid);
	}
	if (r->obj.state != RS_RUNNING)
		ws_run_transition(r->ws, r, RS_RUNNING, -1, "");
	else if (pid > 0 && !p)
		ws_run_save(r->ws, r);
	note_clear(r);
}

/* 1: fresh folder made, 0: launched before (adopt), <0: failed. */
static int setup_create(struct target_ctx *t, struct ssh_conn *c,
			struct run_ctx *r, char *why, size_t n)
{
	struct sx_result res;
	char dir[PATH_MAX];
	int rc;

	if (run_dir(t, r, dir, sizeof(dir))) {
		snprintf(why, n, "the remote path is too long");
		return -EIO;
	}
	rc = ssh_remote(c, ssh_script_create(dir), SSH_OUT_MAX, &res, why, n);
	if (rc)
		return rc;
	rc = res.out && strstr(res.out, "fresh") ? 1 : 0;
	sx_result_free(&res);
	return rc;
}

/* The env lines as KEY, VALUE, … NULL (borrowed), malloc'd array. */
static const char **env_pairs(const struct run_ctx *r)
{
	const char **v = calloc(2 * r->env.n + 1, sizeof(*v));

	for (int i = 0; v && i < r->env.n; i++) {
		v[2 * i] = r->env.items[i].key;
		v[2 * i + 1] = r->env.items[i].value;
	}
	return v;
}

/* mlfs.py of this daemon (import mlfs on the host), malloc'd; NULL when
 * it cannot be read (the run then goes without it). */
static char *read_pylib(struct run_ctx *r)
{
	char path[PATH_MAX], *buf = malloc(PY_MAX + 1);
	ssize_t len = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/mlfs.py", ws_helper_dir(r->ws));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && buf) {
		len = read(fd, buf, PY_MAX);
		if (len >= 0)
			buf[len] = '\0';
	}
	if (fd >= 0)
		close(fd);
	if (len < 0 || len == PY_MAX) {	/* unreadable or cut */
		log_warn("run %s: %s cannot be read: no import mlfs on the"
			 " host", r->obj.name, path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* An array's launcher for @l: its items (the spec without %M, into
 * @items), tasks at once, a task's time limit and grace. */
static void launch_array(struct target_ctx *t, struct run_ctx *r,
			 struct ssh_launch *l, char *items, size_t n)
{
	if (!r->res.array_n)
		return;
	snprintf(items, n, "%s", r->res.array);
	items[strcspn(items, "%")] = '\0';
	l->array = items;
	l->array_max = run_slots(t, ssh_tgt_of(t), r);
	l->task_limit = (long)r->res.time_secs;
	l->task_grace = cfg_long(&t->config, "cancel_grace_seconds", 10);
}

/* A run in an environment (@ct from ssh_image_prepare): the wrapper
 * runs the container, and the env lines go to its env file only. */
static void launch_ct(struct ssh_launch *l, const struct ssh_ct *ct)
{
	l->ct_cmd = ct->cmd;
	l->ct_env = ct->env;
	l->ct_name = ct->name;
	l->ct_podman = ct->podman;
	l->env = NULL;
	l->inputs = NULL;	/* in the env file, as the container sees them */
	l->procs = 1;		/* the ranks' launcher is in the container */
}

static int setup_launch(struct target_ctx *t, struct ssh_conn *c,
			struct run_ctx *r, const char *const *inputs,
			const struct ssh_ct *ct, long *pid, char *why,
			size_t n)
{
	struct ssh_tgt *s = ssh_tgt_of(t);
	struct ssh_launch l = { 0 };
	struct sx_result res;
	char dir[PATH_MAX], items[ARRAY_SPEC_MAX];
	const char **env;
	int rc;

	if (run_dir(t, r, dir, sizeof(dir))) {
		snprintf(why, n, "the remote path is too long");
		return -EIO;
	}
	env = env_pairs(r);
	l.dir = dir;
	l.name = r->obj.name;
	l.command = r->command;
	l.procs = (int)r->res.procs_per_node;
	l.gpus = r->res.gpus > 0 || s->gpus.n > 0 ? r->obj.gpus : NULL;
	l.env = env;
	l.inputs = inputs;
	l.pylib = read_pylib(r);
	launch_array(t, r, &l, items, sizeof(items));
	if (ct->cmd)
		launch_ct(&l, ct);
	rc = env ? ssh_remote(c, ssh_script_launch(&l), SSH_OUT_MAX, &res, why,
			    n) : -ENOMEM;
	free((char *)l.pylib);
	free(env);
	if (rc)
		return rc;
	*pid = 0;
	if (res.out)
		sscanf(res.out, "started %ld", pid);
	sx_result_free(&res);
	return 0;
}

static void setup_failed(struct target_ctx *t, struct run_ctx *r, int rc,
			 const char *what, const char *why, int maybe_launched)
{
	struct ssh_run *sr = r->priv;
	char text[ERR_MSG_MAX];

	if (rc == -EHOSTUNREACH) {
		if (maybe_launched)
			sr->phase = PH_UNKNOWN;	/* the poll finds out */
		note_down(r, why);
		return;
	}
	snprintf(text, sizeof(text), "%s on %s: %s", what,
		 ssh_host(t), why);
	fail_run(t, r, text);
}

/*
 * The copy of code/ or of all the run's files (the backend says which), if
 * it has any, sent from a copy made with the run's user's rights in work/
 * (the daemon's until hand_over): the run's files are theirs and
 * reachable in the state dir, and what they change or swap for a symlink
 * meanwhile is not sent, nor anything they could not read.
 * 0, -errno + @why, or 1: the run failed here (its files cannot be read).
 */
static int setup_upload(struct target_ctx *t, struct ssh_conn *c,
			struct run_ctx *r, char *why, size_t n)
{
	struct ssh_run *sr = r->priv;
	char root[PATH_MAX], work[PATH_MAX], stage[PATH_MAX];
	struct stat st;
	struct err e;
	int rc;

	rc = userfile_work_root(r->dir, root, sizeof(root), &e);
	if (rc < 0) {
		snprintf(why, n, "%s", e.msg);
		return rc;
	}
	if (stat(root, &st) || !S_ISDIR(st.st_mode))
		return 0;
	snprintf(work, sizeof(work), "%s/%s", r->dir, RUN_WORK);
	rc = ssh_stage(root, work, r->obj.uid, r->obj.gid, stage, why, n);
	if (rc) {	/* the same sentence as on the local target */
		remove_tree(stage);
		fail_run(t, r, why);
		return 1;
	}
	rc = ssh_copy(t, c, sr->rid, 1, stage, "work", why, n);
	remove_tree(stage);
	return rc;
}

/* Launched before (found by create or launch): the poll takes over. */
static void setup_adopt(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	sr->phase = PH_UNKNOWN;
	ssh_tgt_of(t)->next_poll = 0;
}

/* The inputs in the host's cache: 0 (*@env filled), else the run failed
 * or waits for the host (said here). */
static int setup_inputs(struct target_ctx *t, struct ssh_conn *c,
			struct run_ctx *r, char ***env)
{
	char why[ERR_MSG_MAX];
	int rc;

	rc = ssh_inputs_send(t, c, r, env, why, sizeof(why));
	if (rc == 1)
		fail_run(t, r, why);
	else if (rc)
		setup_failed(t, r, rc, "cannot send the run's inputs", why, 0);
	return rc;
}

/* A run in an environment: podman and its image on the host (copied
 * there when missing).  0 (@ct filled, or empty without an image), else
 * the run failed or waits for the host (said here). */
static int setup_image(struct target_ctx *t, struct ssh_conn *c,
		       struct run_ctx *r, const char *const *inputs,
		       struct ssh_ct *ct)
{
	char why[ERR_MSG_MAX], dir[PATH_MAX];
	int rc;

	memset(ct, 0, sizeof(*ct));
	if (!r->image[0])
		return 0;
	if (run_dir(t, r, dir, sizeof(dir))) {
		fail_run(t, r, "the remote path is too long");
		return -EIO;
	}
	rc = ssh_image_prepare(t, c, r, dir, inputs, ct, why, sizeof(why));
	if (rc == 1)
		fail_run(t, r, why);
	else if (rc)
		setup_failed(t, r, rc, "cannot prepare the run's container",
			     why, 0);
	return rc;
}

/* Not launched yet: make the folder, copy the files, launch. */
static void setup_step(struct target_ctx *t, struct run_ctx *r)
{
	char why[ERR_MSG_MAX], **inputs = NULL;
	struct ssh_conn c;
	struct ssh_ct ct;
	struct err e;
	long pid = 0;
	int rc;

	if (ssh_conn_of(t, 1, &c, &e)) {
		fail_run(t, r, e.msg);
		return;
	}
	rc = setup_create(t, &c, r, why, sizeof(why));
	if (rc <= 0) {
		if (rc == 0)
			setup_adopt(t, r);
		else
			setup_failed(t, r, rc, "cannot make the run's folder",
				     why, 0);
		return;
	}
	rc = setup_upload(t, &c, r, why, sizeof(why));
	if (rc == 1)
		return;
	if (rc) {
		setup_failed(t, r, rc, "cannot copy the run's files", why, 0);
		return;
	}
	if (setup_inputs(t, &c, r, &inputs) ||
	    setup_image(t, &c, r, (const char *const *)inputs, &ct)) {
		ssh_inputs_free(inputs);
		return;
	}
	if (r->obj.cancel) {
		ssh_inputs_free(inputs);
		ssh_image_free(&ct);
		cancel_unlaunched(t, r);
		return;
	}
	rc = setup_launch(t, &c, r, (const char *const *)inputs, &ct, &pid,
			  why, sizeof(why));
	ssh_inputs_free(inputs);
	ssh_image_free(&ct);
	if (rc)
		setup_failed(t, r, rc, "the command did not start", why, 1);
	else if (pid > 0)
		mark_running(r, pid);
	else
		setup_adopt(t, r);
}

int ssh_start(struct target_ctx *t, struct run_ctx *r, struct err *e)
{
	struct ssh_tgt *s = ssh_tgt_of(t);
	struct ssh_run *sr;
	int rc;

	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	st_load_nodes(t, s);
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	snprintf(sr->rid, sizeof(sr->rid), "%lld-%08x", (long long)r->obj.id,
		 ssh_rnd32());
	sr->code = -1;
	r->priv = sr;
	if (r->res.array_n && !(sr->arr = ssh_arr_new(r, &rc))) {
		free(sr);
		r->priv = NULL;
		return err_set(e, rc, "cannot make the array's tasks/ folder:"
			       " %s", strerror(-rc));
	}
	slot_take(t, s, r);
	/* The remote id is in the store before anything happens there. */
	snprintf(r->obj.backend_id, sizeof(r->obj.backend_id), "ssh %s@%s:%ld %s",
		 cfg_str(&t->config, "user", ssh_default_user(s)),
		 ssh_host(t),
		 cfg_long(&t->config, "port", 22), sr->rid);
	snprintf(r->obj.node, sizeof(r->obj.node), "%s", s->node[0] ? s->node :
		 ssh_host(t));
	rc = ws_run_transition(r->ws, r, RS_STARTING, -1, NULL);
	if (rc) {
		slot_put(t, r);
		ssh_arr_free(sr->arr);
		free(sr);
		r->priv = NULL;
		return rc == -EAGAIN ? 0 : err_set(e, rc, "the store failed");
	}
	r->started = 1;
	local_prepare(r);
	sr->phase = PH_SETUP;
	setup_step(t, r);
	return 0;
}

/* ---- fetch: outputs back, final state ---------------------------------- */

static void fetch_step(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;
	char why[ERR_MSG_MAX], out[PATH_MAX];
	struct ssh_conn c;
	struct err e;
	int rc;

	if (ssh_conn_of(t, 1, &c, &e)) {
		fail_run(t, r, e.msg);
		return;
	}
	local_prepare(r);
	snprintf(out, sizeof(out), "%s/%s/outputs", r->dir, RUN_WORK);
	rc = ssh_copy(t, &c, sr->rid, 0, out, "work/outputs", why, sizeof(why));
	if (rc == -EHOSTUNREACH) {
		note_down(r, why);
		return;
	}
	hand_over(r);	/* last: no copy as root into a folder of the user's */
	if (rc)
		snprintf(sr->fetch_err, sizeof(sr->fetch_err), "outputs/ could"
			 " not be copied back: %s", why);
	finish(t, r, sr->code);
}

/* ---- signals: cancel and time limit ------------------------------------ */

static int send_signal(struct target_ctx *t, struct run_ctx *r,
		       const char *sig)
{
	char why[ERR_MSG_MAX], dir[PATH_MAX];
	struct sx_result res;
	struct ssh_conn c;
	struct err e;
	int rc;

	if (ssh_conn_of(t, 1, &c, &e) || run_dir(t, r, dir, sizeof(dir)))
		return -EIO;
	rc = ssh_remote(&c, ssh_script_signal(dir, sig), SSH_OUT_MAX, &res, why,
			sizeof(why));
	if (rc == -EHOSTUNREACH)
		note_down(r, why);
	else if (!rc)
		sx_result_free(&res);
	else
		log_warn("run %s: cannot send %s: %s", r->obj.name, sig, why);
	return rc;
}

/* TERM to the process group now, KILL once after the grace period. */
static void stop_step(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;
	long grace = cfg_long(&t->config, "cancel_grace_seconds", 10);
	double now = mono_s();

	/* an array's launcher KILLs its tasks after the grace itself and
	 * must live till then to record them (the host's tasks get each
	 * signal too: ssh_script_signal) */
	if (r->res.array_n)
		grace += ARRAY_GRACE;

	if (sr->phase != PH_RUNNING || sr->kill_sent || now < sr->next_try)
		return;
	if (!sr->term_sent) {
		if (!send_signal(t, r, "TERM"))
			sr->term_sent = now;
	} else if (now - sr->term_sent >= grace) {
		if (!send_signal(t, r, "KILL"))
			sr->kill_sent = 1;
	}
}

int ssh_cancel(struct target_ctx *t, struct run_ctx *r, struct err *e)
{
	struct ssh_run *sr = r->priv;

	(void)e;
	if (!sr)
		return 0;
	if (sr->phase == PH_SETUP) {	/* never launched */
		cancel_unlaunched(t, r);
		return 0;
	}
	stop_step(t, r);
	return 0;
}

/* ---- poll -------------------------------------------------------------- */

/* Append what the host sent; 1 when the local copies are caught up. */
static int take_bytes(struct run_ctx *r, const struct ssh_poll_reply *p,
		      const struct ssh_poll_item *it)
{
	if (p->log_n > 0 && ssh_append(r->dir, RUN_LOG, p->log, p->log_n))
		log_warn("run %s: cannot append to its log", r->obj.name);
	if (p->met_n > 0 &&
	    ssh_append(r->dir, RUN_METRICS_RAW, p->met, p->met_n))
		log_warn("run %s: cannot append to metrics", r->obj.name);
	if (p->par_n > 0 &&
	    ssh_append(r->dir, RUN_PARAMS_RAW, p->par, p->par_n))
		log_warn("run %s: cannot append to params", r->obj.name);
	return it->log_off + p->log_n >= p->log_size &&
	       it->met_off + p->met_n >= p->met_size &&
	       it->par_off + p->par_n >= p->par_size;
}

/* A folder that was never launched: launch it, unless canceled. */
static void reply_fresh(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	if (sr->phase == PH_RUNNING) {
		fail_run(t, r, "the run's folder on the host vanished");
		return;
	}
	if (r->obj.cancel) {
		cancel_unlaunched(t, r);
		return;
	}
	sr->phase = PH_SETUP;
	setup_step(t, r);
}

static void apply_reply(struct target_ctx *t, struct run_ctx *r,
			const struct ssh_poll_reply *p,
			const struct ssh_poll_item *it)
{
	struct ssh_run *sr = r->priv;
	int caught_up = take_bytes(r, p, it);
	double now = mono_s();

	if (sr->arr && !ssh_arr_take(sr->arr, r, p))
		caught_up = 0;

	note_clear(r);
	if (!caught_up)
		ssh_tgt_of(t)->next_poll = 0;	/* more to read: at once */
	if (!strcmp(p->status, "nodir") || !strcmp(p->status, "fresh")) {
		reply_fresh(t, r);
	} else if (!strcmp(p->status, "starting")) {
		if (!sr->starting_since)
			sr->starting_since = now;
		else if (now - sr->starting_since > START_WAIT)
			finish(t, r, -1);
	} else if (!strcmp(p->status, "running")) {
		if (sr->phase != PH_RUNNING || r->obj.state != RS_RUNNING)
			mark_running(r, p->arg);
	} else if (!strcmp(p->status, "exited")) {
		sr->code = p->arg >= 0 && p->arg < 256 ? (int)p->arg : -1;
		sr->phase = PH_FETCH;
		sr->caught_up = caught_up;
		if (caught_up)
			fetch_step(t, r);
	} else {			/* lost */
		finish(t, r, -1);
	}
}

static void check_time_limit(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	/* an array's time limit is each task's: its launcher's */
	if (sr->phase != PH_RUNNING || !r->res.time_secs ||
	    r->res.array_n || r->obj.started <= 0 ||
	    wall_s() - r->obj.started <= (double)r->res.time_secs)
		return;
	sr->timed_out = 1;
	stop_step(t, r);
}

/* Steps that run outside the poll: setup and fetch (retried when due
 * after the host was unreachable), the time limit. */
static void other_steps(struct target_ctx *t, struct run_ctx **runs, int n)
{
	double now = mono_s();

	for (int i = 0; i < n; i++) {
		struct run_ctx *r = runs[i];
		struct ssh_run *sr = r->priv;

		if (!sr || run_state_final(r->obj.state))
			continue;
		if (sr->phase == PH_SETUP && now >= sr->next_try)
			setup_step(t, r);
		else if (sr->phase == PH_FETCH && sr->caught_up &&
			 now >= sr->next_try)
			fetch_step(t, r);
		else if (sr->phase == PH_RUNNING)
			check_time_limit(t, r);
	}
}

/* Does the poll read this run's state and bytes from the host? */
static int polled(const struct ssh_run *sr)
{
	return sr && (sr->phase == PH_UNKNOWN || sr->phase == PH_RUNNING ||
		      (sr->phase == PH_FETCH && !sr->caught_up));
}

/* Apply the poll's output to the @m runs it asked about. */
static void poll_apply(struct target_ctx *t, struct run_ctx **who,
		       const struct ssh_poll_item *items, int m,
		       const struct sx_result *res)
{
	struct ssh_poll_reply p;
	size_t pos = 0;
	int rc;

	while ((rc = ssh_poll_parse(res->out ? res->out : "", res->out_len,
				    &pos, &p)) == 1)
		if (p.index >= 0 && p.index < m &&
		    !run_state_final(who[p.index]->obj.state))
			apply_reply(t, who[p.index], &p, &items[p.index]);
	if (rc < 0)
		log_warn("target %s: unexpected output from the host's poll",
			 t->obj.name);
}

/* An array run's part of @it: tasks.ev from where the daemon is, the
 * logs of its running tasks and of ended ones not caught up, @lmax bytes
 * in all.  -ENOMEM. */
static int poll_array(struct ssh_run *sr, struct ssh_poll_item *it,
		      long long lmax)
{
	struct ssh_task_ask *asks;

	if (!sr->arr)
		return 0;
	asks = calloc(SSH_ASK_MAX, sizeof(*asks));
	if (!asks)
		return -ENOMEM;
	it->array = 1;
	it->ev_off = sr->arr->ev_off;
	it->ev_max = EV_CHUNK;
	it->ntasks = ssh_arr_asks(sr->arr, lmax, asks);
	it->tasks = asks;
	return 0;
}

/* Poll the runs whose state is read from the host: one round trip. */
static void poll_round(struct target_ctx *t, struct run_ctx **runs, int n)
{
	struct ssh_poll_item *items = calloc(n, sizeof(*items));
	struct run_ctx **who = calloc(n, sizeof(*who));
	char (*dirs)[PATH_MAX] = calloc(n, sizeof(*dirs));
	/* at most ~20 MiB a round, whatever the number of runs */
	long long lmax = n <= 16 ? LOG_CHUNK : (16 << 20) / n;
	long long mmax = n <= 16 ? MET_CHUNK : (4 << 20) / n;
	char why[ERR_MSG_MAX], *script = NULL;
	struct sx_result res;
	struct ssh_conn c;
	struct err e;
	int m = 0;

	if (!items || !who || !dirs || ssh_conn_of(t, 1, &c, &e))
		goto out_free;
	for (int i = 0; i < n; i++) {
		if (!polled(runs[i]->priv) ||
		    run_dir(t, runs[i], dirs[m], PATH_MAX))
			continue;
		items[m] = (struct ssh_poll_item){
			.dir = dirs[m],
			.log_off = file_size(runs[i]->dir, RUN_LOG),
			.log_max = lmax < 65536 ? 65536 : lmax,
			.met_off = file_size(runs[i]->dir, RUN_METRICS_RAW),
			.met_max = mmax < 16384 ? 16384 : mmax,
			.par_off = file_size(runs[i]->dir, RUN_PARAMS_RAW),
			.par_max = mmax < 16384 ? 16384 : mmax,
		};
		if (poll_array(runs[i]->priv, &items[m], items[m].log_max))
			goto out_free;
		who[m++] = runs[i];
	}
	script = m ? ssh_script_poll(items, m) : NULL;
	if (!script || ssh_conn_exec(&c, script, SSH_CALL_TIMEOUT, POLL_OUT_MAX,
				     &res))
		goto out_free;
	if (ssh_conn_why(&c, &res, SSH_CALL_TIMEOUT, why, sizeof(why)) !=
	    SX_OK) {
		for (int i = 0; i < m; i++)
			note_down(who[i], why);
		ssh_tgt_of(t)->next_poll = mono_s() + SSH_RETRY_EVERY;
	} else {
		poll_apply(t, who, items, m, &res);
	}
	sx_result_free(&res);
out_free:
	free(script);
	for (int i = 0; items && i < m; i++)
		free((void *)items[i].tasks);
	free(items);
	free(who);
	free(dirs);
}

void ssh_poll(struct target_ctx *t, struct run_ctx **runs, int n)
{
	struct ssh_tgt *s = ssh_tgt_of(t);
	double now = mono_s();

	if (!s)
		return;
	other_steps(t, runs, n);
	if (now < s->next_poll)
		return;
	s->next_poll = now + POLL_EVERY;
	poll_round(t, runs, n);
}

/* ---- adopt, release ---------------------------------------------------- */

/* After a restart: the run's folder is named in backend_id; its state on
 * the host is read by the next poll (launched or not, running, exited). */
int ssh_adopt(struct target_ctx *t, struct run_ctx *r, struct err *e)
{
	struct ssh_tgt *s = ssh_tgt_of(t);
	struct ssh_run *sr;
	char rid[48];
	int rc;

	if (r->obj.state == RS_QUEUED)
		return -ENOENT;
	if (sscanf(r->obj.backend_id, "ssh %*s %47s", rid) != 1)
		return err_set(e, -EIO, "the run has no remote folder on record"
			       " ('%s')", r->obj.backend_id);
	sr = s ? calloc(1, sizeof(*sr)) : NULL;
	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	snprintf(sr->rid, sizeof(sr->rid), "%s", rid);
	sr->code = -1;
	sr->phase = PH_UNKNOWN;
	if (r->res.array_n && !(sr->arr = ssh_arr_new(r, &rc))) {
		free(sr);
		return err_set(e, rc, "cannot read the array's tasks/ folder:"
			       " %s", strerror(-rc));
	}
	r->priv = sr;
	r->started = 1;
	st_load_nodes(t, s);
	slot_retake(t, s, r);
	s->next_poll = 0;
	return 0;
}

void ssh_release_run(struct target_ctx *t, struct run_ctx *r)
{
	struct ssh_run *sr = r->priv;

	slot_put(t, r);
	if (sr)
		ssh_arr_free(sr->arr);
	free(r->priv);
	r->priv = NULL;
}
