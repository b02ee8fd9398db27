#!/usr/bin/env bash
# An endpoint in front of a deployment on the local target and one on an
# ssh target (issue 16, item 3), against a real, private sshd on loopback
# (scripts/ssh-host.sh) and the real proxy (HAProxy): a 50/50 split
# reaches both (answers counted by deployment, within 5 sd of 200
# requests, and the access log names both), the pinning header sends
# every request to the ssh one, and each request on one connection to the
# next of its replicas on the host (their direct ports; direct_ports = no:
# the host's service port; a rolling update there under a client loop
# loses no request), its replicas killed on the host (kept from
# coming back by a gate file their init() waits on) take it out of the
# rotation: the endpoint Unhealthy with the reason in `error`, every
# request answered by the local one, none failed; the gate opened, it
# comes back (Healthy, answering, its share of a split again).
source "$(dirname "$0")/../lib.sh"

[[ -x /usr/sbin/haproxy ]] || { echo "1..0 # SKIP no haproxy"; exit 0; }

SSHD=$T/sshd
WORK=$T/remote

# the daemon first (it would restart what dies), then the proxies and
# the host's processes
trap 'keep=${KEEP:-}; KEEP=1 cleanup_deep; ep_stop_proxies; rm -f "$T"/hold.*
host_kill; sshd_cut; [[ -n $keep ]] || rm -rf "$T"' EXIT

if ! sshd_start; then
	echo "Bail out! cannot start a test sshd"
	exit 1
fi
source "$SSHD/host.env"
SSH_HOST=localhost	# a name: the proxy resolves it

mount_or_bail
ssh_box box
mkdir -p "$MNT/models/m/1"
echo '{}' > "$MNT/models/m/1/model.json"

# make_dep NAME [TARGET]: a deployment answering its name; its init()
# waits while $T/hold.NAME exists (the host is this machine), so that
# replicas killed on the host stay out until the test opens the gate.
make_dep() {
	local d=$MNT/deployments/$1
	mkdir "$d"
	cat > "$d/score.py" <<PY
import os, time
def init():
    while os.path.exists("$T/hold.$1"):
        time.sleep(0.05)
def run(data):
    return {"version": "$1", "pid": os.getpid()}
PY
	wr "$d/model" m:1
	[[ -z ${2:-} ]] || { wr "$d/target" "$2"; wr1 "$d/config" $'replicas = 2\n'; }
	deploy_timed "$d" 60
}
make_dep here
make_dep there box
THERE=$MNT/deployments/there
check "the ssh deployment's URI names the host: $URI" \
	eval "[[ '$URI' =~ ^http://localhost:[0-9]+/score$ ]]"

E=$MNT/endpoints/mixed
mkdir "$E"
check "traffic here 50 there 50" \
	sh -c "printf 'here 50\nthere 50\n' > '$E/traffic'"
check "the local deployment joins" wr "$MNT/deployments/here/endpoint" mixed
check "the ssh deployment joins" wr "$THERE/endpoint" mixed
check "start" wr "$E/ctl" start
check "Healthy" wait_for "$E/status" Healthy 30
EURI=$(cat "$E/scoring_uri")
K=$(cat "$E/keys/primary")
post() { curl -s -m 10 -H "Authorization: Bearer $K" -d '{"x": 1}' "$@" "$EURI"; }
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' "$@"; }
pinned() { post -H 'azureml-model-deployment: there'; }
check "the ssh deployment is behind it (pinned)" wait_until 30 \
	eval "[[ \$(pinned) == *there* ]]"

# ---- 50/50 reaches both ---------------------------------------------------------
count() {	# count N: "HERE THERE OTHER" answers of N requests
	local h=0 t=0 o=0 a
	for _ in $(seq "$1"); do
		a=$(post)
		case $a in
		*'"here"'*) h=$((h + 1)) ;;
		*'"there"'*) t=$((t + 1)) ;;
		*) o=$((o + 1)) ;;
		esac
	done
	echo "$h $t $o"
}
read -r nh nt no <<< "$(count 200)"
# 200 requests at p = 0.5: mean 100, sd 7.1; 5 sd either way
check "here took 50 % of 200 within 5 sd ($nh)" eval "((nh >= 65 && nh <= 135))"
check "there took the rest ($nt)" eval "((nt == 200 - nh))"
eq "no request failed" 0 "$no"
check "the access log names both" wait_until 10 eval \
	"grep -qE '^[0-9T:-]+Z here 200 [0-9]+$' '$E/log' && grep -qE '^[0-9T:-]+Z there 200 [0-9]+$' '$E/log'"
check "stats: the ssh deployment with its 2 replicas, up" wait_until 10 \
	eval "grep -qE '^there [0-9]+ 0 [0-9-]+ [0-9-]+ 2 [0-9]+ up$' '$E/stats'"
all_there=1
for _ in $(seq 20); do [[ $(pinned) == *there* ]] || all_there=0; done
check "the pinning header sends all 20 to the ssh deployment" eval "((all_there))"

# ---- each request to the next of its replicas on the host --------------------------
# The proxy reaches each replica at its own direct port on the host (the
# host's address, resolved from its name): 20 requests on one keep-alive
# connection go to both.  Through the host's shared port alone they would
# all reach the replica that the proxy's connection hashed to.
there_slots() {	# the ssh deployment's slots in use: "ADDRESS" lines
	ep_stats addr status | awk '$1 == "dep_there" && $2 ~ /^r[0-9]+$/ &&
		$4 != "MAINT" { print $3 }'
}
check "2 of its 48 slots in use" wait_until 30 \
	eval '[[ $(there_slots | wc -l) == 2 ]]'
SPORT=${URI##*:}
SPORT=${SPORT%%/*}
check "… each at the host's address, at a port of its own (not $SPORT)" \
	eval '[[ $(there_slots | grep -E "^127\.0\.0\.1:[0-9]+$" | grep -vc ":$SPORT\$") == 2 ]]'
there_balanced() {
	local i urls=()
	for i in $(seq 20); do urls+=("$EURI"); done
	curl -s -m 10 -H "Authorization: Bearer $K" \
		-H 'azureml-model-deployment: there' -d '{}' "${urls[@]}" |
		grep -o '"pid": [0-9]*' | sort | uniq -c |
		awk '$1 >= 8 {n++} END {exit n != 2}'
}
check "20 pinned requests on one connection: both replicas, 8+ each" \
	wait_until 30 there_balanced

# ---- a rolling update on the host under a client loop --------------------------------
# The new replicas take free slots at their ports; an old one is told to
# drain only once its slot is in maintenance (the TERM goes over ssh).
client_start "$EURI" "$K"
check "a client loop gets answers" wait_until 20 test -e "$T/stop.ready"
check "the ssh deployment rolls out generation 2" wr "$THERE/ctl" deploy
check "… generation 2 serves, 2 replicas ready" wait_until 90 \
	eval "serves_gen '$THERE' 2 && [[ \$(head -1 '$THERE/replicas') == 'ready 2' ]]"
client_stop
check "$NREQ requests across its rolling update, 0 failed" \
	eval "((NREQ > 0 && NFAIL == 0))"
check "2 of its slots in use again, at the new replicas' own ports" \
	wait_until 30 eval '[[ $(there_slots | grep -vc ":$SPORT\$") == 2 ]]'
check "… both of generation 2 answer on one connection" \
	wait_until 30 there_balanced

# ---- its replicas killed on the host: out of the rotation ---------------------------
P=$(ready_pids "$THERE")
eq "two replicas on the host" 2 "$(wc -w <<< "$P")"
touch "$T/hold.there"	# restarted replicas wait in init()
kill -9 $P
check "the endpoint turns Unhealthy" wait_for "$E/status" Unhealthy 30
check "error names the ssh deployment and says why" \
	grep -q "deployment 'there' is out of the rotation: its replicas do not answer" "$E/error"
check "error is one sentence" has_sentence "$E/error"
# (the proxy's check may see it before the ssh target's watch does)
check "the deployment's events say its replicas were killed" wait_until 30 \
	eval "[[ \$(ev_count 'deployment there replica [0-9]+ was killed by signal 9') -ge 2 ]]"
check "stats says it is down" grep -qE '^there .* down$' "$E/stats"
read -r nh nt no <<< "$(count 50)"
eq "all 50 requests answered by the local deployment (its weight moved)" \
	"50 0 0" "$nh $nt $no"
client_start "$EURI" "$K"
check "a client loop gets answers meanwhile" wait_until 20 test -e "$T/stop.ready"
eq "a request pinned to it is 503 (it does not answer)" 503 \
	"$(code -H "Authorization: Bearer $K" -H 'azureml-model-deployment: there' -d '{}' "$EURI")"
client_stop
check "$NREQ requests of the client loop, 0 failed" \
	eval "((NREQ > 0 && NFAIL == 0))"
eq "… all answered by the local one" here "$SEEN"

# ---- back once its replicas answer --------------------------------------------------
rm -f "$T/hold.there"
check "the deployment is Healthy again" wait_for "$THERE/status" Healthy 60
check "the endpoint is Healthy again" wait_for "$E/status" Healthy 30
eq "its error is empty" "" "$(cat "$E/error")"
check "new processes on the host" eval "[[ ' $(ready_pids "$THERE") ' != *' ${P%% *} '* ]]"
check "pinned requests reach it again" wait_until 20 eval "[[ \$(pinned) == *there* ]]"
read -r nh nt no <<< "$(count 100)"
check "a split reaches both again ($nh here, $nt there)" \
	eval "((nh > 0 && nt > 0 && no == 0))"

# ---- direct_ports = no: through the host's service port ----------------------------
# (for a host whose firewall lets only the service's port through)
S=$MNT/targets/shut
mkdir "$S" && wr "$S/type" ssh
ssh_config "workdir = $WORK" "connect_timeout = 3" "direct_ports = maybe" \
	> "$S/config"
expect_err "direct_ports = maybe is refused" "Invalid argument" \
	wr "$S/ctl" provision
check "… with a sentence naming the choices" \
	grep -q "direct_ports must be yes or no, not 'maybe'" "$S/error"
ssh_config "workdir = $WORK" "connect_timeout = 3" "direct_ports = no" \
	> "$S/config"
wr "$S/ctl" provision
check "the target with direct_ports = no attaches" \
	wait_for "$S/status" Succeeded 20
make_dep far shut
check "far joins" wr "$MNT/deployments/far/endpoint" mixed
check "far answers pinned through the endpoint" wait_until 30 eval \
	"[[ \$(post -H 'azureml-model-deployment: far') == *far* ]]"
eq "none of far's slots in use (its service's port only)" "0" \
	"$(ep_stats status | awk '$1 == "dep_far" && $2 ~ /^r[0-9]+$/ &&
		$3 != "MAINT"' | wc -l)"
far_ok=1
for _ in $(seq 10); do
	[[ $(post -H 'azureml-model-deployment: far') == *far* ]] || far_ok=0
done
check "10 more pinned requests answered" eval "((far_ok))"
check "delete far" wr "$MNT/deployments/far/ctl" delete
check "far is Draft" wait_for "$MNT/deployments/far/status" Draft 30

# ---- the ssh deployment deleted under a client loop ---------------------------------
client_start "$EURI" "$K"
check "a client loop gets answers" wait_until 20 test -e "$T/stop.ready"
check "delete the ssh deployment" wr "$THERE/ctl" delete
eq "traffic: here 100" "here 100" "$(cat "$E/traffic")"
check "it is Draft" wait_for "$THERE/status" Draft 30
check "the proxy dropped it" wait_until 20 eval "! grep -q '^there ' '$E/stats'"
client_stop
check "$NREQ requests across the delete, 0 failed" \
	eval "((NREQ > 0 && NFAIL == 0))"
check "its folder leaves the host" \
	wait_until 30 eval "[[ -z \$(ls -d '$WORK'/deploy-* 2>/dev/null) ]]"

check "rmdir of the endpoint" rmdir "$E"
check "unmount exits 0" unmount_ws
done_testing
