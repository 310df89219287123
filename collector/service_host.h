// Where the collector's gRPC services are served: a seam, so the Collector
// is built the same way in production (NetworkHost, network_host.h: the
// configured listeners with TLS and connection gates) and in tests (one
// in-process server, tests/testing/in_process_host.h). Implementations are
// thread-safe: Start once, then Shutdown from any thread.
#ifndef NETVIGIL_COLLECTOR_SERVICE_HOST_H_
#define NETVIGIL_COLLECTOR_SERVICE_HOST_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/admin/pki_admin.h"
#include "collector/store/cert_store.h"
#include "grpcpp/impl/service_type.h"

namespace netvigil::collector {

class ServiceHost {
 public:
  // What to serve. Nothing is owned; all of it outlives the host's
  // Shutdown.
  struct Services {
    grpc::Service* agent = nullptr;   // never null
    grpc::Service* enroll = nullptr;  // null: no enrollment listener
    grpc::Service* query = nullptr;   // never null
    // The CA and server certificate; null with --insecure and no query_tcp.
    const ServerPki* pki = nullptr;
    // Admins' certificates (Query over TCP); null with --insecure.
    CertStore* certs = nullptr;
  };

  virtual ~ServiceHost() = default;
  // Serves `services`. An error (an address in use, another collector on
  // the query socket) names what could not be served; what was already
  // listening is closed by Shutdown.
  virtual absl::Status Start(const Services& services) = 0;
  // Stops accepting and ends the calls still running by `deadline`.
  // Idempotent; also safe when Start failed or never ran.
  virtual void Shutdown(absl::Time deadline) = 0;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_SERVICE_HOST_H_
