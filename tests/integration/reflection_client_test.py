#!/usr/bin/python3
"""An independent client with no proto files: npm's grpc-js-reflection-client
(with @grpc/grpc-js) lists the services over the collector's UNIX socket and
calls ListAgents and Overview dynamically; the answers match the CLI's
--json. Also the Query service's refusals: NOT_FOUND naming the host or
target, INVALID_ARGUMENT for a reversed or absurd time range.

Needs the npm registry (CI reaches it); the packages are installed once
into NETVIGIL_NPM_CACHE (default /var/tmp/netvigil-npm)."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
NPM_DIR = os.environ.get("NETVIGIL_NPM_CACHE", "/var/tmp/netvigil-npm")


class ReflectionClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        os.makedirs(NPM_DIR, exist_ok=True)
        if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "grpc-js-reflection-client")):
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                            "--prefix", NPM_DIR, "grpc-js-reflection-client@1", "@grpc/grpc-js@1"],
                           check=True, timeout=300)
        cls.dir = nvtest.scratch_dir("reflect")
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.socket = os.path.join(cls.dir, "q.sock")
        port = nvtest.free_port()
        watched = os.path.join(cls.dir, "home")
        os.makedirs(watched)
        cfg = os.path.join(cls.dir, "c.yaml")
        with open(cfg, "w") as f:
            f.write(nvtest.collector_yaml(cls.pg.dsn, f"127.0.0.1:{port}", cls.socket, extra="""probes:
  path:
    enabled: false
  sockets:
    every: 5s
  files:
    every: 5s
  speed:
    enabled: false
"""))
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cfg, "--insecure"],
                                       os.path.join(cls.dir, "collector.log")).start()
        # One real agent on loopback, so the answers have something in them.
        cls.agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", "loopback-agent",
             "--collector", f"127.0.0.1:{port}", "--state-dir", os.path.join(cls.dir, "agent"),
             "--no-iperf-server", "--watch", watched],
            os.path.join(cls.dir, "agent.log")).start()
        nvtest.wait_until(lambda: nvtest.agents_json(cls.socket).get("loopback-agent", {}).get("online"),
                          30, "the agent online")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        cls.collector.stop()
        cls.pg.stop()

    def node(self, *args):
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
        r = subprocess.run(["node", os.path.join(NODE_DIR, "reflect.js"), self.socket, *args],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return _camel(json.loads(r.stdout))

    def test_lists_the_services_without_proto_files(self):
        services = self.node("list")
        self.assertIn("netvigil.v1.Query", services)
        self.assertIn("grpc.reflection.v1alpha.ServerReflection", services)

    def test_list_agents_matches_the_cli(self):
        dynamic = self.node("call", "ListAgents", "{}")
        cli = json.loads(nvtest.cli(self.socket, "agents", "--json").stdout)
        self.assertEqual([a["name"] for a in dynamic["agents"]],
                         [a["name"] for a in cli["agents"]])
        for d, c in zip(dynamic["agents"], cli["agents"]):
            for field in ("name", "version", "bootId", "addresses", "online", "firstSeen"):
                self.assertEqual(_norm(d.get(field)), _norm(c.get(field)), field)

    def test_overview_matches_the_cli(self):
        dynamic = self.node("call", "Overview", "{}")
        cli = json.loads(nvtest.cli(self.socket, "overview", "--json").stdout)
        self.assertEqual([h["agent"]["name"] for h in dynamic["hosts"]],
                         [h["agent"]["name"] for h in cli["hosts"]])
        self.assertEqual(dynamic["speed"].get("hosts"), cli["speed"].get("hosts"))

    def test_refusals_name_what_was_wrong(self):
        r = self.node("call", "PathHistory", json.dumps({"host": "no-such-host", "target": "x"}))
        self.assertEqual(r["error"]["code"], 5)  # NOT_FOUND
        self.assertIn("no-such-host", r["error"]["details"])
        r = self.node("call", "PathHistory", json.dumps({"host": "loopback-agent", "target": "nowhere"}))
        self.assertEqual(r["error"]["code"], 5)
        self.assertIn("nowhere", r["error"]["details"])
        r = self.node("call", "PathHistory", json.dumps({
            "host": "loopback-agent", "target": "x",
            "since": {"seconds": 1800000000}, "until": {"seconds": 1700000000}}))
        self.assertEqual(r["error"]["code"], 3)  # INVALID_ARGUMENT
        self.assertIn("is not before until", r["error"]["details"])
        r = self.node("call", "SocketChanges", json.dumps({
            "host": "loopback-agent", "since": {"seconds": 10}}))
        self.assertEqual(r["error"]["code"], 3)
        self.assertIn("before 2000", r["error"]["details"])
        r = self.node("call", "CurrentSockets", json.dumps({"host": "loopback-agent"}))
        self.assertNotIn("error", r)

    def test_probe_now_returns_the_result(self):
        r = self.node("call", "ProbeNow", json.dumps({
            "host": "loopback-agent", "probe": "PROBE_KIND_SOCKETS",
            "deadline": {"seconds": 20}}))
        self.assertNotIn("error", r, r)
        self.assertTrue(r["result"]["sockets"]["sockets"])
        cli = nvtest.cli(self.socket, "probe", "loopback-agent", "files", "--json")
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn("files", json.loads(cli.stdout)["result"])


def _camel(v):
    """The reflection client keeps the proto's field names (boot_id); the
    proto3 JSON mapping the CLI prints uses lowerCamelCase (bootId)."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            head, *rest = k.split("_")
            out[head + "".join(w[:1].upper() + w[1:] for w in rest)] = _camel(x)
        return out
    if isinstance(v, list):
        return [_camel(x) for x in v]
    return v


def _norm(v):
    # The two JSON encoders agree on values, not on leaving out defaults or
    # on how a Timestamp is written.
    if v in (None, [], "", False):
        return None
    if isinstance(v, dict) and "seconds" in v:
        return round(int(v["seconds"]) + v.get("nanos", 0) / 1e9, 6)
    if isinstance(v, str) and v.endswith("Z") and "T" in v:
        return round(nvtest.rfc3339(v), 6)
    return v


if __name__ == "__main__":
    nvtest.main()
