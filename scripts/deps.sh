#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages mlfs needs to build, run and test, if missing.
#   scripts/deps.sh [build|test|fuzz|cluster|pjdfstest|torch|env]... (default: build)
# cluster: what a managed cluster's controller needs on this machine (the
# test set includes it: tests/it/70 makes one on test hosts).
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3
	libsqlite3-dev libcurl4-openssl-dev libcjson-dev)
run_pkgs=(fuse3 python3 curl procps psmisc haproxy)
test_pkgs=(python3 curl procps util-linux sqlite3 coreutils gdb passwd make)
fuzz_pkgs=(clang libclang-rt-14-dev)
cluster_pkgs=(slurmctld slurmrestd slurm-client slurm-wlm-jwt-plugin munge
	openssh-client)
# the test hosts (scripts/cluster-hosts.sh) run slurmd and sshd here
cluster_test_pkgs=(slurmd openssh-server iproute2 sudo)
# scripts/pjdfstest.sh builds pjdfstest (autotools) and runs it with prove
pjdfstest_pkgs=(autoconf automake gcc make libc6-dev perl fuse3)
test_pkgs+=(python3-venv rsync)	# tests/it/18: a venv and rsync into code/
# tests/it/23's gloo all-reduce, on demand only: ~150 MB to download and
# ~600 MB installed with what it pulls in (Qt, OpenCV, GDAL via
# libtorch-test); without it those checks are skipped with a message
torch_pkgs=(python3-torch)
# tests/it/22: pictures checked in a real browser, by rsvg and by pixels
test_pkgs+=(chromium librsvg2-bin python3-pil fonts-dejavu-core)
# environments/ (container images): podman with runc (crun refuses the CI
# machines' hybrid cgroup layout); not needed to mount a workspace
# and uidmap: newuidmap/newgidmap, which rootless podman (a login of an
# ssh host that is not root) needs to map its ids; catatonit: the init
# of `podman run --init` (runs and replicas in an environment)
env_pkgs=(podman runc uidmap catatonit)
# tests/it/27: the base image is a rootfs made from busybox-static
test_pkgs+=(busybox-static)
# tests/lib.sh: bash's loadable sleep, so that a wait's turn forks nothing
test_pkgs+=(bash-builtins)
# builds run in a user namespace of the `containers` range of /etc/subuid
# and /etc/subgid (backend/env_sm.c): added here once, if missing
subids() {
	local f
	for f in /etc/subuid /etc/subgid; do
		grep -q '^containers:' "$f" 2>/dev/null && continue
		if [[ $(id -u) -ne 0 ]]; then
			echo "deps.sh: add containers:2147483647:2147483648 to $f (as root)" >&2
			continue
		fi
		echo 'containers:2147483647:2147483648' >> "$f"
	done
}

want=()
want_subids=
for what in "${@:-build}"; do
	case $what in
	build) want+=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
	test) want+=("${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}"
		"${cluster_pkgs[@]}" "${cluster_test_pkgs[@]}" "${env_pkgs[@]}")
		want_subids=1 ;;
	env) want+=("${env_pkgs[@]}"); want_subids=1 ;;
	cluster) want+=("${cluster_pkgs[@]}") ;;
	fuzz) want+=("${fuzz_pkgs[@]}") ;;
	pjdfstest) want+=("${pjdfstest_pkgs[@]}") ;;
	torch) want+=("${torch_pkgs[@]}") ;;
	*) echo "deps.sh: unknown set '$what'" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[[ -z $want_subids ]] || subids
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
