#!/usr/bin/python3
"""A tbf-limited link on one host is one speed alert scoped to that host
(not one per pair), and it resolves when the limit goes. Real agents run the
real pairwise iperf3 mesh in the lab; the first period is the baseline."""

import os
import sys
import time
import unittest
import json

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import nvlab  # noqa: E402

PERIOD_S = 70  # 6 ordered pairs x (1 s test + 10 s slot) = 66 s


class SpeedAlertTest(unittest.TestCase):

    def test_limited_host_is_one_host_alert_then_resolves(self):
        d = nvtest.scratch_dir("speedalert")
        pg = nvtest.Postgres(os.path.join(d, "pg"))
        pg.start()
        procs = []
        try:
            with nvlab.Lab(hosts=3) as lab:
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
analysis:
  learning_period: 0s
  speed_min_runs: 1
  speed_persist_runs: 1
  speed_settle: {PERIOD_S + 20}s
"""))
                procs.append(nvtest.Process([nvtest.COLLECTOR, "--config", cfg, "--insecure"],
                                            os.path.join(d, "collector.log"), lab, lab.server).start())
                for h in lab.hosts:
                    procs.append(nvtest.Process(
                        [nvtest.AGENT, "run", "--insecure", "--name", h.name,
                         "--collector", f"{lab.server.ipv4}:7411",
                         "--state-dir", os.path.join(d, "state-" + h.name)],
                        os.path.join(d, f"agent-{h.name}.log"), lab, h).start())

                def ok_results():
                    n = 0
                    for a in lab.hosts:
                        for b in lab.hosts:
                            if a is b:
                                continue
                            r = nvtest.cli(sock, "speed", "history", a.name, b.name, "--json")
                            if r.returncode == 0:
                                n += sum(1 for x in json.loads(r.stdout).get("results", [])
                                         if x.get("outcome") == "SPEED_OUTCOME_OK")
                    return n

                # Baseline: two full meshes (the first result of each agent
                # is learnt), then limit h3's link.
                nvtest.wait_until(lambda: ok_results() >= 12, 3 * PERIOD_S, "two baseline meshes",
                                  interval=3)
                slow = lab.hosts[2]
                lab.set_rate(slow.name, 50)

                def speed_alerts():
                    r = nvtest.cli(sock, "alerts", "--json")
                    return [a for a in json.loads(r.stdout).get("alerts", [])
                            if a["kind"] == "speed_low"] if r.returncode == 0 else []
                alerts = nvtest.wait_until(speed_alerts, 3 * PERIOD_S, "a speed alert", interval=3)
                # Let the rest of the mesh through the slow host settle.
                time.sleep(PERIOD_S // 2)
                alerts = speed_alerts()
                print("\n  " + "\n  ".join(f'{a["scope"]} {a.get("hosts")} {a["summary"]}' for a in alerts))
                self.assertEqual(len(alerts), 1, alerts)
                self.assertEqual(alerts[0]["scope"], "ALERT_SCOPE_HOST")
                self.assertEqual(alerts[0]["hosts"], [slow.name])
                lab.clear_rate(slow.name)
                nvtest.wait_until(lambda: not speed_alerts(), 3 * PERIOD_S,
                                  "the speed alert to resolve", interval=3)
                for p in procs:
                    p.stop()
        finally:
            for p in procs:
                if p.alive():
                    p.stop()
            pg.stop()


if __name__ == "__main__":
    nvtest.main()
