#!/usr/bin/python3
"""mTLS in the lab: the collector (its own CA, no --insecure) in the lab's
server namespace, agents on lab hosts enrolling and streaming across the
lab's LAN. Checked where it matters, in PostgreSQL:
- h1 enrolls with a token and the CA fingerprint, streams, its rows appear;
- h2 presents a client certificate from another CA (and our CA pinned, so it
  does reach the handshake): refused, zero rows for its name;
- `netvigil-collector revoke h1`: h1's open stream is cut, it is refused on
  reconnect, and nothing more is written for it.
The detailed cases (expired, unrecorded, another agent's name, tokens, a
rogue collector, admin certificates over TCP) are in tests/integration/security_test.py on
loopback; TLS does not depend on the topology, this test shows the same
protections on a routed LAN. About 30 s."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
from labcase import LabTestCase  # noqa: E402

SERVER_NAME = "collector.lab"
AGENT_PORT = 7411
ENROLL_PORT = 7412


class SecurityLabTest(LabTestCase):
    TAG = "security-lab"
    HOSTS = 2

    @classmethod
    def write_config(cls, name, state):
        path = os.path.join(cls.dir, name)
        server = cls.lab.server.ipv4
        with open(path, "w") as f:
            f.write(nvtest.collector_yaml(
                cls.pg.dsn, f"{server}:{AGENT_PORT}", os.path.join(cls.dir, name + ".sock"),
                extra=f"""state_dir: {state}
pki:
  server_names: [{SERVER_NAME}]
  server_addresses: [{server}]
probes:
  path:
    enabled: false
  sockets:
    every: 1s
  files:
    every: 30s
  speed:
    enabled: false
""").replace("listen:\n", f"listen:\n  enroll: \"{server}:{ENROLL_PORT}\"\n"))
        return path

    @classmethod
    def collector_cmd(cls, *args, config=None):
        return subprocess.run([nvtest.COLLECTOR, "--config", config or cls.config, *args],
                              capture_output=True, text=True, timeout=60)

    @classmethod
    def start(cls):
        cls.config = cls.write_config("collector.yaml", os.path.join(cls.dir, "state"))
        r = cls.collector_cmd("pki", "init")
        assert r.returncode == 0, r.stderr
        cls.fingerprint = re.search(r"ca_fingerprint: (\S+)", r.stdout).group(1)
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cls.config],
                                       os.path.join(cls.dir, "collector.log"),
                                       cls.lab, cls.lab.server).start()
        cls.procs.append(cls.collector)
        nvtest.wait_until(lambda: "collector_listening" in cls.collector.output(), 30,
                          "the collector listening")

    # --- helpers

    def enroll(self, host):
        r = self.collector_cmd("enroll", host.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = re.search(r"^token: (\S+)$", r.stdout, re.M).group(1)
        state = os.path.join(self.dir, "agent-" + host.name)
        r = self.lab.exec(host, [nvtest.AGENT, "enroll",
                                 "--collector", f"{self.lab.server.ipv4}:{ENROLL_PORT}",
                                 "--token", token, "--ca-fingerprint", self.fingerprint,
                                 "--name", host.name, "--state-dir", state],
                          capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return state

    def run_agent(self, host, state):
        a = nvtest.Process([nvtest.AGENT, "run", "--collector",
                            f"{self.lab.server.ipv4}:{AGENT_PORT}", "--state-dir", state,
                            "--no-iperf-server", "--watch", host.home],
                           os.path.join(self.dir, f"agent-{host.name}.log"),
                           self.lab, host).start()
        self.procs.append(a)
        return a

    def rows(self, name):
        return self.pg.result_rows(name)

    # --- the test: one story, in order

    def test_enrolled_streams_foreign_ca_refused_revoked_cut_off(self):
        h1, h2 = self.lab.hosts
        state1 = self.enroll(h1)
        a1 = self.run_agent(h1, state1)
        nvtest.wait_until(lambda: self.rows(h1.name) > 0, 30, "h1's results over mTLS")
        self.assertIn(f"agent_connected name={h1.name}", self.collector.output())

        # h2: a client certificate from another CA, with our CA pinned.
        other = self.write_config("other.yaml", os.path.join(self.dir, "other-state"))
        r = self.collector_cmd("pki", "init", config=other)
        self.assertEqual(r.returncode, 0, r.stderr)
        state2 = os.path.join(self.dir, "agent-h2-foreign")
        r = self.collector_cmd("pki", "admin", h2.name, "--out", state2, config=other)
        self.assertEqual(r.returncode, 0, r.stderr)
        shutil.copy2(os.path.join(state1, "ca.crt"), os.path.join(state2, "ca.crt"))
        a2 = self.run_agent(h2, state2)

        time.sleep(5)
        self.assertNotIn("collector_connected", a2.output())
        self.assertIn("collector_link_failed", a2.output())
        self.assertEqual(self.rows(h2.name), 0)
        self.assertEqual(self.pg.agent_rows(h2.name), 0)

        # Revoke h1: its open stream is cut at once, reconnects are refused.
        started = time.monotonic()
        r = self.collector_cmd("revoke", h1.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        nvtest.wait_until(lambda: f"agent_cut_off name={h1.name}" in self.collector.output(),
                          10, "h1's stream cut")
        cut_s = time.monotonic() - started
        nvtest.wait_until(lambda: "not authorised" in a1.output(), 15,
                          "h1 refused on reconnect")
        count = self.rows(h1.name)
        time.sleep(4)
        self.assertEqual(self.rows(h1.name), count, "nothing written after the revocation")
        agents = nvtest.agents_json(os.path.join(self.dir, "collector.yaml.sock"))
        self.assertTrue(agents[h1.name].get("revoked"), agents[h1.name])
        print(f"\n  lab: revoke to h1's stream cancelled {cut_s:.2f} s; "
              f"h1 rows {count}, h2 (foreign CA) 0")


if __name__ == "__main__":
    nvtest.main()
