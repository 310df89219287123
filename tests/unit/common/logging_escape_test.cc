// The logs' last line of defence (common/logging.cc): a message that still
// holds a control byte or a hidden code point is written escaped, so it
// cannot start a forged line; a clean message is written as it is.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/spdlog.h"

namespace netvigil {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

TEST(LoggingEscapeTest, AControlInAMessageCannotStartALine) {
  unsetenv("JOURNAL_STREAM");
  char path[] = "/tmp/nvlog.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const int saved = dup(2);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fd, 2), 2);
  InitLogging("logging_escape_test", "info");
  // A call site that forgot LogValue.
  spdlog::info("event=x name={}",
               "evil\n2026-01-01T00:00:00.000 forged info agent_enrolled "
               "name=x\x1b[2J\xE2\x80\xAE");
  spdlog::info("event=y detail=\"a \\\"quoted\\\" value\"");
  spdlog::default_logger()->flush();
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  unlink(path);
  std::vector<std::string> lines = absl::StrSplit(ss.str(), '\n');
  ASSERT_EQ(lines.size(), 3u) << ss.str();
  EXPECT_EQ(lines[2], "");
  EXPECT_THAT(lines[0],
              HasSubstr("event=x name=evil\\n2026-01-01T00:00:00.000 forged "
                        "info agent_enrolled name=x\\x1B[2J\\u{202E}"));
  EXPECT_THAT(lines[1], EndsWith("event=y detail=\"a \\\"quoted\\\" value\""));
}

}  // namespace
}  // namespace netvigil
