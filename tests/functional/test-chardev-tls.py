#!/usr/bin/python3
"""The guest's serial shell over a TLS chardev, driven by gnutls-cli with
certtool-made certificates: x509 mutual authentication, authz deny, a
wrong CA, an expired client certificate, plaintext, PSK; one client at a
time; the peer's identity in query-chardev; QMP over a TLS chardev; no
byte reaches the guest before the handshake ("dirty 777" typed by a
refused peer would change the guest's dirty rate)."""
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402
from chardevtest import (GUEST_PROMPT, GnutlsCli, Pki, free_port,  # noqa: E402
                         wait_connected)

t = Tap()
for tool in ("gnutls-cli", "certtool", "psktool"):
    if not shutil.which(tool):
        print(f"1..0 # SKIP {tool} not installed (gnutls-bin)")
        sys.exit(0)

tmp = tempfile.mkdtemp(prefix="chardev-tls-")
pki = Pki(os.path.join(tmp, "pki"))
X509 = ["--x509cafile", pki.path("ca-cert.pem")]


def client_cert(name):
    return ["--x509certfile", pki.path(f"{name}-cert.pem"),
            "--x509keyfile", pki.path(f"{name}-key.pem")]


def dirty_rate(q):
    return q.cmd("query-guest")["return"]["dirty-rate"]


port = free_port()
mport = free_port()
d = Qiod("-m", "16M",
         "-object", f"tls-creds-x509,id=tls0,dir={pki.server_dir},endpoint=server",
         "-object", "authz-simple,id=auth0,identity=CN=client",
         "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=off,"
                     "tls-creds=tls0,tls-authz=auth0",
         "-serial", "chardev:s0",
         "-chardev", f"socket,id=m0,host=127.0.0.1,port={mport},server=on,wait=off,"
                     "tls-creds=tls0",
         "-mon", "chardev=m0,mode=control")
q = d.qmp()

# 1. x509 mutual authentication: the serial shell answers
cli = GnutlsCli(port, *X509, *client_cert("client"))
cli.send(b"echo hello-over-tls\r")
out = cli.read_until(b"hello-over-tls\r\n" + GUEST_PROMPT)
t.ok(b"hello-over-tls\r\nhello-over-tls\r\nguest> " in out,
     "gnutls-cli with a client certificate drives the guest's serial shell", out)

# 2. query-chardev reports the peer's identity while connected
info = wait_connected(q, "s0", True)
tls = info.get("tls", {})
t.ok(info["connected"] and tls.get("peer-identity", "").find("CN=client") >= 0
     and tls.get("protocol", "").startswith("TLS1.") and info["frontend-open"]
     and " <-> 127.0.0.1:" in info["filename"],
     "query-chardev: connected, TLS protocol and peer identity CN=client", info)

# 3. one client at a time: a second (plaintext) client waits in the backlog,
#    its bytes never reach the guest, and is refused once the first leaves
intruder = socket.create_connection(("127.0.0.1", port))
intruder.sendall(b"dirty 777\r")
time.sleep(0.3)
cli.send(b"echo still-mine\r")
out = cli.read_until(b"still-mine\r\n" + GUEST_PROMPT)
t.ok(b"still-mine\r\nguest> " in out and dirty_rate(q) == 0,
     "a second client waits while the first is served; the first still works", out)
cli.close()
intruder.settimeout(10)
try:
    got = b""
    while True:
        chunk = intruder.recv(4096)
        if not chunk:
            break
        got += chunk
except OSError:
    got = b"(reset)"
intruder.close()
info = wait_connected(q, "s0", False)
t.ok(GUEST_PROMPT not in got and dirty_rate(q) == 0 and not info["connected"],
     "the waiting plaintext client is refused after the first leaves; nothing reached the guest",
     got)


def refused(name, args):
    c = GnutlsCli(port, *args)
    c.send(b"dirty 777\r")
    out = c.read_until(GUEST_PROMPT, timeout=3)
    rest = c.close()
    info = wait_connected(q, "s0", False)
    ok = GUEST_PROMPT not in out + rest and dirty_rate(q) == 0 and not info["connected"]
    t.ok(ok, f"{name}: refused, no byte reaches the guest", out + rest)


# 4-7. refused peers
refused("authz deny (CN=mallory, same CA)", [*X509, *client_cert("mallory")])
refused("client certificate from an untrusted CA", [*X509, *client_cert("evilclient")])
refused("expired client certificate", [*X509, *client_cert("oldclient")])
refused("no client certificate", [*X509])
cli = GnutlsCli(port, "--x509cafile", pki.path("evil-cert.pem"), *client_cert("client"))
out = cli.read_until(GUEST_PROMPT, timeout=3) + cli.close()
t.ok(GUEST_PROMPT not in out and cli.proc.returncode != 0,
     "gnutls-cli trusting another CA refuses qiod's server certificate", out)

# 9. the server still serves a good client after all that
cli = GnutlsCli(port, *X509, *client_cert("client"))
cli.send(b"echo again\r")
out = cli.read_until(b"again\r\n" + GUEST_PROMPT)
cli.close()
info = wait_connected(q, "s0", False)
t.ok(b"again\r\nguest> " in out and info["connections"] == 2,
     "a good client is served again; two sessions counted (refused ones are not)", info)

# 10. QMP over a TLS chardev: a fresh session with its greeting per connection
for attempt in (1, 2):
    mon = GnutlsCli(mport, *X509, *client_cert("client"))
    greeting = mon.read_until(b'"capabilities"')
    mon.send(b'{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":7}\n')
    out = mon.read_until(b'"id":7')
    mon.close()
    t.ok(b'"QMP"' in greeting and b'"running":true' in out and b'"id":7' in out,
         f"QMP over a TLS chardev, connection {attempt}: greeting, capabilities, query-status",
         greeting + out)

# 12. PSK, on a second qiod
pport = free_port()
d2 = Qiod("-m", "16M",
          "-object", f"tls-creds-psk,id=psk0,dir={pki.psk_dir},endpoint=server",
          "-chardev", f"socket,id=s0,host=127.0.0.1,port={pport},server=on,wait=off,"
                      "tls-creds=psk0",
          "-serial", "chardev:s0")
q2 = d2.qmp()
psk = ["--pskusername", "qemu", "--pskkey", pki.psk_key,
       "--priority", "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"]
cli = GnutlsCli(pport, *psk)
cli.send(b"echo psk-works\r")
out = cli.read_until(b"psk-works\r\n" + GUEST_PROMPT)
info = wait_connected(q2, "s0", True)
t.ok(b"psk-works\r\nguest> " in out and info["tls"].get("peer-identity") == "qemu",
     "PSK: gnutls-cli drives the serial shell; query-chardev names PSK user qemu", (out, info))
cli.close()
wrong = ["--pskusername", "qemu", "--pskkey", "00" * 32,
         "--priority", "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"]
cli = GnutlsCli(pport, *wrong)
cli.send(b"dirty 777\r")
out = cli.read_until(GUEST_PROMPT, timeout=3) + cli.close()
t.ok(GUEST_PROMPT not in out and dirty_rate(q2) == 0, "PSK with a wrong key is refused", out)

# 14. a TLS chardev server with client credentials is refused at start
bad = Qiod("-object", f"tls-creds-x509,id=tls0,dir={pki.client_dir},endpoint=client",
           "-chardev", f"socket,id=s0,host=127.0.0.1,port={free_port()},server=on,wait=off,"
                       "tls-creds=tls0", wait=False)
rc = bad.wait()
err = bad.proc.stderr.read().decode()
bad.stop()
t.ok(rc == 1 and "'tls0'" in err and "endpoint=server" in err,
     "server=on with endpoint=client credentials is refused, naming the credentials", err)

d.stop()
d2.stop()
shutil.rmtree(tmp, ignore_errors=True)
t.done()
