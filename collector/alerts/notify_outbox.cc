#include "collector/alerts/notify_outbox.h"

namespace netvigil::collector {

std::string NewsOf(const v1::AlertEvent& event, v1::Severity previous) {
  switch (event.type()) {
    case v1::AlertEvent::TYPE_OPENED:
      return "opened";
    case v1::AlertEvent::TYPE_RESOLVED:
      return "resolved";
    case v1::AlertEvent::TYPE_UPDATED:
      // A new host or a new remote address updates an alert too; only a
      // rise in severity is worth a message.
      return event.alert().severity() > previous ? "escalated" : "";
    default:
      // MERGED: the wider alert that explains it is the news.
      return "";
  }
}

std::vector<std::string> RouteEvent(const std::vector<NotifyRoute>& routes,
                                    const v1::AlertEvent& event) {
  std::vector<std::string> out;
  const v1::Alert& a = event.alert();
  std::string failing;
  if (a.kind() == kNotifyFailedKind) {
    auto it = a.details().find("channel");
    if (it != a.details().end()) failing = it->second;
  }
  for (const NotifyRoute& r : routes) {
    if (r.channel == failing) continue;
    if (!r.kinds.empty() && r.kinds.count(a.kind()) == 0) continue;
    if (a.severity() < r.min_severity) continue;
    out.push_back(r.channel);
  }
  return out;
}

const char* OutboxStateName(OutboxState s) {
  switch (s) {
    case OutboxState::kPending:
      return "pending";
    case OutboxState::kSent:
      return "sent";
    case OutboxState::kExpired:
      return "expired";
  }
  return "pending";
}

}  // namespace netvigil::collector
