#!/usr/bin/python3
"""The walking skeleton end to end on real parts: a private PostgreSQL, the
collector in the lab's server namespace, an agent in each of three lab hosts,
and the CLI over the Query socket.

Each test states what it checks; timings printed are measured, not assumed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import nvlab  # noqa: E402

HEARTBEAT_S = 1
TIMEOUT_S = 4
AGENT_PORT = 7411


class FoundationTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("foundation")
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.lab = nvlab.Lab(hosts=3)
        cls.socket = os.path.join(cls.dir, "query.sock")
        cls.config = os.path.join(cls.dir, "collector.yaml")
        with open(cls.config, "w") as f:
            f.write(nvtest.collector_yaml(
                cls.pg.dsn, f"{cls.lab.server.ipv4}:{AGENT_PORT}", cls.socket,
                heartbeat=f"{HEARTBEAT_S}s", timeout=f"{TIMEOUT_S}s",
                extra=f"""probes:
  path:
    every: 30s
    count: 3
    interval: 200ms
    targets:
      - name: target
        address: {cls.lab.target.ipv4}
  files:
    watched_dirs: [{cls.lab.hosts[0].home}]
  speed:
    enabled: false
"""))
        cls.collector = cls.start_collector()
        cls.agents = {}
        for h in cls.lab.hosts:
            cls.agents[h.name] = cls.start_agent(h)

    @classmethod
    def tearDownClass(cls):
        for a in cls.agents.values():
            a.stop()
        cls.collector.stop()
        cls.lab.close()
        cls.pg.stop()

    @classmethod
    def start_collector(cls):
        return nvtest.Process(
            [nvtest.COLLECTOR, "--config", cls.config, "--insecure"],
            os.path.join(cls.dir, "collector.log"), cls.lab, cls.lab.server).start()

    @classmethod
    def start_agent(cls, host, name=None, log=None):
        name = name or host.name
        return nvtest.Process(
            [nvtest.AGENT, "run", "--collector", f"{cls.lab.server.ipv4}:{AGENT_PORT}",
             "--name", name, "--state-dir", os.path.join(cls.dir, f"state-{host.name}-{name}"),
             "--insecure", "--no-iperf-server"],
            log or os.path.join(cls.dir, f"agent-{host.name}-{name}.log"),
            cls.lab, host).start()

    def online(self):
        return {n for n, a in nvtest.agents_json(self.socket).items() if a.get("online")}

    def all_online(self):
        names = {h.name for h in self.lab.hosts}
        return nvtest.wait_until(lambda: self.online() >= names or None, 60,
                                 f"agents {sorted(names)} online")

    # The tests run in name order (unittest sorts them); each leaves every
    # agent online for the next.

    def test_1_all_three_agents_online_with_their_details(self):
        self.all_online()
        agents = nvtest.agents_json(self.socket)
        for h in self.lab.hosts:
            a = agents[h.name]
            self.assertIn(h.ipv4, a["addresses"], a)
            self.assertEqual(a["version"], "0.1.0")
            self.assertTrue(a["bootId"])
            self.assertTrue(a["firstSeen"] and a["lastSeen"])
        table = nvtest.cli(self.socket, "agents")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertRegex(table.stdout, r"NAME\s+ADDRESS\s+VERSION\s+STATE\s+LAST SEEN")
        for h in self.lab.hosts:
            self.assertRegex(table.stdout, rf"{h.name}\s+\S*{re.escape(h.ipv4)}\S*\s+0\.1\.0\s+online")

    def test_2_killed_agent_goes_offline_within_the_heartbeat_timeout(self):
        self.all_online()
        h3 = self.lab.hosts[2]
        killed_at = time.monotonic()
        self.agents[h3.name].kill9()
        nvtest.wait_until(lambda: h3.name not in self.online(), TIMEOUT_S + 2,
                          "the killed agent offline")
        took = time.monotonic() - killed_at
        print(f"\n  agent killed with SIGKILL: offline after {took:.2f} s "
              f"(heartbeat timeout {TIMEOUT_S} s)")
        self.assertLessEqual(took, TIMEOUT_S + 2)
        self.agents[h3.name] = self.start_agent(h3, log=os.path.join(self.dir, "agent-h3-again.log"))
        self.all_online()

    def test_3_collector_restart_agents_come_back_by_themselves(self):
        self.all_online()
        pids_before = {n: a.pid for n, a in self.agents.items()}
        self.collector.stop()
        r = nvtest.cli(self.socket, "agents")
        self.assertEqual(r.returncode, 3, "CLI with the collector down: exit 3")
        self.assertIn("cannot reach the collector", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        started = time.monotonic()
        type(self).collector = self.start_collector()
        self.all_online()
        print(f"\n  collector restarted: all agents online again after "
              f"{time.monotonic() - started:.2f} s")
        for n, a in self.agents.items():
            self.assertTrue(a.alive(), f"agent {n} was not restarted")
            self.assertEqual(a.pid, pids_before[n])

    def test_4_postgres_restart_collector_recovers_without_restart(self):
        self.all_online()
        collector_pid = self.collector.pid
        self.pg.stop("immediate")
        r = nvtest.wait_until(
            lambda: (lambda r: r if r.returncode == 4 else None)(nvtest.cli(self.socket, "agents")),
            30, "the CLI to say the database is down")
        self.assertIn("database is down", r.stderr)
        time.sleep(TIMEOUT_S)  # longer than the heartbeat timeout
        self.pg.start()
        started = time.monotonic()
        self.all_online()
        print(f"\n  PostgreSQL restarted: agents online again after "
              f"{time.monotonic() - started:.2f} s; collector not restarted")
        self.assertTrue(self.collector.alive())
        self.assertEqual(self.collector.pid, collector_pid)

    def test_5_second_agent_claiming_a_live_name_is_refused(self):
        self.all_online()
        h1, h2 = self.lab.hosts[0], self.lab.hosts[1]
        before = nvtest.agents_json(self.socket)[h1.name]
        impostor = self.start_agent(h2, name=h1.name)
        try:
            nvtest.wait_until(lambda: "already connected" in impostor.output(), 20,
                              "the impostor's log to say the name is taken")
            time.sleep(2 * HEARTBEAT_S)
            after = nvtest.agents_json(self.socket)[h1.name]
            self.assertTrue(after["online"])
            self.assertEqual(after["connectedSince"], before["connectedSince"],
                             "the first agent kept its session")
            self.assertIn(h1.ipv4, after["addresses"])
            self.assertNotIn(h2.ipv4, after["addresses"])
            self.assertIn("agent_refused name=h1", self.collector.output())
        finally:
            impostor.stop()

    def test_6_agent_pointed_at_nothing_retries_quietly(self):
        # An address inside the lab where nothing listens.
        h1 = self.lab.hosts[0]
        p = nvtest.Process(
            [nvtest.AGENT, "run", "--collector", f"{self.lab.server.ipv4}:{AGENT_PORT + 1}",
             "--name", "lonely", "--state-dir", os.path.join(self.dir, "state-lonely"),
             "--insecure", "--no-iperf-server", "--log-level", "debug"],
            os.path.join(self.dir, "agent-lonely.log"), self.lab, h1).start()
        time.sleep(8)
        self.assertTrue(p.alive(), "the agent keeps running")
        cpu = self.cpu_seconds(p.pid)
        p.stop()
        log = p.output()
        failures = [l for l in log.splitlines() if "collector_link_failed" in l]
        self.assertEqual(len(failures), 1, log)
        self.assertIn('class="collector unreachable"', failures[0])
        print(f"\n  agent pointed at nothing for 8 s: {len(failures)} log line, "
              f"{cpu:.2f} s CPU")
        self.assertLess(cpu, 1.0, "no busy loop")

    @staticmethod
    def cpu_seconds(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CollectorStartTest(unittest.TestCase):
    """Start-up failures that need no lab."""

    def setUp(self):
        self.dir = nvtest.scratch_dir("start")

    def test_bad_config_exits_non_zero_naming_file_line_and_field(self):
        path = os.path.join(self.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write("database:\n  dsn: x\nprobes:\n  path:\n    count: lots\n")
        r = subprocess.run([nvtest.COLLECTOR, "--config", path, "--insecure"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:5:12: field 'probes.path.count': expected a whole number, got 'lots'",
                      r.stderr)
        r = subprocess.run([nvtest.COLLECTOR, "check-config", path],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:5:12", r.stderr)

    def test_database_unreachable_at_start_then_recovers(self):
        pg = nvtest.Postgres(os.path.join(self.dir, "pg"))  # made, not started
        socket = os.path.join(self.dir, "q.sock")
        config = os.path.join(self.dir, "c.yaml")
        with open(config, "w") as f:
            f.write(nvtest.collector_yaml(pg.dsn, f"127.0.0.1:{nvtest.free_port()}", socket))
        c = nvtest.Process([nvtest.COLLECTOR, "--config", config, "--insecure"],
                           os.path.join(self.dir, "collector.log")).start()
        try:
            r = nvtest.wait_until(
                lambda: (lambda r: r if r.returncode == 4 else None)(nvtest.cli(socket, "agents")),
                20, "the CLI to say the database is down")
            self.assertIn("database is down", r.stderr)
            self.assertIn("database_unavailable retrying=yes", c.output())
            pg.start()
            nvtest.wait_until(lambda: nvtest.cli(socket, "agents").returncode == 0, 60,
                              "the collector to recover once PostgreSQL is up")
            self.assertTrue(c.alive())
            # The store answers once its migrations are in; the log line
            # follows when today's partitions are made too (a moment later).
            nvtest.wait_until(lambda: "database_ready" in c.output(), 30,
                              "the collector to log database_ready")
        finally:
            c.stop()
            pg.stop()

    def test_second_collector_with_the_same_port_or_socket_is_refused(self):
        pg = nvtest.Postgres(os.path.join(self.dir, "pg"))  # not needed up
        query, other_query = (os.path.join(self.dir, n) for n in ("q.sock", "q2.sock"))
        port = nvtest.free_port()

        def config(name, sock, agent_port):
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(nvtest.collector_yaml(pg.dsn, f"127.0.0.1:{agent_port}", sock))
            return path

        first = nvtest.Process([nvtest.COLLECTOR, "--config", config("a.yaml", query, port),
                                "--insecure"], os.path.join(self.dir, "first.log")).start()
        try:
            nvtest.wait_until(lambda: nvtest.cli(query, "agents").returncode == 4, 20,
                              "the first collector's Query socket")
            cases = [
                (config("same.yaml", query, nvtest.free_port()),
                 f"another process listens on the query socket {query}"),
                (config("port.yaml", other_query, port),
                 f"cannot listen for agents on 127.0.0.1:{port}"),
            ]
            for path, message in cases:
                r = subprocess.run([nvtest.COLLECTOR, "--config", path, "--insecure"],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(message, r.stderr)
            # The first one never noticed.
            self.assertTrue(first.alive())
            self.assertEqual(nvtest.cli(query, "agents").returncode, 4)
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        finally:
            first.stop()


if __name__ == "__main__":
    nvtest.main()
