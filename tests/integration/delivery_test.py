#!/usr/bin/python3
"""Nothing lost, nothing twice, under the failures a home server sees: the
collector killed with SIGKILL during ingest, PostgreSQL stopped with
`pg_ctl stop -m immediate`, and a real agent killed again and again while the
collector is away. Each test checks every sequence number end to end: in
PostgreSQL exactly once, with no hole, for every agent.

Simulated agents are tests/bench's netvigil-loadgen over real gRPC to the real
collector; all traffic is on loopback.
"""

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

LOADGEN = os.path.join(nvtest.BUILD_DIR, "tests", "bench", "netvigil-loadgen")


class DeliveryTest(nvtest.CollectorCase, unittest.TestCase):
    TAG = "delivery"

    def loadgen(self, prefix, agents, interval, duration, sockets=100):
        with open(os.path.join(self.dir, f"loadgen-{prefix}.log"), "wb") as log:
            return subprocess.Popen(
                [LOADGEN, "--collector", f"127.0.0.1:{self.port}", "--prefix", prefix,
                 "--agents", str(agents), "--interval", str(interval),
                 "--duration", str(duration), "--sockets", str(sockets),
                 "--drain-timeout", "120"],
                stdout=subprocess.PIPE, stderr=log)

    def committed(self, prefix, pattern=None):
        """name -> (count, distinct seqs, min, max) of committed results of
        the agents named PREFIX-* (or LIKE `pattern`)."""
        pattern = pattern or f"{prefix}-%"
        out = self.pg.psql(
            "SELECT a.name, count(*), count(DISTINCT r.seq), min(r.seq), max(r.seq)"
            " FROM results r JOIN agents a ON a.id = r.agent_id"
            f" WHERE a.name LIKE '{pattern}' AND r.seq > 0 GROUP BY a.name")
        rows = {}
        for line in out.splitlines():
            name, n, d, lo, hi = line.split("|")
            rows[name] = (int(n), int(d), int(lo), int(hi))
        return rows

    def assert_every_seq_once(self, prefix, report):
        rows = self.committed(prefix)
        self.assertEqual(len(report["per_agent"]), len(rows))
        for a in report["per_agent"]:
            n, distinct, lo, hi = rows[a["name"]]
            self.assertEqual((lo, hi), (a["first_seq"], a["last_seq"]), a["name"])
            self.assertEqual(n, hi - lo + 1, f"{a['name']}: a hole or a double")
            self.assertEqual(distinct, n)
        # History is not written twice either: no result's events twice
        # (they are one packed row a snapshot, migration 0016).
        doubled = self.pg.psql(
            "SELECT count(*) FROM (SELECT e.agent_id, e.seq"
            "  FROM socket_event_sets e JOIN agents a"
            "  ON a.id = e.agent_id WHERE a.name LIKE '" + prefix + "-%'"
            "  GROUP BY 1, 2 HAVING count(*) > 1) d")
        self.assertEqual(doubled, "0")
        return sum(r[0] for r in rows.values())

    def total(self, prefix):
        return int(self.pg.psql(
            "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id"
            f" WHERE a.name LIKE '{prefix}-%'"))

    def test_collector_killed_five_times_during_ingest_from_50_agents(self):
        c = self.start_collector()
        gen = self.loadgen("ck", agents=50, interval=0.1, duration=30)
        self.addCleanup(lambda: gen.poll() is None and (gen.kill(), gen.wait()))
        kills = []
        rng = random.Random(7)
        time.sleep(3)
        for _ in range(5):
            time.sleep(rng.uniform(2, 5))
            before = self.total("ck")
            c.kill9()
            kills.append(before)
            time.sleep(rng.uniform(0.2, 1.5))
            c = nvtest.Process([nvtest.COLLECTOR, "--config", self.config, "--insecure"],
                               os.path.join(self.dir, "collector.log")).start()
            type(self).collector = c
        out, _ = gen.communicate(timeout=300)
        report = json.loads(out)
        self.assertTrue(report["all_acked"], "the load generator gave up")
        total = self.assert_every_seq_once("ck", report)
        print(f"\ncollector SIGKILLed 5 times (results committed before each: {kills});"
              f" {report['produced']} results from 50 agents, {total} committed once each,"
              f" {report['reconnects']} reconnects", flush=True)
        self.assertGreater(kills[-1], kills[0], "ingest went on between the kills")
        # Every simulated agent lost its stream at each kill.
        self.assertGreaterEqual(report["reconnects"], 5 * 50)

    def test_postgres_stopped_immediately_during_ingest(self):
        c = self.start_collector()
        gen = self.loadgen("pg", agents=50, interval=0.1, duration=30)
        self.addCleanup(lambda: gen.poll() is None and (gen.kill(), gen.wait()))
        nvtest.wait_until(lambda: self.total("pg") > 1000, 30, "ingest to run")
        self.pg.stop("immediate")
        time.sleep(5)
        self.pg.start()
        back = time.monotonic()
        at_return = self.total("pg")
        nvtest.wait_until(lambda: self.total("pg") > at_return, 30,
                          "ingest to resume after PostgreSQL returned", interval=0.1)
        resumed = time.monotonic() - back
        out, _ = gen.communicate(timeout=300)
        report = json.loads(out)
        self.assertTrue(report["all_acked"], "the load generator gave up")
        total = self.assert_every_seq_once("pg", report)
        self.assertTrue(c.alive(), "the collector survived the database restart")
        print(f"\nPostgreSQL stopped -m immediate for 5 s during ingest: ingest resumed"
              f" {resumed:.2f} s after it returned; {total} results from 50 agents,"
              f" each committed once", flush=True)
        self.assertLess(resumed, 30)

    def test_agent_killed_50_times_while_the_collector_is_away(self):
        self.start_collector()
        state = os.path.join(self.dir, "agent-ak")
        os.makedirs(os.path.join(state, "home"))
        argv = [nvtest.AGENT, "run", "--collector", f"127.0.0.1:{self.port}",
                "--name", "ak", "--state-dir", state, "--insecure",
                "--no-iperf-server", "--watch", os.path.join(state, "home")]
        log = os.path.join(self.dir, "agent-ak.log")
        agents = [nvtest.Process(argv, log).start()]
        # Whatever fails, no agent outlives the test.
        self.addCleanup(lambda: [a.stop() for a in agents if a.alive()])
        agent = agents[0]
        nvtest.wait_until(lambda: os.path.exists(os.path.join(state, "plan.pb")), 30,
                          "the agent to keep its plan")
        nvtest.wait_until(lambda: self.committed("ak", "ak"), 30, "a first result")
        self.collector.stop()
        rng = random.Random(50)
        for _ in range(50):
            time.sleep(rng.uniform(0.05, 1.5))
            agent.kill9()
            agent = nvtest.Process(argv, log).start()
            agents.append(agent)
        time.sleep(1.5)
        agent.kill9()
        spool = sqlite3.connect(f"file:{state}/spool.db?mode=ro", uri=True)
        spooled_max, spooled = spool.execute(
            "SELECT max(seq), count(*) FROM results").fetchone()
        spool.close()
        self.assertGreater(spooled, 10, "results were produced with the collector away")

        self.start_collector()
        agent = nvtest.Process(argv, log).start()
        agents.append(agent)
        try:
            nvtest.wait_until(lambda: self.committed("ak", "ak")["ak"][3] >= spooled_max, 60,
                              "the spooled results to be delivered")
        finally:
            agent.stop()
        n, distinct, lo, hi = self.committed("ak", "ak")["ak"]
        self.assertEqual(lo, 1)
        self.assertEqual(n, hi - lo + 1, "a hole or a double in the agent's sequence")
        self.assertEqual(distinct, n)
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM gaps g JOIN agents a ON a.id = g.agent_id"
            " WHERE a.name = 'ak'"), "0", "nothing was dropped")
        self.assertIn("cached_plan_loaded", agent.output())
        print(f"\nagent SIGKILLed 50 times with the collector away: {spooled} results"
              f" spooled (through seq {spooled_max}); after the collector returned"
              f" seq 1..{hi} present once each", flush=True)


if __name__ == "__main__":
    nvtest.main()
