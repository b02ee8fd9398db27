#!/usr/bin/env bash
# The test hosts of the managed cluster tests (scripts/cluster-hosts.sh):
# three network namespaces with their own addresses and sshds, reachable by
# ssh as root and as another user, reaching each other and the controller
# address; a private /run/mlfs-cluster each; slurmd hidden on one; a link
# cut and restored; procs; exec; stop leaves nothing, twice.
source "$(dirname "$0")/../lib.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "# needs root (namespaces, a bridge, sshd on port 22); skipped"
	done_testing
	exit
fi

CH=$ROOT/scripts/cluster-hosts.sh
H=$T/hosts
H2=$T/hosts2
UT=mlfs_ta
chmod 755 "$T"	# other users read authorized_keys through it

hosts_cleanup() {
	"$CH" stop "$H" >/dev/null 2>&1
	"$CH" stop "$H2" >/dev/null 2>&1
}
trap 'hosts_cleanup; cleanup' EXIT
# the runner's timeout sends TERM: clean up (the EXIT trap) before its KILL
trap 'exit 143' TERM INT

# hs USER ADDR COMMAND...: COMMAND on a host, by ssh with the cluster's key
# and its strict known_hosts (ssh's own options after USER: -o …).
hs() {
	local u=$1 a=$2
	shift 2
	ssh -F none -n -i "$CLUSTER_IDENTITY" -o BatchMode=yes -o IdentitiesOnly=yes \
		-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CLUSTER_KNOWN_HOSTS" \
		-o ConnectTimeout="${CT:-10}" -o LogLevel=ERROR -p "$CLUSTER_PORT" \
		"$u@$a" "$@"
}

# hsq USER ADDR COMMAND...: hs, its output dropped.
hsq() { hs "$@" >/dev/null 2>&1; }

# proc_gone PID: PID is gone (or a zombie left for a slow PID 1 to reap).
proc_gone() {
	[[ ! -d /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

all_gone() {
	local p
	for p; do proc_gone "$p" || return 1; done
}

# ---- start ----------------------------------------------------------------

t0=$(now_ms)
if ! "$CH" start "$H" 3 --hide-slurmd 3 > "$T/start.out" 2>&1; then
	sed 's/^/# /' "$T/start.out"
	echo "Bail out! cannot start the test hosts"
	exit 1
fi
ok "start 3 hosts ($(($(now_ms) - t0)) ms)"
source "$H/hosts.env"
read -ra A <<< "$CLUSTER_HOSTS"
K=$(cat "$H/net")
eq "hosts.env lists 3 hosts" 3 "${#A[@]}"
eq "… and 3 namespaces" "mlfs$K-1 mlfs$K-2 mlfs$K-3" "$CLUSTER_NS"
eq "the controller address is the bridge's .1" "10.213.$K.1" "$CLUSTER_GATEWAY"
eq "hosts are .11 .12 .13" "10.213.$K.11 10.213.$K.12 10.213.$K.13" "$CLUSTER_HOSTS"
eq "the port" 22 "$CLUSTER_PORT"
check "the bridge holds the controller address" \
	eval "ip -4 -o addr show dev mlfsbr$K | grep -q ' $CLUSTER_GATEWAY/24 '"
check "known_hosts has each host's address" eval \
	"[[ \$(awk '{print \$1}' '$CLUSTER_KNOWN_HOSTS' | tr '\n' ' ') == '${A[*]} ' ]]"
eq "status: every host up" "up up up" "$("$CH" status "$H" | awk '{print $4}' | xargs)"
SSHD_PIDS=$("$CH" status "$H" | awk '{print $5}' | xargs)
for p in $SSHD_PIDS; do track_pid "$p"; done
check "start again keeps the running hosts" \
	eval "'$CH' start '$H' 3 --hide-slurmd 3 >/dev/null"
eq "… the same sshds" "$SSHD_PIDS" "$("$CH" status "$H" | awk '{print $5}' | xargs)"

# ---- each host is a machine of its own -------------------------------------

for i in 1 2 3; do
	eq "host $i: root logs in, hostname -I is its address" "${A[i - 1]}" \
		"$(hs root "${A[i - 1]}" hostname -I | xargs)"
done
if id "$UT" >/dev/null 2>&1; then
	# sshd without PAM refuses a locked account (useradd's default "!"):
	# let it in with keys only, as scripts/ssh-host.sh does for its users
	[[ $(getent shadow "$UT" | cut -d: -f2) == '!'* ]] && usermod -p '*' "$UT"
	for i in 1 3; do
		eq "host $i: $UT logs in with the key" "$UT ${A[i - 1]}" \
			"$(hs "$UT" "${A[i - 1]}" 'echo $(id -un) $(hostname -I)' | xargs)"
	done
else
	echo "# no user $UT: the non-root login is not checked"
fi
eq "exec runs inside host 2" "${A[1]}" "$("$CH" exec "$H" 2 hostname -I | xargs)"
eq "exec keeps the caller's folder" "$T" "$(cd "$T" && "$CH" exec "$H" 2 pwd)"

eq "host 1 logs in on host 2 with the key" "${A[1]}" "$(hs root "${A[0]}" \
	ssh -F none -n -i "$CLUSTER_IDENTITY" -o BatchMode=yes -o IdentitiesOnly=yes \
	-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$CLUSTER_KNOWN_HOSTS" \
	-o ConnectTimeout=10 -o LogLevel=ERROR "root@${A[1]}" hostname -I | xargs)"
check "host 3 connects to host 2's port 22" \
	hsq root "${A[2]}" "timeout 10 bash -c 'exec 3<>/dev/tcp/${A[1]}/22'"

# a listener on the controller address, outside every host: one line back
python3 - "$CLUSTER_GATEWAY" > "$T/gw.port" <<'PY' &
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
s.settimeout(60)
c, _ = s.accept()
c.sendall(b"controller\n")
c.close()
PY
GWL=$!
wait_until 10 test -s "$T/gw.port"
eq "host 1 reaches this machine at the controller address" controller \
	"$(hs root "${A[0]}" "timeout 10 bash -c 'exec 3<>/dev/tcp/$CLUSTER_GATEWAY/$(cat "$T/gw.port"); cat <&3'")"
kill "$GWL" 2>/dev/null
wait "$GWL" 2>/dev/null

# ---- a private /run/mlfs-cluster per host ----------------------------------

eq "host 1's /run/mlfs-cluster is a tmpfs, 0755" "tmpfs 755" \
	"$(hs root "${A[0]}" 'stat -f -c %T /run/mlfs-cluster; stat -c %a /run/mlfs-cluster' | xargs)"
MARK=mark.$$
check "host 1 writes a file there" hsq root "${A[0]}" "echo one > /run/mlfs-cluster/$MARK"
eq "host 1 reads it back (another ssh session)" one \
	"$(hs root "${A[0]}" "cat /run/mlfs-cluster/$MARK")"
eq "exec on host 1 sees it too" one "$("$CH" exec "$H" 1 cat "/run/mlfs-cluster/$MARK")"
check "host 2 does not see it" hsq root "${A[1]}" "test ! -e /run/mlfs-cluster/$MARK"
check "host 3 does not see it" hsq root "${A[2]}" "test ! -e /run/mlfs-cluster/$MARK"
check "this machine does not see it" test ! -e "/run/mlfs-cluster/$MARK"
check "the rest of the file system is shared (the test folder)" \
	hsq root "${A[1]}" "test -d '$T/hosts'"

# ---- slurmd hidden on host 3 ------------------------------------------------

if command -v slurmd >/dev/null; then
	for i in 1 2; do
		check "host $i: command -v slurmd" hsq root "${A[i - 1]}" 'command -v slurmd'
		check "host $i: slurmd -V" hsq root "${A[i - 1]}" 'slurmd -V'
	done
	check "host 3: command -v slurmd fails (bash)" \
		eval "! hs root '${A[2]}' 'command -v slurmd'"
	check "host 3: command -v slurmd fails (sh)" \
		eval "! hs root '${A[2]}' 'sh -c \"command -v slurmd\"'"
	check "host 3: slurmd -V fails" eval "! hs root '${A[2]}' 'slurmd -V' 2>/dev/null"
	check "host 3: /usr/sbin/slurmd is absent" \
		eval "! hs root '${A[2]}' 'test -e /usr/sbin/slurmd'"
	check "host 3: sshd and the rest of /usr/sbin are still there" \
		hsq root "${A[2]}" 'test -x /usr/sbin/sshd && command -v ip'
	check "this machine still has slurmd" eval "slurmd -V >/dev/null"
else
	echo "# slurmd is not installed: --hide-slurmd is not checked"
fi

# ---- a link cut and restored ------------------------------------------------

check "link 2 down" "$CH" link "$H" 2 down
t0=$(now_ms)
check "ssh to host 2 fails while its link is down" eval "! CT=3 hsq root '${A[1]}' true"
check "… within the connect timeout ($(($(now_ms) - t0)) ms)" \
	eval "(( $(now_ms) - t0 < 3000 * WAIT_SCALE ))"
check "host 1 still answers" eval "CT=3 hs root '${A[0]}' true"
check "host 1 cannot reach host 2 either" \
	eval "! hs root '${A[0]}' \"timeout 3 bash -c 'exec 3<>/dev/tcp/${A[1]}/22'\""
eq "host 2's sshd still runs (status)" up "$("$CH" status "$H" | awk '$1 == 2 {print $4}')"
check "link 2 up" "$CH" link "$H" 2 up
check "ssh to host 2 works again" wait_until 20 eval "CT=3 hs root '${A[1]}' true"

# ---- procs ----------------------------------------------------------------

check "host 2 has no process but its sshd" eval "[[ -z \$('$CH' procs '$H' 2) ]]"
check "start a sleep on host 1 that outlives the ssh session" \
	hsq root "${A[0]}" 'setsid nohup sleep 600 </dev/null >/dev/null 2>&1 &'
sleep_on_1() {
	local p
	for p in $("$CH" procs "$H" 1); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == sleep ]] && { echo "$p"; return 0; }
	done
	return 1
}
check "procs lists it" wait_until 10 eval "sleep_on_1 >/dev/null"
SLEEP=$(sleep_on_1)
check "procs does not list the sshd" eval \
	"! '$CH' procs '$H' 1 | grep -qx '$(echo "$SSHD_PIDS" | cut -d' ' -f1)'"
check "procs of host 3 does not list host 1's sleep" eval \
	"! '$CH' procs '$H' 3 | grep -qx '$SLEEP'"

# ---- a second DIR at the same time --------------------------------------------

check "a second set of hosts starts beside the first" eval "'$CH' start '$H2' 1 >/dev/null"
K2=$(cat "$H2/net" 2>/dev/null)
check "… on another subnet ($K vs $K2)" eval "[[ -n '$K2' && '$K2' != '$K' ]]"
check "… reachable" eval "CLUSTER_KNOWN_HOSTS='$H2/known_hosts' \
	CLUSTER_IDENTITY='$H2/id_ed25519' hs root 10.213.$K2.11 true"
for p in $("$CH" status "$H2" | awk '{print $5}'); do track_pid "$p"; done
check "stop it" eval "'$CH' stop '$H2' >/dev/null"

# ---- stop --------------------------------------------------------------------

t0=$(now_ms)
check "stop" eval "'$CH' stop '$H' >/dev/null"
echo "# stop took $(($(now_ms) - t0)) ms"
check "no namespace is left" eval "! ip netns list | grep -q '^mlfs\($K\|$K2\)-'"
check "no bridge is left" eval "! ip link show mlfsbr$K >/dev/null 2>&1"
check "no veth is left" eval "! ip -o link | grep -q ' mlfs$K-'"
check "the sshds are gone" wait_until 5 all_gone $SSHD_PIDS
check "the sleep started on host 1 is gone" wait_until 5 all_gone "$SLEEP"
eq "status: every host down" "down down down" "$("$CH" status "$H" | awk '{print $4}' | xargs)"
check "status exits 3 when down" eval "'$CH' status '$H' >/dev/null; [[ \$? == 3 ]]"
check "stop twice is fine" eval "'$CH' stop '$H' >/dev/null"
check "DIR is left (keys, hosts.env)" test -s "$H/hosts.env" -a -s "$H/id_ed25519"
check "stop of a DIR never started is fine" eval "'$CH' stop '$T/never' >/dev/null"
check "a bad host count is refused" eval "! '$CH' start '$T/bad' 0 2>/dev/null"
check "--hide-slurmd of a host that does not exist is refused" \
	eval "! '$CH' start '$T/bad' 2 --hide-slurmd 3 2>/dev/null"
check "procs of an unknown host is refused" eval "! '$CH' procs '$H' 9 2>/dev/null"
check "exec on a stopped host is refused" eval "! '$CH' exec '$H' 1 true 2>/dev/null"

done_testing
