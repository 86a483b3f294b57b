#!/usr/bin/python3
"""nbd-server-remove in hard mode (and nbd-server-stop) while a
python3-libnbd client streams writes into the export, plain and over x509
TLS: once the command returns nothing more lands in the image (requests
already in the socket or in TLS's read-ahead are dropped, writes being
carried out finish first), and qiod goes on serving."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
SIZE = 64 * MiB
t = Tap()
try:
    import nbd  # noqa: F401  (the writer runs it in a child)
except ImportError:
    print("1..0 # SKIP python3-libnbd missing")
    sys.exit(0)

pki = tempfile.mkdtemp(prefix="qio-pki-")
subprocess.run(["bash", os.path.join(HERE, "nbd-pki.sh"), pki], check=True)
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
        port = s.getsockname()[1]
        s.close()
        r = q.cmd("nbd-server-start", {"addr": {"type": "inet", "data": {
            "host": "127.0.0.1", "port": str(port)}}, "tls-creds": "tls0"})
        uri = f"nbds://127.0.0.1:{port}/disk0?tls-certificates={pki}/cli"
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

r = q.cmd("query-status")
t.ok("return" in r and a.proc.poll() is None, "qiod serves on", r)
a.stop()
shutil.rmtree(pki, ignore_errors=True)
t.done()
