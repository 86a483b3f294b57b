#!/bin/bash
# NBD whole-image throughput of qio-nbd against qemu-nbd and nbdkit (file
# plugin), over loopback TCP, plain and with TLS (x509, verify-peer,
# certificates made by certtool), each with nbdcopy's default multi-conn and
# with --connections=1:
#   read:  nbdcopy copies a random raw image in /dev/shm from a read-only
#          export into null:
#   write: nbdcopy copies that image into a writable export of a scratch
#          image of the same size in /dev/shm (one per server)
# The machine is shared and noisy, so the servers of one transport stay up
# while all its cases run, and each case runs in QIO_BENCH_ROUNDS rounds
# (default 5; about 5 minutes at --size 2G) in which qio-nbd and the two
# baselines take turns, the order reversing every round.  Each round gives
# one qio/baseline ratio; printed:
#   bench name=<id> value=<GiB/s> unit=GiB/s baseline=<GiB/s> ratio=<r> paired=yes
# value and baseline are the medians of the rates, ratio the median of the
# per-round ratios.  The servers' CPU time per GiB copied (user + system,
# from /proc/PID/stat) is steadier than wall-clock rates on a shared
# machine; per case, against nbdkit (lower is better), and nbdcopy's own
# CPU time per GiB with qio-nbd and with nbdkit (the client shares the
# machine's CPUs with the server):
#   bench name=<id>-server-cpu-qio-vs-nbdkit value=<s/GiB> unit=s/GiB baseline=<s/GiB> ratio=<r> paired=yes
#   bench name=<id>-client-cpu-with-qio-vs-nbdkit value=<s/GiB> unit=s/GiB baseline=<s/GiB> ratio=<r> paired=yes
# Before each case's lines, a comment lists its per-round qio/nbdkit rate
# and server CPU ratios, so that the spread behind the medians shows.
# Before the timed writes of each transport every scratch image starts out
# zero, one untimed write fills it, and cmp must find it identical to the
# source; the bench fails loudly otherwise.
# Options: --size 256M|512M|1G|2G (default 1G; QIO_BENCH_NBD_SIZE also works).
# Run by hand or with `make bench-nbd`; never part of make check.
set -u
size=${QIO_BENCH_NBD_SIZE:-1G}
rounds=${QIO_BENCH_ROUNDS:-}
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --size=*) size=${1#--size=}; shift ;;
    *) echo "usage: $0 [--size 256M|512M|1G|2G]" >&2; exit 1 ;;
  esac
done
case $size in 1G|2G|512M|256M) ;; *) echo "bench-nbd: --size must be 256M, 512M, 1G or 2G" >&2; exit 1 ;; esac
[ -z "$rounds" ] && rounds=5
case $rounds in ''|*[!0-9]*|0) echo "bench-nbd: QIO_BENCH_ROUNDS must be a positive number" >&2; exit 1 ;; esac
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
qionbd=$build/tools/qio-nbd
for p in "$qionbd" qemu-nbd nbdkit nbdcopy certtool cmp; do
  command -v "$p" >/dev/null || { echo "bench-nbd: $p not found" >&2; exit 1; }
done

servers=(qio qemu-nbd nbdkit)
dir=$(mktemp -d /dev/shm/bench-nbd.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "bench-nbd: FAILED: $*" >&2; exit 1; }
img=$dir/img
head -c "$size" /dev/urandom >"$img"
bytes=$(stat -c %s "$img")

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# Certificates for the TLS cases (certtool; BASELINES.md's layout).
pki=$dir/pki
mkdir -p "$pki"
bash "$(dirname "$0")/../functional/nbd-pki.sh" "$pki" || fail "certtool could not make the certificates"

# port[<server>-read] serves $img read-only, port[<server>-write] serves
# $dir/w-<server> writable; spid[] are their processes.
declare -A port spid
start_servers() { # plain|tls
  local tls=() ktls=() s
  if [ "$1" = tls ]; then
    tls=(--object "tls-creds-x509,id=tls0,endpoint=server,dir=$pki/srv,verify-peer=on" --tls-creds tls0)
    ktls=(--tls=require --tls-certificates="$pki/srv" --tls-verify-peer)
  fi
  for op in read write; do
    local ro=() qro=() kro=() f=$img
    [ $op = read ] && ro=(-r) && qro=(--read-only) && kro=(--readonly)
    # Servers print nothing useful here, and qemu-nbd complains about the port probes.
    port[qio-$op]=$(free_port)
    [ $op = write ] && f=$dir/w-qio
    "$qionbd" "${tls[@]}" "${ro[@]}" -t -e 16 -b 127.0.0.1 -p "${port[qio-$op]}" -x disk -f raw "$f" \
      2>/dev/null & pids+=($!)
    spid[qio-$op]=$!
    port[qemu-nbd-$op]=$(free_port)
    [ $op = write ] && f=$dir/w-qemu-nbd
    qemu-nbd "${tls[@]}" "${qro[@]}" --persistent --shared=16 --bind=127.0.0.1 \
      --port="${port[qemu-nbd-$op]}" --export-name=disk --format=raw "$f" 2>/dev/null & pids+=($!)
    spid[qemu-nbd-$op]=$!
    port[nbdkit-$op]=$(free_port)
    [ $op = write ] && f=$dir/w-nbdkit
    nbdkit "${ktls[@]}" "${kro[@]}" --foreground --ipaddr 127.0.0.1 --port "${port[nbdkit-$op]}" \
      --exportname disk file "$f" 2>/dev/null & pids+=($!)
    spid[nbdkit-$op]=$!
  done
  for s in "${!port[@]}"; do wait_port "${port[$s]}" || fail "$s did not start"; done
}
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); port=(); spid=(); }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# One timed whole-image copy: prints GiB/s and the server's CPU seconds per GiB.
run() { # op server security extra-nbdcopy-args...
  local op=$1 s=$2 sec=$3; shift 3
  local t0 t1 uri="nbd://127.0.0.1:${port[$s-$op]}/disk"
  [ "$sec" = tls ] && uri="nbds://127.0.0.1:${port[$s-$op]}/disk?tls-certificates=$pki/cli"
  local c0 c1 src=$uri dst=null: TIMEFORMAT='%U %S'
  [ $op = write ] && src=$img dst=$uri
  c0=$(ticks "${spid[$s-$op]}")
  t0=$(date +%s.%N)
  # bash's time keyword gives nbdcopy's own CPU seconds.
  { time nbdcopy "$@" "$src" "$dst" 2>"$dir/nbdcopy.err"; } 2>"$dir/client-cpu" ||
    fail "nbdcopy $op ($s, $sec) failed: $(cat "$dir/nbdcopy.err")"
  t1=$(date +%s.%N)
  c1=$(ticks "${spid[$s-$op]}")
  echo "$bytes $t0 $t1 $c0 $c1 $hz $(cat "$dir/client-cpu")" |
    awk '{g = $1 / 1073741824; printf "%.4f %.4f %.4f\n", g / ($3 - $2), ($5 - $4) / $6 / g, ($7 + $8) / g}'
}
median() { sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2}'; }
median_of() { tr ' ' '\n' <<<"$1" | grep . | median; } # of a space-separated list

# Each scratch image starts out zero (a fresh sparse file), one untimed
# write through each server fills it, and it must then equal the source.
verify_writes() { # security extra-nbdcopy-args...
  local sec=$1 s; shift
  for s in "${servers[@]}"; do
    truncate -s 0 "$dir/w-$s" && truncate -s "$bytes" "$dir/w-$s" || fail "cannot reset $dir/w-$s"
    run write "$s" "$sec" "$@" >/dev/null
    cmp -s "$img" "$dir/w-$s" ||
      fail "the image written through $s ($sec, nbdcopy $*) differs from the source"
    echo "# verified: nbdcopy ${*:-(multi-conn)} into $s ($sec) wrote the image byte-exact" >&2
  done
}

for s in "${servers[@]}"; do truncate -s "$bytes" "$dir/w-$s"; done
for sec in plain tls; do
  start_servers $sec
  # The plain pass checks writes with multi-conn, the TLS pass with one connection.
  if [ $sec = plain ]; then verify_writes $sec; else verify_writes $sec --connections=1; fi
  for op in read write; do
    for mode in multiconn conn1; do
      args=()
      [ $mode = conn1 ] && args=(--connections=1)
      declare -A rate=() pair=() cpu=() ccpu=()
      cpupair="" ccpupair=""
      for s in "${servers[@]}"; do rate[$s]=""; cpu[$s]=""; ccpu[$s]=""; done
      for b in qemu-nbd nbdkit; do pair[$b]=""; done
      for r in $(seq "$rounds"); do
        order=("${servers[@]}")
        [ $((r % 2)) = 0 ] && order=(nbdkit qemu-nbd qio)
        declare -A this=() thiscpu=() thisccpu=()
        for s in "${order[@]}"; do
          out=$(run $op $s $sec "${args[@]}") || exit 1 # run said why
          read -r "this[$s]" "thiscpu[$s]" "thisccpu[$s]" <<<"$out"
          rate[$s]+="${this[$s]} "
          cpu[$s]+="${thiscpu[$s]} "
          ccpu[$s]+="${thisccpu[$s]} "
        done
        for b in qemu-nbd nbdkit; do
          pair[$b]+="$(awk -v a="${this[qio]}" -v b="${this[$b]}" 'BEGIN {print a / b}') "
        done
        cpupair+="$(awk -v a="${thiscpu[qio]}" -v b="${thiscpu[nbdkit]}" 'BEGIN {print (b > 0 ? a / b : 0)}') "
        ccpupair+="$(awk -v a="${thisccpu[qio]}" -v b="${thisccpu[nbdkit]}" 'BEGIN {print (b > 0 ? a / b : 0)}') "
      done
      # The spread behind each median: a shared machine's noise shows here.
      printf '# nbd-%s-%s-%s-%s rounds, qio/nbdkit rate: %s; qio/nbdkit server CPU: %s\n' \
        $op "$size" $sec $mode "${pair[nbdkit]% }" "${cpupair% }"
      declare -A med=()
      for s in "${servers[@]}"; do med[$s]=$(median_of "${rate[$s]}"); done
      for b in qemu-nbd nbdkit; do
        ratio=$(median_of "${pair[$b]}")
        printf 'bench name=nbd-%s-%s-%s-%s-qio-vs-%s value=%.3f unit=GiB/s baseline=%.3f ratio=%.3f paired=yes\n' \
          $op "$size" $sec $mode $b "${med[qio]}" "${med[$b]}" "$ratio"
      done
      printf 'bench name=nbd-%s-%s-%s-%s-server-cpu-qio-vs-nbdkit value=%.3f unit=s/GiB baseline=%.3f ratio=%.3f paired=yes\n' \
        $op "$size" $sec $mode "$(median_of "${cpu[qio]}")" \
        "$(median_of "${cpu[nbdkit]}")" \
        "$(median_of "${cpupair}")"
      printf 'bench name=nbd-%s-%s-%s-%s-client-cpu-with-qio-vs-nbdkit value=%.3f unit=s/GiB baseline=%.3f ratio=%.3f paired=yes\n' \
        $op "$size" $sec $mode "$(median_of "${ccpu[qio]}")" \
        "$(median_of "${ccpu[nbdkit]}")" \
        "$(median_of "${ccpupair}")"
    done
  done
  stop_servers
done
