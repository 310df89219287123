#include "agent/probes/path_probe.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/probes/icmp_packet.h"
#include "common/wire_kinds.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using google::protobuf::util::TimeUtil;

// While names are being resolved the loop wakes this often to start the
// targets whose names have come back.
constexpr absl::Duration kResolvePoll = absl::Milliseconds(5);

class SystemNames final : public PathNameService {
 public:
  absl::StatusOr<std::string> Resolve(const std::string& name,
                                      int ip_version) override {
    addrinfo hints{};
    hints.ai_family = ip_version == 4   ? AF_INET
                      : ip_version == 6 ? AF_INET6
                                        : AF_UNSPEC;
    hints.ai_socktype = SOCK_RAW;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(name.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
      return absl::NotFoundError(absl::StrCat(
          "name does not resolve: ", name, ": ",
          rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
    }
    std::string packed;
    for (addrinfo* a = res; a != nullptr && packed.empty(); a = a->ai_next) {
      if (a->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        packed.assign(reinterpret_cast<const char*>(&sin->sin_addr), 4);
      } else if (a->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
        packed.assign(reinterpret_cast<const char*>(&sin6->sin6_addr), 16);
      }
    }
    freeaddrinfo(res);
    if (packed.empty()) {
      return absl::NotFoundError(
          absl::StrCat("name does not resolve: ", name, ": no IP address"));
    }
    return packed;
  }

  std::string ReverseLookup(absl::string_view packed) override {
    sockaddr_storage ss{};
    socklen_t len;
    if (packed.size() == 4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, packed.data(), 4);
      len = sizeof(*sin);
    } else if (packed.size() == 16) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, packed.data(), 16);
      len = sizeof(*sin6);
    } else {
      return "";
    }
    char host[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host),
                    nullptr, 0, NI_NAMEREQD) != 0) {
      return "";
    }
    return host;
  }
};

// A name being resolved on a thread of its own. The thread may outlive the
// run when the resolver hangs, so it shares this with the run.
struct Resolution {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::string> address ABSL_GUARDED_BY(mu) =
      absl::UnknownError("not resolved");
};

// One reply's contribution to a hop.
struct Reply {
  uint32_t round;
  double rtt_ms;
};

struct HopState {
  uint32_t sent = 0;
  std::vector<Reply> replies;
  // Address -> replies, in order of first appearance.
  std::vector<std::pair<std::string, uint32_t>> addresses;
  std::set<std::string> errors;
};

struct TargetState {
  v1::PathRun run;
  std::string address;  // packed
  int ip_version = 0;
  uint16_t identifier = 0;
  bool started = false;
  bool done = false;
  uint32_t rounds_sent = 0;
  absl::Time first_round;
  uint32_t dest_ttl = 0;         // lowest TTL that got an echo reply
  uint32_t unreachable_ttl = 0;  // lowest TTL that got a dest unreachable
  std::string unreachable_reason;
  uint32_t sends_failed = 0;
  std::string send_error;
  absl::Duration max_rtt = -absl::InfiniteDuration();  // no reply yet
  bool any_reply = false;
  uint32_t outstanding = 0;
  uint32_t late = 0;  // probes past their timeout, still open to an error
  bool late_error_seen = false;  // an ICMP error came past its timeout
  std::vector<HopState> hops;
  std::shared_ptr<Resolution> resolving;  // set while the name resolves
  absl::Time resolve_deadline;
};

struct Outstanding {
  size_t target;
  uint32_t ttl;
  uint32_t round;
  absl::Time sent_at;
};

// A probe past its timeout: lost, unless an ICMP error for it still comes
// (a router's ARP or neighbour discovery failing answers after ~3 s).
struct LateProbe {
  Outstanding probe;
  absl::Time until;  // sent_at + kPathLateErrorWait
};

uint32_t Key(int ip_version, uint16_t sequence) {
  return (static_cast<uint32_t>(ip_version) << 16) | sequence;
}

void FillHop(uint32_t ttl, const HopState& h, v1::PathHop& hop) {
  hop.set_ttl(ttl);
  for (const auto& [addr, n] : h.addresses) {
    v1::HopAddress* a = hop.add_addresses();
    a->set_address(AddressToString(addr));
    a->set_received(n);
  }
  hop.set_sent(h.sent);
  hop.set_received(static_cast<uint32_t>(h.replies.size()));
  hop.set_loss_percent(
      h.sent == 0
          ? 0.0
          : 100.0 * (h.sent - std::min<uint32_t>(h.sent, h.replies.size())) /
                h.sent);
  for (const std::string& e : h.errors) hop.add_errors(e);
  if (h.replies.empty()) return;
  double sum = 0, best = h.replies[0].rtt_ms, worst = best;
  uint32_t last_round = 0;
  double last = best;
  for (const Reply& r : h.replies) {
    sum += r.rtt_ms;
    best = std::min(best, r.rtt_ms);
    worst = std::max(worst, r.rtt_ms);
    if (r.round >= last_round) {
      last_round = r.round;
      last = r.rtt_ms;
    }
  }
  double n = static_cast<double>(h.replies.size());
  double avg = sum / n;
  double ssd = 0;
  for (const Reply& r : h.replies) ssd += (r.rtt_ms - avg) * (r.rtt_ms - avg);
  // Sample standard deviation, as mtr's report computes it.
  hop.set_stdev_ms(h.replies.size() > 1 ? std::sqrt(ssd / (n - 1)) : 0.0);
  hop.set_last_ms(last);
  hop.set_avg_ms(avg);
  hop.set_best_ms(best);
  hop.set_worst_ms(worst);
}

// Fills in the hop addresses' names, looked up concurrently once per
// address, after probing so that a slow resolver delays no probe.
void ReverseResolve(std::vector<v1::PathRun>& runs, PathNameService& names) {
  std::map<std::string, std::future<std::string>> lookups;
  for (const v1::PathRun& run : runs) {
    for (const v1::PathHop& hop : run.hops()) {
      for (const v1::HopAddress& a : hop.addresses()) {
        if (lookups.count(a.address()) > 0) continue;
        absl::StatusOr<std::string> packed = ParseAddress(a.address());
        if (!packed.ok()) continue;
        lookups.emplace(a.address(),
                        std::async(std::launch::async, [&names, p = *packed] {
                          return names.ReverseLookup(p);
                        }));
      }
    }
  }
  std::map<std::string, std::string> found;
  for (auto& [address, name] : lookups) found[address] = name.get();
  for (v1::PathRun& run : runs) {
    for (v1::PathHop& hop : *run.mutable_hops()) {
      for (v1::HopAddress& a : *hop.mutable_addresses()) {
        a.set_hostname(found[a.address()]);
      }
    }
    if (run.destination_reached()) {
      *run.mutable_destination() = run.hops(run.hops_size() - 1);
    }
  }
}

// Turns a finished target's counters into its hop list and error.
void Summarise(TargetState& t) {
  if (!t.started) return;  // failed before probing; error already set
  uint32_t max_ttl = static_cast<uint32_t>(t.hops.size());
  uint32_t last;
  if (t.dest_ttl > 0) {
    last = t.dest_ttl;
  } else if (t.unreachable_ttl > 0) {
    last = t.unreachable_ttl;
  } else {
    // As mtr: up to the last hop that answered, plus one silent hop to show
    // where answers stop.
    uint32_t answered = 0;
    for (uint32_t ttl = 1; ttl <= max_ttl; ++ttl) {
      if (!t.hops[ttl - 1].replies.empty()) answered = ttl;
    }
    last = std::min(max_ttl, answered + 1);
  }
  for (uint32_t ttl = 1; ttl <= last; ++ttl) {
    FillHop(ttl, t.hops[ttl - 1], *t.run.add_hops());
  }
  if (t.dest_ttl > 0) {
    v1::PathHop* dest = t.run.mutable_hops(static_cast<int>(last - 1));
    dest->set_is_destination(true);
    t.run.set_destination_reached(true);
    *t.run.mutable_destination() = *dest;
    return;
  }
  if (!t.unreachable_reason.empty()) {
    t.run.set_error(t.unreachable_reason);
  } else if (t.sends_failed > 0 && !t.any_reply) {
    t.run.set_error(absl::StrCat("cannot send probes: ", t.send_error));
  } else if (last > 1) {
    t.run.set_error(absl::StrCat(
        "destination not reached: no reply beyond hop ", last - 1));
  } else {
    t.run.set_error("destination not reached: no reply from any hop");
  }
}

}  // namespace

PathNameService& SystemPathNameService() {
  static SystemNames* names = new SystemNames();
  return *names;
}

absl::Duration PathProbeTimeout(absl::Duration max_rtt) {
  if (max_rtt < absl::ZeroDuration()) return kPathTimeoutCap;
  return std::clamp(3 * max_rtt, kPathTimeoutFloor, kPathTimeoutCap);
}

namespace {

// Process-wide, so that PathProbe instances sharing the host's raw ICMP
// traffic never hand out the same identifier at once.
std::atomic<uint32_t> next_identifier{0};

// One RunMany: the targets' states, the probes in flight and the loop that
// drives them. Single-threaded (name resolution aside).
class RunLoop {
 public:
  RunLoop(IcmpTransport& transport, Clock& clock, PathNameService& names,
          uint16_t& next_sequence, const PathOptions& opts)
      : transport_(transport),
        clock_(clock),
        names_(names),
        next_sequence_(next_sequence),
        opts_(opts) {}

  std::vector<v1::PathRun> Run(const std::vector<std::string>& targets);

 private:
  void Begin(const std::vector<std::string>& targets);
  // Moves a target forward: resolution, then rounds when due. Lowers `wake`
  // to when it next needs attention.
  void Step(size_t index, absl::Time now, absl::Time& wake, bool& resolving);
  void Start(TargetState& t, absl::Time now);
  void SendRound(size_t index, absl::Time now);
  void Handle(const IcmpPacketIn& p, absl::Time now);
  // Counts a reply (echo reply or ICMP error) to probe `o`.
  void Record(TargetState& t, const Outstanding& o, const IcmpMessage& msg,
              const std::string& source, absl::Duration rtt);
  // Drops probes past their timeout or beyond a known end of the path; a
  // probe past its timeout on a path whose destination has not answered
  // waits, as late, for an ICMP error until kPathLateErrorWait.
  void Expire(absl::Time now, absl::Time& wake);
  void Fail(TargetState& t, std::string error, absl::Time now);
  void Done(TargetState& t, absl::Time now);

  IcmpTransport& transport_;
  Clock& clock_;
  PathNameService& names_;
  uint16_t& next_sequence_;
  const PathOptions& opts_;
  std::vector<TargetState> ts_;
  std::unordered_map<uint32_t, Outstanding> outstanding_;
  std::unordered_map<uint32_t, LateProbe> late_;
  size_t remaining_ = 0;
  uint64_t skipped_ = 0;
};

std::vector<v1::PathRun> RunLoop::Run(const std::vector<std::string>& targets) {
  Begin(targets);
  std::vector<IcmpPacketIn> packets;
  while (remaining_ > 0) {
    absl::Time now = clock_.Now();
    absl::Time wake = absl::InfiniteFuture();
    bool resolving = false;
    for (size_t i = 0; i < ts_.size(); ++i) Step(i, now, wake, resolving);
    Expire(now, wake);
    for (TargetState& t : ts_) {
      if (!t.done && t.started && t.rounds_sent >= opts_.count &&
          t.outstanding == 0 && t.late == 0) {
        Summarise(t);
        Done(t, now);
      }
    }
    if (remaining_ == 0) break;

    absl::Duration wait = wake - now;
    if (resolving) wait = std::min(wait, kResolvePoll);
    if (wait == absl::InfiniteDuration()) wait = kResolvePoll;
    packets.clear();
    absl::Status s =
        transport_.Receive(std::max(wait, absl::ZeroDuration()), packets);
    if (!s.ok()) {
      spdlog::warn("event=path_receive_failed error=\"{}\"", s.ToString());
    }
    absl::Time after = clock_.Now();
    for (const IcmpPacketIn& p : packets) Handle(p, after);
  }
  if (skipped_ > 0) {
    spdlog::debug("event=path_packets_skipped count={}", skipped_);
  }
  std::vector<v1::PathRun> runs;
  runs.reserve(ts_.size());
  for (TargetState& t : ts_) runs.push_back(std::move(t.run));
  if (opts_.resolve_names) ReverseResolve(runs, names_);
  return runs;
}

void RunLoop::Begin(const std::vector<std::string>& targets) {
  const absl::Time start = clock_.Now();
  const uint32_t first_id =
      next_identifier.fetch_add(static_cast<uint32_t>(targets.size()));
  // Raw sockets see every ICMP reply on the host: keep our identifiers away
  // from other mtr/ping instances, which use their pid.
  const uint32_t process_base =
      (static_cast<uint32_t>(getpid()) * 2654435761u) >> 16;
  ts_.resize(targets.size());
  remaining_ = targets.size();
  for (size_t i = 0; i < targets.size(); ++i) {
    TargetState& t = ts_[i];
    v1::PathRun& run = t.run;
    run.set_target(targets[i]);
    run.set_count(opts_.count);
    run.set_interval_s(absl::ToDoubleSeconds(opts_.interval));
    run.set_max_ttl(opts_.max_ttl);
    run.set_payload_bytes(opts_.payload_bytes);
    run.set_socket_kind(PathSocketKindFromName(transport_.kind()));
    *run.mutable_started_at() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(start));
    t.identifier = static_cast<uint16_t>(process_base + first_id + i);
    t.hops.resize(opts_.max_ttl);
    absl::StatusOr<std::string> literal = ParseAddress(targets[i]);
    if (literal.ok()) {
      t.address = *literal;
      continue;
    }
    // Resolution may block for seconds on a dead resolver: do it off the
    // probing thread so the other targets start at once.
    auto r = std::make_shared<Resolution>();
    t.resolving = r;
    t.resolve_deadline = start + kPathResolveTimeout;
    PathNameService* names = &names_;
    std::thread([r, names, name = targets[i], v = opts_.ip_version] {
      absl::StatusOr<std::string> address = names->Resolve(name, v);
      absl::MutexLock l(&r->mu);
      r->address = std::move(address);
      r->done = true;
    }).detach();
  }
}

void RunLoop::Step(size_t index, absl::Time now, absl::Time& wake,
                   bool& resolving) {
  TargetState& t = ts_[index];
  if (t.done) return;
  if (!t.started && t.resolving != nullptr) {
    absl::StatusOr<std::string> addr = absl::UnknownError("");
    {
      absl::MutexLock l(&t.resolving->mu);
      if (t.resolving->done) {
        addr = t.resolving->address;
      } else if (now >= t.resolve_deadline) {
        addr = absl::DeadlineExceededError(absl::StrCat(
            "name does not resolve: ", t.run.target(), ": no answer in ",
            absl::FormatDuration(kPathResolveTimeout)));
      } else {
        resolving = true;
        wake = std::min(wake, t.resolve_deadline);
        return;
      }
    }
    t.resolving.reset();
    if (!addr.ok()) return Fail(t, std::string(addr.status().message()), now);
    t.address = *addr;
  }
  if (!t.started) {
    Start(t, now);
    if (t.done) return;
  }
  if (t.rounds_sent >= opts_.count) return;
  absl::Time due = t.first_round + opts_.interval * t.rounds_sent;
  if (due <= now) {
    SendRound(index, now);
    if (t.done) return;
    due = t.first_round + opts_.interval * t.rounds_sent;
  }
  if (t.rounds_sent < opts_.count) wake = std::min(wake, due);
}

void RunLoop::Start(TargetState& t, absl::Time now) {
  t.ip_version = t.address.size() == 4 ? 4 : 6;
  t.run.set_resolved_address(AddressToString(t.address));
  t.run.set_ip_version(static_cast<uint32_t>(t.ip_version));
  if (opts_.ip_version != 0 && opts_.ip_version != t.ip_version) {
    return Fail(t,
                absl::StrCat("address ", t.run.resolved_address(),
                             " is not IPv", opts_.ip_version),
                now);
  }
  if (!transport_.SupportsIpVersion(t.ip_version)) {
    return Fail(
        t, absl::StrCat("no IPv", t.ip_version, " ICMP socket on this host"),
        now);
  }
  t.started = true;
  t.first_round = now;
}

void RunLoop::SendRound(size_t index, absl::Time now) {
  TargetState& t = ts_[index];
  // Round one puts every TTL in flight; once the end of the path is known,
  // later rounds stop there.
  uint32_t limit = opts_.max_ttl;
  if (t.dest_ttl > 0) limit = std::min(limit, t.dest_ttl);
  if (t.unreachable_ttl > 0) limit = std::min(limit, t.unreachable_ttl);
  uint32_t failed = 0;
  for (uint32_t ttl = 1; ttl <= limit; ++ttl) {
    uint16_t seq = next_sequence_++;
    // Skip sequence numbers still in flight after a wrap-around.
    for (int guard = 0;
         guard < 65536 && outstanding_.count(Key(t.ip_version, seq)) > 0;
         ++guard) {
      seq = next_sequence_++;
    }
    std::string packet =
        BuildEchoRequest(t.ip_version, t.identifier, seq, opts_.payload_bytes);
    absl::Time sent_at = clock_.Now();
    absl::Status s = transport_.Send(t.address, static_cast<int>(ttl), packet);
    t.hops[ttl - 1].sent++;
    if (!s.ok()) {
      ++failed;
      t.send_error = std::string(s.message());
      continue;  // counted as sent and lost, as mtr does
    }
    const uint32_t key = Key(t.ip_version, seq);
    // A late probe with this sequence (a wrap-around) gives way: an error
    // for it can no longer be told from one for the new probe.
    if (auto late = late_.find(key); late != late_.end()) {
      --ts_[late->second.probe.target].late;
      late_.erase(late);
    }
    outstanding_[key] = Outstanding{index, ttl, t.rounds_sent, sent_at};
    ++t.outstanding;
  }
  t.sends_failed += failed;
  ++t.rounds_sent;
  if (failed == limit && t.rounds_sent == 1) {
    // Nothing left the host (no route, ...): no point in more rounds.
    t.started = false;
    Fail(t,
         absl::StrCat("cannot send probes to ", t.run.resolved_address(), ": ",
                      t.send_error),
         now);
  }
}

void RunLoop::Handle(const IcmpPacketIn& p, absl::Time now) {
  absl::StatusOr<IcmpMessage> msg =
      p.from_error_queue ? ParseErrorQueueQuote(p.ip_version, p.error_type,
                                                p.error_code, p.data)
      : p.has_ip_header  ? ParseIpv4Packet(p.data)
                         : ParseIcmp(p.ip_version, p.data);
  if (!msg.ok()) {
    ++skipped_;
    return;
  }
  if (msg->kind == IcmpKind::kEchoRequest || msg->kind == IcmpKind::kOther) {
    return;
  }
  const uint32_t key = Key(msg->ip_version, msg->sequence);
  auto it = outstanding_.find(key);
  bool late = false;
  Outstanding o{};
  if (it != outstanding_.end()) {
    o = it->second;
  } else if (auto l = late_.find(key); l != late_.end()) {
    o = l->second.probe;
    late = true;
  } else {
    return;  // past every wait, or another program's
  }
  TargetState& t = ts_[o.target];
  if (!transport_.KernelSetsIdentifier() && msg->identifier != t.identifier) {
    return;  // another program's probe with the same sequence
  }
  if (!msg->quoted_destination.empty() &&
      msg->quoted_destination != t.address) {
    return;
  }
  if (late) {
    late_.erase(key);
    --t.late;
    // Past its timeout a probe stays lost unless the answer is an error:
    // a late echo or time-exceeded reply is loss, as before.
    if (msg->kind != IcmpKind::kDestUnreachable) return;
    t.late_error_seen = true;
  } else {
    outstanding_.erase(it);
    --t.outstanding;
  }
  std::string source = msg->source.empty() ? p.source : msg->source;
  absl::Time at = p.received_at;
  if (at < o.sent_at || at > now) at = now;  // no kernel time stamp
  const absl::Duration rtt = at - o.sent_at;
  // A late error does not stretch the path's timeout: it says how long a
  // router took to give up, not how long an answer takes.
  if (!late) t.max_rtt = std::max(t.max_rtt, rtt);
  Record(t, o, *msg, source, rtt);
}

void RunLoop::Record(TargetState& t, const Outstanding& o,
                     const IcmpMessage& msg, const std::string& source,
                     absl::Duration rtt) {
  t.any_reply = true;
  HopState& hop = t.hops[o.ttl - 1];
  // Like mtr, an ICMP error counts as the hop's answer, with its time.
  hop.replies.push_back(Reply{o.round, absl::ToDoubleMilliseconds(rtt)});
  auto a = std::find_if(hop.addresses.begin(), hop.addresses.end(),
                        [&](const auto& e) { return e.first == source; });
  if (a == hop.addresses.end()) {
    hop.addresses.emplace_back(source, 1);
  } else {
    ++a->second;
  }
  if (msg.kind == IcmpKind::kEchoReply) {
    if (t.dest_ttl == 0 || o.ttl < t.dest_ttl) t.dest_ttl = o.ttl;
  } else if (msg.kind == IcmpKind::kDestUnreachable) {
    std::string what = DescribeIcmp(msg.ip_version, msg.type, msg.code);
    hop.errors.insert(what);
    if (t.unreachable_ttl == 0 || o.ttl < t.unreachable_ttl) {
      t.unreachable_ttl = o.ttl;
      t.unreachable_reason =
          absl::StrCat("destination unreachable: ", what, " (from ",
                       AddressToString(source), " at hop ", o.ttl, ")");
    }
  }
}

void RunLoop::Expire(absl::Time now, absl::Time& wake) {
  // Past the known end of the path (or of a finished run) nothing is owed.
  auto beyond = [](const TargetState& t, uint32_t ttl) {
    return t.done || (t.dest_ttl > 0 && ttl > t.dest_ttl) ||
           (t.unreachable_ttl > 0 && ttl > t.unreachable_ttl);
  };
  // Only a path that ends in silence, or whose end answered late, waits for
  // late errors: once the destination answered, or a router answered
  // "unreachable" in time (its missing answers are ICMP rate limiting, as
  // Linux's 1/s for unreachable routes), nothing is late any more.
  auto may_answer_late = [](const TargetState& t) {
    return t.dest_ttl == 0 && (t.unreachable_ttl == 0 || t.late_error_seen);
  };
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    TargetState& t = ts_[it->second.target];
    const Outstanding& o = it->second;
    absl::Time deadline = o.sent_at + PathProbeTimeout(t.max_rtt);
    if (beyond(t, o.ttl) || deadline <= now) {
      if (!beyond(t, o.ttl) && may_answer_late(t)) {
        late_[it->first] = LateProbe{o, o.sent_at + kPathLateErrorWait};
        ++t.late;
      }
      --t.outstanding;
      it = outstanding_.erase(it);
    } else {
      wake = std::min(wake, deadline);
      ++it;
    }
  }
  for (auto it = late_.begin(); it != late_.end();) {
    TargetState& t = ts_[it->second.probe.target];
    if (beyond(t, it->second.probe.ttl) || !may_answer_late(t) ||
        it->second.until <= now) {
      --t.late;
      it = late_.erase(it);
    } else {
      wake = std::min(wake, it->second.until);
      ++it;
    }
  }
}

void RunLoop::Fail(TargetState& t, std::string error, absl::Time now) {
  t.run.set_error(std::move(error));
  Done(t, now);
}

void RunLoop::Done(TargetState& t, absl::Time now) {
  t.done = true;
  --remaining_;
  *t.run.mutable_finished_at() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
  spdlog::debug(
      "event=path_run_done target={} address={} reached={} hops={} "
      "error=\"{}\"",
      t.run.target(), t.run.resolved_address(), t.run.destination_reached(),
      t.run.hops_size(), t.run.error());
}

}  // namespace

absl::StatusOr<std::unique_ptr<PathProbe>> PathProbe::Create() {
  return Create(IcmpSocketChoice::kAuto);
}

absl::StatusOr<std::unique_ptr<PathProbe>> PathProbe::Create(
    IcmpSocketChoice choice) {
  absl::StatusOr<std::unique_ptr<IcmpTransport>> transport =
      OpenIcmpTransport(choice);
  if (!transport.ok()) return transport.status();
  return std::make_unique<PathProbe>(std::move(*transport), RealClock(),
                                     SystemPathNameService());
}

PathProbe::PathProbe(std::unique_ptr<IcmpTransport> transport, Clock& clock,
                     PathNameService& names)
    : transport_(std::move(transport)), clock_(clock), names_(names) {}

v1::PathRun PathProbe::Run(const std::string& target, const PathOptions& opts) {
  return RunMany({target}, opts).front();
}

std::vector<v1::PathRun> PathProbe::RunMany(
    const std::vector<std::string>& targets, const PathOptions& in_opts) {
  PathOptions opts = in_opts;
  opts.count = std::clamp<uint32_t>(opts.count, 1, kPathMaxCount);
  opts.max_ttl = std::clamp<uint32_t>(opts.max_ttl, 1, kPathMaxTtl);
  opts.payload_bytes = std::min(opts.payload_bytes, kPathMaxPayload);
  opts.interval = std::max(opts.interval, absl::ZeroDuration());
  RunLoop loop(*transport_, clock_, names_, next_sequence_, opts);
  return loop.Run(targets);
}

}  // namespace netvigil::agent
