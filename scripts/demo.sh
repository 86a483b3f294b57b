#!/bin/sh
# The main command: installs the dependencies, builds qio in ./build
# (scripts/build.sh) and runs the live-migration demo
# (scripts/migration-demo.py): two qiod processes on this machine, a
# throwaway PKI made with qio-pki, a guest dirtying its memory, a
# migration over TLS with mutual x509 authentication, its progress, and a
# summary ending in "RAM and disks identical: yes".  Arguments go to the
# demo (e.g. --ram 2G --dirty-rate 50000).  The channel demo of the
# earlier releases is still there: build/tools/qio-demo.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
echo "== building qio (scripts/build.sh)"
"$top/scripts/build.sh"
echo "== live migration demo"
exec /usr/bin/python3 "$top/scripts/migration-demo.py" --builddir "$top/build" "$@"
