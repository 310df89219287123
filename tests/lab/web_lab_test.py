#!/usr/bin/python3
"""The web dashboard (issue #19) fed by real agents in the lab, looked at
with Debian's headless Chromium: web_test.py's checks with measured history
instead of seeded history.

Three lab hosts run real probes at a fast plan (path to the lab's target
every 2 s, sockets and files every 5 s, the speed mesh of the 6 ordered
pairs every 12 s: 1 s tests at most 200 Mbit/s in 2 s slots; with three
hosts no two tests are host-disjoint, so the 6 tests take 6 slots). The collector
runs in the server namespace with listen.web on that namespace's loopback
(plain HTTP, no login), so Chromium runs there too (`ip netns exec`): it
needs no other network, and no host but 127.0.0.1 resolves for it.

Planted, in this order, while the speed mesh learns its baselines:
- a loss episode: 50% of what r2 forwards upstream dropped (lab.set_loss)
  for three of h1's runs, then cleared;
- a route change: r2 answers time-exceeded from a new address. It gets
  198.18.5.2/32 on its interface towards the LAN and its route back to
  the LAN `src 198.18.5.2`; Linux sends an ICMP error with the source of
  the route back to the sender, so hop 2 of every run from then on is
  198.18.5.2 instead of 198.18.2.2 (`netvigil path` shows it);
- h3's link limited to 40 Mbit/s (tbf) after every pair has three results,
  so its pairs' latest tests fall well under their baselines.
Then, each page (home, h1 at 3 h, a /run page, the pair h1-h3, alerts)
loads with no console message and nothing referenced off the collector, and
is kept as a PNG (build/tests/web/web-lab-*.png), and:
- the heat map has one cell per ordered pair of the lab's hosts, its class
  and ratio what SpeedHistory (`netvigil speed history`) gives for the
  result the cell shows: that result against the median of the pair's
  successful results before it (at least 3);
- h1's timeline has one point per run stored in range (PathHistory through
  `netvigil path` at the same moment: the points are exactly the stored
  runs up to the newest one the page drew, and no fewer than were stored
  before the page was asked for), each with that run's loss; the runs
  during the loss episode are lossy and no other; the route change is
  marked at the first run with the new hop, and nowhere else; each alert
  about h1 (ListAlerts) is marked at the time it opened;
- the /run page of the point for that run shows its hops as
  `netvigil path` has them (and a lossy run's likewise);
- the alerts page lists every alert `netvigil alerts --all` lists.
About 2 minutes here."""

import calendar
import json
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import webpage  # noqa: E402
from labcase import LabTestCase  # noqa: E402

TARGET = "internet"
PATH_EVERY_S = 2
SPEED_PERIOD_S = 12
SPEED_CAP_BPS = 200_000_000
SLOW_MBIT = 40
LOSS_PERCENT = 50
LOSS_RUNS = 3
# A run of 20 probes 50 ms apart, its last answer waited for: what a run
# straddling a fault's start or end may take.
RUN_SPAN_S = 3
NEW_HOP = "198.18.5.2"  # outside every lab network, inside its /15
RANGE = "3h"


def first_addresses(run):
    """The address that answered at each TTL ("" where none), as the
    collector's route cache reads a run (collector/web/route_cache.cc)."""
    route = []
    for h in run.get("hops", []):
        ttl = h.get("ttl", 0)
        if not 0 < ttl <= 255:
            continue
        route += [""] * (ttl - len(route))
        if h.get("addresses"):
            route[ttl - 1] = h["addresses"][0].get("address", "")
    return route


def route_changed(a, b):
    return any(x and y and x != y for x, y in zip(a, b))


def run_loss(run):
    """The loss a timeline shows for a run: its destination's, 100 when it
    was not reached and nothing was sent to it."""
    d = run.get("destination", {})
    if run.get("destinationReached") or d.get("sent", 0) > 0:
        return d.get("lossPercent", 0.0)
    return 100.0


def loss_class(loss):
    if loss <= 0:
        return "loss0"
    if loss < 5:
        return "loss1"
    if loss < 20:
        return "loss2"
    if loss < 100:
        return "loss3"
    return "loss4"


def ratio_class(ratio):
    if ratio >= 0.8:
        return "ok"
    if ratio >= 0.5:
        return "warn"
    return "bad"


class WebLabTest(LabTestCase):
    TAG = "web-lab"
    HOSTS = 3
    LAB_OPTIONS = {"icmp_ratelimit": 0}
    planted = {}

    @classmethod
    def start(cls):
        cls.web_port = 7480
        cls.start_netvigil(f"""probes:
  path:
    every: {PATH_EVERY_S}s
    count: 20
    interval: 50ms
    targets:
      - name: {TARGET}
        address: {cls.lab.target.ipv4}
  sockets:
    every: 5s
  files:
    every: 5s
  speed:
    period: {SPEED_PERIOD_S}s
    duration: 1s
    slot_overhead: 1s
    max_bitrate_bps: {SPEED_CAP_BPS}
analysis:
  learning_period: 0s
  path_loss_confirm_runs: 2
  cross_host_settle: 10s
""")
        cls.base = f"http://127.0.0.1:{cls.web_port}"
        cls.ns = cls.lab.server.ns
        cls.plant()

    @classmethod
    def start_netvigil(cls, extra_yaml, agent_args=(), online_timeout=60):
        # LabTestCase's, with listen.web on the server namespace's loopback
        # added to the listen: section collector_yaml writes (the extra YAML
        # cannot add it: a second listen: key is refused).
        real = nvtest.collector_yaml

        def with_web(*a, **kw):
            return real(*a, **kw).replace(
                "listen:\n", f"listen:\n  web: \"127.0.0.1:{cls.web_port}\"\n", 1)
        nvtest.collector_yaml = with_web
        try:
            super().start_netvigil(extra_yaml, agent_args, online_timeout)
        finally:
            nvtest.collector_yaml = real

    # -- the CLI (the Query service) ------------------------------------

    @classmethod
    def cli_json(cls, *args):
        r = nvtest.cli(cls.sock, *args, "--json")
        if r.returncode != 0:
            raise AssertionError(f"netvigil {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    @classmethod
    def runs(cls, host="h1"):
        """The host's stored runs to the target in range, oldest first."""
        out = cls.cli_json("path", host, TARGET, "--since", RANGE).get("runs", [])
        return sorted(out, key=lambda r: nvtest.rfc3339(r["run"]["startedAt"]))

    @classmethod
    def speed_results(cls, client, server):
        return cls.cli_json("speed", "history", client, server,
                            "--since", "1d").get("results", [])

    # -- what is planted -------------------------------------------------

    @classmethod
    def wait_runs_after(cls, t, n, what):
        """Waits for n runs of h1 that started after t; returns the runs."""
        return nvtest.wait_until(
            lambda: (lambda rs: rs if len(rs) >= n else None)(
                [r for r in cls.runs() if nvtest.rfc3339(r["run"]["startedAt"]) > t]),
            60, what, interval=0.5)

    @classmethod
    def plant(cls):
        names = [h.name for h in cls.lab.hosts]
        # A few clean runs first.
        cls.wait_runs_after(0, 3, "three runs of h1")
        r2 = cls.lab.routers[1]
        # The episode: surely on from t_on to t_off, surely off before
        # t_set and after t_clear.
        t_set = time.time()
        cls.lab.set_loss(r2.name, LOSS_PERCENT, direction="up")
        t_on = time.time()
        try:
            cls.wait_runs_after(t_on, LOSS_RUNS, f"{LOSS_RUNS} runs of h1 during the loss")
        finally:
            t_off = time.time()
            cls.lab.clear_loss(r2.name)
        t_clear = time.time()
        cls.planted["loss"] = (t_set, t_on, t_off, t_clear)

        # The route change (how: the module docstring).
        t_route = time.time()
        cls.lab.run(r2, ["ip", "addr", "add", f"{NEW_HOP}/32", "dev", r2.lower_if])
        cls.lab.run(r2, ["ip", "route", "replace", "198.18.1.0/24", "via",
                         "198.18.2.1", "src", NEW_HOP])
        runs = cls.wait_runs_after(t_route + RUN_SPAN_S, 2,
                                   "two runs of h1 after the route change")
        hop2 = first_addresses(runs[-1]["run"])[1]
        if hop2 != NEW_HOP:
            raise AssertionError(f"hop 2 answers from {hop2}, not {NEW_HOP}")
        cls.planted["route"] = t_route

        # Every pair's baseline: three successful results each.
        def baselines_learnt():
            return all(len([r for r in cls.speed_results(a, b)
                            if r.get("outcome") == "SPEED_OUTCOME_OK"]) >= 3
                       for a in names for b in names if a != b)
        nvtest.wait_until(baselines_learnt, 6 * SPEED_PERIOD_S,
                          "three speed results of every pair", interval=2)
        # h3's link slowed; its pairs measured again.
        slow = cls.lab.hosts[2].name
        t_rate = time.time()
        cls.lab.set_rate(slow, SLOW_MBIT)
        cls.planted["slow"] = (slow, t_rate)

        def slow_pairs_measured():
            return all(any(nvtest.rfc3339(r["startedAt"]) > t_rate
                           for r in cls.speed_results(a, b))
                       for a in names for b in names if a != b and slow in (a, b))
        nvtest.wait_until(slow_pairs_measured, 3 * SPEED_PERIOD_S,
                          f"every pair of {slow} measured after its link slowed",
                          interval=2)

    # -- the pages -------------------------------------------------------

    def load(self, path, shot):
        return webpage.load(self, self.base, path, shot, netns=self.ns)

    def get(self, path):
        """A page's HTML as the collector sends it (curl inside the server
        namespace: this process is not in it)."""
        return self.lab.run(self.lab.server,
                            ["curl", "-sS", "--max-time", "30", self.base + path])

    def test_home_heat_map_classes_from_speed_history(self):
        names = sorted(h.name for h in self.lab.hosts)
        dom = self.load("/", "web-lab-home.png")
        for n in names:
            self.assertIn(f'data-host="{n}"', dom)
        cells = re.findall(r'<td class="cell (\w+)" data-client="([\w-]+)" '
                           r'data-server="([\w-]+)" data-ratio="([0-9.]+)" '
                           r'title="([^"]*)"', dom)
        got = {(c, s): (cls, float(r), title) for cls, c, s, r, title in cells}
        pairs = {(a, b) for a in names for b in names if a != b}
        self.assertEqual(len(cells), len(got), "one cell per ordered pair")
        self.assertEqual(set(got), pairs)
        slow, t_rate = self.planted["slow"]
        for (a, b), (cls, ratio, title) in sorted(got.items()):
            # The result the cell shows, by its time (to the second; one
            # pair's tests are a speed period apart).
            m = re.search(r" at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", title)
            self.assertIsNotNone(m, (a, b, title))
            shown = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
            results = self.speed_results(a, b)
            latest = [r for r in results
                      if int(nvtest.rfc3339(r["startedAt"])) == int(shown)]
            self.assertEqual(len(latest), 1, (a, b, title))
            latest = latest[0]
            at = nvtest.rfc3339(latest["startedAt"])
            if latest.get("outcome") != "SPEED_OUTCOME_OK":
                print(f"\n  {a}->{b} failed: {latest.get('error')}")
                self.assertEqual(cls, "fail", (a, b, latest))
                continue
            before = [r["forward"]["receivedBps"] for r in results
                      if r.get("outcome") == "SPEED_OUTCOME_OK"
                      and at - 7 * 86400 <= nvtest.rfc3339(r["startedAt"]) < at]
            self.assertGreaterEqual(len(before), 3, (a, b, "baseline results"))
            want = latest["forward"]["receivedBps"] / statistics.median(before)
            self.assertAlmostEqual(ratio, want, delta=0.0015, msg=(a, b, title))
            self.assertEqual(cls, ratio_class(want), (a, b, want, title))
            # The planted slow link is what makes the classes differ.
            if slow in (a, b) and at > t_rate:
                self.assertEqual(cls, "bad", (a, b, want, title))
        print("\n  heat map: " + ", ".join(f"{a}->{b} {c} {r:.2f}"
                                         for (a, b), (c, r, _) in sorted(got.items())))

    def test_host_timeline_points_loss_and_route_change(self):
        self.check_timeline()

    def check_timeline(self):
        """The host page's checks; keeps the runs the run page needs."""
        stored_before = len(self.runs())
        marks_before = self.alert_marks()
        dom = self.load(f"/host?name=h1&range={RANGE}", "web-lab-host.png")
        after = self.runs()
        marks_after = self.alert_marks()
        svg = re.search(r'(<svg class="timeline"[^>]*data-target="internet"[^>]*>)(.*?)</svg>',
                        dom, re.S)
        self.assertIsNotNone(svg, "a timeline for the target")
        # The points are the <svg> tag's data-pts (drawn as one path per
        # loss class; app.js opens a point's /run page on a click).
        points = webpage.timeline_points(svg.group(1))
        self.assertTrue(points, "points on the timeline")
        self.assertTrue(all(p["seq"] for p in points), "every point opens its run")
        self.assertNotIn("<circle", svg.group(2), "no element per point")
        # One point per stored run: the runs stored up to the newest the
        # page drew, no fewer than were stored before it was asked for.
        self.assertGreaterEqual(len(points), stored_before)
        self.assertEqual([p["seq"] for p in points],
                         [int(r["seq"]) for r in after[:len(points)]])
        self.assertIn(f"resolution: raw; {len(points)} runs from", dom)
        by_seq = {int(r["seq"]): r for r in after}
        t_set, t_on, t_off, t_clear = self.planted["loss"]
        lossy = []
        classes = {}
        for p in points:
            run = by_seq[p["seq"]]["run"]
            started = nvtest.rfc3339(run["startedAt"])
            self.assertAlmostEqual(p["run_at_us"] / 1e6, started, delta=1e-5)
            self.assertEqual(p["at"], int(started))
            want = run_loss(run)
            self.assertAlmostEqual(p["loss"], want, delta=0.051, msg=p["seq"])
            cls = loss_class(want)
            classes[cls] = classes.get(cls, 0) + 1
            if p["loss"] > 0:
                lossy.append(started)
            if t_on <= started and started + RUN_SPAN_S <= t_off:
                self.assertGreater(p["loss"], 0, f"run {p['seq']} during the loss episode")
        # Each point drawn in its loss class's path.
        self.assertEqual({c: n for c, n in webpage.timeline_dots(svg.group(2)).items() if n},
                         classes)
        # The episode at its time, and no loss outside it.
        self.assertGreaterEqual(len(lossy), LOSS_RUNS)
        for started in lossy:
            self.assertTrue(t_set - RUN_SPAN_S < started < t_clear,
                            f"a lossy run at {started}, the episode {t_set}-{t_clear}")
        # The route change: where PathHistory's hops change, which is the
        # first run with the new hop 2, after it was planted.
        drawn = [after[i] for i in range(len(points))]
        want = [nvtest.rfc3339(b["run"]["startedAt"])
                for a, b in zip(drawn, drawn[1:])
                if route_changed(first_addresses(a["run"]), first_addresses(b["run"]))]
        first_new = next(r for r in drawn if first_addresses(r["run"])[1:2] == [NEW_HOP])
        t_first_new = nvtest.rfc3339(first_new["run"]["startedAt"])
        self.assertEqual(want, [t_first_new], "one route change, to the new hop")
        self.assertGreater(t_first_new, self.planted["route"] - RUN_SPAN_S)
        changes = [int(x) for x in re.findall(r'<line class="route-change" data-at="(\d+)"',
                                              svg.group(2))]
        self.assertEqual(changes, [int(t) for t in want])
        # The alerts about h1 (and this target) opened in range, each a
        # triangle at its time: those open before the page was read, and
        # none that was not open after.
        marks = {int(x) for x in re.findall(r'<path class="alert-mark sev-\w+" data-at="(\d+)"',
                                            svg.group(2))}
        self.assertLessEqual(marks_before, marks)
        self.assertLessEqual(marks, marks_after)
        type(self).route_change_run = first_new
        type(self).lossy_seq = next(p["seq"] for p in points if p["loss"] > 0)
        type(self).links = {p["seq"]: p["run_at_us"] for p in points}
        print(f"\n  h1: {len(points)} points ({stored_before} runs stored before the "
              f"page), {len(lossy)} lossy, route change at {t_first_new:.3f}, "
              f"{len(marks)} alert mark(s)")

    def alert_marks(self):
        """The times (s) of the alerts h1's timeline of the target marks,
        from ListAlerts (`netvigil alerts --all`)."""
        since = time.time() - 3 * 3600
        return {int(nvtest.rfc3339(a["firstSeen"])) for a in self.alerts(all_=True)
                if "h1" in a.get("hosts", []) and nvtest.rfc3339(a["firstSeen"]) >= since
                and a.get("details", {}).get("target", TARGET) == TARGET}

    def assert_run_page_matches(self, html, stored):
        run = re.search(r'<section id="run">(.*?)</section>', html, re.S)
        self.assertIsNotNone(run, "a run section")
        rows = re.findall(r'<tr><td>(\d+)</td><td>([^<]*(?:<br>[^<]*)*)</td>'
                          r'<td>([0-9.]+)</td><td>(\d+)</td>', run.group(1))
        want = [(h["ttl"], [a["address"] for a in h.get("addresses", [])] or ["???"],
                 round(h.get("lossPercent", 0.0), 1), h.get("sent", 0))
                for h in stored["run"]["hops"]]
        self.assertEqual([(int(t), a.split("<br>"), float(l), int(s))
                          for t, a, l, s in rows], want)
        self.assertIn(f", seq {int(stored['seq'])}</p>", run.group(1))

    def test_run_page_shows_that_runs_hops(self):
        if not hasattr(self, "route_change_run"):
            self.check_timeline()
        stored = self.route_change_run
        seq = int(stored["seq"])
        link = (f"/run?host=h1&target={TARGET}&seq={seq}&at={self.links[seq]}"
                f"&range={RANGE}")
        html = self.load(link, "web-lab-run.png")
        self.assert_run_page_matches(html, stored)
        # `netvigil path` for that run: the same hops, the new one second.
        self.assertEqual(first_addresses(stored["run"]),
                         [self.lab.routers[0].hop_ipv4, NEW_HOP,
                          self.lab.routers[2].hop_ipv4, self.lab.target.ipv4])
        self.assertIn(f"<td>{NEW_HOP}</td>", html)
        # A lossy run's page likewise (its loss per hop).
        seq = self.lossy_seq
        stored = {int(r["seq"]): r for r in self.runs()}[seq]
        html = self.get(f"/run?host=h1&target={TARGET}&seq={seq}&at={self.links[seq]}"
                        f"&range={RANGE}")
        self.assert_run_page_matches(html, stored)
        self.assertGreater(max(h.get("lossPercent", 0) for h in stored["run"]["hops"]), 0)

    def test_pair_page_loads(self):
        slow = self.planted["slow"][0]
        ok = lambda a, b: len([r for r in self.speed_results(a, b)
                               if r.get("outcome") == "SPEED_OUTCOME_OK"])
        dirs = (("ab", "h1", slow), ("ba", slow, "h1"))
        before = {d: ok(a, b) for d, a, b in dirs}
        dom = self.load(f"/pair?a=h1&b={slow}&range=1d", "web-lab-pair.png")
        after = {d: ok(a, b) for d, a, b in dirs}
        # A point per successful test of each direction, stored when the
        # page was read; a baseline line each.
        for d, a, b in dirs:
            n = len(re.findall(rf'<circle class="pt {d}"', dom))
            self.assertTrue(before[d] <= n <= after[d], (a, b, before[d], n, after[d]))
        self.assertEqual(len(re.findall(r'<line class="baseline', dom)), 2)

    def test_alerts_page_lists_every_alert(self):
        before = {a["id"] for a in self.alerts(all_=True)}
        dom = self.load("/alerts?range=1d", "web-lab-alerts.png")
        after = {a["id"] for a in self.alerts(all_=True)}
        self.assertIn("<h1>Alerts</h1>", dom)
        shown = set(re.findall(r'<tr id="alert-(\d+)"', dom))
        self.assertLessEqual(before, shown)
        self.assertLessEqual(shown, after)
        print(f"\n  alerts page: {len(shown)} alerts")


if __name__ == "__main__":
    nvtest.main()
