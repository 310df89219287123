// netvigil-agent: runs the four probes on this host and streams the results
// to the collector; `netvigil-agent probe ...` runs one probe at a terminal.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/agent.h"
#include "agent/enroll.h"
#include "agent/host_info.h"
#include "agent/probe_commands.h"
#include "agent/sys/descriptors.h"
#include "common/logging.h"
#include "common/pki.h"
#include "common/process_setup.h"
#include "common/systemd_notify.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace {

// The one place a probe command's outcome (agent/probe_commands.h) becomes
// an exit status: each line of its message on stderr, 2 for a usage error,
// 1 for any other failure.
int ProbeExit(const absl::Status& outcome) {
  if (outcome.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(outcome.message(), '\n')) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  }
  return outcome.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int RunAgent(const netvigil::agent::AgentOptions& options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The probes open a descriptor per process they read, beside gRPC's and
  // the spool's: take the whole hard limit (systemd's default soft limit is
  // 1,024) and say what it is, so that "out of file descriptors" in a
  // probe_failed line can be read against it.
  const netvigil::agent::DescriptorLimit fds =
      netvigil::agent::RaiseDescriptorLimit();
  spdlog::info("descriptor_limit soft_before={} soft_now={} hard={}",
               fds.soft_before, fds.soft_now, fds.hard);
  // Below this, gRPC aborts the process when it cannot make its eventfd
  // (12 did, 16 ran with 15 in use): refuse clearly instead.
  constexpr uint64_t kMinDescriptors = 32;
  if (fds.soft_now < kMinDescriptors) {
    std::fprintf(stderr,
                 "netvigil-agent: the descriptor limit (RLIMIT_NOFILE) is %llu;"
                 " the agent needs at least %llu: raise it (LimitNOFILE= in"
                 " the unit, ulimit -n)\n",
                 static_cast<unsigned long long>(fds.soft_now),
                 static_cast<unsigned long long>(kMinDescriptors));
    return 1;
  }

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
  netvigil::SetUpProcess();
  CLI::App app{
      "netvigil-agent: path, sockets, files and speed probes for "
      "this host"};
  app.set_version_flag("--version", netvigil::kVersion);
  // Top-level options such as --log-level may also follow the subcommand.
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember(
          {"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  // Logs go to stderr at the level asked for before any subcommand runs, so
  // that a probe's --json output on stdout is only JSON (spdlog's default
  // logger writes to stdout).
  app.parse_complete_callback(
      [&log_level] { netvigil::InitLogging("agent", log_level); });

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

  netvigil::agent::EnrollOptions enroll_options;
  enroll_options.state_dir = options.state_dir;
  enroll_options.name = options.name;
  auto* enroll = app.add_subcommand(
      "enroll",
      "get this agent's certificate with a token from `netvigil-collector "
      "enroll NAME`");
  enroll
      ->add_option("--collector", enroll_options.collector,
                   "the collector's enrollment address, host:port")
      ->required();
  enroll->add_option("--token", enroll_options.token, "the single-use token")
      ->required();
  enroll
      ->add_option("--ca-fingerprint", enroll_options.ca_fingerprint,
                   "the collector CA's SHA-256 fingerprint")
      ->required();
  enroll
      ->add_option("--name", enroll_options.name,
                   "this agent's name (as the token was made for)")
      ->capture_default_str();
  enroll
      ->add_option("--state-dir", enroll_options.state_dir,
                   "where the key and certificates are kept")
      ->capture_default_str();

  auto* probe =
      app.add_subcommand("probe", "run one probe now and print what it finds");
  probe->require_subcommand(1);
  absl::Status probe_outcome;
  netvigil::agent::RegisterProbeCommands(*probe, &probe_outcome);

  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Error& e) {
    // Parse errors print usage.
    return app.exit(e);
  }
  if (*probe) return ProbeExit(probe_outcome);
  if (*enroll) {
    absl::Status s = netvigil::agent::Enroll(enroll_options);
    if (!s.ok()) {
      std::fprintf(stderr, "netvigil-agent: enroll: %s (%s)\n",
                   std::string(s.message()).c_str(),
                   absl::StatusCodeToString(s.code()).c_str());
      return 1;
    }
    std::printf("enrolled as '%s'; key and certificates in %s\n",
                enroll_options.name.c_str(), enroll_options.state_dir.c_str());
    return 0;
  }
  if (*run) {
    options.spool_max_bytes = spool_mb << 20;
    if (options.insecure) {
      spdlog::warn(
          "insecure_mode detail=\"plain text without certificates: "
          "for tests only\"");
    } else {
      // The name is the one in the certificate; --name may only repeat it.
      auto tls = netvigil::LoadClientTls(options.state_dir);
      if (!tls.ok()) {
        std::fprintf(stderr,
                     "netvigil-agent: %s (enrol first with `netvigil-agent "
                     "enroll`, or run with --insecure for tests)\n",
                     std::string(tls.status().message()).c_str());
        return 1;
      }
      auto cert = netvigil::pki::ParseCert(tls->cert_pem);
      if (!cert.ok()) {
        std::fprintf(stderr, "netvigil-agent: %s/client.crt: %s\n",
                     options.state_dir.c_str(),
                     std::string(cert.status().message()).c_str());
        return 1;
      }
      if (run->count("--name") > 0 && options.name != cert->common_name) {
        std::fprintf(stderr,
                     "netvigil-agent: --name %s, but the certificate is for "
                     "'%s'\n",
                     options.name.c_str(), cert->common_name.c_str());
        return 1;
      }
      options.name = cert->common_name;
      options.tls = std::move(*tls);
    }
    return RunAgent(options);
  }
  return 0;
}
