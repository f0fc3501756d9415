#!/usr/bin/env bash
# test_vaultd_admin.sh - vaultd's administration API (/admin/vaults, /admin/managedHSMs) with
# curl: create with properties, show, list, idempotent re-PUT, purge protection rules, name
# rules, one namespace for vaults and pools, the new vault served by Host header, creator's
# role, non-admin denied, delete (empty / non-empty / force / default vault), persistence.
source "$(dirname "$0")/lib.sh"

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"
CA="$VAULTD_STATE/ca.pem"
BASE="https://localhost:$VAULTD_PORT"
TOKEN=$(get_token)

jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# adm METHOD PATH [JSON]: prints the status; body in $T_TMP/resp.json
adm() {
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$1"
        -H "Authorization: Bearer $TOKEN")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    curl "${args[@]}" "$BASE$2"
}
# expect DESC STATUS [PYEXPR]: the last response had STATUS (and PYEXPR over d is true).
expect() {
    local desc=$1 want=$2 expr=${3:-True} got=$CODE
    if [ "$got" = "$want" ] && { [ "$expr" = True ] || [ "$(jget "$T_TMP/resp.json" "$expr" 2>&1)" = True ]; }
    then ok "$desc"; else
        not_ok "$desc (status $got, wanted $want)"; head -c 400 "$T_TMP/resp.json" | sed 's/^/    # /'; echo
    fi
}

CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" "$BASE/admin/vaults")
expect "no token: 401" 401 "d['error']['code'] == 'AuthenticationFailed'"

CODE=$(adm GET /admin/vaults)
expect "list: the default vault" 200 \
    "[v['properties']['isDefault'] for v in d['value'] if v['name'] == 'dev'] == [True]"
V0=$(jget "$T_TMP/resp.json" "[v['name'] for v in d['value']]")   # vaults there from the start
CODE=$(adm GET /admin/managedHSMs)
expect "list pools (those configured at start, if any)" 200 "isinstance(d['value'], list)"
P0=$(jget "$T_TMP/resp.json" "[v['name'] for v in d['value']]")   # pools there from the start

CODE=$(adm PUT /admin/vaults/team-a '{"location":"westeurope","properties":{"tenantId":"'"$(conf_get tenant_id)"'","sku":{"family":"A","name":"premium"},"enableSoftDelete":true,"softDeleteRetentionInDays":7,"enablePurgeProtection":true}}')
expect "create vault team-a: 201 with its properties" 201 \
    "d['name'] == 'team-a' and d['type'] == 'Microsoft.KeyVault/vaults' and d['location'] == 'westeurope' and d['properties']['sku']['name'] == 'premium' and d['properties']['softDeleteRetentionInDays'] == 7 and d['properties']['enablePurgeProtection'] is True and d['properties']['vaultUri'] == 'https://team-a.vault.localhost:$VAULTD_PORT/'"
CODE=$(adm PUT /admin/vaults/TEAM-A '{"properties":{"enablePurgeProtection":true}}')
expect "re-PUT same settings: 200 (names case-insensitive)" 200 "d['name'] == 'team-a'"
CODE=$(adm PUT /admin/vaults/team-a '{"properties":{"enablePurgeProtection":false}}')
expect "purge protection cannot be switched off" 400 "d['error']['code'] == 'BadRequest'"
CODE=$(adm PUT /admin/vaults/team-a '{"properties":{"softDeleteRetentionInDays":30}}')
expect "retention is fixed after creation" 400
CODE=$(adm PUT /admin/vaults/team-b '{"properties":{"softDeleteRetentionInDays":6}}')
expect "retention below 7 days: 400" 400
CODE=$(adm PUT /admin/vaults/team-b '{"properties":{"softDeleteRetentionInDays":91}}')
expect "retention above 90 days: 400" 400
CODE=$(adm PUT /admin/vaults/team-b '{"properties":{"sku":{"name":"gold"}}}')
expect "unknown sku: 400" 400
CODE=$(adm PUT /admin/vaults/team-b '{"properties":{"enableSoftDelete":false}}')
expect "soft delete cannot be off" 400
for bad in ab 1abc abc- a--b abcdefghijklmnopqrstuvwxy 'a_bc'; do
    CODE=$(adm PUT "/admin/vaults/$bad" '{}')
    expect "vault name '$bad' rejected" 400 "d['error']['code'] == 'VaultNameNotValid'"
done
CODE=$(adm PUT /admin/vaults/team-b)
expect "create with no body: defaults (standard, 90 days, no purge protection)" 201 \
    "d['properties']['sku']['name'] == 'standard' and d['properties']['softDeleteRetentionInDays'] == 90 and d['properties']['enablePurgeProtection'] is False"

CODE=$(adm PUT /admin/managedHSMs/pool-a '{"location":"local","properties":{"initialAdminObjectIds":["00000000-0000-0000-0000-00000000abcd"],"softDeleteRetentionInDays":14}}')
expect "create managed HSM pool-a: 201" 201 \
    "d['type'] == 'Microsoft.KeyVault/managedHSMs' and d['properties']['hsmUri'] == 'https://pool-a.managedhsm.localhost:$VAULTD_PORT/' and d['properties']['sku']['name'] == 'Standard_B1'"
CODE=$(adm PUT /admin/vaults/pool-a '{}')
expect "vaults and pools share one namespace: 409" 409 "d['error']['code'] == 'VaultAlreadyExists'"
CODE=$(adm PUT /admin/managedHSMs/team-a '{}')
expect "pool named like a vault: 409" 409
CODE=$(adm GET /admin/managedHSMs)
expect "list pools" 200 "sorted(v['name'] for v in d['value']) == sorted($P0 + ['pool-a'])"
CODE=$(adm GET /admin/vaults)
expect "list vaults" 200 "sorted(v['name'] for v in d['value']) == sorted($V0 + ['team-a', 'team-b'])"
CODE=$(adm GET /admin/vaults/team-a)
expect "show team-a" 200 "d['properties']['softDeleteRetentionInDays'] == 7"
CODE=$(adm GET /admin/vaults/pool-a)
expect "a pool is not shown as a vault" 404 "d['error']['code'] == 'ResourceNotFound'"
CODE=$(adm GET /admin/vaults/nosuchvault)
expect "show unknown: 404" 404

check "stored columns (kind, retention_days, purge_protection)" bash -c \
    "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' \"SELECT name||','||kind||','||retention_days||','||purge_protection FROM vaults WHERE name IN ('dev', 'pool-a', 'team-a', 'team-b') ORDER BY name\" | tr '\n' ' ')\" = 'dev,vault,90,0 pool-a,managedhsm,14,0 team-a,vault,7,1 team-b,vault,90,0 ' ]"
check "creator holds Administrator on team-a; pool-a lists both admins" bash -c \
    "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' \"SELECT COUNT(*) FROM role_assignments WHERE vault='team-a' AND principal_id='$(conf_get client_id)' AND role_id='00482a5a-887f-4fb3-b363-3b7fe8e74483'\")\" = 1 ] && [ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' \"SELECT COUNT(*) FROM role_assignments WHERE vault='pool-a' AND role_id='a290e904-7015-4bba-90c8-60543313cdb4'\")\" = 2 ]"

# the new vault is served by Host header NAME.vault.localhost
VCODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"kty":"EC","crv":"P-256"}' \
    "https://team-b.vault.localhost:$VAULTD_PORT/keys/k1/create?api-version=7.5")
CODE=$VCODE
expect "key created in team-b through team-b.vault.localhost" 200 \
    "d['key']['kid'].startswith('https://team-b.vault.localhost:$VAULTD_PORT/keys/k1/')"
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" \
    -H "Authorization: Bearer $TOKEN" "https://localhost:$VAULTD_PORT/keys/k1?api-version=7.5")
expect "the key is not in the default vault" 404

# a principal that is not a tenant admin is denied (same secret, other client id)
OTHER=11111111-2222-3333-4444-555555555555
sqlite3 "$VAULTD_STATE/vaultd.db" "INSERT INTO principals (client_id, tenant_id, display_name, secret_salt, secret_hash, iterations, created) SELECT '$OTHER', tenant_id, 'not an admin', secret_salt, secret_hash, iterations, created FROM principals WHERE client_id = '$(conf_get client_id)'"
OTOKEN=$(curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$OTHER" \
    --data-urlencode "client_secret=$(conf_get client_secret)" \
    --data-urlencode scope=https://management.azure.com/.default |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
SAVED=$TOKEN; TOKEN=$OTOKEN
CODE=$(adm PUT /admin/vaults/team-c '{}')
expect "non-admin cannot create (management token)" 403 "d['error']['code'] == 'AuthorizationFailed'"
CODE=$(adm GET /admin/vaults)
expect "non-admin cannot list" 403
sqlite3 "$VAULTD_STATE/vaultd.db" "UPDATE principals SET tenant_admin = 1 WHERE client_id = '$OTHER'"
CODE=$(adm PUT /admin/vaults/team-c '{}')
expect "principals.tenant_admin = 1 grants administration" 201
TOKEN=$SAVED

# delete
CODE=$(adm DELETE /admin/vaults/team-b)
expect "delete a non-empty vault: 409 VaultNotEmpty" 409 "d['error']['innererror']['code'] == 'VaultNotEmpty'"
CODE=$(adm DELETE "/admin/vaults/team-b?force=true")
expect "delete with force=true: 200" 200
check "team-b's keys are gone" bash -c \
    "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' \"SELECT COUNT(*) FROM keys WHERE vault='team-b'\")\" = 0 ]"
CODE=$(adm DELETE /admin/vaults/team-b)
expect "delete again: 204" 204
CODE=$(adm DELETE /admin/vaults/dev)
expect "the default vault cannot be deleted" 409 "d['error']['innererror']['code'] == 'DefaultVault'"
CODE=$(adm DELETE /admin/vaults/pool-a)
expect "a pool is not deleted through /admin/vaults (204, nothing there)" 204
CODE=$(adm DELETE /admin/managedHSMs/pool-a)
expect "delete empty pool: 200" 200
CODE=$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" \
    -H "Authorization: Bearer $TOKEN" "https://team-b.vault.localhost:$VAULTD_PORT/keys?api-version=7.5")
expect "a deleted vault answers 404 VaultNotFound" 404 "d['error']['code'] == 'VaultNotFound'"

# persistence
stop_vaultd
start_vaultd || not_ok "vaultd restarts"
CODE=$(adm GET /admin/vaults)
expect "after restart: team-a, team-c and the initial ones" 200 "sorted(v['name'] for v in d['value']) == sorted($V0 + ['team-a', 'team-c'])"

# ---- the kvault CLI verbs ----
# cli NAME CMD...: runs the CLI, stdout to $T_TMP/NAME.json; check passes when it exits 0
cli() { local n=$1; shift; "$@" >"$T_TMP/$n.json"; }
cjq() { [ "$(jget "$T_TMP/$1.json" "$2")" = True ]; }
check "kvault keyvault create --name cli-vault --retention-days 10 --enable-purge-protection true --sku premium" \
    cli kvc "$KVAULT" keyvault create --name cli-vault --retention-days 10 \
    --enable-purge-protection true --sku premium
check "  ... prints the ARM resource" cjq kvc \
    "d['name'] == 'cli-vault' and d['properties']['softDeleteRetentionInDays'] == 10 and d['properties']['enablePurgeProtection'] and d['properties']['sku']['name'] == 'premium'"
check "kvault keyvault create --hsm-name cli-pool" cli kvh "$KVAULT" keyvault create --hsm-name cli-pool
check "kvault hsm create --name cli-pool2 --retention-days 28" \
    cli kvh2 "$KVAULT" hsm create --name cli-pool2 --retention-days 28
check "kvault keyvault list: vaults and pools" cli kvl "$KVAULT" keyvault list
check "  ... names" cjq kvl \
    "sorted(v['name'] for v in d) == sorted($V0 + $P0 + ['cli-pool', 'cli-pool2', 'cli-vault', 'team-a', 'team-c'])"
check "kvault keyvault list --resource-type hsm" cli kvlh "$KVAULT" keyvault list --resource-type hsm
check "  ... only pools" cjq kvlh "sorted(v['name'] for v in d) == sorted($P0 + ['cli-pool', 'cli-pool2'])"
check "kvault hsm list" cli kvhl "$KVAULT" hsm list
check "  ... pools" cjq kvhl "sorted(v['name'] for v in d) == sorted($P0 + ['cli-pool', 'cli-pool2'])"
check "kvault hsm show --name cli-pool2" cli kvhs "$KVAULT" hsm show --name cli-pool2
check "  ... retention 28" cjq kvhs "d['properties']['softDeleteRetentionInDays'] == 28"
check "kvault keyvault show --name cli-vault (not configured: from the admin API)" \
    cli kvs "$KVAULT" keyvault show --name cli-vault
check "  ... vaultUri" cjq kvs "d['properties']['vaultUri'] == 'https://cli-vault.vault.localhost:$VAULTD_PORT/'"
check "kvault keyvault show --hsm-name cli-pool" cli kvsh "$KVAULT" keyvault show --hsm-name cli-pool
check "  ... type" cjq kvsh "d['type'] == 'Microsoft.KeyVault/managedHSMs'"
check_fails_with "kvault keyvault show of an unknown vault: not configured either" \
    "The vault 'nosuch' is not configured" "$KVAULT" keyvault show --name nosuch
check_fails_with "kvault keyvault create with a bad name: usage error" "not a valid vault name" \
    "$KVAULT" keyvault create --name a
check_fails_with "kvault keyvault create --retention-days 5: usage error" "retention-days" \
    "$KVAULT" keyvault create --name abc --retention-days 5
check_fails_with "kvault keyvault delete --name dev: refused" "DefaultVault" \
    "$KVAULT" keyvault delete --name dev
check "kvault keyvault delete --name cli-vault" "$KVAULT" keyvault delete --name cli-vault
check "kvault keyvault delete --hsm-name cli-pool" "$KVAULT" keyvault delete --hsm-name cli-pool
check "kvault hsm delete --name cli-pool2" "$KVAULT" hsm delete --name cli-pool2
check "kvault keyvault list after the deletes" cli kvl2 "$KVAULT" keyvault list
check "  ... names" cjq kvl2 "sorted(v['name'] for v in d) == sorted($V0 + $P0 + ['team-a', 'team-c'])"

finish
