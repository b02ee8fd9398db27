// SPDX-License-Identifier: MIT
/*
 * The podman run of a run in an environment (targets/container.c): the
 * words both targets get, who runs the command, the env file's order.
 */
#include "../targets/container.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

/* The words, each followed by '\n', into one buffer. */
struct words {
	char buf[8192];
	int n;
};

static void add(void *ctx, const char *w)
{
	struct words *ws = ctx;

	strncat(ws->buf, w, sizeof(ws->buf) - strlen(ws->buf) - 2);
	strcat(ws->buf, "\n");
	ws->n++;
}

static const struct ct_spec base = {
	.podman = "/usr/bin/podman", .name = "mlfs-0000abcd-7",
	.uid = 1000, .gid = 1001, .nofile = 1024, .nproc = 2048,
	.pids = 4096, .work = "/h/d/work", .metrics = "/h/d/metrics",
	.params = "/h/d/params", .lib = "/h/d/py", .env_file = "/h/d/ct.env",
	.image = "sha256:abc", .command = "echo 'a b'\nid",
};

static void test_args(void)
{
	static const char head[] = "/usr/bin/podman\nrun\n--rm\n"
		"--name=mlfs-0000abcd-7\n--runtime=runc\n--init\n";
	struct words w = { 0 };
	struct ct_spec c = base;

	ct_args(&c, add, &w);
	CHECK(!strncmp(w.buf, head, strlen(head)),
	      "podman run --rm --name --runtime=runc --init first");
	CHECK(strstr(w.buf, "\n--user=1000:1001\n--cap-drop=all\n"
		     "--security-opt=no-new-privileges\n") != NULL,
	      "the given ids, no capability, no new privileges");
	CHECK(!strstr(w.buf, "keep-id") && !strstr(w.buf, "--network") &&
	      !strstr(w.buf, "--log-level"), "rootful, podman's network");
	CHECK(strstr(w.buf, "\n--ulimit=nofile=1024:1024\n"
		     "--ulimit=nproc=2048:2048\n--pids-limit=4096\n") != NULL,
	      "limits");
	CHECK(!strstr(w.buf, "--memory") && !strstr(w.buf, "--cpus"),
	      "no memory or cpus unless asked");
	CHECK(strstr(w.buf, "\n--volume=/h/d/work:/work\n--workdir=/work\n"
		     "--volume=/h/d/metrics:/mlfs/metrics.raw\n"
		     "--volume=/h/d/params:/mlfs/params.raw\n"
		     "--volume=/h/d/py:/mlfs/lib:ro\n"
		     "--env-file=/h/d/ct.env\nsha256:abc\n/bin/sh\n-c\n"
		     "echo 'a b'\nid\n") != NULL,
	      "mounts, env file, image, the command as one last word");
	CHECK(w.n == 22, "22 words (%d)", w.n);
}

static void test_rootless(void)
{
	struct words w = { 0 };
	struct ct_spec c = base;

	c.keep_id = 1;
	c.quiet = 1;
	c.network = "host";
	c.memory_mib = 512;
	c.cpu_milli = 1500;
	ct_args(&c, add, &w);
	CHECK(!strncmp(w.buf, "/usr/bin/podman\n--log-level=error\nrun\n", 38),
	      "quiet: --log-level=error before run");
	CHECK(strstr(w.buf, "\n--userns=keep-id\n--user=1000:1001\n") != NULL,
	      "rootless: keep-id, then the login's ids");
	CHECK(strstr(w.buf, "\n--network=host\n") != NULL, "--network=host");
	CHECK(strstr(w.buf, "\n--memory=512m\n--cpus=1.500\n") != NULL,
	      "--memory and --cpus");
}

static void test_env(void)
{
	struct kv items[] = {
		{ "X", "1 2" }, { "PYTHONPATH", "/mine" }, { "HOME", "/h" },
	};
	struct kv_list env = { items, 3 };
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	ct_env(f, "r1", "", &env);
	fclose(f);
	CHECK(!strcmp(buf, "HOME=/work\nLANG=C.UTF-8\nMLFS_RUN=r1\n"
		      "MLFS_OUTPUTS=/work/outputs\n"
		      "MLFS_METRICS=/mlfs/metrics.raw\n"
		      "MLFS_PARAMS=/mlfs/params.raw\nX=1 2\nHOME=/h\n"
		      "PYTHONPATH=/mine:/mlfs/lib\n"),
	      "mlfs's lines, theirs after (they win), PYTHONPATH last: %s",
	      buf);
	free(buf);
	f = open_memstream(&buf, &len);
	env.n = 0;
	ct_env(f, "r1", "2,3", &env);
	fclose(f);
	CHECK(strstr(buf, "CUDA_VISIBLE_DEVICES=0,1\n") &&
	      strstr(buf, "\nPYTHONPATH=/mlfs/lib\n"),
	      "GPUs 2,3 are 0,1 inside; no PYTHONPATH");
	free(buf);
}

/* Inputs, GPUs by CDI, variables passed per task, a launcher. */
static void test_extras(void)
{
	static const struct ct_input in[] = {
		{ "train", "/s/ct.inputs/train" }, { "f", "/s/ct.inputs/f" },
	};
	static const char *const launcher[] = { "/mlfs/lib/mlfs-ranks", "2",
						NULL };
	struct words w = { 0 };
	struct ct_spec c = base;
	char *buf = NULL;
	size_t len;
	FILE *f;

	c.inputs = in;
	c.ninputs = 2;
	c.gpus = "1,3";
	c.pass_env = ct_array_env;
	c.launcher = launcher;
	ct_args(&c, add, &w);
	CHECK(strstr(w.buf, "\n--volume=/h/d/py:/mlfs/lib:ro\n"
		     "--volume=/s/ct.inputs/train:/mlfs/inputs/train:ro\n"
		     "--volume=/s/ct.inputs/f:/mlfs/inputs/f:ro\n"
		     "--device=nvidia.com/gpu=1\n--device=nvidia.com/gpu=3\n"
		     "--env=MLFS_ARRAY_INDEX\n--env=MLFS_ARRAY_COUNT\n"
		     "--env-file=/h/d/ct.env\nsha256:abc\n"
		     "/mlfs/lib/mlfs-ranks\n2\necho 'a b'\nid\n") != NULL,
	      "inputs read-only, a device a GPU, --env=NAME, the launcher"
	      " before the command: %s", w.buf);
	CHECK(w.n == 28, "28 words (%d)", w.n);
	memset(&w, 0, sizeof(w));
	c = base;
	c.gpus = "";
	ct_args(&c, add, &w);
	CHECK(!strstr(w.buf, "--device") && !strstr(w.buf, "inputs") &&
	      !strstr(w.buf, "--env=") && w.n == 22, "none: the same 22 words");
	f = open_memstream(&buf, &len);
	ct_env_inputs(f, in, 2);
	fclose(f);
	CHECK(!strcmp(buf, "MLFS_INPUT_train=/mlfs/inputs/train\n"
		      "MLFS_INPUT_f=/mlfs/inputs/f\n"), "MLFS_INPUT_NAME: %s",
	      buf);
	free(buf);
}

static void test_gpus_inside(void)
{
	char out[64];

	ct_gpus_inside("5", out, sizeof(out));
	CHECK(!strcmp(out, "0"), "5 -> 0");
	ct_gpus_inside("0,2,7", out, sizeof(out));
	CHECK(!strcmp(out, "0,1,2"), "0,2,7 -> 0,1,2");
	ct_gpus_inside("", out, sizeof(out));
	CHECK(!strcmp(out, ""), "none -> empty");
}

/* A spec file @name holding @text in a fresh folder; the folder. */
static void spec(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_cdi(void)
{
	char a[] = "/tmp/mlfs-cdi-a-XXXXXX", b[] = "/tmp/mlfs-cdi-b-XXXXXX";
	const char *dirs[] = { a, b, NULL }, *none[] = { "/nonexistent", NULL };

	if (!mkdtemp(a) || !mkdtemp(b)) {
		CHECK(0, "mkdtemp");
		return;
	}
	CHECK(!ct_cdi_has_gpu(none), "no folder: no spec");
	CHECK(!ct_cdi_has_gpu(dirs), "empty folders: no spec");
	spec(a, "other.yaml", "cdiVersion: 0.5.0\nkind: vendor.com/fpga\n");
	spec(a, "gpu.txt", "kind: nvidia.com/gpu\n");
	spec(b, "nvidia.yaml.bak", "kind: nvidia.com/gpu\n");
	spec(b, "x.json", "{\"kind\": \"nvidia.com/gpus\"}");
	CHECK(!ct_cdi_has_gpu(dirs), "another kind, another suffix, a longer"
	      " kind: no spec");
	spec(b, "nvidia.yaml", "---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\n"
	     "devices:\n- name: \"0\"\n");
	CHECK(ct_cdi_has_gpu(dirs), "a YAML spec of nvidia.com/gpu");
	spec(b, "nvidia.yaml", "x");
	spec(a, "n.json", "{\"cdiVersion\":\"0.5.0\",\"kind\":"
	     "\"nvidia.com/gpu\",\"devices\":[]}");
	CHECK(ct_cdi_has_gpu(dirs), "a JSON spec of nvidia.com/gpu");
	CHECK(!system("rm -rf /tmp/mlfs-cdi-a-?????? /tmp/mlfs-cdi-b-??????"),
	      "cleanup");
}

static void test_limits_name(void)
{
	char name[64];

	CHECK(ct_limit(0) == CT_ULIMIT_MAX, "unknown: the cap");
	CHECK(ct_limit((unsigned long long)RLIM_INFINITY) == CT_ULIMIT_MAX,
	      "unlimited: the cap");
	CHECK(ct_limit(20000) == 20000, "below the cap: the hard limit");
	CHECK(ct_limit(1u << 20) == CT_ULIMIT_MAX, "above: the cap");
	ct_name("/var/lib/mlfs", 42, name, sizeof(name));
	CHECK(!strncmp(name, "mlfs-", 5) && strlen(name) == 16 &&
	      !strcmp(name + 13, "-42"), "mlfs-<8 hex>-<id>: %s", name);
}

static void test_failure(void)
{
	const char *log = "mlfs: starting\nError: container-init binary not"
		" found on the host: stat /usr/libexec/podman/catatonit: no"
		" such file or directory\n";
	const char *two = "Error: first\nsome output\nError: OCI runtime"
		" error: the last one";
	char why[512] = "untouched";

	CHECK(ct_failure(log, strlen(log), why, sizeof(why)) == 1 &&
	      !strcmp(why, "podman could not start the run's container:"
		      " container-init binary not found on the host: stat"
		      " /usr/libexec/podman/catatonit: no such file or"
		      " directory (apt-get install catatonit)"),
	      "podman's error line, with the package: %s", why);
	CHECK(ct_failure(two, strlen(two), why, sizeof(why)) == 1 &&
	      !strcmp(why, "podman could not start the run's container: OCI"
		      " runtime error: the last one"),
	      "the last error line, no package named: %s", why);
	strcpy(why, "untouched");
	CHECK(ct_failure("exit 125\nError:\n", 16, why, sizeof(why)) == 0 &&
	      !strcmp(why, "untouched"), "no error line: nothing said");
}

int main(void)
{
	test_failure();
	test_args();
	test_rootless();
	test_env();
	test_extras();
	test_gpus_inside();
	test_cdi();
	test_limits_name();
	return tap_done();
}
