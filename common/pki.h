// The collector's small CA and the agent's side of it, on OpenSSL: EC P-256
// keys, certificate requests, certificates signed with SHA-256 and random
// serial numbers, SHA-256 fingerprints. Everything is PEM text in and out,
// so tests and callers never hold an OpenSSL object. Every function is
// thread-safe (no shared state).
#ifndef NETVIGIL_COMMON_PKI_H_
#define NETVIGIL_COMMON_PKI_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace netvigil::pki {

// The role a certificate is for, written in its subject as the
// organizational unit (OU) so that a verified peer's role is part of what
// the CA signed.
inline constexpr char kRoleCa[] = "ca";
inline constexpr char kRoleServer[] = "server";
inline constexpr char kRoleAgent[] = "agent";
inline constexpr char kRoleAdmin[] = "admin";

// Validity the collector gives by default.
inline constexpr absl::Duration kCaValidity = absl::Hours(24 * 3652);
inline constexpr absl::Duration kServerValidity = absl::Hours(24 * 3652);
inline constexpr absl::Duration kAgentValidity = absl::Hours(24 * 365);
inline constexpr absl::Duration kAdminValidity = absl::Hours(24 * 365);

// What a new certificate says. The subject is CN=common_name, OU=role,
// O=netvigil.
struct CertSpec {
  std::string common_name;
  std::string role;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  absl::Time not_before;
  absl::Time not_after;
};

// What a certificate says, read back.
struct CertInfo {
  std::string common_name;
  std::string role;        // the subject's OU
  std::string serial_hex;  // lower-case hex, no separators
  std::string sha256;      // fingerprint of the DER, "AB:CD:..."
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// A new EC P-256 private key, PKCS#8 PEM.
absl::StatusOr<std::string> NewPrivateKey();

// A certificate request for `common_name`, signed with `key_pem`.
absl::StatusOr<std::string> MakeCsr(absl::string_view key_pem,
                                    absl::string_view common_name);

// A self-signed CA certificate for `key_pem`.
absl::StatusOr<std::string> SelfSignedCa(absl::string_view key_pem,
                                         const CertSpec& spec);

// A certificate for `spec` and the public key of `subject_key_pem` (a private
// key, of which only the public half is used), signed by the CA. Server
// certificates get serverAuth, the others clientAuth.
absl::StatusOr<std::string> IssueForKey(absl::string_view ca_cert_pem,
                                        absl::string_view ca_key_pem,
                                        absl::string_view subject_key_pem,
                                        const CertSpec& spec);

// As IssueForKey, for the public key of a certificate request. The request's
// own signature must verify and its key must be EC P-256; the subject it asks
// for is ignored (the CA decides the name: spec.common_name).
absl::StatusOr<std::string> SignCsr(absl::string_view ca_cert_pem,
                                    absl::string_view ca_key_pem,
                                    absl::string_view csr_pem,
                                    const CertSpec& spec);

// Reads the first certificate of `cert_pem`.
absl::StatusOr<CertInfo> ParseCert(absl::string_view cert_pem);

// OK when `cert_pem` is signed by the CA in `ca_pem` and valid at `now`.
absl::Status VerifyIssuedBy(absl::string_view cert_pem,
                            absl::string_view ca_pem, absl::Time now);

// True when the certificate holds the public half of the private key.
bool KeyMatchesCert(absl::string_view key_pem, absl::string_view cert_pem);

// "AB:CD:..." for the SHA-256 of `der`.
std::string FingerprintOfDer(absl::string_view der);

// A fingerprint as a user may type it (any case, with or without colons or a
// "sha256:" prefix) in the canonical "AB:CD:..." form; empty when it is not
// 32 bytes of hex.
std::string NormalizeFingerprint(absl::string_view text);

// Lower-case hex SHA-256 of `data` (stored token hashes).
std::string Sha256Hex(absl::string_view data);

// `n` random bytes from OpenSSL's CSPRNG as URL-safe base64 without padding.
absl::StatusOr<std::string> RandomToken(int n);

// Writes `content` to `path` through a temporary file and rename, with
// `mode` set before any byte is written.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view content,
                             int mode);
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace netvigil::pki

#endif  // NETVIGIL_COMMON_PKI_H_
