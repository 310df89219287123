#include "collector/analysis/analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "collector/alerts/notify_outbox.h"
#include "collector/analysis/rules/files.h"
#include "collector/analysis/rules/gaps.h"
#include "collector/analysis/rules/sockets.h"
#include "common/escape.h"
#include "common/model/facts.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

using google::protobuf::util::TimeUtil;
using rules::kClockSkew;
using rules::kFileProcess;
using rules::kHiddenExe;
using rules::kInbound;
using rules::kLatency;
using rules::kListener;
using rules::kPathLoss;
using rules::kRemote;
using rules::kResultsLost;
using rules::kRoute;
using rules::kSpeed;
using rules::MakeEvidence;
using rules::TimeOf;
using rules::Ts;
using rules::Us;

namespace {

// --- baseline rows of versions before the internal messages ("k=v" lines),
// read once on Load and written back as messages. A field that is there but
// does not parse makes the row unreadable (never read as 0).

using Kv = std::map<std::string, std::string>;

Kv DecodeKv(const std::string& s) {
  Kv kv;
  for (absl::string_view line : absl::StrSplit(s, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    kv[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return kv;
}

// Reads the fields of one legacy row; `ok` turns false on the first field
// that is present but malformed.
class KvReader {
 public:
  explicit KvReader(const std::string& text) : kv_(DecodeKv(text)) {}
  bool ok() const { return ok_; }
  const std::string& bad() const { return bad_; }
  bool has(const char* k) const { return kv_.count(k) > 0; }
  std::string Str(const char* k) const {
    auto it = kv_.find(k);
    return it == kv_.end() ? "" : it->second;
  }
  template <typename T>
  T Int(const char* k) {
    T v = 0;
    auto it = kv_.find(k);
    if (it != kv_.end() && !absl::SimpleAtoi(it->second, &v)) Fail(k);
    return v;
  }
  double Dbl(const char* k) {
    double v = 0;
    auto it = kv_.find(k);
    if (it != kv_.end() && !absl::SimpleAtod(it->second, &v)) Fail(k);
    return v;
  }
  bool Bool(const char* k) { return Int<int>(k) != 0; }
  // Comma-separated items, each parsed by `f` (false: malformed).
  template <typename F>
  void List(const char* k, F f) {
    for (absl::string_view item :
         absl::StrSplit(Str(k), ',', absl::SkipEmpty())) {
      if (!f(item)) {
        Fail(k);
        return;
      }
    }
  }

 private:
  void Fail(const char* k) {
    if (ok_) bad_ = k;
    ok_ = false;
  }
  Kv kv_;
  bool ok_ = true;
  std::string bad_;
};

bool LegacyPath(const std::string& text, internal::PathBaseline* t,
                std::string* bad) {
  KvReader r(text);
  r.List("rtt", [&](absl::string_view x) {
    double d;
    if (!absl::SimpleAtod(x, &d)) return false;
    t->add_rtt_ms(d);
    return true;
  });
  t->set_slow_runs(r.Int<uint32_t>("slow_runs"));
  t->set_stable_route(r.Str("stable_route"));
  t->set_candidate_route(r.Str("candidate_route"));
  t->set_candidate_runs(r.Int<uint32_t>("candidate_runs"));
  t->set_reached_ever(r.Bool("reached_ever"));
  r.List("loss_runs", [&](absl::string_view x) {
    std::pair<absl::string_view, absl::string_view> sl =
        absl::StrSplit(x, absl::MaxSplits(':', 1));
    uint32_t sent = 0, lost = 0;
    if (!absl::SimpleAtoi(sl.first, &sent) ||
        !absl::SimpleAtoi(sl.second, &lost)) {
      return false;
    }
    auto* run = t->add_loss_runs();
    run->set_sent(sent);
    run->set_lost(lost);
    return true;
  });
  if (r.has("at")) {
    t->set_has_latest(true);
    t->set_at_us(r.Int<int64_t>("at"));
    t->set_seq(r.Int<uint64_t>("seq"));
    t->set_lossy(r.Bool("lossy"));
    t->set_loss_percent(r.Dbl("loss_percent"));
    t->set_loss_hop(r.Str("loss_hop"));
    t->set_loss_suffix(r.Str("loss_suffix"));
    t->set_loss_onset_us(r.Int<int64_t>("loss_onset"));
    t->set_lossy_runs(r.Int<uint32_t>("lossy_runs"));
    t->set_sustained(r.Bool("sustained"));
    r.List("hop_votes", [&](absl::string_view x) {
      const size_t slash = x.rfind('/');
      uint32_t n = 0;
      if (slash == absl::string_view::npos ||
          !absl::SimpleAtoi(x.substr(slash + 1), &n)) {
        return false;
      }
      (*t->mutable_hop_votes())[std::string(x.substr(0, slash))] = n;
      return true;
    });
    r.List("recent_at", [&](absl::string_view x) {
      int64_t us = 0;
      if (!absl::SimpleAtoi(x, &us)) return false;
      t->add_recent_at_us(us);
      return true;
    });
  }
  *bad = r.bad();
  return r.ok();
}

bool LegacySpeed(const std::string& text, internal::SpeedBaseline* p,
                 std::string* bad) {
  KvReader r(text);
  p->set_agent(r.Str("agent"));
  p->set_sender(r.Str("sender"));
  p->set_receiver(r.Str("receiver"));
  p->set_external(r.Bool("external"));
  r.List("bps", [&](absl::string_view x) {
    double d;
    if (!absl::SimpleAtod(x, &d)) return false;
    p->add_bps(d);
    return true;
  });
  p->set_low_runs(r.Int<uint32_t>("low_runs"));
  if (r.has("at")) {
    p->set_has_latest(true);
    p->set_at_us(r.Int<int64_t>("at"));
    p->set_seq(r.Int<uint64_t>("seq"));
    p->set_degraded(r.Bool("degraded"));
    p->set_onset_us(r.Int<int64_t>("onset"));
    p->set_last_bps(r.Dbl("last_bps"));
    p->set_baseline_bps(r.Dbl("baseline"));
    p->set_low_since_us(r.Int<int64_t>("low_since"));
    r.List("recent_at", [&](absl::string_view x) {
      int64_t us = 0;
      if (!absl::SimpleAtoi(x, &us)) return false;
      p->add_recent_at_us(us);
      return true;
    });
  }
  *bad = r.bad();
  return r.ok() && !p->sender().empty() && !p->receiver().empty();
}

// What an open results_lost alert of an older version gathered, from its
// details (written by that version in this form).
bool LegacyGaps(const v1::Alert& a, internal::GapTotals* t) {
  const auto& d = a.details();
  auto num = [&d](const char* key, auto* out) {
    auto f = d.find(key);
    return f != d.end() && absl::SimpleAtoi(f->second, out);
  };
  uint64_t count = 0, gaps = 0;
  int64_t first = 0, last = 0;
  if (!num("count", &count) || !num("gaps", &gaps) ||
      !num("first_at_us", &first) || !num("last_at_us", &last)) {
    return false;
  }
  t->set_count(count);
  t->set_gaps(gaps);
  t->set_first_at_us(first);
  t->set_last_at_us(last);
  auto b = d.find("bound");
  t->set_bound(b != d.end() && b->second == "yes");
  auto r = d.find("reasons");
  if (r != d.end()) {
    std::set<std::string> reasons;
    for (absl::string_view x : absl::StrSplit(r->second, ", ")) {
      if (!x.empty()) reasons.emplace(x);
    }
    for (const auto& x : reasons) t->add_reasons(x);
  }
  return true;
}

std::string Hosts(const std::set<std::string>& h) {
  return absl::StrJoin(h, ", ");
}

}  // namespace

Analyzer::Analyzer(AnalysisOptions options, AlertStore& store, Clock& clock)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      book_(store, clock, options_.max_evidence) {}

void Analyzer::AddListener(Listener listener) {
  absl::MutexLock l(&mu_);
  book_.AddListener(std::move(listener));
}

Analyzer::Counters Analyzer::counters() {
  absl::MutexLock l(&mu_);
  Counters c = counters_;
  c.events = book_.counters().events;
  c.store_errors += book_.counters().store_errors;
  return c;
}

std::vector<v1::Alert> Analyzer::Open() {
  absl::MutexLock l(&mu_);
  return book_.OpenById();
}

// ------------------------------------------------------------------ state

void Analyzer::PersistRow(AnalysisStateRow row) {
  buffered_.push_back(std::move(row));
}

// The writes queued under mu_ (state rows, the book's alert and event rows)
// are written here, after mu_ is released: PostgreSQL's latency never
// holds up other results, ticks or acks. write_mu_ makes one writer at a
// time, and each takes everything queued so far, so rows reach the store
// in the order they were queued (an alert's events in their order).
void Analyzer::Flush() {
  absl::MutexLock w(&write_mu_);
  std::vector<AlertBook::Write> writes;
  std::vector<AnalysisStateRow> rows;
  size_t want_ids = 0;
  {
    absl::MutexLock l(&mu_);
    writes = book_.TakeWrites();
    rows.swap(buffered_);
    if (book_.spare_ids() < kSpareIdsLow) want_ids = kSpareIdsBatch;
  }
  uint64_t errors = 0;
  if (!rows.empty()) {
    if (absl::Status s = store_.PutStates(rows); !s.ok()) {
      ++errors;
      spdlog::error(
          "event=analysis_state_write_failed agent={} rows={} error={}",
          LogValue(rows.front().agent), rows.size(), LogValue(s.ToString()));
    }
  }
  errors += AlertBook::WriteAll(store_, writes);
  std::vector<int64_t> ids;
  if (want_ids > 0) {
    absl::StatusOr<std::vector<int64_t>> r = store_.ReserveAlertIds(want_ids);
    if (r.ok()) {
      ids = std::move(*r);
    } else {
      ++errors;
      spdlog::warn("event=alert_ids_reserve_failed error={}",
                   LogValue(r.status().ToString()));
    }
  }
  if (errors > 0 || !ids.empty()) {
    absl::MutexLock l(&mu_);
    counters_.store_errors += errors;
    book_.AddIds(ids);
  }
}

void Analyzer::PersistPath(const std::string& agent,
                           const std::string& target) {
  PersistRow(
      {agent, "path", target, "", paths_[agent][target].SerializeAsString()});
}

void Analyzer::PersistSpeed(const std::string& key) {
  PersistRow({"*", "speed", key, "", speeds_[key].SerializeAsString()});
}

void Analyzer::PersistGaps(const std::string& agent) {
  PersistRow({agent, "gaps", "", "", gaps_[agent].SerializeAsString()});
}

void Analyzer::ApplyStateRow(const AnalysisStateRow& row,
                             std::vector<AnalysisStateRow>* rewrite) {
  // A baseline that cannot be read restarts learning, visibly: never a
  // half-read baseline whose missing numbers are 0.
  auto unreadable = [&](const std::string& why) {
    spdlog::warn(
        "event=analysis_state_unreadable agent={} kind={} key={} why={} "
        "note=\"baseline restarts learning\"",
        LogValue(row.agent), LogValue(row.kind), LogValue(row.key),
        LogValue(why));
  };
  if (row.kind == "agent" && row.key == "first_result") {
    int64_t us = 0;
    if (absl::SimpleAtoi(row.value, &us)) {
      agents_[row.agent].first_result = TimeOf(us);
    } else {
      unreadable("first_result is not a number");
    }
  } else if (row.kind == "seen") {
    agents_[row.agent].seen_kinds.insert(row.key);
  } else if (absl::StartsWith(row.kind, "known:")) {
    const std::string kind = row.kind.substr(6);
    agents_[row.agent].known[kind].insert(
        kind == kRemote ? rules::RemoteKeyOfStored(row.key, options_)
                        : row.key);
  } else if (row.kind == "path") {
    internal::PathBaseline t;
    std::string bad;
    if (row.bytes.has_value()) {
      if (!t.ParseFromString(*row.bytes)) {
        return unreadable("not a PathBaseline message");
      }
    } else if (!LegacyPath(row.value, &t, &bad)) {
      return unreadable(absl::StrCat("k=v field ", bad, " malformed"));
    } else {
      rewrite->push_back(
          {row.agent, "path", row.key, "", t.SerializeAsString()});
    }
    paths_[row.agent][row.key] = std::move(t);
  } else if (row.kind == "speed") {
    internal::SpeedBaseline p;
    std::string bad;
    if (row.bytes.has_value()) {
      if (!p.ParseFromString(*row.bytes)) {
        return unreadable("not a SpeedBaseline message");
      }
    } else if (!LegacySpeed(row.value, &p, &bad)) {
      return unreadable(absl::StrCat(
          "k=v field ", bad.empty() ? "sender/receiver" : bad, " malformed"));
    } else {
      rewrite->push_back({"*", "speed", row.key, "", p.SerializeAsString()});
    }
    speeds_[row.key] = std::move(p);
  } else if (row.kind == "gaps") {
    internal::GapTotals g;
    if (!row.bytes.has_value() || !g.ParseFromString(*row.bytes)) {
      return unreadable("not a GapTotals message");
    }
    gaps_[row.agent] = std::move(g);
  } else {
    spdlog::warn("event=analysis_state_unknown agent={} kind={} key={}",
                 LogValue(row.agent), LogValue(row.kind), LogValue(row.key));
  }
}

absl::Status Analyzer::Load() {
  absl::StatusOr<std::vector<AnalysisStateRow>> rows = store_.LoadState();
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<v1::Alert>> alerts = store_.UnresolvedAlerts();
  if (!alerts.ok()) return alerts.status();
  {
    absl::MutexLock l(&mu_);
    std::vector<AnalysisStateRow> rewrite;
    for (const auto& row : *rows) ApplyStateRow(row, &rewrite);
    book_.Load(*alerts);
    for (const v1::Alert& a : *alerts) {
      AlertKey key{a.kind(), a.subject()};
      present_[key] = std::set<std::string>(a.hosts().begin(), a.hosts().end());
      // An open results_lost alert of an older version kept its totals only
      // in its details: they become the host's GapTotals once.
      if (a.kind() == kResultsLost && a.hosts_size() == 1 &&
          gaps_.count(a.hosts(0)) == 0) {
        internal::GapTotals g;
        if (LegacyGaps(a, &g)) {
          gaps_[a.hosts(0)] = g;
          rewrite.push_back(
              {a.hosts(0), "gaps", "", "", g.SerializeAsString()});
        } else {
          spdlog::warn(
              "event=analysis_state_unreadable agent={} kind=gaps id={} "
              "note=\"totals restart from the next gap\"",
              LogValue(a.hosts(0)), a.id());
        }
      }
    }
    if (!rewrite.empty()) {
      spdlog::info("event=analysis_state_converted rows={}", rewrite.size());
      for (auto& r : rewrite) buffered_.push_back(std::move(r));
    }
    spdlog::info("event=analysis_loaded state_rows={} open_alerts={}",
                 rows->size(), alerts->size());
  }
  // The converted rows, and a first stock of alert ids.
  Flush();
  return absl::OkStatus();
}

// ------------------------------------------------------------- lifecycle

void Analyzer::Raise(const Condition& c) { book_.Raise(c); }

void Analyzer::Resolve(const AlertKey& key) {
  book_.Resolve(key);
  present_.erase(key);
}

void Analyzer::ReleasePending(absl::Time now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Pending& p = it->second;
    if (now - p.first_seen < options_.multi_host_window) {
      ++it;
      continue;
    }
    const AlertKey key = it->first;
    Condition c;
    c.kind = key.first;
    c.subject = key.second;
    c.hosts = p.hosts;
    const bool several = c.hosts.size() >= 2;
    c.scope = several ? v1::ALERT_SCOPE_MULTI_HOST : v1::ALERT_SCOPE_HOST;
    c.severity = several ? p.multi : p.single;
    c.summary = several ? absl::StrCat(p.summary, " on ", c.hosts.size(),
                                       " hosts (", Hosts(c.hosts), ")")
                        : absl::StrCat(p.summary, " on ", *c.hosts.begin());
    c.remote_address = p.remote_address;
    c.evidence = p.evidence;
    c.details = p.details;
    c.first_seen = p.first_seen;
    std::set<std::string> present = p.present;
    it = pending_.erase(it);
    Raise(c);
    if (present.empty()) {
      // Gone from every host before the hold was over.
      Resolve(key);
    } else {
      present_[key] = std::move(present);
    }
  }
}

void Analyzer::Reconcile(const std::string& kind,
                         const std::map<std::string, Condition>& conds,
                         const std::set<std::string>& held) {
  book_.Reconcile(kind, conds, held);
}

absl::StatusOr<v1::Alert> Analyzer::Ack(int64_t id, const std::string& by) {
  // What is queued is written first, so a closed alert read back from the
  // store is its newest state.
  Flush();
  bool reread = false;
  absl::StatusOr<v1::Alert> acked = AcknowledgeAndLearn(id, by, &reread);
  Flush();
  if (reread) return store_.GetAlert(id);
  return acked;
}

absl::StatusOr<v1::Alert> Analyzer::AcknowledgeAndLearn(int64_t id,
                                                        const std::string& by,
                                                        bool* reread) {
  absl::MutexLock l(&mu_);
  bool newly = false;
  absl::StatusOr<v1::Alert> acked = book_.Acknowledge(id, by, &newly);
  if (!acked.ok() || !newly) return acked;
  const v1::Alert& a = *acked;
  // Into the baseline.
  const auto& d = a.details();
  const std::string agent = d.count("agent") ? d.at("agent") : "";
  const std::string target = d.count("target") ? d.at("target") : "";
  if (d.count("key")) {
    for (const auto& h : a.hosts()) {
      auto own = d.find(absl::StrCat("key.", h));
      const std::string& key = own != d.end() ? own->second : d.at("key");
      agents_[h].known[a.kind()].insert(key);
      PersistRow({h, absl::StrCat("known:", a.kind()), key, ""});
    }
  } else if (a.kind() == kRoute && paths_.count(agent) &&
             paths_[agent].count(target) && d.count("new_route")) {
    internal::PathBaseline& t = paths_[agent][target];
    t.set_stable_route(d.at("new_route"));
    t.clear_candidate_route();
    t.set_candidate_runs(0);
    PersistPath(agent, target);
  } else if (a.kind() == kLatency && paths_.count(agent) &&
             paths_[agent].count(target)) {
    // The new level becomes normal: learn it afresh.
    internal::PathBaseline& t = paths_[agent][target];
    t.clear_rtt_ms();
    t.set_slow_runs(0);
    PersistPath(agent, target);
  }
  // Lost results never come back: once seen, the alert is done.
  if (const AlertKey key{a.kind(), a.subject()};
      a.kind() == kResultsLost && book_.Find(key) != nullptr) {
    Resolve(key);
    *reread = true;
  }
  return acked;
}

// ----------------------------------------------------------------- results

bool Analyzer::Learning(const std::string& agent,
                        const std::string& probe_kind) {
  AgentState& s = agents_[agent];
  const bool first = s.seen_kinds.insert(probe_kind).second;
  if (first) {
    PersistRow({agent, "seen", probe_kind, ""});
    spdlog::info(
        "event=analysis_first_result agent={} kind={} "
        "note=\"no history: learnt, no alert\"",
        agent, probe_kind);
    return true;
  }
  return clock_.Now() < s.first_result + options_.learning_period;
}

void Analyzer::OnResult(const std::string& agent, const v1::Result& result) {
  {
    absl::MutexLock l(&mu_);
    OnResultLocked(agent, result);
  }
  Flush();
}

void Analyzer::OnResults(
    const std::vector<
        std::pair<std::string, std::shared_ptr<const v1::Result>>>& results) {
  {
    absl::MutexLock l(&mu_);
    for (const auto& [agent, result] : results) OnResultLocked(agent, *result);
  }
  Flush();
}

void Analyzer::OnResultLocked(const std::string& agent,
                              const v1::Result& result) {
  ++counters_.results;
  if (agent.empty()) {
    ++counters_.skipped;
    spdlog::warn("event=analysis_skip reason=\"result without agent\" seq={}",
                 result.seq());
    return;
  }
  if (!pending_.empty()) ReleasePending(clock_.Now());
  AgentState& s = agents_[agent];
  if (s.first_result == absl::InfiniteFuture()) {
    s.first_result = clock_.Now();
    PersistRow(
        {agent, "agent", "first_result", absl::StrCat(Us(s.first_result))});
  }
  switch (result.payload_case()) {
    case v1::Result::kPath:
      return OnPath(agent, result.seq(), result.path());
    case v1::Result::kSockets:
      return OnSockets(agent, result.seq(), result.sockets());
    case v1::Result::kFiles:
      return OnFiles(agent, result.seq(), result.files());
    case v1::Result::kSpeed:
      return OnSpeed(agent, result.seq(), result.speed());
    case v1::Result::kGap:
      return OnGap(agent, result.seq(), result.gap());
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
  ++counters_.skipped;
  spdlog::warn("event=analysis_skip agent={} seq={} reason=\"no payload\"",
               agent, result.seq());
}

// -------------------------------------------------------------- clock skew

void Analyzer::OnClockOffset(const std::string& agent, absl::Duration offset) {
  {
    absl::MutexLock l(&mu_);
    ClockOffsetLocked(agent, offset);
  }
  Flush();
}

void Analyzer::ClockOffsetLocked(const std::string& agent,
                                 absl::Duration offset) {
  const AlertKey key{kClockSkew, absl::StrCat(kClockSkew, " host=", agent)};
  auto it = book_.open().find(key);
  const absl::Time mono = clock_.MonotonicNow();
  clock_readings_[agent] = ClockReading{offset, mono};
  const absl::Duration size = absl::Floor(
      absl::AbsDuration(offset) + absl::Milliseconds(500), absl::Seconds(1));
  if (size < kClockSkewAlert) {
    if (it != book_.open().end() && size < kClockSkewAlert / 2) Resolve(key);
    return;
  }
  const int64_t offset_s = absl::ToInt64Seconds(offset);
  if (it != book_.open().end()) {
    // Heartbeats come every few seconds: only a real change is news.
    int64_t was = 0;
    auto d = it->second.details().find("offset_s");
    if (d != it->second.details().end() && absl::SimpleAtoi(d->second, &was) &&
        std::abs(was - offset_s) < 5 + std::abs(was) / 10) {
      return;
    }
  }
  Condition c;
  c.kind = kClockSkew;
  c.subject = key.second;
  c.hosts = {agent};
  // The agents heard in the last 10 minutes (heartbeats come every few
  // seconds), and how many of them are off by about the same as this one.
  // A collector whose clock is days wrong made every agent's alert blame
  // that agent's clock.
  int heard = 0, agreeing = 0;
  const absl::Duration tolerance =
      std::max(kClockSkewAlert, absl::AbsDuration(offset) / 10);
  for (const auto& [name, reading] : clock_readings_) {
    if (mono - reading.at > absl::Minutes(10)) continue;
    ++heard;
    if (absl::AbsDuration(reading.offset - offset) <= tolerance) ++agreeing;
  }
  const bool collector_suspect = heard >= 2 && agreeing == heard;
  c.summary = absl::StrCat(
      "the clock of ", agent, " is ", absl::FormatDuration(size),
      offset > absl::ZeroDuration() ? " ahead of" : " behind",
      " the collector's; its results are dated by the collector where "
      "their times fall outside the believable window");
  if (collector_suspect) {
    absl::StrAppend(&c.summary, "; all ", heard,
                    " agents heard lately are off by as much: the "
                    "collector's own clock is the likelier one to be wrong");
    spdlog::error(
        "collector_clock_suspect agents={} collector_ahead_s={} "
        "detail=\"every agent's clock differs from the collector's by about "
        "the same: check the collector host's clock (NTP)\"",
        heard, -offset_s);
  }
  c.details["offset_s"] = absl::StrCat(offset_s);
  if (collector_suspect) c.details["agents_agreeing"] = absl::StrCat(heard);
  Raise(c);
}

// ------------------------------------------------------------ notify_failed

// The outbox routes the alert by its kind (collector/alerts/notify_outbox.h).
static_assert(std::string_view(rules::kNotifyFailed) == kNotifyFailedKind);

void Analyzer::OnNotifyChannel(const std::string& channel, bool failing,
                               const std::string& error) {
  {
    absl::MutexLock l(&mu_);
    const AlertKey key{
        rules::kNotifyFailed,
        absl::StrCat(rules::kNotifyFailed, " channel=", channel)};
    if (!failing) {
      if (book_.open().count(key) != 0) Resolve(key);
    } else {
      Condition c;
      c.kind = rules::kNotifyFailed;
      c.subject = key.second;
      c.summary = absl::StrCat("notification channel ", channel,
                               " keeps failing: ", error);
      c.details["channel"] = channel;
      Raise(c);
    }
  }
  Flush();
}

// --------------------------------------------------------------------- gap

// A gap is news whatever the learning period (rules/gaps.h); the totals of
// the host's open alert are its GapTotals baseline.
void Analyzer::OnGap(const std::string& agent, uint64_t seq,
                     const v1::Gap& gap) {
  const AlertKey key{kResultsLost, absl::StrCat(kResultsLost, " host=", agent)};
  const internal::GapTotals before =
      book_.open().count(key) != 0 && gaps_.count(agent)
          ? gaps_[agent]
          : internal::GapTotals();
  rules::GapStep step = rules::AddGap(before, agent, seq, gap);
  gaps_[agent] = std::move(step.totals);
  PersistGaps(agent);
  Raise(step.condition);
}

// -------------------------------------------------------------------- path

void Analyzer::Apply(const rules::RuleOutput& out) {
  for (const Condition& c : out.raise) Raise(c);
  for (const AlertKey& k : out.resolve) Resolve(k);
}

void Analyzer::OnPath(const std::string& agent, uint64_t seq,
                      const v1::PathRun& run) {
  if (run.target().empty() || !run.error().empty() || run.hops_size() == 0) {
    ++counters_.skipped;
    // The error is the agent's text: LogValue keeps it on this line.
    spdlog::info("event=analysis_skip agent={} seq={} kind=path reason={}",
                 agent, seq,
                 LogValue(run.target().empty()   ? "no target"
                          : !run.error().empty() ? "failed run: " + run.error()
                                                 : "no hops"));
    return;
  }
  const absl::Time now = clock_.Now();
  const bool has_history =
      paths_.count(agent) > 0 && paths_[agent].count(run.target()) > 0;
  internal::PathBaseline& t = paths_[agent][run.target()];
  if (!has_history) {
    spdlog::info(
        "event=analysis_first_result agent={} kind=path target={} "
        "note=\"no history: learnt, no alert\"",
        agent, LogValue(run.target()));
  }
  rules::PathContext ctx;
  ctx.agent = agent;
  ctx.seq = seq;
  ctx.now = now;
  ctx.learning = Learning(agent, "path") || !has_history;
  ctx.has_history = has_history;
  ctx.latency_open =
      book_.open().count({kLatency, absl::StrCat(kLatency, " host=", agent,
                                                 " target=", run.target())}) >
      0;
  rules::PathStep step = rules::UpdatePath(t, run, ctx, options_);
  t = std::move(step.baseline);
  Apply(step.out);
  PersistPath(agent, run.target());
  EvaluatePathLoss(now);
}

void Analyzer::EvaluatePathLoss(absl::Time now) {
  rules::CrossHostVerdict v =
      rules::EvaluatePathLoss(paths_, book_.open(), now, options_);
  Reconcile(kPathLoss, v.conds, v.held);
}

// ----------------------------------------------------------------- sockets

void Analyzer::NewThings(
    const std::string& agent, uint64_t seq, const std::string& kind,
    bool learning, const absl::flat_hash_map<std::string, size_t>& current,
    const std::function<Thing(size_t)>& make, v1::Severity single,
    v1::Severity multi) {
  const absl::Time now = clock_.Now();
  absl::flat_hash_set<std::string>& known = agents_[agent].known[kind];
  // What is not known yet, in key order (the order alerts are raised in).
  std::vector<const std::pair<const std::string, size_t>*> unknown;
  for (const auto& entry : current) {
    if (!known.contains(entry.first)) unknown.push_back(&entry);
  }
  std::sort(unknown.begin(), unknown.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* entry : unknown) {
    const std::string& key = entry->first;
    const size_t source = entry->second;
    if (learning) {
      known.insert(key);
      PersistRow({agent, absl::StrCat("known:", kind), key, ""});
      continue;
    }
    const Thing thing = make(source);
    const std::string group = thing.group.empty() ? key : thing.group;
    AlertKey akey{kind, group};
    // Too far apart to be one event: this host gets its own alert.
    auto too_late = [&](absl::Time first, bool listed) {
      return !listed && now - first > options_.multi_host_window;
    };
    if (auto it = book_.open().find(akey); it != book_.open().end()) {
      const v1::Alert& a = it->second;
      const bool listed = std::find(a.hosts().begin(), a.hosts().end(),
                                    agent) != a.hosts().end();
      if (too_late(absl::FromUnixMicros(
                       TimeUtil::TimestampToMicroseconds(a.first_seen())),
                   listed)) {
        akey.second = absl::StrCat(group, " @", agent);
      }
    } else if (auto p = pending_.find(akey); p != pending_.end()) {
      if (too_late(p->second.first_seen, p->second.hosts.count(agent) > 0)) {
        akey.second = absl::StrCat(group, " @", agent);
      }
    }
    if (auto it = book_.open().find(akey); it != book_.open().end()) {
      // Open already (a host it lists shows it again): an update.
      Condition c;
      c.kind = kind;
      c.subject = akey.second;
      c.remote_address = thing.remote_address;
      c.details = thing.details;
      c.details["key"] = key;
      c.details[absl::StrCat("key.", agent)] = key;
      c.evidence.push_back(MakeEvidence(agent, seq, now, thing.summary));
      c.hosts.insert(it->second.hosts().begin(), it->second.hosts().end());
      c.hosts.insert(agent);
      const bool several = c.hosts.size() >= 2;
      c.scope = several ? v1::ALERT_SCOPE_MULTI_HOST : v1::ALERT_SCOPE_HOST;
      c.severity = several ? multi : single;
      c.summary = several ? absl::StrCat(thing.summary, " on ", c.hosts.size(),
                                         " hosts (", Hosts(c.hosts), ")")
                          : absl::StrCat(thing.summary, " on ", agent);
      Raise(c);
      present_[akey].insert(agent);
      continue;
    }
    // Not open: held until multi_host_window after its first sighting.
    auto [p, fresh] = pending_.try_emplace(akey);
    Pending& pend = p->second;
    if (fresh) {
      pend.first_seen = now;
      pend.summary = thing.summary;
      pend.remote_address = thing.remote_address;
      pend.single = single;
      pend.multi = multi;
    }
    for (const auto& [k, v] : thing.details) pend.details.emplace(k, v);
    pend.details.emplace("key", key);
    pend.details[absl::StrCat("key.", agent)] = key;
    if (pend.hosts.insert(agent).second) {
      pend.evidence.push_back(MakeEvidence(agent, seq, now, thing.summary));
    }
    pend.present.insert(agent);
  }
  // Gone from a host: it no longer shows a pending thing (the thing still
  // opens when its hold is over; it was there).
  for (auto& [akey, pend] : pending_) {
    if (akey.first != kind || pend.present.count(agent) == 0) continue;
    auto own = pend.details.find(absl::StrCat("key.", agent));
    if (own != pend.details.end() && current.count(own->second) == 0) {
      pend.present.erase(agent);
    }
  }
  ReleasePending(now);
  // Resolve what has gone from every host that showed it.
  std::vector<AlertKey> gone;
  for (auto& [akey, hosts] : present_) {
    if (akey.first != kind || hosts.count(agent) == 0) continue;
    std::string key = akey.second;
    if (auto it = book_.open().find(akey); it != book_.open().end()) {
      const auto& d = it->second.details();
      auto own = d.find(absl::StrCat("key.", agent));
      if (own != d.end()) {
        key = own->second;
      } else if (d.count("key")) {
        key = d.at("key");
      }
    }
    if (current.count(key) == 0) hosts.erase(agent);
    if (hosts.empty()) gone.push_back(akey);
  }
  for (const auto& k : gone) Resolve(k);
}

void Analyzer::SetOwnEndpoints(model::OwnEndpoints own) {
  absl::MutexLock l(&mu_);
  own_ = std::move(own);
}

void Analyzer::OnSockets(const std::string& agent, uint64_t seq,
                         const v1::SocketSnapshot& snap) {
  const bool learning = Learning(agent, "sockets");
  const rules::SocketCandidates cand =
      rules::SocketCandidatesOf(snap, own_, options_);
  const absl::flat_hash_set<std::string>& known_remotes =
      agents_[agent].known[kRemote];
  NewThings(
      agent, seq, kListener, learning, cand.listeners,
      [&](size_t i) { return rules::DescribeListener(*cand.sources[i]); },
      v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
  NewThings(
      agent, seq, kRemote, learning, cand.remotes,
      [&](size_t i) {
        return rules::DescribeRemote(*cand.sources[i], known_remotes, options_);
      },
      v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
  NewThings(
      agent, seq, kInbound, learning, cand.inbound,
      [&](size_t i) { return rules::DescribeInbound(*cand.sources[i]); },
      v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
}

// ------------------------------------------------------------------- files

void Analyzer::OnFiles(const std::string& agent, uint64_t seq,
                       const v1::FileSnapshot& snap) {
  const bool learning = Learning(agent, "files");
  const rules::FileCandidates cand = rules::FileCandidatesOf(snap);
  if (cand.no_exe) {
    spdlog::debug("event=analysis_files_no_exe agent={} seq={} entries={}",
                  agent, seq, cand.no_exe);
  }
  NewThings(
      agent, seq, kFileProcess, learning, cand.processes,
      [&](size_t i) { return rules::DescribeFileProcess(snap.entries(i)); },
      v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
  // Hidden or deleted executables alert even while learning: they are
  // suspect whatever the history (only the first snapshot teaches).
  AgentState& s = agents_[agent];
  const bool first_files =
      s.known.count(kHiddenExe) == 0 && s.seen_kinds.count("files_hidden") == 0;
  if (first_files) {
    s.seen_kinds.insert("files_hidden");
    PersistRow({agent, "seen", "files_hidden", ""});
  }
  NewThings(
      agent, seq, kHiddenExe, first_files, cand.hidden,
      [&](size_t i) { return rules::DescribeHiddenExe(snap.entries(i)); },
      v1::SEVERITY_CRITICAL, v1::SEVERITY_CRITICAL);
}

// ------------------------------------------------------------------- speed

void Analyzer::OnSpeed(const std::string& agent, uint64_t seq,
                       const v1::SpeedResult& r) {
  if (r.outcome() != v1::SPEED_OUTCOME_OK || r.server().empty()) {
    ++counters_.skipped;
    spdlog::info("event=analysis_skip agent={} seq={} kind=speed reason=\"{}\"",
                 agent, seq,
                 r.server().empty() ? "no server" : "test did not succeed");
    return;
  }
  const absl::Time now = clock_.Now();
  for (const rules::SpeedDirection& d : rules::SpeedDirectionsOf(agent, r)) {
    if (!(d.bps > 0)) {
      ++counters_.skipped;
      spdlog::info(
          "event=analysis_skip agent={} seq={} kind=speed "
          "reason=\"no throughput figure\"",
          agent, seq);
      continue;
    }
    internal::SpeedBaseline& p = speeds_[d.key];
    p = rules::UpdateSpeedPair(p, d, agent, seq, r.external(), now, options_);
    PersistSpeed(d.key);
  }
  EvaluateSpeed(now);
}

void Analyzer::EvaluateSpeed(absl::Time now) {
  rules::CrossHostVerdict v =
      rules::EvaluateSpeed(speeds_, book_.open(), now, options_);
  Reconcile(kSpeed, v.conds, v.held);
}

void Analyzer::Tick() {
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = clock_.Now();
    ReleasePending(now);
    EvaluatePathLoss(now);
    EvaluateSpeed(now);
  }
  Flush();
}

}  // namespace netvigil::collector
