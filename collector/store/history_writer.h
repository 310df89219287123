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

#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

class HistoryBatch {
 public:
  explicit HistoryBatch(pqxx::work& tx) : tx_(tx) {}

  // Adds a result that was just inserted into `results`. One agent's results
  // must be added in sequence order. `result` must outlive Flush().
  void Add(int64_t agent_id, const v1::Result& result) {
    items_.emplace_back(agent_id, &result);
  }
  // Writes everything added. Throws what libpqxx throws.
  void Flush();

 private:
  pqxx::work& tx_;
  std::vector<std::pair<int64_t, const v1::Result*>> items_;
};

// One result on its own.
void WriteHistory(pqxx::work& tx, int64_t agent_id, const v1::Result& result);

// A PostgreSQL array literal ({"a","b"}) of strings / numbers.
std::string PgTextArray(const std::vector<std::string>& v);
std::string PgIntArray(const std::vector<int64_t>& v);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
