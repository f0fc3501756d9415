#!/bin/bash
# test_p11_tools.sh - kvault.so with the PKCS#11 tools of the distribution against a dev vaultd:
# p11-kit (conf/kvault.module registered in a private p11-kit module directory), GnuTLS's p11tool
# (--provider, object listing, --test-sign), OpenSC's libp11 OpenSSL engine (openssl pkeyutl
# -engine pkcs11, signatures checked by plain openssl with the vault's public key) and
# pkcs11-tool --test.
#
# p11-kit 0.24 skips ~/.config/pkcs11 in programs running as root. As root the test gives the
# p11-kit commands a private mount namespace (unshare -m) in which its own module directory is
# bind-mounted over /usr/share/p11-kit/modules; as another user it uses a temporary HOME with
# ~/.config/pkcs11/modules. The system's p11-kit configuration is never modified.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vaultd_setup
O="$T_TMP/tools"
mkdir -p "$O"
TOKEN=$(get_token)

# create_key NAME JSON: creates a key through the vault REST API; $O/NAME.pem gets its public key.
create_key() {
    rest_create_key "$1" "$2" "$O/create-$1.json" || return 1
    "$KVAULT" key download --vault-name dev --name "$1" --file "$O/$1.pem"
}
check "create RSA-2048 key toolrsa" create_key toolrsa '{"kty":"RSA","key_size":2048}'
check "create EC P-256 key toolec" create_key toolec '{"kty":"EC","crv":"P-256"}'
echo "message signed through a PKCS#11 tool" >"$O/msg"
openssl dgst -sha256 -binary "$O/msg" >"$O/msg.sha256"

# ---- p11-kit: conf/kvault.module ----
MOD_SRC="$KV_SOURCE_DIR/conf/kvault.module"
mod_path=$(sed -n 's/^module:[[:space:]]*//p' "$MOD_SRC")
inst_path=$(meson introspect --installed "$KV_BUILD_DIR" 2>/dev/null | python3 -c \
    'import json,sys; print(next(v for k,v in json.load(sys.stdin).items() if k.endswith("/kvault.so")))' \
    2>/dev/null)
case "$inst_path" in
/usr/local/*)
    [ "$mod_path" = "$inst_path" ] && ok "conf/kvault.module names the installed kvault.so ($inst_path)" ||
        not_ok "conf/kvault.module names '$mod_path', meson installs kvault.so as '$inst_path'"
    ;;
*) # another prefix: the shipped file documents the default prefix only
    [ "${mod_path##*/}" = kvault.so ] && ok "conf/kvault.module names a kvault.so ($mod_path)" ||
        not_ok "conf/kvault.module names a kvault.so ($mod_path)"
    ;;
esac
grep -Eq '^critical:[[:space:]]*no$' "$MOD_SRC" && ok "conf/kvault.module: not critical" ||
    not_ok "conf/kvault.module: not critical"

# The shipped file with its module line pointing at this build's kvault.so.
P11DIR="$O/p11-kit-modules"
mkdir -p "$P11DIR" "$O/home/.config/pkcs11"
sed "s|^module:.*|module: $KV_SO|" "$MOD_SRC" >"$P11DIR/kvault.module"
ln -s "$P11DIR" "$O/home/.config/pkcs11/modules"
# p11kit_run CMD...: CMD with the private p11-kit module configuration.
p11kit_run() {
    if [ "$(id -u)" -ne 0 ]; then
        HOME="$O/home" "$@"
    else
        unshare -m --propagation private sh -c \
            'mount --bind "$0" /usr/share/p11-kit/modules && exec "$@"' "$P11DIR" "$@"
    fi
}
if [ "$KV_SANITIZER" = tsan ]; then
    # The p11-kit 0.24 binary never exits under libtsan, even for --help and without kvault: its
    # library destructor's freelocale() waits forever on glibc's locale lock. p11tool below
    # still reads p11-kit's module registry with kvault in it.
    ok "p11-kit list-modules # SKIP under ThreadSanitizer (p11-kit hangs at exit)"
else
check "p11-kit list-modules" p11kit_run timeout 120 p11-kit list-modules
grep -Eq "^kvault: $KV_SO\$" "$T_TMP/last.out" && ok "p11-kit list-modules: kvault module" ||
    { not_ok "p11-kit list-modules: kvault module"; kv_show_last; }
grep -q "library-manufacturer: kvault" "$T_TMP/last.out" &&
    grep -Eq "^    token: dev\$" "$T_TMP/last.out" &&
    ok "p11-kit list-modules: kvault's token dev" || not_ok "p11-kit list-modules: kvault's token dev"
fi
# GnuTLS without --provider: the modules registered with p11-kit
check "p11tool with kvault registered in p11-kit" p11kit_run timeout 120 p11tool --list-all \
    'pkcs11:token=dev;object=toolec'
grep -q "token=dev;.*object=toolec;type=private" "$T_TMP/last.out" &&
    ok "p11tool through p11-kit lists toolec" || { not_ok "p11tool through p11-kit lists toolec"; kv_show_last; }

# ---- GnuTLS p11tool ----
P11T=(timeout 120 p11tool --provider "$KV_SO")
check "p11tool --list-all 'pkcs11:token=dev'" "${P11T[@]}" --list-all 'pkcs11:token=dev'
for k in toolrsa toolec; do
    grep -q "token=dev;.*object=$k;type=private" "$T_TMP/last.out" &&
        grep -q "token=dev;.*object=$k;type=public" "$T_TMP/last.out" &&
        ok "p11tool lists the private and public object of $k" ||
        not_ok "p11tool lists the private and public object of $k"
done
grep -q "Type: Private key (RSA-2048)" "$T_TMP/last.out" &&
    grep -q "Type: Private key (EC/ECDSA-SECP256R1)" "$T_TMP/last.out" &&
    ok "p11tool: key types RSA-2048 and EC/ECDSA-SECP256R1" ||
    not_ok "p11tool: key types RSA-2048 and EC/ECDSA-SECP256R1"
for k in toolrsa toolec; do
    check "p11tool --test-sign $k" "${P11T[@]}" --login --set-pin=1234 --test-sign \
        "pkcs11:token=dev;object=$k"
    grep -q "Verifying against public key in the token... ok" "$T_TMP/last.out" &&
        ok "p11tool --test-sign $k: signature verifies" ||
        not_ok "p11tool --test-sign $k: signature verifies"
done
# (p11tool asks to insert the token when it cannot find it: stdin is /dev/null, a short timeout)
check_fails_with "p11tool --test-sign: unknown object fails" "Cannot import private key" \
    timeout 30 p11tool --provider "$KV_SO" --login --set-pin=1234 --test-sign 'pkcs11:token=dev;object=no-such-key' </dev/null

# ---- OpenSC libp11 engine for OpenSSL ----
ENGINE_SO=$(find /usr/lib/*/engines-3 -name pkcs11.so 2>/dev/null | head -n1)
cat >"$O/openssl-engine.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $KV_SO
PIN = 1234
init = 0
EOF
# engine_sign KEY OUT [pkeyutl options]: signs msg.sha256 with the vault key through the engine.
engine_sign() {
    local key=$1 out=$2
    shift 2
    OPENSSL_CONF="$O/openssl-engine.cnf" timeout 120 openssl pkeyutl -engine pkcs11 -keyform engine \
        -inkey "pkcs11:token=dev;object=$key;type=private" -sign -in "$O/msg.sha256" -out "$out" "$@"
}
if [ -z "$ENGINE_SO" ]; then
    not_ok "libp11 engine installed (libengine-pkcs11-openssl)"
else
    check "engine: ECDSA P-256 signature with toolec" engine_sign toolec "$O/sig.ec"
    check "engine: the ECDSA signature verifies with plain openssl" openssl pkeyutl -verify \
        -pubin -inkey "$O/toolec.pem" -in "$O/msg.sha256" -sigfile "$O/sig.ec"
    check "engine: RSA PKCS#1 v1.5 signature with toolrsa" engine_sign toolrsa "$O/sig.rsa" \
        -pkeyopt digest:sha256
    check "engine: the RSA signature verifies with plain openssl" openssl pkeyutl -verify \
        -pubin -inkey "$O/toolrsa.pem" -in "$O/msg.sha256" -sigfile "$O/sig.rsa" \
        -pkeyopt digest:sha256
    check "engine: RSA-PSS signature with toolrsa" engine_sign toolrsa "$O/sig.pss" \
        -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
    check "engine: the RSA-PSS signature verifies with plain openssl" openssl pkeyutl -verify \
        -pubin -inkey "$O/toolrsa.pem" -in "$O/msg.sha256" -sigfile "$O/sig.pss" \
        -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
    echo "other data" | openssl dgst -sha256 -binary >"$O/other.sha256"
    check_fails_with "plain openssl rejects the ECDSA signature for other data" "[Ff]ail" \
        openssl pkeyutl -verify -pubin -inkey "$O/toolec.pem" -in "$O/other.sha256" -sigfile "$O/sig.ec"
fi

# ---- pkcs11-tool --test ----
check "pkcs11-tool --test --login on the dev slot" timeout 300 pkcs11-tool --module "$KV_SO" \
    --token-label dev --test --login --pin 1234
grep -q "^No errors" "$T_TMP/last.out" && ok "pkcs11-tool --test: No errors" ||
    { not_ok "pkcs11-tool --test: No errors"; kv_show_last; }
grep -q "testing key .* (toolrsa)" "$T_TMP/last.out" && ok "pkcs11-tool --test exercised toolrsa" ||
    not_ok "pkcs11-tool --test exercised toolrsa"

finish
