#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Fuzz the pure parsers of backend/parse.c and parse_num.c with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS]      each target runs SECONDS (default 30)
#
# Environment:
#   BUILD_DIR     where binaries, scratch corpora, logs and crash files go
#                 (default build-fuzz/ under the repository)
#   FUZZ_TARGETS  space-separated subset of: ctl kv env resources name metric after inputs
#                 slurm_json
#   FUZZ_MAX_LEN  longest input libFuzzer generates (default 8192)
#
# Each target first replays tests/fuzz/regress/<target>/* (inputs that once
# crashed), then fuzzes a scratch copy of tests/fuzz/corpus/<target>/ (the
# repository's corpus is never written).  Prints the executions per target
# and exits non-zero if any target crashed, leaked, timed out or ran out of
# memory; the input is left in BUILD_DIR/artifacts/<target>/.
set -euo pipefail
shopt -s extglob

secs=${1:-30}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
read -r -a targets <<< "${FUZZ_TARGETS:-ctl kv env resources name metric after inputs slurm_json endpoint}"
max_len=${FUZZ_MAX_LEN:-8192}
cflags=(-g -O1 "-fsanitize=fuzzer,address,undefined"
	-fno-sanitize-recover=all -Wall -Wextra)

if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs == 0)); then
	echo "usage: $0 [SECONDS]" >&2
	exit 2
fi

# Does clang build a libFuzzer binary here?
fuzzer_works() {
	local probe=$build/probe
	command -v clang > /dev/null || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ (void)d; (void)n; return 0; }' > "$probe.c"
	clang -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" \
		2> /dev/null
}

# libFuzzer ships in libclang-rt-<version>-dev, matching clang's version.
install_clang() {
	local sudo=() ver pkgs=(clang libclang-rt-dev)
	((EUID == 0)) || sudo=(sudo)
	if command -v clang > /dev/null; then
		ver=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p')
		[[ -n $ver ]] && pkgs=(clang "libclang-rt-$ver-dev")
	fi
	echo "fuzz.sh: installing ${pkgs[*]}" >&2
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
		"${pkgs[@]}" > /dev/null
}

build_target() {
	local t=$1 extra=()
	# slurmrestd answers are read by targets/slurm_api.c, on cJSON
	[[ $t == slurm_json ]] && extra=(-I"$root/targets"
		"$root/targets/slurm_api.c" $(pkg-config --cflags --libs libcjson))
	# an endpoint's files and the proxy configuration they make
	[[ $t == endpoint ]] && extra=("$root/backend/endpoint_config.c")
	clang "${cflags[@]}" -I"$root/backend" "$root/backend/parse.c" \
		"$root/backend/parse_num.c" \
		"$root/lib/err.c" \
		"$root/tests/fuzz/fuzz_$t.c" "${extra[@]}" -o "$build/fuzz_$t"
}

# Replays the regression inputs of target $1, if any.
replay() {
	local t=$1 dir=$root/tests/fuzz/regress/$1 files
	[[ -d $dir ]] || return 0
	files=("$dir"/*)
	[[ -e ${files[0]} ]] || return 0
	"$build/fuzz_$t" -artifact_prefix="$build/artifacts/$t/" "${files[@]}" \
		> "$build/logs/$t.regress.log" 2>&1
}

# Fuzzes target $1 for $secs seconds; prints one summary line.
run_target() {
	local t=$1 work=$build/corpus/$1 art=$build/artifacts/$1/
	local log=$build/logs/$1.log rc=0 execs

	rm -rf "$art"
	mkdir -p "$work" "$art"
	cp -R "$root/tests/fuzz/corpus/$t/." "$work/"
	if ! replay "$t"; then
		printf '%-10s %14s  REGRESSION (see %s)\n' "$t" "-" \
			"$build/logs/$t.regress.log"
		return 1
	fi
	"$build/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
		-max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$art" "$work" > "$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		tail -n 1)
	if ((rc != 0)) || compgen -G "$art@(crash|leak|timeout|oom)-*" \
			> /dev/null; then
		printf '%-10s %14s  CRASH (rc %d; see %s, %s)\n' "$t" \
			"${execs:-?}" "$rc" "$log" "$art"
		return 1
	fi
	printf '%-10s %14s executions in %ss\n' "$t" "${execs:-?}" "$secs"
}

main() {
	local t failed=0

	mkdir -p "$build/logs"
	cd "$build"	# libFuzzer writes stray files into the working directory
	fuzzer_works || install_clang
	fuzzer_works || {
		echo "fuzz.sh: clang -fsanitize=fuzzer does not work" >&2
		exit 1
	}
	for t in "${targets[@]}"; do
		[[ -f $root/tests/fuzz/fuzz_$t.c ]] || {
			echo "fuzz.sh: no tests/fuzz/fuzz_$t.c" >&2
			exit 2
		}
		build_target "$t"
	done
	for t in "${targets[@]}"; do
		run_target "$t" || failed=1
	done
	((failed == 0)) || echo "fuzz.sh: crashes found" >&2
	return "$failed"
}

main
