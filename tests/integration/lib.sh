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
# A ThreadSanitizer build (scripts/tsan.sh) is handled the same way with libtsan; the variable
# keeps its name (KV_ASAN_PRELOAD = "the sanitizer runtimes to preload", empty in plain builds).
KV_ASAN_PRELOAD=""
KV_SANITIZER="" # asan (ASan+UBSan), tsan, or empty
if ldd "$KV_SO" 2>/dev/null | grep -q libasan; then
    KV_SANITIZER=asan
    KV_ASAN_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}
elif ldd "$KV_SO" 2>/dev/null | grep -q libtsan; then
    KV_SANITIZER=tsan
    KV_ASAN_PRELOAD="$(gcc -print-file-name=libtsan.so)"
    # dash and bash crash at start with libtsan preloaded, so the python3 wrapper that the
    # ctypes tests start with LD_PRELOAD set cannot be a shell script: a python one instead.
    if [ -x /usr/bin/python3 ]; then
        printf '#!/usr/bin/python3\nimport os, sys\nos.environ.pop("OPENSSL_MODULES", None)\nos.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv[1:])\n' \
            >"$T_TMP/py-bin/python3"
    fi
fi
if [ -n "$KV_ASAN_PRELOAD" ]; then
    mkdir -p "$T_TMP/asan-bin"
    for tool in openssl pkcs11-tool p11tool p11-kit ssh-keygen ssh nginx apache2; do
        real=$(command -v "$tool") || continue
        printf '#!/bin/sh\nLD_PRELOAD="%s" exec %s "$@"\n' "$KV_ASAN_PRELOAD" "$real" \
            >"$T_TMP/asan-bin/$tool"
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
# free_port: a loopback port nobody listens on now, never one this test got before (it runs in a
# subshell, $(free_port), so the ports handed out are remembered in a file: two calls in a row
# could otherwise get the same just-released port, e.g. vaultd's listener and its identity one).
free_port() {
    local p i
    for i in $(seq 1 20); do
        p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
        if ! grep -qx -- "$p" "$T_TMP/ports.used" 2>/dev/null; then
            echo "$p" >>"$T_TMP/ports.used"
            break
        fi
    done
    echo "$p"
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

# ---- helpers for tests that talk to the REST API directly ----

# b64url_file FILE: the file as base64url (no padding).
b64url_file() {
    python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(open(sys.argv[1],"rb").read()).decode().rstrip("="))' "$1"
}
b64url_decode_to() { # b64url_decode_to STRING FILE
    python3 -c 'import base64,sys; s=sys.argv[1]; open(sys.argv[2],"wb").write(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))' "$1" "$2"
}

# jwk_to_pem JSONFILE PEM: the public key of a KeyBundle as PEM (DER built by hand).
jwk_to_pem() {
    python3 - "$1" "$T_TMP/pub.der" <<'EOF' && openssl pkey -pubin -inform DER -in "$T_TMP/pub.der" -out "$2"
import base64, json, sys
k = json.load(open(sys.argv[1]))["key"]
def b(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def ln(n): return bytes([n]) if n < 128 else (lambda x: bytes([0x80 | len(x)]) + x)(n.to_bytes((n.bit_length() + 7) // 8, "big"))
def tlv(t, v): return bytes([t]) + ln(len(v)) + v
def dint(v):
    v = v.lstrip(b"\0") or b"\0"
    return tlv(2, b"\0" + v if v[0] & 0x80 else v)
if k["kty"].startswith("RSA"):
    alg = tlv(0x30, tlv(6, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    key = tlv(0x30, dint(b(k["n"])) + dint(b(k["e"])))
else:
    oid = {"P-256": "2a8648ce3d030107", "P-384": "2b81040022", "P-521": "2b81040023",
           "P-256K": "2b8104000a"}[k["crv"]]
    alg = tlv(0x30, tlv(6, bytes.fromhex("2a8648ce3d0201")) + tlv(6, bytes.fromhex(oid)))
    key = b"\x04" + b(k["x"]) + b(k["y"])
open(sys.argv[2], "wb").write(tlv(0x30, alg + tlv(3, b"\0" + key)))
EOF
}

# raw_to_der RAWFILE DERFILE: ECDSA r||s -> DER ECDSA-Sig-Value.
raw_to_der() {
    python3 - "$1" "$2" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read(); n = len(raw) // 2
def dint(v):
    v = v.lstrip(b"\0") or b"\0"
    v = b"\0" + v if v[0] & 0x80 else v
    return bytes([2, len(v)]) + v
body = dint(raw[:n]) + dint(raw[n:])
hdr = bytes([0x30, len(body)]) if len(body) < 128 else bytes([0x30, 0x81, len(body)])
open(sys.argv[2], "wb").write(hdr + body)
EOF
}

# ---- helpers for the PKCS#11 tests (kvault.so through pkcs11-tool and python3 ctypes) ----

# vaultd_setup [start_vaultd args...]: starts vaultd (on failure: "not ok - vaultd starts" and
# the script exits) and sets CA (vaultd's CA file) and URL (the dev vault's URL).
vaultd_setup() {
    if ! start_vaultd "$@"; then
        not_ok "vaultd starts"
        finish
        exit 1
    fi
    CA="$VAULTD_STATE/ca.pem"
    URL=$(conf_get url)
}

# p11_setup [start_vaultd args...]: vaultd_setup, and P11: pkcs11-tool on kvault.so (with a
# time limit).
p11_setup() {
    vaultd_setup "$@"
    P11=(timeout 120 pkcs11-tool --module "$KV_SO")
}

# dev_credentials: DEV_CONF (vaultd's client.conf) and the dev service principal's AUTHORITY,
# TENANT, CLIENT (id) and SECRET from it, for tests that write client configurations.
dev_credentials() {
    DEV_CONF=$KVAULT_CONF
    AUTHORITY=$(conf_get authority)
    TENANT=$(conf_get tenant_id)
    CLIENT=$(conf_get client_id)
    SECRET=$(conf_get client_secret)
}

# kid NAME [VAULT]: kvault's CKA_ID of a key, in hex: the first 16 bytes of
# SHA-256("<vault>/<key name>") (vault: dev). pkcs11-tool 0.23 selects keys for --sign, --verify
# and --read-object by --id (it ignores --label there).
kid() { printf '%s/%s' "${2:-dev}" "$1" | openssl dgst -sha256 -binary | head -c 16 | xxd -p; }

# rest_create_key NAME JSON OUT: creates a key through the vault REST API (needs $TOKEN, $CA,
# $URL); the key bundle goes to OUT.
rest_create_key() {
    curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -X POST \
        "$URL/keys/$1/create?api-version=7.4" -d "$2" -o "$3"
}

# token_fetches LOG: how many tokens kvault.so fetched (KVAULT_LOG=debug lines in LOG).
token_fetches() { grep -c "new token" "$1"; }

# softhsm_module: prints the path of SoftHSMv2's PKCS#11 module; fails when SoftHSMv2 (or
# softhsm2-util) is not installed.
softhsm_module() {
    local m
    command -v softhsm2-util >/dev/null || return 1
    for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
        [ -r "$m" ] && echo "$m" && return 0
    done
    return 1
}

# p11run SCRIPT [ARGS...]: runs a python3 script that imports p11 (tests/integration/p11.py, the
# ctypes binding of kvault.so: `from p11 import *`) with sys.argv[1:] = kvault.so ARGS...
# P11PY_PATH: more module directories (a test's own helpers); P11PY_TIMEOUT: seconds (120).
# (No __pycache__ is written into the source tree.)
p11run() {
    local script=$1
    shift
    KV_SO="$KV_SO" PYTHONPATH="$KV_SOURCE_DIR/tests/integration${P11PY_PATH:+:$P11PY_PATH}" \
        PYTHONDONTWRITEBYTECODE=1 LD_PRELOAD="$KV_ASAN_PRELOAD" \
        timeout "${P11PY_TIMEOUT:-120}" python3 "$script" "$KV_SO" "$@"
}
# p11py [ARGS...]: the same for a script on stdin.
p11py() { p11run - "$@"; }
# p11py_env NAME=VALUE... [ARGS...]: p11py with these variables in its environment (for check,
# which cannot put `NAME=VALUE` before a shell function).
p11py_env() {
    while [ $# -gt 0 ] && [[ $1 == [A-Za-z_]*=* ]]; do
        local -x "$1"
        shift
    done
    p11py "$@"
}

# wait_file FILE [TENTHS]: waits until FILE exists (at most TENTHS tenths of a second, 600).
wait_file() { for _ in $(seq 1 "${2:-600}"); do [ -f "$1" ] && return 0; sleep 0.1; done; return 1; }
