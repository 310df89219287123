#include "collector/scheduler/speed_loop.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;

}  // namespace

SpeedLoop::SpeedLoop(SpeedSchedulerOptions options, Store& store,
                     CommandBroker& broker, Clock& clock,
                     absl::Duration heartbeat_timeout,
                     SessionRegistry* sessions)
    : options_(options),
      store_(store),
      broker_(broker),
      clock_(clock),
      heartbeat_timeout_(heartbeat_timeout),
      sessions_(sessions),
      scheduler_(options, clock) {}

SpeedLoop::~SpeedLoop() { Stop(); }

void SpeedLoop::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SpeedLoop::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &in_flight_));
}

void SpeedLoop::Loop() {
  std::vector<std::string> last_notices;
  while (!stop_.HasBeenNotified()) {
    auto agents = store_.ListAgents(heartbeat_timeout_);
    if (agents.ok()) {
      if (sessions_ != nullptr) {
        sessions_->MarkLive(&*agents, clock_.Now(), clock_.MonotonicNow(),
                            heartbeat_timeout_);
      }
      // A revoked agent is tested by no one and tests no one.
      agents->erase(
          std::remove_if(agents->begin(), agents->end(),
                         [](const v1::AgentInfo& a) { return a.revoked(); }),
          agents->end());
      scheduler_.SetAgents(*agents);
      const bool hold = agents_observer_ && agents_observer_(*agents);
      for (ScheduledSpeedTest& t :
           hold ? std::vector<ScheduledSpeedTest>() : scheduler_.Tick()) {
        {
          absl::MutexLock l(&mu_);
          ++in_flight_;
        }
        std::thread([this, t = std::move(t)]() mutable {
          RunTest(std::move(t));
          absl::MutexLock l(&mu_);
          --in_flight_;
        }).detach();
      }
      StoreRecorded();
      std::vector<std::string> notices = scheduler_.notices();
      if (notices != last_notices) {
        for (const auto& n : notices)
          spdlog::warn("speed_mesh_notice detail=\"{}\"", n);
        last_notices = notices;
      }
    }
    // Tick often enough to start tests freed by a result promptly.
    stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500));
  }
}

void SpeedLoop::RunTest(ScheduledSpeedTest t) {
  v1::Command command;
  *command.mutable_speed_test() = t.test;
  const absl::Duration timeout =
      FromProtoDuration(t.test.duration()) + absl::Seconds(30);
  spdlog::info("speed_test_start client={} server={} schedule_id={}", t.client,
               t.test.peer_agent().empty() ? t.test.external_target()
                                           : t.test.peer_agent(),
               t.test.schedule_id());
  auto result = broker_.Run(t.client, command, timeout);
  v1::SpeedResult speed;
  if (result.ok() && result->has_speed()) {
    speed = result->speed();  // Already stored by ingest.
  } else {
    // The agent refused, went away or never answered: a stored result with
    // the reason, never a silent drop.
    speed.set_client(t.client);
    speed.set_server(t.test.peer_agent().empty() ? t.test.external_target()
                                                 : t.test.peer_agent());
    speed.set_external(!t.test.external_target().empty());
    speed.set_server_address(t.test.address());
    speed.set_server_port(t.test.port());
    speed.set_schedule_id(t.test.schedule_id());
    speed.set_outcome(v1::SPEED_OUTCOME_FAILED);
    speed.set_error(result.ok() ? "the answer carried no speed result"
                                : std::string(result.status().message()));
    *speed.mutable_started_at() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(clock_.Now()));
    absl::Status s = store_.StoreCollectorSpeedResult(speed);
    if (!s.ok()) {
      spdlog::error("speed_result_not_stored client={} error=\"{}\"", t.client,
                    std::string(s.message()));
    }
  }
  absl::Status s = scheduler_.OnResult(speed);
  if (!s.ok()) {
    spdlog::warn("speed_result_unmatched schedule_id={} error=\"{}\"",
                 speed.schedule_id(), std::string(s.message()));
  }
  spdlog::info(
      "speed_test_done client={} server={} outcome={} bps={:.0f} "
      "error=\"{}\"",
      speed.client(), speed.server(), v1::SpeedOutcome_Name(speed.outcome()),
      speed.forward().received_bps(), speed.error());
}

void SpeedLoop::StoreRecorded() {
  const std::vector<v1::SpeedResult> recorded =
      scheduler_.TakeRecordedResults();
  for (size_t i = 0; i < recorded.size(); ++i) {
    const v1::SpeedResult& r = recorded[i];
    // A mesh of many offline agents records thousands of skips; a stopping
    // collector does not wait for them (they are the collector's own notes,
    // not agents' results).
    if (stop_.HasBeenNotified()) {
      spdlog::warn("speed_skips_not_stored n={} reason=\"collector stopping\"",
                   recorded.size() - i);
      return;
    }
    absl::Status s = store_.StoreCollectorSpeedResult(r);
    if (!s.ok()) {
      spdlog::error("speed_result_not_stored client={} error=\"{}\"",
                    r.client(), std::string(s.message()));
    }
  }
}

}  // namespace netvigil::collector
