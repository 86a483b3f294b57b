#!/bin/bash
# DESIGN.md's layering rules, checked mechanically: only qcrypto/ includes
# GnuTLS or SASL headers, only qio/ makes socket system calls.
src=${QIO_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1
files=$(find qio qcrypto qom monitor migration nbd chardev ui host tools \
  \( -name '*.cc' -o -name '*.h' \) 2>/dev/null | sort)
crypto=$(echo "$files" | grep -v '^qcrypto/' | xargs -r grep -lE '#include *[<"](gnutls/|sasl/)')
sock=$(echo "$files" | grep -v '^qio/' | xargs -r grep -lE \
  '(^|[^_[:alnum:]])(socket|connect|accept4?|bind|listen|sendmsg|recvmsg|setsockopt|socketpair)[[:space:]]*\(')
if [ -z "$crypto" ]; then echo "ok 1 - GnuTLS and SASL headers only in qcrypto/"
else echo "not ok 1 - GnuTLS and SASL headers only in qcrypto/"; echo "# $crypto"; fi
if [ -z "$sock" ]; then echo "ok 2 - socket system calls only in qio/"
else echo "not ok 2 - socket system calls only in qio/"; echo "# $sock"; fi
[ -n "$files" ] && echo "ok 3 - found $(echo "$files" | wc -l) source files to check" \
  || echo "not ok 3 - found source files to check"
echo "1..3"
