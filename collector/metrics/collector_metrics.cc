#include "collector/metrics/collector_metrics.h"

#include <deque>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/proto_time.h"

namespace netvigil::collector::metrics {
namespace {

constexpr absl::string_view kRefusedPrefix = "refused: ";

double Seconds(const google::protobuf::Timestamp& t) {
  return t.seconds() + t.nanos() / 1e9;
}

// Adds samples to a family up to the bound.
class Builder {
 public:
  explicit Builder(size_t max_series) : max_series_(max_series) {}

  Family& Add(std::string name, std::string help, std::string type) {
    families_.push_back(
        {std::move(name), std::move(help), std::move(type), {}});
    return families_.back();
  }
  void Sample(Family& f,
              std::vector<std::pair<std::string, std::string>> labels,
              double value, std::string suffix = "") {
    if (f.samples.size() >= max_series_) {
      ++dropped_;
      return;
    }
    f.samples.push_back({std::move(suffix), std::move(labels), value});
  }
  std::vector<Family> Finish() {
    Family& d = Add("netvigil_metrics_series_dropped",
                    "Samples left off this page because a family reached "
                    "its bound of series.",
                    "gauge");
    d.samples.push_back({"", {}, static_cast<double>(dropped_)});
    return std::vector<Family>(std::make_move_iterator(families_.begin()),
                               std::make_move_iterator(families_.end()));
  }

 private:
  const size_t max_series_;
  size_t dropped_ = 0;
  // A deque: references to families stay valid while more are added.
  std::deque<Family> families_;
};

}  // namespace

std::string ResultCounters::ReasonLabel(const std::string& gap_reason) {
  absl::string_view r = gap_reason;
  if (absl::StartsWith(r, kRefusedPrefix))
    r.remove_prefix(kRefusedPrefix.size());
  const size_t colon = r.find(':');
  if (colon == absl::string_view::npos) return "other";
  r = r.substr(0, colon);
  std::string out;
  bool in_index = false;
  for (char c : r) {
    if (in_index) {
      if (c == ']') {
        out += "[]";
        in_index = false;
      }
      continue;
    }
    if (c == '[') {
      in_index = true;
    } else if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               c == '.') {
      out += c;
    } else {
      return "other";
    }
  }
  if (out.empty() || out.size() > 64 || in_index) return "other";
  return out;
}

void ResultCounters::OnResult(const v1::Result& r) {
  if (!r.has_gap()) return;
  absl::MutexLock l(&mu_);
  if (absl::StartsWith(r.gap().reason(), kRefusedPrefix)) {
    std::string reason = ReasonLabel(r.gap().reason());
    if (counts_.refused.count(reason) == 0 &&
        counts_.refused.size() >= kMaxReasons) {
      reason = "other";
    }
    counts_.refused[reason] += r.gap().count() > 0 ? r.gap().count() : 1;
    return;
  }
  ++counts_.spool_gaps;
  counts_.spool_lost_results += r.gap().count();
}

ResultCounters::Snapshot ResultCounters::snapshot() const {
  absl::MutexLock l(&mu_);
  return counts_;
}

std::vector<Family> BuildFamilies(const v1::OverviewResponse* overview,
                                  const IngestStats& ingest,
                                  const ResultCounters::Snapshot& counters,
                                  size_t max_series) {
  Builder b(max_series);
  // The collector's own health.
  b.Sample(b.Add("netvigil_ingest_results_total",
                 "Results committed to the database (a resend counts again).",
                 "counter"),
           {}, ingest.results);
  b.Sample(b.Add("netvigil_ingest_batches_total",
                 "Database transactions that committed results.", "counter"),
           {}, ingest.batches);
  b.Sample(b.Add("netvigil_ingest_failed_commits_total",
                 "Attempts to commit a batch that failed and were retried.",
                 "counter"),
           {}, ingest.failed_attempts);
  b.Sample(
      b.Add("netvigil_ingest_queued_bytes",
            "Bytes of results received and waiting to be committed.", "gauge"),
      {}, ingest.queued_bytes);
  b.Sample(b.Add("netvigil_ingest_inflight_bytes",
                 "Bytes of results held in memory, from reading to commit.",
                 "gauge"),
           {}, ingest.inflight_bytes);
  {
    Family& h = b.Add("netvigil_ingest_commit_latency_seconds",
                      "Time from reading a result off an agent's stream to "
                      "the commit of its transaction.",
                      "histogram");
    // A fixed number of samples: not subject to the bound.
    for (size_t i = 0; i < IngestStats::kCommitLatencyBuckets; ++i) {
      h.samples.push_back(
          {"_bucket",
           {{"le", FormatValue(IngestStats::kCommitLatencyBounds[i])}},
           static_cast<double>(ingest.commit_le[i])});
    }
    h.samples.push_back({"_bucket",
                         {{"le", "+Inf"}},
                         static_cast<double>(ingest.commit_count)});
    h.samples.push_back({"_sum", {}, ingest.commit_sum_s});
    h.samples.push_back(
        {"_count", {}, static_cast<double>(ingest.commit_count)});
  }
  {
    Family& f = b.Add("netvigil_results_refused_total",
                      "Results refused for good by validation (each stored "
                      "as a gap record), by the field named in the reason.",
                      "counter");
    for (const auto& [reason, n] : counters.refused) {
      b.Sample(f, {{"reason", reason}}, n);
    }
  }
  b.Sample(b.Add("netvigil_spool_gaps_total",
                 "Gap records agents sent: their spools dropped results.",
                 "counter"),
           {}, counters.spool_gaps);
  b.Sample(
      b.Add("netvigil_spool_lost_results_total",
            "Results the agents' gap records say were dropped.", "counter"),
      {}, counters.spool_lost_results);
  b.Sample(b.Add("netvigil_query_up",
                 "1 when the figures below came from the Query service, 0 "
                 "when it could not answer (the database is down).",
                 "gauge"),
           {}, overview != nullptr ? 1 : 0);
  if (overview == nullptr) return b.Finish();

  // The latest figures, as `netvigil overview` shows them.
  Family& known =
      b.Add("netvigil_agents", "Agents the collector knows.", "gauge");
  Family& online = b.Add("netvigil_agents_online",
                         "Agents connected and heard from within the "
                         "heartbeat timeout.",
                         "gauge");
  Family& agent_online =
      b.Add("netvigil_agent_online", "1 when this agent is online.", "gauge");
  Family& loss = b.Add("netvigil_path_loss_ratio",
                       "Loss at the destination in the latest path run (0 "
                       "to 1).",
                       "gauge");
  Family& rtt = b.Add("netvigil_path_rtt_seconds",
                      "Average round trip to the destination in the latest "
                      "path run (runs that reached it).",
                      "gauge");
  Family& reached = b.Add("netvigil_path_destination_reached",
                          "1 when the latest path run reached the "
                          "destination.",
                          "gauge");
  Family& path_at =
      b.Add("netvigil_path_last_run_timestamp_seconds",
            "When the latest path run started (Unix time).", "gauge");
  int online_n = 0;
  for (const v1::HostOverview& h : overview->hosts()) {
    const std::string& host = h.agent().name();
    if (h.agent().online()) ++online_n;
    b.Sample(agent_online, {{"host", host}}, h.agent().online() ? 1 : 0);
    for (const v1::PathSummary& p : h.paths()) {
      std::vector<std::pair<std::string, std::string>> l = {
          {"host", host}, {"target", p.target()}};
      if (p.error().empty()) b.Sample(loss, l, p.loss_percent() / 100);
      if (p.destination_reached()) b.Sample(rtt, l, p.avg_ms() / 1000);
      b.Sample(reached, l, p.destination_reached() ? 1 : 0);
      b.Sample(path_at, l, Seconds(p.at()));
    }
  }
  b.Sample(known, {}, overview->hosts_size());
  b.Sample(online, {}, online_n);

  Family& bps = b.Add("netvigil_speed_throughput_bits_per_second",
                      "What the server received in the latest speed test "
                      "of the pair that succeeded (client sends).",
                      "gauge");
  Family& ok = b.Add("netvigil_speed_last_test_ok",
                     "1 when the pair's latest speed test succeeded.", "gauge");
  Family& speed_at =
      b.Add("netvigil_speed_last_test_timestamp_seconds",
            "When the pair's latest speed test started.", "gauge");
  for (const v1::SpeedCell& c : overview->speed().cells()) {
    std::vector<std::pair<std::string, std::string>> l = {
        {"client", c.client()}, {"server", c.server()}};
    const bool good = c.outcome() == v1::SPEED_OUTCOME_OK;
    if (good) b.Sample(bps, l, c.bps());
    b.Sample(ok, l, good ? 1 : 0);
    b.Sample(speed_at, l, Seconds(c.at()));
  }
  b.Sample(b.Add("netvigil_alerts_open", "Alerts open now.", "gauge"), {},
           overview->open_alerts_size());
  return b.Finish();
}

}  // namespace netvigil::collector::metrics
