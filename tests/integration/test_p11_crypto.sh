#!/bin/bash
# test_p11_crypto.sh - kvault.so's AES and key-wrap mechanisms (issue 5, "Mechanisms"), against
# vaultd's dev managed HSM pool `devhsm` (slot label devhsm) and the dev vault (slot dev):
#  1. pkcs11-tool --keygen --key-type AES:32 --label a1 creates an oct-HSM key; pkcs11-tool
#     lists it as a secret key; the mechanism lists: AES on devhsm only, CKF_UNWRAP on RSA.
#  2. (python3 + ctypes, p11crypto.py) attributes of a1 (CKK_AES, 32 bytes, sensitive, never
#     extractable, CKA_VALUE sensitive); AES-GCM with AAD round trip (the HSM's IV written back
#     into CK_GCM_PARAMS.pIv), tampered tag / wrong AAD -> CKR_ENCRYPTED_DATA_INVALID; AES-CBC and
#     AES-CBC-PAD round trips and ciphertext lengths; multi-part == single-part results; the
#     two-call convention; multi-part RSA encryption.
#  3. wrap / unwrap: an AES key wrapped by `openssl pkeyutl -encrypt` (OAEP) with the public
#     key of an RSA-HSM key is unwrapped on the HSM into a module session object, readable
#     (CKA_SENSITIVE=FALSE), findable, used for local AES-GCM (checked with python's AESGCM) and
#     CBC; AES key wrap (RFC 3394 and RFC 5649) of that session key under a1 and back; RSA wrap and unwrap; a tampered
#     wrapped key -> CKR_WRAPPED_KEY_INVALID; CKA_TOKEN=TRUE on a vault without AES ->
#     CKR_TEMPLATE_INCONSISTENT; session objects die with their session; C_GenerateKey of a
#     session AES key; C_DestroyObject of a session object.
#     oct-HSM keys made outside the module (the HSM does not state their size) show the size
#     vaultclient probed (CKA_VALUE_LEN 16 / 24, the latter by a wrap for a wrap-only key).
#  4. pkcs11-tool --test --login on the devhsm slot: no errors.
#  5. a local HSM pool slot (two SoftHSMv2 members, `kvault pool init`; skipped without
#     SoftHSMv2): C_GenerateKey CKA_TOKEN=TRUE in the pool, AES-GCM with the caller's IV,
#     CBC-PAD, AES-KEY-WRAP-PAD listed and used, a key unwrapped / created with CKA_TOKEN=TRUE is
#     imported into the pool and encrypts exactly as python's AESGCM with its value.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

p11_setup
C="$T_TMP/p11crypto"
mkdir -p "$C"

# ---- 1. key generation through pkcs11-tool, listings, mechanisms ----
check "pkcs11-tool --keygen AES:32 a1 on devhsm" "${P11[@]}" --token-label devhsm --login \
    --pin 1234 --keygen --key-type AES:32 --label a1
check "pkcs11-tool -O lists a1 on devhsm" "${P11[@]}" --token-label devhsm -O
grep -q "Secret Key Object; AES length 32" "$T_TMP/last.out" && grep -q 'label: *a1' "$T_TMP/last.out" &&
    ok "a1 is listed as a 32-byte AES secret key" || { not_ok "a1 is listed as a 32-byte AES secret key"; kv_show_last; }
check "pkcs11-tool -M on devhsm" "${P11[@]}" --token-label devhsm -M
for m in AES-KEY-GEN AES-GCM AES-CBC AES-CBC-PAD AES-KEY-WRAP; do
    grep -Eq "^ *$m[ ,]" "$T_TMP/last.out" && ok "devhsm offers $m" || not_ok "devhsm offers $m"
done
# (OpenSC 0.23 has no name for CKM_AES_KEY_WRAP_PAD: "mechtype-0x210A"; the managed HSM's wrapkey
# alg CKM_AES_KEY_WRAP_PAD, spec section 2)
grep -Eiq "^ *(AES-KEY-WRAP-PAD|mechtype-0x0*210A)[ ,]" "$T_TMP/last.out" &&
    ok "devhsm offers AES-KEY-WRAP-PAD" || { not_ok "devhsm offers AES-KEY-WRAP-PAD"; kv_show_last; }
grep -Eq "^ *RSA-PKCS-OAEP.*unwrap" "$T_TMP/last.out" && ok "RSA-PKCS-OAEP has CKF_WRAP/CKF_UNWRAP" ||
    not_ok "RSA-PKCS-OAEP has CKF_WRAP/CKF_UNWRAP"
check "pkcs11-tool -M on dev" "${P11[@]}" --token-label dev -M
grep -q "AES" "$T_TMP/last.out" && not_ok "dev (a vault) offers no AES mechanism" ||
    ok "dev (a vault) offers no AES mechanism"

# ---- an RSA-HSM key on devhsm for unwrapping, its public key ----
check "kvault key create w1 (RSA-HSM) on devhsm" "$KVAULT" key create --hsm-name devhsm --name w1 \
    --kty RSA-HSM --size 2048
# oct-HSM keys made outside the module: a managed HSM does not state their size (probed)
check "kvault key create a2 (oct-HSM 128) on devhsm" "$KVAULT" key create --hsm-name devhsm \
    --name a2 --kty oct-HSM --size 128
check "kvault key create a3 (oct-HSM 192, wrap only) on devhsm" "$KVAULT" key create --hsm-name devhsm \
    --name a3 --kty oct-HSM --size 192 --ops wrapKey unwrapKey
check "kvault key download w1" "$KVAULT" key download --hsm-name devhsm --name w1 --file "$C/w1.pem"
check "kvault key create r1 (RSA) on dev" "$KVAULT" key create --vault-name dev --name r1 --kty RSA \
    --size 2048
check "kvault key download r1" "$KVAULT" key download --vault-name dev --name r1 --file "$C/r1.pem"
head -c 32 /dev/urandom >"$C/k.bin"
check "openssl pkeyutl -encrypt (OAEP SHA-1) an AES key with w1's public key" openssl pkeyutl -encrypt \
    -pubin -inkey "$C/w1.pem" -pkeyopt rsa_padding_mode:oaep -in "$C/k.bin" -out "$C/k.w1"
check "openssl pkeyutl -encrypt (PKCS#1 v1.5) an AES key with r1's public key" openssl pkeyutl \
    -encrypt -pubin -inkey "$C/r1.pem" -in "$C/k.bin" -out "$C/k.r1"

# ---- 2. and 3. through ctypes ----
cat >"$C/p11crypto.py" <<'PYEOF'
import ctypes, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from p11 import *

D = sys.argv[2]
K = open(os.path.join(D, "k.bin"), "rb").read()
KW1 = open(os.path.join(D, "k.w1"), "rb").read()
KR1 = open(os.path.join(D, "k.r1"), "rb").read()

fails = 0
def t(cond, desc):
    global fails
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond:
        fails += 1

msg = bytes(range(256)) * 3 + b"tail"   # 772 bytes
aad = b"header data"
iv = bytes(range(16))

def run_pool(ps):
    """The local pool slot: AES keys generated in the pool, GCM with the caller's IV,
    RFC 5649 wrap, a key unwrapped into the pool (CKA_TOKEN=TRUE)."""
    s = c_ulong()
    assert C_OpenSession(ps, CKF_RW_SERIAL, None, None, byref(s)) == 0
    s = s.value
    assert C_Login(s, 1, b"0000", 4) == 0
    arr, _ = template([(CKA_TOKEN, True), (CKA_VALUE_LEN, 32), (CKA_LABEL, b"p1")])
    gm = Mech(CKM_AES_KEY_GEN, None, 0); h = c_ulong(0)
    rv = C_GenerateKey(s, byref(gm), arr, 3, byref(h))
    p1 = h.value
    t(rv == CKR_OK and 0 < p1 < 0x40000000, "pool: C_GenerateKey CKA_TOKEN=TRUE makes the pool key p1 (rv 0x%x)" % rv)
    t(find_objects(s, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_LABEL, b"p1")]) == [p1], "pool: p1 is found")
    t(attr_ul(s, p1, CKA_VALUE_LEN) == 32 and attr_b(s, p1, CKA_SENSITIVE) is True and
      attr_b(s, p1, CKA_LOCAL) is True and attr_rv(s, p1, CKA_VALUE)[0] == CKR_ATTRIBUTE_SENSITIVE,
      "pool: p1 is a sensitive, local 32-byte AES key")
    civ = bytes(range(12))
    m, keep = gcm_mech(civ, aad)
    rv, ct = encrypt(s, m, p1, msg)
    t(rv == CKR_OK and len(ct) == len(msg) + 16 and ctypes.string_at(keep[0], 12) == civ,
      "pool: AES-GCM encryption uses the caller's IV (rv 0x%x)" % rv)
    m, keep = gcm_mech(civ, aad)
    rv, pt = decrypt_multi(s, m, p1, [ct[:50], ct[50:]])
    t(rv == CKR_OK and pt == msg, "pool: AES-GCM multi-part decrypt(encrypt(x)) == x")
    m, keep = gcm_mech(civ, aad)
    rv, _ = decrypt(s, m, p1, ct[:-1] + bytes([ct[-1] ^ 4]))
    t(rv == CKR_ENCRYPTED_DATA_INVALID, "pool: a tampered tag -> CKR_ENCRYPTED_DATA_INVALID (0x%x)" % rv)
    m, b = iv_mech(CKM_AES_CBC_PAD, iv)
    rv, c1 = encrypt(s, m, p1, msg)
    rv2, c2 = encrypt_multi(s, m, p1, [msg[:7], msg[7:]])
    t(rv == CKR_OK and rv2 == CKR_OK and c1 == c2 and len(c1) == 784,
      "pool: AES-CBC-PAD multi-part == single-part, 784 bytes")
    rv, p = decrypt(s, m, p1, c1 or b"")
    t(rv == CKR_OK and p == msg, "pool: AES-CBC-PAD decrypt(encrypt(x)) == x")
    # a session key, wrapped under p1 with RFC 5649 and unwrapped into the pool
    arr, _ = template([(CKA_TOKEN, False), (CKA_VALUE_LEN, 32), (CKA_SENSITIVE, False), (CKA_LABEL, b"ps1")])
    rv = C_GenerateKey(s, byref(gm), arr, 4, byref(h))
    g = h.value
    K2 = attr_rv(s, g, CKA_VALUE)[1]
    t(rv == CKR_OK and K2 is not None and len(K2) == 32, "pool: a readable session key ps1")
    m = Mech(CKM_AES_KEY_WRAP_PAD, None, 0)
    rv, wk = wrap_key(s, m, p1, g)
    t(rv == CKR_OK and len(wk) == 40, "pool: C_WrapKey AES-KEY-WRAP-PAD under p1 (rv 0x%x)" % rv)
    rv, p2 = unwrap_key(s, m, p1, wk or b"\0" * 40, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                                 (CKA_TOKEN, True), (CKA_LABEL, b"p2")])
    t(rv == CKR_OK and 0 < p2 < 0x40000000, "pool: C_UnwrapKey CKA_TOKEN=TRUE imports p2 into the pool (rv 0x%x)" % rv)
    t(attr_b(s, p2, CKA_LOCAL) is False and attr_b(s, p2, CKA_NEVER_EXTRACTABLE) is False,
      "pool: the imported p2 is not local, not never-extractable")
    m, keep = gcm_mech(civ, aad)
    rv, ct = encrypt(s, m, p2, msg)
    t(rv == CKR_OK and K2 is not None and ct == AESGCM(K2).encrypt(civ, msg, aad),
      "pool: AES-GCM with p2 in the pool == python's AESGCM with the session key's value")
    m = Mech(CKM_AES_KEY_WRAP, None, 0)
    rv, wk = wrap_key(s, m, p1, g)
    rv2, g2 = unwrap_key(s, m, p1, wk or b"\0" * 40, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                                  (CKA_SENSITIVE, False)])
    t(rv == CKR_OK and rv2 == CKR_OK and attr_rv(s, g2, CKA_VALUE)[1] == K2,
      "pool: AES-KEY-WRAP under p1 and back")
    K4 = bytes(range(32))
    arr, _ = template([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE, K4),
                      (CKA_TOKEN, True), (CKA_LABEL, b"p3")])
    rv = C_CreateObject(s, arr, 5, byref(h))
    p3 = h.value
    m, keep = gcm_mech(civ, aad)
    rv2, ct = encrypt(s, m, p3, msg)
    t(rv == CKR_OK and 0 < p3 < 0x40000000 and rv2 == CKR_OK and ct == AESGCM(K4).encrypt(civ, msg, aad),
      "pool: C_CreateObject CKA_TOKEN=TRUE imports an AES key into the pool (rv 0x%x)" % rv)
    C_CloseSession(s)

assert C_Initialize(None) == 0
n = c_ulong(0)
assert C_GetSlotList(1, None, byref(n)) == 0
slots = (c_ulong * n.value)()
assert C_GetSlotList(1, slots, byref(n)) == 0
slot = {}
for sl in slots:
    ti = ctypes.create_string_buffer(256)
    assert C_GetTokenInfo(sl, ti) == 0
    slot[ti.raw[:32].decode().strip()] = sl
if "hsmpool" in slot:
    run_pool(slot["hsmpool"])
    assert C_Finalize(None) == 0
    print("python: %d failed" % fails)
    sys.exit(1 if fails else 0)
hsm, dev = slot["devhsm"], slot["dev"]
s = c_ulong(); s2 = c_ulong(); sd = c_ulong()
assert C_OpenSession(hsm, CKF_RW_SERIAL, None, None, byref(s)) == 0
assert C_Login(s.value, 1, b"1234", 4) == 0
s = s.value
assert C_OpenSession(dev, CKF_RW_SERIAL, None, None, byref(sd)) == 0
sd = sd.value

# ---- the vault AES key a1 ----
a1 = find_objects(s, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_LABEL, b"a1")])
t(len(a1) == 1, "C_FindObjects finds the secret key a1 by class and label")
a1 = a1[0]
aes = find_objects(s, [(CKA_KEY_TYPE, CKK_AES)])
t(len(aes) == 3 and a1 in aes, "C_FindObjects by CKA_KEY_TYPE CKK_AES finds the 3 AES keys")
t(attr_ul(s, a1, CKA_KEY_TYPE) == CKK_AES and attr_ul(s, a1, CKA_VALUE_LEN) == 32,
  "a1: CKK_AES, CKA_VALUE_LEN 32")
t(attr_b(s, a1, CKA_SENSITIVE) is True and attr_b(s, a1, CKA_EXTRACTABLE) is False and
  attr_b(s, a1, CKA_ALWAYS_SENSITIVE) is True and attr_b(s, a1, CKA_NEVER_EXTRACTABLE) is True and
  attr_b(s, a1, CKA_TOKEN) is True and attr_b(s, a1, CKA_LOCAL) is True,
  "a1: sensitive, not extractable, always sensitive, never extractable, token, local")
t(attr_b(s, a1, CKA_ENCRYPT) and attr_b(s, a1, CKA_DECRYPT) and attr_b(s, a1, CKA_WRAP) and
  attr_b(s, a1, CKA_UNWRAP), "a1: encrypt, decrypt, wrap, unwrap from key_ops")
t(attr_rv(s, a1, CKA_VALUE)[0] == CKR_ATTRIBUTE_SENSITIVE, "a1: CKA_VALUE is CKR_ATTRIBUTE_SENSITIVE")
t(len(attr_rv(s, a1, CKA_ID)[1] or b"") == 16, "a1: a 16-byte CKA_ID")

# keys whose size the HSM did not state
a2 = find_objects(s, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_LABEL, b"a2")])
a3 = find_objects(s, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_LABEL, b"a3")])
t(len(a2) == 1 and attr_ul(s, a2[0], CKA_VALUE_LEN) == 16, "a2 (made by the CLI): CKA_VALUE_LEN 16 (probed)")
t(len(a3) == 1 and attr_ul(s, a3[0], CKA_VALUE_LEN) == 24 and attr_b(s, a3[0], CKA_ENCRYPT) is False and
  attr_b(s, a3[0], CKA_WRAP) is True, "a3 (wrap only): CKA_VALUE_LEN 24 (probed by a wrap), no encrypt")
m, b = iv_mech(CKM_AES_CBC, bytes(16))
rv, c = encrypt(s, m, a2[0], bytes(32))
rv2, p = decrypt(s, m, a2[0], c or b"")
t(rv == CKR_OK and rv2 == CKR_OK and p == bytes(32), "AES-128-CBC round trip with a2")
rv, _ = encrypt(s, m, a3[0], bytes(32))
t(rv == 0x68, "a3 cannot encrypt: CKR_KEY_FUNCTION_NOT_PERMITTED (0x%x)" % rv)
# C_SetAttributeValue on a vault AES key: key_ops and exp change in the vault (checked by REST below)
rv = set_attrs(s, a3[0], A(CKA_UNWRAP, False), A(CKA_END_DATE, b"20351231"))
t(rv == CKR_OK and attr_b(s, a3[0], CKA_UNWRAP) is False and attr_b(s, a3[0], CKA_WRAP) is True and
  attr_rv(s, a3[0], CKA_END_DATE)[1] == b"20351231",
  "C_SetAttributeValue CKA_UNWRAP=FALSE, CKA_END_DATE on the vault AES key a3 (rv 0x%x)" % rv)
rv = set_attrs(s, a3[0], A(CKA_VALUE_LEN, 32))
t(rv == CKR_ATTRIBUTE_READ_ONLY, "C_SetAttributeValue CKA_VALUE_LEN on a3 -> CKR_ATTRIBUTE_READ_ONLY (0x%x)" % rv)
# AES-GCM
zero_iv = bytes(12)
m, keep = gcm_mech(zero_iv, aad)
rv, ct = encrypt(s, m, a1, msg)
t(rv == CKR_OK and len(ct) == len(msg) + 16, "AES-GCM encrypt: ciphertext || 16-byte tag (rv 0x%x)" % rv)
hsm_iv = ctypes.string_at(keep[0], 12)
t(hsm_iv != zero_iv, "AES-GCM: the HSM's IV is written back into CK_GCM_PARAMS.pIv")
m, keep = gcm_mech(hsm_iv, aad)
rv, pt = decrypt(s, m, a1, ct)
t(rv == CKR_OK and pt == msg, "AES-GCM decrypt(encrypt(x)) == x (rv 0x%x)" % rv)
bad = ct[:-1] + bytes([ct[-1] ^ 1])
m, keep = gcm_mech(hsm_iv, aad)
rv, pt = decrypt(s, m, a1, bad)
t(rv == CKR_ENCRYPTED_DATA_INVALID and pt is None, "AES-GCM: a tampered tag -> CKR_ENCRYPTED_DATA_INVALID (0x%x)" % rv)
m, keep = gcm_mech(hsm_iv, b"other data")
rv, pt = decrypt(s, m, a1, ct)
t(rv == CKR_ENCRYPTED_DATA_INVALID, "AES-GCM: other AAD -> CKR_ENCRYPTED_DATA_INVALID (0x%x)" % rv)
m, keep = gcm_mech(hsm_iv, aad)
rv, pt = decrypt_multi(s, m, a1, [ct[:100], ct[100:500], ct[500:]])
t(rv == CKR_OK and pt == msg, "AES-GCM multi-part decrypt == single-part (rv 0x%x)" % rv)
m, keep = gcm_mech(zero_iv, aad)
rv, ct2 = encrypt_multi(s, m, a1, [msg[:10], msg[10:300], msg[300:]])
iv2 = ctypes.string_at(keep[0], 12)
t(rv == CKR_OK and len(ct2) == len(msg) + 16 and iv2 != hsm_iv, "AES-GCM multi-part encrypt (a new IV) (rv 0x%x)" % rv)
m, keep = gcm_mech(iv2, aad)
rv, pt = decrypt(s, m, a1, ct2)
t(rv == CKR_OK and pt == msg, "AES-GCM: the multi-part ciphertext decrypts single-part")
# two-call convention
m, keep = gcm_mech(zero_iv, aad)
assert C_EncryptInit(s, byref(m), a1) == 0
inb = ctypes.create_string_buffer(msg); n = c_ulong(0)
r1 = C_Encrypt(s, inb, len(msg), None, byref(n)); need = n.value
small = ctypes.create_string_buffer(10); n.value = 10
r2 = C_Encrypt(s, inb, len(msg), small, byref(n))
big = ctypes.create_string_buffer(need); n2 = c_ulong(need)
r3 = C_Encrypt(s, inb, len(msg), big, byref(n2))
t(r1 == 0 and need == len(msg) + 16 and r2 == CKR_BUFFER_TOO_SMALL and n.value == need and r3 == 0,
  "AES-GCM two-call convention: length, CKR_BUFFER_TOO_SMALL, then the result")

# AES-CBC and AES-CBC-PAD
data = msg[:768]
m, b = iv_mech(CKM_AES_CBC, iv)
rv, c1 = encrypt(s, m, a1, data)
t(rv == CKR_OK and len(c1) == 768 and c1 != data, "AES-CBC encrypt: 768 bytes in, 768 out")
rv, c2 = encrypt_multi(s, m, a1, [data[:5], data[5:700], data[700:]])
t(rv == CKR_OK and c2 == c1, "AES-CBC multi-part encrypt == single-part")
rv, p1 = decrypt(s, m, a1, c1)
t(rv == CKR_OK and p1 == data, "AES-CBC decrypt(encrypt(x)) == x")
rv, p2 = decrypt_multi(s, m, a1, [c1[:17], c1[17:]])
t(rv == CKR_OK and p2 == data, "AES-CBC multi-part decrypt == single-part")
rv, _ = encrypt(s, m, a1, data[:100])
t(rv == CKR_DATA_LEN_RANGE, "AES-CBC: 100 bytes -> CKR_DATA_LEN_RANGE (0x%x)" % rv)
m, b = iv_mech(CKM_AES_CBC_PAD, iv)
rv, c1 = encrypt(s, m, a1, msg)
t(rv == CKR_OK and len(c1) == (len(msg) // 16 + 1) * 16, "AES-CBC-PAD encrypt: %d bytes -> %d" % (len(msg), len(c1) if c1 else -1))
rv, c2 = encrypt_multi(s, m, a1, [msg[:1], msg[1:]])
t(rv == CKR_OK and c2 == c1, "AES-CBC-PAD multi-part encrypt == single-part")
rv, p1 = decrypt(s, m, a1, c1)
t(rv == CKR_OK and p1 == msg, "AES-CBC-PAD decrypt(encrypt(x)) == x")
rv, p2 = decrypt_multi(s, m, a1, [c1[:33], c1[33:40], c1[40:]])
t(rv == CKR_OK and p2 == msg, "AES-CBC-PAD multi-part decrypt == single-part")
rv, c3 = encrypt(s, m, a1, msg[:32])
t(rv == CKR_OK and len(c3) == 48, "AES-CBC-PAD: 32 bytes -> 48 (a whole padding block)")
m, b = iv_mech(CKM_AES_CBC, iv)
rv, _ = encrypt(sd, m, a1, data)
t(rv in (CKR_MECHANISM_INVALID, CKR_KEY_HANDLE_INVALID), "AES on the dev vault slot is refused (0x%x)" % rv)

# ---- RSA: multi-part encryption, unwrap on the HSM ----
w1priv = find_objects(s, [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, b"w1")])
w1pub = find_objects(s, [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_LABEL, b"w1")])
t(len(w1priv) == 1 and len(w1pub) == 1, "w1's key objects found")
w1priv, w1pub = w1priv[0], w1pub[0]
t(attr_b(s, w1priv, CKA_UNWRAP) is True, "w1: CKA_UNWRAP TRUE (key_ops has unwrapKey)")
om, o = oaep_mech()
rv, rc = encrypt_multi(s, om, w1pub, [b"multi-part ", b"RSA ", b"encryption"])
t(rv == CKR_OK and len(rc) == 256, "RSA-OAEP multi-part encrypt (rv 0x%x)" % rv)
rv, rp = decrypt(s, om, w1priv, rc)
t(rv == CKR_OK and rp == b"multi-part RSA encryption", "RSA-OAEP decrypt of the multi-part ciphertext")
rv, rp = decrypt_multi(s, om, w1priv, [rc[:100], rc[100:]])
t(rv == CKR_OK and rp == b"multi-part RSA encryption", "RSA-OAEP multi-part decrypt")

sk_t = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False),
        (CKA_SENSITIVE, False), (CKA_EXTRACTABLE, True), (CKA_LABEL, b"s1")]
om, o = oaep_mech()
rv, s1 = unwrap_key(s, om, w1priv, KW1, sk_t)
t(rv == CKR_OK and s1 >= 0x40000000, "C_UnwrapKey (RSA-OAEP on the HSM) -> a session object 0x%x (rv 0x%x)" % (s1, rv))
t(attr_rv(s, s1, CKA_VALUE)[1] == K, "the unwrapped session key's CKA_VALUE is the wrapped key")
t(attr_ul(s, s1, CKA_VALUE_LEN) == 32 and attr_b(s, s1, CKA_TOKEN) is False and
  attr_b(s, s1, CKA_LOCAL) is False and attr_b(s, s1, CKA_ALWAYS_SENSITIVE) is False,
  "s1: 32 bytes, not a token object, not local, not always sensitive")
t(find_objects(s, [(CKA_LABEL, b"s1")]) == [s1], "C_FindObjects finds the session object s1 by label")
# C_SetAttributeValue on a session object (PKCS#11 3.0 4.4, CKA_MODIFIABLE TRUE)
rv = set_attrs(s, s1, A(CKA_LABEL, b"s1-renamed"), A(CKA_ID, b"\x01\x02"))
t(rv == CKR_OK and attr_b(s, s1, CKA_MODIFIABLE) is True and
  find_objects(s, [(CKA_LABEL, b"s1-renamed")]) == [s1] and find_objects(s, [(CKA_LABEL, b"s1")]) == [] and
  attr_rv(s, s1, CKA_ID)[1] == b"\x01\x02", "C_SetAttributeValue CKA_LABEL, CKA_ID on the session object s1 (rv 0x%x)" % rv)
rv = set_attrs(s, s1, A(CKA_DECRYPT, False))
rv2 = set_attrs(s, s1, A(CKA_DECRYPT, True))
t(rv == CKR_OK and rv2 == CKR_OK and attr_b(s, s1, CKA_DECRYPT) is True, "s1: CKA_DECRYPT off and on again")
for a, what in ((A(CKA_VALUE, bytes(32)), "CKA_VALUE"), (A(CKA_VALUE_LEN, 16), "CKA_VALUE_LEN"),
                (A(CKA_SENSITIVE, True), "CKA_SENSITIVE FALSE -> TRUE is allowed, but not back"),
                (A(CKA_TOKEN, True), "CKA_TOKEN")):
    rv = set_attrs(s, s1, a)
    want = CKR_OK if what.startswith("CKA_SENSITIVE") else CKR_ATTRIBUTE_READ_ONLY
    t(rv == want, "s1: C_SetAttributeValue %s -> 0x%x (got 0x%x)" % (what, want, rv))
rv = set_attrs(s, s1, A(CKA_SENSITIVE, False))
t(rv == CKR_ATTRIBUTE_READ_ONLY and attr_b(s, s1, CKA_SENSITIVE) is True,
  "s1: CKA_SENSITIVE TRUE -> FALSE -> CKR_ATTRIBUTE_READ_ONLY")
rv = set_attrs(s, s1, A(CKA_LABEL, b"s1"), A(CKA_KEY_TYPE, CKK_AES))
t(rv == CKR_ATTRIBUTE_READ_ONLY and attr_rv(s, s1, CKA_LABEL)[1] == b"s1-renamed",
  "s1: a template with one read-only attribute changes nothing (CKR_ATTRIBUTE_READ_ONLY)")
rv = set_attrs(s, s1, A(CKA_LABEL, b"s1"))
t(rv == CKR_OK and find_objects(s, [(CKA_LABEL, b"s1")]) == [s1], "s1: label back to s1")
m, keep = gcm_mech(bytes(range(12)), aad)
rv, ct = encrypt(s, m, s1, msg)
ref = AESGCM(K).encrypt(bytes(range(12)), msg, aad)
t(rv == CKR_OK and ct == ref, "local AES-GCM with the session key == python's AESGCM")
m, keep = gcm_mech(bytes(range(12)), aad)
rv, pt = decrypt_multi(s, m, s1, [ct[:3], ct[3:]])
t(rv == CKR_OK and pt == msg, "local AES-GCM multi-part decrypt")
m, keep = gcm_mech(bytes(range(12)), aad)
rv, _ = decrypt(s, m, s1, ct[:-1] + bytes([ct[-1] ^ 0x80]))
t(rv == CKR_ENCRYPTED_DATA_INVALID, "local AES-GCM: tampered tag -> CKR_ENCRYPTED_DATA_INVALID")
m, b = iv_mech(CKM_AES_CBC_PAD, iv)
rv, c1 = encrypt(s, m, s1, msg)
e = Cipher(algorithms.AES(K), modes.CBC(iv)).encryptor()
padn = 16 - len(msg) % 16
ref = e.update(msg + bytes([padn]) * padn) + e.finalize()
t(rv == CKR_OK and c1 == ref, "local AES-CBC-PAD with the session key == python's AES-CBC + PKCS#7")

# AES key wrap of the session key under the HSM key a1, and back
m = Mech(CKM_AES_KEY_WRAP, None, 0)
rv, wk = wrap_key(s, m, a1, s1)
t(rv == CKR_OK and len(wk) == 40, "C_WrapKey AES-KEY-WRAP: s1 under a1 (on the HSM) -> 40 bytes (rv 0x%x)" % rv)
rv, s2k = unwrap_key(s, m, a1, wk, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                 (CKA_SENSITIVE, False), (CKA_LABEL, b"s2")])
t(rv == CKR_OK and attr_rv(s, s2k, CKA_VALUE)[1] == K, "C_UnwrapKey AES-KEY-WRAP with a1 gives back the key")
rv, _ = unwrap_key(s, m, a1, wk[:-1] + bytes([wk[-1] ^ 1]), [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES)])
t(rv == CKR_WRAPPED_KEY_INVALID, "a tampered AES-wrapped key -> CKR_WRAPPED_KEY_INVALID (0x%x)" % rv)
# RFC 5649 on the managed HSM (wrapkey alg CKM_AES_KEY_WRAP_PAD): a 20-byte generic secret and s1
CKK_GENERIC_SECRET = 0x10
arr, _ = template([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET), (CKA_VALUE, K[:20]),
                   (CKA_SENSITIVE, False), (CKA_LABEL, b"g20")])
h = c_ulong(0)
rv = C_CreateObject(s, arr, 5, byref(h))
g20 = h.value
m = Mech(CKM_AES_KEY_WRAP_PAD, None, 0)
rv2, wk = wrap_key(s, m, a1, g20)
t(rv == CKR_OK and rv2 == CKR_OK and len(wk or b"") == 32,
  "C_WrapKey AES-KEY-WRAP-PAD: a 20-byte secret under a1 (on the HSM) -> 32 bytes (rv 0x%x 0x%x)" % (rv, rv2))
rv, g20b = unwrap_key(s, m, a1, wk or b"", [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                                        (CKA_SENSITIVE, False)])
t(rv == CKR_OK and attr_rv(s, g20b, CKA_VALUE)[1] == K[:20],
  "C_UnwrapKey AES-KEY-WRAP-PAD with a1 gives back the 20 bytes (rv 0x%x)" % rv)
rv, wk = wrap_key(s, m, a1, s1)
rv2, s5 = unwrap_key(s, m, a1, wk or b"", sk_t)
t(rv == CKR_OK and len(wk or b"") == 40 and rv2 == CKR_OK and attr_rv(s, s5, CKA_VALUE)[1] == K,
  "AES-KEY-WRAP-PAD round trip of s1 under a1: 40 bytes, the key back (rv 0x%x 0x%x)" % (rv, rv2))
rv, _ = unwrap_key(s, m, a1, wk[:-1] + bytes([wk[-1] ^ 1]), sk_t)
t(rv == CKR_WRAPPED_KEY_INVALID, "a tampered AES-KEY-WRAP-PAD blob -> CKR_WRAPPED_KEY_INVALID (0x%x)" % rv)
m = Mech(CKM_AES_KEY_WRAP, None, 0)
rv, _ = wrap_key(s, m, s1, a1)
t(rv == CKR_KEY_UNEXTRACTABLE, "wrapping the vault key a1 -> CKR_KEY_UNEXTRACTABLE (0x%x)" % rv)
# local AES key wrap with the session key as the wrapping key
rv, s3 = unwrap_key(s, om, w1priv, KW1, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES)])
rv2, wk2 = wrap_key(s, m, s1, s3)
t(rv == CKR_OK and rv2 == CKR_OK and len(wk2) == 40, "local AES-KEY-WRAP with a session wrapping key")
t(attr_rv(s, s3, CKA_VALUE)[0] == CKR_ATTRIBUTE_SENSITIVE, "an unwrapped key is sensitive by default")
# RSA wrap of the session key with w1's public key, unwrap with the private key on the HSM
om, o = oaep_mech()
rv, wr = wrap_key(s, om, w1pub, s1)
t(rv == CKR_OK and len(wr) == 256, "C_WrapKey RSA-OAEP with w1's public key (rv 0x%x)" % rv)
rv, s4 = unwrap_key(s, om, w1priv, wr, sk_t)
t(rv == CKR_OK and attr_rv(s, s4, CKA_VALUE)[1] == K, "C_UnwrapKey RSA-OAEP of that gives back the key")
rv, _ = unwrap_key(s, om, w1priv, wr[:-1] + bytes([wr[-1] ^ 1]), sk_t)
t(rv == CKR_WRAPPED_KEY_INVALID, "a tampered RSA-wrapped key -> CKR_WRAPPED_KEY_INVALID (0x%x)" % rv)

# CKA_TOKEN=TRUE: the unwrapped key is imported into the managed HSM as an oct-HSM key
om, o = oaep_mech()
rv, imp = unwrap_key(s, om, w1priv, KW1, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                      (CKA_TOKEN, True), (CKA_LABEL, b"imp1")])
t(rv == CKR_OK and 0 < imp < 0x40000000 and attr_b(s, imp, CKA_TOKEN) is True and
  attr_b(s, imp, CKA_LOCAL) is False and attr_ul(s, imp, CKA_VALUE_LEN) == 32,
  "C_UnwrapKey CKA_TOKEN=TRUE imports the key into devhsm as imp1 (rv 0x%x)" % rv)
m, keep = gcm_mech(bytes(12), aad)
rv, ct = encrypt(s, m, imp, msg)
hiv = ctypes.string_at(keep[0], 12)
ok_dec = False
try:
    ok_dec = AESGCM(K).decrypt(hiv, ct, aad) == msg
except Exception:
    pass
t(rv == CKR_OK and ok_dec, "AES-GCM on the HSM with imp1 decrypts with python's AESGCM and the unwrapped value")

# the dev vault: RSA PKCS#1 v1.5 unwrap; CKA_TOKEN=TRUE needs a slot with AES keys
r1priv = find_objects(sd, [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, b"r1")])[0]
pm = Mech(CKM_RSA_PKCS, None, 0)
rv, d1 = unwrap_key(sd, pm, r1priv, KR1, sk_t)
t(rv == CKR_OK and attr_rv(sd, d1, CKA_VALUE)[1] == K, "C_UnwrapKey RSA-PKCS on the dev vault (rv 0x%x)" % rv)
rv, _ = unwrap_key(sd, pm, r1priv, KR1, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES),
                                      (CKA_TOKEN, True), (CKA_LABEL, b"tok1")])
t(rv == CKR_TEMPLATE_INCONSISTENT, "CKA_TOKEN=TRUE on a vault without AES keys -> CKR_TEMPLATE_INCONSISTENT (0x%x)" % rv)
t(attr_rv(s, d1, CKA_CLASS)[0] == CKR_OBJECT_HANDLE_INVALID, "a dev-slot session object is not seen from the devhsm slot")

# C_CreateObject of a session AES key
K3 = bytes(range(100, 132))
arr, _ = template([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE, K3), (CKA_LABEL, b"c1")])
h = c_ulong(0)
rv = C_CreateObject(s, arr, 4, byref(h))
c1 = h.value
m, keep = gcm_mech(bytes(12), b"")
rv2, ct = encrypt(s, m, c1, msg)
t(rv == CKR_OK and c1 >= 0x40000000 and rv2 == CKR_OK and ct == AESGCM(K3).encrypt(bytes(12), msg, None),
  "C_CreateObject CKO_SECRET_KEY (CKA_TOKEN=FALSE) -> a session key that encrypts like AESGCM (rv 0x%x)" % rv)
t(attr_rv(s, c1, CKA_VALUE)[0] == CKR_ATTRIBUTE_SENSITIVE, "a created session key is sensitive by default")

# C_GenerateKey of a session AES key; session objects die with their session
assert C_OpenSession(hsm, CKF_RW_SERIAL, None, None, byref(s2)) == 0
s2 = s2.value
arr, _ = template([(CKA_TOKEN, False), (CKA_VALUE_LEN, 16), (CKA_LABEL, b"g1")])
gm = Mech(CKM_AES_KEY_GEN, None, 0); g1 = c_ulong(0)
rv = C_GenerateKey(s2, byref(gm), arr, 3, byref(g1))
t(rv == CKR_OK and g1.value >= 0x40000000 and attr_ul(s, g1.value, CKA_VALUE_LEN) == 16 and
  attr_b(s, g1.value, CKA_LOCAL) is True and attr_b(s, g1.value, CKA_ALWAYS_SENSITIVE) is True,
  "C_GenerateKey CKA_TOKEN=FALSE -> a 16-byte local session key (rv 0x%x)" % rv)
m, b = iv_mech(CKM_AES_CBC, iv)
rv, c = encrypt(s2, m, g1.value, data)
rv2, p = decrypt(s2, m, g1.value, c or b"")
t(rv == CKR_OK and rv2 == CKR_OK and p == data, "the generated session key encrypts and decrypts")
assert C_CloseSession(s2) == 0
t(attr_rv(s, g1.value, CKA_CLASS)[0] == CKR_OBJECT_HANDLE_INVALID, "closing its session destroys the session key")
rv = C_DestroyObject(s, a2[0])
t(rv == CKR_OK and find_objects(s, [(CKA_LABEL, b"a2")]) == [], "C_DestroyObject of the vault AES key a2 deletes it (rv 0x%x)" % rv)
rv = C_DestroyObject(s, s4)
t(rv == CKR_OK and attr_rv(s, s4, CKA_CLASS)[0] == CKR_OBJECT_HANDLE_INVALID, "C_DestroyObject of a session object (rv 0x%x)" % rv)

assert C_Finalize(None) == 0
print("python: %d failed" % fails)
sys.exit(1 if fails else 0)
PYEOF
# run_py OUT: runs p11crypto.py against $KVAULT_CONF's slots and counts its TAP lines.
run_py() {
    local out=$1 rc
    P11PY_TIMEOUT=300 p11run "$C/p11crypto.py" "$C" >"$out" 2>&1
    rc=$?
    grep -E '^(ok|not ok) - ' "$out"
    T_PASS=$((T_PASS + $(grep -c '^ok - ' "$out")))
    T_FAIL=$((T_FAIL + $(grep -c '^not ok - ' "$out")))
    if [ "$rc" -ne 0 ] && ! grep -q '^python: [1-9]' "$out"; then
        not_ok "p11crypto.py ran to the end (exit $rc)"
        sed 's/^/    # /' "$out" | tail -n 20
    fi
}
run_py "$C/py.out"
# the vault (REST GET) saw C_SetAttributeValue on a3: unwrapKey gone, exp on 2035-12-31
check "kvault key show a3 (REST GET)" "$KVAULT" key show --hsm-name devhsm --name a3
python3 - "$T_TMP/last.out" <<'PYEOF' && ok "REST: a3's key_ops == [wrapKey] and exp is 2035-12-31 (set through PKCS#11)" ||
import json, sys
k = json.load(open(sys.argv[1]))
ops, exp = k["key"].get("key_ops"), k["attributes"].get("exp")
lo, hi = 2082672000, 2082758400  # 2035-12-31T00:00:00Z, 2036-01-01T00:00:00Z
sys.exit(0 if ops == ["wrapKey"] and exp is not None and lo <= exp <= hi else 1)
PYEOF
    { not_ok "REST: a3's key_ops == [wrapKey] and exp is 2035-12-31"; kv_show_last; }

# ---- 4. pkcs11-tool --test on the managed HSM slot ----
check "pkcs11-tool --test --login on devhsm" "${P11[@]}" --token-label devhsm --test --login --pin 1234
grep -q "^No errors" "$T_TMP/last.out" && ok "pkcs11-tool --test on devhsm: No errors" ||
    { not_ok "pkcs11-tool --test on devhsm: No errors"; kv_show_last; }

# ---- 5. a local HSM pool slot (two SoftHSMv2 members; see test_p11_pool.sh) ----
if ! SOFTHSM_MODULE=$(softhsm_module); then
    ok "# SKIP local pool part: SoftHSMv2 is not installed"
    finish
fi
P="$T_TMP/pool"
mkdir -p "$P/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$P" \
    >"$P/softhsm2.conf"
export SOFTHSM2_CONF="$P/softhsm2.conf"
for t in m1 m2; do
    check "softhsm2-util --init-token pool-$t" softhsm2-util --init-token --free --label "pool-$t" \
        --so-pin 22334455 --pin 11223344
done
echo 11223344 >"$P/user.pin"; echo 22334455 >"$P/so.pin"; echo "pool escrow passphrase" >"$P/esc.pass"
chmod 600 "$P"/*.pin "$P/esc.pass"
export KVAULT_CONF="$P/kvault.conf"
cat >"$KVAULT_CONF" <<EOF
[pool hsmpool]
module = $SOFTHSM_MODULE
pin_file = $P/user.pin
so_pin_file = $P/so.pin
member = pkcs11:token=pool-m1
member = pkcs11:token=pool-m2
EOF
chmod 600 "$KVAULT_CONF"
check "kvault pool init" "$KVAULT" pool init -n hsmpool --escrow "$P/wrap.escrow" \
    --escrow-passphrase-file "$P/esc.pass"
check "pkcs11-tool -M on the pool slot" timeout 120 pkcs11-tool --module "$KV_SO" --slot 0 -M
for m in AES-KEY-GEN AES-GCM AES-CBC-PAD AES-KEY-WRAP; do
    grep -Eq "^ *$m[ ,]" "$T_TMP/last.out" && ok "the pool slot offers $m" || not_ok "the pool slot offers $m"
done
# (OpenSC 0.23 has no name for CKM_AES_KEY_WRAP_PAD: "mechtype-0x210A")
grep -Eiq "^ *(AES-KEY-WRAP-PAD|mechtype-0x0*210A)[ ,]" "$T_TMP/last.out" &&
    ok "the pool slot offers AES-KEY-WRAP-PAD" || { not_ok "the pool slot offers AES-KEY-WRAP-PAD"; kv_show_last; }
run_py "$C/pool.out"

finish
