#include "collector/network_host.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// The largest message an agent may send. Measured (README, Memory): a
// snapshot of 50,000 sockets with their owners is 5.9 MiB on the wire, one
// of 100,000 open files 10.3 MiB; 32 MiB leaves 3x the larger. What a
// message may cost once parsed is bounded separately (agent_message_traits.h).
constexpr int kMaxAgentMessageBytes = 32 << 20;
// gRPC's part of a handshake (TLS, then the HTTP/2 settings) must finish
// within this after the gate handed the connection over.
constexpr int kHandshakeTimeoutMs = 10'000;

// A listener's caps from its share of the descriptor budget.
ConnectionGateOptions GateOptions(const char* name, bool tls,
                                  int max_connections) {
  ConnectionGateOptions o;
  o.name = name;
  o.tls = tls;
  o.grpc_handshake_timeout = absl::Milliseconds(kHandshakeTimeoutMs);
  // The floors are small: a floor of 16 per listener gave four listeners
  // 64 connections whatever the descriptor limit (a test collector under
  // `prlimit --nofile=64` has 32 for all of them).
  o.max_connections = std::max(1, max_connections);
  o.max_unfinished =
      std::clamp(o.max_connections / 2, std::min(8, o.max_connections), 256);
  o.max_unfinished_per_source =
      std::clamp(o.max_unfinished / 4, std::min(4, o.max_unfinished), 64);
  return o;
}

// True when some process accepts connections on the UNIX socket at `path`:
// another collector, whose socket must not be taken over.
bool UnixSocketAnswers(const std::string& path) {
  sockaddr_un a{};
  if (path.size() >= sizeof(a.sun_path)) return false;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const bool answers =
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return answers;
}

}  // namespace

NetworkHost::NetworkHost(CollectorConfig config, bool insecure,
                         DescriptorBudget descriptors)
    : config_(std::move(config)),
      insecure_(insecure),
      descriptors_(descriptors) {}

NetworkHost::~NetworkHost() { Shutdown(absl::Now() + absl::Seconds(2)); }

absl::Status NetworkHost::Start(const Services& services) {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // A second collector with the same config must not start beside the
  // first: checked before any listener opens. gRPC would otherwise share
  // the TCP ports (SO_REUSEPORT, turned off below) and the old socket file
  // would be replaced.
  if (UnixSocketAnswers(config_.query_socket)) {
    return absl::UnavailableError(absl::StrCat(
        "another process listens on the query socket ", config_.query_socket,
        " (is a collector already running with this config?)"));
  }
  const ServerPki* pki = services.pki;
  if ((!insecure_ || !config_.query_tcp.empty()) && pki == nullptr) {
    return absl::FailedPreconditionError(
        "the listeners need the collector's CA (TLS), and none was loaded");
  }
  {
    agent_gate_ = std::make_unique<ConnectionGate>(GateOptions(
        "agents", !insecure_, descriptors_.for_connections * 7 / 10));
    absl::StatusOr<int> port = agent_gate_->Listen(config_.agent_listen);
    if (!port.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen for agents on ", config_.agent_listen,
          " (address in use or not available): ", port.status().message()));
    }
    grpc::ServerBuilder b;
    agent_gate_->Attach(b, insecure_ ? grpc::InsecureServerCredentials()
                                     : AgentServerCredentials(*pki));
    b.RegisterService(services.agent);
    b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                         kHandshakeTimeoutMs);
    // Agents ping every 10 s to notice a dead collector; allow it.
    b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                         5000);
    b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    b.SetMaxReceiveMessageSize(kMaxAgentMessageBytes);
    // Bounded memory with a thousand streams held back by the ingest
    // pipeline: each stream's HTTP/2 window stays at 256 KiB (no BDP
    // growth), and all of the server's buffers share one 512 MiB quota.
    b.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    b.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 256 << 10);
    grpc::ResourceQuota quota("netvigil-agents");
    quota.Resize(512 << 20);
    b.SetResourceQuota(quota);
    b.experimental().SetInterceptorCreators(
        ConnectionGate::EstablishedNotifiers({agent_gate_.get()}));
    agent_server_ = b.BuildAndStart();
    if (!agent_server_) {
      return absl::UnavailableError(absl::StrCat(
          "cannot start the agent server on ", config_.agent_listen));
    }
    agent_gate_->Start();
  }
  if (services.enroll != nullptr) {
    // Its own listener: a new agent has no client certificate yet, and the
    // agents' listener requires one.
    enroll_gate_ = std::make_unique<ConnectionGate>(
        GateOptions("enroll", true, descriptors_.for_connections / 20));
    absl::StatusOr<int> port = enroll_gate_->Listen(config_.enroll_listen);
    if (!port.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen for enrollment on ", config_.enroll_listen,
          " (address in use or not available): ", port.status().message()));
    }
    grpc::ServerBuilder b;
    enroll_gate_->Attach(b, EnrollServerCredentials(*pki));
    b.RegisterService(services.enroll);
    b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                         kHandshakeTimeoutMs);
    // Anyone can finish a handshake here (no client certificate): an idle
    // connection is closed rather than held.
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 30'000);
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 120'000);
    b.SetMaxReceiveMessageSize(64 << 10);
    b.experimental().SetInterceptorCreators(
        ConnectionGate::EstablishedNotifiers({enroll_gate_.get()}));
    enroll_server_ = b.BuildAndStart();
    if (!enroll_server_) {
      return absl::UnavailableError(absl::StrCat(
          "cannot start the enrollment server on ", config_.enroll_listen));
    }
    enroll_gate_->Start();
  }
  {
    const std::filesystem::path sock(config_.query_socket);
    std::error_code ec;
    std::filesystem::create_directories(sock.parent_path(), ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot create the folder of ",
                                                 config_.query_socket, ": ",
                                                 ec.message()));
    }
    // A socket left by a collector that died: nobody listens on it.
    std::filesystem::remove(sock, ec);
    grpc::ServerBuilder b;
    // File permissions are the access control: owner and group only (the
    // socket is created 0600 and made 0660 before it listens).
    ConnectionGateOptions unix_options =
        GateOptions("query_unix", false, descriptors_.for_connections / 10);
    unix_options.max_unfinished_per_source = unix_options.max_unfinished;
    query_unix_gate_ = std::make_unique<ConnectionGate>(unix_options);
    absl::StatusOr<int> unix_port =
        query_unix_gate_->Listen(absl::StrCat("unix:", config_.query_socket));
    if (!unix_port.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                                 config_.query_socket, ": ",
                                                 unix_port.status().message()));
    }
    query_unix_gate_->Attach(b, grpc::InsecureServerCredentials());
    if (!config_.query_tcp.empty()) {
      query_tcp_gate_ = std::make_unique<ConnectionGate>(
          GateOptions("query_tcp", true, descriptors_.for_connections / 20));
      absl::StatusOr<int> tcp_port = query_tcp_gate_->Listen(config_.query_tcp);
      if (!tcp_port.ok()) {
        return absl::UnavailableError(
            absl::StrCat("cannot listen for queries on ", config_.query_tcp,
                         " (address in use or not available): ",
                         tcp_port.status().message()));
      }
      query_tcp_gate_->Attach(b, AdminServerCredentials(*pki, services.certs));
    }
    b.RegisterService(services.query);
    b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                         kHandshakeTimeoutMs);
    b.experimental().SetInterceptorCreators(
        ConnectionGate::EstablishedNotifiers(
            {query_unix_gate_.get(), query_tcp_gate_.get()}));
    query_server_ = b.BuildAndStart();
    if (!query_server_) {
      return absl::UnavailableError(absl::StrCat(
          "cannot start the query server on ", config_.query_socket));
    }
    query_unix_gate_->Start();
    if (query_tcp_gate_) query_tcp_gate_->Start();
  }
  spdlog::info(
      "collector_listening agents={} tls={} enroll={} query=unix:{} "
      "query_tcp={}",
      config_.agent_listen, insecure_ ? "no" : "mtls",
      enroll_server_ ? config_.enroll_listen : "none", config_.query_socket,
      config_.query_tcp.empty() ? "none" : config_.query_tcp);
  return absl::OkStatus();
}

void NetworkHost::Shutdown(absl::Time deadline) {
  for (auto* gate : {agent_gate_.get(), enroll_gate_.get(),
                     query_unix_gate_.get(), query_tcp_gate_.get()}) {
    if (gate) gate->Stop();
  }
  const auto until = absl::ToChronoTime(deadline);
  if (enroll_server_) enroll_server_->Shutdown(until);
  if (agent_server_) agent_server_->Shutdown(until);
  if (query_server_) query_server_->Shutdown(until);
  agent_server_.reset();
  enroll_server_.reset();
  query_server_.reset();
}

}  // namespace netvigil::collector
