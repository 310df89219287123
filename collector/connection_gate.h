// The collector's own accept loop in front of a gRPC server: it binds the
// listening sockets, accepts, and hands a connection to gRPC (through an
// ExternalConnectionAcceptor, with the listener's credentials) only once the
// client has sent its first complete TLS record (or, in plain text, the
// HTTP/2 preface). Thread-safe: Start() and Stop() from any thread; the loop
// runs on a thread of its own.
//
// Why not gRPC's listener: Debian 12's gRPC (1.51) has no cap on
// connections (grpc.max_allowed_incoming_connections came later), and its
// accept loop stops for good on the first EMFILE (tcp_server_posix.cc
// on_read: "Failed accept4" then no re-arm): a few thousand half-open
// connections with a 1,024 descriptor limit killed every listener until a
// restart. It does honour grpc.server_handshake_timeout_ms, which the
// collector sets on every server for the part of the handshake gRPC runs.
//
// What the gate bounds, per listener:
// - connections that have not finished their handshake ("unfinished": held
//   here waiting for the first record, or handed to gRPC less than the
//   handshake timeout ago and still open), in all and per source address
//   (IPv4 address or IPv6 /64). When the listener is full, a newcomer from a
//   source with fewer unfinished connections takes the place of the oldest
//   one held here for the source with the most, so one address cannot lock
//   the others out.
// - all connections it handed over and that are still open (descriptors).
// - time: a connection that has not sent its first record within
//   `first_record_timeout` is closed here; gRPC closes one whose handshake
//   does not finish within its handshake timeout.
// Out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting pauses and
// is retried (100 ms doubling to 1 s); the listener never dies. Refusals and
// pauses are logged as one summary line per source and interval.
//
// A connection handed over is watched by its descriptor number and socket
// cookie (SO_COOKIE): when the number no longer names that socket, gRPC
// closed it.
#ifndef NETVIGIL_COLLECTOR_CONNECTION_GATE_H_
#define NETVIGIL_COLLECTOR_CONNECTION_GATE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"

namespace netvigil::collector {

struct ConnectionGateOptions {
  std::string name;  // for logs: agents, enroll, query_tcp, query_unix
  // What the first bytes must be: a TLS handshake record (complete), or the
  // HTTP/2 client preface (plain text).
  bool tls = true;
  absl::Duration first_record_timeout = absl::Seconds(5);
  // gRPC's own handshake deadline (set on the server by the caller); a
  // connection handed over longer ago than this and still open has
  // finished its handshake.
  absl::Duration grpc_handshake_timeout = absl::Seconds(10);
  int max_unfinished = 256;
  int max_unfinished_per_source = 64;
  int max_connections = 1024;
  // How often refusals are summarised in the log.
  absl::Duration log_interval = absl::Seconds(10);
};

// Counters since start, for tests and logs.
struct ConnectionGateStats {
  int64_t accepted = 0;
  int64_t handed_over = 0;
  int64_t refused = 0;          // closed at once: a cap
  int64_t evicted = 0;          // held here, closed for a newcomer
  int64_t timed_out = 0;        // no first record in time
  int64_t bad_first_bytes = 0;  // not TLS / not the HTTP/2 preface
  int64_t accept_pauses = 0;    // out of descriptors
  int unfinished = 0;
  int open = 0;
};

class ConnectionGate {
 public:
  explicit ConnectionGate(ConnectionGateOptions options);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Binds and listens on `address`: "HOST:PORT" ("0.0.0.0" and "[::]" are
  // both families, as with gRPC) or "unix:PATH" (created with `unix_mode`).
  // Returns the bound port (0 for UNIX). Call before Start().
  absl::StatusOr<int> Listen(const std::string& address, int unix_mode = 0660);

  // Registers the gate's acceptor on `builder` with `creds`; call before
  // builder.BuildAndStart(), then Start() once the server runs.
  void Attach(grpc::ServerBuilder& builder,
              std::shared_ptr<grpc::ServerCredentials> creds);

  // Starts accepting (connections that came before wait in the backlog).
  void Start();
  // Stops accepting and closes what is held here; idempotent.
  void Stop();

  ConnectionGateStats stats();

  // An RPC arrived from `grpc_peer` (ServerContext::peer(), "ipv4:A:P" or
  // "ipv6:[A]:P"): that connection has finished its handshake and no longer
  // counts as unfinished (without this, it would until gRPC's handshake
  // timeout had passed). Thread-safe.
  void Established(const std::string& grpc_peer);

  // Interceptor factories that tell `gates` of every RPC's peer (once, when
  // its metadata arrives). For builder.experimental().SetInterceptorCreators.
  static std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  EstablishedNotifiers(std::vector<ConnectionGate*> gates);

 private:
  struct Held {  // accepted, waiting for the first record
    int fd;
    int listener_fd;
    std::string source;
    absl::Time deadline;
    absl::Time accepted;
    std::string peer;
  };
  struct Handed {  // given to gRPC
    int fd;
    uint64_t cookie;
    std::string source;
    absl::Time handed;
    std::string peer;  // "ADDRESS PORT", as Established() canonicalises
  };

  void Loop();
  void AcceptAll(int listener_fd, absl::Time now);
  // Peeks at a held connection: hands it over, keeps it, or closes it.
  void Inspect(int fd, absl::Time now);
  void Expire(absl::Time now);
  void Scan(absl::Time now, bool all);
  void HandOver(std::map<int, Held>::iterator it, absl::Time now);
  void CloseHeld(std::map<int, Held>::iterator it);
  int UnfinishedFrom(const std::string& source) const;
  int Unfinished() const;
  // The held connection to close for a newcomer from `source`, or end().
  std::map<int, Held>::iterator EvictionVictim(const std::string& source);
  void Refuse(int fd, const std::string& source, const char* reason);
  void MaybeLog(absl::Time now);

  const ConnectionGateOptions options_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::vector<int> listeners_;
  std::vector<std::string> unix_paths_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  // Loop thread only.
  std::map<int, Held> held_;
  std::deque<Handed> young_;  // handed over, within the handshake timeout
  std::vector<Handed> settled_;
  std::map<std::string, int> unfinished_by_source_;
  absl::Time paused_until_ = absl::InfinitePast();
  absl::Duration pause_ = absl::Milliseconds(100);
  bool paused_ = false;
  absl::Time next_scan_all_ = absl::InfinitePast();
  absl::Time next_log_;
  // source -> reason -> count, since the last summary
  std::map<std::string, std::map<std::string, int64_t>> refusals_;
  int64_t pauses_since_log_ = 0;
  std::string last_pause_error_;

  absl::Mutex established_mu_;
  std::vector<std::string> established_ ABSL_GUARDED_BY(established_mu_);

  absl::Mutex stats_mu_;
  ConnectionGateStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

// The descriptor budget of the process: RLIMIT_NOFILE's soft limit raised
// to the hard one (logged), and what is left for connections after a
// reserve for the database pool, logs and gRPC's own descriptors.
struct DescriptorBudget {
  uint64_t soft_before = 0;
  uint64_t limit = 0;       // the soft limit now
  int for_connections = 0;  // limit - reserve, never more than is left
};
// Under this limit the collector does not start (collector_main.cc): gRPC
// aborts the process at 8, the database never connects at 14, and below it
// no share of the budget is left for the Query socket.
inline constexpr uint64_t kMinDescriptorLimit = 64;
DescriptorBudget RaiseDescriptorLimit();

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_CONNECTION_GATE_H_
