#include "collector/analysis/analysis_queue.h"

#include <algorithm>
#include <chrono>

#include "common/process_setup.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

AnalysisQueue::AnalysisQueue(Fn fn, size_t capacity, size_t max_batch)
    : fn_(std::move(fn)),
      capacity_(capacity == 0 ? 1 : capacity),
      max_batch_(max_batch == 0 ? 1 : max_batch),
      release_thread_([this] { ReleaseLoop(); }),
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
  {
    absl::MutexLock l(&release_mu_);
    release_stop_ = true;
    release_changed_.SignalAll();
  }
  release_thread_.join();
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
  NameThisThread("nv-analysis");
  // The analysis' own cost, logged every 10 s (the ingest benchmark reads
  // it): time in `fn_` per batch and per result, on the monotonic clock.
  using Steady = std::chrono::steady_clock;
  constexpr auto kStatsEvery = std::chrono::seconds(10);
  Steady::time_point window_start = Steady::now();
  uint64_t batches = 0, results = 0;
  double busy_ms = 0, max_ms = 0;
  std::vector<Item> batch;
  for (;;) {
    Release(batch);
    {
      absl::MutexLock l(&mu_);
      while (!stop_ && queue_.empty()) changed_.Wait(&mu_);
      if (stop_) break;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      changed_.SignalAll();
    }
    const Steady::time_point t0 = Steady::now();
    fn_(batch);
    const Steady::time_point t1 = Steady::now();
    const double ms =
        std::chrono::duration<double, std::milli>(t1 - t0).count();
    ++batches;
    results += batch.size();
    busy_ms += ms;
    max_ms = std::max(max_ms, ms);
    if (t1 - window_start >= kStatsEvery) {
      spdlog::info(
          "analysis_stats batches={} results={} ms_per_batch={:.2f} "
          "ms_per_result={:.3f} max_batch_ms={:.1f} busy_percent={:.1f} "
          "queued={}",
          batches, results, busy_ms / batches, busy_ms / results, max_ms,
          100.0 * busy_ms /
              std::chrono::duration<double, std::milli>(t1 - window_start)
                  .count(),
          size());
      window_start = t1;
      batches = results = 0;
      busy_ms = max_ms = 0;
    }
  }
}

void AnalysisQueue::Release(std::vector<Item>& batch) {
  // More than this waiting to be let go: the release thread is starved,
  // and the analysis frees its own (the budget they hold bounds memory
  // either way; this bounds the release thread's backlog).
  constexpr size_t kMaxWaiting = 16;
  if (batch.empty()) return;
  {
    absl::MutexLock l(&release_mu_);
    if (!release_stop_ && to_release_.size() < kMaxWaiting) {
      to_release_.push_back(std::move(batch));
      batch = {};
      release_changed_.Signal();
      return;
    }
  }
  batch.clear();
}

void AnalysisQueue::ReleaseLoop() {
  NameThisThread("nv-release");
  LowerThisThreadsPriority(5);  // below the analysis
  for (;;) {
    std::vector<Item> batch;
    {
      absl::MutexLock l(&release_mu_);
      while (!release_stop_ && to_release_.empty()) {
        release_changed_.Wait(&release_mu_);
      }
      if (to_release_.empty()) return;
      batch = std::move(to_release_.front());
      to_release_.pop_front();
    }
    batch.clear();  // the results, and with them their share of the budget
  }
}

}  // namespace netvigil::collector
