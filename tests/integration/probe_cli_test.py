#!/usr/bin/python3
"""The standalone probes (`netvigil-agent probe ...`) as a person at a
terminal or a script meets them, through the real binary:
- speed: logs always on stderr (stdout is only the JSON, even for a failed
  test), --log-level error silences them; an authenticated iperf3 server
  (a stock `iperf3 -s` with --authorized-users-path and an RSA key pair) is
  tested with --username, --rsa-public-key-path and IPERF3_PASSWORD, as a
  stock `iperf3 -c` tests it at the same moment; -b takes iperf3's
  suffixes; a name that does not resolve says so, as the path probe does;
- files: a folder that does not exist fails naming it (exit 1, nothing on
  stdout); a symlinked folder is watched as its real path;
- every probe subcommand's --help shows its defaults.
Needs $NETVIGIL_BUILD_DIR with agent/netvigil-agent, iperf3 and openssl."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

AGENT = nvtest.AGENT
USER, PASSWORD = "probe-user", "probe-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, env=None, timeout=60):
    full = dict(os.environ)
    full.pop("IPERF3_PASSWORD", None)
    full.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, env=full,
                          timeout=timeout)


class ProbeCliTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(AGENT, os.X_OK):
            raise AssertionError(f"no agent binary at {AGENT}")
        cls.dir = d = nvtest.scratch_dir("probecli")
        priv, cls.pub = os.path.join(d, "private.pem"), os.path.join(d, "public.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", priv], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", cls.pub],
                       check=True, capture_output=True)
        users = os.path.join(d, "users.csv")
        with open(users, "w") as f:
            digest = hashlib.sha256(f"{{{USER}}}{PASSWORD}".encode()).hexdigest()
            f.write(f"{USER},{digest}\n")
        cls.port = free_port()
        cls.server = nvtest.Process(
            ["iperf3", "-s", "-p", str(cls.port), "--forceflush",
             "--rsa-private-key-path", priv, "--authorized-users-path", users],
            os.path.join(d, "iperf3.log")).start()
        nvtest.wait_until(lambda: "listening" in cls.server.output(), 10,
                          "the iperf3 server listening")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def speed(self, *args, env=None, retries=5):
        """`probe speed 127.0.0.1 -p PORT -t 1 ARGS`; retried while the
        server is busy with the stock client of the same test."""
        for _ in range(retries):
            r = run([AGENT, "probe", "speed", "127.0.0.1", "-p", str(self.port),
                     "-t", "1", *args], env=env)
            if "busy" not in r.stdout + r.stderr:
                return r
            time.sleep(1)
        return r

    def stock(self, *args, auth=True):
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(self.port), "-t", "1",
                "--json", *args]
        env = {}
        if auth:
            argv += ["--username", USER, "--rsa-public-key-path", self.pub]
            env["IPERF3_PASSWORD"] = PASSWORD
        for _ in range(5):
            r = run(argv, env=env)
            doc = json.loads(r.stdout)
            if "busy" not in doc.get("error", ""):
                return doc
            time.sleep(1)
        return doc

    # -- speed ---------------------------------------------------------------

    def test_failed_test_with_json_prints_only_json_on_stdout(self):
        closed = free_port()
        r = run([AGENT, "probe", "speed", "127.0.0.1", "-p", str(closed), "-t",
                 "1", "--json"])
        self.assertEqual(r.returncode, 1, r.stderr)
        doc = json.loads(r.stdout)  # the whole of stdout is the result
        self.assertEqual(doc["outcome"], "SPEED_OUTCOME_FAILED")
        self.assertIn("connection refused", doc["error"])
        self.assertIn("speed_test_failed", r.stderr)  # the log line, on stderr
        self.assertIn("netvigil-agent probe speed: connection refused", r.stderr)

        quiet = run([AGENT, "probe", "speed", "127.0.0.1", "-p", str(closed),
                     "-t", "1", "--json", "--log-level", "error"])
        self.assertEqual(quiet.returncode, 1)
        self.assertEqual(json.loads(quiet.stdout)["outcome"], "SPEED_OUTCOME_FAILED")
        self.assertNotIn("speed_test_failed", quiet.stderr)
        self.assertEqual(quiet.stderr.strip().splitlines(),
                         [f"netvigil-agent probe speed: {doc['error']}"])

    def test_authenticated_server_as_stock_iperf3_tests_it(self):
        theirs = self.stock()
        self.assertNotIn("error", theirs)
        ours = self.speed("--json", "--username", USER,
                          "--rsa-public-key-path", self.pub,
                          env={"IPERF3_PASSWORD": PASSWORD})
        self.assertEqual(ours.returncode, 0, ours.stderr)
        doc = json.loads(ours.stdout)
        self.assertEqual(doc["outcome"], "SPEED_OUTCOME_OK")
        self.assertGreater(doc["forward"]["receivedBps"], 0)
        print(f"\nauthenticated: ours {doc['forward']['receivedBps'] / 1e9:.2f} "
              f"Gbit/s, stock iperf3 "
              f"{theirs['end']['sum_received']['bits_per_second'] / 1e9:.2f} Gbit/s",
              file=sys.stderr)

        # Without credentials the server refuses, for both.
        self.assertIn("authorization failed", self.stock(auth=False).get("error", ""))
        refused = self.speed("--json")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("not authorised", json.loads(refused.stdout)["error"])
        wrong = self.speed("--json", "--username", USER, "--rsa-public-key-path",
                           self.pub, env={"IPERF3_PASSWORD": "wrong"})
        self.assertEqual(wrong.returncode, 1)
        self.assertIn("not authorised", json.loads(wrong.stdout)["error"])

        # The password is never a flag: without the variable, a clear error.
        missing = self.speed("--username", USER, "--rsa-public-key-path", self.pub)
        self.assertEqual(missing.returncode, 2)
        self.assertIn("IPERF3_PASSWORD", missing.stderr)
        self.assertEqual(missing.stdout, "")

    def test_bitrate_takes_iperf3_suffixes(self):
        theirs = self.stock("-u", "-b", "20M")
        self.assertNotIn("error", theirs)
        r = self.speed("--json", "-u", "-b", "20M", "--username", USER,
                       "--rsa-public-key-path", self.pub,
                       env={"IPERF3_PASSWORD": PASSWORD})
        self.assertEqual(r.returncode, 0, r.stderr)
        sent = json.loads(r.stdout)["forward"]["sentBps"]
        stock_sent = theirs["end"]["sum"]["bits_per_second"]
        # iperf3 paces UDP to the asked rate: both near 20 Mbit/s.
        for got in (sent, stock_sent):
            self.assertGreater(got, 15e6)
            self.assertLess(got, 25e6)
        bad = run([AGENT, "probe", "speed", "127.0.0.1", "-b", "20X"])
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("bitrate '20X'", bad.stderr)
        self.assertEqual(bad.stdout, "")

    def test_unresolvable_name_says_so_as_the_path_probe_does(self):
        r = run([AGENT, "probe", "speed", "no-such-host.invalid", "--json"])
        self.assertEqual(r.returncode, 1)
        error = json.loads(r.stdout)["error"]
        self.assertTrue(error.startswith("name does not resolve: no-such-host.invalid"),
                        error)
        self.assertNotIn("Resource temporarily unavailable", error)
        path = run([AGENT, "probe", "path", "no-such-host.invalid", "-c", "1",
                    "--json"])
        self.assertIn("name does not resolve: no-such-host.invalid",
                      json.loads(path.stdout)["error"])

    # -- sockets -------------------------------------------------------------

    def test_sockets_json_tells_dual_stack_from_v6_only(self):
        held = {}
        for v6only in (0, 1):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            s.bind(("::", 0))
            s.listen()
            held[s.getsockname()[1]] = (s, bool(v6only))
        try:
            r = run([AGENT, "probe", "sockets", "--json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            by_port = {e["localPort"]: e for e in json.loads(r.stdout)["sockets"]
                       if e.get("localPort") in held and e["state"] == "LISTEN"}
            for port, (_, v6only) in held.items():
                # false is shown too: the field has presence.
                self.assertIs(by_port[port]["v6Only"], v6only)
            table = run([AGENT, "probe", "sockets"]).stdout
            for port, (_, v6only) in held.items():
                self.assertIn(f"[::]:{port} " if v6only else f" *:{port} ", table)
        finally:
            for s, _ in held.values():
                s.close()

    # -- files ---------------------------------------------------------------

    def test_missing_folder_fails_naming_it_and_symlink_is_followed(self):
        missing = os.path.join(self.dir, "not-there")
        r = run([AGENT, "probe", "files", "--dir", missing])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn(f"watched folder does not exist: {missing}", r.stderr)

        real = os.path.join(self.dir, "real")
        link = os.path.join(self.dir, "link")
        os.makedirs(real)
        os.symlink(real, link)
        holder = subprocess.Popen(["sleep", "60"], cwd=link)
        try:
            r = run([AGENT, "probe", "files", "--dir", link, "--json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            snap = json.loads(r.stdout)
            self.assertEqual(snap["watchedDirs"], [real])
            cwd = [e for e in snap.get("entries", [])
                   if e["process"]["pid"] == holder.pid]
            self.assertEqual([(e["path"], e["kind"]) for e in cwd],
                             [(real, "FILE_ACCESS_CWD")])
        finally:
            holder.kill()
            holder.wait()

    # -- help ----------------------------------------------------------------

    def test_help_of_every_probe_shows_the_defaults(self):
        expected = {
            "path": ["--count", "=10", "--interval", "=1", "--max-ttl", "=30",
                     "--size", "=56", "--socket", "=auto"],
            "sockets": ["--json"],
            "files": ["--dir", "/home /root"],
            "speed": ["--port", "=5201", "--time", "=10", "--bitrate", "=0",
                      "--username", "--rsa-public-key-path"],
        }
        for probe, words in expected.items():
            with self.subTest(probe=probe):
                r = run([AGENT, "probe", probe, "--help"])
                self.assertEqual(r.returncode, 0, r.stderr)
                for w in words:
                    self.assertIn(w, r.stdout)


if __name__ == "__main__":
    nvtest.main()
