# SPDX-License-Identifier: MIT
# Shared helpers for the mounted integration tests (sourced, bash).
#
# Each test gets its own mountpoint, state dir and daemon log under $T,
# a mount fixture that polls for the mount and fails fast if the daemon
# died, and a cleanup trap that unmounts lazily, then TERM, then KILL.
# Output: "ok N - text" / "not ok N - text" lines; scripts/test.sh counts.

set -u
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
MLFS=${MLFS:-$BUILD/mlfs}
# MLFS_REAP=DIR: source only the helpers, to clean up what the test whose
# folder is DIR left behind (tests/reap.sh; the runner calls it after a
# test it had to kill).  Otherwise a new folder for this test, registered
# in $MLFS_TEST_DIRS (when the runner sets it) so that it can be reaped.
if [[ -n ${MLFS_REAP:-} ]]; then
	T=$MLFS_REAP
else
	T=$(mktemp -d /tmp/mlfs-it.XXXXXX)
	[[ -n ${MLFS_TEST_DIRS:-} ]] && echo "$T" >> "$MLFS_TEST_DIRS"
fi
MNT=$T/mnt
STATE=$T/state
DAEMON_ERR=$T/daemon.err
DPID=
N=0
FAILED=0
[[ -n ${MLFS_REAP:-} ]] || mkdir -p "$MNT"

# track_pid PID: a process of this test that must not outlive it (daemons);
# tests/reap.sh stops what a killed test left.
track_pid() { echo "$1" >> "$T/pids"; }

# A result line; a "# +S s" line before it when S >= 3 s went since the
# previous one (where a file's time goes, for the suite's wall time).
LAST_MS=${EPOCHREALTIME/./}
took() {
	local t=${EPOCHREALTIME/./} d
	d=$(((t - LAST_MS) / 100000))
	LAST_MS=$t
	((d < 30)) || echo "# +$((d / 10)).$((d % 10)) s"
}
ok() { took; N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { took; N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# eq DESCRIPTION EXPECTED ACTUAL
eq() {
	if [[ "$2" == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1 (expected '$2', got '$3')"
	fi
}

# expect_err DESCRIPTION "strerror text" COMMAND...: COMMAND fails and its
# stderr names that error (e.g. "Invalid argument").
expect_err() {
	local d=$1 want=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		not_ok "$d (succeeded, wanted '$want')"
	elif [[ "$out" == *"$want"* ]]; then
		ok "$d"
	else
		not_ok "$d (wanted '$want', got: ${out//$'\n'/ })"
	fi
}

# wr FILE TEXT: write TEXT into FILE with one write(2) (like echo).
wr() { printf '%s\n' "$2" > "$1"; }

# Every wait below is bounded by wall time, never by a count of tries (a
# condition may itself take seconds on a slow machine).  The bounds are
# generous -- a wait ends as soon as its condition holds -- and scaled by
# $MLFS_WAIT_SCALE (default 3): machines of our own kind have been measured
# 3x slower than others.
WAIT_SCALE=${MLFS_WAIT_SCALE:-3}

# now_ms: wall clock in milliseconds.  The waits below read the clock as
# ${EPOCHREALTIME/./} / 1000, read files with read_file and sleep with
# bash's loadable sleep (bash-builtins): no fork a turn -- on a loaded
# machine a fork and exec of /bin/sleep took 80 ms, not 50, and the
# suite's lanes poll all the time.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
enable -f sleep sleep 2>/dev/null || :

# read_file FILE: its text in REPLY, trailing newlines cut (as $(cat) does).
read_file() {
	REPLY=
	{ IFS= read -r -d '' REPLY <"$1"; } 2>/dev/null
	while [[ $REPLY == *$'\n' ]]; do REPLY=${REPLY%$'\n'}; done
	return 0
}

# deadline SECONDS: the wall time (ms) a wait of SECONDS (scaled) ends at.
deadline() {
	local ms
	ms=$(awk -v s="$1" -v k="$WAIT_SCALE" 'BEGIN { printf "%d", s * k * 1000 }')
	echo $((${EPOCHREALTIME/./} / 1000 + ms))
}

# wait_for FILE VALUE [SECONDS]: poll until FILE's content is VALUE.
wait_for() {
	local f=$1 v=$2 end
	end=$(deadline "${3:-20}")
	while :; do
		read_file "$f"
		[[ $REPLY == "$v" ]] && return 0
		((${EPOCHREALTIME/./} / 1000 < end)) || break
		sleep 0.05
	done
	echo "# $f is '$(cat "$f" 2>/dev/null)', not '$v' after $((${3:-20} * WAIT_SCALE))s" >&2
	return 1
}

# wait_final RUNDIR [SECONDS]: until status is Completed/Failed/Canceled.
wait_final() {
	local end st
	end=$(deadline "${2:-30}")
	while :; do
		read_file "$1/status"
		st=$REPLY
		case $st in Completed | Failed | Canceled) return 0 ;; esac
		((${EPOCHREALTIME/./} / 1000 < end)) || break
		sleep 0.05
	done
	echo "# $1 still $st after $((${2:-30} * WAIT_SCALE))s" >&2
	return 1
}

is_mounted() { grep -q " $MNT fuse" /proc/mounts; }

# A daemon that dies (a sanitizer abort) with requests in flight would leave
# the test blocked in the kernel: the watchdog aborts the FUSE connection
# then, so that pending operations fail at once (ENOTCONN).
WATCHDOG=
CONN=
# abort_conn: abort the FUSE connection of the daemon mounted on $MNT (the
# number saved at mount, if $MNT still holds it: numbers are reused).
abort_conn() {
	[[ -n $CONN ]] || return 0
	[[ $(mountpoint -d "$MNT" 2>/dev/null | cut -d: -f2) == "$CONN" ]] ||
		return 0
	echo 1 > "/sys/fs/fuse/connections/$CONN/abort" 2>/dev/null
}

start_watchdog() {
	local conn
	conn=$(mountpoint -d "$MNT" 2>/dev/null | cut -d: -f2)
	[[ -n $conn ]] || return 0
	CONN=$conn
	if [[ ! -d /sys/fs/fuse/connections/$conn ]] && [[ $(id -u) -eq 0 ]]; then
		mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
	fi
	watchdog_loop &
	WATCHDOG=$!
}

# watchdog_loop: every second, is the daemon still there (else abort its
# connection), and is a process of this test waiting for the mount for more
# than 10 s (then the daemon's stacks go into the test's log, once: a real
# hang explains itself).
watchdog_loop() {
	local st pgid=$(ps -o pgid= $$ | tr -d ' ') since=() dumped=
	while :; do
		st=$(awk '{print $3}' "/proc/$DPID/stat" 2>/dev/null)
		if [[ -z $st || $st == Z ]]; then
			abort_conn
			exit 0
		fi
		if [[ -z $dumped ]] && blocked_for "$pgid" 10; then
			dump_stacks "$DPID" "an operation on the mount has waited over 10 s"
			dumped=1
		fi
		sleep 1
	done
}

# blocked_for PGID SECONDS: a process of group PGID (the test's) has waited
# in a FUSE request for SECONDS or more.  Keeps first-seen times in the
# caller's array `since`, indexed by pid.
blocked_for() {
	local pid now=$SECONDS cur=()
	for pid in $(ps -eo pid=,pgid=,wchan:40= | awk -v g="$1" \
		'$2 == g && ($3 ~ /fuse|request_wait_answer/) {print $1}'); do
		cur[pid]=${since[pid]:-$now}
		((now - cur[pid] >= $2)) && { since=(); return 0; }
	done
	since=()
	for pid in "${!cur[@]}"; do since[pid]=${cur[pid]}; done
	return 1
}

# dump_stacks PID WHY: every thread's stack of PID into the test's log.
dump_stacks() {
	echo "# watchdog: $2; stacks of daemon $1:"
	if command -v gdb >/dev/null; then
		timeout 30 gdb -batch -p "$1" -ex 'thread apply all bt' 2>&1 |
			grep -E '^(Thread|#)' | sed 's/^/#   /'
	else
		echo "#   (gdb is not installed)"
	fi
	ps -eo pid=,pgid=,stat=,wchan:32=,args= | awk -v g="$(ps -o pgid= $$)" \
		'$2 == g+0' | sed 's/^/#   blocked? /'
}

stop_watchdog() {
	[[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
	WATCHDOG=
}

# mount_ws [ARGS...]: start the daemon in the foreground, wait for the mount.
mount_ws() {
	"$MLFS" -f --state "$STATE" "$@" "$MNT" 2>>"$DAEMON_ERR" &
	DPID=$!
	track_pid "$DPID"
	local end
	end=$(deadline 10)
	while ((${EPOCHREALTIME/./} / 1000 < end)); do
		if is_mounted && [[ -d $MNT/runs ]]; then
			start_watchdog
			return 0
		fi
		if ! kill -0 "$DPID" 2>/dev/null; then
			echo "# daemon died at start:" >&2
			tail -5 "$DAEMON_ERR" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# mount did not appear" >&2
	return 1
}

# unmount_ws: fusermount3 -u, then the daemon must exit 0 within 30 s.
unmount_ws() {
	local end rc
	stop_watchdog
	end=$(deadline 10)
	# a process still in a call on the mount (a reader the test just
	# killed, on a slow machine) makes the unmount EBUSY: try again
	until fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null ||
		! is_mounted || ((${EPOCHREALTIME/./} / 1000 >= end)); do
		sleep 0.1
	done
	while ((${EPOCHREALTIME/./} / 1000 < end)); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DPID" 2>/dev/null && ! is_mounted && [[ -n $CONN ]] &&
		held_elsewhere "$CONN" >&2; then
		# a copy of the mount in another mount namespace keeps the
		# connection (this machine's / is private: no unmount reaches
		# a copy): not the daemon's doing; end it as an administrator
		# would
		echo 1 > "/sys/fs/fuse/connections/$CONN/abort" 2>/dev/null
		wait "$DPID"
		DPID=
		return 0
	fi
	if kill -0 "$DPID" 2>/dev/null; then
		echo "# daemon still alive $((10 * WAIT_SCALE)) s after unmount" >&2
		is_mounted && echo "# still mounted; using it:" \
			"$(ls -l /proc/[0-9]*/cwd /proc/[0-9]*/fd/* 2>/dev/null |
			   grep -F "$MNT" | head -5)" >&2
		dump_stacks "$DPID" "daemon $DPID did not exit after unmount"
		return 1
	fi
	wait "$DPID"
	rc=$?
	DPID=
	return $rc
}

# held_elsewhere CONN: say which processes of other mount namespaces hold
# a copy of the mount of FUSE connection CONN (a rootless podman's pause
# process made its namespace while this test was mounted, say); false when
# none does.
held_elsewhere() {
	local p ns self seen=" " found=1
	self=$(readlink /proc/self/ns/mnt)
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
		[[ $ns != "$self" && $seen != *" $ns "* ]] || continue
		seen+="$ns "
		awk -v d="0:$1" '$3 == d { f = 1 } END { exit !f }' \
			"$p/mountinfo" 2>/dev/null || continue
		echo "# the mount lives on in the mount namespace of pid" \
			"${p#/proc/} ($(tr '\0' ' ' < "$p/cmdline" | cut -c1-60)):" \
			"its connection is aborted"
		found=0
	done
	return $found
}

# podman_pause_stop USER...: stop the pause process that rootless podman
# left for each USER (a test's own login): it holds the user namespace and
# a mount namespace with a copy of every mount of that moment, the other
# tests' workspaces too, which then outlive their unmount.
podman_pause_stop() {
	local u uid f pid
	for u in "$@"; do
		uid=$(id -u "$u" 2>/dev/null) || continue
		for f in "/tmp/podman-run-$uid/libpod/tmp/pause.pid" \
			"/run/user/$uid/libpod/tmp/pause.pid"; do
			pid=$(cat "$f" 2>/dev/null) || continue	# no newline
			[[ $(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) == "$uid" ]] &&
				kill -TERM "$pid" 2>/dev/null
		done
	done
}

# crash_ws: kill -9 the daemon, leaving a dead mount behind.
crash_ws() {
	local i
	stop_watchdog
	kill -9 "$DPID" 2>/dev/null
	# A thread of the killed daemon can be held in the kernel for good: a
	# reverse invalidation waiting for a page that a writer of this test
	# locked while it waits for the answer to its write.  Then the
	# connection is aborted (as an administrator would), which ends both.
	for ((i = 0; i < 200 && $(daemon_threads) > 0; i++)); do
		sleep 0.05
	done
	if (($(daemon_threads) > 0)) && [[ -n $CONN ]]; then
		echo "# the killed daemon is held in the kernel: aborting its connection"
		echo 1 > "/sys/fs/fuse/connections/$CONN/abort" 2>/dev/null
	fi
	wait "$DPID" 2>/dev/null
	DPID=
}

# daemon_threads: how many threads of $DPID are not yet dead.
daemon_threads() {
	local t n=0
	for t in /proc/"$DPID"/task/*/stat; do
		[[ -r $t ]] || continue
		[[ $(awk '{print $3}' "$t" 2>/dev/null) == Z ]] || n=$((n + 1))
	done
	echo "$n"
}

# Daemon stderr must not have ERROR or sanitizer reports.
daemon_clean() {
	! grep -E 'ERROR|AddressSanitizer|runtime error|==[0-9]+==' \
		"$DAEMON_ERR" >/dev/null 2>&1
}

# stop_replicas: KILL the server processes of deployments, by the pid and
# start time each replica recorded (a pid reused since is left alone).
stop_replicas() {
	kill_recorded "$STATE"/objects/*/replicas/*.pid \
		"$STATE"/trash/*/replicas/*.pid
}

cleanup() {
	local i
	stop_watchdog
	if [[ -n "$DPID" ]] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null
		sleep 1
		kill -KILL "$DPID" 2>/dev/null
		# a daemon whose threads hang in the kernel (a deadlock) never
		# goes, nor do the tasks waiting for it: abort its connection
		for ((i = 0; i < 20; i++)); do
			[[ -e /proc/$DPID ]] || break
			sleep 0.1
		done
		[[ -e /proc/$DPID ]] && abort_conn
		fusermount3 -uz "$MNT" 2>/dev/null
	fi
	is_mounted && fusermount3 -uz "$MNT" 2>/dev/null
	stop_runs
	stop_clusters
	if [[ -s "$DAEMON_ERR" ]] && ! daemon_clean; then
		echo "# daemon stderr:" && sed 's/^/#   /' "$DAEMON_ERR" | tail -20
	fi
	[[ -n "${KEEP:-}" ]] || rm -rf "$T"
}
[[ -n ${MLFS_REAP:-} ]] || trap cleanup EXIT

# stop_runs: runs and replicas started by this test: their supervisors live
# in sessions of their own; stop them by the pids they recorded (and the
# tasks of an array, in groups of their own in the supervisor's session).
#
# A pid file outlives its processes, and pids are reused (CI's two lanes
# run tests side by side, pid_max is 32768): a process there under a
# recorded pid is KILLed only if it is the recorded one -- the supervisor
# by its start time, the command's group leader by its session (a
# session's or a group's id is not reused while one of its members
# lives).  A group or session whose leader has gone is KILLed as it is:
# what a run left behind.
stop_runs() {
	local p sup child ticks sid now
	for p in "$STATE"/objects/*/pid; do
		[[ -f $p ]] || continue
		read -r sup child ticks _ < "$p" || continue
		[[ $sup =~ ^[0-9]+$ && $child =~ ^[0-9]+$ ]] || continue
		sid=$(proc_field "$child" 6)
		[[ -z $sid || $sid == "$sup" ]] &&
			kill -KILL -- "-$child" 2>/dev/null
		now=$(proc_field "$sup" 22)
		[[ -z $now || $now == "$ticks" ]] || continue
		# an array's tasks: groups of their own in its session
		[[ -d ${p%/pid}/tasks ]] &&
			kill -KILL $(ps -eo pid=,sid= |
				awk -v s="$sup" '$2 == s && $1 != s { print $1 }') 2>/dev/null
		[[ -n $now ]] && kill -KILL "$sup" 2>/dev/null
	done
	stop_replicas
}

# proc_field PID N: field N of /proc/PID/stat (3: state, 5: group, 6:
# session, 22: start time); empty when PID is gone.
proc_field() {
	local s n=$2
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	set -- $s
	shift $((n - 3))
	echo "$1"
}

# kill_recorded [--one] FILE...: KILL the process group of each "PID
# STARTTIME" file (the host's runs and replicas), unless another process
# has PID now (see stop_runs: a group whose leader has gone is what a run
# left).  --one: the process PID alone, while it is the recorded one.
kill_recorded() {
	local f pid st now one=
	[[ ${1:-} == --one ]] && { one=1; shift; }
	for f; do
		[[ -f $f ]] || continue
		read -r pid st < "$f" || continue
		[[ $pid =~ ^[0-9]+$ ]] || continue
		now=$(proc_field "$pid" 22)
		if [[ -n $one ]]; then
			[[ -n $st && $now == "$st" ]] && kill -KILL "$pid" 2>/dev/null
		elif [[ -z $now || $now == "$st" ]]; then
			kill -KILL -- "-$pid" 2>/dev/null
		fi
	done
	return 0
}

# stop_clusters: the controllers of the managed clusters of $STATE
# (munged, slurmctld, slurmrestd: sessions of their own, outliving the
# daemon), by the pids they recorded and only while the pid runs that
# program; and their folders under /run/mlfs-cluster.
stop_clusters() {
	local d p pid exe run
	for d in "$STATE"/objects/*/cluster; do
		[[ -d $d ]] || continue
		for p in slurmrestd slurmctld munged; do
			pid=$(cat "$d/$p.pid" 2>/dev/null) || continue
			exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
			[[ $exe == *"$p"* ]] && kill -KILL "$pid" 2>/dev/null
		done
		run=$(sed -n 's|^AuthInfo=socket=\(/run/mlfs-cluster/[0-9a-f]*\)/munge/munge.socket.*|\1|p' \
			"$d/slurm.conf" 2>/dev/null)
		[[ -n $run ]] && rm -rf "$run"
	done
	return 0
}

# reap: what a test killed by its timeout left behind in $T (its cleanup
# never ran): its daemons (stacks dumped first: a hang explains itself),
# every mount under $T, the runs and replicas of every state folder, the
# test cluster and sshd.  Each process is stopped by the pid recorded for
# it, and only while its command line still names $T.
reap() {
	local pid m c st
	[[ -d $T ]] || return 0
	echo "# reaping what the test in $T left behind"
	for pid in $(sort -u "$T/pids" 2>/dev/null); do
		tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" |
			grep -qF -- "$T/" || continue
		dump_stacks "$pid" "daemon $pid outlived its test"
		kill -KILL "$pid" 2>/dev/null
	done
	for m in $(awk -v t="$T/" 'index($2, t) == 1 { print $2 }' \
		/proc/mounts | sort -r); do
		c=$(mountpoint -d "$m" 2>/dev/null | cut -d: -f2)
		[[ -n $c ]] && echo 1 > "/sys/fs/fuse/connections/$c/abort" 2>/dev/null
		umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		echo "# unmounted $m"
	done
	for st in "$T"/state*; do
		[[ -d $st ]] || continue
		STATE=$st stop_runs
		STATE=$st stop_clusters
	done
	[[ -d $T/hosts ]] && "$ROOT/scripts/cluster-hosts.sh" stop "$T/hosts" >/dev/null 2>&1
	[[ -d $T/slurm ]] && "$ROOT/scripts/slurm-cluster.sh" stop "$T/slurm" >/dev/null 2>&1
	[[ -d $T/sshd ]] && "$ROOT/scripts/ssh-host.sh" stop "$T/sshd" >/dev/null 2>&1
	rm -rf "$T"
}

# done_testing: the last line of every test file.
done_testing() {
	check "daemon stderr has no ERROR or sanitizer report" daemon_clean
	echo "# $((N - FAILED)) passed, $FAILED failed"
	[[ $FAILED -eq 0 ]]
}

# ---- helpers added for the area tests (02-08) -------------------------------

# wait_until SECONDS COMMAND...: poll (every 0.05 s) until COMMAND succeeds;
# gives up after SECONDS (scaled) of wall time, however long COMMAND takes.
wait_until() {
	local end
	end=$(deadline "$1")
	shift
	while :; do
		"$@" && return 0
		((${EPOCHREALTIME/./} / 1000 < end)) || return 1
		sleep 0.05
	done
}

# has_sentence FILE: FILE holds exactly one non-empty line of several words.
has_sentence() {
	local c
	c=$(cat "$1" 2>/dev/null) || return 1
	[[ -n "$c" && "$c" != *$'\n'* && "$c" == *[[:alpha:]]*" "*[[:alpha:]]* ]]
}

# ev_count PATTERN: the number of lines of events matching the ERE PATTERN.
ev_count() { grep -cE -- "$1" "$MNT/events" 2>/dev/null; }


# obj_ids: the object folders under the state dir, one id a line, sorted.
obj_ids() { ls "$STATE/objects" 2>/dev/null | sort -n; }

# wr1 FILE TEXT: write TEXT (as is, no newline added) into FILE with exactly
# one write(2), even when TEXT has several lines (bash's printf writes
# line by line).
wr1() {
	local tmp
	tmp=$(mktemp "$T/wr1.XXXXXX")
	printf '%s' "$2" > "$tmp"
	dd if="$tmp" of="$1" bs=1M status=none
	local rc=$?
	rm -f "$tmp"
	return $rc
}

# json_ok FILE: FILE is one valid JSON document.
json_ok() { python3 -m json.tool "$1" >/dev/null 2>&1; }

# json_get FILE KEY: the value of top-level KEY ("" for null or missing).
json_get() {
	python3 -c 'import json,sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2" 2>/dev/null
}

# mount_or_bail [DESCRIPTION [ARGS...]]: mount_ws, or end the test file
# at once (every later check would fail slowly).
mount_or_bail() {
	local d=${1:-mount}
	shift $(($# ? 1 : 0))
	if mount_ws "$@"; then
		ok "$d"
	else
		not_ok "$d (bailing out)"
		done_testing
		exit 1
	fi
}

# ---- helpers added for the reliability tests (50-54) --------------------------

# mount_count: how many mounts sit on $MNT (a crashed daemon's dead mount
# stays there until something clears it).
mount_count() { awk -v m="$MNT" '$2 == m' /proc/mounts | wc -l; }

# remount_ws [ARGS...]: mount_ws for a mountpoint that may hold the dead
# mount of a killed daemon.  The kernel answers stat() of a dead mount's
# root (and of cached entries) from its cache, so mount_ws's readiness test
# can pass before the new daemon has mounted: wait for the new daemon's own
# "mounted" line and a readdir (never cached) that works.
remount_ws() {
	local i
	"$MLFS" -f --state "$STATE" "$@" "$MNT" 2>>"$DAEMON_ERR" &
	DPID=$!
	track_pid "$DPID"
	local end
	end=$(deadline 10)
	while ((${EPOCHREALTIME/./} / 1000 < end)); do
		if grep -q "mlfs\[$DPID\] info: mounted" "$DAEMON_ERR" &&
			ls "$MNT/runs" >/dev/null 2>&1; then
			start_watchdog
			return 0
		fi
		if ! kill -0 "$DPID" 2>/dev/null; then
			echo "# daemon died at start:" >&2
			tail -5 "$DAEMON_ERR" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# mount did not appear" >&2
	return 1
}

# remount_or_bail [DESCRIPTION [ARGS...]]: remount_ws, or end the test file.
remount_or_bail() {
	local d=${1:-remount}
	shift $(($# ? 1 : 0))
	if remount_ws "$@"; then
		ok "$d"
	else
		not_ok "$d (bailing out)"
		done_testing
		exit 1
	fi
}

# is_dead_mount: $MNT is a mount whose daemon is gone (readdir fails with
# ENOTCONN; stat may still succeed from the kernel's cache).
is_dead_mount() {
	local out
	out=$(ls "$MNT" 2>&1 >/dev/null)
	[[ $out == *"not connected"* ]]
}

# vm_rss_kb PID: the resident set size of PID in KiB.
vm_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# cleanup_deep: cleanup, then lazily unmount whatever is still stacked on
# $MNT (dead mounts a crash left behind), then remove $T.  For tests that
# kill the daemon: trap cleanup_deep EXIT
cleanup_deep() {
	local keep=${KEEP:-} i
	KEEP=1 cleanup
	for ((i = 0; i < 8; i++)); do
		(($(mount_count))) || break
		umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null ||
			break
	done
	[[ -n $keep ]] || rm -rf "$T"
}

# ---- helpers for the environment tests (27, 49) -------------------------------

# env_settled NAME [SECONDS]: print the state of environment NAME once it is
# not Building (waiting up to SECONDS, default 60).
env_settled() {
	local end st
	end=$(deadline "${2:-60}")
	while :; do
		st=$(cat "$MNT/environments/$1/status" 2>/dev/null)
		[[ $st != Building ]] && { echo "$st"; return 0; }
		(($(now_ms) < end)) || break
		sleep 0.05
	done
	echo "$st"
}

# ct_prefix: how the names of this workspace's containers start,
# mlfs-<FNV-1a of the state dir>- (targets/local_image.c, local_deploy.c).
ct_prefix() {
	python3 -c 'import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print("mlfs-%08x-" % h)' "$STATE"
}

# ---- helpers for the deployment tests (42, 44) --------------------------------

# ready_pids DEPLOYMENT_DIR: the pids of its ready replicas (info.json).
ready_pids() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["replicas"]
print(" ".join(str(x["pid"]) for x in r if x["state"] == "ready"))' "$1/info.json"
}

# serves_gen DIR N: generation N of deployment DIR serves, Healthy.
serves_gen() {
	[[ $(json_get "$1/info.json" generation) == "$2" &&
		$(cat "$1/status") == Healthy ]]
}

# deploy_timed DIR [SECONDS]: deploy DIR, Transitioning at once, Healthy
# within SECONDS (default 30); says how long it took; sets URI and KEY.
deploy_timed() {
	local t0
	t0=$(now_ms)
	check "deploy $(basename "$1")" wr "$1/ctl" deploy
	eq "Transitioning right after the write" Transitioning "$(cat "$1/status")"
	check "Healthy" wait_for "$1/status" Healthy "${2:-30}"
	echo "# deploy -> Healthy: $(($(now_ms) - t0)) ms"
	URI=$(cat "$1/scoring_uri")
	KEY=$(cat "$1/key")
}

# replica_killed DIR WANT: kill -9 one ready replica of deployment DIR by
# its pid; it turns Unhealthy, error names the crash, it is Healthy again
# with a new process, and the caller's `ask` answers WANT.
replica_killed() {
	local name p victim u0 p2
	name=$(basename "$1")
	p=$(ready_pids "$1")
	victim=${p%% *}
	u0=$(ev_count "deployment $name Unhealthy")
	kill -9 "$victim"
	check "Unhealthy after a replica died" wait_until 10 \
		eval "[[ \$(ev_count 'deployment $name Unhealthy') -gt $u0 ]]"
	check "the error names the crash" \
		wait_until 5 grep -q "killed by signal 9" "$1/error"
	check "Healthy again" wait_for "$1/status" Healthy 20
	p2=$(ready_pids "$1")
	check "a new process replaced it ($p -> $p2)" eval "[[ ' $p2 ' != \
		*' $victim '* && \$(wc -w <<< '$p2') == $(wc -w <<< "$p") ]]"
	eq "it still answers" "$2" "$(ask)"
	eq "error is empty once Healthy" "" "$(cat "$1/error")"
}

# rolling_update DIR GEN UPDATE...: with a client looping over /score at
# $URI with $KEY, run UPDATE (it makes the entry script answer version
# GEN), deploy, wait for generation GEN: no request failed, the client saw
# version GEN-1 then GEN, the URI stayed.
rolling_update() {
	local d=$1 gen=$2
	shift 2
	client_start "$URI" "$KEY"
	check "the client is answered before the update" \
		wait_until 30 test -e "$T/stop.ready"
	"$@"
	check "deploy again after changing score.py" wr "$d/ctl" deploy
	eq "Transitioning during the update" Transitioning "$(cat "$d/status")"
	check "generation $gen serves, Healthy" wait_until 60 serves_gen "$d" "$gen"
	check "the client is answered by generation $gen" \
		wait_until 30 grep -qx "$gen" "$T/stop.seen"
	client_stop
	check "the client made requests throughout ($NREQ)" eval "[[ ${NREQ:-0} -ge 2 ]]"
	eq "no failed request during the rolling update" 0 "$NFAIL"
	if [[ -n ${CLIENT_FRESH:-} ]]; then
		# each connection to either generation while both serve
		check "the client saw versions $((gen - 1)) and $gen, $gen last" \
			eval "[[ ,$SEEN, =~ ^,$((gen - 1)),($gen,$((gen - 1)),)*$gen,\$ ]]"
	else
		eq "the client saw version $((gen - 1)) then $gen" \
			"$((gen - 1)),$gen" "$SEEN"
	fi
	eq "same scoring URI" "$URI" "$(cat "$d/scoring_uri")"
}

# crash_loop DIR: deploy in DIR (1 replica) an entry script whose init()
# works once only, and kill its server: each restart crashes again
# (Unhealthy meanwhile, restarts in events), then Failed with the count and
# the last reason in error.
crash_loop() {
	local name
	name=$(basename "$1")
	cat > "$1/score.py" <<PY
import os
def init():
    if os.path.exists("$T/inited.$name"):
        raise RuntimeError("cannot load twice")
    open("$T/inited.$name", "w").close()
def run(data):
    return data
PY
	wr "$1/config" "replicas = 1"
	check "deploy a server that starts only once" wr "$1/ctl" deploy
	check "Healthy" wait_for "$1/status" Healthy 20
	kill -9 $(ready_pids "$1")
	check "Unhealthy while it is restarted" wait_for "$1/status" Unhealthy 10
	check "Failed after repeated crashes" wait_for "$1/status" Failed 40
	check "error tells the crashes" grep -q "crashed 6 times" "$1/error"
	check "error has the last reason" grep -q "cannot load twice" "$1/error"
	eq "scoring_uri empty" "" "$(cat "$1/scoring_uri")"
	check "restarts were logged in events" eval \
		"[[ \$(ev_count 'deployment $name replica 1 .*restarting') -ge 5 ]]"
}

# client_start URI KEY: tests/score-client.py in the background, POSTing
# to URI until client_stop ($CLIENT is its pid); CLIENT_FRESH=1: a new
# connection for each request.
client_start() {
	local hp=${1#http://}
	hp=${hp%/score}
	rm -f "$T/stop" "$T/stop.ready" "$T/stop.seen"
	python3 "$ROOT/tests/score-client.py" "${hp%:*}" "${hp##*:}" "$2" \
		"$T/stop" ${CLIENT_FRESH:+fresh} > "$T/client.out" \
		2> "$T/client.err" &
	CLIENT=$!
}

# client_stop: stop the client; its counts in NREQ NFAIL SEEN.
client_stop() {
	touch "$T/stop"
	wait "$CLIENT"
	CLIENT=
	read -r NREQ NFAIL SEEN < "$T/client.out"
	echo "# client: $NREQ requests, $NFAIL failed, versions seen $SEEN"
	[[ ${NFAIL:-0} == 0 ]] || head -5 "$T/client.err" | sed 's/^/#   /'
}

# ---- helpers for the array tests (25, 28) --------------------------------------

# HOLD: an array task that says it started ($T/started-I), waits for
# $T/go-I, prints "task I of N", writes outputs/I, says it ended.
HOLD='touch '$T'/started-$MLFS_ARRAY_INDEX
while [ ! -e '$T'/go-$MLFS_ARRAY_INDEX ]; do sleep 0.05; done
echo task $MLFS_ARRAY_INDEX of $MLFS_ARRAY_COUNT
echo $MLFS_ARRAY_INDEX > outputs/$MLFS_ARRAY_INDEX
touch '$T'/ended-$MLFS_ARRAY_INDEX'
started() { ls "$T" | grep -c '^started-'; }
ended() { ls "$T" | grep -c '^ended-'; }
running_now() { echo $(($(started) - $(ended))); }
# statuses NAME: the tasks' statuses, "I:STATUS" in index order
statuses() {
	local i out=
	for i in $(ls "$MNT/runs/$1/tasks" | sort -n); do
		out+="$i:$(cat "$MNT/runs/$1/tasks/$i/status") "
	done
	echo "${out% }"
}
clear_marks() { rm -f "$T"/started-* "$T"/ended-* "$T"/go-*; }
# release_all N M: let HOLD tasks 0..N-1 go one by one, each time waiting
# for it to end and the next to start; fails when more than M ran at once
# (sampled while they are held) or a wait ran out.
release_all() {
	local i want bad=0
	for ((i = 0; i < $1; i++)); do
		touch "$T/go-$i"
		want=$((i + $2 + 1 > $1 ? $1 : i + $2 + 1))
		wait_until 30 eval '[[ $(ended) -ge $((i + 1)) && $(started) -ge $want ]]' ||
			bad=1
		(($(running_now) > $2)) && bad=1
	done
	return $bad
}

# all_completed NAME N I: HOLD run NAME of N tasks 0..N-1 Completed as it
# should, its outputs, task I's exit code, log and lines in the run's log
# looked at; said with checks.
all_completed() {
	local d=$MNT/runs/$1 want= i
	for ((i = 0; i < $2; i++)); do want+="$i:Completed "; done
	check "$1 Completed when all are" wait_for "$d/status" Completed 30
	eq "$1's exit_code 0" 0 "$(cat "$d/exit_code")"
	eq "every task Completed" "${want% }" "$(statuses "$1")"
	eq "task $3's exit_code" 0 "$(cat "$d/tasks/$3/exit_code")"
	eq "task $3's log: its index and the count" "task $3 of $2" \
		"$(cat "$d/tasks/$3/log")"
	eq "the outputs of all tasks in the run's outputs/" "$(seq -s' ' 0 $(($2 - 1)))" \
		"$(ls "$d/outputs" | sort -n | paste -sd' ')"
	check "the run's log says when task $3 started" \
		grep -qx "mlfs: task $3 started" "$d/log"
	check "and when it ended" grep -qx "mlfs: task $3 ended (exit 0)" "$d/log"
	eq "$1's error is empty" "" "$(cat "$d/error")"
}

# ONE_FAILS: an array command (array = 0-4) whose task 3 exits 1;
# one_failed NAME: run NAME of it ended as it should, said with checks.
ONE_FAILS='[ $MLFS_ARRAY_INDEX != 3 ] || exit 1'
one_failed() {
	local d=$MNT/runs/$1
	eq "$1: the failed index in error" "task 3 failed (exit 1)" "$(cat "$d/error")"
	eq "$1's exit_code: the failed task's" 1 "$(cat "$d/exit_code")"
	eq "$1: task 3 Failed, the others Completed" \
		"0:Completed 1:Completed 2:Completed 3:Failed 4:Completed" "$(statuses "$1")"
	eq "$1: task 3's exit_code" 1 "$(cat "$d/tasks/3/exit_code")"
}

# ---- helpers for the ssh tests (20, 44) ------------------------------------------
# They use $SSHD, the folder of the test's sshd (scripts/ssh-host.sh).

# sshd_start: start (or keep) the test's sshd; $SSHD/host.env tells where.
sshd_start() { "$ROOT/scripts/ssh-host.sh" start "$SSHD" >/dev/null; }

# sshd_kids: the per-connection sshd processes of our listener (by its pid).
sshd_kids() {
	local lp
	lp=$(head -n1 "$SSHD/sshd.pid" 2>/dev/null) || return 0
	# (a listener gone already: its pid may be another's now)
	[[ -n $lp && $(readlink "/proc/$lp/exe" 2>/dev/null) == */sshd ]] &&
		ps -o pid= --ppid "$lp" 2>/dev/null
}

# sshd_cut: a network cut: stop the listener and the open connections.
sshd_cut() {
	local kids
	kids=$(sshd_kids)
	"$ROOT/scripts/ssh-host.sh" stop "$SSHD" >/dev/null 2>&1
	[[ -n $kids ]] && kill $kids 2>/dev/null
	return 0
}

# host_kill: KILL what runs on the "host" (under $WORK) by the pids its
# replicas recorded there, each checked against its start time (a pid
# reused since is left alone).
host_kill() {
	kill_recorded "$WORK"/deploy-*/g*/r*/pid
	kill_recorded --one "$WORK"/deploy-*/g*/r*/spid
}

# ssh_cleanup: KILL the runs left on the test's "host" ($WORK/*/pid), then
# cut its sshd.
ssh_cleanup() {
	kill_recorded "$WORK"/*/pid
	sshd_cut
}

# slurm_start [COMMAND]: the private Slurm cluster in $T/slurm, its
# cluster.env exported; at exit COMMAND (if any), the cluster stopped, then
# cleanup.  A cluster that does not start ends the test file (1).
slurm_start() {
	chmod 755 "$T"
	# shellcheck disable=SC2064
	trap "\"\$ROOT/scripts/slurm-cluster.sh\" stop \"\$T/slurm\" >/dev/null; ${1:+$1; }cleanup" EXIT
	if ! "$ROOT/scripts/slurm-cluster.sh" start "$T/slurm" >"$T/cluster.log" 2>&1; then
		not_ok "the test cluster starts"
		sed 's/^/# /' "$T/cluster.log" | tail -20
		done_testing
		exit 1
	fi
	set -a
	source "$T/slurm/cluster.env"
	set +a
}

# ssh_config [LINE...]: a target config for the test's sshd, then LINEs.
ssh_config() {
	echo "host = $SSH_HOST"
	echo "port = $SSH_PORT"
	echo "user = $SSH_USER"
	echo "identity_file = $SSH_IDENTITY"
	printf '%s\n' "$@"
}

# ssh_box NAME: targets/NAME, an ssh target of the test's sshd (workdir
# $WORK), provisioned; checks that it attaches.
ssh_box() {
	local b=$MNT/targets/$1
	mkdir "$b" && wr "$b/type" ssh
	ssh_config "workdir = $WORK" "connect_timeout = 3" > "$b/config"
	wr "$b/ctl" provision
	check "the ssh target $1 attaches" wait_for "$b/status" Succeeded 20
}

# podman_runs TAR: can podman run a container here at all?  It imports
# the root file system TAR and runs `true` in it (runc, explicit
# ulimits, as mlfs runs containers); the image is removed again.
podman_runs() {
	local id rc=1
	id=$(podman import -q "$1" 2>/dev/null)
	[[ -n $id ]] || return 1
	podman run --rm --runtime runc --ulimit nofile=1024:1024 \
		--ulimit nproc=1024:1024 "$id" true >/dev/null 2>&1 && rc=0
	podman rmi -f "$id" >/dev/null 2>&1
	return $rc
}

# ---- helpers for the endpoint tests (45, 48) ------------------------------------

# ep_stop_proxies: the endpoints' proxies outlive the daemon by design: a
# test stops its own (after the daemon, which would start them again).
ep_stop_proxies() {
	local f pid
	for f in "$STATE"/endpoints/*/haproxy.pid; do
		pid=$(cat "$f" 2>/dev/null) || continue
		# a proxy stopped already: its pid may be another's now
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */haproxy ]] &&
			kill "$pid" 2>/dev/null
	done
	return 0
}

# ---- helpers for the multi-user tests (60-69) -----------------------------------

# mu_users [USER...]: make the unprivileged test users (default mlfs_ua
# mlfs_ub mlfs_uc) unless they exist; $T becomes reachable by them.  Skips
# the whole file (0 checks but the daemon's) when not root.
mu_users() {
	local u
	if [[ $(id -u) -ne 0 ]]; then
		echo "# needs root to create users; skipped"
		done_testing
		exit
	fi
	(($#)) || set -- mlfs_ua mlfs_ub mlfs_uc
	for u in "$@"; do
		test_user "$u" || return 1
	done
	chmod 755 "$T"
}

# test_user NAME: make the local user NAME (home, /bin/sh) unless it
# exists.  Test files run side by side (scripts/test.sh's lanes): one
# useradd at a time, and a user another file made meanwhile is no failure.
test_user() {
	id "$1" >/dev/null 2>&1 && return 0
	(
		flock 7
		id "$1" >/dev/null 2>&1 || useradd -m -s /bin/sh "$1"
	) 7>>/run/mlfs-test-useradd.lock
}

# as USER COMMAND...: COMMAND as USER (its groups and HOME), with an
# environment a login would give, not root's.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups env -i \
		HOME="$(getent passwd "$u" | cut -d: -f6)" USER="$u" \
		LOGNAME="$u" PATH=/usr/local/bin:/usr/bin:/bin "$@"
}

# new_obj CMD...: run CMD, print the id of the object folder it made.
new_obj() {
	local before
	before=$(obj_ids)
	"$@" || return 1
	comm -13 <(sort <<<"$before") <(obj_ids | sort) | tail -1
}

# decoy PATH: a root-only file with known bytes; decoy_intact PATH: it is
# still root's, mode 0600, with the same bytes.
decoy() {
	printf 'root secret %s\n' "$RANDOM$RANDOM" > "$1"
	chmod 600 "$1"
	chown root:root "$1"
	sha256sum < "$1" > "$1.sum"
}
decoy_intact() {
	[[ $(stat -c '%U %G %a %h' "$1") == "root root 600 1" ]] &&
		sha256sum < "$1" | cmp -s - "$1.sum"
}

# fake_cdi FILE: a CDI spec (FILE, in /var/run/cdi, which podman 4.3 reads
# besides /etc/cdi) of two nvidia.com/gpu devices, 0 and 1, that only set
# MLFS_TEST_GPU0 or MLFS_TEST_GPU1=given in the container: what podman
# needs to take --device nvidia.com/gpu=I on a machine without GPUs.
fake_cdi() {
	mkdir -p "$(dirname "$1")"
	cat > "$1" <<'JSON'
{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
 "devices": [
  {"name": "0", "containerEdits": {"env": ["MLFS_TEST_GPU0=given"]}},
  {"name": "1", "containerEdits": {"env": ["MLFS_TEST_GPU1=given"]}}
 ]}
JSON
}

# busybox_tree DIR: a root file system of busybox-static in DIR (its
# commands as links, /tmp 1777, root in passwd and group), for an image
# made by `rootfs = TAR`.
busybox_tree() {
	local c
	mkdir -p "$1"/{bin,tmp,etc,proc,sys,dev,run,root,work}
	cp /bin/busybox "$1/bin/busybox"
	for c in $(/bin/busybox --list); do
		[[ $c == busybox ]] || ln -sf busybox "$1/bin/$c"
	done
	chmod 1777 "$1/tmp"
	echo 'root:x:0:0:root:/root:/bin/sh' > "$1/etc/passwd"
	echo 'root:x:0:' > "$1/etc/group"
}

# tar_tree DIR TAR: DIR tarred as root's into TAR (made under a temporary
# name, then renamed: a cached TAR is whole or absent), DIR removed.
tar_tree() {
	tar -C "$1" --numeric-owner --owner=0 --group=0 -cf "$2.$$" . &&
		mv "$2.$$" "$2"
	rm -rf "$1"
}

# ep_stats [FIELD...]: `show stat` of the endpoint proxy of the daemon at
# $STATE (its runtime API socket; the first endpoint's), a line per row:
# PXNAME SVNAME FIELD... (an empty field: -).
ep_stats() {
	python3 - "$STATE" "$@" <<'PY'
import csv, glob, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sorted(glob.glob(sys.argv[1] + "/endpoints/*/api.sock"))[0])
s.sendall(b"show stat\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
for r in csv.DictReader(out.decode().lstrip("# ").splitlines()):
    print(" ".join([r["pxname"], r["svname"]] +
                   [r[f] or "-" for f in sys.argv[2:]]))
PY
}

# python_rootfs: PY_TAR, a root file system tarball of this machine's
# python3 (its standard library without tests or tkinter, the libraries of
# it and of its extension modules) and busybox as /bin/sh, made once and
# cached in /var/cache/mlfs-test by the versions it holds (49 and 55).
python_rootfs() {
	local pybin pyv tag cache=/var/cache/mlfs-test r=$T/pyroot l real
	pybin=$(readlink -f /usr/bin/python3)
	pyv=$(basename "$pybin")
	tag="$pyv-$(dpkg-query -W -f='${Version}' "lib${pyv}-minimal" 2>/dev/null ||
		echo local)-$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null ||
		echo local)"
	PY_TAR=$cache/python-rootfs-${tag//[^A-Za-z0-9.+-]/_}.tar
	[[ -s $PY_TAR ]] && return 0
	mkdir -p "$cache" "$r"/{bin,tmp,etc,proc,sys,dev,run,root,var/tmp,usr/bin,lib64}
	cp /bin/busybox "$r/bin/busybox"
	for l in sh id cat ls sleep hostname; do ln -s busybox "$r/bin/$l"; done
	cp "$pybin" "$r/usr/bin/$pyv"
	ln -s "$pyv" "$r/usr/bin/python3"
	tar -C / --exclude="$pyv/test" --exclude="$pyv/idlelib" \
		--exclude="$pyv/tkinter" --exclude="$pyv/lib2to3" \
		--exclude="$pyv/ensurepip" --exclude="$pyv/config-*" \
		--exclude="$pyv/site-packages" --exclude="$pyv/dist-packages" \
		-cf - "usr/lib/$pyv" | tar -C "$r" -xf -
	for l in $(ldd "$pybin" /usr/lib/"$pyv"/lib-dynload/*.so 2>/dev/null |
		awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
		mkdir -p "$r$(dirname "$l")"
		cp -L "$l" "$r$l"
		real=$(readlink -f "$l")
		[[ -e $r$real ]] || { mkdir -p "$r$(dirname "$real")"; cp "$real" "$r$real"; }
	done
	chmod 1777 "$r/tmp" "$r/var/tmp"
	echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
	echo 'root:x:0:' > "$r/etc/group"
	tar_tree "$r" "$PY_TAR"
}

# busybox_marked TAR: busybox_tree with /etc/mlfs-marker holding
# "inside-the-image PID" (a file only that image has), tarred into TAR
# (0644).
busybox_marked() {
	busybox_tree "$T/rootfs"
	echo "inside-the-image $$" > "$T/rootfs/etc/mlfs-marker"
	tar_tree "$T/rootfs" "$1"
	chmod 644 "$1"
}
