// collector/analysis/rules/files.{h,cc}: which processes of a files
// snapshot may be news, as pure functions.
#include "collector/analysis/rules/files.h"
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::rules {
namespace {

using ::netvigil::collector::testing::FilesResult;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

template <typename M>
std::vector<std::string> Keys(const M& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

TEST(RulesFilesTest, ProcessesHiddenAndDeletedExecutables) {
  const v1::Result r = FilesResult({
      {"/usr/bin/vim", "/home/ann/a"},
      {"/usr/bin/vim", "/home/ann/b"},
      {"/home/ann/.cache/x/run", "/home/ann/doc"},
      {"/opt/tool", "/home/ann/c", 7, /*exe_deleted=*/true},
      {"", "/home/ann/d"},
  });
  FileCandidates c = FileCandidatesOf(r.files());
  EXPECT_THAT(Keys(c.processes),
              UnorderedElementsAre("/usr/bin/vim", "/home/ann/.cache/x/run",
                                   "/opt/tool"));
  EXPECT_THAT(Keys(c.hidden),
              UnorderedElementsAre("/home/ann/.cache/x/run", "/opt/tool"));
  EXPECT_EQ(c.no_exe, 1u);
  EXPECT_EQ(c.processes.at("/usr/bin/vim"), 0u) << "the first entry";
  EXPECT_THAT(DescribeHiddenExe(r.files().entries(3)).summary,
              HasSubstr("deleted executable /opt/tool holding /home/ann/c"));
  EXPECT_THAT(DescribeHiddenExe(r.files().entries(2)).summary,
              HasSubstr("hidden executable"));
  EXPECT_THAT(DescribeFileProcess(r.files().entries(0)).summary,
              HasSubstr("new process /usr/bin/vim holding /home/ann/a"));
}

}  // namespace
}  // namespace netvigil::collector::rules
