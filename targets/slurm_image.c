// SPDX-License-Identifier: MIT
/*
 * A run in an environment on a Slurm target (see slurm_image.h): podman
 * inside the batch job, as the job's user, on the node Slurm picked.
 *
 * Why not Slurm's own OCI support (`--container`, scrun): it needs an
 * OCI bundle unpacked on the shared file system for every image and a
 * runtime configured in oci.conf on every node by the site (Slurm 22.05
 * ships none), and `srun --container` is not offered by slurmrestd's
 * job/submit; podman runs the very image id the environment built, and
 * its `podman run` is the one the local and ssh targets run.
 *
 * The image reaches the node through the shared file system: the daemon
 * writes `podman save` of the image id once into the target's image cache
 * (<workdir>/mlfs-<hash>/images, or the target's own folder in the state
 * dir without a workdir), as <id>-<job uid>.tar, the job user's and 0600,
 * made under a temporary name and renamed into place, never through a
 * link; the batch script loads it into the node's podman when `podman
 * image exists` says no, then checks the id.  The cache keeps an image
 * for every later run (a second run copies nothing), and a node that has
 * the image loads nothing.
 *
 * Who runs the container: the job's user (the target's `user`, the
 * cluster's owner), with its podman.  Root's rootful podman runs the
 * command as the run's creator (--user), never as root unless root made
 * the run; another user's rootless podman keeps its own uid inside
 * (--userns=keep-id), as on an ssh target.  The run's env lines never
 * reach the batch script (root's, often): only the container, through the
 * 0600 --env-file.
 *
 * What a run asks for beyond one process:
 *  - inputs, read-only at /mlfs/inputs/NAME: a root job opens each with
 *    the creator's rights and mounts a read-only view of what it opened on
 *    RUNDIR/ct.inputs/NAME, in a mount namespace of its own, for podman to
 *    mount in (mlfs-run -v, the local target's code): root's podman never
 *    resolves a path of the user's.  Another job user's rootless podman
 *    mounts the paths themselves, with that user's rights (as its jobs
 *    without a container read them).
 *  - an array: Slurm runs the script once a task; each task's container
 *    is NAME-tI, with MLFS_ARRAY_INDEX and MLFS_ARRAY_COUNT (--env), its
 *    output in tasks/I/log.
 *  - nodes > 1: the script starts the node's part on every node by srun
 *    (one task a node), a container each (NAME-nK); procs_per_node > 1 or
 *    nodes > 1: mlfs-ranks inside starts the ranks, told the node's place
 *    (MLFS_RANKS_*: RANK, WORLD_SIZE, MASTER_ADDR/PORT as Slurm's script
 *    without a container gives them).
 *  - GPUs: those Slurm gave the job on the node, passed in by CDI
 *    (--device nvidia.com/gpu=I) and numbered from 0 inside; a node with
 *    no CDI spec of that kind fails the run with CT_NO_CDI.
 */
#include "slurm_image.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backend/ws.h"
#include "../lib/copy.h"
#include "cgroup.h"
#include "container.h"
#include "local_image.h"
#include "slurm_i.h"
#include "ssh_quote.h"

#define IMAGES_DIR	"images"	/* the image cache, in its folder */

/* Who the job runs as, and who the command runs as inside. */
struct ct_ids {
	uid_t job_uid;
	gid_t job_gid;
	uid_t in_uid;
	gid_t in_gid;
	int keep_id;
};

/* The job's user (`user`, or the daemon's) by its name, on this machine:
 * the nodes share its ids, as they share the files. */
static int job_ids(const struct slurm_target *st, const struct run_ctx *r,
		   struct ct_ids *ids, struct err *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	ids->job_uid = geteuid();
	ids->job_gid = getegid();
	if (st->cfg.user) {
		if (getpwnam_r(st->cfg.user, &pw, buf, sizeof(buf), &res) ||
		    !res)
			return err_set(e, -ENOENT, "environment: the job user"
				       " '%s' is unknown on this machine (its"
				       " ids must be the nodes' ones)",
				       st->cfg.user);
		ids->job_uid = pw.pw_uid;
		ids->job_gid = pw.pw_gid;
	}
	ids->keep_id = ids->job_uid != 0;
	ids->in_uid = ids->keep_id ? ids->job_uid : r->obj.uid;
	ids->in_gid = ids->keep_id ? ids->job_gid : r->obj.gid;
	return 0;
}

/* ---- the image cache ---------------------------------------------------- */

int sl_work_top(const struct target_ctx *t, char *path, struct err *e)
{
	const struct slurm_target *st = t->priv;
	char top[64];
	int wd, fd;

	sl_cache_top_name(t, top, sizeof(top));
	snprintf(path, PATH_MAX, "%s/%s", st->cfg.workdir, top);
	wd = open(st->cfg.workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wd < 0)
		return err_set(e, -errno, "cannot open workdir %s: %s",
			       st->cfg.workdir, strerror(errno));
	fd = sl_own_dir_at(wd, top, 0755);
	close(wd);
	if (fd == -EPERM)
		return err_set(e, -EPERM, "%s is not the daemon's own folder"
			       " (a link, or others may write it): nothing is"
			       " made through it", path);
	if (fd < 0)
		return err_set(e, fd, "cannot make %s: %s", path,
			       strerror(-fd));
	return fd;
}

int sl_work_anchor(const struct target_ctx *t, const char *work, char *buf,
		   int *fd, struct err *e)
{
	char top[PATH_MAX];
	size_t n;

	*fd = -1;
	if (!((const struct slurm_target *)t->priv)->cfg.workdir) {
		snprintf(buf, PATH_MAX, "%s", work);
		return 0;
	}
	*fd = sl_work_top(t, top, e);
	if (*fd < 0)
		return *fd;
	n = strlen(top);
	if (strncmp(work, top, n) || work[n] != '/' ||
	    strchr(work + n + 1, '/')) {
		close(*fd);
		*fd = -1;
		return err_set(e, -EINVAL, "the working copy %s is not in %s",
			       work, top);
	}
	snprintf(buf, PATH_MAX, "/proc/self/fd/%d%s", *fd, work + n);
	return 0;
}

/*
 * The cache's folder, made (0711, the daemon's) and opened without
 * following a link: its fd, or -errno with a sentence.  With a workdir
 * (a folder users may write, on the shared file system) its mlfs-HASH
 * folder is made and checked the same way (sl_work_top): a link or a
 * folder a user made there in its place is refused, never written
 * through.
 */
static int cache_open(struct target_ctx *t, char *path, struct err *e)
{
	const struct slurm_target *st = t->priv;
	int fd, md;

	if (st->cfg.workdir) {
		md = sl_work_top(t, path, e);
		if (md < 0)
			return md;
	} else {
		ws_obj_path(t->ws, t->obj.id, NULL, path);
		md = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			  O_CLOEXEC);
		if (md < 0)
			return err_set(e, -errno, "cannot open %s: %s", path,
				       strerror(errno));
	}
	strncat(path, "/" IMAGES_DIR, PATH_MAX - strlen(path) - 1);
	fd = sl_own_dir_at(md, IMAGES_DIR, 0711);
	close(md);
	if (fd == -EPERM)
		return err_set(e, -EPERM, "the image cache %s is not the"
			       " daemon's own folder (or others may write it)",
			       path);
	if (fd < 0)
		return err_set(e, fd, "cannot make the image cache %s: %s",
			       path, strerror(-fd));
	return fd;
}

/* The last line of @buf (stderr of a program), trimmed, in place. */
static const char *last_line(char *buf)
{
	char *p;

	while ((p = strrchr(buf, '\n')) && !p[1])
		*p = '\0';
	p = strrchr(buf, '\n');
	return p ? p + 1 : buf;
}

/* podman save @image into @fd; 0, or -EIO with podman's last line. */
static int podman_save(const char *image, int fd, struct err *e)
{
	static char *const env[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL
	};
	char podman[PATH_MAX], msg[1024] = "";
	char *argv[] = { podman, "--log-level=error", "save", (char *)image,
			 NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int pfd[2], status = -1, rc;
	size_t n = 0;
	ssize_t got;
	pid_t pid;

	if (env_podman(podman, sizeof(podman)))
		return err_set(e, -ENOENT, "environment: this machine has no"
			       " podman to stage the image from (apt-get"
			       " install podman runc)");
	if (pipe2(pfd, O_CLOEXEC))
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, podman, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		return err_set(e, -rc, "cannot start podman: %s", strerror(rc));
	}
	while ((got = read(pfd[0], msg + n, sizeof(msg) - 1 - n)) > 0 ||
	       (got < 0 && errno == EINTR))
		if (got > 0 && (n += (size_t)got) == sizeof(msg) - 1)
			n = 0;	/* keep the end: overwrite from the start */
	msg[n] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	return err_set(e, -EIO, "environment: podman save %s failed: %s",
		       image, msg[0] ? last_line(msg) : "no reason given");
}

/* The cache's file for @image and @ids: "<hex>-<uid>.tar". */
static int tar_name(const char *image, const struct ct_ids *ids, char *buf,
		    size_t len, struct err *e)
{
	const char *hex = strncmp(image, "sha256:", 7) ? image : image + 7;

	if (!*hex || strspn(hex, "0123456789abcdef") != strlen(hex))
		return err_set(e, -EINVAL, "environment: '%.80s' is not an"
			       " image id", image);
	snprintf(buf, len, "%s-%u.tar", hex, (unsigned)ids->job_uid);
	return 0;
}

/* Save the image into the cache as @name (a temporary name first). */
static int stage_new(struct target_ctx *t, int dfd, const char *image,
		     const char *name, const struct ct_ids *ids,
		     long long *bytes, struct err *e)
{
	char tmp[NAME_MAX + 1];
	struct stat sb;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), ".%.200s.%lld.part", name,
		 (long long)t->obj.id);
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, -errno, "environment: cannot stage the image:"
			       " %s", strerror(errno));
	rc = podman_save(image, fd, e);
	if (!rc && geteuid() == 0 && fchown(fd, ids->job_uid, ids->job_gid))
		rc = err_set(e, -errno, "environment: cannot give the staged"
			     " image to uid %u: %s", (unsigned)ids->job_uid,
			     strerror(errno));
	if (!rc && fstat(fd, &sb))
		rc = err_set(e, -errno, "stat: %s", strerror(errno));
	if (close(fd) && !rc)
		rc = err_set(e, -EIO, "environment: cannot stage the image:"
			     " %s", strerror(errno));
	if (!rc && renameat(dfd, tmp, dfd, name))
		rc = err_set(e, -errno, "environment: cannot stage the image:"
			     " %s", strerror(errno));
	if (rc)
		unlinkat(dfd, tmp, 0);
	else
		*bytes = (long long)sb.st_size;
	return rc;
}

/*
 * The image in the cache, for the job user of @ids: @tar gets its path;
 * @bytes its size when this call wrote it, -1 when it was there (a
 * regular file of the job user's, not empty).  0 or -errno + sentence.
 */
static int stage(struct target_ctx *t, const char *image,
		 const struct ct_ids *ids, char *tar, long long *bytes,
		 struct err *e)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	struct stat sb;
	int dfd, rc;

	*bytes = -1;
	rc = tar_name(image, ids, name, sizeof(name), e);
	if (rc)
		return rc;
	dfd = cache_open(t, dir, e);
	if (dfd < 0)
		return dfd;
	snprintf(tar, PATH_MAX, "%s/%s", dir, name);
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(sb.st_mode) || !sb.st_size ||
	    (geteuid() == 0 && sb.st_uid != ids->job_uid) ||
	    sl_cache_touch(dfd, name))	/* used now (or pruned: again) */
		rc = stage_new(t, dfd, image, name, ids, bytes, e);
	close(dfd);
	return rc;
}

/* ---- the run's folder --------------------------------------------------- */

/* @name in the run's folder anew (0600, no link followed), @uid's. */
static int file_new(const struct run_ctx *r, const char *name, uid_t uid,
		    gid_t gid, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = text ? strlen(text) : 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	if (fd < 0)
		return -errno;
	if (geteuid() == 0 && fchown(fd, uid, gid))
		rc = -errno;
	if (!rc && len && write(fd, text, len) != (ssize_t)len)
		rc = -EIO;
	if (close(fd) && !rc)
		rc = -EIO;
	return rc;
}

/* A file the job or the command appends to, @uid's (kept when it
 * exists): the metrics and params files, the inside user's (podman mounts
 * them); the log, the job user's (Slurm opens it as that user, and the
 * run's folder is the daemon's). */
static int raw_file(const struct run_ctx *r, const char *name, uid_t uid,
		    gid_t gid)
{
	char path[PATH_MAX];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (geteuid() == 0 && fchown(fd, uid, gid))
		rc = -errno;
	close(fd);
	return rc;
}

static char *env_text(const struct run_ctx *r)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	ct_env(f, r->obj.name, NULL, &r->env);
	for (int i = 0; i < r->ninputs; i++) {
		struct ct_input in = { r->inputs[i].name, NULL };

		ct_env_inputs(f, &in, 1);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int run_files(const struct run_ctx *r, const char *work,
		     const struct ct_ids *ids, struct err *e)
{
	const struct slurm_run *sr = r->priv;
	char *env = env_text(r);
	int rc = env ? 0 : -ENOMEM;

	if (!rc)
		rc = file_new(r, RUN_CT_ENV, ids->job_uid, ids->job_gid, env,
			      0600);
	free(env);
	if (!rc)
		rc = file_new(r, RUN_CT_ERROR, ids->job_uid, ids->job_gid,
			      NULL, 0600);
	if (!rc)
		rc = raw_file(r, RUN_METRICS_RAW, ids->in_uid, ids->in_gid);
	if (!rc)
		rc = raw_file(r, RUN_PARAMS_RAW, ids->in_uid, ids->in_gid);
	if (!rc)
		rc = raw_file(r, RUN_LOG, ids->job_uid, ids->job_gid);
	/* an array's tasks/I/log, which Slurm opens as the job user too */
	for (int k = 0; !rc && sr && r->res.array_n && k < sr->ntasks; k++) {
		char name[64];

		snprintf(name, sizeof(name), RUN_TASKS "/%d/" RUN_LOG,
			 sr->idx[k]);
		rc = raw_file(r, name, ids->job_uid, ids->job_gid);
	}
	if (rc)
		return err_set(e, rc, "environment: cannot write the"
			       " container's files: %s", strerror(-rc));
	/* the command writes its working copy as the user inside */
	if (geteuid() == 0 && chown_tree(work, ids->in_uid, ids->in_gid))
		return err_set(e, -errno, "environment: cannot give the"
			       " working copy to uid %u: %s",
			       (unsigned)ids->in_uid, strerror(errno));
	return 0;
}

/* ---- the batch script --------------------------------------------------- */

/* What the script of a run needs besides the ids. */
struct ct_job {
	int views;		/* a root job with inputs: mlfs-run -v opens
				 * them as the creator (RUNDIR/ct.inputs) */
	int multi;		/* nodes > 1: a container a node, by srun */
	int ranks;		/* mlfs-ranks inside: procs_per_node > 1 or
				 * nodes > 1 */
	int gpus;		/* the GPUs Slurm gave, by CDI */
};

/*
 * Before the container, on each node: podman (the config's, or the one
 * in the fixed PATH), the image loaded from the cache when the node's
 * podman lacks it, and checked; any failure leaves one sentence in the
 * error file (the daemon's `error`) and the log, and ends the job (125).
 * The hard limits of the node cap --ulimit.  Variables: e (error file),
 * i (image), t (its tar), n (container), p (podman, or empty: look it
 * up).
 */
static const char prelude[] =
	"h=${SLURMD_NODENAME:-$(uname -n)}\n"
	"fail() { printf '%s\\n' \"$1\" >\"$e\"; printf 'mlfs: %s\\n' \"$1\";"
	" exit 125; }\n"
	"if [ -z \"$p\" ]; then\n"
	"  p=$(command -v podman 2>/dev/null) || p=\n"
	"  case $p in /*) ;; *) fail \"environment: $h has no podman, and the"
	" run runs in a container there (apt-get install podman runc"
	" catatonit uidmap on $h)\" ;; esac\n"
	"elif [ ! -x \"$p\" ]; then\n"
	"  fail \"environment: $h has no podman at $p (the target's podman ="
	" ...; apt-get install podman runc catatonit uidmap on $h)\"\n"
	"fi\n"
	"if ! \"$p\" --log-level=error image exists \"$i\" 2>/dev/null; then\n"
	"  o=$(\"$p\" --log-level=error load -q -i \"$t\" 2>&1 >/dev/null) ||"
	" fail \"environment: podman on $h cannot load the image $i ($t):"
	" $(printf '%s\\n' \"$o\" | grep . | head -n 1 | sed 's/^Error: //')\"\n"
	"  \"$p\" --log-level=error image exists \"$i\" || fail \"environment:"
	" podman load on $h did not give the image $i ($t)\"\n"
	"  echo \"mlfs: the image $i was not on $h: loaded from $t\"\n"
	"fi\n"
	"l() { v=$(ulimit -H \"$1\"); case $v in *[!0-9]*|'') v=32768 ;; esac;"
	" [ \"$v\" -gt 32768 ] && v=32768; echo \"$v\"; }\n"
	"nf=$(l -n); np=$(l -u)\n"
	"k=\n"
	"stop() { k=1; \"$p\" --log-level=error stop -t 10 -- \"$n\""
	" >/dev/null 2>&1; }\n"
	"trap stop TERM INT HUP\n";

/*
 * The GPUs Slurm gave the job on this node (the step's on a node srun
 * started, else the job's, else CUDA_VISIBLE_DEVICES), each passed in by
 * CDI (--device nvidia.com/gpu=I: gd) and numbered from 0 inside (gi),
 * as on the local target; a node whose podman has no CDI spec of that
 * kind fails the run (c1 NODE c2: CT_NO_CDI).
 */
static const char gpu_part[] =
	"cdi() { for x in /etc/cdi/* /var/run/cdi/*; do case $x in"
	" *.yaml|*.yml|*.json) ;; *) continue ;; esac;"
	" [ -f \"$x\" ] && grep -qE"
	" 'kind.{0,3}:[[:space:]]*.?nvidia\\.com/gpu([^A-Za-z0-9./]|$)'"
	" \"$x\" 2>/dev/null && return 0; done; return 1; }\n"
	"cdi || fail \"$c1$h$c2\"\n"
	"gd=(); gi=\n"
	"IFS=, read -ra ga <<<\"${SLURM_STEP_GPUS:-${SLURM_JOB_GPUS:-"
	"${CUDA_VISIBLE_DEVICES-}}}\"\n"
	"for x in \"${ga[@]}\"; do case $x in ''|*[!0-9A-Za-z_-]*) continue"
	" ;; esac; gi=${gi:+$gi,}${#gd[@]};"
	" gd+=(\"--device=nvidia.com/gpu=$x\"); done\n"
	"unset ga x\n";

/* After the container's line (started in the background): wait for it
 * through a TERM (podman passes it on; stop() stops the container too),
 * then remove it after a stop or a podman that failed or was killed (its
 * --rm may not have run; after a plain exit it did).  podman's own
 * failure (125, or 126 from the OCI runtime: no container) is its last
 * "Error: " line in the log (g), as one sentence in the error file; an
 * input the creator cannot open (mlfs-run -v: 126), its "mlfs: input"
 * line. */
static const char postlude[] =
	" &\n"
	"c=$!\n"
	"while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || break; done\n"
	"if [ -n \"$k\" ] || [ \"$s\" -ge 125 ]; then\n"
	"  \"$p\" --log-level=error rm -f -- \"$n\" >/dev/null 2>&1\n"
	"fi\n"
	"if [ \"$s\" = 125 ] || [ \"$s\" = 126 ]; then\n"
	"  m=$(tail -c 4096 \"$g\" 2>/dev/null |"
	" grep -E '^(Error: |mlfs: input )' | tail -n 1)\n"
	"  case $m in\n"
	"  'mlfs: input '*) printf '%s\\n' \"${m#mlfs: } (on $h)\" >\"$e\" ;;\n"
	"  ?*) printf '%s\\n' \"podman on $h could not start the run's"
	" container: ${m#Error: }\" >\"$e\" ;;\n"
	"  esac\n"
	"fi\n"
	"exit $s\n";

/* Where the words of podman's line go: the FILE, and how the first word
 * (podman) and the GPUs' are written. */
struct words {
	FILE *f;
	const struct run_ctx *r;
	const struct ct_ids *ids;
	const struct ct_job *j;
};

#define W_PODMAN	"\x01podman"
#define W_GPUS		"\x01gpus"
#define W_NAME		"\x01name"

/* podman, or with inputs to open as the creator: mlfs-run -v, given
 * them as MLFS_INPUT_NAME=PATH (its environment only), then podman. */
static void podman_word(const struct words *w)
{
	char *q;

	if (!w->j->views) {
		fputs("\"$p\" ", w->f);
		return;
	}
	for (int i = 0; i < w->r->ninputs; i++) {
		q = sh_quote(w->r->inputs[i].path);
		fprintf(w->f, "MLFS_INPUT_%s=%s ", w->r->inputs[i].name,
			q ? q : "''");
		free(q);
	}
	fprintf(w->f, "\"$L/mlfs-run\" -v -u %u -g %u \"$D\" \"$p\" ",
		(unsigned)w->ids->in_uid, (unsigned)w->ids->in_gid);
}

/* One word of podman's line: podman, the GPUs and the limits are the
 * job's variables, the rest quoted. */
static void word(void *ctx, const char *w)
{
	const struct words *ws = ctx;
	FILE *f = ws->f;
	char *q;

	if (!strncmp(w, "--ulimit=nofile=", 16)) {
		fputs("\"--ulimit=nofile=$nf:$nf\" ", f);
	} else if (!strncmp(w, "--ulimit=nproc=", 15)) {
		fputs("\"--ulimit=nproc=$np:$np\" ", f);
	} else if (!strcmp(w, W_PODMAN)) {
		podman_word(ws);
	} else if (strstr(w, W_GPUS)) {
		fputs("\"${gd[@]}\" ", f);
	} else if (strstr(w, W_NAME)) {
		fputs("\"--name=$n\" ", f);
	} else {
		q = sh_quote(w);
		fputs(q ? q : "''", f);	/* ENOMEM: the job fails */
		fputc(' ', f);
		free(q);
	}
}

/* name=value, quoted for sh, and a newline. */
static void var(FILE *f, const char *name, const char *value)
{
	char *q = sh_quote(value);

	fprintf(f, "%s=%s\n", name, q ? q : "''");
	free(q);
}

/* The variables podman passes into the container from its own
 * environment (--env=NAME: they win over the env file's lines). */
static void pass_env(const struct run_ctx *r, const struct ct_job *j,
		     const char **v)
{
	int n = 0;

	if (r->res.array_n) {
		v[n++] = "MLFS_ARRAY_INDEX";
		v[n++] = "MLFS_ARRAY_COUNT";
	}
	if (j->multi) {
		v[n++] = "MLFS_RANKS_NODE";
		v[n++] = "MLFS_RANKS_NODES";
		v[n++] = "MLFS_RANKS_ADDR";
		v[n++] = "MLFS_RANKS_PORT";
	}
	/* unless the env lines set it (theirs win, as on the local target) */
	if (j->gpus && !kv_get(&r->env, "CUDA_VISIBLE_DEVICES"))
		v[n++] = "CUDA_VISIBLE_DEVICES";
	v[n] = NULL;
}

/* What each node runs before podman's line: its container's name, its
 * place among the nodes, an array task's index, the GPUs. */
static void node_part(FILE *f, const struct run_ctx *r,
		      const struct ct_job *j)
{
	fputs(prelude, f);
	if (j->multi)	/* the first failure's code is the job's (x) */
		fputs("trap 'q=$?; [ $q -ne 0 ] && (set -C; echo $q >\"$x\")"
		      " 2>/dev/null' EXIT\n"
		      "n=$n-n$SLURM_NODEID\n"
		      "export MLFS_RANKS_NODE=$SLURM_NODEID"
		      " MLFS_RANKS_ADDR=$SLURM_LAUNCH_NODE_IPADDR\n", f);
	if (r->res.array_n)
		fprintf(f, "n=$n-t$SLURM_ARRAY_TASK_ID\n"
			"export MLFS_ARRAY_INDEX=$SLURM_ARRAY_TASK_ID"
			" MLFS_ARRAY_COUNT=%ld\n", r->res.array_n);
	if (j->gpus)
		fputs(gpu_part, f);
	if (j->gpus && !kv_get(&r->env, "CUDA_VISIBLE_DEVICES"))
		fputs("export CUDA_VISIBLE_DEVICES=$gi\n", f);
	if (j->views)
		fputs("[ -x \"$L/mlfs-run\" ] || fail \"environment: $h has no"
		      " $L/mlfs-run, which opens the run's inputs with its"
		      " creator's rights (the nodes must see mlfs's folder at"
		      " the same path)\"\n", f);
}

/* The podman line of a node, and what follows it, into @f. */
static void node_script(FILE *f, const struct run_ctx *r, const char *work,
			const struct ct_ids *ids, const struct ct_job *j)
{
	char met[PATH_MAX], par[PATH_MAX], envf[PATH_MAX];
	char procs[24], ranks[PATH_MAX], *srcs = NULL;
	const char *launcher[] = { ranks, procs, NULL }, *env[8];
	struct ct_input *in = NULL;
	struct words w = { f, r, ids, j };
	struct ct_spec c = {
		.podman = W_PODMAN, .quiet = 1, .name = W_NAME,
		.uid = ids->in_uid, .gid = ids->in_gid, .keep_id = ids->keep_id,
		.network = "host", .nofile = CT_ULIMIT_MAX,
		.nproc = CT_ULIMIT_MAX, .pids = CG_PIDS_DEFAULT,
		.memory_mib = r->res.memory_mib, .cpu_milli = r->res.cpu_milli,
		.work = work, .metrics = met, .params = par,
		.lib = ws_helper_dir(r->ws), .env_file = envf,
		.image = r->image, .command = r->command, .pass_env = env,
		.gpus = j->gpus ? W_GPUS : NULL,
	};

	node_part(f, r, j);
	snprintf(met, sizeof(met), "%s/%s", r->dir, RUN_METRICS_RAW);
	snprintf(par, sizeof(par), "%s/%s", r->dir, RUN_PARAMS_RAW);
	snprintf(envf, sizeof(envf), "%s/%s", r->dir, RUN_CT_ENV);
	pass_env(r, j, env);
	if (j->ranks) {
		snprintf(ranks, sizeof(ranks), "%s/%s", CT_LIB, RUN_CT_RANKS);
		snprintf(procs, sizeof(procs), "%ld",
			 r->res.procs_per_node > 1 ? r->res.procs_per_node : 1);
		c.launcher = launcher;
	}
	if (r->ninputs) {
		in = calloc(r->ninputs, sizeof(*in));
		srcs = calloc(r->ninputs, PATH_MAX);
	}
	for (int i = 0; in && srcs && i < r->ninputs; i++) {
		char *src = srcs + (size_t)i * PATH_MAX;

		/* the view mlfs-run -v makes, or the path itself (read by
		 * the job user's rootless podman, with its rights) */
		if (j->views)
			snprintf(src, PATH_MAX, "%s/%s/%s", r->dir,
				 RUN_CT_INPUTS, r->inputs[i].name);
		else
			snprintf(src, PATH_MAX, "%s", r->inputs[i].path);
		in[i].name = r->inputs[i].name;
		in[i].src = src;
	}
	if (in && srcs) {
		c.inputs = in;
		c.ninputs = r->ninputs;
	}
	/* the inputs' run fails rather than run without them (ENOMEM) */
	if (r->ninputs && !c.ninputs)
		fputs("fail 'out of memory'\n", f);
	ct_args(&c, word, &w);
	fputs(postlude, f);
	free(in);
	free(srcs);
}

/* With nodes > 1 the batch script starts a node's part on each node by
 * srun (one task a node; MASTER_PORT as the Slurm script without a
 * container picks it on the batch host), the first failure's code being
 * the job's. */
static void multi_script(FILE *f, const char *body)
{
	char *q = sh_quote(body);

	fputs("export w e g i t n f p L D x c1 c2\n"
	      "o=$((20000 + SLURM_JOB_ID % 20000)); z=0\n"
	      "while [ $z -lt 100 ] && (exec 3<>/dev/tcp/127.0.0.1/$o)"
	      " 2>/dev/null; do o=$((o + 1)); z=$((z + 1)); done\n"
	      "export MLFS_RANKS_PORT=$o"
	      " MLFS_RANKS_NODES=$SLURM_JOB_NUM_NODES\n"
	      "rm -f -- \"$x\"\n"
	      "srun --nodes=$SLURM_JOB_NUM_NODES --ntasks=$SLURM_JOB_NUM_NODES"
	      " --ntasks-per-node=1 --kill-on-bad-exit=1 /bin/bash -c ", f);
	fputs(q ? q : "'exit 1'", f);
	fputs(" mlfs-node\n"
	      "s=$?\n"
	      "[ -f \"$x\" ] && [ ! -L \"$x\" ] && read -r s <\"$x\"\n"
	      "rm -f -- \"$x\"\n"
	      "case $s in *[!0-9]*|'') s=1 ;; esac\n"
	      "exit $s\n", f);
	free(q);
}

static char *script_text(struct target_ctx *t, const struct run_ctx *r,
			 const char *work, const struct ct_ids *ids,
			 const struct ct_job *j, const char *tar,
			 long long staged)
{
	const struct slurm_target *st = t->priv;
	char name[64], path[PATH_MAX], *buf = NULL, *body = NULL;
	size_t len, blen;
	FILE *f = open_memstream(&buf, &len), *b;

	if (!f)
		return NULL;
	ct_name(ws_state_dir(r->ws), (long long)r->obj.id, name, sizeof(name));
	fprintf(f, "#!/bin/bash\n# mlfs run %s: in a container of %s\n"
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		"/sbin:/bin; export PATH\n", r->obj.name, r->image);
	/* rootless podman finds its store from HOME */
	fputs("u=$(id -un); export USER=\"$u\" LOGNAME=\"$u\""
	      " HOME=$(getent passwd \"$u\" | cut -d: -f6); unset u\n", f);
	var(f, "w", work);
	fputs("cd -- \"$w\" || exit 1\n", f);
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_CT_ERROR);
	var(f, "e", path);
	if (r->res.array_n) {	/* each task's own log */
		var(f, "g", r->dir);
		fputs("g=$g/" RUN_TASKS "/$SLURM_ARRAY_TASK_ID/" RUN_LOG "\n",
		      f);
	} else {
		snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_LOG);
		var(f, "g", path);
	}
	var(f, "i", r->image);
	var(f, "t", tar);
	var(f, "n", name);
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_CT_ENV);
	var(f, "f", path);
	var(f, "p", st->cfg.podman ? st->cfg.podman : "");
	var(f, "L", ws_helper_dir(r->ws));
	var(f, "D", r->dir);
	/* the first failing node's code: in the run's folder for a root job
	 * (the working copy is the creator's, who could put a link there),
	 * else in the working copy (the job user's own) */
	if (ids->job_uid == 0)
		snprintf(path, sizeof(path), "%s/ct.exit", r->dir);
	else
		snprintf(path, sizeof(path), "%s/.mlfs-exit", work);
	var(f, "x", path);
	if (j->gpus) {	/* CT_NO_CDI around the node's name */
		const char *s = strstr(CT_NO_CDI, "%s");

		snprintf(path, sizeof(path), "environment: %.*s",
			 s ? (int)(s - CT_NO_CDI) : 0, CT_NO_CDI);
		var(f, "c1", path);
		var(f, "c2", s ? s + 2 : "");
	}
	if (staged >= 0)
		fprintf(f, "echo 'mlfs: the image %s was staged for the nodes"
			" (podman save), %.1f MB'\n", r->image,
			(double)staged / 1e6);
	if (!j->multi) {
		node_script(f, r, work, ids, j);
	} else {
		b = open_memstream(&body, &blen);
		if (b) {
			node_script(b, r, work, ids, j);
			if (fclose(b)) {
				free(body);
				body = NULL;
			}
		}
		if (body)
			multi_script(f, body);
		else
			fputs("exit 1\n", f);
		free(body);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Mount sources podman's --volume can take: no ':' (its separator). */
static int input_paths(const struct run_ctx *r, struct err *e)
{
	for (int i = 0; i < r->ninputs; i++)
		if (strchr(r->inputs[i].path, ':'))
			return err_set(e, -EINVAL, "input '%s': %s holds a"
				       " ':', which podman's --volume cannot"
				       " mount", r->inputs[i].name,
				       r->inputs[i].path);
	return 0;
}

int sl_image_prepare(struct target_ctx *t, struct run_ctx *r,
		     const char *work, char **script, struct err *e)
{
	char tar[PATH_MAX], path[PATH_MAX], at[PATH_MAX];
	struct ct_ids ids = { 0 };
	struct ct_job j = {
		.multi = r->res.nodes > 1,
		.ranks = r->res.nodes > 1 || r->res.procs_per_node > 1,
		.gpus = r->res.gpus > 0,
	};
	long long staged;
	int rc, fd;

	*script = NULL;
	rc = job_ids(t->priv, r, &ids, e);
	if (rc)
		return rc;
	/* a root job opens the inputs as the creator (mlfs-run -v), another
	 * job user's podman mounts the paths as they are, with its rights */
	j.views = r->ninputs > 0 && ids.job_uid == 0;
	if (!j.views)
		rc = input_paths(r, e);
	snprintf(path, sizeof(path), "%s/%s", ws_helper_dir(r->ws),
		 RUN_CT_RANKS);
	if (!rc && j.ranks && access(path, X_OK))
		rc = err_set(e, -ENOENT, "environment: %s is missing: several"
			     " processes in a container need it (it is built"
			     " with mlfs)", path);
	if (!rc)
		rc = stage(t, r->image, &ids, tar, &staged, e);
	/* the working copy's files, through the held mlfs-HASH folder */
	if (!rc && !(rc = sl_work_anchor(t, work, at, &fd, e))) {
		rc = run_files(r, at, &ids, e);
		if (fd >= 0)
			close(fd);
	}
	if (rc)
		return rc;
	*script = script_text(t, r, work, &ids, &j, tar, staged);
	return *script ? 0 : err_set(e, -ENOMEM, "out of memory");
}

int sl_image_failed(const struct run_ctx *r, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if (!r->image[0] || len < 2)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", r->dir, RUN_CT_ERROR);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return buf[0] != '\0';
}
