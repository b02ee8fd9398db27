#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/reap.sh DIR...: clean up after integration tests that were killed
# (by scripts/test.sh's per-file timeout) before their own cleanup ran:
# each DIR is a test's folder (/tmp/mlfs-it.*); see reap() in lib.sh.
for dir; do
	[[ -d $dir ]] || continue
	MLFS_REAP=$dir bash -c 'source "$0"; reap' "$(dirname "$0")/lib.sh"
done
