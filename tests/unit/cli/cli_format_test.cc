#include <fstream>
#include <regex>
#include <set>

#include "collector/cli/commands.h"
#include "collector/cli/format.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace netvigil::cli {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp At(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

TEST(FormatTest, HumanAgo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(HumanAgo(google::protobuf::Timestamp(), now), "never");
  EXPECT_EQ(HumanAgo(At(now - absl::Seconds(2)), now), "just now");
  EXPECT_EQ(HumanAgo(At(now - absl::Seconds(42)), now), "42 s ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Minutes(3)), now), "3 min ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Hours(5)), now), "5 h ago");
  EXPECT_EQ(HumanAgo(At(now - absl::Hours(72)), now), "3 days ago");
  EXPECT_EQ(HumanAgo(At(now + absl::Minutes(2)), now), "in 2 min");
}

TEST(FormatTest, Units) {
  EXPECT_EQ(HumanBitrate(940), "940 bit/s");
  EXPECT_EQ(HumanBitrate(94.1e6), "94.1 Mbit/s");
  EXPECT_EQ(HumanBitrate(17.6e9), "17.6 Gbit/s");
  EXPECT_EQ(Percent(12.5), "12.5%");
  EXPECT_EQ(Millis(0.421), "0.42 ms");
  EXPECT_EQ(Millis(12.34), "12.3 ms");
}

TEST(AgentsTableTest, Golden) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  v1::ListAgentsResponse resp;
  auto* a = resp.add_agents();
  a->set_name("laptop");
  a->add_addresses("198.18.1.11");
  a->set_version("0.1.0");
  a->set_online(true);
  a->set_clock_offset_ms(7'200'400);  // two hours ahead
  *a->mutable_last_seen() = At(now - absl::Seconds(1));
  auto* b = resp.add_agents();
  b->set_name("nas-basement");
  b->add_addresses("198.18.1.12");
  b->add_addresses("fd4e:7669:6c00:1::12");
  b->set_version("0.1.0");
  b->set_online(false);
  *b->mutable_last_seen() = At(now - absl::Minutes(7));
  EXPECT_EQ(RenderAgents(resp, now),
            "NAME          ADDRESS                           VERSION  STATE    "
            "LAST SEEN  CLOCK\n"
            "laptop        198.18.1.11                       0.1.0    online   "
            "just now   +2h\n"
            "nas-basement  198.18.1.12,fd4e:7669:6c00:1::12  0.1.0    offline  "
            "7 min ago  -\n");
}

TEST(AgentsTableTest, ARevokedAgentSaysSo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  v1::ListAgentsResponse resp;
  auto* a = resp.add_agents();
  a->set_name("old-pi");
  a->set_version("0.1.0");
  a->set_revoked(true);
  *a->mutable_last_seen() = At(now - absl::Hours(3));
  EXPECT_EQ(RenderAgents(resp, now),
            "NAME    ADDRESS  VERSION  STATE    LAST SEEN  CLOCK\n"
            "old-pi  -        0.1.0    revoked  3 h ago    -\n");
}

TEST(AgentsTableTest, NoAgentsSaysSo) {
  EXPECT_EQ(RenderAgents(v1::ListAgentsResponse(), absl::Now()),
            "no agents have connected yet\n");
}

// `alerts --kind` refuses a kind it does not know, so its list must be the
// analyzer's: read from collector/analysis/analyzer.cc's k...[] names.
TEST(AlertKindsTest, AreTheAnalyzersKinds) {
  std::ifstream in(std::string(NETVIGIL_SOURCE_DIR) +
                   "/collector/analysis/analyzer.cc");
  ASSERT_TRUE(in) << "analyzer.cc not found";
  const std::regex kind(R"re(^constexpr char k\w+\[\] = "([a-z_]+)";)re");
  std::set<std::string> analyzer;
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, kind)) analyzer.insert(m[1]);
  }
  const std::vector<std::string> cli = AlertKinds();
  EXPECT_EQ(std::set<std::string>(cli.begin(), cli.end()), analyzer);
  EXPECT_GE(analyzer.size(), 10u);
}

}  // namespace
}  // namespace netvigil::cli
