// What the analysis rules (collector/analysis/rules/) hand to the alert
// lifecycle: conditions (an alert's wanted state), new things, and the small
// pure helpers the rules share. Thread-safe: plain data and pure functions.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_CONDITION_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_CONDITION_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector::rules {

// The alert kinds, by their stable names: what the alert log, the database's
// alerts.kind column and fail2ban's filter say, and what people type after
// `netvigil alerts --kind`. On the wire each is also an enum value,
// v1::AlertKind, named ALERT_KIND_ and the name in capitals; the mapping
// follows that rule (common/wire_kinds.h), so adding a kind is one line
// here and a value in proto/netvigil/v1/alerts.proto. wire_kinds_test
// reads the lines below and fails for a name without its enum value (or the
// other way round).
constexpr char kPathLoss[] = "path_loss";
constexpr char kLatency[] = "path_latency";
constexpr char kRoute[] = "route_change";
constexpr char kListener[] = "new_listener";
constexpr char kRemote[] = "new_remote";
constexpr char kInbound[] = "new_inbound";
constexpr char kFileProcess[] = "new_file_process";
constexpr char kHiddenExe[] = "hidden_exe";
constexpr char kSpeed[] = "speed_low";
constexpr char kResultsLost[] = "results_lost";
constexpr char kClockSkew[] = "clock_skew";
// A notification channel failing for longer than notify.fail_alert_after
// (collector/notify/); details["channel"] names it (the same literal as
// collector/alerts/notify_outbox.h's kNotifyFailedKind, which routes it to
// the other channels).
constexpr char kNotifyFailed[] = "notify_failed";

using AlertKey = std::pair<std::string, std::string>;  // kind, subject

// What a rule found, before it becomes (or updates) an alert.
struct Condition {
  std::string kind;
  std::string subject;
  v1::Severity severity = v1::SEVERITY_WARNING;
  v1::AlertScope scope = v1::ALERT_SCOPE_HOST;
  std::set<std::string> hosts;
  std::string summary;
  std::string remote_address;
  std::vector<v1::Evidence> evidence;
  std::map<std::string, std::string> details;
  // When the condition began, if before now (a held new thing).
  absl::Time first_seen = absl::InfinitePast();
};

// What a per-host rule asks of the alerts: conditions to raise (open or
// update) and alerts whose condition is over.
struct RuleOutput {
  std::vector<Condition> raise;
  std::vector<AlertKey> resolve;
};

// What a cross-host rule found for one alert kind: the conditions that hold
// now (by subject), and the subjects held back while other hosts have not
// had their say (an open alert of a held subject stays open).
struct CrossHostVerdict {
  std::map<std::string, Condition> conds;
  std::set<std::string> held;
};

// A new thing found in a snapshot.
struct Thing {
  // The alert subject shared across hosts; empty: the key itself. A
  // listener bound to a host's own address has a per-host key but is "the
  // same listener" on every host.
  std::string group;
  std::string summary;
  std::string remote_address;
  std::map<std::string, std::string> details;
};

v1::Evidence MakeEvidence(const std::string& agent, uint64_t seq, absl::Time at,
                          const std::string& note);
google::protobuf::Timestamp Ts(absl::Time t);
inline absl::Time TimeOf(int64_t us) { return absl::FromUnixMicros(us); }
inline int64_t Us(absl::Time t) { return absl::ToUnixMicros(t); }
double Median(std::vector<double> v);
double Mad(const std::vector<double>& v, double median);

// Appends `v` to a repeated field and drops the oldest beyond `max`.
template <typename Repeated, typename T>
void PushBounded(Repeated* r, T v, size_t max) {
  r->Add(std::move(v));
  if (static_cast<size_t>(r->size()) > max) {
    r->erase(r->begin(), r->begin() + (r->size() - max));
  }
}

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_CONDITION_H_
