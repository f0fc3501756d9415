#!/bin/bash
# tsan.sh - the PKCS#11 tests under ThreadSanitizer: builds kvault with -fsanitize=thread (GCC,
# Debian's libtsan) in BUILD_DIR (default build-tsan) and runs the unit and integration tests
# that drive kvault.so from several threads or processes. Usage: scripts/tsan.sh [BUILD_DIR]
#
# Every instrumented process (test binaries, vaultd, and the tools lib.sh starts with libtsan
# preloaded: pkcs11-tool, openssl, python3 via ctypes, ssh ...) writes its reports to
# $KV_TSAN_LOG_DIR/tsan.<pid>; the run fails when a test fails or any report was written.
# tests/tsan.supp suppresses races that lie wholly in uninstrumented third-party libraries
# (each entry says why). Set KV_TSAN_TESTS to run other tests ("p11_api test_pkcs11").
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-build-tsan}
TESTS=${KV_TSAN_TESTS:-p11_api p11_badinput p11_threads test_p11_badinput test_pkcs11
    test_p11_concurrency test_p11_tools test_p11_login test_p11_lifecycle test_p11_crypto
    test_p11_pool test_p11_races test_client_auth test_credentials test_openssl test_ssh}

if [ ! -f "$DIR/build.ninja" ]; then
    meson setup "$DIR" --werror -Db_sanitize=thread -Db_lundef=false >/dev/null
fi
ninja -C "$DIR" >/dev/null

# Only tests this build defines (p11_badinput may not be registered yet).
avail=$(meson test -C "$DIR" --list 2>/dev/null | sed 's/^.* \/ //')
run=()
for t in $TESTS; do
    if grep -qx -- "$t" <<<"$avail"; then run+=("$t"); else echo "tsan: no test '$t' here, skipped"; fi
done

KV_TSAN_LOG_DIR=$(mktemp -d /tmp/kvtsan.XXXXXX)
export KV_TSAN_LOG_DIR
# halt_on_error=0: collect every report; exitcode 66 still marks a process that had one.
# history_size=7: the longest access history, so both stacks of a race are shown.
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:log_path=$KV_TSAN_LOG_DIR/tsan"
export TSAN_OPTIONS="$TSAN_OPTIONS:halt_on_error=0:history_size=7:second_deadlock_stack=1"

start=$(date +%s)
rc=0
# TSan slows these tests down 3-10 times: three times their time limit.
meson test -C "$DIR" --print-errorlogs --num-processes 1 --timeout-multiplier 3 "${run[@]}" || rc=$?
secs=$(($(date +%s) - start))

nrep=$(cat "$KV_TSAN_LOG_DIR"/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
if [ "$nrep" -gt 0 ]; then
    echo "tsan: $nrep report(s):"
    for f in "$KV_TSAN_LOG_DIR"/tsan.*; do
        echo "---- $f"
        head -n 80 "$f"
    done
    rc=1
else
    rm -rf "$KV_TSAN_LOG_DIR"
fi
echo "tsan: ${#run[@]} test(s) in ${secs}s, $nrep ThreadSanitizer report(s), meson exit $rc"
exit "$rc"
