#!/bin/bash
# test_sdk.sh - the official Azure SDK for JavaScript (@azure/keyvault-keys, -secrets,
# -certificates, @azure/identity, unpatched, from the npm registry) against a dev vaultd.
# The tests live in tests/sdk (node's built-in test runner); they get the vault URL, the
# authority and the dev service principal from the environment and trust the dev CA through
# NODE_EXTRA_CA_CERTS. Each node test case is counted as one check.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SDK_DIR="$KV_SOURCE_DIR/tests/sdk"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    not_ok "node and npm are installed (scripts/install-deps.sh installs them)"
    finish; exit
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
check "node is version 20 or later (the SDKs' engines field) - found $(node --version)" \
    test "$node_major" -ge 20

# The SDK packages: exact versions from package-lock.json, fetched only from the npm registry.
if [ ! -d "$SDK_DIR/node_modules/@azure/keyvault-keys" ] ||
    [ "$SDK_DIR/package-lock.json" -nt "$SDK_DIR/node_modules/.package-lock.json" ]; then
    check "npm ci installs the locked SDK packages" \
        sh -c "cd '$SDK_DIR' && npm ci --no-audit --no-fund"
fi

start_vaultd || { not_ok "vaultd starts"; finish; exit; }

export NODE_EXTRA_CA_CERTS="$VAULTD_STATE/ca.pem"
AZURE_TENANT_ID=$(conf_get tenant_id)
AZURE_CLIENT_ID=$(conf_get client_id)
AZURE_CLIENT_SECRET=$(conf_get client_secret)
export AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET
export AZURE_AUTHORITY_HOST="https://localhost:$VAULTD_PORT"
# localhost maps to vaultd's default vault (dev); node does not resolve *.vault.localhost.
export KVAULT_SDK_VAULT_URL="https://localhost:$VAULTD_PORT"
# The dev HSM pool, when vaultd has one: its url in client.conf's [vault devhsm] section.
KVAULT_SDK_MHSM_URL=${KVAULT_SDK_MHSM_URL-$(sed -n '/^\[vault devhsm\]/,/^\[/s/^url[[:space:]]*=[[:space:]]*//p' "$KVAULT_CONF")}
export KVAULT_SDK_MHSM_URL

# Test files: all of tests/sdk/*.test.mjs, or the ones named in $KV_SDK_TESTS (e.g. "keys crypto").
files=()
if [ -n "${KV_SDK_TESTS:-}" ]; then
    for t in $KV_SDK_TESTS; do files+=("$t.test.mjs"); done
else
    for f in "$SDK_DIR"/*.test.mjs; do files+=("$(basename "$f")"); done
fi

# node's own report (spec) on stdout; TAP into a file to count each test case as a check.
TAP="$T_TMP/sdk.tap"
(cd "$SDK_DIR" && node --test --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$TAP" "${files[@]}")
node_rc=$?

# Top-level test cases of each file: "ok N - name" / "not ok N - name" at column 0 (skipped
# ones, "ok N - name # SKIP reason", are shown but not counted).
while IFS= read -r line; do
    line=${line//\\#/#} # TAP escapes '#' in names
    case "$line" in
    *" # SKIP"*) echo "skip - sdk: ${line#ok * - }" ;; # not counted
    "not ok "*) not_ok "sdk: ${line#not ok * - }" ;;
    "ok "*) ok "sdk: ${line#ok * - }" ;;
    esac
done < <(grep -E '^(not )?ok [0-9]+ - ' "$TAP")
if [ "$node_rc" -ne 0 ] && [ "$T_FAIL" -eq 0 ]; then
    not_ok "node --test exited with status $node_rc"
fi
finish
