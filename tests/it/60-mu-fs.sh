#!/usr/bin/env bash
# Several users, the FUSE layer (issue 11, classes 1, 5 and 11): a root
# daemon with -o allow_other works on users' files with the caller's
# credentials and by fd, never following a symlink in a backing folder.
#
# Every attack aims at root-only decoys: files in a root-only folder
# ($ROOTD, 0700) named like the user's own files, and a root-only file
# ($T/decoy).  The user swaps a folder (or a file) of the backing tree in
# the state dir for a symlink to them after the kernel has cached the
# user's own entry, then acts through the mount.  Whatever each attempt
# returns, the decoys must come out byte-identical, root's, unchanged in
# time, and the root folder must hold exactly what it held.
source "$(dirname "$0")/../lib.sh"

mu_users
UA=mlfs_ua UB=mlfs_ub UC=mlfs_uc G=mlfs_gs
getent group $G >/dev/null || groupadd $G
usermod -aG $G $UA && usermod -aG $G $UC

ROOTD=$T/rootdir
mkdir -m 700 "$ROOTD"
for f in secret g f; do decoy "$ROOTD/$f"; done
decoy "$T/decoy"
ln -s /root-only-link-target "$ROOTD/lnk"
ROOT_LS=$(ls -A "$ROOTD")
ROOT_TIMES=$(stat -c '%n %Y' "$ROOTD"/secret "$ROOTD"/g "$ROOTD"/f "$T/decoy")

# intact: every decoy, the root folder's entries, its owner and mode.
intact() {
	local f
	for f in "$ROOTD"/secret "$ROOTD"/g "$ROOTD"/f "$T/decoy"; do
		decoy_intact "$f" || return 1
	done
	[[ $(ls -A "$ROOTD") == "$ROOT_LS" &&
	   $(stat -c '%U %G %a' "$ROOTD") == "root root 700" &&
	   $(stat -c '%n %Y' "$ROOTD"/secret "$ROOTD"/g "$ROOTD"/f "$T/decoy") \
		== "$ROOT_TIMES" && $(readlink "$ROOTD/lnk") == /root-only-link-target ]]
}

# objdir MOUNTED-OBJECT-FOLDER: its folder in the state dir (the inode
# number of an object folder is its id << 8).
objdir() { echo "$STATE/objects/$(($(stat -c %i "$1") >> 8))"; }

# leaks OUTPUT: the output shows something of root's.
leaks() { [[ $1 == *"root secret"* || $1 == *root-only-link-target* ||
	     $1 == *secret.sum* ]]; }

ATTACKS=0
# attempt DESCRIPTION COMMAND...: run an attack as $UA (its result does not
# matter), then the decoys must be intact and nothing of root's shown.
attempt() {
	local d=$1 out
	shift
	ATTACKS=$((ATTACKS + 1))
	out=$(as $UA "$@" 2>&1)
	if intact && ! leaks "$out"; then
		ok "$d: no escape"
	else
		not_ok "$d: ESCAPE (${out//$'\n'/ })"
	fi
}

# folder_attacks DIR BACKING: DIR/sub (in the mount) is $UA's folder with
# files named like the decoys; BACKING/sub (its backing folder) becomes a
# symlink to the root folder; then every operation through DIR/sub.
folder_attacks() {
	local d=$1 b=$2 w=$3
	as $UA mkdir -p "$d/sub"
	as $UA sh -c "echo mine > '$d/sub/secret'; echo mine > '$d/sub/g'
		echo mine > '$d/sub/f'; ln -s mine-target '$d/sub/lnk'"
	as $UA ls -l "$d/sub" >/dev/null	# the kernel caches them as $UA's
	as $UA stat "$d/sub/secret" "$d/sub/g" "$d/sub/f" "$d/sub/lnk" >/dev/null
	check "$w: $UA swaps its backing folder for a symlink to a root folder" \
		as $UA sh -c "mv '$b/sub' '$b/sub.real' && ln -s '$ROOTD' '$b/sub'"
	attempt "$w: read" cat "$d/sub/secret"
	attempt "$w: readdir" ls -la "$d/sub"
	attempt "$w: readlink" readlink "$d/sub/lnk"
	attempt "$w: write" sh -c "echo pwned >> '$d/sub/secret'"
	attempt "$w: overwrite (O_TRUNC)" sh -c "echo pwned > '$d/sub/f'"
	attempt "$w: create" sh -c "echo pwned > '$d/sub/new'"
	attempt "$w: mkdir" mkdir "$d/sub/newdir"
	attempt "$w: symlink" ln -s /x "$d/sub/newlink"
	attempt "$w: chmod" chmod 666 "$d/sub/secret"
	attempt "$w: chown" chown $UA:$UA "$d/sub/secret"
	attempt "$w: chown -h of a symlink" chown -h $UA "$d/sub/lnk"
	attempt "$w: truncate" truncate -s 0 "$d/sub/secret"
	attempt "$w: utimes" touch -d 2001-01-01 "$d/sub/secret"
	attempt "$w: hard link out" ln "$d/sub/secret" "$d/stolen"
	attempt "$w: rename out" mv "$d/sub/g" "$d/moved"
	attempt "$w: rename in over" mv "$d/sub.real/f" "$d/sub/f"
	attempt "$w: unlink" rm -f "$d/sub/secret"
	attempt "$w: rmdir-style removal" rm -rf "$d/sub/lnk"
	as $UA sh -c "rm -f '$b/sub' && mv '$b/sub.real' '$b/sub'"
}

# file_attacks DIR BACKING: $UA's file DIR/ff, cached, becomes a symlink to
# the root-only $T/decoy in the backing folder.
file_attacks() {
	local d=$1 b=$2 w=$3
	as $UA sh -c "echo mine > '$d/ff'"
	as $UA stat "$d/ff" >/dev/null
	check "$w: $UA swaps its backing file for a symlink to a root file" \
		as $UA sh -c "rm '$b/ff' && ln -s '$T/decoy' '$b/ff'"
	attempt "$w: read" cat "$d/ff"
	attempt "$w: write" sh -c "echo pwned >> '$d/ff'"
	attempt "$w: chmod" chmod 666 "$d/ff"
	attempt "$w: chown" chown $UA "$d/ff"
	attempt "$w: truncate" truncate -s 0 "$d/ff"
	attempt "$w: utimes" touch -d 2001-01-01 "$d/ff"
	attempt "$w: hard link" ln "$d/ff" "$d/ff2"
	as $UA rm -f "$b/ff" "$b/ff2"
}

check "the decoys are in place" intact
mount_or_bail "mount as root with allow_other" -o allow_other

# ---- a Draft run: class 1 ---------------------------------------------------------
R=$MNT/runs/ra
check "$UA makes a run" as $UA mkdir "$R"
B=$(objdir "$R")/files
eq "its backing files/ folder belongs to $UA" "$UA $UA" "$(stat -c '%U %G' "$B")"
as $UA mkdir "$R/d"
check "$UA reaches its run's backing folder in the state dir" as $UA test -d "$B/d"
folder_attacks "$R/d" "$B/d" "run folder"
file_attacks "$R/d" "$B/d" "run file"
# the top of files/ itself (it is $UA's now)
as $UA sh -c "echo mine > '$R/secret'"
as $UA stat "$R/secret" >/dev/null
if as $UA sh -c "mv '$B' '$B.real' 2>/dev/null && ln -s '$ROOTD' '$B'"; then
	attempt "files/ itself a symlink: read" cat "$R/secret"
	attempt "files/ itself a symlink: write" sh -c "echo pwned >> '$R/secret'"
	attempt "files/ itself a symlink: create" sh -c "echo x > '$R/new'"
	attempt "files/ itself a symlink: unlink" rm -f "$R/secret"
	as $UA sh -c "rm -f '$B' && mv '$B.real' '$B'"
else
	ok "files/ cannot be replaced by $UA (objects/ID is root's)"
fi

# ---- hard links through the mount -------------------------------------------------
attempt "hard link of a root file into a run" ln "$T/decoy" "$R/hl"
check "no such link" test ! -e "$R/hl"

# ---- a deployment's folder --------------------------------------------------------
DP=$MNT/deployments/dp
check "$UA makes a deployment" as $UA mkdir "$DP"
DB=$(objdir "$DP")/files
eq "its backing files/ belongs to $UA" "$UA" "$(stat -c %U "$DB")"
as $UA mkdir "$DP/d"
folder_attacks "$DP/d" "$DB/d" "deployment folder"
file_attacks "$DP/d" "$DB/d" "deployment file"

# ---- outputs/ of a finished run ---------------------------------------------------
RO=$MNT/runs/ro
as $UA mkdir "$RO"
as $UA sh -c "echo 'mkdir -p outputs/od; echo mine > outputs/od/g; echo mine > outputs/f' > $RO/command"
as $UA sh -c "echo submit > $RO/ctl"
check "the run with outputs completes" wait_for "$RO/status" Completed 30
W=$(objdir "$RO")/work/outputs
as $UA cat "$RO/outputs/od/g" "$RO/outputs/f" >/dev/null
as $UA ls -l "$RO/outputs/od" >/dev/null
check "outputs: $UA swaps a folder and a file for symlinks" as $UA sh -c \
	"mv '$W/od' '$W/od.real' && ln -s '$ROOTD' '$W/od' &&
	 rm '$W/f' && ln -s '$T/decoy' '$W/f'"
attempt "outputs folder: read" cat "$RO/outputs/od/g"
attempt "outputs folder: readdir" ls -la "$RO/outputs/od"
attempt "outputs folder: unlink" rm -f "$RO/outputs/od/g"
attempt "outputs folder: rename out" mv "$RO/outputs/od/g" "$RO/outputs/x"
attempt "outputs file: read" cat "$RO/outputs/f"
attempt "outputs file: chmod" chmod 666 "$RO/outputs/f"
check "outputs: $UA swaps outputs/ itself" as $UA sh -c \
	"rm '$W/od' && mv '$W/od.real' '$W/od' && mv '$W' '$W.real' && ln -s '$ROOTD' '$W'"
attempt "outputs/ itself a symlink: read" cat "$RO/outputs/od/g"
attempt "outputs/ itself a symlink: readdir" ls -la "$RO/outputs"

# ---- a frozen run's files stay read-only (EROFS by policy) ------------------------
RF=$MNT/runs/rf
as $UA mkdir "$RF"
as $UA sh -c "echo data > $RF/a.txt; echo true > $RF/command; echo submit > $RF/ctl"
check "the frozen run completes" wait_for "$RF/status" Completed 30
expect_err "a frozen run's file cannot be written" "Read-only" \
	as $UA sh -c "echo x > $RF/a.txt"
expect_err "nor truncated" "Read-only" as $UA truncate -s 0 "$RF/a.txt"
expect_err "nor chmod'ed" "Read-only" as $UA chmod 600 "$RF/a.txt"
expect_err "nor a file created" "Read-only" as $UA sh -c "echo x > $RF/b.txt"
eq "the file is unchanged" data "$(cat "$RF/a.txt")"

# ---- the kernel's checks on backing files, owners and groups -----------------------
as $UA sh -c "echo private > $R/p && chmod 600 $R/p"
expect_err "$UB cannot read $UA's 0600 file" "Permission denied" as $UB cat "$R/p"
expect_err "$UB cannot write into $UA's folder" "Permission denied" \
	as $UB sh -c "echo x > $R/d/x"
as $UA sh -c "echo mine > $R/own && mkdir $R/owndir && ln -s t $R/ownlink"
eq "a file is created with the caller's owner and group" "$UA $UA" \
	"$(stat -c '%U %G' "$R/own")"
eq "so is a folder" "$UA $UA" "$(stat -c '%U %G' "$R/owndir")"
eq "and a symlink" "$UA $UA" "$(stat -c '%U %G' "$R/ownlink")"
eq "in the backing folder too" "$UA $UA" "$(stat -c '%U %G' "$B/own")"
as $UA sh -c "mkdir $R/shared && chgrp $G $R/shared && chmod 2770 $R/shared"
check "$UC, in group $G, writes into $UA's group folder" \
	as $UC sh -c "echo c > $R/shared/c"
eq "its file is $UC's, of the folder's group" "$UC $G" \
	"$(stat -c '%U %G' "$R/shared/c" 2>/dev/null)"
expect_err "$UB, not in $G, cannot" "Permission denied" \
	as $UB sh -c "echo b > $R/shared/b"
expect_err "$UA cannot chown its file to $UB" "not permitted" \
	as $UA chown $UB "$R/own"
as $UA chmod 755 "$R/d"

# ---- a rename/symlink race through the mount alone (20 s) ---------------------------
RR=$MNT/runs/rr
as $UA mkdir -p "$RR/top/x"
as $UA sh -c "echo mine > $RR/top/x/secret"
RB=$(objdir "$RR")/files/top
mkdir -m 777 "$T/race"
# For 20 s: flip swaps x for a symlink to the root folder and back, through
# the mount and in the backing folder; hit writes, chmods and truncates
# through the path meanwhile.  Each counts its rounds.
cat > "$T/race.py" <<'PY'
import os, sys, time
mode, mnt, back, rootd, out = sys.argv[1:]
end, n = time.monotonic() + 20, 0
def tryit(f, *a):
    try:
        f(*a)
    except OSError:
        pass
def flip(d):
    x, real = d + "/x", d + "/x.real"
    tryit(os.rename, x, real)
    tryit(os.symlink, rootd, x)
    tryit(os.unlink, x)
    tryit(os.rename, real, x)
def write(p, flags):
    fd = os.open(p, flags, 0o644)
    try:
        os.write(fd, b"pwned\n")
    finally:
        os.close(fd)
while time.monotonic() < end:
    if mode == "flip":
        flip(mnt)
        flip(back)
    else:
        x = mnt + "/x/"
        tryit(write, x + "secret", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        tryit(write, x + "f", os.O_WRONLY | os.O_APPEND)
        tryit(os.chmod, x + "secret", 0o666)
        tryit(os.truncate, x + "g", 0)
        tryit(os.truncate, x + "secret", 0)
    n += 1
open(out, "w").write(str(n))
PY
as $UA python3 "$T/race.py" flip "$RR/top" "$RB" "$ROOTD" "$T/race/flips" &
FLIP=$!
as $UA python3 "$T/race.py" hit "$RR/top" "$RB" "$ROOTD" "$T/race/hits" &
HIT=$!
wait $FLIP $HIT
echo "# race: $(cat "$T/race/flips") flip rounds, $(cat "$T/race/hits") write/chmod/truncate rounds, 20 s"
ATTACKS=$((ATTACKS + 1))
check "race: the decoys are intact" intact
echo "# attacks: $ATTACKS attempts"
check "unmount" unmount_ws

# ---- a state dir from before: files/ folders root's -----------------------------------
# (older versions made them root's; the next mount by a root daemon gives
# each to its object's creator, once)
for f in "$STATE"/objects/*/files; do chown root:root "$f"; done
rm -f "$STATE/owners-1"
mount_or_bail "mount a state dir whose files/ folders are root's" -o allow_other
check "$UA creates a file in their run again" \
	as $UA sh -c "echo again > '$MNT/runs/ra/again.txt'"
eq "every files/ folder is its object's creator's again" "" \
	"$(for f in "$STATE"/objects/*/files; do
		[[ $(stat -c %u "$f") == 0 ]] && echo "$f"; done | head -3)"
check "the marker says it is done" test -f "$STATE/owners-1"
check "unmount" unmount_ws

# ---- the 1 MiB floor on a full disk ---------------------------------------------------
SMALL=$T/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=8m,mode=0755 mlfs-mu-fs "$SMALL"; then
	small_cleanup() {
		local keep=${KEEP:-}
		KEEP=1 cleanup
		umount -l "$SMALL" 2>/dev/null
		[[ -n $keep ]] || rm -rf "$T"
	}
	trap small_cleanup EXIT
	STATE=$SMALL/state
	room_kib() { df -k --output=avail "$SMALL" | tail -1 | tr -d ' '; }
	mount_or_bail "mount on a small file system" -o allow_other
	as $UA mkdir "$MNT/runs/full"
	head -c $(( ($(room_kib) - 1536) * 1024 )) /dev/zero > "$SMALL/filler"
	echo "# room before the write: $(room_kib) KiB"
	expect_err "a user's 2 MiB write with 1.5 MiB left fails" \
		"No space left" as $UA dd if=/dev/zero of="$MNT/runs/full/big" \
		bs=64k count=32 status=none
	echo "# room after: $(room_kib) KiB"
	check "the last 1 MiB is left to the workspace" \
		test "$(room_kib)" -ge 1000
	check "the error says so" grep -q "no space left" "$MNT/runs/full/error"
	check "the workspace still records a setting" \
		sh -c "rm -f '$SMALL/filler' && echo true > '$MNT/runs/full/command'"
	check "unmount the small one" unmount_ws
else
	not_ok "cannot mount a tmpfs for the full-disk check"
fi
done_testing
