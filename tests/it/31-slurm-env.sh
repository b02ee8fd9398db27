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
# also of a command that ignores TERM; kill -9 of the daemon during a run:
# adopted, it completes; a node without podman, a container podman
# refuses and an image that does not load fail the run with a sentence;
# nodes > 1 is refused.
source "$(dirname "$0")/../lib.sh"

NS=$T/nodestore
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
	[[ -n ${IMG:-} ]] && podman rmi -f "$IMG" >/dev/null 2>&1
	return 0
}

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
BB=/bin/busybox
[[ -x $BB ]] || { echo "1..0 # SKIP busybox-static is not installed (scripts/deps.sh test)"; exit 0; }

# ---- the image: busybox and a file only the image has ----------------------
R=$T/rootfs
mkdir -p "$R"/{bin,tmp,etc,proc,sys,dev,run,root,work}
cp "$BB" "$R/bin/busybox"
for c in $("$BB" --list); do
	[[ $c == busybox ]] || ln -sf busybox "$R/bin/$c"
done
chmod 1777 "$R/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
echo "inside-the-image $$" > "$R/etc/mlfs-marker"
tar -C "$R" --numeric-owner --owner=0 --group=0 -cf "$T/marked.tar" .
rm -rf "$R"
chmod 644 "$T/marked.tar"
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

mk second sl 'cat /etc/mlfs-marker; echo "gpus $CUDA_VISIBLE_DEVICES"'
as $UA sh -c "echo 'gpus = 1' > '$MNT/runs/second/resources'"
sub second
check "a second run ends" wait_final "$MNT/runs/second" 120
eq "… Completed" Completed "$(st second)"
check "… in the image" grep -q "inside-the-image" "$MNT/runs/second/log"
check "… with the GPU Slurm gave the job (CUDA_VISIBLE_DEVICES)" \
	grep -qx "gpus [0-9]" "$MNT/runs/second/log"
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
mku rootless2 'true'
UA=$US sub rootless2
check "a second run as $US ends" wait_final "$MNT/runs/rootless2" 120
eq "… Completed" Completed "$(st rootless2)"
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
mk adopt sl 'sleep 4; echo done > outputs/d'
sub adopt
check "Running before the crash" wait_for "$MNT/runs/adopt/status" Running 60
crash_ws
remount_or_bail "remount during a run in a container on a node" -o allow_other
check "the run is adopted and completes" wait_for "$MNT/runs/adopt/status" Completed 60
eq "… its output" done "$(cat "$MNT/runs/adopt/outputs/d" 2>/dev/null)"
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

mk two sl true
as $UA sh -c "echo 'nodes = 2' > '$MNT/runs/two/resources'"
expect_err "nodes = 2 in an environment: EINVAL" "Invalid argument" sub two
check "… with a sentence" grep -q "nodes > 1" "$MNT/runs/two/error"
for what in "array = 0-2" "procs_per_node = 2"; do
	as $UA sh -c "echo '$what' > '$MNT/runs/two/resources'"
	expect_err "$what in an environment on slurm: EINVAL" "Invalid argument" sub two
	check "… with a sentence" grep -q "does not run in an environment on a slurm target yet" \
		"$MNT/runs/two/error"
done
eq "… still Draft" Draft "$(st two)"

done_testing
