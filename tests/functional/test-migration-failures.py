#!/usr/bin/python3
"""Migrations that must fail, and how: refused TLS peers (wrong CA, wrong
host name, authz deny, expired certificate) with the cause named on both
ends; cancel and a killed destination mid-way; stream version and
multifd channel-count mismatches; malformed streams; bad URIs and
parameters.  After every failure the source runs on with its digests
unchanged, and a failed destination exits 1 with a message."""
import json
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migrationtest as mt  # noqa: E402
import qiodtest as qt  # noqa: E402

t = qt.Tap()
if not shutil.which("certtool"):
    print("1..0 # SKIP certtool not installed (gnutls-bin)")
    sys.exit(0)

root = mt.tmpdir()
pki = mt.Pki(root)
srv = pki.creds_dir("srv", "server", "destination")
cli = pki.creds_dir("cli", "client", "source")
evil = pki.creds_dir("evil", "client", "source", ca="evil", trust="evil")
expired = pki.creds_dir("expired", "client", "source", expired=True)
MAGIC = b"QIOMIGR\n"


def next_uri():
    return f"tcp:127.0.0.1:{mt.free_port()}"


def source_intact(p, before, name):
    """The source is running again and its RAM is what it was."""
    st = p.s.cmd("query-status")["return"]["status"]
    t.ok(st == "running", f"{name}: source still running", st)
    t.ok(p.digests(p.s) == before, f"{name}: source digests unchanged")


def dst_waits(p, name, expect):
    """A peer that failed the TLS handshake is dropped, not the migration:
    the destination logs why and keeps waiting for a source."""
    log = p.dst.stderr_until("still waiting for the source")
    alive = p.dst.proc.poll() is None
    st = p.d.cmd("query-migrate")["return"] if alive else {"exit status": p.dst.proc.poll()}
    t.ok(expect in log and "dropping connection from" in log and alive
         and st.get("status") == "setup",
         f"{name}: the destination drops that peer naming the cause, and keeps waiting",
         (log, st))


def failing(name, src_obj, dst_obj, src_expect, dst_expect, src_params=None,
            dst_params=None):
    p = mt.Pair(next_uri(), src_args=["-object", src_obj],
                dst_args=["-object", dst_obj,
                          "-object", "authz-simple,id=deny,identity=CN=someone-else"])
    try:
        p.setup(params={"tls-creds": "tls0"}, src_params=src_params, dst_params=dst_params)
        before = p.digests(p.s)
        r = p.start()
        info = p.wait()
        err = info.get("error-desc", "")
        t.ok(info.get("status") == "failed" and src_expect in err,
             f"{name}: source fails naming the cause", (r, info))
        dst_waits(p, name, dst_expect)
        source_intact(p, before, name)
    finally:
        p.close()


X_CLI = f"tls-creds-x509,id=tls0,endpoint=client,dir={cli}"
X_SRV = f"tls-creds-x509,id=tls0,endpoint=server,dir={srv},verify-peer=on"
failing("wrong CA", f"tls-creds-x509,id=tls0,endpoint=client,dir={evil}", X_SRV,
        "signed by unknown CA", "CA is unknown")
failing("wrong host name", X_CLI, X_SRV, "does not match host name 'wrong.example'",
        "Certificate is bad", src_params={"tls-hostname": "wrong.example"})
failing("authz deny", X_CLI, X_SRV, "Access was denied", "denies access to 'CN=source'",
        dst_params={"tls-authz": "deny"})
failing("expired certificate",
        f"tls-creds-x509,id=tls0,endpoint=client,dir={expired},sanity-check=off", X_SRV,
        "Certificate is bad", "expired on 2020-02-01")


# A resumed session is authorized like a full one.  The destination's
# tls-authz (a watched authz-listfile) allows the source while the main
# channel shakes hands, then no longer does while a proxy holds the
# multifd connections back; those would resume the main channel's
# session, and are refused on the source's DN all the same.
name = "authz deny on resumed multifd channels"
rules = os.path.join(root, "rules.json")


def write_rules(policy):
    with open(rules + ".tmp", "w") as f:
        json.dump({"policy": "deny", "rules": [{"match": "CN=source", "policy": policy}]}, f)
    os.rename(rules + ".tmp", rules)


write_rules("allow")
proxy_port, dst_port = mt.free_port(), mt.free_port()
gate = threading.Event()
lsock = None
p = mt.Pair(f"tcp:127.0.0.1:{proxy_port}", src_args=["-object", X_CLI],
            dst_args=["-object", X_SRV, "-object", f"authz-listfile,id=az,filename={rules}"])
try:
    p.setup(caps={"multifd": True}, params={"tls-creds": "tls0"},
            dst_params={"tls-authz": "az"})
    before = p.digests(p.s)
    p.d.cmd("migrate-incoming", {"uri": f"tcp:127.0.0.1:{dst_port}"})
    lsock = mt.proxy(proxy_port, dst_port, gate=gate)
    p.s.cmd("migrate", {"uri": f"tcp:127.0.0.1:{proxy_port}"})
    main = []
    deadline = time.time() + 20
    while not main and time.time() < deadline:
        main = [c for c in p.d.cmd("query-migrate")["return"].get("channels", [])
                if c.get("channel") == "migration-main"]
        time.sleep(0.05)
    t.ok(main and main[0].get("peer") == "CN=source" and main[0].get("resumed") is False,
         f"{name}: the main channel is admitted after a full handshake", main)
    write_rules("deny")
    time.sleep(2)  # for the file monitor to reload the rules
    gate.set()
    info = p.wait()
    t.ok(info.get("status") == "failed", f"{name}: the source fails", info)
    log = p.dst.stderr_until("denies access to 'CN=source'")
    t.ok("dropping connection from" in log and "denies access to 'CN=source'" in log,
         f"{name}: the destination refuses the multifd channels on the source's DN", log)
    rc, out = p.dst_exit()
    t.ok(rc == 1 and "Incoming migration: " in log + out,
         f"{name}: the destination does not complete, it exits 1", (rc, out))
    source_intact(p, before, name)
finally:
    gate.set()
    if lsock:
        lsock.close()
    p.close()


def slow_pair(name, caps=None):
    """A migration that takes seconds: 128 MiB at 32 MiB/s."""
    p = mt.Pair(next_uri(), ram="128M")
    p.setup(caps=caps, params={"max-bandwidth": 32 << 20})
    before = p.digests(p.s)
    r = p.start()
    t.ok("return" in r, f"{name}: migrate accepted", r)
    deadline = time.time() + 5
    while time.time() < deadline:
        info = p.s.cmd("query-migrate")["return"]
        if info.get("status") == "active" and info["ram"]["transferred"] > 8 << 20:
            break
        time.sleep(0.05)
    return p, before


p, before = slow_pair("cancel")
try:
    p.s.cmd("migrate_cancel")
    info = p.wait()
    t.ok(info.get("status") == "cancelled", "cancel: source reports cancelled", info)
    rc, out = p.dst_exit()
    t.ok(rc == 1 and "Incoming migration" in out, "cancel: destination exits 1 with a message",
         (rc, out))
    source_intact(p, before, "cancel")
    # A cancelled source can migrate again.
    p2 = mt.Pair(next_uri())
    p2.close()
finally:
    p.close()

for multifd in (False, True):
    label = "destination killed" + (" (multifd)" if multifd else "")
    p, before = slow_pair(label, caps={"multifd": multifd})
    try:
        p.dst.proc.send_signal(signal.SIGKILL)
        info = p.wait()
        t.ok(info.get("status") == "failed" and info.get("error-desc"),
             f"{label}: source fails and says why", info)
        source_intact(p, before, label)
    finally:
        p.close()

# A client that issues migrate again as soon as query-migrate says the last
# one failed (here pipelined, so the two land in one read): qiod must not
# join the finished migration's thread while that thread waits for the
# main loop to report its final status.
q = qt.Qiod("-m", "16M")
m = q.qmp()
try:
    uri = f"tcp:127.0.0.1:{mt.free_port()}".encode()  # nobody listens: each attempt fails
    pair = b'{"execute":"query-migrate"}\n{"execute":"migrate","arguments":{"uri":"' + uri + \
        b'"}}\n'
    m.sock.settimeout(10)
    answered = 0
    failed_seen = 0
    deadline = time.time() + 3
    try:
        while time.time() < deadline:
            m.send_raw(pair)
            status = m.reply()["return"].get("status")
            m.reply()
            answered += 1
            failed_seen += status == "failed"
    except socket.timeout:
        pass
    t.ok(time.time() >= deadline and failed_seen > 0,
         "query-migrate and migrate pipelined after failed migrations: every pair answered",
         (answered, failed_seen))
    m.close()
finally:
    q.stop()


# A network cut mid-way: a proxy between the two drops the connection.
proxy_port, dst_port = mt.free_port(), mt.free_port()
p = mt.Pair(f"tcp:127.0.0.1:{proxy_port}", ram="128M")
lsock = None
try:
    dst_uri = f"tcp:127.0.0.1:{dst_port}"
    p.setup(params={"max-bandwidth": 64 << 20})
    before = p.digests(p.s)
    p.d.cmd("migrate-incoming", {"uri": dst_uri})
    lsock = mt.proxy(proxy_port, dst_port, cut_after=24 << 20)
    p.s.cmd("migrate", {"uri": f"tcp:127.0.0.1:{proxy_port}"})
    info = p.wait()
    t.ok(info.get("status") == "failed" and info.get("error-desc"),
         "network cut: source fails and says why", info)
    rc, out = p.dst_exit()
    t.ok(rc == 1 and "Incoming migration" in out, "network cut: destination exits 1", (rc, out))
    source_intact(p, before, "network cut")
finally:
    if lsock:
        lsock.close()
    p.close()

# Multifd channel count mismatch: 2 on the source, 3 on the destination.
p = mt.Pair(next_uri())
try:
    p.setup(caps={"multifd": True}, dst_params={"multifd-channels": 3})
    before = p.digests(p.s)
    p.start()
    info = p.wait()
    want = "the source uses 2 multifd channel(s) but the destination expects 3"
    t.ok(info.get("status") == "failed" and want in info.get("error-desc", ""),
         "channel count mismatch: source names both counts", info)
    rc, out = p.dst_exit()
    t.ok(rc == 1 and want in out, "channel count mismatch: destination exits 1 naming both",
         (rc, out))
    source_intact(p, before, "channel count mismatch")
finally:
    p.close()

# Compression on one end only.
p = mt.Pair(next_uri())
try:
    p.setup(caps={"multifd": True}, src_params={"multifd-compression": "zstd"})
    p.start()
    info = p.wait()
    t.ok(info.get("status") == "failed"
         and "compresses with 'zstd' but the destination expects 'none'"
         in info.get("error-desc", ""), "compression mismatch: refused naming both", info)
finally:
    p.close()

# multifd on one end only.
p = mt.Pair(next_uri())
try:
    p.setup(caps={"multifd": True}, dst_caps={"multifd": False})
    p.start()
    info = p.wait()
    t.ok(info.get("status") == "failed" and "expects 0" in info.get("error-desc", ""),
         "multifd on the source only: refused", info)
finally:
    p.close()


def fake_source(uri_port, data, name, expect):
    """Sends @data to a destination as if it were a source."""
    dst = qt.Qiod("-m", "64M", "-incoming", f"tcp:127.0.0.1:{uri_port}")
    try:
        # The monitor listens before the incoming migration does.
        deadline = time.time() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", uri_port), timeout=10)
                break
            except ConnectionRefusedError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        try:
            answer = s.recv(4096)
        except OSError:
            answer = b""
        rc = dst.wait(20)
        err = dst.proc.stderr.read().decode() if rc is not None else ""
        t.ok(rc == 1 and expect in err, f"{name}: destination exits 1 with a clear error",
             (rc, err, answer))
        s.close()
        return answer
    finally:
        dst.stop()


def hello(version=1, kind=0, channels=0, ram=64 << 20, index=0):
    return MAGIC + struct.pack(">IIIIII", version, kind, index, channels, 4096, 0) + \
        struct.pack(">Q", ram)


ans = fake_source(mt.free_port(), hello(version=2), "stream version 2 from the source",
                  "uses stream version 2 but this qiod reads version 1")
t.ok(b"version 2" in ans, "stream version 2: the destination tells the source why", ans)
fake_source(mt.free_port(), b"GET / HTTP/1.1\r\n\r\n" + b"\0" * 40, "not a migration stream",
            "bad magic")
fake_source(mt.free_port(), hello(ram=32 << 20), "RAM size mismatch",
            "start the destination with the same -m")
fake_source(mt.free_port(), hello() + struct.pack(">IIQ", 1, 1, 0) + struct.pack(">Q", 1 << 40),
            "page beyond the guest's RAM", "beyond the guest's")
fake_source(mt.free_port(), hello() + struct.pack(">IIQ", 1, 100000, 0), "oversized RAM record",
            "at most 128 are allowed")
fake_source(mt.free_port(), hello() + struct.pack(">IIQ", 99, 0, 0), "unknown record type",
            "unexpected record (type 99")
fake_source(mt.free_port(), hello() + struct.pack(">IIQ", 3, 5, 0) + b"nope}" + struct.pack(">IIQ", 4, 0, 0),
            "malformed device state", "device state is malformed")
fake_source(mt.free_port(), hello()[:20], "truncated hello", "Incoming migration")

# A connection that sends nothing (a port probe) does not hold the main
# role for good: 10 s on, the destination gives up, saying why.
port = mt.free_port()
dst = qt.Qiod("-m", "64M", "-incoming", f"tcp:127.0.0.1:{port}")
probe = None
try:
    deadline = time.time() + 10
    while probe is None:
        try:
            probe = socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    since = time.time()
    rc = dst.wait(30)
    took = time.time() - since
    err = dst.proc.stderr.read().decode() if rc is not None else ""
    t.ok(rc == 1 and 9 < took < 25 and "sent no migration hello within 10 seconds" in err,
         "a silent first connection: the destination gives up after 10 s, saying why",
         (rc, took, err[-300:]))
finally:
    if probe:
        probe.close()
    dst.stop()
fake_source(mt.free_port(), hello() + struct.pack(">IIQ", 3, 2 << 20, 0), "2 MiB of device state",
            "sent 2097152 bytes of device state, more than the 1048576")

def multifd_source(name, steps, expect):
    """A fake source with two multifd channels: @steps are (channel, bytes)
    sent in order (channel 0 is the main one), a moment apart.  The
    destination must fail with @expect, not wait for good."""
    dst = qt.Qiod("-m", "64M", "-incoming", "defer")
    q = dst.qmp()
    socks = []
    try:
        q.cmd("migrate-set-capabilities",
              {"capabilities": [{"capability": "multifd", "state": True}]})
        q.cmd("migrate-set-parameters", {"multifd-channels": 2})
        port = mt.free_port()
        q.cmd("migrate-incoming", {"uri": f"tcp:127.0.0.1:{port}"})
        main = socket.create_connection(("127.0.0.1", port), timeout=10)
        main.sendall(hello(channels=2))
        main.recv(16)
        socks = [main]
        for i in range(2):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(hello(kind=1, channels=2, index=i))
            socks.append(c)
        for ch, data in steps:
            time.sleep(0.3)
            socks[ch].sendall(data)
        rc = dst.wait(20)
        err = dst.proc.stderr.read().decode() if rc is not None else ""
        t.ok(rc == 1 and expect in err, f"{name}: destination exits 1 with a clear error",
             (rc, err[-400:]))
    finally:
        for c in socks:
            c.close()
        q.close()
        dst.stop()


def rec(rtype, count=0, arg=0):
    return struct.pack(">IIQ", rtype, count, arg)


multifd_source("multifd channel ending while another waits for its round",
               [(2, rec(2, arg=1)), (1, rec(4))], "ended while other channels wait")
multifd_source("multifd round after another channel ended",
               [(1, rec(4)), (2, rec(2, arg=1))], "after another channel had ended")
multifd_source("multifd rounds out of order", [(1, rec(2, arg=2))],
               "ended round 2 where round 1 was due")

# A destination speaking another stream version answers with it.
lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
fake_path = os.path.join(root, "fake-dst.sock")
lsock.bind(fake_path)
lsock.listen(1)
src = qt.Qiod("-m", "64M")
s = src.qmp()
try:
    before = s.cmd("query-guest")["return"]["ram-digest"]
    s.cmd("migrate", {"uri": f"unix:{fake_path}"})
    conn, _ = lsock.accept()
    conn.settimeout(10)
    got = b""
    while len(got) < 40:
        chunk = conn.recv(40 - len(got))
        if not chunk:
            break
        got += chunk
    t.ok(got.startswith(MAGIC) and struct.unpack(">I", got[8:12])[0] == 1,
         "the source starts with the magic and stream version 1", got)
    conn.sendall(MAGIC + struct.pack(">II", 2, 0))
    info = mt.Pair.wait(None, s)
    t.ok(info.get("status") == "failed"
         and "speaks migration stream version 2, this qiod version 1" in info.get("error-desc", ""),
         "destination with stream version 2: the source names both versions", info)
    t.ok(s.cmd("query-status")["return"]["status"] == "running"
         and s.cmd("query-guest")["return"]["ram-digest"] == before,
         "version mismatch: source running, digest unchanged")
    conn.close()

    # Bad URIs and parameters are refused before anything starts.
    bad = [
        ({"uri": "ftp:host"}, "is not supported"),
        ({"uri": "tcp:127.0.0.1"}, "tcp:127.0.0.1"),
        ({"uri": "exec:"}, "has no command"),
        ({"uri": "fd:nosuchfd"}, None),
    ]
    for args, expect in bad:
        r = s.cmd("migrate", args)
        if "error" in r:
            ok = expect is None or expect in r["error"]["desc"]
        else:
            info = mt.Pair.wait(None, s)
            ok = info.get("status") == "failed" and "nosuchfd" in info.get("error-desc", "")
        t.ok(ok, f"migrate {args['uri']!r} refused with a clear error", r)
    r = s.cmd("migrate-set-parameters", {"multifd-compression": "lz4"})
    t.ok("error" in r and "none, zlib or zstd" in r["error"]["desc"],
         "multifd-compression lz4 refused", r)
    r = s.cmd("migrate-set-parameters", {"multifd-channels": 0})
    t.ok("error" in r, "multifd-channels 0 refused", r)
    r = s.cmd("migrate-set-parameters", {"downtime-limit": -1})
    t.ok("error" in r, "negative downtime-limit refused", r)
    r = s.cmd("migrate-set-parameters", {"tls-creds": 5})
    t.ok("error" in r and "expected: string" in r["error"]["desc"], "tls-creds 5 refused", r)
    r = s.cmd("migrate-set-capabilities",
              {"capabilities": [{"capability": "postcopy-ram", "state": True}]})
    t.ok("error" in r and "postcopy-ram" in r["error"]["desc"], "unknown capability refused", r)
    r = s.cmd("migrate-set-capabilities", {"capabilities": [{"capability": "multifd"}]})
    t.ok("error" in r, "capability without state refused", r)
    s.cmd("migrate-set-parameters", {"tls-creds": "nosuch"})
    r = s.cmd("migrate", {"uri": "tcp:127.0.0.1:1"})
    t.ok("error" in r and "nosuch" in r["error"]["desc"], "unknown tls-creds refused", r)
    s.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "srvcreds", "dir": srv,
                         "endpoint": "server"})
    s.cmd("migrate-set-parameters", {"tls-creds": "srvcreds"})
    r = s.cmd("migrate", {"uri": "tcp:127.0.0.1:1"})
    t.ok("error" in r and "endpoint=client" in r["error"]["desc"],
         "server credentials on the source refused", r)
    s.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "clicreds", "dir": cli,
                         "endpoint": "client"})
    s.cmd("migrate-set-parameters", {"tls-creds": "clicreds"})
    r = s.cmd("migrate", {"uri": f"unix:{fake_path}"})
    t.ok("error" in r and "tls-hostname" in r["error"]["desc"],
         "x509 over unix: without tls-hostname refused", r)
    r = s.cmd("migrate-incoming", {"uri": "tcp:127.0.0.1:1"})
    t.ok("error" in r and "-incoming defer" in r["error"]["desc"],
         "migrate-incoming without -incoming defer refused", r)
    t.ok(s.cmd("query-status")["return"]["status"] == "running", "source still running")
finally:
    s.close()
    src.stop()
    lsock.close()

# With tls-creds set, the first bytes on the wire are a TLS handshake and
# the stream's magic never appears in clear; a plaintext source is refused.
tls_path = os.path.join(root, "tls-sniff.sock")
lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lsock.bind(tls_path)
lsock.listen(1)
src = qt.Qiod("-m", "64M", "-object", X_CLI)
s = src.qmp()
try:
    s.cmd("migrate-set-parameters", {"tls-creds": "tls0", "tls-hostname": "localhost"})
    s.cmd("migrate", {"uri": f"unix:{tls_path}"})
    conn, _ = lsock.accept()
    conn.settimeout(5)
    got = conn.recv(65536)
    t.ok(got[:1] == b"\x16" and MAGIC not in got,
         "tls-creds set: the source starts with a TLS handshake record, no plaintext", got[:16])
    conn.close()
    info = mt.Pair.wait(None, s)
    t.ok(info.get("status") == "failed", "TLS source against a plaintext peer fails", info)
finally:
    s.close()
    src.stop()
    lsock.close()
# Peers without credentials cannot end a TLS destination's wait: a
# plaintext source; silent connections (beside the source's own channels,
# 1 + multifd-channels, 16 strangers may shake hands at once; beyond that
# the oldest handshake gives way; a handshake gets 10 s); and a real source
# migrates while strangers hold handshakes open, after which those are cut.
p = mt.Pair(next_uri(), dst_args=["-object", X_SRV])
good = None
silent = []


def cut(c, timeout):
    """True if the destination closed @c within @timeout seconds."""
    c.settimeout(timeout)
    try:
        return c.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def open_silent(port, n):
    conns = []
    for _ in range(n):
        conns.append((socket.create_connection(("127.0.0.1", port), timeout=5), time.time()))
        time.sleep(0.05)
    return conns


try:
    p.setup(dst_params={"tls-creds": "tls0"})
    room = 1 + p.d.cmd("query-migrate-parameters")["return"]["multifd-channels"] + 16
    p.start()
    info = p.wait()
    t.ok(info.get("status") == "failed", "plaintext source against a TLS destination fails", info)
    dst_waits(p, "plaintext source against a TLS destination", "TLS")
    port = int(p.uri.rsplit(":", 1)[1])
    silent = open_silent(port, room + 5)
    closed = [i for i, (c, _) in enumerate(silent) if cut(c, 0.2)]
    log = p.dst.stderr_until("was the oldest", timeout=5)
    t.ok(closed == list(range(5)) and "was the oldest when more peers came" in log,
         f"{room + 5} silent connections: the 5 oldest give way to the newest {room}",
         (closed, log[-300:]))
    last, since = silent[-1]
    ok = cut(last, 40)
    took = time.time() - since
    others = [i for i, (c, _) in enumerate(silent[5:-1], 5) if not cut(c, 0.1)]
    log = p.dst.stderr_until("no TLS handshake within 10 seconds", timeout=5)
    t.ok(ok and 9 < took < 30 and not others and "no TLS handshake within 10 seconds" in log,
         "silent connections are cut 10 s into their handshake", (took, others, log[-300:]))
    for c, _ in silent:
        c.close()

    silent = open_silent(port, 20)
    good = qt.Qiod("-m", "64M", "-guest", "dirty-rate=0,seed=5", "-object", X_CLI)
    g = good.qmp()
    g.cmd("migrate-set-capabilities", {"capabilities": [
        {"capability": "events", "state": True}, {"capability": "return-path", "state": True}]})
    g.cmd("migrate-set-parameters", {"tls-creds": "tls0"})
    before = g.cmd("query-guest")["return"]["ram-digest"]
    r = g.cmd("migrate", {"uri": p.uri})
    info = p.wait(g)
    t.ok(r == {"return": {}} and info.get("status") == "completed",
         "a source with credentials migrates while 20 strangers hold handshakes open", (r, info))
    dinfo = p.wait(p.d)
    t.ok(dinfo.get("status") == "completed"
         and p.d.cmd("query-guest")["return"]["ram-digest"] == before,
         "the destination completes with the source's RAM", dinfo)
    still = [i for i, (c, _) in enumerate(silent) if not cut(c, 3)]
    t.ok(not still, "once it completes, the strangers' handshakes are cut", still)
    g.close()
    p.d.cmd("quit")
    t.ok(p.dst.wait(10) == 0, "and the destination quits at once, status 0")
finally:
    for c, _ in silent:
        c.close()
    if good:
        good.stop()
    p.close()

# A flood of connections without credentials from another host while the
# source's handshakes are slow (a WAN, played by a proxy delaying every
# chunk 40 ms): handshakes give way by host, so the flood pushes out its
# own and the migration (multifd, TLS) completes.
def flood(port, stop):
    """Plain TCP connections from 127.0.0.2, about 300 a second, each held 1 s."""
    held = []
    while not stop.is_set():
        try:
            held.append((socket.create_connection(("127.0.0.1", port), timeout=2,
                                                  source_address=("127.0.0.2", 0)), time.time()))
        except OSError:
            pass
        while held and held[0][1] < time.time() - 1:
            held.pop(0)[0].close()
        time.sleep(1 / 300)
    for c, _ in held:
        c.close()


dst_port, proxy_port = mt.free_port(), mt.free_port()
p = mt.Pair(f"tcp:127.0.0.1:{dst_port}", src_args=["-object", X_CLI],
            dst_args=["-object", X_SRV])
stop = threading.Event()
flooder = threading.Thread(target=flood, args=(dst_port, stop), daemon=True)
pl = None
try:
    p.setup(caps={"multifd": True}, params={"tls-creds": "tls0"})
    pl = mt.proxy(proxy_port, dst_port, delay=0.04)
    r = p.d.cmd("migrate-incoming", {"uri": p.uri})
    flooder.start()
    time.sleep(0.5)
    r2 = p.s.cmd("migrate", {"uri": f"tcp:127.0.0.1:{proxy_port}"})
    info = p.wait(timeout=90)
    t.ok(r == {"return": {}} and r2 == {"return": {}} and info.get("status") == "completed",
         "a source with slow handshakes migrates (multifd, TLS) through a flood of "
         "connections without credentials from another host", info)
finally:
    stop.set()
    if flooder.is_alive():
        flooder.join()
    if pl:
        pl.close()
    p.close()

# migrate_cancel while the source is still connecting (a destination whose
# listen backlog is full: connect() blocks) ends it at once.
full_path = os.path.join(root, "full.sock")
full = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
full.bind(full_path)
full.listen(0)
fillers = []
for _ in range(3):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(full_path)
    except OSError:
        pass
    fillers.append(c)
src = qt.Qiod("-m", "64M")
s = src.qmp()
try:
    s.cmd("migrate", {"uri": f"unix:{full_path}"})
    time.sleep(0.5)
    connecting = s.cmd("query-migrate")["return"].get("status")
    s.cmd("migrate_cancel")
    info = mt.Pair.wait(None, s, timeout=10)
    t.ok(connecting == "setup" and info.get("status") == "cancelled"
         and s.cmd("query-status")["return"]["status"] == "running",
         "migrate_cancel while connecting to a destination that does not accept: cancelled at "
         "once, the guest runs", (connecting, info))
finally:
    s.close()
    src.stop()
    for c in fillers + [full]:
        c.close()

rc, _, err = qt.run_qiod("-incoming", "tcp:127.0.0.1")
t.ok(rc == 1 and "tcp:127.0.0.1" in err, "-incoming with a bad URI: exit 1", err)

shutil.rmtree(root, ignore_errors=True)
t.done()
