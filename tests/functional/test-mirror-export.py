#!/usr/bin/python3
"""A drive is mirrored or exported writable over NBD, never both: writes
through a writable export bypass the guest's dirty tracking, so the mirror
would miss them.  Read-only exports of a mirrored drive are fine."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap, nbdkit  # noqa: E402

t = Tap()
MiB = 1 << 20

tmp = tempfile.mkdtemp(prefix="qio-mirror-export-")
target_sock = os.path.join(tmp, "target.sock")
target = nbdkit(target_sock, "memory", "size=16M")
q = Qiod("-m", "16M", "-drive", "file=@DIR@/disk0.img,id=disk0", images={"disk0.img": 16 * MiB})
try:
    m = q.qmp()
    mirror = {"device": "disk0", "sync": "full", "job-id": "m0",
              "target": f"nbd+unix:///?socket={target_sock}"}
    r = m.cmd("nbd-server-start", {"addr": {"type": "unix", "path": os.path.join(q.dir, "e.sock")}})
    r2 = m.cmd("nbd-server-add", {"device": "disk0", "writable": True})
    t.ok(r == {"return": {}} and r2 == {"return": {}}, "disk0 is exported writable", (r, r2))

    r = m.cmd("drive-mirror", mirror)
    t.ok("error" in r and "writable NBD export" in r["error"]["desc"]
         and "'disk0'" in r["error"]["desc"],
         "drive-mirror of a drive exported writable is refused, naming the drive", r)

    r = m.cmd("nbd-server-remove", {"name": "disk0"})
    r2 = m.cmd("drive-mirror", mirror)
    t.ok(r == {"return": {}} and r2 == {"return": {}},
         "after nbd-server-remove the mirror starts", (r, r2))

    r = m.cmd("nbd-server-add", {"device": "disk0", "name": "rw", "writable": True})
    t.ok("error" in r and "mirrored by job 'm0'" in r["error"]["desc"],
         "a writable export of the mirrored drive is refused, naming the job", r)
    r = m.cmd("nbd-server-add", {"device": "disk0", "name": "ro"})
    t.ok(r == {"return": {}}, "a read-only export of the mirrored drive is allowed", r)

    r = m.cmd("block-job-cancel", {"device": "m0", "force": True})
    ev = m.event("BLOCK_JOB_CANCELLED", timeout=10) or m.event("BLOCK_JOB_COMPLETED", timeout=1)
    t.ok(r == {"return": {}} and ev is not None, "the mirror is cancelled", (r, ev))
    r = m.cmd("nbd-server-add", {"device": "disk0", "name": "rw", "writable": True})
    t.ok(r == {"return": {}}, "once the job has ended, the writable export is allowed", r)

    r = m.cmd("nbd-server-stop")
    r2 = m.cmd("drive-mirror", mirror)
    t.ok(r == {"return": {}} and r2 == {"return": {}},
         "nbd-server-stop releases the drive: mirroring is allowed again", (r, r2))
    m.cmd("block-job-cancel", {"device": "m0", "force": True})
    m.close()
finally:
    q.stop()
    target.kill()
    target.wait()
    shutil.rmtree(tmp, ignore_errors=True)

t.done()
