#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and mount a workspace (SQLite + the local
# target) at MOUNTPOINT, then print what to try next.
#
#   scripts/run.sh MOUNTPOINT [mlfs options, e.g. --state DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
	sed -n '2,7p' "$0"
	exit 2
fi
mnt=$1
shift

"$ROOT/scripts/deps.sh" build
if [[ ! -f $ROOT/build/build.ninja ]]; then
	meson setup "$ROOT/build" >/dev/null
fi
ninja -C "$ROOT/build" >/dev/null

mkdir -p "$mnt"
mnt=$(cd "$mnt" 2>/dev/null && pwd || echo "$mnt")
if grep -q " $mnt fuse.mlfs " /proc/mounts; then
	echo "mlfs is already mounted at $mnt (unmount: fusermount3 -u $mnt)"
	exit 0
fi
"$ROOT/build/mlfs" "$@" "$mnt"

cat <<EOT
mlfs is mounted at $mnt (unmount: fusermount3 -u $mnt)

Try:
  cd $mnt
  cat README
  mkdir runs/hello
  echo 'echo hello from \$MLFS_RUN; echo "loss 0.1" >> \$MLFS_METRICS' > runs/hello/command
  echo submit > runs/hello/ctl
  cat runs/hello/status runs/hello/log runs/hello/metrics
  tail -f events
EOT
