// SPDX-License-Identifier: MIT
/*
 * slurm_api.c — slurmrestd JSON: request bodies and answer parsers.
 *
 * Shapes were checked against slurmrestd 22.05.8 (openapi/v0.0.37 and
 * v0.0.38, answers saved under tests/fuzz/corpus/slurm_json/) and against
 * the Slurm 23.02 sources for v0.0.39 (data_parser/v0.0.39/parsers.c).
 * Readers accept the shape of every version in the table, so an answer
 * parses whichever version produced it; only request bodies differ by
 * version, and those differences are the table's columns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf, strndupa, memrchr, … */
#endif
#include <ctype.h>
#include <errno.h>
#include <math.h>	/* isfinite() */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slurm_api.h"

/*
 * The versions mlfs speaks, oldest first (slurm_api_newest() relies on the
 * order).  Answer shapes, for the readers below:
 *   v0.0.37, v0.0.38 (Slurm 21.08–22.05): job exit_code a number (raw wait
 *     status); node "state" a lower-case string plus "state_flags" [..];
 *     partition "nodes" a string.  Errors: {error_number|error_code, error,
 *     description, source}.
 *   v0.0.39 (Slurm 23.02): exit_code {"set","infinite","number"}; node
 *     "state" ["IDLE","DRAIN"]; partition "nodes" {"configured", "total"}.
 *     Submit takes environment as ["K=V"] and GPUs as tres_per_node.
 */
static const struct slurm_api api_table[] = {
	{
		.name		= "v0.0.37",
		.prefix		= "/slurm/v0.0.37",
		.env_as_list	= false,
		.gres_key	= "gres",
		.gres_prefix	= "gpu:",
	},
	{
		.name		= "v0.0.38",
		.prefix		= "/slurm/v0.0.38",
		.env_as_list	= false,
		.gres_key	= "gres",
		.gres_prefix	= "gpu:",
	},
	{
		.name		= "v0.0.39",
		.prefix		= "/slurm/v0.0.39",
		.env_as_list	= true,
		.gres_key	= "tres_per_node",
		.gres_prefix	= "gres:gpu:",
	},
};

#define API_COUNT (sizeof(api_table) / sizeof(api_table[0]))

static int say(char *buf, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes one sentence into buf (if given) and returns rc. */
static int say(char *buf, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (buf && len) {
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void copy(char *dst, size_t len, const char *src)
{
	if (dst && len)
		snprintf(dst, len, "%s", src ? src : "");
}

/* ------------------------------------------------------------ versions */

const struct slurm_api *slurm_api_find(const char *version)
{
	size_t i;

	for (i = 0; version && i < API_COUNT; i++)
		if (!strcmp(api_table[i].name, version))
			return &api_table[i];
	return NULL;
}

const struct slurm_api *slurm_api_newest(const char *const *versions,
					 size_t n)
{
	const struct slurm_api *best = NULL, *a;
	size_t i;

	for (i = 0; versions && i < n; i++) {
		a = slurm_api_find(versions[i]);
		if (a && (!best || a > best))
			best = a;
	}
	return best;
}

/* Copies the "vX.Y.Z" of a path "/slurm/vX.Y.Z/…" into v; 0 if not one. */
static int path_version(const char *path, char *v, size_t len)
{
	const char *p, *end;

	if (strncmp(path, "/slurm/v", 8))
		return 0;
	p = path + 7;
	end = strchr(p, '/');
	if (!end || (size_t)(end - p) >= len)
		return 0;
	memcpy(v, p, (size_t)(end - p));
	v[end - p] = '\0';
	return 1;
}

#define MAX_OFFERED 16

/* Adds v to the list of offered versions unless already there or full. */
static void offer(char offered[][16], size_t *n, const char *v)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (!strcmp(offered[i], v))
			return;
	if (*n < MAX_OFFERED)
		copy(offered[(*n)++], 16, v);
}

static void join_names(char *buf, size_t len, const char *const *names,
		       size_t n)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i ? ", " : "", names[i]);
}

static int unknown_versions(char offered[][16], size_t n, char *err,
			    size_t errlen)
{
	const char *have[MAX_OFFERED], *known[API_COUNT];
	char a[256], b[128];
	size_t i;

	for (i = 0; i < n; i++)
		have[i] = offered[i];
	for (i = 0; i < API_COUNT; i++)
		known[i] = api_table[i].name;
	join_names(a, sizeof(a), have, n);
	join_names(b, sizeof(b), known, API_COUNT);
	return say(err, errlen, -ENOTSUP,
		   "slurmrestd offers %s but mlfs speaks only %s", a, b);
}

const struct slurm_api *slurm_api_discover(const char *openapi_json,
					   char *err, size_t errlen)
{
	char offered[MAX_OFFERED][16], v[16];
	const char *names[MAX_OFFERED] = { NULL };
	const struct slurm_api *api;
	cJSON *root, *paths, *p;
	size_t n = 0, i;

	root = cJSON_Parse(openapi_json ? openapi_json : "");
	paths = cJSON_GetObjectItemCaseSensitive(root, "paths");
	if (!cJSON_IsObject(paths)) {
		cJSON_Delete(root);
		say(err, errlen, -EBADMSG,
		    "the answer to GET /openapi is not an OpenAPI document with paths");
		return NULL;
	}
	cJSON_ArrayForEach(p, paths)
		if (p->string && path_version(p->string, v, sizeof(v)))
			offer(offered, &n, v);
	cJSON_Delete(root);
	for (i = 0; i < n; i++)
		names[i] = offered[i];
	api = slurm_api_newest(names, n);
	if (!api && !n)
		say(err, errlen, -ENOTSUP,
		    "slurmrestd offers no /slurm/ API (is it started with -s openapi/v0.0.38?)");
	else if (!api)
		unknown_versions(offered, n, err, errlen);
	return api;
}

/* ------------------------------------------------------------ readers */

/*
 * A number, or the {"set": true, "number": N} wrapper of v0.0.39+.  False
 * when absent, unset, infinite, not finite or outside [min, max], or not an
 * integer.
 */
static bool read_int(const cJSON *v, double min, double max, long long *out)
{
	const cJSON *set;
	double d;

	if (cJSON_IsObject(v)) {
		set = cJSON_GetObjectItemCaseSensitive(v, "set");
		if (cJSON_IsFalse(set) ||
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "infinite")))
			return false;
		v = cJSON_GetObjectItemCaseSensitive(v, "number");
	}
	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!isfinite(d) || d < min || d > max)
		return false;
	if ((double)(long long)d != d)	/* in range, so the cast is defined */
		return false;
	*out = (long long)d;
	return true;
}

static bool field_int(const cJSON *obj, const char *key, double min,
		      double max, long long *out)
{
	return read_int(cJSON_GetObjectItemCaseSensitive(obj, key), min, max,
			out);
}

/* A string field, or the first string of an array (v0.0.40 job_state). */
static const char *field_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsArray(v))
		v = cJSON_GetArrayItem(v, 0);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends the strings of array arr to buf, each lower-cased, after sep. */
static void join_array(char *buf, size_t len, const cJSON *arr,
		       const char *sep, bool lower)
{
	const cJSON *e;
	size_t used = strlen(buf);
	char *p;

	if (!cJSON_IsArray(arr))
		return;
	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e) || !e->valuestring[0] || used >= len)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 used ? sep : "", e->valuestring);
	}
	for (p = buf; lower && *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* The root object, or NULL with -EBADMSG in *rc and a sentence. */
static cJSON *parse_root(const char *json, const char *what, int *rc,
			 char *err, size_t errlen)
{
	cJSON *root = cJSON_Parse(json ? json : "");

	if (cJSON_IsObject(root))
		return root;
	cJSON_Delete(root);
	*rc = say(err, errlen, -EBADMSG, "the %s answer from slurmrestd is not a JSON object",
		  what);
	return NULL;
}

/* ------------------------------------------------------------ errors */

/* Sentence of one errors[] entry; 0 if the entry has no text at all. */
static int error_sentence(const cJSON *e, int *number, char *msg,
			  size_t msglen)
{
	const char *text = field_str(e, "error");
	const char *desc = field_str(e, "description");
	long long num = 0;

	if (!field_int(e, "error_number", INT32_MIN, INT32_MAX, &num))
		field_int(e, "error_code", INT32_MIN, INT32_MAX, &num);
	*number = (int)num;
	if (text && !*text)
		text = NULL;
	if (desc && (!*desc || (text && !strcmp(desc, text))))
		desc = NULL;
	if (text && desc)
		say(msg, msglen, 0, "%s (%s)", text, desc);
	else if (text || desc)
		copy(msg, msglen, text ? text : desc);
	else if (num)
		say(msg, msglen, 0, "Slurm error %lld", num);
	else
		return 0;
	return 1;
}

/* The first error of root's "errors"; 0 found, -ENOENT none. */
static int first_error(const cJSON *root, int *number, char *msg,
		       size_t msglen)
{
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
	const cJSON *e;

	*number = 0;
	if (!cJSON_IsArray(errors))
		return -ENOENT;
	cJSON_ArrayForEach(e, errors)
		if (cJSON_IsObject(e) && error_sentence(e, number, msg, msglen))
			return 0;
	*number = 0;
	return -ENOENT;
}

int slurm_api_parse_error(const char *json, int *number, char *msg,
			  size_t msglen)
{
	cJSON *root;
	int rc = 0;

	*number = 0;
	root = parse_root(json, "error", &rc, msg, msglen);
	if (!root)
		return rc;
	rc = first_error(root, number, msg, msglen);
	cJSON_Delete(root);
	return rc;
}

static bool has_error(const cJSON *root)
{
	int number;

	return !first_error(root, &number, NULL, 0);
}

/* An answer with no usable payload: Slurm's error, or a shape complaint. */
static int payload_error(const cJSON *root, const char *what, char *err,
			 size_t errlen)
{
	int number;

	if (first_error(root, &number, err, errlen))
		return say(err, errlen, -EBADMSG,
			   "the %s answer from slurmrestd has no \"%s\" array",
			   what, what);
	return number == SLURM_ERR_INVALID_JOB_ID ? -ENOENT : -EIO;
}

/* ------------------------------------------------------------ submit */

static bool add_str(cJSON *obj, const char *key, const char *val)
{
	return !val || cJSON_AddStringToObject(obj, key, val);
}

static bool add_num(cJSON *obj, const char *key, unsigned long long val)
{
	return !val || cJSON_AddNumberToObject(obj, key, (double)val);
}

/* Adds one KEY=VALUE to env (a list or a dict, by the version). */
static int add_env(const struct slurm_api *api, cJSON *env, const char *kv,
		   char *err, size_t errlen)
{
	const char *eq = kv ? strchr(kv, '=') : NULL;
	char *key;
	cJSON *val;

	if (!eq || eq == kv)
		return say(err, errlen, -EINVAL,
			   "environment entry \"%.40s\" is not KEY=VALUE",
			   kv ? kv : "(null)");
	if (api->env_as_list)
		return cJSON_AddItemToArray(env, cJSON_CreateString(kv)) ? 0 :
		       say(err, errlen, -ENOMEM, "out of memory");
	key = strndup(kv, (size_t)(eq - kv));
	val = cJSON_CreateString(eq + 1);
	if (key && val) {
		cJSON_DeleteItemFromObjectCaseSensitive(env, key);
		if (cJSON_AddItemToObject(env, key, val))
			val = NULL;
	}
	free(key);
	if (val) {
		cJSON_Delete(val);
		return say(err, errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

static bool has_path(const struct slurm_job_spec *spec)
{
	size_t i;

	for (i = 0; i < spec->env_count; i++)
		if (spec->env[i] && !strncmp(spec->env[i], "PATH=", 5))
			return true;
	return false;
}

static cJSON *make_env(const struct slurm_api *api,
		       const struct slurm_job_spec *spec, char *err,
		       size_t errlen)
{
	cJSON *env = api->env_as_list ? cJSON_CreateArray() :
					cJSON_CreateObject();
	size_t i;
	int rc = env ? 0 : say(err, errlen, -ENOMEM, "out of memory");

	for (i = 0; !rc && i < spec->env_count; i++)
		rc = add_env(api, env, spec->env[i], err, errlen);
	if (!rc && !has_path(spec))
		rc = add_env(api, env, "PATH=/usr/local/bin:/usr/bin:/bin",
			     err, errlen);
	if (rc) {
		cJSON_Delete(env);
		return NULL;
	}
	return env;
}

/* Fills the "job" object of a submit body; false when out of memory. */
static bool fill_job(const struct slurm_api *api, cJSON *job,
		     const struct slurm_job_spec *s)
{
	char gres[32];

	snprintf(gres, sizeof(gres), "%s%u", api->gres_prefix,
		 s->gpus_per_node);
	return add_str(job, "name", s->name) &&
	       add_str(job, "partition", s->partition) &&
	       add_str(job, "current_working_directory", s->cwd) &&
	       add_str(job, "standard_output", s->stdout_path) &&
	       add_str(job, "standard_error", s->stderr_path) &&
	       add_num(job, "nodes", s->nodes) &&
	       add_num(job, "cpus_per_task", s->cpus_per_task) &&
	       add_num(job, "tasks_per_node", s->tasks_per_node) &&
	       add_str(job, api->gres_key, s->gpus_per_node ? gres : NULL) &&
	       add_num(job, "memory_per_node", s->memory_mib) &&
	       add_num(job, "time_limit", s->time_limit_min) &&
	       /* a string in every version of the table (v0.0.37-39) */
	       add_str(job, "dependency", s->dependency) &&
	       /* "0-99%8": the grammar of lib/array.h is Slurm's */
	       add_str(job, "array", s->array);
}

static char *script_text(const char *script)
{
	char *s = NULL;

	if (!strncmp(script, "#!", 2))
		return strdup(script);
	/* Without a #! line the job FAILS with "Exec format error". */
	if (asprintf(&s, "#!/bin/bash\n%s", script) < 0)
		return NULL;
	return s;
}

static int check_spec(const struct slurm_api *api,
		      const struct slurm_job_spec *spec, char *err,
		      size_t errlen)
{
	if (!api || !spec)
		return say(err, errlen, -EINVAL, "no API version or job given");
	if (!spec->script || !*spec->script)
		return say(err, errlen, -EINVAL, "the job has no script");
	if (!spec->cwd || spec->cwd[0] != '/')
		return say(err, errlen, -EINVAL,
			   "the job needs an absolute working directory");
	if (spec->memory_mib > (1ULL << 52))
		return say(err, errlen, -EINVAL, "memory %llu MiB is too large",
			   spec->memory_mib);
	if (spec->env_count && !spec->env)
		return say(err, errlen, -EINVAL, "environment count without entries");
	return 0;
}

char *slurm_api_submit_body(const struct slurm_api *api,
			    const struct slurm_job_spec *spec,
			    char *err, size_t errlen)
{
	cJSON *root, *job, *env;
	char *script, *out = NULL;

	if (check_spec(api, spec, err, errlen))
		return NULL;
	script = script_text(spec->script);
	root = cJSON_CreateObject();
	if (!script || !root || !cJSON_AddStringToObject(root, "script", script))
		goto out_nomem;
	job = cJSON_AddObjectToObject(root, "job");	/* owned by root */
	if (!job)
		goto out_nomem;
	env = make_env(api, spec, err, errlen);
	if (!env)
		goto out_free_root;
	if (!cJSON_AddItemToObject(job, "environment", env)) {
		cJSON_Delete(env);
		goto out_nomem;
	}
	if (!fill_job(api, job, spec))
		goto out_nomem;
	out = cJSON_PrintUnformatted(root);
	if (out)
		goto out_free_root;
out_nomem:
	say(err, errlen, -ENOMEM, "out of memory");
out_free_root:
	cJSON_Delete(root);
	free(script);
	return out;
}

int slurm_api_parse_submit(const char *json, unsigned long *job_id,
			   char *err, size_t errlen)
{
	const char *top;
	long long id;
	cJSON *root;
	int rc = 0, number;

	*job_id = 0;
	if (err && errlen)
		err[0] = '\0';
	root = parse_root(json, "submit", &rc, err, errlen);
	if (!root)
		return rc;
	if (first_error(root, &number, err, errlen)) {
		/* v0.0.39 also reports a submit error at the top level */
		top = field_str(root, "error");
		copy(err, errlen, top);
	}
	if (field_int(root, "job_id", 1, UINT32_MAX, &id)) {
		*job_id = (unsigned long)id;
		rc = 0;
	} else if (err && errlen && err[0]) {
		rc = -EIO;
	} else {
		rc = say(err, errlen, -EBADMSG,
			 "the submit answer from slurmrestd has no job_id and no error");
	}
	cJSON_Delete(root);
	return rc;
}

/* ------------------------------------------------------------ jobs */

int slurm_api_exit_code(long long status)
{
	int sig;

	if (status < 0 || status > 0xffff)
		return -1;
	sig = (int)(status & 0x7f);
	if (sig == 0)
		return (int)((status >> 8) & 0xff);	/* exited */
	if (sig == 0x7f)
		return -1;				/* stopped, not ended */
	return 128 + sig;				/* killed by sig */
}

static bool read_job(const cJSON *o, struct slurm_job *j)
{
	long long v;

	memset(j, 0, sizeof(*j));
	if (!field_int(o, "job_id", 1, UINT32_MAX, &v))
		return false;
	j->job_id = (unsigned long)v;
	copy(j->state, sizeof(j->state), field_str(o, "job_state"));
	copy(j->reason, sizeof(j->reason), field_str(o, "state_reason"));
	copy(j->nodes, sizeof(j->nodes), field_str(o, "nodes"));
	j->exit_code = field_int(o, "exit_code", 0, INT32_MAX, &v) ?
		       slurm_api_exit_code(v) : -1;
	if (field_int(o, "array_job_id", 1, UINT32_MAX, &v))
		j->array_job_id = (unsigned long)v;
	/* v0.0.38: null for the record of the tasks not yet started */
	j->array_task_id = field_int(o, "array_task_id", 0, UINT32_MAX - 1,
				     &v) ? (long)v : -1;
	return true;
}

/*
 * Runs read_one over each object of root[key] into a malloc'd array of
 * size-byte elements.  0, -ENOMEM, or payload_error() when key is absent.
 */
static int read_array(const cJSON *root, const char *key, size_t size,
		      bool (*read_one)(const cJSON *, void *), void **out,
		      size_t *n, char *err, size_t errlen)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key), *e;
	size_t count = 0;
	char *v;

	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr))
		return payload_error(root, key, err, errlen);
	if (!cJSON_GetArraySize(arr))	/* none, or an error like 2017 */
		return has_error(root) ? payload_error(root, key, err, errlen) : 0;
	v = calloc((size_t)cJSON_GetArraySize(arr), size);
	if (!v)
		return say(err, errlen, -ENOMEM, "out of memory");
	cJSON_ArrayForEach(e, arr)
		if (cJSON_IsObject(e) && read_one(e, v + count * size))
			count++;
	if (!count) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = count;
	return 0;
}

static bool read_job_cb(const cJSON *o, void *dst)
{
	return read_job(o, dst);
}

int slurm_api_parse_jobs(const char *json, struct slurm_job **jobs, size_t *n,
			 char *err, size_t errlen)
{
	cJSON *root;
	int rc = 0;

	*jobs = NULL;
	*n = 0;
	root = parse_root(json, "jobs", &rc, err, errlen);
	if (!root)
		return rc;
	rc = read_array(root, "jobs", sizeof(**jobs), read_job_cb,
			(void **)jobs, n, err, errlen);
	cJSON_Delete(root);
	return rc;
}

/* Slurm job states that mean the run failed, with the sentence for each. */
static const struct {
	const char *state;
	const char *why;
} failed_states[] = {
	{ "TIMEOUT",       "the job reached its time limit" },
	{ "NODE_FAIL",     "a node of the job failed" },
	{ "OUT_OF_MEMORY", "the job ran out of memory" },
	{ "BOOT_FAIL",     "a node failed to boot for the job" },
	{ "DEADLINE",      "the job missed its deadline" },
	{ "PREEMPTED",     "the job was preempted" },
	{ "SPECIAL_EXIT",  "the job ended with a special exit code" },
};

/* Slurm job states that map straight to an mlfs state. */
static const struct {
	const char *state;
	enum obj_state run;
} plain_states[] = {
	{ "PENDING",      RS_QUEUED },
	{ "REQUEUED",     RS_QUEUED },
	{ "REQUEUE_HOLD", RS_QUEUED },
	{ "REQUEUE_FED",  RS_QUEUED },
	{ "CONFIGURING",  RS_STARTING },
	{ "RUNNING",      RS_RUNNING },
	{ "COMPLETING",   RS_RUNNING },
	{ "SIGNALING",    RS_RUNNING },
	{ "STAGE_OUT",    RS_RUNNING },
	{ "RESIZING",     RS_RUNNING },
	/* mlfs has no paused state: a suspended job is still under way */
	{ "SUSPENDED",    RS_RUNNING },
	{ "STOPPED",      RS_RUNNING },
	{ "COMPLETED",    RS_COMPLETED },
	{ "CANCELLED",    RS_CANCELED },
};

static void failed_why(const struct slurm_job *job, char *why, size_t len)
{
	bool reason = job->reason[0] && strcmp(job->reason, "None") &&
		      strcmp(job->reason, "NonZeroExitCode");

	if (job->exit_code >= 0 && reason)
		say(why, len, 0, "the job failed with exit code %d (%s)",
		    job->exit_code, job->reason);
	else if (job->exit_code >= 0)
		say(why, len, 0, "the job failed with exit code %d",
		    job->exit_code);
	else if (reason)
		say(why, len, 0, "the job failed (%s)", job->reason);
	else
		say(why, len, 0, "the job failed");
}

enum obj_state slurm_api_run_state(const struct slurm_job *job, char *why,
				   size_t whylen)
{
	size_t i;

	copy(why, whylen, "");
	if (!job)
		return STATE_NONE;
	for (i = 0; i < sizeof(plain_states) / sizeof(plain_states[0]); i++)
		if (!strcmp(job->state, plain_states[i].state))
			return plain_states[i].run;
	if (!strcmp(job->state, "FAILED")) {
		failed_why(job, why, whylen);
		return RS_FAILED;
	}
	for (i = 0; i < sizeof(failed_states) / sizeof(failed_states[0]); i++)
		if (!strcmp(job->state, failed_states[i].state)) {
			copy(why, whylen, failed_states[i].why);
			return RS_FAILED;
		}
	return STATE_NONE;
}

/* ------------------------------------------------------------ nodes */

/* End of the gres entry starting at p: the first ',' outside "(…)". */
static const char *gres_entry_end(const char *p)
{
	int depth = 0;

	for (; *p && (*p != ',' || depth > 0); p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
	}
	return p;
}

/*
 * GPUs in one entry [p, end): "gpu", "gpu:2", "gpu:a100:2", each maybe
 * followed by "(S:0-1)" or "(IDX:0,1)"; other gres names count 0.
 */
static unsigned long long gres_entry_gpus(const char *p, const char *end)
{
	const char *stop, *colon;
	unsigned long long n;
	char *num_end;

	if (!strncmp(p, "gres:", 5) || !strncmp(p, "gres/", 5))
		p += 5;
	stop = memchr(p, '(', (size_t)(end - p));
	if (!stop)
		stop = end;
	if (stop - p < 3 || strncmp(p, "gpu", 3) ||
	    (p + 3 != stop && p[3] != ':'))
		return 0;
	colon = memrchr(p, ':', (size_t)(stop - p));
	if (!colon)
		return 1;	/* a bare "gpu" means one */
	if (!isdigit((unsigned char)colon[1]))
		return 0;	/* "gpu:type" without a count */
	errno = 0;
	n = strtoull(colon + 1, &num_end, 10);
	if (errno || num_end != stop)
		return 0;
	return n;
}

unsigned slurm_api_gres_gpus(const char *gres)
{
	unsigned long long total = 0, n;
	const char *p = gres, *end;

	while (p && *p) {
		end = gres_entry_end(p);
		n = gres_entry_gpus(p, end);
		total = n > UINT32_MAX - total ? UINT32_MAX : total + n;
		p = *end ? end + 1 : end;
	}
	return (unsigned)total;
}

/* "idle", "idle+drain": base state and flags, lower case. */
static void node_state(const cJSON *o, char *buf, size_t len)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");

	buf[0] = '\0';
	if (cJSON_IsString(st))
		copy(buf, len, st->valuestring);
	else if (cJSON_IsArray(st))
		join_array(buf, len, st, "+", true);
	join_array(buf, len, cJSON_GetObjectItemCaseSensitive(o, "state_flags"),
		   "+", true);
}

static bool read_node(const cJSON *o, void *dst)
{
	struct slurm_node *nd = dst;
	const cJSON *parts;
	const char *name = field_str(o, "name");
	long long v;

	if (!name || !*name)
		return false;
	memset(nd, 0, sizeof(*nd));
	copy(nd->name, sizeof(nd->name), name);
	node_state(o, nd->state, sizeof(nd->state));
	if (field_int(o, "cpus", 0, UINT32_MAX, &v))
		nd->cpus = (unsigned)v;
	if (field_int(o, "real_memory", 0, 1e15, &v))
		nd->memory_mib = (unsigned long long)v;
	nd->gpus = slurm_api_gres_gpus(field_str(o, "gres"));
	if (field_str(o, "reason"))
		copy(nd->reason, sizeof(nd->reason), field_str(o, "reason"));
	parts = cJSON_GetObjectItemCaseSensitive(o, "partitions");
	if (cJSON_IsArray(parts))
		join_array(nd->partitions, sizeof(nd->partitions), parts, ",",
			   false);
	else if (cJSON_IsString(parts))
		copy(nd->partitions, sizeof(nd->partitions), parts->valuestring);
	return true;
}

int slurm_api_parse_nodes(const char *json, struct slurm_node **nodes,
			  size_t *n, char *err, size_t errlen)
{
	cJSON *root;
	int rc = 0;

	*nodes = NULL;
	*n = 0;
	root = parse_root(json, "nodes", &rc, err, errlen);
	if (!root)
		return rc;
	rc = read_array(root, "nodes", sizeof(**nodes), read_node,
			(void **)nodes, n, err, errlen);
	if (rc == -ENOENT)
		rc = -EIO;
	cJSON_Delete(root);
	return rc;
}

bool slurm_api_node_in(const struct slurm_node *node, const char *partition)
{
	size_t len = partition ? strlen(partition) : 0;
	const char *p;

	if (!node || !len)
		return false;
	for (p = node->partitions; (p = strstr(p, partition)); p += len)
		if ((p == node->partitions || p[-1] == ',') &&
		    (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

/* ------------------------------------------------------------ partitions */

/* A partition's node list: "nodes" string, or "nodes"."configured" (v0.0.39). */
static const char *partition_nodes(const cJSON *p)
{
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(p, "nodes");

	if (cJSON_IsObject(nodes))
		return field_str(nodes, "configured");
	return cJSON_IsString(nodes) ? nodes->valuestring : NULL;
}

static int no_partition(const cJSON *arr, const char *name, char *err,
			size_t errlen)
{
	char names[256] = "";
	const cJSON *e;
	const char *n;
	size_t used = 0;

	cJSON_ArrayForEach(e, arr) {
		n = field_str(e, "name");
		if (n && used < sizeof(names))
			used += (size_t)snprintf(names + used,
						 sizeof(names) - used, "%s%s",
						 used ? ", " : "", n);
	}
	if (!used)
		return say(err, errlen, -ENOENT,
			   "no partition %s in this cluster (it has none)", name);
	return say(err, errlen, -ENOENT,
		   "no partition %s in this cluster (it has %s)", name, names);
}

int slurm_api_partition(const char *json, const char *name, char *nodes,
			size_t nodeslen, char *err, size_t errlen)
{
	const cJSON *arr, *e;
	const char *pname;
	cJSON *root;
	int rc = 0;

	copy(nodes, nodeslen, "");
	if (!name || !*name)
		return say(err, errlen, -EINVAL, "no partition name given");
	root = parse_root(json, "partitions", &rc, err, errlen);
	if (!root)
		return rc;
	arr = cJSON_GetObjectItemCaseSensitive(root, "partitions");
	if (!cJSON_IsArray(arr)) {
		rc = payload_error(root, "partitions", err, errlen);
		goto out_free_root;
	}
	cJSON_ArrayForEach(e, arr) {
		pname = field_str(e, "name");
		if (pname && !strcmp(pname, name))
			break;
	}
	if (e)
		copy(nodes, nodeslen, partition_nodes(e));
	else
		rc = no_partition(arr, name, err, errlen);
out_free_root:
	cJSON_Delete(root);
	return rc;
}
