#include "agent/probes/table_text.h"

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
  for (absl::string_view cell : cells) {
    const TableColumn column = i < columns.size() ? columns[i] : TableColumn{0};
    if (i++ > 0) out->push_back(' ');
    if (column.right) {
      AppendRight(out, cell, column.width);
    } else {
      AppendLeft(out, cell, column.width);
    }
  }
}

}  // namespace netvigil::agent
