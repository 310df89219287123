// What the collector's CA keeps in PostgreSQL: enrollment tokens (hashed),
// the certificates it signed for agents and admins, and revocations. A seam
// of its own, apart from Store, so the security code is tested with a fake
// and the ingest path is not touched. Implementations are thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_CERT_STORE_H_
#define NETVIGIL_COLLECTOR_STORE_CERT_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"

namespace netvigil::collector {

class CertStore {
 public:
  virtual ~CertStore() = default;

  // Records a new token (by its SHA-256) for `name`, valid until `expires`.
  // Without `replace`, a name the collector already knows (an agent row or a
  // certificate, even a revoked one) is ALREADY_EXISTS.
  virtual absl::Status CreateToken(const std::string& name,
                                   const std::string& token_sha256,
                                   bool replace, absl::Time now,
                                   absl::Time expires) = 0;

  // Spends the token and records the certificate `sign` makes, in one
  // transaction: if signing fails the token stays unspent. A token that is
  // unknown, spent, expired or for another name is PERMISSION_DENIED saying
  // which. A token made with `replace` revokes the name's older
  // certificates. Returns the new certificate's PEM.
  using Signer = std::function<absl::StatusOr<std::string>()>;
  virtual absl::StatusOr<std::string> Enroll(const std::string& token_sha256,
                                             const std::string& name,
                                             absl::Time now,
                                             const Signer& sign) = 0;

  // Records a certificate signed outside enrollment (admins, tests).
  virtual absl::Status RecordCertificate(const pki::CertInfo& cert,
                                         absl::Time now) = 0;

  // OK when the certificate with `serial_hex` was issued by this collector
  // for `role` and `name` and is not revoked; PERMISSION_DENIED otherwise.
  virtual absl::Status CheckCertificate(const std::string& serial_hex,
                                        const std::string& role,
                                        const std::string& name) = 0;

  // Revokes every certificate of `name` in `role` and its unspent tokens;
  // returns how many certificates. NOT_FOUND when the name has neither.
  virtual absl::StatusOr<int> Revoke(const std::string& role,
                                     const std::string& name,
                                     absl::Time now) = 0;

  // Revocations after `after_id`, in order: (id, name) of agents.
  struct Revocation {
    int64_t id = 0;
    std::string name;
  };
  virtual absl::StatusOr<std::vector<Revocation>> AgentRevocationsAfter(
      int64_t after_id) = 0;
  // The newest revocation's id (0 when none).
  virtual absl::StatusOr<int64_t> LastRevocationId() = 0;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_CERT_STORE_H_
