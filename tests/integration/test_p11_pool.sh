#!/bin/bash
# test_p11_pool.sh - a local HSM pool as a kvault.so slot (issue 5, "Local HSM pool backend"):
# three SoftHSMv2 member tokens in a temporary directory (own SOFTHSM2_CONF) and a kvault.conf
# with only a [pool hsmpool] section (no vaultd). `kvault pool status|init` (the pool wrapping
# key on every member, trusted, escrow 0600); a key made before init is refused and not kept;
# RSA and EC key pairs generated through kvault.so (pkcs11-tool --keypairgen) are on EVERY
# member (pkcs11-tool directly on each SoftHSMv2 token); signatures made through kvault.so
# verify with openssl (also through the OpenSSL provider, kvault://hsmpool/keys/NAME); RSA-OAEP
# (SHA-1, SHA-256) decryption; random bytes (CKF_RNG); an AES key (C_GenerateKey) on every
# member and AES-CBC-PAD through the pool;
# `pkcs11-tool --test --login` with no errors. Faults, from one python3 process that keeps
# kvault.so loaded, injected by tests/fault/kv_p11_fault.so (a forwarding PKCS#11 module over
# SoftHSMv2 that fails the calls of a chosen token and counts the signatures each token made):
# all healthy, signatures are spread over every member; pool-m2 failing with CKR_DEVICE_ERROR,
# every signature still verifies and pool-m2 made none of them; pool-m2 serves again once it
# recovers (retry_seconds); only pool-m2 healthy, it makes them all; every member failing,
# C_Sign returns CKR_DEVICE_ERROR promptly; all back, signing works - no C_Finalize, no reload.
# Then delete through kvault.so removes every member's copy, and a fourth member added later
# gets the wrapping key from the escrow and the keys copied to it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset KVAULT_LOG

SOFTHSM_MODULE=$(softhsm_module) || { echo "SKIP: SoftHSMv2 is not installed"; exit 77; }

P="$T_TMP/pool"
mkdir -p "$P/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$P" \
    >"$P/softhsm2.conf"
export SOFTHSM2_CONF="$P/softhsm2.conf"
for t in m1 m2 m3; do
    softhsm2-util --init-token --free --label "pool-$t" --so-pin 22334455 --pin 11223344 >/dev/null ||
        { not_ok "softhsm2-util --init-token pool-$t"; finish; exit 1; }
done
echo 11223344 >"$P/user.pin"; echo 22334455 >"$P/so.pin"; echo "pool escrow passphrase" >"$P/esc.pass"
chmod 600 "$P"/*.pin "$P/esc.pass"
cp "$SOFTHSM_MODULE" "$P/softhsm-m1.so"
export KVAULT_CONF="$P/kvault.conf"
cat >"$KVAULT_CONF" <<EOF
[kvault]
object_cache_seconds = 30

# RFC 7512 URIs: token label, module-path and pin-source as query attributes; pool-wide
# module, pin_file and so_pin_file fill in what a member does not say.
[pool hsmpool]
module = $SOFTHSM_MODULE
pin_file = $P/user.pin
so_pin_file = $P/so.pin
sessions = 4
retry_seconds = 1
member = pkcs11:token=pool-m1?module-path=$P/softhsm-m1.so
member = pkcs11:token=pool-m2;manufacturer=SoftHSM%20project
member = pkcs11:token=pool-m3?module-path=$SOFTHSM_MODULE&pin-source=file:$P/user.pin
EOF
chmod 600 "$KVAULT_CONF"
P11=(pkcs11-tool --module "$KV_SO" --slot 0)
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- the slot, the pool before init ----
check "pkcs11-tool -L: one slot" "${P11[@]}" -L
grep -q "token label *: hsmpool" "$T_TMP/last.out" && grep -Eq "token flags *:.*rng" "$T_TMP/last.out" &&
    ok "slot 0: token label hsmpool, CKF_RNG" || { not_ok "slot 0: token label hsmpool, CKF_RNG"; kv_show_last; }
check "kvault pool status before init" "$KVAULT" pool status -n hsmpool -o json
cp "$T_TMP/last.out" "$P/status0.json"
[ "$(jget "$P/status0.json" '[m["reachable"] for m in d["members"]].count(True), d["wrapKey"]["holding"]')" = "(3, 0)" ] &&
    ok "pool status: 3 members reachable, none holds a wrapping key yet" ||
    { not_ok "pool status: 3 members reachable, none holds a wrapping key yet"; cat "$P/status0.json"; }
check_fails_with "a key made before kvault pool init is refused" "C_GenerateKeyPair|failed|error" \
    "${P11[@]}" --login --pin 0000 --keypairgen --key-type EC:prime256v1 --label early
# on_members LABEL TYPE N: every member token holds N objects of TYPE (privkey|secrkey) labelled LABEL
on_members() {
    local t n
    for t in pool-m1 pool-m2 pool-m3; do
        n=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$t" --login --pin 11223344 -O \
            --type "$2" 2>/dev/null | grep -c "label: *$1\$")
        [ "$n" = "$3" ] || { echo "$t holds $n $2 objects '$1', want $3"; return 1; }
    done
}
check "... and not kept on any member" on_members early privkey 0

# ---- kvault pool init ----
check "kvault pool init --escrow" "$KVAULT" pool init -n hsmpool --escrow "$P/wrap.escrow" \
    --escrow-passphrase-file "$P/esc.pass" -o json
cp "$T_TMP/last.out" "$P/init.json"
FP=$(jget "$P/init.json" 'd["fingerprint"]')
[ "$(jget "$P/init.json" 'd["provisioned"], d["wrapKey"]["holding"], d["wrapKey"]["trusted"], d["wrapKey"]["consistent"]')" = "(3, 3, 3, True)" ] &&
    [ "$(stat -c %a "$P/wrap.escrow")" = 600 ] && grep -q "^fingerprint=$FP\$" "$P/wrap.escrow" &&
    ok "pool init: wrapping key $FP on 3 members, trusted (SO PIN), escrow 0600" ||
    { not_ok "pool init: wrapping key on 3 members, trusted, escrow 0600"; cat "$P/init.json"; }
check "kvault pool init again: nothing to do" "$KVAULT" pool init -n hsmpool -o json
grep -q '"provisioned": 0' "$T_TMP/last.out" && ok "pool init again provisions nothing" ||
    not_ok "pool init again provisions nothing"

# ---- keys generated through kvault.so, replicated to every member ----
check "pkcs11-tool --keypairgen RSA-2048 prsa on the pool slot" "${P11[@]}" --login --pin 0000 \
    --keypairgen --key-type rsa:2048 --label prsa
check "pkcs11-tool --keypairgen EC P-256 pec on the pool slot" "${P11[@]}" --login --pin 0000 \
    --keypairgen --key-type EC:prime256v1 --label pec
check "prsa is on every member (pkcs11-tool on each SoftHSMv2 token)" on_members prsa privkey 1
check "pec is on every member" on_members pec privkey 1
check "kvault pool status" "$KVAULT" pool status -n hsmpool -o json
cp "$T_TMP/last.out" "$P/status1.json"
[ "$(jget "$P/status1.json" 'sorted((k["name"], k["kty"], k["copies"], k["imported"]) for k in d["keys"])')" = \
    "[('pec', 'EC-HSM', 3, False), ('prsa', 'RSA-HSM', 3, False)]" ] &&
    ok "pool status: prsa and pec with 3 copies each, generated in the pool" ||
    { not_ok "pool status: prsa and pec with 3 copies each"; cat "$P/status1.json"; }
id_of() { # id_of LABEL: the CKA_ID kvault.so gives the key (hex)
    "${P11[@]}" -O --type privkey 2>/dev/null | grep -A3 "label: *$1\$" | sed -n 's/^ *ID: *//p' | head -n1
}
RID=$(id_of prsa); EID=$(id_of pec)
[ -n "$RID" ] && [ -n "$EID" ] && ok "kvault.so lists prsa ($RID) and pec ($EID)" ||
    not_ok "kvault.so lists prsa and pec"
grep -Eq "token model *: local HSM pool" <("${P11[@]}" -L 2>&1) &&
    ok "token model: local HSM pool" || not_ok "token model: local HSM pool"
# generated in the pool: always sensitive and local, but (replicated under the pool wrapping
# key) not never-extractable - truthful about what the member tokens say
check "prsa: CKA_LOCAL, CKA_ALWAYS_SENSITIVE true, CKA_NEVER_EXTRACTABLE false, CKA_EXTRACTABLE false" \
    p11py <<'PYEOF'
from p11 import *
ck(C_Initialize(None), "C_Initialize")
h = open_session(0)
k = find_one(h, "prsa", CKO_PRIVATE_KEY)
got = [attr_b(h, k, t) for t in (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_EXTRACTABLE)]
assert got == [True, True, False, False], got
PYEOF
"${P11[@]}" --read-object --type pubkey --id "$RID" -o "$P/prsa.der" >/dev/null 2>&1
# (pkcs11-tool 0.23 --read-object of an EC public key reads freed memory (ASan): the SPKI is
# built from the CKA_EC_POINT that -O prints instead)
"${P11[@]}" -O --type pubkey --id "$EID" 2>/dev/null | sed -n 's/^ *EC_POINT: *//p' | head -n1 |
    python3 -c 'import sys; from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization as s
pt = bytes.fromhex(sys.stdin.read().strip())[2:]
k = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pt)
open(sys.argv[1], "wb").write(k.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo))' "$P/pec.der"
echo "signed through a local HSM pool" >"$P/msg"
sign_verify() { # sign_verify ID PUBDER MECH DGST [extra]
    rm -f "$P/sig"
    "${P11[@]}" --sign --id "$1" -m "$3" -i "$P/msg" -o "$P/sig" ${5:-} &&
        openssl dgst "-$4" -verify "$2" -keyform DER -signature "$P/sig" "$P/msg"
}
check "sign SHA256-RSA-PKCS through kvault.so, openssl verifies" sign_verify "$RID" "$P/prsa.der" \
    SHA256-RSA-PKCS sha256
check "sign ECDSA-SHA256 through kvault.so, openssl verifies" sign_verify "$EID" "$P/pec.der" \
    ECDSA-SHA256 sha256 "--signature-format openssl"
check "sign SHA384-RSA-PKCS-PSS through kvault.so, openssl verifies" sh -c \
    "$(printf '%q ' "${P11[@]}") --sign --id $RID -m SHA384-RSA-PKCS-PSS -i '$P/msg' -o '$P/pss' &&
     openssl dgst -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -verify '$P/prsa.der' -keyform DER -signature '$P/pss' '$P/msg'"

# the OpenSSL face: kvault://hsmpool/keys/NAME through the provider (and a clean exit: the
# member modules are not called from OpenSSL's exit-time cleanup)
openssl dgst -sha256 -binary "$P/msg" >"$P/msg.sha256"
prov_sign() { # prov_sign NAME PUBDER
    openssl pkeyutl -provider kvault -provider default -sign -inkey "kvault://hsmpool/keys/$1" \
        -in "$P/msg.sha256" -pkeyopt digest:sha256 -out "$P/psig" &&
        openssl pkeyutl -verify -pubin -keyform DER -inkey "$2" -in "$P/msg.sha256" \
            -sigfile "$P/psig" -pkeyopt digest:sha256
}
check "OpenSSL provider: pkeyutl -sign with kvault://hsmpool/keys/prsa, openssl verifies" \
    prov_sign prsa "$P/prsa.der"
check "OpenSSL provider: pkeyutl -sign with kvault://hsmpool/keys/pec, openssl verifies" \
    prov_sign pec "$P/pec.der"

# ---- RSA-OAEP decryption, random ----
oaep() { # oaep MD: openssl encrypts with the public key, kvault.so decrypts on the pool
    local h=$1 mgf ph
    [ "$h" = sha1 ] && mgf=MGF1-SHA1 ph=SHA-1 || mgf=MGF1-SHA256 ph=SHA256
    openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$P/prsa.der" -in "$P/msg" -out "$P/enc" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt "rsa_oaep_md:$h" -pkeyopt "rsa_mgf1_md:$h" &&
        "${P11[@]}" --decrypt --id "$RID" -m RSA-PKCS-OAEP --hash-algorithm "$ph" --mgf "$mgf" \
            -i "$P/enc" -o "$P/dec" && cmp "$P/msg" "$P/dec"
}
check "RSA-OAEP (SHA-1) decryption through kvault.so" oaep sha1
check "RSA-OAEP (SHA-256) decryption through kvault.so" oaep sha256
check "C_GenerateRandom on the pool slot" "${P11[@]}" --generate-random 200 -o "$P/rnd"
[ "$(stat -c %s "$P/rnd" 2>/dev/null)" = 200 ] && [ "$(od -An -tx1 "$P/rnd" | tr -d ' \n' | grep -c '^0*$')" = 0 ] &&
    ok "200 random bytes from the pool" || not_ok "200 random bytes from the pool"

# ---- an AES key (C_GenerateKey) on every member; AES-CBC-PAD through the pool ----
check "pkcs11-tool --keygen AES-256 paes on the pool slot" "${P11[@]}" --login --pin 0000 \
    --keygen --key-type AES:32 --label paes
check "paes is on every member" on_members paes secrkey 1
aes_rt() {
    local aid
    aid=$("${P11[@]}" -O --login --pin 0000 --type secrkey 2>/dev/null | grep -A3 "label: *paes\$" |
        sed -n 's/^ *ID: *//p' | head -n1)
    head -c 45 /dev/urandom >"$P/aes.pt"
    "${P11[@]}" --login --pin 0000 --encrypt --id "$aid" -m AES-CBC-PAD \
        --iv 00112233445566778899aabbccddeeff -i "$P/aes.pt" -o "$P/aes.ct" &&
        [ "$(stat -c %s "$P/aes.ct")" = 48 ] &&
        "${P11[@]}" --login --pin 0000 --decrypt --id "$aid" -m AES-CBC-PAD \
            --iv 00112233445566778899aabbccddeeff -i "$P/aes.ct" -o "$P/aes.dec" &&
        cmp "$P/aes.pt" "$P/aes.dec"
}
check "AES-CBC-PAD encrypt + decrypt with paes through kvault.so" aes_rt

# ---- pkcs11-tool --test ----
check "pkcs11-tool --test --login on the pool slot" timeout 300 "${P11[@]}" --test --login --pin 0000
grep -q "^No errors" "$T_TMP/last.out" && ok "pkcs11-tool --test on the pool slot: No errors" ||
    { not_ok "pkcs11-tool --test on the pool slot: No errors"; kv_show_last; }
grep -q "testing key .* (prsa)" "$T_TMP/last.out" && ok "pkcs11-tool --test exercised prsa" ||
    not_ok "pkcs11-tool --test exercised prsa"

# ---- faults: members fail and come back under one loaded kvault.so ----
# Moving a SoftHSMv2 token directory away does not take a member out (SoftHSMv2 keeps the
# token's objects in memory and kv_hsm keeps its logged-in sessions), so the faults are
# injected: every member is reached through tests/fault/kv_p11_fault.so over SoftHSMv2, which
# fails C_OpenSession/C_GetTokenInfo/C_FindObjectsInit/C_SignInit/C_Sign of token L while the
# file $KV_FAULT_DIR/L exists (its first word: device | absent | session | sign-device, which
# fails only C_SignInit/C_Sign) and counts, per token, the signatures it really made
# ($KV_FAULT_DIR/L.served): the driver asserts nothing itself, it prints what each phase saw.
FAULT_SO="$KV_BUILD_DIR/tests/kv_p11_fault.so"
F="$P/fault"
mkdir -p "$F/flags"
if [ ! -f "$FAULT_SO" ]; then
    not_ok "fault module $FAULT_SO built (ninja)"
else
cat >"$F/kvault.conf" <<EOF
[pool hsmpool]
module = $FAULT_SO
pin_file = $P/user.pin
sessions = 4
retry_seconds = 1
member = pkcs11:token=pool-m1
member = pkcs11:token=pool-m2
member = pkcs11:token=pool-m3
EOF
chmod 600 "$F/kvault.conf"
cat >"$F/drive.py" <<'PYEOF'
import os, sys, time
from cryptography.hazmat.primitives import serialization
from p11 import *
FD = os.environ["KV_FAULT_DIR"]
PUB = {n: serialization.load_der_public_key(open(sys.argv[2 + i], "rb").read())
       for i, n in enumerate(("prsa", "pec"))}
MECH = {"prsa": CKM_SHA256_RSA_PKCS, "pec": CKM_ECDSA_SHA256}
MEMBERS = ("pool-m1", "pool-m2", "pool-m3")
def served():
    p = lambda m: os.path.join(FD, m + ".served")
    return {m: os.path.getsize(p(m)) if os.path.exists(p(m)) else 0 for m in MEMBERS}
def fail(flags):  # {member: device|absent|session|sign-device}; the others are healthy
    for m in MEMBERS:
        f = os.path.join(FD, m)
        if m in flags:
            open(f, "w").write(flags[m] + "\n")
        elif os.path.exists(f):
            os.unlink(f)
def sign_once(h, obj, name):
    data = os.urandom(64)
    ri, rs, sig = sign_rv(h, obj, MECH[name], data)
    if ri: return "C_SignInit 0x%x" % ri
    if rs: return "C_Sign 0x%x" % rs
    if not verify_sha256(PUB[name], data, sig): return "signature does not verify"
    return None
def round(tag, n):
    before = served()
    errs = [e for _ in range(n) for name in ("prsa", "pec") for e in [sign_once(h, k[name], name)] if e]
    after = served()
    d = [after[m] - before[m] for m in MEMBERS]
    print(tag, "signatures", 2 * n, "errors", errs, "served", d, flush=True)
assert C_Initialize(None) == 0
h = open_session()
k = {n: find_one(h, n) for n in ("prsa", "pec")}
round("all-members", 12)
fail({"pool-m2": "device"})
round("m2-device-error", 12)
fail({})
time.sleep(2.2)  # retry_seconds = 1: pool-m2 rested, then tried again
round("m2-recovered", 12)
fail({"pool-m3": "sign-device"})  # finds the key, then C_SignInit fails
round("m3-sign-error", 12)
fail({})
time.sleep(2.2)
fail({"pool-m1": "session", "pool-m3": "absent"})
round("only-m2", 12)
fail({m: "device" for m in MEMBERS})
t0 = time.monotonic()
rvs = sorted({sign_rv(h, k[n], MECH[n], os.urandom(32))[:2] for n in ("prsa", "pec") for _ in range(3)})
print("all-failing", ["0x%x/%s" % (a, "-" if b is None else "0x%x" % b) for a, b in rvs],
      "seconds", int(time.monotonic() - t0 + 0.999), flush=True)
fail({})
time.sleep(2.2)
round("all-recovered", 6)
assert C_Finalize(None) == 0
PYEOF
KVAULT_CONF="$F/kvault.conf" KV_FAULT_MODULE="$SOFTHSM_MODULE" KV_FAULT_DIR="$F/flags" \
    P11PY_TIMEOUT=240 p11run "$F/drive.py" "$P/prsa.der" "$P/pec.der" >"$F/out" 2>&1
rc=$?
rm -f "$F"/flags/pool-m?
grep -E "^(all-|m2-|m3-|only-)" "$F/out" | sed "s/^/# fault driver: /"
# phase PHASE N SERVED-PYTHON-TEST DESC: the driver's PHASE made N signatures without an error,
# all verifying, and the per-member counts d = [m1, m2, m3] satisfy the test.
phase() {
    local l
    l=$(grep "^$1 signatures $2 errors \[\] served " "$F/out") &&
        python3 -c 'import sys; d = eval(sys.argv[1].split(" served ")[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
            "$l" "$3" && ok "$4" || { not_ok "$4"; cat "$F/out"; }
}
phase all-members 24 'sum(d) == 24 and min(d) > 0' \
    "all members healthy: 24 signatures verify, spread over all three (each served > 0)"
phase m2-device-error 24 'sum(d) == 24 and d[1] == 0 and d[0] > 0 and d[2] > 0' \
    "pool-m2 failing (CKR_DEVICE_ERROR): 24 signatures verify, pool-m2 served 0, pool-m1 and pool-m3 > 0"
phase m2-recovered 24 'sum(d) == 24 and d[1] > 0' \
    "pool-m2 recovered (flag removed, retry_seconds elapsed): it serves again"
phase m3-sign-error 24 'sum(d) == 24 and d[2] == 0 and d[0] > 0 and d[1] > 0' \
    "pool-m3 failing only C_SignInit/C_Sign (CKR_DEVICE_ERROR): 24 signatures verify, pool-m3 served 0"
phase only-m2 24 'd == [0, 24, 0]' \
    "pool-m1 CKR_SESSION_HANDLE_INVALID and pool-m3 CKR_TOKEN_NOT_PRESENT: pool-m2 serves all 24"
grep -Eq "^all-failing \['(0x0/0x30|0x30/-)'\] seconds ([0-9]|1[0-9])$" "$F/out" &&
    ok "every member failing: signing fails with CKR_DEVICE_ERROR, 6 attempts within 20 s (no hang)" ||
    { not_ok "every member failing: CKR_DEVICE_ERROR without a hang"; cat "$F/out"; }
phase all-recovered 12 'sum(d) == 12' "every member back: signing works again (no C_Finalize, no reload)"
[ "$rc" -eq 0 ] && ok "fault driver exits 0" || { not_ok "fault driver exits 0 (rc $rc)"; cat "$F/out"; }
fi
check "kvault pool status after the faults" "$KVAULT" pool status -n hsmpool -o json
[ "$(jget "$T_TMP/last.out" '[m["reachable"] for m in d["members"]].count(True), all(type(m["served"]) is int and type(m["failures"]) is int for m in d["members"])')" = "(3, True)" ] &&
    ok "pool status: all 3 members reachable again, with served / failures counters" ||
    { not_ok "pool status: all 3 members reachable again, with served / failures counters"; kv_show_last; }

# ---- delete through kvault.so: every member's copy ----
check "pkcs11-tool --delete-object pec through kvault.so" "${P11[@]}" --login --pin 0000 \
    --delete-object --type privkey --id "$EID"
check "pec is gone from every member" on_members pec privkey 0
check "prsa is still on every member" on_members prsa privkey 1

# ---- a member added later: the wrapping key from the escrow, the keys copied to it ----
softhsm2-util --init-token --free --label pool-m4 --so-pin 22334455 --pin 11223344 >/dev/null
echo "member = pkcs11:token=pool-m4" >>"$KVAULT_CONF"
check_fails_with "kvault pool init without the escrow names the new member" \
    "members without it \(pool-m4\).*--escrow" "$KVAULT" pool init -n hsmpool
check "kvault pool init --escrow provisions pool-m4 and copies the keys to it" "$KVAULT" pool init \
    -n hsmpool --escrow "$P/wrap.escrow" --escrow-passphrase-file "$P/esc.pass" -o json
[ "$(jget "$T_TMP/last.out" 'd["provisioned"], d["keysCopied"], d["fingerprint"] == "'"$FP"'"')" = "(1, 2, True)" ] &&
    ok "pool-m4: the same wrapping key, prsa and paes copied" || { not_ok "pool-m4: wrapping key and keys"; kv_show_last; }
n4=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label pool-m4 --login --pin 11223344 -O 2>/dev/null |
    grep -Ec "label: *(prsa|paes)\$")
[ "$n4" = 3 ] && ok "pool-m4 holds prsa (private + public) and paes" ||
    not_ok "pool-m4 holds prsa (private + public) and paes ($n4 objects)"
check "sign with prsa after pool-m4 joined" sign_verify "$RID" "$P/prsa.der" SHA256-RSA-PKCS sha256

finish
