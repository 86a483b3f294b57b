#!/bin/bash
# qio-nbd with TLS required: qemu-img, nbdinfo and nbdcopy over x509 (certtool
# PKI) and PSK (psktool); plaintext clients, a wrong CA and an authz deny
# are refused; options before STARTTLS get NBD_REP_ERR_TLS_REQD and nothing
# negotiated in plaintext survives STARTTLS (CVE-2021-3716); qio-nbd --list
# over TLS against qio-nbd, qemu-nbd and nbdkit.  Loopback only.
here=$(cd "$(dirname "$0")" && pwd)
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
qionbd=$build/tools/qio-nbd
n=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); echo "not ok $n - $1"; }
for p in certtool psktool qemu-img qemu-nbd nbdinfo nbdcopy nbdkit; do
  command -v $p >/dev/null || { echo "1..0 # SKIP $p missing"; exit 0; }
done
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp" || exit 1
t() { local name=$1; shift; if "$@" >out 2>&1; then ok "$name"; else notok "$name"; sed 's/^/# /' out | head -20; fi; }
fails() { local name=$1 want=$2; shift 2
  if "$@" >out 2>&1; then notok "$name (it succeeded)"; sed 's/^/# /' out | head; return; fi
  if [ -z "$want" ] || grep -qi -- "$want" out; then ok "$name"; else notok "$name"; sed 's/^/# /' out | head; fi; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# A UNIX socket's file appears at bind(), a moment before listen(): wait for
# the listening flag (__SO_ACCEPTCON) in /proc/net/unix instead.
listening() { awk -v p="$1" '$8 == p && $4 == "00010000" { f = 1 } END { exit !f }' /proc/net/unix; }
wait_socket() { for _ in $(seq 100); do listening "$1" && return 0; sleep 0.05; done; return 1; }

# PKI: a CA with server and client (CN=client) certificates, and a second
# CA nobody trusts with its own client.
bash "$here/nbd-pki.sh" "$tmp" || { echo "1..0 # SKIP certtool failed"; exit 0; }
mkdir -p psk pskcli
psktool -u alice -p psk/keys.psk >/dev/null 2>&1
cp psk/keys.psk pskcli/keys.psk

head -c $((8 << 20)) /dev/urandom >img
x509srv="tls-creds-x509,id=tls0,endpoint=server,dir=$tmp/srv,verify-peer=on"
x509cli="tls-creds-x509,id=tls0,endpoint=client,dir=$tmp/cli"

P=$(free_port)
"$qionbd" --object "$x509srv" --tls-creds tls0 -b 127.0.0.1 -p $P -x disk -t -e 8 img 2>server.log & pids+=($!)
wait_port $P
url="nbds://127.0.0.1:$P/disk?tls-certificates=$tmp/cli"

t "x509: qemu-img compare over TLS" qemu-img compare --object "$x509cli" --image-opts \
  "driver=raw,file.driver=file,file.filename=$tmp/img" \
  "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=$P,file.export=disk,file.tls-creds=tls0"
t "x509: nbdinfo sees TLS" bash -c "nbdinfo '$url' | grep -q 'with TLS'"
t "x509: nbdcopy reads over TLS (multi-conn) byte-exact" bash -c "nbdcopy '$url' copy && cmp img copy"
t "x509: nbdcopy --connections=1 reads over TLS" bash -c "nbdcopy --connections=1 '$url' copy1 && cmp img copy1"
head -c $((8 << 20)) /dev/urandom >new
t "x509: nbdcopy writes over TLS byte-exact" bash -c "nbdcopy new '$url' && cmp new img"
t "x509: qio-nbd --list over TLS" bash -c "'$qionbd' --list --object '$x509cli' --tls-creds tls0 -b 127.0.0.1 -p $P | grep -q \"export: 'disk'\""
fails "plaintext nbdinfo is refused" "TLS" nbdinfo "nbd://127.0.0.1:$P/disk"
fails "plaintext qio-nbd --list is refused with NBD_REP_ERR_TLS_REQD" "TLS_REQD" "$qionbd" --list -b 127.0.0.1 -p $P
fails "a client trusting another CA is refused" "" nbdinfo "nbds://127.0.0.1:$P/disk?tls-certificates=$tmp/evilcli"
fails "qio-nbd --list with the wrong CA names the certificate problem" "certificate\|verif" \
  "$qionbd" --list --object "tls-creds-x509,id=tls0,endpoint=client,dir=$tmp/evilcli" --tls-creds tls0 -b 127.0.0.1 -p $P
fails "--list with a host name the certificate lacks is refused" "" \
  "$qionbd" --list --object "$x509cli" --tls-creds tls0 --tls-hostname wrong.example -b 127.0.0.1 -p $P

# The raw protocol: options before STARTTLS, then a TLS session that starts afresh.
/usr/bin/python3 - "$P" "$tmp" >py.out 2>&1 <<'EOF'
import socket, ssl, struct, sys
port, d = int(sys.argv[1]), sys.argv[2]
def rx(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("closed")
        b += c
    return b
def opt(s, o, data=b""): s.sendall(struct.pack(">QII", 0x49484156454F5054, o, len(data)) + data)
def rep(s):
    m, o, t, l = struct.unpack(">QIII", rx(s, 20)); return t, rx(s, l)
TLS_REQD = 2**31 + 5
s = socket.create_connection(("127.0.0.1", port)); rx(s, 18); s.sendall(struct.pack(">I", 3))
go = struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0)
meta = struct.pack(">I", 4) + b"disk" + struct.pack(">I", 1) + struct.pack(">I", 15) + b"base:allocation"
for o, data in ((8, b""), (10, meta), (3, b""), (6, go), (7, go), (9, meta)):
    opt(s, o, data); t, _ = rep(s)
    assert t == TLS_REQD, (o, t)
print("refused before STARTTLS: STRUCTURED_REPLY SET_META_CONTEXT LIST INFO GO LIST_META_CONTEXT")
opt(s, 5); t, _ = rep(s); assert t == 1, t
ctx = ssl.create_default_context(cafile=d + "/cli/ca-cert.pem")
ctx.load_cert_chain(d + "/cli/client-cert.pem", d + "/cli/client-key.pem")
t_s = ctx.wrap_socket(s, server_hostname="localhost")
opt(t_s, 5); t, _ = rep(t_s); assert t == 2**31 + 3, "second STARTTLS: %d" % t
opt(t_s, 7, go)
while True:
    t, data = rep(t_s)
    if t == 1: break
    assert t == 3, t
# No structured replies were agreed inside TLS: a read gets a simple reply.
t_s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 9, 0, 512))
magic, err, cookie = struct.unpack(">IIQ", rx(t_s, 16))
assert (magic, err, cookie) == (0x67446698, 0, 9), (hex(magic), err, cookie)
assert rx(t_s, 512) == open(d + "/img", "rb").read(512)
print("after STARTTLS: simple replies (plaintext negotiation discarded)")
s2 = socket.create_connection(("127.0.0.1", port)); rx(s2, 18); s2.sendall(struct.pack(">I", 3))
opt(s2, 1, b"disk")
assert s2.recv(1) == b"", "NBD_OPT_EXPORT_NAME before STARTTLS must hang up"
print("EXPORT_NAME before STARTTLS: disconnected")
EOF
if [ $? -eq 0 ]; then ok "raw: options before STARTTLS get NBD_REP_ERR_TLS_REQD; the TLS session starts afresh (CVE-2021-3716)"
else notok "raw: options before STARTTLS get NBD_REP_ERR_TLS_REQD; the TLS session starts afresh (CVE-2021-3716)"; sed 's/^/# /' py.out; fi

# tls-authz on the client certificate's DN.
P2=$(free_port)
"$qionbd" --object "$x509srv" --object authz-simple,id=auth0,identity=CN=client --tls-creds tls0 \
  --tls-authz auth0 -b 127.0.0.1 -p $P2 -x disk -t -e 4 img 2>authz-allow.log & pids+=($!)
P3=$(free_port)
"$qionbd" --object "$x509srv" --object authz-simple,id=auth0,identity=CN=somebody-else --tls-creds tls0 \
  --tls-authz auth0 -b 127.0.0.1 -p $P3 -x disk -t -e 4 img 2>authz-deny.log & pids+=($!)
wait_port $P2; wait_port $P3
t "tls-authz: the allowed DN reads" bash -c "nbdinfo 'nbds://127.0.0.1:$P2/disk?tls-certificates=$tmp/cli' | grep -q 'with TLS'"
fails "tls-authz: another DN is refused" "" nbdinfo "nbds://127.0.0.1:$P3/disk?tls-certificates=$tmp/cli"
t "tls-authz: the server log names the refused identity" bash -c "sleep 0.3; grep -q 'CN=client' authz-deny.log"

# PSK.
P4=$(free_port)
"$qionbd" --object "tls-creds-psk,id=tls0,endpoint=server,dir=$tmp/psk" --tls-creds tls0 \
  -b 127.0.0.1 -p $P4 -x disk -t -e 8 img & pids+=($!)
wait_port $P4
t "PSK: nbdinfo over TLS-PSK" bash -c "nbdinfo 'nbds://alice@127.0.0.1:$P4/disk?tls-psk-file=$tmp/pskcli/keys.psk' | grep -q 'with TLS'"
t "PSK: nbdcopy reads byte-exact" bash -c "nbdcopy 'nbds://alice@127.0.0.1:$P4/disk?tls-psk-file=$tmp/pskcli/keys.psk' pcopy && cmp img pcopy"
t "PSK: qemu-img compare" qemu-img compare --object "tls-creds-psk,id=tls0,endpoint=client,dir=$tmp/pskcli,username=alice" \
  --image-opts "driver=raw,file.driver=file,file.filename=$tmp/img" \
  "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=$P4,file.export=disk,file.tls-creds=tls0"
t "PSK: qio-nbd --list" bash -c "'$qionbd' --list --object 'tls-creds-psk,id=tls0,endpoint=client,dir=$tmp/pskcli,username=alice' --tls-creds tls0 -b 127.0.0.1 -p $P4 | grep -q \"export: 'disk'\""
head -c 64 /dev/urandom | od -An -v -tx1 | tr -d ' \n' | sed 's/^/alice:/' >wrong.psk; echo >>wrong.psk
fails "PSK: a wrong key is refused" "" nbdinfo "nbds://alice@127.0.0.1:$P4/disk?tls-psk-file=$tmp/wrong.psk"

# qio's client over TLS against qemu-nbd and nbdkit (UNIX sockets: the host name comes from --tls-hostname).
qemu-nbd --object "$x509srv" --tls-creds tls0 -k "$tmp/q.sock" -x qdisk -r -t -f raw img 2>/dev/null & pids+=($!)
nbdkit -f --tls=require --tls-certificates="$tmp/srv" --tls-verify-peer -U "$tmp/k.sock" file img 2>/dev/null & pids+=($!)
wait_socket "$tmp/q.sock"; wait_socket "$tmp/k.sock"
t "qio-nbd --list over TLS against qemu-nbd" bash -c "'$qionbd' --list --object '$x509cli' --tls-creds tls0 --tls-hostname localhost -k '$tmp/q.sock' | grep -q \"export: 'qdisk'\""
t "qio-nbd --list over TLS against nbdkit" bash -c "'$qionbd' --list --object '$x509cli' --tls-creds tls0 --tls-hostname localhost -k '$tmp/k.sock' | grep -q 'size:  $((8 << 20))'"

# Option errors.
fails "--tls-creds naming no object" "tls9" "$qionbd" --tls-creds tls9 img
fails "--tls-creds with client credentials for serving" "endpoint=server" "$qionbd" --object "$x509cli" --tls-creds tls0 img
fails "--tls-authz without --tls-creds" "needs --tls-creds" "$qionbd" --object authz-simple,id=a,identity=x --tls-authz a img
fails "--tls-hostname when serving" "for --list" "$qionbd" --tls-hostname x img
fails "--tls-authz naming a secret" "" "$qionbd" --object "$x509srv" --object secret,id=s,data=x --tls-creds tls0 --tls-authz s img
echo "1..$n"
