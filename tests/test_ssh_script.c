// SPDX-License-Identifier: MIT
/*
 * test_ssh_script.c — unit tests of targets/ssh_script.c: the paths, the
 * poll output parser, and the remote scripts run for real through the
 * local /bin/sh (no ssh needed: the scripts are what ssh would run).
 *
 *   gcc -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -Itargets \
 *       targets/ssh_script.c targets/ssh_quote.c tests/test_ssh_script.c \
 *       -o /tmp/t && /tmp/t
 */
#include "ssh_script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("not ok - %s%s%s\n", what, detail ? ": " : "",
		       detail ? detail : "");
	}
}

static void check_str(const char *what, const char *want, const char *got)
{
	char d[512];

	snprintf(d, sizeof(d), "want '%s', got '%s'", want, got);
	check(!strcmp(want, got), what, d);
}

/* ---- paths ------------------------------------------------------------- */

static void test_paths(void)
{
	char b[256];

	ssh_run_dir("~", "5-ab", b, sizeof(b));
	check_str("run dir under ~", "~/5-ab", b);
	ssh_run_dir("/srv/w/", "5-ab", b, sizeof(b));
	check_str("run dir, trailing slash", "/srv/w/5-ab", b);
	ssh_run_dir("/", "5-ab", b, sizeof(b));
	check_str("run dir under /", "/5-ab", b);
	ssh_copy_path("~/.mlfs", "5-ab", "work", b, sizeof(b));
	check_str("copy path from the home", ".mlfs/5-ab/work", b);
	ssh_copy_path("~", "5-ab", "work/outputs", b, sizeof(b));
	check_str("copy path for ~", "5-ab/work/outputs", b);
	ssh_copy_path("~/", "5-ab", "", b, sizeof(b));
	check_str("copy path for ~/", "5-ab", b);
	ssh_copy_path("/a b/c/", "5-ab", "work", b, sizeof(b));
	check_str("copy path, absolute", "/a b/c/5-ab/work", b);
	check(ssh_run_dir("/x", "5-ab", b, 4) == -ENAMETOOLONG,
	      "too long is refused", NULL);
}

/* ---- the parser -------------------------------------------------------- */

static void test_parse(void)
{
	/* junk from a login script, then two replies; the log holds a
	 * fake header and a NUL byte */
	static const char out[] =
		"Welcome!\n"
		"@@mlfs 0 running 123\n"
		"18 40\n@@mlfs 9 lost\n\0ab\n"
		"0 0\n"
		"@@mlfs 1 exited 3\n"
		"0 7\n"
		"4 4\nm 1\n";
	struct ssh_poll_reply r;
	size_t pos = 0, len = sizeof(out) - 1;

	check(ssh_poll_parse(out, len, &pos, &r) == 1, "first reply", NULL);
	check(r.index == 0 && !strcmp(r.status, "running") && r.arg == 123,
	      "… status running 123", r.status);
	check(r.log_n == 18 && r.log_size == 40 &&
	      !memcmp(r.log, "@@mlfs 9 lost\n\0ab\n", 18), "… exact log bytes",
	      NULL);
	check(r.met_n == 0, "… no metrics", NULL);
	check(ssh_poll_parse(out, len, &pos, &r) == 1, "second reply", NULL);
	check(r.index == 1 && !strcmp(r.status, "exited") && r.arg == 3,
	      "… exited 3", r.status);
	check(r.met_n == 4 && !memcmp(r.met, "m 1\n", 4), "… metrics bytes",
	      NULL);
	check(ssh_poll_parse(out, len, &pos, &r) == 0, "then the end", NULL);

	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 running 1\n99 99\nabc", 28, &pos, &r)
	      == -EINVAL, "a count past the end is refused", NULL);
	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 fresh\n-1 0\n0 0\n", 24, &pos, &r)
	      == -EINVAL, "a negative count is refused", NULL);
	pos = 0;
	check(ssh_poll_parse("nothing here\n", 13, &pos, &r) == 0,
	      "no marker: nothing", NULL);
}

/* ---- the scripts through /bin/sh --------------------------------------- */

/* Run @script with sh -c; its stdout (malloc'd) in *out. Exit status. */
static int run_sh(const char *script, char **out, size_t *len)
{
	char buf[65536];
	FILE *f = popen(script, "r");
	size_t n;
	int st;

	*out = NULL;
	*len = 0;
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	st = pclose(f);
	*out = malloc(n + 1);
	memcpy(*out, buf, n + 1);
	*len = n;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Poll @dir once; the status word and arg, the log bytes from @off. */
static int poll_one(const char *dir, long long off, struct ssh_poll_reply *r,
		    char **out)
{
	struct ssh_poll_item it = { dir, off, 1 << 20, 0, 1 << 20 };
	char *script = ssh_script_poll(&it, 1);
	size_t len, pos = 0;
	int rc;

	run_sh(script, out, &len);
	free(script);
	rc = ssh_poll_parse(*out, len, &pos, r);
	return rc;
}

/* Waits are bounded by wall time, never by a count of tries: one try (a
 * shell running the poll script) may take a second on a loaded machine. */
#define WAIT_S	60

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait up to WAIT_S for the run in @dir to leave "running"/"starting". */
static void wait_end(const char *dir, struct ssh_poll_reply *r)
{
	char *out;

	for (double end = now_s() + WAIT_S; now_s() < end;) {
		poll_one(dir, 0, r, &out);
		free(out);
		if (strcmp(r->status, "running") && strcmp(r->status, "starting"))
			return;
		usleep(50000);
	}
}

static char *launch(const char *dir, const char *cmd, const char *const *env)
{
	struct ssh_launch l = { dir, "r'1", cmd, NULL, env };
	char *script = ssh_script_launch(&l), *out;
	size_t len;

	run_sh(script, &out, &len);
	free(script);
	return out;
}

static void test_run(const char *tmp)
{
	static const char *const env[] = {
		"TRICKY", "a'b $(echo no) `x` \"q\"\nline2", NULL
	};
	char dir[512], *create, *out;
	struct ssh_poll_reply r;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/w d/7-abc", tmp);
	check(poll_one(dir, 0, &r, &out) == 1 && !strcmp(r.status, "nodir"),
	      "poll: nodir before create", r.status);
	free(out);
	create = ssh_script_create(dir);
	run_sh(create, &out, &len);
	check(strstr(out, "fresh") != NULL, "create: fresh", out);
	free(out);
	check(poll_one(dir, 0, &r, &out) == 1 && !strcmp(r.status, "fresh"),
	      "poll: fresh after create", r.status);
	free(out);

	out = launch(dir, "printf '%s|%s\\n' \"$TRICKY\" \"$MLFS_RUN\";"
		     " echo 'm 1' >> \"$MLFS_METRICS\"; exit 3", env);
	check(!strncmp(out, "started ", 8), "launch: started PID", out);
	free(out);
	wait_end(dir, &r);
	check(!strcmp(r.status, "exited") && r.arg == 3, "poll: exited 3",
	      r.status);
	poll_one(dir, 0, &r, &out);
	check(r.log_n == r.log_size && r.log_n > 0 &&
	      !memcmp(r.log, "a'b $(echo no) `x` \"q\"\nline2|r'1\n",
		      r.log_n), "env and name arrive literally in the log",
	      NULL);
	check(r.met_n == 4 && !memcmp(r.met, "m 1\n", 4), "metrics file",
	      NULL);
	free(out);
	poll_one(dir, 4, &r, &out);
	check(r.log_n == r.log_size - 4, "poll from an offset", NULL);
	free(out);

	out = launch(dir, "echo twice >> log2", NULL);
	check(!strcmp(out, "launched\n"), "a second launch is refused", out);
	free(out);
	run_sh(create, &out, &len);
	check(!strcmp(out, "launched\n"), "create after launch says launched",
	      out);
	free(out);
	free(create);
}

/* Inputs, import mlfs and params on the host: MLFS_INPUT_*, py/mlfs.py
 * last on PYTHONPATH, $MLFS_PARAMS brought back as the third chunk. */
static void test_params_inputs(const char *tmp)
{
	static const char *const in[] = {
		"MLFS_INPUT_D", "/cache/k 'x'", NULL
	};
	static const char *const env[] = { "PYTHONPATH", "/mine", NULL };
	char dir[512], *s, *out;
	struct ssh_poll_item it = { 0 };
	struct ssh_poll_reply r;
	struct ssh_launch l = { 0 };
	size_t len, pos = 0;

	snprintf(dir, sizeof(dir), "%s/9-par", tmp);
	s = ssh_script_create(dir);
	run_sh(s, &out, &len);
	free(s);
	free(out);
	l.dir = dir;
	l.name = "p";
	l.command = "echo 'lr 0.1' >> \"$MLFS_PARAMS\"; echo \"$MLFS_INPUT_D\";"
		    " echo \"$PYTHONPATH\"; cat \"${PYTHONPATH##*:}/mlfs.py\"";
	l.env = env;
	l.inputs = in;
	l.pylib = "# it's mlfs\n";
	s = ssh_script_launch(&l);
	run_sh(s, &out, &len);
	free(s);
	check(!strncmp(out, "started ", 8), "launch with inputs: started", out);
	free(out);
	wait_end(dir, &r);
	it = (struct ssh_poll_item){ dir, 0, 1 << 20, 0, 1 << 20, 0, 1 << 20 };
	s = ssh_script_poll(&it, 1);
	run_sh(s, &out, &len);
	free(s);
	check(ssh_poll_parse(out, len, &pos, &r) == 1 && r.par_n == 7 &&
	      r.par_size == 7 && !memcmp(r.par, "lr 0.1\n", 7),
	      "$MLFS_PARAMS comes back as the third chunk", NULL);
	check(r.log && r.log_n > 0 && memmem(r.log, r.log_n, "/cache/k 'x'\n", 13),
	      "MLFS_INPUT_D is the path given", NULL);
	check(r.log && r.log_n > 0 && memmem(r.log, r.log_n, "/mine:/", 7) &&
	      memmem(r.log, r.log_n, "/9-par/py\n# it's mlfs\n", 22),
	      "PYTHONPATH: the run's, then py/ with mlfs.py", NULL);
	free(out);
}

static void test_signal(const char *tmp)
{
	char dir[512], *s, *out;
	struct ssh_poll_reply r;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/8-def", tmp);
	s = ssh_script_create(dir);
	run_sh(s, &out, &len);
	free(s);
	free(out);
	free(launch(dir, "sleep 30", NULL));
	poll_one(dir, 0, &r, &out);
	check(!strcmp(r.status, "running") && r.arg > 0, "poll: running PID",
	      r.status);
	free(out);
	s = ssh_script_signal(dir, "TERM");
	check(run_sh(s, &out, &len) == 0, "signal TERM", NULL);
	free(s);
	free(out);
	wait_end(dir, &r);
	check(!strcmp(r.status, "exited") && r.arg == 143,
	      "TERM: the wrapper records 143", r.status);
}

/* Create l->dir and launch @l there: what the launch printed. */
static char *create_launch(const struct ssh_launch *l)
{
	char *s = ssh_script_create(l->dir), *out;
	size_t len;

	run_sh(s, &out, &len);
	free(s);
	free(out);
	s = ssh_script_launch(l);
	run_sh(s, &out, &len);
	free(s);
	return out;
}

/* ---- arrays: the poll's extra parts, the launcher ------------------------ */

static void test_parse_array(void)
{
	/* an array run's reply (its events, two task logs, one holding a
	 * fake "+t" header), then a plain one */
	static const char out[] =
		"@@mlfs 0 running 5\n0 0\n0 0\n0 0\n"
		"+ev 4 9\ns 0\n"
		"+t 0 10 10\nab\n+t 3 1\n+t 2 0 4\n"
		"@@mlfs 1 lost\n0 0\n0 0\n";
	struct ssh_task_reply t;
	struct ssh_poll_reply r;
	size_t pos = 0, tp = 0;

	check(ssh_poll_parse(out, sizeof(out) - 1, &pos, &r) == 1 &&
	      r.ev_n == 4 && r.ev_size == 9 && !memcmp(r.ev, "s 0\n", 4),
	      "array reply: the events chunk", NULL);
	check(ssh_poll_task(&r, &tp, &t) == 1 && t.idx == 0 && t.log_n == 10 &&
	      !memcmp(t.log, "ab\n+t 3 1\n", 10), "… task 0's log, bytes as they"
	      " are", NULL);
	check(ssh_poll_task(&r, &tp, &t) == 1 && t.idx == 2 && t.log_n == 0 &&
	      t.log_size == 4, "… task 2: nothing new of 4 bytes", NULL);
	check(ssh_poll_task(&r, &tp, &t) == 0, "… then no more tasks", NULL);
	check(ssh_poll_parse(out, sizeof(out) - 1, &pos, &r) == 1 &&
	      !strcmp(r.status, "lost") && !r.ev && !r.tasks_len,
	      "the next reply: no array parts", r.status);
	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 lost\n0 0\n0 0\n+ev 0 0\n+t x 1 1\n",
			     40, &pos, &r) == -EINVAL,
	      "a bad task header is refused", NULL);
	pos = 0;
	check(ssh_poll_parse("@@mlfs 0 lost\n0 0\n0 0\n+ev 0 0\n+t 1 9 9\nab",
			     43, &pos, &r) == -EINVAL,
	      "a task log shorter than said is refused", NULL);
}

static void test_array(const char *tmp)
{
	struct ssh_launch l = { 0 };
	struct ssh_task_ask asks[2] = { { 2, 0, 100 }, { 7, 0, 3 } };
	struct ssh_poll_item it = { 0 };
	struct ssh_task_reply t;
	struct ssh_poll_reply r;
	char dir[512], *s, *out, ev[256];
	size_t len, pos = 0, tp = 0;

	snprintf(dir, sizeof(dir), "%s/10-arr", tmp);
	l.dir = dir;
	l.name = "a";
	l.command = "echo i$MLFS_ARRAY_INDEX/$MLFS_ARRAY_COUNT;"
		    " [ $MLFS_ARRAY_INDEX != 4 ] || exit 5";
	l.array = "0-4:2'; touch /tmp/pwned; '";
	l.array_max = 2;
	check(ssh_script_launch(&l) == NULL, "an array spec with a quote is"
	      " refused", NULL);
	l.array = "0-4:2,7";
	out = create_launch(&l);
	check(!strncmp(out, "started ", 8), "array launch: started", out);
	free(out);
	wait_end(dir, &r);
	check(!strcmp(r.status, "exited") && r.arg == 5,
	      "the launcher exits with the failed task's code", r.status);
	it = (struct ssh_poll_item){ dir, 0, 1 << 20, 0, 1 << 20, 0, 1 << 20,
				     1, 0, 1 << 20, asks, 2 };
	s = ssh_script_poll(&it, 1);
	run_sh(s, &out, &len);
	free(s);
	check(ssh_poll_parse(out, len, &pos, &r) == 1 && r.ev_n == r.ev_size,
	      "poll: all of tasks.ev", NULL);
	snprintf(ev, sizeof(ev), "%.*s", (int)r.ev_n, r.ev);
	check(strstr(ev, "s 0\n") && strstr(ev, "e 0 0 5 Completed\n") &&
	      strstr(ev, "e 4 5 5 Failed\n") && strstr(ev, "e 7 0 5 Completed\n")
	      && !strstr(ev, "s 1\n"), "tasks.ev: starts and ends, indices"
	      " 0 2 4 7 only", ev);
	check(ssh_poll_task(&r, &tp, &t) == 1 && t.idx == 2 && t.log_n == 5 &&
	      !memcmp(t.log, "i2/4\n", 5), "task 2's log: its index, the"
	      " count", NULL);
	check(ssh_poll_task(&r, &tp, &t) == 1 && t.idx == 7 && t.log_n == 3 &&
	      t.log_size == 5, "task 7's log: at most the cap asked", NULL);
	check(strstr(r.log, "mlfs: task 4 ended (exit 5)\n") != NULL,
	      "the run's log says when a task ended", NULL);
	free(out);
}

/* ---- procs_per_node: the launcher ---------------------------------------- */

/* Launch @cmd with @n processes and 6 GPUs in a fresh folder; wait. */
static char *ranks_run(const char *tmp, const char *rid, const char *cmd,
		       int n, struct ssh_poll_reply *r)
{
	struct ssh_launch l = { NULL, "rk", cmd, "0,1,2,3,4,5", NULL, n };
	char dir[512], *out;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, rid);
	l.dir = dir;
	free(create_launch(&l));
	wait_end(dir, r);
	poll_one(dir, 0, r, &out);
	return out;
}

static void test_ranks(const char *tmp)
{
	static const char *const want[] = {
		"0: 0/3/0/3/0/127.0.0.1/0,1\n", "1: 1/3/1/3/0/127.0.0.1/2,3\n",
		"2: 2/3/2/3/0/127.0.0.1/4,5\n",
	};
	struct ssh_poll_reply r;
	char *out, *log;

	out = ranks_run(tmp, "9-rk", "echo \"$RANK/$WORLD_SIZE/$LOCAL_RANK/"
			"$LOCAL_WORLD_SIZE/$NODE_RANK/$MASTER_ADDR/"
			"$CUDA_VISIBLE_DEVICES\"; test -n \"$MASTER_PORT\"",
			3, &r);
	check(!strcmp(r.status, "exited") && r.arg == 0,
	      "ranks: 3 processes exited 0", r.status);
	log = strndup(r.log ? r.log : "", r.log_n);
	for (int i = 0; i < 3; i++)
		check(strstr(log, want[i]) != NULL,
		      "ranks: a rank's variables and GPUs, prefixed", log);
	free(log);
	free(out);
	out = ranks_run(tmp, "10-rk",
			"[ $RANK = 1 ] && exit 4; exec sleep 1000", 3, &r);
	check(!strcmp(r.status, "exited") && r.arg == 4,
	      "ranks: the first failure is the run's code and ends the others",
	      r.status);
	free(out);
}

/* ---- deployments -------------------------------------------------------- */

#define SECRET "k3y-s3cr3t-0f-the-test"

/* A server that listens on $PORT (no SO_REUSEPORT) and says what it got. */
static const char listener[] =
	"exec python3 -c 'import os, socket, time\n"
	"s = socket.socket(); s.bind((\"127.0.0.1\", int(os.environ[\"PORT\"])))\n"
	"s.listen()\n"
	"print(\"key=\" + os.environ[\"MLFS_KEY\"], \"cwd=\" + os.getcwd(),"
	" \"model=\" + os.environ[\"AZUREML_MODEL_DIR\"],"
	" \"env=\" + os.environ.get(\"GREETING\", \"-\") + \"|\", flush=True)\n"
	"time.sleep(600)'";	/* TERMed by the test; 60 s ran out under load */

/* A server with a liveness port of its own, as mlfs-serve.py has: both
 * answer any request with a status line. */
static const char live_server[] =
	"exec python3 -c 'import os, socket, threading\n"
	"def serve(s):\n"
	"    while True:\n"
	"        c = s.accept()[0]; c.recv(100)\n"
	"        c.sendall(b\"HTTP/1.1 200 OK\\r\\n\\r\\n\"); c.close()\n"
	"a = socket.socket(); a.bind((\"127.0.0.1\", int(os.environ[\"PORT\"])))\n"
	"b = socket.socket(); b.bind((\"127.0.0.1\", 0))\n"
	"a.listen(); b.listen()\n"
	"threading.Thread(target=serve, args=(a,)).start()\n"
	"serve(b)'";

static char *dep_run(char *script)
{
	char *out;
	size_t len;

	run_sh(script, &out, &len);
	free(script);
	return out;
}

/* Launch @cmd as replica @rep of generation folder @g. */
static char *dep_launch(const char *g, const char *rep, int port, int check,
			const char *cmd)
{
	struct ssh_dep_launch l = {
		.gen_dir = g, .rep = rep, .mark = 1, .model_id = "7",
		.port = port, .check_port = check, .seed = 12345,
		.command = cmd, .entry = "score.py", .host = "127.0.0.1",
		.name = "d'1", .slot = 1,
	};

	return dep_run(ssh_script_dep_launch(&l));
}

/* Poll replica @dir once (asking whether it listens on @port, sending
 * @sig, removing @trash); the reply in @r, the output to free in *out. */
static int dep_poll(const char *dir, int port, const char *sig,
		    const char *const *trash, struct ssh_poll_reply *r,
		    char **out)
{
	struct ssh_dep_item it = { dir, 0, 1 << 20, port, sig };
	char *script = ssh_script_dep_poll(&it, 1, trash);
	size_t len, pos = 0;

	run_sh(script, out, &len);
	free(script);
	return ssh_poll_parse(*out, len, &pos, r);
}

/* Poll replica @dir, probing its liveness next to @port, until a probe
 * answers @want (10 s at most); the reply in @r. */
static int dep_poll_live(const char *dir, int port, int want,
			 struct ssh_poll_reply *r, char **out)
{
	struct ssh_dep_item it = { .dir = dir, .log_max = 1 << 20,
				   .live_port = port };
	char *script = ssh_script_dep_poll(&it, 1, NULL);
	size_t len, pos;
	int rc = 0;

	for (double end = now_s() + WAIT_S; now_s() < end;) {
		pos = 0;
		run_sh(script, out, &len);
		rc = ssh_poll_parse(*out, len, &pos, r);
		if (rc != 1 || r->live == want)
			break;
		free(*out);
		*out = NULL;
		usleep(100000);
	}
	free(script);
	return rc;
}

/* Poll until the status is @want (10 s at most). */
static int dep_wait(const char *dir, int port, const char *want,
		    struct ssh_poll_reply *r, char **out)
{
	for (double end = now_s() + WAIT_S; now_s() < end;) {
		*out = NULL;
		if (dep_poll(dir, port, NULL, NULL, r, out) == 1 &&
		    !strcmp(r->status, want))
			return 1;
		free(*out);
		*out = NULL;
		usleep(50000);
	}
	return 0;
}

/* Does the ERE @re match the command line of any process?  (Write it so
 * that it does not match itself, as "k[e]y".) */
static int in_some_cmdline(const char *re)
{
	char cmd[256], *out;
	size_t len;
	int found;

	snprintf(cmd, sizeof(cmd), "for f in /proc/[0-9]*/cmdline; do"
		 " tr '\\0' ' ' 2>/dev/null < $f; echo; done | grep -cE '%s'",
		 re);
	run_sh(cmd, &out, &len);
	found = atoi(out) > 0;
	free(out);
	return found;
}

/* A generation folder as the daemon's copies leave it: serve/env with
 * the deployment's env lines, some of them named as the wrapper's own
 * variables (which they must not disturb). */
static void dep_gen(const char *g)
{
	char cmd[1200], *out;
	size_t len;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/code' '%s/model' '%s/serve' &&"
		 " echo m > '%s/model/m.txt' && printf '%%s\\n' '" SECRET "'"
		 " > '%s/serve/key'", g, g, g, g, g);
	run_sh(cmd, &out, &len);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s/serve/env", g);
	f = fopen(cmd, "w");
	if (f) {
		fputs("export GREETING='it'\\''s here'\nexport d='/nowhere'\n"
		      "export g='/nowhere'\nexport i='exit 3'\n", f);
		fclose(f);
	}
}

static void test_dep_stage(const char *tmp)
{
	char g1[512], g2[512], p[600], *out;
	struct stat st;

	snprintf(g1, sizeof(g1), "%s/w d/deploy-1-ab/g1", tmp);
	snprintf(g2, sizeof(g2), "%s/w d/deploy-1-ab/g2", tmp);
	out = dep_run(ssh_script_dep_stage(g1, "7"));
	check(strstr(out, "fresh") && !strstr(out, "staged") &&
	      !strstr(out, "model"), "stage: a new generation is fresh", out);
	free(out);
	dep_gen(g1);
	free(dep_launch(g1, "r0-x", 0, 0, "true"));	/* marks it staged */
	out = dep_run(ssh_script_dep_stage(g1, "7"));
	check(!strcmp(out, "staged\n"), "stage: staged after the first launch",
	      out);
	free(out);
	out = dep_run(ssh_script_dep_stage(g2, "7"));
	snprintf(p, sizeof(p), "%s/model/m.txt", g2);
	check(strstr(out, "model\n") && strstr(out, "fresh") && !stat(p, &st),
	      "stage: the same model version is copied on the host", out);
	free(out);
	out = dep_run(ssh_script_dep_stage(g2, "8"));
	check(!strstr(out, "model") && stat(p, &st),
	      "stage: another version is not, and the old copy is gone", out);
	free(out);
	snprintf(p, sizeof(p), "%s/w d/deploy-1-ab/g3", tmp);
	out = dep_run(ssh_script_dep_stage(p, "7"));
	free(out);
	{
		struct ssh_dep_launch l = { .gen_dir = p, .rep = "r1-y",
					    .model_id = "7", .command = "true",
					    .host = "0.0.0.0", .name = "d",
					    .slot = 1 };

		out = dep_run(ssh_script_dep_launch(&l));
	}
	check(!strncmp(out, "fail the deployment's files are not complete",
		       44), "launch: an unstaged generation is refused", out);
	free(out);
}

/* @text into @dir/stats, as mlfs-serve writes it. */
static void stats_write(const char *dir, const char *text)
{
	char path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stats", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Write @text to @dir/stats; the next poll of @dir says @want. */
static void dep_stats(const char *dir, const char *text, int want,
		      const char *what)
{
	struct ssh_poll_reply r;
	char *out;

	stats_write(dir, text);
	dep_poll(dir, 0, NULL, NULL, &r, &out);
	check(!strcmp(r.status, "running") && r.in_flight == want, what, out);
	free(out);
}

/* Write @text to @dir/stats; a poll asking its direct port says @want
 * (0: none said). */
static void dep_direct(const char *dir, const char *text, int want,
		       const char *what)
{
	struct ssh_dep_item it = { .dir = dir, .log_max = 1 << 20,
				   .direct_ask = 1 };
	struct ssh_poll_reply r;
	char *out = NULL, *script;
	size_t len, pos = 0;

	stats_write(dir, text);
	script = ssh_script_dep_poll(&it, 1, NULL);
	run_sh(script, &out, &len);
	free(script);
	check(ssh_poll_parse(out, len, &pos, &r) == 1 &&
	      !strcmp(r.status, "running") && r.direct_port == want, what, out);
	free(out);
}

static void test_dep_serve(const char *tmp)
{
	char g[512], dir[600], path[64], *out;
	struct ssh_poll_reply r;
	long pid;
	int port = 0, ok;

	snprintf(g, sizeof(g), "%s/w d/deploy-2-cd/g1", tmp);
	free(dep_run(ssh_script_dep_stage(g, "7")));
	dep_gen(g);
	out = dep_launch(g, "r1-a", 0, 0, listener);
	ok = sscanf(out, "started %ld %*u %d", &pid, &port) == 2;
	check(ok && pid > 0 && port >= 1024, "launch: started PID START PORT,"
	      " on a port it picked", out);
	free(out);
	snprintf(dir, sizeof(dir), "%s/r1-a", g);
	check(dep_wait(dir, port, "ready", &r, &out) && r.arg == pid,
	      "poll: ready PID once its group listens", r.status);
	free(out);
	check(in_some_cmdline("mlfs-replic[a] .*/g1 "),
	      "the wrapper is seen in the command lines", NULL);
	check(!in_some_cmdline("k3y-s3cr3[t]-0f"), "the key is on no command"
	      " line", NULL);
	dep_poll(dir, 0, NULL, NULL, &r, &out);
	check(!strcmp(r.status, "running") && r.arg == pid,
	      "poll: running when not asked whether it listens", r.status);
	check(r.log_n > 0 && memmem(r.log, r.log_n, "key=" SECRET " ", 27) &&
	      memmem(r.log, r.log_n, "/code model=", 12) &&
	      memmem(r.log, r.log_n, "/g1/model env=", 14),
	      "the server has the key, runs in code/, sees model/", NULL);
	check(r.log_n > 0 && memmem(r.log, r.log_n, "env=it's here|", 14),
	      "the server has serve/env's lines (d, g, i harmless)", NULL);
	check(r.in_flight == -1, "poll: in flight unknown without R/stats",
	      out);
	free(out);
	dep_stats(dir, "in_flight 3\n", 3, "poll: fN, what R/stats says");
	dep_stats(dir, "in_flight 5\nin_flight 9\n", 5,
		  "poll: stats: the first line only");
	dep_stats(dir, "in_flight x\n", -1, "poll: stats not a count: f-");
	dep_stats(dir, "in_flight 99999999\n", -1,
		  "poll: stats: 8 digits are not a count");
	snprintf(path, sizeof(path), "in_flight 0\ndirect_port %d\n", port);
	dep_direct(dir, path, port, "poll: dP, a direct port its own group"
		   " listens on");
	snprintf(path, sizeof(path), "direct_port %d\n", port == 1 ? 2 : 1);
	dep_direct(dir, path, 0, "poll: no dP for a port it does not listen"
		   " on");
	dep_direct(dir, "direct_port 123456\n", 0,
		   "poll: no dP for 6 digits");
	dep_direct(dir, "in_flight 0\n", 0, "poll: no dP without the line");
	out = dep_launch(g, "r2-a", port, 1, listener);
	snprintf(dir, sizeof(dir), "busy %d\n", port);
	check(!strcmp(out, dir), "launch: a fixed port already taken is busy",
	      out);
	free(out);

	snprintf(dir, sizeof(dir), "%s/r1-a", g);
	dep_poll(dir, 0, "TERM", NULL, &r, &out);
	free(out);
	check(dep_wait(dir, 0, "exited", &r, &out) && r.arg == 143,
	      "TERM: exited 143", r.status);
	free(out);
}

static void test_dep_live(const char *tmp)
{
	char g[512], dir[600], cmd[700], *out;
	struct ssh_poll_reply r;
	long pid;
	int port = 0;
	size_t len;

	snprintf(g, sizeof(g), "%s/deploy-4-ab/g1", tmp);
	free(dep_run(ssh_script_dep_stage(g, "7")));
	dep_gen(g);
	out = dep_launch(g, "r1-l", 0, 0, live_server);
	sscanf(out, "started %ld %*u %d", &pid, &port);
	free(out);
	snprintf(dir, sizeof(dir), "%s/r1-l", g);
	check(dep_wait(dir, port, "ready", &r, &out), "live: the server is"
	      " ready", r.status);
	free(out);
	dep_poll(dir, 0, NULL, NULL, &r, &out);
	check(r.live == SSH_LIVE_NOT_ASKED, "live: not probed unless asked",
	      out);
	free(out);
	dep_poll_live(dir, port, SSH_LIVE_OK, &r, &out);
	check(!strcmp(r.status, "running") && r.arg == pid &&
	      r.live == SSH_LIVE_OK, "live: its own port answers", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "kill -STOP %ld", pid);
	run_sh(cmd, &out, &len);
	free(out);
	dep_poll_live(dir, port, SSH_LIVE_FAILED, &r, &out);
	check(!strcmp(r.status, "running") && r.live == SSH_LIVE_FAILED,
	      "live: a stopped server does not answer", out);
	free(out);
	dep_poll(dir, 0, "KILL", NULL, &r, &out);
	free(out);
	snprintf(cmd, sizeof(cmd), "kill -CONT %ld 2>/dev/null", pid);
	run_sh(cmd, &out, &len);
	free(out);
	check(dep_wait(dir, 0, "lost", &r, &out), "live: KILL ends it",
	      r.status);
	free(out);

	out = dep_launch(g, "r2-l", 0, 0, listener);
	sscanf(out, "started %ld %*u %d", &pid, &port);
	free(out);
	snprintf(dir, sizeof(dir), "%s/r2-l", g);
	check(dep_wait(dir, port, "ready", &r, &out), "live: a user's server"
	      " is ready", r.status);
	free(out);
	dep_poll_live(dir, port, SSH_LIVE_NONE, &r, &out);
	check(!strcmp(r.status, "running") && r.live == SSH_LIVE_NONE,
	      "live: a user's server has no liveness port", out);
	free(out);
	dep_poll(dir, 0, "KILL", NULL, &r, &out);
	free(out);
}

static void test_dep_ends(const char *tmp)
{
	char g[512], dir[600], cmd[700], *out, *tr[2] = { dir, NULL };
	struct ssh_poll_reply r;
	size_t len;

	snprintf(g, sizeof(g), "%s/deploy-3-ef/g1", tmp);
	free(dep_run(ssh_script_dep_stage(g, "7")));
	dep_gen(g);
	free(dep_launch(g, "r1-b", 0, 0, "echo 'init() failed: ValueError: x'"
			" > \"$MLFS_ERROR_FILE\"; echo traceback; exit 3"));
	snprintf(dir, sizeof(dir), "%s/r1-b", g);
	check(dep_wait(dir, 0, "exited", &r, &out) && r.arg == 3 &&
	      r.met_n > 0 && !memcmp(r.met, "init() failed: ValueError: x\n",
				     r.met_n) &&
	      r.log_n == 10 && !memcmp(r.log, "traceback\n", 10),
	      "a start failure: exited 3, its line in err, the log", r.status);
	free(out);

	/* the wrapper KILLed, the server alive: still running, and TERM
	 * still reaches the server (its group is the wrapper's) */
	free(dep_launch(g, "r2-b", 0, 0, "exec sleep 30"));
	snprintf(dir, sizeof(dir), "%s/r2-b", g);
	snprintf(cmd, sizeof(cmd), "kill -KILL $(cut -d' ' -f1 '%s/pid')", dir);
	run_sh(cmd, &out, &len);
	free(out);
	usleep(100000);
	dep_poll(dir, 0, NULL, NULL, &r, &out);
	check(!strcmp(r.status, "running"), "the wrapper killed: the server"
	      " still runs", r.status);
	free(out);
	dep_poll(dir, 0, "TERM", NULL, &r, &out);
	free(out);
	check(dep_wait(dir, 0, "lost", &r, &out), "... TERM ends it: lost (no"
	      " exit status without the wrapper)", r.status);
	free(out);

	/* the whole group KILLed */
	free(dep_launch(g, "r3-b", 0, 0, "exec sleep 30"));
	snprintf(dir, sizeof(dir), "%s/r3-b", g);
	dep_poll(dir, 0, "KILL", NULL, &r, &out);
	free(out);
	check(dep_wait(dir, 0, "lost", &r, &out), "KILL: lost", r.status);
	free(out);
	dep_poll(dir, 0, NULL, (const char *const *)tr, &r, &out);
	check(!strcmp(r.status, "nodir"), "trash: the folder is removed first",
	      r.status);
	free(out);
}

int main(void)
{
	char tmp[] = "/tmp/test_ssh_script.XXXXXX", cmd[600], *out;
	size_t len;

	test_paths();
	test_parse();
	test_parse_array();
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_run(tmp);
	test_signal(tmp);
	test_params_inputs(tmp);
	test_ranks(tmp);
	test_array(tmp);
	test_dep_stage(tmp);
	test_dep_serve(tmp);
	test_dep_live(tmp);
	test_dep_ends(tmp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	run_sh(cmd, &out, &len);
	free(out);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
