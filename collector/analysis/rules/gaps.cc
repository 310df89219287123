#include "collector/analysis/rules/gaps.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/proto_time.h"

namespace netvigil::collector::rules {

// A gap is news whatever the learning period: nothing of the host's history
// says results may go missing. One open alert per host gathers its gaps
// until it is acknowledged, so an agent that sends many (or lies) cannot
// flood the alert list.
GapStep AddGap(const internal::GapTotals& before, const std::string& agent,
               uint64_t seq, const v1::Gap& gap) {
  GapStep step;
  internal::GapTotals& t = step.totals;
  const absl::Time first = FromProtoTime(gap.first_produced_at());
  const absl::Time last = FromProtoTime(gap.last_produced_at());
  const bool fresh = before.gaps() == 0;
  t.set_count(before.count() + gap.count());
  t.set_gaps(before.gaps() + 1);
  t.set_first_at_us(fresh ? Us(first)
                          : std::min(before.first_at_us(), Us(first)));
  t.set_last_at_us(fresh ? Us(last) : std::max(before.last_at_us(), Us(last)));
  // A spool set aside or missing cannot know how many numbers it had given
  // out: its count is the numbers it skips to stay above them, a bound.
  t.set_bound(before.bound() || gap.reason() == "spool_damaged" ||
              gap.reason() == "spool_missing");
  std::set<std::string> reasons(before.reasons().begin(),
                                before.reasons().end());
  reasons.insert(gap.reason());
  for (const auto& r : reasons) t.add_reasons(r);

  Condition& c = step.condition;
  c.kind = kResultsLost;
  c.subject = absl::StrCat(kResultsLost, " host=", agent);
  c.hosts = {agent};
  const std::string why = absl::StrJoin(reasons, ", ");
  c.summary = absl::StrCat(
      t.bound() ? "up to " : "", t.count(),
      t.count() == 1 ? " result" : " results", " lost on ", agent, " between ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S", TimeOf(t.first_at_us()),
                       absl::UTCTimeZone()),
      " and ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", TimeOf(t.last_at_us()),
                       absl::UTCTimeZone()),
      t.gaps() > 1 ? absl::StrCat(" in ", t.gaps(), " gaps") : "", " (", why,
      ")");
  c.evidence.push_back(
      MakeEvidence(agent, seq, last,
                   absl::StrCat(gap.count(), " lost, numbers ", gap.first_seq(),
                                "-", gap.last_seq(), " (", gap.reason(), ")")));
  c.details = {{"agent", agent},
               {"count", absl::StrCat(t.count())},
               {"gaps", absl::StrCat(t.gaps())},
               {"first_at_us", absl::StrCat(t.first_at_us())},
               {"last_at_us", absl::StrCat(t.last_at_us())},
               {"reasons", why},
               {"bound", t.bound() ? "yes" : "no"}};
  return step;
}

}  // namespace netvigil::collector::rules
