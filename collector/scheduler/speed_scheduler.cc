#include "collector/scheduler/speed_scheduler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/human_units.h"
#include "common/proto_time.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// iperf3's "the server is busy running a test", classified by the agent as
// "server busy: ...". Matched loosely so a stock agent's wording also counts.
bool IsServerBusy(const v1::SpeedResult& r) {
  return r.outcome() == v1::SPEED_OUTCOME_FAILED &&
         absl::StrContains(absl::AsciiStrToLower(r.error()), "busy");
}

}  // namespace

SpeedScheduler::SpeedScheduler(SpeedSchedulerOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  absl::MutexLock l(&mu_);
  for (const v1::ExternalSpeedTarget& t : options_.external_targets) {
    Host& h = hosts_[HostIndex(t.name(), /*external=*/true)];
    h.address = t.address();
    h.port = t.port() != 0 ? t.port() : 5201;
    h.online = true;
  }
}

absl::Duration SpeedScheduler::slot() const {
  return options_.slot > absl::ZeroDuration()
             ? options_.slot
             : options_.test_duration + options_.slot_overhead;
}

absl::Duration SpeedScheduler::result_timeout() const {
  return options_.result_timeout > absl::ZeroDuration()
             ? options_.result_timeout
             : slot() + absl::Seconds(60);
}

int SpeedScheduler::HostIndex(const std::string& name, bool external) {
  // Agents and external targets live in one table: an external target is a
  // host too, and a public iperf3 server also serves one test at a time.
  const std::string key = absl::StrCat(external ? "x:" : "a:", name);
  auto [it, inserted] =
      host_index_.try_emplace(key, static_cast<int>(hosts_.size()));
  if (inserted) {
    Host h;
    h.name = name;
    h.external = external;
    hosts_.push_back(std::move(h));
  }
  return it->second;
}

int SpeedScheduler::Reason(std::string text) {
  // Reasons repeat for thousands of skips; keep each text once.
  for (size_t i = skip_reasons_.size(); i-- > 0;) {
    if (skip_reasons_[i] == text) return static_cast<int>(i);
    if (skip_reasons_.size() - i > 8) break;
  }
  skip_reasons_.push_back(std::move(text));
  return static_cast<int>(skip_reasons_.size() - 1);
}

std::string SpeedScheduler::ScheduleId(int entry, int attempt) const {
  return absl::StrCat("speed-", absl::ToUnixSeconds(period_start_), "-", entry,
                      attempt > 1 ? "-r" : "");
}

std::vector<int> SpeedScheduler::OnlineAgents() const {
  std::vector<int> out;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!hosts_[i].external && hosts_[i].online)
      out.push_back(static_cast<int>(i));
  }
  std::sort(out.begin(), out.end(),
            [&](int a, int b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              return hosts_[a].name < hosts_[b].name;
            });
  return out;
}

void SpeedScheduler::SetAgents(const std::vector<v1::AgentInfo>& agents) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_.Now();
  std::vector<bool> was_online(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) was_online[i] = hosts_[i].online;
  std::vector<bool> listed(hosts_.size() + agents.size(), false);
  for (const v1::AgentInfo& a : agents) {
    if (a.name().empty()) continue;
    const int i = HostIndex(a.name(), /*external=*/false);
    Host& h = hosts_[i];
    h.address = a.addresses_size() > 0 ? a.addresses(0) : "";
    h.port = options_.port;
    h.online = a.online() && !h.address.empty();
    listed[i] = true;
  }
  // An agent no longer listed is as good as offline.
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!hosts_[i].external && !listed[i]) hosts_[i].online = false;
  }
  was_online.resize(hosts_.size(), false);
  if (period_ == 0) return;  // the first Tick plans with what is known then

  // Leavers: their pending tests are skipped, and forgotten as covered so
  // that a return within the period brings them back.
  for (auto it = pending_.begin(); it != pending_.end();) {
    Entry& e = entries_[it->second];
    const int gone = !hosts_[e.client].online   ? e.client
                     : !hosts_[e.server].online ? e.server
                                                : -1;
    if (gone < 0) {
      ++it;
      continue;
    }
    // Recorded at the period's end if it does not run after all.
    e.state = State::kSkipped;
    covered_.erase(PairKey(e.client, e.server));
    MarkAbsent(e.client, e.server, gone);
    it = pending_.erase(it);
  }

  // Joiners: their missing pairs are added and the rest of the period is
  // re-spread so the new tests fit in evenly, not at the end.
  std::vector<int> joined;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!hosts_[i].external && hosts_[i].online && !was_online[i]) {
      joined.push_back(static_cast<int>(i));
    }
  }
  if (joined.empty()) return;
  std::vector<int> tests;
  tests.reserve(pending_.size());
  for (const auto& [t, idx] : pending_) tests.push_back(idx);
  pending_.clear();
  const std::vector<int> online = OnlineAgents();
  auto add = [&](int c, int s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (c == s || covered_.contains(PairKey(c, s))) return;
    tests.push_back(AddEntry(c, s, 1, now));
  };
  for (int j : joined) {
    for (int o : online) {
      add(j, o);
      add(o, j);
    }
    for (size_t x = 0; x < hosts_.size(); ++x) {
      if (hosts_[x].external) add(j, static_cast<int>(x));
    }
  }
  spdlog::info("speed_scheduler_agents_joined period={} joined={} pending={}",
               period_, joined.size(), tests.size());
  // Tests running now hold their hosts for up to a slot more.
  Spread(std::move(tests), running_.empty() ? now : now + slot(), now);
}

void SpeedScheduler::MarkAbsent(int client, int server, int gone) {
  absent_[PairKey(client, server)] = gone;
}

bool SpeedScheduler::AnyAgentOffline() const {
  for (const Host& h : hosts_) {
    if (!h.external && !h.online) return true;
  }
  return false;
}

int SpeedScheduler::AddEntry(int client, int server, int attempt,
                             absl::Time not_before) {
  Entry e;
  e.client = client;
  e.server = server;
  e.attempt = attempt;
  e.not_before = not_before;
  entries_.push_back(e);
  covered_.insert(PairKey(client, server));
  ++stats_.planned;
  return static_cast<int>(entries_.size() - 1);
}

void SpeedScheduler::SkipEntry(int entry, int reason, absl::Time now) {
  Entry& e = entries_[entry];
  e.state = State::kSkipped;
  skips_.push_back(
      Skip{e.client, e.server, reason, ScheduleId(entry, e.attempt), now});
  ++stats_.skipped;
}

std::vector<std::pair<int, int>> SpeedScheduler::MeshOrder(
    const std::vector<int>& agents) const {
  std::vector<std::pair<int, int>> order;
  const int n = static_cast<int>(agents.size());
  std::vector<int> externals;
  for (size_t x = 0; x < hosts_.size(); ++x) {
    if (hosts_[x].external) externals.push_back(static_cast<int>(x));
  }
  order.reserve(static_cast<size_t>(n) * (n - 1 + externals.size()));
  if (n >= 2) {
    // The circle method: m-1 rounds in which every agent meets one other,
    // each round run once in each direction. Neighbours in the list share no
    // host, so concurrent rounds pack well and a delay does not cascade.
    const int m = n % 2 == 0 ? n : n + 1;  // n odd: one agent sits out a round
    std::vector<int> circle(m);
    for (int r = 0; r < m - 1; ++r) {
      circle[0] = 0;
      for (int j = 1; j < m; ++j) circle[j] = 1 + (j - 1 + r) % (m - 1);
      for (int dir = 0; dir < 2; ++dir) {
        for (int i = 0; i < m / 2; ++i) {
          int a = circle[i], b = circle[m - 1 - i];
          if (a >= n || b >= n) continue;
          if (((r + i) % 2 == 0) == (dir == 1)) std::swap(a, b);
          order.emplace_back(agents[a], agents[b]);
        }
      }
    }
  }
  // Agents to external targets, in groups where no agent and no target
  // appears twice.
  const int e = static_cast<int>(externals.size());
  for (int g = 0; g < n && e > 0; ++g) {
    for (int x = 0; x < e; ++x)
      order.emplace_back(agents[(g + x) % n], externals[x]);
  }
  // Rotation: each period starts at a different place in the list, stepping
  // by the golden ratio so a pair's time within the period wanders evenly.
  if (order.size() > 1) {
    const uint64_t size = order.size();
    uint64_t stride = static_cast<uint64_t>(
        std::floor(static_cast<double>(size) * 0.6180339887));
    if (stride == 0 || stride % size == 0) stride = 1;
    const uint64_t offset = (static_cast<uint64_t>(period_) * stride) % size;
    std::rotate(order.begin(),
                order.begin() + static_cast<std::ptrdiff_t>(offset),
                order.end());
  }
  return order;
}

void SpeedScheduler::Spread(std::vector<int> tests, absl::Time from,
                            absl::Time now) {
  const size_t k = std::max<uint32_t>(1, options_.max_concurrent);
  const size_t count = tests.size();
  // round_of[i]: the round of tests[i], in host-disjoint rounds of <= k.
  std::vector<int> round_of(count, 0);
  int rounds = 0;
  if (k == 1) {
    for (size_t i = 0; i < count; ++i) round_of[i] = static_cast<int>(i);
    rounds = static_cast<int>(count);
  } else {
    // Greedy first fit over a linked list of the tests not yet placed.
    std::vector<int> next(count + 1);
    for (size_t i = 0; i < count; ++i) next[i] = static_cast<int>(i + 1);
    const int end = static_cast<int>(count);
    int head = count > 0 ? 0 : end;
    std::vector<int> stamp(hosts_.size(), -1);
    while (head != end) {
      size_t picked = 0;
      int prev = -1;
      for (int cur = head; cur != end && picked < k;) {
        const Entry& e = entries_[tests[cur]];
        const int nxt = next[cur];
        if (stamp[e.client] != rounds && stamp[e.server] != rounds) {
          stamp[e.client] = stamp[e.server] = rounds;
          round_of[cur] = rounds;
          ++picked;
          if (prev < 0) {
            head = nxt;
          } else {
            next[prev] = nxt;
          }
        } else {
          prev = cur;
        }
        cur = nxt;
      }
      ++rounds;
    }
  }

  const absl::Duration available =
      from < period_end_ ? period_end_ - from : absl::ZeroDuration();
  absl::Duration rem;  // Debian's Abseil writes the remainder unconditionally
  const int capacity = static_cast<int>(
      std::min<int64_t>(absl::IDivDuration(available, slot(), &rem), 1 << 30));
  const int used = std::min(rounds, capacity);
  stats_.rounds = used;
  stats_.capacity = capacity;
  if (rounds > capacity) {
    const int over = static_cast<int>(
        std::count_if(round_of.begin(), round_of.end(),
                      [capacity](int r) { return r >= capacity; }));
    std::string notice = absl::StrCat(
        "speed mesh does not fit its period: ", count, " tests need ", rounds,
        " slots of ", HumanDuration(slot()), " (max ", k, " at once), the ",
        HumanDuration(available), " left of period ", period_, " has ",
        capacity, "; ", over,
        " tests skipped this period (rotation reaches them in later periods)");
    spdlog::warn(
        "speed_scheduler_mesh_does_not_fit period={} tests={} rounds={} "
        "capacity={} skipped={}",
        period_, count, rounds, capacity, over);
    notices_.push_back(std::move(notice));
    const int reason =
        Reason(absl::StrCat("mesh did not fit its period (", rounds,
                            " slots needed, ", capacity, " available)"));
    for (size_t i = 0; i < count; ++i) {
      if (round_of[i] >= capacity) SkipEntry(tests[i], reason, now);
    }
  }
  if (used == 0) return;
  const absl::Duration spacing = available / used;
  for (size_t i = 0; i < count; ++i) {
    if (round_of[i] >= capacity) continue;
    Entry& e = entries_[tests[i]];
    e.not_before = from + spacing * round_of[i];
    pending_.emplace(e.not_before, tests[i]);
  }
}

void SpeedScheduler::StartPeriod(absl::Time start, absl::Time now) {
  ++period_;
  period_start_ = start;
  period_end_ = start + options_.period;
  entries_.clear();
  pending_.clear();
  covered_.clear();
  stats_ = Stats();
  stats_.period = period_;
  stats_.period_start = period_start_;
  stats_.period_end = period_end_;

  absent_.clear();
  const std::vector<int> online = OnlineAgents();
  // Known agents that are offline: their tests are owed, and recorded as
  // skipped at the period's end unless the agent comes back in time.
  for (size_t a = 0; a < hosts_.size(); ++a) {
    if (hosts_[a].external) continue;
    for (size_t b = 0; b < hosts_.size(); ++b) {
      if (a == b) continue;
      const bool a_off = !hosts_[a].online;
      const bool b_off = !hosts_[b].online;
      if (!a_off && !b_off) continue;
      if (hosts_[b].external && !a_off) continue;
      MarkAbsent(static_cast<int>(a), static_cast<int>(b),
                 a_off ? static_cast<int>(a) : static_cast<int>(b));
    }
  }

  const std::vector<std::pair<int, int>> order = MeshOrder(online);
  std::vector<int> tests;
  tests.reserve(order.size());
  entries_.reserve(order.size());
  for (const auto& [c, s] : order) tests.push_back(AddEntry(c, s, 1, start));
  Spread(std::move(tests), start, now);
  spdlog::info(
      "speed_scheduler_period_started period={} start={} agents={} tests={} "
      "rounds={} capacity={}",
      period_, absl::FormatTime(start), online.size(), order.size(),
      stats_.rounds, stats_.capacity);
}

void SpeedScheduler::EndPeriod(absl::Time now) {
  // Pairs an offline agent kept out all period (those it came back for were
  // planned again and are covered).
  for (const auto& [key, gone] : absent_) {
    if (covered_.contains(key)) continue;
    const int a = static_cast<int>(key >> 32);
    const int b = static_cast<int>(key & 0xffffffffu);
    const Host& g = hosts_[gone];
    skips_.push_back(
        Skip{a, b,
             Reason(absl::StrCat("agent ", g.name,
                                 g.address.empty() && !g.external
                                     ? " offline or without an address"
                                     : " offline")),
             absl::StrCat("speed-", absl::ToUnixSeconds(period_start_),
                          "-offline-", a, "-", b),
             now});
    ++stats_.skipped;
  }
  absent_.clear();
  if (pending_.empty()) return;
  const int reason = Reason(
      "period ended before the test could start (earlier tests ran long)");
  const size_t cut = pending_.size();
  for (const auto& [t, idx] : pending_) SkipEntry(idx, reason, now);
  pending_.clear();
  spdlog::warn("speed_scheduler_period_cut period={} skipped={}", period_, cut);
  notices_.push_back(
      absl::StrCat("period ", period_, " ended with ", cut,
                   " tests not started; they were recorded as skipped"));
}

void SpeedScheduler::ExpireRunning(absl::Time now) {
  for (auto it = running_.begin(); it != running_.end();) {
    const Running& r = it->second;
    if (r.deadline > now) {
      ++it;
      continue;
    }
    hosts_[r.client].busy = false;
    hosts_[r.server].busy = false;
    v1::SpeedResult res;
    res.set_client(hosts_[r.client].name);
    res.set_server(hosts_[r.server].name);
    res.set_external(hosts_[r.server].external);
    res.set_server_address(hosts_[r.server].address);
    res.set_server_port(hosts_[r.server].port);
    res.set_outcome(v1::SPEED_OUTCOME_FAILED);
    res.set_error(absl::StrCat("no result from agent ", hosts_[r.client].name,
                               " within ", HumanDuration(result_timeout())));
    res.set_schedule_id(it->first);
    *res.mutable_finished_at() = ToProtoTime(now);
    recorded_.push_back(std::move(res));
    if (r.period == period_) entries_[r.entry].state = State::kDone;
    spdlog::warn(
        "speed_scheduler_result_timeout schedule_id={} client={} server={}",
        it->first, hosts_[r.client].name, hosts_[r.server].name);
    running_.erase(it++);
  }
}

std::vector<ScheduledSpeedTest> SpeedScheduler::Tick() {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_.Now();
  if (period_ == 0) {
    // After a (re)start agents are still reconnecting: a period planned now
    // would leave them out until its end.
    if (first_tick_ == absl::InfiniteFuture()) first_tick_ = now;
    if (AnyAgentOffline() && now - first_tick_ < options_.startup_grace) {
      return {};
    }
    StartPeriod(now, now);
  } else if (now >= period_end_) {
    // Notices are per period; those raised while closing the old one are
    // news in the new one.
    notices_.clear();
    EndPeriod(now);
    absl::Time start = period_end_;
    if (now >= period_end_ + options_.period) {
      notices_.push_back(absl::StrCat("speed scheduler was not ticked for ",
                                      HumanDuration(now - period_end_),
                                      "; periods restart from now"));
      start = now;
    }
    StartPeriod(start, now);
  }
  ExpireRunning(now);

  std::vector<ScheduledSpeedTest> out;
  const size_t k = std::max<uint32_t>(1, options_.max_concurrent);
  for (auto it = pending_.begin(); it != pending_.end() && it->first <= now;) {
    if (running_.size() >= k) break;
    const int idx = it->second;
    Entry& e = entries_[idx];
    Host& client = hosts_[e.client];
    Host& server = hosts_[e.server];
    if (client.busy || server.busy || !client.online || !server.online) {
      ++it;
      continue;
    }
    it = pending_.erase(it);
    e.state = State::kRunning;
    client.busy = server.busy = true;
    ScheduledSpeedTest st;
    st.client = client.name;
    v1::SpeedTest& t = st.test;
    if (server.external) {
      t.set_external_target(server.name);
    } else {
      t.set_peer_agent(server.name);
    }
    t.set_address(server.address);
    t.set_port(server.port);
    *t.mutable_duration() = ToProtoDuration(options_.test_duration);
    t.set_bitrate_bps(options_.bitrate_bps);
    t.set_schedule_id(ScheduleId(idx, e.attempt));
    running_[t.schedule_id()] = Running{
        e.client, e.server, period_, idx, e.attempt, now + result_timeout()};
    out.push_back(std::move(st));
  }
  stats_.running = static_cast<int>(running_.size());
  return out;
}

absl::Status SpeedScheduler::OnResult(const v1::SpeedResult& result) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_.Now();
  auto it = running_.find(result.schedule_id());
  if (it == running_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no running speed test with schedule_id '", result.schedule_id(), "'"));
  }
  const Running r = it->second;
  running_.erase(it);
  hosts_[r.client].busy = false;
  hosts_[r.server].busy = false;
  stats_.running = static_cast<int>(running_.size());
  if (r.period != period_) return absl::OkStatus();
  entries_[r.entry].state = State::kDone;
  ++stats_.completed;
  if (!IsServerBusy(result) || r.attempt > 1) return absl::OkStatus();
  // One retry, later in this period, when it still fits.
  absl::Time at = now + options_.busy_retry_delay;
  const absl::Time latest = period_end_ - slot();
  if (at > latest) at = latest;
  if (at < now) {
    spdlog::info(
        "speed_scheduler_busy_no_retry schedule_id={} reason=period_over",
        result.schedule_id());
    return absl::OkStatus();
  }
  const int idx = AddEntry(r.client, r.server, 2, at);
  pending_.emplace(at, idx);
  spdlog::info("speed_scheduler_busy_retry schedule_id={} retry_id={} at={}",
               result.schedule_id(), ScheduleId(idx, 2), absl::FormatTime(at));
  return absl::OkStatus();
}

std::vector<v1::SpeedResult> SpeedScheduler::TakeRecordedResults() {
  absl::MutexLock l(&mu_);
  std::vector<v1::SpeedResult> out = std::move(recorded_);
  recorded_.clear();
  out.reserve(out.size() + skips_.size());
  for (const Skip& s : skips_) {
    v1::SpeedResult res;
    const Host& c = hosts_[s.client];
    const Host& sv = hosts_[s.server];
    res.set_client(c.name);
    res.set_server(sv.name);
    res.set_external(sv.external);
    res.set_server_address(sv.address);
    res.set_server_port(sv.port);
    res.set_outcome(v1::SPEED_OUTCOME_SKIPPED);
    res.set_error(skip_reasons_[s.reason]);
    res.set_schedule_id(s.schedule_id);
    *res.mutable_started_at() = ToProtoTime(s.at);
    *res.mutable_finished_at() = ToProtoTime(s.at);
    out.push_back(std::move(res));
  }
  skips_.clear();
  skip_reasons_.clear();
  return out;
}

std::vector<std::string> SpeedScheduler::notices() const {
  absl::MutexLock l(&mu_);
  return notices_;
}

absl::Time SpeedScheduler::NextWakeup() const {
  absl::MutexLock l(&mu_);
  if (period_ == 0) {
    return first_tick_ == absl::InfiniteFuture()
               ? absl::InfiniteFuture()
               : first_tick_ + options_.startup_grace;
  }
  absl::Time t = period_end_;
  if (!pending_.empty()) t = std::min(t, pending_.begin()->first);
  for (const auto& [id, r] : running_) t = std::min(t, r.deadline);
  return t;
}

SpeedScheduler::Stats SpeedScheduler::stats() const {
  absl::MutexLock l(&mu_);
  Stats s = stats_;
  s.pending = static_cast<int>(pending_.size());
  s.running = static_cast<int>(running_.size());
  return s;
}

}  // namespace netvigil::collector
