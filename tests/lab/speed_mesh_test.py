#!/usr/bin/python3
"""The pairwise speed mesh on a lab of four hosts, one of them behind a
50 Mbit/s tbf link: after one (shortened) period the matrix has all 12
ordered pairs, the limited host's row and column are near 50 Mbit/s while
the rest are far above, and no two tests overlapped in time (checked from
the stored start and end times)."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import nvlab  # noqa: E402

HOSTS = 4
LIMIT_MBIT = 50
PERIOD_S = 150  # 12 tests x (1 s + 10 s slot) = 132 s fits


class SpeedMeshTest(unittest.TestCase):

    def test_mesh_with_one_slow_host(self):
        d = nvtest.scratch_dir("speedmesh")
        pg = nvtest.Postgres(os.path.join(d, "pg"))
        pg.start()
        procs = []
        try:
            with nvlab.Lab(hosts=HOSTS) as lab:
                slow = lab.hosts[3]
                lab.set_rate(slow.name, LIMIT_MBIT)
                sock = os.path.join(d, "q.sock")
                cfg = os.path.join(d, "c.yaml")
                with open(cfg, "w") as f:
                    f.write(nvtest.collector_yaml(
                        pg.dsn, f"{lab.server.ipv4}:7411", sock, extra=f"""probes:
  path:
    enabled: false
  sockets:
    enabled: false
  files:
    enabled: false
  speed:
    period: {PERIOD_S}s
    duration: 1s
"""))
                c = nvtest.Process([nvtest.COLLECTOR, "--config", cfg, "--insecure"],
                                   os.path.join(d, "collector.log"), lab, lab.server).start()
                procs.append(c)
                for h in lab.hosts:
                    procs.append(nvtest.Process(
                        [nvtest.AGENT, "run", "--insecure", "--name", h.name,
                         "--collector", f"{lab.server.ipv4}:7411",
                         "--state-dir", os.path.join(d, "state-" + h.name)],
                        os.path.join(d, f"agent-{h.name}.log"), lab, h).start())
                names = {h.name for h in lab.hosts}
                nvtest.wait_until(
                    lambda: {n for n, a in nvtest.agents_json(sock).items() if a.get("online")} >= names,
                    60, "all agents online")

                def matrix():
                    r = nvtest.cli(sock, "speed", "matrix", "--json")
                    if r.returncode != 0:
                        return None
                    m = json.loads(r.stdout)
                    cells = [c for c in m.get("cells", []) if c.get("outcome") == "SPEED_OUTCOME_OK"]
                    return m if len(cells) >= HOSTS * (HOSTS - 1) else None
                started = time.monotonic()
                m = nvtest.wait_until(matrix, PERIOD_S + 60, "all 12 ordered pairs measured",
                                      interval=2)
                print(f"\n  full mesh after {time.monotonic() - started:.0f} s")
                table = nvtest.cli(sock, "speed", "matrix").stdout
                print(table)

                mbit = {(c["client"], c["server"]): c["bps"] / 1e6 for c in m["cells"]}
                self.assertEqual(len(mbit), HOSTS * (HOSTS - 1))
                for (a, b), v in sorted(mbit.items()):
                    if slow.name in (a, b):
                        self.assertGreater(v, LIMIT_MBIT * 0.6, (a, b, v))
                        self.assertLess(v, LIMIT_MBIT * 1.2, (a, b, v))
                    else:
                        self.assertGreater(v, LIMIT_MBIT * 4, (a, b, v))

                # No two tests overlapped: every stored interval, all pairs.
                spans = []
                for a in names:
                    for b in names - {a}:
                        r = nvtest.cli(sock, "speed", "history", a, b, "--json")
                        self.assertEqual(r.returncode, 0, r.stderr)
                        for res in json.loads(r.stdout).get("results", []):
                            if res.get("outcome") != "SPEED_OUTCOME_OK":
                                continue
                            spans.append((nvtest.rfc3339(res["startedAt"]),
                                          nvtest.rfc3339(res["finishedAt"]), a, b))
                self.assertGreaterEqual(len(spans), HOSTS * (HOSTS - 1))
                spans.sort()
                for (s1, e1, a1, b1), (s2, e2, a2, b2) in zip(spans, spans[1:]):
                    self.assertLessEqual(e1, s2, f"{a1}->{b1} [{s1}, {e1}] overlaps "
                                                 f"{a2}->{b2} [{s2}, {e2}]")
                print(f"  {len(spans)} tests, none overlapping")

                # A test asked for by hand (Query ProbeNow) goes to the peer's
                # address the agent's plan lists, so the agent runs it, and
                # authenticates to the peer's iperf3 server.
                a, b = lab.hosts[0].name, lab.hosts[1].name
                r = nvtest.cli(sock, "probe", a, "speed", b, "--json", "--deadline", "60",
                               timeout=90)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("SPEED_OUTCOME_OK", r.stdout)
                for p in procs:
                    p.stop()
        finally:
            for p in procs:
                if p.alive():
                    p.stop()
            pg.stop()


if __name__ == "__main__":
    nvtest.main()
