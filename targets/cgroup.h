/* SPDX-License-Identifier: MIT */
/*
 * Containment of local runs and replicas in cgroups.
 *
 * A root daemon keeps one subtree of its own, below the cgroup it sits in,
 * in each hierarchy it uses:
 *
 *   v1: /sys/fs/cgroup/<ctrl><own>/mlfs-<H>/<name>  ctrl: freezer, memory,
 *       pids, cpu (freezer required: it is how every process is ended)
 *   v2: <cgroup2 mount><own>/mlfs-<H>/<name>
 *
 * H hashes the state dir, so that a daemon restarted on the same state
 * finds its runs' cgroups again; <name> is "run-<id>" or
 * "rep-<id>-g<gen>-<slot>", a function of the object alone.  Where no
 * hierarchy is writable (not root, read-only cgroupfs) every call is a
 * no-op and the drivers fall back to process groups: cg_on() says which.
 */
#ifndef MLFS_CGROUP_H
#define MLFS_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "../backend/parse.h"

#define CG_NAME_MAX	64
#define CG_DIRS_MAX	4		/* cgroup dirs one object may have */
#define CG_PIDS_DEFAULT	4096

/* Limits of one cgroup; 0 means none. */
struct cg_limits {
	uint64_t memory_mib;
	long cpu_milli;			/* 1000 = one CPU */
	long pids;
};

/*
 * cg_setup - find the hierarchies and make the daemon's subtree, once
 * (later calls return at once).  @state_dir names the subtree; @mode is
 * "auto" (v2 where /sys/fs/cgroup is cgroup2, else v1, else v2 at its
 * other mount point), "v1", "v2" or "off".  Empty leftover cgroups of
 * ended objects are removed.  Logs one warning where nothing is usable.
 */
void cg_setup(const char *state_dir, const char *mode);

/* 1 when objects get cgroups, 0 when the drivers use process groups. */
int cg_on(void);

/*
 * cg_create - make the cgroup @name and set @lim.  Fills @dirs with the
 * directories a process must join (write 0 to DIR/cgroup.procs) and
 * returns how many (0 without cgroups), or -errno with a sentence.
 */
int cg_create(const char *name, const struct cg_limits *lim,
	      char dirs[CG_DIRS_MAX][4096], struct err *e);

/* The directories of @name that exist, as cg_create gives them. */
int cg_dirs(const char *name, char dirs[CG_DIRS_MAX][4096]);

/*
 * cg_kill - SIGKILL every process of @name (cgroup.kill on v2; freeze,
 * kill each pid, thaw on v1) until it is empty or a few seconds pass.
 * 0 when empty (or @name has no cgroup), -EBUSY otherwise.
 */
int cg_kill(const char *name);

/* cg_signal - send @sig to every process of @name (no freeze).  Returns
 * the number signalled. */
int cg_signal(const char *name, int sig);

/* 1 when the kernel killed a process of @name for want of memory. */
int cg_oom_killed(const char *name);

/* cg_remove - rmdir @name's cgroups (after cg_kill). */
void cg_remove(const char *name);

/* ---- pure helpers (tests/test_cgroup.c) --------------------------------- */

/*
 * cg_parse_self - in @text (/proc/self/cgroup), the path of the hierarchy
 * holding controller @ctrl (v1), or of the unified one when @ctrl is NULL.
 * 0 with @path, or -ENOENT.
 */
int cg_parse_self(const char *text, const char *ctrl, char *path, size_t n);

/*
 * cg_parse_mount - in @text (/proc/self/mountinfo), the mount point and
 * root of the v1 hierarchy holding @ctrl, or of cgroup2 when @ctrl is
 * NULL.  0, or -ENOENT.
 */
int cg_parse_mount(const char *text, const char *ctrl, char *mnt, size_t mn,
		   char *root, size_t rn);

/* The v2 leaf the daemon moves itself into, below its subtree. */
#define CG_DAEMON_LEAF	"daemon"

/*
 * cg_own_base - the length of @own (the daemon's cgroup path) without a
 * trailing "/mlfs-<@h>/daemon": a daemon already in its leaf finds the
 * same subtree as one that was not moved yet.
 */
size_t cg_own_base(const char *own, uint32_t h);

/* "64M", "2G", "1536M": a limit as the error sentence names it. */
void cg_mem_spelling(uint64_t mib, char *buf, size_t n);

/* The v1 oom_kill count in a memory.oom_control text (0 if none). */
long cg_parse_oom_control(const char *text);

/* The value of @key in a "key value" lines file (memory.events). */
long cg_parse_keyed(const char *text, const char *key);

#endif
