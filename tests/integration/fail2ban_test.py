"""fail2ban-regex with the shipped filter (deploy/fail2ban/filter.d/netvigil.conf)
on an alert log written by netvigil's AlertLog: exactly the expected
addresses, in order.

tests/fixtures/alerts/sample.log is AlertLog's output for a fixed set of
events (tests/unit/collector/alerts/alert_log_test.cc checks it byte for byte).
fail2ban-regex exits 0 even when nothing matches, so its printed addresses
are what is checked. It also ships a jail example that must name the filter.
"""

import os
import shutil
import subprocess
import sys
import unittest

SOURCE_DIR = os.environ.get(
    "NETVIGIL_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FILTER = os.path.join(SOURCE_DIR, "deploy", "fail2ban", "filter.d", "netvigil.conf")
JAIL = os.path.join(SOURCE_DIR, "deploy", "fail2ban", "jail.d", "netvigil.conf")
SAMPLE = os.path.join(SOURCE_DIR, "tests", "fixtures", "alerts", "sample.log")


def matched_ips(log: str, filter_spec: str):
    out = subprocess.run(["fail2ban-regex", "-o", "ip", log, filter_spec],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"fail2ban-regex failed: {out.stderr}")
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


@unittest.skipIf(shutil.which("fail2ban-regex") is None, "fail2ban not installed")
class Fail2banFilterTest(unittest.TestCase):

    def test_default_kinds_match_opened_inbound_and_remote_alerts(self):
        # 192.0.2.1 and 192.0.2.2 are injected through a process name and a
        # fake line inside a summary: they must never match. Updated,
        # acknowledged and resolved events are not failures.
        self.assertEqual(matched_ips(SAMPLE, FILTER),
                         ["203.0.113.66", "198.51.100.23", "2001:db8::7"])

    def test_hostile_names_match_only_the_real_addresses(self):
        # tests/fixtures/alerts/hostile.log: process names and paths with ESC
        # sequences, CR/LF carrying a whole forged line (ip=192.0.2.66), a
        # quote and ` ip=192.0.2.67`, a host name with a newline, bytes FF FE,
        # a bidi override, NUL and a 3,000-byte name. One line per alert;
        # only each alert's own address is banned.
        hostile = os.path.join(SOURCE_DIR, "tests", "fixtures", "alerts", "hostile.log")
        with open(hostile, "rb") as f:
            lines = f.read().split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(len(lines) - 1, 7)
        for line in lines[:-1]:
            self.assertFalse(any(c < 0x20 or c == 0x7F for c in line), line[:120])
        self.assertEqual(matched_ips(hostile, FILTER),
                         [f"203.0.113.{n}" for n in range(21, 28)])

    def test_kinds_parameter_narrows_the_match(self):
        self.assertEqual(matched_ips(SAMPLE, f'{FILTER}[kinds="new_inbound"]'),
                         ["203.0.113.66", "2001:db8::7"])

    def test_a_log_without_addresses_matches_nothing(self):
        with open(SAMPLE) as f:
            lines = [l for l in f if " ip=-" in l]
        self.assertTrue(lines)
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            f"netvigil-f2b-{os.getpid()}.log")
        try:
            with open(path, "w") as f:
                f.writelines(lines)
            self.assertEqual(matched_ips(path, FILTER), [])
        finally:
            os.unlink(path)

    def test_jail_example_uses_the_filter(self):
        with open(JAIL) as f:
            jail = f.read()
        self.assertIn("filter   = netvigil[", jail)
        self.assertIn("usedns   = no", jail)


if __name__ == "__main__":
    unittest.main(verbosity=2)
