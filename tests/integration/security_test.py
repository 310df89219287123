#!/usr/bin/python3
"""Enrollment and mTLS end to end on real parts: a private PostgreSQL, the
collector with its own CA (no --insecure), real agents on loopback, the CLI
over TCP, and Debian's python3-grpc as an independent TLS client.

What is refused is checked where it matters: the agent never gets a Welcome
and PostgreSQL holds zero rows for the name it tried. Timings printed are
measured, not assumed.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

import grpc  # noqa: E402  (python3-grpcio)

SERVER_NAME = "collector.test"


def varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def hello_message(name: str) -> bytes:
    """AgentMessage{hello: Hello{agent_name: name, version: "0.1.0"}}, encoded
    by hand so the test needs no generated code."""
    inner = b"\x0a" + varint(len(name)) + name.encode() + b"\x1a\x050.1.0"
    return b"\x0a" + varint(len(inner)) + inner


def field(path: str) -> str:
    with open(path) as f:
        return f.read()


class SecurityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("security")
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.port = nvtest.free_port()
        cls.enroll_port = nvtest.free_port()
        cls.query_port = nvtest.free_port()
        cls.socket = os.path.join(cls.dir, "q.sock")
        watched = os.path.join(cls.dir, "home")
        os.makedirs(watched)
        cls.config = cls.write_config("collector.yaml", os.path.join(cls.dir, "state"),
                                      cls.port, cls.enroll_port, cls.query_port, cls.socket)
        r = cls.collector_cmd("pki", "init")
        assert r.returncode == 0, r.stderr
        cls.fingerprint = re.search(r"ca_fingerprint: (\S+)", r.stdout).group(1)
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cls.config],
                                       os.path.join(cls.dir, "collector.log")).start()
        nvtest.wait_until(lambda: "database_ready" in cls.collector.output(), 30,
                          "the collector's database")
        cls.agents = []

    @classmethod
    def tearDownClass(cls):
        for a in cls.agents:
            a.stop()
        cls.collector.stop()
        if getattr(cls, "rogue", None):
            cls.rogue.stop()
        cls.pg.stop()

    @classmethod
    def write_config(cls, name, state, port, enroll_port, query_port, sock):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(nvtest.collector_yaml(cls.pg.dsn, f"127.0.0.1:{port}", sock,
                                          heartbeat="1s", timeout="4s", extra=f"""
state_dir: {state}
pki:
  server_names: [{SERVER_NAME}]
  server_addresses: [127.0.0.1]
probes:
  path:
    enabled: false
  sockets:
    every: 1s
  files:
    every: 1s
    watched_dirs: [{os.path.join(cls.dir, "home")}]
  speed:
    enabled: false
""").replace("listen:\n", f"""listen:
  enroll: "127.0.0.1:{enroll_port}"
  query_tcp: "127.0.0.1:{query_port}"
"""))
        return path

    @classmethod
    def collector_cmd(cls, *args, config=None):
        return subprocess.run([nvtest.COLLECTOR, "--config", config or cls.config, *args],
                              capture_output=True, text=True, timeout=60)

    # --- helpers

    def token(self, name, *extra):
        r = self.collector_cmd("enroll", name, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = re.search(r"^token: (\S+)$", r.stdout, re.M).group(1)
        fp = re.search(r"^ca_fingerprint: (\S+)$", r.stdout, re.M).group(1)
        self.assertEqual(fp, self.fingerprint)
        self.assertIn(f"--collector 127.0.0.1:{self.enroll_port}", r.stdout)
        return token

    def agent_enroll(self, name, token, state, fingerprint=None, port=None):
        return subprocess.run(
            [nvtest.AGENT, "enroll", "--collector", f"127.0.0.1:{port or self.enroll_port}",
             "--token", token, "--ca-fingerprint", fingerprint or self.fingerprint,
             "--name", name, "--state-dir", state],
            capture_output=True, text=True, timeout=60)

    def enrolled(self, name):
        state = os.path.join(self.dir, f"agent-{name}")
        r = self.agent_enroll(name, self.token(name), state)
        self.assertEqual(r.returncode, 0, r.stderr)
        return state

    def run_agent(self, state, port=None, name=None):
        a = nvtest.Process([nvtest.AGENT, "run", "--collector", f"127.0.0.1:{port or self.port}",
                            "--state-dir", state, "--no-iperf-server",
                            "--watch", os.path.join(self.dir, "home")],
                           os.path.join(state + ".log")).start()
        self.agents.append(a)
        return a

    def rows(self, name):
        return self.pg.result_rows(name)

    def agent_rows(self, name):
        return self.pg.agent_rows(name)

    def assert_refused_and_nothing_written(self, agent, name, wait=4.0):
        time.sleep(wait)
        out = agent.output()
        self.assertNotIn("collector_connected", out)
        self.assertIn("collector_link_failed", out)
        self.assertEqual(self.rows(name), 0)
        self.assertEqual(self.agent_rows(name), 0)

    def stream_as(self, state, hello_name, ca=None):
        """Opens the Agent stream with python-grpc using the client cert in
        `state` (None: no client certificate) and returns (first message
        bytes or None, grpc error code or None, seconds)."""
        root = field(ca or os.path.join(self.dir, "state", "pki", "ca.crt")).encode()
        if state is None:
            creds = grpc.ssl_channel_credentials(root_certificates=root)
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=root,
                private_key=field(os.path.join(state, "client.key")).encode(),
                certificate_chain=field(os.path.join(state, "client.crt")).encode())
        started = time.monotonic()
        with grpc.secure_channel(f"127.0.0.1:{self.port}", creds,
                                 options=[("grpc.ssl_target_name_override", SERVER_NAME)]) as ch:
            call = ch.stream_stream("/netvigil.v1.Agent/Stream",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
            responses = call(iter([hello_message(hello_name)]), timeout=10)
            try:
                first = next(responses)
                took = time.monotonic() - started
                responses.cancel()
                return first, None, took
            except grpc.RpcError as e:
                return None, e.code(), time.monotonic() - started

    # --- the tests, in name order

    def test_01_enrolled_agent_streams_over_mtls(self):
        state = os.path.join(self.dir, "agent-alice")
        token = self.token("alice")
        started = time.monotonic()
        r = self.agent_enroll("alice", token, state)
        enroll_s = time.monotonic() - started
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(state, "client.key")).st_mode), 0o600)
        self.assertEqual(field(os.path.join(state, "server_name")).strip(), SERVER_NAME)
        self.assertEqual(field(os.path.join(state, "ca.crt")),
                         field(os.path.join(self.dir, "state", "pki", "ca.crt")))
        # The token is stored hashed, never as itself.
        self.assertEqual(self.pg.psql(
            f"SELECT count(*) FROM enrollment_tokens WHERE token_sha256 = '{token}'"), "0")
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM enrollment_tokens WHERE agent_name = 'alice' "
            "AND used_at IS NOT NULL"), "1")
        for key in ("ca.key", "server.key"):
            self.assertEqual(stat.S_IMODE(os.stat(
                os.path.join(self.dir, "state", "pki", key)).st_mode), 0o600)
        started = time.monotonic()
        agent = self.run_agent(state)
        nvtest.wait_until(lambda: self.rows("alice") > 0, 30, "alice's results")
        first_s = time.monotonic() - started
        self.assertIn("name=alice", agent.output())
        a = nvtest.agents_json(self.socket)["alice"]
        self.assertTrue(a.get("online"), a)
        print(f"\n  enrollment (agent side, key+CSR+TLS+RPC): {enroll_s * 1000:.0f} ms; "
              f"agent start to first result stored over mTLS: {first_s:.2f} s")

    def test_02_token_used_twice_is_refused(self):
        token = self.token("bob")
        r = self.agent_enroll("bob", token, os.path.join(self.dir, "agent-bob"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.agent_enroll("bob", token, os.path.join(self.dir, "agent-bob2"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already used", r.stderr)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "agent-bob2", "client.crt")))

    def test_03_expired_token_is_refused(self):
        token = self.token("carol")
        self.pg.psql("UPDATE enrollment_tokens SET expires_at = now() - interval '1 second' "
                     "WHERE agent_name = 'carol'")
        r = self.agent_enroll("carol", token, os.path.join(self.dir, "agent-carol"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("expired", r.stderr)
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM certificates WHERE name = 'carol'"), "0")

    def test_04_token_for_another_name_is_refused_and_stays_usable(self):
        token = self.token("dave")
        r = self.agent_enroll("eve", token, os.path.join(self.dir, "agent-eve"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is for agent 'dave'", r.stderr)
        r = self.agent_enroll("dave", token, os.path.join(self.dir, "agent-dave"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_05_ttl_limits_and_existing_names(self):
        r = self.collector_cmd("enroll", "x1", "--ttl", "8d")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("7d", r.stderr)
        r = self.collector_cmd("enroll", "alice")
        self.assertNotEqual(r.returncode, 0, "alice exists: needs --replace")
        self.assertIn("--replace", r.stderr)

    def test_06_no_client_certificate_is_refused_at_handshake(self):
        first, code, _ = self.stream_as(None, "nocert")
        self.assertIsNone(first)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.agent_rows("nocert"), 0)
        # The real agent with no certificate does not start at all.
        r = subprocess.run([nvtest.AGENT, "run", "--collector", f"127.0.0.1:{self.port}",
                            "--state-dir", os.path.join(self.dir, "empty")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("enrol first", r.stderr)

    def test_07_certificate_from_another_ca_is_refused(self):
        other = self.write_config("other.yaml", os.path.join(self.dir, "other-state"),
                                  nvtest.free_port(), nvtest.free_port(), nvtest.free_port(),
                                  os.path.join(self.dir, "other.sock"))
        r = self.collector_cmd("pki", "init", config=other)
        self.assertEqual(r.returncode, 0, r.stderr)
        state = os.path.join(self.dir, "agent-mallory")
        r = self.collector_cmd("pki", "issue", "mallory", "--out", state, config=other)
        self.assertEqual(r.returncode, 0, r.stderr)
        # It trusts our collector, but its own certificate is the other CA's.
        with open(os.path.join(state, "ca.crt"), "w") as f:
            f.write(field(os.path.join(self.dir, "state", "pki", "ca.crt")))
        first, code, _ = self.stream_as(state, "mallory")
        self.assertIsNone(first)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
        self.assert_refused_and_nothing_written(self.run_agent(state), "mallory")

    def test_08_expired_certificate_is_refused(self):
        state = os.path.join(self.dir, "agent-oldie")
        r = self.collector_cmd("pki", "issue", "oldie", "--out", state, "--record",
                               "--not-before", "-48h", "--not-after", "-24h")
        self.assertEqual(r.returncode, 0, r.stderr)
        first, code, _ = self.stream_as(state, "oldie")
        self.assertIsNone(first)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
        self.assert_refused_and_nothing_written(self.run_agent(state), "oldie")
        # The same name with a good certificate works: it was the date.
        state = os.path.join(self.dir, "agent-oldie-ok")
        r = self.collector_cmd("pki", "issue", "oldie", "--out", state, "--record")
        self.assertEqual(r.returncode, 0, r.stderr)
        first, code, _ = self.stream_as(state, "oldie")
        self.assertIsNotNone(first, code)

    def test_09_valid_cert_naming_another_agent_is_permission_denied(self):
        grace = self.enrolled("grace")
        self.token("ivan")  # ivan exists as a name, never connects
        first, code, _ = self.stream_as(grace, "ivan")
        self.assertIsNone(first)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.rows("ivan"), 0)
        self.assertEqual(self.agent_rows("ivan"), 0)
        self.assertIn("reason=identity", self.collector.output())

    def test_10_unrecorded_cert_from_our_ca_is_permission_denied(self):
        # Signed by our CA but not through enrollment (a stolen CA key would
        # be worse, but this is what the database check catches).
        state = os.path.join(self.dir, "agent-ghost")
        r = self.collector_cmd("pki", "issue", "ghost", "--out", state)
        self.assertEqual(r.returncode, 0, r.stderr)
        first, code, _ = self.stream_as(state, "ghost")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.agent_rows("ghost"), 0)
        # An admin certificate cannot stream as an agent either.
        first, code, _ = self.stream_as(self.admin_dir(), "root")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)

    def test_11_revoked_agent_is_cut_off_at_once_and_for_good(self):
        state = self.enrolled("frank")
        agent = self.run_agent(state)
        nvtest.wait_until(lambda: self.rows("frank") > 0, 30, "frank's results")
        started = time.monotonic()
        r = self.collector_cmd("revoke", "frank")
        self.assertEqual(r.returncode, 0, r.stderr)
        nvtest.wait_until(lambda: "agent_cut_off name=frank" in self.collector.output(), 10,
                          "frank's stream cut")
        cut_s = time.monotonic() - started
        nvtest.wait_until(lambda: "not authorised" in agent.output(), 15,
                          "frank refused on reconnect")
        count = self.rows("frank")
        time.sleep(4)
        self.assertEqual(self.rows("frank"), count, "nothing written after the revocation")
        first, code, _ = self.stream_as(state, "frank")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        # Listed as revoked (and so out of every peer list and iperf3 user
        # list: the speed loop and the mesh plans leave revoked agents out).
        r = subprocess.run([nvtest.CLI, "--socket", self.socket, "--json", "agents"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = {a["name"]: a for a in json.loads(r.stdout).get("agents", [])}
        self.assertTrue(listed["frank"].get("revoked"), listed["frank"])
        self.assertFalse(listed["alice"].get("revoked", False))
        print(f"\n  revoke to open stream cancelled: {cut_s:.2f} s (incl. the revoke command)")
        # A new key under the name needs --replace, and then works.
        r = self.collector_cmd("enroll", "frank")
        self.assertNotEqual(r.returncode, 0)
        agent.stop()
        state2 = os.path.join(self.dir, "agent-frank2")
        r = self.agent_enroll("frank", self.token("frank", "--replace"), state2)
        self.assertEqual(r.returncode, 0, r.stderr)
        first, code, _ = self.stream_as(state2, "frank")
        self.assertIsNotNone(first, code)
        first, code, _ = self.stream_as(state, "frank")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, "the old key stays revoked")

    def test_12_agent_refuses_a_collector_from_another_ca(self):
        # A rogue collector: same name and address, the other CA.
        rogue_port = nvtest.free_port()
        other = self.write_config("rogue.yaml", os.path.join(self.dir, "rogue-state"),
                                  rogue_port, nvtest.free_port(), nvtest.free_port(),
                                  os.path.join(self.dir, "rogue.sock"))
        r = self.collector_cmd("pki", "init", config=other)
        self.assertEqual(r.returncode, 0, r.stderr)
        rogue_fp = re.search(r"ca_fingerprint: (\S+)", r.stdout).group(1)
        type(self).rogue = nvtest.Process([nvtest.COLLECTOR, "--config", other],
                                          os.path.join(self.dir, "rogue.log")).start()
        nvtest.wait_until(lambda: "collector_listening" in self.rogue.output(), 30,
                          "the rogue collector")
        # alice's own files (a copy: the real alice runs on).
        alice = os.path.join(self.dir, "agent-alice-copy")
        os.makedirs(alice)
        for f in ("client.key", "client.crt", "ca.crt", "server_name"):
            shutil.copy2(os.path.join(self.dir, "agent-alice", f), alice)
        agent = self.run_agent(alice, port=rogue_port)
        time.sleep(4)
        self.assertNotIn("collector_connected", agent.output())
        self.assertIn("collector_link_failed", agent.output())
        self.assertNotIn("agent_connected", self.rogue.output())
        agent.stop()
        # Enrolling against it with our fingerprint is refused before any
        # token is sent; with its own fingerprint but our token, refused too.
        r = self.agent_enroll("judy", self.token("judy"), os.path.join(self.dir, "agent-judy"),
                              port=int(re.search(r"enroll: \"127.0.0.1:(\d+)\"",
                                                 field(other)).group(1)))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not present a CA with fingerprint", r.stderr)
        self.assertTrue(rogue_fp)

    def admin_dir(self):
        d = os.path.join(self.dir, "admin")
        if not os.path.exists(os.path.join(d, "client.crt")):
            r = self.collector_cmd("pki", "admin", "root", "--out", d)
            self.assertEqual(r.returncode, 0, r.stderr)
        return d

    def test_13_query_over_tcp_needs_an_admin_certificate(self):
        addr = f"127.0.0.1:{self.query_port}"
        started = time.monotonic()
        r = subprocess.run([nvtest.CLI, "--collector", addr, "--tls-dir", self.admin_dir(),
                            "agents", "--json"], capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"alice"', r.stdout)
        # An agent's certificate from the same CA is not an admin's.
        r = subprocess.run([nvtest.CLI, "--collector", addr, "--tls-dir",
                            os.path.join(self.dir, "agent-alice"), "agents"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("admin certificate", r.stderr)
        # No client certificate at all: the handshake fails.
        root = field(os.path.join(self.dir, "state", "pki", "ca.crt")).encode()
        with grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=root),
                                 options=[("grpc.ssl_target_name_override", SERVER_NAME)]) as ch:
            call = ch.unary_unary("/netvigil.v1.Query/ListAgents",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
            with self.assertRaises(grpc.RpcError) as e:
                call(b"", timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # Without --tls-dir the CLI will not try.
        r = subprocess.run([nvtest.CLI, "--collector", addr, "agents"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        # And the revoked admin is refused.
        r = self.collector_cmd("revoke", "--admin", "root")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([nvtest.CLI, "--collector", addr, "--tls-dir", self.admin_dir(),
                            "agents"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("revoked", r.stderr)
        print(f"\n  CLI over TCP with TLS + admin certificate: {took * 1000:.0f} ms "
              "(process start, handshake, ListAgents)")

    def test_14_python_grpc_tls_stream_gets_its_welcome(self):
        grace = os.path.join(self.dir, "agent-grace")
        times = []
        for _ in range(5):
            first, code, took = self.stream_as(grace, "grace")
            self.assertIsNotNone(first, code)
            self.assertEqual(first[0], 0x0A, "CollectorMessage.welcome")
            self.assertIn(b"grace", first)
            times.append(took)
            time.sleep(0.3)  # the previous session is released
        times.sort()
        print(f"\n  python-grpc: new channel, mTLS handshake, hello to welcome: "
              f"median {times[2] * 1000:.1f} ms, min {times[0] * 1000:.1f} ms")


if __name__ == "__main__":
    nvtest.main()
