#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# POSIX conformance of user files: pjdfstest run inside a run folder of a
# workspace mounted with -o allow_other (as root: pjdfstest acts as other
# users too), with pass/fail counts per directory of its tests.
#
#   scripts/pjdfstest.sh [--src DIR] [--no-fifo] [--no-devices] [--mlfs BINARY] [--keep]
#                        [TESTDIR...]
#
# --src DIR (or PJDFSTEST_SRC=DIR): a checkout of pjdfstest, which is never
#   part of this repository: git clone https://github.com/pjd/pjdfstest
#   It is copied to and built in a new folder under /var/tmp.
# --no-fifo: leave out its mkfifo/ and mknod/ folders (FIFOs and devices).
# --no-devices: what mlfs refuses by design (EPERM) left out: block and
#   character devices in the tests' file-type loops (the type's checks
#   would all fail after its mknod), and the mknod/ folder.
# --mlfs: the daemon to test (default: build/mlfs, built if missing).
# --keep: keep the folder under /var/tmp (the build, the verbose TAP log
#   prove.log, the daemon's stderr).
# TESTDIR: run only these folders of its tests (chmod, rename ...).
# Exit status: 0 when every file passed, 1 when some failed, 2 on bad use.
# Build dependencies: scripts/deps.sh pjdfstest.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

src=${PJDFSTEST_SRC:-} nofifo=0 nodev=0 mlfs=$ROOT/build/mlfs keep=0 dirs=()
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
	case $1 in
	--src) src=${2:-}; shift ;;
	--no-fifo) nofifo=1 ;;
	--no-devices) nodev=1 ;;
	--mlfs) mlfs=${2:-}; shift ;;
	--keep) keep=1 ;;
	-h | --help) usage ;;
	-*) echo "pjdfstest.sh: unknown option $1" >&2; usage ;;
	*) dirs+=("$1") ;;
	esac
	shift
done
if [[ -z $src ]]; then
	echo "pjdfstest.sh: no pjdfstest source: give --src DIR or" \
		"PJDFSTEST_SRC=DIR, a checkout of" \
		"https://github.com/pjd/pjdfstest (git clone" \
		"https://github.com/pjd/pjdfstest)" >&2
	exit 2
fi
if [[ ! -f $src/configure.ac || ! -d $src/tests ]]; then
	echo "pjdfstest.sh: $src is not a pjdfstest checkout (no" \
		"configure.ac, tests/); get one from" \
		"https://github.com/pjd/pjdfstest" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "pjdfstest.sh: pjdfstest must run as root (it acts as other" \
		"users, which needs -o allow_other and a root daemon)" >&2
	exit 2
fi
"$ROOT/scripts/deps.sh" pjdfstest || exit 2
if [[ ! -x $mlfs && $mlfs == "$ROOT/build/mlfs" ]]; then
	{ [[ -f $ROOT/build/build.ninja ]] || meson setup "$ROOT/build"; } \
		>/dev/null && ninja -C "$ROOT/build" >/dev/null || exit 2
fi
[[ -x $mlfs ]] || { echo "pjdfstest.sh: no daemon at $mlfs" >&2; exit 2; }

W=$(mktemp -d /var/tmp/mlfs-pjdfstest.XXXXXX) || exit 2
chmod 755 "$W"
MNT=$W/mnt DPID=
mkdir -p "$MNT" "$W/pjdfstest"
cleanup() {
	if [[ -n $DPID ]] && kill -0 "$DPID" 2>/dev/null; then
		cd /
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
		wait "$DPID" 2>/dev/null
	fi
	if ((keep)); then
		echo "# kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT

build() {
	echo "# building pjdfstest from $src in $W/pjdfstest"
	cp -a "$src/." "$W/pjdfstest/" || return 1
	if ((nodev)); then	# the copy's tests, never the checkout
		# fewer types, fewer subtests: the plan goes to the end, with
		# the count run (misc.sh counts them in ntest)
		grep -rlE 'for type in .* block char' "$W/pjdfstest/tests" |
			xargs -r sed -i -E \
			-e 's/(for type in .*) block char/\1/' \
			-e 's/^([[:space:]]*)echo "1\.\.[0-9]+"$/\1:/' \
			-e '$ a echo "1..$((ntest - 1))"'
	fi
	(cd "$W/pjdfstest" && autoreconf -ifs && ./configure &&
	 make pjdfstest) >"$W/build.log" 2>&1 || {
		tail -20 "$W/build.log" >&2
		echo "pjdfstest.sh: the build failed (log above)" >&2
		return 1
	}
}

mount_ws() {
	local i
	"$mlfs" -f --state "$W/state" -o allow_other "$MNT" \
		2>"$W/daemon.err" &
	DPID=$!
	for ((i = 0; i < 200; i++)); do
		[[ -d $MNT/runs ]] && grep -q " $MNT fuse" /proc/mounts &&
			return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "pjdfstest.sh: the workspace did not mount:" >&2
	tail -5 "$W/daemon.err" >&2
	return 1
}

# The test folders to run, as paths into the build.
test_dirs() {
	local d
	if ((${#dirs[@]})); then
		for d in "${dirs[@]}"; do echo "$W/pjdfstest/tests/${d%/}"; done
		return
	fi
	for d in "$W/pjdfstest/tests"/*/; do
		d=${d%/}
		((nofifo)) && [[ ${d##*/} == mkfifo || ${d##*/} == mknod ]] &&
			continue
		((nodev)) && [[ ${d##*/} == mknod ]] && continue
		echo "$d"
	done
}

# One line per test file of prove -v's output in $1: "FILE SUBTESTS
# FAILED BAD" (BAD: the file failed).  "DIR/NN.t .." starts a file, its
# "ok"/"not ok" lines are its subtests (a TODO is no failure), and the
# summary report names each failing file (a wrong plan or exit status
# fails a file whose subtests all passed).
per_file() {
	awk -v base="$W/pjdfstest/tests/" '
	function key(p) { sub("^" base, "", p); return p }
	/^\/.*\.t \.\./ { cur = key($1); files[cur] = 1; next }
	/^Test Summary Report/ { cur = ""; summary = 1; next }
	summary && /^\/.*\.t \(/ { bad[key($1)] = 1; next }
	cur != "" && /^ok [0-9]/ { tests[cur]++; next }
	cur != "" && /^not ok [0-9]/ {
		tests[cur]++
		if ($0 !~ /# TODO/) { failed[cur]++; bad[cur] = 1 }
	}
	END {
		for (f in files)
			printf "%s %d %d %d\n", f, tests[f], failed[f],
				(f in bad)
	}' "$1" | sort
}

# The table: per directory, files, files failing, subtests, subtests
# failing; then the failing files.  Exit 1 when a file failed.
report() {
	per_file "$1" | awk '
	function row(d) {
		printf "%-16s %6d %7d %9d %7d\n", d, nf, bf, nt, sf
		T += nf; B += bf; S += nt; F += sf; nf = bf = nt = sf = 0
	}
	BEGIN { printf "%-16s %6s %7s %9s %7s\n", "directory", "files",
		"failed", "subtests", "failed" }
	{
		d = $1; sub("/.*", "", d)
		if (d != prev && prev != "") row(prev)
		prev = d; nf++; nt += $2; sf += $3; bf += $4
		if ($4) bad[++nb] = sprintf("  %-20s %4d of %4d subtests", $1,
					    $3, $2)
	}
	END {
		if (prev != "") row(prev)
		printf "%-16s %6d %7d %9d %7d\n", "total", T, B, S, F
		if (nb) print "\nfailing files:"
		for (i = 1; i <= nb; i++) print bad[i]
		exit B > 0
	}'
}

build || exit 2
mount_ws || exit 2
mkdir "$MNT/runs/pjdfstest" || exit 2
cd "$MNT/runs/pjdfstest" || exit 2
echo "# running prove -r in $MNT/runs/pjdfstest (mounted with -o allow_other)"
mapfile -t run < <(test_dirs)
timeout 7200 prove -r -v "${run[@]}" >"$W/prove.log" 2>&1
tail -3 "$W/prove.log" | sed 's/^/# /'
cd /
report "$W/prove.log"
rc=$?
if grep -qE 'ERROR|AddressSanitizer|runtime error' "$W/daemon.err"; then
	echo "# the daemon reported errors:"
	grep -E 'ERROR|AddressSanitizer|runtime error' "$W/daemon.err" |
		head -5 | sed 's/^/#   /'
fi
exit "$rc"
