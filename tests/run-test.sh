#!/bin/sh
# Runs one test for the TAP driver: GLib test programs get --tap -k,
# scripts speak TAP themselves.
case "$1" in
  *.sh|*.py) exec "$@" ;;
  *) exec "$@" --tap -k ;;
esac
