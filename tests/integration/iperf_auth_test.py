#!/usr/bin/python3
"""iperf3 servers with credentials: a fake collector welcomes a real
netvigil-agent with iperf3 credentials (an RSA key pair, the agent's own
username and password) and a plan listing the authorized users. Then, on
loopback, against the agent's own supervised iperf3 server:
- a stock `iperf3 -c` with a listed user's credentials works;
- one without credentials, or with a wrong password, is refused ("test
  authorization failed");
- the agent's own client (a speed-test command to a known peer: itself)
  authenticates and gets an OK result;
- a plan update adding a user lets that user in without a server restart;
- the credential files are mode 0600 in the agent's state folder."""

import hashlib
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import fake_collector as fc  # noqa: E402

SPEED_OUTCOME_OK = 1


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def user(name: str, password: str):
    h = hashlib.sha256(("{%s}%s" % (name, password)).encode()).hexdigest()
    return fc.msg("IperfUser", username=name, password_sha256=h)


class IperfAuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = d = nvtest.scratch_dir("iperfauth")
        priv, cls.pub = os.path.join(d, "private.pem"), os.path.join(d, "public.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", priv], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", cls.pub],
                       check=True, capture_output=True)
        cls.iperf_port = fc.free_port()
        cls.users = [user("auth-agent", "pw-agent"), user("stock-user", "stock-pw")]
        cls.plan = fc.msg(
            "ProbePlan",
            heartbeat_interval=fc.duration(1),
            path=fc.msg("PathPlan", enabled=False),
            sockets=fc.msg("SocketsPlan", enabled=False),
            files=fc.msg("FilesPlan", enabled=False),
            speed=fc.msg("SpeedPlan", enabled=True, max_duration=fc.duration(30),
                         peers=[fc.msg("KnownPeer", name="self", addresses=["127.0.0.1"],
                                       port=cls.iperf_port)],
                         iperf_users=cls.users))
        welcome = fc.msg("Welcome", collector_version="fake", plan=cls.plan,
                         iperf_auth=fc.msg("IperfAuth", rsa_private_key_pem=read(priv),
                                           rsa_public_key_pem=read(cls.pub),
                                           username="auth-agent", password="pw-agent"))
        port = fc.free_port()
        cls.collector = fc.FakeCollector(port, welcome).start()
        cls.log = os.path.join(d, "agent.log")
        cls.state = os.path.join(d, "state")
        cls.agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", "auth-agent",
             "--collector", f"127.0.0.1:{port}", "--state-dir", cls.state,
             "--iperf-port", str(cls.iperf_port)], cls.log).start()
        assert cls.collector.connected.wait(30), "the agent never connected"
        nvtest.wait_until(lambda: "authenticated=yes" in read(cls.log), 20,
                          "the iperf3 server restarted with credentials")
        nvtest.wait_until(lambda: cls.stock(None, None).get("start"), 20,
                          "the iperf3 server answering")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        cls.collector.stop()

    @classmethod
    def stock(cls, username, password, retries=5):
        """Stock iperf3 -c against the agent's server; its JSON."""
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(cls.iperf_port), "-t", "1",
                "--json", "--connect-timeout", "3000"]
        env = dict(os.environ)
        env.pop("IPERF3_PASSWORD", None)
        if username:
            argv += ["--username", username, "--rsa-public-key-path", cls.pub]
            env["IPERF3_PASSWORD"] = password
        for _ in range(retries):
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                doc = {"error": r.stderr or "no output"}
            if "busy" not in doc.get("error", ""):
                return doc
            time.sleep(1)
        return doc

    def test_stock_client_with_credentials_works(self):
        doc = self.stock("stock-user", "stock-pw")
        self.assertNotIn("error", doc)
        self.assertGreater(doc["end"]["sum_received"]["bits_per_second"], 0)

    def test_stock_client_without_credentials_is_refused(self):
        doc = self.stock(None, None)
        self.assertIn("authorization failed", doc.get("error", ""))

    def test_stock_client_with_a_wrong_password_is_refused(self):
        doc = self.stock("stock-user", "not-the-password")
        self.assertIn("authorization failed", doc.get("error", ""))
        doc = self.stock("nobody", "stock-pw")
        self.assertIn("authorization failed", doc.get("error", ""))

    def test_the_agents_own_client_authenticates(self):
        for attempt in range(3):
            id = f"own-{attempt}"
            self.collector.command(id, speed_test=fc.msg(
                "SpeedTest", peer_agent="self", address="127.0.0.1", port=self.iperf_port,
                duration=fc.duration(1), schedule_id=id))
            st = self.collector.status(id)
            self.assertTrue(st.accepted, st.reason)
            r = self.collector.result(id).speed
            if "busy" not in r.error:
                break
        self.assertEqual(r.outcome, SPEED_OUTCOME_OK, r.error)
        self.assertGreater(r.forward.received_bps, 0)
        # The password went through the environment, not the command line.
        self.assertNotIn("pw-agent", read(self.log))

    def test_a_user_added_by_a_plan_update_gets_in_without_a_restart(self):
        starts = read(self.log).count("iperf3_server_started")
        p = fc.msg("ProbePlan")
        p.CopyFrom(self.plan)
        p.speed.iperf_users.append(user("late-user", "late-pw"))
        self.collector.send(fc.msg("CollectorMessage", plan_update=p))
        users = os.path.join(self.state, "iperf3", "users.csv")
        nvtest.wait_until(lambda: "late-user," in read(users), 10,
                          "the users file rewritten")
        doc = self.stock("late-user", "late-pw")
        self.assertNotIn("error", doc)
        self.assertEqual(read(self.log).count("iperf3_server_started"), starts)

    def test_credential_files_are_private(self):
        d = os.path.join(self.state, "iperf3")
        self.assertEqual(os.stat(d).st_mode & 0o777, 0o700)
        for name in ("rsa_private.pem", "rsa_public.pem", "users.csv"):
            self.assertEqual(os.stat(os.path.join(d, name)).st_mode & 0o777, 0o600, name)


if __name__ == "__main__":
    nvtest.main()
