"""The set-up every lab test shares: a scratch folder, a private PostgreSQL,
a lab of network namespaces, and the processes the test starts, all ended
(by PID) and removed in tearDownClass, also when set-up fails half way.
Also the helpers several lab tests repeat: a collector with agents on every
host, the open and past alerts from the CLI, and the alert log's lines."""

import json
import os
import re
import unittest

import nvlab
import nvtest

AGENT_PORT = 7411

# One line of alerts.log_file (collector/alerts/alert_log.cc):
#   TIME netvigil[alert]: event=E id=N kind=K ... summary="..."
# a value is bare or "quoted" with \" and \\ escaped inside.
_LOG_LINE = re.compile(r"^(\S+) netvigil\[alert\]: (.*)$")
_LOG_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_alert_log_line(line):
    """A dict of the line's fields (values unquoted) plus "time"; None when
    the line is not an alert line."""
    m = _LOG_LINE.match(line)
    if not m:
        return None
    fields = {"time": m.group(1)}
    for key, value in _LOG_FIELD.findall(m.group(2)):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r'\\(["\\])', r"\1", value[1:-1])
        fields[key] = value
    return fields


def read_alert_log(path):
    """Every alert line of the file, parsed, in order ([] before it exists)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [e for e in (parse_alert_log_line(l) for l in lines) if e is not None]


class LabTestCase(unittest.TestCase):
    TAG = "lab"          # scratch folder prefix
    HOSTS = 3            # lab hosts
    LAB_OPTIONS = {}     # more nvlab.Lab keyword arguments

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir(cls.TAG)
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.procs = []
        cls.lab = None
        try:
            cls.lab = nvlab.Lab(hosts=cls.HOSTS, **cls.LAB_OPTIONS)
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        """The test's own processes; append each to cls.procs."""

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            p.stop()
        if cls.lab is not None:
            cls.lab.close()
        cls.pg.stop()

    @classmethod
    def start_netvigil(cls, extra_yaml, agent_args=(), online_timeout=60):
        """A collector in the server namespace with `extra_yaml` (probes,
        analysis, alerts sections) and an agent on every lab host watching
        its own home folder; returns when every agent is online. Sets
        cls.sock (the Query socket) and cls.config."""
        cls.sock = os.path.join(cls.dir, "q.sock")
        cls.config = os.path.join(cls.dir, "collector.yaml")
        with open(cls.config, "w") as f:
            f.write(nvtest.collector_yaml(
                cls.pg.dsn, f"{cls.lab.server.ipv4}:{AGENT_PORT}", cls.sock,
                extra=extra_yaml))
        cls.procs.append(nvtest.Process(
            [nvtest.COLLECTOR, "--config", cls.config, "--insecure"],
            os.path.join(cls.dir, "collector.log"), cls.lab, cls.lab.server).start())
        for h in cls.lab.hosts:
            cls.procs.append(nvtest.Process(
                [nvtest.AGENT, "run", "--insecure", "--name", h.name,
                 "--collector", f"{cls.lab.server.ipv4}:{AGENT_PORT}",
                 "--watch", h.home,
                 "--state-dir", os.path.join(cls.dir, "state-" + h.name),
                 *agent_args],
                os.path.join(cls.dir, f"agent-{h.name}.log"), cls.lab, h).start())
        names = {h.name for h in cls.lab.hosts}
        nvtest.wait_until(
            lambda: {n for n, a in nvtest.agents_json(cls.sock).items()
                     if a.get("online")} >= names,
            online_timeout, "all agents online")

    def alerts(self, all_=False):
        """Open alerts (every alert with all_) as proto3 JSON dicts."""
        r = nvtest.cli(self.sock, "alerts", "--json", *(["--all"] if all_ else []))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout).get("alerts", [])

    @staticmethod
    def brief(a):
        """(kind, scope, sorted hosts) of an alert: what a scenario asserts."""
        return (a["kind"], a["scope"], tuple(sorted(a.get("hosts", []))))
