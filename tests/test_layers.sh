#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Self-test of scripts/check-layers.sh: on small trees made here, it passes
# a clean one and fails, naming the edge, on each planted fault.
#
#   tests/test_layers.sh [CHECK]      CHECK: the script (default: the repo's)
set -uo pipefail

check=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/check-layers.sh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0

ok() {	# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if (($1 == 0)); then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		sed 's/^/#   /' "$tmp/out"
	fi
}

# A clean tree: fs -> backend -> lib, targets -> backend/driver.h and lib.
clean_tree() {
	rm -rf "$tmp/t"
	mkdir -p "$tmp/t"/{fs,backend,targets,lib}
	cd "$tmp/t" || exit 1
	printf '#include "log.h"\nvoid log_msg(void)\n{\n}\n' > lib/log.c
	printf 'void log_msg(void);\n' > lib/log.h
	printf '#include "../lib/log.h"\nstruct driver { int x; };\n' \
		> backend/driver.h
	printf '#include "ws.h"\n#include "ws_i.h"\n#include "driver.h"\n' \
		> backend/ws.c
	printf 'int ws_open(void)\n{\n\tlog_msg();\n\treturn 0;\n}\n' \
		>> backend/ws.c
	printf 'int ws_open(void);\n' > backend/ws.h
	printf '#include "ws.h"\n' > backend/ws_i.h
	printf '#include "../backend/driver.h"\n#include "../backend/ws.h"\n' \
		> targets/local.c
	printf 'static int ws_open(void)\n{\n\treturn 1;\n}\n' >> targets/local.c
	printf 'int local_start(void)\n{\n\treturn ws_open();\n}\n' \
		>> targets/local.c
	printf '#include "../backend/ws.h"\n#include "../lib/log.h"\n' > fs/fs.c
	printf 'int main(void)\n{\n\tlog_msg();\n\treturn ws_open();\n}\n' \
		>> fs/fs.c
}

# Plant backend/a.c and b.c, each including the other's header.
ab_cycle() {
	printf '#include "a.h"\n' > backend/b.c
	printf '#include "b.h"\n' > backend/a.c
	: > backend/a.h
	: > backend/b.h
}

run() {	# run [ARGS...]: the check on $tmp/t; its status
	bash "$check" "$@" "$tmp/t" > "$tmp/out" 2>&1
}

# expect_fail DESCRIPTION PATTERN: the check fails and prints PATTERN
expect_fail() {
	run
	local rc=$?
	grep -qF -- "$2" "$tmp/out"
	ok $(( rc == 1 && $? == 0 ? 0 : 1 )) "$1"
}

clean_tree
run
ok $? "a clean tree passes"
grep -q '^no cycles$' "$tmp/out"
ok $? "and says no cycles"
grep -q 'backend  -> lib (1 includes, 1 functions)' "$tmp/out"
ok $? "the layer graph counts includes and functions"

clean_tree
ab_cycle
expect_fail "an include cycle inside backend/" \
	"include cycle: backend/a backend/b"

clean_tree
printf '#include "b.h"\n' > backend/a.c
printf '#include "c.h"\n' > backend/b.c
printf '#include "a_i.h"\n' > backend/c.c
: > backend/a_i.h
: > backend/b.h
: > backend/c.h
expect_fail "a transitive include cycle, through a private header" \
	"include cycle: backend/a backend/b backend/c"

clean_tree
printf 'void g(void);\nvoid f(void)\n{\n\tg();\n}\n' > backend/a.c
printf 'void f(void);\nvoid g(void)\n{\n\tf();\n}\n' > backend/b.c
expect_fail "a call cycle without includes" \
	"call cycle: backend/a.c backend/b.c"

clean_tree
printf '#include "../backend/ws.h"\n' >> lib/log.c
expect_fail "lib/ including backend/" \
	"upward include: lib/log.c -> backend/ws.h"

clean_tree
printf '#include "../targets/copy.h"\n' >> backend/ws.c
: > targets/copy.h
expect_fail "backend/ including targets/" \
	"upward include: backend/ws.c -> targets/copy.h"

clean_tree
printf 'int local_start(void);\nint ws_x(void)\n{\n\treturn local_start();\n}\n' \
	>> backend/ws.c
expect_fail "backend/ calling a driver's function" \
	"upward call: backend/ws.c -> targets/local.c (local_start)"

clean_tree
printf '#include "../targets/local.h"\n' >> fs/fs.c
: > targets/local.h
expect_fail "fs/ and targets/ are peers" \
	"upward include: fs/fs.c -> targets/local.h"

clean_tree
printf '#include "../backend/ws_i.h"\n' >> targets/local.c
expect_fail "a private header from another folder" \
	"private header: targets/local.c -> backend/ws_i.h"

clean_tree
ab_cycle
printf '# known\ninclude cycle: backend/a backend/b\n' > "$tmp/allow"
run --allow "$tmp/allow"
ok $? "an allowed cycle passes"

clean_tree
run --allow "$tmp/allow"
rc=$?
grep -qF 'gone, remove it' "$tmp/out"
ok $(( rc == 1 && $? == 0 ? 0 : 1 )) "an allowed entry that is gone fails"

echo "$((n - failed)) passed, $failed failed"
((failed == 0))
