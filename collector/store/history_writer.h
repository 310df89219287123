// Maps newly committed-to-be results onto the history tables inside the
// caller's transaction: path run summaries, socket and file facts with their
// appeared/gone events, speed results and gaps. Store-internal.
//
// A batch of results (of many agents) costs a fixed number of statements for
// its snapshots: the present facts of every agent in the batch are read in
// one query, each snapshot is compared in memory with the state the previous
// one left, and the net fact changes and all events are written with one
// statement per table. The result is the same as writing the snapshots one
// by one. Thread-compatible (one transaction at a time).
#ifndef NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
#define NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/model/facts.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

// History keys are the fact model's (model/facts.h): nothing else decides
// what "the same socket" is.
using SocketKey = model::SocketFact;
using FileKey = model::FileFact;
using FileFactInfo = model::FileFactInfo;

// The present socket and file facts of each agent as its newest committed
// snapshot left them, so that a batch compares a snapshot with them without
// reading them back from PostgreSQL (hundreds of rows an agent, every
// snapshot). An entry is used only while probe_state, read under lock in
// the batch's own transaction, still names the snapshot it was made from;
// anything else (another collector sharing the database, a commit that
// failed or whose outcome is unknown) reads the tables, which stay the only
// truth. Thread-safe.
class PresentFactsCache {
 public:
  template <typename Key, typename Info>
  struct Entry {
    int64_t seq = 0;  // probe_state.last_seq these facts belong to
    std::map<Key, Info> facts;
  };
  using Sockets = Entry<SocketKey, model::SocketFactInfo>;
  using Files = Entry<FileKey, FileFactInfo>;

  // Moves out the facts of `agent` if they belong to snapshot `seq`; the
  // entry is gone either way (the caller puts back what it commits).
  bool TakeSockets(int64_t agent, int64_t seq, Sockets& out);
  bool TakeFiles(int64_t agent, int64_t seq, Files& out);
  // After a commit: the facts each agent's newest snapshot left.
  void Put(std::map<int64_t, Sockets> sockets, std::map<int64_t, Files> files);

 private:
  template <typename E>
  bool Take(std::map<int64_t, E>& entries, int64_t agent, int64_t seq, E& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<int64_t, Sockets> sockets_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Files> files_ ABSL_GUARDED_BY(mu_);
};

class HistoryBatch {
 public:
  // `cache` (optional, not owned) saves reading present facts back; call
  // Committed() after the transaction commits to keep it current.
  // `facts` says which UDP ports are ephemeral: the analysis' options.
  explicit HistoryBatch(pqxx::work& tx, PresentFactsCache* cache = nullptr,
                        model::FactOptions facts = {})
      : tx_(tx), cache_(cache), fact_options_(facts) {}

  // Adds a result that was just inserted into `results`. One agent's results
  // must be added in sequence order. `result` must outlive Flush().
  void Add(int64_t agent_id, const v1::Result& result) {
    items_.emplace_back(agent_id, &result);
  }
  // Writes everything added. Throws what libpqxx throws.
  void Flush();
  // The transaction committed: what Flush left becomes the cache's.
  void Committed();

 private:
  pqxx::work& tx_;
  PresentFactsCache* const cache_;
  const model::FactOptions fact_options_;
  std::vector<std::pair<int64_t, const v1::Result*>> items_;
  std::map<int64_t, PresentFactsCache::Sockets> cached_sockets_;
  std::map<int64_t, PresentFactsCache::Files> cached_files_;
};

// One result on its own.
void WriteHistory(pqxx::work& tx, int64_t agent_id, const v1::Result& result,
                  model::FactOptions facts = {});

// A PostgreSQL array literal ({"a","b"}) of strings / numbers.
std::string PgTextArray(const std::vector<std::string>& v);
std::string PgIntArray(const std::vector<int64_t>& v);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
