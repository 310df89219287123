// What bounds an agent message's memory before it is parsed: the wire walk
// (message_precheck.h) on real and hostile shapes, and the in-flight
// budget's admission rules (inflight_budget.h).
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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

TEST(InflightBudgetTest, ManyWaitersEachProceedOnceTheirBytesFitNeverOver) {
  // A full budget with 200 readers waiting (a thousand agents' streams in
  // the ingest benchmark): as reservations go one by one, every waiter
  // gets in exactly once, and the budget is never exceeded meanwhile.
  InflightBudgetOptions o;
  o.total = 40;
  o.per_agent = 40;
  o.large = 1000;
  auto budget = InflightBudget::Create(o);
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
