// iperf3's RSA authentication, as the collector issues it and the agents use
// it: an RSA key pair for the mesh, a password per agent derived from one
// secret, and the "username,sha256" lines of iperf3's authorized-users file.
// Pure functions on strings (OpenSSL inside); thread-safe.
//
// How the pieces fit (see also README, "Speed tests: iperf3 credentials"):
//  - The collector creates once, and keeps in PostgreSQL so that every
//    collector sharing the database issues the same, an RSA-2048 key pair
//    and a 32-byte secret.
//  - Agent A's password is HMAC-SHA256(secret, "iperf3:" + A), hex; its
//    username is its agent name. Nothing per agent is stored.
//  - Every agent gets in its Welcome the key pair (every agent is an iperf3
//    server, and iperf3 servers decrypt the client's token with the private
//    key) and its own username and password (for its client runs); in its
//    plan, the authorized users: every other agent's username and
//    sha256("{username}password"), which is the hash iperf3 checks.
//  - A stock iperf3 client with an agent's username, password
//    (IPERF3_PASSWORD) and the public key passes; without them iperf3 says
//    "test authorization failed".
#ifndef NETVIGIL_COMMON_IPERF_CREDENTIALS_H_
#define NETVIGIL_COMMON_IPERF_CREDENTIALS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netvigil/v1/agent.pb.h"

namespace netvigil {

struct IperfKeyPair {
  std::string private_pem;  // PKCS#8, no passphrase (iperf3 cannot ask)
  std::string public_pem;   // SubjectPublicKeyInfo, as iperf3 wants
};

// A new RSA key pair of `bits` bits.
absl::StatusOr<IperfKeyPair> NewIperfKeyPair(int bits = 2048);

// `bytes` random bytes from OpenSSL's generator.
absl::StatusOr<std::string> RandomBytes(size_t bytes);

// The password of `agent`: hex HMAC-SHA256(secret, "iperf3:" + agent).
std::string DeriveIperfPassword(absl::string_view secret,
                                absl::string_view agent);

// Hex SHA-256 of "{username}password": what iperf3's authorized-users file
// holds (iperf3(1), "Authentication - Authorized users configuration file").
std::string IperfPasswordSha256(absl::string_view username,
                                absl::string_view password);

// Whether `name` can be an iperf3 username in the comma-separated file:
// the agent-name alphabet (letters, digits, '.', '_', '-'), 1..128 bytes.
bool ValidIperfUsername(absl::string_view name);

// The authorized-users file for `users`. InvalidArgument naming the entry
// when a username cannot be written safely or a hash is not 64 hex digits.
absl::StatusOr<std::string> AuthorizedUsersFile(
    const std::vector<v1::IperfUser>& users);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_IPERF_CREDENTIALS_H_
