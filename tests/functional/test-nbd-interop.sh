#!/bin/bash
# qio-nbd and NBDClient against real peers: qemu-img, nbdinfo and nbdcopy
# read and write qio-nbd; qemu-nbd and nbdkit serve qio's client
# (qio-nbd --list and nbd-client-check).  UNIX sockets and 127.0.0.1 only.
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
qionbd=$build/tools/qio-nbd
check=$build/tests/functional/nbd-client-check
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
n=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); echo "not ok $n - $1"; }
t() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else notok "$name"; sed 's/^/# /' "$tmp/out" | head -20; fi; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
for p in qemu-img qemu-nbd nbdinfo nbdcopy nbdkit; do command -v $p >/dev/null || skip_all "$p missing"; done

# A UNIX socket's file appears at bind(), a moment before listen(): wait for
# the listening flag (__SO_ACCEPTCON) in /proc/net/unix instead.
listening() { awk -v p="$1" '$8 == p && $4 == "00010000" { f = 1 } END { exit !f }' /proc/net/unix; }
wait_socket() { for _ in $(seq 100); do listening "$1" && return 0; sleep 0.05; done; return 1; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { "$@" & pids+=($!); }

img=$tmp/img
head -c $((24 << 20)) /dev/urandom >"$img"
# A sparse image: data, a hole, data.
sparse=$tmp/sparse
truncate -s 16M "$sparse"
head -c 1M /dev/urandom | dd of="$sparse" bs=1M seek=0 conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$sparse" bs=1M seek=8 conv=notrunc status=none

sock=$tmp/qio.sock
start "$qionbd" -k "$sock" -x disk -t -e 8 -D "test image" "$img"
wait_socket "$sock"
uri="nbd+unix:///disk?socket=$sock"

t "qemu-img info reads the export size" \
  bash -c "qemu-img info --output=json '$uri' | grep -q '\"virtual-size\": $((24 << 20))'"
t "qemu-img compare: export identical to the file" qemu-img compare -f raw -F raw "$img" "$uri"
t "qemu-img convert reads the export byte-exact" \
  bash -c "qemu-img convert -f raw -O raw '$uri' '$tmp/conv' && cmp '$img' '$tmp/conv'"
head -c $((24 << 20)) /dev/urandom >"$tmp/new"
t "qemu-img convert writes the export byte-exact" \
  bash -c "qemu-img convert -n -f raw -O raw '$tmp/new' '$uri' && cmp '$tmp/new' '$img'"
t "nbdinfo --list shows the export and its description" \
  bash -c "nbdinfo --list 'nbd+unix:///?socket=$sock' | tee /dev/stderr | grep -q 'export=\"disk\"' &&
           nbdinfo --list 'nbd+unix:///?socket=$sock' | grep -q 'description: test image'"
t "nbdinfo: structured replies, base:allocation, multi-conn" \
  bash -c "out=\$(nbdinfo '$uri'); echo \"\$out\" | grep -q 'using structured packets' &&
           echo \"\$out\" | grep -q 'base:allocation' && echo \"\$out\" | grep -q 'can_multi_conn: true'"
t "nbdcopy reads the export (multi-conn)" \
  bash -c "nbdcopy '$uri' '$tmp/copy1' && cmp '$img' '$tmp/copy1'"
t "nbdcopy --connections=1 reads the export" \
  bash -c "nbdcopy --connections=1 '$uri' '$tmp/copy2' && cmp '$img' '$tmp/copy2'"
head -c $((24 << 20)) /dev/urandom >"$tmp/new2"
t "nbdcopy writes the export (multi-conn) byte-exact" \
  bash -c "nbdcopy '$tmp/new2' '$uri' && cmp '$tmp/new2' '$img'"
t "qio-nbd --list over a UNIX socket" \
  bash -c "'$qionbd' --list -k '$sock' | tee /dev/stderr | grep -q \"export: 'disk'\""
t "NBDClient reads qio-nbd byte-exact" \
  bash -c "'$check' read '$uri' '$tmp/c1' && cmp '$img' '$tmp/c1'"

# Sparse image: block status finds the hole.
ssock=$tmp/sparse.sock
start "$qionbd" -k "$ssock" -r -t -e 4 "$sparse"
wait_socket "$ssock"
suri="nbd+unix:///?socket=$ssock"
t "nbdinfo --map reports data, hole, data" \
  bash -c "nbdinfo --map '$suri' | tee /dev/stderr | awk '{print \$1, \$2, \$3}' | tr '\n' ';' |
           grep -qx '0 1048576 0;1048576 7340032 3;8388608 1048576 0;9437184 7340032 3;'"
t "NBDClient block status agrees with nbdinfo --map" \
  bash -c "'$check' map '$suri' | tr '\n' ';' | grep -qx '0 1048576 0;1048576 7340032 3;8388608 1048576 0;9437184 7340032 3;'"
t "read-only export: nbdinfo sees is_read_only" bash -c "nbdinfo '$suri' | grep -q 'is_read_only: true'"
t "read-only export: qemu-img refuses to write" \
  bash -c "! qemu-img convert -n -f raw -O raw '$tmp/new' '$suri'"

# TCP on loopback.
port=$(free_port)
start "$qionbd" -b 127.0.0.1 -p "$port" -x disk -r -t -e 8 "$img"
wait_port "$port"
t "TCP: qemu-img compare over nbd://127.0.0.1" qemu-img compare -f raw -F raw "$img" "nbd://127.0.0.1:$port/disk"
t "TCP: qio-nbd --list -b -p" bash -c "'$qionbd' --list -b 127.0.0.1 -p $port | grep -q \"export: 'disk'\""
t "TCP: an unknown export is refused with a clear message" \
  bash -c "! '$check' read nbd://127.0.0.1:$port/nope '$tmp/x' 2>'$tmp/err'; grep -q \"NBD_REP_ERR_UNKNOWN\" '$tmp/err'"

# qemu-nbd and nbdkit as servers for qio's client.
qsock=$tmp/qemu.sock
start qemu-nbd -k "$qsock" -x qdisk -r -t -e 4 -f raw "$img"
wait_socket "$qsock"
t "qio-nbd --list against qemu-nbd" \
  bash -c "'$qionbd' --list -k '$qsock' | tee /dev/stderr | grep -q \"export: 'qdisk'\" &&
           '$qionbd' --list -k '$qsock' | grep -q 'size:  $((24 << 20))'"
t "NBDClient reads qemu-nbd byte-exact" \
  bash -c "'$check' read 'nbd+unix:///qdisk?socket=$qsock' '$tmp/c2' && cmp '$img' '$tmp/c2'"
ksock=$tmp/nbdkit.sock
start nbdkit -f -U "$ksock" --exportname kdisk file "$img"
wait_socket "$ksock"
t "qio-nbd --list against nbdkit" \
  bash -c "'$qionbd' --list -k '$ksock' | tee /dev/stderr | grep -q 'size:  $((24 << 20))'"
t "NBDClient reads nbdkit byte-exact" \
  bash -c "'$check' read 'nbd+unix:///kdisk?socket=$ksock' '$tmp/c3' && cmp '$img' '$tmp/c3'"
cp "$sparse" "$tmp/sparse2"
k2sock=$tmp/nbdkit2.sock
start nbdkit -f -U "$k2sock" file "$tmp/sparse2"
wait_socket "$k2sock"
t "NBDClient writes through nbdkit byte-exact" \
  bash -c "head -c 3M /dev/urandom >'$tmp/w' && '$check' write 'nbd+unix:///?socket=$k2sock' '$tmp/w' &&
           cmp -n $((3 << 20)) '$tmp/w' '$tmp/sparse2'"
t "NBDClient block status from nbdkit sees the hole" \
  bash -c "'$check' map 'nbd+unix:///?socket=$k2sock' | grep -q ' 3$'"
# nbdkit's eval plugin over a file, offering only what its methods allow;
# nbdkit refuses commands it did not offer.  nbd-client-check writes with
# FUA and then flushes.
evalsrv() { # socket, extra methods...
  local s=$1; shift
  start nbdkit -f -U "$s" eval get_size="echo $((4 << 20))" \
    pread="dd if=$tmp/ev skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none" \
    pwrite="dd of=$tmp/ev seek=\$4 oflag=seek_bytes conv=notrunc status=none" "$@"
  wait_socket "$s"
}
truncate -s 4M "$tmp/ev"
evalsrv "$tmp/eval1.sock"
t "NBDClient writes through nbdkit offering no FUA and no flush (sends neither)" \
  bash -c "nbdinfo 'nbd+unix:///?socket=$tmp/eval1.sock' | grep -q 'can_flush: false' &&
           head -c 1M /dev/urandom >'$tmp/w1' && '$check' write 'nbd+unix:///?socket=$tmp/eval1.sock' '$tmp/w1' &&
           cmp -n $((1 << 20)) '$tmp/w1' '$tmp/ev'"
evalsrv "$tmp/eval2.sock" can_fua="echo none" flush="echo flush >>$tmp/flushes"
t "NBDClient FUA write to nbdkit offering flush but no FUA: a flush follows the write" \
  bash -c "nbdinfo 'nbd+unix:///?socket=$tmp/eval2.sock' | grep -q 'can_fua: false' &&
           head -c 1M /dev/urandom >'$tmp/w2' && '$check' write 'nbd+unix:///?socket=$tmp/eval2.sock' '$tmp/w2' &&
           cmp -n $((1 << 20)) '$tmp/w2' '$tmp/ev' && [ \$(wc -l <'$tmp/flushes') = 2 ]"

# Life cycle: without -t the server exits after its client; --fork and --pid-file.
osock=$tmp/once.sock
"$qionbd" -k "$osock" -r "$img" & once=$!
wait_socket "$osock"
nbdinfo "nbd+unix:///?socket=$osock" >/dev/null 2>&1
t "without --persistent qio-nbd exits after its client" \
  bash -c "for i in \$(seq 50); do kill -0 $once 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
fsock=$tmp/fork.sock
t "--fork returns once listening, --pid-file names the server" \
  bash -c "'$qionbd' --fork --pid-file '$tmp/pid' -k '$fsock' -t -r '$img' && [ -S '$fsock' ] &&
           kill -0 \$(cat '$tmp/pid') && nbdinfo 'nbd+unix:///?socket=$fsock' >/dev/null"
[ -f "$tmp/pid" ] && pids+=($(cat "$tmp/pid"))

# Bad command lines: a clear message and exit status 1.
bad() { # name, expected text, args...
  local name=$1 want=$2; shift 2
  "$qionbd" "$@" >"$tmp/out" 2>&1; local rc=$?
  if [ $rc -eq 1 ] && grep -q -- "$want" "$tmp/out"; then ok "bad options: $name"
  else notok "bad options: $name (exit $rc)"; sed 's/^/# /' "$tmp/out"; fi
}
bad "no file" "Expected a file"
bad "two files" "exactly one" "$img" "$img"
bad "qcow2 format" "raw images only" -f qcow2 "$img"
bad "port out of range" "Invalid port" -p 70000 "$img"
bad "port not a number" "Invalid port" -p abc "$img"
bad "socket and bind" "cannot be combined" -k "$tmp/s" -b 127.0.0.1 "$img"
bad "unknown option" "Unknown option" --frobnicate "$img"
bad "missing file" "Cannot open" "$tmp/does-not-exist"
bad "directory" "not a regular file" "$tmp"
bad "negative --shared" "shared" -e -1 "$img"
bad "description over 4096 bytes" "Description of export 'disk' is longer than 4096 bytes" \
  -x disk -D "$(head -c 4097 /dev/zero | tr '\0' d)" "$img"
bad "--object of an unknown type" "unknown type 'foo'" --object foo,id=x "$img"
bad "--object without an id" "id" --object secret,data=x "$img"
bad "--list with a file" "no file argument" --list "$img"
bad "--list with nothing listening" "" --list -k "$tmp/nothing.sock"
t "--version prints the version" bash -c "'$qionbd' --version | grep -q '^qio-nbd '"
t "--help lists --export-name" bash -c "'$qionbd' --help | grep -q -- '--export-name'"
t "malformed URIs get clear errors" bash -c "
  for u in 'http://x/y' 'nbd+unix:///e' 'nbd+unix://host/e?socket=/s' 'nbd://h:0/e' 'nbd://h:99999/e' \
           'nbd:///e' 'nbd://h/e?socket=/x' 'nbds://h/e'; do
    '$check' read \"\$u\" /dev/null 2>'$tmp/err' && exit 1
    grep -q \"Invalid NBD URI\\|asks for TLS\" '$tmp/err' || { cat '$tmp/err'; exit 1; }
  done"
echo "1..$n"
