// collector/analysis/rules/speed.{h,cc}: the speed rules as pure functions
// over SpeedBaseline (no Analyzer, no store, no clock).
#include "collector/analysis/rules/speed.h"
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(RulesSpeedTest, DirectionsOfABidirectionalTest) {
  v1::Result r = testing::SpeedResult("h1", "h2", 9e8);
  r.mutable_speed()->set_bidirectional(true);
  r.mutable_speed()->mutable_reverse_figures()->set_received_bps(4e8);
  std::vector<SpeedDirection> d = SpeedDirectionsOf("h1", r.speed());
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].key, "h1>h2");
  EXPECT_DOUBLE_EQ(d[0].bps, 9e8);
  EXPECT_EQ(d[1].key, "h2>h1");
  EXPECT_DOUBLE_EQ(d[1].bps, 4e8);
  v1::Result ext = testing::SpeedResult("h1", "speed.example", 1e8, true);
  d = SpeedDirectionsOf("h1", ext.speed());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].receiver, "external:speed.example");
}

TEST(RulesSpeedTest, APairDegradesAfterPersistLowRuns) {
  AnalysisOptions o;
  internal::SpeedBaseline p;
  absl::Time now = kT0;
  for (double bps : {9e8, 9.2e8, 8.9e8}) {
    p = UpdateSpeedPair(p, {"h1>h2", "h1", "h2", bps}, "h1", 1, false, now, o);
    now += absl::Hours(1);
  }
  EXPECT_FALSE(p.degraded());
  const absl::Time first_low = now;
  p = UpdateSpeedPair(p, {"h1>h2", "h1", "h2", 1e8}, "h1", 2, false, now, o);
  EXPECT_FALSE(p.degraded()) << "one low run is not a slow link";
  EXPECT_EQ(p.low_since_us(), absl::ToUnixMicros(first_low));
  now += absl::Hours(1);
  const internal::SpeedBaseline before = p;
  p = UpdateSpeedPair(p, {"h1>h2", "h1", "h2", 1e8}, "h1", 3, false, now, o);
  EXPECT_TRUE(p.degraded());
  EXPECT_DOUBLE_EQ(p.baseline_bps(), 9e8);
  EXPECT_EQ(p.bps_size(), 3) << "low runs stay out of the baseline";
  EXPECT_FALSE(before.degraded()) << "the input is not changed";
}

// A pair's latest state: measured at `at` and an hour before; a degraded
// one has been low since two hours before `at`.
internal::SpeedBaseline Pair(const std::string& s, const std::string& r,
                             bool degraded, absl::Time at) {
  internal::SpeedBaseline p;
  p.set_agent(s);
  p.set_sender(s);
  p.set_receiver(r);
  p.set_has_latest(true);
  p.set_at_us(absl::ToUnixMicros(at));
  p.set_degraded(degraded);
  p.set_last_bps(degraded ? 1e8 : 9e8);
  p.set_baseline_bps(9e8);
  p.set_low_since_us(absl::ToUnixMicros(at - absl::Hours(2)));
  p.add_recent_at_us(absl::ToUnixMicros(at - absl::Hours(1)));
  p.add_recent_at_us(absl::ToUnixMicros(at));
  return p;
}

SpeedBaselines Mesh(
    const std::vector<std::string>& hosts,
    const std::function<bool(const std::string&, const std::string&)>& bad,
    absl::Time at) {
  SpeedBaselines m;
  for (const auto& s : hosts) {
    for (const auto& r : hosts) {
      if (s != r) m[s + ">" + r] = Pair(s, r, bad(s, r), at);
    }
  }
  return m;
}

TEST(RulesSpeedTest, EveryPairThroughOneHostIsThatHostsLink) {
  AnalysisOptions o;
  const SpeedBaselines m = Mesh(
      {"h1", "h2", "h3", "h4"},
      [](const std::string& s, const std::string& r) {
        return s == "h2" || r == "h2";
      },
      kT0);
  CrossHostVerdict v = EvaluateSpeed(m, {}, kT0, o);
  ASSERT_EQ(v.conds.size(), 1u);
  const Condition& c = v.conds.at("speed_low host=h2");
  EXPECT_EQ(c.scope, v1::ALERT_SCOPE_HOST);
  EXPECT_THAT(c.hosts, ElementsAre("h2"));
  EXPECT_EQ(c.details.count("pair.h1>h2"), 1u);
  EXPECT_EQ(c.details.count("pair.h3>h1"), 0u);
}

TEST(RulesSpeedTest, EveryPairIsTheLan) {
  AnalysisOptions o;
  const SpeedBaselines m = Mesh(
      {"h1", "h2", "h3"},
      [](const std::string&, const std::string&) { return true; }, kT0);
  CrossHostVerdict v = EvaluateSpeed(m, {}, kT0, o);
  ASSERT_EQ(v.conds.size(), 1u);
  EXPECT_EQ(v.conds.at("speed_low lan").scope, v1::ALERT_SCOPE_LAN);
  EXPECT_EQ(v.conds.at("speed_low lan").details.at("pairs"), "6");
}

TEST(RulesSpeedTest, APairWaitsWhileItsHostsOtherPairsHaveNotBeenMeasured) {
  AnalysisOptions o;
  o.speed_settle = absl::Hours(3);
  SpeedBaselines m = Mesh(
      {"h1", "h2", "h3"},
      [](const std::string& s, const std::string& r) {
        return s == "h1" && r == "h2";
      },
      kT0);
  // h1>h3 was last measured before the pair's fault began.
  m["h1>h3"] = Pair("h1", "h3", false, kT0 - absl::Hours(3));
  m["h1>h3"].clear_recent_at_us();
  m["h1>h3"].add_recent_at_us(absl::ToUnixMicros(kT0 - absl::Hours(3)));
  CrossHostVerdict v = EvaluateSpeed(m, {}, kT0, o);
  EXPECT_THAT(v.conds, IsEmpty());
  EXPECT_THAT(v.held, ElementsAre("speed_low pair=h1>h2"));
  // After the settle time it is decided with what there is.
  // (the fault began at kT0 - 2 h).
  v = EvaluateSpeed(m, {}, kT0 + absl::Hours(1), o);
  EXPECT_EQ(v.conds.count("speed_low pair=h1>h2"), 1u);
}

}  // namespace
}  // namespace netvigil::collector::rules
