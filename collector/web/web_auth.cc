#include "collector/web/web_auth.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace netvigil::collector::web {
namespace {

// sodium_init is idempotent and thread-safe; -1 means no entropy source.
absl::Status InitSodium() {
  if (sodium_init() < 0) {
    return absl::InternalError("libsodium could not be initialised");
  }
  return absl::OkStatus();
}

absl::Mutex& CheckMutex() {
  static absl::Mutex mu(absl::kConstInit);
  return mu;
}

}  // namespace

absl::Status SetWebPassword(const std::string& path,
                            absl::string_view password) {
  if (password.size() < kMinPasswordBytes ||
      password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the password must be ", kMinPasswordBytes, " to ",
                     kMaxPasswordBytes, " bytes long; got ", password.size()));
  }
  for (unsigned char c : password) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "the password holds a control character (a line break or a tab?)");
    }
  }
  if (absl::Status s = InitSodium(); !s.ok()) return s;
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_MODERATE,
                        crypto_pwhash_MEMLIMIT_MODERATE) != 0) {
    return absl::ResourceExhaustedError(
        "crypto_pwhash_str failed (out of memory?)");
  }
  const std::string tmp = absl::StrCat(path, ".tmp");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  const std::string line = absl::StrCat(hash, "\n");
  const bool ok = fchmod(fd, 0600) == 0 &&
                  write(fd, line.data(), line.size()) ==
                      static_cast<ssize_t>(line.size()) &&
                  fsync(fd) == 0;
  const int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(e)));
  }
  return absl::OkStatus();
}

absl::Status CheckWebPassword(const std::string& path,
                              absl::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    return absl::PermissionDeniedError("wrong password");
  }
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("no web password is set (", path,
                     "): run `netvigil-collector web-password set`"));
  }
  std::string hash;
  std::getline(in, hash);
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " does not hold a password hash"));
  }
  if (absl::Status s = InitSodium(); !s.ok()) return s;
  absl::MutexLock l(&CheckMutex());
  if (crypto_pwhash_str_verify(hash.c_str(), password.data(),
                               password.size()) != 0) {
    return absl::PermissionDeniedError("wrong password");
  }
  return absl::OkStatus();
}

SessionTable::SessionTable(Clock& clock, absl::Duration idle,
                           size_t max_sessions)
    : clock_(clock), idle_(idle), max_sessions_(max_sessions) {}

std::string SessionTable::Key(absl::string_view token) {
  unsigned char h[crypto_generichash_BYTES];
  crypto_generichash(h, sizeof(h),
                     reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

std::string SessionTable::Create() {
  (void)InitSodium();  // Idempotent; failing, randombytes aborts loudly.
  unsigned char raw[32];
  randombytes_buf(raw, sizeof(raw));
  const std::string token = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  const absl::Time now = clock_.Now();
  absl::MutexLock l(&mu_);
  for (auto it = last_used_.begin(); it != last_used_.end();) {
    it = now - it->second > idle_ ? last_used_.erase(it) : std::next(it);
  }
  while (last_used_.size() >= max_sessions_) {
    auto oldest = std::min_element(
        last_used_.begin(), last_used_.end(),
        [](const auto& a, const auto& b) { return a.second < b.second; });
    last_used_.erase(oldest);
  }
  last_used_[Key(token)] = now;
  return token;
}

bool SessionTable::Touch(absl::string_view token) {
  if (token.size() != 64) return false;
  const std::string key = Key(token);
  const absl::Time now = clock_.Now();
  absl::MutexLock l(&mu_);
  auto it = last_used_.find(key);
  if (it == last_used_.end()) return false;
  if (now - it->second > idle_) {
    last_used_.erase(it);
    return false;
  }
  it->second = now;
  return true;
}

void SessionTable::End(absl::string_view token) {
  const std::string key = Key(token);
  absl::MutexLock l(&mu_);
  last_used_.erase(key);
}

LoginLimiter::LoginLimiter(Clock& clock, int max_failures,
                           absl::Duration window, size_t max_sources)
    : clock_(clock),
      max_failures_(max_failures),
      window_(window),
      max_sources_(max_sources) {}

absl::Duration LoginLimiter::Wait(const std::string& source) {
  const absl::Time now = clock_.Now();
  absl::MutexLock l(&mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) return absl::ZeroDuration();
  if (now - it->second.first >= window_) {
    entries_.erase(it);
    return absl::ZeroDuration();
  }
  if (it->second.failures < max_failures_) return absl::ZeroDuration();
  return it->second.first + window_ - now;
}

void LoginLimiter::Failed(const std::string& source) {
  const absl::Time now = clock_.Now();
  absl::MutexLock l(&mu_);
  auto it = entries_.find(source);
  if (it == entries_.end() || now - it->second.first >= window_) {
    if (entries_.size() >= max_sources_) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                     [](const auto& a, const auto& b) {
                                       return a.second.first < b.second.first;
                                     });
      entries_.erase(oldest);
    }
    entries_[source] = Entry{now, 1};
    return;
  }
  ++it->second.failures;
}

void LoginLimiter::Succeeded(const std::string& source) {
  absl::MutexLock l(&mu_);
  entries_.erase(source);
}

}  // namespace netvigil::collector::web
