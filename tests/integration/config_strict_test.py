#!/usr/bin/env python3
"""Config strictness through the real binary (issues 15 and 16).

`netvigil-collector check-config FILE` and a start with `--config FILE`
refuse, with exit code 2 and FILE:LINE:COL and the field: a key given twice
(both lines named), a listen port outside 1-65535 (99999 used to bind some
other port), two listeners on one port, cross-field errors (at the line of
the field), an empty file, a speed settle shorter than the speed period and
a speed window shorter than the period.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

EXAMPLE = os.path.join(nvtest.SOURCE_DIR, "deploy", "collector.yaml")


class ConfigStrictTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("configstrict")

    def check(self, text: str, name: str = "c.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([nvtest.COLLECTOR, "check-config", path],
                           capture_output=True, text=True, timeout=30)
        return path, r

    def refused(self, text: str, expected: str, name: str = "c.yaml"):
        """check-config exits 2 with `expected` (FILE is replaced by the
        path) on stderr and nothing on stdout; so does a start."""
        path, r = self.check(text, name)
        want = expected.replace("FILE", path)
        self.assertEqual(r.returncode, 2, f"{name}: {r.stdout}{r.stderr}")
        self.assertIn(want, r.stderr)
        self.assertEqual(r.stdout, "")
        s = subprocess.run([nvtest.COLLECTOR, "--config", path, "--insecure"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(s.returncode, 2, s.stderr)
        self.assertIn(want, s.stderr)

    def test_shipped_example_and_explicit_defaults_pass(self):
        with open(EXAMPLE) as f:
            example = f.read()
        for text, name in ((example, "example.yaml"), ("{}\n", "braces.yaml")):
            _, r = self.check(text, name)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
            self.assertIn("OK", r.stdout)

    def test_empty_file(self):
        for text in ("", "# nothing here yet\n"):
            self.refused(text, "FILE: the file is empty (no YAML document)", "empty.yaml")

    def test_duplicate_keys_name_both_lines(self):
        self.refused("probes:\n  path:\n    count: 3\n    count: 30\n",
                     "FILE:4:5: field 'probes.path.count': given twice, on line 3 and on line 4")
        self.refused("database:\n  dsn: a\ndatabase:\n  dsn: b\n",
                     "FILE:3:1: field 'database': given twice, on line 1 and on line 3")
        self.refused("analysis:\n  speed_settle: 3h\n  speed_settle: 2h\n",
                     "FILE:3:3: analysis.speed_settle: given twice, on line 2 and on line 3")

    def test_ports_are_1_to_65535(self):
        self.refused('listen:\n  agents: "0.0.0.0:99999"\n',
                     "FILE:2:11: field 'listen.agents': expected HOST:PORT with a port from 1 "
                     "to 65535 ([ADDRESS]:PORT for IPv6), got '0.0.0.0:99999'")
        self.refused('listen:\n  enroll: "0.0.0.0:0"\n',
                     "FILE:2:11: field 'listen.enroll': expected HOST:PORT")
        self.refused('listen:\n  query_tcp: "127.0.0.1:65536"\n',
                     "FILE:2:14: field 'listen.query_tcp': expected HOST:PORT")
        self.refused("probes:\n  speed:\n    port: 99999\n",
                     "FILE:3:11: field 'probes.speed.port': must be between 1 and 65535")
        self.refused('listen:\n  agents: "127.0.0.1:7411"\n  enroll: "0.0.0.0:7411"\n',
                     "FILE:3:11: field 'listen.enroll' (0.0.0.0:7411) takes the same port as "
                     "listen.agents (127.0.0.1:7411)")

    def test_cross_field_errors_name_the_line(self):
        self.refused("agents:\n  heartbeat_interval: 10s\n  heartbeat_timeout: 15s\n",
                     "FILE:3:22: field 'agents.heartbeat_timeout' (15s) must be at least twice")
        self.refused("retention:\n  raw_days: 30\n  hourly_days: 7\n",
                     "FILE:3:16: field 'retention.hourly_days' (7) must not be less than "
                     "retention.raw_days (30)")
        self.refused("probes:\n  speed:\n    duration: 45s\n",
                     "FILE:3:15: field 'probes.speed.duration' (45s) exceeds")
        self.refused("probes:\n  speed:\n    period: 10s\n    duration: 10s\n",
                     "FILE:3:13: field 'probes.speed.period' (10s) is shorter than one test's "
                     "slot")

    def test_combinations_that_cannot_work(self):
        # Issue 16's lab: speed period 130 s, speed_settle 90 s.
        self.refused("probes:\n  speed:\n    period: 130s\nanalysis:\n  speed_settle: 90s\n",
                     "FILE:5:17: analysis.speed_settle (1m30s) is shorter than "
                     "probes.speed.period 2m10s (line 3)")
        self.refused("probes:\n  speed:\n    period: 4h\nanalysis:\n  speed_settle: 4h\n",
                     "FILE:3:13: analysis.speed_window (3h) is shorter than "
                     "probes.speed.period 4h (line 3)")


if __name__ == "__main__":
    nvtest.main()
