// Maps one committed-to-be result onto the history tables inside the
// caller's transaction: path run summaries, socket and file facts with their
// appeared/gone events, speed results and gaps. Store-internal.
// Thread-compatible (one transaction at a time).
#ifndef NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
#define NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

void WriteHistory(pqxx::work& tx, int64_t agent_id, const v1::Result& result);

// A PostgreSQL array literal ({"a","b"}) of strings / numbers.
std::string PgTextArray(const std::vector<std::string>& v);
std::string PgIntArray(const std::vector<int64_t>& v);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_HISTORY_WRITER_H_
