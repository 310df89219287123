// The web dashboard (listen.web): read-only pages and JSON under /api/,
// drawn from the Query service called in process, so the pages show the
// same model as the CLI. On a loopback address it is plain HTTP with no
// login; on any other address HTTPS with the collector's server
// certificate and a password login (web_auth.h). Thread-safe: Start once,
// then Stop from any thread; requests run on cpp-httplib's worker threads.
#ifndef NETVIGIL_COLLECTOR_WEB_WEB_SERVER_H_
#define NETVIGIL_COLLECTOR_WEB_WEB_SERVER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collector/admin/pki_admin.h"
#include "collector/query/query_service.h"
#include "collector/web/pages.h"
#include "collector/web/route_cache.h"
#include "collector/web/web_auth.h"
#include "common/clock.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace netvigil::collector::web {

// True when `listen` (HOST:PORT, [V6]:PORT) is on a loopback address:
// 127.0.0.0/8, ::1 or "localhost". Only the address the server listens on
// counts, not where a request comes from: a wildcard address is not
// loopback even for a request from 127.0.0.1.
bool IsLoopbackListen(const std::string& listen);

struct WebServerOptions {
  std::string listen;  // HOST:PORT
  absl::Duration session_idle = absl::Hours(12);
  std::string password_file;
  // The server certificate for HTTPS; required off loopback. Not owned.
  const ServerPki* pki = nullptr;
  // How long a pair's baseline (for the heat map) is kept before it is
  // read again even if the pair has no newer result.
  absl::Duration baseline_ttl = absl::Minutes(10);
  // How many runs' routes the timelines keep (RouteCache): a week of
  // one-minute runs to 100 targets; about 16 bytes a run.
  size_t route_cache_runs = 1'000'000;
  // At Start, read the last day's routes of every host's targets on a
  // thread of its own, so a host's first 1 d view after a start does not
  // read a day of hops.
  bool warm_routes = true;
};

class WebServer {
 public:
  // `query` and `clock` are not owned and outlive the server.
  WebServer(WebServerOptions options, QueryService& query, Clock& clock);
  ~WebServer();

  // Binds and starts serving on a thread of its own. UNAVAILABLE when the
  // address cannot be bound; FAILED_PRECONDITION off loopback without a
  // certificate.
  absl::Status Start();
  void Stop();
  bool login_required() const { return login_; }

  // The data behind the pages, from the Query service; exposed for the
  // benchmark (tests/bench/web_bench.cc), which times them at the
  // collector. Errors are the Query service's, as a Status.
  absl::Status HomeDataInto(HomeData* d);
  absl::Status HostDataInto(const std::string& host, const std::string& range,
                            HostData* d);
  // Returns when the route warm-up (warm_routes) has finished; for the
  // benchmark. Not to be called beside Stop().
  void WaitForWarmRoutes() {
    if (warm_.joinable()) warm_.join();
  }
  // One run with its hops (the /run page): PathHistory over a moment
  // around `at`, picking `seq`; d->found false when it is not there.
  absl::Status RunDataInto(const std::string& host, const std::string& target,
                           uint64_t seq, absl::Time at, RunData* d);

 private:
  void Routes();
  // The pre-routing check: false when the request was answered (refused).
  bool Admit(const httplib::Request& req, httplib::Response& res);
  void Login(const httplib::Request& req, httplib::Response& res);
  absl::Status PairDataInto(const std::string& a, const std::string& b,
                            const std::string& range, PairData* d);
  absl::Status AlertsDataInto(const std::string& range, AlertsData* d);
  // t->route_changes from its raw runs' routes: those the cache lacks are
  // read once, with hops, in one PathHistory over their time span.
  absl::Status RouteChangesInto(const std::string& host, HostTarget* t);
  // Fills the route cache with every host's last day (options_.warm_routes).
  void WarmRoutes();
  // The pair's baseline for the heat map, from its SpeedHistory: the
  // median of its successful results in the 7 days before the latest one
  // (`latest_at`); 0 with fewer than 3 of them. Cached per pair until the
  // pair has a newer result or baseline_ttl passed.
  double Baseline(const std::string& client, const std::string& server,
                  absl::Time latest_at) ABSL_LOCKS_EXCLUDED(baseline_mu_);

  const WebServerOptions options_;
  QueryService& query_;
  Clock& clock_;
  const bool login_;
  SessionTable sessions_;
  LoginLimiter limiter_;
  RouteCache routes_;
  absl::Notification stopping_;
  std::thread warm_;  // WarmRoutes, while it runs
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  struct CachedBaseline {
    absl::Time latest_at;
    absl::Time read_at;
    double bps = 0;
  };
  // Each host's path targets at its last view (from the Overview), read
  // beside the next view's Overview. Only hosts the Overview listed.
  absl::Mutex targets_mu_;
  std::map<std::string, std::vector<std::string>> targets_
      ABSL_GUARDED_BY(targets_mu_);

  absl::Mutex baseline_mu_;
  std::map<std::pair<std::string, std::string>, CachedBaseline> baselines_
      ABSL_GUARDED_BY(baseline_mu_);
};

}  // namespace netvigil::collector::web

#endif  // NETVIGIL_COLLECTOR_WEB_WEB_SERVER_H_
