// The collector's budget for agents' messages in memory: from the moment a
// message's bytes are about to be parsed until the last reference to what
// was parsed goes (stored, acknowledged and analysed). Counted in estimated
// parsed bytes (message_precheck.h), per agent and in all; large messages
// may not take the last `small_reserve` bytes, so one agent's (or a few
// agents') maximum-size messages never hold up everybody's small results.
// A reader over budget waits before parsing; its stream stops reading and
// gRPC's flow control stops the agent. Waiters are served in arrival order:
// a release hands the freed bytes to the first waiters they fit, each woken
// on a condition variable of its own (no waiter polls the budget, and none
// is woken to find its bytes still do not fit). Nothing in flight: one
// message always passes, however large (so a message above a budget is
// never stuck). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_INFLIGHT_BUDGET_H_
#define NETVIGIL_COLLECTOR_INGEST_INFLIGHT_BUDGET_H_

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/monotonic_wait.h"

namespace netvigil::collector {

struct InflightBudgetOptions {
  size_t total = 256 << 20;
  size_t per_agent = 160 << 20;
  // Messages of at least `large` bytes leave this much of `total` to others.
  size_t large = 1 << 20;
  size_t small_reserve = 64 << 20;
};

class InflightBudget : public std::enable_shared_from_this<InflightBudget> {
 public:
  // Held while its bytes are in memory; gives them back when destroyed.
  class Reservation {
   public:
    Reservation(std::shared_ptr<InflightBudget> budget, std::string agent,
                size_t bytes)
        : budget_(std::move(budget)), agent_(std::move(agent)), bytes_(bytes) {}
    ~Reservation() { budget_->Release(agent_, bytes_); }
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    size_t bytes() const { return bytes_; }

   private:
    const std::shared_ptr<InflightBudget> budget_;
    const std::string agent_;
    const size_t bytes_;
  };

  // Always owned by a shared_ptr (reservations keep it alive).
  static std::shared_ptr<InflightBudget> Create(InflightBudgetOptions options) {
    return std::make_shared<InflightBudget>(options);
  }
  explicit InflightBudget(InflightBudgetOptions options) : options_(options) {}

  // Waits until `bytes` for `agent` are granted (in arrival order); null
  // when `give_up` returns true first (asked before waiting and then once a
  // second). `*waited` says whether it waited.
  std::shared_ptr<Reservation> Acquire(const std::string& agent, size_t bytes,
                                       const std::function<bool()>& give_up,
                                       bool* waited = nullptr);
  size_t used();
  int64_t waits();
  // Readers waiting now.
  size_t waiting();

 private:
  struct Waiter {
    Waiter(const std::string& a, size_t b, bool l)
        : agent(a), bytes(b), large(l) {}
    const std::string& agent;
    const size_t bytes;
    const bool large;
    bool granted = false;
    MonotonicCondVar granted_cv;  // a wall clock step cannot stretch it
  };
  enum class Fit { kYes, kAgentFull, kTotalFull };
  Fit Check(const std::string& agent, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Take(const std::string& agent, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants the queue's waiters, first come first served, while they fit.
  void GrantLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& agent, size_t bytes);

  const InflightBudgetOptions options_;
  absl::Mutex mu_;
  std::list<Waiter*> queue_ ABSL_GUARDED_BY(mu_);
  size_t large_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t waits_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, size_t> by_agent_ ABSL_GUARDED_BY(mu_);
};

// What a stream's reader thread tells the AgentMessage deserializer
// (agent_message_traits.h): whose bytes these are and which budget they go
// to; the deserializer leaves the reservation (or why it refused) here.
// Set by AgentService around each Read().
struct AgentReadContext {
  std::shared_ptr<InflightBudget> budget;  // null: no budget (tests)
  std::string agent;
  std::function<bool()> give_up;
  // Out: the parsed message's reservation, or why it was not parsed.
  std::shared_ptr<InflightBudget::Reservation> reservation;
  absl::Status refused;
};
// This thread's context, or null.
AgentReadContext*& CurrentAgentRead();

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_INFLIGHT_BUDGET_H_
