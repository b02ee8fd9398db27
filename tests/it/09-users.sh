#!/usr/bin/env bash
# Several users: -o allow_other, owners recorded, others read but cannot
# write or command, runs execute as their creator when the daemon is root.
source "$(dirname "$0")/../lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "# needs root to create users; skipped"
	done_testing
	exit
fi
UA=mlfs_ta UB=mlfs_tb
for u in $UA $UB; do
	test_user "$u"
done
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups \
	env HOME="$(getent passwd "$u" | cut -d: -f6)" "$@"; }
chmod 755 "$T"

check "mount with allow_other" mount_ws -o allow_other
eq "runs/ is open to everyone, sticky" 1777 "$(stat -c %a "$MNT/runs")"
check "$UA makes a run" as $UA mkdir "$MNT/runs/a1"
eq "the run folder belongs to $UA" $UA "$(stat -c %U "$MNT/runs/a1")"
eq "its command file belongs to $UA" $UA "$(stat -c %U "$MNT/runs/a1/command")"
check "$UA copies a file in" as $UA sh -c "echo 'print(1)' > $MNT/runs/a1/a.py"
eq "the file belongs to $UA" $UA "$(stat -c %U "$MNT/runs/a1/a.py")"
check "$UA writes the command" as $UA sh -c \
	"echo 'id -un; echo \$HOME; id -G; test -r a.py && echo readable; touch outputs/o' > $MNT/runs/a1/command"
expect_err "$UB cannot write $UA's command" "Permission denied" \
	as $UB sh -c "echo 'rm -rf /' > $MNT/runs/a1/command"
expect_err "$UB cannot submit $UA's run" "Permission denied" \
	as $UB bash -c "echo submit > $MNT/runs/a1/ctl"
expect_err "$UB cannot add files to $UA's run" "Permission denied" \
	as $UB sh -c "echo x > $MNT/runs/a1/b.py"
eq "the command is unchanged" "id -un; echo \$HOME; id -G; test -r a.py && echo readable; touch outputs/o" \
	"$(cat "$MNT/runs/a1/command")"
check "$UA submits" as $UA sh -c "echo submit > $MNT/runs/a1/ctl"
check "the run completes" wait_for "$MNT/runs/a1/status" Completed
eq "it ran as $UA" $UA "$(head -1 "$MNT/runs/a1/log")"
eq "with $UA's HOME" "$(getent passwd $UA | cut -d: -f6)" "$(sed -n 2p "$MNT/runs/a1/log")"
eq "with $UA's groups" "$(id -G $UA)" "$(sed -n 3p "$MNT/runs/a1/log")"
eq "it could read its files" readable "$(sed -n 4p "$MNT/runs/a1/log")"
check "it wrote outputs" test -e "$MNT/runs/a1/outputs/o"
check "$UB can read $UA's status and log" as $UB cat "$MNT/runs/a1/status" "$MNT/runs/a1/log" >/dev/null
eq "info.json records the creator" "$(id -u $UA)" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uid"])' "$MNT/runs/a1/info.json")"
expect_err "$UB cannot remove $UA's run" "not permitted" as $UB rmdir "$MNT/runs/a1"
expect_err "$UB cannot rename $UA's run" "not permitted" as $UB mv "$MNT/runs/a1" "$MNT/runs/stolen"
check "$UB makes a run of its own" as $UB mkdir "$MNT/runs/b1"
check "$UB runs a long one" as $UB sh -c "echo 'sleep 3600' > $MNT/runs/b1/command && echo submit > $MNT/runs/b1/ctl"
check "b1 runs" wait_for "$MNT/runs/b1/status" Running
expect_err "$UA cannot cancel $UB's run" "Permission denied" \
	as $UA bash -c "echo cancel > $MNT/runs/b1/ctl"
check "$UB cancels its run" as $UB sh -c "echo cancel > $MNT/runs/b1/ctl"
check "b1 Canceled" wait_for "$MNT/runs/b1/status" Canceled
check "root's run runs as root" sh -c "mkdir $MNT/runs/r1 && echo 'id -u' > $MNT/runs/r1/command && echo submit > $MNT/runs/r1/ctl"
check "r1 completes" wait_for "$MNT/runs/r1/status" Completed
eq "r1 ran as root" 0 "$(cat "$MNT/runs/r1/log")"
check "unmount" unmount_ws

# A daemon that is not root runs only its own user's runs.  Debian gives
# everyone /dev/fuse and fusermount3; this machine may not: lend them for
# the test and put everything back.
FUSE_MODE=$(stat -c %a /dev/fuse)
cp -p /etc/fuse.conf "$T/fuse.conf.orig" 2>/dev/null || : > "$T/fuse.conf.none"
restore() {
	chmod "$FUSE_MODE" /dev/fuse
	if [[ -f $T/fuse.conf.orig ]]; then cp -p "$T/fuse.conf.orig" /etc/fuse.conf
	else rm -f /etc/fuse.conf; fi
	cleanup
}
trap restore EXIT
chmod 666 /dev/fuse
grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null || echo user_allow_other >> /etc/fuse.conf

S2=$T/state-a M2=$T/mnt-a
mkdir -p "$M2" "$S2" && chown $UA "$M2" "$S2"
as $UA "$MLFS" -f --state "$S2" -o allow_other "$M2" 2>>"$DAEMON_ERR" &
P2=$!
track_pid "$P2"
wait_until 10 grep -q " $M2 fuse" /proc/mounts
check "$UA mounts its own workspace (not root)" grep -q " $M2 fuse" /proc/mounts
check "$UA runs there" as $UA sh -c "mkdir $M2/runs/x && echo 'id -un' > $M2/runs/x/command && echo submit > $M2/runs/x/ctl"
check "x completes" wait_for "$M2/runs/x/status" Completed
eq "as $UA" $UA "$(cat "$M2/runs/x/log")"
check "$UB makes a run in $UA's workspace" as $UB sh -c "mkdir $M2/runs/y && echo 'id -un' > $M2/runs/y/command"
expect_err "a non-root daemon refuses another user's run" "Permission denied" \
	as $UB bash -c "echo submit > $M2/runs/y/ctl"
check "and says why" grep -q "runs only its own" "$M2/runs/y/error"
eq "y stays Draft" Draft "$(cat "$M2/runs/y/status")"
as $UA fusermount3 -u "$M2"
wait $P2
eq "$UA's daemon exits 0 on unmount" 0 $?
done_testing
