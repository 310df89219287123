#include "common/escape.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/utf8_decode.h"

namespace netvigil {
namespace {

// The length of the valid UTF-8 sequence at the start of `s` (not empty),
// with its code point in `*cp`, or 0. The rule protobuf checks: no overlong
// forms, surrogates or code points above U+10FFFF.
size_t DecodeUtf8Impl(absl::string_view s, uint32_t* cp) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto cont = [&](size_t i) {
    return i < s.size() && (byte(i) & 0xC0) == 0x80;
  };
  const uint8_t b = byte(0);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (b & 0x1Fu) << 6 | (byte(1) & 0x3Fu);
    return 2;
  }
  if (b >= 0xE0 && b <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const uint8_t b1 = byte(1);
    if (b == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b == 0xED && b1 > 0x9F) return 0;  // UTF-16 surrogate
    *cp = (b & 0x0Fu) << 12 | (b1 & 0x3Fu) << 6 | (byte(2) & 0x3Fu);
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const uint8_t b1 = byte(1);
    if (b == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    *cp = (b & 0x07u) << 18 | (b1 & 0x3Fu) << 12 | (byte(2) & 0x3Fu) << 6 |
          (byte(3) & 0x3Fu);
    return 4;
  }
  return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr char kHex[] = "0123456789ABCDEF";

// \xNN, written by hand: this runs for every escaped byte of every cell.
void AppendByte(std::string* out, uint8_t b) {
  const char esc[4] = {'\\', 'x', kHex[b >> 4], kHex[b & 0xF]};
  out->append(esc, 4);
}

// \u{XXXX}: at least four digits, up to six.
void AppendCodePoint(std::string* out, uint32_t cp) {
  out->append("\\u{");
  int digits = 4;
  while (digits < 6 && (cp >> (4 * digits)) != 0) ++digits;
  for (int i = digits - 1; i >= 0; --i)
    out->push_back(kHex[(cp >> (4 * i)) & 0xF]);
  out->push_back('}');
}

// A printable ASCII byte other than the backslash: itself in every form.
bool PlainAscii(uint8_t b) { return b >= 0x20 && b < 0x7F && b != '\\'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool IsHiddenCodePoint(uint32_t cp) {
  if (cp < 0x80) return false;
  if (cp <= 0x9F) return true;  // C1 controls, NEL (U+0085) among them
  if (cp == 0xAD) return true;  // soft hyphen: invisible
  if (cp < 0x61C) return false;
  if (cp == 0x61C) return true;                   // Arabic letter mark (bidi)
  if (cp == 0x115F || cp == 0x1160) return true;  // Hangul fillers (blank)
  if (cp == 0x17B4 || cp == 0x17B5) return true;  // Khmer invisible vowels
  if (cp == 0x180E) return true;                  // Mongolian vowel separator
  // Zero-width space, non-joiner, joiner, LRM, RLM; line and paragraph
  // separators; LRE, RLE, PDF, LRO, RLO.
  if (cp >= 0x200B && cp <= 0x200F) return true;
  if (cp >= 0x2028 && cp <= 0x202E) return true;
  // Word joiner, invisible operators, LRI, RLI, FSI, PDI, deprecated formats.
  if (cp >= 0x2060 && cp <= 0x206F) return true;
  if (cp == 0x3164 || cp == 0xFFA0) return true;    // Hangul fillers (blank)
  if (cp == 0xFEFF) return true;                    // BOM / zero-width no-break
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return true;    // interlinear annotations
  if (cp >= 0xE0000 && cp <= 0xE007F) return true;  // tags: invisible
  return false;
}

void AppendEscaped(std::string* out, absl::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const uint8_t b = static_cast<uint8_t>(bytes[i]);
    if (PlainAscii(b)) {
      // Copy the run of plain ASCII at once: most text is all of it.
      size_t j = i + 1;
      while (j < bytes.size() && PlainAscii(static_cast<uint8_t>(bytes[j]))) {
        ++j;
      }
      out->append(bytes.data() + i, j - i);
      i = j;
      continue;
    }
    if (b < 0x80) {
      switch (b) {
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        default:  // the other C0 controls and DEL
          AppendByte(out, b);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = DecodeUtf8Impl(bytes.substr(i), &cp);
    if (n == 0) {
      AppendByte(out, b);
      ++i;
    } else if (IsHiddenCodePoint(cp)) {
      AppendCodePoint(out, cp);
      i += n;
    } else {
      out->append(bytes.data() + i, n);
      i += n;
    }
  }
}

std::string Escape(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendEscaped(&out, bytes);
  return out;
}

namespace {

bool NothingToEscape(absl::string_view bytes, bool backslash_ok) {
  size_t i = 0;
  while (i < bytes.size()) {
    const uint8_t b = static_cast<uint8_t>(bytes[i]);
    if (PlainAscii(b) || (backslash_ok && b == '\\')) {
      ++i;
      continue;
    }
    if (b < 0x80) return false;
    uint32_t cp = 0;
    const size_t n = DecodeUtf8Impl(bytes.substr(i), &cp);
    if (n == 0 || IsHiddenCodePoint(cp)) return false;
    i += n;
  }
  return true;
}

}  // namespace

bool IsPrintable(absl::string_view bytes) {
  return NothingToEscape(bytes, /*backslash_ok=*/false);
}

bool HasControls(absl::string_view bytes) {
  return !NothingToEscape(bytes, /*backslash_ok=*/true);
}

absl::StatusOr<std::string> Unescape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = i;
    if (text[i] != '\\') {
      out.push_back(text[i++]);
      continue;
    }
    if (i + 1 >= text.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a backslash ends the text at offset ", at));
    }
    const char kind = text[i + 1];
    i += 2;
    switch (kind) {
      case '\\':
      case '"':
        out.push_back(kind);
        continue;
      case 'n':
        out.push_back('\n');
        continue;
      case 'r':
        out.push_back('\r');
        continue;
      case 't':
        out.push_back('\t');
        continue;
      case 'x': {
        const int hi = i < text.size() ? HexValue(text[i]) : -1;
        const int lo = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
        if (hi < 0 || lo < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "\\x at offset ", at, " is not followed by two hex digits"));
        }
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
        continue;
      }
      case 'u': {
        if (i >= text.size() || text[i] != '{') {
          return absl::InvalidArgumentError(
              absl::StrCat("\\u at offset ", at, " is not followed by '{'"));
        }
        ++i;
        uint32_t cp = 0;
        size_t digits = 0;
        while (i < text.size() && HexValue(text[i]) >= 0 && digits < 6) {
          cp = cp << 4 | static_cast<uint32_t>(HexValue(text[i]));
          ++i;
          ++digits;
        }
        if (digits == 0 || i >= text.size() || text[i] != '}') {
          return absl::InvalidArgumentError(absl::StrCat(
              "\\u{ at offset ", at, " is not 1 to 6 hex digits and '}'"));
        }
        ++i;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "\\u{ at offset ", at, " names no Unicode scalar value"));
        }
        AppendUtf8(&out, cp);
        continue;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown escape at offset ", at));
    }
  }
  return out;
}

void AppendPrintable(std::string* out, absl::string_view text) {
  if (text.find('\\') != absl::string_view::npos) {
    absl::StatusOr<std::string> meant = Unescape(text);
    if (meant.ok()) {
      AppendEscaped(out, *meant);
      return;
    }
    // Not the notation (a rogue agent's, or text written by hand): shown as
    // the text it is, its backslashes escaped.
  }
  AppendEscaped(out, text);
}

std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendPrintable(&out, text);
  return out;
}

std::string EscapeToUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const uint8_t b = static_cast<uint8_t>(bytes[i]);
    if (b == '\\') {
      out.append("\\\\");
      ++i;
      continue;
    }
    if (b == 0) {
      AppendByte(&out, b);
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = DecodeUtf8Impl(bytes.substr(i), &cp);
    if (n == 0) {
      AppendByte(&out, b);
      ++i;
    } else {
      out.append(bytes.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string LogValue(absl::string_view text) {
  bool plain = !text.empty();
  for (char c : text) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain && IsPrintable(text)) return std::string(text);
  const std::string shown = Printable(text);
  std::string out;
  out.reserve(shown.size() + 2);
  out.push_back('"');
  for (char c : shown) {
    if (c == '"') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

size_t DecodeUtf8(absl::string_view s, uint32_t* cp) {
  return DecodeUtf8Impl(s, cp);
}

}  // namespace netvigil
