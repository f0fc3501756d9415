#!/usr/bin/env bash
# test_vaultd_certs.sh - vaultd's certificate endpoints with curl, openssl and python3 only:
# self-signed create (202 + pending operation), the X.509 checked with openssl, the linked key
# signing through /keys/{n}/sign (verified with the certificate's public key), the linked secret
# (PKCS#12 / PEM, private key present only when exportable), PEM and PKCS#12 import round trips,
# get / list / versions / update / policy, delete / recover / purge of certificate + key +
# secret, HSM-protected certificate keys (RSA-HSM / EC-HSM in the dev SoftHSMv2 pool, checked
# with pkcs11-tool), a certificate's key through kvault.so (listed by pkcs11-tool -O, signing
# through PKCS#11 and through the OpenSSL provider, verified with the certificate), backup /
# restore, contacts and issuers, and the error cases with Azure's status and code.
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
        expect 400 BadParameter POST "$URL/certificates/e1/create?$AV" '{"policy":{"key_props":{"kty":"RSA-HSM","exportable":true},"x509_props":{"subject":"CN=e"}}}' &&
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

# ---- HSM-protected certificate keys (the --dev vault has a SoftHSMv2 pool) ----

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
# p11_objects FILE: the dev pool's objects as pkcs11-tool lists them.
p11_objects() {
    SOFTHSM2_CONF="$VAULTD_STATE/softhsm/softhsm2.conf" pkcs11-tool --module "$SOFTHSM_MODULE" \
        --token-label vaultd-dev --login --pin "$(cat "$VAULTD_STATE/softhsm/user.pin")" -O >"$1" 2>/dev/null
}

t_hsm_create() {
    expect 202 - POST "$URL/certificates/hc1/create?$AV" '{"policy":{"key_props":{"kty":"RSA-HSM","key_size":2048},"secret_props":{"contentType":"application/x-pem-file"},"x509_props":{"subject":"CN=hc1.example","sans":{"dns_names":["hc1.example"]}},"issuer":{"name":"Self"}}}' &&
        expect 200 - GET "$URL/certificates/hc1/pending?$AV" && [ "$(jget 'd["status"]')" = completed ] &&
        python3 -c 'import json,sys,base64; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["csr"]))' "$T_TMP/resp.json" "$W/hc1.csr.der" &&
        openssl req -inform DER -in "$W/hc1.csr.der" -verify -noout 2>&1 | grep -q "verify OK" || return 1
    save_cer hc1 && HV1=$(jget 'd["id"].rsplit("/",1)[1]') &&
        [ "$(jget 'd["policy"]["key_props"]["kty"]')" = RSA-HSM ] &&
        [ "$(jget 'd["policy"]["key_props"]["exportable"]')" = False ] &&
        openssl verify -CAfile "$W/hc1.pem" "$W/hc1.pem" &&
        openssl x509 -in "$W/hc1.pem" -noout -text | grep -q "sha256WithRSAEncryption" || return 1
    expect 200 - GET "$URL/keys/hc1/$HV1?$AV" && [ "$(jget 'd["key"]["kty"]')" = RSA-HSM ] &&
        [ "$(jget 'd["managed"]')" = True ] || return 1
    sign_and_verify hc1 RS256 && sign_and_verify hc1 PS256 || return 1
    # the secret holds the certificate only
    save_secret hc1 "$W/hc1.secret" && grep -q "BEGIN CERTIFICATE" "$W/hc1.secret" && ! grep -q "PRIVATE KEY" "$W/hc1.secret"
}
check "RSA-HSM certificate: key made in the pool, X.509 and CSR signed there, /keys kty RSA-HSM, RS256/PS256 verify, secret = certificate only" t_hsm_create

t_hsm_ec() {
    expect 202 - POST "$URL/certificates/hc2/create?$AV" '{"policy":{"key_props":{"kty":"EC-HSM","crv":"P-384","exportable":false},"x509_props":{"subject":"CN=hc2"},"issuer":{"name":"Self"}}}' &&
        save_cer hc2 && openssl verify -CAfile "$W/hc2.pem" "$W/hc2.pem" &&
        openssl x509 -in "$W/hc2.pem" -noout -text | grep -q "ecdsa-with-SHA384" || return 1
    expect 200 - GET "$URL/keys/hc2?$AV" && [ "$(jget 'd["key"]["kty"]')" = EC-HSM ] &&
        [ "$(jget 'd["key"]["crv"]')" = P-384 ] && sign_and_verify hc2 ES384 || return 1
    # the PKCS#12 secret (no password) holds the certificate and no key
    save_secret hc2 "$W/hc2.pfx" && openssl pkcs12 -in "$W/hc2.pfx" -passin pass: -nokeys 2>/dev/null | grep -q "BEGIN CERTIFICATE" &&
        [ -z "$(openssl pkcs12 -in "$W/hc2.pfx" -passin pass: -nocerts -nodes 2>/dev/null | grep "PRIVATE KEY")" ]
}
check "EC-HSM P-384 certificate: ecdsa-with-SHA384 self-signature, ES384 through /keys verifies, PKCS#12 without key" t_hsm_ec

t_hsm_refused() {
    expect 400 BadParameter POST "$URL/certificates/hx/create?$AV" '{"policy":{"key_props":{"kty":"RSA-HSM","exportable":true},"x509_props":{"subject":"CN=hx"}}}' &&
        jget 'd["error"]["message"]' | grep -q "cannot be exported" &&
        expect 400 BadParameter POST "$URL/certificates/hx/create?$AV" '{"policy":{"key_props":{"kty":"EC-HSM","crv":"P-192"},"x509_props":{"subject":"CN=hx"}}}' &&
        expect 404 CertificateNotFound GET "$URL/certificates/hx?$AV" && expect 404 KeyNotFound GET "$URL/keys/hx?$AV"
}
check "HSM certificate key with exportable=true -> 400 BadParameter (as Azure); bad curve -> 400" t_hsm_refused

t_hsm_reuse() {
    local pol='{"policy":{"key_props":{"kty":"EC-HSM","crv":"P-256","reuse_key":true},"x509_props":{"subject":"CN=hr1"},"issuer":{"name":"Self"}}}'
    expect 202 - POST "$URL/certificates/hr1/create?$AV" "$pol" && save_cer hr1 && cp "$W/hr1.pem" "$W/hr1.a.pem" &&
        expect 202 - POST "$URL/certificates/hr1/create?$AV" "$pol" && save_cer hr1 &&
        [ "$(openssl x509 -in "$W/hr1.a.pem" -noout -pubkey)" = "$(openssl x509 -in "$W/hr1.pem" -noout -pubkey)" ] &&
        openssl verify -CAfile "$W/hr1.pem" "$W/hr1.pem" && sign_and_verify hr1 ES256
}
check "EC-HSM reuse_key: the new version is signed by the same pool key" t_hsm_reuse

t_hsm_import() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/hi.key" -out "$W/hi.pem" -days 30 -subj "/CN=hi.example" 2>/dev/null &&
        openssl pkcs12 -export -inkey "$W/hi.key" -in "$W/hi.pem" -passout pass:pw -out "$W/hi.pfx" || return 1
    python3 -c '
import json,sys,base64
v=base64.b64encode(open(sys.argv[1],"rb").read()).decode()
json.dump({"value":v,"pwd":"pw","policy":{"key_props":{"kty":"RSA-HSM","exportable":False}}},open(sys.argv[2],"w"))
json.dump({"value":v,"pwd":"pw","policy":{"key_props":{"kty":"RSA-HSM","exportable":True}}},open(sys.argv[3],"w"))' \
        "$W/hi.pfx" "$W/hi.json" "$W/hi-exp.json"
    [ "$(api_file POST "$URL/certificates/hi1/import?$AV" "$W/hi-exp.json")" = 400 ] &&
        [ "$(jget 'd["error"]["code"]')" = BadParameter ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(api_file POST "$URL/certificates/hi1/import?$AV" "$W/hi.json")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget 'd["policy"]["key_props"]["kty"]')" = RSA-HSM ] && save_cer hi1 &&
        cmp "$W/hi1.der" <(openssl x509 -in "$W/hi.pem" -outform DER) || return 1
    expect 200 - GET "$URL/keys/hi1?$AV" && [ "$(jget 'd["key"]["kty"]')" = RSA-HSM ] &&
        sign_and_verify hi1 RS256 && save_secret hi1 "$W/hi1.pfx" &&
        [ -z "$(openssl pkcs12 -in "$W/hi1.pfx" -passin pass: -nocerts -nodes 2>/dev/null | grep "PRIVATE KEY")" ]
}
check "import PKCS#12 with key_props.kty RSA-HSM: the key goes into the pool (RSA-HSM, signs); exportable -> 400" t_hsm_import

t_hsm_unknown() {
    expect 202 - POST "$URL/certificates/hu1/create?$AV" '{"policy":{"key_props":{"kty":"EC-HSM","crv":"P-256"},"x509_props":{"subject":"CN=hu1.example"},"issuer":{"name":"Unknown"}}}' &&
        python3 -c 'import json,sys,base64; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["csr"]))' "$T_TMP/resp.json" "$W/hu1.csr.der" &&
        openssl req -inform DER -in "$W/hu1.csr.der" -verify -noout 2>&1 | grep -q "verify OK" &&
        openssl x509 -req -inform DER -in "$W/hu1.csr.der" -CA "$W/extca.pem" -CAkey "$W/extca.key" \
            -CAcreateserial -days 20 -out "$W/hu1.signed.pem" 2>/dev/null || return 1
    local leaf
    leaf=$(openssl x509 -in "$W/hu1.signed.pem" -outform DER | base64 -w0)
    expect 201 - POST "$URL/certificates/hu1/pending/merge?$AV" "{\"x5c\":[\"$leaf\"]}" &&
        expect 200 - GET "$URL/keys/hu1?$AV" && [ "$(jget 'd["key"]["kty"]')" = EC-HSM ] &&
        save_cer hu1 && sign_and_verify hu1 ES256
}
check "EC-HSM with issuer Unknown: CSR signed in the pool, merge -> 201, the pool key signs" t_hsm_unknown

t_hsm_p11() {
    p11_objects "$W/p11.txt" || return 1
    grep -A3 "^Private Key Object; RSA" "$W/p11.txt" | grep -q "label: *vaultd/dev/hc1/$HV1" &&
        grep -A3 "^Private Key Object; EC" "$W/p11.txt" | grep -q "label: *vaultd/dev/hc2/" &&
        grep -A3 "^Private Key Object; RSA" "$W/p11.txt" | grep -q "label: *vaultd/dev/hi1/" &&
        ! grep -q "label: *vaultd/dev/c1/" "$W/p11.txt" &&
        python3 - "$W/p11.txt" <<'EOF'
import re, sys
objs = re.split(r"\n(?=(?:Private|Public|Secret) Key Object)", open(sys.argv[1]).read())
mine = [o for o in objs if o.startswith("Private Key Object") and "vaultd/dev/h" in o]
# hc1, hc2, hr1 (one pool key for both versions), hi1, hu1
assert len(mine) == 5, len(mine)
assert all(re.search(r"Access: .*\bsensitive\b", o) for o in mine), mine
EOF
}
check "pkcs11-tool -O on the dev pool: the certificate keys are sensitive private key objects labelled vaultd/dev/NAME/VERSION" t_hsm_p11

# ---- a certificate's private key through kvault's faces (kvault.so: PKCS#11 and the provider) ----

# p11_id NAME: kvault.so's CKA_ID of key NAME in vault dev, SHA-256("dev/NAME")[:16] in hex.
p11_id() { printf 'dev/%s' "$1" | openssl dgst -sha256 -binary | head -c 16 | xxd -p; }
# p11_kinds LABEL < pkcs11-tool -O output: the sorted kinds of the objects with that label
p11_kinds() {
    awk -v want="$1" '/^[A-Z][a-z]* (Key )?Object/ { kind = $1 }
        $1 == "label:" && $2 == want { print kind }' | sort | tr '\n' ' ' | sed 's/ $//'
}
t_faces_p11() {
    local n
    timeout 120 pkcs11-tool --module "$KV_SO" -O >"$W/kv-objs.txt" 2>&1 || { cat "$W/kv-objs.txt"; return 1; }
    # c1: software RSA, ec1: software EC P-384, hc1: RSA-HSM in the pool
    # each name: a private key, a public key and the certificate itself, all with the same ID
    for n in c1 ec1 hc1; do
        [ "$(p11_kinds "$n" <"$W/kv-objs.txt")" = "Certificate Private Public" ] &&
            [ "$(grep -c "ID: *$(p11_id "$n")\$" "$W/kv-objs.txt")" = 3 ] ||
            { echo "$n: want a private key, a public key and a certificate object"; cat "$W/kv-objs.txt"; return 1; }
    done
    grep -A1 "^Private Key Object; RSA" "$W/kv-objs.txt" | grep -q "label: *c1$" &&
        grep -A1 "^Private Key Object; EC" "$W/kv-objs.txt" | grep -q "label: *ec1$" &&
        grep -A1 "^Private Key Object; RSA" "$W/kv-objs.txt" | grep -q "label: *hc1$" || { cat "$W/kv-objs.txt"; return 1; }
    # and the key signs through PKCS#11: verified with the certificate's public key
    save_cer c1 && openssl x509 -in "$W/c1.pem" -noout -pubkey >"$W/c1.pub" || return 1
    echo "pkcs11 message for c1" >"$W/p11msg"
    timeout 120 pkcs11-tool --module "$KV_SO" --sign --id "$(p11_id c1)" -m SHA256-RSA-PKCS \
        -i "$W/p11msg" -o "$W/p11.sig" >"$W/p11sign.txt" 2>&1 || { cat "$W/p11sign.txt"; return 1; }
    openssl dgst -sha256 -verify "$W/c1.pub" -signature "$W/p11.sig" "$W/p11msg"
}
check "kvault.so (pkcs11-tool -O): the certificates' keys c1 (RSA), ec1 (EC) and hc1 (RSA-HSM) are listed as key pairs; SHA256-RSA-PKCS with c1 verifies with the certificate" t_faces_p11
# prov_sign NAME MD: openssl dgst -sign through the kvault provider with kvault://dev/keys/NAME,
# verified by plain openssl with the public key of the certificate's latest version.
prov_sign() {
    local n=$1 md=$2
    save_cer "$n" && openssl x509 -in "$W/$n.pem" -noout -pubkey >"$W/$n.pub" || return 1
    head -c 1000 /dev/urandom >"$W/pmsg"
    openssl dgst -provider kvault -provider default "-$md" -sign "kvault://dev/keys/$n" \
        -out "$W/$n.psig" "$W/pmsg" || return 1
    openssl dgst "-$md" -verify "$W/$n.pub" -signature "$W/$n.psig" "$W/pmsg"
}
check "openssl dgst -provider kvault -sha256 -sign kvault://dev/keys/c1: verifies with the certificate's public key" prov_sign c1 sha256
check "openssl dgst -provider kvault -sha384 -sign kvault://dev/keys/ec1 (EC P-384): verifies with the certificate's public key" prov_sign ec1 sha384
check "openssl dgst -provider kvault -sha256 -sign kvault://dev/keys/hc1 (RSA-HSM): verifies with the certificate's public key" prov_sign hc1 sha256

# ---- backup / restore ----

t_backup_errors() {
    expect 404 CertificateNotFound POST "$URL/certificates/nosuch/backup?$AV" &&
        expect 400 BadParameter POST "$URL/certificates/restore?$AV" '{}' &&
        expect 400 BadParameter POST "$URL/certificates/restore?$AV" '{"value":"not-a-blob"}' || return 1
    expect 200 - POST "$URL/certificates/ru1/backup?$AV" && CBLOB=$(jget 'd["value"]') && [ "${#CBLOB}" -gt 500 ] || return 1
    # a flipped character in the middle of the sealed blob
    local mid=$((${#CBLOB} / 2)) c
    c=${CBLOB:$mid:1}; [ "$c" = A ] && c=B || c=A
    expect 400 BadParameter POST "$URL/certificates/restore?$AV" "{\"value\":\"${CBLOB:0:$mid}$c${CBLOB:$((mid + 1))}\"}" &&
        expect 409 Conflict POST "$URL/certificates/restore?$AV" "{\"value\":\"$CBLOB\"}" || return 1
    # a key backup is not a certificate backup
    expect 200 - POST "$URL/keys/c1/backup?$AV" || return 0
    expect 400 BadParameter POST "$URL/certificates/restore?$AV" "{\"value\":\"$(jget 'd["value"]')\"}"
}
check "backup: unknown -> 404 CertificateNotFound; restore: tampered / foreign blob -> 400 BadParameter, name in use -> 409 Conflict" t_backup_errors

t_backup_restore() {
    # ru1 has three versions; delete + purge, then restore all of them
    expect 200 - GET "$URL/certificates/ru1/versions?$AV" && local before
    before=$(jget 'sorted(i["id"].rsplit("/",1)[1] for i in d["value"])')
    expect 200 - POST "$URL/certificates/ru1/backup?$AV" && CBLOB=$(jget 'd["value"]') || return 1
    save_secret ru1 "$W/ru1.before" || return 1
    expect 200 - DELETE "$URL/certificates/ru1?$AV" &&
        expect 409 Conflict POST "$URL/certificates/restore?$AV" "{\"value\":\"$CBLOB\"}" &&
        [ "$(jget 'd["error"]["innererror"]["code"]')" = ObjectIsDeletedButRecoverable ] &&
        expect 204 - DELETE "$URL/deletedcertificates/ru1?$AV" || return 1
    expect 200 - POST "$URL/certificates/restore?$AV" "{\"value\":\"$CBLOB\"}" &&
        [ "$(jget 'd["id"].rsplit("/",2)[1]')" = ru1 ] && [ "$(jget '"cer" in d and "policy" in d')" = True ] &&
        [ "$(jget 'd["policy"]["key_props"]["reuse_key"]')" = False ] || return 1
    expect 200 - GET "$URL/certificates/ru1/versions?$AV" && [ "$(jget 'sorted(i["id"].rsplit("/",1)[1] for i in d["value"])')" = "$before" ] &&
        expect 200 - GET "$URL/keys/ru1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 3 ] &&
        expect 200 - GET "$URL/secrets/ru1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 3 ] &&
        save_cer ru1 && save_secret ru1 "$W/ru1.after" && cmp "$W/ru1.before" "$W/ru1.after" &&
        sign_and_verify ru1 ES256
}
check "restore after delete (409 ObjectIsDeletedButRecoverable) and purge: all versions, policy, keys and secrets back; key signs" t_backup_restore

t_backup_other_vault() {
    local got
    got=$(api PUT "https://localhost:$VAULTD_PORT/admin/vaults/cb2?api-version=2023-07-01" '{"properties":{"softDeleteRetentionInDays":7}}')
    [ "$got" = 201 ] || [ "$got" = 200 ] || { echo "admin $got"; cat "$T_TMP/resp.json"; return 1; }
    local OURL="https://cb2.vault.localhost:$VAULTD_PORT"
    expect 200 - POST "$URL/certificates/hc1/backup?$AV" && HBLOB=$(jget 'd["value"]') &&
        expect 200 - POST "$URL/certificates/ec1/backup?$AV" && EBLOB=$(jget 'd["value"]') || return 1
    expect 200 - POST "$OURL/certificates/restore?$AV" "{\"value\":\"$EBLOB\"}" &&
        [ "$(jget 'd["id"].startswith("'"$OURL"'/certificates/ec1/")')" = True ] &&
        [ "$(jget 'd["attributes"]["recoverableDays"]')" = 7 ] || return 1
    expect 200 - POST "$OURL/certificates/restore?$AV" "{\"value\":\"$HBLOB\"}" &&
        expect 200 - GET "$OURL/keys/hc1?$AV" && [ "$(jget 'd["key"]["kty"]')" = RSA-HSM ] || return 1
    URL=$OURL sign_and_verify hc1 RS256 && URL=$OURL sign_and_verify ec1 ES384
}
check "backups (software EC and RSA-HSM) restore into another vault of the instance; the keys sign there" t_backup_other_vault

t_backup_other_instance() {
    local p2 pid2 st2="$T_TMP/state2" got
    p2=$(free_port)
    "$VAULTD" --dev --state "$st2" --listen "127.0.0.1:$p2" >>"$T_TMP/vaultd2.log" 2>&1 &
    pid2=$!
    for _ in $(seq 1 100); do
        [ -f "$st2/client.conf" ] && curl -s -o /dev/null --cacert "$st2/ca.pem" "https://localhost:$p2/healthz" && break
        sleep 0.1
    done
    local tok2
    tok2=$(KVAULT_CONF="$st2/client.conf" VAULTD_STATE="$st2" get_token)
    got=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$st2/ca.pem" -X POST \
        -H "Authorization: Bearer $tok2" -H 'Content-Type: application/json' \
        --data "{\"value\":\"$EBLOB\"}" "https://dev.vault.localhost:$p2/certificates/restore?$AV")
    kill "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null
    [ "$got" = 400 ] && [ "$(jget 'd["error"]["code"]')" = BadParameter ] &&
        jget 'd["error"]["message"]' | grep -q "instance"
}
check "a certificate backup restored into another vaultd instance -> 400 BadParameter" t_backup_other_instance

# ---- contacts and issuers ----

t_contacts() {
    expect 404 ContactsNotFound GET "$URL/certificates/contacts?$AV" &&
        expect 400 BadParameter PUT "$URL/certificates/contacts?$AV" '{"contacts":"x"}' &&
        expect 400 BadParameter PUT "$URL/certificates/contacts?$AV" '{"contacts":[{}]}' &&
        expect 400 BadParameter PUT "$URL/certificates/contacts?$AV" '{"contacts":[{"email":"not-an-address"}]}' || return 1
    expect 200 - PUT "$URL/certificates/contacts?$AV" '{"contacts":[{"email":"ops@example.com","name":"Ops","phone":"555-0100"},{"email":"sec@example.com"}]}' &&
        [ "$(jget 'd["id"]')" = "$URL/certificates/contacts" ] && [ "$(jget 'len(d["contacts"])')" = 2 ] || return 1
    expect 200 - GET "$URL/certificates/contacts?$AV" &&
        [ "$(jget 'd["contacts"][0]')" = "{'email': 'ops@example.com', 'name': 'Ops', 'phone': '555-0100'}" ] &&
        expect 200 - DELETE "$URL/certificates/contacts?$AV" && [ "$(jget 'd["contacts"][1]["email"]')" = sec@example.com ] &&
        expect 404 ContactsNotFound GET "$URL/certificates/contacts?$AV" &&
        expect 404 ContactsNotFound DELETE "$URL/certificates/contacts?$AV"
}
check "contacts: 404 ContactsNotFound, PUT (400 on bad input) / GET / DELETE with {id, contacts:[{email,name,phone}]}" t_contacts

t_issuers() {
    expect 404 CertificateIssuerNotFound GET "$URL/certificates/issuers/iss1?$AV" &&
        expect 400 BadParameter PUT "$URL/certificates/issuers/iss1?$AV" '{"credentials":{"account_id":"a"}}' &&
        expect 400 BadParameter PUT "$URL/certificates/issuers/iss1?$AV" '{"provider":"Test","org_details":{"admin_details":[{"shoe_size":"9"}]}}' || return 1
    expect 200 - PUT "$URL/certificates/issuers/iss1?$AV" '{"provider":"Test","credentials":{"account_id":"keyvaultuser","pwd":"s3cr3t-pw"},"org_details":{"id":"org1","admin_details":[{"first_name":"John","last_name":"Doe","email":"admin@example.com","phone":"4255555555"}]},"attributes":{"enabled":true}}' &&
        [ "$(jget 'd["id"]')" = "$URL/certificates/issuers/iss1" ] && [ "$(jget 'd["provider"]')" = Test ] &&
        [ "$(jget 'd["credentials"]')" = "{'account_id': 'keyvaultuser'}" ] &&
        [ "$(jget 'd["org_details"]["admin_details"][0]["last_name"]')" = Doe ] &&
        [ "$(jget 'd["attributes"]["enabled"] and d["attributes"]["created"] > 0')" = True ] || return 1
    ! grep -q "s3cr3t-pw" "$T_TMP/resp.json" || return 1
    expect 200 - PUT "$URL/certificates/issuers/iss2?$AV" '{"provider":"DigiCert"}' &&
        expect 200 - PATCH "$URL/certificates/issuers/iss1?$AV" '{"attributes":{"enabled":false},"credentials":{"account_id":"other"}}' &&
        [ "$(jget 'd["attributes"]["enabled"]')" = False ] && [ "$(jget 'd["credentials"]["account_id"]')" = other ] &&
        [ "$(jget 'd["provider"]')" = Test ] && [ "$(jget 'd["org_details"]["id"]')" = org1 ] || return 1
    expect 200 - GET "$URL/certificates/issuers/ISS1?$AV" && [ "$(jget 'd["attributes"]["enabled"]')" = False ] &&
        ! grep -q "pwd" "$T_TMP/resp.json" || return 1
    expect 200 - GET "$URL/certificates/issuers?$AV&maxresults=1" &&
        [ "$(jget 'd["value"]')" = "[{'id': '$URL/certificates/issuers/iss1', 'provider': 'Test'}]" ] &&
        expect 200 - GET "$(jget 'd["nextLink"]')" && [ "$(jget 'd["value"][0]["provider"]')" = DigiCert ] || return 1
    expect 200 - DELETE "$URL/certificates/issuers/iss2?$AV" && [ "$(jget 'd["provider"]')" = DigiCert ] &&
        expect 404 CertificateIssuerNotFound DELETE "$URL/certificates/issuers/iss2?$AV" &&
        expect 404 CertificateIssuerNotFound PATCH "$URL/certificates/issuers/iss2?$AV" '{"provider":"X"}' &&
        expect 200 - GET "$URL/certificates/issuers?$AV" && [ "$(jget 'len(d["value"])')" = 1 ] || return 1
    # the password is stored encrypted
    ! python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT group_concat(doc) FROM certificate_settings").fetchone()[0])' \
        "$VAULTD_STATE/vaultd.db" | grep -q "s3cr3t-pw"
}
check "issuers: PUT / GET / PATCH / DELETE / list (paged) as IssuerBundle; pwd never returned nor stored in clear; 404 CertificateIssuerNotFound" t_issuers

# ---- the kvault CLI: certificate backup / restore, contact, issuer ----

t_cli_backup_restore() {
    local K="${KV_TEST_KVAULT:-$KVAULT}"
    "$K" certificate backup --vault-name dev --name hc2 --file "$W/hc2.bak" >/dev/null &&
        [ -s "$W/hc2.bak" ] && ! "$K" certificate restore --vault-name dev --file "$W/hc2.bak" 2>"$W/cli.err" &&
        grep -q "Conflict" "$W/cli.err" || return 1
    # purging an HSM certificate destroys its pool key; the backup carries the key material
    # wrapped under the pool wrapping key, so restore brings it back into the pool (once for
    # the two versions that shared it)
    "$K" certificate backup --vault-name dev --name hr1 --file "$W/hr1.bak" >/dev/null &&
        expect 200 - DELETE "$URL/certificates/hr1?$AV" && expect 204 - DELETE "$URL/deletedcertificates/hr1?$AV" &&
        p11_objects "$W/p11b.txt" && ! grep -q "vaultd/dev/hr1/" "$W/p11b.txt" &&
        "$K" certificate restore --vault-name dev --file "$W/hr1.bak" >/dev/null &&
        save_cer hr1 && sign_and_verify hr1 ES256 &&
        expect 200 - GET "$URL/keys/hr1?$AV" && [ "$(jget 'd["key"]["kty"]')" = EC-HSM ] &&
        p11_objects "$W/p11c.txt" && [ "$(grep -c "label: *vaultd/dev/hr1/" "$W/p11c.txt")" = 2 ] || return 1
    "$K" certificate backup --vault-name dev --name ext1 --file "$W/ext1.bak" >/dev/null &&
        expect 200 - DELETE "$URL/certificates/ext1?$AV" && expect 204 - DELETE "$URL/deletedcertificates/ext1?$AV" &&
        "$K" certificate restore --vault-name dev --file "$W/ext1.bak" >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "/certificates/ext1/" in d["id"] and d["cer"]' "$W/cli.json" &&
        save_cer ext1 && sign_and_verify ext1 RS256 &&
        ! "$K" certificate backup --vault-name dev --name nosuch --file "$W/none.bak" 2>"$W/cli.err" &&
        grep -q "CertificateNotFound" "$W/cli.err"
}
check "kvault certificate backup / restore (409 name in use, 404 unknown); an HSM certificate restored after purge gets its key back into the pool" t_cli_backup_restore

t_cli_contacts() {
    local K="${KV_TEST_KVAULT:-$KVAULT}"
    "$K" certificate contact add --vault-name dev --email a@example.com --name "Alice A" --phone 555 >/dev/null &&
        "$K" certificate contact add --vault-name dev --email b@example.com >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [c["email"] for c in d["contacts"]]==["a@example.com","b@example.com"], d' "$W/cli.json" &&
        "$K" certificate contact list --vault-name dev >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["contacts"][0]=={"email":"a@example.com","name":"Alice A","phone":"555"}, d' "$W/cli.json" &&
        "$K" certificate contact delete --vault-name dev --email a@example.com >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [c["email"] for c in d["contacts"]]==["b@example.com"], d' "$W/cli.json" &&
        ! "$K" certificate contact delete --vault-name dev --email zz@example.com 2>/dev/null &&
        "$K" certificate contact delete --vault-name dev --email b@example.com >/dev/null &&
        ! "$K" certificate contact list --vault-name dev 2>"$W/cli.err" && grep -q ContactsNotFound "$W/cli.err"
}
check "kvault certificate contact add / list / delete" t_cli_contacts

t_cli_issuers() {
    local K="${KV_TEST_KVAULT:-$KVAULT}"
    "$K" certificate issuer create --vault-name dev --issuer-name ci1 --provider-name DigiCert \
        --account-id acct1 --password pw-secret --organization-id org9 >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["provider"]=="DigiCert" and d["credentials"]=={"account_id":"acct1"} and d["org_details"]["id"]=="org9", d' "$W/cli.json" &&
        ! grep -q pw-secret "$W/cli.json" &&
        "$K" certificate issuer update --vault-name dev --issuer-name ci1 --disabled >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["attributes"]["enabled"] is False, d' "$W/cli.json" &&
        "$K" certificate issuer show --vault-name dev --issuer-name ci1 >/dev/null &&
        "$K" certificate issuer list --vault-name dev >"$W/cli.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sorted(i["id"].rsplit("/",1)[1] for i in d)==["ci1","iss1"], d' "$W/cli.json" &&
        ! "$K" certificate issuer create --vault-name dev --issuer-name ci2 2>/dev/null &&
        "$K" certificate issuer delete --vault-name dev --issuer-name ci1 >/dev/null &&
        ! "$K" certificate issuer show --vault-name dev --issuer-name ci1 2>"$W/cli.err" &&
        grep -q CertificateIssuerNotFound "$W/cli.err"
}
check "kvault certificate issuer create / update / show / list / delete" t_cli_issuers

# ---- RBAC data actions of the new endpoints (Certificates Officer vs Certificate User) ----

# rbac_sp NAME ROLEID: a new service principal with ROLEID on vault dev; prints its token.
rbac_sp() {
    local app pw
    "$KVAULT" ad sp create-for-rbac --name "$1" >"$W/sp.json" 2>/dev/null || return 1
    app=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["appId"])' "$W/sp.json")
    pw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$W/sp.json")
    [ "$(api PUT "$URL/providers/Microsoft.Authorization/roleAssignments/$(cat /proc/sys/kernel/random/uuid)?$AV" \
        "{\"properties\":{\"roleDefinitionId\":\"$2\",\"principalId\":\"$app\"}}")" = 201 ] || return 1
    curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$app" \
        --data-urlencode "client_secret=$pw" --data-urlencode "scope=https://vault.azure.net/.default" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

t_rbac() {
    local officer user admin=$TOKEN
    officer=$(rbac_sp h1-cert-officer a4417e6f-fecd-4de8-b567-7b0420556985) && [ -n "$officer" ] &&
        user=$(rbac_sp h1-cert-user db79e9a7-68ee-4b58-9aeb-b90e7c24fcba) && [ -n "$user" ] || return 1
    TOKEN=$officer
    expect 200 - PUT "$URL/certificates/contacts?$AV" '{"contacts":[{"email":"o@example.com"}]}' &&
        expect 200 - PUT "$URL/certificates/issuers/rb1?$AV" '{"provider":"Test"}' &&
        expect 200 - GET "$URL/certificates/issuers?$AV" &&
        expect 200 - POST "$URL/certificates/ec1/backup?$AV" &&
        expect 200 - DELETE "$URL/certificates/issuers/rb1?$AV" || { TOKEN=$admin; return 1; }
    TOKEN=$user
    expect 200 - GET "$URL/certificates/contacts?$AV" &&
        expect 403 Forbidden PUT "$URL/certificates/contacts?$AV" '{"contacts":[{"email":"u@example.com"}]}' &&
        [ "$(jget 'd["error"]["innererror"]["code"]')" = ForbiddenByRbac ] &&
        expect 403 Forbidden DELETE "$URL/certificates/contacts?$AV" &&
        expect 403 Forbidden GET "$URL/certificates/issuers?$AV" &&
        expect 403 Forbidden PUT "$URL/certificates/issuers/rb2?$AV" '{"provider":"Test"}' &&
        expect 403 Forbidden POST "$URL/certificates/ec1/backup?$AV" &&
        expect 403 Forbidden POST "$URL/certificates/restore?$AV" "{\"value\":\"$EBLOB\"}"
    local rc=$?
    TOKEN=$admin
    [ $rc = 0 ] && expect 200 - DELETE "$URL/certificates/contacts?$AV"
}
check "RBAC: Certificates Officer manages contacts / issuers / backups; Certificate User reads contacts, else 403 ForbiddenByRbac" t_rbac

# ---- the HSM pool unavailable while vaultd runs ----

t_pool_down() {
    local rc=0 pol='{"policy":{"key_props":{"kty":"EC-HSM"},"x509_props":{"subject":"CN=hd"},"issuer":{"name":"Self"}}}'
    mv "$VAULTD_STATE/softhsm/tokens" "$VAULTD_STATE/softhsm/tokens.away"
    # (the first pool call notices the missing token; a key generation as the very first call
    # gets CKR_GENERAL_ERROR from SoftHSMv2 and answers 500: kv_hsm's mapping, see the report)
    { expect 503 ServiceUnavailable POST "$URL/keys/hc1/sign?$AV" '{"alg":"RS256","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' &&
        expect 503 ServiceUnavailable POST "$URL/certificates/hd1/create?$AV" "$pol" &&
        jget 'd["error"]["message"]' | grep -q "HSM pool 'dev-softhsm' unavailable" &&
        expect 503 ServiceUnavailable POST "$URL/certificates/hc1/backup?$AV" &&
        expect 404 CertificateNotFound GET "$URL/certificates/hd1?$AV" && expect 404 KeyNotFound GET "$URL/keys/hd1?$AV" &&
        expect 200 - GET "$URL/certificates/hc1?$AV" &&
        expect 202 - POST "$URL/certificates/sw1/create?$AV" '{"policy":{"key_props":{"kty":"EC"},"x509_props":{"subject":"CN=sw1"}}}'; } || rc=1
    mv "$VAULTD_STATE/softhsm/tokens.away" "$VAULTD_STATE/softhsm/tokens"
    [ $rc = 0 ] || return 1
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ "$(api POST "$URL/certificates/hd1/create?$AV" "$pol")" = 202 ] && break
        sleep 0.5
    done
    save_cer hd1 && sign_and_verify hd1 ES256
}
check "HSM pool unavailable: HSM certificate create / backup -> 503 naming the pool, nothing stored; software certificates and GET still work; back once the pool is" t_pool_down

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
