#include "collector/ingest/validation.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::collector {
namespace {

absl::Status Invalid(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckString(const std::string& field, const std::string& v,
                         size_t max) {
  if (v.size() > max) {
    return Invalid(
        field, absl::StrCat("longer than ", max, " bytes (", v.size(), ")"));
  }
  // Valid UTF-8 (proto3 parsing checks it) but not storable: PostgreSQL
  // text cannot hold a NUL, and a result the store cannot write would be
  // resent forever.
  if (v.find('\0') != std::string::npos) return Invalid(field, "contains NUL");
  return absl::OkStatus();
}

// An enum value this collector knows (stored as smallint).
absl::Status CheckEnum(const std::string& field, bool known, int value) {
  if (!known) return Invalid(field, absl::StrCat("unknown value ", value));
  return absl::OkStatus();
}

template <typename Repeated>
absl::Status CheckCount(const std::string& field, const Repeated& v,
                        size_t max) {
  if (static_cast<size_t>(v.size()) > max) {
    return Invalid(
        field, absl::StrCat("more than ", max, " entries (", v.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckTimestamp(const std::string& field,
                            const google::protobuf::Timestamp& t,
                            int64_t now_unix_s, const Limits& limits) {
  if (t.seconds() == 0 && t.nanos() == 0) return Invalid(field, "missing");
  if (t.nanos() < 0 || t.nanos() > 999'999'999) {
    return Invalid(field, "nanos out of range");
  }
  if (t.seconds() > now_unix_s + limits.max_future_skew_s) {
    return Invalid(field, "in the future beyond the allowed clock skew");
  }
  if (t.seconds() < now_unix_s - limits.max_age_s) {
    return Invalid(field, "older than the oldest result kept");
  }
  return absl::OkStatus();
}

// A secondary time (started_at, taken_at, ...): absent, or a time that
// google.protobuf.Timestamp allows (years 1..9999), which the store's
// microsecond arithmetic and PostgreSQL's timestamptz hold.
absl::Status CheckOptionalTimestamp(const std::string& field, bool present,
                                    const google::protobuf::Timestamp& t) {
  using google::protobuf::util::TimeUtil;
  if (!present) return absl::OkStatus();
  if (t.seconds() < TimeUtil::kTimestampMinSeconds ||
      t.seconds() > TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return Invalid(field, "not a valid time");
  }
  return absl::OkStatus();
}

#define NV_CHECK(expr)           \
  do {                           \
    absl::Status nv_s = (expr);  \
    if (!nv_s.ok()) return nv_s; \
  } while (0)

absl::Status ValidateProcess(const std::string& f, const v1::ProcessRef& p,
                             const Limits& l) {
  NV_CHECK(CheckString(f + ".name", p.name(), l.max_short_string));
  NV_CHECK(CheckString(f + ".exe", p.exe(), l.max_path));
  return absl::OkStatus();
}

absl::Status ValidateHop(const std::string& f, const v1::PathHop& h,
                         const Limits& l) {
  NV_CHECK(CheckCount(f + ".addresses", h.addresses(), l.max_addresses));
  for (const auto& a : h.addresses()) {
    NV_CHECK(
        CheckString(f + ".addresses.address", a.address(), l.max_short_string));
    NV_CHECK(CheckString(f + ".addresses.hostname", a.hostname(),
                         l.max_short_string));
  }
  NV_CHECK(CheckCount(f + ".errors", h.errors(), l.max_addresses));
  for (const std::string& e : h.errors()) {
    NV_CHECK(CheckString(f + ".errors", e, l.max_short_string));
  }
  if (h.received() > h.sent()) return Invalid(f, "more received than sent");
  if (h.loss_percent() < 0 || h.loss_percent() > 100) {
    return Invalid(f + ".loss_percent", "outside 0..100");
  }
  return absl::OkStatus();
}

absl::Status ValidatePath(const v1::PathRun& run, const Limits& l) {
  NV_CHECK(CheckString("path.target", run.target(), l.max_short_string));
  NV_CHECK(CheckString("path.resolved_address", run.resolved_address(),
                       l.max_short_string));
  NV_CHECK(CheckString("path.error", run.error(), l.max_path));
  NV_CHECK(CheckString("path.socket_kind", run.socket_kind(), 32));
  NV_CHECK(CheckOptionalTimestamp("path.started_at", run.has_started_at(),
                                  run.started_at()));
  NV_CHECK(CheckOptionalTimestamp("path.finished_at", run.has_finished_at(),
                                  run.finished_at()));
  NV_CHECK(CheckCount("path.hops", run.hops(), l.max_hops));
  if (run.target().empty()) return Invalid("path.target", "missing");
  for (const v1::PathHop& h : run.hops()) {
    NV_CHECK(ValidateHop("path.hops", h, l));
  }
  return ValidateHop("path.destination", run.destination(), l);
}

absl::Status ValidateSockets(const v1::SocketSnapshot& s, const Limits& l) {
  NV_CHECK(CheckOptionalTimestamp("sockets.taken_at", s.has_taken_at(),
                                  s.taken_at()));
  NV_CHECK(CheckCount("sockets.sockets", s.sockets(), l.max_sockets));
  for (const v1::SocketEntry& e : s.sockets()) {
    NV_CHECK(CheckEnum("sockets.proto", v1::Transport_IsValid(e.proto()),
                       e.proto()));
    NV_CHECK(CheckString("sockets.state", e.state(), 32));
    NV_CHECK(CheckString("sockets.local_address", e.local_address(), 64));
    NV_CHECK(CheckString("sockets.remote_address", e.remote_address(), 64));
    NV_CHECK(CheckString("sockets.interface", e.interface(), 64));
    if (e.local_port() > 65535 || e.remote_port() > 65535) {
      return Invalid("sockets.port", "above 65535");
    }
    NV_CHECK(CheckCount("sockets.processes", e.processes(), 1024));
    for (const auto& p : e.processes()) {
      NV_CHECK(ValidateProcess("sockets.processes", p, l));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFiles(const v1::FileSnapshot& s, const Limits& l) {
  NV_CHECK(
      CheckOptionalTimestamp("files.taken_at", s.has_taken_at(), s.taken_at()));
  NV_CHECK(CheckCount("files.entries", s.entries(), l.max_file_entries));
  NV_CHECK(CheckCount("files.watched_dirs", s.watched_dirs(), 64));
  NV_CHECK(CheckString("files.error", s.error(), l.max_path));
  for (const std::string& d : s.watched_dirs()) {
    NV_CHECK(CheckString("files.watched_dirs", d, l.max_path));
  }
  for (const v1::FileEntry& e : s.entries()) {
    NV_CHECK(CheckEnum("files.kind", v1::FileAccessKind_IsValid(e.kind()),
                       e.kind()));
    NV_CHECK(CheckString("files.path", e.path(), l.max_path));
    NV_CHECK(CheckString("files.mode", e.mode(), 8));
    NV_CHECK(ValidateProcess("files.process", e.process(), l));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpeed(const v1::SpeedResult& s, const Limits& l) {
  NV_CHECK(CheckEnum("speed.outcome", v1::SpeedOutcome_IsValid(s.outcome()),
                     s.outcome()));
  NV_CHECK(CheckString("speed.client", s.client(), l.max_short_string));
  NV_CHECK(CheckString("speed.server", s.server(), l.max_short_string));
  NV_CHECK(CheckString("speed.server_address", s.server_address(),
                       l.max_short_string));
  NV_CHECK(CheckString("speed.error", s.error(), l.max_path));
  NV_CHECK(
      CheckString("speed.schedule_id", s.schedule_id(), l.max_short_string));
  NV_CHECK(CheckOptionalTimestamp("speed.started_at", s.has_started_at(),
                                  s.started_at()));
  NV_CHECK(CheckOptionalTimestamp("speed.finished_at", s.has_finished_at(),
                                  s.finished_at()));
  if (s.server_port() > 65535) return Invalid("speed.server_port", "> 65535");
  for (double v : {s.forward().sent_bps(), s.forward().received_bps(),
                   s.reverse_figures().sent_bps(),
                   s.reverse_figures().received_bps(), s.duration_s()}) {
    if (!(v >= 0) || v > 1e13) {
      return Invalid("speed", "a figure is negative, not a number or absurd");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateGap(const v1::Gap& g, const Limits& l) {
  if (g.count() == 0 || g.first_seq() > g.last_seq()) {
    return Invalid("result.gap", "empty or reversed range");
  }
  NV_CHECK(CheckString("gap.reason", g.reason(), l.max_short_string));
  NV_CHECK(CheckOptionalTimestamp("gap.first_produced_at",
                                  g.has_first_produced_at(),
                                  g.first_produced_at()));
  return CheckOptionalTimestamp("gap.last_produced_at",
                                g.has_last_produced_at(), g.last_produced_at());
}

}  // namespace

const Limits& DefaultLimits() {
  static const Limits* limits = new Limits();
  return *limits;
}

absl::Status ValidateAgentName(const std::string& name, const Limits& limits) {
  if (name.empty()) return Invalid("agent_name", "missing");
  if (name.size() > limits.max_name) {
    return Invalid("agent_name",
                   absl::StrCat("longer than ", limits.max_name, " bytes"));
  }
  if (name[0] == '.' || name[0] == '-') {
    return Invalid("agent_name", "must not start with '.' or '-'");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Invalid("agent_name",
                     "only letters, digits, '.', '_' and '-' are allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHello(const v1::Hello& hello, const Limits& l) {
  NV_CHECK(ValidateAgentName(hello.agent_name(), l));
  NV_CHECK(CheckString("boot_id", hello.boot_id(), l.max_short_string));
  NV_CHECK(CheckString("version", hello.version(), l.max_short_string));
  NV_CHECK(CheckString("hostname", hello.hostname(), l.max_short_string));
  NV_CHECK(CheckCount("addresses", hello.addresses(), l.max_addresses));
  for (const auto& a : hello.addresses()) {
    NV_CHECK(CheckString("addresses", a, 64));
  }
  for (int kind : hello.probe_kinds()) {
    NV_CHECK(CheckEnum("probe_kinds", v1::ProbeKind_IsValid(kind), kind));
  }
  if (hello.iperf_port() > 65535) return Invalid("iperf_port", "> 65535");
  return absl::OkStatus();
}

absl::Status ValidateHeartbeat(const v1::Heartbeat& hb, const Limits& l) {
  return absl::OkStatus();
}

absl::Status ValidateResult(const v1::Result& r, int64_t now_unix_s,
                            const Limits& l) {
  if (r.seq() == 0) return Invalid("result.seq", "must be 1 or more");
  if (r.seq() > (1ULL << 62)) return Invalid("result.seq", "absurdly large");
  NV_CHECK(
      CheckTimestamp("result.produced_at", r.produced_at(), now_unix_s, l));
  NV_CHECK(
      CheckString("result.command_id", r.command_id(), l.max_short_string));
  switch (r.payload_case()) {
    case v1::Result::kPath:
      return ValidatePath(r.path(), l);
    case v1::Result::kSockets:
      return ValidateSockets(r.sockets(), l);
    case v1::Result::kFiles:
      return ValidateFiles(r.files(), l);
    case v1::Result::kSpeed:
      return ValidateSpeed(r.speed(), l);
    case v1::Result::kGap:
      return ValidateGap(r.gap(), l);
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
  return Invalid("result.payload", "missing");
}

}  // namespace netvigil::collector
