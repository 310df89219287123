#include "collector/ingest/session_registry.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace netvigil::collector {

AgentSession::AgentSession(std::string name, std::string id, std::string peer,
                           Writer writer, std::function<void()> cancel,
                           absl::Time now)
    : name_(std::move(name)),
      id_(std::move(id)),
      peer_(std::move(peer)),
      writer_(std::move(writer)),
      cancel_(std::move(cancel)),
      connected_at_(now),
      last_heard_(now) {}

bool AgentSession::Send(const v1::CollectorMessage& msg) {
  absl::MutexLock l(&write_mu_);
  return !closed_ && writer_(msg);
}

void AgentSession::Close() {
  absl::MutexLock l(&write_mu_);
  closed_ = true;
}

void AgentSession::Touch(absl::Time now) {
  absl::MutexLock l(&mu_);
  last_heard_ = now;
}

void AgentSession::set_clock_offset(absl::Duration d) {
  absl::MutexLock l(&mu_);
  has_offset_ = true;
  clock_offset_ = d;
}

bool AgentSession::clock_offset(absl::Duration* d) const {
  absl::MutexLock l(&mu_);
  if (has_offset_) *d = clock_offset_;
  return has_offset_;
}

absl::Time AgentSession::ConnectedWall(absl::Time computed) {
  absl::MutexLock l(&mu_);
  if (connected_wall_ == absl::InfinitePast()) connected_wall_ = computed;
  return connected_wall_;
}

absl::Time AgentSession::last_heard() const {
  absl::MutexLock l(&mu_);
  return last_heard_;
}

absl::Status SessionRegistry::Claim(std::shared_ptr<AgentSession> session,
                                    absl::Time now, absl::Duration timeout) {
  std::shared_ptr<AgentSession> stale;
  {
    absl::MutexLock l(&mu_);
    auto it = sessions_.find(session->name());
    if (it != sessions_.end()) {
      if (now - it->second->last_heard() <= timeout) {
        return absl::AlreadyExistsError(absl::StrCat(
            "agent '", session->name(), "' is already connected from ",
            it->second->peer(), "; the first session is kept"));
      }
      stale = it->second;
    }
    sessions_[session->name()] = session;
  }
  if (stale) stale->Cancel();
  return absl::OkStatus();
}

void SessionRegistry::Release(const AgentSession& session) {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(session.name());
  if (it != sessions_.end() && it->second.get() == &session) {
    sessions_.erase(it);
  }
}

std::shared_ptr<AgentSession> SessionRegistry::Find(const std::string& name) {
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(name);
  return it == sessions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<AgentSession>> SessionRegistry::All() {
  absl::MutexLock l(&mu_);
  std::vector<std::shared_ptr<AgentSession>> out;
  for (auto& [name, s] : sessions_) out.push_back(s);
  return out;
}

int SessionRegistry::CancelSilent(absl::Time now, absl::Duration timeout) {
  int n = 0;
  for (auto& s : All()) {
    if (now - s->last_heard() > timeout) {
      s->Cancel();
      ++n;
    }
  }
  return n;
}

void SessionRegistry::CancelByName(const std::string& name) {
  if (auto s = Find(name)) s->Cancel();
}

void SessionRegistry::MarkLive(std::vector<v1::AgentInfo>* agents,
                               absl::Time wall_now, absl::Time mono_now,
                               absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  // A session's times are monotonic; as wall times they are as long ago.
  auto wall = [&](absl::Time mono) { return wall_now - (mono_now - mono); };
  for (v1::AgentInfo& a : *agents) {
    auto it = sessions_.find(a.name());
    if (it == sessions_.end()) continue;
    AgentSession& s = *it->second;
    if (mono_now - s.last_heard() > timeout) continue;
    a.set_online(true);
    // The live session's own start, always: the database's copy may be
    // missing (it was away) or differ by the microseconds between two clock
    // reads, and a client compares answers.
    *a.mutable_connected_since() =
        ToProtoTime(s.ConnectedWall(wall(s.connected_at())));
    // The stream was heard later than the database could record it.
    const absl::Time heard = wall(s.last_heard());
    if (!a.has_last_seen() || FromProtoTime(a.last_seen()) < heard) {
      *a.mutable_last_seen() = ToProtoTime(heard);
    }
  }
}

}  // namespace netvigil::collector
