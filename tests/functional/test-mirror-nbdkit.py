#!/usr/bin/python3
"""drive-mirror into nbdkit exports that offer less than qio's own server.
One offers no flush, no FUA and no trim (nbdkit's eval plugin over a file,
without those methods; nbdkit refuses commands it did not offer): the
mirror completes without sending any of them and the target holds the
drive's bytes.  One wants writes aligned to 64 KiB (the blocksize-policy
filter, refusing what breaks its policy): the mirror, which writes 4 KiB
guest blocks, refuses it up front, saying why."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap, nbdkit  # noqa: E402

t = Tap()
MiB = 1 << 20
SIZE = 16 * MiB


tmp = tempfile.mkdtemp(prefix="qio-mirror-nbdkit-")
procs = []
q = Qiod("-m", "16M", "-drive", "file=@DIR@/disk0.img,id=disk0", images={"disk0.img": SIZE})
try:
    disk = os.path.join(q.dir, "disk0.img")
    with open(disk, "r+b") as f:
        f.write(os.urandom(4 * MiB))
        f.seek(12 * MiB)
        f.write(os.urandom(MiB))
    m = q.qmp()

    backing = os.path.join(tmp, "target.img")
    with open(backing, "wb") as f:
        f.truncate(SIZE)
    sock = os.path.join(tmp, "plain.sock")
    procs.append(nbdkit(
        sock, "eval", f"get_size=echo {SIZE}",
        f"pread=dd if={backing} skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none",
        f"pwrite=dd of={backing} seek=$4 oflag=seek_bytes conv=notrunc status=none"))
    info = subprocess.run(["nbdinfo", f"nbd+unix:///?socket={sock}"], capture_output=True,
                          text=True, timeout=30).stdout
    t.ok(all(f"{flag}: false" in info for flag in ("can_flush", "can_fua", "can_trim"))
         and "is_read_only: false" in info,
         "nbdkit's eval export is writable and offers no flush, FUA or trim", info)
    r = m.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m0",
                               "target": f"nbd+unix:///?socket={sock}"})
    t.ok(r == {"return": {}} and m.wait_job_ready("m0"), "the mirror into it becomes ready", r)
    r = m.cmd("block-job-complete", {"device": "m0"})
    ev = m.event("BLOCK_JOB_COMPLETED", timeout=30)
    t.ok(r == {"return": {}} and ev and ev["data"]["device"] == "m0"
         and "error" not in ev["data"],
         "block-job-complete ends it without error (no flush was sent)", (r, ev))
    with open(disk, "rb") as a, open(backing, "rb") as b:
        t.ok(a.read() == b.read(), "the target holds the drive's bytes")

    sock = os.path.join(tmp, "aligned.sock")
    procs.append(nbdkit(sock, "--filter=blocksize-policy", "memory", f"size={SIZE}",
                        "blocksize-minimum=65536", "blocksize-preferred=65536",
                        "blocksize-error-policy=error"))
    r = m.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m1",
                               "target": f"nbd+unix:///?socket={sock}"})
    ev = m.event("BLOCK_JOB_COMPLETED", timeout=30)
    err = ev["data"].get("error", "") if ev else ""
    t.ok(r == {"return": {}} and ev and ev["data"]["device"] == "m1"
         and "aligned to 65536 bytes" in err and "minimum block size" in err,
         "a target wanting 64 KiB-aligned writes is refused, saying why", (r, ev))
    t.ok(m.cmd("query-block-jobs")["return"] == [] and m.cmd("query-status")["return"]["running"],
         "no job is left and the guest keeps running")
    m.close()

    # A drive whose size is no multiple of the target's 512-byte minimum:
    # its last write would be refused, so the mirror refuses up front.
    q2 = Qiod("-m", "16M", "-drive", "file=@DIR@/odd.img,id=odd",
              images={"odd.img": SIZE + 100})
    try:
        m2 = q2.qmp()
        sock = os.path.join(tmp, "sector.sock")
        procs.append(nbdkit(sock, "--filter=blocksize-policy", "memory", f"size={SIZE + 512}",
                            "blocksize-minimum=512", "blocksize-error-policy=error"))
        r = m2.cmd("drive-mirror", {"device": "odd", "sync": "full", "job-id": "m2",
                                    "target": f"nbd+unix:///?socket={sock}"})
        ev = m2.event("BLOCK_JOB_COMPLETED", timeout=30)
        err = ev["data"].get("error", "") if ev else ""
        t.ok(r == {"return": {}} and ev and f"has {SIZE + 100} bytes, not a multiple of the "
             "512-byte minimum block size" in err,
             "a drive of 16 MiB + 100 bytes into a 512-byte-block target is refused, saying why",
             (r, ev))
        m2.close()
    finally:
        q2.stop()
finally:
    q.stop()
    for p in procs:
        p.kill()
        p.wait()
    shutil.rmtree(tmp, ignore_errors=True)

t.done()
