// The collector's Prometheus endpoint: GET /metrics on listen.metrics (off
// by default; loopback only, see common/collector_config.h), served by
// cpp-httplib on two threads. The Overview is read through the Query
// service (the same answer `netvigil overview` prints) and kept for
// `cache_for`, so a scrape every few seconds costs the database one
// Overview at most per period; ingest figures are read fresh.
// Thread-safe: Start() once, Stop() from any thread.
#ifndef NETVIGIL_COLLECTOR_METRICS_METRICS_SERVER_H_
#define NETVIGIL_COLLECTOR_METRICS_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/ingest/ingest_pipeline.h"
#include "collector/metrics/collector_metrics.h"
#include "netvigil/v1/query.pb.h"

namespace httplib {
class Server;
}

namespace netvigil::collector::metrics {

struct MetricsServerOptions {
  std::string listen;  // HOST:PORT or [IPV6]:PORT; port 0: any (tests)
  absl::Duration cache_for = absl::Seconds(5);
};

class MetricsServer {
 public:
  using OverviewSource = std::function<absl::StatusOr<v1::OverviewResponse>()>;
  using IngestSource = std::function<IngestStats()>;

  // The sources and `counters` must outlive the server.
  MetricsServer(MetricsServerOptions options, OverviewSource overview,
                IngestSource ingest, const ResultCounters& counters);
  ~MetricsServer();

  // Binds and starts serving; an address that cannot be bound is an error
  // naming it.
  absl::Status Start();
  void Stop();
  int port() const { return port_; }

  // The page as a scrape gets it now.
  std::string Page() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const MetricsServerOptions options_;
  const OverviewSource overview_;
  const IngestSource ingest_;
  const ResultCounters& counters_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;

  absl::Mutex mu_;  // one Overview read at a time; guards the cache
  std::optional<v1::OverviewResponse> cached_ ABSL_GUARDED_BY(mu_);
  absl::Time cached_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace netvigil::collector::metrics

#endif  // NETVIGIL_COLLECTOR_METRICS_METRICS_SERVER_H_
