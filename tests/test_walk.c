// SPDX-License-Identifier: MIT
/*
 * Unit test of lib/walk.c's dir_each, alone and through the walks built on
 * it (copy.c's copy and rm -r, digest.c's manifest): every entry of a
 * nested tree is met once, a symlink to a folder is never followed, the
 * depth is bounded, the caller's descriptor is left usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/copy.h"
#include "../lib/digest.h"
#include "../lib/walk.h"
#include "tap.h"

static char base[64];		/* the test's own folder */
static char top[96];		/* the tree walked: base/tree */

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	mkdir(path, 0755);
}

static int exists(const char *rel)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	return !lstat(path, &st);
}

/* ---- dir_each alone ------------------------------------------------------- */

/* The paths met, one line each, by a recursive walk as lib/ writes it:
 * entries named relative to their folder's fd, folders opened with
 * O_NOFOLLOW. */
struct seen {
	char list[4096];
	const char *rel;
	int depth;
};

static int note(int d, const char *name, void *arg)
{
	struct seen *s = arg, sub;
	size_t o = strlen(s->list);
	char rel[256];
	struct stat st;
	int fd, rc;

	snprintf(rel, sizeof(rel), "%s%s", s->rel, name);
	snprintf(s->list + o, sizeof(s->list) - o, "%s\n", rel);
	if (fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
		return 0;
	fd = openat(d, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sub = *s;
	strcat(rel, "/");
	sub.rel = rel;
	sub.depth = s->depth + 1;
	rc = dir_each(fd, sub.depth, note, &sub);
	memcpy(s->list, sub.list, sizeof(s->list));
	close(fd);
	return rc;
}

static int by_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @list's lines sorted, joined by spaces. */
static void sorted(char *list, char *out, size_t sz)
{
	char *v[64], *save, *l;
	size_t n = 0, o = 0;

	for (l = strtok_r(list, "\n", &save); l && n < 64;
	     l = strtok_r(NULL, "\n", &save))
		v[n++] = l;
	qsort(v, n, sizeof(*v), by_line);
	out[0] = '\0';
	for (size_t i = 0; i < n && o < sz; i++)
		o += snprintf(out + o, sz - o, "%s%s", i ? " " : "", v[i]);
}

static int count(int d, const char *name, void *arg)
{
	(void)d;
	(void)name;
	return ++*(int *)arg == 2 ? 42 : 0;
}

static void test_dir_each(void)
{
	struct seen s = { .rel = "" };
	char list[4096];
	int fd, n = 0;

	fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(!dir_each(fd, 0, note, &s), "a nested tree walked");
	sorted(s.list, list, sizeof(list));
	CHECK(!strcmp(list, "a a/b a/b/c.txt a/b/d.txt a/e.txt f.txt"
		      " out-link top-link"),
	      "each entry met once, links not entered: %s", list);
	memset(&s, 0, sizeof(s));
	s.rel = "";
	CHECK(!dir_each(fd, 0, note, &s) && strstr(s.list, "f.txt"),
	      "the same descriptor walked again from its start");
	CHECK(dir_each(fd, 0, count, &n) == 42 && n == 2,
	      "the first nonzero answer stops the walk and is returned");
	n = 0;
	CHECK(dir_each(fd, WALK_DEPTH_MAX + 1, count, &n) == -ELOOP && !n,
	      "past WALK_DEPTH_MAX: -ELOOP, nothing met");
	CHECK(fcntl(fd, F_GETFD) >= 0, "the caller's descriptor stays open");
	close(fd);
	CHECK(dir_each(-1, 0, count, &n) == -EBADF, "a bad fd: -EBADF");
}

/* ---- the walks built on it -------------------------------------------------- */

static void test_digest(void)
{
	char h1[65], h2[65];
	struct err e;

	CHECK(!tree_digest(top, h1, &e), "the tree's digest");
	put("outside/secret", "changed");
	CHECK(!tree_digest(top, h2, &e) && !strcmp(h1, h2),
	      "a change behind a symlink to a folder changes no digest");
	put("tree/a/b/c.txt", "C2");
	CHECK(!tree_digest(top, h2, &e) && strcmp(h1, h2),
	      "a change two folders down does");
	put("tree/a/b/c.txt", "C");
	CHECK(!tree_digest(top, h2, &e) && !strcmp(h1, h2),
	      "and its undoing undoes it");
}

static void test_copy_and_remove(void)
{
	char dst[128], rel[160];
	struct seen s = { .rel = "" };
	char list[4096];
	struct stat st;
	struct err e;
	int fd;

	snprintf(dst, sizeof(dst), "%s/copy", base);
	mkdir(dst, 0755);
	CHECK(!copy_into(top, "a", dst, &e), "copy of a nested tree");
	fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir_each(fd, 0, note, &s);
	close(fd);
	sorted(s.list, list, sizeof(list));
	CHECK(!strcmp(list, "a a/b a/b/c.txt a/b/d.txt a/e.txt"),
	      "each entry copied once: %s", list);
	CHECK(!copy_into(top, "top-link", dst, &e) &&
	      !lstat(strcat(strcpy(rel, dst), "/top-link"), &st) &&
	      S_ISLNK(st.st_mode), "a symlink to a folder is copied as a link");
	CHECK(!remove_tree(dst) && !exists("copy"), "rm -r of the copy");
	CHECK(!remove_tree(top) && !exists("tree"), "rm -r of a nested tree"
	      " with links in it");
	CHECK(exists("outside/secret"),
	      "not through a symlink: the folder it names is untouched");
}

int main(void)
{
	char link[128];

	snprintf(base, sizeof(base), "/tmp/mlfs-walk.XXXXXX");
	if (!mkdtemp(base)) {
		CHECK(0, "mkdtemp");
		return tap_done();
	}
	snprintf(top, sizeof(top), "%s/tree", base);
	dir("tree");
	dir("tree/a");
	dir("tree/a/b");
	put("tree/a/b/c.txt", "C");
	put("tree/a/b/d.txt", "D");
	put("tree/a/e.txt", "E");
	put("tree/f.txt", "F");
	/* a folder beside the tree, and links in the tree to it and to the
	 * tree itself (a loop, were it followed) */
	dir("outside");
	put("outside/secret", "S");
	snprintf(link, sizeof(link), "%s/out-link", top);
	if (symlink("../outside", link))
		CHECK(0, "symlink");
	snprintf(link, sizeof(link), "%s/top-link", top);
	if (symlink(".", link))
		CHECK(0, "symlink");
	test_dir_each();
	test_digest();
	test_copy_and_remove();
	remove_tree(base);
	return tap_done();
}
