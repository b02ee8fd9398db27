#!/usr/bin/env bash
# Deployments in an environment (issue 17): `environment` names a Ready
# environment, and on the local target each replica is `podman run` of
# mlfs-serve in its image -- the model and the code mounted read-only, the
# host's network (the replicas share the port).  Healthy, real scoring,
# the server in a container (libpod cgroup), as the creator (not root),
# info.json's exact image; a crash of the server restarted in a new
# container; the daemon killed -9 and remounted adopts the same container;
# a rolling update; delete removes the container; the environment cannot
# be removed while a deployment uses it, and once it is removed its image
# leaves podman's store.  Refusals: no such environment, one not Ready,
# root's deployment, each with a sentence and nothing lost.
#
# The image needs python3: a root file system made of the host's python3
# (Debian's), the libraries ldd names and busybox-static, tarred once and
# cached under /var/cache/mlfs-test (by both packages' versions).
source "$(dirname "$0")/../lib.sh"

EINVAL="Invalid argument"
EBUSY="Device or resource busy"

PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
[[ -x /bin/busybox && -x /usr/bin/python3 ]] ||
	{ echo "1..0 # SKIP busybox-static or python3 is missing (scripts/deps.sh test)"; exit 0; }

# ---- the image: the host's python3 in a root file system, cached ------------------
python_rootfs
chmod 644 "$PY_TAR"

# Can podman run a container with it here at all?  Probed once; the probe's
# image is the one the environment imports (the same tarball), removed now.
ULIM="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
PROBE=$("$PODMAN" import -q "$PY_TAR" 2>/dev/null)
# shellcheck disable=SC2086
if [[ -z $PROBE ]] || ! "$PODMAN" run --rm --runtime runc $ULIM "$PROBE" \
	python3 -c 'import asyncio' >/dev/null 2>&1; then
	[[ -n $PROBE ]] && "$PODMAN" rmi "$PROBE" >/dev/null 2>&1
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi
"$PODMAN" rmi "$PROBE" >/dev/null 2>&1

# Whatever happens, no container of this workspace and no image it made is
# left behind (the daemon's own cleanup is asserted at the end).
IMAGES=()
ct_cleanup() {
	local n
	for n in $("$PODMAN" ps -a --format '{{.Names}}' 2>/dev/null |
		grep "^${CT_PREFIX:-none}"); do
		"$PODMAN" rm -f -t 0 "$n" >/dev/null 2>&1
	done
	for n in "${IMAGES[@]}"; do
		"$PODMAN" rmi "$n" >/dev/null 2>&1
	done
	cleanup_deep
}
trap ct_cleanup EXIT

mu_users
mount_or_bail "mount with allow_other" -o allow_other

CT_PREFIX=$(ct_prefix)	# the names of this workspace's containers
ct_names() { "$PODMAN" ps -a --format '{{.Names}}' | grep "^$CT_PREFIX" | sort; }
ct_id() { "$PODMAN" ps --filter "name=^$1\$" --format '{{.ID}}'; }

# ---- the environment --------------------------------------------------------------
E=$MNT/environments/pyenv
as mlfs_ua mkdir "$E"
as mlfs_ua sh -c "echo 'rootfs = $PY_TAR' > '$E/config'; echo build > '$E/ctl'"
eq "the python rootfs is imported: Ready" Ready "$(env_settled pyenv 120)"
IMG=$(cat "$E/image")
IMAGES+=("$IMG")
check "image is a sha256 id" grep -qE '^sha256:[0-9a-f]{64}$' "$E/image"

# ---- a model, as mlfs_ua -------------------------------------------------------------
R=$MNT/runs/train
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "cat > '$R/command'" <<'EOF'
python3 -c 'import json, os; json.dump({"w": [2.0, -1.0], "b": 0.5}, open(os.path.join(os.environ["MLFS_OUTPUTS"], "linear.json"), "w"))'
EOF
as mlfs_ua sh -c "echo submit > '$R/ctl'"
check "the training run completes" wait_for "$R/status" Completed 60
check "register it as model lin" as mlfs_ua sh -c "echo 'register lin' > '$R/ctl'"

# ---- refusals ---------------------------------------------------------------------
D=$MNT/deployments/ct
as mlfs_ua mkdir "$D"
as mlfs_ua sh -c "cat > '$D/score.py'" <<'PY'
import json, os
def init():
    global model
    model = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json")))
def run(data):
    rows = json.loads(data)["data"]
    if rows == "whoami":
        return {"uid": os.getuid(), "pid1": open("/proc/1/cmdline").read().split("\0")[0],
                "cgroup": open("/proc/self/cgroup").read(), "pid": os.getpid()}
    return [sum(w * x for w, x in zip(model["w"], r)) + model["b"] for r in rows]
PY
as mlfs_ua sh -c "echo lin:1 > '$D/model'"
expect_err "environment naming no environment: EINVAL" "$EINVAL" \
	as mlfs_ua bash -c "echo nope > '$D/environment'"
check "error says there is none" grep -q "there is no environment 'nope'" "$D/error"
eq "... and the setting is unchanged" "" "$(cat "$D/environment")"
as mlfs_ua mkdir "$MNT/environments/notyet"
check "an environment not built yet may be named" \
	as mlfs_ua sh -c "echo notyet > '$D/environment'"
expect_err "deploy in an environment not Ready: EINVAL" "$EINVAL" \
	as mlfs_ua bash -c "echo deploy > '$D/ctl'"
check "error says build it first" grep -q "not Ready: build it first" "$D/error"
eq "... still a Draft" Draft "$(cat "$D/status")"
eq "... the setting kept" notyet "$(cat "$D/environment")"
RD=$MNT/deployments/rootdep
mkdir "$RD"
cp "$D/score.py" "$RD/"
wr "$RD/model" lin:1
wr "$RD/environment" pyenv
expect_err "root's deployment in an environment: EINVAL" "$EINVAL" wr "$RD/ctl" deploy
check "error says a container never gets root" grep -q "never gets the host's root" "$RD/error"
rmdir "$RD" 2>/dev/null || rm -r "$RD"

# ---- deploy in the environment ----------------------------------------------------
as mlfs_ua sh -c "echo pyenv > '$D/environment'"
deploy_timed "$D" 120
BASE=${URI%/score}
eq "info.json names the environment" pyenv "$(json_get "$D/info.json" environment)"
eq "info.json has the exact image" "$IMG" "$(json_get "$D/info.json" image)"
eq "predictions from inside the container" "[0.5, 5.5]" \
	"$(curl -s -m 30 -H "Authorization: Bearer $KEY" -d '{"data": [[1, 2], [3, 1]]}' "$URI")"
eq "without the key: 401" 401 \
	"$(curl -s -m 30 -o /dev/null -w '%{http_code}' -d '{"data": [[1, 2]]}' "$URI")"
whoami() { curl -s -m 30 -H "Authorization: Bearer $KEY" -d '{"data": "whoami"}' "$URI"; }
pyget() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
W=$(whoami)
eq "the server runs as the creator" "$(id -u mlfs_ua)" "$(pyget "$W" uid)"
eq "... under the container's init" /run/podman-init "$(pyget "$W" pid1)"
NAME1=$(ct_names | grep -- "-g1-[0-9]*$")
check "podman ps shows the replica's container" test -n "$NAME1"
CID=$(ct_id "$NAME1")
check "the server is in that container's cgroup" \
	eval "[[ '$(pyget "$W" cgroup)' == *libpod-$CID* ]]"
check "its log has mlfs-serve's lines (passthrough)" \
	wait_until 10 grep -q "serving" "$D/log"
expect_err "rmdir of an environment a deployment uses: EBUSY" "$EBUSY" rmdir "$E"
check "error names the deployment" grep -q "used by deployment 'ct'" "$E/error"

# ---- a crash of the server: restarted, in a new container ----------------------------
SPID=$(pyget "$W" pid)
HPID=$(grep -l "mlfs-serve" /proc/[0-9]*/cmdline 2>/dev/null | while read -r f; do
	p=${f#/proc/}; p=${p%/cmdline}
	grep -q "^NSpid:.*[[:space:]]$SPID$" "/proc/$p/status" 2>/dev/null &&
		grep -q "libpod-$CID" "/proc/$p/cgroup" && echo "$p"; done | head -1)
check "the server's host pid is found" test -n "$HPID"
U0=$(ev_count "deployment ct Unhealthy")
kill -9 "$HPID"
check "Unhealthy after the server died" wait_until 30 \
	eval "[[ \$(ev_count 'deployment ct Unhealthy') -gt $U0 ]]"
check "the replica is restarted: Healthy with a new container" wait_until 120 \
	eval "[[ \$(cat '$D/status') == Healthy && -n \$(ct_id '$NAME1') && \$(ct_id '$NAME1') != '$CID' ]]"
eq "it scores again" "[0.5]" \
	"$(curl -s -m 30 -H "Authorization: Bearer $KEY" -d '{"data": [[1, 2]]}' "$URI")"
CID=$(ct_id "$NAME1")

# ---- kill -9 of the daemon, remount: the same container is adopted -----------------
crash_ws
remount_or_bail "remount after kill -9 of the daemon" -o allow_other
check "Healthy after the remount" wait_for "$D/status" Healthy 60
eq "the same container serves" "$CID" "$(ct_id "$NAME1")"
eq "it scores" "[0.5]" \
	"$(curl -s -m 30 -H "Authorization: Bearer $KEY" -d '{"data": [[1, 2]]}' "$URI")"

# ---- a rolling update: generation 2 in a new container, generation 1's gone ----------
check "deploy again" as mlfs_ua sh -c "echo deploy > '$D/ctl'"
check "generation 2 serves" wait_until 120 serves_gen "$D" 2
check "its container is generation 2's" wait_until 30 \
	eval "ct_names | grep -q -- '-g2-[0-9]*$'"
check "generation 1's container is gone" wait_until 60 \
	eval "! ct_names | grep -q -- '-g1-'"
eq "the same URI scores" "[0.5]" \
	"$(curl -s -m 30 -H "Authorization: Bearer $KEY" -d '{"data": [[1, 2]]}' "$URI")"

# ---- delete: the container goes; then the environment and its image ------------------
check "delete" as mlfs_ua sh -c "echo delete > '$D/ctl'"
check "Draft" wait_for "$D/status" Draft 60
check "no container of this workspace is left" wait_until 60 \
	eval "[[ -z \$(ct_names) ]]"
eq "the port is closed" 000 "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/")"
# another environment adopts the image by its id: removing the one that
# made it leaves the image in place while the other has it.  A third
# environment removed after it, whose image goes, shows the pruning looked.
E2=$MNT/environments/twin
as mlfs_ua mkdir "$E2" "$MNT/environments/scratch"
as mlfs_ua sh -c "echo 'image = $IMG' > '$E2/config'; echo build > '$E2/ctl'"
eq "an environment adopting the image by id: Ready" Ready "$(env_settled twin 120)"
eq "... the same image" "$IMG" "$(cat "$E2/image")"
as mlfs_ua sh -c "echo 'rootfs = $PY_TAR' > '$MNT/environments/scratch/config'"
as mlfs_ua sh -c "echo build > '$MNT/environments/scratch/ctl'"
eq "a third environment: Ready" Ready "$(env_settled scratch 120)"
SCRATCH=$(cat "$MNT/environments/scratch/image")
IMAGES+=("$SCRATCH")
check "rmdir the environment once nothing uses it" rmdir "$E"
check "rmdir the third" rmdir "$MNT/environments/scratch"
if [[ $SCRATCH != "$IMG" ]]; then
	check "the third's image leaves podman's store" wait_until 60 \
		eval "! '$PODMAN' image exists '$SCRATCH'"
	check "... the adopted one stays (the twin has it)" \
		"$PODMAN" image exists "$IMG"
fi
check "rmdir the twin" rmdir "$E2"
check "then the image leaves podman's store" wait_until 60 \
	eval "! '$PODMAN' image exists '$IMG'"
rmdir "$MNT/environments/notyet"

done_testing
