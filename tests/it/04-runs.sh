#!/usr/bin/env bash
# Runs: what the process sees, log, exit codes and signals, cancel (TERM,
# KILL after the grace period, Queued), metrics, time limit, info.json,
# outputs/, and settings edited like normal files.
source "$(dirname "$0")/../lib.sh"

EROFS="Read-only file system"

# newrun NAME COMMAND [TARGET]
newrun() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "$2"
	[[ -z "${3:-}" ]] || wr "$MNT/runs/$1/target" "$3"
}
submit() { wr "$MNT/runs/$1/ctl" submit; }
st() { cat "$MNT/runs/$1/status"; }
# no process of ours has this exact command line any more
gone() { ! pgrep -f -- "$1" >/dev/null; }
# elapsed_until RUN STATE SECONDS: wait; prints the milliseconds it took
ms_until() {
	local t0 t1
	t0=$(now_ms)
	wait_for "$MNT/runs/$1/status" "$2" "$3" || { echo -1; return 1; }
	t1=$(now_ms)
	echo $((t1 - t0))
}

mount_or_bail

# ---- the run environment -----------------------------------------------------
R=$MNT/runs/envr
mkdir "$R"
mkdir "$R/sub"
echo "sub data" > "$R/sub/data.txt"
ln -s sub/data.txt "$R/link"
cat > "$R/train.sh" <<'SH'
echo "greeting=$GREETING"
echo "empty=[${EMPTY-unset}]"
echo "with_eq=$WITH_EQ"
echo "run=$MLFS_RUN"
echo "outputs=$MLFS_OUTPUTS"
echo "metrics=$MLFS_METRICS"
echo "pwd=$(pwd)"
echo "data=$(cat sub/data.txt)"
if [ -L link ]; then echo "link=$(readlink link)"; else echo "link=not a link"; fi
echo "via_link=$(cat link)"
[ -d "$MLFS_OUTPUTS" ] && echo "outputs-exists"
[ "$MLFS_OUTPUTS" = "$(pwd)/outputs" ] && echo "outputs-in-cwd"
touch "$MLFS_METRICS" && echo "metrics-writable"
echo "to stderr" >&2
SH
printf 'GREETING=hello world\nEMPTY=\n# a comment\nWITH_EQ=a=b\n' > "$R/env"
wr "$R/command" 'sh train.sh'
check "submit envr" submit envr
check "envr Completed" wait_for "$R/status" Completed
log=$(cat "$R/log")
lv() { sed -n "s/^$1=//p" <<<"$log" | head -1; }
eq "env line with spaces reaches the process" "hello world" "$(lv greeting)"
eq "empty env value is set and empty" "[]" "$(lv empty)"
eq "env value with '='" "a=b" "$(lv with_eq)"
eq "MLFS_RUN is the run's name" envr "$(lv run)"
check "MLFS_OUTPUTS is absolute ($(lv outputs))" eval "[[ '$(lv outputs)' == /* ]]"
check "MLFS_METRICS is absolute ($(lv metrics))" eval "[[ '$(lv metrics)' == /* ]]"
check "MLFS_OUTPUTS exists" grep -qx outputs-exists <<<"$log"
check "MLFS_OUTPUTS is ./outputs" grep -qx outputs-in-cwd <<<"$log"
check "MLFS_METRICS is writable" grep -qx metrics-writable <<<"$log"
eq "the working dir has the user's files (subfolder)" "sub data" "$(lv data)"
eq "a symlink is copied as a link" "sub/data.txt" "$(lv link)"
eq "the link works" "sub data" "$(lv via_link)"
check "stdout in log" grep -qx "greeting=hello world" <<<"$log"
check "stderr in log" grep -qx "to stderr" <<<"$log"
check "the working dir is not the mount" eval "[[ '$(lv pwd)' != '$MNT'* ]]"
check "user files still in the run folder" test -f "$R/sub/data.txt" -a -L "$R/link"

# ---- exit codes and signals ------------------------------------------------------
newrun fail3 'echo before; exit 3'
submit fail3
check "exit 3 -> Failed" wait_for "$MNT/runs/fail3/status" Failed
eq "exit_code 3" 3 "$(cat "$MNT/runs/fail3/exit_code")"
check "error is a sentence" has_sentence "$MNT/runs/fail3/error"
check "error names the code" grep -q 3 "$MNT/runs/fail3/error"
check "events: fail3 Failed" grep -qE ' run fail3 Failed$' "$MNT/events"
eq "log kept" before "$(cat "$MNT/runs/fail3/log")"

newrun sig 'echo bye; kill -KILL $$'
submit sig
check "killed by a signal -> Failed" wait_for "$MNT/runs/sig/status" Failed
eq "exit_code 128+9 like a shell" 137 "$(cat "$MNT/runs/sig/exit_code")"
check "error names the signal" grep -qiE 'signal|kill' "$MNT/runs/sig/error"

newrun ok0 'true'
eq "exit_code empty while Draft" "" "$(cat "$MNT/runs/ok0/exit_code")"
submit ok0
check "ok0 Completed" wait_for "$MNT/runs/ok0/status" Completed
eq "exit_code 0" 0 "$(cat "$MNT/runs/ok0/exit_code")"
eq "no error on success" "" "$(cat "$MNT/runs/ok0/error")"

# ---- cancel ----------------------------------------------------------------------
newrun c1 'sleep 100.101'
submit c1
check "c1 Running" wait_for "$MNT/runs/c1/status" Running
eq "exit_code empty while Running" "" "$(cat "$MNT/runs/c1/exit_code")"
sleep 0.5
wr "$MNT/runs/c1/ctl" cancel
ms=$(ms_until c1 Canceled 15)
check "cancel of a running sleep: Canceled (took ${ms} ms)" test "$ms" -ge 0
eq "ended by TERM" 143 "$(cat "$MNT/runs/c1/exit_code")"
check "its process is gone" wait_until 2 gone 'sleep 100.101'
check "events: c1 Canceled" grep -qE ' run c1 Canceled$' "$MNT/events"

newrun c2 'sleep 100.102'
submit c2
wr "$MNT/runs/c2/ctl" cancel
ms=$(ms_until c2 Canceled 15)
check "cancel right after submit: Canceled (took ${ms} ms)" test "$ms" -ge 0
check "its process is gone" wait_until 2 gone 'sleep 100.102'

TG=$MNT/targets/grace
mkdir "$TG"
wr "$TG/type" local
printf 'cancel_grace_seconds = 1\nmax_concurrent = 4\n' > "$TG/config"
wr "$TG/ctl" provision
check "target grace Succeeded" wait_for "$TG/status" Succeeded 10
newrun c3 "trap '' TERM; echo armed; sleep 100.103; echo survived" grace
submit c3
check "c3 Running" wait_for "$MNT/runs/c3/status" Running
check "c3 armed its trap" wait_until 5 grep -q armed "$MNT/runs/c3/log"
t0=$(now_ms)	# before the cancel: the grace cannot have begun earlier
wr "$MNT/runs/c3/ctl" cancel
check "c3 Canceled" wait_for "$MNT/runs/c3/status" Canceled 15
ms=$(($(now_ms) - t0))
check "TERM ignored: KILLed, not before the 1 s grace (${ms} ms after cancel)" \
	test "$ms" -ge 1000
eq "ended by KILL" 137 "$(cat "$MNT/runs/c3/exit_code")"
check "c3's processes are gone" wait_until 2 gone 'sleep 100.103'
check "c3 did not survive" eval "! grep -q survived '$MNT/runs/c3/log'"

# cancel of a Queued run
TQ=$MNT/targets/one
mkdir "$TQ"
wr "$TQ/type" local
wr "$TQ/config" "max_concurrent = 1"
wr "$TQ/ctl" provision
check "target one Succeeded" wait_for "$TQ/status" Succeeded 10
newrun q1 'sleep 100.104' one
newrun q2 "echo q2 ran; touch $T/q2.marker" one
submit q1
check "q1 Running" wait_for "$MNT/runs/q1/status" Running
submit q2
eq "q2 Queued behind q1" Queued "$(st q2)"
wr "$MNT/runs/q2/ctl" cancel
ms=$(ms_until q2 Canceled 5)
check "cancel of a Queued run: Canceled (took ${ms} ms)" test "$ms" -ge 0
wr "$MNT/runs/q1/ctl" cancel
check "q1 Canceled" wait_for "$MNT/runs/q1/status" Canceled 5
sleep 0.5
check "the canceled Queued run never ran (no marker)" test ! -e "$T/q2.marker"
eq "and has an empty log" "" "$(cat "$MNT/runs/q2/log")"
eq "and no exit code" "" "$(cat "$MNT/runs/q2/exit_code")"

# ---- metrics -------------------------------------------------------------------------
newrun met 'M=$MLFS_METRICS
echo "loss 0.5 1" >> $M
echo "loss 0.25 2" >> $M
echo "acc 0.9" >> $M
echo "acc 0.95" >> $M
echo "garbage line here" >> $M
echo "loss abc 3" >> $M
echo "lonely" >> $M
echo "lr 1e-3 5" >> $M
printf "partial 1" >> $M'
submit met
check "met Completed" wait_for "$MNT/runs/met/status" Completed
M=$(cat "$MNT/runs/met/metrics")
echo "$M" | sed 's/^/# metrics: /'
eq "five good metrics lines, malformed ones ignored" 5 "$(grep -c . <<<"$M")"
check "every line is 'name value step time'" \
	eval "! grep -vqE '^[A-Za-z0-9_.:/-]+ [^ ]+ [0-9]+ [0-9]+(\\.[0-9]+)?$' <<<'$M'"
eq "loss with steps" "loss 0.5 1|loss 0.25 2" \
	"$(grep '^loss ' <<<"$M" | cut -d' ' -f1-3 | paste -sd'|')"
acc=$(grep '^acc ' <<<"$M" | cut -d' ' -f3 | paste -sd' ')
check "acc without step gets increasing steps ($acc)" \
	eval "[[ '$acc' =~ ^([0-9]+)\\ ([0-9]+)$ ]] && (( BASH_REMATCH[1] < BASH_REMATCH[2] ))"
check "1e-3 is 0.001" eval "grep '^lr ' <<<'$M' | awk '{exit !(\$2 == 0.001 && \$3 == 5)}'"
now=$(date +%s)
check "time column is recent epoch seconds" \
	eval "awk -v n=$now '{ if (\$4 < n - 60 || \$4 > n + 5) exit 1 }' <<<'$M'"
check "garbage not in metrics" eval "! grep -qE '^(garbage|lonely|partial) ' <<<'$M'"

# ---- time limit -----------------------------------------------------------------------
newrun tl 'sleep 30.105'
wr "$MNT/runs/tl/resources" "time = 0:00:02"
t0=$(now_ms)	# before the submit: the run cannot have started earlier
submit tl
check "tl Running" wait_for "$MNT/runs/tl/status" Running
check "tl Failed" wait_for "$MNT/runs/tl/status" Failed 20
ms=$(($(now_ms) - t0))
check "time = 0:00:02: Failed, not before its time (${ms} ms after submit)" \
	test "$ms" -ge 2000
check "error says time limit" grep -qi 'time limit' "$MNT/runs/tl/error"
check "tl's process is gone" wait_until 2 gone 'sleep 30.105'

# ---- info.json ----------------------------------------------------------------------------
I=$MNT/runs/fail3/info.json
check "info.json is valid JSON" json_ok "$I"
eq "info.json exit_code" 3 "$(json_get "$I" exit_code)"
eq "info.json status" Failed "$(json_get "$I" status)"
eq "info.json name" fail3 "$(json_get "$I" name)"
check "info.json started" test -n "$(json_get "$I" started)"
check "info.json ended" test -n "$(json_get "$I" ended)"
check "info.json started <= ended" \
	test ! "$(json_get "$I" ended)" \< "$(json_get "$I" started)"
check "info.json backend_id" test -n "$(json_get "$I" backend_id)"
eq "info.json error = error file" "$(cat "$MNT/runs/fail3/error")" "$(json_get "$I" error)"
eq "info.json target" local "$(json_get "$I" target)"
I=$MNT/runs/ok0/info.json
eq "Draft run: info.json valid" 0 "$(mkdir "$MNT/runs/dr"; json_ok "$MNT/runs/dr/info.json"; echo $?)"
eq "Draft run: exit_code null" "" "$(json_get "$MNT/runs/dr/info.json" exit_code)"
eq "Draft run: started null" "" "$(json_get "$MNT/runs/dr/info.json" started)"

# ---- outputs/ ----------------------------------------------------------------------------
newrun out 'mkdir -p $MLFS_OUTPUTS/sub; echo A > $MLFS_OUTPUTS/a.txt; echo B > outputs/sub/b.txt; echo tmp > scratch.txt'
check "outputs/ exists before the run" test -d "$MNT/runs/out/outputs"
submit out
check "out Completed" wait_for "$MNT/runs/out/status" Completed
eq "ls outputs" "a.txt sub" "$(ls "$MNT/runs/out/outputs" | paste -sd' ')"
eq "find outputs -type f" "a.txt sub/b.txt" \
	"$(cd "$MNT/runs/out/outputs" && find . -type f | sed 's|^\./||' | sort | paste -sd' ')"
eq "outputs/a.txt" A "$(cat "$MNT/runs/out/outputs/a.txt")"
eq "outputs/sub/b.txt" B "$(cat "$MNT/runs/out/outputs/sub/b.txt")"
check "scratch files outside outputs/ are not user files" test ! -e "$MNT/runs/out/scratch.txt"
expect_err "outputs/ is read-only" "$EROFS" wr "$MNT/runs/out/outputs/c.txt" x
expect_err "an output file is read-only" "$EROFS" wr "$MNT/runs/out/outputs/a.txt" x

# ---- settings edited like files -----------------------------------------------------------
E=$MNT/runs/ed
mkdir "$E"
wr "$E/command" 'echo old version'
check "sed -i on command (rename-over)" sed -i 's/old/new/' "$E/command"
eq "cat command shows the new text" "echo new version" "$(cat "$E/command")"
eq "no editor temp file left" "" "$(ls "$E" | grep -E '^sed' || true)"
check "command is still a regular file" test -f "$E/command" -a ! -L "$E/command"
wr "$E/env" "A_LONG_VALUE=12345678901234567890"
wr "$E/env" "B=2"
eq "a shorter write replaces env (truncate)" "B=2" "$(cat "$E/env")"
echo "C=3" >> "$E/env"
eq "append (>>) to env" $'B=2\nC=3' "$(cat "$E/env")"
eq "size of env matches its content" 8 "$(stat -c %s "$E/env")"
wr "$E/resources" "memory = 2G"
: > "$E/resources"
eq "': >' empties resources" "" "$(cat "$E/resources")"
wr "$E/resources" "cpus = 1"
eq "resources after truncation" "cpus = 1" "$(cat "$E/resources")"
wr "$E/target" "nonexistent-target"
wr "$E/target" "local"
eq "a shorter write replaces target" local "$(cat "$E/target")"
printf 'X' | dd of="$E/target" bs=1 seek=1 conv=notrunc status=none
eq "a partial write at an offset" lXcal "$(cat "$E/target")"
wr "$E/target" local
cp "$E/command" "$T/cmd.bak"
cp "$T/cmd.bak" "$E/command"
eq "cp onto command" "echo new version" "$(cat "$E/command")"
wr "$E/command" 'echo "B=$B C=$C A=${A_LONG_VALUE-unset}"; echo new version'
check "submit the edited run" submit ed
check "ed Completed" wait_for "$E/status" Completed
eq "the run used the edited settings" $'B=2 C=3 A=unset\nnew version' "$(cat "$E/log")"

check "unmount exits 0" unmount_ws

# The cleanup of every test KILLs what runs left by the pids they recorded:
# pids are reused (CI's lanes run side by side), so a pid file of a run
# that ended, naming another process now, leaves that process alone.
setsid sleep 300 & DECOY=$!
check "a decoy in a group of its own" wait_until 10 \
	eval '[[ $(proc_field $DECOY 5) == "$DECOY" ]]'
P=$(ls "$STATE"/objects/*/pid | head -1)
read -r _ _ TICKS < "$P"
echo "$$ $DECOY $TICKS" > "$P"	# and this shell as the supervisor
stop_runs
check "the cleanup leaves alone a process a stale pid file names" \
	kill -0 "$DECOY"
kill "$DECOY"
done_testing
