// netvigil-agent: runs the four probes on this host and streams the results
// to the collector; `netvigil-agent probe ...` runs one probe at a terminal.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "agent/agent.h"
#include "agent/host_info.h"
#include "agent/probe_commands.h"
#include "common/logging.h"
#include "common/systemd_notify.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace {

int RunAgent(const netvigil::agent::AgentOptions& options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  netvigil::agent::AgentProcess agent(options);
  absl::Status s = agent.Init();
  if (!s.ok()) {
    std::fprintf(stderr, "netvigil-agent: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  netvigil::SystemdNotifier notifier;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("agent_stopping signal={}", sig);
    notifier.Stopping();
    agent.Stop();
  });
  notifier.Ready();
  agent.Run();
  // Run() returns only after Stop(), which the waiter called.
  waiter.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "netvigil-agent: path, sockets, files and speed probes for "
      "this host"};
  app.set_version_flag("--version", netvigil::kVersion);
  // Top-level options such as --log-level may also follow the subcommand.
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  netvigil::agent::AgentOptions options;
  options.name = netvigil::agent::HostName();
  options.state_dir = "/var/lib/netvigil-agent";
  uint64_t spool_mb = 256;
  auto* run = app.add_subcommand("run",
                                 "connect to the collector and run "
                                 "the plan it sends");
  run->add_option("--collector", options.collector,
                  "the collector's agent address, host:port")
      ->required();
  run->add_option("--name", options.name, "this agent's name")
      ->capture_default_str();
  run->add_option("--state-dir", options.state_dir, "where the spool is kept")
      ->capture_default_str();
  run->add_option("--iperf-port", options.iperf_port,
                  "port of this host's iperf3 server for its peers")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  run->add_flag("!--no-iperf-server", options.iperf_server,
                "do not run an iperf3 server");
  run->add_option("--spool-max-mb", spool_mb, "spool size cap in MiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  run->add_option("--watch", options.watch_dirs,
                  "watch this folder instead of the plan's (repeatable)")
      ->check(CLI::ExistingDirectory);
  run->add_flag("--insecure", options.insecure,
                "plain text, no certificates (tests only)");

  auto* probe =
      app.add_subcommand("probe", "run one probe now and print what it finds");
  probe->require_subcommand(1);
  netvigil::agent::RegisterProbeCommands(*probe);

  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Error& e) {
    // Parse errors print usage; a probe command that failed has already
    // printed its message and only carries the exit code.
    return app.exit(e);
  }
  if (*run) {
    netvigil::InitLogging("agent", log_level);
    options.spool_max_bytes = spool_mb << 20;
    if (options.insecure) {
      spdlog::warn(
          "insecure_mode detail=\"plain text without certificates: "
          "for tests only\"");
    }
    return RunAgent(options);
  }
  return 0;
}
