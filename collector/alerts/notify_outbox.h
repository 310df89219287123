// The notification outbox's rows and routing (README "Notifications"):
// which alert events are news, and which channels take each. The stores
// (AlertStore::AppendEvent) write one outbox row per channel per news event
// in the transaction that writes the event; collector/notify/ sends them.
// Thread-safe (values and pure functions).
#ifndef NETVIGIL_COLLECTOR_ALERTS_NOTIFY_OUTBOX_H_
#define NETVIGIL_COLLECTOR_ALERTS_NOTIFY_OUTBOX_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector {

// The alert kind a notification channel that keeps failing raises; it
// goes to the other channels (RouteEvent), never to the failing one.
// details["channel"] names the channel.
inline constexpr char kNotifyFailedKind[] = "notify_failed";

// What one channel takes: alert kinds (empty: every kind) at or above a
// severity.
struct NotifyRoute {
  std::string channel;
  std::set<std::string> kinds;
  v1::Severity min_severity = v1::SEVERITY_UNSPECIFIED;
};

// How outbox rows are written: the channels, and how long after the event
// a row first becomes due (a burst of alerts written over a second lands
// in one send round, so the digest sees it whole).
struct OutboxOptions {
  std::vector<NotifyRoute> routes;
  absl::Duration gather = absl::Seconds(2);
};

// "opened", "escalated" (an update whose severity rose above `previous`,
// the severity of the alert's last event), "resolved"; "" for what is not
// news: merged pair alerts, acknowledgements and other updates.
std::string NewsOf(const v1::AlertEvent& event, v1::Severity previous);

// The channels that take `event` (already known to be news).
std::vector<std::string> RouteEvent(const std::vector<NotifyRoute>& routes,
                                    const v1::AlertEvent& event);

enum class OutboxState { kPending, kSent, kExpired };

// One row of notify_outbox.
struct OutboxRow {
  int64_t id = 0;
  int64_t event_id = 0;  // the idempotency key a receiver sees
  std::string channel;
  int64_t alert_id = 0;
  std::string news;  // NewsOf
  v1::AlertEvent event;
  OutboxState state = OutboxState::kPending;
  int attempts = 0;  // counting the claim that returned the row
  absl::Time created_at = absl::InfinitePast();
  absl::Time next_attempt_at = absl::InfinitePast();
  absl::Time sent_at = absl::InfinitePast();
  std::string last_error;
};

// What the sender writes back for one claimed row.
struct OutboxUpdate {
  int64_t id = 0;
  OutboxState state = OutboxState::kPending;
  absl::Time next_attempt_at = absl::InfinitePast();  // for kPending
  absl::Time sent_at = absl::InfinitePast();          // for kSent
  std::string last_error;
};

const char* OutboxStateName(OutboxState s);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ALERTS_NOTIFY_OUTBOX_H_
