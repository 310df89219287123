// CertStore on PostgreSQL, sharing PgStore's connection pool (tables of
// migration 0007_security.sql). Thread-safe.
#ifndef NETVIGIL_COLLECTOR_STORE_PG_CERT_STORE_H_
#define NETVIGIL_COLLECTOR_STORE_PG_CERT_STORE_H_

#include "collector/store/cert_store.h"
#include "collector/store/pg_store.h"

namespace netvigil::collector {

class PgCertStore final : public CertStore {
 public:
  // `pg` is not owned and must outlive this.
  explicit PgCertStore(PgStore& pg) : pg_(pg) {}

  absl::Status CreateToken(const std::string& name,
                           const std::string& token_sha256, bool replace,
                           absl::Time now, absl::Time expires) override;
  absl::StatusOr<std::string> Enroll(const std::string& token_sha256,
                                     const std::string& name, absl::Time now,
                                     const Signer& sign) override;
  absl::Status RecordCertificate(const pki::CertInfo& cert,
                                 absl::Time now) override;
  absl::Status CheckCertificate(const std::string& serial_hex,
                                const std::string& role,
                                const std::string& name) override;
  absl::StatusOr<int> Revoke(const std::string& role, const std::string& name,
                             absl::Time now) override;
  absl::StatusOr<std::vector<Revocation>> AgentRevocationsAfter(
      int64_t after_id) override;
  absl::StatusOr<int64_t> LastRevocationId() override;

 private:
  PgStore& pg_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_STORE_PG_CERT_STORE_H_
