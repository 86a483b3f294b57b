"""Helpers for the VNC interop tests (test-vnc-*.py): the VNC server under
test, certificates, images, and the processes a test starts.

The server is pluggable: SERVER below names the default one, and
QIO_VNC_SERVER=qemu in the environment runs the same tests against QEMU's
own VNC server (qemu-system-x86_64), which is how the harness itself was
checked.  Both take the same -vnc and -object options, so a test only says
what it wants (password, TLS, websocket, ...) and gets a running server
listening on 127.0.0.1 with a QMP monitor on a UNIX socket."""
import atexit
import ctypes
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qiodtest import QIOD, Qmp, Tap, unix_listening  # noqa: E402,F401

# The one line to change to point the tests at another server by default.
SERVER = os.environ.get("QIO_VNC_SERVER", "qiod")

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = "qemu-system-x86_64"

# --- processes ----------------------------------------------------------------
# Every process a test starts goes through spawn(): it gets its own process
# group (a browser or a viewer forks helpers), and the group is killed at
# exit, on success, failure, exception or SIGTERM alike.  Should the test
# itself be SIGKILLed, the process dies with it (PR_SET_PDEATHSIG) and a
# watchdog, which reads the live groups from a pipe, kills what they forked
# (Chromium outlives chromedriver) once the pipe closes.
_procs = []
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
_WATCHDOG = """
import os, signal
groups, buf = set(), b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""
_watchdog = None


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tell_watchdog(line):
    global _watchdog
    if _watchdog is None:
        _watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE,
                                     start_new_session=True)
    try:
        _watchdog.stdin.write(line.encode() + b"\n")
        _watchdog.stdin.flush()
    except OSError:
        pass


def spawn(argv, **kw):
    """subprocess.Popen(@argv) in a new session, reaped at exit."""
    p = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent, **kw)
    _procs.append(p)
    _tell_watchdog(f"+{p.pid}")
    return p


def kill(p, timeout=5):
    """Ends process @p (and its process group): SIGTERM, then SIGKILL."""
    if p.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
    # The leader is gone; helpers left in its group go too.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            try:
                f.close()
            except OSError:
                pass
    if p in _procs:
        _procs.remove(p)
        _tell_watchdog(f"-{p.pid}")


_tmpdirs = []


def mkdtemp(prefix):
    """A temporary directory, removed at exit."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def _cleanup():
    for p in reversed(list(_procs)):
        kill(p, timeout=3)
    if _watchdog:
        _watchdog.stdin.close()
        _watchdog.wait()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
# SIGTERM (run-test.sh's timeout) runs the atexit handlers too.
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))


def skip_all(reason):
    print(f"1..0 # SKIP {reason}")
    sys.exit(0)


def wait_until(cond, timeout, interval=0.05):
    """Calls @cond until it returns something true (returned) or @timeout
    seconds pass (then its last value is returned)."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


# --- network --------------------------------------------------------------------
def free_ports(n):
    """@n distinct free TCP ports on 127.0.0.1 above 5900 (the kernel's
    ephemeral range), for servers that take a port number."""
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        if s.getsockname()[1] > 5900:
            ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def tcp_sockets(port, state):
    """How many TCP sockets have local port @port and /proc/net/tcp state
    @state ("0A" listening, "01" established)."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == state and \
                            fields[1].endswith(f":{port:04X}"):
                        n += 1
        except OSError:
            pass
    return n


def tcp_listening(port):
    """True once a socket listens on TCP @port."""
    return tcp_sockets(port, "0A") > 0


# --- images ---------------------------------------------------------------------
class Image:
    """An RGB image: width, height and 3 bytes a pixel, row by row."""

    def __init__(self, width, height, rgb):
        self.width, self.height, self.rgb = width, height, bytes(rgb)
        assert len(self.rgb) == width * height * 3, (width, height, len(self.rgb))

    def crop(self, x, y, w, h):
        rows = []
        for row in range(y, y + h):
            i = (row * self.width + x) * 3
            rows.append(self.rgb[i:i + w * 3])
        return Image(w, h, b"".join(rows))

    def save_ppm(self, path):
        with open(path, "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (self.width, self.height) + self.rgb)

    @staticmethod
    def from_xrgb(width, height, data, stride=None):
        """From 32-bit little-endian XRGB (B, G, R, X in memory) pixels."""
        stride = stride or width * 4
        if stride != width * 4:
            data = b"".join(data[y * stride:y * stride + width * 4] for y in range(height))
        rgb = bytearray(width * height * 3)
        rgb[0::3] = data[2::4]
        rgb[1::3] = data[1::4]
        rgb[2::3] = data[0::4]
        return Image(width, height, rgb)


def read_ppm(path):
    """The binary PPM (P6, maxval 255) at @path as an Image."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace byte after maxval
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not a P6 PPM with maxval 255: {fields}")
    w, h = int(fields[1]), int(fields[2])
    return Image(w, h, data[pos:pos + w * h * 3])


def image_diff(got, want):
    """None when @got and @want are the same picture, else what differs."""
    if got is None or want is None:
        return "no image"
    if (got.width, got.height) != (want.width, want.height):
        return f"size {got.width}x{got.height}, expected {want.width}x{want.height}"
    if got.rgb == want.rgb:
        return None
    bad, first = 0, None
    for i in range(0, len(got.rgb), 3):
        if got.rgb[i:i + 3] != want.rgb[i:i + 3]:
            bad += 1
            if first is None:
                p = i // 3
                first = (p % got.width, p // got.width, got.rgb[i:i + 3].hex(),
                         want.rgb[i:i + 3].hex())
    return (f"{bad} of {got.width * got.height} pixels differ; first at ({first[0]},{first[1]}): "
            f"#{first[2]}, expected #{first[3]}")


# --- certificates ---------------------------------------------------------------
class Pki:
    """An x509 set made by nbd-pki.sh (certtool) in a temporary directory:
    srv/ (the server's dir= for tls-creds-x509: ca-cert.pem,
    server-cert.pem, server-key.pem; SANs localhost and 127.0.0.1),
    cli/ (CA, client-cert.pem, client-key.pem, CN=client), evilcli/
    (the same from a second CA nobody trusts) and evilsrv/ (a server dir
    whose certificate that second CA signed)."""

    def __init__(self):
        if not shutil.which("certtool"):
            skip_all("certtool (gnutls-bin) is not installed")
        self.dir = mkdtemp("vnc-pki-")
        subprocess.run(["bash", os.path.join(HERE, "nbd-pki.sh"), self.dir], check=True,
                       capture_output=True)
        self.srv = os.path.join(self.dir, "srv")
        self.ca = os.path.join(self.dir, "srv", "ca-cert.pem")
        self.client_cert = os.path.join(self.dir, "cli", "client-cert.pem")
        self.client_key = os.path.join(self.dir, "cli", "client-key.pem")
        self.evil_ca = os.path.join(self.dir, "evilcli", "ca-cert.pem")
        self.evil_cert = os.path.join(self.dir, "evilcli", "client-cert.pem")
        self.evil_key = os.path.join(self.dir, "evilcli", "client-key.pem")
        self.client_dname = "CN=client"
        self.evil_srv = os.path.join(self.dir, "evilsrv")
        os.makedirs(self.evil_srv)
        shutil.copy(self.evil_ca, os.path.join(self.evil_srv, "ca-cert.pem"))
        key = os.path.join(self.evil_srv, "server-key.pem")
        info = os.path.join(self.dir, "evilserver.info")
        with open(info, "w") as f:
            f.write('cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                    "tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 30\n")
        for args in (["--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                     ["--generate-certificate", "--load-privkey", key,
                      "--load-ca-certificate", os.path.join(self.dir, "evil-ca.pem"),
                      "--load-ca-privkey", os.path.join(self.dir, "evil-ca-key.pem"),
                      "--template", info, "--outfile",
                      os.path.join(self.evil_srv, "server-cert.pem")]):
            subprocess.run(["certtool", *args], check=True, capture_output=True)


# --- typing ---------------------------------------------------------------------
# X keysyms and PC XT (set 1) scancodes for the keys the tests type, as a
# real client sends them: the keysym in a KeyEvent, both in QEMU's extended
# key event.
_XT = {"a": 0x1e, "b": 0x30, "c": 0x2e, "d": 0x20, "e": 0x12, "f": 0x21, "g": 0x22,
       "h": 0x23, "i": 0x17, "j": 0x24, "k": 0x25, "l": 0x26, "m": 0x32, "n": 0x31,
       "o": 0x18, "p": 0x19, "q": 0x10, "r": 0x13, "s": 0x1f, "t": 0x14, "u": 0x16,
       "v": 0x2f, "w": 0x11, "x": 0x2d, "y": 0x15, "z": 0x2c, "1": 0x02, "2": 0x03,
       "3": 0x04, "4": 0x05, "5": 0x06, "6": 0x07, "7": 0x08, "8": 0x09, "9": 0x0a,
       "0": 0x0b, " ": 0x39, "\r": 0x1c}
KEYSYM_RETURN = 0xff0d


def keys_for(text):
    """[(keysym, XT scancode)] typing @text ('\\r' is Return)."""
    out = []
    for ch in text:
        if ch not in _XT:
            raise ValueError(f"no key for {ch!r}")
        out.append((KEYSYM_RETURN if ch == "\r" else ord(ch), _XT[ch]))
    return out


# --- the servers ----------------------------------------------------------------
class VncServer:
    """A VNC server under test.  @password: VNC password (a secret object,
    password-secret=); @tls: None, "x509" or "anon"; @verify_peer for x509;
    @websocket: also listen for websocket clients; @unix: listen on a UNIX
    socket instead of TCP; @creds_dir: the x509 dir= (default @pki.srv);
    @sasl_users: {user: password} turns on SASL (sasl=on) with those users
    in a sasldb of its own.
    After start(): .port (TCP), .ws_port, .path (UNIX), .qmp (a negotiated
    Qmp)."""

    kind = None
    # The guest's shell runs a typed line; a subclass that can see its
    # output says so (QEMU's has no guest, so it only sees the keys).
    has_shell = False
    # Whether the TLS server asks clients for a certificate when
    # verify-peer=off (see QemuVnc).
    tls_asks_client_cert = False

    def __init__(self, password=None, tls=None, verify_peer=False, websocket=False, unix=False,
                 pki=None, password_on=False, creds_dir=None, sasl_users=None):
        self.password, self.tls, self.verify_peer = password, tls, verify_peer
        self.websocket, self.unix, self.pki, self.password_on = websocket, unix, pki, password_on
        self.creds_dir = creds_dir or (pki.srv if pki else None)
        self.sasl_users = sasl_users
        self.dir = mkdtemp(f"vnc-{self.kind}-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.qmp = None
        self.port = self.ws_port = self.path = None
        self._dumps = 0

    # What differs between servers.
    def command(self):
        raise NotImplementedError

    def options(self):
        objects, vnc = [], []
        if self.unix:
            self.path = os.path.join(self.dir, "vnc.sock")
            vnc.append(f"unix:{self.path}")
        else:
            vnc.append(f"127.0.0.1:{self.port - 5900}")
        if self.password:
            objects += ["-object", f"secret,id=vncsec0,data={self.password}"]
            vnc.append("password-secret=vncsec0")
        elif self.password_on:
            vnc.append("password=on")
        if self.tls == "x509":
            verify = "on" if self.verify_peer else "off"
            objects += ["-object", "tls-creds-x509,id=vnctls0,endpoint=server,"
                        f"dir={self.creds_dir},verify-peer={verify}"]
        elif self.tls == "anon":
            objects += ["-object", "tls-creds-anon,id=vnctls0,endpoint=server"]
        if self.tls:
            vnc.append("tls-creds=vnctls0")
        if self.websocket:
            vnc.append(f"websocket={self.ws_port}")
        if self.sasl_users is not None:
            vnc.append("sasl=on")
        return objects + ["-vnc", ",".join(vnc)]

    # The Cyrus SASL application name: the server reads NAME.conf.
    sasl_app = None

    def sasl_env(self):
        """The environment with SASL_CONF_PATH at a directory holding the
        server's NAME.conf (SCRAM-SHA-256 and DIGEST-MD5, the users in a
        sasldb made with saslpasswd2)."""
        conf = os.path.join(self.dir, "sasl")
        os.makedirs(conf, exist_ok=True)
        db = os.path.join(conf, "passwd.db")
        with open(os.path.join(conf, f"{self.sasl_app}.conf"), "w") as f:
            f.write(f"mech_list: scram-sha-256 digest-md5\nsasldb_path: {db}\n")
        for user, password in self.sasl_users.items():
            subprocess.run(["saslpasswd2", "-c", "-p", "-f", db, "-a", self.sasl_app, user],
                           input=password.encode(), check=True, capture_output=True)
        return {**os.environ, "SASL_CONF_PATH": conf}

    def start(self, timeout=30):
        for attempt in range(3):
            if not self.unix:
                self.port, self.ws_port = free_ports(2)
            argv = self.command() + ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"] + \
                self.options()
            self.argv = argv
            env = self.sasl_env() if self.sasl_users is not None else None
            log = open(self.log_path, "wb")
            self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              env=env)
            log.close()

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                if not unix_listening(self.qmp_path):
                    return False
                if self.unix:
                    return unix_listening(self.path)
                return tcp_listening(self.port) and (not self.websocket or
                                                     tcp_listening(self.ws_port))
            state = wait_until(up, timeout)
            if state is True:
                self.qmp = Qmp(self.qmp_path, timeout=30)
                return self
            kill(self.proc)
            text = self.log()
            # Another process took a port between free_ports() and bind().
            if state == "exited" and "in use" in text and attempt < 2:
                continue
            raise RuntimeError(f"{self.kind} did not start ({' '.join(argv)}):\n{text}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.qmp:
            try:
                self.qmp.close()
            except OSError:
                pass
            self.qmp = None
        if self.proc:
            kill(self.proc)
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def screendump(self):
        self._dumps += 1
        path = os.path.join(self.dir, f"screen{self._dumps}.ppm")
        r = self.qmp.cmd("screendump", {"filename": path})
        if "return" not in r:
            raise RuntimeError(f"screendump: {r}")
        img = read_ppm(path)
        os.unlink(path)
        return img

    def query_vnc(self):
        return self.qmp.cmd("query-vnc").get("return", {})

    def connections_closed(self, timeout=20):
        """True once the server holds no connection on its TCP ports, not
        even one still in its handshake (which query-vnc does not list)."""
        ports = [p for p in (self.port, self.ws_port) if p]
        return wait_until(lambda: not any(tcp_sockets(p, "01") for p in ports), timeout)

    def wait_clients(self, n, timeout=20):
        """query-vnc once it lists @n clients (or the last one after
        @timeout s)."""
        last = {}

        def check():
            nonlocal last
            last = self.query_vnc()
            return len(last.get("clients", [])) == n
        wait_until(check, timeout, 0.1)
        return last

    def auth_of(self, info):
        """(auth, vencrypt subtype or None) from query-vnc's reply @info,
        whose "auth" is QEMU's: none, vnc, sasl or vencrypt+x509+none,
        vencrypt+tls+vnc, ... (the subtype given as x509-none, tls-vnc)."""
        auth = info.get("auth", "")
        if auth.startswith("vencrypt+"):
            return "vencrypt", auth[len("vencrypt+"):].replace("+", "-")
        return auth, None

    def typed(self, line, output, timeout=20):
        """Waits until the server has the keys for @line + Return (and, with
        a guest shell, printed @output for it).  Returns (ok, diag)."""
        raise NotImplementedError

    def change_screen(self):
        """Makes the screen change without any VNC client's doing; False
        when the server cannot (QEMU's stopped machine)."""
        return False

    def screen_shows(self, img, line, output):
        """For a server whose screen is its guest's text console: True when
        @img shows the prompt, @line and below it @output; None when the
        server has no such screen."""
        return None


class QemuVnc(VncServer):
    """QEMU's own VNC server: a PC with standard VGA, stopped (-S) so that
    the screen is fixed (QEMU's "display not initialized" notice); key
    events are seen through QEMU's vnc_key_event traces."""

    kind = "qemu"
    sasl_app = "qemu"
    # QEMU's TLS server asks for a client certificate even with
    # verify-peer=off; Chromium cancels a wss:// connection that is asked
    # one unless it chose "no certificate" for that host and port before,
    # in a page load (https://crbug.com/329884).
    tls_asks_client_cert = True

    def command(self):
        return [QEMU, "-machine", "pc", "-accel", "tcg", "-m", "32", "-vga", "std", "-S",
                "-display", "none", "-nodefaults", "-trace", "vnc_key_event_map",
                "-trace", "vnc_key_event_ext"]

    def keys_seen(self):
        """The keysyms pressed so far (key-down events), in order."""
        syms = []
        for m in re.finditer(r"vnc_key_event_(?:map|ext) .*?down (\d+), sym 0x([0-9a-f]+)",
                             self.log()):
            if m.group(1) == "1":
                syms.append(int(m.group(2), 16))
        return syms

    def typed(self, line, output, timeout=20):
        want = [s for s, _ in keys_for(line + "\r")]

        def seen():
            got = self.keys_seen()
            return any(got[i:i + len(want)] == want for i in range(len(got)))
        ok = wait_until(seen, timeout, 0.1)
        return ok, (f"keysyms pressed: {[hex(s) for s in self.keys_seen()]}, "
                    f"want {[hex(s) for s in want]}")


class QiodVnc(VncServer):
    """qiod's VNC server.  The guest's serial port goes to a ringbuf that
    QMP reads, so typed commands and their output can be seen, and its
    screen is the serial console drawn in an 8x16 font."""

    kind = "qiod"
    has_shell = True
    sasl_app = "qio"
    CELL_W, CELL_H = 8, 16

    def command(self):
        return [QIOD, "-chardev", "ringbuf,id=vncserial,size=65536", "-serial",
                "chardev:vncserial"]

    def start(self, timeout=30):
        super().start(timeout)
        self.serial = ""
        return self

    def read_serial(self):
        r = self.qmp.cmd("ringbuf-read", {"device": "vncserial", "size": 65536})
        self.serial += r.get("return", "")
        return self.serial

    def change_screen(self):
        r = self.qmp.cmd("guest-serial-write", {"data": "echo tick\r"})
        return "return" in r

    def typed(self, line, output, timeout=20):
        want = f"{line}\r\n{output}\r\n"
        ok = wait_until(lambda: want in self.read_serial(), timeout, 0.1)
        return ok, f"serial output so far: {self.serial!r}, want {want!r}"

    def screen_shows(self, img, line, output):
        """Font-blind reading: finds two screen rows, the first starting
        with 'guest> ' + @line and the next with @output, whose 8x16 cells
        are the same picture wherever the characters are the same and a
        different one wherever they differ (spaces blank)."""
        top = "guest> " + line
        cw, ch = self.CELL_W, self.CELL_H
        cols, rows = img.width // cw, img.height // ch

        def cell(c, r):
            return img.crop(c * cw, r * ch, cw, ch).rgb

        for r in range(rows - 2, -1, -1):
            cells = {}
            ok = True
            for rr, text in ((r, top), (r + 1, output)):
                for c, char in enumerate(text[:cols]):
                    pic = cell(c, rr)
                    blank = len({pic[i:i + 3] for i in range(0, len(pic), 3)}) == 1
                    if (char == " ") != blank:
                        ok = False
                        break
                    cells.setdefault(char, set()).add(pic)
                if not ok:
                    break
            if not ok:
                continue
            pics = [p for s in cells.values() for p in s]
            if all(len(s) == 1 for s in cells.values()) and len(set(pics)) == len(pics):
                return True
        return False


SERVERS = {"qemu": QemuVnc, "qiod": QiodVnc}


def server_class():
    """The class for SERVER; exits with a TAP skip when its program is
    missing."""
    if SERVER not in SERVERS:
        raise SystemExit(f"QIO_VNC_SERVER={SERVER!r}: not one of {sorted(SERVERS)}")
    cls = SERVERS[SERVER]
    if cls is QemuVnc and not shutil.which(QEMU):
        skip_all(f"{QEMU} is not installed")
    if cls is QiodVnc and not os.access(QIOD, os.X_OK):
        skip_all(f"{QIOD} is not built")
    return cls


def server(**kw):
    """A VncServer of the configured kind, not yet started."""
    return server_class()(**kw)


# --- Xvfb -----------------------------------------------------------------------
class Xvfb:
    """An X server in memory on a free display number (Xvfb -displayfd)."""

    def __init__(self, width=1024, height=768):
        if not shutil.which("Xvfb"):
            skip_all("Xvfb (package xvfb) is not installed")
        self.dir = mkdtemp("vnc-xvfb-")
        r, w = os.pipe()
        self.proc = spawn(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
                           "-nolisten", "tcp", "-nolisten", "local", "-noreset"],
                          pass_fds=(w,), stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "xvfb.log"), "wb"))
        os.close(w)
        number = b""
        deadline = time.time() + 30
        while not number.endswith(b"\n") and time.time() < deadline:
            ready, _, _ = select.select([r], [], [], max(0, deadline - time.time()))
            if not ready:
                break
            chunk = os.read(r, 64)
            if not chunk:
                break
            number += chunk
        os.close(r)
        if not number.strip():
            kill(self.proc)
            with open(os.path.join(self.dir, "xvfb.log"), errors="replace") as f:
                raise RuntimeError("Xvfb did not start: " + f.read())
        self.display = ":" + number.decode().strip()
        self.width, self.height = width, height

    def stop(self):
        kill(self.proc)
