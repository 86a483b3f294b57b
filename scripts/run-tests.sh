#!/bin/bash
# Installs what qio needs, builds it, and runs every test: the full suite
# (unit, functional and interop tests with real peers) in a normal build,
# the unit tests and the fuzz replay again under AddressSanitizer and UBSan,
# and `make distcheck`.
# Ends with "tests: N passed, N failed" counted from the TAP results.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/install-deps.sh" || { echo "tests: 0 passed, 1 failed"; exit 1; }

jobs=$(nproc)
status=0
./autogen.sh >/dev/null 2>build-autogen.log || { cat build-autogen.log; echo "tests: 0 passed, 1 failed"; exit 1; }

run_suite() { # name, configure flags, make check flags
  local dir=$1; shift
  local flags=$1; shift
  mkdir -p "$dir"
  ( cd "$dir" && "$top/configure" --enable-werror $flags >configure.log 2>&1 ) || {
    cat "$dir/configure.log"; return 1; }
  make -C "$dir" -j"$jobs" >"$dir/make.log" 2>&1 || { tail -50 "$dir/make.log"; return 1; }
  # Line-buffered, so that output cut off by a time limit ends at the last
  # result rather than at the last 4 KiB block.
  make -C "$dir" -j"$jobs" check "$@" 2>&1 | tee "$dir/check.log" | grep --line-buffered -E '^(PASS|FAIL|ERROR|XPASS|SKIP):'
  return "${PIPESTATUS[0]}"
}

echo "== full suite"
run_suite build-tests "" || status=1
echo "== unit tests and the fuzz replay under ASan+UBSan"
run_suite build-sanitizers "--enable-sanitizers" \
  TESTS='$(unit_tests) tests/fuzz/test-fuzz-replay.sh' || status=1
if [ -z "${QIO_SKIP_DISTCHECK:-}" ]; then
  echo "== make distcheck"
  make -C build-tests -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
    TESTS='$(unit_tests)' >build-tests/distcheck.log 2>&1 || {
    tail -40 build-tests/distcheck.log; echo "FAIL: make distcheck"; status=1; }
fi

count() { cat "$top"/build-tests/tests/*/*.trs "$top"/build-sanitizers/tests/*/*.trs \
  2>/dev/null | grep -c "^:test-result: $1" ; }
passed=$(count PASS)
failed=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) ))
# What each failed test said about its failure, so that a CI run that shows
# only its last lines still shows why.
for trs in "$top"/build-tests/tests/*/*.trs "$top"/build-sanitizers/tests/*/*.trs; do
  [ -e "$trs" ] && grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
  log=${trs%.trs}.log
  echo "== ${log#"$top"/}"
  awk '/^(not ok|Bail out!)/ { show = 1; print; next }
       show && /^#/ { print; next } { show = 0 } / took [0-9]+ s$/' "$log" | head -40
done
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
