// The one UTF-8 decoder of common/: the length of the valid sequence at the
// start of a string and its code point. Shared by escape.cc and utf8.cc.
// Thread-safe (a pure function).
#ifndef NETVIGIL_COMMON_UTF8_DECODE_H_
#define NETVIGIL_COMMON_UTF8_DECODE_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace netvigil {

// The length of the valid UTF-8 sequence at the start of `s` (not empty),
// with its code point in `*cp`, or 0. The rule protobuf checks: no overlong
// forms, surrogates or code points above U+10FFFF.
size_t DecodeUtf8(absl::string_view s, uint32_t* cp);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_UTF8_DECODE_H_
