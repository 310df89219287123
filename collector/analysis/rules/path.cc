#include "collector/analysis/rules/path.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace netvigil::collector::rules {
namespace {

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

}  // namespace

// Critical only when the loss since it began is surely at least
// path_loss_critical_percent: the lower end of the 95% Wilson interval of
// lost/sent since the onset. One run of 10 probes is a small sample: at 20%
// real loss a run loses 6 of 10 about one time in 160, and with five hosts
// every few minutes, which made an upstream alert critical at once
// (Wilson's lower end for 6 of 10 is 31%). Ten of ten is 72%: a total
// outage is critical from its first run.
bool LossIsCritical(const internal::PathBaseline& t, const AnalysisOptions& o) {
  if (t.onset_sent() == 0) return false;
  const double n = static_cast<double>(t.onset_sent());
  const double p = static_cast<double>(t.onset_lost()) / n;
  const double z = 1.96, z2 = z * z;
  const double lower =
      (p + z2 / (2 * n) - z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n))) /
      (1 + z2 / n);
  return 100.0 * lower >= o.path_loss_critical_percent;
}

namespace {

// The loss part of a run: the judgement, the window, the lossy stretch.
void UpdateLoss(internal::PathBaseline& t, const v1::PathRun& run,
                const PathContext& ctx, const AnalysisOptions& o) {
  const LossJudgement loss = JudgeLoss(run, o, t.reached_ever());
  const bool was_lossy = t.has_latest() && t.lossy();
  t.set_has_latest(true);
  t.set_at_us(Us(ctx.now));
  t.set_seq(ctx.seq);
  PushBounded(t.mutable_recent_at_us(), Us(ctx.now), o.path_loss_confirm_runs);
  if (loss.judged) {
    internal::PathBaseline::LossRun r;
    r.set_sent(loss.sent);
    r.set_lost(loss.lost);
    PushBounded(t.mutable_loss_runs(), std::move(r), o.path_loss_window_runs);
  }
  // A lossy run opens at once; so does loss that adds up over the last runs.
  // Once lossy, the target stays so until the recent runs together fall
  // below the clear threshold: with 10 probes a run at 20% loss often
  // shows 0 or 1 lost, which must not resolve and reopen the alert.
  uint64_t sent = 0, lost = 0;
  for (const auto& r : t.loss_runs()) sent += r.sent(), lost += r.lost();
  const double window_percent = sent ? 100.0 * lost / sent : 0;
  const bool window_lossy = sent >= o.path_loss_min_probes &&
                            lost >= o.path_loss_min_lost &&
                            window_percent >= o.path_loss_percent;
  // The window's loss as if it were full (a target with two runs of
  // history and two probes lost in one of them has not shown 10% loss, it
  // has shown two lost probes): what makes its loss "sustained", enough to
  // call a host's link lossy. The odd lost probe (0.3% is ordinary on
  // Wi-Fi) gives a lossy run a few times a day per target, which may stay
  // lossy a few runs; it must never alert.
  const double capacity = t.loss_runs().empty()
                              ? sent
                              : static_cast<double>(sent) / t.loss_runs_size() *
                                    o.path_loss_window_runs;
  const double full_percent =
      sent ? 100.0 * lost / std::max<double>(sent, capacity) : 0;
  if (!ctx.has_history) {
    t.set_lossy(false);
  } else if (!was_lossy) {
    t.set_lossy(loss.lossy || window_lossy);
  } else {
    t.set_lossy(loss.lossy || window_percent >= o.path_loss_clear_percent);
  }
  t.set_sustained(t.lossy() && lost >= o.path_loss_min_lost &&
                  full_percent >= o.path_loss_percent);
  t.set_loss_percent(std::max(loss.percent, window_percent));
  if (t.lossy() && !was_lossy) {
    t.set_loss_onset_us(Us(ctx.now));
    t.set_lossy_runs(0);
    t.clear_hop_votes();
    t.set_onset_sent(0);
    t.set_onset_lost(0);
  }
  if (t.lossy() && loss.judged) {
    t.set_onset_sent(t.onset_sent() + loss.sent);
    t.set_onset_lost(t.onset_lost() + loss.lost);
  }
  if (!t.lossy()) {
    t.set_onset_sent(0);
    t.set_onset_lost(0);
    t.clear_loss_hop();
    t.clear_loss_suffix();
    t.set_lossy_runs(0);
    t.clear_hop_votes();
  } else if (loss.lossy) {
    t.set_lossy_runs(t.lossy_runs() + 1);
    auto& votes = *t.mutable_hop_votes();
    for (absl::string_view a :
         absl::StrSplit(loss.suffix, ',', absl::SkipEmpty())) {
      ++votes[std::string(a)];
    }
    // The stretch most lossy runs agree on, in this run's hop order.
    std::vector<std::string> stretch;
    std::string hop;
    auto most = [&](const std::string& a) {
      auto it = votes.find(a);
      return it != votes.end() && 2 * it->second > t.lossy_runs();
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
      t.set_loss_hop(loss.hop);
      t.set_loss_suffix(stretch.empty() ? loss.suffix
                                        : absl::StrJoin(stretch, ","));
    } else {
      t.set_loss_hop(hop);
      t.set_loss_suffix(absl::StrJoin(stretch, ","));
    }
  } else if (t.loss_hop().empty()) {
    t.set_loss_hop(loss.hop);
    t.set_loss_suffix(loss.suffix);
  }
}

}  // namespace

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

// Routes differ when they have a different length (both reached the
// destination) or some TTL answered from disjoint addresses.
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

PathStep UpdatePath(const internal::PathBaseline& before,
                    const v1::PathRun& run, const PathContext& ctx,
                    const AnalysisOptions& o) {
  PathStep step;
  internal::PathBaseline& t = step.baseline;
  t = before;
  const std::string& agent = ctx.agent;
  const absl::Time now = ctx.now;
  const std::string host_target =
      absl::StrCat("host=", agent, " target=", run.target());

  // Loss: judged now, alerted by EvaluatePathLoss with the other hosts.
  UpdateLoss(t, run, ctx, o);

  if (!run.destination_reached()) return step;
  t.set_reached_ever(true);
  // Latency against the host's own rolling median and MAD.
  const v1::PathHop dest = DestinationOf(run);
  const double v = dest.avg_ms();
  if (dest.received() > 0 && v > 0) {
    const AlertKey key{kLatency, absl::StrCat(kLatency, " ", host_target)};
    bool slow = false;
    if (static_cast<uint32_t>(t.rtt_ms_size()) >= o.latency_min_runs) {
      std::vector<double> samples(t.rtt_ms().begin(), t.rtt_ms().end());
      const double med = Median(samples);
      const double mad = Mad(samples, med);
      const double limit =
          med + std::max(o.latency_mad_factor * mad, o.latency_min_increase_ms);
      slow = v > limit;
      if (slow) {
        t.set_slow_runs(t.slow_runs() + 1);
        if (t.slow_runs() >= o.latency_persist_runs || ctx.latency_open) {
          Condition c;
          c.kind = kLatency;
          c.subject = key.second;
          c.severity = v1::SEVERITY_WARNING;
          c.scope = v1::ALERT_SCOPE_HOST;
          c.hosts = {agent};
          c.summary = absl::StrFormat(
              "latency from %s to %s is %.1f ms, above its usual %.1f ms "
              "(MAD %.1f ms) for %d runs",
              agent, run.target(), v, med, mad, t.slow_runs());
          c.evidence.push_back(MakeEvidence(agent, ctx.seq, now,
                                            absl::StrFormat("avg %.1f ms", v)));
          c.details = {{"agent", agent},
                       {"target", run.target()},
                       {"median_ms", absl::StrFormat("%.3f", med)},
                       {"mad_ms", absl::StrFormat("%.3f", mad)},
                       {"last_ms", absl::StrFormat("%.3f", v)}};
          step.out.raise.push_back(std::move(c));
        }
      }
    }
    if (!slow) {
      t.set_slow_runs(0);
      PushBounded(t.mutable_rtt_ms(), v, o.latency_window_runs);
      step.out.resolve.push_back(key);
    }
  }

  // Route change.
  const std::string route = RouteOf(run);
  const AlertKey rkey{kRoute, absl::StrCat(kRoute, " ", host_target)};
  if (t.stable_route().empty()) {
    t.set_stable_route(route);
  } else if (int ttl = RouteDiff(t.stable_route(), route); ttl != 0) {
    if (ctx.learning) {
      t.set_stable_route(route);
      t.clear_candidate_route();
      t.set_candidate_runs(0);
    } else {
      if (!t.candidate_route().empty() &&
          RouteDiff(t.candidate_route(), route) == 0) {
        t.set_candidate_runs(t.candidate_runs() + 1);
      } else {
        t.set_candidate_runs(1);
      }
      t.set_candidate_route(route);
      if (t.candidate_runs() >= o.route_change_runs) {
        Condition c;
        c.kind = kRoute;
        c.subject = rkey.second;
        c.severity = v1::SEVERITY_INFO;
        c.scope = v1::ALERT_SCOPE_HOST;
        c.hosts = {agent};
        c.summary = absl::StrCat("route from ", agent, " to ", run.target(),
                                 " changed at ttl ", ttl);
        c.evidence.push_back(MakeEvidence(agent, ctx.seq, now, route));
        c.details = {{"agent", agent},
                     {"target", run.target()},
                     {"old_route", t.stable_route()},
                     {"new_route", route},
                     {"first_diverging_ttl", absl::StrCat(ttl)}};
        step.out.raise.push_back(std::move(c));
      }
    }
  } else {
    t.clear_candidate_route();
    t.set_candidate_runs(0);
    step.out.resolve.push_back(rkey);
  }
  return step;
}

CrossHostVerdict EvaluatePathLoss(const PathBaselines& paths,
                                  const std::map<AlertKey, v1::Alert>& open,
                                  absl::Time now, const AnalysisOptions& o) {
  const std::string kUpstream = absl::StrCat(kPathLoss, " upstream");
  const auto up_alert = open.find({kPathLoss, kUpstream});
  // An open upstream alert keeps its targets' losers while they recover
  // one by one.
  std::set<std::string> up_hosts, up_targets;
  if (up_alert != open.end()) {
    up_hosts.insert(up_alert->second.hosts().begin(),
                    up_alert->second.hosts().end());
    auto t = up_alert->second.details().find("targets");
    if (t != up_alert->second.details().end()) {
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
  const int64_t window_start = Us(now - o.cross_host_window);
  auto recent = [&](const internal::PathBaseline& t) {
    return t.has_latest() && t.at_us() >= window_start;
  };
  std::set<absl::string_view> lossy_targets;
  for (const auto& [agent, targets] : paths) {
    for (const auto& [target, t] : targets) {
      if (t.lossy() && recent(t)) lossy_targets.insert(target);
    }
  }
  CrossHostVerdict verdict;
  if (lossy_targets.empty()) return verdict;
  std::map<std::string, std::map<std::string, const internal::PathBaseline*>>
      by_target;
  for (const auto& [agent, targets] : paths) {
    for (const auto& [target, t] : targets) {
      if (recent(t) && lossy_targets.count(target)) {
        by_target[target][agent] = &t;
      }
    }
  }
  std::map<std::string, Condition>& conds = verdict.conds;
  std::set<std::string>& held = verdict.held;
  auto add = [&](const std::string& subject, v1::AlertScope scope,
                 const std::string& agent, const std::string& target,
                 const internal::PathBaseline& t) {
    Condition& c = conds[subject];
    c.kind = kPathLoss;
    c.subject = subject;
    c.scope = scope;
    c.hosts.insert(agent);
    if (LossIsCritical(t, o)) c.severity = v1::SEVERITY_CRITICAL;
    c.evidence.push_back(
        MakeEvidence(agent, t.seq(), TimeOf(t.at_us()),
                     absl::StrFormat("%s: %.0f%% loss from %s", target,
                                     t.loss_percent(), t.loss_hop())));
    std::string& targets = c.details["targets"];
    if (!absl::StrContains(absl::StrCat(",", targets, ","),
                           absl::StrCat(",", target, ","))) {
      targets = targets.empty() ? target : absl::StrCat(targets, ",", target);
    }
    c.details[absl::StrCat("loss_percent.", agent, ".", target)] =
        absl::StrFormat("%.1f", t.loss_percent());
    c.details[absl::StrCat("first_lossy_hop.", agent, ".", target)] =
        t.loss_hop();
  };
  std::map<std::string, std::string> shared_hop;  // target -> hop
  std::map<std::string, uint64_t> shared_runs;    // target -> its weight
  // Has `b` run confirm_runs times since `onset`?
  auto ran_since = [&](const internal::PathBaseline& b, int64_t onset) {
    size_t after = 0;
    for (int64_t at : b.recent_at_us()) after += at > onset;
    return after >= o.path_loss_confirm_runs;
  };
  const int64_t now_us = Us(now);
  const int64_t settle_us = absl::ToInt64Microseconds(o.cross_host_settle);
  for (const auto& [target, reporters] : by_target) {
    std::vector<std::string> losers;
    // Losers lossy for more than one run: one unlucky run of a healthy host
    // (two odd lost probes) must not make a host's fault look shared.
    size_t steady = 0;
    // The others are judged from the latest onset: a host that began to
    // lose just now may be the first sign of an upstream fault.
    int64_t last_onset = INT64_MIN;
    for (const auto& [agent, t] : reporters) {
      if (!t->lossy()) continue;
      losers.push_back(agent);
      last_onset = std::max(last_onset, t->loss_onset_us());
      steady += t->sustained();
    }
    if (losers.empty()) continue;
    const size_t clean = reporters.size() - losers.size();
    // The others have had their say: each non-loser ran confirm_runs times
    // since the latest onset, or the settle time is over.
    bool others_done = now_us - last_onset >= settle_us;
    if (!others_done) {
      others_done = true;
      for (const auto& [b, tb] : reporters) {
        if (!tb->lossy() && !ran_since(*tb, last_onset)) others_done = false;
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
        const internal::PathBaseline& t = *reporters.at(a);
        const std::string first(
            t.loss_suffix().substr(0, t.loss_suffix().find(',')));
        if (!first.empty())
          weight[first] += std::max<uint32_t>(1, t.lossy_runs());
      }
      std::string hop = target;
      uint64_t best = 0;
      for (const auto& [addr, w] : weight) {
        if (w > best) hop = addr, best = w;
      }
      // What the open alert said stands unless more runs say otherwise: a
      // last host still losing a little (an odd lost probe at the target)
      // as the fault clears must not rename the hop.
      if (up_alert != open.end()) {
        const auto& d = up_alert->second.details();
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
      const internal::PathBaseline& t = *reporters.at(a);
      // Wait for the other hosts' next runs (or the settle time): if they
      // lose too, this is upstream, not this host's link.
      bool confirmed = now_us - t.loss_onset_us() >= settle_us;
      if (!confirmed) {
        confirmed = true;
        for (const auto& [b, tb] : reporters) {
          if (b != a && !ran_since(*tb, t.loss_onset_us())) confirmed = false;
        }
      }
      const std::string subject = absl::StrCat(kPathLoss, " host=", a);
      // An open host alert keeps its host; a new one needs sustained loss
      // (one unlucky run is not a lossy link).
      const bool is_open = open.count({kPathLoss, subject}) > 0;
      // Alone (no other host reports the target), loss is reported at once.
      const bool alone = reporters.size() == 1;
      if ((is_open || (confirmed && (t.sustained() || alone))) &&
          !may_be_upstream) {
        add(subject, v1::ALERT_SCOPE_HOST, a, target, t);
      } else {
        held.insert(subject);
      }
    }
  }
  // The summary is written from the alert's whole state (the alert book).
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
  return verdict;
}

}  // namespace netvigil::collector::rules
