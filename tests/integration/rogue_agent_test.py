#!/usr/bin/python3
"""A rogue agent against the real collector: results that are not bound to
their sender or plan, figures that are not numbers, times in year 9999, gap
records that lie about their range, sequence numbers past the limit and
strings that are not UTF-8.

The rogue client is built from the proto files at test time
(python3-grpc-tools' grpc_tools.protoc into a temporary folder) and speaks
plain gRPC to a real netvigil-collector (--insecure: the name comes from the
hello) backed by a private PostgreSQL. A real netvigil-agent delivers
throughout, and every test asserts it keeps being served, as does the CLI.

What the collector must do with each refusal: a status or an ack naming the
agent and the reason, a log line, nothing of the refused payload stored, and
(for a numbered result) a gap record in its place so the sender moves on.
"""

import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

import grpc  # noqa: E402

MAX_SEQ = (1 << 62) - 1


def build_stubs():
    """agent_pb2, probes_pb2 and agent_pb2_grpc from our protos."""
    out = tempfile.mkdtemp(prefix="nv-rogue-protos-")
    proto = os.path.join(nvtest.SOURCE_DIR, "proto")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto}", "-I/usr/include",
         f"--python_out={out}", f"--grpc_python_out={out}",
         os.path.join(proto, "netvigil/v1/agent.proto"),
         os.path.join(proto, "netvigil/v1/probes.proto")],
        check=True)
    sys.path.insert(0, out)
    from netvigil.v1 import agent_pb2, agent_pb2_grpc, probes_pb2  # noqa: E402
    return agent_pb2, agent_pb2_grpc, probes_pb2


agent_pb2, agent_pb2_grpc, probes_pb2 = build_stubs()


class Rogue:
    """One Agent stream. send() queues a message; acks() gathers what came
    back; the stream's status is in `status` once it ended."""

    def __init__(self, port, name, next_seq=1):
        self.name = name
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.out = queue.Queue()
        self.acked = 0
        self.refused = {}  # seq -> reason
        self.status = None
        self.lock = threading.Lock()
        # Raw bytes on the wire, so a test can send what the Python
        # protobuf would not build (invalid UTF-8).
        call = self.channel.stream_stream(
            "/netvigil.v1.Agent/Stream", request_serializer=lambda b: b,
            response_deserializer=agent_pb2.CollectorMessage.FromString)
        self.responses = call(iter(self.out.get, None))
        hello = agent_pb2.AgentMessage()
        hello.hello.agent_name = name
        hello.hello.version = "rogue"
        hello.hello.next_seq = next_seq
        self.send(hello)
        first = next(self.responses)
        assert first.HasField("welcome"), first
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for m in self.responses:
                if m.HasField("ack"):
                    with self.lock:
                        if m.ack.refused_seq:
                            self.refused[m.ack.refused_seq] = m.ack.refused_reason
                        self.acked = max(self.acked, m.ack.acked_through_seq)
        except grpc.RpcError as e:
            self.status = (e.code(), e.details())
            return
        self.status = (grpc.StatusCode.OK, "")

    def send(self, msg):
        self.out.put(msg if isinstance(msg, bytes) else msg.SerializeToString())

    def close(self):
        self.out.put(None)
        self.channel.close()


def dated(seq):
    r = probes_pb2.Result()
    r.seq = seq
    r.produced_at.GetCurrentTime()
    return r


def sockets(seq):
    r = dated(seq)
    r.sockets.taken_at.GetCurrentTime()
    e = r.sockets.sockets.add()
    e.proto = probes_pb2.TRANSPORT_TCP
    e.state = "LISTEN"
    e.local_address = "0.0.0.0"
    e.local_port = 22
    return r


def result_msg(r):
    m = agent_pb2.AgentMessage()
    m.result.CopyFrom(r)
    return m


class RogueAgentTest(nvtest.CollectorCase, unittest.TestCase):
    TAG = "rogue-agent"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.collector = nvtest.Process(
            [nvtest.COLLECTOR, "--config", cls.config, "--insecure"],
            os.path.join(cls.dir, "collector.log")).start()
        nvtest.wait_until(lambda: nvtest.cli(cls.socket, "agents").returncode == 0, 30,
                          "the collector to be up")
        state = os.path.join(cls.dir, "real-agent")
        os.makedirs(os.path.join(state, "home"), exist_ok=True)
        cls.agent = nvtest.Process(
            [nvtest.AGENT, "run", "--collector", f"127.0.0.1:{cls.port}",
             "--name", "real", "--state-dir", state, "--insecure",
             "--no-iperf-server", "--watch", os.path.join(state, "home")],
            os.path.join(cls.dir, "agent-real.log")).start()
        nvtest.wait_until(lambda: cls.pg.result_rows("real") > 0, 60,
                          "the real agent's first result")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        super().tearDownClass()

    # ------------------------------------------------------------ helpers

    def assert_real_agent_served(self):
        """The real agent's results keep being committed, and the CLI
        answers."""
        before = self.pg.result_rows("real")
        nvtest.wait_until(lambda: self.pg.result_rows("real") >= before + 2, 30,
                          "two more results from the real agent")
        self.assertEqual(nvtest.cli(self.socket, "agents").returncode, 0)
        self.assertTrue(nvtest.agents_json(self.socket)["real"].get("online"))

    def rows(self, name):
        """seq -> kind of every result stored for `name`."""
        out = self.pg.psql(
            "SELECT r.seq, r.kind FROM results r JOIN agents a ON a.id = r.agent_id"
            f" WHERE a.name = '{name}' ORDER BY 1")
        return {int(s): k for s, k in (line.split("|") for line in out.splitlines())}

    def gaps(self, name):
        out = self.pg.psql(
            "SELECT g.seq, g.first_seq, g.last_seq, g.count, g.reason FROM gaps g"
            f" JOIN agents a ON a.id = g.agent_id WHERE a.name = '{name}' ORDER BY 1")
        rows = {}
        for line in out.splitlines():
            seq, first, last, count, reason = line.split("|", 4)
            rows[int(seq)] = (int(first), int(last), int(count), reason)
        return rows

    def collector_log(self):
        return self.collector.output()

    # -------------------------------------------------------------- tests

    def test_refused_results_are_acknowledged_as_gaps_and_delivery_goes_on(self):
        rogue = Rogue(self.port, "rogue-a")
        self.addCleanup(rogue.close)
        bad = {}
        rogue.send(result_msg(sockets(1)))
        r = sockets(2)
        r.sockets.duration_ms = float("nan")
        bad[2] = "sockets.duration_ms: not a finite number"
        rogue.send(result_msg(r))
        r = dated(3)
        r.speed.client = "real"  # another agent's name
        r.speed.server = "rogue-a"
        r.speed.outcome = probes_pb2.SPEED_OUTCOME_OK
        r.speed.forward.sent_bps = 9e11
        bad[3] = "speed.client: names 'real', not the sender 'rogue-a'"
        rogue.send(result_msg(r))
        r = dated(4)
        r.speed.client = "rogue-a"  # itself, but speed is off in its plan
        r.speed.server = "real"
        bad[4] = "disabled in the sender's plan"
        rogue.send(result_msg(r))
        r = dated(5)
        r.path.target = "dns"
        r.path.started_at.seconds = 253402300799  # 9999-12-31T23:59:59Z
        bad[5] = "path.started_at: outside the window of believable times"
        rogue.send(result_msg(r))
        r = dated(6)
        r.gap.first_seq, r.gap.last_seq, r.gap.count = 1, 5, 1 << 60
        r.gap.reason = "spool_over_cap"
        bad[6] = "gap.count: more than the range"
        rogue.send(result_msg(r))
        r = dated(7)
        r.gap.first_seq, r.gap.last_seq, r.gap.count = 1, 1 << 60, 1 << 60
        r.gap.reason = "spool_over_cap"
        bad[7] = "gap.last_seq: 1152921504606846976 is beyond the numbers"
        rogue.send(result_msg(r))
        r = sockets(8)
        r.sockets.duration_ms = float("inf")
        bad[8] = "sockets.duration_ms: not a finite number"
        rogue.send(result_msg(r))
        rogue.send(result_msg(sockets(9)))
        # A gap claiming numbers that are stored: it passes (a spool's range
        # may hold sent numbers) but counts only what the range misses.
        r = dated(10)
        r.gap.first_seq, r.gap.last_seq, r.gap.count = 1, 9, 9
        r.gap.reason = "spool_over_cap"
        rogue.send(result_msg(r))

        nvtest.wait_until(lambda: rogue.acked >= 10, 30, "everything acknowledged")
        self.assertIsNone(rogue.status, "the stream stays open")
        self.assertEqual(sorted(rogue.refused), sorted(bad))
        for seq, want in bad.items():
            self.assertIn(want, rogue.refused[seq], seq)

        # Stored: the good ones as themselves, each refused one as a gap
        # record in its place with the reason; nothing of their payloads.
        rows = self.rows("rogue-a")
        self.assertEqual(rows, {1: "sockets", 2: "gap", 3: "gap", 4: "gap", 5: "gap",
                                6: "gap", 7: "gap", 8: "gap", 9: "sockets", 10: "gap"})
        gaps = self.gaps("rogue-a")
        self.assertEqual(gaps.pop(10), (1, 9, 0, "spool_over_cap"))
        self.assertEqual(sorted(gaps), sorted(bad))
        for seq, (first, last, count, reason) in gaps.items():
            self.assertEqual((first, last, count), (seq, seq, 1))
            self.assertTrue(reason.startswith("refused: "), reason)
            self.assertIn(bad[seq], reason)
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM speed_results s JOIN agents a ON a.id = s.agent_id"
            " WHERE a.name IN ('rogue-a', 'real')"), "0")
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM path_runs p JOIN agents a ON a.id = p.agent_id"
            " WHERE a.name = 'rogue-a'"), "0")
        self.assertEqual(self.pg.psql(
            "SELECT count(*) FROM results WHERE produced_at > now() + interval '1 day'"),
            "0")
        # Counts add up: every number is stored once, as a result or a gap,
        # and the refused ones are counted in gaps.
        self.assertEqual(len(rows), 10)
        self.assertEqual(self.pg.psql(
            "SELECT sum(g.count) FROM gaps g JOIN agents a ON a.id = g.agent_id"
            " WHERE a.name = 'rogue-a'"), str(len(bad)))

        log = self.collector_log()
        for seq in bad:
            self.assertRegex(log, rf"result_refused name=rogue-a seq={seq} ")
        # The loss is shown by the results_lost alert machinery.
        nvtest.wait_until(
            lambda: any(a["kind"] == "results_lost" and "rogue-a" in a.get("hosts", [])
                        for a in self.alerts()), 30, "a results_lost alert for rogue-a")
        self.assert_real_agent_served()

    def alerts(self):
        import json
        r = nvtest.cli(self.socket, "alerts", "--json")
        return json.loads(r.stdout).get("alerts", []) if r.returncode == 0 else []

    def test_one_sequence_limit(self):
        rogue = Rogue(self.port, "rogue-seq", next_seq=MAX_SEQ)
        self.addCleanup(rogue.close)
        rogue.send(result_msg(sockets(MAX_SEQ)))
        nvtest.wait_until(lambda: rogue.acked == MAX_SEQ, 30, "the top number acknowledged")
        self.assertEqual(self.rows("rogue-seq"), {MAX_SEQ: "sockets"})

        over = Rogue(self.port, "rogue-seq2")
        self.addCleanup(over.close)
        over.send(result_msg(sockets(MAX_SEQ + 1)))
        nvtest.wait_until(lambda: over.status is not None, 30, "the stream to end")
        code, details = over.status
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("agent 'rogue-seq2'", details)
        self.assertIn("result.seq", details)
        self.assertEqual(self.rows("rogue-seq2"), {})
        self.assertRegex(self.collector_log(),
                         rf"result_refused name=rogue-seq2 seq={MAX_SEQ + 1} ")
        self.assert_real_agent_served()

    def test_invalid_utf8_ends_the_stream_naming_the_agent(self):
        rogue = Rogue(self.port, "rogue-utf8")
        self.addCleanup(rogue.close)
        rogue.send(result_msg(sockets(1)))
        nvtest.wait_until(lambda: rogue.acked == 1, 30, "the first result acknowledged")
        r = sockets(2)
        r.sockets.sockets[0].state = "QQQQ"
        raw = result_msg(r).SerializeToString().replace(b"QQQQ", b"\xff\xfeQQ")
        rogue.send(raw)
        nvtest.wait_until(lambda: rogue.status is not None, 30, "the stream to end")
        code, details = rogue.status
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("agent 'rogue-utf8'", details)
        self.assertIn("not valid UTF-8", details)
        self.assertIn("netvigil.v1.SocketEntry.state", details)
        self.assertEqual(self.rows("rogue-utf8"), {1: "sockets"})
        self.assertRegex(self.collector_log(),
                         r"agent_refused name=rogue-utf8 .*reason=unparsable")
        self.assert_real_agent_served()


if __name__ == "__main__":
    nvtest.main()
