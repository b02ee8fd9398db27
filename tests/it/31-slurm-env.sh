#!/usr/bin/env bash
# Runs in an environment on a Slurm target (issue 17 item 2): podman in
# the batch job on the node (scripts/slurm-cluster.sh: two slurmd of this
# machine, jobs as root).  A node's podman must lack the image for the
# staging to be tested: target `sl` names a podman (its `podman` key) that
# is this machine's podman on a store of its own ($NS, vfs), as a node
# would have; target `slroot` finds root's own podman in the job's PATH,
# whose store has the image.  Shown: a run by a user completes in the
# image (a file only the image has), as that user inside, with its env
# lines, MLFS_RUN, metrics; the image is staged once and loaded once (a
# second run copies and loads nothing); a job user that is not root
# (rootless podman, keep-id, its own store); cancel leaves no container,
# also of a command that ignores TERM; kill -9 of the daemon during a run
# and an array of 2: adopted, they complete (each task too); a node without podman, a container podman
# refuses and an image that does not load fail the run with a sentence.
# Then what goes beyond one process: inputs read-only at /mlfs/inputs
# (opened as the creator by a root job: a link to a root-only file fails),
# an array (a container a task, canceled: none left), GPUs by CDI (no
# spec: its sentence; a fake spec in /var/run/cdi), nodes = 2 ×
# procs_per_node = 2 (a container a node, the rank variables), a node
# that fails, a run on two nodes canceled (no container left), an input
# of a rootless job, and an input path podman cannot mount.
source "$(dirname "$0")/../lib.sh"

NS=$T/nodestore
CDI_SPEC=/var/run/cdi/mlfs-test-$$.json
NPOD=$T/nodepodman
# podman as the nodes of target sl run it
npod() { "$NPOD" --log-level=error "$@"; }
# podman as $US (its rootless store), from its home
uspod() { as $US sh -c 'cd && exec podman --log-level=error "$@"' podman "$@"; }

slurm_env_cleanup() {
	local n
	if [[ -x $NPOD ]]; then
		for n in $(npod ps -a --format '{{.Names}}' 2>/dev/null); do
			[[ $n == "${CT_PREFIX:-none}"* ]] && npod rm -f "$n" >/dev/null 2>&1
		done
		npod rmi -af >/dev/null 2>&1
	fi
	if [[ -n ${US:-} ]] && id "$US" >/dev/null 2>&1; then
		for n in $(uspod ps -a --format '{{.Names}}' 2>/dev/null); do
			[[ $n == "${CT_PREFIX:-none}"* ]] && uspod rm -f "$n" >/dev/null 2>&1
		done
		[[ -n ${IMG:-} ]] && uspod rmi -f "$IMG" >/dev/null 2>&1
		podman_pause_stop "$US"
	fi
	rm -rf "$NS"
	rm -f "$CDI_SPEC"
	[[ -n ${IMG:-} ]] && podman rmi -f "$IMG" >/dev/null 2>&1
	return 0
}

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }

# ---- the image: busybox and a file only the image has ----------------------
busybox_marked "$T/marked.tar"
if ! podman_runs "$T/marked.tar"; then
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi

US=mlfs_us	# the job user of target slu
mu_users mlfs_ua $US
UA=mlfs_ua
slurm_start slurm_env_cleanup
mkdir -p "$NS"/{root,run,tmp}
cat > "$NPOD" <<EOF
#!/bin/sh
exec $PODMAN --root $NS/root --runroot $NS/run --tmpdir $NS/tmp --storage-driver vfs "\$@"
EOF
chmod 755 "$NPOD"

mount_or_bail "mount" -o allow_other
CT_PREFIX=$(ct_prefix)
ours() { npod ps -a --format '{{.Names}}' | grep "^$CT_PREFIX"; }
none_ours() { ! ours >/dev/null; }
runs_ours() { npod ps --format '{{.Names}}' | grep -q "^$CT_PREFIX"; }

E=$MNT/environments/marked
mkdir "$E"
wr "$E/config" "rootfs = $T/marked.tar"
wr "$E/ctl" build
check "the environment is built" wait_for "$E/status" Ready 120
IMG=$(cat "$E/image")
check "the nodes' podman lacks the image" sh -c "! '$NPOD' image exists '$IMG'"

# target NAME [LINE...]: a slurm target of the test cluster, provisioned,
# usable by $UA
target() {
	local d=$MNT/targets/$1
	shift
	mkdir "$d" && wr "$d/type" slurm
	printf '%s\n' "url = $SLURM_URL" "user = ${TUSER:-$SLURM_USER}" \
		"token_file = ${TTOKEN:-$SLURM_TOKEN_FILE}" "partition = $SLURM_PARTITION" \
		"poll_seconds = 0.5" "$@" > "$d/config"
	wr "$d/ctl" provision
	wait_until 30 sh -c "[ \"\$(cat '$d/status')\" != Creating ]"
	chmod go+x "$d"
}
target sl "podman = $NPOD"
eq "a slurm target whose nodes' podman has its own store" Succeeded \
	"$(cat "$MNT/targets/sl/status")"

# mk NAME TARGET COMMAND: a Draft run of $UA in the environment
mk() {
	as $UA mkdir "$MNT/runs/$1" &&
		as $UA sh -c 'printf "%s\n" "$1" > "$2/command"' sh "$3" "$MNT/runs/$1" &&
		as $UA sh -c "echo $2 > '$MNT/runs/$1/target'; echo marked > '$MNT/runs/$1/environment'"
}
sub() { as $UA bash -c "echo submit > '$MNT/runs/$1/ctl'"; }
st() { cat "$MNT/runs/$1/status"; }

# ---- a run in the image, on a node that lacks it -------------------------------
mk first sl 'cat /etc/mlfs-marker > outputs/marker; id -u > outputs/uid
echo "$MLFS_RUN $X $PWD $HOME" > outputs/env; echo "loss 0.5 1" >> "$MLFS_METRICS"'
as $UA sh -c "printf 'X=42\nLD_PRELOAD=/nonexistent-mlfs.so\n' > '$MNT/runs/first/env'"
check "submit a run in an environment to the slurm target" sub first
check "it ends" wait_final "$MNT/runs/first" 120
eq "… Completed" Completed "$(st first)"
[[ $(st first) == Completed ]] || sed 's/^/# log: /' "$MNT/runs/first/log" "$MNT/runs/first/error"
eq "it ran in the image (a file only the image has)" \
	"$(tar -xOf "$T/marked.tar" ./etc/mlfs-marker)" "$(cat "$MNT/runs/first/outputs/marker" 2>/dev/null)"
eq "as its creator inside (the job is root's)" "$(id -u $UA)" \
	"$(cat "$MNT/runs/first/outputs/uid" 2>/dev/null)"
eq "env lines, MLFS_RUN, the working copy" "first 42 /work /work" \
	"$(cat "$MNT/runs/first/outputs/env" 2>/dev/null)"
check "MLFS_METRICS reaches metrics" grep -q "^loss 0.5 1" "$MNT/runs/first/metrics"
check "the env lines never reach the batch script (root's): no LD_PRELOAD there" \
	sh -c "! grep -q 'nonexistent-mlfs.so' '$MNT/runs/first/log'"
check "the log says the image was staged, and how big" \
	grep -qE "^mlfs: the image $IMG was staged for the nodes \(podman save\), [0-9.]+ MB$" \
	"$MNT/runs/first/log"
check "… and loaded on the node" \
	grep -qE "^mlfs: the image $IMG was not on node[12]: loaded from " "$MNT/runs/first/log"
check "the node's podman has it now" npod image exists "$IMG"
check "info.json has the exact image" grep -q "\"image\":.*$IMG" "$MNT/runs/first/info.json"
check "no container is left on the node" none_ours
TAR=$(ls "$STATE"/objects/*/images/*.tar 2>/dev/null | head -1)
eq "the staged image: one file in the target's cache, root's (the job user's), 0600" \
	"1 root 600" "$(ls -A "$(dirname "$TAR")" | wc -l) $(stat -c '%U %a' "$TAR" 2>/dev/null)"
eq "the env file is 0600 and not in the working copy" "600" \
	"$(stat -c %a "$(ls -d "$STATE"/objects/*/container.env | head -1)")"
M0=$(stat -c %i "$TAR" 2>/dev/null) U0=$(stat -c %.9Y "$TAR" 2>/dev/null)

mk second sl 'cat /etc/mlfs-marker'
sub second
check "a second run ends" wait_final "$MNT/runs/second" 120
eq "… Completed" Completed "$(st second)"
check "… in the image" grep -q "inside-the-image" "$MNT/runs/second/log"
check "… the image neither staged nor loaded again" \
	sh -c "! grep -qE 'staged|loaded' '$MNT/runs/second/log'"
eq "… the staged file is the same (not written again)" "$M0" "$(stat -c %i "$TAR" 2>/dev/null)"
check "… its mtime says it was used again (what image_cache_mb removes by)" \
	awk -v a="$U0" -v b="$(stat -c %.9Y "$TAR" 2>/dev/null)" 'BEGIN { exit !(b > a) }'

# ---- podman found in the job's PATH; a store that has the image --------------
target slroot
mk rootstore slroot 'id -u; cat /etc/mlfs-marker'
sub rootstore
check "a run on a target whose nodes' podman has the image ends" \
	wait_final "$MNT/runs/rootstore" 120
eq "… Completed" Completed "$(st rootstore)"
eq "… as its creator, in the image" "$(id -u $UA) inside-the-image $$" \
	"$(grep -v '^mlfs: ' "$MNT/runs/rootstore/log" | tr '\n' ' ' | sed 's/ $//')"
check "… nothing loaded: the node's podman had the image" \
	sh -c "! grep -q loaded '$MNT/runs/rootstore/log'"

# ---- a job user that is not root: rootless podman, its own store --------------
# A token for $US, whose jobs run as $US on the nodes: its rootless podman
# (its own store) lacks the image, the command runs as $US inside
# (keep-id); the staged file is $US's.
scontrol token username=$US lifespan=3600 | sed 's/^SLURM_JWT=//' > "$T/us.token"
chmod 600 "$T/us.token"
TUSER=$US TTOKEN=$T/us.token target slu
eq "a slurm target whose jobs run as $US" Succeeded "$(cat "$MNT/targets/slu/status")"
# mku NAME COMMAND: a run of $US in the environment on slu
mku() { UA=$US mk "$1" slu "$2"; }
mku rootless 'id -u > outputs/uid; cat /etc/mlfs-marker; echo "loss 1 1" >> "$MLFS_METRICS"'
UA=$US sub rootless
check "a run as $US ends" wait_final "$MNT/runs/rootless" 120
eq "… Completed" Completed "$(st rootless)"
[[ $(st rootless) == Completed ]] || sed 's/^/# /' "$MNT/runs/rootless/log" "$MNT/runs/rootless/error"
eq "… as $US inside (rootless podman, keep-id)" "$(id -u $US)" \
	"$(cat "$MNT/runs/rootless/outputs/uid" 2>/dev/null)"
check "… in the image" grep -q "^inside-the-image" "$MNT/runs/rootless/log"
check "… staged for $US and loaded into $US's store" sh -c \
	"grep -q 'staged for the nodes' '$MNT/runs/rootless/log' && grep -q 'loaded from' '$MNT/runs/rootless/log'"
check "… metrics" grep -q "^loss 1 1" "$MNT/runs/rootless/metrics"
eq "… the staged file is $US's, 0600" "$US 600" \
	"$(stat -c '%U %a' "$STATE"/objects/*/images/*-"$(id -u $US)".tar 2>/dev/null)"
# an input: $US's rootless podman mounts the path itself, with its rights
IN=$T/in
mkdir -p "$IN/d"
echo data-in > "$IN/d/f"
echo one-file > "$IN/one"
chmod -R a+rX "$IN"
mku rootless2 'cat "$MLFS_INPUT_d/f"; touch "$MLFS_INPUT_d/x" 2>/dev/null || echo read-only'
as $US sh -c "echo 'd $IN/d' > '$MNT/runs/rootless2/inputs'"
UA=$US sub rootless2
check "a second run as $US ends" wait_final "$MNT/runs/rootless2" 120
eq "… Completed" Completed "$(st rootless2)"
eq "… its input read at /mlfs/inputs/d, read-only" "data-in read-only" \
	"$(grep -xE 'data-in|read-only' "$MNT/runs/rootless2/log" | tr '\n' ' ' | sed 's/ $//')"
check "… nothing staged or loaded again" \
	sh -c "! grep -qE 'staged|loaded' '$MNT/runs/rootless2/log'"

# ---- cancel stops the container ----------------------------------------------------
mk long sl 'echo started; sleep 300'
sub long
check "a long run is Running" wait_for "$MNT/runs/long/status" Running 60
check "its container runs on the node, named mlfs-…" wait_until 60 runs_ours
wr "$MNT/runs/long/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/long/status" Canceled 60
check "… no container left (podman ps -a on the node)" wait_until 60 none_ours

# a command that ignores TERM: podman's own TERM does not end it, and
# Slurm's KILL (KillWait later) reaches podman, never the container
# (conmon is not the job's): the job's trap stops it (KILL after 10 s)
mk deaf sl "trap '' TERM; echo started; sleep 300"
sub deaf
check "a run that ignores TERM is Running" wait_for "$MNT/runs/deaf/status" Running 60
check "… its container runs" wait_until 60 runs_ours
wr "$MNT/runs/deaf/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/deaf/status" Canceled 60
check "… no container left" wait_until 60 none_ours

# ---- kill -9 of the daemon during a run: adopted as any Slurm run ----------------
# (and an array of 2, a container a task, each adopted by its task's job)
mk adopt sl 'sleep 4; echo done > outputs/d'
sub adopt
mk adoptarr sl 'sleep 4; echo "done $MLFS_ARRAY_INDEX" > "outputs/d$MLFS_ARRAY_INDEX"'
as $UA sh -c "echo 'array = 0-1' > '$MNT/runs/adoptarr/resources'"
sub adoptarr
check "Running before the crash" wait_for "$MNT/runs/adopt/status" Running 60
check "… the array too" wait_for "$MNT/runs/adoptarr/status" Running 60
crash_ws
remount_or_bail "remount during a run in a container on a node" -o allow_other
check "the run is adopted and completes" wait_for "$MNT/runs/adopt/status" Completed 60
eq "… its output" done "$(cat "$MNT/runs/adopt/outputs/d" 2>/dev/null)"
check "the array is adopted and completes" wait_for "$MNT/runs/adoptarr/status" Completed 90
eq "… each task Completed" "Completed Completed" \
	"$(cat "$MNT/runs/adoptarr/tasks/0/status" "$MNT/runs/adoptarr/tasks/1/status" | xargs)"
eq "… each task's output" "done 0 done 1" \
	"$(cat "$MNT/runs/adoptarr/outputs/d0" "$MNT/runs/adoptarr/outputs/d1" 2>/dev/null | xargs)"
check "… no container left" wait_until 60 none_ours

# ---- bad cases ---------------------------------------------------------------------
target nopod "podman = $T/none/podman"
mk nopod nopod true
sub nopod
check "a run on a node without podman ends" wait_final "$MNT/runs/nopod" 60
eq "… Failed" Failed "$(st nopod)"
check "… saying which node has no podman, and the package" \
	grep -qE "^environment: node[12] has no podman at $T/none/podman .*apt-get install podman runc catatonit uidmap on node[12]" \
	"$MNT/runs/nopod/error"
check "… one sentence" has_sentence "$MNT/runs/nopod/error"

# podman's own refusal (125, or 126 from runc): its message, not an exit code
mk tiny sl true
as $UA sh -c "echo 'memory = 1M' > '$MNT/runs/tiny/resources'"
sub tiny
check "a run whose container podman refuses ends" wait_final "$MNT/runs/tiny" 60
eq "… Failed" Failed "$(st tiny)"
check "… with podman's own reason" \
	grep -qE "^podman on node[12] could not start the run's container: .*memory" \
	"$MNT/runs/tiny/error"
check "… one sentence" has_sentence "$MNT/runs/tiny/error"

# a damaged staged file, on a node that lacks the image
npod rmi -f "$IMG" >/dev/null
echo 'not an image' > "$TAR"
mk badload sl true
sub badload
check "a run whose image does not load ends" wait_final "$MNT/runs/badload" 60
eq "… Failed" Failed "$(st badload)"
check "… saying the node's podman cannot load it" \
	grep -qE "^environment: podman on node[12] cannot load the image $IMG" \
	"$MNT/runs/badload/error"
check "… one sentence" has_sentence "$MNT/runs/badload/error"

# ---- a workdir users may write: the cache's folder there is never a link ------
WD=$T/wd
mkdir -p "$WD" "$T/elsewhere"
chmod 1777 "$WD"
target wds "podman = $NPOD" "workdir = $WD"
mk w1 wds true
sub w1
check "a run with a workdir: ends" wait_final "$MNT/runs/w1" 120
eq "… Completed" Completed "$(st w1)"
MH=$(cd "$WD" && ls -d mlfs-* 2>/dev/null | head -1)
check "its image cache is the daemon's folder in the workdir" \
	test -n "$MH" -a -d "$WD/$MH/images" -a ! -L "$WD/$MH"
# a user puts a link in place of the folder: the daemon must not write
# through it (as root, into a folder the link names)
rm -rf "${WD:?}/$MH"
as $UA ln -s "$T/elsewhere" "$WD/$MH"
mk w2 wds true
sub w2 2>/dev/null
check "the image cache through a user's link: the run ends" wait_final "$MNT/runs/w2" 120
eq "… Failed" Failed "$(st w2)"
check "… saying the folder is not the daemon's" grep -q "is not the daemon's own folder" \
	"$MNT/runs/w2/error"
eq "… nothing was made where the link points" "" "$(ls -A "$T/elsewhere")"

# ---- inputs and an array in the image (a root job) -----------------------------
# Each task is a container of its own, with its index; the inputs are
# read-only at /mlfs/inputs/NAME, opened with the creator's rights.
mk arr sl 'echo "task $MLFS_ARRAY_INDEX/$MLFS_ARRAY_COUNT $(id -u) $(cat "$MLFS_INPUT_d/f") $(cat "$MLFS_INPUT_one") $MLFS_INPUT_d"
cat /etc/mlfs-marker
if touch "$MLFS_INPUT_d/new" 2>/dev/null; then echo wrote; else echo read-only; fi'
as $UA sh -c "printf 'd $IN/d\none $IN/one\n' > '$MNT/runs/arr/inputs'; echo 'array = 0-2' > '$MNT/runs/arr/resources'"
sub arr
check "an array with inputs in an environment ends" wait_final "$MNT/runs/arr" 120
eq "… Completed" Completed "$(st arr)"
[[ $(st arr) == Completed ]] || sed 's/^/# /' "$MNT/runs/arr/error" "$MNT"/runs/arr/tasks/*/log
for k in 0 1 2; do
	eq "… task $k: Completed, its index, the creator, both inputs at /mlfs/inputs" \
		"Completed|task $k/3 $(id -u $UA) data-in one-file /mlfs/inputs/d" \
		"$(cat "$MNT/runs/arr/tasks/$k/status")|$(grep '^task ' "$MNT/runs/arr/tasks/$k/log")"
done
eq "… each task in the image, the input read-only" "3 3" \
	"$(cat "$MNT"/runs/arr/tasks/*/log | grep -c inside-the-image) $(cat "$MNT"/runs/arr/tasks/*/log | grep -cx read-only)"
eq "… the input folder unchanged" "f" "$(ls "$IN/d")"
check "… no container left" none_ours

# the creator's link to a file in a folder only root may enter: the root
# job opens it as the creator, and fails
mkdir -m 700 "$T/secret"
echo top-secret-words > "$T/secret/s"
chmod 644 "$T/secret/s"
mkdir "$T/ul" && chown $UA "$T/ul"
as $UA ln -s "$T/secret/s" "$T/ul/link"
mk sneak sl 'cat "$MLFS_INPUT_s"; ls -l /mlfs/inputs'
as $UA sh -c "echo 's $T/ul/link' > '$MNT/runs/sneak/inputs'"
sub sneak
check "an input the creator cannot open: the run ends" wait_final "$MNT/runs/sneak" 120
eq "… Failed" Failed "$(st sneak)"
check "… saying so" grep -qE "^input $T/ul/link: cannot open it: Permission denied \(on node[12]\)$" \
	"$MNT/runs/sneak/error"
check "… one sentence" has_sentence "$MNT/runs/sneak/error"
check "… nothing of the file shows" sh -c "! grep -rq top-secret '$MNT/runs/sneak/'"
check "… no container left" none_ours

# ---- a running array canceled: no task's container is left -----------------------
mk arrlong sl 'echo started; sleep 300'
as $UA sh -c "echo 'array = 0-1' > '$MNT/runs/arrlong/resources'"
sub arrlong
check "a long array: both tasks' containers run" \
	wait_until 90 sh -c "[ \$('$NPOD' ps --format '{{.Names}}' | grep -c '^$CT_PREFIX.*-t[01]\$') = 2 ]"
wr "$MNT/runs/arrlong/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/arrlong/status" Canceled 60
check "… no task's container left" wait_until 60 none_ours

# ---- GPUs by CDI ---------------------------------------------------------------------
# The test cluster's nodes have 2 GPUs each (gres.conf: /dev/null, /dev/zero).
mk gpu0 sl 'echo "$CUDA_VISIBLE_DEVICES"'
as $UA sh -c "echo 'gpus = 1' > '$MNT/runs/gpu0/resources'"
if grep -qs 'nvidia.com/gpu' /etc/cdi/* /var/run/cdi/*; then
	echo "# this machine has a CDI spec for nvidia.com/gpu: its absence is not tried"
else
	sub gpu0
	check "GPUs on a node without a CDI spec: the run ends" wait_final "$MNT/runs/gpu0" 60
	eq "… Failed" Failed "$(st gpu0)"
	check "… with the sentence, naming the node" \
		grep -qE "^environment: the run asks for GPUs and node[12] has no CDI spec for nvidia.com/gpu" \
		"$MNT/runs/gpu0/error"
	check "… one sentence" has_sentence "$MNT/runs/gpu0/error"
fi
fake_cdi "$CDI_SPEC"

# ---- nodes = 2, procs_per_node = 2, 2 GPUs a node: a container a node ---------------
mk dist sl 'echo "r $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $NODE_RANK $MLFS_NODE_RANK $MLFS_NUM_NODES $MASTER_ADDR $MASTER_PORT [$CUDA_VISIBLE_DEVICES] ${MLFS_TEST_GPU0:-no} ${MLFS_TEST_GPU1:-no}"
cat /etc/mlfs-marker'
as $UA sh -c "printf 'nodes = 2\nprocs_per_node = 2\ngpus = 2\n' > '$MNT/runs/dist/resources'"
sub dist
check "nodes = 2 × procs_per_node = 2 in an environment ends" wait_final "$MNT/runs/dist" 180
eq "… Completed" Completed "$(st dist)"
[[ $(st dist) == Completed ]] || sed 's/^/# /' "$MNT/runs/dist/error" "$MNT/runs/dist/log"
L=$(grep -E '^[0-3]: r ' "$MNT/runs/dist/log" | sort)
eq "… four ranks, each line prefixed with its RANK" "0 1 2 3" \
	"$(echo "$L" | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//')"
eq "… RANK = NODE_RANK × 2 + LOCAL_RANK, WORLD_SIZE 4, LOCAL_WORLD_SIZE 2, 2 nodes" \
	"0:4:0:2:0:0:2 1:4:1:2:0:0:2 2:4:0:2:1:1:2 3:4:1:2:1:1:2" \
	"$(echo "$L" | awk '{printf "%s%s:%s:%s:%s:%s:%s:%s", (NR > 1 ? " " : ""), $3, $4, $5, $6, $7, $8, $9}')"
eq "… one MASTER_ADDR and MASTER_PORT for all" 1 \
	"$(echo "$L" | awk '{print $10, $11}' | sort -u | wc -l)"
check "… MASTER_ADDR is the batch host's" sh -c "echo '$L' | awk '{print \$10}' | grep -qx 127.0.0.1"
eq "… each node's 2 GPUs by CDI (--device nvidia.com/gpu=0 and 1), one a rank, numbered from 0 inside" \
	"[0] [1] [0] [1] given given" \
	"$(echo "$L" | awk '{print $12}' | tr '\n' ' ')$(echo "$L" | awk '{print $13, $14}' | sort -u)"
eq "… every rank in the image" 4 "$(grep -c 'inside-the-image' "$MNT/runs/dist/log")"
check "… no container left" none_ours
# a rank of node 1 fails while node 0's sleep: the run fails with its
# code, node 0's container is stopped too (srun --kill-on-bad-exit)
mk distfail sl 'if [ "$NODE_RANK" = 1 ]; then sleep 1; exit 3; fi; echo up; sleep 300'
as $UA sh -c "printf 'nodes = 2\n' > '$MNT/runs/distfail/resources'"
sub distfail
check "nodes = 2, a node's command fails: the run ends" wait_final "$MNT/runs/distfail" 120
eq "… Failed, with that code" "Failed 3" "$(st distfail) $(cat "$MNT/runs/distfail/exit_code")"
[[ $(st distfail) == Failed ]] || sed 's/^/# /' "$MNT/runs/distfail/error" "$MNT/runs/distfail/log"
check "… the other node's container is gone too" wait_until 60 none_ours
# cancel of a run on two nodes: each node's container stops
mk distlong sl 'echo up; sleep 300'
as $UA sh -c "printf 'nodes = 2\n' > '$MNT/runs/distlong/resources'"
sub distlong
check "nodes = 2: a container runs on each node (NAME-n0, NAME-n1)" \
	wait_until 90 sh -c "[ \$('$NPOD' ps --format '{{.Names}}' | grep -c '^$CT_PREFIX.*-n[01]\$') = 2 ]"
wr "$MNT/runs/distlong/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/distlong/status" Canceled 60
check "… no node's container left" wait_until 60 none_ours
rm -f "$CDI_SPEC"

# ---- bad cases of these ----------------------------------------------------------------
# a job user that is not root mounts the paths itself: one podman cannot
mkdir -p "$T/a:b"
chmod 755 "$T/a:b"
mku colon 'true'
as $US sh -c "echo 'c $T/a:b' > '$MNT/runs/colon/inputs'"
UA=$US sub colon
check "an input whose path holds ':' on a rootless job: the run ends" wait_final "$MNT/runs/colon" 60
eq "… Failed" Failed "$(st colon)"
check "… saying why" grep -q "holds a ':', which podman's --volume cannot mount" "$MNT/runs/colon/error"
check "… one sentence" has_sentence "$MNT/runs/colon/error"

done_testing
