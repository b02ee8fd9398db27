#!/usr/bin/env bash
# The ssh target against a real, private sshd (scripts/ssh-host.sh): attach
# and its refusals (bad configs, injection attempts, refused key, changed
# host key), runs with live logs through tail -f, outputs and metrics,
# failure, cancel, a daemon killed mid-run, sshd stopped mid-run.
source "$(dirname "$0")/../lib.sh"

SSHD=$T/sshd
WORK="$T/re mote"		# a blank in the remote path, on purpose

trap 'ssh_cleanup; cleanup' EXIT

if ! sshd_start; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"

check "mount" mount_ws

# ---- attach ---------------------------------------------------------------

B=$MNT/targets/box
mkdir "$B" && wr "$B/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 3" \
	"cancel_grace_seconds = 2" "max_concurrent = 4" > "$B/config"
check "provision an ssh target" wr "$B/ctl" provision
check "it attaches: Succeeded" wait_for "$B/status" Succeeded 20
eq "nodes shows the host" "up $(nproc) 0" \
	"$(awk '{ print $2, $3, $5 }' "$B/nodes")"
check "the workdir was made on the host" test -d "$WORK"
check "the host key is kept in the state dir" \
	test -n "$(find "$STATE/objects" -name known_hosts -size +0)"

# ---- refusals -------------------------------------------------------------

bad_target() {	# bad_target NAME CONFIG: a Draft ssh target with CONFIG
	mkdir "$MNT/targets/$1" && wr "$MNT/targets/$1/type" ssh &&
		printf '%s\n' "$2" > "$MNT/targets/$1/config"
}
bad_target inj1 "host = -oProxyCommand=touch $T/pwned"
expect_err "host = -oProxyCommand=… is EINVAL" "Invalid argument" \
	wr "$MNT/targets/inj1/ctl" provision
check "… with a sentence, and still Draft" \
	grep -q 'not a hostname' "$MNT/targets/inj1/error"
eq "… status" Draft "$(cat "$MNT/targets/inj1/status")"
bad_target inj2 "host = $SSH_HOST
user = a;b"
expect_err "user = a;b is EINVAL" "Invalid argument" wr "$MNT/targets/inj2/ctl" provision
bad_target inj3 "host = $SSH_HOST
port = 22 -oProxyCommand=touch $T/pwned"
expect_err "port with options is EINVAL" "Invalid argument" wr "$MNT/targets/inj3/ctl" provision
bad_target inj4 "host = $SSH_HOST
identity_file = -oProxyCommand=touch $T/pwned"
expect_err "identity_file with options is EINVAL" "Invalid argument" \
	wr "$MNT/targets/inj4/ctl" provision
bad_target inj5 "host = a b"
expect_err "host with a blank is EINVAL" "Invalid argument" wr "$MNT/targets/inj5/ctl" provision
bad_target nohost "port = 22"
expect_err "no host is EINVAL" "Invalid argument" wr "$MNT/targets/nohost/ctl" provision

ssh-keygen -q -t ed25519 -N '' -C other -f "$T/other_key"
bad_target badkey "host = $SSH_HOST
port = $SSH_PORT
user = $SSH_USER
identity_file = $T/other_key"
bad_target closed "host = $SSH_HOST
port = 1
user = $SSH_USER
identity_file = $SSH_IDENTITY
connect_timeout = 2"
check "provision with a refused key" wr "$MNT/targets/badkey/ctl" provision
check "provision of a closed port" wr "$MNT/targets/closed/ctl" provision
check "refused key: Failed" wait_for "$MNT/targets/badkey/status" Failed 20
check "… error says the key was refused" \
	grep -q 'refused the key' "$MNT/targets/badkey/error"
check "unreachable host: Failed" wait_for "$MNT/targets/closed/status" Failed 20
check "… error says unreachable" grep -q 'unreachable.*refused' \
	"$MNT/targets/closed/error"

# ---- a run: live log, outputs, metrics ------------------------------------

R=$MNT/runs/live
mkdir "$R"
cat > "$R/train.sh" <<'SH'
for i in 1 2 3 4 5 6; do
	echo "line $i $(date +%s%3N)"
	echo "loss 0.$i" >> "$MLFS_METRICS"
	sleep 0.5
done
# the run stays Running until the test has seen every line
while [ ! -e "$GO" ]; do sleep 0.05; done
echo "weights" > outputs/model.txt
mkdir -p "$MLFS_OUTPUTS/deep" && echo deep > "$MLFS_OUTPUTS/deep/d.txt"
printf 'env [%s] run %s\n' "$TRICKY" "$MLFS_RUN"
echo once >> "$COUNT"
SH
wr "$R/command" 'sh train.sh'
wr "$R/target" box
printf '%s\n' "TRICKY=it's \$(touch $T/pwned) \`x\` \"q\"; rm -rf /nothing" "COUNT=$T/live.count" "GO=$T/go-live" > "$R/env"
check "submit a run to the ssh target" wr "$R/ctl" submit
: > "$T/tail.out"
tail -f "$R/log" >> "$T/tail.out" 2>/dev/null &
TAILPID=$!

# Arrival delay (ms) of each line "line N STAMP" seen by tail -f (a figure,
# not a check: tests do not assume the machine's speed).
max_lat=0 seen=0 running_seen=0 end=$(deadline 30)
while ((seen < 6 && $(now_ms) < end)); do
	mapfile -t lines < <(grep '^line ' "$T/tail.out")
	now=$(now_ms)
	while ((seen < ${#lines[@]})); do
		read -r _ _ stamp <<< "${lines[seen]}"
		((now - stamp > max_lat)) && max_lat=$((now - stamp))
		[[ $(cat "$R/status") == Running ]] && running_seen=$((running_seen + 1))
		seen=$((seen + 1))
	done
	sleep 0.05
done
eq "tail -f shows the 6 lines" 6 "$seen"
eq "all 6 arrived while Running (the run waits for the test)" 6 "$running_seen"
echo "# tail -f: worst arrival delay ${max_lat} ms (tail polls each 1 s)"
touch "$T/go-live"
check "the run completes" wait_final "$R" 20
kill "$TAILPID" 2>/dev/null
eq "status Completed" Completed "$(cat "$R/status")"
eq "exit code 0" 0 "$(cat "$R/exit_code")"
eq "env values arrive literally" "env [it's \$(touch $T/pwned) \`x\` \"q\"; rm -rf /nothing] run live" \
	"$(tail -n1 "$R/log")"
eq "outputs copied back" weights "$(cat "$R/outputs/model.txt")"
eq "nested outputs too" deep "$(cat "$R/outputs/deep/d.txt")"
check "metrics copied back" grep -q '^loss 0.6 5 ' "$R/metrics"
eq "six metrics lines" 6 "$(grep -c '^loss' "$R/metrics")"
check "backend_id names the host and the remote pid" \
	grep -q "\"backend_id\":.*ssh $SSH_USER@$SSH_HOST:$SSH_PORT .* pid [0-9]" "$R/info.json"
check "no injection ran anywhere" test ! -e "$T/pwned"

# ---- failure, GPUs, cancel ------------------------------------------------

F=$MNT/runs/fails
mkdir "$F" && wr "$F/command" 'echo to-stderr >&2; exit 3' && wr "$F/target" box
check "submit a failing run" wr "$F/ctl" submit
check "it ends" wait_final "$F" 20
eq "Failed" Failed "$(cat "$F/status")"
eq "exit code 3" 3 "$(cat "$F/exit_code")"
eq "error sentence" "the command exited with code 3" "$(cat "$F/error")"
eq "stderr in the log" to-stderr "$(cat "$F/log")"

G=$MNT/runs/gpu
mkdir "$G" && wr "$G/command" true && wr "$G/target" box && wr "$G/resources" 'gpus = 1'
expect_err "asking for a GPU the host lacks is EINVAL" "Invalid argument" wr "$G/ctl" submit

C=$MNT/runs/cancel
mkdir "$C" && wr "$C/target" box
wr "$C/command" 'trap "echo got TERM; exit 7" TERM; echo started; sleep 60 & wait'
check "submit a long run" wr "$C/ctl" submit
check "it runs" wait_until 15 grep -q started "$C/log"
expect_err "deprovision with an active run is EBUSY" "Device or resource busy" \
	wr "$B/ctl" deprovision
check "cancel" wr "$C/ctl" cancel
check "it ends" wait_final "$C" 15
eq "Canceled" Canceled "$(cat "$C/status")"
check "the command got TERM" grep -q 'got TERM' "$C/log"

K=$MNT/runs/stubborn
mkdir "$K" && wr "$K/target" box
wr "$K/command" 'trap "" TERM; echo started; sleep 60; echo never'
check "submit a run that ignores TERM" wr "$K/ctl" submit
check "it runs" wait_until 15 grep -q started "$K/log"
check "cancel" wr "$K/ctl" cancel
check "KILL after the 2 s grace: Canceled" wait_final "$K" 15
eq "status" Canceled "$(cat "$K/status")"
kpid=$(grep -o 'pid [0-9]*' "$K/info.json" | cut -d' ' -f2)
# No live (non-zombie) process left in the run's session on the host.
session_gone() { ! ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'; }
check "its processes are gone from the host" wait_until 5 session_gone "$kpid"

# ---- the daemon killed mid-run --------------------------------------------

# After tick 1 the run waits for the file $GATE, which the test creates once
# it has done what must happen while the run runs (on any machine's speed).
cat > "$T/ticks.sh" <<'SH'
echo once >> "$COUNT"
for i in $(seq 1 "$N"); do
	echo "tick $i"
	if [ "$i" = 1 ]; then while [ ! -e "$GATE" ]; do sleep 0.1; done; fi
	sleep 0.2
done
echo done > outputs/done.txt
SH
D=$MNT/runs/crash
mkdir "$D" && wr "$D/target" box && wr "$D/command" "sh $T/ticks.sh"
printf 'N=8\nCOUNT=%s\nGATE=%s\n' "$T/crash.count" "$T/go-crash" > "$D/env"
check "submit a run" wr "$D/ctl" submit
check "it logs" wait_until 15 grep -q 'tick 1' "$D/log"
crash_ws
check "remount after kill -9" mount_ws
touch "$T/go-crash"
check "the run is adopted and completes" wait_final "$D" 30
eq "Completed" Completed "$(cat "$D/status")"
eq "every tick once in the log" "12345678" "$(grep -o 'tick [0-9]' "$D/log" | cut -c6 | tr -d '\n')"
eq "outputs after adoption" done "$(cat "$D/outputs/done.txt")"
eq "it ran once" 1 "$(wc -l < "$T/crash.count")"

# ---- sshd stopped mid-run ---------------------------------------------------

X=$MNT/runs/cut
mkdir "$X" && wr "$X/target" box && wr "$X/command" "sh $T/ticks.sh"
printf 'N=12\nCOUNT=%s\nGATE=%s\n' "$T/cut.count" "$T/go-cut" > "$X/env"
check "submit a run" wr "$X/ctl" submit
check "it logs" wait_until 15 grep -q 'tick 1' "$X/log"
sshd_cut
check "host down: error says unreachable" wait_until 15 grep -q 'unreachable' "$X/error"
eq "… and the run stays Running" Running "$(cat "$X/status")"
check "events has the note" grep -q 'run cut error: host .* is unreachable' "$MNT/events"
sleep 3
check "sshd back" sshd_start
touch "$T/go-cut"
check "the run catches up and completes" wait_final "$X" 30
eq "Completed" Completed "$(cat "$X/status")"
eq "error cleared" "" "$(cat "$X/error")"
eq "every tick once in the log" "123456789101112" \
	"$(grep -o 'tick [0-9]*' "$X/log" | cut -d' ' -f2 | tr -d '\n')"
eq "it ran once" 1 "$(wc -l < "$T/cut.count")"

# ---- detach, changed host key -------------------------------------------------

check "deprovision" wr "$B/ctl" deprovision
check "… Draft" wait_for "$B/status" Draft 20
eq "the runs' working copies are gone from the host" "" "$(ls "$WORK")"
sshd_cut
rm -f "$SSHD"/ssh_host_ed25519_key* "$SSHD/known_hosts_check"
check "sshd with a new host key" sshd_start
check "provision again" wr "$B/ctl" provision
check "changed host key: Failed" wait_for "$B/status" Failed 20
check "… error says the host key changed" grep -q 'host key .* has changed' "$B/error"

check "unmount exits 0" unmount_ws
check "no injection ran anywhere" test ! -e "$T/pwned"
done_testing
