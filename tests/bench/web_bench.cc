// The web dashboard's data on the query benchmark's month of history (10
// hosts x 5 targets, one-minute path runs, the hourly speed mesh): the
// home page's data (Overview and the heat map's baselines), a host's 1 d
// and 1 y timelines, timed at the collector (the WebServer's own calls to
// the Query service, in process), and the same pages as HTTP responses
// from the real server on loopback (rendering included). Prints
// p50/p99/max against the targets: home p99 < 100 ms, host 1 d < 150 ms,
// host 1 y < 300 ms.
//
// The data is query_bench's, not a copy of its seeding: tests/bench/
// web_bench.sh runs query_bench with QUERY_BENCH_HOLD, hands its database
// here as WEB_BENCH_DSN, then lets query_bench finish.
//
// Before timing, the month is put in the shape a collector keeps it: the
// collector's own retention pass folds the runs older than 7 days into
// hourly rows (query_bench seeds raw rows only).
//
// Usage: WEB_BENCH_DSN=... web_bench [ITERATIONS]   (default 100)
#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/session_registry.h"
#include "collector/query/query_service.h"
#include "collector/store/pg_store.h"
#include "collector/web/web_server.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "spdlog/spdlog.h"

namespace {

namespace web = netvigil::collector::web;
namespace v1 = netvigil::v1;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "web_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string HostName(int i) {
  return absl::StrCat("host", i < 10 ? "0" : "", i);
}

struct Stats {
  double p50, p99, max;
};

template <typename Fn>
Stats Time(int warmup, int iterations, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn(i);
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    const absl::Time t0 = absl::Now();
    fn(i);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const size_t i99 = std::max<size_t>(1, (n * 99 + 99) / 100) - 1;
  return {ms[n / 2], ms[i99], ms.back()};
}

std::string LoadAverage() {
  char buf[64] = {};
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
  std::fclose(f);
  return ok ? std::string(buf, std::strcspn(buf, " ")) : "?";
}

bool Report(const char* name, const Stats& s, double target,
            const std::string& what) {
  const bool met = target <= 0 || s.p99 < target;
  std::printf("%-28s p50=%8.2f ms  p99=%8.2f ms  max=%8.2f ms  %s%s\n", name,
              s.p50, s.p99, s.max,
              target > 0 ? absl::StrCat("target p99 < ", target,
                                        " ms: ", met ? "met" : "MISSED", "  ")
                               .c_str()
                         : "",
              what.c_str());
  return met;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 100;
  const char* dsn = std::getenv("WEB_BENCH_DSN");
  if (dsn == nullptr || iterations <= 0) {
    Die("usage: WEB_BENCH_DSN=... web_bench [ITERATIONS] (see web_bench.sh)");
  }
  spdlog::set_level(spdlog::level::warn);
  netvigil::collector::PgStore store(dsn, 4);
  // Already migrated by query_bench; the store learns the schema here.
  if (absl::Status s = store.Migrate(); !s.ok()) Die(s.ToString());
  // query_bench seeds raw rows only; a collector keeps raw rows for
  // retention.raw_days (7) and folds older ones into hourly rows. Fold
  // them as the collector's own retention pass does, so the long ranges
  // read what they would read in a home (WEB_BENCH_KEEP_RAW=1: time the
  // 30 raw days instead).
  if (std::getenv("WEB_BENCH_KEEP_RAW") == nullptr) {
    const absl::Time t0 = absl::Now();
    auto r = store.ApplyRetention(netvigil::collector::Store::RetentionPolicy(),
                                  absl::Now());
    if (!r.ok()) Die(r.status().ToString());
    pqxx::connection c(dsn);
    pqxx::nontransaction(c).exec("ANALYZE");
    std::printf(
        "retention as the collector's (raw 7 days): %lld path runs and "
        "%lld speed results folded into hours, %lld partitions dropped, "
        "%.1f s with ANALYZE\n",
        static_cast<long long>(r->path_runs_aggregated),
        static_cast<long long>(r->speed_results_aggregated),
        static_cast<long long>(r->partitions_dropped),
        absl::ToDoubleSeconds(absl::Now() - t0));
  }
  netvigil::collector::SessionRegistry sessions;
  netvigil::collector::CommandBroker broker(sessions, netvigil::RealClock());
  netvigil::collector::QueryServiceOptions options;
  options.heartbeat_timeout = absl::Hours(1);
  netvigil::collector::QueryService query(options, store, netvigil::RealClock(),
                                          sessions, broker);
  const int port = 18000 + getpid() % 20000;
  web::WebServerOptions wo;
  wo.listen = absl::StrCat("127.0.0.1:", port);
  // The first views are timed cold below; the warm-up a collector does at
  // start (WebServerOptions::warm_routes) is timed on its own at the end.
  wo.warm_routes = false;
  web::WebServer server(wo, query, netvigil::RealClock());
  if (absl::Status s = server.Start(); !s.ok()) Die(s.ToString());

  const int warmup = std::max(3, iterations / 20);
  std::printf("timing %d calls each after %d warm-up calls; load average %s\n",
              iterations, warmup, LoadAverage().c_str());
  bool met = true;
  size_t cells = 0, baselines = 0;
  // The first call reads every pair's baseline (one SpeedHistory each);
  // later ones reuse them until a pair has a newer result.
  const Stats cold = Time(0, 1, [&](int) {
    web::HomeData d;
    if (auto s = server.HomeDataInto(&d); !s.ok()) Die(s.ToString());
  });
  const Stats home = Time(warmup, iterations, [&](int) {
    web::HomeData d;
    if (auto s = server.HomeDataInto(&d); !s.ok()) Die(s.ToString());
    cells = d.overview.speed().cells_size();
    baselines = d.baseline_bps.size();
  });
  Report("home data, first (cold)", cold, 0, "");
  met &= Report("home data (collector)", home, 100,
                absl::StrCat("speed_cells=", cells, " baselines=", baselines));
  for (const auto& range_target :
       std::vector<std::pair<std::string, double>>{{"1d", 150}, {"1y", 300}}) {
    // Named copies: a lambda cannot capture a structured binding in C++17.
    const std::string& range = range_target.first;
    const double target = range_target.second;
    size_t runs = 0;
    std::string resolution;
    const int n = range == "1y" ? std::max(5, iterations / 10) : iterations;
    if (range == "1d") {
      // The first view of each host reads its runs' routes (hops) once;
      // later views only the runs since (WebServer's RouteCache). Timed
      // apart, then every host is warm for the timing below.
      Stats first = Time(0, 10, [&](int i) {
        web::HostData d;
        if (auto s = server.HostDataInto(HostName(i), range, &d); !s.ok()) {
          Die(s.ToString());
        }
      });
      Report("host 1d, first view a host", first, 0, "routes read: 10 hosts");
    }
    Stats st = Time(range == "1y" ? 1 : warmup, n, [&](int i) {
      web::HostData d;
      if (auto s = server.HostDataInto(HostName(i % 10), range, &d); !s.ok()) {
        Die(s.ToString());
      }
      runs = 0;
      for (const auto& t : d.targets) runs += t.history.runs_size();
      resolution = d.targets.empty()
                       ? "?"
                       : web::ResolutionName(d.targets[0].history.resolution());
    });
    met &= Report(
        absl::StrCat("host ", range, " data (collector)").c_str(), st, target,
        absl::StrCat("runs=", runs, " resolution=", resolution, " calls=", n));
  }
  // What the host figures are made of, in the same run: a host's five
  // targets read in parallel as the page reads them (1 d: without hops;
  // 1 y: hourly), the 1 d read as the page made it before (every run with
  // its hops), and the Overview the page reads first for the targets.
  struct Read {
    const char* name;
    absl::Duration span;
    bool hops;
    v1::Resolution resolution;
  };
  for (const Read& r :
       {Read{"5 x PathHistory 1d, hops", absl::Hours(24), true,
             v1::RESOLUTION_AUTO},
        Read{"5 x PathHistory 1d, no hops", absl::Hours(24), false,
             v1::RESOLUTION_AUTO},
        Read{"5 x PathHistory 1y, hourly", absl::Hours(24 * 365), false,
             v1::RESOLUTION_HOURLY}}) {
    size_t bytes = 0;
    const bool year = r.resolution == v1::RESOLUTION_HOURLY;
    Stats st = Time(year ? 1 : warmup, year ? 10 : iterations, [&](int i) {
      std::vector<std::future<size_t>> f;
      for (const char* target :
           {"1.1.1.1", "9.9.9.9", "gateway", "nas.lan", "example.org"}) {
        f.push_back(std::async(std::launch::async, [&, i, target] {
          grpc::ServerContext ctx;
          v1::PathHistoryRequest req;
          req.set_host(HostName(i % 10));
          req.set_target(target);
          *req.mutable_since() = netvigil::ToProtoTime(absl::Now() - r.span);
          req.set_limit(20000);
          req.set_without_hops(!r.hops);
          req.set_resolution(r.resolution);
          v1::PathHistoryResponse resp;
          if (!query.PathHistory(&ctx, &req, &resp).ok()) {
            Die("PathHistory failed");
          }
          return resp.ByteSizeLong();
        }));
      }
      bytes = 0;
      for (auto& x : f) bytes += x.get();
    });
    Report(r.name, st, 0, absl::StrCat("answer_bytes=", bytes));
  }
  // The host page's other reads (beside its Overview and paths): its
  // alerts, socket changes and file access over the range, and the
  // rendering of the page from what was read.
  for (const auto& range_span :
       std::vector<std::pair<std::string, absl::Duration>>{
           {"1d", absl::Hours(24)}, {"1y", absl::Hours(24 * 365)}}) {
    // Not a structured binding: C++17 lets no lambda capture one.
    const std::string& range = range_span.first;
    const absl::Duration span = range_span.second;
    const bool year = range == "1y";
    size_t events = 0;
    Stats st = Time(year ? 1 : warmup, year ? 10 : iterations, [&](int i) {
      const auto since = netvigil::ToProtoTime(absl::Now() - span);
      grpc::ServerContext c1, c2, c3;
      v1::ListAlertsRequest a;
      a.set_host(HostName(i % 10));
      *a.mutable_since() = since;
      a.set_limit(1000);
      v1::ListAlertsResponse ar;
      (void)query.ListAlerts(&c1, &a, &ar);
      v1::SocketChangesRequest s;
      s.set_host(HostName(i % 10));
      *s.mutable_since() = since;
      v1::SocketChangesResponse sr;
      (void)query.SocketChanges(&c2, &s, &sr);
      v1::FileAccessRequest f;
      f.set_host(HostName(i % 10));
      *f.mutable_since() = since;
      v1::FileAccessResponse fr;
      (void)query.FileAccess(&c3, &f, &fr);
      events = ar.alerts_size() + sr.changes_size() + fr.facts_size();
    });
    Report(absl::StrCat("host ", range, " events (serial)").c_str(), st, 0,
           absl::StrCat("alerts+socket changes+files=", events));
    web::HostData d;
    if (auto s = server.HostDataInto("host03", range, &d); !s.ok()) {
      Die(s.ToString());
    }
    size_t bytes = 0;
    Stats render = Time(year ? 1 : warmup, year ? 10 : iterations,
                        [&](int) { bytes = web::RenderHost(d).size(); });
    Report(absl::StrCat("render host ", range).c_str(), render, 0,
           absl::StrCat("body_bytes=", bytes));
  }
  {
    Stats st = Time(warmup, iterations, [&](int) {
      grpc::ServerContext ctx;
      v1::OverviewRequest req;
      v1::OverviewResponse resp;
      if (!query.Overview(&ctx, &req, &resp).ok()) Die("Overview failed");
    });
    Report("Overview", st, 0, "");
  }
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  for (const std::string& path :
       {std::string("/"), std::string("/host?name=host03&range=1d"),
        std::string("/host?name=host03&range=7d"),
        std::string("/host?name=host03&range=1y")}) {
    size_t bytes = 0;
    const bool long_range =
        absl::EndsWith(path, "=7d") || absl::EndsWith(path, "=1y");
    const int n = long_range ? std::max(5, iterations / 10) : iterations;
    Stats st = Time(long_range ? 1 : warmup, n, [&](int) {
      auto r = client.Get(path.c_str());
      if (!r || r->status != 200) Die("GET " + path + " failed");
      bytes = r->body.size();
    });
    Report(absl::StrCat("GET ", path).c_str(), st, 0,
           absl::StrCat("page_bytes=", bytes));
  }
  // Chromium's first paint of the same pages from this server
  // (web_paint.py beside this file; web_bench.sh passes its path).
  if (const char* paint = std::getenv("WEB_BENCH_PAINT"); paint != nullptr) {
    std::fflush(stdout);
    for (const std::string& path :
         {std::string("/"), std::string("/host?name=host03&range=1d")}) {
      const std::string cmd = absl::StrCat(
          "/usr/bin/python3 ", paint, " 'http://127.0.0.1:", port, path, "' 5");
      if (std::system(cmd.c_str()) != 0) std::printf("web_paint failed\n");
    }
  }
  server.Stop();
  {
    // What a collector's start spends warming the route cache: every
    // host's last day, on a server of its own (an empty cache).
    web::WebServerOptions warm = wo;
    warm.listen = absl::StrCat("127.0.0.1:", port + 1);
    warm.warm_routes = true;
    web::WebServer cold(warm, query, netvigil::RealClock());
    const absl::Time t0 = absl::Now();
    if (absl::Status s = cold.Start(); !s.ok()) Die(s.ToString());
    cold.WaitForWarmRoutes();
    const double warm_s = absl::ToDoubleSeconds(absl::Now() - t0);
    Stats first = Time(0, 10, [&](int i) {
      web::HostData d;
      if (auto s = cold.HostDataInto(HostName(i), "1d", &d); !s.ok()) {
        Die(s.ToString());
      }
    });
    std::printf(
        "route warm-up at start: %.2f s; then host 1d first views "
        "p50=%.2f ms max=%.2f ms\n",
        warm_s, first.p50, first.max);
    cold.Stop();
  }
  std::printf("load average %s; targets: %s\n", LoadAverage().c_str(),
              met ? "met" : "MISSED");
  return met ? 0 : 1;
}
