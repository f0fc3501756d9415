#!/usr/bin/env bash
# test_rbac.sh - role-based access control in vaultd (docs/rbac.md): for every built-in role
# (Key Vault roles on vault dev, Managed HSM roles on pool devhsm) allowed and denied operations
# per object type, at vault scope and at object scope; 403 Forbidden / ForbiddenByRbac in Azure's
# shape; denied requests leave state unchanged; the role assignment / definition API and the
# `kvault role` CLI. Principals come from `kvault ad sp create-for-rbac` (contract C1).
source "$(dirname "$0")/lib.sh"

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
V="https://dev.vault.localhost:$VAULTD_PORT"
O="https://other.vault.localhost:$VAULTD_PORT"
H="https://devhsm.managedhsm.localhost:$VAULTD_PORT"
ADMIN_URL="https://localhost:$VAULTD_PORT/admin"
AV="api-version=7.4"
AUTHZ="providers/Microsoft.Authorization"
VRES=https://vault.azure.net
MRES=https://managedhsm.azure.net
D256=$(printf 'rbac' | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=')

# jget FILE PYEXPR: evaluates PYEXPR with d = the JSON in FILE.
jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# token CLIENT SECRET RESOURCE: a bearer token (client credentials).
token() {
    curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$1" \
        --data-urlencode "client_secret=$2" --data-urlencode "scope=$3/.default" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# call TOKEN METHOD URL [JSON]: body to $T_TMP/resp.json, prints the status.
call() {
    local t=$1 m=$2 u=$3 body=${4:-}
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -H "Authorization: Bearer $t")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$u"
}

# expect CODE TOKEN METHOD URL [JSON]: the request answers CODE (prints the body otherwise).
expect() {
    local want=$1 got; shift
    got=$(call "$@")
    [ "$got" = "$want" ] && return 0
    echo "$2 $3 -> $got (wanted $want): $(head -c 600 "$T_TMP/resp.json")"
    return 1
}

# forbidden TOKEN METHOD URL [JSON]: 403 Forbidden / ForbiddenByRbac.
forbidden() {
    expect 403 "$@" &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"] + "/" + d["error"]["innererror"]["code"]')" = \
            Forbidden/ForbiddenByRbac ]
}

ADM_V=$(get_token)
ADM_M=$(token "$(conf_get client_id)" "$(conf_get client_secret)" $MRES)
[ -n "$ADM_V" ] && [ -n "$ADM_M" ] && ok "dev principal tokens" || not_ok "dev principal tokens"

# ---- principals (C1) ----
declare -A APP PW
# sps NAME...: a new service principal "rbac-NAME" for each NAME (4 CLI runs at a time);
# APP[NAME], PW[NAME].
sps() {
    local n pids=()
    for n in "$@"; do
        "$KVAULT" ad sp create-for-rbac --name "rbac-$n" >"$T_TMP/sp-$n.json" 2>"$T_TMP/sp-$n.err" &
        pids+=($!)
        [ ${#pids[@]} -lt 4 ] && continue
        wait "${pids[@]}"; pids=()
    done
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
    for n in "$@"; do
        APP[$n]=$(jget "$T_TMP/sp-$n.json" 'd["appId"]') &&
            PW[$n]=$(jget "$T_TMP/sp-$n.json" 'd["password"]') || { cat "$T_TMP/sp-$n.err"; return 1; }
    done
}
# vt NAME / mt NAME: the principal's token for vaults / managed HSM pools.
vt() { token "${APP[$1]}" "${PW[$1]}" $VRES; }
mt() { token "${APP[$1]}" "${PW[$1]}" $MRES; }

# assign URL SCOPE PRINCIPAL ROLEID TOKEN: PUT a role assignment (201).
assign() {
    local scope=${2%/}
    expect 201 "$5" PUT "$1$scope/$AUTHZ/roleAssignments/$(cat /proc/sys/kernel/random/uuid)?$AV" \
        "{\"properties\":{\"roleDefinitionId\":\"$4\",\"principalId\":\"$3\"}}"
}

R_KV_ADMIN=00482a5a-887f-4fb3-b363-3b7fe8e74483
R_KV_READER=21090545-7ca7-4776-b22c-e363652d74d2
R_KV_CO=14b46e9e-c2b7-41b4-b07b-48a6ebf60603
R_KV_CU=12338af0-0e69-4776-bea7-57ae8d297424
R_KV_CSEU=e147488a-f6f5-4113-8e2d-b22465e65bf6
R_KV_CSRU=08bbd89e-9f13-488c-ac41-acfcb10c90ab
R_KV_CERTO=a4417e6f-fecd-4de8-b567-7b0420556985
R_KV_CERTU=db79e9a7-68ee-4b58-9aeb-b90e7c24fcba
R_KV_SECO=b86a8fe4-44ce-4948-aee5-eccb2c155cd7
R_KV_SECU=4633458b-17de-408a-b874-0445c86b69e6
R_M_ADMIN=a290e904-7015-4bba-90c8-60543313cdb4
R_M_CO=515eb02d-2335-4d2d-92f2-b1cbdf9c3778
R_M_CU=21dbd100-6940-42c2-9190-5d6cb909625b
R_M_CSEU=33413926-3206-4cdd-b39a-83574fe37a17
R_M_CSRU=21dbd100-6940-42c2-9190-5d6cb909625c
R_M_AUDIT=2c18b078-7c48-4d3a-af88-5a3a1b3f82b3
R_M_BACKUP=7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8
R_M_POLICY=4bd23610-cdcf-4971-bdee-bdc562cc28e4

# ---- objects, made by the dev principal (Key Vault Administrator on dev; Managed HSM
# Administrator + Crypto User + Crypto Officer on devhsm as its creator) ----
RSA='{"kty":"RSA","key_size":2048}'
RSAHSM='{"kty":"RSA-HSM","key_size":2048}'
CERT_POLICY='{"policy":{"key_props":{"kty":"EC","crv":"P-256","exportable":true},"secret_props":{"contentType":"application/x-pem-file"},"x509_props":{"subject":"CN=rbac"},"issuer":{"name":"Self"}}}'
t_setup() {
    expect 200 "$ADM_V" POST "$V/keys/k1/create?$AV" "$RSA" &&
        expect 200 "$ADM_V" POST "$V/keys/k2/create?$AV" "$RSA" &&
        expect 200 "$ADM_V" PUT "$V/secrets/s1?$AV" '{"value":"one"}' &&
        expect 200 "$ADM_V" PUT "$V/secrets/s2?$AV" '{"value":"two"}' &&
        expect 202 "$ADM_V" POST "$V/certificates/c1/create?$AV" "$CERT_POLICY" &&
        expect 202 "$ADM_V" POST "$V/certificates/c2/create?$AV" "$CERT_POLICY" &&
        expect 200 "$ADM_M" POST "$H/keys/h1/create?$AV" "$RSAHSM" &&
        expect 200 "$ADM_M" POST "$H/keys/h2/create?$AV" "$RSAHSM" &&
        expect 201 "$ADM_V" PUT "$ADMIN_URL/vaults/other?$AV" ''
}
check "setup: keys k1 k2, secrets s1 s2, certificates c1 c2 in dev; h1 h2 in devhsm; vault other" t_setup

ROLES_V="admin reader cryptoofficer cryptouser cseu csru certofficer certuser secofficer secuser"
ROLES_M="madmin mco mcu mcseu mcsru mauditor mbackup mpolicy"
t_principals() {
    # shellcheck disable=SC2086
    sps $ROLES_V $ROLES_M nothing k-cu k-cseu k-admin k-reader k-co s-secu s-seco c-certu c-certo \
        hk-cu hk-cseu hk-admin hk-co hk-audit delegate
}
check "service principals for every role (kvault ad sp create-for-rbac)" t_principals

# ---- deny by default, and the 403 shape ----
T_NOTHING=$(vt nothing)
t_403_shape() {
    forbidden "$T_NOTHING" DELETE "$V/keys/k1?$AV" || return 1
    python3 - "$T_TMP/resp.json" "${APP[nothing]}" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["error"]
app = sys.argv[2]
m = d["message"]
assert d["code"] == "Forbidden" and d["innererror"]["code"] == "ForbiddenByRbac", d
assert m.startswith("Caller is not authorized to perform action on resource.\r\n"), m
assert "If role assignments, deny assignments or role definitions were changed recently" in m, m
assert f"Caller: appid={app};oid={app};" in m, m
assert "\r\nAction: 'Microsoft.KeyVault/vaults/keys/delete'\r\n" in m, m
assert "\r\nResource: '/providers/microsoft.keyvault/vaults/dev/keys/k1'\r\n" in m, m
assert "\r\nAssignment: (not found)\r\n" in m, m
assert "\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n" in m, m
assert "\r\nVault: dev;location=local\r\n" in m, m
EOF
}
check "no assignment: DELETE key -> 403 Forbidden/ForbiddenByRbac with Azure's message shape" t_403_shape
t_denied_delete_kept() {
    expect 200 "$ADM_V" GET "$V/keys/k1?$AV" &&
        [ "$(jget "$T_TMP/resp.json" 'd["attributes"]["enabled"]')" = True ] &&
        expect 404 "$ADM_V" GET "$V/deletedkeys/k1?$AV"
}
check "denied delete left k1 in place (not soft-deleted)" t_denied_delete_kept
t_403_mhsm_action() {
    forbidden "$(mt nothing)" POST "$H/keys/h1/create?$AV" "$RSAHSM" &&
        jget "$T_TMP/resp.json" 'd["error"]["message"]' |
        grep -q "Action: 'Microsoft.KeyVault/managedHsm/keys/create'" &&
        expect 200 "$ADM_M" GET "$H/keys/h1?$AV"
}
check "managed HSM: denial names the MHSM data action (keys/create)" t_403_mhsm_action
t_nothing_sc() {
    forbidden "$T_NOTHING" GET "$V/secrets/s1?$AV" && forbidden "$T_NOTHING" GET "$V/certificates/c1?$AV" &&
        forbidden "$T_NOTHING" GET "$V/keys?$AV"
}
check "no assignment: secret get, certificate get, key list -> 403" t_nothing_sc

# ---- vault roles at vault scope ----
t_assign_vault_roles() {
    assign "$V" / "${APP[admin]}" $R_KV_ADMIN "$ADM_V" &&
        assign "$V" / "${APP[reader]}" $R_KV_READER "$ADM_V" &&
        assign "$V" / "${APP[cryptoofficer]}" $R_KV_CO "$ADM_V" &&
        assign "$V" / "${APP[cryptouser]}" "/providers/Microsoft.Authorization/roleDefinitions/$R_KV_CU" "$ADM_V" &&
        assign "$V" / "${APP[cseu]}" $R_KV_CSEU "$ADM_V" &&
        assign "$V" / "${APP[csru]}" $R_KV_CSRU "$ADM_V" &&
        assign "$V" / "${APP[certofficer]}" $R_KV_CERTO "$ADM_V" &&
        assign "$V" / "${APP[certuser]}" $R_KV_CERTU "$ADM_V" &&
        assign "$V" / "${APP[secofficer]}" $R_KV_SECO "$ADM_V" &&
        assign "$V" / "${APP[secuser]}" $R_KV_SECU "$ADM_V"
}
check "assign the 10 Key Vault roles at / on dev (role API, 201)" t_assign_vault_roles

t_kv_admin() {
    local t; t=$(vt admin)
    expect 200 "$t" POST "$V/keys/adm1/create?$AV" "$RSA" && expect 200 "$t" DELETE "$V/keys/adm1?$AV" &&
        expect 200 "$t" PUT "$V/secrets/adm-s?$AV" '{"value":"x"}' &&
        expect 200 "$t" GET "$V/certificates/c1?$AV" &&
        forbidden "$t" GET "$O/keys?$AV" && forbidden "$t" GET "$O/secrets?$AV" &&
        forbidden "$t" GET "$O/certificates?$AV" &&
        forbidden "$(mt admin)" GET "$H/keys/h1?$AV"
}
check "Key Vault Administrator: keys/secrets/certificates allowed on dev; denied on vault other and on devhsm" t_kv_admin

t_kv_reader() {
    local t; t=$(vt reader)
    expect 200 "$t" GET "$V/keys/k1?$AV" && forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" DELETE "$V/keys/k1?$AV" &&
        expect 200 "$t" GET "$V/secrets?$AV" && forbidden "$t" GET "$V/secrets/s1?$AV" &&
        expect 200 "$t" GET "$V/certificates/c1?$AV" && forbidden "$t" DELETE "$V/certificates/c1?$AV" &&
        expect 200 "$ADM_V" GET "$V/certificates/c1?$AV"
}
check "Key Vault Reader: key get / secret list / certificate get allowed; sign, delete, secret value denied" t_kv_reader

t_kv_crypto_officer() {
    local t; t=$(vt cryptoofficer)
    expect 200 "$t" POST "$V/keys/co1/create?$AV" "$RSA" && expect 200 "$t" DELETE "$V/keys/co1?$AV" &&
        expect 204 "$t" DELETE "$V/deletedkeys/co1?$AV" &&
        forbidden "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" GET "$V/secrets?$AV" &&
        forbidden "$t" GET "$V/certificates/c1?$AV" && forbidden "$t" GET "$O/keys/k1?$AV"
}
check "Key Vault Crypto Officer: key create/delete/purge allowed; secrets, certificates, other vault denied" t_kv_crypto_officer

t_kv_crypto_user() {
    local t; t=$(vt cryptouser)
    expect 200 "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 200 "$t" GET "$V/keys/k1?$AV" &&
        forbidden "$t" DELETE "$V/keys/k1?$AV" && forbidden "$t" POST "$V/keys/cu1/create?$AV" "$RSA" &&
        forbidden "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" GET "$V/certificates/c1?$AV" &&
        expect 200 "$ADM_V" GET "$V/keys/k1?$AV" && expect 404 "$ADM_V" GET "$V/keys/cu1?$AV"
}
check "Key Vault Crypto User: sign + get allowed; delete, create, secrets, certificates denied (state unchanged)" t_kv_crypto_user

t_kv_cseu() {
    local t ct; t=$(vt cseu)
    expect 200 "$t" GET "$V/keys/k1?$AV" &&
        expect 200 "$t" POST "$V/keys/k1/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}' &&
        ct=$(jget "$T_TMP/resp.json" 'd["value"]') &&
        expect 200 "$t" POST "$V/keys/k1/unwrapkey?$AV" "{\"alg\":\"RSA-OAEP\",\"value\":\"$ct\"}" &&
        forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$V/keys/k1/decrypt?$AV" "{\"alg\":\"RSA-OAEP\",\"value\":\"$ct\"}" &&
        forbidden "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" GET "$V/certificates/c1?$AV"
}
check "Key Vault Crypto Service Encryption User: get, wrap, unwrap allowed; sign, decrypt, secrets, certificates denied" t_kv_cseu

t_kv_csru() {
    local t; t=$(vt csru)
    forbidden "$t" GET "$V/keys/k1?$AV" && forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" GET "$V/certificates/c1?$AV"
}
check "Key Vault Crypto Service Release User: get, sign, secrets, certificates denied (release only)" t_kv_csru

t_kv_cert_officer() {
    local t; t=$(vt certofficer)
    expect 202 "$t" POST "$V/certificates/co-c/create?$AV" "$CERT_POLICY" &&
        expect 200 "$t" GET "$V/certificates/c1?$AV" &&
        expect 200 "$t" GET "$V/certificates?$AV" &&
        forbidden "$t" GET "$V/keys/k1?$AV" && forbidden "$t" GET "$V/secrets/s1?$AV" &&
        forbidden "$t" PUT "$V/secrets/s1?$AV" '{"value":"nope"}'
}
check "Key Vault Certificates Officer: certificate create/get/list allowed; keys and secrets denied" t_kv_cert_officer

t_kv_cert_user() {
    local t; t=$(vt certuser)
    expect 200 "$t" GET "$V/certificates/c1?$AV" && forbidden "$t" DELETE "$V/certificates/c1?$AV" &&
        expect 200 "$t" GET "$V/secrets/c1?$AV" && forbidden "$t" PUT "$V/secrets/cu-s?$AV" '{"value":"x"}' &&
        expect 200 "$t" GET "$V/keys/k1?$AV" &&
        forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 404 "$ADM_V" GET "$V/secrets/cu-s?$AV"
}
check "Key Vault Certificate User: certificate get, its secret, key get allowed; delete, secret set, sign denied" t_kv_cert_user

t_kv_secrets_officer() {
    local t; t=$(vt secofficer)
    expect 200 "$t" PUT "$V/secrets/so1?$AV" '{"value":"x"}' && expect 200 "$t" GET "$V/secrets/so1?$AV" &&
        expect 200 "$t" DELETE "$V/secrets/so1?$AV" &&
        forbidden "$t" GET "$V/keys/k1?$AV" && forbidden "$t" GET "$V/certificates/c1?$AV"
}
check "Key Vault Secrets Officer: secret set/get/delete allowed; keys and certificates denied" t_kv_secrets_officer

versions() { expect 200 "$ADM_V" GET "$V/secrets/s1/versions?$AV" >/dev/null && jget "$T_TMP/resp.json" 'len(d["value"])'; }
t_kv_secrets_user() {
    local t n0 n1; t=$(vt secuser)
    n0=$(versions)
    expect 200 "$t" GET "$V/secrets/s1?$AV" && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = one ] &&
        forbidden "$t" PUT "$V/secrets/s1?$AV" '{"value":"changed"}' &&
        forbidden "$t" DELETE "$V/secrets/s1?$AV" &&
        forbidden "$t" GET "$V/keys/k1?$AV" && forbidden "$t" GET "$V/certificates/c1?$AV" || return 1
    n1=$(versions)
    [ -n "$n0" ] && [ "$n0" = "$n1" ] && expect 200 "$ADM_V" GET "$V/secrets/s1?$AV" &&
        [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = one ]
}
check "Key Vault Secrets User: secret get allowed; set (version count unchanged), delete, keys, certificates denied" t_kv_secrets_user

# ---- vault roles at object scope ----
t_scoped_cli() {
    "$KVAULT" role assignment create --assignee "${APP[k-cu]}" --role "Key Vault Crypto User" \
        --scope /vaults/dev/keys/k1 >"$T_TMP/cli-k1.json" &&
        [ "$(jget "$T_TMP/cli-k1.json" 'd["roleDefinitionName"] + "|" + d["scope"] + "|" + d["principalId"]')" = \
            "Key Vault Crypto User|/vaults/dev/keys/k1|${APP[k-cu]}" ]
}
check "kvault role assignment create --role \"Key Vault Crypto User\" --scope /vaults/dev/keys/k1" t_scoped_cli
t_scoped_vault() {
    assign "$V" /keys/k1 "${APP[k-cseu]}" $R_KV_CSEU "$ADM_V" &&
        assign "$V" /keys/k1 "${APP[k-admin]}" $R_KV_ADMIN "$ADM_V" &&
        assign "$V" /keys/k1 "${APP[k-reader]}" $R_KV_READER "$ADM_V" &&
        assign "$V" /keys/k1 "${APP[k-co]}" $R_KV_CO "$ADM_V" &&
        assign "$V" /secrets/s1 "${APP[s-secu]}" $R_KV_SECU "$ADM_V" &&
        assign "$V" /secrets/s1 "${APP[s-seco]}" $R_KV_SECO "$ADM_V" &&
        assign "$V" /certificates/c1 "${APP[c-certu]}" $R_KV_CERTU "$ADM_V" &&
        assign "$V" /certificates/c1 "${APP[c-certo]}" $R_KV_CERTO "$ADM_V"
}
check "object-scope assignments (/keys/k1, /secrets/s1, /certificates/c1)" t_scoped_vault
t_k_cu() {
    local t; t=$(vt k-cu)
    expect 200 "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$V/keys/k2/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" DELETE "$V/keys/k1?$AV" &&
        forbidden "$t" GET "$V/keys?$AV" && forbidden "$t" GET "$V/secrets/s1?$AV" &&
        expect 200 "$ADM_V" GET "$V/keys/k1?$AV" && expect 404 "$ADM_V" GET "$V/deletedkeys/k1?$AV"
}
check "Crypto User at /keys/k1 (assigned by the CLI): sign with k1 allowed; delete k1 (kept), k2, key list, secrets denied" t_k_cu
t_k_cseu() {
    local t; t=$(vt k-cseu)
    expect 200 "$t" POST "$V/keys/K1/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}' &&
        forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$V/keys/k2/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}'
}
check "Crypto Service Encryption User at /keys/k1: wrap with k1 (any case) allowed; sign with k1, wrap with k2 denied" t_k_cseu
t_k_reader() {
    local t; t=$(vt k-reader)
    expect 200 "$t" GET "$V/keys/k1?$AV" &&
        forbidden "$t" POST "$V/keys/k1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" GET "$V/keys/k2?$AV"
}
check "Reader at /keys/k1: get k1 allowed; sign with k1, get k2 denied" t_k_reader
t_k_co() {
    local t; t=$(vt k-co)
    expect 200 "$t" PATCH "$V/keys/k1?$AV" '{"tags":{"officer":"yes"}}' &&
        [ "$(jget "$T_TMP/resp.json" 'd["tags"]["officer"]')" = yes ] &&
        forbidden "$t" GET "$V/keys/k2?$AV" && forbidden "$t" PATCH "$V/keys/k2?$AV" '{"tags":{"officer":"yes"}}' &&
        forbidden "$t" POST "$V/keys/k3/create?$AV" "$RSA" &&
        expect 404 "$ADM_V" GET "$V/keys/k3?$AV"
}
check "Crypto Officer at /keys/k1: update k1 allowed; get/update k2, create k3 (not created) denied" t_k_co
t_k_admin() {
    local t; t=$(vt k-admin)
    expect 200 "$t" PATCH "$V/keys/k1?$AV" '{"tags":{"scoped":"yes"}}' &&
        forbidden "$t" PATCH "$V/keys/k2?$AV" '{"tags":{"scoped":"yes"}}' &&
        forbidden "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" POST "$V/keys/restore?$AV" '{"value":"x"}' &&
        expect 200 "$ADM_V" GET "$V/keys/k2?$AV" && [ "$(jget "$T_TMP/resp.json" 'd.get("tags")')" = None ]
}
check "Administrator at /keys/k1: update k1 allowed; k2 (unchanged), secrets, restore denied" t_k_admin
t_s_secu() {
    local t; t=$(vt s-secu)
    expect 200 "$t" GET "$V/secrets/s1?$AV" && forbidden "$t" GET "$V/secrets/s2?$AV" &&
        forbidden "$t" GET "$V/secrets?$AV"
}
check "Secrets User at /secrets/s1: s1 allowed; s2 and the list denied" t_s_secu
t_s_seco() {
    local t; t=$(vt s-seco)
    expect 200 "$t" PUT "$V/secrets/s1?$AV" '{"value":"one"}' && expect 200 "$t" GET "$V/secrets/s1?$AV" &&
        forbidden "$t" GET "$V/secrets/s2?$AV" && forbidden "$t" PUT "$V/secrets/s2?$AV" '{"value":"changed"}' &&
        forbidden "$t" GET "$V/secrets?$AV" &&
        expect 200 "$ADM_V" GET "$V/secrets/s2?$AV" && [ "$(jget "$T_TMP/resp.json" 'd["value"]')" = two ]
}
check "Secrets Officer at /secrets/s1: set/get s1 allowed; get/set s2 (unchanged), list denied" t_s_seco
t_c_certu() {
    local t; t=$(vt c-certu)
    expect 200 "$t" GET "$V/certificates/c1?$AV" && forbidden "$t" GET "$V/certificates/c2?$AV" &&
        forbidden "$t" GET "$V/certificates?$AV" && forbidden "$t" GET "$V/secrets/c1?$AV"
}
check "Certificate User at /certificates/c1: c1 allowed; c2, list, secret c1 (other scope) denied" t_c_certu
t_c_certo() {
    local t; t=$(vt c-certo)
    expect 200 "$t" PATCH "$V/certificates/c1?$AV" '{"tags":{"officer":"yes"}}' &&
        expect 200 "$t" GET "$V/certificates/c1/policy?$AV" &&
        forbidden "$t" GET "$V/certificates/c2?$AV" &&
        forbidden "$t" PATCH "$V/certificates/c2?$AV" '{"tags":{"officer":"yes"}}' &&
        forbidden "$t" POST "$V/certificates/c3/create?$AV" "$CERT_POLICY" &&
        expect 200 "$ADM_V" GET "$V/certificates/c2?$AV" && [ "$(jget "$T_TMP/resp.json" 'd.get("tags")')" = None ]
}
check "Certificates Officer at /certificates/c1: update c1, its policy allowed; get/update c2 (unchanged), create c3 denied" t_c_certo

# ---- managed HSM roles on devhsm ----
t_assign_mhsm_roles() {
    assign "$H" / "${APP[madmin]}" $R_M_ADMIN "$ADM_M" &&
        assign "$H" / "${APP[mco]}" $R_M_CO "$ADM_M" &&
        assign "$H" / "${APP[mcu]}" "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/$R_M_CU" "$ADM_M" &&
        assign "$H" / "${APP[mcseu]}" $R_M_CSEU "$ADM_M" &&
        assign "$H" / "${APP[mcsru]}" $R_M_CSRU "$ADM_M" &&
        assign "$H" / "${APP[mauditor]}" $R_M_AUDIT "$ADM_M" &&
        assign "$H" / "${APP[mbackup]}" $R_M_BACKUP "$ADM_M" &&
        assign "$H" / "${APP[mpolicy]}" $R_M_POLICY "$ADM_M"
}
check "assign the 8 Managed HSM roles at / on devhsm" t_assign_mhsm_roles
t_m_admin() {
    local t; t=$(mt madmin)
    forbidden "$t" GET "$H/keys/h1?$AV" && forbidden "$t" POST "$H/keys/ma1/create?$AV" "$RSAHSM" &&
        expect 200 "$t" GET "$H/$AUTHZ/roleAssignments?$AV" &&
        expect 200 "$t" GET "$H/$AUTHZ/roleDefinitions?$AV"
}
check "Managed HSM Administrator: role management allowed; key get/create denied" t_m_admin
t_m_co() {
    local t; t=$(mt mco)
    expect 200 "$ADM_M" POST "$H/keys/gone1/create?$AV" "$RSAHSM" &&
        expect 200 "$ADM_M" DELETE "$H/keys/gone1?$AV" &&
        expect 200 "$t" GET "$H/deletedkeys?$AV" && expect 200 "$t" GET "$H/deletedkeys/gone1?$AV" &&
        expect 200 "$t" POST "$H/deletedkeys/gone1/recover?$AV" &&
        forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$H/keys/mco1/create?$AV" "$RSAHSM" && forbidden "$t" GET "$H/keys/h1?$AV"
}
check "Managed HSM Crypto Officer: deleted keys list/get/recover allowed; sign, create, get denied" t_m_co
t_m_cu() {
    local t; t=$(mt mcu)
    expect 200 "$t" POST "$H/keys/mcu1/create?$AV" "$RSAHSM" &&
        expect 200 "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 200 "$t" DELETE "$H/keys/mcu1?$AV" &&
        forbidden "$t" DELETE "$H/deletedkeys/mcu1?$AV" &&
        forbidden "$t" GET "$H/deletedkeys?$AV" &&
        forbidden "$t" PUT "$H/$AUTHZ/roleAssignments/$(cat /proc/sys/kernel/random/uuid)?$AV" \
            "{\"properties\":{\"roleDefinitionId\":\"$R_M_CU\",\"principalId\":\"${APP[mcu]}\"}}" &&
        expect 200 "$ADM_M" GET "$H/deletedkeys/mcu1?$AV"
}
check "Managed HSM Crypto User: create, sign, delete allowed; purge (key still deleted-recoverable), deleted list, role write denied" t_m_cu
t_m_cseu() {
    local t; t=$(mt mcseu)
    expect 200 "$t" GET "$H/keys/h1?$AV" &&
        expect 200 "$t" POST "$H/keys/h1/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}' &&
        forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$H/keys/mcseu1/create?$AV" "$RSAHSM" && forbidden "$t" DELETE "$H/keys/h1?$AV" &&
        expect 200 "$ADM_M" GET "$H/keys/h1?$AV"
}
check "Managed HSM Crypto Service Encryption User: get, wrap allowed; sign, create, delete denied" t_m_cseu
t_m_csru() {
    local t; t=$(mt mcsru)
    forbidden "$t" GET "$H/keys/h1?$AV" && forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}"
}
check "Managed HSM Crypto Service Release User: get, sign denied (release only)" t_m_csru
t_m_auditor() {
    local t; t=$(mt mauditor)
    expect 200 "$t" GET "$H/keys/h1?$AV" && expect 200 "$t" GET "$H/deletedkeys?$AV" &&
        expect 200 "$t" GET "$H/$AUTHZ/roleAssignments?$AV" &&
        forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" DELETE "$H/keys/h2?$AV" && expect 200 "$ADM_M" GET "$H/keys/h2?$AV"
}
check "Managed HSM Crypto Auditor: get, deleted list, role read allowed; sign, delete denied" t_m_auditor
t_m_backup() {
    local t; t=$(mt mbackup)
    expect 200 "$t" POST "$H/keys/h1/backup?$AV" && forbidden "$t" GET "$H/keys/h1?$AV" &&
        forbidden "$t" POST "$H/keys/restore?$AV" '{"value":"x"}'
}
check "Managed HSM Backup User: key backup allowed; get, restore denied" t_m_backup
t_m_policy() {
    local t; t=$(mt mpolicy)
    assign "$H" / "${APP[delegate]}" $R_M_CSEU "$t" && forbidden "$t" GET "$H/keys/h1?$AV" &&
        forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 200 "$(mt delegate)" GET "$H/keys/h1?$AV"
}
check "Managed HSM Policy Administrator: role assignment create allowed (takes effect); key get/sign denied" t_m_policy

t_scoped_mhsm() {
    local t
    assign "$H" /keys/h1 "${APP[hk-cu]}" $R_M_CU "$ADM_M" &&
        assign "$H" /keys/h1 "${APP[hk-cseu]}" $R_M_CSEU "$ADM_M" || return 1
    t=$(mt hk-cu)
    expect 200 "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" POST "$H/keys/h2/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" GET "$H/keys?$AV" && forbidden "$t" POST "$H/keys/hk1/create?$AV" "$RSAHSM" || return 1
    t=$(mt hk-cseu)
    expect 200 "$t" POST "$H/keys/h1/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}' &&
        forbidden "$t" POST "$H/keys/h2/wrapkey?$AV" '{"alg":"RSA-OAEP","value":"AAECAwQFBgcICQoLDA0ODw"}'
}
check "managed HSM at /keys/h1: Crypto User signs with h1 not h2 (no list/create); CSEU wraps with h1 not h2" t_scoped_mhsm
t_scoped_mhsm_roles() {
    local t
    assign "$H" /keys/h1 "${APP[hk-admin]}" $R_M_ADMIN "$ADM_M" &&
        assign "$H" /keys/h1 "${APP[hk-co]}" $R_M_CO "$ADM_M" &&
        assign "$H" /keys/h1 "${APP[hk-audit]}" $R_M_AUDIT "$ADM_M" || return 1
    forbidden "$(mt hk-admin)" GET "$H/keys/h1?$AV" || return 1
    t=$(mt hk-audit)
    expect 200 "$t" GET "$H/keys/h1?$AV" &&
        forbidden "$t" POST "$H/keys/h1/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        forbidden "$t" GET "$H/keys/h2?$AV" || return 1
    t=$(mt hk-co)
    expect 200 "$ADM_M" DELETE "$H/keys/h1?$AV" && expect 200 "$ADM_M" DELETE "$H/keys/h2?$AV" &&
        expect 200 "$t" GET "$H/deletedkeys/h1?$AV" && forbidden "$t" GET "$H/deletedkeys/h2?$AV" &&
        forbidden "$t" POST "$H/deletedkeys/h2/recover?$AV" &&
        expect 200 "$t" POST "$H/deletedkeys/h1/recover?$AV" &&
        expect 200 "$ADM_M" POST "$H/deletedkeys/h2/recover?$AV" &&
        expect 200 "$ADM_M" GET "$H/keys/h1?$AV" && expect 200 "$ADM_M" GET "$H/keys/h2?$AV"
}
check "managed HSM at /keys/h1: Administrator cannot get h1; Crypto Auditor gets h1, not sign / h2; Crypto Officer recovers deleted h1, not h2" t_scoped_mhsm_roles

# ---- the role API ----
t_api_errors() {
    local g; g=$(cat /proc/sys/kernel/random/uuid)
    expect 400 "$ADM_M" PUT "$H/$AUTHZ/roleAssignments/$g?$AV" \
        "{\"properties\":{\"roleDefinitionId\":\"$R_KV_CU\",\"principalId\":\"${APP[nothing]}\"}}" &&
        expect 400 "$ADM_V" PUT "$V/$AUTHZ/roleAssignments/not-a-guid?$AV" \
            "{\"properties\":{\"roleDefinitionId\":\"$R_KV_CU\",\"principalId\":\"${APP[nothing]}\"}}" &&
        expect 400 "$ADM_M" PUT "$H/secrets/x/$AUTHZ/roleAssignments/$g?$AV" \
            "{\"properties\":{\"roleDefinitionId\":\"$R_M_CU\",\"principalId\":\"${APP[nothing]}\"}}" &&
        expect 404 "$ADM_V" GET "$V/$AUTHZ/roleAssignments/$g?$AV" &&
        [ "$(jget "$T_TMP/resp.json" 'd["error"]["code"]')" = RoleAssignmentNotFound ] &&
        expect 400 "$ADM_V" GET "$V/$AUTHZ/roleAssignments"
}
check "role API: vault role on a pool, non-GUID name, bad scope, no api-version -> 400; unknown id -> 404" t_api_errors
t_api_roundtrip() {
    local g; g=$(cat /proc/sys/kernel/random/uuid)
    local body="{\"properties\":{\"roleDefinitionId\":\"$R_KV_CU\",\"principalId\":\"${APP[nothing]}\"}}"
    expect 201 "$ADM_V" PUT "$V/keys/k2/$AUTHZ/roleAssignments/$g?$AV" "$body" &&
        [ "$(jget "$T_TMP/resp.json" 'd["properties"]["scope"] + "|" + d["type"] + "|" + d["name"]')" = \
            "/keys/k2|Microsoft.Authorization/roleAssignments|$g" ] &&
        expect 201 "$ADM_V" PUT "$V/keys/k2/$AUTHZ/roleAssignments/$g?$AV" "$body" &&
        expect 409 "$ADM_V" PUT "$V/keys/k2/$AUTHZ/roleAssignments/$(cat /proc/sys/kernel/random/uuid)?$AV" "$body" &&
        expect 200 "$(vt nothing)" POST "$V/keys/k2/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 200 "$ADM_V" GET "$V/$AUTHZ/roleAssignments/$g?$AV" &&
        expect 200 "$ADM_V" GET "$V/keys/k2/$AUTHZ/roleAssignments?$AV&%24filter=principalId%20eq%20%27${APP[nothing]}%27" &&
        [ "$(jget "$T_TMP/resp.json" 'len(d["value"])')" = 1 ] &&
        expect 200 "$ADM_V" DELETE "$V/$AUTHZ/roleAssignments/$g?$AV" &&
        forbidden "$(vt nothing)" POST "$V/keys/k2/sign?$AV" "{\"alg\":\"RS256\",\"value\":\"$D256\"}" &&
        expect 404 "$ADM_V" DELETE "$V/$AUTHZ/roleAssignments/$g?$AV"
}
check "role API: PUT (idempotent, 409 duplicate), takes effect at once, GET, filtered list, DELETE revokes at once" t_api_roundtrip
t_api_authz() {
    local g; g=$(cat /proc/sys/kernel/random/uuid)
    local body="{\"properties\":{\"roleDefinitionId\":\"$R_KV_ADMIN\",\"principalId\":\"${APP[cryptouser]}\"}}"
    forbidden "$(vt cryptouser)" PUT "$V/$AUTHZ/roleAssignments/$g?$AV" "$body" &&
        forbidden "$(vt secofficer)" GET "$V/$AUTHZ/roleAssignments?$AV" &&
        expect 200 "$(vt secofficer)" GET "$V/$AUTHZ/roleDefinitions?$AV" &&
        [ "$(jget "$T_TMP/resp.json" 'len(d["value"])')" = 10 ] &&
        expect 201 "$(vt admin)" PUT "$V/$AUTHZ/roleAssignments/$g?$AV" \
            "{\"properties\":{\"roleDefinitionId\":\"$R_KV_READER\",\"principalId\":\"${APP[nothing]}\"}}" &&
        expect 200 "$(vt nothing)" GET "$V/keys/k1?$AV" &&
        expect 200 "$(vt admin)" DELETE "$V/$AUTHZ/roleAssignments/$g?$AV"
}
check "role API authorisation: Crypto User cannot assign, Secrets Officer cannot list assignments; KV Administrator can" t_api_authz
t_api_defs() {
    expect 200 "$ADM_M" GET "$H/$AUTHZ/roleDefinitions/$R_M_CU?$AV" &&
        python3 - "$T_TMP/resp.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["id"] == "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", d
p = d["properties"]
assert p["roleName"] == "Managed HSM Crypto User" and p["type"] == "AKVBuiltInRole", p
assert "Microsoft.KeyVault/managedHsm/keys/create" in p["permissions"][0]["dataActions"], p
assert p["assignableScopes"] == ["/"]
EOF
    expect 200 "$ADM_V" GET "$V/$AUTHZ/roleDefinitions?$AV" &&
        python3 - "$T_TMP/resp.json" <<'EOF'
import json, sys
v = {d["properties"]["roleName"]: d for d in json.load(open(sys.argv[1]))["value"]}
assert len(v) == 10, list(v)
assert v["Key Vault Reader"]["properties"]["permissions"][0]["dataActions"] == [
    "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
assert v["Key Vault Administrator"]["name"] == "00482a5a-887f-4fb3-b363-3b7fe8e74483"
EOF
}
check "role definitions: MHSM shape (AKVBuiltInRole, live data actions); the 10 vault roles" t_api_defs
t_tenant_admin_not_data() {
    local dev; dev=$(conf_get client_id)
    expect 200 "$ADM_V" GET "$O/$AUTHZ/roleAssignments?$AV&%24filter=principalId%20eq%20%27$dev%27" &&
        local id; id=$(jget "$T_TMP/resp.json" 'd["value"][0]["name"]') &&
        expect 200 "$ADM_V" GET "$O/keys?$AV" &&
        expect 200 "$ADM_V" DELETE "$O/$AUTHZ/roleAssignments/$id?$AV" &&
        forbidden "$ADM_V" GET "$O/keys?$AV" &&
        assign "$O" / "$dev" $R_KV_ADMIN "$ADM_V" && expect 200 "$ADM_V" GET "$O/keys?$AV"
}
check "tenant admin without a data role on vault other: 403 on keys, may still manage assignments" t_tenant_admin_not_data

# ---- CLI ----
t_cli() {
    local a=${APP[nothing]} out
    "$KVAULT" role assignment create --assignee "$a" --role "Key Vault Secrets User" \
        --scope /vaults/dev/secrets/s2 >"$T_TMP/cli.json" &&
        [ "$(jget "$T_TMP/cli.json" 'd["roleDefinitionName"] + "|" + d["scope"] + "|" + d["principalId"]')" = \
            "Key Vault Secrets User|/vaults/dev/secrets/s2|$a" ] &&
        expect 200 "$(vt nothing)" GET "$V/secrets/s2?$AV" &&
        "$KVAULT" role assignment create --hsm-name devhsm --assignee "$a" \
            --role "Managed HSM Crypto Auditor" --scope /keys/h2 >"$T_TMP/cli2.json" &&
        [ "$(jget "$T_TMP/cli2.json" 'd["roleName"] + "|" + d["scope"]')" = "Managed HSM Crypto Auditor|/keys/h2" ] &&
        expect 200 "$(mt nothing)" GET "$H/keys/h2?$AV" &&
        out=$("$KVAULT" role assignment list --assignee "$a" --query '[].scope' -o tsv | sort | tr '\n' ' ') &&
        [ "$out" = "/keys/h2 /vaults/dev/secrets/s2 " ] &&
        "$KVAULT" role assignment delete --ids "$(jget "$T_TMP/cli.json" 'd["id"]')" &&
        forbidden "$(vt nothing)" GET "$V/secrets/s2?$AV" &&
        "$KVAULT" role assignment delete --hsm-name devhsm --assignee "$a" --role "Managed HSM Crypto Auditor" --scope /keys/h2 &&
        forbidden "$(mt nothing)" GET "$H/keys/h2?$AV" &&
        [ "$("$KVAULT" role assignment list --assignee "$a" --query '[].scope' -o tsv)" = "" ] &&
        [ "$("$KVAULT" role definition list --hsm-name devhsm --query '[].roleName' -o tsv | wc -l)" = 8 ] &&
        [ "$("$KVAULT" keyvault role definition list --name "Key Vault Crypto User" --query '[0].name' -o tsv)" = $R_KV_CU ]
}
check "kvault role assignment create/list/delete and role definition list (az shapes)" t_cli
check_fails_with "kvault role assignment create with an unknown role" "Role 'No Such Role' doesn't exist" \
    "$KVAULT" role assignment create --assignee "${APP[nothing]}" --role "No Such Role" --scope /vaults/dev

finish
