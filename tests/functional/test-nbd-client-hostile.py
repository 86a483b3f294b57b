#!/usr/bin/python3
"""qio's NBD client (nbd-client-check, qio-nbd --list) against a server that
breaks the protocol on purpose: endless error chunks, a read reply that
fills nothing, two block status chunks for one context, an endless export
list.  Each must end in a clear error, never a crash or a hang.  The
server is a few lines of Python here, on a UNIX socket."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import BUILDDIR, Tap, recv_exact  # noqa: E402

CHECK = os.path.join(BUILDDIR, "tests", "functional", "nbd-client-check")
QIONBD = os.path.join(BUILDDIR, "tools", "qio-nbd")
OPT_MAGIC, REP_MAGIC = 0x49484156454F5054, 0x3e889045565a9
REQ_MAGIC, CHUNK_MAGIC = 0x25609513, 0x668e33ef
SIZE = 1 << 20
t = Tap()


def rep(c, opt, typ, data=b""):
    c.sendall(struct.pack(">QIII", REP_MAGIC, opt, typ, len(data)) + data)


def chunk(c, flags, typ, cookie, data=b""):
    c.sendall(struct.pack(">IHHQI", CHUNK_MAGIC, flags, typ, cookie, len(data)) + data)


DONE, NONE, OFFSET_DATA, BLOCK_STATUS, ERROR = 1, 0, 1, 5, 2**15 + 1


def serve(c, mode):
    """One client: the handshake, then the misbehaviour of @mode."""
    c.sendall(b"NBDMAGIC" + struct.pack(">QH", OPT_MAGIC, 3))
    recv_exact(c, 4)
    while True:
        _, opt, length = struct.unpack(">QII", recv_exact(c, 16))
        recv_exact(c, length)
        if opt == 3:  # NBD_OPT_LIST
            for i in range(5000 if mode == "endless-list" else 1):
                name = b"e%d" % i
                rep(c, opt, 2, struct.pack(">I", len(name)) + name)
            rep(c, opt, 1)
        elif opt == 8:  # NBD_OPT_STRUCTURED_REPLY
            rep(c, opt, 1)
        elif opt == 10:  # NBD_OPT_SET_META_CONTEXT
            rep(c, opt, 4, struct.pack(">I", 1) + b"base:allocation")
            rep(c, opt, 1)
        elif opt == 7:  # NBD_OPT_GO
            rep(c, opt, 3, struct.pack(">HQH", 0, SIZE, 1 | 2 | 4 | 256))
            rep(c, opt, 1)
            break
        elif opt == 2:  # NBD_OPT_ABORT
            rep(c, opt, 1)
            return
        else:
            rep(c, opt, 2**31 + 1)
    while True:
        _, flags, typ, cookie, offset, length = struct.unpack(">IHHQQI", recv_exact(c, 28))
        if typ == 1:  # NBD_CMD_WRITE
            recv_exact(c, length)
        if typ == 2:  # NBD_CMD_DISC
            return
        if mode == "error-chain":
            # Far deeper than a stack of one call per chunk could go.
            err = struct.pack(">IH", 5, 4) + b"nope"
            for _ in range(100000):
                chunk(c, 0, ERROR, cookie, err)
            chunk(c, DONE, NONE, cookie)
        elif mode == "unfilled-read" and typ == 0:
            chunk(c, DONE, NONE, cookie)
        elif mode == "overlapping-read" and typ == 0:
            # Two halves' worth of bytes, both at the start: the lengths add
            # up to the read, the second half is never filled.
            half = length // 2
            chunk(c, 0, OFFSET_DATA, cookie, struct.pack(">Q", offset) + bytes(half))
            chunk(c, DONE, OFFSET_DATA, cookie,
                  struct.pack(">Q", offset) + bytes(length - half))
        elif mode == "confetti-read" and typ == 0:
            # A chunk per byte: more than a client should have to list.
            for i in range(length):
                chunk(c, DONE if i == length - 1 else 0, OFFSET_DATA, cookie,
                      struct.pack(">Q", offset + i) + b"\0")
        elif mode == "two-block-status" and typ == 7:
            extents = struct.pack(">III", 1, length, 0)
            chunk(c, 0, BLOCK_STATUS, cookie, extents)
            chunk(c, DONE, BLOCK_STATUS, cookie, extents)
        elif typ == 0:
            chunk(c, DONE, OFFSET_DATA, cookie, struct.pack(">Q", offset) + bytes(length))
        else:
            c.sendall(struct.pack(">IIQ", 0x67446698, 0, cookie))


def hostile_server(mode):
    path = os.path.join(tempfile.mkdtemp(prefix="nbd-hostile-"), "s.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()

    def run():
        c, _ = srv.accept()
        try:
            serve(c, mode)
        except (OSError, EOFError):
            pass  # the client gave up, as it should
        c.close()
        srv.close()
    threading.Thread(target=run, daemon=True).start()
    return path


def run(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return p.returncode, p.stderr


with tempfile.NamedTemporaryFile() as data:
    data.write(bytes(4096))
    data.flush()
    sock = hostile_server("error-chain")
    rc, err = run(CHECK, "write", f"nbd+unix:///?socket={sock}", data.name)
    t.ok(rc == 1 and "nope" in err,
         "100000 error chunks before the end of a reply: the first error is reported", (rc, err))

sock = hostile_server("unfilled-read")
rc, err = run(CHECK, "read", f"nbd+unix:///?socket={sock}", "/dev/null")
t.ok(rc == 1 and "left part of it unfilled" in err,
     "a read reply that fills nothing is a protocol error, not zeroes", (rc, err))

sock = hostile_server("overlapping-read")
rc, err = run(CHECK, "read", f"nbd+unix:///?socket={sock}", "/dev/null")
t.ok(rc == 1 and "filled part of it twice" in err,
     "a read reply whose chunks overlap (their lengths adding up to the read) is a protocol "
     "error", (rc, err))

sock = hostile_server("confetti-read")
rc, err = run(CHECK, "read", f"nbd+unix:///?socket={sock}", "/dev/null")
t.ok(rc == 1 and "too many chunks" in err,
     "a read reply in one-byte chunks is refused before the client lists them all", (rc, err))

sock = hostile_server("two-block-status")
rc, err = run(CHECK, "map", f"nbd+unix:///?socket={sock}")
t.ok(rc == 1 and "context not asked for" in err,
     "a second block status chunk for one context is a protocol error", (rc, err))

sock = hostile_server("endless-list")
rc, err = run(QIONBD, "--list", "-k", sock)
t.ok(rc == 1 and "thousands of replies" in err,
     "an export list that does not end: qio-nbd --list stops with an error", (rc, err))

sock = hostile_server("well-behaved")
rc, err = run(CHECK, "read", f"nbd+unix:///?socket={sock}", "/dev/null")
t.ok(rc == 0, "the same server, well behaved, serves a whole read", (rc, err))
t.done()
