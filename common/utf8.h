// Text from the system (process names, paths, interface names, a child's
// stderr) is bytes; proto3 string fields must be UTF-8, or the collector's
// parse refuses the whole message and the agent resends it forever. These
// turn bytes into valid UTF-8 text. Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_UTF8_H_
#define NETVIGIL_COMMON_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace netvigil {

// True when `bytes` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF), the rule protobuf checks.
bool IsValidUtf8(absl::string_view bytes);

// `bytes` as valid UTF-8 in the byte half of common/escape.h's notation
// (EscapeToUtf8): unchanged when valid and free of NUL and backslashes; else
// a backslash becomes `\\` and every byte that is not part of a valid
// sequence, and NUL (valid UTF-8 but not storable in PostgreSQL text),
// becomes `\xNN`. The same bytes always give the same text, so a path keeps
// its key, and different bytes never do: the bytes FF FE give `\xFF\xFE`,
// the text `\xFF\xFE` gives `\\xFF\\xFE`. Unescape() gives the bytes back.
std::string ToValidUtf8(absl::string_view bytes);

// At most `max_bytes` of valid UTF-8 `text`, cut at a character boundary.
std::string TruncateUtf8(absl::string_view text, size_t max_bytes);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_UTF8_H_
