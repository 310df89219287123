// An in-memory Store for tests of the collector's core (ingest pipeline,
// Agent and Query services, the Collector built from injected parts), with
// switches that make it misbehave as a database does: down for the next N
// commits, refusing a commit, slow, or holding commits until released.
// Thread-safe.
//
// What it keeps: agents (as AgentConnected/AgentSeen record them) and every
// committed result, idempotently on (agent, seq), with each agent's
// acked-through sequence number computed as PgStore does (the highest
// sequence number ever committed for it). History queries are answered
// from those results for paths and speed; socket and file history (facts,
// first/last seen) are not modelled and answer UNIMPLEMENTED, so a test of
// them needs the real store (tests/unit/collector/store/*_test.cc).
#ifndef NETVIGIL_TESTS_TESTING_FAKE_STORE_H_
#define NETVIGIL_TESTS_TESTING_FAKE_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/store/store.h"
#include "common/clock.h"

namespace netvigil::testing {

class FakeStore final : public collector::Store {
 public:
  // `clock` judges ListAgents' online state (PgStore asks the database's
  // clock); not owned.
  explicit FakeStore(Clock& clock = RealClock()) : clock_(clock) {}

  // --- switches

  // The next `n` StoreBatch calls fail with UNAVAILABLE (a database outage)
  // and commit nothing; so does every other call while any are left.
  void FailNextCommitsUnavailable(int n) ABSL_LOCKS_EXCLUDED(mu_);
  // Every StoreBatch holding `seq` of `agent` fails with `status` (not
  // UNAVAILABLE: the database refuses that result), commits nothing.
  void RefuseResult(const std::string& agent, uint64_t seq, absl::Status status)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every StoreBatch takes at least `d` (real time) before it commits.
  void SetCommitDelay(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  // While held, StoreBatch waits (before committing anything) until
  // ReleaseCommits(); a test thus sees the state "received, not committed".
  void HoldCommits() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseCommits() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until at least `n` StoreBatch calls are waiting in HoldCommits,
  // or `timeout` (real time) passes; true if they are.
  bool AwaitHeldCommits(int n, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until `agent` has committed through `seq` or `timeout` passes.
  bool AwaitCommitted(const std::string& agent, uint64_t seq,
                      absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // --- what happened

  // The results committed for `agent`, in commit order.
  std::vector<v1::Result> Committed(const std::string& agent)
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t AckedThrough(const std::string& agent) ABSL_LOCKS_EXCLUDED(mu_);
  // StoreBatch calls: all of them, and those that committed.
  int commit_attempts() ABSL_LOCKS_EXCLUDED(mu_);
  int commits() ABSL_LOCKS_EXCLUDED(mu_);
  // The most StoreBatch calls that ran at once, and the most results one
  // call carried.
  int max_concurrent_commits() ABSL_LOCKS_EXCLUDED(mu_);
  size_t max_batch_results() ABSL_LOCKS_EXCLUDED(mu_);
  // Speed results the collector recorded itself.
  std::vector<v1::SpeedResult> collector_speed_results()
      ABSL_LOCKS_EXCLUDED(mu_);

  // --- Store
  absl::Status Ping() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<uint64_t> AgentConnected(const v1::Hello& hello,
                                          const std::string& session_id,
                                          absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AgentSeen(const std::string& name, const std::string& session_id,
                         absl::Time now) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AgentDisconnected(const std::string& name,
                                 const std::string& session_id,
                                 absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents(
      absl::Duration timeout) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::map<std::string, uint64_t>> StoreBatch(
      const std::vector<IngestItem>& items) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status StoreCollectorSpeedResult(const v1::SpeedResult& result) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<RetentionStats> ApplyRetention(const RetentionPolicy& policy,
                                                absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<v1::PathSummary>> LatestPaths(
      const std::string& agent) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::map<std::string, std::vector<v1::PathSummary>>>
  LatestPathsOfAll() override ABSL_LOCKS_EXCLUDED(mu_);
  // Raw runs only (the fake keeps no aggregates), each marked RAW.
  using Store::PathHistory;
  absl::StatusOr<v1::PathHistoryResponse> PathHistory(
      const std::string& agent, const std::string& target,
      const HistoryQuery& q) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::CurrentSocketsResponse> CurrentSockets(
      const std::string& agent) override;
  absl::StatusOr<v1::SocketChangesResponse> SocketChanges(
      const std::string& agent, int64_t since_us) override;
  absl::StatusOr<v1::FileAccessResponse> FileAccess(const std::string& agent,
                                                    int64_t since_us) override;
  absl::StatusOr<v1::SpeedMatrixResponse> SpeedMatrix() override
      ABSL_LOCKS_EXCLUDED(mu_);
  using Store::SpeedHistory;
  absl::StatusOr<v1::SpeedHistoryResponse> SpeedHistory(
      const std::string& client, const std::string& server,
      const HistoryQuery& q) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Agent {
    v1::AgentInfo info;  // name, hostname, addresses, version, times
    std::string session_id;
    absl::Time last_seen;
    uint64_t acked_through = 0;
    std::vector<v1::Result> results;  // committed, in commit order
  };

  // UNAVAILABLE while the store is "down" (any FailNextCommitsUnavailable
  // left), consuming one for StoreBatch only.
  absl::Status Down(bool consume) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The agent's record, once the database is up (Down) and the agent known:
  // what every per-agent read checks first.
  absl::StatusOr<const Agent*> Find(const std::string& agent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock& clock_;
  absl::Mutex mu_;
  absl::CondVar changed_;
  std::map<std::string, Agent> agents_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SpeedResult> collector_speed_ ABSL_GUARDED_BY(mu_);
  int down_for_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, uint64_t>, absl::Status> refused_
      ABSL_GUARDED_BY(mu_);
  absl::Duration delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_in_hold_ ABSL_GUARDED_BY(mu_) = 0;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_batch_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAKE_STORE_H_
