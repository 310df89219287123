#include "common/collector_config.h"

#include <arpa/inet.h>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/notify_config.h"
#include "common/proto_time.h"
#include "common/utf8.h"
#include "common/yaml_fields.h"
#include "yaml-cpp/yaml.h"

namespace netvigil {
namespace {

bool IsAbsolutePath(const std::string& p) { return !p.empty() && p[0] == '/'; }

// Letters, digits, '-' and '.', labels not starting or ending with '-'.
bool IsDnsName(const std::string& n) {
  if (n.empty() || n.size() > 253 || n.front() == '.' || n.back() == '.') {
    return false;
  }
  size_t label = 0;
  char prev = '.';
  for (char ch : n) {
    if (ch == '.') {
      if (prev == '.' || prev == '-') return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(ch)) ||
               (ch == '-' && prev != '.')) {
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = ch;
  }
  return prev != '-';
}

bool IsIpLiteral(const std::string& a) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, a.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

void ParsePath(YamlFields f, CollectorConfig& c) {
  v1::PathPlan& p = *c.plan.mutable_path();
  bool enabled = p.enabled();
  f.Bool("enabled", &enabled);
  p.set_enabled(enabled);
  absl::Duration every = absl::Seconds(60), interval = absl::Seconds(1);
  f.Duration("every", absl::Seconds(1), absl::Hours(24), &every);
  f.Duration("interval", absl::Milliseconds(10), absl::Seconds(60), &interval);
  uint32_t count = p.count(), max_ttl = p.max_ttl(), size = p.payload_bytes();
  f.Uint("count", 1, 1000, &count);
  f.Uint("max_ttl", 1, 64, &max_ttl);
  f.Uint("payload_bytes", 0, 1400, &size);
  bool resolve = p.resolve_names();
  f.Bool("resolve_names", &resolve);
  p.set_count(count);
  p.set_max_ttl(max_ttl);
  p.set_payload_bytes(size);
  p.set_resolve_names(resolve);
  *p.mutable_every() = ToProtoDuration(every);
  *p.mutable_round_interval() = ToProtoDuration(interval);
  std::set<std::string> names;
  f.Sequence("targets", [&](const YAML::Node& n, const std::string& path) {
    YamlFields t = f.Nested(n, path);
    if (!n.IsMap()) {
      return t.Fail(n, "", "expected a mapping with name and address");
    }
    v1::PathTarget target;
    t.String("name", target.mutable_name());
    t.String("address", target.mutable_address());
    if (t.ok() && target.address().empty()) {
      t.Fail(n, "address", "is required");
    }
    if (target.name().empty()) target.set_name(target.address());
    if (t.ok() && !names.insert(target.name()).second) {
      t.Fail(n, "name",
             absl::StrCat("duplicate target name '", target.name(), "'"));
    }
    t.Finish();
    *p.add_targets() = target;
  });
  f.Finish();
}

void ParseSockets(YamlFields f, CollectorConfig& c) {
  v1::SocketsPlan& s = *c.plan.mutable_sockets();
  bool enabled = s.enabled();
  f.Bool("enabled", &enabled);
  s.set_enabled(enabled);
  absl::Duration every = absl::Seconds(60);
  f.Duration("every", absl::Seconds(1), absl::Hours(24), &every);
  *s.mutable_every() = ToProtoDuration(every);
  f.Finish();
}

void ParseFiles(YamlFields f, CollectorConfig& c) {
  v1::FilesPlan& p = *c.plan.mutable_files();
  bool enabled = p.enabled();
  f.Bool("enabled", &enabled);
  p.set_enabled(enabled);
  absl::Duration every = absl::Minutes(5);
  f.Duration("every", absl::Seconds(1), absl::Hours(24), &every);
  *p.mutable_every() = ToProtoDuration(every);
  bool given = false;
  std::vector<std::string> dirs;
  f.Sequence("watched_dirs", [&](const YAML::Node& n, const std::string& path) {
    given = true;
    YamlFields d = f.Nested(YAML::Node(), path);
    if (!n.IsScalar() || !IsAbsolutePath(n.Scalar()) ||
        !IsValidUtf8(n.Scalar())) {
      return d.Fail(n, "", "expected an absolute folder path (UTF-8)");
    }
    dirs.push_back(n.Scalar());
  });
  if (given) {
    p.clear_watched_dirs();
    for (auto& d : dirs) p.add_watched_dirs(d);
  }
  f.Finish();
}

void ParseSpeed(YamlFields f, CollectorConfig& c) {
  v1::SpeedPlan& s = *c.plan.mutable_speed();
  bool enabled = s.enabled();
  f.Bool("enabled", &enabled);
  s.set_enabled(enabled);
  f.Duration("period", absl::Seconds(10), absl::Hours(24 * 7), &c.speed_period);
  f.Duration("duration", absl::Seconds(1), absl::Seconds(60),
             &c.speed_test_duration);
  f.Duration("slot_overhead", absl::ZeroDuration(), absl::Minutes(10),
             &c.speed_slot_overhead);
  f.Uint("max_concurrent_tests", 1, 64, &c.max_concurrent_speed_tests);
  f.Uint("port", 1, 65535, &c.speed_port);
  uint64_t bitrate = s.max_bitrate_bps();
  f.Uint64("max_bitrate_bps", 0, 100'000'000'000ull, &bitrate);
  s.set_max_bitrate_bps(bitrate);
  absl::Duration max_duration = absl::Seconds(30);
  // Agents refuse anything longer than 60 s whatever the plan says
  // (agent/probe_registry.h, kMaxSpeedTestDuration).
  f.Duration("max_duration", absl::Seconds(1), absl::Seconds(60),
             &max_duration);
  *s.mutable_max_duration() = ToProtoDuration(max_duration);
  std::set<std::string> names;
  f.Sequence(
      "external_targets", [&](const YAML::Node& n, const std::string& path) {
        YamlFields t = f.Nested(n, path);
        if (!n.IsMap()) {
          return t.Fail(n, "", "expected a mapping with name, address, port");
        }
        v1::ExternalSpeedTarget target;
        t.String("name", target.mutable_name());
        t.String("address", target.mutable_address());
        uint32_t port = 5201;
        t.Uint("port", 1, 65535, &port);
        target.set_port(port);
        if (t.ok() && target.address().empty())
          t.Fail(n, "address", "is required");
        if (target.name().empty()) target.set_name(target.address());
        if (t.ok() && !names.insert(target.name()).second) {
          t.Fail(n, "name",
                 absl::StrCat("duplicate target name '", target.name(), "'"));
        }
        t.Finish();
        *s.add_external_targets() = target;
      });
  f.Finish();
  if (f.ok() && c.speed_test_duration > max_duration) {
    *f.error() = absl::InvalidArgumentError(absl::StrCat(
        WhereInConfig(c,
                      {"probes.speed.duration", "probes.speed.max_duration"}),
        "field 'probes.speed.duration' (",
        absl::FormatDuration(c.speed_test_duration),
        ") exceeds probes.speed.max_duration (",
        absl::FormatDuration(max_duration), ")"));
  }
  const absl::Duration slot = c.speed_test_duration + c.speed_slot_overhead;
  if (f.ok() && s.enabled() && c.speed_period < slot) {
    *f.error() = absl::InvalidArgumentError(absl::StrCat(
        WhereInConfig(c, {"probes.speed.period", "probes.speed.duration",
                          "probes.speed.slot_overhead"}),
        "field 'probes.speed.period' (", absl::FormatDuration(c.speed_period),
        ") is shorter than one test's slot (probes.speed.duration ",
        absl::FormatDuration(c.speed_test_duration), " + slot_overhead ",
        absl::FormatDuration(c.speed_slot_overhead), " = ",
        absl::FormatDuration(slot), "): no speed test could ever run"));
  }
}

// "HOST:PORT" or "[IPV6]:PORT" with a port from 1 to 65535. gRPC would take
// "0.0.0.0:99999" and bind another port (the number wrapped), and port 0
// (any free port) leaves agents nothing to dial.
bool ParseListen(const std::string& text, std::string* host, uint32_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string h = text.substr(0, colon);
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 ||
      p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const uint32_t v = static_cast<uint32_t>(std::stoul(p));
  if (v < 1 || v > 65535) return false;
  if (h.front() == '[') {
    if (h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET6, h.c_str(), buf) != 1) return false;
  } else if (h.find(':') != std::string::npos ||
             (!IsIpLiteral(h) && !IsDnsName(h))) {
    return false;  // "fd00::1:7413": is 7413 the port or part of the address?
  }
  *host = h;
  *port = v;
  return true;
}

// 127.0.0.0/8 or ::1, as literals (a name could resolve anywhere).
bool IsLoopback(const std::string& host) {
  unsigned char v4[sizeof(in_addr)];
  if (inet_pton(AF_INET, host.c_str(), v4) == 1) return v4[0] == 127;
  in6_addr v6;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 &&
         IN6_IS_ADDR_LOOPBACK(&v6);
}

bool IsWildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]";
}

// listen.agents, listen.enroll and listen.query_tcp: well-formed, and no two
// on one port of one address (the second bind would fail at start).
absl::Status CheckListeners(const CollectorConfig& c) {
  struct L {
    const char* field;
    const std::string* value;
    std::string host;
    uint32_t port = 0;
  };
  std::vector<L> given;
  for (L l : {L{"listen.agents", &c.agent_listen, "", 0},
              L{"listen.enroll", &c.enroll_listen, "", 0},
              L{"listen.query_tcp", &c.query_tcp, "", 0},
              L{"listen.metrics", &c.metrics_listen, "", 0},
              L{"listen.web", &c.web_listen, "", 0}}) {
    if (l.value->empty()) {
      if (std::string(l.field) == "listen.agents") {
        return absl::InvalidArgumentError(
            absl::StrCat(WhereInConfig(c, {l.field}), "field '", l.field,
                         "' must not be empty"));
      }
      continue;  // enroll, query_tcp, metrics and web: empty means none
    }
    if (!ParseListen(*l.value, &l.host, &l.port)) {
      return absl::InvalidArgumentError(absl::StrCat(
          WhereInConfig(c, {l.field}), "field '", l.field,
          "': expected HOST:PORT with a port from 1 to 65535 ([ADDRESS]:PORT "
          "for IPv6), got '",
          *l.value, "'"));
    }
    for (const L& o : given) {
      if (o.port == l.port &&
          (o.host == l.host || IsWildcard(o.host) || IsWildcard(l.host))) {
        return absl::InvalidArgumentError(
            absl::StrCat(WhereInConfig(c, {l.field}), "field '", l.field, "' (",
                         *l.value, ") takes the same port as ", o.field, " (",
                         *o.value, "): each listener needs a port of its own"));
      }
    }
    if (std::string(l.field) == "listen.metrics" && !IsLoopback(l.host)) {
      return absl::InvalidArgumentError(absl::StrCat(
          WhereInConfig(c, {l.field}), "field 'listen.metrics' (", *l.value,
          "): /metrics has no TLS and no credential and names every host and "
          "target, so it listens on a loopback address only (127.0.0.1, "
          "[::1]); publish it through a TLS reverse proxy or an SSH tunnel"));
    }
    given.push_back(std::move(l));
  }
  return absl::OkStatus();
}

}  // namespace

std::string WhereInConfig(const CollectorConfig& config,
                          std::initializer_list<absl::string_view> fields) {
  for (absl::string_view f : fields) {
    auto it = config.where.find(std::string(f));
    if (it != config.where.end()) return absl::StrCat(it->second, ": ");
  }
  return absl::StrCat(config.source, ": ");
}

CollectorConfig DefaultCollectorConfig() {
  CollectorConfig c;
  *c.plan.mutable_heartbeat_interval() = ToProtoDuration(c.heartbeat_interval);
  v1::PathPlan& path = *c.plan.mutable_path();
  path.set_enabled(true);
  *path.mutable_every() = ToProtoDuration(absl::Seconds(60));
  path.set_count(10);
  *path.mutable_round_interval() = ToProtoDuration(absl::Seconds(1));
  path.set_max_ttl(30);
  path.set_payload_bytes(56);
  c.plan.mutable_sockets()->set_enabled(true);
  *c.plan.mutable_sockets()->mutable_every() =
      ToProtoDuration(absl::Seconds(60));
  v1::FilesPlan& files = *c.plan.mutable_files();
  files.set_enabled(true);
  *files.mutable_every() = ToProtoDuration(absl::Minutes(5));
  files.add_watched_dirs("/home");
  files.add_watched_dirs("/root");
  v1::SpeedPlan& speed = *c.plan.mutable_speed();
  speed.set_enabled(true);
  *speed.mutable_max_duration() = ToProtoDuration(absl::Seconds(30));
  return c;
}

absl::StatusOr<CollectorConfig> ParseCollectorConfig(absl::string_view yaml,
                                                     absl::string_view source) {
  CollectorConfig c = DefaultCollectorConfig();
  c.source = std::string(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1,
                     ": not valid YAML: ", e.msg));
  }
  // An empty file (or one of comments only) is most likely a mistake, a
  // file truncated or written by a tool that failed; running every default
  // silently would hide it. `{}` says "all defaults" on purpose.
  if (!root || root.IsNull()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": the file is empty (no YAML document): write the keys to change "
        "(deploy/collector.yaml lists every one), or '{}' to run with every "
        "default"));
  }
  absl::Status error;
  YamlFields top(root, "", c.source, &error, &c.where);
  {
    YamlFields db = top.Map("database");
    db.String("dsn", &c.database_dsn);
    db.String("read_dsn", &c.database_read_dsn);
    db.Finish();
  }
  {
    YamlFields l = top.Map("listen");
    l.String("agents", &c.agent_listen);
    l.String("query_socket", &c.query_socket);
    l.String("query_tcp", &c.query_tcp);
    l.String("enroll", &c.enroll_listen);
    l.String("metrics", &c.metrics_listen);
    l.String("web", &c.web_listen);
    l.Finish();
  }
  top.String("state_dir", &c.state_dir);
  {
    YamlFields p = top.Map("pki");
    p.Sequence(
        "server_names", [&](const YAML::Node& n, const std::string& path) {
          YamlFields d = p.Nested(YAML::Node(), path);
          if (!n.IsScalar() || !IsDnsName(n.Scalar())) {
            return d.Fail(n, "", "expected a DNS name such as nas.home.arpa");
          }
          c.pki_server_names.push_back(n.Scalar());
        });
    p.Sequence("server_addresses",
               [&](const YAML::Node& n, const std::string& path) {
                 YamlFields d = p.Nested(YAML::Node(), path);
                 if (!n.IsScalar() || !IsIpLiteral(n.Scalar())) {
                   return d.Fail(n, "", "expected an IPv4 or IPv6 address");
                 }
                 c.pki_server_addresses.push_back(n.Scalar());
               });
    p.Finish();
  }
  {
    YamlFields a = top.Map("agents");
    a.Duration("heartbeat_interval", absl::Milliseconds(100), absl::Minutes(10),
               &c.heartbeat_interval);
    a.Duration("heartbeat_timeout", absl::Milliseconds(300), absl::Hours(1),
               &c.heartbeat_timeout);
    a.Finish();
    if (error.ok() && c.heartbeat_timeout < 2 * c.heartbeat_interval) {
      error = absl::InvalidArgumentError(absl::StrCat(
          WhereInConfig(
              c, {"agents.heartbeat_timeout", "agents.heartbeat_interval"}),
          "field 'agents.heartbeat_timeout' (",
          absl::FormatDuration(c.heartbeat_timeout),
          ") must be at least twice agents.heartbeat_interval (",
          absl::FormatDuration(c.heartbeat_interval), ")"));
    }
    *c.plan.mutable_heartbeat_interval() =
        ToProtoDuration(c.heartbeat_interval);
  }
  {
    YamlFields p = top.Map("probes");
    ParsePath(p.Map("path"), c);
    ParseSockets(p.Map("sockets"), c);
    ParseFiles(p.Map("files"), c);
    ParseSpeed(p.Map("speed"), c);
    p.Finish();
  }
  c.analysis = top.Child("analysis");
  {
    YamlFields r = top.Map("retention");
    r.Uint("raw_days", 1, 3650, &c.raw_days);
    r.Uint("hourly_days", 1, 36500, &c.hourly_days);
    r.Uint("results_days", 1, 3650, &c.results_days);
    r.Uint("events_days", 1, 36500, &c.events_days);
    r.Uint("gone_facts_days", 1, 36500, &c.gone_facts_days);
    r.Uint("resolved_alerts_days", 1, 36500, &c.resolved_alerts_days);
    r.Uint("gaps_days", 1, 36500, &c.gaps_days);
    r.Uint("outbox_days", 1, 36500, &c.outbox_days);
    r.Finish();
    if (error.ok() && c.hourly_days < c.raw_days) {
      error = absl::InvalidArgumentError(absl::StrCat(
          WhereInConfig(c, {"retention.hourly_days", "retention.raw_days"}),
          "field 'retention.hourly_days' (", c.hourly_days,
          ") must not be less than retention.raw_days (", c.raw_days, ")"));
    }
  }
  {
    YamlFields a = top.Map("alerts");
    a.String("log_file", &c.alert_log);
    a.Finish();
  }
  {
    YamlFields w = top.Map("web");
    w.Duration("session_idle", absl::Seconds(1), absl::Hours(24 * 30),
               &c.web_session_idle);
    w.String("password_file", &c.web_password_file);
    w.Finish();
  }
  {
    YamlFields n = top.Map("notify");
    ParseNotifyConfig(n, &c.notify);
  }
  top.Finish();
  if (!error.ok()) return error;
  if (c.database_dsn.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(WhereInConfig(c, {"database.dsn"}),
                     "field 'database.dsn' must not be empty"));
  }
  if (c.query_socket.empty() && c.query_tcp.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        WhereInConfig(c, {"listen.query_socket", "listen.query_tcp"}),
        "field 'listen.query_socket': the Query service needs a "
        "UNIX socket or listen.query_tcp"));
  }
  if (absl::Status s = CheckListeners(c); !s.ok()) return s;
  return c;
}

absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file ", path, ": ", strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseCollectorConfig(buf.str(), path);
}

}  // namespace netvigil
