#include "agent/probe_registry.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "agent/iperf_credentials_files.h"
#include "agent/iperf_server.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/path_probe.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "common/model/facts.h"
#include "common/proto_time.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

// What the probes keep for the agent's lifetime.
struct ProbeState final : public ProbeResources {
  std::unique_ptr<PathProbe> path;
  std::unique_ptr<SocketProbe> sockets;
  std::unique_ptr<FileProbe> files;
  std::unique_ptr<ProcessRunner> runner;
  std::unique_ptr<IperfServer> iperf;
  std::unique_ptr<IperfCredentialFiles> credentials;  // null: no state dir
  absl::Mutex sockets_mu, files_mu;

  void OnWelcome(const v1::Welcome& welcome) override {
    if (credentials == nullptr) return;
    ApplyUsers(welcome.plan());
    absl::Status s = credentials->SetAuth(
        welcome.has_iperf_auth() ? &welcome.iperf_auth() : nullptr);
    if (!s.ok()) {
      // Keep what was there: better the old credentials than none.
      spdlog::error("iperf3_credentials_not_applied error=\"{}\"",
                    std::string(s.message()));
    } else if (!welcome.has_iperf_auth() && iperf) {
      spdlog::warn(
          "iperf3_server_unauthenticated reason=\"the collector sent no "
          "iperf3 credentials (older collector?)\" detail=\"any iperf3 client "
          "can test against this host\"");
    }
    if (iperf) iperf->SetExtraArgs(credentials->ServerArgs());
  }

  void OnPlan(const v1::ProbePlan& plan) override {
    if (credentials != nullptr) ApplyUsers(plan);
  }

  void ApplyUsers(const v1::ProbePlan& plan) {
    std::vector<v1::IperfUser> users(plan.speed().iperf_users().begin(),
                                     plan.speed().iperf_users().end());
    absl::Status s = credentials->SetUsers(users);
    if (!s.ok()) {
      spdlog::error("iperf3_users_not_applied error=\"{}\"",
                    std::string(s.message()));
    }
  }
};

// The plan's targets a path run covers: all of them, or the one a command
// names (by name or address).
absl::StatusOr<std::vector<v1::PathTarget>> PathTargets(
    const v1::ProbePlan& plan, const v1::Command* command) {
  std::vector<v1::PathTarget> out;
  const std::string wanted =
      command != nullptr ? command->probe_now().target() : "";
  for (const v1::PathTarget& t : plan.path().targets()) {
    if (wanted.empty() || t.name() == wanted || t.address() == wanted) {
      out.push_back(t);
    }
  }
  if (out.empty() && !wanted.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", wanted, "' is not a path target in the plan"));
  }
  return out;
}

// An address in one spelling (model/facts.h decides it for history and the
// analysis too): "::FFFF:0:1" and "::ffff:0.0.0.1" are the same peer. A host
// name stays as it is.
using model::CanonicalAddress;

absl::Status CheckProbeNow(const v1::Command& command,
                           const v1::ProbePlan& plan) {
  switch (command.probe_now().kind()) {
    case v1::PROBE_KIND_PATH:
      if (!plan.path().enabled())
        return absl::PermissionDeniedError("path probe disabled in the plan");
      return PathTargets(plan, &command).status();
    case v1::PROBE_KIND_SOCKETS:
      if (!plan.sockets().enabled())
        return absl::PermissionDeniedError(
            "sockets probe disabled in the plan");
      return absl::OkStatus();
    case v1::PROBE_KIND_FILES:
      if (!plan.files().enabled())
        return absl::PermissionDeniedError("files probe disabled in the plan");
      return absl::OkStatus();
    case v1::PROBE_KIND_SPEED:
      // A speed test needs its server, duration and caps: a SpeedTest.
      return absl::InvalidArgumentError(
          "probe-now cannot run a speed test; only a speed-test command can");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("probe-now for an unknown probe kind (",
                       static_cast<int>(command.probe_now().kind()), ")"));
  }
}

// The server must be a peer the plan lists, at one of that peer's addresses,
// or a configured external target with its exact address and port.
absl::Status CheckSpeedServer(const v1::SpeedTest& t,
                              const v1::SpeedPlan& plan) {
  if (!t.peer_agent().empty() && !t.external_target().empty()) {
    return absl::InvalidArgumentError(
        "speed test names both a peer and an external target");
  }
  if (!t.external_target().empty()) {
    for (const v1::ExternalSpeedTarget& e : plan.external_targets()) {
      const uint32_t port = e.port() != 0 ? e.port() : kDefaultIperfPort;
      if (e.name() == t.external_target() &&
          CanonicalAddress(e.address()) == CanonicalAddress(t.address()) &&
          port == t.port()) {
        return absl::OkStatus();
      }
    }
    return absl::PermissionDeniedError(
        absl::StrCat("external target '", t.external_target(), "' at ",
                     t.address(), " port ", t.port(), " is not in the plan"));
  }
  if (t.peer_agent().empty()) {
    return absl::InvalidArgumentError(
        "speed test names neither a peer nor an external target");
  }
  for (const v1::KnownPeer& p : plan.peers()) {
    if (p.name() != t.peer_agent()) continue;
    bool address_known = false;
    for (const std::string& a : p.addresses()) {
      address_known =
          address_known || CanonicalAddress(a) == CanonicalAddress(t.address());
    }
    if (!address_known) {
      return absl::PermissionDeniedError(
          absl::StrCat("address ", t.address(), " is not known for peer '",
                       t.peer_agent(), "'"));
    }
    if (p.port() != 0 && p.port() != t.port()) {
      return absl::PermissionDeniedError(
          absl::StrCat("port ", t.port(), " is not peer '", t.peer_agent(),
                       "''s iperf3 port ", p.port()));
    }
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("'", t.peer_agent(), "' is not a known peer"));
}

absl::Status CheckSpeedTest(const v1::SpeedTest& t, const v1::SpeedPlan& plan) {
  if (!plan.enabled())
    return absl::PermissionDeniedError("speed tests disabled in the plan");
  if (t.address().empty() || t.port() == 0 || t.port() > 65535) {
    return absl::InvalidArgumentError(
        "speed test without a server address and port");
  }
  if (absl::Status s = CheckSpeedServer(t, plan); !s.ok()) return s;
  const absl::Duration d = FromProtoDuration(t.duration());
  absl::Duration cap = plan.has_max_duration()
                           ? FromProtoDuration(plan.max_duration())
                           : kDefaultSpeedTestCap;
  cap = std::min(cap, kMaxSpeedTestDuration);
  if (d <= absl::ZeroDuration() || d > cap) {
    return absl::InvalidArgumentError(
        absl::StrCat("speed test duration ", absl::FormatDuration(d),
                     " outside (0, ", absl::FormatDuration(cap), "]"));
  }
  if (plan.max_bitrate_bps() != 0 &&
      (t.bitrate_bps() == 0 || t.bitrate_bps() > plan.max_bitrate_bps())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "speed test bitrate ",
        t.bitrate_bps() == 0 ? std::string("unlimited")
                             : absl::StrCat(t.bitrate_bps()),
        " above the plan's cap of ", plan.max_bitrate_bps(), " bit/s"));
  }
  return absl::OkStatus();
}

v1::Result Wrap(v1::PathRun run) {
  v1::Result r;
  *r.mutable_path() = std::move(run);
  return r;
}

}  // namespace

absl::Status CheckCommand(const v1::Command& command,
                          const v1::ProbePlan& plan) {
  switch (command.cmd_case()) {
    case v1::Command::kProbeNow:
      return CheckProbeNow(command, plan);
    case v1::Command::kSpeedTest:
      return CheckSpeedTest(command.speed_test(), plan.speed());
    case v1::Command::CMD_NOT_SET:
      break;
  }
  // An empty command, or one a newer collector knows and this agent does not.
  return absl::InvalidArgumentError("unknown command");
}

absl::StatusOr<std::shared_ptr<ProbeResources>> RegisterProbes(
    const ProbeRegistryOptions& options, ProbeRunner& runner) {
  auto state = std::make_shared<ProbeState>();
  if (!options.state_dir.empty()) {
    state->credentials =
        std::make_unique<IperfCredentialFiles>(options.state_dir + "/iperf3");
  }

  auto path = PathProbe::Create();
  if (path.ok()) {
    state->path = std::move(*path);
    runner.Register(
        v1::PROBE_KIND_PATH,
        [st = state.get()](const v1::ProbePlan& plan,
                           const v1::Command* command)
            -> absl::StatusOr<std::vector<v1::Result>> {
          auto targets = PathTargets(plan, command);
          if (!targets.ok()) return targets.status();
          std::vector<std::string> addresses;
          for (const auto& t : *targets) addresses.push_back(t.address());
          PathOptions o;
          o.count = plan.path().count() ? plan.path().count() : 10;
          o.interval = FromProtoDuration(plan.path().round_interval());
          if (o.interval <= absl::ZeroDuration()) o.interval = absl::Seconds(1);
          o.max_ttl = plan.path().max_ttl() ? plan.path().max_ttl() : 30;
          o.payload_bytes = plan.path().payload_bytes();
          o.resolve_names = plan.path().resolve_names();
          std::vector<v1::PathRun> runs = st->path->RunMany(addresses, o);
          std::vector<v1::Result> out;
          for (size_t i = 0; i < runs.size(); ++i) {
            // Runs come back in the order asked; name them as the plan does.
            if (i < targets->size()) runs[i].set_target((*targets)[i].name());
            out.push_back(Wrap(std::move(runs[i])));
          }
          return out;
        });
  } else {
    // Not fatal: the other probes still run; every path run says why.
    spdlog::error("path_probe_unavailable error=\"{}\"",
                  std::string(path.status().message()));
  }

  state->sockets = SocketProbe::CreateReal();
  const uint32_t own_iperf_port = options.iperf_server ? options.iperf_port : 0;
  runner.Register(
      v1::PROBE_KIND_SOCKETS,
      [st = state.get(), own_iperf_port](
          const v1::ProbePlan&,
          const v1::Command*) -> absl::StatusOr<std::vector<v1::Result>> {
        absl::MutexLock l(&st->sockets_mu);
        auto snap = st->sockets->Collect();
        if (!snap.ok()) return snap.status();
        MarkAgentOwn(static_cast<uint32_t>(getpid()), own_iperf_port, &*snap);
        v1::Result r;
        *r.mutable_sockets() = std::move(*snap);
        return std::vector<v1::Result>{std::move(r)};
      });

  state->files = FileProbe::CreateReal();
  runner.Register(
      v1::PROBE_KIND_FILES,
      [st = state.get()](const v1::ProbePlan& plan, const v1::Command*)
          -> absl::StatusOr<std::vector<v1::Result>> {
        absl::MutexLock l(&st->files_mu);
        std::vector<std::string> dirs(plan.files().watched_dirs().begin(),
                                      plan.files().watched_dirs().end());
        auto snap = st->files->Collect(dirs);
        if (!snap.ok()) return snap.status();
        v1::Result r;
        *r.mutable_files() = std::move(*snap);
        return std::vector<v1::Result>{std::move(r)};
      });

  state->runner = MakeRealProcessRunner();
  if (options.iperf_server) {
    state->iperf = std::make_unique<IperfServer>(
        *state->runner, RealClock(), static_cast<uint16_t>(options.iperf_port));
    // The credentials a previous run kept, so the server authenticates from
    // its first start; without any (a first start, no collector yet) it runs
    // open until the welcome brings them, and says so.
    if (state->credentials != nullptr && state->credentials->LoadKept()) {
      state->iperf->SetExtraArgs(state->credentials->ServerArgs());
    } else {
      spdlog::warn(
          "iperf3_server_unauthenticated reason=\"no iperf3 credentials from "
          "the collector yet\"");
    }
    state->iperf->Start();
  }
  runner.Register(v1::PROBE_KIND_SPEED,
                  [st = state.get(), name = options.agent_name](
                      const v1::ProbePlan&, const v1::Command* command)
                      -> absl::StatusOr<std::vector<v1::Result>> {
                    if (command == nullptr || !command->has_speed_test()) {
                      return absl::InvalidArgumentError(
                          "speed tests run only when the collector asks");
                    }
                    // Peers' servers want the collector's credentials; external
                    // targets are stock public servers.
                    std::optional<IperfClientAuth> auth;
                    if (!command->speed_test().peer_agent().empty() &&
                        st->credentials != nullptr) {
                      auth = st->credentials->ClientAuth();
                    }
                    v1::SpeedResult s = RunSpeedTest(
                        *st->runner, command->speed_test(), RealClock(),
                        /*bidirectional=*/false, auth ? &*auth : nullptr);
                    s.set_client(name);
                    v1::Result r;
                    *r.mutable_speed() = std::move(s);
                    return std::vector<v1::Result>{std::move(r)};
                  });
  runner.SetCommandPolicy(CheckCommand);
  return std::shared_ptr<ProbeResources>(state);
}

}  // namespace netvigil::agent
