// The path engine against a simulated network: a fake IcmpTransport answers
// each probe as a scripted path would, on a FakeClock, so timing, loss,
// demultiplexing and timeouts are checked exactly and in microseconds.
#include "agent/probes/path_probe.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/probes/icmp_packet.h"
#include "common/report/path_report.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::netvigil::report::FormatPathReport;
using ::netvigil::testing::FakeClock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string P(const std::string& text) { return ParseAddress(text).value(); }

void Put16(std::string& b, size_t at, uint16_t v) {
  b[at] = static_cast<char>(v >> 8);
  b[at + 1] = static_cast<char>(v & 0xff);
}

// What a router or host sends back, built the way the kernel does.
std::string Ipv4Header(const std::string& src, const std::string& dst,
                       size_t payload) {
  std::string h(20, '\0');
  h[0] = 0x45;
  Put16(h, 2, static_cast<uint16_t>(20 + payload));
  h[8] = 64;
  h[9] = 1;
  h.replace(12, 4, src);
  h.replace(16, 4, dst);
  return h;
}

std::string Ipv6Header(const std::string& src, const std::string& dst,
                       size_t payload) {
  std::string h(40, '\0');
  h[0] = 0x60;
  Put16(h, 4, static_cast<uint16_t>(payload));
  h[6] = 58;
  h[7] = 64;
  h.replace(8, 16, src);
  h.replace(24, 16, dst);
  return h;
}

const std::string kHost4 = P("10.0.0.1");
const std::string kHost6 = P("fd00::1");

// A sent probe, as the fake network sees it.
struct Sent {
  std::string destination;
  int ttl;
  uint16_t identifier;
  uint16_t sequence;
  std::string icmp;
};

// The network's answer to a probe: who answers, how, after how long.
struct Answer {
  enum Kind { kTimeExceeded, kEchoReply, kUnreachable } kind;
  std::string from;
  absl::Duration delay;
  uint8_t code = 1;
};

using Network = std::function<std::optional<Answer>(const Sent&, int round)>;

class FakeTransport final : public IcmpTransport {
 public:
  FakeTransport(FakeClock& clock, Network network, bool datagram = false)
      : clock_(clock), network_(std::move(network)), datagram_(datagram) {}

  std::string kind() const override { return datagram_ ? "dgram" : "raw"; }
  bool SupportsIpVersion(int v) const override { return v == 4 || v == 6; }
  bool KernelSetsIdentifier() const override { return datagram_; }

  absl::Status Send(absl::string_view destination, int ttl,
                    absl::string_view icmp) override {
    if (fail_sends_) return absl::UnavailableError("send: Network unreachable");
    std::string msg(icmp);
    if (datagram_) Put16(msg, 4, 0x9999);  // the kernel's identifier
    absl::StatusOr<IcmpMessage> m =
        ParseIcmp(destination.size() == 4 ? 4 : 6, msg);
    EXPECT_TRUE(m.ok());
    Sent s{std::string(destination), ttl, m->identifier, m->sequence, msg};
    int& round = rounds_[{s.destination, ttl}];
    sent_.push_back(s);
    std::optional<Answer> a = network_(s, round++);
    if (!a.has_value()) return absl::OkStatus();
    queue_.emplace(clock_.Now() + a->delay, Reply(s, *a));
    return absl::OkStatus();
  }

  absl::Status Receive(absl::Duration timeout,
                       std::vector<IcmpPacketIn>& out) override {
    // Lets the resolver threads run, which work in real time.
    if (real_pause_ > absl::ZeroDuration()) absl::SleepFor(real_pause_);
    absl::Time now = clock_.Now();
    if (!extra_.empty()) {
      for (IcmpPacketIn& p : extra_) out.push_back(p);
      extra_.clear();
    }
    if (queue_.empty() || queue_.begin()->first > now + timeout) {
      clock_.Advance(timeout);
      return absl::OkStatus();
    }
    absl::Time at = queue_.begin()->first;
    if (at > now) clock_.Advance(at - now);
    while (!queue_.empty() && queue_.begin()->first <= at) {
      IcmpPacketIn p = queue_.begin()->second;
      p.received_at = queue_.begin()->first;
      out.push_back(std::move(p));
      queue_.erase(queue_.begin());
    }
    return absl::OkStatus();
  }

  IcmpPacketIn Reply(const Sent& s, const Answer& a) {
    bool v4 = s.destination.size() == 4;
    const std::string& host = v4 ? kHost4 : kHost6;
    IcmpPacketIn p;
    p.ip_version = v4 ? 4 : 6;
    p.source = a.from;
    if (datagram_ && a.kind != Answer::kEchoReply) {
      p.from_error_queue = true;
      p.error_type = a.kind == Answer::kTimeExceeded
                         ? (v4 ? kIcmp4TimeExceeded : kIcmp6TimeExceeded)
                         : (v4 ? kIcmp4DestUnreachable : kIcmp6DestUnreachable);
      p.error_code = a.kind == Answer::kUnreachable ? a.code : 0;
      p.data = s.icmp.substr(0, 8);
      return p;
    }
    std::string icmp;
    if (a.kind == Answer::kEchoReply) {
      icmp = s.icmp;
      icmp[0] = static_cast<char>(v4 ? kIcmp4EchoReply : kIcmp6EchoReply);
    } else {
      icmp = std::string(8, '\0');
      icmp[0] = static_cast<char>(
          a.kind == Answer::kTimeExceeded
              ? (v4 ? kIcmp4TimeExceeded : kIcmp6TimeExceeded)
              : (v4 ? kIcmp4DestUnreachable : kIcmp6DestUnreachable));
      icmp[1] = static_cast<char>(a.kind == Answer::kUnreachable ? a.code : 0);
      icmp += v4 ? Ipv4Header(host, s.destination, s.icmp.size())
                 : Ipv6Header(host, s.destination, s.icmp.size());
      icmp += s.icmp.substr(0, 8);
    }
    if (v4 && !datagram_) {
      p.data = Ipv4Header(a.from, host, icmp.size()) + icmp;
      p.has_ip_header = true;
      p.source = a.from;
    } else {
      p.data = icmp;
    }
    return p;
  }

  std::vector<Sent> sent_;
  std::vector<IcmpPacketIn> extra_;  // delivered on the next Receive
  bool fail_sends_ = false;
  absl::Duration real_pause_ = absl::ZeroDuration();

 private:
  FakeClock& clock_;
  Network network_;
  bool datagram_;
  std::map<std::pair<std::string, int>, int> rounds_;
  std::multimap<absl::Time, IcmpPacketIn> queue_;
};

class FakeNames final : public PathNameService {
 public:
  absl::StatusOr<std::string> Resolve(const std::string& name,
                                      int ip_version) override {
    if (name == "router.lab") return P("10.0.3.9");
    return absl::NotFoundError(absl::StrCat("name does not resolve: ", name,
                                            ": Name or service not known"));
  }
  std::string ReverseLookup(absl::string_view packed) override {
    return AddressToString(packed) == "10.0.1.254" ? "r1.lab" : "";
  }
};

// A three-router path: router k at 10.0.k.254 answers TTL k after k ms, the
// destination answers after 4 ms.
std::optional<Answer> ThreeRouters(const Sent& s, int round) {
  if (s.ttl <= 3) {
    return Answer{Answer::kTimeExceeded,
                  P(absl::StrCat("10.0.", s.ttl, ".254")),
                  absl::Milliseconds(s.ttl)};
  }
  return Answer{Answer::kEchoReply, s.destination, absl::Milliseconds(4)};
}

class PathProbeTest : public ::testing::Test {
 protected:
  PathOptions Opts(uint32_t count) {
    PathOptions o;
    o.count = count;
    o.interval = absl::Milliseconds(100);
    return o;
  }
  absl::Duration Took(const v1::PathRun& run) {
    return absl::Nanoseconds(
        TimeUtil::TimestampToNanoseconds(run.finished_at()) -
        TimeUtil::TimestampToNanoseconds(run.started_at()));
  }

  FakeClock clock_;
  FakeNames names_;
};

TEST_F(PathProbeTest, TimeoutRuleIsThreeTimesTheHighestRttBetweenFloorAndCap) {
  EXPECT_EQ(PathProbeTimeout(-absl::InfiniteDuration()), kPathTimeoutCap);
  EXPECT_EQ(PathProbeTimeout(absl::ZeroDuration()), kPathTimeoutFloor);
  EXPECT_EQ(PathProbeTimeout(absl::Milliseconds(10)), absl::Milliseconds(100));
  EXPECT_EQ(PathProbeTimeout(absl::Milliseconds(50)), absl::Milliseconds(150));
  EXPECT_EQ(PathProbeTimeout(absl::Seconds(1)), kPathTimeoutCap);
}

TEST_F(PathProbeTest, ReachesDestinationAndReportsEveryHop) {
  auto t = std::make_unique<FakeTransport>(clock_, ThreeRouters);
  FakeTransport* net = t.get();
  PathProbe probe(std::move(t), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(3));

  EXPECT_EQ(run.error(), "");
  EXPECT_TRUE(run.destination_reached());
  EXPECT_EQ(run.resolved_address(), "192.0.2.10");
  EXPECT_EQ(run.ip_version(), 4u);
  EXPECT_EQ(run.socket_kind(), v1::PATH_SOCKET_KIND_RAW);
  ASSERT_THAT(run.hops(), SizeIs(4));  // nothing past the destination
  for (int i = 0; i < 3; ++i) {
    const v1::PathHop& h = run.hops(i);
    EXPECT_EQ(h.ttl(), static_cast<uint32_t>(i + 1));
    ASSERT_THAT(h.addresses(), SizeIs(1));
    EXPECT_EQ(h.addresses(0).address(), absl::StrCat("10.0.", i + 1, ".254"));
    EXPECT_EQ(h.sent(), 3u);
    EXPECT_EQ(h.received(), 3u);
    EXPECT_EQ(h.loss_percent(), 0.0);
    EXPECT_DOUBLE_EQ(h.avg_ms(), i + 1.0);
    EXPECT_DOUBLE_EQ(h.stdev_ms(), 0.0);
    EXPECT_FALSE(h.is_destination());
  }
  EXPECT_TRUE(run.hops(3).is_destination());
  EXPECT_EQ(run.destination().ttl(), 4u);
  EXPECT_EQ(run.destination().addresses(0).address(), "192.0.2.10");
  EXPECT_DOUBLE_EQ(run.destination().last_ms(), 4.0);

  // Round one puts every TTL in flight at once; later rounds stop at the
  // destination's TTL.
  int first_round = 0;
  for (const Sent& s : net->sent_) first_round += s.ttl > 4 ? 1 : 0;
  EXPECT_EQ(first_round, 26);
  EXPECT_EQ(net->sent_.size(), 30u + 4u + 4u);
  // The run ends one timeout (3 x 4 ms, floored at 100 ms) after the last
  // round, not after a fixed 5 s grace: here the last reply ends it.
  EXPECT_LE(Took(run), absl::Milliseconds(200) + absl::Milliseconds(4));
}

TEST_F(PathProbeTest, LossAndLatencyFiguresAsMtrComputesThem) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl < 2) return ThreeRouters(s, round);
    if (round == 1 || round == 3) return std::nullopt;  // lost
    return Answer{Answer::kEchoReply, s.destination,
                  absl::Milliseconds(round == 0 ? 10 : 20)};
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(4));
  ASSERT_THAT(run.hops(), SizeIs(2));
  const v1::PathHop& d = run.destination();
  EXPECT_EQ(d.sent(), 4u);
  EXPECT_EQ(d.received(), 2u);
  EXPECT_DOUBLE_EQ(d.loss_percent(), 50.0);
  EXPECT_DOUBLE_EQ(d.best_ms(), 10.0);
  EXPECT_DOUBLE_EQ(d.worst_ms(), 20.0);
  EXPECT_DOUBLE_EQ(d.avg_ms(), 15.0);
  EXPECT_DOUBLE_EQ(d.last_ms(), 20.0);
  EXPECT_NEAR(d.stdev_ms(), 7.0710678, 1e-6);  // sample stdev of {10, 20}
}

TEST_F(PathProbeTest, SeveralRoutersAtOneHopAreAllListed) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl == 2) {
      return Answer{Answer::kTimeExceeded,
                    P(round % 2 ? "10.0.2.253" : "10.0.2.254"),
                    absl::Milliseconds(2)};
    }
    return ThreeRouters(s, round);
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(4));
  ASSERT_THAT(run.hops(), SizeIs(4));
  const v1::PathHop& h = run.hops(1);
  ASSERT_THAT(h.addresses(), SizeIs(2));
  EXPECT_EQ(h.addresses(0).address(), "10.0.2.254");
  EXPECT_EQ(h.addresses(0).received(), 2u);
  EXPECT_EQ(h.addresses(1).address(), "10.0.2.253");
  EXPECT_EQ(h.addresses(1).received(), 2u);
  std::string report = FormatPathReport(run, "here");
  EXPECT_THAT(report, HasSubstr("10.0.2.253"));
  EXPECT_THAT(report, HasSubstr("  2.|-- 10.0.2.254"));
}

TEST_F(PathProbeTest, UnreachableEndsThePathWithItsReason) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl >= 2) {
      return Answer{Answer::kUnreachable, P("10.0.2.254"),
                    absl::Milliseconds(2), /*code=*/1};
    }
    return ThreeRouters(s, round);
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(3));
  EXPECT_FALSE(run.destination_reached());
  EXPECT_EQ(run.error(),
            "destination unreachable: host unreachable (from 10.0.2.254 at "
            "hop 2)");
  ASSERT_THAT(run.hops(), SizeIs(2));
  EXPECT_THAT(run.hops(1).errors(), ElementsAre("host unreachable"));
  EXPECT_LE(Took(run), absl::Milliseconds(300));
}

TEST_F(PathProbeTest, SilenceBeyondARouterIsAnErrorInBoundedTime) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl == 1) return ThreeRouters(s, round);
    return std::nullopt;  // r2 drops everything
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(3));
  EXPECT_FALSE(run.destination_reached());
  EXPECT_EQ(run.error(), "destination not reached: no reply beyond hop 1");
  ASSERT_THAT(run.hops(), SizeIs(2));  // as mtr: one silent hop shown
  EXPECT_EQ(run.hops(1).addresses_size(), 0);
  EXPECT_DOUBLE_EQ(run.hops(1).loss_percent(), 100.0);
  // Last round at 200 ms; its probes stay open to a late ICMP error.
  EXPECT_EQ(Took(run), absl::Milliseconds(200) + kPathLateErrorWait);
}

// A router whose next hop fails ARP (or neighbour discovery) answers "host
// unreachable" about 3 s after the probe, long past the probe's timeout
// (100 ms here). mtr counts it at that hop; so must the probe.
TEST_F(PathProbeTest, LateUnreachableStillNamesTheHopAndTheReason) {
  for (const std::string target : {"192.0.2.10", "2001:db8::10"}) {
    SCOPED_TRACE(target);
    const bool v4 = target.find(':') == std::string::npos;
    const std::string router = v4 ? "10.0.2.254" : "2001:db8:2::254";
    Network net = [&](const Sent& s, int round) -> std::optional<Answer> {
      if (s.ttl == 1) return ThreeRouters(s, round);
      // ARP fails 3 s after the first probe queued; later ones wait less.
      return Answer{Answer::kUnreachable, P(router),
                    absl::Milliseconds(3000 - 100 * round),
                    /*code=*/static_cast<uint8_t>(v4 ? 1 : 3)};
    };
    FakeClock clock;
    PathProbe probe(std::make_unique<FakeTransport>(clock, net), clock, names_);
    v1::PathRun run = probe.Run(target, Opts(3));
    const std::string what = v4 ? "host unreachable" : "address unreachable";
    EXPECT_EQ(run.error(), absl::StrCat("destination unreachable: ", what,
                                        " (from ", router, " at hop 2)"));
    EXPECT_FALSE(run.destination_reached());
    ASSERT_THAT(run.hops(), SizeIs(2));
    const v1::PathHop& h = run.hops(1);
    EXPECT_THAT(h.errors(), ElementsAre(what));
    ASSERT_THAT(h.addresses(), SizeIs(1));
    EXPECT_EQ(h.addresses(0).address(), router);
    EXPECT_EQ(h.sent(), 3u);
    EXPECT_EQ(h.received(), 3u);  // as mtr: the error is the hop's answer
    EXPECT_DOUBLE_EQ(h.avg_ms(), 2900.0);
    // The errors came by 3 s; the run waited for them and no longer.
    EXPECT_LE(Took(run), absl::Milliseconds(3000));
  }
}

// Linux answers for an unreachable route at most 1/s after a burst: the
// missing answers are rate limiting, and the run does not wait for them.
TEST_F(PathProbeTest, UnreachableInTimeThenRateLimitedWaitsForNothingLate) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl == 1) return ThreeRouters(s, round);
    if (round > 0) return std::nullopt;
    return Answer{Answer::kUnreachable, P("10.0.2.254"), absl::Milliseconds(2),
                  /*code=*/1};
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(3));
  EXPECT_THAT(run.error(), HasSubstr("host unreachable (from 10.0.2.254 at "
                                     "hop 2)"));
  ASSERT_THAT(run.hops(), SizeIs(2));
  EXPECT_EQ(run.hops(1).received(), 1u);
  // Last round at 200 ms, then the floor timeout: no late wait.
  EXPECT_EQ(Took(run), absl::Milliseconds(300));
}

TEST_F(PathProbeTest, LateEchoOrTimeExceededIsStillLoss) {
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    if (s.ttl == 1) return ThreeRouters(s, round);
    if (s.ttl == 2) {
      return Answer{Answer::kTimeExceeded, P("10.0.2.254"),
                    absl::Milliseconds(1500)};
    }
    return Answer{Answer::kEchoReply, s.destination, absl::Milliseconds(1500)};
  };
  PathProbe probe(std::make_unique<FakeTransport>(clock_, net), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(3));
  EXPECT_EQ(run.error(), "destination not reached: no reply beyond hop 1");
  ASSERT_THAT(run.hops(), SizeIs(2));
  EXPECT_DOUBLE_EQ(run.hops(1).loss_percent(), 100.0);
}

TEST_F(PathProbeTest, NothingAnsweringWaitsOnlyTheCap) {
  PathProbe probe(std::make_unique<FakeTransport>(
                      clock_, [](const Sent&, int) { return std::nullopt; }),
                  clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(2));
  EXPECT_EQ(run.error(), "destination not reached: no reply from any hop");
  // The last round's probes wait for a late ICMP error, longer than the cap.
  EXPECT_EQ(Took(run), absl::Milliseconds(100) + kPathLateErrorWait);
}

TEST_F(PathProbeTest, NamesResolveOffThreadAndFailuresAreResults) {
  auto t = std::make_unique<FakeTransport>(clock_, ThreeRouters);
  t->real_pause_ = absl::Milliseconds(1);
  PathProbe probe(std::move(t), clock_, names_);
  PathOptions o = Opts(2);
  o.resolve_names = true;
  std::vector<v1::PathRun> runs =
      probe.RunMany({"no-such-host.invalid", "router.lab"}, o);
  ASSERT_THAT(runs, SizeIs(2));
  EXPECT_THAT(runs[0].error(), HasSubstr("name does not resolve"));
  EXPECT_THAT(runs[0].hops(), SizeIs(0));
  EXPECT_EQ(runs[1].error(), "");
  EXPECT_EQ(runs[1].resolved_address(), "10.0.3.9");
  EXPECT_EQ(runs[1].hops(0).addresses(0).hostname(), "r1.lab");
}

TEST_F(PathProbeTest, ManyTargetsShareTheSocketAndOneFailureStallsNoOther) {
  // Even targets answer fast; odd ones sit behind a router dropping all.
  Network net = [](const Sent& s, int round) -> std::optional<Answer> {
    bool odd = static_cast<uint8_t>(s.destination.back()) % 2 == 1;
    if (s.ttl == 1) return ThreeRouters(s, round);
    if (odd) return std::nullopt;
    return Answer{Answer::kEchoReply, s.destination, absl::Milliseconds(3)};
  };
  auto t = std::make_unique<FakeTransport>(clock_, net);
  FakeTransport* fake = t.get();
  PathProbe probe(std::move(t), clock_, names_);
  std::vector<std::string> targets;
  for (int i = 0; i < 50; ++i)
    targets.push_back(absl::StrCat("198.51.100.", i));
  std::vector<v1::PathRun> runs = probe.RunMany(targets, Opts(10));
  ASSERT_THAT(runs, SizeIs(50));
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE(targets[i]);
    EXPECT_EQ(runs[i].target(), targets[i]);
    if (i % 2 == 0) {
      EXPECT_EQ(runs[i].error(), "");
      ASSERT_THAT(runs[i].hops(), SizeIs(2));
      EXPECT_EQ(runs[i].destination().received(), 10u);
      EXPECT_EQ(runs[i].destination().addresses(0).address(), targets[i]);
      // 9 intervals, then at most the floor timeout for stray probes.
      EXPECT_LE(Took(runs[i]), absl::Milliseconds(1000));
    } else {
      EXPECT_EQ(runs[i].error(),
                "destination not reached: no reply beyond hop 1");
    }
  }
  // Every target got its own identifier; sequences are unique in flight.
  std::map<uint16_t, std::string> owner;
  for (const Sent& s : fake->sent_) {
    auto [it, fresh] = owner.emplace(s.identifier, s.destination);
    EXPECT_EQ(it->second, s.destination);
  }
  EXPECT_EQ(owner.size(), 50u);
}

TEST_F(PathProbeTest, ForeignAndMalformedPacketsAreSkipped) {
  auto t = std::make_unique<FakeTransport>(clock_, ThreeRouters);
  FakeTransport* fake = t.get();
  // Another program's echo reply reusing a sequence, and garbage.
  IcmpPacketIn foreign;
  foreign.ip_version = 4;
  foreign.has_ip_header = true;
  std::string reply = BuildEchoRequest(4, 0x0001, 0, 8);
  reply[0] = 0;
  foreign.data = Ipv4Header(P("192.0.2.10"), kHost4, reply.size()) + reply;
  IcmpPacketIn garbage;
  garbage.ip_version = 6;
  garbage.data = "\x81";
  fake->extra_ = {foreign, garbage};
  PathProbe probe(std::move(t), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(2));
  EXPECT_EQ(run.error(), "");
  EXPECT_EQ(run.destination().received(), 2u);
}

TEST_F(PathProbeTest, DatagramSocketsMatchBySequenceAndReadTheErrorQueue) {
  PathProbe probe(
      std::make_unique<FakeTransport>(clock_, ThreeRouters, /*datagram=*/true),
      clock_, names_);
  v1::PathRun run = probe.Run("2001:db8::10", Opts(3));
  EXPECT_EQ(run.error(), "");
  EXPECT_EQ(run.socket_kind(), v1::PATH_SOCKET_KIND_DGRAM);
  EXPECT_EQ(run.ip_version(), 6u);
  ASSERT_THAT(run.hops(), SizeIs(4));
  EXPECT_EQ(run.hops(0).addresses(0).address(), "10.0.1.254");
  EXPECT_EQ(run.hops(2).received(), 3u);
  EXPECT_EQ(run.destination().addresses(0).address(), "2001:db8::10");
}

TEST_F(PathProbeTest, TargetThatCannotBeSentToFailsAtOnce) {
  auto t = std::make_unique<FakeTransport>(clock_, ThreeRouters);
  t->fail_sends_ = true;
  PathProbe probe(std::move(t), clock_, names_);
  v1::PathRun run = probe.Run("192.0.2.10", Opts(10));
  EXPECT_THAT(run.error(), HasSubstr("cannot send probes to 192.0.2.10"));
  EXPECT_LT(Took(run), absl::Milliseconds(10));
}

TEST_F(PathProbeTest, WrongIpVersionIsAnError) {
  PathProbe probe(std::make_unique<FakeTransport>(clock_, ThreeRouters), clock_,
                  names_);
  PathOptions o = Opts(1);
  o.ip_version = 6;
  v1::PathRun run = probe.Run("192.0.2.10", o);
  EXPECT_EQ(run.error(), "address 192.0.2.10 is not IPv6");
}

TEST_F(PathProbeTest, ReportHasMtrColumns) {
  PathProbe probe(std::make_unique<FakeTransport>(clock_, ThreeRouters), clock_,
                  names_);
  std::string report =
      FormatPathReport(probe.Run("192.0.2.10", Opts(2)), "here");
  EXPECT_THAT(report, HasSubstr("Loss%   Snt   Rcv   Last    Avg   Best   "
                                "Wrst  StDev"));
  EXPECT_THAT(report, HasSubstr("  4.|-- 192.0.2.10"));
  EXPECT_THAT(report, HasSubstr("  0.0%     2     2    4.0    4.0    4.0    "
                                "4.0    0.0"));
}

}  // namespace
}  // namespace netvigil::agent
