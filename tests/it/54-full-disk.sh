#!/usr/bin/env bash
# A full disk (issue 6, item 6): the state dir on a small tmpfs that a run
# fills.  Users' writes fail with ENOSPC and a sentence in error; the
# daemon keeps serving; what the workspace itself must write (a run's end,
# a refusal, a cancel, a removal) still gets written; a crash on the full
# disk loses nothing; once space is freed everything works again and the
# store passes PRAGMA integrity_check.
source "$(dirname "$0")/../lib.sh"

ENOSPC="No space left on device"
EINVAL="Invalid argument"
SMALL=$T/small
STATE=$SMALL/state

if [[ $(id -u) -ne 0 ]]; then
	echo "1..0 # SKIP mounting a tmpfs needs root"
	exit 0
fi
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=48m,mode=0755 mlfs-full-disk "$SMALL"; then
	echo "Bail out! cannot mount a tmpfs"
	exit 1
fi
trap 'cleanup_small' EXIT
cleanup_small() {
	cleanup_keep_t
	umount -l "$SMALL" 2>/dev/null
	rm -rf "$T"
}
# lib.sh's cleanup removes $T, which holds the tmpfs: unmount it after
cleanup_keep_t() { KEEP=1 cleanup; }

room_kib() { df -k --output=avail "$SMALL" | tail -n1 | tr -d ' '; }
newrun() {	# on target wide: the sleeper and the victim hold two slots
	mkdir "$MNT/runs/$1" && wr "$MNT/runs/$1/command" "$2" &&
		wr "$MNT/runs/$1/target" wide
}
one_sentence_like() {	# FILE ERE
	has_sentence "$1" && grep -qiE -- "$2" "$1"
}

head -c 1048576 /dev/urandom > "$T/data.bin"
head -c 3145728 /dev/urandom > "$T/more.bin"

mount_or_bail
echo "# room at start: $(room_kib) KiB"
mkdir "$MNT/targets/wide" && wr "$MNT/targets/wide/type" local &&
	wr "$MNT/targets/wide/config" "max_concurrent = 4" &&
	wr "$MNT/targets/wide/ctl" provision
check "a target with room for 4 runs" wait_for "$MNT/targets/wide/status" Succeeded 10

# ---- before the disk fills ------------------------------------------------------
check "a Draft run with a file" newrun keep 'cat data.bin > /dev/null'
check "its file copied in" cp "$T/data.bin" "$MNT/runs/keep/data.bin"
newrun sleeper "while [ ! -e $T/go-sleeper ]; do sleep 0.05; done"
newrun victim "while [ ! -e $T/go-victim ]; do sleep 0.05; done"	# ends by cancel only
newrun fill 'dd if=/dev/zero of="$MLFS_OUTPUTS/big" bs=1M 2>/dev/null'
wr "$MNT/runs/sleeper/ctl" submit
wr "$MNT/runs/victim/ctl" submit
check "sleeper Running" wait_for "$MNT/runs/sleeper/status" Running 10
check "victim Running" wait_for "$MNT/runs/victim/status" Running 10

# ---- a run fills the disk and fails, with the reason ------------------------------
wr "$MNT/runs/fill/ctl" submit
check "the filling run ends Failed" wait_for "$MNT/runs/fill/status" Failed 60
eq "its exit code is dd's (1)" 1 "$(cat "$MNT/runs/fill/exit_code")"
check "its error says the state dir's file system is full" \
	one_sentence_like "$MNT/runs/fill/error" "state dir .* is full"
echo "# room when full: $(room_kib) KiB; fill error: $(cat "$MNT/runs/fill/error")"
check "the disk is full (under 1 MiB left)" test "$(room_kib)" -lt 1024

# ---- users' writes on the full disk: ENOSPC, a sentence, nothing harmed ------------
expect_err "cp into a Draft run fails" "$ENOSPC" \
	cp "$T/more.bin" "$MNT/runs/keep/more.bin"
check "the failed write is explained in error" \
	one_sentence_like "$MNT/runs/keep/error" "no space left"
check "events has the refusal" \
	eval "grep -qE ' run keep error: .*no space left' '$MNT/events'"
check "the run's earlier file is intact" cmp -s "$T/data.bin" "$MNT/runs/keep/data.bin"
expect_err "a setting write fails" "$ENOSPC" wr "$MNT/runs/keep/command" 'echo changed'
eq "the setting is unchanged" 'cat data.bin > /dev/null' "$(cat "$MNT/runs/keep/command")"
expect_err "mkdir of a new run fails" "$ENOSPC" mkdir "$MNT/runs/new"
check "no half-made run is left" test ! -e "$MNT/runs/new"

# ---- the workspace's own writes go on ----------------------------------------------
expect_err "a bad ctl command is refused as usual" "$EINVAL" wr "$MNT/runs/keep/ctl" frobnicate
check "with its sentence in error" one_sentence_like "$MNT/runs/keep/error" "frobnicate"
eq "the sleeper is still Running (it waits for the test)" Running "$(cat "$MNT/runs/sleeper/status")"
touch "$T/go-sleeper"
check "a run ending on the full disk is Completed" \
	wait_for "$MNT/runs/sleeper/status" Completed 20
eq "with exit code 0" 0 "$(cat "$MNT/runs/sleeper/exit_code")"
check "cancel on the full disk" wr "$MNT/runs/victim/ctl" cancel
check "the canceled run is Canceled" wait_for "$MNT/runs/victim/status" Canceled 20
check "ls -l runs works" eval "ls -l '$MNT/runs' >/dev/null"
eq "every status readable" "Canceled Failed Draft Completed" \
	"$(for r in victim fill keep sleeper; do cat "$MNT/runs/$r/status"; done | paste -sd' ')"
check "find over the tree works" eval "find '$MNT' -type f | grep -q status"
check "info.json is valid JSON" json_ok "$MNT/runs/fill/info.json"
check "events tells the end of the filling run" \
	eval "grep -qE ' run fill Failed$' '$MNT/events'"
check "events: the store took its reserve" \
	eval "grep -qE ' workspace - no space left .* reserve' '$MNT/events'"

# ---- a crash on the full disk ------------------------------------------------------
crash_ws
remount_or_bail "remount over the dead mount, disk still full"
eq "after the crash: every run and its state" "Canceled Failed Draft Completed" \
	"$(for r in victim fill keep sleeper; do cat "$MNT/runs/$r/status"; done | paste -sd' ')"
check "the Draft run's file is intact" cmp -s "$T/data.bin" "$MNT/runs/keep/data.bin"
eq "the Draft run's setting is intact" 'cat data.bin > /dev/null' "$(cat "$MNT/runs/keep/command")"

# ---- space freed: everything works ------------------------------------------------
check "rm -r of the filling run frees its bytes" rm -r "$MNT/runs/fill"
check "the disk has room again" wait_until 10 eval '[[ $(room_kib) -gt 20480 ]]'
check "cp into the Draft run works" cp "$T/more.bin" "$MNT/runs/keep/more.bin"
check "the copy is whole" cmp -s "$T/more.bin" "$MNT/runs/keep/more.bin"
check "a setting write works" wr "$MNT/runs/keep/command" 'cmp data.bin data.bin'
check "mkdir works" newrun after 'echo after > "$MLFS_OUTPUTS/a.txt"'
wr "$MNT/runs/after/ctl" submit
check "a new run Completes" wait_for "$MNT/runs/after/status" Completed 20
eq "with its output" after "$(cat "$MNT/runs/after/outputs/a.txt" 2>/dev/null)"
wr "$MNT/runs/keep/ctl" submit
check "the kept run Completes" wait_for "$MNT/runs/keep/status" Completed 20
check "events: the reserve is made again (housekeeping, 5 s)" wait_until 15 \
	eval "grep -qE ' workspace - space is back' '$MNT/events'"

echo "# daemon on space: $(grep -E 'reserve|no space|space is back' "$DAEMON_ERR" |
	cut -d' ' -f3- | sort | uniq -c | paste -sd';')"
check "unmount exits 0" unmount_ws
eq "the store passes PRAGMA integrity_check" ok \
	"$(sqlite3 "$STATE/workspace.db" 'PRAGMA integrity_check' 2>&1)"
check "the store's reserve is there again (4 MiB)" \
	test "$(sqlite3 "$STATE/workspace.db" 'select max(length(pad)) from reserve')" = 4194304
done_testing
