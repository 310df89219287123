"""Headless Chromium driven over its DevTools protocol (CDP), on a
WebSocket written here with the standard library (Debian's python3 has no
WebSocket client). For the web dashboard's test (live updates) and its
benchmark (first paint)."""

import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time


class WebSocket:
    """The client side of RFC 6455, text frames only: enough for CDP."""

    def __init__(self, host, port, path):
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            message += payload
            if b0 & 0x80:
                return message.decode()


class Cdp:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})


class Browser:
    """One headless Chromium with one tab, ended by its PID. No host but
    127.0.0.1 resolves, so nothing can leave the machine."""

    def __init__(self, window="1280,1000"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="nv-cdp-")
        self.proc = subprocess.Popen(
            [shutil.which("chromium") or "/usr/bin/chromium", "--headless",
             "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}",
             f"--window-size={window}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("PUT", "/json/new?about:blank")
                    target = json.loads(c.getresponse().read())
                    break
                except (OSError, ValueError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            path = target["webSocketDebuggerUrl"].split(str(port), 1)[1]
            self.cdp = Cdp(WebSocket("127.0.0.1", port, path))
        except BaseException:
            self.close()
            raise

    def evaluate(self, expression):
        r = self.cdp.call("Runtime.evaluate", returnByValue=True,
                          expression=expression)
        return r["result"].get("value")

    def navigate(self, url, timeout=30):
        """Loads `url` from a blank tab and waits for its load event."""
        self.cdp.call("Page.navigate", url="about:blank")
        deadline = time.monotonic() + timeout
        while self.evaluate("location.href") != "about:blank":
            if time.monotonic() > deadline:
                raise TimeoutError("about:blank did not load")
            time.sleep(0.05)
        self.cdp.call("Page.navigate", url=url)
        while not (self.evaluate("location.href") == url and
                   self.evaluate("document.readyState") == "complete"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout} s")
            time.sleep(0.05)

    def close(self):
        if getattr(self, "cdp", None) is not None:
            self.cdp.ws.sock.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
