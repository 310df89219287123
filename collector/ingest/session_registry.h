// Which agent streams this collector holds, by agent name. One session per
// name: a second stream claiming a live name is refused and the first keeps
// its session; a session silent past the heartbeat timeout is cancelled so
// its name is free again. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_INGEST_SESSION_REGISTRY_H_
#define NETVIGIL_COLLECTOR_INGEST_SESSION_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netvigil/v1/agent.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil::collector {

// One agent's stream. Send() may be called from any thread.
class AgentSession {
 public:
  using Writer = std::function<bool(const v1::CollectorMessage&)>;
  AgentSession(std::string name, std::string id, std::string peer,
               Writer writer, std::function<void()> cancel, absl::Time now);

  const std::string& name() const { return name_; }
  const std::string& id() const { return id_; }
  const std::string& peer() const { return peer_; }
  // The serial of the client certificate the stream was checked with (empty
  // under --insecure). Set once, before the session is claimed.
  void set_cert_serial(std::string serial) { cert_serial_ = std::move(serial); }
  const std::string& cert_serial() const { return cert_serial_; }

  // Writes one message; false when the stream is gone.
  bool Send(const v1::CollectorMessage& msg) ABSL_LOCKS_EXCLUDED(write_mu_);
  // The stream has ended: every later Send() is false and writes nothing.
  void Close() ABSL_LOCKS_EXCLUDED(write_mu_);
  void Cancel() { cancel_(); }

  // `now` here and in the registry is the collector's monotonic time
  // (Clock::MonotonicNow), so a wall clock step neither cancels every
  // session nor keeps a dead one.
  void Touch(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time last_heard() const ABSL_LOCKS_EXCLUDED(mu_);
  // When the stream was accepted (monotonic).
  absl::Time connected_at() const { return connected_at_; }
  // The same as a wall time: `computed` the first time it is asked, the
  // same value ever after (a conversion from the monotonic clock differs by
  // microseconds from call to call, and a client compares it).
  absl::Time ConnectedWall(absl::Time computed) ABSL_LOCKS_EXCLUDED(mu_);

  // The agent's wall clock minus the collector's, from its last heartbeat.
  void set_clock_offset(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  // False until a heartbeat with sent_at has come.
  bool clock_offset(absl::Duration* d) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string name_;
  const std::string id_;
  const std::string peer_;
  std::string cert_serial_;
  absl::Mutex write_mu_;
  Writer writer_ ABSL_GUARDED_BY(write_mu_);
  bool closed_ ABSL_GUARDED_BY(write_mu_) = false;
  std::function<void()> cancel_;
  const absl::Time connected_at_;
  mutable absl::Mutex mu_;
  absl::Time last_heard_ ABSL_GUARDED_BY(mu_);
  bool has_offset_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time connected_wall_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration clock_offset_ ABSL_GUARDED_BY(mu_);
};

class SessionRegistry {
 public:
  // Registers `session` under its name unless a live session holds the name
  // (ALREADY_EXISTS naming the holder). A session silent for longer than
  // `timeout` does not count as live: it is cancelled and replaced.
  absl::Status Claim(std::shared_ptr<AgentSession> session, absl::Time now,
                     absl::Duration timeout);
  // Removes `session` if it is still the one registered under its name.
  void Release(const AgentSession& session);
  std::shared_ptr<AgentSession> Find(const std::string& name);
  std::vector<std::shared_ptr<AgentSession>> All();
  // Cancels every session silent for longer than `timeout`; returns how many.
  int CancelSilent(absl::Time now, absl::Duration timeout);
  // Cancels every session whose name matches (revocation).
  void CancelByName(const std::string& name);

  // Sets `online` (`connected_since` where it is missing, and `last_seen`
  // where the stream was heard later than the database says) on each agent
  // that holds a live session here (heard within `timeout`). Online state
  // comes from the live streams: the database's last_seen lags while the
  // database is away (heartbeats are not recorded) and for a heartbeat
  // interval after it returns, and an empty or failed read says nothing
  // about a stream this collector holds. An agent the database calls online
  // stays online (it may hold a session at another collector sharing the
  // database); a stream that ended here was recorded as offline when the
  // database could take it, and otherwise ages out with its last_seen.
  // Sessions keep monotonic times: `mono_now` judges liveness, and
  // `wall_now` turns them into the wall times a person reads.
  void MarkLive(std::vector<v1::AgentInfo>* agents, absl::Time wall_now,
                absl::Time mono_now, absl::Duration timeout);

 private:
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<AgentSession>> sessions_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_SESSION_REGISTRY_H_
