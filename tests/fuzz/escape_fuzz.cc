// Fuzzes the one escaping function (common/escape.h): for any bytes, Escape
// reads back exactly (Unescape(Escape(x)) == x) and writes no control byte
// (C0, DEL), no invalid UTF-8 and no C1 control or hidden code point; the
// same holds for what the sinks call (Printable, LogValue), and the agents'
// EscapeToUtf8 gives valid, NUL-free UTF-8 that reads back. Also any text
// goes through Unescape without a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using netvigil::fuzz::Fail;

// Decodes `s`, already checked to be valid UTF-8 by common/utf8's own
// decoder, and fails on any byte or code point a terminal would act on.
void CheckNothingHidden(const std::string& s, const char* what) {
  if (!netvigil::IsValidUtf8(s)) Fail(std::string(what) + ": invalid UTF-8");
  for (size_t i = 0; i < s.size();) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
      cp = b;
      n = 1;
    } else if (b < 0xE0) {
      cp = (b & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu);
      n = 2;
    } else if (b < 0xF0) {
      cp = (b & 0x0Fu) << 12 | (s[i + 1] & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu);
      n = 3;
    } else {
      cp = (b & 0x07u) << 18 | (s[i + 1] & 0x3Fu) << 12 |
           (s[i + 2] & 0x3Fu) << 6 | (s[i + 3] & 0x3Fu);
      n = 4;
    }
    if (cp < 0x20 || cp == 0x7F) {
      Fail(std::string(what) + ": a control byte came out");
    }
    // The code points the README lists, checked here without the function
    // under test: C1, line/paragraph separators, bidi controls.
    if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
        (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
        cp == 0x200E || cp == 0x200F || cp == 0x061C ||
        netvigil::IsHiddenCodePoint(cp)) {
      Fail(std::string(what) + ": a hidden code point came out");
    }
    i += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  const absl::string_view x(reinterpret_cast<const char*>(data), size);

  const std::string e = Escape(x);
  CheckNothingHidden(e, "Escape");
  absl::StatusOr<std::string> back = Unescape(e);
  if (!back.ok())
    Fail("Unescape(Escape(x)) failed: " + back.status().ToString());
  if (*back != x) Fail("Unescape(Escape(x)) != x");
  if (IsPrintable(x) != (e == x)) Fail("IsPrintable(x) != (Escape(x) == x)");
  if (HasControls(x) && IsPrintable(x)) Fail("HasControls but IsPrintable");

  const std::string p = Printable(x);
  CheckNothingHidden(p, "Printable");
  if (Printable(p) != p) Fail("Printable is not idempotent");
  absl::StatusOr<std::string> meant = Unescape(x);
  absl::StatusOr<std::string> shown = Unescape(p);
  if (!shown.ok()) Fail("Printable's output is not the notation");
  if (*shown != (meant.ok() ? *meant : std::string(x))) {
    Fail("Printable(x) does not stand for what x stands for");
  }

  const std::string w = EscapeToUtf8(x);
  if (!IsValidUtf8(w)) Fail("EscapeToUtf8: invalid UTF-8");
  if (w.find('\0') != std::string::npos) Fail("EscapeToUtf8: NUL");
  absl::StatusOr<std::string> w_back = Unescape(w);
  if (!w_back.ok() || *w_back != x) Fail("Unescape(EscapeToUtf8(x)) != x");
  if (Printable(w) != e) Fail("Printable(EscapeToUtf8(x)) != Escape(x)");

  const std::string v = LogValue(x);
  CheckNothingHidden(v, "LogValue");
  if (v.empty()) Fail("LogValue is empty");
  if (v.front() == '"') {
    if (v.size() < 2 || v.back() != '"') Fail("LogValue: unclosed quote");
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\') {
        ++i;
        if (i + 1 >= v.size()) Fail("LogValue: escape runs into the quote");
      } else if (v[i] == '"') {
        Fail("LogValue: an unescaped quote inside the value");
      }
    }
  } else if (v.find_first_of(" \"=\\") != std::string::npos) {
    Fail("LogValue: unquoted value with a space, quote, '=' or backslash");
  }
  return 0;
}
