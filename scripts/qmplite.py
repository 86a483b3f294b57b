"""A small QMP client for scripts (the demo, the migration benchmark):
one UNIX-socket connection, events skipped, errors raised.  Works with
qiod and with QEMU."""
import json
import socket
import time


class Qmp:
    def __init__(self, path, connect_timeout=0, timeout=60):
        """Connects to @path, retrying for @connect_timeout seconds while the
        server starts, and negotiates capabilities."""
        deadline = time.time() + connect_timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() >= deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.recv()
        self.cmd("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the monitor closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        """Runs @name and returns its "return" value."""
        self.sock.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            msg = self.recv()
            if "event" in msg:
                continue
            if "error" in msg:
                raise RuntimeError(f"{name}: {msg['error']['desc']}")
            return msg["return"]
