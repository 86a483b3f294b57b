#!/usr/bin/python3
"""The VNC server against TigerVNC's viewer (vncviewer, Debian's
tigervnc-viewer) on an Xvfb display: security types None, VncAuth (a
PasswordFile from vncpasswd; right and wrong), X509None and X509Vnc (the
server's CA given as X509CA; TigerVNC sends no client certificate, so
verify-peer=off), TLSNone, a CA that does not match (refused), and a UNIX
socket; verify-peer=on shuts TigerVNC out (it has no client certificate to
give).  query-vnc must show the client and its auth; the viewer's window,
read back from the X server, must show exactly the server's screendump; keys
typed into the window (XTEST) must reach the guest, and the window must
follow the screen.  Prints TAP."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnctest  # noqa: E402
from vnctest import Image, Tap, image_diff, kill, mkdtemp, spawn, wait_until  # noqa: E402

if not shutil.which("vncviewer"):
    vnctest.skip_all("vncviewer (tigervnc-viewer) is not installed")
if not shutil.which("vncpasswd"):
    vnctest.skip_all("vncpasswd (tigervnc-tools) is not installed")
try:
    from Xlib import X, XK, display, error as xerror
    from Xlib.ext import xtest
except ImportError:
    vnctest.skip_all("python3-xlib is not installed")

t = Tap()
Server = vnctest.server_class()
pki = vnctest.Pki()
xvfb = vnctest.Xvfb()
xdpy = display.Display(xvfb.display)
root = xdpy.screen().root
if not xdpy.has_extension("XTEST"):
    vnctest.skip_all("Xvfb has no XTEST extension")
PASSWORD = "s3cret"


def top_windows():
    """(title, window) of the mapped top-level windows."""
    out = []
    try:
        children = root.query_tree().children
    except xerror.XError:
        return out
    for w in children:
        try:
            if w.get_attributes().map_state == X.IsViewable:
                out.append((w.get_wm_name() or "", w))
        except xerror.XError:
            pass
    return out


class Viewer:
    """vncviewer connected to @srv with -SecurityTypes @security."""

    def __init__(self, srv, security, ca=None, password=None):
        self.dir = mkdtemp("vnc-tigervnc-")
        home = os.path.join(self.dir, "home")
        os.makedirs(home)
        args = ["vncviewer", "-SecurityTypes", security, "-AlertOnFatalError=0",
                "-ReconnectOnError=0", "-Shared", "-RemoteResize=0", "-AutoSelect=0",
                "-PreferredEncoding=ZRLE", "-FullColor", "-geometry", "+0+0",
                "-X509CRL", os.path.join(self.dir, "no-crl.pem")]
        if ca:
            args += ["-X509CA", ca]
        if password is not None:
            pwfile = os.path.join(self.dir, "passwd")
            with open(pwfile, "wb") as f:
                subprocess.run(["vncpasswd", "-f"], input=(password + "\n").encode(), stdout=f,
                               check=True)
            args += ["-PasswordFile", pwfile]
        args.append(srv.path if srv.unix else f"127.0.0.1::{srv.port}")
        self.log_path = os.path.join(self.dir, "viewer.log")
        with open(self.log_path, "wb") as log:
            # HOME: TigerVNC keeps its settings and known certificates there.
            self.proc = spawn(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "DISPLAY": xvfb.display, "HOME": home})

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def window(self, title=None):
        """The desktop window (title "NAME - TigerVNC"), or the window
        titled @title."""
        for name, w in top_windows():
            if (title is None and name.endswith(" - TigerVNC")) or name == title:
                return w
        return None

    def grab(self):
        """What the desktop window shows, as an Image (None if no window)."""
        w = self.window()
        if not w:
            return None
        try:
            g = w.get_geometry()
            img = w.get_image(0, 0, g.width, g.height, X.ZPixmap, 0xffffffff)
        except xerror.XError:
            return None
        return Image.from_xrgb(g.width, g.height, img.data)

    def press(self, window, keysyms):
        window.set_input_focus(X.RevertToParent, X.CurrentTime)
        xdpy.sync()
        for ks in keysyms:
            kc = xdpy.keysym_to_keycode(ks)
            xtest.fake_input(xdpy, X.KeyPress, kc)
            xtest.fake_input(xdpy, X.KeyRelease, kc)
        xdpy.sync()

    def type(self, text):
        syms = [XK.XK_Return if c == "\r" else XK.XK_space if c == " " else XK.string_to_keysym(c)
                for c in text]
        self.press(self.window(), syms)

    def close(self):
        kill(self.proc)


def wait_same(viewer, srv, timeout=30):
    """None once the viewer's window shows the server's screendump exactly
    (TigerVNC overlays a "Press F8" hint for a few seconds after it
    connects, so this may take that long), else the last difference."""
    last = None

    def same():
        nonlocal last
        last = image_diff(viewer.grab(), srv.screendump())
        return last is None
    wait_until(same, timeout, 0.1)
    return last


def connected(label, srv, viewer, auth, vencrypt=None, family="ipv4", typing=True):
    info = srv.wait_clients(1)
    clients = info.get("clients", [])
    t.ok(len(clients) == 1 and clients[0].get("family") == family
         and srv.auth_of(info) == (auth, vencrypt),
         f"{label}: query-vnc shows the viewer, auth {auth}{'/' + vencrypt if vencrypt else ''}",
         f"{info}\n{viewer.log()}")
    w = wait_until(viewer.window, 30, 0.1)
    if not t.ok(w is not None, f"{label}: the viewer opens its desktop window",
                viewer.log() + "\nserver: " + srv.log()):
        return
    before = srv.screendump()
    diff = wait_same(viewer, srv)
    t.ok(diff is None, f"{label}: the window shows the screendump exactly", diff)
    if srv.kind == "qiod":
        sent = [c.get("encoding") for c in srv.query_vnc().get("clients", [])]
        t.ok(sent == ["tight"], f"{label}: qiod sends the viewer Tight", sent)
    if typing:
        viewer.type("echo hello\r")
        ok, diag = srv.typed("echo hello", "hello")
        t.ok(ok, f"{label}: 'echo hello' Return typed in the window reaches the guest", diag)
        diff = wait_same(viewer, srv)
        t.ok(diff is None, f"{label}: the window follows the screen after typing", diff)
        if srv.has_shell:
            got = viewer.grab()
            t.ok(got is not None and srv.screen_shows(got, "echo hello", "hello")
                 and got.rgb != before.rgb, f"{label}: the window shows the echoed 'hello'")
        # Stays connected and keeps receiving what the guest draws.
        time.sleep(1.5)
        if srv.change_screen():
            diff = wait_same(viewer, srv)
            t.ok(diff is None, f"{label}: the window follows what the guest prints", diff)
    info = srv.query_vnc()
    t.ok(viewer.proc.poll() is None and len(info.get("clients", [])) == 1,
         f"{label}: the viewer stays connected", f"{info}\n{viewer.log()}")


def refused(label, srv, viewer, needle, dialog=None):
    """The viewer must give up with @needle in its log; with @dialog, it
    first asks in a window of that title, answered No (Escape)."""
    if dialog:
        w = wait_until(lambda: viewer.window(dialog), 30, 0.1)
        t.ok(w is not None, f"{label}: the viewer asks '{dialog}'",
             f"windows: {[n for n, _ in top_windows()]}\n{viewer.log()}")
        if w:
            viewer.press(w, [XK.XK_Escape])
    try:
        viewer.proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    log = viewer.log()
    t.ok(viewer.proc.poll() is not None and needle in log,
         f"{label}: the viewer gives up: {needle!r}", log)
    t.ok(viewer.window() is None, f"{label}: no desktop window was opened")
    info = srv.wait_clients(0)
    t.ok(info.get("clients") == [] and srv.connections_closed(),
         f"{label}: the server keeps no client and no connection", info)


def run(label, server_kw, viewer_kw, check, *args, **kw):
    srv = Server(**server_kw)
    viewer = None
    try:
        srv.start()
        viewer = Viewer(srv, **viewer_kw)
        check(label, srv, viewer, *args, **kw)
    except Exception as e:  # one broken case must not hide the others
        t.ok(False, f"{label}: ran without an exception",
             repr(e) + "\n" + (viewer.log() if viewer else ""))
    finally:
        if viewer:
            viewer.close()
        srv.stop()


run("None", {}, {"security": "None"}, connected, "none")
run("VncAuth", {"password": PASSWORD}, {"security": "VncAuth", "password": PASSWORD},
    connected, "vnc", typing=False)
run("VncAuth, wrong password", {"password": PASSWORD},
    {"security": "VncAuth", "password": "guess"}, refused, "Authentication failure")
run("X509None", {"tls": "x509", "pki": pki}, {"security": "X509None", "ca": pki.ca},
    connected, "vencrypt", "x509-none")
run("X509Vnc", {"tls": "x509", "pki": pki, "password": PASSWORD},
    {"security": "X509Vnc", "ca": pki.ca, "password": PASSWORD},
    connected, "vencrypt", "x509-vnc", typing=False)
run("X509None, another CA", {"tls": "x509", "pki": pki},
    {"security": "X509None", "ca": pki.evil_ca}, refused,
    "Authentication failure: Unknown certificate issuer", dialog="Unknown certificate issuer")
# TigerVNC has no client certificate to give, so verify-peer=on shuts it out
# in the TLS handshake.
run("X509None, verify-peer=on", {"tls": "x509", "pki": pki, "verify_peer": True},
    {"security": "X509None", "ca": pki.ca}, refused, "readTLS: ")
run("TLSNone", {"tls": "anon"}, {"security": "TLSNone"}, connected, "vencrypt", "tls-none",
    typing=False)
run("UNIX socket", {"unix": True}, {"security": "None"}, connected, "none", family="unix",
    typing=False)
xdpy.close()
xvfb.stop()
t.done()
