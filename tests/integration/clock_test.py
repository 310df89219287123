#!/usr/bin/python3
"""Wrong clocks cannot wedge an agent or hide it: real agents and a real
collector under libfaketime (Debian's `faketime`), clocks moved forwards,
backwards and by days.

- An agent whose wall clock is hours ahead or days behind keeps delivering;
  its results are dated by the collector's clock (within the window stated
  in the README), every number it produced is stored once, it shows its
  offset in `netvigil agents`, and a clock_skew alert names it and the
  offset.
- A wall clock that steps while the agent (or the collector) runs stops
  neither heartbeats nor probes nor sessions: every wait is on the monotonic
  clock. libfaketime changes what the process reads, not the kernel's clock,
  so a process whose faked clock steps *forward* is in the position of a
  real process whose real clock stepped *back*: an absolute CLOCK_REALTIME
  deadline it computed lies an hour past the kernel's clock. Both
  directions are run.

FAKETIME_DONT_FAKE_MONOTONIC=1 keeps CLOCK_MONOTONIC real, as a real step
would.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


class FakeClock:
    """A faked wall clock for the processes started with env(): an offset
    written to a file that libfaketime rereads on every call."""

    def __init__(self, path, offset="+0"):
        self.path = path
        self.set(offset)

    def set(self, offset):
        with open(self.path + ".new", "w") as f:
            f.write(offset + "\n")
        os.replace(self.path + ".new", self.path)

    def env(self):
        return dict(os.environ, LD_PRELOAD=LIBFAKETIME,
                    FAKETIME_TIMESTAMP_FILE=self.path, FAKETIME_NO_CACHE="1",
                    FAKETIME_DONT_FAKE_MONOTONIC="1")


class EnvProcess(nvtest.Process):
    def __init__(self, argv, log_path, env):
        super().__init__(argv, log_path)
        self.env = env

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        return self


class ClockTest(nvtest.CollectorCase, unittest.TestCase):
    TAG = "clock"

    def start_agent(self, name, clock):
        state = os.path.join(self.dir, f"state-{name}")
        os.makedirs(os.path.join(state, "home"), exist_ok=True)
        agent = EnvProcess(
            [nvtest.AGENT, "run", "--collector", f"127.0.0.1:{self.port}",
             "--name", name, "--state-dir", state, "--insecure",
             "--no-iperf-server", "--watch", os.path.join(state, "home")],
            os.path.join(self.dir, f"agent-{name}.log"), clock.env()).start()
        self.addCleanup(lambda: agent.alive() and agent.stop())
        return agent

    def ledger(self, name):
        """(numbers produced, stored results, refused in gaps): every number
        from 1 to the highest is stored once, as a result or a gap."""
        out = self.pg.psql(
            "SELECT r.seq, r.kind FROM results r JOIN agents a ON a.id = r.agent_id"
            f" WHERE a.name = '{name}' AND r.seq > 0 ORDER BY 1")
        seqs = [int(line.split("|")[0]) for line in out.splitlines()]
        self.assertEqual(len(seqs), len(set(seqs)))
        produced = max(seqs)
        self.assertEqual(seqs, list(range(1, produced + 1)), "a number missing")
        refused = int(self.pg.psql(
            "SELECT coalesce(sum(g.count), 0) FROM gaps g JOIN agents a"
            f" ON a.id = g.agent_id WHERE a.name = '{name}'"
            " AND g.reason LIKE 'refused:%'"))
        return produced, len(seqs), refused

    def worst_time_error_s(self, name, newest=1000000):
        """How far the stored results' produced_at (the newest `newest` of
        them) are from their receipt by PostgreSQL's clock (the real one),
        at most."""
        return float(self.pg.psql(
            "SELECT coalesce(max(abs(extract(epoch FROM t.produced_at - t.received_at))), 0)"
            " FROM (SELECT r.produced_at, r.received_at FROM results r"
            " JOIN agents a ON a.id = r.agent_id"
            f" WHERE a.name = '{name}' ORDER BY r.seq DESC LIMIT {newest}) t"))

    def results(self, name):
        return self.pg.result_rows(name)

    def assert_delivering(self, name, what, seconds=20):
        before = self.results(name)
        nvtest.wait_until(lambda: self.results(name) >= before + 3, seconds,
                          f"{name}: three more results {what}")

    def assert_heartbeats(self, name, what):
        """The collector's last_seen for the agent moves on (heartbeats
        arrive), with no reconnect."""
        seen = lambda: nvtest.agents_json(self.socket)[name].get("lastSeen")  # noqa: E731
        first = seen()
        nvtest.wait_until(lambda: seen() != first, 10, f"{name}: a heartbeat {what}")

    def alerts(self):
        r = nvtest.cli(self.socket, "alerts", "--json")
        return json.loads(r.stdout).get("alerts", []) if r.returncode == 0 else []

    # -------------------------------------------------------------- tests

    def test_agents_with_wrong_clocks_deliver_and_are_shown(self):
        self.start_collector()
        for name, offset, want_s in (("ahead", "+2h", 7200),
                                     ("behind", "-3d", -3 * 86400)):
            clock = FakeClock(os.path.join(self.dir, f"faketime-{name}"), offset)
            self.start_agent(name, clock)
            nvtest.wait_until(lambda: self.results(name) >= 5, 60,
                              f"{name}: five results")
            produced, stored, refused = self.ledger(name)
            self.assertEqual(stored, produced)
            self.assertEqual(refused, 0)
            # Dated by the collector's clock, not the agent's.
            self.assertLess(self.worst_time_error_s(name), 60)
            info = nvtest.agents_json(self.socket)[name]
            self.assertAlmostEqual(int(info["clockOffsetMs"]) / 1000, want_s, delta=5)
            nvtest.wait_until(
                lambda: any(a["kind"] == "clock_skew" and name in a.get("hosts", [])
                            for a in self.alerts()), 30, f"a clock_skew alert for {name}")
            alert = next(a for a in self.alerts()
                         if a["kind"] == "clock_skew" and name in a["hosts"])
            self.assertIn(name, alert["summary"])
            self.assertIn("ahead of" if want_s > 0 else "behind", alert["summary"])
            self.assertRegex(alert["summary"], r"2h|72h")
        table = nvtest.cli(self.socket, "agents").stdout
        self.assertRegex(table, r"NAME\s+ADDRESS\s+VERSION\s+STATE\s+LAST SEEN\s+CLOCK")
        self.assertRegex(table, r"(?m)^ahead\s.*\s\+(2h(\d+s)?|1h59m5\ds)$")
        self.assertRegex(table, r"(?m)^behind\s.*\s-(72h(\d+s)?|71h59m5\ds)$")

    def test_agent_wall_clock_steps_do_not_stop_heartbeats_or_probes(self):
        self.start_collector()
        clock = FakeClock(os.path.join(self.dir, "faketime-stepper"), "+0")
        agent = self.start_agent("stepper", clock)
        nvtest.wait_until(lambda: self.results("stepper") >= 3, 60,
                          "stepper: three results")
        for offset, what in (("+1h", "after a step of +1h"),
                             ("-1h", "after a step back to -1h"),
                             ("+0", "after a step back to the real time")):
            clock.set(offset)
            self.assert_heartbeats("stepper", what)
            self.assert_delivering("stepper", what)
            self.assertTrue(agent.alive())
        produced, stored, refused = self.ledger("stepper")
        self.assertEqual(stored + refused, produced)
        # Back on the real time, results are dated right again. (Around a
        # step, a result produced before it and delivered after the next
        # heartbeat is moved by the new offset: the README's limitation.)
        self.assert_delivering("stepper", "on the real time again")
        self.assertLess(self.worst_time_error_s("stepper", newest=2), 60)
        log = self.collector.output()
        self.assertEqual(log.count("agent_connected name=stepper "), 1,
                         "the agent had to reconnect")

    def test_collector_wall_clock_steps_do_not_drop_sessions(self):
        self.stop_collector()
        clock = FakeClock(os.path.join(self.dir, "faketime-collector"), "+0")
        c = EnvProcess([nvtest.COLLECTOR, "--config", self.config, "--insecure"],
                       os.path.join(self.dir, "collector-faked.log"), clock.env()).start()
        type(self).collector = c
        nvtest.wait_until(lambda: nvtest.cli(self.socket, "agents").returncode == 0, 30,
                          "the collector to be up")
        self.start_agent("steady", FakeClock(os.path.join(self.dir, "faketime-steady")))
        nvtest.wait_until(lambda: self.results("steady") >= 3, 60, "steady: three results")
        for offset in ("+1h", "-1h", "+0"):
            clock.set(offset)
            self.assert_delivering("steady", f"with the collector's clock at {offset}")
            time.sleep(5)  # past the heartbeat timeout (4 s)
            self.assert_delivering("steady", f"with the collector's clock at {offset}")
        log = c.output()
        self.assertNotIn("sessions_cancelled", log)
        self.assertEqual(log.count("agent_connected name=steady "), 1,
                         "the agent had to reconnect")
        produced, stored, refused = self.ledger("steady")
        self.assertEqual(stored + refused, produced)

    def test_collector_clock_days_ahead_is_named_not_the_agents(self):
        """The collector's clock 3 days ahead: every agent looks 72h behind.
        Before, each agent's clock_skew alert blamed that agent; now the
        alert and the log name the collector's clock."""
        self.stop_collector()
        clock = FakeClock(os.path.join(self.dir, "faketime-collector-ahead"), "+3d")
        c = EnvProcess([nvtest.COLLECTOR, "--config", self.config, "--insecure"],
                       os.path.join(self.dir, "collector-ahead.log"), clock.env()).start()
        type(self).collector = c
        nvtest.wait_until(lambda: nvtest.cli(self.socket, "agents").returncode == 0, 30,
                          "the collector to be up")
        for name in ("right1", "right2"):
            self.start_agent(name, FakeClock(os.path.join(self.dir, f"faketime-{name}")))
        suspect = lambda: [a for a in self.alerts()  # noqa: E731
                           if a["kind"] == "clock_skew"
                           and "collector's own clock is the likelier one" in a["summary"]]
        alerts = nvtest.wait_until(suspect, 60, "a clock_skew alert naming the collector's clock")
        self.assertIn("72h behind", alerts[0]["summary"])
        self.assertIn("collector_clock_suspect agents=2 collector_ahead_s=2592", c.output())
        for name in ("right1", "right2"):
            # The alert comes from the hello, before any result is stored.
            nvtest.wait_until(lambda: self.results(name) >= 2, 60,  # noqa: B023
                              f"{name}: two results")
            produced, stored, refused = self.ledger(name)
            self.assertEqual(stored, produced)


if __name__ == "__main__":
    nvtest.main()
