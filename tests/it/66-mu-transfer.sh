#!/usr/bin/env bash
# Several users, a root daemon and an ssh target: what a run's files and
# outputs carry between this machine and the host.  Attacks: a user's
# symlink to a root-only file (and to a root-only folder) among a run's
# files, sent with each transfer (tar, the old name scp, rsync), must
# arrive on the host as the same symlink, never as the bytes the daemon
# could read; a host that sends back links, set-id files and odd names
# gives the run's user nothing more than their own files.
source "$(dirname "$0")/../lib.sh"

UA=mlfs_ua UC=mlfs_rh	# $UC: made by ssh-host.sh, a login it can use
mu_users $UA
SSHD=$T/sshd
REMOTE=$T/remote	# the host's folders (the ssh login is $UC)

ssh_cleanup() {
	kill_recorded "$REMOTE"/*/*/pid
	sshd_cut
	"$ROOT/scripts/ssh-host.sh" stop "$T/sshd-root" >/dev/null 2>&1
}
trap 'ssh_cleanup; cleanup' EXIT

mkdir -p "$T/root/dir" && chmod 700 "$T/root" "$T/root/dir"
decoy "$T/root/secret"
decoy "$T/root/dir/inner"
SECRET=$(cat "$T/root/secret")
if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD" $UC >/dev/null; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
HA=$(getent passwd $UA | cut -d: -f6)
install -o $UA -g $UA -m 600 "$SSH_IDENTITY" "$HA/id_host"
mkdir -p "$REMOTE" && chown $UC: "$REMOTE"
mount_or_bail "mount with allow_other" -o allow_other

# target MODE: $UA's ssh target whose transfer is MODE, Succeeded.
target() {
	local t=$MNT/targets/t$1
	as $UA mkdir "$t" && as $UA sh -c "echo ssh > $t/type" &&
		as $UA sh -c "printf 'host = %s\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\ntransfer = %s\n' \
			$SSH_HOST $SSH_PORT $UC $HA/id_host $REMOTE/$1 $1 \
			> $t/config" &&
		as $UA sh -c "echo provision > $t/ctl" &&
		wait_for "$t/status" Succeeded 30
}

# The run's command on the host (as $UC): what it could read through the
# links it was given, and what the copy made of them.
CMD='for f in s d data sub/deep; do
	if [ -L "$f" ]; then echo "$f link $(readlink "$f")"; elif [ -d "$f" ]; then echo "$f dir"; else echo "$f file"; fi
done > outputs/kinds
cat s > outputs/got 2>/dev/null; ls d > outputs/ls 2>/dev/null
cat data sub/deep > outputs/data
stat -c %y data > outputs/mtime'

for mode in tar scp rsync; do
	check "$mode: $UA provisions an ssh target with transfer = $mode" target $mode
	R=$MNT/runs/x$mode
	as $UA mkdir "$R"
	as $UA sh -c "cd $R && ln -s $T/root/secret s && ln -s $T/root/dir d &&
		echo hello > data && touch -d '2001-02-03 04:05:06.123456789' data &&
		mkdir sub && echo deep > sub/deep &&
		echo t$mode > target"
	printf '%s\n' "$CMD" | as $UA sh -c "cat > $R/command"
	as $UA sh -c "echo submit > $R/ctl"
	check "$mode: the run completes" wait_for "$R/status" Completed 60 ||
		cat "$R/error" "$R/log" >&2
	eq "$mode: links arrive as links, the rest as it was" \
		"s link $T/root/secret
d link $T/root/dir
data file
sub/deep file" "$(cat "$R/outputs/kinds" 2>/dev/null)"
	check "$mode: the host never got the root-only file's bytes" \
		bash -c "! grep -rqF '$SECRET' '$REMOTE/$mode' '$R/outputs/'"
	check "$mode: … nor the root-only folder's list" \
		bash -c "! grep -q inner '$R/outputs/ls'"
	eq "$mode: files arrive" "hello
deep" "$(cat "$R/outputs/data" 2>/dev/null)"
	eq "$mode: with their mtimes, to the ns" \
		"$(TZ=UTC0 date -d '2001-02-03 04:05:06.123456789' '+%F %T.%N %z')" \
		"$(TZ=UTC0 cat "$R/outputs/mtime" 2>/dev/null)"
	check "$mode: the decoys are intact" \
		decoy_intact "$T/root/secret"
done

# ---- read with the run's user's rights ---------------------------------------
# files/ in the state dir is the user's own (a root daemon works there as
# them), so the daemon sends a copy it made with their rights: a file
# they cannot read fails the run as on the local target, in both modes.
for mode in tar rsync; do
	R=$MNT/runs/u$mode
	as $UA mkdir "$R"
	as $UA sh -c "echo t$mode > $R/target; echo true > $R/command;
		echo x > $R/closed; chmod 000 $R/closed"
	as $UA sh -c "echo submit > $R/ctl"
	check "$mode: a run with a file its user cannot read fails" \
		wait_for "$R/status" Failed 60
	check "… saying which file" \
		grep -q "cannot copy the run's files at closed: Permission denied" "$R/error"
done

# ---- what comes back ------------------------------------------------------
# The host's outputs may hold anything its login can make: links to this
# machine's root files, set-id files, names with newlines.  They arrive as
# the run's user's, links as links, no set-id bit.
BACK='mkdir -p outputs/sub
ln -s /etc/shadow outputs/sh
ln -s / outputs/sub/up
printf x > outputs/suid && chmod 4755 outputs/suid
printf y > "outputs/new
line"'
for mode in tar rsync; do
	R=$MNT/runs/b$mode
	as $UA mkdir "$R"
	as $UA sh -c "echo t$mode > $R/target"
	printf '%s\n' "$BACK" | as $UA sh -c "cat > $R/command"
	as $UA sh -c "echo submit > $R/ctl"
	check "$mode: a run whose outputs hold links completes" \
		wait_for "$R/status" Completed 60 || cat "$R/error" >&2
	eq "$mode: a link comes back as the link" /etc/shadow \
		"$(readlink "$R/outputs/sh")"
	eq "$mode: … in a folder too" / "$(readlink "$R/outputs/sub/up")"
	eq "$mode: a set-id file comes back without the bit, the user's" \
		"755 $UA" "$(stat -c '%a %U' "$R/outputs/suid" 2>/dev/null)"
	eq "$mode: a name with a newline comes back" y \
		"$(cat "$R/outputs/new
line" 2>/dev/null)"
	eq "$mode: no file of the outputs is root's" "" \
		"$(find "$R/outputs" -user root 2>&1)"
done
check "/etc/shadow untouched" test "$(stat -c %U /etc/shadow)" = root

# A host whose login is root can make device nodes among the outputs: they
# never come back (a root daemon would make them, then give them to the
# run's user).  rsync skips them; tar cannot make them (no CAP_MKNOD) and
# says so.
if "$ROOT/scripts/ssh-host.sh" start "$T/sshd-root" >/dev/null; then
	RH=$(source "$T/sshd-root/host.env"; echo "$SSH_PORT $SSH_IDENTITY")
	install -o $UA -g $UA -m 600 "${RH#* }" "$HA/id_root"
	for mode in tar rsync; do
		t=$MNT/targets/r$mode R=$MNT/runs/d$mode
		as $UA mkdir "$t"
		as $UA sh -c "echo ssh > $t/type; printf 'host = 127.0.0.1\nport = %s\nuser = root\nidentity_file = %s\nworkdir = %s\ntransfer = %s\n' \
			${RH%% *} $HA/id_root $REMOTE/root-$mode $mode > $t/config;
			echo provision > $t/ctl"
		check "$mode: a target whose login is root" wait_for "$t/status" Succeeded 30
		as $UA mkdir "$R"
		as $UA sh -c "echo r$mode > $R/target; printf '%s\n' 'mknod outputs/mem c 1 3 && mknod outputs/blk b 7 0 && echo ok > outputs/ok' > $R/command; echo submit > $R/ctl"
		check "$mode: its run completes" wait_for "$R/status" Completed 60 ||
			cat "$R/error" >&2
		check "$mode: the host made the device nodes" \
			test -c "$REMOTE/root-$mode/$(ls "$REMOTE/root-$mode" | grep -v '^\.' | head -1)/work/outputs/mem"
		eq "$mode: none came back" "" \
			"$(find "$R/outputs" \( -type c -o -type b \) 2>&1)"
	done
	check "rsync: the rest came back" test -f "$MNT/runs/drsync/outputs/ok"
	check "tar: error says the copy was refused" \
		grep -q "outputs/ could not be copied back: .*Cannot mknod" "$MNT/runs/dtar/error" ||
		sed 's/^/# error: /' "$MNT/runs/dtar/error" >&2
else
	not_ok "cannot start an sshd whose login is root"
fi

# ---- refusals --------------------------------------------------------------
TB=$MNT/targets/tbad
as $UA mkdir "$TB"
as $UA sh -c "echo ssh > $TB/type"
as $UA bash -c "printf 'host = h\ntransfer = ftp\n' > $TB/config"
expect_err "transfer = ftp is refused" "Invalid argument" \
	as $UA bash -c "echo provision > $TB/ctl"
check "… with a sentence naming the choices" \
	grep -q "transfer must be auto, rsync or tar, not 'ftp'" "$TB/error"
eq "… and the target stays Draft" Draft "$(cat "$TB/status")"

done_testing
