#!/bin/bash
# Makes an x509 PKI with certtool in directory $1 (BASELINES.md's layout):
#   srv/     ca-cert.pem server-cert.pem server-key.pem  (CN localhost, SANs localhost, 127.0.0.1)
#   cli/     ca-cert.pem client-cert.pem client-key.pem  (CN=client)
#   evilcli/ the same for a client of a second CA that nobody trusts
set -e
cd "$1"
mkca() { # name
  certtool --generate-privkey --key-type=ecdsa --outfile $1-ca-key.pem 2>/dev/null
  printf 'cn = "%s CA"\nca\ncert_signing_key\nexpiration_days = 30\n' "$1" >$1-ca.info
  certtool --generate-self-signed --load-privkey $1-ca-key.pem --template $1-ca.info \
    --outfile $1-ca.pem 2>/dev/null
}
mkleaf() { # ca name purpose
  certtool --generate-privkey --key-type=ecdsa --outfile $2-key.pem 2>/dev/null
  printf 'cn = "%s"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n%s\nsigning_key\nencryption_key\nexpiration_days = 30\n' \
    "$2" "$3" >$2.info
  certtool --generate-certificate --load-privkey $2-key.pem --load-ca-certificate $1-ca.pem \
    --load-ca-privkey $1-ca-key.pem --template $2.info --outfile $2-cert.pem 2>/dev/null
}
mkca good
mkca evil
mkleaf good server tls_www_server
mkleaf good client tls_www_client
mkleaf evil evilclient tls_www_client
mkdir -p srv cli evilcli
cp good-ca.pem srv/ca-cert.pem; cp server-cert.pem server-key.pem srv/
cp good-ca.pem cli/ca-cert.pem; cp client-cert.pem client-key.pem cli/
cp evil-ca.pem evilcli/ca-cert.pem; cp evilclient-cert.pem evilcli/client-cert.pem
cp evilclient-key.pem evilcli/client-key.pem
