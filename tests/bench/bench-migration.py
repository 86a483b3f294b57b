#!/usr/bin/python3
"""Migration benchmark: qiod against QEMU and against the physical
baselines, all in one run over loopback.

Cases (guest RAM QIO_BENCH_MIG_SIZE, default 2G, random contents):
  plain 1 channel, TLS 1 channel, plain multifd 2, TLS multifd 2
for qiod with the guest's workload stopped, for QEMU (Debian's
qemu-system-x86_64, a paused guest whose RAM is a /dev/shm file prefilled
from /dev/urandom, command lines as in BASELINES.md), and for qiod again
with the guest dirtying QIO_BENCH_MIG_DIRTY pages/s (default 25000).  The
destination's memory is pre-touched in both: qiod fills its RAM at start,
QEMU's destination file is written with zeros before the run.  Baselines:
a raw TCP stream (128 KiB write/read) and the bare GnuTLS stream (16 KiB
records) from tests/bench/bare-gnutls-stream.cc, same volume.

Every case runs QIO_BENCH_ROUNDS times (default 3), each round beside its
baselines (qio and the physical baseline take turns, the first of each pair
alternating; QEMU and the dirtying run follow), because the machines are
shared and a neighbour can slow any single run.

Prints `bench name=... value=... unit=... baseline=... ratio=... paired=yes`
lines: throughput (transferred bytes / total time), total time, downtime,
and CPU seconds per GiB of both processes, with qio/QEMU and qio/baseline
ratios; value and baseline are medians over the rounds, the ratio is the
median of the per-round ratios.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("QIO_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
QIOD = os.path.join(BUILD, "tools", "qiod")
QIO_PKI = os.path.join(BUILD, "tools", "qio-pki")
BASELINE = os.path.join(BUILD, "tests", "bench", "bench-stream-baseline")
QEMU = shutil.which("qemu-system-x86_64")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from qmplite import Qmp  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "functional"))
from qiodtest import free_port  # noqa: E402


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


SIZE = parse_size(os.environ.get("QIO_BENCH_MIG_SIZE", "2G"))
DIRTY = int(os.environ.get("QIO_BENCH_MIG_DIRTY", "25000"))
ROUNDS = max(1, int(os.environ.get("QIO_BENCH_ROUNDS", "3")))
MIB = SIZE >> 20
GIB = 1 << 30
TCK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def make_pki(tmp):
    """A CA, a server and a client certificate (for localhost and
    127.0.0.1), by qio-pki; the directories of the last two."""
    subprocess.run([QIO_PKI, "init", f"{tmp}/pki", "--hostname", "localhost", "--ip", "127.0.0.1",
                    "--days", "1"], check=True, capture_output=True)
    return {role: f"{tmp}/pki/{role}" for role in ("server", "client")}


def run_pair(src_cmd, dst_cmd, src_sock, dst_sock, caps, params_both, params_src, uri):
    """Starts both, migrates, returns the source's final query-migrate and the
    CPU seconds both processes used during the migration."""
    dst = subprocess.Popen(dst_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    src = subprocess.Popen(src_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        d, s = Qmp(dst_sock, 120, 120), Qmp(src_sock, 120, 120)
        for q in (d, s):
            if caps:
                q.cmd("migrate-set-capabilities",
                      capabilities=[{"capability": c, "state": True} for c in caps])
            if params_both:
                q.cmd("migrate-set-parameters", **params_both)
        s.cmd("migrate-set-parameters", **params_src)
        d.cmd("migrate-incoming", uri=uri)
        time.sleep(0.3)
        c0 = cpu(src.pid) + cpu(dst.pid)
        s.cmd("migrate", uri=uri)
        while True:
            info = s.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.02)
        c1 = cpu(src.pid) + cpu(dst.pid)
        if info["status"] != "completed":
            raise RuntimeError(f"migration {info['status']}: {info.get('error-desc')}")
        # QEMU 7.2 reports "completed" a moment before it fills in the times.
        for _ in range(100):
            if info.get("total-time"):
                break
            time.sleep(0.02)
            info = s.cmd("query-migrate")
        return info, c1 - c0
    finally:
        for p in (src, dst):
            p.kill()
            p.wait()


def summarize(info, cpu_s):
    total = info["total-time"] / 1000
    transferred = info["ram"]["transferred"]
    return {"gibps": transferred / total / GIB, "total": total,
            "downtime": info.get("downtime", 0), "cpu": cpu_s / (transferred / GIB)}


def qio_case(tmp, pki, tls, multifd, dirty):
    port = free_port()
    uri = f"tcp:127.0.0.1:{port}"
    common = [QIOD, "-m", f"{MIB}M"]
    src = common + ["-guest", f"dirty-rate={dirty},seed=7", "-qmp", f"unix:{tmp}/qs.sock"]
    if not dirty:
        src.append("-S")
    dst = common + ["-S", "-qmp", f"unix:{tmp}/qd.sock", "-incoming", "defer"]
    both = {}
    if tls:
        src += ["-object", f"tls-creds-x509,id=tls0,endpoint=client,dir={pki['client']}"]
        dst += ["-object",
                f"tls-creds-x509,id=tls0,endpoint=server,dir={pki['server']},verify-peer=on"]
        both["tls-creds"] = "tls0"
    caps = ["return-path"]
    if multifd:
        caps.append("multifd")
        both["multifd-channels"] = 2
    for f in ("qs.sock", "qd.sock"):
        if os.path.exists(f"{tmp}/{f}"):
            os.unlink(f"{tmp}/{f}")
    info, c = run_pair(src, dst, f"{tmp}/qs.sock", f"{tmp}/qd.sock", caps, both,
                       {"max-bandwidth": 0, "downtime-limit": 300}, uri)
    return summarize(info, c)


def qemu_case(tmp, pki, tls, multifd, srcfile, dstfile, accel):
    port = free_port()
    uri = f"tcp:127.0.0.1:{port}"

    def cmd(memfile, sock, endpoint, incoming):
        c = [QEMU, "-accel", accel, "-no-user-config", "-nodefaults", "-nographic",
             "-object", f"memory-backend-file,id=mem,size={MIB}M,mem-path={memfile},share=on",
             "-machine", "pc,memory-backend=mem", "-m", f"{MIB}M",
             "-qmp", f"unix:{sock},server=on,wait=off", "-S"]
        if tls:
            c += ["-object", f"tls-creds-x509,id=tls0,endpoint={endpoint},"
                             f"dir={pki[endpoint]},verify-peer=on"]
        if incoming:
            c += ["-incoming", "defer"]
        return c

    for f in ("ms.sock", "md.sock"):
        if os.path.exists(f"{tmp}/{f}"):
            os.unlink(f"{tmp}/{f}")
    both = {}
    if tls:
        both["tls-creds"] = "tls0"
    caps = []
    if multifd:
        caps.append("multifd")
        both["multifd-channels"] = 2
    info, c = run_pair(cmd(srcfile, f"{tmp}/ms.sock", "client", False),
                       cmd(dstfile, f"{tmp}/md.sock", "server", True),
                       f"{tmp}/ms.sock", f"{tmp}/md.sock", caps, both,
                       {"max-bandwidth": 9223372036854775807, "downtime-limit": 300000}, uri)
    return summarize(info, c)


def baseline(kind):
    out = subprocess.run([BASELINE, kind, str(SIZE)], capture_output=True, text=True,
                         check=True).stdout
    vals = dict(kv.split("=") for kv in out.split())
    return {"gibps": float(vals["gibps"]), "cpu": float(vals["cpu"]) / (SIZE / GIB)}


def median(values):
    v = sorted(values)
    return v[len(v) // 2]


def bench(name, values, unit, bases):
    """One bench line from paired rounds: value and baseline are the medians
    of each side, the ratio the median of the per-round ratios (a round a
    neighbour slowed cannot move it)."""
    pairs = [v / b for v, b in zip(values, bases) if b]
    ratio = median(pairs) if pairs else 0.0
    print(f"bench name={name} value={median(values):.3f} unit={unit} "
          f"baseline={median(bases):.3f} ratio={ratio:.3f} paired=yes", flush=True)


def main():
    for tool, path in (("qiod", QIOD), ("qio-pki", QIO_PKI), ("bench-stream-baseline", BASELINE)):
        if not os.access(path, os.X_OK):
            print(f"# SKIP: {tool} not built ({path})")
            return 0
    tmp = tempfile.mkdtemp(prefix="qio-bench-mig-")
    shm = tempfile.mkdtemp(prefix="qio-bench-mig-", dir="/dev/shm")
    try:
        pki = make_pki(tmp)
        accel = "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
        print(f"# {MIB} MiB guest RAM, loopback TCP, TLS 1.3 x509 mutual auth; "
              f"destination memory pre-touched for qiod and QEMU; QEMU -accel {accel}; "
              f"dirtying cases at {DIRTY} pages/s; {ROUNDS} rounds, each case beside "
              f"its baselines, the first of each pair alternating", flush=True)
        srcfile, dstfile = f"{shm}/src.ram", f"{shm}/dst.ram"
        if QEMU:
            subprocess.run(["dd", "if=/dev/urandom", f"of={srcfile}", "bs=1M",
                            f"count={MIB}", "status=none"], check=True)
            subprocess.run(["dd", "if=/dev/zero", f"of={dstfile}", "bs=1M",
                            f"count={MIB}", "status=none"], check=True)
        cases = [("plain-1ch", False, False), ("tls-1ch", True, False),
                 ("plain-multifd2", False, True), ("tls-multifd2", True, True)]
        for name, tls, multifd in cases:
            phys_kind, pname = ("tls", "bare-gnutls") if tls else ("raw", "raw-tcp")
            q, p, e, d = [], [], [], []
            for r in range(ROUNDS):
                # The physical baseline and qio take turns; QEMU follows.
                if r % 2:
                    q.append(qio_case(tmp, pki, tls, multifd, 0))
                p.append(baseline(phys_kind))
                if r % 2 == 0:
                    q.append(qio_case(tmp, pki, tls, multifd, 0))
                if QEMU:
                    e.append(qemu_case(tmp, pki, tls, multifd, srcfile, dstfile, accel))
                d.append(qio_case(tmp, pki, tls, multifd, DIRTY))
                print(f"# round {r + 1} {name}: qio {q[-1]['gibps']:.3f} GiB/s "
                      f"({q[-1]['cpu']:.2f} CPU s/GiB, downtime {q[-1]['downtime']} ms), "
                      f"{pname} {p[-1]['gibps']:.3f} ({p[-1]['cpu']:.2f})"
                      + (f", qemu {e[-1]['gibps']:.3f} ({e[-1]['cpu']:.2f})" if QEMU else "")
                      + f", qio dirtying {d[-1]['gibps']:.3f} (downtime "
                      f"{d[-1]['downtime']} ms)", flush=True)

            def col(rows, key):
                return [row[key] for row in rows]
            bench(f"migration-{name}-vs-{pname}", col(q, "gibps"), "GiB/s", col(p, "gibps"))
            bench(f"migration-{name}-cpu-vs-{pname}", col(q, "cpu"), "cpu-s/GiB", col(p, "cpu"))
            if QEMU:
                bench(f"migration-{name}-vs-qemu", col(q, "gibps"), "GiB/s", col(e, "gibps"))
                bench(f"migration-{name}-total-time-vs-qemu", col(q, "total"), "s",
                      col(e, "total"))
                bench(f"migration-{name}-downtime-vs-qemu", col(q, "downtime"), "ms",
                      col(e, "downtime"))
                bench(f"migration-{name}-cpu-vs-qemu", col(q, "cpu"), "cpu-s/GiB", col(e, "cpu"))
            bench(f"migration-{name}-dirtying-vs-stopped", col(d, "gibps"), "GiB/s",
                  col(q, "gibps"))
            bench(f"migration-{name}-dirtying-total-time-vs-stopped", col(d, "total"), "s",
                  col(q, "total"))
            bench(f"migration-{name}-dirtying-downtime-vs-stopped", col(d, "downtime"), "ms",
                  col(q, "downtime"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
