#include "collector/ingest/validation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
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

std::string Window(const Limits& l) {
  return absl::StrCat(
      "outside the window of believable times around receipt"
      " (",
      l.max_age_s / 86400, " days before to ", l.max_future_skew_s,
      " s after)");
}

bool InWindow(int64_t seconds, int64_t now_unix_s, const Limits& l) {
  return seconds <= now_unix_s + l.max_future_skew_s &&
         seconds >= now_unix_s - l.max_age_s;
}

absl::Status CheckTimestamp(const std::string& field,
                            const google::protobuf::Timestamp& t,
                            int64_t now_unix_s, const Limits& limits) {
  if (t.seconds() == 0 && t.nanos() == 0) return Invalid(field, "missing");
  if (t.nanos() < 0 || t.nanos() > 999'999'999) {
    return Invalid(field, "nanos out of range");
  }
  if (!InWindow(t.seconds(), now_unix_s, limits)) {
    return Invalid(field, Window(limits));
  }
  return absl::OkStatus();
}

// A secondary time (started_at, taken_at, ...): absent, or within the same
// window as produced_at. A time in year 9999 would pin every "latest" view.
absl::Status CheckOptionalTimestamp(const std::string& field, bool present,
                                    const google::protobuf::Timestamp& t,
                                    int64_t now_unix_s, const Limits& l) {
  if (!present) return absl::OkStatus();
  if (t.nanos() < 0 || t.nanos() > 999'999'999) {
    return Invalid(field, "nanos out of range");
  }
  if (!InWindow(t.seconds(), now_unix_s, l)) return Invalid(field, Window(l));
  return absl::OkStatus();
}

// A figure: finite and within [lo, hi]. NaN fails every comparison, so the
// test is written to let only the good values through.
absl::Status CheckFigure(const std::string& field, double v, double lo,
                         double hi) {
  if (!std::isfinite(v)) return Invalid(field, "not a finite number");
  if (!(v >= lo && v <= hi)) {
    return Invalid(field, absl::StrCat("outside ", lo, "..", hi));
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
  NV_CHECK(CheckFigure(f + ".loss_percent", h.loss_percent(), 0, 100));
  NV_CHECK(CheckFigure(f + ".last_ms", h.last_ms(), 0, l.max_ms));
  NV_CHECK(CheckFigure(f + ".avg_ms", h.avg_ms(), 0, l.max_ms));
  NV_CHECK(CheckFigure(f + ".best_ms", h.best_ms(), 0, l.max_ms));
  NV_CHECK(CheckFigure(f + ".worst_ms", h.worst_ms(), 0, l.max_ms));
  NV_CHECK(CheckFigure(f + ".stdev_ms", h.stdev_ms(), 0, l.max_ms));
  return absl::OkStatus();
}

absl::Status ValidatePath(const v1::PathRun& run, int64_t now,
                          const Limits& l) {
  NV_CHECK(CheckString("path.target", run.target(), l.max_short_string));
  NV_CHECK(CheckString("path.resolved_address", run.resolved_address(),
                       l.max_short_string));
  NV_CHECK(CheckString("path.error", run.error(), l.max_path));
  NV_CHECK(CheckEnum("path.socket_kind",
                     v1::PathSocketKind_IsValid(run.socket_kind()),
                     run.socket_kind()));
  NV_CHECK(CheckOptionalTimestamp("path.started_at", run.has_started_at(),
                                  run.started_at(), now, l));
  NV_CHECK(CheckOptionalTimestamp("path.finished_at", run.has_finished_at(),
                                  run.finished_at(), now, l));
  NV_CHECK(CheckFigure("path.interval_s", run.interval_s(), 0, l.max_seconds));
  NV_CHECK(CheckCount("path.hops", run.hops(), l.max_hops));
  if (run.target().empty()) return Invalid("path.target", "missing");
  for (const v1::PathHop& h : run.hops()) {
    NV_CHECK(ValidateHop("path.hops", h, l));
  }
  return ValidateHop("path.destination", run.destination(), l);
}

absl::Status ValidateSockets(const v1::SocketSnapshot& s, int64_t now,
                             const Limits& l) {
  NV_CHECK(CheckOptionalTimestamp("sockets.taken_at", s.has_taken_at(),
                                  s.taken_at(), now, l));
  NV_CHECK(CheckFigure("sockets.duration_ms", s.duration_ms(), 0, l.max_ms));
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

absl::Status ValidateFiles(const v1::FileSnapshot& s, int64_t now,
                           const Limits& l) {
  NV_CHECK(CheckOptionalTimestamp("files.taken_at", s.has_taken_at(),
                                  s.taken_at(), now, l));
  NV_CHECK(CheckFigure("files.duration_ms", s.duration_ms(), 0, l.max_ms));
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

absl::Status ValidateFigures(const std::string& f, const v1::SpeedFigures& v,
                             const Limits& l) {
  NV_CHECK(CheckFigure(f + ".sent_bps", v.sent_bps(), 0, l.max_bps));
  NV_CHECK(CheckFigure(f + ".received_bps", v.received_bps(), 0, l.max_bps));
  // As iperf3 reports them; the agent's parser holds the same bounds
  // (agent/probes/speed_probe.cc), so what it produces is never refused.
  NV_CHECK(CheckFigure(f + ".jitter_ms", v.jitter_ms(), 0, l.max_bps));
  NV_CHECK(CheckFigure(f + ".lost_percent", v.lost_percent(), 0, 100));
  return absl::OkStatus();
}

absl::Status ValidateSpeed(const v1::SpeedResult& s, int64_t now,
                           const Limits& l) {
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
                                  s.started_at(), now, l));
  NV_CHECK(CheckOptionalTimestamp("speed.finished_at", s.has_finished_at(),
                                  s.finished_at(), now, l));
  if (s.server_port() > 65535) return Invalid("speed.server_port", "> 65535");
  NV_CHECK(CheckFigure("speed.duration_s", s.duration_s(), 0, l.max_bps));
  NV_CHECK(ValidateFigures("speed.forward", s.forward(), l));
  return ValidateFigures("speed.reverse_figures", s.reverse_figures(), l);
}

// A gap describes numbers lost: no more than its range holds. The range
// may hold its own number and later ones (a spool's open gap grows as it
// drops more), and numbers that were stored (sent before they were
// dropped): the store counts only what the range misses, and CheckBinding
// keeps the range within the numbers the agent can have given out.
absl::Status ValidateGap(uint64_t seq, const v1::Gap& g, int64_t now,
                         const Limits& l) {
  (void)seq;
  if (g.count() == 0 || g.first_seq() == 0 || g.first_seq() > g.last_seq()) {
    return Invalid("gap", "empty or reversed range");
  }
  if (g.last_seq() > kMaxSeq) {
    return Invalid("gap.last_seq", absl::StrCat("above ", kMaxSeq));
  }
  if (g.count() > g.last_seq() - g.first_seq() + 1) {
    return Invalid("gap.count",
                   absl::StrCat("more than the range ", g.first_seq(), "..",
                                g.last_seq(), " holds (", g.count(), ")"));
  }
  NV_CHECK(CheckString("gap.reason", g.reason(), l.max_short_string));
  NV_CHECK(CheckOptionalTimestamp("gap.first_produced_at",
                                  g.has_first_produced_at(),
                                  g.first_produced_at(), now, l));
  return CheckOptionalTimestamp("gap.last_produced_at",
                                g.has_last_produced_at(), g.last_produced_at(),
                                now, l);
}

// The result's times other than produced_at, to move with it.
std::vector<google::protobuf::Timestamp*> SecondaryTimes(v1::Result* r) {
  std::vector<google::protobuf::Timestamp*> out;
  auto add = [&](bool has, google::protobuf::Timestamp* t) {
    if (has) out.push_back(t);
  };
  switch (r->payload_case()) {
    case v1::Result::kPath:
      add(r->path().has_started_at(), r->mutable_path()->mutable_started_at());
      add(r->path().has_finished_at(),
          r->mutable_path()->mutable_finished_at());
      break;
    case v1::Result::kSockets:
      add(r->sockets().has_taken_at(),
          r->mutable_sockets()->mutable_taken_at());
      break;
    case v1::Result::kFiles:
      add(r->files().has_taken_at(), r->mutable_files()->mutable_taken_at());
      break;
    case v1::Result::kSpeed:
      add(r->speed().has_started_at(),
          r->mutable_speed()->mutable_started_at());
      add(r->speed().has_finished_at(),
          r->mutable_speed()->mutable_finished_at());
      break;
    case v1::Result::kGap:
      add(r->gap().has_first_produced_at(),
          r->mutable_gap()->mutable_first_produced_at());
      add(r->gap().has_last_produced_at(),
          r->mutable_gap()->mutable_last_produced_at());
      break;
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
  return out;
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
  if (hello.next_seq() > kMaxSeq + 1) {
    return Invalid("next_seq", absl::StrCat("above ", kMaxSeq + 1));
  }
  return absl::OkStatus();
}

absl::Status ValidateHeartbeat(const v1::Heartbeat& hb, const Limits& l) {
  (void)l;
  if (!hb.has_sent_at()) return absl::OkStatus();
  if (!IsValidTimestamp(hb.sent_at())) {
    return Invalid("heartbeat.sent_at", "not a valid time");
  }
  return absl::OkStatus();
}

absl::Duration NormaliseResultTimes(v1::Result* r, absl::Time receipt,
                                    absl::Duration agent_offset,
                                    const Limits& l) {
  const int64_t now = absl::ToUnixSeconds(receipt);
  auto move_all = [r](absl::Duration by) {
    std::vector<google::protobuf::Timestamp*> times = SecondaryTimes(r);
    times.push_back(r->mutable_produced_at());
    for (google::protobuf::Timestamp* t : times) {
      if (!IsValidTimestamp(*t)) continue;
      const google::protobuf::Timestamp m = ToProtoTime(FromProtoTime(*t) + by);
      if (IsValidTimestamp(m)) *t = m;
    }
  };
  const google::protobuf::Timestamp& p = r->produced_at();
  const bool missing =
      (p.seconds() == 0 && p.nanos() == 0) || !IsValidTimestamp(p);
  absl::Duration moved = absl::ZeroDuration();
  if (!missing &&
      absl::AbsDuration(agent_offset) > absl::Seconds(l.max_future_skew_s)) {
    moved = -agent_offset;
    move_all(moved);
  }
  // A gap's times describe results long gone (a spool that lost an old
  // backlog): kept to the window rather than refused, so its count stays.
  auto clamp_gap = [&] {
    if (!r->has_gap()) return;
    for (google::protobuf::Timestamp* t : SecondaryTimes(r)) {
      if (!IsValidTimestamp(*t)) continue;
      if (t->seconds() > now + l.max_future_skew_s) {
        *t = ToProtoTime(absl::FromUnixSeconds(now + l.max_future_skew_s));
      } else if (t->seconds() < now - l.max_age_s) {
        *t = ToProtoTime(absl::FromUnixSeconds(now - l.max_age_s));
      }
    }
  };
  if (!missing && InWindow(r->produced_at().seconds(), now, l)) {
    clamp_gap();
    return moved;
  }
  // Without a believable produced_at there is nothing to move the other
  // times by; they are judged as they are.
  if (!missing) {
    const absl::Duration shift = receipt - FromProtoTime(r->produced_at());
    move_all(shift);
    moved += shift;
  }
  *r->mutable_produced_at() = ToProtoTime(receipt);
  clamp_gap();
  return missing ? absl::InfiniteDuration() : moved;
}

absl::Status CheckBinding(const v1::Result& r, const SenderContext& ctx) {
  if (r.has_gap()) {
    const uint64_t bound =
        std::max(ctx.highest_seq, r.seq()) + SenderContext::kGapSlack;
    if (r.gap().last_seq() > bound) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gap.last_seq: ", r.gap().last_seq(),
          " is beyond the numbers the agent can have given out (", bound, ")"));
    }
    return absl::OkStatus();
  }
  if (!r.has_speed()) return absl::OkStatus();
  if (r.speed().client() != ctx.agent) {
    return absl::PermissionDeniedError(
        absl::StrCat("speed.client: names '", r.speed().client(),
                     "', not the sender '", ctx.agent, "'"));
  }
  if (!ctx.speed_enabled) {
    return absl::PermissionDeniedError(
        "speed: a speed result while speed tests are disabled in the "
        "sender's plan");
  }
  return absl::OkStatus();
}

absl::Status ValidateResult(const v1::Result& r, int64_t now_unix_s,
                            const Limits& l) {
  if (r.seq() == 0 || r.seq() > kMaxSeq) {
    return Invalid("result.seq", absl::StrCat("outside 1..", kMaxSeq));
  }
  NV_CHECK(
      CheckTimestamp("result.produced_at", r.produced_at(), now_unix_s, l));
  NV_CHECK(
      CheckString("result.command_id", r.command_id(), l.max_short_string));
  switch (r.payload_case()) {
    case v1::Result::kPath:
      return ValidatePath(r.path(), now_unix_s, l);
    case v1::Result::kSockets:
      return ValidateSockets(r.sockets(), now_unix_s, l);
    case v1::Result::kFiles:
      return ValidateFiles(r.files(), now_unix_s, l);
    case v1::Result::kSpeed:
      return ValidateSpeed(r.speed(), now_unix_s, l);
    case v1::Result::kGap:
      return ValidateGap(r.seq(), r.gap(), now_unix_s, l);
    case v1::Result::PAYLOAD_NOT_SET:
      break;
  }
  return Invalid("result.payload", "missing");
}

}  // namespace netvigil::collector
