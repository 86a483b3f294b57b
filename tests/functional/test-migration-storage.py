#!/usr/bin/python3
"""Migration with storage: the source mirrors its disk to the destination's
NBD export while the guest writes it, then migrates; at switch-over the
source completes the ready mirror, so the destination's disk and RAM
digests equal the source's.  And when the mirror's target is gone at
switch-over, the migration fails naming the mirror and the source guest
keeps running with its disk unchanged."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402

t = Tap()
MiB = 1 << 20


def pair(n, disk_rate=400):
    src = Qiod("-m", "32M", "-drive", "file=@DIR@/disk0.img,id=disk0",
               "-guest", f"dirty-rate=200,disk-rate={disk_rate},seed=5",
               images={"disk0.img": 16 * MiB})
    dst = Qiod("-m", "32M", "-drive", "file=@DIR@/disk0.img,id=disk0", "-guest", "seed=99",
               "-S", "-incoming", "defer", images={"disk0.img": 16 * MiB})
    with open(os.path.join(src.dir, "disk0.img"), "r+b") as f:
        f.write(os.urandom(4 * MiB))  # data the empty destination lacks
    qs, qd = src.qmp(), dst.qmp()
    sock = os.path.join(dst.dir, "nbd.sock")
    r = qd.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock}})
    r2 = qd.cmd("nbd-server-add", {"device": "disk0", "writable": True})
    t.ok(r == {"return": {}} and r2 == {"return": {}},
         f"run {n}: the destination exports its empty disk writable", (r, r2))
    for q in (qs, qd):
        q.cmd("migrate-set-capabilities",
              {"capabilities": [{"capability": "events", "state": True}]})
    r = qs.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m0",
                                "target": f"nbd+unix:///disk0?socket={sock}"})
    t.ok(r == {"return": {}} and qs.wait_job_ready("m0"),
         f"run {n}: drive-mirror to the destination's export becomes ready", r)
    return src, dst, qs, qd


def migrate(n, qs, qd, dst):
    uri = f"unix:{dst.dir}/mig.sock"
    r = qd.cmd("migrate-incoming", {"uri": uri})
    r2 = qs.cmd("migrate", {"uri": uri})
    t.ok(r == {"return": {}} and r2 == {"return": {}}, f"run {n}: migrate starts", (r, r2))
    deadline = time.time() + 60
    st = {}
    while time.time() < deadline:
        st = qs.cmd("query-migrate")["return"]
        if st.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    return st


def digests(q):
    g = q.cmd("query-guest")["return"]
    return g["ram-digest"], [d["digest"] for d in g["disks"]]


for n in (1, 2):
    src, dst, qs, qd = pair(n)
    before = qs.cmd("query-guest")["return"]["blocks-written"]
    time.sleep(0.3)
    after = qs.cmd("query-guest")["return"]["blocks-written"]
    t.ok(after > before, f"run {n}: the guest writes its disk while the mirror is ready",
         (before, after))
    st = migrate(n, qs, qd, dst)
    t.ok(st.get("status") == "completed", f"run {n}: the migration completes", st)
    ev = qs.event("BLOCK_JOB_COMPLETED", timeout=10)
    t.ok(ev and ev["data"]["device"] == "m0" and "error" not in ev["data"],
         f"run {n}: the mirror was completed at switch-over", ev)
    t.ok(qs.cmd("query-block-jobs")["return"] == [], f"run {n}: the source has no jobs left")
    deadline = time.time() + 20
    while time.time() < deadline:
        if qd.cmd("query-migrate")["return"].get("status") == "completed":
            break
        time.sleep(0.05)
    ds, dd = digests(qs), digests(qd)
    t.ok(ds[1] == dd[1], f"run {n}: disk digests match", (ds[1], dd[1]))
    t.ok(ds[0] == dd[0], f"run {n}: RAM digests match", (ds[0], dd[0]))
    t.ok(qs.cmd("query-status")["return"]["status"] == "postmigrate",
         f"run {n}: the source is in postmigrate")
    qs.close()
    qd.close()
    src.stop()
    dst.stop()

# The destination's NBD server stops while the mirror is ready and idle (the
# guest writes no disk blocks): the mirror only finds out at switch-over.
src, dst, qs, qd = pair(3, disk_rate=0)
disk_before = digests(qs)[1]
r = qd.cmd("nbd-server-stop")
t.ok(r == {"return": {}}, "run 3: the destination's NBD server stops", r)
st = migrate(3, qs, qd, dst)
t.ok(st.get("status") == "failed" and "drive mirror failed" in st.get("error-desc", ""),
     "run 3: the migration fails and says a drive mirror failed at switch-over", st)
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=10)
t.ok(ev and ev["data"]["device"] == "m0" and "nbd.sock" in ev["data"].get("error", ""),
     "run 3: BLOCK_JOB_COMPLETED reports the mirror's error, naming its target", ev)
status = qs.cmd("query-status")["return"]
t.ok(status["status"] == "running" and status["running"],
     "run 3: the source guest keeps running", status)
t.ok(digests(qs)[1] == disk_before, "run 3: the source's disk is unchanged")
qs.close()
qd.close()
src.stop()
dst.stop()

t.done()
