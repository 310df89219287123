#include "collector/admin/pki_admin.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/ingest/validation.h"
#include "collector/store/pg_cert_store.h"
#include "collector/store/pg_store.h"
#include "common/collector_config.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "common/tls_client.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace netvigil::collector {
namespace {

std::string PkiDir(const std::string& state_dir) { return state_dir + "/pki"; }

// Run as root for a service user (`sudo netvigil-collector pki init`), the
// files must still belong to the state folder's owner, who runs the
// collector.
void GiveToStateOwner(const std::string& state_dir, const std::string& path) {
  if (geteuid() != 0) return;
  struct stat st;
  if (stat(state_dir.c_str(), &st) != 0 || st.st_uid == 0) return;
  if (chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
    std::fprintf(stderr, "warning: cannot chown %s: %s\n", path.c_str(),
                 strerror(errno));
  }
}

absl::Status MakeDir(const std::string& dir, int mode) {
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

std::string HostNameOrDefault() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) == 0 && buf[0] != '\0') return buf;
  return "netvigil-collector";
}

// Refuses every call whose verified client certificate is not an admin's.
class AdminOnly final : public grpc::AuthMetadataProcessor {
 public:
  explicit AdminOnly(CertStore* certs) : certs_(certs) {}
  // The revocation check reads the database.
  bool IsBlocking() const override { return certs_ != nullptr; }
  grpc::Status Process(const InputMetadata&, grpc::AuthContext* ctx,
                       OutputMetadata*, OutputMetadata*) override {
    auto pem = ctx->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!ctx->IsPeerAuthenticated() || pem.empty()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "an admin client certificate is required");
    }
    auto cert = pki::ParseCert(absl::string_view(pem[0].data(), pem[0].size()));
    if (!cert.ok() || cert->role != pki::kRoleAdmin) {
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          "the Query service over TCP needs an admin certificate "
          "(netvigil-collector pki admin NAME)");
    }
    if (certs_ != nullptr) {
      absl::Status s = certs_->CheckCertificate(
          cert->serial_hex, pki::kRoleAdmin, cert->common_name);
      if (!s.ok()) {
        return grpc::Status(absl::IsPermissionDenied(s)
                                ? grpc::StatusCode::PERMISSION_DENIED
                                : grpc::StatusCode::UNAVAILABLE,
                            std::string(s.message()));
      }
    }
    return grpc::Status::OK;
  }

 private:
  CertStore* const certs_;
};

grpc::SslServerCredentialsOptions ServerOptions(
    const ServerPki& pki, grpc_ssl_client_certificate_request_type type) {
  grpc::SslServerCredentialsOptions o(type);
  o.pem_root_certs = pki.ca_cert;
  // The CA goes with the server certificate so that a new agent can find it
  // by its fingerprint before it trusts anything.
  o.pem_key_cert_pairs.push_back(
      {pki.server_key, absl::StrCat(pki.server_cert, pki.ca_cert)});
  return o;
}

absl::StatusOr<CollectorConfig> Config(const std::string& path) {
  return LoadCollectorConfig(path);
}

[[noreturn]] void Exit(const absl::Status& s) {
  if (s.ok()) std::exit(0);
  std::fprintf(stderr, "netvigil-collector: %s\n",
               std::string(s.message()).c_str());
  std::exit(1);
}

// "24h", "90m", "7d".
bool ParseTtl(const std::string& text, absl::Duration* out) {
  if (!text.empty() && text.back() == 'd') {
    int days = 0;
    if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &days)) {
      return false;
    }
    *out = absl::Hours(24) * days;
    return true;
  }
  return absl::ParseDuration(text, out);
}

// The host:port an agent dials to enrol: the listen address, or the
// certificate's first address or name when it listens on every address.
std::string EnrollAddress(const CollectorConfig& c, const ServerPki& pki) {
  std::string host = c.enroll_listen;
  std::string port = "7412";
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    auto info = pki::ParseCert(pki.server_cert);
    if (info.ok() && !info->ip_addresses.empty()) {
      host = info->ip_addresses[0];
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
    } else {
      host = pki.server_name;
    }
  }
  return absl::StrCat(host, ":", port);
}

absl::Status OpenDb(const CollectorConfig& c, PgStore& store) {
  absl::Status s = store.Migrate();
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("database (", c.database_dsn,
                                               "): ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerPki> InitPki(const PkiInitOptions& options) {
  const std::string dir = PkiDir(options.state_dir);
  if (access((dir + "/ca.key").c_str(), F_OK) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir,
        " already holds a CA; a new one would cut off every enrolled agent "
        "(move the folder away first if that is what you want)"));
  }
  NV_RETURN_IF_ERROR(MakeDir(options.state_dir, 0750));
  NV_RETURN_IF_ERROR(MakeDir(dir, 0700));
  GiveToStateOwner(options.state_dir, dir);
  ServerPki p;
  p.dir = dir;
  const absl::Time now = absl::Now();
  NV_ASSIGN_OR_RETURN(p.ca_key, pki::NewPrivateKey());
  pki::CertSpec ca;
  ca.common_name = absl::StrCat("netvigil CA ", HostNameOrDefault());
  if (ca.common_name.size() > 64) ca.common_name.resize(64);
  ca.role = pki::kRoleCa;
  ca.not_before = now - absl::Hours(1);
  ca.not_after = now + pki::kCaValidity;
  NV_ASSIGN_OR_RETURN(p.ca_cert, pki::SelfSignedCa(p.ca_key, ca));

  std::vector<std::string> names = options.dns_names;
  if (names.empty()) names.push_back(HostNameOrDefault());
  NV_ASSIGN_OR_RETURN(p.server_key, pki::NewPrivateKey());
  pki::CertSpec server;
  server.common_name = names[0];
  server.role = pki::kRoleServer;
  server.dns_names = names;
  server.ip_addresses = options.ip_addresses;
  server.not_before = now - absl::Hours(1);
  server.not_after = now + pki::kServerValidity;
  NV_ASSIGN_OR_RETURN(p.server_cert, pki::IssueForKey(p.ca_cert, p.ca_key,
                                                      p.server_key, server));
  p.server_name = names[0];
  NV_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCert(p.ca_cert));
  p.ca_fingerprint = info.sha256;
  // Keys first: a CA certificate without its key is useless, the other way
  // round InitPki can be run again.
  for (const auto& [file, text, mode] :
       std::vector<std::tuple<std::string, std::string, int>>{
           {"ca.key", p.ca_key, 0600},
           {"server.key", p.server_key, 0600},
           {"server.crt", p.server_cert, 0644},
           {"ca.crt", p.ca_cert, 0644}}) {
    NV_RETURN_IF_ERROR(pki::WriteFileAtomic(dir + "/" + file, text, mode));
    GiveToStateOwner(options.state_dir, dir + "/" + file);
  }
  return p;
}

absl::StatusOr<ServerPki> LoadServerPki(const std::string& state_dir) {
  ServerPki p;
  p.dir = PkiDir(state_dir);
  auto read = [&](const char* file, std::string* out) -> absl::Status {
    auto text = pki::ReadFile(p.dir + "/" + file);
    if (!text.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          text.status().message(),
          " (create the collector's CA with `netvigil-collector pki init`, "
          "or start with --insecure for tests)"));
    }
    *out = std::move(*text);
    return absl::OkStatus();
  };
  NV_RETURN_IF_ERROR(read("ca.crt", &p.ca_cert));
  NV_RETURN_IF_ERROR(read("ca.key", &p.ca_key));
  NV_RETURN_IF_ERROR(read("server.crt", &p.server_cert));
  NV_RETURN_IF_ERROR(read("server.key", &p.server_key));
  if (!pki::KeyMatchesCert(p.server_key, p.server_cert) ||
      !pki::KeyMatchesCert(p.ca_key, p.ca_cert)) {
    return absl::FailedPreconditionError(
        absl::StrCat(p.dir, ": a key does not belong to its certificate"));
  }
  NV_ASSIGN_OR_RETURN(pki::CertInfo ca, pki::ParseCert(p.ca_cert));
  NV_ASSIGN_OR_RETURN(pki::CertInfo server, pki::ParseCert(p.server_cert));
  p.ca_fingerprint = ca.sha256;
  p.server_name =
      server.dns_names.empty() ? server.common_name : server.dns_names[0];
  return p;
}

std::shared_ptr<grpc::ServerCredentials> AgentServerCredentials(
    const ServerPki& pki) {
  return grpc::SslServerCredentials(ServerOptions(
      pki, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY));
}

std::shared_ptr<grpc::ServerCredentials> EnrollServerCredentials(
    const ServerPki& pki) {
  return grpc::SslServerCredentials(
      ServerOptions(pki, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE));
}

std::shared_ptr<grpc::ServerCredentials> AdminServerCredentials(
    const ServerPki& pki, CertStore* certs) {
  auto creds = grpc::SslServerCredentials(ServerOptions(
      pki, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY));
  creds->SetAuthMetadataProcessor(std::make_shared<AdminOnly>(certs));
  return creds;
}

void RegisterPkiCommands(CLI::App& app, const std::string* config_path) {
  auto* pki_cmd =
      app.add_subcommand("pki", "the collector's certificate authority");
  pki_cmd->require_subcommand(1);

  // pki init
  auto* init = pki_cmd->add_subcommand(
      "init", "create the CA and the server certificate in <state_dir>/pki");
  auto names = std::make_shared<std::vector<std::string>>();
  auto addresses = std::make_shared<std::vector<std::string>>();
  init->add_option("--name", *names,
                   "DNS name in the server certificate (repeatable; the first "
                   "is the one agents pin; default: pki.server_names, else "
                   "this host's name)");
  init->add_option("--address", *addresses,
                   "IP address in the server certificate (repeatable; "
                   "default: pki.server_addresses)");
  init->callback([=] {
    auto c = Config(*config_path);
    if (!c.ok()) Exit(c.status());
    PkiInitOptions o;
    o.state_dir = c->state_dir;
    o.dns_names = names->empty() ? c->pki_server_names : *names;
    o.ip_addresses = addresses->empty() ? c->pki_server_addresses : *addresses;
    auto p = InitPki(o);
    if (!p.ok()) Exit(p.status());
    auto info = pki::ParseCert(p->server_cert);
    std::printf(
        "CA and server certificate written to %s\n"
        "ca_fingerprint: %s\n"
        "server_name: %s\n"
        "server_addresses: %s\n",
        p->dir.c_str(), p->ca_fingerprint.c_str(), p->server_name.c_str(),
        info.ok() ? absl::StrJoin(info->ip_addresses, ", ").c_str() : "");
    Exit(absl::OkStatus());
  });

  // pki admin NAME, and the hidden pki issue for tests.
  auto name = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* admin = pki_cmd->add_subcommand(
      "admin",
      "issue an admin client certificate for the Query service "
      "over TCP");
  admin->add_option("name", *name, "who it is for")->required();
  admin->add_option("--out", *out,
                    "folder for client.key, client.crt, ca.crt, server_name "
                    "(default <state_dir>/pki/admin-NAME)");
  auto role = std::make_shared<std::string>(pki::kRoleAgent);
  auto not_before = std::make_shared<std::string>("-1h");
  auto not_after = std::make_shared<std::string>("24h");
  auto record = std::make_shared<bool>(false);
  auto* issue = pki_cmd->add_subcommand(
      "issue", "(tests) issue a client certificate with a chosen validity");
  issue->group("");  // hidden
  issue->add_option("name", *name)->required();
  issue->add_option("--out", *out)->required();
  issue->add_option("--role", *role)->check(CLI::IsMember({"agent", "admin"}));
  issue->add_option("--not-before", *not_before, "offset from now, e.g. -48h");
  issue->add_option("--not-after", *not_after, "offset from now, e.g. -24h");
  issue->add_flag("--record", *record, "record it in the database");

  auto do_issue = [=](const std::string& r, absl::Duration nb,
                      absl::Duration na, bool must_record) {
    auto c = Config(*config_path);
    if (!c.ok()) Exit(c.status());
    if (r == pki::kRoleAdmin || must_record) {
      // Admin names are shown in logs; keep them to agent-name rules.
      if (absl::Status s = ValidateAgentName(*name, DefaultLimits()); !s.ok()) {
        Exit(s);
      }
    }
    auto p = LoadServerPki(c->state_dir);
    if (!p.ok()) Exit(p.status());
    ClientTls tls;
    auto key = pki::NewPrivateKey();
    if (!key.ok()) Exit(key.status());
    tls.key_pem = *key;
    pki::CertSpec spec;
    spec.common_name = *name;
    spec.role = r;
    const absl::Time now = absl::Now();
    spec.not_before = now + nb;
    spec.not_after = now + na;
    auto cert = pki::IssueForKey(p->ca_cert, p->ca_key, tls.key_pem, spec);
    if (!cert.ok()) Exit(cert.status());
    tls.cert_pem = *cert;
    tls.ca_pem = p->ca_cert;
    tls.server_name = p->server_name;
    auto info = pki::ParseCert(tls.cert_pem);
    if (!info.ok()) Exit(info.status());
    if (must_record) {
      PgStore store(c->database_dsn, 1);
      if (absl::Status s = OpenDb(*c, store); !s.ok()) Exit(s);
      PgCertStore certs(store);
      if (absl::Status s = certs.RecordCertificate(*info, now); !s.ok()) {
        Exit(s);
      }
    }
    const std::string dir =
        out->empty() ? absl::StrCat(p->dir, "/admin-", *name) : *out;
    if (absl::Status s = SaveClientTls(dir, tls); !s.ok()) Exit(s);
    std::printf(
        "%s certificate for '%s' written to %s\n"
        "serial: %s\nnot_after: %s\n",
        r.c_str(), name->c_str(), dir.c_str(), info->serial_hex.c_str(),
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", info->not_after,
                         absl::UTCTimeZone())
            .c_str());
    if (r == pki::kRoleAdmin) {
      std::printf("use: netvigil --collector HOST:PORT --tls-dir %s agents\n",
                  dir.c_str());
    }
    Exit(absl::OkStatus());
  };
  admin->callback([=] {
    do_issue(pki::kRoleAdmin, -absl::Hours(1), pki::kAdminValidity, true);
  });
  issue->callback([=] {
    absl::Duration nb, na;
    if (!absl::ParseDuration(*not_before, &nb) ||
        !absl::ParseDuration(*not_after, &na)) {
      Exit(absl::InvalidArgumentError("bad --not-before or --not-after"));
    }
    do_issue(*role, nb, na, *record);
  });

  // enroll NAME
  auto* enroll = app.add_subcommand(
      "enroll", "make a single-use enrollment token for agent NAME");
  auto ttl_text = std::make_shared<std::string>("24h");
  auto replace = std::make_shared<bool>(false);
  enroll->add_option("name", *name, "the agent's name")->required();
  enroll
      ->add_option("--ttl", *ttl_text,
                   "how long the token is good for (at most 7d)")
      ->capture_default_str();
  enroll->add_flag("--replace", *replace,
                   "give an existing agent's name to a new key (its old "
                   "certificate is revoked when the new one is issued)");
  enroll->callback([=] {
    auto c = Config(*config_path);
    if (!c.ok()) Exit(c.status());
    if (absl::Status s = ValidateAgentName(*name, DefaultLimits()); !s.ok()) {
      Exit(s);
    }
    absl::Duration ttl;
    if (!ParseTtl(*ttl_text, &ttl) || ttl < absl::Minutes(1) ||
        ttl > absl::Hours(24 * 7)) {
      Exit(absl::InvalidArgumentError(
          absl::StrCat("--ttl must be a duration from 1m to 7d (168h), got '",
                       *ttl_text, "'")));
    }
    auto p = LoadServerPki(c->state_dir);
    if (!p.ok()) Exit(p.status());
    auto token = pki::RandomToken(32);
    if (!token.ok()) Exit(token.status());
    PgStore store(c->database_dsn, 1);
    if (absl::Status s = OpenDb(*c, store); !s.ok()) Exit(s);
    PgCertStore certs(store);
    const absl::Time now = absl::Now();
    if (absl::Status s = certs.CreateToken(*name, pki::Sha256Hex(*token),
                                           *replace, now, now + ttl);
        !s.ok()) {
      Exit(s);
    }
    const std::string addr = EnrollAddress(*c, *p);
    std::printf(
        "agent: %s\ntoken: %s\nexpires: %s\nca_fingerprint: %s\n"
        "on the agent's host, as root:\n"
        "  netvigil-agent enroll --collector %s --name %s --token %s "
        "--ca-fingerprint %s\n",
        name->c_str(), token->c_str(),
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now + ttl, absl::UTCTimeZone())
            .c_str(),
        p->ca_fingerprint.c_str(), addr.c_str(), name->c_str(), token->c_str(),
        p->ca_fingerprint.c_str());
    Exit(absl::OkStatus());
  });

  // revoke NAME
  auto* revoke = app.add_subcommand(
      "revoke",
      "revoke agent NAME's certificates for good; its open stream "
      "is cut at once");
  auto admin_role = std::make_shared<bool>(false);
  revoke->add_option("name", *name, "the agent's name")->required();
  revoke->add_flag("--admin", *admin_role, "NAME is an admin, not an agent");
  revoke->callback([=] {
    auto c = Config(*config_path);
    if (!c.ok()) Exit(c.status());
    PgStore store(c->database_dsn, 1);
    if (absl::Status s = OpenDb(*c, store); !s.ok()) Exit(s);
    PgCertStore certs(store);
    const std::string r = *admin_role ? pki::kRoleAdmin : pki::kRoleAgent;
    auto n = certs.Revoke(r, *name, absl::Now());
    if (!n.ok()) Exit(n.status());
    std::printf("revoked %d certificate(s) of %s '%s' and its unused tokens\n",
                *n, r.c_str(), name->c_str());
    Exit(absl::OkStatus());
  });
}

}  // namespace netvigil::collector
