#include "agent/iperf_credentials_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/iperf_credentials.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool LooksLikePem(const std::string& text, absl::string_view kind) {
  return text.find(absl::StrCat("-----BEGIN ", kind)) != std::string::npos;
}

}  // namespace

absl::Status WritePrivateFile(const std::string& path,
                              const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", tmp);
  // An older file of the same name may have had a wider mode.
  if (fchmod(fd, 0600) != 0) {
    absl::Status s = Errno("cannot chmod", tmp);
    close(fd);
    return s;
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = Errno("cannot write", tmp);
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) return Errno("cannot write", tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0)
    return Errno("cannot rename", tmp);
  return absl::OkStatus();
}

IperfCredentialFiles::IperfCredentialFiles(std::string dir)
    : dir_(std::move(dir)) {}

bool IperfCredentialFiles::LoadKept() {
  std::string priv, pub, users;
  if (!ReadFile(private_key_path(), &priv) ||
      !ReadFile(public_key_path(), &pub) || !ReadFile(users_path(), &users) ||
      !LooksLikePem(priv, "PRIVATE KEY") || !LooksLikePem(pub, "PUBLIC KEY")) {
    return false;
  }
  absl::MutexLock l(&mu_);
  have_keys_ = true;
  return true;
}

absl::Status IperfCredentialFiles::SetAuth(const v1::IperfAuth* auth) {
  absl::MutexLock l(&mu_);
  if (auth == nullptr) {
    have_keys_ = false;
    username_.clear();
    password_.clear();
    std::error_code ec;
    for (const std::string& p :
         {private_key_path(), public_key_path(), users_path()}) {
      std::filesystem::remove(p, ec);
    }
    return absl::OkStatus();
  }
  if (!LooksLikePem(auth->rsa_private_key_pem(), "PRIVATE KEY") ||
      !LooksLikePem(auth->rsa_public_key_pem(), "PUBLIC KEY")) {
    return absl::InvalidArgumentError(
        "the collector's iperf3 key pair is not PEM");
  }
  if (!ValidIperfUsername(auth->username()) || auth->password().empty()) {
    return absl::InvalidArgumentError(
        "the collector's iperf3 username or password is not usable");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir_, ": ", ec.message()));
  }
  chmod(dir_.c_str(), 0700);
  // The key pair changes rarely: leave equal files alone (no new inode, no
  // restart needed by anyone watching).
  std::string old;
  if (!ReadFile(private_key_path(), &old) ||
      old != auth->rsa_private_key_pem()) {
    if (absl::Status s =
            WritePrivateFile(private_key_path(), auth->rsa_private_key_pem());
        !s.ok()) {
      return s;
    }
  }
  if (!ReadFile(public_key_path(), &old) || old != auth->rsa_public_key_pem()) {
    if (absl::Status s =
            WritePrivateFile(public_key_path(), auth->rsa_public_key_pem());
        !s.ok()) {
      return s;
    }
  }
  // iperf3 will not start without its users file: write what is known.
  if (absl::Status s = WriteUsers(users_); !s.ok()) return s;
  username_ = auth->username();
  password_ = auth->password();
  have_keys_ = true;
  return absl::OkStatus();
}

absl::Status IperfCredentialFiles::SetUsers(
    const std::vector<v1::IperfUser>& users) {
  absl::MutexLock l(&mu_);
  if (!have_keys_) {
    users_ = users;  // written when a key pair arrives
    return absl::OkStatus();
  }
  return WriteUsers(users);
}

absl::Status IperfCredentialFiles::WriteUsers(
    const std::vector<v1::IperfUser>& users) {
  absl::StatusOr<std::string> text = AuthorizedUsersFile(users);
  if (!text.ok()) return text.status();
  std::string old;
  if (!ReadFile(users_path(), &old) || old != *text) {
    if (absl::Status s = WritePrivateFile(users_path(), *text); !s.ok()) {
      return s;
    }
  }
  users_ = users;
  return absl::OkStatus();
}

std::vector<std::string> IperfCredentialFiles::ServerArgs() const {
  absl::MutexLock l(&mu_);
  if (!have_keys_) return {};
  return {"--rsa-private-key-path", private_key_path(),
          "--authorized-users-path", users_path()};
}

std::optional<IperfClientAuth> IperfCredentialFiles::ClientAuth() const {
  absl::MutexLock l(&mu_);
  if (!have_keys_ || username_.empty()) return std::nullopt;
  return IperfClientAuth{username_, password_, public_key_path()};
}

}  // namespace netvigil::agent
