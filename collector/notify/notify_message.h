// What a notification says: the documented JSON body (README
// "Notifications") and the mail text, for one alert event, a digest of many
// and `notify test`. Pure; thread-safe.
#ifndef NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_MESSAGE_H_
#define NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_MESSAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/alerts/notify_outbox.h"

namespace netvigil::collector {

struct NotifyMessage {
  // Stable across resends of the same message: the receiver's
  // idempotency key ("netvigil-event-<alert event id>",
  // "netvigil-digest-<first>-<last>", "netvigil-test-<micros>").
  std::string event_id;
  std::string subject;  // one line, escaped (common/escape.h)
  std::string text;     // plain text for people, escaped fields
  std::string json;     // the body a webhook or command receives
};

std::string EventIdOf(int64_t alert_event_id);

// One alert event; `folded` are the events of the same alert this message
// stands for too (README: at most one message per alert per interval).
NotifyMessage EventMessage(const OutboxRow& row,
                           const std::vector<int64_t>& folded,
                           const std::string& web_url);
// Many alerts that opened in one round, in one message.
NotifyMessage DigestMessage(const std::vector<OutboxRow>& rows,
                            const std::string& web_url);
NotifyMessage TestMessage(const std::string& channel, absl::Time now);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_MESSAGE_H_
