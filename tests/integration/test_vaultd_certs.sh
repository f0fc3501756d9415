#!/usr/bin/env bash
# test_vaultd_certs.sh - vaultd's certificate endpoints with curl, openssl and python3 only:
# self-signed create (202 + pending operation), the X.509 checked with openssl, the linked key
# signing through /keys/{n}/sign (verified with the certificate's public key), the linked secret
# (PKCS#12 / PEM, private key present only when exportable), PEM and PKCS#12 import round trips,
# get / list / versions / update / policy, delete / recover / purge of certificate + key +
# secret, and the error cases with Azure's status and code.
source "$(dirname "$0")/lib.sh"

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
URL="https://dev.vault.localhost:$VAULTD_PORT"
AV="api-version=7.5"
TOKEN=$(get_token)
W="$T_TMP/w"
mkdir -p "$W"

jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$T_TMP/resp.json" "$1"
}
api() {
    local m=$1 p=$2 body=${3:-}
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$p"
}
# api_file METHOD URL FILE: like api with the JSON body read from FILE.
api_file() {
    curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary "@$3" "$2"
}
expect() {
    local want=$1 code=$2 got; shift 2
    got=$(api "$@")
    if [ "$got" != "$want" ]; then echo "status $got, wanted $want"; cat "$T_TMP/resp.json"; return 1; fi
    [ "$code" = - ] && return 0
    [ "$(jget 'd["error"]["code"]')" = "$code" ] || { cat "$T_TMP/resp.json"; return 1; }
}
# save_cer NAME [VERSION]: GET the certificate, write $W/NAME.der/.pem, print nothing.
save_cer() {
    expect 200 - GET "$URL/certificates/$1/${2:-}?$AV" || return 1
    python3 -c 'import json,base64,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"wb").write(base64.b64decode(d["cer"]))' \
        "$T_TMP/resp.json" "$W/$1.der" && openssl x509 -inform DER -in "$W/$1.der" -out "$W/$1.pem"
}
# save_secret NAME FILE: the secret's value decoded (PKCS#12 -> DER file, PEM -> text).
save_secret() {
    expect 200 - GET "$URL/secrets/$1/?$AV" || return 1
    python3 -c '
import json,base64,sys
d=json.load(open(sys.argv[1]))
v=d["value"]
data=v.encode() if d.get("contentType")=="application/x-pem-file" else base64.b64decode(v)
open(sys.argv[2],"wb").write(data)' "$T_TMP/resp.json" "$2"
}
# sign_and_verify NAME ALG: signs sha256/384 of a message through /keys/NAME/sign and checks the
# signature with openssl against the public key of $W/NAME.pem.
sign_and_verify() {
    local n=$1 alg=$2 md=sha256 d64
    case $alg in ES384) md=sha384 ;; esac
    echo "message for $n" >"$W/msg"
    d64=$(openssl dgst -"$md" -binary "$W/msg" | python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))')
    expect 200 - POST "$URL/keys/$n/sign?$AV" "{\"alg\":\"$alg\",\"value\":\"$d64\"}" || return 1
    python3 -c '
import json,base64,sys
s=json.load(open(sys.argv[1]))["value"]; raw=base64.urlsafe_b64decode(s+"="*(-len(s)%4))
if sys.argv[3].startswith("ES"):
    n=len(raw)//2
    def i(v):
        v=v.lstrip(b"\0") or b"\0"
        v=b"\0"+v if v[0]&0x80 else v
        return bytes([2,len(v)])+v
    body=i(raw[:n])+i(raw[n:])
    raw=bytes([0x30,len(body)])+body if len(body)<128 else bytes([0x30,0x81,len(body)])+body
open(sys.argv[2],"wb").write(raw)' "$T_TMP/resp.json" "$W/sig" "$alg" || return 1
    local opts=()
    [ "${alg#PS}" != "$alg" ] && opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
    openssl x509 -in "$W/$n.pem" -noout -pubkey >"$W/$n.pub" &&
        openssl dgst -"$md" -verify "$W/$n.pub" "${opts[@]}" -signature "$W/sig" "$W/msg"
}
# same_pub KEYFILE CERTPEM: the private key belongs to the certificate.
same_pub() {
    [ "$(openssl pkey -in "$1" -pubout 2>/dev/null)" = "$(openssl x509 -in "$2" -noout -pubkey)" ] &&
        [ -n "$(openssl pkey -in "$1" -pubout 2>/dev/null)" ]
}

POLICY_RSA='{"policy":{"key_props":{"kty":"RSA","key_size":2048,"exportable":true},"secret_props":{"contentType":"application/x-pkcs12"},"x509_props":{"subject":"CN=c1.example, O=kvault","sans":{"dns_names":["c1.example","www.c1.example"],"emails":["ops@example.com"],"upns":["svc@example.com"]},"key_usage":["digitalSignature","keyEncipherment"],"validity_months":24},"issuer":{"name":"Self"}},"tags":{"team":"h2"}}'

t_create() {
    expect 202 - POST "$URL/certificates/c1/create?$AV" "$POLICY_RSA" &&
        [ "$(jget 'd["id"]')" = "$URL/certificates/c1/pending" ] &&
        [ "$(jget 'd["status"]')" = inProgress ] && [ "$(jget 'len(d["csr"]) > 100')" = True ] || return 1
    expect 200 - GET "$URL/certificates/c1/pending?$AV" && [ "$(jget 'd["status"]')" = completed ] &&
        [ "$(jget 'd["target"]')" = "$URL/certificates/c1" ]
}
check "create (Self) -> 202 inProgress with csr; GET pending -> completed with target" t_create

t_bundle() {
    save_cer c1 || return 1
    V1=$(jget 'd["id"].rsplit("/",1)[1]')
    [ "$(jget 'd["kid"]')" = "$URL/keys/c1/$V1" ] && [ "$(jget 'd["sid"]')" = "$URL/secrets/c1/$V1" ] &&
        [ "$(jget 'd["tags"]["team"]')" = h2 ] &&
        [ "$(jget 'd["policy"]["id"]')" = "$URL/certificates/c1/policy" ] &&
        [ "$(jget 'd["policy"]["x509_props"]["validity_months"]')" = 24 ] || return 1
    # x5t = base64url(SHA-1(DER)); attributes mirror the validity
    [ "$(jget 'd["x5t"]')" = "$(openssl dgst -sha1 -binary "$W/c1.der" | python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))')" ] || return 1
    [ "$(jget 'd["attributes"]["exp"]')" = "$(date -d "$(openssl x509 -in "$W/c1.pem" -noout -enddate | cut -d= -f2)" +%s)" ] &&
        [ "$(jget 'd["attributes"]["nbf"]')" = "$(date -d "$(openssl x509 -in "$W/c1.pem" -noout -startdate | cut -d= -f2)" +%s)" ]
}
check "CertificateBundle: id, kid, sid, x5t = SHA-1 thumbprint, cer, policy, tags, nbf/exp" t_bundle

t_x509() {
    openssl verify -CAfile "$W/c1.pem" "$W/c1.pem" &&
        openssl x509 -in "$W/c1.pem" -noout -subject | grep -q "CN = c1.example" &&
        openssl x509 -in "$W/c1.pem" -noout -ext subjectAltName | grep -q "DNS:c1.example, DNS:www.c1.example, email:ops@example.com, othername: UPN::svc@example.com" &&
        openssl x509 -in "$W/c1.pem" -noout -ext keyUsage | grep -q "Digital Signature, Key Encipherment" &&
        openssl x509 -in "$W/c1.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication" &&
        openssl x509 -in "$W/c1.pem" -noout -text | grep -q "Public-Key: (2048 bit)"
}
check "self-signed X.509 verifies with openssl; subject, SANs (dns, email, upn), key usage, EKU" t_x509

t_key() {
    expect 200 - GET "$URL/keys/c1/$V1?$AV" && [ "$(jget 'd["key"]["kty"]')" = RSA ] &&
        [ "$(jget 'd["managed"]')" = True ] && [ "$(jget 'd["attributes"]["exp"] > d["attributes"]["nbf"]')" = True ] &&
        [ "$(jget 'sorted(d["key"]["key_ops"])')" = "['sign', 'unwrapKey', 'verify', 'wrapKey']" ] || return 1
    sign_and_verify c1 RS256 && sign_and_verify c1 PS256
}
check "linked key /keys/c1/{version}: key_ops from key usage; RS256/PS256 signatures verify with the cert" t_key

t_secret_pfx() {
    expect 200 - GET "$URL/secrets/c1/$V1?$AV" && [ "$(jget 'd["contentType"]')" = application/x-pkcs12 ] &&
        [ "$(jget 'd["managed"]')" = True ] && [ "$(jget 'd["kid"]')" = "$URL/keys/c1/$V1" ] || return 1
    save_secret c1 "$W/c1.pfx" &&
        openssl pkcs12 -in "$W/c1.pfx" -passin pass: -nocerts -nodes -out "$W/c1.key" 2>/dev/null &&
        same_pub "$W/c1.key" "$W/c1.pem" &&
        openssl pkcs12 -in "$W/c1.pfx" -passin pass: -nokeys -out "$W/c1.pfxcert.pem" 2>/dev/null &&
        cmp <(openssl x509 -in "$W/c1.pfxcert.pem" -outform DER) "$W/c1.der"
}
check "linked secret: managed PKCS#12 holding the certificate and its matching private key" t_secret_pfx

t_out_content_type() {
    expect 200 - GET "$URL/secrets/c1/$V1?api-version=2025-07-01&outContentType=application/x-pem-file" &&
        [ "$(jget 'd["contentType"]')" = application/x-pem-file ] || return 1
    python3 -c 'import json,sys; open(sys.argv[2],"w").write(json.load(open(sys.argv[1]))["value"])' \
        "$T_TMP/resp.json" "$W/c1.conv.pem"
    grep -q "BEGIN PRIVATE KEY" "$W/c1.conv.pem" && same_pub "$W/c1.conv.pem" "$W/c1.pem" &&
        cmp <(openssl x509 -in "$W/c1.conv.pem" -outform DER) "$W/c1.der" &&
        expect 400 BadParameter GET "$URL/secrets/c1/$V1?api-version=2025-07-01&outContentType=text/plain"
}
check "GET secret with outContentType=application/x-pem-file converts the PKCS#12 to PEM" t_out_content_type

t_ec_pem() {
    expect 202 - POST "$URL/certificates/ec1/create?$AV" '{"policy":{"key_props":{"kty":"EC","crv":"P-384"},"secret_props":{"contentType":"application/x-pem-file"},"x509_props":{"subject":"CN=ec1"},"issuer":{"name":"Self"}}}' &&
        save_cer ec1 && [ "$(jget 'd["policy"]["key_props"]["crv"]')" = P-384 ] &&
        openssl verify -CAfile "$W/ec1.pem" "$W/ec1.pem" &&
        openssl x509 -in "$W/ec1.pem" -noout -text | grep -q "ecdsa-with-SHA384" || return 1
    expect 200 - GET "$URL/keys/ec1?$AV" && [ "$(jget 'd["key"]["crv"]')" = P-384 ] &&
        [ "$(jget 'd["key"]["key_ops"]')" = "['sign', 'verify']" ] || return 1
    sign_and_verify ec1 ES384 || return 1
    save_secret ec1 "$W/ec1.secret.pem" && grep -q "BEGIN PRIVATE KEY" "$W/ec1.secret.pem" &&
        grep -q "BEGIN CERTIFICATE" "$W/ec1.secret.pem" && same_pub "$W/ec1.secret.pem" "$W/ec1.pem"
}
check "EC P-384 with PEM secret: ES384 via /keys/ec1/sign verifies; PEM secret has key + cert" t_ec_pem

t_non_exportable() {
    expect 202 - POST "$URL/certificates/nx1/create?$AV" '{"policy":{"key_props":{"kty":"RSA","exportable":false},"secret_props":{"contentType":"application/x-pem-file"},"x509_props":{"subject":"CN=nx1"},"issuer":{"name":"Self"}}}' &&
        save_cer nx1 && save_secret nx1 "$W/nx1.secret" && grep -q "BEGIN CERTIFICATE" "$W/nx1.secret" &&
        ! grep -q "PRIVATE KEY" "$W/nx1.secret" && sign_and_verify nx1 RS256
}
check "non-exportable: the secret carries no private key, the key still signs" t_non_exportable

t_import_pem() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/imp.key" -out "$W/imp.pem" -days 30 \
        -subj "/CN=imported.example" -addext "subjectAltName=DNS:imported.example" 2>/dev/null || return 1
    python3 -c '
import json,sys
v=open(sys.argv[1]).read()+open(sys.argv[2]).read()
json.dump({"value":v,"policy":{"secret_props":{"contentType":"application/x-pem-file"}}},open(sys.argv[3],"w"))' \
        "$W/imp.key" "$W/imp.pem" "$W/imp.json"
    [ "$(api_file POST "$URL/certificates/imp1/import?$AV" "$W/imp.json")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget 'd["policy"]["x509_props"]["subject"]')" = "CN=imported.example" ] &&
        [ "$(jget 'd["policy"]["x509_props"]["sans"]["dns_names"]')" = "['imported.example']" ] &&
        [ "$(jget 'd["policy"]["issuer"]["name"]')" = Unknown ] || { cat "$T_TMP/resp.json"; return 1; }
    save_cer imp1 && cmp "$W/imp1.der" <(openssl x509 -in "$W/imp.pem" -outform DER) &&
        save_secret imp1 "$W/imp1.secret" && same_pub "$W/imp1.secret" "$W/imp.pem" &&
        cmp <(openssl pkey -in "$W/imp1.secret" -outform DER) <(openssl pkey -in "$W/imp.key" -outform DER) &&
        sign_and_verify imp1 RS256
}
check "import PEM (PKCS#8 key + cert): same DER back, secret holds the same key, key signs" t_import_pem

t_import_pfx() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/pfx.key" \
        -out "$W/pfx.pem" -days 30 -subj "/CN=pfx.example" 2>/dev/null &&
        openssl pkcs12 -export -inkey "$W/pfx.key" -in "$W/pfx.pem" -passout pass:s3cret -out "$W/in.pfx" || return 1
    python3 -c '
import json,sys,base64
v=base64.b64encode(open(sys.argv[1],"rb").read()).decode()
json.dump({"value":v,"pwd":"s3cret"},open(sys.argv[2],"w"))
json.dump({"value":v,"pwd":"wrong"},open(sys.argv[3],"w"))' "$W/in.pfx" "$W/pfx.json" "$W/pfxbad.json"
    [ "$(api_file POST "$URL/certificates/pfx1/import?$AV" "$W/pfxbad.json")" = 400 ] &&
        [ "$(jget 'd["error"]["code"]')" = BadParameter ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(api_file POST "$URL/certificates/pfx1/import?$AV" "$W/pfx.json")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget 'd["policy"]["key_props"]["kty"]')" = EC ] &&
        [ "$(jget 'd["policy"]["secret_props"]["contentType"]')" = application/x-pkcs12 ] || return 1
    save_cer pfx1 && cmp "$W/pfx1.der" <(openssl x509 -in "$W/pfx.pem" -outform DER) &&
        save_secret pfx1 "$W/pfx1.pfx" &&
        openssl pkcs12 -in "$W/pfx1.pfx" -passin pass: -nocerts -nodes -out "$W/pfx1.key" 2>/dev/null &&
        same_pub "$W/pfx1.key" "$W/pfx.pem" && sign_and_verify pfx1 ES256
}
check "import PKCS#12 (password; wrong one -> 400): round trip of cert and key, ES256 signs" t_import_pfx

t_unknown_merge() {
    expect 202 - POST "$URL/certificates/ext1/create?$AV" '{"policy":{"key_props":{"kty":"RSA","key_size":2048},"secret_props":{"contentType":"application/x-pem-file"},"x509_props":{"subject":"CN=ext1.example","sans":{"dns_names":["ext1.example"]}},"issuer":{"name":"Unknown"}}}' &&
        [ "$(jget 'd["status"]')" = inProgress ] && [ "$(jget 'd["issuer"]["name"]')" = Unknown ] &&
        [ "$(jget '"_vd" in d')" = False ] || return 1
    python3 -c 'import json,sys,base64; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["csr"]))' "$T_TMP/resp.json" "$W/ext1.csr.der"
    openssl req -inform DER -in "$W/ext1.csr.der" -verify -noout -subject 2>&1 | grep -q "CN = ext1.example" || return 1
    expect 200 - GET "$URL/certificates/ext1/pending?$AV" && [ "$(jget 'd["status"]')" = inProgress ] &&
        expect 404 CertificateNotFound GET "$URL/certificates/ext1?$AV" || return 1
    # an outside CA signs the CSR
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/extca.key" -out "$W/extca.pem" -days 30 -subj "/CN=Outside CA" 2>/dev/null &&
        openssl x509 -req -inform DER -in "$W/ext1.csr.der" -CA "$W/extca.pem" -CAkey "$W/extca.key" \
            -CAcreateserial -days 20 -out "$W/ext1.signed.pem" 2>/dev/null || return 1
    local leaf ca other
    leaf=$(openssl x509 -in "$W/ext1.signed.pem" -outform DER | base64 -w0)
    ca=$(openssl x509 -in "$W/extca.pem" -outform DER | base64 -w0)
    other=$(openssl x509 -in "$W/imp.pem" -outform DER | base64 -w0)
    expect 400 BadParameter POST "$URL/certificates/ext1/pending/merge?$AV" "{\"x5c\":[\"$other\"]}" &&
        expect 400 BadParameter POST "$URL/certificates/ext1/pending/merge?$AV" '{"x5c":[]}' &&
        expect 201 - POST "$URL/certificates/ext1/pending/merge?$AV" "{\"x5c\":[\"$leaf\",\"$ca\"]}" || return 1
    expect 200 - GET "$URL/certificates/ext1/pending?$AV" && [ "$(jget 'd["status"]')" = completed ] &&
        expect 404 PendingCertificateNotFound POST "$URL/certificates/ext1/pending/merge?$AV" "{\"x5c\":[\"$leaf\"]}" &&
        save_cer ext1 && cmp "$W/ext1.der" <(openssl x509 -in "$W/ext1.signed.pem" -outform DER) &&
        openssl verify -CAfile "$W/extca.pem" "$W/ext1.pem" && sign_and_verify ext1 RS256 || return 1
    save_secret ext1 "$W/ext1.secret" && same_pub "$W/ext1.secret" "$W/ext1.pem" &&
        [ "$(grep -c "BEGIN CERTIFICATE" "$W/ext1.secret")" = 2 ] || return 1
    # cancel and delete a pending request
    expect 202 - POST "$URL/certificates/ext2/create?$AV" '{"policy":{"x509_props":{"subject":"CN=ext2"},"issuer":{"name":"Unknown"}}}' &&
        expect 200 - PATCH "$URL/certificates/ext2/pending?$AV" '{"cancellation_requested":true}' &&
        [ "$(jget 'd["status"]')" = cancelled ] && [ "$(jget 'd["cancellation_requested"]')" = True ] &&
        expect 404 PendingCertificateNotFound POST "$URL/certificates/ext2/pending/merge?$AV" "{\"x5c\":[\"$leaf\"]}" &&
        expect 200 - DELETE "$URL/certificates/ext2/pending?$AV" &&
        expect 404 PendingCertificateNotFound GET "$URL/certificates/ext2/pending?$AV"
}
check "issuer Unknown: 202 with a CSR, pending inProgress, merge (wrong cert 400) -> 201, cancel, delete" t_unknown_merge

t_errors() {
    expect 404 CertificateNotFound GET "$URL/certificates/nosuch?$AV" &&
        expect 404 CertificateNotFound GET "$URL/certificates/c1/0123456789abcdef0123456789abcdef?$AV" &&
        expect 404 CertificateNotFound GET "$URL/certificates/nosuch/versions?$AV" &&
        expect 404 CertificateNotFound GET "$URL/certificates/nosuch/policy?$AV" &&
        expect 404 CertificateNotFound DELETE "$URL/certificates/nosuch?$AV" &&
        expect 404 CertificateNotFound PATCH "$URL/certificates/nosuch/?$AV" '{}' &&
        expect 404 PendingCertificateNotFound GET "$URL/certificates/nosuch/pending?$AV" &&
        expect 404 PendingCertificateNotFound GET "$URL/certificates/imp1/pending?$AV" &&
        expect 404 CertificateNotFound GET "$URL/deletedcertificates/c1?$AV" &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"key_props":{"kty":"oct"},"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"key_props":{"kty":"RSA-HSM"},"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"key_props":{"kty":"RSA","key_size":1024},"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"key_props":{"kty":"EC","crv":"P-192"},"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"secret_props":{"contentType":"text/plain"},"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{"subject":"CN=e"},"issuer":{"name":"DigiCert"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{"subject":"nonsense"},"issuer":{"name":"Unknown"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{"subject":"nonsense"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{"subject":"CN=e","key_usage":["fly"]}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"x509_props":{"subject":"CN=e","validity_months":0}}}' &&
        expect 400 BadParameter POST "$URL/certificates/bad_name/create?$AV" '{"policy":{"x509_props":{"subject":"CN=e"}}}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/import?$AV" '{"value":"bm90IGEgcGZ4"}' &&
        expect 400 BadParameter POST "$URL/certificates/e1/import?$AV" '{}' || return 1
    # a certificate without its private key cannot be imported
    python3 -c 'import json,sys; json.dump({"value":open(sys.argv[1]).read()},open(sys.argv[2],"w"))' "$W/imp.pem" "$W/nokey.json"
    [ "$(api_file POST "$URL/certificates/e1/import?$AV" "$W/nokey.json")" = 400 ] &&
        [ "$(jget 'd["error"]["code"]')" = BadParameter ] || return 1
    # a key that is not the certificate's
    python3 -c 'import json,sys; json.dump({"value":open(sys.argv[1]).read()+open(sys.argv[2]).read()},open(sys.argv[3],"w"))' "$W/c1.key" "$W/imp.pem" "$W/mismatch.json"
    [ "$(api_file POST "$URL/certificates/e1/import?$AV" "$W/mismatch.json")" = 400 ] || return 1
    expect 404 CertificateNotFound GET "$URL/certificates/e1?$AV" &&
        expect 404 KeyNotFound GET "$URL/keys/e1?$AV" && expect 404 SecretNotFound GET "$URL/secrets/e1?$AV"
}
check "errors: 404 CertificateNotFound / PendingCertificateNotFound, 400 BadParameter (policy, import)" t_errors

t_versions_list() {
    expect 202 - POST "$URL/certificates/c1/create?$AV" "$POLICY_RSA" && save_cer c1 || return 1
    V2=$(jget 'd["id"].rsplit("/",1)[1]')
    [ "$V1" != "$V2" ] && expect 200 - GET "$URL/certificates/c1/$V1?$AV" &&
        expect 200 - GET "$URL/certificates/c1/versions?$AV&maxresults=1" &&
        [ "$(jget 'd["value"][0]["id"]')" = "$URL/certificates/c1/$V1" ] &&
        [ "$(jget 'd["nextLink"] is not None')" = True ] || return 1
    expect 200 - GET "$(jget 'd["nextLink"]')" && [ "$(jget 'd["value"][0]["id"]')" = "$URL/certificates/c1/$V2" ] &&
        [ "$(jget 'd["nextLink"]')" = None ] || return 1
    expect 200 - GET "$URL/certificates?$AV" &&
        [ "$(jget 'sorted(i["id"].rsplit("/",1)[1] for i in d["value"])')" = "['c1', 'ec1', 'ext1', 'imp1', 'nx1', 'pfx1']" ] &&
        [ "$(jget 'all(len(i["x5t"]) == 27 for i in d["value"])')" = True ] &&
        [ "$(jget '"cer" in d["value"][0]')" = False ] || return 1
    # both key versions sign
    expect 200 - GET "$URL/keys/c1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 2 ] &&
        expect 200 - GET "$URL/secrets/c1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 2 ]
}
check "new version: versions paged with nextLink, list with x5t, key and secret versions follow" t_versions_list

t_reuse_key() {
    local pol='{"policy":{"key_props":{"kty":"EC","crv":"P-256","reuse_key":true},"x509_props":{"subject":"CN=ru1"},"issuer":{"name":"Self"}}}'
    expect 202 - POST "$URL/certificates/ru1/create?$AV" "$pol" && save_cer ru1 && cp "$W/ru1.pem" "$W/ru1.a.pem" &&
        expect 202 - POST "$URL/certificates/ru1/create?$AV" "$pol" && save_cer ru1 && cp "$W/ru1.pem" "$W/ru1.b.pem" &&
        ! cmp -s "$W/ru1.a.pem" "$W/ru1.b.pem" &&
        [ "$(openssl x509 -in "$W/ru1.a.pem" -noout -pubkey)" = "$(openssl x509 -in "$W/ru1.b.pem" -noout -pubkey)" ] &&
        sign_and_verify ru1 ES256 || return 1
    expect 202 - POST "$URL/certificates/ru1/create?$AV" "${pol/true/false}" && save_cer ru1 &&
        [ "$(openssl x509 -in "$W/ru1.b.pem" -noout -pubkey)" != "$(openssl x509 -in "$W/ru1.pem" -noout -pubkey)" ]
}
check "reuse_key: a new version keeps the key; without it a new key is made" t_reuse_key

t_update_policy() {
    expect 200 - PATCH "$URL/certificates/c1/$V2?$AV" '{"attributes":{"enabled":false},"tags":{"k":"v"}}' &&
        [ "$(jget 'd["attributes"]["enabled"]')" = False ] && [ "$(jget 'd["tags"]')" = "{'k': 'v'}" ] || return 1
    # the linked key version is disabled too
    expect 403 Forbidden POST "$URL/keys/c1/$V2/sign?$AV" '{"alg":"RS256","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' &&
        expect 200 - PATCH "$URL/certificates/c1/$V2?$AV" '{"attributes":{"enabled":true}}' || return 1
    expect 200 - GET "$URL/certificates/c1/policy?$AV" && [ "$(jget 'd["x509_props"]["validity_months"]')" = 24 ] &&
        expect 200 - PATCH "$URL/certificates/c1/policy?$AV" '{"x509_props":{"validity_months":3},"key_props":{"kty":"EC","crv":"P-256"}}' &&
        [ "$(jget 'd["x509_props"]["validity_months"]')" = 3 ] &&
        [ "$(jget 'd["x509_props"]["subject"]')" = "CN=c1.example, O=kvault" ] &&
        [ "$(jget 'd["key_props"]["kty"]')" = EC ] || return 1
    expect 400 BadParameter PATCH "$URL/certificates/c1/policy?$AV" '{"key_props":{"kty":"XYZ"}}'
}
check "PATCH version (enabled propagates to the key, tags); GET / PATCH policy" t_update_policy

t_delete_recover() {
    expect 200 - DELETE "$URL/certificates/c1?$AV" &&
        [ "$(jget 'd["recoveryId"]')" = "$URL/deletedcertificates/c1" ] &&
        [ "$(jget 'd["scheduledPurgeDate"] - d["deletedDate"]')" = $((90 * 86400)) ] || return 1
    expect 404 CertificateNotFound GET "$URL/certificates/c1?$AV" &&
        expect 404 KeyNotFound GET "$URL/keys/c1/$V1?$AV" &&
        expect 404 SecretNotFound GET "$URL/secrets/c1?$AV" &&
        expect 200 - GET "$URL/deletedcertificates/c1?$AV" && [ "$(jget 'd["id"]')" = "$URL/certificates/c1/$V2" ] &&
        expect 200 - GET "$URL/deletedcertificates?$AV" &&
        [ "$(jget '[i["recoveryId"].rsplit("/",1)[1] for i in d["value"]]')" = "['c1']" ] || return 1
    local got
    got=$(api POST "$URL/certificates/c1/create?$AV" "$POLICY_RSA")
    [ "$got" = 409 ] && [ "$(jget 'd["error"]["innererror"]["code"]')" = ObjectIsDeletedButRecoverable ] || { echo "$got"; cat "$T_TMP/resp.json"; return 1; }
    expect 200 - POST "$URL/deletedcertificates/c1/recover?$AV" && [ "$(jget 'd["id"]')" = "$URL/certificates/c1/$V2" ] &&
        expect 200 - GET "$URL/certificates/c1/$V1?$AV" && expect 200 - GET "$URL/secrets/c1/$V1?$AV" &&
        sign_and_verify c1 RS256
}
check "delete: cert + key + secret gone (404s), deleted get/list, 409 on create, recover restores all" t_delete_recover

t_managed_secret() {
    expect 403 Forbidden DELETE "$URL/secrets/c1?$AV"
}
check "a certificate's secret cannot be deleted on its own -> 403" t_managed_secret

t_purge() {
    expect 200 - DELETE "$URL/certificates/imp1?$AV" &&
        expect 204 - DELETE "$URL/deletedcertificates/imp1?$AV" && [ ! -s "$T_TMP/resp.json" ] &&
        expect 404 CertificateNotFound GET "$URL/deletedcertificates/imp1?$AV" &&
        expect 404 KeyNotFound GET "$URL/keys/imp1?$AV" && expect 404 SecretNotFound GET "$URL/secrets/imp1?$AV" &&
        [ "$(api_file POST "$URL/certificates/imp1/import?$AV" "$W/imp.json")" = 200 ] &&
        expect 200 - GET "$URL/certificates/imp1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 1 ]
}
check "purge -> 204: certificate, key and secret gone; name reusable" t_purge

t_purge_protection() {
    expect 200 - DELETE "$URL/certificates/nx1?$AV" || return 1
    stop_vaultd
    python3 -c 'import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute("UPDATE vaults SET purge_protection=1"); db.commit()' "$VAULTD_STATE/vaultd.db"
    start_vaultd --rotation-interval 1 || return 1
    TOKEN=$(get_token)
    expect 403 Forbidden DELETE "$URL/deletedcertificates/nx1?$AV" &&
        expect 200 - GET "$URL/deletedcertificates/nx1?$AV" &&
        expect 200 - GET "$URL/certificates/ec1?$AV" && [ "$(jget 'd["attributes"]["recoveryLevel"]')" = Recoverable ] &&
        sign_and_verify ec1 ES384
}
check "purge protection -> 403; certificates and their keys survive a restart" t_purge_protection

t_retention_sweep() {
    python3 -c 'import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); [db.execute("UPDATE %s SET scheduled_purge_date=1 WHERE name=? AND deleted=1" % t, ("nx1",)) for t in ("certificates","keys","secrets")]; db.commit()' "$VAULTD_STATE/vaultd.db"
    for _ in $(seq 1 50); do
        [ "$(api GET "$URL/deletedcertificates/nx1?$AV")" = 404 ] && break
        sleep 0.2
    done
    expect 404 CertificateNotFound GET "$URL/deletedcertificates/nx1?$AV" &&
        python3 -c 'import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); sys.exit(sum(db.execute("SELECT COUNT(*) FROM %s WHERE name=?" % t, ("nx1",)).fetchone()[0] for t in ("certificates","keys","secrets","certificate_policies")))' "$VAULTD_STATE/vaultd.db"
}
check "a deleted certificate past its purge date is purged (certificate, key, secret, policy)" t_retention_sweep

finish
