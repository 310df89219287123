// A whole Collector in the test's process, built from fakes: the FakeStore,
// a MemoryAlertStore, a ManualClock and an InProcessHost that serves the
// Agent and Query services on one gRPC server without a port, so a test
// talks to them through in-process channels as an agent and the CLI do.
// Plus an AgentStream: a scripted agent on one stream. Header-only, for
// the collector's tests (it needs the collector's libraries and gRPC).
// Thread-safe as stated per class.
#ifndef NETVIGIL_TESTS_TESTING_IN_PROCESS_COLLECTOR_H_
#define NETVIGIL_TESTS_TESTING_IN_PROCESS_COLLECTOR_H_

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/alerts/memory_alert_store.h"
#include "collector/analysis/analysis_options.h"
#include "collector/collector.h"
#include "collector/service_host.h"
#include "common/clock.h"
#include "common/collector_config.h"
#include "common/iperf_credentials.h"
#include "common/proto_time.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/agent.grpc.pb.h"
#include "netvigil/v1/query.grpc.pb.h"
#include "tests/testing/fake_store.h"

namespace netvigil::testing {

// Time that moves only when the test says (Advance), while SleepFor really
// sleeps a little (at most 5 ms) and leaves the time alone: the collector's
// background loops (the Agent service's reaper, the analysis ticker) keep
// turning without spinning, and nothing times out unless the test advances
// past it. (FakeClock advances on SleepFor, which would make the reaper
// race time forward.) Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void SleepFor(absl::Duration d) override {
    absl::SleepFor(std::min(d, absl::Milliseconds(5)));
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// Serves the collector's services on one in-process gRPC server (no port,
// no TLS: the Agent service then takes the agent's name from its Hello, as
// under --insecure). Thread-safe: Start once, then Shutdown.
class InProcessHost final : public collector::ServiceHost {
 public:
  ~InProcessHost() override { Shutdown(absl::Now() + absl::Seconds(2)); }

  absl::Status Start(const Services& services) override {
    absl::MutexLock l(&mu_);
    grpc::ServerBuilder b;
    b.RegisterService(services.agent);
    b.RegisterService(services.query);
    if (services.enroll != nullptr) b.RegisterService(services.enroll);
    server_ = b.BuildAndStart();
    if (server_ == nullptr) {
      return absl::InternalError("the in-process gRPC server did not start");
    }
    return absl::OkStatus();
  }
  void Shutdown(absl::Time deadline) override {
    absl::MutexLock l(&mu_);
    if (server_ == nullptr) return;
    server_->Shutdown(absl::ToChronoTime(deadline));
    server_.reset();
  }
  // A new channel to the server; null before Start and after Shutdown.
  std::shared_ptr<grpc::Channel> Channel() {
    absl::MutexLock l(&mu_);
    if (server_ == nullptr) return nullptr;
    return server_->InProcessChannel(grpc::ChannelArguments());
  }

 private:
  absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
};

// A started Collector on fakes. Construct, then Start(); the fakes are
// public for the test to switch and inspect.
struct InProcessCollector {
  // `prepare_database` stands for the migrations (unset: nothing to do).
  explicit InProcessCollector(
      CollectorConfig config = CollectorConfig(),
      std::function<absl::Status()> prepare_database = nullptr)
      : store(clock) {
    collector::CollectorParts parts;
    parts.prepare_database = std::move(prepare_database);
    parts.store = &store;
    parts.alerts = &alerts;
    parts.clock = &clock;
    parts.iperf_secrets = [] { return TestIperfSecrets(); };
    auto h = std::make_unique<InProcessHost>();
    host = h.get();
    parts.host = std::move(h);
    collector = std::make_unique<collector::Collector>(
        std::move(config), collector::AnalysisOptions(), /*insecure=*/true,
        std::move(parts));
  }
  ~InProcessCollector() { collector.reset(); }

  absl::Status Start() { return collector->Start(); }

  std::unique_ptr<v1::Agent::Stub> AgentStub() {
    return v1::Agent::NewStub(host->Channel());
  }
  std::unique_ptr<v1::Query::Stub> QueryStub() {
    return v1::Query::NewStub(host->Channel());
  }

  // Made once per process: an RSA key takes a moment.
  static absl::StatusOr<collector::IperfMeshSecrets> TestIperfSecrets() {
    static const absl::StatusOr<collector::IperfMeshSecrets> secrets =
        []() -> absl::StatusOr<collector::IperfMeshSecrets> {
      absl::StatusOr<IperfKeyPair> keys = NewIperfKeyPair();
      if (!keys.ok()) return keys.status();
      collector::IperfMeshSecrets s;
      s.rsa_private_pem = keys->private_pem;
      s.rsa_public_pem = keys->public_pem;
      s.user_secret = std::string(32, 'k');
      return s;
    }();
    return secrets;
  }

  ManualClock clock;
  FakeStore store;
  collector::MemoryAlertStore alerts;
  InProcessHost* host = nullptr;  // owned by the collector
  std::unique_ptr<collector::Collector> collector;
};

// One agent's stream, scripted by the test: Hello, then results and
// heartbeats; what the collector sends is collected by a reader thread.
// Thread-safe.
class AgentStream {
 public:
  AgentStream(v1::Agent::Stub& stub, const std::string& name,
              uint64_t next_seq = 1)
      : stream_(stub.Stream(&ctx_)), reader_([this] { ReadLoop(); }) {
    v1::AgentMessage m;
    m.mutable_hello()->set_agent_name(name);
    m.mutable_hello()->set_hostname(name);
    m.mutable_hello()->set_version("test");
    m.mutable_hello()->add_addresses("192.0.2.10");
    m.mutable_hello()->set_next_seq(next_seq);
    stream_->Write(m);
  }
  ~AgentStream() {
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
  }

  bool Send(const v1::AgentMessage& m) { return stream_->Write(m); }
  bool SendResult(const v1::Result& r) {
    v1::AgentMessage m;
    *m.mutable_result() = r;
    return Send(m);
  }
  // Ends the agent's side and returns the stream's status.
  grpc::Status Finish() {
    stream_->WritesDone();
    if (reader_.joinable()) reader_.join();
    absl::MutexLock l(&mu_);
    return status_;
  }
  // Waits for the collector to end the stream; its status, or CANCELLED
  // naming the wait when `timeout` passed first.
  grpc::Status AwaitEnd(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    const absl::Time deadline = absl::Now() + timeout;
    while (!done_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (!done_) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "test: the stream did not end in time");
    }
    return status_;
  }

  // Waits until a received message satisfies `pred` (true) or `timeout`.
  template <typename Pred>
  bool Await(Pred pred, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto met = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const v1::CollectorMessage& m : received_) {
        if (pred(m)) return true;
      }
      return false;
    };
    const absl::Time deadline = absl::Now() + timeout;
    while (!met()) {
      if (done_ || cv_.WaitWithDeadline(&mu_, deadline)) return met();
    }
    return true;
  }
  bool AwaitAckThrough(uint64_t seq, absl::Duration timeout) {
    return Await(
        [seq](const v1::CollectorMessage& m) {
          return m.has_ack() && m.ack().acked_through_seq() >= seq;
        },
        timeout);
  }
  bool AwaitWelcome(absl::Duration timeout) {
    return Await([](const v1::CollectorMessage& m) { return m.has_welcome(); },
                 timeout);
  }
  std::vector<v1::CollectorMessage> received() {
    absl::MutexLock l(&mu_);
    return received_;
  }
  // acked_through_seq of every Ack received, in order (refusal notices,
  // which carry none, left out).
  std::vector<uint64_t> acks() {
    absl::MutexLock l(&mu_);
    std::vector<uint64_t> out;
    for (const auto& m : received_) {
      if (m.has_ack() && m.ack().refused_seq() == 0) {
        out.push_back(m.ack().acked_through_seq());
      }
    }
    return out;
  }

 private:
  void ReadLoop() {
    v1::CollectorMessage m;
    while (stream_->Read(&m)) {
      absl::MutexLock l(&mu_);
      received_.push_back(m);
      cv_.SignalAll();
    }
    grpc::Status s = stream_->Finish();
    absl::MutexLock l(&mu_);
    status_ = s;
    done_ = true;
    cv_.SignalAll();
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentMessage, v1::CollectorMessage>>
      stream_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<v1::CollectorMessage> received_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

// A valid path result of `seq` produced at `at`.
inline v1::Result PathResult(uint64_t seq, absl::Time at,
                             const std::string& target = "192.0.2.1",
                             double loss = 0) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = ToProtoTime(at);
  v1::PathRun* p = r.mutable_path();
  p->set_target(target);
  p->set_resolved_address(target);
  p->set_ip_version(4);
  *p->mutable_started_at() = ToProtoTime(at - absl::Seconds(10));
  *p->mutable_finished_at() = ToProtoTime(at);
  p->set_count(10);
  v1::PathHop* h = p->add_hops();
  h->set_ttl(1);
  h->set_sent(10);
  h->set_received(10 - static_cast<uint32_t>(loss / 10));
  h->set_loss_percent(loss);
  h->set_avg_ms(1.5);
  h->set_is_destination(true);
  h->add_addresses()->set_address(target);
  p->set_destination_reached(true);
  *p->mutable_destination() = *h;
  return r;
}

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_IN_PROCESS_COLLECTOR_H_
