#!/usr/bin/env bash
# Targets of type local: provisioning and its refusals, nodes, FIFO with
# max_concurrent, live config changes, deprovision, the built-in local
# target, and GPUs handed out through CUDA_VISIBLE_DEVICES (a fake
# nvidia-smi first in the daemon's PATH).
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EBUSY="Device or resource busy"
EROFS="Read-only file system"
EPERM="Operation not permitted"

# refused DESC ERRNO_TEXT DIR ERROR_ERE COMMAND...: errno, then a sentence
# in DIR/error matching ERROR_ERE.
refused() {
	local d=$1 want=$2 dir=$3 pat=$4
	shift 4
	expect_err "$d: fails with '$want'" "$want" "$@"
	if has_sentence "$dir/error" && grep -qiE -- "$pat" "$dir/error"; then
		ok "$d: error says why"
	else
		not_ok "$d: error says why, matching /$pat/ (got '$(cat "$dir/error" 2>&1)')"
	fi
}

# newrun NAME TARGET COMMAND [RESOURCES]: a Draft run, ready to submit.
newrun() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/target" "$2"
	wr "$MNT/runs/$1/command" "$3"
	[[ -z "${4:-}" ]] || wr "$MNT/runs/$1/resources" "$4"
}

active() {	# active STATUS: 0 when Starting or Running
	[[ $1 == Starting || $1 == Running ]]
}

# line number of the first events line matching ERE (0 if none)
ev_line() {
	local n
	n=$(grep -nE -- "$1" "$MNT/events" | head -1 | cut -d: -f1)
	echo "${n:-0}"
}

mount_or_bail

# ---- provisioning and its refusals ------------------------------------------
TG=$MNT/targets/t1
check "mkdir targets/t1" mkdir "$TG"
eq "t1 is Draft" Draft "$(cat "$TG/status")"
for f in type config ctl status error nodes info.json; do
	check "t1 has $f" test -f "$TG/$f"
done
eq "t1 ctl lists provision" provision "$(cat "$TG/ctl")"
eq "t1 nodes empty while Draft" "" "$(cat "$TG/nodes")"
refused "provision without a type" "$EINVAL" "$TG" "type" wr "$TG/ctl" provision
eq "t1 still Draft" Draft "$(cat "$TG/status")"
# each bad type or config in a target of its own (no overwrites needed)
i=0
for bad in "kubernetes||kubernetes" "local|colour = blue|colour" \
	"local|max_concurrent = 0|max_concurrent" \
	"local|max_concurrent = many|many" \
	"local|max_concurrent = -3|max_concurrent" \
	"local|cancel_grace_seconds = -1|cancel_grace_seconds" \
	"local|max_concurrent = 1 2|max_concurrent" \
	"local|just words|just words"; do
	i=$((i + 1))
	ty=${bad%%|*} rest=${bad#*|} cf=${rest%|*} pat=${rest#*|}
	B=$MNT/targets/bad$i
	mkdir "$B"
	# refused by the write of type or config when it alone is wrong
	refused "provision type '$ty' config '$cf'" "$EINVAL" "$B" "$pat" \
		bash -c "echo '$ty' > '$B/type' &&
			{ [ -z '$cf' ] || echo '$cf' > '$B/config'; } &&
			echo provision > '$B/ctl'"
	eq "type '$ty' config '$cf': target stays Draft" Draft "$(cat "$B/status")"
	rmdir "$B"
done
wr "$TG/type" local
printf 'max_concurrent = 1\n' > "$TG/config"
check "provision local with max_concurrent = 1" wr "$TG/ctl" provision
check "t1 Succeeded" wait_for "$TG/status" Succeeded 10
eq "t1 error empty" "" "$(cat "$TG/error")"
check "events: t1 Creating" grep -qE ' target t1 Creating$' "$MNT/events"
check "events: t1 Succeeded" grep -qE ' target t1 Succeeded$' "$MNT/events"
nodes=$(cat "$TG/nodes")
eq "nodes is one line" 1 "$(printf '%s\n' "$nodes" | grep -c .)"
read -r nname nstate ncpus nmem ngpus nextra <<<"$nodes"
check "nodes: a name" test -n "$nname"
eq "nodes: state up" up "$nstate"
eq "nodes: cpus = cores" "$(nproc)" "$ncpus"
check "nodes: memory with a unit ($nmem)" eval "[[ '$nmem' =~ ^[0-9]+[KMGT]i?B?$ ]]"
eq "nodes: gpus 0 without nvidia-smi" 0 "$ngpus"
eq "nodes: exactly five fields" "" "$nextra"
check "t1 info.json is valid JSON" json_ok "$TG/info.json"
check "t1 info.json lists the node" grep -q "\"$nname\"" "$TG/info.json"
eq "t1 ctl on Succeeded" "provision deprovision" "$(cat "$TG/ctl" | tr '\n' ' ' | sed 's/ $//')"
expect_err "type is frozen on a Succeeded target" "$EROFS" wr "$TG/type" slurm
eq "type unchanged" local "$(cat "$TG/type")"

# ---- FIFO with max_concurrent = 1 ----------------------------------------------
for r in f1 f2 f3; do newrun $r t1 'sleep 1'; done
for r in f1 f2 f3; do wr "$MNT/runs/$r/ctl" submit; done
maxact=0 polls=0 end=$(deadline 20)
while (($(now_ms) < end)); do
	# later runs first: the reads are not one snapshot, and one that saw
	# f2 start must not see f1 running from an older read
	s3=$(cat "$MNT/runs/f3/status") s2=$(cat "$MNT/runs/f2/status")
	s1=$(cat "$MNT/runs/f1/status")
	n=0
	for s in "$s1" "$s2" "$s3"; do active "$s" && n=$((n + 1)); done
	((n > maxact)) && maxact=$n
	polls=$((polls + 1))
	[[ $s1 == Completed && $s2 == Completed && $s3 == Completed ]] && break
	sleep 0.05
done
eq "FIFO: all three Completed" "Completed Completed Completed" "$s1 $s2 $s3"
eq "FIFO: at most one active at any time ($polls polls)" 1 "$maxact"
l1=$(ev_line ' run f1 Running$') l2=$(ev_line ' run f2 Running$')
l3=$(ev_line ' run f3 Running$')
check "FIFO: start order f1 < f2 < f3 in events ($l1 $l2 $l3)" \
	test "$l1" -gt 0 -a "$l1" -lt "$l2" -a "$l2" -lt "$l3"
c1=$(ev_line ' run f1 Completed$') c2=$(ev_line ' run f2 Completed$')
check "FIFO: f2 starts after f1 ended" test "$c1" -gt 0 -a "$c1" -lt "$l2"
check "FIFO: f3 starts after f2 ended" test "$c2" -gt 0 -a "$c2" -lt "$l3"
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' "$@"; }
e1=$(json "$MNT/runs/f1/info.json" ended) s2t=$(json "$MNT/runs/f2/info.json" started)
check "FIFO: info.json f2.started ($s2t) >= f1.ended ($e1)" test -n "$e1" -a ! "$s2t" \< "$e1"

# ---- live change of max_concurrent ----------------------------------------------
printf 'max_concurrent = 2\n' > "$TG/config"
ev_up=$(ev_count ' target t1 Updating$')
check "provision applies a live change" wr "$TG/ctl" provision
check "t1 back to Succeeded" wait_for "$TG/status" Succeeded 10
check "events: t1 went through Updating" \
	test "$(ev_count ' target t1 Updating$')" -gt "$ev_up"
newrun g1 t1 "while [ ! -e $T/go-g ]; do sleep 0.05; done"
newrun g2 t1 "while [ ! -e $T/go-g ]; do sleep 0.05; done"
wr "$MNT/runs/g1/ctl" submit
wr "$MNT/runs/g2/ctl" submit
check "max_concurrent = 2 takes effect: g1 and g2 run together" \
	wait_until 5 eval '[[ $(cat $MNT/runs/g1/status) == Running && $(cat $MNT/runs/g2/status) == Running ]]'
check "provision with no change is accepted" wr "$TG/ctl" provision
eq "and leaves t1 Succeeded" Succeeded "$(cat "$TG/status")"
# ---- deprovision ------------------------------------------------------------------
check "g1 Running" wait_for "$MNT/runs/g1/status" Running 5
refused "deprovision with active runs" "$EBUSY" "$TG" "active|run" \
	wr "$TG/ctl" deprovision
eq "t1 stays Succeeded" Succeeded "$(cat "$TG/status")"
touch "$T/go-g"
check "g1 Completed" wait_for "$MNT/runs/g1/status" Completed 10
check "g2 Completed" wait_for "$MNT/runs/g2/status" Completed 10
check "deprovision" wr "$TG/ctl" deprovision
check "t1 Draft after deprovision" wait_for "$TG/status" Draft 10
check "events: t1 Deleting" grep -qE ' target t1 Deleting$' "$MNT/events"
eq "nodes empty after deprovision" "" "$(cat "$TG/nodes")"
check "type writable again in Draft" wr "$TG/type" local
newrun h1 t1 'true'
expect_err "submit to a deprovisioned target" "$EBUSY" wr "$MNT/runs/h1/ctl" submit
expect_err "deprovision a Draft target" "$EBUSY" wr "$TG/ctl" deprovision

# ---- a refused change on a Succeeded target -------------------------------
T2=$MNT/targets/t2
mkdir "$T2"
wr "$T2/type" local
wr "$T2/config" "max_concurrent = 1"
wr "$T2/ctl" provision
check "t2 Succeeded" wait_for "$T2/status" Succeeded 10
printf 'max_concurrent = 1\nregion = mars\n' > "$T2/config"
refused "an unknown key on a Succeeded target" "$EINVAL" "$T2" "region" \
	wr "$T2/ctl" provision
eq "t2 stays Succeeded after a refused change" Succeeded "$(cat "$T2/status")"
newrun t2r t2 'echo fine'
wr "$MNT/runs/t2r/ctl" submit
check "t2 still runs jobs after the refused change" \
	wait_for "$MNT/runs/t2r/status" Completed 10

# ---- the built-in local target ------------------------------------------------------
LC=$(cat "$MNT/targets/local/config")
expect_err "rmdir targets/local" "$EPERM" rmdir "$MNT/targets/local"
expect_err "rm -r targets/local" "$EPERM" rm -r "$MNT/targets/local"
eq "local still Succeeded" Succeeded "$(cat "$MNT/targets/local/status")"
eq "local config survives the refused rm -r" "$LC" "$(cat "$MNT/targets/local/config")"
eq "local type survives the refused rm -r" local "$(cat "$MNT/targets/local/type")"
check "rmdir a Draft target" rmdir "$TG"
check "t1 gone" test ! -e "$TG"
check "unmount exits 0" unmount_ws

# ---- GPUs ------------------------------------------------------------------------------
mkdir -p "$T/bin"
cat > "$T/bin/nvidia-smi" <<'SH'
#!/bin/sh
# fake: two Tesla T4, whatever the arguments
printf '0, Tesla T4, 15360\n1, Tesla T4, 15360\n'
SH
chmod +x "$T/bin/nvidia-smi"
eq "the fake nvidia-smi answers" 2 "$(PATH="$T/bin:$PATH" nvidia-smi | wc -l)"
PATH="$T/bin:$PATH" mount_or_bail "mount with the fake nvidia-smi first in PATH"
GT=$MNT/targets/gpu
mkdir "$GT"
wr "$GT/type" local
wr "$GT/config" "max_concurrent = 4"
wr "$GT/ctl" provision
check "gpu target Succeeded" wait_for "$GT/status" Succeeded 10
read -r _ _ _ _ g <<<"$(cat "$GT/nodes")"
eq "gpu target nodes shows 2 GPUs" 2 "$g"
check "local target's nodes shows 2 GPUs too (refreshed at start)" \
	wait_until 5 eval '[[ $(cat $MNT/targets/local/nodes | cut -d" " -f5) == 2 ]]'

CVD='echo "cvd=[${CUDA_VISIBLE_DEVICES-unset}]"'
newrun c1 gpu "$CVD" "gpus = 1"
wr "$MNT/runs/c1/ctl" submit
check "c1 Completed" wait_for "$MNT/runs/c1/status" Completed 10
check "gpus = 1 gets CUDA_VISIBLE_DEVICES 0 or 1 ($(cat "$MNT/runs/c1/log"))" \
	grep -qxE 'cvd=\[[01]\]' "$MNT/runs/c1/log"

# a1 and a2 hold the two GPUs until the test lets them go
newrun a1 gpu "$CVD; while [ ! -e $T/go-gpu ]; do sleep 0.05; done" "gpus = 1"
newrun a2 gpu "$CVD; while [ ! -e $T/go-gpu ]; do sleep 0.05; done" "gpus = 1"
newrun a3 gpu "$CVD" "gpus = 1"
wr "$MNT/runs/a1/ctl" submit
wr "$MNT/runs/a2/ctl" submit
check "a1 Running" wait_for "$MNT/runs/a1/status" Running 5
check "a2 Running" wait_for "$MNT/runs/a2/status" Running 5
wr "$MNT/runs/a3/ctl" submit
check "a1 printed its GPU" wait_until 5 grep -q cvd= "$MNT/runs/a1/log"
check "a2 printed its GPU" wait_until 5 grep -q cvd= "$MNT/runs/a2/log"
g1=$(cat "$MNT/runs/a1/log") g2=$(cat "$MNT/runs/a2/log")
check "a1 got one GPU ($g1)" eval "[[ '$g1' =~ ^cvd=\\[[01]\\]\$ ]]"
check "a2 got one GPU ($g2)" eval "[[ '$g2' =~ ^cvd=\\[[01]\\]\$ ]]"
check "two GPU runs at once get different GPUs" test "$g1" != "$g2"
sleep 0.5	# the worker would have started a3 by now if it were to
s1=$(cat "$MNT/runs/a1/status") s2=$(cat "$MNT/runs/a2/status")
s3=$(cat "$MNT/runs/a3/status")
eq "a1 and a2 still Running (they wait for the test)" "Running Running" "$s1 $s2"
eq "a third GPU run waits Queued while both GPUs are busy" Queued "$s3"
touch "$T/go-gpu"
check "a3 Completed once a GPU is free" wait_for "$MNT/runs/a3/status" Completed 15
check "a3 got one GPU" grep -qxE 'cvd=\[[01]\]' "$MNT/runs/a3/log"
py_gpus=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gpus"])' "$MNT/runs/a3/info.json" 2>&1)
eq "a3 info.json gpus matches the log" "$(sed -n 's/^cvd=\[\(.*\)\]$/\1/p' "$MNT/runs/a3/log")" "$py_gpus"

newrun b2 gpu "$CVD" "gpus = 2"
wr "$MNT/runs/b2/ctl" submit
check "b2 (gpus = 2) Completed" wait_for "$MNT/runs/b2/status" Completed 10
check "gpus = 2 gets both GPUs" grep -qxE 'cvd=\[(0,1|1,0)\]' "$MNT/runs/b2/log"

newrun x3 gpu "$CVD" "gpus = 3"
refused "gpus = 3 on a 2-GPU target" "$EINVAL" "$MNT/runs/x3" "3.*2|gpu" \
	wr "$MNT/runs/x3/ctl" submit
eq "x3 stays Draft" Draft "$(cat "$MNT/runs/x3/status")"

newrun z0 gpu "$CVD" "gpus = 0"
wr "$MNT/runs/z0/ctl" submit
check "z0 Completed" wait_for "$MNT/runs/z0/status" Completed 10
eq "gpus = 0 on a GPU target sees CUDA_VISIBLE_DEVICES empty" "cvd=[]" \
	"$(cat "$MNT/runs/z0/log")"

# after a restart the target still hands out its GPUs
check "unmount" unmount_ws
PATH="$T/bin:$PATH" mount_or_bail "remount with the fake nvidia-smi"
newrun r1 gpu "$CVD" "gpus = 1"
wr "$MNT/runs/r1/ctl" submit
check "after a remount a gpus = 1 run starts and completes" \
	wait_for "$MNT/runs/r1/status" Completed 10
check "and gets a GPU" grep -qxE 'cvd=\[[01]\]' "$MNT/runs/r1/log"
[[ $(cat "$MNT/runs/r1/status") == Completed ]] || wr "$MNT/runs/r1/ctl" cancel

check "unmount exits 0" unmount_ws
done_testing
