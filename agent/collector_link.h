// The agent's side of the Agent stream: connect, hello, welcome, then
// heartbeats and results up, acknowledgements and commands down; after any
// failure reconnect with exponential backoff and jitter and resume after the
// last acknowledged sequence number. Thread-safe: Run() on one thread,
// Stop() from any.
#ifndef NETVIGIL_AGENT_COLLECTOR_LINK_H_
#define NETVIGIL_AGENT_COLLECTOR_LINK_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/outbox.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/agent.grpc.pb.h"

namespace netvigil::agent {

struct LinkOptions {
  std::string collector;  // host:port
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // With TLS: the name the collector's certificate must carry (pinned at
  // enrollment), whatever address `collector` is.
  std::string ssl_target_name;
  v1::Hello hello;  // next_seq is filled in per attempt
  Backoff::Options backoff;
  absl::Duration connect_timeout = absl::Seconds(10);
  // Results in flight without an ack; bounds how fast a backlog drains so
  // live results are not queued behind a long one.
  size_t max_unacked = 64;
  // Results older than `backlog_after` (spooled while the collector was
  // away) go at most this many bytes per second (see backlog_pacer.h).
  size_t backlog_bytes_per_second = 4 << 20;
  absl::Duration backlog_after = absl::Seconds(60);
  // A session that lasted this long resets the backoff.
  absl::Duration stable_after = absl::Seconds(10);
};

// What the link hands to the rest of the agent.
class LinkHandler {
 public:
  virtual ~LinkHandler() = default;
  virtual void OnWelcome(const v1::Welcome& welcome) = 0;
  virtual void OnPlanUpdate(const v1::ProbePlan& plan) = 0;
  // Runs on the link's reader thread: hand long work to another thread.
  // Whatever it returns is sent back as the command's status.
  virtual v1::CommandStatus OnCommand(const v1::Command& command) = 0;
  // Adds the handler's counters to a heartbeat about to be sent.
  virtual void FillHeartbeat(v1::Heartbeat* heartbeat) { (void)heartbeat; }
};

class CollectorLink {
 public:
  // `outbox`, `handler` and `clock` are not owned.
  CollectorLink(LinkOptions options, Outbox& outbox, LinkHandler& handler,
                Clock& clock);

  // Connects and reconnects until Stop().
  void Run();
  void Stop();

  // Why the last attempt failed, classified ("unreachable", "refused:
  // ALREADY_EXISTS", ...); empty when connected.
  std::string last_failure_class() ABSL_LOCKS_EXCLUDED(mu_);
  bool connected() const { return connected_.load(); }
  // Results the collector acknowledged as refused (Ack.refused_seq).
  uint64_t refused_results() const { return refused_results_.load(); }

  // One attempt: returns when the stream ends. Public for tests.
  grpc::Status RunSession();

 private:
  void ReportFailure(const grpc::Status& status);

  const LinkOptions options_;
  Outbox& outbox_;
  LinkHandler& handler_;
  Clock& clock_;
  Backoff backoff_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> refused_results_{0};
  absl::Mutex mu_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string last_class_ ABSL_GUARDED_BY(mu_);
  int same_class_count_ ABSL_GUARDED_BY(mu_) = 0;
};

// The failure class of a status, for one log line per class, not per try.
std::string FailureClass(const grpc::Status& status);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_COLLECTOR_LINK_H_
