#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

TEST(Utf8Test, ValidTextIsValid) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("/home/alice/notes.txt"));
  EXPECT_TRUE(IsValidUtf8("/home/zoë/Ünïcödé € 😀"));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));  // NUL is valid UTF-8
}

TEST(Utf8Test, MalformedSequencesAreInvalid) {
  EXPECT_FALSE(IsValidUtf8("caf\xE9"));           // Latin-1 é
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

// Found by tests/fuzz/iperf3_fuzz.cc: iperf3's JSON can carry \u0000, and
// the collector refuses a result holding a NUL on every resend.
TEST(Utf8Test, NulBecomesAHexEscape) {
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(ToValidUtf8(std::string("\xE9\0", 2)), "\\xE9\\x00");
}

TEST(Utf8Test, ValidTextIsUnchanged) {
  EXPECT_EQ(ToValidUtf8("/home/zoë/x"), "/home/zoë/x");
}

// A file named in Latin-1 under a watched folder: the file probe must still
// send a path the collector can parse, and the same one every time.
TEST(Utf8Test, InvalidBytesBecomeHexEscapes) {
  EXPECT_EQ(ToValidUtf8("/home/alice/caf\xE9.txt"), "/home/alice/caf\\xE9.txt");
  EXPECT_EQ(ToValidUtf8("\xC3(ok é"), "\\xC3(ok é");
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\\xED\\xA0\\x80");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xF0\x9F\x98")));
}

// Issue 15: the bytes FF FE and a name holding the text "\xFF\xFE" were
// the same string. The backslash is escaped too, so they differ and
// Unescape (common/escape.h) gives the bytes back.
TEST(Utf8Test, BackslashIsEscapedSoBytesAndTextDiffer) {
  EXPECT_EQ(ToValidUtf8("\xFF\xFE"), "\\xFF\\xFE");
  EXPECT_EQ(ToValidUtf8("\\xFF\\xFE"), "\\\\xFF\\\\xFE");
  EXPECT_NE(ToValidUtf8("\xFF\xFE"), ToValidUtf8("\\xFF\\xFE"));
  EXPECT_EQ(ToValidUtf8("a\\b"), "a\\\\b");
}

TEST(Utf8Test, TruncateCutsAtACharacterBoundary) {
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
  EXPECT_EQ(TruncateUtf8("abc", 2), "ab");
  EXPECT_EQ(TruncateUtf8("aé", 2), "a");  // é is two bytes
  EXPECT_EQ(TruncateUtf8("a😀", 4), "a");
  EXPECT_EQ(TruncateUtf8("a😀", 5), "a😀");
  EXPECT_EQ(TruncateUtf8("é", 0), "");
}

}  // namespace
}  // namespace netvigil
