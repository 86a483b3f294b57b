#!/usr/bin/python3
"""QMP over TLS (tls-creds, tls-authz), credentials in use, query-tls-creds
and the expiry warning, with certificates made by certtool."""
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402

t = Tap()
pki = tempfile.mkdtemp(prefix="qiod-pki-")


def certtool(*args):
    subprocess.run(["certtool", *args], check=True, capture_output=True)


def template(name, text):
    path = os.path.join(pki, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def make_cert(dirname, cn, days, usage, key_name, cert_name):
    os.makedirs(dirname, exist_ok=True)
    key = os.path.join(dirname, key_name)
    certtool("--generate-privkey", "--outfile", key)
    tmpl = template(f"{cn}-{days}.info", f"cn = {cn}\n{usage}\nsigning_key\nencryption_key\n"
                    f"expiration_days = {days}\n")
    certtool("--generate-certificate", "--load-privkey", key,
             "--load-ca-certificate", ca_cert, "--load-ca-privkey", ca_key,
             "--template", tmpl, "--outfile", os.path.join(dirname, cert_name))


ca_key = os.path.join(pki, "ca-key.pem")
ca_cert = os.path.join(pki, "ca-cert.pem")
certtool("--generate-privkey", "--outfile", ca_key)
certtool("--generate-self-signed", "--load-privkey", ca_key, "--template",
         template("ca.info", "cn = qio test CA\nca\ncert_signing_key\ncrl_signing_key\n"
                  "expiration_days = 365\n"),
         "--outfile", ca_cert)
server_dir = os.path.join(pki, "server")
soon_dir = os.path.join(pki, "soon")
crl_dir = os.path.join(pki, "crl")
client_dir = os.path.join(pki, "client")
other_dir = os.path.join(pki, "other")
for d in (server_dir, soon_dir, crl_dir, client_dir):
    os.makedirs(d, exist_ok=True)
    with open(ca_cert) as src, open(os.path.join(d, "ca-cert.pem"), "w") as dst:
        dst.write(src.read())
make_cert(server_dir, "qiod.test", 365, "tls_www_server", "server-key.pem", "server-cert.pem")
make_cert(soon_dir, "soon.test", 10, "tls_www_server", "server-key.pem", "server-cert.pem")
make_cert(crl_dir, "listed.test", 365, "tls_www_server", "server-key.pem", "server-cert.pem")
certtool("--generate-crl", "--load-ca-certificate", ca_cert, "--load-ca-privkey", ca_key,
         "--template", template("crl.info", "crl_next_update = 12\ncrl_number = 7\n"),
         "--outfile", os.path.join(crl_dir, "ca-crl.pem"))
make_cert(client_dir, "admin", 365, "tls_www_client", "client-key.pem", "client-cert.pem")
make_cert(other_dir, "mallory", 365, "tls_www_client", "client-key.pem", "client-cert.pem")


def tls_qmp(path, client=None):
    ctx = ssl.create_default_context(cafile=ca_cert)
    ctx.check_hostname = False
    if client:
        ctx.load_cert_chain(os.path.join(client, "client-cert.pem"),
                            os.path.join(client, "client-key.pem"))
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(15)
    raw.connect(path)
    s = ctx.wrap_socket(raw)
    f = s.makefile("rwb")
    greeting = json.loads(f.readline())
    f.write(b'{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
    f.flush()
    json.loads(f.readline())
    reply = json.loads(f.readline())
    s.close()
    return greeting, reply


d = Qiod("-m", "8M",
         "-object", f"tls-creds-x509,id=tls0,dir={server_dir},endpoint=server,verify-peer=off",
         "-object", f"tls-creds-x509,id=tls1,dir={server_dir},endpoint=server,verify-peer=on",
         "-object", "authz-simple,id=auth0,identity=CN=admin",
         "-qmp", "unix:@DIR@/tls.sock,server=on,wait=off,tls-creds=tls0",
         "-qmp", "unix:@DIR@/authz.sock,server=on,wait=off,tls-creds=tls1,tls-authz=auth0")
tls_sock = os.path.join(d.dir, "tls.sock")
authz_sock = os.path.join(d.dir, "authz.sock")
try:
    greeting, reply = tls_qmp(tls_sock)
except Exception as e:  # noqa: BLE001
    greeting, reply = {"exception": repr(e)}, {}
t.ok("QMP" in greeting and reply.get("return", {}).get("status") == "running",
     "QMP over TLS: greeting and a command", (greeting, reply))

# A plaintext client on the TLS socket gets nothing and is dropped.
raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
raw.settimeout(15)
raw.connect(tls_sock)
raw.sendall(b'{"execute":"qmp_capabilities"}\n')
data = b""
try:
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
t.ok(b"QMP" not in data and b"return" not in data, "no plaintext on a TLS monitor", data)
raw.close()

try:
    greeting, reply = tls_qmp(authz_sock, client=client_dir)
except Exception as e:  # noqa: BLE001
    greeting, reply = {"exception": repr(e)}, {}
t.ok("return" in reply, "tls-authz: the allowed client is served", (greeting, reply))
refused = False
try:
    tls_qmp(authz_sock, client=other_dir)
except (ssl.SSLError, OSError, ValueError):
    refused = True
t.ok(refused, "tls-authz: another client certificate is refused")
refused = False
try:
    tls_qmp(authz_sock)
except (ssl.SSLError, OSError, ValueError):
    refused = True
t.ok(refused, "verify-peer=on: a client without a certificate is refused")

# Silent connections: at most 64 (max_clients) TLS handshakes wait at once;
# each newer connection makes the oldest give way, so 200 silent ones leave
# the newest 64 waiting, and a real client still gets in while they wait.
silent = []
for _ in range(200):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(tls_sock)
    silent.append(c)
time.sleep(1)  # well inside the 10 s handshake timeout
held = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
dropped = []
for c in select.select(silent, [], [], 1)[0]:
    try:
        gone = c.recv(1) == b""
    except ConnectionResetError:
        gone = True
    if gone:
        dropped.append(silent.index(c))
try:
    greeting, reply = tls_qmp(tls_sock)
except Exception as e:  # noqa: BLE001
    greeting, reply = {"exception": repr(e)}, {}
for c in silent:
    c.close()
t.ok(sorted(dropped) == list(range(136)) and held < 100 and "return" in reply,
     "200 silent TLS connections: the oldest 136 give way, and with the newest 64 still "
     "waiting a client is served", (len(dropped), held, greeting, reply))

q = d.qmp()
r = q.cmd("object-del", {"id": "tls0"})
t.ok("error" in r and "tls0" in r["error"]["desc"], "object-del refuses credentials in use", r)
r = q.cmd("object-del", {"id": "auth0"})
t.ok("error" in r and "auth0" in r["error"]["desc"], "object-del refuses an authz in use", r)

r = q.cmd("query-tls-creds")
by_id = {c["id"]: c for c in r.get("return", [])}
c0 = by_id.get("tls0", {})
subjects = [c["subject"] for c in c0.get("certificates", [])]
files = [c["file"] for c in c0.get("certificates", [])]
t.ok(c0.get("type") == "tls-creds-x509" and c0.get("endpoint") == "server"
     and c0.get("dir") == server_dir and any("qiod.test" in s for s in subjects)
     and os.path.join(server_dir, "server-cert.pem") in files,
     "query-tls-creds: files, subjects", r)
days = [c["days-left"] for c in c0.get("certificates", []) if "qiod.test" in c["subject"]]
t.ok(days and 360 <= days[0] <= 365 and all(c["expiry"].endswith("Z") or "+" in c["expiry"]
                                            for c in c0["certificates"]),
     "query-tls-creds: expiry dates", c0)

# tls-creds-reload: new certificate files are used by new sessions, a
# session under way goes on, and bad files change nothing.
def peer_cn(path):
    ctx = ssl.create_default_context(cafile=ca_cert)
    ctx.check_hostname = False
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(15)
    raw.connect(path)
    with ctx.wrap_socket(raw) as s:
        return dict(x[0] for x in s.getpeercert()["subject"]).get("commonName")


ctx = ssl.create_default_context(cafile=ca_cert)
ctx.check_hostname = False
raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
raw.settimeout(15)
raw.connect(tls_sock)
held = ctx.wrap_socket(raw).makefile("rwb")
json.loads(held.readline())
held.write(b'{"execute":"qmp_capabilities"}\n')
held.flush()
json.loads(held.readline())
before = peer_cn(tls_sock)
make_cert(server_dir, "renewed.qiod.test", 365, "tls_www_server", "server-key.pem",
          "server-cert.pem")
r = q.cmd("tls-creds-reload", {"id": "tls0"})
after = peer_cn(tls_sock)
held.write(b'{"execute":"query-status"}\n')
held.flush()
still = json.loads(held.readline())
subjects = [c["subject"] for c in
            {c["id"]: c for c in q.cmd("query-tls-creds")["return"]}["tls0"]["certificates"]]
t.ok(before == "qiod.test" and r == {"return": {}} and after == "renewed.qiod.test"
     and "return" in still and any("renewed.qiod.test" in x for x in subjects),
     "tls-creds-reload: new clients get the new certificate, the session under way goes on",
     (before, r, after, still, subjects))
with open(os.path.join(server_dir, "server-cert.pem"), "w") as f:
    f.write("not a certificate\n")
r = q.cmd("tls-creds-reload", {"id": "tls0"})
t.ok("error" in r and "server-cert.pem" in r["error"]["desc"]
     and peer_cn(tls_sock) == "renewed.qiod.test",
     "tls-creds-reload of bad files: an error naming the file, the loaded ones stay", r)
r = q.cmd("tls-creds-reload", {"id": "auth0"})
r2 = q.cmd("tls-creds-reload", {"id": "nope"})
t.ok("error" in r and "auth0" in r["error"]["desc"] and "error" in r2
     and "nope" in r2["error"]["desc"],
     "tls-creds-reload of an authz object or an unknown id: errors naming them", (r, r2))
held.close()
make_cert(server_dir, "qiod.test", 365, "tls_www_server", "server-key.pem", "server-cert.pem")

# Unused credentials: added and deleted; an expiring certificate warns.
r = q.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls2", "dir": soon_dir,
                         "endpoint": "server", "verify-peer": False})
ev = q.event("TLS_CREDS_EXPIRING")
t.ok(r == {"return": {}} and ev and ev["data"]["id"] == "tls2"
     and ev["data"]["kind"] == "certificate"
     and "soon.test" in ev["data"]["subject"] and 8 <= ev["data"]["days-left"] <= 10,
     "TLS_CREDS_EXPIRING for a certificate that expires in 10 days", (r, ev))
r = q.cmd("object-del", {"id": "tls2"})
t.ok(r == {"return": {}}, "object-del of unused TLS credentials", r)
# A revocation list due for renewal: past its next update, no new load
# would accept it.
r = q.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls4", "dir": crl_dir,
                         "endpoint": "server", "verify-peer": False})
ev = q.event("TLS_CREDS_EXPIRING")
t.ok(r == {"return": {}} and ev and ev["data"]["id"] == "tls4"
     and ev["data"]["kind"] == "crl" and ev["data"]["file"].endswith("ca-crl.pem")
     and "qio test CA" in ev["data"]["subject"] and 10 <= ev["data"]["days-left"] <= 12,
     "TLS_CREDS_EXPIRING for a revocation list due in 12 days", (r, ev))
creds = {c["id"]: c for c in q.cmd("query-tls-creds")["return"]}
crls = creds["tls4"]["revocation-lists"]
t.ok(len(crls) == 1 and crls[0]["kind"] == "crl" and 10 <= crls[0]["days-left"] <= 12
     and [c["kind"] for c in creds["tls4"]["certificates"]] == ["certificate"] * 2
     and creds["tls0"]["revocation-lists"] == [],
     "query-tls-creds: revocation lists apart from certificates, with their next update",
     creds)
r = q.cmd("object-del", {"id": "tls4"})
t.ok(r == {"return": {}}, "object-del of credentials with a revocation list", r)
for typ in ("tls-creds-anon", "tls-creds-psk"):
    args = {"qom-type": typ, "id": "t-" + typ, "endpoint": "server"}
    if typ == "tls-creds-psk":
        psk_dir = os.path.join(pki, "psk")
        os.makedirs(psk_dir, exist_ok=True)
        with open(os.path.join(psk_dir, "keys.psk"), "w") as f:
            f.write("qemu:" + "ab" * 32 + "\n")
        args["dir"] = psk_dir
    r1 = q.cmd("object-add", args)
    r2 = q.cmd("object-del", {"id": args["id"]})
    t.ok(r1 == {"return": {}} and r2 == {"return": {}}, f"object-add/object-del {typ}", (r1, r2))
r = q.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls3", "dir": "/nonexistent/pki",
                         "endpoint": "server"})
t.ok("error" in r and "/nonexistent/pki" in r["error"]["desc"],
     "object-add of credentials with a missing dir: error naming it", r)

rc_before = d.proc.poll()
q.cmd("quit")
t.ok(rc_before is None and d.wait() == 0, "qiod with TLS monitors quits cleanly")
d.stop()

# Start-up errors of TLS monitors.
from qiodtest import run_qiod  # noqa: E402
rc, out, err = run_qiod("-qmp", "unix:/tmp/x.sock,server=on,wait=off,tls-creds=nope")
t.ok(rc == 1 and "nope" in err, "tls-creds naming no object: exit 1", err)
rc, out, err = run_qiod("-object", "secret,id=s0,data=x",
                        "-qmp", "unix:/tmp/x.sock,server=on,wait=off,tls-creds=s0")
t.ok(rc == 1 and "s0" in err and "TLS credentials" in err, "tls-creds naming a secret: exit 1",
     err)
rc, out, err = run_qiod("-object", f"tls-creds-x509,id=c0,dir={client_dir},endpoint=client",
                        "-qmp", "unix:/tmp/x.sock,server=on,wait=off,tls-creds=c0")
t.ok(rc == 1 and "endpoint=server" in err, "client credentials on a monitor: exit 1", err)
rc, out, err = run_qiod("-qmp", "unix:/tmp/x.sock,server=on,wait=off,tls-authz=a0")
t.ok(rc == 1 and "tls-authz needs tls-creds" in err, "tls-authz without tls-creds: exit 1", err)
t.done()
