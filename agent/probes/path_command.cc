#include "agent/probes/path_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/probes/path_probe.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "common/report/path_report.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::agent {
namespace {

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

absl::Status RunPathCommand(const PathArgs& args) {
  IcmpSocketChoice choice = args.socket == "raw" ? IcmpSocketChoice::kRaw
                            : args.socket == "dgram"
                                ? IcmpSocketChoice::kDatagram
                                : IcmpSocketChoice::kAuto;
  absl::StatusOr<std::unique_ptr<PathProbe>> probe = PathProbe::Create(choice);
  if (!probe.ok()) {
    return absl::Status(probe.status().code(),
                        absl::StrCat("path: ", probe.status().message()));
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
        std::cout.flush();
        return absl::InternalError(
            absl::StrCat("path: cannot print JSON: ", s.ToString()));
      }
      std::cout << out << "\n";
    } else {
      std::cout << report::FormatPathReport(run, LocalHostName());
    }
  }
  std::cout.flush();
  if (failed == 0) return absl::OkStatus();
  std::vector<std::string> lines;
  for (const v1::PathRun& run : runs) {
    if (!run.error().empty()) {
      lines.push_back(absl::StrCat("path: ", Printable(run.target()), ": ",
                                   Printable(run.error())));
    }
  }
  return absl::UnavailableError(absl::StrJoin(lines, "\n"));
}

}  // namespace

void RegisterPathProbeCommand(CLI::App& probe, absl::Status* outcome) {
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
  cmd->callback([args, outcome] { *outcome = RunPathCommand(*args); });
}

}  // namespace netvigil::agent
