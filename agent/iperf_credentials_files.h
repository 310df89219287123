// The agent's iperf3 credentials from the collector, kept as the files
// iperf3 reads (mode 0600, in <state dir>/iperf3/): the mesh's RSA key pair
// (rsa_private.pem, rsa_public.pem) and the authorized users (users.csv).
// They outlive a restart, so the agent's iperf3 server authenticates from its
// first start, before the collector has answered. The agent's own password
// stays in memory. Thread-safe.
#ifndef NETVIGIL_AGENT_IPERF_CREDENTIALS_FILES_H_
#define NETVIGIL_AGENT_IPERF_CREDENTIALS_FILES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/probes/speed_probe.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil::agent {

class IperfCredentialFiles {
 public:
  // `dir` is created (0700) when credentials first arrive.
  explicit IperfCredentialFiles(std::string dir);

  // Takes the key pair and users a previous run kept; true when both are
  // there.
  bool LoadKept() ABSL_LOCKS_EXCLUDED(mu_);

  // The welcome's credentials. nullptr (an older collector sent none): the
  // kept files are removed and the server runs without authentication.
  absl::Status SetAuth(const v1::IperfAuth* auth) ABSL_LOCKS_EXCLUDED(mu_);

  // The plan's authorized users. The file is replaced atomically: iperf3
  // reads it for every test, so the server need not restart.
  absl::Status SetUsers(const std::vector<v1::IperfUser>& users)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The `iperf3 -s` options for the kept key pair and users; empty without.
  std::vector<std::string> ServerArgs() const ABSL_LOCKS_EXCLUDED(mu_);

  // This agent's credentials for its client runs; nullopt without.
  std::optional<IperfClientAuth> ClientAuth() const ABSL_LOCKS_EXCLUDED(mu_);

  std::string private_key_path() const { return dir_ + "/rsa_private.pem"; }
  std::string public_key_path() const { return dir_ + "/rsa_public.pem"; }
  std::string users_path() const { return dir_ + "/users.csv"; }

 private:
  absl::Status WriteUsers(const std::vector<v1::IperfUser>& users)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  mutable absl::Mutex mu_;
  bool have_keys_ ABSL_GUARDED_BY(mu_) = false;
  std::string username_ ABSL_GUARDED_BY(mu_);
  std::string password_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::IperfUser> users_ ABSL_GUARDED_BY(mu_);
};

// Writes `text` to `path` through a temporary file and rename, mode 0600.
absl::Status WritePrivateFile(const std::string& path, const std::string& text);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_IPERF_CREDENTIALS_FILES_H_
