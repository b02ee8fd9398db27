#!/usr/bin/env bash
# The image cache of a Slurm target is pruned (issue 17;
# targets/slurm_image_cache.c), on the test cluster of scripts/slurm-cluster.sh
# (jobs as root, root's podman on the nodes): an environment rebuilt to a
# new image -> its old file goes once the run still Running in it ends (the
# Running run keeps it); image_cache_mb: above it the least recently used
# file goes (not the oldest staged), and with 0 every file but those of
# unfinished runs; each removal is an events line; links, folders, a
# foreign file, a file with two links and other names in the cache are
# never followed nor removed, nor is a cache a user's link in a workdir
# points to; an unfinished save's file goes after an hour; deprovision
# empties the cache; bad values of image_cache_mb: EINVAL with a sentence
# (Draft and live).
source "$(dirname "$0")/../lib.sh"

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }

cache_cleanup() {
	local i
	for i in ${IMGS:-}; do podman rmi -f "$i" >/dev/null 2>&1; done
	return 0
}

# rootfs NAME: a busybox image with a marker and 3 MiB of its own bytes
# (so that two files exceed a bound in MiB that one fits)
rootfs() {
	local r=$T/rootfs-$1 c
	mkdir -p "$r"/{bin,tmp,etc,proc,sys,dev,run,root,work}
	cp "$BB" "$r/bin/busybox"
	for c in $("$BB" --list); do
		[[ $c == busybox ]] || ln -sf busybox "$r/bin/$c"
	done
	chmod 1777 "$r/tmp"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'root:x:0:' >"$r/etc/group"
	echo "image $1 $$" >"$r/etc/mlfs-marker"
	head -c 3145728 /dev/urandom >"$r/pad"
	tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$T/$1.tar" .
	rm -rf "$r"
	chmod 644 "$T/$1.tar"
}
rootfs a
rootfs a2
rootfs b
if ! podman_runs "$T/a.tar"; then
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi
mu_users mlfs_ua
slurm_start cache_cleanup
mount_or_bail "mount" -o allow_other

# build_env NAME TAR: environment NAME built from TAR; prints its image id
build_env() {
	local e=$MNT/environments/$1
	[[ -d $e ]] || mkdir "$e"
	wr "$e/config" "rootfs = $T/$2.tar"
	wr "$e/ctl" build
	[[ $(env_settled "$1" 120) == Ready ]] && cat "$e/image"
}
IMG_A=$(build_env a a)
IMG_B=$(build_env b b)
IMGS="$IMG_A $IMG_B"
check "two environments built" test -n "$IMG_A" -a -n "$IMG_B"

# target NAME [LINE...]: a slurm target of the test cluster, provisioned
# (its object id in $T/id-NAME)
target() {
	local d=$MNT/targets/$1
	new_obj mkdir "$d" >"$T/id-$1" && wr "$d/type" slurm
	printf '%s\n' "url = $SLURM_URL" "user = $SLURM_USER" \
		"token_file = $SLURM_TOKEN_FILE" "partition = $SLURM_PARTITION" \
		"poll_seconds = 0.5" "${@:2}" >"$d/config"
	wr "$d/ctl" provision
	wait_until 30 sh -c "[ \"\$(cat '$d/status')\" != Creating ]"
	chmod go+x "$d"
}
target sl
eq "a slurm target" Succeeded "$(cat "$MNT/targets/sl/status")"
CACHE=$STATE/objects/$(cat "$T/id-sl")/images
JU=$(id -u "$SLURM_USER")
# tarof IMAGE: its file in the cache (the job user's)
tarof() { echo "$CACHE/${1#sha256:}-$JU.tar"; }

# mk NAME ENV COMMAND [TARGET]: a run of root in environment ENV, submitted
# (its object id in $T/id-NAME)
mk() {
	new_obj mkdir "$MNT/runs/$1" >"$T/id-$1" && wr "$MNT/runs/$1/command" "$3" &&
		wr "$MNT/runs/$1/target" "${4:-sl}" && wr "$MNT/runs/$1/environment" "$2" &&
		wr "$MNT/runs/$1/ctl" submit
}
st() { cat "$MNT/runs/$1/status"; }
completes() { wait_final "$MNT/runs/$1" 120 && [[ $(st "$1") == Completed ]]; }
# a run held until go is made in its working copy (release NAME)
HOLD='while [ ! -e go ]; do sleep 0.2; done; echo released'
release() { touch "$STATE/objects/$(cat "$T/id-$1")/work/go"; }
# removed NAME: events says the cache file NAME was removed (count)
removed() { ev_count "^[^ ]+ target sl image cache: removed $1 \([0-9.]+ MB\): "; }
gone() { (($(removed "$1") >= 1)) && [[ ! -e $CACHE/$1 ]]; }
# an orphan: a file of the daemon's named for an image nobody uses; its
# removal says a pass ran
ORPHAN=$(printf 'e%.0s' {1..64})-$JU.tar
plant_orphan() { echo orphan >"$CACHE/$ORPHAN"; }
N_ORPHAN=0
pass_ran() { (($(removed "$ORPHAN") > N_ORPHAN)) && [[ ! -e $CACHE/$ORPHAN ]]; }
next_pass() { N_ORPHAN=$(removed "$ORPHAN"); plant_orphan; }

# bound V: image_cache_mb = V in sl's config (not applied yet)
bound() {
	local c
	c=$(grep -v '^image_cache_mb' "$MNT/targets/sl/config")
	printf '%s\nimage_cache_mb = %s\n' "$c" "$1" >"$MNT/targets/sl/config"
}

# ---- a rebuilt environment: the old file goes once no run uses it --------
mk hold a "$HOLD"
check "a run in environment a is Running" wait_for "$MNT/runs/hold/status" Running 120
check "... its image is staged in the target's cache" test -f "$(tarof "$IMG_A")"
IMG_A2=$(build_env a a2)
IMGS="$IMGS $IMG_A2"
check "environment a rebuilt to a new image" test -n "$IMG_A2" -a "$IMG_A2" != "$IMG_A"
next_pass
mk a2 a 'cat /etc/mlfs-marker'
check "a run in the new image completes" completes a2
check "... in the new image" grep -q "^image a2 " "$MNT/runs/a2/log"
check "a pass ran after it (the orphan file it removed)" wait_until 60 pass_ran
check "... the file of the image the Running run uses is kept" test -f "$(tarof "$IMG_A")"
check "... the new image's file is there" test -f "$(tarof "$IMG_A2")"
eq "... no events line for it" 0 "$(removed "${IMG_A#sha256:}-$JU.tar")"
release hold
check "the held run completes" completes hold
check "... then the old image's file goes" wait_until 60 gone "${IMG_A#sha256:}-$JU.tar"
check "... said in events, with its size and why" \
	grep -qE "target sl image cache: removed ${IMG_A#sha256:}-$JU.tar \([0-9.]+ MB\): its image is no environment's and no unfinished run's$" \
	"$MNT/events"
check "... the current image's file stays" test -f "$(tarof "$IMG_A2")"

# ---- what is not the daemon's own file is never followed nor removed ---
echo victim >"$T/victim"
echo victim2 >"$T/victim2"
H=$(printf 'f%.0s' {1..64})
D=$(printf 'd%.0s' {1..64})
C=$(printf 'c%.0s' {1..64})
B=$(printf 'b%.0s' {1..64})
ln -s "$T/victim" "$CACHE/$H-$JU.tar"
echo foreign >"$CACHE/$D-$JU.tar"
chown mlfs_ua "$CACHE/$D-$JU.tar"
ln "$T/victim2" "$CACHE/$C-$JU.tar"
mkdir "$CACHE/$B-$JU.tar"
echo notes >"$CACHE/notes.txt"
echo x >"$CACHE/$H-$JU.tar.old"
# what a daemon killed during a podman save leaves: gone after an hour
PART_OLD=.$C-$JU.tar.7.part PART_NEW=.$D-$JU.tar.7.part
echo x >"$CACHE/$PART_OLD"
touch -d '2 hours ago' "$CACHE/$PART_OLD"
echo x >"$CACHE/$PART_NEW"
ln -s "$T/victim" "$CACHE/.$B-$JU.tar.8.part"
touch -h -d '2 hours ago' "$CACHE/.$B-$JU.tar.8.part"
next_pass
mk p1 a true
check "a run ends" completes p1
check "a pass ran" wait_until 60 pass_ran
check "a planted link named as a cache file: kept" test -L "$CACHE/$H-$JU.tar"
eq "... what it points to: untouched" victim "$(cat "$T/victim")"
eq "a foreign file (mlfs_ua's) named as a cache file: kept" foreign "$(cat "$CACHE/$D-$JU.tar" 2>/dev/null)"
check "a file with a second link: kept" test -f "$CACHE/$C-$JU.tar" -a -f "$T/victim2"
check "a folder named as a cache file: kept" test -d "$CACHE/$B-$JU.tar"
check "other names: kept" test -f "$CACHE/notes.txt" -a -f "$CACHE/$H-$JU.tar.old"
eq "no events line for any of them" 0 "$(ev_count "image cache: removed ($H|$D|$C|$B)-")"
check "an unfinished save's file untouched for 2 hours: removed" test ! -e "$CACHE/$PART_OLD"
check "... said in events" grep -q "target sl image cache: removed $PART_OLD: a podman save left unfinished" "$MNT/events"
check "... a recent one (a save under way): kept" test -f "$CACHE/$PART_NEW"
check "... a link named as one: kept" test -L "$CACHE/.$B-$JU.tar.8.part"
rm -rf "${CACHE:?}/$H-$JU.tar" "${CACHE:?}/$D-$JU.tar" "${CACHE:?}/$C-$JU.tar" \
	"${CACHE:?}/$B-$JU.tar" "$CACHE/notes.txt" "$CACHE/$H-$JU.tar.old" \
	"${CACHE:?}/$PART_NEW" "${CACHE:?}/.$B-$JU.tar.8.part"

# ---- image_cache_mb: the least recently used file goes first ----------------
mk b1 b true
check "a run in environment b completes (its image staged)" completes b1
mk a3 a true
check "a run in environment a completes (its file used again, after b's)" completes a3
SA=$(stat -c %s "$(tarof "$IMG_A2")")
SB=$(stat -c %s "$(tarof "$IMG_B")")
MB=$(((SA > SB ? SA : SB) / 1048576 + 1))
check "a bound of $MB MiB holds one of the files, not both ($SA + $SB bytes)" \
	test $((SA + SB)) -gt $((MB * 1048576))
check "the file of b was staged before a's was last used" \
	test "$(stat -c %Y "$(tarof "$IMG_B")")" -le "$(stat -c %Y "$(tarof "$IMG_A2")")"
# a's file was staged first: the oldest made, not the least recently used
bound "$MB"
check "image_cache_mb = $MB, live: provision" wr "$MNT/targets/sl/ctl" provision
check "... the target stays Succeeded" wait_for "$MNT/targets/sl/status" Succeeded 30
mk a4 a true
check "a run ends" completes a4
check "the least recently used file (b's) goes" wait_until 60 gone "${IMG_B#sha256:}-$JU.tar"
check "... said in events: the bound" \
	grep -qE "target sl image cache: removed ${IMG_B#sha256:}-$JU.tar \([0-9.]+ MB\): the least recently used, the cache holding [0-9.]+ MB, over image_cache_mb = $MB$" \
	"$MNT/events"
check "... the more recently used one (a's, staged first) stays" test -f "$(tarof "$IMG_A2")"

# ---- image_cache_mb = 0: only unfinished runs' files stay -----------------
bound 0
check "image_cache_mb = 0: provision" wr "$MNT/targets/sl/ctl" provision
mk hold2 b "$HOLD"
check "a run in environment b Running" wait_for "$MNT/runs/hold2/status" Running 120
check "... b's image staged again" test -f "$(tarof "$IMG_B")"
mk a5 a true
check "a run in environment a ends" completes a5
check "... its file goes at once (over the bound, no unfinished run)" \
	wait_until 60 gone "${IMG_A2#sha256:}-$JU.tar"
check "... the Running run's file stays, over the bound" test -f "$(tarof "$IMG_B")"
release hold2
check "the held run completes" completes hold2
check "... then its file goes" wait_until 60 eval '(($(removed "${IMG_B#sha256:}-$JU.tar") >= 2)) && [[ ! -e $(tarof "$IMG_B") ]]'

# ---- bad values: EINVAL with a sentence, nothing changed -------------------
for v in -1 lots 16777217 1.5; do
	bound $v
	expect_err "image_cache_mb = $v, live: EINVAL" "Invalid argument" \
		wr "$MNT/targets/sl/ctl" provision
	check "... the sentence" grep -q "^image_cache_mb (the bound of the image cache, in MiB) must be an integer from 0 to 16777216, not '$v'" \
		"$MNT/targets/sl/error"
	check "... one sentence" has_sentence "$MNT/targets/sl/error"
done
eq "... the target stays Succeeded" Succeeded "$(cat "$MNT/targets/sl/status")"
bound 0
mkdir "$MNT/targets/bad" && wr "$MNT/targets/bad/type" slurm
printf '%s\n' "url = $SLURM_URL" "image_cache_mb = 10G" >"$MNT/targets/bad/config"
expect_err "image_cache_mb = 10G on a Draft target: EINVAL" "Invalid argument" \
	wr "$MNT/targets/bad/ctl" provision
check "... the sentence" grep -q "image_cache_mb (the bound of the image cache, in MiB) must be an integer from 0 to 16777216, not '10G'" \
	"$MNT/targets/bad/error"
eq "... still Draft" Draft "$(cat "$MNT/targets/bad/status")"

# ---- a workdir: a user's link in place of the cache's folder ---------------
# the daemon must not prune through it: here it names another folder of
# root's that looks like a cache (another workspace's, say)
WD=$T/wd
mkdir -p "$WD" "$T/other/images"
chmod 1777 "$WD"
chmod 711 "$T/other" "$T/other/images"
OTHER=$T/other/images/$(printf 'a%.0s' {1..64})-$JU.tar
echo "another cache's file" >"$OTHER"
# the workspace's folder in a workdir: mlfs-<FNV-1a 64 (short basis) of
# the state dir, low 32 bits> (sl_cache_top_name)
MH=$(python3 -c 'import sys
h = 1469598103934665603
for c in sys.argv[1].encode():
    h = ((h ^ c) * 1099511628211) & 0xffffffffffffffff
print("mlfs-%08x" % (h & 0xffffffff))' "$STATE")
as mlfs_ua ln -s "$T/other" "$WD/$MH"
target wds "workdir = $WD" "image_cache_mb = 0"
check "a target whose workdir holds a user's link as its cache: a pass says it" \
	wait_until 120 eval '(($(ev_count "target wds image cache: $WD/$MH is not the daemon.s own folder \(a link, or others may write it\): nothing there is removed") == 1))'
eq "... the file where the link points: kept" "another cache's file" "$(cat "$OTHER" 2>/dev/null)"

# ---- deprovision empties the cache ------------------------------------------
bound 10240
wr "$MNT/targets/sl/ctl" provision
mk a7 a true
check "with image_cache_mb = 10240 a run's file stays after it" completes a7
check "... there" test -f "$(tarof "$IMG_A2")"
wr "$MNT/targets/sl/ctl" deprovision
check "deprovision: Draft" wait_for "$MNT/targets/sl/status" Draft 60
check "... the cache's files are gone" test ! -e "$(tarof "$IMG_A2")"
eq "... said in events" 1 "$(ev_count "target sl image cache: removed ${IMG_A2#sha256:}-$JU.tar \([0-9.]+ MB\): the target is deprovisioned$")"

done_testing
