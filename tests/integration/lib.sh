# lib.sh - shared helpers for kvault integration tests (sourced, bash).
# Each test script starts its own vaultd on a free loopback port in a temporary state
# directory and stops it on exit. Environment (set by meson test, or by hand):
#   KV_BUILD_DIR   build directory (holds kvault.so, vaultd/vaultd, tools/kvault)
#   KV_SOURCE_DIR  source directory
set -u

KV_BUILD_DIR=${KV_BUILD_DIR:?KV_BUILD_DIR must point at the meson build directory}
KV_SOURCE_DIR=${KV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KV_SO="$KV_BUILD_DIR/kvault.so"
VAULTD="$KV_BUILD_DIR/vaultd/vaultd"
KVAULT="$KV_BUILD_DIR/tools/kvault"
export OPENSSL_MODULES="$KV_BUILD_DIR"   # so that '-provider kvault' finds kvault.so

T_TMP=$(mktemp -d /tmp/kvtest.XXXXXX)

# The tests' helpers run Debian's python3 (with python3-cryptography, see install-deps.sh):
# a version manager's shim earlier in PATH (pyenv) costs about half a second per start, and
# these tests start python3 a few thousand times. OPENSSL_MODULES (set above for the openssl
# CLI) is dropped for python3: Debian's python3-cryptography would look for OpenSSL's legacy
# provider there; no python helper loads kvault as a provider.
if [ -x /usr/bin/python3 ]; then
    mkdir -p "$T_TMP/py-bin"
    printf '#!/bin/sh\nunset OPENSSL_MODULES\nexec /usr/bin/python3 "$@"\n' >"$T_TMP/py-bin/python3"
    chmod +x "$T_TMP/py-bin/python3"
    export PATH="$T_TMP/py-bin:$PATH"
fi

# In a sanitizer build, kvault.so needs the ASan/UBSan runtimes loaded first into the
# uninstrumented tools that dlopen it. Wrappers early in PATH preload them for exactly those
# tools (curl and python3 are left alone: they do not load kvault.so, and Debian's curl
# deadlocks at start with ASan preloaded).
KV_ASAN_PRELOAD=""
if ldd "$KV_SO" 2>/dev/null | grep -q libasan; then
    KV_ASAN_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}
    mkdir -p "$T_TMP/asan-bin"
    for tool in openssl pkcs11-tool p11tool p11-kit ssh-keygen ssh nginx apache2; do
        real=$(command -v "$tool") || continue
        printf '#!/bin/sh\nLD_PRELOAD="%s:%s" exec %s "$@"\n' "$(gcc -print-file-name=libasan.so)" \
            "$(gcc -print-file-name=libubsan.so)" "$real" >"$T_TMP/asan-bin/$tool"
        chmod +x "$T_TMP/asan-bin/$tool"
    done
    export PATH="$T_TMP/asan-bin:$PATH"
fi

T_PASS=0
T_FAIL=0
VAULTD_PID=""

# kv_keep_logs: copies vaultd's logs under $T_TMP (audit logs, and *.log files with vaultd's
# stderr) into $KV_LOG_DIR (set by start_vaultd), with the secrets of the test (client secrets
# of its *.conf files, HSM PINs, identity header) in $KV_LOG_DIR/.secrets, for test_logscan.sh.
kv_keep_logs() {
    local f rel
    [ -n "${KV_LOG_DIR:-}" ] && [ -d "$KV_LOG_DIR" ] || return 0
    find "$T_TMP" -type f -name '*.log' 2>/dev/null | while read -r f; do
        case "$f" in
        */audit/*.log | */audit*.log) ;;
        *) grep -q '^vaultd: \|Z vaultd: ' "$f" 2>/dev/null || continue ;;
        esac
        rel=${f#"$T_TMP"/}
        cp "$f" "$KV_LOG_DIR/${rel//\//_}" 2>/dev/null
    done
    { find "$T_TMP" -type f -name '*.conf' -exec sed -n \
        's/^[[:space:]]*client_secret[[:space:]]*=[[:space:]]*//p' {} +
      find "$T_TMP" -type f \( -name '*.pin' -o -name identity-header \) -exec cat {} +
    } 2>/dev/null | sort -u >>"$KV_LOG_DIR/.secrets"
    chmod 600 "$KV_LOG_DIR/.secrets" 2>/dev/null
    return 0
}

kv_cleanup() {
    [ -n "$VAULTD_PID" ] && kill "$VAULTD_PID" 2>/dev/null && wait "$VAULTD_PID" 2>/dev/null
    kv_keep_logs
    [ -n "${KV_KEEP_TMP:-}" ] || rm -rf "$T_TMP"
}
trap kv_cleanup EXIT

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_vaultd [extra vaultd args...]: dev vaultd in $T_TMP/state on $VAULTD_PORT.
# Sets VAULTD_PORT, VAULTD_STATE, KVAULT_CONF.
start_vaultd() {
    VAULTD_STATE=${VAULTD_STATE:-$T_TMP/state}
    VAULTD_PORT=${VAULTD_PORT:-$(free_port)}
    if [ -z "${KV_LOG_DIR:-}" ]; then # this test's logs, kept for test_logscan.sh
        KV_LOG_DIR="$KV_BUILD_DIR/test-logs/$(basename "$0" .sh)"
        rm -rf "$KV_LOG_DIR" && mkdir -p "$KV_LOG_DIR"
    fi
    "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT" "$@" \
        >>"$T_TMP/vaultd.log" 2>&1 &
    VAULTD_PID=$!
    for _ in $(seq 1 100); do
        if [ -f "$VAULTD_STATE/client.conf" ] &&
            curl -s -o /dev/null --cacert "$VAULTD_STATE/ca.pem" \
                "https://localhost:$VAULTD_PORT/healthz" 2>/dev/null; then
            export KVAULT_CONF="$VAULTD_STATE/client.conf"
            return 0
        fi
        if ! kill -0 "$VAULTD_PID" 2>/dev/null; then
            echo "vaultd exited early:"; cat "$T_TMP/vaultd.log"; VAULTD_PID=""; return 1
        fi
        sleep 0.1
    done
    echo "vaultd did not come up:"; cat "$T_TMP/vaultd.log"; return 1
}

stop_vaultd() {
    if [ -n "$VAULTD_PID" ]; then
        kill "$VAULTD_PID" 2>/dev/null
        wait "$VAULTD_PID" 2>/dev/null
        VAULTD_PID=""
    fi
}

# conf_get KEY: a value from the [vault dev] section of $KVAULT_CONF.
conf_get() {
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$KVAULT_CONF" | head -n1
}

# get_token: prints a bearer token for the dev service principal (client-secret flow).
get_token() {
    local tenant client secret authority
    tenant=$(conf_get tenant_id); client=$(conf_get client_id)
    secret=$(conf_get client_secret); authority=$(conf_get authority)
    curl -s --cacert "$VAULTD_STATE/ca.pem" "$authority/$tenant/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$client" \
        --data-urlencode "client_secret=$secret" \
        --data-urlencode scope=https://vault.azure.net/.default |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }

# check DESC CMD...: passes when CMD exits 0 (its output goes to $T_TMP/last.out).
# kv_show_last: the failing command's output as TAP comments, always ending in a newline.
kv_show_last() {
    { cat "$T_TMP/last.out"; echo; } | sed -e '$!b' -e '/^$/d' | sed 's/^/    # /' | head -n 30
}
check() {
    local desc=$1; shift
    if "$@" >"$T_TMP/last.out" 2>&1; then ok "$desc"; else
        not_ok "$desc"; kv_show_last; fi
}

# check_fails_with DESC PATTERN CMD...: passes when CMD exits non-zero, does not crash
# (exit < 128) and its output matches the extended regex PATTERN.
check_fails_with() {
    local desc=$1 pat=$2 rc; shift 2
    "$@" >"$T_TMP/last.out" 2>&1; rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && grep -Eq -- "$pat" "$T_TMP/last.out"; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, wanted /$pat/)"; kv_show_last
    fi
}

# finish: prints the closing line and exits non-zero on any failure.
finish() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}
