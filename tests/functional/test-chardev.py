#!/usr/bin/python3
"""qiod's chardevs without TLS, against real peers: the serial shell over
TCP and UNIX servers, qiod as a reconnecting client, QMP chardev-add /
chardev-remove / query-chardev, ringbuf wrap-around, null, file and pipe
backends, websocket=on (plain and over TLS) with python3-websockets,
malformed handshakes and frames, and malformed options."""
import asyncio
import base64
import fcntl
import json
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
import tty

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import QIOD, Qiod, Tap, run_qiod  # noqa: E402
from chardevtest import GUEST_PROMPT, Pki, chardev_info, chardev_port, free_port, read_until  # noqa: E402,E501

t = Tap()
tmp = tempfile.mkdtemp(prefix="chardev-test-")


def is_error(reply, part="", cls="GenericError"):
    return ("error" in reply and reply["error"]["class"] == cls
            and part in reply["error"]["desc"])


def serial_exchange(sock, text):
    sock.sendall(text.encode() + b"\r")
    word = text.split(" ", 1)[1].encode()
    return read_until(sock, word + b"\r\n" + GUEST_PROMPT)


def tcp_server(port):
    """A listening socket on 127.0.0.1:@port, accepting within 10 s."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    srv.settimeout(10)
    return srv


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# --- TCP server, serial shell ---------------------------------------------
d = Qiod("-m", "16M",
         "-chardev", "socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on",
         "-serial", "chardev:s0",
         "-chardev", "ringbuf,id=r0,size=16",
         "-chardev", "null,id=n0",
         "-chardev", "socket,id=u0,path=@DIR@/u0.sock,server=on,wait=off,telnet=on",
         "-mon", "chardev=u0,mode=control")
q = d.qmp()
port = chardev_port(q, "s0")
info = chardev_info(q, "s0")
t.ok(info["filename"] == f"disconnected:tcp:127.0.0.1:{port},server=on"
     and not info["connected"] and not info["frontend-open"],
     "query-chardev: a listening TCP chardev is 'disconnected:tcp:HOST:PORT,server=on'", info)
c = socket.create_connection(("127.0.0.1", port))
out = serial_exchange(c, "echo plain-tcp")
t.ok(b"echo plain-tcp\r\nplain-tcp\r\nguest> " in out, "TCP chardev server drives the serial shell",
     out)
info = chardev_info(q, "s0")
t.ok(info["connected"] and info["frontend-open"] and info["peer"].startswith("127.0.0.1:")
     and "tls" not in info, "query-chardev names the connected peer; no TLS member", info)
c.close()
t.ok(wait_for(lambda: not chardev_info(q, "s0")["connected"]), "the peer's close is noticed")
c = socket.create_connection(("127.0.0.1", port))
out = serial_exchange(c, "echo second")
t.ok(b"second\r\nguest> " in out, "the server accepts the next client after the first leaves",
     out)
c.close()

# --- QMP over a UNIX chardev with telnet=on --------------------------------
u = socket.socket(socket.AF_UNIX)
u.connect(os.path.join(d.dir, "u0.sock"))
head = read_until(u, b'"capabilities"')
t.ok(head.startswith(bytes([255, 251, 1])) and b'"QMP"' in head,
     "telnet=on: option negotiation, then the QMP greeting", head)
# Telnet commands from the peer (IAC DO ECHO, IAC SB ... IAC SE) are stripped.
u.sendall(bytes([255, 253, 1]) + b'{"execute":"qmp_capabilities"}\n'
          + bytes([255, 250, 24, 1, 255, 240]) + b'{"execute":"query-status","id":1}\n')
out = read_until(u, b'"id":1')
t.ok(b'"running":true' in out, "QMP over a telnet UNIX chardev, telnet commands stripped", out)
u.close()

# --- telnet=on without a frontend: 0xff both ways ----------------------------
tport0 = free_port()
r = q.cmd("chardev-add", {"id": "t0", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(tport0)}},
    "server": True, "wait": False, "telnet": True}}})
c = socket.create_connection(("127.0.0.1", tport0))
offer = read_until(c, bytes([255, 253, 3]))
t.ok(r == {"return": {}} and offer == bytes([255, 251, 1, 255, 251, 3, 255, 254, 34, 255, 253, 3]),
     "telnet=on via chardev-add: the option offer", (r, offer))
r = q.cmd("x-chardev-write", {"id": "t0", "data": "Yf9i/w==", "format": "base64"})
out = read_until(c, b"b\xff\xff")
t.ok(r == {"return": {"written": 4}} and out == b"a\xff\xffb\xff\xff",
     "telnet=on: a 0xff byte from qiod reaches the peer as IAC IAC", (r, out))
t.ok(is_error(q.cmd("x-chardev-write", {"id": "t0", "data": "x", "format": "hex"}), "'hex'")
     and is_error(q.cmd("x-chardev-read", {"id": "t0", "size": 1, "format": "hex"}), "'hex'"),
     "x-chardev-write / x-chardev-read with an unknown format are refused")
c.sendall(b"x\xff\xffy" + bytes([255, 251, 1, 255, 250, 24, 255, 255, 1, 255, 240]) + b"z")
got = []


def telnet_input():
    r = q.cmd("x-chardev-read", {"id": "t0", "size": 100, "format": "base64"})
    got.append(base64.b64decode(r["return"]))
    return b"".join(got) == b"x\xffyz"


t.ok(wait_for(telnet_input), "telnet=on: IAC IAC from the peer is one 0xff byte; WILL and "
     "SB ... SE (with IAC IAC inside) are stripped", got)
c.close()

# --- ringbuf, null --------------------------------------------------------
r = q.cmd("ringbuf-write", {"device": "r0", "data": "0123456789abcdefXYZ"})
r2 = q.cmd("ringbuf-read", {"device": "r0", "size": 100})
t.ok(r == {"return": {}} and r2.get("return") == "3456789abcdefXYZ",
     "ringbuf size=16 keeps the newest 16 bytes (wrap-around)", r2)
q.cmd("ringbuf-write", {"device": "r0", "data": "aGVsbG8=", "format": "base64"})
r = q.cmd("ringbuf-read", {"device": "r0", "size": 3})
r2 = q.cmd("ringbuf-read", {"device": "r0", "size": 10, "format": "base64"})
t.ok(r.get("return") == "hel" and r2.get("return") == "bG8=",
     "ringbuf base64 in and out, partial reads", (r, r2))
t.ok(is_error(q.cmd("ringbuf-read", {"device": "n0", "size": 1}), "not a ringbuf"),
     "ringbuf-read on a null chardev is refused")
t.ok(is_error(q.cmd("ringbuf-read", {"device": "nope", "size": 1}), "'nope'", "DeviceNotFound"),
     "ringbuf-read on an unknown chardev: DeviceNotFound")
t.ok(is_error(q.cmd("ringbuf-write", {"device": "r0", "data": "x", "format": "hex"}), "hex"),
     "ringbuf-write with an unknown format is refused")
t.ok(is_error(q.cmd("x-chardev-read", {"id": "t0", "size": -1}), "negative"),
     "x-chardev-read with a negative size is refused")
for bad in ("aGVs!bG8=", "aGVsbG8", "aGV=sbG8", "a==="):
    r = q.cmd("ringbuf-write", {"device": "r0", "data": bad, "format": "base64"})
    r2 = q.cmd("ringbuf-read", {"device": "r0", "size": 100})
    t.ok(is_error(r, "not valid base64") and r2.get("return") == "",
         f"ringbuf-write refuses malformed base64 {bad!r} and writes nothing", (r, r2))

# --- chardev-add / chardev-remove ----------------------------------------
cport = free_port()
r = q.cmd("chardev-add", {"id": "c1", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(cport)}},
    "server": True, "wait": False}}})
c = socket.create_connection(("127.0.0.1", cport))
t.ok(r == {"return": {}} and wait_for(lambda: chardev_info(q, "c1")["connected"]),
     "chardev-add (QEMU's nested form) creates a TCP server that accepts", r)
c.close()
r = q.cmd("chardev-add", {"id": "f1", "backend": {"type": "file", "data": {
    "out": os.path.join(tmp, "out.txt")}}})
t.ok(r == {"return": {}} and os.path.exists(os.path.join(tmp, "out.txt")),
     "chardev-add file creates the file")
r = q.cmd("chardev-add", {"id": "p1", "backend": {"type": "pty", "data": {}}})
t.ok(r.get("return", {}).get("pty", "").startswith("/dev/pts/"), "chardev-add pty returns its pty",
     r)
t.ok(is_error(q.cmd("chardev-add", {"id": "c1", "backend": {"type": "null"}}), "already exists"),
     "chardev-add with a taken id is refused")
t.ok(is_error(q.cmd("chardev-add", {"id": "x", "backend": {"type": "parallel"}}), "'parallel'"),
     "chardev-add with an unknown backend is refused")
t.ok(is_error(q.cmd("chardev-add", {"id": "x", "backend": {"type": "socket", "data": {
    "addr": {"type": "carrier-pigeon", "data": {}}}}}), "addr"),
     "chardev-add with an unknown address type is refused")
lax = [
    ({"type": "unix", "data": {"host": "127.0.0.1", "port": "0"}}, "no field 'host'"),
    ({"type": "inet", "data": {"host": "127.0.0.1", "port": "0", "to": "9"}}, "no field 'to'"),
    ({"type": "inet", "data": {"host": "127.0.0.1", "port": "0", "ipv6": True}},
     "no field 'ipv6'"),
]
for addr, part in lax:
    r = q.cmd("chardev-add", {"id": "x", "backend": {"type": "socket", "data": {
        "addr": addr, "server": True}}})
    t.ok(is_error(r, part) and "'x'" in r["error"]["desc"],
         f"chardev-add with {addr['type']} address fields {sorted(addr['data'])}: refused, "
         "not reinterpreted", r)
r = q.cmd("chardev-add", {"id": "x", "backend": {"type": "socket", "data": {
    "path": os.path.join(tmp, "u1"),
    "addr": {"type": "unix", "data": {"path": os.path.join(tmp, "u2")}}, "server": True}}})
t.ok(is_error(r, "a second time"), "chardev-add with 'path' and a unix 'addr': refused", r)
upath = os.path.join(tmp, "u3")
r = q.cmd("chardev-add", {"id": "u3", "backend": {"type": "socket", "data": {
    "addr": {"type": "unix", "data": {"path": upath, "abstract": False, "tight": True}},
    "server": True}}})
t.ok(r == {"return": {}} and os.path.exists(upath) and q.cmd("chardev-remove", {"id": "u3"})
     == {"return": {}}, "chardev-add with QAPI's defaults abstract=false, tight=true: accepted", r)
r = q.cmd("chardev-add", {"id": "x", "backend": {"type": "file", "data": {
    "path": os.path.join(tmp, "f1"), "out": os.path.join(tmp, "f2")}}})
t.ok(is_error(r, "a second time") and not os.path.exists(os.path.join(tmp, "f2")),
     "chardev-add of a file with both 'path' and 'out': refused", r)
t.ok(is_error(q.cmd("chardev-add", {"id": "x", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": "1"}}, "server": False}}}),
    "'x'"), "chardev-add of a client whose server is absent fails, naming the chardev")
# From QMP a server does not wait for its first client (QEMU's default
# there too), and asking it to would stop qiod: refused.
sport = free_port()
r = q.cmd("chardev-add", {"id": "nw", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(sport)}},
    "server": True}}})
r2 = q.cmd("query-status")
r3 = q.cmd("chardev-remove", {"id": "nw"})
t.ok(r == r3 == {"return": {}} and "return" in r2,
     "chardev-add of a server without 'wait' returns at once; qiod answers on", (r, r2, r3))
t.ok(is_error(q.cmd("chardev-add", {"id": "w", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(sport)}},
    "server": True, "wait": True}}}), "would stop qiod"),
     "chardev-add of a server with wait=true is refused")
# A client whose server does not answer (its accept queue is full, so the
# kernel drops the SYNs) connects in the background: other QMP clients are
# served meanwhile, and chardev-add answers once the server accepts.
hold = socket.socket()
hold.bind(("127.0.0.1", 0))
hold.listen(0)
hport = hold.getsockname()[1]
filler = socket.create_connection(("127.0.0.1", hport))
q.send_raw(json.dumps({"execute": "chardev-add", "arguments": {"id": "slow", "backend": {
    "type": "socket", "data": {"addr": {"type": "inet", "data": {
        "host": "127.0.0.1", "port": str(hport)}}, "server": False}}}}).encode() + b"\n")
time.sleep(0.3)
other = d.qmp()
start = time.time()
r = other.cmd("query-status")
served = time.time() - start
taken = is_error(other.cmd("chardev-add", {"id": "slow", "backend": {"type": "null"}}),
                 "already exists")
hold.accept()[0].close()
hold.settimeout(20)
peer, _ = hold.accept()
q.sock.settimeout(20)
r2 = q.reply()
labels = [x["label"] for x in other.cmd("query-chardev")["return"]]
t.ok("return" in r and served < 5 and taken and r2 == {"return": {}} and "slow" in labels,
     "chardev-add of a client whose server does not answer yet holds nobody, keeps its id "
     "taken, and answers once connected", (r, served, taken, r2, labels))
r = q.cmd("chardev-remove", {"id": "slow"})
for s_ in (peer, filler, hold):
    s_.close()
other.close()
# chardev-remove of a client still connecting: its chardev-add fails.
hold = socket.socket()
hold.bind(("127.0.0.1", 0))
hold.listen(0)
filler = socket.create_connection(("127.0.0.1", hold.getsockname()[1]))
q.send_raw(json.dumps({"execute": "chardev-add", "arguments": {"id": "gone", "backend": {
    "type": "socket", "data": {"addr": {"type": "inet", "data": {
        "host": "127.0.0.1", "port": str(hold.getsockname()[1])}}, "server": False}}}}).encode()
    + b"\n")
time.sleep(0.3)
other = d.qmp()
r = other.cmd("chardev-remove", {"id": "gone"})
r2 = q.reply()
labels = [x["label"] for x in other.cmd("query-chardev")["return"]]
t.ok(r == {"return": {}} and is_error(r2, "removed before it connected") and "gone" not in labels,
     "chardev-remove of a client still connecting: removed, and its chardev-add fails saying so",
     (r, r2, labels))
other.close()
filler.close()
hold.close()
# A server on a UNIX path where a live server's backlog is full: qiod
# probes the path without waiting, leaves it alone and says it is in use.
busy_path = os.path.join(tmp, "busy.sock")
busy = socket.socket(socket.AF_UNIX)
busy.bind(busy_path)
busy.listen(0)
queued = socket.socket(socket.AF_UNIX)
queued.connect(busy_path)
start = time.time()
r = q.cmd("chardev-add", {"id": "busy", "backend": {"type": "socket", "data": {
    "addr": {"type": "unix", "data": {"path": busy_path}}, "server": True}}})
took = time.time() - start
t.ok(is_error(r, "in use") and took < 5 and os.path.exists(busy_path),
     "chardev-add server on a live UNIX socket whose backlog is full: refused at once, "
     "the socket left alone", (r, took))
queued.close()
busy.close()
t.ok(is_error(q.cmd("chardev-remove", {"id": "s0"}), "busy"),
     "chardev-remove of the serial port's chardev is refused (busy)")
r = q.cmd("chardev-remove", {"id": "c1"})
labels = [x["label"] for x in q.cmd("query-chardev")["return"]]
refused = False
try:
    socket.create_connection(("127.0.0.1", cport), timeout=2).close()
except OSError:
    refused = True
t.ok(r == {"return": {}} and "c1" not in labels and refused,
     "chardev-remove closes the listening socket", labels)
t.ok(is_error(q.cmd("chardev-remove", {"id": "c1"}), "'c1'", "DeviceNotFound"),
     "chardev-remove of an unknown id: DeviceNotFound")
d.stop()

# --- qiod as a client that reconnects; pipe; file ---------------------------
sport = free_port()
srv = tcp_server(sport)
fifo = os.path.join(tmp, "pipe")
os.mkfifo(fifo + ".in")
os.mkfifo(fifo + ".out")
d = Qiod("-m", "16M",
         "-chardev", f"socket,id=c0,host=127.0.0.1,port={sport},reconnect-ms=100",
         "-serial", "chardev:c0",
         "-chardev", f"pipe,id=p0,path={fifo}",
         "-mon", "chardev=p0,mode=control")
q = d.qmp()
conn, _ = srv.accept()
out = serial_exchange(conn, "echo from-server")
t.ok(b"from-server\r\nguest> " in out, "qiod's client chardev drives the serial shell", out)
conn.close()
srv.close()
t.ok(wait_for(lambda: not chardev_info(q, "c0")["connected"]), "the client notices the close")
time.sleep(0.5)
srv = tcp_server(sport)
conn, _ = srv.accept()
out = serial_exchange(conn, "echo reconnected")
info = chardev_info(q, "c0")
t.ok(b"reconnected\r\nguest> " in out and info["connections"] == 2,
     "after a server restart, reconnect-ms=100 reconnects", info)
conn.close()
srv.close()
# QEMU 7.2's spelling, in seconds, through chardev-add: the absent server
# is waited for and found once it listens.
rport = free_port()
r = q.cmd("chardev-add", {"id": "c9", "backend": {"type": "socket", "data": {
    "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(rport)}},
    "server": False, "reconnect": 1}}})
info = chardev_info(q, "c9")
t.ok(r.get("return") is not None and info.get("reconnect-ms") == 1000 and not info["connected"],
     "chardev-add with reconnect=1 (seconds): 1000 ms, waiting for its server", (r, info))
srv = tcp_server(rport)
conn, _ = srv.accept()
t.ok(wait_for(lambda: chardev_info(q, "c9")["connected"]),
     "the reconnect=1 client connects once its server listens")
conn.close()
srv.close()
q.cmd("chardev-remove", {"id": "c9"})
# QMP over the pipe chardev: requests into PATH.in, replies from PATH.out
fin = os.open(fifo + ".in", os.O_WRONLY)
fout = os.open(fifo + ".out", os.O_RDONLY | os.O_NONBLOCK)
os.write(fin, b'{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":3}\n')


class Fd:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


out = read_until(Fd(fout), b'"id":3')
os.close(fin)
os.close(fout)
t.ok(chardev_info(q, "p0")["filename"] == f"pipe:{fifo}" and b'"QMP"' in out
     and b'"running":true' in out, "QMP over a pipe chardev (PATH.in / PATH.out)", out)
d.stop()

logf = os.path.join(tmp, "serial.log")
with open(logf, "w") as f:
    f.write("old line\n")
d = Qiod("-m", "16M", "-chardev", f"file,id=f0,path={logf},append=on", "-serial", "chardev:f0")
q = d.qmp()
q.cmd("guest-serial-write", {"data": "echo into-the-file\r"})
ok = wait_for(lambda: "into-the-file\r\nguest> " in open(logf, newline="").read())
text = open(logf, newline="").read()
t.ok(ok and text.startswith("old line\n"), "file chardev with append=on keeps the old content and "
     "receives the serial output", text)
d.stop()

# A FIFO as the file backend: refused at once while nobody reads it (open()
# would wait for a reader), used once a reader is there.
fifo_out = os.path.join(tmp, "serial.fifo")
os.mkfifo(fifo_out)
rc, out, err = run_qiod("-m", "16M", "-chardev", f"file,id=f0,path={fifo_out}",
                        "-serial", "chardev:f0", timeout=10)
t.ok(rc == 1 and "has no reader" in err and fifo_out in err,
     "-chardev file on a FIFO nobody reads: qiod exits at once, naming the FIFO", (rc, err))
d = Qiod("-m", "16M")
q = d.qmp()
r = q.cmd("chardev-add", {"id": "ff", "backend": {"type": "file", "data": {"out": fifo_out}}})
t.ok(is_error(r, "has no reader"), "chardev-add of a FIFO nobody reads: a prompt error", r)
reader = os.open(fifo_out, os.O_RDONLY | os.O_NONBLOCK)
r = q.cmd("chardev-add", {"id": "ff", "backend": {"type": "file", "data": {"out": fifo_out}}})
t.ok(r == {"return": {}}, "chardev-add of a FIFO with a reader", r)
os.close(reader)
d.stop()

# --- websocket=on, plain and over TLS --------------------------------------
async def ws_talk(uri, line, ssl_ctx=None):
    async with websockets.connect(uri, ssl=ssl_ctx, subprotocols=["binary"]) as ws:
        await ws.send(line.encode())
        got = b""
        while GUEST_PROMPT not in got.split(b"\r\n")[-1] or line.split()[1].encode() not in got:
            msg = await asyncio.wait_for(ws.recv(), 10)
            got += msg if isinstance(msg, bytes) else msg.encode()
        return got

pki = Pki(os.path.join(tmp, "pki")) if shutil.which("certtool") else None
wport, tport = free_port(), free_port()
args = ["-m", "16M", "-chardev",
        f"socket,id=w0,host=127.0.0.1,port={wport},server=on,wait=off,websocket=on",
        "-serial", "chardev:w0"]
d = Qiod(*args)
q = d.qmp()
got = asyncio.run(ws_talk(f"ws://127.0.0.1:{wport}/", "echo over-ws\r"))
t.ok(b"over-ws\r\nguest> " in got, "python3-websockets drives the serial shell (websocket=on)",
     got)
# A malformed handshake and a malformed frame: the connection is dropped,
# nothing reaches the guest, and the server serves the next client.
for name, data in (("a plain HTTP GET without Upgrade", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                   ("garbage instead of a handshake", b"dirty 777\r\n\r\n"),
                   ("an unmasked client frame", None)):
    s = socket.create_connection(("127.0.0.1", wport))
    if data is None:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        read_until(s, b"\r\n\r\n")
        data = bytes([0x82, 10]) + b"dirty 777\r"
    s.sendall(data)
    s.settimeout(10)
    rest = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    s.close()
    rate = q.cmd("query-guest")["return"]["dirty-rate"]
    t.ok(rate == 0 and GUEST_PROMPT not in rest, f"websocket: {name} is refused", rest)
got = asyncio.run(ws_talk(f"ws://127.0.0.1:{wport}/", "echo after-bad\r"))
t.ok(b"after-bad\r\nguest> " in got, "websocket: the next client is served", got)
d.stop()

if pki:
    d = Qiod("-m", "16M",
             "-object", f"tls-creds-x509,id=tls0,dir={pki.server_dir},endpoint=server",
             "-chardev", f"socket,id=w0,host=127.0.0.1,port={tport},server=on,wait=off,"
                         "websocket=on,tls-creds=tls0",
             "-serial", "chardev:w0")
    q = d.qmp()
    ctx = ssl.create_default_context(cafile=pki.path("ca-cert.pem"))
    ctx.load_cert_chain(pki.path("client-cert.pem"), pki.path("client-key.pem"))
    got = asyncio.run(ws_talk(f"wss://localhost:{tport}/", "echo over-wss\r", ctx))
    t.ok(b"over-wss\r\nguest> " in got, "secure websocket (wss, client certificate) drives the "
         "serial shell", got)
    nocert = ssl.create_default_context(cafile=pki.path("ca-cert.pem"))
    try:
        got = asyncio.run(ws_talk(f"wss://localhost:{tport}/", "echo no-cert\r", nocert))
    except Exception as e:  # noqa: BLE001 - any failure is a refusal
        got = repr(e).encode()
    t.ok(b"no-cert\r\nguest> " not in got, "wss without a client certificate is refused", got)
    d.stop()

# --- pty and stdio ---------------------------------------------------------
d = Qiod("-m", "16M", "-chardev", "pty,id=p0", "-serial", "chardev:p0")
q = d.qmp()
pty = chardev_info(q, "p0")["filename"][len("pty:"):]
fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
os.write(fd, b"echo via-pty\r")
out = read_until(Fd(fd), b"via-pty\r\n" + GUEST_PROMPT)
os.close(fd)
t.ok(pty.startswith("/dev/pts/") and b"via-pty\r\nguest> " in out,
     "pty: the serial shell answers on the reported /dev/pts/N", out)
d.stop()

p = subprocess.Popen([QIOD, "-m", "16M", "-chardev", "stdio,id=io", "-serial", "chardev:io"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
p.stdin.write(b"echo via-stdio\r")
p.stdin.flush()
out = read_until(p.stdout, b"via-stdio\r\n" + GUEST_PROMPT)
p.terminate()
p.wait(10)
for f in (p.stdin, p.stdout, p.stderr):
    f.close()
t.ok(b"via-stdio\r\nguest> " in out, "stdio: the serial shell on qiod's standard streams", out)

# qiod's standard streams share their file status flags with whoever
# started it: made non-blocking while qiod runs, they are put back.
in_r, in_w = os.pipe()
out_r, out_w = os.pipe()
p = subprocess.Popen([QIOD, "-m", "16M", "-chardev", "stdio,id=io", "-serial", "chardev:io"],
                     stdin=in_r, stdout=out_w, stderr=subprocess.DEVNULL)
os.write(in_w, b"echo flags\r")
got = b""
deadline = time.time() + 10
while b"flags\r\n" not in got and time.time() < deadline:
    got += os.read(out_r, 4096)
running = [fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK for fd in (in_r, out_w)]
p.terminate()
p.wait(10)
after = [fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK for fd in (in_r, out_w)]
for fd in (in_r, in_w, out_r, out_w):
    os.close(fd)
t.ok(all(running) and not any(after),
     "stdio: non-blocking while qiod runs, blocking again after it exits", (running, after))

# --- mux=on: serial shell and QMP monitor on one socket -------------------
mport = free_port()
d = Qiod("-m", "16M",
         "-chardev", f"socket,id=x0,host=127.0.0.1,port={mport},server=on,wait=off,mux=on",
         "-serial", "chardev:x0", "-mon", "chardev=x0,mode=control")
q = d.qmp()
c = socket.create_connection(("127.0.0.1", mport))
greeting = read_until(c, b'"capabilities"')
out = serial_exchange(c, "echo focus-on-serial")
t.ok(b'"QMP"' in greeting and b"focus-on-serial\r\nguest> " in out,
     "mux: the monitor greets, the serial shell has the focus", greeting + out)
c.sendall(b"\x01c" + b'{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":5}\n')
out = read_until(c, b'"id":5')
t.ok(b'"running":true' in out and b"guest> " not in out and chardev_info(q, "x0")["focus"] == 1,
     "mux: C-a c moves the focus to the QMP monitor", out)
c.sendall(b"\x01h")
out = read_until(c, b"C-a C-a")
t.ok(b"C-a c" in out, "mux: C-a h prints the escape keys", out)
c.sendall(b"\x01c")
out = serial_exchange(c, "echo back-to-serial")
t.ok(b"back-to-serial\r\nguest> " in out and chardev_info(q, "x0")["focus"] == 0,
     "mux: C-a c again returns to the serial shell", out)
# C-a C-a c: the C-a goes to the shell (which ignores control bytes) and
# the 'c' is typed, not taken as an escape.
c.sendall(b"echo a\x01\x01c\r")
out = read_until(c, b"ac\r\n" + GUEST_PROMPT)
t.ok(b"ac\r\nguest> " in out and chardev_info(q, "x0")["focus"] == 0,
     "mux: C-a C-a sends C-a to the focused frontend, ending the escape", out)
c.sendall(b"\x01h")
out = read_until(c, b"C-a C-a")
t.ok(all(k in out for k in (b"C-a x", b"C-a s", b"C-a t", b"C-a b")),
     "mux: C-a h lists C-a x, s, t and b", out)
c.sendall(b"\x01t")
out = serial_exchange(c, "echo stamped")
info = chardev_info(q, "x0")
t.ok(re.search(rb"\r\n\[00:00:\d\d\.\d\d\d\] stamped\r\n\[00:00:\d\d\.\d\d\d\] guest> ", out)
     and info["timestamps"], "mux: C-a t starts each output line with [hh:mm:ss.mmm]", out)
c.sendall(b"\x01t")
out = serial_exchange(c, "echo unstamped")
t.ok(b"\r\nunstamped\r\nguest> " in out and not chardev_info(q, "x0")["timestamps"],
     "mux: C-a t again turns the timestamps off", out)
# A break reaches the focused frontend and is ignored: the serial shell
# and the QMP session (no new greeting, no new negotiation) go on.
c.sendall(b"\x01b")
out = serial_exchange(c, "echo after-break")
t.ok(b"after-break\r\nguest> " in out, "mux: C-a b to the serial port, the shell goes on", out)
c.sendall(b"\x01c\x01b" + b'{"execute":"query-status","id":7}\n')
out = read_until(c, b'"id":7')
c.sendall(b"\x01c")
t.ok(b'"running":true' in out and b'"QMP"' not in out and d.proc.poll() is None,
     "mux: C-a b to the QMP monitor, the session goes on", out)
c.close()
d.stop()

# --- mux C-a s (flush the disks) and C-a x (quit) ---------------------------
mport = free_port()
d = Qiod("-m", "16M", "-drive", "file=@DIR@/d0.img,id=d0",
         "-chardev", f"socket,id=x0,host=127.0.0.1,port={mport},server=on,wait=off,mux=on",
         "-serial", "chardev:x0", images={"d0.img": 1 << 20})
q = d.qmp()
c = socket.create_connection(("127.0.0.1", mport))
c.sendall(b"\x01s")
out = read_until(c, b"flushed\r\n")
t.ok(b"qiod: the guest's disks are flushed" in out, "mux: C-a s flushes the guest's disks", out)
c.sendall(b"\x01x")
out = read_until(c, b"terminated")
ev = q.event("SHUTDOWN")
t.ok(b"qiod: terminated" in out and ev and ev["data"]["reason"] == "host-qmp-quit"
     and d.wait() == 0, "mux: C-a x quits qiod with SHUTDOWN (host-qmp-quit), exit status 0",
     (out, ev))
c.close()
d.stop()

# --- quit over a chardev monitor: the reply and SHUTDOWN reach the peer -----
qport = free_port()
d = Qiod("-m", "16M",
         "-chardev", f"socket,id=m0,host=127.0.0.1,port={qport},server=on,wait=off",
         "-mon", "chardev=m0,mode=control")
c = socket.create_connection(("127.0.0.1", qport))
read_until(c, b'"capabilities"')
c.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
out = read_until(c, b"host-qmp-quit")
c.close()
t.ok(b'"SHUTDOWN"' in out and d.wait() == 0,
     "quit over a chardev monitor: the SHUTDOWN event reaches the peer, qiod exits 0", out)
d.stop()

# --- malformed options -----------------------------------------------------
bad = [
    (["-chardev", "socket,id=s"], "exactly one address"),
    (["-chardev", "socket,id=s,host=127.0.0.1"], "exactly one address"),
    (["-chardev", "socket,id=s,host=127.0.0.1,port=99999"], "'99999'"),
    (["-chardev", "socket,id=s,path=/tmp/x,host=h,port=1"], "exactly one address"),
    (["-chardev", "socket,id=s,path=/tmp/x,server=maybe"], "server='maybe'"),
    (["-chardev", "socket,id=s,path=/tmp/x,colour=red"], "'colour'"),
    (["-chardev", "socket,id=s,path=/tmp/x,websocket=on"], "websocket=on needs server=on"),
    (["-chardev", "socket,id=s,path=/tmp/x,server=on,reconnect-ms=5"], "reconnect-ms"),
    (["-chardev", "socket,id=s,path=/tmp/x,reconnect=1,reconnect-ms=5"], "not both"),
    (["-chardev", "socket,id=s,path=/tmp/x,reconnect=soon"], "reconnect='soon'"),
    (["-chardev", "socket,id=s,path=/tmp/x,server=on,wait=off,tls-creds=nope"],
     "chardev 's': No object with id 'nope'"),
    (["-chardev", "socket,id=s,fd=abc"], "'abc'"),
    (["-chardev", "ringbuf,id=r,size=1000"], "power of two"),
    (["-chardev", "ringbuf,id=r,size=-1"], "size='-1'"),
    (["-chardev", "file,id=f"], "path=FILE"),
    (["-chardev", "file,id=f,path=/nonexistent-dir/x"], "/nonexistent-dir/x"),
    (["-chardev", "pipe,id=p,path=/nonexistent-dir/p"], "/nonexistent-dir/p"),
    (["-chardev", "serial,id=x"], "unknown backend 'serial'"),
    (["-chardev", "null"], "needs a backend and an id"),
    (["-chardev", "null,id=a", "-chardev", "null,id=a"], "already exists"),
    (["-serial", "chardev:nope"], "'nope'"),
    (["-serial", "tcp:127.0.0.1:4"], "-serial chardev:ID"),
    (["-mon", "chardev=nope,mode=control"], "'nope'"),
    (["-chardev", "null,id=n", "-mon", "chardev=n,mode=readline"], "mode 'readline'"),
    (["-chardev", "null,id=n", "-serial", "chardev:n", "-mon", "chardev=n"], "already in use"),
    (["-chardev", "null,id=n,mux=perhaps"], "mux='perhaps'"),
    (["-chardev", "null,id=n", "-mon", "chardev=n,tls-creds=t"], "either chardev=ID or an address"),
    (["-mon", "unix:/tmp/x.sock,chardev=n"], "either chardev=ID or an address"),
]
for args, part in bad:
    rc, out, err = run_qiod("-m", "16M", *args)
    t.ok(rc == 1 and part in err and err.startswith("qiod: "),
         f"qiod {' '.join(args)}: refused ({part})", err)

shutil.rmtree(tmp, ignore_errors=True)
# --- the serial port's flow control while the shell is busy -----------------
# `digest` of 512 MiB takes a second or more on a worker; 8 KiB typed behind
# it is more than the shell's 4 KiB input buffer: the chardev stops reading
# until the digest prints, so no line is lost.
d = Qiod("-m", "512M",
         "-chardev", "socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off",
         "-serial", "chardev:s0")
q = d.qmp()
c = socket.create_connection(("127.0.0.1", chardev_port(q, "s0")))
lines = [f"echo line-{i:04d}" for i in range(500)]
c.sendall(b"digest\r" + "".join(line + "\r" for line in lines).encode())
out = read_until(c, b"line-0499\r\nguest> ", timeout=60)
answered = [i for i in range(500) if f"\r\nline-{i:04d}\r\n".encode() in out]
ram_digest = q.cmd("query-guest")["return"]["ram-digest"]
t.ok(len(answered) == 500 and f"digest\r\n{ram_digest}\r\n".encode() in out,
     "8 KiB typed behind a digest over a chardev: every line runs after the digest prints",
     f"{len(answered)} of 500 answered; {out[:120]!r}")
c.close()
d.stop()

# --- a peer connecting in a loop does not fill the log ----------------------
logdir = tempfile.mkdtemp(prefix="qio-chr-log-")
logpath = os.path.join(logdir, "qiod.log")
d = Qiod("-m", "64M", "-D", logpath,
         "-chardev", "socket,id=s9,host=127.0.0.1,port=0,server=on,wait=off")
q = d.qmp()
port = chardev_port(q, "s9")
for _ in range(200):
    socket.create_connection(("127.0.0.1", port)).close()
    time.sleep(0.002)
time.sleep(1.2)
socket.create_connection(("127.0.0.1", port)).close()
time.sleep(0.5)
q.cmd("quit")
d.wait(10)
with open(logpath) as f:
    lines = [x for x in f if "chardev 's9'" in x]
t.ok(0 < len(lines) <= 12 and any("more lines about this chardev's peers not logged" in x
                                   for x in lines),
     "200 connections in a loop: a few log lines and a count, not 400 lines",
     (len(lines), lines[-3:]))
d.stop()
shutil.rmtree(logdir, ignore_errors=True)

# --- chardev-add with a descriptor ---------------------------------------
# From the monitor a descriptor is named (getfd), as in QEMU: a number would
# be one of qiod's own (fd 4 was its QMP listener, taken and closed).
d = Qiod("-m", "64M")
q = d.qmp()
r = q.cmd("chardev-add", {"id": "n4", "backend": {"type": "socket", "data": {
    "addr": {"type": "fd", "data": {"str": "4"}}, "server": True}}})
t.ok("is a number; from the monitor, pass the descriptor with getfd" in
     r.get("error", {}).get("desc", "") and "return" in q.cmd("query-status"),
     "chardev-add with fd '4': refused, qiod's own descriptors stay its own", r)
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(1)
q.sock.sendmsg([b'{"execute":"getfd","arguments":{"fdname":"cfd"}}\n'],
               [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", lsock.fileno()))])
r1 = q.reply()
# A chardev-add refused for another argument leaves the descriptor for
# the next try.
r0 = q.cmd("chardev-add", {"id": "n1", "backend": {"type": "socket", "data": {
    "addr": {"type": "fd", "data": {"str": "cfd"}}, "server": True, "wait": True}}})
r2 = q.cmd("chardev-add", {"id": "n1", "backend": {"type": "socket", "data": {
    "addr": {"type": "fd", "data": {"str": "cfd"}}, "server": True}}})
c = socket.create_connection(lsock.getsockname(), timeout=10)
deadline = time.time() + 10
info = {}
while time.time() < deadline:
    info = {x["label"]: x for x in q.cmd("query-chardev")["return"]}.get("n1", {})
    if info.get("connected"):
        break
    time.sleep(0.05)
t.ok(r1 == {"return": {}} and "error" in r0 and r2 == {"return": {}} and info.get("connected"),
     "getfd 'cfd' with a listening socket; a chardev-add refused for wait=true keeps it; "
     "chardev-add fd 'cfd' serves", (r1, r0, r2, info))
c.close()
lsock.close()
q.close()
d.stop()

t.done()
