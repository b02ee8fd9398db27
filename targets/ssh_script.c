// SPDX-License-Identifier: MIT
/*
 * ssh_script.c — the remote scripts of the SSH driver (see ssh_script.h).
 *
 * Scripts are built with open_memstream; every value from a user or a
 * config goes through sh_quote()/sh_quote_path() on its way in.
 */
#include "ssh_script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_quote.h"

/*
 * Functions the status-reading scripts share.  A process is alive when
 * the boot is the same, its pid (from DIR/pid, or DIR/FILE) exists, is not
 * a zombie (a slow PID 1 leaves them around) and started at the recorded
 * time (not a recycled pid).  mlfs_chunk prints "N SIZE" and then exactly
 * N bytes of FILE from OFFSET, never more than MAX: the file only grows,
 * so the count is known before the bytes are sent.
 */
static const char prelude[] =
	"mlfs_pst() { sed 's/^.*) //' /proc/\"$1\"/stat 2>/dev/null |"
	" cut -d' ' -f1,20; }\n"
	"mlfs_alive() {\n"
	"  [ \"$(cat \"$1/boot\" 2>/dev/null)\" ="
	" \"$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\" ] || return 1\n"
	"  set -- $(cat \"$1/${2:-pid}\" 2>/dev/null)\n"
	"  [ -n \"$2\" ] || return 1\n"
	"  set -- \"$1\" \"$2\" $(mlfs_pst \"$1\")\n"
	"  [ -n \"$3\" ] && [ \"$3\" != Z ] && [ \"$4\" = \"$2\" ]\n"
	"}\n"
	"mlfs_chunk() {\n"
	"  s=0; [ -f \"$1\" ] && s=$((0 + $(wc -c <\"$1\")))\n"
	"  n=$((s - $2)); [ \"$n\" -gt \"$3\" ] && n=$3; [ \"$n\" -lt 0 ] && n=0\n"
	"  echo \"$n $s\"\n"
	"  if [ \"$n\" -gt 0 ]; then\n"
	"    tail -c +$(($2 + 1)) -- \"$1\" | head -c \"$n\"\n"
	"  fi\n"
	"}\n";

/* A run's state, and one run's reply to the poll. */
static const char run_prelude[] =
	"mlfs_st() {\n"
	"  if [ ! -d \"$1\" ]; then echo nodir\n"
	"  elif [ -s \"$1/exit\" ]; then echo \"exited $(cat \"$1/exit\")\"\n"
	"  elif [ ! -e \"$1/launched\" ]; then echo fresh\n"
	"  elif [ ! -s \"$1/pid\" ]; then echo starting\n"
	"  elif mlfs_alive \"$1\"; then echo \"running $(cut -d' ' -f1 \"$1/pid\")\"\n"
	"  elif [ -s \"$1/exit\" ]; then echo \"exited $(cat \"$1/exit\")\"\n"
	"  else echo lost; fi\n"
	"}\n"
	"mlfs_one() {\n"
	"  printf '@@mlfs %s ' \"$1\"; mlfs_st \"$2\"\n"
	"  mlfs_chunk \"$2/log\" \"$3\" \"$4\"\n"
	"  mlfs_chunk \"$2/metrics\" \"$5\" \"$6\"\n"
	"  mlfs_chunk \"$2/params\" \"$7\" \"$8\"\n"
	"}\n"
	"mlfs_arr() { a=$1; printf '+ev '; mlfs_chunk \"$1/tasks.ev\" \"$2\" \"$3\"; }\n"
	"mlfs_task() { printf '+t %s ' \"$1\"; mlfs_chunk \"$a/tasks/$1/log\" \"$2\" \"$3\"; }\n";

/*
 * The liveness probe of a serving replica, run on the host as
 * `python3 -c "$mlfs_live_py" SPID PORT` (mlfs-serve.py needs python3
 * there anyway): the socket that SPID listens on at 127.0.0.1, other than
 * the service's PORT, is mlfs-serve's own liveness port; a GET / on it
 * must be answered within 2 s.  Prints 1 (answered), 0 (not), or - (no
 * such port: a server of the user's, by `command =`).  The poll starts it
 * in the background (R/live.tmp, then R/live) and reports its answer at
 * the next poll, so that a wedged replica never slows the round.
 */
static const char dep_live_py[] =
	"import os, socket, sys\n"
	"pid, port = sys.argv[1], int(sys.argv[2])\n"
	"ino = set()\n"
	"for f in os.listdir('/proc/%s/fd' % pid):\n"
	"    try:\n"
	"        l = os.readlink('/proc/%s/fd/%s' % (pid, f))\n"
	"    except OSError:\n"
	"        continue\n"
	"    if l.startswith('socket:['):\n"
	"        ino.add(l[8:-1])\n"
	"live = 0\n"
	"for t in open('/proc/net/tcp').readlines()[1:]:\n"
	"    f = t.split()\n"
	"    a, h = f[1].split(':')\n"
	"    if f[3] == '0A' and a == '0100007F' and f[9] in ino \\\n"
	"            and int(h, 16) != port:\n"
	"        live = int(h, 16)\n"
	"        break\n"
	"if not live:\n"
	"    print('-')\n"
	"    sys.exit(0)\n"
	"try:\n"
	"    s = socket.create_connection(('127.0.0.1', live), 1)\n"
	"    s.settimeout(2)\n"
	"    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
	"    ok = s.recv(16).startswith(b'HTTP/1.')\n"
	"except OSError:\n"
	"    ok = False\n"
	"print(1 if ok else 0)\n";

/*
 * The wrapper, run as `setsid sh -c WRAPPER mlfs-run COMMAND [LAUNCHER]`
 * in D: its pid is the job's pid, process group and session.  It survives
 * TERM (cancel) to write the exit code of the command it waits for.  With
 * LAUNCHER (procs_per_node > 1, or an array) that script runs the command
 * instead.
 */
static const char wrapper[] =
	"trap 'c=1' TERM INT HUP\n"
	"cat /proc/sys/kernel/random/boot_id >boot 2>/dev/null\n"
	"t=$(sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f20)\n"
	"echo \"$$ $t\" >pid.tmp && mv -f pid.tmp pid\n"
	"(if [ -f mlfs-env ]; then . ./mlfs-env; rm -f mlfs-env; fi\n"
	" PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd -P)/py; export PYTHONPATH\n"
	" cd work || exit 1\n"
	" if [ -n \"${2-}\" ]; then exec sh -c \"$2\" mlfs-ranks \"$1\"; fi\n"
	" exec sh -c \"$1\") >>log 2>&1 </dev/null\n"
	"s=$?\n"
	"echo \"$s\" >exit.tmp && mv -f exit.tmp exit\n";

/*
 * The launcher of procs_per_node = N (the %d) on a host, in POSIX sh (the
 * host may have nothing else): mlfs-ranks.c's job.  Each rank, in work/,
 * gets RANK … MASTER_PORT (a port the kernel picks for python3's bind to
 * port 0, else 20000 + pid mod 20000) and its share of
 * CUDA_VISIBLE_DEVICES; its lines go through a sed that outlives TERM, so
 * that nothing it printed is lost.  Ranks note their pid and exit code in
 * D/rank.R.*; every 0.5 s the launcher looks: the first non-zero code
 * (the lowest rank among those seen in the same look) is the run's, and
 * then the group gets TERM (the launcher and the wrapper shrug it off) and
 * the ranks KILL 10 s later.  Once all have exited, their seds get up to
 * 5 s to pass on the rest (D/rank.R.done when they do): a process a rank
 * left behind, holding its output, does not hold the run.  The rank files
 * are in R (the %s: .., or /dev/shm inside a container, the one folder
 * every uid may write there); $MLFS_MASTER_PORT, when set, is the port (a
 * container's own pid, 2 or so, would give every run the same fallback);
 * a sed without -u (busybox) relays with its buffering; the first TERM
 * that reaches it there (the container's init signals it alone) it
 * passes on to its group, the ranks.
 */
static const char ranks_launcher[] =
	"n=%d R=%s\n"
	"%s\n"
	"p=${MLFS_MASTER_PORT-}\n"
	"[ -n \"$p\" ] || p=$(python3 -c 'import socket; s = socket.socket();"
	" s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])' 2>/dev/null)"
	" || p=$((20000 + $$ %% 20000))\n"
	"export MASTER_ADDR=127.0.0.1 MASTER_PORT=$p WORLD_SIZE=$n"
	" LOCAL_WORLD_SIZE=$n NODE_RANK=0 MLFS_NODE_RANK=0 MLFS_NUM_NODES=1\n"
	"all=${CUDA_VISIBLE_DEVICES-}\n"
	"k=$(($(printf '%%s' \"$all\" | tr , '\\n' | grep -c .) / n))\n"
	"rm -f \"$R\"/rank.*\n"
	"r=0\n"
	"while [ $r -lt $n ]; do\n"
	" (trap : TERM INT HUP\n"
	"  export RANK=$r LOCAL_RANK=$r\n"
	"  [ $k -gt 0 ] && export CUDA_VISIBLE_DEVICES=$(printf '%%s'"
	" \"$all\" | cut -d, -f$((r * k + 1))-$((r * k + k)))\n"
	"  sh -c 'echo $$ >\"$2/rank.$RANK.pid\"; exec sh -c \"$1\"' mlfs-rank"
	" \"$1\" \"$R\" 2>&1\n"
	"  echo $? >\"$R/rank.$r.exit\") |"
	" (trap '' TERM INT HUP; { sed -u \"s/^/$r: /\" 2>/dev/null ||"
	" sed \"s/^/$r: /\"; }; : >\"$R/rank.$r.done\") &\n"
	" r=$((r + 1))\n"
	"done\n"
	"first=0 t=0\n"
	"while :; do\n"
	" d=0 r=0\n"
	" while [ $r -lt $n ]; do\n"
	"  c=; [ -s \"$R/rank.$r.exit\" ] && read -r c <\"$R/rank.$r.exit\"\n"
	"  if [ -n \"$c\" ]; then d=$((d + 1))\n"
	"   if [ \"$first\" = 0 ] && [ \"$c\" != 0 ]; then first=$c;"
	" kill -TERM 0; fi\n"
	"  fi\n"
	"  r=$((r + 1))\n"
	" done\n"
	" [ $d -ge $n ] && break\n"
	" [ \"$first\" != 0 ] && t=$((t + 1))\n"
	" if [ $t -eq 20 ]; then for f in \"$R\"/rank.*.pid; do"
	" read -r q <\"$f\" && kill -KILL \"$q\" 2>/dev/null; done; fi\n"
	" sleep 0.5\n"
	"done\n"
	"t=0\n"
	"while [ $t -lt 20 ] && [ $(ls \"$R\"/rank.*.done 2>/dev/null | wc -l)"
	" -lt $n ]; do sleep 0.25; t=$((t + 1)); done\n"
	"exit $first\n";

/*
 * The launcher of an array run on a host, in POSIX sh (the host may have
 * no mlfs binaries; mlfs-array.c's job): run by the wrapper as the
 * command, in work/, with the user's command as $1.  The %%d and %%ld are
 * M (tasks at once), the time limit and the grace of a task, the %%s the
 * array's items (digits , - : only), expanded here with awk and sort.
 * Each task runs in a session of its own (setsid) that records "PID
 * STARTTIME" in tasks/I/pid (with builtins: a fork costs, a task is
 * often short), under a subshell that outlives TERM to write
 * its exit code to tasks/I/exit; every 0.2 s (0.05 s after a look that
 * changed something: short tasks) the launcher looks: an ended
 * task's line goes to tasks.ev (with its log's size, so that the daemon
 * knows when it has all of it) and the run's log, then free slots get the
 * next tasks.  A TERM (cancel) stops every running task (TERM to its
 * session, KILL after the grace) and starts no more.
 */
static const char array_launcher[] =
	"m=%d lim=%ld grace=%ld\n"
	"stop=0 first=0 run= cmd=$1\n"
	"trap 'stop=1' TERM INT HUP\n"
	"set -- $(printf '%%s\\n' '%s' | tr , '\\n' | awk -F'[-:]' '{"
	" b = NF > 1 ? $2 : $1; s = NF > 2 ? $3 : 1;"
	" for (i = $1 + 0; i <= b + 0; i += s) print i }' | sort -n)\n"
	"n=$#\n"
	"mkdir -p ../tasks && : >>../tasks.ev || exit 126\n"
	"tsig() { read -r p _ <../tasks/$1/pid 2>/dev/null &&"
	" kill -s $2 -- -$p 2>/dev/null; }\n"
	"look() {\n"
	" unset IFS; f=../tasks/$1\n"
	" if [ -s $f/exit ]; then\n"
	"  read -r c <$f/exit; w=Failed\n"
	"  [ \"$c\" = 0 ] && w=Completed\n"
	"  [ \"$c\" != 0 ] && [ $stop = 1 ] && [ $4 = 0 ] && w=Canceled\n"
	"  [ $4 = 1 ] && echo \"mlfs: task $1 exceeded its time limit of $lim s"
	" and was stopped\"\n"
	"  echo \"mlfs: task $1 ended (exit $c)\"\n"
	"  [ \"$3\" != 0 ] && [ -s ../ct.name ] && \"$(cat ../ct.podman)\""
	" --log-level=error rm -f -t 0 -- \"$(cat ../ct.name)-t$1\" >/dev/null 2>&1\n"
	"  echo \"e $1 $c $((0 + $(wc -c <$f/log))) $w\" >>../tasks.ev\n"
	"  [ \"$c\" != 0 ] && [ $first = 0 ] && first=$c\n"
	"  ch=1; return 0\n"
	" fi\n"
	" k=$3 o=$4\n"
	" [ $stop = 0 ] && [ $lim -gt 0 ] && [ $((now - $2)) -gt $lim ] && o=1\n"
	" if [ $stop = 1 ] || [ $o = 1 ]; then\n"
	"  if [ $k = 0 ]; then tsig $1 TERM && k=$now\n"
	"  elif [ $((now - k)) -ge $grace ]; then tsig $1 KILL; fi\n"
	" fi\n"
	" left=\"$left $1.$2.$k.$o\"\n"
	"}\n"
	"begin() {\n"
	" f=../tasks/$1\n"
	" if ! { mkdir -p $f && : >$f/log && rm -f $f/exit $f/pid; }; then\n"
	"  echo \"mlfs: task $1 cannot start\"; echo \"e $1 127 0 Failed\" >>../tasks.ev\n"
	"  [ $first = 0 ] && first=127; return 0\n"
	" fi\n"
	" echo \"s $1\" >>../tasks.ev\n"
	" echo \"mlfs: task $1 started\"\n"
	" (trap : TERM INT HUP\n"
	"  MLFS_ARRAY_INDEX=$1 MLFS_ARRAY_COUNT=$n setsid sh -c"
	" 'c=$1; read -r s </proc/$$/stat; s=${s##*) }; set -- $s;"
	" echo \"$$ ${20}\" >\"$0/pid\"; exec sh -c \"$c\"' $f \"$cmd\""
	" >>$f/log 2>&1 </dev/null\n"
	"  echo $? >$f/exit.tmp && mv -f $f/exit.tmp $f/exit) &\n"
	" run=\"$run $1.$now.0.0\" ch=1\n"
	"}\n"
	"while :; do\n"
	" now=$(date +%%s) left= ch=0\n"
	" for e in $run; do IFS=.; look $e; done\n"
	" run=$left k=0\n"
	" for e in $run; do k=$((k + 1)); done\n"
	" while [ $stop = 0 ] && [ $# -gt 0 ] && [ $k -lt $m ]; do\n"
	"  begin $1; shift; k=$((k + 1))\n"
	" done\n"
	" [ -z \"$run\" ] && { [ $# = 0 ] || [ $stop = 1 ]; } && break\n"
	" nap=0.2; [ $ch = 1 ] && nap=0.05\n"
	" (trap '' TERM INT HUP; sleep $nap)\n"
	"done\n"
	"[ $stop = 1 ] && exit 143\n"
	"exit $first\n";

static const char detect_tail[] =
	"echo \"workdir $(pwd -P)\"\n"
	"echo \"host $(uname -n)\"\n"
	"echo \"os $(uname -s)\"\n"
	"echo \"cpus $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)\"\n"
	"awk '/^MemTotal:/ { printf \"memory %.0f\\n\", $2 * 1024 }'"
	" /proc/meminfo 2>/dev/null\n"
	"g=; command -v nvidia-smi >/dev/null 2>&1 && g=$(nvidia-smi"
	" --query-gpu=index,name,memory.total --format=csv,noheader"
	" 2>/dev/null)\n"
	"if [ -n \"$g\" ]; then echo \"gpus $(printf '%s\\n' \"$g\" | grep -c .)\";"
	" printf '%s\\n' \"$g\" | sed 's/^/gpu /'; else echo 'gpus 0'; fi\n"
	"if command -v rsync >/dev/null 2>&1; then echo 'rsync 1'; else"
	" echo 'rsync 0'; fi\n"
	"if command -v setsid >/dev/null 2>&1; then echo 'setsid 1'; else"
	" echo 'setsid 0'; fi\n";

/* A script being built in a memstream; the first failure is kept. */
struct script {
	FILE *f;
	char *buf;			/* set by fclose */
	size_t len;
	int rc;				/* 0, or -ENOMEM / -EINVAL */
};

/* Write @v quoted (as a path when @path) to @s. */
static void put_q(struct script *s, const char *v, int path)
{
	char *q;

	if (s->rc)
		return;
	q = path ? sh_quote_path(v) : sh_quote(v);
	if (!q) {
		s->rc = -ENOMEM;
		return;
	}
	fputs(q, s->f);
	free(q);
}

/*
 * Start @s with the shell functions @pre1 and @pre2 (either may be NULL),
 * then, when @var is set, the line VAR=PATH with @path quoted as a path.
 * 0 or -ENOMEM.
 */
static int script_open(struct script *s, const char *pre1, const char *pre2,
		       const char *var, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->f = open_memstream(&s->buf, &s->len);
	if (!s->f)
		return -ENOMEM;
	if (pre1)
		fputs(pre1, s->f);
	if (pre2)
		fputs(pre2, s->f);
	if (var) {
		fprintf(s->f, "%s=", var);
		put_q(s, path, 1);
		fputc('\n', s->f);
	}
	return 0;
}

/* The script (malloc'd), or NULL (freed) after any failure. */
static char *script_close(struct script *s)
{
	if (fclose(s->f) || s->rc) {
		free(s->buf);
		return NULL;
	}
	return s->buf;
}

char *ssh_script_detect(const char *workdir)
{
	struct script s;

	if (script_open(&s, NULL, NULL, "d", workdir))
		return NULL;
	fputs("mkdir -p -- \"$d\" && cd -- \"$d\" || exit 1\n", s.f);
	fputs(detect_tail, s.f);
	return script_close(&s);
}

char *ssh_script_create(const char *dir)
{
	struct script s;

	if (script_open(&s, NULL, NULL, "d", dir))
		return NULL;
	fputs("mkdir -p -- \"$d\" && cd -- \"$d\" || exit 1\n"
	      "if [ -e launched ] || [ -s pid ] || [ -s exit ]; then"
	      " echo launched; exit 0; fi\n"
	      "rm -rf work || exit 1\n"
	      "echo fresh\n", s.f);
	return script_close(&s);
}

/* A key safe to write unquoted after `export` ([A-Za-z_][A-Za-z0-9_]*). */
static int env_key_ok(const char *k)
{
	if (!*k || (*k >= '0' && *k <= '9'))
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

/*
 * The run's environment, the same on every target: `env -i`, then the
 * login's HOME, USER, LOGNAME and SHELL, a default PATH and LANG, MLFS_*
 * (and CUDA_VISIBLE_DEVICES): nothing of sshd's session nor what the
 * daemon's ssh client forwarded (SendEnv).  Starts the line that runs the
 * wrapper.
 */
static const char env_reset[] =
	"u=$(id -un 2>/dev/null || echo \"$USER\")\n"
	"setsid env -i HOME=\"$HOME\" USER=\"$u\" LOGNAME=\"$u\""
	" SHELL=\"${SHELL:-/bin/sh}\" PATH=/usr/local/bin:/usr/bin:/bin"
	" LANG=C.UTF-8";

/* One line of mlfs-env: export KEY=VALUE, quoted for the wrapper's `.`,
 * then quoted again as an argument of printf '%s\n'. */
static void put_env_line(struct script *s, const char *k, const char *v)
{
	char *q = sh_quote(v), *line = NULL;

	if (!q || asprintf(&line, "export %s=%s", k, q) < 0) {
		free(q);
		s->rc = -ENOMEM;
		return;
	}
	fputc(' ', s->f);
	put_q(s, line, 0);
	free(line);
	free(q);
}

/* MLFS_INPUT_NAME=PATH for each input: on the command line of the
 * wrapper's env -i (paths of the host's cache, not secrets). */
static void put_inputs(struct script *s, const struct ssh_launch *l)
{
	for (int i = 0; l->inputs && l->inputs[i] && l->inputs[i + 1];
	     i += 2) {
		if (!env_key_ok(l->inputs[i])) {
			s->rc = -EINVAL;
			return;
		}
		fprintf(s->f, " %s=", l->inputs[i]);
		put_q(s, l->inputs[i + 1], 0);
	}
}

/*
 * The env lines go to mlfs-env (0600), which the wrapper reads and removes
 * before the command runs: values (secrets) are never in an argv that
 * `ps` shows to the host's other users.
 */
static void put_env(struct script *s, const struct ssh_launch *l)
{
	fputs("(umask 077 && printf '%s\\n'", s->f);
	for (int i = 0; l->env && l->env[i] && l->env[i + 1]; i += 2) {
		if (!env_key_ok(l->env[i])) {
			s->rc = -EINVAL;
			return;
		}
		put_env_line(s, l->env[i], l->env[i + 1]);
	}
	fputs(" >mlfs-env) || exit 1\nh=$(pwd -P)\n", s->f);
	fputs(env_reset, s->f);
	fputs(" MLFS_RUN=", s->f);
	put_q(s, l->name, 0);
	fputs(" MLFS_OUTPUTS=\"$h/work/outputs\" MLFS_METRICS=\"$h/metrics\""
	      " MLFS_PARAMS=\"$h/params\"", s->f);
	put_inputs(s, l);
	if (l->gpus) {
		fputs(" CUDA_VISIBLE_DEVICES=", s->f);
		put_q(s, l->gpus, 0);
	}
}

char *ssh_script_ranks(int n, int in_container)
{
	char *text;

	/* in a container the init (catatonit) signals this launcher only:
	 * it passes the first TERM on to its group (the ranks) */
	if (asprintf(&text, ranks_launcher, n, in_container ? "/dev/shm" :
		     "..", in_container ? "trap 'trap : TERM INT HUP;"
		     " kill -TERM 0' TERM INT HUP" : "trap : TERM INT HUP") < 0)
		return NULL;
	return text;
}

static void put_launcher(struct script *s, int n)
{
	char *text = ssh_script_ranks(n, 0);

	if (!text) {
		s->rc = -ENOMEM;
		return;
	}
	fputc(' ', s->f);
	put_q(s, text, 0);
	free(text);
}

/* An array's items: what lib/array.h reads, without %M; nothing the
 * launcher's single quotes could not hold. */
static int array_items_ok(const char *v)
{
	if (!*v || strlen(v) >= 256)
		return 0;
	for (; *v; v++)
		if (!((*v >= '0' && *v <= '9') || *v == ',' || *v == '-' ||
		      *v == ':'))
			return 0;
	return 1;
}

/* The array launcher in place of the ranks' one (an array's task is one
 * process: the parser refuses procs_per_node with array). */
static void put_array_launcher(struct script *s, const struct ssh_launch *l)
{
	char *text;

	if (!array_items_ok(l->array) || l->array_max < 1) {
		s->rc = -EINVAL;
		return;
	}
	if (asprintf(&text, array_launcher, l->array_max, l->task_limit,
		     l->task_grace, l->array) < 0) {
		s->rc = -ENOMEM;
		return;
	}
	fputc(' ', s->f);
	put_q(s, text, 0);
	free(text);
}

/* A run in an environment: what its container reads or mounts, and
 * what cancel needs to find it. */
static void put_ct_files(struct script *s, const struct ssh_launch *l)
{
	fputs("(umask 077 && printf '%s' ", s->f);
	put_q(s, l->ct_env, 0);
	fputs(" >ct.env) || exit 1\nprintf '%s\\n' ", s->f);
	put_q(s, l->ct_name, 0);
	fputs(" >ct.name || exit 1\nprintf '%s\\n' ", s->f);
	put_q(s, l->ct_podman, 0);
	fputs(" >ct.podman || exit 1\n"
	      "mkdir -p py && : >>metrics && : >>params || exit 1\n", s->f);
}

char *ssh_script_launch(const struct ssh_launch *l)
{
	struct script s;

	if (script_open(&s, NULL, NULL, "d", l->dir))
		return NULL;
	fputs("cd -- \"$d\" || exit 1\n"
	      "if [ -e launched ] || [ -s pid ] || [ -s exit ]; then"
	      " echo launched; exit 0; fi\n"
	      ": >launched || exit 1\n"
	      "rm -rf exit exit.tmp pid pid.tmp boot tasks tasks.ev\n"
	      "mkdir -p work/outputs || exit 1\n", s.f);
	if (l->pylib) {		/* import mlfs, the version of this daemon */
		fputs("mkdir -p py && printf '%s' ", s.f);
		put_q(&s, l->pylib, 0);
		fputs(" >py/mlfs.py || exit 1\n", s.f);
	}
	if (l->ct_cmd)
		put_ct_files(&s, l);
	put_env(&s, l);
	fputs(" sh -c ", s.f);
	put_q(&s, wrapper, 0);
	fputs(" mlfs-run ", s.f);
	put_q(&s, l->ct_cmd ? l->ct_cmd : l->command, 0);
	if (l->array)
		put_array_launcher(&s, l);
	else if (l->procs > 1)
		put_launcher(&s, l->procs);
	fputs(" </dev/null >/dev/null 2>&1 &\n"
	      "i=0; while [ ! -s pid ] && [ \"$i\" -lt 100 ]; do sleep 0.1;"
	      " i=$((i + 1)); done\n"
	      "if [ -s pid ]; then echo \"started $(cut -d' ' -f1 pid)\"; else"
	      " echo 'the command did not start within 10 s' >&2; exit 1; fi\n",
	      s.f);
	return script_close(&s);
}

/* An array run's part of the poll: its events, the logs of the tasks
 * asked (mlfs_task reads them in the folder mlfs_arr named). */
static void put_array_poll(struct script *s, const struct ssh_poll_item *it)
{
	fputs("mlfs_arr ", s->f);
	put_q(s, it->dir, 1);
	fprintf(s->f, " %lld %lld\n", it->ev_off, it->ev_max);
	for (int k = 0; k < it->ntasks; k++)
		fprintf(s->f, "mlfs_task %d %lld %lld\n", it->tasks[k].idx,
			it->tasks[k].off, it->tasks[k].max);
}

char *ssh_script_poll(const struct ssh_poll_item *items, int n)
{
	struct script s;

	if (script_open(&s, prelude, run_prelude, NULL, NULL))
		return NULL;
	for (int i = 0; i < n; i++) {
		fprintf(s.f, "mlfs_one %d ", i);
		put_q(&s, items[i].dir, 1);
		fprintf(s.f, " %lld %lld %lld %lld %lld %lld\n",
			items[i].log_off, items[i].log_max, items[i].met_off,
			items[i].met_max, items[i].par_off, items[i].par_max);
		if (items[i].array)
			put_array_poll(&s, &items[i]);
	}
	return script_close(&s);
}

/* The container of a run in an environment, by its name: podman kill
 * (and rm -f after KILL), whether its wrapper lives or not; an array's
 * tasks' containers too (NAME-tI, one a task). */
static const char ct_signal[] =
	"if [ -s \"$d/ct.name\" ] && [ -s \"$d/ct.podman\" ]; then\n"
	"  n=$(cat \"$d/ct.name\"); p=$(cat \"$d/ct.podman\")\n"
	"  for c in \"$n\" $(cd \"$d\" 2>/dev/null && for t in tasks/*/; do"
	" t=${t%/}; [ -d \"$t\" ] && echo \"$n-t${t#tasks/}\"; done); do\n"
	"    \"$p\" --log-level=error kill -s \"$sg\" -- \"$c\" >/dev/null 2>&1\n"
	"    [ \"$sg\" = KILL ] &&"
	" \"$p\" --log-level=error rm -f -t 0 -- \"$c\" >/dev/null 2>&1\n"
	"  done\n"
	"fi\n";

char *ssh_script_signal(const char *dir, const char *sig)
{
	struct script s;

	if (script_open(&s, prelude, NULL, "d", dir))
		return NULL;
	fputs("sg=", s.f);
	put_q(&s, sig, 0);
	fputs("\n", s.f);
	fputs(ct_signal, s.f);
	/* an array's tasks have sessions of their own: each is told too */
	fputs("mlfs_alive \"$d\" &&"
	      " kill -s \"$sg\" -- -\"$(cut -d' ' -f1 \"$d/pid\")\" 2>/dev/null\n"
	      "for f in \"$d\"/tasks/*/pid; do\n"
	      "  [ -f \"$f\" ] && mlfs_alive \"$d\" \"${f#\"$d\"/}\" &&"
	      " kill -s \"$sg\" -- -\"$(cut -d' ' -f1 \"$f\")\" 2>/dev/null\n"
	      "done\nexit 0\n", s.f);
	return script_close(&s);
}

char *ssh_script_remove(const char *workdir, const char *const *rids)
{
	struct script s;

	if (script_open(&s, NULL, NULL, NULL, NULL))
		return NULL;
	fputs("cd -- ", s.f);
	put_q(&s, workdir, 1);
	fputs(" 2>/dev/null || exit 0\nrm -rf --", s.f);
	for (int i = 0; rids[i]; i++) {
		fputc(' ', s.f);
		put_q(&s, rids[i], 0);
	}
	fputc('\n', s.f);
	return script_close(&s);
}

/* ---- deployments --------------------------------------------------------- */

/*
 * What the deployment scripts add to the prelude.  mlfs_tcp PORT lists the
 * inodes of the TCP sockets listening on PORT (any address, IPv4 or 6);
 * mlfs_listens PGID PORT says whether a process of group PGID holds one
 * (so that a new replica counts only once it listens itself, not because
 * an old one answers on the shared port); mlfs_free_port SEED picks a
 * port of the ephemeral range no socket uses; mlfs_sig D SIG signals
 * replica D; mlfs_rep I D OFF MAX PORT is one replica's reply to the poll.
 * POSIX sh and awk only: a host serving `command =` needs no python.
 */
static const char dep_prelude[] =
	"mlfs_pgs() {\n"
	"  sed 's/^.*) //' /proc/\"$1\"/stat 2>/dev/null | cut -d' ' -f1,3,20\n"
	"}\n"
	"mlfs_tcp() {\n"
	"  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |\n"
	"    awk -v h=\"$(printf '%04X' \"$1\")\" '$4 == \"0A\" &&\n"
	"      substr($2, length($2) - 3) == h { printf \"socket:[%s] \", $10 }'\n"
	"}\n"
	"mlfs_free_port() {\n"
	"  set -- \"$1\" $(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)\n"
	"  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |\n"
	"    awk -v s=\"$1\" -v lo=\"${2:-32768}\" -v hi=\"${3:-60999}\" '\n"
	"    function hex(x, k, v) {\n"
	"      for (k = 1; k <= length(x); k++)\n"
	"        v = v * 16 + index(\"0123456789ABCDEF\", substr(x, k, 1)) - 1\n"
	"      return v\n"
	"    }\n"
	"    $2 ~ /:/ { n = split($2, a, \":\"); u[hex(a[n])] = 1 }\n"
	"    END {\n"
	"      r = hi - lo + 1\n"
	"      for (k = 0; k < r; k++)\n"
	"        if (!((p = lo + (s + k) % r) in u)) { print p; exit }\n"
	"    }'\n"
	"}\n"
	"mlfs_listens() {\n"
	"  i=$(mlfs_tcp \"$2\")\n"
	"  [ -n \"$i\" ] || return 1\n"
	"  for p in $(cat /proc/[0-9]*/stat 2>/dev/null | awk -v g=\"$1\" '\n"
	"      { p = $1; sub(/^.*\\) /, \"\"); if ($3 == g) print p }'); do\n"
	"    ls -l /proc/\"$p\"/fd 2>/dev/null | awk -v i=\"$i\" '\n"
	"      BEGIN { n = split(i, a, \" \"); for (k = 1; k <= n; k++) w[a[k]] = 1 }\n"
	"      ($NF in w) { f = 1 }\n"
	"      END { exit !f }' && return 0\n"
	"  done\n"
	"  return 1\n"
	"}\n"
	"mlfs_sig() {\n"
	"  w=$(cut -d' ' -f1 \"$1/pid\" 2>/dev/null)\n"
	"  if [ -s \"$1/ct.name\" ]; then mlfs_ctsig \"$1\" \"$2\" \"$w\"; return 0; fi\n"
	"  if mlfs_alive \"$1\"; then kill -s \"$2\" -- \"-$w\" 2>/dev/null; return 0; fi\n"
	"  mlfs_alive \"$1\" spid || return 0\n"
	"  set -- \"$1\" \"$2\" $(cat \"$1/spid\")\n"
	"  set -- \"$@\" $(mlfs_pgs \"$3\")\n"
	"  if [ \"$6\" = \"$w\" ]; then kill -s \"$2\" -- \"-$w\" 2>/dev/null\n"
	"  else kill -s \"$2\" \"$3\" 2>/dev/null; fi\n"
	"  return 0\n"
	"}\n"
	"mlfs_ctpid() {\n"
	"  [ -s \"$1/ct.name\" ] && mlfs_alive \"$1\" spid || return 0\n"
	"  mlfs_c=$(cat \"$1/ct\" 2>/dev/null)\n"
	"  case $mlfs_c in '' | *[!0-9]*) ;; *) [ -d \"/proc/$mlfs_c\" ] && echo \"$mlfs_c\" ;; esac\n"
	"}\n"
	"mlfs_ctsig() {\n"
	"  c=$(mlfs_ctpid \"$1\")\n"
	"  if [ -n \"$c\" ]; then kill -s \"$2\" \"$c\" 2>/dev/null\n"
	"  elif mlfs_alive \"$1\" spid || mlfs_alive \"$1\"; then\n"
	"    \"$(cat \"$1/ct.podman\")\" --log-level=error kill -s \"$2\" -- \"$(cat \"$1/ct.name\")\" >/dev/null 2>&1\n"
	"  fi\n"
	"  [ \"$2\" = KILL ] || return 0\n"
	"  \"$(cat \"$1/ct.podman\")\" --log-level=error rm -f -t 0 -- \"$(cat \"$1/ct.name\")\" >/dev/null 2>&1\n"
	"  mlfs_alive \"$1\" && kill -s KILL -- \"-$3\" 2>/dev/null\n"
	"  return 0\n"
	"}\n"
	"mlfs_rd() {\n"
	"  if [ -s \"$1/ct.user\" ]; then\n"
	"    set -- \"$1\" \"$2\" $(cat \"$1/ct.user\")\n"
	"    setpriv --reuid=\"$3\" --regid=\"$4\" --clear-groups \\\n"
	"      dd if=\"$1/in/$2\" iflag=nofollow status=none 2>/dev/null\n"
	"  else dd if=\"$1/in/$2\" iflag=nofollow status=none 2>/dev/null; fi\n"
	"}\n"
	"mlfs_lsess() {\n"
	"  i=$(mlfs_tcp \"$2\")\n"
	"  [ -n \"$i\" ] || return 0\n"
	"  for p in $(cat /proc/[0-9]*/stat 2>/dev/null | awk -v g=\"$1\" '\n"
	"      { p = $1; sub(/^.*\\) /, \"\"); if ($4 == g) print p }'); do\n"
	"    ls -l /proc/\"$p\"/fd 2>/dev/null | awk -v i=\"$i\" '\n"
	"      BEGIN { n = split(i, a, \" \"); for (k = 1; k <= n; k++) w[a[k]] = 1 }\n"
	"      ($NF in w) { f = 1 }\n"
	"      END { exit !f }' && { echo \"$p\"; return 0; }\n"
	"  done\n"
	"}\n"
	"mlfs_ctrm() {\n"
	"  for f in \"$1\"/ct.name \"$1\"/*/ct.name \"$1\"/*/*/ct.name; do\n"
	"    [ -s \"$f\" ] && [ -s \"${f%.name}.podman\" ] || continue\n"
	"    \"$(cat \"${f%.name}.podman\")\" --log-level=error rm -f -t 0 -- \"$(cat \"$f\")\" >/dev/null 2>&1\n"
	"  done\n"
	"}\n"
	"mlfs_live() {\n"
	"  command -v python3 >/dev/null 2>&1 || { echo -; return; }\n"
	"  python3 -c \"$mlfs_live_py\" \"$1\" \"$2\" 2>/dev/null || echo -\n"
	"}\n"
	"mlfs_stats() {\n"
	"  if [ -d \"$1/in\" ]; then mlfs_rd \"$1\" stats; else cat \"$1/stats\" 2>/dev/null; fi\n"
	"}\n"
	"mlfs_flight() {\n"
	"  mlfs_n=$(mlfs_stats \"$1\" |\n"
	"    sed -n 's/^in_flight \\([0-9]\\{1,7\\}\\)$/\\1/p' | head -n 1)\n"
	"  echo \"f${mlfs_n:--}\"\n"
	"}\n"
	"mlfs_direct() {\n"
	"  mlfs_dp=$(mlfs_stats \"$1\" |\n"
	"    sed -n 's/^direct_port \\([0-9]\\{1,5\\}\\)$/\\1/p' | head -n 1)\n"
	"  [ -n \"$mlfs_dp\" ] || return 0\n"
	"  if [ -s \"$1/ct.name\" ]; then\n"
	"    [ -n \"$2\" ] && [ -n \"$(mlfs_lsess \"$2\" \"$mlfs_dp\")\" ] || return 0\n"
	"  else\n"
	"    mlfs_listens \"$(cut -d' ' -f1 \"$1/pid\")\" \"$mlfs_dp\" || return 0\n"
	"  fi\n"
	"  echo \"d$mlfs_dp\"\n"
	"}\n"
	"mlfs_rep() {\n"
	"  if [ ! -d \"$2\" ]; then st=nodir\n"
	"  elif mlfs_alive \"$2\" spid; then\n"
	"    set -- \"$@\" $(cat \"$2/spid\")\n"
	"    st=\"running $7\"\n"
	"    c=$(mlfs_ctpid \"$2\")\n"
	"    if [ \"$5\" -gt 0 ]; then\n"
	"      st=\"starting $7\"\n"
	"      if [ -s \"$2/ct.name\" ]; then\n"
	"        [ -n \"$c\" ] && [ -n \"$(mlfs_lsess \"$c\" \"$5\")\" ] && st=\"ready $7\"\n"
	"      else\n"
	"        mlfs_listens \"$(cut -d' ' -f1 \"$2/pid\")\" \"$5\" && st=\"ready $7\"\n"
	"      fi\n"
	"    elif [ \"$6\" -gt 0 ]; then\n"
	"      st=\"running $7 $(cat \"$2/live\" 2>/dev/null)\"\n"
	"      rm -f \"$2/live\"\n"
	"      [ -n \"$(find \"$2/live.tmp\" -mmin +1 2>/dev/null)\" ] && rm -f \"$2/live.tmp\"\n"
	"      lp=$7\n"
	"      [ -s \"$2/ct.name\" ] && lp=$([ -n \"$c\" ] && mlfs_lsess \"$c\" \"$6\")\n"
	"      [ -e \"$2/live.tmp\" ] || (mlfs_live \"${lp:-0}\" \"$6\" >\"$2/live.tmp\" &&\n"
	"        mv -f \"$2/live.tmp\" \"$2/live\") </dev/null >/dev/null 2>&1 &\n"
	"    fi\n"
	"    case $st in running*) st=\"$st $(mlfs_flight \"$2\")\" ;; esac\n"
	"    [ \"$mlfs_da\" = 1 ] && case $st in running* | ready*)"
	" st=\"$st $(mlfs_direct \"$2\" \"$c\")\" ;; esac\n"
	"  elif [ -s \"$2/exit\" ]; then st=\"exited $(cat \"$2/exit\")\"\n"
	"  elif mlfs_alive \"$2\"; then st=\"starting 0\"\n"
	"  elif [ -s \"$2/exit\" ]; then st=\"exited $(cat \"$2/exit\")\"\n"
	"  else st=lost; fi\n"
	"  printf '@@mlfs %s %s\\n' \"$1\" \"$st\"\n"
	"  mlfs_chunk \"$2/log\" \"$3\" \"$4\"\n"
	"  case $st in\n"
	"  exited* | lost)\n"
	"    if [ ! -s \"$2/err\" ] && [ -d \"$2/in\" ]; then\n"
	"      mlfs_rd \"$2\" err | head -c 1024 >\"$2/err.tmp\" && mv -f \"$2/err.tmp\" \"$2/err\"\n"
	"    fi\n"
	"    mlfs_chunk \"$2/err\" 0 1024 ;;\n"
	"  *) echo '0 0' ;;\n"
	"  esac\n"
	"}\n";

/*
 * The wrapper, run as `setsid sh -c WRAPPER mlfs-replica G SPID ARGV…` in
 * R: its pid is the replica's process group and session.  It survives
 * TERM (a drain) to record the server's exit status.  SPID, run by the
 * server's own shell just before it execs ARGV, records the server's pid.
 * The env lines are sourced in the server's subshell, after its words are
 * kept in "$@": a line may set any name (d, g, i ...) without harm.
 */
static const char dep_wrapper[] =
	"trap 'c=1' TERM INT HUP\n"
	"cat /proc/sys/kernel/random/boot_id >boot 2>/dev/null\n"
	"t=$(sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f20)\n"
	"echo \"$$ $t\" >pid.tmp && mv -f pid.tmp pid\n"
	"d=$(pwd -P) g=$1 i=$2\n"
	"shift 2\n"
	"if ! MLFS_KEY=$(cat \"$g/serve/key\"); then\n"
	"  echo \"cannot read the deployment's key on the host\" >err\n"
	"  echo 1 >exit\n"
	"  exit 1\n"
	"fi\n"
	"export MLFS_KEY\n"
	"if [ -f \"$g/serve/env\" ] && [ ! -r \"$g/serve/env\" ]; then\n"
	"  echo \"cannot read the deployment's env on the host\" >err\n"
	"  echo 1 >exit\n"
	"  exit 1\n"
	"fi\n"
	"(set -- \"$i\" \"$d\" \"$@\"; cd \"$g/code\" || exit 1\n"
	" if [ -f \"$g/serve/env\" ]; then . \"$g/serve/env\" || exit 1; fi\n"
	" exec sh -c \"$@\") >>log 2>&1 </dev/null\n"
	"s=$?\n"
	"echo \"$s\" >exit.tmp && mv -f exit.tmp exit\n";

static const char dep_spid[] =
	"t=$(sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f20)\n"
	"echo \"$$ $t\" >\"$0/spid.tmp\" && mv -f \"$0/spid.tmp\" \"$0/spid\" &&"
	" exec \"$@\"\n";

char *ssh_script_dep_stage(const char *gen_dir, const char *model_id)
{
	struct script s;

	if (script_open(&s, NULL, NULL, "g", gen_dir))
		return NULL;
	fputs("mkdir -p -- \"$g\" && cd -- \"$g\" || exit 1\n"
	      "if [ -e staged ]; then echo staged; exit 0; fi\n"
	      "rm -rf code model serve model.id || exit 1\n"
	      "m=", s.f);
	put_q(&s, model_id, 0);
	fputs("\nfor p in ../g*; do\n"
	      "  [ -e \"$p/staged\" ] && [ \"$(cat \"$p/model.id\" 2>/dev/null)\""
	      " = \"$m\" ] || continue\n"
	      "  if cp -Rp -- \"$p/model\" model 2>/dev/null; then echo model;"
	      " break; fi\n"
	      "  rm -rf model\n"
	      "done\n"
	      "echo fresh\n", s.f);
	return script_close(&s);
}

/*
 * A replica in an environment: the server's argv is `sh -c DEP_CT R
 * PODMAN run …`: podman attached (its exit is the server's), the
 * container removed once it returns (a podman killed leaves it) before
 * the wrapper records the exit, podman's own failures
 * (125-127) told in R/err (MLFS_CT_IMAGE and MLFS_CT_HINT, from the
 * wrapper's environment, for that).
 */
static const char dep_ct[] =
	"trap 'c=1' TERM INT HUP\n"
	"unset MLFS_KEY\n"
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n"
	"\"$@\"\n"
	"s=$?\n"
	"\"$1\" --log-level=error rm -f -t 0 -- \"$(cat \"$0/ct.name\")\" >/dev/null 2>&1\n"
	"if [ \"$s\" -ge 125 ] && [ \"$s\" -le 127 ] && [ ! -s \"$0/in/err\" ]; then\n"
	"  [ \"$s\" = 125 ] && MLFS_CT_HINT=\n"
	"  printf 'podman could not run the server in image %.19s (exit %s%s):"
	" see log\\n' \"$MLFS_CT_IMAGE\" \"$s\" \"$MLFS_CT_HINT\" >\"$0/err\"\n"
	"fi\n"
	"exit $s\n";

/* The launch's part for a container: podman, the login's ids and limits,
 * R/in, ct.name, ct.podman; for a root login ct.user, and the
 * generation's code/ and model/ made the creator's once (G/ct.owned: a
 * root login's copies are root's, with the modes they had here), links
 * changed themselves, never followed. */
static const char dep_ct_launch[] =
	"p=$(command -v podman 2>/dev/null) || p=\n"
	"case $p in /*) ;; *) echo 'fail the host has no podman (apt-get install podman runc)'; exit 0 ;; esac\n"
	"mkdir in || exit 1\n"
	"printf '%s\\n' \"$n\" >ct.name && printf '%s\\n' \"$p\" >ct.podman || exit 1\n"
	"if [ \"$(id -u)\" = 0 ]; then\n"
	"  chown -- \"$cu:$cg\" in && printf '%s %s\\n' \"$cu\" \"$cg\" >ct.user || exit 1\n"
	"  [ -e \"$g/ct.owned\" ] || { chown -R -h -- \"$cu:$cg\" \"$g/code\" \"$g/model\" &&\n"
	"    : >\"$g/ct.owned\"; } || exit 1\n"
	"  u1=--userns=host u2=--user=$cu:$cg\n"
	"else\n"
	"  u1=--userns=keep-id u2=--user=$(id -u):$(id -g)\n"
	"fi\n"
	"set -- $(awk '/^Max open files/ { n = $5 } /^Max processes/ { p = $4 }\n"
	"  END { print n, p }' /proc/self/limits)\n"
	"nf=${1:-0} np=${2:-0}\n"
	"case $nf in '' | *[!0-9]*) nf=32768 ;; esac\n"
	"case $np in '' | *[!0-9]*) np=32768 ;; esac\n"
	"[ \"$nf\" -gt 32768 ] || [ \"$nf\" -eq 0 ] && nf=32768\n"
	"[ \"$np\" -gt 32768 ] || [ \"$np\" -eq 0 ] && np=32768\n";

/* The start of the line that runs a replica's wrapper: its environment
 * as a run's (env_reset), the key comes later, from serve/key. */
static void put_dep_env(struct script *s, const struct ssh_dep_launch *l)
{
	fputs(env_reset, s->f);
	fputs(" AZUREML_MODEL_DIR=\"$g/model\" MLFS_ERROR_FILE=\"$d/err\""
	      " MLFS_STATS_FILE=\"$d/stats\""
	      " PORT=\"$port\" PYTHONUNBUFFERED=1 MLFS_DEPLOYMENT=", s->f);
	put_q(s, l->name, 0);
	fprintf(s->f, " MLFS_REPLICA=%d MLFS_HOST=", l->slot);
	put_q(s, l->host, 0);
}

/* The port: the fixed one (checked when asked), or one picked now. */
static void put_dep_port(struct script *s, const struct ssh_dep_launch *l)
{
	fprintf(s->f, "port=%d\n", l->port);
	if (!l->port)
		fprintf(s->f, "port=$(mlfs_free_port %u)\n"
			"[ -n \"$port\" ] || { echo 'fail no TCP port is free on"
			" the host'; exit 0; }\n", l->seed % 1000000);
	else if (l->check_port)
		fputs("[ -n \"$(mlfs_tcp \"$port\")\" ] &&"
		      " { echo \"busy $port\"; exit 0; }\n", s->f);
}

/* The server's argv after the wrapper's own arguments. */
static void put_dep_server(struct script *s, const struct ssh_dep_launch *l)
{
	if (l->command) {
		fputs(" sh -c ", s->f);
		put_q(s, l->command, 0);
		return;
	}
	fputs(" python3 \"$g/serve/mlfs-serve.py\" --entry ", s->f);
	put_q(s, l->entry, 0);
	fputs(" --host ", s->f);
	put_q(s, l->host, 0);
	fputs(" --port \"$port\" --direct-host ", s->f);
	put_q(s, l->host, 0);
	if (l->max_body > 0)
		fprintf(s->f, " --max-body %ld", l->max_body);
	if (l->read_timeout > 0)
		fprintf(s->f, " --read-timeout %d", l->read_timeout);
	if (l->raw) {
		fputs(" --raw ", s->f);
		put_q(s, l->raw, 0);
	}
}

/* The container's argv after the wrapper's own arguments (the host's
 * values from dep_ct_launch's variables). */
static void put_dep_ct(struct script *s, const struct ssh_dep_launch *l)
{
	fputs(" sh -c ", s->f);
	put_q(s, dep_ct, 0);
	fputs(" \"$d\" \"$p\" --log-level=error run --rm"
	      " --name=\"$n\" --runtime=runc --init \"$u1\" \"$u2\""
	      " --cap-drop=all --security-opt=no-new-privileges"
	      " --ulimit=nofile=$nf:$nf --ulimit=nproc=$np:$np"
	      " --pids-limit=4096 --network=host --log-driver=passthrough"
	      " --pidfile=\"$d/ct\" --env-file=\"$g/serve/ct.env\"", s->f);
	fprintf(s->f, " --env=MLFS_REPLICA=%d --env=PORT=\"$port\"", l->slot);
	fputs(" --volume=\"$g/model\":/mlfs/model:ro"
	      " --volume=\"$g/code\":/mlfs/code:ro"
	      " --volume=\"$g/serve/mlfs-serve.py\":/mlfs/lib/mlfs-serve.py:ro"
	      " --volume=\"$d/in\":/mlfs/rep --workdir=/mlfs/code ", s->f);
	put_q(s, l->image, 0);
	if (l->command) {
		fputs(" /bin/sh -c ", s->f);
		put_q(s, l->command, 0);
		return;
	}
	fputs(" python3 /mlfs/lib/mlfs-serve.py --entry=", s->f);
	put_q(s, l->entry, 0);
	fputs(" --host=", s->f);
	put_q(s, l->host, 0);
	fputs(" --port=\"$port\" --direct-host=", s->f);
	put_q(s, l->host, 0);
	if (l->max_body > 0)
		fprintf(s->f, " --max-body=%ld", l->max_body);
	if (l->read_timeout > 0)
		fprintf(s->f, " --read-timeout=%d", l->read_timeout);
	if (l->raw) {
		fputs(" --raw=", s->f);
		put_q(s, l->raw, 0);
	}
}

char *ssh_script_dep_launch(const struct ssh_dep_launch *l)
{
	struct script s;

	if (script_open(&s, prelude, dep_prelude, "g", l->gen_dir))
		return NULL;
	fputs("cd -- \"$g\" || exit 1\ng=$(pwd -P)\n", s.f);
	if (l->mark) {
		fputs("printf '%s\\n' ", s.f);
		put_q(&s, l->model_id, 0);
		fputs(" >model.id && : >staged || exit 1\n", s.f);
	}
	fputs("[ -e staged ] || { echo \"fail the deployment's files are not"
	      " complete on the host\"; exit 0; }\nr=", s.f);
	put_q(&s, l->rep, 0);
	fputs("\nmkdir -- \"$r\" && cd -- \"$r\" || exit 1\nd=$(pwd -P)\n",
	      s.f);
	put_dep_port(&s, l);
	if (l->image) {
		fputs("n=", s.f);
		put_q(&s, l->ct_name, 0);
		fprintf(s.f, "\ncu=%u cg=%u\n", l->ct_uid, l->ct_gid);
		fputs(dep_ct_launch, s.f);
	} else if (!l->command) {
		fputs("command -v python3 >/dev/null 2>&1 || { echo 'fail the"
		      " host has no python3, which mlfs-serve.py needs (or set"
		      " command = ... in config)'; exit 0; }\n", s.f);
	}
	put_dep_env(&s, l);
	if (l->image) {	/* for dep_ct's sentence on podman's failure */
		fputs(" MLFS_CT_IMAGE=", s.f);
		put_q(&s, l->image, 0);
		fputs(l->command ? " MLFS_CT_HINT=" : " MLFS_CT_HINT='; does the"
		      " image have python3?'", s.f);
	}
	fputs(" sh -c ", s.f);
	put_q(&s, dep_wrapper, 0);
	fputs(" mlfs-replica \"$g\" ", s.f);
	put_q(&s, dep_spid, 0);
	if (l->image)
		put_dep_ct(&s, l);
	else
		put_dep_server(&s, l);
	fputs(" </dev/null >/dev/null 2>&1 &\n"
	      "i=0; while [ ! -s spid ] && [ ! -s exit ] && [ \"$i\" -lt 200 ];"
	      " do sleep 0.05; i=$((i + 1)); done\n"
	      "if [ -s spid ]; then echo \"started $(cat spid) $port\"\n"
	      "elif [ -s exit ]; then echo \"started 0 0 $port\"\n"
	      "else echo 'fail the server did not start within 10 s'; fi\n",
	      s.f);
	return script_close(&s);
}

char *ssh_script_dep_poll(const struct ssh_dep_item *items, int n,
			  const char *const *trash)
{
	struct script s;

	if (script_open(&s, prelude, dep_prelude, NULL, NULL))
		return NULL;
	for (int i = 0; i < n; i++) {
		if (!items[i].sig)
			continue;
		fputs("mlfs_sig ", s.f);
		put_q(&s, items[i].dir, 1);
		fputc(' ', s.f);
		put_q(&s, items[i].sig, 0);
		fputc('\n', s.f);
	}
	for (int i = 0; trash && trash[i]; i++) {
		fputs("mlfs_ctrm ", s.f);	/* a folder's containers first */
		put_q(&s, trash[i], 1);
		fputc('\n', s.f);
	}
	if (trash && trash[0]) {
		fputs("rm -rf --", s.f);
		for (int i = 0; trash[i]; i++) {
			fputc(' ', s.f);
			put_q(&s, trash[i], 1);
		}
		fputs(" 2>/dev/null\n", s.f);
	}
	for (int i = 0; i < n; i++)
		if (items[i].live_port > 0) {
			fputs("mlfs_live_py=", s.f);
			put_q(&s, dep_live_py, 0);
			fputc('\n', s.f);
			break;
		}
	for (int i = 0; i < n; i++) {
		fprintf(s.f, "mlfs_da=%d; mlfs_rep %d ", items[i].direct_ask,
			i);
		put_q(&s, items[i].dir, 1);
		fprintf(s.f, " %lld %lld %d %d\n", items[i].log_off,
			items[i].log_max, items[i].listen_port > 0 ?
			items[i].listen_port : 0, items[i].live_port > 0 ?
			items[i].live_port : 0);
	}
	return script_close(&s);
}

/* ---- parsing the poll's output ----------------------------------------- */

/* Copy the line at *@pos (without '\n') into @line; advance past it. */
static int take_line(const char *buf, size_t len, size_t *pos, char *line,
		     size_t n)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);
	size_t l;

	if (!nl)
		return -EINVAL;
	l = nl - (buf + *pos);
	if (l >= n)
		return -EINVAL;
	memcpy(line, buf + *pos, l);
	line[l] = '\0';
	*pos += l + 1;
	return 0;
}

/* "N SIZE\n" then N bytes. */
static int take_chunk(const char *buf, size_t len, size_t *pos,
		      const char **data, long long *n, long long *size)
{
	char line[64];

	if (take_line(buf, len, pos, line, sizeof(line)) ||
	    sscanf(line, "%lld %lld", n, size) != 2 || *n < 0 ||
	    (unsigned long long)*n > len - *pos)
		return -EINVAL;
	*data = buf + *pos;
	*pos += *n;
	return 0;
}

/* At the start, skip what a login script may have printed. */
static int find_first(const char *buf, size_t len, size_t *pos)
{
	static const char mark[] = "@@mlfs ";
	const char *p = buf;

	while ((size_t)(p - buf) + sizeof(mark) - 1 <= len) {
		if (!memcmp(p, mark, sizeof(mark) - 1)) {
			*pos = p - buf;
			return 1;
		}
		p = memchr(p, '\n', len - (p - buf));
		if (!p)
			break;
		p++;
	}
	return 0;
}

/* After a replica's PID: "fN" (requests in flight, "f-" unknown), "dP"
 * (its direct port, when asked) and the liveness probe's answer (1, 0,
 * -), in any order. */
static void parse_token(const char *t, struct ssh_poll_reply *r)
{
	char *end;
	long n;

	if (*t == 'd') {
		n = strtol(t + 1, &end, 10);
		if (end != t + 1 && !*end && t[1] >= '1' && t[1] <= '9' &&
		    n <= 65535)
			r->direct_port = (int)n;
		return;
	}
	if (*t != 'f') {
		r->live = !strcmp(t, "1") ? SSH_LIVE_OK : !strcmp(t, "0") ?
			  SSH_LIVE_FAILED : SSH_LIVE_NONE;
		return;
	}
	n = strtol(t + 1, &end, 10);
	if (end != t + 1 && !*end && t[1] >= '0' && t[1] <= '9' &&
	    n <= 1000000)
		r->in_flight = (int)n;
}

/* "+t IDX N SIZE\n" and N bytes at *@pos. */
static int take_task(const char *buf, size_t len, size_t *pos,
		     struct ssh_task_reply *t)
{
	char line[80];

	if (take_line(buf, len, pos, line, sizeof(line)) ||
	    sscanf(line, "+t %d %lld %lld", &t->idx, &t->log_n,
		   &t->log_size) != 3 || t->idx < 0 || t->log_n < 0 ||
	    (unsigned long long)t->log_n > len - *pos)
		return -EINVAL;
	t->log = buf + *pos;
	*pos += t->log_n;
	return 0;
}

/* An array run's "+ev" chunk and "+t" replies after its params. */
static int parse_array(const char *buf, size_t len, size_t *pos,
		       struct ssh_poll_reply *r)
{
	struct ssh_task_reply t;
	size_t start;

	if (len - *pos < 4 || memcmp(buf + *pos, "+ev ", 4))
		return 1;
	*pos += 4;
	if (take_chunk(buf, len, pos, &r->ev, &r->ev_n, &r->ev_size))
		return -EINVAL;
	start = *pos;
	while (*pos < len && buf[*pos] == '+')
		if (take_task(buf, len, pos, &t))
			return -EINVAL;
	r->tasks = buf + start;
	r->tasks_len = *pos - start;
	return 1;
}

int ssh_poll_parse(const char *buf, size_t len, size_t *pos,
		   struct ssh_poll_reply *r)
{
	char line[128], tok[3][16];
	int k;

	if (*pos == 0 && !find_first(buf, len, pos))
		return 0;
	if (*pos >= len)
		return 0;
	memset(r, 0, sizeof(*r));
	if (take_line(buf, len, pos, line, sizeof(line)))
		return -EINVAL;
	k = sscanf(line, "@@mlfs %d %15s %lld %15s %15s %15s", &r->index,
		   r->status, &r->arg, tok[0], tok[1], tok[2]);
	if (k < 2)
		return -EINVAL;
	if (k == 2)
		r->arg = -1;
	r->live = SSH_LIVE_NOT_ASKED;
	r->in_flight = -1;
	for (int i = 0; i + 3 < k; i++)
		parse_token(tok[i], r);
	if (take_chunk(buf, len, pos, &r->log, &r->log_n, &r->log_size) ||
	    take_chunk(buf, len, pos, &r->met, &r->met_n, &r->met_size))
		return -EINVAL;
	/* a run's reply has a third chunk, params (a header starts with a
	 * digit, the next reply with "@@") */
	if (*pos < len && buf[*pos] >= '0' && buf[*pos] <= '9' &&
	    take_chunk(buf, len, pos, &r->par, &r->par_n, &r->par_size))
		return -EINVAL;
	return parse_array(buf, len, pos, r);
}

int ssh_poll_task(const struct ssh_poll_reply *r, size_t *pos,
		  struct ssh_task_reply *t)
{
	if (*pos >= r->tasks_len)
		return 0;
	return take_task(r->tasks, r->tasks_len, pos, t) ? -EINVAL : 1;
}

/* ---- paths ------------------------------------------------------------- */

/* @workdir without trailing slashes (but "/" stays "/"): its length. */
static size_t base_len(const char *workdir)
{
	size_t l = strlen(workdir);

	while (l > 1 && workdir[l - 1] == '/')
		l--;
	return l;
}

int ssh_run_dir(const char *workdir, const char *rid, char *out, size_t n)
{
	size_t l = base_len(workdir);
	int w;

	w = snprintf(out, n, "%.*s%s%s", (int)l, workdir,
		     workdir[l - 1] == '/' ? "" : "/", rid);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int ssh_copy_path(const char *workdir, const char *rid, const char *sub,
		  char *out, size_t n)
{
	size_t l = base_len(workdir);
	const char *base = workdir;
	int w;

	if (!strcmp(workdir, "~") || !strncmp(workdir, "~/", 2)) {
		/* rsync and tar take a relative path from the home */
		base = workdir[1] ? workdir + 2 : "";
		l = base[0] ? l - 2 : 0;
	}
	w = snprintf(out, n, "%.*s%s%s%s%s", (int)l, base,
		     l && base[l - 1] != '/' ? "/" : "", rid, sub[0] ? "/" : "",
		     sub);
	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}
