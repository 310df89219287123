// The one escaping function: its notation, its inverse, and a table of
// hostile strings (ESC sequences, CR/LF forging a row, bytes vs the text
// naming them, bidi overrides, backslashes, NUL, very long) that must come
// out as one printable line that reads back to what went in.
#include "common/escape.h"

#include <string>
#include <vector>

#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil {
namespace {

using ::netvigil::testing::IsOk;

// True when `s` holds no byte or code point a terminal or log would act on.
bool NothingHidden(const std::string& s) {
  if (!IsValidUtf8(s)) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) return false;
  }
  // Decode again and look for hidden code points.
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = s[i];
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
      cp = b, n = 1;
    } else if (b < 0xE0) {
      cp = (b & 0x1F) << 6 | (s[i + 1] & 0x3F), n = 2;
    } else if (b < 0xF0) {
      cp = (b & 0x0F) << 12 | (s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F), n = 3;
    } else {
      cp = (b & 0x07) << 18 | (s[i + 1] & 0x3F) << 12 | (s[i + 2] & 0x3F) << 6 |
           (s[i + 3] & 0x3F),
      n = 4;
    }
    if (IsHiddenCodePoint(cp)) return false;
    i += n;
  }
  return true;
}

struct Hostile {
  const char* what;
  std::string bytes;
  std::string escaped;
};

std::vector<Hostile> HostileTable() {
  return {
      {"plain path", "/home/alice/notes.txt", "/home/alice/notes.txt"},
      {"printable UTF-8", "/home/zoë/Ünïcödé € 😀 日本",
       "/home/zoë/Ünïcödé € 😀 日本"},
      {"ESC clears the screen", "\x1b[2J\x1b[1;1Hroot",
       "\\x1B[2J\\x1B[1;1Hroot"},
      {"OSC title", "\x1b]0;owned\x07", "\\x1B]0;owned\\x07"},
      {"LF forges a row",
       "/home/a/x\nsshd            1 0 3r /root/.ssh/authorized_keys",
       "/home/a/x\\nsshd            1 0 3r /root/.ssh/authorized_keys"},
      {"CR overwrites the line", "evil\rsshd", "evil\\rsshd"},
      {"tab", "a\tb", "a\\tb"},
      {"bytes FF FE", "\xFF\xFE", "\\xFF\\xFE"},
      {"the text \\xFF\\xFE", "\\xFF\\xFE", "\\\\xFF\\\\xFE"},
      {"bidi override", "invoice\xE2\x80\xAEtxt.exe",
       "invoice\\u{202E}txt.exe"},
      {"bidi isolate",
       "a\xE2\x81\xA6"
       "b\xE2\x81\xA9",
       "a\\u{2066}b\\u{2069}"},
      {"line separator",
       "a\xE2\x80\xA8"
       "b",
       "a\\u{2028}b"},
      {"C1 NEL and CSI",
       "a\xC2\x85"
       "b\xC2\x9B"
       "c",
       "a\\u{0085}b\\u{009B}c"},
      {"zero-width space", "ss\xE2\x80\x8Bhd", "ss\\u{200B}hd"},
      {"tag character", "x\xF3\xA0\x80\x81", "x\\u{E0001}"},
      {"backslashes", "C:\\new\\", "C:\\\\new\\\\"},
      {"NUL", std::string("a\0b", 3), "a\\x00b"},
      {"DEL", "a\x7F", "a\\x7F"},
      {"cut UTF-8", "caf\xC3", "caf\\xC3"},
      {"overlong slash", "\xC0\xAF", "\\xC0\\xAF"},
      {"surrogate", "\xED\xA0\x80", "\\xED\\xA0\\x80"},
      {"quote", "say \"hi\"", "say \"hi\""},
  };
}

TEST(EscapeTest, HostileStringsBecomeOnePrintableLine) {
  for (const Hostile& h : HostileTable()) {
    SCOPED_TRACE(h.what);
    const std::string e = Escape(h.bytes);
    EXPECT_EQ(e, h.escaped);
    EXPECT_TRUE(NothingHidden(e));
    EXPECT_EQ(IsPrintable(h.bytes), e == h.bytes);
    absl::StatusOr<std::string> back = Unescape(e);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(*back, h.bytes);
  }
}

TEST(EscapeTest, BytesAndTheTextNamingThemDiffer) {
  EXPECT_NE(Escape("\xFF\xFE"), Escape("\\xFF\\xFE"));
  EXPECT_NE(Escape("\x1b"), Escape("\\x1B"));
  EXPECT_NE(Escape("\n"), Escape("\\n"));
  EXPECT_NE(Escape("\xE2\x80\xAE"), Escape("\\u{202E}"));
}

TEST(EscapeTest, VeryLongStringsRoundTrip) {
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>(i * 7);
  const std::string e = Escape(s);
  EXPECT_TRUE(NothingHidden(e));
  EXPECT_EQ(e.find('\n'), std::string::npos);
  absl::StatusOr<std::string> back = Unescape(e);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, s);
}

TEST(EscapeTest, UnescapeNamesTheBadEscape) {
  EXPECT_EQ(Unescape("ab\\").status().message(),
            "a backslash ends the text at offset 2");
  EXPECT_EQ(Unescape("a\\q").status().message(), "unknown escape at offset 1");
  EXPECT_FALSE(Unescape("\\x4").ok());
  EXPECT_FALSE(Unescape("\\xZZ").ok());
  EXPECT_FALSE(Unescape("\\u{}").ok());
  EXPECT_FALSE(Unescape("\\u{D800}").ok());
  EXPECT_FALSE(Unescape("\\u{110000}").ok());
  EXPECT_FALSE(Unescape("\\u{1234567}").ok());
  EXPECT_FALSE(Unescape("\\u20").ok());
  EXPECT_EQ(*Unescape("\\x1b\\u{41}\\\"\\t"),
            "\x1b"
            "A\"\t");
}

// What agents put in proto strings: bytes in the byte half of the notation.
TEST(EscapeTest, EscapeToUtf8KeepsTextAndIsUnambiguous) {
  EXPECT_EQ(EscapeToUtf8("/home/zoë/a b\nc"), "/home/zoë/a b\nc");
  EXPECT_EQ(EscapeToUtf8("\xFF\xFE"), "\\xFF\\xFE");
  EXPECT_EQ(EscapeToUtf8("\\xFF\\xFE"), "\\\\xFF\\\\xFE");
  EXPECT_EQ(EscapeToUtf8(std::string("a\0", 2)), "a\\x00");
  EXPECT_EQ(ToValidUtf8("\\xFF"), EscapeToUtf8("\\xFF"));
  for (const Hostile& h : HostileTable()) {
    SCOPED_TRACE(h.what);
    const std::string w = EscapeToUtf8(h.bytes);
    EXPECT_TRUE(IsValidUtf8(w));
    EXPECT_EQ(w.find('\0'), std::string::npos);
    EXPECT_EQ(*Unescape(w), h.bytes);
  }
}

// The sinks read a proto string as the notation: what the agent escaped for
// the wire shows as Escape of the original bytes, never escaped twice.
TEST(EscapeTest, PrintableShowsWhatTheAgentMeant) {
  for (const Hostile& h : HostileTable()) {
    SCOPED_TRACE(h.what);
    EXPECT_EQ(Printable(EscapeToUtf8(h.bytes)), h.escaped);
    EXPECT_TRUE(NothingHidden(Printable(h.bytes)));
  }
  // The bytes FF FE and a file named with the text "\xFF\xFE", as the file
  // probe sends them, print differently.
  EXPECT_EQ(Printable(ToValidUtf8("\xFF\xFE")), "\\xFF\\xFE");
  EXPECT_EQ(Printable(ToValidUtf8("\\xFF\\xFE")), "\\\\xFF\\\\xFE");
  // A rogue agent's text that is not the notation is shown as it is.
  EXPECT_EQ(Printable("a\\q\n"), "a\\\\q\\n");
  // A rogue agent spelling a control in the notation gets it escaped.
  EXPECT_EQ(Printable("\\x1B[2J\\u{202E}"), "\\x1B[2J\\u{202E}");
  EXPECT_EQ(Printable("\\x41"), "A");
  // Idempotent: printing what was printed changes nothing.
  for (const Hostile& h : HostileTable()) {
    EXPECT_EQ(Printable(Printable(h.bytes)), Printable(h.bytes));
  }
}

TEST(EscapeTest, LogValueNeverEndsEarly) {
  EXPECT_EQ(LogValue("laptop"), "laptop");
  EXPECT_EQ(LogValue(""), "\"\"");
  EXPECT_EQ(LogValue("a b"), "\"a b\"");
  EXPECT_EQ(LogValue("x\" peer=1.2.3.4"), "\"x\\\" peer=1.2.3.4\"");
  EXPECT_EQ(LogValue("evil\n2026-01-01 collector info agent_enrolled name=x"),
            "\"evil\\n2026-01-01 collector info agent_enrolled name=x\"");
  EXPECT_EQ(LogValue("\xE2\x80\xAE"), "\"\\u{202E}\"");
  for (const Hostile& h : HostileTable()) {
    SCOPED_TRACE(h.what);
    const std::string v = LogValue(h.bytes);
    EXPECT_TRUE(NothingHidden(v));
    if (v.front() == '"') {
      // Inside the quotes no quote is unescaped.
      const std::string inner = v.substr(1, v.size() - 2);
      for (size_t i = 0; i < inner.size(); ++i) {
        if (inner[i] == '\\') {
          ++i;
          continue;
        }
        EXPECT_NE(inner[i], '"') << v;
      }
      EXPECT_EQ(*Unescape(inner), *Unescape(Printable(h.bytes)));
    }
  }
}

}  // namespace
}  // namespace netvigil
