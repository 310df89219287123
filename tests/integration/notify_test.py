#!/usr/bin/python3
"""Notifications (issue 21) through the real collector, a real agent and a
private PostgreSQL: a webhook to a local HTTP receiver (http.server on
127.0.0.1, checking the HMAC signature and the secret header), a command
channel and a fake sendmail each get every alert event exactly once (by
event_id); the receiver down for DOWN seconds with the collector SIGKILLed
meanwhile still gets every event once after both return; a flood of 100
new listeners is one digest per channel; a command that hangs is killed at
its timeout (its process group too); a webhook whose certificate is not
trusted is refused.

The "minute" the receiver is down is NETVIGIL_NOTIFY_DOWN_SECONDS (default
20 s: what matters is that the collector is killed while messages to the
webhook are failing, and that they are sent after both return)."""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

AGENT = "h1"
DOWN = float(os.environ.get("NETVIGIL_NOTIFY_DOWN_SECONDS", "20"))
HMAC_KEY = "hmac-key-6d1f0c2a"
TOKEN = "Bearer tok-93be1c55"


class Receiver:
    """A webhook receiver on 127.0.0.1:port (TLS with `cert`)."""

    def __init__(self, port, cert=None):
        self.port = port
        self.cert = cert
        self.lock = threading.Lock()
        self.posts = []   # (headers dict, body json)
        self.bad = []     # what failed a check
        self.server = None

    def start(self):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                sig = self.headers.get("X-Netvigil-Signature", "")
                want = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
                with outer.lock:
                    if outer.cert is None:
                        if sig != want:
                            outer.bad.append(f"bad signature {sig!r}")
                        if self.headers.get("Authorization") != TOKEN:
                            outer.bad.append("bad Authorization header")
                    doc = json.loads(body)
                    if self.headers.get("X-Netvigil-Event-Id") != doc.get("event_id"):
                        outer.bad.append("event id header differs from the body's")
                    outer.posts.append((dict(self.headers), doc))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"stored\r\n")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        if self.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert[0], self.cert[1])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def docs(self):
        with self.lock:
            return [d for _, d in self.posts]


COMMAND = """import fcntl, json, sys
doc = json.loads(sys.stdin.read())
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(json.dumps(doc) + "\\n")
"""

SENDMAIL = """#!/usr/bin/python3
import os, sys, uuid
assert sys.argv[1:] == ["-t", "-i"], sys.argv
data = sys.stdin.buffer.read()
d = sys.argv[0] + ".out"
tmp = os.path.join(d, "." + uuid.uuid4().hex)
with open(tmp, "wb") as f:
    f.write(data)
os.rename(tmp, os.path.join(d, uuid.uuid4().hex))
"""

HANG = """import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it
child = subprocess.Popen(["/bin/sleep", "300"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
time.sleep(300)
"""


class NotifyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        d = cls.dir = nvtest.scratch_dir("notify")
        cls.pg = nvtest.Postgres(os.path.join(d, "pg"))
        cls.pg.start()
        cls.socket = os.path.join(d, "q.sock")
        port = nvtest.free_port()
        # The receivers listen before the agent's first snapshot: they are
        # part of its baseline, not news.
        cls.hook = Receiver(nvtest.free_port())
        cls.hook.start()
        key, crt = os.path.join(d, "tls.key"), os.path.join(d, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        cls.tls = Receiver(nvtest.free_port(), cert=(crt, key))
        cls.tls.start()
        with open(os.path.join(d, "hmac.key"), "w") as f:
            f.write(HMAC_KEY + "\n")
        os.environ["NV_TEST_HOOK_TOKEN"] = TOKEN
        cls.cmd_out = os.path.join(d, "command.jsonl")
        with open(os.path.join(d, "command.py"), "w") as f:
            f.write(COMMAND)
        with open(os.path.join(d, "hang.py"), "w") as f:
            f.write(HANG)
        cls.sendmail = os.path.join(d, "sendmail")
        with open(cls.sendmail, "w") as f:
            f.write(SENDMAIL)
        os.chmod(cls.sendmail, 0o755)
        os.makedirs(cls.sendmail + ".out")
        cls.hang_pids = os.path.join(d, "hang.pids")
        os.makedirs(os.path.join(d, "home"))
        extra = f"""probes:
  path:
    enabled: false
  sockets:
    every: 1s
  files:
    enabled: false
  speed:
    enabled: false
analysis:
  learning_period: 0s
  multi_host_window: 0s
notify:
  min_interval: 0s
  digest_after: 10
  gather: 3s
  retry_initial: 1s
  retry_max: 3s
  poll_interval: 500ms
  fail_alert_after: 4s
  # Rows the killed collector had claimed wait this long after the restart.
  claim_lease: 15s
  channels:
    - name: hook
      type: webhook
      kinds: [new_listener]
      url: "http://127.0.0.1:{cls.hook.port}/hook"
      header: {{name: Authorization, secret_env: NV_TEST_HOOK_TOKEN}}
      hmac: {{secret_file: {d}/hmac.key}}
      timeout: 3s
    - name: cmd
      type: command
      kinds: [new_listener, notify_failed]
      argv: [/usr/bin/python3, {d}/command.py, {cls.cmd_out}]
      timeout: 5s
    - name: mail
      type: sendmail
      kinds: [new_listener, notify_failed]
      path: {cls.sendmail}
      to: [me@home.arpa]
      timeout: 3s
    - name: hang
      type: command
      kinds: [no_such_kind]
      argv: [/usr/bin/python3, {d}/hang.py, {cls.hang_pids}]
      timeout: 2s
    - name: tls
      type: webhook
      kinds: [no_such_kind]
      url: "https://127.0.0.1:{cls.tls.port}/"
      timeout: 3s
    - name: tlsok
      type: webhook
      kinds: [no_such_kind]
      url: "https://127.0.0.1:{cls.tls.port}/"
      ca_file: {crt}
      timeout: 3s
"""
        cls.config = os.path.join(d, "c.yaml")
        with open(cls.config, "w") as f:
            f.write(nvtest.collector_yaml(cls.pg.dsn, f"127.0.0.1:{port}", cls.socket,
                                          extra=extra))
        cls.collector = None
        cls.start_collector()
        cls.agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", AGENT,
             "--collector", f"127.0.0.1:{port}", "--state-dir", os.path.join(d, "agent"),
             "--no-iperf-server", "--watch", os.path.join(d, "home")],
            os.path.join(d, "agent.log")).start()
        nvtest.wait_until(lambda: nvtest.agents_json(cls.socket).get(AGENT, {}).get("online"),
                          60, "the agent online")

        def snapshot_taken():
            r = nvtest.cli(cls.socket, "sockets", AGENT, "--json")
            return r.returncode == 0 and bool(json.loads(r.stdout).get("takenAt"))
        nvtest.wait_until(snapshot_taken, 30, "a socket snapshot")
        time.sleep(2)
        cls.held = []

    @classmethod
    def start_collector(cls):
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cls.config, "--insecure"],
                                       os.path.join(cls.dir, "collector.log")).start()
        nvtest.wait_until(lambda: nvtest.cli(cls.socket, "agents").returncode == 0, 30,
                          "the collector up")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        if cls.collector.alive():
            cls.collector.stop()
        for s in cls.held:
            s.close()
        cls.hook.stop()
        cls.tls.stop()
        cls.pg.stop()

    # ------------------------------------------------------------- helpers

    def listen(self, n):
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            socks.append(s)
        self.held.extend(socks)
        return socks, [s.getsockname()[1] for s in socks]

    def deliveries(self):
        """channel -> list of message documents (test messages left out)."""
        out = {"hook": self.hook.docs(), "cmd": [], "mail": []}
        if os.path.exists(self.cmd_out):
            with open(self.cmd_out) as f:
                out["cmd"] = [json.loads(line) for line in f if line.strip()]
        d = self.sendmail + ".out"
        for name in sorted(os.listdir(d)):
            if name.startswith("."):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text = f.read()
            head, _, body = text.partition("\n\n")
            headers = {}
            for line in head.split("\n"):
                k, _, v = line.partition(": ")
                headers.setdefault(k, v)
            subject = headers.get("Subject", "")
            out["mail"].append({"event_id": headers.get("X-Netvigil-Event-Id"),
                                "subject": subject, "body": body, "headers": headers})
        for ch in out:
            out[ch] = [m for m in out[ch] if not m["event_id"].startswith("netvigil-test-")]
        return out

    @staticmethod
    def about(msg, port):
        """The event of `msg` about `port`: 'opened', 'resolved', ...; None."""
        pat = re.compile(rf":{port}(?!\d)")
        if "subject" in msg:  # mail: the subject names the event, the body the port
            if "alerts opened" in msg["subject"] or not pat.search(msg["body"]):
                return None
            return msg["subject"].split("] ")[1].split(":")[0]
        if msg["event"] == "digest":
            return None
        return msg["event"] if pat.search(msg["summary"]) else None

    def wait_events(self, ports, event, timeout=60):
        def done():
            got = self.deliveries()
            return all(any(self.about(m, p) == event for m in got[ch])
                       for ch in got for p in ports)
        nvtest.wait_until(done, timeout, f"'{event}' for ports {ports} at every channel")

    def assert_each_event_once(self):
        got = self.deliveries()
        for ch, msgs in got.items():
            ids = [m["event_id"] for m in msgs]
            dups = {i for i in ids if ids.count(i) > 1}
            self.assertFalse(dups, f"{ch} got these more than once: {dups}")
        self.assertEqual(self.hook.bad, [])
        return got

    # --------------------------------------------------------------- tests

    def test_1_each_channel_gets_each_event_once(self):
        socks, ports = self.listen(3)
        self.wait_events(ports, "opened")
        for s in socks:
            s.close()
        self.wait_events(ports, "resolved")
        time.sleep(3)  # a duplicate would have come by now
        got = self.assert_each_event_once()
        ids = {ch: {m["event_id"] for m in msgs} for ch, msgs in got.items()}
        self.assertEqual(ids["hook"], ids["cmd"])
        self.assertEqual(ids["hook"], ids["mail"])
        doc = next(m for m in got["hook"] if self.about(m, ports[0]) == "opened")
        for field in ("event_id", "event", "alert_id", "kind", "scope", "severity",
                      "hosts", "summary", "opened_at", "link"):
            self.assertIn(field, doc)
        self.assertEqual(doc["kind"], "new_listener")
        self.assertEqual(doc["hosts"], [AGENT])
        self.assertEqual(doc["link"]["cli"], f"netvigil alerts --id {int(doc['alert_id'])}")
        # Every row of these events is sent; none pending.
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM notify_outbox WHERE channel IN ('hook','cmd','mail')"
            " AND state <> 'sent'"), "0")

    def test_2_receiver_down_and_collector_killed_every_event_arrives_once(self):
        self.hook.stop()
        t0 = time.monotonic()
        socks, ports = self.listen(2)
        # The other channels have them: the webhook's attempts failed.
        def others_have_them():
            got = self.deliveries()
            return all(any(self.about(m, p) == "opened" for m in got[ch])
                       for ch in ("cmd", "mail") for p in ports)
        nvtest.wait_until(others_have_them, 60, "the command and mail channels")
        nvtest.wait_until(lambda: int(self.pg.psql(
            "SELECT count(*) FROM notify_outbox WHERE channel = 'hook'"
            " AND state = 'pending' AND attempts > 0")) >= 2, 30, "failed webhook attempts")
        # Failing for longer than fail_alert_after: notify_failed, on the
        # other channels only.
        def failed_alert(event):
            got = self.deliveries()
            return (any(m.get("kind") == "notify_failed" and m["event"] == event
                        for m in got["cmd"]) and
                    any(f"{event}: notify_failed" in m["subject"] for m in got["mail"]))
        nvtest.wait_until(lambda: failed_alert("opened"), 30, "notify_failed at cmd and mail")
        # Not in the middle of the round that sent it: killed between a
        # channel's acceptance and the 'sent' mark, a message goes again
        # (at least once; README), which this test would count twice.
        time.sleep(1)
        self.collector.kill9()
        # A row of a channel the config no longer has expires at the start.
        self.pg.psql(
            "INSERT INTO notify_outbox (event_id, channel, alert_id, news, payload,"
            " created_at, next_attempt_at) VALUES (999999, 'gone', 1, 'opened', '{}',"
            " now(), now())")
        time.sleep(max(0.0, DOWN - (time.monotonic() - t0)))
        self.hook = type(self).hook = Receiver(self.hook.port)
        self.hook.start()
        type(self).start_collector()
        self.wait_events(ports, "opened", timeout=60)
        # The webhook works again: notify_failed resolves.
        nvtest.wait_until(lambda: failed_alert("resolved"), 30, "notify_failed resolved")
        self.assertFalse(any(m.get("kind") == "notify_failed" for m in self.hook.docs()))
        self.assertEqual(self.pg.psql(
            "SELECT state FROM notify_outbox WHERE channel = 'gone'"), "expired")
        self.assertIn("event=notify_channel_gone channel=gone expired=1",
                      self.collector.output())
        for s in socks:
            s.close()
        self.wait_events(ports, "resolved")
        time.sleep(3)
        got = self.assert_each_event_once()
        for ch in got:
            for p in ports:
                self.assertEqual(sum(1 for m in got[ch] if self.about(m, p) == "opened"), 1,
                                 f"{ch} port {p}")

    def test_3_a_flood_of_100_alerts_is_one_digest(self):
        _, ports = self.listen(100)

        def digests():
            got = self.deliveries()
            out = {}
            for ch, msgs in got.items():
                out[ch] = [m for m in msgs if
                           (m.get("event") == "digest" or "alerts opened" in m.get("subject", ""))]
            return got, out
        nvtest.wait_until(lambda: all(digests()[1].values()), 60, "a digest at every channel")
        time.sleep(4)  # anything else of the flood would have come by now
        got, dg = digests()
        for ch in ("hook", "cmd"):
            self.assertEqual(len(dg[ch]), 1, ch)
            # Other processes on this host may open listeners meanwhile.
            self.assertGreaterEqual(int(dg[ch][0]["count"]), 100)
            summaries = " ".join(e["summary"] for e in dg[ch][0]["events"])
            for p in ports:
                self.assertRegex(summaries, rf":{p}(?!\d)")
        self.assertEqual(len(dg["mail"]), 1)
        self.assertIn("100 alerts opened", dg["mail"][0]["subject"])
        for ch in got:
            singles = [m for m in got[ch] for p in ports if self.about(m, p) == "opened"]
            self.assertEqual(singles, [], ch)
        self.assert_each_event_once()

    def test_4_a_hanging_command_is_killed_at_its_timeout(self):
        t0 = time.monotonic()
        r = subprocess.run([nvtest.COLLECTOR, "--config", self.config, "notify", "test", "hang"],
                           capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("killed after the 2s timeout", r.stdout)
        # 2 s timeout, then SIGTERM (ignored), then SIGKILL 2 s later.
        self.assertLess(took, 10)
        with open(self.hang_pids) as f:
            pids = [int(x) for x in f.read().split()]

        def gone(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(") ")[1][0] == "Z"
            except FileNotFoundError:
                return True
        nvtest.wait_until(lambda: all(gone(p) for p in pids), 10,
                          "the command and its child ended")

    def test_5_a_webhook_with_an_untrusted_certificate_is_refused(self):
        before = len(self.tls.docs())
        r = subprocess.run([nvtest.COLLECTOR, "--config", self.config, "notify", "test", "tls"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("refused", r.stdout)
        self.assertIn("certificate", r.stdout)
        self.assertEqual(len(self.tls.docs()), before)
        # The same server with its certificate as the channel's CA: accepted.
        r = subprocess.run([nvtest.COLLECTOR, "--config", self.config, "notify", "test", "tlsok"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("HTTP 200: stored\\r\\n", r.stdout)
        self.assertEqual(len(self.tls.docs()), before + 1)
        self.assertEqual(self.tls.docs()[-1]["event"], "test")

    def test_6_notify_test_and_secrets(self):
        for ch, want in (("hook", "HTTP 200: stored"), ("cmd", "exit status 0"),
                         ("mail", "sendmail: exit status 0")):
            r = subprocess.run([nvtest.COLLECTOR, "--config", self.config, "notify", "test", ch],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(want, r.stdout)
        r = subprocess.run([nvtest.COLLECTOR, "--config", self.config, "notify", "test", "nope"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no channel nope", r.stderr)
        r = subprocess.run([nvtest.COLLECTOR, "check-config", self.config],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in (r.stdout + r.stderr, self.collector.output()):
            self.assertNotIn(HMAC_KEY, text)
            self.assertNotIn("tok-93be1c55", text)


if __name__ == "__main__":
    nvtest.main()
