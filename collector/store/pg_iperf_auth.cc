#include "collector/store/pg_iperf_auth.h"

#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "common/iperf_credentials.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

bool Load(pqxx::work& tx, IperfMeshSecrets* out) {
  pqxx::result r = tx.exec(
      "SELECT rsa_private, rsa_public, user_secret FROM iperf_auth "
      "WHERE id = 1");
  if (r.empty()) return false;
  out->rsa_private_pem = r[0][0].as<std::string>();
  out->rsa_public_pem = r[0][1].as<std::string>();
  out->user_secret = absl::HexStringToBytes(r[0][2].as<std::string>());
  return true;
}

}  // namespace

absl::StatusOr<IperfMeshSecrets> LoadOrCreateIperfSecrets(PgStore& pg) {
  IperfMeshSecrets out;
  bool found = false;
  absl::Status s = pg.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    found = Load(tx, &out);
    tx.commit();
  });
  if (!s.ok()) return s;
  if (found) return out;

  // Made outside any transaction: an RSA key takes a moment.
  absl::StatusOr<IperfKeyPair> keys = NewIperfKeyPair();
  if (!keys.ok()) return keys.status();
  absl::StatusOr<std::string> secret = RandomBytes(32);
  if (!secret.ok()) return secret.status();
  s = pg.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO iperf_auth (id, rsa_private, rsa_public, user_secret) "
        "VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        keys->private_pem, keys->public_pem, absl::BytesToHexString(*secret));
    found = Load(tx, &out);
    tx.commit();
  });
  if (!s.ok()) return s;
  if (!found) return absl::InternalError("iperf_auth row missing after insert");
  spdlog::info("iperf3_credentials_ready detail=\"mesh key pair loaded\"");
  return out;
}

}  // namespace netvigil::collector
