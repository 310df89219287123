// Versioned SQL migrations, compiled into the binary from
// collector/store/migrations/NNNN_name.sql and applied in order at collector
// start under a PostgreSQL advisory lock. Thread-safe (pure functions).
#ifndef NETVIGIL_COLLECTOR_STORE_MIGRATIONS_H_
#define NETVIGIL_COLLECTOR_STORE_MIGRATIONS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace netvigil::collector {

struct Migration {
  int version;       // NNNN
  std::string name;  // "0001_agents"
  std::string sql;
};

// The migrations compiled in (generated; see cmake/embed_migrations.cmake).
const std::vector<std::pair<std::string_view, std::string_view>>&
EmbeddedMigrations();

// Checks names (NNNN_word), numbering (1, 2, 3, ... without gaps or
// repeats) and orders them by version.
absl::StatusOr<std::vector<Migration>> OrderMigrations(
    const std::vector<std::pair<std::string_view, std::string_view>>& files);

// The migrations still to apply, given the names already applied. A database
// that has a migration this binary does not know is newer than the binary:
// an error, never a guess.
absl::StatusOr<std::vector<Migration>> PendingMigrations(
    const std::vector<Migration>& ordered,
    const std::vector<std::string>& applied);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_MIGRATIONS_H_
