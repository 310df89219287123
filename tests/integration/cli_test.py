#!/usr/bin/python3
"""Every `netvigil` command through the real binary, against a real collector
with a private PostgreSQL and a real agent on loopback: good input exits 0
with only the table or valid JSON on stdout; bad input exits with the
README's code (2 usage, 3 unreachable, 5 not found, 6 refused) and one
line on stderr naming what was wrong, and nothing on stdout.

Also the two faults issue 18 put first: a WatchAlerts stream opened while
an alert is open (it used to kill the collector with a gRPC assertion),
through `netvigil alerts --follow` and through a client that knows the
Query service only from server reflection; and `--since` values that used
to abort the CLI inside protobuf."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

AGENT = "h1"

COLLECTOR_EXTRA = """probes:
  path:
    every: 3s
    count: 2
    interval: 100ms
    max_ttl: 4
    targets:
      - name: loop4
        address: 127.0.0.1
      - name: loop6
        address: "::1"
  sockets:
    every: 1s
  files:
    every: 2s
  speed:
    enabled: false
analysis:
  learning_period: 0s
  # New things open after this hold (README, "Alerts and fail2ban").
  multi_host_window: 2s
"""


class CliTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("cli")
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.socket = os.path.join(cls.dir, "q.sock")
        port = cls.port = nvtest.free_port()
        watched = os.path.join(cls.dir, "home")
        os.makedirs(watched)
        cfg = os.path.join(cls.dir, "c.yaml")
        with open(cfg, "w") as f:
            f.write(nvtest.collector_yaml(cls.pg.dsn, f"127.0.0.1:{port}", cls.socket,
                                          extra=COLLECTOR_EXTRA))
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cfg, "--insecure"],
                                       os.path.join(cls.dir, "collector.log")).start()
        cls.agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", AGENT,
             "--collector", f"127.0.0.1:{port}", "--state-dir", os.path.join(cls.dir, "agent"),
             "--no-iperf-server", "--watch", watched],
            os.path.join(cls.dir, "agent.log")).start()
        # A process holding a file in the watched folder, for `files`.
        cls.holder = open(os.path.join(watched, "notes.txt"), "w")
        nvtest.wait_until(lambda: nvtest.agents_json(cls.socket).get(AGENT, {}).get("online"),
                          60, "the agent online")

        def both_targets_ran():
            o = json.loads(nvtest.cli(cls.socket, "overview", "--json").stdout)
            for h in o.get("hosts", []):
                if h["agent"]["name"] == AGENT:
                    return {p["target"] for p in h.get("paths", [])} == {"loop4", "loop6"}
            return False
        nvtest.wait_until(both_targets_ran, 60, "path runs to both targets")
        # A snapshot stored (taken_at set: `sockets` exits 0 for a known host
        # with none yet), and then one more probe interval so the analysis
        # has learnt the first one: a listener a test opens later is news,
        # not part of the baseline.
        def snapshot_taken():
            r = nvtest.cli(cls.socket, "sockets", AGENT, "--json")
            return r.returncode == 0 and bool(json.loads(r.stdout).get("takenAt"))
        nvtest.wait_until(snapshot_taken, 30, "a socket snapshot")
        time.sleep(2)

    @classmethod
    def tearDownClass(cls):
        cls.holder.close()
        cls.agent.stop()
        cls.collector.stop()
        cls.pg.stop()

    def run_cli(self, *args, timeout=60):
        return nvtest.cli(self.socket, *args, timeout=timeout)

    def assert_collector_alive(self):
        self.assertTrue(self.collector.alive(), "the collector died; see collector.log")
        r = self.run_cli("agents")
        self.assertEqual(r.returncode, 0, r.stderr)

    # ------------------------------------------------------------ good input

    GOOD = [
        ["agents"],
        ["overview"],
        ["path", AGENT, "loop4"],
        ["path", AGENT, "loop6", "--since", "1h"],
        ["sockets", AGENT],
        ["sockets", AGENT, "--changes"],
        ["sockets", AGENT, "--changes", "--since", "90d"],
        ["sockets", AGENT, "--changes", "--since", "2w"],
        ["files", AGENT],
        ["files", AGENT, "--since", "7d"],
        ["speed", "matrix"],
        ["speed", "history", AGENT, AGENT],
        ["alerts"],
        ["alerts", "--all", "--since", "1d"],
        ["alerts", "--kind", "new_listener"],
        ["alerts", "--host", AGENT],
        ["probe", AGENT, "sockets", "--deadline", "30"],
        ["probe", AGENT, "files", "--deadline", "30"],
        ["probe", AGENT, "path", "loop4", "--deadline", "30"],
    ]

    def test_every_command_prints_a_table_or_json_and_nothing_else(self):
        for args in self.GOOD:
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
                self.assertEqual(r.stderr, "", args)
                self.assertTrue(r.stdout.endswith("\n"), args)
                self.assertNotIn("netvigil:", r.stdout, args)
                for line in r.stdout.splitlines():
                    self.assertNotIn("\x1b", line)
                j = self.run_cli(*args, "--json")
                self.assertEqual(j.returncode, 0, f"{args} --json: {j.stderr}")
                self.assertEqual(j.stderr, "", args)
                json.loads(j.stdout)  # the whole of stdout is one JSON document

    def test_overview_says_when_in_utc_and_fits_100_columns(self):
        out = self.run_cli("overview").stdout
        self.assertRegex(out.splitlines()[0],
                         r"^netvigil overview as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        for line in out.splitlines():
            self.assertLessEqual(len(line), 100, line)
        self.assertNotIn("what the server received", out)

    def test_probe_path_without_a_target_prints_every_target(self):
        r = self.run_cli("probe", AGENT, "path", "--deadline", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("PATH: loop4", r.stdout)
        self.assertIn("PATH: loop6", r.stdout)
        # The header names the agent, not this machine.
        self.assertIn(f"HOST: {AGENT} ", r.stdout)
        self.assertNotIn(f"HOST: {socket.gethostname()} ", r.stdout)
        j = self.run_cli("probe", AGENT, "path", "--deadline", "30", "--json")
        self.assertEqual(j.returncode, 0, j.stderr)
        targets = sorted(x["result"]["path"]["target"] for x in json.loads(j.stdout))
        self.assertEqual(targets, ["loop4", "loop6"])

    def test_probe_files_on_a_missing_folder_says_so_and_exits_1(self):
        # An agent whose watched folder is not there: the probe still answers,
        # the reason goes to stderr and the exit status is 1, not 0 with an
        # empty table that reads "nothing there".
        # The agent refuses a --watch folder that is missing at start, so the
        # folder goes away after the agent is up (as a home on an unmounted
        # disk would).
        missing = os.path.join(self.dir, "no-such-home")
        os.makedirs(missing)
        other = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", "nofolder",
             "--collector", f"127.0.0.1:{self.port}", "--state-dir",
             os.path.join(self.dir, "agent-nofolder"), "--no-iperf-server",
             "--watch", missing],
            os.path.join(self.dir, "agent-nofolder.log")).start()
        try:
            nvtest.wait_until(
                lambda: nvtest.agents_json(self.socket).get("nofolder", {}).get("online"),
                60, "the second agent online")
            os.rmdir(missing)
            r = self.run_cli("probe", "nofolder", "files", "--deadline", "30")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(missing, r.stderr)
            self.assertIn("does not exist", r.stderr)
            self.assertIn("COMMAND", r.stdout)  # what it found is still printed
        finally:
            other.stop()

    def test_since_90d_answers_each_part_at_its_resolution(self):
        # Two hours of aggregates 30 days back, as retention folds them,
        # seeded with SQL: past raw_days (7) only hours are kept.
        self.pg.psql(
            "INSERT INTO path_hourly (agent_id, target, hour, runs, reached_runs,"
            " avg_loss, max_loss, avg_ms, best_ms, worst_ms, median_ms, stddev_ms)"
            " SELECT id, 'loop4', date_trunc('hour', now() - interval '30 days') + h,"
            " 60, 60, 0.5, 10, 1.25, 0.5, 9.5, 1.125, 0.75 FROM agents,"
            " (VALUES (interval '0 hours'), (interval '1 hour')) v(h)"
            f" WHERE name = '{AGENT}' ON CONFLICT DO NOTHING")
        r = self.run_cli("path", AGENT, "loop4", "--since", "90d")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1h aggregates before", r.stdout)
        self.assertIn("raw from then on", r.stdout)
        rows = [l.split() for l in r.stdout.splitlines() if "days ago" in l]
        self.assertEqual(len(rows), 2, r.stdout)
        for row in rows:
            self.assertEqual(row[3], "1h", row)  # "30 days ago 1h 60 ..."
        self.assertTrue(any(" raw " in l for l in r.stdout.splitlines()), r.stdout)
        self.assertIn(f"HOST: {AGENT} ", r.stdout)  # the latest raw run's report
        j = json.loads(self.run_cli("path", AGENT, "loop4", "--since", "90d", "--json").stdout)
        self.assertEqual(j["resolution"], "RESOLUTION_MIXED")
        self.assertEqual(j["runs"][0]["resolution"], "RESOLUTION_HOURLY")
        self.assertEqual(j["runs"][0]["aggregate"]["medianMs"], 1.125)
        self.assertEqual(j["runs"][-1]["resolution"], "RESOLUTION_RAW")
        # Hourly everywhere; raw from before raw_days is refused (exit 6).
        h = json.loads(self.run_cli("path", AGENT, "loop4", "--since", "90d",
                                    "--resolution", "hourly", "--json").stdout)
        self.assertEqual(h["resolution"], "RESOLUTION_HOURLY")
        self.assertTrue(all(x["resolution"] == "RESOLUTION_HOURLY" for x in h["runs"]))
        raw = self.run_cli("path", AGENT, "loop4", "--since", "90d", "--resolution", "raw")
        self.assertEqual(raw.returncode, 6, raw.stderr)
        self.assertIn("raw path runs are kept for 168h", raw.stderr)
        self.assertEqual(raw.stdout, "")

    def test_path_report_names_the_agent(self):
        r = self.run_cli("path", AGENT, "loop4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"HOST: {AGENT} ", r.stdout)

    def test_help_shows_defaults(self):
        for args, default in ((["sockets", "--help"], "24h"),
                              (["files", "--help"], "24h"),
                              (["speed", "history", "--help"], "30d"),
                              (["alerts", "--help"], "30d"),
                              (["probe", "--help"], "60"),
                              (["ack", "--help"], "cli"),
                              (["--help"], "10")):
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"={default}", r.stdout)  # CLI11: TEXT=24h

    # ------------------------------------------------------------- bad input

    # (args, exit code, what stderr must say)
    BAD = [
        (["bogus"], 2, "unknown command 'bogus'"),
        # The option is what is wrong, not its value taken for a command.
        (["--config", "x.yaml", "overview"], 2, "--config"),
        (["path"], 2, "host is required"),
        (["--timeout", "0", "agents"], 2, "--timeout"),
        (["--timeout", "nan", "agents"], 2, "--timeout"),
        (["probe", AGENT, "sockets", "--deadline", "nan"], 2, "--deadline"),  # aborted
        (["probe", AGENT, "bogus"], 2, "bogus"),
        (["sockets", AGENT, "--changes", "--since", "99999999999h"], 2, "--since"),
        (["sockets", AGENT, "--changes", "--since=-5m"], 2, "--since"),
        (["files", AGENT, "--since", "soon"], 2, "'soon'"),
        (["ack", "abc"], 2, "got 'abc'"),
        (["ack", "0"], 2, "got '0'"),
        (["ack", "99999999999999999999999"], 2, "alert ID"),
        (["ack", "424242"], 5, "424242"),
        (["path", "\udcff\udcfe", "loop4"], 2, "not valid UTF-8"),  # bytes ff fe
        (["path", "nohost", "loop4"], 5, "nohost"),
        (["path", AGENT, "nowhere"], 5, "nowhere"),
        (["sockets", "nohost"], 5, "nohost"),
        (["files", "nohost"], 5, "nohost"),
        (["speed", "history", "nohost", AGENT], 5, "nohost"),
        (["speed", "history", AGENT, "nohost"], 5, "nohost"),
        (["alerts", "--host", "nohost"], 5, "no agent named 'nohost'"),
        (["alerts", "--kind", "nosuchkind"], 2, "no alert kind 'nosuchkind'"),
        (["probe", "nohost", "sockets"], 5, "nohost"),
        (["probe", AGENT, "path", "nowhere", "--deadline", "20"], 6, "nowhere"),
        (["probe", AGENT, "speed", "nohost"], 5, "nohost"),
    ]

    def test_bad_input_gets_its_exit_code_and_a_clear_line(self):
        for args, code, says in self.BAD:
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertEqual(r.returncode, code, f"{args}: {r.stderr}")
                self.assertIn(says, r.stderr, args)
                self.assertEqual(r.stdout, "", args)
                self.assertNotIn("Traceback", r.stderr)
                # No 300-digit numbers, no CHECK failures.
                self.assertNotRegex(r.stderr, r"\d{30}")
                self.assertNotIn("CHECK", r.stderr)
        self.assert_collector_alive()

    def test_unreachable_names_the_socket_and_the_cause_not_grpc(self):
        missing = os.path.join(self.dir, "no-such.sock")
        r = nvtest.cli(missing, "agents")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(missing, r.stderr)
        self.assertIn("no such socket", r.stderr)
        # A socket file nobody listens on (a collector that died).
        stale = os.path.join(self.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        r = nvtest.cli(stale, "overview")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("nothing listens", r.stderr)
        for out in (r.stderr,):
            self.assertNotIn("failed to connect to all addresses", out)
            self.assertNotIn("UNKNOWN", out)
        self.assertEqual(r.stdout, "")

    # --------------------------------------------- WatchAlerts with alerts open

    def open_listener_alert(self):
        """A new TCP listener on loopback: with learning_period 0s it is
        news at the next snapshot. Returns (socket, port) once the alert is
        open."""
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen()
        port = ls.getsockname()[1]

        def open_alert():
            r = self.run_cli("alerts", "--kind", "new_listener", "--json")
            for a in json.loads(r.stdout).get("alerts", []):
                if f":{port}" in a.get("summary", ""):
                    return a
            return None
        alert = nvtest.wait_until(open_alert, 60, f"a new_listener alert for port {port}")
        return ls, port, alert

    def test_alerts_follow_with_an_alert_open_keeps_the_collector_alive(self):
        ls, port, alert = self.open_listener_alert()
        try:
            for attempt in range(2):  # the old collector died on the first
                p = subprocess.Popen([nvtest.CLI, "--socket", self.socket, "alerts", "--follow"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                got = {}

                def read():
                    got["err"] = p.stderr.readline()
                    for line in p.stdout:
                        if f"#{alert['id']} " in line:
                            got["line"] = line
                            return
                t = threading.Thread(target=read, daemon=True)
                t.start()
                t.join(30)
                try:
                    self.assertIn("following alerts", got.get("err", ""))
                    self.assertIn("line", got, "the open alert never arrived")
                    self.assertIn("OPENED", got["line"])
                    self.assertIn("new_listener", got["line"])
                    self.assertRegex(got["line"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ")
                    time.sleep(1)
                    self.assertIsNone(p.poll(), "the follower stopped")
                    self.assert_collector_alive()
                finally:
                    p.kill()  # our own child, by its handle
                    p.wait()
                    p.stdout.close()
                    p.stderr.close()
        finally:
            ls.close()

    def test_watch_alerts_through_server_reflection_with_an_alert_open(self):
        ls, port, alert = self.open_listener_alert()
        try:
            events = reflection_watch_alerts(self.socket, want=alert["id"], timeout=30)
            self.assertTrue(any(e.alert.id == int(alert["id"]) and e.type == 1 for e in events),
                            [str(e) for e in events])
            self.assert_collector_alive()
        finally:
            ls.close()


# A minimal v1alpha server reflection client: the protocol's messages are
# written here (the spec's field numbers) and compiled with protoc at run
# time; everything about netvigil comes from the server.
REFLECTION_PROTO = """
syntax = "proto3";
package grpc.reflection.v1alpha;
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ErrorResponse error_response = 7;
  }
}
"""


def _reflection_messages():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "reflection.proto")
        with open(src, "w") as f:
            f.write(REFLECTION_PROTO)
        out = os.path.join(d, "r.pb")
        subprocess.run(["protoc", "-I", d, "--descriptor_set_out=" + out, src], check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return message_factory.MessageFactory(pool).GetMessages([fd.name for fd in fds.file])


def reflection_watch_alerts(sock: str, want: str, timeout: float):
    """Asks the server for the file defining netvigil.v1.Query (and what it
    imports), builds the message classes from those descriptors alone, opens
    WatchAlerts{include_open: true} and returns the events read until alert
    `want` arrives or `timeout` passes."""
    R = _reflection_messages()
    Req = R["grpc.reflection.v1alpha.ServerReflectionRequest"]
    Resp = R["grpc.reflection.v1alpha.ServerReflectionResponse"]
    channel = grpc.insecure_channel(f"unix:{sock}")
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=Resp.FromString)
    files = {}
    pending = [Req(file_containing_symbol="netvigil.v1.Query")]
    while pending:
        for resp in info(iter([pending.pop()]), timeout=10):
            if resp.HasField("error_response"):
                raise AssertionError(resp.error_response.error_message)
            for raw in resp.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(fd.name, fd)
        for fd in list(files.values()):
            for dep in fd.dependency:
                if dep not in files and not any(p.file_by_filename == dep for p in pending):
                    pending.append(Req(file_by_filename=dep))
    pool = descriptor_pool.DescriptorPool()
    added = set()
    while len(added) < len(files):  # dependencies first
        progress = False
        for name, fd in files.items():
            if name not in added and all(d in added for d in fd.dependency):
                pool.Add(fd)
                added.add(name)
                progress = True
        if not progress:
            raise AssertionError(f"unresolvable descriptors: {sorted(set(files) - added)}")
    service = pool.FindServiceByName("netvigil.v1.Query")
    method = service.methods_by_name["WatchAlerts"]
    classes = message_factory.MessageFactory(pool)
    Request = classes.GetPrototype(method.input_type)
    Event = classes.GetPrototype(method.output_type)
    call = channel.unary_stream(f"/netvigil.v1.Query/{method.name}",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=Event.FromString)
    stream = call(Request(include_open=True), timeout=timeout)
    events = []
    try:
        for e in stream:
            events.append(e)
            if e.alert.id == int(want):
                break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        stream.cancel()
        channel.close()
    return events


if __name__ == "__main__":
    nvtest.main()
