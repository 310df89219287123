#include "tests/testing/hostile_text.h"

#include <algorithm>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "gtest/gtest.h"

namespace netvigil::testing {

std::vector<Hostile> HostileNames() {
  return {
      {"\x1b[2J\x1b]0;owned\x07", "\\x1B[2J\\x1B]0;owned\\x07"},
      // A forged row of lsof's table, then of ss's.
      {"x\nsshd  0  fd  /root/.ssh/authorized_keys",
       "x\\nsshd  0  fd  /root/.ssh/authorized_keys"},
      {"x\nsshd               1     0   3r /root/.ssh/authorized_keys",
       "x\\nsshd               1     0   3r /root/.ssh/authorized_keys"},
      {"x\rsshd", "x\\rsshd"},
      {"\xFF\xFE", "\\xFF\\xFE"},
      {"\\xFF\\xFE", "\\\\xFF\\\\xFE"},
      {"inv\xE2\x80\xAEtxt.exe", "inv\\u{202E}txt.exe"},
      {"a\xC2\x9B"
       "b",
       "a\\u{009B}b"},
      {"a\xE2\x80\xA8"
       "b\xC2\x85",
       "a\\u{2028}b\\u{0085}"},
      {"back\\slash", "back\\\\slash"},
      {std::string("n\0l", 3), "n\\x00l"},
      {std::string(5000, 'L') + "\n", std::string(5000, 'L') + "\\n"},
      {std::string(5000, 'L') + "\t", std::string(5000, 'L') + "\\t"},
  };
}

void ExpectOneLinePerRow(const std::string& out, size_t rows) {
  EXPECT_EQ(static_cast<size_t>(std::count(out.begin(), out.end(), '\n')), rows)
      << out;
  EXPECT_TRUE(IsValidUtf8(out));
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_FALSE(HasControls(line)) << line;
  }
}

}  // namespace netvigil::testing
