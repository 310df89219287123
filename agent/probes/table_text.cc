#include "agent/probes/table_text.h"

#include "common/escape.h"

namespace netvigil::agent {

void AppendLeft(std::string* out, absl::string_view text, size_t width) {
  out->append(text.data(), text.size());
  if (text.size() < width) out->append(width - text.size(), ' ');
}

void AppendRight(std::string* out, absl::string_view text, size_t width) {
  if (text.size() < width) out->append(width - text.size(), ' ');
  out->append(text.data(), text.size());
}

void AppendRow(std::string* out, absl::Span<const TableColumn> columns,
               std::initializer_list<absl::string_view> cells) {
  size_t i = 0;
  std::string escaped;  // Reused from cell to cell.
  for (absl::string_view cell : cells) {
    const TableColumn column = i < columns.size() ? columns[i] : TableColumn{0};
    if (i++ > 0) out->push_back(' ');
    // The one escaping (common/escape.h), once per cell: process names and
    // paths are any bytes, and a newline or an ESC would forge a row. The
    // check is a scan; only a cell that needs it is copied.
    if (!IsPrintable(cell)) {
      escaped.clear();
      AppendPrintable(&escaped, cell);
      cell = escaped;
    }
    if (column.right) {
      AppendRight(out, cell, column.width);
    } else {
      AppendLeft(out, cell, column.width);
    }
  }
}

}  // namespace netvigil::agent
