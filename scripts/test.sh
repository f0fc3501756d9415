#!/bin/bash
# The test command: installs what is missing, builds kvault twice (plain, and ASan+UBSan),
# and runs every unit and integration test against both builds; then the PKCS#11 tests once
# more in a ThreadSanitizer build (scripts/tsan.sh). Each integration test
# starts its own vaultd (and other services) on loopback in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
pass=0
fail=0
run_suite() { # NAME BUILD_DIR
    local name=$1 dir=$2 log
    log=$(mktemp)
    echo "== $name: building in $dir"
    if [ "$name" = asan ]; then KV_SANITIZE=1 ./scripts/build.sh "$dir"; else ./scripts/build.sh "$dir"; fi
    echo "== $name: running tests"
    # sanitizer builds run about twice as slow: give their tests twice the time limit
    local mult=1
    if [ "$name" = asan ]; then mult=2; fi
    if meson test -C "$dir" --print-errorlogs --num-processes 1 --timeout-multiplier "$mult" 2>&1 |
        tee "$log"; then :; fi
    local ok bad
    ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -n1)
    bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $2} END {print s+0}' "$log")
    pass=$((pass + ${ok:-0}))
    fail=$((fail + bad))
    if [ -z "$ok" ]; then fail=$((fail + 1)); fi
    rm -f "$log"
}
run_suite plain build
# Sanitizer build: leaks in third-party libraries loaded by the real tools (p11-kit,
# OpenSSL's config loader) are not ours; detect_leaks stays on for our own test binaries.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite asan build-asan
# ThreadSanitizer build: the PKCS#11 tests only (scripts/tsan.sh; a few minutes). Any TSan
# report fails the run even when the tests themselves pass.
echo "== tsan: building in build-tsan and running the PKCS#11 tests"
log=$(mktemp)
if ./scripts/tsan.sh build-tsan 2>&1 | tee "$log"; then tsan_rc=0; else tsan_rc=1; fi
ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -n1)
bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $2} END {print s+0}' "$log")
pass=$((pass + ${ok:-0}))
fail=$((fail + bad))
if [ -z "$ok" ] || { [ "$tsan_rc" -ne 0 ] && [ "$bad" -eq 0 ]; }; then fail=$((fail + 1)); fi
rm -f "$log"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
