#include "collector/metrics/metrics_server.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector::metrics {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

bool SplitListen(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  int p = 0;
  if (h.empty() || !absl::SimpleAtoi(listen.substr(colon + 1), &p) || p < 0 ||
      p > 65535) {
    return false;
  }
  *host = h;
  *port = p;
  return true;
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerOptions options,
                             OverviewSource overview, IngestSource ingest,
                             const ResultCounters& counters)
    : options_(std::move(options)),
      overview_(std::move(overview)),
      ingest_(std::move(ingest)),
      counters_(counters) {}

MetricsServer::~MetricsServer() { Stop(); }

absl::Status MetricsServer::Start() {
  std::string host;
  int port = 0;
  if (!SplitListen(options_.listen, &host, &port)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen.metrics: expected HOST:PORT, got '", options_.listen, "'"));
  }
  server_ = std::make_unique<httplib::Server>();
  // A scrape is one cheap page: two threads are plenty, and a client that
  // holds a connection open cannot take more.
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_max_count(10);
  server_->set_payload_max_length(1024);
  server_->Get("/metrics",
               [this](const httplib::Request&, httplib::Response& res) {
                 res.set_content(Page(), kContentType);
               });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("listen.metrics: cannot listen on ", options_.listen,
                     " (address in use, or not an address of this host)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("metrics_listening address={} port={}", options_.listen, port_);
  return absl::OkStatus();
}

void MetricsServer::Stop() {
  if (thread_.joinable()) {
    // stop() only reaches a server that is listening: wait (briefly) for
    // the thread to get there, or it would listen on after stop().
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!server_->is_running() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    server_->stop();
    thread_.join();
  }
}

std::string MetricsServer::Page() {
  const v1::OverviewResponse* overview = nullptr;
  absl::MutexLock l(&mu_);
  const absl::Time now = absl::Now();
  if (now - cached_at_ >= options_.cache_for) {
    absl::StatusOr<v1::OverviewResponse> o = overview_();
    if (o.ok()) {
      cached_ = std::move(*o);
    } else {
      cached_.reset();
      spdlog::warn("metrics_overview_failed error=\"{}\"",
                   std::string(o.status().message()));
    }
    cached_at_ = now;
  }
  if (cached_.has_value()) overview = &*cached_;
  return Render(BuildFamilies(overview, ingest_(), counters_.snapshot()));
}

}  // namespace netvigil::collector::metrics
