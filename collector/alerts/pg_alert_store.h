// AlertStore on PostgreSQL (tables of migration 0004), through PgStore's
// connection pool. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ALERTS_PG_ALERT_STORE_H_
#define NETVIGIL_COLLECTOR_ALERTS_PG_ALERT_STORE_H_

#include "absl/synchronization/mutex.h"
#include "collector/alerts/alert_store.h"
#include "collector/store/pg_store.h"

namespace netvigil::collector {

class PgAlertStore final : public AlertStore {
 public:
  explicit PgAlertStore(PgStore& pg) : pg_(pg) {}

  absl::StatusOr<int64_t> SaveAlert(const v1::Alert& alert) override;
  absl::StatusOr<std::vector<int64_t>> ReserveAlertIds(size_t n) override;
  absl::Status AppendEvent(const v1::AlertEvent& event) override;
  absl::StatusOr<std::vector<v1::Alert>> UnresolvedAlerts() override;
  absl::StatusOr<v1::Alert> GetAlert(int64_t id) override;
  absl::StatusOr<std::vector<v1::Alert>> RecentAlerts(int64_t since_us,
                                                      uint32_t limit) override;
  absl::StatusOr<std::vector<AnalysisStateRow>> LoadState() override;
  absl::Status PutState(const AnalysisStateRow& row) override;
  absl::Status PutStates(const std::vector<AnalysisStateRow>& rows) override;
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

 private:
  PgStore& pg_;  // Not owned.
  absl::Mutex mu_;
  OutboxOptions outbox_options_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ALERTS_PG_ALERT_STORE_H_
