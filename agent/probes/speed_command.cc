#include "agent/probes/speed_command.h"

#include <iostream>
#include <memory>

#include "absl/strings/str_format.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "common/escape.h"
#include "google/protobuf/util/json_util.h"

namespace netvigil::agent {
namespace {

std::string Rate(double bps) {
  if (bps >= 1e9) return absl::StrFormat("%.2f Gbit/s", bps / 1e9);
  if (bps >= 1e6) return absl::StrFormat("%.2f Mbit/s", bps / 1e6);
  return absl::StrFormat("%.2f Kbit/s", bps / 1e3);
}

void Row(std::string& out, const char* direction, const v1::SpeedFigures& f,
         bool udp) {
  if (udp) {
    absl::StrAppendFormat(
        &out, "%-16s %14s %14s %10.3f %8llu/%-8llu %6.2f%%\n", direction,
        Rate(f.sent_bps()), Rate(f.received_bps()), f.jitter_ms(),
        static_cast<unsigned long long>(f.lost_packets()),
        static_cast<unsigned long long>(f.packets()), f.lost_percent());
  } else {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %8llu\n", direction,
                          Rate(f.sent_bps()), Rate(f.received_bps()),
                          static_cast<unsigned long long>(f.retransmits()));
  }
}

}  // namespace

std::string FormatSpeedTable(const v1::SpeedResult& r) {
  std::string out =
      absl::StrFormat("%s %s port %u, %s, %.1f s\n",
                      r.server().empty() ? "server" : Printable(r.server()),
                      Printable(r.server_address()), r.server_port(),
                      r.udp() ? "UDP" : "TCP", r.duration_s());
  if (r.outcome() != v1::SPEED_OUTCOME_OK) {
    absl::StrAppend(&out, "FAILED: ", Printable(r.error()), "\n");
    return out;
  }
  if (r.udp()) {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %10s %17s %7s\n", "direction",
                          "sent", "received", "jitter ms", "lost/total",
                          "loss");
  } else {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %8s\n", "direction", "sent",
                          "received", "retr");
  }
  if (r.has_forward()) Row(out, "client->server", r.forward(), r.udp());
  if (r.has_reverse_figures()) {
    Row(out, "server->client", r.reverse_figures(), r.udp());
  }
  return out;
}

void RegisterSpeedProbeCommand(CLI::App& probe) {
  CLI::App* cmd = probe.add_subcommand(
      "speed", "Measure throughput to an iperf3 server, like iperf3 -c");
  struct Args {
    std::string host;
    uint32_t port = 5201;
    bool reverse = false;
    bool bidir = false;
    bool udp = false;
    uint64_t bitrate = 0;
    double seconds = 10;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("host", args->host, "Server name or address")->required();
  cmd->add_option("-p,--port", args->port, "Server port")
      ->check(CLI::Range(1, 65535));
  cmd->add_flag("-R,--reverse", args->reverse, "The server sends");
  cmd->add_flag("--bidir", args->bidir, "Both directions at once");
  cmd->add_flag("-u,--udp", args->udp, "UDP instead of TCP");
  cmd->add_option("-b,--bitrate", args->bitrate,
                  "Target bits/s (UDP default: iperf3's 1 Mbit/s)");
  cmd->add_option("-t,--time", args->seconds, "Seconds to transmit")
      ->check(CLI::Range(1.0, 3600.0));
  cmd->add_flag("--json", args->json, "Print the result as proto3 JSON");
  cmd->callback([args] {
    v1::SpeedTest test;
    test.set_external_target(args->host);
    test.set_address(args->host);
    test.set_port(args->port);
    test.set_reverse(args->reverse);
    test.set_udp(args->udp);
    test.set_bitrate_bps(args->bitrate);
    test.mutable_duration()->set_seconds(static_cast<int64_t>(args->seconds));
    std::unique_ptr<ProcessRunner> runner = MakeRealProcessRunner();
    v1::SpeedResult result =
        RunSpeedTest(*runner, test, RealClock(), args->bidir);
    if (args->json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions options;
      options.add_whitespace = true;
      auto st =
          google::protobuf::util::MessageToJsonString(result, &out, options);
      if (!st.ok()) {
        std::cerr << "netvigil-agent probe speed: " << st.ToString() << "\n";
        throw CLI::RuntimeError(1);
      }
      std::cout << out;
    } else if (result.outcome() == v1::SPEED_OUTCOME_OK) {
      std::cout << FormatSpeedTable(result);
    }
    if (result.outcome() != v1::SPEED_OUTCOME_OK) {
      std::cerr << "netvigil-agent probe speed: " << Printable(result.error())
                << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace netvigil::agent
