#!/bin/sh
# Runs one test for the TAP driver: GLib test programs get --tap -k,
# scripts speak TAP themselves.  A test still running after
# QIO_TEST_TIMEOUT seconds (default 600) is killed and reported, so that a
# hang fails the run instead of stalling it; each log ends with the time
# the test took.
limit=${QIO_TEST_TIMEOUT:-600}
start=$(date +%s)
case "$1" in
  *.sh|*.py) timeout --kill-after=10 "$limit" "$@" ;;
  *) timeout --kill-after=10 "$limit" "$@" --tap -k ;;
esac
status=$?
case "$status" in
  124) echo "Bail out! $1 did not finish within $limit s (QIO_TEST_TIMEOUT)" ;;
  137) echo "Bail out! $1 was killed (SIGKILL: it outlived QIO_TEST_TIMEOUT and SIGTERM, or ran out of memory)" ;;
esac
echo "# $1 took $(( $(date +%s) - start )) s"
exit "$status"
