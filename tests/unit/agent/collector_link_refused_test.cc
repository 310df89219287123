// The agent's side of a refusal: an Ack carrying refused_seq is logged and
// counted (Heartbeat.refused_results), and the link goes on delivering what
// follows. A small in-process collector over real gRPC on loopback.
#include <map>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "agent/collector_link.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace netvigil::agent {
namespace {

class MemoryOutbox final : public Outbox {
 public:
  absl::StatusOr<uint64_t> Add(v1::Result r) override {
    absl::MutexLock l(&mu_);
    r.set_seq(next_++);
    rows_[r.seq()] = r;
    return r.seq();
  }
  absl::StatusOr<std::vector<v1::Result>> ReadAfter(uint64_t after,
                                                    size_t max_count,
                                                    size_t) override {
    absl::MutexLock l(&mu_);
    std::vector<v1::Result> out;
    for (auto it = rows_.upper_bound(after);
         it != rows_.end() && out.size() < max_count; ++it) {
      out.push_back(it->second);
    }
    return out;
  }
  absl::Status AckThrough(uint64_t seq) override {
    absl::MutexLock l(&mu_);
    rows_.erase(rows_.begin(), rows_.upper_bound(seq));
    return absl::OkStatus();
  }
  void WaitForResultsAfter(uint64_t, absl::Duration timeout) override {
    absl::SleepFor(std::min(timeout, absl::Milliseconds(10)));
  }
  absl::Status AdvanceNextSeqPast(uint64_t seq) override {
    absl::MutexLock l(&mu_);
    next_ = std::max(next_, seq + 1);
    return absl::OkStatus();
  }
  uint64_t next_seq() override {
    absl::MutexLock l(&mu_);
    return next_;
  }
  uint64_t pending() override {
    absl::MutexLock l(&mu_);
    return rows_.size();
  }
  uint64_t dropped_total() override { return 0; }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, v1::Result> rows_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
};

// Acknowledges every result; refuses seq 2 as the collector does.
class RefusingCollector final : public v1::Agent::Service {
 public:
  grpc::Status Stream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CollectorMessage, v1::AgentMessage>* stream)
      override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_hello()) return grpc::Status::CANCELLED;
    v1::CollectorMessage welcome;
    welcome.mutable_welcome()->set_agent_name(in.hello().agent_name());
    welcome.mutable_welcome()
        ->mutable_plan()
        ->mutable_heartbeat_interval()
        ->set_nanos(100'000'000);
    stream->Write(welcome);
    while (stream->Read(&in)) {
      if (in.has_heartbeat()) {
        absl::MutexLock l(&mu);
        refused_in_heartbeat =
            std::max(refused_in_heartbeat, in.heartbeat().refused_results());
      }
      if (!in.has_result()) continue;
      const uint64_t seq = in.result().seq();
      if (seq == 2) {
        v1::CollectorMessage notice;
        notice.mutable_ack()->set_refused_seq(2);
        notice.mutable_ack()->set_refused_reason("refused: speed: disabled");
        stream->Write(notice);
      }
      v1::CollectorMessage ack;
      ack.mutable_ack()->set_acked_through_seq(seq);
      stream->Write(ack);
      absl::MutexLock l(&mu);
      acked = seq;
    }
    return grpc::Status::OK;
  }

  absl::Mutex mu;
  uint64_t refused_in_heartbeat ABSL_GUARDED_BY(mu) = 0;
  uint64_t acked ABSL_GUARDED_BY(mu) = 0;
};

class NoHandler final : public LinkHandler {
 public:
  void OnWelcome(const v1::Welcome&) override {}
  void OnPlanUpdate(const v1::ProbePlan&) override {}
  v1::CommandStatus OnCommand(const v1::Command&) override { return {}; }
};

TEST(CollectorLinkRefusedTest, ARefusedResultIsCountedAndDeliveryGoesOn) {
  RefusingCollector collector;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&collector);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  MemoryOutbox outbox;
  for (int i = 0; i < 3; ++i) {
    v1::Result r;
    r.mutable_sockets();
    ASSERT_TRUE(outbox.Add(r).ok());
  }
  LinkOptions options;
  options.collector = absl::StrCat("127.0.0.1:", port);
  options.credentials = grpc::InsecureChannelCredentials();
  options.hello.set_agent_name("nas");
  NoHandler handler;
  CollectorLink link(options, outbox, handler, RealClock());
  std::thread run([&] { link.Run(); });

  const absl::Time until = absl::Now() + absl::Seconds(20);
  auto done = [&] {
    absl::MutexLock l(&collector.mu);
    return collector.acked >= 3 && collector.refused_in_heartbeat >= 1;
  };
  while (!done() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
  link.Stop();
  run.join();
  server->Shutdown();

  EXPECT_TRUE(done());
  EXPECT_EQ(link.refused_results(), 1u);
  EXPECT_EQ(outbox.pending(), 0u);  // 3 delivered past the refused 2
}

}  // namespace
}  // namespace netvigil::agent
