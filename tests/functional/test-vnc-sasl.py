#!/usr/bin/python3
"""VNC with SASL (-vnc ...,sasl=on): the RFB SASL exchange inside VeNCrypt
X509SASL, with a SCRAM-SHA-256 client written here from RFC 5802/7677, and
over plain TCP with a DIGEST-MD5 client and its rc4 security layer written
from RFC 2831, against the real Cyrus SASL server and a sasldb made by
saslpasswd2; sasl-authz (one name per user), wrong passwords, the
mechanisms offered without TLS, hostile layer parameters and packets, and
malformed SASL messages."""
import atexit
import base64
import hashlib
import hmac
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import (Qiod, Tap, closed_by_server, free_port, make_pki,  # noqa: E402
                      recv_exact, run_qiod)

t = Tap()
tmp = tempfile.mkdtemp(prefix="qiod-vnc-sasl-")
atexit.register(shutil.rmtree, tmp, True)
pki = make_pki()
srv = os.path.join(pki, "srv")
cli = os.path.join(pki, "cli")
REALM = "qio.test"
db = os.path.join(tmp, "passwd.db")
with open(os.path.join(tmp, "qio.conf"), "w") as f:
    f.write(f"mech_list: scram-sha-256 digest-md5\nsasldb_path: {db}\n")
for user, password in (("alice", "wonder land"), ("bob", "builder")):
    subprocess.run(["saslpasswd2", "-c", "-p", "-f", db, "-a", "qio", "-u", REALM, user],
                   input=password.encode(), check=True)
# qiod (Cyrus SASL) reads qio.conf from here.
os.environ["SASL_CONF_PATH"] = tmp


def md5(data):
    return hashlib.md5(data).digest()


def md5hex(data):
    return hashlib.md5(data).hexdigest().encode()


class Rc4:
    def __init__(self, key):
        self.box, j = list(range(256)), 0
        for i in range(256):
            j = (j + self.box[i] + key[i % len(key)]) & 255
            self.box[i], self.box[j] = self.box[j], self.box[i]
        self.i = self.j = 0

    def crypt(self, data):
        box, out = self.box, bytearray()
        for c in data:
            self.i = (self.i + 1) & 255
            self.j = (self.j + box[self.i]) & 255
            box[self.i], box[self.j] = box[self.j], box[self.i]
            out.append(c ^ box[(box[self.i] + box[self.j]) & 255])
        return bytes(out)


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(cli, "ca-cert.pem"))
    return ctx


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)

    def recv(self, n):
        return recv_exact(self.s, n)

    def u32(self):
        return struct.unpack(">I", self.recv(4))[0]

    def to_sasl(self, tls=True):
        """RFB 3.8, VeNCrypt X509SASL (or plain SASL); returns the mechanisms."""
        assert self.recv(12) == b"RFB 003.008\n"
        self.s.sendall(b"RFB 003.008\n")
        n = self.recv(1)[0]
        sec = self.recv(n)[0]
        self.s.sendall(bytes([sec]))
        if tls:
            assert sec == 19, sec
            assert self.recv(2) == b"\0\2"
            self.s.sendall(b"\0\2")
            assert self.recv(1) == b"\0"
            assert self.recv(1) == b"\1"
            self.subtype = struct.unpack(">I", self.recv(4))[0]
            self.s.sendall(struct.pack(">I", self.subtype))
            assert self.recv(1) == b"\1"
            self.s = tls_context().wrap_socket(self.s, server_hostname="localhost")
        else:
            assert sec == 20, sec
        # The mechanism list comes without a NUL, unlike the exchange's data.
        mechs = self.recv(self.u32())
        assert not mechs.endswith(b"\0"), mechs
        return mechs.decode().split(",")

    def sasl_data(self):
        n = self.u32()
        data = self.recv(n) if n else b""
        return data[:-1] if data.endswith(b"\0") else data

    def send_sasl(self, data):
        self.s.sendall(struct.pack(">I", len(data) + 1) + data + b"\0")

    def result(self):
        """SecurityResult: None when accepted, else the reason."""
        if self.u32() == 0:
            return None
        return self.recv(self.u32()).decode()

    def scram(self, user, password):
        """SCRAM-SHA-256 (RFC 5802, 7677); returns (SecurityResult, server verified)."""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user},r={cnonce}"
        self.s.sendall(struct.pack(">I", len("SCRAM-SHA-256")) + b"SCRAM-SHA-256")
        self.send_sasl(("n,," + first_bare).encode())
        server_first = self.sasl_data().decode()
        if self.recv(1)[0] == 1:
            return self.result(), False
        fields = dict(x.split("=", 1) for x in server_first.split(","))
        assert fields["r"].startswith(cnonce)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                     base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_bare = f"c={base64.b64encode(b'n,,').decode()},r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{final_bare}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.send_sasl(f"{final_bare},p={base64.b64encode(proof).decode()}".encode())
        server_final = self.sasl_data().decode()
        done = self.recv(1)[0]
        verified = False
        if server_final.startswith("v="):
            server_key = hmac.new(salted, b"Server Key", "sha256").digest()
            expected = hmac.new(server_key, auth_message, "sha256").digest()
            verified = base64.b64decode(server_final[2:]) == expected and done == 1
        return self.result(), verified

    def digest_md5(self, user, password, realm=None, maxbuf=65536, authzid=None):
        """DIGEST-MD5 with qop auth-conf and rc4 (RFC 2831), asking to act as
        authzid if given; returns the SecurityResult and, on success, sets
        up the layer."""
        self.s.sendall(struct.pack(">I", len("DIGEST-MD5")) + b"DIGEST-MD5")
        self.s.sendall(struct.pack(">I", 0))
        challenge = self.sasl_data().decode()
        if self.recv(1)[0] == 1:
            return self.result()
        fields = {m.group(1): m.group(3) if m.group(3) is not None else m.group(2)
                  for m in re.finditer(r'([a-zA-Z-]+)=("([^"]*)"|[^,]*)', challenge)}
        self.realm = fields.get("realm", "")
        realm = self.realm if realm is None else realm
        cnonce = os.urandom(12).hex()
        uri = f"vnc/{self.realm}"
        a1 = (md5(f"{user}:{realm}:{password}".encode()) +
              f":{fields['nonce']}:{cnonce}".encode() +
              (f":{authzid}".encode() if authzid else b""))
        a2 = f"AUTHENTICATE:{uri}:{'0' * 32}".encode()
        response = md5hex(md5hex(a1) + f":{fields['nonce']}:00000001:{cnonce}:auth-conf:"
                          .encode() + md5hex(a2))
        self.send_sasl(",".join([
            f'username="{user}"', f'realm="{realm}"', f'nonce="{fields["nonce"]}"',
            f'cnonce="{cnonce}"', "nc=00000001", "qop=auth-conf", f'digest-uri="{uri}"',
            f"response={response.decode()}", f"maxbuf={maxbuf}", "charset=utf-8",
            "cipher=rc4"] + ([f'authzid="{authzid}"'] if authzid else [])).encode())
        self.sasl_data()
        self.recv(1)
        result = self.result()
        if result is None:
            ha1 = md5(a1)
            self.seal = Rc4(md5(ha1 + b"Digest H(A1) to client-to-server sealing key "
                                      b"magic constant"))
            self.unseal = Rc4(md5(ha1 + b"Digest H(A1) to server-to-client sealing key "
                                        b"magic constant"))
            self.sign_key = md5(ha1 + b"Digest session key to client-to-server signing key "
                                      b"magic constant")
            self.seq = 0
        return result

    def wrap(self, message):
        """One packet of the security layer: sealed message and MAC."""
        seq = struct.pack(">I", self.seq)
        self.seq += 1
        mac = hmac.new(self.sign_key, seq + message, "md5").digest()[:10]
        packet = self.seal.crypt(message + mac) + b"\0\1" + seq
        return struct.pack(">I", len(packet)) + packet

    def unwrap(self):
        packet = self.recv(self.u32())
        return self.unseal.crypt(packet[:-6])[:-10]


port = free_port()
d = Qiod("-object", f"tls-creds-x509,id=tls0,endpoint=server,dir={srv},verify-peer=off",
         "-object", f"authz-simple,id=auth0,identity=alice@{REALM}",
         "-vnc", f"127.0.0.1:{port - 5900},tls-creds=tls0,sasl=on,sasl-authz=auth0")
q = d.qmp()
info = q.cmd("query-vnc")["return"]
t.ok(info["auth"] == "vencrypt+x509+sasl", "query-vnc: auth vencrypt+x509+sasl", info)

c = Conn(port)
mechs = c.to_sasl()
t.ok(c.subtype == 263 and set(mechs) == {"SCRAM-SHA-256", "DIGEST-MD5"},
     "X509SASL: over TLS both configured mechanisms are offered", mechs)
res, verified = c.scram(f"alice@{REALM}", "wonder land")
ok = res is None
if ok:
    c.s.sendall(b"\1")
    init = c.recv(24)
    ok = struct.unpack(">HH", init[:4]) == (640, 400)
clients = q.cmd("query-vnc")["return"]["clients"]
t.ok(ok and verified and len(clients) == 1
     and clients[0].get("sasl_username") == f"alice@{REALM}",
     "SCRAM-SHA-256 login: the server proves itself, the session starts, query-vnc shows "
     "the SASL user", (res, verified, clients))
c.s.close()

c = Conn(port)
c.to_sasl()
res, verified = c.scram(f"alice@{REALM}", "wrong")
log = d.stderr_until("alice")
t.ok(res == "authentication failed" and not verified and "VNC client 127.0.0.1:" in log,
     "a wrong password: SecurityResult failed, logged naming the client", (res, log[-400:]))
c.s.close()

time.sleep(1.1)  # failures are logged at most once a second
c = Conn(port)
c.to_sasl()
res, _ = c.scram(f"bob@{REALM}", "builder")
log = d.stderr_until(f"bob@{REALM}")
t.ok(res == "access denied" and f"SASL user 'bob@{REALM}'" in log and "auth0" in log,
     "sasl-authz refuses a user it does not allow, naming user and authz", (res, log[-400:]))
c.s.close()

# Malformed SASL messages: disconnected with a log line, qiod goes on.
cases = [
    ("mechanism name of 0 bytes", lambda c: c.s.sendall(struct.pack(">I", 0)),
     "names are 1 to 100"),
    ("mechanism name of 1000 bytes",
     lambda c: c.s.sendall(struct.pack(">I", 1000) + b"A" * 1000), "names are 1 to 100"),
    ("mechanism name with odd bytes",
     lambda c: c.s.sendall(struct.pack(">I", 5) + b"a\nb\0c"), "not a mechanism name"),
    ("start data over 1 MiB",
     lambda c: c.s.sendall(struct.pack(">I", 13) + b"SCRAM-SHA-256" + struct.pack(">I", 2 << 20)),
     "the limit is"),
    ("unknown mechanism",
     lambda c: (c.s.sendall(struct.pack(">I", 5) + b"BOGUS"), c.send_sasl(b"x")), "BOGUS"),
    ("garbage SCRAM start",
     lambda c: (c.s.sendall(struct.pack(">I", 13) + b"SCRAM-SHA-256"),
                c.send_sasl(b"\xff\xfe garbage")), "VNC client 127.0.0.1:"),
]
for label, send, logged in cases:
    time.sleep(1.1)
    c = Conn(port)
    c.to_sasl()
    before = len(d.stderr_until("\0", timeout=0.1))
    send(c)
    gone = closed_by_server(c.s)
    deadline = time.time() + 20
    log = ""
    while logged not in log and time.time() < deadline:
        log = d.stderr_until("\0", timeout=0.2)[before:]
    t.ok(gone and logged in log, f"malformed SASL: {label}: disconnected, logged", log[-400:])
    c.s.close()
r = q.cmd("query-status")
t.ok("return" in r, "qiod answers after the malformed clients")
q.close()
d.stop()

# DIGEST-MD5 over plain TCP: the rc4 layer carries the session; a user of
# the host's realm has one name ("carol", also when logging in as
# carol@REALM), so sasl-authz cannot be passed by a second spelling.
port = free_port()
d = Qiod("-vnc", f"127.0.0.1:{port - 5900},sasl=on")
q = d.qmp()
c = Conn(port)
c.to_sasl(tls=False)
c.digest_md5("nobody", "x")
host_realm = c.realm
c.s.close()
subprocess.run(["saslpasswd2", "-c", "-p", "-f", db, "-a", "qio", "-u", host_realm, "carol"],
               input=b"c4rol", check=True)
names = []
for user in ("carol", f"carol@{host_realm}"):
    c = Conn(port)
    c.to_sasl(tls=False)
    res = c.digest_md5(user, "c4rol")
    ok = res is None
    if ok:
        c.s.sendall(c.wrap(b"\1"))
        init = c.unwrap()
        ok = struct.unpack(">HH", init[:4]) == (640, 400)
        names += [x.get("sasl_username") for x in q.cmd("query-vnc")["return"]["clients"]]
    t.ok(ok, f"DIGEST-MD5 as {user} over plain TCP: ServerInit comes through the rc4 layer",
         res)
    c.s.close()
    deadline = time.time() + 10
    while q.cmd("query-vnc")["return"]["clients"] and time.time() < deadline:
        time.sleep(0.05)
t.ok(names == ["carol", "carol"], "both spellings of a host-realm user are reported as "
     "'carol'", names)

def log_since(before, text, timeout=20):
    """qiod's log from offset @before on, once @text is in it (or @timeout s)."""
    deadline = time.time() + timeout
    log = d.stderr_until("\0", timeout=0.1)[before:]
    while text not in log and time.time() < deadline:
        log = d.stderr_until("\0", timeout=0.2)[before:]
    return log


for maxbuf, label in ((17, "that Cyrus would wrap to 4 GiB packets"),
                      (30, "of 1-byte packets (a packet and a system call per byte)")):
    time.sleep(1.1)
    c = Conn(port)
    c.to_sasl(tls=False)
    before = len(d.stderr_until("\0", timeout=0.1))
    res = c.digest_md5("carol", "c4rol", maxbuf=maxbuf)
    log = log_since(before, "security-layer packets")
    t.ok(res is not None and "outside 1024 to" in log, f"a maxbuf {label} is refused",
         (res, log[-300:]))
    c.s.close()

# Asking to act as another user: refused, and the log names both.
time.sleep(1.1)
c = Conn(port)
c.to_sasl(tls=False)
before = len(d.stderr_until("\0", timeout=0.1))
res = c.digest_md5("carol", "c4rol", authzid=f"dave@{host_realm}")
log = log_since(before, "may not act as")
t.ok(res is not None and f"user 'carol' may not act as user 'dave@{host_realm}'"
     in log, "carol asking to act as dave: refused, logged as such (not as dave's failed "
     "login)", (res, log[-300:]))
c.s.close()

# A client streaming empty layer packets must not hold the main loop.
c = Conn(port)
c.to_sasl(tls=False)
c.digest_md5("carol", "c4rol")
c.s.sendall(c.wrap(b"\1"))
c.unwrap()
blob = b"".join(c.wrap(b"") for _ in range(600000))


def send_blob():
    try:
        c.s.sendall(blob)
    except OSError:
        pass


import threading  # noqa: E402
sender = threading.Thread(target=send_blob, daemon=True)
sender.start()
answers = 0
flood_start = time.time()
while sender.is_alive():
    r = q.cmd("query-status")
    answers += sender.is_alive() and "return" in r
sender.join()
t.ok(answers >= 3, "%d bytes of empty layer packets (sent in %.2f s): QMP answered %d times "
     "meanwhile" % (len(blob), time.time() - flood_start, answers))
c.s.close()
q.close()
d.stop()

d = Qiod("-object", "authz-list,id=a0,policy=allow,rules.0.match=carol,rules.0.policy=deny",
         "-vnc", f"127.0.0.1:{port - 5900},sasl=on,sasl-authz=a0")
q = d.qmp()
refused = []
for user in ("carol", f"carol@{host_realm}"):
    time.sleep(1.1)
    c = Conn(port)
    c.to_sasl(tls=False)
    refused.append(c.digest_md5(user, "c4rol"))
    c.s.close()
t.ok(refused == ["access denied", "access denied"], "a deny rule for 'carol' refuses both "
     "spellings", refused)
q.close()
d.stop()

# Without TLS only mechanisms with a security layer are offered.
port = free_port()
d = Qiod("-vnc", f"127.0.0.1:{port - 5900},sasl=on")
q = d.qmp()
t.ok(q.cmd("query-vnc")["return"]["auth"] == "sasl", "query-vnc: auth sasl")
c = Conn(port)
mechs = c.to_sasl(tls=False)
t.ok(mechs == ["DIGEST-MD5"], "plain SASL offers only DIGEST-MD5 (SCRAM has no security "
     "layer and would send the session in clear)", mechs)
c.s.sendall(struct.pack(">I", 13) + b"SCRAM-SHA-256")
c.send_sasl(b"n,,n=alice,r=abc")
gone = closed_by_server(c.s)
log = d.stderr_until("not offered")
t.ok(gone and "SCRAM-SHA-256" in log and "not offered" in log,
     "SCRAM asked for anyway over plain TCP is refused, and logged", log[-300:])
c.s.close()
q.close()
d.stop()

# A configuration that leaves no mechanism for the connection: said in the
# log (each client is refused), not left for viewers to puzzle over.
scram_only = os.path.join(tmp, "scram-only")
os.makedirs(scram_only)
with open(os.path.join(scram_only, "qio.conf"), "w") as f:
    f.write(f"mech_list: scram-sha-256\nsasldb_path: {db}\n")
os.environ["SASL_CONF_PATH"] = scram_only
port = free_port()
d = Qiod("-vnc", f"127.0.0.1:{port - 5900},sasl=on")
os.environ["SASL_CONF_PATH"] = tmp
s = socket.create_connection(("127.0.0.1", port), timeout=20)
recv_exact(s, 12)
s.sendall(b"RFB 003.008\n")
recv_exact(s, 2)
s.sendall(b"\x14")
gone = closed_by_server(s)
log = d.stderr_until("no usable mechanism")
t.ok(gone and "no usable mechanism" in log and "PLAIN and SCRAM need TLS" in log,
     "mech_list with only SCRAM and no TLS: each client is refused and the log says why",
     log[-400:])
s.close()
d.stop()

for args, want in (
        (["-vnc", "127.0.0.1:1,sasl-authz=a"], "sasl-authz needs sasl=on"),
        (["-object", "secret,id=s,data=x", "-vnc", "127.0.0.1:1,sasl=on,password-secret=s"],
         "choose one"),
        (["-vnc", "127.0.0.1:1,sasl=on,sasl-authz=nosuch"], "nosuch")):
    rc, _, err = run_qiod(*args)
    t.ok(rc == 1 and want in err, f"command line {' '.join(args)} refused", err)
t.done()
