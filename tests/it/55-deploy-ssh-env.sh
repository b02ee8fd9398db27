#!/usr/bin/env bash
# Deployments in an environment on an ssh target (issue 17 item 3): each
# replica runs mlfs-serve inside the image through the host's podman, as
# the ssh login.  The host is a private sshd on loopback
# (scripts/ssh-host.sh) whose login $UH is not root: rootless podman with
# its own image store (--userns=keep-id), so the image is really missing
# there and is copied (podman save | ssh … podman load) once; its
# rootless pause process is stopped at the end (it would hold a copy of
# every mount of its time).  Real HTTP
# requests (curl): Healthy, scoring answers with a file only the image
# has, as the login's uid under the container's init; the env file (the
# key, the env lines) 0600 on the host and on no command line; a server
# killed on the host is restarted in a new container; a rolling update to
# a second environment's image under a client loop, no request failed;
# kill -9 of the daemon and a remount adopt the same container; delete
# leaves no container and no process on the host.  Bad cases: an image
# with RUN layers the rootless login cannot load, and a host without
# podman (a second sshd whose login's PATH lacks it, as in 29): Failed
# with one sentence naming the host (and the packages).
#
# The image: the python root file system of 49 (cached under
# /var/cache/mlfs-test) with a marker file appended, twice (two images).
source "$(dirname "$0")/../lib.sh"

# the host's login, made by ssh-host.sh: not 29's, so that neither sees
# the other's rootless podman (its store, its pause process)
UH=mlfs_rd
SSHD=$T/sshd SSHD2=$T/sshd-nopodman
REMOTE=$T/remote	# the host's folders (the login is $UH)
WORK=$REMOTE/work

# podman as the host's login (its rootless store), from its home
hpod() { as $UH sh -c 'cd && exec podman --log-level=error "$@"' podman "$@"; }

IMAGES=()
cleanup_55() {
	local n keep=${KEEP:-}
	KEEP=1 cleanup_deep	# the daemon first: it would restart what dies
	ep_stop_proxies
	for n in $(hpod ps -a --format '{{.Names}}' 2>/dev/null); do
		[[ $n == "${CT_PREFIX:-none}"* ]] && hpod rm -f -t 0 "$n" >/dev/null 2>&1
	done
	for n in $(podman ps -a --format '{{.Names}}' 2>/dev/null); do
		[[ $n == "${CT_PREFIX:-none}"* ]] && podman rm -f -t 0 "$n" >/dev/null 2>&1
	done
	host_kill
	WORK=$T/rootwork host_kill
	for n in "${IMAGES[@]}"; do
		hpod rmi -f "$n" >/dev/null 2>&1
		podman rmi -f "$n" >/dev/null 2>&1
	done
	podman_pause_stop $UH
	"$ROOT/scripts/ssh-host.sh" stop "$SSHD2" >/dev/null 2>&1
	sshd_cut
	[[ -n $keep ]] || rm -rf "$T"
}
trap cleanup_55 EXIT
PODMAN=$(command -v podman || true)
[[ -n $PODMAN ]] || { echo "1..0 # SKIP podman is not installed (scripts/deps.sh env)"; exit 0; }
[[ -x /bin/busybox && -x /usr/bin/python3 ]] ||
	{ echo "1..0 # SKIP busybox-static or python3 is missing (scripts/deps.sh test)"; exit 0; }

# ---- the images: 49's python rootfs (cached), a marker appended -----------------
python_rootfs

# marked N: $T/pyN.tar, the rootfs with /etc/mlfs-marker holding N and a
# word of this test run (a file only that image has)
MARK=$$-$RANDOM
marked() {
	mkdir -p "$T/mark$1/etc"
	echo "$1 $MARK" > "$T/mark$1/etc/mlfs-marker"
	cp "$PY_TAR" "$T/py$1.tar"
	tar -C "$T/mark$1" --numeric-owner --owner=0 --group=0 -rf "$T/py$1.tar" ./etc/mlfs-marker
	chmod 644 "$T/py$1.tar"
}
marked 1
marked 2

# Can podman run a container with it here at all?  (as 49: it has no
# `true`, which podman_runs runs)
ULIM="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
PROBE=$("$PODMAN" import -q "$T/py1.tar" 2>/dev/null)
# shellcheck disable=SC2086
if [[ -z $PROBE ]] || ! "$PODMAN" run --rm --runtime runc $ULIM "$PROBE" \
	python3 -c 'import asyncio' >/dev/null 2>&1; then
	[[ -n $PROBE ]] && "$PODMAN" rmi "$PROBE" >/dev/null 2>&1
	echo "1..0 # SKIP podman cannot run containers on this machine"
	exit 0
fi
"$PODMAN" rmi "$PROBE" >/dev/null 2>&1

mu_users mlfs_ua
if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD" $UH >/dev/null; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
mkdir -p "$REMOTE" && chown $UH: "$REMOTE"

mount_or_bail "mount" -o allow_other
CT_PREFIX=$(ct_prefix)
ours() { hpod ps -a --format '{{.Names}}' | grep "^$CT_PREFIX" | sort; }
ct_id() { hpod ps --filter "name=^$1\$" --format '{{.ID}}'; }

# ---- the environments -------------------------------------------------------------
for n in 1 2; do
	as mlfs_ua mkdir "$MNT/environments/py$n"
	as mlfs_ua sh -c "echo 'rootfs = $T/py$n.tar' > '$MNT/environments/py$n/config'"
	as mlfs_ua sh -c "echo build > '$MNT/environments/py$n/ctl'"
done
eq "environment py1 is Ready" Ready "$(env_settled py1 120)"
eq "environment py2 is Ready" Ready "$(env_settled py2 120)"
IMG1=$(cat "$MNT/environments/py1/image")
IMG2=$(cat "$MNT/environments/py2/image")
IMAGES+=("$IMG1" "$IMG2")
check "two images" eval "[[ -n '$IMG1' && -n '$IMG2' && '$IMG1' != '$IMG2' ]]"
lacks() { ! hpod image exists "$1"; }
check "the host's podman lacks the first image" lacks "$IMG1"

TG=$MNT/targets/box
mkdir "$TG" && wr "$TG/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 5" > "$TG/config"
chmod go+x "$TG"	# shared: mlfs_ua deploys on it
check "the ssh target attaches" wr "$TG/ctl" provision
check "… Succeeded" wait_for "$TG/status" Succeeded 30

# ---- a model, as mlfs_ua -----------------------------------------------------------
R=$MNT/runs/train
as mlfs_ua mkdir "$R"
as mlfs_ua sh -c "cat > '$R/command'" <<'EOF'
echo '{"w": [2.0, -1.0], "b": 0.5}' > "$MLFS_OUTPUTS/linear.json"
EOF
as mlfs_ua sh -c "echo submit > '$R/ctl'"
check "the training run completes" wait_for "$R/status" Completed 60
check "register it as model lin" as mlfs_ua sh -c "echo 'register lin' > '$R/ctl'"

# ---- deploy in py1 on the ssh host ---------------------------------------------------
D=$MNT/deployments/ct
as mlfs_ua mkdir "$D"
as mlfs_ua sh -c "cat > '$D/score.py'" <<'PY'
import json, os
def init():
    global model, marker
    model = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json")))
    marker = open("/etc/mlfs-marker").read().split()
    print("loaded in image", marker[0], "greeting", os.environ.get("GREETING"), flush=True)
def run(data):
    body = json.loads(data)
    if body.get("data") == "whoami":
        return {"uid": os.getuid(), "pid1": open("/proc/1/cmdline").read().split("\0")[0],
                "marker": " ".join(marker), "pid": os.getpid(),
                "rep": os.environ.get("MLFS_REPLICA")}
    if "x" in body:
        return {"y": body["x"] * model["w"][0], "version": int(marker[0])}
    return [sum(w * x for w, x in zip(model["w"], r)) + model["b"] for r in body["data"]]
PY
SECRET=env-$RANDOM$RANDOM-secret
as mlfs_ua sh -c "echo lin:1 > '$D/model'; echo box > '$D/target';
	echo 'replicas = 2' > '$D/config'; echo 'GREETING=$SECRET' > '$D/env';
	echo py1 > '$D/environment'"
t0=$(now_ms)
check "deploy in an environment on the ssh target" as mlfs_ua sh -c "echo deploy > '$D/ctl'"
if [[ $(cat "$D/status") != Draft ]] && wait_for "$D/status" Healthy 120; then
	ok "Healthy"
else
	not_ok "Healthy"
	echo "# error: $(cat "$D/error")"
	tail -n 20 "$D/log" | sed 's/^/# log: /'
	done_testing	# the rest needs it
	exit 1
fi
echo "# deploy -> Healthy (with the image's copy): $(($(now_ms) - t0)) ms"
URI=$(cat "$D/scoring_uri")
KEY=$(cat "$D/key")
ask() { curl -s -m 30 -H "Authorization: Bearer $KEY" -d "${1:-{\"x\": 1\}}" "$URI"; }
pyget() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
eq "predictions from inside the container" "[0.5, 5.5]" "$(ask '{"data": [[1, 2], [3, 1]]}')"
eq "without the key: 401" 401 \
	"$(curl -s -m 30 -o /dev/null -w '%{http_code}' -d '{"data": [[1, 2]]}' "$URI")"
W=$(ask '{"data": "whoami"}')
eq "score.py read a file only the image has" "1 $MARK" "$(pyget "$W" marker)"
eq "as the host's login (rootless, keep-id)" "$(id -u $UH)" "$(pyget "$W" uid)"
eq "under the container's init" /run/podman-init "$(pyget "$W" pid1)"
eq "info.json has the exact image" "$IMG1" "$(json_get "$D/info.json" image)"
check "the log says the image was copied to the host, and how big" \
	grep -qE "^mlfs: the image $IMG1 was not on .*: copied .* [0-9.]+ MB$" "$D/log"
eq "… once" 1 "$(grep -c "copied (podman save" "$D/log")"
check "the host's podman has it now" hpod image exists "$IMG1"

# ---- behind an endpoint: each request to the replica least busy, in its container --
# The proxy reaches each server at its own direct port on the host (the
# poll sees the container's processes listen there): 20 requests on one
# keep-alive connection reach both.
if [[ -x /usr/sbin/haproxy ]]; then
	EP=$MNT/endpoints/front
	as mlfs_ua mkdir "$EP"
	as mlfs_ua sh -c "echo front > '$D/endpoint'; echo 'ct 100' > '$EP/traffic';
		echo start > '$EP/ctl'"
	check "an endpoint in front of it is Healthy" wait_for "$EP/status" Healthy 30
	ct_slots() {
		ep_stats status | awk '$1 == "dep_ct" && $2 ~ /^r[0-9]+$/ &&
			$3 != "MAINT"' | wc -l
	}
	check "2 of its slots in use" wait_until 60 eval '[[ $(ct_slots) == 2 ]]'
	EK=$(cat "$EP/keys/primary")
	ct_balanced() {
		local i urls=()
		for i in $(seq 20); do urls+=("$(cat "$EP/scoring_uri")"); done
		curl -s -m 30 -H "Authorization: Bearer $EK" \
			-d '{"data": "whoami"}' "${urls[@]}" |
			grep -o '"rep": "[0-9]*"' | sort | uniq -c |
			awk '$1 >= 8 {n++} END {exit n != 2}'
	}
	# (each container has its own pids: its replica number tells them)
	check "20 requests on one connection: both servers, 8+ each" \
		wait_until 30 ct_balanced
	as mlfs_ua sh -c "echo stop > '$EP/ctl'"
	check "the endpoint stops" wait_for "$EP/status" Draft 30
	check "… and goes" as mlfs_ua rmdir "$EP"
else
	not_ok "haproxy is installed (scripts/deps.sh)"
fi
eq "two containers run on the host, generation 1's" 2 "$(ours | grep -cE -- '-g1-r[0-9]+-[0-9a-f]+$')"
check "the env lines reach the servers in the containers" \
	wait_until 20 eval "[[ \$(grep -c 'loaded in image 1 greeting $SECRET' '$D/log') == 2 ]]"
CTENV=$(ls "$WORK"/deploy-*/g1/serve/ct.env 2>/dev/null | head -1)
eq "the container's env file is 0600 on the host" 600 "$(stat -c %a "$CTENV" 2>/dev/null)"
check "… and holds the key" grep -q "^MLFS_KEY=$KEY$" "$CTENV"
# (the patterns [x]… do not match grep's own command line)
check "the key is on no command line on the host" \
	eval "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' |
		grep -qE -- '[${KEY:0:1}]${KEY:1}'"
check "… nor the env line" \
	eval "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' |
		grep -qE -- '[${SECRET:0:1}]${SECRET:1}'"

# ---- a server killed on the host: restarted in a new container --------------------
# the host pid of a server: a process of the login running mlfs-serve.py
serve_pids() {
	local f p u
	u=$(id -u $UH)
	for f in /proc/[0-9]*/cmdline; do
		p=${f#/proc/}
		p=${p%/cmdline}
		[[ $(stat -c %u "/proc/$p" 2>/dev/null) == "$u" &&
			$({ tr '\0' ' ' < "$f"; } 2>/dev/null) == "python3 /mlfs/lib/mlfs-serve.py "* ]] &&
			echo "$p"
	done | sort -n
}
eq "two servers run as the login on the host" 2 "$(serve_pids | wc -l)"
NAME1=$(ours | grep -E -- '-g1-r1-[0-9a-f]+$')
CID=$(ct_id "$NAME1")
VICTIM=$(for p in $(serve_pids); do
	grep -q "$CID" "/proc/$p/cgroup" 2>/dev/null && echo "$p"; done | head -1)
[[ -n $VICTIM ]] || VICTIM=$(serve_pids | head -1)
U0=$(ev_count "deployment ct Unhealthy")
kill -9 "$VICTIM"
check "Unhealthy after a server died" wait_until 30 \
	eval "[[ \$(ev_count 'deployment ct Unhealthy') -gt $U0 ]]"
check "Healthy again, two servers, the killed one replaced" wait_until 120 \
	eval "[[ \$(cat '$D/status') == Healthy && \$(serve_pids | wc -l) == 2 ]] &&
		! serve_pids | grep -qx '$VICTIM'"
check "two containers (podman ps -a on the host), the old one gone" \
	wait_until 30 eval "[[ \$(ours | wc -l) == 2 ]]"
eq "it scores again" '{"y": 2.0, "version": 1}' "$(ask)"

# ---- liveness: a server that stops answering is killed and replaced ------------------
STOPPED=$(serve_pids | head -1)
L0=$(ev_count "deployment ct replica [0-9]+ stopped answering its liveness probe")
kill -STOP "$STOPPED"
check "a stopped server in its container is replaced (Healthy, two servers)" wait_until 90 \
	eval "[[ \$(cat '$D/status') == Healthy && \$(serve_pids | wc -l) == 2 ]] &&
		! serve_pids | grep -qx '$STOPPED'"
# (the daemon reports the kill with its next round: the servers on the
# host can look replaced a moment before; seen in CI)
if wait_until 30 eval "[[ \$(ev_count 'deployment ct replica [0-9]+ stopped answering its liveness probe') -gt $L0 ]]"; then
	ok "… events say why"
else
	not_ok "… events say why"
	grep 'deployment ct' "$MNT/events" | tail -6 | sed 's/^/# /'
	grep 'deployment ct' "$DAEMON_ERR" | tail -6 | sed 's/^/# /'
fi
check "… Healthy again after it, two servers" wait_until 90 \
	eval "[[ \$(cat '$D/status') == Healthy && \$(serve_pids | wc -l) == 2 ]]"
check "… the stopped one is gone (its container's pid namespace ended)" \
	wait_until 30 eval "[[ ! -e /proc/$STOPPED ]]"
check "two containers (podman ps -a on the host), the old one gone" \
	wait_until 30 eval "[[ \$(ours | wc -l) == 2 ]]"
# (a replacement under the old container's name raced podman's cleanup
# of the old one: a second failure per crash)
eq "each replacement started at once: no failed start" 0 \
	"$(ev_count 'deployment ct replica [0-9]+ failed to start')"

# ---- kill -9 of the daemon, remount: the same containers are adopted ------------------
C1=$(for n in $(ours); do ct_id "$n"; done | sort | paste -sd' ')
P1=$(serve_pids | paste -sd' ')
crash_ws
eq "it answers with no daemon" '{"y": 2.0, "version": 1}' "$(ask)"
remount_or_bail "remount after kill -9 of the daemon" -o allow_other
check "Healthy after the remount" wait_for "$D/status" Healthy 60
eq "the same containers serve" "$C1" "$(for n in $(ours); do ct_id "$n"; done | sort | paste -sd' ')"
eq "the same servers" "$P1" "$(serve_pids | paste -sd' ')"
eq "it scores" "[0.5]" "$(ask '{"data": [[1, 2]]}')"

# ---- a rolling update to py2's image under a client loop ----------------------------
to_py2() { as mlfs_ua sh -c "echo py2 > '$D/environment'"; }
rolling_update "$D" 2 to_py2
eq "info.json has the new image" "$IMG2" "$(json_get "$D/info.json" image)"
W=$(ask '{"data": "whoami"}')
eq "the new image's file" "2 $MARK" "$(pyget "$W" marker)"
check "generation 2's containers run" wait_until 30 \
	eval "[[ \$(ours | grep -cE -- '-g2-r[0-9]+-[0-9a-f]+$') == 2 ]]"
check "generation 1's containers are gone" wait_until 60 \
	eval "! ours | grep -q -- '-g1-'"
eq "the second image was copied once" 1 "$(grep -c "the image $IMG2 was not on" "$D/log")"
eq "two copies in all: one per image" 2 "$(grep -c "copied (podman save" "$D/log")"

# ---- delete: no container, no process, no folder left on the host --------------------
check "delete" as mlfs_ua sh -c "echo delete > '$D/ctl'"
check "Draft" wait_for "$D/status" Draft 60
check "no container of this workspace is left on the host" wait_until 60 \
	eval "[[ -z \$(ours) ]]"
check "no server is left on the host" wait_until 30 eval "[[ -z \$(serve_pids) ]]"
check "no process under the deployment's folder is left" wait_until 30 \
	eval "! grep -qs -- '$WORK/deploy-' /proc/[0-9]*/cmdline"
check "no conmon of this workspace's containers" \
	eval "! grep -qs -- '$CT_PREFIX' /proc/[0-9]*/cmdline"
eq "the port is closed" 000 "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "${URI%/score}/")"
check "its folder left the host" wait_until 30 \
	eval "[[ -z \$(ls -d '$WORK'/deploy-* 2>/dev/null) ]]"

# ---- a link planted in /mlfs/rep: the poll reads nothing through it ---------------
# The server's start failure is read on the host from the replica's in/
# (/mlfs/rep inside): a link there to the login's own private file would
# hand it to the deployment's error, a way out of the container.
printf 'login secret %s\n' "$RANDOM$RANDOM" > "/home/$UH/private"
chown $UH: "/home/$UH/private" && chmod 600 "/home/$UH/private"
P1D=$MNT/deployments/plant1
as mlfs_ua mkdir "$P1D"
as mlfs_ua sh -c "cat > '$P1D/score.py'" <<PY
import os
def init():
    os.symlink("/home/$UH/private", "/mlfs/rep/err")
    os._exit(3)
def run(data):
    return data
PY
as mlfs_ua sh -c "echo lin:1 > '$P1D/model'; echo box > '$P1D/target';
	echo py1 > '$P1D/environment'"
check "deploy a server that plants a link in /mlfs/rep and dies" \
	as mlfs_ua sh -c "echo deploy > '$P1D/ctl'"
check "… Failed after its crashes" wait_for "$P1D/status" Failed 180
check "… the error has nothing of the login's private file" \
	eval "! grep -q 'login secret' '$P1D/error'"
echo "# error: $(cat "$P1D/error")"
check "delete it" as mlfs_ua sh -c "echo delete > '$P1D/ctl'"
check "… Draft" wait_for "$P1D/status" Draft 60
rm -f "/home/$UH/private"

# ---- an image that cannot be put into the rootless login's podman --------------------
# A root daemon's RUN layers are owned by the build namespace's host ids
# (see 29): rootless podman cannot map them, and the load fails: Failed,
# with a sentence naming the host.  A podman that maps them back may load
# it: then it serves.
W=$MNT/environments/withrun
as mlfs_ua mkdir "$W"
as mlfs_ua sh -c "printf 'FROM %s\nRUN echo ran > /tmp/ran\n' '$IMG1' > '$W/Containerfile'"
as mlfs_ua sh -c "echo build > '$W/ctl'"
eq "an environment with a RUN step is built" Ready "$(env_settled withrun 180)"
IMAGES+=("$(cat "$W/image")")
WD=$MNT/deployments/withrun
as mlfs_ua mkdir "$WD"
as mlfs_ua cp "$D/score.py" "$WD/"
as mlfs_ua sh -c "echo lin:1 > '$WD/model'; echo box > '$WD/target';
	echo withrun > '$WD/environment'"
check "deploy it on the rootless login" as mlfs_ua sh -c "echo deploy > '$WD/ctl'"
check "… it settles" wait_until 180 \
	eval "[[ \$(cat '$WD/status') == Failed || \$(cat '$WD/status') == Healthy ]]"
if [[ $(cat "$WD/status") == Failed ]]; then
	check "… Failed: the image cannot be put into podman on the host" \
		grep -q "environment: the image .* cannot be put into podman on 127.0.0.1: .*rootless podman cannot map" \
		"$WD/error"
	check "… one sentence" has_sentence "$WD/error"
else
	echo "# this podman loads a RUN layer into a rootless store"
fi
echo "# error: $(cat "$WD/error")"
check "delete it" as mlfs_ua sh -c "echo delete > '$WD/ctl'"
check "… Draft" wait_for "$WD/status" Draft 60

# ---- a root login: rootful podman, the server as the deployment's creator ---------------
# The same sshd lets root in with the same key: root's podman is this
# machine's, which has the image (no copy).  What the server writes in
# /mlfs/rep (its start failure) is read with the creator's rights: a link
# planted there to a root-only file on the host reads nothing of it.
TR=$MNT/targets/rootbox
mkdir "$TR" && wr "$TR/type" ssh && chmod go+x "$TR"
printf 'host = 127.0.0.1\nport = %s\nuser = root\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
	"$SSH_PORT" "$SSH_IDENTITY" "$T/rootwork" > "$TR/config"
wr "$TR/ctl" provision
check "an ssh target logging in as root attaches" wait_for "$TR/status" Succeeded 30
RD=$MNT/deployments/asroot
as mlfs_ua mkdir "$RD"
as mlfs_ua cp "$D/score.py" "$RD/"
as mlfs_ua sh -c "echo lin:1 > '$RD/model'; echo rootbox > '$RD/target';
	echo py2 > '$RD/environment'"
check "deploy on the root login" as mlfs_ua sh -c "echo deploy > '$RD/ctl'"
check "… Healthy" wait_for "$RD/status" Healthy 120
RURI=$(cat "$RD/scoring_uri")
RW=$(curl -s -m 30 -H "Authorization: Bearer $(cat "$RD/key")" -d '{"data": "whoami"}' "$RURI")
eq "… in the image" "2 $MARK" "$(pyget "$RW" marker)"
eq "… as the deployment's creator, not root (--user)" "$(id -u mlfs_ua)" "$(pyget "$RW" uid)"
check "… no copy: root's podman has the image" sh -c "! grep -q copied '$RD/log'"
rootct() { podman ps -a --format '{{.Names}}' | grep "^$CT_PREFIX"; }
check "its container runs in root's podman" eval "[[ -n \$(rootct) ]]"
check "delete it" as mlfs_ua sh -c "echo delete > '$RD/ctl'"
check "… Draft" wait_for "$RD/status" Draft 60
check "… no container left in root's podman" wait_until 60 eval "[[ -z \$(rootct) ]]"
decoy "$T/decoy"
PD=$MNT/deployments/plant
as mlfs_ua mkdir "$PD"
as mlfs_ua sh -c "cat > '$PD/score.py'" <<PY
import os
def init():
    os.symlink("$T/decoy", "/mlfs/rep/err")
    os._exit(3)
def run(data):
    return data
PY
as mlfs_ua sh -c "echo lin:1 > '$PD/model'; echo rootbox > '$PD/target';
	echo py2 > '$PD/environment'"
check "deploy a server that plants a link in /mlfs/rep and dies" \
	as mlfs_ua sh -c "echo deploy > '$PD/ctl'"
check "… Failed after its crashes" wait_for "$PD/status" Failed 180
check "… the error has nothing of the root-only file" \
	eval "! grep -q 'root secret' '$PD/error'"
echo "# error: $(cat "$PD/error")"
check "… which is intact" decoy_intact "$T/decoy"
check "delete it" as mlfs_ua sh -c "echo delete > '$PD/ctl'"
check "… Draft" wait_for "$PD/status" Draft 60
check "… no container left in root's podman" wait_until 60 eval "[[ -z \$(rootct) ]]"

# ---- a host without podman: Failed, with the host and the packages -----------------------
NOPOD=$T/nopodman-bin
mkdir -p "$NOPOD"
cp -s /usr/bin/* "$NOPOD/" 2>/dev/null	# links, one process
rm -f "$NOPOD/podman"
chmod 755 "$NOPOD"
if ! "$ROOT/scripts/ssh-host.sh" start "$SSHD2" $UH >/dev/null; then
	not_ok "a second test sshd starts"
else
	echo "SetEnv PATH=$NOPOD" >> "$SSHD2/sshd_config"
	kill -HUP "$(cat "$SSHD2/sshd.pid")"
	P2=$(cat "$SSHD2/port")
	check "the second host's login has no podman in its PATH" wait_until 20 \
		sh -c "ssh -n -p $P2 -i '$SSHD2/id_ed25519' -o BatchMode=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR $UH@127.0.0.1 'command -v sh && ! command -v podman' >/dev/null"
	TN=$MNT/targets/nopod
	mkdir "$TN" && wr "$TN/type" ssh && chmod go+x "$TN"
	printf 'host = 127.0.0.1\nport = %s\nuser = %s\nidentity_file = %s\nworkdir = %s\nconnect_timeout = 5\n' \
		"$P2" $UH "$SSHD2/id_ed25519" "$REMOTE/work2" > "$TN/config"
	wr "$TN/ctl" provision
	check "a host without podman attaches" wait_for "$TN/status" Succeeded 30
	ND=$MNT/deployments/nopod
	as mlfs_ua mkdir "$ND"
	as mlfs_ua cp "$D/score.py" "$ND/"
	as mlfs_ua sh -c "echo lin:1 > '$ND/model'; echo nopod > '$ND/target';
		echo py1 > '$ND/environment'"
	check "deploy there: the write succeeds (no network in a write)" \
		as mlfs_ua sh -c "echo deploy > '$ND/ctl'"
	check "… then Failed" wait_for "$ND/status" Failed 60
	check "… saying the host has no podman, and the packages" \
		grep -q "127.0.0.1 has no podman, and the deployment's replicas run in containers there (apt-get install podman runc catatonit uidmap on 127.0.0.1)" \
		"$ND/error"
	check "… one sentence" has_sentence "$ND/error"
	check "delete it" as mlfs_ua sh -c "echo delete > '$ND/ctl'"
	check "… Draft" wait_for "$ND/status" Draft 30
fi

done_testing
