#!/bin/bash
# run.sh - build the minimal HTTPS servers (one per candidate library) with cc + pkg-config and
# measure them on 127.0.0.1 only: keep-alive requests/s with wrk, full-handshake rate with
# `openssl s_time -new`. Bounded in time (about 25 s per server per round) and stops by itself.
# Needs: build-essential pkg-config openssl curl wrk libssl-dev libevent-dev libmicrohttpd-dev
#        libgnutls28-dev libcivetweb-dev libh2o-evloop-dev.  Tunables (env): KV_BENCH_ROUNDS (2),
#        KV_BENCH_DURATION (10 s wrk), KV_BENCH_HS_TIME (5 s s_time), KV_BENCH_PORT (18443).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${KV_BENCH_ROUNDS:-2}
DUR=${KV_BENCH_DURATION:-10}
HS_TIME=${KV_BENCH_HS_TIME:-5}
PORT=${KV_BENCH_PORT:-18443}
URL="https://127.0.0.1:${PORT}/"
CFLAGS="-std=gnu11 -O2 -Wall -Wextra -pthread"
WORK=$(mktemp -d /tmp/kv-http-bench.XXXXXX)
SRV_PID=""
CLK_TCK=$(getconf CLK_TCK)

kv_stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
        SRV_PID=""
    fi
}
kv_cleanup() {
    kv_stop_server
    rm -rf "$WORK"
}
trap kv_cleanup EXIT
trap 'exit 130' INT TERM

for tool in cc pkg-config openssl curl wrk; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

# --- build (a missing library only skips that candidate) ---
declare -A BUILT
kv_build() { # name pkg-config-modules|"-" extra-libs
    local name=$1 mods=$2 extra=$3 flags=""
    if [ "$mods" != "-" ]; then
        # shellcheck disable=SC2086 # $mods is a space-separated module list
        flags=$(pkg-config --cflags --libs $mods 2>/dev/null) || {
            echo "skip $name: pkg-config $mods not found" >&2
            return
        }
    fi
    # shellcheck disable=SC2086
    if cc $CFLAGS -o "$WORK/srv_$name" "$HERE/srv_$name.c" $flags $extra; then
        BUILT[$name]=1
    else
        echo "skip $name: build failed" >&2
    fi
}
kv_build libevent "libevent_openssl libevent_pthreads openssl" ""
kv_build mhd "libmicrohttpd" ""
kv_build civetweb "-" "-lcivetweb" # Debian ships no civetweb.pc
kv_build h2o "libh2o-evloop openssl" ""
[ -n "${BUILT[libevent]:-}" ] && BUILT[libevent-cl]=1 # same binary, "changelist" argument

# --- throw-away P-256 server certificate for 127.0.0.1 ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || exit 1
cat "$WORK/key.pem" "$WORK/cert.pem" >"$WORK/keycert.pem"

kv_start_server() { # name -> 0 when it answers GET / with the 60-byte body
    local name=$1 i body
    case $name in
    civetweb) "$WORK/srv_civetweb" "$PORT" "$WORK/keycert.pem" >"$WORK/$name.log" 2>&1 & ;;
    libevent-cl)
        "$WORK/srv_libevent" "$PORT" "$WORK/cert.pem" "$WORK/key.pem" changelist \
            >"$WORK/$name.log" 2>&1 &
        ;;
    *) "$WORK/srv_$name" "$PORT" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/$name.log" 2>&1 & ;;
    esac
    SRV_PID=$!
    for i in $(seq 50); do
        grep -q ready "$WORK/$name.log" 2>/dev/null && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    body=$(curl -sS --max-time 3 --cacert "$WORK/cert.pem" "$URL" 2>>"$WORK/$name.log")
    sleep 0.2
    if [ "${#body}" -ne 60 ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
        echo "  $name: smoke test FAILED: $(tail -n 2 "$WORK/$name.log" | tr '\n' ' ')" >&2
        kv_stop_server
        return 1
    fi
    return 0
}

kv_cpu_ticks() { # utime+stime of the server process
    awk '{print $14 + $15}' "/proc/$SRV_PID/stat" 2>/dev/null || echo 0
}

# Full handshakes/s: two concurrent `openssl s_time -new` clients (no session reuse; note that
# wrk itself resumes TLS sessions on reconnect, so `wrk -H "Connection: close"` would not measure
# full handshakes). Clients share the 2 CPUs with the server, so this is a same-box figure.
kv_handshakes() {
    local start end pids="" i n
    start=$(date +%s.%N)
    for i in 1 2; do
        timeout $((HS_TIME + 15)) openssl s_time -connect "127.0.0.1:$PORT" -new -time "$HS_TIME" \
            </dev/null >"$WORK/s_time.$i" 2>&1 &
        pids="$pids $!"
    done
    # shellcheck disable=SC2086
    wait $pids
    end=$(date +%s.%N)
    n=$(cat "$WORK/s_time.1" "$WORK/s_time.2" | awk '/connections in [0-9.]+s;/ {n += $1} END {print n + 0}')
    awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}'
}

echo "# kvault HTTPS server benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo "# $(uname -sr); $(openssl version | cut -d' ' -f1-2); keep-alive: wrk -t2 -c16 -d${DUR}s;" \
    "handshakes: 2 x openssl s_time -new -time ${HS_TIME} (TLS 1.3, X25519, ECDSA P-256)"
echo
echo "| round | server | negotiated (default OpenSSL client) | req/s keep-alive | wrk avg latency | wrk errors | server CPU s during wrk | req per server CPU-s | full handshakes/s |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
    for name in libevent libevent-cl mhd civetweb h2o; do
        if [ -z "${BUILT[$name]:-}" ]; then
            echo "| $round | $name | not built | - | - | - | - | - | - |"
            continue
        fi
        if ! kv_start_server "$name"; then
            echo "| $round | $name | FAILED smoke test (crash or no answer) | - | - | - | - | - | - |"
            continue
        fi
        proto=$(timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -brief </dev/null 2>&1 |
            awk -F': ' '/^Protocol version/ {p=$2} /^Ciphersuite/ {c=$2} /Peer Temp Key|Server Temp Key|Negotiated TLS1.3 group/ {g=$2}
                END {printf "%s %s %s", p, c, g}')
        t0=$(kv_cpu_ticks)
        wrk_out=$(timeout $((DUR + 20)) wrk -t2 -c16 -d"${DUR}s" "$URL" 2>&1)
        t1=$(kv_cpu_ticks)
        rps=$(echo "$wrk_out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
        lat=$(echo "$wrk_out" | awk '/^ +Latency/ {print $2}')
        errs=$(echo "$wrk_out" | awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}')
        cpu=$(awk -v a="$t0" -v b="$t1" -v h="$CLK_TCK" 'BEGIN {printf "%.1f", (b - a) / h}')
        per_cpu=$(awk -v r="${rps:-0}" -v c="$cpu" -v d="$DUR" 'BEGIN {printf "%.0f", (c > 0 ? r * d / c : 0)}')
        hs=$(kv_handshakes)
        alive=""
        kill -0 "$SRV_PID" 2>/dev/null || alive=" (server died)"
        echo "| $round | $name$alive | $proto | ${rps:-n/a} | ${lat:-n/a} | ${errs:-0} | $cpu | $per_cpu | $hs |"
        kv_stop_server
        sleep 1
    done
done
