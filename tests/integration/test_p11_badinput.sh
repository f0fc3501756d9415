#!/bin/bash
# test_p11_badinput.sh - bad input on real objects (issue 5, "Bad input"): runs the unit test
# tests/unit/test_p11_badinput.c against a running vaultd (KV_BADINPUT_CONF = its client.conf,
# whose first slot is the vault "dev" with RSA key birsa and EC key biec), so that its live group
# checks short attribute and signature buffers, data / ciphertext / signature lengths,
# mechanism-key mismatches, operation states and read-only sessions on real keys. The walks over
# every function (no vault needed) run as well. Needs the test_p11_badinput binary of this build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset KVAULT_LOG

BIN="$KV_BUILD_DIR/tests/test_p11_badinput"
if [ ! -x "$BIN" ]; then
    not_ok "the test_p11_badinput binary exists in $KV_BUILD_DIR/tests"
    finish
    exit 1
fi
if ! start_vaultd; then
    not_ok "vaultd starts"
    finish
    exit 1
fi
CA="$VAULTD_STATE/ca.pem"
URL=$(conf_get url)
TOKEN=$(get_token)
check "create RSA-2048 key birsa" curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$URL/keys/birsa/create?api-version=7.4" \
    -d '{"kty":"RSA","key_size":2048}' -o /dev/null
check "create EC P-256 key biec" curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$URL/keys/biec/create?api-version=7.4" \
    -d '{"kty":"EC","crv":"P-256"}' -o /dev/null

# The binary is built (and instrumented, in sanitizer builds) with the module: no preloading.
if env KV_SO="$KV_SO" KV_BADINPUT_CONF="$KVAULT_CONF" timeout 300 "$BIN" >"$T_TMP/last.out" 2>&1
then
    ok "bad input over every function, and on real objects"
else
    not_ok "bad input over every function, and on real objects"
    grep -E 'returned 0x|FAILED|ERROR|Sanitizer|SUMMARY' "$T_TMP/last.out" | head -n 40 | sed 's/^/    # /'
fi
if grep -q 'SKIPPED' "$T_TMP/last.out"; then
    not_ok "the live checks ran (not skipped)"
    kv_show_last
else
    ok "the live checks ran (not skipped)"
fi
finish
