#!/bin/bash
# test_p11_concurrency.sh - kvault.so under concurrency, fork and vault faults, driven from one
# python3 process through ctypes (issue 5, "Concurrency and forks" and "Faults"):
#  1. 8 threads, each on its own session, sign 20 times with an RSA-2048 and 20 times with an
#     EC P-256 key; every signature verifies with the key's public key; one token fetch.
#  2. fork: the parent signs, a forked child calls C_Initialize again (CKR_OK or
#     CKR_CRYPTOKI_ALREADY_INITIALIZED), signs, verifies; the parent signs again afterwards; the
#     child fetches no new token.
#  3. faults: with vaultd stopped C_Sign returns CKR_DEVICE_ERROR (timeout = 3 in a private
#     client.conf); vaultd restarted on the same state and port, the same session and a new
#     session sign again without C_Finalize or reloading the module; vaultd frozen with SIGSTOP:
#     C_Sign returns CKR_DEVICE_ERROR (the timeout ends the hung request), and after SIGCONT the
#     same session signs again.
#  4. parallel sessions: with vaultd frozen, 6 threads' signatures are in flight together (the
#     process's own connections to vaultd, counted in /proc), then all verify after SIGCONT.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset KVAULT_LOG

p11_setup
A="$T_TMP/p11c"
mkdir -p "$A"

TOKEN=$(get_token)
check "create RSA-2048 key crsa" rest_create_key crsa '{"kty":"RSA","key_size":2048}' "$A/crsa.json"
check "create EC P-256 key cec" rest_create_key cec '{"kty":"EC","crv":"P-256"}' "$A/cec.json"

# private copy of client.conf with a short timeout (the [kvault] section first); one vault call
# (retries included) ends within TIMEOUT seconds (kv_http.c: one overall deadline per call)
TIMEOUT=3
CONF="$A/client.conf"
{
    printf '[kvault]\ntimeout = %s\n' "$TIMEOUT"
    sed '/^\[kvault\]/,/^\[/{/^\[kvault\]/d;/^[[:space:]]*timeout[[:space:]]*=/d}' "$KVAULT_CONF"
} >"$CONF"
chmod 600 "$CONF"

# p11c.py: this test's helpers over p11.py (the shared ctypes binding of kvault.so)
cat >"$A/p11c.py" <<'PYEOF'
import base64, json, os, sys, threading, time
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from p11 import *
D = sys.argv[2]

def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def pub(name):
    k = json.load(open(os.path.join(D, name + ".json")))["key"]
    if k["kty"].startswith("RSA"):
        return rsa.RSAPublicNumbers(int.from_bytes(b64(k["e"]), "big"),
                                    int.from_bytes(b64(k["n"]), "big")).public_key()
    return ec.EllipticCurvePublicNumbers(int.from_bytes(b64(k["x"]), "big"),
                                         int.from_bytes(b64(k["y"]), "big"),
                                         ec.SECP256R1()).public_key()
PUB = {"crsa": pub("crsa"), "cec": pub("cec")}
MECH = {"crsa": CKM_SHA256_RSA_PKCS, "cec": CKM_ECDSA_SHA256}

# sign(h, obj, name, data) -> (rv of C_SignInit, rv of C_Sign, signature bytes)
def sign(h, obj, name, data): return sign_rv(h, obj, MECH[name], data)
# sign_ok: signs and verifies; returns an error string or None
def sign_ok(h, obj, name, tag):
    data = os.urandom(100) + tag.encode()
    ri, rs, sig = sign(h, obj, name, data)
    if ri or rs: return "%s %s: C_SignInit 0x%x C_Sign 0x%x" % (tag, name, ri, rs or 0)
    if not verify_sha256(PUB[name], data, sig): return "%s %s: signature does not verify" % (tag, name)
    return None
def keys(h): return {n: find_one(h, n) for n in ("crsa", "cec")}
PYEOF
P11PY_PATH=$A P11PY_TIMEOUT=180

# ---- 1. 8 threads, own sessions, 20 RSA + 20 EC signatures each ----
KVAULT_CONF="$CONF" KVAULT_LOG=debug p11py "$A" >"$A/threads.out" 2>"$A/threads.err" <<'PYEOF'
from p11c import *
assert C_Initialize(None) == 0
hs = [open_session() for _ in range(8)]
go = threading.Barrier(8); errs = []; count = [0]; lock = threading.Lock()
def run(i, h):
    k = keys(h); go.wait()
    for j in range(20):
        for name in ("crsa", "cec"):
            e = sign_ok(h, k[name], name, "t%d.%d" % (i, j))
            with lock:
                if e: errs.append(e)
                else: count[0] += 1
ts = [threading.Thread(target=run, args=(i, h)) for i, h in enumerate(hs)]
[t.start() for t in ts]; [t.join() for t in ts]
print("verified", count[0]); print("errors", len(errs), errs[:5])
assert not errs and count[0] == 8 * 20 * 2, (count[0], errs[:5])
assert C_Finalize(None) == 0
PYEOF
rc=$?
n=$(token_fetches "$A/threads.err")
[ $rc -eq 0 ] && [ "$n" -eq 1 ] &&
    ok "8 threads x (20 RSA-2048 + 20 EC P-256) on own sessions: 320 signatures verify, one token fetch" ||
    { not_ok "8 threads x (20 RSA + 20 EC): all verify, one token fetch (rc $rc, $n fetches)"; tail -n 5 "$A/threads.out" "$A/threads.err"; }

# ---- 2. fork: the child re-initialises and signs; the parent signs again afterwards ----
KVAULT_CONF="$CONF" KVAULT_LOG=debug p11py "$A" >"$A/fork.out" 2>"$A/fork.err" <<'PYEOF'
from p11c import *
assert C_Initialize(None) == 0
h = open_session(); k = keys(h)
for name in ("crsa", "cec"):
    e = sign_ok(h, k[name], name, "parent"); assert e is None, e
sys.stdout.flush(); sys.stderr.flush()
pid = os.fork()
if pid == 0:
    st = 1
    try:
        rv = C_Initialize(None)
        print("child C_Initialize 0x%x" % rv, flush=True)
        if rv in (0, 0x191):  # CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED
            hc = open_session(); kc = keys(hc); errs = []
            for name in ("crsa", "cec"):
                e = sign_ok(hc, kc[name], name, "child")
                if e: errs.append(e)
            print("child errors", errs, flush=True)
            st = 0 if not errs else 1
    except BaseException as ex:
        print("child exception", repr(ex), flush=True)
    os._exit(st)
_, st = os.waitpid(pid, 0)
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, "child status %r" % st
for name in ("crsa", "cec"):
    e = sign_ok(h, k[name], name, "parent-after"); assert e is None, e
print("parent signed after the child")
assert C_Finalize(None) == 0
PYEOF
rc=$?
n=$(token_fetches "$A/fork.err")
[ $rc -eq 0 ] && [ "$n" -eq 1 ] &&
    ok "fork: child C_Initialize ($(sed -n 's/^child C_Initialize //p' "$A/fork.out")), signs RSA+EC, verifies; parent signs after; one token fetch in all" ||
    { not_ok "fork: child re-initialises and signs, parent signs after, one token fetch (rc $rc, $n fetches)"; tail -n 5 "$A/fork.out" "$A/fork.err"; }

# ---- 3. faults: vaultd stopped -> CKR_DEVICE_ERROR; back on the same state and port -> signs ----
# The python process stays alive; it and this shell take turns through flag files in $A.
KVAULT_CONF="$CONF" KVAULT_LOG=debug p11py "$A" >"$A/fault.out" 2>"$A/fault.err" <<'PYEOF' &
from p11c import *
def waitfor(f): wait_flag(D, f)
def mark(f): set_flag(D, f)
assert C_Initialize(None) == 0
h = open_session(); k = keys(h)
for name in ("crsa", "cec"):
    e = sign_ok(h, k[name], name, "before"); print("before", name, e, flush=True)
mark("f.ready"); waitfor("f.stopped")
for name in ("crsa", "cec"):
    ri, rs, _ = sign(h, k[name], name, b"down")
    print("down %s SignInit 0x%x Sign 0x%x" % (name, ri, rs if rs is not None else 0xffff), flush=True)
mark("f.failed"); waitfor("f.restarted")
for name in ("crsa", "cec"):
    print("after-same", name, sign_ok(h, k[name], name, "after-same"), flush=True)
h2 = open_session(); k2 = keys(h2)
for name in ("crsa", "cec"):
    print("after-new", name, sign_ok(h2, k2[name], name, "after-new"), flush=True)
mark("f.freeze"); waitfor("f.frozen")
t0 = time.monotonic()
ri, rs, _ = sign(h, k["cec"], "cec", b"frozen")
print("frozen SignInit 0x%x Sign 0x%x" % (ri, rs if rs is not None else 0xffff), flush=True)
print("# frozen: C_Sign returned after %.1f s" % (time.monotonic() - t0), flush=True)
mark("f.failed2"); waitfor("f.thawed")
for name in ("crsa", "cec"):
    print("thawed", name, sign_ok(h, k[name], name, "thawed"), flush=True)
print("finalize 0x%x" % C_Finalize(None), flush=True)
PYEOF
PYPID=$!
if wait_file "$A/f.ready"; then
    stop_vaultd
    touch "$A/f.stopped"
    wait_file "$A/f.failed"
    start_vaultd || not_ok "vaultd restarts on the same state and port"
    touch "$A/f.restarted"
    # vaultd frozen (SIGSTOP by PID): connections hang, the configured timeout must end them
    if wait_file "$A/f.freeze" && [ -n "$VAULTD_PID" ]; then
        kill -STOP "$VAULTD_PID"
        touch "$A/f.frozen"
        wait_file "$A/f.failed2"
        kill -CONT "$VAULTD_PID"
        touch "$A/f.thawed"
    fi
fi
wait "$PYPID"
rc=$?
cat "$A/fault.out" >"$T_TMP/last.out"
[ "$(grep -c '^before .* None$' "$A/fault.out")" -eq 2 ] &&
    ok "faults: RSA and EC sign before vaultd stops" ||
    not_ok "faults: RSA and EC sign before vaultd stops ($(grep '^before' "$A/fault.out" | tr '\n' ';'))"
[ "$(grep -c '^down .* SignInit 0x0 Sign 0x30$' "$A/fault.out")" -eq 2 ] &&
    ok "faults: vaultd stopped: C_Sign returns CKR_DEVICE_ERROR (0x30) for RSA and EC (timeout = 3)" ||
    { not_ok "faults: vaultd stopped: C_Sign returns CKR_DEVICE_ERROR (got: $(grep '^down' "$A/fault.out" | tr '\n' ';'))"; tail -n 5 "$A/fault.err"; }
[ "$(grep -c '^after-same .* None$' "$A/fault.out")" -eq 2 ] &&
    ok "faults: vaultd back on the same state and port: the same session signs again (no C_Finalize, no reload)" ||
    { not_ok "faults: vaultd back: the same session signs again ($(grep '^after-same' "$A/fault.out" | tr '\n' ';'))"; tail -n 5 "$A/fault.err"; }
[ "$(grep -c '^after-new .* None$' "$A/fault.out")" -eq 2 ] &&
    ok "faults: vaultd back: a new session signs again" ||
    not_ok "faults: vaultd back: a new session signs again ($(grep '^after-new' "$A/fault.out" | tr '\n' ';'))"
grep -q '^frozen SignInit 0x0 Sign 0x30$' "$A/fault.out" &&
    ok "faults: vaultd frozen (SIGSTOP): C_Sign returns CKR_DEVICE_ERROR (0x30) instead of hanging (timeout = 3)" ||
    { not_ok "faults: vaultd frozen: C_Sign returns CKR_DEVICE_ERROR ($(grep '^frozen' "$A/fault.out" | tr '\n' ';'))"; tail -n 5 "$A/fault.err"; }
grep '^# frozen' "$A/fault.out"
# C_SignInit (the key is cached) and C_Sign (one vault call): the timeout plus 2 s of slack
# (an ASan build, a busy machine)
frozen_s=$(sed -n 's/^# frozen: C_Sign returned after \([0-9.]*\) s$/\1/p' "$A/fault.out")
[ -n "$frozen_s" ] && awk -v e="$frozen_s" -v t="$TIMEOUT" 'BEGIN { exit !(e <= t + 2) }' &&
    ok "faults: vaultd frozen: C_Sign returns within timeout + 2 s (${frozen_s} s, timeout = $TIMEOUT)" ||
    not_ok "faults: vaultd frozen: C_Sign returns within timeout + 2 s (took ${frozen_s:-?} s, timeout = $TIMEOUT)"
[ "$(grep -c '^thawed .* None$' "$A/fault.out")" -eq 2 ] &&
    ok "faults: vaultd resumed (SIGCONT): the same session signs RSA and EC again" ||
    { not_ok "faults: vaultd resumed: the same session signs again ($(grep '^thawed' "$A/fault.out" | tr '\n' ';'))"; tail -n 5 "$A/fault.err"; }
[ $rc -eq 0 ] && grep -q '^finalize 0x0$' "$A/fault.out" &&
    ok "faults: the process exits cleanly (C_Finalize CKR_OK, no crash)" ||
    { not_ok "faults: the process exits cleanly (rc $rc)"; tail -n 5 "$A/fault.out" "$A/fault.err"; }

# ---- 4. sessions in several threads run in parallel, not behind one lock ----
# vaultd frozen (SIGSTOP): every request stays in flight. N threads sign at once on their own
# sessions; the process counts its own established connections to vaultd (/proc): N of them
# can only be open at the same time if the N calls are in flight together (one lock around the
# vault call would allow one). No wall clock is asserted: the count is polled for up to 8 s.
CONF10="$A/client10.conf"
sed "s/^timeout = $TIMEOUT\$/timeout = 15/" "$CONF" >"$CONF10"
chmod 600 "$CONF10"
KVAULT_CONF="$CONF10" p11py "$A" "$VAULTD_PORT" >"$A/par.out" 2>"$A/par.err" <<'PYEOF' &
from p11c import *
import re
PORT = int(sys.argv[3]); N = 6
def mark(f): set_flag(D, f)
def conns():  # this process's established TCP connections to vaultd
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try: m = re.match(r"socket:\[(\d+)\]", os.readlink("/proc/self/fd/" + fd))
        except OSError: continue
        if m: inodes.add(m.group(1))
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try: rows = open(f).read().splitlines()[1:]
        except OSError: continue
        for r in rows:
            p = r.split()
            if int(p[2].rsplit(":", 1)[1], 16) == PORT and p[3] == "01" and p[9] in inodes: n += 1
    return n
assert C_Initialize(None) == 0
hs = [open_session() for _ in range(N)]; ks = [keys(h) for h in hs]
print("idle connections before", conns(), flush=True)
mark("p.ready"); wait_flag(D, "p.frozen")
res = [None] * N
def run(i): res[i] = sign_ok(hs[i], ks[i]["cec"], "cec", "par%d" % i)
ts = [threading.Thread(target=run, args=(i,)) for i in range(N)]
[t.start() for t in ts]
peak, t0 = 0, time.monotonic()
while time.monotonic() - t0 < 8 and peak < N:
    peak = max(peak, conns()); time.sleep(0.05)
print("peak connections", peak, flush=True)
mark("p.counted"); wait_flag(D, "p.thawed")
[t.join() for t in ts]
print("errors after thaw", [e for e in res if e], flush=True)
assert C_Finalize(None) == 0
PYEOF
PYPID=$!
if wait_file "$A/p.ready" && [ -n "$VAULTD_PID" ]; then
    kill -STOP "$VAULTD_PID"
    touch "$A/p.frozen"
    wait_file "$A/p.counted"
    kill -CONT "$VAULTD_PID"
    touch "$A/p.thawed"
fi
wait "$PYPID"
rc=$?
peak=$(sed -n 's/^peak connections //p' "$A/par.out")
[ $rc -eq 0 ] && [ "${peak:-0}" -ge 6 ] &&
    ok "6 threads sign at once: 6 vault requests in flight together (no lock around vault calls)" ||
    { not_ok "6 threads sign at once: 6 requests in flight together (peak ${peak:-?}, rc $rc)"; tail -n 5 "$A/par.out" "$A/par.err"; }
grep -q '^errors after thaw \[\]$' "$A/par.out" &&
    ok "... and all 6 signatures verify once vaultd resumes" ||
    not_ok "... and all 6 signatures verify once vaultd resumes ($(grep '^errors' "$A/par.out"))"

# no client secret and no JWT (bearer token) in what kvault.so logged at debug level
SECRET=$(conf_get client_secret)
if [ -n "$SECRET" ] && ! grep -qF -e "$SECRET" -e "eyJ" "$A"/*.err "$A"/*.out; then
    ok "debug logs of the three processes hold no client secret or token"
else not_ok "debug logs of the three processes hold no client secret or token"; fi

finish
