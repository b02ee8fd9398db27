#!/usr/bin/env bash
# Run arrays (resources `array`) on an ssh target, against a private sshd
# (scripts/ssh-host.sh): 0-5%2 with tasks held by the test, which never sees
# more than 2 at once; tasks/I/{status,exit_code,log} and every task's
# outputs brought home; a failing index named in `error`; the time limit
# per task; cancel stops every task on the host; lines a task forges in
# the launcher's tasks.ev change nothing they should not; kill -9 +
# remount adopts the array, whose launcher kept going on the host.
source "$(dirname "$0")/../lib.sh"

SSHD=$T/sshd
WORK=$T/remote

trap 'ssh_cleanup; cleanup' EXIT
if ! sshd_start; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"

mk() {	# mk NAME COMMAND RESOURCES: a Draft run on the ssh target
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "$2" && wr "$MNT/runs/$1/resources" "$3" &&
		wr "$MNT/runs/$1/target" box
}
submit() { wr "$MNT/runs/$1/ctl" submit; }
st() { cat "$MNT/runs/$1/status"; }
err_of() { cat "$MNT/runs/$1/error"; }
# held: processes on the "host" still running a HOLD task
held() { ps -eo args= | grep -F "$T/go-" | grep -vc grep; }

mount_or_bail
B=$MNT/targets/box
mkdir "$B" && wr "$B/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 3" \
	"cancel_grace_seconds = 2" "max_concurrent = 4" > "$B/config"
wr "$B/ctl" provision
check "the ssh target attaches" wait_for "$B/status" Succeeded 20

# ---- 0-5%2: at most 2 at once, logs and outputs home ------------------------
mk A "$HOLD" "array = 0-5%2"
check "an array on an ssh target is taken" submit A
check "A Running" wait_for "$MNT/runs/A/status" Running 30
check "2 tasks started" wait_until 30 eval '[[ $(started) == 2 ]]'
check "tasks 0, 1 Running, the rest Queued, in tasks/" wait_until 20 eval \
	'[[ "$(statuses A)" == "0:Running 1:Running 2:Queued 3:Queued 4:Queued 5:Queued" ]]'
eq "a task folder holds status, exit_code, log" "exit_code log status" \
	"$(ls "$MNT/runs/A/tasks/0" | paste -sd' ')"
expect_err "a task's status cannot be written" "" \
	wr "$MNT/runs/A/tasks/0/status" Completed
check "every task ran, never more than 2 at once" release_all 6 2
all_completed A 6 3
eq "task 5's log" "task 5 of 6" "$(cat "$MNT/runs/A/tasks/5/log")"
clear_marks

# ---- failures: the aggregate names them; the time limit per task -------------
mk F1 "$ONE_FAILS" "array = 0-4"
mk F2 'echo i$MLFS_ARRAY_INDEX; case $MLFS_ARRAY_INDEX in 3|17) exit 2;; esac' \
	"array = 0-19%4"
mk T1 '[ $MLFS_ARRAY_INDEX = 0 ] || sleep 100000' $'array = 0-1\ntime = 0:00:01'
for r in F1 F2 T1; do submit $r; done
for r in F1 F2 T1; do
	check "$r Failed" wait_for "$MNT/runs/$r/status" Failed 60
done
one_failed F1
eq "F2: both indices" "tasks 3, 17 failed (exit 2)" "$(err_of F2)"
eq "F2: 20 task logs, each its own index" 20 "$(for i in $(seq 0 19); do
	[[ $(cat "$MNT/runs/F2/tasks/$i/log") == "i$i" ]] && echo; done | wc -l)"
eq "T1: task 1 ran past its limit" "task 1 failed (exit 143)" "$(err_of T1)"
eq "T1: task 0 Completed" Completed "$(cat "$MNT/runs/T1/tasks/0/status")"
check "T1's log says task 1 ran out of time" \
	grep -q "task 1 exceeded its time limit of 1 s" "$MNT/runs/T1/log"
# this test's own (other tests leave sleeps of theirs for a while)
t1_left() {
	local p
	for p in $(pgrep -x sleep); do
		[[ $(readlink "/proc/$p/cwd" 2>/dev/null) == "$T/"* ]] &&
			tr '\0' ' ' < "/proc/$p/cmdline" | grep -qx "sleep 100000 " && return 0
	done
	return 1
}
check "no sleep of T1 left on the host" eval '! t1_left'

# ---- cancel: every task, nothing left on the host ----------------------------
mk C "$HOLD" "array = 0-5%2"
submit C
check "C: 2 tasks started" wait_until 30 eval '[[ $(started) == 2 ]]'
check "C: their processes run on the host" eval '[[ $(held) -ge 2 ]]'
wr "$MNT/runs/C/ctl" cancel
check "C Canceled" wait_for "$MNT/runs/C/status" Canceled 60
eq "every task Canceled" \
	"0:Canceled 1:Canceled 2:Canceled 3:Canceled 4:Canceled 5:Canceled" \
	"$(statuses C)"
eq "no task ran to its end" 0 "$(ended)"
eq "and no other started" 2 "$(started)"
check "no task process left on the host" wait_until 10 eval '[[ $(held) == 0 ]]'
clear_marks

# ---- a task forging lines of tasks.ev ----------------------------------------
mk L 'printf "s 999999\ne 0 0 5 Evil\nrubbish\ne 1 3 1 ../../x\n+t 0 99 99\n" >> ../tasks.ev
echo ok' "array = 0-1"
submit L
check "L ends" wait_final "$MNT/runs/L" 60
eq "L Completed: forged lines ignored" Completed "$(st L)"
eq "only its two tasks in tasks/" "0 1" "$(ls "$MNT/runs/L/tasks" | sort -n | paste -sd' ')"
eq "both Completed" "0:Completed 1:Completed" "$(statuses L)"
check "nothing made outside the run's folder" test ! -e "$STATE/objects/x"

# ---- kill -9 + remount: the array goes on, and is adopted --------------------
mk K "$HOLD" "array = 0-3%2"
submit K
check "K: 2 tasks started" wait_until 30 eval '[[ $(started) == 2 ]]'
crash_ws
touch "$T/go-0"
check "with the daemon gone, the launcher on the host starts task 2" \
	wait_until 30 eval '[[ -e $T/started-2 ]]'
remount_or_bail "mount again after kill -9"
# killed maybe before it knew the launcher had started: Running by the
# first poll of the host
check "K Running" wait_for "$MNT/runs/K/status" Running 30
check "its tasks as the launcher left them" wait_until 20 eval \
	'[[ "$(statuses K)" == "0:Completed 1:Running 2:Running 3:Queued" ]]'
touch "$T"/go-{1,2,3}
check "K Completed (adopted)" wait_for "$MNT/runs/K/status" Completed 60
eq "every task of K Completed" \
	"0:Completed 1:Completed 2:Completed 3:Completed" "$(statuses K)"
eq "task 0's log once (ended while the daemon was gone)" "task 0 of 4" \
	"$(cat "$MNT/runs/K/tasks/0/log")"
eq "task 2's log" "task 2 of 4" "$(cat "$MNT/runs/K/tasks/2/log")"
eq "each task started once" 1 "$(grep -c "mlfs: task 2 started" "$MNT/runs/K/log")"
eq "K's outputs" "0 1 2 3" "$(ls "$MNT/runs/K/outputs" | sort -n | paste -sd' ')"
clear_marks

done_testing
