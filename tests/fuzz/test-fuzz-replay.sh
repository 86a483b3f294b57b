#!/bin/bash
# Every fuzz harness (one per directory of seeds), built by the ordinary build
# with tests/fuzz/fuzz-replay.cc as its main(), replays its seeds
# (tests/fuzz/corpus/NAME) and inputs made here from what fuzzing found:
# JSON nested 200 000 deep, which overflowed json-glib's stack from -object,
# authz rules and a migration source's device state, and through -object
# also behind a comment or a single-quoted string holding a quote (json-glib
# reads both, and they once hid the brackets from the depth check).  A
# harness that crashes or reports a broken promise fails, and so does a
# harness without seeds or inputs made for a harness that is not there.
# The replay cannot see a harness ignoring an input (its size limit, say):
# each input here was checked to crash its harness without its fix.
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
done

# Harnesses, seeds and made inputs must match up.
for harness in "$build"/tests/fuzz/fuzz-*; do
  name=$(basename "$harness")
  [ -x "$harness" ] && [ ! -d "$here/corpus/$name" ] || continue
  n=$((n + 1))
  echo "not ok $n - $name has no seeds in tests/fuzz/corpus/$name/"
done
for made in "$tmp"/*/; do
  name=$(basename "$made")
  [ -d "$here/corpus/$name" ] && continue
  n=$((n + 1))
  echo "not ok $n - inputs made for $name, which has no seeds (a typo?)"
done
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
