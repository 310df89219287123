// The `analysis:` config section: defaults, values, and file:line errors
// for thresholds out of range.
#include "collector/analysis/analysis_options.h"

#include "common/collector_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

absl::Status Parse(const std::string& yaml, AnalysisOptions* o) {
  YAML::Node root = YAML::Load(yaml);
  return ParseAnalysisOptions(root["analysis"], "c.yaml", o);
}

TEST(AnalysisOptionsTest, AbsentSectionGivesDefaults) {
  AnalysisOptions o;
  ASSERT_THAT(Parse("database:\n  dsn: x\n", &o), IsOk());
  EXPECT_EQ(o.learning_period, absl::Hours(24));
  EXPECT_EQ(o.path_loss_percent, 10);
  EXPECT_EQ(o.latency_persist_runs, 3u);
}

TEST(AnalysisOptionsTest, ReadsValues) {
  AnalysisOptions o;
  ASSERT_THAT(Parse("analysis:\n"
                    "  learning_period: 0s\n"
                    "  path_loss_percent: 5.5\n"
                    "  latency_persist_runs: 4\n"
                    "  speed_drop_ratio: 0.7\n"
                    "  cross_host_settle: 30s\n",
                    &o),
              IsOk());
  EXPECT_EQ(o.learning_period, absl::ZeroDuration());
  EXPECT_EQ(o.path_loss_percent, 5.5);
  EXPECT_EQ(o.latency_persist_runs, 4u);
  EXPECT_EQ(o.speed_drop_ratio, 0.7);
  EXPECT_EQ(o.cross_host_settle, absl::Seconds(30));
}

struct BadCase {
  std::string yaml;
  std::string message;
};

class AnalysisOptionsBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(AnalysisOptionsBadTest, NamesFileLineAndField) {
  AnalysisOptions o;
  const AnalysisOptions before = o;
  EXPECT_THAT(Parse(GetParam().yaml, &o),
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().message));
  EXPECT_EQ(o.path_loss_percent, before.path_loss_percent) << "untouched";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AnalysisOptionsBadTest,
    ::testing::Values(
        BadCase{"analysis:\n  path_loss_percent: 0\n",
                "c.yaml:2:22: analysis.path_loss_percent: must be above 0"},
        BadCase{"analysis:\n  path_loss_percent: 150\n",
                "analysis.path_loss_percent: must be above 0 and at most 100, "
                "got 150"},
        BadCase{"analysis:\n  speed_drop_ratio: 1.5\n",
                "c.yaml:2:21: analysis.speed_drop_ratio"},
        BadCase{
            "analysis:\n  latency_persist_runs: 0\n",
            "c.yaml:2:25: analysis.latency_persist_runs: must be between 1"},
        BadCase{"analysis:\n  latency_persist_runs: -3\n",
                "expected a whole number"},
        BadCase{"analysis:\n  learning_period: soon\n",
                "c.yaml:2:20: analysis.learning_period: expected a duration"},
        BadCase{"analysis:\n  learning_period: -1h\n", "must be between"},
        BadCase{"analysis:\n  path_loss_percent: lots\n", "expected a number"},
        BadCase{"analysis:\n  path_los_percent: 5\n",
                "c.yaml:2:3: analysis.path_los_percent: unknown field"},
        BadCase{"analysis:\n  latency_window_runs: 4\n  latency_min_runs: 5\n",
                "c.yaml:3:21: analysis.latency_min_runs: must not exceed"},
        BadCase{
            "analysis:\n  path_loss_clear_percent: 20\n",
            "c.yaml:2:28: analysis.path_loss_clear_percent: must not exceed"},
        BadCase{"analysis:\n  path_loss_critical_percent: 5\n",
                "must not be below path_loss_percent"},
        BadCase{"analysis: [1, 2]\n",
                "c.yaml:1:11: analysis: expected a mapping"},
        // A key given twice: the second line would be silently ignored.
        BadCase{"analysis:\n  speed_settle: 3h\n  max_evidence: 5\n  "
                "speed_settle: 1h\n",
                "c.yaml:4:3: analysis.speed_settle: given twice, on line 2 and "
                "on line 4"}));

// The analysis options against the probe plan: combinations that cannot
// work are refused with the file, the line and both fields.
absl::Status ParseWhole(const std::string& yaml) {
  auto c = ParseCollectorConfig(yaml, "c.yaml");
  if (!c.ok()) return c.status();
  AnalysisOptions o;
  return ParseAnalysisOptionsFor(*c, &o);
}

TEST(AnalysisAgainstConfigTest, DefaultsAndTheShippedValuesWork) {
  EXPECT_THAT(ParseWhole("{}"), IsOk());
  EXPECT_THAT(ParseWhole("probes:\n  speed:\n    period: 2h\n"), IsOk());
  EXPECT_THAT(ParseWhole("probes:\n  path:\n    every: 100s\n"), IsOk());
  // Nothing to compare when the probe is off.
  EXPECT_THAT(ParseWhole("probes:\n  speed:\n    enabled: false\n"
                         "analysis:\n  speed_settle: 0s\n"),
              IsOk());
}

TEST(AnalysisAgainstConfigTest, ASettleShorterThanTheSpeedPeriodIsRefused) {
  // Issue 16's lab: a 130 s period with a 90 s settle gave pair alerts.
  EXPECT_THAT(
      ParseWhole("probes:\n  speed:\n    period: 130s\n"
                 "analysis:\n  speed_settle: 90s\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "c.yaml:5:17: analysis.speed_settle (1m30s) is shorter than "
               "probes.speed.period 2m10s (line 3): "));
  // Not given: the default settle (4h), at the period's line.
  EXPECT_THAT(ParseWhole("probes:\n  speed:\n    period: 5h\n"
                         "analysis:\n  speed_window: 6h\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "c.yaml:3:13: analysis.speed_settle (4h) is shorter "
                       "than probes.speed.period 5h (line 3)"));
}

TEST(AnalysisAgainstConfigTest, OtherCombinationsThatCannotWork) {
  EXPECT_THAT(ParseWhole("probes:\n  speed:\n    period: 4h\n"
                         "analysis:\n  speed_settle: 4h\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "c.yaml:3:13: analysis.speed_window (3h) is shorter "
                       "than probes.speed.period 4h"));
  // Hourly path probes are allowed: only cross-host grouping suffers.
  EXPECT_THAT(ParseWhole("probes:\n  path:\n    every: 1h\n"), IsOk());
}

}  // namespace
}  // namespace netvigil::collector
