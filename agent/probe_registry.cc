#include "agent/probe_registry.h"

#include "absl/strings/str_cat.h"
#include "agent/iperf_server.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/path_probe.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using google::protobuf::util::TimeUtil;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Nanoseconds(TimeUtil::DurationToNanoseconds(d));
}

// What the probes keep for the agent's lifetime.
struct ProbeState {
  std::unique_ptr<PathProbe> path;
  std::unique_ptr<SocketProbe> sockets;
  std::unique_ptr<FileProbe> files;
  std::unique_ptr<ProcessRunner> runner;
  std::unique_ptr<IperfServer> iperf;
  absl::Mutex sockets_mu, files_mu;
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

v1::Result Wrap(v1::PathRun run) {
  v1::Result r;
  *r.mutable_path() = std::move(run);
  return r;
}

}  // namespace

absl::Status CheckCommand(const v1::Command& command,
                          const v1::ProbePlan& plan) {
  if (command.has_probe_now()) {
    switch (command.probe_now().kind()) {
      case v1::PROBE_KIND_PATH: {
        if (!plan.path().enabled())
          return absl::PermissionDeniedError("path probe disabled in the plan");
        return PathTargets(plan, &command).status();
      }
      case v1::PROBE_KIND_SOCKETS:
        if (!plan.sockets().enabled())
          return absl::PermissionDeniedError(
              "sockets probe disabled in the plan");
        return absl::OkStatus();
      case v1::PROBE_KIND_FILES:
        if (!plan.files().enabled())
          return absl::PermissionDeniedError(
              "files probe disabled in the plan");
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError(
            "probe-now for an unknown probe kind");
    }
  }
  if (command.has_speed_test()) {
    const v1::SpeedTest& t = command.speed_test();
    if (!plan.speed().enabled())
      return absl::PermissionDeniedError("speed tests disabled in the plan");
    if (t.address().empty() || t.port() == 0 || t.port() > 65535) {
      return absl::InvalidArgumentError(
          "speed test without a server address and port");
    }
    if (!t.external_target().empty()) {
      bool known = false;
      for (const auto& e : plan.speed().external_targets()) {
        known = known || (e.name() == t.external_target() &&
                          e.address() == t.address() && e.port() == t.port());
      }
      if (!known) {
        return absl::PermissionDeniedError(
            absl::StrCat("external target '", t.external_target(), "' at ",
                         t.address(), " is not in the plan"));
      }
    } else if (t.peer_agent().empty()) {
      return absl::InvalidArgumentError(
          "speed test names neither a peer nor an external target");
    }
    const absl::Duration d = FromProto(t.duration());
    const absl::Duration cap = plan.speed().has_max_duration()
                                   ? FromProto(plan.speed().max_duration())
                                   : absl::Seconds(30);
    if (d <= absl::ZeroDuration() || d > cap) {
      return absl::InvalidArgumentError(
          absl::StrCat("speed test duration ", absl::FormatDuration(d),
                       " outside (0, ", absl::FormatDuration(cap), "]"));
    }
    if (plan.speed().max_bitrate_bps() != 0 &&
        (t.bitrate_bps() == 0 ||
         t.bitrate_bps() > plan.speed().max_bitrate_bps())) {
      return absl::InvalidArgumentError(
          "speed test bitrate above the plan's cap");
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown command");
}

absl::StatusOr<std::shared_ptr<void>> RegisterProbes(
    const ProbeRegistryOptions& options, ProbeRunner& runner) {
  auto state = std::make_shared<ProbeState>();

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
          o.interval = FromProto(plan.path().round_interval());
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
  runner.Register(v1::PROBE_KIND_SOCKETS,
                  [st = state.get()](const v1::ProbePlan&, const v1::Command*)
                      -> absl::StatusOr<std::vector<v1::Result>> {
                    absl::MutexLock l(&st->sockets_mu);
                    auto snap = st->sockets->Collect();
                    if (!snap.ok()) return snap.status();
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
                    v1::SpeedResult s = RunSpeedTest(
                        *st->runner, command->speed_test(), RealClock());
                    s.set_client(name);
                    v1::Result r;
                    *r.mutable_speed() = std::move(s);
                    return std::vector<v1::Result>{std::move(r)};
                  });
  runner.SetCommandPolicy(CheckCommand);
  return std::shared_ptr<void>(state);
}

}  // namespace netvigil::agent
