// SPDX-License-Identifier: MIT
/* Unit test of lib/: clocks, hashes, digests, growable arrays. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/clock.h"
#include "../lib/digest.h"
#include "../lib/hash.h"
#include "../lib/vec.h"
#include "tap.h"

/* The loops lib/hash.h replaces, as they are written today, so that the
 * replacement is shown to give the same numbers. */
static uint32_t old_fnv32(const char *s)		/* cgroup.c */
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static uint64_t old_fnv64_short(const char *s)	/* ssh_exec.c, slurm.c */
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static uint64_t old_fnv64(const char *s, size_t n)	/* parse.c */
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void test_clock(void)
{
	time_t t0 = time(NULL);
	double w = wall_s(), m0 = mono_s(), m1;
	time_t t1 = time(NULL);

	/* bounded by two reads of time(): a busy machine may pause between */
	CHECK(w >= (double)t0 - 1 && w <= (double)t1 + 1,
	      "wall_s is the epoch's seconds: %.3f (time() %lld..%lld)", w,
	      (long long)t0, (long long)t1);
	nap_ms(20);
	m1 = mono_s();
	CHECK(m1 - m0 >= 0.019, "nap_ms(20) sleeps at least 20 ms: %.4f",
	      m1 - m0);
	nap_ms(1001);
	CHECK(mono_s() - m1 >= 1.0, "nap_ms takes whole seconds too");
}

static void test_hash_vectors(void)
{
	/* The published FNV-1a test vectors. */
	CHECK(fnv1a32_str("") == 0x811c9dc5u, "fnv1a32 of \"\"");
	CHECK(fnv1a32_str("a") == 0xe40c292cu, "fnv1a32 of a");
	CHECK(fnv1a32_str("foobar") == 0xbf9cf968u, "fnv1a32 of foobar");
	CHECK(fnv1a64_str("") == 0xcbf29ce484222325ull, "fnv1a64 of \"\"");
	CHECK(fnv1a64_str("a") == 0xaf63dc4c8601ec8cull, "fnv1a64 of a");
	CHECK(fnv1a64_str("foobar") == 0x85944171f73967e8ull,
	      "fnv1a64 of foobar");
	CHECK(fnv1a32("foobar", 3) == fnv1a32_str("foo") &&
	      fnv1a32_add(fnv1a32("foo", 3), "bar", 3) == fnv1a32_str("foobar"),
	      "fnv1a32 by parts");
	CHECK(fnv1a64_add(fnv1a64("foo", 3), "bar", 3) ==
	      fnv1a64_str("foobar"), "fnv1a64 by parts");
}

static void test_hash_same_as_before(void)
{
	static const char *const in[] = {
		"", "a", "/var/lib/mlfs/objects/42", "mlfs-\xff\x80 x",
	};
	int same32 = 1, same64 = 1, short64 = 1;

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		const char *s = in[i];

		same32 &= fnv1a32_str(s) == old_fnv32(s);
		same64 &= fnv1a64(s, strlen(s)) == old_fnv64(s, strlen(s));
		short64 &= fnv1a64_add(FNV64_BASIS_SHORT, s, strlen(s)) ==
			   old_fnv64_short(s);
	}
	CHECK(same32, "fnv1a32_str is cgroup.c's and fs.c's hash");
	CHECK(same64, "fnv1a64 is parse.c's hash");
	CHECK(short64, "FNV64_BASIS_SHORT gives ssh_exec.c's, slurm.c's");
}

static void test_vec_push(void)
{
	VEC(int64_t) ids = { 0 };
	int ok = 1, rc = 0;

	for (int64_t i = 0; i < 1000 && !rc; i++)
		rc = vec_push(&ids, i * 3);
	CHECK(!rc && ids.n == 1000, "1000 pushes");
	for (size_t i = 0; i < ids.n; i++)
		ok &= ids.v[i] == (int64_t)i * 3;
	CHECK(ok, "every element in its place");
	CHECK(ids.cap == 1024, "the capacity doubles from 16: %zu", ids.cap);
	vec_free(&ids);
	CHECK(!ids.v && !ids.n && !ids.cap, "vec_free empties");
}

static void test_vec_reserve(void)
{
	struct { char **v; size_t n, cap; } argv = { 0 };
	char *words[] = { "a", "b", "c" };

	for (int i = 0; i < 3; i++) {
		if (vec_reserve(&argv, 2))
			break;
		argv.v[argv.n++] = words[i];
		argv.v[argv.n] = NULL;
	}
	CHECK(argv.n == 3 && argv.cap == 16 && !argv.v[3] &&
	      !strcmp(argv.v[2], "c"), "room for an element and a NULL");
	CHECK(vec_reserve(&argv, 0) == 0 && argv.cap == 16,
	      "no growth when there is room");
	vec_free(&argv);
}

static void test_vec_grow(void)
{
	char *buf = NULL;
	size_t cap = 0;

	CHECK(vec_grow(&buf, &cap, 5000, 1) == 0 && cap == 8192,
	      "vec_grow to 5000 bytes: %zu", cap);
	memset(buf, 'x', 5000);
	CHECK(vec_grow(&buf, &cap, SIZE_MAX / 2 + 2, 1) == -ENOMEM &&
	      cap == 8192 && buf[4999] == 'x', "no capacity past SIZE_MAX");
	CHECK(vec_grow(&buf, &cap, SIZE_MAX / 8, 16) == -ENOMEM &&
	      cap == 8192, "no byte count past SIZE_MAX");
	free(buf);
}

static void sha_hex(const void *data, size_t len, char hex[65])
{
	unsigned char d[32];
	struct sha256 s;

	sha256_init(&s);
	sha256_add(&s, data, len);
	sha256_end(&s, d);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256(void)
{
	/* FIPS 180-4's examples; 64 and 55/56 bytes cross the padding */
	static const char m448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklm"
				   "klmnlmnomnopnopq";
	char hex[65], buf[64];

	sha_hex("", 0, hex);
	CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
		      "a495991b7852b855"), "sha256 of \"\"");
	sha_hex("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
		      "b410ff61f20015ad"), "sha256 of abc");
	sha_hex(m448, strlen(m448), hex);
	CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167"
		      "f6ecedd419db06c1"), "sha256 of the 448-bit message");
	memset(buf, 'a', sizeof(buf));
	sha_hex(buf, 64, hex);
	CHECK(!strcmp(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5"
		      "997337df154668eb"), "sha256 of 64 a's");
}

static int put_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) < 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void test_tree_digest(void)
{
	char a[] = "/tmp/mlfs-digest-XXXXXX", b[] = "/tmp/mlfs-digest-XXXXXX";
	char ha[65], hb[65], sub[512], cmd[1200];
	struct err e;

	if (!mkdtemp(a) || !mkdtemp(b)) {
		CHECK(0, "mkdtemp");
		return;
	}
	for (int i = 0; i < 2; i++) {
		const char *d = i ? b : a;

		snprintf(sub, sizeof(sub), "%s/sub", d);
		mkdir(sub, 0755);
		put_file(d, "x", "one\n");
		put_file(sub, "y", "two\n");
	}
	CHECK(!tree_digest(a, ha, &e) && !tree_digest(b, hb, &e) &&
	      strlen(ha) == 64 && !strcmp(ha, hb),
	      "the same names and bytes: the same digest");
	put_file(b, "x", "One\n");
	tree_digest(b, hb, &e);
	CHECK(strcmp(ha, hb), "a byte changed: another digest");
	put_file(b, "x", "one\n");
	snprintf(sub, sizeof(sub), "%s/x", b);
	chmod(sub, 0600);
	tree_digest(b, hb, &e);
	CHECK(strcmp(ha, hb), "a mode changed: another digest");
	chmod(sub, 0644);
	snprintf(sub, sizeof(sub), "%s/z", b);
	CHECK(!symlink("x", sub) && !tree_digest(b, hb, &e) &&
	      strcmp(ha, hb), "a link added: another digest");
	CHECK(tree_digest("/nonexistent-mlfs", ha, &e) == -ENOENT &&
	      strstr(e.msg, "/nonexistent-mlfs"), "a missing tree: ENOENT, named");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", a, b);
	CHECK(system(cmd) == 0, "clean up");
}

int main(void)
{
	test_clock();
	test_hash_vectors();
	test_hash_same_as_before();
	test_vec_push();
	test_vec_reserve();
	test_vec_grow();
	test_sha256();
	test_tree_digest();
	return tap_done();
}
