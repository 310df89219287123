#include "collector/query/alert_watchers.h"

namespace netvigil::collector {

std::shared_ptr<AlertWatchers::Watcher> AlertWatchers::Subscribe() {
  auto w = std::make_shared<Watcher>();
  absl::MutexLock l(&mu_);
  watchers_.push_back(w);
  return w;
}

void AlertWatchers::Unsubscribe(const std::shared_ptr<Watcher>& w) {
  absl::MutexLock l(&mu_);
  watchers_.remove(w);
}

void AlertWatchers::Publish(const v1::AlertEvent& event) {
  absl::MutexLock l(&mu_);
  for (auto& w : watchers_) {
    if (w->queue.size() >= kMaxQueued) {
      w->queue.pop_front();
      ++w->dropped;
    }
    w->queue.push_back(event);
  }
}

bool AlertWatchers::Next(const std::shared_ptr<Watcher>& w,
                         absl::Duration timeout, v1::AlertEvent* out) {
  absl::MutexLock l(&mu_);
  struct Arg {
    Watcher* w;
  } arg{w.get()};
  mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) { return a->w->closed || !a->w->queue.empty(); }, &arg),
      timeout);
  if (w->queue.empty()) return false;
  *out = std::move(w->queue.front());
  w->queue.pop_front();
  return true;
}

void AlertWatchers::CloseAll() {
  absl::MutexLock l(&mu_);
  for (auto& w : watchers_) w->closed = true;
}

}  // namespace netvigil::collector
