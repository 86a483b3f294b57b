#!/usr/bin/python3
"""qiod's NBD server (nbd-server-start/add/remove/stop, block-export-add/del)
read by qemu-img, nbdinfo and nbdcopy, plain and over x509 TLS with authz;
drive-mirror to another qiod's export and to qemu-nbd while the guest writes
its disk; and the QMP errors for bad arguments."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import Qiod, Tap, free_port, make_pki, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
t = Tap()
MiB = 1 << 20


def fill(path, size, seed):
    """Random-looking data, so a wrong offset or a missed block shows."""
    with open(path, "r+b") as f:
        f.write(os.urandom(size // 2))
        f.seek(size - 4096)
        f.write(bytes([seed]) * 4096)


def error_desc(r):
    return r.get("error", {}).get("desc", "")


def is_error(r, text, cls="GenericError"):
    return "error" in r and text in error_desc(r) and r["error"]["class"] == cls


def digest(q):
    return q.cmd("query-guest")["return"]["disks"][0]["digest"]


def wait_file(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.05)
    return os.path.exists(path)


# --- The NBD server, plaintext on a UNIX socket -----------------------------
a = Qiod("-drive", "file=@DIR@/disk0.img,id=disk0", "-drive", "file=@DIR@/disk1.img,id=disk1",
         images={"disk0.img": 8 * MiB, "disk1.img": 4 * MiB})
img0 = os.path.join(a.dir, "disk0.img")
fill(img0, 8 * MiB, 7)
q = a.qmp()
sock = os.path.join(a.dir, "nbd.sock")
uri0 = f"nbd+unix:///disk0?socket={sock}"

t.ok(is_error(q.cmd("nbd-server-add", {"device": "disk0"}), "NBD server not running"),
     "nbd-server-add before nbd-server-start is refused")
t.ok(is_error(q.cmd("nbd-server-stop"), "NBD server not running"),
     "nbd-server-stop without a server is refused")
r = q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock}})
t.ok(r == {"return": {}}, "nbd-server-start on a UNIX socket", r)
t.ok(is_error(q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock + "2"}}),
              "already running"), "a second nbd-server-start is refused")
r = q.cmd("nbd-server-add", {"device": "disk0"})
t.ok(r == {"return": {}}, "nbd-server-add disk0 (read-only, named after the drive)", r)
rc, out, err = run("nbdinfo", uri0)
t.ok(rc == 0 and "export-size: 8388608" in out and "is_read_only: true" in out,
     "nbdinfo sees the 8 MiB read-only export", out + err)
rc, out, err = run("qemu-img", "compare", "-f", "raw", "-F", "raw", img0, uri0)
t.ok(rc == 0, "qemu-img compare: the export equals the drive's image", out + err)
copy = os.path.join(a.dir, "copy.img")
rc, out, err = run("nbdcopy", uri0, copy)
t.ok(rc == 0 and run("cmp", img0, copy)[0] == 0, "nbdcopy reads the export byte-exact", err)
rc, out, err = run("qemu-io", "-f", "raw", "-c", "write -P 0x55 0 4k", uri0)
t.ok(rc != 0 or "failed" in out + err, "writes to a read-only export fail", out + err)

t.ok(is_error(q.cmd("nbd-server-add", {"device": "disk0"}), "already exists"),
     "a second export of the same name is refused")
t.ok(is_error(q.cmd("nbd-server-add", {"device": "nodisk"}), "'nodisk' not found",
              "DeviceNotFound"), "nbd-server-add of an unknown drive: DeviceNotFound")
t.ok(is_error(q.cmd("block-export-add", {"type": "nbd", "id": "exp1", "node-name": "disk1",
                                         "name": "scratch", "description": "d" * 4097}),
              "Description of export 'scratch' is longer than 4096 bytes"),
     "block-export-add with a description over 4096 bytes is refused")
r = q.cmd("block-export-add", {"type": "nbd", "id": "exp1", "node-name": "disk1",
                               "name": "scratch", "writable": True,
                               "description": "scratch disk for the test"})
t.ok(r == {"return": {}}, "block-export-add a writable export of disk1", r)
t.ok(is_error(q.cmd("block-export-add", {"type": "nbd", "id": "exp1", "node-name": "disk1",
                                         "name": "other"}), "already in use"),
     "block-export-add with a used id is refused")
rc, out, err = run("nbdinfo", "--list", f"nbd+unix:///?socket={sock}")
t.ok(rc == 0 and 'export="disk0"' in out and 'export="scratch"' in out
     and "description: qiod drive disk0" in out and "description: scratch disk for the test" in out,
     "nbdinfo --list shows both exports with their descriptions", out + err)
rc, out, err = run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 64k",
                   f"nbd+unix:///scratch?socket={sock}")
with open(os.path.join(a.dir, "disk1.img"), "rb") as f:
    f.seek(MiB)
    written = f.read(65536)
t.ok(rc == 0 and written == b"\x5a" * 65536, "qemu-io writes reach disk1's image", out + err)

r = q.cmd("nbd-server-remove", {"name": "disk0"})
ev = q.event("BLOCK_EXPORT_DELETED")
t.ok(r == {"return": {}} and ev and ev["data"]["id"] == "disk0",
     "nbd-server-remove emits BLOCK_EXPORT_DELETED", (r, ev))
t.ok(run("nbdinfo", uri0)[0] != 0, "a removed export is gone")
t.ok(is_error(q.cmd("nbd-server-remove", {"name": "disk0"}), "no export named 'disk0'"),
     "removing an unknown export is refused")
t.ok(is_error(q.cmd("nbd-server-remove", {"name": "scratch", "mode": "gentle"}),
              "unknown value 'gentle'"), "nbd-server-remove with a bad mode is refused")
r = q.cmd("block-export-del", {"id": "exp1"})
ev = q.event("BLOCK_EXPORT_DELETED")
t.ok(r == {"return": {}} and ev and ev["data"]["id"] == "exp1", "block-export-del by id", (r, ev))
t.ok(is_error(q.cmd("block-export-del", {"id": "exp1"}), "'exp1' not found"),
     "block-export-del of an unknown id is refused")
r = q.cmd("nbd-server-stop")
t.ok(r == {"return": {}} and not os.path.exists(sock),
     "nbd-server-stop closes the server and removes its socket", r)
port = free_port()
r = q.cmd("nbd-server-start", {"addr": {"type": "inet", "data": {"host": "127.0.0.1",
                                                                 "port": str(port)}},
                               "max-connections": 4})
q.cmd("nbd-server-add", {"device": "disk0", "name": ""})
rc, out, err = run("qemu-img", "compare", "-f", "raw", "-F", "raw", img0,
                   f"nbd://127.0.0.1:{port}")
t.ok(r == {"return": {}} and rc == 0,
     "legacy addr {type, data} over TCP; the empty name is the default export", out + err)
q.cmd("nbd-server-stop")

# Bad arguments: each gets a clear error, and qiod keeps serving.
bad = [
    ({"addr": {"host": "127.0.0.1", "port": "1"}}, "'addr.type' is missing"),
    ({"addr": {"type": "bogus"}}, "unknown value 'bogus'"),
    ({"addr": {"type": "inet", "host": "127.0.0.1"}}, "'addr.port' is missing"),
    ({"addr": {"type": "inet", "host": "127.0.0.1", "port": "http"}}, "must be a number from 0 to 65535"),
    ({"addr": {"type": "inet", "host": "127.0.0.1", "port": 70000}}, "must be a number from 0 to 65535"),
    ({"addr": {"type": "inet", "host": "", "port": 1}}, "'addr.host'"),
    ({"addr": {"type": "unix"}}, "'addr.path'"),
    ({"addr": {"type": "unix", "data": 3}}, "'addr.data' must be an object"),
    ({"addr": {"type": "unix", "path": "/nonexistent-dir/nbd.sock"}}, "nbd.sock"),
    ({"addr": "unix:/tmp/x"}, "addr"),
    ({"addr": {"type": "unix", "path": sock}, "max-connections": -1}, "max-connections"),
    ({"addr": {"type": "unix", "path": sock}, "tls-creds": "nosuch"}, "nosuch"),
    ({"addr": {"type": "unix", "path": sock}, "tls-creds": "sec0"}, "sec0"),
    ({"addr": {"type": "unix", "path": sock}, "tls-authz": "a0"}, "needs 'tls-creds'"),
    ({"addr": {"type": "unix", "path": sock}, "bogus": 1}, "bogus"),
]
q.cmd("object-add", {"qom-type": "secret", "id": "sec0", "data": "x"})
for args, text in bad:
    r = q.cmd("nbd-server-start", args)
    t.ok("error" in r and text in error_desc(r), f"nbd-server-start {args}: error names {text}",
         r)
t.ok(is_error(q.cmd("block-export-add", {"type": "fuse", "id": "f", "node-name": "disk0"}),
              "type 'fuse' is not supported"), "block-export-add of a non-NBD type is refused")
t.ok(q.cmd("query-status")["return"]["running"], "qiod still answers after the bad commands")

# --- TLS ---------------------------------------------------------------------
pki = make_pki()
srv = f"tls-creds-x509,id=tls0,endpoint=server,dir={pki}/srv,verify-peer=on"
cli = f"tls-creds-x509,id=tlscli,endpoint=client,dir={pki}/cli"
for props, what in ((srv, "server"), (cli, "client")):
    kv = dict(p.split("=", 1) for p in props.split(",")[1:])
    kv.update({"verify-peer": True} if "verify-peer" in kv else {})
    r = q.cmd("object-add", {"qom-type": "tls-creds-x509", **kv})
    t.ok(r == {"return": {}}, f"object-add TLS {what} credentials", r)
q.cmd("object-add", {"qom-type": "authz-simple", "id": "allow", "identity": "CN=client"})
q.cmd("object-add", {"qom-type": "authz-simple", "id": "deny", "identity": "CN=somebody-else"})
t.ok(is_error(q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                         "tls-creds": "tlscli"}), "endpoint=server"),
     "client credentials for the server are refused")
t.ok(is_error(q.cmd("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                         "tls-creds": "tls0", "tls-authz": "sec0"}), "sec0"),
     "a tls-authz that is not an authz object is refused")

port = free_port()
r = q.cmd("nbd-server-start", {"addr": {"type": "inet", "host": "127.0.0.1", "port": str(port)},
                               "tls-creds": "tls0", "tls-authz": "allow"})
q.cmd("nbd-server-add", {"device": "disk0"})
turl = f"nbds://127.0.0.1:{port}/disk0?tls-certificates={pki}/cli"
rc, out, err = run("nbdinfo", turl)
t.ok(r == {"return": {}} and rc == 0 and "with TLS" in out, "nbdinfo over x509 TLS", out + err)
rc, out, err = run("qemu-img", "compare", "--object", cli.replace("tlscli", "tls0"),
                   "--image-opts", f"driver=raw,file.driver=file,file.filename={img0}",
                   f"driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port={port},"
                   "file.export=disk0,file.tls-creds=tls0")
t.ok(rc == 0, "qemu-img compare over TLS", out + err)
tcopy = os.path.join(a.dir, "tcopy.img")
rc, out, err = run("nbdcopy", turl, tcopy)
t.ok(rc == 0 and run("cmp", img0, tcopy)[0] == 0, "nbdcopy over TLS byte-exact", err)
rc, out, err = run("nbdinfo", f"nbd://127.0.0.1:{port}/disk0")
t.ok(rc != 0, "a plaintext client is refused when TLS is set", out + err)
rc, out, err = run("nbdinfo", f"nbds://127.0.0.1:{port}/disk0?tls-certificates={pki}/evilcli")
t.ok(rc != 0, "a client certificate of an untrusted CA is refused", out + err)
q.cmd("nbd-server-stop")
port = free_port()
q.cmd("nbd-server-start", {"addr": {"type": "inet", "host": "127.0.0.1", "port": port},
                           "tls-creds": "tls0", "tls-authz": "deny"})
q.cmd("nbd-server-add", {"device": "disk0"})
rc, out, err = run("nbdinfo", f"nbds://127.0.0.1:{port}/disk0?tls-certificates={pki}/cli")
t.ok(rc != 0, "tls-authz: a DN the authz does not allow is refused", out + err)
q.cmd("nbd-server-stop")
q.close()
a.stop()

# --- drive-mirror ------------------------------------------------------------
src = Qiod("-drive", "file=@DIR@/disk0.img,id=disk0", "-guest", "disk-rate=400,seed=5",
           "-object", cli, images={"disk0.img": 16 * MiB})
dst = Qiod("-drive", "file=@DIR@/disk0.img,id=disk0", "-object", srv,
           images={"disk0.img": 16 * MiB})
fill(os.path.join(src.dir, "disk0.img"), 16 * MiB, 9)
qs, qd = src.qmp(), dst.qmp()
dsock = os.path.join(dst.dir, "nbd.sock")
qd.cmd("nbd-server-start", {"addr": {"type": "unix", "path": dsock}})
qd.cmd("block-export-add", {"type": "nbd", "id": "e0", "node-name": "disk0", "writable": True})
target = f"nbd+unix:///disk0?socket={dsock}"

mirror_bad = [
    ({"device": "nodisk", "target": target, "sync": "full"}, "'nodisk' not found"),
    ({"device": "disk0", "target": target, "sync": "top"}, "sync mode 'top'"),
    ({"device": "disk0", "target": target, "sync": "full", "format": "qcow2"}, "'qcow2'"),
    ({"device": "disk0", "target": target, "sync": "full", "mode": "new"}, "mode 'new'"),
    ({"device": "disk0", "target": "/tmp/file.img", "sync": "full"}, "NBD URI"),
    ({"device": "disk0", "target": "nbd+unix:///x", "sync": "full"}, "NBD URI"),
    ({"device": "disk0", "target": "nbds://127.0.0.1/x", "sync": "full"}, "give 'tls-creds'"),
    ({"device": "disk0", "target": target, "sync": "full", "tls-creds": "nosuch"}, "nosuch"),
]
for args, text in mirror_bad:
    r = qs.cmd("drive-mirror", args)
    t.ok("error" in r and text in error_desc(r), f"drive-mirror {args}: error names {text}", r)
t.ok(is_error(qs.cmd("block-job-complete", {"device": "nojob"}), "'nojob' not found",
              "DeviceNotFound"), "block-job-complete of an unknown job: DeviceNotFound")
t.ok(is_error(qs.cmd("block-job-cancel", {"device": "nojob"}), "'nojob' not found",
              "DeviceNotFound"), "block-job-cancel of an unknown job: DeviceNotFound")

r = qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full", "job-id": "m0"})
t.ok(r == {"return": {}}, "drive-mirror to another qiod's export starts", r)
t.ok(is_error(qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full",
                                      "job-id": "m1"}), "already being mirrored"),
     "a second mirror of the same drive is refused")
t.ok(is_error(qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full",
                                      "job-id": "m0"}), "already in use"),
     "a used job-id is refused")
jobs = qs.cmd("query-block-jobs")["return"]
t.ok(len(jobs) == 1 and jobs[0]["device"] == "m0" and jobs[0]["type"] == "mirror",
     "query-block-jobs lists the job", jobs)
ev = qs.event("BLOCK_JOB_READY", timeout=30)
t.ok(ev and ev["data"]["device"] == "m0" and ev["data"]["offset"] == ev["data"]["len"],
     "BLOCK_JOB_READY with offset == len", ev)
jobs = qs.cmd("query-block-jobs")["return"]
t.ok(jobs and jobs[0]["ready"] and jobs[0]["status"] == "ready", "query-block-jobs: ready", jobs)
before = qs.cmd("query-guest")["return"]["blocks-written"]
time.sleep(0.5)
after = qs.cmd("query-guest")["return"]["blocks-written"]
t.ok(after > before, "the guest keeps writing its disk while the mirror is ready",
     (before, after))
qs.cmd("stop")
r = qs.cmd("block-job-complete", {"device": "m0"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(r == {"return": {}} and ev and "error" not in ev["data"] and ev["data"]["device"] == "m0",
     "block-job-complete -> BLOCK_JOB_COMPLETED", (r, ev))
t.ok(digest(qs) == digest(qd), "source and target disk digests are equal")
t.ok(qs.cmd("query-block-jobs")["return"] == [], "the completed job is gone")

# Complete while the guest keeps writing: the final pass catches up.
qs.cmd("cont")
qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full", "job-id": "m2"})
ready = qs.event("BLOCK_JOB_READY", timeout=30)
r = qs.cmd("block-job-complete", {"device": "m2"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(ready and ev and "error" not in ev["data"], "complete with the guest running", ev)

# Cancel: a ready job without force completes (as QEMU), with force it is
# cancelled; a job not ready yet is cancelled.
qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full", "job-id": "m3"})
qs.event("BLOCK_JOB_READY", timeout=30)
qs.cmd("block-job-cancel", {"device": "m3"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(ev and ev["data"]["device"] == "m3", "block-job-cancel of a ready job completes it", ev)
qs.cmd("drive-mirror", {"device": "disk0", "target": target, "sync": "full", "job-id": "m4"})
qs.event("BLOCK_JOB_READY", timeout=30)
qs.cmd("block-job-cancel", {"device": "m4", "force": True})
ev = qs.event("BLOCK_JOB_CANCELLED", timeout=30)
t.ok(ev and ev["data"]["device"] == "m4", "block-job-cancel force -> BLOCK_JOB_CANCELLED", ev)

# Targets that cannot work: the job ends with an error in BLOCK_JOB_COMPLETED.
qd.cmd("nbd-server-add", {"device": "disk0", "name": "ro"})
r = qs.cmd("drive-mirror", {"device": "disk0", "target": f"nbd+unix:///ro?socket={dsock}",
                            "sync": "full", "job-id": "m5"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(r == {"return": {}} and ev and "read-only" in ev["data"].get("error", ""),
     "a read-only target ends the job with an error", ev)
r = qs.cmd("drive-mirror", {"device": "disk0", "sync": "full", "job-id": "m6",
                            "target": f"nbd+unix:///x?socket={dst.dir}/nothing.sock"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(ev and "cannot connect" in ev["data"].get("error", ""),
     "an unreachable target ends the job with an error", ev)

# Over TLS to the second qiod (x509, checked against 127.0.0.1).
qd.cmd("nbd-server-stop")
port = free_port()
qd.cmd("nbd-server-start", {"addr": {"type": "inet", "host": "127.0.0.1", "port": str(port)},
                            "tls-creds": "tls0"})
qd.cmd("nbd-server-add", {"device": "disk0", "writable": True})
r = qs.cmd("drive-mirror", {"device": "disk0", "target": f"nbds://127.0.0.1:{port}/disk0",
                            "sync": "full", "job-id": "mt", "tls-creds": "tlscli"})
ready = qs.event("BLOCK_JOB_READY", timeout=30)
qs.cmd("stop")
qs.cmd("block-job-complete", {"device": "mt"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
t.ok(r == {"return": {}} and ready and ev and "error" not in ev["data"]
     and digest(qs) == digest(qd), "mirror over x509 TLS: digests equal", (r, ev))
t.ok(is_error(qs.cmd("drive-mirror", {"device": "disk0", "target": "nbd://127.0.0.1/x",
                                      "sync": "full", "tls-creds": "sec0x"}), "sec0x"),
     "drive-mirror with unknown tls-creds is refused")
qd.close()
dst.stop()

# To qemu-nbd as the target.
qs.cmd("cont")
target_img = os.path.join(src.dir, "target.img")
with open(target_img, "wb") as f:
    f.truncate(16 * MiB)
qsock = os.path.join(src.dir, "qemu-nbd.sock")
qnbd = subprocess.Popen(["qemu-nbd", "-f", "raw", "-k", qsock, "-x", "tgt", "-t", target_img],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wait_file(qsock)
r = qs.cmd("drive-mirror", {"device": "disk0", "target": f"nbd+unix:///tgt?socket={qsock}",
                            "sync": "full", "job-id": "mq"})
ready = qs.event("BLOCK_JOB_READY", timeout=30)
qs.cmd("stop")
qs.cmd("block-job-complete", {"device": "mq"})
ev = qs.event("BLOCK_JOB_COMPLETED", timeout=30)
qnbd.terminate()
qnbd.wait()
rc = run("cmp", os.path.join(src.dir, "disk0.img"), target_img)[0]
t.ok(r == {"return": {}} and ready and ev and "error" not in ev["data"] and rc == 0,
     "mirror to qemu-nbd with the guest writing: images identical", (r, ev))
qs.close()
src.stop()
shutil.rmtree(pki, ignore_errors=True)
t.done()
