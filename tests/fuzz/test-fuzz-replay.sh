#!/bin/bash
# Every fuzz harness (one per directory of seeds), built by the ordinary build with tests/fuzz/fuzz-replay.cc
# as its main(), replays its seeds (tests/fuzz/corpus/NAME) and inputs made
# here from problems fuzzing found: JSON nested 200 000 deep, which
# overflowed json-glib's stack from -object, authz rules and a migration
# source's device state, also behind a comment or a single-quoted string
# holding a quote (json-glib reads both, and they once hid the brackets
# from the depth check); through QMP (its harness takes 16 KiB) 16 000
# deep; dotted keys 3 000 components long.  A harness that crashes or
# reports a broken promise fails.
here=$(cd "$(dirname "$0")" && pwd)
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
# $2 copies of $1, without newlines.
repeat() { yes "$1" | head -n "$2" | tr -d '\n'; }
made() { mkdir -p "$tmp/$1" && cat >"$tmp/$1/$2"; }

for open in '[' '{"a":'; do
  name=$(printf %s "$open" | tr -c 'a-z[' '_')
  { printf '{"qom-type":"authz-list","id":"a","rules":'; repeat "$open" 200000; } |
    made fuzz-object-add "deep$name"
  for hide in '/*"*/' '/"/' "['\"',"; do
    { printf '{"qom-type":"secret","id":"s","data":%s' "$hide"; repeat "$open" 200000; } |
      made fuzz-object-add "hidden$name-$(printf %s "$hide" | od -An -tx1 | tr -d ' \n')"
  done
  { printf '\006'; repeat "$open" 200000; } | made fuzz-options "authz-rules-deep$name"
  { printf '{"serial":'; repeat "$open" 200000; } | made fuzz-migration-devices "deep$name"
  { printf '{"execute":"qmp_capabilities"}\n{"execute":"x","arguments":'; repeat "$open" 16000; } |
    made fuzz-qmp-server "deep$name"
done
# Dotted keys: memory grew with the square of their depth.
{ printf '\000secret,id=s'; repeat .k 3000; printf '=1'; } |
  made fuzz-options keyval-deep-dots

# Every harness has its seeds directory.
for seeds in "$here"/corpus/*/; do
  name=$(basename "$seeds")
  args=("$seeds")
  [ -d "$tmp/$name" ] && args+=("$tmp/$name")
  n=$((n + 1))
  if [ ! -x "$build/tests/fuzz/$name" ]; then
    echo "not ok $n - $name: $build/tests/fuzz/$name was not built"
  elif "$build/tests/fuzz/$name" "${args[@]}" >"$tmp/out" 2>&1; then
    echo "ok $n - $name: $(tail -n 1 "$tmp/out")"
  else
    echo "not ok $n - $name (exit status $?)"
    tail -n 15 "$tmp/out" | sed 's/^/# /'
  fi
done
echo "1..$n"
