#!/usr/bin/python3
"""qio's websocket server against python3-websockets (the Debian package)
as the client, and against raw malformed handshakes.  Prints TAP."""
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile

import websockets

BUILDDIR = os.environ.get("QIO_BUILDDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SERVER = os.path.join(BUILDDIR, "tests", "functional", "websock-echo-server")
CLIENT = os.path.join(BUILDDIR, "tests", "functional", "websock-client")

results = []


def check(ok, name, detail=""):
    results.append(ok)
    print(("ok" if ok else "not ok") + f" {len(results)} - {name}", flush=True)
    if not ok and detail:
        for line in str(detail).splitlines():
            print(f"# {line}", flush=True)


async def echo(ws, message, expect):
    """Sends one message; the byte-stream server may answer in several."""
    await ws.send(message)
    got = b""
    while len(got) < len(expect):
        reply = await asyncio.wait_for(ws.recv(), 30)
        got += reply if isinstance(reply, bytes) else reply.encode()
    return got == expect


async def run_clients(url):
    for protocols, name in ((None, "no subprotocol"), (["binary"], "binary subprotocol")):
        try:
            async with websockets.connect(url, subprotocols=protocols, max_size=None) as ws:
                want = "binary" if protocols else None
                check(ws.subprotocol == want, f"handshake with {name}",
                      f"subprotocol {ws.subprotocol!r}")
                check(await echo(ws, "héllo wörld", "héllo wörld".encode()),
                      f"text frame echoed ({name})")
                data = bytes(range(256)) * 10
                check(await echo(ws, data, data), f"binary frame echoed ({name})")
                big = os.urandom(3 * 1024 * 1024)
                check(await echo(ws, big, big), f"3 MiB message echoed ({name})")
                parts = [b"frag", b"ment", b"ed"]
                check(await echo(ws, parts, b"fragmented"),
                      f"fragmented message echoed ({name})")
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 10)
                check(True, f"ping answered with pong ({name})")
                await ws.close()
                check(ws.close_code == 1000, f"close echoed with 1000 ({name})",
                      f"close code {ws.close_code}")
        except Exception as e:  # a failed step must not hide the others
            check(False, f"session with {name}", repr(e))

    # Without compression=None the client offers permessage-deflate; the
    # server must ignore the offer, not choke on it.
    try:
        async with websockets.connect(url, compression=None) as ws:
            check(await echo(ws, b"plain", b"plain"), "client without extension offer")
        async with websockets.connect(url) as ws:
            check(ws.extensions == [] and await echo(ws, b"x" * 5000, b"x" * 5000),
                  "deflate offer declined", f"extensions {ws.extensions}")
    except Exception as e:
        check(False, "extension handling", repr(e))

    # Frames above the server's payload limit are refused with 1009.
    try:
        async with websockets.connect(url + "small") as ws:
            await ws.send(b"y" * 2000)
            try:
                await asyncio.wait_for(ws.recv(), 10)
                check(False, "oversize frame closed with 1009", "got a reply")
            except websockets.exceptions.ConnectionClosed:
                check(ws.close_code == 1009, "oversize frame closed with 1009",
                      f"close code {ws.close_code}")
    except Exception as e:
        check(False, "oversize frame closed with 1009", repr(e))


async def run_qio_client():
    """qio's client side against the python3-websockets server."""
    close_codes = []

    async def handler(ws, path=None):
        async for message in ws:
            await ws.send(message)
        close_codes.append(ws.close_code)

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["binary"],
                                max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        for flag, want in (([], "none"), (["--binary"], "binary")):
            proc = await asyncio.create_subprocess_exec(
                CLIENT, str(port), str(2 * 1024 * 1024), *flag,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            out = out.decode()
            check(proc.returncode == 0 and f"protocol {want}\n" in out and "echo ok" in out,
                  f"qio client, subprotocol {want}: 2 MiB echoed by python3-websockets",
                  out + err.decode())
            for _ in range(50):
                if close_codes:
                    break
                await asyncio.sleep(0.1)
            code = close_codes.pop() if close_codes else None
            check(code == 1000, f"qio client, subprotocol {want}: closed with 1000",
                  f"close code {code}")


def send_read_head(s, data):
    """Sends @data on socket @s and reads up to the end of an HTTP head."""
    s.sendall(data)
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def raw_exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def raw_cases(port):
    good = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")
    cases = [
        ("missing key", good.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
         b"HTTP/1.1 400 ", b"Sec-WebSocket-Key"),
        ("wrong version", good.replace(b"Version: 13", b"Version: 8"),
         b"HTTP/1.1 426 ", b"Sec-WebSocket-Version: 13\r\n"),
        ("plain HTTP GET", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
         b"HTTP/1.1 400 ", b"Upgrade"),
        ("TLS hello on a plain port", bytes.fromhex("160301020001000001fc0303") + b"\0" * 32,
         b"HTTP/1.1 400 ", b"not an HTTP request"),
        ("uppercase headers accepted", good.upper().replace(b"DGHLIHNHBXBSZSBUB25JZQ==",
                                                            b"dGhlIHNhbXBsZSBub25jZQ=="),
         b"HTTP/1.1 101 ", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ]
    for name, request, status, text in cases:
        try:
            if status == b"HTTP/1.1 101 ":
                # The server keeps the connection: read only the head.
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    reply = send_read_head(s, request)
            else:
                reply = raw_exchange(port, request)
            check(reply.startswith(status) and text in reply,
                  f"raw handshake: {name} -> {status.decode().split()[1]}",
                  reply.decode(errors="replace"))
        except Exception as e:
            check(False, f"raw handshake: {name}", repr(e))


def make_pki(top):
    """A CA and a server certificate for localhost and 127.0.0.1, by certtool,
    in the layout of the x509 credentials directory."""
    def certtool(*args, template=None):
        if template:
            with open(os.path.join(top, "t.info"), "w") as f:
                f.write(template)
            args += ("--template", os.path.join(top, "t.info"))
        subprocess.run(["certtool", *args], check=True, capture_output=True)
    p = lambda name: os.path.join(top, name)
    os.makedirs(p("srv"))
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("ca-key.pem"))
    certtool("--generate-self-signed", "--load-privkey", p("ca-key.pem"),
             "--outfile", p("srv/ca-cert.pem"),
             template='cn = "websock test CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", p("srv/server-key.pem"))
    certtool("--generate-certificate", "--load-privkey", p("srv/server-key.pem"),
             "--load-ca-certificate", p("srv/ca-cert.pem"),
             "--load-ca-privkey", p("ca-key.pem"), "--outfile", p("srv/server-cert.pem"),
             template='cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                      'tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n')
    return p("srv")


async def run_wss(url, ctx):
    """wss: websockets over qio's TLS channel."""
    try:
        async with websockets.connect(url, ssl=ctx, subprotocols=["binary"],
                                      max_size=None) as ws:
            check(ws.subprotocol == "binary", "wss handshake over QIOChannelTLS")
            check(await echo(ws, "über TLS", "über TLS".encode()), "wss text frame echoed")
            big = os.urandom(2 * 1024 * 1024)
            check(await echo(ws, big, big), "wss 2 MiB message echoed")
            await asyncio.wait_for(await ws.ping(b"tls"), 10)
            check(True, "wss ping answered with pong")
            await ws.close()
            check(ws.close_code == 1000, "wss close echoed with 1000",
                  f"close code {ws.close_code}")
    except Exception as e:
        check(False, "wss session", repr(e))


def wss_raw_bad_handshake(port, ctx):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                reply = send_read_head(s, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        check(reply.startswith(b"HTTP/1.1 400 "), "wss raw handshake without Upgrade -> 400",
              reply.decode(errors="replace"))
    except Exception as e:
        check(False, "wss raw handshake without Upgrade -> 400", repr(e))


def start_server(*args):
    server = subprocess.Popen([SERVER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = server.stdout.readline().decode()
    if not line.startswith("port "):
        server.stdin.close()
        server.wait()
        return server, None
    return server, int(line.split()[1])


def stop_server(server, name):
    server.stdin.close()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    check(server.returncode == 0, f"{name} exited cleanly", f"exit status {server.returncode}")


def wss_cases():
    with tempfile.TemporaryDirectory() as top:
        try:
            srv = make_pki(top)
        except (OSError, subprocess.CalledProcessError) as e:
            check(False, "certtool makes a PKI for wss", repr(e))
            return
        server, port = start_server("--tls", srv)
        check(port is not None, "wss echo server listening")
        if port is None:
            return
        try:
            ctx = ssl.create_default_context(cafile=os.path.join(srv, "ca-cert.pem"))
            asyncio.run(run_wss(f"wss://127.0.0.1:{port}/", ctx))
            wss_raw_bad_handshake(port, ctx)
        finally:
            stop_server(server, "wss echo server")


def main():
    if not os.access(SERVER, os.X_OK):
        print(f"1..0 # SKIP {SERVER} not built")
        return 0
    server, port = start_server()
    check(port is not None, f"echo server listening on 127.0.0.1:{port}")
    if port is not None:
        try:
            asyncio.run(run_clients(f"ws://127.0.0.1:{port}/"))
            raw_cases(port)
            try:
                asyncio.run(run_qio_client())
            except Exception as e:
                check(False, "qio client against python3-websockets", repr(e))
        finally:
            stop_server(server, "echo server")
    wss_cases()
    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
