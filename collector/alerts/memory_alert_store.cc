#include "collector/alerts/memory_alert_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::collector {
namespace {

absl::Status Down() { return absl::UnavailableError("alert store is down"); }

}  // namespace

absl::StatusOr<int64_t> MemoryAlertStore::SaveAlert(const v1::Alert& alert) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  v1::Alert a = alert;
  if (a.id() == 0) {
    a.set_id(next_id_++);
  } else if (alerts_.count(a.id()) == 0 && reserved_.erase(a.id()) == 0) {
    return absl::NotFoundError(absl::StrCat("no alert ", a.id()));
  }
  alerts_[a.id()] = a;
  return a.id();
}

absl::StatusOr<std::vector<int64_t>> MemoryAlertStore::ReserveAlertIds(
    size_t n) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::vector<int64_t> ids;
  for (size_t i = 0; i < n; ++i) {
    reserved_.insert(next_id_);
    ids.push_back(next_id_++);
  }
  return ids;
}

absl::Status MemoryAlertStore::AppendEvent(const v1::AlertEvent& event) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  v1::Severity previous = v1::SEVERITY_UNSPECIFIED;
  for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
    if (it->alert().id() == event.alert().id()) {
      previous = it->alert().severity();
      break;
    }
  }
  events_.push_back(event);
  const int64_t event_id = static_cast<int64_t>(events_.size());
  const std::string news = NewsOf(event, previous);
  if (news.empty()) return absl::OkStatus();
  const absl::Time at =
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(event.at()) *
          absl::Microseconds(1) +
      absl::UnixEpoch();
  for (const std::string& channel : RouteEvent(outbox_options_.routes, event)) {
    OutboxRow r;
    r.id = static_cast<int64_t>(outbox_.size()) + 1;
    r.event_id = event_id;
    r.channel = channel;
    r.alert_id = event.alert().id();
    r.news = news;
    r.event = event;
    r.created_at = at;
    r.next_attempt_at = at + outbox_options_.gather;
    outbox_[r.id] = r;
  }
  return absl::OkStatus();
}

void MemoryAlertStore::SetOutboxOptions(OutboxOptions options) {
  absl::MutexLock l(&mu_);
  outbox_options_ = std::move(options);
}

absl::StatusOr<std::map<std::string, int64_t>>
MemoryAlertStore::ExpireUnknownChannels(const std::set<std::string>& known) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::map<std::string, int64_t> out;
  for (auto& [id, r] : outbox_) {
    if (r.state == OutboxState::kPending && known.count(r.channel) == 0) {
      r.state = OutboxState::kExpired;
      r.last_error = "channel no longer configured";
      ++out[r.channel];
    }
  }
  return out;
}

absl::StatusOr<std::vector<OutboxRow>> MemoryAlertStore::ClaimOutbox(
    absl::Time now, absl::Duration lease, size_t limit) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::vector<OutboxRow> out;
  for (auto& [id, r] : outbox_) {
    if (out.size() >= limit) break;
    if (r.state != OutboxState::kPending || r.next_attempt_at > now) continue;
    ++r.attempts;
    r.next_attempt_at = now + lease;
    out.push_back(r);
  }
  return out;
}

absl::StatusOr<absl::Time> MemoryAlertStore::NewestUnsent() {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  absl::Time out = absl::InfinitePast();
  for (const auto& [id, r] : outbox_) {
    if (r.state == OutboxState::kPending && r.attempts == 0) {
      out = std::max(out, r.created_at);
    }
  }
  return out;
}

absl::Status MemoryAlertStore::UpdateOutbox(
    const std::vector<OutboxUpdate>& updates) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  for (const OutboxUpdate& u : updates) {
    auto it = outbox_.find(u.id);
    if (it == outbox_.end()) continue;
    it->second.state = u.state;
    it->second.last_error = u.last_error;
    if (u.state == OutboxState::kPending) {
      it->second.next_attempt_at = u.next_attempt_at;
    }
    if (u.state == OutboxState::kSent) it->second.sent_at = u.sent_at;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::pair<std::string, int64_t>, absl::Time>>
MemoryAlertStore::RecentlySent(absl::Time since) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::map<std::pair<std::string, int64_t>, absl::Time> out;
  for (const auto& [id, r] : outbox_) {
    if (r.state != OutboxState::kSent || r.sent_at < since) continue;
    auto [it, inserted] =
        out.emplace(std::pair(r.channel, r.alert_id), r.sent_at);
    if (!inserted && r.sent_at > it->second) it->second = r.sent_at;
  }
  return out;
}

std::vector<OutboxRow> MemoryAlertStore::outbox() {
  absl::MutexLock l(&mu_);
  std::vector<OutboxRow> out;
  for (const auto& [id, r] : outbox_) out.push_back(r);
  return out;
}

absl::StatusOr<std::vector<v1::Alert>> MemoryAlertStore::UnresolvedAlerts() {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::vector<v1::Alert> out;
  for (const auto& [id, a] : alerts_) {
    if (!a.has_resolved_at()) out.push_back(a);
  }
  return out;
}

absl::StatusOr<v1::Alert> MemoryAlertStore::GetAlert(int64_t id) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  auto it = alerts_.find(id);
  if (it == alerts_.end())
    return absl::NotFoundError(absl::StrCat("no alert ", id));
  return it->second;
}

absl::StatusOr<std::vector<v1::Alert>> MemoryAlertStore::RecentAlerts(
    int64_t since_us, uint32_t limit) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::vector<v1::Alert> out;
  for (auto it = alerts_.rbegin(); it != alerts_.rend() && out.size() < limit;
       ++it) {
    if (google::protobuf::util::TimeUtil::TimestampToMicroseconds(
            it->second.last_seen()) >= since_us) {
      out.push_back(it->second);
    }
  }
  return out;
}

absl::StatusOr<std::vector<AnalysisStateRow>> MemoryAlertStore::LoadState() {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  std::vector<AnalysisStateRow> out;
  for (const auto& [k, row] : state_) out.push_back(row);
  return out;
}

absl::Status MemoryAlertStore::PutState(const AnalysisStateRow& row) {
  absl::MutexLock l(&mu_);
  if (down_) return Down();
  state_[{row.agent, row.kind, row.key}] = row;
  return absl::OkStatus();
}

void MemoryAlertStore::set_down(bool down) {
  absl::MutexLock l(&mu_);
  down_ = down;
}

std::vector<v1::AlertEvent> MemoryAlertStore::events() {
  absl::MutexLock l(&mu_);
  return events_;
}

std::vector<v1::Alert> MemoryAlertStore::all_alerts() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Alert> out;
  for (const auto& [id, a] : alerts_) out.push_back(a);
  return out;
}

}  // namespace netvigil::collector
