// SPDX-License-Identifier: MIT
/*
 * test_slurm_api.c — unit tests of targets/slurm_api.c on real slurmrestd
 * answers (tests/fuzz/corpus/slurm_json/, v37/v38 recorded from Slurm
 * 22.05.8; v39-synthetic-* written from the Slurm 23.02 sources) and on
 * malformed input, which must never crash (build with
 * -fsanitize=address,undefined).
 *
 * Usage: test_slurm_api [CORPUS_DIR]
 *        (default: fuzz/corpus/slurm_json beside this source file)
 * Prints one TAP line per check; exits 1 if any check fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf, strndupa, memrchr, … */
#endif
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "slurm_api.h"

/* Set in main(): argv[1], else found from this file's path. */
static const char *corpus;
static char corpus_buf[4096];
static int nchecks, nfailed;

static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	nchecks++;
	if (!ok)
		nfailed++;
	printf("%s %d - ", ok ? "ok" : "not ok", nchecks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

/* The corpus file @name, NUL-terminated; exits when it cannot be read. */
static char *load(const char *name)
{
	char path[512], *buf;
	long len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", corpus, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		printf("Bail out! cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		printf("Bail out! cannot read %s\n", path);
		exit(2);
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------ versions */

static void test_versions(void)
{
	const char *a[] = { "v0.0.36", "v0.0.38", "v0.0.37" };
	const char *b[] = { "v0.0.40", "v0.0.39", "dbv0.0.38" };
	const char *c[] = { "v0.0.36", "v0.0.99" };
	const struct slurm_api *api = slurm_api_find("v0.0.38");
	char err[256] = "", *doc;

	check(api && !strcmp(api->prefix, "/slurm/v0.0.38"),
	      "find v0.0.38 gives prefix /slurm/v0.0.38");
	check(!slurm_api_find("v0.0.36") && !slurm_api_find(NULL),
	      "find of an unknown version is NULL");
	check(slurm_api_newest(a, 3) == api, "newest of 36, 38, 37 is v0.0.38");
	check(slurm_api_newest(b, 3) == slurm_api_find("v0.0.39"),
	      "newest of 40, 39, dbv38 is v0.0.39");
	check(!slurm_api_newest(c, 2) && !slurm_api_newest(NULL, 5),
	      "no known version gives NULL");

	doc = load("v38-openapi-paths.json");
	check(slurm_api_discover(doc, err, sizeof(err)) == api,
	      "discover on the real /openapi (v37+v38) picks v0.0.38");
	free(doc);
	api = slurm_api_discover("{\"paths\":{\"/slurm/v0.0.41/ping\":{},"
				 "\"/slurm/v0.0.40/jobs\":{},\"/openapi\":{}}}",
				 err, sizeof(err));
	check(!api && !strcmp(err, "slurmrestd offers v0.0.41, v0.0.40 but mlfs "
			      "speaks only v0.0.37, v0.0.38, v0.0.39"),
	      "discover with only newer versions: \"%s\"", err);
	api = slurm_api_discover("{\"paths\":{\"/openapi\":{}}}", err, sizeof(err));
	check(!api && strstr(err, "offers no /slurm/ API"), "discover, no /slurm/: \"%s\"", err);
	api = slurm_api_discover("<html>", err, sizeof(err));
	check(!api && strstr(err, "not an OpenAPI document"), "discover on HTML: \"%s\"", err);
	check(!slurm_api_discover(NULL, NULL, 0), "discover on NULL");
	check(!slurm_api_discover("{\"paths\":{\"/slurm/v0.0.38\":{},\"/slurm/\":[],"
				  "\"/slurm/vvvvvvvvvvvvvvvvvvvvvvvvvvvvv/x\":1}}",
				  err, sizeof(err)),
	      "discover ignores malformed paths");
}

/* ------------------------------------------------------------ submit */

static const char *const env[] = { "MLFS_RUN=train-1", "B=x=y", "B=z" };

static struct slurm_job_spec full_spec(void)
{
	struct slurm_job_spec s = {
		.name = "train-1", .partition = "debug", .cwd = "/tmp/runs/train-1",
		.stdout_path = "/tmp/runs/train-1/log", .stderr_path = "/tmp/e",
		.env = env, .env_count = 3, .nodes = 2, .cpus_per_task = 3,
		.gpus_per_node = 2, .memory_mib = 4096, .time_limit_min = 60,
		.script = "python3 train.py \"quoted\"\n",
	};
	return s;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "(absent)";
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void test_submit_body_v38(void)
{
	struct slurm_job_spec s = full_spec();
	char err[256] = "", *body;
	cJSON *root, *job, *e;

	body = slurm_api_submit_body(slurm_api_find("v0.0.38"), &s, err, sizeof(err));
	root = cJSON_Parse(body);
	job = cJSON_GetObjectItem(root, "job");
	e = cJSON_GetObjectItem(job, "environment");
	check(root && job, "v38 body is JSON with a job object (%s)", err);
	check(!strcmp(jstr(root, "script"),
		      "#!/bin/bash\npython3 train.py \"quoted\"\n"),
	      "script gets a #!/bin/bash line");
	check(!strcmp(jstr(job, "name"), "train-1") &&
	      !strcmp(jstr(job, "partition"), "debug") &&
	      !strcmp(jstr(job, "current_working_directory"), "/tmp/runs/train-1") &&
	      !strcmp(jstr(job, "standard_output"), "/tmp/runs/train-1/log") &&
	      !strcmp(jstr(job, "standard_error"), "/tmp/e"),
	      "name, partition, cwd, stdout, stderr");
	check(jnum(job, "nodes") == 2 && jnum(job, "cpus_per_task") == 3 &&
	      jnum(job, "memory_per_node") == 4096 && jnum(job, "time_limit") == 60,
	      "nodes, cpus_per_task, memory_per_node, time_limit");
	check(!strcmp(jstr(job, "gres"), "gpu:2"), "v38 GPUs as gres gpu:2");
	check(!cJSON_GetObjectItem(job, "dependency"),
	      "no dependency unless asked");
	check(!cJSON_GetObjectItem(job, "array"), "no array unless asked");
	check(cJSON_IsObject(e) && !strcmp(jstr(e, "MLFS_RUN"), "train-1") &&
	      !strcmp(jstr(e, "B"), "z") && cJSON_GetArraySize(e) == 3 &&
	      !strcmp(jstr(e, "PATH"), "/usr/local/bin:/usr/bin:/bin"),
	      "v38 environment is a dict, last B wins, default PATH added");
	cJSON_Delete(root);
	free(body);
}

static void test_submit_body_v39(void)
{
	const char *const env2[] = { "PATH=/opt/bin", "A=1" };
	struct slurm_job_spec s = full_spec();
	char err[256] = "", *body;
	cJSON *root, *job, *e;

	s.env = env2;
	s.env_count = 2;
	s.script = "#!/bin/sh\ntrue\n";
	s.dependency = "afterok:12:13,afterany:14";
	s.array = "0-5%2";
	body = slurm_api_submit_body(slurm_api_find("v0.0.39"), &s, err, sizeof(err));
	root = cJSON_Parse(body);
	job = cJSON_GetObjectItem(root, "job");
	e = cJSON_GetObjectItem(job, "environment");
	check(cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
	      !strcmp(cJSON_GetArrayItem(e, 0)->valuestring, "PATH=/opt/bin"),
	      "v39 environment is a KEY=VALUE list, no PATH added when given");
	check(!strcmp(jstr(job, "tres_per_node"), "gres:gpu:2") &&
	      !cJSON_GetObjectItem(job, "gres"), "v39 GPUs as tres_per_node gres:gpu:2");
	check(!strcmp(jstr(root, "script"), "#!/bin/sh\ntrue\n"), "a #! script is kept");
	check(!strcmp(jstr(job, "dependency"), "afterok:12:13,afterany:14"),
	      "v39 dependency as Slurm's string");
	check(!strcmp(jstr(job, "array"), "0-5%2"), "array as Slurm's string");
	cJSON_Delete(root);
	free(body);
}

static void test_submit_body_minimal(void)
{
	struct slurm_job_spec s = { .cwd = "/w", .script = "true" };
	char err[256] = "", *body;
	cJSON *root, *job;

	body = slurm_api_submit_body(slurm_api_find("v0.0.37"), &s, err, sizeof(err));
	root = cJSON_Parse(body);
	job = cJSON_GetObjectItem(root, "job");
	check(job && cJSON_GetArraySize(job) == 2 &&
	      cJSON_GetObjectItem(job, "environment") &&
	      cJSON_GetObjectItem(job, "current_working_directory"),
	      "zero fields are left out: only cwd and environment");
	cJSON_Delete(root);
	free(body);
}

static void refuse(struct slurm_job_spec s, const char *want, const char *what)
{
	char err[256] = "";
	char *body = slurm_api_submit_body(slurm_api_find("v0.0.38"), &s, err,
					   sizeof(err));

	check(!body && strstr(err, want), "refused: %s: \"%s\"", what, err);
	free(body);
}

static void test_submit_body_refusals(void)
{
	const char *const bad1[] = { "NOEQUALS" };
	const char *const bad2[] = { "=value" };
	const char *const bad3[] = { NULL };
	struct slurm_job_spec s = full_spec();

	s.script = "";
	refuse(s, "the job has no script", "empty script");
	s = full_spec();
	s.cwd = "relative";
	refuse(s, "absolute working directory", "relative cwd");
	s = full_spec();
	s.env = bad1;
	s.env_count = 1;
	refuse(s, "\"NOEQUALS\" is not KEY=VALUE", "env without =");
	s.env = bad2;
	refuse(s, "is not KEY=VALUE", "env with empty key");
	s.env = bad3;
	refuse(s, "is not KEY=VALUE", "env NULL entry");
	s = full_spec();
	s.memory_mib = ~0ULL;
	refuse(s, "too large", "huge memory");
	check(!slurm_api_submit_body(NULL, NULL, NULL, 0), "NULL api and spec");
}

/* ------------------------------------------------------------ parse submit */

static void submit_case(const char *file, int want_rc, unsigned long want_id,
			const char *want_err)
{
	char err[256] = "x", *json = load(file);
	unsigned long id = 99;
	int rc = slurm_api_parse_submit(json, &id, err, sizeof(err));

	check(rc == want_rc && id == want_id && !strcmp(err, want_err),
	      "%s: rc %d id %lu err \"%s\"", file, rc, id, err);
	free(json);
}

static void test_parse_submit(void)
{
	static const char *const bad[] = {
		"", "null", "[]", "{}", "{\"job_id\":\"12\"}", "{\"job_id\":1e300}",
		"{\"job_id\":-1}", "{\"job_id\":4294967296}", "{\"job_id\":1.5}",
		"{\"errors\":\"x\"}", "{\"errors\":[1,null,{}]}", "{\"job_id\":0}",
	};
	char err[256];
	unsigned long id;
	size_t i;
	int rc;

	submit_case("v38-submit.json", 0, 3, "");
	submit_case("v37-submit.json", 0, 8, "");
	submit_case("v39-synthetic-submit.json", 0, 45, "");
	submit_case("v38-submit-noenv.json", -EIO, 0, "environment must be set");
	submit_case("v37-submit-noenv.json", -EIO, 0, "environment must be set");
	submit_case("v38-submit-badpart.json", -EIO, 0,
		    "Invalid partition name specified");
	submit_case("v38-submit-warning.json", 0, 7,
		    "Requested partition configuration not available now");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = slurm_api_parse_submit(bad[i], &id, err, sizeof(err));
		check(rc == -EBADMSG && id == 0, "malformed submit answer %s: %d \"%s\"",
		      bad[i], rc, err);
	}
	rc = slurm_api_parse_submit("{\"job_id\":4294967295}", &id, NULL, 0);
	check(rc == 0 && id == 4294967295UL, "largest job id accepted, NULL err ok");
	rc = slurm_api_parse_submit("{\"error_code\":2000,\"error\":\"Invalid partition\"}",
				    &id, err, sizeof(err));
	check(rc == -EIO && !strcmp(err, "Invalid partition"),
	      "v39 top-level submit error: \"%s\"", err);
}

/* ------------------------------------------------------------ jobs */

static int jobs_of(const char *file, struct slurm_job **jobs, size_t *n,
		   char *err, size_t len)
{
	char *json = load(file);
	int rc = slurm_api_parse_jobs(json, jobs, n, err, len);

	free(json);
	return rc;
}

static const struct slurm_job *job_by_id(const struct slurm_job *j, size_t n,
					 unsigned long id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (j[i].job_id == id)
			return &j[i];
	return NULL;
}

/* One job file: its only job must have this state, exit code and run state. */
static void job_case(const char *file, const char *state, int code,
		     const char *run, const char *why)
{
	struct slurm_job *j = NULL;
	char err[256] = "", w[256] = "";
	enum obj_state r = STATE_NONE;
	size_t n = 0;
	int rc = jobs_of(file, &j, &n, err, sizeof(err));

	if (rc == 0 && n == 1)
		r = slurm_api_run_state(&j[0], w, sizeof(w));
	check(rc == 0 && n == 1 && !strcmp(j[0].state, state) &&
	      j[0].exit_code == code && r && !strcmp(state_name(r), run) &&
	      !strcmp(w, why), "%s: %s exit %d -> %s \"%s\"", file,
	      n ? j[0].state : "-", n ? j[0].exit_code : -2,
	      r ? state_name(r) : "NULL", w);
	free(j);
}

static void test_jobs_real(void)
{
	const struct slurm_job *j3, *j5, *j6;
	struct slurm_job *j = NULL;
	char err[256] = "";
	size_t n = 0;
	int rc;

	rc = jobs_of("v38-jobs.json", &j, &n, err, sizeof(err));
	j3 = job_by_id(j, n, 3);
	j5 = job_by_id(j, n, 5);
	j6 = job_by_id(j, n, 6);
	check(rc == 0 && n == 7, "v38 GET /jobs: 7 jobs (rc %d, n %zu)", rc, n);
	check(j3 && !strcmp(j3->state, "FAILED") && j3->exit_code == 3 &&
	      !strcmp(j3->reason, "NonZeroExitCode") && !strcmp(j3->nodes, "node1"),
	      "job 3: FAILED, exit 768 -> 3, NonZeroExitCode, node1");
	check(j5 && j5->exit_code == 137 && !strcmp(j5->reason, "JobLaunchFailure"),
	      "job 5: killed by SIGKILL -> 137");
	check(j6 && !strcmp(j6->state, "PENDING") && !strcmp(j6->reason, "Resources") &&
	      !j6->nodes[0], "job 6: PENDING (Resources), no nodes");
	free(j);

	job_case("v38-job-failed-exit3.json", "FAILED", 3, "Failed",
		 "the job failed with exit code 3");
	job_case("v38-job-signaled.json", "FAILED", 137, "Failed",
		 "the job failed with exit code 137 (JobLaunchFailure)");
	job_case("v38-job-cancelled.json", "CANCELLED", 143, "Canceled", "");
	job_case("v38-job-pending.json", "PENDING", 0, "Queued", "");
	job_case("v38-job-running.json", "RUNNING", 0, "Running", "");
	job_case("v38-job-timeout.json", "TIMEOUT", 143, "Failed",
		 "the job reached its time limit");
	job_case("v37-job.json", "FAILED", 3, "Failed",
		 "the job failed with exit code 3");
}

static void unknown_case(const char *file)
{
	struct slurm_job *j = (void *)1;
	char err[256] = "";
	size_t n = 5;
	int rc = jobs_of(file, &j, &n, err, sizeof(err));

	check(rc == -ENOENT && !j && n == 0 &&
	      !strncmp(err, "Invalid job id specified (Unable to ", 36),
	      "%s: -ENOENT \"%s\"", file, err);
}

static void test_jobs_v39(void)
{
	const struct slurm_job *a, *b, *c, *d;
	struct slurm_job *j = NULL;
	char err[256] = "", why[256];
	size_t n = 0;
	int rc;

	rc = jobs_of("v39-synthetic-jobs.json", &j, &n, err, sizeof(err));
	a = job_by_id(j, n, 41);
	b = job_by_id(j, n, 42);
	c = job_by_id(j, n, 43);
	d = job_by_id(j, n, 44);
	check(rc == 0 && n == 4, "v39 jobs: 4 jobs");
	check(a && a->exit_code == 0 && b && b->exit_code == 3 && c &&
	      c->exit_code == -1 && d && d->exit_code == 143,
	      "v39 exit_code {set,number}: 0, 3, unset -> -1, 15 -> 143");
	check(d && slurm_api_run_state(d, why, sizeof(why)) == RS_FAILED &&
	      !strcmp(why, "the job reached its time limit"), "v39 TIMEOUT -> Failed");
	free(j);
}

/* The records of a job array, as v0.0.38 (22.05) and v0.0.39 give them. */
static void test_jobs_array(void)
{
	static const char v38[] = "{\"jobs\":["
		"{\"job_id\":2,\"array_job_id\":1,\"array_task_id\":0,"
		"\"job_state\":\"RUNNING\"},"
		"{\"job_id\":1,\"array_job_id\":1,\"array_task_id\":null,"
		"\"array_task_string\":\"1-5%2\",\"job_state\":\"PENDING\"},"
		"{\"job_id\":7,\"array_job_id\":0}]}";
	static const char v39[] = "{\"jobs\":["
		"{\"job_id\":4,\"array_job_id\":{\"set\":true,\"number\":3},"
		"\"array_task_id\":{\"set\":true,\"number\":9}},"
		"{\"job_id\":3,\"array_job_id\":{\"set\":true,\"number\":3},"
		"\"array_task_id\":{\"set\":false,\"number\":0}},"
		"{\"job_id\":5,\"array_task_id\":-4}]}";
	struct slurm_job *j = NULL;
	size_t n = 0;
	int rc;

	rc = slurm_api_parse_jobs(v38, &j, &n, NULL, 0);
	check(rc == 0 && n == 3 && j[0].array_job_id == 1 &&
	      j[0].array_task_id == 0 && j[1].array_job_id == 1 &&
	      j[1].array_task_id == -1 && !j[2].array_job_id &&
	      j[2].array_task_id == -1,
	      "v38 array records: task 0, the rest (null), no array");
	free(j);
	rc = slurm_api_parse_jobs(v39, &j, &n, NULL, 0);
	check(rc == 0 && n == 3 && j[0].array_job_id == 3 &&
	      j[0].array_task_id == 9 && j[1].array_task_id == -1 &&
	      !j[2].array_job_id && j[2].array_task_id == -1,
	      "v39 array records {set,number}; unset and negative -> none");
	free(j);
}

static void test_jobs_malformed(void)
{
	static const char *const cases[] = {
		"", "x", "null", "3", "[]", "{}", "{\"jobs\":{}}", "{\"jobs\":null}",
		"{\"jobs\":\"a\"}", "{\"errors\":[{\"error_number\":\"2017\"}],\"jobs\":5}",
	};
	struct slurm_job *j;
	char err[256];
	size_t n, i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = slurm_api_parse_jobs(cases[i], &j, &n, err, sizeof(err));
		check(rc == -EBADMSG && !j && !n, "jobs answer %s: -EBADMSG \"%s\"",
		      cases[i], err);
	}
	rc = slurm_api_parse_jobs("{\"jobs\":[],\"errors\":[]}", &j, &n, err, sizeof(err));
	check(rc == 0 && !j && n == 0, "empty jobs array: 0 jobs");
	rc = slurm_api_parse_jobs("{\"jobs\":[1,\"x\",{},{\"job_id\":\"5\"},"
				  "{\"job_id\":1e30},{\"job_id\":-3},[]]}",
				  &j, &n, err, sizeof(err));
	check(rc == 0 && !j && n == 0, "jobs without a usable job_id skipped");
	rc = slurm_api_parse_jobs("{\"jobs\":[],\"errors\":[{\"error_number\":1,"
				  "\"error\":\"Unspecified error\"}]}",
				  &j, &n, err, sizeof(err));
	check(rc == -EIO && !strcmp(err, "Unspecified error"), "other error: -EIO");
	rc = slurm_api_parse_jobs("{\"jobs\":[{\"job_id\":9,\"job_state\":123,"
				  "\"exit_code\":\"x\",\"state_reason\":{},\"nodes\":[]},"
				  "{\"job_id\":10,\"exit_code\":1e20,\"job_state\":[\"RUNNING\","
				  "\"COMPLETING\"]},{\"job_id\":11,\"exit_code\":-5}]}",
				  &j, &n, err, sizeof(err));
	check(rc == 0 && n == 3 && !j[0].state[0] && j[0].exit_code == -1 &&
	      !j[0].reason[0] && j[1].exit_code == -1 &&
	      !strcmp(j[1].state, "RUNNING") && j[2].exit_code == -1,
	      "wrong field types give empty/unknown values; state arrays use the first");
	free(j);
}

static void test_long_strings(void)
{
	char *json, *big = malloc(20001);
	struct slurm_job *j = NULL;
	size_t n = 0;
	int rc;

	memset(big, 'n', 20000);
	big[20000] = '\0';
	if (asprintf(&json, "{\"jobs\":[{\"job_id\":1,\"job_state\":\"%s\","
		     "\"state_reason\":\"%s\",\"nodes\":\"%s\"}]}", big, big, big) < 0)
		exit(2);
	rc = slurm_api_parse_jobs(json, &j, &n, NULL, 0);
	check(rc == 0 && n == 1 && strlen(j[0].state) == sizeof(j[0].state) - 1 &&
	      strlen(j[0].nodes) == sizeof(j[0].nodes) - 1,
	      "20 kB strings are truncated to the field size");
	free(j);
	free(json);
	free(big);
}

static void test_deep_nesting(void)
{
	size_t depth = 100000, i;
	char *json = malloc(2 * depth + 1);
	struct slurm_job *j;
	size_t n;

	for (i = 0; i < depth; i++) {
		json[i] = '[';
		json[depth + i] = ']';
	}
	json[2 * depth] = '\0';
	check(slurm_api_parse_jobs(json, &j, &n, NULL, 0) == -EBADMSG,
	      "100000 nested arrays refused without crashing");
	free(json);
}

static void test_exit_codes(void)
{
	check(slurm_api_exit_code(0) == 0 && slurm_api_exit_code(768) == 3 &&
	      slurm_api_exit_code(255 << 8) == 255,
	      "exited: 0 -> 0, 768 -> 3, 65280 -> 255");
	check(slurm_api_exit_code(15) == 143 && slurm_api_exit_code(9) == 137 &&
	      slurm_api_exit_code(9 | 0x80) == 137,
	      "signaled: 15 -> 143, 9 -> 137, 9 with core -> 137");
	check(slurm_api_exit_code(0x7f) == -1 && slurm_api_exit_code(-1) == -1 &&
	      slurm_api_exit_code(65536) == -1 && slurm_api_exit_code(1LL << 62) == -1,
	      "stopped, negative, out of range -> -1");
}

static void test_run_states(void)
{
	static const struct { const char *st, *run, *why; } t[] = {
		{ "PENDING", "Queued", "" },
		{ "REQUEUED", "Queued", "" },
		{ "CONFIGURING", "Starting", "" },
		{ "RUNNING", "Running", "" },
		{ "COMPLETING", "Running", "" },
		{ "SUSPENDED", "Running", "" },
		{ "COMPLETED", "Completed", "" },
		{ "CANCELLED", "Canceled", "" },
		{ "FAILED", "Failed", "the job failed with exit code 2 (OutOfMemory)" },
		{ "TIMEOUT", "Failed", "the job reached its time limit" },
		{ "NODE_FAIL", "Failed", "a node of the job failed" },
		{ "OUT_OF_MEMORY", "Failed", "the job ran out of memory" },
		{ "BOOT_FAIL", "Failed", "a node failed to boot for the job" },
		{ "DEADLINE", "Failed", "the job missed its deadline" },
		{ "PREEMPTED", "Failed", "the job was preempted" },
		{ "WEIRD", NULL, "" },
		{ "", NULL, "" },
	};
	struct slurm_job j = { .exit_code = 2 };
	char why[256];
	const char *r;
	size_t i;

	snprintf(j.reason, sizeof(j.reason), "OutOfMemory");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(j.state, sizeof(j.state), "%s", t[i].st);
		r = state_name(slurm_api_run_state(&j, why, sizeof(why)));
		check((t[i].run ? !strcmp(r, t[i].run) : !r[0]) &&
		      !strcmp(why, t[i].why), "state %s -> %s \"%s\"", t[i].st,
		      r[0] ? r : "NULL", why);
	}
	j.exit_code = -1;
	snprintf(j.state, sizeof(j.state), "FAILED");
	snprintf(j.reason, sizeof(j.reason), "None");
	slurm_api_run_state(&j, why, sizeof(why));
	check(!strcmp(why, "the job failed"), "FAILED, no code, no reason: \"%s\"", why);
	check(slurm_api_run_state(NULL, why, sizeof(why)) == STATE_NONE,
	      "NULL job");
}

/* ------------------------------------------------------------ nodes */

static void test_nodes_real(void)
{
	struct slurm_node *nd = NULL;
	char err[256] = "", *json;
	size_t n = 0;
	int rc;

	json = load("v38-nodes.json");
	rc = slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 2 && !strcmp(nd[0].name, "node1") &&
	      !strcmp(nd[0].state, "idle") && nd[0].cpus == 2 &&
	      nd[0].memory_mib == 24105 && nd[0].gpus == 0 &&
	      !strcmp(nd[1].name, "node2"),
	      "v38 nodes: node1 idle 2 cpus 24105 MiB 0 gpus, node2");
	check(n && slurm_api_node_in(&nd[0], "debug") &&
	      !slurm_api_node_in(&nd[0], "deb") && !slurm_api_node_in(&nd[0], "") &&
	      !slurm_api_node_in(NULL, "debug"), "node1 is in debug, not in deb");
	free(nd);
	free(json);

	json = load("v38-nodes-gres.json");
	rc = slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 2 && nd[0].gpus == 2 && nd[1].gpus == 2,
	      "v38 nodes with gres gpu:2: 2 gpus each");
	free(nd);
	free(json);

	json = load("v38-nodes-busy-drain.json");
	rc = slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 2 && !strcmp(nd[0].state, "mixed") &&
	      !strcmp(nd[1].state, "idle+drain"),
	      "v38 state and state_flags: mixed, idle+drain");
	free(nd);
	free(json);

	json = load("v37-nodes.json");
	rc = slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 2 && nd[1].cpus == 2, "v37 nodes parse");
	free(nd);
	free(json);

	json = load("v39-synthetic-nodes.json");
	rc = slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 2 && !strcmp(nd[0].state, "mixed") &&
	      nd[0].gpus == 2 && !strcmp(nd[0].partitions, "debug,gpu") &&
	      slurm_api_node_in(&nd[0], "gpu") && !strcmp(nd[1].state, "idle+drain"),
	      "v39 nodes: state arrays, gres gpu:tesla:2(S:0), two partitions");
	free(nd);
	free(json);
}

static void test_nodes_malformed(void)
{
	struct slurm_node *nd;
	char err[256];
	size_t n;
	int rc;

	rc = slurm_api_parse_nodes("{\"nodes\":{}}", &nd, &n, err, sizeof(err));
	check(rc == -EBADMSG && !nd, "nodes not an array: -EBADMSG \"%s\"", err);
	rc = slurm_api_parse_nodes("{\"nodes\":[{\"name\":5},{\"name\":\"\"},7]}",
				   &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 0 && !nd, "nodes without a name skipped");
	rc = slurm_api_parse_nodes("{\"nodes\":[{\"name\":\"a\",\"cpus\":-1,"
				   "\"real_memory\":1e300,\"gres\":7,\"state\":{},"
				   "\"state_flags\":\"DRAIN\",\"partitions\":\"p,q\"}]}",
				   &nd, &n, err, sizeof(err));
	check(rc == 0 && n == 1 && nd[0].cpus == 0 && nd[0].memory_mib == 0 &&
	      nd[0].gpus == 0 && !nd[0].state[0] && slurm_api_node_in(&nd[0], "q"),
	      "wrong types and huge numbers give zeros; CSV partitions accepted");
	free(nd);
}

static void test_gres(void)
{
	static const struct { const char *g; unsigned n; } t[] = {
		{ "gpu:2", 2 }, { "gpu:a100:4", 4 }, { "gpu:a100:2(S:0-1),gpu:v100:1", 3 },
		{ "mps:100,gpu:1", 1 }, { "gpu", 1 }, { "gpu:a100", 0 }, { "gres:gpu:3", 3 },
		{ "gres/gpu:5", 5 }, { "gpus:5", 0 }, { "gpu:99999999999999999999", 0 },
		{ "gpu:4294967295,gpu:4294967295", 4294967295U }, { "(null)", 0 },
		{ "", 0 }, { "gpu:2(IDX:0,1),gpu:1", 3 }, { "gpu:2x", 0 },
		{ ",,,gpu:1,", 1 }, { "gpu:1(((", 1 }, { "gpu:a:b:c:7", 7 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		check(slurm_api_gres_gpus(t[i].g) == t[i].n, "gres \"%s\" -> %u GPUs",
		      t[i].g, t[i].n);
	check(slurm_api_gres_gpus(NULL) == 0, "gres NULL -> 0");
}

/* ------------------------------------------------------------ partitions */

static void partition_case(const char *file, const char *name, int want_rc,
			   const char *want_nodes, const char *want_err)
{
	char nodes[64] = "x", err[256] = "", *json = load(file);
	int rc = slurm_api_partition(json, name, nodes, sizeof(nodes), err,
				     sizeof(err));

	check(rc == want_rc && !strcmp(nodes, want_nodes) &&
	      (!want_err || !strcmp(err, want_err)),
	      "%s partition %s: rc %d nodes \"%s\" err \"%s\"", file, name, rc,
	      nodes, err);
	free(json);
}

static void test_partitions(void)
{
	char nodes[64], err[256];

	partition_case("v38-partitions.json", "debug", 0, "node[1-2]", NULL);
	partition_case("v37-partitions.json", "debug", 0, "node[1-2]", NULL);
	partition_case("v38-partitions.json", "gpu", -ENOENT, "",
		       "no partition gpu in this cluster (it has debug)");
	partition_case("v39-synthetic-partitions.json", "gpu", 0, "node1", NULL);
	partition_case("v39-synthetic-partitions.json", "x", -ENOENT, "",
		       "no partition x in this cluster (it has debug, gpu)");
	check(slurm_api_partition("{\"partitions\":[]}", "a", nodes, sizeof(nodes),
				  err, sizeof(err)) == -ENOENT &&
	      strstr(err, "it has none"), "no partitions at all: \"%s\"", err);
	check(slurm_api_partition("{\"partitions\":[{\"name\":\"a\",\"nodes\":5}]}",
				  "a", nodes, sizeof(nodes), err, sizeof(err)) == 0 &&
	      !nodes[0], "partition with non-string nodes: exists, no node list");
	check(slurm_api_partition("[1]", "a", nodes, sizeof(nodes), err,
				  sizeof(err)) == -EBADMSG, "partitions answer not an object");
	check(slurm_api_partition("{}", NULL, nodes, sizeof(nodes), err,
				  sizeof(err)) == -EINVAL, "no partition name");
}

/* ------------------------------------------------------------ errors */

static void test_errors(void)
{
	char msg[256] = "", *json;
	int num = -1, rc;

	json = load("v38-delete-unknown.json");
	rc = slurm_api_parse_error(json, &num, msg, sizeof(msg));
	check(rc == 0 && num == SLURM_ERR_INVALID_JOB_ID &&
	      !strcmp(msg, "Invalid job id specified (unable to kill JobId=99999 "
		      "with signal 9: Invalid job id specified)"),
	      "DELETE unknown job: 2017 \"%s\"", msg);
	free(json);
	json = load("v38-job-unknown.json");
	rc = slurm_api_parse_error(json, &num, msg, sizeof(msg));
	check(rc == 0 && num == 2017, "GET unknown job: error_number 2017");
	free(json);
	json = load("v38-submit-noenv.json");
	rc = slurm_api_parse_error(json, &num, msg, sizeof(msg));
	check(rc == 0 && num == 2127 && !strcmp(msg, "environment must be set"),
	      "submit errors use error_code: 2127");
	free(json);
	json = load("v38-delete.json");
	rc = slurm_api_parse_error(json, &num, msg, sizeof(msg));
	check(rc == -ENOENT && num == 0, "successful DELETE: no error");
	free(json);
	rc = slurm_api_parse_error("Unable to parse query.", &num, msg, sizeof(msg));
	check(rc == -EBADMSG, "slurmrestd's plain-text 400 body: -EBADMSG \"%s\"", msg);
	rc = slurm_api_parse_error("{\"errors\":[{},{\"error_number\":1e99},"
				   "{\"error_number\":12}]}", &num, msg, sizeof(msg));
	check(rc == 0 && num == 12 && !strcmp(msg, "Slurm error 12"),
	      "errors without text: number only \"%s\"", msg);
	unknown_case("v38-job-unknown.json");
	unknown_case("v37-job-unknown.json");
	unknown_case("v39-synthetic-job-unknown.json");
}

/* ------------------------------------------------------------ robustness */

/* Every parser on json; only crashes (under ASan) would fail here. */
static void all_parsers(const char *json)
{
	struct slurm_job *j;
	struct slurm_node *nd;
	unsigned long id;
	char err[128], nodes[32];
	size_t n;
	int num;

	slurm_api_parse_submit(json, &id, err, sizeof(err));
	if (!slurm_api_parse_jobs(json, &j, &n, err, sizeof(err)))
		free(j);
	if (!slurm_api_parse_nodes(json, &nd, &n, err, sizeof(err)))
		free(nd);
	slurm_api_partition(json, "debug", nodes, sizeof(nodes), err, sizeof(err));
	slurm_api_parse_error(json, &num, err, sizeof(err));
	slurm_api_discover(json, err, sizeof(err));
}

/*
 * Each corpus file, cut short and with one byte flipped, at ~300 places
 * (every 7th byte in small files).
 */
static void test_mutations(void)
{
	struct dirent *de;
	size_t len, i, step, files = 0, runs = 0;
	char *json, *copy;
	DIR *d = opendir(corpus);

	while (d && (de = readdir(d))) {
		if (!strstr(de->d_name, ".json"))
			continue;
		json = load(de->d_name);
		len = strlen(json);
		copy = malloc(len + 1);
		step = len / 300 > 7 ? len / 300 : 7;
		for (i = 0; i < len; i += step, runs += 2) {
			memcpy(copy, json, i);
			copy[i] = '\0';
			all_parsers(copy);	/* truncated */
			memcpy(copy, json, len + 1);
			copy[i] = (char)(copy[i] ^ 0x5a);
			all_parsers(copy);	/* one byte changed */
		}
		all_parsers(json);
		free(copy);
		free(json);
		files++;
	}
	if (d)
		closedir(d);
	check(files >= 25, "%zu corpus files, %zu truncated/flipped variants parsed "
	      "without a crash", files, runs);
}

/*
 * The compiler sees this file as "../tests/test_slurm_api.c" from a meson
 * build directory (or by an absolute path), so the corpus beside it is
 * found from where tests usually run without any argument.
 */
static __attribute__((unused)) const char *default_corpus(void)
{
	const char *slash = strrchr(__FILE__, '/');
	int dir = slash ? (int)(slash - __FILE__) : 1;

	snprintf(corpus_buf, sizeof(corpus_buf), "%.*s/fuzz/corpus/slurm_json",
		 dir, slash ? __FILE__ : ".");
	return corpus_buf;
}

int main(int argc, char **argv)
{
#ifdef SLURM_CORPUS
	corpus = argc > 1 ? argv[1] : SLURM_CORPUS;
#else
	corpus = argc > 1 ? argv[1] : default_corpus();
#endif
	test_versions();
	test_submit_body_v38();
	test_submit_body_v39();
	test_submit_body_minimal();
	test_submit_body_refusals();
	test_parse_submit();
	test_jobs_real();
	test_jobs_v39();
	test_jobs_array();
	test_jobs_malformed();
	test_long_strings();
	test_deep_nesting();
	test_exit_codes();
	test_run_states();
	test_nodes_real();
	test_nodes_malformed();
	test_gres();
	test_partitions();
	test_errors();
	test_mutations();
	printf("1..%d\n", nchecks);
	if (nfailed)
		printf("# %d of %d checks failed\n", nfailed, nchecks);
	return nfailed ? 1 : 0;
}
