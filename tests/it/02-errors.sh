#!/usr/bin/env bash
# Refusals: every rule of DESIGN.md "Rules for control files" gives the
# right errno, one sentence in the object's error file and an error line
# in events; removal, names, frozen files, generated files.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EBUSY="Device or resource busy"
ENOENT="No such file or directory"
EROFS="Read-only file system"
EACCES="Permission denied"
EEXIST="File exists"
EPERM="Operation not permitted"

# refused DESC ERRNO_TEXT OBJDIR "KIND NAME" ERROR_ERE COMMAND...:
# COMMAND fails with ERRNO_TEXT, OBJDIR/error then holds one sentence
# matching ERROR_ERE (case-insensitive), and events got a new
# "KIND NAME error: " line.
refused() {
	local d=$1 want=$2 dir=$3 who=$4 pat=$5 before after
	shift 5
	before=$(ev_count "^[^ ]+ $who error: ")
	expect_err "$d: fails with '$want'" "$want" "$@"
	if has_sentence "$dir/error" && grep -qiE -- "$pat" "$dir/error"; then
		ok "$d: one sentence in error"
	else
		not_ok "$d: one sentence in error matching /$pat/ (got '$(cat "$dir/error" 2>&1)')"
	fi
	if grep -qE '^([A-Za-z_]+): \1:' "$dir/error"; then
		not_ok "$d: error sentence is garbled ('$(cat "$dir/error")')"
	fi
	after=$(ev_count "^[^ ]+ $who error: ")
	if ((after > before)); then
		ok "$d: an error line in events"
	else
		not_ok "$d: an error line in events (no new '$who error:' line)"
	fi
}

mount_or_bail

# ---- ctl commands on a Draft run ------------------------------------------
R=$MNT/runs/e1
check "mkdir runs/e1" mkdir "$R"
eq "cat ctl of a Draft run" $'submit\nclone <NEW>' "$(cat "$R/ctl")"
refused "unknown ctl command" "$EINVAL" "$R" "run e1" "frobnicate" \
	wr "$R/ctl" frobnicate
refused "submit with an argument" "$EINVAL" "$R" "run e1" "submit" \
	wr "$R/ctl" "submit now"
refused "cancel a Draft run" "$EBUSY" "$R" "run e1" "draft" \
	wr "$R/ctl" cancel
eq "still Draft after refused commands" Draft "$(cat "$R/status")"

# missing command
refused "submit without a command" "$EINVAL" "$R" "run e1" "command" \
	wr "$R/ctl" submit
wr "$R/command" "   "
refused "submit with a blank command" "$EINVAL" "$R" "run e1" "command" \
	wr "$R/ctl" submit
eq "still Draft after missing command" Draft "$(cat "$R/status")"
wr "$R/command" 'echo e1 ran; sleep 3600'

# unknown target (a run of its own)
U=$MNT/runs/ut
mkdir "$U"
wr "$U/command" true
wr "$U/target" nosuch
refused "submit to an unknown target" "$ENOENT" "$U" "run ut" "nosuch" \
	wr "$U/ctl" submit
eq "unknown target: run stays Draft" Draft "$(cat "$U/status")"

# unprovisioned Draft target
check "mkdir targets/dt" mkdir "$MNT/targets/dt"
eq "new target is Draft" Draft "$(cat "$MNT/targets/dt/status")"
D=$MNT/runs/dtr
mkdir "$D"
wr "$D/command" true
wr "$D/target" dt
refused "submit to a Draft target" "$EBUSY" "$D" "run dtr" "dt" \
	wr "$D/ctl" submit
eq "Draft target: run stays Draft" Draft "$(cat "$D/status")"
refused "unknown ctl command on a target" "$EINVAL" "$MNT/targets/dt" \
	"target dt" "frob" wr "$MNT/targets/dt/ctl" frob
eq "cat ctl of a Draft target" "provision" "$(cat "$MNT/targets/dt/ctl")"

# bad env lines and resources, each in a fresh run (no overwrite needed):
# refused by the write when the line alone is wrong, else by submit
i=0
# (a line without '=' is not repeated: it may be a secret pasted alone)
for bad in "NOEQUALS|line 1 has no '='" "1BAD=x|1BAD" "BAD KEY=x|BAD KEY" \
	"MLFS_RUN=mine|MLFS_RUN"; do
	i=$((i + 1))
	B=$MNT/runs/env$i
	mkdir "$B"
	wr "$B/command" true
	refused "env line '${bad%|*}'" "$EINVAL" "$B" "run env$i" "${bad#*|}" \
		bash -c "printf '%s\n' '${bad%|*}' > '$B/env' && echo submit > '$B/ctl'"
	eq "env line '${bad%|*}': run stays Draft" Draft "$(cat "$B/status")"
done
i=0
for bad in "memory = lots|lots" "nodes = 2|node" "cpus = 0|cpus" \
	"gpus = -1|gpus" "time = forever|forever" "colour = red|colour" \
	"gpus = 1|gpu" "cpus|cpus"; do
	i=$((i + 1))
	B=$MNT/runs/res$i
	mkdir "$B"
	wr "$B/command" true
	refused "resources '${bad%|*}'" "$EINVAL" "$B" "run res$i" "${bad#*|}" \
		bash -c "printf '%s\n' '${bad%|*}' > '$B/resources' && echo submit > '$B/ctl'"
	eq "resources '${bad%|*}': run stays Draft" Draft "$(cat "$B/status")"
done

# a refused `>` loses nothing: the truncate before the write is undone
# (fs/trunc.c); `>>` of a bad line, a truncate alone and a good write work
K=$MNT/runs/keep
mkdir "$K"
wr "$K/resources" "cpus = 2"
expect_err "> of a bad resources line" "$EINVAL" wr "$K/resources" "cpus = zz"
eq "the old resources are kept" "cpus = 2" "$(cat "$K/resources")"
check "the refusal is in error" grep -q "cpus must be" "$K/error"
expect_err ">> of a bad resources line" "$EINVAL" \
	bash -c "echo 'gpus = many' >> '$K/resources'"
eq "the old resources are kept after >>" "cpus = 2" "$(cat "$K/resources")"
wr "$K/env" "A=1"
expect_err "> of a bad env line" "$EINVAL" wr "$K/env" "1BAD=x"
eq "the old env is kept" "A=1" "$(cat "$K/env")"
check ": > resources empties it" eval ": > '$K/resources'"
eq "resources is empty" "" "$(cat "$K/resources")"
wr "$K/resources" "memory = 1G"
eq "a good write replaces it" "memory = 1G" "$(cat "$K/resources")"
expect_err "a bad write by another process" "$EINVAL" \
	bash -c "exec 3<>'$K/resources'; printf 'cpus = x\n' >&3"
eq "in place, refused: unchanged" "memory = 1G" "$(cat "$K/resources")"
rmdir "$K"

# a successful command after a refusal clears error (ws.c run_submit)
check "error is set before the good submit" has_sentence "$R/error"
check "submit after refusals" wr "$R/ctl" submit
eq "error is empty after a successful submit" "" "$(cat "$R/error")"
check "e1 Running" wait_for "$R/status" Running

# ---- submit twice, cat ctl while active ------------------------------------
refused "submit twice" "$EBUSY" "$R" "run e1" "running|queued|starting|draft" \
	wr "$R/ctl" submit
eq "cat ctl of a Running run" $'cancel\nclone <NEW>' "$(cat "$R/ctl")"

# ---- frozen files after submit ---------------------------------------------
# (e1 had no user file; make one in e2 and submit it)
R2=$MNT/runs/e2
mkdir "$R2"
echo "data v1" > "$R2/data.txt"
wr "$R2/command" 'sleep 3600'
# e1 still runs: e2 goes to a target with room for both on any machine (the
# local target takes one run per CPU, and a machine may have only one)
mkdir "$MNT/targets/wide" && wr "$MNT/targets/wide/type" local &&
	wr "$MNT/targets/wide/config" "max_concurrent = 4" &&
	wr "$MNT/targets/wide/ctl" provision
check "a target with room for 4 runs" wait_for "$MNT/targets/wide/status" Succeeded 10
wr "$R2/target" wide
wr "$R2/ctl" submit
check "e2 Running" wait_for "$R2/status" Running
refused "write command after submit" "$EROFS" "$R2" "run e2" "." \
	wr "$R2/command" 'echo changed'
expect_err "append to command after submit" "$EROFS" \
	eval "echo more >> '$R2/command'"
expect_err "truncate command after submit" "$EROFS" eval ": > '$R2/command'"
expect_err "write env after submit" "$EROFS" wr "$R2/env" "A=1"
expect_err "write resources after submit" "$EROFS" wr "$R2/resources" "cpus = 2"
expect_err "write target after submit" "$EROFS" wr "$R2/target" dt
eq "command unchanged" "sleep 3600" "$(cat "$R2/command")"
refused "write a user file after submit" "$EROFS" "$R2" "run e2" "." \
	wr "$R2/data.txt" "data v2"
expect_err "append to a user file after submit" "$EROFS" \
	eval "echo more >> '$R2/data.txt'"
eq "user file unchanged" "data v1" "$(cat "$R2/data.txt")"
expect_err "create a new file after submit" "$EROFS" wr "$R2/new.txt" x
check "the new file does not exist" test ! -e "$R2/new.txt"
expect_err "mkdir in a submitted run" "$EROFS" mkdir "$R2/sub"
expect_err "rm a user file of a running run" "$EROFS" rm "$R2/data.txt"
expect_err "mv a user file of a running run" "$EROFS" mv "$R2/data.txt" "$R2/d2.txt"

# ---- generated files are not writable --------------------------------------
for f in status log exit_code info.json; do
	before=$(cat "$R2/$f")
	expect_err "write $f" "$EACCES" wr "$R2/$f" junk
	[[ $f == info.json ]] ||
		eq "$f unchanged after a refused write" "$before" "$(cat "$R2/$f")"
done
expect_err "write error" "$EACCES" wr "$R2/error" junk
expect_err "write metrics" "$EACCES" wr "$R2/metrics" "loss 1"
expect_err "write events" "$EACCES" wr "$MNT/events" junk
expect_err "write README" "$EACCES" wr "$MNT/README" junk

# ---- removal of a running run ------------------------------------------------
refused "rmdir a running run" "$EBUSY" "$R2" "run e2" "running|cancel" \
	rmdir "$R2"
expect_err "rm -r a running run" "$EBUSY" rm -r "$R2"
eq "run keeps going after refused removal" Running "$(cat "$R2/status")"
check "user file survives a refused rm -r" test -f "$R2/data.txt"
eq "command survives a refused rm -r" "sleep 3600" "$(cat "$R2/command")"

# ---- removal of a target with active runs -----------------------------------
TG=$MNT/targets/t1
mkdir "$TG"
wr "$TG/type" local
printf 'max_concurrent = 2\n' > "$TG/config"
wr "$TG/ctl" provision
check "t1 Succeeded" wait_for "$TG/status" Succeeded
R3=$MNT/runs/e3
mkdir "$R3"
wr "$R3/command" 'sleep 3600'
wr "$R3/target" t1
wr "$R3/ctl" submit
check "e3 on t1 Running" wait_for "$R3/status" Running
refused "rmdir a target with an active run" "$EBUSY" "$TG" "target t1" \
	"active|run" rmdir "$TG"
expect_err "rm -r a target with an active run" "$EBUSY" rm -r "$TG"
eq "t1 still Succeeded" Succeeded "$(cat "$TG/status")"
eq "t1 config survives a refused rm -r" "max_concurrent = 2" "$(cat "$TG/config")"
eq "t1 type survives a refused rm -r" "local" "$(cat "$TG/type")"
eq "e3 still Running" Running "$(cat "$R3/status")"
expect_err "rmdir targets/local" "$EPERM" rmdir "$MNT/targets/local"

# ---- cancel: then cat ctl in final states -----------------------------------
for r in e1 e2 e3; do wr "$MNT/runs/$r/ctl" cancel; done
check "e1 Canceled" wait_for "$R/status" Canceled 5
check "e2 Canceled" wait_for "$R2/status" Canceled 5
check "e3 Canceled" wait_for "$R3/status" Canceled 5
eq "cat ctl of a Canceled run" "clone <NEW>" "$(cat "$R/ctl")"
refused "cancel a Canceled run" "$EBUSY" "$R" "run e1" "canceled" \
	wr "$R/ctl" cancel
refused "submit a Canceled run" "$EBUSY" "$R" "run e1" "canceled" \
	wr "$R/ctl" submit

R4=$MNT/runs/e4
mkdir "$R4"
wr "$R4/command" 'exit 3'
wr "$R4/ctl" submit
check "e4 Failed" wait_for "$R4/status" Failed
eq "cat ctl of a Failed run" "clone <NEW>" "$(cat "$R4/ctl")"

R5=$MNT/runs/e5
mkdir "$R5"
echo keep > "$R5/data.txt"
wr "$R5/command" 'echo five'
wr "$R5/ctl" submit
check "e5 Completed" wait_for "$R5/status" Completed
eq "cat ctl of a Completed run (issue 5: register)" $'register NAME [PATH]\nclone <NEW>' "$(cat "$R5/ctl")"
refused "submit a Completed run" "$EBUSY" "$R5" "run e5" "completed" \
	wr "$R5/ctl" submit

# Queued: a max_concurrent = 1 target with one long run
TQ=$MNT/targets/tq
mkdir "$TQ"
wr "$TQ/type" local
wr "$TQ/config" "max_concurrent = 1"
wr "$TQ/ctl" provision
check "tq Succeeded" wait_for "$TQ/status" Succeeded
for r in q1 q2; do
	mkdir "$MNT/runs/$r"
	wr "$MNT/runs/$r/command" 'sleep 3600'
	wr "$MNT/runs/$r/target" tq
	wr "$MNT/runs/$r/ctl" submit
done
check "q1 Running" wait_for "$MNT/runs/q1/status" Running
eq "q2 Queued" Queued "$(cat "$MNT/runs/q2/status")"
eq "cat ctl of a Queued run" $'cancel\nclone <NEW>' "$(cat "$MNT/runs/q2/ctl")"
refused "rmdir a Queued run" "$EBUSY" "$MNT/runs/q2" "run q2" "queued|cancel" \
	rmdir "$MNT/runs/q2"
refused "deprovision a target with active runs" "$EBUSY" "$TQ" "target tq" \
	"active|run" wr "$TQ/ctl" deprovision
wr "$MNT/runs/q2/ctl" cancel
wr "$MNT/runs/q1/ctl" cancel
check "q2 Canceled" wait_for "$MNT/runs/q2/status" Canceled 5
check "q1 Canceled" wait_for "$MNT/runs/q1/status" Canceled 5

# ---- removal of finished objects ---------------------------------------------
before=$(obj_ids)
mkdir "$MNT/runs/gone"
after=$(obj_ids)
GID=$(comm -13 <(echo "$before") <(echo "$after"))
check "mkdir made exactly one object folder" test -n "$GID" -a "$(echo "$GID" | wc -l)" = 1
G=$MNT/runs/gone
mkdir "$G/sub"
echo payload > "$G/sub/file.txt"
wr "$G/command" 'echo out > outputs/o.txt; echo logged'
wr "$G/ctl" submit
check "gone Completed" wait_for "$G/status" Completed
check "its bytes exist under the state dir" test -d "$STATE/objects/$GID"
check "rm -r a finished run" rm -r "$G"
check "runs/gone is gone" test ! -e "$G"
check "ls runs does not list it" eval "! ls '$MNT/runs' | grep -qx gone"
check "objects/$GID is gone from the state dir" test ! -e "$STATE/objects/$GID"
check "and is not left in the trash" wait_until 5 test ! -e "$STATE/trash/$GID"
check "mkdir the same name again" mkdir "$G"
eq "the new one is a fresh Draft" Draft "$(cat "$G/status")"
eq "with no old command" "" "$(cat "$G/command")"
check "and no old files" test ! -e "$G/sub"
eq "and an empty log" "" "$(cat "$G/log")"

# rmdir (not rm -r) of a Draft run with files, and of a finished run
mkdir "$MNT/runs/d1"
echo x > "$MNT/runs/d1/x.txt"
check "rmdir a Draft run with files" rmdir "$MNT/runs/d1"
check "rmdir a finished run with files" rmdir "$R5"
check "rmdir a Draft target" rmdir "$MNT/targets/dt"

# ---- names -------------------------------------------------------------------
n63=$(printf 'a%.0s' {1..63})
n64=$(printf 'b%.0s' {1..64})
check "mkdir a 63-char name" mkdir "$MNT/runs/$n63"
eq "63-char run is Draft" Draft "$(cat "$MNT/runs/$n63/status")"
expect_err "mkdir a 64-char name" "$EINVAL" mkdir "$MNT/runs/$n64"
for bad in "-lead" ".hidden" "_under" "..." "has space" " lead" "trail " \
	"tab$(printf '\t')x" "a:b" "a*b" "a\\b" "caf$(printf '\xc3\xa9')" \
	$'new\nline' "a+b" "a@b" "a=b"; do
	expect_err "mkdir invalid name '${bad//$'\n'/\\n}'" "$EINVAL" \
		mkdir -- "$MNT/runs/$bad"
done
expect_err "mkdir invalid target name" "$EINVAL" mkdir -- "$MNT/targets/-t"
expect_err "mkdir invalid model name" "$EINVAL" mkdir -- "$MNT/models/.m"
check "valid odd name a.b_c-d" mkdir "$MNT/runs/A.b_c-9"
expect_err "mkdir an existing run" "$EEXIST" mkdir "$MNT/runs/e1"
expect_err "mkdir an existing target" "$EEXIST" mkdir "$MNT/targets/local"
expect_err "mkdir a control-file name inside a run" "$EEXIST" mkdir "$MNT/runs/e4/status"
expect_err "mkdir at the top level" "$EPERM" mkdir "$MNT/other"

# ---- several commands in one write -------------------------------------------
M1=$MNT/runs/m1
mkdir "$M1"
wr "$M1/command" 'sleep 3600'
check "'submit\\ncancel' in one write" wr1 "$M1/ctl" $'submit\ncancel\n'
check "m1 ends Canceled" wait_for "$M1/status" Canceled 5
M2=$MNT/runs/m2
mkdir "$M2"
wr "$M2/command" 'true'
refused "'bogus\\nsubmit' in one write" "$EINVAL" "$M2" "run m2" "bogus" \
	wr1 "$M2/ctl" $'bogus\nsubmit\n'
eq "m2 not submitted (first command failed)" Draft "$(cat "$M2/status")"
check "blank and comment lines around submit, no trailing newline" \
	wr1 "$M2/ctl" $'\n# go\n  submit  '
check "m2 Completed" wait_for "$M2/status" Completed
eq "m2 error empty" "" "$(cat "$M2/error")"

# ---- a good provision after a refused one clears the target's error ---------
mkdir "$MNT/targets/t2"
refused "provision without type" "$EINVAL" "$MNT/targets/t2" "target t2" \
	"type" wr "$MNT/targets/t2/ctl" provision
wr "$MNT/targets/t2/type" local
check "provision after the refusal" wr "$MNT/targets/t2/ctl" provision
check "t2 Succeeded" wait_for "$MNT/targets/t2/status" Succeeded
eq "t2 error empty after a successful provision" "" "$(cat "$MNT/targets/t2/error")"

check "unmount exits 0" unmount_ws
done_testing
