// The one table engine of netvigil's text output: the probes' classic-tool
// tables (`ss`, `lsof`) and the CLI's views. Every cell an agent, a peer or
// a file name controls goes through common/escape.h's Printable here, once,
// so no cell can break a line or hold a terminal control. Written with plain
// appends: a 100,000-row table is formatted in a few milliseconds.
// Thread-safe (pure functions).
#ifndef NETVIGIL_COMMON_REPORT_TABLE_H_
#define NETVIGIL_COMMON_REPORT_TABLE_H_

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace netvigil::report {

// A column of a fixed layout: its width and its side.
struct TableColumn {
  size_t width;  // 0: as is (the last column).
  bool right = false;
};

// Appends one row of a fixed layout without its newline: each cell shown as
// Printable(cell), padded to its column as printf's "%-Ns" / "%Ns" pads (a
// longer cell is not cut: it pushes the rest of its row right), the cells
// separated by one space. For tables printed as they are read (a probe's
// 100,000 sockets), where measuring every row first would cost a pass.
void AppendRow(std::string* out, absl::Span<const TableColumn> columns,
               std::initializer_list<absl::string_view> cells);

// Columns padded to the widest cell, two spaces apart, header first; the
// last column is not padded and no line ends in spaces. Each row cell is
// shown as Printable(cell); header cells are the caller's own words and are
// shown as given (a caller that puts agent text in a header escapes it).
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// The width every table and note is laid out for: a terminal of 100
// columns. Fixed rather than read from the terminal, so that output piped to
// a file or a mail looks the same as on the screen and goldens hold.
inline constexpr size_t kPageWidth = 100;

// FormatTable, with the last column wrapped at spaces so that no line is
// wider than `width` (continuation lines leave the other columns empty). A
// word wider than the room stays whole on a line of its own: no word is
// ever cut. The last column gets at least 24 columns even if that
// overflows `width`. Widths are those of the escaped cells.
std::string FormatTableWrapped(
    const std::vector<std::string>& header,
    const std::vector<std::vector<std::string>>& rows,
    size_t width = kPageWidth);

// `text`, shown as Printable(text) (agents write most of what is wrapped),
// broken at spaces into lines of at most `width` columns, each line after
// the first starting with `indent` spaces; every line ends in "\n".
std::string WrapText(const std::string& text, size_t width = kPageWidth,
                     size_t indent = 0);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_TABLE_H_
