// The Prometheus text format (collector/metrics/exposition.h) and the page's
// families (collector_metrics.h): escaping that a hostile label value cannot
// break out of, values as the format spells them, and bounded labels.
#include "collector/metrics/exposition.h"

#include "collector/metrics/collector_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace netvigil::collector::metrics {
namespace {

using ::testing::HasSubstr;

TEST(ExpositionTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain-name.lan"), "plain-name.lan");
  // Bytes that are not UTF-8 are written as \xNN first, then escaped.
  EXPECT_EQ(EscapeLabelValue(std::string("x\xff", 2)), "x\\\\xFF");
  EXPECT_EQ(EscapeHelp("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
}

TEST(ExpositionTest, ValuesAsTheFormatSpellsThem) {
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(94.5e6), "94500000");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatValue(10), "10");
  EXPECT_EQ(FormatValue(-0.0), "-0");
  EXPECT_EQ(FormatValue(2.5e-6), "2.5e-06");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(ExpositionTest, RendersHelpTypeAndSamples) {
  std::vector<Family> f = {
      {"netvigil_x_total",
       "Things.\nCounted.",
       "counter",
       {{"", {{"host", "h\"1"}, {"target", "t"}}, 3}}},
      {"bad name", "skipped", "gauge", {{"", {}, 1}}},
      {"netvigil_y", "Y.", "gauge", {{"", {{"__reserved", "x"}}, 1}}}};
  EXPECT_EQ(Render(f),
            "# HELP netvigil_x_total Things.\\nCounted.\n"
            "# TYPE netvigil_x_total counter\n"
            "netvigil_x_total{host=\"h\\\"1\",target=\"t\"} 3\n"
            "# HELP netvigil_y Y.\n"
            "# TYPE netvigil_y gauge\n"
            "netvigil_y 1\n");
}

TEST(ResultCountersTest, RefusalReasonsAreBoundedLabels) {
  EXPECT_EQ(ResultCounters::ReasonLabel("refused: path.target: missing"),
            "path.target");
  EXPECT_EQ(ResultCounters::ReasonLabel(
                "refused: sockets.sockets[12].local_address: too long"),
            "sockets.sockets[].local_address");
  EXPECT_EQ(ResultCounters::ReasonLabel("refused: a \"b\": c"), "other");
  EXPECT_EQ(ResultCounters::ReasonLabel("refused: no colon"), "other");

  ResultCounters c;
  for (int i = 0; i < 100; ++i) {
    v1::Result r;
    r.mutable_gap()->set_count(1);
    r.mutable_gap()->set_reason("refused: field" + std::to_string(i) + ": x");
    c.OnResult(r);
  }
  v1::Result spool;
  spool.mutable_gap()->set_count(7);
  spool.mutable_gap()->set_reason("spool full");
  c.OnResult(spool);
  c.OnResult(v1::Result());  // not a gap
  ResultCounters::Snapshot s = c.snapshot();
  EXPECT_EQ(s.refused.size(), ResultCounters::kMaxReasons + 1);
  EXPECT_EQ(s.refused["other"], 100 - int{ResultCounters::kMaxReasons});
  EXPECT_EQ(s.spool_gaps, 1);
  EXPECT_EQ(s.spool_lost_results, 7);
}

TEST(CollectorMetricsTest, SeriesAreBounded) {
  v1::OverviewResponse o;
  for (int i = 0; i < 5; ++i) {
    auto* h = o.add_hosts();
    h->mutable_agent()->set_name("h" + std::to_string(i));
    h->mutable_agent()->set_online(i % 2 == 0);
    auto* p = h->add_paths();
    p->set_target("t");
    p->set_loss_percent(50);
    p->set_destination_reached(true);
    p->set_avg_ms(20);
  }
  const std::string page = Render(BuildFamilies(&o, IngestStats(), {}, 3));
  EXPECT_THAT(page, HasSubstr("netvigil_agents_online 3\n"));
  EXPECT_THAT(
      page,
      HasSubstr("netvigil_path_loss_ratio{host=\"h0\",target=\"t\"} 0.5"));
  EXPECT_THAT(
      page,
      HasSubstr("netvigil_path_rtt_seconds{host=\"h2\",target=\"t\"} 0.02"));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("host=\"h3\"")));
  EXPECT_THAT(page, HasSubstr("netvigil_metrics_series_dropped 10\n"));
  // Without the Query service: the collector's own figures only.
  const std::string down = Render(BuildFamilies(nullptr, IngestStats(), {}));
  EXPECT_THAT(down, HasSubstr("netvigil_query_up 0\n"));
  EXPECT_THAT(down, ::testing::Not(HasSubstr("netvigil_path_loss_ratio")));
}

}  // namespace
}  // namespace netvigil::collector::metrics
