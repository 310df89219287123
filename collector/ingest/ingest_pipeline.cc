#include "collector/ingest/ingest_pipeline.h"

#include <algorithm>
#include <set>

#include "absl/hash/hash.h"
#include "common/backoff.h"
#include "common/process_setup.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

constexpr size_t kMaxLatencySamples = 200'000;
// A result at least this large is committed on its own, after the small
// results queued behind it (see WriterLoop).
constexpr size_t kLargeResult = 1 << 20;

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace

struct IngestPipeline::Budgeted {
  Budgeted(v1::Result r, std::shared_ptr<InflightBudget::Reservation> b)
      : result(std::move(r)), reservation(std::move(b)) {}
  v1::Result result;
  const std::shared_ptr<InflightBudget::Reservation> reservation;
};

IngestPipeline::IngestPipeline(IngestPipelineOptions options, Store& store)
    : options_(std::move(options)),
      store_(store),
      budget_(InflightBudget::Create(options_.inflight)) {
  const int n = std::max(1, options_.shards);
  {
    absl::MutexLock l(&stats_mu_);
    window_start_ = absl::Now();
  }
  for (int i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
  for (auto& shard : shards_) {
    writers_.emplace_back([this, s = shard.get()] { WriterLoop(*s); });
  }
}

IngestPipeline::~IngestPipeline() {
  stop_.Notify();
  for (auto& shard : shards_) {
    absl::MutexLock l(&shard->mu);
    shard->has_items.SignalAll();
    shard->has_space.SignalAll();
  }
  for (auto& t : writers_) t.join();
}

bool IngestPipeline::Submit(
    std::shared_ptr<AgentSession> session, v1::Result result,
    const std::function<bool()>& abandon,
    std::shared_ptr<InflightBudget::Reservation> reservation) {
  const absl::Time received = absl::Now();
  const size_t bytes = result.ByteSizeLong() + sizeof(Item);
  if (reservation == nullptr) {
    reservation = budget_->Acquire(session->name(), bytes,
                                   [&] { return stopping() || abandon(); });
    if (reservation == nullptr) return false;
  }
  auto holder =
      std::make_shared<Budgeted>(std::move(result), std::move(reservation));
  // Shares the holder's lifetime: the budget returns when the last
  // reference (queue, store, analysis) goes.
  std::shared_ptr<const v1::Result> shared(holder, &holder->result);
  Shard& shard =
      *shards_[absl::Hash<std::string>()(session->name()) % shards_.size()];
  const size_t budget =
      std::max<size_t>(options_.max_queued_bytes / shards_.size(), 1);
  absl::MutexLock l(&shard.mu);
  // An empty queue always takes one result, however large. Large results
  // queue one at a time per shard and do not count against small ones
  // (memory is bounded by the in-flight budget; this bounds waiting).
  const bool large = bytes >= kLargeResult;
  auto full = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
    if (large) return shard.large_bytes > 0;
    const size_t small = shard.bytes - shard.large_bytes;
    return small > 0 && small + bytes > budget;
  };
  while (full()) {
    if (stopping() || abandon()) return false;
    shard.has_space.WaitWithTimeout(&shard.mu, absl::Milliseconds(200));
  }
  if (stopping() || abandon()) return false;
  shard.queue.push_back(
      Item{std::move(session), std::move(shared), bytes, received});
  shard.bytes += bytes;
  if (large) shard.large_bytes += bytes;
  shard.has_items.Signal();
  return true;
}

void IngestPipeline::WriterLoop(Shard& shard) {
  NameThisThread("nv-writer");
  while (!stopping()) {
    std::vector<Item> batch;
    {
      absl::MutexLock l(&shard.mu);
      if (shard.queue.empty()) {
        shard.has_items.WaitWithTimeout(&shard.mu, absl::Seconds(1));
      }
      Linger(shard);
      size_t bytes = 0;
      if (!shard.queue.empty() && shard.queue.front().bytes >= kLargeResult &&
          shard.large_passed_over) {
        // A large result's turn: alone (it was passed over once already).
        bytes = shard.queue.front().bytes;
        batch.push_back(std::move(shard.queue.front()));
        shard.queue.pop_front();
        shard.large_passed_over = false;
      } else {
        // Small results first, each agent's in order: an agent whose large
        // result (or one that does not fit) waits keeps its later ones
        // back too. One large result in a commit should not hold up every
        // other agent of its shard.
        std::set<std::string> held_back;
        for (auto it = shard.queue.begin();
             it != shard.queue.end() &&
             batch.size() < options_.max_batch_results;) {
          const std::string& agent = it->session->name();
          if (it->bytes >= kLargeResult || held_back.count(agent) > 0 ||
              bytes + it->bytes > options_.max_batch_bytes) {
            held_back.insert(agent);
            ++it;
            continue;
          }
          bytes += it->bytes;
          batch.push_back(std::move(*it));
          it = shard.queue.erase(it);
        }
        if (batch.empty() && !shard.queue.empty()) {
          bytes = shard.queue.front().bytes;
          batch.push_back(std::move(shard.queue.front()));
          shard.queue.pop_front();
        }
        shard.large_passed_over =
            !shard.queue.empty() && shard.queue.front().bytes >= kLargeResult;
      }
      for (const Item& i : batch) {
        if (i.bytes >= kLargeResult) shard.large_bytes -= i.bytes;
      }
      shard.bytes -= bytes;
      if (!batch.empty()) shard.has_space.SignalAll();
    }
    MaybeLogStats();
    // Results of a session the database refused are not stored: storing a
    // later one would acknowledge past the refused one.
    for (auto it = shard.refused.begin(); it != shard.refused.end();) {
      it = it->second.use_count() == 1 ? shard.refused.erase(it) : ++it;
    }
    batch.erase(std::remove_if(batch.begin(), batch.end(),
                               [&](const Item& i) {
                                 return shard.refused.count(i.session.get()) >
                                        0;
                               }),
                batch.end());
    if (!batch.empty() && !Commit(shard, batch)) return;
    if (!batch.empty()) shard.last_commit = std::chrono::steady_clock::now();
  }
}

void IngestPipeline::Linger(Shard& shard) {
  using Steady = std::chrono::steady_clock;
  const auto linger = absl::ToChronoNanoseconds(options_.linger);
  const Steady::time_point start = Steady::now();
  // Measured at 1,000 agents on two cores (tests/bench/ingest.sh): without
  // it each of four writers committed 1.9 results a transaction, 20 ms
  // each, and the database's parse, plan and commit of every batch took
  // the CPU the rest of the ingest needed.
  if (shard.queue.empty() || linger <= Steady::duration::zero() ||
      start - shard.last_commit >= linger) {
    return;
  }
  const size_t budget =
      std::max<size_t>(options_.max_queued_bytes / shards_.size(), 1);
  while (!stopping() && shard.queue.size() < options_.linger_results &&
         shard.bytes < budget / 2) {
    const auto left = linger - (Steady::now() - start);
    if (left <= Steady::duration::zero()) return;
    // Relative sleeps in slices, not a timed wait on has_items: this
    // Abseil's timed waits are wall-clock deadlines a clock step stretches.
    shard.mu.Unlock();
    absl::SleepFor(std::min(absl::FromChrono(left), absl::Milliseconds(5)));
    shard.mu.Lock();
  }
}

bool IngestPipeline::Commit(Shard& shard, std::vector<Item>& batch) {
  Backoff backoff({options_.retry_initial, options_.retry_max, 2.0});
  bool outage_logged = false;
  for (;;) {
    std::vector<Store::IngestItem> items;
    items.reserve(batch.size());
    for (const Item& i : batch) {
      items.push_back({i.session->name(), i.result.get()});
    }
    const absl::Time t0 = absl::Now();
    absl::StatusOr<std::map<std::string, uint64_t>> acked =
        store_.StoreBatch(items);
    {
      absl::MutexLock l(&stats_mu_);
      totals_.store_ms += absl::ToDoubleMilliseconds(absl::Now() - t0);
    }
    if (acked.ok()) {
      if (outage_logged)
        spdlog::info("ingest_resumed results={}", batch.size());
      Acknowledge(batch, *acked);
      return true;
    }
    {
      absl::MutexLock l(&stats_mu_);
      ++totals_.failed_attempts;
    }
    if (acked.status().code() == absl::StatusCode::kUnavailable) {
      // The database is away: keep the batch (the queue behind it fills and
      // stops the streams) and try again.
      if (!outage_logged) {
        spdlog::warn("ingest_waiting_for_database results={} error=\"{}\"",
                     batch.size(), std::string(acked.status().message()));
        outage_logged = true;
      }
      // Relative sleeps in slices (they run on the monotonic clock): this
      // Abseil's timed waits are wall-clock deadlines a clock step stretches.
      for (absl::Duration left = backoff.Next();
           left > absl::ZeroDuration() && !stopping();
           left -= absl::Milliseconds(50)) {
        absl::SleepFor(std::min(left, absl::Milliseconds(50)));
      }
      if (stopping()) return false;
      continue;
    }
    if (batch.size() > 1) {
      // Refused by the database: find the result it refuses.
      std::vector<Item> second(
          std::make_move_iterator(batch.begin() + batch.size() / 2),
          std::make_move_iterator(batch.end()));
      batch.resize(batch.size() / 2);
      if (!Commit(shard, batch)) return false;
      second.erase(
          std::remove_if(second.begin(), second.end(),
                         [&](const Item& i) {
                           return shard.refused.count(i.session.get()) > 0;
                         }),
          second.end());
      return second.empty() || Commit(shard, second);
    }
    const Item& bad = batch.front();
    spdlog::error(
        "result_not_stored name={} seq={} error=\"{}\" action=\"not "
        "acknowledged; the agent's session is ended and it sends it again\"",
        bad.session->name(), bad.result->seq(),
        std::string(acked.status().message()));
    shard.refused.emplace(bad.session.get(), bad.session);
    bad.session->Cancel();
    return true;
  }
}

void IngestPipeline::Acknowledge(const std::vector<Item>& batch,
                                 const std::map<std::string, uint64_t>& acked) {
  const absl::Time now = absl::Now();
  // One ack per agent, on the session that sent its newest result.
  std::map<std::string, const Item*> newest;
  int64_t entries = 0;
  for (const Item& i : batch) {
    newest[i.session->name()] = &i;
    if (i.result->has_sockets()) {
      entries += i.result->sockets().sockets_size();
    }
  }
  for (const auto& [name, item] : newest) {
    auto it = acked.find(name);
    if (it == acked.end()) continue;
    v1::CollectorMessage ack;
    ack.mutable_ack()->set_acked_through_seq(it->second);
    item->session->Send(ack);
  }
  {
    absl::MutexLock l(&stats_mu_);
    totals_.results += batch.size();
    totals_.socket_entries += entries;
    ++totals_.batches;
    for (const Item& i : batch) {
      const double s = absl::ToDoubleSeconds(now - i.received);
      for (size_t b = 0; b < IngestStats::kCommitLatencyBuckets; ++b) {
        if (s <= IngestStats::kCommitLatencyBounds[b]) ++totals_.commit_le[b];
      }
      ++totals_.commit_count;
      totals_.commit_sum_s += s;
      if (latencies_ms_.size() >= kMaxLatencySamples) continue;
      latencies_ms_.push_back(s * 1e3);
    }
  }
  const absl::Time t0 = absl::Now();
  for (const Item& i : batch) {
    for (auto& observe : observers_) observe(i.session->name(), i.result);
  }
  absl::MutexLock l(&stats_mu_);
  totals_.observe_ms += absl::ToDoubleMilliseconds(absl::Now() - t0);
}

IngestStats IngestPipeline::stats() {
  IngestStats out;
  {
    absl::MutexLock l(&stats_mu_);
    out = totals_;
    std::vector<double> v = latencies_ms_;
    out.commit_p50_ms = Percentile(v, 0.50);
    out.commit_p99_ms = Percentile(v, 0.99);
    out.commit_max_ms = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  }
  for (auto& shard : shards_) {
    absl::MutexLock l(&shard->mu);
    out.queued_bytes += shard->bytes;
  }
  out.inflight_bytes = budget_->used();
  out.budget_waits = budget_->waits();
  return out;
}

void IngestPipeline::MaybeLogStats() {
  const absl::Time now = absl::Now();
  {
    absl::MutexLock l(&stats_mu_);
    if (now - window_start_ < options_.stats_interval) return;
  }
  IngestStats s = stats();
  absl::MutexLock l(&stats_mu_);
  if (now - window_start_ < options_.stats_interval) return;  // another shard
  const double secs = absl::ToDoubleSeconds(now - window_start_);
  if (s.results != last_logged_.results ||
      s.failed_attempts != last_logged_.failed_attempts) {
    spdlog::info(
        "ingest_stats results_per_s={:.0f} socket_entries_per_s={:.0f} "
        "batches={} store_ms_per_batch={:.0f} observe_ms_per_batch={:.0f} "
        "commit_p50_ms={:.1f} "
        "commit_p99_ms={:.1f} commit_max_ms={:.1f} queued_bytes={} "
        "inflight_bytes={} budget_waits={} failed_attempts={} "
        "results_total={}",
        (s.results - last_logged_.results) / secs,
        (s.socket_entries - last_logged_.socket_entries) / secs,
        s.batches - last_logged_.batches,
        (s.store_ms - last_logged_.store_ms) /
            std::max<int64_t>(1, s.batches - last_logged_.batches),
        (s.observe_ms - last_logged_.observe_ms) /
            std::max<int64_t>(1, s.batches - last_logged_.batches),
        s.commit_p50_ms, s.commit_p99_ms, s.commit_max_ms, s.queued_bytes,
        s.inflight_bytes, s.budget_waits - last_logged_.budget_waits,
        s.failed_attempts - last_logged_.failed_attempts, s.results);
  }
  last_logged_ = s;
  latencies_ms_.clear();
  window_start_ = now;
}

}  // namespace netvigil::collector
