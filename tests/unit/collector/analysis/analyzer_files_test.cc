// File rules: a process (by executable) not seen before under a watched
// folder; hidden or deleted executables holding files there.
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::IsEmpty;

const FileUse kEditor{"/usr/bin/vim.basic", "/home/ann/notes.txt", 300};

class FileRulesTest : public AnalyzerTest {};

TEST_F(FileRulesTest, UnknownProcessUnderAWatchedFolderAlerts) {
  Send("a", FilesResult({kEditor}));
  Send("a",
       FilesResult(
           {kEditor, {"/opt/sync/syncd", "/home/ann/.ssh/id_ed25519", 400}}));
  std::vector<v1::Alert> open = Open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].kind(), "new_file_process");
  EXPECT_EQ(open[0].subject(), "/opt/sync/syncd");
  EXPECT_EQ(open[0].details().at("path"), "/home/ann/.ssh/id_ed25519");
}

TEST_F(FileRulesTest, TheSameExecutableWithANewPidOrFileIsNotNews) {
  Send("a", FilesResult({kEditor}));
  Send("a", FilesResult({{"/usr/bin/vim.basic", "/home/ann/other.txt", 301}}));
  Send("a", FilesResult({{"/usr/bin/vim.basic", "/home/ann/notes.txt", 9999}}));
  EXPECT_THAT(events_, IsEmpty());
}

TEST_F(FileRulesTest, HiddenAndDeletedExecutablesAlert) {
  Send("a", FilesResult({kEditor}));
  Send("a", FilesResult({kEditor,
                         {"/home/ann/.cache/.x/miner", "/home/ann/wallet", 500},
                         {"/tmp/dropper", "/home/ann/.bashrc", 501, true}}));
  std::vector<std::string> hidden;
  for (const auto& a : Open()) {
    if (a.kind() == "hidden_exe") {
      hidden.push_back(a.subject());
      EXPECT_EQ(a.severity(), v1::SEVERITY_CRITICAL);
    }
  }
  EXPECT_THAT(hidden, ::testing::UnorderedElementsAre(
                          "/home/ann/.cache/.x/miner", "/tmp/dropper"));
}

TEST_F(FileRulesTest, HiddenExecutablesAlertEvenWhileLearning) {
  options_.learning_period = absl::Hours(24);
  Restart();
  Send("a", FilesResult({kEditor}));
  Send("a", FilesResult({kEditor, {"/home/ann/.x/run", "/home/ann/a", 500}}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].kind(), "hidden_exe");
}

TEST_F(FileRulesTest, AcknowledgedProcessDoesNotAlertAgain) {
  Send("a", FilesResult({kEditor}));
  const FileUse sync{"/opt/sync/syncd", "/home/ann/doc", 400};
  Send("a", FilesResult({kEditor, sync}));
  ASSERT_EQ(Open().size(), 1u);
  absl::StatusOr<v1::Alert> acked = analyzer_->Ack(Open()[0].id(), "ann");
  ASSERT_TRUE(acked.ok());
  EXPECT_TRUE(acked->acknowledged());
  EXPECT_EQ(acked->acknowledged_by(), "ann");
  // Gone (resolved), then back with a new PID: no new alert.
  Send("a", FilesResult({kEditor}));
  EXPECT_THAT(Open(), IsEmpty());
  Send("a", FilesResult({kEditor, {"/opt/sync/syncd", "/home/ann/doc", 401}}));
  EXPECT_THAT(Open(), IsEmpty());
  EXPECT_EQ(Opened(), 1u);
}

TEST_F(FileRulesTest, SameUnknownProcessOnTwoHostsIsOneAlert) {
  Send("a", FilesResult({kEditor}));
  Send("b", FilesResult({kEditor}));
  const FileUse x{"/usr/local/bin/exfil", "/home/ann/doc", 1};
  Send("a", FilesResult({kEditor, x}));
  Send("b", FilesResult({kEditor, x}));
  ASSERT_EQ(Open().size(), 1u);
  EXPECT_EQ(Open()[0].scope(), v1::ALERT_SCOPE_MULTI_HOST);
}

TEST_F(FileRulesTest, EntriesWithoutExecutableAreSkipped) {
  Send("a", FilesResult({kEditor}));
  Send("a", FilesResult({kEditor, {"", "/home/ann/x", 1}}));
  EXPECT_THAT(events_, IsEmpty());
}

}  // namespace
}  // namespace netvigil::collector::testing
