#!/usr/bin/python3
"""The live-migration demo (run by scripts/demo.sh): two qiod processes on
this machine, a throwaway PKI made with qio-pki, a guest dirtying its
memory and writing its disk, and a migration over TLS with mutual x509
authentication on a main channel and two multifd channels.  Prints the
progress, then a summary: throughput, downtime, cipher, peer identities,
and whether RAM and disks are identical on both ends (query-guest
digests).  Exits 0 only if they are."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from qmplite import Qmp


def make_pki(qio_pki, tmp):
    """qio-pki init: a CA, a destination (server) and a source (client)
    certificate; the directories of the latter two."""
    pki = os.path.join(tmp, "pki")
    p = subprocess.run([qio_pki, "init", pki, "--hostname", "localhost", "--ip", "127.0.0.1",
                        "--dn", "CN=destination.qio.test", "--client-dn", "CN=source.qio.test",
                        "--days", "1"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"demo: qio-pki failed: {p.stderr.strip()}")
    return os.path.join(pki, "server"), os.path.join(pki, "client")


def wait_socket(path, proc):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"demo: qiod exited: {proc.stderr.read().decode()}")
        if os.path.exists(path):
            return
        time.sleep(0.05)
    sys.exit(f"demo: qiod did not create {path}")


def gib(n):
    return n / (1 << 30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--ram", default="1G", help="guest RAM (default 1G)")
    ap.add_argument("--dirty-rate", type=int, default=20000,
                    help="pages the guest writes per second (default 20000 = 78 MiB/s)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the destination running for qio-ctl until Ctrl-C")
    args = ap.parse_args()
    qiod = os.path.join(args.builddir, "tools", "qiod")
    qio_ctl = os.path.join(args.builddir, "tools", "qio-ctl")
    qio_pki = os.path.join(args.builddir, "tools", "qio-pki")
    tmp = tempfile.mkdtemp(prefix="qio-demo-")
    procs = []
    try:
        print("== a throwaway PKI (qio-pki init): CA, destination and source certificates")
        dst_dir, src_dir = make_pki(qio_pki, tmp)
        disk = os.path.join(tmp, "disk0.img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        port = 49152 + os.getpid() % 10000
        uri = f"tcp:127.0.0.1:{port}"
        print(f"== destination qiod: waits for the migration on {uri} (TLS, verify-peer, "
              "authz: CN=source.qio.test only)")
        dst = subprocess.Popen([
            qiod, "-m", args.ram, "-S", "-name", "destination",
            "-drive", f"file={disk},id=disk0",
            "-object", f"tls-creds-x509,id=tls0,endpoint=server,dir={dst_dir},verify-peer=on",
            "-object", "authz-simple,id=auth0,identity=CN=source.qio.test",
            "-qmp", f"unix:{tmp}/dst.sock", "-incoming", "defer"],
            stderr=subprocess.PIPE)
        procs.append(dst)
        print(f"== source qiod: a {args.ram} guest dirtying {args.dirty_rate} pages/s "
              "and writing its disk")
        src = subprocess.Popen([
            qiod, "-m", args.ram, "-name", "source",
            "-guest", f"dirty-rate={args.dirty_rate},disk-rate=200,seed=42",
            "-drive", f"file={disk},id=disk0",
            "-object", f"tls-creds-x509,id=tls0,endpoint=client,dir={src_dir}",
            "-qmp", f"unix:{tmp}/src.sock"], stderr=subprocess.PIPE)
        procs.append(src)
        wait_socket(f"{tmp}/dst.sock", dst)
        wait_socket(f"{tmp}/src.sock", src)
        d, s = Qmp(f"{tmp}/dst.sock"), Qmp(f"{tmp}/src.sock")
        caps = [{"capability": c, "state": True} for c in ("multifd", "return-path", "events")]
        for q in (d, s):
            q.cmd("migrate-set-capabilities", capabilities=caps)
            q.cmd("migrate-set-parameters", **{"tls-creds": "tls0", "multifd-channels": 2})
        d.cmd("migrate-set-parameters", **{"tls-authz": "auth0"})
        s.cmd("migrate-set-parameters", **{"max-bandwidth": 0, "downtime-limit": 300})
        d.cmd("migrate-incoming", uri=uri)
        time.sleep(1)  # let the guest run and dirty memory before it moves
        print(f"== migrate {uri} (main + 2 multifd channels, each with its own TLS session)")
        s.cmd("migrate", uri=uri)
        tty = sys.stdout.isatty()
        while True:
            info = s.cmd("query-migrate")
            status = info.get("status", "none")
            ram = info.get("ram", {})
            line = (f"  {status:<10} sent {gib(ram.get('transferred', 0)):6.2f} GiB  "
                    f"remaining {ram.get('remaining', 0) >> 20:5d} MiB  "
                    f"rounds done {info.get('iterations', 0):2d}  "
                    f"{ram.get('bandwidth', 0) / (1 << 30):5.2f} GiB/s")
            print(("\r" + line + "\033[K") if tty else line, end="" if tty else "\n",
                  flush=True)
            if status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.2 if tty else 1)
        if tty:
            print()
        if status != "completed":
            sys.exit(f"demo: migration {status}: {info.get('error-desc', '')}")
        dinfo = d.cmd("query-migrate")
        src_guest, dst_guest = s.cmd("query-guest"), d.cmd("query-guest")
        same = (src_guest["ram-digest"] == dst_guest["ram-digest"]
                and [x["digest"] for x in src_guest["disks"]]
                == [x["digest"] for x in dst_guest["disks"]])
        d.cmd("cont")
        total_s = info["total-time"] / 1000
        ch = info["channels"][0]
        print("== summary")
        print(f"  RAM                {gib(src_guest['ram-size']):.2f} GiB, "
              f"{info['iterations']} rounds, {gib(info['ram']['transferred']):.2f} GiB sent")
        print(f"  throughput         {info['throughput'] / (1 << 30):.2f} GiB/s "
              f"({info['ram']['mbps']:.0f} Mbit/s) over {total_s:.2f} s")
        print(f"  downtime           {info['downtime']} ms (setup {info['setup-time']} ms)")
        print(f"  TLS                {ch['protocol']} {ch['cipher']} ({ch['key-exchange']}) "
              f"on {len(info['channels'])} channels")
        print(f"  peer identities    source sees {ch['peer']}, destination sees "
              f"{dinfo['channels'][0]['peer']}")
        print(f"  source status      {s.cmd('query-status')['status']}")
        print(f"  destination status {d.cmd('query-status')['status']}")
        print(f"  RAM and disks identical: {'yes' if same else 'NO'}")
        s.cmd("quit")
        ctl = [qio_ctl, "-s", f"unix:{tmp}/dst.sock"]
        print(f"== the migrated guest, asked with qio-ctl: {' '.join(ctl)} query-status")
        sys.stdout.flush()
        subprocess.run(ctl + ["query-status"], check=True)
        if args.keep:
            print(f"== the destination qiod keeps running; talk to it with\n"
                  f"   {' '.join(ctl)} query-guest\n   (Ctrl-C ends the demo)", flush=True)
            try:
                dst.wait()
            except KeyboardInterrupt:
                pass
        else:
            d.cmd("quit")
        return 0 if same else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
