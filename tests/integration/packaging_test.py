"""Debian packages, systemd units and the shipped config, for real.

Builds both .deb files with cpack in NETVIGIL_BUILD_DIR, inspects them with
dpkg-deb, installs them on this machine with dpkg -i, checks the layout, the
user and that nothing was started, sets up a database with `netvigil-collector
db init` on a private peer-authenticated PostgreSQL, checks sd_notify
readiness and watchdog pings of the installed binaries, runs
`systemd-analyze verify` and `security --offline=yes` on the installed units,
and purges the packages again (also when a test fails). Needs root.

Works whether or not systemd is PID 1: the maintainer scripts only enable the
units (symlinks in /etc/systemd/system), and verify/security read unit files.
If netvigil packages are already installed, the install tests are skipped so a
real installation is never clobbered.
"""

import glob
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get(
    "NETVIGIL_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("NETVIGIL_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "testing"))
import nvtest  # noqa: E402
from nvtest import scratch_dir  # noqa: E402

PACKAGES = ("netvigil-agent", "netvigil-collector")
UNITS = ("netvigil-agent.service", "netvigil-collector.service")
EXAMPLE = os.path.join(SOURCE_DIR, "deploy", "collector.yaml")
# The parsers of the collector's config file: its own keys and the analysis
# rules' section.
CONFIG_SOURCES = [os.path.join(SOURCE_DIR, p) for p in (
    "common/collector_config.cc", "collector/analysis/analysis_options.cc")]
PGBIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:] or [None]
PGBIN = PGBIN[0]
# systemd-analyze security ratings that are "OK" or better.
GOOD_RATINGS = ("PERFECT", "SAFE", "OK")

_debs = {}
_work = None


def run(cmd, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def installed(pkg):
    p = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], check=False)
    return p.returncode == 0 and p.stdout.strip() not in ("", "not-installed", "config-files")


def running_netvigil():
    """PIDs whose executable is one of the packaged binaries."""
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            exe = os.readlink(d + "/exe")
        except OSError:
            continue
        if exe.startswith("/usr/bin/netvigil"):
            found.append((int(d[6:]), exe))
    return found


def purge():
    run(["dpkg", "--purge"] + list(PACKAGES), check=False)


def setUpModule():
    global _work
    if os.geteuid() != 0:
        raise unittest.SkipTest("packaging tests install packages: run as root")
    _work = tempfile.mkdtemp(prefix="netvigil-pkg-")
    started = time.monotonic()
    run(["cpack", "-G", "DEB", "-B", _work, "--config",
         os.path.join(BUILD_DIR, "CPackConfig.cmake")], cwd=BUILD_DIR)
    for pkg in PACKAGES:
        found = glob.glob(os.path.join(_work, f"{pkg}_*.deb"))
        assert len(found) == 1, f"{pkg}: {found} in {os.listdir(_work)}"
        _debs[pkg] = found[0]
    print(f"cpack: {time.monotonic() - started:.1f}s, "
          + ", ".join(os.path.basename(d) for d in _debs.values()), file=sys.stderr)


def tearDownModule():
    if _work:
        shutil.rmtree(_work, ignore_errors=True)


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).stdout.strip()


def deb_contents(deb):
    """{path: (mode string, owner/group)} from dpkg-deb -c."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        out[path.lstrip(".").rstrip("/") or "/"] = (parts[0], parts[1])
    return out


def deb_control(deb, dest):
    run(["dpkg-deb", "-e", deb, dest])
    return dest


class PackageContentsTest(unittest.TestCase):
    """What is inside the two .deb files, before anything is installed."""

    def test_names_versions_and_dependencies(self):
        agent, collector = _debs["netvigil-agent"], _debs["netvigil-collector"]
        self.assertEqual(deb_field(agent, "Package"), "netvigil-agent")
        self.assertEqual(deb_field(collector, "Package"), "netvigil-collector")
        for deb in (agent, collector):
            self.assertRegex(os.path.basename(deb), r"_\d+\.\d+\.\d+-1_[a-z0-9]+\.deb$")
        agent_deps = deb_field(agent, "Depends")
        collector_deps = deb_field(collector, "Depends")
        print(f"\nnetvigil-agent Depends: {agent_deps}\n"
              f"netvigil-collector Depends: {collector_deps}", file=sys.stderr)
        self.assertIn("iperf3", agent_deps)
        self.assertNotIn("postgresql,", agent_deps + ",")
        self.assertIn("postgresql", collector_deps.split(", "))
        for deps in (agent_deps, collector_deps):
            self.assertIn("adduser", deps)
            # From dpkg-shlibdeps: the libraries the binaries link.
            self.assertRegex(deps, r"libc6 \(>= ")
            self.assertRegex(deps, r"libgrpc\+\+1")
        self.assertRegex(agent_deps, r"libsqlite3-0")
        self.assertRegex(collector_deps, r"libpqxx")

    def test_files_and_permissions(self):
        agent = deb_contents(_debs["netvigil-agent"])
        collector = deb_contents(_debs["netvigil-collector"])
        want_agent = {
            "/usr/bin/netvigil-agent": "-rwxr-xr-x",
            "/lib/systemd/system/netvigil-agent.service": "-rw-r--r--",
            "/etc/default/netvigil-agent": "-rw-r--r--",
        }
        want_collector = {
            "/usr/bin/netvigil-collector": "-rwxr-xr-x",
            "/usr/bin/netvigil": "-rwxr-xr-x",
            "/lib/systemd/system/netvigil-collector.service": "-rw-r--r--",
            "/etc/netvigil/collector.yaml": "-rw-r-----",
        }
        for contents, want in ((agent, want_agent), (collector, want_collector)):
            for path, mode in want.items():
                self.assertIn(path, contents)
                self.assertEqual(contents[path][0], mode, path)
                self.assertEqual(contents[path][1], "root/root", path)
        # Each binary in exactly one package.
        self.assertNotIn("/usr/bin/netvigil", agent)
        self.assertNotIn("/usr/bin/netvigil-collector", agent)
        self.assertNotIn("/usr/bin/netvigil-agent", collector)
        with open(EXAMPLE, "rb") as f:
            example = f.read()
        shipped = run(["dpkg-deb", "--fsys-tarfile", _debs["netvigil-collector"]],
                      text=False).stdout
        self.assertIn(example, shipped)

    def test_conffiles_and_maintainer_scripts(self):
        want_conffiles = {"netvigil-agent": ["/etc/default/netvigil-agent"],
                          "netvigil-collector": ["/etc/netvigil/collector.yaml"]}
        for pkg, deb in _debs.items():
            with tempfile.TemporaryDirectory() as d:
                deb_control(deb, d)
                with open(os.path.join(d, "conffiles")) as f:
                    self.assertEqual(f.read().split(), want_conffiles[pkg])
                for script in ("postinst", "prerm", "postrm"):
                    path = os.path.join(d, script)
                    mode = stat.S_IMODE(os.stat(path).st_mode)
                    self.assertEqual(mode, 0o755, f"{pkg} {script}")
                    run(["sh", "-n", path])  # syntax
                    with open(path) as f:
                        text = f.read()
                    self.assertNotIn("@NETVIGIL", text, "unsubstituted template")
                    if script == "postinst":
                        # Enable, never start.
                        self.assertIn("deb-systemd-helper", text)
                        self.assertNotRegex(text, r"(systemctl|deb-systemd-invoke)\s+(--\S+\s+)*start")


class ConfigCheckTest(unittest.TestCase):
    """`check-config` on the shipped example and on broken files."""

    COLLECTOR = os.path.join(BUILD_DIR, "collector", "netvigil-collector")

    def check(self, path):
        return run([self.COLLECTOR, "check-config", path], check=False)

    def test_shipped_example_passes(self):
        p = self.check(EXAMPLE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("OK", p.stdout)

    def test_example_names_every_key_the_parser_accepts(self):
        keys = set()
        for source in CONFIG_SOURCES:
            with open(source) as f:
                keys |= set(re.findall(
                    r'\.(?:String|Bool|Uint|Uint64|Double|Duration|Map|Sequence)\(\s*"(\w+)"',
                    f.read()))
        self.assertGreater(len(keys), 50)
        with open(EXAMPLE) as f:
            text = f.read()
        missing = sorted(k for k in keys
                         if not re.search(rf"^\s*(#\s*)?(-\s*)?{k}:", text, re.M))
        self.assertEqual(missing, [], "parser keys missing from deploy/collector.yaml")

    def test_broken_files_fail_with_file_and_line(self):
        cases = {
            # (text, line the error must name, words in the message)
            "unknown_key": ("probes:\n  path:\n    evry: 60s\n", 3, "evry"),
            "wrong_type": ("agents:\n  heartbeat_interval: soon\n", 2, "heartbeat_interval"),
            "out_of_range": ("probes:\n  path:\n    max_ttl: 99\n", 3, "max_ttl"),
            "analysis_range": ("analysis:\n  path_loss_percent: 500\n", 2, "path_loss_percent"),
            "bad_yaml": ("listen:\n  agents: [oops\n", None, "YAML"),
            "bad_folder": ("probes:\n  files:\n    watched_dirs:\n      - home\n", 4, "absolute"),
        }
        with tempfile.TemporaryDirectory() as d:
            for name, (text, line, word) in cases.items():
                with self.subTest(name):
                    path = os.path.join(d, name + ".yaml")
                    with open(path, "w") as f:
                        f.write(text)
                    p = self.check(path)
                    self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                    line_re = str(line) if line else r"\d+"
                    pattern = re.escape(path) + ":" + line_re + r":\d+: "
                    self.assertRegex(p.stderr, pattern)
                    self.assertIn(word, p.stderr)
            p = self.check(os.path.join(d, "absent.yaml"))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("absent.yaml", p.stderr)


class ProcCapabilitiesTest(unittest.TestCase):
    """Which capabilities an unprivileged user needs for another user's
    /proc/PID/fd and /proc/PID/exe: the agent unit grants exactly these."""

    def test_dac_read_search_lists_fds_and_sys_ptrace_reads_links(self):
        holder = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
        try:
            pid = holder.pid

            def as_nobody(caps, cmd):
                opts = ["--reuid=65534", "--regid=65534", "--clear-groups"]
                if caps:
                    c = ",".join("+" + x for x in caps)
                    opts += [f"--inh-caps={c}", f"--ambient-caps={c}"]
                return run(["setpriv"] + opts + cmd, check=False).returncode == 0

            list_fd = ["ls", f"/proc/{pid}/fd"]
            read_exe = ["readlink", f"/proc/{pid}/exe"]
            read_fd = ["readlink", f"/proc/{pid}/fd/0"]
            table = {}
            for caps in ([], ["dac_read_search"], ["sys_ptrace"],
                         ["dac_read_search", "sys_ptrace"]):
                table["+".join(caps) or "none"] = (
                    as_nobody(caps, list_fd), as_nobody(caps, read_exe),
                    as_nobody(caps, read_fd))
            print(f"\n(list fd, readlink exe, readlink fd/0) per caps: {table}",
                  file=sys.stderr)
            self.assertEqual(table["none"], (False, False, False))
            self.assertEqual(table["dac_read_search"], (True, False, False))
            # fd/N sits in the 0500 fd folder: it needs both.
            self.assertEqual(table["sys_ptrace"], (False, True, False))
            self.assertEqual(table["dac_read_search+sys_ptrace"], (True, True, True))
        finally:
            holder.kill()
            holder.wait()
        with open(os.path.join(SOURCE_DIR, "deploy", "systemd", "netvigil-agent.service")) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^CapabilityBoundingSet=CAP_NET_RAW CAP_DAC_READ_SEARCH CAP_SYS_PTRACE$")
        self.assertRegex(unit, r"(?m)^AmbientCapabilities=CAP_NET_RAW CAP_DAC_READ_SEARCH CAP_SYS_PTRACE$")

    def test_units_state_their_descriptor_limit(self):
        # systemd's default soft limit (1,024) is not a choice; both units
        # state theirs (the collector's connection caps follow from it).
        for unit, at_least in (("netvigil-collector.service", 16384),
                               ("netvigil-agent.service", 1024)):
            with open(os.path.join(SOURCE_DIR, "deploy", "systemd", unit)) as f:
                m = re.search(r"(?m)^LimitNOFILE=(\d+)$", f.read())
            self.assertIsNotNone(m, unit)
            self.assertGreaterEqual(int(m.group(1)), at_least, unit)


class NotifyListener:
    """A NOTIFY_SOCKET for a service started by the test."""

    def __init__(self, dir, name):
        self.path = os.path.join(dir, name + ".notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.messages = []

    def count(self, text):
        return sum(text in m for m in self.messages)

    def wait_for(self, text, timeout, times=1):
        deadline = time.monotonic() + timeout
        while self.count(text) < times and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.count(text) >= times

    def close(self):
        self.sock.close()


class InstallTest(unittest.TestCase):
    """dpkg -i on this machine, everything the packages set up, dpkg --purge."""

    @classmethod
    def setUpClass(cls):
        already = [p for p in PACKAGES if installed(p)]
        if already:
            raise unittest.SkipTest(f"{already} installed already: not touching a real installation")
        cls.pg_dir = None
        cls.pg_started = False
        run(["dpkg", "-i"] + [_debs[p] for p in PACKAGES])

    @classmethod
    def tearDownClass(cls):
        if cls.pg_started:
            run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D",
                 cls.pg_dir + "/pg/data", "-m", "immediate", "-w", "stop"], check=False)
        if cls.pg_dir:
            shutil.rmtree(cls.pg_dir, ignore_errors=True)
        purge()

    def test_1_layout_user_enabled_not_started(self):
        user = pwd.getpwnam("netvigil")
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "netvigil")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertLess(user.pw_uid, 1000, "a system user")
        want = {
            "/etc/netvigil": ("root", "netvigil", 0o750),
            "/etc/netvigil/collector.yaml": ("root", "netvigil", 0o640),
            "/etc/default/netvigil-agent": ("root", "root", 0o644),
            "/var/lib/netvigil": ("netvigil", "netvigil", 0o750),
            "/var/lib/netvigil-agent": ("netvigil", "netvigil", 0o700),
            "/var/log/netvigil": ("netvigil", "netvigil", 0o750),
            "/usr/bin/netvigil-agent": ("root", "root", 0o755),
            "/usr/bin/netvigil-collector": ("root", "root", 0o755),
            "/usr/bin/netvigil": ("root", "root", 0o755),
        }
        for path, (owner, group, mode) in want.items():
            st = os.stat(path)
            self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                              stat.S_IMODE(st.st_mode)), (owner, group, mode), path)
        for unit in UNITS:
            link = f"/etc/systemd/system/multi-user.target.wants/{unit}"
            self.assertTrue(os.path.islink(link), f"{unit} not enabled")
            self.assertTrue(os.path.samefile(link, f"/lib/systemd/system/{unit}"), link)
        self.assertEqual(running_netvigil(), [], "installing must not start services")
        for pkg, conffile in (("netvigil-agent", "/etc/default/netvigil-agent"),
                              ("netvigil-collector", "/etc/netvigil/collector.yaml")):
            self.assertIn(conffile, run(["dpkg-query", "-W", "-f=${Conffiles}", pkg]).stdout)
        # The installed config passes, read as the service's user would.
        p = run(["setpriv", "--reuid=netvigil", "--regid=netvigil", "--init-groups",
                 "/usr/bin/netvigil-collector", "check-config", "/etc/netvigil/collector.yaml"],
                check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--collector", run(["/usr/bin/netvigil-agent", "run", "--help"]).stdout)
        self.assertIn("init", run(["/usr/bin/netvigil-collector", "db", "--help"]).stdout)

    def test_2_units_verify_and_security(self):
        for unit in UNITS:
            path = f"/lib/systemd/system/{unit}"
            p = run(["systemd-analyze", "verify", path], check=False)
            # Lines about other units on this machine are not ours to judge.
            ours = [l for l in (p.stdout + p.stderr).splitlines() if "netvigil" in l]
            self.assertEqual((p.returncode, ours), (0, []), p.stdout + p.stderr)
            p = run(["systemd-analyze", "security", "--offline=yes", path])
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", p.stdout)
            self.assertIsNotNone(m, p.stdout)
            print(f"\nsystemd-analyze security {unit}: {m.group(1)} {m.group(2)}",
                  file=sys.stderr)
            self.assertIn(m.group(2), GOOD_RATINGS)

    def test_3_db_init_and_notify(self):
        cls = type(self)
        cls.pg_dir = top = scratch_dir("pkg")
        d = top + "/pg"     # the server's, owned by postgres
        r = top + "/run"    # the collector's, owned by netvigil
        for path, user in ((d, "postgres"), (r, "netvigil")):
            os.mkdir(path, 0o755)
            shutil.chown(path, user, user if user == "netvigil" else None)
        data = d + "/data"
        # Peer authentication only, on a UNIX socket only: as on a home server.
        run(["runuser", "-u", "postgres", "--", f"{PGBIN}/initdb", "-D", data, "-U", "postgres",
             "--auth-local=peer", "--auth-host=reject", "-E", "UTF8", "--no-sync"])
        run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", data, "-l",
             d + "/pg.log", "-w", "-t", "60", "-o",
             f"-c listen_addresses='' -c unix_socket_directories='{d}'", "start"])
        cls.pg_started = True

        def psql(user, sql, db="netvigil"):
            return run(["runuser", "-u", user, "--", f"{PGBIN}/psql", "-h", d, "-U", user,
                        "-d", db, "-tAc", sql], check=False)

        for attempt in range(2):  # idempotent
            p = run(["/usr/bin/netvigil-collector", "db", "init", "--socket-dir", d], check=False)
            self.assertEqual(p.returncode, 0, f"run {attempt}: {p.stdout}{p.stderr}")
        # The collector's own user reaches its database by peer authentication
        # and owns every table.
        tables = psql("netvigil", "SELECT tablename, tableowner FROM pg_tables "
                                  "WHERE schemaname = 'public'")
        self.assertEqual(tables.returncode, 0, tables.stderr)
        rows = [l.split("|") for l in tables.stdout.split()]
        self.assertIn("schema_migrations", [r[0] for r in rows])
        self.assertGreater(len(rows), 3)
        self.assertEqual({r[1] for r in rows}, {"netvigil"})
        migrations = psql("netvigil", "SELECT count(*) FROM schema_migrations").stdout.strip()
        self.assertEqual(int(migrations),
                         len(glob.glob(os.path.join(SOURCE_DIR, "collector/store/migrations/*.sql"))))
        # Read-only role: SELECT on present and future tables, nothing else.
        self.assertEqual(psql("netvigil", "CREATE TABLE later_table (x int)").returncode, 0)
        for table in ("schema_migrations", "later_table"):
            got = psql("postgres",
                       f"SELECT has_table_privilege('netvigil_ro', '{table}', 'SELECT'), "
                       f"has_table_privilege('netvigil_ro', '{table}', 'INSERT')").stdout.strip()
            self.assertEqual(got, "t|f", table)
        got = psql("postgres", "SELECT has_database_privilege('netvigil_ro', 'netvigil', 'CONNECT'), "
                               "has_database_privilege('public', 'netvigil', 'CONNECT'), "
                               "(SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                               " WHERE rolname = 'netvigil')", db="postgres").stdout.strip()
        self.assertEqual(got, "t|f|f")

        # Readiness, watchdog and stop notices from the installed binaries,
        # run as the services' user: the collector against that database,
        # then an agent against the collector.
        agent_port = free_port()
        config = os.path.join(r, "collector.yaml")
        with open(config, "w") as f:
            f.write(f'database:\n  dsn: "host={d} dbname=netvigil"\n'
                    f'listen:\n  agents: "127.0.0.1:{agent_port}"\n'
                    f'  query_socket: "{r}/query.sock"\n'
                    f'state_dir: "{r}"\n')
        os.chmod(config, 0o644)
        as_netvigil = ["setpriv", "--reuid=netvigil", "--regid=netvigil", "--init-groups"]
        commands = {
            "collector": ["/usr/bin/netvigil-collector", "--config", config, "--insecure"],
            "agent": ["/usr/bin/netvigil-agent", "run", "--collector",
                      f"127.0.0.1:{agent_port}", "--state-dir", r + "/agent",
                      "--no-iperf-server", "--insecure"],
        }
        procs, listeners = {}, {}
        try:
            for name, cmd in commands.items():  # collector first
                listeners[name] = listener = NotifyListener(r, name)
                env = dict(os.environ, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="400000")
                procs[name] = subprocess.Popen(as_netvigil + cmd, env=env,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, text=True)
                self.assertTrue(listener.wait_for("READY=1", 30), (name, listener.messages))
                start = time.monotonic()
                # At half of WATCHDOG_USEC (0.2 s): three pings well within 2 s.
                self.assertTrue(listener.wait_for("WATCHDOG=1", 2.0, times=3),
                                (name, listener.messages))
                self.assertLess(time.monotonic() - start, 2.0)
            for name in reversed(list(commands)):  # agent first
                procs[name].send_signal(signal.SIGTERM)
                _, err = procs[name].communicate(timeout=30)
                self.assertEqual(procs[name].returncode, 0, (name, err))
                self.assertTrue(listeners[name].wait_for("STOPPING=1", 5),
                                (name, listeners[name].messages))
                print(f"\n{name} notify: {listeners[name].messages[:3]}... "
                      f"{len(listeners[name].messages)} messages", file=sys.stderr)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
            for listener in listeners.values():
                listener.close()

    def test_4_purge_removes_everything(self):
        purge()
        for pkg in PACKAGES:
            self.assertFalse(installed(pkg), pkg)
        self.assertEqual(running_netvigil(), [])
        for path in ("/usr/bin/netvigil-agent", "/usr/bin/netvigil-collector", "/usr/bin/netvigil",
                     "/lib/systemd/system/netvigil-agent.service",
                     "/lib/systemd/system/netvigil-collector.service",
                     "/etc/default/netvigil-agent", "/etc/netvigil", "/var/lib/netvigil",
                     "/var/lib/netvigil-agent", "/var/log/netvigil",
                     "/etc/systemd/system/multi-user.target.wants/netvigil-agent.service",
                     "/etc/systemd/system/multi-user.target.wants/netvigil-collector.service"):
            self.assertFalse(os.path.lexists(path), f"{path} left after purge")
        p = run(["dpkg-query", "-W", "netvigil-agent", "netvigil-collector"], check=False)
        self.assertNotIn("config-files", p.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    nvtest.main()
