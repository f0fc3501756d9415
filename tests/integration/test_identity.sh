#!/usr/bin/env bash
# test_identity.sh - vaultd's identity service (issue 4): service principals with a secret or a
# certificate (`kvault ad sp create-for-rbac [--cert]`, list, show, delete), client assertions
# (RS256 + x5t, PS256 + x5t#S256, ES256; v2 and v1 endpoints) and their refusals (another key,
# unknown thumbprint, expired, replayed jti, wrong aud, iss/sub mismatch, malformed), tokens of
# another tenant / audience and tampered tokens refused by the vault, the managed-identity
# endpoints (IMDS and App Service style, user-assigned selection, non-loopback bind refused),
# token-signing key rotation (JWKS lists 2 keys, old tokens stay valid, scheduled rotation),
# users with the password grant (`kvault ad user ...`), the jti replay cache surviving a restart
# and bounded per client, and the regressions of the security review (overflowing exp, PS256
# salt, header types, crit, audience vs Host header, duplicate form parameters, certificate
# registration checks, Key Vault Administrator at key scope is no tenant administrator).
source "$(dirname "$0")/lib.sh"

MI_HOST=kvtest-host-$$
start_vaultd --identity-host "$MI_HOST" || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"
CA="$VAULTD_STATE/ca.pem"
BASE="https://localhost:$VAULTD_PORT"
TENANT=$(conf_get tenant_id)
TOKEN=$(get_token)
TOKEN_URL="$BASE/$TENANT/oauth2/v2.0/token"
TOKEN_URL_V1="$BASE/$TENANT/oauth2/token"
VAULT="https://dev.vault.localhost:$VAULTD_PORT"

cat >"$T_TMP/mkassertion.py" <<'PY'
#!/usr/bin/env python3
# mkassertion.py - makes a client assertion JWT (RFC 7523) for the identity tests with the
# openssl command line (no Python packages): RS256 / PS256 / ES256, x5t and/or x5t#S256 of
# a certificate, chosen claims. Prints the JWT.
#
#   mkassertion.py --key KEY.pem --cert CERT.pem --aud URL --client ID [--alg RS256|PS256|ES256]
#                  [--thumb x5t|x5t#S256|both] [--thumb-cert OTHER.pem] [--iss X] [--sub X]
#                  [--exp-in SECONDS] [--nbf-in SECONDS] [--jti ID] [--exp-abs EPOCH]
#                  [--hdr-extra JSON] [--pss-salt N|digest]
import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], check=True,
                          capture_output=True).stdout


def der_ecdsa_to_raw(sig):
    # SEQUENCE { INTEGER r, INTEGER s } -> r || s (32 bytes each)
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        v = sig[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(32, b"\0")
        i += 2 + n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--aud", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--alg", default="RS256")
    ap.add_argument("--thumb", default=None)
    ap.add_argument("--thumb-cert", default=None)
    ap.add_argument("--iss", default=None)
    ap.add_argument("--sub", default=None)
    ap.add_argument("--exp-in", type=int, default=600)
    ap.add_argument("--nbf-in", type=int, default=0)
    ap.add_argument("--jti", default=None)
    ap.add_argument("--exp-abs", type=int, default=None)  # absolute exp (overflow tests)
    ap.add_argument("--hdr-extra", default=None)  # JSON merged into the header
    ap.add_argument("--pss-salt", default="digest")  # PS256 salt length
    a = ap.parse_args()

    der = cert_der(a.thumb_cert or a.cert)
    thumb = a.thumb or ("x5t#S256" if a.alg == "PS256" else "x5t")
    hdr = {"alg": a.alg, "typ": "JWT"}
    if thumb in ("x5t", "both"):
        hdr["x5t"] = b64u(hashlib.sha1(der).digest())
    if thumb in ("x5t#S256", "both"):
        hdr["x5t#S256"] = b64u(hashlib.sha256(der).digest())
    if a.hdr_extra:
        hdr.update(json.loads(a.hdr_extra))
    now = int(time.time())
    claims = {"aud": a.aud, "iss": a.iss or a.client, "sub": a.sub or a.client,
              "jti": a.jti or str(uuid.uuid4()), "nbf": now + a.nbf_in, "iat": now + a.nbf_in,
              "exp": a.exp_abs if a.exp_abs is not None else now + a.exp_in}
    signing_input = (b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
                     b64u(json.dumps(claims, separators=(",", ":")).encode()))
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(signing_input.encode())
        path = f.name
    try:
        cmd = ["openssl", "dgst", "-sha256", "-sign", a.key]
        if a.alg == "PS256":
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:" + a.pss_salt]
        sig = subprocess.run(cmd + [path], check=True, capture_output=True).stdout
    finally:
        os.unlink(path)
    if a.alg == "ES256":
        sig = der_ecdsa_to_raw(sig)
    print(signing_input + "." + b64u(sig))


if __name__ == "__main__":
    sys.exit(main())
PY
mkjwt() { python3 "$T_TMP/mkassertion.py" "$@"; }

jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# claims TOKEN: the JWT payload as JSON
claims() {
    python3 -c 'import sys,json,base64; p=sys.argv[1].split(".")[1]; p+="="*(-len(p)%4); print(base64.urlsafe_b64decode(p).decode())' "$1"
}
# expect DESC WANT_STATUS [PYEXPR over d = $T_TMP/resp.json]
expect() {
    local desc=$1 want=$2 expr=${3:-True} got=$CODE
    if [ "$got" = "$want" ] && { [ "$expr" = True ] || [ "$(jget "$T_TMP/resp.json" "$expr" 2>&1)" = True ]; }
    then ok "$desc"; else
        not_ok "$desc (status $got, wanted $want)"; head -c 600 "$T_TMP/resp.json" | sed 's/^/    # /'; echo
    fi
}
# assertion_token ASSERTION [CLIENT] [v1]: POST it to the token endpoint -> CODE, resp.json
assertion_token() {
    local url=$TOKEN_URL scope=(--data-urlencode scope=https://vault.azure.net/.default)
    if [ "${3:-}" = v1 ]; then url=$TOKEN_URL_V1; scope=(--data-urlencode resource=https://vault.azure.net); fi
    CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$url" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=${2:-$CERT_APP}" \
        --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
        --data-urlencode "client_assertion=$1" "${scope[@]}")
}
# vault_get PATH TOKEN -> CODE, resp.json, hdr in $T_TMP/resp.hdr
vault_get() {
    CODE=$(curl -s -o "$T_TMP/resp.json" -D "$T_TMP/resp.hdr" -w '%{http_code}' --cacert "$CA" \
        -H "Authorization: Bearer $2" "$VAULT$1?api-version=7.4")
}
adm() {
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$1"
        -H "Authorization: Bearer $TOKEN")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    curl "${args[@]}" "$BASE$2"
}
# stored_secret_ok ID SECRET [OTHER_ID]: reads the principals table through SQLite (so rows still
# in vaultd.db-wal count): ID's row holds a 16-byte salt, a 32-byte hash that is
# PBKDF2-HMAC-SHA256(SECRET, salt, iterations) with iterations >= 100000, SECRET appears in
# no stored value (clear or hex) of the whole database, and OTHER_ID's salt differs.
stored_secret_ok() {
    python3 - "$VAULTD_STATE/vaultd.db" "$@" <<'PY'
import hashlib, sqlite3, sys
db, cid, secret = sys.argv[1:4]
c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
q = "SELECT secret_salt, secret_hash, iterations FROM principals WHERE client_id = ?"
row = c.execute(q, (cid,)).fetchone()
assert row is not None, "no principals row for " + cid
salt, h, it = row
assert isinstance(salt, bytes) and len(salt) == 16, ("salt", salt)
assert isinstance(h, bytes) and len(h) == 32, ("hash", h)
assert isinstance(it, int) and it >= 100000, ("iterations", it)
assert hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, it) == h, "hash is not PBKDF2 of the secret"
dump = "\n".join(c.iterdump())
assert secret not in dump and secret.encode().hex() not in dump.lower(), "secret stored in clear"
if len(sys.argv) > 4:
    other = c.execute(q, (sys.argv[4],)).fetchone()
    assert other is not None and len(other[0]) == 16 and other[0] != salt, ("salts", other, salt)
PY
}

# ---- service principals (C1) ----
check "kvault ad sp create-for-rbac --name app-secret" sh -c "'$KVAULT' ad sp create-for-rbac --name app-secret >'$T_TMP/sp1.json'"
SP1=$(jget "$T_TMP/sp1.json" "d['appId']")
check "it prints appId, displayName, password, tenant (az's shape)" python3 -c "
import json; d=json.load(open('$T_TMP/sp1.json'))
assert d['displayName']=='app-secret' and d['tenant']=='$TENANT' and len(d['password'])>=32, d"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP1" \
    --data-urlencode "client_secret=$(jget "$T_TMP/sp1.json" "d['password']")" \
    --data-urlencode scope=https://vault.azure.net/.default)
expect "the new principal's secret gets a token" 200 "d['token_type'] == 'Bearer'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP1" \
    --data-urlencode "client_secret=not-the-secret" --data-urlencode scope=https://vault.azure.net/.default)
expect "a wrong secret is refused (AADSTS7000215)" 401 "d['error'] == 'invalid_client' and d['error_codes'] == [7000215]"
check "the secret is stored as a salted PBKDF2 hash (16-byte salt, >= 100000 iterations, not in clear; salt differs from the dev principal's)" \
    stored_secret_ok "$SP1" "$(jget "$T_TMP/sp1.json" "d['password']")" "$(conf_get client_id)"

check "kvault ad sp create-for-rbac --cert --keyout" sh -c "'$KVAULT' ad sp create-for-rbac --name app-cert --cert --keyout '$T_TMP/app-cert.pem' >'$T_TMP/sp2.json'"
CERT_APP=$(jget "$T_TMP/sp2.json" "d['appId']")
check "the PEM file (key + certificate) is mode 0600" test "$(stat -c %a "$T_TMP/app-cert.pem")" = 600
check "no password, fileWithCertAndPrivateKey printed" python3 -c "
import json; d=json.load(open('$T_TMP/sp2.json'))
assert d['password'] is None and d['fileWithCertAndPrivateKey']=='$T_TMP/app-cert.pem', d"
openssl x509 -in "$T_TMP/app-cert.pem" -out "$T_TMP/app-cert.crt"
openssl pkey -in "$T_TMP/app-cert.pem" -out "$T_TMP/app-cert.key"
FP=$(openssl x509 -in "$T_TMP/app-cert.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr A-F a-f)
check "certificateThumbprint = SHA-1 of the certificate" test "$(jget "$T_TMP/sp2.json" "d['certificateThumbprint']")" = "$FP"
CODE=$(adm GET "/admin/servicePrincipals/$CERT_APP")
expect "show: credentialType certificate" 200 "d['credentialType'] == 'certificate' and d['objectId'] == d['appId'] == '$CERT_APP'"
check "kvault ad sp list shows both" sh -c "'$KVAULT' ad sp list --query '[].displayName' | grep -q app-secret && '$KVAULT' ad sp list --query '[].displayName' | grep -q app-cert"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X POST -H 'Content-Type: application/json' \
    --data '{"displayName":"x"}' "$BASE/admin/servicePrincipals")
expect "admin API without a token: 401" 401

# ---- client assertions ----
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "RS256 + x5t assertion: token" 200 "d['token_type'] == 'Bearer'"
CERT_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
check "token claims: iss, aud, tid, oid, appid, azp, sub, iat, nbf, exp (lifetime at most 1 h)" python3 -c "
import json,sys; c=json.loads('''$(claims "$CERT_TOKEN")''')
assert c['aud']=='https://vault.azure.net' and c['tid']=='$TENANT' and c['oid']==c['appid']==c['azp']==c['sub']=='$CERT_APP', c
assert c['iss']=='https://localhost:$VAULTD_PORT/$TENANT/v2.0' and c['iat']<=c['nbf']+1 and c['exp']>c['nbf'], c
assert 0 < c['exp']-c['iat'] <= 3600, ('lifetime', c['exp']-c['iat'])"
vault_get /keys "$CERT_TOKEN"
check "the certificate principal's token is accepted by the vault (403: no role yet, not 401)" test "$CODE" = 403
A=$(mkjwt --alg PS256 --thumb 'x5t#S256' --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "PS256 + x5t#S256 assertion: token" 200
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL_V1" --client "$CERT_APP")
assertion_token "$A" "$CERT_APP" v1
expect "v1 endpoint (aud = v1 URL, resource=): token" 200 "d['resource'] == 'https://vault.azure.net'"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A" "$CERT_APP" v1
expect "v1 endpoint accepts the v2 URL as aud too" 200

# ES256 certificate principal (--cert-file)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T_TMP/ec.key" \
    -out "$T_TMP/ec.crt" -subj /CN=app-ec -days 2 2>/dev/null
check "create-for-rbac --cert-file (EC certificate)" sh -c "'$KVAULT' ad sp create-for-rbac --name app-ec --cert-file '$T_TMP/ec.crt' >'$T_TMP/sp3.json'"
EC_APP=$(jget "$T_TMP/sp3.json" "d['appId']")
A=$(mkjwt --alg ES256 --key "$T_TMP/ec.key" --cert "$T_TMP/ec.crt" --aud "$TOKEN_URL" --client "$EC_APP")
assertion_token "$A" "$EC_APP"
expect "ES256 + x5t assertion: token" 200

# refusals
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_TMP/other.key" -out "$T_TMP/other.crt" \
    -subj /CN=other -days 2 2>/dev/null
A=$(mkjwt --key "$T_TMP/other.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "assertion signed by another key (registered x5t): refused, AADSTS700027" 401 \
    "d['error'] == 'invalid_client' and d['error_codes'] == [700027] and 'signature' in d['error_description']"
A=$(mkjwt --key "$T_TMP/other.key" --cert "$T_TMP/other.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "assertion of an unregistered certificate: refused, key not found" 401 \
    "d['error_codes'] == [700027] and 'The key was not found' in d['error_description']"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$SP1")
assertion_token "$A" "$SP1"
expect "assertion for a secret-only principal: refused" 401 "d['error_codes'] == [700027]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --exp-in -400 --nbf-in -1000)
assertion_token "$A"
expect "expired assertion: refused, AADSTS700024" 401 "d['error_codes'] == [700024] and 'valid time range' in d['error_description']"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --exp-in -100 --nbf-in -700)
assertion_token "$A"
expect "assertion expired 100 s ago: accepted (5 min clock skew)" 200
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --nbf-in 900 --exp-in 1500)
assertion_token "$A"
expect "assertion not yet valid (nbf in 15 min): refused" 401 "d['error_codes'] == [700024]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --jti replay-me-1)
assertion_token "$A"
expect "fresh jti: token" 200
assertion_token "$A"
expect "the same assertion again (replayed jti): refused" 401 "d['error_codes'] == [700030] and 'replay' in d['error_description']"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --jti replay-me-1)
assertion_token "$A"
expect "a new assertion reusing the jti: refused" 401 "d['error_codes'] == [700030]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "https://login.microsoftonline.com/$TENANT/oauth2/v2.0/token" --client "$CERT_APP")
assertion_token "$A"
expect "wrong aud: refused, AADSTS700023" 401 "d['error_codes'] == [700023] and 'audience' in d['error_description']"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$BASE/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token" --client "$CERT_APP")
assertion_token "$A"
expect "aud of another tenant's endpoint: refused" 401 "d['error_codes'] == [700023]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --iss "$SP1")
assertion_token "$A"
expect "iss != client_id: refused, AADSTS700021" 401 "d['error_codes'] == [700021]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --sub "$SP1")
assertion_token "$A"
expect "sub != client_id: refused" 401 "d['error_codes'] == [700021]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "${A%.*}.AAAA${A##*.}"
expect "tampered assertion signature: refused" 401 "d['error'] == 'invalid_client'"
assertion_token "not.a-jwt"
expect "malformed assertion: refused, AADSTS50027" 401 "d['error_codes'] == [50027]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CERT_APP" \
    --data-urlencode client_assertion_type=urn:example:wrong --data-urlencode "client_assertion=$A" \
    --data-urlencode scope=https://vault.azure.net/.default)
expect "wrong client_assertion_type: 400" 400 "d['error'] == 'invalid_request'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CERT_APP" \
    --data-urlencode scope=https://vault.azure.net/.default)
expect "neither secret nor assertion: 401 AADSTS7000218" 401 "d['error_codes'] == [7000218]"

# ---- security review regressions (H8) ----
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --exp-abs 9223372036854775807)
assertion_token "$A"
expect "exp at the int64 limit: refused (no overflow in the time checks), AADSTS700024" 401 "d['error_codes'] == [700024]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP" --exp-abs -9223372036854775807)
assertion_token "$A"
expect "exp at the negative int64 limit: refused" 401 "d['error_codes'] == [700024]"
A=$(mkjwt --alg PS256 --thumb 'x5t#S256' --pss-salt 20 --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "PS256 with a 20-byte salt (RFC 7518 wants the hash length): refused" 401 "d['error_codes'] == [700027]"
A=$(mkjwt --thumb 'x5t#S256' --hdr-extra '{"x5t": 12345}' --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "a non-string x5t next to a valid x5t#S256: refused as malformed" 401 "d['error_codes'] == [50027]"
A=$(mkjwt --hdr-extra '{"crit": ["exp"]}' --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "an assertion with a crit header: refused" 401 "d['error_codes'] == [50027]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "https://login.microsoftonline.com/$TENANT/oauth2/v2.0/token" --client "$CERT_APP")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -H "Host: login.microsoftonline.com" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CERT_APP" \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$A" --data-urlencode scope=https://vault.azure.net/.default)
expect "an assertion for another token service is refused even with its Host header (AADSTS700023)" 401 "d['error_codes'] == [700023]"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "https://127.0.0.1:$VAULTD_PORT/$TENANT/oauth2/v2.0/token" --client "$CERT_APP")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -H "Host: 127.0.0.1:$VAULTD_PORT" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CERT_APP" \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$A" --data-urlencode scope=https://vault.azure.net/.default)
expect "the aud of this instance reached by 127.0.0.1 is still accepted" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -H "Host: evil.example:$VAULTD_PORT" \
    "$BASE/$TENANT/v2.0/.well-known/openid-configuration")
expect "OpenID metadata does not reflect a foreign Host header" 200 "d['token_endpoint'] == '$TOKEN_URL'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP1" --data-urlencode "client_id=$CERT_APP" \
    --data-urlencode "client_secret=$(jget "$T_TMP/sp1.json" "d['password']")" --data-urlencode scope=https://vault.azure.net/.default)
expect "a form parameter sent twice (client_id) is refused" 400 "d['error_codes'] == [90015]"
# certificate registration: curve, private key, several blocks, expiry; display names
sp_body() { python3 -c 'import json,sys; print(json.dumps({"displayName": sys.argv[1], "certificate": open(sys.argv[2]).read()}))' "$@"; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp256k1 -nodes -keyout "$T_TMP/k1.key" \
    -out "$T_TMP/k1.crt" -subj /CN=k1 -days 2 2>/dev/null
CODE=$(adm POST /admin/servicePrincipals "$(sp_body k1 "$T_TMP/k1.crt")")
expect "a secp256k1 certificate (256 bits, not P-256) is not registered" 400
cat "$T_TMP/ec.key" "$T_TMP/ec.crt" >"$T_TMP/ec-both.pem"
CODE=$(adm POST /admin/servicePrincipals "$(sp_body withkey "$T_TMP/ec-both.pem")")
expect "a PEM holding the private key too is refused" 400 "'private key' in d['error']['message']"
cat "$T_TMP/ec.crt" "$T_TMP/other.crt" >"$T_TMP/two.pem"
CODE=$(adm POST /admin/servicePrincipals "$(sp_body two "$T_TMP/two.pem")")
expect "a PEM with two certificates is refused" 400
mkdir -p "$T_TMP/ca" && printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\npolicy = p\ndefault_md = sha256\n[p]\ncommonName = supplied\n' \
    "$T_TMP/ca" "$T_TMP/ca" "$T_TMP/ca" >"$T_TMP/ca/ca.cnf" && : >"$T_TMP/ca/index.txt" && echo 01 >"$T_TMP/ca/serial"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T_TMP/ca/old.key" -out "$T_TMP/ca/old.csr" -subj /CN=expired 2>/dev/null
openssl ca -batch -config "$T_TMP/ca/ca.cnf" -selfsign -keyfile "$T_TMP/ca/old.key" -in "$T_TMP/ca/old.csr" \
    -out "$T_TMP/ca/old.crt" -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
CODE=$(adm POST /admin/servicePrincipals "$(sp_body expired "$T_TMP/ca/old.crt")")
expect "an expired certificate is not registered" 400 "'expired' in d['error']['message']"
CODE=$(adm POST /admin/servicePrincipals '{"displayName":"line1\nline2"}')
expect "a displayName with a control character is refused" 400
# escalation: Key Vault Administrator at key scope must not make a tenant administrator
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data '{"kty":"EC","crv":"P-256"}' "$VAULT/keys/k-esc/create?api-version=7.4")
expect "key k-esc created" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    --data "{\"properties\":{\"roleDefinitionId\":\"00482a5a-887f-4fb3-b363-3b7fe8e74483\",\"principalId\":\"$SP1\"}}" \
    "$VAULT/keys/k-esc/providers/Microsoft.Authorization/roleAssignments/$(python3 -c 'import uuid; print(uuid.uuid4())')?api-version=7.4")
expect "Key Vault Administrator for app-secret at scope /keys/k-esc" 201
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP1" \
    --data-urlencode "client_secret=$(jget "$T_TMP/sp1.json" "d['password']")" --data-urlencode scope=https://vault.azure.net/.default)
SP1_KTOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X POST -H "Authorization: Bearer $SP1_KTOKEN" \
    -H 'Content-Type: application/json' --data '{"displayName":"escalated"}' "$BASE/admin/servicePrincipals")
expect "... which does not open the admin API (403: tenant administrators only)" 403 "d['error']['code'] == 'AuthorizationFailed'"

# ---- tokens the vault refuses ----
CODE=$(adm POST /admin/tenants '{"displayName":"second tenant"}')
expect "a second tenant with a service principal" 201 "d['tenantId'] != '$TENANT'"
T2=$(jget "$T_TMP/resp.json" "d['tenantId']"); T2_APP=$(jget "$T_TMP/resp.json" "d['appId']")
T2_PW=$(jget "$T_TMP/resp.json" "d['password']")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$BASE/$T2/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$T2_APP" \
    --data-urlencode "client_secret=$T2_PW" --data-urlencode scope=https://vault.azure.net/.default)
expect "the second tenant's principal gets a token from its tenant" 200
T2_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
vault_get /keys "$T2_TOKEN"
expect "a token of another tenant is refused by the vault (401)" 401 "'issuer' in d['error']['message'].lower() or 'tenant' in d['error']['message'].lower()"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$T2_APP" \
    --data-urlencode "client_secret=$T2_PW" --data-urlencode scope=https://vault.azure.net/.default)
expect "the other tenant's principal is unknown in this tenant (AADSTS700016)" 400 "d['error_codes'] == [700016]"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$(conf_get client_id)" \
    --data-urlencode "client_secret=$(conf_get client_secret)" --data-urlencode scope=https://management.azure.com/.default)
MGMT_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
vault_get /keys "$MGMT_TOKEN"
expect "a token for another audience is refused by the vault (AKV10022)" 401 "'AKV10022' in d['error']['message']"
vault_get /keys "$TOKEN"
expect "the dev token itself works" 200
P=$(echo "$TOKEN" | cut -d. -f2); TAMPERED=$(echo "$TOKEN" | cut -d. -f1).$(python3 -c "
import sys,base64,json; p=sys.argv[1]; d=json.loads(base64.urlsafe_b64decode(p+'='*(-len(p)%4)))
d['oid']=d['appid']='$CERT_APP'; print(base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip('='))" "$P").$(echo "$TOKEN" | cut -d. -f3)
vault_get /keys "$TAMPERED"
expect "a tampered token (claims changed) is refused" 401 "'signature' in d['error']['message'].lower()"
vault_get /keys "${TOKEN%?}A"
[ "${TOKEN: -1}" = A ] && vault_get /keys "${TOKEN%?}B"
expect "a token with a changed signature is refused" 401

# ---- managed identity endpoints ----
check "STATE/identity.env exists with mode 0600" test "$(stat -c %a "$VAULTD_STATE/identity.env")" = 600
# shellcheck disable=SC1091
source "$VAULTD_STATE/identity.env"
check "identity.env: IDENTITY_ENDPOINT, IDENTITY_HEADER, AZURE_POD_IDENTITY_AUTHORITY_HOST" \
    test -n "$IDENTITY_ENDPOINT" -a -n "$IDENTITY_HEADER" -a -n "$AZURE_POD_IDENTITY_AUTHORITY_HOST"
check "STATE/identity-header is 0600 and holds IDENTITY_HEADER" sh -c \
    "[ \"\$(stat -c %a '$VAULTD_STATE/identity-header')\" = 600 ] && [ \"\$(cat '$VAULTD_STATE/identity-header')\" = '$IDENTITY_HEADER' ]"
IMDS="$AZURE_POD_IDENTITY_AUTHORITY_HOST/metadata/identity/oauth2/token"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net")
expect "IMDS token (Metadata: true): JSON with string fields" 200 \
    "d['token_type'] == 'Bearer' and d['resource'] == 'https://vault.azure.net' and d['refresh_token'] == '' and all(isinstance(d[k], str) for k in ('expires_in','expires_on','not_before')) and d['client_id'] == '$VAULTD_MI_CLIENT_ID'"
MI_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
check "the MI token is for dev-mi" python3 -c "
import json; c=json.loads('''$(claims "$MI_TOKEN")'''); assert c['oid']=='$VAULTD_MI_CLIENT_ID' and c['tid']=='$TENANT', c"
vault_get /keys "$MI_TOKEN"
expect "dev-mi (Key Vault Administrator on dev) lists keys" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS/?api-version=2018-02-01&resource=https://vault.azure.net/")
expect "IMDS path with a trailing slash (Azure SDKs) works" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net")
expect "IMDS without Metadata header: 400 bad_request_102" 400 "d['error'] == 'bad_request_102'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' -H "Host: rebound.example:${AZURE_POD_IDENTITY_AUTHORITY_HOST##*:}" \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net")
expect "IMDS with a foreign Host header (DNS rebinding): 400, no token" 400 "'access_token' not in d"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' "$IMDS?api-version=2018-02-01&resource=https://example.com")
expect "IMDS unknown resource: 400 invalid_resource" 400 "d['error'] == 'invalid_resource'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' "$IMDS?api-version=2018-02-01")
expect "IMDS without resource: 400" 400
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" \
    "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://vault.azure.net")
expect "App Service token (X-IDENTITY-HEADER): access_token, expires_on, resource, token_type, client_id" 200 \
    "isinstance(d['expires_on'], str) and d['client_id'] == '$VAULTD_MI_CLIENT_ID' and d['token_type'] == 'Bearer'"
vault_get /keys "$(jget "$T_TMP/resp.json" "d['access_token']")"
expect "App Service MI token works on the vault" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://vault.azure.net")
expect "App Service without X-IDENTITY-HEADER: 401" 401
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H "X-IDENTITY-HEADER: ${IDENTITY_HEADER}x" \
    "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://vault.azure.net")
expect "App Service with a wrong X-IDENTITY-HEADER: 401" 401
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" \
    "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://managedhsm.azure.net")
expect "App Service: managed HSM resource" 200 "d['resource'] == 'https://managedhsm.azure.net'"
check "kvault ad mi create --user-assigned on this host" sh -c "'$KVAULT' ad mi create --name ua-one --host '$MI_HOST' --user-assigned >'$T_TMP/mi.json'"
UA=$(jget "$T_TMP/mi.json" "d['clientId']")
check "kvault ad mi create on another host" sh -c "'$KVAULT' ad mi create --name elsewhere --host other-host >'$T_TMP/mi2.json'"
ELSE=$(jget "$T_TMP/mi2.json" "d['clientId']")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net&client_id=$UA")
expect "IMDS client_id= selects the user-assigned identity" 200 "d['client_id'] == '$UA'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" \
    "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https://vault.azure.net&principal_id=$UA")
expect "App Service principal_id= selects it too" 200 "d['client_id'] == '$UA'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net&msi_res_id=/subscriptions/x/resourcegroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ua-one")
expect "IMDS msi_res_id= selects it by name" 200 "d['client_id'] == '$UA'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net&object_id=$ELSE")
expect "an identity bound to another host is not served here" 400 "d['error_description'] == 'Identity not found'"
check_fails_with "re-binding a system-assigned identity to a host that has one: 409" "Conflict" \
    "$KVAULT" ad mi create --name elsewhere --host "$MI_HOST"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$VAULTD_MI_CLIENT_ID" \
    --data-urlencode "client_secret=x" --data-urlencode scope=https://vault.azure.net/.default)
expect "a managed identity is no application for client credentials (AADSTS700016)" 400 "d['error_codes'] == [700016]"
check "kvault ad mi list" sh -c "'$KVAULT' ad mi list --query '[].name' | grep -q ua-one"
check "kvault ad mi delete" "$KVAULT" ad mi delete --name ua-one
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' -H 'Metadata: true' \
    "$IMDS?api-version=2018-02-01&resource=https://vault.azure.net&client_id=$UA")
expect "a deleted identity gets no token" 400
P2=$(free_port); P3=$(free_port)
check_fails_with "vaultd refuses a non-loopback --identity-listen" "loopback" \
    "$VAULTD" --dev --state "$T_TMP/state2" --listen "127.0.0.1:$P2" --identity-listen "0.0.0.0:$P3"

# ---- users: resource-owner password grant ----
CLI_APP=04b07795-8ddb-461a-bbee-02f9e1bf7b46
# user_token USERNAME PASSWORD [CLIENT_ID] [v1|v2] [extra curl args...] -> CODE, resp.json
user_token() {
    local u=$1 pw=$2 cid=${3:-$CLI_APP} url=$TOKEN_URL scope=(--data-urlencode "scope=https://vault.azure.net/.default openid profile offline_access")
    if [ "${4:-}" = v1 ]; then url=$TOKEN_URL_V1; scope=(--data-urlencode resource=https://vault.azure.net); fi
    CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$url" \
        --data-urlencode grant_type=password --data-urlencode "client_id=$cid" \
        --data-urlencode "username=$u" --data-urlencode "password=$pw" "${scope[@]}" "${@:5}")
}
check "kvault ad user create (password generated)" sh -c "'$KVAULT' ad user create --display-name Alice --user-principal-name alice@kvtest.example >'$T_TMP/u1.json'"
U1=$(jget "$T_TMP/u1.json" "d['id']"); U1_PW=$(jget "$T_TMP/u1.json" "d['password']")
check "it prints id (= objectId), userPrincipalName, displayName and the generated password once" python3 -c "
import json; d=json.load(open('$T_TMP/u1.json'))
assert d['objectId']==d['id'] and d['userPrincipalName']=='alice@kvtest.example' and d['displayName']=='Alice' and len(d['password'])>=32, d"
check "kvault ad user create --password" sh -c "'$KVAULT' ad user create --display-name Bob --user-principal-name bob@kvtest.example --password 'Correct-Horse-9' >'$T_TMP/u2.json'"
check "a given password is not echoed back" python3 -c "
import json; d=json.load(open('$T_TMP/u2.json')); assert 'password' not in d, d"
U2=$(jget "$T_TMP/u2.json" "d['id']")
users_stored_ok() { stored_secret_ok "$U1" "$U1_PW" "$U2" && stored_secret_ok "$U2" 'Correct-Horse-9' "$U1"; }
check "the passwords are stored as salted PBKDF2 hashes, not in clear; the two users' salts differ" users_stored_ok
check_fails_with "a second user with the same userPrincipalName (any case): conflict" "ObjectConflict" \
    "$KVAULT" ad user create --display-name A2 --user-principal-name ALICE@kvtest.example
check_fails_with "a password of fewer than 8 characters is refused" "password" \
    "$KVAULT" ad user create --display-name C --user-principal-name carol@kvtest.example --password short
check_fails_with "an invalid userPrincipalName is refused" "userPrincipalName" \
    "$KVAULT" ad user create --display-name D --user-principal-name 'no-at-sign'
user_token alice@kvtest.example "$U1_PW"
expect "password grant (Azure CLI client id, v2, OpenID scopes ignored): token" 200 "d['token_type'] == 'Bearer' and d['scope'] == 'https://vault.azure.net/user_impersonation'"
USER_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
claims "$USER_TOKEN" >"$T_TMP/uclaims.json"
check "user token claims: oid = sub = the user, upn, name, azp = the client, idtyp user, no appid" python3 -c "
import json; c=json.load(open('$T_TMP/uclaims.json'))
assert c['oid']==c['sub']=='$U1' and c['upn']=='alice@kvtest.example' and c['name']=='Alice', c
assert c['azp']=='$CLI_APP' and c['idtyp']=='user' and 'appid' not in c and c['tid']=='$TENANT' and c['aud']=='https://vault.azure.net', c"
vault_get /keys "$USER_TOKEN"
expect "the user's token without a role: 403 (authenticated, not authorised)" 403
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    --data "{\"properties\":{\"roleDefinitionId\":\"12338af0-0e69-4776-bea7-57ae8d297424\",\"principalId\":\"$U1\"}}" \
    "$VAULT/providers/Microsoft.Authorization/roleAssignments/$(python3 -c 'import uuid; print(uuid.uuid4())')?api-version=7.4")
expect "Key Vault Crypto User for the user (principalId = its object id) on the vault" 201
vault_get /keys "$USER_TOKEN"
expect "the user's token works on the vault where the user has a role" 200
user_token alice@kvtest.example "wrong-password-1"
expect "wrong password: 400 invalid_grant AADSTS50126" 400 "d['error'] == 'invalid_grant' and d['error_codes'] == [50126]"
user_token nobody@kvtest.example "whatever-123"
expect "unknown user: 400 invalid_grant AADSTS50034" 400 "d['error_codes'] == [50034]"
user_token "$U1" "$U1_PW"
expect "the username is the userPrincipalName (not the object id)" 400 "d['error_codes'] == [50034]"
user_token bob@kvtest.example 'Correct-Horse-9' "$CLI_APP" v1
expect "v1 endpoint (resource=) with the chosen password" 200 "d['resource'] == 'https://vault.azure.net'"
user_token bob@kvtest.example 'Correct-Horse-9' "$SP1"
expect "a registered application as the client: token" 200
claims "$(jget "$T_TMP/resp.json" "d['access_token']")" >"$T_TMP/uclaims.json"
check "... with azp = its appId" python3 -c "
import json; c=json.load(open('$T_TMP/uclaims.json')); assert c['azp']=='$SP1', c"
user_token bob@kvtest.example 'Correct-Horse-9' "$SP1" v2 --data-urlencode client_secret=wrong
expect "... whose secret, when sent, must be right (AADSTS7000215)" 401 "d['error_codes'] == [7000215]"
user_token bob@kvtest.example 'Correct-Horse-9' 11111111-2222-3333-4444-555555555555
expect "an unknown client id: AADSTS700016" 400 "d['error_codes'] == [700016]"
user_token bob@kvtest.example 'Correct-Horse-9' "$U1"
expect "a user is no client application: AADSTS700016" 400 "d['error_codes'] == [700016]"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$U1" \
    --data-urlencode "client_secret=$U1_PW" --data-urlencode scope=https://vault.azure.net/.default)
expect "client credentials with a user's id and password: refused (AADSTS700016)" 400 "d['error_codes'] == [700016]"
check "a third user (lockout test)" sh -c "'$KVAULT' ad user create --display-name Carol --user-principal-name carol@kvtest.example --password 'Carol-Pass-42' >/dev/null"
for i in 1 2 3 4 5 6 7 8 9 10; do user_token carol@kvtest.example "bad-guess-$i"; done
expect "ten wrong passwords in a row: each refused" 400 "d['error_codes'] == [50126]"
user_token carol@kvtest.example 'Carol-Pass-42'
expect "then even the right password is refused for a while (locked, AADSTS50053)" 400 "d['error_codes'] == [50053]"
user_token bob@kvtest.example 'Correct-Horse-9'
expect "other users are not locked" 200
check "kvault ad user list shows the users" sh -c "'$KVAULT' ad user list --query '[].userPrincipalName' | grep -q alice@kvtest.example && '$KVAULT' ad user list --query '[].userPrincipalName' | grep -q bob@kvtest.example"
check "kvault ad sp list does not show users" sh -c "! '$KVAULT' ad sp list --query '[].appId' | grep -q '$U1'"
check_fails_with "kvault ad sp delete does not delete users" "Request_ResourceNotFound" "$KVAULT" ad sp delete --id "$U1"
check "kvault ad user show --id UPN" sh -c "'$KVAULT' ad user show --id alice@kvtest.example | grep -q '$U1'"
check "kvault ad user delete --id UPN" "$KVAULT" ad user delete --id alice@kvtest.example
user_token alice@kvtest.example "$U1_PW"
expect "a deleted user gets no token (AADSTS50034)" 400 "d['error_codes'] == [50034]"
vault_get /keys "$USER_TOKEN"
expect "the deleted user's earlier token is refused by the vault (AKV10050)" 401 "'AKV10050' in d['error']['message']"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    "$VAULT/providers/Microsoft.Authorization/roleAssignments?api-version=7.4")
expect "its role assignment went with it" 200 "all(a['properties']['principalId'] != '$U1' for a in d['value'])"

# ---- deletion ----
check "kvault ad sp delete --id (certificate principal)" "$KVAULT" ad sp delete --id "$CERT_APP"
A=$(mkjwt --key "$T_TMP/app-cert.key" --cert "$T_TMP/app-cert.crt" --aud "$TOKEN_URL" --client "$CERT_APP")
assertion_token "$A"
expect "a deleted principal gets no token (AADSTS700016)" 400 "d['error_codes'] == [700016]"
vault_get /keys "$CERT_TOKEN"
expect "its earlier token is refused by the vault (principal gone)" 401 "'AKV10050' in d['error']['message']"
check_fails_with "deleting it again: not found" "Request_ResourceNotFound" "$KVAULT" ad sp delete --id "$CERT_APP"
check_fails_with "the caller cannot delete itself" "cannot delete itself" "$KVAULT" ad sp delete --id "$(conf_get client_id)"
check "kvault ad sp list no longer shows it" sh -c "! '$KVAULT' ad sp list --query '[].appId' | grep -q '$CERT_APP'"
# ---- token-signing key rotation ----
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$BASE/$TENANT/discovery/v2.0/keys")
expect "JWKS before rotation: 1 key" 200 "len(d['keys']) == 1"
KID1=$(jget "$T_TMP/resp.json" "d['keys'][0]['kid']")
OLD_TOKEN=$TOKEN
CODE=$(adm POST /admin/tokenSigningKey/rotate)
expect "POST /admin/tokenSigningKey/rotate" 200 "len(d['keys']) == 2 and d['keys'][1]['kid'] == '$KID1'"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$BASE/$TENANT/discovery/v2.0/keys")
expect "JWKS after rotation: the new key and the previous one" 200 "len(d['keys']) == 2 and d['keys'][0]['kid'] != '$KID1' and d['keys'][1]['kid'] == '$KID1'"
KID2=$(jget "$T_TMP/resp.json" "d['keys'][0]['kid']")
vault_get /keys "$OLD_TOKEN"
expect "a token signed by the previous key stays valid" 200
NEW_TOKEN=$(get_token)
check "new tokens are signed by the new key" python3 -c "
import sys,base64,json; h=sys.argv[1].split('.')[0]; h=json.loads(base64.urlsafe_b64decode(h+'='*(-len(h)%4)))
assert h['kid']=='$KID2', h" "$NEW_TOKEN"
vault_get /keys "$NEW_TOKEN"
expect "a token signed by the new key works" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$TOKEN_URL" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$SP1" \
    --data-urlencode "client_secret=$(jget "$T_TMP/sp1.json" "d['password']")" \
    --data-urlencode scope=https://vault.azure.net/.default)
SP1_TOKEN=$(jget "$T_TMP/resp.json" "d['access_token']")
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X POST \
    -H "Authorization: Bearer $SP1_TOKEN" "$BASE/admin/tokenSigningKey/rotate")
expect "rotation by a non-admin: 403" 403
PERSIST_A=$(mkjwt --alg ES256 --key "$T_TMP/ec.key" --cert "$T_TMP/ec.crt" --aud "$TOKEN_URL" --client "$EC_APP" --jti persist-1)
assertion_token "$PERSIST_A" "$EC_APP"
expect "an assertion used before the restart" 200
stop_vaultd
start_vaultd --identity-host "$MI_HOST" --token-key-rotation 2 || not_ok "vaultd restarts"
assertion_token "$PERSIST_A" "$EC_APP"
expect "the same assertion replayed after a restart: refused (jti persisted), AADSTS700030" 401 "d['error_codes'] == [700030]"
check "the restored jti values are announced in the log" grep -q "client-assertion jti values restored" "$T_TMP/vaultd.log"
sleep 3
vault_get /keys "$NEW_TOKEN"
expect "after a restart, tokens of the current key still work" 200
TOKEN3=$(get_token)
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$BASE/$TENANT/discovery/v2.0/keys")
expect "scheduled rotation (--token-key-rotation 2): a third key, previous = the one before" 200 \
    "len(d['keys']) == 2 and d['keys'][0]['kid'] not in ('$KID1', '$KID2') and d['keys'][1]['kid'] == '$KID2'"
vault_get /keys "$NEW_TOKEN"
expect "tokens of the now previous key still work after the scheduled rotation" 200
vault_get /keys "$TOKEN3"
expect "tokens of the scheduled key work" 200
TOKEN=$TOKEN3

# the replay cache is bounded per client: one principal flooding unique jti values cannot lock
# the others out (VAULTD_JTI_PER_CLIENT_MAX: a smaller cap for this test)
stop_vaultd
VAULTD_JTI_PER_CLIENT_MAX=2 start_vaultd --identity-host "$MI_HOST" || not_ok "vaultd restarts with a small per-client cap"
check "two EC principals for the cap test" sh -c "'$KVAULT' ad sp create-for-rbac --name q1 --cert-file '$T_TMP/ec.crt' >'$T_TMP/q1.json' &&
    '$KVAULT' ad sp create-for-rbac --name q2 --cert-file '$T_TMP/ec.crt' >'$T_TMP/q2.json'"
Q1=$(jget "$T_TMP/q1.json" "d['appId']"); Q2=$(jget "$T_TMP/q2.json" "d['appId']")
for i in 1 2; do
    assertion_token "$(mkjwt --alg ES256 --key "$T_TMP/ec.key" --cert "$T_TMP/ec.crt" --aud "$TOKEN_URL" --client "$Q1")" "$Q1"
    expect "flooding principal: assertion $i of 2 accepted" 200
done
assertion_token "$(mkjwt --alg ES256 --key "$T_TMP/ec.key" --cert "$T_TMP/ec.crt" --aud "$TOKEN_URL" --client "$Q1")" "$Q1"
expect "its third unexpired jti is refused (its share of the cache is full)" 401 "d['error_codes'] == [700030] and 'full' in d['error_description']"
assertion_token "$(mkjwt --alg ES256 --key "$T_TMP/ec.key" --cert "$T_TMP/ec.crt" --aud "$TOKEN_URL" --client "$Q2")" "$Q2"
expect "another principal is still served" 200

check "no secret or token in the vaultd log" sh -c "! grep -q -e '$(jget "$T_TMP/sp1.json" "d['password']")' -e '$IDENTITY_HEADER' -e '${MI_TOKEN:0:40}' -e '$U1_PW' -e 'Correct-Horse-9' -e '${USER_TOKEN:0:40}' '$T_TMP/vaultd.log'"

finish
