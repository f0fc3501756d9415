#!/bin/sh
# Builds kvault into BUILD_DIR (default ./build). Set KV_SANITIZE=1 for an ASan+UBSan build.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
if [ "${KV_SANITIZE:-0}" = 1 ]; then
    set -- -Db_sanitize=address,undefined -Db_lundef=false
else
    set --
fi
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" --werror "$@" >/dev/null
fi
ninja -C "$BUILD_DIR" >/dev/null
