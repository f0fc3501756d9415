#!/bin/bash
# test_p11_lifecycle.sh - key lifecycle through kvault.so's PKCS#11 face against a dev vaultd:
# C_GenerateKeyPair (pkcs11-tool --keypairgen RSA and EC) creates vault keys that sign;
# C_CreateObject imports private keys (BYOK: pkcs11-tool --write-object --type privkey) that
# read CKA_LOCAL / CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE false, and merges a certificate
# into a pending certificate operation; C_SetAttributeValue changes key_ops, exp and enabled in
# the vault and answers CKR_ATTRIBUTE_READ_ONLY for the rest; C_DestroyObject soft-deletes
# (GET /deletedkeys/NAME); the module's own writes are seen by the next find in the same
# process; R/O sessions, missing login and bad templates give the standard's codes; a
# [vault] key_versions = all setting shows older key versions as extra objects.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

p11_setup
O="$T_TMP/lc"
mkdir -p "$O"
P11+=(--token-label dev)
P11W=("${P11[@]}" --login --pin any)
TOKEN=$(get_token)

# vault_key NAME: the key bundle (GET /keys/NAME) in $O/NAME.json
vault_key() { curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    "$URL/keys/$1?api-version=7.4" >"$O/$1.json"; }
# jq-like: jget JSON-FILE PYTHON-EXPR (j = the parsed JSON)
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# ---- C_GenerateKeyPair through pkcs11-tool ----
check "--keypairgen rsa:2048 --label lc-rsa" "${P11W[@]}" --keypairgen --key-type rsa:2048 \
    --label lc-rsa
check "--keypairgen EC:prime256v1 --label lc-ec" "${P11W[@]}" --keypairgen \
    --key-type EC:prime256v1 --label lc-ec
check "--keypairgen EC:secp384r1 --label lc-ec384" "${P11W[@]}" --keypairgen \
    --key-type EC:secp384r1 --label lc-ec384
check "vault has lc-rsa" vault_key lc-rsa
cp "$O/lc-rsa.json" "$O/rsa.json"
check "lc-rsa is RSA with a 2048-bit modulus" python3 - "$O/rsa.json" <<'PYEOF'
import json, sys, base64
j = json.load(open(sys.argv[1]))["key"]
n = base64.urlsafe_b64decode(j["n"] + "==")
assert j["kty"] in ("RSA", "RSA-HSM") and len(n) * 8 == 2048, (j["kty"], len(n))
PYEOF
check "vault has lc-ec" vault_key lc-ec
cp "$O/lc-ec.json" "$O/ec.json"
[ "$(jget "$O/ec.json" 'j["key"]["crv"]')" = "P-256" ] && ok "lc-ec is P-256" || not_ok "lc-ec is P-256"
check_fails_with "--keypairgen without login: CKR_USER_NOT_LOGGED_IN" "CKR_USER_NOT_LOGGED_IN" \
    "${P11[@]}" --keypairgen --key-type EC:prime256v1 --label lc-nologin
check_fails_with "--keypairgen with an existing name: CKR_ATTRIBUTE_VALUE_INVALID" \
    "CKR_ATTRIBUTE_VALUE_INVALID" "${P11W[@]}" --keypairgen --key-type EC:prime256v1 --label lc-ec
check_fails_with "--keypairgen rsa:1024: CKR_KEY_SIZE_RANGE" "CKR_KEY_SIZE_RANGE" \
    "${P11W[@]}" --keypairgen --key-type rsa:1024 --label lc-small

# sign with the new keys; openssl verifies with the exported public keys
head -c 1000 /dev/urandom >"$O/data"
check "lc-rsa: --read-object pubkey" "${P11[@]}" --read-object --type pubkey \
    --id "$(kid lc-rsa)" -o "$O/lc-rsa.pub.der"
# (the EC public key through CKA_PUBLIC_KEY_INFO: pkcs11-tool 0.23's EC export reads freed
# memory under ASan, see test_pkcs11.sh)
check "lc-ec: CKA_PUBLIC_KEY_INFO" p11py_env OUT="$O/lc-ec.pub.der" <<'PYEOF'
import os
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True)
k = find_attrs(h, A(CKA_LABEL, b"lc-ec"), A(CKA_CLASS, CKO_PUBLIC_KEY)); assert len(k) == 1, k
open(os.environ["OUT"], "wb").write(attr_or_rv(h, k[0], 0x129))
assert C_Finalize(None) == 0
PYEOF
check "lc-rsa: SHA256-RSA-PKCS signature" "${P11[@]}" --sign --id "$(kid lc-rsa)" \
    -m SHA256-RSA-PKCS -i "$O/data" -o "$O/rsa.sig"
check "lc-rsa: openssl verifies it" openssl dgst -sha256 -verify "$O/lc-rsa.pub.der" \
    -keyform DER -signature "$O/rsa.sig" "$O/data"
check "lc-ec: ECDSA-SHA256 signature (DER)" "${P11[@]}" --sign --id "$(kid lc-ec)" \
    -m ECDSA-SHA256 --signature-format openssl -i "$O/data" -o "$O/ec.sig"
check "lc-ec: openssl verifies it" openssl dgst -sha256 -verify "$O/lc-ec.pub.der" \
    -keyform DER -signature "$O/ec.sig" "$O/data"

# HSM protection: asked for with CKA_KVAULT_HSM, or always on a managed HSM pool's slot
check "--keypairgen on the managed HSM pool devhsm" timeout 120 pkcs11-tool --module "$KV_SO" \
    --token-label devhsm --login --pin any --keypairgen --key-type EC:secp384r1 --label lc-hsm
check "CKA_KVAULT_HSM: true for devhsm's lc-hsm and a CKA_KVAULT_HSM template; false for lc-ec" p11py <<'PYEOF'
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True, pin="any")
k = find_attrs(h, A(CKA_LABEL, b"lc-ec"), A(CKA_CLASS, CKO_PRIVATE_KEY)); assert len(k) == 1, k
expect("lc-ec CKA_KVAULT_HSM", attr_or_rv(h, k[0], CKA_KVAULT_HSM), b"\x00")
rv, hp, hv = generate_key_pair(h, CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)],
                     [A(CKA_LABEL, b"lc-hsmreq"), A(CKA_KVAULT_HSM, True)])
expect("C_GenerateKeyPair with CKA_KVAULT_HSM", rv, 0)
expect("lc-hsmreq CKA_KVAULT_HSM", attr_or_rv(h, hv, CKA_KVAULT_HSM), b"\x01")
hh = open_session(1, rw=True, pin="any")
k = find_attrs(hh, A(CKA_LABEL, b"lc-hsm"), A(CKA_CLASS, CKO_PRIVATE_KEY)); assert len(k) == 1, k
expect("devhsm lc-hsm CKA_KVAULT_HSM", attr_or_rv(hh, k[0], CKA_KVAULT_HSM), b"\x01")
assert C_Finalize(None) == 0
PYEOF
check "vault: lc-hsmreq is EC-HSM" vault_key lc-hsmreq
[ "$(jget "$O/lc-hsmreq.json" 'j["key"]["kty"]')" = "EC-HSM" ] && ok "lc-hsmreq kty EC-HSM" ||
    not_ok "lc-hsmreq kty EC-HSM"

# ---- C_CreateObject: BYOK private keys ----
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$O/imp.pem" 2>/dev/null
openssl pkey -in "$O/imp.pem" -outform DER -out "$O/imp.der"
openssl pkey -in "$O/imp.pem" -pubout -out "$O/imp.pub.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$O/impec.pem" 2>/dev/null
openssl pkey -in "$O/impec.pem" -outform DER -out "$O/impec.der"
openssl pkey -in "$O/impec.pem" -pubout -out "$O/impec.pub.pem"
check "--write-object --type privkey (RSA) --label lc-imp" "${P11W[@]}" --write-object \
    "$O/imp.der" --type privkey --label lc-imp
check "--write-object --type privkey (EC) --label lc-impec" "${P11W[@]}" --write-object \
    "$O/impec.der" --type privkey --label lc-impec
check "vault has lc-imp with the imported modulus" python3 - "$O/imp.pem" <<PYEOF
import json, base64, subprocess, sys
j = json.loads(subprocess.check_output(["curl", "-sf", "--cacert", "$CA", "-H",
    "Authorization: Bearer $TOKEN", "$URL/keys/lc-imp?api-version=7.4"]))
n = int.from_bytes(base64.urlsafe_b64decode(j["key"]["n"] + "=="), "big")
mod = subprocess.check_output(["openssl", "rsa", "-in", sys.argv[1], "-noout", "-modulus"])
assert n == int(mod.decode().strip().split("=")[1], 16)
PYEOF
check "lc-imp: SHA256-RSA-PKCS signature" "${P11[@]}" --sign --id "$(kid lc-imp)" \
    -m SHA256-RSA-PKCS -i "$O/data" -o "$O/imp.sig"
check "lc-imp: openssl verifies it with the original public key" openssl dgst -sha256 \
    -verify "$O/imp.pub.pem" -signature "$O/imp.sig" "$O/data"
check "lc-impec: ECDSA-SHA256 signature" "${P11[@]}" --sign --id "$(kid lc-impec)" \
    -m ECDSA-SHA256 --signature-format openssl -i "$O/data" -o "$O/impec.sig"
check "lc-impec: openssl verifies it with the original public key" openssl dgst -sha256 \
    -verify "$O/impec.pub.pem" -signature "$O/impec.sig" "$O/data"
check_fails_with "--write-object privkey with an existing name: CKR_ATTRIBUTE_VALUE_INVALID" \
    "CKR_ATTRIBUTE_VALUE_INVALID" "${P11W[@]}" --write-object "$O/imp.der" --type privkey \
    --label lc-imp


check "generated keys: CKA_LOCAL, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE true; imported: false" p11py <<'PYEOF'
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True)
for label, want in (("lc-rsa", b"\x01"), ("lc-ec", b"\x01"), ("lc-imp", b"\x00"), ("lc-impec", b"\x00")):
    k = find_attrs(h, A(CKA_LABEL, label.encode()), A(CKA_CLASS, CKO_PRIVATE_KEY)); assert len(k) == 1, (label, k)
    for t in (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE):
        expect("%s attr 0x%x" % (label, t), attr_or_rv(h, k[0], t), want)
    expect(label + " CKA_SENSITIVE", attr_or_rv(h, k[0], CKA_SENSITIVE), b"\x01")
    expect(label + " CKA_DESTROYABLE", attr_or_rv(h, k[0], CKA_DESTROYABLE), b"\x01")
    expect(label + " CKA_MODIFIABLE", attr_or_rv(h, k[0], CKA_MODIFIABLE), b"\x01")
assert C_Finalize(None) == 0
PYEOF

check "a find right after C_GenerateKeyPair / C_DestroyObject sees the change (warm cache)" p11py <<'PYEOF'
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True, pin="any")
before = find_attrs(h, A(CKA_CLASS, CKO_PRIVATE_KEY))          # fills the slot's listing cache
rv, hp, hv = generate_key_pair(h, CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256), A(CKA_VERIFY, True)],
                     [A(CKA_LABEL, b"lc-fresh"), A(CKA_SIGN, True)])
expect("C_GenerateKeyPair lc-fresh", rv, 0)
after = find_attrs(h, A(CKA_CLASS, CKO_PRIVATE_KEY))
assert hv in after and hv not in before and len(after) == len(before) + 1, (before, after, hv)
assert hp in find_attrs(h, A(CKA_CLASS, CKO_PUBLIC_KEY))
expect("label of the new private key", attr_or_rv(h, hv, CKA_LABEL), b"lc-fresh")
expect("destroy the public key object alone", C_DestroyObject(h, hp), 0x1b)
expect("C_DestroyObject lc-fresh", C_DestroyObject(h, hv), 0)
gone = find_attrs(h, A(CKA_CLASS, CKO_PRIVATE_KEY))
assert hv not in gone and len(gone) == len(before), gone
expect("destroy it again", C_DestroyObject(h, hv), 0x82)
assert C_Finalize(None) == 0
PYEOF
check "lc-fresh is soft-deleted in the vault (GET /deletedkeys/lc-fresh)" \
    curl -sf --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    "$URL/deletedkeys/lc-fresh?api-version=7.4"

check "C_SetAttributeValue: key_ops, CKA_END_DATE, enabled change in the vault" p11py <<'PYEOF'
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True, pin="any")
k = find_attrs(h, A(CKA_LABEL, b"lc-rsa"), A(CKA_CLASS, CKO_PRIVATE_KEY))[0]
p = find_attrs(h, A(CKA_LABEL, b"lc-rsa"), A(CKA_CLASS, CKO_PUBLIC_KEY))[0]
expect("CKA_DECRYPT false", set_attrs(h, k, A(CKA_DECRYPT, False)), 0)
expect("CKA_DECRYPT reads false at once", attr_or_rv(h, k, CKA_DECRYPT), b"\x00")
expect("CKA_ENCRYPT false + CKA_END_DATE 20301231 on the public key",
       set_attrs(h, p, A(CKA_ENCRYPT, False), A(CKA_END_DATE, b"20301231")), 0)
expect("CKA_END_DATE reads back", attr_or_rv(h, k, CKA_END_DATE), b"20301231")
expect("enabled false", set_attrs(h, k, A(CKA_KVAULT_ENABLED, False)), 0)
expect("enabled reads false", attr_or_rv(h, k, CKA_KVAULT_ENABLED), b"\x00")
expect("enabled true again", set_attrs(h, k, A(CKA_KVAULT_ENABLED, True)), 0)
for t, v in ((CKA_LABEL, b"other"), (CKA_ID, b"x" * 16), (CKA_SENSITIVE, False),
             (CKA_EXTRACTABLE, True), (CKA_PRIVATE, False), (CKA_LOCAL, False)):
    expect("set 0x%x" % t, set_attrs(h, k, A(t, v)), 0x10)
expect("CKA_MODULUS_BITS on the public key", set_attrs(h, p, A(CKA_MODULUS_BITS, 4096)), 0x10)
expect("CKA_SIGN on the public key (not its attribute)", set_attrs(h, p, A(CKA_SIGN, True)), 0x12)
expect("a malformed CK_BBOOL", set_attrs(h, k, A(CKA_SIGN, b"\x01\x00")), 0x13)
expect("a bad date", set_attrs(h, k, A(CKA_START_DATE, b"2030-1-1")), 0x13)
ec = find_attrs(h, A(CKA_LABEL, b"lc-ec"), A(CKA_CLASS, CKO_PRIVATE_KEY))[0]
expect("CKA_DECRYPT true on an EC key", set_attrs(h, ec, A(CKA_DECRYPT, True)), 0x13)
ro = open_session(pin="any")
expect("R/O session", set_attrs(ro, k, A(CKA_SIGN, True)), 0xb5)
assert C_Finalize(None) == 0
PYEOF
check "vault: lc-rsa key_ops lost decrypt and encrypt, exp = 2030-12-31T23:59:59Z, enabled" \
    vault_key lc-rsa
check "lc-rsa attributes in the vault" python3 - "$O/lc-rsa.json" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
ops = set(j["key"]["key_ops"])
assert "decrypt" not in ops and "encrypt" not in ops and "sign" in ops and "verify" in ops, ops
assert j["attributes"]["exp"] == 1924991999, j["attributes"]
assert j["attributes"]["enabled"] is True
PYEOF

check "sessions, login and templates: the standard's return codes" p11py <<'PYEOF'
from p11 import *
assert C_Initialize(None) == 0
ro = open_session(pin="any")
rv, _, _ = generate_key_pair(ro, CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)], [A(CKA_LABEL, b"lc-x")])
expect("C_GenerateKeyPair in a R/O session", rv, 0xb5)
rv, _ = create_object(ro, A(CKA_CLASS, CKO_PRIVATE_KEY), A(CKA_KEY_TYPE, CKK_EC), A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject in a R/O session", rv, 0xb5)
k = find_attrs(ro, A(CKA_LABEL, b"lc-ec"), A(CKA_CLASS, CKO_PRIVATE_KEY))[0]
expect("C_DestroyObject in a R/O session", C_DestroyObject(ro, k), 0xb5)
C_CloseSession(ro)
h = open_session(rw=True, pin="any")
cases = [
    ("no label", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)], [], 0xd0),
    ("no curve", CKM_EC_KEY_PAIR_GEN, [], [A(CKA_LABEL, b"lc-x")], 0xd0),
    ("no modulus bits", CKM_RSA_PKCS_KEY_PAIR_GEN, [], [A(CKA_LABEL, b"lc-x")], 0xd0),
    ("bad label", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)], [A(CKA_LABEL, b"lc_x")], 0x13),
    ("two labels", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256), A(CKA_LABEL, b"lc-y")],
     [A(CKA_LABEL, b"lc-x")], 0xd1),
    ("wrong class", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256), A(CKA_CLASS, CKO_PRIVATE_KEY)],
     [A(CKA_LABEL, b"lc-x")], 0xd1),
    ("wrong key type", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256), A(CKA_KEY_TYPE, CKK_RSA)],
     [A(CKA_LABEL, b"lc-x")], 0xd1),
    ("unknown attribute", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256), A(0x7777, b"x")],
     [A(CKA_LABEL, b"lc-x")], 0x12),
    ("secp224r1", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, bytes.fromhex("06052b81040021"))],
     [A(CKA_LABEL, b"lc-x")], 0x140),
    ("RSA 1024", CKM_RSA_PKCS_KEY_PAIR_GEN, [A(CKA_MODULUS_BITS, 1024)], [A(CKA_LABEL, b"lc-x")], 0x62),
    ("exponent 3", CKM_RSA_PKCS_KEY_PAIR_GEN, [A(CKA_MODULUS_BITS, 2048),
     A(CKA_PUBLIC_EXPONENT, b"\x03")], [A(CKA_LABEL, b"lc-x")], 0x13),
    ("extractable", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)],
     [A(CKA_LABEL, b"lc-x"), A(CKA_EXTRACTABLE, True)], 0x13),
    ("session key", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)],
     [A(CKA_LABEL, b"lc-x"), A(CKA_TOKEN, False)], 0x13),
    ("foreign CKA_ID", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)],
     [A(CKA_LABEL, b"lc-x"), A(CKA_ID, b"\x01\x02")], 0x13),
    ("existing name", CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)], [A(CKA_LABEL, b"lc-ec")], 0x13),
    ("bad mechanism", 0x1050, [A(CKA_EC_PARAMS, EC_P256)], [A(CKA_LABEL, b"lc-x")], 0x70),
]
for what, mech, pub, priv, want in cases:
    rv, _, _ = generate_key_pair(h, mech, pub, priv)
    expect("C_GenerateKeyPair, " + what, rv, want)
rv, _ = create_object(h, A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject without CKA_CLASS", rv, 0xd0)
rv, _ = create_object(h, A(CKA_CLASS, CKO_PRIVATE_KEY), A(CKA_KEY_TYPE, CKK_RSA), A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject RSA without its components", rv, 0xd0)
rv, _ = create_object(h, A(CKA_CLASS, CKO_PRIVATE_KEY), A(CKA_KEY_TYPE, CKK_EC), A(CKA_EC_PARAMS, EC_P256),
               A(CKA_VALUE, b"\x00" * 32), A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject EC with a zero scalar", rv, 0x13)
rv, _ = create_object(h, A(CKA_CLASS, CKO_PUBLIC_KEY), A(CKA_KEY_TYPE, CKK_EC), A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject of a lone public key", rv, 0x13)
rv, _ = create_object(h, A(CKA_CLASS, CKO_CERTIFICATE), A(CKA_LABEL, b"lc-x"), A(CKA_VALUE, b"not DER"))
expect("C_CreateObject of a certificate that is not DER", rv, 0x13)
rv, _ = create_object(h, A(CKA_CLASS, CKO_CERTIFICATE), A(CKA_LABEL, b"lc-x"))
expect("C_CreateObject of a certificate without CKA_VALUE", rv, 0xd0)
assert C_Finalize(None) == 0
# without login
assert C_Initialize(None) == 0
h = open_session(rw=True)
rv, _, _ = generate_key_pair(h, CKM_EC_KEY_PAIR_GEN, [A(CKA_EC_PARAMS, EC_P256)], [A(CKA_LABEL, b"lc-x")])
expect("C_GenerateKeyPair without login", rv, 0x101)
assert C_Finalize(None) == 0
PYEOF
check "no key lc-x was created by the refused templates" sh -c \
    "! curl -sf --cacert '$CA' -H 'Authorization: Bearer $TOKEN' '$URL/keys/lc-x?api-version=7.4'"

# ---- C_DestroyObject through pkcs11-tool: a soft delete ----
check "--delete-object --type privkey --label lc-ec" "${P11W[@]}" --delete-object --type privkey \
    --label lc-ec
check "lc-ec is gone from /keys" sh -c \
    "! curl -sf --cacert '$CA' -H 'Authorization: Bearer $TOKEN' '$URL/keys/lc-ec?api-version=7.4'"
check "lc-ec is soft-deleted (GET /deletedkeys/lc-ec)" curl -sf --cacert "$CA" \
    -H "Authorization: Bearer $TOKEN" "$URL/deletedkeys/lc-ec?api-version=7.4"
check "-O no longer lists lc-ec" sh -c "! ${P11[*]} -O | grep -q 'label: *lc-ec$'"

# ---- certificates: merge into a pending certificate operation ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$O/ca.key" -out "$O/ca.pem" -days 30 \
    -subj "/CN=lifecycle test CA" 2>/dev/null
check "pending certificate lc-cert (issuer Unknown) through REST" sh -c "curl -s --cacert '$CA' \
    -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' -X POST \
    '$URL/certificates/lc-cert/create?api-version=7.4' -d '{\"policy\":{\"key_props\":{\"kty\":\"RSA\",\"key_size\":2048},\"x509_props\":{\"subject\":\"CN=lc-cert.example\"},\"issuer\":{\"name\":\"Unknown\"}}}' >'$O/pending.json' && grep -q csr '$O/pending.json'"
python3 -c 'import json,sys,base64; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["csr"]))' \
    "$O/pending.json" "$O/lc-cert.csr.der" 2>/dev/null
check "sign its CSR with a local CA" openssl x509 -req -inform DER -in "$O/lc-cert.csr.der" \
    -CA "$O/ca.pem" -CAkey "$O/ca.key" -CAcreateserial -days 10 -outform DER -out "$O/lc-cert.der"
check "--write-object --type cert --label lc-cert merges it" "${P11W[@]}" --write-object \
    "$O/lc-cert.der" --type cert --label lc-cert
check "the vault's certificate lc-cert is the merged one" sh -c "curl -sf --cacert '$CA' \
    -H 'Authorization: Bearer $TOKEN' '$URL/certificates/lc-cert?api-version=7.4' | python3 -c \
    'import json,sys,base64; assert base64.b64decode(json.load(sys.stdin)[\"cer\"]) == open(\"$O/lc-cert.der\",\"rb\").read()'"
check "-O shows certificate lc-cert" sh -c "${P11[*]} -O | grep -q 'label: *lc-cert$'"
check_fails_with "--write-object --type cert without a pending operation: CKR_ATTRIBUTE_VALUE_INVALID" \
    "CKR_ATTRIBUTE_VALUE_INVALID" "${P11W[@]}" --write-object "$O/lc-cert.der" --type cert \
    --label lc-nopending

# ---- older key versions by configuration ----
check "a second version of lc-rsa (REST)" rest_create_key lc-rsa '{"kty":"RSA","key_size":2048}' \
    "$O/v2.json"
OLDV=$(jget "$O/rsa.json" 'j["key"]["kid"].rsplit("/",1)[1]')
check "key_versions = latest (default): lc-rsa shows once" sh -c \
    "[ \$(${P11[*]} -O --type privkey | grep -c 'label: *lc-rsa') -eq 1 ]"
sed 's/^\(\[vault dev\]\)$/\1\nkey_versions = all/' "$KVAULT_CONF" >"$O/all.conf"
grep -q "key_versions = all" "$O/all.conf" && ok "config with key_versions = all" ||
    not_ok "config with key_versions = all"
check "key_versions = all: -O lists lc-rsa/$OLDV too" sh -c \
    "KVAULT_CONF='$O/all.conf' ${P11[*]} -O --type privkey | grep -q 'label: *lc-rsa/$OLDV$'"
OLDID=$(printf 'dev/lc-rsa/%s' "$OLDV" | openssl dgst -sha256 -binary | head -c 16 | xxd -p)
check "the old version signs (--id of lc-rsa/$OLDV)" env KVAULT_CONF="$O/all.conf" \
    "${P11[@]}" --sign --id "$OLDID" -m SHA256-RSA-PKCS -i "$O/data" -o "$O/old.sig"
check "openssl verifies the old version's signature with the old public key" openssl dgst \
    -sha256 -verify "$O/lc-rsa.pub.der" -keyform DER -signature "$O/old.sig" "$O/data"
check "key_versions = all: the old version's objects (own CKA_ID, not destroyable alone)" \
    p11py_env KVAULT_CONF="$O/all.conf" OLDV="$OLDV" <<'PYEOF'
import os
from p11 import *
assert C_Initialize(None) == 0
h = open_session(rw=True, pin="any")
label = ("lc-rsa/" + os.environ["OLDV"]).encode()
old = find_attrs(h, A(CKA_LABEL, label), A(CKA_CLASS, CKO_PRIVATE_KEY))
cur = find_attrs(h, A(CKA_LABEL, b"lc-rsa"), A(CKA_CLASS, CKO_PRIVATE_KEY))
assert len(old) == 1 and len(cur) == 1 and old != cur, (old, cur)
assert attr_or_rv(h, old[0], CKA_ID) != attr_or_rv(h, cur[0], CKA_ID)
assert old[0] in find_attrs(h, A(CKA_CLASS, CKO_PRIVATE_KEY))
expect("destroy an older version alone", C_DestroyObject(h, old[0]), 0x1b)
assert C_Finalize(None) == 0
PYEOF

finish
