#!/usr/bin/env bash
# test_vaultd_api.sh - vaultd over TLS with curl, openssl and python3 only: health check,
# challenge, tokens (good, wrong secret, forged, expired), key create / get / list / versions
# with paging, sign + independent verification with openssl, verify, error shapes, restart.
source "$(dirname "$0")/lib.sh"

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
URL="https://dev.vault.localhost:$VAULTD_PORT"
TOKEN=""

# jget FILE PYEXPR: evaluates PYEXPR with d = the JSON in FILE and prints the result.
jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# api METHOD PATH [JSON]: authenticated vault request; body to $T_TMP/resp.json, prints status.
api() {
    local m=$1 p=$2 body=${3:-}
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -D "$T_TMP/resp.hdr" -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$p"
}

# token_request SECRET [TENANT] [GRANT] [CLIENT]: raw token response in $T_TMP/tok.json.
token_request() {
    local tenant=${2:-$(conf_get tenant_id)} grant=${3:-client_credentials}
    local client=${4:-$(conf_get client_id)}
    curl -s -o "$T_TMP/tok.json" -w '%{http_code}' --cacert "$CA" \
        "$(conf_get authority)/$tenant/oauth2/v2.0/token" \
        --data-urlencode "grant_type=$grant" --data-urlencode "client_id=$client" \
        --data-urlencode "client_secret=$1" \
        --data-urlencode scope=https://vault.azure.net/.default
}

# ---- health and challenge ----

t_healthz() { [ "$(curl -s --cacert "$CA" "https://localhost:$VAULTD_PORT/healthz")" = '{"status":"ok"}' ]; }
check "GET /healthz answers {\"status\":\"ok\"}" t_healthz

t_challenge() {
    local want code
    want="WWW-Authenticate: Bearer authorization=\"https://localhost:$VAULTD_PORT/$(conf_get tenant_id)\", resource=\"https://vault.azure.net\""
    code=$(curl -s -o "$T_TMP/c.json" -D "$T_TMP/c.hdr" -w '%{http_code}' --cacert "$CA" \
        -X POST -H 'Content-Type: application/json' -H 'Content-Length: 0' \
        "$URL/keys/k1/create?api-version=7.4")
    [ "$code" = 401 ] || { echo "status $code"; return 1; }
    grep -qiF "$want" "$T_TMP/c.hdr" || { echo "want: $want"; cat "$T_TMP/c.hdr"; return 1; }
    [ "$(cat "$T_TMP/c.json")" = '{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}' ]
}
check "bodiless probe gets 401 with the exact challenge" t_challenge

# ---- tokens ----

t_token() {
    local code
    code=$(token_request "$(conf_get client_secret)")
    [ "$code" = 200 ] || { cat "$T_TMP/tok.json"; return 1; }
    [ "$(jget "$T_TMP/tok.json" 'd["token_type"]')" = Bearer ] &&
        [ "$(jget "$T_TMP/tok.json" 'd["expires_in"]')" = 3600 ] &&
        TOKEN=$(jget "$T_TMP/tok.json" 'd["access_token"]') &&
        [ "$(echo "$TOKEN" | tr -cd . | wc -c)" = 2 ]
}
check "client-credentials token for the dev service principal" t_token
[ -n "$TOKEN" ] || TOKEN=$(get_token)

t_claims() {
    local payload
    payload=$(echo "$TOKEN" | cut -d. -f2)
    b64url_decode_to "$payload" "$T_TMP/claims.json"
    [ "$(jget "$T_TMP/claims.json" 'd["aud"]')" = https://vault.azure.net ] &&
        [ "$(jget "$T_TMP/claims.json" 'd["iss"]')" = "https://localhost:$VAULTD_PORT/$(conf_get tenant_id)/v2.0" ] &&
        [ "$(jget "$T_TMP/claims.json" 'd["appid"]')" = "$(conf_get client_id)" ]
}
check "token claims: aud, iss, appid" t_claims

t_bad_secret() {
    [ "$(token_request wrong-secret)" = 401 ] && grep -q 'AADSTS7000215' "$T_TMP/tok.json" &&
        [ "$(jget "$T_TMP/tok.json" 'd["error"]')" = invalid_client ]
}
check "wrong client secret -> invalid_client AADSTS7000215" t_bad_secret

t_bad_tenant() {
    [ "$(token_request x 11111111-2222-3333-4444-555555555555)" = 400 ] &&
        grep -q 'AADSTS90002' "$T_TMP/tok.json"
}
check "unknown tenant -> AADSTS90002" t_bad_tenant

t_bad_client() {
    [ "$(token_request x "" client_credentials 11111111-2222-3333-4444-555555555555)" = 400 ] &&
        grep -q 'AADSTS700016' "$T_TMP/tok.json"
}
check "unknown client -> AADSTS700016" t_bad_client

t_bad_grant() {
    [ "$(token_request x "" authorization_code)" = 400 ] &&
        [ "$(jget "$T_TMP/tok.json" 'd["error"]')" = unsupported_grant_type ]
}
check "unsupported grant -> unsupported_grant_type" t_bad_grant

t_openid() {
    curl -s --cacert "$CA" -o "$T_TMP/oidc.json" \
        "$(conf_get authority)/$(conf_get tenant_id)/v2.0/.well-known/openid-configuration" &&
        jget "$T_TMP/oidc.json" 'bool(d["token_endpoint"].endswith("/oauth2/v2.0/token") and d["issuer"] and d["jwks_uri"] and d["authorization_endpoint"])' | grep -q True
}
check "openid-configuration has issuer, token/authorization endpoints, jwks_uri" t_openid

# ---- keys ----

t_create_rsa() {
    [ "$(api POST "$URL/keys/rsa1/create?api-version=7.4" '{"kty":"RSA","key_size":2048}')" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    cp "$T_TMP/resp.json" "$T_TMP/rsa1.json"
    jget "$T_TMP/rsa1.json" 'd["key"]["kty"]=="RSA" and "d" not in d["key"] and d["attributes"]["enabled"] and d["attributes"]["recoveryLevel"]=="Recoverable+Purgeable"' | grep -q True &&
        jget "$T_TMP/rsa1.json" 'd["key"]["kid"]' | grep -Eq "^$URL/keys/rsa1/[0-9a-f]{32}$" &&
        grep -qi '^content-type: application/json; charset=utf-8' "$T_TMP/resp.hdr" &&
        grep -qi '^x-ms-request-id: ' "$T_TMP/resp.hdr"
}
check "create RSA-2048 key" t_create_rsa

t_create_ec() {
    [ "$(api POST "$URL/keys/ec1/create?api%2Dversion=7.4" '{"kty":"EC","crv":"P-256","key_ops":["sign","verify"],"tags":{"purpose":"test"}}')" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    cp "$T_TMP/resp.json" "$T_TMP/ec1.json"
    jget "$T_TMP/ec1.json" 'd["key"]["kty"]=="EC" and d["key"]["crv"]=="P-256" and "d" not in d["key"] and d["tags"]=={"purpose":"test"} and d["key"]["key_ops"]==["sign","verify"]' | grep -q True
}
check "create EC P-256 key (encoded api%2Dversion)" t_create_ec

t_get() {
    [ "$(api GET "$URL/keys/RSA1/?api-version=7.4")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["kid"]')" = "$(jget "$T_TMP/rsa1.json" 'd["key"]["kid"]')" ] &&
        [ "$(api GET "$(jget "$T_TMP/rsa1.json" 'd["key"]["kid"]')?api-version=7.4")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["n"]')" = "$(jget "$T_TMP/rsa1.json" 'd["key"]["n"]')" ]
}
check "get key latest (trailing slash, other case) and by version" t_get

t_new_version() {
    [ "$(api POST "$URL/keys/rsa1/create?api-version=7.4" '{"kty":"RSA"}')" = 200 ] &&
        cp "$T_TMP/resp.json" "$T_TMP/rsa1b.json" &&
        [ "$(jget "$T_TMP/rsa1b.json" 'd["key"]["kid"]')" != "$(jget "$T_TMP/rsa1.json" 'd["key"]["kid"]')" ] &&
        [ "$(api GET "$URL/keys/rsa1?api-version=7.4")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["kid"]')" = "$(jget "$T_TMP/rsa1b.json" 'd["key"]["kid"]')" ]
}
check "create on an existing name makes a new latest version" t_new_version

# follow_pages FIRSTURL: prints every kid over all pages (one request per page).
follow_pages() {
    local next=$1 pages=0
    : >"$T_TMP/kids"
    while [ -n "$next" ] && [ "$next" != None ]; do
        [ "$(api GET "$next")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
        jget "$T_TMP/resp.json" '"\n".join(i["kid"] for i in d["value"])' >>"$T_TMP/kids"
        [ "$(jget "$T_TMP/resp.json" 'len(d["value"])')" -le 1 ] || return 1
        next=$(jget "$T_TMP/resp.json" 'd.get("nextLink")')
        pages=$((pages + 1))
        [ $pages -lt 20 ] || return 1
    done
    echo "pages=$pages"
}

t_list() {
    [ "$(api GET "$URL/keys?api-version=7.4")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'sorted(i["kid"] for i in d["value"])')" = "['$URL/keys/ec1', '$URL/keys/rsa1']" ]
}
check "list keys gives base kids" t_list

t_list_paging() {
    follow_pages "$URL/keys?api-version=7.4&maxresults=1" | grep -q 'pages=2' &&
        [ "$(sort "$T_TMP/kids" | tr '\n' ' ')" = "$URL/keys/ec1 $URL/keys/rsa1 " ]
}
check "list keys with maxresults=1 following nextLink" t_list_paging

t_versions() {
    follow_pages "$URL/keys/rsa1/versions?api-version=7.4&maxresults=1" | grep -q 'pages=2' &&
        [ "$(grep -c "^$URL/keys/rsa1/[0-9a-f]\{32\}$" "$T_TMP/kids")" = 2 ]
}
check "key versions with paging give versioned kids" t_versions

t_maxresults_bad() {
    [ "$(api GET "$URL/keys?api-version=7.4&maxresults=26")" = 400 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = BadParameter ]
}
check "maxresults=26 -> 400 BadParameter" t_maxresults_bad

# ---- sign and verify ----

printf 'kvault vaultd test message' >"$T_TMP/msg"
openssl dgst -sha256 -binary "$T_TMP/msg" >"$T_TMP/d256"
D256=$(b64url_file "$T_TMP/d256")
jwk_to_pem "$T_TMP/rsa1b.json" "$T_TMP/rsa1.pem" 2>/dev/null
jwk_to_pem "$T_TMP/ec1.json" "$T_TMP/ec1.pem" 2>/dev/null

# sign_with KEYPATH ALG: signature bytes in $T_TMP/sig.bin, b64url in $T_TMP/sig.b64.
sign_with() {
    [ "$(api POST "$URL/keys/$1/sign?api-version=7.4" "{\"alg\":\"$2\",\"value\":\"$D256\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    jget "$T_TMP/resp.json" 'd["value"]' >"$T_TMP/sig.b64"
    b64url_decode_to "$(cat "$T_TMP/sig.b64")" "$T_TMP/sig.bin"
}

t_rs256() {
    sign_with rsa1 RS256 && [ "$(stat -c %s "$T_TMP/sig.bin")" = 256 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["kid"]')" = "$(jget "$T_TMP/rsa1b.json" 'd["key"]["kid"]')" ] &&
        openssl pkeyutl -verify -pubin -inkey "$T_TMP/rsa1.pem" -in "$T_TMP/d256" \
            -sigfile "$T_TMP/sig.bin" -pkeyopt digest:sha256
}
check "sign RS256, openssl verifies it" t_rs256

t_ps256() {
    sign_with rsa1/ PS256 &&
        openssl pkeyutl -verify -pubin -inkey "$T_TMP/rsa1.pem" -in "$T_TMP/d256" \
            -sigfile "$T_TMP/sig.bin" -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 \
            -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_pss_saltlen:32
}
check "sign PS256 (versionless //sign), openssl verifies it (salt 32)" t_ps256

t_es256() {
    sign_with ec1 ES256 && [ "$(stat -c %s "$T_TMP/sig.bin")" = 64 ] &&
        raw_to_der "$T_TMP/sig.bin" "$T_TMP/sig.der" &&
        openssl pkeyutl -verify -pubin -inkey "$T_TMP/ec1.pem" -in "$T_TMP/d256" \
            -sigfile "$T_TMP/sig.der"
}
check "sign ES256 (raw r||s), openssl verifies it" t_es256

# sign_digest KEY ALG DIGESTFILE: like sign_with, for any digest.
sign_digest() {
    local d
    d=$(b64url_file "$3")
    [ "$(api POST "$URL/keys/$1/sign?api-version=7.4" "{\"alg\":\"$2\",\"value\":\"$d\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    b64url_decode_to "$(jget "$T_TMP/resp.json" 'd["value"]')" "$T_TMP/sig.bin"
}

t_rsa_algs() {
    local bits md
    for bits in 384 512; do
        md=sha$bits
        openssl dgst -$md -binary "$T_TMP/msg" >"$T_TMP/d$bits"
        sign_digest rsa1 RS$bits "$T_TMP/d$bits" &&
            openssl pkeyutl -verify -pubin -inkey "$T_TMP/rsa1.pem" -in "$T_TMP/d$bits" \
                -sigfile "$T_TMP/sig.bin" -pkeyopt digest:$md || { echo "RS$bits"; return 1; }
        sign_digest rsa1 PS$bits "$T_TMP/d$bits" &&
            openssl pkeyutl -verify -pubin -inkey "$T_TMP/rsa1.pem" -in "$T_TMP/d$bits" \
                -sigfile "$T_TMP/sig.bin" -pkeyopt rsa_padding_mode:pss -pkeyopt digest:$md \
                -pkeyopt rsa_pss_saltlen:$((bits / 8)) || { echo "PS$bits"; return 1; }
    done
}
check "sign RS384/RS512/PS384/PS512, openssl verifies them" t_rsa_algs

t_rsnull() {
    # RSNULL over DigestInfo(SHA-256) || H must equal RS256 over H (PKCS#1 v1.5 is deterministic)
    { printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T_TMP/d256"; } >"$T_TMP/di"
    sign_digest rsa1 RSNULL "$T_TMP/di" && cp "$T_TMP/sig.bin" "$T_TMP/rsnull.bin" &&
        sign_digest rsa1 RS256 "$T_TMP/d256" && cmp "$T_TMP/sig.bin" "$T_TMP/rsnull.bin" &&
        head -c 246 /dev/zero >"$T_TMP/big" &&
        [ "$(api POST "$URL/keys/rsa1/sign?api-version=7.4" "{\"alg\":\"RSNULL\",\"value\":\"$(b64url_file "$T_TMP/big")\"}")" = 400 ]
}
check "RSNULL pads the raw input (= RS256 of a DigestInfo), input > k-11 -> 400" t_rsnull

t_ec_curves() {
    local crv alg md n
    for spec in P-384:ES384:sha384:96 P-521:ES512:sha512:132 P-256K:ES256K:sha256:64; do
        IFS=: read -r crv alg md n <<<"$spec"
        [ "$(api POST "$URL/keys/c-$alg/create?api-version=7.4" "{\"kty\":\"EC-HSM\",\"crv\":\"$crv\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["kty"]')" = EC-HSM ] || return 1
        jwk_to_pem "$T_TMP/resp.json" "$T_TMP/c.pem" 2>/dev/null || return 1
        openssl dgst -$md -binary "$T_TMP/msg" >"$T_TMP/dc"
        sign_digest "c-$alg" $alg "$T_TMP/dc" && [ "$(stat -c %s "$T_TMP/sig.bin")" = $n ] &&
            raw_to_der "$T_TMP/sig.bin" "$T_TMP/sig.der" &&
            openssl pkeyutl -verify -pubin -inkey "$T_TMP/c.pem" -in "$T_TMP/dc" \
                -sigfile "$T_TMP/sig.der" || { echo "$alg"; return 1; }
    done
}
check "EC-HSM P-384/P-521/P-256K keys sign ES384/ES512/ES256K, openssl verifies them" t_ec_curves

t_disabled() {
    [ "$(api POST "$URL/keys/off1/create?api-version=7.4" '{"kty":"EC","attributes":{"enabled":false}}')" = 200 ] &&
        [ "$(api POST "$URL/keys/off1/sign?api-version=7.4" "{\"alg\":\"ES256\",\"value\":\"$D256\"}")" = 403 ] &&
        grep -q 'Operation sign is not allowed on a disabled key' "$T_TMP/resp.json" &&
        [ "$(api POST "$URL/keys/exp1/create?api-version=7.4" '{"kty":"EC","attributes":{"exp":1000}}')" = 200 ] &&
        [ "$(api POST "$URL/keys/exp1/sign?api-version=7.4" "{\"alg\":\"ES256\",\"value\":\"$D256\"}")" = 403 ] &&
        [ "$(api POST "$URL/keys/vonly/create?api-version=7.4" '{"kty":"EC","key_ops":["verify"]}')" = 200 ] &&
        [ "$(api POST "$URL/keys/vonly/sign?api-version=7.4" "{\"alg\":\"ES256\",\"value\":\"$D256\"}")" = 403 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = Forbidden ]
}
check "disabled / expired / no-sign key_ops key -> 403 Forbidden" t_disabled

t_bad_create() {
    [ "$(api POST "$URL/keys/bad_name/create?api-version=7.4" '{"kty":"EC"}')" = 400 ] &&
        [ "$(api POST "$URL/keys/b1/create?api-version=7.4" '{"kty":"RSA","key_size":1024}')" = 400 ] &&
        [ "$(api POST "$URL/keys/b1/create?api-version=7.4" '{"kty":"EC","crv":"P-224"}')" = 400 ] &&
        [ "$(api POST "$URL/keys/b1/create?api-version=7.4" '{"kty":"oct"}')" = 400 ] &&
        [ "$(api POST "$URL/keys/b1/create?api-version=7.4" '{"key_size":2048}')" = 400 ] &&
        [ "$(api GET "$URL/keys/b1?api-version=7.4")" = 404 ]
}
check "invalid create requests -> 400, nothing stored" t_bad_create

t_verify_endpoint() {
    local sig
    sign_with ec1 ES256 || return 1
    sig=$(cat "$T_TMP/sig.b64")
    [ "$(api POST "$URL/keys/ec1/verify?api-version=7.4" "{\"alg\":\"ES256\",\"digest\":\"$D256\",\"value\":\"$sig\"}")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = True ] &&
        [ "$(api POST "$URL/keys/ec1/verify?api-version=7.4" "{\"alg\":\"ES256\",\"digest\":\"${D256:0:10}AAAA${D256:14}\",\"value\":\"$sig\"}")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = False ]
}
check "verify endpoint: true for a good signature, false for another digest" t_verify_endpoint

t_wrong_alg() {
    [ "$(api POST "$URL/keys/ec1/sign?api-version=7.4" "{\"alg\":\"RS256\",\"value\":\"$D256\"}")" = 400 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = BadParameter ]
}
check "alg not matching the key -> 400" t_wrong_alg

t_digest_len() {
    [ "$(api POST "$URL/keys/rsa1/sign?api-version=7.4" '{"alg":"RS256","value":"AAECAwQFBgcICQ"}')" = 400 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = BadParameter ]
}
check "wrong digest length -> 400 BadParameter" t_digest_len

t_not_found() {
    [ "$(api GET "$URL/keys/nosuchkey?api-version=7.4")" = 404 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = KeyNotFound ] &&
        grep -q 'A key with (name/id) nosuchkey was not found in this key vault' "$T_TMP/resp.json" &&
        [ "$(api POST "$URL/keys/nosuchkey/sign?api-version=7.4" "{\"alg\":\"RS256\",\"value\":\"$D256\"}")" = 404 ]
}
check "unknown key -> 404 KeyNotFound" t_not_found

t_bad_json() {
    [ "$(api POST "$URL/keys/k2/create?api-version=7.4" '{"kty":')" = 400 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = BadParameter ]
}
check "malformed JSON -> 400 BadParameter" t_bad_json

t_no_api_version() {
    [ "$(api GET "$URL/keys")" = 400 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = BadParameter ]
}
check "missing api-version -> 400 BadParameter" t_no_api_version

t_unknown_vault() {
    [ "$(api GET "https://nosuch.vault.localhost:$VAULTD_PORT/keys?api-version=7.4")" = 404 ]
}
check "unknown vault host -> 404" t_unknown_vault

t_forged() {
    local sig forged pos c
    sig=${TOKEN##*.}
    pos=$((${#sig} / 2))
    c=${sig:$pos:1}
    [ "$c" = A ] && c=B || c=A
    forged="${TOKEN%.*}.${sig:0:$pos}$c${sig:$((pos + 1))}"
    [ "$(TOKEN=$forged api GET "$URL/keys?api-version=7.4")" = 401 ] &&
        grep -q 'Invalid signature' "$T_TMP/resp.json" &&
        grep -qi '^WWW-Authenticate: Bearer' "$T_TMP/resp.hdr"
}
check "forged token (one signature character flipped) -> 401 Invalid signature" t_forged

t_audience() {
    local t
    t=$(curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$(conf_get client_id)" \
        --data-urlencode "client_secret=$(conf_get client_secret)" \
        --data-urlencode scope=https://managedhsm.azure.net/.default |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') &&
        [ "$(TOKEN=$t api GET "$URL/keys?api-version=7.4")" = 401 ] &&
        grep -q 'AKV10022' "$T_TMP/resp.json"
}
check "token for another audience -> 401 AKV10022" t_audience

t_v1_token() {
    curl -s --cacert "$CA" -o "$T_TMP/v1.json" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$(conf_get client_id)" \
        --data-urlencode "client_secret=$(conf_get client_secret)" \
        --data-urlencode resource=https://vault.azure.net &&
        [ "$(TOKEN=$(jget "$T_TMP/v1.json" 'd["access_token"]') api GET "$URL/keys?api-version=7.4")" = 200 ]
}
check "v1 token endpoint (resource=) gives a working token" t_v1_token

t_alg_none() {
    local h p
    h=$(printf '{"alg":"none","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
    p=$(echo "$TOKEN" | cut -d. -f2)
    [ "$(TOKEN="$h.$p." api GET "$URL/keys?api-version=7.4")" = 401 ]
}
check "alg none token -> 401" t_alg_none

t_no_secrets_logged() {
    ! grep -qF "$(conf_get client_secret)" "$T_TMP/vaultd.log" &&
        ! grep -qF "${TOKEN:0:40}" "$T_TMP/vaultd.log" &&
        grep -Eq 'POST /keys/rsa1/create 200 [0-9.]+ ms' "$T_TMP/vaultd.log"
}
check "access log has method/path/status/latency and no secrets or tokens" t_no_secrets_logged

t_modes() {
    [ "$(stat -c %a "$VAULTD_STATE")" = 700 ] &&
        for f in ca.key server.key token-signing.key client.conf vaultd.db; do
            [ "$(stat -c %a "$VAULTD_STATE/$f")" = 600 ] || { echo "$f"; return 1; }
        done || return 1
    # the KEK: in the dev HSM pool (kek.hsm, when SoftHSMv2 is installed) or in kek.bin
    if [ -f "$VAULTD_STATE/kek.hsm" ]; then
        [ "$(stat -c %a "$VAULTD_STATE/kek.hsm")" = 600 ] && [ ! -e "$VAULTD_STATE/kek.bin" ]
    else
        [ "$(stat -c %a "$VAULTD_STATE/kek.bin")" = 600 ] && [ "$(stat -c %s "$VAULTD_STATE/kek.bin")" = 32 ]
    fi
}
check "state dir 0700, private files 0600" t_modes

t_cert() {
    openssl x509 -in "$VAULTD_STATE/server.pem" -noout -ext subjectAltName |
        tr -d ' \n' | grep -q 'DNS:localhost,DNS:\*.vault.localhost,DNS:\*.managedhsm.localhost,IPAddress:127.0.0.1,IPAddress:0:0:0:0:0:0:0:1' &&
        openssl verify -CAfile "$CA" "$VAULTD_STATE/server.pem"
}
check "server certificate SANs and chain" t_cert

t_tls12_ciphers() {
    # TLS 1.1 refused; TLS 1.2 only with ECDHE AEAD suites
    ! openssl s_client -connect "127.0.0.1:$VAULTD_PORT" -tls1_1 </dev/null >/dev/null 2>&1 &&
        ! openssl s_client -connect "127.0.0.1:$VAULTD_PORT" -tls1_2 -cipher 'AES128-SHA' </dev/null >/dev/null 2>&1 &&
        openssl s_client -connect "127.0.0.1:$VAULTD_PORT" -tls1_2 -CAfile "$CA" </dev/null 2>/dev/null |
        grep -Eq 'Cipher *: *ECDHE-ECDSA-(AES(128|256)-GCM|CHACHA20)'
}
check "TLS: no TLS 1.1, TLS 1.2 only ECDHE+AEAD" t_tls12_ciphers

# ---- restart ----

RSA_KID=$(jget "$T_TMP/rsa1b.json" 'd["key"]["kid"]')
stop_vaultd
OLD_SECRET=$(conf_get client_secret)
start_vaultd || not_ok "vaultd restarts"

t_restart() {
    TOKEN=$(get_token) &&
        [ "$(conf_get client_secret)" = "$OLD_SECRET" ] &&
        [ "$(api GET "$URL/keys/rsa1?api-version=7.4")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["kid"]')" = "$RSA_KID" ] &&
        sign_with rsa1 RS256 &&
        openssl pkeyutl -verify -pubin -inkey "$T_TMP/rsa1.pem" -in "$T_TMP/d256" \
            -sigfile "$T_TMP/sig.bin" -pkeyopt digest:sha256
}
check "after restart (same state) the key is there and still signs" t_restart

stop_vaultd
VAULTD_PORT=$(free_port)
start_vaultd || not_ok "vaultd restarts on a new port"
URL="https://dev.vault.localhost:$VAULTD_PORT"

t_new_port() {
    [ "$(conf_get url)" = "$URL" ] && [ "$(conf_get authority)" = "https://localhost:$VAULTD_PORT" ] &&
        [ "$(conf_get client_secret)" = "$OLD_SECRET" ] &&
        TOKEN=$(get_token) && [ "$(api GET "$URL/keys/ec1?api-version=7.4")" = 200 ]
}
check "restart on another port rewrites url/authority in client.conf, keeps the secret" t_new_port

# deny by default: without a role assignment the principal gets 403
stop_vaultd
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM role_assignments"); c.commit()' "$VAULTD_STATE/vaultd.db"
start_vaultd || not_ok "vaultd restarts without role assignments"

t_rbac() {
    TOKEN=$(get_token) && [ "$(api GET "$URL/keys?api-version=7.4")" = 403 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = Forbidden ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["innererror"]["code"]')" = ForbiddenByRbac ]
}
check "no role assignment -> 403 ForbiddenByRbac" t_rbac
stop_vaultd

# ---- expired token: a second vaultd with 3-second tokens (at least 2 s of validity, as
# expiry is checked in whole seconds) ----

VAULTD_STATE=$T_TMP/state-short
VAULTD_PORT=$(free_port)
start_vaultd --token-lifetime 3 || not_ok "short-token vaultd starts"
URL="https://dev.vault.localhost:$VAULTD_PORT"
CA="$VAULTD_STATE/ca.pem"

t_expired() {
    TOKEN=$(get_token) || return 1
    [ "$(api GET "$URL/keys?api-version=7.4")" = 200 ] || return 1
    sleep 4.2
    [ "$(api GET "$URL/keys?api-version=7.4")" = 401 ] &&
        grep -q 'Token expired' "$T_TMP/resp.json"
}
check "expired token -> 401 Token expired" t_expired

t_sigterm() {
    kill -TERM "$VAULTD_PID" && wait "$VAULTD_PID"
    local rc=$?
    VAULTD_PID=""
    [ "$rc" = 0 ]
}
check "SIGTERM stops vaultd cleanly (exit 0)" t_sigterm

finish
