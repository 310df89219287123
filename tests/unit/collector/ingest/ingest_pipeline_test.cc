// The ingest pipeline (collector/ingest/ingest_pipeline.h) on the fake
// store: acknowledged only after the commit, an outage holds every ack
// back and loses nothing, a busy writer gathers a batch (group commit),
// a slow store holds the streams within the byte budgets, a result the database
// refuses is never acknowledged.
#include "collector/ingest/ingest_pipeline.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "collector/ingest/session_registry.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_store.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeStore;
using ::testing::ElementsAre;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
constexpr absl::Duration kWait = absl::Seconds(20);

// What the pipeline sent one agent, with what the store had committed for
// that agent at the moment each ack was sent.
struct Sent {
  uint64_t acked_through;
  uint64_t committed_when_sent;
};

class Recorder {
 public:
  Recorder(FakeStore& store, const std::string& name)
      : store_(store), name_(name) {}

  std::shared_ptr<AgentSession> Session() {
    return std::make_shared<AgentSession>(
        name_, name_ + "-session", "test",
        [this](const v1::CollectorMessage& m) {
          if (!m.has_ack()) return true;
          // Read before taking our lock: the store's own lock is not held
          // by the caller (the pipeline acks after StoreBatch returned).
          const uint64_t committed = store_.AckedThrough(name_);
          absl::MutexLock l(&mu_);
          sent_.push_back({m.ack().acked_through_seq(), committed});
          cv_.SignalAll();
          return true;
        },
        [this] {
          absl::MutexLock l(&mu_);
          cancelled_ = true;
          cv_.SignalAll();
        },
        kNow);
  }

  std::vector<Sent> sent() {
    absl::MutexLock l(&mu_);
    return sent_;
  }
  std::vector<uint64_t> acks() {
    std::vector<uint64_t> out;
    for (const Sent& s : sent()) out.push_back(s.acked_through);
    return out;
  }
  bool AwaitAck(uint64_t seq, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto met = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !sent_.empty() && sent_.back().acked_through >= seq;
    };
    const absl::Time deadline = absl::Now() + timeout;
    while (!met()) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return met();
    }
    return true;
  }
  bool AwaitCancelled(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    const absl::Time deadline = absl::Now() + timeout;
    while (!cancelled_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return cancelled_;
    }
    return true;
  }

 private:
  FakeStore& store_;
  const std::string name_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

v1::Result Result(uint64_t seq, size_t padding = 0) {
  v1::Result r;
  r.set_seq(seq);
  *r.mutable_produced_at() = ToProtoTime(kNow);
  r.mutable_path()->set_target("192.0.2.1");
  if (padding > 0) r.mutable_path()->set_error(std::string(padding, 'x'));
  return r;
}

IngestPipelineOptions FastRetries() {
  IngestPipelineOptions o;
  o.retry_initial = absl::Milliseconds(1);
  o.retry_max = absl::Milliseconds(5);
  return o;
}

void Connect(FakeStore& store, const std::string& name) {
  v1::Hello hello;
  hello.set_agent_name(name);
  ASSERT_TRUE(store.AgentConnected(hello, name + "-session", kNow).ok());
}

std::vector<uint64_t> Seqs(const std::vector<v1::Result>& results) {
  std::vector<uint64_t> out;
  for (const auto& r : results) out.push_back(r.seq());
  return out;
}

TEST(IngestPipelineTest, AcknowledgesOnlyAfterTheCommit) {
  FakeStore store;
  Connect(store, "a");
  Recorder rec(store, "a");
  IngestPipeline pipeline(FastRetries(), store);
  auto session = rec.Session();
  store.HoldCommits();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(pipeline.Submit(session, Result(seq), [] { return false; }));
  }
  // The writer has the batch and is inside StoreBatch, which has not
  // committed: no ack may have gone out, however long we wait.
  ASSERT_TRUE(store.AwaitHeldCommits(1, kWait));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(rec.sent().empty());
  EXPECT_EQ(store.AckedThrough("a"), 0u);

  store.ReleaseCommits();
  ASSERT_TRUE(rec.AwaitAck(3, kWait));
  for (const Sent& s : rec.sent()) {
    // Every ack names only what the store had committed when it was sent.
    EXPECT_LE(s.acked_through, s.committed_when_sent);
  }
  EXPECT_THAT(Seqs(store.Committed("a")), ElementsAre(1, 2, 3));
}

TEST(IngestPipelineTest, ABusyWriterGathersABatchAnIdleOneCommitsAtOnce) {
  FakeStore store;
  Connect(store, "a");
  Recorder rec(store, "a");
  IngestPipelineOptions options = FastRetries();
  options.shards = 1;
  options.linger = absl::Seconds(3);
  options.linger_results = 8;
  IngestPipeline pipeline(options, store);
  auto session = rec.Session();
  // Idle: the first result does not wait for company.
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(pipeline.Submit(session, Result(1), [] { return false; }));
  ASSERT_TRUE(rec.AwaitAck(1, kWait));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  EXPECT_EQ(store.commits(), 1);
  // Busy (it committed a moment ago): the next results wait for each other
  // and go in one transaction, not eight.
  for (uint64_t seq = 2; seq <= 9; ++seq) {
    ASSERT_TRUE(pipeline.Submit(session, Result(seq), [] { return false; }));
  }
  ASSERT_TRUE(rec.AwaitAck(9, kWait));
  EXPECT_EQ(store.commits(), 2);
  EXPECT_EQ(store.max_batch_results(), 8u);
  EXPECT_THAT(Seqs(store.Committed("a")),
              ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
}

TEST(IngestPipelineTest, AnOutageHoldsEveryAckAndLosesNothing) {
  FakeStore store;
  Connect(store, "a");
  Recorder rec(store, "a");
  IngestPipelineOptions options = FastRetries();
  options.shards = 1;
  IngestPipeline pipeline(options, store);
  auto session = rec.Session();
  // Down for the next 5 commits: each attempt is refused as UNAVAILABLE.
  store.FailNextCommitsUnavailable(5);
  constexpr uint64_t kResults = 40;
  for (uint64_t seq = 1; seq <= kResults; ++seq) {
    ASSERT_TRUE(pipeline.Submit(session, Result(seq), [] { return false; }));
  }
  ASSERT_TRUE(rec.AwaitAck(kResults, kWait));
  // The five refused attempts happened and were retried.
  EXPECT_GE(store.commit_attempts(), 5 + 1);
  const std::vector<Sent> sent = rec.sent();
  ASSERT_FALSE(sent.empty());
  uint64_t last = 0;
  for (const Sent& s : sent) {
    // Nothing acknowledged that was not committed, and each ack moves on:
    // in order, never the same number twice.
    EXPECT_LE(s.acked_through, s.committed_when_sent);
    EXPECT_GT(s.acked_through, last);
    last = s.acked_through;
  }
  EXPECT_EQ(last, kResults);
  // Every result stored once, in order.
  std::vector<uint64_t> want;
  for (uint64_t seq = 1; seq <= kResults; ++seq) want.push_back(seq);
  EXPECT_EQ(Seqs(store.Committed("a")), want);
}

TEST(IngestPipelineTest, NothingIsAcknowledgedWhileTheDatabaseIsDown) {
  FakeStore store;
  Connect(store, "a");
  Recorder rec(store, "a");
  IngestPipeline pipeline(FastRetries(), store);
  auto session = rec.Session();
  // Down "for good" (until the test says): attempts keep failing.
  store.FailNextCommitsUnavailable(1'000'000);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(pipeline.Submit(session, Result(seq), [] { return false; }));
  }
  const absl::Time deadline = absl::Now() + kWait;
  while (store.commit_attempts() < 10 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(store.commit_attempts(), 10);
  EXPECT_TRUE(rec.sent().empty());
  EXPECT_EQ(store.commits(), 0);

  store.FailNextCommitsUnavailable(0);  // the database is back
  ASSERT_TRUE(rec.AwaitAck(5, kWait));
  // The batch the writer held through the outage first, then the rest:
  // each number once, in order.
  const std::vector<uint64_t> acks = rec.acks();
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_GT(acks[i], acks[i - 1]);
  EXPECT_EQ(acks.back(), 5u);
  EXPECT_THAT(Seqs(store.Committed("a")), ElementsAre(1, 2, 3, 4, 5));
}

// Four agents' streams submit 60 results of 4 KB each to a store that
// takes 20 ms a commit; returns the most queued and in-flight bytes seen.
struct SlowRun {
  size_t max_queued = 0;
  size_t max_inflight = 0;
  int64_t budget_waits = 0;
  size_t one_result = 0;  // bytes of one result as the pipeline counts it
};

SlowRun RunAgainstASlowStore(const IngestPipelineOptions& options) {
  FakeStore store;
  constexpr int kAgents = 4;
  constexpr uint64_t kPerAgent = 60;
  constexpr size_t kPadding = 4'000;
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < kAgents; ++i) {
    const std::string name = "agent-" + std::to_string(i);
    Connect(store, name);
    recs.push_back(std::make_unique<Recorder>(store, name));
  }
  IngestPipeline pipeline(options, store);
  store.SetCommitDelay(absl::Milliseconds(20));

  std::atomic<bool> done{false};
  std::atomic<size_t> max_queued{0}, max_inflight{0};
  std::thread sampler([&] {
    while (!done.load()) {
      IngestStats s = pipeline.stats();
      max_queued = std::max<size_t>(max_queued.load(), s.queued_bytes);
      max_inflight = std::max<size_t>(max_inflight.load(), s.inflight_bytes);
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  std::atomic<int> submitted{0};
  std::vector<std::thread> streams;
  for (int i = 0; i < kAgents; ++i) {
    streams.emplace_back([&, i] {
      auto session = recs[i]->Session();
      for (uint64_t seq = 1; seq <= kPerAgent; ++seq) {
        if (!pipeline.Submit(session, Result(seq, kPadding),
                             [] { return false; })) {
          return;
        }
        ++submitted;
      }
    });
  }
  // The store takes 20 ms a batch: the streams cannot all be through
  // after 100 ms. They are held back, not buffered.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_LT(submitted.load(), kAgents * static_cast<int>(kPerAgent));
  for (auto& t : streams) t.join();
  for (auto& r : recs) EXPECT_TRUE(r->AwaitAck(kPerAgent, kWait));
  done = true;
  sampler.join();
  EXPECT_EQ(pipeline.stats().inflight_bytes, 0u);

  // No ack lost: every agent's results all stored, once, in order, and its
  // last ack names the last one.
  std::vector<uint64_t> want;
  for (uint64_t seq = 1; seq <= kPerAgent; ++seq) want.push_back(seq);
  for (int i = 0; i < kAgents; ++i) {
    const std::string name = "agent-" + std::to_string(i);
    EXPECT_EQ(Seqs(store.Committed(name)), want) << name;
    const std::vector<uint64_t> acks = recs[i]->acks();
    EXPECT_FALSE(acks.empty()) << name;
    if (!acks.empty()) {
      EXPECT_EQ(acks.back(), kPerAgent) << name;
    }
    for (const Sent& s : recs[i]->sent()) {
      EXPECT_LE(s.acked_through, s.committed_when_sent) << name;
    }
  }
  SlowRun out;
  out.max_queued = max_queued.load();
  out.max_inflight = max_inflight.load();
  out.budget_waits = pipeline.stats().budget_waits;
  out.one_result = Result(1, kPadding).ByteSizeLong() + 256;
  return out;
}

TEST(IngestPipelineTest, ASlowStoreHoldsTheQueueWithinItsBudget) {
  IngestPipelineOptions options = FastRetries();
  options.shards = 2;
  options.max_queued_bytes = 32 << 10;  // 16 KiB a shard: 4 results
  options.inflight.total = 1 << 20;     // not the bound here
  options.inflight.per_agent = 1 << 20;
  const SlowRun run = RunAgainstASlowStore(options);
  // Within the shards' budget, plus the one result an empty queue always
  // takes; without the bound the streams would queue all 960 KB.
  EXPECT_LE(run.max_queued, options.max_queued_bytes + 2 * run.one_result);
}

TEST(IngestPipelineTest, ASlowStoreHoldsMemoryWithinTheInflightBudget) {
  IngestPipelineOptions options = FastRetries();
  options.shards = 2;
  options.max_queued_bytes = 16 << 20;  // not the bound here
  options.inflight.total = 48 << 10;
  options.inflight.per_agent = 24 << 10;
  options.inflight.large = 1 << 20;
  options.inflight.small_reserve = 0;
  const SlowRun run = RunAgainstASlowStore(options);
  // Queued, being committed or being observed: every result's bytes are
  // counted until it is gone, and the streams waited for room.
  EXPECT_LE(run.max_inflight, options.inflight.total);
  EXPECT_GT(run.budget_waits, 0);
}

TEST(IngestPipelineTest, AResultTheDatabaseRefusesIsNeverAcknowledged) {
  FakeStore store;
  Connect(store, "a");
  Connect(store, "b");
  Recorder a(store, "a"), b(store, "b");
  IngestPipelineOptions options = FastRetries();
  options.shards = 1;  // both agents in one batch
  IngestPipeline pipeline(options, store);
  auto sa = a.Session();
  auto sb = b.Session();
  store.RefuseResult("a", 2, absl::InvalidArgumentError("value too long"));
  store.HoldCommits();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(pipeline.Submit(sa, Result(seq), [] { return false; }));
    ASSERT_TRUE(pipeline.Submit(sb, Result(seq), [] { return false; }));
  }
  store.ReleaseCommits();
  // The batch is split until the refused result stands alone: the other
  // agent's results and a's first are stored and acknowledged.
  ASSERT_TRUE(b.AwaitAck(3, kWait));
  ASSERT_TRUE(a.AwaitCancelled(kWait));
  EXPECT_THAT(Seqs(store.Committed("b")), ElementsAre(1, 2, 3));
  EXPECT_THAT(Seqs(store.Committed("a")), ElementsAre(1));
  // a's session was ended (its agent resends later); nothing at or past
  // the refused result was acknowledged to it.
  for (uint64_t acked : a.acks()) EXPECT_LT(acked, 2u);
  EXPECT_EQ(store.AckedThrough("a"), 1u);
}

}  // namespace
}  // namespace netvigil::collector
