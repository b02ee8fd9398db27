#!/usr/bin/env bash
# Runs in an environment on an ssh target (issue 17 item 2): the host is
# a private sshd on loopback (scripts/ssh-host.sh) whose login is $UH, not
# root: rootless podman with its own image store, so the image built here
# is really missing there.  A run in an environment completes with output
# from inside the image (a file only the image has), as the login's uid,
# with its env lines, MLFS_* and metrics; the image is copied once (the
# second run's log has no copy line), the exact image in info.json;
# cancel and the time limit leave no container; kill -9 of the daemon
# during a run adopts it; an image whose RUN layers the rootless login
# cannot map fails with a sentence; a host without podman fails the run
# with a sentence; inputs (read-only at /mlfs/inputs/NAME), an array (a
# container a task; cancel leaves none) and procs_per_node = 2 (one
# container) in the environment; GPUs on a host with a fake nvidia-smi,
# failing without a CDI spec, passed in with a fake one in /var/run/cdi.
# That host is faked honestly: a second sshd of the same
# machine whose config sets the login's PATH (sshd_config SetEnv) to a
# folder holding every program of /usr/bin but podman -- what the check
# on the host asks (`command -v podman` in the login's PATH).
source "$(dirname "$0")/../lib.sh"

UH=mlfs_rh		# the host's login, made by ssh-host.sh
SSHD=$T/sshd SSHD2=$T/sshd-nopodman
REMOTE=$T/remote	# the host's folders (the login is $UH)
WORK=$REMOTE/work

# podman as the host's login (its rootless store), from its home
hpod() { as $UH sh -c 'cd && exec podman --log-level=error "$@"' podman "$@"; }

CDI_SPEC=/var/run/cdi/mlfs-test-29-$$.json
ssh_env_cleanup() {
	local n
	rm -f "$CDI_SPEC"
	for n in $(hpod ps -a --format '{{.Names}}' 2>/dev/null); do
		[[ $n == "$CT_PREFIX"* ]] && hpod rm -f "$n" >/dev/null 2>&1
	done
	[[ -n ${IMG2:-} ]] && hpod rmi -f "$IMG2" >/dev/null 2>&1
	[[ -n ${IMG:-} ]] && hpod rmi -f "$IMG" >/dev/null 2>&1
	podman_pause_stop "${UH:-}"
	"$ROOT/scripts/ssh-host.sh" stop "$SSHD2" >/dev/null 2>&1
	ssh_cleanup
	[[ -n ${IMG2:-} ]] && podman rmi -f "$IMG2" >/dev/null 2>&1
	[[ -n ${IMG:-} ]] && podman rmi -f "$IMG" >/dev/null 2>&1
	cleanup_deep
}
trap ssh_env_cleanup EXIT

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }

# ---- the image: busybox and a file only the image has ----------------------
busybox_marked "$T/marked.tar"

# Can podman run a container here at all?  (27 asks the same)
if ! podman_runs "$T/marked.tar"; then
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi

mu_users
if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD" $UH >/dev/null; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
mkdir -p "$REMOTE" && chown $UH: "$REMOTE"

mount_or_bail "mount" -o allow_other

CT_PREFIX=mlfs-$(python3 -c 'import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print("%08x" % h)' "$STATE")-
# ours: the host's containers of this workspace; none_ours: there are
# none; runs_ours: one is running
ours() { hpod ps -a --format '{{.Names}}' | grep "^$CT_PREFIX"; }
none_ours() { ! ours >/dev/null; }
runs_ours() { hpod ps --format '{{.Names}}' | grep -q "^$CT_PREFIX"; }

E=$MNT/environments/marked
mkdir "$E"
wr "$E/config" "rootfs = $T/marked.tar"
wr "$E/ctl" build
check "the environment is built" wait_for "$E/status" Ready 120
IMG=$(cat "$E/image")
lacks_image() { ! hpod image exists "$IMG"; }
check "the host's podman lacks the image" lacks_image
hpod image exists "$IMG" && echo "# (it had it: the copy below is not tested)"

TG=$MNT/targets/box
mkdir "$TG" && wr "$TG/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 5" \
	"cancel_grace_seconds = 3" > "$TG/config"
check "the ssh target attaches" wr "$TG/ctl" provision
check "… Succeeded" wait_for "$TG/status" Succeeded 30

# mk NAME COMMAND: a Draft run in the environment on the ssh target
mk() {
	mkdir "$MNT/runs/$1" && printf '%s\n' "$2" > "$MNT/runs/$1/command" &&
		wr "$MNT/runs/$1/target" box && wr "$MNT/runs/$1/environment" marked
}
st() { cat "$MNT/runs/$1/status"; }

# ---- a run in the image, on the host ----------------------------------------
mk first 'cat /etc/mlfs-marker > outputs/marker; id -u > outputs/uid
echo "$MLFS_RUN $X $PWD $HOME" > outputs/env; echo "loss 0.5 1" >> "$MLFS_METRICS"'
wr "$MNT/runs/first/env" "X=42"
wr "$MNT/runs/first/ctl" submit
check "the run in an environment on the host ends" wait_final "$MNT/runs/first" 180
eq "… Completed" Completed "$(st first)"
eq "it ran in the image (a file only the image has)" \
	"$(tar -xOf "$T/marked.tar" ./etc/mlfs-marker)" "$(cat "$MNT/runs/first/outputs/marker")"
eq "as the host's login (keep-id)" "$(id -u $UH)" "$(cat "$MNT/runs/first/outputs/uid")"
eq "env lines, MLFS_RUN, the working copy" "first 42 /work /work" \
	"$(cat "$MNT/runs/first/outputs/env")"
check "MLFS_METRICS reaches metrics" grep -q "^loss 0.5 1" "$MNT/runs/first/metrics"
check "the log says the image was copied, and how big" \
	grep -qE "^mlfs: the image $IMG was not on .*: copied .* [0-9.]+ MB$" \
	"$MNT/runs/first/log"
check "the host's podman has it now" hpod image exists "$IMG"
check "info.json has the exact image" grep -q "\"image\":.*$IMG" "$MNT/runs/first/info.json"
check "no container is left on the host" none_ours

mk second 'cat /etc/mlfs-marker'
wr "$MNT/runs/second/ctl" submit
check "a second run ends" wait_final "$MNT/runs/second" 120
eq "… Completed" Completed "$(st second)"
check "… in the image" grep -q "inside-the-image" "$MNT/runs/second/log"
check "… and the image was not copied again" \
	sh -c "! grep -q 'copied' '$MNT/runs/second/log'"

# ---- cancel and the time limit stop the container ------------------------------
mk long 'sleep 300'
wr "$MNT/runs/long/ctl" submit
check "a long run is Running" wait_for "$MNT/runs/long/status" Running 120
check "its container runs on the host, named mlfs-…" wait_until 60 runs_ours
wr "$MNT/runs/long/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/long/status" Canceled 60
check "… no container left (podman ps -a on the host)" wait_until 60 none_ours

mk slow 'sleep 300'
wr "$MNT/runs/slow/resources" "time = 0:00:02"
wr "$MNT/runs/slow/ctl" submit
check "a run over its time limit ends" wait_final "$MNT/runs/slow" 120
eq "… Failed" Failed "$(st slow)"
check "… the time limit said" grep -q "time limit" "$MNT/runs/slow/error"
check "… no container left" wait_until 60 none_ours

# ---- kill -9 of the daemon during a run: adopted ---------------------------------
mk adopt 'sleep 3; echo done > outputs/d'
wr "$MNT/runs/adopt/ctl" submit
check "Running before the crash" wait_for "$MNT/runs/adopt/status" Running 120
crash_ws
remount_or_bail "remount during a run in a container on the host" -o allow_other
check "the run is adopted and completes" wait_for "$MNT/runs/adopt/status" Completed 120
eq "… its output" done "$(cat "$MNT/runs/adopt/outputs/d" 2>/dev/null)"
check "… no container left" wait_until 60 none_ours

# ---- inputs, arrays, procs_per_node in the container ---------------------------
D=$T/sdata
mkdir -p "$D"
echo data > "$D/a.txt"
mk sin 'cat /etc/mlfs-marker > outputs/marker
cat "$MLFS_INPUT_d/a.txt" "$MLFS_INPUT_f" > outputs/in
echo "$MLFS_INPUT_d $MLFS_INPUT_f" > outputs/paths
touch "$MLFS_INPUT_d/new" 2>outputs/werr || echo refused > outputs/w'
printf 'd %s\nf %s\n' "$D" "$D/a.txt" > "$MNT/runs/sin/inputs"
wr "$MNT/runs/sin/ctl" submit
check "a run with inputs in an environment on the host ends" wait_final "$MNT/runs/sin" 180
eq "… Completed" Completed "$(st sin)"
eq "… in the image" "$(tar -xOf "$T/marked.tar" ./etc/mlfs-marker)" \
	"$(cat "$MNT/runs/sin/outputs/marker" 2>/dev/null)"
eq "the folder and the file input are read" "data data" \
	"$(cat "$MNT/runs/sin/outputs/in" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
eq "at /mlfs/inputs/NAME" "/mlfs/inputs/d /mlfs/inputs/f" \
	"$(cat "$MNT/runs/sin/outputs/paths" 2>/dev/null)"
eq "a write into an input is refused" refused "$(cat "$MNT/runs/sin/outputs/w" 2>/dev/null)"
check "… by a read-only mount (not only the cache's modes)" \
	grep -q "Read-only file system" "$MNT/runs/sin/outputs/werr"
check "… no container left" wait_until 60 none_ours

mk sarr 'cat /etc/mlfs-marker > outputs/$MLFS_ARRAY_INDEX
echo "$MLFS_ARRAY_INDEX $MLFS_ARRAY_COUNT" >> outputs/$MLFS_ARRAY_INDEX
echo "task $MLFS_ARRAY_INDEX here"'
wr "$MNT/runs/sarr/resources" "array = 0-2"
wr "$MNT/runs/sarr/ctl" submit
check "an array of 3 in an environment on the host ends" wait_final "$MNT/runs/sarr" 240
eq "… Completed" Completed "$(st sarr)"
MARK=$(tar -xOf "$T/marked.tar" ./etc/mlfs-marker)
for i in 0 1 2; do
	eq "task $i ran in the image with its index" "$MARK $i 3" \
		"$(cat "$MNT/runs/sarr/outputs/$i" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
	eq "task $i: Completed" Completed "$(cat "$MNT/runs/sarr/tasks/$i/status")"
	check "task $i: its own log" grep -q "^task $i here$" "$MNT/runs/sarr/tasks/$i/log"
done
check "… no container left" wait_until 60 none_ours
mk sarrstop 'echo up > outputs/$MLFS_ARRAY_INDEX; sleep 300'
wr "$MNT/runs/sarrstop/resources" "array = 0-1"
wr "$MNT/runs/sarrstop/ctl" submit
task_cts() { hpod ps --format '{{.Names}}' | grep -c "^$CT_PREFIX.*-t[01]\$"; }
check "two tasks, a container each (NAME-tI), run on the host" \
	wait_until 120 eval '[[ $(task_cts) == 2 ]]'
wr "$MNT/runs/sarrstop/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/sarrstop/status" Canceled 60
check "… no task's container left" wait_until 60 none_ours

mk sddp 'cat /etc/mlfs-marker > outputs/m$RANK
echo "$RANK $WORLD_SIZE $LOCAL_RANK $MASTER_ADDR" > outputs/r$RANK
echo "$MASTER_PORT" > outputs/p$RANK; readlink /proc/1/ns/pid > outputs/ns$RANK
echo hello from $RANK'
wr "$MNT/runs/sddp/resources" "procs_per_node = 2"
wr "$MNT/runs/sddp/ctl" submit
check "procs_per_node = 2 in an environment on the host ends" wait_final "$MNT/runs/sddp" 180
eq "… Completed" Completed "$(st sddp)"
for i in 0 1; do
	eq "rank $i in the image" "$MARK" "$(cat "$MNT/runs/sddp/outputs/m$i" 2>/dev/null)"
	eq "rank $i's variables" "$i 2 $i 127.0.0.1" "$(cat "$MNT/runs/sddp/outputs/r$i" 2>/dev/null)"
done
check "one MASTER_PORT, one container" sh -c "[ -s '$MNT/runs/sddp/outputs/p0' ] &&
	cmp -s '$MNT/runs/sddp/outputs/p0' '$MNT/runs/sddp/outputs/p1' &&
	cmp -s '$MNT/runs/sddp/outputs/ns0' '$MNT/runs/sddp/outputs/ns1'"
check "each rank's lines with its rank" sh -c "grep -q '^0: hello from 0' '$MNT/runs/sddp/log' &&
	grep -q '^1: hello from 1' '$MNT/runs/sddp/log'"
check "… no container left" wait_until 60 none_ours
# (their lines reach the log when busybox's sed, which has no -u, ends:
# the ranks say they are up through MLFS_METRICS, read while they run)
mk sddpstop 'trap "echo got \$RANK; exit 3" TERM; echo "up$RANK 1" >> "$MLFS_METRICS"; sleep 300 & wait'
wr "$MNT/runs/sddpstop/resources" "procs_per_node = 2"
wr "$MNT/runs/sddpstop/ctl" submit
check "two ranks running in the container" wait_until 120 sh -c \
	"grep -q '^up0 1' '$MNT/runs/sddpstop/metrics' && grep -q '^up1 1' '$MNT/runs/sddpstop/metrics'"
wr "$MNT/runs/sddpstop/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/sddpstop/status" Canceled 60
check "… the TERM reached both ranks (the launcher passes it on)" wait_until 30 sh -c \
	"grep -q '^0: got 0' '$MNT/runs/sddpstop/log' && grep -q '^1: got 1' '$MNT/runs/sddpstop/log'"
check "… no container left" wait_until 60 none_ours

# ---- an image with a RUN step, on the rootless login -----------------------------
# A root daemon's RUN layers are owned by the build namespace's host ids
# (27): rootless podman cannot map them, and the run fails with a
# sentence.  A podman that maps them back may load it: then it runs.
W=$MNT/environments/withrun
mkdir "$W"
printf 'FROM %s\nRUN echo ran > /tmp/ran\n' "$IMG" > "$W/Containerfile"
wr "$W/ctl" build
check "an environment with a RUN step is built" wait_for "$W/status" Ready 180
IMG2=$(cat "$W/image")
mkdir "$MNT/runs/withrun"
wr "$MNT/runs/withrun/command" 'cat /tmp/ran'
wr "$MNT/runs/withrun/target" box
wr "$MNT/runs/withrun/environment" withrun
wr "$MNT/runs/withrun/ctl" submit
check "a run of it on the rootless login ends" wait_final "$MNT/runs/withrun" 180
if [[ $(st withrun) == Failed ]]; then
	check "… Failed: the login's rootless podman cannot map its ids" \
		grep -q "rootless podman cannot map" "$MNT/runs/withrun/error"
	check "… one sentence" has_sentence "$MNT/runs/withrun/error"
else
	echo "# this podman loads a RUN layer into a rootless store"
	check "… Completed, in the image" grep -q "^ran$" "$MNT/runs/withrun/log"
fi

# ---- a root login: rootful podman, the host's own store ---------------------------
# The same sshd lets root in with the same key: root's podman is this
# machine's, which has the images (no copy); the RUN layers load there.
TR=$MNT/targets/rootbox
mkdir "$TR" && wr "$TR/type" ssh
printf 'host = 127.0.0.1\nport = %s\nuser = root\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
	"$SSH_PORT" "$SSH_IDENTITY" "$T/rootwork" > "$TR/config"
wr "$TR/ctl" provision
check "an ssh target logging in as root attaches" wait_for "$TR/status" Succeeded 30
mkdir "$MNT/runs/asroot"
wr "$MNT/runs/asroot/command" 'cat /tmp/ran; id -u'
wr "$MNT/runs/asroot/target" rootbox
wr "$MNT/runs/asroot/environment" withrun
wr "$MNT/runs/asroot/ctl" submit
check "a run of the RUN image on the root login ends" wait_final "$MNT/runs/asroot" 180
eq "… Completed" Completed "$(st asroot)"
eq "… in the image, as root inside (rootful podman)" "ran 0" \
	"$(tr '\n' ' ' < "$MNT/runs/asroot/log" | sed 's/ $//')"
check "… no copy: root's podman has the image" \
	sh -c "! grep -q copied '$MNT/runs/asroot/log'"

# ---- a host without podman -----------------------------------------------------------
# The same machine through a second sshd whose logins get PATH=$NOPOD: all
# of /usr/bin (links) but podman.
NOPOD=$T/nopodman-bin
mkdir -p "$NOPOD"
cp -s /usr/bin/* "$NOPOD/" 2>/dev/null	# links, one process
rm -f "$NOPOD/podman"
chmod 755 "$NOPOD"
if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD2" $UH >/dev/null; then
	not_ok "a second test sshd starts"
else
	# ssh-host.sh writes the config at each start: add to it, reload
	echo "SetEnv PATH=$NOPOD" >> "$SSHD2/sshd_config"
	kill -HUP "$(cat "$SSHD2/sshd.pid")"
	P2=$(cat "$SSHD2/port")
	check "the second host's login has no podman in its PATH" wait_until 20 \
		sh -c "ssh -n -p $P2 -i '$SSHD2/id_ed25519' -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR $UH@127.0.0.1 'command -v sh && ! command -v podman' >/dev/null"
	TN=$MNT/targets/nopod
	mkdir "$TN" && wr "$TN/type" ssh
	printf 'host = 127.0.0.1\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
		"$P2" $UH "$SSHD2/id_ed25519" "$REMOTE/work2" > "$TN/config"
	wr "$TN/ctl" provision
	check "a host without podman attaches (runs without one work)" \
		wait_for "$TN/status" Succeeded 30
	mkdir "$MNT/runs/nopod"
	wr "$MNT/runs/nopod/command" true
	wr "$MNT/runs/nopod/target" nopod
	wr "$MNT/runs/nopod/environment" marked
	wr "$MNT/runs/nopod/ctl" submit
	check "a run in an environment there ends" wait_final "$MNT/runs/nopod" 60
	eq "… Failed" Failed "$(st nopod)"
	check "… saying the host has no podman, and the packages" \
		grep -q "127.0.0.1 has no podman.*apt-get install podman runc catatonit uidmap on" \
		"$MNT/runs/nopod/error"
	check "… one sentence" has_sentence "$MNT/runs/nopod/error"

	# podman there, but not newuidmap, which rootless podman needs
	NOUID=$T/nouidmap-bin
	mkdir -p "$NOUID"
	cp -s /usr/bin/* "$NOUID/" 2>/dev/null
	rm -f "$NOUID/newuidmap" "$NOUID/newgidmap"
	chmod 755 "$NOUID"
	sed -i "s|^SetEnv PATH=.*|SetEnv PATH=$NOUID|" "$SSHD2/sshd_config"
	kill -HUP "$(cat "$SSHD2/sshd.pid")"
	check "the second host's login has podman but no newuidmap now" \
		wait_until 20 sh -c "ssh -n -p $P2 -i '$SSHD2/id_ed25519' \
		-o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		$UH@127.0.0.1 'command -v podman && ! command -v newuidmap' >/dev/null"
	TU=$MNT/targets/nouid
	mkdir "$TU" && wr "$TU/type" ssh
	printf 'host = 127.0.0.1\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
		"$P2" $UH "$SSHD2/id_ed25519" "$REMOTE/work3" > "$TU/config"
	wr "$TU/ctl" provision
	check "a host without newuidmap attaches" wait_for "$TU/status" Succeeded 30
	# rootless podman needs newuidmap when it makes its user namespace,
	# not when it joins the one its pause process keeps: stop that first
	podman_pause_stop "$UH"
	gone() { ! ps -u "$UH" -o args= | grep -q '^catatonit -P'; }
	wait_until 10 gone
	mkdir "$MNT/runs/nouid"
	wr "$MNT/runs/nouid/command" true
	wr "$MNT/runs/nouid/target" nouid
	wr "$MNT/runs/nouid/environment" marked
	wr "$MNT/runs/nouid/ctl" submit
	check "a run in an environment there ends" wait_final "$MNT/runs/nouid" 60
	eq "… Failed" Failed "$(st nouid)"
	check "… saying rootless podman needs newuidmap, and the package" \
		grep -q "needs newuidmap (apt-get install uidmap on 127.0.0.1)" \
		"$MNT/runs/nouid/error"
	check "… one sentence" has_sentence "$MNT/runs/nouid/error"
	sed 's/^/# error: /' "$MNT/runs/nouid/error"

	# GPUs: the login's PATH starts with a fake nvidia-smi of two
	if grep -qs 'nvidia.com/gpu' /etc/cdi/* /var/run/cdi/*; then
		echo "# this machine has a CDI spec for nvidia.com/gpu: the GPU checks are skipped"
	else
		GPUB=$T/gpu-bin
		mkdir -p "$GPUB"
		printf '#!/bin/sh\nfor i in 0 1; do echo "$i, Tesla T4, 15360 MiB"; done\n' \
			> "$GPUB/nvidia-smi"
		chmod 755 "$GPUB" "$GPUB/nvidia-smi"
		sed -i "s|^SetEnv PATH=.*|SetEnv PATH=$GPUB:/usr/local/bin:/usr/bin:/bin|" \
			"$SSHD2/sshd_config"
		kill -HUP "$(cat "$SSHD2/sshd.pid")"
		check "the second host's login has a (fake) nvidia-smi now" \
			wait_until 20 sh -c "ssh -n -p $P2 -i '$SSHD2/id_ed25519' \
			-o BatchMode=yes -o StrictHostKeyChecking=no \
			-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
			$UH@127.0.0.1 'command -v nvidia-smi && command -v podman' >/dev/null"
		TGP=$MNT/targets/gpubox
		mkdir "$TGP" && wr "$TGP/type" ssh
		printf 'host = 127.0.0.1\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
			"$P2" $UH "$SSHD2/id_ed25519" "$REMOTE/work4" > "$TGP/config"
		wr "$TGP/ctl" provision
		check "a host with two GPUs attaches" wait_for "$TGP/status" Succeeded 30
		eq "… its nodes have 2 GPUs" 2 "$(cut -d' ' -f5 "$TGP/nodes")"
		mkdir "$MNT/runs/gpu0"
		wr "$MNT/runs/gpu0/command" 'echo $CUDA_VISIBLE_DEVICES'
		wr "$MNT/runs/gpu0/target" gpubox
		wr "$MNT/runs/gpu0/environment" marked
		wr "$MNT/runs/gpu0/resources" "gpus = 1"
		wr "$MNT/runs/gpu0/ctl" submit
		check "GPUs on a host without a CDI spec: the run ends" wait_final "$MNT/runs/gpu0" 120
		eq "… Failed" Failed "$(st gpu0)"
		check "… saying the host has no CDI spec for nvidia.com/gpu" \
			grep -q "127.0.0.1 has no CDI spec for nvidia.com/gpu" "$MNT/runs/gpu0/error"
		check "… one sentence" has_sentence "$MNT/runs/gpu0/error"
		fake_cdi "$CDI_SPEC"
		mkdir "$MNT/runs/gpu1"
		wr "$MNT/runs/gpu1/command" 'echo "$CUDA_VISIBLE_DEVICES ${MLFS_TEST_GPU0:-no} ${MLFS_TEST_GPU1:-no}"'
		wr "$MNT/runs/gpu1/target" gpubox
		wr "$MNT/runs/gpu1/environment" marked
		wr "$MNT/runs/gpu1/resources" "gpus = 1"
		wr "$MNT/runs/gpu1/ctl" submit
		check "with a (fake) CDI spec on the host the run ends" wait_final "$MNT/runs/gpu1" 180
		eq "… Completed" Completed "$(st gpu1)"
		eq "… with its GPU passed in (the spec's edit), numbered 0" "0 given no" \
			"$(grep -v '^mlfs:' "$MNT/runs/gpu1/log" | tail -1)"
		rm -f "$CDI_SPEC"
	fi
fi

done_testing
