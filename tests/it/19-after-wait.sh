#!/usr/bin/env bash
# `after` (a run waits for others) and `wait` (a read that answers when a
# run is final): a chain A -> B -> C held by the test, a failed or
# canceled dependency, `any`, unknown runs and cycles refused inside the
# write, the dependency across kill -9 + remount; 50 waiters that cost no
# CPU and hold no FUSE thread, Ctrl-C of a waiter, SIGTERM with waiters.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"

# mk NAME [COMMAND]: a run; by default it waits until $T/go-NAME exists.
mk() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "${2:-while [ ! -e $T/go-$1 ]; do sleep 0.05; done; echo $1 done}"
}
submit() { wr "$MNT/runs/$1/ctl" submit; }
st() { cat "$MNT/runs/$1/status"; }
err_of() { cat "$MNT/runs/$1/error"; }
# utime + stime of PID, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }

mount_or_bail

# ---- refused inside the write -------------------------------------------------
mk A
mk B "echo B"
mk C "echo C"
wr "$MNT/runs/B/after" A
eq "B after A accepted" A "$(cat "$MNT/runs/B/after")"
wr "$MNT/runs/C/after" B
expect_err "a cycle C -> B -> A -> C refused" "$EINVAL" wr "$MNT/runs/A/after" C
check "the cycle is explained in error" grep -q "cycle" "$MNT/runs/A/error"
eq "A's after unchanged" "" "$(cat "$MNT/runs/A/after")"
expect_err "an unknown run refused" "$EINVAL" wr "$MNT/runs/A/after" nosuch
check "the unknown run is named in error" grep -q "no run 'nosuch'" \
	"$MNT/runs/A/error"
expect_err "a run waiting for itself refused" "$EINVAL" wr "$MNT/runs/A/after" A
expect_err "an unknown condition refused" "$EINVAL" wr "$MNT/runs/A/after" "B Done"
check "the condition is explained" grep -q "not a condition" "$MNT/runs/A/error"
expect_err "a bad name refused" "$EINVAL" wr "$MNT/runs/A/after" "../x"
expect_err "a name twice refused" "$EINVAL" wr "$MNT/runs/A/after" $'B\nB any'
check "comments and conditions accepted" \
	wr "$MNT/runs/C/after" $'# the data first\nB Completed\nA any'
wr "$MNT/runs/C/after" B
check "info.json shows after" grep -q '"after"' "$MNT/runs/C/info.json"

# ---- A -> B -> C, held by the test ----------------------------------------------
for r in A B C; do submit $r; done
check "A Running" wait_for "$MNT/runs/A/status" Running 10
check "B says it waits for A" wait_until 10 eval '[[ $(err_of B) == "waiting for A" ]]'
check "C says it waits for B" wait_until 10 eval '[[ $(err_of C) == "waiting for B" ]]'
eq "B Queued while A runs" Queued "$(st B)"
eq "C Queued while A runs" Queued "$(st C)"
expect_err "after is frozen once submitted" "Read-only" wr "$MNT/runs/B/after" ""
cat "$MNT/runs/C/wait" > "$T/c.wait" 2>&1 &
WPID=$!
# the tree walked while runs wait: wait is found by name, never listed
check "ls does not list wait" eval '! ls "$MNT/runs/C" | grep -qx wait'
check "stat finds it by name" test -f "$MNT/runs/C/wait"
check "grep -r over runs/ ends while runs wait" \
	timeout 60 grep -rq "waiting for" "$MNT/runs"
check "find runs -type f ends and lists no wait" eval \
	'! timeout 60 find "$MNT/runs" -type f | grep -q /wait$'
check "a reader of C/wait is still waiting while A runs" kill -0 $WPID
touch "$T/go-A"
check "C Completed after the chain" wait_for "$MNT/runs/C/status" Completed 20
eq "A Completed" Completed "$(st A)"
eq "B Completed" Completed "$(st B)"
check "the reader of C/wait ended" wait_until 10 eval "! kill -0 $WPID"
wait $WPID
eq "it exited 0" 0 $?
eq "and printed C's final state" Completed "$(cat "$T/c.wait")"
eq "B's error is empty once it ran" "" "$(err_of B)"
order=$(grep -E "run (A Completed|B Starting|B Completed|C Starting)" \
	"$MNT/events" | awk '{ print $3 $4 }' | paste -sd' ')
eq "events: A ended, then B started, then B ended, then C started" \
	"ACompleted BStarting BCompleted CStarting" "$order"
eq "a final run's wait answers at once" Completed "$(timeout 10 cat "$MNT/runs/A/wait")"
eq "and again (cached)" Completed "$(timeout 10 cat "$MNT/runs/A/wait")"
eq "wait's size is its line once final" 10 "$(stat -c %s "$MNT/runs/A/wait")"

# ---- a dependency that fails, is canceled, or `any` ----------------------------------
mk F "exit 3"
mk G "echo G"
mk H "echo H"
wr "$MNT/runs/G/after" F
wr "$MNT/runs/H/after" "F any"
for r in F G H; do submit $r; done
check "G Canceled when F failed" wait_for "$MNT/runs/G/status" Canceled 20
check "G's error says F failed" grep -q "run 'F' ended Failed" "$MNT/runs/G/error"
check "H (F any) Completed anyway" wait_for "$MNT/runs/H/status" Completed 20
eq "G's wait says Canceled" Canceled "$(timeout 10 cat "$MNT/runs/G/wait")"

mk K
mk L "echo L"
wr "$MNT/runs/L/after" K
submit K
submit L
check "K Running" wait_for "$MNT/runs/K/status" Running 10
wr "$MNT/runs/K/ctl" cancel
check "L Canceled when K was canceled" wait_for "$MNT/runs/L/status" Canceled 20
check "L's error names K" grep -q "run 'K' ended Canceled" "$MNT/runs/L/error"

mk D0 "echo D0"
mk M "echo M"
wr "$MNT/runs/M/after" D0
submit M
check "M waits for a Draft run" wait_until 10 eval '[[ $(err_of M) == "waiting for D0" ]]'
rmdir "$MNT/runs/D0"
check "M Canceled when the run it waits for is removed" \
	wait_for "$MNT/runs/M/status" Canceled 20
check "M's error says D0 is gone" grep -q "'D0'.*gone" "$MNT/runs/M/error"

# ---- Ctrl-C ends a waiter ------------------------------------------------------
mk P
submit P
check "P Running" wait_for "$MNT/runs/P/status" Running 10
# timeout says 124 when its signal ended the command (else cat's status)
timeout -s INT 1 cat "$MNT/runs/P/wait" >/dev/null 2>&1
eq "Ctrl-C (SIGINT) ends cat of a wait" 124 $?
check "the mount still answers" test "$(st P)" = Running

# ---- 50 waiters: no CPU, no thread each, FUSE still answers ----------------------
pids=()
for i in $(seq 50); do
	cat "$MNT/runs/P/wait" > "$T/w.$i" 2>&1 &
	pids+=($!)
done
# each is asleep in the kernel, its READ sent (the daemon keeps it)
asleep() {
	local p
	for p in "${pids[@]}"; do
		[[ $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) == [SD] ]] || return 1
	done
}
all_done() {
	local p
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done
	return 0
}
check "50 readers of P/wait block" wait_until 20 asleep
c0=$(cpu_ticks "$DPID")
sleep 2		# the fixed wait the test controls
c1=$(cpu_ticks "$DPID")
echo "# daemon CPU over 2 s with 50 waiters: $((c1 - c0)) ticks"
check "the daemon's CPU time barely moves (<= 30 ticks in 2 s)" \
	test $((c1 - c0)) -le 30
n=$(threads "$DPID")
echo "# daemon threads with 50 waiters: $n"
check "the daemon's threads stay bounded ($n <= 40)" test "$n" -le 40
eq "FUSE still answers (status)" Running "$(timeout 10 cat "$MNT/runs/P/status")"
check "FUSE still answers (ls)" timeout 10 ls "$MNT/runs/A" >/dev/null
check "and a mkdir works" mkdir "$MNT/runs/Q"
touch "$T/go-P"
check "P Completed" wait_for "$MNT/runs/P/status" Completed 20
check "all 50 readers ended" wait_until 20 all_done
bad=0
for i in $(seq 50); do [[ $(cat "$T/w.$i") == Completed ]] || bad=$((bad + 1)); done
eq "all 50 printed Completed" 0 "$bad"

# ---- waits on 20 runs at once leave the mount's other reads alone ------------------
# (each is a background READ the daemon keeps; the kernel's default allows
# 12 in flight, and readahead of every other file would queue behind them)
dpids=()
for i in $(seq 20); do
	mkdir "$MNT/runs/d$i"
	cat "$MNT/runs/d$i/wait" > "$T/d.$i" 2>&1 &
	dpids+=($!)
done
pids=("${dpids[@]}")
check "20 readers of 20 Draft runs' wait block" wait_until 20 asleep
mkdir "$MNT/runs/big"
dd if=/dev/urandom of="$MNT/runs/big/data" bs=1M count=32 status=none
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
check "a 32 MiB file reads meanwhile" eval \
	"timeout 60 cat '$MNT/runs/big/data' | cmp - '$MNT/runs/big/data'"
for i in $(seq 20); do rmdir "$MNT/runs/d$i"; done
check "removing the runs answers their readers" wait_until 20 all_done
check "with ENOENT" grep -q "No such file" "$T/d.1"

# ---- the dependency survives kill -9 + remount -----------------------------------
mk R1
mk R2 "echo R2"
wr "$MNT/runs/R2/after" R1
submit R1
submit R2
check "R1 Running" wait_for "$MNT/runs/R1/status" Running 10
check "R2 waits for R1" wait_until 10 eval '[[ $(err_of R2) == "waiting for R1" ]]'
crash_ws
mount_or_bail "mount again after kill -9"
eq "R2 still Queued after the remount" Queued "$(st R2)"
eq "R2 still waits for R1" "waiting for R1" "$(err_of R2)"
touch "$T/go-R1"
check "R1 Completed (adopted)" wait_for "$MNT/runs/R1/status" Completed 20
check "R2 Completed after R1" wait_for "$MNT/runs/R2/status" Completed 20

# ---- a wait pending when the daemon is told to stop -------------------------------
mk S
submit S
check "S Running" wait_for "$MNT/runs/S/status" Running 10
cat "$MNT/runs/S/wait" > "$T/s.wait" 2>&1 &
WPID=$!
check "the reader of S/wait blocks" wait_until 10 eval \
	"[[ \$(awk '{ print \$3 }' /proc/$WPID/stat 2>/dev/null) == [SD] ]]"
stop_watchdog
kill -TERM "$DPID"
check "the pending reader is answered when the daemon stops" \
	wait_until 20 eval "! kill -0 $WPID"
wait $WPID
check "with an error (EIO)" test $? -ne 0
check "the daemon exits" wait_until 20 eval "! kill -0 $DPID"
wait "$DPID"
eq "and exits 0" 0 $?
DPID=
is_mounted && fusermount3 -u "$MNT" 2>/dev/null
touch "$T/go-S"
done_testing
