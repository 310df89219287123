#include "collector/ingest/inflight_budget.h"

#include <algorithm>

#include "absl/time/time.h"

namespace netvigil::collector {
namespace {

// How often a waiting reader asks `give_up` (its stream cancelled, the
// collector stopping) and tells its session it is alive. A grant wakes it
// at once; this is only for leaving.
constexpr absl::Duration kAskEvery = absl::Seconds(1);

}  // namespace

InflightBudget::Fit InflightBudget::Check(const std::string& agent,
                                          size_t bytes) {
  if (used_ == 0) return Fit::kYes;
  auto it = by_agent_.find(agent);
  const size_t mine = it == by_agent_.end() ? 0 : it->second;
  if (mine > 0 && mine + bytes > options_.per_agent) return Fit::kAgentFull;
  size_t limit = options_.total;
  if (bytes >= options_.large) {
    limit -= std::min(limit, options_.small_reserve);
  }
  return used_ + bytes <= limit ? Fit::kYes : Fit::kTotalFull;
}

void InflightBudget::Take(const std::string& agent, size_t bytes) {
  used_ += bytes;
  by_agent_[agent] += bytes;
}

void InflightBudget::GrantLocked() {
  // In arrival order. A waiter its own agent's earlier messages hold back
  // is passed over (that agent's next release serves it). One the total
  // holds back stops every later waiter of its kind (small or large), so a
  // stream of small results cannot starve a larger one queued before them;
  // large ones have a limit of their own (small_reserve) and do not stop
  // small ones.
  bool small_stopped = false, large_stopped = false;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (small_stopped && (large_stopped || large_waiting_ == 0)) return;
    Waiter& w = **it;
    if (w.large ? large_stopped : small_stopped) {
      ++it;
      continue;
    }
    switch (Check(w.agent, w.bytes)) {
      case Fit::kYes:
        Take(w.agent, w.bytes);
        w.granted = true;
        if (w.large) --large_waiting_;
        w.granted_cv.NotifyAll();  // only `w` waits on it
        it = queue_.erase(it);
        continue;
      case Fit::kAgentFull:
        break;
      case Fit::kTotalFull:
        (w.large ? large_stopped : small_stopped) = true;
        break;
    }
    ++it;
  }
}

std::shared_ptr<InflightBudget::Reservation> InflightBudget::Acquire(
    const std::string& agent, size_t bytes,
    const std::function<bool()>& give_up, bool* waited) {
  {
    absl::MutexLock l(&mu_);
    Waiter w(agent, bytes, bytes >= options_.large);
    auto place = queue_.insert(queue_.end(), &w);
    if (w.large) ++large_waiting_;
    GrantLocked();
    if (!w.granted) {
      ++waits_;
      if (waited != nullptr) *waited = true;
      bool gave_up = give_up && give_up();
      while (!w.granted && !gave_up) {
        w.granted_cv.WaitFor(mu_, kAskEvery, [&w] { return w.granted; });
        if (!w.granted) gave_up = give_up && give_up();
      }
      if (!w.granted) {
        queue_.erase(place);
        if (w.large) --large_waiting_;
        // It may have been what held later waiters back.
        GrantLocked();
        return nullptr;
      }
    }
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
  // The freed bytes go to the first waiters they fit, each woken alone.
  // (Waking every waiter for each release -- a thousand agents' streams in
  // tests/bench/ingest.sh -- took the ingest from 333 results/s to 60;
  // waking one to look again, and the rest polling every 200 ms, to 180-236.)
  GrantLocked();
}

size_t InflightBudget::used() {
  absl::MutexLock l(&mu_);
  return used_;
}

int64_t InflightBudget::waits() {
  absl::MutexLock l(&mu_);
  return waits_;
}

size_t InflightBudget::waiting() {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

AgentReadContext*& CurrentAgentRead() {
  thread_local AgentReadContext* current = nullptr;
  return current;
}

}  // namespace netvigil::collector
