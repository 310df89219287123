// AlertStore in memory, for unit tests and for a collector run without a
// database in tests. Can be told to fail, to test the Analyzer's handling of
// a store that is down. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ALERTS_MEMORY_ALERT_STORE_H_
#define NETVIGIL_COLLECTOR_ALERTS_MEMORY_ALERT_STORE_H_

#include <map>
#include <set>
#include <tuple>

#include "absl/synchronization/mutex.h"
#include "collector/alerts/alert_store.h"

namespace netvigil::collector {

class MemoryAlertStore final : public AlertStore {
 public:
  absl::StatusOr<int64_t> SaveAlert(const v1::Alert& alert) override;
  absl::StatusOr<std::vector<int64_t>> ReserveAlertIds(size_t n) override;
  absl::Status AppendEvent(const v1::AlertEvent& event) override;
  absl::StatusOr<std::vector<v1::Alert>> UnresolvedAlerts() override;
  absl::StatusOr<v1::Alert> GetAlert(int64_t id) override;
  absl::StatusOr<std::vector<v1::Alert>> RecentAlerts(int64_t since_us,
                                                      uint32_t limit) override;
  absl::StatusOr<std::vector<AnalysisStateRow>> LoadState() override;
  absl::Status PutState(const AnalysisStateRow& row) override;
  void SetOutboxOptions(OutboxOptions options) override;
  absl::StatusOr<std::map<std::string, int64_t>> ExpireUnknownChannels(
      const std::set<std::string>& known) override;
  absl::StatusOr<std::vector<OutboxRow>> ClaimOutbox(absl::Time now,
                                                     absl::Duration lease,
                                                     size_t limit) override;
  absl::StatusOr<absl::Time> NewestUnsent() override;
  absl::Status UpdateOutbox(const std::vector<OutboxUpdate>& updates) override;
  absl::StatusOr<std::map<std::pair<std::string, int64_t>, absl::Time>>
  RecentlySent(absl::Time since) override;

  // Every call fails with UNAVAILABLE while set.
  void set_down(bool down);
  std::vector<v1::AlertEvent> events();
  std::vector<v1::Alert> all_alerts();
  // Every outbox row, by id.
  std::vector<OutboxRow> outbox();

 private:
  absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<int64_t> reserved_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, v1::Alert> alerts_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AlertEvent> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::tuple<std::string, std::string, std::string>, AnalysisStateRow>
      state_ ABSL_GUARDED_BY(mu_);
  OutboxOptions outbox_options_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, OutboxRow> outbox_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ALERTS_MEMORY_ALERT_STORE_H_
