#include "agent/probe_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "netvigil/v1/probes.pb.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using google::protobuf::util::TimeUtil;

const char* KindName(v1::ProbeKind kind) {
  switch (kind) {
    case v1::PROBE_KIND_PATH:
      return "path";
    case v1::PROBE_KIND_SOCKETS:
      return "sockets";
    case v1::PROBE_KIND_FILES:
      return "files";
    case v1::PROBE_KIND_SPEED:
      return "speed";
    default:
      return "unknown";
  }
}

// Commands run one at a time per kind, and only this many in all.
constexpr int kMaxCommandsInFlight = 4;

}  // namespace

ProbeRunner::ProbeRunner(Outbox& outbox, Clock& clock)
    : outbox_(outbox), clock_(clock) {}

ProbeRunner::~ProbeRunner() { Stop(); }

void ProbeRunner::Register(v1::ProbeKind kind, ProbeFn fn) {
  probes_[kind] = std::move(fn);
}

void ProbeRunner::SetCommandPolicy(CommandPolicy policy) {
  policy_ = std::move(policy);
}

void ProbeRunner::Start() {
  for (const auto& [kind, fn] : probes_) {
    if (kind == v1::PROBE_KIND_SPEED) continue;  // The collector schedules it.
    threads_.emplace_back([this, k = kind] { Loop(k); });
  }
}

void ProbeRunner::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
    wake_.NotifyAll();
    // Wait for commands running in the background.
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &commands_in_flight_));
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ProbeRunner::SetPlan(const v1::ProbePlan& plan) {
  absl::MutexLock l(&mu_);
  // The speed section changes whenever an agent comes or goes (its peers
  // and iperf3 users); that must not restart the periodic probes' timers.
  v1::ProbePlan old_rest = plan_, new_rest = plan;
  old_rest.clear_speed();
  new_rest.clear_speed();
  const bool timers_change =
      !have_plan_ ||
      !google::protobuf::util::MessageDifferencer::Equals(old_rest, new_rest);
  plan_ = plan;
  have_plan_ = true;
  if (timers_change) ++plan_generation_;
  wake_.NotifyAll();
}

bool ProbeRunner::Enabled(v1::ProbeKind kind, const v1::ProbePlan& plan,
                          absl::Duration* every) const {
  switch (kind) {
    case v1::PROBE_KIND_PATH:
      *every = FromProtoDuration(plan.path().every());
      return plan.path().enabled() && plan.path().targets_size() > 0;
    case v1::PROBE_KIND_SOCKETS:
      *every = FromProtoDuration(plan.sockets().every());
      return plan.sockets().enabled();
    case v1::PROBE_KIND_FILES:
      *every = FromProtoDuration(plan.files().every());
      return plan.files().enabled() && plan.files().watched_dirs_size() > 0;
    default:
      return false;
  }
}

void ProbeRunner::Loop(v1::ProbeKind kind) {
  uint64_t generation = 0;
  absl::Time next = absl::InfinitePast();
  while (true) {
    v1::ProbePlan plan;
    {
      absl::MutexLock l(&mu_);
      auto woken = [this, &generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (have_plan_ && plan_generation_ != generation);
      };
      // Wait for the due time, a new plan, or stop.
      const absl::Duration wait = next - clock_.MonotonicNow();
      if (!have_plan_ || wait > absl::ZeroDuration()) {
        wake_.WaitFor(mu_, have_plan_ ? wait : absl::InfiniteDuration(), woken);
      }
      if (stop_) return;
      if (!have_plan_) continue;
      if (plan_generation_ != generation) {
        // A new plan: first run soon, staggered by kind so the probes do not
        // all start in the same instant.
        generation = plan_generation_;
        next = clock_.MonotonicNow() +
               absl::Milliseconds(300 * static_cast<int>(kind));
        continue;
      }
      if (clock_.MonotonicNow() < next) continue;
      plan = plan_;
    }
    absl::Duration every;
    if (!Enabled(kind, plan, &every)) {
      next = clock_.MonotonicNow() + absl::Seconds(60);
      continue;
    }
    if (every < absl::Seconds(1)) every = absl::Seconds(1);
    next = clock_.MonotonicNow() + every;
    RunOnce(kind, plan, nullptr);
  }
}

void ProbeRunner::RunOnce(v1::ProbeKind kind, const v1::ProbePlan& plan,
                          const v1::Command* command) {
  {
    absl::MutexLock l(&mu_);
    struct Idle {
      std::map<v1::ProbeKind, bool>* busy;
      v1::ProbeKind kind;
    } idle{&busy_, kind};
    mu_.Await(absl::Condition(
        +[](Idle* a) { return !(*a->busy)[a->kind]; }, &idle));
    busy_[kind] = true;
  }
  const absl::Time started = clock_.MonotonicNow();
  auto results = probes_.at(kind)(plan, command);
  {
    absl::MutexLock l(&mu_);
    busy_[kind] = false;
  }
  runs_.fetch_add(1);
  if (!results.ok()) {
    spdlog::warn("probe_failed kind={} error=\"{}\"", KindName(kind),
                 std::string(results.status().message()));
    return;
  }
  for (v1::Result& r : *results) {
    if (command != nullptr) r.set_command_id(command->id());
    if (!r.has_produced_at()) {
      *r.mutable_produced_at() =
          TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(clock_.Now()));
    }
    auto seq = outbox_.Add(std::move(r));
    if (!seq.ok()) {
      spdlog::error("result_not_kept kind={} error=\"{}\"", KindName(kind),
                    std::string(seq.status().message()));
    }
  }
  spdlog::debug("probe_done kind={} results={} ms={}", KindName(kind),
                results->size(),
                absl::ToInt64Milliseconds(clock_.MonotonicNow() - started));
}

v1::CommandStatus ProbeRunner::Handle(const v1::Command& command) {
  v1::CommandStatus status;
  status.set_command_id(command.id());
  v1::ProbeKind kind = v1::PROBE_KIND_UNSPECIFIED;
  if (command.has_probe_now()) kind = command.probe_now().kind();
  if (command.has_speed_test()) kind = v1::PROBE_KIND_SPEED;
  v1::ProbePlan plan;
  absl::Status allowed;
  {
    absl::MutexLock l(&mu_);
    plan = plan_;
    // The policy first: its reasons say what is wrong with the command.
    if (policy_) allowed = policy_(command, plan);
    if (allowed.ok() && probes_.count(kind) == 0) {
      allowed = absl::InvalidArgumentError(
          absl::StrCat("unknown or unsupported command (probe kind ",
                       static_cast<int>(kind), ")"));
    }
    if (allowed.ok() && commands_in_flight_ >= kMaxCommandsInFlight) {
      allowed = absl::ResourceExhaustedError("too many commands in flight");
    }
    if (allowed.ok() && stop_) {
      allowed = absl::UnavailableError("agent stopping");
    }
    if (allowed.ok()) ++commands_in_flight_;
  }
  if (!allowed.ok()) {
    refused_.fetch_add(1);
    // The id and the reason (which quotes the command) come from the
    // network: LogValue (common/escape.h), so they cannot forge log lines.
    spdlog::warn("command_refused id={} kind={} reason={} refused_total={}",
                 LogValue(command.id()), KindName(kind),
                 LogValue(allowed.message()), refused_.load());
    status.set_accepted(false);
    status.set_reason(std::string(allowed.message()));
    return status;
  }
  status.set_accepted(true);
  spdlog::info("command_accepted id={} kind={}", LogValue(command.id()),
               KindName(kind));
  std::thread([this, command, kind, plan] {
    RunOnce(kind, plan, &command);
    absl::MutexLock l(&mu_);
    --commands_in_flight_;
  }).detach();
  return status;
}

}  // namespace netvigil::agent
