#include "agent/probes/speed_command.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "common/escape.h"
#include "common/report/speed_table.h"
#include "common/utf8.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::agent {
namespace {

// "name does not resolve: HOST: REASON", as the path probe says it, instead
// of the EAGAIN text iperf3 gives for a name it cannot look up.
absl::Status CheckNameResolves(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc == 0) {
    freeaddrinfo(res);
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("name does not resolve: ", ToValidUtf8(host), ": ",
                   rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
}

// The result of a test that never started: FAILED with `error`.
v1::SpeedResult FailedBeforeStart(const v1::SpeedTest& test, bool bidir,
                                  absl::string_view error) {
  v1::SpeedResult r;
  r.set_server(test.external_target());
  r.set_external(true);
  r.set_server_address(test.address());
  r.set_server_port(test.port());
  r.set_udp(test.udp());
  r.set_reverse(test.reverse());
  r.set_bidirectional(bidir);
  const google::protobuf::Timestamp now =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(RealClock().Now()));
  *r.mutable_started_at() = now;
  *r.mutable_finished_at() = now;
  r.set_outcome(v1::SPEED_OUTCOME_FAILED);
  r.set_error(std::string(error));
  return r;
}

struct SpeedArgs {
  std::string host;
  uint32_t port = 5201;
  bool reverse = false;
  bool bidir = false;
  bool udp = false;
  std::string bitrate = "0";
  double seconds = 10;
  std::string username;
  std::string public_key_path;
  bool json = false;
};

absl::Status RunSpeedCommand(const SpeedArgs& args) {
  v1::SpeedTest test;
  test.set_external_target(args.host);
  test.set_address(args.host);
  test.set_port(args.port);
  test.set_reverse(args.reverse);
  test.set_udp(args.udp);
  test.set_bitrate_bps(ParseIperfBitrate(args.bitrate).value_or(0));
  test.mutable_duration()->set_seconds(static_cast<int64_t>(args.seconds));
  std::optional<IperfClientAuth> auth;
  if (!args.username.empty()) {
    // As stock iperf3 takes it: the environment, so that no password
    // shows in a process list or a shell history.
    const char* password = std::getenv("IPERF3_PASSWORD");
    if (password == nullptr || *password == '\0') {
      return absl::InvalidArgumentError(
          "netvigil-agent probe speed: --username needs the password in the "
          "environment variable IPERF3_PASSWORD");
    }
    auth = IperfClientAuth{args.username, password, args.public_key_path};
  }
  v1::SpeedResult result;
  if (absl::Status resolves = CheckNameResolves(args.host); !resolves.ok()) {
    result = FailedBeforeStart(test, args.bidir, resolves.message());
  } else {
    std::unique_ptr<ProcessRunner> runner = MakeRealProcessRunner();
    result = RunSpeedTest(*runner, test, RealClock(), args.bidir,
                          auth ? &*auth : nullptr);
  }
  if (args.json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    auto st =
        google::protobuf::util::MessageToJsonString(result, &out, options);
    if (!st.ok()) {
      return absl::InternalError(
          absl::StrCat("netvigil-agent probe speed: ", st.ToString()));
    }
    std::cout << out;
  } else if (result.outcome() == v1::SPEED_OUTCOME_OK) {
    std::cout << report::FormatSpeedTable(result);
  }
  std::cout.flush();
  if (result.outcome() != v1::SPEED_OUTCOME_OK) {
    return absl::UnavailableError(absl::StrCat("netvigil-agent probe speed: ",
                                               Printable(result.error())));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterSpeedProbeCommand(CLI::App& probe, absl::Status* outcome) {
  CLI::App* cmd = probe.add_subcommand(
      "speed", "Measure throughput to an iperf3 server, like iperf3 -c");
  auto args = std::make_shared<SpeedArgs>();
  cmd->add_option("host", args->host, "Server name or address")->required();
  cmd->add_option("-p,--port", args->port, "Server port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_flag("-R,--reverse", args->reverse, "The server sends");
  cmd->add_flag("--bidir", args->bidir, "Both directions at once");
  cmd->add_flag("-u,--udp", args->udp, "UDP instead of TCP");
  cmd->add_option("-b,--bitrate", args->bitrate,
                  "Target bits/s, with iperf3's suffixes: 500K, 100M, 1G "
                  "(0: iperf3's default, unlimited for TCP, 1M for UDP)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            absl::StatusOr<uint64_t> bps = ParseIperfBitrate(text);
            return bps.ok() ? std::string()
                            : std::string(bps.status().message());
          },
          "BITRATE"))
      ->capture_default_str();
  cmd->add_option("-t,--time", args->seconds, "Seconds to transmit")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  auto* user = cmd->add_option(
      "--username", args->username,
      "Authenticate to the server as this user (iperf3's RSA "
      "authentication); the password comes from $IPERF3_PASSWORD, never a "
      "flag");
  auto* key = cmd->add_option("--rsa-public-key-path", args->public_key_path,
                              "The server's RSA public key (PEM), with "
                              "--username")
                  ->check(CLI::ExistingFile);
  user->needs(key);
  key->needs(user);
  cmd->add_flag("--json", args->json, "Print the result as proto3 JSON");
  cmd->callback([args, outcome] { *outcome = RunSpeedCommand(*args); });
}

}  // namespace netvigil::agent
