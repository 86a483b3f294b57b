#!/bin/bash
# QIOChannelTLS against GnuTLS's own tools (gnutls-bin): gnutls-cli as the
# client of a qio server and gnutls-serv as the server of a qio client,
# with x509 mutual authentication (certificates made by certtool) and PSK
# (keys made by psktool); a wrong CA and TLS 1.1 are refused with a clear
# message.  Loopback only.
build=${QIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
endpoint=$build/tests/functional/tls-endpoint
n=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
for tool in gnutls-cli gnutls-serv certtool psktool; do
  command -v $tool >/dev/null || { echo "1..0 # SKIP $tool not installed (gnutls-bin)"; exit 0; }
done
[ -x "$endpoint" ] || { echo "1..0 # SKIP $endpoint not built"; exit 0; }
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp" || exit 1

# A PKI with certtool: CA, server (localhost, 127.0.0.1), client; and a
# second CA that nobody trusts.
mkpki() { # name
  certtool --generate-privkey --key-type=ecdsa --outfile $1-ca-key.pem 2>/dev/null
  printf 'cn = "%s CA"\nca\ncert_signing_key\nexpiration_days = 30\n' "$1" > ca.info
  certtool --generate-self-signed --load-privkey $1-ca-key.pem --template ca.info \
    --outfile $1-ca.pem 2>/dev/null
}
mkleaf() { # ca name purpose
  certtool --generate-privkey --key-type=ecdsa --outfile $2-key.pem 2>/dev/null
  printf 'cn = "%s"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n%s\nsigning_key\nencryption_key\nexpiration_days = 30\n' \
    "$2" "$3" > $2.info
  certtool --generate-certificate --load-privkey $2-key.pem --load-ca-certificate $1-ca.pem \
    --load-ca-privkey $1-ca-key.pem --template $2.info --outfile $2-cert.pem 2>/dev/null
}
mkpki good; mkpki evil
mkleaf good server tls_www_server; mkleaf good client tls_www_client
mkleaf evil evilclient tls_www_client
mkdir -p srv cli evilcli psk
cp good-ca.pem srv/ca-cert.pem; cp server-cert.pem srv/; cp server-key.pem srv/
cp good-ca.pem cli/ca-cert.pem; cp client-cert.pem cli/; cp client-key.pem cli/
cp evil-ca.pem evilcli/ca-cert.pem; cp evilclient-cert.pem evilcli/client-cert.pem
cp evilclient-key.pem evilcli/client-key.pem
psktool -u qemu -p psk/keys.psk >/dev/null 2>&1
pskkey=$(sed -n 's/^qemu://p' psk/keys.psk)

port() { echo $((20000 + RANDOM % 20000)); }
wait_port() { for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
start_endpoint_server() { # port args...
  local p=$1; shift
  # Truncate here, not in the child: the child's redirection may run after
  # the first grep below and let it read the previous server's "listening".
  : > server.out
  # Bounded, so a client that never arrives cannot hang the suite.
  timeout 60 "$endpoint" server "$p" "$@" >> server.out 2>&1 </dev/null &
  pids+=($!); srv_pid=$!
  for _ in $(seq 100); do grep -q listening server.out && return 0; sleep 0.1; done
  echo "# the qio server did not start listening on port $p: $(cat server.out)"
}

# 1. gnutls-cli (x509, client certificate) -> qio server
p=$(port); start_endpoint_server $p srv x509
out=$( (echo "hello from gnutls-cli"; sleep 1) | timeout 20 gnutls-cli --port $p \
  --x509cafile good-ca.pem --x509certfile client-cert.pem --x509keyfile client-key.pem \
  localhost 2>&1)
wait $srv_pid; rc=$?
if [ $rc -eq 0 ] && grep -q "handshake: TLS1.3 AES-128-GCM .*CN=client" server.out \
   && echo "$out" | grep -q "hello from gnutls-cli"; then
  ok "gnutls-cli with a client certificate talks to a qio server (x509 mutual auth)"
else notok "gnutls-cli with a client certificate talks to a qio server" "$(cat server.out)" "$out"; fi

# 2. qio client (x509) -> gnutls-serv --echo requiring a client certificate
p=$(port)
gnutls-serv --echo --port $p --x509cafile good-ca.pem --x509certfile server-cert.pem \
  --x509keyfile server-key.pem --require-client-cert >serv.out 2>&1 &
pids+=($!); wait_port $p
out=$(timeout 20 "$endpoint" client $p cli x509 localhost 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "echoed: hello from qio"; then
  ok "qio client with a client certificate talks to gnutls-serv (x509 mutual auth)"
else notok "qio client talks to gnutls-serv (x509)" "$out"; fi

# 3. qio client by IP address: the IP SAN matches
out=$(timeout 20 "$endpoint" client $p cli x509 127.0.0.1 2>&1); rc=$?
if [ $rc -eq 0 ]; then ok "qio client checks the server's IP SAN 127.0.0.1"
else notok "qio client checks the server's IP SAN" "$out"; fi

# 4. qio client trusting another CA refuses gnutls-serv, naming the cause
out=$(timeout 20 "$endpoint" client $p evilcli x509 localhost 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "certificate signed by unknown CA"; then
  ok "qio client refuses a server from an unknown CA with a clear message"
else notok "qio client refuses a server from an unknown CA" "$out"; fi

# 5. gnutls-cli with a certificate from another CA is refused by a qio server
p=$(port); start_endpoint_server $p srv x509
out=$( (echo hi; sleep 1) | timeout 20 gnutls-cli --port $p --x509cafile good-ca.pem \
  --x509certfile evilclient-cert.pem --x509keyfile evilclient-key.pem localhost 2>&1)
wait $srv_pid; rc=$?
if [ $rc -ne 0 ] && grep -q "error: .*certificate signed by unknown CA" server.out \
   && echo "$out" | grep -q "CA is unknown"; then
  ok "qio server refuses a client from an unknown CA; gnutls-cli gets an alert"
else notok "qio server refuses a client from an unknown CA" "$(cat server.out)" "$out"; fi

# 6. gnutls-cli offering only TLS 1.1 is refused
p=$(port); start_endpoint_server $p srv x509 verify-peer=off
out=$(echo hi | timeout 20 gnutls-cli --port $p --x509cafile good-ca.pem \
  --priority NORMAL:-VERS-ALL:+VERS-TLS1.1 localhost 2>&1)
wait $srv_pid; rc=$?
if [ $rc -ne 0 ] && grep -q "older than 1.2" server.out; then
  ok "qio server refuses TLS 1.1 with a clear message"
else notok "qio server refuses TLS 1.1" "$(cat server.out)" "$out"; fi

# 7. gnutls-cli (PSK) -> qio server
p=$(port); start_endpoint_server $p psk psk
out=$( (echo "hello over psk"; sleep 1) | timeout 20 gnutls-cli --port $p --pskusername qemu \
  --pskkey "$pskkey" --priority NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK localhost 2>&1)
wait $srv_pid; rc=$?
if [ $rc -eq 0 ] && grep -q "handshake: TLS1.3 .* qemu" server.out \
   && echo "$out" | grep -q "hello over psk"; then
  ok "gnutls-cli with a pre-shared key talks to a qio server"
else notok "gnutls-cli with a pre-shared key talks to a qio server" "$(cat server.out)" "$out"; fi

# 8. qio client (PSK) -> gnutls-serv --pskpasswd
p=$(port)
gnutls-serv --echo --port $p --pskpasswd psk/keys.psk \
  --priority NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK >pskserv.out 2>&1 &
pids+=($!); wait_port $p
out=$(timeout 20 "$endpoint" client $p psk psk localhost qemu 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "echoed: hello from qio"; then
  ok "qio client with a pre-shared key talks to gnutls-serv"
else notok "qio client with a pre-shared key talks to gnutls-serv" "$out"; fi

# 9. gnutls-cli asking a qio server to renegotiate (TLS 1.2): refused with
# the no_renegotiation alert, and the server's error says why.
p=$(port); start_endpoint_server $p srv x509
out=$( (printf '^renegotiate^\n'; sleep 1; echo "after renegotiating"; sleep 1) | timeout 20 \
  gnutls-cli --inline-commands --priority NORMAL:-VERS-ALL:+VERS-TLS1.2 --port $p \
  --x509cafile good-ca.pem --x509certfile client-cert.pem --x509keyfile client-key.pem \
  localhost 2>&1)
wait $srv_pid
if echo "$out" | grep -q "Received alert \[100\]: No renegotiation is allowed" \
   && grep -q "asked to renegotiate the TLS session, which qio refuses" server.out; then
  ok "a renegotiation asked of a qio server is refused with no_renegotiation, and logged as such"
else notok "a renegotiation asked of a qio server is refused with no_renegotiation" \
  "$(cat server.out)" "$out"; fi

echo "1..$n"
