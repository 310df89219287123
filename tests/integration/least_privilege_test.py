#!/usr/bin/env python3
"""Least privilege and live online state, on real parts (issues 15 and 18).

- `netvigil_ro`, the dashboard role `db init` makes, reads every history
  table and no secret one (iperf_auth: the mesh's RSA private key and HMAC
  secret; enrollment_tokens), on a private PostgreSQL as `db init` sets it
  up, and again after an upgrade: a database whose role had been granted the
  secrets (as `db init` and its default privileges did before) loses them
  when the collector applies migration 0011 at start. Any table the role can
  read that is not on the list of history tables fails the test, so a new
  table must be classified.
- The agent's state folder is 0700 and every file in it 0600: the spool
  (0644 before), its WAL and sequence file, the cached plan; a folder made
  0755 and a spool left 0644 by an older agent are tightened.
- Connected agents stay "online" right after the database returns (before,
  online came from last_seen, which no heartbeat could update while the
  database was away: agents showed "offline" until their next heartbeat).
"""

import json
import os
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402

DB = "nvlp"
SECRET_TABLES = {"iperf_auth", "enrollment_tokens"}
# Everything a dashboard may read. A table missing here makes the test fail:
# add it if it is history, or revoke it (a migration, and kSecretTables in
# collector/db_admin.cc) if it holds a secret.
HISTORY_TABLES = {
    "agents", "results", "probe_state", "socket_facts", "socket_events",
    "file_facts", "file_events", "path_runs", "speed_results", "gaps",
    "alerts", "alert_events", "analysis_state", "path_hourly", "speed_hourly",
    "certificates", "revocations", "schema_migrations",
    # Notifications (migration 0013): alert events with their delivery
    # state; channel secrets live in the config, never in the table.
    "notify_outbox",
    # Socket events packed a snapshot a row (migration 0016).
    "socket_event_sets",
    # Path routes, each once per agent (migration 0018).
    "path_routes",
    # Socket facts compact (migration 0019): socket_facts is a view of these.
    "socket_fact_rows", "socket_programs",
}


class LeastPrivilegeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir("leastpriv")
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        r = subprocess.run([nvtest.COLLECTOR, "db", "init", "--socket-dir", cls.pg.dir,
                            "--database", DB], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"db init: rc={r.returncode} {r.stdout}{r.stderr}")
        cls.port = nvtest.free_port()
        cls.socket = os.path.join(cls.dir, "q.sock")
        cls.config = os.path.join(cls.dir, "c.yaml")
        # A heartbeat every 5 s: after the database returns, the old code
        # showed agents offline until the next one.
        with open(cls.config, "w") as f:
            f.write(nvtest.collector_yaml(
                f"host={cls.pg.dir} dbname={DB} user=netvigil connect_timeout=5",
                f"127.0.0.1:{cls.port}", cls.socket, heartbeat="5s", timeout="10s",
                extra=nvtest.SOCKETS_ONLY))
        cls.collector = None
        cls.agent = None
        cls.state = os.path.join(cls.dir, "agent-state")

    @classmethod
    def tearDownClass(cls):
        for p in (cls.agent, cls.collector):
            if p is not None and p.alive():
                p.stop()
        cls.pg.stop()

    # --- helpers -----------------------------------------------------------

    def psql(self, role: str, sql: str) -> subprocess.CompletedProcess:
        argv = ["psql", "-h", self.pg.dir, "-U", role, "-d", DB, "-tAXq", "-c", sql]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def start_collector(self):
        c = nvtest.Process([nvtest.COLLECTOR, "--config", self.config, "--insecure"],
                           os.path.join(self.dir, "collector.log")).start()
        type(self).collector = c
        nvtest.wait_until(lambda: nvtest.cli(self.socket, "agents").returncode == 0, 60,
                          "the collector up with its database")
        return c

    def start_agent(self):
        a = nvtest.Process([nvtest.AGENT, "run", "--insecure", "--name", "lp1",
                            "--collector", f"127.0.0.1:{self.port}", "--state-dir", self.state,
                            "--no-iperf-server"], os.path.join(self.dir, "agent.log")).start()
        type(self).agent = a
        nvtest.wait_until(lambda: nvtest.agents_json(self.socket).get("lp1", {}).get("online"),
                          60, "the agent online")
        return a

    def readable_by_ro(self):
        # Tables, views and partitions of the public schema, by oid (a name
        # would be looked up in the search path).
        out = self.psql("postgres", "SELECT c.relname FROM pg_class c"
                                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                    " WHERE n.nspname = 'public'"
                                    " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
                                    " AND has_table_privilege('netvigil_ro', c.oid, 'SELECT')"
                                    " ORDER BY 1")
        self.assertEqual(out.returncode, 0, out.stderr)
        return set(out.stdout.split())

    def assert_ro_denied_secrets(self):
        for table in sorted(SECRET_TABLES):
            r = self.psql("netvigil_ro", f"SELECT count(*) FROM {table}")
            self.assertNotEqual(r.returncode, 0, f"netvigil_ro read {table}: {r.stdout}")
            self.assertIn(f"permission denied for table {table}", r.stderr)

    # --- tests (run in name order) -------------------------------------------

    def test_1_dashboard_role_reads_history_never_secrets(self):
        # The state folder exists before the agent, 0755 as mkdir leaves it,
        # with a spool an older agent left 0644.
        os.makedirs(self.state, mode=0o755)
        os.chmod(self.state, 0o755)
        old_spool = os.path.join(self.state, "spool.db")
        with open(old_spool, "wb"):
            pass
        os.chmod(old_spool, 0o644)
        self.start_collector()
        self.start_agent()
        # The agent's Welcome made the iperf3 secrets: there is a secret row.
        nvtest.wait_until(lambda: self.psql("postgres", "SELECT count(*) FROM iperf_auth")
                          .stdout.strip() == "1", 30, "the iperf3 secrets row")
        # A pending enrollment, as `netvigil-collector enroll` stores it.
        r = self.psql("netvigil", "INSERT INTO enrollment_tokens VALUES ('"
                      + "ab" * 32 + "', 'lp2', false, now(), now() + interval '1 hour', NULL)")
        self.assertEqual(r.returncode, 0, r.stderr)

        self.assert_ro_denied_secrets()
        for table in sorted(HISTORY_TABLES):
            r = self.psql("netvigil_ro", f"SELECT count(*) FROM {table}")
            self.assertEqual(r.returncode, 0, f"{table}: {r.stderr}")
        r = self.psql("netvigil_ro", "SELECT count(*) FROM agents WHERE name = 'lp1'")
        self.assertEqual(r.stdout.strip(), "1")
        readable = self.readable_by_ro()
        self.assertEqual(readable & SECRET_TABLES, set())
        self.assertEqual(readable - HISTORY_TABLES, set(),
                         "tables netvigil_ro can read that are not known history: add them to "
                         "HISTORY_TABLES, or revoke them if they hold a secret")
        # The role cannot write either.
        r = self.psql("netvigil_ro", "DELETE FROM alerts")
        self.assertIn("permission denied", r.stderr)

    def test_2_agent_state_is_its_users_only(self):
        nvtest.wait_until(lambda: os.path.exists(os.path.join(self.state, "plan.pb")), 30,
                          "the cached plan")
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700, "state folder")
        files = []
        for root, dirs, names in os.walk(self.state):
            for d in dirs:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode), 0o700, d)
            for n in names:
                path = os.path.join(root, n)
                files.append(os.path.relpath(path, self.state))
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600,
                                 f"{path} is {oct(stat.S_IMODE(os.stat(path).st_mode))}")
        for must in ("spool.db", "spool.db.seq", "plan.pb"):
            self.assertIn(must, files)

    def test_3_agents_stay_online_when_the_database_returns(self):
        self.assertTrue(nvtest.agents_json(self.socket)["lp1"]["online"])
        self.pg.stop()
        # Longer than the heartbeat timeout: every last_seen is stale now.
        nvtest.wait_until(lambda: nvtest.cli(self.socket, "agents").returncode == 4, 30,
                          "the CLI to say the database is down")
        time.sleep(12)
        self.assertTrue(self.agent.alive())
        self.pg.start()
        # The first answers after the database returns, well within the 5 s
        # before the agent's next heartbeat is written.
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < 5:
            r = nvtest.cli(self.socket, "agents", "--json")
            if r.returncode == 0:
                a = {x["name"]: x for x in json.loads(r.stdout).get("agents", [])}["lp1"]
                seen.append(bool(a.get("online")))
            time.sleep(0.2)
        self.assertEqual(len(seen), 5, "the database did not come back")
        self.assertEqual(seen, [True] * 5, "a connected agent shown offline after the "
                                           "database returned")

    def test_4_upgrade_takes_the_secrets_back(self):
        # A database as the old `db init` left it: the role holds the
        # secrets, and migration 0011 is not applied yet, nor any later one
        # (the collector refuses a database that skipped one), so what those
        # added is undone too (0012: analysis_state.bytes).
        self.collector.stop()
        grant = self.psql("postgres",
                          "GRANT SELECT ON iperf_auth, enrollment_tokens TO netvigil_ro; "
                          "ALTER TABLE analysis_state DROP COLUMN IF EXISTS bytes; "
                          "DELETE FROM schema_migrations WHERE name >= '0011'")
        self.assertEqual(grant.returncode, 0, grant.stderr)
        r = self.psql("netvigil_ro", "SELECT count(*) FROM iperf_auth")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "1"), "the old hole, reproduced")
        self.start_collector()  # applies the pending migration at start
        self.assertEqual(self.psql("postgres", "SELECT count(*) FROM schema_migrations "
                                               "WHERE name = '0011_least_privilege'")
                         .stdout.strip(), "1")
        self.assert_ro_denied_secrets()
        self.assertEqual(self.readable_by_ro() - HISTORY_TABLES, set())
        # And `db init` run again (an upgrade's step) grants on all tables
        # but the secrets.
        r = subprocess.run([nvtest.COLLECTOR, "db", "init", "--socket-dir", self.pg.dir,
                            "--database", DB], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_ro_denied_secrets()
        self.assertEqual(self.readable_by_ro(), HISTORY_TABLES)


if __name__ == "__main__":
    nvtest.main()
