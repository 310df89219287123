// collector/cli/commands.cc: what the commands check before they ask.
#include "collector/cli/commands.h"

#include <fstream>
#include <regex>
#include <set>

#include "gtest/gtest.h"

namespace netvigil::cli {
namespace {

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
