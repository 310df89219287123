#include "collector/ingest/enroll_service.h"

#include "absl/strings/str_cat.h"
#include "collector/ingest/validation.h"
#include "common/escape.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

constexpr size_t kMaxToken = 128;
constexpr size_t kMaxCsr = 16 << 10;

}  // namespace

EnrollService::EnrollService(EnrollServiceOptions options, CertStore& certs,
                             Clock& clock)
    : options_(std::move(options)),
      certs_(certs),
      clock_(clock),
      throttle_(options_.throttle, clock) {}

absl::StatusOr<v1::EnrollResponse> EnrollService::DoEnroll(
    const v1::EnrollRequest& req, const std::string& peer) {
  const std::string& name = req.agent_name();
  if (absl::Status s = ValidateAgentName(name, DefaultLimits()); !s.ok()) {
    return s;
  }
  if (req.token().empty() || req.token().size() > kMaxToken) {
    return absl::InvalidArgumentError(
        absl::StrCat("token: must be 1 to ", kMaxToken, " bytes"));
  }
  if (req.csr_pem().empty() || req.csr_pem().size() > kMaxCsr) {
    return absl::InvalidArgumentError(
        absl::StrCat("csr_pem: must be 1 to ", kMaxCsr, " bytes"));
  }
  const absl::Time now = clock_.Now();
  auto sign = [&]() -> absl::StatusOr<std::string> {
    pki::CertSpec spec;
    spec.common_name = name;
    spec.role = pki::kRoleAgent;
    // A little slack for a clock that is behind the collector's.
    spec.not_before = now - absl::Minutes(5);
    spec.not_after = now + options_.agent_validity;
    return pki::SignCsr(options_.ca_cert_pem, options_.ca_key_pem,
                        req.csr_pem(), spec);
  };
  absl::StatusOr<std::string> cert =
      certs_.Enroll(pki::Sha256Hex(req.token()), name, now, sign);
  if (!cert.ok()) return cert.status();
  v1::EnrollResponse resp;
  resp.set_certificate_pem(*cert);
  resp.set_ca_pem(options_.ca_cert_pem);
  auto info = pki::ParseCert(*cert);
  spdlog::info("agent_enrolled name={} peer={} serial={} not_after={}",
               LogValue(name), peer, info.ok() ? info->serial_hex : "?",
               info.ok() ? absl::FormatTime(info->not_after) : "?");
  return resp;
}

absl::StatusOr<v1::EnrollResponse> EnrollService::Attempt(
    const v1::EnrollRequest& req, const std::string& peer) {
  const std::string source = EnrollThrottle::SourceOf(peer);
  // Refusals are counted per source and summarised (EnrollThrottle), never
  // logged one line per attempt: a guessing attacker would flood the log.
  if (absl::Status s = throttle_.Admit(source); !s.ok()) {
    throttle_.Flush();
    return s;
  }
  absl::StatusOr<v1::EnrollResponse> r = DoEnroll(req, peer);
  if (r.ok()) {
    throttle_.Refund(source);
  } else {
    throttle_.CountFailure(source, r.status().code());
  }
  throttle_.Flush();
  return r;
}

grpc::Status EnrollService::Enroll(grpc::ServerContext* ctx,
                                   const v1::EnrollRequest* req,
                                   v1::EnrollResponse* resp) {
  // The token itself is a secret: never logged.
  absl::StatusOr<v1::EnrollResponse> r = Attempt(*req, ctx->peer());
  if (!r.ok()) {
    return ToGrpcStatus(r.status());
  }
  *resp = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace netvigil::collector
