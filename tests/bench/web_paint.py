#!/usr/bin/python3
"""Chromium's first paint of a dashboard page: headless Chromium with its
DevTools protocol on a local port, spoken over a WebSocket written here
with the standard library (Debian's python3 has no WebSocket client).
Loads URL N times (a fresh tab each) and prints the median and worst
first-contentful-paint and load-event times the page's own Performance
API reports.

Usage: web_paint.py URL [N]
"""

import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
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


def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="nv-web-paint-")
    chromium = subprocess.Popen(
        [shutil.which("chromium") or "/usr/bin/chromium", "--headless", "--no-sandbox",
         "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
         "--window-size=1280,1000", "about:blank"],
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
        ws_path = target["webSocketDebuggerUrl"].split(str(port), 1)[1]
        cdp = Cdp(WebSocket("127.0.0.1", port, ws_path))
        cdp.call("Page.enable")
        fcp, load, response = [], [], []
        cdp.call("Network.enable")
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)

        def evaluate(expression):
            r = cdp.call("Runtime.evaluate", returnByValue=True, expression=expression)
            return r["result"].get("value")

        for _ in range(n):
            # From a blank tab each time, so the figures read are this load's.
            cdp.call("Page.navigate", url="about:blank")
            for _ in range(200):
                if evaluate("location.href") == "about:blank":
                    break
                time.sleep(0.05)
            cdp.call("Page.navigate", url=url)
            for _ in range(300):
                if evaluate("location.href") != url:
                    time.sleep(0.05)
                    continue
                r = cdp.call("Runtime.evaluate", returnByValue=True, expression=(
                    "JSON.stringify({fcp: (performance.getEntriesByName("
                    "'first-contentful-paint')[0] || {}).startTime || 0,"
                    " load: (performance.getEntriesByType('navigation')[0] || {})"
                    ".loadEventEnd || 0,"
                    " response: (performance.getEntriesByType('navigation')[0] || {})"
                    ".responseEnd || 0})"))
                v = json.loads(r["result"]["value"])
                if v["fcp"] and v["load"]:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"{url}: no paint within 15 s")
            fcp.append(v["fcp"])
            load.append(v["load"])
            response.append(v["response"])
        print(f"first paint {url}: first-contentful-paint median "
              f"{statistics.median(fcp):.0f} ms, worst {max(fcp):.0f} ms; "
              f"load event median {statistics.median(load):.0f} ms, worst "
              f"{max(load):.0f} ms; the page's response complete at median "
              f"{statistics.median(response):.0f} ms ({n} loads)")
    finally:
        chromium.terminate()
        try:
            chromium.wait(10)
        except subprocess.TimeoutExpired:
            chromium.kill()
            chromium.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
