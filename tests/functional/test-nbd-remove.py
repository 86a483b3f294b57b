#!/usr/bin/python3
"""nbd-server-remove in hard mode (and nbd-server-stop) while a
python3-libnbd client streams writes into the export, plain and over x509
TLS: once the command returns nothing more lands in the image (requests
already in the socket or in TLS's read-ahead are dropped, writes being
carried out finish first), and qiod goes on serving.  A TLS client that
stops reading cannot stall qiod when its connection is ended (hard
removal, server stop).  Exports removed while option replies wait for the
socket: NBD_OPT_GO fails rather than serve a removed export, NBD_OPT_LIST
stays whole."""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap, make_pki, recv_exact  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
SIZE = 64 * MiB
t = Tap()
try:
    import nbd  # noqa: F401  (the writer runs it in a child)
except ImportError:
    print("1..0 # SKIP python3-libnbd missing")
    sys.exit(0)

pki = make_pki()
# One long-lived connection writing fresh random data all the time: a writer
# the server failed to cut off keeps changing the image.
WRITER = """
import nbd, os, sys
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
size = h.get_size()
i = 0
while True:
    h.pwrite(os.urandom(1 << 20), (i << 20) % size)
    i += 1
"""


def image_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def writer(uri):
    return subprocess.Popen([sys.executable, "-c", WRITER, uri], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_writer(w):
    w.kill()
    w.wait()


def wait_written(img, timeout=20):
    """Until the writer's first write (at offset 0) is in the image."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(img, "rb") as f:
            if f.read(4096) != bytes(4096):
                return True
        time.sleep(0.05)
    return False


a = Qiod("-drive", "file=@DIR@/disk0.img,id=disk0",
         "-object", f"tls-creds-x509,id=tls0,endpoint=server,dir={pki}/srv,verify-peer=on",
         images={"disk0.img": SIZE})
img = os.path.join(a.dir, "disk0.img")
q = a.qmp()
q.cmd("stop")  # the guest itself writes nothing into its disk from now on
sock = os.path.join(a.dir, "nbd.sock")

for mode in ("plain", "tls"):
    if mode == "plain":
        r = q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock}})
        uri = f"nbd+unix:///disk0?socket={sock}"
    else:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
        s.close()
        r = q.cmd("nbd-server-start", {"addr": {"type": "inet", "data": {
            "host": "127.0.0.1", "port": str(tls_port)}}, "tls-creds": "tls0"})
        uri = f"nbds://127.0.0.1:{tls_port}/disk0?tls-certificates={pki}/cli"
    t.ok(r == {"return": {}}, f"{mode}: nbd-server-start", r)
    for how in ("remove", "stop"):
        with open(img, "r+b") as f:
            f.write(bytes(4096))
        r = q.cmd("nbd-server-add", {"device": "disk0", "writable": True})
        w = writer(uri)
        if not t.ok(r == {"return": {}} and wait_written(img), f"{mode}: the client's writes stream in",
                    r):
            stop_writer(w)
            continue
        time.sleep(0.3)  # the socket buffers and TLS's read-ahead fill up
        if how == "remove":
            r = q.cmd("nbd-server-remove", {"name": "disk0", "mode": "hard"})
        else:
            r = q.cmd("nbd-server-stop")
        before = image_digest(img)
        time.sleep(0.5)
        after = image_digest(img)
        t.ok(r == {"return": {}} and before == after,
             f"{mode}: nothing lands in the image after nbd-server-{how} returns"
             + (" in hard mode" if how == "remove" else ""), r)
        stop_writer(w)

# A TLS client that stops reading must not stall the server's main loop
# when its connection ends: the bye to it is dropped, not waited for.
NBD_OPT, NBD_REQ = 0x49484156454F5054, 0x25609513


def stalled_tls_client(port, name=b"disk0"):
    """Connects with STARTTLS and x509, goes to export @name, then sends
    1 MiB reads until the socket takes no more, reading no reply."""
    import ssl
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    recv_exact(s, 18)
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QII", NBD_OPT, 5, 0))  # NBD_OPT_STARTTLS
    recv_exact(s, 20)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{pki}/cli/ca-cert.pem")
    ctx.load_cert_chain(f"{pki}/cli/client-cert.pem", f"{pki}/cli/client-key.pem")
    tls = ctx.wrap_socket(s, server_hostname="localhost")
    tls.sendall(struct.pack(">QII", NBD_OPT, 7, len(name) + 6) + struct.pack(">I", len(name))
                + name + struct.pack(">H", 0))
    while True:
        _, _, typ, length = struct.unpack(">QIII", recv_exact(tls, 20))
        recv_exact(tls, length)
        if typ == 1:  # NBD_REP_ACK
            break
    tls.settimeout(2)
    try:
        while True:
            tls.sendall(struct.pack(">IHHQQI", NBD_REQ, 0, 0, 1, 0, MiB))
    except OSError:  # timed out with the socket full
        pass
    return tls


def greeted(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            return recv_exact(c, 8) == b"NBDMAGIC"
    except OSError:
        return False


def stalled_client_ends(how):
    """Starts the TLS server, ends a stalled client's connection by @how;
    None when qiod answered throughout, else what went wrong."""
    r = q.cmd("nbd-server-start", {"addr": {"type": "inet", "data": {
        "host": "127.0.0.1", "port": str(tls_port)}}, "tls-creds": "tls0"})
    r2 = q.cmd("nbd-server-add", {"device": "disk0", "writable": True})
    if r != {"return": {}} or r2 != {"return": {}}:
        return (r, r2)
    c = stalled_tls_client(tls_port)
    if how == "remove":
        r = q.cmd("nbd-server-remove", {"name": "disk0", "mode": "hard"})
        if r != {"return": {}}:
            return r
        if not greeted(tls_port):
            return "a new client got no greeting"
    r = q.cmd("nbd-server-stop")
    c.close()
    return None if r == {"return": {}} else r


for how in ("remove", "stop"):
    try:
        why = stalled_client_ends(how)
    except OSError as e:  # QMP timed out: qiod's main loop is stuck
        why = "%r" % e
    t.ok(why is None, f"a TLS client that stopped reading: {how} ends it, qiod answers throughout",
         why)
    if why is not None:
        break  # a stuck qiod answers nothing more

# Exports removed while option replies wait for a client that does not
# read them yet: the replies stay whole and name nothing removed as usable.
NBD_REP_ACK, NBD_REP_SERVER, NBD_REP_ERR_UNKNOWN = 1, 2, 2**31 + 6


def option_replies(s, until):
    """(type, payload) of each option reply, up to and including the first
    whose type is in @until or is an error."""
    out = []
    while True:
        magic, _, typ, length = struct.unpack(">QIII", recv_exact(s, 20))
        assert magic == 0x3e889045565a9, hex(magic)
        out.append((typ, recv_exact(s, length)))
        if typ in until or typ >= 2**31:
            return out


def unread_option_client(data):
    """A plain client on the UNIX server that sends @data (options) and
    reads nothing until told."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    recv_exact(s, 18)
    s.sendall(struct.pack(">I", 3) + data)
    time.sleep(0.5)  # the replies fill the socket; the server waits
    return s


r = q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock}})
r2 = q.cmd("nbd-server-add", {"device": "disk0", "name": "gone"})
# NBD_OPT_GO asking for the export's name 30000 times: replies far beyond
# what the socket holds.
name = b"gone"
go_data = struct.pack(">I", len(name)) + name + struct.pack(">H", 30000) + struct.pack(">H", 1) * 30000
c = unread_option_client(struct.pack(">QII", NBD_OPT, 7, len(go_data)) + go_data)
r3 = q.cmd("nbd-server-remove", {"name": "gone", "mode": "hard"})
try:
    replies = option_replies(c, (NBD_REP_ACK,))
    last = replies[-1][0]
except (OSError, EOFError, AssertionError) as e:
    replies, last = [], repr(e)
c.close()
t.ok(r == r2 == r3 == {"return": {}} and last == NBD_REP_ERR_UNKNOWN,
     "an export removed while NBD_OPT_GO's replies wait: the GO fails with NBD_REP_ERR_UNKNOWN",
     (r, r2, r3, len(replies), last))

# NBD_OPT_LIST of 100 exports (4 KiB descriptions), all removed meanwhile.
names = ["l%d" % i for i in range(100)]
def description(n):
    return (n * 4000)[:4000]


added = [q.cmd("nbd-server-add", {"device": "disk0", "name": n, "description": description(n)})
         for n in names]
c = unread_option_client(struct.pack(">QII", NBD_OPT, 3, 0))
removed = [q.cmd("nbd-server-remove", {"name": n, "mode": "hard"}) for n in names]
try:
    listed = []
    for typ, data in option_replies(c, (NBD_REP_ACK,)):
        if typ == NBD_REP_SERVER:
            (n,) = struct.unpack(">I", data[:4])
            listed.append((data[4:4 + n].decode(), data[4 + n:].decode()))
        elif typ != NBD_REP_ACK:
            listed.append(("unexpected reply", typ))
except (OSError, EOFError, AssertionError) as e:
    listed.append(("the replies broke off", repr(e)))
c.close()
t.ok(all(x == {"return": {}} for x in added + removed)
     and listed == [(n, description(n)) for n in names],
     "NBD_OPT_LIST lists the exports it began with, whole, though they are removed meanwhile",
     ([x for x in added + removed if x != {"return": {}}][:2],
      len(listed), [(name, len(desc)) for name, desc in listed[-3:]]))
r = q.cmd("nbd-server-add", {"device": "disk0", "name": "l0"})
t.ok(r == {"return": {}}, "a removed export's name can be used again", r)
q.cmd("nbd-server-stop")

try:
    r = q.cmd("query-status")
except OSError as e:
    r = "%r" % e
t.ok("return" in r and a.proc.poll() is None, "qiod serves on", r)
a.stop()
shutil.rmtree(pki, ignore_errors=True)
t.done()
