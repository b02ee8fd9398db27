// SPDX-License-Identifier: MIT
/*
 * The slurm driver's jobs: a run's working copy (its own folder, or under
 * `workdir`), its batch script and environment, the body of POST
 * job/submit, the submit itself, cancel and adopt after a restart.
 * Backend worker thread only.
 *
 * Nothing is submitted twice: each job carries the comment
 * "mlfs:<state dir>:<run id>"; the run's ddata says "submit" from just
 * before the POST until its job id is stored, and a run found in that
 * state (after a crash, or after a POST whose outcome is unknown) is looked
 * up by its comment before it is submitted again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../lib/log.h"
#include "../lib/vec.h"
#include "../backend/userfile.h"
#include "../backend/ws.h"
#include "../lib/array.h"
#include "../lib/copy.h"
#include "slurm_i.h"
#include "slurm_image.h"

#define SUBMIT_MARK	"submit"	/* ddata while a POST may be under way */

/* ---- runs: notes -------------------------------------------------------- */

struct slurm_run *sl_run_get(struct run_ctx *r)
{
	if (!r->priv)
		r->priv = calloc(1, sizeof(struct slurm_run));
	return r->priv;
}

/* Note an outage on @r (one events line when the text changes). */
void sl_run_note(struct run_ctx *r, const char *why)
{
	struct slurm_run *sr = r->priv;

	if (sr)
		sr->noted = 1;
	ws_run_note(r->ws, r, why);
}

/* slurmrestd answered: drop our outage note from r->obj (not saved). */
int sl_run_unnote(struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;

	if (!sr || !sr->noted)
		return 0;
	sr->noted = 0;
	r->obj.error[0] = '\0';
	return 1;
}

/* ---- runs: the job ---------------------------------------------------------- */

/* Where the job works: <run>/work, or <workdir>/mlfs-<hash>/<id>-<name>. */
void sl_work_path(const struct target_ctx *t, const struct run_ctx *r,
		  char *buf)
{
	const struct slurm_target *st = t->priv;

	if (!st->cfg.workdir)
		snprintf(buf, PATH_MAX, "%s/%s", r->dir, RUN_WORK);
	else
		snprintf(buf, PATH_MAX, "%s/mlfs-%08x/%lld-%s",
			 st->cfg.workdir,
			 (unsigned)fnv1a64_add(FNV64_BASIS_SHORT,
					       ws_state_dir(t->ws),
					       strlen(ws_state_dir(t->ws))),
			 (long long)r->obj.id, r->obj.name);
}

/* The working copy; with a workdir also an empty <run>/work/outputs. */
static int make_copy(const struct target_ctx *t, const struct run_ctx *r,
		     const char *work, struct err *e)
{
	char files[PATH_MAX], path[PATH_MAX], at[PATH_MAX];
	int rc, fd;

	/* code/ or all the run's files: the backend says which */
	rc = userfile_work_root(r->dir, files, sizeof(files), e);
	if (rc < 0)
		return rc;
	if (!((struct slurm_target *)t->priv)->cfg.workdir)
		return copy_tree_fresh(files, work, e);
	/* the workdir is users' too: its mlfs-HASH folder must be ours (a
	 * link a user put there would take the copy, made as root), and the
	 * copy goes through it, held (not by its name: renamed meanwhile) */
	rc = sl_work_anchor(t, work, at, &fd, e);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/outputs", r->dir, RUN_WORK);
	mkdir(path, 0755);
	rc = copy_tree_fresh(files, at, e);
	close(fd);
	return rc;
}

/* @s in single quotes for sh, malloc'd. */
static char *sq(const char *s)
{
	size_t n = 3;
	char *q, *p;

	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	q = p = malloc(n);
	if (!q)
		return NULL;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* The run's indices, read once from its `array`: 0 or -errno. */
int sl_array_tasks(struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;
	struct array_spec a;

	if (sr->idx)
		return 0;
	if (array_parse(r->res.array, 1, &a))
		return -EINVAL;
	sr->tstate = calloc(a.n ? a.n : 1, 1);
	if (!sr->tstate) {
		free(a.idx);
		return -ENOMEM;
	}
	sr->idx = a.idx;
	sr->ntasks = a.n;
	return 0;
}

/* The tasks/I folders of array run @r, before its job is submitted. */
static int array_make(struct run_ctx *r, struct err *e)
{
	struct slurm_run *sr = r->priv;
	int rc = sl_array_tasks(r);

	if (rc)
		return err_set(e, rc, "resources: array '%s' cannot be read:"
			       " %s", r->res.array, strerror(-rc));
	return run_array_make_tasks(r, sr->idx, sr->ntasks, e);
}

/* The job's environment is exactly the one submitted (run_env, and PATH)
 * plus Slurm's own SLURM_*: HOME, USER, LOGNAME and SHELL of the job's
 * user come from its passwd entry on the node, unless env set them. */
#define LOGIN_ENV \
	"u=$(id -un); p=$(getent passwd \"$u\")\n" \
	"export USER=\"${USER:-$u}\" LOGNAME=\"${LOGNAME:-$u}\"" \
	" HOME=\"${HOME:-$(echo \"$p\" | cut -d: -f6)}\"" \
	" SHELL=\"${SHELL:-$(echo \"$p\" | cut -d: -f7)}\"\n" \
	"unset u p\n"

/*
 * procs_per_node tasks per node (%ld), srun's; rank 0 runs on the batch
 * host, whose address srun passes to every task.  MASTER_PORT: 20000 +
 * the job id mod 20000 (jobs sharing a host differ), moved past ports
 * something already listens on there.  Each task takes its share of the
 * node's CUDA_VISIBLE_DEVICES, as mlfs-ranks.c does on one machine.
 * Lines are prefixed with the node's name, or with the rank when a node
 * runs several processes.  The job's code is the first non-zero one: the
 * task that fails first creates .mlfs-exit (O_EXCL, on the shared working
 * directory) before Slurm TERMs the others, whose 143 srun would report.
 */
#define MULTI_SCRIPT \
	"#!/bin/bash\n" \
	"# mlfs run %s: the command %ld times per node (srun)\n" \
	"cd %s || exit 1\n" \
	LOGIN_ENV \
	"export MLFS_NUM_NODES=$SLURM_JOB_NUM_NODES\n" \
	"p=$((20000 + SLURM_JOB_ID %% 20000)); i=0\n" \
	"while [ $i -lt 100 ] && (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null;" \
	" do p=$((p + 1)); i=$((i + 1)); done\n" \
	"export MASTER_PORT=$p LOCAL_WORLD_SIZE=%ld; unset p i\n" \
	"rm -f .mlfs-exit\n" \
	"srun --nodes=$SLURM_JOB_NUM_NODES" \
	" --ntasks=$((SLURM_JOB_NUM_NODES * LOCAL_WORLD_SIZE))" \
	" --ntasks-per-node=$LOCAL_WORLD_SIZE --kill-on-bad-exit=1" \
	" /bin/bash -c '\n" \
	"export MLFS_NODE_RANK=$SLURM_NODEID NODE_RANK=$SLURM_NODEID" \
	" RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS" \
	" LOCAL_RANK=$SLURM_LOCALID MASTER_ADDR=$SLURM_LAUNCH_NODE_IPADDR\n" \
	"IFS=, read -ra g <<<\"$CUDA_VISIBLE_DEVICES\"\n" \
	"k=$((${#g[@]} / LOCAL_WORLD_SIZE))\n" \
	"[ $k -gt 0 ] && export CUDA_VISIBLE_DEVICES=$(IFS=,;" \
	" echo \"${g[*]:$((LOCAL_RANK * k)):$k}\")\n" \
	"unset g k\n" \
	"l=$SLURMD_NODENAME; [ $LOCAL_WORLD_SIZE -gt 1 ] && l=$RANK\n" \
	"/bin/sh -c \"$1\" 2>&1 | sed -u \"s/^/$l: /\"\n" \
	"c=${PIPESTATUS[0]}\n" \
	"[ $c -ne 0 ] && (set -C; echo $c >.mlfs-exit) 2>/dev/null\n" \
	"exit $c' mlfs-node %s\n" \
	"s=$?\n" \
	"[ -s .mlfs-exit ] && read -r s <.mlfs-exit\n" \
	"rm -f .mlfs-exit\n" \
	"exit $s\n"

#define SINGLE_SCRIPT \
	"#!/bin/bash\n" \
	"# mlfs run %s\n" \
	"cd %s || exit 1\n" \
	LOGIN_ENV \
	"exec /bin/sh -c %s\n"

/* One task of a job array: Slurm runs the script once per index. */
#define ARRAY_SCRIPT \
	"#!/bin/bash\n" \
	"# mlfs run %s: one task of an array of %ld\n" \
	"cd %s || exit 1\n" \
	LOGIN_ENV \
	"export MLFS_ARRAY_INDEX=$SLURM_ARRAY_TASK_ID MLFS_ARRAY_COUNT=%ld\n" \
	"exec /bin/sh -c %s\n"

/* Several processes: srun starts them, with the distributed variables. */
static int distributed(const struct run_ctx *r)
{
	return r->res.nodes > 1 || r->res.procs_per_node > 1;
}

static char *run_script(const struct run_ctx *r, const char *work)
{
	char *qw = sq(work), *qc = sq(r->command), *s = NULL;
	int rc = -1;

	if (qw && qc && r->res.array_n)
		rc = asprintf(&s, ARRAY_SCRIPT, r->obj.name, r->res.array_n,
			      qw, r->res.array_n, qc);
	else if (qw && qc && !distributed(r))
		rc = asprintf(&s, SINGLE_SCRIPT, r->obj.name, qw, qc);
	else if (qw && qc)
		rc = asprintf(&s, MULTI_SCRIPT, r->obj.name,
			      r->res.procs_per_node, qw,
			      r->res.procs_per_node, qc);
	if (rc < 0)
		s = NULL;
	free(qw);
	free(qc);
	return s;
}

struct strv {
	char **v;
	size_t n, cap;
};

static int strv_addf(struct strv *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int strv_addf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (vec_reserve(sv, 1))
		return -ENOMEM;
	va_start(ap, fmt);
	rc = vasprintf(&sv->v[sv->n], fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	sv->n++;
	return 0;
}

static void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

/* The job's environment: the run's env lines, then MLFS_*, LANG unless
 * env sets it (PATH: slurm_api; HOME, USER …: LOGIN_ENV).  Nothing of the
 * daemon's own. */
static int run_env(const struct run_ctx *r, const char *work, struct strv *sv)
{
	int rc = 0;

	if (!kv_get(&r->env, "LANG"))
		rc = strv_addf(sv, "LANG=C.UTF-8");
	for (int i = 0; i < r->env.n && !rc; i++)
		if (strcmp(r->env.items[i].key, "PYTHONPATH"))
			rc = strv_addf(sv, "%s=%s", r->env.items[i].key,
				       r->env.items[i].value);
	/* import mlfs: mlfs.py in the daemon's install folder, which the
	 * nodes must see at the same path (README: Slurm targets) */
	if (!rc && kv_get(&r->env, "PYTHONPATH") &&
	    *kv_get(&r->env, "PYTHONPATH"))
		rc = strv_addf(sv, "PYTHONPATH=%s:%s",
			       kv_get(&r->env, "PYTHONPATH"),
			       ws_helper_dir(r->ws));
	else if (!rc)
		rc = strv_addf(sv, "PYTHONPATH=%s", ws_helper_dir(r->ws));
	if (!rc)
		rc = strv_addf(sv, "MLFS_RUN=%s", r->obj.name);
	if (!rc)
		rc = strv_addf(sv, "MLFS_OUTPUTS=%s/outputs", work);
	if (!rc)
		rc = strv_addf(sv, "MLFS_METRICS=%s/%s", r->dir,
			       RUN_METRICS_RAW);
	if (!rc)
		rc = strv_addf(sv, "MLFS_PARAMS=%s/%s", r->dir,
			       RUN_PARAMS_RAW);
	if (!rc && !distributed(r))
		rc = strv_addf(sv, "MLFS_NODE_RANK=0");
	if (!rc && !distributed(r))
		rc = strv_addf(sv, "MLFS_NUM_NODES=1");
	/* paths on the shared file system, as the state dir's are */
	for (int i = 0; i < r->ninputs && !rc; i++)
		rc = strv_addf(sv, "MLFS_INPUT_%s=%s", r->inputs[i].name,
			       r->inputs[i].path);
	return rc;
}

/* @path with '%' doubled: Slurm expands %j and friends in file names. */
static void no_patterns(const char *path, char *buf, size_t len)
{
	size_t o = 0;

	for (; *path && o + 2 < len; path++) {
		if (*path == '%')
			buf[o++] = '%';
		buf[o++] = *path;
	}
	buf[o] = '\0';
}

/* Add job.comment to a submit body (slurm_api has no field for it). */
static char *with_comment(char *body, const char *comment)
{
	cJSON *root = cJSON_Parse(body);
	cJSON *job = cJSON_GetObjectItemCaseSensitive(root, "job");
	char *out = NULL;

	if (cJSON_IsObject(job) &&
	    cJSON_AddStringToObject(job, "comment", comment))
		out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	free(body);
	return out;
}

static void job_spec(const struct run_ctx *r, const struct slurm_cfg *c,
		     struct slurm_job_spec *s)
{
	s->name = r->obj.name;
	s->partition = c->partition;
	s->nodes = (unsigned)r->res.nodes;
	s->cpus_per_task = (unsigned)r->res.cpus;
	s->tasks_per_node = r->res.procs_per_node > 1 ?
			    (unsigned)r->res.procs_per_node : 0;
	s->gpus_per_node = (unsigned)r->res.gpus;
	s->memory_mib = r->res.memory_mib;
	s->time_limit_min = (unsigned)((r->res.time_secs + 59) / 60);
}

/* The job's environment in an environment: nothing of the run's (its env
 * lines reach the container only, through the env file), as the batch
 * script may be root's. */
static int image_env(struct strv *sv)
{
	int rc = strv_addf(sv, "LANG=C.UTF-8");

	return rc ? rc : strv_addf(sv, "PATH=/usr/local/bin:/usr/bin:/bin");
}

/* The JSON body of POST job/submit for @r, malloc'd, or NULL + @e;
 * @ct_script the batch script of a run in an environment (NULL: the
 * command's own). */
static char *job_body(const struct target_ctx *t, const struct run_ctx *r,
		      const char *work, const char *ct_script, struct err *e)
{
	const struct slurm_target *st = t->priv;
	struct slurm_job_spec spec = { 0 };
	char log_path[PATH_MAX], out_path[PATH_MAX * 2];
	char comment[PATH_MAX + 32], msg[ERR_MSG_MAX];
	struct strv env = { 0 };
	char *script, *body = NULL;

	script = ct_script ? strdup(ct_script) : run_script(r, work);
	if (!script || (ct_script ? image_env(&env) : run_env(r, work, &env)))
		goto out_nomem;
	snprintf(log_path, sizeof(log_path), "%s/%s", r->dir, RUN_LOG);
	no_patterns(log_path, out_path, sizeof(out_path));
	if (r->res.array_n) {
		/* each task's own log, tasks/I/log (%a: Slurm's index) */
		no_patterns(r->dir, out_path, sizeof(out_path) - 32);
		strcat(out_path, "/" RUN_TASKS "/%a/" RUN_LOG);
	}
	job_spec(r, &st->cfg, &spec);
	spec.cwd = work;
	spec.stdout_path = out_path;
	spec.env = (const char *const *)env.v;
	spec.env_count = env.n;
	spec.script = script;
	spec.dependency = ((const struct slurm_run *)r->priv)->dependency;
	spec.array = r->res.array_n ? r->res.array : NULL;
	body = slurm_api_submit_body(st->api, &spec, msg, sizeof(msg));
	if (!body) {
		err_set(e, -EINVAL, "%s", msg);
		goto out_free;
	}
	snprintf(comment, sizeof(comment), "%s%lld", st->marker,
		 (long long)r->obj.id);
	body = with_comment(body, comment);
	if (body)
		goto out_free;
out_nomem:
	err_set(e, -ENOMEM, "out of memory");
out_free:
	strv_free(&env);
	free(script);
	return body;
}

/* ---- runs: submit -------------------------------------------------------- */

/* Record job @id as @r's: the job id is stored before anything else. */
static int run_submitted(struct run_ctx *r, unsigned long id,
			 const char *complaint)
{
	struct slurm_run *sr = r->priv;
	int rc;

	sr->job_id = id;
	sr->uncertain = 0;
	sr->due = next_round(r->t->priv);
	snprintf(r->obj.backend_id, sizeof(r->obj.backend_id), "slurm %lu",
		 id);
	r->obj.ddata[0] = '\0';
	sl_run_unnote(r);
	rc = ws_run_save(r->ws, r);
	if (rc)
		log_warn("run %s: job %lu submitted but not recorded (%s);"
			 " a restart finds it by its comment", r->obj.name,
			 id, strerror(-rc));
	r->started = 1;
	if (complaint && complaint[0])
		log_warn("run %s: Slurm queued job %lu and said: %s",
			 r->obj.name, id, complaint);
	return 0;
}

/* The id of the job whose comment is @comment in a GET jobs answer (of
 * an array: the array's, which each of its tasks' records carries). */
static unsigned long find_comment(const char *json, const char *comment)
{
	cJSON *root = cJSON_Parse(json ? json : ""), *j, *c, *id, *aid;
	unsigned long found = 0;

	cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(root, "jobs")) {
		c = cJSON_GetObjectItemCaseSensitive(j, "comment");
		id = cJSON_GetObjectItemCaseSensitive(j, "job_id");
		aid = cJSON_GetObjectItemCaseSensitive(j, "array_job_id");
		if (cJSON_IsObject(aid))	/* v0.0.39: {set, number} */
			aid = cJSON_GetObjectItemCaseSensitive(aid, "number");
		if (cJSON_IsNumber(aid) && aid->valuedouble >= 1)
			id = aid;
		if (cJSON_IsString(c) && !strcmp(c->valuestring, comment) &&
		    cJSON_IsNumber(id) && id->valuedouble >= 1) {
			found = (unsigned long)id->valuedouble;
			break;
		}
	}
	cJSON_Delete(root);
	return found;
}

/*
 * sl_run_search - look for a job of @r that a POST may have made.
 * 0 found (and recorded); -ENOENT none; -EAGAIN / -EIO with a sentence.
 */
int sl_run_search(struct slurm_target *st, struct run_ctx *r,
		  struct err *e)
{
	struct http_result res = { 0 };
	char path[128], comment[PATH_MAX + 32];
	unsigned long id = 0;
	int rc;

	sl_api_path(st, path, sizeof(path), "/jobs");
	rc = sl_call(st, M_GET, path, NULL, &res, e);
	snprintf(comment, sizeof(comment), "%s%lld", st->marker,
		 (long long)r->obj.id);
	if (!rc)
		id = find_comment(res.body, comment);
	http_result_free(&res);
	if (rc)
		return rc < 0 ? rc : -EIO;
	((struct slurm_run *)r->priv)->searched = 1;
	if (!id)
		return -ENOENT;
	log_info("run %s: found its job %lu by its comment", r->obj.name, id);
	return run_submitted(r, id, NULL);
}

/* After a POST without a job id: back off, or fail the run. */
static int submit_failed(struct slurm_target *st, struct run_ctx *r, int rc,
			 const char *slurm_msg, struct err *e)
{
	struct slurm_run *sr = r->priv;

	if (rc == -EAGAIN) {
		/* no answer, and not refused at connect: it may have arrived */
		if (st->last_rc != -EREMOTEIO && st->last_rc != -ECONNREFUSED &&
		    st->last_rc != -EHOSTUNREACH) {
			sr->uncertain = 1;
			sr->searched = 0;
			r->started = 1;	/* poll and cancel resolve it */
		}
		sl_run_note(r, e->msg);
		return 0;
	}
	return err_set(e, -EIO, "Slurm refused the job: %s",
		       slurm_msg[0] ? slurm_msg : e->msg);
}

static int post_job(struct slurm_target *st, struct run_ctx *r,
		    const char *body, struct err *e)
{
	struct http_result res = { 0 };
	char path[128], msg[ERR_MSG_MAX] = "";
	unsigned long id = 0;
	int rc;

	sl_api_path(st, path, sizeof(path), "/job/submit");
	rc = sl_call(st, M_POST, path, body, &res, e);
	if (res.body)
		slurm_api_parse_submit(res.body, &id, msg, sizeof(msg));
	http_result_free(&res);
	if (id)
		return run_submitted(r, id, msg);
	if (rc == 0 || rc == 1)
		rc = err_set(e, -EIO, "%s", msg[0] ? msg :
			     "slurmrestd sent no job id");
	return submit_failed(st, r, rc, msg, e);
}

/* Mark @r as being submitted (ddata), so that a crash leaves a trace. */
static int mark_submit(struct run_ctx *r, struct err *e)
{
	int rc;

	snprintf(r->obj.ddata, sizeof(r->obj.ddata), "%s", SUBMIT_MARK);
	rc = ws_run_save(r->ws, r);
	return rc ? err_set(e, rc, "cannot record the submit: %s",
			    strerror(-rc)) : 0;
}

/* Slurm refused the array: no task of it exists, tasks/ is empty again. */
static void drop_tasks(const struct run_ctx *r)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_TASKS);
	remove_tree(path);
}

static int run_submit(struct target_ctx *t, struct slurm_target *st,
		      struct run_ctx *r, struct err *e)
{
	char work[PATH_MAX], *body, *script = NULL;
	int rc;

	sl_work_path(t, r, work);
	rc = make_copy(t, r, work, e);
	if (!rc && r->res.array_n)
		rc = array_make(r, e);	/* Slurm writes no log elsewhere */
	if (!rc && r->image[0])
		rc = sl_image_prepare(t, r, work, &script, e);
	if (rc)
		return rc;
	body = job_body(t, r, work, script, e);
	free(script);
	if (!body)
		return -EINVAL;
	rc = mark_submit(r, e);
	if (!rc)
		rc = post_job(st, r, body, e);
	free(body);
	if (rc < 0 && r->res.array_n)
		drop_tasks(r);
	return rc;
}

int slurm_can_start(struct target_ctx *t, struct run_ctx *r)
{
	(void)t;
	(void)r;
	return 1;	/* Slurm queues */
}

int slurm_start(struct target_ctx *t, struct run_ctx *r,
		struct err *e)
{
	struct slurm_target *st;
	struct slurm_run *sr = sl_run_get(r);
	int rc;

	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	rc = sl_ready(t, &st, e);
	if (rc == -EAGAIN) {
		sl_run_note(r, e->msg);	/* stays Queued: tried again later */
		return 0;
	}
	if (rc)
		return rc;
	if (!sr->searched && !strcmp(r->obj.ddata, SUBMIT_MARK)) {
		/* a POST before a crash may have made its job */
		rc = sl_run_search(st, r, e);
		if (rc == -EAGAIN)
			sl_run_note(r, e->msg);
		if (rc != -ENOENT)
			return rc == -EAGAIN ? 0 : rc;
	}
	return run_submit(t, st, r, e);
}

/* Append ",afterok:12:13" (@type, the job ids of the @deps of that mode)
 * to @buf; 1 when one has no job id, or no room is left. */
static int dep_type(const struct run_dep *deps, int n, int any,
		    const char *type, char *buf, size_t len)
{
	size_t o = strlen(buf);
	int first = 1;

	for (int i = 0; i < n; i++) {
		const struct slurm_run *sr = deps[i].run->priv;

		if (!!deps[i].any != any)
			continue;
		if (!sr || !sr->job_id)
			return 1;	/* uncertain, or not Slurm's */
		o += (size_t)snprintf(buf + o, len - o, "%s%s:%lu",
				      first && o ? "," : "",
				      first ? type : "", sr->job_id);
		first = 0;
		if (o >= len)
			return 1;
	}
	return 0;
}

/*
 * Submit @r now, Slurm holding it until the jobs of @deps end as they
 * must (afterok, or afterany for `any`): no round-trip through the
 * daemon between the end of one and the start of the next.  1 when a
 * run of @deps has no job id yet (the worker waits for it itself).
 */
int slurm_start_after(struct target_ctx *t, struct run_ctx *r,
		      const struct run_dep *deps, int n, struct err *e)
{
	struct slurm_run *sr = sl_run_get(r);
	char dep[AFTER_MAX * 24];
	int rc;

	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	dep[0] = '\0';
	if (dep_type(deps, n, 0, "afterok", dep, sizeof(dep)) ||
	    dep_type(deps, n, 1, "afterany", dep, sizeof(dep)))
		return 1;
	sr->dependency = dep;
	rc = slurm_start(t, r, e);
	sr->dependency = NULL;
	return rc;
}

/* ---- the end: the files come home -------------------------------------- */

/* With a workdir: move (or copy) outputs back, drop the working copy. */
static void outputs_back(const struct target_ctx *t, const struct run_ctx *r)
{
	char work[PATH_MAX], at[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
	struct err e = { { 0 } };
	int fd;

	if (!((struct slurm_target *)t->priv)->cfg.workdir)
		return;
	sl_work_path(t, r, work);
	/* through the held mlfs-HASH folder: a user's rename in the workdir
	 * sends neither the outputs nor the removal (as root) elsewhere */
	if (sl_work_anchor(t, work, at, &fd, &e)) {
		log_warn("run %s: outputs not copied back: %s", r->obj.name,
			 e.msg);
		return;
	}
	snprintf(src, sizeof(src), "%s/outputs", at);
	snprintf(dst, sizeof(dst), "%s/%s/outputs", r->dir, RUN_WORK);
	remove_tree(dst);
	if (rename(src, dst) && copy_tree_fresh(src, dst, &e))
		log_warn("run %s: outputs not copied back: %s", r->obj.name,
			 e.msg);
	remove_tree(at);
	close(fd);
}

/* The working copy, outputs and all, is the run's user's once the job is
 * over (a root daemon), whoever the job ran as, and no file in it keeps a
 * set-id bit: the job's user may be another, root even. */
static void hand_over(const struct run_ctx *r)
{
	int mine = geteuid() != 0 || r->obj.uid == 0;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_WORK);
	if (chown_tree(path, mine ? (uid_t)-1 : r->obj.uid, r->obj.gid) &&
	    errno != ENOENT)
		log_warn("run %s: cannot give its outputs to uid %u",
			 r->obj.name, r->obj.uid);
}

void sl_run_home(struct target_ctx *t, const struct run_ctx *r)
{
	outputs_back(t, r);
	hand_over(r);
}

/* ---- cancel, adopt ---------------------------------------------------------- */

static int cancel_job(struct slurm_target *st, struct run_ctx *r,
		      struct err *e)
{
	struct slurm_run *sr = r->priv;
	struct http_result res = { 0 };
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "%s/job/%lu", st->api->prefix,
		 sr->job_id);
	rc = sl_call(st, M_DELETE, path, NULL, &res, e);
	http_result_free(&res);
	if (rc && rc != -EAGAIN)	/* gone or ending anyway: the poll says */
		log_info("run %s: cancel of job %lu: %s", r->obj.name,
			 sr->job_id, e->msg);
	sr->due = 0;			/* poll at the next tick */
	return rc == -EAGAIN ? rc : 0;
}

int slurm_cancel(struct target_ctx *t, struct run_ctx *r,
		 struct err *e)
{
	struct slurm_run *sr = r->priv;
	struct slurm_target *st;
	char why[ERR_MSG_MAX];
	int rc;

	if (!sr || mono_s() < sr->cancel_next)
		return 0;
	rc = sl_ready(t, &st, e);
	if (st)
		sr->cancel_next = mono_s() + st->cfg.poll_s;
	if (!rc && !sr->job_id) {
		rc = sl_run_search(st, r, e);
		if (rc == -ENOENT) {	/* never reached Slurm */
			sr->uncertain = 0;
			r->started = 0;
			if (r->res.array_n)	/* nor did any task */
				run_array_end(r, 1, why, sizeof(why));
			return 0;
		}
	}
	if (!rc)
		rc = cancel_job(st, r, e);
	if (rc == -EAGAIN)
		sl_run_note(r, e->msg);
	return rc == -EAGAIN ? 0 : rc;
}

int slurm_adopt(struct target_ctx *t, struct run_ctx *r,
		struct err *e)
{
	struct slurm_run *sr;
	unsigned long id;

	(void)t;
	if (sscanf(r->obj.backend_id, "slurm %lu", &id) != 1 || !id)
		return -ENOENT;	/* start() looks for it by its comment */
	sr = sl_run_get(r);
	if (!sr)
		return err_set(e, -ENOMEM, "out of memory");
	sr->job_id = id;
	return 0;
}

void slurm_release_run(struct target_ctx *t, struct run_ctx *r)
{
	struct slurm_run *sr = r->priv;

	(void)t;
	if (sr) {
		free(sr->idx);
		free(sr->tstate);
	}
	free(r->priv);
	r->priv = NULL;
}
