#!/usr/bin/env bash
# Environments (issue 17): environments/E built by podman (runc) on the
# environments' worker -- a rootfs tarball imported (the base image, made
# from busybox-static and cached under /var/cache/mlfs-test), a
# Containerfile built FROM it by another user, the second build of an
# unchanged folder cached, rebuild, a failing build (error = the end of
# the log), cancel, bad config lines, rmdir while Building, the daemon
# killed during a build; runs in an environment on the local target (the
# image's files, the creator's uid, env lines, MLFS_METRICS, the exact
# image in info.json, refusals: no such environment, not Ready, root's
# run; rmdir refused while a run uses it, cancel removes the container,
# kill -9 of the daemon adopts the run); and the attacks: RUN steps are
# root only inside a user namespace, a rootfs the creator cannot read, a
# symlink in the folder to a root-only file, a RUN or a run reading the
# host's files; at the end every image an environment made has left
# podman's store (superseded ones at once, the rest with their environment).
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EBUSY="Device or resource busy"

# The images this file saw environments make: each must leave podman's
# store once its environment is removed (asserted at the end); on a
# failure the trap removes them.
IMAGES=()
seen() { IMAGES+=("$(cat "$MNT/environments/$1/image")"); }
images_cleanup() {
	local i
	for i in "${IMAGES[@]}"; do
		"$PODMAN" rmi "$i" >/dev/null 2>&1
	done
	cleanup_deep
}
trap images_cleanup EXIT

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }

# ---- the base image: a busybox rootfs tarball, cached by busybox's version --
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }
BBV=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo local)
BBV=${BBV//[^A-Za-z0-9.+-]/_}	# podman import refuses a name with ":"
CACHE=/var/cache/mlfs-test
BASE_TAR=$CACHE/busybox-rootfs-$BBV.tar
if [[ ! -s $BASE_TAR ]]; then
	mkdir -p "$CACHE"
	busybox_tree "$T/rootfs"
	mkdir -p -m 1777 "$T/rootfs/var/tmp"
	tar_tree "$T/rootfs" "$BASE_TAR"
fi
chmod 644 "$BASE_TAR"

# Can podman run a container here at all?  Probed once, with the image.
if ! podman_runs "$BASE_TAR"; then
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi

mu_users
mount_or_bail "mount with allow_other" -o allow_other

settled() { env_settled "$@"; }	# tests/lib.sh
# the containers of this workspace's runs: mlfs-<hash of the state dir>-ID
CT_PREFIX=$(ct_prefix)

# ---- the kind --------------------------------------------------------------
B=$MNT/environments/base
check "mkdir environments/base" mkdir "$B"
eq "a new environment is a Draft" Draft "$(cat "$B/status")"
eq "its files" "config ctl error image info.json log status" \
	"$(ls "$B" | tr '\n' ' ' | sed 's/ $//')"
eq "ctl lists build and rebuild" "build rebuild" "$(tr '\n' ' ' < "$B/ctl" | sed 's/ $//')"
expect_err "cancel of a Draft: EBUSY" "$EBUSY" wr "$B/ctl" cancel
expect_err "an unknown command: EINVAL" "$EINVAL" wr "$B/ctl" frobnicate
check "error names the commands" grep -q "build, rebuild, cancel" "$B/error"
wr "$B/ctl" build
eq "an empty environment fails" Failed "$(settled base)"
check "error says what to copy or write" grep -q "Containerfile" "$B/error"

# ---- config ------------------------------------------------------------------
expect_err "an unknown key: EINVAL" "$EINVAL" wr "$B/config" "base = x"
expect_err "image and rootfs: EINVAL" "$EINVAL" \
	wr "$B/config" $'image = a\nrootfs = /b'
expect_err "an image name that is an option: EINVAL" "$EINVAL" \
	wr "$B/config" "image = --privileged"
expect_err "a relative rootfs: EINVAL" "$EINVAL" wr "$B/config" "rootfs = x.tar"
check "error says it must be absolute" grep -q "absolute path" "$B/error"
check "rootfs = the busybox tarball" wr "$B/config" "rootfs = $BASE_TAR"
wr "$B/ctl" build
eq "the rootfs is imported: Ready" Ready "$(settled base)"
BASE_ID=$(cat "$B/image")
seen base
check "image is a sha256 id" grep -qE '^sha256:[0-9a-f]{64}$' "$B/image"
check "info.json is JSON with the image" \
	grep -q "\"image\":.*$BASE_ID" "$B/info.json"
check "info.json parses" json_ok "$B/info.json"
check "events has the Ready" grep -q "environment base Ready" "$MNT/events"

# ---- a Containerfile, another user's -----------------------------------------
E=$MNT/environments/py
check "mlfs_ua makes an environment" as mlfs_ua mkdir "$E"
# COPY into a folder the build made (WORKDIR): podman 4.3 cannot chmod
# a folder of a base image through the kernel's id-mapped mount (EOVERFLOW)
as mlfs_ua sh -c "printf 'FROM $BASE_ID\nRUN cat /proc/self/uid_map\nWORKDIR /app\nCOPY hello.txt ./\n' > '$E/Containerfile'"
as mlfs_ua sh -c "echo hello > '$E/hello.txt'"
as mlfs_ua sh -c "echo build > '$E/ctl'"
eq "the Containerfile is built" Ready "$(settled py 120)"
check "the log has podman's steps" grep -q "STEP 2/4" "$E/log"
# RUN steps are root inside a user namespace: its root is not the host's
check "RUN's root is an unprivileged id outside" \
	grep -qE '^ +0 +[1-9][0-9]+ +65536' "$E/log"
PY_ID=$(cat "$E/image")
seen py
t0=$(now_ms)
as mlfs_ua sh -c "echo build > '$E/ctl'"
eq "an unchanged folder builds again" Ready "$(settled py)"
echo "# second build of an unchanged folder: $(($(now_ms) - t0)) ms"
check "... from the cache (the log says so)" grep -q "unchanged since its last build" "$E/log"
eq "... the same image" "$PY_ID" "$(cat "$E/image")"
as mlfs_ua sh -c "echo hello2 > '$E/hello.txt'"
as mlfs_ua sh -c "echo build > '$E/ctl'"
eq "a changed file: built again" Ready "$(settled py 120)"
check "... by podman (its steps in the log)" grep -q "STEP 4/4" "$E/log"
check "... a new image" test "$PY_ID" != "$(cat "$E/image")"
seen py
as mlfs_ua sh -c "echo rebuild > '$E/ctl'"
eq "rebuild" Ready "$(settled py 120)"
check "rebuild does not take the cache" grep -q "STEP 4/4" "$E/log"
seen py
check "the superseded image leaves podman's store, py still there" \
	wait_until 60 eval "! '$PODMAN' image exists '$PY_ID'"
expect_err "mlfs_ub cannot build mlfs_ua's environment" "Permission denied" \
	as mlfs_ub sh -c "echo build > '$E/ctl'"

# ---- a failing build, cancel --------------------------------------------------
F=$MNT/environments/bad
mkdir "$F"
printf 'FROM %s\nRUN echo the-last-words && false\n' "$BASE_ID" > "$F/Containerfile"
wr "$F/ctl" build
eq "a failing RUN: Failed" Failed "$(settled bad 120)"
check "error has the end of the log" grep -q "the build failed (podman exit" "$F/error"
check "error is one line" has_sentence "$F/error"
printf 'FROM %s\nRUN sleep 300\n' "$BASE_ID" > "$F/Containerfile"
wr "$F/ctl" build
check "a long build is Building" wait_for "$F/status" Building 30
expect_err "rmdir while Building: EBUSY" "$EBUSY" rmdir "$F"
expect_err "build while Building: EBUSY" "$EBUSY" wr "$F/ctl" build
expect_err "its files are read-only while Building" "Read-only" \
	sh -c "echo x > '$F/Containerfile'"
check "cancel" wr "$F/ctl" cancel
eq "canceled: Failed" Failed "$(settled bad 60)"
check "error says canceled" grep -q "canceled" "$F/error"
check "no podman build of it is left" wait_until 30 sh -c \
	"! ps -eo args | grep -v grep | grep -q 'objects/[0-9]*/build/ctx'"

# ---- the daemon killed during a build: the build starts again ------------------
printf 'FROM %s\nRUN sleep 2 && echo slept\n' "$BASE_ID" > "$F/Containerfile"
wr "$F/ctl" build
check "Building" wait_until 30 grep -q "STEP 2/2" "$F/log"
crash_ws
remount_or_bail remount -o allow_other
eq "after the remount the build completes" Ready "$(settled bad 120)"
check "... built anew (its log)" grep -q "slept" "$F/log"
seen bad
check "rmdir a Ready environment" rmdir "$F"

# ---- attacks -------------------------------------------------------------------
# A rootfs the creator cannot read is not imported with the daemon's rights.
decoy "$T/secret.tar"
S=$MNT/environments/steal
as mlfs_ua mkdir "$S"
as mlfs_ua sh -c "echo 'rootfs = $T/secret.tar' > '$S/config'"
as mlfs_ua sh -c "echo build > '$S/ctl'"
eq "a rootfs the creator cannot read: Failed" Failed "$(settled steal)"
check "error says the creator cannot read it" grep -q "cannot read" "$S/error"
check "the decoy is intact" decoy_intact "$T/secret.tar"
# A symlink in the folder to a root-only file is copied as a link, never
# followed: the image never holds the file.
as mlfs_ua sh -c ": > '$S/config'; ln -s '$T/secret.tar' '$S/shadow'"
as mlfs_ua sh -c "printf 'FROM $BASE_ID\nCOPY shadow /tmp/s\nRUN cat /tmp/s; ls -l /tmp\n' > '$S/Containerfile'"
as mlfs_ua sh -c "echo build > '$S/ctl'"
settled steal 120 >/dev/null
check "the build's log has no byte of the root-only file" \
	sh -c "! grep -q 'root secret' '$S/log'"
# RUN cannot reach the host's files: nothing of the host is mounted in.
as mlfs_ua sh -c "rm -f '$S/shadow'; printf 'FROM $BASE_ID\nRUN cat /host$T/secret.tar /proc/1/root$T/secret.tar\n' > '$S/Containerfile'"
as mlfs_ua sh -c "echo build > '$S/ctl'"
eq "RUN cat of host files fails" Failed "$(settled steal 120)"
check "... and shows none of them" sh -c "! grep -q 'root secret' '$S/log'"

# ---- runs in an environment (the local target) ------------------------------------
R=$MNT/runs/inpy
as mlfs_ua mkdir "$R"
expect_err "environment names no environment: EINVAL" "$EINVAL" \
	as mlfs_ua bash -c "echo nope > '$R/environment'"
check "error says so" grep -q "there is no environment 'nope'" "$R/error"
as mlfs_ua sh -c "echo py > '$R/environment'; echo X=42 > '$R/env'"
as mlfs_ua sh -c "cat > '$R/command'" <<'EOF'
id -u > outputs/uid; cat /app/hello.txt > outputs/hello
echo "$MLFS_RUN $X $PWD" > outputs/env; echo "loss 0.5 1" >> "$MLFS_METRICS"
readlink /proc/self/ns/net > outputs/netns
EOF
as mlfs_ua sh -c "echo submit > '$R/ctl'"
check "the run in an environment completes" wait_for "$R/status" Completed 120
eq "it ran in the image (a file the build copied)" hello2 "$(cat "$R/outputs/hello")"
eq "as its creator" "$(id -u mlfs_ua)" "$(cat "$R/outputs/uid")"
eq "its outputs are the creator's" mlfs_ua "$(stat -c %U "$R/outputs/hello")"
eq "env lines, MLFS_RUN and the working copy" "inpy 42 /work" "$(cat "$R/outputs/env")"
check "MLFS_METRICS reaches metrics" grep -q "^loss 0.5 1" "$R/metrics"
eq "the host's network, as without a container" "$(readlink /proc/self/ns/net)" \
	"$(cat "$R/outputs/netns")"
check "info.json has the exact image" grep -q "\"image\":.*$(cat "$E/image")" "$R/info.json"
R=$MNT/runs/draftenv
as mlfs_ua mkdir "$R" "$MNT/environments/notyet"
as mlfs_ua sh -c "echo notyet > '$R/environment'; echo true > '$R/command'"
expect_err "submit with an environment not Ready: EINVAL" "$EINVAL" \
	as mlfs_ua bash -c "echo submit > '$R/ctl'"
check "error says build it first" grep -q "not Ready: build it first" "$R/error"
R=$MNT/runs/rootenv
mkdir "$R"; wr "$R/environment" base; wr "$R/command" true
expect_err "root's run in an environment: EINVAL" "$EINVAL" wr "$R/ctl" submit
check "error says a container never gets root" grep -q "never gets the host's root" "$R/error"
R=$MNT/runs/long
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "echo base > '$R/environment'; echo 'sleep 300' > '$R/command'; echo submit > '$R/ctl'"
check "a long run in an environment is Running" wait_for "$R/status" Running 120
check "its container is named mlfs-…" wait_until 60 sh -c \
	"podman ps --format '{{.Names}}' | grep -q '^mlfs-.*-'"
expect_err "rmdir of an environment a running run uses: EBUSY" "$EBUSY" \
	rmdir "$MNT/environments/base"
check "error names the run" grep -q "used by run 'long'" "$MNT/environments/base/error"
as mlfs_ua sh -c "echo cancel > '$R/ctl'"
check "cancel stops it" wait_for "$R/status" Canceled 120
check "no container of this workspace is left" wait_until 60 sh -c \
	"! podman ps -a --format '{{.Names}}' | grep -q '^$CT_PREFIX'"
R=$MNT/runs/adopt
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "echo base > '$R/environment'; echo 'sleep 4; echo done > outputs/d' > '$R/command'; echo submit > '$R/ctl'"
check "Running before the crash" wait_for "$R/status" Running 120
crash_ws
remount_or_bail "remount during a run in a container" -o allow_other
check "the run is adopted and completes" wait_for "$R/status" Completed 120
eq "... its output" done "$(cat "$R/outputs/d" 2>/dev/null)"
R=$MNT/runs/peek
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "echo base > '$R/environment'; echo 'cat $T/secret.tar /host$T/secret.tar' > '$R/command'; echo submit > '$R/ctl'"
check "a run that reads a host file fails" wait_for "$R/status" Failed 120
check "... and shows none of it" sh -c "! grep -q 'root secret' '$R/log'"

# ---- cleanup: no image is left behind ------------------------------------------
for e in base py notyet steal; do
	check "rmdir environments/$e" rmdir "$MNT/environments/$e"
done
for i in "${IMAGES[@]}"; do
	check "image ${i:7:12} left podman's store" wait_until 60 \
		eval "! '$PODMAN' image exists '$i'"
done

done_testing
