// The production ServiceHost: the collector's listeners as configured
// (agents over mTLS or --insecure plain text, enrollment over TLS, the Query
// service on its UNIX socket and optionally over TLS on TCP), each behind a
// ConnectionGate sized from the descriptor budget, with the gRPC channel
// arguments that keep a thousand held-back agent streams within bounded
// memory. Thread-safe: Start once, then Shutdown from any thread.
#ifndef NETVIGIL_COLLECTOR_NETWORK_HOST_H_
#define NETVIGIL_COLLECTOR_NETWORK_HOST_H_

#include <memory>

#include "collector/connection_gate.h"
#include "collector/service_host.h"
#include "common/collector_config.h"
#include "grpcpp/server.h"

namespace netvigil::collector {

class NetworkHost final : public ServiceHost {
 public:
  // `descriptors` sizes the listeners' connection caps (see
  // RaiseDescriptorLimit in connection_gate.h).
  NetworkHost(CollectorConfig config, bool insecure,
              DescriptorBudget descriptors);
  ~NetworkHost() override;

  absl::Status Start(const Services& services) override;
  void Shutdown(absl::Time deadline) override;

 private:
  const CollectorConfig config_;
  const bool insecure_;
  const DescriptorBudget descriptors_;
  // Our own accept loops in front of the servers (caps, deadlines, EMFILE);
  // stopped before the servers shut down.
  std::unique_ptr<ConnectionGate> agent_gate_;
  std::unique_ptr<ConnectionGate> enroll_gate_;
  std::unique_ptr<ConnectionGate> query_unix_gate_;
  std::unique_ptr<ConnectionGate> query_tcp_gate_;
  std::unique_ptr<grpc::Server> agent_server_;
  std::unique_ptr<grpc::Server> enroll_server_;
  std::unique_ptr<grpc::Server> query_server_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NETWORK_HOST_H_
