#!/usr/bin/python3
"""Lab tests of `netvigil-agent probe path` against mtr on the same path.

One nvlab lab (host h1 -> r1 -> r2 -> r3 -> target) serves every test; each
test clears its faults afterwards. Needs root, $NETVIGIL_BUILD_DIR (with
agent/netvigil-agent) and $NETVIGIL_SOURCE_DIR.

Loss tolerance: with N probes at loss p, a measured loss fraction has a
standard deviation sqrt(p(1-p)/N); two independent measurements (ours and
mtr's) differ with standard deviation sqrt(2p(1-p)/N). For N=200, p=0.2 that
is 2.83 and 4.0 percentage points; the tests allow 4 sigma: each within
11.3 points of 20%, and ours within 16 points of mtr's (false failure odds
about 1 in 15,000 per check).
"""
import json
import math
import os
import subprocess
import sys
import time
import unittest

SOURCE_DIR = os.environ.get(
    "NETVIGIL_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "lab"))
import nvlab  # noqa: E402

BUILD_DIR = os.environ.get("NETVIGIL_BUILD_DIR", "")
AGENT = os.path.join(BUILD_DIR, "agent", "netvigil-agent")

LOSS_COUNT = 200
LOSS_P = 0.20


def sigma(p, n):
    return 100.0 * math.sqrt(p * (1 - p) / n)


class PathProbeLabTest(unittest.TestCase):
    lab = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("lab tests need root")
        if not os.access(AGENT, os.X_OK):
            raise AssertionError(f"no agent binary at {AGENT}")
        cls.lab = nvlab.Lab(hosts=1, icmp_ratelimit=0)
        cls.lab.__enter__()
        cls.h1 = cls.lab.hosts[0]

    @classmethod
    def tearDownClass(cls):
        if cls.lab is not None:
            cls.lab.__exit__(None, None, None)

    def tearDown(self):
        self.lab.clear_faults()
        for r in self.lab.routers:
            self.lab.set_icmp_ratelimit(r, 0)

    # -- helpers ---------------------------------------------------------

    def probe(self, args, timeout=60, prefix=()):
        """Runs the probe with --json in h1; (runs, returncode, stderr, s)."""
        t0 = time.monotonic()
        done = self.lab.exec(self.h1, [*prefix, AGENT, "probe", "path",
                                       "--json", *args],
                             capture_output=True, text=True, timeout=timeout)
        took = time.monotonic() - t0
        runs = [json.loads(line) for line in done.stdout.splitlines()
                if line.strip()]
        return runs, done.returncode, done.stderr, took

    def mtr(self, args, timeout=60):
        out = self.lab.run(self.h1, ["mtr", "--json", "-n", *args],
                           timeout=timeout)
        return json.loads(out)["report"]["hubs"]

    @staticmethod
    def hop_addresses(run):
        return [h["addresses"][0]["address"] if h["addresses"] else "???"
                for h in run["hops"]]

    # -- tests -----------------------------------------------------------

    def test_hops_equal_mtr_ipv4_and_ipv6(self):
        for family, target in ((4, self.lab.target.ipv4),
                               (6, self.lab.target.ipv6)):
            with self.subTest(family=family):
                runs, rc, err, _ = self.probe(
                    [target, "-c", "3", "-i", "0.1"])
                self.assertEqual(rc, 0, err)
                (run,) = runs
                hubs = self.mtr([f"-{family}", "-c", "3", "-i", "0.1", target])
                mtr_hops = [h["host"] for h in hubs]
                ours = self.hop_addresses(run)
                self.assertEqual(ours, mtr_hops)
                self.assertEqual(ours, self.lab.expected_path(family))
                self.assertGreaterEqual(len(ours), 4)  # three routers + target
                self.assertTrue(run["destinationReached"])
                self.assertEqual(run["destination"]["ttl"], len(ours))
                self.assertEqual(run["ipVersion"], family)
                self.assertEqual(run["socketKind"], "PATH_SOCKET_KIND_RAW")

    def test_no_loss_is_zero_everywhere(self):
        runs, rc, err, _ = self.probe(
            [self.lab.target.ipv4, "-c", "50", "-i", "0.02"])
        self.assertEqual(rc, 0, err)
        (run,) = runs
        for hop in run["hops"]:
            self.assertEqual(hop["lossPercent"], 0, hop)
            self.assertEqual(hop["sent"], 50)
            self.assertEqual(hop["received"], 50)
            self.assertGreater(hop["avgMs"], 0)
            self.assertLessEqual(hop["bestMs"], hop["avgMs"])
            self.assertLessEqual(hop["avgMs"], hop["worstMs"])
        self.assertEqual(run["destination"]["lossPercent"], 0)

    def test_loss_on_last_link_agrees_with_mtr(self):
        # "up": only what crosses r3 -> internet is dropped, so the
        # destination loses LOSS_P of its probes and the routers none.
        self.lab.set_loss("r3-internet", LOSS_P * 100, "up")
        target = self.lab.target.ipv4
        args = ["-c", str(LOSS_COUNT), "-i", "0.01"]
        runs, rc, err, _ = self.probe([target, *args])
        self.assertEqual(rc, 0, err)
        (run,) = runs
        ours = run["destination"]["lossPercent"]
        hubs = self.mtr([*args, target], timeout=120)
        theirs = hubs[-1]["Loss%"]
        self.assertEqual(hubs[-1]["host"], target)
        s1 = sigma(LOSS_P, LOSS_COUNT)
        s2 = math.sqrt(2) * s1
        msg = f"ours {ours:.1f}% mtr {theirs:.1f}% (1 sigma {s1:.2f})"
        self.assertLessEqual(abs(ours - LOSS_P * 100), 4 * s1, msg)
        self.assertLessEqual(abs(theirs - LOSS_P * 100), 4 * s1, msg)
        self.assertLessEqual(abs(ours - theirs), 4 * s2, msg)
        self.assertEqual(run["destination"]["sent"], LOSS_COUNT)
        for hop in run["hops"][:-1]:
            self.assertEqual(hop["lossPercent"], 0, hop)
        print(f"\n20% loss on r3-internet, N={LOSS_COUNT}: {msg}",
              file=sys.stderr)

    def test_rate_limited_middle_hops_show_loss_destination_none(self):
        # Linux's default: time-exceeded at about 1/s after a burst of ~6.
        for r in self.lab.routers:
            self.lab.set_icmp_ratelimit(r, 1000)
        time.sleep(1.2)  # let the token buckets fill, as at any fresh start
        runs, rc, err, _ = self.probe(
            [self.lab.target.ipv4, "-c", "40", "-i", "0.05"])
        self.assertEqual(rc, 0, err)
        (run,) = runs
        hops = run["hops"]
        self.assertEqual(self.hop_addresses(run),
                         self.lab.expected_path(4))
        middle = [h["lossPercent"] for h in hops[:-1]]
        # 40 probes in 2 s: at most ~6 + 2 answers each, so >= 50% loss.
        for loss in middle:
            self.assertGreaterEqual(loss, 50, middle)
        self.assertEqual(run["destination"]["lossPercent"], 0)
        self.assertEqual(run["destination"]["received"], 40)

    def test_unreachable_target_is_a_result_with_reason(self):
        runs, rc, err, took = self.probe(
            [self.lab.unreachable.ipv4, "-c", "3", "-i", "0.2"])
        self.assertEqual(rc, 1)
        (run,) = runs
        self.assertFalse(run["destinationReached"])
        self.assertIn("destination unreachable", run["error"])
        self.assertIn("unreachable", run["hops"][-1]["errors"][0])
        self.assertIn(run["error"], err)
        self.assertLess(took, 0.4 + 2 + 1)  # rounds, timeout cap, slack

    def test_router_dropping_everything_is_a_result_with_reason(self):
        self.lab.drop_all("r2")
        runs, rc, err, took = self.probe(
            [self.lab.target.ipv4, "-c", "3", "-i", "0.2"])
        self.assertEqual(rc, 1)
        (run,) = runs
        self.assertEqual(run["error"],
                         "destination not reached: no reply beyond hop 1")
        self.assertEqual(self.hop_addresses(run),
                         [self.lab.routers[0].hop_ipv4, "???"])
        self.assertEqual(run["hops"][1]["lossPercent"], 100)
        # Rounds, then the last round's wait for a late ICMP error (4 s,
        # kPathLateErrorWait), and slack.
        self.assertLess(took, 0.4 + 4 + 1)

    def test_late_unreachable_names_the_hop_as_mtr_does(self):
        # r3 routes a prefix through a next hop that is not on its link: it
        # queues each probe while ARP (neighbour discovery for IPv6) fails
        # and answers "host unreachable" ~3 s later, far past the probe's
        # timeout. mtr shows r3 at hop 4 with those answers; so must we.
        r3 = self.lab.routers[2]
        up = r3.upper_if
        v6 = nvlab.V6
        setup = [
            ["ip", "addr", "add", "198.18.5.1/24", "dev", up],
            ["ip", "route", "add", "198.19.77.0/24", "via", "198.18.5.99"],
            ["ip", "-6", "addr", "add", f"{v6}:5::1/64", "dev", up, "nodad"],
            ["ip", "-6", "route", "add", f"{v6}:177::/64", "via",
             f"{v6}:5::99"],
        ]
        for argv in setup:
            self.lab.run(r3, argv)
        try:
            for family, target, hop, what in (
                    (4, "198.19.77.1", r3.hop_ipv4, "host unreachable"),
                    (6, f"{v6}:177::1", r3.hop_ipv6, "address unreachable")):
                with self.subTest(family=family):
                    runs, rc, err, took = self.probe(
                        [target, "-c", "3", "-i", "0.2"])
                    hubs = self.mtr(
                        [f"-{family}", "-c", "3", "-i", "0.2", target])
                    self.assertEqual(rc, 1, err)
                    (run,) = runs
                    ours = self.hop_addresses(run)
                    expected = self.lab.expected_path(family)[:3] + [hop]
                    self.assertEqual([h["host"] for h in hubs], expected)
                    self.assertEqual(ours, expected)
                    last = run["hops"][-1]
                    self.assertEqual(last["ttl"], 4)
                    self.assertEqual(last["errors"], [what])
                    self.assertEqual(
                        run["error"],
                        f"destination unreachable: {what} (from {hop} at "
                        "hop 4)")
                    # Both count the errors as the hop's answers, ~3 s late.
                    self.assertEqual(last["lossPercent"], hubs[-1]["Loss%"])
                    self.assertEqual(last["received"], 3)
                    self.assertGreater(last["avgMs"], 500)
                    self.assertGreater(hubs[-1]["Avg"], 500)
                    self.assertLess(took, 0.4 + 4 + 1)
                    print(f"\nlate {what} (IPv{family}): ours avg "
                          f"{last['avgMs']:.0f} ms, mtr avg "
                          f"{hubs[-1]['Avg']:.0f} ms, run {took:.2f} s",
                          file=sys.stderr)
        finally:
            for argv in reversed(setup):
                self.lab.exec(r3, ["del" if a == "add" else a
                                   for a in argv if a != "nodad"])

    def test_unresolvable_name_is_a_result_with_reason(self):
        runs, rc, err, took = self.probe(
            ["no-such-host.invalid", self.lab.target.ipv4, "-c", "2",
             "-i", "0.1"])
        self.assertEqual(rc, 1)
        bad, good = runs
        self.assertIn("name does not resolve", bad["error"])
        self.assertEqual(bad["hops"], [])
        # The other target was not held up by the failed name.
        self.assertEqual(good["error"], "")
        self.assertTrue(good["destinationReached"])
        self.assertLess(took, 5 + 2)  # the resolution bound, and slack

    def test_unprivileged_datagram_socket_and_clear_error_without_either(self):
        nobody = ["setpriv", "--reuid=65534", "--regid=65534",
                  "--clear-groups"]
        self.lab.run(self.h1, ["sysctl", "-qw",
                               "net.ipv4.ping_group_range=1 0"])
        runs, rc, err, _ = self.probe([self.lab.target.ipv4, "-c", "1"],
                                      prefix=nobody)
        self.assertEqual(rc, 1)
        self.assertEqual(runs, [])
        self.assertIn("CAP_NET_RAW", err)
        self.assertIn("ping_group_range", err)
        try:
            self.lab.run(self.h1, ["sysctl", "-qw",
                                   "net.ipv4.ping_group_range=0 2147483647"])
            for family, target in ((4, self.lab.target.ipv4),
                                   (6, self.lab.target.ipv6)):
                runs, rc, err, _ = self.probe(
                    [target, "-c", "3", "-i", "0.1"], prefix=nobody)
                self.assertEqual(rc, 0, err)
                (run,) = runs
                self.assertEqual(run["socketKind"], "PATH_SOCKET_KIND_DGRAM")
                self.assertEqual(self.hop_addresses(run),
                                 self.lab.expected_path(family))
                self.assertEqual(run["destination"]["received"], 3)
        finally:
            self.lab.run(self.h1, ["sysctl", "-qw",
                                   "net.ipv4.ping_group_range=1 0"])

    def test_report_table_without_json(self):
        done = self.lab.exec(self.h1, [AGENT, "probe", "path",
                                       self.lab.target.ipv4, "-c", "2",
                                       "-i", "0.1"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("Loss%", done.stdout)
        for i, addr in enumerate(self.lab.expected_path(4), start=1):
            self.assertIn(f"{i:3d}.|-- {addr}", done.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
