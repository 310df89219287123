#include "collector/store/pg_cert_store.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace netvigil::collector {
namespace {

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// Inserts a certificate row in `tx`.
void InsertCertificate(pqxx::work& tx, const pki::CertInfo& cert,
                       absl::Time now) {
  tx.exec_params0(
      "INSERT INTO certificates (serial, name, role, sha256, not_before,"
      " not_after, issued_at) VALUES ($1, $2, $3, $4, to_timestamp($5 / 1e6),"
      " to_timestamp($6 / 1e6), to_timestamp($7 / 1e6))",
      cert.serial_hex, cert.common_name, cert.role, cert.sha256,
      Micros(cert.not_before), Micros(cert.not_after), Micros(now));
}

// Revokes `name`'s live certificates in `role` except `keep_serial`;
// returns how many.
int RevokeIn(pqxx::work& tx, const std::string& role, const std::string& name,
             const std::string& keep_serial, absl::Time now) {
  const pqxx::result r = tx.exec_params(
      "UPDATE certificates SET revoked_at = to_timestamp($3 / 1e6)"
      " WHERE role = $1 AND name = $2 AND revoked_at IS NULL"
      " AND serial <> $4 RETURNING serial",
      role, name, Micros(now), keep_serial);
  // Only a real revocation is news to the collectors' watchers: a replace
  // enrollment of a name with no live certificate revoked nothing, and its
  // row used to cut the new agent's first stream.
  if (r.empty()) return 0;
  tx.exec_params0(
      "INSERT INTO revocations (role, name, revoked_at)"
      " VALUES ($1, $2, to_timestamp($3 / 1e6))",
      role, name, Micros(now));
  return static_cast<int>(r.size());
}

}  // namespace

absl::Status PgCertStore::CreateToken(const std::string& name,
                                      const std::string& token_sha256,
                                      bool replace, absl::Time now,
                                      absl::Time expires) {
  absl::Status refused;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (!replace) {
      const bool known =
          tx.exec_params1(
                "SELECT EXISTS (SELECT 1 FROM agents WHERE name = $1)"
                " OR EXISTS (SELECT 1 FROM certificates WHERE role = 'agent'"
                "  AND name = $1)"
                " OR EXISTS (SELECT 1 FROM enrollment_tokens WHERE"
                "  agent_name = $1 AND used_at IS NULL"
                "  AND expires_at > to_timestamp($2 / 1e6))",
                name, Micros(now))[0]
              .as<bool>();
      if (known) {
        refused = absl::AlreadyExistsError(absl::StrCat(
            "agent '", name,
            "' already exists (or has a pending token); enrol it again with "
            "--replace to give the name to a new key"));
        return;
      }
    }
    tx.exec_params0(
        "INSERT INTO enrollment_tokens (token_sha256, agent_name, replace,"
        " created_at, expires_at) VALUES ($1, $2, $3, to_timestamp($4 / 1e6),"
        " to_timestamp($5 / 1e6))",
        token_sha256, name, replace, Micros(now), Micros(expires));
    tx.commit();
  });
  return s.ok() ? refused : s;
}

absl::StatusOr<std::string> PgCertStore::Enroll(const std::string& token_sha256,
                                                const std::string& name,
                                                absl::Time now,
                                                const Signer& sign) {
  absl::Status refused;
  std::string pem;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // FOR UPDATE: two requests with one token serialise here; the second
    // sees used_at set.
    const pqxx::result r = tx.exec_params(
        "SELECT agent_name, replace, used_at IS NOT NULL,"
        " expires_at <= to_timestamp($2 / 1e6),"
        " to_char(expires_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        " FROM enrollment_tokens WHERE token_sha256 = $1 FOR UPDATE",
        token_sha256, Micros(now));
    if (r.empty()) {
      refused = absl::PermissionDeniedError(
          "unknown enrollment token (ask for one with `netvigil-collector "
          "enroll NAME`)");
      return;
    }
    const std::string token_name = r[0][0].as<std::string>();
    const bool replace = r[0][1].as<bool>();
    if (r[0][2].as<bool>()) {
      refused = absl::PermissionDeniedError(
          "this enrollment token was already used; tokens are single-use");
      return;
    }
    if (r[0][3].as<bool>()) {
      refused = absl::PermissionDeniedError(absl::StrCat(
          "this enrollment token expired at ", r[0][4].as<std::string>()));
      return;
    }
    if (token_name != name) {
      refused = absl::PermissionDeniedError(
          absl::StrCat("this enrollment token is for agent '", token_name,
                       "', not '", name, "'"));
      return;
    }
    absl::StatusOr<std::string> cert = sign();
    if (!cert.ok()) {
      refused = cert.status();
      return;
    }
    absl::StatusOr<pki::CertInfo> info = pki::ParseCert(*cert);
    if (!info.ok()) {
      refused = info.status();
      return;
    }
    if (replace) RevokeIn(tx, pki::kRoleAgent, name, info->serial_hex, now);
    InsertCertificate(tx, *info, now);
    tx.exec_params0(
        "UPDATE enrollment_tokens SET used_at = to_timestamp($2 / 1e6)"
        " WHERE token_sha256 = $1",
        token_sha256, Micros(now));
    tx.commit();
    pem = *cert;
  });
  if (!s.ok()) return s;
  if (!refused.ok()) return refused;
  return pem;
}

absl::Status PgCertStore::RecordCertificate(const pki::CertInfo& cert,
                                            absl::Time now) {
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    InsertCertificate(tx, cert, now);
    tx.commit();
  });
}

absl::Status PgCertStore::CheckCertificate(const std::string& serial_hex,
                                           const std::string& role,
                                           const std::string& name) {
  absl::Status refused;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const pqxx::result r = tx.exec_params(
        "SELECT role, name, revoked_at IS NOT NULL FROM certificates"
        " WHERE serial = $1",
        serial_hex);
    if (r.empty()) {
      refused = absl::PermissionDeniedError(
          absl::StrCat("certificate ", serial_hex,
                       " was not issued by this collector's enrollment"));
    } else if (r[0][0].as<std::string>() != role ||
               r[0][1].as<std::string>() != name) {
      refused = absl::PermissionDeniedError(
          absl::StrCat("certificate ", serial_hex, " is not an ", role,
                       " certificate for '", name, "'"));
    } else if (r[0][2].as<bool>()) {
      refused = absl::PermissionDeniedError(
          absl::StrCat("the certificate of '", name, "' is revoked"));
    }
  });
  return s.ok() ? refused : s;
}

absl::StatusOr<int> PgCertStore::Revoke(const std::string& role,
                                        const std::string& name,
                                        absl::Time now) {
  int n = 0;
  bool known = false;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    known = tx.exec_params1(
                  "SELECT EXISTS (SELECT 1 FROM certificates WHERE role = $1"
                  "  AND name = $2) OR EXISTS (SELECT 1 FROM enrollment_tokens"
                  "  WHERE agent_name = $2 AND $1 = 'agent')",
                  role, name)[0]
                .as<bool>();
    if (!known) return;
    n = RevokeIn(tx, role, name, "", now);
    // Unspent tokens for the name die with it.
    tx.exec_params0(
        "UPDATE enrollment_tokens SET expires_at = to_timestamp($2 / 1e6)"
        " WHERE agent_name = $1 AND used_at IS NULL"
        " AND expires_at > to_timestamp($2 / 1e6)",
        name, Micros(now));
    tx.commit();
  });
  if (!s.ok()) return s;
  if (!known) {
    return absl::NotFoundError(
        absl::StrCat("no ", role, " named '", name, "' was ever enrolled"));
  }
  return n;
}

absl::StatusOr<std::vector<CertStore::Revocation>>
PgCertStore::AgentRevocationsAfter(int64_t after_id) {
  std::vector<Revocation> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row :
         tx.exec_params("SELECT id, name FROM revocations WHERE id > $1"
                        " AND role = 'agent' ORDER BY id",
                        after_id)) {
      out.push_back({row[0].as<int64_t>(), row[1].as<std::string>()});
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<int64_t> PgCertStore::LastRevocationId() {
  int64_t id = 0;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    id = tx.exec1("SELECT COALESCE(max(id), 0) FROM revocations")[0]
             .as<int64_t>();
  });
  if (!s.ok()) return s;
  return id;
}

}  // namespace netvigil::collector
