#!/usr/bin/env bash
# Runs in an environment, the rest of issue 17 on the local target: inputs
# mounted read-only at /mlfs/inputs/NAME (a folder, a file; a path the
# creator cannot reach, their own link to a root-only folder: refused, no
# byte of it shown), arrays (a container a task: the image's file, its own
# index, its status; cancel and the
# time limit leave no container; kill -9 + remount adopts the array),
# procs_per_node = 2 in one container (mlfs-ranks: the rank variables, a
# cancel reaching both ranks), and GPUs through CDI (a fake nvidia-smi of
# two GPUs; without a CDI spec the run fails with its sentence; with a
# fake spec in /var/run/cdi, the one podman 4.3 reads besides /etc/cdi,
# the run gets --device nvidia.com/gpu=I for its GPU, numbered 0 inside).
source "$(dirname "$0")/../lib.sh"

IMG_ID=
CDI_SPEC=/var/run/cdi/mlfs-test-$$.json
more_cleanup() {
	rm -f "$CDI_SPEC"
	cleanup_deep
	[[ -n $IMG_ID ]] && podman rmi -f "$IMG_ID" >/dev/null 2>&1
}
trap more_cleanup EXIT

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }

# ---- the image: busybox (27's cached tarball) and a file only it has -------
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }
BBV=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo local)
BBV=${BBV//[^A-Za-z0-9.+-]/_}
CACHE=/var/cache/mlfs-test
BASE_TAR=$CACHE/busybox-rootfs-$BBV.tar
if [[ ! -s $BASE_TAR ]]; then
	mkdir -p "$CACHE"
	busybox_tree "$T/rootfs"
	mkdir -p -m 1777 "$T/rootfs/var/tmp"
	tar_tree "$T/rootfs" "$BASE_TAR"
fi
if ! podman_runs "$BASE_TAR"; then
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi
cp "$BASE_TAR" "$T/img.tar"
mkdir -p "$T/imgx/etc"
echo in-the-image > "$T/imgx/etc/only-in-image"
tar -C "$T/imgx" --numeric-owner --owner=0 --group=0 -rf "$T/img.tar" ./etc/only-in-image
chmod 644 "$T/img.tar"

# ---- a daemon with two fake GPUs ------------------------------------------
mu_users
mkdir -p "$T/bin"
cat >"$T/bin/nvidia-smi" <<'SH'
#!/bin/sh
for i in 0 1; do echo "$i, Tesla T4, 15360"; done
SH
chmod +x "$T/bin/nvidia-smi"
PATH="$T/bin:$PATH" mount_or_bail "mount with allow_other and 2 fake GPUs" -o allow_other
check "the local target sees 2 GPUs" wait_until 10 eval \
	'[[ $(cut -d" " -f5 "$MNT/targets/local/nodes") == 2 ]]'
CT_PREFIX=$(ct_prefix)
no_container() {	# no container of this workspace is left
	wait_until 60 sh -c "! podman ps -a --format '{{.Names}}' | grep -q '^$CT_PREFIX'"
}

E=$MNT/environments/img
as mlfs_ua mkdir "$E"
as mlfs_ua sh -c "echo 'rootfs = $T/img.tar' > '$E/config'; echo build > '$E/ctl'"
eq "the image with its file is Ready" Ready "$(env_settled img 120)"
IMG_ID=$(cat "$E/image")

# submit_run NAME COMMAND [RESOURCES] [INPUTS]: a run of mlfs_ua's in img
submit_run() {
	local r=$MNT/runs/$1
	as mlfs_ua mkdir "$r"
	as mlfs_ua sh -c "echo img > '$r/environment'; cat > '$r/command'" <<<"$2"
	[[ -z ${3:-} ]] || as mlfs_ua sh -c "printf '$3' > '$r/resources'"
	[[ -z ${4:-} ]] || as mlfs_ua sh -c "printf '$4' > '$r/inputs'"
	as mlfs_ua sh -c "echo submit > '$r/ctl'"
}

# ---- inputs ------------------------------------------------------------------
D=$T/data
mkdir -p "$D/sub"
echo data > "$D/a.txt"
echo deep > "$D/sub/b.txt"
chown -R mlfs_ua: "$D"
submit_run in 'cat /etc/only-in-image > outputs/img
cat "$MLFS_INPUT_d/a.txt" "$MLFS_INPUT_d/sub/b.txt" > outputs/d
cat "$MLFS_INPUT_f" > outputs/f
echo "$MLFS_INPUT_d $MLFS_INPUT_f" > outputs/paths
touch "$MLFS_INPUT_d/new" 2>>outputs/werr || echo refused >> outputs/w
echo x 2>>outputs/werr >> "$MLFS_INPUT_f" || echo refused >> outputs/w
rm -f "$MLFS_INPUT_d/sub/b.txt" 2>>outputs/werr || echo refused >> outputs/w
grep -c " /mlfs/inputs/" /proc/self/mountinfo > outputs/mounts' '' \
	"d $D\nf $D/a.txt\n"
R=$MNT/runs/in
check "a run with inputs in an environment completes" wait_for "$R/status" Completed 120
eq "... in the image" in-the-image "$(cat "$R/outputs/img" 2>/dev/null)"
eq "a folder input is read at \$MLFS_INPUT_d, a file at \$MLFS_INPUT_f" \
	"data deep data" "$(cat "$R/outputs/d" "$R/outputs/f" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
eq "MLFS_INPUT_NAME is /mlfs/inputs/NAME" "/mlfs/inputs/d /mlfs/inputs/f" \
	"$(cat "$R/outputs/paths" 2>/dev/null)"
eq "creating, appending, removing: all refused" "refused refused refused" \
	"$(cat "$R/outputs/w" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
check "... as a read-only file system" grep -q "Read-only file system" "$R/outputs/werr"
eq "the inputs are two mounts inside" 2 "$(cat "$R/outputs/mounts" 2>/dev/null)"
check "the host's folder is unchanged" sh -c "[ ! -e '$D/new' ] && [ -e '$D/sub/b.txt' ] && [ \"\$(cat '$D/a.txt')\" = data ]"
check "... and still writable by its owner" as mlfs_ua touch "$D/after"
check "no view is left mounted on the host" sh -c "! grep -q ct.inputs /proc/self/mountinfo"
check "no container is left" no_container

# a root-only folder holding a file anyone may read: only podman (root)
# resolving the creator's path would reach it
mkdir -p "$T/priv"
chmod 700 "$T/priv"
echo "root secret $RANDOM" > "$T/priv/secret.txt"
chmod 644 "$T/priv/secret.txt"
mkdir -p "$T/ua" && chown mlfs_ua: "$T/ua"
as mlfs_ua ln -s "$T/priv/secret.txt" "$T/ua/link"
as mlfs_ua ln -s "$T/priv" "$T/ua/dirlink"
submit_run steal 'cat "$MLFS_INPUT_s"' '' "s $T/ua/link\n"
R=$MNT/runs/steal
check "an input through the creator's link into a root-only folder fails" \
	wait_for "$R/status" Failed 120
check "... the log says it cannot be opened" grep -q "input $T/ua/link: cannot open it: Permission denied" "$R/log"
grep -q "cannot open it" "$R/log" || sed 's/^/# log: /' "$R/log" | head -5
check "... and shows no byte of it" sh -c "! grep -q 'root secret' '$R/log'"
submit_run steal3 'cat "$MLFS_INPUT_s/secret.txt"; ls "$MLFS_INPUT_s" > outputs/ls' '' "s $T/ua/dirlink\n"
R=$MNT/runs/steal3
check "the root-only folder itself as an input: mounted with its modes, unreadable" \
	wait_for "$R/status" Failed 120
check "... no byte of what it holds, not even a name" sh -c "! grep -q 'root secret' '$R/log' && [ ! -s '$R/outputs/ls' ]"
submit_run steal2 'cat "$MLFS_INPUT_s"' '' "s $T/priv/secret.txt\n"
R=$MNT/runs/steal2
check "a root-only path as an input fails" wait_for "$R/status" Failed 120
check "... shows no byte of it" sh -c "! grep -q 'root secret' '$R/log'"
submit_run gone 'true' '' "g $T/no-such-folder\n"
R=$MNT/runs/gone
check "an input that does not exist when the run starts fails it" wait_for "$R/status" Failed 120
check "... exit 126, the log names it" sh -c "[ \"\$(cat '$R/exit_code')\" = 126 ] &&
	grep -q 'input $T/no-such-folder: cannot open it: No such file or directory' '$R/log'"
check "no container is left" no_container

# ---- arrays --------------------------------------------------------------------
submit_run arr 'cat /etc/only-in-image > outputs/$MLFS_ARRAY_INDEX
echo "$MLFS_ARRAY_INDEX $MLFS_ARRAY_COUNT $(id -u)" >> outputs/$MLFS_ARRAY_INDEX
echo "task $MLFS_ARRAY_INDEX here"' 'array = 0-2\n'
R=$MNT/runs/arr
check "an array of 3 in an environment completes" wait_for "$R/status" Completed 180
UA=$(id -u mlfs_ua)
for i in 0 1 2; do
	eq "task $i ran in the image with its index, as the creator" \
		"in-the-image $i 3 $UA" "$(cat "$R/outputs/$i" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
	eq "task $i: Completed" Completed "$(cat "$R/tasks/$i/status")"
	eq "task $i: exit 0" 0 "$(cat "$R/tasks/$i/exit_code")"
	eq "task $i: its own log" "task $i here" "$(cat "$R/tasks/$i/log")"
done
check "the run's log has the tasks' lines" grep -q "mlfs: task 2 ended (exit 0)" "$R/log"
check "no container is left" no_container

R=$MNT/runs/arrenv
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "echo img > '$R/environment'"
as mlfs_ua sh -c "echo 'echo \$MLFS_ARRAY_INDEX > outputs/\$MLFS_ARRAY_INDEX; exit \$MLFS_ARRAY_INDEX' > '$R/command'"
as mlfs_ua sh -c "printf 'array = 0-1\n' > '$R/resources'; echo submit > '$R/ctl'"
check "an array with a failing task fails" wait_for "$R/status" Failed 180
eq "each task's own index" "0 1" \
	"$(cat "$R/outputs/0" "$R/outputs/1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
eq "task 1 Failed with its code" "Failed 1" "$(cat "$R/tasks/1/status") $(cat "$R/tasks/1/exit_code")"
check "error names it" grep -q "task 1 failed (exit 1)" "$R/error"

submit_run arrstop 'echo started > outputs/$MLFS_ARRAY_INDEX; sleep 300' 'array = 0-1\n'
R=$MNT/runs/arrstop
check "a long array: 2 tasks running" wait_until 120 sh -c "[ -e '$R/outputs/0' ] && [ -e '$R/outputs/1' ]"
check "... each in its own container, NAME-tI" wait_until 30 sh -c \
	"[ \$(podman ps --format '{{.Names}}' | grep -c '^$CT_PREFIX.*-t[01]\$') = 2 ]"
as mlfs_ua sh -c "echo cancel > '$R/ctl'"
check "cancel: Canceled" wait_for "$R/status" Canceled 120
eq "every task Canceled" "Canceled Canceled" "$(for i in 0 1; do cat "$R/tasks/$i/status"; done | tr '\n' ' ' | sed 's/ $//')"
check "cancel leaves no container" no_container

echo 'cancel_grace_seconds = 2' > "$MNT/targets/local/config"
submit_run arrtime 'trap "" TERM; echo started > outputs/$MLFS_ARRAY_INDEX; sleep 300' 'array = 0-1\ntime = 0:00:02\n'
R=$MNT/runs/arrtime
check "tasks past their time limit: Failed" wait_for "$R/status" Failed 180
check "... the log says so" grep -q "task 0 exceeded its time limit" "$R/log"
check "... and no container is left (TERM ignored: killed, removed)" no_container
: > "$MNT/targets/local/config"

submit_run arradopt 'sleep 3; echo done > outputs/$MLFS_ARRAY_INDEX' 'array = 0-2%%2\n'
R=$MNT/runs/arradopt
check "an array Running before the crash" wait_for "$R/status" Running 120
crash_ws
PATH="$T/bin:$PATH" remount_or_bail "remount during an array in containers" -o allow_other
check "the array is adopted and completes" wait_for "$R/status" Completed 180
eq "... every task's output" "done done done" "$(cat "$R"/outputs/{0,1,2} 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
check "no container is left" no_container

# ---- procs_per_node = 2 in one container ------------------------------------
submit_run ddp 'cat /etc/only-in-image > outputs/img$RANK
echo "$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $NODE_RANK $MASTER_ADDR" > outputs/r$RANK
echo "$MASTER_PORT" > outputs/p$RANK; readlink /proc/1/ns/pid > outputs/ns$RANK
echo hello from $RANK' 'procs_per_node = 2\n'
R=$MNT/runs/ddp
check "procs_per_node = 2 in an environment completes" wait_for "$R/status" Completed 120
for i in 0 1; do
	eq "rank $i ran in the image" in-the-image "$(cat "$R/outputs/img$i" 2>/dev/null)"
	eq "rank $i's variables" "$i 2 $i 2 0 127.0.0.1" "$(cat "$R/outputs/r$i" 2>/dev/null)"
done
check "one MASTER_PORT for both" sh -c "[ -s '$R/outputs/p0' ] && cmp -s '$R/outputs/p0' '$R/outputs/p1'"
check "both in one container (one pid namespace)" cmp -s "$R/outputs/ns0" "$R/outputs/ns1"
check "the log has each rank's line with its rank" sh -c "grep -q '^0: hello from 0' '$R/log' && grep -q '^1: hello from 1' '$R/log'"
submit_run ddpstop 'trap "echo got > outputs/term\$RANK; exit 3" TERM; echo up > outputs/up$RANK; sleep 300 & wait' 'procs_per_node = 2\n'
R=$MNT/runs/ddpstop
check "two ranks running" wait_until 120 sh -c "[ -e '$R/outputs/up0' ] && [ -e '$R/outputs/up1' ]"
as mlfs_ua sh -c "echo cancel > '$R/ctl'"
check "cancel: Canceled" wait_for "$R/status" Canceled 120
check "the TERM reached both ranks in the container" sh -c "[ -e '$R/outputs/term0' ] && [ -e '$R/outputs/term1' ]"
check "no container is left" no_container

# ---- GPUs by CDI ------------------------------------------------------------------
if grep -qs 'nvidia.com/gpu' /etc/cdi/* /var/run/cdi/*; then
	echo "# this machine has a CDI spec for nvidia.com/gpu: the fake one is not tried"
else
	submit_run gpu0 'echo $CUDA_VISIBLE_DEVICES > outputs/cvd' 'gpus = 1\n'
	R=$MNT/runs/gpu0
	check "GPUs without a CDI spec: the run fails" wait_for "$R/status" Failed 60
	check "... with the sentence" grep -q "has no CDI spec for nvidia.com/gpu" "$R/error"
	check "... one sentence" has_sentence "$R/error"
	fake_cdi "$CDI_SPEC"
	R=$MNT/runs/hold
	as mlfs_ua mkdir "$R"
	as mlfs_ua sh -c "echo 'sleep 300' > '$R/command'; printf 'gpus = 1\n' > '$R/resources'; echo submit > '$R/ctl'"
	check "a run (no environment) holds GPU 0" wait_for "$R/status" Running 60
	submit_run gpu1 'echo "$CUDA_VISIBLE_DEVICES ${MLFS_TEST_GPU0:-no} ${MLFS_TEST_GPU1:-no}" > outputs/g' 'gpus = 1\n'
	R=$MNT/runs/gpu1
	check "with a CDI spec the run in an environment completes" wait_for "$R/status" Completed 120
	eq "it got host GPU 1 (--device nvidia.com/gpu=1), numbered 0 inside" \
		"0 no given" "$(cat "$R/outputs/g" 2>/dev/null)"
	as mlfs_ua sh -c "echo cancel > '$MNT/runs/hold/ctl'"
	check "the holder is canceled" wait_for "$MNT/runs/hold/status" Canceled 60
	rm -f "$CDI_SPEC"
	check "no container is left" no_container
fi

check "rmdir the environment" rmdir "$E"
check "its image left podman's store" wait_until 60 eval "! '$PODMAN' image exists '$IMG_ID'"

done_testing
