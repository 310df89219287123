// Runs the analysis of committed results on a thread of its own, so the
// ingest writers acknowledge a batch as soon as it has committed instead of
// after every result in it was compared with its history (the analyzer is
// one lock; four writers waiting on it made it the ingest's ceiling). The
// queue is bounded: when analysis falls that far behind, Push waits, which
// holds the ingest back rather than letting memory grow. What is still
// queued when the collector stops is not analysed (it is stored; see the
// README's limitations). What was analysed is let go on a second thread
// (a thousand sockets' worth of protobuf to free per result was a third
// of the analysis thread's time at a thousand agents), which runs below
// the analysis in priority. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_QUEUE_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_QUEUE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

class AnalysisQueue {
 public:
  using Item = std::pair<std::string, std::shared_ptr<const v1::Result>>;
  // Called on the queue's thread with what has queued up, in order, at
  // most `max_batch` at a time.
  using Fn = std::function<void(const std::vector<Item>&)>;
  AnalysisQueue(Fn fn, size_t capacity, size_t max_batch = 128);
  ~AnalysisQueue() { Stop(); }

  // Drops what is still queued (counted in the log) and joins the thread;
  // every Push after it returns at once. Idempotent.
  void Stop();

  // Shares `result` (it is not copied); never null.
  void Push(const std::string& agent, std::shared_ptr<const v1::Result> result);
  size_t size();

 private:
  void Loop();
  void ReleaseLoop();
  // Hands an analysed batch to the release thread (or, when that many
  // batches already wait for it, lets it go here).
  void Release(std::vector<Item>& batch);

  const Fn fn_;
  const size_t capacity_;
  const size_t max_batch_;
  absl::Mutex mu_;
  absl::CondVar changed_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex release_mu_;
  absl::CondVar release_changed_;
  std::deque<std::vector<Item>> to_release_ ABSL_GUARDED_BY(release_mu_);
  bool release_stop_ ABSL_GUARDED_BY(release_mu_) = false;
  std::thread release_thread_;
  std::thread thread_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_ANALYSIS_QUEUE_H_
