// No store write while the Analyzer's lock is held: state rows, alert rows
// and event rows are queued under it and written after it is released
// (Flush), in queue order. The store here checks, at every write, that
// another thread can take the lock (Analyzer::Open) meanwhile.
#include <chrono>
#include <future>

#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;

class ProbingStore final : public AlertStore {
 public:
  void set_analyzer(Analyzer* a) { analyzer_ = a; }
  int writes() const { return writes_; }
  int locked_writes() const { return locked_; }
  MemoryAlertStore& inner() { return inner_; }

  absl::StatusOr<int64_t> SaveAlert(const v1::Alert& alert) override {
    Probe();
    return inner_.SaveAlert(alert);
  }
  absl::StatusOr<std::vector<int64_t>> ReserveAlertIds(size_t n) override {
    return inner_.ReserveAlertIds(n);
  }
  absl::Status AppendEvent(const v1::AlertEvent& event) override {
    Probe();
    return inner_.AppendEvent(event);
  }
  absl::StatusOr<std::vector<v1::Alert>> UnresolvedAlerts() override {
    return inner_.UnresolvedAlerts();
  }
  absl::StatusOr<v1::Alert> GetAlert(int64_t id) override {
    return inner_.GetAlert(id);
  }
  absl::StatusOr<std::vector<v1::Alert>> RecentAlerts(int64_t since_us,
                                                      uint32_t limit) override {
    return inner_.RecentAlerts(since_us, limit);
  }
  absl::StatusOr<std::vector<AnalysisStateRow>> LoadState() override {
    return inner_.LoadState();
  }
  absl::Status PutState(const AnalysisStateRow& row) override {
    Probe();
    return inner_.PutState(row);
  }
  absl::Status PutStates(const std::vector<AnalysisStateRow>& rows) override {
    Probe();
    return inner_.PutStates(rows);
  }

 private:
  // Can another thread take the Analyzer's lock now? A write made under it
  // would keep Open() waiting. (A future that did not finish is kept, so
  // its destructor does not wait here while the lock may be held.)
  void Probe() {
    ++writes_;
    if (analyzer_ == nullptr || locked_ > 0) return;
    Analyzer* a = analyzer_;
    pending_.push_back(std::async(std::launch::async, [a] { a->Open(); }));
    if (pending_.back().wait_for(std::chrono::seconds(2)) !=
        std::future_status::ready) {
      ++locked_;
    }
  }

  MemoryAlertStore inner_;
  Analyzer* analyzer_ = nullptr;
  int writes_ = 0;
  int locked_ = 0;
  std::vector<std::future<void>> pending_;
};

TEST(AnalysisUnlockedWritesTest, NoWriteHoldsTheLockAndEventsKeepTheirOrder) {
  ::netvigil::testing::FakeClock clock;
  ProbingStore store;
  Analyzer analyzer(TestOptions(), store, clock);
  ASSERT_TRUE(analyzer.Load().ok());
  store.set_analyzer(&analyzer);
  const Sock ssh{.lport = 22, .exe = "/usr/sbin/sshd"};
  const Sock web{.lport = 8080, .exe = "/usr/bin/python3.11"};
  uint64_t seq = 0;
  auto send = [&](const std::string& agent, v1::Result r) {
    r.set_seq(++seq);
    analyzer.OnResult(agent, r);
  };
  send("a", SocketsResult({ssh}));
  send("a", SocketsResult({ssh, web}));  // opened
  send("b", SocketsResult({ssh}));
  send("b", SocketsResult({ssh, web}));  // updated: two hosts
  v1::Result gap;
  gap.mutable_gap()->set_count(2);
  gap.mutable_gap()->set_reason("over_cap");
  send("a", gap);
  const std::vector<v1::Alert> open = analyzer.Open();
  ASSERT_EQ(open.size(), 2u);
  ASSERT_TRUE(analyzer.Ack(open[0].id(), "ann").ok());
  send("a", SocketsResult({ssh}));
  send("b", SocketsResult({ssh}));  // resolved
  analyzer.Tick();

  EXPECT_GT(store.writes(), 10);
  EXPECT_EQ(store.locked_writes(), 0) << "a store write held the lock";
  EXPECT_EQ(analyzer.counters().store_errors, 0u);
  // Each alert's events are in the store in the order they happened, and
  // its row is the last state.
  std::map<int64_t, std::vector<v1::AlertEvent::Type>> by_alert;
  for (const auto& e : store.inner().events()) {
    by_alert[e.alert().id()].push_back(e.type());
  }
  EXPECT_THAT(
      by_alert[open[0].id()],
      ElementsAre(v1::AlertEvent::TYPE_OPENED, v1::AlertEvent::TYPE_UPDATED,
                  v1::AlertEvent::TYPE_ACKNOWLEDGED,
                  v1::AlertEvent::TYPE_RESOLVED));
  absl::StatusOr<v1::Alert> stored = store.inner().GetAlert(open[0].id());
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->has_resolved_at());
  EXPECT_TRUE(stored->acknowledged());
  EXPECT_EQ(stored->hosts_size(), 2);
}

}  // namespace
}  // namespace netvigil::collector::testing
