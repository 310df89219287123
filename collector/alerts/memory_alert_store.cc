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
  events_.push_back(event);
  return absl::OkStatus();
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
