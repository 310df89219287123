#include "collector/analysis/rules/files.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/model/facts.h"

namespace netvigil::collector::rules {
namespace {

bool HasHiddenComponent(const std::string& path) {
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (absl::StartsWith(part, ".")) return true;
  }
  return false;
}

std::map<std::string, std::string> Details(const v1::FileEntry& e) {
  return {{"exe", e.process().exe()},
          {"name", e.process().name()},
          {"path", e.path()}};
}

}  // namespace

FileCandidates FileCandidatesOf(const v1::FileSnapshot& snap) {
  FileCandidates out;
  for (int i = 0; i < snap.entries_size(); ++i) {
    const v1::ProcessRef& p = snap.entries(i).process();
    // The fact model's owner: the exe, or "[name]" when it was unreadable,
    // as history names it. A process with neither names nothing.
    const std::string owner = model::OwnerOf(p);
    if (owner == "?") {
      ++out.no_exe;
      continue;
    }
    out.processes.emplace(owner, i);
    if (!p.exe().empty() && (p.exe_deleted() || HasHiddenComponent(p.exe()))) {
      out.hidden.emplace(owner, i);
    }
  }
  return out;
}

Thing DescribeFileProcess(const v1::FileEntry& e) {
  return Thing{"",
               absl::StrCat("new process ", model::OwnerOf(e.process()),
                            " holding ", e.path()),
               "", Details(e)};
}

Thing DescribeHiddenExe(const v1::FileEntry& e) {
  return Thing{
      "",
      absl::StrCat(e.process().exe_deleted() ? "deleted" : "hidden",
                   " executable ", e.process().exe(), " holding ", e.path()),
      "", Details(e)};
}

}  // namespace netvigil::collector::rules
