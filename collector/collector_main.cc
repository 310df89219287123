// netvigil-collector: receives agents' results, keeps the history in
// PostgreSQL and answers queries.
#include <malloc.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <iostream>

#include "CLI/CLI.hpp"
#include "collector/admin/db_admin.h"
#include "collector/admin/pki_admin.h"
#include "collector/analysis/analysis_options.h"
#include "collector/collector.h"
#include "collector/network_host.h"
#include "collector/notify/notify_command.h"
#include "collector/pg_parts.h"
#include "common/collector_config.h"
#include "common/logging.h"
#include "common/process_setup.h"
#include "common/systemd_notify.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace {

// The whole configuration: the collector's own keys and the analysis
// rules' thresholds, each error naming file, line and field.
absl::Status LoadAll(const std::string& path, netvigil::CollectorConfig* config,
                     netvigil::collector::AnalysisOptions* analysis) {
  auto c = netvigil::LoadCollectorConfig(path);
  if (!c.ok()) return c.status();
  *config = std::move(*c);
  // With the combinations of analysis options and plan that cannot work.
  return netvigil::collector::ParseAnalysisOptionsFor(*config, analysis);
}

int Run(const std::string& config_path, bool insecure) {
  netvigil::CollectorConfig config;
  netvigil::collector::AnalysisOptions analysis;
  if (absl::Status s = LoadAll(config_path, &config, &analysis); !s.ok()) {
    std::fprintf(stderr, "netvigil-collector: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  // Block the stop signals before any thread starts so that only sigwait
  // below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Every connection is a descriptor: take the whole hard limit (systemd's
  // default soft limit is 1,024), and size the listeners' caps from it.
  const netvigil::collector::DescriptorBudget descriptors =
      netvigil::collector::RaiseDescriptorLimit();
  spdlog::info("descriptor_limit soft_before={} soft_now={} for_connections={}",
               descriptors.soft_before, descriptors.limit,
               descriptors.for_connections);
  if (descriptors.limit < netvigil::collector::kMinDescriptorLimit) {
    std::fprintf(
        stderr,
        "netvigil-collector: the descriptor limit (RLIMIT_NOFILE) is %llu;"
        " the collector needs at least %llu: raise it (LimitNOFILE= in the"
        " unit, ulimit -n)\n",
        static_cast<unsigned long long>(descriptors.limit),
        static_cast<unsigned long long>(
            netvigil::collector::kMinDescriptorLimit));
    return 1;
  }
  // The production wiring, in this one place: PostgreSQL behind the store
  // seams, the real clock, and the configured listeners.
  netvigil::collector::PgParts pg(config.database_dsn, analysis,
                                  config.database_read_dsn);
  netvigil::collector::Collector collector(
      config, analysis, insecure,
      pg.Parts(netvigil::RealClock(),
               std::make_unique<netvigil::collector::NetworkHost>(
                   config, insecure, descriptors)));
  absl::Status s = collector.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "netvigil-collector: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  netvigil::SystemdNotifier notifier;
  notifier.Ready();
  int sig = 0;
  // SIGHUP reopens the alert log (logrotate's postrotate); the others stop.
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    collector.ReopenLogs();
  }
  spdlog::info("collector_stopping signal={}", sig);
  notifier.Stopping();
  collector.Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Agents' messages are parsed, stored and freed on many gRPC threads.
  // With glibc's defaults (8 arenas a core, a mmap threshold that grows to
  // 32 MiB) the freed memory of a few maximum-size messages stayed in the
  // process: 641 MiB RSS against 428 MiB with these, same test
  // (tests/integration/hardening_memory_test.py). Blocks of 1 MiB and more
  // go straight back to the kernel; the collector also trims every 5 s.
  netvigil::SetUpProcess();
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  CLI::App app{
      "netvigil-collector: keeps the home network's history and "
      "compares it"};
  app.set_version_flag("--version", netvigil::kVersion);
  std::string config_path = "/etc/netvigil/collector.yaml";
  std::string log_level = "info";
  bool insecure = false;
  app.add_option("-c,--config", config_path, "configuration file")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_flag("--insecure", insecure,
               "plain text, no client certificates (tests only)");

  auto* check = app.add_subcommand(
      "check-config", "validate a configuration file without starting");
  std::string check_path;
  check->add_option("file", check_path, "the file (default: --config)");

  netvigil::collector::RegisterDbCommands(app);
  netvigil::collector::RegisterPkiCommands(app, &config_path);
  netvigil::collector::web::RegisterWebCommands(app, &config_path);
  netvigil::collector::RegisterNotifyCommands(app, &config_path);

  CLI11_PARSE(app, argc, argv);
  netvigil::InitLogging("collector", log_level);

  if (*check) {
    const std::string path = check_path.empty() ? config_path : check_path;
    netvigil::CollectorConfig config;
    netvigil::collector::AnalysisOptions analysis;
    if (absl::Status s = LoadAll(path, &config, &analysis); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 2;
    }
    std::printf("%s: OK (%d path targets, %d watched folders)\n", path.c_str(),
                config.plan.path().targets_size(),
                config.plan.files().watched_dirs_size());
    return 0;
  }
  return Run(config_path, insecure);
}
