// The notification sender (README "Notifications"): a loop that claims due
// rows of the outbox (AlertStore::ClaimOutbox), plans the round
// (notify_plan.h), sends through the channels and writes back what
// happened: sent only after the channel accepted, else retried with
// exponential backoff until the row expires. It also tracks each channel's
// health: a channel failing for longer than fail_alert_after is reported to
// the health listener (the Analyzer raises notify_failed), and again when it
// recovers. Thread-safe: RunOnce runs on one thread at a time (the loop's,
// or a test's); Start/Stop from any thread.
#ifndef NETVIGIL_COLLECTOR_NOTIFY_NOTIFIER_H_
#define NETVIGIL_COLLECTOR_NOTIFY_NOTIFIER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "collector/alerts/alert_store.h"
#include "collector/notify/notify_channel.h"
#include "collector/notify/notify_plan.h"
#include "common/clock.h"
#include "common/notify_config.h"

namespace netvigil::collector {

class Notifier {
 public:
  // (channel, failing, why): failing after fail_alert_after of failures,
  // then not failing at its next success (and at each channel's first
  // success after start, so an alert left open by a previous run closes).
  using HealthListener =
      std::function<void(const std::string&, bool, const std::string&)>;
  using Channels = std::map<std::string, std::unique_ptr<NotifyChannel>>;

  // `uniform01` draws the backoff's jitter (null: a seeded PRNG).
  Notifier(NotifyConfig config, Channels channels, AlertStore& store,
           Clock& clock, std::function<double()> uniform01 = nullptr);
  ~Notifier();

  // The routes AlertStore::SetOutboxOptions needs for `config`.
  static OutboxOptions OutboxOptionsFor(const NotifyConfig& config);
  // The channels of `config`, built (secrets read).
  static absl::StatusOr<Channels> BuildChannels(const NotifyConfig& config);

  void SetHealthListener(HealthListener listener);
  // Expires the rows of channels no longer configured (once, at start;
  // logged per channel).
  absl::Status ExpireUnknownChannels();
  // One round; returns the number of messages the channels accepted.
  absl::StatusOr<int> RunOnce();

  // The loop: ExpireUnknownChannels, then RunOnce every poll_interval.
  void Start();
  void Stop();

 private:
  struct Health {
    absl::Time failing_since = absl::InfiniteFuture();
    bool reported_failing = false;
    bool seen_success = false;
  };
  void OnSent(const std::string& channel);
  void OnFailed(const std::string& channel, const std::string& why);
  absl::Duration RetryDelay(int attempts);
  void Loop();

  const NotifyConfig config_;
  Channels channels_;
  AlertStore& store_;  // Not owned.
  Clock& clock_;       // Not owned.
  std::function<double()> uniform01_;
  absl::Duration lease_;
  absl::Mutex mu_;
  HealthListener listener_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Health> health_;  // RunOnce's thread only
  std::string last_error_;                // RunOnce's thread only
  // When the sender began to wait for a burst of events to end.
  absl::Time burst_since_ = absl::InfiniteFuture();  // RunOnce's thread only
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_NOTIFIER_H_
