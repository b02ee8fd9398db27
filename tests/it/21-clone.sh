#!/usr/bin/env bash
# `clone NEW` (issue 15 item 3): a Draft run NEW with a copy of a run's
# files (code/ with them) and settings, not its results; made inside the
# write, as the writer, who owns it.  Refusals (name taken, bad name, the
# placeholder `cat ctl` shows written back) leave nothing behind.  Several
# users (root daemon, allow_other): only the run's owner (or root) writes
# its ctl; the copy is made with the writer's rights, never the daemon's
# (a file they may not read fails the clone), set-id bits dropped,
# symlinks copied as links, never followed.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EEXIST="File exists"
EACCES="Permission denied"

mu_users mlfs_ua mlfs_ub
UA=mlfs_ua
UB=mlfs_ub
ROOTDIR="$T/rootdir"		# root-only: a decoy a symlink points at
mkdir -p "$ROOTDIR" && chmod 755 "$ROOTDIR"
decoy "$ROOTDIR/secret"

mount_or_bail "mount as root with allow_other" -o allow_other

R=$MNT/runs
st() { cat "$R/$1/status"; }
final() { wait_final "$R/$1" 60; }
clone() { wr "$R/$1/ctl" "clone $2"; }
# tree_sum DIR: path, type, mode and bytes of every user entry below DIR
# (control files left out: `wait` of a Draft blocks)
CTL_RE='^\./(command|target|env|resources|after|inputs|environment|ctl|status|exit_code|log|metrics|params|metrics\.svg|outputs|tasks|error|info\.json|wait)(/|$)'
tree_sum() {
	local list
	list=$(cd "$1" && find . -mindepth 1 | grep -vE "$CTL_RE" | sort)
	(cd "$1" && for p in $list; do
		stat -c '%n %F %a' "$p"
		[[ -f $p && ! -L $p ]] && md5sum < "$p"
	done)
}

# ---- a finished run: files and settings, not results ---------------------------
mkdir "$R/a"
mkdir "$R/a/code" "$R/a/code/data"
printf 'print("train")\n' > "$R/a/code/train.py"
printf 'x,y\n1,2\n' > "$R/a/code/data/d.csv"
head -c 300000 /dev/urandom > "$R/a/code/blob.bin"
chmod 640 "$R/a/code/data/d.csv"
printf 'notes beside code/\n' > "$R/a/notes.txt"
wr "$R/a/command" 'echo ran; echo out > outputs/o.txt; echo "loss 0.5 1" >> "$MLFS_METRICS"; exit 3'
wr "$R/a/env" 'LR=0.1'
wr "$R/a/resources" 'cpus = 1'
mkdir "$R/dep"
wr "$R/dep/command" 'true'
wr "$R/a/after" 'dep any'
wr "$R/dep/ctl" submit
wr "$R/a/ctl" submit
check "a ends" final a
eq "a Failed (exit 3)" Failed "$(st a)"
check "cat ctl of a Failed run offers clone" grep -qx 'clone <NEW>' "$R/a/ctl"
before=$(ev_count ' run b ')
a_err=$(cat "$R/a/error")
check "clone b of a Failed run accepted" clone a b
eq "b is a Draft" Draft "$(st b)"
eq "a is still Failed" Failed "$(st a)"
eq "a's error untouched" "$a_err" "$(cat "$R/a/error")"
eq "b's files and code/ are a's (names, modes, bytes)" \
	"$(tree_sum "$R/a")" "$(tree_sum "$R/b")"
for f in command env resources after inputs target; do
	eq "b's $f is a's" "$(cat "$R/a/$f")" "$(cat "$R/b/$f")"
done
eq "b has no exit_code" "" "$(cat "$R/b/exit_code")"
eq "b has no log" 0 "$(stat -c %s "$R/b/log")"
eq "b has no metrics" 0 "$(stat -c %s "$R/b/metrics")"
eq "b has no outputs" "" "$(ls -A "$R/b/outputs")"
eq "b's error is empty" "" "$(cat "$R/b/error")"
check "events: b created and cloned from a" \
	grep -q " run b cloned from run a$" "$MNT/events"
check "events got b's lines" test "$(ev_count ' run b ')" -gt "$before"
check "b's settings are editable (a Draft)" wr "$R/b/command" 'wc -c < blob.bin > outputs/n; cat train.py'
check "b's files are editable" sh -c "echo more >> '$R/b/code/data/d.csv'"
eq "a's file did not change with b's (a copy, not a link)" \
	$'x,y\n1,2' "$(cat "$R/a/code/data/d.csv")"
check "b submitted" wr "$R/b/ctl" submit
check "b ends" final b
eq "b Completed" Completed "$(st b)"
eq "b read its copied code/" 300000 "$(tr -d ' ' < "$R/b/outputs/n")"
eq "b's log is its own" 'print("train")' "$(cat "$R/b/log")"

# ---- other states -----------------------------------------------------------------
mkdir "$R/d"
printf 'hi\n' > "$R/d/f.txt"
wr "$R/d/command" 'cat f.txt'
check "clone of a Draft run" clone d d2
eq "d2 Draft" Draft "$(st d2)"
eq "d2 has d's file" hi "$(cat "$R/d2/f.txt")"
eq "d stays a Draft" Draft "$(st d)"
mkdir "$R/long"
wr "$R/long/command" "while [ ! -e $T/go ]; do sleep 0.05; done"
printf 'k\n' > "$R/long/k"
wr "$R/long/ctl" submit
wait_for "$R/long/status" Running 30 >/dev/null
check "clone of a Running run" clone long long2
eq "long2 Draft" Draft "$(st long2)"
eq "long2 has long's file" k "$(cat "$R/long2/k")"
eq "long still Running" Running "$(st long)"
touch "$T/go"
check "long ends" final long
check "clone of a clone" clone b b3
eq "b3's command is b's" "$(cat "$R/b/command")" "$(cat "$R/b3/command")"

# ---- refused inside the write, nothing left behind ------------------------------
ids=$(obj_ids)
expect_err "clone onto an existing run: EEXIST" "$EEXIST" clone a b
check "the taken name is explained in a's error" grep -q "run 'b' already exists" "$R/a/error"
check "and in events" grep -q " run a error: clone: run 'b' already exists" "$MNT/events"
eq "b untouched" Completed "$(st b)"
expect_err "a bad name: EINVAL" "$EINVAL" clone a 'x/y'
check "the bad name is explained" grep -q "^clone: name 'x/y'" "$R/a/error"
expect_err "no name: EINVAL" "$EINVAL" wr "$R/a/ctl" clone
check "usage in error" grep -q "usage: clone NEW" "$R/a/error"
expect_err "two names: EINVAL" "$EINVAL" wr "$R/a/ctl" "clone p q"
expect_err "a Failed run's cat ctl written back (a copy tool): EINVAL" \
	"$EINVAL" sh -c "cat '$R/a/ctl' > '$R/b3/ctl'"
check "the placeholder is explained" grep -q "'<NEW>' stands for a name" "$R/b3/error"
expect_err "a Draft run's cat ctl (submit, clone <NEW>) written back: EINVAL" \
	"$EINVAL" sh -c "cat '$R/d/ctl' > '$R/b3/ctl'"
eq "b3 still a Draft: the submit before the placeholder did nothing" \
	Draft "$(st b3)"
check "no run named NEW or <NEW>" test ! -e "$R/NEW" -a ! -e "$R/<NEW>"
eq "no object made by the refusals" "$ids" "$(obj_ids)"

# ---- several users ------------------------------------------------------------------
as "$UA" mkdir "$R/ua1"
as "$UA" sh -c "printf 'x\n' > '$R/ua1/x.txt'; printf 'echo hi\n' > '$R/ua1/command';
	printf '#!/bin/sh\n' > '$R/ua1/tool'; chmod 4755 '$R/ua1/tool';
	ln -s '$ROOTDIR/secret' '$R/ua1/link'"
check "the owner clones" as "$UA" sh -c "echo 'clone ua2' > '$R/ua1/ctl'"
eq "the clone is the owner's" "$UA $UA" "$(stat -c '%U %G' "$R/ua2")"
eq "its files are the owner's" "$UA" "$(stat -c %U "$R/ua2/x.txt")"
eq "the set-id bit is dropped in the copy" 755 "$(stat -c %a "$R/ua2/tool")"
eq "a symlink is copied as a link" "$ROOTDIR/secret" "$(readlink "$R/ua2/link")"
check "the link's target is not copied (root's decoy intact)" decoy_intact "$ROOTDIR/secret"
expect_err "another user cannot write the owner's ctl" "$EACCES" \
	as "$UB" sh -c "echo 'clone ub1' > '$R/ua1/ctl'"
check "no clone ub1" test ! -e "$R/ub1"
as "$UA" chmod 000 "$R/ua1/x.txt"
ids=$(obj_ids)
expect_err "a file the owner may not read fails the clone (copied with the writer's rights, not root's)" \
	"$EACCES" as "$UA" bash -c "echo 'clone ua3' > '$R/ua1/ctl'"
check "the unreadable file is named in error" grep -q "clone ua3: .*x.txt" "$R/ua1/error"
check "no half clone left" test ! -e "$R/ua3"
eq "no object left by the failed clone" "$ids" "$(obj_ids)"
as "$UA" chmod 600 "$R/ua1/x.txt"
check "root clones the user's run" clone ua1 root1
eq "root's clone is root's" "root root" "$(stat -c '%U %G' "$R/root1")"
eq "root's clone has the file" x "$(cat "$R/root1/x.txt")"

# ---- a clone survives a remount -------------------------------------------------------
check "unmount" unmount_ws
check "remount" remount_ws -o allow_other
eq "b3 after remount: Draft" Draft "$(st b3)"
eq "its file after remount" "$(cat "$R/a/code/train.py")" "$(cat "$R/b3/code/train.py")"

check "unmount exits 0" unmount_ws
done_testing
