#!/bin/bash
# test_cli_dataplane.sh - the `kvault` data-plane verbs (az keyvault key|secret|certificate)
# against a dev vaultd: key import (PEM -> JWK), set-attributes, encrypt/decrypt, rotate,
# rotation-policy, soft delete (delete, list-deleted, show-deleted, recover, purge),
# backup/restore, random (managed HSM pool, when one is configured); secrets set/show/list/
# list-versions/set-attributes/download (with az's --encoding) and their lifecycle;
# certificates get-default-policy/create/import (PEM and PKCS#12)/show/list/download/pending
# and their lifecycle; plus the usage errors (exit 2) and vault errors (exit 1, az's words).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! start_vaultd; then
    not_ok "vaultd starts"
    finish
    exit 1
fi
VAULTURL=$(conf_get url)
O="$T_TMP/dp"
mkdir -p "$O"

# jcheck DESC FILE PYEXPR: passes when PYEXPR (with d = the parsed JSON of FILE) is true.
jcheck() {
    local desc=$1 file=$2 expr=$3
    if python3 - "$file" "$expr" >"$T_TMP/last.out" 2>&1 <<'EOF'
import base64, json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    print("no JSON output (the command failed)"); sys.exit(1)
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

# run NAME CMD...: a kvault command that must succeed, output in $O/NAME.json.
run() {
    local name=$1; shift
    if timeout 120 "$@" >"$O/$name.json" 2>"$O/$name.err"; then ok "kvault ${*:2:2} ($name)"; else
        not_ok "kvault ${*:2:2} ($name) exit $?"; sed 's/^/    # /' "$O/$name.err" | head -n 20
    fi
}

# field FILE PYEXPR: prints PYEXPR of the JSON in FILE (empty on any failure).
field() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$1" "$2" 2>/dev/null
}

K="${KV_TEST_KVAULT:-$KVAULT}" # KV_TEST_KVAULT: e.g. a sanitizer build of the CLI alone

# =========================== keys ===========================

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$O/rsa.pem" 2>/dev/null
openssl pkey -in "$O/rsa.pem" -pubout -out "$O/rsa.pub.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -aes256 -pass pass:s3cret \
    -out "$O/ec.enc.pem" 2>/dev/null
openssl pkey -in "$O/ec.enc.pem" -passin pass:s3cret -pubout -out "$O/ec.pub.pem"
RSA_N=$(openssl rsa -in "$O/rsa.pem" -noout -modulus 2>/dev/null | cut -d= -f2)

# ---- import ----
run imp "$K" key import --vault-name dev -n cliimp --pem-file "$O/rsa.pem" --ops sign verify encrypt decrypt --tags src=pem
jcheck "key import (PEM RSA): kty RSA, the PEM's modulus, ops, tags" "$O/imp.json" \
    "d['key']['kty'] == 'RSA' and base64.urlsafe_b64decode(d['key']['n'] + '==').hex().upper().lstrip('0') == '$RSA_N'.lstrip('0')
     and sorted(d['key']['key_ops']) == ['decrypt', 'encrypt', 'sign', 'verify'] and d.get('tags') == {'src': 'pem'}
     and 'd' not in d['key'] and 'p' not in d['key']"
printf 'import me' >"$O/msg"
DGST=$(openssl dgst -sha256 -binary "$O/msg" | base64 -w0)
run impsign "$K" key sign --vault-name dev -n cliimp -a RS256 --digest "$DGST"
field "$O/impsign.json" 'd["value"]' | base64 -d >"$O/impsig.bin"
check "openssl verifies a signature of the imported key with the PEM's public key" \
    openssl dgst -sha256 -verify "$O/rsa.pub.pem" -signature "$O/impsig.bin" "$O/msg"

run impec "$K" key import --vault-name dev -n cliimpec --pem-file "$O/ec.enc.pem" --pem-password s3cret
jcheck "key import (encrypted PEM, EC P-384) with --pem-password" "$O/impec.json" \
    "d['key']['kty'] == 'EC' and d['key']['crv'] == 'P-384' and b64len(d['key']['x']) == 48 and 'd' not in d['key']"
DGST384=$(openssl dgst -sha384 -binary "$O/msg" | base64 -w0)
run impecsign "$K" key sign --vault-name dev -n cliimpec -a ES384 --digest "$DGST384"
python3 - "$O/impecsign.json" "$O/impecsig.der" <<'EOF'
import base64, json, sys
raw = base64.b64decode(json.load(open(sys.argv[1]))["value"])
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = der_int(raw[:len(raw)//2]) + der_int(raw[len(raw)//2:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
EOF
check "openssl verifies an ES384 signature of the imported EC key" \
    openssl dgst -sha384 -verify "$O/ec.pub.pem" -signature "$O/impecsig.der" "$O/msg"
expect_rc "key import of an encrypted PEM without --pem-password: exit 1, no prompt" 1 \
    'cannot read a private key' "$K" key import --vault-name dev -n cliimpx --pem-file "$O/ec.enc.pem"
expect_rc "key import without --pem-file/--pem-string: exit 2" 2 'usage error' \
    "$K" key import --vault-name dev -n cliimpx
expect_rc "key import --protection bogus: exit 2" 2 "invalid choice: 'bogus'" \
    "$K" key import --vault-name dev -n cliimpx --pem-file "$O/rsa.pem" --protection bogus

# ---- set-attributes ----
run attroff "$K" key set-attributes --vault-name dev -n cliimp --enabled false
jcheck "key set-attributes --enabled false" "$O/attroff.json" "d['attributes']['enabled'] is False"
expect_rc "sign with the disabled key: exit 1, Forbidden" 1 '^ERROR: \(Forbidden\)' \
    "$K" key sign --vault-name dev -n cliimp -a RS256 --digest "$DGST"
run attron "$K" key set-attributes --vault-name dev -n cliimp --enabled true --ops sign verify \
    --tags team=x --expires 2099-01-01T00:00:00Z --not-before 2020-01-01
jcheck "key set-attributes --enabled true --ops --tags --expires --not-before" "$O/attron.json" \
    "d['attributes']['enabled'] is True and sorted(d['key']['key_ops']) == ['sign', 'verify'] and
     d['tags'] == {'team': 'x'} and d['attributes']['exp'] == 4070908800 and d['attributes']['nbf'] == 1577836800"
IMP_VER=$(field "$O/attron.json" 'd["key"]["kid"].rsplit("/", 1)[1]')
run attrver "$K" key set-attributes --vault-name dev -n cliimp --version "$IMP_VER" --tags team=y
jcheck "key set-attributes --version" "$O/attrver.json" "d['tags'] == {'team': 'y'}"

# ---- encrypt / decrypt ----
run enc "$K" key create --vault-name dev -n clienc --kty RSA --size 2048 --ops encrypt decrypt wrapKey unwrapKey -o none
for alg in RSA-OAEP-256 RSA-OAEP RSA1_5; do
    run "enc-$alg" "$K" key encrypt --vault-name dev -n clienc -a "$alg" --value 'hello kvault' --data-type plaintext
    jcheck "key encrypt $alg: a 256-byte result, the kid, az's fields" "$O/enc-$alg.json" \
        "len(base64.b64decode(d['result'])) == 256 and '/keys/clienc/' in d['kid'] and d['algorithm'] == '$alg'"
    CT=$(field "$O/enc-$alg.json" 'd["result"]')
    run "dec-$alg" "$K" key decrypt --vault-name dev -n clienc -a "$alg" --value "$CT" --data-type plaintext
    jcheck "key decrypt $alg --data-type plaintext gives the text back" "$O/dec-$alg.json" \
        "d['result'] == 'hello kvault'"
done
B64=$(printf '\x00\x01binary\xff' | base64 -w0)
run encb "$K" key encrypt --vault-name dev -n clienc -a RSA-OAEP-256 --value "$B64"
CT=$(field "$O/encb.json" 'd["result"]')
run decb "$K" key decrypt --vault-name dev -n clienc -a RSA-OAEP-256 --value "$CT" --data-type base64
jcheck "key encrypt/decrypt of base64 data (the default --data-type)" "$O/decb.json" "d['result'] == '$B64'"
check "key decrypt --id (versioned kid from encrypt)" \
    "$K" key decrypt --id "$(field "$O/encb.json" 'd["kid"]')" -a RSA-OAEP-256 --value "$CT"
expect_rc "key encrypt with an op not in key_ops: exit 1, Forbidden" 1 '\(Forbidden\)|KeyOperationForbidden' \
    "$K" key encrypt --vault-name dev -n cliimp -a RSA-OAEP-256 --value "$B64"
expect_rc "key encrypt -a A256GCM on an RSA key: exit 1, BadParameter" 1 '\((BadParameter|BadRequest)\)' \
    "$K" key encrypt --vault-name dev -n clienc -a A256GCM --value "$B64"
expect_rc "key encrypt -a ROT13: exit 2" 2 "invalid choice: 'ROT13'" \
    "$K" key encrypt --vault-name dev -n clienc -a ROT13 --value "$B64"
expect_rc "key decrypt of non-base64: exit 2" 2 'invalid base64' \
    "$K" key decrypt --vault-name dev -n clienc -a RSA-OAEP --value '***'

# ---- rotate, rotation policy ----
run rot "$K" key rotate --vault-name dev -n clienc
jcheck "key rotate: a new version of the same type and size" "$O/rot.json" \
    "d['key']['kty'] == 'RSA' and b64len(d['key']['n']) == 256 and
     d['key']['kid'] != '$(field "$O/enc-RSA-OAEP.json" 'd["kid"]')'"
run rotv "$K" key list-versions --vault-name dev -n clienc
jcheck "list-versions after rotate: 2 versions" "$O/rotv.json" 'len(d) == 2'
cat >"$O/policy.json" <<'EOF'
{
  "lifetimeActions": [
    {"trigger": {"timeAfterCreate": "P90D", "timeBeforeExpiry": null}, "action": {"type": "Rotate"}},
    {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}
  ],
  "attributes": {"expiryTime": "P1Y"}
}
EOF
run polup "$K" key rotation-policy update --vault-name dev -n clienc --value "@$O/policy.json"
jcheck "key rotation-policy update --value @file (az's format, nulls dropped)" "$O/polup.json" \
    "d['attributes']['expiryTime'] == 'P1Y' and any(a['action']['type'].lower() == 'rotate' and
     a['trigger'].get('timeAfterCreate') == 'P90D' for a in d['lifetimeActions'])"
run polshow "$K" key rotation-policy show --vault-name dev -n clienc
jcheck "key rotation-policy show returns it, with its id" "$O/polshow.json" \
    "d['attributes']['expiryTime'] == 'P1Y' and d['id'].endswith('/keys/clienc/rotationpolicy')"
expect_rc "rotation-policy update with bad JSON: exit 2" 2 'invalid JSON' \
    "$K" key rotation-policy update --vault-name dev -n clienc --value '{nope'

# ---- backup, delete, soft delete, recover, purge, restore ----
run bak "$K" key backup --vault-name dev -n clienc --file "$O/clienc.bak"
check "key backup wrote a non-empty blob file" test -s "$O/clienc.bak"
run del "$K" key delete --vault-name dev -n clienc
jcheck "key delete: a DeletedKeyBundle with recoveryId" "$O/del.json" \
    "d['recoveryId'].endswith('/deletedkeys/clienc') and d['scheduledPurgeDate'] > d['deletedDate']"
expect_rc "a deleted key is not found" 1 '\(KeyNotFound\)' "$K" key show --vault-name dev -n clienc
run showdel "$K" key show-deleted --vault-name dev -n clienc
jcheck "key show-deleted" "$O/showdel.json" "d['key']['kid'].split('/keys/')[1].startswith('clienc/')"
run showdelid "$K" key show-deleted --id "$VAULTURL/deletedkeys/clienc"
jcheck "key show-deleted --id (recoveryId)" "$O/showdelid.json" "'recoveryId' in d"
run listdel "$K" key list-deleted --vault-name dev
jcheck "key list-deleted holds it, with az's name" "$O/listdel.json" \
    "'clienc' in [i.get('name') for i in d]"
expect_rc "create over a deleted key: exit 1, Conflict" 1 '\(Conflict\)|ObjectIsDeletedButRecoverable' \
    "$K" key create --vault-name dev -n clienc --kty EC
run rec "$K" key recover --vault-name dev -n clienc
jcheck "key recover gives the key back" "$O/rec.json" "'/keys/clienc/' in d['key']['kid']"
run recshow "$K" key show --vault-name dev -n clienc
run del2 "$K" key delete --vault-name dev -n clienc -o none
run purge "$K" key purge --vault-name dev -n clienc
check "key purge prints nothing" test ! -s "$O/purge.json"
expect_rc "show-deleted after purge: exit 1, not found" 1 'NotFound' \
    "$K" key show-deleted --vault-name dev -n clienc
run restore "$K" key restore --vault-name dev --file "$O/clienc.bak"
jcheck "key restore --file brings the key (name from the blob) back" "$O/restore.json" \
    "'/keys/clienc/' in d['key']['kid']"
run restv "$K" key list-versions --vault-name dev -n clienc
jcheck "restored key has both versions" "$O/restv.json" 'len(d) == 2'
CT=$(field "$O/encb.json" 'd["result"]')
run restdec "$K" key decrypt --id "$(field "$O/encb.json" 'd["kid"]')" -a RSA-OAEP-256 --value "$CT"
jcheck "the restored key decrypts what the original encrypted" "$O/restdec.json" "d['result'] == '$B64'"
expect_rc "restore of an existing key: exit 1" 1 'ERROR: \(' \
    "$K" key restore --vault-name dev --file "$O/clienc.bak"
printf 'garbage' >"$O/garbage.bak"
expect_rc "restore of a garbage blob: exit 1, BadParameter" 1 '\((BadParameter|BadRequest)\)' \
    "$K" key restore --vault-name dev --file "$O/garbage.bak"
expect_rc "restore of a missing file: exit 1" 1 'cannot open' \
    "$K" key restore --vault-name dev --file "$O/nope.bak"

# ---- managed HSM pool: --hsm-name, random ----
HSM=$(sed -n 's/^\[vault \(.*\)\]$/\1/p' "$KVAULT_CONF" | while read -r v; do
    awk -v s="[vault $v]" '$0==s{f=1;next} /^\[/{f=0} f && /url *=.*managedhsm/{print s}' "$KVAULT_CONF"
done | head -n1 | sed 's/^\[vault \(.*\)\]$/\1/')
if [ -n "$HSM" ]; then
    run rng "$K" key random --hsm-name "$HSM" --count 32
    jcheck "key random --hsm-name --count 32: 32 bytes" "$O/rng.json" "len(base64.b64decode(d['value'])) == 32"
    run hsmk "$K" key create --hsm-name "$HSM" -n clihsm --kty RSA --size 2048
    jcheck "key create --hsm-name makes an RSA-HSM key" "$O/hsmk.json" "d['key']['kty'] == 'RSA-HSM'"
    run hsms "$K" key show --hsm-name "$HSM" -n clihsm
    run hsmsign "$K" key sign --hsm-name "$HSM" -n clihsm -a PS256 --digest "$DGST"
    run hsmdel "$K" key delete --hsm-name "$HSM" -n clihsm -o none
    run hsmlistdel "$K" key list-deleted --hsm-name "$HSM"
    jcheck "key list-deleted --hsm-name" "$O/hsmlistdel.json" "'clihsm' in [i.get('name') for i in d]"
    run hsmaes "$K" key create --hsm-name "$HSM" -n cliaes --kty oct-HSM --size 256
    jcheck "key create --kty oct-HSM --size 256 (no k returned)" "$O/hsmaes.json" \
        "d['key']['kty'] == 'oct-HSM' and 'k' not in d['key']"
    run gcm "$K" key encrypt --hsm-name "$HSM" -n cliaes -a A256GCM --value 'aes secret' --data-type plaintext
    jcheck "key encrypt A256GCM: result, iv and tag" "$O/gcm.json" \
        "d['result'] and len(base64.b64decode(d['iv'])) == 12 and len(base64.b64decode(d['tag'])) == 16"
    run gcmdec "$K" key decrypt --hsm-name "$HSM" -n cliaes -a A256GCM --value "$(field "$O/gcm.json" 'd["result"]')" \
        --iv "$(field "$O/gcm.json" 'd["iv"]')" --tag "$(field "$O/gcm.json" 'd["tag"]')" --data-type plaintext
    jcheck "key decrypt A256GCM --iv --tag" "$O/gcmdec.json" "d['result'] == 'aes secret'"
    IV=$(head -c 16 /dev/urandom | base64 -w0)
    run cbc "$K" key encrypt --hsm-name "$HSM" -n cliaes -a A256CBCPAD --iv "$IV" --value 'padded cbc' --data-type plaintext
    run cbcdec "$K" key decrypt --hsm-name "$HSM" -n cliaes -a A256CBCPAD --iv "$IV" \
        --value "$(field "$O/cbc.json" 'd["result"]')" --data-type plaintext
    jcheck "key encrypt/decrypt A256CBCPAD with --iv" "$O/cbcdec.json" "d['result'] == 'padded cbc'"
    run hsmimp "$K" key import --hsm-name "$HSM" -n cliimphsm --pem-file "$O/rsa.pem"
    jcheck "key import --hsm-name: an RSA-HSM key (protection hsm by default)" "$O/hsmimp.json" \
        "d['key']['kty'] == 'RSA-HSM' and base64.urlsafe_b64decode(d['key']['n'] + '==').hex().upper().lstrip('0') == '$RSA_N'.lstrip('0')"
    run hsmisign "$K" key sign --hsm-name "$HSM" -n cliimphsm -a RS256 --digest "$DGST"
    field "$O/hsmisign.json" 'd["value"]' | base64 -d >"$O/hsmisig.bin"
    check "openssl verifies a signature of the key imported into the pool" \
        openssl dgst -sha256 -verify "$O/rsa.pub.pem" -signature "$O/hsmisig.bin" "$O/msg"
    # An HSM key backup carries the key wrapped under the pool wrapping key (docs/hsm-pool.md):
    # it restores in any vault or pool of this instance, even after every copy was purged.
    run hsmbak "$K" key backup --hsm-name "$HSM" -n cliaes -f "$O/cliaes.bak"
    run hsmdel2 "$K" key delete --hsm-name "$HSM" -n cliaes -o none
    run hsmpool2 "$K" hsm create --name clipool2
    # a client configuration that also names the new pool (same credentials as $HSM)
    { cat "$KVAULT_CONF"; echo; awk -v s="[vault $HSM]" '$0==s{f=1;print "[vault clipool2]";next} /^\[/{f=0} f' "$KVAULT_CONF" |
        sed "s#//$HSM\.managedhsm#//clipool2.managedhsm#"; } >"$O/pool2.conf"
    KVAULT_CONF="$O/pool2.conf" run hsmrest2 "$K" key restore --hsm-name clipool2 -f "$O/cliaes.bak"
    gcmdec_in() { # gcmdec_in POOL NAME: decrypts gcm.json's ciphertext with cliaes in POOL
        KVAULT_CONF="$O/pool2.conf" run "$2" "$K" key decrypt --hsm-name "$1" -n cliaes -a A256GCM \
            --value "$(field "$O/gcm.json" 'd["result"]')" --iv "$(field "$O/gcm.json" 'd["iv"]')" \
            --tag "$(field "$O/gcm.json" 'd["tag"]')" --data-type plaintext
    }
    gcmdec_in clipool2 hsmgcm2
    jcheck "backup, soft delete, restore into another pool (hsm create): the AES key decrypts there" \
        "$O/hsmgcm2.json" "d['result'] == 'aes secret'"
    run hsmpurge "$K" key purge --hsm-name "$HSM" -n cliaes
    gcmdec_in clipool2 hsmgcm3
    jcheck "purging the original keeps the material the restored copy uses: it still decrypts" \
        "$O/hsmgcm3.json" "d['result'] == 'aes secret'"
    KVAULT_CONF="$O/pool2.conf" run hsmdel3 "$K" key delete --hsm-name clipool2 -n cliaes -o none
    KVAULT_CONF="$O/pool2.conf" run hsmpurge2 "$K" key purge --hsm-name clipool2 -n cliaes
    run hsmrest3 "$K" key restore --hsm-name "$HSM" -f "$O/cliaes.bak"
    jcheck "restore of an HSM key backup after every copy was purged: the key is back" \
        "$O/hsmrest3.json" "d['key']['kty'] == 'oct-HSM'"
    gcmdec_in "$HSM" hsmgcm4
    jcheck "... unwrapped into the pool: it decrypts what the original encrypted" \
        "$O/hsmgcm4.json" "d['result'] == 'aes secret'"
    expect_rc "secret set in a managed HSM pool: exit 1" 1 'ERROR: ' \
        "$K" secret set --vault-name "$HSM" -n nope --value x
else
    echo "# no managed HSM pool in $KVAULT_CONF: key random/--hsm-name against a pool skipped"
fi
expect_rc "key random --count 0: exit 2" 2 'out of range' "$K" key random --vault-name dev --count 0
expect_rc "--vault-name and --hsm-name together: exit 2" 2 'usage error' \
    "$K" key show --vault-name dev --hsm-name dev -n cliimp
run hsmalias "$K" key show --hsm-name dev -n cliimp
jcheck "--hsm-name names a configured section like --vault-name" "$O/hsmalias.json" "'/keys/cliimp/' in d['key']['kid']"

# =========================== secrets ===========================

run sset "$K" secret set --vault-name dev -n clisec --value 'hunter2' --content-type password --tags env=test
jcheck "secret set: value, contentType, tags, az's name" "$O/sset.json" \
    "d['value'] == 'hunter2' and d['contentType'] == 'password' and d['tags'] == {'env': 'test'} and
     d['name'] == 'clisec' and d['id'].startswith('$VAULTURL/secrets/clisec/')"
SEC_V1=$(field "$O/sset.json" 'd["id"].rsplit("/", 1)[1]')
run sset2 "$K" secret set --vault-name dev -n clisec --value 'correct horse'
run sshow "$K" secret show --vault-name dev -n clisec
jcheck "secret show: the latest version" "$O/sshow.json" "d['value'] == 'correct horse' and d['name'] == 'clisec'"
run sshowv "$K" secret show --vault-name dev -n clisec --version "$SEC_V1"
jcheck "secret show --version: the first value" "$O/sshowv.json" "d['value'] == 'hunter2'"
run sshowid "$K" secret show --id "$VAULTURL/secrets/clisec/$SEC_V1"
jcheck "secret show --id" "$O/sshowid.json" "d['value'] == 'hunter2'"
check "secret show --query value -o tsv prints the bare value" \
    bash -c "test \"\$('$K' secret show --vault-name dev -n clisec --query value -o tsv)\" = 'correct horse'"
run slist "$K" secret list --vault-name dev
jcheck "secret list: items with name, no values" "$O/slist.json" \
    "'clisec' in [i['name'] for i in d] and all('value' not in i for i in d)"
run svers "$K" secret list-versions --vault-name dev -n clisec
jcheck "secret list-versions: 2" "$O/svers.json" "len(d) == 2"
run sattr "$K" secret set-attributes --vault-name dev -n clisec --content-type text/plain --tags a=1 --expires 2099-01-01
jcheck "secret set-attributes --content-type --tags --expires" "$O/sattr.json" \
    "d['contentType'] == 'text/plain' and d['tags'] == {'a': '1'} and d['attributes']['exp'] == 4070908800"
run sdesc "$K" secret set-attributes --vault-name dev -n clisec --description "db password"
jcheck "secret set-attributes --description (az alias of --content-type)" "$O/sdesc.json" \
    "d['contentType'] == 'db password'"
run sattroff "$K" secret set-attributes --vault-name dev -n clisec --version "$SEC_V1" --enabled false
jcheck "secret set-attributes --version --enabled false" "$O/sattroff.json" "d['attributes']['enabled'] is False"
expect_rc "secret show of a disabled version: exit 1, Forbidden" 1 '\(Forbidden\)' \
    "$K" secret show --vault-name dev -n clisec --version "$SEC_V1"

# --file / --encoding / download
head -c 3000 /dev/urandom >"$O/blob.bin"
run sfile "$K" secret set --vault-name dev -n cliblob --file "$O/blob.bin" --encoding base64
jcheck "secret set --file --encoding base64: value is base64, file-encoding tag" "$O/sfile.json" \
    "d['tags'].get('file-encoding') == 'base64' and len(base64.b64decode(d['value'])) == 3000"
run sdl "$K" secret download --vault-name dev -n cliblob --file "$O/blob.out"
check "secret download (encoding from the tag) gives the same bytes" cmp "$O/blob.bin" "$O/blob.out"
expect_rc "secret download to an existing file: exit 1" 1 'already exists' \
    "$K" secret download --vault-name dev -n cliblob --file "$O/blob.out"
run sdl64 "$K" secret download --vault-name dev -n cliblob --file "$O/blob.b64" --encoding utf-8
check "secret download --encoding utf-8 writes the stored (base64) text" \
    bash -c "base64 -d '$O/blob.b64' | cmp - '$O/blob.bin'"
printf 'line one\nline two\n' >"$O/text.txt"
run stext "$K" secret set --vault-name dev -n clitext --file "$O/text.txt"
run sdltext "$K" secret download --vault-name dev -n clitext --file "$O/text.out"
check "secret set --file / download of text (utf-8 default)" cmp "$O/text.txt" "$O/text.out"
run shex "$K" secret set --vault-name dev -n clihex --file "$O/text.txt" --encoding hex
jcheck "secret set --encoding hex" "$O/shex.json" "bytes.fromhex(d['value']) == b'line one\\nline two\\n'"
run sdlhex "$K" secret download --vault-name dev -n clihex --file "$O/hex.out"
check "secret download of a hex secret" cmp "$O/text.txt" "$O/hex.out"
head -c 30000 /dev/zero | tr '\0' a >"$O/big.txt"
expect_rc "secret set of more than 25 KiB: exit 1, BadParameter" 1 '\((BadParameter|BadRequest)\)' \
    "$K" secret set --vault-name dev -n clibig --file "$O/big.txt"
expect_rc "secret set without --value or --file: exit 2" 2 'usage error' \
    "$K" secret set --vault-name dev -n clix
expect_rc "secret set --encoding utf-16: exit 2" 2 "invalid choice: 'utf-16'" \
    "$K" secret set --vault-name dev -n clix --file "$O/text.txt" --encoding utf-16
expect_rc "secret set with a bad name: exit 2" 2 'not a valid secret name' \
    "$K" secret set --vault-name dev -n 'bad_name' --value x
expect_rc "secret show of an unknown secret: exit 1, SecretNotFound" 1 '^ERROR: \(SecretNotFound\)' \
    "$K" secret show --vault-name dev -n nosuchsecret

# lifecycle
run sbak "$K" secret backup --vault-name dev -n clisec --file "$O/clisec.bak"
check "secret backup wrote a blob" test -s "$O/clisec.bak"
run sdel "$K" secret delete --vault-name dev -n clisec
jcheck "secret delete: DeletedSecretBundle" "$O/sdel.json" \
    "d['recoveryId'].endswith('/deletedsecrets/clisec') and d['name'] == 'clisec'"
expect_rc "a deleted secret is not found" 1 '\(SecretNotFound\)' "$K" secret show --vault-name dev -n clisec
run sshowdel "$K" secret show-deleted --vault-name dev -n clisec
jcheck "secret show-deleted" "$O/sshowdel.json" "d['name'] == 'clisec' and 'value' not in d"
run slistdel "$K" secret list-deleted --vault-name dev
jcheck "secret list-deleted holds it" "$O/slistdel.json" "'clisec' in [i['name'] for i in d]"
expect_rc "secret set over a deleted secret: exit 1, Conflict" 1 '\(Conflict\)' \
    "$K" secret set --vault-name dev -n clisec --value x
run srec "$K" secret recover --vault-name dev -n clisec
jcheck "secret recover" "$O/srec.json" "d['name'] == 'clisec'"
run sshowrec "$K" secret show --vault-name dev -n clisec
jcheck "the recovered secret has its value" "$O/sshowrec.json" "d['value'] == 'correct horse'"
run sdel2 "$K" secret delete --vault-name dev -n clisec -o none
run spurge "$K" secret purge --vault-name dev -n clisec
check "secret purge prints nothing" test ! -s "$O/spurge.json"
expect_rc "secret show-deleted after purge: exit 1" 1 'NotFound' \
    "$K" secret show-deleted --vault-name dev -n clisec
run srest "$K" secret restore --vault-name dev --file "$O/clisec.bak"
jcheck "secret restore" "$O/srest.json" "d['name'] == 'clisec'"
run srestv "$K" secret list-versions --vault-name dev -n clisec
jcheck "the restored secret has both versions" "$O/srestv.json" "len(d) == 2"

# =========================== certificates ===========================

run cpol "$K" certificate get-default-policy
jcheck "certificate get-default-policy: az's default policy" "$O/cpol.json" \
    "d['keyProperties']['keyType'] == 'RSA' and d['keyProperties']['keySize'] == 2048 and
     d['issuerParameters']['name'] == 'Self' and d['x509CertificateProperties']['subject'] == 'CN=CLIGetDefaultPolicy'
     and d['secretProperties']['contentType'] == 'application/x-pkcs12'"
run ccre "$K" certificate create --vault-name dev -n clicert --policy "@$O/cpol.json"
jcheck "certificate create (az policy): waits, prints the certificate" "$O/ccre.json" \
    "d['name'] == 'clicert' and d['cer'] and d['x5t'] and '/keys/clicert/' in d['kid'] and '/secrets/clicert/' in d['sid']"
run cdl "$K" certificate download --vault-name dev -n clicert --file "$O/clicert.pem"
check "certificate download (PEM) is the CN=CLIGetDefaultPolicy certificate" \
    bash -c "openssl x509 -in '$O/clicert.pem' -noout -subject | grep -q CLIGetDefaultPolicy"
run cdlder "$K" certificate download --vault-name dev -n clicert --file "$O/clicert.der" --encoding DER
check "certificate download --encoding DER" openssl x509 -inform DER -in "$O/clicert.der" -noout
run ckey "$K" key show --vault-name dev -n clicert
jcheck "the certificate's key is a managed key" "$O/ckey.json" "d['key']['kty'].startswith('RSA') and d.get('managed') is True"
printf 'cert signed' >"$O/cmsg"
CDGST=$(openssl dgst -sha256 -binary "$O/cmsg" | base64 -w0)
run csign "$K" key sign --vault-name dev -n clicert -a RS256 --digest "$CDGST"
field "$O/csign.json" 'd["value"]' | base64 -d >"$O/csig.bin"
openssl x509 -in "$O/clicert.pem" -pubkey -noout >"$O/clicert.pub.pem" 2>/dev/null
check "the certificate's key signs; openssl verifies with the certificate's public key" \
    openssl dgst -sha256 -verify "$O/clicert.pub.pem" -signature "$O/csig.bin" "$O/cmsg"
run csec "$K" secret show --vault-name dev -n clicert
jcheck "the certificate's secret (managed, PKCS#12)" "$O/csec.json" \
    "d['contentType'] == 'application/x-pkcs12' and d.get('managed') is True"
run cslist "$K" secret list --vault-name dev
jcheck "secret list hides the certificate's (managed) secret, as az does" "$O/cslist.json" \
    "'clicert' not in [i['name'] for i in d]"
run cslistm "$K" secret list --vault-name dev --include-managed
jcheck "secret list --include-managed shows it" "$O/cslistm.json" "'clicert' in [i['name'] for i in d]"
run cklist "$K" key list --vault-name dev
jcheck "key list hides the certificate's (managed) key" "$O/cklist.json" "'clicert' not in [i['name'] for i in d]"
run cklistm "$K" key list --vault-name dev --include-managed
jcheck "key list --include-managed shows it" "$O/cklistm.json" "'clicert' in [i['name'] for i in d]"
run cpend "$K" certificate pending show --vault-name dev -n clicert
jcheck "certificate pending show: completed" "$O/cpend.json" "d['status'] == 'completed'"
cat >"$O/ecpol.json" <<'EOF'
{"key_props": {"kty": "EC", "crv": "P-256", "exportable": true, "reuse_key": false},
 "secret_props": {"contentType": "application/x-pem-file"},
 "x509_props": {"subject": "CN=cli-ec", "sans": {"dns_names": ["cli.example"]}, "validity_months": 6},
 "issuer": {"name": "Self"}}
EOF
run ccre2 "$K" certificate create --vault-name dev -n clicert --policy "$(cat "$O/ecpol.json")"
jcheck "certificate create (wire policy JSON, EC, new version)" "$O/ccre2.json" "d['name'] == 'clicert'"
run cdl2 "$K" certificate download --vault-name dev -n clicert --file "$O/clicert2.pem"
check "the new version is EC with the SAN" \
    bash -c "openssl x509 -in '$O/clicert2.pem' -noout -text | grep -q 'DNS:cli.example'"
run cver "$K" certificate list-versions --vault-name dev -n clicert
jcheck "certificate list-versions: 2" "$O/cver.json" "len(d) == 2"
V1=$(field "$O/ccre.json" 'd["id"].rsplit("/", 1)[1]')
run cshowv "$K" certificate show --vault-name dev -n clicert --version "$V1"
jcheck "certificate show --version" "$O/cshowv.json" "d['x5t'] == '$(field "$O/ccre.json" 'd["x5t"]')'"
run clist "$K" certificate list --vault-name dev
jcheck "certificate list" "$O/clist.json" "'clicert' in [i['name'] for i in d]"
run csecdl "$K" secret download --vault-name dev -n clicert --file "$O/clicert-secret.pem"
check "secret download of an EC PEM certificate's secret holds the private key" \
    grep -q 'PRIVATE KEY' "$O/clicert-secret.pem"

# import: PEM and PKCS#12
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$O/imp.key" -out "$O/imp.crt" -days 30 \
    -subj /CN=cli-import 2>/dev/null
cat "$O/imp.key" "$O/imp.crt" >"$O/imp-both.pem"
run cimp "$K" certificate import --vault-name dev -n cliimpcert --file "$O/imp-both.pem"
jcheck "certificate import (PEM)" "$O/cimp.json" "d['name'] == 'cliimpcert' and d['cer']"
check "the imported certificate is the one given" bash -c "test \"\$(openssl x509 -in '$O/imp.crt' -outform DER | base64 -w0)\" = \"\$(python3 -c 'import json;print(json.load(open(\"$O/cimp.json\"))[\"cer\"])')\""
openssl pkcs12 -export -inkey "$O/imp.key" -in "$O/imp.crt" -out "$O/imp.pfx" -passout pass:pfxpw 2>/dev/null
run cimp12 "$K" certificate import --vault-name dev -n cliimppfx --file "$O/imp.pfx" --password pfxpw
jcheck "certificate import (PKCS#12 with --password)" "$O/cimp12.json" "d['name'] == 'cliimppfx' and d['x5t']"
expect_rc "certificate import of a PKCS#12 with the wrong password: exit 1" 1 'ERROR: \(' \
    "$K" certificate import --vault-name dev -n cliimpbad --file "$O/imp.pfx" --password wrong
expect_rc "certificate create with a bad policy JSON: exit 2" 2 'invalid JSON' \
    "$K" certificate create --vault-name dev -n clix --policy '{oops'
expect_rc "certificate show of an unknown certificate: exit 1, CertificateNotFound" 1 '\(CertificateNotFound\)' \
    "$K" certificate show --vault-name dev -n nosuchcert

# lifecycle
run cdel "$K" certificate delete --vault-name dev -n cliimpcert
jcheck "certificate delete: DeletedCertificateBundle" "$O/cdel.json" \
    "d['recoveryId'].endswith('/deletedcertificates/cliimpcert')"
run clistdel "$K" certificate list-deleted --vault-name dev
jcheck "certificate list-deleted" "$O/clistdel.json" "'cliimpcert' in [i['name'] for i in d]"
run cshowdel "$K" certificate show-deleted --vault-name dev -n cliimpcert
run crec "$K" certificate recover --vault-name dev -n cliimpcert
jcheck "certificate recover" "$O/crec.json" "d['name'] == 'cliimpcert'"
run cshowrec "$K" key show --vault-name dev -n cliimpcert
run cdel2 "$K" certificate delete --vault-name dev -n cliimpcert -o none
run cpurge "$K" certificate purge --vault-name dev -n cliimpcert
expect_rc "certificate show-deleted after purge: exit 1" 1 'NotFound' \
    "$K" certificate show-deleted --vault-name dev -n cliimpcert

# =========================== general ===========================

run kvsyn "$K" keyvault secret show --vault-name dev -n clitext
jcheck "'kvault keyvault secret ...' is a synonym" "$O/kvsyn.json" "d['name'] == 'clitext'"
expect_rc "unknown secret verb: exit 2" 2 "'frob' is not in the 'kvault secret' command group" \
    "$K" secret frob
expect_rc "rotation-policy without a sub-verb: exit 2" 2 "not in the 'kvault key' command group" \
    "$K" key rotation-policy
check "kvault certificate --help lists pending show" \
    bash -c "'$K' certificate --help | grep -q 'pending show'"
check "no secret value in any error output" \
    bash -c "! grep -l -e hunter2 -e 'correct horse' '$O'/*.err"

finish
