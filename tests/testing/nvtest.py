"""Shared support for netvigil's Python integration and lab tests.

Real parts only: a private PostgreSQL cluster (deploy/pgcluster.sh), the real
netvigil binaries from the build folder, and the lab (tests/lab/nvlab.py).
Every process started here is ended by its PID.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Optional, Sequence

SOURCE_DIR = os.environ.get(
    "NETVIGIL_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("NETVIGIL_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "lab"))

COLLECTOR = os.path.join(BUILD_DIR, "collector", "netvigil-collector")
CLI = os.path.join(BUILD_DIR, "collector", "netvigil")
AGENT = os.path.join(BUILD_DIR, "agent", "netvigil-agent")
PGCLUSTER = os.path.join(SOURCE_DIR, "deploy", "pgcluster.sh")


def wait_until(fn: Callable[[], object], timeout: float, what: str,
               interval: float = 0.2):
    """Polls fn until it returns something true; that value, or AssertionError
    naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except Exception as e:  # a poll may fail while things come up
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def rfc3339(text: str) -> float:
    """Seconds since the epoch of a proto3 JSON timestamp ("...T..[.f]Z")."""
    import calendar
    base, _, frac = text.rstrip("Z").partition(".")
    whole = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + frac) if frac else 0.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_scratch_dirs: List[str] = []


def scratch_dir(tag: str) -> str:
    """A temp folder the postgres user can reach (not under /root). main()
    removes it when every test passed."""
    d = tempfile.mkdtemp(prefix=f"netvigil-{tag}-", dir="/var/tmp")
    os.chmod(d, 0o755)
    _scratch_dirs.append(d)
    return d


# What the tests started and have not ended. A run killed by SIGTERM (a CI
# timeout, a person) runs no unittest cleanup, so without this its private
# PostgreSQL and its collector would outlive it (a lab's own processes and
# namespaces are ended by nvlab's handler, which then calls this one).
_live_processes: List["Process"] = []
_live_postgres: List["Postgres"] = []


def _end_live_on_sigterm(signum, frame):
    for p in list(_live_processes):
        if p.proc is not None and p.proc.poll() is None:  # still ours: by PID
            os.kill(p.proc.pid, signal.SIGKILL)
            p.proc.wait()
    for pg in list(_live_postgres):
        try:
            subprocess.run([PGCLUSTER, "stop", pg.dir, "immediate"], timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"nvtest: stopping {pg.dir}: {e}", file=sys.stderr)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # die of the signal, as without us


def main() -> None:
    """unittest.main for our test files. A run that passes removes its
    scratch folders (a database and logs each, tens of MB); a failing run
    keeps them and names them, for their logs. NETVIGIL_KEEP_SCRATCH=1
    keeps them always. SIGTERM ends what the tests started first."""
    import unittest
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _end_live_on_sigterm)
    prog = unittest.main(verbosity=2, exit=False)
    ok = prog.result.wasSuccessful()
    if ok and not os.environ.get("NETVIGIL_KEEP_SCRATCH"):
        for d in _scratch_dirs:
            shutil.rmtree(d, ignore_errors=True)
    elif _scratch_dirs:
        print("scratch folders kept: " + " ".join(_scratch_dirs), file=sys.stderr)
    sys.exit(0 if ok else 1)


class Postgres:
    """A private PostgreSQL cluster on a UNIX socket in `dir`."""

    def __init__(self, dir: str):
        self.dir = dir
        subprocess.run([PGCLUSTER, "init", dir], check=True)
        self.dsn = subprocess.run([PGCLUSTER, "dsn", dir], check=True,
                                  capture_output=True, text=True).stdout.strip()

    def start(self):
        subprocess.run([PGCLUSTER, "start", self.dir], check=True)
        _live_postgres.append(self)

    def stop(self, mode: str = "fast"):
        subprocess.run([PGCLUSTER, "stop", self.dir, mode], check=True)
        if self in _live_postgres:
            _live_postgres.remove(self)

    def psql(self, sql: str) -> str:
        argv = ["psql", "-h", self.dir, "-U", "postgres", "-d", "netvigil",
                "-tAXq", "-c", sql]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=True, capture_output=True,
                              text=True).stdout.strip()

    def result_rows(self, agent: str) -> int:
        """How many results PostgreSQL holds for the agent named `agent`."""
        return int(self.psql(
            "SELECT count(*) FROM results r JOIN agents a ON a.id = r.agent_id "
            f"WHERE a.name = '{agent}'"))

    def agent_rows(self, agent: str) -> int:
        """1 when the collector has an agents row for `agent`, else 0."""
        return int(self.psql(f"SELECT count(*) FROM agents WHERE name = '{agent}'"))


def collector_yaml(dsn: str, agent_listen: str, query_socket: str,
                   heartbeat: str = "1s", timeout: str = "4s",
                   extra: str = "") -> str:
    return f"""# written by a test
database:
  dsn: "{dsn}"
listen:
  agents: "{agent_listen}"
  query_socket: {query_socket}
agents:
  heartbeat_interval: {heartbeat}
  heartbeat_timeout: {timeout}
{extra}"""


class Process:
    """A process of ours with its log in a file; ended by PID."""

    def __init__(self, argv: Sequence[str], log_path: str, lab=None, node=None):
        self.argv = list(argv)
        self.log_path = log_path
        self.lab = lab
        self.node = node
        self.proc: Optional[subprocess.Popen] = None

    def start(self):
        self.log = open(self.log_path, "ab")
        if self.lab is not None:
            self.proc = self.lab.popen(self.node, self.argv, stdout=self.log,
                                       stderr=subprocess.STDOUT)
        else:
            self.proc = subprocess.Popen(self.argv, stdout=self.log,
                                         stderr=subprocess.STDOUT)
        _live_processes.append(self)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if self in _live_processes:
            _live_processes.remove(self)
        return self.proc.returncode

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        if self in _live_processes:
            _live_processes.remove(self)

    def output(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def cli(socket: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--socket", socket, *args], capture_output=True,
                          text=True, timeout=timeout)


def agents_json(socket: str) -> dict:
    """name -> AgentInfo (proto3 JSON) from `netvigil agents --json`."""
    r = cli(socket, "agents", "--json")
    if r.returncode != 0:
        raise RuntimeError(f"netvigil agents: rc={r.returncode} {r.stderr.strip()}")
    return {a["name"]: a for a in json.loads(r.stdout).get("agents", [])}


# The probes of a collector whose tests need only a steady stream of results:
# a socket snapshot every second, nothing else.
SOCKETS_ONLY = """probes:
  path:
    enabled: false
  sockets:
    every: 1s
  files:
    enabled: false
  speed:
    enabled: false
"""


class CollectorCase:
    """Mixin for a unittest.TestCase class: a scratch folder, a private
    PostgreSQL and a plain-text collector on a free loopback port, shared by
    the class's tests. Set TAG (the scratch folder's name) and EXTRA (more
    collector YAML, SOCKETS_ONLY by default)."""

    TAG = "collector"
    EXTRA = SOCKETS_ONLY

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir(cls.TAG)
        cls.pg = Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.port = free_port()
        cls.socket = os.path.join(cls.dir, "query.sock")
        cls.config = os.path.join(cls.dir, "collector.yaml")
        with open(cls.config, "w") as f:
            f.write(collector_yaml(cls.pg.dsn, f"127.0.0.1:{cls.port}", cls.socket,
                                   extra=cls.EXTRA))
        cls.collector = None

    @classmethod
    def tearDownClass(cls):
        if cls.collector is not None and cls.collector.alive():
            cls.collector.stop()
        cls.pg.stop()

    def start_collector(self) -> "Process":
        """A fresh collector (one still running is stopped first), up and
        answering on its Query socket."""
        self.stop_collector()
        c = Process([COLLECTOR, "--config", self.config, "--insecure"],
                    os.path.join(self.dir, "collector.log")).start()
        type(self).collector = c
        wait_until(lambda: cli(self.socket, "agents").returncode == 0, 30,
                   "the collector to be up")
        if not c.alive():
            raise AssertionError("the collector exited at start (see collector.log)")
        return c

    def stop_collector(self):
        if self.collector is not None and self.collector.alive():
            self.collector.stop()
