#!/usr/bin/python3
"""Issue 15, memory: hostile agents cannot take the collector's memory, nor
hold up the other agents' results.

Real parts: a private PostgreSQL and the collector (--insecure: plain text,
names from the hello, which is all a memory test needs). The agents are
python-grpc streams speaking the agent protocol with messages built from
the proto files:

- 3 hostile agents send maximum-size valid socket snapshots (just under the
  32 MiB receive limit, and under the 128 MiB parse estimate) back to back
  for 25 s, while an honest agent sends a small snapshot every 0.25 s. The
  collector's RSS, sampled every 0.1 s, stays under 512 MiB; the honest
  agent's send-to-acknowledgement p99 stays under 2 s (this bounds
  receipt-to-commit from above); every honest result is stored exactly
  once, and every acknowledged hostile result is stored.
- A 30 MiB message of empty sub-messages (a parse that would cost 60x its
  size) is refused before parsing, RESOURCE_EXHAUSTED naming why, with no
  rise in RSS; a message over 32 MiB is refused by gRPC. Nothing stored for
  either, and the collector serves the CLI and the honest agent after.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import fake_collector as fc  # noqa: E402  (the proto messages, built at run time)

import grpc  # noqa: E402

MAX_MESSAGE = 32 << 20
RSS_LIMIT_MIB = 512


def varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def hello(name: str) -> bytes:
    return fc.msg("AgentMessage", hello=fc.msg("Hello", agent_name=name,
                                                 version="0.1.0")).SerializeToString()


def result_template(sockets: int, exe_len: int, exe: str = "/usr/bin/") -> bytes:
    """A Result (no seq) with a socket snapshot of `sockets` ESTAB
    connections of one process to one remote (one history key: the point
    here is the size, not the store's work), as bytes."""
    snap = fc.msg("SocketSnapshot")
    snap.taken_at.GetCurrentTime()
    path = (exe + "x" * exe_len)[:max(exe_len, len(exe))]
    for i in range(sockets):
        e = snap.sockets.add()
        e.proto = 1
        e.family = 4
        e.state = "ESTAB"
        e.local_address = "192.0.2.10"
        e.local_port = 1024 + i % 60000
        e.remote_address = "198.51.100.7"
        e.remote_port = 443
        e.uid = 1000
        e.inode = 100000 + i
        p = e.processes.add()
        p.pid = 4242
        p.name = "hostile"
        p.exe = path
        p.uid = 1000
    r = fc.msg("Result", sockets=snap)
    r.produced_at.GetCurrentTime()
    return r.SerializeToString()


def agent_message(template: bytes, seq: int) -> bytes:
    """AgentMessage{result: template with seq}: a field appended to a
    message's bytes sets it (the last value wins), so the big template is
    built once."""
    result = template + b"\x08" + varint(seq)
    return b"\x1a" + varint(len(result)) + result


class Agent:
    """One agent stream over python-grpc: a hello, then what `produce(seq)`
    yields every `interval` s (0: back to back) until stopped; records
    acknowledgements and the time from each send to the ack covering it."""

    def __init__(self, port, name, template, interval):
        self.name, self.template, self.interval = name, template, interval
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stop_event = threading.Event()
        self.sent = {}  # seq -> monotonic send time
        self.latencies = []
        self.acked = 0
        self.status = None
        self.welcome = threading.Event()
        self.first_seq = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self, wait_acks=0.0):
        deadline = time.monotonic() + wait_acks
        while time.monotonic() < deadline and self.acked < self.last_sent():
            time.sleep(0.1)
        self.stop_event.set()
        self._thread.join(timeout=60)

    def last_sent(self):
        with self._lock:
            return max(self.sent) if self.sent else 0

    def _requests(self):
        yield hello(self.name)
        self.welcome.wait(30)
        seq = self.first_seq
        while not self.stop_event.is_set():
            with self._lock:
                self.sent[seq] = time.monotonic()
            yield agent_message(self.template, seq)
            seq += 1
            if self.interval:
                self.stop_event.wait(self.interval)
        # Keep the stream open a moment for the last acks.
        self.stop_event.wait(0.5)

    def _run(self):
        call = self.channel.stream_stream("/netvigil.v1.Agent/Stream",
                                          request_serializer=lambda b: b,
                                          response_deserializer=lambda b: b)
        responses = call(self._requests())
        try:
            for raw in responses:
                m = fc.M["netvigil.v1.CollectorMessage"].FromString(raw)
                if m.HasField("welcome"):
                    self.first_seq = m.welcome.acked_through_seq + 1
                    self.welcome.set()
                elif m.HasField("ack"):
                    now = time.monotonic()
                    with self._lock:
                        for seq in range(self.acked + 1, m.ack.acked_through_seq + 1):
                            if seq in self.sent:
                                self.latencies.append(now - self.sent[seq])
                        self.acked = max(self.acked, m.ack.acked_through_seq)
            self.status = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.status = (e.code(), e.details())
        finally:
            self.welcome.set()
            self.channel.close()


def one_shot(port, name, payload: bytes):
    """A hello and one raw message; the stream's (code, details)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.stream_stream("/netvigil.v1.Agent/Stream",
                                request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)

        def requests():
            yield hello(name)
            time.sleep(0.5)
            yield payload
            time.sleep(10)

        try:
            for _ in call(requests(), timeout=30):
                pass
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()


class MemoryHardeningTest(nvtest.CollectorCase, unittest.TestCase):
    TAG = "hardening-mem"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # 150,000 connections with a 120-byte executable path each: just
        # under the receive limit, within the validation limits and under
        # the parse estimate's.
        cls.big = result_template(150_000, 120)
        cls.small = result_template(100, 20)
        print(f"\n  hostile result {len(cls.big) / 2**20:.1f} MiB, honest "
              f"{len(cls.small) / 1024:.1f} KiB", file=sys.stderr)
        assert len(cls.big) < MAX_MESSAGE - 1024

    def setUp(self):
        if self.collector is None or not self.collector.alive():
            self.start_collector()
        self.pid = self.collector.pid

    def stored(self, name):
        out = self.pg.psql(
            "SELECT count(*), count(DISTINCT r.seq), coalesce(min(r.seq), 0), "
            "coalesce(max(r.seq), 0) FROM results r JOIN agents a ON a.id = r.agent_id "
            f"WHERE a.name = '{name}'")
        return tuple(int(x) for x in out.split("|"))

    def test_1_hostile_maximum_size_messages(self):
        rss = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    rss.append(rss_mib(self.pid))
                except OSError:
                    return
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        base = rss_mib(self.pid)
        honest = Agent(self.port, "honest", self.small, 0.25).start()
        time.sleep(2)
        hostile = [Agent(self.port, f"hostile{i}", self.big, 0).start() for i in range(3)]
        time.sleep(25)
        for h in hostile:
            h.stop()
        honest_during = list(honest.latencies)
        honest.stop(wait_acks=15)
        time.sleep(1)
        stop.set()
        sampler.join()

        peak = max(rss)
        lat = sorted(honest_during)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        hostile_acked = [h.acked for h in hostile]
        print(f"  collector RSS: {base:.0f} MiB before, peak {peak:.0f} MiB with 3 hostile "
              f"agents; hostile results acknowledged {hostile_acked} "
              f"({sum(hostile_acked) * len(self.big) / 2**20:.0f} MiB); honest "
              f"send-to-ack p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms over {len(lat)} results", file=sys.stderr)
        self.assertTrue(self.collector.alive())
        self.assertLess(peak, RSS_LIMIT_MIB)
        self.assertGreater(sum(hostile_acked), 3, "hostile agents' results do get stored")
        self.assertGreater(len(lat), 50)
        self.assertLess(p99, 2.0)
        # Nothing lost, nothing twice, nothing acknowledged unstored.
        self.assertEqual(honest.acked, honest.last_sent(), "every honest result acknowledged")
        rows, distinct, lo, hi = self.stored("honest")
        self.assertEqual((rows, distinct, lo, hi), (hi, hi, 1, honest.last_sent()))
        for h in hostile:
            rows, distinct, lo, hi = self.stored(h.name)
            self.assertEqual(rows, distinct)
            self.assertGreaterEqual(hi, h.acked)
            self.assertEqual(rows, hi, f"{h.name}: a sequence number missing")
        self.assertEqual(nvtest.cli(self.socket, "agents").returncode, 0)

    def test_2_parse_bombs_and_oversize_are_refused_before_memory(self):
        # 30 MiB of empty socket entries: 2 bytes each on the wire, an object
        # of ~100 bytes each parsed (about 1.5 GiB).
        entries = (b"\x12\x00") * (15 << 20)
        snapshot = b"\x5a" + varint(len(entries)) + entries  # Result.sockets (11)
        bomb = b"\x1a" + varint(len(snapshot) + 2) + b"\x08\x01" + snapshot
        before = rss_mib(self.pid)
        code, details = one_shot(self.port, "bomber", bomb)
        after = rss_mib(self.pid)
        print(f"\n  parse bomb ({len(bomb) / 2**20:.0f} MiB): {code.name} \"{details}\"; "
              f"RSS {before:.0f} -> {after:.0f} MiB", file=sys.stderr)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("to parse", details)
        self.assertLess(after - before, 100)
        self.assertIn("message_refused name=bomber", self.collector.output())

        oversize = agent_message(self.big + b"\x1a" + varint(6 << 20) + b"x" * (6 << 20), 1)
        self.assertGreater(len(oversize), MAX_MESSAGE)
        code, details = one_shot(self.port, "oversize", oversize)
        print(f"  {len(oversize) / 2**20:.0f} MiB message: {code.name} \"{details}\"",
              file=sys.stderr)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(self.stored("bomber")[0], 0)
        self.assertEqual(self.stored("oversize")[0], 0)

        # Still serving: the CLI and an agent.
        self.assertEqual(nvtest.cli(self.socket, "agents").returncode, 0)
        a = Agent(self.port, "after", self.small, 0.2).start()
        time.sleep(3)
        a.stop(wait_acks=10)
        self.assertGreater(a.acked, 5)
        self.assertEqual(self.stored("after")[0], a.acked)


if __name__ == "__main__":
    nvtest.main()
