#include "collector/ingest/inflight_budget.h"

#include <algorithm>

#include "absl/time/time.h"

namespace netvigil::collector {

bool InflightBudget::Fits(const std::string& agent, size_t bytes) {
  if (used_ == 0) return true;
  auto it = by_agent_.find(agent);
  const size_t mine = it == by_agent_.end() ? 0 : it->second;
  if (mine > 0 && mine + bytes > options_.per_agent) return false;
  size_t limit = options_.total;
  if (bytes >= options_.large) {
    limit -= std::min(limit, options_.small_reserve);
  }
  return used_ + bytes <= limit;
}

std::shared_ptr<InflightBudget::Reservation> InflightBudget::Acquire(
    const std::string& agent, size_t bytes,
    const std::function<bool()>& give_up, bool* waited) {
  {
    absl::MutexLock l(&mu_);
    bool counted = false;
    while (!Fits(agent, bytes)) {
      if (!counted) {
        ++waits_;
        counted = true;
        if (waited != nullptr) *waited = true;
      }
      if (give_up && give_up()) return nullptr;
      freed_.WaitWithTimeout(&mu_, absl::Milliseconds(200));
    }
    used_ += bytes;
    by_agent_[agent] += bytes;
  }
  return std::make_shared<Reservation>(shared_from_this(), agent, bytes);
}

void InflightBudget::Release(const std::string& agent, size_t bytes) {
  absl::MutexLock l(&mu_);
  used_ -= std::min(used_, bytes);
  auto it = by_agent_.find(agent);
  if (it != by_agent_.end()) {
    it->second -= std::min(it->second, bytes);
    if (it->second == 0) by_agent_.erase(it);
  }
  // One waiter a release, not every one: with a thousand agents' streams
  // waiting on a full budget, SignalAll woke them all for each result the
  // analysis let go (128 at a time, on the analysis thread), and the ingest
  // fell from 333 results/s to 60 (tests/bench/ingest.sh). A waiter whose
  // bytes still do not fit waits again; the others look again within
  // their 200 ms anyway.
  freed_.Signal();
}

size_t InflightBudget::used() {
  absl::MutexLock l(&mu_);
  return used_;
}

int64_t InflightBudget::waits() {
  absl::MutexLock l(&mu_);
  return waits_;
}

AgentReadContext*& CurrentAgentRead() {
  thread_local AgentReadContext* current = nullptr;
  return current;
}

}  // namespace netvigil::collector
