#!/bin/sh
# Installs every Debian 12 package kvault needs to build, test and demo.
# Idempotent: apt-get only installs what is missing.
set -eu
PKGS="build-essential pkg-config meson ninja-build
libssl-dev openssl libcurl4-openssl-dev libjansson-dev libsqlite3-dev sqlite3
libevent-dev libp11-kit-dev p11-kit softhsm2 libcmocka-dev
opensc gnutls-bin curl ca-certificates python3 xxd procps"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
