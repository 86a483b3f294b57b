#!/usr/bin/python3
"""qio-ctl against a real qiod and against a scripted QMP server (argument
typing, job progress on a terminal)."""
import json
import os
import pty
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import QIO_CTL, Qiod, Tap  # noqa: E402

t = Tap()


criticals = []


def ctl(sock, *args, timeout=30):
    p = subprocess.run([QIO_CTL, "-s", f"unix:{sock}", *args], capture_output=True, text=True,
                       timeout=timeout)
    if "CRITICAL" in p.stderr or "WARNING" in p.stderr:
        criticals.append((args, p.stderr))
    return p.returncode, p.stdout, p.stderr


d = Qiod("-m", "8M", "-guest", "dirty-rate=100", images={"d0.img": 1 << 20},
         *["-drive", "file=@DIR@/d0.img,id=d0"])
rc, out, err = ctl(d.sock, "query-status")
t.ok(rc == 0 and "status: running" in out and "running: true" in out,
     "human output: key: value lines", (rc, out, err))
rc, out, err = ctl(d.sock, "--json", "query-guest")
try:
    g = json.loads(out)
except ValueError:
    g = {}
t.ok(rc == 0 and len(g.get("ram-digest", "")) == 64 and g["disks"][0]["id"] == "d0",
     "--json prints the return value as JSON", out)
rc, out, err = ctl(d.sock, "query-guest")
t.ok(rc == 0 and "disks:" in out and "  -" in out and "    id: d0" in out,
     "human output: nested arrays of objects", out)
rc, out, err = ctl(d.sock, "guest-set-workload", "dirty-rate=7", "disk-rate=3")
rc2, out2, _ = ctl(d.sock, "--json", "query-guest")
t.ok(rc == 0 and out == "" and json.loads(out2)["dirty-rate"] == 7
     and json.loads(out2)["disk-rate"] == 3, "key=value arguments reach the command", (rc, err))
rc, out, err = ctl(d.sock, "no-such-command")
t.ok(rc == 1 and "no-such-command failed: CommandNotFound" in err, "command error: exit 1",
     (rc, err))
rc, out, err = ctl(d.sock, "guest-set-workload", "dirty-rate=fast")
t.ok(rc == 1 and "expected: int" in err, "argument type error: exit 1", (rc, err))
rc, out, err = ctl(d.sock, "guest-set-workload", "dirty-rate")
t.ok(rc == 2 and "not key=value" in err, "malformed argument: exit 2", (rc, err))
rc, out, err = ctl(d.sock, "frob", "x:={bad")
t.ok(rc == 2 and "not valid JSON" in err, "malformed JSON argument: exit 2", (rc, err))
rc, out, err = ctl(d.sock)
t.ok(rc == 2 and "no command" in err, "no command: exit 2", (rc, err))
rc, out, err = ctl(d.sock, "--bogus", "query-status")
t.ok(rc == 2, "unknown option: exit 2", (rc, err))
p = subprocess.run([QIO_CTL, "query-status"], capture_output=True, text=True,
                   env={k: v for k, v in os.environ.items() if k != "QIO_CTL_SOCKET"})
t.ok(p.returncode == 2 and "QIO_CTL_SOCKET" in p.stderr, "no address: exit 2", p.stderr)
p = subprocess.run([QIO_CTL, "query-status"], capture_output=True, text=True,
                   env={**os.environ, "QIO_CTL_SOCKET": f"unix:{d.sock}"})
t.ok(p.returncode == 0 and "status:" in p.stdout, "$QIO_CTL_SOCKET supplies the address")
rc, out, err = ctl(os.path.join(d.dir, "missing.sock"), "query-status")
t.ok(rc == 3 and "missing.sock" in err, "no server: exit 3 naming the address", (rc, err))
rc, out, err = ctl(d.sock, "-s", "nonsense-address", "query-status")
t.ok(rc == 2 and "nonsense-address" in err, "malformed address: exit 2", (rc, err))

# wait-event: a second qio-ctl stops the guest.
waiter = subprocess.Popen([QIO_CTL, "-s", f"unix:{d.sock}", "wait-event", "STOP"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(0.5)
ctl(d.sock, "stop")
out, err = waiter.communicate(timeout=30)
t.ok(waiter.returncode == 0 and " STOP" in out, "wait-event returns on the event",
     (waiter.returncode, out, err))
rc, out, err = ctl(d.sock, "--timeout", "1", "wait-event", "RESUME")
t.ok(rc == 3 and "no RESUME event within 1 seconds" in err, "wait-event times out: exit 3",
     (rc, err))
rc, out, err = ctl(d.sock, "wait-event")
t.ok(rc == 2, "wait-event without a name: exit 2", (rc, err))
rc, out, err = ctl(d.sock, "quit")
t.ok(rc == 0 and d.wait() == 0, "quit through qio-ctl")
d.stop()


# --- a scripted server ------------------------------------------------------
class FakeQmp(threading.Thread):
    """Serves one QMP connection at a time; query-migrate reports progress
    that advances on every call."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.requests = []
        self.polls = 0

    def reply(self, req):
        cmd = req["execute"]
        if cmd == "query-migrate":
            self.polls += 1
            done = min(self.polls * 25, 100)
            status = "completed" if done == 100 else "active"
            return {"status": status, "ram": {"transferred": done * 1000, "total": 100000}}
        if cmd == "query-block-jobs":
            self.polls += 1
            return [] if self.polls > 2 else [{"device": "d0", "offset": 50, "len": 100,
                                               "ready": False}]
        return {}

    def run(self):
        while True:
            conn, _ = self.srv.accept()
            f = conn.makefile("rwb")
            f.write(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
            f.flush()
            for line in f:
                req = json.loads(line)
                self.requests.append(req)
                rep = {"return": self.reply(req), "id": req.get("id")}
                f.write(json.dumps(rep).encode() + b"\r\n")
                f.flush()
            conn.close()


tmp = tempfile.mkdtemp(prefix="qio-ctl-test-")
fake_path = os.path.join(tmp, "fake.sock")
fake = FakeQmp(fake_path)
fake.start()

rc, out, err = ctl(fake_path, "frob", "a=1", "b=true", "c=text", 'd:="5"', 'e={"x":[1]}',
                   "f=-3", "g=1.5", "h=")
args = fake.requests[-1].get("arguments", {})
t.ok(rc == 0 and args == {"a": 1, "b": True, "c": "text", "d": "5", "e": {"x": [1]}, "f": -3,
                          "g": "1.5", "h": ""}, "argument typing", args)

fake.polls = 0
rc, out, err = ctl(fake_path, "--progress", "migrate", "uri=tcp:127.0.0.1:1")
t.ok(rc == 0 and "query-migrate: completed" in out, "--progress without a terminal: final status",
     (rc, out, err))

# On a terminal: a redrawn bar.
fake.polls = 0
pid, fd = pty.fork()
if pid == 0:
    os.execv(QIO_CTL, [QIO_CTL, "-s", f"unix:{fake_path}", "--progress", "migrate", "uri=x"])
buf = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
_, status = os.waitpid(pid, 0)
text = buf.decode(errors="replace")
t.ok(os.WEXITSTATUS(status) == 0 and "\r[##########" in text and " 25.0%" in text
     and "[" + "#" * 40 + "] 100.0%  completed" in text, "--progress on a terminal draws a bar",
     repr(text))

fake.polls = 0
rc, out, err = ctl(fake_path, "--progress", "drive-mirror", "device=d0")
t.ok(rc == 0 and "query-block-jobs: completed" in out, "--progress follows a block job",
     (rc, out, err))
t.ok(not criticals, "qio-ctl never logs a GLib warning or critical", criticals)
t.done()
