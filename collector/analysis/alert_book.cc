#include "collector/analysis/alert_book.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/escape.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

using rules::AlertKey;
using rules::Condition;
using rules::kPathLoss;
using rules::kSpeed;
using rules::Ts;

namespace {

// Names for people: at most eight, then how many more.
std::string Capped(const std::vector<std::string>& names) {
  constexpr size_t kShown = 8;
  if (names.size() <= kShown) return absl::StrJoin(names, ", ");
  return absl::StrCat(
      absl::StrJoin(names.begin(), names.begin() + kShown, ", "), " and ",
      names.size() - kShown, " more");
}

// The keys of `a.details` that start with `prefix`, without it, in order.
std::vector<std::string> KeysAfter(const v1::Alert& a,
                                   const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& [k, v] : a.details()) {
    if (absl::StartsWith(k, prefix)) out.insert(k.substr(prefix.size()));
  }
  return std::vector<std::string>(out.begin(), out.end());
}

std::string Detail(const v1::Alert& a, const std::string& key) {
  auto it = a.details().find(key);
  return it == a.details().end() ? "" : it->second;
}

// Rewrites the summary of a path_loss or speed_low alert from what the
// alert holds now (hosts and details gather while it is open), so every
// event, the resolved one included, says the whole of what it was rather
// than what the last evaluation still saw.
void DescribeImpl(v1::Alert& a) {
  const std::vector<std::string> hosts(a.hosts().begin(), a.hosts().end());
  if (a.kind() == kPathLoss) {
    if (a.scope() == v1::ALERT_SCOPE_UPSTREAM) {
      const std::vector<std::string> targets =
          KeysAfter(a, "first_shared_hop.");
      std::vector<std::string> parts;
      for (const auto& t : targets) {
        parts.push_back(absl::StrCat(
            t, " from ", Detail(a, absl::StrCat("first_shared_hop.", t))));
      }
      (*a.mutable_details())["targets"] = absl::StrJoin(targets, ",");
      a.set_summary(absl::StrCat("packet loss upstream, seen from ",
                                 hosts.size() >= 2 ? "every host (" : "(",
                                 Capped(hosts),
                                 "): ", absl::StrJoin(parts, "; ")));
    } else {
      const std::string agent = Detail(a, "agent");
      const std::string prefix = absl::StrCat("first_lossy_hop.", agent, ".");
      const std::vector<std::string> targets = KeysAfter(a, prefix);
      const std::string hop =
          targets.empty() ? "" : Detail(a, prefix + targets.front());
      (*a.mutable_details())["targets"] = absl::StrJoin(targets, ",");
      a.set_summary(absl::StrCat(
          "packet loss on ", agent, "'s link", hop.empty() ? "" : " from ", hop,
          ", to ", Capped(targets), " (other hosts do not lose)"));
    }
  } else if (a.kind() == kSpeed) {
    const std::vector<std::string> pairs = KeysAfter(a, "pair.");
    switch (a.scope()) {
      case v1::ALERT_SCOPE_LAN:
        a.set_summary(absl::StrCat("throughput low on every pair of the LAN (",
                                   Detail(a, "pairs"), " pairs between ",
                                   Capped(hosts), ")"));
        break;
      case v1::ALERT_SCOPE_UPSTREAM:
        a.set_summary(absl::StrCat("external throughput low from every host (",
                                   Capped(hosts),
                                   "): the internet connection"));
        break;
      case v1::ALERT_SCOPE_HOST:
        a.set_summary(absl::StrCat("throughput low through ",
                                   Detail(a, "agent"),
                                   "'s link: ", Capped(pairs)));
        break;
      default:
        a.set_summary(absl::StrCat("throughput low on ", Capped(pairs)));
    }
  }
}

// How wide a scope is: a narrower alert whose hosts a wider one of the same
// kind covers is merged into it.
int Breadth(v1::AlertScope s) {
  switch (s) {
    case v1::ALERT_SCOPE_PAIR:
      return 1;
    case v1::ALERT_SCOPE_HOST:
      return 2;
    case v1::ALERT_SCOPE_LAN:
    case v1::ALERT_SCOPE_UPSTREAM:
      return 3;
    default:
      return 0;
  }
}

}  // namespace

void DescribeAlert(v1::Alert& a) { DescribeImpl(a); }

AlertBook::AlertBook(AlertStore& store, Clock& clock, uint32_t max_evidence)
    : store_(store), clock_(clock), max_evidence_(max_evidence) {}

void AlertBook::Load(const std::vector<v1::Alert>& unresolved) {
  for (const v1::Alert& a : unresolved) open_[{a.kind(), a.subject()}] = a;
}

void AlertBook::AddListener(Listener listener) {
  listeners_.push_back(std::move(listener));
}

const v1::Alert* AlertBook::Find(const AlertKey& key) const {
  auto it = open_.find(key);
  return it == open_.end() ? nullptr : &it->second;
}

std::vector<v1::Alert> AlertBook::OpenById() const {
  std::vector<v1::Alert> out;
  for (const auto& [k, a] : open_) out.push_back(a);
  std::sort(out.begin(), out.end(), [](const v1::Alert& a, const v1::Alert& b) {
    return a.id() < b.id();
  });
  return out;
}

void AlertBook::Save(v1::Alert& alert) {
  if (alert.id() == 0 && !ids_.empty()) {
    alert.set_id(ids_.front());
    ids_.pop_front();
  }
  if (alert.id() != 0) {
    writes_.push_back({false, alert, {}});
    return;
  }
  // No reserved id left (the store was down, or a burst of new alerts):
  // inserted now, to have an id for its events.
  ++counters_.sync_saves;
  absl::StatusOr<int64_t> id = store_.SaveAlert(alert);
  if (!id.ok()) {
    ++counters_.store_errors;
    spdlog::error("event=alert_save_failed kind={} subject={} error={}",
                  LogValue(alert.kind()), LogValue(alert.subject()),
                  LogValue(id.status().ToString()));
    return;
  }
  alert.set_id(*id);
}

void AlertBook::Emit(v1::AlertEvent::Type type, const v1::Alert& alert) {
  v1::AlertEvent e;
  e.set_type(type);
  *e.mutable_alert() = alert;
  *e.mutable_at() = Ts(clock_.Now());
  ++counters_.events;
  writes_.push_back({true, {}, e});
  // Subjects and hosts carry agents' text: LogValue keeps each in its field.
  spdlog::info(
      "event=alert_{} id={} kind={} scope={} hosts={} subject={}",
      absl::AsciiStrToLower(v1::AlertEvent::Type_Name(type).substr(5)),
      alert.id(), LogValue(alert.kind()), v1::AlertScope_Name(alert.scope()),
      LogValue(absl::StrJoin(alert.hosts(), ",")), LogValue(alert.subject()));
  for (const auto& l : listeners_) l(e);
}

std::vector<AlertBook::Write> AlertBook::TakeWrites() {
  std::vector<Write> out;
  out.swap(writes_);
  return out;
}

uint64_t AlertBook::WriteAll(AlertStore& store,
                             const std::vector<Write>& writes) {
  uint64_t failed = 0;
  for (const Write& w : writes) {
    if (w.is_event) {
      if (absl::Status s = store.AppendEvent(w.event); !s.ok()) {
        ++failed;
        spdlog::error("event=alert_event_save_failed id={} error={}",
                      w.event.alert().id(), LogValue(s.ToString()));
      }
    } else if (absl::StatusOr<int64_t> id = store.SaveAlert(w.alert);
               !id.ok()) {
      ++failed;
      spdlog::error("event=alert_save_failed id={} kind={} subject={} error={}",
                    w.alert.id(), LogValue(w.alert.kind()),
                    LogValue(w.alert.subject()),
                    LogValue(id.status().ToString()));
    }
  }
  return failed;
}

void AlertBook::AddIds(const std::vector<int64_t>& ids) {
  ids_.insert(ids_.end(), ids.begin(), ids.end());
}

void AlertBook::Raise(const Condition& c) {
  const absl::Time now = clock_.Now();
  AlertKey key{c.kind, c.subject};
  auto it = open_.find(key);
  if (it == open_.end()) {
    v1::Alert a;
    a.set_kind(c.kind);
    a.set_subject(c.subject);
    a.set_severity(c.severity);
    a.set_scope(c.scope);
    for (const auto& h : c.hosts) a.add_hosts(h);
    a.set_summary(c.summary);
    a.set_remote_address(c.remote_address);
    for (const auto& e : c.evidence) *a.add_evidence() = e;
    *a.mutable_first_seen() =
        Ts(c.first_seen == absl::InfinitePast() ? now : c.first_seen);
    *a.mutable_last_seen() = Ts(now);
    for (const auto& [k, v] : c.details) (*a.mutable_details())[k] = v;
    DescribeAlert(a);
    Save(a);
    open_[key] = a;
    Emit(v1::AlertEvent::TYPE_OPENED, a);
    return;
  }
  v1::Alert& a = it->second;
  // Hosts accumulate while the alert is open: it says who saw it, and a
  // host recovering first is not news.
  std::set<std::string> hosts(a.hosts().begin(), a.hosts().end());
  const size_t before = hosts.size();
  hosts.insert(c.hosts.begin(), c.hosts.end());
  const bool hosts_changed = hosts.size() != before;
  const bool material = hosts_changed || a.scope() != c.scope ||
                        c.severity > a.severity() ||
                        a.remote_address() != c.remote_address;
  a.set_scope(c.scope);
  a.set_severity(std::max(a.severity(), c.severity));
  a.clear_hosts();
  for (const auto& h : hosts) a.add_hosts(h);
  a.set_summary(c.summary);
  a.set_remote_address(c.remote_address);
  *a.mutable_last_seen() = Ts(now);
  for (const auto& e : c.evidence) {
    bool dup = false;
    for (int i = 0; i < a.evidence_size() && !dup; ++i) {
      const v1::Evidence& old = a.evidence(i);
      if (old.agent() != e.agent()) continue;
      if (old.seq() == e.seq()) {
        dup = true;
      } else if (old.note() == e.note()) {
        // The same observation from the same host again: one entry, the
        // newest (a listener seen in every snapshot is listed once).
        a.mutable_evidence()->DeleteSubrange(i, 1);
        break;
      }
    }
    if (!dup) *a.add_evidence() = e;
  }
  while (a.evidence_size() > static_cast<int>(max_evidence_)) {
    a.mutable_evidence()->DeleteSubrange(0, 1);
  }
  for (const auto& [k, v] : c.details) (*a.mutable_details())[k] = v;
  DescribeAlert(a);
  Save(a);
  // An acknowledged alert stays quiet, except that a new host is news.
  if (material && (!a.acknowledged() || hosts_changed)) {
    Emit(v1::AlertEvent::TYPE_UPDATED, a);
  }
}

bool AlertBook::Resolve(const AlertKey& key) {
  auto it = open_.find(key);
  if (it == open_.end()) return false;
  v1::Alert a = it->second;
  open_.erase(it);
  *a.mutable_resolved_at() = Ts(clock_.Now());
  DescribeAlert(a);
  Save(a);
  Emit(v1::AlertEvent::TYPE_RESOLVED, a);
  return true;
}

void AlertBook::Merge(const AlertKey& key, const std::string& into) {
  auto it = open_.find(key);
  if (it == open_.end()) return;
  v1::Alert a = it->second;
  open_.erase(it);
  *a.mutable_resolved_at() = Ts(clock_.Now());
  a.set_merged_into(into);
  DescribeAlert(a);
  Save(a);
  Emit(v1::AlertEvent::TYPE_MERGED, a);
}

void AlertBook::Reconcile(const std::string& kind,
                          const std::map<std::string, Condition>& conds,
                          const std::set<std::string>& held) {
  for (const auto& [subject, c] : conds) Raise(c);
  std::vector<std::pair<AlertKey, std::string>> gone;  // key, merged into
  for (const auto& [key, a] : open_) {
    if (key.first != kind || conds.count(key.second) != 0 ||
        held.count(key.second) != 0) {
      continue;
    }
    // A wider condition that shares a host explains this one: its fault
    // goes on there, so it is merged, never "resolved".
    std::string into;
    for (const auto& [subject, c] : conds) {
      if (Breadth(c.scope) <= Breadth(a.scope())) continue;
      for (const auto& h : a.hosts()) {
        if (c.hosts.count(h) != 0) into = subject;
      }
      if (!into.empty()) break;
    }
    gone.emplace_back(key, into);
  }
  for (const auto& [key, into] : gone) {
    if (into.empty()) {
      Resolve(key);
    } else {
      Merge(key, into);
    }
  }
}

absl::StatusOr<v1::Alert> AlertBook::Acknowledge(int64_t id,
                                                 const std::string& by,
                                                 bool* newly) {
  *newly = false;
  v1::Alert* open = nullptr;
  for (auto& [key, a] : open_) {
    if (a.id() == id) open = &a;
  }
  v1::Alert stored;
  if (open == nullptr) {
    // A closed alert: its newest state is a queued write, if any, else the
    // store's (the caller has written what it took from the queue).
    for (auto w = writes_.rbegin(); w != writes_.rend(); ++w) {
      if (!w->is_event && w->alert.id() == id) {
        stored = w->alert;
        open = &stored;
        break;
      }
    }
  }
  if (open == nullptr) {
    absl::StatusOr<v1::Alert> a = store_.GetAlert(id);
    if (!a.ok()) return a.status();
    stored = *a;
    open = &stored;
  }
  v1::Alert& a = *open;
  if (a.acknowledged()) return a;
  a.set_acknowledged(true);
  *a.mutable_acknowledged_at() = Ts(clock_.Now());
  a.set_acknowledged_by(by);
  Save(a);
  Emit(v1::AlertEvent::TYPE_ACKNOWLEDGED, a);
  *newly = true;
  return a;
}

}  // namespace netvigil::collector
