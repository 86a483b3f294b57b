#!/usr/bin/python3
"""The VNC server's websocket listener against noVNC (Debian's novnc) in
headless Chromium driven by Selenium: ws:// with a VNC password (right and
wrong) and wss:// (tls-creds x509, verify-peer=off) with the test CA
trusted through an NSS database in Chromium's home, and refused when the
server's certificate comes from a CA Chromium does not trust.  The canvas
is read back and compared with the server's screendump; keys typed in the
page must reach the guest and the canvas must follow.  noVNC and the page
(vnc-novnc.html) come from an http.server on 127.0.0.1.  Prints TAP."""
import base64
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vnctest  # noqa: E402
from vnctest import Image, Tap, image_diff, mkdtemp, spawn, wait_until  # noqa: E402

NOVNC = "/usr/share/novnc"
HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = "vnc-novnc.html"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not os.path.exists(os.path.join(NOVNC, "core", "rfb.js")):
    vnctest.skip_all("noVNC (package novnc) is not installed")
if not CHROMIUM or not CHROMEDRIVER:
    vnctest.skip_all("chromium and chromium-driver are not installed")
try:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
except ImportError:
    vnctest.skip_all("python3-selenium is not installed")


class Files(http.server.SimpleHTTPRequestHandler):
    """/novnc/... from the novnc package, /vnc-novnc.html from here."""

    def translate_path(self, path):
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path == "/" + PAGE:
            return os.path.join(HERE, PAGE)
        if path.startswith("/novnc/"):
            return super().translate_path(path[len("/novnc"):])
        return os.path.join(NOVNC, "does-not-exist")

    def log_message(self, *args):
        pass


t = Tap()
Server = vnctest.server_class()
pki = vnctest.Pki()
PASSWORD = "s3cret"

httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                        functools.partial(Files, directory=NOVNC))
threading.Thread(target=httpd.serve_forever, daemon=True).start()
BASE = f"http://127.0.0.1:{httpd.server_address[1]}/{PAGE}"

# Chromium's home: its NSS database trusts the test CA, so wss:// to a
# server with a certificate from that CA works without switching checks off.
home = mkdtemp("vnc-chromium-")
nssdb = os.path.join(home, ".pki", "nssdb")
os.makedirs(nssdb)
nss_trust = None
if shutil.which("certutil"):
    r1 = subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"],
                        capture_output=True, text=True)
    r2 = subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "qio test CA",
                         "-i", pki.ca], capture_output=True, text=True)
    nss_trust = r1.returncode == 0 and r2.returncode == 0
    t.ok(nss_trust, "the test CA goes into Chromium's NSS database", r1.stderr + r2.stderr)

driver_port = vnctest.free_ports(1)[0]
driver_log = os.path.join(home, "chromedriver.log")
driver_proc = spawn([CHROMEDRIVER, f"--port={driver_port}", f"--log-path={driver_log}"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env={**os.environ, "HOME": home})
if not wait_until(lambda: vnctest.tcp_listening(driver_port) or driver_proc.poll() is not None,
                  30) or driver_proc.poll() is not None:
    raise SystemExit("chromedriver did not start")
opts = webdriver.ChromeOptions()
opts.binary_location = CHROMIUM
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={os.path.join(home, 'profile')}", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--no-pings", "--window-size=1024,768",
            # Nothing but the loopback: any other name resolves to nothing.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
    opts.add_argument(arg)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{driver_port}", options=opts)
driver.set_script_timeout(30)


def page_state():
    return driver.execute_script("return window.vnc ? window.vnc.state : 'loading'")


def page_events():
    return driver.execute_script("return window.vnc ? window.vnc.events : []")


def canvas():
    r = driver.execute_script("return window.vnc.pixels()")
    img = Image(r["width"], r["height"], base64.b64decode(r["rgb"]))
    img.transparent = r["transparent"]
    return img


def browser_log():
    """The console messages since the last call (Chromium's own network
    errors among them)."""
    return [e.get("message", "") for e in driver.get_log("browser")]


def open_page(url, password=None):
    browser_log()
    q = f"?url={url}" + (f"&password={password}" if password is not None else "")
    driver.get(BASE + q)


def wait_state(states, timeout=30):
    return wait_until(lambda: page_state() in states and page_state(), timeout, 0.1)


def wait_same(srv, timeout=30):
    last = None

    def same():
        nonlocal last
        got = canvas()
        last = image_diff(got, srv.screendump())
        if last and got.transparent:
            # noVNC 1.3.0's Raw decoder makes pixels opaque at the wrong
            # offset in its receive queue, so the last pixels of a Raw
            # rectangle keep the alpha the server sent in the pixel's
            # unused byte: a server that sends 0 there leaves them see-through.
            last += (f"; {got.transparent} canvas pixels are not opaque (noVNC 1.3.0's Raw "
                     "decoder keeps the unused byte of the rectangle's last pixels as alpha)")
        return last is None
    wait_until(same, timeout, 0.1)
    return last


def connected(label, srv, auth, vencrypt=None):
    state = wait_state(("connected", "disconnected"))
    if not t.ok(state == "connected", f"{label}: noVNC connects",
                f"state {state}, events {page_events()}\nserver: {srv.log()}"):
        return
    creds = [e for e in page_events() if e["ev"] == "credentialsrequired"]
    t.ok(len(creds) == 1 and creds[0]["detail"]["types"] == ["password"],
         f"{label}: noVNC was asked for the password only", page_events())
    info = srv.wait_clients(1)
    clients = info.get("clients", [])
    t.ok(len(clients) == 1 and clients[0].get("websocket") is True
         and srv.auth_of(info) == (auth, vencrypt),
         f"{label}: query-vnc shows a websocket client, auth {auth}"
         f"{'/' + vencrypt if vencrypt else ''}", info)
    before = srv.screendump()
    diff = wait_same(srv)
    t.ok(diff is None, f"{label}: the canvas equals the screendump", diff)
    if srv.kind == "qiod":
        sent = [c.get("encoding") for c in srv.query_vnc().get("clients", [])]
        t.ok(sent == ["tight"], f"{label}: qiod sends the viewer Tight", sent)
    driver.execute_script("window.vnc.rfb.focus()")
    ActionChains(driver).send_keys("echo hello" + Keys.ENTER).perform()
    ok, diag = srv.typed("echo hello", "hello")
    t.ok(ok, f"{label}: 'echo hello' Enter typed in the page reaches the guest", diag)
    diff = wait_same(srv)
    t.ok(diff is None, f"{label}: the canvas follows the screen after typing", diff)
    if srv.has_shell:
        got = canvas()
        t.ok(srv.screen_shows(got, "echo hello", "hello") and got.rgb != before.rgb,
             f"{label}: the canvas shows the echoed 'hello'")


def wrong_password(label, srv):
    state = wait_state(("connected", "disconnected"))
    fail = [e for e in page_events() if e["ev"] == "securityfailure"]
    t.ok(state == "disconnected" and fail and fail[0]["detail"]["status"] == 1,
         f"{label}: noVNC reports a security failure "
         f"({fail[0]['detail'].get('reason') if fail else '-'})", page_events())
    info = srv.wait_clients(0)
    t.ok(info.get("clients") == [] and srv.connections_closed(),
         f"{label}: the server keeps no client and no connection", info)


def untrusted(label, srv):
    state = wait_state(("connected", "disconnected"))
    events = page_events()
    log = browser_log()
    t.ok(state == "disconnected" and not any(e["ev"] == "connect" for e in events)
         and any(e["ev"] == "disconnect" and not e["detail"]["clean"] for e in events)
         and any("ERR_CERT_AUTHORITY_INVALID" in m for m in log),
         f"{label}: Chromium refuses the server's certificate (ERR_CERT_AUTHORITY_INVALID), "
         "noVNC never connects", f"events {events}\nconsole {log}")
    info = srv.wait_clients(0)
    t.ok(info.get("clients") == [] and srv.connections_closed(),
         f"{label}: the server keeps no client and no connection", info)


def run(label, server_kw, scheme, password, check, *args):
    srv = Server(websocket=True, **server_kw)
    try:
        srv.start()
        if scheme == "wss" and srv.tls_asks_client_cert:
            # A page load settles "no client certificate" for the port.
            driver.get(f"https://127.0.0.1:{srv.ws_port}/")
        open_page(f"{scheme}://127.0.0.1:{srv.ws_port}", password)
        check(label, srv, *args)
    except Exception as e:  # one broken case must not hide the others
        t.ok(False, f"{label}: ran without an exception", repr(e))
    finally:
        try:
            driver.get("about:blank")
        except Exception:
            pass
        srv.stop()


try:
    run("ws://, VNC password", {"password": PASSWORD}, "ws", PASSWORD, connected, "vnc")
    run("ws://, wrong password", {"password": PASSWORD}, "ws", "guess", wrong_password)
    if not nss_trust:
        t.ok(True, "wss:// # SKIP certutil (libnss3-tools) is missing or failed: no NSS database")
    else:
        run("wss://, VNC password", {"password": PASSWORD, "tls": "x509", "pki": pki}, "wss",
            PASSWORD, connected, "vencrypt", "x509-vnc")
        run("wss://, certificate from an untrusted CA",
            {"password": PASSWORD, "tls": "x509", "pki": pki, "creds_dir": pki.evil_srv}, "wss",
            PASSWORD, untrusted)
finally:
    try:
        driver.quit()
    except Exception:
        pass
    vnctest.kill(driver_proc)
    httpd.shutdown()
t.done()
