#include "collector/store/path_pack.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "collector/store/pack_codec.h"
#include "common/pg_time.h"
#include "google/protobuf/util/message_differencer.h"

namespace netvigil::collector::history {
namespace {

constexpr char kFormat = 1;

// Run flags.
constexpr uint64_t kStarted = 1;
constexpr uint64_t kFinished = 2;
// Hop flags (route).
constexpr uint64_t kDestination = 1;
// Hop flags (figures).
constexpr uint64_t kReplies = 1;
constexpr uint64_t kLoss = 2;
constexpr uint64_t kErrors = 4;
constexpr uint64_t kAddressReplies = 8;

using pack::PutString;
using pack::PutVarint;
using pack::Reader;
using pack::UnZigZag;
using pack::ZigZag;

absl::Status Bad(const char* what) {
  return absl::DataLossError(absl::StrCat("packed path ", what));
}

absl::Status CannotPack(const std::string& what) {
  return absl::FailedPreconditionError(
      absl::StrCat("path run cannot be packed: ", what));
}

// Milliseconds as whole microseconds, if they are a number the pack holds.
bool Micros(double ms, double max_ms, uint64_t& out) {
  if (!(ms >= 0 && ms <= max_ms)) return false;  // NaN fails too
  out = static_cast<uint64_t>(std::llround(ms * 1000));
  return true;
}

double Ms(double us) { return us / 1000; }

// The loss the probe reports for `sent` and `received` (path_probe.cc's
// FillHop): a hop whose loss is this stores none.
double DerivedLoss(uint32_t sent, uint32_t received) {
  return sent == 0 ? 0.0
                   : 100.0 * (sent - std::min<uint32_t>(sent, received)) / sent;
}

bool HasUnknownFields(const google::protobuf::Message& m) {
  return !m.GetReflection()->GetUnknownFields(m).empty();
}

bool AnyUnknown(const v1::PathHop& h) {
  if (HasUnknownFields(h)) return true;
  for (const v1::HopAddress& a : h.addresses()) {
    if (HasUnknownFields(a)) return true;
  }
  return false;
}

}  // namespace

std::string PackPathRoute(const v1::PathRun& run) {
  std::string out(1, kFormat);
  PutVarint(run.hops_size(), out);
  for (const v1::PathHop& h : run.hops()) {
    PutVarint(h.ttl(), out);
    PutVarint(h.is_destination() ? kDestination : 0, out);
    PutVarint(h.addresses_size(), out);
    for (const v1::HopAddress& a : h.addresses()) {
      PutString(a.address(), out);
      PutString(a.hostname(), out);
    }
  }
  return out;
}

absl::StatusOr<std::vector<v1::PathHop>> UnpackPathRoute(
    std::string_view packed) {
  if (packed.empty() || packed[0] != kFormat) {
    return Bad("route: not format 1 (first byte)");
  }
  Reader r(packed.substr(1));
  uint64_t n = 0;
  // Each hop takes at least three bytes, each address two.
  if (!r.Varint(n) || n > r.left() / 3) return Bad("route: bad hop count");
  std::vector<v1::PathHop> hops(n);
  for (v1::PathHop& h : hops) {
    uint32_t ttl = 0;
    uint64_t flags = 0, addresses = 0;
    if (!r.U32(ttl) || !r.Varint(flags) || !r.Varint(addresses)) {
      return Bad("route: hop cut short");
    }
    if (flags & ~kDestination) return Bad("route: unknown hop flags");
    if (addresses > r.left() / 2) return Bad("route: bad address count");
    h.set_ttl(ttl);
    h.set_is_destination(flags & kDestination);
    for (uint64_t i = 0; i < addresses; ++i) {
      v1::HopAddress* a = h.add_addresses();
      if (!r.String(*a->mutable_address()) ||
          !r.String(*a->mutable_hostname())) {
        return Bad("route: address cut short");
      }
    }
  }
  if (r.left() != 0) return Bad("route: bytes after the hops");
  return hops;
}

absl::StatusOr<std::string> PackPathFigures(const v1::PathRun& run) {
  if (HasUnknownFields(run) || AnyUnknown(run.destination())) {
    return CannotPack("fields this collector does not know");
  }
  // The destination is a copy of one of the hops (the last, when reached).
  uint64_t destination = 0;
  if (run.has_destination()) {
    for (int i = run.hops_size() - 1; i >= 0 && destination == 0; --i) {
      if (google::protobuf::util::MessageDifferencer::Equals(
              run.hops(i), run.destination())) {
        destination = static_cast<uint64_t>(i) + 1;
      }
    }
    if (destination == 0) {
      return CannotPack("the destination is not a copy of one of its hops");
    }
  }
  uint64_t interval_us = 0;
  if (!Micros(run.interval_s() * 1000, kPathPackMaxSeconds * 1000,
              interval_us)) {
    return CannotPack("interval_s out of range");
  }
  if (run.socket_kind() < 0) return CannotPack("socket_kind out of range");
  std::string out(1, kFormat);
  const int64_t started_us = ProtoTimeToEpochMicros(run.started_at());
  PutVarint((run.has_started_at() ? kStarted : 0) |
                (run.has_finished_at() ? kFinished : 0),
            out);
  if (run.has_finished_at()) {
    const int64_t finished_us = ProtoTimeToEpochMicros(run.finished_at());
    // Both are within 0001..9999: no overflow.
    PutVarint(
        ZigZag(run.has_started_at() ? finished_us - started_us : finished_us),
        out);
  }
  PutVarint(run.ip_version(), out);
  PutVarint(run.count(), out);
  PutVarint(interval_us, out);
  PutVarint(run.max_ttl(), out);
  PutVarint(run.payload_bytes(), out);
  PutVarint(static_cast<uint64_t>(run.socket_kind()), out);
  PutVarint(destination, out);
  PutVarint(run.hops_size(), out);
  for (const v1::PathHop& h : run.hops()) {
    if (AnyUnknown(h)) return CannotPack("fields this collector does not know");
    uint64_t best, avg, worst, last, stdev;
    if (!Micros(h.best_ms(), kPathPackMaxMs, best) ||
        !Micros(h.avg_ms(), kPathPackMaxMs, avg) ||
        !Micros(h.worst_ms(), kPathPackMaxMs, worst) ||
        !Micros(h.last_ms(), kPathPackMaxMs, last) ||
        !Micros(h.stdev_ms(), kPathPackMaxMs, stdev)) {
      return CannotPack(absl::StrCat("a figure of TTL ", h.ttl(),
                                     " is not a number in 0..", kPathPackMaxMs,
                                     " ms"));
    }
    const bool replies = best | avg | worst | last | stdev;
    const bool loss = h.loss_percent() != DerivedLoss(h.sent(), h.received());
    const bool each = !(
        h.addresses_size() == 0 ||
        (h.addresses_size() == 1 && h.addresses(0).received() == h.received()));
    PutVarint((replies ? kReplies : 0) | (loss ? kLoss : 0) |
                  (h.errors_size() > 0 ? kErrors : 0) |
                  (each ? kAddressReplies : 0),
              out);
    PutVarint(h.sent(), out);
    PutVarint(h.received(), out);
    if (replies) {
      // Differences from best and avg: small numbers, fewer bytes.
      auto diff = [](uint64_t a, uint64_t b) {
        return ZigZag(static_cast<int64_t>(a) - static_cast<int64_t>(b));
      };
      PutVarint(best, out);
      PutVarint(diff(avg, best), out);
      PutVarint(diff(worst, avg), out);
      PutVarint(diff(last, best), out);
      PutVarint(stdev, out);
    }
    if (loss) {
      const double v = h.loss_percent();
      char bytes[sizeof(v)];
      std::memcpy(bytes, &v, sizeof(v));
      out.append(bytes, sizeof(v));
    }
    if (each) {
      for (const v1::HopAddress& a : h.addresses()) {
        PutVarint(a.received(), out);
      }
    }
    if (h.errors_size() > 0) {
      PutVarint(h.errors_size(), out);
      for (const std::string& e : h.errors()) PutString(e, out);
    }
  }
  return out;
}

absl::Status UnpackPathFigures(std::string_view figures,
                               const std::vector<v1::PathHop>& route,
                               v1::PathRun& run) {
  if (figures.empty() || figures[0] != kFormat) {
    return Bad("figures: not format 1 (first byte)");
  }
  Reader r(figures.substr(1));
  uint64_t flags = 0;
  if (!r.Varint(flags)) return Bad("figures: cut short");
  if (flags & ~(kStarted | kFinished)) return Bad("figures: unknown flags");
  if (flags & kFinished) {
    uint64_t v = 0;
    if (!r.Varint(v)) return Bad("figures: cut short");
    // In double, then clamped by EpochMicrosToProtoTime: a hostile value
    // cannot overflow.
    const double us =
        static_cast<double>(UnZigZag(v)) +
        ((flags & kStarted)
             ? static_cast<double>(ProtoTimeToEpochMicros(run.started_at()))
             : 0.0);
    const double lo = static_cast<double>(std::numeric_limits<int64_t>::min());
    const double hi = static_cast<double>(std::numeric_limits<int64_t>::max());
    *run.mutable_finished_at() =
        EpochMicrosToProtoTime(us <= lo   ? std::numeric_limits<int64_t>::min()
                               : us >= hi ? std::numeric_limits<int64_t>::max()
                                          : static_cast<int64_t>(us));
  }
  if (!(flags & kStarted)) run.clear_started_at();
  uint32_t ip_version, count, max_ttl, payload_bytes, socket_kind;
  uint64_t interval_us, destination, n;
  if (!r.U32(ip_version) || !r.U32(count) || !r.Varint(interval_us) ||
      !r.U32(max_ttl) || !r.U32(payload_bytes) || !r.U32(socket_kind) ||
      !r.Varint(destination) || !r.Varint(n)) {
    return Bad("figures: cut short");
  }
  if (socket_kind > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return Bad("figures: bad socket kind");
  }
  if (n != route.size()) {
    return absl::DataLossError(absl::StrCat(
        "packed path figures: ", n, " hops for a route of ", route.size()));
  }
  if (destination > n) return Bad("figures: bad destination");
  run.set_ip_version(ip_version);
  run.set_count(count);
  run.set_interval_s(static_cast<double>(interval_us) / 1e6);
  run.set_max_ttl(max_ttl);
  run.set_payload_bytes(payload_bytes);
  run.set_socket_kind(static_cast<v1::PathSocketKind>(socket_kind));
  run.clear_hops();
  for (const v1::PathHop& from : route) {
    v1::PathHop& h = *run.add_hops();
    h = from;
    uint64_t hop_flags = 0;
    uint32_t sent, received;
    if (!r.Varint(hop_flags) || !r.U32(sent) || !r.U32(received)) {
      return Bad("figures: hop cut short");
    }
    if (hop_flags & ~(kReplies | kLoss | kErrors | kAddressReplies)) {
      return Bad("figures: unknown hop flags");
    }
    h.set_sent(sent);
    h.set_received(received);
    if (hop_flags & kReplies) {
      uint64_t best, avg, worst, last, stdev;
      if (!r.Varint(best) || !r.Varint(avg) || !r.Varint(worst) ||
          !r.Varint(last) || !r.Varint(stdev)) {
        return Bad("figures: hop cut short");
      }
      // In double: hostile differences cannot overflow.
      const double b = static_cast<double>(best);
      const double a = b + static_cast<double>(UnZigZag(avg));
      h.set_best_ms(Ms(b));
      h.set_avg_ms(Ms(a));
      h.set_worst_ms(Ms(a + static_cast<double>(UnZigZag(worst))));
      h.set_last_ms(Ms(b + static_cast<double>(UnZigZag(last))));
      h.set_stdev_ms(Ms(static_cast<double>(stdev)));
    }
    if (hop_flags & kLoss) {
      double loss = 0;
      if (!r.Double(loss)) return Bad("figures: hop cut short");
      h.set_loss_percent(loss);
    } else {
      h.set_loss_percent(DerivedLoss(sent, received));
    }
    if (hop_flags & kAddressReplies) {
      for (v1::HopAddress& a : *h.mutable_addresses()) {
        uint32_t v = 0;
        if (!r.U32(v)) return Bad("figures: address replies cut short");
        a.set_received(v);
      }
    } else if (h.addresses_size() == 1) {
      h.mutable_addresses(0)->set_received(received);
    }
    if (hop_flags & kErrors) {
      uint64_t errors = 0;
      // Each error takes at least its length byte.
      if (!r.Varint(errors) || errors > r.left()) {
        return Bad("figures: bad error count");
      }
      for (uint64_t i = 0; i < errors; ++i) {
        if (!r.String(*h.add_errors())) return Bad("figures: error cut short");
      }
    }
  }
  if (r.left() != 0) return Bad("figures: bytes after the hops");
  if (destination > 0) {
    *run.mutable_destination() = run.hops(static_cast<int>(destination - 1));
  } else {
    run.clear_destination();
  }
  return absl::OkStatus();
}

}  // namespace netvigil::collector::history
