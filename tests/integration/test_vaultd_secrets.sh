#!/usr/bin/env bash
# test_vaultd_secrets.sh - vaultd's secret endpoints with curl and python3 only: set (new
# versions, content type, 25 KiB limit), get (latest / by version, disabled -> 403), list and
# versions with paging, update, delete / deleted get and list / recover / purge (204, purge
# protection), the deleted-name conflict, backup / restore (same instance ok, another instance
# refused), values encrypted at rest and never in the log.
source "$(dirname "$0")/lib.sh"

start_vaultd || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"

CA="$VAULTD_STATE/ca.pem"
URL="https://dev.vault.localhost:$VAULTD_PORT"
AV="api-version=7.5"
TOKEN=$(get_token)

# jget PYEXPR: evaluates PYEXPR with d = the last JSON response and prints the result.
jget() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$T_TMP/resp.json" "$1"
}
# api METHOD URL [JSON]: authenticated request; body to $T_TMP/resp.json, prints the status.
api() {
    local m=$1 p=$2 body=${3:-}
    local args=(-s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X "$m"
        -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$p"
}
# expect STATUS CODE METHOD URL [JSON]: status matches and (unless CODE is -) error.code too.
expect() {
    local want=$1 code=$2 got; shift 2
    got=$(api "$@")
    if [ "$got" != "$want" ]; then echo "status $got, wanted $want"; cat "$T_TMP/resp.json"; return 1; fi
    [ "$code" = - ] && return 0
    [ "$(jget 'd["error"]["code"]')" = "$code" ] || { cat "$T_TMP/resp.json"; return 1; }
}
# expect_inner STATUS CODE INNER METHOD URL [JSON]
expect_inner() {
    local inner=$3
    expect "$1" "$2" "${@:4}" && [ "$(jget 'd["error"]["innererror"]["code"]')" = "$inner" ]
}

t_set_get() {
    expect 200 - PUT "$URL/secrets/s1?$AV" '{"value":"hunter2","contentType":"text/plain","tags":{"a":"b"}}' || return 1
    V1=$(jget 'd["id"].rsplit("/",1)[1]')
    [ "$(jget 'd["value"]')" = hunter2 ] && [ "$(jget 'd["contentType"]')" = text/plain ] &&
        [ "$(jget 'd["tags"]["a"]')" = b ] && [ "$(jget 'd["attributes"]["enabled"]')" = True ] &&
        [ "$(jget 'd["attributes"]["recoveryLevel"]')" = "Recoverable+Purgeable" ] &&
        [ "$(jget 'd["id"]')" = "$URL/secrets/s1/$V1" ] && [ "${#V1}" = 32 ] || return 1
    expect 200 - PUT "$URL/secrets/s1?$AV" '{"value":"second"}' || return 1
    V2=$(jget 'd["id"].rsplit("/",1)[1]')
    [ "$V1" != "$V2" ] || return 1
    expect 200 - GET "$URL/secrets/s1/?$AV" && [ "$(jget 'd["value"]')" = second ] &&
        [ "$(jget '"contentType" in d')" = False ] || return 1
    expect 200 - GET "$URL/secrets/S1/$V1?$AV" && [ "$(jget 'd["value"]')" = hunter2 ] &&
        [ "$(jget 'd["id"]')" = "$URL/secrets/s1/$V1" ] || return 1
    expect 200 - GET "$URL/secrets/s1?$AV" && [ "$(jget 'd["value"]')" = second ]
}
check "set (two versions), get latest / by version, case-insensitive names" t_set_get

t_errors() {
    expect 404 SecretNotFound GET "$URL/secrets/nosuch?$AV" &&
        expect 404 SecretNotFound GET "$URL/secrets/s1/0123456789abcdef0123456789abcdef?$AV" &&
        expect 404 SecretNotFound GET "$URL/secrets/nosuch/versions?$AV" &&
        expect 404 SecretNotFound DELETE "$URL/secrets/nosuch?$AV" &&
        expect 404 SecretNotFound PATCH "$URL/secrets/nosuch/?$AV" '{"contentType":"x"}' &&
        expect 404 SecretNotFound POST "$URL/secrets/nosuch/backup?$AV" &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" '{"contentType":"x"}' &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" '{"value":5}' &&
        expect 400 BadParameter PUT "$URL/secrets/bad_name?$AV" '{"value":"x"}' &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" 'not json' &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" "{\"value\":\"x\",\"contentType\":\"$(printf 'c%.0s' $(seq 256))\"}" &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" '{"value":"x","attributes":{"enabled":"yes"}}' &&
        expect 400 BadParameter PUT "$URL/secrets/s1?$AV" '{"value":"x","tags":{"a":1}}' &&
        expect 400 BadParameter GET "$URL/secrets?$AV&maxresults=26"
}
check "errors: 404 SecretNotFound, 400 BadParameter (missing value, name, JSON, contentType, tags)" t_errors

t_size_limit() {
    local big
    big=$(python3 -c 'print("x"*25600)')
    expect 200 - PUT "$URL/secrets/big?$AV" "{\"value\":\"$big\"}" &&
        expect 200 - GET "$URL/secrets/big?$AV" && [ "$(jget 'len(d["value"])')" = 25600 ] || return 1
    big=$(python3 -c 'print("x"*25601)')
    expect 400 BadParameter PUT "$URL/secrets/big?$AV" "{\"value\":\"$big\"}"
}
check "25 KiB limit: 25,600 bytes accepted, 25,601 -> 400 BadParameter" t_size_limit

t_disabled() {
    expect 200 - PUT "$URL/secrets/dis?$AV" '{"value":"v","attributes":{"enabled":false}}' &&
        expect_inner 403 Forbidden SecretDisabled GET "$URL/secrets/dis?$AV" || return 1
    # outside nbf/exp a get still works
    expect 200 - PUT "$URL/secrets/old?$AV" '{"value":"v","attributes":{"exp":1000000000}}' &&
        expect 200 - GET "$URL/secrets/old?$AV" && [ "$(jget 'd["attributes"]["exp"]')" = 1000000000 ] &&
        expect 200 - PUT "$URL/secrets/future?$AV" '{"value":"v","attributes":{"nbf":4102444800}}' &&
        expect 200 - GET "$URL/secrets/future?$AV" || return 1
    # update re-enables; update keeps the value and omits it from the reply
    expect 200 - PATCH "$URL/secrets/dis/?$AV" '{"attributes":{"enabled":true},"contentType":"ct2","tags":{"x":"y"}}' &&
        [ "$(jget '"value" in d')" = False ] && [ "$(jget 'd["contentType"]')" = ct2 ] &&
        [ "$(jget 'd["tags"]["x"]')" = y ] && expect 200 - GET "$URL/secrets/dis?$AV" &&
        [ "$(jget 'd["value"]')" = v ] && [ "$(jget 'd["attributes"]["enabled"]')" = True ]
}
check "disabled -> 403 Forbidden/SecretDisabled; outside nbf/exp get works; PATCH" t_disabled

t_update_version() {
    expect 200 - PATCH "$URL/secrets/s1/$V1?$AV" '{"attributes":{"enabled":false}}' &&
        expect_inner 403 Forbidden SecretDisabled GET "$URL/secrets/s1/$V1?$AV" &&
        expect 200 - GET "$URL/secrets/s1/$V2?$AV" &&
        expect 404 SecretNotFound PATCH "$URL/secrets/s1/ffffffffffffffffffffffffffffffff?$AV" '{}'
}
check "PATCH one version leaves the others alone" t_update_version

t_paging() {
    local i ids=() next n=0
    for i in $(seq 1 5); do api PUT "$URL/secrets/page$i?$AV" '{"value":"p"}' >/dev/null; done
    for i in $(seq 1 4); do api PUT "$URL/secrets/page1?$AV" "{\"value\":\"p$i\"}" >/dev/null; done
    next="$URL/secrets?$AV&maxresults=2"
    while [ -n "$next" ] && [ "$next" != None ]; do
        expect 200 - GET "$next" || return 1
        [ "$(jget '"value" in d["value"][0] if d["value"] else False')" = False ] || return 1
        n=$((n + $(jget 'len(d["value"])')))
        next=$(jget 'd.get("nextLink")')
    done
    # s1 big dis old future page1..5 = 10
    [ "$n" = 10 ] || { echo "listed $n"; return 1; }
    next="$URL/secrets/page1/versions?$AV&maxresults=2"; n=0
    while [ -n "$next" ] && [ "$next" != None ]; do
        expect 200 - GET "$next" || return 1
        [ "$(jget 'all(i["id"].count("/") == 5 for i in d["value"])')" = True ] || return 1
        n=$((n + $(jget 'len(d["value"])')))
        next=$(jget 'd.get("nextLink")')
    done
    [ "$n" = 5 ] || { echo "versions $n"; return 1; }
}
check "list and versions page with nextLink and carry no values" t_paging

t_delete_recover() {
    expect 200 - DELETE "$URL/secrets/s1?$AV" &&
        [ "$(jget 'd["recoveryId"]')" = "$URL/deletedsecrets/s1" ] &&
        [ "$(jget 'd["scheduledPurgeDate"] - d["deletedDate"]')" = $((90 * 86400)) ] &&
        [ "$(jget '"value" in d')" = False ] || return 1
    expect 404 SecretNotFound GET "$URL/secrets/s1?$AV" &&
        expect 404 SecretNotFound GET "$URL/secrets/s1/$V2?$AV" &&
        expect 404 SecretNotFound DELETE "$URL/secrets/s1?$AV" &&
        expect_inner 409 Conflict ObjectIsDeletedButRecoverable PUT "$URL/secrets/s1?$AV" '{"value":"x"}' &&
        expect 200 - GET "$URL/deletedsecrets/s1?$AV" && [ "$(jget 'd["id"]')" = "$URL/secrets/s1/$V2" ] &&
        expect 200 - GET "$URL/deletedsecrets?$AV" &&
        [ "$(jget '[i["recoveryId"] for i in d["value"]]')" = "['$URL/deletedsecrets/s1']" ] &&
        expect 200 - GET "$URL/secrets?$AV" && [ "$(jget 'any("/s1" in i["id"] for i in d["value"])')" = False ] &&
        expect 404 SecretNotFound GET "$URL/deletedsecrets/s2?$AV" &&
        expect 404 SecretNotFound POST "$URL/deletedsecrets/nosuch/recover?$AV" &&
        expect 404 SecretNotFound DELETE "$URL/deletedsecrets/page1?$AV" || return 1
    expect 200 - POST "$URL/deletedsecrets/s1/recover?$AV" && [ "$(jget 'd["id"]')" = "$URL/secrets/s1/$V2" ] &&
        expect 200 - GET "$URL/secrets/s1?$AV" && [ "$(jget 'd["value"]')" = second ] &&
        expect_inner 403 Forbidden SecretDisabled GET "$URL/secrets/s1/$V1?$AV" &&
        expect 404 SecretNotFound GET "$URL/deletedsecrets/s1?$AV"
}
check "delete -> DeletedSecretBundle, 404 while deleted, 409 on set, deleted get/list, recover" t_delete_recover

t_purge() {
    expect 200 - DELETE "$URL/secrets/page2?$AV" &&
        expect 204 - DELETE "$URL/deletedsecrets/page2?$AV" && [ ! -s "$T_TMP/resp.json" ] &&
        expect 404 SecretNotFound GET "$URL/deletedsecrets/page2?$AV" &&
        expect 404 SecretNotFound GET "$URL/secrets/page2?$AV" &&
        expect 200 - PUT "$URL/secrets/page2?$AV" '{"value":"again"}' &&
        expect 200 - GET "$URL/secrets/page2/versions?$AV" && [ "$(jget 'len(d["value"])')" = 1 ]
}
check "purge -> 204, name reusable with a fresh history" t_purge

t_backup_restore() {
    local blob
    expect 200 - POST "$URL/secrets/s1/backup?$AV" || return 1
    blob=$(jget 'd["value"]')
    printf '%s' "$blob" >"$T_TMP/s1.blob"
    # the blob is opaque: no value in it
    ! python3 -c 'import base64,sys; s=open(sys.argv[1]).read(); b=base64.urlsafe_b64decode(s+"="*(-len(s)%4)); sys.exit(0 if (b"hunter2" in b or b"second" in b) else 1)' "$T_TMP/s1.blob" || return 1
    expect 409 Conflict POST "$URL/secrets/restore?$AV" "{\"value\":\"$blob\"}" || return 1
    expect 200 - DELETE "$URL/secrets/s1?$AV" && expect 204 - DELETE "$URL/deletedsecrets/s1?$AV" &&
        expect 200 - POST "$URL/secrets/restore?$AV" "{\"value\":\"$blob\"}" &&
        [ "$(jget 'd["id"]')" = "$URL/secrets/s1/$V2" ] &&
        expect 200 - GET "$URL/secrets/s1/$V2?$AV" && [ "$(jget 'd["value"]')" = second ] &&
        expect 200 - GET "$URL/secrets/s1/versions?$AV" && [ "$(jget 'len(d["value"])')" = 2 ] || return 1
    expect 400 BadParameter POST "$URL/secrets/restore?$AV" '{"value":"AAAA"}' &&
        expect 400 BadParameter POST "$URL/secrets/restore?$AV" "{\"value\":\"${blob%????}AAAA\"}"
}
check "backup -> opaque blob; restore (409 if present, 200 after purge), corrupt blob -> 400" t_backup_restore

t_backup_domains() {
    local kblob sblob
    sblob=$(cat "$T_TMP/s1.blob")
    expect 200 - POST "$URL/keys/bk1/create?$AV" '{"kty":"EC"}' && expect 200 - POST "$URL/keys/bk1/backup?$AV" || return 1
    kblob=$(jget 'd["value"]')
    expect 400 BadParameter POST "$URL/secrets/restore?$AV" "{\"value\":\"$kblob\"}" &&
        expect 400 BadParameter POST "$URL/keys/restore?$AV" "{\"value\":\"$sblob\"}"
}
check "a key backup does not restore as a secret, nor a secret backup as a key (400)" t_backup_domains

t_at_rest() {
    python3 - "$VAULTD_STATE/vaultd.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (blob,) in db.execute("SELECT value_enc FROM secrets"):
    assert b"hunter2" not in blob and b"second" not in blob, "plaintext at rest"
assert sum(1 for _ in db.execute("SELECT 1 FROM secrets")) > 5
EOF
    ! grep -q "hunter2\|second" "$T_TMP/vaultd.log"
}
check "values encrypted at rest and absent from the log" t_at_rest

t_other_instance() {
    local st2="$T_TMP/state2" port2 pid2 blob rc=0 tok2 cfg
    port2=$(free_port)
    "$VAULTD" --dev --state "$st2" --listen "127.0.0.1:$port2" >>"$T_TMP/vaultd2.log" 2>&1 &
    pid2=$!
    for _ in $(seq 1 100); do
        [ -f "$st2/client.conf" ] && curl -s -o /dev/null --cacert "$st2/ca.pem" "https://localhost:$port2/healthz" && break
        sleep 0.1
    done
    cfg=$KVAULT_CONF
    KVAULT_CONF="$st2/client.conf"
    tok2=$(VAULTD_STATE=$st2 get_token)
    KVAULT_CONF=$cfg
    blob=$(cat "$T_TMP/s1.blob")
    curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$st2/ca.pem" -X POST \
        -H "Authorization: Bearer $tok2" -H 'Content-Type: application/json' \
        --data "{\"value\":\"$blob\"}" "https://dev.vault.localhost:$port2/secrets/restore?$AV" >"$T_TMP/code"
    [ "$(cat "$T_TMP/code")" = 400 ] && [ "$(jget 'd["error"]["code"]')" = BadParameter ] &&
        jget 'd["error"]["message"]' | grep -q "another vaultd instance" || { cat "$T_TMP/code" "$T_TMP/resp.json"; rc=1; }
    kill "$pid2"; wait "$pid2" 2>/dev/null
    return $rc
}
check "restore into another vaultd instance -> 400 BadParameter, the message names the other instance" t_other_instance

t_purge_protection() {
    expect 200 - PUT "$URL/secrets/pp?$AV" '{"value":"v"}' && expect 200 - DELETE "$URL/secrets/pp?$AV" || return 1
    stop_vaultd
    python3 -c 'import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute("UPDATE vaults SET purge_protection=1, retention_days=7"); db.commit()' "$VAULTD_STATE/vaultd.db"
    start_vaultd --rotation-interval 1 || return 1
    TOKEN=$(get_token)
    expect 403 Forbidden DELETE "$URL/deletedsecrets/pp?$AV" &&
        expect 200 - GET "$URL/deletedsecrets/pp?$AV" &&
        expect 200 - GET "$URL/secrets/page3?$AV" &&
        [ "$(jget 'd["attributes"]["recoveryLevel"]')" = CustomizedRecoverable ] &&
        [ "$(jget 'd["attributes"]["recoverableDays"]')" = 7 ] &&
        expect 200 - DELETE "$URL/secrets/page3?$AV" &&
        [ "$(jget 'd["scheduledPurgeDate"] - d["deletedDate"]')" = $((7 * 86400)) ] &&
        expect 200 - GET "$URL/secrets/s1/$V2?$AV" && [ "$(jget 'd["value"]')" = second ]
}
check "purge protection -> 403 Forbidden; retention days; values survive a restart" t_purge_protection

t_managed_hsm() {
    local mt
    [ "$(curl -s -o "$T_TMP/resp.json" -w '%{http_code}' --cacert "$CA" -X PUT -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data '{}' "https://localhost:$VAULTD_PORT/admin/managedHSMs/pool-s")" = 201 ] || { cat "$T_TMP/resp.json"; return 1; }
    mt=$(curl -s --cacert "$CA" "$(conf_get authority)/$(conf_get tenant_id)/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$(conf_get client_id)" \
        --data-urlencode "client_secret=$(conf_get client_secret)" \
        --data-urlencode scope=https://managedhsm.azure.net/.default |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    local saved=$TOKEN P="https://pool-s.managedhsm.localhost:$VAULTD_PORT" rc=0
    TOKEN=$mt
    expect 400 BadParameter PUT "$P/secrets/x?$AV" '{"value":"x"}' &&
        expect 400 BadParameter GET "$P/secrets?$AV" &&
        expect 400 BadParameter GET "$P/deletedsecrets?$AV" &&
        expect 400 BadParameter POST "$P/certificates/c/create?$AV" '{"policy":{}}' || rc=1
    TOKEN=$saved
    return $rc
}
check "managed HSM pools have no secrets or certificates -> 400 BadParameter" t_managed_hsm

t_retention_sweep() {
    expect 200 - DELETE "$URL/secrets/page4?$AV" && expect 200 - GET "$URL/deletedsecrets/page4?$AV" || return 1
    python3 -c 'import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute("UPDATE secrets SET scheduled_purge_date=1 WHERE name=?", ("page4",)); db.commit()' "$VAULTD_STATE/vaultd.db"
    for _ in $(seq 1 50); do
        [ "$(api GET "$URL/deletedsecrets/page4?$AV")" = 404 ] && break
        sleep 0.2
    done
    expect 404 SecretNotFound GET "$URL/deletedsecrets/page4?$AV" && expect 200 - GET "$URL/deletedsecrets/pp?$AV"
}
check "deleted secrets past their scheduled purge date are purged by the maintenance sweep" t_retention_sweep

finish
