#!/bin/bash
# test_cli.sh - the `kvault` command line (az-style verbs) against a dev vaultd: key create /
# list / show / list-versions / sign / verify / download, keyvault show / list, account
# get-access-token, output formats, and the error paths (exit codes and messages).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! start_vaultd; then
    not_ok "vaultd starts"
    finish
    exit 1
fi
VAULTURL=$(conf_get url)
CA="$VAULTD_STATE/ca.pem"
O="$T_TMP/cli"
mkdir -p "$O"

# jcheck DESC FILE PYEXPR: passes when PYEXPR (with d = the parsed JSON of FILE) is true.
jcheck() {
    local desc=$1 file=$2 expr=$3
    if python3 - "$file" "$expr" >"$T_TMP/last.out" 2>&1 <<'EOF'
import base64, json, sys
d = json.load(open(sys.argv[1]))
def b64len(s): return len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print("expression false:", sys.argv[2]); print(json.dumps(d, indent=1)[:1500]); sys.exit(1)
EOF
    then ok "$desc"; else
        not_ok "$desc"; sed 's/^/    # /' "$T_TMP/last.out" | head -n 30; fi
}

# expect_rc DESC RC PATTERN CMD...: CMD exits with RC and its stderr matches PATTERN.
expect_rc() {
    local desc=$1 want=$2 pat=$3 rc; shift 3
    timeout 120 "$@" >"$T_TMP/last.stdout" 2>"$T_TMP/last.err"; rc=$?
    if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" "$T_TMP/last.err"; then ok "$desc"; else
        not_ok "$desc (exit $rc, wanted $want and /$pat/ on stderr)"
        sed 's/^/    # /' "$T_TMP/last.err" "$T_TMP/last.stdout" | head -n 30
    fi
}

# run NAME CMD...: runs a kvault command that must succeed, output in $O/NAME.json.
run() {
    local name=$1; shift
    if "$@" >"$O/$name.json" 2>"$O/$name.err"; then ok "kvault ${*:2:3} ($name)"; else
        not_ok "kvault ${*:2:3} ($name) exit $?"; sed 's/^/    # /' "$O/$name.err" | head -n 20
    fi
}

# ---- keys ----
run rsa "$KVAULT" key create --vault-name dev --name clirsa --kty RSA --size 2048
jcheck "create RSA: kty RSA, 2048-bit n, e, enabled" "$O/rsa.json" \
    'd["key"]["kty"] == "RSA" and b64len(d["key"]["n"]) == 256 and d["key"]["e"] and
     d["attributes"]["enabled"] is True and "/keys/clirsa/" in d["key"]["kid"]'

run ec "$KVAULT" key create --vault-name dev -n cliec --kty EC --curve P-256 --ops sign verify
jcheck "create EC P-256 with --ops" "$O/ec.json" \
    'd["key"]["kty"] == "EC" and d["key"]["crv"] == "P-256" and b64len(d["key"]["x"]) == 32
     and sorted(d["key"]["key_ops"]) == ["sign", "verify"]'

run ec384 "$KVAULT" key create --vault-name dev -n cliec384 --curve P-384
jcheck "create with only --curve P-384 makes an EC key" "$O/ec384.json" \
    'd["key"]["kty"] == "EC" and d["key"]["crv"] == "P-384"'

run disabled "$KVAULT" key create --vault-name dev -n clioff --disabled --tags env=test team
jcheck "create --disabled --tags" "$O/disabled.json" \
    'd["attributes"]["enabled"] is False and d.get("tags") == {"env": "test", "team": ""}'

RSA_KID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"]["kid"])' "$O/rsa.json")
EC_KID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"]["kid"])' "$O/ec.json")

run list "$KVAULT" key list --vault-name dev
jcheck "key list is an array of KeyItems holding both keys, with az's name field" "$O/list.json" \
    'isinstance(d, list) and {"clirsa", "cliec"} <= {i["name"] for i in d} and
     all("kid" in i and "attributes" in i for i in d)'

run list1 "$KVAULT" key list --vault-name dev --maxresults 1
jcheck "key list --maxresults 1" "$O/list1.json" 'len(d) == 1'

check "key list -o tsv prints the key ids" \
    bash -c "'$KVAULT' key list --vault-name dev -o tsv | grep -q '$VAULTURL/keys/clirsa'"
check "key list -o table has a Kid column" \
    bash -c "'$KVAULT' key list --vault-name dev -o table | head -n1 | grep -q Kid"
check "key list --query '[].name' -o tsv" \
    bash -c "'$KVAULT' key list --vault-name dev --query '[].name' -o tsv | grep -qx cliec"

run show "$KVAULT" key show --vault-name dev --name clirsa
jcheck "key show by name returns the created version" "$O/show.json" "d['key']['kid'] == '$RSA_KID'"
run showid "$KVAULT" key show --id "$RSA_KID"
jcheck "key show --id (versioned kid)" "$O/showid.json" "d['key']['kid'] == '$RSA_KID'"
run showuri "$KVAULT" key show --id kvault://dev/keys/cliec
jcheck "key show --id kvault://dev/keys/cliec" "$O/showuri.json" "d['key']['kid'] == '$EC_KID'"

run rsa2 "$KVAULT" key create --vault-name dev --name clirsa --kty RSA --size 3072
run versions "$KVAULT" key list-versions --vault-name dev --name clirsa
jcheck "list-versions after a second create has 2 entries" "$O/versions.json" \
    "len(d) == 2 and '$RSA_KID' in [i['kid'] for i in d]"
run showlatest "$KVAULT" key show --id "$VAULTURL/keys/clirsa"
jcheck "key show (versionless --id) gives the newest, 3072-bit version" "$O/showlatest.json" \
    "d['key']['kid'] != '$RSA_KID' and b64len(d['key']['n']) == 384"
V1=${RSA_KID##*/}
run showv1 "$KVAULT" key show --vault-name dev -n clirsa --version "$V1"
jcheck "key show --version gives that version" "$O/showv1.json" "d['key']['kid'] == '$RSA_KID'"

# more than one page (the vault pages by 25): kvault follows nextLink
for i in $(seq 1 24); do "$KVAULT" key create --vault-name dev -n "clipage$i" --kty EC -o none || break; done
run listall "$KVAULT" key list --vault-name dev
jcheck "key list follows nextLink past the first 25 keys" "$O/listall.json" \
    'len(d) == 28 and len({i["kid"] for i in d}) == 28'
run list27 "$KVAULT" key list --vault-name dev --maxresults 27
jcheck "key list --maxresults 27 (over two pages)" "$O/list27.json" 'len(d) == 27'

# ---- sign / verify ----
printf 'hello kvault' >"$O/msg"
openssl dgst -sha256 -binary "$O/msg" >"$O/dgst"
DGST=$(base64 -w0 "$O/dgst")
run sign "$KVAULT" key sign --id "$RSA_KID" -a RS256 --digest "$DGST"
jcheck "key sign RS256: kid, algorithm, 256-byte value" "$O/sign.json" \
    "d['kid'] == '$RSA_KID' and d['algorithm'] == 'RS256' and len(base64.b64decode(d['value'])) == 256"
SIG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$O/sign.json")
run verify "$KVAULT" key verify --id "$RSA_KID" -a RS256 --digest "$DGST" --signature "$SIG"
jcheck "key verify of that signature: isValid" "$O/verify.json" 'd["isValid"] is True'
BAD=$(printf 'other' | openssl dgst -sha256 -binary | base64 -w0)
run verifybad "$KVAULT" key verify --id "$RSA_KID" -a RS256 --digest "$BAD" --signature "$SIG"
jcheck "key verify with another digest: not valid" "$O/verifybad.json" 'd["isValid"] is False'
run download "$KVAULT" key download --id "$RSA_KID" -f "$O/rsa.pem"
printf '%s' "$SIG" | base64 -d >"$O/sig.bin"
check "openssl verifies the kvault signature with the downloaded public key" \
    openssl dgst -sha256 -verify "$O/rsa.pem" -signature "$O/sig.bin" "$O/msg"

run signec "$KVAULT" key sign --vault-name dev -n cliec -a ES256 --digest "$DGST"
jcheck "key sign ES256 (latest version): raw r||s of 64 bytes" "$O/signec.json" \
    "len(base64.b64decode(d['value'])) == 64 and d['kid'] == '$EC_KID'"
ECSIG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$O/signec.json")
run verifyec "$KVAULT" key verify --vault-name dev -n cliec -a ES256 --digest "$DGST" --signature "$ECSIG"
jcheck "key verify ES256 round trip" "$O/verifyec.json" 'd["isValid"] is True'

# ---- vaults ----
run kvshow "$KVAULT" keyvault show --name dev
jcheck "keyvault show: name, type and properties.vaultUri" "$O/kvshow.json" \
    "d['name'] == 'dev' and d['properties']['vaultUri'] == '$VAULTURL/' and
     d['type'] == 'Microsoft.KeyVault/vaults'"
run kvlist "$KVAULT" keyvault list
jcheck "keyvault list holds dev" "$O/kvlist.json" '"dev" in [v["name"] for v in d]'

# ---- tokens ----
run token "$KVAULT" account get-access-token --vault-name dev
jcheck "get-access-token: az fields" "$O/token.json" \
    'd["tokenType"] == "Bearer" and len(d["accessToken"]) > 20 and
     d["expires_on"] > __import__("time").time() and
     __import__("re").fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000", d["expiresOn"])'
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessToken"])' "$O/token.json")
check "the printed token works with curl against the vault (200)" \
    bash -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' \
        -H 'Authorization: Bearer $TOKEN' '$VAULTURL/keys?api-version=7.4')\" = 200"
check "get-access-token --query accessToken -o tsv (no vault name: first vault)" \
    bash -c "'$KVAULT' account get-access-token --query accessToken -o tsv | grep -Eq '^[A-Za-z0-9._-]{20,}$'"
check "the token never appears in other commands' output" \
    bash -c "! grep -rqF -- '$TOKEN' '$O'/*.err '$O/list.json' '$O/show.json'"

# ---- errors ----
expect_rc "show an unknown key: exit 1, az-style KeyNotFound" 1 \
    '^ERROR: \(KeyNotFound\) .*k9' "$KVAULT" key show --vault-name dev --name k9
check "... with the Code: line" grep -q '^Code: KeyNotFound' "$T_TMP/last.err"
expect_rc "missing --name: exit 2" 2 'the following arguments are required: --name/-n' \
    "$KVAULT" key create --vault-name dev
expect_rc "show without --name or --id: exit 2" 2 'the following arguments are required: --name/-n' \
    "$KVAULT" key show --vault-name dev
expect_rc "unknown verb: exit 2" 2 "'frobnicate' is not in the 'kvault key' command group" \
    "$KVAULT" key frobnicate
expect_rc "unknown flag: exit 2" 2 'unrecognized arguments: --colour' \
    "$KVAULT" key list --vault-name dev --colour
expect_rc "bad --kty: exit 2" 2 "invalid choice: 'DSA'" \
    "$KVAULT" key create --vault-name dev -n x --kty DSA
expect_rc "bad --output: exit 2" 2 "invalid choice: 'xml'" "$KVAULT" keyvault list -o xml
expect_rc "unconfigured vault: exit 1" 1 "The vault 'nope' is not configured" \
    "$KVAULT" keyvault show --name nope
expect_rc "--id of a vault that is not configured: exit 1" 1 'No vault configured' \
    "$KVAULT" key show --id https://elsewhere.example:8443/keys/k1
expect_rc "--resource that is not the vault's: exit 1" 1 'only for the vault' \
    "$KVAULT" account get-access-token --vault-name dev --resource https://management.azure.com
expect_rc "KVAULT_CONF naming a missing file: exit 1, says which file" 1 \
    "$T_TMP/missing.conf" env KVAULT_CONF="$T_TMP/missing.conf" "$KVAULT" key list --vault-name dev

stop_vaultd
start=$(date +%s)
expect_rc "vaultd stopped: exit 1, says it cannot reach the vault" 1 "Cannot reach the vault 'dev'" \
    "$KVAULT" key list --vault-name dev
elapsed=$(($(date +%s) - start))
if [ "$elapsed" -lt 60 ]; then ok "no hang when the vault is down (${elapsed}s)"; else
    not_ok "took ${elapsed}s with the vault down"; fi

finish
