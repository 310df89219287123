#include "collector/analysis/analyzer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/escape.h"
#include "common/human_units.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "model/facts.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

using google::protobuf::util::TimeUtil;

// What a rule found, before it becomes (or updates) an alert.
struct Analyzer::Condition {
  std::string kind;
  std::string subject;
  v1::Severity severity = v1::SEVERITY_WARNING;
  v1::AlertScope scope = v1::ALERT_SCOPE_HOST;
  std::set<std::string> hosts;
  std::string summary;
  std::string remote_address;
  std::vector<v1::Evidence> evidence;
  std::map<std::string, std::string> details;
};

namespace {

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

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

v1::Evidence MakeEvidence(const std::string& agent, uint64_t seq, absl::Time at,
                          const std::string& note) {
  v1::Evidence e;
  e.set_agent(agent);
  e.set_seq(seq);
  *e.mutable_at() = Ts(at);
  e.set_note(note);
  return e;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mad(const std::vector<double>& v, double median) {
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - median));
  return Median(dev);
}

// --- small "k=v" line encoding of baseline rows

std::string EncodeKv(const std::map<std::string, std::string>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) absl::StrAppend(&out, k, "=", v, "\n");
  return out;
}

std::map<std::string, std::string> DecodeKv(const std::string& s) {
  std::map<std::string, std::string> kv;
  for (absl::string_view line : absl::StrSplit(s, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    kv[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return kv;
}

std::string EncodeSamples(const std::deque<double>& v) {
  return absl::StrJoin(v, ",", [](std::string* out, double d) {
    absl::StrAppendFormat(out, "%.6g", d);
  });
}

std::deque<double> DecodeSamples(const std::string& s) {
  std::deque<double> out;
  for (absl::string_view p : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    double d;
    if (absl::SimpleAtod(p, &d)) out.push_back(d);
  }
  return out;
}

int64_t Int(const std::map<std::string, std::string>& kv, const char* k) {
  auto it = kv.find(k);
  int64_t v = 0;
  if (it != kv.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

std::string Str(const std::map<std::string, std::string>& kv, const char* k) {
  auto it = kv.find(k);
  return it == kv.end() ? "" : it->second;
}

double Dbl(const std::map<std::string, std::string>& kv, const char* k) {
  double v = 0;
  auto it = kv.find(k);
  if (it != kv.end()) (void)absl::SimpleAtod(it->second, &v);
  return v;
}

absl::Time TimeOf(int64_t us) { return absl::FromUnixMicros(us); }
int64_t Us(absl::Time t) { return absl::ToUnixMicros(t); }

// --- path helpers

// Hop address sets per TTL: "a|b" per hop, "*" where nothing answered,
// joined by ','.
std::string RouteOf(const v1::PathRun& run) {
  std::vector<std::string> hops;
  for (const v1::PathHop& h : run.hops()) {
    std::vector<std::string> addrs;
    for (const auto& a : h.addresses()) addrs.push_back(a.address());
    std::sort(addrs.begin(), addrs.end());
    hops.push_back(addrs.empty() ? "*" : absl::StrJoin(addrs, "|"));
  }
  return absl::StrJoin(hops, ",");
}

std::vector<std::set<std::string>> SplitRoute(const std::string& route) {
  std::vector<std::set<std::string>> out;
  for (absl::string_view h : absl::StrSplit(route, ',')) {
    std::set<std::string> s;
    if (h != "*") {
      for (absl::string_view a : absl::StrSplit(h, '|', absl::SkipEmpty())) {
        s.insert(std::string(a));
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Routes differ when they have a different length (both reached the
// destination) or some TTL answered from disjoint addresses. A TTL that did
// not answer in one of them (rate limiting) is no difference. Returns the
// first differing TTL (1-based), or 0.
int RouteDiff(const std::string& a, const std::string& b) {
  auto x = SplitRoute(a), y = SplitRoute(b);
  const size_t n = std::min(x.size(), y.size());
  for (size_t i = 0; i < n; ++i) {
    if (x[i].empty() || y[i].empty()) continue;
    bool shared = false;
    for (const auto& addr : x[i]) shared = shared || y[i].count(addr) > 0;
    if (!shared) return static_cast<int>(i + 1);
  }
  if (x.size() != y.size()) return static_cast<int>(n + 1);
  return 0;
}

// The destination's figures: the copy in `destination`, else its hop.
v1::PathHop DestinationOf(const v1::PathRun& run) {
  if (run.has_destination()) return run.destination();
  for (const auto& h : run.hops()) {
    if (h.is_destination()) return h;
  }
  return run.hops_size() > 0 ? run.hops(run.hops_size() - 1) : v1::PathHop();
}

struct LossJudgement {
  bool judged = false;  // enough probes to say
  bool lossy = false;
  uint32_t sent = 0;
  uint32_t lost = 0;
  double percent = 0;
  std::string hop;     // "10.0.0.1 (ttl 2)"
  std::string suffix;  // addresses from the first lossy hop to the end
};

LossJudgement JudgeLoss(const v1::PathRun& run, const AnalysisOptions& o,
                        bool reached_before) {
  LossJudgement j;
  uint32_t sent = 0, received = 0;
  if (run.destination_reached()) {
    const v1::PathHop dest = DestinationOf(run);
    sent = dest.sent();
    received = std::min(dest.received(), dest.sent());
    j.percent = sent ? 100.0 * (sent - received) / sent : 0;
  } else {
    // Never reached before: a target that does not answer pings is not
    // losing packets.
    if (!reached_before) return j;
    sent = run.count();
    for (const auto& h : run.hops()) sent = std::max(sent, h.sent());
    received = 0;
    j.percent = 100;
  }
  if (sent < o.path_loss_min_probes) return j;
  j.judged = true;
  j.sent = sent;
  j.lost = sent - received;
  j.lossy = sent - received >= o.path_loss_min_lost &&
            j.percent >= o.path_loss_percent;
  if (!j.lossy) return j;
  // The suffix of hops that all lose (or do not answer) down to the end:
  // loss at a middle hop followed by a clean hop is rate limiting.
  int first = run.hops_size();
  for (int i = run.hops_size() - 1; i >= 0; --i) {
    const v1::PathHop& h = run.hops(i);
    if (h.received() > 0 && h.loss_percent() < o.path_loss_percent) break;
    first = i;
  }
  std::vector<std::string> suffix;
  for (int i = first; i < run.hops_size(); ++i) {
    for (const auto& a : run.hops(i).addresses()) suffix.push_back(a.address());
  }
  if (!run.destination_reached() && !run.resolved_address().empty()) {
    suffix.push_back(run.resolved_address());
  }
  j.suffix = absl::StrJoin(suffix, ",");
  if (first < run.hops_size()) {
    const v1::PathHop& h = run.hops(first);
    j.hop = h.addresses_size() > 0
                ? absl::StrCat(h.addresses(0).address(), " (ttl ", h.ttl(), ")")
                : absl::StrCat("ttl ", h.ttl(), " (no reply)");
  } else {
    j.hop =
        run.resolved_address().empty() ? run.target() : run.resolved_address();
  }
  return j;
}

// --- socket helpers

const char* ProtoName(v1::Transport t) {
  return t == v1::TRANSPORT_UDP ? "udp" : "tcp";
}

// Alert keys of socket facts. Their spelling is the one analysis_state's
// known sets were written in, so a baseline survives an upgrade.
std::string ListenerKey(const model::SocketFact& f) {
  return absl::StrCat(ProtoName(f.proto), " ",
                      model::HostPort(f.local_address, f.local_port), " ",
                      f.owner);
}

std::string InboundKey(const model::SocketFact& f) {
  return absl::StrCat(ProtoName(f.proto), " ", f.owner, " :", f.local_port,
                      " <- ", f.remote_address);
}

}  // namespace

// A remote port's class: what a program talking out is learned by, so a
// browser or a package manager that reaches a new server every few seconds
// is "firefox on the web", not a new thing each time (README, "What is
// news"). Named services group their ports; any other port below the
// ephemeral range is its own class; ports in the ephemeral range are one
// class ("dynamic": peer-to-peer and passive transfers use them at random).
std::string Analyzer::PortClass(uint32_t port) const {
  struct Named {
    uint32_t lo, hi;
    const char* name;
  };
  static constexpr Named kNamed[] = {
      {80, 80, "web"},      {443, 443, "web"},    {8080, 8080, "web"},
      {8443, 8443, "web"},  {53, 53, "dns"},      {853, 853, "dns"},
      {123, 123, "ntp"},    {22, 22, "ssh"},      {25, 25, "mail"},
      {465, 465, "mail"},   {587, 587, "mail"},   {110, 110, "mail"},
      {995, 995, "mail"},   {143, 143, "mail"},   {993, 993, "mail"},
      {194, 194, "irc"},    {6660, 6669, "irc"},  {6697, 6697, "irc"},
      {5222, 5223, "xmpp"}, {5269, 5269, "xmpp"},
  };
  for (const Named& n : kNamed) {
    if (port >= n.lo && port <= n.hi) return n.name;
  }
  if (port >= options_.ephemeral_port_min &&
      port <= options_.ephemeral_port_max) {
    return "dynamic";
  }
  return absl::StrCat("port ", port);
}

std::string Analyzer::RemoteKeyOfStored(const std::string& key) const {
  // Before the port classes a known remote was one endpoint: "tcp exe ->
  // 1.2.3.4:443" or "tcp exe -> [v6]:443". It teaches its class, so an
  // upgraded collector does not find every known program news again.
  const size_t arrow = key.rfind(" -> ");
  if (arrow == std::string::npos) return key;
  const size_t colon = key.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon < arrow ||
      !absl::SimpleAtoi(absl::string_view(key).substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return key;  // already a class ("web", "port 4444", "dynamic")
  }
  return absl::StrCat(key.substr(0, arrow + 4), PortClass(port));
}

std::string Analyzer::RemoteKey(const model::SocketFact& f) const {
  return absl::StrCat(ProtoName(f.proto), " ", f.owner, " -> ",
                      PortClass(f.remote_port));
}

namespace {

bool HasHiddenComponent(const std::string& path) {
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (absl::StartsWith(part, ".")) return true;
  }
  return false;
}

std::string Hosts(const std::set<std::string>& h) {
  return absl::StrJoin(h, ", ");
}

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
void Describe(v1::Alert& a) {
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

Analyzer::Analyzer(AnalysisOptions options, AlertStore& store, Clock& clock)
    : options_(std::move(options)), store_(store), clock_(clock) {}

void Analyzer::AddListener(Listener listener) {
  absl::MutexLock l(&mu_);
  listeners_.push_back(std::move(listener));
}

Analyzer::Counters Analyzer::counters() {
  absl::MutexLock l(&mu_);
  return counters_;
}

std::vector<v1::Alert> Analyzer::Open() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Alert> out;
  for (const auto& [k, a] : open_) out.push_back(a);
  std::sort(out.begin(), out.end(), [](const v1::Alert& a, const v1::Alert& b) {
    return a.id() < b.id();
  });
  return out;
}

// ------------------------------------------------------------------ state

void Analyzer::PersistRow(AnalysisStateRow row) {
  if (buffering_) {
    buffered_.push_back(std::move(row));
    return;
  }
  absl::Status s = store_.PutState(row);
  if (!s.ok()) {
    ++counters_.store_errors;
    spdlog::error(
        "event=analysis_state_write_failed agent={} kind={} error=\"{}\"",
        row.agent, row.kind, s.ToString());
  }
}

void Analyzer::FlushRows() {
  buffering_ = false;
  if (buffered_.empty()) return;
  absl::Status s = store_.PutStates(buffered_);
  if (!s.ok()) {
    ++counters_.store_errors;
    spdlog::error(
        "event=analysis_state_write_failed agent={} rows={} error=\"{}\"",
        buffered_.front().agent, buffered_.size(), s.ToString());
  }
  buffered_.clear();
}

void Analyzer::PersistPath(const std::string& agent,
                           const std::string& target) {
  const PathTarget& t = paths_[agent][target];
  std::map<std::string, std::string> kv = {
      {"rtt", EncodeSamples(t.rtt)},
      {"slow_runs", absl::StrCat(t.slow_runs)},
      {"stable_route", t.stable_route},
      {"candidate_route", t.candidate_route},
      {"candidate_runs", absl::StrCat(t.candidate_runs)},
      {"reached_ever", t.reached_ever ? "1" : "0"},
      {"loss_runs", absl::StrJoin(t.loss_runs, ",",
                                  [](std::string* out,
                                     const std::pair<uint32_t, uint32_t>& r) {
                                    absl::StrAppend(out, r.first, ":",
                                                    r.second);
                                  })},
  };
  if (t.has_latest) {
    kv["at"] = absl::StrCat(Us(t.at));
    kv["seq"] = absl::StrCat(t.seq);
    kv["lossy"] = t.lossy ? "1" : "0";
    kv["loss_percent"] = absl::StrFormat("%.3f", t.loss_percent);
    kv["loss_hop"] = t.loss_hop;
    kv["loss_suffix"] = t.loss_suffix;
    kv["loss_onset"] = absl::StrCat(Us(t.loss_onset));
    kv["lossy_runs"] = absl::StrCat(t.lossy_runs);
    kv["sustained"] = t.sustained ? "1" : "0";
    kv["hop_votes"] = absl::StrJoin(
        t.hop_votes, ",",
        [](std::string* out, const std::pair<const std::string, uint32_t>& v) {
          absl::StrAppend(out, v.first, "/", v.second);
        });
    kv["recent_at"] = absl::StrJoin(
        t.recent_at, ",",
        [](std::string* out, absl::Time at) { absl::StrAppend(out, Us(at)); });
  }
  PersistRow({agent, "path", target, EncodeKv(kv)});
}

void Analyzer::PersistSpeed(const std::string& key) {
  const SpeedPair& p = speeds_[key];
  std::map<std::string, std::string> kv = {
      {"agent", p.agent},
      {"sender", p.sender},
      {"receiver", p.receiver},
      {"external", p.external ? "1" : "0"},
      {"bps", EncodeSamples(p.bps)},
      {"low_runs", absl::StrCat(p.low_runs)},
  };
  if (p.has_latest) {
    kv["at"] = absl::StrCat(Us(p.at));
    kv["seq"] = absl::StrCat(p.seq);
    kv["degraded"] = p.degraded ? "1" : "0";
    kv["onset"] = absl::StrCat(Us(p.onset));
    kv["last_bps"] = absl::StrFormat("%.6g", p.last_bps);
    kv["baseline"] = absl::StrFormat("%.6g", p.baseline);
    kv["low_since"] = absl::StrCat(Us(p.low_since));
    kv["recent_at"] = absl::StrJoin(
        p.recent_at, ",",
        [](std::string* out, absl::Time at) { absl::StrAppend(out, Us(at)); });
  }
  PersistRow({"*", "speed", key, EncodeKv(kv)});
}

void Analyzer::ApplyStateRow(const AnalysisStateRow& row) {
  if (row.kind == "agent" && row.key == "first_result") {
    int64_t us = 0;
    if (absl::SimpleAtoi(row.value, &us)) {
      agents_[row.agent].first_result = TimeOf(us);
    }
  } else if (row.kind == "seen") {
    agents_[row.agent].seen_kinds.insert(row.key);
  } else if (absl::StartsWith(row.kind, "known:")) {
    const std::string kind = row.kind.substr(6);
    agents_[row.agent].known[kind].insert(
        kind == kRemote ? RemoteKeyOfStored(row.key) : row.key);
  } else if (row.kind == "path") {
    auto kv = DecodeKv(row.value);
    PathTarget& t = paths_[row.agent][row.key];
    t.rtt = DecodeSamples(Str(kv, "rtt"));
    t.slow_runs = Int(kv, "slow_runs");
    t.stable_route = Str(kv, "stable_route");
    t.candidate_route = Str(kv, "candidate_route");
    t.candidate_runs = Int(kv, "candidate_runs");
    t.reached_ever = Int(kv, "reached_ever") != 0;
    for (absl::string_view r :
         absl::StrSplit(Str(kv, "loss_runs"), ',', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> sl =
          absl::StrSplit(r, absl::MaxSplits(':', 1));
      uint32_t sent = 0, lost = 0;
      if (absl::SimpleAtoi(sl.first, &sent) &&
          absl::SimpleAtoi(sl.second, &lost)) {
        t.loss_runs.push_back({sent, lost});
      }
    }
    if (kv.count("at")) {
      t.has_latest = true;
      t.at = TimeOf(Int(kv, "at"));
      t.seq = Int(kv, "seq");
      t.lossy = Int(kv, "lossy") != 0;
      t.loss_percent = Dbl(kv, "loss_percent");
      t.loss_hop = Str(kv, "loss_hop");
      t.loss_suffix = Str(kv, "loss_suffix");
      t.loss_onset = TimeOf(Int(kv, "loss_onset"));
      t.lossy_runs = Int(kv, "lossy_runs");
      t.sustained = Int(kv, "sustained") != 0;
      for (absl::string_view v :
           absl::StrSplit(Str(kv, "hop_votes"), ',', absl::SkipEmpty())) {
        std::pair<absl::string_view, absl::string_view> av =
            absl::StrSplit(v, absl::MaxSplits('/', 1));
        uint32_t n = 0;
        if (absl::SimpleAtoi(av.second, &n)) {
          t.hop_votes[std::string(av.first)] = n;
        }
      }
      for (absl::string_view at :
           absl::StrSplit(Str(kv, "recent_at"), ',', absl::SkipEmpty())) {
        int64_t us = 0;
        if (absl::SimpleAtoi(at, &us)) t.recent_at.push_back(TimeOf(us));
      }
    }
  } else if (row.kind == "speed") {
    auto kv = DecodeKv(row.value);
    SpeedPair& p = speeds_[row.key];
    p.agent = Str(kv, "agent");
    p.sender = Str(kv, "sender");
    p.receiver = Str(kv, "receiver");
    p.external = Int(kv, "external") != 0;
    p.bps = DecodeSamples(Str(kv, "bps"));
    p.low_runs = Int(kv, "low_runs");
    if (kv.count("at")) {
      p.has_latest = true;
      p.at = TimeOf(Int(kv, "at"));
      p.seq = Int(kv, "seq");
      p.degraded = Int(kv, "degraded") != 0;
      p.onset = TimeOf(Int(kv, "onset"));
      p.last_bps = Dbl(kv, "last_bps");
      p.baseline = Dbl(kv, "baseline");
      p.low_since = TimeOf(Int(kv, "low_since"));
      for (absl::string_view at :
           absl::StrSplit(Str(kv, "recent_at"), ',', absl::SkipEmpty())) {
        int64_t us = 0;
        if (absl::SimpleAtoi(at, &us)) p.recent_at.push_back(TimeOf(us));
      }
    }
  } else {
    spdlog::warn("event=analysis_state_unknown agent={} kind={} key={}",
                 row.agent, row.kind, row.key);
  }
}

absl::Status Analyzer::Load() {
  absl::StatusOr<std::vector<AnalysisStateRow>> rows = store_.LoadState();
  if (!rows.ok()) return rows.status();
  absl::StatusOr<std::vector<v1::Alert>> alerts = store_.UnresolvedAlerts();
  if (!alerts.ok()) return alerts.status();
  absl::MutexLock l(&mu_);
  for (const auto& row : *rows) ApplyStateRow(row);
  for (const v1::Alert& a : *alerts) {
    AlertKey key{a.kind(), a.subject()};
    open_[key] = a;
    present_[key] = std::set<std::string>(a.hosts().begin(), a.hosts().end());
  }
  spdlog::info("event=analysis_loaded state_rows={} open_alerts={}",
               rows->size(), alerts->size());
  return absl::OkStatus();
}

// ------------------------------------------------------------- lifecycle

void Analyzer::Save(v1::Alert& alert) {
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

void Analyzer::Emit(v1::AlertEvent::Type type, const v1::Alert& alert) {
  v1::AlertEvent e;
  e.set_type(type);
  *e.mutable_alert() = alert;
  *e.mutable_at() = Ts(clock_.Now());
  ++counters_.events;
  absl::Status s = store_.AppendEvent(e);
  if (!s.ok()) {
    ++counters_.store_errors;
    spdlog::error("event=alert_event_save_failed id={} error=\"{}\"",
                  alert.id(), s.ToString());
  }
  // Subjects and hosts carry agents' text: LogValue keeps each in its field.
  spdlog::info(
      "event=alert_{} id={} kind={} scope={} hosts={} subject={}",
      absl::AsciiStrToLower(v1::AlertEvent::Type_Name(type).substr(5)),
      alert.id(), LogValue(alert.kind()), v1::AlertScope_Name(alert.scope()),
      LogValue(absl::StrJoin(alert.hosts(), ",")), LogValue(alert.subject()));
  for (const auto& l : listeners_) l(e);
}

void Analyzer::Raise(const Condition& c) {
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
    *a.mutable_first_seen() = Ts(now);
    *a.mutable_last_seen() = Ts(now);
    for (const auto& [k, v] : c.details) (*a.mutable_details())[k] = v;
    Describe(a);
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
  while (a.evidence_size() > static_cast<int>(options_.max_evidence)) {
    a.mutable_evidence()->DeleteSubrange(0, 1);
  }
  for (const auto& [k, v] : c.details) (*a.mutable_details())[k] = v;
  Describe(a);
  Save(a);
  // An acknowledged alert stays quiet, except that a new host is news.
  if (material && (!a.acknowledged() || hosts_changed)) {
    Emit(v1::AlertEvent::TYPE_UPDATED, a);
  }
}

void Analyzer::Resolve(const AlertKey& key) {
  auto it = open_.find(key);
  if (it == open_.end()) return;
  v1::Alert a = it->second;
  open_.erase(it);
  present_.erase(key);
  *a.mutable_resolved_at() = Ts(clock_.Now());
  Save(a);
  Emit(v1::AlertEvent::TYPE_RESOLVED, a);
}

void Analyzer::Merge(const AlertKey& key, const std::string& into) {
  auto it = open_.find(key);
  if (it == open_.end()) return;
  v1::Alert a = it->second;
  open_.erase(it);
  present_.erase(key);
  *a.mutable_resolved_at() = Ts(clock_.Now());
  a.set_merged_into(into);
  Save(a);
  Emit(v1::AlertEvent::TYPE_MERGED, a);
}

void Analyzer::Reconcile(const std::string& kind,
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

absl::StatusOr<v1::Alert> Analyzer::Ack(int64_t id, const std::string& by) {
  absl::MutexLock l(&mu_);
  v1::Alert* open = nullptr;
  for (auto& [key, a] : open_) {
    if (a.id() == id) open = &a;
  }
  v1::Alert stored;
  if (open == nullptr) {
    absl::StatusOr<v1::Alert> a = store_.GetAlert(id);
    if (!a.ok()) return a.status();
    stored = *a;
    open = &stored;
  }
  v1::Alert& a = *open;
  if (a.acknowledged()) return a;
  const absl::Time now = clock_.Now();
  a.set_acknowledged(true);
  *a.mutable_acknowledged_at() = Ts(now);
  a.set_acknowledged_by(by);
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
    PathTarget& t = paths_[agent][target];
    t.stable_route = d.at("new_route");
    t.candidate_route.clear();
    t.candidate_runs = 0;
    PersistPath(agent, target);
  } else if (a.kind() == kLatency && paths_.count(agent) &&
             paths_[agent].count(target)) {
    // The new level becomes normal: learn it afresh.
    PathTarget& t = paths_[agent][target];
    t.rtt.clear();
    t.slow_runs = 0;
    PersistPath(agent, target);
  }
  Save(a);
  Emit(v1::AlertEvent::TYPE_ACKNOWLEDGED, a);
  // Lost results never come back: once seen, the alert is done.
  if (const AlertKey key{a.kind(), a.subject()};
      a.kind() == kResultsLost && open_.count(key) != 0) {
    Resolve(key);  // `a` lived in open_: it is gone now.
    return store_.GetAlert(id);
  }
  return a;
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
  absl::MutexLock l(&mu_);
  buffering_ = true;
  OnResultLocked(agent, result);
  FlushRows();
}

void Analyzer::OnResults(
    const std::vector<
        std::pair<std::string, std::shared_ptr<const v1::Result>>>& results) {
  absl::MutexLock l(&mu_);
  buffering_ = true;
  for (const auto& [agent, result] : results) OnResultLocked(agent, *result);
  FlushRows();
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
  absl::MutexLock l(&mu_);
  const AlertKey key{kClockSkew, absl::StrCat(kClockSkew, " host=", agent)};
  auto it = open_.find(key);
  const absl::Duration size = absl::Floor(
      absl::AbsDuration(offset) + absl::Milliseconds(500), absl::Seconds(1));
  if (size < kClockSkewAlert) {
    if (it != open_.end() && size < kClockSkewAlert / 2) Resolve(key);
    return;
  }
  const int64_t offset_s = absl::ToInt64Seconds(offset);
  if (it != open_.end()) {
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
  c.summary = absl::StrCat(
      "the clock of ", agent, " is ", absl::FormatDuration(size),
      offset > absl::ZeroDuration() ? " ahead of" : " behind",
      " the collector's; its results are dated by the collector where "
      "their times fall outside the believable window");
  c.details["offset_s"] = absl::StrCat(offset_s);
  Raise(c);
}

// --------------------------------------------------------------------- gap

// A gap is news whatever the learning period: nothing of the host's history
// says results may go missing. One open alert per host gathers its gaps
// until it is acknowledged, so an agent that sends many (or lies) cannot
// flood the alert list.
void Analyzer::OnGap(const std::string& agent, uint64_t seq,
                     const v1::Gap& gap) {
  Condition c;
  c.kind = kResultsLost;
  c.subject = absl::StrCat(kResultsLost, " host=", agent);
  c.hosts = {agent};
  absl::Time first = FromProtoTime(gap.first_produced_at());
  absl::Time last = FromProtoTime(gap.last_produced_at());
  uint64_t count = gap.count();
  uint64_t gaps = 1;
  // A spool set aside or missing cannot know how many numbers it had given
  // out: its count is the numbers it skips to stay above them, a bound.
  bool bound =
      gap.reason() == "spool_damaged" || gap.reason() == "spool_missing";
  std::set<std::string> reasons = {gap.reason()};
  if (auto it = open_.find({c.kind, c.subject}); it != open_.end()) {
    const auto& d = it->second.details();
    auto number = [&d](const char* key) -> int64_t {
      int64_t v = 0;
      auto f = d.find(key);
      return f != d.end() && absl::SimpleAtoi(f->second, &v) ? v : 0;
    };
    count += static_cast<uint64_t>(number("count"));
    gaps += static_cast<uint64_t>(number("gaps"));
    if (d.count("first_at_us") != 0 && d.count("last_at_us") != 0) {
      first = std::min(first, absl::FromUnixMicros(number("first_at_us")));
      last = std::max(last, absl::FromUnixMicros(number("last_at_us")));
    }
    bound = bound || (d.count("bound") != 0 && d.at("bound") == "yes");
    if (d.count("reasons") != 0) {
      for (absl::string_view r : absl::StrSplit(d.at("reasons"), ", ")) {
        reasons.emplace(r);
      }
    }
  }
  c.summary = absl::StrCat(
      bound ? "up to " : "", count, count == 1 ? " result" : " results",
      " lost on ", agent, " between ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S", first, absl::UTCTimeZone()),
      " and ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", last, absl::UTCTimeZone()),
      gaps > 1 ? absl::StrCat(" in ", gaps, " gaps") : "", " (",
      absl::StrJoin(reasons, ", "), ")");
  c.evidence.push_back(
      MakeEvidence(agent, seq, FromProtoTime(gap.last_produced_at()),
                   absl::StrCat(gap.count(), " lost, numbers ", gap.first_seq(),
                                "-", gap.last_seq(), " (", gap.reason(), ")")));
  c.details = {{"agent", agent},
               {"count", absl::StrCat(count)},
               {"gaps", absl::StrCat(gaps)},
               {"first_at_us", absl::StrCat(absl::ToUnixMicros(first))},
               {"last_at_us", absl::StrCat(absl::ToUnixMicros(last))},
               {"reasons", absl::StrJoin(reasons, ", ")},
               {"bound", bound ? "yes" : "no"}};
  Raise(c);
}

// -------------------------------------------------------------------- path

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
  PathTarget& t = paths_[agent][run.target()];
  if (!has_history) {
    spdlog::info(
        "event=analysis_first_result agent={} kind=path target={} "
        "note=\"no history: learnt, no alert\"",
        agent, LogValue(run.target()));
  }
  const bool learning = Learning(agent, "path") || !has_history;
  const std::string host_target =
      absl::StrCat("host=", agent, " target=", run.target());

  // Loss: judged now, alerted by EvaluatePathLoss with the other hosts.
  LossJudgement loss = JudgeLoss(run, options_, t.reached_ever);
  const bool was_lossy = t.has_latest && t.lossy;
  t.has_latest = true;
  t.at = now;
  t.seq = seq;
  t.recent_at.push_back(now);
  while (t.recent_at.size() > options_.path_loss_confirm_runs) {
    t.recent_at.pop_front();
  }
  if (loss.judged) {
    t.loss_runs.push_back({loss.sent, loss.lost});
    while (t.loss_runs.size() > options_.path_loss_window_runs) {
      t.loss_runs.pop_front();
    }
  }
  // A lossy run opens at once; so does loss that adds up over the last runs.
  // Once lossy, the target stays so until the recent runs together fall
  // below the clear threshold: with 10 probes a run at 20% loss often
  // shows 0 or 1 lost, which must not resolve and reopen the alert.
  uint64_t sent = 0, lost = 0;
  for (const auto& [s, l] : t.loss_runs) sent += s, lost += l;
  const double window_percent = sent ? 100.0 * lost / sent : 0;
  const bool window_lossy = sent >= options_.path_loss_min_probes &&
                            lost >= options_.path_loss_min_lost &&
                            window_percent >= options_.path_loss_percent;
  // The window's loss as if it were full (a target with two runs of
  // history and two probes lost in one of them has not shown 10% loss, it
  // has shown two lost probes): what makes its loss "sustained", enough to
  // call a host's link lossy. The odd lost probe (0.3% is ordinary on
  // Wi-Fi) gives a lossy run a few times a day per target, which may stay
  // lossy a few runs; it must never alert.
  const double capacity = t.loss_runs.empty()
                              ? sent
                              : static_cast<double>(sent) / t.loss_runs.size() *
                                    options_.path_loss_window_runs;
  const double full_percent =
      sent ? 100.0 * lost / std::max<double>(sent, capacity) : 0;
  if (!has_history) {
    t.lossy = false;
  } else if (!was_lossy) {
    t.lossy = loss.lossy || window_lossy;
  } else {
    t.lossy = loss.lossy || window_percent >= options_.path_loss_clear_percent;
  }
  t.sustained = t.lossy && lost >= options_.path_loss_min_lost &&
                full_percent >= options_.path_loss_percent;
  t.loss_percent = std::max(loss.percent, window_percent);
  if (t.lossy && !was_lossy) {
    t.loss_onset = now;
    t.lossy_runs = 0;
    t.hop_votes.clear();
  }
  if (!t.lossy) {
    t.loss_hop.clear();
    t.loss_suffix.clear();
    t.lossy_runs = 0;
    t.hop_votes.clear();
  } else if (loss.lossy) {
    ++t.lossy_runs;
    for (absl::string_view a :
         absl::StrSplit(loss.suffix, ',', absl::SkipEmpty())) {
      ++t.hop_votes[std::string(a)];
    }
    // The stretch most lossy runs agree on, in this run's hop order.
    std::vector<std::string> stretch;
    std::string hop;
    auto most = [&](const std::string& a) {
      auto it = t.hop_votes.find(a);
      return it != t.hop_votes.end() && 2 * it->second > t.lossy_runs;
    };
    for (const v1::PathHop& h : run.hops()) {
      for (const auto& a : h.addresses()) {
        if (!most(a.address())) continue;
        if (hop.empty())
          hop = absl::StrCat(a.address(), " (ttl ", h.ttl(), ")");
        stretch.push_back(a.address());
      }
    }
    if (!run.destination_reached() && most(run.resolved_address())) {
      if (hop.empty()) hop = run.resolved_address();
      stretch.push_back(run.resolved_address());
    }
    // A TTL that did not answer at all has no address to vote for: when
    // this run's stretch begins with one, before the agreed address, it is
    // named as this run names it ("ttl 2 (no reply)").
    const bool silent_first =
        absl::StartsWith(loss.hop, "ttl ") &&
        (stretch.empty() || !absl::StrContains(loss.suffix, stretch.front()) ||
         absl::StartsWith(loss.suffix, stretch.front()));
    if (stretch.empty() || silent_first) {
      t.loss_hop = loss.hop;
      t.loss_suffix =
          stretch.empty() ? loss.suffix : absl::StrJoin(stretch, ",");
    } else {
      t.loss_hop = hop;
      t.loss_suffix = absl::StrJoin(stretch, ",");
    }
  } else if (t.loss_hop.empty()) {
    t.loss_hop = loss.hop;
    t.loss_suffix = loss.suffix;
  }

  if (run.destination_reached()) {
    t.reached_ever = true;
    // Latency against the host's own rolling median and MAD.
    const v1::PathHop dest = DestinationOf(run);
    const double v = dest.avg_ms();
    if (dest.received() > 0 && v > 0) {
      AlertKey key{kLatency, absl::StrCat(kLatency, " ", host_target)};
      bool slow = false;
      if (t.rtt.size() >= options_.latency_min_runs) {
        std::vector<double> samples(t.rtt.begin(), t.rtt.end());
        const double med = Median(samples);
        const double mad = Mad(samples, med);
        const double limit = med + std::max(options_.latency_mad_factor * mad,
                                            options_.latency_min_increase_ms);
        slow = v > limit;
        if (slow) {
          ++t.slow_runs;
          if (t.slow_runs >= options_.latency_persist_runs ||
              open_.count(key)) {
            Condition c;
            c.kind = kLatency;
            c.subject = key.second;
            c.severity = v1::SEVERITY_WARNING;
            c.scope = v1::ALERT_SCOPE_HOST;
            c.hosts = {agent};
            c.summary = absl::StrFormat(
                "latency from %s to %s is %.1f ms, above its usual %.1f ms "
                "(MAD %.1f ms) for %d runs",
                agent, run.target(), v, med, mad, t.slow_runs);
            c.evidence.push_back(MakeEvidence(
                agent, seq, now, absl::StrFormat("avg %.1f ms", v)));
            c.details = {{"agent", agent},
                         {"target", run.target()},
                         {"median_ms", absl::StrFormat("%.3f", med)},
                         {"mad_ms", absl::StrFormat("%.3f", mad)},
                         {"last_ms", absl::StrFormat("%.3f", v)}};
            Raise(c);
          }
        }
      }
      if (!slow) {
        t.slow_runs = 0;
        t.rtt.push_back(v);
        while (t.rtt.size() > options_.latency_window_runs) t.rtt.pop_front();
        Resolve(key);
      }
    }

    // Route change.
    const std::string route = RouteOf(run);
    AlertKey rkey{kRoute, absl::StrCat(kRoute, " ", host_target)};
    if (t.stable_route.empty()) {
      t.stable_route = route;
    } else if (int ttl = RouteDiff(t.stable_route, route); ttl != 0) {
      if (learning) {
        t.stable_route = route;
        t.candidate_route.clear();
        t.candidate_runs = 0;
      } else {
        if (!t.candidate_route.empty() &&
            RouteDiff(t.candidate_route, route) == 0) {
          ++t.candidate_runs;
        } else {
          t.candidate_runs = 1;
        }
        t.candidate_route = route;
        if (t.candidate_runs >= options_.route_change_runs) {
          Condition c;
          c.kind = kRoute;
          c.subject = rkey.second;
          c.severity = v1::SEVERITY_INFO;
          c.scope = v1::ALERT_SCOPE_HOST;
          c.hosts = {agent};
          c.summary = absl::StrCat("route from ", agent, " to ", run.target(),
                                   " changed at ttl ", ttl);
          c.evidence.push_back(MakeEvidence(agent, seq, now, route));
          c.details = {{"agent", agent},
                       {"target", run.target()},
                       {"old_route", t.stable_route},
                       {"new_route", route},
                       {"first_diverging_ttl", absl::StrCat(ttl)}};
          Raise(c);
        }
      }
    } else {
      t.candidate_route.clear();
      t.candidate_runs = 0;
      Resolve(rkey);
    }
  }
  PersistPath(agent, run.target());
  EvaluatePathLoss(now);
}

void Analyzer::EvaluatePathLoss(absl::Time now) {
  const std::string kUpstream = absl::StrCat(kPathLoss, " upstream");
  // An open upstream alert keeps its targets' losers while they recover
  // one by one.
  std::set<std::string> up_hosts, up_targets;
  if (auto it = open_.find({kPathLoss, kUpstream}); it != open_.end()) {
    up_hosts.insert(it->second.hosts().begin(), it->second.hosts().end());
    auto t = it->second.details().find("targets");
    if (t != it->second.details().end()) {
      for (absl::string_view x :
           absl::StrSplit(t->second, ',', absl::SkipEmpty())) {
        up_targets.insert(std::string(x));
      }
    }
  }
  // target -> agent -> latest run state (recent only), for the targets
  // that some host loses to: the others raise nothing. This runs for every
  // path run, over every host's targets, so the first pass allocates
  // nothing.
  const absl::Time window_start = now - options_.cross_host_window;
  auto recent = [&](const PathTarget& t) {
    return t.has_latest && t.at >= window_start;
  };
  std::set<absl::string_view> lossy_targets;
  for (const auto& [agent, targets] : paths_) {
    for (const auto& [target, t] : targets) {
      if (t.lossy && recent(t)) lossy_targets.insert(target);
    }
  }
  std::map<std::string, std::map<std::string, const PathTarget*>> by_target;
  if (!lossy_targets.empty()) {
    for (const auto& [agent, targets] : paths_) {
      for (const auto& [target, t] : targets) {
        if (recent(t) && lossy_targets.count(target)) {
          by_target[target][agent] = &t;
        }
      }
    }
  }
  std::map<std::string, Condition> conds;
  std::set<std::string> held;
  auto add = [&](const std::string& subject, v1::AlertScope scope,
                 const std::string& agent, const std::string& target,
                 const PathTarget& t) {
    Condition& c = conds[subject];
    c.kind = kPathLoss;
    c.subject = subject;
    c.scope = scope;
    c.hosts.insert(agent);
    if (t.loss_percent >= options_.path_loss_critical_percent) {
      c.severity = v1::SEVERITY_CRITICAL;
    }
    c.evidence.push_back(
        MakeEvidence(agent, t.seq, t.at,
                     absl::StrFormat("%s: %.0f%% loss from %s", target,
                                     t.loss_percent, t.loss_hop)));
    std::string& targets = c.details["targets"];
    if (!absl::StrContains(absl::StrCat(",", targets, ","),
                           absl::StrCat(",", target, ","))) {
      targets = targets.empty() ? target : absl::StrCat(targets, ",", target);
    }
    c.details[absl::StrCat("loss_percent.", agent, ".", target)] =
        absl::StrFormat("%.1f", t.loss_percent);
    c.details[absl::StrCat("first_lossy_hop.", agent, ".", target)] =
        t.loss_hop;
  };
  std::map<std::string, std::string> shared_hop;  // target -> hop
  std::map<std::string, uint64_t> shared_runs;    // target -> its weight
  // Has `b` run confirm_runs times since `onset`?
  auto ran_since = [&](const PathTarget& b, absl::Time onset) {
    size_t after = 0;
    for (absl::Time at : b.recent_at) after += at > onset;
    return after >= options_.path_loss_confirm_runs;
  };
  for (const auto& [target, reporters] : by_target) {
    std::vector<std::string> losers;
    // Losers lossy for more than one run: one unlucky run of a healthy host
    // (two odd lost probes) must not make a host's fault look shared.
    size_t steady = 0;
    // The others are judged from the latest onset: a host that began to
    // lose just now may be the first sign of an upstream fault.
    absl::Time last_onset = absl::InfinitePast();
    for (const auto& [agent, t] : reporters) {
      if (!t->lossy) continue;
      losers.push_back(agent);
      last_onset = std::max(last_onset, t->loss_onset);
      steady += t->sustained;
    }
    if (losers.empty()) continue;
    const size_t clean = reporters.size() - losers.size();
    // The others have had their say: each non-loser ran confirm_runs times
    // since the latest onset, or the settle time is over.
    bool others_done = now - last_onset >= options_.cross_host_settle;
    if (!others_done) {
      others_done = true;
      for (const auto& [b, tb] : reporters) {
        if (!tb->lossy && !ran_since(*tb, last_onset)) others_done = false;
      }
    }
    // Every host losing is upstream; with two hosts, only once both have
    // lost for more than one run (one host's fault and the other's unlucky
    // run are not "every host").
    const bool every = reporters.size() >= 2 && clean == 0 &&
                       (steady >= 2 || losers.size() >= 3);
    // Most hosts losing is upstream even when one of them is lucky for a
    // few runs (20% loss over 10 probes shows no loss one run in ten).
    const bool most = steady >= 2 && losers.size() > clean && others_done;
    bool keep_up = up_targets.count(target) > 0;
    for (const auto& a : losers) keep_up = keep_up && up_hosts.count(a) > 0;
    if (every || most || keep_up) {
      // Where the losers' lossy stretches begin, weighed by how many lossy
      // runs each stretch stands on: one host that lost only once or twice
      // (a lucky run of the lossy hop among them) does not outvote the rest.
      std::map<std::string, uint64_t> weight;
      for (const auto& a : losers) {
        const PathTarget& t = *reporters.at(a);
        const std::string first(
            t.loss_suffix.substr(0, t.loss_suffix.find(',')));
        if (!first.empty())
          weight[first] += std::max<uint32_t>(1, t.lossy_runs);
      }
      std::string hop = target;
      uint64_t best = 0;
      for (const auto& [addr, w] : weight) {
        if (w > best) hop = addr, best = w;
      }
      // What the open alert said stands unless more runs say otherwise: a
      // last host still losing a little (an odd lost probe at the target)
      // as the fault clears must not rename the hop.
      if (auto it = open_.find({kPathLoss, kUpstream}); it != open_.end()) {
        const auto& d = it->second.details();
        auto h = d.find(absl::StrCat("first_shared_hop.", target));
        auto r = d.find(absl::StrCat("first_shared_hop_runs.", target));
        uint64_t runs = 0;
        if (h != d.end() && r != d.end() &&
            absl::SimpleAtoi(r->second, &runs) && runs >= best) {
          hop = h->second;
          best = runs;
        }
      }
      shared_runs[target] = best;
      shared_hop[target] = hop;
      for (const auto& a : losers) {
        add(kUpstream, v1::ALERT_SCOPE_UPSTREAM, a, target, *reporters.at(a));
      }
      continue;
    }
    // Several losers that may yet prove to be most hosts: wait.
    const bool may_be_upstream = losers.size() >= 2 && !others_done;
    for (const auto& a : losers) {
      const PathTarget& t = *reporters.at(a);
      // Wait for the other hosts' next runs (or the settle time): if they
      // lose too, this is upstream, not this host's link.
      bool confirmed = now - t.loss_onset >= options_.cross_host_settle;
      if (!confirmed) {
        confirmed = true;
        for (const auto& [b, tb] : reporters) {
          if (b != a && !ran_since(*tb, t.loss_onset)) confirmed = false;
        }
      }
      const std::string subject = absl::StrCat(kPathLoss, " host=", a);
      // An open host alert keeps its host; a new one needs sustained loss
      // (one unlucky run is not a lossy link).
      const bool open = open_.count({kPathLoss, subject}) > 0;
      // Alone (no other host reports the target), loss is reported at once.
      const bool alone = reporters.size() == 1;
      if ((open || (confirmed && (t.sustained || alone))) && !may_be_upstream) {
        add(subject, v1::ALERT_SCOPE_HOST, a, target, t);
      } else {
        held.insert(subject);
      }
    }
  }
  // The summary is written by Describe from the alert's whole state.
  for (auto& [subject, c] : conds) {
    if (c.scope == v1::ALERT_SCOPE_UPSTREAM) {
      for (const auto& [target, hop] : shared_hop) {
        c.details[absl::StrCat("first_shared_hop.", target)] = hop;
        c.details[absl::StrCat("first_shared_hop_runs.", target)] =
            absl::StrCat(shared_runs[target]);
      }
    } else {
      c.details["agent"] = *c.hosts.begin();
    }
  }
  Reconcile(kPathLoss, conds, held);
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
    auto it = open_.find(akey);
    if (it != open_.end()) {
      const v1::Alert& a = it->second;
      const bool listed = std::find(a.hosts().begin(), a.hosts().end(),
                                    agent) != a.hosts().end();
      const absl::Time first = absl::FromUnixMicros(
          TimeUtil::TimestampToMicroseconds(a.first_seen()));
      if (!listed && now - first > options_.multi_host_window) {
        // Too far apart to be one event: this host gets its own alert.
        akey.second = absl::StrCat(group, " @", agent);
      }
    }
    Condition c;
    c.kind = kind;
    c.subject = akey.second;
    c.remote_address = thing.remote_address;
    c.details = thing.details;
    c.details["key"] = key;
    c.details[absl::StrCat("key.", agent)] = key;
    c.evidence.push_back(MakeEvidence(agent, seq, now, thing.summary));
    it = open_.find(akey);
    if (it != open_.end()) {
      c.hosts.insert(it->second.hosts().begin(), it->second.hosts().end());
    }
    c.hosts.insert(agent);
    const bool several = c.hosts.size() >= 2;
    c.scope = several ? v1::ALERT_SCOPE_MULTI_HOST : v1::ALERT_SCOPE_HOST;
    c.severity = several ? multi : single;
    c.summary = several ? absl::StrCat(thing.summary, " on ", c.hosts.size(),
                                       " hosts (", Hosts(c.hosts), ")")
                        : absl::StrCat(thing.summary, " on ", agent);
    Raise(c);
    present_[akey].insert(agent);
  }
  // Resolve what has gone from every host that showed it.
  std::vector<AlertKey> gone;
  for (auto& [akey, hosts] : present_) {
    if (akey.first != kind || hosts.count(agent) == 0) continue;
    std::string key = akey.second;
    if (auto it = open_.find(akey); it != open_.end()) {
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
  // The one fact model decides what the same socket is; the rules below
  // only decide which facts are news (README, "What is news").
  model::FactOptions fo;
  fo.ephemeral_port_min = options_.ephemeral_port_min;
  fo.ephemeral_port_max = options_.ephemeral_port_max;
  const model::SocketFacts facts = model::SocketFactsOf(snap, fo);
  std::vector<std::pair<const model::SocketFact*, const model::SocketFactInfo*>>
      sources;
  sources.reserve(facts.size());
  absl::flat_hash_map<std::string, size_t> listeners, remotes, inbound;
  for (const auto& [f, info] : facts) {
    // netvigil's own traffic is never news: by the agent's word (its link,
    // its iperf3 server and clients) or by what the collector knows (the
    // other end of a speed test: an agent's or a target's iperf3 port).
    if (info.agent_own || model::IsOwnTraffic(f, own_)) continue;
    const size_t i = sources.size();
    switch (f.kind) {
      case model::SocketFactKind::kListener:
        listeners[ListenerKey(f)] = i;
        break;
      case model::SocketFactKind::kInbound:
        // A LAN peer of a listener is not news (the listener was); a peer
        // from outside the LAN is, per address.
        if (IsLan(f.remote_address)) continue;
        inbound[InboundKey(f)] = i;
        break;
      case model::SocketFactKind::kRemote:
        // Local IPC: the listener at the other end was the news.
        if (model::IsLoopbackAddress(f.remote_address)) continue;
        remotes[RemoteKey(f)] = i;
        break;
    }
    sources.emplace_back(&f, &info);
  }
  auto shown = [](const std::string& owner) {
    return owner == "?" ? std::string("unknown process") : owner;
  };
  auto base_details = [&](const model::SocketFact& f) {
    return std::map<std::string, std::string>{{"proto", ProtoName(f.proto)},
                                              {"exe", f.owner},
                                              {"fact", model::FactText(f)}};
  };
  auto make_listener = [&](size_t i) {
    const model::SocketFact& f = *sources[i].first;
    const std::string where = model::HostPort(f.local_address, f.local_port);
    // Across hosts, a listener on the host's own address is the same
    // listener whatever that address is.
    const std::string shared_where =
        model::IsWildcardAddress(f.local_address) ||
                model::IsLoopbackAddress(f.local_address)
            ? where
            : model::HostPort("<host>", f.local_port);
    Thing t{absl::StrCat(ProtoName(f.proto), " ", shared_where, " ", f.owner),
            absl::StrCat("new listener ", ProtoName(f.proto), " ", where, " (",
                         shown(f.owner), ")"),
            "", base_details(f)};
    t.details["local_address"] = f.local_address;
    t.details["local_port"] = absl::StrCat(f.local_port);
    return t;
  };
  auto make_inbound = [&](size_t i) {
    const model::SocketFact& f = *sources[i].first;
    Thing t{
        "",
        absl::StrCat("new peer ", f.remote_address,
                     " from outside the LAN connected to ", ProtoName(f.proto),
                     " port ", f.local_port, " (", shown(f.owner), ")"),
        f.remote_address, base_details(f)};
    t.details["local_port"] = absl::StrCat(f.local_port);
    t.details["remote_address"] = f.remote_address;
    return t;
  };
  const absl::flat_hash_set<std::string>& known_remotes =
      agents_[agent].known[kRemote];
  auto make_remote = [&](size_t i) {
    const model::SocketFact& f = *sources[i].first;
    const std::string endpoint =
        absl::StrCat(ProtoName(f.proto), " ",
                     model::HostPort(f.remote_address, f.remote_port));
    // Has this program talked out before (any class)?
    const std::string prefix =
        absl::StrCat(ProtoName(f.proto), " ", f.owner, " -> ");
    bool talked = false;
    for (const std::string& k : known_remotes) {
      if (absl::StartsWith(k, prefix)) {
        talked = true;
        break;
      }
    }
    const std::string cls = PortClass(f.remote_port);
    Thing t{"",
            talked ? absl::StrCat(shown(f.owner),
                                  " talks out on a port class "
                                  "it never used (",
                                  cls, "): ", endpoint)
                   : absl::StrCat("first outbound connection of ",
                                  shown(f.owner), " (", cls, "): ", endpoint),
            f.remote_address, base_details(f)};
    t.details["port_class"] = cls;
    t.details["remote_address"] = f.remote_address;
    t.details["remote_port"] = absl::StrCat(f.remote_port);
    return t;
  };
  NewThings(agent, seq, kListener, learning, listeners, make_listener,
            v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
  NewThings(agent, seq, kRemote, learning, remotes, make_remote,
            v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
  NewThings(agent, seq, kInbound, learning, inbound, make_inbound,
            v1::SEVERITY_WARNING, v1::SEVERITY_CRITICAL);
}

bool Analyzer::IsLan(const std::string& address) const {
  return model::IsPrivateAddress(address) || own_.agents.count(address) > 0;
}

// ------------------------------------------------------------------- files

void Analyzer::OnFiles(const std::string& agent, uint64_t seq,
                       const v1::FileSnapshot& snap) {
  const bool learning = Learning(agent, "files");
  // exe -> the first entry that shows it; Things only for what is news.
  absl::flat_hash_map<std::string, size_t> processes, hidden;
  uint32_t no_exe = 0;
  for (int i = 0; i < snap.entries_size(); ++i) {
    const v1::ProcessRef& p = snap.entries(i).process();
    // The fact model's owner: the exe, or "[name]" when it was unreadable,
    // as history names it. A process with neither names nothing.
    const std::string owner = model::OwnerOf(p);
    if (owner == "?") {
      ++no_exe;
      continue;
    }
    processes.emplace(owner, i);
    if (!p.exe().empty() && (p.exe_deleted() || HasHiddenComponent(p.exe()))) {
      hidden.emplace(owner, i);
    }
  }
  auto details = [&](const v1::FileEntry& e) {
    return std::map<std::string, std::string>{{"exe", e.process().exe()},
                                              {"name", e.process().name()},
                                              {"path", e.path()}};
  };
  auto make_process = [&](size_t i) {
    const v1::FileEntry& e = snap.entries(i);
    return Thing{"",
                 absl::StrCat("new process ", model::OwnerOf(e.process()),
                              " holding ", e.path()),
                 "", details(e)};
  };
  auto make_hidden = [&](size_t i) {
    const v1::FileEntry& e = snap.entries(i);
    return Thing{
        "",
        absl::StrCat(e.process().exe_deleted() ? "deleted" : "hidden",
                     " executable ", e.process().exe(), " holding ", e.path()),
        "", details(e)};
  };
  if (no_exe) {
    spdlog::debug("event=analysis_files_no_exe agent={} seq={} entries={}",
                  agent, seq, no_exe);
  }
  NewThings(agent, seq, kFileProcess, learning, processes, make_process,
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
  NewThings(agent, seq, kHiddenExe, first_files, hidden, make_hidden,
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
  const std::string client = r.client().empty() ? agent : r.client();
  const std::string server =
      r.external() ? absl::StrCat("external:", r.server()) : r.server();
  auto rate = [](const v1::SpeedFigures& f) {
    return f.received_bps() > 0 ? f.received_bps() : f.sent_bps();
  };
  std::vector<std::tuple<std::string, std::string, double>> dirs;
  if (r.bidirectional()) {
    dirs.emplace_back(client, server, rate(r.forward()));
    dirs.emplace_back(server, client, rate(r.reverse_figures()));
  } else if (r.reverse()) {
    dirs.emplace_back(server, client,
                      r.has_reverse_figures() ? rate(r.reverse_figures())
                                              : rate(r.forward()));
  } else {
    dirs.emplace_back(client, server, rate(r.forward()));
  }
  for (const auto& [sender, receiver, bps] : dirs) {
    if (!(bps > 0)) {
      ++counters_.skipped;
      spdlog::info(
          "event=analysis_skip agent={} seq={} kind=speed "
          "reason=\"no throughput figure\"",
          agent, seq);
      continue;
    }
    const std::string key =
        absl::StrCat(sender, ">", receiver, r.udp() ? "/udp" : "");
    SpeedPair& p = speeds_[key];
    p.agent = agent;
    p.sender = sender;
    p.receiver = receiver;
    p.external = r.external();
    const bool was = p.has_latest && p.degraded;
    bool low = false;
    if (p.bps.size() >= options_.speed_min_runs) {
      p.baseline = Median(std::vector<double>(p.bps.begin(), p.bps.end()));
      low = bps < p.baseline * options_.speed_drop_ratio;
    }
    p.recent_at.push_back(now);
    while (p.recent_at.size() > options_.speed_persist_runs) {
      p.recent_at.pop_front();
    }
    if (low) {
      if (p.low_runs == 0) p.low_since = now;
      ++p.low_runs;
    } else {
      p.low_runs = 0;
      p.bps.push_back(bps);
      while (p.bps.size() > options_.speed_window_runs) p.bps.pop_front();
    }
    p.degraded = p.low_runs >= options_.speed_persist_runs;
    if (p.degraded && !was) p.onset = now;
    p.has_latest = true;
    p.at = now;
    p.seq = seq;
    p.last_bps = bps;
    PersistSpeed(key);
  }
  EvaluateSpeed(now);
}

void Analyzer::EvaluateSpeed(absl::Time now) {
  std::vector<const SpeedPair*> lan, ext;
  for (const auto& [key, p] : speeds_) {
    if (!p.has_latest || p.at < now - options_.speed_window) continue;
    (p.external ? ext : lan).push_back(&p);
  }
  std::map<std::string, Condition> conds;
  std::set<std::string> held;
  auto add = [&](const std::string& subject, v1::AlertScope scope,
                 const SpeedPair& p, const std::string& host) {
    Condition& c = conds[subject];
    c.kind = kSpeed;
    c.subject = subject;
    c.scope = scope;
    c.severity = v1::SEVERITY_WARNING;
    if (!host.empty()) {
      c.hosts.insert(host);
    } else {
      if (!p.external) c.hosts.insert(p.sender);
      c.hosts.insert(p.external ? p.agent : p.receiver);
    }
    // An alert keeps max_evidence entries: the LAN's 870 pairs of a home of
    // 30 need not be written out at every result.
    if (c.evidence.size() < options_.max_evidence) {
      c.evidence.push_back(
          MakeEvidence(p.agent, p.seq, p.at,
                       absl::StrCat(p.sender, ">", p.receiver, " ",
                                    HumanBitrate3(p.last_bps), ", usual ",
                                    HumanBitrate3(p.baseline))));
    }
    if (scope == v1::ALERT_SCOPE_LAN) {
      // Every pair of the LAN (870 in a home of 30): counted, not listed.
      c.details["pairs"] = absl::StrCat(lan.size());
      return;
    }
    c.details[absl::StrCat("pair.", p.sender, ">", p.receiver)] =
        absl::StrFormat("%.3g of %.3g bit/s", p.last_bps, p.baseline);
  };
  // Has `q` been measured speed_persist_runs times since `since` (so the
  // fault, which began no later, would have made it degraded)?
  auto ran_since = [&](const SpeedPair& q, absl::Time since) {
    size_t after = 0;
    for (absl::Time at : q.recent_at) after += at > since;
    return after >= options_.speed_persist_runs;
  };
  // Has every recent LAN pair matching `other` had its say since `since`,
  // and said "fine"? One of them degraded too means a wider cause (the LAN,
  // a host's link) may be showing: wait for its rule rather than open a
  // narrower alert. After speed_settle, decide with what there is.
  auto settled = [&](absl::Time since,
                     const std::function<bool(const SpeedPair&)>& other) {
    if (now - since >= options_.speed_settle) return true;
    for (const SpeedPair* q : lan) {
      if (other(*q) && (q->degraded || !ran_since(*q, since))) return false;
    }
    return true;
  };

  // An open LAN or host alert keeps its degraded pairs while they recover
  // one by one, rather than splitting into pair alerts on the way out.
  const bool lan_open = open_.count({kSpeed, absl::StrCat(kSpeed, " lan")}) > 0;
  const bool isp_open = open_.count({kSpeed, absl::StrCat(kSpeed, " isp")}) > 0;
  std::set<std::string> host_open;
  for (const auto& [key, a] : open_) {
    if (key.first == kSpeed &&
        absl::StartsWith(key.second, "speed_low host=")) {
      host_open.insert(key.second.substr(strlen("speed_low host=")));
    }
  }

  // External targets first: a host is down when all its external pairs
  // are; every host down is the ISP. One host's external tests going down
  // waits (like a pair) for the other hosts' next external tests, or the
  // ISP's fault would open as a host alert first.
  std::map<std::string, std::pair<size_t, size_t>> ext_hosts;  // total, bad
  std::map<std::string, absl::Time> ext_onset;
  for (const SpeedPair* p : ext) {
    auto& [total, bad] = ext_hosts[p->agent];
    ++total;
    bad += p->degraded;
    if (p->degraded) {
      auto [it, fresh] = ext_onset.emplace(p->agent, p->low_since);
      if (!fresh) it->second = std::min(it->second, p->low_since);
    }
  }
  std::set<std::string> ext_bad;
  for (const auto& [h, tb] : ext_hosts) {
    if (tb.second == tb.first) ext_bad.insert(h);
  }
  const bool isp = ext_hosts.size() >= 2 && ext_bad.size() == ext_hosts.size();
  auto ext_settled = [&](const std::string& h) {
    const absl::Time since = ext_onset[h];
    if (now - since >= options_.speed_settle) return true;
    for (const SpeedPair* q : ext) {
      if (q->agent != h && (q->degraded || !ran_since(*q, since))) {
        return false;
      }
    }
    return true;
  };
  // Hosts whose link is slow, for sure (`link_bad`) or maybe (`link_held`).
  std::set<std::string> link_bad, link_held;
  for (const SpeedPair* p : ext) {
    if (!ext_bad.count(p->agent)) continue;
    if (isp || (isp_open && p->degraded)) {
      add(absl::StrCat(kSpeed, " isp"), v1::ALERT_SCOPE_UPSTREAM, *p, p->agent);
    } else if (host_open.count(p->agent) || ext_settled(p->agent)) {
      link_bad.insert(p->agent);
      add(absl::StrCat(kSpeed, " host=", p->agent), v1::ALERT_SCOPE_HOST, *p,
          p->agent);
    } else {
      link_held.insert(p->agent);
      held.insert(absl::StrCat(kSpeed, " host=", p->agent));
    }
  }

  size_t degraded = 0;
  absl::flat_hash_set<absl::string_view> seen_hosts;
  for (const SpeedPair* p : lan) {
    degraded += p->degraded;
    seen_hosts.insert(p->sender);
    seen_hosts.insert(p->receiver);
  }
  std::vector<std::string> lan_hosts(seen_hosts.begin(), seen_hosts.end());
  std::sort(lan_hosts.begin(), lan_hosts.end());
  // Two hosts: "every pair" is also "every pair through either host"; the
  // external tests tell one host's link (its own down, the other's fine)
  // from the LAN.
  std::string single;
  const bool lan_all = lan.size() >= 2 && degraded == lan.size();
  if (lan_hosts.size() == 2 && degraded > 0 && !lan_open) {
    for (const auto& h : lan_hosts) {
      if ((ext_bad.count(h) || host_open.count(h)) && ext_bad.size() <= 1) {
        single = h;
      }
    }
  }
  if (single.empty() && (lan_all || (lan_open && degraded > 0))) {
    // With two hosts, wait for their external tests before calling it the
    // LAN, unless the settle time is over.
    bool wait = false;
    if (lan_hosts.size() == 2 && !lan_open) {
      absl::Time since = absl::InfiniteFuture();
      for (const SpeedPair* p : lan) since = std::min(since, p->low_since);
      if (now - since < options_.speed_settle) {
        for (const SpeedPair* q : ext) {
          wait = wait || (!q->degraded && !ran_since(*q, since));
        }
        for (const auto& h : lan_hosts) wait = wait || link_held.count(h);
      }
    }
    if (wait) {
      held.insert(absl::StrCat(kSpeed, " lan"));
      for (const auto& h : lan_hosts) {
        held.insert(absl::StrCat(kSpeed, " host=", h));
      }
      for (const auto& [key, a] : open_) {
        if (key.first == kSpeed && a.scope() == v1::ALERT_SCOPE_PAIR) {
          held.insert(key.second);
        }
      }
    } else {
      for (const SpeedPair* p : lan)
        add(absl::StrCat(kSpeed, " lan"), v1::ALERT_SCOPE_LAN, *p, "");
    }
  } else if (degraded > 0) {
    // Per host, in one pass over the pairs (a home of 30 has 870).
    struct Through {
      size_t out = 0, out_bad = 0, in = 0, in_bad = 0;
      absl::Time onset = absl::InfiniteFuture();  // earliest low_since
    };
    absl::flat_hash_map<absl::string_view, Through> through;
    for (const SpeedPair* p : lan) {
      // One at a time: an insertion may move the other entry.
      Through& s = through[p->sender];
      s.out++, s.out_bad += p->degraded;
      if (p->degraded) s.onset = std::min(s.onset, p->low_since);
      Through& r = through[p->receiver];
      r.in++, r.in_bad += p->degraded;
      if (p->degraded) r.onset = std::min(r.onset, p->low_since);
    }
    for (const auto& h : lan_hosts) {
      const Through& th = through[h];
      if (th.out_bad + th.in_bad == 0) continue;
      const size_t out = th.out, out_bad = th.out_bad, in = th.in,
                   in_bad = th.in_bad;
      const absl::Time onset = th.onset;
      const bool all_through =
          (out >= 2 && out_bad == out) || (in >= 2 && in_bad == in);
      if (!all_through && h != single) continue;
      const std::string subject = absl::StrCat(kSpeed, " host=", h);
      // If pairs not through h are degrading too, this may be the LAN.
      if (h == single || link_bad.count(h) ||
          settled(onset, [&](const SpeedPair& q) {
            return q.sender != h && q.receiver != h;
          })) {
        link_bad.insert(h);
        for (const SpeedPair* p : lan) {
          if (p->degraded && (p->sender == h || p->receiver == h)) {
            add(subject, v1::ALERT_SCOPE_HOST, *p, h);
          }
        }
      } else {
        link_held.insert(h);
        held.insert(subject);
      }
    }
    for (const auto& h : host_open) {
      if (link_bad.count(h)) continue;
      for (const SpeedPair* p : lan) {
        if (p->degraded && (p->sender == h || p->receiver == h)) {
          link_bad.insert(h);
          add(absl::StrCat(kSpeed, " host=", h), v1::ALERT_SCOPE_HOST, *p, h);
        }
      }
    }
    for (const SpeedPair* p : lan) {
      if (!p->degraded) continue;
      // Its host's alert carries it.
      if (link_bad.count(p->sender) || link_bad.count(p->receiver)) continue;
      const std::string subject =
          absl::StrCat(kSpeed, " pair=", p->sender, ">", p->receiver);
      // Wait for the other pairs of both hosts: one host's link or the LAN
      // explains it better when they degrade too; and while a host of the
      // pair may be slow, its alert (not a pair alert) is what is coming.
      if (!link_held.count(p->sender) && !link_held.count(p->receiver) &&
          settled(p->low_since, [&](const SpeedPair& q) {
            return &q != p &&
                   (q.sender == p->sender || q.receiver == p->sender ||
                    q.sender == p->receiver || q.receiver == p->receiver);
          })) {
        add(subject, v1::ALERT_SCOPE_PAIR, *p, "");
      } else {
        held.insert(subject);
      }
    }
  }
  // The summary is written by Describe from the alert's whole state.
  for (auto& [subject, c] : conds) {
    if (c.scope == v1::ALERT_SCOPE_HOST) c.details["agent"] = *c.hosts.begin();
  }
  Reconcile(kSpeed, conds, held);
}

void Analyzer::Tick() {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_.Now();
  EvaluatePathLoss(now);
  EvaluateSpeed(now);
}

}  // namespace netvigil::collector
