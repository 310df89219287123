#include "common/report/files_table.h"

#include "absl/strings/str_cat.h"
#include "common/report/table.h"

namespace netvigil::report {
namespace {

// lsof's FD column into `out` (cleared first).
void LsofFd(const v1::FileEntry& e, std::string* out) {
  out->clear();
  switch (e.kind()) {
    case v1::FILE_ACCESS_FD:
      absl::StrAppend(out, e.fd(), e.mode());
      return;
    case v1::FILE_ACCESS_CWD:
      out->append("cwd");
      return;
    case v1::FILE_ACCESS_EXE:
      out->append("txt");
      return;
    case v1::FILE_ACCESS_MMAP:
      out->append(e.deleted() ? "DEL" : "mem");
      return;
    case v1::FILE_ACCESS_ROOT:
      out->append("rtd");
      return;
    default:
      out->append("?");
      return;
  }
}

}  // namespace

std::string FormatFilesTable(const v1::FileSnapshot& snapshot) {
  std::string out;
  // About 80 bytes a row: one allocation instead of a doubling series.
  out.reserve(96 * (static_cast<size_t>(snapshot.entries_size()) + 1));
  // "%-15s %8s %6s %5s %s\n", written with plain appends.
  static constexpr TableColumn kColumns[] = {
      {15}, {8, true}, {6, true}, {5, true}, {0}};
  auto row = [&out](std::initializer_list<absl::string_view> cells) {
    AppendRow(&out, kColumns, cells);
    out.push_back('\n');
  };
  row({"COMMAND", "PID", "UID", "FD", "NAME"});
  std::string fd, name;  // Reused from row to row.
  for (const v1::FileEntry& e : snapshot.entries()) {
    LsofFd(e, &fd);
    // The marks are part of the NAME cell, so that whatever the table does
    // to a cell's text (escaping) it does to the executable's path too.
    absl::string_view name_cell = e.path();
    // A process running a deleted executable is worth a look wherever that
    // executable was; its own txt row already says "(deleted)".
    const bool exe_gone =
        e.process().exe_deleted() && e.kind() != v1::FILE_ACCESS_EXE;
    if (e.deleted() || exe_gone) {
      name = e.path();
      if (e.deleted()) name += " (deleted)";
      if (exe_gone) {
        absl::StrAppend(&name, " [exe ", e.process().exe(), " (deleted)]");
      }
      name_cell = name;
    }
    row({e.process().name(), absl::AlphaNum(e.process().pid()).Piece(),
         absl::AlphaNum(e.process().uid()).Piece(), fd, name_cell});
  }
  return out;
}

}  // namespace netvigil::report
