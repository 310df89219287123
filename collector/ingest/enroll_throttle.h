// Slows enrollment attempts per source address: a token bucket per source
// (a few tries at once, then one every `refill`), so guessing tokens costs
// an attacker days per hundred thousand guesses instead of seconds. Refusals
// and failed attempts are counted per source and summarised: one log line per
// source and interval, with the counts, never a line per attempt.
// Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_ENROLL_THROTTLE_H_
#define NETVIGIL_COLLECTOR_INGEST_ENROLL_THROTTLE_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace netvigil::collector {

struct EnrollThrottleOptions {
  double burst = 5;                          // attempts at once
  absl::Duration refill = absl::Seconds(6);  // then one per this
  size_t max_sources = 4096;                 // tracked at once
  absl::Duration log_interval = absl::Seconds(10);
};

class EnrollThrottle {
 public:
  // `clock` is not owned; its monotonic time is used.
  EnrollThrottle(EnrollThrottleOptions options, Clock& clock);

  // The source part of a gRPC peer ("ipv4:1.2.3.4:5678" -> "1.2.3.4",
  // "ipv6:[fd00::1]:5678" -> "fd00::1"); IPv6 addresses count per /64.
  static std::string SourceOf(const std::string& grpc_peer);

  // Takes one attempt from `source`'s bucket: OK, or RESOURCE_EXHAUSTED
  // saying when to try again (counted for the summary).
  absl::Status Admit(const std::string& source);
  // Gives an admitted attempt back (it enrolled: not a guess).
  void Refund(const std::string& source);
  // Counts an attempt that was admitted and refused (bad token, bad CSR)
  // under `code` for the summary.
  void CountFailure(const std::string& source, absl::StatusCode code);
  // Logs the summary lines that are due (one per source with anything to
  // say); `force` logs now whatever the interval.
  void Flush(bool force = false);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  void Refill(Bucket& b, absl::Time now);

  const EnrollThrottleOptions options_;
  Clock& clock_;
  absl::Mutex mu_;
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  // source -> what happened -> count, since the last summary.
  std::map<std::string, std::map<std::string, int64_t>> counts_
      ABSL_GUARDED_BY(mu_);
  absl::Time last_flush_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_ENROLL_THROTTLE_H_
