// The one escaping of text that an agent, a peer or a file name controls,
// for every place a person or a log reader sees it (CLI and probe tables,
// the alert log, the collector's and the agent's logs). Thread-safe (pure
// functions).
//
// The notation (README "Escaping"), the same everywhere:
//   \\        a backslash (the escape character is itself escaped)
//   \n \r \t  LF, CR, TAB
//   \xNN      one byte, two upper-case hex digits: any other C0 control byte,
//             DEL, and each byte that is not part of valid UTF-8
//   \u{XXXX}  one code point, 4 to 6 upper-case hex digits: the C1 controls
//             (U+0080-U+009F) and the characters that reorder, hide or break
//             a line (IsHiddenCodePoint)
//   \"        a double quote; written only inside a quoted log value
// Everything else (printable ASCII and printable UTF-8) is itself. So the
// bytes FF FE print as `\xFF\xFE` and the text `\xFF\xFE` as `\\xFF\\xFE`.
//
// Agents write bytes that are not UTF-8 into proto strings with the byte
// half of the same notation (EscapeToUtf8: `\\` and `\xNN`), so a proto
// string is text in this notation; Printable() reads it that way and writes
// it out fully escaped.
#ifndef NETVIGIL_COMMON_ESCAPE_H_
#define NETVIGIL_COMMON_ESCAPE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace netvigil {

// True for a code point that must not reach a terminal or a log as itself:
// C1 controls, line and paragraph separators, bidi controls (embeddings,
// overrides, isolates, marks), and invisible format characters (zero-width
// spaces and joiners, word joiner, BOM, soft hyphen, tags, fillers).
bool IsHiddenCodePoint(uint32_t cp);

// `bytes` (any bytes) as printable UTF-8 in the notation above. Never emits
// a C0 control, DEL, a C1 control, a hidden code point or invalid UTF-8.
// Unescape(Escape(x)) == x for every x.
std::string Escape(absl::string_view bytes);
void AppendEscaped(std::string* out, absl::string_view bytes);

// True when Escape(bytes) == bytes: nothing in it needs escaping. Fast; the
// table engines call it on every cell.
bool IsPrintable(absl::string_view bytes);

// True when `bytes` holds a byte or code point that Escape writes as an
// escape, backslashes aside: a control, invalid UTF-8, a hidden code point.
// The logs' last line of defence (common/logging.cc) checks every line.
bool HasControls(absl::string_view bytes);

// The inverse of Escape, and of EscapeToUtf8. Any byte other than a
// backslash stands for itself; a backslash must start one of the escapes
// above (hex digits in either case), or the error names its offset.
absl::StatusOr<std::string> Unescape(absl::string_view text);

// What every sink calls on an agent-controlled string: the text it stands
// for in the notation (Unescape; the text itself when it is not well-formed
// notation, as a rogue agent may send) written with Escape. The result is
// what a person reads; bytes and the text naming them never look alike.
std::string Printable(absl::string_view text);
void AppendPrintable(std::string* out, absl::string_view text);

// For agents: `bytes` as valid UTF-8 for a proto string that PostgreSQL can
// store: a backslash becomes `\\`, NUL and each byte that is not part of
// valid UTF-8 `\xNN`, all else (newlines too: the sinks escape them) is
// copied. Unescape reverses it.
std::string EscapeToUtf8(absl::string_view bytes);

// A key=value log field's value: as is when it is non-empty printable text
// without spaces, quotes, '=' or backslashes; else "Printable(text)" with
// `"` written `\"`. A field's value can then never end early or start a line.
std::string LogValue(absl::string_view text);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_ESCAPE_H_
