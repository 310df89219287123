// Fans alert events out to the Query service's WatchAlerts streams. Each
// watcher has a bounded queue: a watcher that does not keep up loses its
// oldest events and is told how many (never unbounded memory). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_QUERY_ALERT_WATCHERS_H_
#define NETVIGIL_COLLECTOR_QUERY_ALERT_WATCHERS_H_

#include <deque>
#include <list>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector {

class AlertWatchers {
 public:
  struct Watcher {
    std::deque<v1::AlertEvent> queue;
    uint64_t dropped = 0;
    bool closed = false;
  };

  std::shared_ptr<Watcher> Subscribe();
  void Unsubscribe(const std::shared_ptr<Watcher>& w);
  void Publish(const v1::AlertEvent& event);
  // Waits up to `timeout` for an event; false when none came (or closed).
  bool Next(const std::shared_ptr<Watcher>& w, absl::Duration timeout,
            v1::AlertEvent* out);
  // Ends every watch (collector shutdown).
  void CloseAll();

 private:
  static constexpr size_t kMaxQueued = 1000;
  absl::Mutex mu_;
  std::list<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_QUERY_ALERT_WATCHERS_H_
