#!/usr/bin/env bash
# test_vaultd_hsm.sh - HSM-protected keys and managed HSM pools in vaultd: the --dev SoftHSMv2
# pool and KEK, RSA-HSM / EC-HSM keys in vault dev and in managed HSM pool devhsm (objects shown
# in the SoftHSMv2 token with pkcs11-tool: sensitive, never extractable), signatures checked
# with openssl (one RSA-HSM 4096 key among them), RSA-HSM decryption, oct-HSM AES-GCM / CBC /
# CBCPAD / KW round trips on 128-, 192- and 256-bit keys (a tampered GCM tag fails; an alg
# of another key size is refused), /rng, software key types and secrets refused in the pool, and the
# pool made unavailable (token directory moved away; a wrong PIN at restart): HSM key
# operations answer 503 ServiceUnavailable naming the pool while software keys keep working.
# The pool wrapping key (kvault-pool-wrap, made at first start with the dev SO PIN): HSM keys
# are sensitive and extractable only wrapped; backup -> delete -> purge -> restore of RSA-HSM,
# EC-HSM and oct-HSM keys unwraps the material back into SoftHSMv2 (the same key: old
# signatures / ciphertexts still verify / decrypt), a key made while the pool had no wrapping
# key keeps the reference-only backup (refused after purge), a backup taken under another pool
# wrapping key is refused with 400, and another instance cannot open the backup at all.
# A two-member pool from --hsm-config (SO PINs, wrap_escrow): the wrapping key on both members,
# keys replicated to both, round trips, signing with one member removed, a member added later
# provisioned from the escrow, a wrong escrow passphrase only warns.
source "$(dirname "$0")/lib.sh"

SOFTHSM_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -r "$m" ] && SOFTHSM_MODULE=$m && break
done
if [ -z "$SOFTHSM_MODULE" ] || ! command -v softhsm2-util >/dev/null; then
    echo "SKIP: SoftHSMv2 is not installed"; exit 77
fi

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
URL="https://dev.vault.localhost:$VAULTD_PORT"
MURL="https://devhsm.managedhsm.localhost:$VAULTD_PORT"
API="api-version=7.5"
POOL_MSG="HSM pool 'dev-softhsm' unavailable"

jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# token_for RESOURCE: a client-credentials token for the dev principal.
token_for() {
    curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials \
        --data-urlencode "client_id=$(conf_get client_id)" \
        --data-urlencode "client_secret=$(conf_get client_secret)" \
        --data-urlencode "scope=$1/.default" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
# api METHOD URL [JSON] [TOKEN]: body to $T_TMP/resp.json, prints the status.
api() {
    local m=$1 p=$2 body=${3:-} tok=${4:-$TOKEN}
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -D "$T_TMP/resp.hdr" -H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$p"
}
# expect_error STATUS CODE [MESSAGE-REGEX]: checks the last response.
expect_error() {
    local got=$1 want=$2 code=$3 pat=${4:-.}
    [ "$got" = "$want" ] || { echo "status $got, want $want"; cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = "$code" ] || { cat "$T_TMP/resp.json"; return 1; }
    grep -Eq -- "$pat" "$T_TMP/resp.json" || { echo "want /$pat/"; cat "$T_TMP/resp.json"; return 1; }
}

# ---- the dev pool and the KEK ----
t_dev_pool() {
    grep -q "HSM pool 'dev-softhsm' ready" "$T_TMP/vaultd.log" &&
        [ -f "$VAULTD_STATE/hsm.conf" ] && [ -f "$VAULTD_STATE/softhsm/softhsm2.conf" ] &&
        [ "$(stat -c %a "$VAULTD_STATE/softhsm/user.pin")" = 600 ] &&
        [ -f "$VAULTD_STATE/kek.hsm" ] && [ ! -e "$VAULTD_STATE/kek.bin" ] &&
        grep -q "^ref=pkcs11:token=vaultd-dev;id=" "$VAULTD_STATE/kek.hsm"
}
check "--dev made a SoftHSMv2 pool in DIR/softhsm and keeps the KEK in it (kek.hsm, no kek.bin)" t_dev_pool
t_dev_wrapkey() {
    grep -q "^so_pin_file = $VAULTD_STATE/softhsm/so.pin$" "$VAULTD_STATE/hsm.conf" &&
        grep -q "HSM pool 'dev-softhsm': pool wrapping key provisioned on 1 member token" "$T_TMP/vaultd.log" &&
        grep -Eq "HSM pool 'dev-softhsm': pool wrapping key [0-9a-f]{32} \(trusted\)" "$T_TMP/vaultd.log" ||
        { cat "$T_TMP/vaultd.log"; return 1; }
}
check "--dev: the dev pool got a trusted pool wrapping key at first start (SO PIN in hsm.conf)" t_dev_wrapkey
grep -q '^\[vault devhsm\]' "$KVAULT_CONF" && grep -q "url = $MURL" "$KVAULT_CONF" &&
    grep -q "resource = https://managedhsm.azure.net" "$KVAULT_CONF" &&
    ok "client.conf has [vault devhsm] with the managed HSM url and resource" ||
    not_ok "client.conf has [vault devhsm]"

TOKEN=$(token_for https://vault.azure.net)
MTOKEN=$(token_for https://managedhsm.azure.net)

t_mhsm_challenge() {
    local code
    code=$(curl -s -o /dev/null -D "$T_TMP/c.hdr" -w '%{http_code}' --cacert "$CA" \
        "$MURL/keys?$API")
    [ "$code" = 401 ] && grep -qi 'resource="https://managedhsm.azure.net"' "$T_TMP/c.hdr"
}
check "devhsm: 401 challenge names resource https://managedhsm.azure.net" t_mhsm_challenge
t_mhsm_wrong_aud() { [ "$(api GET "$MURL/keys?$API" "" "$TOKEN")" = 401 ]; }
check "devhsm: a vault.azure.net token is refused (401)" t_mhsm_wrong_aud

# ---- create HSM keys ----
# create URL NAME JSON KTY: creates and checks kty; bundle kept in $T_TMP/NAME.json
create() {
    local code
    code=$(api POST "$1/keys/$2/create?$API" "$3" "$5")
    [ "$code" = 200 ] || { echo "status $code"; cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["key"]["kty"]')" = "$4" ] || { cat "$T_TMP/resp.json"; return 1; }
    cp "$T_TMP/resp.json" "$T_TMP/$2.json"
}
check "vault dev: create RSA-HSM 2048 key hrsa" create "$URL" hrsa '{"kty":"RSA-HSM","key_size":2048}' RSA-HSM "$TOKEN"
check "vault dev: create EC-HSM P-256 key hec" create "$URL" hec '{"kty":"EC-HSM","crv":"P-256"}' EC-HSM "$TOKEN"
check "vault dev: create software RSA key swrsa" create "$URL" swrsa '{"kty":"RSA","key_size":2048}' RSA "$TOKEN"
check "devhsm: create RSA-HSM 3072 key mrsa" create "$MURL" mrsa '{"kty":"RSA-HSM","key_size":3072}' RSA-HSM "$MTOKEN"
check "devhsm: create EC-HSM P-384 key mec" create "$MURL" mec '{"kty":"EC-HSM","crv":"P-384"}' EC-HSM "$MTOKEN"
check "devhsm: create EC-HSM P-256K key mec256k" create "$MURL" mec256k '{"kty":"EC-HSM","crv":"P-256K"}' EC-HSM "$MTOKEN"
check "devhsm: create oct-HSM 256 key maes" create "$MURL" maes '{"kty":"oct-HSM","key_size":256}' oct-HSM "$MTOKEN"
check "devhsm: create oct-HSM 128 key maes128" create "$MURL" maes128 '{"kty":"oct-HSM","key_size":128}' oct-HSM "$MTOKEN"
check "devhsm: create oct-HSM 192 key maes192" create "$MURL" maes192 '{"kty":"oct-HSM","key_size":192}' oct-HSM "$MTOKEN"
# the one RSA-4096 key of the suite (made in SoftHSMv2; software 4096-bit keygens are too slow for CI)
t_rsa4096() {
    create "$URL" hrsa4k '{"kty":"RSA-HSM","key_size":4096}' RSA-HSM "$TOKEN" || return 1
    [ "$(jget "$T_TMP/hrsa4k.json" 'len(d["key"]["n"])')" = 683 ] || { echo "n is not 512 bytes"; cat "$T_TMP/hrsa4k.json"; return 1; }
}
check "vault dev: create RSA-HSM 4096 key hrsa4k (512-byte modulus)" t_rsa4096
t_oct_bundle() {
    [ "$(api GET "$MURL/keys/maes?$API" "" "$MTOKEN")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'sorted(d["key"].keys())')" = "['key_ops', 'kid', 'kty']" ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["key"]["key_ops"]')" = "['encrypt', 'decrypt', 'wrapKey', 'unwrapKey']" ] &&
        jget "$T_TMP/resp.json" 'd["key"]["kid"]' | grep -q "^$MURL/keys/maes/[0-9a-f]\{32\}$"
}
check "devhsm: GET oct-HSM key shows kty/kid/key_ops only (no k)" t_oct_bundle

t_sw_in_pool() {
    local code
    code=$(api POST "$MURL/keys/bad/create?$API" '{"kty":"RSA","key_size":2048}' "$MTOKEN")
    expect_error "$code" 400 BadParameter "not supported by managed HSM pools" || return 1
    code=$(api POST "$MURL/keys/bad/create?$API" '{"kty":"EC"}' "$MTOKEN")
    expect_error "$code" 400 BadParameter
}
check "devhsm: software kty RSA / EC refused with 400 BadParameter" t_sw_in_pool
t_secret_in_pool() {
    expect_error "$(api PUT "$MURL/secrets/s1?$API" '{"value":"x"}' "$MTOKEN")" 400 BadParameter "keys only"
}
check "devhsm: secrets refused with 400 BadParameter" t_secret_in_pool
t_oct_in_vault() {
    expect_error "$(api POST "$URL/keys/o1/create?$API" '{"kty":"oct-HSM"}')" 400 BadParameter "only in managed HSM pools"
}
check "vault dev: oct-HSM refused (managed HSM pools only)" t_oct_in_vault
t_bad_oct_size() {
    expect_error "$(api POST "$MURL/keys/o2/create?$API" '{"kty":"oct-HSM","key_size":512}' "$MTOKEN")" 400 BadParameter
}
check "devhsm: oct-HSM key_size 512 refused" t_bad_oct_size

# ---- the objects live in the SoftHSMv2 token ----
P11=(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label vaultd-dev --login
    --pin "$(cat "$VAULTD_STATE/softhsm/user.pin")")
export SOFTHSM2_CONF="$VAULTD_STATE/softhsm/softhsm2.conf"
# p11attrs LABEL CLASS: a key object's boolean attributes and whether its value is readable,
# straight from the token through PKCS#11 (pkcs11-tool cannot read private key values at all).
cat >"$T_TMP/p11attrs.py" <<'EOF'
import ctypes, sys
mod, token, pin, label = sys.argv[1:5]
L = ctypes.CDLL(mod)
UL = ctypes.c_ulong
class ATTR(ctypes.Structure):
    _fields_ = [("type", UL), ("pValue", ctypes.c_void_p), ("ulValueLen", UL)]
class TOKINFO(ctypes.Structure):
    _fields_ = [("label", ctypes.c_char * 32), ("rest", ctypes.c_ubyte * 512)]
def ck(rv, what):
    if rv != 0:
        raise SystemExit("%s: 0x%x" % (what, rv))
ck(L.C_Initialize(None), "C_Initialize")
n = UL(0)
ck(L.C_GetSlotList(1, None, ctypes.byref(n)), "slots")
slots = (UL * n.value)()
ck(L.C_GetSlotList(1, slots, ctypes.byref(n)), "slots")
slot = None
for s in slots:
    ti = TOKINFO()
    if L.C_GetTokenInfo(UL(s), ctypes.byref(ti)) == 0 and ti.label.decode().rstrip() == token:
        slot = s
sess = UL(0)
ck(L.C_OpenSession(UL(slot), UL(6), None, None, ctypes.byref(sess)), "open")
ck(L.C_Login(sess, UL(1), pin.encode(), UL(len(pin))), "login")
lab = label.encode()
cls = UL(int(sys.argv[5], 0))
t = (ATTR * 2)(ATTR(0x3, ctypes.cast(ctypes.c_char_p(lab), ctypes.c_void_p), len(lab)),
               ATTR(0x0, ctypes.cast(ctypes.pointer(cls), ctypes.c_void_p), ctypes.sizeof(cls)))
ck(L.C_FindObjectsInit(sess, t, UL(2)), "find")
h = UL(0); cnt = UL(0)
ck(L.C_FindObjects(sess, ctypes.byref(h), UL(1), ctypes.byref(cnt)), "find")
L.C_FindObjectsFinal(sess)
if cnt.value != 1:
    raise SystemExit("object not found")
out = []
for name, typ in [("SENSITIVE", 0x103), ("ALWAYS_SENSITIVE", 0x165), ("EXTRACTABLE", 0x162),
                  ("NEVER_EXTRACTABLE", 0x164), ("WRAP_WITH_TRUSTED", 0x210), ("TRUSTED", 0x86)]:
    b = ctypes.c_ubyte(9)
    a = ATTR(typ, ctypes.cast(ctypes.pointer(b), ctypes.c_void_p), 1)
    rv = L.C_GetAttributeValue(sess, h, ctypes.byref(a), UL(1))
    out.append("%s=%s" % (name, b.value if rv == 0 else "rv0x%x" % rv))
buf = (ctypes.c_ubyte * 2048)()
for name, typ in [("VALUE", 0x11), ("PRIVATE_EXPONENT", 0x123)]:
    a = ATTR(typ, ctypes.cast(buf, ctypes.c_void_p), 2048)
    rv = L.C_GetAttributeValue(sess, h, ctypes.byref(a), UL(1))
    out.append("%s=%s" % (name, "readable" if rv == 0 else "rv0x%x" % rv))
print(" ".join(out))
EOF
p11attrs() {
    python3 "$T_TMP/p11attrs.py" "$SOFTHSM_MODULE" vaultd-dev "$(cat "$VAULTD_STATE/softhsm/user.pin")" "$1" "$2"
}
p11attrs_tok() { python3 "$T_TMP/p11attrs.py" "$SOFTHSM_MODULE" "$@"; } # TOKEN PIN LABEL CLASS
t_p11_objects() {
    "${P11[@]}" -O >"$T_TMP/objs.txt" 2>"$T_TMP/objs.err" || { cat "$T_TMP/objs.txt" "$T_TMP/objs.err"; return 1; }
    python3 - "$T_TMP/objs.txt" "$(jget "$T_TMP/hrsa.json" 'd["key"]["kid"].split("/")[-1]')" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
objs = re.split(r"\n(?=\S)", text)
def find(kind, label):
    return [o for o in objs if o.startswith(kind) and re.search(r"label:\s+" + re.escape(label) + r"\s*$", o, re.M)]
ver = sys.argv[2]
checks = {
    ("Private Key Object; RSA", "vaultd/dev/hrsa/" + ver): 1,
    ("Public Key Object; RSA 2048 bits", "vaultd/dev/hrsa/" + ver): 1,
}
for (kind, label), n in checks.items():
    got = find(kind, label)
    assert len(got) == n, (kind, label, len(got))
privs = [o for o in objs if o.startswith("Private Key Object") or o.startswith("Secret Key Object")]
labels = " ".join(privs)
for name in ["vaultd/dev/hrsa/", "vaultd/dev/hrsa4k/", "vaultd/dev/hec/", "vaultd/devhsm/mrsa/",
             "vaultd/devhsm/mec/", "vaultd/devhsm/mec256k/", "vaultd/devhsm/maes/",
             "vaultd/devhsm/maes128/", "vaultd/devhsm/maes192/", "vaultd/kek"]:
    assert name in labels, name
wrap = [o for o in privs if re.search(r"label:\s+kvault-pool-wrap\s*$", o, re.M)]
assert len(wrap) == 1 and wrap[0].startswith("Secret Key Object; AES length 32"), wrap
assert re.search(r"Usage:\s+wrap, unwrap\s*$", wrap[0], re.M), wrap[0]
assert re.search(r"Access:\s+sensitive\s*$", wrap[0], re.M), wrap[0]  # not extractable
for o in privs:
    if o in wrap:
        continue
    acc = re.search(r"Access:\s+(.*)", o).group(1)
    # generated with a pool wrapping key: always sensitive, extractable (only wrapped under the
    # trusted pool wrapping key: CKA_WRAP_WITH_TRUSTED), never in the clear
    assert "sensitive" in acc and "always sensitive" in acc, o
    assert "extractable" in acc and "never extractable" not in acc, o
assert "vaultd/dev/swrsa/" not in text, "software key in the token"
print("ok", len(privs), "private/secret objects, all sensitive; the keys extractable only wrapped")
EOF
}
check "pkcs11-tool -O: HSM keys (and the KEK) are SoftHSMv2 objects, always sensitive, extractable only wrapped; the pool wrapping key is not extractable; software keys are not there" t_p11_objects
t_p11_no_value() {
    local label a
    label=$(grep -o "vaultd/dev/hrsa/[0-9a-f]*" "$T_TMP/objs.txt" | head -1)
    a=$(p11attrs "$label" 3) || return 1
    [ "$a" = "SENSITIVE=1 ALWAYS_SENSITIVE=1 EXTRACTABLE=1 NEVER_EXTRACTABLE=0 WRAP_WITH_TRUSTED=1 TRUSTED=rv0x12 VALUE=rv0x12 PRIVATE_EXPONENT=rv0x11" ] ||
        { echo "hrsa: $a"; return 1; }
    a=$(p11attrs kvault-pool-wrap 4) || return 1
    [ "$a" = "SENSITIVE=1 ALWAYS_SENSITIVE=0 EXTRACTABLE=0 NEVER_EXTRACTABLE=0 WRAP_WITH_TRUSTED=0 TRUSTED=1 VALUE=rv0x11 PRIVATE_EXPONENT=rv0x12" ] ||
        { echo "kvault-pool-wrap: $a"; return 1; }
    ! "${P11[@]}" --read-object --type secrkey --label kvault-pool-wrap -o "$T_TMP/leak2.bin" >"$T_TMP/read.txt" 2>&1 &&
        grep -q "CKR_ATTRIBUTE_SENSITIVE" "$T_TMP/read.txt" || { cat "$T_TMP/read.txt"; return 1; }
}
check "PKCS#11 attributes: an RSA-HSM key is sensitive, extractable only under a trusted key (CKA_WRAP_WITH_TRUSTED), its value unreadable (CKR_ATTRIBUTE_SENSITIVE); the pool wrapping key is CKA_TRUSTED, not extractable, unreadable" t_p11_no_value
t_p11_aes() {
    grep -A3 "^Secret Key Object; AES length 32" "$T_TMP/objs.txt" | grep -q "label: *vaultd/devhsm/maes/" &&
        grep -A3 "^Secret Key Object; AES length 24" "$T_TMP/objs.txt" | grep -q "label: *vaultd/devhsm/maes192/" &&
        grep -A3 "^Secret Key Object; AES length 16" "$T_TMP/objs.txt" | grep -q "label: *vaultd/devhsm/maes128/"
}
check "pkcs11-tool -O: oct-HSM keys are AES-256 / AES-192 / AES-128 secret key objects" t_p11_aes
t_p11_rsa4096() {
    grep -A3 "^Public Key Object; RSA 4096 bits" "$T_TMP/objs.txt" | grep -q "label: *vaultd/dev/hrsa4k/" &&
        grep -A3 "^Private Key Object; RSA" "$T_TMP/objs.txt" | grep -q "label: *vaultd/dev/hrsa4k/"
}
check "pkcs11-tool -O: the RSA-HSM 4096 key is a 4096-bit SoftHSMv2 key pair" t_p11_rsa4096
t_db_ref() {
    python3 - "$VAULTD_STATE/vaultd.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = {n: (w, r) for n, w, r in db.execute("SELECT name, length(wrapped_key), hsm_ref FROM keys")}
for n in ["hrsa", "hec", "mrsa", "maes"]:
    w, r = rows[n]
    assert w == 0 and r.startswith("pkcs11:token=vaultd-dev;id=%"), (n, w, r)
w, r = rows["swrsa"]
assert w > 0 and r is None, ("swrsa", w, r)
EOF
}
check "keys table: HSM keys hold only hsm_ref (no wrapped material); software keys the reverse" t_db_ref

# ---- signatures verified with openssl ----
# sign_verify BASEURL TOKEN KEY ALG MD [pss|ec]
sign_verify() {
    local base=$1 tok=$2 key=$3 alg=$4 md=$5 kind=${6:-} code sig
    openssl rand 100 >"$T_TMP/msg.bin"
    openssl dgst "-$md" -binary "$T_TMP/msg.bin" >"$T_TMP/dig.bin"
    code=$(api POST "$base/keys/$key/sign?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/dig.bin")\"}" "$tok")
    [ "$code" = 200 ] || { echo "status $code"; cat "$T_TMP/resp.json"; return 1; }
    sig=$(jget "$T_TMP/resp.json" 'd["value"]')
    b64url_decode_to "$sig" "$T_TMP/sig.bin"
    jwk_to_pem "$T_TMP/$key.json" "$T_TMP/$key.pem" || return 1
    case $kind in
    ec) raw_to_der "$T_TMP/sig.bin" "$T_TMP/sig.der"
        openssl dgst "-$md" -verify "$T_TMP/$key.pem" -signature "$T_TMP/sig.der" "$T_TMP/msg.bin" ;;
    pss) openssl dgst "-$md" -verify "$T_TMP/$key.pem" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:digest -signature "$T_TMP/sig.bin" "$T_TMP/msg.bin" ;;
    *) openssl dgst "-$md" -verify "$T_TMP/$key.pem" -signature "$T_TMP/sig.bin" "$T_TMP/msg.bin" ;;
    esac
}
check "vault dev: RSA-HSM RS256 signature verifies with openssl" sign_verify "$URL" "$TOKEN" hrsa RS256 sha256
check "vault dev: RSA-HSM PS256 signature verifies with openssl" sign_verify "$URL" "$TOKEN" hrsa PS256 sha256 pss
check "vault dev: RSA-HSM 4096 RS256 signature verifies with openssl" sign_verify "$URL" "$TOKEN" hrsa4k RS256 sha256
check "vault dev: RSA-HSM 4096 PS512 signature verifies with openssl" sign_verify "$URL" "$TOKEN" hrsa4k PS512 sha512 pss
check "vault dev: EC-HSM ES256 signature verifies with openssl" sign_verify "$URL" "$TOKEN" hec ES256 sha256 ec
check "devhsm: RSA-HSM RS384 signature verifies with openssl" sign_verify "$MURL" "$MTOKEN" mrsa RS384 sha384
check "devhsm: RSA-HSM PS512 signature verifies with openssl" sign_verify "$MURL" "$MTOKEN" mrsa PS512 sha512 pss
check "devhsm: EC-HSM ES384 signature verifies with openssl" sign_verify "$MURL" "$MTOKEN" mec ES384 sha384 ec
check "devhsm: EC-HSM ES256K signature verifies with openssl" sign_verify "$MURL" "$MTOKEN" mec256k ES256K sha256 ec
check "vault dev: software RSA RS256 still signs" sign_verify "$URL" "$TOKEN" swrsa RS256 sha256
t_verify_hsm() {
    openssl dgst -sha256 -binary "$T_TMP/msg.bin" >/dev/null
    sign_verify "$URL" "$TOKEN" hec ES256 sha256 ec || return 1
    [ "$(api POST "$URL/keys/hec/verify?$API" "{\"alg\":\"ES256\",\"digest\":\"$(b64url_file "$T_TMP/dig.bin")\",\"value\":\"$(b64url_file "$T_TMP/sig.bin")\"}")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = True ]
}
check "vault dev: /verify accepts the EC-HSM signature" t_verify_hsm
t_sign_wrong_alg() {
    openssl rand 32 >"$T_TMP/d32.bin"
    expect_error "$(api POST "$URL/keys/hec/sign?$API" "{\"alg\":\"RS256\",\"value\":\"$(b64url_file "$T_TMP/d32.bin")\"}")" 400 BadParameter
}
check "EC-HSM key with RS256: 400 BadParameter" t_sign_wrong_alg

# ---- RSA-HSM decryption ----
# rsa_dec KEY BASE TOKEN ALG OPENSSL-OPTS...
rsa_dec() {
    local key=$1 base=$2 tok=$3 alg=$4 code; shift 4
    openssl rand 32 >"$T_TMP/pt.bin"
    openssl pkeyutl -encrypt -pubin -inkey "$T_TMP/$key.pem" "$@" -in "$T_TMP/pt.bin" -out "$T_TMP/ct.bin" || return 1
    code=$(api POST "$base/keys/$key/decrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/ct.bin")\"}" "$tok")
    [ "$code" = 200 ] || { echo "status $code"; cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/pt.bin")" ]
}
check "vault dev: RSA-HSM decrypt RSA-OAEP-256 (openssl-encrypted)" rsa_dec hrsa "$URL" "$TOKEN" RSA-OAEP-256 -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
check "vault dev: RSA-HSM decrypt RSA-OAEP" rsa_dec hrsa "$URL" "$TOKEN" RSA-OAEP -pkeyopt rsa_padding_mode:oaep
check "devhsm: RSA-HSM decrypt RSA1_5" rsa_dec mrsa "$MURL" "$MTOKEN" RSA1_5 -pkeyopt rsa_padding_mode:pkcs1
t_rsa_unwrap() {
    local code
    openssl rand 32 >"$T_TMP/k.bin"
    code=$(api POST "$URL/keys/hrsa/wrapkey?$API" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(b64url_file "$T_TMP/k.bin")\"}")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    code=$(api POST "$URL/keys/hrsa/unwrapkey?$API" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(jget "$T_TMP/resp.json" 'd["value"]')\"}")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/k.bin")" ]
}
check "vault dev: RSA-HSM wrapkey (public) / unwrapkey (in the HSM) round trip" t_rsa_unwrap
t_rsa_bad_ct() {
    openssl rand 256 >"$T_TMP/junk.bin"
    expect_error "$(api POST "$URL/keys/hrsa/decrypt?$API" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(b64url_file "$T_TMP/junk.bin")\"}")" 400 BadParameter
}
check "vault dev: RSA-HSM decrypt of garbage: 400 BadParameter" t_rsa_bad_ct

# ---- oct-HSM AES ----
# t_gcm KEY ALG
t_gcm() {
    local key=$1 alg=$2 code c iv tag
    openssl rand 45 >"$T_TMP/pt.bin"
    code=$(api POST "$MURL/keys/$key/encrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/pt.bin")\",\"aad\":\"aGVsbG8\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    c=$(jget "$T_TMP/resp.json" 'd["value"]'); iv=$(jget "$T_TMP/resp.json" 'd["iv"]'); tag=$(jget "$T_TMP/resp.json" 'd["tag"]')
    [ ${#iv} = 16 ] && [ ${#tag} = 22 ] && [ "$(jget "$T_TMP/resp.json" 'd["aad"]')" = aGVsbG8 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ ${#c} = 60 ] || { echo "ciphertext length ${#c}, want 60 (45 bytes)"; return 1; }
    code=$(api POST "$MURL/keys/$key/decrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$c\",\"iv\":\"$iv\",\"tag\":\"$tag\",\"aad\":\"aGVsbG8\"}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/pt.bin")" ] || { cat "$T_TMP/resp.json"; return 1; }
    # tampered tag, then wrong aad. Change the FIRST character: it carries 6 data bits. (The
    # last of 22 characters carries only 2 data bits plus 4 padding bits, so A -> B there
    # decodes to the same 16 bytes and the "tampered" tag was valid in 1 run of 4.)
    local bad; [ "${tag:0:1}" = A ] && bad=B || bad=A
    bad+=${tag:1}
    code=$(api POST "$MURL/keys/$key/decrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$c\",\"iv\":\"$iv\",\"tag\":\"$bad\",\"aad\":\"aGVsbG8\"}" "$MTOKEN")
    expect_error "$code" 400 BadParameter "AES-GCM decryption failed" || return 1
    code=$(api POST "$MURL/keys/$key/decrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$c\",\"iv\":\"$iv\",\"tag\":\"$tag\",\"aad\":\"aGVsbA\"}" "$MTOKEN")
    expect_error "$code" 400 BadParameter
}
check "devhsm: oct-HSM A256GCM round trip (service IV, aad); tampered tag / aad fail with 400" t_gcm maes A256GCM
check "devhsm: oct-HSM A192GCM round trip on the 192-bit key (service IV, aad); tampered tag / aad fail with 400" t_gcm maes192 A192GCM
t_gcm_128() {
    local code
    code=$(api POST "$MURL/keys/maes128/encrypt?$API" '{"alg":"A128GCM","value":"AAECAwQ"}' "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    expect_error "$(api POST "$MURL/keys/maes128/encrypt?$API" '{"alg":"A256GCM","value":"AAECAwQ"}' "$MTOKEN")" 400 BadParameter "does not fit" || return 1
    expect_error "$(api POST "$MURL/keys/maes192/encrypt?$API" '{"alg":"A256GCM","value":"AAECAwQ"}' "$MTOKEN")" 400 BadParameter "does not fit this 192-bit key" || return 1
    expect_error "$(api POST "$MURL/keys/maes/encrypt?$API" '{"alg":"A192GCM","value":"AAECAwQ"}' "$MTOKEN")" 400 BadParameter "does not fit this 256-bit key"
}
check "devhsm: A128GCM on the 128-bit key; A256GCM on the 128- / 192-bit key and A192GCM on the 256-bit key are 400" t_gcm_128
# t_cbc KEY ALG LEN: round trip of LEN random bytes; the ciphertext is LEN bytes (CBC) or LEN
# rounded up to the next block (CBCPAD: PKCS#7 padding, a full block when LEN is aligned).
t_cbc() {
    local key=$1 alg=$2 len=$3 code c iv want
    openssl rand "$len" >"$T_TMP/pt.bin"; openssl rand 16 >"$T_TMP/iv.bin"; iv=$(b64url_file "$T_TMP/iv.bin")
    code=$(api POST "$MURL/keys/$key/encrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/pt.bin")\",\"iv\":\"$iv\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    c=$(jget "$T_TMP/resp.json" 'd["value"]')
    [ "$(jget "$T_TMP/resp.json" 'd["iv"]')" = "$iv" ] || return 1
    b64url_decode_to "$c" "$T_TMP/ct.bin"
    want=$len; [[ "$alg" == *PAD ]] && want=$(((len / 16 + 1) * 16))
    [ "$(stat -c %s "$T_TMP/ct.bin")" = "$want" ] || { echo "ciphertext $(stat -c %s "$T_TMP/ct.bin") bytes, want $want"; return 1; }
    code=$(api POST "$MURL/keys/$key/decrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$c\",\"iv\":\"$iv\"}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/pt.bin")" ] || { cat "$T_TMP/resp.json"; return 1; }
}
check "devhsm: oct-HSM A256CBC round trip (32 bytes)" t_cbc maes A256CBC 32
check "devhsm: oct-HSM A256CBCPAD round trip (45 bytes)" t_cbc maes A256CBCPAD 45
check "devhsm: oct-HSM A128CBC round trip on the 128-bit key (48 bytes)" t_cbc maes128 A128CBC 48
check "devhsm: oct-HSM A192CBCPAD round trip on the 192-bit key (45 bytes -> 48)" t_cbc maes192 A192CBCPAD 45
check "devhsm: oct-HSM A192CBCPAD round trip on the 192-bit key (32 bytes -> 48: a full padding block)" t_cbc maes192 A192CBCPAD 32
t_cbc_bad() {
    expect_error "$(api POST "$MURL/keys/maes/encrypt?$API" '{"alg":"A256CBC","value":"AAECAwQ"}' "$MTOKEN")" 400 BadParameter "16-byte iv" || return 1
    expect_error "$(api POST "$MURL/keys/maes/encrypt?$API" '{"alg":"A256CBC","value":"AAECAwQ","iv":"AAAAAAAAAAAAAAAAAAAAAA"}' "$MTOKEN")" 400 BadParameter "multiple of 16"
}
check "devhsm: A256CBC without iv / with a partial block: 400" t_cbc_bad
# t_kw KEY ALG: RFC 3394 wrap / unwrap of a 32-byte key; an altered blob and KW via /encrypt are 400.
t_kw() {
    local key=$1 alg=$2 code w
    openssl rand 32 >"$T_TMP/k.bin"
    code=$(api POST "$MURL/keys/$key/wrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/k.bin")\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    w=$(jget "$T_TMP/resp.json" 'd["value"]')
    [ ${#w} = 54 ] || { echo "wrapped length ${#w}"; return 1; } # 40 bytes
    code=$(api POST "$MURL/keys/$key/unwrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$w\"}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/k.bin")" ] || { cat "$T_TMP/resp.json"; return 1; }
    w="${w:0:10}$( [ "${w:10:1}" = A ] && echo B || echo A)${w:11}"
    expect_error "$(api POST "$MURL/keys/$key/unwrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$w\"}" "$MTOKEN")" 400 BadParameter || return 1
    expect_error "$(api POST "$MURL/keys/$key/encrypt?$API" "{\"alg\":\"$alg\",\"value\":\"$w\"}" "$MTOKEN")" 400 BadParameter
}
for kw in maes128:A128KW maes192:A192KW maes:A256KW; do
    check "devhsm: oct-HSM ${kw#*:} wrapkey/unwrapkey on ${kw%:*} (RFC 3394); altered blob 400; KW via /encrypt 400" t_kw "${kw%:*}" "${kw#*:}"
done
t_kw_size() {
    expect_error "$(api POST "$MURL/keys/maes192/wrapkey?$API" '{"alg":"A256KW","value":"AAECAwQFBgcICQoLDA0ODw"}' "$MTOKEN")" 400 BadParameter "does not fit this 192-bit key" || return 1
    expect_error "$(api POST "$MURL/keys/maes/wrapkey?$API" '{"alg":"A192KW","value":"AAECAwQFBgcICQoLDA0ODw"}' "$MTOKEN")" 400 BadParameter "does not fit this 256-bit key"
}
check "devhsm: A256KW on the 192-bit key / A192KW on the 256-bit key: 400 (does not fit)" t_kw_size
t_keyops() {
    local code
    code=$(api POST "$MURL/keys/maes-ro/create?$API" '{"kty":"oct-HSM","key_size":256,"key_ops":["encrypt"]}' "$MTOKEN")
    [ "$code" = 200 ] || return 1
    expect_error "$(api POST "$MURL/keys/maes-ro/wrapkey?$API" '{"alg":"A256KW","value":"AAECAwQFBgcICQoLDA0ODw"}' "$MTOKEN")" 403 Forbidden "not permitted"
}
check "devhsm: key_ops enforced on oct-HSM keys (403)" t_keyops

# ---- import (BYOK): the private parts go into the pool ----
t_import_rsa() {
    local code
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_TMP/imp.pem" 2>/dev/null
    python3 - "$T_TMP/imp.pem" >"$T_TMP/imp.json" <<'EOF2'
import base64, json, subprocess, sys
txt = subprocess.run(["openssl", "pkey", "-in", sys.argv[1], "-noout", "-text"], capture_output=True, text=True).stdout
fields, cur = {}, None
for line in txt.splitlines():
    if not line.startswith(" ") and ":" in line:
        name, _, rest = line.partition(":")
        cur = name.strip(); fields[cur] = rest.strip()
    elif cur:
        fields[cur] += line.strip()
def b(v):
    if v.startswith("65537"): n = 65537
    else: n = int(v.replace(":", ""), 16)
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode().rstrip("=")
m = {"n": "modulus", "e": "publicExponent", "d": "privateExponent", "p": "prime1", "q": "prime2",
     "dp": "exponent1", "dq": "exponent2", "qi": "coefficient"}
print(json.dumps({"key": dict({k: b(fields[v]) for k, v in m.items()}, kty="RSA"), "Hsm": True}))
EOF2
    code=$(api PUT "$URL/keys/imprsa?$API" "$(cat "$T_TMP/imp.json")")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["key"]["kty"]')" = RSA-HSM ] || { cat "$T_TMP/resp.json"; return 1; }
    cp "$T_TMP/resp.json" "$T_TMP/imprsa.json"
    openssl rand 64 >"$T_TMP/msg.bin"; openssl dgst -sha256 -binary "$T_TMP/msg.bin" >"$T_TMP/dig.bin"
    code=$(api POST "$URL/keys/imprsa/sign?$API" "{\"alg\":\"RS256\",\"value\":\"$(b64url_file "$T_TMP/dig.bin")\"}")
    [ "$code" = 200 ] || return 1
    b64url_decode_to "$(jget "$T_TMP/resp.json" 'd["value"]')" "$T_TMP/sig.bin"
    openssl pkey -in "$T_TMP/imp.pem" -pubout -out "$T_TMP/imp.pub.pem" &&
        openssl dgst -sha256 -verify "$T_TMP/imp.pub.pem" -signature "$T_TMP/sig.bin" "$T_TMP/msg.bin" &&
        [ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT length(wrapped_key) FROM keys WHERE name=\"imprsa\"").fetchone()[0])' "$VAULTD_STATE/vaultd.db")" = 0 ]
}
check "vault dev: import RSA with Hsm:true lands in the pool (no wrapped copy); its signature verifies with the original key" t_import_rsa
t_import_oct() {
    local code k iv
    openssl rand 32 >"$T_TMP/aes.key"; openssl rand 16 >"$T_TMP/aes.iv"; openssl rand 32 >"$T_TMP/pt.bin"
    k=$(b64url_file "$T_TMP/aes.key"); iv=$(b64url_file "$T_TMP/aes.iv")
    code=$(api PUT "$MURL/keys/impaes?$API" "{\"key\":{\"kty\":\"oct-HSM\",\"k\":\"$k\"}}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["key"]["kty"]')" = oct-HSM ] || { cat "$T_TMP/resp.json"; return 1; }
    code=$(api POST "$MURL/keys/impaes/encrypt?$API" "{\"alg\":\"A256CBC\",\"value\":\"$(b64url_file "$T_TMP/pt.bin")\",\"iv\":\"$iv\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    openssl enc -aes-256-cbc -nopad -K "$(xxd -p -c 64 "$T_TMP/aes.key")" -iv "$(xxd -p -c 32 "$T_TMP/aes.iv")" \
        -in "$T_TMP/pt.bin" -out "$T_TMP/ct.ref" &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/ct.ref")" ]
}
check "devhsm: import oct-HSM (k); A256CBC in the pool matches openssl's AES-256-CBC" t_import_oct
# t_pkcs11_kw KEY ALG LEN [KEYFILE]: wrapkey / unwrapkey with a PKCS#11-named alg (spec section 2;
# any AES size) of LEN random bytes; the blob is 8 bytes longer than LEN rounded up to 8; with
# KEYFILE (the key's known value) it equals python-cryptography's RFC 3394 / RFC 5649 result;
# an altered blob is 400.
t_pkcs11_kw() {
    local key=$1 alg=$2 len=$3 kf=${4:-} code w
    openssl rand "$len" >"$T_TMP/kw.bin"
    code=$(api POST "$MURL/keys/$key/wrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$(b64url_file "$T_TMP/kw.bin")\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    w=$(jget "$T_TMP/resp.json" 'd["value"]')
    b64url_decode_to "$w" "$T_TMP/kw.wrapped"
    [ "$(stat -c %s "$T_TMP/kw.wrapped")" = $(((len + 7) / 8 * 8 + 8)) ] ||
        { echo "wrapped length $(stat -c %s "$T_TMP/kw.wrapped")"; return 1; }
    if [ -n "$kf" ]; then
        python3 - "$kf" "$T_TMP/kw.bin" "$T_TMP/kw.wrapped" "$alg" <<'PYEOF' || return 1
import sys
from cryptography.hazmat.primitives import keywrap
k, v, w = (open(f, "rb").read() for f in sys.argv[1:4])
ref = keywrap.aes_key_wrap_with_padding(k, v) if sys.argv[4].endswith("_PAD") else keywrap.aes_key_wrap(k, v)
sys.exit(0 if ref == w else "blob differs from python-cryptography's")
PYEOF
    fi
    code=$(api POST "$MURL/keys/$key/unwrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$w\"}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/kw.bin")" ] ||
        { cat "$T_TMP/resp.json"; return 1; }
    w="${w:0:10}$([ "${w:10:1}" = A ] && echo B || echo A)${w:11}"
    expect_error "$(api POST "$MURL/keys/$key/unwrapkey?$API" "{\"alg\":\"$alg\",\"value\":\"$w\"}" "$MTOKEN")" 400 BadParameter
}
check "devhsm: CKM_AES_KEY_WRAP_PAD of 20 bytes under the imported key: 32 bytes == RFC 5649 (python), round trip, altered 400" \
    t_pkcs11_kw impaes CKM_AES_KEY_WRAP_PAD 20 "$T_TMP/aes.key"
check "devhsm: CKM_AES_KEY_WRAP_PAD of 32 bytes under the imported key == RFC 5649 (python), round trip" \
    t_pkcs11_kw impaes CKM_AES_KEY_WRAP_PAD 32 "$T_TMP/aes.key"
check "devhsm: CKM_AES_KEY_WRAP of 32 bytes under the imported key == RFC 3394 (python), round trip" \
    t_pkcs11_kw impaes CKM_AES_KEY_WRAP 32 "$T_TMP/aes.key"
check "devhsm: CKM_AES_KEY_WRAP_PAD of 20 bytes on the 192-bit key: 32 bytes, round trip" \
    t_pkcs11_kw maes192 CKM_AES_KEY_WRAP_PAD 20
check "devhsm: CKM_AES_KEY_WRAP on the 128-bit key (any size): round trip" t_pkcs11_kw maes128 CKM_AES_KEY_WRAP 24
t_import_sw_in_pool() {
    expect_error "$(api PUT "$URL/keys/impoct?$API" '{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}}')" 400 BadParameter "oct" || return 1
    expect_error "$(api PUT "$URL/keys/impoct?$API" '{"key":{"kty":"oct-HSM","k":"AAECAwQFBgcICQoLDA0ODw"}}')" 400 BadParameter "only in managed HSM pools"
}
check "vault dev: importing an oct key is refused" t_import_sw_in_pool

# ---- backup / restore of HSM keys: the material travels wrapped under the pool wrapping key ----
t_hsm_backup_move() {
    local blob
    create "$URL" hmove '{"kty":"EC-HSM","crv":"P-256"}' EC-HSM "$TOKEN" || return 1
    [ "$(api POST "$URL/keys/hmove/backup?$API")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    blob=$(jget "$T_TMP/resp.json" 'd["value"]')
    # into managed HSM pool devhsm while the original still exists: same pool object
    [ "$(api POST "$MURL/keys/restore?$API" "{\"value\":\"$blob\"}" "$MTOKEN")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    sign_verify "$MURL" "$MTOKEN" hmove ES256 sha256 ec || return 1
    # purging the original keeps the pool object the restored copy still uses
    [ "$(api DELETE "$URL/keys/hmove?$API")" = 200 ] && [ "$(api DELETE "$URL/deletedkeys/hmove?$API")" = 204 ] ||
        { cat "$T_TMP/resp.json"; return 1; }
    sign_verify "$MURL" "$MTOKEN" hmove ES256 sha256 ec
}
check "HSM key backup restored into devhsm while the original exists signs; purging the original keeps it" t_hsm_backup_move
# purge_key BASE TOKEN NAME: soft delete + purge.
purge_key() {
    [ "$(api DELETE "$1/keys/$3?$API" "" "$2")" = 200 ] && [ "$(api DELETE "$1/deletedkeys/$3?$API" "" "$2")" = 204 ] ||
        { cat "$T_TMP/resp.json"; return 1; }
}
# backup_to VAR BASE TOKEN NAME: the backup blob into $VAR.
backup_to() {
    [ "$(api POST "$2/keys/$4/backup?$API" "" "$3")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    printf -v "$1" '%s' "$(jget "$T_TMP/resp.json" 'd["value"]')"
}
# in_token LABEL-PREFIX KIND TYPE: pkcs11-tool lists exactly one KIND object with that label
# prefix, sensitive and not "never extractable", whose value cannot be read (TYPE: privkey|secrkey).
in_token() {
    "${P11[@]}" -O >"$T_TMP/objs2.txt" 2>"$T_TMP/objs2.err" || { cat "$T_TMP/objs2.txt" "$T_TMP/objs2.err"; return 1; }
    python3 - "$T_TMP/objs2.txt" "$1" "$2" <<'EOF' || return 1
import re, sys
objs = re.split(r"\n(?=\S)", open(sys.argv[1]).read())
got = [o for o in objs if o.startswith(sys.argv[3]) and re.search(r"label:\s+" + re.escape(sys.argv[2]), o)]
assert len(got) == 1, (sys.argv[2], len(got))
acc = re.search(r"Access:\s+(.*)", got[0]).group(1)
assert acc.startswith("sensitive") and "never extractable" not in acc, got[0]
EOF
    local label a cls=3 val=VALUE
    label=$(grep -o "label: *$1[0-9a-f]*" "$T_TMP/objs2.txt" | head -1 | sed 's/label: *//')
    [ "$3" = secrkey ] && cls=4
    [[ "$2" == *RSA* ]] && val=PRIVATE_EXPONENT
    a=$(p11attrs "$label" $cls) || return 1
    # unwrapped: CKA_ALWAYS_SENSITIVE is false by the standard (the key was outside this token)
    [[ "$a" == "SENSITIVE=1 ALWAYS_SENSITIVE=0 EXTRACTABLE=1 NEVER_EXTRACTABLE=0 WRAP_WITH_TRUSTED=1 "* ]] &&
        [[ "$a" == *" $val=rv0x11"* ]] || { echo "$label: $a"; return 1; }
}
t_hsm_roundtrip_rsa() {
    local blob
    create "$URL" brsa '{"kty":"RSA-HSM","key_size":2048}' RSA-HSM "$TOKEN" || return 1
    jwk_to_pem "$T_TMP/brsa.json" "$T_TMP/brsa.pem" || return 1
    openssl rand 32 >"$T_TMP/bpt.bin"
    openssl pkeyutl -encrypt -pubin -inkey "$T_TMP/brsa.pem" -pkeyopt rsa_padding_mode:oaep \
        -in "$T_TMP/bpt.bin" -out "$T_TMP/bct.bin" || return 1
    backup_to blob "$URL" "$TOKEN" brsa || return 1
    purge_key "$URL" "$TOKEN" brsa || return 1
    ! "${P11[@]}" -O 2>/dev/null | grep -q "vaultd/dev/brsa/" || { echo "object still in the token"; return 1; }
    [ "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$blob\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["key"]["n"]')" = "$(jget "$T_TMP/brsa.json" 'd["key"]["n"]')" ] || return 1
    # the ciphertext made before the backup decrypts in the pool: the same key came back
    [ "$(api POST "$URL/keys/brsa/decrypt?$API" "{\"alg\":\"RSA-OAEP\",\"value\":\"$(b64url_file "$T_TMP/bct.bin")\"}")" = 200 ] &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/bpt.bin")" ] || { cat "$T_TMP/resp.json"; return 1; }
    sign_verify "$URL" "$TOKEN" brsa RS256 sha256 || return 1
    in_token "vaultd/dev/brsa/" "Private Key Object; RSA" privkey
}
check "RSA-HSM: backup, delete, purge (object gone from the token), restore: decrypts an old ciphertext, signs; back in SoftHSMv2, sensitive, value unreadable" t_hsm_roundtrip_rsa
t_hsm_roundtrip_ec() {
    local blob
    create "$MURL" bec '{"kty":"EC-HSM","crv":"P-384"}' EC-HSM "$MTOKEN" || return 1
    backup_to blob "$MURL" "$MTOKEN" bec || return 1
    purge_key "$MURL" "$MTOKEN" bec || return 1
    expect_error "$(api GET "$MURL/keys/bec?$API" "" "$MTOKEN")" 404 KeyNotFound || return 1
    [ "$(api POST "$MURL/keys/restore?$API" "{\"value\":\"$blob\"}" "$MTOKEN")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    [ "$(jget "$T_TMP/resp.json" 'd["key"]["x"]')" = "$(jget "$T_TMP/bec.json" 'd["key"]["x"]')" ] || return 1
    sign_verify "$MURL" "$MTOKEN" bec ES384 sha384 ec || return 1
    in_token "vaultd/devhsm/bec/" "Private Key Object; EC" privkey
}
check "EC-HSM (devhsm): backup, delete, purge, restore: the same public key, ES384 verifies with openssl; back in SoftHSMv2" t_hsm_roundtrip_ec
t_hsm_roundtrip_oct() {
    local blob c iv tag code
    create "$MURL" baes '{"kty":"oct-HSM","key_size":256}' oct-HSM "$MTOKEN" || return 1
    openssl rand 40 >"$T_TMP/apt.bin"
    code=$(api POST "$MURL/keys/baes/encrypt?$API" "{\"alg\":\"A256GCM\",\"value\":\"$(b64url_file "$T_TMP/apt.bin")\"}" "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    c=$(jget "$T_TMP/resp.json" 'd["value"]'); iv=$(jget "$T_TMP/resp.json" 'd["iv"]'); tag=$(jget "$T_TMP/resp.json" 'd["tag"]')
    backup_to blob "$MURL" "$MTOKEN" baes || return 1
    purge_key "$MURL" "$MTOKEN" baes || return 1
    [ "$(api POST "$MURL/keys/restore?$API" "{\"value\":\"$blob\"}" "$MTOKEN")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    code=$(api POST "$MURL/keys/baes/decrypt?$API" "{\"alg\":\"A256GCM\",\"value\":\"$c\",\"iv\":\"$iv\",\"tag\":\"$tag\"}" "$MTOKEN")
    [ "$code" = 200 ] && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = "$(b64url_file "$T_TMP/apt.bin")" ] ||
        { cat "$T_TMP/resp.json"; return 1; }
    # the restored key still knows its size: A128GCM is refused
    expect_error "$(api POST "$MURL/keys/baes/encrypt?$API" '{"alg":"A128GCM","value":"AAEC"}' "$MTOKEN")" 400 BadParameter || return 1
    in_token "vaultd/devhsm/baes/" "Secret Key Object; AES" secrkey
}
check "oct-HSM: backup, delete, purge, restore: an AES-GCM ciphertext made before decrypts; back in SoftHSMv2, sensitive, value unreadable" t_hsm_roundtrip_oct
t_hsm_restore_twice() {
    # the restored copy can be backed up again and restored into another container
    backup_to B2 "$MURL" "$MTOKEN" bec || return 1
    [ "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$B2\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    sign_verify "$URL" "$TOKEN" bec ES384 sha384 ec
}
check "a restored HSM key is backed up again and restored into vault dev (shares the pool object), signs" t_hsm_restore_twice
t_hsm_gone() { # a purged key's backup, restored below while the pool is unavailable
    create "$URL" hgone '{"kty":"EC-HSM","crv":"P-256"}' EC-HSM "$TOKEN" && backup_to HBLOB "$URL" "$TOKEN" hgone &&
        purge_key "$URL" "$TOKEN" hgone
}
check "vault dev: backup + purge of EC-HSM key hgone" t_hsm_gone

# ---- random bytes ----
t_rng() {
    local code
    code=$(api POST "$MURL/rng?$API" '{"count":100}' "$MTOKEN")
    [ "$code" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    b64url_decode_to "$(jget "$T_TMP/resp.json" 'd["value"]')" "$T_TMP/rng.bin"
    [ "$(stat -c %s "$T_TMP/rng.bin")" = 100 ] || return 1
    expect_error "$(api POST "$MURL/rng?$API" '{"count":0}' "$MTOKEN")" 400 BadParameter || return 1
    expect_error "$(api POST "$MURL/rng?$API" '{"count":129}' "$MTOKEN")" 400 BadParameter
}
check "devhsm: POST /rng {count:100} returns 100 bytes; 0 and 129 are 400" t_rng

# ---- the pool becomes unavailable while vaultd runs ----
openssl rand 32 >"$T_TMP/d32.bin"
D32=$(b64url_file "$T_TMP/d32.bin")
mv "$VAULTD_STATE/softhsm/tokens" "$VAULTD_STATE/softhsm/tokens.away"
t_down_hsm() {
    expect_error "$(api POST "$URL/keys/hec/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" 503 ServiceUnavailable "$POOL_MSG" || return 1
    expect_error "$(api POST "$MURL/keys/maes/encrypt?$API" '{"alg":"A256GCM","value":"AAEC"}' "$MTOKEN")" 503 ServiceUnavailable "$POOL_MSG" || return 1
    expect_error "$(api POST "$MURL/rng?$API" '{"count":8}' "$MTOKEN")" 503 ServiceUnavailable "$POOL_MSG" || return 1
    expect_error "$(api POST "$URL/keys/new-hsm/create?$API" '{"kty":"EC-HSM"}')" 503 ServiceUnavailable "$POOL_MSG"
}
check "token directory moved away: HSM sign / AES / rng / create answer 503 naming the pool" t_down_hsm
t_down_restore() {
    expect_error "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$HBLOB\"}")" 503 ServiceUnavailable "$POOL_MSG"
}
check "... and restoring an HSM key backup answers 503 naming the pool" t_down_restore
t_down_sw() {
    [ "$(api POST "$URL/keys/swrsa/sign?$API" "{\"alg\":\"RS256\",\"value\":\"$D32\"}")" = 200 ] &&
        [ "$(api POST "$URL/keys/swec/create?$API" '{"kty":"EC"}')" = 200 ] &&
        [ "$(api POST "$URL/keys/swec/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" = 200 ] &&
        [ "$(api GET "$URL/keys/hrsa?$API")" = 200 ]
}
check "... while software keys still sign and are created, and HSM key metadata still reads" t_down_sw
mv "$VAULTD_STATE/softhsm/tokens.away" "$VAULTD_STATE/softhsm/tokens"
t_back() {
    local i
    for i in 1 2 3 4 5 6; do
        [ "$(api POST "$URL/keys/hec/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" = 200 ] && return 0
        sleep 1
    done
    cat "$T_TMP/resp.json"; return 1
}
check "token directory back: HSM keys sign again without a restart" t_back

# ---- keys made without a pool wrapping key; a backup under another pool wrapping key ----
t_foreign_prep() {
    create "$URL" hfor '{"kty":"RSA-HSM","key_size":2048}' RSA-HSM "$TOKEN" && backup_to FBLOB "$URL" "$TOKEN" hfor &&
        purge_key "$URL" "$TOKEN" hfor || return 1
    # the pool loses its wrapping key (deleted with pkcs11-tool while vaultd runs)
    "${P11[@]}" --delete-object --type secrkey --label kvault-pool-wrap >"$T_TMP/del.txt" 2>&1 || { cat "$T_TMP/del.txt"; return 1; }
    ! "${P11[@]}" -O 2>/dev/null | grep -q "label: *kvault-pool-wrap"
}
check "RSA-HSM key hfor backed up and purged; the pool wrapping key deleted from the token" t_foreign_prep
t_legacy() {
    local blob
    create "$URL" hleg '{"kty":"EC-HSM","crv":"P-256"}' EC-HSM "$TOKEN" || return 1
    "${P11[@]}" -O 2>/dev/null | grep -A4 "^Private Key Object; EC" | grep -A3 "label: *vaultd/dev/hleg/" |
        grep -q "Access: *sensitive, always sensitive, never extractable" || { echo "hleg is extractable"; return 1; }
    backup_to blob "$URL" "$TOKEN" hleg || return 1
    # while the object exists the reference-only backup restores (shared object) ...
    [ "$(api POST "$MURL/keys/restore?$API" "{\"value\":\"$blob\"}" "$MTOKEN")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
    purge_key "$MURL" "$MTOKEN" hleg || return 1
    purge_key "$URL" "$TOKEN" hleg || return 1
    # ... after the purge it cannot: the material never left the pool
    expect_error "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$blob\"}")" 400 BadParameter \
        "HSM key material that no longer exists in pool 'dev-softhsm' \(the key was purged\)" || return 1
    expect_error "$(api GET "$URL/keys/hleg?$API")" 404 KeyNotFound
}
check "without a pool wrapping key a new HSM key is never extractable; its backup holds only the reference: restore refused 400 after purge" t_legacy

# ---- restart: keys persist; KEK in the pool needs the pool ----
stop_vaultd
start_vaultd || not_ok "vaultd restarts"
t_new_wrapkey() {
    grep -q "HSM pool 'dev-softhsm': pool wrapping key provisioned on 1 member token" "$T_TMP/vaultd.log" ||
        { cat "$T_TMP/vaultd.log"; return 1; }
}
check "restart: the dev pool got a new (different) pool wrapping key" t_new_wrapkey
t_foreign_restore() {
    expect_error "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$FBLOB\"}")" 400 BadParameter \
        "cannot be restored into pool 'dev-softhsm': .*wrapped under a different pool wrapping key \(fingerprint [0-9a-f]{32}\) than this pool holds \([0-9a-f]{32}\)" || return 1
    expect_error "$(api GET "$URL/keys/hfor?$API")" 404 KeyNotFound || return 1
    ! "${P11[@]}" -O 2>/dev/null | grep -q "vaultd/dev/hfor/" || { echo "a stray object was left"; return 1; }
}
check "restore of a backup wrapped under another pool wrapping key: 400 BadParameter naming both fingerprints, nothing restored" t_foreign_restore
t_after_restart() {
    [ "$(api POST "$URL/keys/hec/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" = 200 ] &&
        [ "$(api POST "$URL/keys/swrsa/sign?$API" "{\"alg\":\"RS256\",\"value\":\"$D32\"}")" = 200 ] &&
        sign_verify "$MURL" "$MTOKEN" mrsa PS256 sha256 pss
}
check "after a restart HSM and software keys sign again" t_after_restart
stop_vaultd
mv "$VAULTD_STATE/softhsm/tokens" "$VAULTD_STATE/softhsm/tokens.away"
t_kek_needs_pool() {
    "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT" >"$T_TMP/nopool.log" 2>&1 &
    local pid=$! i
    for i in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then kill $pid; wait $pid; echo "vaultd kept running"; return 1; fi
    grep -q "key-encryption key lives in the HSM pool, which is unavailable: $POOL_MSG" "$T_TMP/nopool.log" ||
        { cat "$T_TMP/nopool.log"; return 1; }
}
check "KEK in the pool: vaultd refuses to start without the pool, with a clear message" t_kek_needs_pool
mv "$VAULTD_STATE/softhsm/tokens.away" "$VAULTD_STATE/softhsm/tokens"

# ---- a second instance with the KEK in a file; restart with a wrong PIN ----
VAULTD_STATE=$T_TMP/state2 VAULTD_PORT=$(free_port)
start_vaultd --kek-location file || not_ok "second vaultd starts"
CA="$VAULTD_STATE/ca.pem"
TOKEN=$(token_for https://vault.azure.net)
t_file_kek() { [ -f "$VAULTD_STATE/kek.bin" ] && [ ! -e "$VAULTD_STATE/kek.hsm" ]; }
check "--kek-location file: the KEK is kek.bin although a pool exists" t_file_kek
URL="https://dev.vault.localhost:$VAULTD_PORT"
check "state2: create EC-HSM key hec2" create "$URL" hec2 '{"kty":"EC-HSM"}' EC-HSM "$TOKEN"
check "state2: create software EC key swec2" create "$URL" swec2 '{"kty":"EC"}' EC "$TOKEN"
t_other_instance() {
    expect_error "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$HBLOB\"}")" 400 BadParameter "not created by this vaultd instance"
}
check "state2: an HSM key backup of the first instance is refused (400, the backup seal)" t_other_instance
stop_vaultd
echo 0000000000 >"$VAULTD_STATE/softhsm/user.pin"
start_vaultd || not_ok "vaultd starts with a wrong PIN"
t_bad_pin() {
    grep -q "warning: $POOL_MSG: C_Login failed: CKR_PIN_INCORRECT" "$T_TMP/vaultd.log" || { tail -5 "$T_TMP/vaultd.log"; return 1; }
    expect_error "$(api POST "$URL/keys/hec2/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" 503 ServiceUnavailable "$POOL_MSG: C_Login failed: CKR_PIN_INCORRECT"
}
check "restart with a wrong PIN: HSM sign answers 503 'HSM pool ... unavailable: C_Login failed: CKR_PIN_INCORRECT'" t_bad_pin
t_bad_pin_sw() {
    [ "$(api POST "$URL/keys/swec2/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" = 200 ] &&
        [ "$(api GET "$URL/keys/hec2?$API")" = 200 ]
}
check "... while the software key still signs (KEK in a file)" t_bad_pin_sw

# ---- a two-member pool from --hsm-config: SO PINs, the escrow, a member added later ----
stop_vaultd
P3=$T_TMP/pool3
mkdir -p "$P3/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$P3" >"$P3/softhsm2.conf"
export SOFTHSM2_CONF="$P3/softhsm2.conf"
for t in m1 m2 m3; do
    softhsm2-util --init-token --free --label "pool3-$t" --so-pin 22334455 --pin 11223344 >/dev/null
done
echo 11223344 >"$P3/user.pin"; echo 22334455 >"$P3/so.pin"; echo "escrow passphrase 3" >"$P3/escrow.pass"
chmod 600 "$P3"/*.pin "$P3/escrow.pass"
pool3_conf() { # pool3_conf MEMBER...
    printf 'name = pool3\nsofthsm2_conf = %s\nwrap_escrow = %s/wrap.escrow\nwrap_escrow_passphrase_file = %s/escrow.pass\n' \
        "$P3/softhsm2.conf" "$P3" "$P3"
    local m
    for m in "$@"; do
        printf '[member]\nmodule = %s\ntoken = pool3-%s\npin_file = %s/user.pin\nso_pin_file = %s/so.pin\n' \
            "$SOFTHSM_MODULE" "$m" "$P3" "$P3"
    done
}
pool3_conf m1 m2 >"$P3/hsm.conf"
newlog() { tail -n "+$((LOGMARK + 1))" "$T_TMP/vaultd.log"; } # since the last start
VAULTD_STATE=$T_TMP/state3 VAULTD_PORT=$(free_port)
LOGMARK=$(wc -l <"$T_TMP/vaultd.log")
start_vaultd --hsm-config "$P3/hsm.conf" || not_ok "vaultd starts with a two-member pool"
CA="$VAULTD_STATE/ca.pem"
TOKEN=$(token_for https://vault.azure.net)
URL="https://dev.vault.localhost:$VAULTD_PORT"
t_pool3_wrap() {
    newlog | grep -q "HSM pool 'pool3': pool wrapping key provisioned on 2 member tokens" &&
        newlog | grep -Eq "HSM pool 'pool3': pool wrapping key [0-9a-f]{32} \(trusted\)" &&
        [ "$(stat -c %a "$P3/wrap.escrow")" = 600 ] && grep -q "^kvault-pool-wrap-escrow v1$" "$P3/wrap.escrow" &&
        grep -q "^fingerprint=$(newlog | grep -Eo "pool wrapping key [0-9a-f]{32}" | head -1 | cut -d' ' -f4)$" "$P3/wrap.escrow" ||
        { newlog; return 1; }
}
check "two-member pool: the wrapping key on both members (trusted), escrow written 0600 with its fingerprint" t_pool3_wrap
# on_members LABEL-PREFIX N: each of pool3-m1 and pool3-m2 holds N private keys with that label.
on_members() {
    local t n
    for t in pool3-m1 pool3-m2; do
        n=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$t" --login --pin 11223344 -O 2>/dev/null |
            grep -A1 "^Private Key Object" | grep -c "label: *$1")
        [ "$n" = "$2" ] || { echo "$t holds $n objects $1, want $2"; return 1; }
    done
}
t_pool3_roundtrip() {
    local blob i
    for i in 1 2 3 4; do # keys are made on either member and replicated to the other
        create "$URL" "p3k$i" '{"kty":"EC-HSM","crv":"P-256"}' EC-HSM "$TOKEN" || return 1
        on_members "vaultd/dev/p3k$i/" 1 || return 1
        backup_to blob "$URL" "$TOKEN" "p3k$i" && purge_key "$URL" "$TOKEN" "p3k$i" || return 1
        on_members "vaultd/dev/p3k$i/" 0 || return 1
        [ "$(api POST "$URL/keys/restore?$API" "{\"value\":\"$blob\"}")" = 200 ] || { cat "$T_TMP/resp.json"; return 1; }
        on_members "vaultd/dev/p3k$i/" 1 || return 1
        sign_verify "$URL" "$TOKEN" "p3k$i" ES256 sha256 ec || return 1
    done
}
check "two-member pool: keys replicated to both members; backup, purge (every copy), restore (replicated again), sign" t_pool3_roundtrip
t_pool3_failover() {
    local dir i
    dir=$(dirname "$(grep -l "pool3-m1" "$P3"/tokens/*/token.object)")
    [ -d "$dir" ] || { echo "no token directory for pool3-m1"; return 1; }
    mv "$dir" "$dir.away"
    for i in 1 2 3 4; do # half of them name pool3-m1 in their reference
        sign_verify "$URL" "$TOKEN" "p3k$i" ES256 sha256 ec || { mv "$dir.away" "$dir"; return 1; }
    done
    mv "$dir.away" "$dir"
}
check "two-member pool: with member pool3-m1 removed every key still signs (served by its replica on pool3-m2)" t_pool3_failover
stop_vaultd
pool3_conf m1 m2 m3 >"$P3/hsm.conf"
LOGMARK=$(wc -l <"$T_TMP/vaultd.log")
start_vaultd --hsm-config "$P3/hsm.conf" || not_ok "vaultd starts with a third member"
t_pool3_added() {
    newlog | grep -q "HSM pool 'pool3': pool wrapping key provisioned on 1 member token" ||
        { newlog; return 1; }
    P11=(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label pool3-m3 --login --pin 11223344)
    [ "$(p11attrs_tok pool3-m3 11223344 kvault-pool-wrap 4)" = \
        "SENSITIVE=1 ALWAYS_SENSITIVE=0 EXTRACTABLE=0 NEVER_EXTRACTABLE=0 WRAP_WITH_TRUSTED=0 TRUSTED=1 VALUE=rv0x11 PRIVATE_EXPONENT=rv0x12" ]
}
check "a third member added later gets the same wrapping key from the escrow at start" t_pool3_added
stop_vaultd
echo "another passphrase" >"$P3/escrow.pass"
softhsm2-util --init-token --free --label pool3-m4 --so-pin 22334455 --pin 11223344 >/dev/null
pool3_conf m1 m2 m3 m4 >"$P3/hsm.conf"
LOGMARK=$(wc -l <"$T_TMP/vaultd.log")
start_vaultd --hsm-config "$P3/hsm.conf" || not_ok "vaultd starts with a fourth member"
t_pool3_badpass() {
    newlog | grep -q "warning: HSM pool 'pool3': cannot provision the pool wrapping key: cannot open the pool wrapping key escrow (wrong passphrase" ||
        { newlog; return 1; }
    [ "$(api POST "$URL/keys/p3k1/sign?$API" "{\"alg\":\"ES256\",\"value\":\"$D32\"}")" = 200 ]
}
check "a wrong escrow passphrase: a clear warning, the pool keeps working" t_pool3_badpass
stop_vaultd

finish
