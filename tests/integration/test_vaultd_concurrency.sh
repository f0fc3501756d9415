#!/usr/bin/env bash
# test_vaultd_concurrency.sh - operations on one key do not serialise the server: 8 parallel
# clients sign with key A (EC, RSA, and EC-HSM when there is a pool) while other clients create
# versions of key B (RSA 4096, slow) and of other keys; every request succeeds, signatures
# verify with openssl, and signing keeps making progress while B is being created. Loopback
# only; 10-20 s.
source "$(dirname "$0")/lib.sh"

start_vaultd --threads 4 || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts"
CA="$VAULTD_STATE/ca.pem"
TOKEN=$(get_token)

cat >"$T_TMP/conc.py" <<'EOF'
import base64, http.client, json, os, ssl, subprocess, sys, threading, time

port, ca, token, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
def b64u(b): return base64.urlsafe_b64encode(b).decode().rstrip("=")
def unb64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

class Client:
    def __init__(self):
        self.conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=60)
    def req(self, method, path, body=None):
        self.conn.request(method, path + "?api-version=7.5",
                          body=json.dumps(body).encode() if body is not None else None,
                          headers={"Authorization": "Bearer " + token,
                                   "Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read() or b"null")

setup = Client()
keys = {}
for name, kb in (("conc-a-ec", {"kty": "EC", "crv": "P-256"}),
                 ("conc-a-rsa", {"kty": "RSA", "key_size": 2048})):
    st, body = setup.req("POST", "/keys/%s/create" % name, kb)
    assert st == 200, (name, st, body)
    keys[name] = body["key"]
# an HSM-protected key too, when this vaultd has an HSM pool
st, body = setup.req("POST", "/keys/conc-a-hsm/create", {"kty": "EC-HSM", "crv": "P-256"})
if st == 200:
    keys["conc-a-hsm"] = body["key"]
print("hsm key: %s" % ("yes" if "conc-a-hsm" in keys else "no (status %d)" % st))

results = []          # (kind, status, t_end, extra)
lock = threading.Lock()
b_window = []         # (start, end) of each create of B
stop = threading.Event()

def signer(i):
    cl = Client()
    name = "conc-a-ec" if i % 2 == 0 else "conc-a-rsa"
    if i % 4 == 2 and "conc-a-hsm" in keys:
        name = "conc-a-hsm"
    alg = "RS256" if name == "conc-a-rsa" else "ES256"
    n = 0
    while not stop.is_set() or n < 20:
        digest = os.urandom(32)
        try:
            st, body = cl.req("POST", "/keys/%s/sign" % name, {"alg": alg, "value": b64u(digest)})
        except Exception as e:
            st, body = 0, str(e)
        with lock:
            results.append(("sign", st, time.monotonic(), (name, digest, body)))
        n += 1
        if n >= 400: break

def creator(name, kb, count, window=None):
    cl = Client()
    for _ in range(count):
        t0 = time.monotonic()
        try:
            st, body = cl.req("POST", "/keys/%s/create" % name, kb)
        except Exception as e:
            st, body = 0, str(e)
        t1 = time.monotonic()
        with lock:
            results.append(("create " + name, st, t1, body))
            if window is not None:
                window.append((t0, t1))

signers = [threading.Thread(target=signer, args=(i,)) for i in range(8)]
creators = [threading.Thread(target=creator, args=("conc-b", {"kty": "RSA", "key_size": 4096}, 2, b_window)),
            threading.Thread(target=creator, args=("conc-c", {"kty": "EC", "crv": "P-384"}, 20))]
for t in signers: t.start()
time.sleep(0.2)
for t in creators: t.start()
for t in creators: t.join()
stop.set()
for t in signers: t.join()

bad = [r for r in results if r[1] != 200]
signs = [r for r in results if r[0] == "sign"]
creates_b = [r for r in results if r[0] == "create conc-b"]
during = sum(1 for r in signs if any(a <= r[2] <= b for a, b in b_window))
b_time = sum(b - a for a, b in b_window)
print("signs=%d creates=%d failed=%d signs_during_B_create=%d B_create_seconds=%.2f"
      % (len(signs), len(results) - len(signs), len(bad), during, b_time))
for r in bad[:5]:
    print("FAILED", r[0], r[1], str(r[3])[:200])

# verify a sample of the signatures with openssl
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
verified = failed_verify = 0
ok_signs = [r for r in signs if r[1] == 200]
for r in ok_signs[:: max(1, len(ok_signs) // 40)]:
    name, digest, body = r[3]
    k = keys[name]; sig = unb64u(body["value"])
    pub, dg, sg = (os.path.join(tmp, n) for n in ("c-pub.der", "c-dgst.bin", "c-sig.bin"))
    open(pub, "wb").write(spki(k)); open(dg, "wb").write(digest)
    if name == "conc-a-rsa":
        open(sg, "wb").write(sig); extra = ["-pkeyopt", "digest:sha256"]
    else:
        h = len(sig) // 2; open(sg, "wb").write(tlv(0x30, dint(sig[:h]) + dint(sig[h:]))); extra = []
    rc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", pub,
                         "-in", dg, "-sigfile", sg] + extra, capture_output=True).returncode
    if rc == 0: verified += 1
    else: failed_verify += 1
print("verified=%d verify_failed=%d" % (verified, failed_verify))
ok = (not bad and failed_verify == 0 and verified > 0 and len(creates_b) == 2 and during > 0)
sys.exit(0 if ok else 1)
EOF

check "8 signers on key A while B (RSA 4096) and C are created: all 200, progress during B" \
    python3 "$T_TMP/conc.py" "$VAULTD_PORT" "$CA" "$TOKEN" "$T_TMP"
sed 's/^/    # /' "$T_TMP/last.out"

CODE=$(curl -s -o "$T_TMP/v.json" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    "https://localhost:$VAULTD_PORT/keys/conc-b/versions?api-version=7.5")
check "key B has its 2 versions" python3 -c '
import json, sys
sys.exit(0 if sys.argv[1] == "200" and len(json.load(open(sys.argv[2]))["value"]) == 2 else 1)' \
    "$CODE" "$T_TMP/v.json"

finish
