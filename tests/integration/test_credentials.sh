#!/bin/bash
# test_credentials.sh - bad credentials and bad configuration through every client: the
# kvault CLI, pkcs11-tool on kvault.so and openssl with the kvault provider each give a clear
# error (no crash, no hang) for a wrong client secret, an unknown client, a missing
# configuration file and a CA that does not match the server.
source "$(dirname "$0")/lib.sh"

start_vaultd || exit 1
"$KVAULT" key create --vault-name dev --name cred-rsa --kty RSA --size 2048 >/dev/null ||
    { echo "cannot create key"; exit 1; }
GOOD_CONF=$KVAULT_CONF

# A copy of the configuration with one setting replaced.
conf_with() { # KEY VALUE OUT
    sed "s|^\($1[[:space:]]*=\).*|\1 $2|" "$GOOD_CONF" >"$3"
    chmod 600 "$3"
}

conf_with client_secret wrong-secret "$T_TMP/badsecret.conf"
export KVAULT_CONF=$T_TMP/badsecret.conf
check_fails_with "CLI: wrong client secret is refused by the token endpoint" \
    "AADSTS7000215" "$KVAULT" key show --vault-name dev --name cred-rsa
check_fails_with "openssl: wrong client secret gives the authority's reason" \
    "AADSTS7000215|[Ii]nvalid client secret" \
    openssl pkey -provider kvault -provider default -in kvault://dev/keys/cred-rsa -pubout
check_fails_with "pkcs11-tool: wrong client secret fails the sign without a crash" \
    "CKR_|error" pkcs11-tool --module "$KV_SO" --sign -m SHA256-RSA-PKCS --label cred-rsa \
    -i "$KV_SOURCE_DIR/README.md" -o "$T_TMP/sig"

conf_with client_id 00000000-0000-0000-0000-000000000000 "$T_TMP/badclient.conf"
export KVAULT_CONF=$T_TMP/badclient.conf
check_fails_with "CLI: unknown client id is refused" "AADSTS700016" \
    "$KVAULT" key show --vault-name dev --name cred-rsa

# A CA that did not sign the server certificate: TLS verification must fail.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca \
    -keyout "$T_TMP/other.key" -out "$T_TMP/other-ca.pem" -days 1 2>/dev/null
conf_with ca_file "$T_TMP/other-ca.pem" "$T_TMP/badca.conf"
export KVAULT_CONF=$T_TMP/badca.conf
check_fails_with "CLI: server certificate not signed by the configured CA is refused" \
    "certificate|SSL" "$KVAULT" key show --vault-name dev --name cred-rsa
check_fails_with "openssl: TLS verification failure is reported" "certificate|SSL|unreachable" \
    openssl pkey -provider kvault -provider default -in kvault://dev/keys/cred-rsa -pubout

export KVAULT_CONF=$T_TMP/does-not-exist.conf
check_fails_with "CLI: missing configuration file is named" "does-not-exist.conf" \
    "$KVAULT" key list --vault-name dev
check_fails_with "openssl: missing configuration file is named" "does-not-exist.conf" \
    openssl pkey -provider kvault -provider default -in kvault://dev/keys/cred-rsa -pubout

printf '[vault dev]\nurl = https://x\nbogus = 1\n' >"$T_TMP/invalid.conf"
export KVAULT_CONF=$T_TMP/invalid.conf
check_fails_with "CLI: invalid configuration gives file and line" "invalid.conf:3" \
    "$KVAULT" key list --vault-name dev

# And the good configuration still works after all of that (nothing was lost).
export KVAULT_CONF=$GOOD_CONF
check "CLI: key still there with the right credentials" "$KVAULT" key show --vault-name dev --name cred-rsa
finish
