// `netvigil-agent enroll`: makes this agent's key here (it never leaves the
// host), finds the collector's CA by the fingerprint the administrator was
// given, sends a certificate request with the single-use token over TLS
// that trusts only that CA, and keeps the key (0600), the certificate, the
// CA and the collector's name in the state folder. Thread-compatible.
#ifndef NETVIGIL_AGENT_ENROLL_H_
#define NETVIGIL_AGENT_ENROLL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace netvigil::agent {

struct EnrollOptions {
  std::string collector;  // host:port of the collector's enrollment listener
  std::string token;
  std::string ca_fingerprint;  // SHA-256 of the CA, as `enroll` printed it
  std::string name;
  std::string state_dir;
  absl::Duration timeout = absl::Seconds(30);
};

// Enrols and writes the files; the error says what was refused and why.
absl::Status Enroll(const EnrollOptions& options);

// The certificates a TLS server at host:port presents (PEM, leaf first),
// read without trusting them: the caller decides what to trust.
absl::StatusOr<std::vector<std::string>> FetchServerChain(
    const std::string& host_port, absl::Duration timeout);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_ENROLL_H_
