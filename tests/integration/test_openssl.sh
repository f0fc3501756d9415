#!/bin/bash
# test_openssl.sh - kvault's OpenSSL 3 provider face end to end: the kvault:// store loader,
# public key export, PKCS#1 v1.5 / PSS / ECDSA signing through the vault (checked with plain
# OpenSSL verification), clear errors for bad input and a stopped vault, and safety when the
# provider is listed before the default provider in openssl.cnf.
. "$(dirname "$0")/lib.sh"

start_vaultd || exit 1

PROV=(-provider kvault -provider default)
D=$T_TMP

# create_key NAME KTY [SIZE|CURVE]: via the kvault tool when built, else the REST API.
create_key() {
    local name=$1 kty=$2 arg=${3:-} body url token
    if [ -x "$KVAULT" ]; then
        if [ "$kty" = RSA ]; then
            "$KVAULT" key create --vault-name dev --name "$name" --kty RSA --size "$arg" >/dev/null
        else
            "$KVAULT" key create --vault-name dev --name "$name" --kty EC --curve "$arg" >/dev/null
        fi
        return
    fi
    if [ "$kty" = RSA ]; then body="{\"kty\":\"RSA\",\"key_size\":$arg}"; else
        body="{\"kty\":\"EC\",\"crv\":\"$arg\"}"; fi
    url=$(conf_get url)
    token=$(get_token)
    curl -sf --cacert "$VAULTD_STATE/ca.pem" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "$body" \
        "$url/keys/$name/create?api-version=7.4" >/dev/null
}

check "create RSA-2048 key rsa1" create_key rsa1 RSA 2048
check "create EC P-256 key ec1" create_key ec1 EC P-256
check "create EC P-384 key ec384" create_key ec384 EC P-384

# Test data: a message and its SHA-256 / SHA-384 digests.
head -c 1000 /dev/urandom >"$D/msg.bin"
openssl dgst -sha256 -binary "$D/msg.bin" >"$D/d256.bin"
openssl dgst -sha384 -binary "$D/msg.bin" >"$D/d384.bin"

# ---- public keys ----
check "pkey -pubout RSA" openssl pkey "${PROV[@]}" -in kvault://dev/keys/rsa1 -pubout \
    -out "$D/rsa1.pub"
check "RSA public key is a PEM RSA-2048 key" \
    sh -c "grep -q 'BEGIN PUBLIC KEY' '$D/rsa1.pub' &&
           openssl pkey -pubin -in '$D/rsa1.pub' -noout -text | grep -q '(2048 bit)'"
check "pkey -pubout EC" openssl pkey "${PROV[@]}" -in kvault://dev/keys/ec1 -pubout \
    -out "$D/ec1.pub"
check "EC public key is a P-256 key" \
    sh -c "openssl pkey -pubin -in '$D/ec1.pub' -noout -text | grep -q 'NIST CURVE: P-256'"
check "pkey -pubin loads the public key only" \
    sh -c "openssl pkey ${PROV[*]} -pubin -in kvault://dev/keys/ec1 -pubout |
           cmp -s - '$D/ec1.pub'"
check "pkey -pubout EC P-384" openssl pkey "${PROV[@]}" -in kvault://dev/keys/ec384 -pubout \
    -out "$D/ec384.pub"

# ---- RSA PKCS#1 v1.5 ----
check "pkeyutl -sign RSA PKCS#1 sha256" openssl pkeyutl "${PROV[@]}" -sign \
    -inkey kvault://dev/keys/rsa1 -in "$D/d256.bin" -pkeyopt digest:sha256 -out "$D/rs256.sig"
check "RSA PKCS#1 signature verifies with plain OpenSSL" openssl pkeyutl -verify -pubin \
    -inkey "$D/rsa1.pub" -in "$D/d256.bin" -sigfile "$D/rs256.sig" -pkeyopt digest:sha256
check "dgst -sha384 -sign RSA" openssl dgst "${PROV[@]}" -sha384 -sign kvault://dev/keys/rsa1 \
    -out "$D/rs384.sig" "$D/msg.bin"
check "dgst RSA signature verifies" openssl dgst -sha384 -verify "$D/rsa1.pub" \
    -signature "$D/rs384.sig" "$D/msg.bin"
# No digest set: PKCS#1 v1.5 padding of caller-formatted input (a DigestInfo), like OpenSSL.
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' |
    cat - "$D/d256.bin" >"$D/di256.bin"
check "pkeyutl -sign RSA raw DigestInfo (RSNULL)" openssl pkeyutl "${PROV[@]}" -sign \
    -inkey kvault://dev/keys/rsa1 -in "$D/di256.bin" -out "$D/rsnull.sig"
check "raw DigestInfo signature equals the RS256 signature" cmp "$D/rsnull.sig" "$D/rs256.sig"

# ---- RSA PSS ----
check "pkeyutl -sign RSA PSS sha256 saltlen digest" openssl pkeyutl "${PROV[@]}" -sign \
    -inkey kvault://dev/keys/rsa1 -in "$D/d256.bin" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -out "$D/ps256.sig"
check "PSS signature verifies (saltlen digest)" openssl pkeyutl -verify -pubin \
    -inkey "$D/rsa1.pub" -in "$D/d256.bin" -sigfile "$D/ps256.sig" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
check "dgst -sha512 -sign RSA PSS" openssl dgst "${PROV[@]}" -sha512 \
    -sign kvault://dev/keys/rsa1 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -out "$D/ps512.sig" "$D/msg.bin"
check "dgst PSS signature verifies (saltlen auto)" openssl dgst -sha512 -verify "$D/rsa1.pub" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto -signature "$D/ps512.sig" \
    "$D/msg.bin"
check_fails_with "PSS with a salt length other than the digest's is refused" \
    "salt as long as the digest" openssl pkeyutl "${PROV[@]}" -sign \
    -inkey kvault://dev/keys/rsa1 -in "$D/d256.bin" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:20 -out "$D/bad.sig"

# ---- ECDSA ----
check "dgst -sha256 -sign EC P-256" openssl dgst "${PROV[@]}" -sha256 \
    -sign kvault://dev/keys/ec1 -out "$D/es256.sig" "$D/msg.bin"
check "ECDSA signature verifies with plain OpenSSL" openssl dgst -sha256 -verify "$D/ec1.pub" \
    -signature "$D/es256.sig" "$D/msg.bin"
check "pkeyutl -sign EC with a SHA-256 digest" openssl pkeyutl "${PROV[@]}" -sign \
    -inkey kvault://dev/keys/ec1 -in "$D/d256.bin" -out "$D/es256b.sig"
check "pkeyutl ECDSA signature verifies" openssl pkeyutl -verify -pubin -inkey "$D/ec1.pub" \
    -in "$D/d256.bin" -sigfile "$D/es256b.sig"
check "dgst -sha512 -sign EC P-256 (digest truncated)" openssl dgst "${PROV[@]}" -sha512 \
    -sign kvault://dev/keys/ec1 -out "$D/es256t.sig" "$D/msg.bin"
check "truncated-digest ECDSA signature verifies" openssl dgst -sha512 -verify "$D/ec1.pub" \
    -signature "$D/es256t.sig" "$D/msg.bin"
check "dgst -sha384 -sign EC P-384" openssl dgst "${PROV[@]}" -sha384 \
    -sign kvault://dev/keys/ec384 -out "$D/es384.sig" "$D/msg.bin"
check "P-384 signature verifies" openssl dgst -sha384 -verify "$D/ec384.pub" \
    -signature "$D/es384.sig" "$D/msg.bin"
check "local verify through the provider (dgst -verify kvault://)" openssl dgst "${PROV[@]}" \
    -sha256 -prverify kvault://dev/keys/ec1 -signature "$D/es256.sig" "$D/msg.bin"

# ---- X.509 (uses the AlgorithmIdentifier) ----
check "self-signed certificate with the RSA vault key" openssl req "${PROV[@]}" -new -x509 \
    -key kvault://dev/keys/rsa1 -subj /CN=rsa1 -days 1 -sha256 -out "$D/rsa1.crt"
check "RSA certificate verifies" openssl verify -CAfile "$D/rsa1.crt" "$D/rsa1.crt"
check "self-signed certificate with the EC vault key" openssl req "${PROV[@]}" -new -x509 \
    -key kvault://dev/keys/ec1 -subj /CN=ec1 -days 1 -sha384 -out "$D/ec1.crt"
check "EC certificate verifies" openssl verify -CAfile "$D/ec1.crt" "$D/ec1.crt"
check "CSR signed with RSA-PSS" openssl req "${PROV[@]}" -new -key kvault://dev/keys/rsa1 \
    -subj /CN=pss -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -out "$D/pss.csr"
check "RSA-PSS CSR verifies" sh -c "openssl req -in '$D/pss.csr' -verify -noout 2>&1 |
    grep -q 'verify OK'"

# ---- TLS server with a vault key (s_server signs the handshake through kvault) ----
# tls_with KEY CERT CLIENT-ARGS...: one s_client handshake against an s_server holding KEY.
tls_with() {
    local key=$1 crt=$2 port spid rc=1
    shift 2
    port=$(free_port)
    openssl s_server "${PROV[@]}" -accept "127.0.0.1:$port" -key "$key" -cert "$crt" -www \
        >"$D/s_server.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 50); do
        if echo | openssl s_client -connect "127.0.0.1:$port" -CAfile "$crt" "$@" \
            >"$D/s_client.log" 2>&1; then
            grep -q 'Verify return code: 0 (ok)' "$D/s_client.log" && rc=0
            break
        fi
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.2
    done
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    [ "$rc" -eq 0 ] || cat "$D/s_server.log" "$D/s_client.log"
    return "$rc"
}
check "TLS 1.3 server with the RSA vault key (RSA-PSS)" \
    tls_with kvault://dev/keys/rsa1 "$D/rsa1.crt" -tls1_3
check "TLS 1.2 server with the RSA vault key (PKCS#1 SHA-256)" \
    tls_with kvault://dev/keys/rsa1 "$D/rsa1.crt" -tls1_2 -sigalgs RSA+SHA256
check "TLS 1.3 server with the EC vault key" tls_with kvault://dev/keys/ec1 "$D/ec1.crt" -tls1_3
check "TLS 1.2 server with the EC vault key" tls_with kvault://dev/keys/ec1 "$D/ec1.crt" -tls1_2

# ---- errors ----
check_fails_with "malformed URI" "malformed kvault URI" \
    openssl pkey "${PROV[@]}" -in kvault://x -pubout
check_fails_with "unknown key" "KeyNotFound|nokey was not found" \
    openssl pkey "${PROV[@]}" -in kvault://dev/keys/nokey -pubout
check_fails_with "unknown vault" "no vault named nosuch in the kvault configuration" \
    openssl pkey "${PROV[@]}" -in kvault://nosuch/keys/rsa1 -pubout

# ---- provider listed before default in openssl.cnf ----
cat >"$D/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
kvault = kvault_sect
default = default_sect
[kvault_sect]
activate = 1
[default_sect]
activate = 1
EOF
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$D/soft.key" 2>/dev/null
check "kvault first: RSA key generation still works" env OPENSSL_CONF="$D/openssl.cnf" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$D/gen.key"
check "kvault first: EC key generation still works" env OPENSSL_CONF="$D/openssl.cnf" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/genec.key"
check "kvault first: software key file signs" env OPENSSL_CONF="$D/openssl.cnf" \
    openssl dgst -sha256 -sign "$D/soft.key" -out "$D/soft.sig" "$D/msg.bin"
check "kvault first: vault key signs" env OPENSSL_CONF="$D/openssl.cnf" \
    openssl dgst -sha256 -sign kvault://dev/keys/ec1 -out "$D/es256c.sig" "$D/msg.bin"
check "kvault first: signature verifies" openssl dgst -sha256 -verify "$D/ec1.pub" \
    -signature "$D/es256c.sig" "$D/msg.bin"
check "kvault first: certificate verification" env OPENSSL_CONF="$D/openssl.cnf" \
    openssl verify -CAfile "$D/rsa1.crt" "$D/rsa1.crt"
check "kvault first: TLS handshake to vaultd" env OPENSSL_CONF="$D/openssl.cnf" \
    sh -c "openssl s_client -connect 127.0.0.1:$VAULTD_PORT -CAfile '$VAULTD_STATE/ca.pem' \
           -servername localhost </dev/null 2>&1 | grep -q 'Verify return code: 0 (ok)'"

# ---- vault stopped ----
stop_vaultd
start=$(date +%s)
check_fails_with "vault stopped: clear error, no crash" "vault unreachable" \
    timeout 120 openssl pkey "${PROV[@]}" -in kvault://dev/keys/rsa1 -pubout
elapsed=$(($(date +%s) - start))
check "vault stopped: fails within the configured timeout ($elapsed s)" test "$elapsed" -le 60

finish
