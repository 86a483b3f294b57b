#!/usr/bin/python3
"""QEMU's own TLS chardev (qemu-system-x86_64 from Debian) against qiod's:
QEMU as the client of a qiod TLS chardev server, and as the server for a
qiod TLS chardev client (which reconnects and re-handshakes when QEMU is
restarted).  QEMU runs its human monitor on that chardev; qiod types
"info version" into it (x-chardev-write) and reads the answer
(x-chardev-read), so bytes are checked both ways through TLS."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402
from chardevtest import Pki, chardev_info, free_port, wait_connected  # noqa: E402

QEMU = shutil.which("qemu-system-x86_64")
t = Tap()
if not QEMU or not shutil.which("certtool"):
    print("1..0 # SKIP qemu-system-x86_64 or certtool not installed")
    sys.exit(0)
VERSION = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
VERSION = re.search(r"version (\d+\.\d+\.\d+)", VERSION).group(1)

tmp = tempfile.mkdtemp(prefix="chardev-qemu-")
pki = Pki(os.path.join(tmp, "pki"))


def qemu(*chardev_args):
    return subprocess.Popen(
        [QEMU, "-machine", "none", "-nodefaults", "-display", "none", "-S",
         *chardev_args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    return out


def read_chardev(q, label, needle, timeout=15):
    got = ""
    deadline = time.time() + timeout
    while needle not in got and time.time() < deadline:
        got += q.cmd("x-chardev-read", {"id": label, "size": 65536})["return"]
        time.sleep(0.05)
    return got


def info_version(q, label):
    prompt = read_chardev(q, label, "(qemu) ")
    # One byte per TLS record: QEMU 7.2's monitor takes one byte per read
    # and does not look at what GnuTLS still holds of a longer record.
    for ch in "info version\r":
        q.cmd("x-chardev-write", {"id": label, "data": ch})
        time.sleep(0.02)
    answer = read_chardev(q, label, VERSION)
    answer += read_chardev(q, label, "(qemu) ", timeout=5)
    return prompt, answer


# 1. QEMU client -> qiod TLS server
port = free_port()
d = Qiod("-m", "16M",
         "-object", f"tls-creds-x509,id=tls0,dir={pki.server_dir},endpoint=server",
         "-object", "authz-simple,id=auth0,identity=CN=client",
         "-chardev", f"socket,id=c0,host=127.0.0.1,port={port},server=on,wait=off,"
                     "tls-creds=tls0,tls-authz=auth0")
q = d.qmp()
vm = qemu("-object", f"tls-creds-x509,id=tls0,dir={pki.client_dir},endpoint=client",
          "-chardev", f"socket,id=c0,host=127.0.0.1,port={port},tls-creds=tls0",
          "-mon", "chardev=c0,mode=readline")
info = wait_connected(q, "c0")
t.ok(info["connected"] and "CN=client" in info.get("tls", {}).get("peer-identity", ""),
     "QEMU's TLS chardev client connects; query-chardev names its certificate (CN=client)", info)
prompt, answer = info_version(q, "c0")
t.ok("(qemu) " in prompt, "QEMU's monitor banner and prompt reach qiod through TLS", prompt)
t.ok(VERSION in answer and "info version" in answer,
     f"'info version' typed from qiod is answered by QEMU ({VERSION})", answer)
log = stop(vm)
d.stop()

# 2. qiod TLS client -> QEMU TLS server; QEMU restarted: qiod reconnects
port = free_port()
d = Qiod("-m", "16M",
         "-object", f"tls-creds-x509,id=tls0,dir={pki.client_dir},endpoint=client",
         "-chardev", f"socket,id=c0,host=127.0.0.1,port={port},tls-creds=tls0,"
                     "reconnect-ms=200")
q = d.qmp()
server_args = ["-object", f"tls-creds-x509,id=tls0,dir={pki.server_dir},endpoint=server,"
               "verify-peer=on",
               "-chardev", f"socket,id=c0,host=127.0.0.1,port={port},server=on,wait=off,"
               "tls-creds=tls0",
               "-mon", "chardev=c0,mode=readline"]
for round_ in (1, 2):
    vm = qemu(*server_args)
    info = wait_connected(q, "c0")
    t.ok(info["connected"] and "CN=server" in info.get("tls", {}).get("peer-identity", "")
         and info["connections"] == round_,
         f"qiod's TLS chardev client {'connects to' if round_ == 1 else 'reconnects to the restarted'}"
         f" QEMU server (peer CN=server, connection {round_})", info)
    prompt, answer = info_version(q, "c0")
    t.ok("(qemu) " in prompt and VERSION in answer,
         f"'info version' through qiod's TLS client, connection {round_}", prompt + answer)
    stop(vm)
    deadline = time.time() + 10
    while chardev_info(q, "c0")["connected"] and time.time() < deadline:
        time.sleep(0.05)

# 3. a qiod client trusting another CA refuses QEMU's server and never
#    delivers a byte
evil = os.path.join(tmp, "evilcli")
os.makedirs(evil)
shutil.copy(pki.path("evil-cert.pem"), os.path.join(evil, "ca-cert.pem"))
shutil.copy(pki.path("evilclient-cert.pem"), os.path.join(evil, "client-cert.pem"))
shutil.copy(pki.path("evilclient-key.pem"), os.path.join(evil, "client-key.pem"))
r = q.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "evil", "dir": evil,
                         "endpoint": "client"})
vm = qemu(*server_args)
deadline = time.time() + 10
while True:  # until QEMU listens
    r2 = q.cmd("chardev-add", {"id": "e0", "backend": {"type": "socket", "data": {
        "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(port)}},
        "tls-creds": "evil"}}})
    if "return" in r2 or time.time() > deadline:
        break
    time.sleep(0.1)
time.sleep(1)
info = chardev_info(q, "e0") or {"connected": None}
got = q.cmd("x-chardev-read", {"id": "e0", "size": 65536})
t.ok(r == {"return": {}} and r2 == {"return": {}} and not info["connected"] and got == {"return": ""},
     "a qiod client with the wrong CA refuses QEMU's server; nothing is delivered", (r, r2, info, got))
stop(vm)
d.stop()
shutil.rmtree(tmp, ignore_errors=True)
t.done()
