#!/usr/bin/python3
# qio-nbd against python3-libnbd (structured replies, block status, FUA,
# trim, zero, cache, refusals) and against raw bytes on a socket (malformed
# options, oversized and out-of-range requests, stalled handshakes,
# max-connections).  UNIX sockets only.
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from qiodtest import recv_exact, unix_listening

try:
    import nbd
except ImportError:
    print("1..0 # SKIP python3-libnbd missing")
    sys.exit(0)

BUILD = os.environ.get("QIO_BUILDDIR",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
QIONBD = os.path.join(BUILD, "tools", "qio-nbd")
MIB = 1 << 20
tmp = tempfile.mkdtemp()
procs = []
count = 0


def report(ok, name, detail=""):
    global count
    count += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (count, name))
    if not ok and detail:
        for line in str(detail).splitlines():
            print("# " + line)


def test(name):
    def wrap(fn):
        try:
            r = fn()
            report(r is None or r is True, name, "" if r in (None, True) else r)
        except Exception as e:  # a failing test reports, the others still run
            report(False, name, "%s: %s" % (type(e).__name__, e))
        return fn
    return wrap


def start(path, *args, sock=None):
    sock = sock or os.path.join(tmp, "s%d.sock" % len(procs))
    p = subprocess.Popen([QIONBD, "-k", sock, *args, path], stderr=subprocess.PIPE)
    procs.append(p)
    for _ in range(200):
        if unix_listening(sock):
            return p, sock
        time.sleep(0.02)
    raise RuntimeError("qio-nbd did not start: " + p.stderr.read().decode())


def log_lines(p, text):
    """Stops qio-nbd @p: how many lines of its log hold @text, and the log."""
    p.terminate()
    err = p.communicate(timeout=10)[1].decode()
    return sum(text in line for line in err.splitlines()), err


def scratch_server(name, size=4 * MIB):
    """A zeroed file of @size and a writable qio-nbd serving it."""
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    p, s = start(path, "-t")
    return path, p, s


def connect(sock, name="", structured=True, meta=True, psk=None):
    """@psk: (user, key file) to require TLS-PSK."""
    h = nbd.NBD()
    if psk:
        h.set_tls(nbd.TLS_REQUIRE)
        h.set_tls_username(psk[0])
        h.set_tls_psk_file(psk[1])
    h.set_export_name(name)
    h.set_request_structured_replies(structured)
    if meta:
        h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_unix(sock)
    return h


def nbd_errno(fn):
    """The errno name ("EINVAL") of a failed libnbd call, 0 on success."""
    try:
        fn()
    except nbd.Error as e:
        return e.errno
    return 0


img = os.path.join(tmp, "img")
with open(img, "wb") as f:
    f.truncate(16 * MIB)
    f.seek(0)
    f.write(os.urandom(MIB))
srv, sock = start(img, "-x", "disk", "-t", "-e", "8")


@test("structured replies and base:allocation negotiated")
def _():
    h = connect(sock, "disk")
    assert h.get_structured_replies_negotiated()
    assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    assert h.get_size() == 16 * MIB
    h.shutdown()


@test("block status: data then a hole that reads as zero")
def _():
    h = connect(sock, "disk")
    seen = []
    h.block_status(16 * MIB, 0, lambda ctx, off, ents, err: seen.extend(ents) or 0)
    assert seen[:4] == [MIB, 0, 15 * MIB, 3], seen
    h.shutdown()


@test("block status with REQ_ONE returns one extent")
def _():
    h = connect(sock, "disk")
    seen = []
    h.block_status(16 * MIB, 0, lambda ctx, off, ents, err: seen.extend(ents) or 0,
                   nbd.CMD_FLAG_REQ_ONE)
    assert len(seen) == 2 and seen[0] == MIB, seen
    h.shutdown()


@test("FUA write survives SIGKILL of the server right after the reply")
def _():
    path, p, s = scratch_server("fua")
    h = connect(s)
    data = os.urandom(MIB)
    h.pwrite(data, 2 * MIB, nbd.CMD_FLAG_FUA)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with open(path, "rb") as f:
        f.seek(2 * MIB)
        assert f.read(MIB) == data


@test("write then read back byte-exact; flush")
def _():
    h = connect(sock, "disk")
    data = os.urandom(3 * MIB + 17)
    h.pwrite(data, 5 * MIB + 3)
    h.flush()
    assert h.pread(len(data), 5 * MIB + 3) == data
    h.shutdown()


@test("trim punches a hole that block status reports")
def _():
    h = connect(sock, "disk")
    h.pwrite(b"\xaa" * MIB, 12 * MIB)
    h.trim(MIB, 12 * MIB)
    seen = []
    h.block_status(MIB, 12 * MIB, lambda ctx, off, ents, err: seen.extend(ents) or 0)
    assert seen[1] & nbd.STATE_HOLE, seen
    assert h.pread(MIB, 12 * MIB) == b"\0" * MIB
    h.shutdown()


@test("write zeroes (with and without NO_HOLE, with FUA) reads back zeroes")
def _():
    h = connect(sock, "disk")
    h.pwrite(b"\x55" * (2 * MIB), 8 * MIB)
    h.zero(MIB, 8 * MIB)
    h.zero(MIB, 9 * MIB, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
    assert h.pread(2 * MIB, 8 * MIB) == b"\0" * (2 * MIB)
    h.shutdown()


@test("cache is accepted")
def _():
    h = connect(sock, "disk")
    assert h.can_cache()
    h.cache(4 * MIB, 0)
    h.shutdown()


@test("out-of-range read is EINVAL, write is ENOSPC, the connection goes on")
def _():
    h = connect(sock, "disk")
    h.set_strict_mode(0)
    e1 = nbd_errno(lambda: h.pread(4096, 16 * MIB - 100))
    e2 = nbd_errno(lambda: h.pwrite(b"x" * 4096, 16 * MIB - 100))
    e3 = nbd_errno(lambda: h.pread(1, 2**63))
    assert h.pread(10, 0) is not None
    h.shutdown()
    return (e1, e2, e3) == ("EINVAL", "ENOSPC", "EINVAL") or (e1, e2, e3)


@test("oversized read (64 MiB) is refused with EINVAL")
def _():
    h = connect(sock, "disk")
    h.set_strict_mode(0)
    e = nbd_errno(lambda: h.pread(64 * MIB, 0))
    assert h.pread(10, 0) is not None
    h.shutdown()
    return e == "EINVAL" or e


@test("simple replies (no structured replies) still serve reads")
def _():
    h = connect(sock, "disk", structured=False, meta=False)
    assert not h.get_structured_replies_negotiated()
    with open(img, "rb") as f:
        want = f.read(MIB)
    assert h.pread(MIB, 0) == want
    h.shutdown()


@test("reads past the end of a file that shrank under the server read zeroes")
def _():
    path = os.path.join(tmp, "shrinks")
    data = os.urandom(4 * MIB)
    with open(path, "wb") as f:
        f.write(data)
    p, s = start(path, "-r", "-t")
    for structured in (True, False):
        h = connect(s, structured=structured, meta=False)
        assert h.pread(4 * MIB, 0) == data
        with open(path, "r+b") as f:
            f.truncate(MIB + 100)
        # Sent from the page cache up to the new end, then zeroes.
        got = h.pread(2 * MIB, MIB // 2)
        assert got == data[MIB // 2:MIB + 100] + bytes(2 * MIB - (MIB // 2 + 100)), structured
        assert h.pread(MIB, 3 * MIB) == bytes(MIB)
        h.shutdown()
        with open(path, "wb") as f:
            f.write(data)


@test("writes received into the file's map land in the file (plain, FUA, flush)")
def _():
    path, p, s = scratch_server("mapped")
    h = connect(s)
    a, b, c = os.urandom(MIB), os.urandom(MIB - 4096), os.urandom(1000)
    h.pwrite(a, 0)
    h.pwrite(b, MIB + 4096, nbd.CMD_FLAG_FUA)
    h.pwrite(c, 3 * MIB + 17)
    h.flush()
    with open(path, "rb") as f:
        data = f.read()
    assert data[:MIB] == a and data[MIB:MIB + 4096] == bytes(4096)
    assert data[MIB + 4096:2 * MIB] == b and data[3 * MIB + 17:3 * MIB + 1017] == c
    assert h.pread(MIB, 0) == a
    h.shutdown()


@test("a write past the end of a file that shrank ends that client, not the server")
def _():
    path, p, s = scratch_server("shrinks-w")
    h = connect(s)
    with open(path, "r+b") as f:
        f.truncate(MIB)
    try:
        h.pwrite(os.urandom(MIB), 2 * MIB)
        h.flush()
        return "the write was acknowledged"
    except nbd.Error:
        pass
    h2 = connect(s)
    data = os.urandom(4096)
    h2.pwrite(data, 0)
    assert h2.pread(4096, 0) == data and p.poll() is None
    h2.shutdown()


@test("read-only export refuses writes, trims and zeroes with EPERM")
def _():
    p, s = start(img, "-r", "-t")
    h = connect(s)
    assert h.is_read_only()
    h.set_strict_mode(0)
    errs = (nbd_errno(lambda: h.pwrite(b"x", 0)), nbd_errno(lambda: h.trim(4096, 0)),
            nbd_errno(lambda: h.zero(4096, 0)))
    h.shutdown()
    return errs == ("EPERM",) * 3 or errs


@test("unknown export: NBD_OPT_GO fails")
def _():
    try:
        connect(sock, "nope")
    except nbd.Error as e:
        return "no export named 'nope'" in str(e) or str(e)
    return "connected to a missing export"


# Raw protocol, byte by byte.
def raw(sock_path, flags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    hello = recv_exact(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
    s.sendall(struct.pack(">I", flags))
    return s


def option(s, opt, data=b"", length=None):
    s.sendall(struct.pack(">QII", 0x49484156454F5054, opt, len(data) if length is None else length) + data)


def reply(s):
    magic, opt, typ, length = struct.unpack(">QIII", recv_exact(s, 20))
    assert magic == 0x3e889045565a9
    return opt, typ, recv_exact(s, length)


ERR_INVALID, ERR_UNSUP, ERR_TOO_BIG, ERR_UNKNOWN = 2**31 + 3, 2**31 + 1, 2**31 + 9, 2**31 + 6


@test("malformed NBD_OPT_GO: name length past the option -> NBD_REP_ERR_INVALID")
def _():
    s = raw(sock)
    option(s, 7, struct.pack(">I", 100) + b"disk" + struct.pack(">H", 0))
    assert reply(s)[1] == ERR_INVALID
    option(s, 7, struct.pack(">I", 4) + b"disk" + struct.pack(">H", 5))  # 5 infos, none sent
    assert reply(s)[1] == ERR_INVALID
    option(s, 7, b"\0\0")  # shorter than its length field
    assert reply(s)[1] == ERR_INVALID
    option(s, 6, struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0))  # a valid INFO after
    opt, typ, data = reply(s)
    assert typ == 3 and struct.unpack(">HQH", data[:12])[1] == 16 * MIB, (typ, data)
    s.close()


@test("malformed meta context requests -> NBD_REP_ERR_INVALID")
def _():
    s = raw(sock)
    option(s, 8)
    assert reply(s)[1] == 1
    bad = [struct.pack(">I", 4) + b"disk" + struct.pack(">I", 1000),          # count > room
           struct.pack(">I", 4) + b"disk" + struct.pack(">II", 1, 50) + b"x",  # query past end
           struct.pack(">I", 4) + b"disk" + struct.pack(">I", 0) + b"junk"]    # trailing bytes
    for payload in bad:
        option(s, 10, payload)
        assert reply(s)[1] == ERR_INVALID
    s.close()


@test("option longer than 64 KiB -> NBD_REP_ERR_TOO_BIG, then the session goes on")
def _():
    s = raw(sock)
    option(s, 6, b"\0" * 100000)
    assert reply(s)[1] == ERR_TOO_BIG
    option(s, 3)
    typ = reply(s)[1]
    assert typ == 2, typ
    s.close()


@test("unknown option -> NBD_REP_ERR_UNSUP; option data on LIST -> ERR_INVALID")
def _():
    s = raw(sock)
    option(s, 4242)
    assert reply(s)[1] == ERR_UNSUP
    option(s, 3, b"x")
    assert reply(s)[1] == ERR_INVALID
    s.close()


@test("meta context before structured replies -> NBD_REP_ERR_INVALID")
def _():
    s = raw(sock)
    option(s, 10, struct.pack(">I", 4) + b"disk" + struct.pack(">I", 0))
    assert reply(s)[1] == ERR_INVALID
    s.close()


@test("bad option magic and unknown client flags: disconnected")
def _():
    s = raw(sock)
    s.sendall(b"\0" * 16)
    assert s.recv(1) == b""
    s = raw(sock, flags=0x80)
    assert s.recv(1) == b""


def go(s, name=b"disk"):
    option(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        opt, typ, data = reply(s)
        if typ == 1:
            return
        assert typ == 3, typ


def request(s, typ, offset, length, flags=0, cookie=7):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, offset, length))


@test("oversized write (64 MiB header) disconnects before any payload is held")
def _():
    s = raw(sock)
    go(s)
    request(s, 1, 0, 64 * MIB)
    assert s.recv(1) == b""


@test("unknown command and bad flags -> EINVAL simple reply")
def _():
    s = raw(sock)
    go(s)
    request(s, 99, 0, 0)
    magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    request(s, 0, 0, 10, flags=0x40)
    magic2, err2, _ = struct.unpack(">IIQ", recv_exact(s, 16))
    request(s, 7, 0, 10)  # block status without a meta context
    _, err3, _ = struct.unpack(">IIQ", recv_exact(s, 16))
    s.close()
    return (magic, err, cookie, err2, err3) == (0x67446698, 22, 7, 22, 22) or (err, err2, err3)


@test("a client that reads no reply while it sends 20000 writes gets every reply, data intact")
def _():
    import threading
    path = os.path.join(tmp, "flood")
    with open(path, "wb") as f:
        f.truncate(MIB)
    p, s2 = start(path, "-t", "-x", "disk")
    s = raw(s2)
    go(s)
    n = 20000
    payload = bytes((i * 13 + 1) % 251 for i in range(n))

    send_error = []

    def send():
        for i in range(n):
            try:
                s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, i + 1, i * 37, 1) + payload[i:i + 1])
            except OSError as e:
                send_error.append("sending request %d failed: %r" % (i + 1, e))
                return
    t = threading.Thread(target=send)
    t.start()
    # The server's replies fill the socket (and wait for the sender thread)
    # before this side reads a single one.
    time.sleep(0.5)
    s.settimeout(30)
    seen = set()
    try:
        for _ in range(n):
            magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
            assert magic == 0x67446698 and err == 0, (magic, err)
            seen.add(cookie)
    except (OSError, EOFError) as e:
        p.terminate()
        raise AssertionError("after %d of %d replies: %r; %s; server: %s" % (
            len(seen), n, e, send_error or "every request sent",
            p.communicate()[1].decode().strip() or "said nothing"))
    t.join()
    assert not send_error, send_error
    s.close()
    assert seen == set(range(1, n + 1)), len(seen)
    with open(path, "rb") as f:
        data = f.read()
    assert all(data[i * 37] == payload[i] for i in range(n))


@test("bad request magic disconnects")
def _():
    s = raw(sock)
    go(s)
    s.sendall(b"\x11" * 28)
    assert s.recv(1) == b""


@test("a client stalling in the handshake is cut off at --handshake-limit")
def _():
    p, s2 = start(img, "-t", "-e", "4", "--handshake-limit", "1")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(s2)
    recv_exact(s, 18)
    t0 = time.monotonic()
    gone = s.recv(1) == b""
    took = time.monotonic() - t0
    # A client that finished its handshake is not cut off.
    h = connect(s2)
    time.sleep(1.5)
    h.pread(10, 0)
    h.shutdown()
    return (gone and 0.5 < took < 5) or "closed=%s after %.1fs" % (gone, took)


@test("--shared=1: a second concurrent client is refused, the first keeps working")
def _():
    p, s2 = start(img, "-t", "-e", "1")
    h = connect(s2)
    try:
        connect(s2)
        return "second client accepted"
    except nbd.Error:
        pass
    h.pread(10, 0)
    h.shutdown()
    time.sleep(0.2)
    connect(s2).shutdown()  # and the slot is free again


@test("--shared=2 with two silent connections: each gives way, oldest first, to a real client")
def _():
    p, s2 = start(img, "-t", "-e", "2")
    silent = []
    for _ in range(2):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(s2)
        recv_exact(s, 18)  # the greeting: now in the handshake, saying nothing
        silent.append(s)

    def gone(s, timeout):
        s.settimeout(timeout)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False

    h1 = connect(s2)
    first = (gone(silent[0], 10), gone(silent[1], 0.3))
    h2 = connect(s2)
    second = gone(silent[1], 10)
    # Clients in transmission never give way: a third one is refused.
    try:
        connect(s2)
        third = "accepted"
    except nbd.Error:
        third = "refused"
    ok = h1.pread(10, 0) == h2.pread(10, 0)
    h1.shutdown()
    h2.shutdown()
    for s in silent:
        s.close()
    return (first == (True, False) and second and third == "refused" and ok) or \
        (first, second, third, ok)


@test("100 clients past --shared=1 are refused, with at most a log line a second")
def _():
    p, s2 = start(img, "-t", "-e", "1")
    h = connect(s2)
    refused = 0
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(s2)
        refused += s.recv(1) == b""
        s.close()
    h.shutdown()
    lines, err = log_lines(p, "refused")
    return (refused == 100 and 1 <= lines <= 3) or (refused, lines, err[-300:])


@test("30 clients stalling past --handshake-limit: cut, with at most a log line a second")
def _():
    p, s2 = start(img, "-t", "-e", "0", "--handshake-limit", "1")
    silent = []
    for _ in range(30):
        s = socket.socket(socket.AF_UNIX)
        s.connect(s2)  # blocking: the backlog may be full for a moment
        s.settimeout(10)
        silent.append(s)
    cut = sum(len(recv_exact(s, 18)) == 18 and s.recv(1) == b"" for s in silent)
    for s in silent:
        s.close()
    lines, err = log_lines(p, "did not finish the handshake")
    return (cut == 30 and 1 <= lines <= 3) or (cut, lines, err[-300:])


@test("--shared=1 does not advertise multi-conn; --shared=8 does")
def _():
    p, s2 = start(img, "-t", "-e", "1")
    h = connect(s2)
    one = h.can_multi_conn()
    h.shutdown()
    h = connect(sock, "disk")
    many = h.can_multi_conn()
    h.shutdown()
    return (not one and many) or (one, many)


@test("seven clients at once on one export")
def _():
    hs = [connect(sock, "disk") for _ in range(7)]
    with open(img, "rb") as f:
        want = f.read(4096)
    ok = all(h.pread(4096, 0) == want for h in hs)
    for h in hs:
        h.shutdown()
    return ok


@test("48 pipelined reads (simple replies): every reply whole, with its data")
def _():
    with open(img, "rb") as f:
        data = f.read()
    s = raw(sock)
    go(s)  # no structured replies: simple replies carry the data
    want = {}
    for i in range(48):
        off, length = (i * 331 * 1024) % (15 * MIB), 4096 * (1 + i % 40)
        request(s, 0, off, length, cookie=1000 + i)
        want[1000 + i] = data[off:off + length]
    bad = []
    for _ in range(48):
        magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
        if magic != 0x67446698 or err != 0 or cookie not in want:
            bad.append((magic, err, cookie))
            break
        if recv_exact(s, len(want[cookie])) != want.pop(cookie):
            bad.append(("data", cookie))
    s.close()
    return not bad and not want or (bad, sorted(want))


@test("a client hanging up with 64 MiB of replies unsent: the server serves on")
def _():
    s = raw(sock)
    go(s)
    for i in range(16):
        request(s, 0, 0, 4 * MIB, cookie=i)
    s.close()
    time.sleep(0.3)
    h = connect(sock, "disk")
    with open(img, "rb") as f:
        want = f.read(MIB)
    ok = h.pread(MIB, 0) == want and srv.poll() is None
    h.shutdown()
    return ok


# Over TLS the server reads files in memory (tmpfs) and writes every mapped
# file through its memory map; a page that vanishes under it must neither
# kill it nor lose an acknowledged write.  TLS-PSK, so no certificates.
shm = tempfile.mkdtemp(dir="/dev/shm") if os.path.isdir("/dev/shm") else tmp
psk_dir = os.path.join(tmp, "psk")
os.mkdir(psk_dir)
with open(os.path.join(psk_dir, "keys.psk"), "w") as f:
    f.write("alice:" + os.urandom(32).hex() + "\n")
PSK = ["--object", "tls-creds-psk,id=tls0,endpoint=server,dir=" + psk_dir, "--tls-creds", "tls0"]


PSK_CLIENT = ("alice", os.path.join(psk_dir, "keys.psk"))


@test("over TLS, a file in memory reads exact, and zeroes past the end once it shrank")
def _():
    path = os.path.join(shm, "tls-shrinks")
    data = os.urandom(4 * MIB)
    for mode in (["-r"], []):
        with open(path, "wb") as f:
            f.write(data)
        p, s = start(path, "-t", *PSK, *mode)
        h = connect(s, psk=PSK_CLIENT)
        assert h.pread(4 * MIB, 0) == data and h.pread(4096, 3 * MIB + 5) == data[3 * MIB + 5:3 * MIB + 4101]
        with open(path, "r+b") as f:
            f.truncate(MIB + 100)
        got = h.pread(2 * MIB, MIB // 2)
        assert got == data[MIB // 2:MIB + 100] + bytes(2 * MIB - (MIB // 2 + 100)), mode
        assert h.pread(MIB, 3 * MIB) == bytes(MIB), mode
        h.shutdown()
        p.terminate()
        p.wait()


@test("over TLS, a write into a vanished part of the file fails with EIO; the server says why and goes on")
def _():
    path = os.path.join(shm, "tls-shrinks-w")
    with open(path, "wb") as f:
        f.truncate(4 * MIB)
    p, s = start(path, "-t", *PSK)
    h = connect(s, psk=PSK_CLIENT)
    a, b = os.urandom(MIB), os.urandom(MIB)
    h.pwrite(a[:MIB // 2], 0)
    h.pwrite(a[MIB // 2:], MIB // 2, nbd.CMD_FLAG_FUA)
    with open(path, "rb") as f:
        assert f.read(MIB) == a, "the writes through the map (one FUA) did not land in the file"
    with open(path, "r+b") as f:
        f.truncate(MIB)
    e = nbd_errno(lambda: h.pwrite(b, 2 * MIB))
    assert e == "EIO", "a write into the vanished part: %s" % (e or "acknowledged")
    # The map is no longer trusted: the same write now grows the file.
    h.pwrite(b, 2 * MIB)
    h.flush()
    assert h.pread(MIB, 0) == a and h.pread(MIB, 2 * MIB) == b
    with open(path, "rb") as f:
        assert f.read() == a + bytes(MIB) + b
    assert p.poll() is None, "the server died"
    h.shutdown()
    p.terminate()
    err = p.communicate()[1].decode()
    assert "vanished" in err and "tls-shrinks-w" in err, err


for p in procs:
    if p.poll() is None:
        p.terminate()
        p.wait()
shutil.rmtree(tmp, ignore_errors=True)
if shm != tmp:
    shutil.rmtree(shm, ignore_errors=True)
print("1..%d" % count)
