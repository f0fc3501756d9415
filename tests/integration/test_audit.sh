#!/bin/bash
# test_audit.sh - vaultd's audit log and metrics (docs/audit.md): one "result" record per
# request of a mixed run (successes, 401, 403, 404, identity and admin endpoints), the fields
# of a sign record, `kvault audit verify` (passes; fails naming the line after an edit or a
# deletion), the head file (records cut off the END: verify fails and vaultd refuses to start;
# a head naming a hash the log lacks; kill -9 under load then restart stays consistent),
# chain continuation over a restart (torn tail cut off, tampered tail refused),
# `kvault audit tail` filters and --follow, /metrics counters, and fail closed: with the audit
# log's file system full, sign and create answer 503 and change nothing.
source "$(dirname "$0")/lib.sh"

MNT=""
kv_audit_cleanup() {
    stop_vaultd
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    kv_cleanup
}
trap kv_audit_cleanup EXIT

start_vaultd || exit 1
LOG="$VAULTD_STATE/audit/audit.log"
CA="$VAULTD_STATE/ca.pem"
U="https://localhost:$VAULTD_PORT"
CLIENT=$(conf_get client_id)
TENANT=$(conf_get tenant_id)
AV="api-version=7.4"

results() { grep -c '"phase":"result"' "$LOG"; }
# requests made by this script (each curl = one request; counted in a file, since most
# calls run in command substitutions)
nreq() { wc -l <"$T_TMP/nreq"; }
: >"$T_TMP/nreq"
# rq METHOD PATH [TOKEN] [BODY]: one request; prints "STATUS BODY"
rq() {
    local m=$1 p=$2 tok=${3:-} body=${4:-} args=()
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
    echo "$m $p" >>"$T_TMP/nreq"
    curl -s --cacert "$CA" -X "$m" "${args[@]}" -w '\n%{http_code}' "$U$p" >"$T_TMP/rq.out"
    printf '%s %s\n' "$(tail -n1 "$T_TMP/rq.out")" "$(head -n -1 "$T_TMP/rq.out")"
}
token_for() { # CLIENT SECRET: access token (one request)
    echo token >>"$T_TMP/nreq"
    curl -s --cacert "$CA" "$U/$TENANT/oauth2/v2.0/token" --data-urlencode grant_type=client_credentials \
        --data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" \
        --data-urlencode scope=https://vault.azure.net/.default |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))'
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(eval("d"+sys.argv[2]))' "$1" "$2"; }

# ---- a mixed run: count requests and result records ----
BEFORE=$(results)
N0=$(nreq)
T=$(token_for "$CLIENT" "$(conf_get client_secret)")
check "token issued" test -n "$T"
out=$(rq POST "/keys/k1/create?$AV" "$T" '{"kty":"EC","crv":"P-256"}')
check "create k1" test "${out%% *}" = 200
out=$(rq POST "/keys/k2/create?$AV" "$T" '{"kty":"EC","crv":"P-256"}')
check "create k2" test "${out%% *}" = 200
DIGEST=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU
for _ in 1 2 3; do out=$(rq POST "/keys/k1/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}"); done
check "sign k1" test "${out%% *}" = 200
SIGN_KID=$(jget "$out" '["kid"]')
SIGN_VER=${SIGN_KID##*/}
out=$(rq POST "/keys/k2/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
out=$(rq GET "/keys/k1?$AV" "$T"); check "get k1" test "${out%% *}" = 200
out=$(rq GET "/keys?$AV" "$T"); check "list keys" test "${out%% *}" = 200
out=$(rq GET "/keys/nokey?$AV" "$T"); check "404 for a missing key" test "${out%% *}" = 404
out=$(rq GET "/nosuchthing?$AV" "$T"); check "404 for an unknown path" test "${out%% *}" = 404
out=$(rq GET "/keys/k1?$AV"); check "401 without a token" test "${out%% *}" = 401
out=$(rq GET "/keys/k1?$AV" "not.a.token"); check "401 for a bad token" test "${out%% *}" = 401
out=$(rq PUT "/secrets/s1?$AV" "$T" '{"value":"kvsecretmarker-audit-value-1"}')
check "set a secret" test "${out%% *}" = 200
out=$(rq GET "/secrets/s1?$AV" "$T"); check "get the secret" test "${out%% *}" = 200
out=$(rq GET "/admin/vaults" "$T"); check "admin: list vaults" test "${out%% *}" = 200
out=$(rq GET "/$TENANT/v2.0/.well-known/openid-configuration"); check "openid configuration" test "${out%% *}" = 200
BAD=$(token_for "$CLIENT" "wrong-secret-kvsecretmarker")
check "wrong client secret: no token" test -z "$BAD"
# 403: a service principal without any role assignment (identity service, RBAC)
out=$(rq POST "/admin/servicePrincipals" "$T" '{"displayName":"audit-norole"}')
if [ "${out%% *}" = 201 ] || [ "${out%% *}" = 200 ]; then
    SP=$(jget "$out" '["appId"]'); SPW=$(jget "$out" '["password"]')
    T2=$(token_for "$SP" "$SPW")
    out=$(rq GET "/keys/k1?$AV" "$T2"); check "403 for a principal without a role" test "${out%% *}" = 403
    out=$(rq POST "/keys/k1/sign?$AV" "$T2" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
    check "403 sign for a principal without a role" test "${out%% *}" = 403
    check "the 403 is recorded with its principal" grep -q "\"principal\":\"$SP\".*\"status\":403" "$LOG"
else
    not_ok "service principals API unavailable (${out%% *}): the 403 part could not run"
fi
AFTER=$(results)
N=$(($(nreq) - N0))
check "one result record per request ($N requests, $((AFTER - BEFORE)) records)" \
    test "$((AFTER - BEFORE))" -eq "$N"
check "begin records only for state changes (create x2, secret set, sp create)" \
    test "$(grep -c '"phase":"begin"' "$LOG")" -le 4

# ---- the fields of a sign record ----
python3 - "$LOG" "$CLIENT" "$SIGN_VER" "$TENANT" >"$T_TMP/sign.out" 2>&1 <<'EOF'
import json, re, sys
log, client, ver, tenant = sys.argv[1:5]
recs = [json.loads(l) for l in open(log)]
signs = [r for r in recs if r.get("operation") == "KeySign" and r.get("object_id") == "k1"
         and r["phase"] == "result" and r.get("status") == 200]
assert len(signs) == 3, len(signs)
r = signs[-1]
want = {"object_type": "key", "object_id": "k1", "version": ver, "alg": "ES256",
        "principal": client, "tenant": tenant, "vault": "dev", "method": "POST", "client_ip": "127.0.0.1"}
for k, v in want.items():
    assert r.get(k) == v, (k, r.get(k), v)
assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["time"]), r["time"]
assert re.match(r"^[0-9a-f-]{36}$", r["request_id"]), r["request_id"]
assert isinstance(r["latency_ms"], float) and r["latency_ms"] >= 0
assert re.match(r"^[0-9a-f]{64}$", r["hash"]) and re.match(r"^[0-9a-f]{64}$", r["prev"])
e = [r for r in recs if r.get("status") == 401 and r.get("object_id") == "k1"]
assert e and e[0]["error"] == "Unauthorized" and e[0]["principal"] == "", e
n = [r for r in recs if r.get("status") == 404 and r.get("object_id") == "nokey"]
assert n and n[0]["error"] == "KeyNotFound" and n[0]["operation"] == "KeyGet", n
t = [r for r in recs if r.get("operation") == "TokenIssue" and r.get("status") == 401]
assert t and t[0]["principal"] == client, t
c = [r for r in recs if r.get("operation") == "KeyCreate" and r["phase"] == "result"]
assert len(c) == 2 and c[0]["kty"] == "EC" and c[0]["crv"] == "P-256", c
seqs = [r["seq"] for r in recs]
assert seqs == list(range(1, len(recs) + 1)), seqs
print("fields ok")
EOF
check "sign record: key, version, alg, principal, tenant, time, request id" grep -q "fields ok" "$T_TMP/sign.out" ||
    cat "$T_TMP/sign.out"
check "no secret value, token or secret in the audit log" \
    bash -c "! grep -Eq 'kvsecretmarker|eyJ[A-Za-z0-9_-]+\\.eyJ|$(conf_get client_secret)' '$LOG'"

# ---- verify ----
"$KVAULT" audit verify --state "$VAULTD_STATE" >"$T_TMP/v.out" 2>&1
check "verify exits 0 and counts every line" grep -q "^verified $(wc -l <"$LOG") records" "$T_TMP/v.out"
cp "$LOG" "$T_TMP/edited.copy"
sed -i '5s/"status":[0-9]*/"status":299/; 5s/"phase":"begin"/"phase":"xbegin"/' "$T_TMP/edited.copy"
check "the edit changed line 5" bash -c "! cmp -s '$LOG' '$T_TMP/edited.copy'"
check_fails_with "verify fails after an edit, naming line 5" "line 5 is bad: hash mismatch" \
    "$KVAULT" audit verify --file "$T_TMP/edited.copy"
cp "$LOG" "$T_TMP/deleted.copy"
sed -i '7d' "$T_TMP/deleted.copy"
check_fails_with "verify fails after a deletion, naming line 7" "line 7 is bad: sequence gap" \
    "$KVAULT" audit verify --file "$T_TMP/deleted.copy"
head -n 6 "$LOG" >"$T_TMP/swapped.copy"
sed -n '8p' "$LOG" >>"$T_TMP/swapped.copy"; sed -n '7p' "$LOG" >>"$T_TMP/swapped.copy"
check_fails_with "verify fails after reordering" "line 7 is bad" "$KVAULT" audit verify --file "$T_TMP/swapped.copy"
check_fails_with "verify needs --file or --state" "exactly one of" "$KVAULT" audit verify

# ---- the head: records cut off the END of the log ----
HEAD="$VAULTD_STATE/audit/audit.head"
check "the head file exists next to the log" test -f "$HEAD"
check "verify compares the log's end with the head" grep -q "^head .*audit.head: seq" "$T_TMP/v.out"
stop_vaultd # the head names the last record now
LASTSEQ=$(wc -l <"$LOG")
check "after a stop the head names the last record (seq $LASTSEQ)" \
    python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); l=json.loads(open(sys.argv[2]).read().splitlines()[-1]); assert h=={"seq":l["seq"],"hash":l["hash"]}, (h, l["seq"])' "$HEAD" "$LOG"
check "intact log and head: verify passes" "$KVAULT" audit verify --state "$VAULTD_STATE"
cp "$LOG" "$T_TMP/intact.copy"
sed -i '$d' "$LOG"
check_fails_with "last line deleted: verify fails naming the missing record" \
    "log ends at seq $((LASTSEQ - 1)) but its head names seq $LASTSEQ: record $LASTSEQ is missing" \
    "$KVAULT" audit verify --state "$VAULTD_STATE"
check_fails_with "last line deleted: vaultd refuses to start, naming both seqs" \
    "log ends at seq $((LASTSEQ - 1)) but its head names seq $LASTSEQ.*refusing to start" \
    timeout 60 "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT"
check "  ... and left the log as it was" test "$(wc -l <"$LOG")" -eq "$((LASTSEQ - 1))"
cp "$T_TMP/intact.copy" "$LOG"
sed -i '$d' "$LOG"; sed -i '$d' "$LOG"; sed -i '$d' "$LOG"
check_fails_with "last 3 lines deleted: verify fails naming them" \
    "records $((LASTSEQ - 2))..$LASTSEQ are missing" "$KVAULT" audit verify --state "$VAULTD_STATE"
check_fails_with "  ... also with --file (head found next to it)" "records $((LASTSEQ - 2))..$LASTSEQ are missing" \
    "$KVAULT" audit verify --file "$LOG"
"$KVAULT" audit verify --state "$VAULTD_STATE" --no-head >"$T_TMP/nohead.out" 2>&1
NHRC=$?
check "  ... --no-head checks the chain only, with a warning (exit $NHRC)" \
    bash -c "[ $NHRC = 0 ] && grep -q '^WARNING: --no-head' '$T_TMP/nohead.out' && grep -q '^verified $((LASTSEQ - 3)) records' '$T_TMP/nohead.out'"
check_fails_with "empty log with a head: vaultd refuses to start" "log ends at seq 0 but its head names seq $LASTSEQ" \
    bash -c ": >'$LOG'; timeout 60 '$VAULTD' --dev --state '$VAULTD_STATE' --listen 127.0.0.1:$VAULTD_PORT"
cp "$T_TMP/intact.copy" "$LOG"
check "intact log again: verify passes" "$KVAULT" audit verify --state "$VAULTD_STATE"
cp "$HEAD" "$T_TMP/head.copy"
python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); h["hash"]="ab"*32; open(sys.argv[1],"w").write(json.dumps(h)+"\n")' "$HEAD"
check_fails_with "head names a hash the log does not have: verify fails" \
    "head names seq $LASTSEQ with hash abab.*replaced or rewritten" "$KVAULT" audit verify --state "$VAULTD_STATE"
check_fails_with "  ... and vaultd refuses to start" "replaced or rewritten.*refusing to start" \
    timeout 60 "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT"
check "  ... --head FILE overrides the head's location" \
    "$KVAULT" audit verify --state "$VAULTD_STATE" --head "$T_TMP/head.copy"
cp "$T_TMP/head.copy" "$HEAD"
rm -f "$HEAD"
check_fails_with "head file deleted: verify fails" "its head .* is missing" "$KVAULT" audit verify --state "$VAULTD_STATE"
check_fails_with "  ... and vaultd refuses to start" "head .* is missing; refusing" \
    timeout 60 "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT"
"$KVAULT" audit verify --state "$VAULTD_STATE" --reset-head >"$T_TMP/reset.out" 2>&1
RSRC=$?
check "--reset-head checks the chain and writes the head at the log's end (exit $RSRC)" \
    bash -c "[ $RSRC = 0 ] && grep -q 'reset to seq $LASTSEQ' '$T_TMP/reset.out' && cmp -s '$HEAD' '$T_TMP/head.copy'"
check "  ... then verify passes" "$KVAULT" audit verify --state "$VAULTD_STATE"
cp "$T_TMP/head.copy" "$HEAD"

# kill -9 under load, then restart: the chain and the head stay consistent
start_vaultd || exit 1
T=$(token_for "$CLIENT" "$(conf_get client_secret)")
LOADPIDS=()
for w in 1 2 3 4; do
    (for _ in $(seq 1 400); do
        curl -s -o /dev/null --max-time 5 --cacert "$CA" -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
            -d "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}" "$U/keys/k1/sign?$AV" || break
    done) &
    LOADPIDS+=($!)
done
for _ in $(seq 1 100); do # until the load is well under way (signs being recorded)
    [ "$(wc -l <"$LOG")" -gt "$((LASTSEQ + 20))" ] && break
    sleep 0.1
done
kill -9 "$VAULTD_PID"; wait "$VAULTD_PID" 2>/dev/null; VAULTD_PID=""
for p in "${LOADPIDS[@]}"; do wait "$p" 2>/dev/null; done
echo "# after kill -9: log $(wc -l <"$LOG") lines, head $(cat "$HEAD")"
check "kill -9 under load: the log has the signs" test "$(wc -l <"$LOG")" -gt "$((LASTSEQ + 20))"
check "kill -9 under load: verify passes right away (log at or past its head)" "$KVAULT" audit verify --state "$VAULTD_STATE"
printf '{"seq":%d,"phase":"result","half-writ' "$(($(wc -l <"$LOG") + 1))" >>"$LOG" # a half-written line: not durable
start_vaultd || exit 1
out=$(rq GET "/keys/k1?$AV" "$(token_for "$CLIENT" "$(conf_get client_secret)")")
check "restart after kill -9 and a half-written line: requests work" test "${out%% *}" = 200
check "  ... the half-written line was cut off" grep -q "cutting off a torn last record" "$T_TMP/vaultd.log"
check "  ... verify passes while vaultd runs" "$KVAULT" audit verify --state "$VAULTD_STATE"
check_fails_with "--reset-head refuses while vaultd holds the log" "in use" \
    "$KVAULT" audit verify --state "$VAULTD_STATE" --reset-head
stop_vaultd
"$KVAULT" audit verify --state "$VAULTD_STATE" >"$T_TMP/v2.out" 2>&1
check "  ... and after a stop: the head names the log's end" grep -q "^head .*matches the log's end" "$T_TMP/v2.out"
start_vaultd || exit 1

# ---- tail ----
"$KVAULT" audit tail --state "$VAULTD_STATE" --key k1 --lines 0 >"$T_TMP/tail.out" 2>&1
check "tail --key k1 shows only k1's records" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
recs = [json.loads(l) for l in lines]
assert recs and all(r.get("object_id") == "k1" and r.get("object_type") == "key" for r in recs)
allk1 = [l for l in open(sys.argv[2]).read().splitlines() if json.loads(l).get("object_id") == "k1"]
assert len(allk1) == len(recs), (len(allk1), len(recs))' "$T_TMP/tail.out" "$LOG"
"$KVAULT" audit tail --state "$VAULTD_STATE" --principal "$CLIENT" --lines 3 >"$T_TMP/tailp.out" 2>&1
check "tail --principal --lines 3: three records of that principal" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert len(recs) == 3 and all(r["principal"] == sys.argv[2] for r in recs), recs' "$T_TMP/tailp.out" "$CLIENT"
"$KVAULT" audit tail -f --state "$VAULTD_STATE" --key k2 --lines 0 >"$T_TMP/follow.out" 2>&1 &
TAILPID=$!
sleep 0.5
before_f=$(wc -l <"$T_TMP/follow.out")
out=$(rq POST "/keys/k2/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
out=$(rq POST "/keys/k1/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
for _ in $(seq 1 30); do [ "$(wc -l <"$T_TMP/follow.out")" -gt "$before_f" ] && break; sleep 0.1; done
sleep 0.3
kill "$TAILPID" 2>/dev/null; wait "$TAILPID" 2>/dev/null
check "tail -f --key k2 follows the new k2 sign (and not k1's)" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert all(r["object_id"] == "k2" for r in recs), recs
assert int(sys.argv[2]) + 1 == len(recs), (sys.argv[2], len(recs))' "$T_TMP/follow.out" "$before_f"

# ---- metrics ----
metric() { # the KeySign k1 200 counter
    curl -s --cacert "$CA" "$U/metrics" >"$T_TMP/metrics.out"
    grep -E "^kvault_requests_total\{vault=\"dev\",operation=\"KeySign\",key=\"k1\",principal=\"$CLIENT\",result=\"200\"\} " \
        "$T_TMP/metrics.out" | awk '{print $2}'
}
m1=$(metric)
out=$(rq POST "/keys/k1/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
m2=$(metric)
check "metrics: KeySign k1 counter moves after a sign ($m1 -> $m2)" test "$((m1 + 1))" -eq "$m2"
check "metrics: latency histogram" grep -q '^kvault_request_duration_seconds_bucket{operation="KeySign",le="+Inf"} ' "$T_TMP/metrics.out"
check "metrics: audit records counter" grep -Eq '^kvault_audit_records_total [1-9][0-9]*$' "$T_TMP/metrics.out"
check "metrics: process start time" grep -Eq '^process_start_time_seconds [0-9.]+$' "$T_TMP/metrics.out"
check "metrics: text format content type" bash -c "curl -s -o /dev/null -w '%{content_type}' --cacert '$CA' '$U/metrics' | grep -q '^text/plain; version=0.0.4'"

check_fails_with "a second vaultd on the same audit log refuses to start" "audit log .* is in use by another process" \
    timeout 60 "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT"

# ---- restart: the chain continues; a torn tail is cut off; a tampered tail is refused ----
stop_vaultd
printf '{"seq":99999,"torn' >>"$LOG"
start_vaultd || exit 1
out=$(rq GET "/keys/k1?$AV" "$(token_for "$CLIENT" "$(conf_get client_secret)")")
check "after a restart (torn tail cut off): requests work" test "${out%% *}" = 200
check "the chain continues over the restart" "$KVAULT" audit verify --state "$VAULTD_STATE"
stop_vaultd
cp "$LOG" "$T_TMP/good.copy"
sed -i '$s/"status":200/"status":201/' "$LOG"
check_fails_with "vaultd refuses to continue a tampered chain" "last record does not verify" \
    timeout 60 "$VAULTD" --dev --state "$VAULTD_STATE" --listen "127.0.0.1:$VAULTD_PORT"
cp "$T_TMP/good.copy" "$LOG"

# ---- fail closed: the audit log's file system is full ----
if mkdir -p "$T_TMP/auditfs" && mount -t tmpfs -o size=256k,mode=0700 tmpfs "$T_TMP/auditfs" 2>/dev/null; then
    MNT="$T_TMP/auditfs"
    cp "$LOG" "$MNT/audit.log"
    cp "$HEAD" "$MNT/audit.head" # the log travels with its head
    start_vaultd --audit-file "$MNT/audit.log" || exit 1
    T=$(token_for "$CLIENT" "$(conf_get client_secret)")
    keys_before=$(rq GET "/keys?$AV" "$T")
    dd if=/dev/zero of="$MNT/fill" bs=4k >/dev/null 2>&1
    status=""
    for _ in $(seq 1 40); do # the log's last page may still take a few records
        out=$(rq GET "/keys?$AV" "$T"); status=${out%% *}
        [ "$status" = 503 ] && break
    done
    check "audit unwritable: reads are refused (503)" test "$status" = 503
    out=$(rq POST "/keys/k1/sign?$AV" "$T" "{\"alg\":\"ES256\",\"value\":\"$DIGEST\"}")
    check "audit unwritable: sign refused with 503" test "${out%% *}" = 503
    check "  ... with ServiceUnavailable" grep -q '"code":"ServiceUnavailable"' "$T_TMP/rq.out"
    check "  ... and no signature" bash -c "! grep -q '\"value\"' '$T_TMP/rq.out'"
    out=$(rq POST "/keys/k9/create?$AV" "$T" '{"kty":"EC","crv":"P-256"}')
    check "audit unwritable: create refused with 503" test "${out%% *}" = 503
    out=$(rq DELETE "/keys/k2?$AV" "$T")
    check "audit unwritable: delete refused with 503" test "${out%% *}" = 503
    rm -f "$MNT/fill"
    keys_after=$(rq GET "/keys?$AV" "$T")
    check "after the log is writable again: nothing changed (same key list)" \
        test "$(jget "$keys_before" '["value"]')" = "$(jget "$keys_after" '["value"]')"
    out=$(rq GET "/keys/k9?$AV" "$T"); check "  ... k9 was not created" test "${out%% *}" = 404
    out=$(rq GET "/keys/k2?$AV" "$T"); check "  ... k2 was not deleted" test "${out%% *}" = 200
    check "the chain is intact after the failed writes" "$KVAULT" audit verify --file "$MNT/audit.log"
    check "metrics count the audit write failures" bash -c \
        "curl -s --cacert '$CA' '$U/metrics' | grep -Eq '^kvault_audit_write_failures_total [1-9]'"
    stop_vaultd
    cp "$MNT/audit.log" "$T_TMP/audit-failclosed.log"
    umount "$MNT" && MNT=""
else
    not_ok "cannot mount a tmpfs (not root?): the fail-closed part could not run"
fi

finish
