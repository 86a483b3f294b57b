#!/usr/bin/python3
"""qio-pki: the CA, server and client certificates it makes are checked by
certtool (chain, constraints, purposes, SANs), used by gnutls-serv and
gnutls-cli, by qio-nbd with nbdinfo (libnbd) and qemu-img (QEMU's own
sanity checks) as clients, with x509 hostname and IP checks and
tls-authz on the client's DN; and every bad command line or CA directory
is refused with a message, leaving nothing half-written."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import BUILDDIR, Tap, free_port, run  # noqa: E402

QIO_PKI = os.path.join(BUILDDIR, "tools", "qio-pki")
QIO_NBD = os.path.join(BUILDDIR, "tools", "qio-nbd")
t = Tap()
tmp = tempfile.mkdtemp(prefix="qio-pki-test-")
procs = []


def pki(*args):
    return run(QIO_PKI, *args)


def info(path):
    return run("certtool", "-i", "--infile", path)[1]


def verified(ca, cert):
    rc, out, err = run("certtool", "--verify", "--verify-profile", "medium",
                       "--load-ca-certificate", ca, "--infile", cert)
    return rc == 0 and "Verified" in out + err, out + err


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def snapshot(root):
    """Every file under @root with its contents."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                files[os.path.join(d, n)] = f.read()
    return files


# --- init: CA, server and client in one command ------------------------------
top = os.path.join(tmp, "pki")
rc, out, err = pki("init", top, "--hostname", "localhost", "--ip", "127.0.0.1", "--ip", "::1",
                   "--client-dn", "O=qio test,CN=alice")
ca_dir, srv_dir, cli_dir = (os.path.join(top, d) for d in ("ca", "server", "client"))
t.ok(rc == 0 and "DNS:localhost, IP:127.0.0.1, IP:::1" in out and "O=qio test,CN=alice" in out
     and f"dir={srv_dir},endpoint=server" in out, "init: exit 0, says what it made and how to use it",
     out + err)
expected = {os.path.join(ca_dir, "ca-cert.pem"): 0o644, os.path.join(ca_dir, "ca-key.pem"): 0o600,
            os.path.join(srv_dir, "ca-cert.pem"): 0o644,
            os.path.join(srv_dir, "server-cert.pem"): 0o644,
            os.path.join(srv_dir, "server-key.pem"): 0o600,
            os.path.join(cli_dir, "ca-cert.pem"): 0o644,
            os.path.join(cli_dir, "client-cert.pem"): 0o644,
            os.path.join(cli_dir, "client-key.pem"): 0o600}
got = {p: mode(p) for p in snapshot(top)}
t.ok(got == expected, "init: the tls-creds-x509 layout; private keys readable by the owner only",
     got)
ca_pem = os.path.join(ca_dir, "ca-cert.pem")
srv_pem, cli_pem = os.path.join(srv_dir, "server-cert.pem"), os.path.join(cli_dir, "client-cert.pem")
for name, path in (("server", srv_pem), ("client", cli_pem)):
    ok, diag = verified(ca_pem, path)
    t.ok(ok, f"certtool verifies the {name} certificate against the CA (medium profile)", diag)
ca_info, srv_info, cli_info = info(ca_pem), info(srv_pem), info(cli_pem)
t.ok("Basic Constraints (critical):\n\t\t\tCertificate Authority (CA): TRUE" in ca_info
     and "Certificate signing." in ca_info and "Subject Key Identifier" in ca_info,
     "the CA: CA:TRUE (critical), certificate signing", ca_info)
t.ok("Certificate Authority (CA): FALSE" in srv_info and "TLS WWW Server." in srv_info
     and "DNSname: localhost" in srv_info and "IPAddress: 127.0.0.1" in srv_info
     and "IPAddress: ::1" in srv_info and "Digital signature." in srv_info
     and "Authority Key Identifier" in srv_info and "Subject: CN=localhost" in srv_info,
     "the server certificate: CA:FALSE, TLS WWW Server, the DNS and IP SANs", srv_info)
t.ok("Certificate Authority (CA): FALSE" in cli_info and "TLS WWW Client." in cli_info
     and "Subject: O=qio test,CN=alice" in cli_info and "Subject Alternative Name" not in cli_info,
     "the client certificate: CA:FALSE, TLS WWW Client, the DN asked for", cli_info)
t.ok("EC/ECDSA" in srv_info and "ECDSA-SHA256" in srv_info, "ECDSA P-256 keys by default",
     srv_info)
days = [line for line in srv_info.splitlines() if "Not After" in line]
t.ok(days and time.strftime("%Y", time.gmtime(time.time() + 365 * 86400)) in days[0],
     "server certificate valid for a year by default", days)


# --- real peers: gnutls-serv / gnutls-cli -------------------------------------
def gnutls_pair(srv, cli, host, key="server", require_client=True, ca=None):
    """gnutls-serv on the server files, gnutls-cli with the client's; did
    the client verify the server and get through?"""
    port = free_port()
    args = ["gnutls-serv", "--echo", "-p", str(port), "--x509cafile", ca or f"{srv}/ca-cert.pem",
            "--x509certfile", f"{srv}/{key}-cert.pem", "--x509keyfile", f"{srv}/{key}-key.pem"]
    if require_client:
        args.append("--require-client-cert")
    serv = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(serv)
    try:
        for _ in range(200):
            if run("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}")[0] == 0:
                break
            time.sleep(0.05)
        p = subprocess.run(["gnutls-cli", "-p", str(port), "--x509cafile", f"{cli}/ca-cert.pem",
                            "--x509certfile", f"{cli}/client-cert.pem",
                            "--x509keyfile", f"{cli}/client-key.pem",
                            "--verify-hostname", host, "127.0.0.1"],
                           input="hello qio-pki\n", capture_output=True, text=True, timeout=30)
        return p.returncode == 0 and "hello qio-pki" in p.stdout, p.stdout[-600:] + p.stderr[-600:]
    finally:
        serv.kill()
        serv.wait()


ok, diag = gnutls_pair(srv_dir, cli_dir, "localhost")
t.ok(ok, "gnutls-cli verifies the server as 'localhost' and talks to gnutls-serv with the client "
     "certificate", diag)
ok, diag = gnutls_pair(srv_dir, cli_dir, "127.0.0.1")
t.ok(ok, "gnutls-cli verifies the server by its IP SAN 127.0.0.1", diag)
ok, diag = gnutls_pair(srv_dir, cli_dir, "other.example")
t.ok(not ok and "does not match" in diag,
     "gnutls-cli refuses the server under a name it does not hold", diag)


# --- real peers: qio-nbd with nbdinfo and qemu-img ----------------------------
def start_nbd(server_dir, *extra):
    image = os.path.join(tmp, "disk.img")
    with open(image, "wb") as f:
        f.truncate(1 << 20)
    port = free_port()
    p = subprocess.Popen([QIO_NBD, "-b", "127.0.0.1", "-p", str(port), "-t", "-e", "0",
                          "--object", f"tls-creds-x509,id=tls0,endpoint=server,dir={server_dir}",
                          "--tls-creds", "tls0", *extra, image],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(p)
    for _ in range(200):
        if run("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}")[0] == 0:
            return p, port
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("qio-nbd did not start: " + p.stderr.read().decode())


nbd, port = start_nbd(srv_dir, "--object", "authz-simple,id=auth0,identity=O=qio test,,CN=alice",
                      "--tls-authz", "auth0")
rc, out, err = run("nbdinfo", "--size", f"nbds://localhost:{port}/?tls-certificates={cli_dir}")
t.ok(rc == 0 and out.strip() == str(1 << 20),
     "nbdinfo (libnbd) reads qio-nbd over TLS with qio-pki's certificates, the authz allows alice",
     out + err)
rc, out, err = run("qemu-img", "info", "--object",
                   f"tls-creds-x509,id=tls0,endpoint=client,dir={cli_dir}",
                   "--image-opts", f"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0")
t.ok(rc == 0 and "virtual size: 1 MiB" in out,
     "qemu-img (QEMU's own checks of the files) reads it too, checking the IP SAN", out + err)
bob = os.path.join(tmp, "bob")
rc, out, err = pki("client", bob, "--ca", ca_dir, "--dn", "O=qio test,CN=bob")
rc2, out2, err2 = run("nbdinfo", "--size", f"nbds://localhost:{port}/?tls-certificates={bob}")
t.ok(rc == 0 and rc2 != 0, "a second client certificate from the same CA: the authz refuses bob",
     out + err + out2 + err2)
nbd.kill()
nbd.wait()

# --- revocation: qio-pki revoke and crl, checked by certtool and qio-nbd ------
crl = os.path.join(ca_dir, "ca-crl.pem")
bob_serial = [line.split(":", 1)[1].strip() for line in
              info(os.path.join(bob, "client-cert.pem")).splitlines()
              if "Serial Number (hex):" in line]
rc, out, err = pki("revoke", bob, "--ca", ca_dir)
crl_info = run("certtool", "--crl-info", "--infile", crl)[1] if os.path.exists(crl) else ""
t.ok(rc == 0 and "revoked \"O=qio test,CN=bob\"" in out and "certificates revoked: 1" in out
     and "qio-pki crl" in out and bob_serial and bob_serial[0] in crl_info
     and mode(crl) == 0o644, "revoke: bob's serial in the CA's ca-crl.pem, and what to do next",
     out + err + crl_info)
rc, out, err = run("certtool", "--verify-crl", "--load-ca-certificate",
                   os.path.join(ca_dir, "ca-cert.pem"), "--infile", crl)
t.ok(rc == 0 and "Verified" in out + err, "certtool verifies the CRL's signature by the CA",
     out + err)
srv_crl = os.path.join(tmp, "server-crl")
shutil.copytree(srv_dir, srv_crl)
shutil.copy(crl, srv_crl)
nbd, port = start_nbd(srv_crl)
rc, out, err = run("nbdinfo", "--size", f"nbds://localhost:{port}/?tls-certificates={bob}")
rc2, out2, err2 = run("nbdinfo", "--size", f"nbds://localhost:{port}/?tls-certificates={cli_dir}")
nbd.kill()
_, nbd_err = nbd.communicate()
t.ok(rc != 0 and rc2 == 0 and b"revoked" in nbd_err,
     "qio-nbd with the CRL refuses bob's revoked certificate (and says so), takes alice's",
     out + err + out2 + err2 + nbd_err.decode(errors="replace"))

rc, out, err = pki("revoke", os.path.join(bob, "client-cert.pem"), "--ca", ca_dir)
t.ok(rc == 0 and "was revoked already" in out and "certificates revoked: 1" in out,
     "revoking again (the file this time) is no error and lists it once", out + err)
number = [line for line in run("certtool", "--crl-info", "--infile", crl)[1].splitlines()
          if "CRL Number" in line]
rc, out, err = pki("crl", ca_dir, "--days", "7")
renewed = run("certtool", "--crl-info", "--infile", crl)[1]
t.ok(rc == 0 and "certificates revoked: 1" in out and bob_serial[0] in renewed
     and time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 86400)) in out
     and [line for line in renewed.splitlines() if "CRL Number" in line] != number,
     "crl renews the list for --days with the next CRL number, keeping bob", out + err + renewed)

before = snapshot(ca_dir)
for args, status, says, what in [
        (("revoke", os.path.join(rsa_cli := os.path.join(tmp, "other-ca"), "client"),
          "--ca", ca_dir), 1, "was not issued by this CA", "a certificate of another CA"),
        (("revoke", bob), 2, "need --ca", "revoke without --ca"),
        (("crl", ca_dir, "--ca", ca_dir), 2, "--ca goes with", "crl with --ca"),
        (("revoke", bob, "--ca", ca_dir, "--force"), 2, "do not go with", "revoke with --force"),
        (("revoke", tmp, "--ca", ca_dir), 2, "neither or both", "a directory without a certificate"),
        (("revoke", os.path.join(tmp, "nothing.pem"), "--ca", ca_dir), 1, "Unable to read",
         "a missing file"),
        (("crl", ca_dir, "--days", "36500"), 1, "would outlive its CA", "a CRL outliving the CA")]:
    if what == "a certificate of another CA":
        pki("init", rsa_cli, "-n", "localhost", "--days", "30")
    rc, out, err = pki(*args)
    t.ok(rc == status and says in err and snapshot(ca_dir) == before,
         f"refused, the CRL unchanged: {what}", out + err)
# A stale list (certtool's, next update in 2020) stops credentials loading,
# with a message saying so.
stale = os.path.join(tmp, "stale.txt")
with open(stale, "w") as f:
    f.write('crl_this_update_date = "2020-01-01 00:00:00"\n'
            'crl_next_update_date = "2020-02-01 00:00:00"\ncrl_number = 9\n')
rc, out, err = run("certtool", "--generate-crl", "--load-ca-privkey",
                   os.path.join(ca_dir, "ca-key.pem"), "--load-ca-certificate",
                   os.path.join(ca_dir, "ca-cert.pem"), "--template", stale, "--outfile",
                   os.path.join(srv_crl, "ca-crl.pem"))
rc2, out2, err2 = run(QIO_NBD, "-b", "127.0.0.1", "-p", str(free_port()), "--object",
                      f"tls-creds-x509,id=tls0,endpoint=server,dir={srv_crl}",
                      "--tls-creds", "tls0", os.path.join(tmp, "disk.img"))
t.ok(rc == 0 and rc2 == 1 and "expired on 2020-02-01" in err2 and "qio-pki crl" in err2,
     "an expired ca-crl.pem: the credentials refuse to load and say to renew it",
     out + err + out2 + err2)

# An expired list (certtool's, listing bob) is renewed, not refused: its
# revocations must survive.
rc, out, err = run("certtool", "--generate-crl", "--load-ca-privkey",
                   os.path.join(ca_dir, "ca-key.pem"), "--load-ca-certificate",
                   os.path.join(ca_dir, "ca-cert.pem"), "--load-certificate",
                   os.path.join(bob, "client-cert.pem"), "--template", stale, "--outfile", crl)
rc2, out2, err2 = pki("crl", ca_dir)
renewed = run("certtool", "--crl-info", "--infile", crl)[1]
t.ok(rc == 0 and rc2 == 0 and bob_serial[0] in renewed and "2020" not in renewed,
     "crl renews an expired list of the CA, keeping its revocations", out + err + out2 + err2 + renewed)

# Six revokes at once: each waits for the one before, none is lost.
many = [os.path.join(tmp, f"many{i}") for i in range(6)]
for d in many:
    pki("client", d, "--ca", ca_dir)
runs = [subprocess.Popen([QIO_PKI, "revoke", d, "--ca", ca_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE) for d in many]
codes = [p.wait() for p in runs]
listed = run("certtool", "--crl-info", "--infile", crl)[1]
serials = [line.split(":", 1)[1].strip() for d in many for line in
           info(os.path.join(d, "client-cert.pem")).splitlines() if "Serial Number (hex):" in line]
t.ok(codes == [0] * 6 and len(serials) == 6 and all(s in listed for s in serials),
     "six concurrent revokes all end up in the list", f"{codes}\n{listed}")

rc, out, err = pki("revoke", os.path.join(ca_dir, "ca-cert.pem"), "--ca", ca_dir)
t.ok(rc == 1 and "is a CA certificate" in err, "the CA's own certificate is not revoked", out + err)
# A CA that may not sign CRLs (certtool's, without cRLSign): its list would
# be rejected by every peer, so none is written.
nocrl = os.path.join(tmp, "nocrl-ca")
os.makedirs(nocrl)
tmpl = os.path.join(tmp, "nocrl.txt")
with open(tmpl, "w") as f:
    f.write('cn = "no CRL CA"\nca\ncert_signing_key\nexpiration_days = 30\n')
run("certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile",
    os.path.join(nocrl, "ca-key.pem"))
run("certtool", "--generate-self-signed", "--load-privkey", os.path.join(nocrl, "ca-key.pem"),
    "--template", tmpl, "--outfile", os.path.join(nocrl, "ca-cert.pem"))
rc, out, err = pki("crl", nocrl)
t.ok(rc == 1 and "lacks cRLSign" in err and not os.path.exists(os.path.join(nocrl, "ca-crl.pem")),
     "a CA without cRLSign is told so and gets no list", out + err)

pki("crl", os.path.join(rsa_cli, "ca"))
shutil.copy(os.path.join(rsa_cli, "ca", "ca-crl.pem"), crl)
foreign = snapshot(ca_dir)
rc, out, err = pki("revoke", bob, "--ca", ca_dir)
t.ok(rc == 1 and "is not a CRL signed by this CA" in err and snapshot(ca_dir) == foreign,
     "another CA's list in the CA's directory is neither used nor replaced", out + err)

with open(crl, "w") as f:
    f.write("garbage\n")
rc, out, err = pki("revoke", bob, "--ca", ca_dir)
with open(crl) as f:
    kept = f.read()
t.ok(rc == 1 and "cannot be read as a CRL" in err and kept == "garbage\n",
     "a ca-crl.pem that is not the CA's is neither used nor replaced", out + err)
os.unlink(crl)

# --- RSA keys, and ca / server / client one at a time into one directory ------
rsa = os.path.join(tmp, "rsa")
rc, out, err = pki("init", rsa, "-n", "localhost", "--key-type", "rsa", "--days", "30")
rsa_info = info(os.path.join(rsa, "server", "server-cert.pem"))
t.ok(rc == 0 and "RSA" in rsa_info and "3072 bits" in rsa_info
     and "Key encipherment." in rsa_info, "--key-type rsa: RSA 3072 with key encipherment",
     out + err + rsa_info)
ok, diag = gnutls_pair(os.path.join(rsa, "server"), os.path.join(rsa, "client"), "localhost")
t.ok(ok, "the RSA certificates work between gnutls-serv and gnutls-cli", diag)

ca2, both = os.path.join(tmp, "ca2"), os.path.join(tmp, "both")
rc1, out1, _ = pki("ca", ca2, "--dn", "O=Example,CN=Example CA", "--days", "100")
rc2, out2, _ = pki("server", both, "--ca", ca2, "-n", "host.example", "-n", "*.vms.example",
                  "--days", "30")
rc3, out3, err3 = pki("client", both, "--ca", ca2, "--days", "30")
t.ok((rc1, rc2, rc3) == (0, 0, 0) and sorted(os.listdir(both)) ==
     ["ca-cert.pem", "client-cert.pem", "client-key.pem", "server-cert.pem", "server-key.pem"],
     "ca, then server and client into one directory (the identical ca-cert.pem is no obstacle)",
     (out1, out2, out3, err3))
both_info = info(os.path.join(both, "server-cert.pem"))
t.ok("Issuer: O=Example,CN=Example CA" in both_info and "DNSname: *.vms.example" in both_info
     and "Subject: CN=host.example" in both_info,
     "the server certificate names its CA, carries a wildcard SAN, defaults its CN to the name",
     both_info)
ok, diag = gnutls_pair(both, both, "a.vms.example", require_client=True)
t.ok(ok, "gnutls-cli accepts the wildcard name", diag)

# --- refusals -----------------------------------------------------------------
bad = os.path.join(tmp, "bad")
usage = [
    ((), "no command given"),
    (("frob", bad), "unknown command 'frob'"),
    (("init",), "init takes one directory"),
    (("init", bad, "extra", "-n", "h"), "init takes one directory"),
    (("init", bad), "--hostname NAME and/or --ip"),
    (("server", bad, "-n", "h"), "need --ca DIR"),
    (("ca", bad, "--ca", ca_dir), "--ca goes with server, client and revoke only"),
    (("client", bad, "--ca", ca_dir, "-n", "h"), "--hostname and --ip go with init and server"),
    (("ca", bad, "--client-dn", "CN=x"), "--ca-dn and --client-dn go with init only"),
    (("init", bad, "-n", "h", "--key-type", "dsa"), "--key-type takes ecdsa or rsa"),
    (("init", bad, "-n", "h", "--days", "-1"), "--days takes 1 to 36500 days, not '-1'"),
    (("init", bad, "-n", "h", "--days", "0"), "--days takes 1 to 36500 days, not '0'"),
    (("init", bad, "-n", "h", "--days", "40000"), "not '40000'"),
    (("init", bad, "-n", "h", "--days", "many"), "not 'many'"),
    (("init", bad, "-n", "h", "--days", "36500"), "at most 36499"),
    (("init", bad, "--bogus"), "--bogus"),
]
for args, says in usage:
    rc, out, err = pki(*args)
    t.ok(rc == 2 and says in err and not os.path.exists(bad),
         f"usage: qio-pki {' '.join(args)}: exit 2, '{says}', nothing written", (rc, out, err))

failures = [
    (("init", bad, "-n", "bad host"), "'bad host' is not a host name"),
    (("init", bad, "-n", "a..b"), "'a..b' is not a host name"),
    (("init", bad, "-n", "x" * 64 + ".example"), "is not a host name"),
    (("init", bad, "--ip", "1.2.3"), "'1.2.3' is not an IPv4 or IPv6 address"),
    (("init", bad, "-n", "h", "--dn", "CN"), "The distinguished name 'CN' is malformed"),
    (("init", bad, "-n", "h", "--dn", "NOSUCHATTR=x"), "is malformed"),
    (("init", bad, "-n", "h", "--client-dn", "CN"), "malformed"),
    (("init", bad, "-n", "h", "--ca-dn", ""), "The distinguished name is empty"),
    (("init", bad, "-n", "127.0.0.1"), "'127.0.0.1' is an IP address, not a host name"),
    (("init", bad, "-n", "h", "--dn", "CN=#04024869"), "hex-encoded"),
    (("server", bad, "--ca", os.path.join(tmp, "nosuch"), "-n", "h"), "Unable to read the CA's"),
    (("server", bad, "--ca", srv_dir, "-n", "h"), "ca-key.pem"),
    (("server", bad, "--ca", ca2, "-n", "h", "--days", "365"), "would outlive its CA"),
]
for args, says in failures:
    rc, out, err = pki(*args)
    t.ok(rc == 1 and says in err and not os.path.exists(bad),
         f"refused: qio-pki {' '.join(args)}: exit 1, '{says}', nothing written", (rc, out, err))

# A CA directory holding a leaf certificate, or a key of another CA.
fake = os.path.join(tmp, "fake")
os.mkdir(fake)
shutil.copy(srv_pem, os.path.join(fake, "ca-cert.pem"))
shutil.copy(os.path.join(srv_dir, "server-key.pem"), os.path.join(fake, "ca-key.pem"))
rc, out, err = pki("client", bad, "--ca", fake)
t.ok(rc == 1 and "is not a CA certificate" in err and not os.path.exists(bad),
     "a leaf certificate given as the CA is refused", err)
shutil.copy(ca_pem, os.path.join(fake, "ca-cert.pem"))
shutil.copy(os.path.join(ca2, "ca-key.pem"), os.path.join(fake, "ca-key.pem"))
rc, out, err = pki("client", bad, "--ca", fake)
t.ok(rc == 1 and "does not belong to its certificate" in err and not os.path.exists(bad),
     "a CA key that does not match the certificate is refused", err)
with open(os.path.join(fake, "ca-key.pem"), "w") as f:
    f.write("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
rc, out, err = pki("client", bad, "--ca", fake)
t.ok(rc == 1 and "The CA key in" in err and "cannot be read" in err, "a garbled CA key is refused",
     err)

# Nothing half-made: a file where a directory must go stops init before
# any file or directory is written.
blocked = os.path.join(tmp, "blocked")
os.mkdir(blocked)
with open(os.path.join(blocked, "client"), "w") as f:
    f.write("in the way\n")
rc, out, err = pki("init", blocked, "-n", "localhost")
t.ok(rc == 1 and "client" in err and sorted(os.listdir(blocked)) == ["client"],
     "init with a file where DIR/client must go: refused, no CA or server written", (err, os.listdir(blocked)))

# Shared directories: even --force does not break the other certificate
# there, nor mix a CA's key with a service's certificates.
before_both = snapshot(both)
rc, out, err = pki("server", both, "--ca", ca_dir, "-n", "h", "--days", "30", "--force")
t.ok(rc == 1 and "also holds client-cert.pem, issued by another CA" in err
     and snapshot(both) == before_both,
     "server --force into a directory whose client certificate has another CA: refused", err)
rc, out, err = pki("ca", both, "--force")
t.ok(rc == 1 and "a CA's key does not belong beside a service's certificates" in err
     and snapshot(both) == before_both, "ca --force into a service's directory: refused", err)
before_ca2 = snapshot(ca2)
rc, out, err = pki("server", ca2, "--ca", ca2, "-n", "h", "--days", "30")
t.ok(rc == 1 and "holds a CA key" in err and snapshot(ca2) == before_ca2,
     "a server certificate into the CA's own directory: refused", err)
ca2_mode = mode(ca2)
t.ok(ca2_mode == 0o700 and mode(top) == 0o755 and mode(ca_dir) == 0o700,
     "a CA's new directory is its owner's alone (0700), the directories above it are not",
     (oct(ca2_mode), oct(mode(top)), oct(mode(ca_dir))))

# init --days beyond the CA's default ten years: the CA outlives them.
long_dir = os.path.join(tmp, "long")
rc, out, err = pki("init", long_dir, "-n", "localhost", "--days", "3650", "--key-type", "rsa")
t.ok(rc == 0, "init --days 3650 (RSA): the CA is made to outlive its certificates", err)

# Existing files: kept without --force, replaced with it.
before = snapshot(top)
rc, out, err = pki("init", top, "-n", "localhost")
t.ok(rc == 1 and "already exists; nothing was written" in err and "--force" in err
     and snapshot(top) == before, "init over an existing PKI: refused, every file unchanged", err)
rc, out, err = pki("client", cli_dir, "--ca", ca2, "--days", "30")
t.ok(rc == 1 and "ca-cert.pem' already exists" in err and snapshot(top) == before,
     "a client certificate of another CA does not silently replace the directory's ca-cert.pem",
     err)
rc, out, err = pki("init", top, "-n", "localhost", "--force")
after = snapshot(top)
t.ok(rc == 0 and set(after) == set(before)
     and all(after[p] != before[p] for p in before)
     and mode(os.path.join(ca_dir, "ca-key.pem")) == 0o600,
     "init --force replaces every file, keys still owner-only", err)

rc, out, err = pki("--help")
t.ok(rc == 0 and "init DIR" in out and "--hostname" in out, "--help describes the commands", out)

for p in procs:
    if p.poll() is None:
        p.kill()
shutil.rmtree(tmp, ignore_errors=True)
t.done()
