#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-hosts.sh — N throwaway "machines" on this one, for the managed
# cluster tests: each host is a network namespace with its own address on a
# private bridge, running its own sshd in a private mount namespace.
#
#   scripts/cluster-hosts.sh start  DIR N [--hide-slurmd I[,I...]]
#   scripts/cluster-hosts.sh stop   DIR          idempotent; no-op when nothing runs
#   scripts/cluster-hosts.sh status DIR          "I ADDR NS up|down SSHD_PID|-" per host;
#                                                exit 0 when every host is up, else 3
#   scripts/cluster-hosts.sh link   DIR I up|down   cut / restore host I's link
#   scripts/cluster-hosts.sh procs  DIR I        pids in host I's netns but sshd's, one a line
#   scripts/cluster-hosts.sh exec   DIR I CMD... run CMD inside host I (its netns and mount ns)
#   scripts/cluster-hosts.sh fresh  DIR I        make host I a machine without Slurm (below)
#   scripts/cluster-hosts.sh gpus   DIR I N      give host I N test GPUs (below)
#
# start on a DIR whose hosts run keeps them when N and the hidden hosts are
# the same, else stops them and starts afresh.  status says up when the
# host's sshd runs (a link cut by `link … down` leaves it up).
#
# Network: 10.213.K.0/24 (MLFS_CLUSTER_NET=A.B changes 10.213), K picked so
# that no route or address of this machine and no other DIR overlaps it, and
# kept in DIR/net.  Bridge mlfsbrK holds .1 (the controller address the hosts
# see this machine at); host I is .(10+I) in namespace mlfsK-I, reached
# through the veth pair mlfsK-I (bridge side) / mlfsK-Ip (inside the host).
#
# Each host's sshd runs inside its netns and in a mount namespace of its own
# where a fresh tmpfs (0755) sits on /run/mlfs-cluster: what a host writes
# there is seen by no other host and not by this machine.  Everything else of
# the file system is shared with this machine (so the state dir is reachable
# at the same path, as on a real cluster with a shared file system; and so is
# the dpkg database: apt on a host installs on this machine).
# --hide-slurmd I: on host I, slurmd's directory is overlaid with a whiteout
# of slurmd, so `command -v slurmd` and `slurmd -V` fail there only.
# `fresh DIR I` (once host I runs) gives host I a file system of its own
# where slurmd and munge are not installed, as on a new machine: /usr,
# /etc and /var become overlays of this machine's whose changes stay in a
# tmpfs of the host, /run a tmpfs; slurmd and munge are removed from its
# dpkg database; services are not started on install (policy-rc.d, as in
# a container).  `apt-get install slurmd munge` on the host then installs
# there only, from this machine's apt cache (the packages are downloaded
# into it first when missing: the hosts have no way out).
# `gpus DIR I N` gives host I N test GPUs of its own: /dev/nvidia0..N-1
# (character devices 195:K on an overlay of /dev, which no program opens
# here) and an nvidia-smi whose -L lists them.  Slurm schedules them as it
# would real ones (gres.conf names the device files); what runs on them
# must not use CUDA.
#
# DIR holds every file: one host key and sshd_config-I per host, sshd-I.pid,
# sshd-I.log, the user key id_ed25519 (+ .pub), authorized_keys (used for
# every user: root and any existing user can log in with the key),
# known_hosts (every host's address) and hosts.env (sourceable):
#   CLUSTER_HOSTS CLUSTER_GATEWAY CLUSTER_IDENTITY CLUSTER_KNOWN_HOSTS
#   CLUSTER_PORT CLUSTER_NS
# /etc/ssh is never read.  Keys and K survive stop/start.  Must run as root.
# With `UsePAM no` sshd refuses a locked account (password field "!…",
# useradd's default): `usermod -p '*' USER` lets it in with the key only.
# Knobs: MLFS_CLUSTER_WAIT (seconds start waits for the sshds, default 20).
set -euo pipefail

SSHD=/usr/sbin/sshd
NET=${MLFS_CLUSTER_NET:-10.213}
WAIT_SECS=${MLFS_CLUSTER_WAIT:-20}
PRIVATE_RUN=/run/mlfs-cluster
# Subnets handed out to some DIR (one symlink K -> DIR each), so that two
# DIRs started at the same time never pick the same K.
NET_REG=${MLFS_CLUSTER_REGISTRY:-/tmp/mlfs-cluster-nets}
MAX_HOSTS=200

die() { echo "cluster-hosts: $*" >&2; exit 1; }
log() { echo "cluster-hosts: $*" >&2; }

usage() {
	cat >&2 <<EOF
usage: $0 start DIR N [--hide-slurmd I[,I...]] | stop DIR | status DIR
       $0 link DIR I up|down | procs DIR I | exec DIR I CMD... | fresh DIR I
       $0 gpus DIR I N
EOF
	exit 2
}

# now_ms: wall clock in milliseconds (every wait here is bounded by it).
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ---- packages ------------------------------------------------------------

pkg_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *"ok installed" ]]
}

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null &&
		apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The tools are required; slurmd and munge only make the hosts look like
# compute nodes (and give --hide-slurmd something to hide): a failed
# install of those is a warning.
install_missing() {
	local missing=() extra=() p
	for p in iproute2 openssh-server openssh-client util-linux; do
		pkg_installed "$p" || missing+=("$p")
	done
	for p in slurmd munge; do
		pkg_installed "$p" || extra+=("$p")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]} ${extra[*]}"
		apt_install "${missing[@]}" "${extra[@]}" ||
			die "apt-get install ${missing[*]} ${extra[*]} failed"
	elif ((${#extra[@]})); then
		log "installing ${extra[*]}"
		apt_install "${extra[@]}" ||
			log "warning: apt-get install ${extra[*]} failed; the hosts have no slurmd"
	fi
	return 0
}

# ---- names ---------------------------------------------------------------

# Set K from DIR/net (fails when none was ever recorded).
load_net() {
	[[ -s $DIR/net ]] || return 1
	K=$(cat "$DIR/net")
	[[ $K =~ ^[0-9]+$ ]] && ((K >= 1 && K <= 254)) || die "bad $DIR/net: $K"
}

addr_of() { echo "$NET.$K.$((10 + $1))"; }
gw() { echo "$NET.$K.1"; }
bridge() { echo "mlfsbr$K"; }
ns_of() { echo "mlfs$K-$1"; }
veth_of() { echo "mlfs$K-$1"; }		# the bridge side, in this namespace
peer_of() { echo "mlfs$K-${1}p"; }	# the host side, in the host's namespace

# The number of hosts DIR was started with (0 when never started).
host_count() { cat "$DIR/count" 2>/dev/null || echo 0; }

check_index() {
	[[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= $(host_count))) ||
		die "no host $1 in $DIR (hosts 1..$(host_count))"
}

ns_exists() { [[ -e /run/netns/$1 ]]; }

# ---- subnets -------------------------------------------------------------

ip_int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# overlaps A/LA B/LB: the two prefixes share an address.
overlaps() {
	local a=${1%/*} la=${1#*/} b=${2%/*} lb=${2#*/} l mask
	l=$((la < lb ? la : lb))
	((l == 0)) && return 0
	mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
	(($(($(ip_int "$a") & mask)) == $(($(ip_int "$b") & mask))))
}

# Every IPv4 prefix this machine routes or holds, one a line (the default
# route left out: it overlaps everything and is no address of ours).
used_prefixes() {
	ip -4 -o route show table all 2>/dev/null | awk '
		$1 ~ /^(unicast|local|broadcast|multicast|throw|unreachable|prohibit|blackhole|nat|anycast)$/ { $1 = $2 }
		$1 != "default" { print ($1 ~ /\//) ? $1 : $1 "/32" }'
	ip -4 -o addr show 2>/dev/null | awk '{ print $4 }'
}

# net_free K: nothing of this machine overlaps NET.K.0/24 and no bridge or
# namespace of that K is left over from a DIR that is gone.
net_free() {
	local p
	while read -r p; do
		[[ $p == */* ]] || continue
		overlaps "$p" "$NET.$1.0/24" && return 1
	done < <(used_prefixes)
	ip link show "mlfsbr$1" >/dev/null 2>&1 && return 1
	ip netns list 2>/dev/null | grep -q "^mlfs$1-" && return 1
	return 0
}

# Reserve K for DIR in the registry (caller holds the registry lock); fails
# if another DIR that still records K holds it.
net_reserve() {
	local link="$NET_REG/$NET.$1" other
	ln -sn "$DIR" "$link" 2>/dev/null && return 0
	other=$(readlink "$link" 2>/dev/null) || return 1
	[[ $other == "$DIR" ]] && return 0
	[[ $(cat "$other/net" 2>/dev/null) == "$1" ]] && return 1
	ln -sfn "$DIR" "$link"	# stale: that DIR is gone or moved on
}

registry_lock() {
	mkdir -p "$NET_REG"
	exec 8>>"$NET_REG/.lock"
	flock 8
}

# Set K: the one DIR had if it is still free, else the first free one.
pick_net() {
	local k
	registry_lock
	if load_net 2>/dev/null && net_free "$K" && net_reserve "$K"; then
		exec 8>&-
		return 0
	fi
	for ((k = 1; k <= 254; k++)); do
		net_free "$k" && net_reserve "$k" || continue
		K=$k
		echo "$K" >"$DIR/net"
		exec 8>&-
		return 0
	done
	die "no free subnet in $NET.1.0/24 .. $NET.254.0/24"
}

# ---- processes -----------------------------------------------------------

# True while process $1 exists and is not a zombie (a slow-reaping PID 1
# may leave a dead process a zombie for a while).
proc_alive() {
	[[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# in_ns PID NS: process PID lives in network namespace NS.
in_ns() {
	local want have
	want=$(stat -L -c %i "/run/netns/$2" 2>/dev/null) || return 1
	have=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || return 1
	[[ $want == "$have" ]]
}

# Print the pid of host $1's sshd if it runs, else nothing (and return 1):
# the pid file's process must be our sshd binary, started with host $1's
# config, in host $1's namespace.
sshd_pid() {
	local pid exe f=$DIR/sshd-$1.pid
	[[ -s $f ]] || return 1
	pid=$(head -n1 "$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	case "$exe" in "$SSHD" | "$SSHD (deleted)") ;; *) return 1 ;; esac
	# the listener rewrites its title to "sshd: /usr/sbin/sshd -D -f … [listener] …"
	[[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"-f $DIR/sshd_config-$1 "* ]] ||
		return 1
	in_ns "$pid" "$(ns_of "$1")" || return 1
	echo "$pid"
}

# ns_pids NS: the processes in network namespace NS, one a line.
ns_pids() { ns_exists "$1" && ip netns pids "$1" 2>/dev/null || true; }

# wait_gone MS PID...: wait up to MS milliseconds for every PID to go;
# print those still there.
wait_gone() {
	local end=$(($(now_ms) + $1)) p left
	shift
	while :; do
		left=()
		for p; do proc_alive "$p" && left+=("$p"); done
		((${#left[@]} == 0)) && return 0
		(($(now_ms) < end)) || break
		sleep 0.05
	done
	echo "${left[*]}"
	return 1
}

# stop_host_procs I: TERM host I's sshd and every process in its namespace
# (each checked to be in that namespace right before the signal: a pid
# reused since is left alone), KILL what is left after a short wait.
stop_host_procs() {
	local ns pids=() p left sig ms
	ns=$(ns_of "$1")
	p=$(sshd_pid "$1") && pids+=("$p")
	for p in $(ns_pids "$ns"); do pids+=("$p"); done
	((${#pids[@]})) || return 0
	for sig in TERM KILL; do
		for p in "${pids[@]}"; do
			in_ns "$p" "$ns" && kill "-$sig" "$p" 2>/dev/null
		done
		ms=3000
		[[ $sig == KILL ]] && ms=2000
		left=$(wait_gone "$ms" "${pids[@]}") && return 0
		read -ra pids <<<"$left"
		[[ $sig == TERM ]] && log "host $1: ${pids[*]} ignored TERM, sending KILL"
	done
	log "warning: host $1: ${pids[*]} survived KILL"
}

# ---- files in DIR --------------------------------------------------------

make_keys() {
	local i
	for ((i = 1; i <= $1; i++)); do
		[[ -s $DIR/ssh_host_ed25519_key-$i ]] ||
			ssh-keygen -q -t ed25519 -N '' -C "mlfs-cluster-host-$i" \
				-f "$DIR/ssh_host_ed25519_key-$i"
		chmod 600 "$DIR/ssh_host_ed25519_key-$i"
	done
	[[ -s $DIR/id_ed25519 ]] ||
		ssh-keygen -q -t ed25519 -N '' -C mlfs-cluster-user -f "$DIR/id_ed25519"
	chmod 600 "$DIR/id_ed25519"
	# read by sshd as the logging-in user: must be readable by any user
	cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
	chmod 644 "$DIR/authorized_keys" "$DIR/id_ed25519.pub"
}

# Warn when a user other than root could not reach authorized_keys.
check_reachable() {
	local d=$DIR
	while [[ $d != / ]]; do
		if (($(stat -c '0%a' "$d") & 1)); then
			d=$(dirname "$d")
			continue
		fi
		log "note: $d is not searchable by other users: only root can log in"
		return 0
	done
}

write_config() {	# write_config I
	cat >"$DIR/sshd_config-$1" <<EOF
# generated by scripts/cluster-hosts.sh — host $1 of a throwaway test cluster
Port 22
ListenAddress $(addr_of "$1")
HostKey $DIR/ssh_host_ed25519_key-$1
PidFile $DIR/sshd-$1.pid
AuthorizedKeysFile $DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
LogLevel VERBOSE
PrintMotd no
UseDNS no
# a cluster driver opens many connections at once
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
EOF
}

write_env() {	# write_env N
	local i hosts=() nss=() tmp=$DIR/hosts.env.tmp
	for ((i = 1; i <= $1; i++)); do
		hosts+=("$(addr_of "$i")")
		nss+=("$(ns_of "$i")")
	done
	{
		echo "CLUSTER_HOSTS=\"${hosts[*]}\""
		echo "CLUSTER_GATEWAY=$(gw)"
		printf 'CLUSTER_IDENTITY=%q\n' "$DIR/id_ed25519"
		printf 'CLUSTER_KNOWN_HOSTS=%q\n' "$DIR/known_hosts"
		echo "CLUSTER_PORT=22"
		echo "CLUSTER_NS=\"${nss[*]}\""
	} >"$tmp"
	mv -f "$tmp" "$DIR/hosts.env"
	for ((i = 1; i <= $1; i++)); do
		echo "$(addr_of "$i") $(cut -d' ' -f1,2 "$DIR/ssh_host_ed25519_key-$i.pub")"
	done >"$DIR/known_hosts"
	chmod 644 "$DIR/known_hosts" "$DIR/hosts.env"
}

# ---- the network ---------------------------------------------------------

make_bridge() {
	local br
	br=$(bridge)
	ip link add "$br" type bridge forward_delay 0
	ip addr add "$(gw)/24" dev "$br"
	ip link set "$br" up
}

make_host_net() {	# make_host_net I
	local ns veth peer
	ns=$(ns_of "$1") veth=$(veth_of "$1") peer=$(peer_of "$1")
	ip netns add "$ns"
	ip link add "$veth" type veth peer name "$peer" netns "$ns"
	ip link set "$veth" master "$(bridge)" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$(addr_of "$1")/24" dev "$peer"
	ip -n "$ns" link set "$peer" up
	ip -n "$ns" route add default via "$(gw)"
}

# br_netfilter sends bridged frames through iptables: a FORWARD chain that
# drops would cut the hosts off from each other (not from this machine).
# Say so; global firewall rules are not ours to change.
check_bridge_nf() {
	local v
	v=$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null) || return 0
	[[ $v == 1 ]] || return 0
	if command -v iptables >/dev/null &&
		iptables -S FORWARD 2>/dev/null | grep -Eq -- '^-P FORWARD DROP|-j (DROP|REJECT)'; then
		log "warning: net.bridge.bridge-nf-call-iptables = 1 and iptables' FORWARD chain drops:" \
			"traffic between the hosts may be dropped (allow $NET.$K.0/24 on $(bridge), or set the sysctl to 0)"
	fi
	if command -v nft >/dev/null &&
		nft list ruleset 2>/dev/null | grep -Eq 'hook forward.*policy drop'; then
		log "warning: net.bridge.bridge-nf-call-iptables = 1 and an nftables forward chain drops:" \
			"traffic between the hosts may be dropped"
	fi
	return 0
}

# ---- sshd ----------------------------------------------------------------

# What runs inside the host before sshd: its private tmpfs, and the overlay
# that hides slurmd.  Arguments: CONFIG LOG [HIDE_DIR TARGET_DIR].
# (An empty file bind-mounted over slurmd is not enough: bash's `command -v`
# still prints a non-executable file found in PATH, so the name must go.)
HOST_SH='
# the FUSE mounts of this machine were copied into the host: let them go,
# or a daemon whose mount is one of them could not exit when unmounted
awk -F " - " "{ split(\$2, b, \" \"); split(\$1, a, \" \")
	if (b[1] ~ /^fuse/) print a[5] }" /proc/self/mountinfo |
while read -r mp; do umount -l "$mp" 2>/dev/null; done
mount -t tmpfs -o mode=0755 tmpfs '"$PRIVATE_RUN"' || exit 1
# `ip netns exec` gave the host a sysfs of its own, without the cgroup
# file systems slurmd needs: mount the machine'"'"'s hierarchies again
mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup || exit 1
awk -F " - " "{ split(\$1, a, \" \"); split(\$2, b, \" \")
	if ((b[1] == \"cgroup\" || b[1] == \"cgroup2\") && a[5] ~ \"^/sys/fs/cgroup/\")
		print a[5], b[1], b[3] }" /proc/1/mountinfo |
while read -r mp fs opts; do
	mkdir -p "$mp" && mount -t "$fs" -o "$opts" "$fs" "$mp" || exit 1
done
if [ -n "${3:-}" ]; then
	mount -t overlay overlay -o "lowerdir=$3:$4" "$4" || exit 1
fi
exec '"$SSHD"' -D -f "$1" -E "$2"'

# The directory whose overlay hides slurmd ("" when slurmd is not here).
SLURMD_BIN=
hide_setup() {
	local p
	p=$(command -v slurmd 2>/dev/null) || {
		log "warning: slurmd is not installed: --hide-slurmd has nothing to hide"
		return 0
	}
	SLURMD_BIN=$(readlink -f "$p")
	[[ $DIR != *[:,]* && $SLURMD_BIN != *[:,]* ]] ||
		die "--hide-slurmd: DIR must not contain ':' or ','"
	rm -rf "$DIR/hide-slurmd"
	mkdir -p "$DIR/hide-slurmd"
	mknod "$DIR/hide-slurmd/$(basename "$SLURMD_BIN")" c 0 0	# an overlay whiteout
}

launch_sshd() {	# launch_sshd I HIDE(0|1)
	local args=("$DIR/sshd_config-$1" "$DIR/sshd-$1.log")
	[[ $2 == 1 && -n $SLURMD_BIN ]] &&
		args+=("$DIR/hide-slurmd" "$(dirname "$SLURMD_BIN")")
	rm -f "$DIR/sshd-$1.pid"
	echo "--- $(date -u +%FT%TZ) start in $(ns_of "$1")" >>"$DIR/sshd-$1.log"
	"$SSHD" -t -f "$DIR/sshd_config-$1" 2>>"$DIR/sshd-$1.log" ||
		fail "sshd -t rejects $DIR/sshd_config-$1" "$1"
	# its own session: not stopped with the caller's process group; no
	# stdout, so that `$(cluster-hosts.sh start …)` returns
	setsid ip netns exec "$(ns_of "$1")" \
		unshare --mount --propagation private \
		sh -c "$HOST_SH" sh "${args[@]}" \
		</dev/null >>"$DIR/sshd-$1.log" 2>&1 &
}

# True when root can log in on host $1 and run `true`.
can_login() {
	ssh -F none -n -i "$DIR/id_ed25519" -o BatchMode=yes -o IdentitiesOnly=yes \
		-o ConnectTimeout=2 -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$DIR/known_hosts" -o LogLevel=ERROR \
		root@"$(addr_of "$1")" true </dev/null >/dev/null 2>&1
}

# Wait (until the wall time $1, ms) for host $2's sshd to answer.
wait_host() {
	while :; do
		sshd_pid "$2" >/dev/null && can_login "$2" && return 0
		(($(now_ms) < $1)) || return 1
		sleep 0.1
	done
}

# fail SENTENCE [I]: undo the start, say why (with host I's sshd log), exit 1.
fail() {
	echo "cluster-hosts: $1" >&2
	if [[ -n ${2:-} ]]; then
		echo "cluster-hosts: tail of $DIR/sshd-$2.log:" >&2
		tail -n 15 "$DIR/sshd-$2.log" >&2 2>/dev/null || true
	fi
	if [[ $(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null) == 1 ]]; then
		echo "cluster-hosts: (net.bridge.bridge-nf-call-iptables = 1: a firewall's FORWARD rules also see the bridge)" >&2
	fi
	do_stop >/dev/null 2>&1 || true
	exit 1
}

# ---- verbs ---------------------------------------------------------------

# All N hosts of DIR are up, with the same hidden set as asked now.
all_up() {
	local i
	[[ $(host_count) == "$1" && $(cat "$DIR/hidden" 2>/dev/null) == "$2" ]] || return 1
	load_net 2>/dev/null || return 1
	for ((i = 1; i <= $1; i++)); do sshd_pid "$i" >/dev/null || return 1; done
}

do_start() {
	local n=$1 hide=$2 i end h
	[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_HOSTS)) ||
		die "N must be a number of hosts from 1 to $MAX_HOSTS, not '$n'"
	for h in ${hide//,/ }; do
		[[ $h =~ ^[0-9]+$ ]] && ((h >= 1 && h <= n)) ||
			die "--hide-slurmd $h: no such host (hosts 1..$n)"
	done
	[[ $(id -u) -eq 0 ]] || die "must run as root (namespaces, bridge, sshd on port 22)"
	install_missing
	if all_up "$n" "$hide"; then
		write_env "$n"
		echo "cluster-hosts: already up: $n hosts on $NET.$K.0/24 ($DIR/hosts.env)"
		return 0
	fi
	do_stop >/dev/null	# whatever an earlier start of DIR left
	chmod 755 "$DIR"	# other users read authorized_keys through DIR
	check_reachable
	mkdir -p /run/sshd "$PRIVATE_RUN"
	chmod 755 /run/sshd
	make_keys "$n"
	pick_net
	echo "$n" >"$DIR/count"
	echo "$hide" >"$DIR/hidden"
	write_env "$n"
	[[ -n $hide ]] && hide_setup
	check_bridge_nf
	make_bridge || fail "cannot make bridge $(bridge)"
	for ((i = 1; i <= n; i++)); do
		make_host_net "$i" || fail "cannot make the network of host $i ($(ns_of "$i"))"
		write_config "$i"
		launch_sshd "$i" "$([[ ,$hide, == *",$i,"* ]] && echo 1 || echo 0)"
	done
	end=$(($(now_ms) + WAIT_SECS * 1000))
	for ((i = 1; i <= n; i++)); do
		wait_host "$end" "$i" && continue
		sshd_pid "$i" >/dev/null ||
			fail "host $i ($(addr_of "$i")): its sshd is not running" "$i"
		fail "host $i ($(addr_of "$i")): root cannot log in with $DIR/id_ed25519 within ${WAIT_SECS}s" "$i"
	done
	echo "cluster-hosts: up: $n hosts on $NET.$K.0/24, controller address $(gw) ($DIR/hosts.env)"
}

# Every host index DIR has something of: 1..count, and any namespace of
# its K left with a higher index.
known_hosts_idx() {
	local n i
	n=$(host_count)
	{
		for ((i = 1; i <= n; i++)); do echo "$i"; done
		ip netns list 2>/dev/null | awk -v p="mlfs$K-" \
			'index($1, p) == 1 { print substr($1, length(p) + 1) }'
	} | grep -E '^[0-9]+$' | sort -un
}

do_stop() {
	local i any=0 ns
	load_net 2>/dev/null || { echo "cluster-hosts: not running"; return 0; }
	for i in $(known_hosts_idx); do
		ns=$(ns_of "$i")
		{ ns_exists "$ns" || sshd_pid "$i" >/dev/null; } && any=1
		stop_host_procs "$i"
		rm -f "$DIR/sshd-$i.pid"
		ns_exists "$ns" && ip netns del "$ns"
		ip link del "$(veth_of "$i")" 2>/dev/null || true
	done
	if ip link show "$(bridge)" >/dev/null 2>&1; then
		ip link del "$(bridge)"
		any=1
	fi
	if ((any)); then
		echo "cluster-hosts: stopped the hosts of $DIR"
	else
		echo "cluster-hosts: not running"
	fi
}

do_status() {
	local i n pid all=0
	n=$(host_count)
	((n > 0)) && load_net 2>/dev/null || return 3
	for ((i = 1; i <= n; i++)); do
		if pid=$(sshd_pid "$i"); then
			echo "$i $(addr_of "$i") $(ns_of "$i") up $pid"
		else
			echo "$i $(addr_of "$i") $(ns_of "$i") down -"
			all=3
		fi
	done
	return $all
}

do_link() {	# do_link I up|down
	check_index "$1"
	[[ $2 == up || $2 == down ]] || usage
	load_net || die "$DIR was never started"
	ip link set "$(veth_of "$1")" "$2" ||
		die "cannot set host $1's link $2 (is it running?)"
}

# procs I: the pids in host I's netns but its sshd: the listener and the
# per-connection sshd processes (a session in flight is not the host's).
do_procs() {
	local p exe
	check_index "$1"
	load_net || die "$DIR was never started"
	for p in $(ns_pids "$(ns_of "$1")"); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		[[ $exe == "$SSHD" || $exe == "$SSHD (deleted)" ]] && continue
		echo "$p"
	done
}

do_exec() {	# do_exec I CMD...
	local pid
	check_index "$1"
	load_net || die "$DIR was never started"
	pid=$(sshd_pid "$1") || die "host $1 is not running"
	shift
	# entering a mount namespace moves to its root: keep the caller's folder
	exec nsenter -t "$pid" -n -m --wdns="$PWD" -- "$@"
}

# What `fresh` runs inside the host: overlays whose upper layers live in a
# tmpfs of the host's mount namespace (gone with it), then the removal.
FRESH_SH='
set -ex
F=$1
exec 2>"$F/../fresh.log"
mount -t tmpfs -o mode=0700 tmpfs "$F"
for d in usr etc var; do
	mkdir -p "$F/$d.up" "$F/$d.work"
	mount -t overlay overlay \
		-o "lowerdir=/$d,upperdir=$F/$d.up,workdir=$F/$d.work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd '"$PRIVATE_RUN"'
printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
cp "$F/../debs/"*.deb /var/cache/apt/archives/ 2>/dev/null || true
rm -f /var/lib/man-db/auto-update	# no man index rebuilt on each install
# --remove, not --purge: munge'"'"'s purge deletes the user munge, which
# userdel refuses while any munged of this machine runs (another test'"'"'s)
DEBIAN_FRONTEND=noninteractive dpkg --remove --force-depends slurmd munge >&2
! command -v slurmd >/dev/null && ! command -v munged >/dev/null'

# The .debs of slurmd and munge where apt finds them without a network.
fresh_debs() {
	local p v
	mkdir -p "$DIR/debs"
	for p in slurmd munge; do
		v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) ||
			die "fresh: $p is not installed on this machine"
		compgen -G "/var/cache/apt/archives/${p}_${v//:/%3a}_*.deb" \
			>/dev/null && continue
		compgen -G "$DIR/debs/${p}_*.deb" >/dev/null && continue
		(cd "$DIR/debs" && apt-get download -qq "$p=$v" >/dev/null 2>&1) ||
			die "fresh: cannot download $p $v for the host"
	done
}

do_fresh() {	# do_fresh I
	local pid
	check_index "$1"
	load_net || die "$DIR was never started"
	pid=$(sshd_pid "$1") || die "host $1 is not running"
	fresh_debs
	mkdir -p "$DIR/fresh-$1"
	nsenter -t "$pid" -m -- sh -c "$FRESH_SH" sh "$DIR/fresh-$1" || {
		tail -n 15 "$DIR/fresh.log" | sed 's/^/  /' >&2
		die "fresh: host $1 did not become a host without slurmd and munged"
	}
}

GPUS_SH='
set -e
G=$1 N=$2
mount -t tmpfs -o mode=0755 tmpfs "$G"
mkdir -p "$G/bin" "$G/dev.up" "$G/dev.work"
i=0
while [ "$i" -lt "$N" ]; do
	echo "GPU $i: mlfs test GPU (UUID: GPU-mlfs-test-$i)"
	i=$((i + 1))
done >"$G/list"
printf "#!/bin/sh\n[ \"\$1\" = -L ] && exec cat %s/list\nexit 9\n" "$G" \
	>"$G/bin/nvidia-smi"
chmod 755 "$G/bin/nvidia-smi"
mount --bind "$G/bin" /usr/local/bin
mount -t overlay overlay \
	-o "lowerdir=/dev,upperdir=$G/dev.up,workdir=$G/dev.work" /dev
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
i=0
while [ "$i" -lt "$N" ]; do
	mknod "/dev/nvidia$i" c 195 "$i"
	i=$((i + 1))
done'

do_gpus() {	# do_gpus I N
	local pid
	check_index "$1"
	[[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1 && $2 <= 16)) ||
		die "gpus: N must be 1 to 16, not '$2'"
	load_net || die "$DIR was never started"
	pid=$(sshd_pid "$1") || die "host $1 is not running"
	mkdir -p "$DIR/gpus-$1"
	nsenter -t "$pid" -m -- sh -c "$GPUS_SH" sh "$DIR/gpus-$1" "$2" ||
		die "gpus: cannot give host $1 its test GPUs"
}

# ---- main ----------------------------------------------------------------

[[ $# -ge 2 ]] || usage
verb=$1
if [[ $verb == start ]]; then
	mkdir -p "$2"
elif [[ ! -d $2 ]]; then
	# nothing was ever started there
	case $verb in
	status) exit 3 ;;
	stop) echo "cluster-hosts: not running"; exit 0 ;;
	*) die "$2: no such directory" ;;
	esac
fi
DIR=$(cd "$2" && pwd -P)
[[ $DIR != *[[:space:]]* ]] || die "DIR must not contain blanks (sshd_config paths)"
K=

lock() {	# one start, stop or link at a time per DIR
	exec 9>"$DIR/.lock"
	flock 9
}

case "$verb" in
start)
	(($# == 3)) || { (($# == 5)) && [[ $4 == --hide-slurmd ]]; } || usage
	lock
	do_start "$3" "${5:-}"
	;;
stop) (($# == 2)) || usage; lock; do_stop ;;
status) (($# == 2)) || usage; do_status ;;
link) (($# == 4)) || usage; lock; do_link "$3" "$4" ;;
procs) (($# == 3)) || usage; do_procs "$3" ;;
exec) (($# >= 4)) || usage; do_exec "${@:3}" ;;
fresh) (($# == 3)) || usage; lock; do_fresh "$3" ;;
gpus) (($# == 4)) || usage; lock; do_gpus "$3" "$4" ;;
*) usage ;;
esac
