#!/bin/bash
# test_p11_login.sh - "the PIN unlocks the credential": a vault whose client secret is sealed
# under a PIN (client_secret_sealed, made by `kvault config seal-secret`) is a token with
# CKF_LOGIN_REQUIRED. Before C_Login nothing is listed and a signature fails with
# CKR_USER_NOT_LOGGED_IN (also after C_Logout, which forgets the secret); a wrong PIN
# gives CKR_PIN_INCORRECT; the right PIN signs (verified by openssl); the plain secret is
# nowhere in the configuration; a tampered sealed value and a value sealed for another purpose
# are refused; the OpenSSL face reports the locked vault by name, and takes the PIN from the
# application's passphrase callback (openssl -passin).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

p11_setup
dev_credentials
L="$T_TMP/login"
mkdir -p "$L"

check "create RSA key lk1" "$KVAULT" key create --vault-name dev --name lk1 --kty RSA --size 2048
check "public key of lk1" "$KVAULT" key download --vault-name dev --name lk1 --file "$L/lk1.pem"
head -c 1000 /dev/urandom >"$L/data"
openssl dgst -sha256 -binary "$L/data" >"$L/dgst"

printf '%s\n' "$SECRET" >"$L/secret"
printf '1234-correct\n' >"$L/pin"
check "kvault config seal-secret" sh -c "'$KVAULT' config seal-secret --secret-file '$L/secret' \
    --pin-file '$L/pin' >'$L/sealed.line'"
SEALED=$(sed -n 's/^client_secret_sealed = //p' "$L/sealed.line")
check "the sealed value has the documented form" grep -Eq \
    '^kvault-sealed-v1\$600000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$' <<<"$SEALED"
check "the sealed value does not contain the secret" sh -c "! grep -qF -- '$SECRET' '$L/sealed.line'"
printf '%s\n' "$SECRET" | "$KVAULT" config seal-secret --pin-file "$L/pin" >"$L/sealed2.line"
check "sealing twice gives different values (random salt and iv)" \
    sh -c "! cmp -s '$L/sealed.line' '$L/sealed2.line'"

mkconf() { # mkconf NAME SEALED-LINE: a [vault dev] section with the sealed secret
    { printf '[vault dev]\nurl = %s\nca_file = %s\nauth = client_secret\n' "$URL" "$CA"
      printf 'tenant_id = %s\nclient_id = %s\nauthority = %s\n%s\n' "$TENANT" "$CLIENT" \
          "$AUTHORITY" "$2"; } >"$L/$1.conf"
    chmod 600 "$L/$1.conf"
    echo "$L/$1.conf"
}
C=$(mkconf sealed "client_secret_sealed = $SEALED")
export KVAULT_CONF=$C

check "token flags say login required" sh -c "${P11[*]} -L | grep -q 'login required'"
"${P11[@]}" -O >"$L/objects.before" 2>&1
check "before login: no key objects listed" sh -c "! grep -q 'lk1' '$L/objects.before'"
# After a logout, an operation with a handle found while logged in: CKR_USER_NOT_LOGGED_IN.
cat >"$L/logout.py" <<'PYEOF'
import sys
from p11 import *
assert C_Initialize(None) == 0
h = open_session()
pin = sys.argv[2].encode()
print("login", hex(C_Login(h, CKU_USER, pin, len(pin))))
found = find_label(h, "lk1", CKO_PRIVATE_KEY, limit=1)
print("found", len(found))
o = found[0] if found else 0
m = Mech(CKM_SHA256_RSA_PKCS, None, 0)
print("sign-in", hex(C_SignInit(h, byref(m), o)))
sig = ctypes.create_string_buffer(512); sl = c_ulong(512)
print("sign-in-rv", hex(C_Sign(h, b"abc", 3, sig, byref(sl))))
print("logout", hex(C_Logout(h)))
r1 = C_SignInit(h, byref(m), o)
r2 = C_Sign(h, b"abc", 3, sig, byref(sl)) if r1 == 0 else r1
print("sign-out", hex(r2))
PYEOF
p11run "$L/logout.py" 1234-correct >"$L/logout.out" 2>&1
check "logged in: found lk1 and signed" grep -q 'sign-in-rv 0x0$' "$L/logout.out"
check "after C_Logout: the same handle gives CKR_USER_NOT_LOGGED_IN (0x101)" \
    grep -q 'sign-out 0x101$' "$L/logout.out"
check_fails_with "wrong PIN: CKR_PIN_INCORRECT" 'CKR_PIN_INCORRECT|0xa0' \
    "${P11[@]}" --login --pin 'not-the-pin' -O
check "right PIN: the key is listed" sh -c "${P11[*]} --login --pin 1234-correct -O | grep -q lk1"
check "right PIN: sign SHA256-RSA-PKCS" "${P11[@]}" --login --pin 1234-correct --sign \
    --id "$(kid lk1)" -m SHA256-RSA-PKCS -i "$L/data" -o "$L/sig1"
check "the signature verifies with the public key" \
    openssl dgst -sha256 -verify "$L/lk1.pem" -signature "$L/sig1" "$L/data"
check "pkcs11-tool --test --login on the locked vault's slot" \
    sh -c "${P11[*]} --test --login --pin 1234-correct 2>&1 | tee '$L/test.out' | grep -q 'No errors'"

# the same file with the sealed value altered (one base64 character of the ciphertext)
BAD=$(printf '%s' "$SEALED" | python3 -c 'import sys
s = sys.stdin.read(); i = len(s) - 10
print(s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:])')
C_BAD=$(mkconf bad "client_secret_sealed = $BAD")
check_fails_with "altered sealed value: the right PIN is refused" 'CKR_PIN_INCORRECT|0xa0' \
    env KVAULT_CONF="$C_BAD" "${P11[@]}" --login --pin 1234-correct -O
C_JUNK=$(mkconf junk "client_secret_sealed = hello")
check_fails_with "a value that is not sealed: configuration error names the setting" \
    'client_secret_sealed' env KVAULT_CONF="$C_JUNK" "$KVAULT" key show --vault-name dev --name lk1
C_BOTH=$(mkconf both "client_secret_sealed = $SEALED
client_secret = $SECRET")
check_fails_with "client_secret and client_secret_sealed together are refused" \
    'client_secret_sealed replaces client_secret' \
    env KVAULT_CONF="$C_BOTH" "$KVAULT" key show --vault-name dev --name lk1

check_fails_with "OpenSSL face: the locked vault is named in the error" 'locked' \
    openssl pkeyutl -sign -provider kvault -provider default -inkey kvault://dev/keys/lk1 \
    -in "$L/data" -out "$L/sig2"
check "OpenSSL face: -passin gives the PIN, the vault key signs" openssl pkeyutl -sign \
    -provider kvault -provider default -inkey kvault://dev/keys/lk1 -passin pass:1234-correct \
    -pkeyopt digest:sha256 -in "$L/dgst" -out "$L/sig3"
check "... and the signature verifies" openssl pkeyutl -verify -pubin -inkey "$L/lk1.pem" \
    -pkeyopt digest:sha256 -in "$L/dgst" -sigfile "$L/sig3"
check_fails_with "OpenSSL face: a wrong PIN is refused with a clear reason" 'incorrect PIN' \
    openssl pkeyutl -sign -provider kvault -provider default -inkey kvault://dev/keys/lk1 \
    -passin pass:wrong-pin -pkeyopt digest:sha256 -in "$L/dgst" -out "$L/sig4"
check "no plain secret in the sealed configuration" sh -c "! grep -qF -- '$SECRET' '$C'"
export KVAULT_CONF=$DEV_CONF
stop_vaultd
finish
