#!/bin/bash
# test_ssh.sh - OpenSSH with vault keys through kvault.so: ssh-keygen -D prints the vault's RSA
# and EC P-256 keys (compared with the vault's public keys), a private sshd on a free loopback
# port (its own sshd_config, host key, authorized_keys and pid file under $T_TMP; the system
# sshd and its configuration are never touched) accepts `ssh -I kvault.so` logins with either
# key and refuses a vault key that is not authorized; then the same through ssh-agent
# (`ssh-agent -P` allow-list, `ssh-add -s kvault.so`), and through p11-kit-proxy.so with kvault
# registered in a private p11-kit module directory (see test_p11_tools.sh).
# Only the processes this test starts are stopped, by PID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SSHD_PID=""
AGENT_PIDS=""
ssh_cleanup() {
    local p
    for p in $AGENT_PIDS $SSHD_PID; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    kv_cleanup
}
trap ssh_cleanup EXIT

vaultd_setup
S="$T_TMP/ssh"
mkdir -p "$S"
TOKEN=$(get_token)
SSHD=/usr/sbin/sshd
PROXY=$(find /usr/lib/*/p11-kit-proxy.so /usr/lib/p11-kit-proxy.so 2>/dev/null | head -n1)
# ssh-agent matches its -P patterns against the provider's real path (symlinks resolved)
PROXY_REAL=$(readlink -f "$PROXY" 2>/dev/null)
LOGIN=$(id -un)

# create_key NAME JSON: a vault key; $S/NAME.vault.pub gets its public key in OpenSSH format.
create_key() {
    rest_create_key "$1" "$2" "$S/create-$1.json" &&
        "$KVAULT" key download --vault-name dev --name "$1" --file "$S/$1.pem" &&
        ssh-keygen -i -m PKCS8 -f "$S/$1.pem" >"$S/$1.vault.pub"
}
check "create RSA-2048 key sshrsa" create_key sshrsa '{"kty":"RSA","key_size":2048}'
check "create EC P-256 key sshec" create_key sshec '{"kty":"EC","crv":"P-256"}'
check "create EC P-256 key sshother (never authorized)" create_key sshother '{"kty":"EC","crv":"P-256"}'

# ---- ssh-keygen -D ----
check "ssh-keygen -D kvault.so" timeout 120 ssh-keygen -D "$KV_SO"
cp "$T_TMP/last.out" "$S/keygen-D.out"
for k in sshrsa sshec sshother; do
    # $S/K.pub: the line of ssh-keygen -D for K (type, blob, label), used as -i for ssh.
    grep -E "^(ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+ $k\$" "$S/keygen-D.out" >"$S/$k.pub"
    chmod 600 "$S/$k.pub"
    [ "$(wc -l <"$S/$k.pub")" -eq 1 ] &&
        [ "$(cut -d' ' -f1-2 "$S/$k.pub")" = "$(cut -d' ' -f1-2 "$S/$k.vault.pub")" ] &&
        ok "ssh-keygen -D prints $k, the vault's public key" ||
        not_ok "ssh-keygen -D prints $k, the vault's public key"
done
grep -q "^ssh-rsa .* sshrsa$" "$S/keygen-D.out" && grep -q "^ecdsa-sha2-nistp256 .* sshec$" \
    "$S/keygen-D.out" && ok "ssh-keygen -D: ssh-rsa and ecdsa-sha2-nistp256 keys" ||
    not_ok "ssh-keygen -D: ssh-rsa and ecdsa-sha2-nistp256 keys"

# ---- a private sshd on loopback ----
cat "$S/sshrsa.pub" "$S/sshec.pub" >"$S/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -C kvault-test-host -f "$S/host_key"
SSH_PORT=$(free_port)
cat >"$S/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
EOF
# sshd (as root) needs its privilege separation directory, which the ssh service creates at start.
[ "$(id -u)" -ne 0 ] || [ -d /run/sshd ] || mkdir -m 0755 /run/sshd
"$SSHD" -D -f "$S/sshd_config" -E "$S/sshd.log" &
SSHD_PID=$!
for _ in $(seq 1 50); do
    grep -q "Server listening on 127.0.0.1 port $SSH_PORT" "$S/sshd.log" 2>/dev/null && break
    kill -0 "$SSHD_PID" 2>/dev/null || break
    sleep 0.1
done
if grep -q "Server listening on 127.0.0.1 port $SSH_PORT" "$S/sshd.log" 2>/dev/null; then
    ok "private sshd listens on 127.0.0.1:$SSH_PORT"
else
    not_ok "private sshd listens on 127.0.0.1:$SSH_PORT"
    sed 's/^/    # /' "$S/sshd.log" 2>/dev/null | head -n 20
fi
SSH=(timeout 120 ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile="$S/known_hosts" -o IdentitiesOnly=yes -p "$SSH_PORT")
# fp K: the SHA-256 fingerprint of vault key K.
fp() { ssh-keygen -l -E sha256 -f "$S/$1.vault.pub" | cut -d' ' -f2; }
# accepted K: sshd's log shows a public key login with vault key K.
# (sshd -E writes its log lines with CRLF endings, and the line may land a moment after the
# client has finished: the pre-authentication child logs through sshd's monitor)
accepted() {
    local pat="^Accepted publickey for $LOGIN from 127\.0\.0\.1 port [0-9]+ ssh2: (RSA|ECDSA) " f
    f=$(fp "$1") # (compared as a string: fingerprints hold '+')
    for _ in $(seq 1 50); do
        tr -d '\r' <"$S/sshd.log" | grep -E "$pat" | awk -v f="$f" '$NF == f {n++} END {exit !n}' &&
            return 0
        sleep 0.1
    done
    return 1
}

# ssh_ok DESC CMD...: CMD (an ssh that runs `echo ok-kvault`) logs in and prints ok-kvault.
ssh_ok() {
    local desc=$1
    shift
    if "$@" echo ok-kvault >"$T_TMP/last.out" 2>&1 && grep -qx ok-kvault "$T_TMP/last.out"; then
        ok "$desc"
    else
        not_ok "$desc"
        kv_show_last
    fi
}

# ---- ssh -I kvault.so ----
for k in sshec sshrsa; do
    ssh_ok "ssh -I kvault.so logs in with $k" "${SSH[@]}" -I "$KV_SO" -i "$S/$k.pub" "$LOGIN@127.0.0.1"
    accepted "$k" && ok "sshd accepted the vault key $k" || not_ok "sshd accepted the vault key $k"
done
# (ssh exits 255 on any error, so check_fails_with's "exit < 128" does not apply)
"${SSH[@]}" -I "$KV_SO" -i "$S/sshother.pub" "$LOGIN@127.0.0.1" echo ok-kvault >"$T_TMP/last.out" 2>&1
rc=$?
if [ "$rc" -eq 255 ] && grep -q "Permission denied (publickey)" "$T_TMP/last.out" &&
    ! grep -q ok-kvault "$T_TMP/last.out"; then
    ok "ssh -I kvault.so with the unauthorized vault key sshother is refused"
else
    not_ok "ssh -I kvault.so with the unauthorized vault key sshother is refused (exit $rc)"
    kv_show_last
fi

# ---- ssh-agent ----
# ssh-agent is setgid on Debian, so the dynamic loader drops LD_PRELOAD for it and for the
# ssh-pkcs11-helper it starts (which loads the module): in sanitizer builds the agent runs through
# the dynamic loader (no set-id exec) with the sanitizer runtimes preloaded.
AGENT=(ssh-agent)
if [ -n "$KV_ASAN_PRELOAD" ]; then
    LDSO=$(ldd /usr/bin/ssh-agent | awk '/ld-linux/ {print $1}')
    AGENT=(env LD_PRELOAD="$KV_ASAN_PRELOAD" "$LDSO" "$(command -v ssh-agent)")
fi
printf '#!/bin/sh\necho 1234\n' >"$S/askpass"
chmod 700 "$S/askpass"
# start_agent SOCKET PATTERN [RUNNER...]: an ssh-agent in the foreground (-D) whose PID is ours.
start_agent() {
    local sock=$1 pat=$2 pid
    shift 2
    "$@" "${AGENT[@]}" -D -a "$sock" -P "$pat" >>"$S/agent.log" 2>&1 &
    pid=$!
    AGENT_PIDS="$AGENT_PIDS $pid"
    for _ in $(seq 1 50); do
        [ -S "$sock" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# agent_add SOCKET PROVIDER: ssh-add -s PROVIDER (the PIN comes from the askpass script).
agent_add() {
    SSH_AUTH_SOCK=$1 SSH_ASKPASS="$S/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
        timeout 120 ssh-add -s "$2" </dev/null
}
A1="$S/agent1.sock"
check "ssh-agent -P (allow-list: this kvault.so) starts" start_agent "$A1" "$(readlink -f "$KV_SO")"
check "ssh-add -s kvault.so" agent_add "$A1" "$KV_SO"
check "ssh-add -l lists the vault keys" env SSH_AUTH_SOCK="$A1" ssh-add -l
for k in sshec sshrsa; do
    grep -q "$(fp "$k")" "$T_TMP/last.out" && ok "the agent holds $k" || not_ok "the agent holds $k"
done
for k in sshec sshrsa; do
    ssh_ok "ssh through ssh-agent logs in with $k" "${SSH[@]}" -o IdentityAgent="$A1" \
        -i "$S/$k.pub" "$LOGIN@127.0.0.1"
done
cp "$KV_SO" "$S/other-kvault.so"
check_fails_with "ssh-agent refuses a provider outside its -P allow-list" "agent refused|failed" \
    agent_add "$A1" "$S/other-kvault.so"

# ---- ssh-agent with p11-kit-proxy.so and kvault registered with p11-kit ----
# p11-kit 0.24 ignores ~/.config/pkcs11 as root: then the agent runs in a private mount
# namespace with the test's module directory over /usr/share/p11-kit/modules.
P11DIR="$S/p11-kit-modules"
mkdir -p "$P11DIR" "$S/home/.config/pkcs11"
sed "s|^module:.*|module: $KV_SO|" "$KV_SOURCE_DIR/conf/kvault.module" >"$P11DIR/kvault.module"
ln -s "$P11DIR" "$S/home/.config/pkcs11/modules"
# P11KIT_RUN: a command prefix that execs its command with that p11-kit configuration (same PID).
if [ "$(id -u)" -ne 0 ]; then
    P11KIT_RUN=(env HOME="$S/home")
else
    P11KIT_RUN=(unshare -m --propagation private sh -c
        'mount --bind "$0" /usr/share/p11-kit/modules && exec "$@"' "$P11DIR")
fi
A2="$S/agent2.sock"
if [ -z "$PROXY" ]; then
    not_ok "p11-kit-proxy.so installed (p11-kit-modules)"
else
    check "ssh-agent for p11-kit-proxy.so starts" start_agent "$A2" "$PROXY_REAL" "${P11KIT_RUN[@]}"
    check "ssh-add -s p11-kit-proxy.so" agent_add "$A2" "$PROXY"
    check "ssh-add -l (p11-kit-proxy agent)" env SSH_AUTH_SOCK="$A2" ssh-add -l
    grep -q "$(fp sshec)" "$T_TMP/last.out" && ok "the p11-kit-proxy agent holds sshec" ||
        not_ok "the p11-kit-proxy agent holds sshec"
    ssh_ok "ssh through the p11-kit-proxy agent logs in with sshec" "${SSH[@]}" \
        -o IdentityAgent="$A2" -i "$S/sshec.pub" "$LOGIN@127.0.0.1"
fi

finish
