#!/bin/bash
# test_client_auth.sh - vaultclient's authentication methods end to end: kvault.so signing
# with pkcs11-tool (and once with openssl through the provider) against a dev vaultd, for each
# method: client secret (explicit, tenant from the 401 challenge), client certificate (PS256 +
# x5t#S256, RS256 + x5t, ES256, with the chain), managed identity (App Service style from
# STATE/identity.env, IMDS via imds_endpoint and via AZURE_POD_IDENTITY_AUTHORITY_HOST), static
# token file (re-read when it changes), and the Azure SDK environment variables alone; precedence
# (configuration over environment); the token cache shared by threads and kept across fork; and
# clear failures: wrong secret, an assertion signed by another key, a missing or wrong identity
# header, a challenge from an authority that is not the configured one, a bad token file; and
# a short-lived token renewed ahead of its expiry.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The runner's own Azure environment must not leak into these tests.
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH \
    AZURE_AUTHORITY_HOST AZURE_CLIENT_SEND_CERTIFICATE_CHAIN AZURE_CLIENT_CERTIFICATE_PASSWORD \
    IDENTITY_ENDPOINT IDENTITY_HEADER AZURE_POD_IDENTITY_AUTHORITY_HOST MSI_ENDPOINT KVAULT_LOG

IPORT=$(free_port)
MI_ARGS=()
"$VAULTD" --help 2>&1 | grep -q -- '--identity-listen' && MI_ARGS=(--identity-listen "127.0.0.1:$IPORT")
p11_setup "${MI_ARGS[@]}"
dev_credentials
A="$T_TMP/auth"
mkdir -p "$A"

TOKEN=$(get_token)
check "create EC key authk" rest_create_key authk '{"kty":"EC","crv":"P-256"}' "$A/authk.json"
# the public key as SPKI DER from the JWK (P-256: fixed prefix + 04 || x || y)
jwk_to_der() {
    python3 - "$A/authk.json" "$A/authk.der" <<'PYEOF'
import base64, json, sys
k = json.load(open(sys.argv[1]))["key"]
b = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
open(sys.argv[2], "wb").write(bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d03010703420004") + b(k["x"]) + b(k["y"]))
PYEOF
}
check "public key of authk" jwk_to_der
openssl pkey -pubin -inform DER -in "$A/authk.der" -out "$A/authk.pem" 2>/dev/null
head -c 2000 /dev/urandom >"$A/data"

# mkconf NAME [LINES...]: a [vault dev] section with url and ca_file plus LINES (0600).
mkconf() {
    local f="$A/$1.conf"
    shift
    { printf '[vault dev]\nurl = %s\nca_file = %s\n' "$URL" "$CA"; printf '%s\n' "$@"; } >"$f"
    chmod 600 "$f"
    echo "$f"
}

# p11sign CONF TAG [VAR=VALUE...]: pkcs11-tool signs with authk under CONF (and the given
# environment); openssl verifies the signature with the key's public key.
p11sign() {
    local conf=$1 tag=$2
    shift 2
    env KVAULT_CONF="$conf" KVAULT_LOG=warn "$@" "${P11[@]}" --sign --id "$(kid authk)" \
        -m ECDSA-SHA256 -i "$A/data" -o "$A/$tag.sig" --signature-format openssl &&
        openssl dgst -sha256 -verify "$A/authk.pem" -signature "$A/$tag.sig" "$A/data"
}

# assign_role APPID ROLE: at vault scope, with `kvault role assignment create` (H5's CLI), or
# while that does not exist yet, with the role assignments REST API as the dev principal.
assign_role() {
    if "$KVAULT" role assignment create --help >/dev/null 2>&1; then
        KVAULT_CONF=$DEV_CONF "$KVAULT" role assignment create --assignee "$1" --role "$2" \
            --scope /vaults/dev >/dev/null
    else
        local rid
        rid=$(curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
            "$URL/providers/Microsoft.Authorization/roleDefinitions?api-version=7.4" |
            python3 -c 'import json,sys; print([d["name"] for d in json.load(sys.stdin)["value"]
                if d["properties"]["roleName"] == sys.argv[1]][0])' "$2") || return 1
        curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" -X PUT \
            -H 'Content-Type: application/json' \
            "$URL/providers/Microsoft.Authorization/roleAssignments/$(python3 -c 'import uuid; print(uuid.uuid4())')?api-version=7.4" \
            -d "{\"properties\":{\"roleDefinitionId\":\"$rid\",\"principalId\":\"$1\"}}" >/dev/null
    fi
}
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]] or "")' "$@"; }

# ---- client secret ----
C_SECRET=$(mkconf secret "auth = client_secret" "tenant_id = $TENANT" "client_id = $CLIENT" \
    "client_secret = $SECRET" "authority = $AUTHORITY")
check "client_secret: pkcs11-tool signs" p11sign "$C_SECRET" secret
C_NOTENANT=$(mkconf notenant "auth = client_secret" "client_id = $CLIENT" \
    "client_secret = $SECRET" "authority = $AUTHORITY")
check "client_secret without tenant_id: tenant from the vault's 401 challenge" \
    p11sign "$C_NOTENANT" notenant
C_FOREIGN=$(mkconf foreign "auth = client_secret" "client_id = $CLIENT" \
    "client_secret = $SECRET")
check_fails_with "challenge naming another authority than the configured one is refused" \
    "not the configured authority" p11sign "$C_FOREIGN" foreign
C_WRONG=$(mkconf wrong "auth = client_secret" "tenant_id = $TENANT" "client_id = $CLIENT" \
    "client_secret = not-the-secret" "authority = $AUTHORITY")
check_fails_with "wrong client secret: refused with a clear error" \
    "Invalid client secret|AADSTS7000215" p11sign "$C_WRONG" wrong
check_fails_with "wrong client secret: kvault CLI names the reason" "AADSTS7000215" \
    env KVAULT_CONF="$C_WRONG" "$KVAULT" key show --vault-name dev --name authk

# a second service principal with a secret, given Key Vault Crypto User
if KVAULT_CONF=$DEV_CONF "$KVAULT" ad sp create-for-rbac --name auth-secret-sp >"$A/sp1.json"; then
    ok "kvault ad sp create-for-rbac (secret)"
else not_ok "kvault ad sp create-for-rbac (secret)"; fi
SP1_ID=$(json_get "$A/sp1.json" appId 2>/dev/null)
SP1_SECRET=$(json_get "$A/sp1.json" password 2>/dev/null)
check "role Key Vault Crypto User for the secret principal" assign_role "$SP1_ID" \
    "Key Vault Crypto User"
C_SP1=$(mkconf sp1 "tenant_id = $TENANT" "client_id = $SP1_ID" "client_secret = $SP1_SECRET" \
    "authority = $AUTHORITY")
check "client_secret of a new principal (no auth line): signs" p11sign "$C_SP1" sp1

# ---- client certificate ----
if KVAULT_CONF=$DEV_CONF "$KVAULT" ad sp create-for-rbac --name auth-cert-sp --cert \
    --keyout "$A/certA.pem" >"$A/sp2.json"; then
    ok "kvault ad sp create-for-rbac --cert"
else not_ok "kvault ad sp create-for-rbac --cert"; fi
SP2_ID=$(json_get "$A/sp2.json" appId 2>/dev/null)
[ "$(json_get "$A/sp2.json" fileWithCertAndPrivateKey 2>/dev/null)" = "$A/certA.pem" ] &&
    [ -z "$(json_get "$A/sp2.json" password 2>/dev/null)" ] &&
    ok "--cert: no password, fileWithCertAndPrivateKey printed" ||
    not_ok "--cert: no password, fileWithCertAndPrivateKey printed"
check "role Key Vault Crypto User for the certificate principal" assign_role "$SP2_ID" \
    "Key Vault Crypto User"
for alg in PS256 RS256; do
    C=$(mkconf "cert-$alg" "auth = client_certificate" "tenant_id = $TENANT" \
        "client_id = $SP2_ID" "client_certificate = $A/certA.pem" "authority = $AUTHORITY" \
        "client_assertion_alg = $alg")
    check "client_certificate ($alg assertion): pkcs11-tool signs" p11sign "$C" "cert-$alg"
done
C_CHAIN=$(mkconf cert-chain "auth = client_certificate" "client_id = $SP2_ID" \
    "client_certificate = $A/certA.pem" "authority = $AUTHORITY" \
    "client_certificate_send_chain = true")
check "client_certificate with x5c, tenant from the challenge: signs" p11sign "$C_CHAIN" chain
C_CERT=$(mkconf cert "auth = client_certificate" "tenant_id = $TENANT" "client_id = $SP2_ID" \
    "client_certificate = $A/certA.pem" "authority = $AUTHORITY")
check "client_certificate: openssl dgst -sign through the kvault provider" \
    env KVAULT_CONF="$C_CERT" openssl dgst -provider kvault -provider default -sha256 \
    -sign kvault://dev/keys/authk -out "$A/ossl.sig" "$A/data"
check "provider signature verifies" openssl dgst -sha256 -verify "$A/authk.pem" \
    -signature "$A/ossl.sig" "$A/data"

# certificate B (same subject, another key) configured for principal A: refused
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=auth-cert-sp" -days 1 \
    -keyout "$A/certB.key" -out "$A/certB.crt" 2>/dev/null
cat "$A/certB.crt" "$A/certB.key" >"$A/certB.pem"
C_B=$(mkconf certB "auth = client_certificate" "tenant_id = $TENANT" "client_id = $SP2_ID" \
    "client_certificate = $A/certB.pem" "authority = $AUTHORITY")
check_fails_with "assertion signed by another key (cert B for principal A): refused" \
    "client_certificate.*failed \(HTTP 401\).*AADSTS700027|AADSTS700027" p11sign "$C_B" certB

# an EC P-256 certificate registered with --cert-file: ES256 assertion
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=auth-ec-sp" \
    -days 1 -keyout "$A/certE.key" -out "$A/certE.crt" 2>/dev/null
cat "$A/certE.crt" "$A/certE.key" >"$A/certE.pem"
if KVAULT_CONF=$DEV_CONF "$KVAULT" ad sp create-for-rbac --name auth-ec-sp \
    --cert-file "$A/certE.crt" >"$A/sp3.json"; then
    SP3_ID=$(json_get "$A/sp3.json" appId)
    assign_role "$SP3_ID" "Key Vault Crypto User"
    C_E=$(mkconf certE "auth = client_certificate" "tenant_id = $TENANT" "client_id = $SP3_ID" \
        "client_certificate = $A/certE.pem" "authority = $AUTHORITY")
    check "client_certificate with an EC key (ES256 assertion): signs" p11sign "$C_E" certE
else
    not_ok "kvault ad sp create-for-rbac --cert-file (EC certificate)"
fi

# ---- environment variables only (no auth line, no credential in the file) ----
C_ENV=$(mkconf env)
check "environment only, AZURE_CLIENT_SECRET: signs" p11sign "$C_ENV" env-secret \
    AZURE_TENANT_ID="$TENANT" AZURE_CLIENT_ID="$SP1_ID" AZURE_CLIENT_SECRET="$SP1_SECRET" \
    AZURE_AUTHORITY_HOST="$AUTHORITY"
check "environment only, AZURE_CLIENT_CERTIFICATE_PATH: signs" p11sign "$C_ENV" env-cert \
    AZURE_TENANT_ID="$TENANT" AZURE_CLIENT_ID="$SP2_ID" \
    AZURE_CLIENT_CERTIFICATE_PATH="$A/certA.pem" AZURE_AUTHORITY_HOST="$AUTHORITY"
C_AUTHENV=$(mkconf authenv "auth = env")
check "auth = env, AZURE_CLIENT_SECRET: signs" p11sign "$C_AUTHENV" authenv \
    AZURE_TENANT_ID="$TENANT" AZURE_CLIENT_ID="$SP1_ID" AZURE_CLIENT_SECRET="$SP1_SECRET" \
    AZURE_AUTHORITY_HOST="$AUTHORITY"
check "configuration wins over the environment (wrong AZURE_CLIENT_SECRET ignored)" \
    p11sign "$C_SP1" precedence AZURE_CLIENT_ID="$SP1_ID" AZURE_CLIENT_SECRET=wrong
check_fails_with "environment: AZURE_CLIENT_SECRET without AZURE_TENANT_ID: clear error" \
    "AZURE_TENANT_ID" p11sign "$C_ENV" env-half AZURE_CLIENT_ID="$SP1_ID" \
    AZURE_CLIENT_SECRET="$SP1_SECRET"
check_fails_with "environment: wrong secret is refused" "AADSTS7000215" p11sign "$C_ENV" \
    env-wrong AZURE_TENANT_ID="$TENANT" AZURE_CLIENT_ID="$SP1_ID" AZURE_CLIENT_SECRET=nope \
    AZURE_AUTHORITY_HOST="$AUTHORITY"

# ---- static token ----
get_token >"$A/token.txt"
C_STATIC=$(mkconf static "auth = static_token" "token_file = $A/token.txt")
check "static_token: signs" p11sign "$C_STATIC" static
echo "not-a-token" >"$A/bad-token.txt"
C_BADSTATIC=$(mkconf badstatic "auth = static_token" "token_file = $A/bad-token.txt")
check_fails_with "static_token with a bad token: vault's 401 reported" "401" \
    p11sign "$C_BADSTATIC" badstatic

# ---- managed identity ----
IDENV="$VAULTD_STATE/identity.env"
if [ -f "$IDENV" ]; then
    ok "vaultd --dev --identity-listen writes identity.env"
    IE=$(sed -n 's/^\(export \)\{0,1\}IDENTITY_ENDPOINT=//p' "$IDENV" | tr -d '"'"'")
    IH=$(sed -n 's/^\(export \)\{0,1\}IDENTITY_HEADER=//p' "$IDENV" | tr -d '"'"'")
else
    not_ok "vaultd --dev --identity-listen writes identity.env"
    IE="http://127.0.0.1:$IPORT/msi/token"
    IH=$(cat "$VAULTD_STATE/identity-header" 2>/dev/null)
fi
C_MI=$(mkconf mi "auth = managed_identity")
check "managed identity, App Service style (IDENTITY_ENDPOINT/IDENTITY_HEADER): signs" \
    p11sign "$C_MI" mi-appsvc IDENTITY_ENDPOINT="$IE" IDENTITY_HEADER="$IH"
check "managed identity from the environment alone (no auth line): signs" \
    p11sign "$C_ENV" mi-env IDENTITY_ENDPOINT="$IE" IDENTITY_HEADER="$IH"
C_IMDS=$(mkconf imds "auth = managed_identity" \
    "imds_endpoint = http://127.0.0.1:$IPORT/metadata/identity/oauth2/token")
check "managed identity, IMDS style (imds_endpoint): signs" p11sign "$C_IMDS" mi-imds
check "managed identity, IMDS via AZURE_POD_IDENTITY_AUTHORITY_HOST: signs" \
    p11sign "$C_MI" mi-pod AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:$IPORT"
check "managed identity: openssl through the provider" env KVAULT_CONF="$C_IMDS" \
    openssl dgst -provider kvault -provider default -sha256 -sign kvault://dev/keys/authk \
    -out "$A/ossl-mi.sig" "$A/data"
check_fails_with "managed identity: IDENTITY_ENDPOINT without IDENTITY_HEADER: clear error" \
    "IDENTITY_HEADER is missing" p11sign "$C_MI" mi-nohdr IDENTITY_ENDPOINT="$IE"
check_fails_with "managed identity: wrong identity header refused" \
    "managed_identity.*failed \(HTTP 4[0-9][0-9]\)" p11sign "$C_MI" mi-badhdr \
    IDENTITY_ENDPOINT="$IE" IDENTITY_HEADER=wrong-header-value-0123456789
C_FAR=$(mkconf far "auth = managed_identity" "identity_endpoint = http://192.0.2.1/msi/token" \
    "identity_header_file = $A/token.txt")
check_fails_with "managed identity: plain http to a non-local endpoint refused" \
    "loopback or link-local" p11sign "$C_FAR" far

# ---- one fetch for many threads; a forked child keeps the token; static file re-read ----
# p11auth.py: sign(h) over p11.py (the shared ctypes binding of kvault.so): finds authk and
# signs with CKM_ECDSA; returns the first failing CK_RV (CKR_OBJECT_HANDLE_INVALID: no authk).
cat >"$A/p11auth.py" <<'PYEOF'
import os, sys, threading
from p11 import *
def sign(h):
    try:
        k = find_label(h, "authk", CKO_PRIVATE_KEY)
    except P11Error as e:
        return e.rv
    if len(k) != 1: return CKR_OBJECT_HANDLE_INVALID
    ri, rs, _ = sign_rv(h, k[0], CKM_ECDSA, b"\x01" * 32, 64)
    return ri or rs
PYEOF
P11PY_PATH=$A

cat >"$A/threads.py" <<'PYEOF'
from p11auth import *
assert C_Initialize(None) == 0
hs = [open_session() for _ in range(8)]
go = threading.Barrier(8); res = []
def run(h):
    go.wait(); res.append(sign(h))
ts = [threading.Thread(target=run, args=(h,)) for h in hs]
[t.start() for t in ts]; [t.join() for t in ts]
assert res == [0] * 8, res
# Python's join returns before the C threads have run their thread-local destructors
# (OpenSSL's per-thread cleanup of kvault's private library context): C_Finalize right away
# must be safe (kvault keeps that context for the life of the process).
assert C_Finalize(None) == 0
PYEOF
for c in secret notenant; do
    KVAULT_CONF="$A/$c.conf" KVAULT_LOG=debug p11py <"$A/threads.py" >"$A/threads-$c.out" \
        2>"$A/threads-$c.err"
    rc=$?
    [ $rc -eq 0 ] && [ "$(token_fetches "$A/threads-$c.err")" -eq 1 ] &&
        ok "8 threads on a cold cache ($c.conf): all sign, one token fetch" ||
        { not_ok "8 threads on a cold cache ($c.conf): all sign, one token fetch (rc $rc, $(token_fetches "$A/threads-$c.err") fetches)"; tail -5 "$A/threads-$c.err"; }
done

KVAULT_CONF=$C_IMDS KVAULT_LOG=debug p11py >"$A/fork.out" 2>"$A/fork.err" <<'PYEOF'
from p11auth import *
assert C_Initialize(None) == 0
h = open_session(); assert sign(h) == 0
pid = os.fork()
if pid == 0:
    os._exit(0 if sign(h) == 0 and sign(open_session()) == 0 else 1)
_, st = os.waitpid(pid, 0)
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st
assert sign(h) == 0
assert C_Finalize(None) == 0
PYEOF
rc=$?
[ $rc -eq 0 ] && [ "$(token_fetches "$A/fork.err")" -eq 1 ] &&
    ok "fork: the child signs with the parent's cached token (one fetch in all)" ||
    { not_ok "fork: the child signs with the parent's cached token (rc $rc, $(token_fetches "$A/fork.err") fetches)"; tail -5 "$A/fork.err"; }

cp "$A/token.txt" "$A/live-token.txt"
C_LIVE=$(mkconf live "auth = static_token" "token_file = $A/live-token.txt")
live_p11py() { KVAULT_CONF="$C_LIVE" T="$A/live-token.txt" GOOD="$A/token.txt" p11py; }
check "static_token: the file is re-read when it changes (good, bad, good)" live_p11py <<'PYEOF'
from p11auth import *
import shutil, time
assert C_Initialize(None) == 0
h = open_session()
assert sign(h) == 0
time.sleep(0.01); open(os.environ["T"], "w").write("garbage\n")
assert sign(h) != 0
time.sleep(0.01); shutil.copy(os.environ["GOOD"], os.environ["T"])
assert sign(h) == 0
assert C_Finalize(None) == 0
PYEOF

# ---- a short-lived token is renewed before it expires (not after a 401) ----
# vaultd again on the same state and port with 8-second tokens; kvault.so refreshes a quarter of
# the lifetime ahead: one process signs 4 times 3 s apart -> 2 token fetches and no 401.
stop_vaultd
if start_vaultd "${MI_ARGS[@]}" --token-lifetime 8; then
    KVAULT_CONF="$C_SP1" KVAULT_LOG=debug p11py >"$A/refresh.out" 2>"$A/refresh.err" <<'PYEOF'
from p11auth import *
import time
assert C_Initialize(None) == 0
h = open_session()
for i in range(4):
    if i:
        time.sleep(3)
    rv = sign(h)
    assert rv == 0, (i, rv)
assert C_Finalize(None) == 0
PYEOF
    rc=$?
    n=$(token_fetches "$A/refresh.err")
    n401=$(grep -c "answered 401" "$A/refresh.err")
    [ $rc -eq 0 ] && [ "$n" -eq 2 ] && [ "$n401" -eq 0 ] &&
        ok "8-second tokens, 4 signatures 3 s apart: all sign, 2 token fetches, no 401 (renewed before expiry)" ||
        { not_ok "8-second tokens, 4 signatures 3 s apart: all sign, 2 token fetches, no 401 (rc $rc, $n fetches, $n401 401s)"; tail -8 "$A/refresh.err"; }
else
    not_ok "vaultd restarts with --token-lifetime 8"
fi

# ---- no secret or token in what kvault.so logged at debug level ----
pats=()
for s in "$SECRET" "$SP1_SECRET" "$(cat "$A/token.txt")" "$IH"; do [ -n "$s" ] && pats+=(-e "$s"); done
if grep -rqF "${pats[@]}" "$A"/*.err "$T_TMP/last.out"; then
    not_ok "debug logs hold no secret, token or identity header"
else ok "debug logs hold no secret, token or identity header"; fi

finish
