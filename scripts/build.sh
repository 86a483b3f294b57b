#!/bin/sh
# Installs the build dependencies and builds qio in ./build (used by the demo).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/install-deps.sh"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || "$top/configure" >/dev/null
make -j"$(nproc)" >/dev/null
