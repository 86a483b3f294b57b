"""Helpers for the chardev tests: a certtool-made PKI, TCP ports, reading
with a deadline, and a gnutls-cli client driven through pipes."""
import os
import random
import select
import socket
import subprocess
import time

GUEST_PROMPT = b"guest> "


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, check=True, **kw)


class Pki:
    """CA, server (localhost, 127.0.0.1) and client certificates, a
    client certificate from an untrusted CA, an expired client
    certificate, and a PSK file; laid out as qio credential dirs."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._ca("ca")
        self._ca("evil")
        self._leaf("ca", "server", "tls_www_server")
        self._leaf("ca", "client", "tls_www_client")
        self._leaf("ca", "mallory", "tls_www_client")
        self._leaf("evil", "evilclient", "tls_www_client")
        self._leaf("ca", "oldclient", "tls_www_client",
                   'activation_date = "2020-01-01 00:00:00 UTC"\n'
                   'expiration_date = "2021-01-01 00:00:00 UTC"\n')
        self.server_dir = self._dir("srv", "ca", server="server")
        self.client_dir = self._dir("cli", "ca", client="client")
        self.psk_dir = os.path.join(root, "psk")
        os.makedirs(self.psk_dir, exist_ok=True)
        run(["psktool", "-u", "qemu", "-p", os.path.join(self.psk_dir, "keys.psk")])
        with open(os.path.join(self.psk_dir, "keys.psk")) as f:
            self.psk_key = f.read().split(":", 1)[1].strip()

    def path(self, name):
        return os.path.join(self.root, name)

    def _ca(self, name):
        run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile",
             self.path(f"{name}-key.pem")])
        with open(self.path(f"{name}.info"), "w") as f:
            f.write(f'cn = "{name} CA"\nca\ncert_signing_key\nexpiration_days = 30\n')
        run(["certtool", "--generate-self-signed", "--load-privkey", self.path(f"{name}-key.pem"),
             "--template", self.path(f"{name}.info"), "--outfile", self.path(f"{name}-cert.pem")])

    def _leaf(self, ca, name, purpose, dates='expiration_days = 30\n'):
        run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile",
             self.path(f"{name}-key.pem")])
        with open(self.path(f"{name}.info"), "w") as f:
            f.write(f'cn = "{name}"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                    f'{purpose}\nsigning_key\nencryption_key\n{dates}')
        run(["certtool", "--generate-certificate", "--load-privkey", self.path(f"{name}-key.pem"),
             "--load-ca-certificate", self.path(f"{ca}-cert.pem"), "--load-ca-privkey",
             self.path(f"{ca}-key.pem"), "--template", self.path(f"{name}.info"),
             "--outfile", self.path(f"{name}-cert.pem")])

    def _dir(self, name, ca, server=None, client=None):
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        os.link(self.path(f"{ca}-cert.pem"), os.path.join(d, "ca-cert.pem"))
        for role, leaf in (("server", server), ("client", client)):
            if leaf:
                os.link(self.path(f"{leaf}-cert.pem"), os.path.join(d, f"{role}-cert.pem"))
                os.link(self.path(f"{leaf}-key.pem"), os.path.join(d, f"{role}-key.pem"))
        return d


def free_port():
    """A free port below the ephemeral range, so that a client retrying
    it cannot be given the same port for itself."""
    while True:
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()


def read_until(fileobj_or_sock, needle, timeout=10):
    """Reads from a socket or a pipe until @needle appears; returns all
    bytes read (possibly without @needle on timeout or end of file)."""
    data = b""
    deadline = time.time() + timeout
    fd = fileobj_or_sock.fileno()
    while needle not in data:
        left = deadline - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        chunk = os.read(fd, 65536) if not isinstance(fileobj_or_sock, socket.socket) \
            else fileobj_or_sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def chardev_port(qmp, label):
    for c in qmp.cmd("query-chardev")["return"]:
        if c["label"] == label:
            return int(c["filename"].split(",")[0].rsplit(":", 1)[1])
    raise KeyError(label)


def chardev_info(qmp, label):
    for c in qmp.cmd("query-chardev")["return"]:
        if c["label"] == label:
            return c
    return None


def wait_connected(qmp, label, want=True, timeout=15):
    """query-chardev's entry for @label once "connected" is @want (or the
    last one seen after @timeout seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = chardev_info(qmp, label)
        if info and info.get("connected") == want:
            return info
        time.sleep(0.05)
    return chardev_info(qmp, label)


class GnutlsCli:
    """gnutls-cli connected to 127.0.0.1:@port; send() and read_until()."""

    def __init__(self, port, *args):
        self.proc = subprocess.Popen(
            ["gnutls-cli", "--port", str(port), *args, "localhost"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, needle, timeout=10):
        return read_until(self.proc.stdout, needle, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        return out
