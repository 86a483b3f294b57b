#!/usr/bin/python3
"""qiod end to end: command line, every QMP command, malformed input,
many and slow clients, signals, and the guest's digests."""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import QIOD, Qiod, Qmp, Tap, run_qiod  # noqa: E402

t = Tap()


def is_error(reply, cls="GenericError", part=""):
    return ("error" in reply and reply["error"]["class"] == cls
            and part in reply["error"]["desc"])


# --- command line ---------------------------------------------------------
rc, out, err = run_qiod("--help")
t.ok(rc == 0 and "Usage: qiod" in out and "-qmp" in out, "--help prints usage, exit 0")
rc, out, err = run_qiod("-version")
t.ok(rc == 0 and out.startswith("qiod (qio) "), "-version prints the version", out)

bad_cmdlines = [
    (["-frobnicate"], "unknown option '-frobnicate'"),
    (["-m"], "needs an argument"),
    (["-m", "lots"], "invalid size 'lots'"),
    (["-m", "0"], "invalid size"),
    (["-m", "12Q"], "invalid size"),
    (["-m", "99999999999T"], "invalid size"),
    (["-m", "4097B"], "4097"),
    # Beyond any process's address space: refused with a message, not aborted.
    (["-m", "2000T"], "Cannot allocate 2199023255552000 bytes of guest RAM"),
    (["-drive", "file=/tmp/x"], "needs both file=PATH and id=NAME"),
    (["-drive", "file=/tmp/x,id=d0,format=qcow2"], "format 'qcow2'"),
    (["-drive", "file=/tmp/x,id=d0,cache=none"], "unknown parameter 'cache'"),
    (["-drive", "file=/nonexistent/disk.img,id=d0"], "/nonexistent/disk.img"),
    (["-drive", "file=/tmp/a,,id=d0"], "needs both"),
    (["-drive", "id=d0,,file=x"], "needs both"),
    (["-drive", "file=x,,id=d,"], "Trailing ','"),
    (["-drive", "file.name=x,id=d"], "not a structure"),
    (["-qmp", "unix:/tmp/q.sock,nowait"], "Expected '='"),
    (["-guest", "speed=3"], "unknown parameter 'speed'"),
    (["-guest", "dirty-rate=fast"], "dirty-rate='fast'"),
    (["-guest", "seed=-1"], "seed='-1'"),
    (["-qmp", "unix:/tmp/q.sock,server=off"], "only listens"),
    (["-qmp", "unix:/tmp/q.sock,wait=maybe"], "wait='maybe'"),
    (["-qmp", "unix:/tmp/q.sock,colour=red"], "unknown parameter 'colour'"),
    (["-qmp", "server=on"], "has no address"),
    (["-mon", "chardev=mon0,mode=control"], "'mon0' not found"),
    (["-qmp", "bogus-address"], "bogus-address"),
    (["-qmp", "unix:/nonexistent-dir/q.sock,server=on,wait=off"], "/nonexistent-dir/q.sock"),
    (["-incoming", "carrier-pigeon"], "not a migration URI"),
    (["-incoming", "file:/tmp/state"], "is not supported"),
    (["-object", "no-such-type,id=x"], "no-such-type"),
    (["-object", "secret"], "secret"),
    (["-D", "/nonexistent-dir/qiod.log"], "/nonexistent-dir/qiod.log"),
]
for args, needle in bad_cmdlines:
    rc, out, err = run_qiod(*args)
    t.ok(rc == 1 and needle in err and err.startswith("qiod: "),
         f"qiod {' '.join(args)}: exit 1, says {needle!r}", f"rc={rc} stderr={err!r}")

with open(os.path.join("/tmp", f"qiod-dup-{os.getpid()}.img"), "wb") as f:
    f.truncate(1 << 20)
    dup = f.name
rc, out, err = run_qiod("-drive", f"file={dup},id=d0", "-drive", f"file={dup},id=d0")
t.ok(rc == 1 and "'d0' is used twice" in err, "duplicate drive ids are refused", err)
os.unlink(dup)

# --- a running daemon -------------------------------------------------------
d = Qiod("-m", "16M", "-name", "guest=vm1", "-object", "secret,id=cmdline0,data=x", "-D", "@DIR@/qiod.log",
         "-pidfile", "@DIR@/qiod.pid", "-drive", "file=@DIR@/disk0.img,format=raw,id=disk0",
         "-guest", "dirty-rate=3000,disk-rate=200,seed=42", images={"disk0.img": 4 << 20})

q = d.qmp(negotiate=False)
g = q.greeting.get("QMP", {})
t.ok("version" in g and "qemu" in g["version"] and g.get("capabilities") == [],
     "greeting carries version and capabilities", q.greeting)
t.ok(is_error(q.cmd("query-status"), "CommandNotFound", "qmp_capabilities"),
     "commands before qmp_capabilities are refused")
t.ok("return" in q.cmd("qmp_capabilities"), "qmp_capabilities negotiates")
t.ok(is_error(q.cmd("qmp_capabilities"), "CommandNotFound", "already complete"),
     "a second qmp_capabilities is refused")

r = q.cmd("query-version", id="v1")
t.ok(r.get("id") == "v1" and r["return"]["qemu"]["major"] >= 0 and "package" in r["return"],
     "query-version, id echoed", r)
r = q.cmd("query-commands")
names = {c["name"] for c in r["return"]}
expected = {"qmp_capabilities", "query-version", "query-commands", "query-status", "stop",
            "cont", "quit", "object-add", "object-del", "qom-list-types", "query-guest",
            "guest-set-workload", "query-name", "screendump", "guest-serial-write",
            "query-tls-creds"}
t.ok(expected <= names, "query-commands lists every command", expected - names)
r = q.cmd("query-name")
t.ok(r["return"] == {"name": "vm1"}, "query-name returns -name", r)
r = q.cmd("query-status")
t.ok(r["return"]["status"] == "running" and r["return"]["running"] is True,
     "query-status: running", r)

r = q.cmd("query-guest")["return"]
t.ok(r["ram-size"] == 16 << 20 and len(r["ram-digest"]) == 64 and r["seed"] == 42
     and r["dirty-rate"] == 3000 and r["disk-rate"] == 200, "query-guest reports RAM and workload", r)
t.ok(len(r["disks"]) == 1 and r["disks"][0]["id"] == "disk0" and len(r["disks"][0]["digest"]) == 64,
     "query-guest reports each disk's id and digest", r)

time.sleep(0.3)
r2 = q.cmd("query-guest")["return"]
t.ok(r2["ram-digest"] != r["ram-digest"], "RAM digest changes while running")
t.ok(r2["disks"][0]["digest"] != r["disks"][0]["digest"], "disk digest changes while running")

r = q.cmd("stop")
ev = q.event("STOP")
t.ok(r == {"return": {}} and ev is not None and "seconds" in ev["timestamp"]
     and "microseconds" in ev["timestamp"], "stop: STOP event with timestamp", (r, ev))
t.ok(q.cmd("query-status")["return"]["status"] == "paused", "query-status: paused")
q.cmd("stop")
t.ok(q.event("STOP", timeout=0.5) is None, "stop while paused sends no event")
a = q.cmd("query-guest")["return"]
time.sleep(0.4)
b = q.cmd("query-guest")["return"]
t.ok(a["ram-digest"] == b["ram-digest"] and a["disks"] == b["disks"]
     and a["status"] == "paused", "digests stay fixed while stopped", (a, b))
r = q.cmd("cont")
t.ok(r == {"return": {}} and q.event("RESUME") is not None, "cont: RESUME event")
time.sleep(0.3)
c = q.cmd("query-guest")["return"]
t.ok(c["ram-digest"] != b["ram-digest"], "digests move again after cont")

r = q.cmd("guest-set-workload", {"dirty-rate": 0, "disk-rate": 0})
time.sleep(0.1)
a = q.cmd("query-guest")["return"]
time.sleep(0.3)
b = q.cmd("query-guest")["return"]
t.ok(r == {"return": {}} and a["ram-digest"] == b["ram-digest"] and b["dirty-rate"] == 0,
     "guest-set-workload rate 0 freezes a running guest", (r, a, b))
t.ok(is_error(q.cmd("guest-set-workload", {"dirty-rate": -5}), "GenericError", "negative"),
     "guest-set-workload refuses negative rates")
t.ok(is_error(q.cmd("guest-set-workload", {"dirty-rate": "fast"}), "GenericError",
              "expected: int"), "guest-set-workload checks types")
t.ok(is_error(q.cmd("guest-set-workload", {"speed": 1}), "GenericError", "'speed' is unexpected"),
     "guest-set-workload refuses unknown arguments")
q.cmd("guest-set-workload", {"dirty-rate": 1000})
t.ok(q.cmd("query-guest")["return"]["dirty-rate"] == 1000 and
     q.cmd("query-guest")["return"]["disk-rate"] == 0, "guest-set-workload changes one rate")

r = q.cmd("qom-list-types")
types = {x["name"] for x in r.get("return", [])}
object_types = {"secret", "authz-simple", "authz-list", "authz-listfile", "authz-pam"}
t.ok(object_types <= types, "qom-list-types lists the object types", r)
r = q.cmd("qom-list-types", {"implements": "authz-list"})
t.ok([x["name"] for x in r["return"]] == ["authz-list"], "qom-list-types implements= filters", r)
t.ok(q.cmd("qom-list-types", {"implements": "nothing"}) == {"return": []},
     "qom-list-types with an unknown base lists nothing")

# object-add / object-del for every type.
with open(os.path.join(d.dir, "rules.json"), "w") as f:
    f.write('{"policy": "deny", "rules": [{"match": "CN=admin", "policy": "allow"}]}')
objects = [
    {"qom-type": "secret", "id": "sec1", "data": "letmein"},
    {"qom-type": "secret", "id": "sec2", "data": "bGV0bWVpbg==", "format": "base64"},
    {"qom-type": "authz-simple", "id": "az1", "identity": "CN=laptop,O=Example"},
    {"qom-type": "authz-list", "id": "az2", "policy": "deny",
     "rules": [{"match": "CN=*.example.com", "policy": "allow", "format": "glob"}]},
    {"qom-type": "authz-listfile", "id": "az3", "filename": os.path.join(d.dir, "rules.json")},
    {"qom-type": "authz-pam", "id": "az4", "service": "login"},
]
for obj in objects:
    r = q.cmd("object-add", obj)
    t.ok(r == {"return": {}}, f"object-add {obj['qom-type']}", r)
    r = q.cmd("object-add", obj)
    t.ok(is_error(r, "GenericError", obj["id"]), f"object-add {obj['qom-type']}: duplicate id refused",
         r)
    r = q.cmd("object-add", {**obj, "id": obj["id"] + "x", "no-such-prop": 1})
    t.ok(is_error(r, "GenericError", "no-such-prop"),
         f"object-add {obj['qom-type']}: unknown property refused", r)
bad_objects = [
    ({"qom-type": "no-such-type", "id": "x1"}, "no-such-type"),
    ({"qom-type": "secret", "id": "x2"}, "x2"),
    ({"qom-type": "secret", "id": "x3", "data": "!!", "format": "base64"}, "x3"),
    ({"qom-type": "secret", "id": "1bad", "data": "a"}, "1bad"),
    ({"qom-type": "authz-list", "id": "x4", "policy": "maybe"}, "maybe"),
    ({"qom-type": "authz-listfile", "id": "x5", "filename": "/nonexistent/rules.json"},
     "/nonexistent/rules.json"),
    ({"qom-type": "authz-simple", "id": "x6", "identity": 42}, "x6"),
]
for obj, needle in bad_objects:
    r = q.cmd("object-add", obj)
    t.ok(is_error(r, "GenericError", needle), f"object-add refuses {obj}", r)
for obj in objects:
    r = q.cmd("object-del", {"id": obj["id"]})
    t.ok(r == {"return": {}}, f"object-del {obj['qom-type']} (not in use)", r)
r = q.cmd("object-del", {"id": "sec1"})
t.ok(is_error(r, "GenericError", "sec1"), "object-del of a deleted object: error naming it", r)
t.ok(is_error(q.cmd("object-del", {"id": "cmdline0"}), "GenericError", "cmdline0") is False,
     "-object created its object at start-up")
t.ok(is_error(q.cmd("no-such-command"), "CommandNotFound", "no-such-command"),
     "unknown command: CommandNotFound")

# --- malformed QMP input ----------------------------------------------------
corpus = [
    (b'{"execute": "query-status"', None),  # completed by the next item
    (b'}\n', "return"),
    (b'{"execute": }\n', "JSON parse error"),
    (b'{"execute" "x"}\n', "JSON parse error"),
    (b'{"execute": "query-status",}\n', "JSON parse error"),
    (b"{'execute': 'query-status', 'id': '}{'}\n", "return"),  # QEMU's single quotes
    (b'garbage\n', "JSON parse error"),
    (b'\x00\x01\x02\n', "JSON parse error"),
    (b'{"execute": "query-status", "id": "\xff\xfe"}\n', "JSON parse error"),
    (b']\n', "closing bracket"),
    (b'[]\n', "must be a JSON object"),
    (b'42\n', "must be a JSON object"),
    (b'"query-status"\n', "must be a JSON object"),
    (b'null\n', "must be a JSON object"),
    (b'{}\n', "lacks member 'execute'"),
    (b'{"execute": 42}\n', "'execute' must be a string"),
    (b'{"execute": ["stop"]}\n', "'execute' must be a string"),
    (b'{"execute": "query-status", "arguments": []}\n', "'arguments' must be an object"),
    (b'{"execute": "query-status", "arguments": "x"}\n', "'arguments' must be an object"),
    (b'{"execute": "query-status", "extra": 1}\n', "'extra' is unexpected"),
    (b'{"execute": "query-status", "arguments": {"x": 1}}\n', "'x' is unexpected"),
    (b'{"execute": "object-del"}\n', "'id' is missing"),
    (b'{"execute": "object-del", "arguments": {"id": 5}}\n', "expected: string"),
    (b'{"execute": "object-add", "arguments": {"id": "x"}}\n', "'qom-type' is missing"),
    (b'{"execute": "guest-set-workload", "arguments": {"dirty-rate": 1e400}}\n', ""),
    (b'{"execute": "guest-set-workload", "arguments": {"dirty-rate": true}}\n', "expected: int"),
    (b'{"execute": "' + b"x" * 5000 + b'"}\n', "has not been found"),
    (b'[' * 100 + b']' * 100 + b'\n', "nested too deeply"),
    (b'{"a":' * 70 + b'1' + b'}' * 70 + b'\n', "nested too deeply"),
    # A quote in a comment once hid 100000 levels from the depth check, and
    # json-glib's recursion overflowed the stack.
    (b'{"execute": /* " */ ' + b'[' * 100000 + b']' * 100000 + b' /* " */ }\n',
     "comments are not JSON"),
    (b'// "\n', "comments are not JSON"),
]
q2 = d.qmp()
all_ok = True
for data, want in corpus:
    q2.send_raw(data)
    if want is None:
        continue
    r = q2.reply()
    good = ("return" in r) if want == "return" else ("error" in r and want in r["error"]["desc"])
    t.ok(good, f"malformed input {data[:40]!r}: {want or 'an error'}", r)
    alive = q2.cmd("query-version")
    all_ok = all_ok and "return" in alive
t.ok(all_ok, "the connection keeps serving after every malformed request")

# Descriptors sent with no getfd to claim them: only the latest batch is
# kept, so a client cannot fill qiod's descriptor table.
def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


q4 = d.qmp()
before = open_fds(d.proc.pid)
with open("/dev/null") as null:
    for _ in range(200):
        q4.sock.sendmsg([b" "], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  struct.pack("10i", *([null.fileno()] * 10)))])
r = q4.cmd("query-version")
after = open_fds(d.proc.pid)
t.ok("return" in r and after - before <= 12,
     "2000 unclaimed descriptors (200 messages): qiod holds only the last 10",
     (before, after, r))
q4.close()

# A request over the 1 MiB limit: an error, then the connection is closed.
q3 = d.qmp()
try:
    q3.send_raw(b'{"execute": "query-status", "id": "' + b"a" * (1 << 21) + b'"}\n')
except (BrokenPipeError, ConnectionResetError):
    pass  # qiod stopped reading at the limit; its reply is already queued
try:
    r = q3.reply()
except (EOFError, ConnectionResetError, BrokenPipeError) as e:
    r = {"exception": str(e)}
closed = False
try:
    q3.reply()
except (EOFError, ConnectionResetError, BrokenPipeError, OSError):
    closed = True
t.ok(is_error(r, "GenericError", "larger than the limit") and closed,
     "an oversized request gets an error and the connection is closed", r)
t.ok("return" in q2.cmd("query-status"), "other clients are unaffected by the oversized one")

# --- many clients, and a client that never reads ----------------------------
results = []


def one_client():
    try:
        c = d.qmp()
        r = c.cmd("query-status")
        results.append("return" in r)
        c.close()
    except Exception as e:  # noqa: BLE001
        results.append(e)


threads = [threading.Thread(target=one_client) for _ in range(40)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.ok(results.count(True) == 40, "40 concurrent clients are all served", results)

slow = d.qmp()
slow.sock.setblocking(False)
sent = 0
flood = b'{"execute": "query-version"}' * 1000
deadline = time.time() + 30
while time.time() < deadline and sent < 64 << 20:
    try:
        sent += slow.sock.send(flood)
    except BlockingIOError:
        time.sleep(0.01)
    except OSError:
        break
# Meanwhile the daemon serves others.
t.ok("return" in q2.cmd("query-status"), "daemon serves while a client never reads")
# Reading now reaches end of file: qiod dropped the slow client.
slow.sock.setblocking(True)
slow.sock.settimeout(20)
got_eof = False
try:
    while True:
        data = slow.sock.recv(1 << 20)
        if not data:
            got_eof = True
            break
except OSError:
    got_eof = True
t.ok(got_eof, "a client that never reads is disconnected", f"sent {sent} bytes")
slow.close()

# --- the serial port and the framebuffer -------------------------------------
r = q.cmd("guest-serial-write", {"data": "echo hello qio\r"})
out = r.get("return", {}).get("output", "")
t.ok("hello qio\r\nguest> " in out, "guest-serial-write: the shell answers", r)
r = q.cmd("guest-serial-write", {"data": "digest\n"})
digest_line = r["return"]["output"].split("\r\n")[1]
t.ok(len(digest_line) == 64, "the shell's digest command prints a SHA-256", r)
r = q.cmd("guest-serial-write", {"data": "dirty 123\n"})
t.ok(q.cmd("query-guest")["return"]["dirty-rate"] == 123, "the shell's dirty command sets the rate")
ppm = os.path.join(d.dir, "screen.ppm")
r = q.cmd("screendump", {"filename": ppm})
with open(ppm, "rb") as f:
    img = f.read()
header = b"P6\n640 400\n255\n"
pixels = img[len(header):]
lit = sum(1 for i in range(0, len(pixels), 3) if pixels[i] > 0x80)
t.ok(r == {"return": {}} and img.startswith(header) and len(pixels) == 640 * 400 * 3 and lit > 500,
     "screendump writes the console as a PPM with text on it", (r, len(img), lit))
t.ok(is_error(q.cmd("screendump", {"filename": "/nonexistent-dir/s.ppm"}), "GenericError",
              "/nonexistent-dir/s.ppm"), "screendump to a bad path: a clear error")

# --- query-guest does not hold up other clients -------------------------------
big = Qiod("-m", "512M")
qa, qb = big.qmp(), big.qmp()
qa.send_raw(b'{"execute": "query-guest", "id": "a1"}{"execute": "query-status", "id": "a2"}')
time.sleep(0.05)
rb = qb.cmd("query-status")
early = qa.arrived()
ra1, ra2 = qa.reply(), qa.reply()
t.ok("return" in rb and b'"a1"' not in early and ra1.get("id") == "a1"
     and len(ra1["return"]["ram-digest"]) == 64
     and ra2.get("id") == "a2", "query-guest replies in order; another client is served meanwhile",
     (rb, early[:80]))

# The shell's digest hashes RAM on a worker too: QMP is served meanwhile,
# input typed meanwhile waits behind it, and each write gets its own output.
qa.send_raw(b'{"execute": "guest-serial-write", "arguments": {"data": "digest\\r"}, "id": "d1"}')
time.sleep(0.05)
rb = qb.cmd("query-status")
early = qa.arrived()
rw = qb.cmd("guest-serial-write", {"data": "echo waited\r"})
rd = qa.reply()
ram_digest = qb.cmd("query-guest")["return"]["ram-digest"]
t.ok("return" in rb and b'"d1"' not in early, "the shell's digest does not hold up QMP", (rb, early[:80]))
t.ok(rd.get("return", {}).get("output") == f"digest\r\n{ram_digest}\r\nguest> "
     and rw.get("return", {}).get("output") == "echo waited\r\nwaited\r\nguest> ",
     "input typed during a digest waits; each guest-serial-write gets its own output", (rd, rw))
big.stop()

# --- quit and files ---------------------------------------------------------
with open(os.path.join(d.dir, "qiod.pid")) as f:
    t.ok(int(f.read()) == d.proc.pid, "-pidfile holds the daemon's pid")
r = q.cmd("quit")
ev = q.event("SHUTDOWN")
rc = d.wait()
t.ok(r == {"return": {}} and ev and ev["data"]["reason"] == "host-qmp-quit" and rc == 0,
     "quit: reply, SHUTDOWN event, exit 0", (r, ev, rc))
t.ok(not os.path.exists(d.sock) and not os.path.exists(os.path.join(d.dir, "qiod.pid")),
     "the socket and the pidfile are removed at exit")
with open(os.path.join(d.dir, "qiod.log")) as f:
    log = f.read()
t.ok("started" in log and "shutting down (host-qmp-quit)" in log, "-D writes the log file", log)
d.stop()

# --- signals ----------------------------------------------------------------
for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
    d = Qiod("-m", "8M")
    q = d.qmp()
    d.proc.send_signal(sig)
    ev = q.event("SHUTDOWN")
    rc = d.wait()
    t.ok(ev is not None and ev["data"]["reason"] == "host-signal" and rc == 0,
         f"{name}: SHUTDOWN event and exit 0", (ev, rc))
    d.stop()

# A client that never reads does not hold up a SIGTERM shutdown.
d = Qiod("-m", "8M")
stuck = d.qmp()
stuck.sock.setblocking(False)
try:
    for _ in range(10000):
        stuck.sock.send(b'{"execute": "query-commands"}')
except BlockingIOError:
    pass
d.proc.send_signal(signal.SIGTERM)
start = time.time()
rc = d.wait(timeout=15)
t.ok(rc == 0 and time.time() - start < 10, "SIGTERM exits promptly despite a stuck client",
     (rc, time.time() - start))
stuck.close()
d.stop()

# TCP on the loopback, two monitors at once.
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
d = Qiod("-m", "8M", "-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off")
tcp = socket.create_connection(("127.0.0.1", port), timeout=10)
f = tcp.makefile("rwb")
greeting = f.readline()
f.write(b'{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":1}\n')
f.flush()
f.readline()
r = f.readline()
t.ok(b'"QMP"' in greeting and b'"running"' in r and b'"id":1' in r,
     "-qmp tcp:HOST:PORT serves QMP next to a UNIX monitor", (greeting, r))
tcp.close()
d.stop()

# wait=on holds start-up until a client connects; -mon is -qmp's twin.
d = Qiod("-m", "8M", qmp=False, wait=False)
d.proc.kill()
d.proc.wait()
d.proc.stdout.close()
d.proc.stderr.close()
d.proc = subprocess.Popen([QIOD, "-m", "8M", "-mon", f"unix:{d.sock},server=on,wait=on"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
for _ in range(200):
    if os.path.exists(d.sock):
        break
    time.sleep(0.05)
first = Qmp(d.sock)
r = first.cmd("query-status")
t.ok(r["return"]["status"] == "running", "-mon ...,wait=on: the first client is served", r)
second = Qmp(d.sock)
t.ok("return" in second.cmd("query-version"), "wait=on: later clients are accepted too")
first.cmd("quit")
t.ok(d.wait() == 0, "wait=on daemon quits cleanly")
d.stop()

# -S starts paused; -daemonize detaches once the monitor listens.
d = Qiod("-m", "8M", "-S", "-guest", "dirty-rate=1000")
q = d.qmp()
t.ok(q.cmd("query-status")["return"]["status"] == "paused", "-S starts the guest paused")
q.cmd("quit")
d.wait()
d.stop()

# 64 clients (the limit) and 100 more: the extra ones are refused, and the
# log says so once a second, not once per connection.
d = Qiod("-m", "8M")
held = []
for _ in range(64):
    c = socket.socket(socket.AF_UNIX)
    c.connect(d.sock)
    held.append(c)
refused = 0
for _ in range(100):
    c = socket.socket(socket.AF_UNIX)
    c.connect(d.sock)
    c.settimeout(5)
    try:
        refused += c.recv(1) == b""
    except ConnectionResetError:
        refused += 1
    c.close()
log = d.stderr_until("never printed", timeout=1)
for c in held:
    c.close()
lines = log.count("refusing client")
t.ok(refused == 100 and 1 <= lines <= 3,
     "100 clients past the limit of 64: all refused, with at most a log line a second",
     (refused, lines))
d.stop()

d = Qiod("-m", "8M", "-daemonize", "-pidfile", "@DIR@/d.pid", wait=False)
rc = d.wait()
pid = None
try:
    with open(os.path.join(d.dir, "d.pid")) as f:
        pid = int(f.read())
except OSError:
    pass
t.ok(rc == 0 and pid and pid != d.proc.pid, "-daemonize: parent exits 0 once ready", (rc, pid))
if pid:
    q = Qmp(d.sock)
    t.ok("return" in q.cmd("query-status"), "-daemonize: the daemon serves QMP")
    q.cmd("quit")
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        t.ok(False, "-daemonize: the daemon exits after quit")
d.stop()

t.done()
