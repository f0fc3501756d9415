#!/bin/bash
# The main job: on a fresh Debian 12 machine, installs what is missing, builds kvault, starts
# a development vaultd on loopback, creates an RSA-2048 and an EC P-256 key in vault "dev",
# signs with them through kvault.so from the unmodified pkcs11-tool and openssl CLIs, and
# verifies every signature with plain openssl against the vault's public key.
#   scripts/demo.sh [--keep]    --keep leaves vaultd running and prints how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
./scripts/install-deps.sh
./scripts/build.sh build
B=$PWD/build
STATE=${KV_DEMO_STATE:-$PWD/state-demo}
PORT=${KV_DEMO_PORT:-8443}
WORK=$(mktemp -d /tmp/kvdemo.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting a development vaultd on https://127.0.0.1:$PORT (state in $STATE)"
"$B/vaultd/vaultd" --dev --state "$STATE" --listen "127.0.0.1:$PORT" >"$WORK/vaultd.log" 2>&1 &
VPID=$!
cleanup() { [ $KEEP = 1 ] || { kill $VPID 2>/dev/null; wait $VPID 2>/dev/null || true; }; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf -o /dev/null --cacert "$STATE/ca.pem" "https://localhost:$PORT/healthz" 2>/dev/null && break
    kill -0 $VPID 2>/dev/null || { cat "$WORK/vaultd.log"; exit 1; }
    sleep 0.1
done
export KVAULT_CONF=$STATE/client.conf
export OPENSSL_MODULES=$B
echo "client configuration: KVAULT_CONF=$KVAULT_CONF"

say "Creating keys in vault 'dev' with the kvault CLI"
"$B/tools/kvault" key create --vault-name dev --name demo-rsa --kty RSA --size 2048 >"$WORK/rsa.json"
"$B/tools/kvault" key create --vault-name dev --name demo-ec --kty EC --curve P-256 >"$WORK/ec.json"
python3 -c 'import json,sys
for f in sys.argv[1:]:
    k = json.load(open(f))["key"]; print("  created", k["kid"], k["kty"], k.get("crv", ""))' \
    "$WORK/rsa.json" "$WORK/ec.json"

say "pkcs11-tool sees the vault as a token (kvault.so)"
pkcs11-tool --module "$B/kvault.so" -L
pkcs11-tool --module "$B/kvault.so" -O 2>/dev/null | grep -E 'Private Key|Public Key|label' | head -n 8

say "Public keys, exported by openssl through the kvault provider"
openssl pkey -provider kvault -provider default -in kvault://dev/keys/demo-rsa -pubout -out "$WORK/rsa.pub"
openssl pkey -provider kvault -provider default -in kvault://dev/keys/demo-ec -pubout -out "$WORK/ec.pub"
head -n 2 "$WORK/rsa.pub"

echo "kvault demo: the private key never leaves the vault" >"$WORK/msg.txt"
openssl dgst -sha256 -binary "$WORK/msg.txt" >"$WORK/msg.sha256"
verified=0
verify() { # DESC CMD...
    if "${@:2}" >/dev/null 2>&1; then echo "  verified: $1"; verified=$((verified + 1));
    else echo "  FAILED:   $1"; exit 1; fi
}

# pkcs11-tool 0.23 selects the signing key by --id only; kvault's CKA_ID is the first 16 bytes
# of SHA-256("VAULT/NAME") (pkcs11-module/README.md).
key_id() { printf '%s' "dev/$1" | openssl dgst -sha256 -binary | head -c 16 | od -An -tx1 | tr -d ' \n'; }

say "Signing with pkcs11-tool (PKCS#11 face) and verifying with openssl"
pkcs11-tool --module "$B/kvault.so" --sign -m SHA256-RSA-PKCS --id "$(key_id demo-rsa)" \
    -i "$WORK/msg.txt" -o "$WORK/p11-rsa.sig" 2>/dev/null
verify "RSA-2048 PKCS#1 v1.5 (pkcs11-tool)" openssl dgst -sha256 -verify "$WORK/rsa.pub" \
    -signature "$WORK/p11-rsa.sig" "$WORK/msg.txt"
pkcs11-tool --module "$B/kvault.so" --sign -m SHA256-RSA-PKCS-PSS --id "$(key_id demo-rsa)" \
    --mgf MGF1-SHA256 --salt-len 32 -i "$WORK/msg.txt" -o "$WORK/p11-pss.sig" 2>/dev/null
verify "RSA-2048 PSS (pkcs11-tool)" openssl dgst -sha256 -verify "$WORK/rsa.pub" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -signature "$WORK/p11-pss.sig" "$WORK/msg.txt"
pkcs11-tool --module "$B/kvault.so" --sign -m ECDSA-SHA256 --id "$(key_id demo-ec)" \
    --signature-format openssl -i "$WORK/msg.txt" -o "$WORK/p11-ec.sig" 2>/dev/null
verify "EC P-256 ECDSA (pkcs11-tool)" openssl dgst -sha256 -verify "$WORK/ec.pub" \
    -signature "$WORK/p11-ec.sig" "$WORK/msg.txt"

say "Signing with openssl pkeyutl (OpenSSL provider face) and verifying with plain openssl"
openssl pkeyutl -provider kvault -provider default -sign -inkey kvault://dev/keys/demo-rsa \
    -pkeyopt digest:sha256 -in "$WORK/msg.sha256" -out "$WORK/ossl-rsa.sig"
verify "RSA-2048 PKCS#1 v1.5 (openssl pkeyutl)" openssl pkeyutl -verify -pubin -inkey "$WORK/rsa.pub" \
    -pkeyopt digest:sha256 -in "$WORK/msg.sha256" -sigfile "$WORK/ossl-rsa.sig"
openssl pkeyutl -provider kvault -provider default -sign -inkey kvault://dev/keys/demo-rsa \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest \
    -in "$WORK/msg.sha256" -out "$WORK/ossl-pss.sig"
verify "RSA-2048 PSS (openssl pkeyutl)" openssl pkeyutl -verify -pubin -inkey "$WORK/rsa.pub" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest \
    -in "$WORK/msg.sha256" -sigfile "$WORK/ossl-pss.sig"
openssl pkeyutl -provider kvault -provider default -sign -inkey kvault://dev/keys/demo-ec \
    -in "$WORK/msg.sha256" -out "$WORK/ossl-ec.sig"
verify "EC P-256 ECDSA (openssl pkeyutl)" openssl pkeyutl -verify -pubin -inkey "$WORK/ec.pub" \
    -in "$WORK/msg.sha256" -sigfile "$WORK/ossl-ec.sig"

say "Done: $verified signatures made in the vault through kvault.so, all verified by openssl"
if [ $KEEP = 1 ]; then
    echo "vaultd keeps running (pid $VPID). Try:"
    echo "  export KVAULT_CONF=$KVAULT_CONF OPENSSL_MODULES=$B"
    echo "  $B/tools/kvault key list --vault-name dev"
    echo "  pkcs11-tool --module $B/kvault.so -O"
fi
