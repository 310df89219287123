#include "tests/testing/fake_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace netvigil::testing {
namespace {

absl::Time StartedAt(const v1::Result& r) {
  if (r.has_path() && r.path().has_started_at()) {
    return FromProtoTime(r.path().started_at());
  }
  if (r.has_speed() && r.speed().has_started_at()) {
    return FromProtoTime(r.speed().started_at());
  }
  return FromProtoTime(r.produced_at());
}

v1::PathSummary Summary(const v1::Result& r) {
  const v1::PathRun& run = r.path();
  v1::PathSummary p;
  p.set_target(run.target());
  *p.mutable_at() = ToProtoTime(StartedAt(r));
  p.set_destination_reached(run.destination_reached());
  p.set_loss_percent(run.destination().loss_percent());
  p.set_avg_ms(run.destination().avg_ms());
  p.set_hop_count(run.hops_size());
  p.set_error(run.error());
  return p;
}

// What a history read returns: oldest first, the newest `limit` of them
// (the PostgreSQL store's ORDER BY ... DESC LIMIT, read back in order).
template <typename T, typename TimeOf>
void KeepNewest(std::vector<T>& v, uint32_t limit, TimeOf time_of) {
  std::stable_sort(v.begin(), v.end(), [&](const T& x, const T& y) {
    return time_of(x) < time_of(y);
  });
  if (v.size() > limit) v.erase(v.begin(), v.end() - limit);
}

}  // namespace

void FakeStore::FailNextCommitsUnavailable(int n) {
  absl::MutexLock l(&mu_);
  down_for_ = n;
}

void FakeStore::RefuseResult(const std::string& agent, uint64_t seq,
                             absl::Status status) {
  absl::MutexLock l(&mu_);
  refused_[{agent, seq}] = std::move(status);
}

void FakeStore::SetCommitDelay(absl::Duration d) {
  absl::MutexLock l(&mu_);
  delay_ = d;
}

void FakeStore::HoldCommits() {
  absl::MutexLock l(&mu_);
  held_ = true;
}

void FakeStore::ReleaseCommits() {
  absl::MutexLock l(&mu_);
  held_ = false;
  changed_.SignalAll();
}

bool FakeStore::AwaitHeldCommits(int n, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (waiting_in_hold_ < n) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) {
      return waiting_in_hold_ >= n;
    }
  }
  return true;
}

bool FakeStore::AwaitCommitted(const std::string& agent, uint64_t seq,
                               absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = agents_.find(agent);
    return it != agents_.end() && it->second.acked_through >= seq;
  };
  while (!done()) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) return done();
  }
  return true;
}

std::vector<v1::Result> FakeStore::Committed(const std::string& agent) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent);
  if (it == agents_.end()) return {};
  return it->second.results;
}

uint64_t FakeStore::AckedThrough(const std::string& agent) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent);
  return it == agents_.end() ? 0 : it->second.acked_through;
}

int FakeStore::commit_attempts() {
  absl::MutexLock l(&mu_);
  return attempts_;
}

int FakeStore::commits() {
  absl::MutexLock l(&mu_);
  return commits_;
}

int FakeStore::max_concurrent_commits() {
  absl::MutexLock l(&mu_);
  return max_running_;
}

size_t FakeStore::max_batch_results() {
  absl::MutexLock l(&mu_);
  return max_batch_;
}

std::vector<v1::SpeedResult> FakeStore::collector_speed_results() {
  absl::MutexLock l(&mu_);
  return collector_speed_;
}

absl::Status FakeStore::Down(bool consume) {
  if (down_for_ <= 0) return absl::OkStatus();
  if (consume) --down_for_;
  return absl::UnavailableError(
      "fake store: the database is down (connection refused)");
}

absl::StatusOr<const FakeStore::Agent*> FakeStore::Find(
    const std::string& agent) {
  if (absl::Status s = Down(false); !s.ok()) return s;
  auto it = agents_.find(agent);
  if (it == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown agent '", agent, "'"));
  }
  return &it->second;
}

absl::Status FakeStore::Ping() {
  absl::MutexLock l(&mu_);
  return Down(false);
}

absl::StatusOr<uint64_t> FakeStore::AgentConnected(
    const v1::Hello& hello, const std::string& session_id, absl::Time now) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  Agent& a = agents_[hello.agent_name()];
  if (a.info.name().empty()) {
    a.info.set_name(hello.agent_name());
    *a.info.mutable_first_seen() = ToProtoTime(now);
  }
  a.info.set_hostname(hello.hostname());
  a.info.mutable_addresses()->CopyFrom(hello.addresses());
  a.info.set_version(hello.version());
  a.info.set_boot_id(hello.boot_id());
  *a.info.mutable_connected_since() = ToProtoTime(now);
  a.session_id = session_id;
  a.last_seen = now;
  return a.acked_through;
}

absl::Status FakeStore::AgentSeen(const std::string& name,
                                  const std::string& session_id,
                                  absl::Time now) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  auto it = agents_.find(name);
  if (it != agents_.end() && it->second.session_id == session_id) {
    it->second.last_seen = now;
  }
  return absl::OkStatus();
}

absl::Status FakeStore::AgentDisconnected(const std::string& name,
                                          const std::string& session_id,
                                          absl::Time now) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  auto it = agents_.find(name);
  if (it != agents_.end() && it->second.session_id == session_id) {
    it->second.session_id.clear();
    it->second.last_seen = now;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::AgentInfo>> FakeStore::ListAgents(
    absl::Duration timeout) {
  const absl::Time now = clock_.Now();
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  std::vector<v1::AgentInfo> out;
  for (const auto& [name, a] : agents_) {
    v1::AgentInfo info = a.info;
    *info.mutable_last_seen() = ToProtoTime(a.last_seen);
    info.set_online(!a.session_id.empty() && now - a.last_seen <= timeout);
    if (!info.online()) info.clear_connected_since();
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> FakeStore::StoreBatch(
    const std::vector<IngestItem>& items) {
  absl::MutexLock l(&mu_);
  ++attempts_;
  ++running_;
  max_running_ = std::max(max_running_, running_);
  max_batch_ = std::max(max_batch_, items.size());
  struct Done {
    FakeStore* self;
    ~Done() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      --self->running_;
      self->changed_.SignalAll();
    }
  } done{this};
  if (held_) {
    ++waiting_in_hold_;
    changed_.SignalAll();
    while (held_) changed_.Wait(&mu_);
    --waiting_in_hold_;
  }
  if (delay_ > absl::ZeroDuration()) {
    // Slow, as a busy database is: other calls may run meanwhile.
    const absl::Duration d = delay_;
    mu_.Unlock();
    absl::SleepFor(d);
    mu_.Lock();
  }
  if (absl::Status s = Down(true); !s.ok()) return s;
  std::map<std::string, uint64_t> acked;
  if (items.empty()) return acked;
  for (const IngestItem& it : items) {
    if (agents_.count(it.agent) == 0) {
      return absl::NotFoundError(
          absl::StrCat("unknown agent '", it.agent, "'"));
    }
    auto r = refused_.find({it.agent, it.result->seq()});
    if (r != refused_.end()) return r->second;
  }
  // All checked: commit the batch as one transaction.
  std::set<std::pair<std::string, uint64_t>> in_batch;
  for (const IngestItem& it : items) {
    Agent& a = agents_[it.agent];
    const uint64_t seq = it.result->seq();
    const bool resend =
        seq <= a.acked_through ||
        std::any_of(a.results.begin(), a.results.end(),
                    [&](const v1::Result& c) { return c.seq() == seq; });
    if (!resend && in_batch.insert({it.agent, seq}).second) {
      a.results.push_back(*it.result);
    }
  }
  for (const IngestItem& it : items) {
    Agent& a = agents_[it.agent];
    a.acked_through = std::max(a.acked_through, it.result->seq());
    acked[it.agent] = a.acked_through;
  }
  ++commits_;
  return acked;
}

absl::Status FakeStore::StoreCollectorSpeedResult(
    const v1::SpeedResult& result) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  collector_speed_.push_back(result);
  return absl::OkStatus();
}

absl::StatusOr<collector::Store::RetentionStats> FakeStore::ApplyRetention(
    const RetentionPolicy& policy, absl::Time now) {
  const absl::Time raw_before = now - policy.results;
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  // Raw results only (no aggregates, no partitions here).
  RetentionStats stats;
  for (auto& [name, a] : agents_) {
    std::vector<v1::Result> kept;
    for (const v1::Result& r : a.results) {
      if (StartedAt(r) < raw_before) {
        ++stats.rows_deleted;
        continue;
      }
      kept.push_back(r);
    }
    a.results = std::move(kept);
  }
  return stats;
}

absl::StatusOr<std::vector<v1::PathSummary>> FakeStore::LatestPaths(
    const std::string& agent) {
  absl::MutexLock l(&mu_);
  absl::StatusOr<const Agent*> a = Find(agent);
  if (!a.ok()) return a.status();
  std::map<std::string, const v1::Result*> latest;
  for (const v1::Result& r : (*a)->results) {
    if (!r.has_path()) continue;
    const v1::Result*& slot = latest[r.path().target()];
    if (slot == nullptr || StartedAt(r) >= StartedAt(*slot)) slot = &r;
  }
  std::vector<v1::PathSummary> out;
  for (const auto& [target, r] : latest) out.push_back(Summary(*r));
  return out;
}

absl::StatusOr<std::map<std::string, std::vector<v1::PathSummary>>>
FakeStore::LatestPathsOfAll() {
  std::vector<std::string> names;
  {
    absl::MutexLock l(&mu_);
    if (absl::Status s = Down(false); !s.ok()) return s;
    for (const auto& [name, a] : agents_) names.push_back(name);
  }
  std::map<std::string, std::vector<v1::PathSummary>> out;
  for (const std::string& n : names) {
    absl::StatusOr<std::vector<v1::PathSummary>> p = LatestPaths(n);
    if (!p.ok()) return p.status();
    if (!p->empty()) out[n] = std::move(*p);
  }
  return out;
}

absl::StatusOr<v1::PathHistoryResponse> FakeStore::PathHistory(
    const std::string& agent, const std::string& target,
    const HistoryQuery& q) {
  const int64_t since_us = q.since_us, until_us = q.until_us;
  const uint32_t limit = q.limit;
  absl::MutexLock l(&mu_);
  absl::StatusOr<const Agent*> a = Find(agent);
  if (!a.ok()) return a.status();
  std::vector<const v1::Result*> runs;
  bool known = false;
  for (const v1::Result& r : (*a)->results) {
    if (!r.has_path() || r.path().target() != target) continue;
    known = true;
    const int64_t at = absl::ToUnixMicros(StartedAt(r));
    if (at >= since_us && at < until_us) runs.push_back(&r);
  }
  if (!known) {
    return absl::NotFoundError(
        absl::StrCat("agent '", agent, "' has no runs to '", target, "'"));
  }
  KeepNewest(runs, limit, [](const v1::Result* r) { return StartedAt(*r); });
  v1::PathHistoryResponse out;
  out.set_resolution(v1::RESOLUTION_RAW);
  for (const v1::Result* r : runs) {
    v1::StoredPathRun* s = out.add_runs();
    s->set_agent(agent);
    s->set_seq(r->seq());
    *s->mutable_run() = r->path();
    s->set_resolution(v1::RESOLUTION_RAW);
  }
  return out;
}

absl::StatusOr<v1::CurrentSocketsResponse> FakeStore::CurrentSockets(
    const std::string& agent) {
  return absl::UnimplementedError(
      "the fake store does not model socket history (use PgStore)");
}

absl::StatusOr<v1::SocketChangesResponse> FakeStore::SocketChanges(
    const std::string& agent, int64_t since_us) {
  return absl::UnimplementedError(
      "the fake store does not model socket history (use PgStore)");
}

absl::StatusOr<v1::FileAccessResponse> FakeStore::FileAccess(
    const std::string& agent, int64_t since_us) {
  return absl::UnimplementedError(
      "the fake store does not model file history (use PgStore)");
}

absl::StatusOr<v1::SpeedMatrixResponse> FakeStore::SpeedMatrix() {
  absl::MutexLock l(&mu_);
  if (absl::Status s = Down(false); !s.ok()) return s;
  std::map<std::pair<std::string, std::string>, const v1::SpeedResult*> latest;
  auto consider = [&](const v1::SpeedResult& s) {
    const v1::SpeedResult*& slot = latest[{s.client(), s.server()}];
    if (slot == nullptr ||
        FromProtoTime(s.started_at()) >= FromProtoTime(slot->started_at())) {
      slot = &s;
    }
  };
  for (const auto& [name, a] : agents_) {
    for (const v1::Result& r : a.results) {
      if (r.has_speed()) consider(r.speed());
    }
  }
  for (const v1::SpeedResult& s : collector_speed_) consider(s);
  v1::SpeedMatrixResponse out;
  for (const auto& [pair, s] : latest) {
    v1::SpeedCell* c = out.add_cells();
    c->set_client(pair.first);
    c->set_server(pair.second);
    c->set_bps(s->forward().received_bps());
    *c->mutable_at() = s->started_at();
    c->set_outcome(s->outcome());
    c->set_error(s->error());
  }
  return out;
}

absl::StatusOr<v1::SpeedHistoryResponse> FakeStore::SpeedHistory(
    const std::string& client, const std::string& server,
    const HistoryQuery& q) {
  const int64_t since_us = q.since_us, until_us = q.until_us;
  const uint32_t limit = q.limit;
  absl::MutexLock l(&mu_);
  absl::StatusOr<const Agent*> a = Find(client);
  if (!a.ok()) return a.status();
  std::vector<v1::SpeedResult> out;
  for (const v1::Result& r : (*a)->results) {
    if (!r.has_speed() || r.speed().server() != server) continue;
    const int64_t at =
        absl::ToUnixMicros(FromProtoTime(r.speed().started_at()));
    if (at >= since_us && at < until_us) out.push_back(r.speed());
  }
  KeepNewest(out, limit, [](const v1::SpeedResult& s) {
    return FromProtoTime(s.started_at());
  });
  v1::SpeedHistoryResponse resp;
  resp.set_resolution(v1::RESOLUTION_RAW);
  for (auto& r : out) {
    v1::SpeedHistoryPoint* p = resp.add_points();
    *p->mutable_at() = r.started_at();
    p->set_resolution(v1::RESOLUTION_RAW);
    *p->mutable_result() = r;
    *resp.add_results() = std::move(r);
  }
  return resp;
}

}  // namespace netvigil::testing
