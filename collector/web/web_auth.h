// The dashboard's login when it listens off loopback: the password's slow
// hash in a 0600 file, the sessions (random 256-bit tokens, expiring when
// idle) and the limit on login attempts. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_WEB_WEB_AUTH_H_
#define NETVIGIL_COLLECTOR_WEB_WEB_AUTH_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace netvigil::collector::web {

// Shortest and longest password `web-password set` takes.
inline constexpr size_t kMinPasswordBytes = 8;
inline constexpr size_t kMaxPasswordBytes = 1024;

// Writes libsodium's crypto_pwhash_str (Argon2id, its "moderate" limits) of
// `password` to `path` with mode 0600, through a temporary file and a rename
// so a reader never sees half a hash. INVALID_ARGUMENT for a password out
// of bounds or holding a control character.
absl::Status SetWebPassword(const std::string& path,
                            absl::string_view password);

// OK when `password` matches the hash in `path`; PERMISSION_DENIED when it
// does not; FAILED_PRECONDITION when no password was set (no file) or the
// file is not a hash. The file is read on every call so a new password
// takes effect without a restart. One check at a time (each takes ~256 MiB
// and a fraction of a second): callers queue here.
absl::Status CheckWebPassword(const std::string& path,
                              absl::string_view password);

// Sessions in memory (a restart logs everybody out). A token is 32 random
// bytes as 64 hex digits; the table keys them by their BLAKE2b hash so a
// lookup's timing says nothing about a valid token.
class SessionTable {
 public:
  SessionTable(Clock& clock, absl::Duration idle, size_t max_sessions = 256);

  // A new session's token. Past max_sessions the least recently used
  // session ends.
  std::string Create() ABSL_LOCKS_EXCLUDED(mu_);
  // True when `token` names a session that has not been idle for longer
  // than `idle`; the session's idle time then starts again.
  bool Touch(absl::string_view token) ABSL_LOCKS_EXCLUDED(mu_);
  void End(absl::string_view token) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static std::string Key(absl::string_view token);

  Clock& clock_;
  const absl::Duration idle_;
  const size_t max_sessions_;
  absl::Mutex mu_;
  std::map<std::string, absl::Time> last_used_ ABSL_GUARDED_BY(mu_);
};

// Failed logins per source address: after `max_failures` within `window`
// a source is refused until the window has passed since its first
// failure; and at most `max_sources` sources are tracked (a flood of
// addresses forgets the oldest, it does not grow the table).
class LoginLimiter {
 public:
  LoginLimiter(Clock& clock, int max_failures = 5,
               absl::Duration window = absl::Minutes(1),
               size_t max_sources = 4096);
  // Zero when `source` may try now, else how long until it may.
  absl::Duration Wait(const std::string& source) ABSL_LOCKS_EXCLUDED(mu_);
  void Failed(const std::string& source) ABSL_LOCKS_EXCLUDED(mu_);
  void Succeeded(const std::string& source) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    absl::Time first;
    int failures = 0;
  };
  Clock& clock_;
  const int max_failures_;
  const absl::Duration window_;
  const size_t max_sources_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector::web

#endif  // NETVIGIL_COLLECTOR_WEB_WEB_AUTH_H_
