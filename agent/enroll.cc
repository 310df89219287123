#include "agent/enroll.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_status.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "common/tls_client.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/agent.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

// Splits "host:port" and "[v6]:port".
bool SplitHostPort(const std::string& hp, std::string* host,
                   std::string* port) {
  if (!hp.empty() && hp[0] == '[') {
    const size_t close = hp.find(']');
    if (close == std::string::npos || close + 1 >= hp.size() ||
        hp[close + 1] != ':') {
      return false;
    }
    *host = hp.substr(1, close - 1);
    *port = hp.substr(close + 2);
  } else {
    const size_t colon = hp.rfind(':');
    if (colon == std::string::npos) return false;
    *host = hp.substr(0, colon);
    *port = hp.substr(colon + 1);
  }
  return !host->empty() && !port->empty();
}

// A connected TCP socket, or -1 with `err` set.
int Connect(const std::string& host, const std::string& port,
            absl::Duration timeout, std::string* err) {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *err = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EINPROGRESS) {
      pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, absl::ToInt64Milliseconds(timeout)) == 1) {
        int so = 0;
        socklen_t len = sizeof(so);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        errno = so;
      } else {
        errno = ETIMEDOUT;
      }
    } else {
      errno = 0;
    }
    if (errno == 0) break;
    *err = strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    // Blocking from here, bounded by socket timeouts.
    timeval tv = {static_cast<time_t>(absl::ToInt64Seconds(timeout)), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> FetchServerChain(
    const std::string& host_port, absl::Duration timeout) {
  std::string host, port, err;
  if (!SplitHostPort(host_port, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_port, "' is not host:port"));
  }
  const int fd = Connect(host, port, timeout, &err);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", host_port, ": ", err));
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(
      SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Nothing is trusted yet: the chain is only read, and the caller checks
  // it against the fingerprint before trusting any of it.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn));
  SSL_set_fd(ssl.get(), fd);
  std::vector<std::string> out;
  if (SSL_connect(ssl.get()) == 1) {
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      BIO* b = BIO_new(BIO_s_mem());
      PEM_write_bio_X509(b, sk_X509_value(chain, i));
      char* data = nullptr;
      long n = BIO_get_mem_data(b, &data);
      out.emplace_back(data, n);
      BIO_free(b);
    }
    SSL_shutdown(ssl.get());
  } else {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    err = buf;
  }
  ERR_clear_error();
  close(fd);
  if (out.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no TLS certificate from ", host_port,
                     err.empty() ? "" : absl::StrCat(": ", err)));
  }
  return out;
}

absl::Status Enroll(const EnrollOptions& o) {
  const std::string want = pki::NormalizeFingerprint(o.ca_fingerprint);
  if (want.empty()) {
    return absl::InvalidArgumentError(
        "--ca-fingerprint: expected the CA's SHA-256 fingerprint as "
        "`netvigil-collector enroll` printed it (64 hex digits)");
  }
  NV_ASSIGN_OR_RETURN(std::vector<std::string> chain,
                      FetchServerChain(o.collector, o.timeout));
  std::string ca_pem;
  std::vector<std::string> seen;
  for (const std::string& pem : chain) {
    auto info = pki::ParseCert(pem);
    if (!info.ok()) continue;
    seen.push_back(info->sha256);
    if (info->sha256 == want && info->is_ca) ca_pem = pem;
  }
  if (ca_pem.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the collector at ", o.collector,
                     " does not present a CA with fingerprint ", want,
                     " (it presents ", absl::StrJoin(seen, ", "),
                     "): not the collector you were given, refusing to enrol"));
  }
  const absl::Time now = absl::Now();
  if (absl::Status s = pki::VerifyIssuedBy(chain[0], ca_pem, now); !s.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the collector's certificate is not signed by the pinned CA: ",
        s.message()));
  }
  NV_ASSIGN_OR_RETURN(pki::CertInfo server, pki::ParseCert(chain[0]));
  const std::string server_name =
      server.dns_names.empty() ? server.common_name : server.dns_names[0];

  ClientTls tls;
  NV_ASSIGN_OR_RETURN(tls.key_pem, pki::NewPrivateKey());
  NV_ASSIGN_OR_RETURN(std::string csr, pki::MakeCsr(tls.key_pem, o.name));

  grpc::SslCredentialsOptions creds;
  creds.pem_root_certs = ca_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  auto channel =
      grpc::CreateCustomChannel(o.collector, grpc::SslCredentials(creds), args);
  auto stub = v1::Agent::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(o.timeout));
  v1::EnrollRequest req;
  req.set_agent_name(o.name);
  req.set_token(o.token);
  req.set_csr_pem(csr);
  v1::EnrollResponse resp;
  const absl::Time started = absl::Now();
  grpc::Status st = stub->Enroll(&ctx, req, &resp);
  if (!st.ok()) {
    return FromGrpcStatus(st, "the collector refused enrollment: ");
  }
  tls.cert_pem = resp.certificate_pem();
  tls.ca_pem = ca_pem;
  tls.server_name = server_name;
  // Trust nothing the answer says without checking it.
  auto cert = pki::ParseCert(tls.cert_pem);
  if (!cert.ok() || cert->common_name != o.name ||
      !pki::KeyMatchesCert(tls.key_pem, tls.cert_pem) ||
      !pki::VerifyIssuedBy(tls.cert_pem, ca_pem, absl::Now()).ok()) {
    return absl::DataLossError(
        "the collector's answer is not a certificate for this key and name "
        "from the pinned CA");
  }
  NV_RETURN_IF_ERROR(SaveClientTls(o.state_dir, tls));
  spdlog::info(
      "agent_enrolled name={} collector={} server_name={} serial={} "
      "not_after={} rpc_ms={}",
      o.name, o.collector, server_name, cert->serial_hex,
      absl::FormatTime(cert->not_after),
      absl::ToInt64Milliseconds(absl::Now() - started));
  return absl::OkStatus();
}

}  // namespace netvigil::agent
