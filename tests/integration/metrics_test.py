#!/usr/bin/python3
"""The collector's Prometheus page (GET /metrics on listen.metrics), on the
real collector and a private PostgreSQL: the page parses with
prometheus_client's strict parser (Debian's python3-prometheus-client), its
latest figures are the Query service's (`netvigil overview --json` at the
same moment), a hostile label value (quotes, backslash, newline: agent names
cannot hold them, validation allows letters, digits, '.', '_' and '-', so
it comes in as a path target, which an agent names) is escaped and reads
back as sent, refused results and spool gaps are counted, and an address
off loopback is refused by the config check.

Two rogue agents speak the Agent service from the proto files (python
grpcio, as tests/testing/fake_collector.py does) over --insecure.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import fake_collector as fc  # noqa: E402

import grpc  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

HOSTILE = 'q"uote\\back\nnew}line'


def ts(t):
    return fc.M["google.protobuf.Timestamp"](seconds=int(t), nanos=int((t % 1) * 1e9))


class Agent:
    """A rogue agent: Hello, the given results, then heartbeats every 0.5 s
    (so it stays online) until close()."""

    def __init__(self, port, name, results):
        self.done = threading.Event()
        self.acked = 0
        first = [fc.msg("AgentMessage", hello=fc.msg(
            "Hello", agent_name=name, version="0.1.0", next_seq=1))]
        first += [fc.msg("AgentMessage", result=r) for r in results]

        def messages():
            yield from first
            while not self.done.wait(0.5):
                yield fc.msg("AgentMessage", heartbeat=fc.msg(
                    "Heartbeat", sent_at=ts(time.time())))

        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        call = self.channel.stream_stream(
            "/netvigil.v1.Agent/Stream",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=fc.M["netvigil.v1.CollectorMessage"].FromString)
        self.responses = call(messages(), timeout=120)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for m in self.responses:
                if m.HasField("ack"):
                    self.acked = max(self.acked, m.ack.acked_through_seq)
        except grpc.RpcError:
            pass

    def close(self):
        self.done.set()
        self.responses.cancel()
        self.reader.join(10)
        self.channel.close()


def path_result(seq, at, target, loss, avg_ms):
    return fc.msg("Result", seq=seq, produced_at=ts(at), path=fc.msg(
        "PathRun", target=target, started_at=ts(at), finished_at=ts(at + 1),
        destination_reached=True,
        hops=[fc.msg("PathHop", ttl=1, sent=10, received=10)],
        destination=fc.msg("PathHop", ttl=1, sent=10, received=10,
                           loss_percent=loss, avg_ms=avg_ms)))


class MetricsTest(nvtest.CollectorCase, unittest.TestCase):
    TAG = "metrics"
    # Speed on (a speed result is refused where the plan disables it); the
    # scheduler's first test to these rogue agents gets no answer, and is
    # recorded as failed only after its slot and 60 s, long after this test.
    EXTRA = ""  # the default plan: speed tests on

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.metrics_port = nvtest.free_port()
        with open(cls.config) as f:
            text = f.read()
        text = text.replace("listen:\n", f'listen:\n  metrics: "127.0.0.1:{cls.metrics_port}"\n', 1)
        with open(cls.config, "w") as f:
            f.write(text)

    def scrape(self):
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.headers.get("Content-Type"), r.read().decode("utf-8")

    def test_1_off_loopback_is_refused(self):
        bad = os.path.join(self.dir, "bad.yaml")
        with open(self.config) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(re.sub(r'metrics: "[^"]*"', 'metrics: "0.0.0.0:9464"', text))
        r = subprocess.run([nvtest.COLLECTOR, "check-config", bad],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("field 'listen.metrics' (0.0.0.0:9464)", r.stderr)
        self.assertIn("loopback", r.stderr)

    def test_2_page_parses_and_matches_the_query_service(self):
        self.start_collector()
        now = time.time()
        alpha = Agent(self.port, "alpha", [
            path_result(1, now - 5, "internet", 25.0, 12.5),
            path_result(2, now - 4, HOSTILE, 0.0, 3.25),
            fc.msg("Result", seq=3, produced_at=ts(now - 3), speed=fc.msg(
                "SpeedResult", client="alpha", server="beta", started_at=ts(now - 3),
                finished_at=ts(now - 2), duration_s=1.0, outcome=1,
                forward=fc.msg("SpeedFigures", received_bps=94.5e6))),
            # Refused by validation (a path run needs a target): a gap record.
            fc.msg("Result", seq=4, produced_at=ts(now - 2), path=fc.msg(
                "PathRun", target="", started_at=ts(now - 2))),
            # The agent's spool dropped five results.
            fc.msg("Result", seq=10, produced_at=ts(now - 1), gap=fc.msg(
                "Gap", first_seq=5, last_seq=9, count=5, reason="spool full")),
        ])
        beta = Agent(self.port, "beta", [path_result(1, now - 5, "internet", 0.0, 1.0)])
        try:
            nvtest.wait_until(lambda: alpha.acked >= 10 and beta.acked >= 1, 30,
                              "both agents' results committed")

            def both_online():
                agents = nvtest.agents_json(self.socket)
                return all(agents.get(n, {}).get("online") for n in ("alpha", "beta"))
            nvtest.wait_until(both_online, 20, "both agents online")

            t0 = time.monotonic()
            content_type, page = self.scrape()
            scrape_s = time.monotonic() - t0
            r = nvtest.cli(self.socket, "overview", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            overview = json.loads(r.stdout)
        finally:
            alpha.close()
            beta.close()

        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        self.assertLess(scrape_s, 2.0)
        # Strict parse: a malformed line raises.
        families = {f.name: f for f in text_string_to_metric_families(page)}
        for f in families.values():
            self.assertTrue(f.name.startswith("netvigil_"), f.name)
            self.assertIn(f"# HELP {f.name}", page)
        # The escaped form is on the page, and it reads back as sent.
        self.assertIn('target="q\\"uote\\\\back\\nnew}line"', page)

        def samples(family, suffix=""):
            return {tuple(sorted(s.labels.items())): s.value
                    for s in families[family].samples
                    if s.name == families[family].name + suffix
                    or (suffix == "" and s.name == family)}

        # Latest figures: the Query service's Overview, figure for figure.
        loss = samples("netvigil_path_loss_ratio")
        rtt = samples("netvigil_path_rtt_seconds")
        seen_targets = set()
        for h in overview["hosts"]:
            host = h["agent"]["name"]
            for p in h.get("paths", []):
                key = (("host", host), ("target", p["target"]))
                seen_targets.add(p["target"])
                self.assertAlmostEqual(loss[key], p.get("lossPercent", 0) / 100, places=12)
                self.assertAlmostEqual(rtt[key], p.get("avgMs", 0) / 1000, places=12)
        self.assertIn(HOSTILE, seen_targets)
        self.assertEqual(len(loss), sum(len(h.get("paths", [])) for h in overview["hosts"]))
        self.assertAlmostEqual(loss[(("host", "alpha"), ("target", "internet"))], 0.25)
        self.assertAlmostEqual(rtt[(("host", "alpha"), ("target", HOSTILE))], 0.00325)

        bps = samples("netvigil_speed_throughput_bits_per_second")
        cells = [c for c in overview["speed"].get("cells", [])
                 if c.get("outcome") == "SPEED_OUTCOME_OK"]
        self.assertEqual(len(bps), len(cells))
        for c in cells:
            self.assertEqual(bps[(("client", c["client"]), ("server", c["server"]))], c["bps"])
        self.assertEqual(bps[(("client", "alpha"), ("server", "beta"))], 94.5e6)

        online = sum(1 for h in overview["hosts"] if h["agent"].get("online"))
        self.assertEqual(samples("netvigil_agents_online")[()], online)
        self.assertEqual(online, 2)
        self.assertEqual(samples("netvigil_query_up")[()], 1)

        # The collector's own health.
        self.assertEqual(families["netvigil_ingest_results"].type, "counter")
        self.assertGreaterEqual(samples("netvigil_ingest_results", "_total")[()], 6)
        refused = samples("netvigil_results_refused", "_total")
        self.assertEqual(sum(refused.values()), 1, refused)
        self.assertEqual(samples("netvigil_spool_gaps", "_total")[()], 1)
        self.assertEqual(samples("netvigil_spool_lost_results", "_total")[()], 5)
        hist = families["netvigil_ingest_commit_latency_seconds"]
        self.assertEqual(hist.type, "histogram")
        count = [s.value for s in hist.samples if s.name.endswith("_count")][0]
        inf = [s.value for s in hist.samples
               if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"][0]
        self.assertEqual(count, inf)
        self.assertGreaterEqual(count, 6)
        self.assertIn("netvigil_ingest_queued_bytes", families)
        self.assertEqual(samples("netvigil_metrics_series_dropped")[()], 0)

        # Another path is not served.
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/", timeout=10)
        self.assertEqual(e.exception.code, 404)


if __name__ == "__main__":
    nvtest.main()
