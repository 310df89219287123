// One send round of the notification outbox, planned without touching the
// world: which claimed rows expire, which wait for their alert's interval,
// which fold into a later event of the same alert, and which go out alone
// or in a digest (README "Notifications"). Pure; thread-safe.
#ifndef NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_PLAN_H_
#define NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "collector/alerts/notify_outbox.h"
#include "collector/notify/notify_message.h"

namespace netvigil::collector {

struct PlanOptions {
  absl::Duration min_interval = absl::Minutes(5);
  uint32_t digest_after = 10;
  absl::Duration expire_after = absl::Hours(24);
  std::string web_url;
};

struct PlannedMessage {
  std::string channel;
  std::vector<int64_t> row_ids;  // every row the message delivers
  NotifyMessage message;
  bool digest = false;
};

struct RoundPlan {
  std::vector<PlannedMessage> messages;  // by channel, then first row id
  // Rows settled without a send: expired, or moved to their alert's next
  // allowed time.
  std::vector<OutboxUpdate> updates;
};

// `rows` are claimed rows (any order); `recently_sent` the last send per
// (channel, alert id) within min_interval of `now`.
RoundPlan PlanRound(
    const std::vector<OutboxRow>& rows,
    const std::map<std::pair<std::string, int64_t>, absl::Time>& recently_sent,
    absl::Time now, const PlanOptions& options);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_PLAN_H_
