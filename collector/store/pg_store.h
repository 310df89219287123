// PostgreSQL implementation of Store through libpqxx. A small pool of
// connections; a connection that breaks is dropped and made anew on next
// use, so a database restart needs no collector restart. libpqxx exceptions
// stop here and become absl::Status. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_PG_STORE_H_
#define NETVIGIL_COLLECTOR_STORE_PG_STORE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <pqxx/connection>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "collector/store/store.h"
#include "common/model/facts.h"

namespace netvigil::collector {

class PresentFactsCache;

class PgStore final : public Store {
 public:
  // Does not connect: the first use does, and so does every use after a
  // failure.
  PgStore(std::string dsn, int pool_size);
  ~PgStore() override;

  // The Query service's reads (CLI, dashboard, /metrics: every method of
  // pg_queries.cc) go to `dsn`, a pool of `pool_size` of their own: a
  // streaming replica, so that people's reads do not compete with the
  // ingest (README, "Where one machine stops"). Such reads may lag the
  // ingest by the replica's delay. Empty: the main database. Call before
  // the first use.
  void SetReadDsn(std::string dsn, int pool_size);

  // Which UDP ports are ephemeral, for the fact model (the analysis' own
  // options, so history and alerts decide sameness alike). Call before the
  // first StoreBatch.
  void SetFactOptions(model::FactOptions facts) { fact_options_ = facts; }

  // Applies pending migrations under an advisory lock, so collectors sharing
  // one database never race on the schema.
  absl::Status Migrate();
  // Until Migrate() has succeeded every other call returns UNAVAILABLE with
  // the reason, so nothing touches a schema that is not there yet.
  bool ready() const { return ready_.load(); }

  absl::Status Ping() override;
  absl::StatusOr<uint64_t> AgentConnected(const v1::Hello& hello,
                                          const std::string& session_id,
                                          absl::Time now) override;
  absl::Status AgentSeen(const std::string& name, const std::string& session_id,
                         absl::Time now) override;
  absl::Status AgentDisconnected(const std::string& name,
                                 const std::string& session_id,
                                 absl::Time now) override;
  absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents(
      absl::Duration timeout) override;
  absl::StatusOr<std::map<std::string, uint64_t>> StoreBatch(
      const std::vector<IngestItem>& items) override;

  absl::StatusOr<RetentionStats> ApplyRetention(const RetentionPolicy& policy,
                                                absl::Time now) override;

  // Makes the partitions (migration 0014) of every day-partitioned table
  // for each UTC day in [from, to] and of every month-partitioned table for
  // each month in it. Idempotent; remembers what it made, so a repeat costs
  // nothing. The collector calls it at start and with each retention pass
  // (a few days ahead), and before a batch holding a day it has not seen.
  // `days` false: the month tables only.
  absl::Status EnsurePartitions(absl::Time from, absl::Time to,
                                bool days = true);
  absl::Status StoreCollectorSpeedResult(
      const v1::SpeedResult& result) override;
  absl::StatusOr<std::vector<v1::PathSummary>> LatestPaths(
      const std::string& agent) override;
  absl::StatusOr<std::map<std::string, std::vector<v1::PathSummary>>>
  LatestPathsOfAll() override;
  using Store::PathHistory;
  absl::StatusOr<v1::PathHistoryResponse> PathHistory(
      const std::string& agent, const std::string& target,
      const HistoryQuery& q) override;
  absl::StatusOr<v1::CurrentSocketsResponse> CurrentSockets(
      const std::string& agent) override;
  absl::StatusOr<v1::SocketChangesResponse> SocketChanges(
      const std::string& agent, int64_t since_us) override;
  absl::StatusOr<v1::FileAccessResponse> FileAccess(const std::string& agent,
                                                    int64_t since_us) override;
  absl::StatusOr<v1::SpeedMatrixResponse> SpeedMatrix() override;
  using Store::SpeedHistory;
  absl::StatusOr<v1::SpeedHistoryResponse> SpeedHistory(
      const std::string& client, const std::string& server,
      const HistoryQuery& q) override;

  // Runs `fn` with a pooled connection, turning libpqxx exceptions into a
  // Status (UNAVAILABLE for a broken connection). For store code only.
  absl::Status WithConnection(const std::function<void(pqxx::connection&)>& fn);
  // The same on the read pool (SetReadDsn), or the main one without it.
  absl::Status WithReadConnection(
      const std::function<void(pqxx::connection&)>& fn);

 private:
  // Connections to one database, made on first use, at most `size`.
  class Pool {
   public:
    Pool(std::string dsn, int size) : dsn_(std::move(dsn)), free_(size) {}
    const std::string& dsn() const { return dsn_; }
    // An idle connection, or null when the caller is to connect (a slot is
    // its own then); waits while every slot is in use.
    std::unique_ptr<pqxx::connection> Take();
    // Back to the pool; null gives the slot back.
    void Give(std::unique_ptr<pqxx::connection> c);

   private:
    const std::string dsn_;
    absl::Mutex mu_;
    std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
    int free_ ABSL_GUARDED_BY(mu_);
  };
  absl::Status WithPool(Pool& pool,
                        const std::function<void(pqxx::connection&)>& fn);

  model::FactOptions fact_options_;

  absl::Status NotReady();
  absl::Status MigrateOnce();
  // EnsurePartitions for the days of a batch's times that are near the
  // wall clock (a hostile timestamp cannot make partitions: its row goes to
  // the DEFAULT partition).
  absl::Status EnsurePartitionsFor(const std::vector<IngestItem>& items);

  Pool main_;
  std::unique_ptr<Pool> reads_;  // null: reads use main_
  std::atomic<bool> ready_{false};
  absl::Mutex reason_mu_;
  std::string not_ready_reason_ ABSL_GUARDED_BY(reason_mu_) =
      "migrations not applied yet";
  // Partitions EnsurePartitions made or found: days since the epoch (day
  // tables) and -1 - months since the epoch (month tables).
  absl::Mutex partitions_mu_;
  std::set<int64_t> partitions_known_ ABSL_GUARDED_BY(partitions_mu_);
  // Each agent's present facts after its last batch (history_writer.h).
  const std::unique_ptr<PresentFactsCache> facts_cache_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_PG_STORE_H_
