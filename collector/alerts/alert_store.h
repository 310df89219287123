// Where alerts, their events and the analysis baselines are kept: a seam so
// the Analyzer is unit-tested with MemoryAlertStore and runs on PostgreSQL
// (PgAlertStore). Implementations are thread-safe.
#ifndef NETVIGIL_COLLECTOR_ALERTS_ALERT_STORE_H_
#define NETVIGIL_COLLECTOR_ALERTS_ALERT_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/alerts/notify_outbox.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector {

// One row of analysis state, keyed by (agent, kind, key); agent "*" is
// global. A known thing has neither value nor bytes; a baseline is a
// netvigil.internal message (proto/netvigil/internal/baselines.proto) in
// `bytes`. `value` holds a baseline only in rows of versions before the
// messages ("k=v" lines), which the Analyzer converts once on Load.
struct AnalysisStateRow {
  AnalysisStateRow() = default;
  // Most rows are text (a known key, an old k=v baseline); a baseline
  // message goes in `bytes`.
  AnalysisStateRow(std::string agent, std::string kind, std::string key,
                   std::string value,
                   std::optional<std::string> bytes = std::nullopt)
      : agent(std::move(agent)),
        kind(std::move(kind)),
        key(std::move(key)),
        value(std::move(value)),
        bytes(std::move(bytes)) {}
  std::string agent;
  std::string kind;
  std::string key;
  std::string value;
  std::optional<std::string> bytes;
};

class AlertStore {
 public:
  virtual ~AlertStore() = default;

  // Inserts the alert when its id is 0 (returning the new id) or a reserved
  // id not stored yet, else overwrites alert `id`.
  virtual absl::StatusOr<int64_t> SaveAlert(const v1::Alert& alert) = 0;
  // Reserves `n` ids for new alerts, so that an alert can be given its id
  // (and its events their alert) before it is written: the analysis writes
  // after releasing its lock.
  virtual absl::StatusOr<std::vector<int64_t>> ReserveAlertIds(size_t n) = 0;
  // Writes the event and, in the same transaction, one notification outbox
  // row per channel that takes it when it is news (SetOutboxOptions).
  virtual absl::Status AppendEvent(const v1::AlertEvent& event) = 0;
  // Alerts not resolved, oldest first.
  virtual absl::StatusOr<std::vector<v1::Alert>> UnresolvedAlerts() = 0;
  // NOT_FOUND for an unknown id.
  virtual absl::StatusOr<v1::Alert> GetAlert(int64_t id) = 0;
  // Alerts with last_seen at or after `since_us` (Unix microseconds),
  // newest first, at most `limit`.
  virtual absl::StatusOr<std::vector<v1::Alert>> RecentAlerts(
      int64_t since_us, uint32_t limit) = 0;

  virtual absl::StatusOr<std::vector<AnalysisStateRow>> LoadState() = 0;
  // Upserts by (agent, kind, key).
  virtual absl::Status PutState(const AnalysisStateRow& row) = 0;
  // Upserts many rows at once (one transaction where the store has them).
  virtual absl::Status PutStates(const std::vector<AnalysisStateRow>& rows) {
    for (const AnalysisStateRow& r : rows) {
      if (absl::Status s = PutState(r); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // ---- The notification outbox (notify_outbox.h; README "Notifications").
  // MemoryAlertStore and PgAlertStore keep one; the defaults here are a
  // store without one (a test double): no rows, nothing to claim.
  //
  // The channels events are routed to; none (the default): no rows. Set
  // before the first AppendEvent.
  virtual void SetOutboxOptions(OutboxOptions options) {}
  // Marks every pending row of a channel not in `known` expired (the
  // channel left the config); returns the count per channel.
  virtual absl::StatusOr<std::map<std::string, int64_t>> ExpireUnknownChannels(
      const std::set<std::string>& known) {
    return std::map<std::string, int64_t>();
  }
  // Claims up to `limit` pending rows due at `now`, oldest first, skipping
  // rows another sender holds: each gets attempts + 1 and a lease (its
  // next attempt moves to now + lease), so a sender that dies mid-send
  // leaves the row to be sent again when the lease ends.
  virtual absl::StatusOr<std::vector<OutboxRow>> ClaimOutbox(
      absl::Time now, absl::Duration lease, size_t limit) {
    return std::vector<OutboxRow>();
  }
  // The newest created_at of the pending rows never attempted
  // (InfinitePast: none): the sender waits while a burst is still coming.
  virtual absl::StatusOr<absl::Time> NewestUnsent() {
    return absl::InfinitePast();
  }
  // Writes the outcome of claimed rows (one transaction where the store
  // has them).
  virtual absl::Status UpdateOutbox(const std::vector<OutboxUpdate>& updates) {
    return absl::OkStatus();
  }
  // The latest sent_at at or after `since` per (channel, alert id).
  virtual absl::StatusOr<std::map<std::pair<std::string, int64_t>, absl::Time>>
  RecentlySent(absl::Time since) {
    return std::map<std::pair<std::string, int64_t>, absl::Time>();
  }
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ALERTS_ALERT_STORE_H_
