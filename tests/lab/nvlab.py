#!/usr/bin/python3
"""nvlab: a home network in network namespaces, for netvigil's lab tests.

Every host of the lab is a Linux network namespace; links are veth pairs; the
LAN switch is a Linux bridge inside a namespace of its own. Three routers sit
between the LAN and an "internet" namespace that holds the target addresses,
so a path from a host to the target has four real hops (r1, r2, r3, target).
Nothing in the lab is routed outside it: every namespace only has routes for
the lab's own prefixes, so a packet to any other address fails locally.

Topology (namespace names are PREFIX-NODE, e.g. nv1a2b-h1; the interface names
inside each namespace are shown at the ends of every link)::

      h1 ... hN        server                      (LAN hosts: eth0)
       |eth0  |eth0     |eth0
       |h1    |hN       |server       switch namespace: bridge br0 with
    +--+------+---------+--------+    one port per LAN member, named after
    |        switch (br0)        |    the member (h1, ..., server, r1)
    +-------------+--------------+
                  |r1
                  |lan
                 r1   home router, LAN gateway    (ip_forward=1, v4 and v6)
                  |r2
                  |r1
                 r2   upstream router
                  |r3
                  |r2
                 r3   upstream router
                  |internet
                  |r3
               internet  targets on its loopback, ICMP unreachable for the
                         rest of the target range

Address plan (only 198.18.0.0/15, RFC 2544's benchmarking range, and the ULA
prefix fd4e:7669:6c00::/48 are ever used):

    network          IPv4              IPv6                       addresses
    network       IPv4            IPv6 (F = fd4e:7669:6c00)  addresses
    LAN           198.18.1.0/24   F:1::/64     r1 .1 ::1, server .2 ::2,
                                               hK .(10+K) ::(10+K)
    r1-r2         198.18.2.0/30   F:2::/64     r1 .1 ::1, r2 .2 ::2
    r2-r3         198.18.3.0/30   F:3::/64     r2 .1 ::1, r3 .2 ::2
    r3-internet   198.18.4.0/30   F:4::/64     r3 .1 ::1, internet .2 ::2
    target        198.19.0.1/32   F:100::1/128 on internet's loopback
    extra target  198.19.(1+K//250).(1+K%250)  F:101::(K+1 in hex), K=0..
    unreachable   the rest of 198.19.0.0/16 and F:100::/56: the internet
                  namespace answers ICMP unreachable (Lab.unreachable is
                  198.19.255.254 and F:1ff::fe)

(the IPv6 host part repeats the IPv4 last octet's decimal digits, so h1 is
198.18.1.11 and fd4e:7669:6c00:1::11). A router answers time-exceeded with
the address of its interface towards the LAN, so the expected hop list from
any LAN host is Lab.expected_path(4) == [198.18.1.1, 198.18.2.2, 198.18.3.2,
198.19.0.1] (and likewise for IPv6). IPv6 duplicate address detection is off
everywhere (accept_dad=0 and nodad), so addresses are usable at once.

Python API (Debian's /usr/bin/python3, standard library only)::

    sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "lab"))
    import nvlab
    with nvlab.Lab(hosts=3, icmp_ratelimit=0) as lab:
        h1 = lab.hosts[0]    # Node: .name .ns .ipv4 .ipv6 .link .ifname .home
        lab.server           # Node on the LAN (where the collector runs)
        lab.routers          # [r1, r2, r3]: Router: .hop_ipv4 .hop_ipv6 ...
        lab.target           # Target: .ipv4 .ipv6 .ns
        lab.extra_targets    # [Target], Lab(extra_targets=K)
        lab.unreachable      # Target answered by ICMP unreachable
        lab.exec("h1", ["ping", "-c1", lab.target.ipv4])  # subprocess.run
        lab.run(h1, argv)    # its stdout, or LabError with stderr
        proc = lab.popen(h1, ["iperf3", "-s"])  # tracked; lab.stop(proc)
        lab.set_loss("h1", 20)       # h1's LAN link; or "r2"; or "r2-r3"
        lab.set_rate("h1", 50)       # tbf, Mbit/s, both directions
        lab.drop_time_exceeded("r2"); lab.drop_all("r3")
        lab.clear_faults()           # every fault everywhere
        lab.state()                  # JSON-able description

The teardown (Lab.close(), also run by the context manager, by atexit and by
SIGTERM/SIGINT handlers) ends the tracked processes by PID, then every process
still inside one of the lab's namespaces (by PID, from `ip netns pids`), then
deletes exactly the namespaces recorded in the lab's state file (which the
veth pairs and the bridge die with). A namespace is recorded before it is
created, and with its identity (nsfs inode) once created, so even a lab that
crashed halfway can be removed with `nvlab.py down --state FILE`, and no
namespace outside the record (or a later one reusing a recorded name) is
ever touched.

Links are named "h1".."hN" and "server" (a LAN member's veth to the switch),
"lan-r1" (r1's port on the switch), "r1-r2", "r2-r3", "r3-internet". "Up" is
the direction away from the LAN member / towards the internet.

Faults are nftables or tc state inside the namespaces, so any process that
attaches to the lab (e.g. the command line) can set or clear them:

  set_loss(where, percent, direction="both")
      nftables `numgen random mod 10000 < percent*100 drop`.
      where = a link of a LAN member ("h1", "server", "lan-r1", or a Node):
        dropped in the switch's bridge forward hook, "up" = frames coming
        from the member's port, "down" = frames going to it;
      where = a router ("r1", "r2", "r3", or a Router): packets it forwards
        ("up" towards the internet, "down" towards the LAN); its own ICMP
        replies (time-exceeded, echo replies) are not dropped;
      where = "r1-r2", "r2-r3", "r3-internet": every packet crossing the
        link, dropped by its lower router (forward, input and output hooks).
      "both" drops each direction independently, so a round trip through
      the fault is lost with 1 - (1 - P/100)**2; direction="up" gives P.
  set_rate(link, mbit, direction="both")
      tc tbf on the egress of the link's ends (netem is not in this kernel).
  drop_time_exceeded(router)
      the router sends no ICMP/ICMPv6 time-exceeded and forwards everything
      (the middle-hop "loss" that is not loss); allow_time_exceeded undoes.
  drop_all(router)
      the router drops everything (but loopback); allow_all undoes.
  set_icmp_ratelimit(router, ms)
      net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit; 0 also lifts the
      global ICMP budget (icmp_msgs_per_sec/burst) so every probe is
      answered; Lab(icmp_ratelimit=MS) sets it on r1..r3 and "internet".
  clear_loss(where), clear_rate(link), clear_faults(node=None)

Command line::

    nvlab.py up --hosts 3 --state FILE [--icmp-ratelimit MS]
                [--extra-targets K] [--prefix P] [--dir DIR]
        build a lab that outlives the command; FILE gets its description
    nvlab.py down --state FILE          remove exactly what FILE records
    nvlab.py exec --state FILE NODE -- ARGV...
        exec ARGV inside NODE's namespace (same PID, its exit code)
    nvlab.py ns --state FILE NODE       print NODE's namespace name
    nvlab.py show --state FILE          print the state JSON
    nvlab.py loss --state FILE WHERE PERCENT [--direction D]
    nvlab.py rate --state FILE LINK MBIT [--direction D]
    nvlab.py clear --state FILE [NODE]  clear faults (of one node, or all)
    nvlab.py reap [--dir DIR]           tear down labs whose owner process
                                        died (not detached `up` labs)
"""

import argparse
import atexit
import contextlib
import dataclasses
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Union

STATE_VERSION = 1
IPV4_LAB = "198.18.0.0/15"
IPV6_LAB = "fd4e:7669:6c00::/48"
V6 = "fd4e:7669:6c00"
ROUTERS = ("r1", "r2", "r3")
MAX_HOSTS = 200
NFT_TABLE = "nvlab"
DIRECTIONS = ("both", "up", "down")


class LabError(RuntimeError):
    """A lab operation failed; the message names the command and its stderr."""


# --------------------------------------------------------------------------
# Running commands.


def _run(argv: Sequence[str], input_text: Optional[str] = None,
         timeout: float = 60, ok_errors: Sequence[str] = ()) -> str:
    """Runs argv; returns stdout. Raises LabError with the command and its
    stderr on failure, unless the stderr contains one of ok_errors."""
    try:
        done = subprocess.run(list(argv), input=input_text, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"command failed: {' '.join(argv)}: {e}") from e
    if done.returncode != 0:
        err = (done.stderr or done.stdout).strip()
        if any(s in err for s in ok_errors):
            return done.stdout
        raise LabError(f"command failed (exit {done.returncode}): "
                       f"{' '.join(argv)}: {err}")
    return done.stdout


def _ip_batch(ns: str, lines: List[str]) -> None:
    """Runs many `ip` commands in one namespace with one process."""
    if not lines:
        return
    argv = ["ip", "-n", ns, "-batch", "-"]
    done = subprocess.run(argv, input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # ip reports "Command failed -:LINE"; name the command itself.
        m = re.search(r"Command failed -:(\d+)", done.stderr)
        cmd = lines[int(m.group(1)) - 1] if m else "; ".join(lines)
        raise LabError(
            f"command failed: ip -n {ns} {cmd}: {done.stderr.strip()}")


def _sysctl(ns: str, settings: Dict[str, object]) -> None:
    if settings:
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
              *[f"{k}={v}" for k, v in settings.items()]])


def _netns_list() -> List[str]:
    out = _run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _proc_start(pid: int) -> int:
    """A process's start time (clock ticks since boot), 0 if it is gone:
    with the PID, it names a process even after PIDs wrap."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _netns_id(ns: str) -> int:
    """The identity of a named namespace: the nsfs inode behind its name
    (0 when the name does not exist)."""
    try:
        return os.stat(os.path.join("/run/netns", ns)).st_ino
    except OSError:
        return 0


def _netns_pids(ns: str) -> List[int]:
    out = _run(["ip", "netns", "pids", ns],
               ok_errors=("No such file", "Cannot open"))
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_pids(pids: Sequence[int], grace: float = 3.0) -> None:
    """Ends the given processes by PID: SIGTERM, then SIGKILL after grace."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _pid_alive(p)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _pid_alive(pid: int) -> bool:
    """True while pid runs. A zombie counts as ended, and is not reaped here:
    its parent's Popen object must still get its exit status."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


# --------------------------------------------------------------------------
# The description of a lab (pure data, JSON-able).


@dataclasses.dataclass
class Node:
    """A host, the server, the switch or the internet namespace."""
    name: str
    ns: str
    role: str                        # host|server|switch|internet
    ipv4: Optional[str] = None
    ipv6: Optional[str] = None
    ifname: Optional[str] = None     # interface inside ns facing the lab
    link: Optional[str] = None       # the veth on the switch side (LAN members)
    home: Optional[str] = None       # a folder of its own, for watched folders


@dataclasses.dataclass
class Router:
    name: str
    ns: str
    lower_if: str                    # towards the LAN
    upper_if: str                    # towards the internet
    interfaces: Dict[str, Dict[str, str]]   # ifname -> {"ipv4": .., "ipv6": ..}
    role: str = "router"

    @property
    def hop_ipv4(self) -> str:
        """The address it answers time-exceeded with to LAN hosts."""
        return self.interfaces[self.lower_if]["ipv4"]

    @property
    def hop_ipv6(self) -> str:
        return self.interfaces[self.lower_if]["ipv6"]


@dataclasses.dataclass
class Target:
    ipv4: str
    ipv6: str
    ns: str


@dataclasses.dataclass
class Link:
    """A veth pair. For a LAN member, a is the switch port and b the member's
    eth0; for a router link, a is the lower router's end, b the upper's."""
    name: str
    kind: str                        # lan | p2p
    a_ns: str
    a_if: str
    b_ns: str
    b_if: str


def _host_v4(octet: int) -> str:
    return f"198.18.1.{octet}"


def _host_v6(octet: int) -> str:
    return f"{V6}:1::{octet}"


def _extra_target(i: int, ns: str) -> Target:
    return Target(ipv4=f"198.19.{1 + i // 250}.{1 + i % 250}",
                  ipv6=f"{V6}:101::{i + 1:x}", ns=ns)


# Point-to-point links: (lower, upper, subnet index); lower gets .1, upper .2.
P2P = (("r1", "r2", 2), ("r2", "r3", 3), ("r3", "internet", 4))


def _routes(node: str) -> List[str]:
    """Static routes of one node, as `ip` batch lines. Only the lab's own
    prefixes are routed; nothing has a default route."""
    v4, v6 = [], []
    if node in ("host", "server"):
        v4 = [f"{IPV4_LAB} via 198.18.1.1"]
        v6 = [f"{IPV6_LAB} via {V6}:1::1"]
    elif node == "r1":
        v4 = [f"{IPV4_LAB} via 198.18.2.2"]
        v6 = [f"{IPV6_LAB} via {V6}:2::2"]
    elif node == "r2":
        v4 = ["198.18.1.0/24 via 198.18.2.1", f"{IPV4_LAB} via 198.18.3.2"]
        v6 = [f"{V6}:1::/64 via {V6}:2::1", f"{IPV6_LAB} via {V6}:3::2"]
    elif node == "r3":
        v4 = ["198.18.1.0/24 via 198.18.3.1", "198.18.2.0/30 via 198.18.3.1",
              "unreachable 198.18.0.0/16", "198.19.0.0/16 via 198.18.4.2"]
        v6 = [f"{V6}:1::/64 via {V6}:3::1", f"{V6}:2::/64 via {V6}:3::1",
              f"unreachable {V6}::/56", f"{V6}:100::/56 via {V6}:4::2"]
    elif node == "internet":
        v4 = ["198.18.0.0/16 via 198.18.4.1", "unreachable 198.19.0.0/16"]
        v6 = [f"{V6}::/56 via {V6}:4::1", f"unreachable {V6}:100::/56"]
    return [f"route add {r}" for r in v4] + [f"route add {r}" for r in v6]


# --------------------------------------------------------------------------
# Teardown of every live lab of this process, on exit and on signals.

_live_labs: List["Lab"] = []
_live_lock = threading.RLock()
_previous_handlers: Dict[int, object] = {}
_hooks_installed = False


def _teardown_all() -> None:
    with _live_lock:
        labs = list(_live_labs)
    for lab in labs:
        try:
            lab.close()
        except Exception as e:  # noqa: BLE001 - keep tearing down the others
            print(f"nvlab: teardown of {lab.prefix} failed: {e}",
                  file=sys.stderr)


def _on_signal(signum, frame):
    _teardown_all()
    previous = _previous_handlers.get(signum)
    if callable(previous):
        previous(signum, frame)       # e.g. KeyboardInterrupt for SIGINT
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die of the signal, as without us


def _install_hooks() -> None:
    global _hooks_installed
    with _live_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_teardown_all)
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; atexit still runs
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if previous == signal.SIG_IGN:
                continue  # an ignored signal must not end the lab either
            _previous_handlers[sig] = previous
            signal.signal(sig, _on_signal)


# --------------------------------------------------------------------------
# The lab.


class Lab:
    """A lab of namespaces. Thread-compatible: one thread drives a Lab (close()
    may also run from a signal handler or atexit, and is idempotent)."""

    def __init__(self, hosts: int = 3, prefix: Optional[str] = None,
                 icmp_ratelimit: Optional[int] = None, extra_targets: int = 0,
                 state_file: Optional[str] = None,
                 workdir: Optional[str] = None, _attach: Optional[dict] = None):
        self._procs: List[subprocess.Popen] = []
        self._closed = False
        self._owner_pid = os.getpid()
        self._owner = {"pid": self._owner_pid,
                       "start": _proc_start(self._owner_pid)}
        self._detached = False
        if _attach is not None:
            self._load(_attach, state_file)
            return
        if not 1 <= hosts <= MAX_HOSTS:
            raise LabError(f"hosts must be 1..{MAX_HOSTS}, got {hosts}")
        if not 0 <= extra_targets <= 5000:
            raise LabError(
                f"extra_targets must be 0..5000, got {extra_targets}")
        self.prefix = self._pick_prefix(prefix)
        self._owns_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix=f"nvlab-{self.prefix}-")
        os.makedirs(self.dir, exist_ok=True)
        self.state_file = state_file or os.path.join(self.dir, "lab.json")
        self._owns_state_file = state_file is None
        self.icmp_ratelimit = icmp_ratelimit
        self.namespaces: List[str] = []
        self._ns_ids: Dict[str, int] = {}
        self._describe(hosts, extra_targets)
        self._owned = True
        with _live_lock:
            _live_labs.append(self)
        _install_hooks()
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- construction -----------------------------------------------------

    @staticmethod
    def _pick_prefix(prefix: Optional[str]) -> str:
        existing = _netns_list()
        if prefix is not None:
            if not re.fullmatch(r"[a-z][a-z0-9]{1,7}", prefix):
                raise LabError(
                    f"bad prefix {prefix!r}: want [a-z][a-z0-9]{{1,7}}")
            if any(n.startswith(prefix + "-") for n in existing):
                raise LabError(
                    f"namespaces with prefix {prefix}- exist already")
            return prefix
        for _ in range(100):
            candidate = f"nv{os.urandom(2).hex()}"
            if not any(n.startswith(candidate + "-") for n in existing):
                return candidate
        raise LabError("could not find a free lab prefix")

    def _ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def _describe(self, hosts: int, extra_targets: int) -> None:
        """Fills in names and addresses (no system change)."""
        self.switch = Node("switch", self._ns("switch"), "switch")
        self.server = Node("server", self._ns("server"), "server", _host_v4(2),
                           _host_v6(2), "eth0", "server",
                           os.path.join(self.dir, "server", "home"))
        self.hosts = [
            Node(f"h{k}", self._ns(f"h{k}"), "host", _host_v4(10 + k),
                 _host_v6(10 + k), "eth0", f"h{k}",
                 os.path.join(self.dir, f"h{k}", "home"))
            for k in range(1, hosts + 1)]
        self.internet = Node("internet", self._ns("internet"), "internet",
                             "198.18.4.2", f"{V6}:4::2", "r3")
        ifaces: Dict[str, Dict[str, Dict[str, str]]] = {r: {} for r in ROUTERS}
        ifaces["r1"]["lan"] = {"ipv4": "198.18.1.1", "ipv6": f"{V6}:1::1"}
        for lower, upper, net in P2P:
            ifaces[lower][upper] = {"ipv4": f"198.18.{net}.1",
                                    "ipv6": f"{V6}:{net}::1"}
            if upper in ifaces:
                ifaces[upper][lower] = {"ipv4": f"198.18.{net}.2",
                                        "ipv6": f"{V6}:{net}::2"}
        self.routers = [
            Router("r1", self._ns("r1"), "lan", "r2", ifaces["r1"]),
            Router("r2", self._ns("r2"), "r1", "r3", ifaces["r2"]),
            Router("r3", self._ns("r3"), "r2", "internet", ifaces["r3"])]
        self.target = Target("198.19.0.1", f"{V6}:100::1", self.internet.ns)
        self.extra_targets = [_extra_target(i, self.internet.ns)
                              for i in range(extra_targets)]
        # Routed to the internet namespace, which answers ICMP unreachable.
        self.unreachable = Target("198.19.255.254", f"{V6}:1ff::fe",
                                  self.internet.ns)
        self.links: Dict[str, Link] = {}
        for member in [*self.hosts, self.server]:
            self.links[member.name] = Link(member.name, "lan", self.switch.ns,
                                           member.link, member.ns, "eth0")
        self.links["lan-r1"] = Link("lan-r1", "lan", self.switch.ns, "r1",
                                    self._ns("r1"), "lan")
        for lower, upper, _ in P2P:
            self.links[f"{lower}-{upper}"] = Link(
                f"{lower}-{upper}", "p2p", self._ns(lower), upper,
                self._ns(upper), lower)

    def _all_nodes(self) -> list:
        return [self.switch, self.server, *self.hosts, *self.routers,
                self.internet]

    def _build(self) -> None:
        for node in self._all_nodes():
            self._add_namespace(node)
        self._build_links()
        for node in [self.server, *self.hosts]:
            self._configure_lan_member(node)
        for r in self.routers:
            self._configure_router(r)
        self._configure_internet()
        if self.icmp_ratelimit is not None:
            for node in [*self.routers, self.internet]:
                self.set_icmp_ratelimit(node, self.icmp_ratelimit)
        self._write_state()

    def _build_links(self) -> None:
        """The switch's bridge and every veth pair, each end created right
        in its namespace (never in the host's own)."""
        _ip_batch(self.switch.ns, ["link set lo up",
                                   "link add br0 type bridge",
                                   "link set br0 up"])
        for link in self.links.values():
            _run(["ip", "link", "add", link.a_if, "netns", link.a_ns, "type",
                  "veth", "peer", "name", link.b_if, "netns", link.b_ns])
        _ip_batch(self.switch.ns, [
            f"link set {link.a_if} master br0 up"
            for link in self.links.values() if link.kind == "lan"])

    def _configure_lan_member(self, node: Node) -> None:
        _ip_batch(node.ns, [
            "link set lo up", "link set eth0 up",
            f"addr add {node.ipv4}/24 dev eth0",
            f"addr add {node.ipv6}/64 dev eth0 nodad",
            *_routes("host")])
        os.makedirs(node.home, exist_ok=True)

    def _configure_router(self, r: Router) -> None:
        lines = ["link set lo up"]
        for ifname, addr in r.interfaces.items():
            plen = 24 if ifname == "lan" else 30
            lines += [f"link set {ifname} up",
                      f"addr add {addr['ipv4']}/{plen} dev {ifname}",
                      f"addr add {addr['ipv6']}/64 dev {ifname} nodad"]
        _ip_batch(r.ns, lines + _routes(r.name))

    def _configure_internet(self) -> None:
        inet = self.internet
        lines = ["link set lo up", "link set r3 up",
                 f"addr add {inet.ipv4}/30 dev r3",
                 f"addr add {inet.ipv6}/64 dev r3 nodad"]
        for t in [self.target, *self.extra_targets]:
            lines += [f"addr add {t.ipv4}/32 dev lo",
                      f"addr add {t.ipv6}/128 dev lo nodad"]
        _ip_batch(inet.ns, lines + _routes("internet"))

    def _add_namespace(self, node) -> None:
        # Record first: a crash right after `ip netns add` must not leak it.
        self.namespaces.append(node.ns)
        self._write_state()
        try:
            _run(["ip", "netns", "add", node.ns])
        except LabError:
            self.namespaces.remove(node.ns)  # not ours: never delete it
            self._write_state()
            raise
        self._ns_ids[node.ns] = _netns_id(node.ns)
        self._write_state()
        settings = {"net.ipv6.conf.all.accept_dad": 0,
                    "net.ipv6.conf.default.accept_dad": 0,
                    "net.ipv6.conf.all.accept_ra": 0,
                    "net.ipv6.conf.default.accept_ra": 0}
        if node.role == "switch":
            settings.update({"net.ipv6.conf.all.disable_ipv6": 1,
                             "net.ipv6.conf.default.disable_ipv6": 1})
        if node.role in ("router", "internet"):
            # The internet namespace forwards too: Linux answers an
            # unreachable route with ICMP only on a forwarding interface.
            settings.update({"net.ipv4.ip_forward": 1,
                             "net.ipv4.conf.all.forwarding": 1,
                             "net.ipv4.conf.default.forwarding": 1,
                             "net.ipv4.conf.all.rp_filter": 0,
                             "net.ipv4.conf.default.rp_filter": 0,
                             "net.ipv6.conf.all.forwarding": 1,
                             "net.ipv6.conf.default.forwarding": 1})
        _sysctl(node.ns, settings)

    # -- state ------------------------------------------------------------

    def state(self) -> dict:
        """The lab's description, JSON-able (also what the state file holds)."""
        def node(n):
            d = dataclasses.asdict(n)
            if isinstance(n, Router):
                d.update(hop_ipv4=n.hop_ipv4, hop_ipv6=n.hop_ipv6)
            return d
        return {
            "version": STATE_VERSION,
            "prefix": self.prefix,
            "dir": self.dir,
            "owns_dir": self._owns_dir,
            "owner": self._owner,        # the process whose exit ends it
            "detached": self._detached,  # outlives its owner (nvlab.py up)
            "namespaces": list(self.namespaces),
            "namespace_ids": dict(self._ns_ids),
            "icmp_ratelimit": self.icmp_ratelimit,
            "hosts": [node(h) for h in self.hosts],
            "server": node(self.server),
            "switch": node(self.switch),
            "routers": [node(r) for r in self.routers],
            "internet": node(self.internet),
            "target": dataclasses.asdict(self.target),
            "extra_targets": [dataclasses.asdict(t)
                              for t in self.extra_targets],
            "unreachable": dataclasses.asdict(self.unreachable),
            "links": {k: dataclasses.asdict(v) for k, v in self.links.items()},
            "path_ipv4": self.expected_path(4),
            "path_ipv6": self.expected_path(6),
        }

    def _write_state(self) -> None:
        tmp = f"{self.state_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.state(), f, indent=2)
            f.write("\n")
        os.replace(tmp, self.state_file)

    @classmethod
    def attach(cls, state_file: str, own: bool = False) -> "Lab":
        """A Lab for the lab that state_file describes. With own=True this
        object's close() (and exit/signal handlers) tear that lab down."""
        try:
            with open(state_file) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise LabError(f"cannot read lab state {state_file}: {e}") from e
        if data.get("version") != STATE_VERSION:
            raise LabError(f"{state_file}: unknown state version "
                           f"{data.get('version')!r}")
        lab = cls(_attach=data, state_file=state_file)
        lab._owned = own
        if own:
            with _live_lock:
                _live_labs.append(lab)
            _install_hooks()
        return lab

    def _load(self, data: dict, state_file: str) -> None:
        try:
            self.prefix = data["prefix"]
            self.dir = data["dir"]
            self._owns_dir = bool(data.get("owns_dir"))
            self._owner = data.get("owner") or {"pid": 0, "start": 0}
            self._detached = bool(data.get("detached", True))
            self.state_file = state_file
            self._owns_state_file = True
            self.icmp_ratelimit = data.get("icmp_ratelimit")
            self.namespaces = list(data["namespaces"])
            self._ns_ids = {k: int(v) for k, v in
                            data.get("namespace_ids", {}).items()}
            fields = {f.name for f in dataclasses.fields(Node)}
            mk = lambda d: Node(**{k: v for k, v in d.items() if k in fields})
            self.hosts = [mk(h) for h in data["hosts"]]
            self.server = mk(data["server"])
            self.switch = mk(data["switch"])
            self.internet = mk(data["internet"])
            self.routers = [Router(r["name"], r["ns"], r["lower_if"],
                                   r["upper_if"], r["interfaces"])
                            for r in data["routers"]]
            self.target = Target(**data["target"])
            self.extra_targets = [Target(**t) for t in data["extra_targets"]]
            self.unreachable = Target(**data["unreachable"])
            self.links = {k: Link(**v) for k, v in data["links"].items()}
        except (KeyError, TypeError) as e:
            raise LabError(f"{state_file}: malformed lab state: {e}") from e

    # -- lookups ----------------------------------------------------------

    def node(self, name: Union[str, Node, Router]) -> Union[Node, Router]:
        """A node by name (h1, server, switch, r1, internet) or the object."""
        if isinstance(name, (Node, Router)):
            return name
        for n in self._all_nodes():
            if n.name == name or n.ns == name:
                return n
        raise LabError(f"no node {name!r} in lab {self.prefix} "
                       f"(have {', '.join(n.name for n in self._all_nodes())})")

    def router(self, name: Union[str, Router]) -> Router:
        r = self.node(name)
        if not isinstance(r, Router):
            raise LabError(f"{name!r} is not a router (r1, r2, r3)")
        return r

    def link(self, name: Union[str, Node, Link]) -> Link:
        """A link by name: a LAN member (h1, server, r1) or r1-r2, r2-r3,
        r3-internet; a Node stands for its LAN link."""
        if isinstance(name, Link):
            return name
        key = name.name if isinstance(name, Node) else name
        if key not in self.links:
            raise LabError(f"no link {key!r} (have {', '.join(self.links)})")
        return self.links[key]

    def expected_path(self, family: int = 4) -> List[str]:
        """The hop addresses from any LAN host to the target, in order."""
        if family == 4:
            return [r.hop_ipv4 for r in self.routers] + [self.target.ipv4]
        return [r.hop_ipv6 for r in self.routers] + [self.target.ipv6]

    # -- processes --------------------------------------------------------

    def _argv(self, node, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", self.node(node).ns, *argv]

    def exec(self, node, argv: Sequence[str],
             **kw) -> subprocess.CompletedProcess:
        """subprocess.run(argv, **kw) inside node's namespace."""
        return subprocess.run(self._argv(node, argv), **kw)

    def run(self, node, argv: Sequence[str], timeout: float = 60) -> str:
        """Runs argv inside node's namespace; its stdout, or LabError."""
        return _run(self._argv(node, argv), timeout=timeout)

    def popen(self, node, argv: Sequence[str], **kw) -> subprocess.Popen:
        """subprocess.Popen inside node's namespace, ended by PID at teardown
        (`ip netns exec` execs argv, so the PID is argv's own)."""
        proc = subprocess.Popen(self._argv(node, argv), **kw)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 3.0) -> Optional[int]:
        """Ends a process started with popen() by its PID; its exit code."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.returncode

    # -- faults: nftables -------------------------------------------------

    def _nft_apply(self, ns: str, family: str, key: str,
                   rules: Dict[str, List[str]]) -> None:
        """Replaces fault `key` in ns by one base chain per hook (hook ->
        rules). Each fault has chains of its own, so faults add up and are
        cleared one by one."""
        lines = [f"add table {family} {NFT_TABLE}"]
        for hook, hook_rules in rules.items():
            chain = f"{key}__{hook}"
            lines += [f"add chain {family} {NFT_TABLE} {chain} "
                      f"{{ type filter hook {hook} priority 0; "
                      "policy accept; }",
                      f"flush chain {family} {NFT_TABLE} {chain}"]
            lines += [f"add rule {family} {NFT_TABLE} {chain} {r}"
                      for r in hook_rules]
        _run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
             input_text="\n".join(lines) + "\n")

    def _nft_clear(self, ns: str, family: str, key: Optional[str]) -> None:
        """Deletes fault `key`'s chains in ns (every fault when key is None)."""
        out = _run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table",
                    family, NFT_TABLE], ok_errors=("No such file",))
        if not out.strip():
            return
        chains = [o["chain"]["name"] for o in json.loads(out)["nftables"]
                  if "chain" in o]
        if key is None:
            lines = [f"delete table {family} {NFT_TABLE}"]
        else:
            lines = []
            for c in chains:
                if c.rsplit("__", 1)[0] == key:
                    lines += [f"flush chain {family} {NFT_TABLE} {c}",
                              f"delete chain {family} {NFT_TABLE} {c}"]
        if lines:
            _run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                 input_text="\n".join(lines) + "\n")

    @staticmethod
    def _key(kind: str, name: str) -> str:
        return f"{kind}_{re.sub(r'[^A-Za-z0-9]', '_', name)}"

    def _loss_plan(self, where, direction: str):
        """(ns, family, key, {hook: [match, ...]}) for a loss fault."""
        if direction not in DIRECTIONS:
            raise LabError(f"direction must be one of {DIRECTIONS}")
        up, down = direction in ("both", "up"), direction in ("both", "down")
        if isinstance(where, Router) or where in ROUTERS:
            r = self.router(where)
            matches = ([f'oifname "{r.upper_if}"'] if up else []) + \
                      ([f'oifname "{r.lower_if}"'] if down else [])
            if direction == "both":
                matches = [""]
            return (r.ns, "inet", self._key("loss", "router_" + r.name),
                    {"forward": matches})
        link = self.link(where)
        if link.kind == "lan":
            matches = ([f'iifname "{link.a_if}"'] if up else []) + \
                      ([f'oifname "{link.a_if}"'] if down else [])
            return (link.a_ns, "bridge", self._key("loss", link.name),
                    {"forward": matches})
        out_if, in_if = f'oifname "{link.a_if}"', f'iifname "{link.a_if}"'
        hooks: Dict[str, List[str]] = {"forward": []}
        if up:
            hooks["forward"].append(out_if)
            hooks["output"] = [out_if]
        if down:
            hooks["forward"].append(in_if)
            hooks["input"] = [in_if]
        return link.a_ns, "inet", self._key("loss", link.name), hooks

    def set_loss(self, where, percent: float, direction: str = "both") -> None:
        """Drops percent% of the packets at `where` (see the module docstring:
        a LAN link, a router's forwarding, or a link between routers)."""
        if not 0 <= percent <= 100:
            raise LabError(f"loss percent must be 0..100, got {percent}")
        ns, family, key, hooks = self._loss_plan(where, direction)
        rule = f"numgen random mod 10000 < {int(round(percent * 100))} drop"
        self._nft_clear(ns, family, key)
        self._nft_apply(ns, family, key, {
            hook: [f"{m} {rule}".strip() for m in matches]
            for hook, matches in hooks.items()})

    def clear_loss(self, where) -> None:
        ns, family, key, _ = self._loss_plan(where, "both")
        self._nft_clear(ns, family, key)

    def drop_time_exceeded(self, router) -> None:
        """The router stops sending ICMP and ICMPv6 time-exceeded; it still
        forwards everything (rate limiting that is not loss)."""
        r = self.router(router)
        self._nft_apply(r.ns, "inet", self._key("te", r.name), {"output": [
            "icmp type time-exceeded drop",
            "icmpv6 type time-exceeded drop"]})

    def allow_time_exceeded(self, router) -> None:
        r = self.router(router)
        self._nft_clear(r.ns, "inet", self._key("te", r.name))

    def drop_all(self, router) -> None:
        """The router drops every packet it receives, forwards or sends."""
        r = self.router(router)
        self._nft_apply(r.ns, "inet", self._key("all", r.name), {
            "input": ['iifname != "lo" drop'], "forward": ["drop"],
            "output": ['oifname != "lo" drop']})

    def allow_all(self, router) -> None:
        r = self.router(router)
        self._nft_clear(r.ns, "inet", self._key("all", r.name))

    # -- faults: tc and sysctl --------------------------------------------

    def _rate_ends(self, link: Link, direction: str):
        if direction not in DIRECTIONS:
            raise LabError(f"direction must be one of {DIRECTIONS}")
        # "up" leaves the LAN member (b, its eth0) or the lower router (a).
        a, b = (link.a_ns, link.a_if), (link.b_ns, link.b_if)
        up_end, down_end = (b, a) if link.kind == "lan" else (a, b)
        return ([up_end] if direction in ("both", "up") else []) + \
               ([down_end] if direction in ("both", "down") else [])

    def set_rate(self, link, mbit: float, direction: str = "both") -> None:
        """Limits a link to mbit Mbit/s: tc tbf on the egress of its ends."""
        if not 0.1 <= mbit <= 100000:
            raise LabError(f"rate must be 0.1..100000 Mbit/s, got {mbit}")
        l = self.link(link)
        rate_bytes = mbit * 1e6 / 8
        # Burst: 4 ms worth of the rate, at least a few full-size frames.
        burst = max(int(rate_bytes * 0.004), 16 * 1514)
        for ns, ifname in self._rate_ends(l, direction):
            _run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev",
                  ifname, "root", "tbf", "rate", f"{int(mbit * 1000)}kbit",
                  "burst", str(burst), "latency", "50ms"])

    def clear_rate(self, link) -> None:
        for ns, ifname in self._rate_ends(self.link(link), "both"):
            _run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev",
                  ifname, "root"],
                 ok_errors=("No such file", "handle of zero", "Invalid handle"))

    def set_icmp_ratelimit(self, router, ms: int) -> None:
        """Sets the node's ICMP error rate limit (v4 and v6); 0 also lifts the
        global ICMP budget so that every probe gets its answer."""
        if ms < 0:
            raise LabError(f"icmp ratelimit must be >= 0 ms, got {ms}")
        n = self.node(router)
        settings = {"net.ipv4.icmp_ratelimit": ms,
                    "net.ipv6.icmp.ratelimit": ms}
        if ms == 0:
            settings.update({"net.ipv4.icmp_msgs_per_sec": 1000000,
                             "net.ipv4.icmp_msgs_burst": 1000000})
        else:  # the kernel's defaults
            settings.update({"net.ipv4.icmp_msgs_per_sec": 1000,
                             "net.ipv4.icmp_msgs_burst": 50})
        _sysctl(n.ns, settings)

    def clear_faults(self, node=None) -> None:
        """Removes every nftables fault and tbf limit (of one node, or all)."""
        nodes = [self.node(node)] if node is not None else self._all_nodes()
        for n in nodes:
            for family in ("inet", "bridge"):
                self._nft_clear(n.ns, family, None)
        for l in self.links.values():
            if node is None or {l.a_ns, l.b_ns} & {n.ns for n in nodes}:
                self.clear_rate(l)

    # -- teardown ---------------------------------------------------------

    def detach(self) -> None:
        """Leaves the lab running past this process (no teardown at exit)."""
        self._owned = False
        self._detached = True
        with _live_lock:
            if self in _live_labs:
                _live_labs.remove(self)
        self._write_state()

    def close(self) -> None:
        """Tears the lab down: tracked processes, then every process left in
        its namespaces (by PID), then its recorded namespaces. Idempotent;
        every step is tried even when an earlier one fails."""
        if self._closed or not self._owned or os.getpid() != self._owner_pid:
            return
        self._end_tracked_processes()
        existing = set(_netns_list())
        errors = []
        for ns in list(self.namespaces):
            try:
                if ns in existing:
                    self._remove_namespace(ns)
            except LabError as e:
                errors.append(str(e))
                continue
            self.namespaces.remove(ns)
            self._ns_ids.pop(ns, None)
        if errors:
            self._write_state()  # keep the record of what is left
            raise LabError("teardown incomplete: " + "; ".join(errors))
        self._closed = True
        with _live_lock:
            if self in _live_labs:
                _live_labs.remove(self)
        if self._owns_state_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.state_file)
        else:
            self._write_state()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _end_tracked_processes(self, grace: float = 3.0) -> None:
        """SIGTERM to every tracked process (by PID), SIGKILL after grace."""
        procs, self._procs = [p for p in self._procs if p.poll() is None], []
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def _remove_namespace(self, ns: str) -> None:
        recorded, actual = self._ns_ids.get(ns), _netns_id(ns)
        if recorded is not None and recorded != actual:
            # Same name, another namespace (ours went away, e.g. with a
            # reboot, and someone made a new one): not ours to delete.
            print(f"nvlab: {ns} is not the namespace this lab made; left alone",
                  file=sys.stderr)
            return
        _kill_pids(_netns_pids(ns))
        _run(["ip", "netns", "del", ns], ok_errors=("No such file",))

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def reap(directory: Optional[str] = None) -> List[str]:
    """Tears down the labs whose owner process died without doing so (e.g.
    a test killed by SIGKILL): every DIR/nvlab-*/lab.json (DIR defaults to
    the temp folder) that is not detached and whose owner is gone. Only what
    each state file records is removed. Returns the prefixes reaped."""
    reaped = []
    pattern = os.path.join(directory or tempfile.gettempdir(),
                           "nvlab-*", "lab.json")
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path) as f:
                data = json.load(f)
            owner = data.get("owner") or {}
            alive = _proc_start(int(owner.get("pid", 0))) == owner.get("start")
            if data.get("detached", True) or alive:
                continue
            Lab.attach(path, own=True).close()
            reaped.append(data.get("prefix", path))
        except (OSError, ValueError, LabError) as e:
            print(f"nvlab: cannot reap {path}: {e}", file=sys.stderr)
    return reaped


# --------------------------------------------------------------------------
# Command line.


def _cmd_up(args) -> int:
    state = os.path.abspath(args.state)
    if os.path.exists(state):
        raise LabError(f"{state} exists: a lab may be up already "
                       "(nvlab.py down --state FILE removes it)")
    try:
        lab = Lab(hosts=args.hosts, prefix=args.prefix,
                  icmp_ratelimit=args.icmp_ratelimit,
                  extra_targets=args.extra_targets,
                  state_file=state, workdir=args.dir)
    except BaseException:
        # The lab has torn itself down; a record of nothing helps nobody.
        with contextlib.suppress(OSError):
            if not json.load(open(state)).get("namespaces"):
                os.unlink(state)
        raise
    lab.detach()
    print(f"lab {lab.prefix} up: {len(lab.namespaces)} namespaces, "
          f"state {lab.state_file}")
    return 0


def _cmd_down(args) -> int:
    lab = Lab.attach(args.state, own=True)
    n = len(lab.namespaces)
    lab.close()  # also removes the state file
    print(f"lab {lab.prefix} down: {n} namespaces removed")
    return 0


def _cmd_exec(args) -> int:
    lab = Lab.attach(args.state)
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("exec: no command given (NODE -- ARGV...)")
    os.execvp("ip", lab._argv(args.node, argv))
    return 127  # not reached


def _cmd_ns(args) -> int:
    print(Lab.attach(args.state).node(args.node).ns)
    return 0


def _cmd_show(args) -> int:
    print(json.dumps(Lab.attach(args.state).state(), indent=2))
    return 0


def _cmd_loss(args) -> int:
    Lab.attach(args.state).set_loss(args.where, args.percent, args.direction)
    return 0


def _cmd_rate(args) -> int:
    Lab.attach(args.state).set_rate(args.link, args.mbit, args.direction)
    return 0


def _cmd_reap(args) -> int:
    for prefix in reap(args.dir):
        print(f"lab {prefix} reaped")
    return 0


def _cmd_clear(args) -> int:
    Lab.attach(args.state).clear_faults(args.node)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="nvlab.py", description="netvigil's namespace test lab")
    sub = p.add_subparsers(dest="cmd", required=True)

    def cmd(name, fn, help_text):
        s = sub.add_parser(name, help=help_text)
        s.add_argument("--state", required=True, help="lab state JSON file")
        s.set_defaults(fn=fn)
        return s

    s = cmd("up", _cmd_up, "build a lab that outlives this command")
    s.add_argument("--hosts", type=int, default=3)
    s.add_argument("--icmp-ratelimit", type=int, default=None, metavar="MS")
    s.add_argument("--extra-targets", type=int, default=0)
    s.add_argument("--prefix", default=None)
    s.add_argument("--dir", default=None, help="lab folder (host homes)")
    cmd("down", _cmd_down, "remove exactly what the state file records")
    s = cmd("exec", _cmd_exec, "run a command inside a node's namespace")
    s.add_argument("node")
    s.add_argument("argv", nargs=argparse.REMAINDER)
    s = cmd("ns", _cmd_ns, "print a node's namespace name")
    s.add_argument("node")
    cmd("show", _cmd_show, "print the lab's state")
    s = cmd("loss", _cmd_loss, "drop a percentage of packets")
    s.add_argument("where")
    s.add_argument("percent", type=float)
    s.add_argument("--direction", choices=DIRECTIONS, default="both")
    s = cmd("rate", _cmd_rate, "limit a link with tbf")
    s.add_argument("link")
    s.add_argument("mbit", type=float)
    s.add_argument("--direction", choices=DIRECTIONS, default="both")
    s = cmd("clear", _cmd_clear, "clear faults (of one node, or all)")
    s.add_argument("node", nargs="?")
    s = sub.add_parser("reap", help="tear down labs whose owner died")
    s.add_argument("--dir", default=None, help="where lab folders are")
    s.set_defaults(fn=_cmd_reap)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("nvlab.py: must run as root (network namespaces)",
              file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except LabError as e:
        print(f"nvlab.py {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
