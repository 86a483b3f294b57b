#!/bin/sh
# Writes a header that includes every installed public header, from the
# lists in the Makefile, for the C API test.
for h in "$@"; do
  case "$h" in *.h) echo "#include \"$h\"" ;; esac
done
