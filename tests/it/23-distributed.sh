#!/usr/bin/env bash
# procs_per_node: bad values refused inside the write of resources; on the
# local target 3 processes that get RANK, WORLD_SIZE, LOCAL_RANK,
# LOCAL_WORLD_SIZE, NODE_RANK, MASTER_ADDR, MASTER_PORT (checked by a
# stdlib-only script that also meets at MASTER_ADDR:MASTER_PORT), their
# GPUs split, their lines prefixed in log, the first failure ending the
# others, cancel and the time limit stopping all; the same on an ssh
# target (a shell launcher on the host); on Slurm 2 nodes x 2
# processes; a torch.distributed gloo all-reduce (env://, unchanged) on
# both when python3-torch is there (scripts/deps.sh torch), else skipped.
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"

# The stdlib-only rank script: its variables to outputs/rank-R.json, and a
# rendezvous: rank 0 listens on MASTER_PORT, every other rank connects to
# MASTER_ADDR:MASTER_PORT and sends its rank (the bounds below only stop a
# broken run from hanging the test).
cat >"$T/ranks.py" <<'PY'
import json, os, socket, time
keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK",
        "MLFS_NODE_RANK", "MLFS_NUM_NODES", "MASTER_ADDR", "MASTER_PORT",
        "CUDA_VISIBLE_DEVICES"]
env = {k: os.environ.get(k) for k in keys}
env["host"] = socket.gethostname()
rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
port = int(env["MASTER_PORT"])
if rank == 0:
    srv = socket.create_server(("", port))
    srv.settimeout(600)
    peers = [0]
    for _ in range(world - 1):
        c, _ = srv.accept()
        peers.append(int(c.recv(16).decode()))
        c.close()
    env["peers"] = sorted(peers)
else:
    end = time.time() + 600
    while True:
        try:
            c = socket.create_connection((env["MASTER_ADDR"], port), 10)
            break
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.05)
    c.sendall(str(rank).encode())
    c.close()
with open(os.path.join(os.environ["MLFS_OUTPUTS"], "rank-%d.json" % rank),
          "w") as f:
    json.dump(env, f)
print("rank %d of %d done" % (rank, world), flush=True)
PY

# check_ranks OUTPUTS NODES PPN [GPUS_PER_PROC]: every rank's file is there
# and its values agree with the shape; prints what is wrong.
cat >"$T/check.py" <<'PY'
import json, os, sys
out, nodes, ppn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gpp = int(sys.argv[4]) if len(sys.argv) > 4 else None
world, bad, ports, gpus = nodes * ppn, [], set(), []
for r in range(world):
    p = os.path.join(out, "rank-%d.json" % r)
    if not os.path.exists(p):
        bad.append("no rank-%d.json" % r)
        continue
    e = json.load(open(p))
    want = {"RANK": r, "WORLD_SIZE": world, "LOCAL_RANK": r % ppn,
            "LOCAL_WORLD_SIZE": ppn, "NODE_RANK": r // ppn,
            "MLFS_NODE_RANK": r // ppn, "MLFS_NUM_NODES": nodes}
    for k, v in want.items():
        if e.get(k) != str(v):
            bad.append("rank %d: %s=%s, not %s" % (r, k, e.get(k), v))
    if not e.get("MASTER_ADDR") or not (e.get("MASTER_PORT") or "").isdigit():
        bad.append("rank %d: MASTER_ADDR/PORT %s:%s" % (r, e.get("MASTER_ADDR"),
                                                       e.get("MASTER_PORT")))
    ports.add((e.get("MASTER_ADDR"), e.get("MASTER_PORT")))
    if r == 0 and e.get("peers") != list(range(world)):
        bad.append("rank 0 met %s" % e.get("peers"))
    if gpp is not None:
        g = [x for x in (e.get("CUDA_VISIBLE_DEVICES") or "").split(",") if x]
        if len(g) != gpp:
            bad.append("rank %d: CUDA_VISIBLE_DEVICES=%s" %
                       (r, e.get("CUDA_VISIBLE_DEVICES")))
        gpus.append((r // ppn, tuple(g)))
if len(ports) > 1:
    bad.append("ranks disagree on the master: %s" % sorted(ports))
if gpp and len(set(gpus)) != len(gpus):
    bad.append("two ranks of a node share GPUs: %s" % gpus)
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
check_ranks() {
	local why
	why=$(python3 "$T/check.py" "$@" 2>&1) && return 0
	echo "# $why" >&2
	return 1
}

# newrun NAME COMMAND RESOURCES [TARGET]: a Draft run with ranks.py.
newrun() {
	mkdir "$MNT/runs/$1" && cp "$T/ranks.py" "$MNT/runs/$1/ranks.py" &&
		wr "$MNT/runs/$1/command" "$2" &&
		printf '%s\n' "$3" >"$MNT/runs/$1/resources" || return 1
	[[ -z ${4:-} ]] || wr "$MNT/runs/$1/target" "$4"
}
submit() { wr "$MNT/runs/$1/ctl" submit; }
st() { cat "$MNT/runs/$1/status"; }
all_gone() {	# all_gone FILE: none of the pids in FILE is alive
	local p
	for p in $(cat "$1" 2>/dev/null); do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}
# the python3 of the runs' default PATH (not a pyenv of the test's shell)
has_torch() {
	PATH=/usr/local/bin:/usr/bin:/bin python3 -c 'import torch.distributed' \
		2>/dev/null
}

# The all-reduce of the issue, torch's env:// as documented, unchanged:
# every rank adds rank + 1, so the sum is WORLD_SIZE (WORLD_SIZE + 1) / 2.
cat >"$T/allreduce.py" <<'PY'
import os
import torch
import torch.distributed as dist
dist.init_process_group("gloo", init_method="env://")
t = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(t)
with open(os.path.join(os.environ["MLFS_OUTPUTS"],
                       "sum-%d" % dist.get_rank()), "w") as f:
    f.write("%d %d\n" % (dist.get_world_size(), int(t.item())))
dist.destroy_process_group()
PY
# sums_ok OUTPUTS WORLD: every rank saw "WORLD SUM".
sums_ok() {
	local r want="$2 $(($2 * ($2 + 1) / 2))"
	for ((r = 0; r < $2; r++)); do
		[[ $(cat "$1/sum-$r" 2>/dev/null) == "$want" ]] || {
			echo "# rank $r: '$(cat "$1/sum-$r" 2>/dev/null)', not '$want'" >&2
			return 1
		}
	done
}

# ---- the local target (4 fake GPUs) ---------------------------------------------
mkdir -p "$T/bin"
cat >"$T/bin/nvidia-smi" <<'SH'
#!/bin/sh
# fake: four Tesla T4, whatever the arguments
for i in 0 1 2 3; do echo "$i, Tesla T4, 15360"; done
SH
chmod +x "$T/bin/nvidia-smi"
PATH="$T/bin:$PATH" mount_or_bail "mount with a fake nvidia-smi (4 GPUs)"
check "the local target sees 4 GPUs" wait_until 5 eval \
	'[[ $(cut -d" " -f5 "$MNT/targets/local/nodes") == 4 ]]'

# ---- refused inside the write -----------------------------------------------------
mkdir "$MNT/runs/bad"
wr "$MNT/runs/bad/resources" "cpus = 1"
for v in 0 257 four 2.5 -1 ""; do
	expect_err "procs_per_node = '$v' refused" "$EINVAL" \
		wr "$MNT/runs/bad/resources" "procs_per_node = $v"
done
check "the reason is in error" grep -q \
	"procs_per_node must be an integer from 1 to 256" "$MNT/runs/bad/error"
check "error is one sentence" has_sentence "$MNT/runs/bad/error"
wr "$MNT/runs/bad/resources" "cpus = 1"
expect_err "a bad line appended refused" "$EINVAL" \
	eval "echo 'procs_per_node = 0' >>'$MNT/runs/bad/resources'"
eq "resources kept its content" "cpus = 1" "$(cat "$MNT/runs/bad/resources")"
expect_err "gpus = 3 over procs_per_node = 2 refused" "$EINVAL" \
	wr "$MNT/runs/bad/resources" $'gpus = 3\nprocs_per_node = 2'
check "the uneven split is explained" grep -q \
	"gpus = 3 does not split evenly across procs_per_node = 2" \
	"$MNT/runs/bad/error"
check "procs_per_node = 256 accepted" \
	wr "$MNT/runs/bad/resources" "procs_per_node = 256"

# ---- 3 processes, their variables -------------------------------------------------
newrun three "python3 ranks.py" "procs_per_node = 3"
wr "$MNT/runs/three/env" "RANK=7"	# the launcher's own value wins
submit three
check "three: Completed" wait_for "$MNT/runs/three/status" Completed 60
check "three: every rank's variables, and they met at the master" \
	check_ranks "$MNT/runs/three/outputs" 1 3
eq "three: MASTER_ADDR is 127.0.0.1" 127.0.0.1 "$(python3 -c \
	'import json,sys; print(json.load(open(sys.argv[1]))["MASTER_ADDR"])' \
	"$MNT/runs/three/outputs/rank-0.json")"
for r in 0 1 2; do
	check "three: rank $r's line in log, prefixed" \
		grep -qx "$r: rank $r of 3 done" "$MNT/runs/three/log"
done
eq "three: exit code 0" 0 "$(cat "$MNT/runs/three/exit_code")"

# a run of one process is as before: no distributed variables
newrun one 'echo "rank=[${RANK-unset}] port=[${MASTER_PORT-unset}]"' ""
submit one
check "one: Completed" wait_for "$MNT/runs/one/status" Completed 30
eq "one: no RANK, no MASTER_PORT, no prefix" "rank=[unset] port=[unset]" \
	"$(cat "$MNT/runs/one/log")"

# ---- GPUs split -------------------------------------------------------------------
newrun gsplit "python3 ranks.py" $'procs_per_node = 2\ngpus = 4'
submit gsplit
check "gsplit: Completed" wait_for "$MNT/runs/gsplit/status" Completed 60
check "gsplit: 2 GPUs each, none shared" \
	check_ranks "$MNT/runs/gsplit/outputs" 1 2 2
newrun gnone "python3 ranks.py" $'procs_per_node = 2'
submit gnone
check "gnone: Completed" wait_for "$MNT/runs/gnone/status" Completed 60
check "gnone: gpus = 0 hides the GPUs from every process" \
	check_ranks "$MNT/runs/gnone/outputs" 1 2 0

# ---- the first failure ends the others --------------------------------------------
# every rank notes its pid; rank 1 fails once all three are there
FAILING='echo $$ >>"$MLFS_OUTPUTS/pids"
if [ "$RANK" = %s ]; then
	while [ $(wc -l <"$MLFS_OUTPUTS/pids") -lt %s ]; do sleep 0.05; done
	exit %s
fi
exec sleep 100000'
# shellcheck disable=SC2059
newrun fail "$(printf "$FAILING" 1 3 3)" "procs_per_node = 3"
submit fail
check "fail: Failed" wait_for "$MNT/runs/fail/status" Failed 60
eq "fail: the exit code is rank 1's" 3 "$(cat "$MNT/runs/fail/exit_code")"
check "fail: error says code 3" grep -q "3" "$MNT/runs/fail/error"
eq "fail: 3 processes had started" 3 "$(wc -l <"$MNT/runs/fail/outputs/pids")"
check "fail: the other ranks were stopped" wait_until 10 \
	all_gone "$MNT/runs/fail/outputs/pids"

# ---- a process left behind with the output open does not hold the run ----------
newrun orphan '(exec sleep 100000 &); echo "$RANK left one"' "procs_per_node = 2"
submit orphan
check "orphan: Completed" wait_for "$MNT/runs/orphan/status" Completed 60
for r in 0 1; do
	check "orphan: rank $r's line" grep -qx "$r: $r left one" \
		"$MNT/runs/orphan/log"
done

# ---- cancel and the time limit stop all -------------------------------------------
newrun cancel 'echo $$ >>"$MLFS_OUTPUTS/pids"; exec sleep 100000' \
	"procs_per_node = 4"
submit cancel
check "cancel: all 4 running" wait_until 30 eval \
	'[[ $(wc -l 2>/dev/null <"$MNT/runs/cancel/outputs/pids") == 4 ]]'
wr "$MNT/runs/cancel/ctl" cancel
check "cancel: Canceled" wait_for "$MNT/runs/cancel/status" Canceled 30
check "cancel: every process gone" wait_until 10 \
	all_gone "$MNT/runs/cancel/outputs/pids"

newrun limit 'echo $$ >>"$MLFS_OUTPUTS/pids"; exec sleep 100000' \
	$'procs_per_node = 2\ntime = 2s'
submit limit
check "limit: Failed at the time limit" wait_for "$MNT/runs/limit/status" Failed 60
check "limit: error names the time limit" grep -q "time limit" \
	"$MNT/runs/limit/error"
check "limit: every process gone" wait_until 10 \
	all_gone "$MNT/runs/limit/outputs/pids"

# ---- torch.distributed, gloo, 1 node x 4 processes ----------------------------------
if has_torch; then
	newrun torch4 "python3 allreduce.py" "procs_per_node = 4"
	cp "$T/allreduce.py" "$MNT/runs/torch4/"
	submit torch4
	check "torch4: Completed" wait_for "$MNT/runs/torch4/status" Completed 300
	check "torch4: the all-reduce summed 4 ranks" sums_ok \
		"$MNT/runs/torch4/outputs" 4
else
	ok "# SKIP torch all-reduce on the local target: python3-torch is not" \
		"installed (scripts/deps.sh torch)"
fi

# ---- an ssh target: 3 processes on the host -------------------------------------
SSHD=$T/sshd
WORK=$T/remote
trap 'ssh_cleanup; cleanup' EXIT
if sshd_start; then
	source "$SSHD/host.env"
	mkdir "$MNT/targets/box" && wr "$MNT/targets/box/type" ssh
	ssh_config "workdir = $WORK" "cancel_grace_seconds = 2" \
		>"$MNT/targets/box/config"
	wr "$MNT/targets/box/ctl" provision
	check "ssh target Succeeded" wait_for "$MNT/targets/box/status" Succeeded 30
	newrun x3 "python3 ranks.py" "procs_per_node = 3" box
	submit x3
	check "x3 (ssh): Completed" wait_for "$MNT/runs/x3/status" Completed 60
	check "x3 (ssh): every rank's variables, and they met at the master" \
		check_ranks "$MNT/runs/x3/outputs" 1 3
	for r in 0 1 2; do
		check "x3 (ssh): rank $r's line in log, prefixed" \
			grep -qx "$r: rank $r of 3 done" "$MNT/runs/x3/log"
	done
	# shellcheck disable=SC2059
	newrun xf "$(printf "$FAILING" 0 3 6)" "procs_per_node = 3" box
	submit xf
	check "xf (ssh): Failed" wait_for "$MNT/runs/xf/status" Failed 60
	eq "xf (ssh): the exit code is rank 0's" 6 "$(cat "$MNT/runs/xf/exit_code")"
	check "xf (ssh): the others were stopped" wait_until 30 \
		all_gone "$MNT/runs/xf/outputs/pids"
	newrun xo '(exec sleep 100000 &); echo "$RANK left one"' \
		"procs_per_node = 2" box
	submit xo
	check "xo (ssh): a process left behind does not hold the run" \
		wait_for "$MNT/runs/xo/status" Completed 60
	for r in 0 1; do
		check "xo (ssh): rank $r's line" grep -qx "$r: $r left one" \
			"$MNT/runs/xo/log"
	done
	newrun xc "echo \$\$ >>$T/xc.pids; exec sleep 100000" \
		"procs_per_node = 2" box
	submit xc
	check "xc (ssh): both running" wait_until 30 eval \
		'[[ $(wc -l 2>/dev/null <"$T/xc.pids") == 2 ]]'
	wr "$MNT/runs/xc/ctl" cancel
	check "xc (ssh): Canceled" wait_for "$MNT/runs/xc/status" Canceled 30
	check "xc (ssh): every process gone" wait_until 30 all_gone "$T/xc.pids"
	sshd_cut
else
	not_ok "a test sshd starts"
fi
check "unmount" unmount_ws

# ---- Slurm: 2 nodes x 2 processes -------------------------------------------------
slurm_start ssh_cleanup
mount_or_bail
mkdir "$MNT/targets/sl" && wr "$MNT/targets/sl/type" slurm
printf '%s\n' "url = $SLURM_URL" "user = $SLURM_USER" \
	"token_file = $SLURM_TOKEN_FILE" "partition = $SLURM_PARTITION" \
	"poll_seconds = 0.5" >"$MNT/targets/sl/config"
wr "$MNT/targets/sl/ctl" provision
check "slurm target Succeeded" wait_for "$MNT/targets/sl/status" Succeeded 30

newrun s22 "python3 ranks.py" $'nodes = 2\nprocs_per_node = 2\ngpus = 2' sl
submit s22
check "s22: Completed" wait_for "$MNT/runs/s22/status" Completed 120
check "s22: every rank's variables, and they met at the master" \
	check_ranks "$MNT/runs/s22/outputs" 2 2 1
for r in 0 1 2 3; do
	check "s22: rank $r's line in log, prefixed" \
		grep -qx "$r: rank $r of 4 done" "$MNT/runs/s22/log"
done
J=$(sed -n 's/.*"backend_id":[[:space:]]*"slurm \([0-9]*\)".*/\1/p' \
	"$MNT/runs/s22/info.json")
check "s22: one Slurm job of 4 tasks" bash -c \
	"scontrol -o show job $J | grep -q 'NumTasks=4'"

# shellcheck disable=SC2059
newrun s1f "$(printf "$FAILING" 2 4 5)" $'nodes = 2\nprocs_per_node = 2' sl
submit s1f
check "s1f: a failing rank fails the run" wait_for "$MNT/runs/s1f/status" Failed 120
eq "s1f: the exit code is rank 2's" 5 "$(cat "$MNT/runs/s1f/exit_code")"
eq "s1f: 4 processes had started" 4 "$(wc -l <"$MNT/runs/s1f/outputs/pids")"
check "s1f: the others were stopped" wait_until 30 \
	all_gone "$MNT/runs/s1f/outputs/pids"

if has_torch; then
	newrun storch "python3 allreduce.py" $'nodes = 2\nprocs_per_node = 2' sl
	cp "$T/allreduce.py" "$MNT/runs/storch/"
	submit storch
	check "storch: Completed" wait_for "$MNT/runs/storch/status" Completed 300
	check "storch: the all-reduce summed 2 x 2 ranks" sums_ok \
		"$MNT/runs/storch/outputs" 4
else
	ok "# SKIP torch all-reduce on Slurm: python3-torch is not installed" \
		"(scripts/deps.sh torch)"
fi
check "unmount" unmount_ws
done_testing
