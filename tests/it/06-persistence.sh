#!/usr/bin/env bash
# Persistence: unmount + remount keeps everything byte for byte; a kill -9
# of the daemon while runs are running loses nothing, runs nothing twice,
# and a Queued run starts after the remount exactly once.
source "$(dirname "$0")/../lib.sh"

newrun() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "$2"
	[[ -z "${3:-}" ]] || wr "$MNT/runs/$1/target" "$3"
}
mktarget() {	# mktarget NAME MAX_CONCURRENT
	mkdir "$MNT/targets/$1" && wr "$MNT/targets/$1/type" local &&
		wr "$MNT/targets/$1/config" "max_concurrent = $2" &&
		wr "$MNT/targets/$1/ctl" provision &&
		wait_for "$MNT/targets/$1/status" Succeeded 10
}
# snap FILE: every path (type, size) and every file's bytes under runs,
# targets, models
snap() {
	(
		cd "$MNT" || exit 1
		find runs targets models -printf '%p %y %s\n' | sort
		find runs targets models -type f | sort | while read -r f; do
			echo "== $f"
			cat "$f"
		done
		find runs targets models -type l | sort | while read -r f; do
			echo "== $f -> $(readlink "$f")"
		done
	) > "$1" 2>&1
}
# count RUN: lines RUN appended to the file outside the mount
count() { grep -cx "$1" "$T/count" 2>/dev/null || true; }

mount_or_bail

# ---- a workspace with a bit of everything --------------------------------------
check "target keep" mktarget keep 3
R=$MNT/runs/p1
mkdir "$R" "$R/sub"
echo "alpha" > "$R/sub/data.txt"
printf '\x00\x01\xff binary\n' > "$R/blob.bin"
ln -s sub/data.txt "$R/link"
printf 'X=1\nY=two\n' > "$R/env"
wr "$R/resources" "cpus = 1"
wr "$R/target" keep
wr "$R/command" 'echo "X=$X Y=$Y"; echo err >&2; echo "loss 0.5 1" >> $MLFS_METRICS; echo "acc 0.7" >> $MLFS_METRICS; mkdir -p outputs/d; echo w > outputs/d/w.txt'
wr "$R/ctl" submit
check "p1 Completed" wait_for "$R/status" Completed
newrun p3 'echo failing; exit 5'
wr "$MNT/runs/p3/ctl" submit
check "p3 Failed" wait_for "$MNT/runs/p3/status" Failed
newrun p2 'echo draft'
echo "draft file" > "$MNT/runs/p2/notes.txt"
wr "$MNT/runs/p2/env" "D=1"
mkdir "$MNT/models/mod"
mkdir "$MNT/models/mod/1"
echo "weights" > "$MNT/models/mod/1/w.bin"
mkdir "$MNT/targets/drafty"
wr "$MNT/targets/drafty/type" local
wr "$MNT/targets/drafty/config" "max_concurrent = 2"
snap "$T/before"
ev_before=$(cat "$MNT/events")
check "unmount" unmount_ws
mount_or_bail remount
snap "$T/after"
if diff -u "$T/before" "$T/after" > "$T/snap.diff"; then
	ok "after unmount+remount every file is identical"
else
	not_ok "after unmount+remount every file is identical"
	head -30 "$T/snap.diff" | sed 's/^/#   /'
fi
check "events kept (old lines are a prefix)" \
	eval '[[ "$(head -c ${#ev_before} "$MNT/events")" == "$ev_before" ]]'
eq "p1 still Completed" Completed "$(cat "$R/status")"
eq "p1 log" $'X=1 Y=two\nerr' "$(cat "$R/log")"
eq "p1 metrics lines" 2 "$(grep -c . "$R/metrics")"
eq "p1 outputs" w "$(cat "$R/outputs/d/w.txt")"
eq "p2 still Draft" Draft "$(cat "$MNT/runs/p2/status")"
eq "p3 exit code" 5 "$(cat "$MNT/runs/p3/exit_code")"
eq "keep still Succeeded" Succeeded "$(cat "$MNT/targets/keep/status")"
eq "drafty still Draft" Draft "$(cat "$MNT/targets/drafty/status")"
check "p2 can still be submitted" wr "$MNT/runs/p2/ctl" submit
check "p2 Completed" wait_for "$MNT/runs/p2/status" Completed
eq "p2 log" draft "$(cat "$MNT/runs/p2/log")"

# ---- a clean unmount while a run is running ------------------------------------------
newrun u1 "echo start; sleep 2; echo u1 >> $T/count; echo end"
wr "$MNT/runs/u1/ctl" submit
check "u1 Running" wait_for "$MNT/runs/u1/status" Running
check "unmount with a run running" unmount_ws
mount_or_bail remount
check "u1 is tracked to Completed after the remount" \
	wait_for "$MNT/runs/u1/status" Completed 10
eq "u1 log complete" $'start\nend' "$(cat "$MNT/runs/u1/log")"
eq "u1 ran exactly once" 1 "$(count u1)"

# ---- unmount does not wait for a long run ------------------------------------------
# the run waits for the test's go, given only after the daemon has exited
newrun long "echo begun; while [ ! -e $T/go-long ]; do sleep 0.05; done; echo finished"
wr "$MNT/runs/long/ctl" submit
check "long Running" wait_for "$MNT/runs/long/status" Running
check "long printed" wait_until 5 grep -q begun "$MNT/runs/long/log"
t0=$(now_ms)
check "unmount with a long run running: the daemon exits without waiting for it" unmount_ws
echo "# unmount took $(($(now_ms) - t0)) ms"
check "the run's process outlives the daemon" pgrep -f "$T/go-long" >/dev/null
mount_or_bail remount
eq "long still Running after the remount" Running "$(cat "$MNT/runs/long/status")"
touch "$T/go-long"
check "long Completed after the remount" wait_for "$MNT/runs/long/status" Completed 15
eq "long's log is whole" $'begun\nfinished' "$(cat "$MNT/runs/long/log")"

# ---- kill -9 of the daemon while runs are running -------------------------------
check "target one (max_concurrent = 1)" mktarget one 1
mk() {	# mk NAME TARGET: a run that ends when the test says go-NAME
	newrun "$1" "echo start $1; while [ ! -e $T/go-$1 ]; do sleep 0.05; done; echo $1 >> $T/count; echo end $1; exit 7" "$2"
}
mk k1 keep      # ends while the daemon is dead
mk k2 keep      # still running after the remount
mk k3 one       # holds one's only slot across the crash
mk k4 one       # Queued behind k3 at the crash
touch "$T/go-k4"
for r in k1 k2 k3; do wr "$MNT/runs/$r/ctl" submit; done
for r in k1 k2 k3; do check "$r Running" wait_for "$MNT/runs/$r/status" Running 5; done
wr "$MNT/runs/k4/ctl" submit
eq "k4 Queued behind k3" Queued "$(cat "$MNT/runs/k4/status")"
crash_ws
check "the mount is dead after kill -9" eval "! stat '$MNT/runs' >/dev/null 2>&1"
touch "$T/go-k1"
check "k1 ended while the daemon was dead" wait_until 10 eval '[[ $(count k1) == 1 ]]'
mount_or_bail "mount again over the dead mount"
check "the mount answers" test -d "$MNT/runs/k1"
check "k1 shows its final state" wait_until 5 eval '[[ $(cat "$MNT/runs/k1/status") == Failed ]]'
eq "k1 exit code 7" 7 "$(cat "$MNT/runs/k1/exit_code")"
eq "k2 still Running after the remount" Running "$(cat "$MNT/runs/k2/status")"
eq "k4 still Queued after the remount" Queued "$(cat "$MNT/runs/k4/status")"
touch "$T/go-k2" "$T/go-k3"
for r in k2 k3 k4; do
	check "$r reaches Failed (exit 7)" wait_for "$MNT/runs/$r/status" Failed 15
	eq "$r exit code 7" 7 "$(cat "$MNT/runs/$r/exit_code")"
done
sleep 1
for r in k1 k2 k3 k4; do
	eq "$r log complete" "start $r"$'\n'"end $r" "$(cat "$MNT/runs/$r/log")"
	eq "$r ran exactly once" 1 "$(count "$r")"
	check "$r info.json valid after the crash" json_ok "$MNT/runs/$r/info.json"
done
eq "k4 started only after k3 ended (FIFO kept across the crash)" \
	"k3 k4" "$(grep -xE 'k3|k4' "$T/count" | paste -sd' ')"
check "the error of k1 says why it failed" grep -q 7 "$MNT/runs/k1/error"
check "unmount exits 0" unmount_ws
done_testing
