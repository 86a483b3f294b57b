#!/usr/bin/python3
"""A drive mirror whose NBD target stops answering (nbdkit's delay filter
holds every write for ten minutes) is still cancelled at once by
block-job-cancel with force, and qiod still exits at once while such a
mirror runs."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap  # noqa: E402

t = Tap()
MiB = 1 << 20

if not shutil.which("nbdkit"):
    print("1..0 # SKIP nbdkit not installed")
    sys.exit(0)


def stuck_target(tmp, n):
    """nbdkit serving 16 MiB of memory whose writes never finish in time."""
    sock = os.path.join(tmp, f"stuck{n}.sock")
    proc = subprocess.Popen(["nbdkit", "--foreground", "-U", sock, "--filter=delay",
                             "memory", "size=16M", "delay-write=600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.05)
    return proc, sock


def start_stuck_mirror(n, tmp):
    proc, sock = stuck_target(tmp, n)
    q = Qiod("-m", "16M", "-drive", "file=@DIR@/disk0.img,id=disk0",
             images={"disk0.img": 16 * MiB})
    with open(os.path.join(q.dir, "disk0.img"), "r+b") as f:
        f.write(os.urandom(MiB))
    m = q.qmp()
    r = m.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m0",
                               "target": f"nbd+unix:///?socket={sock}"})
    time.sleep(0.5)
    jobs = m.cmd("query-block-jobs")["return"]
    t.ok(r == {"return": {}} and len(jobs) == 1 and not jobs[0]["ready"]
         and jobs[0]["offset"] == 0,
         f"run {n}: the mirror starts and its first write hangs in the target", (r, jobs))
    return proc, q, m


tmp = tempfile.mkdtemp(prefix="qio-mirror-cancel-")
try:
    proc, q, m = start_stuck_mirror(1, tmp)
    start = time.time()
    r = m.cmd("block-job-cancel", {"device": "m0", "force": True})
    ev = m.event("BLOCK_JOB_CANCELLED", timeout=5)
    t.ok(r == {"return": {}} and ev and ev["data"]["device"] == "m0",
         "run 1: block-job-cancel force ends the stuck mirror with BLOCK_JOB_CANCELLED",
         (r, ev, time.time() - start))
    t.ok(m.cmd("query-block-jobs")["return"] == [], "run 1: no job is left")
    t.ok(m.cmd("query-status")["return"]["running"], "run 1: the guest keeps running")
    m.close()
    q.stop()
    proc.kill()
    proc.wait()

    proc, q, m = start_stuck_mirror(2, tmp)
    m.cmd("quit")
    rc = q.wait(timeout=5)
    t.ok(rc == 0, "run 2: quit while the mirror hangs: qiod exits at once, status 0", rc)
    m.close()
    q.stop()
    proc.kill()
    proc.wait()
finally:
    shutil.rmtree(tmp, ignore_errors=True)

t.done()
