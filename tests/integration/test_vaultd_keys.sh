#!/usr/bin/env bash
# test_vaultd_keys.sh - the key lifecycle of vaultd over TLS with curl, openssl and python3:
# import (RSA 2048/3072/4096, EC P-256/P-256K/P-384/P-521, Hsm flag, bad keys), update, RSA
# encrypt/decrypt/wrapKey/unwrapKey (RSA1_5, RSA-OAEP, RSA-OAEP-256, cross-checked with openssl),
# key_ops / enabled / nbf / exp enforcement, soft delete (deleted keys, paging, recover, purge,
# purge protection, retention, background purge), backup / restore (same instance after purge,
# refused by another instance), rotate, rotation policy and automatic rotation. Every refused
# request is checked for its HTTP status, Azure error code and an unchanged state.
source "$(dirname "$0")/lib.sh"

start_vaultd --rotation-interval 1 --dev-short-rotation-policy || {
    not_ok "vaultd starts"
    finish
    exit 1
}
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
URL="https://dev.vault.localhost:$VAULTD_PORT"
DB="$VAULTD_STATE/vaultd.db"
TOKEN=$(get_token)
API="api-version=7.5"
VAULTD2_PID=""
trap 'if [ -n "$VAULTD2_PID" ]; then kill "$VAULTD2_PID" 2>/dev/null; wait "$VAULTD2_PID" 2>/dev/null; fi; kv_cleanup' EXIT

# jget FILE PYEXPR: evaluates PYEXPR with d = the JSON in FILE.
jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# api METHOD PATH [JSON]: vault request on $URL; body to $T_TMP/resp.json, prints the status.
api() {
    local m=$1 p=$2 body=${3:-} sep='?'
    case "$p" in *\?*) sep='&' ;; esac
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "${BASE_URL:-$URL}$p$sep$API"
}
# expect DESC STATUS CODE INNER METHOD PATH [JSON]: the request answers STATUS and (when not
# empty) error.code CODE and error.innererror.code INNER.
expect() {
    local desc=$1 want=$2 code=$3 inner=$4 got gc gi
    shift 4
    got=$(api "$@")
    # one python3 start for both codes (this test makes a few hundred requests)
    { read -r gc; read -r gi; } < <(python3 -c 'import json,sys
try: e = json.load(open(sys.argv[1])).get("error", {})
except Exception: e = {}
print(e.get("code", "")); print((e.get("innererror") or {}).get("code", ""))' "$T_TMP/resp.json" 2>/dev/null)
    if [ "$got" = "$want" ] && { [ -z "$code" ] || [ "$gc" = "$code" ]; } &&
        { [ -z "$inner" ] || [ "$gi" = "$inner" ]; }; then
        ok "$desc"
    else
        not_ok "$desc (wanted $want $code $inner, got $got: $(head -c 400 "$T_TMP/resp.json"))"
    fi
}
# state NAME: a digest of everything observable about a key (live versions with attributes,
# tags, key_ops; deleted state).
state() {
    local s=""
    api GET "/keys/$1/versions?maxresults=25" >/dev/null
    s+=$(cat "$T_TMP/resp.json")
    api GET "/keys/$1" >/dev/null
    s+=$(cat "$T_TMP/resp.json")
    api GET "/deletedkeys/$1" >/dev/null
    s+=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("x",None); print(json.dumps(d,sort_keys=True))' "$T_TMP/resp.json")
    printf '%s' "$s" | sha256sum | cut -d' ' -f1
}
# refused DESC STATUS CODE INNER KEYNAME METHOD PATH [JSON]: expect + the key's state unchanged.
refused() {
    local desc=$1 st=$2 code=$3 inner=$4 name=$5 before after
    shift 5
    before=$(state "$name")
    expect "$desc" "$st" "$code" "$inner" "$@"
    cp "$T_TMP/resp.json" "$T_TMP/refused.json"
    after=$(state "$name")
    cp "$T_TMP/refused.json" "$T_TMP/resp.json"
    if [ "$before" = "$after" ]; then ok "state of $name unchanged after: $desc"; else
        not_ok "state of $name changed after: $desc"; fi
}
b64url() { python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'; }
unb64url() { python3 -c 'import base64,sys; s=sys.stdin.read().strip(); sys.stdout.buffer.write(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))'; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); c.execute(sys.argv[2]); c.commit()' "$DB" "$1"; }

# genkey KIND PARAM PREFIX: PREFIX.jwk (private JWK), PREFIX.pem (private key), PREFIX.pub.pem.
genkey() {
    python3 - "$@" <<'EOF'
import base64, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
kind, param, prefix = sys.argv[1:4]
def b(n, l=None):
    l = l or (n.bit_length() + 7) // 8
    return base64.urlsafe_b64encode(n.to_bytes(l, "big")).decode().rstrip("=")
if kind == "RSA":
    k = rsa.generate_private_key(65537, int(param))
    p, pub = k.private_numbers(), k.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b(pub.n), "e": b(pub.e), "d": b(p.d), "p": b(p.p), "q": b(p.q),
           "dp": b(p.dmp1), "dq": b(p.dmq1), "qi": b(p.iqmp)}
else:
    curve = {"P-256": ec.SECP256R1, "P-256K": ec.SECP256K1, "P-384": ec.SECP384R1,
             "P-521": ec.SECP521R1}[param]()
    k = ec.generate_private_key(curve)
    l = (curve.key_size + 7) // 8
    pub = k.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": param, "x": b(pub.x, l), "y": b(pub.y, l),
           "d": b(k.private_numbers().private_value, l)}
json.dump(jwk, open(prefix + ".jwk", "w"))
open(prefix + ".pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(prefix + ".pub.pem", "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))
EOF
}
# import_body JWKFILE [PYEXPR modifying body b / jwk k]: KeyImport JSON.
import_body() {
    python3 -c 'import json,sys
k=json.load(open(sys.argv[1])); b={"key":k}
exec(sys.argv[2] if len(sys.argv)>2 else "")
print(json.dumps(b))' "$@"
}
# jwk_pub_pem RESPJSON PEM: public key of a KeyBundle as PEM.
jwk_pub_pem() {
    python3 - "$1" "$2" <<'EOF'
import base64, json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
k = json.load(open(sys.argv[1]))["key"]
def i(s): return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
if k["kty"].startswith("RSA"):
    pub = rsa.RSAPublicNumbers(i(k["e"]), i(k["n"])).public_key()
else:
    c = {"P-256": ec.SECP256R1, "P-256K": ec.SECP256K1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[k["crv"]]()
    pub = ec.EllipticCurvePublicNumbers(i(k["x"]), i(k["y"]), c).public_key()
open(sys.argv[2], "wb").write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
EOF
}
sha256_b64() { printf '%s' "$1" | openssl dgst -sha256 -binary | b64url; }

cd "$T_TMP" || exit 1

# ---------------------------------------------------------------- import
for spec in "RSA 2048" "RSA 3072" "RSA 4096" "EC P-256" "EC P-256K" "EC P-384" "EC P-521"; do
    set -- $spec
    genkey "$1" "$2" "k-$2"
    st=$(api PUT "/keys/imp-$2" "$(import_body "k-$2.jwk" 'b["tags"]={"src":"byok"}')")
    if [ "$st" = 200 ] && jget resp.json "d['key']['kty']=='$1' and 'd' not in d['key'] and d['tags']=={'src':'byok'} and d['key']['kid'].startswith('$URL/keys/imp-$2/') and all(d['key'][m]==json.load(open('k-$2.jwk'))[m] for m in (['n','e'] if '$1'=='RSA' else ['crv','x','y']))" | grep -q True; then
        ok "import $1 $2 -> 200 KeyBundle with the same public key, no private parts"
    else
        not_ok "import $1 $2 (got $st: $(head -c 300 resp.json))"
    fi
done
jget resp.json 'd["key"]["kid"]' >/dev/null

# the imported private key is the one used: vault signature verifies under the original key
DG=$(sha256_b64 "imported")
api POST "/keys/imp-2048//sign" "{\"alg\":\"PS256\",\"value\":\"$DG\"}" >/dev/null
jget resp.json 'd["value"]' | unb64url >sig.bin
printf '%s' imported | openssl dgst -sha256 -binary >dg.bin
check "imported RSA key signs; openssl verifies with the original key" \
    openssl pkeyutl -verify -pubin -inkey k-2048.pub.pem -in dg.bin -sigfile sig.bin \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -pkeyopt digest:sha256

st=$(api PUT "/keys/imp-hsm" "$(import_body k-P-256.jwk 'b["Hsm"]=True')")
[ "$st" = 200 ] && jget resp.json 'd["key"]["kty"]' | grep -qx EC-HSM && ok "import with Hsm:true -> EC-HSM" ||
    not_ok "import with Hsm:true ($st $(head -c 200 resp.json))"

st=$(api PUT "/keys/imp-ops" "$(import_body k-2048.jwk 'k["key_ops"]=["sign","verify"]; b["attributes"]={"enabled":True}')")
[ "$st" = 200 ] && jget resp.json 'd["key"]["key_ops"]' | grep -qx "\['sign', 'verify'\]" &&
    ok "import keeps the JWK's key_ops" || not_ok "import key_ops ($st)"

genkey RSA 1024 k-1024
genkey RSA 2048 k-other
genkey EC P-256 k-ecother
refused "import RSA 1024 -> 400 BadParameter" 400 BadParameter "" bad1 PUT /keys/bad1 "$(import_body k-1024.jwk)"
refused "import RSA with another key's d -> 400 BadParameter" 400 BadParameter "" bad2 PUT /keys/bad2 \
    "$(import_body k-2048.jwk 'k["d"]=json.load(open("k-other.jwk"))["d"]')"
refused "import RSA with another key's p,q -> 400 BadParameter" 400 BadParameter "" bad2 PUT /keys/bad2 \
    "$(import_body k-2048.jwk 'o=json.load(open("k-other.jwk")); k.update({m:o[m] for m in ("p","q","dp","dq","qi")})')"
refused "import EC with another key's d -> 400 BadParameter" 400 BadParameter "" bad3 PUT /keys/bad3 \
    "$(import_body k-P-256.jwk 'k["d"]=json.load(open("k-ecother.jwk"))["d"]')"
refused "import EC with x,y of P-384 under crv P-256 -> 400" 400 BadParameter "" bad3 PUT /keys/bad3 \
    "$(import_body k-P-384.jwk 'k["crv"]="P-256"')"
refused "import EC crv P-224 -> 400 BadParameter" 400 BadParameter "" bad3 PUT /keys/bad3 \
    "$(import_body k-P-256.jwk 'k["crv"]="P-224"')"
refused "import public-only RSA JWK -> 400 BadParameter" 400 BadParameter "" bad4 PUT /keys/bad4 \
    "$(import_body k-2048.jwk '[k.pop(m) for m in ("d","p","q","dp","dq","qi")]')"
refused "import without key -> 400 BadParameter" 400 BadParameter "" bad4 PUT /keys/bad4 '{"tags":{}}'
refused "import oct (software vault) -> 400 BadParameter" 400 BadParameter "" bad4 PUT /keys/bad4 \
    '{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}}'
refused "import with Hsm not a boolean -> 400" 400 BadParameter "" bad4 PUT /keys/bad4 \
    "$(import_body k-2048.jwk 'b["Hsm"]="yes"')"
refused "import with 16 tags -> 400 BadParameter" 400 BadParameter "" bad4 PUT /keys/bad4 \
    "$(import_body k-2048.jwk 'b["tags"]={str(i):"v" for i in range(16)}')"
refused "import a new version with bad key_ops -> 400" 400 BadParameter "" imp-2048 PUT /keys/imp-2048 \
    "$(import_body k-other.jwk 'k["key_ops"]=["fly"]')"

st=$(api PUT "/keys/imp-2048" "$(import_body k-other.jwk)")
api GET "/keys/imp-2048/versions" >/dev/null
[ "$st" = 200 ] && jget resp.json 'len(d["value"])' | grep -qx 2 && ok "import on an existing name adds a version" ||
    not_ok "import new version ($st)"

# ---------------------------------------------------------------- update
api POST /keys/upd/create '{"kty":"RSA","key_size":2048,"tags":{"a":"1"}}' >/dev/null
V1=$(jget resp.json 'd["key"]["kid"].rsplit("/",1)[1]')
C1=$(jget resp.json 'd["attributes"]["created"]')
api POST /keys/upd/create '{"kty":"RSA","key_size":2048}' >/dev/null
V2=$(jget resp.json 'd["key"]["kid"].rsplit("/",1)[1]')
sleep 1
st=$(api PATCH "/keys/upd/" '{"key_ops":["sign","verify","encrypt"],"attributes":{"exp":4102444800,"nbf":1000},"tags":{"b":"2","c":"3"}}')
[ "$st" = 200 ] && jget resp.json "d['key']['kid'].endswith('$V2') and d['key']['key_ops']==['sign','verify','encrypt'] and d['attributes']['exp']==4102444800 and d['attributes']['nbf']==1000 and d['tags']=={'b':'2','c':'3'} and d['attributes']['updated']>d['attributes']['created'] and d['attributes']['enabled']" | grep -q True &&
    ok "PATCH /keys/{n}/ updates the latest version (key_ops, nbf, exp, tags, updated)" ||
    not_ok "PATCH latest ($st $(head -c 300 resp.json))"
st=$(api PATCH "/keys/upd/$V1" '{"attributes":{"enabled":false}}')
api GET "/keys/upd/$V1" >/dev/null
jget resp.json "d['attributes']['enabled']==False and d['tags']=={'a':'1'} and d['attributes']['created']==$C1" | grep -q True &&
    ok "PATCH /keys/{n}/{v} updates only that version (others keep their tags)" || not_ok "PATCH version ($st)"
api GET "/keys/upd" >/dev/null
jget resp.json 'd["attributes"]["enabled"] and d["tags"]=={"b":"2","c":"3"}' | grep -q True &&
    ok "latest version untouched by the versioned PATCH" || not_ok "latest after versioned PATCH"
refused "PATCH with 16 tags -> 400 BadParameter" 400 BadParameter "" upd PATCH /keys/upd/ \
    "{\"tags\":$(python3 -c 'import json; print(json.dumps({str(i):"v" for i in range(16)}))')}"
refused "PATCH with a 257-character tag value -> 400 BadParameter" 400 BadParameter "" upd PATCH /keys/upd/ \
    "{\"tags\":{\"t\":\"$(printf 'x%.0s' $(seq 257))\"}}"
refused "PATCH with unknown key_ops -> 400 BadParameter" 400 BadParameter "" upd PATCH /keys/upd/ '{"key_ops":["fly"]}'
refused "PATCH with enabled not a boolean -> 400 BadParameter" 400 BadParameter "" upd PATCH /keys/upd/ '{"attributes":{"enabled":"no"}}'
refused "PATCH unknown key -> 404 KeyNotFound" 404 KeyNotFound "" upd PATCH /keys/nosuch/ '{"tags":{}}'
refused "PATCH unknown version -> 404 KeyNotFound" 404 KeyNotFound "" upd PATCH /keys/upd/0123456789abcdef0123456789abcdef '{"tags":{}}'
st=$(api PATCH "/keys/upd/" '{"tags":{}}')
[ "$st" = 200 ] && jget resp.json '"tags" not in d' | grep -q True && ok "PATCH tags {} clears the tags" || not_ok "PATCH clear tags ($st)"

# ---------------------------------------------------------------- encrypt / decrypt / wrap / unwrap
api GET /keys/imp-2048 >/dev/null
jwk_pub_pem resp.json imp.pub.pem
# the latest imp-2048 version is k-other
PT="hello vault $(date +%s)"
PT64=$(printf '%s' "$PT" | b64url)
for alg in RSA1_5 RSA-OAEP RSA-OAEP-256; do
    st1=$(api POST "/keys/imp-2048//encrypt" "{\"alg\":\"$alg\",\"value\":\"$PT64\"}")
    CT=$(jget resp.json 'd.get("value","")')
    kid=$(jget resp.json 'd.get("kid","")')
    st2=$(api POST "/keys/imp-2048//decrypt" "{\"alg\":\"$alg\",\"value\":\"$CT\"}")
    [ "$st1" = 200 ] && [ "$st2" = 200 ] && [ "$(jget resp.json 'd["value"]' | unb64url)" = "$PT" ] &&
        [[ "$kid" == "$URL/keys/imp-2048/"* ]] &&
        ok "$alg: encrypt -> decrypt round trip ({kid, value})" || not_ok "$alg round trip ($st1 $st2)"
    st1=$(api POST "/keys/imp-2048/wrapkey" "{\"alg\":\"$alg\",\"value\":\"$PT64\"}")
    CT=$(jget resp.json 'd.get("value","")')
    st2=$(api POST "/keys/imp-2048/unwrapkey" "{\"alg\":\"$alg\",\"value\":\"$CT\"}")
    [ "$st1" = 200 ] && [ "$st2" = 200 ] && [ "$(jget resp.json 'd["value"]' | unb64url)" = "$PT" ] &&
        ok "$alg: wrapkey -> unwrapkey round trip" || not_ok "$alg wrap round trip ($st1 $st2)"
done
printf '%s' "$PT" >pt.bin
openssl pkeyutl -encrypt -pubin -inkey imp.pub.pem -in pt.bin -out ct.bin -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
st=$(api POST "/keys/imp-2048/decrypt" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(b64url <ct.bin)\"}")
[ "$st" = 200 ] && [ "$(jget resp.json 'd["value"]' | unb64url)" = "$PT" ] &&
    ok "RSA-OAEP-256 ciphertext from openssl pkeyutl (JWK public key) decrypts via the vault" ||
    not_ok "openssl OAEP-256 -> vault decrypt ($st $(head -c 200 resp.json))"
openssl pkeyutl -encrypt -pubin -inkey imp.pub.pem -in pt.bin -out ct1.bin -pkeyopt rsa_padding_mode:oaep
st=$(api POST "/keys/imp-2048/decrypt" "{\"alg\":\"RSA-OAEP\",\"value\":\"$(b64url <ct1.bin)\"}")
[ "$st" = 200 ] && [ "$(jget resp.json 'd["value"]' | unb64url)" = "$PT" ] &&
    ok "RSA-OAEP (SHA-1) ciphertext from openssl decrypts via the vault" || not_ok "openssl OAEP -> vault ($st)"
api POST "/keys/imp-2048/encrypt" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$PT64\"}" >/dev/null
jget resp.json 'd["value"]' | unb64url >ct2.bin
check "vault RSA-OAEP-256 ciphertext decrypts with openssl and the imported private key" \
    bash -c "openssl pkeyutl -decrypt -inkey k-other.pem -in ct2.bin -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 | cmp - pt.bin"
IMPV1=$(api GET "/keys/imp-2048/versions" >/dev/null; jget resp.json 'd["value"][0]["kid"].rsplit("/",1)[1]')
api POST "/keys/imp-2048/$IMPV1/encrypt" "{\"alg\":\"RSA1_5\",\"value\":\"$PT64\"}" >/dev/null
jget resp.json 'd["value"]' | unb64url >ct3.bin
check "versioned encrypt uses that version (openssl decrypts with the first imported key)" \
    bash -c "openssl pkeyutl -decrypt -inkey k-2048.pem -in ct3.bin | cmp - pt.bin"

refused "encrypt with RSA-OAEP on an EC key -> 400 BadParameter" 400 BadParameter "" imp-P-256 \
    POST /keys/imp-P-256//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
refused "encrypt with alg ES256 on an RSA key -> 400 BadParameter" 400 BadParameter "" imp-2048 \
    POST /keys/imp-2048//encrypt "{\"alg\":\"ES256\",\"value\":\"$PT64\"}"
refused "encrypt with alg A256GCM on an RSA key -> 400 BadParameter" 400 BadParameter "" imp-2048 \
    POST /keys/imp-2048//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$PT64\"}"
refused "encrypt 250 bytes with RSA-OAEP-256 / 2048 -> 400 BadParameter" 400 BadParameter "" imp-2048 \
    POST /keys/imp-2048//encrypt "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(head -c 250 /dev/zero | b64url)\"}"
refused "decrypt garbage -> 400 BadParameter" 400 BadParameter "" imp-2048 \
    POST /keys/imp-2048//decrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$(head -c 256 /dev/urandom | b64url)\"}"
refused "encrypt without value -> 400 BadParameter" 400 BadParameter "" imp-2048 \
    POST /keys/imp-2048//encrypt '{"alg":"RSA-OAEP"}'
refused "encrypt with an unknown key -> 404 KeyNotFound" 404 KeyNotFound "" imp-2048 \
    POST /keys/nosuch//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
refused "decrypt with an unknown version -> 404 KeyNotFound" 404 KeyNotFound "" imp-2048 \
    POST /keys/imp-2048/0123456789abcdef0123456789abcdef/decrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"

# ---------------------------------------------------------------- enforcement
DG=$(sha256_b64 "enforce")
api POST /keys/ops/create '{"kty":"RSA","key_ops":["sign","verify"]}' >/dev/null
refused "encrypt on a key without encrypt in key_ops -> 403 Forbidden" 403 Forbidden KeyOperationForbidden ops \
    POST /keys/ops//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
jget resp.json 'd["error"]["message"]' | grep -qx "Operation encrypt is not permitted on this key." &&
    ok "message: Operation encrypt is not permitted on this key." || not_ok "key_ops message ($(head -c 200 resp.json))"
for op in decrypt wrapkey unwrapkey; do
    refused "$op without it in key_ops -> 403 Forbidden" 403 Forbidden KeyOperationForbidden ops \
        POST "/keys/ops//$op" "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
done
api POST /keys/ops2/create '{"kty":"RSA","key_ops":["encrypt","decrypt"]}' >/dev/null
refused "sign without sign in key_ops -> 403 Forbidden" 403 Forbidden KeyOperationForbidden ops2 \
    POST /keys/ops2//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}"
refused "verify without verify in key_ops -> 403 Forbidden" 403 Forbidden KeyOperationForbidden ops2 \
    POST /keys/ops2//verify "{\"alg\":\"RS256\",\"digest\":\"$DG\",\"value\":\"AAAA\"}"

api POST /keys/dis/create '{"kty":"RSA"}' >/dev/null
api POST /keys/dis//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}" >/dev/null
SIG=$(jget resp.json 'd["value"]')
api POST /keys/dis//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}" >/dev/null
DCT=$(jget resp.json 'd["value"]')
api PATCH /keys/dis/ '{"attributes":{"enabled":false}}' >/dev/null
for op in encrypt decrypt wrapkey unwrapkey; do
    refused "$op on a disabled key -> 403 Forbidden" 403 Forbidden "" dis \
        POST "/keys/dis//$op" "{\"alg\":\"RSA-OAEP\",\"value\":\"$DCT\"}"
done
refused "sign on a disabled key -> 403 Forbidden" 403 Forbidden "" dis POST /keys/dis//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}"
refused "verify on a disabled key -> 403 Forbidden" 403 Forbidden "" dis POST /keys/dis//verify \
    "{\"alg\":\"RS256\",\"digest\":\"$DG\",\"value\":\"$SIG\"}"

api POST /keys/exp/create '{"kty":"RSA"}' >/dev/null
api POST /keys/exp//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}" >/dev/null
SIG=$(jget resp.json 'd["value"]')
api POST /keys/exp//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}" >/dev/null
ECT=$(jget resp.json 'd["value"]')
api POST /keys/exp//wrapkey "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$PT64\"}" >/dev/null
EWK=$(jget resp.json 'd["value"]')
api PATCH /keys/exp/ "{\"attributes\":{\"exp\":$(($(date +%s) - 10))}}" >/dev/null
refused "encrypt on an expired key -> 403 Forbidden" 403 Forbidden "" exp POST /keys/exp//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
refused "wrapkey on an expired key -> 403 Forbidden" 403 Forbidden "" exp POST /keys/exp//wrapkey "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"
refused "sign on an expired key -> 403 Forbidden" 403 Forbidden "" exp POST /keys/exp//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}"
st=$(api POST /keys/exp//decrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$ECT\"}")
[ "$st" = 200 ] && [ "$(jget resp.json 'd["value"]' | unb64url)" = "$PT" ] && ok "decrypt still works on an expired key" || not_ok "decrypt expired ($st)"
st=$(api POST /keys/exp//unwrapkey "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$EWK\"}")
[ "$st" = 200 ] && ok "unwrapkey still works on an expired key" || not_ok "unwrap expired ($st)"
st=$(api POST /keys/exp//verify "{\"alg\":\"RS256\",\"digest\":\"$DG\",\"value\":\"$SIG\"}")
[ "$st" = 200 ] && jget resp.json 'd["value"]' | grep -qx True && ok "verify still works on an expired key" || not_ok "verify expired ($st)"
api POST /keys/nbf/create "{\"kty\":\"RSA\",\"attributes\":{\"nbf\":$(($(date +%s) + 3600))}}" >/dev/null
refused "sign before nbf -> 403 Forbidden" 403 Forbidden "" nbf POST /keys/nbf//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}"
refused "encrypt before nbf -> 403 Forbidden" 403 Forbidden "" nbf POST /keys/nbf//encrypt "{\"alg\":\"RSA-OAEP\",\"value\":\"$PT64\"}"

# ---------------------------------------------------------------- soft delete
api POST /keys/del/create '{"kty":"EC","crv":"P-256","tags":{"t":"1"}}' >/dev/null
api POST /keys/del/create '{"kty":"EC","crv":"P-256"}' >/dev/null
DELKID=$(jget resp.json 'd["key"]["kid"]')
st=$(api DELETE /keys/del)
[ "$st" = 200 ] && jget resp.json "d['recoveryId']=='$URL/deletedkeys/del' and d['key']['kid']=='$DELKID' and d['scheduledPurgeDate']==d['deletedDate']+90*86400 and abs(d['deletedDate']-$(date +%s))<30 and d['attributes']['recoveryLevel']=='Recoverable+Purgeable' and d['attributes']['recoverableDays']==90" | grep -q True &&
    ok "DELETE /keys/{n} -> 200 DeletedKeyBundle (recoveryId, deletedDate, scheduledPurgeDate = +90 d)" ||
    not_ok "delete ($st $(head -c 300 resp.json))"
expect "deleted key: GET -> 404 KeyNotFound" 404 KeyNotFound "" GET /keys/del
expect "deleted key: GET version -> 404 KeyNotFound" 404 KeyNotFound "" GET "/keys/del/${DELKID##*/}"
expect "deleted key: versions -> 404 KeyNotFound" 404 KeyNotFound "" GET /keys/del/versions
expect "deleted key: sign -> 404 KeyNotFound" 404 KeyNotFound "" POST /keys/del//sign "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
expect "deleted key: update -> 404 KeyNotFound" 404 KeyNotFound "" PATCH /keys/del/ '{"tags":{}}'
expect "deleted key: delete again -> 404 KeyNotFound" 404 KeyNotFound "" DELETE /keys/del
api GET "/keys?maxresults=25" >/dev/null
python3 - "$T_TMP/resp.json" <<'EOF' && ok "deleted key not in GET /keys" || not_ok "deleted key listed"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(any(i["kid"].endswith("/keys/del") for i in d["value"]))
EOF
st=$(api GET /deletedkeys/del)
[ "$st" = 200 ] && jget resp.json "d['key']['kid']=='$DELKID' and d['recoveryId'].endswith('/deletedkeys/del')" | grep -q True &&
    ok "GET /deletedkeys/{n} -> 200 DeletedKeyBundle" || not_ok "get deleted ($st)"
refused "create on a soft-deleted name -> 409 ObjectIsDeletedButRecoverable" 409 Conflict ObjectIsDeletedButRecoverable del \
    POST /keys/del/create '{"kty":"EC"}'
refused "import on a soft-deleted name -> 409 ObjectIsDeletedButRecoverable" 409 Conflict ObjectIsDeletedButRecoverable del \
    PUT /keys/del "$(import_body k-P-256.jwk)"
expect "GET /deletedkeys/{unknown} -> 404 KeyNotFound" 404 KeyNotFound "" GET /deletedkeys/nosuch
jget resp.json 'd["error"]["message"]' | grep -q "Deleted Key not found: nosuch" && ok "message: Deleted Key not found" || not_ok "deleted 404 message"
expect "recover unknown -> 404 KeyNotFound" 404 KeyNotFound "" POST /deletedkeys/nosuch/recover
expect "purge unknown -> 404 KeyNotFound" 404 KeyNotFound "" DELETE /deletedkeys/nosuch
expect "DELETE /keys/{unknown} -> 404 KeyNotFound" 404 KeyNotFound "" DELETE /keys/nosuch

for n in del-a del-b del-c; do api POST "/keys/$n/create" '{"kty":"EC"}' >/dev/null; api DELETE "/keys/$n" >/dev/null; done
NAMES=""
LINK="/deletedkeys?maxresults=1"
PAGES=0
while [ -n "$LINK" ] && [ $PAGES -lt 10 ]; do
    st=$(api GET "$LINK")
    [ "$st" = 200 ] || break
    NAMES+=$(jget resp.json '" ".join(i["kid"].rsplit("/",1)[1] for i in d["value"])')" "
    jget resp.json 'all("recoveryId" in i and "deletedDate" in i and "scheduledPurgeDate" in i and "/keys/" in i["kid"] for i in d["value"])' | grep -q True || NAMES+="BAD "
    LINK=$(jget resp.json 'd.get("nextLink") or ""')
    LINK=${LINK#"$URL"}
    LINK=${LINK/api-version=7.5&/}
    PAGES=$((PAGES + 1))
done
[ "$NAMES" = "del del-a del-b del-c " ] && [ $PAGES = 4 ] &&
    ok "GET /deletedkeys pages with maxresults=1 and nextLink (DeletedKeyItems)" || not_ok "deleted paging: '$NAMES' in $PAGES pages"
expect "GET /deletedkeys?maxresults=26 -> 400 BadParameter" 400 BadParameter "" GET "/deletedkeys?maxresults=26"

st=$(api POST /deletedkeys/del/recover)
[ "$st" = 200 ] && jget resp.json "d['key']['kid']=='$DELKID' and 'recoveryId' not in d" | grep -q True &&
    ok "POST /deletedkeys/{n}/recover -> 200 KeyBundle" || not_ok "recover ($st)"
api GET /keys/del/versions >/dev/null
jget resp.json 'len(d["value"])' | grep -qx 2 && ok "recovered key has all its versions" || not_ok "recovered versions"
st=$(api POST /keys/del//sign "{\"alg\":\"ES256\",\"value\":\"$DG\"}")
[ "$st" = 200 ] && ok "recovered key signs" || not_ok "recovered sign ($st)"
expect "GET /deletedkeys/{n} after recover -> 404" 404 KeyNotFound "" GET /deletedkeys/del

# backup of del (2 versions) for the restore-after-purge check
api POST /keys/del/backup >/dev/null
DELBLOB=$(jget resp.json 'd["value"]')
api GET /keys/del/versions >/dev/null
DELVERS=$(jget resp.json 'json.dumps(d["value"], sort_keys=True)')
api DELETE /keys/del >/dev/null
refused "restore on a soft-deleted name -> 409 ObjectIsDeletedButRecoverable" 409 Conflict ObjectIsDeletedButRecoverable del \
    POST /keys/restore "{\"value\":\"$DELBLOB\"}"
st=$(api DELETE /deletedkeys/del)
[ "$st" = 204 ] && [ ! -s resp.json ] && ok "DELETE /deletedkeys/{n} purge -> 204, empty body" || not_ok "purge ($st)"
expect "purged key: GET /deletedkeys/{n} -> 404" 404 KeyNotFound "" GET /deletedkeys/del
expect "purged key: purge again -> 404" 404 KeyNotFound "" DELETE /deletedkeys/del
expect "purged key: recover -> 404" 404 KeyNotFound "" POST /deletedkeys/del/recover
st=$(api POST /keys/restore "{\"value\":\"$DELBLOB\"}")
[ "$st" = 200 ] && jget resp.json "d['key']['kid']=='$DELKID' and d['tags']=={'t':'1'} if False else d['key']['kid']=='$DELKID'" | grep -q True &&
    ok "restore after purge in the same instance -> 200 KeyBundle (latest, same kid)" || not_ok "restore after purge ($st $(head -c 300 resp.json))"
api GET /keys/del/versions >/dev/null
[ "$(jget resp.json 'json.dumps(d["value"], sort_keys=True)')" = "$DELVERS" ] &&
    ok "restored versions, ids, attributes and tags are as backed up" || not_ok "restored versions differ"
st=$(api POST /keys/del//sign "{\"alg\":\"ES256\",\"value\":\"$DG\"}")
[ "$st" = 200 ] && ok "restored key signs" || not_ok "restored sign ($st)"
st=$(api POST /keys/del/create '{"kty":"EC"}')
[ "$st" = 200 ] && ok "create on a purged-then-restored name adds a version" || not_ok "create after restore ($st)"

# ---------------------------------------------------------------- backup / restore errors
api POST /keys/bk/create '{"kty":"RSA","tags":{"x":"y"}}' >/dev/null
api POST /keys/bk/backup >/dev/null
BLOB=$(jget resp.json 'd["value"]')
[ ${#BLOB} -gt 100 ] && ok "POST /keys/{n}/backup -> {value: blob}" || not_ok "backup"
printf '%s' "$BLOB" | unb64url >blob.bin
if grep -q '"versions"\|BEGIN\|wrapped' blob.bin; then not_ok "backup blob is opaque"; else ok "backup blob is opaque (encrypted)"; fi
refused "restore while the key exists -> 409 Conflict" 409 Conflict "" bk POST /keys/restore "{\"value\":\"$BLOB\"}"
TAMPER=$(python3 -c 'import base64,sys; s=sys.argv[1]; b=bytearray(base64.urlsafe_b64decode(s+"="*(-len(s)%4))); b[40]^=1; print(base64.urlsafe_b64encode(bytes(b)).decode().rstrip("="))' "$BLOB")
refused "restore a tampered blob -> 400 BadParameter" 400 BadParameter "" bk POST /keys/restore "{\"value\":\"$TAMPER\"}"
refused "restore garbage -> 400 BadParameter" 400 BadParameter "" bk POST /keys/restore '{"value":"bm90IGEgYmFja3Vw"}'
refused "restore without value -> 400 BadParameter" 400 BadParameter "" bk POST /keys/restore '{}'
expect "backup unknown key -> 404 KeyNotFound" 404 KeyNotFound "" POST /keys/nosuch/backup

# another vault of the same instance (admin API): restore works there; its own retention and
# purge protection apply
if [ "$(BASE_URL="https://localhost:$VAULTD_PORT" API="api-version=2023-07-01" api PUT /admin/vaults/other \
    '{"properties":{"softDeleteRetentionInDays":7,"enablePurgeProtection":true}}')" = 201 ]; then
    OURL="https://other.vault.localhost:$VAULTD_PORT"
    st=$(BASE_URL=$OURL api POST /keys/restore "{\"value\":\"$BLOB\"}")
    [ "$st" = 200 ] && jget resp.json "d['key']['kid'].startswith('$OURL/keys/bk/') and d['tags']=={'x':'y'} and d['attributes']['recoveryLevel']=='CustomizedRecoverable' and d['attributes']['recoverableDays']==7" | grep -q True &&
        ok "backup restored into another vault of the same instance (its recovery settings)" ||
        not_ok "restore into another vault ($st $(head -c 300 resp.json))"
    st=$(BASE_URL=$OURL api POST /keys/bk//sign "{\"alg\":\"RS256\",\"value\":\"$DG\"}")
    [ "$st" = 200 ] && ok "key restored into the other vault signs" || not_ok "sign in other vault ($st)"
    st=$(BASE_URL=$OURL api DELETE /keys/bk)
    [ "$st" = 200 ] && jget resp.json 'd["scheduledPurgeDate"]==d["deletedDate"]+7*86400' | grep -q True &&
        ok "delete in a 7-day vault: scheduledPurgeDate = deletedDate + 7 d" || not_ok "other vault delete ($st)"
    st=$(BASE_URL=$OURL api DELETE /deletedkeys/bk)
    code=$(jget resp.json 'd["error"]["code"]' 2>/dev/null)
    [ "$st" = 403 ] && [ "$code" = Forbidden ] && ok "purge in a purge-protected vault -> 403 Forbidden" ||
        not_ok "purge-protected vault purge ($st)"
    st=$(BASE_URL=$OURL api GET /deletedkeys/bk)
    [ "$st" = 200 ] && ok "refused purge left the deleted key in place" || not_ok "deleted key after refused purge ($st)"
    expect "the dev vault's key is unaffected by the other vault" 200 "" "" GET /keys/bk
else
    not_ok "admin API: PUT /admin/vaults/other -> 201 (--dev always has the admin API) ($(head -c 200 resp.json))"
fi

# a second vaultd instance (its own state dir, own KEK) refuses the blob
P2=$(free_port)
"$VAULTD" --dev --state "$T_TMP/state2" --listen "127.0.0.1:$P2" >>"$T_TMP/vaultd2.log" 2>&1 &
VAULTD2_PID=$!
for _ in $(seq 1 100); do
    [ -f "$T_TMP/state2/client.conf" ] && curl -s -o /dev/null --cacert "$T_TMP/state2/ca.pem" "https://localhost:$P2/healthz" && break
    sleep 0.1
done
SAVE_CONF=$KVAULT_CONF SAVE_STATE=$VAULTD_STATE SAVE_TOKEN=$TOKEN SAVE_CA=$CA
KVAULT_CONF="$T_TMP/state2/client.conf" VAULTD_STATE="$T_TMP/state2" TOKEN=$(get_token)
CA="$T_TMP/state2/ca.pem"
BASE_URL="https://dev.vault.localhost:$P2"
api GET "/keys" >/dev/null
BEFORE2=$(cat resp.json)
st=$(api POST /keys/restore "{\"value\":\"$BLOB\"}")
code=$(jget resp.json 'd["error"]["code"]' 2>/dev/null)
[ "$st" = 400 ] && [ "$code" = BadParameter ] && jget resp.json 'd["error"]["message"]' | grep -q "instance" &&
    ok "backup restored into a second vaultd instance -> 400 BadParameter (clear message)" ||
    not_ok "restore into another instance ($st $(head -c 300 resp.json))"
api GET "/keys" >/dev/null
[ "$(cat resp.json)" = "$BEFORE2" ] && ok "second instance unchanged after the refused restore" || not_ok "second instance changed"
api POST /keys/pol/create '{"kty":"EC"}' >/dev/null
expect "instance without the dev option: timeAfterCreate P6D -> 400 BadParameter" 400 BadParameter "" \
    PUT /keys/pol/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P6D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}'
expect "instance without the dev option: timeAfterCreate PT5S -> 400 BadParameter" 400 BadParameter "" \
    PUT /keys/pol/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT5S"},"action":{"type":"Rotate"}}]}'
expect "instance without the dev option: timeAfterCreate P7D, expiry P90D -> 200" 200 "" "" \
    PUT /keys/pol/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}'
expect "rotation 7 days before an expiry of P10D -> 400 (needs 7 days' margin)" 400 BadParameter "" \
    PUT /keys/pol/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P10D"}}'
kill "$VAULTD2_PID" 2>/dev/null; wait "$VAULTD2_PID" 2>/dev/null; VAULTD2_PID=""
unset BASE_URL
KVAULT_CONF=$SAVE_CONF VAULTD_STATE=$SAVE_STATE TOKEN=$SAVE_TOKEN CA=$SAVE_CA

# ---------------------------------------------------------------- purge protection, retention, sweep
sql "UPDATE vaults SET retention_days = 7, purge_protection = 1 WHERE name = 'dev'"
api POST /keys/pp/create '{"kty":"EC"}' >/dev/null
jget resp.json 'd["attributes"]["recoveryLevel"]=="CustomizedRecoverable" and d["attributes"]["recoverableDays"]==7' | grep -q True &&
    ok "retention 7 d + purge protection: recoveryLevel CustomizedRecoverable, recoverableDays 7" || not_ok "recoveryLevel ($(head -c 300 resp.json))"
st=$(api DELETE /keys/pp)
[ "$st" = 200 ] && jget resp.json 'd["scheduledPurgeDate"]==d["deletedDate"]+7*86400' | grep -q True &&
    ok "delete with retention 7 d: scheduledPurgeDate = deletedDate + 7 d" || not_ok "retention 7 ($st)"
refused "purge under purge protection -> 403 Forbidden" 403 Forbidden "" pp DELETE /deletedkeys/pp
jget resp.json 'd["error"]["message"]' | grep -q 'purge protection is enabled' && ok "purge-protection message" || not_ok "purge-protection message"
sql "UPDATE vaults SET retention_days = 90, purge_protection = 1 WHERE name = 'dev'"
api GET /keys/bk >/dev/null
jget resp.json 'd["attributes"]["recoveryLevel"]' | grep -qx Recoverable && ok "purge protection, 90 d: recoveryLevel Recoverable" || not_ok "Recoverable"
sql "UPDATE vaults SET retention_days = 30, purge_protection = 0 WHERE name = 'dev'"
api GET /keys/bk >/dev/null
jget resp.json 'd["attributes"]["recoveryLevel"]=="CustomizedRecoverable+Purgeable" and d["attributes"]["recoverableDays"]==30' | grep -q True &&
    ok "30 d without purge protection: CustomizedRecoverable+Purgeable" || not_ok "CustomizedRecoverable+Purgeable"
sql "UPDATE vaults SET retention_days = 90, purge_protection = 0 WHERE name = 'dev'"
# the background sweep purges a deleted key whose scheduled purge date has passed
sql "UPDATE keys SET scheduled_purge_date = 1 WHERE name = 'pp' AND deleted = 1"
for _ in $(seq 1 40); do
    [ "$(api GET /deletedkeys/pp)" = 404 ] && break
    sleep 0.25
done
expect "background sweep purges a deleted key past its scheduledPurgeDate" 404 KeyNotFound "" GET /deletedkeys/pp

# ---------------------------------------------------------------- rotate and rotation policy
api POST /keys/rot/create '{"kty":"RSA","key_size":3072,"key_ops":["sign","verify"],"tags":{"r":"1"}}' >/dev/null
ROT1=$(jget resp.json 'd["key"]["kid"]')
N1=$(jget resp.json 'len(d["key"]["n"])')
st=$(api POST /keys/rot/rotate)
[ "$st" = 200 ] && jget resp.json "d['key']['kid']!='$ROT1' and d['key']['kid'].startswith('$URL/keys/rot/') and d['key']['kty']=='RSA' and len(d['key']['n'])==$N1 and d['key']['key_ops']==['sign','verify'] and d['tags']=={'r':'1'}" | grep -q True &&
    ok "POST /keys/{n}/rotate -> 200, new version, same size, key_ops, tags" || not_ok "rotate ($st $(head -c 300 resp.json))"
ROT2=$(jget resp.json 'd["key"]["kid"]')
api GET /keys/rot >/dev/null
[ "$(jget resp.json 'd["key"]["kid"]')" = "$ROT2" ] && ok "rotated version is the latest" || not_ok "latest after rotate"
api POST /keys/rotec/create '{"kty":"EC","crv":"P-384"}' >/dev/null
st=$(api POST /keys/rotec/rotate)
[ "$st" = 200 ] && jget resp.json 'd["key"]["crv"]' | grep -qx P-384 && ok "rotate keeps the EC curve" || not_ok "rotate EC ($st)"
expect "rotate unknown key -> 404 KeyNotFound" 404 KeyNotFound "" POST /keys/nosuch/rotate
# an HSM-protected key (when vaultd has its dev HSM pool) rotates inside the pool
if [ "$(api POST /keys/rothsm/create '{"kty":"EC-HSM","crv":"P-256"}')" = 200 ]; then
    HK1=$(jget resp.json 'd["key"]["kid"]')
    st=$(api POST /keys/rothsm/rotate)
    HK2=$(jget resp.json 'd["key"].get("kid","")' 2>/dev/null)
    st2=$(api POST /keys/rothsm//sign "{\"alg\":\"ES256\",\"value\":\"$(sha256_b64 hsm)\"}")
    [ "$st" = 200 ] && [ "$HK2" != "$HK1" ] && [ "$st2" = 200 ] &&
        jget resp.json "d['kid']=='$HK2'" | grep -q True &&
        ok "rotate an EC-HSM key: new version in the pool, signs" || not_ok "rotate HSM ($st $st2 $(head -c 300 resp.json))"
else
    not_ok "create EC-HSM key rothsm for the HSM rotation (--dev always has the HSM pool) ($(head -c 200 resp.json))"
fi

st=$(api GET /keys/rot/rotationpolicy)
[ "$st" = 200 ] && jget resp.json "d['id']=='$URL/keys/rot/rotationpolicy' and d['lifetimeActions']==[{'trigger':{'timeBeforeExpiry':'P30D'},'action':{'type':'Notify'}}]" | grep -q True &&
    ok "GET rotationpolicy without a policy -> Azure's default (Notify P30D before expiry)" || not_ok "default policy ($st $(head -c 300 resp.json))"
POL='{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}},{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}],"attributes":{"expiryTime":"P2Y"}}'
st=$(api PUT /keys/rot/rotationpolicy "$POL")
[ "$st" = 200 ] && jget resp.json "d['id']=='$URL/keys/rot/rotationpolicy' and d['attributes']['expiryTime']=='P2Y' and d['attributes']['created']>0 and d['attributes']['updated']>0 and len(d['lifetimeActions'])==2" | grep -q True &&
    ok "PUT rotationpolicy -> 200 KeyRotationPolicy (id, expiryTime, created, updated)" || not_ok "put policy ($st $(head -c 300 resp.json))"
st=$(api GET /keys/rot/rotationpolicy)
[ "$st" = 200 ] && jget resp.json "d['lifetimeActions'][0]=={'trigger':{'timeAfterCreate':'P90D'},'action':{'type':'Rotate'}}" | grep -q True &&
    ok "GET rotationpolicy returns the stored policy" || not_ok "get policy ($st)"
polstate() { api GET /keys/rot/rotationpolicy >/dev/null; sha256sum <resp.json; }
PB=$(polstate)
expect "policy expiryTime P27D -> 400 BadParameter" 400 BadParameter "" PUT /keys/rot/rotationpolicy '{"lifetimeActions":[],"attributes":{"expiryTime":"P27D"}}'
expect "policy bad duration P1X -> 400 BadParameter" 400 BadParameter "" PUT /keys/rot/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P1X"},"action":{"type":"Rotate"}}]}'
expect "policy action type Explode -> 400 BadParameter" 400 BadParameter "" PUT /keys/rot/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Explode"}}]}'
expect "policy with two Rotate actions -> 400 BadParameter" 400 BadParameter "" PUT /keys/rot/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}},{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}]}'
expect "policy trigger without a duration -> 400 BadParameter" 400 BadParameter "" PUT /keys/rot/rotationpolicy '{"lifetimeActions":[{"trigger":{},"action":{"type":"Rotate"}}]}'
[ "$(polstate)" = "$PB" ] && ok "policy unchanged after the refused PUTs" || not_ok "policy changed by refused PUTs"
expect "rotationpolicy of an unknown key -> 404 KeyNotFound" 404 KeyNotFound "" GET /keys/nosuch/rotationpolicy
expect "PUT rotationpolicy of an unknown key -> 404 KeyNotFound" 404 KeyNotFound "" PUT /keys/nosuch/rotationpolicy "$POL"

# automatic rotation (dev option allows PT3S; the timer runs every second)
api POST /keys/auto/create '{"kty":"EC","tags":{"a":"b"}}' >/dev/null
st=$(api PUT /keys/auto/rotationpolicy '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT3S"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P28D"}}')
[ "$st" = 200 ] && ok "PUT policy timeAfterCreate PT3S accepted with --dev-short-rotation-policy" || not_ok "short policy ($st $(head -c 300 resp.json))"
for _ in $(seq 1 40); do
    api GET /keys/auto/versions >/dev/null
    [ "$(jget resp.json 'len(d["value"])')" -ge 2 ] && break
    sleep 0.25
done
api GET /keys/auto >/dev/null
jget resp.json 'd["tags"]=={"a":"b"} and d["attributes"]["exp"]-d["attributes"]["created"]==28*86400' | grep -q True &&
    api GET /keys/auto/versions >/dev/null && [ "$(jget resp.json 'len(d["value"])')" -ge 2 ] &&
    ok "the rotation timer rotated the key (new version, exp = created + expiryTime, tags kept)" ||
    not_ok "automatic rotation ($(head -c 300 resp.json))"

# ---------------------------------------------------------------- certificate-managed keys
if [ "$(api POST /certificates/mc/create '{"policy":{"key_props":{"kty":"RSA","key_size":2048},"x509_props":{"subject":"CN=mc"},"issuer":{"name":"Self"}}}')" = 202 ]; then
    for _ in $(seq 1 40); do [ "$(api GET /keys/mc)" = 200 ] && break; sleep 0.25; done
    refused "DELETE /keys/{n} of a certificate's key -> 403 Forbidden" 403 Forbidden "" mc DELETE /keys/mc
    refused "rotate a certificate's key -> 403 Forbidden" 403 Forbidden "" mc POST /keys/mc/rotate
else
    not_ok "create certificate mc for the certificate-managed key checks -> 202 ($(head -c 200 resp.json))"
fi

# ---------------------------------------------------------------- restart keeps everything
stop_vaultd
start_vaultd --rotation-interval 1 || { not_ok "vaultd restarts"; finish; exit 1; }
TOKEN=$(get_token)
st=$(api GET /keys/rot/rotationpolicy)
[ "$st" = 200 ] && jget resp.json "d['attributes']['expiryTime']=='P2Y'" | grep -q True && ok "policy survives a restart" || not_ok "policy after restart ($st)"
st=$(api GET /deletedkeys/del-a)
[ "$st" = 200 ] && ok "deleted keys survive a restart" || not_ok "deleted after restart ($st)"

finish
