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
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "common/utf8.h"
#include "yaml-cpp/yaml.h"

namespace netvigil {
namespace {

// Walks one YAML mapping, remembering which keys were read so that the rest
// can be reported as unknown. The first error wins; later reads are no-ops.
class Fields {
 public:
  // `where`, when given, learns the place of every field read.
  Fields(const YAML::Node& node, std::string path, const std::string& source,
         absl::Status* error,
         std::map<std::string, std::string>* where = nullptr)
      : node_(node),
        path_(std::move(path)),
        source_(source),
        error_(error),
        where_(where) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      Fail(node_, "", "expected a mapping of keys");
    }
    RefuseDuplicateKeys();
  }

  bool ok() const { return error_->ok(); }

  // The child mapping `key` (possibly absent: every field then defaults).
  Fields Map(const std::string& key) {
    return Fields(Child(key), Join(key), source_, error_, where_);
  }

  YAML::Node Child(const std::string& key) {
    seen_.insert(key);
    if (!ok() || !node_ || !node_.IsMap()) return YAML::Node();
    YAML::Node n = node_[key];
    if (where_ != nullptr && n) {
      std::string w = Where(n);
      w.resize(w.size() - 2);  // without the ": "
      (*where_)[Join(key)] = std::move(w);
    }
    return n;
  }

  void String(const std::string& key, std::string* out) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    if (!n.IsScalar()) return Fail(n, key, "expected a string");
    // Strings reach the agents in proto3 messages, which must be UTF-8.
    if (!IsValidUtf8(n.Scalar())) return Fail(n, key, "is not valid UTF-8");
    *out = n.Scalar();
  }

  void Bool(const std::string& key, bool* out) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    bool v;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      return Fail(n, key,
                  absl::StrCat("expected true or false, got '", Text(n), "'"));
    }
    *out = v;
  }

  void Uint(const std::string& key, uint64_t lo, uint64_t hi, uint32_t* out) {
    uint64_t v = *out;
    Uint64(key, lo, hi, &v);
    *out = static_cast<uint32_t>(v);
  }

  void Uint64(const std::string& key, uint64_t lo, uint64_t hi, uint64_t* out) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    const std::string text = Text(n);
    uint64_t v = 0;
    bool digits = n.IsScalar() && !text.empty() &&
                  text.find_first_not_of("0123456789") == std::string::npos &&
                  text.size() < 20;
    if (!digits) {
      return Fail(n, key,
                  absl::StrCat("expected a whole number, got '", text, "'"));
    }
    v = std::stoull(text);
    if (v < lo || v > hi) {
      return Fail(
          n, key,
          absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
    }
    *out = v;
  }

  // Durations are written as "30s", "5m", "1h30m", "250ms".
  void Duration(const std::string& key, absl::Duration lo, absl::Duration hi,
                absl::Duration* out) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    absl::Duration d;
    if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) ||
        n.Scalar() == "inf" || n.Scalar() == "-inf") {
      return Fail(n, key,
                  absl::StrCat("expected a duration such as 30s, 5m or 1h, "
                               "got '",
                               Text(n), "'"));
    }
    if (d < lo || d > hi) {
      return Fail(n, key,
                  absl::StrCat("must be between ", absl::FormatDuration(lo),
                               " and ", absl::FormatDuration(hi), ", got ",
                               absl::FormatDuration(d)));
    }
    *out = d;
  }

  // A sequence; each element is handed to `each` with its own path.
  template <typename F>
  void Sequence(const std::string& key, F each) {
    YAML::Node n = Child(key);
    if (!ok() || !n || n.IsNull()) return;
    if (!n.IsSequence()) return Fail(n, key, "expected a list");
    for (size_t i = 0; i < n.size() && ok(); ++i) {
      each(n[i], absl::StrCat(Join(key), "[", i, "]"));
    }
  }

  // Reports the first key that no reader asked for.
  void Finish() {
    if (!ok() || !node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (seen_.count(key) == 0) {
        std::vector<std::string> known(seen_.begin(), seen_.end());
        *error_ = absl::InvalidArgumentError(
            absl::StrCat(Where(kv.first), "unknown field '", Join(key),
                         "' (known here: ", absl::StrJoin(known, ", "), ")"));
        return;
      }
    }
  }

  // yaml-cpp keeps both entries of a key given twice and `node[key]`
  // answers with the first, so a later line that looks like it wins is
  // silently ignored: refused, naming both lines.
  void RefuseDuplicateKeys() {
    if (!ok() || !node_ || !node_.IsMap()) return;
    std::map<std::string, YAML::Mark> first;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) {
        return Fail(kv.first, "", "a key must be a plain word");
      }
      auto [it, inserted] = first.emplace(kv.first.Scalar(), kv.first.Mark());
      if (!inserted) {
        return Fail(kv.first, kv.first.Scalar(),
                    absl::StrCat("given twice, on line ", it->second.line + 1,
                                 " and on line ", kv.first.Mark().line + 1,
                                 "; keep one"));
      }
    }
  }

  void Fail(const YAML::Node& n, const std::string& key,
            const std::string& what) {
    if (!ok()) return;
    *error_ = absl::InvalidArgumentError(absl::StrCat(
        Where(n), "field '", key.empty() ? path_ : Join(key), "': ", what));
  }

  std::string Where(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return absl::StrCat(source_, ": ");
    return absl::StrCat(source_, ":", m.line + 1, ":", m.column + 1, ": ");
  }

  std::string Join(const std::string& key) const {
    return path_.empty() ? key : absl::StrCat(path_, ".", key);
  }

  const std::string& source() const { return source_; }
  absl::Status* error() const { return error_; }
  std::map<std::string, std::string>* where() const { return where_; }

 private:
  static std::string Text(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    return "nothing";
  }

  YAML::Node node_;
  std::string path_;
  const std::string& source_;
  absl::Status* error_;
  std::map<std::string, std::string>* where_;
  std::set<std::string> seen_;
};

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

void ParsePath(Fields f, CollectorConfig& c) {
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
    Fields t(n, path, f.source(), f.error(), f.where());
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

void ParseSockets(Fields f, CollectorConfig& c) {
  v1::SocketsPlan& s = *c.plan.mutable_sockets();
  bool enabled = s.enabled();
  f.Bool("enabled", &enabled);
  s.set_enabled(enabled);
  absl::Duration every = absl::Seconds(60);
  f.Duration("every", absl::Seconds(1), absl::Hours(24), &every);
  *s.mutable_every() = ToProtoDuration(every);
  f.Finish();
}

void ParseFiles(Fields f, CollectorConfig& c) {
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
    Fields d(YAML::Node(), path, f.source(), f.error());
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

void ParseSpeed(Fields f, CollectorConfig& c) {
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
        Fields t(n, path, f.source(), f.error(), f.where());
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
              L{"listen.query_tcp", &c.query_tcp, "", 0}}) {
    if (l.value->empty()) {
      if (std::string(l.field) == "listen.agents") {
        return absl::InvalidArgumentError(
            absl::StrCat(WhereInConfig(c, {l.field}), "field '", l.field,
                         "' must not be empty"));
      }
      continue;  // enroll and query_tcp: empty means none
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
  Fields top(root, "", c.source, &error, &c.where);
  {
    Fields db = top.Map("database");
    db.String("dsn", &c.database_dsn);
    db.Finish();
  }
  {
    Fields l = top.Map("listen");
    l.String("agents", &c.agent_listen);
    l.String("query_socket", &c.query_socket);
    l.String("query_tcp", &c.query_tcp);
    l.String("enroll", &c.enroll_listen);
    l.Finish();
  }
  top.String("state_dir", &c.state_dir);
  {
    Fields p = top.Map("pki");
    p.Sequence(
        "server_names", [&](const YAML::Node& n, const std::string& path) {
          Fields d(YAML::Node(), path, p.source(), p.error());
          if (!n.IsScalar() || !IsDnsName(n.Scalar())) {
            return d.Fail(n, "", "expected a DNS name such as nas.home.arpa");
          }
          c.pki_server_names.push_back(n.Scalar());
        });
    p.Sequence("server_addresses",
               [&](const YAML::Node& n, const std::string& path) {
                 Fields d(YAML::Node(), path, p.source(), p.error());
                 if (!n.IsScalar() || !IsIpLiteral(n.Scalar())) {
                   return d.Fail(n, "", "expected an IPv4 or IPv6 address");
                 }
                 c.pki_server_addresses.push_back(n.Scalar());
               });
    p.Finish();
  }
  {
    Fields a = top.Map("agents");
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
    Fields p = top.Map("probes");
    ParsePath(p.Map("path"), c);
    ParseSockets(p.Map("sockets"), c);
    ParseFiles(p.Map("files"), c);
    ParseSpeed(p.Map("speed"), c);
    p.Finish();
  }
  c.analysis = top.Child("analysis");
  {
    Fields r = top.Map("retention");
    r.Uint("raw_days", 1, 3650, &c.raw_days);
    r.Uint("hourly_days", 1, 36500, &c.hourly_days);
    r.Finish();
    if (error.ok() && c.hourly_days < c.raw_days) {
      error = absl::InvalidArgumentError(absl::StrCat(
          WhereInConfig(c, {"retention.hourly_days", "retention.raw_days"}),
          "field 'retention.hourly_days' (", c.hourly_days,
          ") must not be less than retention.raw_days (", c.raw_days, ")"));
    }
  }
  {
    Fields a = top.Map("alerts");
    a.String("log_file", &c.alert_log);
    a.Finish();
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
