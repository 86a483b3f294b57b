#!/usr/bin/python3
"""The VNC server against gtk-vnc (GVnc-1.0 through GObject introspection,
Debian's gir1.2-gtk-vnc-2.0): no auth, VNC password (right, wrong, changed
by set_password), VeNCrypt x509 with and without a password (client
certificate checked, a wrong CA and an untrusted client refused), SASL
(SCRAM/DIGEST-MD5 users in a sasldb; plain and inside VeNCrypt x509),
VeNCrypt anonymous TLS, and a UNIX socket.  Each client reads the whole
framebuffer back and compares it with the server's screendump, and types
"echo hello" Return.  gtk-vnc has no websocket transport (noVNC covers
that).  Prints TAP.

gtk-vnc runs in a child process (this script with --client): it looks for
its x509 files under the passwd entry's home, ~/.pki, so the child gets a
passwd of its own through nss_wrapper (libnss-wrapper) pointing home at a
temporary directory."""
import ctypes.util
import glob
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnctest  # noqa: E402
from vnctest import Image, Tap, image_diff, keys_for, mkdtemp, read_ppm, spawn, kill  # noqa: E402

CLIENT_NAME = "qio-vnc-test"  # gtk-vnc's x509 "client name": ~/.pki/<name>/


# --- the child: one gtk-vnc connection driven over stdin/stdout ------------------
def client_main(cfg):
    import gi
    gi.require_version("GVnc", "1.0")
    from gi.repository import Gio, GLib, GObject, GVnc

    loop = GLib.MainLoop()
    conn = GVnc.Connection.new()
    st = {"w": 0, "h": 0, "buf": None, "fb": None, "init": False, "updates": 0}

    def emit(ev, **kw):
        sys.stdout.write(json.dumps({"ev": ev, **kw}) + "\n")
        sys.stdout.flush()

    fmt = GVnc.PixelFormat.new()
    fmt.bits_per_pixel, fmt.depth, fmt.true_color_flag = 32, 24, 1
    fmt.byte_order = 1234 if sys.byteorder == "little" else 4321
    fmt.red_max = fmt.green_max = fmt.blue_max = 255
    fmt.red_shift, fmt.green_shift, fmt.blue_shift = 16, 8, 0
    capsule_new = ctypes.pythonapi.PyCapsule_New
    capsule_new.restype = ctypes.py_object
    capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]

    def make_framebuffer(w, h):
        # gtk-vnc draws into memory the caller owns: a ctypes buffer, its
        # address passed as the "buffer" pointer property.
        buf = ctypes.create_string_buffer(w * h * 4)
        pointer = capsule_new(ctypes.addressof(buf), None, None)
        fb = GObject.new(GVnc.BaseFramebuffer, buffer=pointer, width=w, height=h, rowstride=w * 4,
                         local_format=fmt, remote_format=fmt)
        st.update(w=w, h=h, buf=buf, fb=fb)
        conn.set_framebuffer(fb)

    class GValue(ctypes.Structure):
        _fields_ = [("g_type", ctypes.c_size_t), ("data", ctypes.c_uint64 * 2)]

    class GValueArray(ctypes.Structure):
        _fields_ = [("n_values", ctypes.c_uint), ("values", ctypes.POINTER(GValue)),
                    ("n_prealloced", ctypes.c_uint)]

    def ints(array):
        """The enums or uints in a GValueArray signal argument.  PyGObject
        cannot hand out its GValues (enum GValues are "const"), but a boxed
        value's hash() is its C address, so read the array there."""
        a = GValueArray.from_address(hash(array) & (2 ** 64 - 1))
        assert a.n_values == array.n_values
        return [int(a.values[i].data[0] & 0xffffffff) for i in range(a.n_values)]

    def on_choose_type(c, types):
        types = ints(types)
        emit("auth-types", types=types)
        for want in cfg.get("prefer", [19, 20, 2, 1]):
            if want in types:
                c.set_auth_type(want)
                return
        c.set_auth_type(types[0])

    def on_choose_subtype(c, typ, subtypes):
        subtypes = ints(subtypes)
        emit("auth-subtypes", type=int(typ), subtypes=subtypes)
        for want in (263, 264, 261, 258, 260, 257):
            if want in subtypes:
                c.set_auth_subtype(want)
                return
        c.set_auth_subtype(subtypes[0])

    def on_credential(c, creds):
        creds = ints(creds)
        emit("auth-credential", creds=creds)
        values = {0: cfg.get("password"), 1: cfg.get("username"), 2: cfg.get("clientname")}
        for cred in creds:
            if values.get(cred) is None or not c.set_credential(cred, values[cred]):
                emit("error", message=f"cannot answer credential {cred}")
                c.shutdown()
                return

    def on_initialized(c):
        w, h = c.get_width(), c.get_height()
        make_framebuffer(w, h)
        c.set_pixel_format(fmt)
        E = GVnc.ConnectionEncoding
        first = [E.TIGHT] if cfg.get("tight") else []
        c.set_encodings([int(e) for e in first + [E.ZRLE, E.HEXTILE, E.RRE, E.COPY_RECT, E.RAW,
                                                  E.DESKTOP_RESIZE, E.EXT_KEY_EVENT]])
        c.framebuffer_update_request(False, 0, 0, w, h)
        st["init"] = True
        emit("initialized", width=w, height=h, name=c.get_name())

    def on_resize(c, w, h):
        make_framebuffer(w, h)
        c.framebuffer_update_request(False, 0, 0, w, h)
        emit("resize", width=w, height=h)

    def on_update(c, x, y, w, h):
        st["updates"] += 1

    def on_disconnected(c):
        emit("disconnected")
        loop.quit()

    conn.connect("vnc-auth-choose-type", on_choose_type)
    conn.connect("vnc-auth-choose-subtype", on_choose_subtype)
    conn.connect("vnc-auth-credential", on_credential)
    conn.connect("vnc-auth-failure", lambda c, reason: emit("auth-failure", reason=reason))
    conn.connect("vnc-auth-unsupported", lambda c, t: emit("auth-unsupported", type=int(t)))
    conn.connect("vnc-connected", lambda c: emit("connected"))
    conn.connect("vnc-initialized", on_initialized)
    conn.connect("vnc-desktop-resize", on_resize)
    conn.connect("vnc-framebuffer-update", on_update)
    conn.connect("vnc-error", lambda c, msg: emit("error", message=msg))
    conn.connect("vnc-disconnected", on_disconnected)

    def poll_updates():
        # A viewer keeps asking for what changed.
        if st["init"] and conn.is_open():
            conn.framebuffer_update_request(True, 0, 0, st["w"], st["h"])
        return True
    GLib.timeout_add(100, poll_updates)

    def on_command(channel, cond):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return False
        cmd = json.loads(line)
        if cmd["cmd"] == "dump":
            if not st["init"]:
                emit("dumped", ok=False)
            else:
                img = Image.from_xrgb(st["w"], st["h"], st["buf"].raw)
                img.save_ppm(cmd["path"])
                emit("dumped", ok=True, updates=st["updates"])
        elif cmd["cmd"] == "refresh":
            conn.framebuffer_update_request(False, 0, 0, st["w"], st["h"])
            emit("refreshed")
        elif cmd["cmd"] == "keys":
            for sym, scancode in cmd["keys"]:
                conn.key_event(True, sym, scancode)
                conn.key_event(False, sym, scancode)
            emit("typed")
        elif cmd["cmd"] == "quit":
            conn.shutdown()
            loop.quit()
            return False
        return True
    GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, on_command)

    if cfg.get("unix"):
        ok = conn.open_addr(Gio.UnixSocketAddress.new(cfg["unix"]), None)
    else:
        ok = conn.open_host("127.0.0.1", str(cfg["port"]))
    if not ok:
        emit("error", message="open failed")
        return
    loop.run()


if len(sys.argv) == 3 and sys.argv[1] == "--client":
    client_main(json.loads(sys.argv[2]))
    sys.exit(0)


# --- the test -------------------------------------------------------------------
try:
    import gi
    gi.require_version("GVnc", "1.0")
    from gi.repository import GVnc  # noqa: F401
except (ImportError, ValueError) as e:
    vnctest.skip_all("gtk-vnc's GVnc-1.0 typelib (gir1.2-gtk-vnc-2.0) or python3-gi "
                     f"is missing: {e}")


def find_nss_wrapper():
    """libnss_wrapper.so (Debian ships it without a soname link in the
    ldconfig cache, so look in the library directories)."""
    found = ctypes.util.find_library("nss_wrapper")
    if found:
        return found
    for pattern in ("/usr/lib/*/libnss_wrapper.so*", "/usr/lib/libnss_wrapper.so*",
                    "/usr/lib64/libnss_wrapper.so*"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


NSS_WRAPPER = find_nss_wrapper()
TERMINAL = ("error", "auth-failure", "auth-unsupported", "disconnected")


class GvncClient:
    """A gtk-vnc child connected to @srv.  @pki_files: {"ca": path,
    "cert": path, "key": path} put where gtk-vnc looks for them."""

    def __init__(self, srv, password=None, username=None, pki_files=None, tight=True):
        self.dir = mkdtemp("vnc-gtkvnc-")
        cfg = {"password": password, "username": username, "clientname": CLIENT_NAME,
               "tight": tight}
        if srv.unix:
            cfg["unix"] = srv.path
        else:
            cfg["port"] = srv.port
        env = dict(os.environ)
        home = os.path.join(self.dir, "home")
        os.makedirs(home)
        env["HOME"] = home
        if pki_files:
            pki = os.path.join(home, ".pki")
            for src, dst in ((pki_files.get("ca"), "CA/cacert.pem"),
                             (pki_files.get("cert"), f"{CLIENT_NAME}/clientcert.pem"),
                             (pki_files.get("key"), f"{CLIENT_NAME}/private/clientkey.pem")):
                if src:
                    os.makedirs(os.path.dirname(os.path.join(pki, dst)), exist_ok=True)
                    with open(src, "rb") as i, open(os.path.join(pki, dst), "wb") as o:
                        o.write(i.read())
            me = pwd.getpwuid(os.getuid())
            with open(os.path.join(self.dir, "passwd"), "w") as f:
                f.write(f"{me.pw_name}:x:{me.pw_uid}:{me.pw_gid}:qio test:{home}:/bin/sh\n")
            with open(os.path.join(self.dir, "group"), "w") as f:
                f.write(f"{me.pw_name}:x:{me.pw_gid}:\n")
            env.update(LD_PRELOAD=NSS_WRAPPER, NSS_WRAPPER_PASSWD=os.path.join(self.dir, "passwd"),
                       NSS_WRAPPER_GROUP=os.path.join(self.dir, "group"))
        self.stderr_path = os.path.join(self.dir, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = spawn([sys.executable, os.path.abspath(__file__), "--client",
                               json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=err, env=env)
        self.buf = b""
        self.events = []
        self.seen = []
        self.dumps = 0

    def _read(self, timeout):
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0, timeout))
        if not ready:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            ev = json.loads(line)
            self.events.append(ev)
            self.seen.append(ev)
        return True

    def wait(self, names, timeout=30):
        """The next event named in @names, or a terminal one (error,
        auth-failure, ...), or None after @timeout s or at the child's end."""
        deadline = time.time() + timeout
        while True:
            while self.events:
                ev = self.events.pop(0)
                if ev["ev"] in names or ev["ev"] in TERMINAL:
                    return ev
            left = deadline - time.time()
            if left <= 0 or self._read(left) is None:
                return None

    def seen_names(self):
        return [e["ev"] for e in self.seen]

    def history(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                err = f.read().strip()
        except OSError:
            err = ""
        return f"events: {self.seen}" + (f"\nstderr: {err}" if err else "")

    def send(self, cmd):
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        self.proc.stdin.flush()

    def dump(self):
        self.dumps += 1
        path = os.path.join(self.dir, f"fb{self.dumps}.ppm")
        self.send({"cmd": "dump", "path": path})
        ev = self.wait(["dumped"], 20)
        if not ev or ev["ev"] != "dumped" or not ev["ok"]:
            return None
        img = read_ppm(path)
        os.unlink(path)
        return img

    def type(self, text):
        self.send({"cmd": "keys", "keys": keys_for(text)})
        return self.wait(["typed"], 20)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill(self.proc)


def wait_same(cli, srv, timeout=20):
    """None once the client's framebuffer equals the server's screendump,
    else the last difference after @timeout s."""
    deadline = time.time() + timeout
    while True:
        want = srv.screendump()
        got = cli.dump()
        diff = image_diff(got, want)
        if diff is None or time.time() >= deadline:
            return diff
        time.sleep(0.1)


t = Tap()
Server = vnctest.server_class()
pki = vnctest.Pki()
PASSWORD = "s3cret"


def session(label, srv, cli, types, subtypes=None, auth="none", vencrypt=None, dname=None,
            family="ipv4", typing=True, sasl_user=None, encoding="tight"):
    """Checks a connection that must succeed: offered security types,
    initialization, framebuffer contents, query-vnc (with qiod, the
    @encoding gtk-vnc gets), and typing."""
    ev = cli.wait(["initialized"], 30)
    if not t.ok(ev is not None and ev["ev"] == "initialized", f"{label}: gtk-vnc connects",
                cli.history() + "\nserver: " + srv.log()):
        return
    offered = [e for e in cli.seen if e["ev"] == "auth-types"]
    t.ok(offered and offered[0]["types"] == types,
         f"{label}: security types offered are {types}", cli.history())
    if subtypes is not None:
        sub = [e for e in cli.seen if e["ev"] == "auth-subtypes"]
        t.ok(sub and sub[0]["subtypes"] == subtypes,
             f"{label}: VeNCrypt subtypes offered are {subtypes}", cli.history())
    before = srv.screendump()
    t.ok((ev["width"], ev["height"]) == (before.width, before.height),
         f"{label}: desktop size {ev['width']}x{ev['height']} is the screen's", before.width)
    diff = wait_same(cli, srv)
    t.ok(diff is None, f"{label}: gtk-vnc's framebuffer equals the screendump", diff)
    info = srv.query_vnc()
    clients = info.get("clients", [])
    good = (srv.auth_of(info) == (auth, vencrypt) and len(clients) == 1
            and clients[0].get("family") == family and clients[0].get("websocket") is False)
    if dname:
        good = good and clients and clients[0].get("x509_dname") == dname
    if sasl_user:
        good = good and clients and clients[0].get("sasl_username") == sasl_user
    if srv.kind == "qiod":
        good = good and clients and clients[0].get("encoding") == encoding
    who = " " + (dname or "") + (sasl_user or "") if dname or sasl_user else ""
    t.ok(good, f"{label}: query-vnc shows auth {auth}{'/' + vencrypt if vencrypt else ''}"
         f" and the client{who}" + (f", in {encoding}" if srv.kind == "qiod" else ""), info)
    if not typing:
        return
    cli.type("echo hello\r")
    ok, diag = srv.typed("echo hello", "hello")
    t.ok(ok, f"{label}: typing 'echo hello' Return reaches the guest", diag)
    diff = wait_same(cli, srv)
    after = srv.screendump()
    t.ok(diff is None, f"{label}: the framebuffer follows the screen after typing", diff)
    if srv.has_shell:
        got = cli.dump()
        t.ok(got is not None and srv.screen_shows(got, "echo hello", "hello")
             and got.rgb != before.rgb, f"{label}: gtk-vnc shows the echoed 'hello'")
    elif ok:
        t.ok(image_diff(after, before) is None, f"{label}: the screen (no guest) stays as it was")


def refused(label, srv, cli, expect, needle):
    """Checks a connection that must fail with event @expect whose text
    contains @needle (case-insensitive), and that the server drops it."""
    # gtk-vnc reports a refusal as "error" and/or "auth-failure", then
    # "disconnected": collect everything up to the end.
    deadline = time.time() + 30
    while "disconnected" not in cli.seen_names() and time.time() < deadline:
        if cli.wait(["disconnected", "initialized"], deadline - time.time()) is None:
            break
    ev = next((e for e in cli.seen if e["ev"] == expect), None)
    text = (ev or {}).get("reason") or (ev or {}).get("message") or ""
    t.ok(ev is not None and needle.lower() in text.lower()
         and "initialized" not in cli.seen_names(),
         f"{label}: refused, gtk-vnc reports {expect} ({text or '-'})",
         cli.history() + "\nserver: " + srv.log())
    info = srv.wait_clients(0)
    t.ok(info.get("clients") == [] and srv.connections_closed(),
         f"{label}: the server keeps no client and no connection", info)


def run(label, server_kw, client_kw, check, *args, **kw):
    srv = Server(**server_kw)
    cli = None
    try:
        srv.start()
        cli = GvncClient(srv, **client_kw)
        check(label, srv, cli, *args, **kw)
    except Exception as e:  # one broken case must not hide the others
        t.ok(False, f"{label}: ran without an exception", repr(e) + "\n" +
             (cli.history() if cli else ""))
    finally:
        if cli:
            cli.close()
        srv.stop()


run("no auth", {}, {}, session, [1])
run("no auth, gtk-vnc without Tight", {}, {"tight": False}, session, [1], encoding="raw")
run("VNC password", {"password": PASSWORD}, {"password": PASSWORD}, session, [2], auth="vnc",
    typing=False)
run("wrong VNC password", {"password": PASSWORD}, {"password": "guess"}, refused,
    "auth-failure", "")


def changed_password(label, srv, cli):
    """set_password replaces the password: the old one is refused, the new
    one accepted."""
    r = srv.qmp.cmd("set_password", {"protocol": "vnc", "password": "n3w-pw"})
    t.ok(r == {"return": {}}, f"{label}: set_password", r)
    cli.close()
    old = GvncClient(srv, password=PASSWORD)
    refused(f"{label}, old password", srv, old, "auth-failure", "")
    old.close()
    new = GvncClient(srv, password="n3w-pw")
    session(f"{label}, new password", srv, new, [2], auth="vnc", typing=False)
    new.close()


run("set_password", {"password": PASSWORD}, {"password": PASSWORD}, changed_password)

if not NSS_WRAPPER:
    t.ok(True, "VeNCrypt x509 # SKIP libnss_wrapper (libnss-wrapper) is not installed: gtk-vnc "
         "reads its certificates under the passwd home only")
else:
    good = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}
    run("VeNCrypt x509, client certificate", {"tls": "x509", "verify_peer": True, "pki": pki},
        {"pki_files": good}, session, [19], [260], auth="vencrypt", vencrypt="x509-none",
        dname=pki.client_dname)
    run("VeNCrypt x509 + VNC password", {"tls": "x509", "password": PASSWORD, "pki": pki},
        {"pki_files": good, "password": PASSWORD}, session, [19], [261], auth="vencrypt",
        vencrypt="x509-vnc", typing=False)
    run("VeNCrypt x509, client trusts another CA", {"tls": "x509", "pki": pki},
        {"pki_files": {"ca": pki.evil_ca, "cert": pki.client_cert, "key": pki.client_key}},
        refused, "error", "certificate")
    run("VeNCrypt x509, client certificate from an untrusted CA",
        {"tls": "x509", "verify_peer": True, "pki": pki},
        {"pki_files": {"ca": pki.ca, "cert": pki.evil_cert, "key": pki.evil_key}},
        refused, "error", "")
SASL_USERS = {"alice": "w0nderland"}
if not shutil.which("saslpasswd2"):
    t.ok(True, "SASL # SKIP saslpasswd2 (sasl2-bin) is not installed")
else:
    run("SASL", {"sasl_users": SASL_USERS}, {"username": "alice", "password": "w0nderland"},
        session, [20], auth="sasl", sasl_user="alice", typing=False)
    run("SASL, wrong password", {"sasl_users": SASL_USERS},
        {"username": "alice", "password": "guess"}, refused, "auth-failure", "")
    if NSS_WRAPPER:
        run("VeNCrypt x509 + SASL", {"tls": "x509", "pki": pki, "sasl_users": SASL_USERS},
            {"pki_files": good, "username": "alice", "password": "w0nderland"}, session, [19],
            [263], auth="vencrypt", vencrypt="x509-sasl", sasl_user="alice", typing=False)
run("VeNCrypt anonymous TLS", {"tls": "anon"}, {}, session, [19], [257], auth="vencrypt",
    vencrypt="tls-none")
run("UNIX socket", {"unix": True}, {}, session, [1], family="unix", typing=False)
t.ok(True, "websocket # SKIP gtk-vnc has no websocket transport (see test-vnc-novnc.py)")
t.done()
