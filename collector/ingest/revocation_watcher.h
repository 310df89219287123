// Cuts revoked agents off while they are connected: polls the revocations
// that `netvigil-collector revoke` (another process, perhaps another
// collector) writes to PostgreSQL and cancels the named agents' streams.
// New streams are refused by the certificate check at stream start; this is
// the other half. Thread-safe: Start() once, Stop() from any thread.
#ifndef NETVIGIL_COLLECTOR_INGEST_REVOCATION_WATCHER_H_
#define NETVIGIL_COLLECTOR_INGEST_REVOCATION_WATCHER_H_

#include <cstdint>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collector/ingest/session_registry.h"
#include "collector/store/cert_store.h"

namespace netvigil::collector {

class RevocationWatcher {
 public:
  // `certs` and `sessions` are not owned and must outlive this.
  RevocationWatcher(CertStore& certs, SessionRegistry& sessions,
                    absl::Duration every = absl::Milliseconds(500));
  ~RevocationWatcher();

  void Start();
  void Stop();
  // One poll; returns how many sessions it cancelled. Public for tests.
  int PollOnce();

 private:
  CertStore& certs_;
  SessionRegistry& sessions_;
  const absl::Duration every_;
  int64_t last_id_ = -1;  // -1: not read yet. Only the poller's thread.
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_INGEST_REVOCATION_WATCHER_H_
