#!/usr/bin/python3
"""The Query service end to end through the CLI, with a real collector,
PostgreSQL and agents probing in the lab: `netvigil overview --json` shows
every host online with its latest path result to the lab's target (the same
run `netvigil path` calls the latest); `netvigil probe HOST path TARGET` and
`probe HOST sockets` return a result produced after the call, within its
deadline; a probe on an unknown host exits with the NOT_FOUND code (5)
naming it. About 15 s."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
from labcase import LabTestCase  # noqa: E402

EXIT_NOT_FOUND = 5  # collector/cli/cli_main.cc (ExitCode)
TARGET = "internet"
PATH_EVERY_S = 3
# A probe-now waits for the agent's own runs of that probe to finish first,
# so the deadline leaves room for one scheduled run (20 rounds of 50 ms).
PROBE_DEADLINE_S = 15


class QueryLabTest(LabTestCase):
    TAG = "query-lab"
    HOSTS = 2
    LAB_OPTIONS = {"icmp_ratelimit": 0}

    @classmethod
    def start(cls):
        cls.sock = os.path.join(cls.dir, "q.sock")
        cfg = os.path.join(cls.dir, "c.yaml")
        with open(cfg, "w") as f:
            f.write(nvtest.collector_yaml(cls.pg.dsn, f"{cls.lab.server.ipv4}:7411", cls.sock,
                                          extra=f"""probes:
  path:
    every: {PATH_EVERY_S}s
    count: 20
    interval: 50ms
    targets:
      - name: {TARGET}
        address: {cls.lab.target.ipv4}
  sockets:
    every: 30s
  files:
    every: 30s
  speed:
    enabled: false
"""))
        cls.procs.append(nvtest.Process(
            [nvtest.COLLECTOR, "--config", cfg, "--insecure"],
            os.path.join(cls.dir, "collector.log"), cls.lab, cls.lab.server).start())
        for h in cls.lab.hosts:
            cls.procs.append(nvtest.Process(
                [nvtest.AGENT, "run", "--insecure", "--name", h.name, "--no-iperf-server",
                 "--collector", f"{cls.lab.server.ipv4}:7411", "--watch", h.home,
                 "--state-dir", os.path.join(cls.dir, "state-" + h.name)],
                os.path.join(cls.dir, f"agent-{h.name}.log"), cls.lab, h).start())
        names = {h.name for h in cls.lab.hosts}
        nvtest.wait_until(
            lambda: {n for n, a in nvtest.agents_json(cls.sock).items() if a.get("online")} >= names,
            30, "all agents online")

    def cli_json(self, *args, timeout=30):
        r = nvtest.cli(self.sock, *args, "--json", timeout=timeout)
        self.assertEqual(r.returncode, 0, f"netvigil {' '.join(args)}: {r.stderr}")
        return json.loads(r.stdout)

    def test_overview_shows_every_host_online_with_its_latest_path(self):
        names = sorted(h.name for h in self.lab.hosts)

        def ready():
            ov = self.cli_json("overview")
            hosts = {h["agent"]["name"]: h for h in ov.get("hosts", [])}
            if sorted(hosts) != names:
                return None
            if not all(h["agent"].get("online") for h in hosts.values()):
                return None
            if not all(any(p["target"] == TARGET for p in h.get("paths", []))
                       for h in hosts.values()):
                return None
            return ov

        ov = nvtest.wait_until(ready, 30, "every host online with a path to the target",
                               interval=1)
        generated = nvtest.rfc3339(ov["generatedAt"])
        for h in ov["hosts"]:
            name = h["agent"]["name"]
            self.assertEqual([p["target"] for p in h["paths"]], [TARGET], name)
            p = h["paths"][0]
            self.assertTrue(p.get("destinationReached"), (name, p))
            # r1, r2, r3 and the target: the lab's four hops.
            self.assertEqual(p.get("hopCount"), 4, (name, p))
            self.assertEqual(p.get("lossPercent", 0), 0, (name, p))
            self.assertGreater(p.get("avgMs", 0), 0, (name, p))
            # The latest: no older than a few probe periods.
            self.assertLess(generated - nvtest.rfc3339(p["at"]), 4 * PATH_EVERY_S + 5,
                            (name, p, ov["generatedAt"]))

        # The same run that `netvigil path` (the latest run) shows; a new run
        # may land between the two calls, so compare a few times.
        def same_as_path_history():
            ov = self.cli_json("overview")
            for h in ov["hosts"]:
                latest = self.cli_json("path", h["agent"]["name"], TARGET)["runs"][-1]["run"]
                # The overview's time comes from the database (microseconds),
                # the run's from its payload (nanoseconds).
                if abs(nvtest.rfc3339(h["paths"][0]["at"]) -
                       nvtest.rfc3339(latest["startedAt"])) > 1e-6:
                    return None
            return True

        nvtest.wait_until(same_as_path_history, 15,
                          "overview's latest path equal to path history's latest run", interval=0.5)

    def test_probe_now_path_returns_a_fresh_result_within_its_deadline(self):
        host = self.lab.hosts[0].name
        t0 = time.time()
        r = self.cli_json("probe", host, "path", TARGET, "--deadline", str(PROBE_DEADLINE_S),
                          timeout=PROBE_DEADLINE_S + 10)
        elapsed = time.time() - t0
        self.assertLess(elapsed, PROBE_DEADLINE_S)
        result = r["result"]
        self.assertTrue(result.get("commandId"), "the result answers the command")
        run = result["path"]
        self.assertEqual(run["target"], TARGET)
        self.assertEqual(run["resolvedAddress"], self.lab.target.ipv4)
        self.assertTrue(run.get("destinationReached"), run)
        self.assertEqual([h["addresses"][0]["address"] for h in run["hops"]],
                         self.lab.expected_path(4))
        # Run after the call: not a stored result handed back.
        self.assertGreaterEqual(nvtest.rfc3339(run["startedAt"]), t0 - 0.01)
        self.assertGreaterEqual(nvtest.rfc3339(result["producedAt"]),
                                nvtest.rfc3339(run["startedAt"]))

    def test_probe_now_sockets_returns_a_fresh_snapshot(self):
        host = self.lab.hosts[1]
        t0 = time.time()
        r = self.cli_json("probe", host.name, "sockets", "--deadline", str(PROBE_DEADLINE_S),
                          timeout=PROBE_DEADLINE_S + 10)
        self.assertLess(time.time() - t0, PROBE_DEADLINE_S)
        snap = r["result"]["sockets"]
        self.assertGreaterEqual(nvtest.rfc3339(snap["takenAt"]), t0 - 0.01)
        # The agent's own stream to the collector is in its namespace's view
        # (on a dual-stack socket, as an IPv4-mapped address).
        server = {self.lab.server.ipv4, "::ffff:" + self.lab.server.ipv4}
        links = [s for s in snap.get("sockets", [])
                 if s.get("state") == "ESTAB" and s.get("remoteAddress") in server
                 and s.get("remotePort") == 7411]
        self.assertTrue(links, snap.get("sockets"))
        self.assertIn("netvigil-agent", {p.get("name") for s in links
                                         for p in s.get("processes", [])})

    def test_probe_now_on_an_unknown_host_is_not_found(self):
        r = nvtest.cli(self.sock, "probe", "no-such-host", "path", TARGET, "--json",
                       "--deadline", "5")
        self.assertEqual(r.returncode, EXIT_NOT_FOUND, (r.stdout, r.stderr))
        self.assertIn("no-such-host", r.stderr)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    nvtest.main()
