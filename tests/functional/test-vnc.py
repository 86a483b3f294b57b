#!/usr/bin/python3
"""qiod's VNC server at the protocol level, with a client written here from
RFC 6143: RFB 3.3/3.7/3.8 handshakes, VNC password (DES checked with
openssl), pixel formats against screendump, key events, VeNCrypt over
Python's ssl with certtool certificates, websockets, the connections
limit, query-vnc / set_password / display-reload, and malformed input
from the client and on the command line."""
import atexit
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import (Qiod, Tap, closed_by_server, free_port, make_pki,  # noqa: E402
                      recv_exact, run_qiod)

t = Tap()
tmp = tempfile.mkdtemp(prefix="qiod-vnc-")
atexit.register(shutil.rmtree, tmp, True)
pki = make_pki()
with open(os.path.join(tmp, "keys.psk"), "w") as f:
    f.write("qemu:" + "ab" * 32 + "\n")


def des_response(password, challenge):
    """The VNC authentication response, computed by openssl."""
    key = bytes(int(f"{c:08b}"[::-1], 2) for c in (password.encode() + bytes(8))[:8])
    p = subprocess.run(["openssl", "enc", "-des-ecb", "-nopad", "-K", key.hex(),
                        "-provider", "legacy", "-provider", "default"],
                       input=challenge, capture_output=True, check=True)
    return p.stdout


def read_ppm(path):
    data = open(path, "rb").read()
    parts = data.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return w, h, parts[3]


class Rfb:
    """One RFB connection over a socket-like object."""

    def __init__(self, sock):
        self.s = sock

    def recv(self, n):
        return recv_exact(self.s, n)

    def u32(self):
        return struct.unpack(">I", self.recv(4))[0]

    def handshake(self, version=b"RFB 003.008\n", password=None, vencrypt=None):
        """Up to ServerInit; returns (width, height, pixel format bytes)."""
        assert self.recv(12) == b"RFB 003.008\n"
        self.s.sendall(version)
        if version not in (b"RFB 003.007\n", b"RFB 003.008\n"):
            sec = self.u32()
        else:
            n = self.recv(1)[0]
            sec = self.recv(n)[0]
            self.s.sendall(bytes([sec]))
        if sec == 19:
            self.vencrypt(vencrypt)
            sec = {257: 1, 260: 1, 258: 2, 261: 2}[self.subtype]
            version = b"RFB 003.008\n"
        if sec == 2:
            challenge = self.recv(16)
            self.s.sendall(des_response(password, challenge))
        if sec == 2 or version == b"RFB 003.008\n":
            result = self.u32()
            if result != 0:
                reason = self.recv(self.u32()) if version == b"RFB 003.008\n" else b""
                raise PermissionError(reason.decode())
        self.s.sendall(b"\1")
        init = self.recv(24)
        w, h = struct.unpack(">HH", init[:4])
        self.name = self.recv(struct.unpack(">I", init[20:24])[0])
        return w, h, init[4:20]

    def vencrypt(self, context):
        assert self.recv(2) == b"\0\2"
        self.s.sendall(b"\0\2")
        assert self.recv(1) == b"\0"
        n = self.recv(1)[0]
        subtypes = struct.unpack(f">{n}I", self.recv(4 * n))
        self.subtype = subtypes[0]
        self.s.sendall(struct.pack(">I", self.subtype))
        assert self.recv(1) == b"\1"
        self.s = context.wrap_socket(self.s, server_hostname="localhost")

    def request(self, x, y, w, h, incremental=False):
        self.s.sendall(struct.pack(">BBHHHH", 3, int(incremental), x, y, w, h))

    def set_encodings(self, *encodings):
        self.s.sendall(struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings))

    def update(self, bpp=4, tpixel=None):
        """One FramebufferUpdate: a list of (x, y, w, h, pixels, encoding),
        Raw and Tight rectangles alike as rows of PIXELs (Tight's 3-byte
        TPIXELs, @tpixel=3, as R G B), and the bytes it took on the wire."""
        self.wire = 4
        head = self.recv(4)
        assert head[0] == 0, head
        rects = []
        for _ in range(struct.unpack(">H", head[2:])[0]):
            x, y, w, h, enc = struct.unpack(">HHHHi", self.recv(12))
            self.wire += 12
            if enc == 0:
                rects.append((x, y, w, h, self.recv(w * h * bpp), enc))
                self.wire += w * h * bpp
            else:
                assert enc == 7, enc
                rects.append((x, y, w, h, self.tight(w, h, tpixel or bpp), enc))
        return rects

    def take(self, n):
        self.wire += n
        return self.recv(n)

    def tight(self, w, h, tpixel):
        """One Tight rectangle (RFB specification, "Tight Encoding")."""
        if not hasattr(self, "inflaters"):
            self.inflaters = [zlib.decompressobj() for _ in range(4)]
        control = self.take(1)[0]
        for i in range(4):
            if control & (1 << i):
                self.inflaters[i] = zlib.decompressobj()
        if control >> 4 == 8:
            return self.take(tpixel) * (w * h)
        assert not control & 0x80, f"compression type {control >> 4}"
        stream = (control >> 4) & 3
        filt = self.take(1)[0] if control & 0x40 else 0
        palette = None
        if filt == 1:
            n = self.take(1)[0] + 1
            palette = [self.take(tpixel) for _ in range(n)]
            row = (w + 7) // 8 if n == 2 else w
            size = row * h
        else:
            assert filt == 0, f"filter {filt}"
            size = w * h * tpixel
        if size < 12:
            data = self.take(size)
        else:
            b = self.take(1)[0]
            length = b & 0x7f
            if b & 0x80:
                b = self.take(1)[0]
                length |= (b & 0x7f) << 7
                if b & 0x80:
                    length |= self.take(1)[0] << 14
            packed = self.take(length)
            if not hasattr(self, "zlib_headers"):
                self.zlib_headers = {}
            self.zlib_headers.setdefault(stream, packed[:2])
            data = self.inflaters[stream].decompress(packed)
            assert len(data) == size, (len(data), size)
        if palette is None:
            return data
        if len(palette) > 2:
            return b"".join(palette[i] for i in data)
        row = (w + 7) // 8
        return b"".join(palette[data[y * row + x // 8] >> (7 - x % 8) & 1]
                        for y in range(h) for x in range(w))

    def paint(self, rects, width, height, tpixel=3):
        """Draws @rects into self.canvas (rows of TPIXELs) and returns it."""
        if getattr(self, "canvas", None) is None:
            self.canvas = bytearray(width * height * tpixel)
        for x, y, w, h, data, _ in rects:
            for row in range(h):
                at = ((y + row) * width + x) * tpixel
                self.canvas[at:at + w * tpixel] = data[row * w * tpixel:(row + 1) * w * tpixel]
        return bytes(self.canvas)

    def key(self, keysym, down=True):
        self.s.sendall(struct.pack(">BBHI", 4, int(down), 0, keysym))

    def type_text(self, text):
        for c in text:
            self.key(ord(c))
            self.key(ord(c), False)
        self.key(0xff0d)
        self.key(0xff0d, False)


def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    return s


def screen_of(q, d):
    path = os.path.join(d.dir, "screen.ppm")
    q.cmd("screendump", {"filename": path})
    return read_ppm(path)


def rfb_pixels_as_rgb(data):
    """32-bit little-endian XRGB pixels to RGB bytes."""
    out = bytearray()
    for i in range(0, len(data), 4):
        out += bytes((data[i + 2], data[i + 1], data[i]))
    return bytes(out)


# --- No authentication: the three RFB versions, pixels, keys ---
d = Qiod("-vnc", "unix:@DIR@/vnc.sock")
vsock = os.path.join(d.dir, "vnc.sock")
q = d.qmp()
info = q.cmd("query-vnc")["return"]
t.ok(info["enabled"] and info["auth"] == "none" and info["family"] == "unix"
     and info["clients"] == [], "query-vnc: enabled, auth none, no clients", info)

c = Rfb(connect_unix(vsock))
w, h, pf = c.handshake()
t.ok((w, h) == (640, 400) and c.name == b"qiod" and pf[0] == 32 and pf[3] == 1,
     "RFB 3.8 without authentication: 640x400, 32 bpp true colour, name qiod", (w, h, pf))
c.request(0, 0, w, h)
rects = c.update()
pw, ph, ppm = screen_of(q, d)
t.ok(len(rects) == 1 and rects[0][:4] == (0, 0, 640, 400)
     and rfb_pixels_as_rgb(rects[0][4]) == ppm and set(rects[0][4][3::4]) == {0xff},
     "a full update in Raw equals the screendump pixel for pixel (the spare byte set, as "
     "noVNC takes it for alpha)")
clients = q.cmd("query-vnc")["return"]["clients"]
t.ok(len(clients) == 1 and clients[0]["family"] == "unix"
     and clients[0]["websocket"] is False, "query-vnc lists the client", clients)

# Typing: the shell echoes and answers; the update covers the text.
before = ppm
c.request(0, 0, w, h, incremental=True)
c.type_text("echo vnc-typed")
deadline = time.time() + 20
changed = False
while time.time() < deadline and not changed:
    rects = c.update()
    _, _, now = screen_of(q, d)
    changed = now != before
    c.request(0, 0, w, h, incremental=True)
t.ok(changed and rects and rects[0][2] > 0, "key events reach the guest's console and the "
     "change arrives as an incremental update")
c.s.close()

for version, label in ((b"RFB 003.003\n", "3.3"), (b"RFB 003.007\n", "3.7"),
                       (b"RFB 003.889\n", "3.889 (as 3.3)")):
    c = Rfb(connect_unix(vsock))
    try:
        w2, h2, _ = c.handshake(version)
        t.ok((w2, h2) == (640, 400), f"RFB {label} handshake without authentication")
    except Exception as e:  # noqa: BLE001
        t.ok(False, f"RFB {label} handshake without authentication", repr(e))
    c.s.close()

# Pixel formats: 16-bit big-endian RGB565 and 8-bit BGR233.
for bpp, depth, be, maxes, shifts, label in (
        (16, 16, 1, (31, 63, 31), (11, 5, 0), "RGB565 big-endian"),
        (8, 8, 0, (7, 7, 3), (0, 3, 6), "BGR233")):
    c = Rfb(connect_unix(vsock))
    c.handshake()
    c.s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, bpp, depth, be, 1, *maxes, *shifts))
    c.request(0, 0, 640, 400)
    rects = c.update(bpp // 8)
    _, _, ppm = screen_of(q, d)
    good = len(rects) == 1
    data = rects[0][4] if good else b""
    n = bpp // 8
    for i in range(0, 640 * 400, 997):
        r, g, b = ppm[3 * i:3 * i + 3]
        want = (((r * maxes[0] + 127) // 255) << shifts[0] | ((g * maxes[1] + 127) // 255)
                << shifts[1] | ((b * maxes[2] + 127) // 255) << shifts[2])
        got = int.from_bytes(data[n * i:n * i + n], "big" if be else "little")
        if got != want:
            good = False
            break
    t.ok(good, f"SetPixelFormat {label}: pixels converted as the format says")
    c.s.close()

# --- Tight: the first of Tight and Raw that a client lists ---
def tight_session(*encodings, fmt=None, tpixel=3):
    c = Rfb(connect_unix(vsock))
    c.handshake()
    if fmt:
        c.s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, *fmt))
    c.set_encodings(*encodings)
    c.request(0, 0, 640, 400)
    rects = c.update(tpixel=tpixel)
    return c, rects, c.paint(rects, 640, 400, tpixel)


def encoding_of_client():
    return [x.get("encoding") for x in q.cmd("query-vnc")["return"]["clients"]]


c, rects, canvas = tight_session(7, 0, -254)  # Tight, Raw, compression level 2
_, _, ppm = screen_of(q, d)
t.ok(rects and {r[5] for r in rects} == {7} and canvas == ppm and c.wire * 20 < 640 * 400 * 4,
     f"Tight: a full update decodes to the screendump pixel for pixel, in {c.wire} bytes "
     f"where Raw takes {640 * 400 * 4 + 16}", (len(rects), c.wire))
t.ok(encoding_of_client() == ["tight"], "query-vnc shows the client's encoding: tight",
     encoding_of_client())
# Typing: incremental updates on the same zlib streams keep the picture right.
before = ppm
c.request(0, 0, 640, 400, incremental=True)
c.type_text("echo tight-typed")
deadline = time.time() + 20
same = False
while time.time() < deadline and not same:
    canvas = c.paint(c.update(tpixel=3), 640, 400)
    _, _, now = screen_of(q, d)
    same = canvas == now and now != before
    c.request(0, 0, 640, 400, incremental=True)
t.ok(same, "Tight: typed text arrives as incremental updates that decode to the screendump")
c.s.close()

c, rects, _ = tight_session(0, 7)
t.ok({r[5] for r in rects} == {0} and encoding_of_client() == ["raw"],
     "a client listing Raw before Tight gets Raw", encoding_of_client())
c.s.close()
c, rects, _ = tight_session(5, 16, -223, 7)
t.ok({r[5] for r in rects} == {7}, "encodings qiod does not send (Hextile, ZRLE, pseudo) are "
     "passed over for Tight")
c.s.close()
c, rects, _ = tight_session(5, 16)
t.ok({r[5] for r in rects} == {0}, "a client naming neither Tight nor Raw gets Raw")
c.s.close()

# The CompressionLevel pseudo-encodings: -256 is zlib level 0 ... -247 is
# 9, seen in the level class of each stream's zlib header (RFC 1950).
for extra, header, label in (((-256,), b"\x78\x01", "-256: level 0"),
                             ((-253,), b"\x78\x5e", "-253: level 3"),
                             ((-247,), b"\x78\xda", "-247: level 9"),
                             ((), b"\x78\x9c", "none: zlib's default")):
    c, rects, _ = tight_session(7, *extra)
    heads = set(getattr(c, "zlib_headers", {}).values())
    t.ok(heads == {header}, f"compression level {label}", heads)
    c.s.close()

# Tight, then Raw, then Tight again at another level on one connection:
# the client's zlib streams go on where they were.
c, rects, canvas = tight_session(7, -256)
ok = canvas == screen_of(q, d)[2]
c.set_encodings(0)
c.request(0, 0, 640, 400)
rects = c.update()
ok = ok and {r[5] for r in rects} == {0}
c.set_encodings(7, -247)
for _ in range(2):
    c.request(0, 0, 640, 400)
    rects = c.update(tpixel=3)
    ok = ok and {r[5] for r in rects} == {7} and c.paint(rects, 640, 400) == screen_of(q, d)[2]
t.ok(ok, "Tight, Raw, Tight at another level on one connection: every update decodes to "
     "the screendump")
c.s.close()

# A SetEncodings list that arrives in pieces while an update is due: the
# encoding changes only once the whole list is in (qiod crashed when the
# refresh sent an update in between).
c = Rfb(connect_unix(vsock))
c.handshake()
c.request(0, 0, 640, 400)
c.update()
c.request(0, 0, 640, 400, incremental=True)
c.s.sendall(struct.pack(">BxHi", 2, 300, 7) + struct.pack(">i", 1) * 255)
q.cmd("guest-serial-write", {"data": "echo while-listing\r"})
time.sleep(1)
alive = "return" in q.cmd("query-status")
c.s.sendall(struct.pack(">i", 1) * 44)
c.request(0, 0, 640, 400)
got = []
deadline = time.time() + 10
while time.time() < deadline and 7 not in got:
    got = [r[5] for r in c.update(tpixel=3)]
    if 7 not in got:
        c.request(0, 0, 640, 400)
t.ok(alive and 7 in got, "a SetEncodings list held back mid-way while the screen changes: "
     "qiod keeps running, updates stay Raw until the list is in, then Tight", got)
c.s.close()

# RGB565 big-endian: TPIXELs are the client's 2-byte pixels.
maxes, shifts = (31, 63, 31), (11, 5, 0)
c, rects, canvas = tight_session(7, fmt=(16, 16, 1, 1, *maxes, *shifts), tpixel=2)
_, _, ppm = screen_of(q, d)
good = bool(rects) and {r[5] for r in rects} == {7}
for i in range(640 * 400):
    r, g, b = ppm[3 * i:3 * i + 3]
    want = (((r * maxes[0] + 127) // 255) << shifts[0] | ((g * maxes[1] + 127) // 255)
            << shifts[1] | ((b * maxes[2] + 127) // 255) << shifts[2])
    if int.from_bytes(canvas[2 * i:2 * i + 2], "big") != want:
        good = False
        break
t.ok(good, "Tight in RGB565 big-endian: every pixel as the format says")
c.s.close()

# --- Malformed input from a client: a clear log line, never a crash ---
cases = [
    ("not a version", lambda s: s.sendall(b"HELLO WORLD\n"), "instead of an RFB 3.x version"),
    ("security type not offered",
     lambda s: (s.sendall(b"RFB 003.008\n"), recv_exact(s, 2), s.sendall(b"\x02")),
     "chose security type 2"),
    ("unknown message type",
     lambda s: (Rfb(s).handshake(), s.sendall(b"\x63")), "unknown message type 99"),
    ("24 bits per pixel",
     lambda s: (Rfb(s).handshake(),
                s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 24, 24, 0, 1, 255, 255, 255,
                                      16, 8, 0))), "24 bits per pixel"),
    ("colour map",
     lambda s: (Rfb(s).handshake(),
                s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0))),
     "colour-map pixel format"),
    ("maximum wider than the pixel",
     lambda s: (Rfb(s).handshake(),
                s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 16, 16, 0, 1, 255, 255, 255,
                                      16, 8, 0))), "does not fit 16 bits per pixel"),
]
for label, send, logged in cases:
    time.sleep(1.1)  # failures are logged at most once a second
    s = connect_unix(vsock)
    try:
        send(s)
        gone = closed_by_server(s)
    except (ConnectionError, EOFError, AssertionError) as e:
        gone = True
        print(f"# {label}: {e!r}")
    log = d.stderr_until(logged)
    t.ok(gone and logged in log, f"malformed: {label}: disconnected with a log line",
         log[-500:])
    s.close()

# Bounded reads: a 65535-entry SetEncodings, 1 MiB of cut text, a request
# outside the screen: the session goes on.
c = Rfb(connect_unix(vsock))
c.handshake()
c.s.sendall(struct.pack(">BxH", 2, 65535) + struct.pack(">i", 1) * 65534 + struct.pack(">i", 7))
c.s.sendall(struct.pack(">BxxxI", 6, 1 << 20) + b"x" * (1 << 20))
c.s.sendall(struct.pack(">BxxxI", 6, 0xffffff00) + b"y" * 256)
c.request(5000, 5000, 10, 10)
c.request(630, 390, 100, 100)
rects = c.update(tpixel=3)
t.ok(len(rects) == 1 and rects[0][:4] == (630, 390, 10, 10) and rects[0][5] == 7,
     "a 65535-entry encodings list is read to its end (Tight, last), cut text is skipped, "
     "requests are clipped to the screen", [r[:4] + r[5:] for r in rects])
c.s.close()

# Update bookkeeping: a first request may be incremental (everything is
# new to the client then); a strip once sent is not sent again unchanged.
q.cmd("stop")
c = Rfb(connect_unix(vsock))
c.handshake()
c.request(0, 0, 640, 400, incremental=True)
rects = c.update()
t.ok(len(rects) == 1 and rects[0][:4] == (0, 0, 640, 400),
     "an incremental first request gets the whole screen", [r[:4] for r in rects])
c.request(0, 0, 640, 8, incremental=True)
c.s.settimeout(1)
try:
    c.update()
    resent = True
except socket.timeout:
    resent = False
t.ok(not resent, "an incremental request for an unchanged strip gets no update")
c.s.close()
q.cmd("cont")

# One client sending without pause must not stop qiod's main loop (QMP,
# other clients): its messages are read a bounded number per turn.
flooder = Rfb(connect_unix(vsock))
flooder.handshake()
import threading  # noqa: E402
stop_flood = threading.Event()
flood_sent = threading.Event()


def flood():
    burst = struct.pack(">BBHH", 5, 0, 1, 1) * 4096
    try:
        while not stop_flood.is_set():
            flooder.s.sendall(burst)
            flood_sent.set()
    except OSError:
        pass


# A daemon thread: if qiod stops reading, the test fails instead of hanging.
th = threading.Thread(target=flood, daemon=True)
th.start()
try:
    flood_sent.wait(20)
    start = time.time()
    status = q.cmd("query-status")
    took = time.time() - start
    other = Rfb(connect_unix(vsock))
    other_ok = other.handshake()[0] == 640
finally:
    stop_flood.set()
th.join(20)
t.ok("return" in status and took < 5 and other_ok,
     "a client flooding pointer events: QMP still answers (%.2f s) and another client is "
     "served" % took)
flooder.s.close()
other.s.close()

# Refused and failed clients are logged at most once a second.
time.sleep(1.1)
before = d.stderr_until("\0", timeout=0.2)
flood_start = time.time()
for _ in range(100):
    s = connect_unix(vsock)
    s.sendall(b"XXXXXXXXXXXX")
    closed_by_server(s, 5)
    s.close()
log = d.stderr_until("\0", timeout=1)[len(before):]
lines = [x for x in log.splitlines() if "instead of an RFB 3.x version" in x]
seconds = time.time() - flood_start
t.ok(1 <= len(lines) <= int(seconds) + 2, f"100 bad clients in {seconds:.1f} s: {len(lines)} "
     "log line(s), at most one a second", log[-500:])
q.close()
d.stop()

# --- VNC password: password-secret, password=on with set_password ---
d = Qiod("-object", "secret,id=sec0,data=s3cret", "-vnc",
         "unix:@DIR@/vnc.sock,password-secret=sec0")
vsock = os.path.join(d.dir, "vnc.sock")
q = d.qmp()
t.ok(q.cmd("query-vnc")["return"]["auth"] == "vnc", "query-vnc: auth vnc")
c = Rfb(connect_unix(vsock))
t.ok(c.handshake(password="s3cret")[0] == 640, "VNC authentication with the right password "
     "(DES response computed by openssl)")
c.s.close()
c = Rfb(connect_unix(vsock))
try:
    c.handshake(password="wrong")
    t.ok(False, "a wrong password is refused")
except PermissionError as e:
    log = d.stderr_until("wrong VNC password")
    t.ok("authentication failed" in str(e) and "wrong VNC password" in log,
         "a wrong password is refused with a reason, and logged", (str(e), log[-300:]))
c.s.close()
c = Rfb(connect_unix(vsock))
t.ok(c.handshake(b"RFB 003.003\n", password="s3cret")[0] == 640,
     "RFB 3.3 client with VNC authentication")
c.s.close()
r = q.cmd("change-vnc-password", {"password": "n3w"})
c = Rfb(connect_unix(vsock))
t.ok("return" in r and c.handshake(password="n3w")[0] == 640,
     "change-vnc-password: the new password works", r)
c.s.close()
r = q.cmd("set_password", {"protocol": "spice", "password": "x"})
t.ok(r.get("error", {}).get("class") == "GenericError" and "spice" in r["error"]["desc"],
     "set_password for another protocol is refused", r)
q.close()
d.stop()

d = Qiod("-vnc", "unix:@DIR@/vnc.sock,password=on")
vsock = os.path.join(d.dir, "vnc.sock")
q = d.qmp()
c = Rfb(connect_unix(vsock))
try:
    c.handshake(password="")
    t.ok(False, "password=on without a password refuses everyone")
except PermissionError:
    log = d.stderr_until("no VNC password is set")
    t.ok("set_password" in log, "password=on without a password refuses everyone, saying "
         "how to set one", log[-300:])
c.s.close()
r = q.cmd("set_password", {"protocol": "vnc", "password": "abc"})
c = Rfb(connect_unix(vsock))
t.ok("return" in r and c.handshake(password="abc")[0] == 640, "set_password then connect")
c.s.close()


def password_refused():
    c = Rfb(connect_unix(vsock))
    try:
        c.handshake(password="abc")
        return False
    except PermissionError:
        return True
    finally:
        c.s.close()


def password_works():
    c = Rfb(connect_unix(vsock))
    try:
        return c.handshake(password="abc")[0] == 640
    finally:
        c.s.close()


time.sleep(1.1)  # refusals are logged at most once a second
r = q.cmd("expire_password", {"protocol": "vnc", "time": "now"})
t.ok("return" in r and password_refused()
     and "the VNC password has expired" in d.stderr_until("the VNC password has expired"),
     "expire_password now: the right password is refused, and the log says why", r)
r = q.cmd("set_password", {"protocol": "vnc", "password": "abc"})
t.ok("return" in r and password_refused(), "set_password does not move the expiry (as in QEMU)")
for time_arg in ("never", "+3600", "4102444800"):
    r = q.cmd("expire_password", {"protocol": "vnc", "time": time_arg})
    t.ok("return" in r and password_works(), f"expire_password {time_arg}: the password works", r)
r = q.cmd("expire_password", {"protocol": "vnc", "time": "+1", "display": "default"})
works_now = password_works()
time.sleep(2.2)
t.ok("return" in r and works_now and password_refused(),
     "expire_password +1: the password works, and is refused once that second is past", r)
r = q.cmd("expire_password", {"protocol": "vnc", "time": "never", "display": "vnc1"})
t.ok("vnc1" in r.get("error", {}).get("desc", ""), "expire_password for a display qiod lacks is "
     "refused", r)
r = q.cmd("set_password", {"protocol": "vnc", "password": "abc", "display": "other"})
t.ok("other" in r.get("error", {}).get("desc", ""), "set_password for a display qiod lacks is "
     "refused", r)
r = q.cmd("expire_password", {"protocol": "vnc", "time": "1"})
t.ok("return" in r and password_refused(), "expire_password at a time past (1970) refuses", r)
for bad in ("", "+", "soon", "+1h", "-5", " 5", "5 ", "0x10", "+-1", "99999999999999999999",
            "253402300800"):
    r = q.cmd("expire_password", {"protocol": "vnc", "time": bad})
    t.ok(r.get("error", {}).get("class") == "GenericError" and "expire_password" in r["error"]["desc"]
         and "SECONDS" in r["error"]["desc"], f"expire_password time {bad!r}: a clear error", r)
r = q.cmd("expire_password", {"protocol": "spice", "time": "now"})
t.ok("spice" in r.get("error", {}).get("desc", ""), "expire_password for another protocol is refused",
     r)
r = q.cmd("set_password", {"protocol": "vnc", "password": "abc", "connected": "keep"})
t.ok("return" in r, "set_password connected=keep is accepted", r)
for connected, says in (("fail", "only connected"), ("disconnect", "only connected"),
                        ("bogus", "'bogus'")):
    r = q.cmd("set_password", {"protocol": "vnc", "password": "other", "connected": connected})
    t.ok(says in r.get("error", {}).get("desc", ""), f"set_password connected={connected}: refused",
         r)
r = q.cmd("expire_password", {"protocol": "vnc", "time": "never"})
t.ok(password_works(), "a refused set_password leaves the password as it was")
q.close()
d.stop()

# --- Password guessing is slowed down (VncAuthThrottle) ---
d = Qiod("-object", "secret,id=sec0,data=s3cret", "-vnc",
         "unix:@DIR@/vnc.sock,password-secret=sec0")
vsock = os.path.join(d.dir, "vnc.sock")


def attempt(password):
    """(accepted, seconds from choosing VNC authentication to the verdict:
    a throttled attempt waits before its challenge)."""
    c = Rfb(connect_unix(vsock))
    try:
        assert c.recv(12) == b"RFB 003.008\n"
        c.s.sendall(b"RFB 003.008\n")
        c.recv(2)
        start = time.time()
        c.s.sendall(b"\x02")
        c.s.sendall(des_response(password, c.recv(16)))
        return c.u32() == 0, time.time() - start
    finally:
        c.s.close()


THROTTLED = "failed authentications in a row from unix"
quick = [attempt("wrong") for _ in range(3)]
slowed = attempt("wrong")
right = attempt("s3cret")
log = d.stderr_until(THROTTLED)
t.ok(not any(ok for ok, _ in quick) and not slowed[0] and slowed[1] >= 0.2 and right[0]
     and right[1] >= 0.4 and THROTTLED in log,
     f"after 3 wrong passwords the next attempts wait their turn ({slowed[1]:.2f} s, then "
     f"{right[1]:.2f} s for the right one), and the log says so",
     (quick, slowed, right, log[-300:]))
# The right password cleared the host: it takes 3 failures again to be slowed.
time.sleep(1.1)  # one log line a second at most
before = d.stderr_until("\0", timeout=0.2).count(THROTTLED)
for _ in range(2):
    attempt("wrong")
after_two = d.stderr_until("\0", timeout=0.2).count(THROTTLED)
attempt("wrong")
after_three = d.stderr_until("\0", timeout=1).count(THROTTLED)
t.ok(after_two == before and after_three == before + 1,
     "a success clears the count: slowed again only after 3 new failures",
     (before, after_two, after_three))


def choose_vnc_auth():
    """A connection that has chosen VNC authentication, not yet answered."""
    s = connect_unix(vsock)
    recv_exact(s, 12)
    s.sendall(b"RFB 003.008\n")
    recv_exact(s, 2)
    s.sendall(b"\x02")
    return s


# The source is slowed: turns are reserved at most 8 spacings ahead;
# attempts beyond that are closed at once, without a SecurityResult (RFB
# has none before the challenge).  14 at once: the first is answered, some
# wait, the last are closed.
tries = [choose_vnc_auth() for _ in range(14)]
answers = []
for s in tries:
    s.settimeout(0.5)
    try:
        answers.append(s.recv(64))
    except socket.timeout:
        answers.append(None)  # still waiting its turn
    s.close()
closed = [a for a in answers if a == b""]
t.ok(len(closed) >= 1 and answers[-1] == b""
     and all(a in (None, b"") or len(a) == 16 for a in answers),
     f"attempts beyond the turns a slowed source may have waiting are closed at once "
     f"({len(closed)} of 14), without bytes a client would take for the challenge",
     [None if a is None else len(a) for a in answers])
d.stop()

# Over TCP with connections=4: clients of a slowed source waiting their
# turn (here already gone) give way to a client from elsewhere (the wait
# ends when the connections limit evicts them), which is not slowed.
port = free_port()
d = Qiod("-object", "secret,id=sec0,data=s3cret", "-vnc",
         f"127.0.0.1:{port - 5900},password-secret=sec0,connections=4")


def tcp_from(source):
    s = socket.socket()
    s.settimeout(20)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


for _ in range(8):  # the last waits 4 s; turns are now 5 s apart
    c = Rfb(tcp_from("127.0.0.1"))
    try:
        c.handshake(password="wrong")
    except PermissionError:
        pass
    c.s.close()
queued = []
for _ in range(8):  # twice the limit: evicted ones count until they end
    s = tcp_from("127.0.0.1")
    recv_exact(s, 12)
    s.sendall(b"RFB 003.008\n")
    recv_exact(s, 2)
    s.sendall(b"\x02")  # VNC authentication: now waiting its turn
    queued.append(s)
for s in queued:  # gone, but their connections wait on in qiod
    s.close()
time.sleep(0.5)
start = time.time()
try:
    other = Rfb(tcp_from("127.0.0.2")).handshake(password="s3cret")[0] == 640
except (PermissionError, EOFError, ConnectionError) as e:
    other = repr(e)
took = time.time() - start
t.ok(other is True and took < 3,
     f"clients of a slowed source waiting their turn give way to one from another address "
     f"({took:.2f} s), which is not slowed", other)
d.stop()

# --- VeNCrypt: x509 with a client certificate, anon, refusals ---
srv = os.path.join(pki, "srv")
cli = os.path.join(pki, "cli")


def client_context(cert_dir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(cli, "ca-cert.pem"))
    if cert_dir:
        ctx.load_cert_chain(os.path.join(cert_dir, "client-cert.pem"),
                            os.path.join(cert_dir, "client-key.pem"))
    return ctx


port = free_port()
d = Qiod("-object", f"tls-creds-x509,id=tls0,endpoint=server,dir={srv},verify-peer=on",
         "-object", "secret,id=sec0,data=pw", "-vnc",
         f"127.0.0.1:{port - 5900},tls-creds=tls0,password-secret=sec0")
q = d.qmp()
info = q.cmd("query-vnc")["return"]
t.ok(info["auth"] == "vencrypt+x509+vnc"
     and info["service"] == str(port) and info["family"] == "ipv4",
     "query-vnc: auth vencrypt+x509+vnc on port 5900+DISPLAY", info)
c = Rfb(socket.create_connection(("127.0.0.1", port), timeout=20))
w, h, _ = c.handshake(password="pw", vencrypt=client_context(cli))
c.request(0, 0, w, h)
rects = c.update()
clients = q.cmd("query-vnc")["return"]["clients"]
t.ok(c.subtype == 261 and len(rects) == 1 and len(clients) == 1
     and "CN=client" in clients[0].get("x509_dname", "") and clients[0]["host"] == "127.0.0.1",
     "VeNCrypt X509Vnc: TLS with a client certificate, then the password; query-vnc shows "
     "the client's DN", clients)
c.s.close()
c = Rfb(socket.create_connection(("127.0.0.1", port), timeout=20))
try:
    c.handshake(password="pw", vencrypt=client_context(None))
    refused = False
except (ssl.SSLError, ConnectionError, EOFError, OSError):
    refused = True
log = d.stderr_until("TLS handshake failed")
t.ok(refused and "TLS handshake failed" in log, "VeNCrypt without a client certificate is "
     "refused (verify-peer=on)", log[-400:])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
c = Rfb(s)
c.recv(12)
s.sendall(b"RFB 003.008\n")
n = c.recv(1)[0]
t.ok(n == 1 and c.recv(1) == b"\x13", "with tls-creds only VeNCrypt (19) is offered")
s.sendall(b"\x13")
c.recv(2)
s.sendall(b"\0\1")
t.ok(c.recv(1) == b"\1" and closed_by_server(s), "VeNCrypt 0.1 is refused")
s.close()
time.sleep(1.1)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
c = Rfb(s)
c.recv(12)
s.sendall(b"RFB 003.008\n")
c.recv(2)
s.sendall(b"\x13")
c.recv(2)
s.sendall(b"\0\2")
c.recv(2)
c.recv(4)
s.sendall(struct.pack(">I", 256))  # Plain: never offered
log = d.stderr_until("VeNCrypt subtype 256")
t.ok(c.recv(1) == b"\0" and closed_by_server(s) and "vencrypt+x509+vnc" in log,
     "a VeNCrypt subtype not offered is refused", log[-300:])
s.close()
s = socket.create_connection(("127.0.0.1", port), timeout=20)
c = Rfb(s)
c.recv(12)
s.sendall(b"RFB 003.003\n")
t.ok(c.u32() == 0 and b"3.7" in c.recv(c.u32()) and closed_by_server(s),
     "an RFB 3.3 client is told VeNCrypt needs 3.7, not given plaintext")
s.close()
r = q.cmd("display-reload", {"type": "vnc", "tls-certs": True})
t.ok("return" in r, "display-reload reloads the certificates", r)
r = q.cmd("display-reload", {"type": "sdl", "tls-certs": True})
r2 = q.cmd("display-reload", {"type": "vnc", "tls-certs": "yes"})
t.ok("sdl" in r.get("error", {}).get("desc", "") and "error" in r2,
     "display-reload refuses another display type and a tls-certs that is not a boolean",
     (r, r2))
q.close()
d.stop()

d = Qiod("-object", "tls-creds-anon,id=tls0,endpoint=server", "-vnc",
         "unix:@DIR@/vnc.sock,tls-creds=tls0")
vsock = os.path.join(d.dir, "vnc.sock")
q = d.qmp()
t.ok(q.cmd("query-vnc")["return"]["auth"] == "vencrypt+tls+none",
     "query-vnc: auth vencrypt+tls+none")
q.close()
d.stop()

# --- Websocket (RFB inside RFC 6455 binary frames) ---
port = free_port()
wsport = free_port()
d = Qiod("-vnc", f"127.0.0.1:{port - 5900},websocket={wsport}")
q = d.qmp()
t.ok(q.cmd("query-vnc")["return"].get("websocket-service") == str(wsport),
     "query-vnc: the websocket port")


def ws_session():
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(f"ws://127.0.0.1:{wsport}/", subprotocols=["binary"],
                                      max_size=None) as ws:
            buf = bytearray()

            async def need(n):
                while len(buf) < n:
                    buf.extend(await ws.recv())
                out = bytes(buf[:n])
                del buf[:n]
                return out
            assert await need(12) == b"RFB 003.008\n"
            await ws.send(b"RFB 003.008\n")
            assert await need(2) == b"\1\1"
            await ws.send(b"\1")
            assert await need(4) == b"\0\0\0\0"
            await ws.send(b"\1")
            init = await need(24)
            await need(struct.unpack(">I", init[20:24])[0])
            await ws.send(struct.pack(">BBHHHH", 3, 0, 0, 0, 640, 400))
            head = await need(16)
            await need(640 * 400 * 4)
            return head
    return asyncio.run(asyncio.wait_for(run(), 30))


try:
    head = ws_session()
    t.ok(head[:4] == b"\0\0\0\1", "RFB over a websocket: handshake and a full update")
except Exception as e:  # noqa: BLE001
    t.ok(False, "RFB over a websocket: handshake and a full update", repr(e))
q.close()
d.stop()

# --- The connections limit: stalled peers give way to real clients ---
d = Qiod("-vnc", "unix:@DIR@/vnc.sock,connections=2")
vsock = os.path.join(d.dir, "vnc.sock")
silent = [connect_unix(vsock) for _ in range(2)]
time.sleep(0.5)
c = Rfb(connect_unix(vsock))
ok = c.handshake()[0] == 640
t.ok(ok and closed_by_server(silent[0], 10), "connections=2: the oldest stalled peer gives way "
     "to a new client")
c2 = Rfb(connect_unix(vsock))
ok2 = c2.handshake()[0] == 640
time.sleep(1.1)
c3 = connect_unix(vsock)
log = d.stderr_until("refused: 2 clients already")
t.ok(ok2 and closed_by_server(c3, 10) and "raise the limit" in log,
     "with two clients in session a third is refused, and logged", log[-300:])
for s in silent + [c.s, c2.s, c3]:
    s.close()
d.stop()

# --- Command line: bad options are refused with a clear message ---
bad = [
    (["-vnc", "nonsense"], "is not HOST:DISPLAY"),
    (["-vnc", "127.0.0.1:1,frobnicate=on"], "unknown option 'frobnicate'"),
    (["-vnc", "127.0.0.1:1,password=maybe"], "password='maybe' is not on or off"),
    (["-vnc", "127.0.0.1:1,tls-authz=a"], "tls-authz needs tls-creds"),
    (["-vnc", "127.0.0.1:1,tls-creds=nope"], "nope"),
    (["-vnc", "127.0.0.1:1,password=on,password-secret=s"], "not both"),
    (["-vnc", "127.0.0.1:1,connections=0"], "connections='0'"),
    (["-vnc", "unix:/tmp/x.sock,websocket=on"], "websocket=PORT"),
    (["-vnc", "127.0.0.1:1", "-vnc", "127.0.0.1:2"], "-vnc given twice"),
    (["-object", "tls-creds-psk,id=p,endpoint=server,dir=" + tmp,
      "-vnc", "127.0.0.1:1,tls-creds=p"], "VeNCrypt has no PSK mode"),
    (["-object", f"tls-creds-x509,id=c,endpoint=client,dir={cli}",
      "-vnc", "127.0.0.1:1,tls-creds=c"], "endpoint=server"),
    (["-object", "tls-creds-anon,id=t,endpoint=server", "-object", "authz-simple,id=a,identity=x",
      "-vnc", "127.0.0.1:1,tls-creds=t,tls-authz=a"], "are anonymous"),
    (["-object", f"tls-creds-x509,id=t,endpoint=server,dir={srv},verify-peer=off",
      "-object", "authz-simple,id=a,identity=x",
      "-vnc", "127.0.0.1:1,tls-creds=t,tls-authz=a"], "verify-peer=off"),
]
for args, want in bad:
    rc, _, err = run_qiod(*args)
    t.ok(rc == 1 and want in err and "-vnc" in err, f"command line {' '.join(args)} refused",
         err)
d = Qiod()
q = d.qmp()
r = q.cmd("query-vnc")["return"]
r2 = q.cmd("set_password", {"protocol": "vnc", "password": "x"})
t.ok(r == {"enabled": False} and "no VNC server" in r2["error"]["desc"],
     "without -vnc: query-vnc says disabled; set_password says how to start one", (r, r2))
q.close()
d.stop()
t.done()
