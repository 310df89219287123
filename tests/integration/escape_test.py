#!/usr/bin/python3
"""Agent-controlled strings through every sink, on the real binaries: a
private PostgreSQL, a collector with mTLS and enrollment, a real agent and a
rogue client built from the proto files (python grpcio, messages from
protoc's descriptor set, as tests/testing/fake_collector.py does).

Hostile names (ESC sequences, CR/LF carrying a fake row or a fake log line,
the bytes FF FE beside a file named with the text "\\xFF\\xFE", a bidi
override, backslashes, a very long name) on files held open under a watched
folder by a process whose executable name is hostile too, shown by
`netvigil-agent probe files` and by `netvigil files HOST` and `netvigil
alerts` through the collector; an unauthenticated Enroll whose agent_name
carries a newline and a forged log line; an enrolled rogue agent's PathRun
whose error carries newlines. What must hold: one line per row or event, no
control byte, C1 or bidi control in any output, each name shown in
common/escape.h's notation (checked against an independent implementation
here), bytes and the text naming them shown differently, and no forged line
in the collector's log or the alert log (fail2ban-regex, with the shipped
filter, finds no address in it).
"""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import fake_collector as fc  # noqa: E402  (message classes from the protos)

import grpc  # noqa: E402  (python3-grpcio)

SERVER_NAME = "collector.test"
FILTER = os.path.join(nvtest.SOURCE_DIR, "deploy", "fail2ban", "filter.d", "netvigil.conf")

# C1, bidi controls, line/paragraph separators and invisible format
# characters: README "Escaping".
HIDDEN = (set(range(0x80, 0xA0)) | {0xAD, 0x61C, 0x115F, 0x1160, 0x17B4, 0x17B5,
                                    0x180E, 0x3164, 0xFFA0, 0xFEFF}
          | set(range(0x200B, 0x2010)) | set(range(0x2028, 0x202F))
          | set(range(0x2060, 0x2070)) | set(range(0xFFF9, 0xFFFC))
          | set(range(0xE0000, 0xE0080)))


def escape(b: bytes) -> str:
    """common/escape.h's Escape, written again from the README's table."""
    out, i = [], 0
    while i < len(b):
        c = b[i]
        if c < 0x80:
            out.append({0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(
                c, "\\x%02X" % c if c < 0x20 or c == 0x7F else chr(c)))
            i += 1
            continue
        ch = None
        for n in (2, 3, 4):
            try:
                ch = b[i:i + n].decode("utf-8")
                break
            except UnicodeDecodeError:
                pass
        if ch is None:
            out.append("\\x%02X" % c)
            i += 1
        else:
            out.append("\\u{%04X}" % ord(ch) if ord(ch) in HIDDEN else ch)
            i += n
    return "".join(out)


def assert_nothing_hidden(test, text: bytes, what: str):
    """No control byte but the line ends, valid UTF-8, no hidden code point."""
    s = text.decode("utf-8")  # raises on invalid UTF-8
    for line in s.split("\n"):
        bad = [hex(ord(ch)) for ch in line
               if ord(ch) < 0x20 or ord(ch) == 0x7F or ord(ch) in HIDDEN]
        test.assertEqual(bad, [], f"{what}: {line[:200]!r}")


FORGED_ROW = b"sshd            1 0 3r /root/.ssh/authorized_keys"
FORGED_LOG = (b"2026-01-01T00:00:00.000 netvigil-collector info agent_enrolled "
              b"name=forged peer=ipv4:192.0.2.66")
# File names held open under the watched folder (NUL cannot be in a name;
# the unit tests cover it).
NAMES = [
    b"esc-\x1b]0;owned\x07\x1b[2J\x1b[31mred",
    # A fake row: the line after the newline reads as sshd holding
    # /root/.ssh/authorized_keys (folders make the slashes).
    b"row\n" + FORGED_ROW,
    b"cr\r" + FORGED_ROW,
    b"\xff\xfe",
    b"\\xFF\\xFE",
    b"invoice\xe2\x80\xaetxt.exe",
    b"nel\xc2\x85and-ls\xe2\x80\xa8",
    b"back\\slash\\n",
    b"long-" + b"A" * 240,
]
# The executable holding them: its basename is also the process name (comm,
# the first 15 bytes).
EXE_NAME = b"x\x1b[8m\nsshd\xe2\x80\xae"


class EscapeSinksTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("escape")
        cls.procs = []
        # Class cleanups run even when setUpClass fails half way.
        cls.addClassCleanup(lambda: [p.stop() for p in cls.procs])
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.addClassCleanup(cls.pg.stop)
        cls.port = nvtest.free_port()
        cls.enroll_port = nvtest.free_port()
        cls.socket = os.path.join(cls.dir, "q.sock")
        cls.home = os.path.join(cls.dir, "home")
        os.makedirs(cls.home)
        cls.alert_log = os.path.join(cls.dir, "alerts.log")
        cls.config = os.path.join(cls.dir, "collector.yaml")
        with open(cls.config, "w") as f:
            f.write(nvtest.collector_yaml(
                cls.pg.dsn, f"127.0.0.1:{cls.port}", cls.socket, extra=f"""
state_dir: {os.path.join(cls.dir, "state")}
pki:
  server_names: [{SERVER_NAME}]
  server_addresses: [127.0.0.1]
probes:
  path:
    enabled: true
    every: 1h
    targets:
      - name: lo
        address: 127.0.0.1
  sockets:
    enabled: false
  files:
    every: 1s
    watched_dirs: [{cls.home}]
  speed:
    enabled: false
analysis:
  learning_period: 0s
  multi_host_window: 2s
alerts:
  log_file: {cls.alert_log}
""").replace("listen:\n", f'listen:\n  enroll: "127.0.0.1:{cls.enroll_port}"\n'))
        r = cls.collector_cmd("pki", "init")
        assert r.returncode == 0, r.stderr
        cls.fingerprint = re.search(r"ca_fingerprint: (\S+)", r.stdout).group(1)
        cls.collector = nvtest.Process([nvtest.COLLECTOR, "--config", cls.config],
                                       os.path.join(cls.dir, "collector.log")).start()
        cls.addClassCleanup(cls.collector.stop)
        nvtest.wait_until(lambda: "database_ready" in cls.collector.output(), 30,
                          "the collector's database")

        # The hostile files, held open (fds passed on exec) by a copy of
        # sleep whose file name is hostile; this process keeps none open.
        cls.paths = []
        for n in NAMES:
            p = os.path.join(cls.home.encode(), n)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(b"x")
            cls.paths.append(p)
        bindir = os.path.join(cls.dir.encode(), b"bin")
        os.makedirs(bindir)
        cls.exe = os.path.join(bindir, EXE_NAME)
        shutil.copy(shutil.which("sleep"), cls.exe)

    @classmethod
    def collector_cmd(cls, *args):
        return subprocess.run([nvtest.COLLECTOR, "--config", cls.config, *args],
                              capture_output=True, text=True, timeout=60)

    def start_holder(self):
        holder = nvtest.Process([self.exe, "600"], os.path.join(self.dir, "holder.log"))
        fds = [os.open(p, os.O_RDONLY) for p in self.paths]
        try:
            holder.proc = subprocess.Popen([self.exe, "600"], pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        holder.log = open(holder.log_path, "ab")
        self.procs.append(holder)
        return holder

    def enroll(self, name):
        r = self.collector_cmd("enroll", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = re.search(r"^token: (\S+)$", r.stdout, re.M).group(1)
        state = os.path.join(self.dir, f"agent-{name}")
        r = subprocess.run(
            [nvtest.AGENT, "enroll", "--collector", f"127.0.0.1:{self.enroll_port}",
             "--token", token, "--ca-fingerprint", self.fingerprint, "--name", name,
             "--state-dir", state], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return state

    def root_ca(self):
        with open(os.path.join(self.dir, "state", "pki", "ca.crt"), "rb") as f:
            return f.read()

    def collector_log_lines(self):
        with open(self.collector.log_path, "rb") as f:
            return f.read().split(b"\n")

    def check_names_shown(self, out: str, what: str):
        for n in NAMES:
            self.assertIn(escape(n), out, f"{what}: {n!r}")
        # The bytes FF FE and the text naming them read differently.
        self.assertIn("/\\xFF\\xFE", out)
        self.assertIn("/\\\\xFF\\\\xFE", out)
        for line in out.split("\n"):
            self.assertFalse(line.startswith("sshd"), f"{what}: a forged row: {line!r}")

    # --- the tests, in name order

    def test_1_probe_files_table(self):
        holder = self.start_holder()
        flag = "--dir"
        h = subprocess.run([nvtest.AGENT, "probe", "files", "--help"],
                           capture_output=True, text=True)
        if "--watch" in h.stdout and "--dir" not in h.stdout:
            flag = "--watch"
        run = lambda *a: subprocess.run(  # noqa: E731
            [nvtest.AGENT, "probe", "files", flag, self.home, *a],
            capture_output=True, timeout=60)
        js = run("--json")
        self.assertEqual(js.returncode, 0, js.stderr)
        table = run()
        self.assertEqual(table.returncode, 0, table.stderr)
        assert_nothing_hidden(self, table.stdout, "probe files")
        out = table.stdout.decode()
        # One line per entry of the snapshot, plus the header.
        import json
        entries = [e for e in json.loads(js.stdout).get("entries", [])
                   if e["process"].get("pid") == holder.pid]
        ours = [line for line in out.split("\n") if f" {holder.pid} " in line]
        self.assertEqual(len(ours), len(entries), out)
        self.assertGreaterEqual(len(ours), len(NAMES))
        self.check_names_shown(out, "probe files")
        # The process name column: the executable's name (the kernel's
        # escaping in /proc/PID/status undone), escaped once.
        self.assertIn(escape(EXE_NAME), out.replace(escape(self.exe), ""))
        # --json stays exact: protobuf's JSON of the agent's proto strings
        # (bytes that are not UTF-8 as \xNN, a backslash as \\), parsed back.
        paths = {e["path"] for e in entries}
        self.assertIn(os.path.join(self.home, "row\n" + FORGED_ROW.decode()), paths)
        self.assertIn(os.path.join(self.home, "\\xFF\\xFE"), paths)
        self.assertIn(os.path.join(self.home, "\\\\xFF\\\\xFE"), paths)
        # The alerts test needs the holder to be news: it starts its own.
        holder.stop()
        self.procs.remove(holder)

    def test_2_files_and_alerts_through_the_collector(self):
        state = self.enroll("laptop")
        agent = nvtest.Process(
            [nvtest.AGENT, "run", "--collector", f"127.0.0.1:{self.port}",
             "--state-dir", state, "--no-iperf-server", "--watch", self.home],
            os.path.join(self.dir, "agent-laptop.log")).start()
        self.procs.append(agent)
        # The first files snapshot is learnt; a process after it is news.
        nvtest.wait_until(lambda: b"event=analysis_first_result agent=laptop kind=files"
                          in b"\n".join(self.collector_log_lines()), 60,
                          "the agent's first files snapshot analysed")
        self.start_holder()

        def shown():
            r = nvtest.cli(self.socket, "files", "laptop")
            return r.returncode == 0 and escape(EXE_NAME) in r.stdout and r

        r = nvtest.wait_until(shown, 60, "the hostile files in `netvigil files laptop`")
        raw = subprocess.run([nvtest.CLI, "--socket", self.socket, "files", "laptop"],
                             capture_output=True, timeout=30)
        self.assertEqual(raw.returncode, 0, raw.stderr)
        assert_nothing_hidden(self, raw.stdout, "netvigil files")
        self.check_names_shown(raw.stdout.decode(), "netvigil files")
        self.assertIn(escape(EXE_NAME), raw.stdout.decode())

        # JSON stays exact: the paths as the agent sent them.
        js = nvtest.cli(self.socket, "files", "laptop", "--json")
        self.assertEqual(js.returncode, 0, js.stderr)
        self.assertIn(r'row\n' + FORGED_ROW.decode(), js.stdout)
        self.assertIn(r'\\\\xFF\\\\xFE', js.stdout)

        # The holder is a new process under a watched folder: an alert whose
        # subject carries its executable's name and a path.
        def alert_lines():
            if not os.path.exists(self.alert_log):
                return None
            with open(self.alert_log, "rb") as f:
                data = f.read()
            return data if b"event=opened" in data else None

        data = nvtest.wait_until(alert_lines, 60, "an alert in the alert log")
        self.assertTrue(data.endswith(b"\n"))
        for line in data.split(b"\n")[:-1]:
            self.assertRegex(line, rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ netvigil\[alert\]: "
                                   rb"event=\w+ id=\d+ kind=\S+ severity=\w+ scope=\w+ ip=- ")
        assert_nothing_hidden(self, data, "alert log")
        self.assertIn(escape(EXE_NAME).encode(), data.replace(b'\\"', b'"'))
        f2b = subprocess.run(["fail2ban-regex", "-o", "ip", self.alert_log, FILTER],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(f2b.returncode, 0, f2b.stderr)
        self.assertEqual([l for l in f2b.stdout.splitlines() if l.strip()], [])
        alerts = subprocess.run([nvtest.CLI, "--socket", self.socket, "alerts"],
                                capture_output=True, timeout=30)
        self.assertEqual(alerts.returncode, 0, alerts.stderr)
        assert_nothing_hidden(self, alerts.stdout, "netvigil alerts")
        self.assertIn(escape(EXE_NAME), alerts.stdout.decode())

        # The agent's own log: nothing it printed breaks a line.
        with open(agent.log_path, "rb") as f:
            assert_nothing_hidden(self, f.read(), "agent log")

    def test_3_unauthenticated_enroll_cannot_forge_a_log_line(self):
        creds = grpc.ssl_channel_credentials(root_certificates=self.root_ca())
        name = "evil\n" + FORGED_LOG.decode() + "\r\x1b[2K"
        with grpc.secure_channel(f"127.0.0.1:{self.enroll_port}", creds,
                                 options=[("grpc.ssl_target_name_override", SERVER_NAME)]) as ch:
            enroll = ch.unary_unary("/netvigil.v1.Agent/Enroll",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=lambda b: b)
            with self.assertRaises(grpc.RpcError) as e:
                enroll(fc.msg("EnrollRequest", agent_name=name, token="guess",
                              csr_pem=b"not a csr"), timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The refusal may be logged alone or summarised with others (a
        # summary need not name the client); either way no line is forged
        # and any line naming the client shows its name escaped.
        time.sleep(2)
        lines = self.collector_log_lines()
        self.assertFalse(any(l.startswith(b"2026-01-01T00:00:00.000") or
                             (b"name=forged" in l and b"evil" not in l) for l in lines),
                         "a forged line in the collector's log")
        for l in lines:
            if b"evil" in l:
                self.assertIn(b'"evil\\n2026-01-01', l)
        assert_nothing_hidden(self, b"\n".join(lines), "collector log")

    def test_4_rogue_path_error_cannot_forge_a_log_line(self):
        state = self.enroll("rogue")

        def field(name):
            with open(os.path.join(state, name), "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(root_certificates=self.root_ca(),
                                             private_key=field("client.key"),
                                             certificate_chain=field("client.crt"))
        error = ("boom\n" + FORGED_LOG.decode() + "\n\x1b[2J\u202e\u2028"
                 "event=analysis_skip agent=laptop")
        now = time.time()
        ts = fc.M["google.protobuf.Timestamp"](seconds=int(now))
        hello = fc.msg("AgentMessage", hello=fc.msg("Hello", agent_name="rogue",
                                                    version="0.1.0", next_seq=1))
        result = fc.msg("AgentMessage", result=fc.msg(
            "Result", seq=1, produced_at=ts,
            path=fc.msg("PathRun", target="127.0.0.1", error=error, started_at=ts,
                        finished_at=ts)))

        def messages():
            yield hello
            yield result
            time.sleep(3)  # long enough for the collector to commit

        with grpc.secure_channel(f"127.0.0.1:{self.port}", creds,
                                 options=[("grpc.ssl_target_name_override", SERVER_NAME)]) as ch:
            call = ch.stream_stream("/netvigil.v1.Agent/Stream",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=lambda b: b)
            responses = call(messages(), timeout=10)
            try:
                for _ in responses:
                    pass
            except grpc.RpcError:
                pass
        nvtest.wait_until(lambda: self.pg.result_rows("rogue") == 1, 20,
                          "the rogue's result stored")
        lines = nvtest.wait_until(
            lambda: (lambda ls: ls if any(b"boom" in l for l in ls) else None)(
                self.collector_log_lines()), 20, "the failed run in the collector's log")
        self.assertFalse(any(l.startswith(b"2026-01-01T00:00:00.000") or
                             (b"name=forged" in l and b"boom" not in l) for l in lines),
                         "a forged line in the collector's log")
        boom = [l for l in lines if b"boom" in l]
        self.assertEqual(len(boom), 1, boom)
        self.assertIn(b'reason="failed run: boom\\n2026-01-01', boom[0])
        self.assertIn(b"\\x1B[2J\\u{202E}\\u{2028}", boom[0])
        assert_nothing_hidden(self, b"\n".join(lines), "collector log")


if __name__ == "__main__":
    nvtest.main()
