// The Agent service's Enroll RPC, served on its own TLS listener with server
// authentication only (a new agent has no certificate yet): a single-use
// token and a certificate request in, the agent's certificate and the CA
// out. The agent's private key never comes here. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_ENROLL_SERVICE_H_
#define NETVIGIL_COLLECTOR_INGEST_ENROLL_SERVICE_H_

#include <string>

#include "collector/ingest/enroll_throttle.h"
#include "collector/store/cert_store.h"
#include "common/clock.h"
#include "netvigil/v1/agent.grpc.pb.h"

namespace netvigil::collector {

struct EnrollServiceOptions {
  std::string ca_cert_pem;
  std::string ca_key_pem;
  absl::Duration agent_validity = pki::kAgentValidity;
  // Per source address: failed attempts (a wrong token, a bad request)
  // drain a bucket; a successful enrollment gives its attempt back.
  EnrollThrottleOptions throttle;
};

class EnrollService final : public v1::Agent::Service {
 public:
  // `certs` and `clock` are not owned and must outlive this.
  EnrollService(EnrollServiceOptions options, CertStore& certs, Clock& clock);

  grpc::Status Enroll(grpc::ServerContext* ctx, const v1::EnrollRequest* req,
                      v1::EnrollResponse* resp) override;

  // The gRPC edge without gRPC: the throttle, then DoEnroll; `peer` in
  // gRPC's form ("ipv4:ADDR:PORT").
  absl::StatusOr<v1::EnrollResponse> Attempt(const v1::EnrollRequest& req,
                                             const std::string& peer);

  // Logs the refusal summaries that are due (the collector calls this
  // every few seconds so that the last interval is not left unsaid).
  void FlushLog() { throttle_.Flush(); }

  // The same, without gRPC or the throttle: for tests and the edge above.
  absl::StatusOr<v1::EnrollResponse> DoEnroll(const v1::EnrollRequest& req,
                                              const std::string& peer);

 private:
  const EnrollServiceOptions options_;
  CertStore& certs_;
  Clock& clock_;
  EnrollThrottle throttle_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_ENROLL_SERVICE_H_
