#!/bin/sh
# `make fuzz`: runs each libFuzzer harness given for QIO_FUZZ_SECONDS
# (default 30) seconds, one after the other, starting from its seeds in
# CORPUS_DIR/NAME/ (read only) and keeping what it learns in
# tests/fuzz/work/NAME/.  A crash, leak, timeout or out-of-memory is saved
# as tests/fuzz/crashes/NAME-crash-... (run the harness on that file to
# reproduce it) and fails the run.
# Usage: run-fuzz.sh CORPUS_DIR HARNESS...
corpus=$1
shift
seconds=${QIO_FUZZ_SECONDS:-30}
mkdir -p tests/fuzz/crashes
failed=
for harness in "$@"; do
  name=$(basename "$harness")
  mkdir -p "tests/fuzz/work/$name"
  log="tests/fuzz/work/$name.log"
  seeds=
  [ -d "$corpus/$name" ] && seeds="$corpus/$name"
  echo "  FUZZ     $name (${seconds}s)"
  if "$harness" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="tests/fuzz/crashes/$name-" \
      "tests/fuzz/work/$name" $seeds > "$log" 2>&1; then
    sed -n 's/^stat::number_of_executed_units: */           runs: /p' "$log"
  else
    echo "FAIL: $name; the end of $log:"
    tail -n 30 "$log"
    failed="$failed $name"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing found problems in:$failed (inputs in tests/fuzz/crashes/)"
  exit 1
fi
echo "fuzzing: $# harnesses, nothing found"
