#include "collector/ingest/enroll_throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

EnrollThrottle::EnrollThrottle(EnrollThrottleOptions options, Clock& clock)
    : options_(options), clock_(clock) {
  absl::MutexLock l(&mu_);
  last_flush_ = clock_.MonotonicNow();
}

std::string EnrollThrottle::SourceOf(const std::string& grpc_peer) {
  absl::string_view p(grpc_peer);
  if (absl::ConsumePrefix(&p, "ipv4:")) {
    const size_t colon = p.rfind(':');
    return std::string(colon == absl::string_view::npos ? p
                                                        : p.substr(0, colon));
  }
  if (absl::ConsumePrefix(&p, "ipv6:")) {
    if (absl::ConsumePrefix(&p, "[")) {
      const size_t end = p.find(']');
      if (end != absl::string_view::npos) p = p.substr(0, end);
    }
    std::string addr(p.substr(0, p.find('%')));
    in6_addr a6;
    if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
      if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf));
        return buf;
      }
      // A host chooses its addresses within its /64.
      std::fill(&a6.s6_addr[8], &a6.s6_addr[16], 0);
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
      return absl::StrCat(buf, "/64");
    }
    return addr;
  }
  return "local";
}

void EnrollThrottle::Refill(Bucket& b, absl::Time now) {
  const double add = absl::FDivDuration(now - b.updated, options_.refill);
  if (add > 0) {
    b.tokens = std::min(options_.burst, b.tokens + add);
    b.updated = now;
  }
}

absl::Status EnrollThrottle::Admit(const std::string& source) {
  const absl::Time now = clock_.MonotonicNow();
  absl::MutexLock l(&mu_);
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_sources) {
      // Forget the sources whose buckets are full again (idle ones).
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        Refill(b->second, now);
        b = b->second.tokens >= options_.burst ? buckets_.erase(b)
                                               : std::next(b);
      }
    }
    if (buckets_.size() >= options_.max_sources) {
      // Still full of busy sources: newcomers share one bucket, so many
      // addresses buy an attacker nothing over one.
      it = buckets_.try_emplace("other", Bucket{options_.burst, now}).first;
    } else {
      it = buckets_.emplace(source, Bucket{options_.burst, now}).first;
    }
  }
  Bucket& b = it->second;
  Refill(b, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::OkStatus();
  }
  ++counts_[source]["throttled"];
  const double wait_s =
      std::ceil(absl::ToDoubleSeconds(options_.refill) * (1 - b.tokens));
  return absl::ResourceExhaustedError(
      absl::StrCat("too many enrollment attempts from ", source,
                   "; try again in ", std::max(1.0, wait_s), " s"));
}

void EnrollThrottle::Refund(const std::string& source) {
  absl::MutexLock l(&mu_);
  auto it = buckets_.find(source);
  if (it != buckets_.end()) {
    it->second.tokens = std::min(options_.burst, it->second.tokens + 1);
  }
}

void EnrollThrottle::CountFailure(const std::string& source,
                                  absl::StatusCode code) {
  absl::MutexLock l(&mu_);
  ++counts_[source][absl::AsciiStrToLower(absl::StatusCodeToString(code))];
}

void EnrollThrottle::Flush(bool force) {
  const absl::Time now = clock_.MonotonicNow();
  std::map<std::string, std::map<std::string, int64_t>> counts;
  double secs;
  {
    absl::MutexLock l(&mu_);
    if (!force && now - last_flush_ < options_.log_interval) return;
    secs = absl::ToDoubleSeconds(now - last_flush_);
    last_flush_ = now;
    counts.swap(counts_);
  }
  for (const auto& [source, what] : counts) {
    std::string detail;
    int64_t total = 0;
    for (const auto& [reason, n] : what) {
      absl::StrAppend(&detail, detail.empty() ? "" : ",", reason, ":", n);
      total += n;
    }
    spdlog::warn(
        "enroll_refused_summary source={} refused={} interval_s={:.0f} "
        "reasons={}",
        source, total, secs, detail);
  }
}

}  // namespace netvigil::collector
