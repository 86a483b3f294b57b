#!/bin/bash
# NBD whole-image read throughput: nbdcopy reads a random raw image in
# /dev/shm into null: from qio-nbd, qemu-nbd and nbdkit (file plugin), each
# with nbdcopy's default multi-conn and with --connections=1, over loopback
# TCP, plain and with TLS (x509, verify-peer, certificates made by certtool).  Servers and clients alternate within each round; medians of
# QIO_BENCH_ROUNDS (default 3) runs are printed as
#   bench name=<id> value=<GiB/s> unit=GiB/s baseline=<GiB/s> ratio=<qio/baseline>
# Options: --size 1G|2G (default 1G; QIO_BENCH_NBD_SIZE also works).
# Run by hand or with `make bench-nbd`; never part of make check.
set -u
size=${QIO_BENCH_NBD_SIZE:-1G}
rounds=${QIO_BENCH_ROUNDS:-3}
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --size=*) size=${1#--size=}; shift ;;
    *) echo "usage: $0 [--size 1G|2G]" >&2; exit 1 ;;
  esac
done
case $size in 1G|2G|512M|256M) ;; *) echo "bench-nbd: --size must be 256M, 512M, 1G or 2G" >&2; exit 1 ;; esac
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
qionbd=$build/tools/qio-nbd
for p in "$qionbd" qemu-nbd nbdkit nbdcopy certtool; do
  command -v "$p" >/dev/null || { echo "bench-nbd: $p not found" >&2; exit 1; }
done

dir=$(mktemp -d /dev/shm/bench-nbd.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
img=$dir/img
head -c "$size" /dev/urandom >"$img"
bytes=$(stat -c %s "$img")

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# Certificates for the TLS cases (certtool; BASELINES.md's layout).
pki=$dir/pki
mkdir -p "$pki"
bash "$(dirname "$0")/../functional/nbd-pki.sh" "$pki" || { echo "bench-nbd: certtool failed" >&2; exit 1; }

declare -A port
start_servers() { # plain|tls
  local tls=() qtls=() ktls=()
  if [ "$1" = tls ]; then
    tls=(--object "tls-creds-x509,id=tls0,endpoint=server,dir=$pki/srv,verify-peer=on" --tls-creds tls0)
    ktls=(--tls=require --tls-certificates="$pki/srv" --tls-verify-peer)
  fi
  port[qio]=$(free_port)
  "$qionbd" "${tls[@]}" -r -t -e 16 -b 127.0.0.1 -p "${port[qio]}" -x disk -f raw "$img" 2>/dev/null & pids+=($!)
  port[qemu-nbd]=$(free_port)
  qemu-nbd "${tls[@]}" --read-only --persistent --shared=16 --bind=127.0.0.1 --port="${port[qemu-nbd]}" \
    --export-name=disk --format=raw "$img" 2>/dev/null & pids+=($!)  # quiet about the port probes
  port[nbdkit]=$(free_port)
  nbdkit "${ktls[@]}" --foreground --readonly --ipaddr 127.0.0.1 --port "${port[nbdkit]}" --exportname disk \
    file "$img" 2>/dev/null & pids+=($!)
  for s in qio qemu-nbd nbdkit; do wait_port "${port[$s]}" || { echo "bench-nbd: $s did not start" >&2; exit 1; }; done
}
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }

# One timed copy: prints GiB/s.
run() { # server, security, extra nbdcopy args...
  local s=$1 sec=$2; shift 2
  local t0 t1 uri="nbd://127.0.0.1:${port[$s]}/disk"
  [ "$sec" = tls ] && uri="nbds://127.0.0.1:${port[$s]}/disk?tls-certificates=$pki/cli"
  t0=$(date +%s.%N)
  nbdcopy "$@" "$uri" null: || { echo "bench-nbd: nbdcopy from $s ($sec) failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$bytes $t0 $t1" | awk '{printf "%.3f\n", $1 / 1073741824 / ($3 - $2)}'
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for sec in plain tls; do
  start_servers $sec
  for mode in multiconn conn1; do
    args=()
    [ $mode = conn1 ] && args=(--connections=1)
    declare -A res=()
    for s in qio qemu-nbd nbdkit; do res[$s]=""; done
    for _ in $(seq "$rounds"); do
      for s in qio qemu-nbd nbdkit; do res[$s]+="$(run $s $sec "${args[@]}") "; done
    done
    declare -A med=()
    for s in qio qemu-nbd nbdkit; do med[$s]=$(echo "${res[$s]}" | tr ' ' '\n' | grep . | median); done
    for b in qemu-nbd nbdkit; do
      ratio=$(awk -v a="${med[qio]}" -v b="${med[$b]}" 'BEGIN {printf "%.2f", a / b}')
      echo "bench name=nbd-read-$size-$sec-$mode-qio-vs-$b value=${med[qio]} unit=GiB/s baseline=${med[$b]} ratio=$ratio"
    done
  done
  stop_servers
done
