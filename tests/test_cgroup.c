// SPDX-License-Identifier: MIT
/*
 * The pure parts of targets/cgroup.c: /proc/self/cgroup, mountinfo, the
 * memory files, the spelling of a limit.  The file is included with
 * CG_PURE, so that nothing here touches a real cgroup.
 */
#define CG_PURE
#include "../targets/cgroup.c"

#include "tap.h"

/* This project's CI machine: v1 controllers, the daemon in a memory
 * cgroup of its container, a cgroup2 mount beside them. */
static const char self_v1[] =
	"9:name=systemd:/\n"
	"8:pids:/\n"
	"4:memory:/process_api/0bfb62c827d59916063cceb497c08250\n"
	"1:cpu,cpuacct:/user.slice\n"
	"0::/\n";

static const char mi_v1[] =
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"36 30 0:33 /lxc/c1 /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

static void test_self(void)
{
	char p[256];

	CHECK(!cg_parse_self(self_v1, "memory", p, sizeof(p)) &&
	      !strcmp(p, "/process_api/0bfb62c827d59916063cceb497c08250"),
	      "self: the memory cgroup");
	CHECK(!cg_parse_self(self_v1, "cpu", p, sizeof(p)) &&
	      !strcmp(p, "/user.slice"), "self: cpu in a joint hierarchy");
	CHECK(!cg_parse_self(self_v1, "cpuacct", p, sizeof(p)) &&
	      !strcmp(p, "/user.slice"), "self: its other controller");
	CHECK(!cg_parse_self(self_v1, "pids", p, sizeof(p)) &&
	      !strcmp(p, "/"), "self: pids at the root");
	CHECK(cg_parse_self(self_v1, "freezer", p, sizeof(p)) == -ENOENT,
	      "self: no freezer line");
	CHECK(cg_parse_self(self_v1, "systemd", p, sizeof(p)) == -ENOENT,
	      "self: name=systemd is not a controller named systemd");
	CHECK(!cg_parse_self(self_v1, NULL, p, sizeof(p)) && !strcmp(p, "/"),
	      "self: the unified line");
	CHECK(!cg_parse_self("0::/system.slice/mlfs.service", NULL, p,
			     sizeof(p)) &&
	      !strcmp(p, "/system.slice/mlfs.service"),
	      "self: v2 only, no trailing newline");
	CHECK(cg_parse_self("garbage\n:\n", NULL, p, sizeof(p)) == -ENOENT,
	      "self: garbage");
	CHECK(cg_parse_self("", "memory", p, sizeof(p)) == -ENOENT,
	      "self: empty");
}

static void test_mount(void)
{
	char m[256], r[256];

	CHECK(!cg_parse_mount(mi_v1, "memory", m, sizeof(m), r, sizeof(r)) &&
	      !strcmp(m, "/sys/fs/cgroup/memory") && !strcmp(r, "/"),
	      "mountinfo: memory");
	CHECK(!cg_parse_mount(mi_v1, "cpu", m, sizeof(m), r, sizeof(r)) &&
	      !strcmp(m, "/sys/fs/cgroup/cpu,cpuacct"),
	      "mountinfo: cpu joint with cpuacct, optional fields");
	CHECK(!cg_parse_mount(mi_v1, "freezer", m, sizeof(m), r, sizeof(r)) &&
	      !strcmp(r, "/lxc/c1"), "mountinfo: a root other than /");
	CHECK(cg_parse_mount(mi_v1, "pids", m, sizeof(m), r, sizeof(r)) ==
	      -ENOENT, "mountinfo: no pids hierarchy");
	CHECK(cg_parse_mount(mi_v1, "systemd", m, sizeof(m), r, sizeof(r)) ==
	      -ENOENT, "mountinfo: name=systemd is no controller");
	CHECK(!cg_parse_mount(mi_v1, NULL, m, sizeof(m), r, sizeof(r)) &&
	      !strcmp(m, "/sys/fs/cgroup/unified"), "mountinfo: cgroup2");
	CHECK(cg_parse_mount("1 2 0:1 / /x rw - tmpfs tmpfs rw\n", NULL, m,
			     sizeof(m), r, sizeof(r)) == -ENOENT,
	      "mountinfo: no cgroup at all");
	CHECK(cg_parse_mount("1 2 0:1 / /x rw\n", "memory", m, sizeof(m), r,
			     sizeof(r)) == -ENOENT,
	      "mountinfo: a line without its separator");
}

static void test_subtree(void)
{
	char out[PATH_MAX];

	subtree("/sys/fs/cgroup/memory", "/", "/process_api/x", 0xabc, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/memory/process_api/x/mlfs-00000abc"),
	      "subtree: below the daemon's own cgroup");
	subtree("/sys/fs/cgroup", "/", "/", 1, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/mlfs-00000001"),
	      "subtree: at the root");
	subtree("/sys/fs/cgroup/freezer", "/lxc/c1", "/lxc/c1/sub", 2, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/freezer/sub/mlfs-00000002"),
	      "subtree: relative to the mount's root");
	CHECK(fnv1a32_str("/var/lib/mlfs") == fnv1a32_str("/var/lib/mlfs") &&
	      fnv1a32_str("/var/lib/mlfs") != fnv1a32_str("/var/lib/mlfs2"),
	      "subtree: the hash is a function of the state dir");
	subtree("/sys/fs/cgroup", "/", "/system.slice/mlfs.service/"
		"mlfs-00000002/daemon", 2, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/system.slice/mlfs.service/"
		      "mlfs-00000002"),
	      "subtree: a daemon already in its leaf finds the same subtree");
	subtree("/sys/fs/cgroup", "/", "/mlfs-00000002/daemon", 2, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/mlfs-00000002"),
	      "subtree: its leaf below the root cgroup");
	subtree("/sys/fs/cgroup", "/", "/a/mlfs-00000003/daemon", 2, out);
	CHECK(!strcmp(out, "/sys/fs/cgroup/a/mlfs-00000003/daemon/"
		      "mlfs-00000002"),
	      "subtree: the leaf of another state dir is not ours");
	CHECK(cg_own_base("/x/mlfs-00000002/daemonx", 2) == 24 &&
	      cg_own_base("daemon", 2) == 6,
	      "own base: only a whole trailing leaf is stripped");
}

static void test_memory(void)
{
	char b[32];

	cg_mem_spelling(64, b, sizeof(b));
	CHECK(!strcmp(b, "64M"), "spelling: 64M");
	cg_mem_spelling(2048, b, sizeof(b));
	CHECK(!strcmp(b, "2G"), "spelling: 2G");
	cg_mem_spelling(1536, b, sizeof(b));
	CHECK(!strcmp(b, "1536M"), "spelling: 1.5G as 1536M");
	cg_mem_spelling(1024 * 1024, b, sizeof(b));
	CHECK(!strcmp(b, "1T"), "spelling: 1T");
	CHECK(cg_parse_oom_control("oom_kill_disable 0\nunder_oom 0\n"
				   "oom_kill 3\n") == 3,
	      "oom_control: oom_kill, not oom_kill_disable");
	CHECK(cg_parse_oom_control("oom_kill_disable 1\nunder_oom 0\n") == 0,
	      "oom_control: an old kernel without the count");
	CHECK(cg_parse_keyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"
			     "oom_group_kill 0\n", "oom_kill") == 1,
	      "memory.events: oom_kill");
	CHECK(cg_parse_keyed("low 0\n", "oom_kill") == 0,
	      "memory.events: absent key");
}

int main(void)
{
	test_self();
	test_mount();
	test_subtree();
	test_memory();
	return tap_done();
}
