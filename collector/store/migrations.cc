#include "collector/store/migrations.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace netvigil::collector {

absl::StatusOr<std::vector<Migration>> OrderMigrations(
    const std::vector<std::pair<std::string_view, std::string_view>>& files) {
  std::vector<Migration> out;
  for (const auto& [std_name, sql] : files) {
    const absl::string_view name(std_name.data(), std_name.size());
    int version = 0;
    const bool well_formed =
        name.size() > 5 && name[4] == '_' &&
        std::all_of(name.begin(), name.begin() + 4, absl::ascii_isdigit) &&
        absl::SimpleAtoi(name.substr(0, 4), &version) && version > 0;
    if (!well_formed) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration '", name, "' is not named NNNN_description"));
    }
    out.push_back({version, std::string(name), std::string(sql)});
  }
  std::sort(out.begin(), out.end(), [](const Migration& a, const Migration& b) {
    return a.version < b.version;
  });
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "migrations must be numbered 1, 2, 3, ... without gaps or repeats; "
          "found '",
          out[i].name, "' where version ", i + 1, " belongs"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<Migration>> PendingMigrations(
    const std::vector<Migration>& ordered,
    const std::vector<std::string>& applied) {
  std::set<std::string> known;
  for (const Migration& m : ordered) known.insert(m.name);
  for (const std::string& a : applied) {
    if (known.count(a) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database has migration '", a,
          "' that this collector does not know: the database is newer than "
          "this binary"));
    }
  }
  // What is applied must be exactly the first k migrations.
  const std::set<std::string> done(applied.begin(), applied.end());
  const size_t k = done.size();
  for (size_t i = 0; i < k; ++i) {
    if (done.count(ordered[i].name) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("the database skipped migration '", ordered[i].name,
                       "' but has later ones"));
    }
  }
  std::vector<Migration> pending(ordered.begin() + k, ordered.end());
  return pending;
}

}  // namespace netvigil::collector
