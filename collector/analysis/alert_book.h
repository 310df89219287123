// The alert book: the lifecycle of alerts apart from the rules that find
// them. A condition opens an alert or updates the open one of its (kind,
// subject); an alert whose condition is over resolves, and one that a wider
// alert of the same kind explains is superseded (MERGED into it, never
// RESOLVED); an acknowledgement is recorded once. The summary of path_loss
// and speed_low alerts is rebuilt from the alert's own state (hosts,
// details) at every event, so a resolved alert says what it was.
//
// Writes: the book never writes to the store while its owner's lock is
// held. Each event queues the alert row, then the event row, in one FIFO
// (TakeWrites); the owner writes them after releasing its lock, one writer
// at a time, in queue order, so every alert's rows reach the store in the
// order of its events. A new alert takes its id from ids reserved
// beforehand (AddIds, AlertStore::ReserveAlertIds), so its events can name
// it before it is written; only when none is left is it inserted at once
// (counted as sync_saves). Listeners are called at once, in event order.
// Thread-compatible: the Analyzer's mutex guards it.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_ALERT_BOOK_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_ALERT_BOOK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/alerts/alert_store.h"
#include "collector/analysis/rules/condition.h"
#include "common/clock.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector {

class AlertBook {
 public:
  using Listener = std::function<void(const v1::AlertEvent&)>;
  struct Counters {
    uint64_t events = 0;
    uint64_t store_errors = 0;
    uint64_t sync_saves = 0;  // new alerts written under the lock (no id)
  };
  // One queued write: an alert row, or an event row.
  struct Write {
    bool is_event = false;
    v1::Alert alert;
    v1::AlertEvent event;
  };

  // `store` and `clock` are not owned and must outlive the book.
  AlertBook(AlertStore& store, Clock& clock, uint32_t max_evidence);

  // The unresolved alerts read back from the store at start.
  void Load(const std::vector<v1::Alert>& unresolved);
  void AddListener(Listener listener);

  const std::map<rules::AlertKey, v1::Alert>& open() const { return open_; }
  // The open alert of `key`, or null.
  const v1::Alert* Find(const rules::AlertKey& key) const;
  // Open alerts, by id.
  std::vector<v1::Alert> OpenById() const;

  // Opens the alert of `c` (OPENED), or updates the open one (UPDATED when
  // something material changed: hosts, scope, a higher severity, the
  // address; an acknowledged alert only when a host is added).
  void Raise(const rules::Condition& c);
  // RESOLVED; false when `key` is not open.
  bool Resolve(const rules::AlertKey& key);
  // Closes `key` as folded into the open alert `into` of the same kind.
  void Merge(const rules::AlertKey& key, const std::string& into);
  // Raises `conds` (subject -> condition) of `kind`; closes its other open
  // alerts unless `held`: merged into a wider condition that shares a host,
  // else resolved.
  void Reconcile(const std::string& kind,
                 const std::map<std::string, rules::Condition>& conds,
                 const std::set<std::string>& held);
  // Acknowledges alert `id` (open, or read from the store): NOT_FOUND for
  // an unknown id. `*newly` says whether this call acknowledged it (the
  // ACKNOWLEDGED event is emitted once).
  absl::StatusOr<v1::Alert> Acknowledge(int64_t id, const std::string& by,
                                        bool* newly);

  Counters counters() const { return counters_; }

  // The queued writes, oldest first, and the queue emptied.
  std::vector<Write> TakeWrites();
  // Writes `writes` in order; returns how many failed (each is logged).
  static uint64_t WriteAll(AlertStore& store, const std::vector<Write>& writes);
  void AddIds(const std::vector<int64_t>& ids);
  size_t spare_ids() const { return ids_.size(); }

 private:
  void Save(v1::Alert& alert);
  void Emit(v1::AlertEvent::Type type, const v1::Alert& alert);

  AlertStore& store_;  // Not owned.
  Clock& clock_;       // Not owned.
  const uint32_t max_evidence_;
  std::vector<Listener> listeners_;
  std::map<rules::AlertKey, v1::Alert> open_;
  Counters counters_;
  std::vector<Write> writes_;
  std::deque<int64_t> ids_;
};

// Rewrites the summary (and the "targets" detail) of a path_loss or
// speed_low alert from what the alert holds now. Pure.
void DescribeAlert(v1::Alert& alert);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_ALERT_BOOK_H_
