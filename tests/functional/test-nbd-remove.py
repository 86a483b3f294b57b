#!/usr/bin/python3
"""nbd-server-remove in hard mode (and nbd-server-stop) while nbdcopy
streams writes into the export, plain and over x509 TLS: once the command
returns nothing more lands in the image (requests already in the socket or
in TLS's read-ahead are dropped, writes being carried out finish first),
and qiod goes on serving."""
import hashlib
import os
import shutil
import signal
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
if not shutil.which("nbdcopy") or not shutil.which("certtool"):
    print("1..0 # SKIP nbdcopy or certtool missing")
    sys.exit(0)

pki = tempfile.mkdtemp(prefix="qio-pki-")
subprocess.run(["bash", os.path.join(HERE, "nbd-pki.sh"), pki], check=True)
src = os.path.join(pki, "src.img")
with open(src, "wb") as f:
    f.write(os.urandom(SIZE))


def image_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def writer(uri):
    """nbdcopy writing the source into @uri again and again (multi-conn)."""
    loop = f'while nbdcopy "{src}" "{uri}"; do :; done'
    return subprocess.Popen(["bash", "-c", loop], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop_writer(w):
    """The loop and the nbdcopy it runs."""
    try:
        os.killpg(w.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    w.wait()


def wait_written(img, timeout=20):
    """Until the export has taken some of the source's data."""
    with open(src, "rb") as f:
        head = f.read(4096)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(img, "rb") as f:
            if f.read(4096) == head:
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
        if not t.ok(r == {"return": {}} and wait_written(img), f"{mode}: nbdcopy writes stream in",
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
