#!/usr/bin/env bash
# test_vaultd_robust.sh - vaultd robustness: every error, including the ones libevent detects
# itself (malformed request line / headers, request line or headers too long, body too large,
# unknown method, bad Expect), is Azure's JSON error shape with the right status; slow key
# generation (RSA-4096 software and RSA-HSM keys, certificates with RSA-4096 keys) and the
# PBKDF2 checks of wrong client secrets run on the work pool, so with ONE worker thread other
# requests are answered meanwhile (checked by the ORDER of the replies, not by times);
# slowloris / idle connections are closed after --request-timeout while others are served;
# clients that disconnect during key generation do not hurt vaultd (the key is created exactly
# once); SIGTERM during key generation stops cleanly. Loopback only; ~20-40 s.
source "$(dirname "$0")/lib.sh"

start_vaultd --threads 1 --request-timeout 3 || { not_ok "vaultd starts"; finish; exit 1; }
ok "vaultd starts (--threads 1 --request-timeout 3)"
CA="$VAULTD_STATE/ca.pem"
BASE="https://localhost:$VAULTD_PORT"
TOKEN=$(get_token)
[ -n "$TOKEN" ] && ok "token" || not_ok "token"

# ---- curl --http1.1: errors answered in the JSON shape ----
# curl_err DESC STATUS CODE CURL-ARGS...: the reply has STATUS, a JSON content type and
# {"error":{"code":CODE,"message":...}}
curl_err() {
    local desc=$1 want=$2 code=$3
    shift 3
    curl -s --http1.1 --cacert "$CA" -o "$T_TMP/body" -D "$T_TMP/hdrs" "$@" >/dev/null 2>&1
    python3 - "$T_TMP/hdrs" "$T_TMP/body" "$want" "$code" <<'EOF'
import json, sys
blocks = [b for b in open(sys.argv[1], encoding="latin-1", newline="").read().split("\r\n\r\n") if b]
hdrs = blocks[-1].split("\r\n") if blocks else []  # the final reply (after any 100 Continue)
status = hdrs[0].split(" ")[1] if hdrs and " " in hdrs[0] else "?"
ctype = [h.split(":", 1)[1].strip() for h in hdrs if h.lower().startswith("content-type:")]
body = open(sys.argv[2], "rb").read()
try:
    err = json.loads(body)["error"]
    ok = isinstance(err["message"], str) and err["code"] == sys.argv[4]
except Exception:
    ok = False
if status != sys.argv[3] or ctype != ["application/json; charset=utf-8"] or not ok:
    print("status %s ctype %s body %r" % (status, ctype, body[:300]))
    sys.exit(1)
EOF
}
check "curl: OPTIONS is 405 MethodNotAllowed (JSON)" \
    curl_err x 405 MethodNotAllowed -X OPTIONS "$BASE/keys?api-version=7.4"
check "curl: TRACE is 405 MethodNotAllowed (JSON)" \
    curl_err x 405 MethodNotAllowed -X TRACE "$BASE/healthz"
check "curl: unknown method FROB is 405 MethodNotAllowed (JSON)" \
    curl_err x 405 MethodNotAllowed -X FROB "$BASE/keys?api-version=7.4"
head -c 2000000 /dev/zero | tr '\0' 'a' >"$T_TMP/big.bin"
check "curl: 2 MB body is 413 RequestEntityTooLarge (JSON, body drained)" \
    curl_err x 413 RequestEntityTooLarge -X PUT -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" --data-binary @"$T_TMP/big.bin" \
    "$BASE/secrets/big?api-version=7.4"
check "curl: 2 MB body with Expect: 100-continue is 413 (JSON)" \
    curl_err x 413 RequestEntityTooLarge -X PUT -H "Expect: 100-continue" \
    -H "Content-Type: application/json" --data-binary @"$T_TMP/big.bin" \
    "$BASE/secrets/big?api-version=7.4"
printf 'X-Pad: %s\r\n' "$(head -c 100000 /dev/zero | tr '\0' 'p')" >"$T_TMP/hdr100k"
check "curl: 100 KB of headers is 431 RequestHeaderFieldsTooLarge (JSON)" \
    curl_err x 431 RequestHeaderFieldsTooLarge -H @"$T_TMP/hdr100k" "$BASE/healthz"
check "curl: 30 KB URI is 414 RequestUriTooLong (JSON)" \
    curl_err x 414 RequestUriTooLong "$BASE/healthz?x=$(head -c 30000 /dev/zero | tr '\0' 'u')"
check "curl: Expect: something-else is 417 ExpectationFailed (JSON)" \
    curl_err x 417 ExpectationFailed -X POST -H "Expect: something-else" -d '{}' "$BASE/healthz"
check "curl: a normal error still has the shape (401 without token)" \
    curl_err x 401 Unauthorized "$BASE/keys?api-version=7.4"

# ---- raw requests over TLS (python ssl sockets) ----
cat >"$T_TMP/robust.py" <<'EOF'
import json, socket, ssl, sys, threading, time

port, ca, token, what = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)

def connect():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.settimeout(60)
    return s

def read_reply(s):
    """One HTTP/1.1 reply: (status, headers dict, body) or None when closed first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            return None
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" not in hdrs and hdrs.get("connection") == "close":
        while True:  # close-delimited (libevent does this for CONNECT)
            b = s.recv(65536)
            if not b:
                return status, hdrs, rest
            rest += b
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        b = s.recv(65536)
        if not b:
            break
        rest += b
    return status, hdrs, rest[:n]

def raw(data):
    s = connect()
    try:
        s.sendall(data)
    except OSError:
        pass
    r = read_reply(s)
    s.close()
    return r

def req(method, path, body=None, s=None):
    data = json.dumps(body).encode() if body is not None else b""
    msg = ("%s %s HTTP/1.1\r\nHost: localhost:%d\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % (method, path, port, token, len(data))).encode() + data
    return msg

fails = 0
def expect(desc, cond, extra=""):
    global fails
    print(("ok - " if cond else "not ok - ") + desc + ("" if cond else " " + str(extra)[:400]))
    if not cond:
        fails += 1

def json_error(r, status, code):
    if r is None:
        return False
    st, h, b = r
    try:
        e = json.loads(b)["error"]
    except Exception:
        return False
    return (st == status and h.get("content-type") == "application/json; charset=utf-8"
            and e.get("code") == code and isinstance(e.get("message"), str))

if what == "raw":
    cases = [
        ("garbage request line", b"GARBAGE\r\n\r\n", 400, "BadRequest"),
        ("unknown HTTP version", b"GET /healthz HTTP/7.3\r\nHost: x\r\n\r\n", 400, "BadRequest"),
        ("header line without a colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
         400, "BadRequest"),
        ("invalid Content-Length", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
         400, "BadRequest"),
        ("OPTIONS", b"OPTIONS /keys HTTP/1.1\r\nHost: x\r\n\r\n", 405, "MethodNotAllowed"),
        ("CONNECT", b"CONNECT localhost:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405, "MethodNotAllowed"),
        ("unknown method", b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 405, "MethodNotAllowed"),
        ("300 KB header line (beyond evhttp's own limit)",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 300000 + b"\r\n\r\n",
         431, "RequestHeaderFieldsTooLarge"),
        ("300 header lines of 1 KB",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(300)) + b"\r\n",
         431, "RequestHeaderFieldsTooLarge"),
        ("300 KB request line (beyond evhttp's own limit)",
         b"GET /" + b"u" * 300000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "RequestUriTooLong"),
        ("5 MB body with Content-Length",
         b"PUT /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
         + b"z" * 5000000, 413, "RequestEntityTooLarge"),
        ("2 MB chunked body",
         b"PUT /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + (b"10000\r\n" + b"c" * 0x10000 + b"\r\n") * 32 + b"0\r\n\r\n",
         413, "RequestEntityTooLarge"),
    ]
    for desc, data, status, code in cases:
        r = raw(data)
        expect("raw: %s is %d %s (JSON)" % (desc, status, code), json_error(r, status, code),
               r and (r[0], r[2][:200]))
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_reply(s)
    expect("raw: keep-alive still works after the errors", r is not None and r[0] == 200)
    s.close()

elif what == "order":
    # Connections first (TLS handshakes done), then two RSA-4096 creates, then a health check
    # and a key GET on other connections: with one worker thread the GETs must be answered
    # before the creates (before the work pool, they waited for both key generations).
    a, b, c, d = connect(), connect(), connect(), connect()
    c.sendall(req("POST", "/keys/order-seed/create?api-version=7.4", {"kty": "EC"}))
    r = read_reply(c)
    expect("order: seed key created", r is not None and r[0] == 200, r)
    a.sendall(req("POST", "/keys/order-a/create?api-version=7.4", {"kty": "RSA", "key_size": 4096}))
    b.sendall(req("POST", "/keys/order-b/create?api-version=7.4", {"kty": "RSA", "key_size": 4096}))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    d.sendall(req("GET", "/keys/order-seed?api-version=7.4"))
    # one reader thread per connection (select() on TLS sockets also wakes up for session
    # tickets, which carry no reply)
    order, results, lock = [], {}, threading.Lock()
    def reader(s, name):
        r = read_reply(s)
        with lock:
            results[name] = r
            order.append(name)
    threads = [threading.Thread(target=reader, args=x)
               for x in ((a, "create-a"), (b, "create-b"), (c, "healthz"), (d, "get-key"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print("# reply order: %s" % " ".join(order))
    expect("order: all four answered", len(order) == 4, order)
    expect("order: both RSA-4096 creates succeeded",
           all(results.get(k) and results[k][0] == 200 for k in ("create-a", "create-b")),
           [(k, results.get(k) and results[k][0]) for k in results])
    expect("order: /healthz answered before either RSA-4096 create completed",
           "healthz" in order and order.index("healthz") < 2, order)
    expect("order: key GET answered before either RSA-4096 create completed",
           "get-key" in order and order.index("get-key") < 2, order)
    for s in (a, b, c, d):
        s.close()

elif what in ("order-hsm", "order-cert"):
    # The same ordering check for the other slow creates: an RSA-HSM 4096 key (C_GenerateKeyPair
    # in the dev SoftHSMv2 pool) and a certificate with an RSA-4096 key (keygen + self-signing):
    # a health check and a key GET on other connections are answered before either create.
    a, b, c, d = connect(), connect(), connect(), connect()
    if what == "order-hsm":
        label, status = "RSA-HSM 4096 create", 200
        body = {"kty": "RSA-HSM", "key_size": 4096}
        paths = ["/keys/order-hsm-%s/create?api-version=7.4" % x for x in "ab"]
    else:
        label, status = "RSA-4096 certificate create", 202
        paths = ["/certificates/order-cert-%s/create?api-version=7.4" % x for x in "ab"]
    for s, path in ((a, paths[0]), (b, paths[1])):
        if what == "order-cert":
            body = {"policy": {"key_props": {"kty": "RSA", "key_size": 4096, "exportable": True},
                               "secret_props": {"contentType": "application/x-pem-file"},
                               "x509_props": {"subject": "CN=" + path.split("/")[2]},
                               "issuer": {"name": "Self"}}}
        s.sendall(req("POST", path, body))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    d.sendall(req("GET", "/keys/order-seed?api-version=7.4"))
    order, results, lock = [], {}, threading.Lock()
    def reader(s, name):
        r = read_reply(s)
        with lock:
            results[name] = r
            order.append(name)
    threads = [threading.Thread(target=reader, args=x)
               for x in ((a, "create-a"), (b, "create-b"), (c, "healthz"), (d, "get-key"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    print("# %s: reply order: %s" % (what, " ".join(order)))
    expect("%s: all four answered" % what, len(order) == 4, order)
    expect("%s: both %ss succeeded (%d)" % (what, label, status),
           all(results.get(k) and results[k][0] == status for k in ("create-a", "create-b")),
           [(k, results.get(k) and (results[k][0], results[k][2][:200])) for k in results])
    expect("%s: /healthz answered before either %s completed" % (what, label),
           "healthz" in order and order.index("healthz") < 2, order)
    expect("%s: key GET answered before either %s completed" % (what, label),
           "get-key" in order and order.index("get-key") < 2, order)
    for s in (a, b, c, d):
        s.close()

elif what == "order-token":
    # A burst of token requests with wrong client secrets (PBKDF2, ~50 ms each) on their own
    # connections, then (once the burst is queued) a health check on another one: the checks
    # run on the work pool, so /healthz is answered before the burst's last reply, and even
    # before half of it (with the hash on the one worker thread, /healthz waited for most of
    # the burst). Every wrong secret is still refused; the right one works.
    import os, urllib.parse
    tenant, client, secret = os.environ["KV_TENANT"], os.environ["KV_CLIENT"], os.environ["KV_SECRET"]
    def token_req(sec):
        data = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client,
                                       "client_secret": sec,
                                       "scope": "https://vault.azure.net/.default"}).encode()
        return ("POST /%s/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost:%d\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                % (tenant, port, len(data))).encode() + data
    n = 16
    burst = [connect() for _ in range(n)]
    h = connect()
    for k, s in enumerate(burst):
        s.sendall(token_req("wrong-secret-%d" % k))
    time.sleep(0.05)  # the burst reaches vaultd first (orders the sends; nothing is timed)
    h.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    order, results, lock = [], {}, threading.Lock()
    def reader(s, name):
        r = read_reply(s)
        with lock:
            results[name] = r
            order.append(name)
    threads = [threading.Thread(target=reader, args=(s, "wrong-%d" % k)) for k, s in enumerate(burst)]
    threads.append(threading.Thread(target=reader, args=(h, "healthz")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print("# order-token: reply order: %s" % " ".join(order))
    expect("order-token: all %d replies" % (n + 1), len(order) == n + 1, order)
    def refused(r):
        try:
            return r[0] == 401 and json.loads(r[2])["error"] == "invalid_client"
        except Exception:
            return False
    expect("order-token: every wrong secret refused (401 invalid_client)",
           all(refused(results.get("wrong-%d" % k)) for k in range(n)),
           [(k, results.get(k) and results[k][0]) for k in results])
    expect("order-token: /healthz answered before the burst's last reply",
           "healthz" in order and order.index("healthz") < len(order) - 1, order)
    expect("order-token: /healthz answered before half of the burst's replies",
           "healthz" in order and order.index("healthz") < n // 2, order)
    h.sendall(token_req(secret))
    r = read_reply(h)
    ok_tok = False
    try:
        ok_tok = r[0] == 200 and len(json.loads(r[2])["access_token"]) > 20
    except Exception:
        pass
    expect("order-token: the right secret still gets a token", ok_tok, r and r[0])
    for s in burst + [h]:
        s.close()

elif what == "slowloris":
    # A client trickling a request byte by byte, an idle TLS connection and a raw TCP connection
    # that never starts TLS are all closed by vaultd (request timeout 3 s) while other
    # connections are served. Bounded at 40 s per connection, but no timing is asserted.
    slow = connect()
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    idle = connect()
    tcp = socket.create_connection(("127.0.0.1", port))
    closed = {"slow": False, "idle": False, "tcp": False}
    served = 0
    t0 = time.monotonic()
    i = 0
    while not all(closed.values()) and time.monotonic() - t0 < 40:
        if not closed["slow"]:
            try:
                slow.sendall(b"X-Slow-%d: y\r\n" % i)
                i += 1
            except OSError:
                closed["slow"] = True
        for name, s in (("slow", slow), ("idle", idle), ("tcp", tcp)):
            if closed[name]:
                continue
            s.setblocking(False)
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue  # nothing (a TLS session ticket is no data)
            except (OSError, ssl.SSLError):
                data = b""
            finally:
                s.setblocking(True)
            if not data:
                closed[name] = True
            elif name == "slow":
                print("# unexpected reply on the slow connection: %r" % data[:200])
        o = connect()
        o.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        rr = read_reply(o)
        served += 1 if rr is not None and rr[0] == 200 else 0
        o.close()
        time.sleep(0.5)
    print("# %d header lines trickled, %d other requests served" % (i, served))
    expect("slowloris: the trickling connection was closed by vaultd", closed["slow"])
    expect("slowloris: the idle TLS connection was closed by vaultd", closed["idle"])
    expect("slowloris: the TCP connection without TLS handshake was closed", closed["tcp"])
    expect("slowloris: other requests were served meanwhile", served >= 2 and i >= 2,
           (served, i))

elif what == "disconnect":
    # Clients that go away during RSA-4096 generation: vaultd keeps serving and each key ends
    # up created exactly once (one version).
    names = ["gone-%d" % k for k in range(3)]
    for n in names:
        s = connect()
        s.sendall(req("POST", "/keys/%s/create?api-version=7.4" % n, {"kty": "RSA", "key_size": 4096}))
        time.sleep(0.05)
        s.close()
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    r = read_reply(s)
    expect("disconnect: vaultd answers while the abandoned creates run", r is not None and r[0] == 200)
    found = {}
    t0 = time.monotonic()
    while len(found) < len(names) and time.monotonic() - t0 < 120:
        for n in names:
            if n in found:
                continue
            s.sendall(req("GET", "/keys/%s/versions?api-version=7.4" % n))
            rr = read_reply(s)
            if rr is not None and rr[0] == 200:
                found[n] = len(json.loads(rr[2])["value"])
        time.sleep(0.3)
    expect("disconnect: every abandoned key was created with exactly one version",
           len(found) == len(names) and all(v == 1 for v in found.values()), found)
    s.close()

elif what == "inflight":
    # leaves an RSA-4096 create running (the caller then sends SIGTERM)
    s = connect()
    s.sendall(req("POST", "/keys/inflight/create?api-version=7.4", {"kty": "RSA", "key_size": 4096}))
    time.sleep(0.2)
    print("ok - inflight: create sent")

sys.exit(1 if fails else 0)
EOF

run_py() {
    python3 "$T_TMP/robust.py" "$VAULTD_PORT" "$CA" "$TOKEN" "$1" >"$T_TMP/py.out" 2>&1
    local rc=$?
    cat "$T_TMP/py.out"
    T_PASS=$((T_PASS + $(grep -c '^ok - ' "$T_TMP/py.out")))
    T_FAIL=$((T_FAIL + $(grep -c '^not ok - ' "$T_TMP/py.out")))
    if [ "$rc" -ne 0 ] && ! grep -q '^not ok - ' "$T_TMP/py.out"; then
        not_ok "python part '$1' failed (exit $rc)"
    fi
}
run_py raw
run_py order
if [ -f "$VAULTD_STATE/hsm.conf" ]; then
    run_py order-hsm
else
    echo "# skipped: the RSA-HSM ordering check (no dev HSM pool: SoftHSMv2 missing)"
fi
run_py order-cert
KV_TENANT=$(conf_get tenant_id) KV_CLIENT=$(conf_get client_id) KV_SECRET=$(conf_get client_secret) \
    run_py order-token
run_py slowloris
run_py disconnect

if kill -0 "$VAULTD_PID" 2>/dev/null; then ok "vaultd still running"; else not_ok "vaultd died"; fi
if grep -Eq 'AddressSanitizer|runtime error|Segmentation|Aborted' "$T_TMP/vaultd.log"; then
    not_ok "vaultd log shows a crash or sanitizer report"; grep -E 'Sanitizer|runtime error' "$T_TMP/vaultd.log" | head -5
else
    ok "no crash or sanitizer report in the vaultd log"
fi
if grep -q 'request timeout: connection closed' "$T_TMP/vaultd.log"; then
    ok "request timeouts are logged"
else
    not_ok "request timeouts are logged"
fi

# SIGTERM while an RSA-4096 key is being generated: clean exit
run_py inflight
kill -TERM "$VAULTD_PID"
wait "$VAULTD_PID"
rc=$?
VAULTD_PID=""
[ "$rc" -eq 0 ] && ok "SIGTERM during key generation: clean exit" ||
    { not_ok "SIGTERM during key generation: exit $rc"; tail -5 "$T_TMP/vaultd.log"; }

finish
