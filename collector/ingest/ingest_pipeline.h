// Between the agents' streams and PostgreSQL: results are queued per shard
// (an agent always lands in the same shard, so its results stay in order),
// and one writer thread per shard stores what has queued up as one batch in
// one transaction, then acknowledges each agent of the batch. The streams do
// not wait for the commit; they wait only while the queue is over its byte
// budget, which stops them reading (gRPC flow control then stops the agents)
// while the database is slow or down, so memory stays bounded.
//
// A batch that fails for a database outage is retried with backoff until it
// commits or the pipeline stops; queued results are never acknowledged
// without a commit, so a collector killed with a full queue loses nothing
// (the agents resend from their spools). A batch refused by the database
// itself is split, and a result that fails on its own is not acknowledged:
// its agent's session is cancelled so the agent sends it again later.
//
// Memory: every result holds a reservation of the in-flight budget
// (inflight_budget.h) until the last reference to it goes, after storage
// and analysis. The Agent service reserves before parsing (the estimate of
// what parsing costs) and hands the reservation in; a result submitted
// without one reserves its wire size here.
// Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_INGEST_PIPELINE_H_
#define NETVIGIL_COLLECTOR_INGEST_INGEST_PIPELINE_H_

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collector/ingest/inflight_budget.h"
#include "collector/ingest/session_registry.h"
#include "collector/store/store.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

struct IngestPipelineOptions {
  int shards = 4;
  size_t max_batch_results = 256;
  size_t max_batch_bytes = 16 << 20;
  // Over all shards: a stream blocks while its shard holds more than its
  // share of this.
  size_t max_queued_bytes = 32 << 20;
  // Group commit: a writer whose last commit ended less than `linger` ago
  // (it is busy) waits up to `linger` for `linger_results` to queue before
  // it commits. A transaction costs the database about the same for two
  // results as for twenty (its statements are set-based; parse, plan, WAL
  // flush). Idle, a result is committed at once. Zero: never waits.
  absl::Duration linger = absl::Milliseconds(50);
  size_t linger_results = 32;
  InflightBudgetOptions inflight;
  absl::Duration retry_initial = absl::Milliseconds(100);
  absl::Duration retry_max = absl::Seconds(2);
  // How often a line of ingest figures is logged (when anything moved).
  absl::Duration stats_interval = absl::Seconds(10);
};

// Ingest figures since the start.
struct IngestStats {
  int64_t results = 0;         // committed (including resends)
  int64_t socket_entries = 0;  // in committed socket snapshots
  int64_t batches = 0;
  int64_t failed_attempts = 0;
  double store_ms = 0;    // time spent in the store, all attempts
  double observe_ms = 0;  // time spent in observers (analysis, commands)
  size_t queued_bytes = 0;
  size_t inflight_bytes = 0;  // now, see InflightBudget
  int64_t budget_waits = 0;   // reservations that waited
  // Receipt (stream read) to commit, over the last stats interval.
  double commit_p50_ms = 0, commit_p99_ms = 0, commit_max_ms = 0;
  // The same since the start, as a cumulative histogram (Prometheus's
  // netvigil_ingest_commit_latency_seconds): commit_le[i] results took at
  // most kCommitLatencyBounds[i] seconds.
  static constexpr double kCommitLatencyBounds[] = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  static constexpr size_t kCommitLatencyBuckets =
      sizeof(kCommitLatencyBounds) / sizeof(double);
  int64_t commit_le[kCommitLatencyBuckets] = {};
  int64_t commit_count = 0;
  double commit_sum_s = 0;
};

class IngestPipeline {
 public:
  // The result is shared, not copied: an observer that queues it (the
  // analysis) keeps it alive without a deep copy of a snapshot.
  using Observer = std::function<void(
      const std::string& agent, const std::shared_ptr<const v1::Result>&)>;

  // `store` is not owned and must outlive this.
  IngestPipeline(IngestPipelineOptions options, Store& store);
  // Stops the writers; what is still queued is dropped unacknowledged.
  ~IngestPipeline();

  // Called for every committed result, on a writer thread. Add observers
  // before the first Submit.
  void AddObserver(Observer fn) { observers_.push_back(std::move(fn)); }

  // Queues a validated result from `session`. Blocks while the shard is
  // over its budget; gives up (false, nothing queued) when `abandon`
  // returns true (the stream was cancelled) or the pipeline stops.
  // `reservation` is the result's share of budget() (null: reserved here).
  bool Submit(
      std::shared_ptr<AgentSession> session, v1::Result result,
      const std::function<bool()>& abandon,
      std::shared_ptr<InflightBudget::Reservation> reservation = nullptr);

  // Where results' memory is counted (for the readers that parse them).
  const std::shared_ptr<InflightBudget>& budget() const { return budget_; }

  IngestStats stats();

 private:
  // A result with its share of the budget, given back when it goes.
  struct Budgeted;

  struct Item {
    std::shared_ptr<AgentSession> session;
    std::shared_ptr<const v1::Result> result;  // never null
    size_t bytes;
    absl::Time received;
  };
  struct Shard {
    absl::Mutex mu;
    absl::CondVar has_items, has_space;
    std::deque<Item> queue ABSL_GUARDED_BY(mu);
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    size_t large_bytes ABSL_GUARDED_BY(mu) = 0;  // of results >= 1 MiB
    // The large result at the front was passed over for small ones once.
    bool large_passed_over ABSL_GUARDED_BY(mu) = false;
    // When its writer's last commit ended (steady clock; writer only).
    std::chrono::steady_clock::time_point last_commit;
    // Sessions with a result the database refused: nothing more of theirs
    // is stored (a later commit would acknowledge past the refused one).
    std::map<const AgentSession*, std::shared_ptr<AgentSession>> refused;
  };

  void WriterLoop(Shard& shard);
  // Waits a moment for more results before a busy writer commits (see
  // IngestPipelineOptions::linger).
  void Linger(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Stores `batch` (retrying while the database is away); false if the
  // pipeline stopped first.
  bool Commit(Shard& shard, std::vector<Item>& batch);
  void Acknowledge(const std::vector<Item>& batch,
                   const std::map<std::string, uint64_t>& acked);
  bool stopping() { return stop_.HasBeenNotified(); }
  void MaybeLogStats();

  const IngestPipelineOptions options_;
  Store& store_;
  std::vector<Observer> observers_;
  std::vector<std::unique_ptr<Shard>> shards_;
  absl::Notification stop_;
  std::shared_ptr<InflightBudget> budget_;

  absl::Mutex stats_mu_;
  IngestStats totals_ ABSL_GUARDED_BY(stats_mu_);
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(stats_mu_);
  absl::Time window_start_ ABSL_GUARDED_BY(stats_mu_);
  IngestStats last_logged_ ABSL_GUARDED_BY(stats_mu_);

  std::vector<std::thread> writers_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_INGEST_PIPELINE_H_
