#!/usr/bin/python3
"""Live migration between two qiod processes: every URI type (tcp:, unix:,
fd:, exec:) plaintext and with TLS (x509 mutual authentication, PSK),
multifd, zero-copy-send, convergence under a dirtying workload, -incoming
on the command line, and the guest resuming on the destination.  After
each migration the RAM and disk digests of both guests must be equal."""
import os
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migrationtest as mt  # noqa: E402
import qiodtest as qt  # noqa: E402

t = qt.Tap()
for tool in ("certtool", "psktool"):
    if not shutil.which(tool):
        print(f"1..0 # SKIP {tool} not installed (gnutls-bin)")
        sys.exit(0)

root = mt.tmpdir()
pki = mt.Pki(root)
srv = pki.creds_dir("srv", "server", "destination")
cli = pki.creds_dir("cli", "client", "source")
psk = mt.make_psk(root)


def uri_for(kind, n):
    if kind == "tcp":
        return f"tcp:127.0.0.1:{mt.free_port()}"
    if kind == "unix":
        return f"unix:{root}/mig{n}.sock"
    return kind


X509 = (["-object", f"tls-creds-x509,id=tls0,endpoint=client,dir={cli}"],
        ["-object", f"tls-creds-x509,id=tls0,endpoint=server,dir={srv},verify-peer=on"])
PSK = (["-object", f"tls-creds-psk,id=tls0,endpoint=client,dir={psk},username=migrator"],
       ["-object", f"tls-creds-psk,id=tls0,endpoint=server,dir={psk}"])


def exec_uris(n):
    """Two FIFOs carry the stream both ways between the two commands (the
    background cat reads the command's stdin through fd 3: sh gives
    background jobs /dev/null as stdin)."""
    a, b = f"{root}/fifo{n}a", f"{root}/fifo{n}b"
    os.mkfifo(a)
    os.mkfifo(b)
    return (f"exec:exec 3<&0; cat <&3 >{a} & exec cat <{b}",
            f"exec:exec 3<&0; cat <&3 >{b} & exec cat <{a}")


def migrate(name, kind, n, tls=None, caps=None, params=None, dirty=0, ram="64M",
            checks=None):
    src_args, dst_args = tls or ([], [])
    p = None
    try:
        if kind == "exec":
            src_uri, dst_uri = exec_uris(n)
        else:
            src_uri = dst_uri = uri_for(kind, n)
        p = mt.Pair(src_uri, ram=ram, dirty=dirty, src_args=src_args, dst_args=dst_args)
        prm = dict(params or {})
        if tls:
            prm["tls-creds"] = "tls0"
        p.setup(caps=caps, params=prm)
        if kind == "fd":
            a, b = socket.socketpair()
            for q in (p.s, p.d):
                q.sock.sendmsg([b'{"execute":"getfd","arguments":{"fdname":"mig"}}\n'],
                               [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 bytes(memoryview(__import__("array").array(
                                     "i", [a.fileno() if q is p.s else b.fileno()]))))])
                r = q.reply()
                assert "return" in r, r
            a.close()
            b.close()
            src_uri = dst_uri = "fd:mig"
            p.uri = src_uri
        r = p.start(incoming_uri=dst_uri)
        if not t.ok("return" in r, f"{name}: migrate accepted", r):
            return None
        info = p.wait()
        dinfo = p.wait(p.d)
        ok = t.ok(info.get("status") == "completed" and dinfo.get("status") == "completed",
                  f"{name}: completed on both ends", (info, dinfo))
        if ok:
            t.ok(p.digests(p.s) == p.digests(p.d), f"{name}: RAM and disk digests equal")
            st = p.s.cmd("query-status")["return"]["status"]
            t.ok(st == "postmigrate", f"{name}: source ends in postmigrate", st)
            if checks:
                checks(p, info, dinfo)
        return info
    finally:
        if p:
            p.close()


def tls_checks(peer_src, peer_dst, nchan):
    def check(p, info, dinfo):
        ch = info.get("channels", [])
        t.ok(len(ch) == nchan and all(c.get("tls") and c.get("protocol", "").startswith("TLS")
                                      and c.get("cipher") and c.get("peer") == peer_src
                                      for c in ch),
             f"TLS reported on all {nchan} source channels (peer {peer_src})", ch)
        dch = dinfo.get("channels", [])
        t.ok(len(dch) == nchan and all(c.get("peer") == peer_dst for c in dch),
             f"TLS reported on all {nchan} destination channels (peer {peer_dst})", dch)
    return check


n = 0
for kind in ("tcp", "unix", "fd", "exec"):
    n += 1
    migrate(f"{kind} plaintext", kind, n)
    n += 1
    prm = {} if kind == "tcp" else {"tls-hostname": "localhost"}
    migrate(f"{kind} TLS x509", kind, n, tls=X509, params=prm,
            checks=tls_checks("CN=destination", "CN=source", 1))

n += 1
migrate("tcp TLS PSK", "tcp", n, tls=PSK, checks=tls_checks("migrator", "migrator", 1))
n += 1
migrate("unix TLS PSK without tls-hostname", "unix", n, tls=PSK)

n += 1
migrate("tcp multifd 2 plaintext", "tcp", n, caps={"multifd": True},
        checks=lambda p, i, d: t.ok(len(i["channels"]) == 3, "main + 2 multifd channels",
                                    i["channels"]))
n += 1
migrate("unix multifd 3 TLS x509", "unix", n, tls=X509, caps={"multifd": True},
        params={"multifd-channels": 3, "tls-hostname": "localhost"},
        checks=tls_checks("CN=destination", "CN=source", 4))


def resumed_checks(peer_src, peer_dst, nchan, multifd_resumed):
    """Besides tls_checks: the main channel runs a full handshake; with
    x509 every multifd channel resumes its session (PSK: none does)."""
    base = tls_checks(peer_src, peer_dst, nchan)

    def check(p, info, dinfo):
        base(p, info, dinfo)
        for end, ch in (("source", info.get("channels", [])),
                        ("destination", dinfo.get("channels", []))):
            main = [c for c in ch if c.get("channel") == "migration-main"]
            multifd = [c for c in ch if c.get("channel", "").startswith("migration-multifd")]
            t.ok(len(main) == 1 and main[0].get("resumed") is False
                 and len(multifd) == nchan - 1
                 and all(c.get("resumed") is multifd_resumed for c in multifd),
                 f"{end}: main channel full handshake, multifd channels "
                 f"{'resumed' if multifd_resumed else 'full handshakes too'}", ch)
            for c in sorted(ch, key=lambda c: c.get("channel")):
                print(f"# {end} {c.get('channel')}: resumed={c.get('resumed')} "
                      f"handshake-us={c.get('handshake-us')} kx={c.get('key-exchange')}")
    return check


n += 1
migrate("tcp multifd 8 TLS x509 resumes the main channel's session", "tcp", n, tls=X509,
        caps={"multifd": True}, params={"multifd-channels": 8},
        checks=resumed_checks("CN=destination", "CN=source", 9, True))
n += 1
# TLS 1.2 (the source's priority): nothing resumes, and asking the main
# channel for a ticket must not fail the migration.
X509_TLS12 = ([X509[0][0], X509[0][1] + ",priority=NORMAL:-VERS-ALL:+VERS-TLS1.2"], X509[1])
migrate("tcp multifd 2 TLS 1.2 x509: full handshakes", "tcp", n, tls=X509_TLS12,
        caps={"multifd": True}, params={"multifd-channels": 2},
        checks=resumed_checks("CN=destination", "CN=source", 3, False))
n += 1
# More channels than the destination lets strangers shake hands at once
# (16): the source's own channels always have room.
migrate("tcp multifd 20 TLS PSK", "tcp", n, tls=PSK, caps={"multifd": True},
        params={"multifd-channels": 20},
        checks=resumed_checks("migrator", "migrator", 21, False))
n += 1
migrate("tcp zero-copy-send", "tcp", n, caps={"zero-copy-send": True})
for method in ("zlib", "zstd"):
    n += 1
    # The guest's RAM is random, so this proves the format, not a saving.
    migrate(f"tcp multifd 2 {method}", "tcp", n, caps={"multifd": True}, dirty=2000,
            params={"multifd-compression": method})
n += 1
migrate("unix multifd 2 zstd over TLS", "unix", n, tls=X509, caps={"multifd": True},
        params={"multifd-compression": "zstd", "tls-hostname": "localhost"})


def converge_checks(p, info, dinfo):
    t.ok(info.get("iterations", 0) >= 2, "dirtying guest needed more than one round",
         info.get("iterations"))
    t.ok(0 <= info.get("downtime", -1) < 5000 and info.get("setup-time", -1) >= 0
         and info.get("total-time", 0) > 0 and info["ram"]["transferred"] >= 128 << 20
         and info["ram"]["remaining"] == 0 and info.get("throughput", 0) > 0,
         "query-migrate reports downtime, setup and total time, transferred, throughput", info)
    ev = [e["data"]["status"] for e in p.s.events if e["event"] == "MIGRATION"]
    t.ok(ev[:2] == ["setup", "active"] and ev[-1] == "completed",
         "MIGRATION events setup, active ... completed", ev)


n += 1
migrate("convergence with a dirtying workload", "tcp", n, ram="128M", dirty=20000,
        params={"max-bandwidth": 256 << 20, "downtime-limit": 100}, checks=converge_checks)
n += 1
migrate("convergence with multifd TLS", "tcp", n, tls=X509, ram="128M", dirty=20000,
        caps={"multifd": True}, params={"downtime-limit": 100})

# -incoming on the command line; a destination without -S resumes the guest
# with the source's workload.
n += 1
uri = uri_for("tcp", n)
img = os.path.join(root, "shared.img")
with open(img, "wb") as f:
    f.truncate(4 << 20)
src = qt.Qiod("-m", "64M", "-guest", "dirty-rate=500,disk-rate=50,seed=3",
              "-drive", f"file={img},id=disk0")
dst = qt.Qiod("-m", "64M", "-drive", f"file={img},id=disk0", "-incoming", uri)
s, d = src.qmp(), dst.qmp()
t.ok(d.cmd("query-status")["return"]["status"] == "inmigrate", "-incoming: status inmigrate")
s.cmd("guest-serial-write", {"data": "echo before"})
s.cmd("migrate-set-capabilities", {"capabilities": [{"capability": "return-path",
                                                     "state": True}]})
r = s.cmd("migrate", {"uri": uri})
info = mt.Pair.wait(None, s)
t.ok(info.get("status") == "completed", "-incoming tcp: completed", info)
ev = d.event("RESUME", 10)
st = d.cmd("query-status")["return"]
g = d.cmd("query-guest")["return"]
t.ok(ev is not None and st["status"] == "running" and g["dirty-rate"] == 500
     and g["disk-rate"] == 50, "destination resumes with the source's workload", (st, g))
out = d.cmd("guest-serial-write", {"data": "\r"})["return"]["output"]
t.ok("echo before" in out or "before" in out,
     "the serial line typed on the source continues on the destination", out)
time.sleep(0.3)
g2 = d.cmd("query-guest")["return"]
t.ok(g2["pages-written"] > g["pages-written"], "the destination's workload runs", (g, g2))
s.close()
d.close()
src.stop()
dst.stop()

# A destination's guest before and after its migration: cont waits for the
# RAM (QEMU's autostart: a -S destination then starts once it is in), it
# cannot migrate out before, and can migrate on after.
p = mt.Pair(uri_for("unix", 90), dirty=200)
p.setup()
r_mig = p.d.cmd("migrate", {"uri": uri_for("unix", 91)})
r_cont = p.d.cmd("cont")
st = p.d.cmd("query-status")["return"]
t.ok("waiting for an incoming migration" in r_mig.get("error", {}).get("desc", "")
     and r_cont == {"return": {}} and st == {"status": "inmigrate", "running": False,
                                             "singlestep": False},
     "destination before its migration: migrate refused, cont waits for the RAM", (r_mig, st))
p.start()
info = p.wait()
ev = p.d.event("RESUME", 10)
st = p.d.cmd("query-status")["return"]
t.ok(info.get("status") == "completed" and ev is not None and st["status"] == "running",
     "cont before the migration (destination started with -S): it runs once it came in",
     (info, st))
third = qt.Qiod("-m", "64M", "-S", "-incoming", "defer")
q3 = third.qmp()
onward = uri_for("unix", 92)
q3.cmd("migrate-incoming", {"uri": onward})
r = p.d.cmd("migrate", {"uri": onward})
info = mt.Pair.wait(None, p.d)
p.d.cmd("stop")
t.ok(r == {"return": {}} and info.get("status") == "completed"
     and q3.cmd("query-guest")["return"]["ram-digest"]
     == p.d.cmd("query-guest")["return"]["ram-digest"],
     "a guest that came in migrates on to a third qiod, RAM intact", (r, info))
q3.close()
third.stop()
p.close()

# cont then stop before the migration: the destination (started with -S)
# stays paused after it, as QEMU's stop in inmigrate does.
p = mt.Pair(uri_for("unix", 94))
p.setup()
p.d.cmd("cont")
p.d.cmd("stop")
p.start()
info = p.wait()
time.sleep(0.5)
st = p.d.cmd("query-status")["return"]
t.ok(info.get("status") == "completed" and st["status"] == "paused",
     "cont, then stop, before the migration: the destination stays paused", (info, st))
p.close()

# exec: (and fd:) have no listener: the destination may wait for its
# source longer than a listener's 10 s hello deadline.
src_uri, dst_uri = exec_uris(95)
p = mt.Pair(src_uri)
p.setup()
r = p.d.cmd("migrate-incoming", {"uri": dst_uri})
time.sleep(11)
r2 = p.s.cmd("migrate", {"uri": src_uri})
info = p.wait()
t.ok(r == {"return": {}} and r2 == {"return": {}} and info.get("status") == "completed",
     "exec: a source that starts 11 s after migrate-incoming still migrates", info)
p.close()

# Parameters of a destination already listening (-incoming URI): the
# refusal says how to set them.
listening = qt.Qiod("-m", "64M", "-incoming", uri_for("tcp", 93))
q = listening.qmp()
r = q.cmd("migrate-set-parameters", {"max-bandwidth": 1})
t.ok("-incoming defer" in r.get("error", {}).get("desc", ""),
     "migrate-set-parameters on a listening destination: use -incoming defer", r)
q.close()
listening.stop()

shutil.rmtree(root, ignore_errors=True)
t.done()
