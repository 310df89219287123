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

#include "collector/store/history_mapping.h"
#include "common/model/facts.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

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

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
