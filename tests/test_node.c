// SPDX-License-Identifier: MIT
/* Unit test of inode numbering and the user node table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../fs/node.h"
#include "tap.h"

int main(void)
{
	struct node_table *t;
	char rel[4096];
	uint64_t a, b, c, a2;
	int64_t obj;
	int root;

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
	nodes_move(t, a, "x.csv", obj_ino(7, F_DIR), "y.csv");
	CHECK(nodes_path(t, b, &obj, &root, rel, sizeof(rel)) == 0 &&
	      !strcmp(rel, "y.csv"), "rename moves the node: %s", rel);
	nodes_unlink(t, obj_ino(7, F_DIR), "y.csv");
	CHECK(nodes_path(t, b, &obj, &root, rel, sizeof(rel)) == -ENOENT,
	      "an unlinked node has no path");
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
	nodes_free(t);
	return tap_done();
}
