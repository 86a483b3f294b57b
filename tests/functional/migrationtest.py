"""Helpers for the migration tests: a throwaway PKI made with certtool,
a source and a destination qiod, running a migration to its end, and
comparing the guests' digests."""
import os
import socket
import subprocess
import tempfile
import threading
import time

import qiodtest as qt


def certtool(*args):
    subprocess.run(["certtool", *args], check=True, capture_output=True)


class Pki:
    """CA 'good' (trusted), CA 'evil' (trusted by nobody), and leaves; each
    credentials directory is laid out as tls-creds-x509 expects."""

    def __init__(self, root):
        self.root = root
        self._ca("good")
        self._ca("evil")

    def _path(self, name):
        return os.path.join(self.root, name)

    def _ca(self, name):
        key = self._path(f"{name}-ca-key.pem")
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
        tmpl = self._path(f"{name}-ca.info")
        with open(tmpl, "w") as f:
            f.write(f'cn = "{name} CA"\nca\ncert_signing_key\nexpiration_days = 30\n')
        certtool("--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                 "--outfile", self._path(f"{name}-ca.pem"))

    def creds_dir(self, dirname, role, cn, ca="good", trust="good", dns="localhost",
                  expired=False):
        """A directory with ca-cert.pem (of @trust) and ROLE-cert.pem /
        ROLE-key.pem issued by @ca for @cn."""
        d = self._path(dirname)
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, f"{role}-key.pem")
        certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
        tmpl = os.path.join(d, "leaf.info")
        purpose = "tls_www_server" if role == "server" else "tls_www_client"
        with open(tmpl, "w") as f:
            f.write(f'cn = "{cn}"\ndns_name = "{dns}"\nip_address = "127.0.0.1"\n'
                    f"{purpose}\nsigning_key\nencryption_key\n")
            if expired:
                f.write('activation_date = "2020-01-01 00:00:00"\n'
                        'expiration_date = "2020-02-01 00:00:00"\n')
            else:
                f.write("expiration_days = 30\n")
        certtool("--generate-certificate", "--load-privkey", key,
                 "--load-ca-certificate", self._path(f"{ca}-ca.pem"),
                 "--load-ca-privkey", self._path(f"{ca}-ca-key.pem"),
                 "--template", tmpl, "--outfile", os.path.join(d, f"{role}-cert.pem"))
        os.remove(tmpl)
        with open(self._path(f"{trust}-ca.pem")) as src, \
                open(os.path.join(d, "ca-cert.pem"), "w") as dst:
            dst.write(src.read())
        return d


def make_psk(root):
    d = os.path.join(root, "psk")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["psktool", "-u", "migrator", "-p", os.path.join(d, "keys.psk")],
                   check=True, capture_output=True)
    return d


class Pair:
    """A source qiod and a destination qiod (started with -S so that the
    digests can be compared before it resumes)."""

    def __init__(self, uri, ram="64M", dirty=0, src_args=(), dst_args=(), incoming=None,
                 seed=5):
        self.uri = uri
        self.src = qt.Qiod("-m", ram, "-guest", f"dirty-rate={dirty},seed={seed}", *src_args)
        self.dst = qt.Qiod("-m", ram, "-guest", "seed=99", "-S", *dst_args,
                           "-incoming", incoming or "defer")
        self.s = self.src.qmp()
        self.d = self.dst.qmp()

    def setup(self, caps=None, params=None, src_params=None, dst_params=None, dst_caps=None):
        caps = dict(caps or {})
        caps.setdefault("events", True)
        caps.setdefault("return-path", True)
        for q, c in ((self.s, caps), (self.d, dict(caps, **(dst_caps or {})))):
            r = q.cmd("migrate-set-capabilities",
                      {"capabilities": [{"capability": k, "state": v} for k, v in c.items()]})
            assert "return" in r, r
        base = {"max-bandwidth": 0}
        base.update(params or {})
        for q, extra in ((self.s, src_params), (self.d, dst_params)):
            p = dict(base, **(extra or {}))
            r = q.cmd("migrate-set-parameters", p)
            assert "return" in r, r

    def start(self, incoming_uri=None):
        r = self.d.cmd("migrate-incoming", {"uri": incoming_uri or self.uri})
        if "error" in r:
            return r
        return self.s.cmd("migrate", {"uri": self.uri})

    def wait(self, q=None, timeout=60):
        q = q or self.s
        deadline = time.time() + timeout
        r = {}
        while time.time() < deadline:
            r = q.cmd("query-migrate")["return"]
            if r.get("status") in ("completed", "failed", "cancelled"):
                return r
            time.sleep(0.05)
        return r

    def digests(self, q):
        g = q.cmd("query-guest")["return"]
        return g["ram-digest"], [d["digest"] for d in g.get("disks", [])]

    def dst_exit(self, timeout=20):
        rc = self.dst.wait(timeout)
        err = self.dst.proc.stderr.read().decode() if rc is not None else ""
        return rc, err

    def close(self):
        for q in (self.s, self.d):
            try:
                q.close()
            except OSError:
                pass
        self.src.stop()
        self.dst.stop()


free_port = qt.free_port


def proxy(listen_port, target_port, cut_after=None, gate=None, delay=0):
    """A TCP proxy from 127.0.0.1:@listen_port to @target_port, for network
    faults.  Every connection is forwarded both ways; with @cut_after, both
    directions are cut once that many bytes went towards @target_port; with
    @gate (a threading.Event), every connection after the first waits for
    it; with @delay, every chunk waits that many seconds (a WAN's latency).
    Returns the listening socket: close it to stop accepting."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(16)

    def forward(a, first):
        if gate is not None and not first:
            gate.wait()
        b = socket.create_connection(("127.0.0.1", target_port))

        def pump(src, dst, limit):
            moved = 0
            try:
                while limit is None or moved < limit:
                    data = src.recv(65536)
                    if not data:
                        break
                    time.sleep(delay)
                    dst.sendall(data)
                    moved += len(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(b, a, None), daemon=True).start()
        pump(a, b, cut_after)

    def run():
        first = True
        while True:
            try:
                a, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=forward, args=(a, first), daemon=True).start()
            first = False

    threading.Thread(target=run, daemon=True).start()
    return lsock


def tmpdir():
    return tempfile.mkdtemp(prefix="qio-mig-")
