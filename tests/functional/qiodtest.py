"""Helpers for the qiod functional tests: TAP output, starting qiod on a
temporary UNIX socket, and a minimal QMP client speaking raw JSON."""
import atexit
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

# A test killed by run-test.sh's time limit (SIGTERM) still runs its exit
# handlers, which kill the qiod processes it started.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

BUILDDIR = os.environ.get("QIO_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
QIOD = os.path.join(BUILDDIR, "tools", "qiod")
QIO_CTL = os.path.join(BUILDDIR, "tools", "qio-ctl")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}")
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}")
            if diag is not None:
                for line in str(diag).splitlines() or [""]:
                    print(f"# {line}")
        sys.stdout.flush()
        return cond

    def done(self):
        print(f"1..{self.n}")
        sys.exit(0)


class Qmp:
    """One QMP connection; replies and events are told apart."""

    def __init__(self, path, negotiate=True, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            assert "return" in r, r

    def recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("qiod closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data)

    def arrived(self):
        """What has arrived so far, without waiting; it stays readable."""
        timeout = self.sock.gettimeout()
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            data = b""
        finally:
            self.sock.settimeout(timeout)
        self.buf += data
        return data

    def reply(self):
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, args=None, **extra):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        req.update(extra)
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.reply()

    def event(self, name, timeout=10):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                msg = self.recv()
            except (socket.timeout, EOFError):
                return None
            if "event" in msg:
                self.events.append(msg)

    def wait_job_ready(self, job, timeout=30):
        """True once query-block-jobs shows @job ready, False after @timeout s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            jobs = self.cmd("query-block-jobs")["return"]
            if any(j["device"] == job and j["ready"] for j in jobs):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.sock.close()


class Qiod:
    """A qiod process with its QMP socket in a temporary directory."""

    def __init__(self, *args, qmp=True, wait=True, images=None):
        self.dir = tempfile.mkdtemp(prefix="qiod-test-")
        for name, size in (images or {}).items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.truncate(size)
        self.sock = os.path.join(self.dir, "qmp.sock")
        cmd = [QIOD]
        if qmp:
            cmd += ["-qmp", f"unix:{self.sock},server=on,wait=off"]
        cmd += [a.replace("@DIR@", self.dir) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # A test that dies of an exception must not leave qiod running.
        atexit.register(lambda proc=self.proc: proc.poll() is None and proc.kill())
        if qmp and wait:
            self.wait_socket()

    def wait_socket(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("qiod exited: " + self.proc.stderr.read().decode())
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.sock)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("qiod did not listen on " + self.sock)

    def qmp(self, **kw):
        return Qmp(self.sock, **kw)

    def stderr_until(self, text, timeout=20):
        """What qiod wrote to stderr so far, read until @text appears (or
        @timeout s pass, or qiod exits); qiod keeps running."""
        fd = self.proc.stderr.fileno()
        os.set_blocking(fd, False)
        self.log = getattr(self, "log", "")
        deadline = time.time() + timeout
        while text not in self.log and time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.log += chunk.decode(errors="replace")
        return self.log

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait() is None:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(*cmd, timeout=60):
    """Runs a program to completion: exit status (None if it timed out),
    standard output and standard error as text."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"{cmd[0]} did not exit within {timeout} s"
    return p.returncode, p.stdout, p.stderr


def run_qiod(*args, timeout=20):
    """Runs qiod to completion (for command-line errors)."""
    return run(QIOD, *args, timeout=timeout)


def make_pki():
    """A certtool PKI made by nbd-pki.sh in a new temporary directory (its
    srv/, cli/ and evilcli/ hold the files tls-creds-x509 wants), removed
    when the test exits."""
    pki = tempfile.mkdtemp(prefix="qio-pki-")
    atexit.register(shutil.rmtree, pki, True)
    subprocess.run(["bash", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "nbd-pki.sh"), pki], check=True)
    return pki


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_by_server(sock, timeout=20):
    """Whether the peer of @sock (plain or TLS) closes it within @timeout s;
    what it sends meanwhile is read and dropped."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return True
    except (socket.timeout, OSError):
        return False


def recv_exact(s, n):
    """@n bytes from socket @s; EOFError if it closes first."""
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def unix_listening(path):
    """True once the UNIX socket at @path accepts connections.  Its file
    appears at bind(), a moment before listen(): a client connecting in
    between is refused, so waiting for the file is not enough."""
    with open("/proc/net/unix") as f:
        for line in f:
            fields = line.split()
            # Flags 00010000: __SO_ACCEPTCON, set by listen().
            if len(fields) == 8 and fields[7] == path and fields[3] == "00010000":
                return True
    return False


def tcp_listening(port):
    """True when something accepts connections on 127.0.0.1:@port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def nbdkit(sock, *args, port=None):
    """nbdkit serving on UNIX socket @sock (or, with @sock None, on
    127.0.0.1:@port; plugin and filters in @args), once it listens; the
    caller kills it.  Exits the test with a TAP skip when nbdkit is not
    installed."""
    if not shutil.which("nbdkit"):
        print("1..0 # SKIP nbdkit not installed")
        sys.exit(0)
    where = ["-U", sock] if sock else ["-i", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(["nbdkit", "--foreground", *where, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while (not (unix_listening(sock) if sock else tcp_listening(port))
           and time.time() < deadline):
        time.sleep(0.05)
    return proc
