#!/bin/bash
# test_logscan.sh - no secret in any log: scans every log kept by the test run
# ($KV_BUILD_DIR/test-logs/<test>/: vaultd's stderr logs and audit logs, see kv_keep_logs in
# lib.sh) for bearer tokens (JWTs), PEM private keys, private JWK members, form secrets,
# the secret values tests set with the marker "kvsecretmarker", and the test instances'
# client secrets, HSM PINs and identity headers. Runs its own workload first (token, key
# import with a private JWK, sign, secret set/get, service principal with a password) so that
# it checks something when run alone; registered to run LAST in the suite.
source "$(dirname "$0")/lib.sh"

start_vaultd || exit 1
CA="$VAULTD_STATE/ca.pem"
U="https://localhost:$VAULTD_PORT"
AV="api-version=7.4"
T=$(get_token)
check "token for the workload" test -n "$T"
req() { # METHOD PATH [BODY]
    if [ -n "${3:-}" ]; then
        curl -s --cacert "$CA" -X "$1" -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
            -d "$3" "$U$2"
    else
        curl -s --cacert "$CA" -X "$1" -H "Authorization: Bearer $T" "$U$2"
    fi
}
# a private JWK (EC P-256) generated here; its "d" must not reach a log
JWK=$(python3 - <<'EOF'
import base64, json, subprocess
der = subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                      "-outform", "DER"], capture_output=True, check=True).stdout
# SEC1 ECPrivateKey: 30 77 02 01 01 04 20 <d:32> a0 0a <oid> a1 44 03 42 00 04 <x:32> <y:32>
d = der[7:39]; pub = der[-64:]
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
print(json.dumps({"key": {"kty": "EC", "crv": "P-256", "d": b(d), "x": b(pub[:32]), "y": b(pub[32:])}}))
EOF
)
check "import a key with a private JWK" bash -c "curl -s --cacert '$CA' -X PUT -H 'Authorization: Bearer $T' -H 'Content-Type: application/json' -d '$JWK' '$U/keys/scan1?$AV' | grep -q '\"kid\"'"
check "sign with it" bash -c "curl -s --cacert '$CA' -X POST -H 'Authorization: Bearer $T' -H 'Content-Type: application/json' -d '{\"alg\":\"ES256\",\"value\":\"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU\"}' '$U/keys/scan1/sign?$AV' | grep -q '\"value\"'"
req PUT "/secrets/scan?$AV" '{"value":"kvsecretmarker-logscan-value"}' >/dev/null
check "secret round trip" bash -c "curl -s --cacert '$CA' -H 'Authorization: Bearer $T' '$U/secrets/scan?$AV' | grep -q kvsecretmarker-logscan-value"
req POST "/admin/servicePrincipals" '{"displayName":"logscan-sp"}' >"$T_TMP/sp.json"
# a wrong secret and a token in the query string: neither may be logged
curl -s --cacert "$CA" "$U/$(conf_get tenant_id)/oauth2/v2.0/token" -d grant_type=client_credentials \
    -d "client_id=$(conf_get client_id)" -d client_secret=kvsecretmarker-wrong-secret \
    -d scope=https://vault.azure.net/.default >/dev/null
curl -s --cacert "$CA" "$U/keys/scan1?$AV&access_token=$T" >/dev/null
stop_vaultd
python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("password",""))' "$T_TMP/sp.json" \
    >>"$T_TMP/extra.secrets" 2>/dev/null
kv_keep_logs
cat "$T_TMP/extra.secrets" >>"$KV_LOG_DIR/.secrets"

ROOT="$KV_BUILD_DIR/test-logs"
mapfile -t FILES < <(find "$ROOT" -type f ! -name '.secrets' | sort)
check "logs to scan (${#FILES[@]} files in $(find "$ROOT" -mindepth 1 -maxdepth 1 -type d | wc -l) test dirs)" \
    test "${#FILES[@]}" -gt 0
check "this run's audit log is among them" bash -c "ls '$KV_LOG_DIR' | grep -q audit"
# the secrets to look for: at least 12 characters (short test PINs would match anything)
find "$ROOT" -name .secrets -exec cat {} + 2>/dev/null | awk 'length($0) >= 12' | sort -u >"$T_TMP/secrets.txt"
check "secrets to look for ($(wc -l <"$T_TMP/secrets.txt"))" test -s "$T_TMP/secrets.txt"

# scan PATTERN-NAME GREP-ARGS...: one check per pattern; findings name the file and line only
scan() {
    local name=$1 hits; shift
    hits=$(grep -n -o "$@" "${FILES[@]}" /dev/null 2>/dev/null | cut -d: -f1,2 | sort -u | head -n 20)
    if [ -z "$hits" ]; then ok "no $name in any log"; else
        not_ok "$name found in logs:"; echo "$hits" | sed "s|$ROOT/|    # |"; fi
}
scan "JWT (bearer token)" -E 'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}'
scan "PEM private key" -E -- '-----BEGIN [A-Z ]*PRIVATE KEY-----'
scan "private JWK member" -E '"(d|p|q|dp|dq|qi|k)"[[:space:]]*:[[:space:]]*"'
scan "secret value marker (kvsecretmarker)" -F 'kvsecretmarker'
scan "form secret (client_secret= / client_assertion=)" -E 'client_secret=|client_assertion='
scan "Authorization header" -E -i 'bearer [A-Za-z0-9._-]{20,}'
scan "access_token query parameter" -F 'access_token='
scan "client secret, HSM PIN or identity header of a test instance" -F -f "$T_TMP/secrets.txt"

finish
