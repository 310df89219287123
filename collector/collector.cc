#include "collector/collector.h"

#include <malloc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "model/facts.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

constexpr int kStorePoolSize = 6;  // 4 ingest writers, queries, analysis
// Committed results waiting for analysis before ingest waits for it.
constexpr size_t kAnalysisQueueCapacity = 2'000;
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
  o.max_connections = std::max(16, max_connections);
  o.max_unfinished = std::clamp(o.max_connections / 2, 8, 256);
  o.max_unfinished_per_source = std::clamp(o.max_unfinished / 4, 4, 64);
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

// What the collector knows of netvigil's own traffic: every agent's
// addresses with the one speed port, and the external speed targets. The
// other end of a speed test is thus known even where the agent cannot tell
// it from a stranger's connection.
// The store's history decides sameness with the analysis' ephemeral range.
model::FactOptions FactOptionsOf(const AnalysisOptions& a) {
  model::FactOptions f;
  f.ephemeral_port_min = a.ephemeral_port_min;
  f.ephemeral_port_max = a.ephemeral_port_max;
  return f;
}

model::OwnEndpoints OwnEndpointsOf(const CollectorConfig& config,
                                   const std::vector<v1::AgentInfo>& agents) {
  model::OwnEndpoints own;
  if (!config.plan.speed().enabled()) return own;
  own.speed_port = config.speed_port;
  for (const v1::AgentInfo& a : agents) {
    for (const std::string& addr : a.addresses()) {
      own.agents.insert(model::CanonicalAddress(addr));
    }
  }
  for (const auto& t : config.plan.speed().external_targets()) {
    own.servers.insert({model::CanonicalAddress(t.address()), t.port()});
  }
  return own;
}

}  // namespace

Collector::Collector(CollectorConfig config, AnalysisOptions analysis,
                     bool insecure, DescriptorBudget descriptors)
    : config_(std::move(config)),
      insecure_(insecure),
      descriptors_(descriptors),
      store_(config_.database_dsn, kStorePoolSize),
      analysis_options_(analysis) {}

Collector::~Collector() {
  Shutdown();
  // The ingest writers may be waiting to hand results to analysis: stop it
  // first so they finish, then end them (and their pipeline).
  if (analysis_queue_) analysis_queue_->Stop();
  agent_service_.reset();
}

absl::Status Collector::Start() {
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

  // The CA is needed for TLS to agents and for the Query service over TCP
  // (which is TLS even with --insecure: it is never plain text).
  if (!insecure_ || !config_.query_tcp.empty()) {
    absl::StatusOr<ServerPki> p = LoadServerPki(config_.state_dir);
    if (!p.ok()) return p.status();
    pki_ = std::make_unique<ServerPki>(std::move(*p));
  }
  AgentServiceOptions agent_options;
  agent_options.plan = config_.plan;
  agent_options.heartbeat_timeout = config_.heartbeat_timeout;
  agent_options.insecure = insecure_;
  if (!insecure_) agent_options.certs = &cert_store_;
  agent_options.on_clock_offset = [this](const std::string& agent,
                                         absl::Duration offset) {
    if (analyzing_.load()) analyzer_->OnClockOffset(agent, offset);
  };
  // Each agent's own plan (peers, iperf3 users) and iperf3 credentials.
  mesh_plans_ = std::make_unique<MeshPlans>(
      config_.plan, config_.speed_port,
      [this] { return LoadOrCreateIperfSecrets(store_); });
  agent_options.complete_welcome =
      [m = mesh_plans_.get()](const std::string& agent, v1::Welcome* welcome) {
        return m->CompleteWelcome(agent, welcome);
      };
  agent_service_ = std::make_unique<AgentService>(agent_options, store_,
                                                  RealClock(), sessions_);
  QueryServiceOptions query_options;
  query_options.heartbeat_timeout = config_.heartbeat_timeout;
  query_options.speed_port = config_.speed_port;
  query_options.speed_test_duration = config_.speed_test_duration;
  query_options.speed_bitrate_bps = config_.plan.speed().max_bitrate_bps();
  query_service_ = std::make_unique<QueryService>(
      query_options, store_, RealClock(), sessions_, broker_);
  if (config_.plan.speed().enabled()) {
    SpeedSchedulerOptions speed;
    speed.period = config_.speed_period;
    speed.test_duration = config_.speed_test_duration;
    speed.slot_overhead = config_.speed_slot_overhead;
    speed.max_concurrent = config_.max_concurrent_speed_tests;
    speed.port = config_.speed_port;
    speed.bitrate_bps = config_.plan.speed().max_bitrate_bps();
    speed.external_targets.assign(
        config_.plan.speed().external_targets().begin(),
        config_.plan.speed().external_targets().end());
    speed_loop_ =
        std::make_unique<SpeedLoop>(speed, store_, broker_, RealClock(),
                                    config_.heartbeat_timeout, &sessions_);
    // Agents learn a new peer (and its iperf3 user) before a test to it.
    speed_loop_->SetAgentsObserver(
        [this](const std::vector<v1::AgentInfo>& agents) {
          if (analyzer_) {
            analyzer_->SetOwnEndpoints(OwnEndpointsOf(config_, agents));
          }
          mesh_plans_->SetAgents(agents);
          return mesh_plans_->PushChanged(sessions_) > 0;
        });
    query_service_->SetNoticeSource([this] { return speed_loop_->notices(); });
  }
  analysis_queue_ = std::make_unique<AnalysisQueue>(
      [this](const std::vector<AnalysisQueue::Item>& results) {
        // Results committed before the baselines were loaded are stored
        // but not compared (a short window at start).
        if (analyzing_.load()) analyzer_->OnResults(results);
      },
      kAnalysisQueueCapacity);
  agent_service_->AddResultObserver(
      [this](const std::string& agent,
             const std::shared_ptr<const v1::Result>& r) {
        broker_.OnResult(agent, *r);
        analysis_queue_->Push(agent, r);
      });
  if (!config_.alert_log.empty()) {
    alert_log_ = std::make_unique<AlertLog>(config_.alert_log);
    if (absl::Status s = alert_log_->Open(); !s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat("alert log ", config_.alert_log, ": ", s.message()));
    }
  }
  analyzer_ =
      std::make_unique<Analyzer>(analysis_options_, alert_store_, RealClock());
  analyzer_->SetOwnEndpoints(OwnEndpointsOf(config_, {}));
  analyzer_->AddListener([this](const v1::AlertEvent& e) {
    watchers_.Publish(e);
    if (alert_log_) {
      absl::Status s = alert_log_->Write(e);
      if (!s.ok()) {
        spdlog::error("alert_log_write_failed error=\"{}\"",
                      std::string(s.message()));
      }
    }
  });
  agent_service_->AddCommandStatusObserver(
      [this](const std::string& agent, const v1::CommandStatus& s) {
        broker_.OnCommandStatus(agent, s);
      });

  if (insecure_) {
    spdlog::warn(
        "insecure_mode agent_listen={} detail=\"plain text without "
        "client certificates: for tests only\"",
        config_.agent_listen);
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
                                     : AgentServerCredentials(*pki_));
    b.RegisterService(agent_service_.get());
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
  if (!insecure_ && !config_.enroll_listen.empty()) {
    // Its own listener: a new agent has no client certificate yet, and the
    // agents' listener requires one.
    EnrollServiceOptions enroll;
    enroll.ca_cert_pem = pki_->ca_cert;
    enroll.ca_key_pem = pki_->ca_key;
    enroll_service_ =
        std::make_unique<EnrollService>(enroll, cert_store_, RealClock());
    enroll_gate_ = std::make_unique<ConnectionGate>(
        GateOptions("enroll", true, descriptors_.for_connections / 20));
    absl::StatusOr<int> port = enroll_gate_->Listen(config_.enroll_listen);
    if (!port.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen for enrollment on ", config_.enroll_listen,
          " (address in use or not available): ", port.status().message()));
    }
    grpc::ServerBuilder b;
    enroll_gate_->Attach(b, EnrollServerCredentials(*pki_));
    b.RegisterService(enroll_service_.get());
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
  if (!insecure_) {
    revocations_ = std::make_unique<RevocationWatcher>(cert_store_, sessions_);
    revocations_->Start();
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
      query_tcp_gate_->Attach(b, AdminServerCredentials(*pki_, &cert_store_));
    }
    b.RegisterService(query_service_.get());
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
  store_.SetFactOptions(FactOptionsOf(analysis_options_));
  migrator_ = std::thread([this] { MigrateLoop(); });
  if (speed_loop_) speed_loop_->Start();
  return absl::OkStatus();
}

void Collector::MigrateLoop() {
  Backoff backoff({absl::Milliseconds(500), absl::Seconds(30), 2.0});
  std::string last_error;
  while (!stop_.HasBeenNotified()) {
    absl::Status s = store_.Migrate();
    if (s.ok()) {
      spdlog::info("database_ready");
      // The analysis needs its baselines from the database; retry like the
      // migrations until they load.
      while (!stop_.HasBeenNotified()) {
        absl::Status a = StartAnalysis();
        if (a.ok()) return;
        spdlog::error("analysis_not_started retrying=yes error=\"{}\"",
                      std::string(a.message()));
        stop_.WaitForNotificationWithTimeout(backoff.Next());
      }
      return;
    }
    if (std::string(s.message()) != last_error) {
      last_error = std::string(s.message());
      spdlog::error("database_unavailable retrying=yes error=\"{}\"",
                    last_error);
    }
    if (absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s)) {
      // A schema newer than this binary: retrying will not help, but the
      // Query service stays up to say so.
      spdlog::error("database_schema_incompatible error=\"{}\"", last_error);
      return;
    }
    stop_.WaitForNotificationWithTimeout(backoff.Next());
  }
}

absl::Status Collector::StartAnalysis() {
  absl::Status s = analyzer_->Load();
  if (!s.ok()) return s;
  analyzing_.store(true);
  query_service_->SetAlerts(analyzer_.get(), &alert_store_, &watchers_);
  ticker_ = std::thread([this] { TickLoop(); });
  spdlog::info("analysis_started open_alerts={}", analyzer_->Open().size());
  return absl::OkStatus();
}

void Collector::ReopenLogs() {
  if (!alert_log_) return;
  absl::Status s = alert_log_->Reopen();
  if (s.ok()) {
    spdlog::info("alert_log_reopened path={}", config_.alert_log);
  } else {
    spdlog::error("alert_log_reopen_failed path={} error=\"{}\"",
                  config_.alert_log, std::string(s.message()));
  }
}

void Collector::TickLoop() {
  // Time-based transitions (settle windows, resolutions) need a clock tick
  // even when no result arrives; retention runs at start and hourly.
  absl::Time next_retention = absl::Now();
  do {
    analyzer_->Tick();
    if (enroll_service_) enroll_service_->FlushLog();
    // Give freed pages back (glibc keeps them in its arenas): what a burst
    // of large messages used should not stay in the RSS.
    malloc_trim(0);
    if (absl::Now() >= next_retention) {
      RunRetention();
      next_retention = absl::Now() + absl::Hours(1);
    }
  } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

void Collector::RunRetention() {
  const absl::Time now = absl::Now();
  auto stats =
      store_.ApplyRetention(now - absl::Hours(24) * config_.raw_days,
                            now - absl::Hours(24) * config_.hourly_days);
  if (!stats.ok()) {
    spdlog::error("retention_failed error=\"{}\"",
                  std::string(stats.status().message()));
    return;
  }
  spdlog::info(
      "retention_done raw_days={} hourly_days={} results_deleted={} "
      "path_runs_aggregated={} speed_results_aggregated={} "
      "hourly_deleted={} events_deleted={}",
      config_.raw_days, config_.hourly_days, stats->results_deleted,
      stats->path_runs_aggregated, stats->speed_results_aggregated,
      stats->hourly_deleted, stats->events_deleted);
}

void Collector::Shutdown() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  watchers_.CloseAll();
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(2);
  for (auto* gate : {agent_gate_.get(), enroll_gate_.get(),
                     query_unix_gate_.get(), query_tcp_gate_.get()}) {
    if (gate) gate->Stop();
  }
  if (revocations_) revocations_->Stop();
  if (enroll_server_) enroll_server_->Shutdown(deadline);
  if (agent_server_) agent_server_->Shutdown(deadline);
  if (query_server_) query_server_->Shutdown(deadline);
  if (migrator_.joinable()) migrator_.join();
  if (ticker_.joinable()) ticker_.join();
  if (speed_loop_) speed_loop_->Stop();
  agent_server_.reset();
  enroll_server_.reset();
  query_server_.reset();
}

}  // namespace netvigil::collector
