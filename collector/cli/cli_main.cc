// netvigil: asks the collector what it knows about the home network.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/cli/commands.h"
#include "collector/cli/query_client.h"
#include "common/process_setup.h"
#include "common/utf8.h"
#include "common/version.h"
#include "common/wire_kinds.h"

namespace {

// Exit codes of the `netvigil` command (README's table says the same).
enum ExitCode {
  kExitOk = 0,
  kExitFailure = 1,      // the request failed for another reason
  kExitUsage = 2,        // bad flags or arguments, an unknown command or kind
  kExitUnreachable = 3,  // no collector at the socket or address
  // The collector answered but cannot serve: its database is down, or the
  // agent asked to probe is not connected or did not answer in time.
  kExitUnavailable = 4,
  kExitNotFound = 5,  // an unknown host, target, server or alert id
  // Refused as asked: by the collector (a bad time range) or by the agent
  // (a target not in its plan, a probe its plan disables).
  kExitInvalid = 6,
};

// The one place a command's Status becomes an exit code
// (collector/cli/query_client.h's table), its message a line on stderr per
// line it holds, each "netvigil: ...".
int Exit(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  for (absl::string_view line : absl::StrSplit(status.message(), '\n')) {
    std::fprintf(stderr, "netvigil: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
      return kExitUnreachable;
    case absl::StatusCode::kFailedPrecondition:
      return kExitUnavailable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kOutOfRange:
      return kExitInvalid;
    default:
      return kExitFailure;
  }
}

// The commands, for the "unknown command" message: CLI11 itself says only
// "A subcommand is required" for a word it does not know.
const std::vector<std::string> kCommands = {"agents",  "overview", "path",
                                            "sockets", "files",    "speed",
                                            "probe",   "alerts",   "ack"};

// The first word of argv that is not an option or an option's value, or ""
// if there is none. Global options that take a value are skipped with it.
std::string FirstWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") return i + 1 < argc ? argv[i + 1] : "";
    if (a.rfind("-", 0) == 0) {
      const bool takes_value = a == "--socket" || a == "--timeout" ||
                               a == "--collector" || a == "--tls-dir";
      if (takes_value) {
        ++i;
      } else if (a.find('=') == std::string::npos && a != "--json" &&
                 a != "--help" && a != "-h" && a != "--version") {
        // An option we do not know (`--config FILE`): its value would be
        // taken for the command; let CLI11 name the option instead.
        return "";
      }
      continue;
    }
    return a;
  }
  return "";
}

// An alert ID as typed: digits only, 1 up to the largest int64.
bool ParseAlertId(const std::string& text, int64_t* id) {
  if (text.empty() || text.size() > 19) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, id) && *id > 0;
}

// CLI::Range, but NaN is refused too: it passes Range's two comparisons
// and then aborts protobuf's Duration conversion.
CLI::Validator Seconds(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        double v = 0;
        if (!absl::SimpleAtod(text, &v) || !std::isfinite(v) || v < lo ||
            v > hi) {
          return "wants seconds from " + absl::StrCat(lo) + " to " +
                 absl::StrCat(hi) + ", got '" + text + "'";
        }
        return "";
      },
      "SECONDS in [" + absl::StrCat(lo) + ", " + absl::StrCat(hi) + "]");
}

}  // namespace

int main(int argc, char** argv) {
  netvigil::SetUpProcess();
  using namespace netvigil::cli;
  CLI::App app{
      "netvigil: what changed on the home network, where, and since "
      "when"};
  app.set_version_flag("--version", netvigil::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions options;
  options.socket = DefaultSocket();
  double timeout_s = 10;
  bool json = false;
  app.add_option("--socket", options.socket,
                 "the collector's Query socket ($NETVIGIL_QUERY_SOCKET)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds to wait for an answer")
      ->check(Seconds(0.1, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", json, "print the proto3 JSON mapping");
  std::string tls_dir;
  app.add_option("--collector", options.collector,
                 "the Query service over TCP, host:port (TLS with an admin "
                 "certificate; needs --tls-dir)");
  app.add_option("--tls-dir", tls_dir,
                 "folder from `netvigil-collector pki admin`: client.crt, "
                 "client.key, ca.crt, server_name");
  app.parse_complete_callback([&] {
    if (options.collector.empty()) return;
    if (tls_dir.empty()) {
      throw CLI::ValidationError("--collector",
                                 "the Query service over TCP needs --tls-dir");
    }
    auto tls = netvigil::LoadClientTls(tls_dir);
    if (!tls.ok()) {
      throw CLI::ValidationError("--tls-dir",
                                 std::string(tls.status().message()));
    }
    options.tls = std::make_shared<const netvigil::ClientTls>(*tls);
  });

  absl::Status result;
  auto* agents = app.add_subcommand("agents", "list agents, online or not");
  agents->add_flag("--json", json, "print the proto3 JSON mapping");
  agents->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunAgents(options, json);
  });

  auto* overview = app.add_subcommand(
      "overview",
      "every host, its latest path results, the speed matrix, "
      "open alerts");
  overview->add_flag("--json", json, "print the proto3 JSON mapping");
  overview->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunOverview(options, json);
  });

  std::string host, target, since, server, kind;
  auto* path = app.add_subcommand(
      "path", "mtr-style per-hop report of HOST's latest run to TARGET");
  path->add_option("host", host, "agent name")->required();
  path->add_option("target", target, "path target name")->required();
  path->add_option("--since", since,
                   "also list the runs of this long back (30m, 6h, 7d); "
                   "default: only the latest run");
  std::string resolution = "auto";
  const char* resolution_help =
      "auto: raw runs where kept (retention.raw_days), hourly aggregates "
      "before; hourly: aggregates only; raw: raw only (refused before "
      "raw_days)";
  path->add_option("--resolution", resolution, resolution_help)
      ->check(CLI::IsMember({"auto", "raw", "hourly"}))
      ->default_str("auto");
  path->add_flag("--json", json, "print the proto3 JSON mapping");
  path->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunPath(options, json, host, target, since, resolution);
  });

  bool changes = false;
  auto* sockets = app.add_subcommand(
      "sockets", "HOST's listeners and connections, keyed as history");
  sockets->add_option("host", host, "agent name")->required();
  sockets->add_flag("--changes", changes, "what appeared and went instead");
  sockets
      ->add_option("--since", since,
                   "with --changes: how far back (30m, 6h, 7d, 2w)")
      ->default_str("24h");
  sockets->add_flag("--json", json, "print the proto3 JSON mapping");
  sockets->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunSockets(options, json, host, changes, since);
  });

  auto* files = app.add_subcommand(
      "files", "processes holding files in HOST's watched folders");
  files->add_option("host", host, "agent name")->required();
  files
      ->add_option("--since", since,
                   "also what was seen this far back (30m, 6h, 7d, 2w)")
      ->default_str("24h");
  files->add_flag("--json", json, "print the proto3 JSON mapping");
  files->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunFiles(options, json, host, since);
  });

  auto* speed = app.add_subcommand("speed", "speed tests between hosts");
  speed->require_subcommand(1);
  auto* matrix = speed->add_subcommand("matrix", "latest result of every pair");
  matrix->add_flag("--json", json, "print the proto3 JSON mapping");
  matrix->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunSpeedMatrix(options, json);
  });
  auto* history = speed->add_subcommand(
      "history", "results of CLIENT to SERVER (a peer or external target)");
  history->add_option("client", host, "agent that ran the client")->required();
  history->add_option("server", server, "peer agent or external target")
      ->required();
  history->add_option("--since", since, "how far back (30m, 6h, 7d, 2w)")
      ->default_str("30d");
  history->add_option("--resolution", resolution, resolution_help)
      ->check(CLI::IsMember({"auto", "raw", "hourly"}))
      ->default_str("auto");
  history->add_flag("--json", json, "print the proto3 JSON mapping");
  history->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunSpeedHistory(options, json, host, server, since, resolution);
  });

  double deadline_s = 60;
  auto* probe = app.add_subcommand(
      "probe", "run a probe on HOST now and print its result");
  probe->add_option("host", host, "agent name")->required();
  probe->add_option("kind", kind, "path, sockets, files or speed")
      ->required()
      ->check(CLI::IsMember({"path", "sockets", "files", "speed"}));
  probe->add_option("target", target,
                    "path: a plan target (default: every target the host "
                    "has run); speed: a peer agent (required)");
  probe->add_option("--deadline", deadline_s, "seconds to wait for the result")
      ->check(Seconds(1.0, 600.0))
      ->capture_default_str();
  probe->add_flag("--json", json, "print the proto3 JSON mapping");
  probe->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunProbe(options, json, host, kind, target, deadline_s);
  });

  bool all = false, follow = false;
  std::string alert_kind, by;
  auto* alerts =
      app.add_subcommand("alerts", "open alerts (--all: also resolved)");
  alerts->add_flag("--all", all, "resolved ones too");
  alerts
      ->add_option(
          "--kind", alert_kind,
          "only this kind: " + absl::StrJoin(netvigil::AlertKindNames(), ", "))
      ->default_str("all kinds");
  alerts->add_option("--host", host, "only alerts involving this host")
      ->default_str("all hosts");
  alerts
      ->add_option("--since", since,
                   "with --all: how far back (30m, 6h, 7d, 2w)")
      ->default_str("30d");
  alerts->add_flag("--follow", follow, "stream alert events as they happen");
  alerts->add_flag("--json", json, "print the proto3 JSON mapping");
  alerts->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    result = RunAlerts(options, json, all, alert_kind, host, since, follow);
  });

  std::string alert_id_text;
  auto* ack = app.add_subcommand(
      "ack",
      "accept an alert's subject into the baseline: it will not alert again");
  ack->add_option("id", alert_id_text, "the alert's ID (`netvigil alerts`)")
      ->required();
  ack->add_option("--by", by, "who acknowledges")->default_str("cli");
  ack->add_flag("--json", json, "print the proto3 JSON mapping");
  ack->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    int64_t alert_id = 0;
    if (!ParseAlertId(alert_id_text, &alert_id)) {
      result = absl::InvalidArgumentError(absl::StrCat(
          "ack wants an alert ID, a whole number from 1 (`netvigil alerts` "
          "lists them), got '",
          alert_id_text, "'"));
      return;
    }
    result = RunAck(options, json, alert_id, by);
  });

  // Names and kinds go into proto3 strings, which must be UTF-8: the
  // collector would refuse the whole request with a parse error. File paths
  // (--socket, --tls-dir) are bytes and stay as they are.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--socket" || a == "--tls-dir") && i + 1 < argc) {
      ++i;
      continue;
    }
    if (a.rfind("--socket=", 0) == 0 || a.rfind("--tls-dir=", 0) == 0) {
      continue;
    }
    if (!netvigil::IsValidUtf8(a)) {
      std::fprintf(stderr,
                   "netvigil: argument %d is not valid UTF-8 ('%s'): names "
                   "and kinds are text\n",
                   i, netvigil::ToValidUtf8(a).c_str());
      return kExitUsage;
    }
  }
  const std::string word = FirstWord(argc, argv);
  if (!word.empty() &&
      std::find(kCommands.begin(), kCommands.end(), word) == kCommands.end()) {
    std::fprintf(stderr,
                 "netvigil: unknown command '%s'; the commands are %s "
                 "(netvigil --help)\n",
                 word.c_str(), absl::StrJoin(kCommands, ", ").c_str());
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0 and print to stdout;
    // every other one is a usage error: CLI11's message on stderr, exit 2
    // (CLI11's own codes, 104-109, are not the README's).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "netvigil: %s (see --help)\n", e.what());
    return kExitUsage;
  }
  return Exit(result);
}
