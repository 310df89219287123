#include "collector/analysis/rules/speed.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/human_units.h"

namespace netvigil::collector::rules {

std::vector<SpeedDirection> SpeedDirectionsOf(const std::string& agent,
                                              const v1::SpeedResult& r) {
  const std::string client = r.client().empty() ? agent : r.client();
  const std::string server =
      r.external() ? absl::StrCat("external:", r.server()) : r.server();
  auto rate = [](const v1::SpeedFigures& f) {
    return f.received_bps() > 0 ? f.received_bps() : f.sent_bps();
  };
  std::vector<SpeedDirection> dirs;
  auto add = [&](const std::string& sender, const std::string& receiver,
                 double bps) {
    dirs.push_back({absl::StrCat(sender, ">", receiver, r.udp() ? "/udp" : ""),
                    sender, receiver, bps > 0 ? bps : 0});
  };
  if (r.bidirectional()) {
    add(client, server, rate(r.forward()));
    add(server, client, rate(r.reverse_figures()));
  } else if (r.reverse()) {
    add(server, client,
        r.has_reverse_figures() ? rate(r.reverse_figures())
                                : rate(r.forward()));
  } else {
    add(client, server, rate(r.forward()));
  }
  return dirs;
}

internal::SpeedBaseline UpdateSpeedPair(const internal::SpeedBaseline& before,
                                        const SpeedDirection& d,
                                        const std::string& agent, uint64_t seq,
                                        bool external, absl::Time now,
                                        const AnalysisOptions& o) {
  internal::SpeedBaseline p = before;
  p.set_agent(agent);
  p.set_sender(d.sender);
  p.set_receiver(d.receiver);
  p.set_external(external);
  const bool was = p.has_latest() && p.degraded();
  bool low = false;
  if (static_cast<uint32_t>(p.bps_size()) >= o.speed_min_runs) {
    p.set_baseline_bps(
        Median(std::vector<double>(p.bps().begin(), p.bps().end())));
    low = d.bps < p.baseline_bps() * o.speed_drop_ratio;
  }
  PushBounded(p.mutable_recent_at_us(), Us(now), o.speed_persist_runs);
  if (low) {
    if (p.low_runs() == 0) p.set_low_since_us(Us(now));
    p.set_low_runs(p.low_runs() + 1);
  } else {
    p.set_low_runs(0);
    PushBounded(p.mutable_bps(), d.bps, o.speed_window_runs);
  }
  p.set_degraded(p.low_runs() >= o.speed_persist_runs);
  if (p.degraded() && !was) p.set_onset_us(Us(now));
  p.set_has_latest(true);
  p.set_at_us(Us(now));
  p.set_seq(seq);
  p.set_last_bps(d.bps);
  return p;
}

CrossHostVerdict EvaluateSpeed(const SpeedBaselines& speeds,
                               const std::map<AlertKey, v1::Alert>& open,
                               absl::Time now, const AnalysisOptions& o) {
  using Pair = internal::SpeedBaseline;
  const int64_t now_us = Us(now);
  const int64_t settle_us = absl::ToInt64Microseconds(o.speed_settle);
  std::vector<const Pair*> lan, ext;
  for (const auto& [key, p] : speeds) {
    if (!p.has_latest() || p.at_us() < Us(now - o.speed_window)) continue;
    (p.external() ? ext : lan).push_back(&p);
  }
  CrossHostVerdict verdict;
  std::map<std::string, Condition>& conds = verdict.conds;
  std::set<std::string>& held = verdict.held;
  auto add = [&](const std::string& subject, v1::AlertScope scope,
                 const Pair& p, const std::string& host) {
    Condition& c = conds[subject];
    c.kind = kSpeed;
    c.subject = subject;
    c.scope = scope;
    c.severity = v1::SEVERITY_WARNING;
    if (!host.empty()) {
      c.hosts.insert(host);
    } else {
      if (!p.external()) c.hosts.insert(p.sender());
      c.hosts.insert(p.external() ? p.agent() : p.receiver());
    }
    // An alert keeps max_evidence entries: the LAN's 870 pairs of a home of
    // 30 need not be written out at every result.
    if (c.evidence.size() < o.max_evidence) {
      c.evidence.push_back(
          MakeEvidence(p.agent(), p.seq(), TimeOf(p.at_us()),
                       absl::StrCat(p.sender(), ">", p.receiver(), " ",
                                    HumanBitrate3(p.last_bps()), ", usual ",
                                    HumanBitrate3(p.baseline_bps()))));
    }
    if (scope == v1::ALERT_SCOPE_LAN) {
      // Every pair of the LAN (870 in a home of 30): counted, not listed.
      c.details["pairs"] = absl::StrCat(lan.size());
      return;
    }
    c.details[absl::StrCat("pair.", p.sender(), ">", p.receiver())] =
        absl::StrFormat("%.3g of %.3g bit/s", p.last_bps(), p.baseline_bps());
  };
  // Has `q` been measured speed_persist_runs times since `since` (so the
  // fault, which began no later, would have made it degraded)?
  auto ran_since = [&](const Pair& q, int64_t since) {
    size_t after = 0;
    for (int64_t at : q.recent_at_us()) after += at > since;
    return after >= o.speed_persist_runs;
  };
  // Has every recent LAN pair matching `other` had its say since `since`,
  // and said "fine"? One of them degraded too means a wider cause (the LAN,
  // a host's link) may be showing: wait for its rule rather than open a
  // narrower alert. After speed_settle, decide with what there is.
  auto settled = [&](int64_t since,
                     const std::function<bool(const Pair&)>& other) {
    if (now_us - since >= settle_us) return true;
    for (const Pair* q : lan) {
      if (other(*q) && (q->degraded() || !ran_since(*q, since))) return false;
    }
    return true;
  };

  // An open LAN or host alert keeps its degraded pairs while they recover
  // one by one, rather than splitting into pair alerts on the way out.
  const bool lan_open = open.count({kSpeed, absl::StrCat(kSpeed, " lan")}) > 0;
  const bool isp_open = open.count({kSpeed, absl::StrCat(kSpeed, " isp")}) > 0;
  std::set<std::string> host_open;
  for (const auto& [key, a] : open) {
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
  std::map<std::string, int64_t> ext_onset;
  for (const Pair* p : ext) {
    auto& [total, bad] = ext_hosts[p->agent()];
    ++total;
    bad += p->degraded();
    if (p->degraded()) {
      auto [it, fresh] = ext_onset.emplace(p->agent(), p->low_since_us());
      if (!fresh) it->second = std::min(it->second, p->low_since_us());
    }
  }
  std::set<std::string> ext_bad;
  for (const auto& [h, tb] : ext_hosts) {
    if (tb.second == tb.first) ext_bad.insert(h);
  }
  const bool isp = ext_hosts.size() >= 2 && ext_bad.size() == ext_hosts.size();
  auto ext_settled = [&](const std::string& h) {
    const int64_t since = ext_onset[h];
    if (now_us - since >= settle_us) return true;
    for (const Pair* q : ext) {
      if (q->agent() != h && (q->degraded() || !ran_since(*q, since))) {
        return false;
      }
    }
    return true;
  };
  // Hosts whose link is slow, for sure (`link_bad`) or maybe (`link_held`).
  std::set<std::string> link_bad, link_held;
  for (const Pair* p : ext) {
    if (!ext_bad.count(p->agent())) continue;
    if (isp || (isp_open && p->degraded())) {
      add(absl::StrCat(kSpeed, " isp"), v1::ALERT_SCOPE_UPSTREAM, *p,
          p->agent());
    } else if (host_open.count(p->agent()) || ext_settled(p->agent())) {
      link_bad.insert(p->agent());
      add(absl::StrCat(kSpeed, " host=", p->agent()), v1::ALERT_SCOPE_HOST, *p,
          p->agent());
    } else {
      link_held.insert(p->agent());
      held.insert(absl::StrCat(kSpeed, " host=", p->agent()));
    }
  }

  size_t degraded = 0;
  absl::flat_hash_set<absl::string_view> seen_hosts;
  for (const Pair* p : lan) {
    degraded += p->degraded();
    seen_hosts.insert(p->sender());
    seen_hosts.insert(p->receiver());
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
      int64_t since = INT64_MAX;
      for (const Pair* p : lan) since = std::min(since, p->low_since_us());
      if (now_us - since < settle_us) {
        for (const Pair* q : ext) {
          wait = wait || (!q->degraded() && !ran_since(*q, since));
        }
        for (const auto& h : lan_hosts) wait = wait || link_held.count(h);
      }
    }
    if (wait) {
      held.insert(absl::StrCat(kSpeed, " lan"));
      for (const auto& h : lan_hosts) {
        held.insert(absl::StrCat(kSpeed, " host=", h));
      }
      for (const auto& [key, a] : open) {
        if (key.first == kSpeed && a.scope() == v1::ALERT_SCOPE_PAIR) {
          held.insert(key.second);
        }
      }
    } else {
      for (const Pair* p : lan)
        add(absl::StrCat(kSpeed, " lan"), v1::ALERT_SCOPE_LAN, *p, "");
    }
  } else if (degraded > 0) {
    // Per host, in one pass over the pairs (a home of 30 has 870).
    struct Through {
      size_t out = 0, out_bad = 0, in = 0, in_bad = 0;
      int64_t onset = INT64_MAX;  // earliest low_since
    };
    absl::flat_hash_map<absl::string_view, Through> through;
    for (const Pair* p : lan) {
      // One at a time: an insertion may move the other entry.
      Through& s = through[p->sender()];
      s.out++, s.out_bad += p->degraded();
      if (p->degraded()) s.onset = std::min(s.onset, p->low_since_us());
      Through& r = through[p->receiver()];
      r.in++, r.in_bad += p->degraded();
      if (p->degraded()) r.onset = std::min(r.onset, p->low_since_us());
    }
    for (const auto& h : lan_hosts) {
      const Through& th = through[h];
      if (th.out_bad + th.in_bad == 0) continue;
      const bool all_through = (th.out >= 2 && th.out_bad == th.out) ||
                               (th.in >= 2 && th.in_bad == th.in);
      if (!all_through && h != single) continue;
      const std::string subject = absl::StrCat(kSpeed, " host=", h);
      // If pairs not through h are degrading too, this may be the LAN.
      if (h == single || link_bad.count(h) ||
          settled(th.onset, [&](const Pair& q) {
            return q.sender() != h && q.receiver() != h;
          })) {
        link_bad.insert(h);
        for (const Pair* p : lan) {
          if (p->degraded() && (p->sender() == h || p->receiver() == h)) {
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
      for (const Pair* p : lan) {
        if (p->degraded() && (p->sender() == h || p->receiver() == h)) {
          link_bad.insert(h);
          add(absl::StrCat(kSpeed, " host=", h), v1::ALERT_SCOPE_HOST, *p, h);
        }
      }
    }
    for (const Pair* p : lan) {
      if (!p->degraded()) continue;
      // Its host's alert carries it.
      if (link_bad.count(p->sender()) || link_bad.count(p->receiver())) {
        continue;
      }
      const std::string subject =
          absl::StrCat(kSpeed, " pair=", p->sender(), ">", p->receiver());
      // Wait for the other pairs of both hosts: one host's link or the LAN
      // explains it better when they degrade too; and while a host of the
      // pair may be slow, its alert (not a pair alert) is what is coming.
      if (!link_held.count(p->sender()) && !link_held.count(p->receiver()) &&
          settled(p->low_since_us(), [&](const Pair& q) {
            return &q != p &&
                   (q.sender() == p->sender() || q.receiver() == p->sender() ||
                    q.sender() == p->receiver() ||
                    q.receiver() == p->receiver());
          })) {
        add(subject, v1::ALERT_SCOPE_PAIR, *p, "");
      } else {
        held.insert(subject);
      }
    }
  }
  // The summary is written from the alert's whole state (the alert book).
  for (auto& [subject, c] : conds) {
    if (c.scope == v1::ALERT_SCOPE_HOST) c.details["agent"] = *c.hosts.begin();
  }
  return verdict;
}

}  // namespace netvigil::collector::rules
