// SPDX-License-Identifier: MIT
/* Unit test of inode numbering and the user node table. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fs/node.h"
#include "tap.h"

/* Hard links: one node for every name of a file among an object's own
 * files; a name's removal leaves the others. */
static void links(struct node_table *t)
{
	uint64_t dir = obj_ino(9, F_DIR), f, g, h;
	char rel[4096];
	int64_t obj;
	int root;

	f = nodes_get_linked(t, dir, "f", 500, 9, F_DIR);
	g = nodes_get_linked(t, dir, "g", 500, 9, F_DIR);
	h = nodes_get_linked(t, dir, "h", 500, 8, F_DIR);
	CHECK(f && f == g && h != f, "names of one file share a node, of"
	      " another object's not");
	CHECK(nodes_get(t, dir, "g") == f, "a name finds its shared node");
	nodes_ref(t, f);
	CHECK(nodes_link(t, f, dir, "k", 9, F_DIR) == 0 &&
	      nodes_get(t, dir, "k") == f, "link adds a name to the node");
	CHECK(!nodes_held(t, dir, "f"), "a name that is not the last is not"
	      " held");
	nodes_move(t, dir, "f", dir, "g", -1);
	CHECK(nodes_get(t, dir, "f") == f && nodes_get(t, dir, "g") == f,
	      "a rename onto another name of the same file keeps both");
	nodes_unlink(t, dir, "f", -1);
	nodes_unlink(t, dir, "g", -1);
	CHECK(nodes_path(t, f, &obj, &root, rel, sizeof(rel)) == 0 &&
	      !strcmp(rel, "k"), "the last name is the path: %s", rel);
	nodes_exchange(t, dir, "k", dir, "h");
	CHECK(nodes_get(t, dir, "h") == f && nodes_get(t, dir, "k") == h,
	      "exchange swaps two names");
	nodes_forget(t, f, 1);
}

/* A node whose last name goes while held keeps its file, then its
 * alias; forgotten, it goes. */
static void orphans(struct node_table *t)
{
	uint64_t dir = obj_ino(11, F_DIR), sub, a, b;
	int64_t obj = 0;
	int root = 0, fd = -1, mine;

	sub = nodes_get(t, dir, "sub");
	nodes_ref(t, sub);
	a = nodes_get(t, sub, "a");
	b = nodes_get(t, sub, "b");
	nodes_ref(t, a);
	nodes_ref(t, b);
	CHECK(nodes_held(t, sub, "a"), "a held node's last name");
	mine = open("/dev/null", O_PATH | O_CLOEXEC);
	nodes_unlink(t, sub, "a", mine);
	CHECK(nodes_orphan(t, a, &fd, &obj, &root) == 0 && fd >= 0 &&
	      fd != mine && obj == 11 && root == F_DIR,
	      "an unlinked held node keeps its file (a new fd each time)");
	if (fd >= 0)
		close(fd);
	nodes_move(t, sub, "b", dir, "b2", -1);
	nodes_redirect(t, dir, "b2", obj_ino(11, F_COMMAND));
	CHECK(nodes_alias(t, b) == obj_ino(11, F_COMMAND) &&
	      nodes_alias(t, a) == 0, "a name a setting took answers as it");
	nodes_forget(t, a, 1);
	nodes_forget(t, b, 1);
	CHECK(nodes_orphan(t, a, &fd, &obj, &root) == -ENOENT &&
	      nodes_alias(t, b) == 0, "forgotten, they go");
	CHECK(fcntl(mine, F_GETFD) == -1, "and the file with them");
	nodes_forget(t, sub, 1);
}

/* nodes_below: every node under a control folder, at any depth, and
 * none of another folder's. */
static void below(struct node_table *t)
{
	uint64_t top = obj_ino(11, F_TASKS), d0, d1, s0, s1, x, *v = NULL;
	int n, seen = 0;

	d0 = nodes_get(t, top, "0");
	d1 = nodes_get(t, top, "1");
	s0 = nodes_get(t, d0, "status");
	s1 = nodes_get(t, d1, "status");
	x = nodes_get(t, obj_ino(11, F_OUTPUTS), "status");
	n = nodes_below(t, top, &v);
	for (int i = 0; i < n; i++)
		seen += v[i] == d0 || v[i] == d1 || v[i] == s0 || v[i] == s1 ?
			1 : v[i] == x ? 100 : 0;
	CHECK(n == 4 && seen == 4, "nodes_below: the folders and files of"
	      " tasks/ (%d of them), none of outputs/", n);
	free(v);
	v = NULL;
	CHECK(nodes_below(t, obj_ino(12, F_TASKS), &v) == 0 && !v,
	      "nodes_below an unknown folder: none");
}

int main(void)
{
	struct node_table *t;
	char rel[4096];
	uint64_t a, b, c, a2;
	int64_t obj;
	int root, fd;

	CHECK(ino_obj(obj_ino(12345, F_STATUS)) == 12345 &&
	      ino_file(obj_ino(12345, F_STATUS)) == F_STATUS, "obj ino round trip");
	CHECK(ino_is_obj(obj_ino(1, F_DIR)) && !ino_is_obj(INO_RUNS),
	      "object inos are above the fixed ones");
	CHECK(nodes_init(&t) == 0, "init");
	a = nodes_get(t, obj_ino(7, F_DIR), "data");
	b = nodes_get(t, a, "x.csv");
	CHECK(ino_is_user(a) && ino_is_user(b) && a != b, "user inos");
	CHECK(nodes_get(t, obj_ino(7, F_DIR), "data") == a, "same name, same ino");
	CHECK(nodes_path(t, b, &obj, &root, rel, sizeof(rel)) == 0 &&
	      obj == 7 && root == F_DIR && !strcmp(rel, "data/x.csv"),
	      "path of a nested node: %s", rel);
	c = nodes_get(t, obj_ino(7, F_OUTPUTS), "model.json");
	CHECK(nodes_path(t, c, &obj, &root, rel, sizeof(rel)) == 0 &&
	      root == F_OUTPUTS && !strcmp(rel, "model.json"), "outputs root");
	nodes_ref(t, b);
	nodes_move(t, a, "x.csv", obj_ino(7, F_DIR), "y.csv", -1);
	CHECK(nodes_path(t, b, &obj, &root, rel, sizeof(rel)) == 0 &&
	      !strcmp(rel, "y.csv"), "rename moves the node: %s", rel);
	nodes_unlink(t, obj_ino(7, F_DIR), "y.csv", -1);
	CHECK(nodes_path(t, b, &obj, &root, rel, sizeof(rel)) == -ENOENT,
	      "an unlinked node has no path");
	CHECK(nodes_orphan(t, b, &fd, &obj, &root) == -ENOENT,
	      "an unlinked node without a file holds none");
	nodes_forget(t, b, 1);
	a2 = nodes_get(t, obj_ino(7, F_DIR), "y.csv");
	CHECK(a2 != b, "a new file gets a new ino");
	for (int i = 0; i < 5000; i++) {
		char n[32];

		snprintf(n, sizeof(n), "f%d", i);
		nodes_ref(t, nodes_get(t, a, n));
	}
	CHECK(nodes_get(t, a, "f4999") != 0 &&
	      nodes_path(t, nodes_get(t, a, "f123"), &obj, &root, rel,
			 sizeof(rel)) == 0 && !strcmp(rel, "data/f123"),
	      "table grows and keeps every node");
	links(t);
	orphans(t);
	below(t);
	nodes_free(t);
	return tap_done();
}
