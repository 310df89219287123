#include "collector/analysis/analysis_queue.h"

#include "spdlog/spdlog.h"

namespace netvigil::collector {

AnalysisQueue::AnalysisQueue(Fn fn, size_t capacity, size_t max_batch)
    : fn_(std::move(fn)),
      capacity_(capacity == 0 ? 1 : capacity),
      max_batch_(max_batch == 0 ? 1 : max_batch),
      thread_([this] { Loop(); }) {}

void AnalysisQueue::Stop() {
  size_t dropped = 0;
  {
    absl::MutexLock l(&mu_);
    if (stop_) return;
    stop_ = true;
    dropped = queue_.size();
    queue_.clear();
    changed_.SignalAll();
  }
  thread_.join();
  if (dropped > 0) {
    spdlog::warn(
        "analysis_queue_dropped results={} note=\"stored, not "
        "analysed: the collector stopped\"",
        dropped);
  }
}

void AnalysisQueue::Push(const std::string& agent,
                         std::shared_ptr<const v1::Result> result) {
  absl::MutexLock l(&mu_);
  while (!stop_ && queue_.size() >= capacity_) changed_.Wait(&mu_);
  if (stop_) return;
  queue_.emplace_back(agent, std::move(result));
  changed_.SignalAll();
}

size_t AnalysisQueue::size() {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

void AnalysisQueue::Loop() {
  std::vector<Item> batch;
  for (;;) {
    batch.clear();
    {
      absl::MutexLock l(&mu_);
      while (!stop_ && queue_.empty()) changed_.Wait(&mu_);
      if (stop_) return;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      changed_.SignalAll();
    }
    fn_(batch);
  }
}

}  // namespace netvigil::collector
