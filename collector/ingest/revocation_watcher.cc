#include "collector/ingest/revocation_watcher.h"

#include "spdlog/spdlog.h"

namespace netvigil::collector {

RevocationWatcher::RevocationWatcher(CertStore& certs,
                                     SessionRegistry& sessions,
                                     absl::Duration every)
    : certs_(certs), sessions_(sessions), every_(every) {}

RevocationWatcher::~RevocationWatcher() { Stop(); }

void RevocationWatcher::Start() {
  thread_ = std::thread([this] {
    do {
      PollOnce();
    } while (!stop_.WaitForNotificationWithTimeout(every_));
  });
}

void RevocationWatcher::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

int RevocationWatcher::PollOnce() {
  if (last_id_ < 0) {
    // Revocations older than this collector cut no live stream of it: a
    // revoked certificate never got past the check at stream start.
    absl::StatusOr<int64_t> last = certs_.LastRevocationId();
    if (!last.ok()) return 0;  // the database is not there yet
    last_id_ = *last;
  }
  auto revoked = certs_.AgentRevocationsAfter(last_id_);
  if (!revoked.ok()) return 0;
  int n = 0;
  for (const auto& r : *revoked) {
    last_id_ = r.id;
    if (auto s = sessions_.Find(r.name)) {
      // Re-enrolling with --replace revokes the name's older certificates:
      // a session already on the new one stays. Cut when in doubt (no
      // serial, the database unreachable).
      if (!s->cert_serial().empty() &&
          certs_.CheckCertificate(s->cert_serial(), pki::kRoleAgent, r.name)
              .ok()) {
        spdlog::info(
            "agent_kept name={} session={} reason=certificate_still_valid",
            r.name, s->id());
        continue;
      }
      s->Cancel();
      ++n;
      spdlog::warn("agent_cut_off name={} session={} reason=revoked", r.name,
                   s->id());
    }
  }
  return n;
}

}  // namespace netvigil::collector
