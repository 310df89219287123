// The Agent gRPC service: one bidirectional stream per agent (Envoy HDS
// style). Hello, then the Welcome with the plan and the last committed
// sequence number; then heartbeats and results up, acknowledgements and
// commands down. Results go through the IngestPipeline: stored in batches,
// acknowledged only after the transaction holding them has committed, and
// reading stops while the pipeline is full (back-pressure on a slow or
// absent database).
//
// Refusals. A result that can never be stored (it fails validation or its
// binding to the sender and plan) is not a reason to stop the agent: the
// collector stores a gap record in its place (same sequence number, count 1,
// reason "refused: <why>"), tells the agent in an Ack carrying refused_seq
// and the reason, and reading goes on. What cannot be acknowledged as a
// number (a sequence number outside 1..kMaxSeq, a message that does not
// parse) ends the stream with a status naming the agent and the reason.
// Times: see NormaliseResultTimes (validation.h); sessions' liveness runs on
// the monotonic clock.
// Thread-safe: gRPC calls Stream() from many threads.
#ifndef NETVIGIL_COLLECTOR_INGEST_AGENT_SERVICE_H_
#define NETVIGIL_COLLECTOR_INGEST_AGENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "collector/ingest/ingest_pipeline.h"
#include "collector/ingest/session_registry.h"
#include "collector/store/cert_store.h"
#include "collector/store/store.h"
#include "common/clock.h"
#include "netvigil/v1/agent.grpc.pb.h"

namespace netvigil::collector {

struct AgentServiceOptions {
  v1::ProbePlan plan;
  absl::Duration heartbeat_timeout = absl::Seconds(20);
  // Without TLS the agent's name comes from its Hello (tests only).
  bool insecure = false;
  // Fills the Welcome's plan (the agent's own: its peers and iperf3 users)
  // and iperf3 credentials. Unset: `plan`, no credentials. An error refuses
  // the stream with it (the agent retries).
  std::function<absl::Status(const std::string& agent, v1::Welcome*)>
      complete_welcome;
  // With TLS: every stream's certificate must be one this collector issued
  // to that agent and not revoked. Not owned; null skips the check (tests).
  CertStore* certs = nullptr;
  IngestPipelineOptions ingest;
  // Called with each heartbeat's clock offset (the agent's wall clock minus
  // the collector's at receipt), on the stream's thread.
  std::function<void(const std::string& agent, absl::Duration offset)>
      on_clock_offset;
};

class AgentService final : public v1::Agent::Service {
 public:
  // `store`, `clock` and `sessions` are not owned and must outlive this.
  AgentService(AgentServiceOptions options, Store& store, Clock& clock,
               SessionRegistry& sessions);
  ~AgentService() override;

  grpc::Status Stream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CollectorMessage, v1::AgentMessage>* stream)
      override;

  // Called for every committed result (analysis, command replies), on an
  // ingest writer thread. Add observers before the server starts.
  void AddResultObserver(IngestPipeline::Observer fn) {
    pipeline_.AddObserver(std::move(fn));
  }
  IngestStats ingest_stats() { return pipeline_.stats(); }
  // Called for every command status an agent sends.
  void AddCommandStatusObserver(
      std::function<void(const std::string& agent, const v1::CommandStatus&)>
          fn) {
    status_observers_.push_back(std::move(fn));
  }

 private:
  // The agent's identity: from its verified certificate (whose serial goes
  // to `serial`), or (insecure) its Hello.
  absl::StatusOr<std::string> Identity(grpc::ServerContext* ctx,
                                       const v1::Hello& hello,
                                       std::string* serial);
  void ReapLoop();

  const AgentServiceOptions options_;
  Store& store_;
  Clock& clock_;
  SessionRegistry& sessions_;
  std::vector<std::function<void(const std::string&, const v1::CommandStatus&)>>
      status_observers_;
  IngestPipeline pipeline_;
  std::atomic<uint64_t> next_session_{1};
  absl::Notification stop_;
  std::thread reaper_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_AGENT_SERVICE_H_
