#!/usr/bin/env bash
# Signals to the daemon (issue 6).  SIGTERM and SIGINT: a clean unmount
# (the mount is gone, exit code 0) even with a shell sitting in the mount;
# the runs keep going, the next mount adopts them and they end Completed
# with full logs, each executed once; a run Queued at the signal starts
# after the remount.  SIGHUP: the daemon keeps serving, and in the
# background (no -f) it reopens its log: a new STATE/mlfs.log appears after
# the old one was moved away (logrotate's way).
source "$(dirname "$0")/../lib.sh"
trap cleanup_deep EXIT

COUNT=$T/count
: > "$COUNT"
count() { grep -cx "$1" "$COUNT"; }

# The test shell is not interactive: a plain `cmd &` starts with SIGINT
# ignored, and libfuse then keeps it ignored.  Job control (set -m) starts
# the daemon as a terminal would, SIGINT at its default.
mount_jc() {
	local rc
	set -m
	remount_ws "$@"
	rc=$?
	set +m
	return $rc
}
sig_ignored() {	# sig_ignored PID SIGNUM
	local mask
	mask=$(awk '/^SigIgn:/ {print $2}' "/proc/$1/status")
	(((16#$mask >> ($2 - 1)) & 1))
}
mktarget() {	# mktarget NAME MAX_CONCURRENT
	mkdir "$MNT/targets/$1" && wr "$MNT/targets/$1/type" local &&
		wr "$MNT/targets/$1/config" "max_concurrent = $2" &&
		wr "$MNT/targets/$1/ctl" provision &&
		wait_for "$MNT/targets/$1/status" Succeeded 10
}
newrun() {	# newrun NAME GATE [TARGET]: the run ends once the test makes $T/GATE
	mkdir "$MNT/runs/$1" &&
		wr "$MNT/runs/$1/command" "echo start $1; while [ ! -e $T/$2 ]; do sleep 0.05; done; echo $1 >> $COUNT; echo end $1" &&
		wr "$MNT/runs/$1/target" "${3:-local}"
}
supervisor_of() {	# supervisor_of RUN: the pid its supervisor recorded
	local id
	id=$(sqlite3 -readonly "$STATE/workspace.db" \
		"select id from objects where kind = 2 and name = '$1'" 2>/dev/null)
	[[ -n $id ]] && awk '{print $1}' "$STATE/objects/$id/pid" 2>/dev/null
}

# stop_with SIG: the signal, then the daemon must exit by itself in 10 s.
# Sets RC to its exit code ("timeout" if it did not exit).
stop_with() {
	local i
	stop_watchdog
	kill "-$1" "$DPID"
	local end
	end=$(deadline 10)
	while (($(now_ms) < end)); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DPID" 2>/dev/null; then
		RC=timeout
		return
	fi
	wait "$DPID"
	RC=$?
	DPID=
}

mount_jc || { not_ok "mount (bailing out)"; done_testing; exit 1; }
ok "mount (job control: SIGINT at its default)"
check "target one (max_concurrent = 1)" mktarget one 1

for SIG in TERM INT; do
	s=$(echo "$SIG" | tr A-Z a-z)
	newrun "$s-run" "go-$s"
	newrun "$s-q1" "go-$s" one
	newrun "$s-q2" "go-$s" one
	for r in "$s-run" "$s-q1" "$s-q2"; do wr "$MNT/runs/$r/ctl" submit; done
	check "SIG$SIG: runs Running" wait_for "$MNT/runs/$s-run/status" Running 5
	check "SIG$SIG: $s-q2 Queued behind $s-q1" wait_for "$MNT/runs/$s-q2/status" Queued 5
	(cd "$MNT/runs" && exec sleep 30) &
	busy=$!
	sleep 0.3
	if [[ $SIG == INT ]] && sig_ignored "$DPID" 2; then
		echo "# SIGINT is ignored by the daemon (set by the test shell, not the daemon)"
	fi
	stop_with "$SIG"
	eq "SIG$SIG: the daemon exits by itself with code 0 (a shell still in the mount)" 0 "$RC"
	if [[ $RC == timeout ]]; then
		crash_ws	# do not leave it serving
	fi
	eq "SIG$SIG: nothing is mounted on MNT any more" 0 "$(mount_count)"
	kill "$busy" 2>/dev/null
	wait "$busy" 2>/dev/null
	sup=$(supervisor_of "$s-run")
	check "SIG$SIG: the run's supervisor (pid ${sup:-?}) outlives the daemon" \
		eval "[[ -n '$sup' ]] && kill -0 '$sup' 2>/dev/null"
	eq "SIG$SIG: the run has not finished yet (no count line)" 0 "$(count "$s-run")"
	mount_jc || { not_ok "SIG$SIG: mount again (bailing out)"; done_testing; exit 1; }
	ok "SIG$SIG: mount again"
	touch "$T/go-$s"
	for r in "$s-run" "$s-q1" "$s-q2"; do
		check "SIG$SIG: $r adopted and Completed" wait_for "$MNT/runs/$r/status" Completed 15
		eq "SIG$SIG: $r log complete" "start $r"$'\n'"end $r" "$(cat "$MNT/runs/$r/log")"
		eq "SIG$SIG: $r ran exactly once" 1 "$(count "$r")"
	done
	eq "SIG$SIG: $s-q2 started only after $s-q1 ended (FIFO kept)" \
		"$s-q1 $s-q2" "$(grep -xE "$s-q1|$s-q2" "$COUNT" | paste -sd' ')"
	check "SIG$SIG: the daemon logged its stop" grep -q 'unmounting' "$DAEMON_ERR"
done

# ---- SIGKILL while a ctl write is being answered --------------------------------
# The write waits in the daemon for the state store (this test holds its
# write lock) while the kernel holds the page of ctl it wrote into.  The
# daemon killed then must end by itself: no thread of it may wait for that
# page (dropping ctl's pages before the write is answered did: the killed
# process was held in the kernel for good, its connection never aborted).
newrun kill-ctl go-kill-ctl
mkfifo "$T/lock.in"
sqlite3 "$STATE/workspace.db" < "$T/lock.in" > "$T/lock.out" 2>&1 &
LOCKER=$!
track_pid "$LOCKER"
exec 7> "$T/lock.in"
echo "BEGIN IMMEDIATE; SELECT 'held';" >&7
check "SIGKILL: the test holds the state store's write lock" \
	wait_until 10 grep -qx held "$T/lock.out"
( wr "$MNT/runs/kill-ctl/ctl" submit ) 2>/dev/null &
WRITER=$!
in_write() { grep -q fuse "/proc/$WRITER/stack" 2>/dev/null; }
check "SIGKILL: the ctl write waits in the daemon" wait_until 10 in_write
stop_watchdog
kill -9 "$DPID"
ended_alone() { (($(daemon_threads) == 0)); }
check "SIGKILL during a ctl write: the daemon ends by itself" \
	wait_until 10 ended_alone
crash_ws	# aborts the connection if it did not
wait "$WRITER" 2>/dev/null
echo "COMMIT;" >&7
exec 7>&-
wait "$LOCKER" 2>/dev/null
mount_jc || { not_ok "SIGKILL: mount again (bailing out)"; done_testing; exit 1; }
ok "SIGKILL: mount again"
eq "SIGKILL: the run is Draft (the killed write never committed)" Draft \
	"$(cat "$MNT/runs/kill-ctl/status")"
check "SIGKILL: … and submitted now" wr "$MNT/runs/kill-ctl/ctl" submit
touch "$T/go-kill-ctl"
check "SIGKILL: … and Completes" wait_for "$MNT/runs/kill-ctl/status" Completed 15
eq "SIGKILL: the run ran once" 1 "$(count kill-ctl)"

# ---- SIGHUP in the foreground: it keeps serving --------------------------------
newrun hup-run go-hup
wr "$MNT/runs/hup-run/ctl" submit
check "SIGHUP: run Running" wait_for "$MNT/runs/hup-run/status" Running 5
kill -HUP "$DPID"
sleep 0.5
check "SIGHUP (foreground): the daemon is still alive" kill -0 "$DPID"
check "SIGHUP (foreground): ls still works" eval "ls \"$MNT/runs/hup-run\" >/dev/null"
check "SIGHUP (foreground): mkdir still works" mkdir "$MNT/runs/after-hup"
eq "SIGHUP (foreground): the run is still Running" Running "$(cat "$MNT/runs/hup-run/status")"
touch "$T/go-hup"
check "SIGHUP (foreground): the run Completes" wait_for "$MNT/runs/hup-run/status" Completed 10
eq "SIGHUP (foreground): the run ran once" 1 "$(count hup-run)"
check "unmount exits 0" unmount_ws

# ---- SIGHUP in the background: log reopened ------------------------------------
"$MLFS" --state "$STATE" "$MNT" 2>>"$DAEMON_ERR"
eq "background mount: the command returns 0" 0 "$?"
DPID=$(pgrep -f -- "--state $STATE $MNT" | head -1)
[[ -n $DPID ]] && track_pid "$DPID"
check "background mount: the daemon runs (pid ${DPID:-?})" test -n "$DPID"
check "background mount: mounted" wait_until 5 eval "ls \"$MNT/runs\" >/dev/null"
check "background mount: STATE/mlfs.log exists" wait_until 5 test -s "$STATE/mlfs.log"
mv "$STATE/mlfs.log" "$STATE/mlfs.log.1"
kill -HUP "$DPID"
# do something
mkdir "$MNT/runs/bg-1"
wr "$MNT/runs/bg-1/command" 'echo bg'
wr "$MNT/runs/bg-1/ctl" submit
check "SIGHUP (background): a run still Completes" wait_for "$MNT/runs/bg-1/status" Completed 10
eq "SIGHUP (background): cat status works" Completed "$(cat "$MNT/runs/bg-1/status")"
check "SIGHUP (background): the daemon is still alive" kill -0 "$DPID"
check "SIGHUP (background): a new STATE/mlfs.log appears" \
	wait_until 3 test -e "$STATE/mlfs.log"
fusermount3 -u "$MNT"
check "background daemon exits after fusermount3 -u" \
	wait_until 10 eval "! kill -0 $DPID 2>/dev/null"
DPID=
check "the new mlfs.log has the daemon's last lines (unmounting)" \
	grep -q unmounting "$STATE/mlfs.log"
check "the moved-away log got nothing after the HUP" \
	eval "! grep -q unmounting '$STATE/mlfs.log.1'"
eq "nothing is mounted on MNT at the end" 0 "$(mount_count)"
done_testing
