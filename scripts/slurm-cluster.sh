#!/usr/bin/env bash
# slurm-cluster.sh — a private two-node Slurm cluster on loopback, for tests.
#
# Usage: scripts/slurm-cluster.sh start DIR | stop DIR | status DIR
#                                 | stop-rest DIR | start-rest DIR
#
# Everything lives under DIR (an absolute path): munged, slurmctld, two slurmd
# nodes (node1, node2, partition "debug") and slurmrestd with JWT auth.  After
# `start`, DIR/cluster.env holds SLURM_URL, SLURM_USER, SLURM_TOKEN_FILE,
# SLURM_PARTITION and SLURM_CONF.  Nothing outside DIR is read or written
# except the Debian packages (installed on first use).  Must run as root.
# stop-rest and start-rest stop and start slurmrestd alone (same port), to
# test what clients do while it is away; jobs keep running meanwhile.
#
# Facts behind the settings: /work/shared/notes/slurm.md (measured on this
# machine type).  Environment knobs: MLFS_SLURM_TIMEOUT (seconds to wait for
# the cluster to answer, default 60).
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin munge curl)
API_VERSION=v0.0.38
NODES=(node1 node2)
TIMEOUT=${MLFS_SLURM_TIMEOUT:-60}
STARTING=0

die() { echo "slurm-cluster: $*" >&2; exit 1; }
say() { echo "slurm-cluster: $*"; }

usage() {
	echo "usage: $0 start DIR | stop DIR | status DIR | stop-rest DIR | start-rest DIR" >&2
	exit 2
}

# ---------------------------------------------------------------- packages

install_missing() {
	local missing=() p
	for p in "${PKGS[@]}"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed" ]] ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null ||
		die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- processes

# Note: no `cmd | grep -q` below: with pipefail, grep quitting early can
# fail the writer with SIGPIPE and turn a match into a failure.

# The pid file of daemon $1 (munged, slurmctld, slurmrestd, node1, node2).
pidfile_of() {
	case $1 in
	munged)     echo "$D/munge/munged.pid" ;;
	slurmctld)  echo "$D/run/slurmctld.pid" ;;
	slurmrestd) echo "$D/run/slurmrestd.pid" ;;
	node*)      echo "$D/run/slurmd-$1.pid" ;;
	esac
}

# What /proc/PID/exe of daemon $1 must start with (Debian installs
# slurmctld-wlm etc. through alternatives).
exe_of() {
	case $1 in
	node*) echo slurmd ;;
	*)     echo "$1" ;;
	esac
}

# Prints the pid of daemon $1 if it runs and really is ours: its executable
# has the expected name and its command line names DIR (munged, slurmctld and
# slurmd get paths under DIR as arguments; slurmrestd gets the slurm.conf).
pid_of() {
	local f pid exe cmd
	f=$(pidfile_of "$1")
	[[ -r $f ]] || return 1
	read -r pid <"$f" 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[[ $(basename "$exe") == "$(exe_of "$1")"* ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *"$D/"* ]] || return 1
	echo "$pid"
}

DAEMONS=(munged slurmctld "${NODES[@]}" slurmrestd)

running_count() {
	local n=0 d
	for d in "${DAEMONS[@]}"; do
		pid_of "$d" >/dev/null && n=$((n + 1))
	done
	echo "$n"
}

# True while pid exists and is not a zombie: our daemons' parent is PID 1,
# which may take seconds to reap them here.
alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

# TERM, wait up to 5 s, then KILL.
stop_one() {
	local pid i
	pid=$(pid_of "$1") || { rm -f "$(pidfile_of "$1")"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	if alive "$pid" && pid_of "$1" >/dev/null; then
		say "$1 (pid $pid) ignored TERM, killing"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	say "stopped $1 (pid $pid)"
	rm -f "$(pidfile_of "$1")"
}

# ---------------------------------------------------------------- ports

# A port counts as free when nothing listens on it (any address).
port_free() {
	local out
	out=$(ss -Htln "sport = :$1") || return 1
	[[ -z $out ]]
}

# Prints the first free port from $1 upward that is not in the rest of the
# arguments (ports already taken by this cluster).
free_port() {
	local p=$1 q taken
	shift
	for ((; p < 65000; p++)); do
		taken=0
		for q in "$@"; do [[ $q == "$p" ]] && taken=1; done
		((taken)) || ! port_free "$p" || { echo "$p"; return 0; }
	done
	die "no free TCP port found"
}

# Starting points derived from DIR, so that two clusters started at the same
# moment in different DIRs are unlikely to race for the same port; the free
# check covers clusters started one after the other.
pick_ports() {
	local h
	h=$(printf '%s' "$D" | cksum | cut -d' ' -f1)
	CTLD_PORT=$(free_port $((17000 + (h % 2000) * 4)))
	NODE1_PORT=$(free_port $((CTLD_PORT + 1)) "$CTLD_PORT")
	NODE2_PORT=$(free_port $((NODE1_PORT + 1)) "$CTLD_PORT" "$NODE1_PORT")
	REST_PORT=$(free_port $((6820 + (h % 64))) "$CTLD_PORT" "$NODE1_PORT" "$NODE2_PORT")
}

# ---------------------------------------------------------------- files

check_reachable() {
	# munged runs as munge and slurmrestd as slurm: both must reach DIR.
	local u
	for u in munge slurm; do
		setpriv --reuid="$u" --regid="$u" --clear-groups test -x "$D" ||
			die "user $u cannot reach $D: every parent directory needs o+x (use e.g. /tmp/…)"
	done
}

make_keys() {
	local m=$D/munge
	install -d -m 0755 -o munge -g munge "$m"
	if [[ ! -s $m/munge.key ]]; then
		(umask 077; head -c 1024 /dev/urandom >"$m/munge.key")
	fi
	chown munge:munge "$m/munge.key"
	chmod 0600 "$m/munge.key"
	if [[ ! -s $D/jwt.key ]]; then
		(umask 077; head -c 64 /dev/urandom >"$D/jwt.key")
	fi
	chown root:root "$D/jwt.key" # owned by SlurmUser (root here)
	chmod 0600 "$D/jwt.key"
}

mem_mib() {
	awk '/^MemTotal:/ { printf "%d\n", $2 / 1024 }' /proc/meminfo
}

write_conf() {
	local host cluster
	host=$(hostname)
	cluster=mlfs$(printf '%s' "$D" | cksum | cut -d' ' -f1 | cut -c1-6)
	cat >"$D/slurm.conf.new" <<EOF
# Generated by scripts/slurm-cluster.sh for $D — do not edit, rewritten on start.
ClusterName=$cluster
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$D/jwt.key
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
GresTypes=gpu
NodeName=node1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$NODE1_PORT CPUs=2 RealMemory=$(mem_mib) Gres=gpu:2 State=UNKNOWN
NodeName=node2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$NODE2_PORT CPUs=2 RealMemory=$(mem_mib) Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP
EOF
	# Two fake GPUs per node (a count, no device files) so that jobs asking
	# for GPUs can be scheduled and tested without hardware.
	printf '%s\n' '# Generated by scripts/slurm-cluster.sh.' 'AutoDetect=off' \
		'NodeName=node[1-2] Name=gpu File=/dev/null,/dev/zero' >"$D/gres.conf"
	chmod 0644 "$D/slurm.conf.new" "$D/gres.conf"
	mv "$D/slurm.conf.new" "$D/slurm.conf"
}

write_env() {
	cat >"$D/cluster.env.new" <<EOF
SLURM_URL=http://127.0.0.1:$REST_PORT
SLURM_USER=root
SLURM_TOKEN_FILE=$D/token
SLURM_PARTITION=debug
SLURM_CONF=$D/slurm.conf
EOF
	mv "$D/cluster.env.new" "$D/cluster.env"
}

# ---------------------------------------------------------------- waiting

# Fails with a message and the tail of log $2 unless command $3… succeeds
# before the deadline.
wait_for() {
	local what=$1 log=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		if ((SECONDS >= DEADLINE)); then
			echo "slurm-cluster: timed out after ${TIMEOUT} s waiting for $what; last lines of $log:" >&2
			tail -n 20 "$log" >&2 2>/dev/null || true
			exit 1
		fi
		sleep 0.1
	done
}

munge_ok() { munge -n --socket="$D/munge/munge.socket" | unmunge --socket="$D/munge/munge.socket"; }
ctld_ok() { [[ $(scontrol ping) == *"is UP"* ]]; }

nodes_idle() {
	local out
	out=$(sinfo -h -N -p debug -o '%N %t') || return 1
	out=$'\n'$out$'\n'	# whole lines: "idle*" (not responding) is not idle
	[[ $out == *$'\nnode1 idle\n'* && $out == *$'\nnode2 idle\n'* ]]
}

rest_ok() {
	local out
	out=$(curl -fsS -m 2 -H "X-SLURM-USER-NAME: root" \
		-H "X-SLURM-USER-TOKEN: $(cat "$D/token")" \
		"http://127.0.0.1:$REST_PORT/slurm/$API_VERSION/ping") || return 1
	[[ $out == *'"pings"'* ]]
}

# ---------------------------------------------------------------- start

start_munged() {
	rm -f "$D/munge/munge.socket" "$D/munge/munge.socket.lock"
	setpriv --reuid=munge --regid=munge --clear-groups \
		munged --socket="$D/munge/munge.socket" \
		--key-file="$D/munge/munge.key" \
		--pid-file="$D/munge/munged.pid" \
		--log-file="$D/munge/munged.log" \
		--seed-file="$D/munge/munged.seed" ||
		{ tail -n 20 "$D/munge/munged.log" >&2 2>/dev/null; die "munged did not start"; }
	wait_for munged "$D/munge/munged.log" munge_ok
}

start_slurmrestd() {
	local log=$D/log/slurmrestd.log
	: >"$log"
	chown slurm:slurm "$log"
	# SLURM_JWT=daemon only in slurmrestd's environment: exported in a
	# shell that runs srun it breaks step launch (see notes/slurm.md).
	# setpriv execs, so $! is slurmrestd's own pid.
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_JWT=daemon \
		setpriv --reuid=slurm --regid=slurm --clear-groups \
		slurmrestd -f "$D/slurm.conf" -a rest_auth/jwt \
		-s "openapi/v0.0.37,openapi/$API_VERSION" "127.0.0.1:$REST_PORT" \
		</dev/null >>"$log" 2>&1 &
	echo $! >"$D/run/slurmrestd.pid"
	disown
}

make_token() {
	local tok
	tok=$(scontrol token username=root lifespan=86400) ||
		die "scontrol token failed (is auth/jwt loaded? see $D/log/slurmctld.log)"
	(umask 077; printf '%s\n' "${tok#SLURM_JWT=}" >"$D/token.new")
	chmod 0600 "$D/token.new"
	mv "$D/token.new" "$D/token"
}

# A start that fails stops whatever it had started, keeping DIR and its logs.
on_exit() {
	((STARTING)) || return 0
	echo "slurm-cluster: start failed, stopping what was started (logs stay in $D/log)" >&2
	cmd_stop >&2 || true
}

start_all() {
	local n t0
	t0=$(date +%s%N)
	SECONDS=0
	DEADLINE=$TIMEOUT
	check_reachable
	STARTING=1
	trap on_exit EXIT
	install -d -m 0755 "$D/run" "$D/log" "$D/spool" "$D/state"
	make_keys
	pick_ports
	write_conf
	start_munged
	# Node states come from this slurm.conf on every start: a DRAIN kept in
	# the saved state (say, from an earlier failed start) would otherwise
	# outlive its cause.  Jobs are kept.
	rm -f "$D/state/node_state" "$D/state/node_state.old"
	slurmctld -f "$D/slurm.conf" ||
		{ tail -n 20 "$D/log/slurmctld.log" >&2 2>/dev/null; die "slurmctld did not start"; }
	wait_for slurmctld "$D/log/slurmctld.log" ctld_ok
	for n in "${NODES[@]}"; do
		install -d -m 0755 "$D/spool/$n"
		slurmd -f "$D/slurm.conf" -N "$n" ||
			{ tail -n 20 "$D/log/slurmd-$n.log" >&2 2>/dev/null; die "slurmd $n did not start"; }
	done
	make_token
	start_slurmrestd
	write_env
	wait_for "nodes node1 and node2 to be idle" "$D/log/slurmd-node1.log" nodes_idle
	wait_for "slurmrestd at 127.0.0.1:$REST_PORT" "$D/log/slurmrestd.log" rest_ok
	STARTING=0
	say "cluster up in $((($(date +%s%N) - t0) / 1000000)) ms: $(grep SLURM_URL "$D/cluster.env"); source $D/cluster.env"
}

cmd_start() {
	install_missing
	mkdir -p "$D"
	chmod 0755 "$D"
	case $(running_count) in
	"${#DAEMONS[@]}")
		say "already running in $D"
		return 0 ;;
	0) ;;
	*)
		say "partly running in $D: stopping the rest before a clean start"
		cmd_stop ;;
	esac
	start_all
}

# ---------------------------------------------------------------- stop, status

# Jobs' processes (slurmstepd and below) outlive slurmd by design; cancel
# the cluster's jobs first so that nothing of it keeps running after stop.
cancel_jobs() {
	local ids i
	pid_of slurmctld >/dev/null || return 0
	ids=$(timeout 5 squeue -h -o %i 2>/dev/null) || return 0
	[[ -n $ids ]] || return 0
	# shellcheck disable=SC2086 # one id per word
	timeout 5 scancel $ids 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		[[ -z $(timeout 5 squeue -h -t running,completing,configuring -o %i 2>/dev/null) ]] && break
		sleep 0.05
	done
	say "cancelled jobs ${ids//$'\n'/ }"
}

cmd_stop() {
	local n
	[[ -d $D ]] || return 0
	cancel_jobs
	# Order matters: slurmrestd and the slurmds before slurmctld, munged last.
	stop_one slurmrestd
	for n in "${NODES[@]}"; do stop_one "$n"; done
	stop_one slurmctld
	stop_one munged
}

cmd_status() {
	local d pid n=0
	for d in "${DAEMONS[@]}"; do
		if pid=$(pid_of "$d"); then
			echo "$d running pid $pid"
			n=$((n + 1))
		else
			echo "$d stopped"
		fi
	done
	if ((n == ${#DAEMONS[@]})) && [[ -r $D/cluster.env ]]; then
		cat "$D/cluster.env"
		return 0
	fi
	((n == 0)) && return 3
	return 1
}

# slurmrestd alone, on the port cluster.env names.
cmd_stop_rest() {
	stop_one slurmrestd
}

cmd_start_rest() {
	local url
	[[ -r $D/cluster.env ]] || die "no cluster in $D (start it first)"
	pid_of slurmctld >/dev/null || die "slurmctld is not running in $D"
	url=$(sed -n 's/^SLURM_URL=//p' "$D/cluster.env")
	REST_PORT=${url##*:}
	[[ $REST_PORT =~ ^[0-9]+$ ]] || die "no port in SLURM_URL=$url"
	if pid_of slurmrestd >/dev/null; then
		say "slurmrestd already running in $D"
		return 0
	fi
	SECONDS=0
	DEADLINE=$TIMEOUT
	start_slurmrestd
	wait_for "slurmrestd at 127.0.0.1:$REST_PORT" "$D/log/slurmrestd.log" rest_ok
	say "slurmrestd up again at $url"
}

main() {
	(($# == 2)) || usage
	[[ $2 == /* ]] || die "DIR must be an absolute path: $2"
	((EUID == 0)) || die "must run as root"
	D=${2%/}
	export SLURM_CONF=$D/slurm.conf
	unset SLURM_JWT
	case $1 in
	start)  cmd_start ;;
	stop)   cmd_stop ;;
	status) cmd_status ;;
	stop-rest)  cmd_stop_rest ;;
	start-rest) cmd_start_rest ;;
	*)      usage ;;
	esac
}

main "$@"
