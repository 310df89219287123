#include "collector/notify/notify_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace netvigil::collector {

RoundPlan PlanRound(
    const std::vector<OutboxRow>& rows,
    const std::map<std::pair<std::string, int64_t>, absl::Time>& recently_sent,
    absl::Time now, const PlanOptions& options) {
  RoundPlan plan;
  // channel -> alert id -> its rows, oldest first.
  std::map<std::string, std::map<int64_t, std::vector<const OutboxRow*>>> by;
  std::vector<const OutboxRow*> sorted;
  for (const OutboxRow& r : rows) sorted.push_back(&r);
  std::sort(
      sorted.begin(), sorted.end(),
      [](const OutboxRow* a, const OutboxRow* b) { return a->id < b->id; });
  for (const OutboxRow* r : sorted) {
    if (now - r->created_at >= options.expire_after) {
      OutboxUpdate u;
      u.id = r->id;
      u.state = OutboxState::kExpired;
      u.last_error =
          absl::StrCat("expired after ", r->attempts - 1,
                       " failed attempts; last error: ", r->last_error);
      plan.updates.push_back(std::move(u));
      continue;
    }
    by[r->channel][r->alert_id].push_back(r);
  }
  for (const auto& [channel, alerts] : by) {
    std::vector<const OutboxRow*> opened;  // latest rows that are "opened"
    std::vector<PlannedMessage> singles;
    for (const auto& [alert_id, list] : alerts) {
      auto sent = recently_sent.find({channel, alert_id});
      if (sent != recently_sent.end() &&
          sent->second + options.min_interval > now) {
        // Too soon after the last message about this alert: wait, and fold
        // whatever else happens to it meanwhile into one message.
        for (const OutboxRow* r : list) {
          OutboxUpdate u;
          u.id = r->id;
          u.state = OutboxState::kPending;
          u.next_attempt_at = sent->second + options.min_interval;
          u.last_error = r->last_error;
          plan.updates.push_back(std::move(u));
        }
        continue;
      }
      const OutboxRow* latest = list.back();
      if (list.size() == 1 && latest->news == "opened") {
        opened.push_back(latest);
        continue;
      }
      PlannedMessage m;
      m.channel = channel;
      std::vector<int64_t> folded;
      for (const OutboxRow* r : list) {
        m.row_ids.push_back(r->id);
        if (r != latest) folded.push_back(r->event_id);
      }
      m.message = EventMessage(*latest, folded, options.web_url);
      singles.push_back(std::move(m));
    }
    if (opened.size() > options.digest_after) {
      PlannedMessage m;
      m.channel = channel;
      m.digest = true;
      std::vector<OutboxRow> copies;
      for (const OutboxRow* r : opened) {
        m.row_ids.push_back(r->id);
        copies.push_back(*r);
      }
      std::sort(copies.begin(), copies.end(),
                [](const OutboxRow& a, const OutboxRow& b) {
                  return a.event_id < b.event_id;
                });
      m.message = DigestMessage(copies, options.web_url);
      singles.push_back(std::move(m));
    } else {
      for (const OutboxRow* r : opened) {
        PlannedMessage m;
        m.channel = channel;
        m.row_ids.push_back(r->id);
        m.message = EventMessage(*r, {}, options.web_url);
        singles.push_back(std::move(m));
      }
    }
    std::sort(singles.begin(), singles.end(),
              [](const PlannedMessage& a, const PlannedMessage& b) {
                return a.row_ids.front() < b.row_ids.front();
              });
    for (auto& m : singles) plan.messages.push_back(std::move(m));
  }
  return plan;
}

}  // namespace netvigil::collector
