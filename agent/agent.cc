#include "agent/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "agent/host_info.h"
#include "agent/probe_registry.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {

namespace {

// The last plan the collector gave, kept so an agent restarted while the
// collector is away goes on probing (its results wait in the spool).
std::string PlanPath(const std::string& state_dir) {
  return state_dir + "/plan.pb";
}

absl::Status SavePlan(const std::string& state_dir, const v1::ProbePlan& plan) {
  const std::string path = PlanPath(state_dir), tmp = path + ".tmp";
  std::string bytes;
  plan.SerializeToString(&bytes);
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  }
  bool ok = write(fd, bytes.data(), bytes.size()) ==
                static_cast<ssize_t>(bytes.size()) &&
            fsync(fd) == 0;
  const int saved = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": ", std::strerror(ok ? errno : saved)));
  }
  return absl::OkStatus();
}

std::optional<v1::ProbePlan> LoadPlan(const std::string& state_dir) {
  std::ifstream in(PlanPath(state_dir), std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  v1::ProbePlan plan;
  if (!plan.ParseFromString(bytes)) {
    spdlog::warn(
        "cached_plan_unreadable path={} action=\"wait for the "
        "collector's plan\"",
        PlanPath(state_dir));
    return std::nullopt;
  }
  return plan;
}

// The state folder holds the spool (process lists, file paths), the key and
// the iperf3 credentials: 0700, the agent's user only. A shared folder with
// the sticky bit (/tmp given as --state-dir) is left alone, with a warning:
// taking it from its other users would break them.
void TightenStateFolder(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
  if ((st.st_mode & S_ISVTX) != 0) {
    spdlog::warn(
        "state_dir_shared path={} mode={:o} detail=\"a folder of its own "
        "(0700) keeps the spool and keys private\"",
        dir, st.st_mode & 07777);
    return;
  }
  if (chmod(dir.c_str(), st.st_mode & 0700) != 0) {
    spdlog::warn("state_dir_mode_not_tightened path={} error=\"{}\"", dir,
                 std::strerror(errno));
    return;
  }
  spdlog::info("state_dir_mode_tightened path={} from={:o} to={:o}", dir,
               st.st_mode & 07777, st.st_mode & 0700);
}

}  // namespace

AgentProcess::AgentProcess(AgentOptions options)
    : options_(std::move(options)) {}

AgentProcess::~AgentProcess() { Stop(); }

absl::Status AgentProcess::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the state folder ", options_.state_dir,
                     ": ", ec.message()));
  }
  TightenStateFolder(options_.state_dir);
  Spool::Options spool_options;
  spool_options.path = options_.state_dir + "/spool.db";
  spool_options.max_bytes = options_.spool_max_bytes;
  auto spool = Spool::Open(spool_options, RealClock());
  if (!spool.ok()) {
    return absl::Status(
        spool.status().code(),
        absl::StrCat("cannot open the spool ", spool_options.path, ": ",
                     spool.status().message()));
  }
  outbox_ = std::make_unique<SpoolOutbox>(std::move(*spool));
  runner_ = std::make_unique<ProbeRunner>(*outbox_, RealClock());
  ProbeRegistryOptions probe_options;
  probe_options.agent_name = options_.name;
  probe_options.iperf_port = options_.iperf_port;
  probe_options.iperf_server = options_.iperf_server;
  probe_options.state_dir = options_.state_dir;
  auto state = RegisterProbes(probe_options, *runner_);
  if (!state.ok()) return state.status();
  probe_state_ = *state;

  LinkOptions link;
  link.collector = options_.collector;
  if (options_.insecure) {
    link.credentials = grpc::InsecureChannelCredentials();
  } else {
    link.credentials = ClientCredentials(options_.tls);
    link.ssl_target_name = options_.tls.server_name;
  }
  link.hello.set_agent_name(options_.name);
  link.hello.set_boot_id(BootId());
  link.hello.set_version(kVersion);
  link.hello.set_hostname(HostName());
  for (const auto& a : HostAddresses()) link.hello.add_addresses(a);
  link.hello.set_iperf_port(options_.iperf_port);
  link_ = std::make_unique<CollectorLink>(link, *outbox_, *this, RealClock());
  return absl::OkStatus();
}

void AgentProcess::Run() {
  spdlog::info(
      "agent_started name={} collector={} spool_pending={} "
      "next_seq={}",
      options_.name, options_.collector, outbox_->pending(),
      outbox_->next_seq());
  if (std::optional<v1::ProbePlan> plan = LoadPlan(options_.state_dir)) {
    spdlog::info("cached_plan_loaded path={}", PlanPath(options_.state_dir));
    runner_->SetPlan(Localise(*plan));
  }
  runner_->Start();
  link_->Run();
}

void AgentProcess::Stop() {
  if (link_) link_->Stop();
  if (runner_) runner_->Stop();
}

v1::ProbePlan AgentProcess::Localise(v1::ProbePlan plan) const {
  if (!options_.watch_dirs.empty()) {
    plan.mutable_files()->clear_watched_dirs();
    for (const auto& d : options_.watch_dirs) {
      plan.mutable_files()->add_watched_dirs(d);
    }
  }
  return plan;
}

void AgentProcess::OnWelcome(const v1::Welcome& welcome) {
  probe_state_->OnWelcome(welcome);
  KeepPlan(welcome.plan());
  runner_->SetPlan(Localise(welcome.plan()));
}

void AgentProcess::OnPlanUpdate(const v1::ProbePlan& plan) {
  probe_state_->OnPlan(plan);
  KeepPlan(plan);
  runner_->SetPlan(Localise(plan));
}

void AgentProcess::KeepPlan(const v1::ProbePlan& plan) {
  if (absl::Status s = SavePlan(options_.state_dir, plan); !s.ok()) {
    spdlog::warn("plan_not_cached error=\"{}\"", std::string(s.message()));
  }
}

void AgentProcess::FillHeartbeat(v1::Heartbeat* heartbeat) {
  heartbeat->set_refused_commands(runner_->refused_commands());
}

v1::CommandStatus AgentProcess::OnCommand(const v1::Command& command) {
  return runner_->Handle(command);
}

}  // namespace netvigil::agent
