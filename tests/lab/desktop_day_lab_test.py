#!/usr/bin/python3
"""Issue #16's "a desktop's day" in the lab, with a real socket table.

One lab host (h1) runs a "desktop": a Python process in h1's namespace
holding about 300 sockets: three listeners (TCP 0.0.0.0:8200, TCP
127.0.0.1:6310, UDP 0.0.0.0:5353), local IPC to its own 6310 listener (both
ends are sockets), a steady pool of TCP connections to servers in the lab's
`internet` namespace on web (80, 443, 8443), mail (587, 993), ssh (22) and
dns (53) ports, connected UDP sockets to ntp (123) and dns (53), and a
churning pool: every 2-3 s it connects to an (address, port) it never used
(the lab's extra targets, 198.19.1.x on the internet namespace's loopback,
on web/mail/dns ports), closes the oldest churned connection and replaces
two of the steady ones (new ephemeral ports). Halfway through it is
restarted (a new process, the same program, the same listeners), as a
desktop session's programs are.

Periods are shortened: sockets every 2 s, analysis.learning_period 60 s,
multi_host_window 10 s. After the learning period the desktop runs
MEASURE_S seconds; every socket-kind alert (new_remote, new_listener,
new_inbound) raised until then is unplanted noise. Then three events are
planted, each of which must give a `new_remote` alert naming its program:
  (a) a new program connecting out: a copy of the Python interpreter named
      `newprog` in the scratch folder, connecting to a web port;
  (b) a program named `sshd` (another copy) connecting out;
  (c) the known desktop program connecting to port 6667 (irc), asked
      through a control file so it is the desktop process itself.
Prints the unplanted socket alerts extrapolated to a day (must be <= 3;
over a few minutes that means none) and the planted events alerted (3/3).
About 6 minutes.

Model: tests/lab/five_host_test.py and tests/lab/labcase.py.
"""

# Checked both ways (2026-12-05): on this code it passed twice (281 s:
# 0 unplanted socket alerts in 194 s after learning, 3/3 planted events);
# on the code before #16's port classes (2ab68ea) it fails as it should:
# 84 unplanted new_remote alerts in the same 3 minutes, one per never-used
# endpoint (about 49,900 a day). A single unplanted alert in 3 minutes is
# already over 3 a day, so the extrapolation is coarse but one-sided.

import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
from labcase import LabTestCase, read_alert_log  # noqa: E402

LEARNING_S = 60
SOCKETS_EVERY_S = 2
MULTI_HOST_WINDOW_S = 10
MEASURE_S = 180          # after learning, before planting
PLANT_TIMEOUT_S = 60     # multi_host_window + a few snapshots, with margin
EXTRA_TARGETS = 80       # 198.19.1.1.. on the internet namespace's loopback
BASE_TARGETS = 4         # extra targets the steady pool uses (plus target)
SOCKET_KINDS = ("new_remote", "new_listener", "new_inbound")
DAY_S = 86400
MAX_PER_DAY = 3

TCP_PORTS = (80, 443, 8443, 587, 993, 22, 53, 6667)
UDP_PORTS = (123, 53)

# The servers in the internet namespace: accept and hold every connection
# until the peer closes; UDP ports are bound so connected UDP sockets get
# no ICMP unreachable.
SERVER = f"""
import resource, selectors, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
sel = selectors.DefaultSelector()
for port in {TCP_PORTS!r}:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1024)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "listener")
udp = []
for port in {UDP_PORTS!r}:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    udp.append(u)
print("serving", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "listener":
            try:
                c, _ = key.fileobj.accept()
            except OSError:
                continue
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, "conn")
        else:
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
"""

# The desktop. argv: STATE_DIR BASE_ADDRS(comma) NEW_ADDRS(comma) SEED.
# STATE_DIR/next holds the index of the next never-used endpoint (so a
# restarted desktop goes on with new ones); STATE_DIR/irc asks it to
# connect to port 6667 once, STATE_DIR/irc-done says it did;
# STATE_DIR/status is its last socket count and endpoints used.
DESKTOP = """
import os, random, resource, socket, sys, time
state, base, new, seed = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
rng = random.Random(seed)

def listener(addr, port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
        s.setblocking(False)
    return s

def tcp(addr, port):
    s = socket.create_connection((addr, port), timeout=3)
    return s

def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((addr, port))
    s.send(b"hello")
    return s

listeners = [listener("0.0.0.0", 8200), listener("127.0.0.1", 6310),
             listener("0.0.0.0", 5353, socket.SOCK_DGRAM)]
accepted = []
def accept_all():
    for l in listeners[:2]:
        while True:
            try:
                c, _ = l.accept()
            except (BlockingIOError, OSError):
                break
            accepted.append(c)

ipc = [tcp("127.0.0.1", 6310) for _ in range(15)]
accept_all()

# The steady pool: (addr, port) -> weight; what a desktop holds all day.
STEADY = [(443, 110), (80, 35), (8443, 10), (993, 8), (587, 4), (22, 4), (53, 4)]
steady = []
def steady_endpoint():
    port = rng.choices([p for p, _ in STEADY], [w for _, w in STEADY])[0]
    return rng.choice(base), port
failures = 0
for _ in range(sum(w for _, w in STEADY)):
    a, p = steady_endpoint()
    try:
        steady.append(tcp(a, p))
    except OSError as e:
        failures += 1
        print("steady connect", a, p, e, flush=True)
udps = [udp(base[0], 123) for _ in range(3)] + [udp(rng.choice(base), 53) for _ in range(10)]

# Never-used endpoints, in a fixed order: every new address on the web,
# mail and dns ports.
NEW_PORTS = (443, 80, 8443, 993, 53)
endpoints = [(a, p) for a in new for p in NEW_PORTS]
def read_next():
    try:
        with open(os.path.join(state, "next")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0
nxt = read_next()
# Recently opened connections (tabs): the churning pool starts full, with
# connections to the usual servers, and new endpoints replace them.
churn = []
for _ in range(60):
    try:
        churn.append(tcp(rng.choice(base), 443))
    except OSError as e:
        failures += 1
        print("churn connect", e, flush=True)
irc = None
print("desktop up", len(steady), "steady", len(udps), "udp", flush=True)
while True:
    time.sleep(rng.uniform(2.0, 3.0))
    accept_all()
    if nxt < len(endpoints):
        a, p = endpoints[nxt]
        nxt += 1
        with open(os.path.join(state, "next.tmp"), "w") as f:
            f.write(str(nxt))
        os.replace(os.path.join(state, "next.tmp"), os.path.join(state, "next"))
        try:
            churn.append(tcp(a, p))
        except OSError as e:
            failures += 1
            print("new endpoint", a, p, e, flush=True)
    while len(churn) > 60:
        churn.pop(0).close()
    for _ in range(2):
        i = rng.randrange(len(steady))
        steady[i].close()
        a, p = steady_endpoint()
        try:
            steady[i] = tcp(a, p)
        except OSError as e:
            failures += 1
            steady[i] = socket.socket()
            print("steady reconnect", a, p, e, flush=True)
    if irc is None and os.path.exists(os.path.join(state, "irc")):
        irc = tcp(base[0], 6667)
        open(os.path.join(state, "irc-done"), "w").close()
    total = (len(listeners) + len(accepted) + len(ipc) + len(steady) + len(udps)
             + len(churn) + (irc is not None))
    with open(os.path.join(state, "status.tmp"), "w") as f:
        f.write(f"{total} {nxt} {failures}")
    os.replace(os.path.join(state, "status.tmp"), os.path.join(state, "status"))
"""

# A planted program: connect once and hold. argv: ADDR PORT.
ONCE = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", s.getsockname(), flush=True)
time.sleep(3600)
"""


class DesktopDayLabTest(LabTestCase):
    TAG = "desktop-day"
    HOSTS = 1
    LAB_OPTIONS = {"extra_targets": EXTRA_TARGETS}

    @classmethod
    def start(cls):
        cls.alert_log = os.path.join(cls.dir, "alerts.log")
        cls.state = os.path.join(cls.dir, "desktop")
        os.makedirs(cls.state)
        cls.scripts = {}
        for name, text in (("server", SERVER), ("desktop", DESKTOP), ("once", ONCE)):
            path = os.path.join(cls.dir, name + ".py")
            with open(path, "w") as f:
                f.write(text)
            cls.scripts[name] = path
        cls.host = cls.lab.hosts[0]
        cls.python = os.path.realpath("/usr/bin/python3")
        cls.base = [cls.lab.target.ipv4] + [t.ipv4 for t in cls.lab.extra_targets[:BASE_TARGETS]]
        cls.new = [t.ipv4 for t in cls.lab.extra_targets[BASE_TARGETS:]]
        server = nvtest.Process(["/usr/bin/python3", cls.scripts["server"]],
                                os.path.join(cls.dir, "server.log"), cls.lab,
                                cls.lab.internet).start()
        cls.procs.append(server)
        nvtest.wait_until(lambda: "serving" in server.output(), 20, "the servers up")
        # The desktop runs before the agent's first snapshot: all of its
        # day-one habits are learnt in the learning period.
        cls.desktop = cls.start_desktop(1)
        nvtest.wait_until(lambda: os.path.exists(os.path.join(cls.state, "status")), 60,
                          "the desktop's sockets open")
        cls.start_netvigil(f"""probes:
  path:
    enabled: false
  speed:
    enabled: false
  sockets:
    every: {SOCKETS_EVERY_S}s
  files:
    every: 30s
analysis:
  learning_period: {LEARNING_S}s
  multi_host_window: {MULTI_HOST_WINDOW_S}s
alerts:
  log_file: {cls.alert_log}
""")
        # The collector's learning clock starts at the agent's first result.
        nvtest.wait_until(
            lambda: cls.cli_json_cls("sockets", cls.host.name).get("takenAt"), 60,
            "the first socket snapshot", interval=1)
        cls.learning_over = time.monotonic() + LEARNING_S + 2 * SOCKETS_EVERY_S

    @classmethod
    def start_desktop(cls, n):
        p = nvtest.Process(["/usr/bin/python3", cls.scripts["desktop"], cls.state,
                            ",".join(cls.base), ",".join(cls.new), str(n)],
                           os.path.join(cls.dir, f"desktop-{n}.log"), cls.lab,
                           cls.host).start()
        cls.procs.append(p)
        return p

    @classmethod
    def cli_json_cls(cls, *args):
        r = nvtest.cli(cls.sock, *args, "--json")
        if r.returncode != 0:
            raise RuntimeError(f"netvigil {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def status(self):
        with open(os.path.join(self.state, "status")) as f:
            total, nxt, failures = (int(x) for x in f.read().split())
        return total, nxt, failures

    def socket_alerts(self):
        return [a for a in self.alerts(all_=True) if a["kind"] in SOCKET_KINDS]

    def plant_program(self, name):
        """A copy of the interpreter named `name` connecting to a web port
        of a never-used address; its owner path (what the alert names)."""
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, name)
        shutil.copy2(self.python, exe)
        # PYTHONHOME: a copied interpreter does not find its library from
        # its own place; env execs the copy, so the copy is the owner.
        p = nvtest.Process(["env", "PYTHONHOME=/usr", exe, self.scripts["once"],
                            self.new[-1], "443"],
                           os.path.join(self.dir, f"{name}.log"), self.lab,
                           self.host).start()
        self.procs.append(p)
        nvtest.wait_until(lambda: "connected" in p.output(), 20, f"{name} connected")
        return os.path.realpath(exe)

    def test_desktop_day(self):
        # -- learning ----------------------------------------------------
        time.sleep(max(0, self.learning_over - time.monotonic()))
        t0 = time.monotonic()
        total, first_new, _ = self.status()
        # -- a desktop's day, shortened: new endpoints, one restart --------
        time.sleep(MEASURE_S / 2)
        self.desktop.stop()
        type(self).desktop = self.start_desktop(2)
        nvtest.wait_until(lambda: self.desktop.alive() and
                          "desktop up" in self.desktop.output(), 60, "the desktop restarted")
        sizes = []
        for _ in range(3):
            # The agent's whole table, asked now: the collector keeps facts
            # (what the analysis reads), not every snapshot's sockets.
            snap = self.cli_json_cls("probe", self.host.name, "sockets",
                                     "--deadline", "20")["result"]["sockets"]
            sizes.append(len(snap.get("sockets", [])))
            time.sleep(SOCKETS_EVERY_S * 2)
        time.sleep(max(0, t0 + MEASURE_S - time.monotonic()))
        # One snapshot and the held-alert window more: anything the day
        # raised is open or pending by now.
        time.sleep(MULTI_HOST_WINDOW_S + 2 * SOCKETS_EVERY_S)
        measured_s = time.monotonic() - t0
        total, last_new, failures = self.status()
        noise = len(self.socket_alerts())
        # -- planted events --------------------------------------------
        newprog = self.plant_program("newprog")
        sshd = self.plant_program("sshd")
        open(os.path.join(self.state, "irc"), "w").close()
        nvtest.wait_until(lambda: os.path.exists(os.path.join(self.state, "irc-done")), 20,
                          "the desktop connected to port 6667")
        planted = {
            "a new program connecting out": lambda a: a["details"].get("exe") == newprog,
            "sshd connecting out": lambda a: a["details"].get("exe") == sshd,
            "the desktop on port 6667": lambda a: (a["details"].get("exe") == self.python
                                                   and a["details"].get("port_class") == "irc"),
        }
        found = {}
        deadline = time.monotonic() + PLANT_TIMEOUT_S
        while time.monotonic() < deadline and len(found) < len(planted):
            for a in self.alerts(all_=True):
                if a["kind"] != "new_remote":
                    continue
                a.setdefault("details", {})
                for what, match in planted.items():
                    if what not in found and match(a):
                        found[what] = a
            time.sleep(2)
        every = self.socket_alerts()
        planted_ids = {a["id"] for a in found.values()}
        unplanted = [a for a in every if a["id"] not in planted_ids]
        per_day = len(unplanted) * DAY_S / measured_s
        print(f"\n  desktop: {total} sockets ({min(sizes)}-{max(sizes)} in the agent's "
              f"snapshots after the restart), {last_new} never-used endpoints opened "
              f"({last_new - first_new} after learning), {failures} failed connects")
        print(f"  unplanted socket alerts: {len(unplanted)} in {measured_s:.0f} s after "
              f"learning = {per_day:.1f} per host per day (at most {MAX_PER_DAY})")
        print(f"  planted events alerted: {len(found)}/{len(planted)}")
        for what, a in found.items():
            print(f"    {what}: {a['summary']}")
        for a in unplanted:
            print(f"    unplanted: {a['kind']} {a['summary']}")
        opened = [e for e in read_alert_log(self.alert_log)
                  if e.get("event") == "opened" and e.get("kind") in SOCKET_KINDS]
        print(f"  socket-kind opened lines in the alert log: {len(opened)} "
              f"({noise} socket alerts before planting)")
        self.assertGreaterEqual(min(sizes), 250, "the desktop's socket table is about 300")
        self.assertGreaterEqual(last_new - first_new, MEASURE_S // 3 - 5,
                                "a new endpoint every 2-3 s")
        self.assertLessEqual(per_day, MAX_PER_DAY)
        self.assertEqual(sorted(found), sorted(planted), "every planted event alerted")
        for what, a in found.items():
            self.assertIn(a["details"]["exe"], a["summary"], f"{what}: names the program")


if __name__ == "__main__":
    nvtest.main()
