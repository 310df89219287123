// The one table engine (table.h): printf-like fixed rows for the probes,
// measured and wrapped tables for the CLI, every row cell escaped once.
#include "common/report/table.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/hostile_text.h"

namespace netvigil::report {
namespace {

using ::netvigil::testing::ExpectOneLinePerRow;
using ::netvigil::testing::Hostile;

std::vector<Hostile> Table() { return ::netvigil::testing::HostileNames(); }

TEST(TableTest, EveryCellIsPrintable) {
  std::vector<std::vector<std::string>> rows;
  for (const Hostile& h : Table()) {
    rows.push_back({ToValidUtf8(h.bytes), "1000", ToValidUtf8(h.bytes)});
  }
  const std::string out = FormatTable({"EXECUTABLE", "UID", "PATH"}, rows);
  ExpectOneLinePerRow(out, rows.size() + 1);
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  for (size_t i = 0; i < Table().size(); ++i) {
    EXPECT_THAT(lines[i + 1], ::testing::StartsWith(Table()[i].shown));
    EXPECT_THAT(lines[i + 1], ::testing::EndsWith(Table()[i].shown));
  }
  // The bytes FF FE and the text naming them do not look alike.
  EXPECT_NE(lines[4], lines[5]);
}

TEST(TableTest, PlainCellsAreCopiedAsTheyAre) {
  std::string out;
  static constexpr TableColumn kColumns[] = {{6}, {4, true}, {0}};
  AppendRow(&out, kColumns, {"zoë", "12", "/home/zoë/€"});
  EXPECT_EQ(out, "zoë     12 /home/zoë/€");
}

TEST(TableTest, AppendRowPadsAsPrintfDoes) {
  std::string out;
  static constexpr TableColumn kColumns[] = {{5}, {3, true}, {0}};
  AppendRow(&out, kColumns, {"ab", "7", "rest"});
  EXPECT_EQ(out, absl::StrFormat("%-5s %3s %s", "ab", "7", "rest"));
  out.clear();
  // A longer cell is not cut: it pushes the rest of its row right.
  AppendRow(&out, kColumns, {"longer", "1234", "x"});
  EXPECT_EQ(out, absl::StrFormat("%-5s %3s %s", "longer", "1234", "x"));
}

// Moved from the agent's sockets_probe_test (the probes' engine was
// agent/probes/table_text.h's AppendLeft/AppendRight).
TEST(TableTest, ColumnsPadAsPrintfDoes) {
  static constexpr TableColumn kLeft[] = {{10}};
  static constexpr TableColumn kRight[] = {{10, true}};
  for (absl::string_view text : {"", "tcp", "exactly10!", "longer than ten"}) {
    std::string left, right;
    AppendRow(&left, kLeft, {text});
    AppendRow(&right, kRight, {text});
    EXPECT_EQ(left, absl::StrFormat("%-10s", text));
    EXPECT_EQ(right, absl::StrFormat("%10s", text));
  }
}

TEST(TableTest, HeaderIsShownAsGivenRowCellsEscaped) {
  // A header is the caller's words ("FROM \ TO" is the matrix's corner);
  // a row cell is an agent's and is escaped, its width that of the escape.
  EXPECT_EQ(FormatTable({"FROM \\ TO", "X"}, {{"a\x1b", "b"}}),
            "FROM \\ TO  X\n"
            "a\\x1B      b\n");
}

TEST(TableTest, NoLineEndsInSpaces) {
  EXPECT_EQ(FormatTable({"A", "B", "C"}, {{"x", "", ""}, {"y", "z"}}),
            "A  B  C\n"
            "x\n"
            "y  z\n");
}

TEST(TableTest, WrappedWidthsAreThoseOfTheEscapedCells) {
  // The first column shows as 16 columns ("\x1B" four times), not 4: the
  // wrapped column must make room for what is shown.
  const std::string out = FormatTableWrapped(
      {"ID", "TEXT"},
      {{"\x1b\x1b\x1b\x1b", "aaa bbb ccc ddd eee fff ggg hhh iii jjj kkk"}},
      50);
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    EXPECT_LE(line.size(), 50u) << out;
  }
  EXPECT_THAT(out, ::testing::HasSubstr("\\x1B\\x1B\\x1B\\x1B  aaa"));
}

TEST(TableTest, WrapsTheLastColumnAtSpaces) {
  const std::string out = FormatTableWrapped(
      {"ID", "SUMMARY"},
      {{"1", "one two three four five six seven eight nine ten"}}, 28);
  EXPECT_EQ(out,
            "ID  SUMMARY\n"
            "1   one two three four five\n"
            "    six seven eight nine ten\n");
}

TEST(TableTest, WrapTextIndentsContinuations) {
  EXPECT_EQ(WrapText("note: alpha beta gamma delta epsilon zeta", 30, 6),
            "note: alpha beta gamma delta\n"
            "      epsilon zeta\n");
  EXPECT_EQ(WrapText("  indented", 30, 4), "  indented\n");
}

TEST(TableTest, WrapTextShowsControlCharactersInsteadOfObeyingThem) {
  EXPECT_EQ(WrapText("evil\x1b[2J\nforged line"),
            "evil\\x1B[2J\\nforged line\n");
}

}  // namespace
}  // namespace netvigil::report
