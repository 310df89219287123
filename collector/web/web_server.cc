#include "collector/web/web_server.h"

#include <httplib.h>
#include <openssl/pem.h>

#include <algorithm>
#include <future>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace netvigil::collector::web {
namespace {

constexpr char kCookie[] = "nv_session";
// What a request may carry: the login form is the only body.
constexpr size_t kMaxBody = 8 << 10;
// The longest target name a request may give (the store's own bound).
constexpr size_t kMaxName = 255;
// Runs asked for per target: every run of a day and more; past it the
// page says it shows the latest ones (before the history work's hourly
// aggregates answer the long ranges).
constexpr uint32_t kRunLimit = 20000;

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

int HttpCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

google::protobuf::Timestamp Ts(absl::Time t) { return ToProtoTime(t); }

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, o).ok()) {
    return "null";
  }
  return out;
}

bool FindRange(const std::string& name, absl::Duration* d) {
  for (const auto& [n, span] : Ranges()) {
    if (n == name) {
      *d = span;
      return true;
    }
  }
  return false;
}

absl::Status RangeOf(const httplib::Request& req, const std::string& dflt,
                     std::string* name, absl::Duration* span) {
  *name = req.has_param("range") ? req.get_param_value("range") : dflt;
  if (!FindRange(*name, span)) {
    return absl::InvalidArgumentError(
        "range must be one of 3h, 1d, 7d, 30d, 1y");
  }
  return absl::OkStatus();
}

absl::Status Param(const httplib::Request& req, const char* key,
                   std::string* out) {
  if (!req.has_param(key) || req.get_param_value(key).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", key, "' is required"));
  }
  *out = req.get_param_value(key);
  if (out->size() > kMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", key, "' is longer than ", kMaxName));
  }
  return absl::OkStatus();
}

std::string CookieToken(const httplib::Request& req) {
  const std::string header = req.get_header_value("Cookie");
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, kCookie) &&
        absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

// Host without the port and brackets: "[::1]:8080" -> "::1".
std::string HostPart(absl::string_view hostport) {
  if (absl::StartsWith(hostport, "[")) {
    const size_t end = hostport.find(']');
    return std::string(hostport.substr(
        1, end == absl::string_view::npos ? absl::string_view::npos : end - 1));
  }
  const size_t colon = hostport.rfind(':');
  return std::string(
      colon == absl::string_view::npos ? hostport : hostport.substr(0, colon));
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  int first = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &first)) return false;
  for (const auto& p : parts) {
    int v = 0;
    if (!absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return first == 127;
}

void Page(httplib::Response& res, absl::string_view title,
          absl::string_view body, bool logout) {
  res.set_content(Layout(title, body, logout), "text/html; charset=utf-8");
}

void Fail(httplib::Response& res, const absl::Status& s, bool html,
          bool logout) {
  res.status = HttpCode(s);
  if (html) {
    Page(res, "error",
         absl::StrCat("<h1>Error</h1><p class=\"error\">",
                      HtmlEscape(s.message()), "</p>"),
         logout);
  } else {
    res.set_content(nlohmann::json{{"error", std::string(s.message())}}.dump(),
                    "application/json");
  }
}

absl::StatusOr<std::pair<X509*, EVP_PKEY*>> ParsePem(const ServerPki& pki) {
  BIO* cb = BIO_new_mem_buf(pki.server_cert.data(),
                            static_cast<int>(pki.server_cert.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO* kb = BIO_new_mem_buf(pki.server_key.data(),
                            static_cast<int>(pki.server_key.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  if (cert == nullptr || key == nullptr) {
    X509_free(cert);
    EVP_PKEY_free(key);
    return absl::FailedPreconditionError(absl::StrCat(
        "the server certificate or key in ", pki.dir, " does not parse"));
  }
  return std::make_pair(cert, key);
}

}  // namespace

bool IsLoopbackListen(const std::string& listen) {
  return IsLoopbackHost(HostPart(listen));
}

WebServer::WebServer(WebServerOptions options, QueryService& query,
                     Clock& clock)
    : options_(std::move(options)),
      query_(query),
      clock_(clock),
      login_(!IsLoopbackListen(options_.listen)),
      sessions_(clock, options_.session_idle),
      limiter_(clock),
      routes_(options_.route_cache_runs) {}

WebServer::~WebServer() { Stop(); }

absl::Status WebServer::Start() {
  const std::string host = HostPart(options_.listen);
  int port = 0;
  const size_t colon = options_.listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options_.listen.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen.web: not HOST:PORT: ", options_.listen));
  }
  if (login_) {
    if (options_.pki == nullptr) {
      return absl::FailedPreconditionError(
          "listen.web off loopback needs the collector's CA for HTTPS: run "
          "`netvigil-collector pki init`");
    }
    auto pem = ParsePem(*options_.pki);
    if (!pem.ok()) return pem.status();
    auto ssl = std::make_unique<httplib::SSLServer>(pem->first, pem->second);
    // The SSL_CTX holds its own references.
    X509_free(pem->first);
    EVP_PKEY_free(pem->second);
    if (!ssl->is_valid()) {
      return absl::FailedPreconditionError(
          "cannot set up HTTPS with the collector's server certificate");
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  server_->set_payload_max_length(kMaxBody);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  server_->set_keep_alive_max_count(100);
  // Every response: no script or style from anywhere but here and none
  // inline, no framing, no sniffing, no referrer.
  server_->set_default_headers(
      {{"Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
       {"X-Frame-Options", "DENY"},
       {"X-Content-Type-Options", "nosniff"},
       {"Referrer-Policy", "no-referrer"},
       {"Cross-Origin-Opener-Policy", "same-origin"}});
  Routes();
  if (!server_->bind_to_port(host, port)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for the web dashboard on ", options_.listen,
                     " (address in use or not available)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  if (options_.warm_routes) warm_ = std::thread([this] { WarmRoutes(); });
  spdlog::info("web_listening address={} tls={} login={}", options_.listen,
               login_ ? "yes" : "no", login_ ? "yes" : "no");
  return absl::OkStatus();
}

void WebServer::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (warm_.joinable()) warm_.join();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void WebServer::WarmRoutes() {
  // The store may still be starting: try for a few minutes.
  v1::OverviewResponse overview;
  for (int i = 0; i < 36; ++i) {
    grpc::ServerContext ctx;
    v1::OverviewRequest req;
    if (query_.Overview(&ctx, &req, &overview).ok()) break;
    overview.Clear();
    if (stopping_.WaitForNotificationWithTimeout(absl::Seconds(5))) return;
  }
  const absl::Time t0 = absl::Now();
  size_t runs = 0;
  const absl::Time until = clock_.Now();
  for (const auto& h : overview.hosts()) {
    for (const auto& p : h.paths()) {
      if (stopping_.HasBeenNotified()) return;
      HostTarget t;
      t.target = p.target();
      grpc::ServerContext ctx;
      v1::PathHistoryRequest req;
      req.set_host(h.agent().name());
      req.set_target(p.target());
      *req.mutable_since() = Ts(until - absl::Hours(24));
      *req.mutable_until() = Ts(until);
      req.set_limit(kRunLimit);
      req.set_without_hops(true);
      req.set_with_routes(true);
      if (!query_.PathHistory(&ctx, &req, &t.history).ok()) continue;
      (void)RouteChangesInto(h.agent().name(), &t);
      runs += t.history.runs_size();
    }
  }
  spdlog::info("web_routes_warmed hosts={} runs={} seconds={:.1f}",
               overview.hosts_size(), runs,
               absl::ToDoubleSeconds(absl::Now() - t0));
}

bool WebServer::Admit(const httplib::Request& req, httplib::Response& res) {
  // cpp-httplib answers "br" in Accept-Encoding with Brotli at its default
  // quality (11): a 740 kB host page then took 6 s to compress
  // (web_bench.sh, Chromium's first paint). Offer it gzip only. The
  // request is the server's own non-const object, handed here as const.
  {
    auto& headers = const_cast<httplib::Request&>(req).headers;
    const bool gzip = req.get_header_value("Accept-Encoding").find("gzip") !=
                      std::string::npos;
    headers.erase("Accept-Encoding");
    if (gzip) headers.emplace("Accept-Encoding", "gzip");
  }
  if (req.path != "/static/app.css" && req.path != "/static/app.js") {
    res.set_header("Cache-Control", "no-store");
  } else {
    res.set_header("Cache-Control", "no-cache");
  }
  if (!login_) {
    // No login on loopback: refuse a Host that is not loopback, so a web
    // page elsewhere cannot read the dashboard through DNS rebinding.
    if (!IsLoopbackHost(HostPart(req.get_header_value("Host")))) {
      res.status = 421;
      res.set_content("this dashboard answers only to a loopback host name\n",
                      "text/plain");
      return false;
    }
    return true;
  }
  res.set_header("Strict-Transport-Security", "max-age=31536000");
  if (req.path == "/login" || absl::StartsWith(req.path, "/static/")) {
    return true;
  }
  if (sessions_.Touch(CookieToken(req))) return true;
  if (req.method == "GET" && !absl::StartsWith(req.path, "/api/") &&
      !absl::StartsWith(req.path, "/part/")) {
    res.status = 303;
    res.set_header("Location", "/login");
  } else {
    res.status = 401;
    res.set_content(nlohmann::json{{"error", "log in first"}}.dump(),
                    "application/json");
  }
  return false;
}

void WebServer::Login(const httplib::Request& req, httplib::Response& res) {
  const std::string source = req.remote_addr;
  if (absl::Duration wait = limiter_.Wait(source);
      wait > absl::ZeroDuration()) {
    res.status = 429;
    res.set_header("Retry-After",
                   std::to_string(absl::ToInt64Seconds(wait) + 1));
    Page(res, "log in",
         RenderLogin("Too many failed attempts: wait a minute and try again."),
         false);
    spdlog::warn("web_login_limited source={}", source);
    return;
  }
  absl::Status s = CheckWebPassword(options_.password_file,
                                    req.has_param("password")
                                        ? req.get_param_value("password")
                                        : std::string());
  if (!s.ok()) {
    if (absl::IsPermissionDenied(s)) limiter_.Failed(source);
    res.status = absl::IsPermissionDenied(s) ? 403 : 503;
    Page(res, "log in",
         RenderLogin(absl::IsPermissionDenied(s) ? "Wrong password."
                                                 : std::string(s.message())),
         false);
    spdlog::warn("web_login_refused source={} error=\"{}\"", source,
                 std::string(s.message()));
    return;
  }
  limiter_.Succeeded(source);
  const std::string token = sessions_.Create();
  res.set_header("Set-Cookie", absl::StrCat(kCookie, "=", token,
                                            "; Path=/; HttpOnly; Secure; "
                                            "SameSite=Strict"));
  res.status = 303;
  res.set_header("Location", "/");
  spdlog::info("web_login source={}", source);
}

void WebServer::Routes() {
  httplib::Server& s = *server_;
  s.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        return Admit(req, res) ? httplib::Server::HandlerResponse::Unhandled
                               : httplib::Server::HandlerResponse::Handled;
      });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("internal error\n", "text/plain");
      });
  const bool lo = login_;
  s.Get("/static/app.css", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kAppCss, "text/css; charset=utf-8");
  });
  s.Get("/static/app.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kAppJs, "text/javascript; charset=utf-8");
  });
  s.Get("/login", [this](const httplib::Request&, httplib::Response& res) {
    Page(res, "log in",
         login_ ? RenderLogin("") : "<p>No login on loopback.</p>", false);
  });
  s.Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
    if (!login_) {
      res.status = 303;
      res.set_header("Location", "/");
      return;
    }
    Login(req, res);
  });
  s.Post("/logout", [this](const httplib::Request& req,
                           httplib::Response& res) {
    sessions_.End(CookieToken(req));
    res.set_header("Set-Cookie", absl::StrCat(kCookie,
                                              "=; Path=/; Max-Age=0; HttpOnly; "
                                              "Secure; SameSite=Strict"));
    res.status = 303;
    res.set_header("Location", login_ ? "/login" : "/");
  });

  s.Get("/", [this, lo](const httplib::Request&, httplib::Response& res) {
    HomeData d;
    if (absl::Status st = HomeDataInto(&d); !st.ok())
      return Fail(res, st, true, lo);
    Page(res, "home",
         absl::StrCat("<h1>netvigil</h1><p id=\"live-status\" class=\"live\">"
                      "live: updates every 10 s</p><div id=\"live\" "
                      "data-src=\"/part/home\">",
                      RenderHomeLive(d), "</div>"),
         lo);
  });
  s.Get("/part/home",
        [this, lo](const httplib::Request&, httplib::Response& res) {
          HomeData d;
          if (absl::Status st = HomeDataInto(&d); !st.ok())
            return Fail(res, st, true, lo);
          res.set_content(RenderHomeLive(d), "text/html; charset=utf-8");
        });
  s.Get("/api/home",
        [this, lo](const httplib::Request&, httplib::Response& res) {
          HomeData d;
          if (absl::Status st = HomeDataInto(&d); !st.ok())
            return Fail(res, st, false, lo);
          nlohmann::json cells = nlohmann::json::array();
          for (const auto& c : d.overview.speed().cells()) {
            auto b = d.baseline_bps.find({c.client(), c.server()});
            const double base = b == d.baseline_bps.end() ? 0 : b->second;
            const bool failed = c.outcome() != v1::SPEED_OUTCOME_OK;
            const double ratio = base > 0 && !failed ? c.bps() / base : 0;
            cells.push_back({{"client", c.client()},
                             {"server", c.server()},
                             {"bps", c.bps()},
                             {"baseline_bps", base},
                             {"ratio", ratio},
                             {"class", RatioClass(true, failed, ratio)}});
          }
          res.set_content(absl::StrCat("{\"overview\":", Json(d.overview),
                                       ",\"heatmap\":", cells.dump(), "}"),
                          "application/json");
        });

  auto host_handler = [this, lo](bool html) {
    return
        [this, lo, html](const httplib::Request& req, httplib::Response& res) {
          std::string name, range;
          absl::Duration span;
          if (absl::Status st = Param(req, "name", &name); !st.ok()) {
            return Fail(res, st, html, lo);
          }
          if (absl::Status st = RangeOf(req, "1d", &range, &span); !st.ok()) {
            return Fail(res, st, html, lo);
          }
          HostData d;
          if (absl::Status st = HostDataInto(name, range, &d); !st.ok()) {
            return Fail(res, st, html, lo);
          }
          if (!d.known) res.status = 404;
          if (html) return Page(res, name, RenderHost(d), lo);
          nlohmann::json targets = nlohmann::json::array();
          std::string out =
              absl::StrCat("{\"host\":", nlohmann::json(name).dump(),
                           ",\"range\":\"", range, "\",\"targets\":[");
          for (size_t i = 0; i < d.targets.size(); ++i) {
            absl::StrAppend(&out, i ? "," : "", "{\"target\":",
                            nlohmann::json(d.targets[i].target).dump(),
                            ",\"resolution\":\"",
                            ResolutionName(d.targets[i].history.resolution()),
                            "\",\"history\":", Json(d.targets[i].history), "}");
          }
          absl::StrAppend(&out, "],\"alerts\":", Json(d.alerts),
                          ",\"socket_changes\":", Json(d.sockets),
                          ",\"files\":", Json(d.files), "}");
          res.set_content(out, "application/json");
        };
  };
  s.Get("/host", host_handler(true));
  s.Get("/api/host", host_handler(false));

  // A run's hops, the page a click on a timeline's point opens.
  auto run_handler = [this, lo](bool html) {
    return [this, lo, html](const httplib::Request& req,
                            httplib::Response& res) {
      RunData d;
      absl::Duration span;
      int64_t at_us = 0;
      uint64_t seq = 0;
      absl::Status st = Param(req, "host", &d.host);
      if (st.ok()) st = Param(req, "target", &d.target);
      if (st.ok()) st = RangeOf(req, "1d", &d.range, &span);
      if (st.ok() && !absl::SimpleAtoi(req.get_param_value("seq"), &seq)) {
        st = absl::InvalidArgumentError("seq must be a number");
      }
      // Microseconds since 1970, within the years PostgreSQL and
      // Timestamp both hold.
      if (st.ok() && (!absl::SimpleAtoi(req.get_param_value("at"), &at_us) ||
                      at_us < 0 || at_us > int64_t{253402300799} * 1000000)) {
        st = absl::InvalidArgumentError(
            "at must be the run's start in microseconds since 1970");
      }
      if (st.ok()) {
        st =
            RunDataInto(d.host, d.target, seq, absl::FromUnixMicros(at_us), &d);
      }
      if (!st.ok()) return Fail(res, st, html, lo);
      if (!d.found) res.status = 404;
      if (html) {
        return Page(res, absl::StrCat(d.host, " - ", d.target), RenderRun(d),
                    lo);
      }
      if (!d.found) {
        return Fail(res, absl::NotFoundError("no such run"), false, lo);
      }
      res.set_content(Json(d.run), "application/json");
    };
  };
  s.Get("/run", run_handler(true));
  s.Get("/api/run", run_handler(false));

  auto pair_handler = [this, lo](bool html) {
    return
        [this, lo, html](const httplib::Request& req, httplib::Response& res) {
          std::string a, b, range;
          absl::Duration span;
          absl::Status st = Param(req, "a", &a);
          if (st.ok()) st = Param(req, "b", &b);
          if (st.ok()) st = RangeOf(req, "30d", &range, &span);
          PairData d;
          if (st.ok()) st = PairDataInto(a, b, range, &d);
          if (!st.ok()) return Fail(res, st, html, lo);
          if (html)
            return Page(res, absl::StrCat(a, " - ", b), RenderPair(d), lo);
          res.set_content(
              absl::StrCat(
                  "{\"a\":", nlohmann::json(a).dump(),
                  ",\"b\":", nlohmann::json(b).dump(), ",\"range\":\"", range,
                  "\",\"resolution\":\"", ResolutionName(d.ab.resolution()),
                  "\",\"ab\":", Json(d.ab), ",\"ba\":", Json(d.ba), "}"),
              "application/json");
        };
  };
  s.Get("/pair", pair_handler(true));
  s.Get("/api/pair", pair_handler(false));

  auto alerts_handler = [this, lo](bool html) {
    return
        [this, lo, html](const httplib::Request& req, httplib::Response& res) {
          std::string range;
          absl::Duration span;
          AlertsData d;
          absl::Status st = RangeOf(req, "30d", &range, &span);
          if (st.ok()) st = AlertsDataInto(range, &d);
          if (!st.ok()) return Fail(res, st, html, lo);
          if (html) return Page(res, "alerts", RenderAlerts(d), lo);
          res.set_content(Json(d.alerts), "application/json");
        };
  };
  s.Get("/alerts", alerts_handler(true));
  s.Get("/api/alerts", alerts_handler(false));
}

absl::Status WebServer::HomeDataInto(HomeData* d) {
  grpc::ServerContext ctx;
  v1::OverviewRequest req;
  if (auto s = FromGrpc(query_.Overview(&ctx, &req, &d->overview)); !s.ok()) {
    return s;
  }
  for (const auto& c : d->overview.speed().cells()) {
    const absl::Time at = FromProtoTime(c.at());
    const double b = Baseline(c.client(), c.server(), at);
    if (b > 0) d->baseline_bps[{c.client(), c.server()}] = b;
  }
  return absl::OkStatus();
}

double WebServer::Baseline(const std::string& client, const std::string& server,
                           absl::Time latest_at) {
  const absl::Time now = clock_.Now();
  {
    absl::MutexLock l(&baseline_mu_);
    auto it = baselines_.find({client, server});
    if (it != baselines_.end() && it->second.latest_at == latest_at &&
        now - it->second.read_at < options_.baseline_ttl) {
      return it->second.bps;
    }
  }
  grpc::ServerContext ctx;
  v1::SpeedHistoryRequest req;
  req.set_client(client);
  req.set_server(server);
  *req.mutable_since() = Ts(latest_at - absl::Hours(24 * 7));
  // Up to and excluding the latest result: the baseline is what came
  // before it.
  *req.mutable_until() = Ts(latest_at);
  req.set_limit(200);
  v1::SpeedHistoryResponse resp;
  double bps = 0;
  if (query_.SpeedHistory(&ctx, &req, &resp).ok()) {
    std::vector<double> ok;
    for (const auto& r : resp.results()) {
      if (r.outcome() == v1::SPEED_OUTCOME_OK &&
          FromProtoTime(r.started_at()) < latest_at) {
        ok.push_back(r.forward().received_bps());
      }
    }
    if (ok.size() >= 3) {
      std::sort(ok.begin(), ok.end());
      const size_t n = ok.size();
      bps = n % 2 ? ok[n / 2] : (ok[n / 2 - 1] + ok[n / 2]) / 2;
    }
  }
  absl::MutexLock l(&baseline_mu_);
  baselines_[{client, server}] = CachedBaseline{latest_at, now, bps};
  return bps;
}

absl::Status WebServer::HostDataInto(const std::string& host,
                                     const std::string& range, HostData* d) {
  absl::Duration span;
  if (!FindRange(range, &span)) {
    return absl::InvalidArgumentError(
        "range must be one of 3h, 1d, 7d, 30d, 1y");
  }
  d->host = host;
  d->range = range;
  d->until = clock_.Now();
  d->since = d->until - span;
  // The host's events need not wait for the Overview that names its
  // targets: read them beside it (they fill only alerts, sockets, files).
  std::future<absl::Status> events =
      std::async(std::launch::async, [this, d, host] {
        absl::Status first;
        {
          grpc::ServerContext ctx;
          v1::ListAlertsRequest req;
          req.set_host(host);
          *req.mutable_since() = Ts(d->since);
          req.set_limit(1000);
          // No alerts yet (database starting) is no reason to show no
          // paths.
          (void)query_.ListAlerts(&ctx, &req, &d->alerts);
        }
        {
          grpc::ServerContext ctx;
          v1::SocketChangesRequest req;
          req.set_host(host);
          *req.mutable_since() = Ts(d->since);
          first.Update(FromGrpc(query_.SocketChanges(&ctx, &req, &d->sockets)));
        }
        {
          grpc::ServerContext ctx;
          v1::FileAccessRequest req;
          req.set_host(host);
          *req.mutable_since() = Ts(d->since);
          first.Update(FromGrpc(query_.FileAccess(&ctx, &req, &d->files)));
        }
        return first;
      });
  // One target's history and route changes: independent reads, so the
  // targets are read in parallel and a page with five costs about one.
  auto read = [this, d, host](HostTarget* t) {
    grpc::ServerContext ctx;
    v1::PathHistoryRequest req;
    req.set_host(host);
    req.set_target(t->target);
    *req.mutable_since() = Ts(d->since);
    *req.mutable_until() = Ts(d->until);
    req.set_limit(kRunLimit);
    // 30 days and more: hourly aggregates throughout (past the raw
    // retention there is nothing else, and a month of raw runs is 43,200
    // a target). Shorter ranges: every run, each a click away from its
    // hops, read without them (the timeline draws the destination only):
    // a day's runs with their hops were 744 kB a page and most of its
    // time (README "Performance").
    if (d->until - d->since > absl::Hours(24 * 7)) {
      req.set_resolution(v1::RESOLUTION_HOURLY);
    } else {
      req.set_without_hops(true);
      req.set_with_routes(true);
    }
    absl::Status s = FromGrpc(query_.PathHistory(&ctx, &req, &t->history));
    if (!s.ok()) return s;
    return RouteChangesInto(host, t);
  };
  // The host's targets are the Overview's, but the Overview need not be
  // waited for: the targets the host had at its last view are read beside
  // it (one stage less on the page's path: the Overview was 8-25 ms of
  // the 65 a 1 d view took at the collector); a target the Overview names
  // that was not among them is read after it, one it no longer names was
  // read for nothing and is not shown.
  std::map<std::string, std::unique_ptr<HostTarget>> staged;
  std::map<std::string, std::future<absl::Status>> reads;
  auto start = [&](const std::string& target) {
    auto t = std::make_unique<HostTarget>();
    t->target = target;
    reads[target] = std::async(std::launch::async, read, t.get());
    staged[target] = std::move(t);
  };
  {
    absl::MutexLock l(&targets_mu_);
    if (auto it = targets_.find(host); it != targets_.end()) {
      for (const auto& t : it->second) start(t);
    }
  }
  auto wait_all = [&] {
    for (auto& [target, f] : reads) f.wait();
    events.wait();
  };
  v1::OverviewResponse overview;
  {
    grpc::ServerContext ctx;
    v1::OverviewRequest req;
    if (auto s = FromGrpc(query_.Overview(&ctx, &req, &overview)); !s.ok()) {
      wait_all();
      return s;
    }
  }
  std::vector<std::string> targets;
  for (const auto& h : overview.hosts()) {
    if (h.agent().name() != host) continue;
    d->known = true;
    d->agent = h.agent();
    for (const auto& p : h.paths()) {
      if (std::find(targets.begin(), targets.end(), p.target()) ==
          targets.end()) {
        targets.push_back(p.target());
      }
    }
  }
  {
    // Only a host the Overview lists is remembered: a request cannot grow
    // the map with names of its own.
    absl::MutexLock l(&targets_mu_);
    if (d->known) {
      targets_[host] = targets;
    } else {
      targets_.erase(host);
    }
  }
  if (!d->known) {
    wait_all();  // an unknown host's reads fail; nothing to show
    return absl::OkStatus();
  }
  for (const auto& t : targets) {
    if (!staged.count(t)) start(t);
  }
  absl::Status first = events.get();
  for (const auto& t : targets) {
    first.Update(reads[t].get());
    d->targets.push_back(std::move(*staged[t]));
  }
  // Targets read on the last view's word that the Overview no longer
  // lists: their answers are not shown (nor their errors).
  for (auto& [target, f] : reads) {
    if (f.valid()) f.wait();
  }
  return first;
}

absl::Status WebServer::RouteChangesInto(const std::string& host,
                                         HostTarget* t) {
  std::vector<const v1::StoredPathRun*> runs;
  for (const auto& r : t->history.runs()) {
    if (r.seq() != 0 && r.resolution() == v1::RESOLUTION_RAW &&
        r.run().has_started_at()) {
      runs.push_back(&r);
    }
  }
  if (runs.empty()) return absl::OkStatus();
  std::stable_sort(runs.begin(), runs.end(), [](const auto* a, const auto* b) {
    return FromProtoTime(a->run().started_at()) <
           FromProtoTime(b->run().started_at());
  });
  // Runs the collector stored with a route (migration 0018) name it in
  // the answer (PathHistoryRequest.with_routes): no hops are read for
  // them. Older runs (route_id 0) go through the RouteCache, which reads
  // their hops once.
  std::map<uint64_t, Route> by_id;
  for (const auto& pr : t->history.routes()) {
    v1::PathRun hops;
    *hops.mutable_hops() = pr.hops();
    by_id[pr.id()] = RouteOf(hops);
  }
  std::vector<Route> routes(runs.size());
  std::vector<size_t> cached;  // indexes into runs of those without one
  for (size_t i = 0; i < runs.size(); ++i) {
    auto it = by_id.find(runs[i]->route_id());
    if (runs[i]->route_id() != 0 && it != by_id.end()) {
      routes[i] = it->second;
    } else {
      cached.push_back(i);
    }
  }
  std::vector<uint64_t> seqs;
  for (size_t i : cached) seqs.push_back(runs[i]->seq());
  std::vector<size_t> missing;  // indexes into seqs
  std::vector<Route> found =
      seqs.empty() ? std::vector<Route>()
                   : routes_.Find(host, t->target, seqs, &missing);
  for (size_t k = 0; k < found.size(); ++k) routes[cached[k]] = found[k];
  if (!missing.empty()) {
    // The runs not seen before, with their hops, in one read over their
    // span (on a page seen before: the few runs since).
    grpc::ServerContext ctx;
    v1::PathHistoryRequest req;
    req.set_host(host);
    req.set_target(t->target);
    *req.mutable_since() =
        Ts(FromProtoTime(runs[cached[missing.front()]]->run().started_at()) -
           absl::Milliseconds(1));
    *req.mutable_until() =
        Ts(FromProtoTime(runs[cached[missing.back()]]->run().started_at()) +
           absl::Milliseconds(1));
    // AUTO, not RAW: RAW refuses a range that starts before the raw
    // retention by a moment, as the oldest run of a 7 d view may. The
    // span holds only raw runs, far fewer than max_points.
    req.set_max_points(100000);
    req.set_limit(kRunLimit);
    v1::PathHistoryResponse full;
    if (absl::Status s = FromGrpc(query_.PathHistory(&ctx, &req, &full));
        !s.ok()) {
      return s;
    }
    std::map<uint64_t, Route> read;
    for (const auto& r : full.runs()) {
      if (r.seq() != 0) read[r.seq()] = RouteOf(r.run());
    }
    // A run the read did not return although it was in the span (its
    // stored result is gone) has no route; it is remembered as such unless
    // the answer was cut at the limit.
    const bool complete = full.runs_size() < static_cast<int>(kRunLimit);
    for (size_t k : missing) {
      auto it = read.find(seqs[k]);
      if (it == read.end() && !complete) continue;
      if (it != read.end()) routes[cached[k]] = it->second;
      routes_.Put(host, t->target, seqs[k], routes[cached[k]]);
    }
  }
  const Route* prev = nullptr;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (prev != nullptr && RouteChanged(*prev, routes[i])) {
      t->route_changes.push_back(FromProtoTime(runs[i]->run().started_at()));
    }
    if (!routes[i].empty()) prev = &routes[i];
  }
  return absl::OkStatus();
}

absl::Status WebServer::RunDataInto(const std::string& host,
                                    const std::string& target, uint64_t seq,
                                    absl::Time at, RunData* d) {
  grpc::ServerContext ctx;
  v1::PathHistoryRequest req;
  req.set_host(host);
  req.set_target(target);
  // A moment around `at`: a run's start is kept to the microsecond, and
  // two runs of one target never start within a millisecond.
  *req.mutable_since() = Ts(at - absl::Milliseconds(1));
  *req.mutable_until() = Ts(at + absl::Milliseconds(1));
  req.set_resolution(v1::RESOLUTION_RAW);
  req.set_limit(100);
  v1::PathHistoryResponse resp;
  absl::Status s = FromGrpc(query_.PathHistory(&ctx, &req, &resp));
  // An unknown host or target, or a range past the raw retention: no run.
  if (absl::IsNotFound(s) || absl::IsOutOfRange(s)) return absl::OkStatus();
  if (!s.ok()) return s;
  for (auto& r : *resp.mutable_runs()) {
    if (r.seq() == seq) {
      d->found = true;
      d->run = std::move(r);
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status WebServer::PairDataInto(const std::string& a, const std::string& b,
                                     const std::string& range, PairData* d) {
  absl::Duration span;
  FindRange(range, &span);
  d->a = a;
  d->b = b;
  d->range = range;
  d->until = clock_.Now();
  d->since = d->until - span;
  for (auto [client, server, out] :
       {std::make_tuple(&a, &b, &d->ab), std::make_tuple(&b, &a, &d->ba)}) {
    grpc::ServerContext ctx;
    v1::SpeedHistoryRequest req;
    req.set_client(*client);
    req.set_server(*server);
    *req.mutable_since() = Ts(d->since);
    *req.mutable_until() = Ts(d->until);
    req.set_limit(kRunLimit);
    absl::Status s = FromGrpc(query_.SpeedHistory(&ctx, &req, out));
    // An external target never runs a client: no b -> a history.
    if (!s.ok() && out == &d->ba) continue;
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status WebServer::AlertsDataInto(const std::string& range,
                                       AlertsData* d) {
  absl::Duration span;
  FindRange(range, &span);
  d->range = range;
  d->until = clock_.Now();
  d->since = d->until - span;
  grpc::ServerContext ctx;
  v1::ListAlertsRequest req;
  *req.mutable_since() = Ts(d->since);
  req.set_limit(2000);
  return FromGrpc(query_.ListAlerts(&ctx, &req, &d->alerts));
}

}  // namespace netvigil::collector::web
