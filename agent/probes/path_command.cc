#include "agent/probes/path_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "agent/probes/path_probe.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::agent {
namespace {

constexpr int kHostColumn = 40;

std::string HopLabel(const v1::HopAddress& a) {
  if (a.hostname().empty()) return a.address();
  return absl::StrCat(a.hostname(), " (", a.address(), ")");
}

std::string LocalHostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

struct PathArgs {
  std::vector<std::string> targets;
  uint32_t count = 10;
  double interval_s = 1.0;
  uint32_t max_ttl = 30;
  uint32_t size = 56;
  bool v4 = false;
  bool v6 = false;
  bool json = false;
  bool resolve = false;
  std::string socket = "auto";
};

void RunPathCommand(const PathArgs& args) {
  IcmpSocketChoice choice = args.socket == "raw" ? IcmpSocketChoice::kRaw
                            : args.socket == "dgram"
                                ? IcmpSocketChoice::kDatagram
                                : IcmpSocketChoice::kAuto;
  absl::StatusOr<std::unique_ptr<PathProbe>> probe = PathProbe::Create(choice);
  if (!probe.ok()) {
    std::cerr << "path: " << probe.status().message() << "\n";
    throw CLI::RuntimeError(1);
  }
  PathOptions opts;
  opts.count = args.count;
  opts.interval = absl::Seconds(args.interval_s);
  opts.max_ttl = args.max_ttl;
  opts.payload_bytes = args.size;
  opts.resolve_names = args.resolve;
  opts.ip_version = args.v4 ? 4 : args.v6 ? 6 : 0;
  std::vector<v1::PathRun> runs = (*probe)->RunMany(args.targets, opts);
  int failed = 0;
  for (const v1::PathRun& run : runs) {
    if (!run.error().empty()) ++failed;
    if (args.json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions json;
      json.always_print_primitive_fields = true;
      auto s = google::protobuf::util::MessageToJsonString(run, &out, json);
      if (!s.ok()) {
        std::cerr << "path: cannot print JSON: " << s.ToString() << "\n";
        throw CLI::RuntimeError(1);
      }
      std::cout << out << "\n";
    } else {
      std::cout << FormatPathReport(run);
    }
  }
  std::cout.flush();
  if (failed > 0) {
    for (const v1::PathRun& run : runs) {
      if (!run.error().empty()) {
        std::cerr << "path: " << Printable(run.target()) << ": "
                  << Printable(run.error()) << "\n";
      }
    }
    throw CLI::RuntimeError(1);
  }
}

}  // namespace

std::string FormatPathReport(const v1::PathRun& run, const std::string& host) {
  std::string out;
  absl::Time started = FromProtoTime(run.started_at());
  absl::StrAppend(
      &out, "Start: ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%S%z", started, absl::UTCTimeZone()),
      "\n");
  // Names, reverse-DNS labels and errors go through the one escaping
  // (common/escape.h): a PTR record or a collector's target is any text.
  std::string target = Printable(run.target());
  if (!run.resolved_address().empty() &&
      run.resolved_address() != run.target()) {
    absl::StrAppend(&target, " (", Printable(run.resolved_address()), ")");
  }
  absl::StrAppend(&out, "PATH: ", target, ", ", run.count(), " rounds every ",
                  absl::StrFormat("%.3g", run.interval_s()), " s, max TTL ",
                  run.max_ttl(), ", ", run.payload_bytes(), " bytes, ",
                  run.socket_kind(), " socket\n");
  absl::StrAppend(
      &out, absl::StrFormat(
                "%-*s %6s %5s %5s %6s %6s %6s %6s %6s\n", kHostColumn,
                "HOST: " + (host.empty() ? LocalHostName() : host), "Loss%",
                "Snt", "Rcv", "Last", "Avg", "Best", "Wrst", "StDev"));
  for (const v1::PathHop& hop : run.hops()) {
    std::string first = hop.addresses_size() > 0
                            ? Printable(HopLabel(hop.addresses(0)))
                            : std::string("???");
    std::string label = absl::StrFormat("%3d.|-- %s", hop.ttl(), first);
    absl::StrAppend(
        &out,
        absl::StrFormat("%-*s %5.1f%% %5u %5u %6.1f %6.1f %6.1f %6.1f "
                        "%6.1f\n",
                        kHostColumn, label, hop.loss_percent(), hop.sent(),
                        hop.received(), hop.last_ms(), hop.avg_ms(),
                        hop.best_ms(), hop.worst_ms(), hop.stdev_ms()));
    for (int i = 1; i < hop.addresses_size(); ++i) {
      absl::StrAppend(&out, "    |  `|-- ",
                      Printable(HopLabel(hop.addresses(i))), " (",
                      hop.addresses(i).received(), " replies)\n");
    }
    for (const std::string& e : hop.errors()) {
      absl::StrAppend(&out, "    |   !! ", Printable(e), "\n");
    }
  }
  if (!run.error().empty()) {
    absl::StrAppend(&out, "ERROR: ", Printable(run.error()), "\n");
  }
  return out;
}

void RegisterPathProbeCommand(CLI::App& probe) {
  auto args = std::make_shared<PathArgs>();
  CLI::App* cmd = probe.add_subcommand(
      "path", "Per-hop loss and latency to each TARGET, as mtr --report");
  cmd->add_option("TARGET", args->targets,
                  "host names or addresses; several run concurrently")
      ->required();
  cmd->add_option("-c,--count", args->count, "rounds")
      ->check(CLI::Range(1u, kPathMaxCount))
      ->capture_default_str();
  cmd->add_option("-i,--interval", args->interval_s, "seconds between rounds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--max-ttl", args->max_ttl, "highest TTL probed")
      ->check(CLI::Range(1u, kPathMaxTtl))
      ->capture_default_str();
  cmd->add_option("-s,--size", args->size,
                  "payload bytes after the ICMP header")
      ->check(CLI::Range(0u, kPathMaxPayload))
      ->capture_default_str();
  auto* v4 = cmd->add_flag("-4", args->v4, "IPv4 only");
  cmd->add_flag("-6", args->v6, "IPv6 only")->excludes(v4);
  cmd->add_flag("-r,--resolve", args->resolve, "reverse DNS of hop addresses");
  cmd->add_option("--socket", args->socket,
                  "ICMP socket kind: raw (needs CAP_NET_RAW), dgram "
                  "(ping_group_range), or auto: raw, else dgram")
      ->check(CLI::IsMember({"auto", "raw", "dgram"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "one line of proto3 JSON per target");
  cmd->callback([args] { RunPathCommand(*args); });
}

}  // namespace netvigil::agent
