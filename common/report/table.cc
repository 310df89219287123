#include "common/report/table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/escape.h"

namespace netvigil::report {
namespace {

// Appends `shown` (already escaped) padded to `column`.
void AppendPadded(std::string* out, absl::string_view shown,
                  TableColumn column) {
  const size_t pad =
      shown.size() < column.width ? column.width - shown.size() : 0;
  if (column.right) out->append(pad, ' ');
  out->append(shown.data(), shown.size());
  if (!column.right) out->append(pad, ' ');
}

// `cell` as Printable(cell): the cell itself when nothing in it needs
// escaping (a scan, no copy), else escaped into `scratch`.
absl::string_view Shown(absl::string_view cell, std::string* scratch) {
  if (IsPrintable(cell)) return cell;
  scratch->clear();
  AppendPrintable(scratch, cell);
  return *scratch;
}

}  // namespace

void AppendRow(std::string* out, absl::Span<const TableColumn> columns,
               std::initializer_list<absl::string_view> cells) {
  size_t i = 0;
  std::string scratch;  // Reused from cell to cell.
  for (absl::string_view cell : cells) {
    const TableColumn column = i < columns.size() ? columns[i] : TableColumn{0};
    if (i++ > 0) out->push_back(' ');
    AppendPadded(out, Shown(cell, &scratch), column);
  }
}

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& cells) {
  // Every row cell is escaped once, here; widths are of the escaped text.
  std::vector<std::vector<std::string>> rows;
  rows.reserve(cells.size());
  std::string scratch;
  for (const auto& r : cells) {
    std::vector<std::string>& shown = rows.emplace_back();
    shown.reserve(r.size());
    for (const std::string& cell : r) {
      shown.emplace_back(Shown(cell, &scratch));
    }
  }
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    const size_t start = out.size();
    for (size_t i = 0; i < width.size(); ++i) {
      const absl::string_view cell =
          i < row.size() ? absl::string_view(row[i]) : absl::string_view();
      if (i > 0) out.append(2, ' ');
      const bool last = i + 1 == width.size();
      AppendPadded(&out, cell, TableColumn{last ? 0 : width[i]});
    }
    while (out.size() > start && out.back() == ' ') out.pop_back();
    out.push_back('\n');
  };
  emit(header);
  for (const auto& r : rows) emit(r);
  return out;
}

namespace {

// `text` in lines of at most `first_room` columns, then `rest_room`, broken
// at spaces; the spaces inside a line are kept as they were. A word wider
// than its line stays whole on a line of its own: a cut word is worse than
// a long line.
std::vector<std::string> WrapWords(absl::string_view text, size_t first_room,
                                   size_t rest_room) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (start < text.size() && text[start] == ' ') ++start;
    if (start == text.size()) break;  // trailing spaces
    size_t end = start;
    while (end < text.size() && text[end] != ' ') ++end;
    const absl::string_view spaces = text.substr(i, start - i);
    const absl::string_view word = text.substr(start, end - start);
    const size_t room = lines.empty() ? first_room : rest_room;
    if (line.empty()) {
      line = std::string(word);
    } else if (line.size() + spaces.size() + word.size() <= room) {
      absl::StrAppend(&line, spaces, word);
    } else {
      lines.push_back(std::move(line));
      line = std::string(word);
    }
    i = end;
  }
  if (!line.empty() || lines.empty()) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

std::string FormatTableWrapped(
    const std::vector<std::string>& header,
    const std::vector<std::vector<std::string>>& cells, size_t width) {
  if (header.empty()) return FormatTable(header, cells);
  // Measured and wrapped as shown: an escaped cell is wider than its text.
  // FormatTable's own escaping then leaves the escaped text as it is
  // (Printable(Printable(x)) == Printable(x)).
  std::vector<std::vector<std::string>> rows;
  rows.reserve(cells.size());
  for (const auto& r : cells) {
    std::vector<std::string>& shown = rows.emplace_back();
    shown.reserve(r.size());
    for (const std::string& cell : r) shown.push_back(Printable(cell));
  }
  const size_t last = header.size() - 1;
  size_t prefix = 0;
  for (size_t i = 0; i < last; ++i) {
    size_t w = header[i].size();
    for (const auto& r : rows) {
      if (i < r.size()) w = std::max(w, r[i].size());
    }
    prefix += w + 2;
  }
  const size_t room = width > prefix + 24 ? width - prefix : 24;
  std::vector<std::vector<std::string>> wrapped;
  for (auto& r : rows) {
    if (r.size() <= last) {
      wrapped.push_back(std::move(r));
      continue;
    }
    std::vector<std::string> pieces = WrapWords(r[last], room, room);
    std::vector<std::string> first = std::move(r);
    first[last] = pieces[0];
    wrapped.push_back(std::move(first));
    for (size_t i = 1; i < pieces.size(); ++i) {
      std::vector<std::string> more(header.size());
      more[last] = pieces[i];
      wrapped.push_back(std::move(more));
    }
  }
  return FormatTable(header, wrapped);
}

std::string WrapText(const std::string& raw, size_t width, size_t indent) {
  const std::string text = Printable(raw);
  // Leading spaces are the first line's own indent.
  const size_t lead = std::min(text.find_first_not_of(' '), text.size());
  const std::vector<std::string> lines =
      WrapWords(absl::string_view(text).substr(lead),
                width > lead + 20 ? width - lead : 20,
                width > indent + 20 ? width - indent : 20);
  std::string out = std::string(lead, ' ') + lines[0] + "\n";
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::StrAppend(&out, std::string(indent, ' '), lines[i], "\n");
  }
  return out;
}

}  // namespace netvigil::report
