#include "common/utf8.h"

#include <cstdint>

#include "common/escape.h"
#include "common/utf8_decode.h"

namespace netvigil {

bool IsValidUtf8(absl::string_view bytes) {
  while (!bytes.empty()) {
    uint32_t cp;
    const size_t n = DecodeUtf8(bytes, &cp);
    if (n == 0) return false;
    bytes.remove_prefix(n);
  }
  return true;
}

std::string ToValidUtf8(absl::string_view bytes) { return EscapeToUtf8(bytes); }

std::string TruncateUtf8(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Back up over continuation bytes to the start of the cut character.
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace netvigil
