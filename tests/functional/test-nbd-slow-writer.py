#!/usr/bin/python3
"""qio-nbd's reader with a client that sends write payloads in pieces, over
TCP plain and TLS (x509, TLS 1.3 and 1.2): while it waits for the rest of a
payload it asks the socket not to wake it before up to 256 KiB more arrived
(SO_RCVLOWAT), so a mark left too high, or computed from the whole payload
instead of what is left, would leave it waiting for bytes that never come.
Payloads of 32 KiB to 4 MiB arrive in pieces of 7 bytes to 64 KiB with the
last piece held back; a refused write's payload too; then a request header
split in two.  Each reply must come within 10 s, and what was written must
read back."""
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import BUILDDIR, Tap, free_port, make_pki, recv_exact, tcp_listening  # noqa: E402

QIO_NBD = os.path.join(BUILDDIR, "tools", "qio-nbd")
SIZE = 64 << 20
t = Tap()
tmp = tempfile.mkdtemp(prefix="qio-nbd-slow-")
pki = make_pki()
rng = random.Random(7)


def start(*tls):
    image = os.path.join(tmp, "img")
    log = open(os.path.join(tmp, "qio-nbd.log"), "w")
    with open(image, "wb") as f:
        f.truncate(SIZE)
    port = free_port()
    p = subprocess.Popen([QIO_NBD, *tls, "-b", "127.0.0.1", "-p", str(port), "-x", "disk", "-t",
                          image], stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(200):
        if tcp_listening(port):
            return p, port
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("qio-nbd did not start: " + server_log())


def server_log():
    with open(os.path.join(tmp, "qio-nbd.log")) as f:
        return f.read()


def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", 0x49484156454F5054, opt, len(data)) + data)


def option_reply(s):
    _, _, typ, length = struct.unpack(">QIII", recv_exact(s, 20))
    return typ, recv_exact(s, length)


def connect(port, tls_version=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert recv_exact(s, 18)[:16] == b"NBDMAGICIHAVEOPT"
    s.sendall(struct.pack(">I", 3))
    if tls_version:
        option(s, 5)  # NBD_OPT_STARTTLS
        assert option_reply(s)[0] == 1
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(pki, "cli", "ca-cert.pem"))
        ctx.load_cert_chain(os.path.join(pki, "cli", "client-cert.pem"),
                            os.path.join(pki, "cli", "client-key.pem"))
        ctx.minimum_version = ctx.maximum_version = tls_version
        s = ctx.wrap_socket(s, server_hostname="localhost")
    option(s, 7, struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0))  # NBD_OPT_GO
    while True:
        typ, data = option_reply(s)
        if typ == 1:
            break
        assert not typ & 0x80000000, (hex(typ), data)
    s.settimeout(10)
    return s


cookie = 0


def command(s, typ, offset, payload=b"", length=None, pieces=(65536,), hold=0.0):
    """Sends one request, its payload in pieces of the sizes given, the last
    one @hold s late; the reply's error and data (reads)."""
    global cookie
    cookie += 1
    length = len(payload) if length is None else length
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, cookie, offset, length))
    at = 0
    while at < len(payload):
        n = min(len(payload) - at, rng.choice(pieces))
        if at + n == len(payload):
            time.sleep(hold)
        s.sendall(payload[at:at + n])
        at += n
    magic, err, got = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == 0x67446698 and got == cookie, (hex(magic), got, cookie)
    data = recv_exact(s, length) if typ == 0 and err == 0 else b""
    return err, data


def writer(s):
    """Every write answered, every payload read back; a description of the
    first that was not."""
    offset = 0
    for length in (32768, 40000, 65536, 300000, 1 << 20, 4 << 20):
        for pieces in ((1000, 5000, 16384), (16384,), (65536, 100), (7,)):
            if pieces == (7,) and length > 65536:
                continue
            payload = rng.randbytes(length)
            try:
                err, _ = command(s, 1, offset, payload, pieces=pieces, hold=0.05)
                if err:
                    return f"write of {length} in pieces {pieces}: error {err}"
                err, data = command(s, 0, offset, length=length)
            except (socket.timeout, ssl.SSLError, OSError, EOFError) as e:
                return f"write of {length} in pieces {pieces}: no reply ({e})"
            if err or data != payload:
                return f"write of {length} in pieces {pieces}: read back differs (error {err})"
            offset = (offset + length) % (SIZE - (4 << 20))
    try:
        # Past the end: refused (ENOSPC), but its payload is still read.
        err, _ = command(s, 1, SIZE - 10, rng.randbytes(200000), pieces=(16384,), hold=0.05)
        if err != 28:
            return f"write past the end: error {err}, not ENOSPC"
        global cookie
        cookie += 1
        header = struct.pack(">IHHQQI", 0x25609513, 0, 0, cookie, 0, 512)
        s.sendall(header[:5])
        time.sleep(0.1)
        s.sendall(header[5:])
        magic, err, got = struct.unpack(">IIQ", recv_exact(s, 16))
        recv_exact(s, 512)
        if (magic, err, got) != (0x67446698, 0, cookie):
            return f"split header: reply {hex(magic)} {err} {got}"
    except (socket.timeout, ssl.SSLError, OSError, EOFError) as e:
        return f"refused write or split header: no reply ({e})"
    return None


tls = ["--object", f"tls-creds-x509,id=tls0,endpoint=server,dir={os.path.join(pki, 'srv')}",
       "--tls-creds", "tls0"]
for name, server_args, version in [("plain TCP", [], None),
                                   ("TLS 1.3", tls, ssl.TLSVersion.TLSv1_3),
                                   ("TLS 1.2", tls, ssl.TLSVersion.TLSv1_2)]:
    p, port = start(*server_args)
    try:
        s = connect(port, version)
        failure = writer(s)
        s.close()
    finally:
        p.kill()
        p.wait()
    t.ok(failure is None, f"{name}: payloads in slow pieces, a refused one, a split header: "
         "every reply, data intact", failure and failure + "\n" + server_log())
t.done()
