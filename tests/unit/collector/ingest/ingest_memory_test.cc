// What bounds an agent message's memory before it is parsed: the wire walk
// (message_precheck.h) on real and hostile shapes, and the in-flight
// budget's admission rules (inflight_budget.h).
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "collector/ingest/inflight_budget.h"
#include "collector/ingest/message_precheck.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netvigil/v1/agent.pb.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

v1::AgentMessage Snapshot(int sockets) {
  v1::AgentMessage m;
  v1::Result* r = m.mutable_result();
  r->set_seq(7);
  for (int i = 0; i < sockets; ++i) {
    v1::SocketEntry* e = r->mutable_sockets()->add_sockets();
    e->set_state("ESTAB");
    e->set_local_address("192.0.2.10");
    e->set_local_port(1024 + i);
    e->set_remote_address("198.51.100.7");
    e->set_remote_port(443);
    v1::ProcessRef* p = e->add_processes();
    p->set_pid(4242);
    p->set_name("firefox-esr");
    p->set_exe("/usr/lib/firefox-esr/firefox-esr");
  }
  return m;
}

TEST(MessagePrecheckTest, CountsWhatParsingAllocates) {
  const std::string bytes = Snapshot(1000).SerializeAsString();
  ParseCost cost;
  ASSERT_THAT(PrecheckWire(v1::AgentMessage::descriptor(), bytes,
                           ParseCostLimits{}, &cost),
              IsOk());
  // The message, its result, the snapshot, 1000 entries and processes.
  EXPECT_EQ(cost.messages, 3 + 2000);
  // state, two addresses, name and exe per socket.
  EXPECT_EQ(cost.strings, 5000);
  EXPECT_EQ(cost.wire_bytes, static_cast<int64_t>(bytes.size()));
  // A real message parses to a few times its size: the estimate must not
  // be below what protobuf actually allocates.
  v1::AgentMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_GE(cost.estimate(), static_cast<int64_t>(parsed.SpaceUsedLong()));
}

TEST(MessagePrecheckTest, RefusesTinySubMessagesBeforeParsing) {
  // 4 MiB of empty socket entries: 2 bytes each on the wire.
  std::string entries;
  for (int i = 0; i < (2 << 20); ++i) entries += std::string("\x12\x00", 2);
  // Append sockets (Result field 11) by hand, then fix the outer length.
  std::string snapshot = "\x5a";
  {
    std::string len;
    size_t n = entries.size();
    while (n >= 0x80) {
      len += static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    len += static_cast<char>(n);
    snapshot += len + entries;
  }
  v1::Result with_seq;
  with_seq.set_seq(1);
  std::string result = with_seq.SerializeAsString() + snapshot;
  std::string outer = "\x1a";
  {
    size_t n = result.size();
    while (n >= 0x80) {
      outer += static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    outer += static_cast<char>(n);
  }
  outer += result;
  ParseCostLimits limits;
  limits.max_parsed_bytes = 64 << 20;
  ParseCost cost;
  absl::Status s =
      PrecheckWire(v1::AgentMessage::descriptor(), outer, limits, &cost);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("to parse"));
  // The same bytes really do parse to far more than their size.
  v1::AgentMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(outer));
  EXPECT_GT(parsed.SpaceUsedLong(), 20 * outer.size());
}

TEST(MessagePrecheckTest, RefusesMalformedAndTooDeep) {
  const ParseCostLimits limits;
  EXPECT_THAT(PrecheckWire(v1::AgentMessage::descriptor(),
                           std::string("\x1a\x10\x08", 3), limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PrecheckWire(v1::AgentMessage::descriptor(),
                           std::string("\x1b", 1), limits),  // a group
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      PrecheckWire(v1::AgentMessage::descriptor(), std::string(), limits),
      IsOk());
  ParseCostLimits shallow;
  shallow.max_depth = 2;
  EXPECT_THAT(PrecheckWire(v1::AgentMessage::descriptor(),
                           Snapshot(1).SerializeAsString(), shallow),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MessagePrecheckTest, RepeatedNumbersCountPerElement) {
  // A packed enum: one byte each on the wire, 4 in memory (and spare
  // capacity): the wire size alone would be a quarter of the truth.
  v1::AgentMessage m;
  for (int i = 0; i < 1'000'000; ++i) {
    m.mutable_hello()->add_probe_kinds(v1::PROBE_KIND_SOCKETS);
  }
  const std::string bytes = m.SerializeAsString();
  ParseCost cost;
  ASSERT_THAT(PrecheckWire(v1::AgentMessage::descriptor(), bytes,
                           ParseCostLimits{}, &cost),
              IsOk());
  EXPECT_EQ(cost.scalars, 1'000'000);
  v1::AgentMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_GE(cost.estimate(), static_cast<int64_t>(parsed.SpaceUsedLong()));
}

// The property the budget rests on, over mutated messages (seeded): when
// the walk accepts bytes that protobuf then parses, the estimate is at
// least what the parse allocated.
TEST(MessagePrecheckTest, EstimateBoundsTheParseOfMutatedMessages) {
  v1::AgentMessage base = Snapshot(50);
  const std::string valid = base.SerializeAsString();
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_name("h1");
  hello.mutable_hello()->add_probe_kinds(v1::PROBE_KIND_PATH);
  hello.mutable_hello()->add_addresses("192.0.2.1");
  const std::string seeds[] = {valid, hello.SerializeAsString()};
  std::mt19937 rng(1);
  int accepted_and_parsed = 0;
  for (int i = 0; i < 100'000; ++i) {
    std::string b = seeds[i % 2];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[at] = static_cast<char>(rng());
          break;
        case 1:
          b.insert(at, 1, static_cast<char>(rng()));
          break;
        default:
          b.erase(at, 1 + rng() % 4);
      }
    }
    ParseCost cost;
    if (!PrecheckWire(v1::AgentMessage::descriptor(), b, ParseCostLimits{},
                      &cost)
             .ok()) {
      continue;
    }
    v1::AgentMessage parsed;
    if (!parsed.ParseFromString(b)) continue;
    ++accepted_and_parsed;
    ASSERT_GE(cost.estimate(), static_cast<int64_t>(parsed.SpaceUsedLong()))
        << "input " << i << " cost " << cost.messages << "/" << cost.strings
        << "/" << cost.scalars << "/" << cost.wire_bytes << " parsed "
        << parsed.ShortDebugString().substr(0, 300);
  }
  EXPECT_GT(accepted_and_parsed, 1000);
}

TEST(InflightBudgetTest, OneAlwaysPassesThenPerAgentAndTotal) {
  InflightBudgetOptions o;
  o.total = 100;
  o.per_agent = 60;
  o.large = 30;
  o.small_reserve = 40;
  auto budget = InflightBudget::Create(o);
  auto never = [] { return true; };  // give up at once instead of waiting
  // Nothing in flight: even a message above every budget passes, alone.
  auto huge = budget->Acquire("a", 500, never);
  ASSERT_NE(huge, nullptr);
  EXPECT_EQ(budget->Acquire("b", 1, never), nullptr);
  huge.reset();
  EXPECT_EQ(budget->used(), 0u);

  auto a1 = budget->Acquire("a", 50, never);  // large
  ASSERT_NE(a1, nullptr);
  // Per agent: a's second large one would pass 60.
  EXPECT_EQ(budget->Acquire("a", 20, never), nullptr);
  // Large messages leave the small reserve: 50 + 30 > 100 - 40.
  EXPECT_EQ(budget->Acquire("b", 30, never), nullptr);
  // Small ones may use it.
  auto b1 = budget->Acquire("b", 29, never);
  ASSERT_NE(b1, nullptr);
  auto c1 = budget->Acquire("c", 20, never);
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(budget->Acquire("d", 2, never), nullptr);  // 99 + 2 > 100
  EXPECT_EQ(budget->used(), 99u);
  EXPECT_GE(budget->waits(), 4);
}

TEST(InflightBudgetTest, AWaiterProceedsWhenAReservationGoes) {
  InflightBudgetOptions o;
  o.total = 10;
  o.per_agent = 10;
  o.large = 100;
  auto budget = InflightBudget::Create(o);
  auto held = budget->Acquire("a", 8, nullptr);
  std::shared_ptr<InflightBudget::Reservation> got;
  bool waited = false;
  std::thread t([&] { got = budget->Acquire("b", 5, nullptr, &waited); });
  absl::SleepFor(absl::Milliseconds(50));
  held.reset();
  t.join();
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(waited);
  EXPECT_EQ(budget->used(), 5u);
}

// A budget of 40 bytes, every message small, one agent may take it all.
InflightBudgetOptions FortyBytesNoneLarge() {
  InflightBudgetOptions o;
  o.total = 40;
  o.per_agent = 40;
  o.large = 1000;
  return o;
}

// Starts Acquire(agent, bytes) on a thread of its own and returns once it
// waits (the budget's queue has grown by one), so arrival order is known.
class Waiting {
 public:
  Waiting(std::shared_ptr<InflightBudget> budget, std::string agent,
          size_t bytes, std::vector<std::string>* order, absl::Mutex* mu)
      : budget_(std::move(budget)) {
    const size_t before = budget_->waiting();
    thread_ = std::thread([this, agent, bytes, order, mu] {
      got_ = budget_->Acquire(agent, bytes, [this] { return give_up_.load(); });
      absl::MutexLock l(mu);
      order->push_back(agent);
    });
    for (int i = 0; i < 5000 && budget_->waiting() == before; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  ~Waiting() {
    give_up_ = true;
    thread_.join();
  }
  void GiveUp() { give_up_ = true; }
  std::shared_ptr<InflightBudget::Reservation> Join() {
    thread_.join();
    thread_ = std::thread([] {});
    return std::move(got_);
  }

 private:
  std::shared_ptr<InflightBudget> budget_;
  std::atomic<bool> give_up_{false};
  std::shared_ptr<InflightBudget::Reservation> got_;
  std::thread thread_;
};

TEST(InflightBudgetTest, WaitersAreServedInArrivalOrderAndSmallOnesDoNotJump) {
  auto budget = InflightBudget::Create(FortyBytesNoneLarge());
  std::vector<std::shared_ptr<InflightBudget::Reservation>> held;
  for (int i = 0; i < 7; ++i) held.push_back(budget->Acquire("h", 5, nullptr));
  absl::Mutex mu;
  std::vector<std::string> order;
  Waiting first(budget, "first", 10, &order, &mu);
  // 2 bytes would fit (35 + 2 <= 40), but "first" came before it.
  Waiting second(budget, "second", 2, &order, &mu);
  Waiting third(budget, "third", 10, &order, &mu);
  EXPECT_EQ(budget->waiting(), 3u);
  held.pop_back();  // 30 used: "first" fits (40); "second" then does not
  auto r1 = first.Join();
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(budget->used(), 40u);
  EXPECT_EQ(budget->waiting(), 2u);
  held.pop_back();  // 35: "second" (37); "third" does not (47)
  auto r2 = second.Join();
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(budget->used(), 37u);
  EXPECT_EQ(budget->waiting(), 1u);
  r1.reset();  // 27: "third" (37)
  auto r3 = third.Join();
  ASSERT_NE(r3, nullptr);
  EXPECT_EQ(budget->used(), 37u);
  absl::MutexLock l(&mu);
  EXPECT_THAT(order, ::testing::ElementsAre("first", "second", "third"));
}

TEST(InflightBudgetTest,
     AWaiterHeldByItsOwnAgentOrTheLargeLimitHoldsNoOneElse) {
  InflightBudgetOptions o;
  o.total = 100;
  o.per_agent = 30;
  o.large = 20;
  o.small_reserve = 40;
  auto budget = InflightBudget::Create(o);
  auto a = budget->Acquire("a", 25, nullptr);  // large, a's own limit near
  auto b = budget->Acquire("b", 30, nullptr);  // large: 55 of the 60 large
  absl::Mutex mu;
  std::vector<std::string> order;
  Waiting a2(budget, "a", 10, &order, &mu);     // a's limit (35 > 30)
  Waiting large(budget, "c", 20, &order, &mu);  // the large limit (75 > 60)
  auto small = budget->Acquire("d", 19, [] { return true; });
  ASSERT_NE(small, nullptr) << "a small result waited behind others' limits";
  EXPECT_EQ(budget->used(), 74u);
  a.reset();  // a's own limit frees: a2 (59); 79 large would still be over 60
  auto a2_got = a2.Join();
  EXPECT_NE(a2_got, nullptr);
  EXPECT_EQ(budget->waiting(), 1u);
  b.reset();  // 29 + 20 = 49 <= 60
  auto large_got = large.Join();
  EXPECT_NE(large_got, nullptr);
  EXPECT_EQ(budget->used(), 49u);  // d 19, a2 10, c 20
  EXPECT_EQ(budget->waiting(), 0u);
}

TEST(InflightBudgetTest, AWaiterThatGivesUpLetsThoseBehindItIn) {
  auto budget = InflightBudget::Create(FortyBytesNoneLarge());
  auto held = budget->Acquire("h", 35, nullptr);
  absl::Mutex mu;
  std::vector<std::string> order;
  Waiting big(budget, "big", 20, &order, &mu);
  Waiting small(budget, "small", 5, &order, &mu);
  big.GiveUp();  // no release: its leaving alone must let "small" in
  EXPECT_EQ(big.Join(), nullptr);
  auto small_got = small.Join();
  EXPECT_NE(small_got, nullptr);
  EXPECT_EQ(budget->used(), 40u);
}

TEST(InflightBudgetTest, ManyWaitersEachProceedOnceTheirBytesFitNeverOver) {
  // A full budget with 200 readers waiting (a thousand agents' streams in
  // the ingest benchmark): as reservations go one by one, every waiter
  // gets in exactly once, and the budget is never exceeded meanwhile.
  auto budget = InflightBudget::Create(FortyBytesNoneLarge());
  std::vector<std::shared_ptr<InflightBudget::Reservation>> held;
  for (int i = 0; i < 4; ++i) held.push_back(budget->Acquire("h", 10, nullptr));
  ASSERT_EQ(budget->used(), 40u);
  constexpr int kWaiters = 200;
  std::atomic<int> in{0};
  std::atomic<size_t> most{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      auto r = budget->Acquire(absl::StrCat("w", i), 10, nullptr);
      ASSERT_NE(r, nullptr);
      ++in;
      size_t now = budget->used(), seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      absl::SleepFor(absl::Microseconds(200));
    });
  }
  absl::SleepFor(absl::Milliseconds(20));
  held.clear();  // the first four go; each waiter's own goes as it ends
  for (auto& t : waiters) t.join();
  EXPECT_EQ(in.load(), kWaiters);
  EXPECT_LE(most.load(), 40u);
  EXPECT_EQ(budget->used(), 0u);
}

}  // namespace
}  // namespace netvigil::collector
