#!/usr/bin/env bash
# test_vaultd_durability.sh - "a 200 means it is on disk": a concurrent write load (key
# versions, and secrets when vaultd has them) against vaultd, kill -9 at a random point, restart
# on the same state, and check that every write that got a 200 is there (GET by versioned id;
# keys still sign and openssl verifies the signature), that every stored key version still
# decrypts (one signature with every version), and that SQLite's integrity check passes.
# Several rounds; loopback only; bounded in time (about 30 s).
source "$(dirname "$0")/lib.sh"

ROUNDS=${KV_DURABILITY_ROUNDS:-4}
CLIENTS=${KV_DURABILITY_CLIENTS:-6}

start_vaultd --threads 4 || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"
CA="$VAULTD_STATE/ca.pem"
TOKEN=$(get_token)
[ -n "$TOKEN" ] && ok "token" || not_ok "token"

# ---- the load generator and the checker (python3 standard library + openssl CLI) ----
cat >"$T_TMP/durability.py" <<'EOF'
import base64, http.client, json, os, random, ssl, subprocess, sys, tempfile, threading, time

def b64u(b): return base64.urlsafe_b64encode(b).decode().rstrip("=")
def unb64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

class Client:
    def __init__(self, port, ca, token):
        self.port, self.token = port, token
        self.ctx = ssl.create_default_context(cafile=ca)
        self.conn = None
    def req(self, method, path, body=None, timeout=15):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("localhost", self.port, context=self.ctx,
                                                    timeout=timeout)
        if "api-version=" not in path:
            path += ("&" if "?" in path else "?") + "api-version=7.5"
        hdrs = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            r = self.conn.getresponse()
            text = r.read()
        except Exception:
            self.conn.close(); self.conn = None
            raise
        return r.status, (json.loads(text) if text else None)

def load(port, ca, token, out, stopfile, nclients, round_no, secrets, hsm):
    """Writes one JSON line per write that was answered 200."""
    lock = threading.Lock()
    f = open(out, "a")
    def worker(c):
        cl = Client(port, ca, token)
        i = 0
        while not os.path.exists(stopfile):
            i += 1
            try:
                if secrets and i % 3 == 0:
                    name = "dur-s%d-%d" % (c, i % 4)
                    value = "r%d-c%d-i%d-%s" % (round_no, c, i, b64u(os.urandom(12)))
                    st, body = cl.req("PUT", "/secrets/" + name, {"value": value})
                    if st == 200:
                        rec = {"t": "secret", "id": body["id"], "value": value}
                else:
                    name = "dur-k%d-%d" % (c, i % 5)
                    kb = ({"kty": "RSA", "key_size": 2048} if i % 7 == 0
                          else {"kty": "EC-HSM", "crv": "P-256"} if hsm and i % 4 == 1
                          else {"kty": "EC", "crv": "P-256"})
                    st, body = cl.req("POST", "/keys/%s/create" % name, kb)
                    if st == 200:
                        rec = {"t": "key", "key": body["key"]}
                if st == 200:
                    with lock:
                        f.write(json.dumps(rec) + "\n"); f.flush()
            except Exception:
                time.sleep(0.05)   # vaultd is gone (killed) or restarting
    ts = [threading.Thread(target=worker, args=(c,)) for c in range(nclients)]
    for t in ts: t.start()
    for t in ts: t.join()
    f.close()

def der_len(n):
    if n < 128: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big"); return bytes([0x80 | len(b)]) + b
def tlv(t, v): return bytes([t]) + der_len(len(v)) + v
def dint(v):
    v = v.lstrip(b"\0") or b"\0"
    return tlv(2, b"\0" + v if v[0] & 0x80 else v)
def spki(k):
    if k["kty"].startswith("RSA"):
        alg = tlv(0x30, tlv(6, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
        key = tlv(0x30, dint(unb64u(k["n"])) + dint(unb64u(k["e"])))
    else:
        alg = tlv(0x30, tlv(6, bytes.fromhex("2a8648ce3d0201")) + tlv(6, bytes.fromhex("2a8648ce3d030107")))
        key = b"\x04" + unb64u(k["x"]) + unb64u(k["y"])
    return tlv(0x30, alg + tlv(3, b"\0" + key))

def openssl_verify(k, digest, sig, tmp):
    pub, dg, sg = (os.path.join(tmp, n) for n in ("pub.der", "dgst.bin", "sig.bin"))
    open(pub, "wb").write(spki(k)); open(dg, "wb").write(digest)
    if k["kty"].startswith("RSA"):
        open(sg, "wb").write(sig)
        extra = ["-pkeyopt", "digest:sha256"]
    else:  # raw r||s -> DER
        h = len(sig) // 2
        open(sg, "wb").write(tlv(0x30, dint(sig[:h]) + dint(sig[h:])))
        extra = []
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", pub,
                        "-in", dg, "-sigfile", sg] + extra, capture_output=True)
    return r.returncode == 0

def sign(cl, path_kid, kty):
    digest = os.urandom(32)
    alg = "RS256" if kty.startswith("RSA") else "ES256"
    st, body = cl.req("POST", path_kid + "/sign", {"alg": alg, "value": b64u(digest)})
    return st, digest, (unb64u(body["value"]) if st == 200 else None)

def path_of(url):
    return "/" + url.split("/", 3)[3]

def check(port, ca, token, recfile):
    """Prints one line per problem; last line 'SUMMARY keys=N secrets=N versions=N bad=N'."""
    cl = Client(port, ca, token)
    bad = 0; nkeys = nsecrets = nversions = 0
    tmp = tempfile.mkdtemp()
    recs = [json.loads(l) for l in open(recfile) if l.strip()]
    for rec in recs:
        if rec["t"] == "key":
            k = rec["key"]; p = path_of(k["kid"]); nkeys += 1
            st, body = cl.req("GET", p)
            if st != 200:
                print("MISSING key", k["kid"], st); bad += 1; continue
            got = body["key"]
            same = all(got.get(f) == k.get(f) for f in ("kty", "n", "e", "crv", "x", "y", "kid"))
            if not same:
                print("CHANGED key", k["kid"]); bad += 1; continue
            st, digest, sig = sign(cl, p, k["kty"])
            if st != 200 or not openssl_verify(k, digest, sig, tmp):
                print("SIGN/VERIFY FAILED", k["kid"], st); bad += 1
        else:
            nsecrets += 1
            st, body = cl.req("GET", path_of(rec["id"]))
            if st != 200 or body.get("value") != rec["value"] or body.get("id") != rec["id"]:
                print("MISSING/CHANGED secret", rec["id"], st); bad += 1
    # every stored version of every key still decrypts and signs (not only the recorded ones)
    nxt = "/keys?maxresults=25"
    names = []
    while nxt:
        st, body = cl.req("GET", nxt)
        if st != 200:
            print("LIST FAILED", st); bad += 1; break
        names += [path_of(i["kid"]) for i in body["value"]]
        nxt = path_of(body["nextLink"]) if body.get("nextLink") else None
    for kp in names:
        nxt = kp + "/versions?maxresults=25"
        while nxt:
            st, body = cl.req("GET", nxt)
            if st != 200:
                print("VERSIONS FAILED", kp, st); bad += 1; break
            for item in body["value"]:
                vp = path_of(item["kid"]); nversions += 1
                st2, kb = cl.req("GET", vp)
                kty = kb["key"]["kty"] if st2 == 200 else "EC"
                st3, digest, sig = sign(cl, vp, kty)
                if st2 != 200 or st3 != 200 or not openssl_verify(kb["key"], digest, sig, tmp):
                    print("VERSION UNUSABLE", item["kid"], st2, st3); bad += 1
            nxt = path_of(body["nextLink"]) if body.get("nextLink") else None
    print("SUMMARY keys=%d secrets=%d versions=%d bad=%d" % (nkeys, nsecrets, nversions, bad))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "load":
        load(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
             int(sys.argv[7]), int(sys.argv[8]), sys.argv[9] == "1", sys.argv[10] == "1")
    elif cmd == "check":
        check(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
EOF

# Does this vaultd have secrets yet? Then they are part of the load.
SECRETS=0
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data '{"value":"probe"}' \
    "https://localhost:$VAULTD_PORT/secrets/dur-probe?api-version=7.5")
[ "$code" = 200 ] && SECRETS=1
# HSM-protected keys (EC-HSM in the vault's HSM pool) when this vaultd has a pool
HSM=0
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data '{"kty":"EC-HSM","crv":"P-256"}' \
    "https://localhost:$VAULTD_PORT/keys/dur-hsm-probe/create?api-version=7.5")
[ "$code" = 200 ] && HSM=1
echo "# secrets in the load: $SECRETS; EC-HSM keys in the load: $HSM"

# A 200 is written only after the commit reached the disk: trace one create with strace and
# check that the WAL is fdatasync'ed after the request was read and before the response is
# written (synchronous=FULL; with NORMAL there would be no sync at commit). Skipped without
# strace or ptrace permission.
if command -v strace >/dev/null 2>&1; then
    strace -f -tt -y -e trace=read,write,sendmsg,recvmsg,fsync,fdatasync -p "$VAULTD_PID" \
        -o "$T_TMP/strace.txt" 2>"$T_TMP/strace.err" &
    STRACE_PID=$!
    for _ in $(seq 1 50); do grep -q attached "$T_TMP/strace.err" 2>/dev/null && break; sleep 0.1; done
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data '{"kty":"EC","crv":"P-256"}' \
        "https://localhost:$VAULTD_PORT/keys/dur-traced/create?api-version=7.5")
    sleep 0.3
    kill "$STRACE_PID" 2>/dev/null
    wait "$STRACE_PID" 2>/dev/null
    if grep -q attached "$T_TMP/strace.err" && [ "$code" = 200 ]; then
        check "the WAL is fdatasync'ed between reading a write request and answering it" \
            python3 - "$T_TMP/strace.txt" <<'EOF'
import re, sys
ev = []  # (kind, line): R socket read (>0 bytes), W socket write, S sync of the WAL
for line in open(sys.argv[1]):
    m = re.search(r"(read|write|sendmsg|recvmsg|fdatasync|fsync)\(\d+<([^>]*)>.*\)\s+=\s+(-?\d+)", line)
    if not m:
        continue
    call, target, ret = m.group(1), m.group(2), int(m.group(3))
    if call in ("fdatasync", "fsync") and target.endswith("-wal"):
        ev.append("S")
    elif target.startswith(("socket:", "TCP")) and call in ("read", "recvmsg") and ret > 0:
        ev.append("R")
    elif target.startswith(("socket:", "TCP")) and call in ("write", "sendmsg") and ret > 0:
        ev.append("W")
seq = "".join(ev)
print("events:", seq)
s = seq.find("S")
if s < 0:
    sys.exit("no fsync/fdatasync of the WAL at commit")
r = seq.rfind("R", 0, s)
if "W" in seq[r + 1:s]:
    sys.exit("a response was written after the request and before the WAL sync")
if "W" not in seq[s:]:
    sys.exit("no response after the WAL sync")
EOF
    else
        echo "# skip: strace could not attach to vaultd ($(head -c 200 "$T_TMP/strace.err"))"
    fi
else
    echo "# skip: no strace"
fi

PY="$T_TMP/durability.py"
REC="$T_TMP/records.jsonl"
: >"$REC"
for round in $(seq 1 "$ROUNDS"); do
    rm -f "$T_TMP/stop"
    python3 "$PY" load "$VAULTD_PORT" "$CA" "$TOKEN" "$REC" "$T_TMP/stop" "$CLIENTS" "$round" \
        "$SECRETS" "$HSM" &
    LOAD_PID=$!
    # kill at a random point 0.6 .. 2.5 s into the load
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.6, 2.5), 2))')"
    before=$(wc -l <"$REC")
    kill -9 "$VAULTD_PID"
    wait "$VAULTD_PID" 2>/dev/null
    VAULTD_PID=""
    sleep 0.3                     # the load keeps trying against the dead server
    touch "$T_TMP/stop"
    wait "$LOAD_PID"
    total=$(wc -l <"$REC")
    [ "$before" -gt 0 ] && ok "round $round: load ran, $total writes answered 200 so far" ||
        not_ok "round $round: no write got a 200 before the kill"

    # the database as the crash left it
    check "round $round: PRAGMA integrity_check after kill -9" \
        bash -c "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' 'PRAGMA integrity_check;')\" = ok ]"
    check "round $round: journal_mode is wal" \
        bash -c "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' 'PRAGMA journal_mode;')\" = wal ]"

    start_vaultd --threads 4 || { not_ok "round $round: vaultd restarts"; break; }
    ok "round $round: vaultd restarts on the same state"
    python3 "$PY" check "$VAULTD_PORT" "$CA" "$TOKEN" "$REC" >"$T_TMP/check.out" 2>&1
    summary=$(tail -n1 "$T_TMP/check.out")
    if echo "$summary" | grep -q ' bad=0$'; then
        ok "round $round: every 200 write present, every key version signs ($summary)"
    else
        not_ok "round $round: lost or corrupted writes ($summary)"
        sed 's/^/    # /' "$T_TMP/check.out" | head -n 20
    fi
done

# no version id was ever reused: the recorded kids/ids are all distinct
check "recorded versioned ids are unique" python3 -c '
import json, sys
ids = [r["key"]["kid"] if r["t"] == "key" else r["id"] for r in map(json.loads, open(sys.argv[1]))]
sys.exit(0 if len(ids) == len(set(ids)) else 1)' "$REC"
for table in keys secrets; do
    sqlite3 "$VAULTD_STATE/vaultd.db" "SELECT 1 FROM $table LIMIT 0" 2>/dev/null || continue
    check "$table table keeps (vault, name, version) unique" \
        bash -c "[ \"\$(sqlite3 '$VAULTD_STATE/vaultd.db' \
            'SELECT COUNT(*) FROM (SELECT vault, name, version FROM $table GROUP BY 1, 2, 3 HAVING COUNT(*) > 1);')\" = 0 ]"
done

finish
