#!/usr/bin/python3
"""The agent's narrow command surface against a fake collector: a real
netvigil-agent (--insecure) is welcomed by a Python gRPC server that then
sends what a rogue or buggy collector might: a speed test to an unknown
address or peer, an absurd duration, a bitrate over the cap, an external
target the plan does not list, an empty command, a command type this agent
does not know, probe-now of a disabled kind, an id made to forge a log line.
Each is refused with a CommandStatus naming the reason, logged (one line,
command_refused id=..., network text escaped by LogValue) and counted
(Heartbeat.refused_commands); the agent stays up and still runs a valid
probe-now."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import nvtest  # noqa: E402
import fake_collector as fc  # noqa: E402

SOCKETS, FILES, SPEED = 2, 3, 4


def plan():
    return fc.msg(
        "ProbePlan",
        heartbeat_interval=fc.M["google.protobuf.Duration"](nanos=300_000_000),
        path=fc.msg("PathPlan", enabled=False),
        sockets=fc.msg("SocketsPlan", enabled=True, every=fc.duration(3600)),
        files=fc.msg("FilesPlan", enabled=False),
        speed=fc.msg(
            "SpeedPlan", enabled=True, max_duration=fc.duration(30),
            max_bitrate_bps=1_000_000_000,
            external_targets=[fc.msg("ExternalSpeedTarget", name="isp",
                                     address="127.0.0.3", port=5201)],
            peers=[fc.msg("KnownPeer", name="nas", addresses=["127.0.0.2"], port=5201)]))


def speed(**kw):
    base = dict(port=5201, duration=fc.duration(5), bitrate_bps=100_000_000)
    base.update(kw)
    return fc.msg("SpeedTest", **base)


# id -> (command fields, what the refusal's reason must say)
REFUSED = {
    "unknown-address": (dict(speed_test=speed(peer_agent="nas", address="203.0.113.9")),
                        "address 203.0.113.9 is not known for peer 'nas'"),
    "unknown-peer": (dict(speed_test=speed(peer_agent="ghost", address="127.0.0.2")),
                     "'ghost' is not a known peer"),
    "absurd-duration": (dict(speed_test=speed(peer_agent="nas", address="127.0.0.2",
                                              duration=fc.duration(86400))),
                        "duration 24h"),
    "over-bitrate": (dict(speed_test=speed(peer_agent="nas", address="127.0.0.2",
                                           bitrate_bps=10_000_000_000)),
                     "above the plan's cap"),
    "unlisted-external": (dict(speed_test=speed(external_target="evil",
                                                address="198.51.100.1")),
                          "external target 'evil'"),
    "empty": (dict(), "unknown command"),
    "disabled-kind": (dict(probe_now=fc.msg("ProbeNow", kind=FILES)),
                      "files probe disabled"),
    "probe-now-speed": (dict(probe_now=fc.msg("ProbeNow", kind=SPEED)),
                        "only a speed-test command"),
    # An id that tries to forge a log line.
    "forged\nx command_accepted id=forged": (
        dict(speed_test=speed(peer_agent="nas\"", address="127.0.0.2")),
        "is not a known peer"),
}


class AgentCommandsTest(unittest.TestCase):

    def test_refusals_are_answered_logged_counted_and_the_agent_goes_on(self):
        d = nvtest.scratch_dir("agentcmds")
        port = fc.free_port()
        collector = fc.FakeCollector(port, fc.msg("Welcome", collector_version="fake",
                                                  plan=plan())).start()
        log = os.path.join(d, "agent.log")
        agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", "cmd-agent",
             "--collector", f"127.0.0.1:{port}", "--state-dir", os.path.join(d, "state"),
             "--no-iperf-server"], log).start()
        try:
            self.assertTrue(collector.connected.wait(30), "the agent never connected")
            for id, (fields, _) in REFUSED.items():
                collector.command(id, **fields)
            # A command type this build does not know: Command{id, field 15}.
            unknown = fc.msg("Command", id="unknown-type").SerializeToString() + b"\x7a\x02hi"
            collector.send(fc.raw_command(unknown))
            expected = dict({id: why for id, (_, why) in REFUSED.items()},
                            **{"unknown-type": "unknown command"})

            for id, why in expected.items():
                st = collector.status(id)
                self.assertFalse(st.accepted, id)
                self.assertIn(why, st.reason, id)

            hb = nvtest.wait_until(
                lambda: (collector.last_heartbeat() or fc.msg("Heartbeat")).refused_commands
                == len(expected) and collector.last_heartbeat(), 30,
                "a heartbeat counting every refusal")
            self.assertEqual(hb.refused_commands, len(expected))

            with open(log) as f:
                text = f.read()
            for id in expected:
                # common/escape.h's LogValue: quoted, \n, \" when needed.
                logged = ('"%s"' % id.replace("\n", "\\n") if "\n" in id else id)
                self.assertRegex(text, r"command_refused id=%s .*reason=" % re.escape(logged))
            self.assertNotIn("\nx command_accepted", text)
            self.assertIn('reason="\'nas\\"\' is not a known peer"', text)

            # Still up, still doing what it may.
            self.assertTrue(agent.alive())
            collector.command("valid", probe_now=fc.msg("ProbeNow", kind=SOCKETS))
            st = collector.status("valid")
            self.assertTrue(st.accepted, st.reason)
            r = collector.result("valid")
            self.assertTrue(r.HasField("sockets"))
            self.assertTrue(agent.alive())
        finally:
            agent.stop()
            collector.stop()


class RealCollectorRefusalTest(unittest.TestCase):

    def test_a_refusal_reaches_the_cli_and_the_collectors_log(self):
        """The real collector's Query ProbeNow of a kind the plan disables:
        the agent refuses, the CLI says why, and the collector logs the
        agent's count of refusals from its heartbeat."""
        d = nvtest.scratch_dir("agentcmds-real")
        pg = nvtest.Postgres(os.path.join(d, "pg"))
        pg.start()
        port = fc.free_port()
        sock = os.path.join(d, "q.sock")
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write(nvtest.collector_yaml(pg.dsn, f"127.0.0.1:{port}", sock, extra="""probes:
  path:
    enabled: false
  sockets:
    every: 1h
  files:
    enabled: false
  speed:
    enabled: false
"""))
        collector = nvtest.Process([nvtest.COLLECTOR, "--config", cfg, "--insecure"],
                                   os.path.join(d, "collector.log")).start()
        agent = nvtest.Process(
            [nvtest.AGENT, "run", "--insecure", "--name", "real-cmd-agent",
             "--collector", f"127.0.0.1:{port}", "--state-dir", os.path.join(d, "state"),
             "--no-iperf-server"], os.path.join(d, "agent.log")).start()
        try:
            nvtest.wait_until(
                lambda: nvtest.agents_json(sock).get("real-cmd-agent", {}).get("online"),
                60, "the agent online")  # generous: CI machines run loaded
            r = nvtest.cli(sock, "probe", "real-cmd-agent", "files", "--deadline", "20")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("files probe disabled", r.stdout + r.stderr)

            def logged():
                with open(os.path.join(d, "collector.log")) as f:
                    return "agent_refused_commands name=real-cmd-agent total=1" in f.read()
            nvtest.wait_until(logged, 30, "the collector logging the agent's refusal")
            self.assertTrue(agent.alive())
        finally:
            agent.stop()
            collector.stop()
            pg.stop()


if __name__ == "__main__":
    nvtest.main()
