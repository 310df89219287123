#!/usr/bin/python3
"""Self-test of the namespace lab (tests/lab/nvlab.py), with real namespaces,
real ping, mtr, iperf3, nftables and tc. Runs as root; about 30 s."""

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nvlab  # noqa: E402

NVLAB = [sys.executable, os.path.join(HERE, "nvlab.py")]
LAB_NETS = [ipaddress.ip_network(nvlab.IPV4_LAB),
            ipaddress.ip_network(nvlab.IPV6_LAB)]


def namespaces_with(prefix):
    return [n for n in nvlab._netns_list() if n.startswith(prefix + "-")]


def root_links_with(prefix):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    return [l for l in out.splitlines() if prefix in l]


def ping_loss(lab, node, dst, count=300, interval="0.004", extra=()):
    """Percent of echo requests without a reply (ping's own count)."""
    out = lab.exec(node, ["ping", "-n", "-q", "-c", str(count), "-i", interval,
                          "-W", "1", *extra, dst],
                   capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    if not m:
        raise AssertionError(f"no ping summary in: {out!r}")
    sent, got = int(m.group(1)), int(m.group(2))
    return 100.0 * (sent - got) / sent


def in_parallel(*fns):
    """Runs the callables in threads; their results in order (re-raising
    the first exception of any)."""
    results, errors = [None] * len(fns), []

    def call(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors.append(e)
    threads = [threading.Thread(target=call, args=(i, f))
               for i, f in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


class LabTopologyTest(unittest.TestCase):
    """One 3-host lab shared by the tests; each test clears its faults."""

    @classmethod
    def setUpClass(cls):
        cls.lab = nvlab.Lab(hosts=3, icmp_ratelimit=0)

    @classmethod
    def tearDownClass(cls):
        prefix = cls.lab.prefix
        cls.lab.close()
        assert not namespaces_with(prefix), namespaces_with(prefix)

    def tearDown(self):
        self.lab.clear_faults()

    def test_addresses_and_routes_stay_inside_the_lab(self):
        lab = self.lab
        state = json.loads(json.dumps(lab.state()))
        addrs = [n[k] for n in [*state["hosts"], state["server"],
                                state["internet"], state["target"]]
                 for k in ("ipv4", "ipv6")]
        addrs += [a for r in state["routers"] for i in r["interfaces"].values()
                  for a in i.values()]
        self.assertEqual(len(addrs), len(set(addrs)))
        for a in addrs:
            ip = ipaddress.ip_address(a)
            self.assertTrue(any(ip in n for n in LAB_NETS), a)
        for ns in lab.namespaces:
            for fam in ("-4", "-6"):
                routes = subprocess.run(["ip", "-n", ns, fam, "route"],
                                        capture_output=True, text=True).stdout
                self.assertNotIn("default", routes, ns)
        # An address outside the lab has no route: nothing can leave.
        got = lab.exec("h1", ["ip", "route", "get", "192.0.2.1"],
                       capture_output=True, text=True)
        self.assertNotEqual(got.returncode, 0)
        self.assertIn("unreachable", got.stderr)

    def test_every_host_reaches_target_and_server(self):
        lab = self.lab
        jobs = []
        for h in lab.hosts:
            for dst in (lab.target.ipv4, lab.target.ipv6,
                        lab.server.ipv4, lab.server.ipv6):
                jobs.append((h.name, dst, lab.popen(
                    h, ["ping", "-n", "-c", "2", "-i", "0.1", "-W", "2", dst],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for name, dst, proc in jobs:
            self.assertEqual(proc.wait(10), 0, f"{name} -> {dst}")
            lab.stop(proc)

    def test_mtr_lists_r1_r2_r3_target_in_order(self):
        lab = self.lab

        def hops(dst):
            out = lab.run("h2", ["mtr", "--json", "-n", "-c", "2", "-i", "0.2",
                                 dst], timeout=60)
            return [hub["host"] for hub in json.loads(out)["report"]["hubs"]]
        v4, v6 = in_parallel(lambda: hops(lab.target.ipv4),
                             lambda: hops(lab.target.ipv6))
        self.assertEqual(v4, lab.expected_path(4))
        self.assertEqual(v6, lab.expected_path(6))
        self.assertEqual(v4, [lab.routers[0].hop_ipv4, "198.18.2.2",
                              "198.18.3.2", "198.19.0.1"])

    def test_loss_on_a_host_link_is_local_to_that_host(self):
        lab, t = self.lab, self.lab.target.ipv4
        lab.set_loss("h1", 30, direction="up")
        h1, h2 = in_parallel(lambda: ping_loss(lab, "h1", t),
                             lambda: ping_loss(lab, "h2", t))
        self.assertAlmostEqual(h1, 30, delta=10)
        self.assertEqual(h2, 0)
        # Both directions: a round trip is lost with 1 - 0.8 * 0.8 = 36%.
        lab.set_loss(lab.hosts[0], 20)
        self.assertAlmostEqual(ping_loss(lab, "h1", lab.target.ipv6), 36,
                               delta=10)
        lab.clear_loss("h1")
        self.assertEqual(ping_loss(lab, "h1", t, count=100), 0)

    def test_loss_on_a_router_drops_forwarded_traffic_only(self):
        lab, r2 = self.lab, self.lab.routers[1]
        lab.set_loss(r2, 30, direction="up")
        through, to_r2 = in_parallel(
            lambda: ping_loss(lab, "h1", lab.target.ipv4),
            lambda: ping_loss(lab, "h2", r2.hop_ipv4))
        self.assertAlmostEqual(through, 30, delta=10)
        self.assertEqual(to_r2, 0)
        lab.clear_loss("r2")
        self.assertEqual(ping_loss(lab, "h1", lab.target.ipv4, count=100), 0)

    def test_loss_on_the_last_link(self):
        lab = self.lab
        lab.set_loss("r3-internet", 30, direction="up")
        through, to_r3 = in_parallel(
            lambda: ping_loss(lab, "h1", lab.target.ipv6),
            lambda: ping_loss(lab, "h2", lab.routers[2].hop_ipv6))
        self.assertAlmostEqual(through, 30, delta=10)
        self.assertEqual(to_r3, 0)

    def test_drop_time_exceeded_hides_only_that_router(self):
        lab = self.lab

        def answers(ttl, dst):
            out = lab.exec("h3", ["ping", "-n", "-c", "3", "-i", "0.05", "-W",
                                  "1", "-t", str(ttl), dst],
                           capture_output=True, text=True).stdout
            return set(re.findall(
                r"From (\S+) icmp_seq=\d+ Time (?:to live|exceeded)", out))
        self.assertEqual(answers(2, lab.target.ipv4), {"198.18.2.2"})
        lab.drop_time_exceeded("r2")
        self.assertEqual(answers(2, lab.target.ipv4), set())
        self.assertEqual(answers(2, lab.target.ipv6), set())
        self.assertEqual(answers(3, lab.target.ipv4), {"198.18.3.2"})
        self.assertEqual(ping_loss(lab, "h3", lab.target.ipv4, count=50), 0)
        lab.allow_time_exceeded("r2")
        self.assertEqual(answers(2, lab.target.ipv6),
                         {lab.routers[1].hop_ipv6})

    def test_drop_all_blackholes_the_router(self):
        lab = self.lab
        lab.drop_all("r2")
        self.assertEqual(ping_loss(lab, "h1", lab.target.ipv4, count=5,
                                   interval="0.05"), 100)
        self.assertEqual(ping_loss(lab, "h1", lab.routers[1].hop_ipv4, count=5,
                                   interval="0.05"), 100)
        self.assertEqual(ping_loss(lab, "h1", lab.routers[0].hop_ipv4, count=5,
                                   interval="0.05"), 0)
        lab.allow_all("r2")
        self.assertEqual(ping_loss(lab, "h1", lab.target.ipv4, count=20), 0)

    def test_icmp_ratelimit_limits_middle_hop_answers(self):
        lab = self.lab

        def answered(count=40):
            out = lab.exec("h1", ["ping", "-n", "-c", str(count), "-i", "0.01",
                                  "-W", "1", "-t", "2", lab.target.ipv4],
                           capture_output=True, text=True).stdout
            return len(re.findall(r"Time to live exceeded", out))
        self.assertEqual(answered(), 40)
        lab.set_icmp_ratelimit("r2", 1000)
        try:
            self.assertLess(answered(), 15)  # a burst of about 6, then 1/s
        finally:
            lab.set_icmp_ratelimit("r2", 0)
        self.assertEqual(answered(), 40)

    def test_tbf_limits_a_host_link(self):
        lab = self.lab
        h1, h2, h3 = lab.hosts

        def iperf(client, server, port):
            srv = lab.popen(server, ["iperf3", "-s", "-1", "-B", server.ipv4,
                                     "-p", str(port)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
            try:
                for _ in range(50):  # wait for the server's socket
                    if lab.exec(server, ["ss", "-Htln", f"sport = :{port}"],
                                capture_output=True, text=True).stdout.strip():
                        break
                    time.sleep(0.05)
                out = lab.run(client, ["iperf3", "-c", server.ipv4, "-p",
                                       str(port), "-t", "2", "-J"], timeout=30)
                end = json.loads(out)["end"]
                return end["sum_received"]["bits_per_second"] / 1e6
            finally:
                lab.stop(srv)
        lab.set_rate("h1", 50)
        up = iperf(h1, h2, 5301)
        down = iperf(h3, h1, 5302)
        free = iperf(h2, h3, 5303)
        print(f"\ntbf 50 Mbit/s: h1->h2 {up:.1f}, h3->h1 {down:.1f}; "
              f"unlimited h2->h3 {free:.0f} Mbit/s", file=sys.stderr)
        self.assertAlmostEqual(up, 50, delta=10)
        self.assertAlmostEqual(down, 50, delta=10)
        self.assertGreater(free, 250)
        lab.clear_rate("h1")
        self.assertGreater(iperf(h1, h2, 5304), 250)

    def test_unreachable_target_gets_icmp_unreachable(self):
        lab = self.lab
        for dst in (lab.unreachable.ipv4, lab.unreachable.ipv6):
            out = lab.exec("h1", ["ping", "-n", "-c", "1", "-W", "2", dst],
                           capture_output=True, text=True, timeout=10).stdout
            self.assertRegex(
                out, r"From (198\.18\.4\.2|fd4e:7669:6c00:4::2) icmp_seq=1 "
                r"Destination (Host )?[Uu]nreachable", dst)

    def test_state_file_describes_the_lab(self):
        lab = self.lab
        with open(lab.state_file) as f:
            state = json.load(f)
        self.assertEqual(sorted(state["namespaces"]), sorted(lab.namespaces))
        self.assertEqual(len(state["namespaces"]), 3 + 6)
        self.assertEqual(state["path_ipv6"], lab.expected_path(6))
        attached = nvlab.Lab.attach(lab.state_file)
        self.assertEqual(attached.hosts, lab.hosts)
        self.assertEqual(attached.routers[2].hop_ipv4, "198.18.3.2")
        for h in lab.hosts:
            self.assertTrue(os.path.isdir(h.home), h.home)
            self.assertEqual(h.link, h.name)

    def test_bad_requests_raise_clear_errors(self):
        lab = self.lab
        with self.assertRaisesRegex(nvlab.LabError, "no node 'h9'"):
            lab.exec("h9", ["true"])
        with self.assertRaisesRegex(nvlab.LabError, "no link 'r1-r3'"):
            lab.set_loss("r1-r3", 10)
        with self.assertRaisesRegex(nvlab.LabError, "not a router"):
            lab.drop_all("h1")
        with self.assertRaisesRegex(nvlab.LabError, "0..100"):
            lab.set_loss("h1", 120)
        with self.assertRaisesRegex(
                nvlab.LabError, r"ip netns exec .*-h1 ip link set nosuchdev "
                r"up: Cannot find device"):
            lab.run("h1", ["ip", "link", "set", "nosuchdev", "up"])


class LabLifecycleTest(unittest.TestCase):

    def assertGone(self, prefix):
        self.assertEqual(namespaces_with(prefix), [])
        self.assertEqual(root_links_with(prefix + "-"), [])

    def test_failing_body_still_tears_down(self):
        with self.assertRaises(RuntimeError):
            with nvlab.Lab(hosts=1, extra_targets=3) as lab:
                prefix, workdir = lab.prefix, lab.dir
                self.assertEqual(len(namespaces_with(prefix)), 7)
                self.assertEqual(ping_loss(lab, "h1", lab.extra_targets[2].ipv6,
                                           count=2, interval="0.05"), 0)
                tracked = lab.popen("h1", ["sleep", "600"])
                untracked = subprocess.Popen(
                    ["ip", "netns", "exec", lab.server.ns, "sleep", "600"])
                raise RuntimeError("test body fails")
        self.assertGone(prefix)
        self.assertFalse(os.path.exists(workdir))
        self.assertEqual(tracked.poll(), -signal.SIGTERM)
        self.assertIsNotNone(untracked.wait(5))

    def _child_lab(self, sig):
        """A child process builds a lab and gets sig; the lab must go."""
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "lab.json")
            # SIGINT as in an interactive run even if our parent ignores it.
            code = ("import signal, sys, time; sys.path.insert(0, sys.argv[1]);"
                    "signal.signal(signal.SIGINT, signal.default_int_handler);"
                    "import nvlab;"
                    "lab = nvlab.Lab(hosts=1, state_file=sys.argv[2]);"
                    "print('ready', flush=True); time.sleep(600)")
            errors = open(os.path.join(tmp, "stderr"), "w+")
            child = subprocess.Popen([sys.executable, "-c", code, HERE, state],
                                     stdout=subprocess.PIPE, stderr=errors,
                                     text=True)
            try:
                ready = child.stdout.readline().strip()
                errors.seek(0)
                self.assertEqual(ready, "ready", errors.read())
                with open(state) as f:
                    prefix = json.load(f)["prefix"]
                self.assertEqual(len(namespaces_with(prefix)), 7)
                os.kill(child.pid, sig)
                self.assertNotEqual(child.wait(30), 0)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
                errors.close()
            self.assertGone(prefix)
            with open(state) as f:
                self.assertEqual(json.load(f)["namespaces"], [])

    def test_sigterm_tears_down(self):
        self._child_lab(signal.SIGTERM)

    def test_sigint_tears_down(self):
        self._child_lab(signal.SIGINT)

    def test_reap_removes_the_lab_of_a_killed_owner(self):
        code = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
                "import nvlab; lab = nvlab.Lab(hosts=1);"
                "print(lab.prefix, flush=True); time.sleep(600)")
        child = subprocess.Popen([sys.executable, "-c", code, HERE],
                                 stdout=subprocess.PIPE, text=True)
        with child:
            prefix = child.stdout.readline().strip()
            child.kill()  # SIGKILL: no handler, no atexit
            child.wait()
        self.assertEqual(len(namespaces_with(prefix)), 7)
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "lab.json")  # a detached lab: kept
            subprocess.run([*NVLAB, "up", "--hosts", "1", "--state", state],
                           check=True, capture_output=True, timeout=60)
            with open(state) as f:
                detached = json.load(f)["prefix"]
            with nvlab.Lab(hosts=1) as alive:  # its owner (we) lives: kept
                reap = subprocess.run([*NVLAB, "reap"], capture_output=True,
                                      text=True, timeout=60)
                self.assertEqual(reap.returncode, 0, reap.stderr)
                self.assertIn(f"lab {prefix} reaped", reap.stdout)
                self.assertGone(prefix)
                self.assertEqual(len(namespaces_with(alive.prefix)), 7)
                self.assertEqual(len(namespaces_with(detached)), 7)
            subprocess.run([*NVLAB, "down", "--state", state], check=True,
                           capture_output=True, timeout=60)
            self.assertGone(detached)

    def test_command_line_up_exec_down(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "lab.json")
            subprocess.run([*NVLAB, "up", "--hosts", "2", "--state", state,
                            "--icmp-ratelimit", "0"], check=True,
                           capture_output=True, timeout=60)
            try:
                with open(state) as f:
                    data = json.load(f)
                prefix = data["prefix"]
                self.assertEqual(len(namespaces_with(prefix)), 8)
                ping = subprocess.run(
                    [*NVLAB, "exec", "--state", state, "h2", "--", "ping",
                     "-c", "1", "-W", "2", data["target"]["ipv6"]],
                    capture_output=True, text=True, timeout=30)
                self.assertEqual(ping.returncode, 0, ping.stderr)
                code = subprocess.run(
                    [*NVLAB, "exec", "--state", state, "server", "--", "sh",
                     "-c", "exit 7"], timeout=30)
                self.assertEqual(code.returncode, 7)
                again = subprocess.run([*NVLAB, "up", "--state", state],
                                       capture_output=True, text=True)
                self.assertEqual(again.returncode, 1)
                self.assertIn("exists", again.stderr)
            finally:
                down = subprocess.run([*NVLAB, "down", "--state", state],
                                      capture_output=True, text=True,
                                      timeout=60)
            self.assertEqual(down.returncode, 0, down.stderr)
            self.assertGone(prefix)
            self.assertFalse(os.path.exists(state))
            self.assertFalse(os.path.exists(data["dir"]))

    def test_down_touches_only_recorded_namespaces(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "lab.json")
            subprocess.run([*NVLAB, "up", "--hosts", "1", "--state", state],
                           check=True, capture_output=True, timeout=60)
            with open(state) as f:
                prefix = json.load(f)["prefix"]
            foreign = f"{prefix}-foreign"  # this test's own, unrecorded
            subprocess.run(["ip", "netns", "add", foreign], check=True)
            try:
                subprocess.run([*NVLAB, "down", "--state", state], check=True,
                               capture_output=True, timeout=60)
                self.assertEqual(namespaces_with(prefix), [foreign])
            finally:
                subprocess.run(["ip", "netns", "del", foreign], check=True)
            self.assertGone(prefix)

    def test_down_leaves_a_namespace_that_is_not_the_recorded_one(self):
        # As if the lab's switch had gone (a reboot) and another namespace of
        # that name had been made since: its identity differs from the record.
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "lab.json")
            subprocess.run([*NVLAB, "up", "--hosts", "1", "--state", state],
                           check=True, capture_output=True, timeout=60)
            with open(state) as f:
                data = json.load(f)
            switch = data["switch"]["ns"]
            data["namespace_ids"][switch] += 1
            with open(state, "w") as f:
                json.dump(data, f)
            try:
                down = subprocess.run([*NVLAB, "down", "--state", state],
                                      capture_output=True, text=True,
                                      timeout=60)
                self.assertEqual(down.returncode, 0, down.stderr)
                self.assertIn(f"{switch} is not the namespace this lab made",
                              down.stderr)
                self.assertEqual(namespaces_with(data["prefix"]), [switch])
            finally:
                subprocess.run(["ip", "netns", "del", switch], check=True)
            self.assertGone(data["prefix"])

    def test_bad_state_file_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = subprocess.run(
                [*NVLAB, "down", "--state", os.path.join(tmp, "none.json")],
                capture_output=True, text=True)
            self.assertEqual(missing.returncode, 1)
            self.assertIn("cannot read lab state", missing.stderr)
            bad = os.path.join(tmp, "bad.json")
            with open(bad, "w") as f:
                f.write('{"version": 1, "prefix": "x"}')
            broken = subprocess.run([*NVLAB, "down", "--state", bad],
                                    capture_output=True, text=True)
            self.assertEqual(broken.returncode, 1)
            self.assertIn("malformed lab state", broken.stderr)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("lab_selftest_test.py must run as root (network namespaces)")
    unittest.main(verbosity=2)
