#!/bin/sh
# The main command until the daemon exists: installs the dependencies,
# builds qio in ./build (scripts/build.sh) and runs tools/qio-demo, which
# moves data through qio socket channels over loopback TCP and a UNIX
# socket, verifies a checksum at the receiver and prints the throughput.
# Arguments go to qio-demo (e.g. --size 512M).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
echo "== building qio (scripts/build.sh)"
"$top/scripts/build.sh"
echo "== running the demo"
exec "$top/build/tools/qio-demo" "$@"
