#!/bin/sh
# Installs every Debian 12 package kvault needs to build, test and demo.
# Idempotent: apt-get only installs what is missing.
set -eu
PKGS="build-essential pkg-config meson ninja-build
libssl-dev openssl libcurl4-openssl-dev libjansson-dev libsqlite3-dev sqlite3
libevent-dev libp11-kit-dev p11-kit softhsm2 libcmocka-dev
opensc gnutls-bin curl ca-certificates python3 python3-cryptography xxd procps
libengine-pkcs11-openssl p11-kit-modules openssh-client openssh-server util-linux"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm run the Azure SDK test (tests/sdk); the machine image may already have them.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Packages such as openssh-server would start their system service on install: tests start
    # their own daemons on loopback only, so service starts are refused while apt runs (the
    # standard policy-rc.d mechanism; an existing policy is left as it is).
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
    if [ -n "$own_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
# The Azure SDKs need Node.js >= 20 and Debian 12's nodejs is 18: then npm installs node 20 from
# the npm registry (the package node-linux-<arch> ships the official binary) as /usr/local/bin/node.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    case "$(uname -m)" in aarch64) node_arch=arm64 ;; *) node_arch=x64 ;; esac
    $SUDO npm install -g --no-audit --no-fund "node-linux-$node_arch@20.20.2"
    hash -r
fi
