#!/usr/bin/python3
"""drive-mirror's reconnect-delay (QEMU's name, from its NBD client): the
target is nbdkit's file plugin over TCP.  A proxy that cuts every
connection after 3 MiB: with reconnect-delay the mirror goes on over new
connections and the target ends up holding the drive's bytes; without it
the job fails.  nbdkit stopped mid-copy (SIGTERM, SIGKILL) and started
again, plain and over TLS: the mirror resumes.  Writes a target cached and
lost unflushed are written again.  A target that comes back with another size is refused, one that
never comes back, or accepts and never greets, is given up after the
delay, and a cancel during the wait or a hanging connect ends the job at
once.  Malformed reconnect-delay values are refused."""
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrationtest import proxy  # noqa: E402
from qiodtest import Qiod, Tap, free_port, make_pki, nbdkit  # noqa: E402

t = Tap()
MiB = 1 << 20
SIZE = 16 * MiB
tmp = tempfile.mkdtemp(prefix="qio-mirror-reconnect-")
procs = []


def stop(proc, sig=signal.SIGKILL):
    proc.send_signal(sig)
    proc.wait()


def target_file(name, size=SIZE):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def mirror(m, port, **extra):
    return m.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m0",
                                  "target": f"nbd://127.0.0.1:{port}/", **extra})


def cancelled_in(m):
    """Seconds block-job-cancel (force) took to end job m0, or None."""
    start = time.time()
    c = m.cmd("block-job-cancel", {"device": "m0", "force": True})
    ev = m.event("BLOCK_JOB_CANCELLED", timeout=10)
    return time.time() - start if c == {"return": {}} and ev is not None else None


def complete_and_check(m, r, q, before, backing, drive):
    """Waits for job m0 to be ready, completes it: (ready, completion
    data, qiod's log since @before, whether @backing holds @drive)."""
    ready = r == {"return": {}} and m.wait_job_ready("m0", timeout=60)
    m.cmd("block-job-complete", {"device": "m0"})
    data = finished(m, timeout=60)
    log = q.stderr_until("\0", timeout=0.5)[before:]
    with open(backing, "rb") as f:
        return ready, data, log, f.read() == drive


def finished(m, timeout=30):
    ev = m.event("BLOCK_JOB_COMPLETED", timeout=timeout)
    return ev["data"] if ev else None


q = Qiod("-m", "16M", "-drive", "file=@DIR@/disk0.img,id=disk0", images={"disk0.img": SIZE})
try:
    disk = os.path.join(q.dir, "disk0.img")
    with open(disk, "r+b") as f:
        f.write(os.urandom(SIZE))
    with open(disk, "rb") as f:
        drive = f.read()
    m = q.qmp()

    # A network that drops every connection after 3 MiB towards the target.
    backing = target_file("cut.img")
    nbd_port, cut_port = free_port(), free_port()
    procs.append(nbdkit(None, "file", backing, port=nbd_port))
    lsock = proxy(cut_port, nbd_port, cut_after=3 * MiB)
    before = len(q.stderr_until("\0", timeout=0.2))
    r = mirror(m, cut_port, **{"reconnect-delay": 10})
    ready = r == {"return": {}} and m.wait_job_ready("m0")
    m.cmd("block-job-complete", {"device": "m0"})
    data = finished(m)
    log = q.stderr_until("\0", timeout=0.5)[before:]
    reconnects = log.count("reconnected to export")
    with open(backing, "rb") as f:
        same = f.read() == drive
    t.ok(ready and data is not None and "error" not in data and same and reconnects >= 4,
         f"connections cut every 3 MiB: with reconnect-delay the mirror reconnects "
         f"({reconnects} times) and completes; the target holds the drive's bytes",
         (r, data, log[-600:]))

    target_file("cut.img")  # empty again
    r = mirror(m, cut_port)
    data = finished(m)
    t.ok(r == {"return": {}} and data is not None and "error" in data
         and "127.0.0.1" in data["error"],
         "the same network without reconnect-delay: the job fails, naming the target", data)
    lsock.close()
    stop(procs.pop())

    # The target's server is killed mid-copy and started again (writes
    # slowed by nbdkit's delay filter, so the copy takes a few seconds).
    backing = target_file("restart.img")
    port = free_port()
    slow = ("--filter=delay", "file", backing, "delay-write=100ms")

    def mirror_losing_target(delay, sig=signal.SIGKILL):
        """A mirror into nbdkit (its writes slowed) with @delay, nbdkit
        stopped by @sig 0.5 s into the copy."""
        procs.append(nbdkit(None, *slow, port=port))
        r = mirror(m, port, **{"reconnect-delay": delay})
        time.sleep(0.5)
        stop(procs.pop(), sig)
        return r

    # SIGTERM: nbdkit answers the write in flight with ESHUTDOWN, which
    # counts as a lost connection.
    before = len(q.stderr_until("\0", timeout=0.2))
    r = mirror_losing_target(15, signal.SIGTERM)
    time.sleep(1.5)
    procs.append(nbdkit(None, *slow, port=port))
    ready, data, log, same = complete_and_check(m, r, q, before, backing, drive)
    t.ok(ready and data is not None and "error" not in data and same
         and "connection lost" in log and "reconnected to export" in log,
         "nbdkit stopped (SIGTERM) mid-copy and started again 1.5 s later: the mirror "
         "resumes and completes; the target holds the drive's bytes", (data, log[-500:]))
    stop(procs.pop())

    # Over TLS (nbdkit --tls=require): the new connection makes a new TLS
    # handshake with the same credentials.
    pki = make_pki()
    r0 = m.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls0",
                              "endpoint": "client", "dir": f"{pki}/cli"})
    backing = target_file("tls.img")
    tls_slow = ("--tls=require", f"--tls-certificates={pki}/srv", "--filter=delay", "file",
                backing, "delay-write=100ms")
    procs.append(nbdkit(None, *tls_slow, port=port))
    before = len(q.stderr_until("\0", timeout=0.2))
    r = mirror(m, port, **{"reconnect-delay": 15, "tls-creds": "tls0",
                           "target": f"nbds://127.0.0.1:{port}/"})
    time.sleep(0.5)
    stop(procs.pop())
    time.sleep(1)
    procs.append(nbdkit(None, *tls_slow, port=port))
    ready, data, log, same = complete_and_check(m, r, q, before, backing, drive)
    t.ok(r0 == {"return": {}} and ready and data is not None and "error" not in data and same
         and "reconnected to export" in log,
         "over TLS: nbdkit killed and started again, the mirror reconnects with a new "
         "handshake and completes; the target holds the drive's bytes", (r0, r, data))
    stop(procs.pop())
    backing = target_file("restart.img")

    # Writes the target acknowledged into its cache and lost when killed
    # (nbdkit's cache filter in writeback mode, nothing flushed while the
    # job is ready): the flush at completion finds the connection replaced
    # and the mirror writes them again.
    backing = target_file("cache.img")
    cached = ("--filter=cache", "file", backing, "cache=writeback")
    procs.append(nbdkit(None, *cached, port=port))
    r = mirror(m, port, **{"reconnect-delay": 15})
    ready = r == {"return": {}} and m.wait_job_ready("m0")
    stop(procs.pop())
    with open(backing, "rb") as f:
        lost = f.read() != drive
    procs.append(nbdkit(None, *cached, port=port))
    m.cmd("block-job-complete", {"device": "m0"})
    data = finished(m)
    stop(procs.pop(), signal.SIGTERM)
    with open(backing, "rb") as f:
        same = f.read() == drive
    t.ok(ready and lost and data is not None and "error" not in data and same,
         "writes a killed target acknowledged but never flushed are written again after the "
         "reconnect: the target holds the drive's bytes", (lost, data))

    # A target that accepts connections but never greets: each try is cut
    # off at the delay, which then fails the job.
    gate = threading.Event()
    held_port = free_port()
    lsock = proxy(held_port, port, gate=gate)
    procs.append(nbdkit(None, *slow, port=port))
    r = mirror(m, held_port, **{"reconnect-delay": 2})
    time.sleep(0.5)
    stop(procs.pop())
    procs.append(nbdkit(None, *slow, port=port))
    start = time.time()
    data = finished(m)
    took = time.time() - start
    t.ok(data is not None and "gave up reconnecting after 2 seconds" in data.get("error", "")
         and took < 8,
         f"a target that accepts but never greets: the job fails after the delay "
         f"({took:.1f} s)", data)
    gate.set()
    lsock.close()
    stop(procs.pop())

    # A connect that hangs (the port's accept queue full, SYNs dropped):
    # block-job-cancel ends it at once.
    procs.append(nbdkit(None, *slow, port=port))
    r = mirror(m, port, **{"reconnect-delay": 600})
    time.sleep(0.5)
    stop(procs.pop())
    full = socket.socket()
    full.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    full.bind(("127.0.0.1", port))
    full.listen(0)
    waiting = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        waiting.append(c)
    time.sleep(1)
    took = cancelled_in(m)
    t.ok(took is not None and took < 3,
         f"block-job-cancel while a reconnect's connect hangs ends the job in {took} s")
    for sock in waiting + [full]:
        sock.close()

    # It comes back as another export (twice the size): refused at once.
    r = mirror_losing_target(15)
    procs.append(nbdkit(None, "memory", f"size={2 * SIZE}", port=port))
    start = time.time()
    data = finished(m)
    t.ok(data is not None and "its size changed" in data.get("error", "")
         and time.time() - start < 10,
         "a target that comes back with another size is refused, saying so", data)
    stop(procs.pop())

    # It never comes back: given up after the delay.
    r = mirror_losing_target(2)
    start = time.time()
    data = finished(m)
    took = time.time() - start
    t.ok(data is not None and "gave up reconnecting after 2 seconds" in data.get("error", "")
         and 1.5 < took < 8,
         f"a target that never comes back: the job fails after the delay ({took:.1f} s), "
         "saying so", data)

    # A cancel while the mirror waits for the target ends the job at once.
    r = mirror_losing_target(600)
    time.sleep(1)
    took = cancelled_in(m)
    t.ok(took is not None and took < 3, f"block-job-cancel during the wait ends the job in "
         f"{took} s")

    for value, needle in ((-1, "between 0 and"), (1 << 33, "between 0 and"),
                          ("5", "reconnect-delay")):
        r = mirror(m, port, **{"reconnect-delay": value})
        t.ok(needle in r.get("error", {}).get("desc", "")
             and m.cmd("query-block-jobs")["return"] == [],
             f"reconnect-delay {value!r} is refused, naming the parameter", r)
    m.close()
finally:
    for p in procs:
        stop(p)
    q.stop()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
