#include "collector/ingest/command_broker.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

CommandBroker::CommandBroker(SessionRegistry& sessions, Clock& clock)
    : sessions_(sessions), clock_(clock) {}

absl::StatusOr<v1::Result> CommandBroker::Run(const std::string& agent,
                                              v1::Command command,
                                              absl::Duration timeout) {
  std::shared_ptr<AgentSession> session = sessions_.Find(agent);
  if (session == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("agent '", agent, "' is not connected"));
  }
  const std::string id =
      absl::StrCat("c", getpid(), "-", absl::ToUnixMillis(clock_.Now()), "-",
                   next_id_.fetch_add(1));
  command.set_id(id);
  *command.mutable_deadline() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
          absl::ToUnixMicros(clock_.Now() + timeout));
  auto waiter = std::make_shared<Waiter>();
  waiter->agent = agent;
  {
    absl::MutexLock l(&mu_);
    waiters_[id] = waiter;
  }
  v1::CollectorMessage msg;
  *msg.mutable_command() = command;
  absl::Status result;
  if (!session->Send(msg)) {
    result = absl::UnavailableError(
        absl::StrCat("agent '", agent, "' disconnected"));
  }
  absl::MutexLock l(&mu_);
  if (result.ok()) {
    mu_.AwaitWithTimeout(absl::Condition(&waiter->done), timeout);
    if (!waiter->done) {
      result = absl::DeadlineExceededError(
          absl::StrCat("agent '", agent, "' did not answer within ",
                       absl::FormatDuration(timeout)));
    } else {
      result = waiter->status;
    }
  }
  waiters_.erase(id);
  if (!result.ok()) return result;
  return waiter->result;
}

void CommandBroker::OnResult(const std::string& agent,
                             const v1::Result& result) {
  if (result.command_id().empty()) return;
  absl::MutexLock l(&mu_);
  auto it = waiters_.find(result.command_id());
  // Only the agent that was asked can answer.
  if (it == waiters_.end() || it->second->agent != agent) return;
  it->second->result = result;
  it->second->done = true;
}

void CommandBroker::OnCommandStatus(const std::string& agent,
                                    const v1::CommandStatus& status) {
  if (status.accepted()) return;
  absl::MutexLock l(&mu_);
  auto it = waiters_.find(status.command_id());
  if (it == waiters_.end() || it->second->agent != agent) return;
  it->second->status = absl::FailedPreconditionError(
      absl::StrCat("agent '", agent, "' refused: ", status.reason()));
  it->second->done = true;
}

}  // namespace netvigil::collector
