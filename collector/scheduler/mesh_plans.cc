#include "collector/scheduler/mesh_plans.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/iperf_credentials.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {

MeshPlans::MeshPlans(v1::ProbePlan base, uint32_t iperf_port,
                     SecretsLoader load_secrets)
    : base_(std::move(base)),
      iperf_port_(iperf_port),
      load_secrets_(std::move(load_secrets)) {}

void MeshPlans::SetAgents(const std::vector<v1::AgentInfo>& agents) {
  // A revoked agent is nobody's peer and no server's iperf3 user: the next
  // plan push takes it out of every other agent's lists.
  std::vector<v1::AgentInfo> sorted;
  std::copy_if(agents.begin(), agents.end(), std::back_inserter(sorted),
               [](const v1::AgentInfo& a) { return !a.revoked(); });
  std::sort(sorted.begin(), sorted.end(),
            [](const v1::AgentInfo& a, const v1::AgentInfo& b) {
              return a.name() < b.name();
            });
  absl::MutexLock l(&mu_);
  agents_ = std::move(sorted);
}

absl::Status MeshPlans::EnsureSecrets() {
  if (secrets_.has_value()) return absl::OkStatus();
  if (!load_secrets_) return absl::FailedPreconditionError("no secrets source");
  absl::StatusOr<IperfMeshSecrets> s = load_secrets_();
  if (!s.ok()) return s.status();
  secrets_ = std::move(*s);
  return absl::OkStatus();
}

v1::ProbePlan MeshPlans::PlanForLocked(const std::string& agent) {
  v1::ProbePlan plan = base_;
  v1::SpeedPlan* speed = plan.mutable_speed();
  // Only the collector's own view counts: whatever the base said is replaced.
  speed->clear_peers();
  speed->clear_iperf_users();
  (void)EnsureSecrets();  // without secrets: peers, but no users
  for (const v1::AgentInfo& a : agents_) {
    if (a.name() == agent) continue;
    v1::KnownPeer* p = speed->add_peers();
    p->set_name(a.name());
    *p->mutable_addresses() = a.addresses();
    p->set_port(iperf_port_);
    if (secrets_.has_value() && ValidIperfUsername(a.name())) {
      v1::IperfUser* u = speed->add_iperf_users();
      u->set_username(a.name());
      std::string& hash = hashes_[a.name()];
      if (hash.empty()) {
        hash = IperfPasswordSha256(
            a.name(), DeriveIperfPassword(secrets_->user_secret, a.name()));
      }
      u->set_password_sha256(hash);
    }
  }
  return plan;
}

v1::ProbePlan MeshPlans::PlanFor(const std::string& agent) {
  absl::MutexLock l(&mu_);
  return PlanForLocked(agent);
}

absl::Status MeshPlans::CompleteWelcome(const std::string& agent,
                                        v1::Welcome* welcome) {
  absl::MutexLock l(&mu_);
  if (absl::Status s = EnsureSecrets(); !s.ok()) {
    // Worded as the agent's link classifies a database outage.
    return absl::UnavailableError(
        absl::StrCat("collector database unavailable: iperf3 credentials "
                     "not loaded: ",
                     s.message()));
  }
  *welcome->mutable_plan() = PlanForLocked(agent);
  welcomed_[agent] = welcome->plan().SerializeAsString();
  if (ValidIperfUsername(agent)) {
    v1::IperfAuth* auth = welcome->mutable_iperf_auth();
    auth->set_rsa_private_key_pem(secrets_->rsa_private_pem);
    auth->set_rsa_public_key_pem(secrets_->rsa_public_pem);
    auth->set_username(agent);
    auth->set_password(DeriveIperfPassword(secrets_->user_secret, agent));
  }
  return absl::OkStatus();
}

int MeshPlans::PushChanged(SessionRegistry& sessions) {
  int pushed = 0;
  std::set<std::string> live;
  for (const std::shared_ptr<AgentSession>& s : sessions.All()) {
    live.insert(s->id());
    v1::CollectorMessage m;
    std::string text;
    {
      absl::MutexLock l(&mu_);
      *m.mutable_plan_update() = PlanForLocked(s->name());
      text = m.plan_update().SerializeAsString();
      // A session not pushed to yet has what its welcome carried.
      auto it = sent_.find(s->id());
      if (it == sent_.end()) {
        auto w = welcomed_.find(s->name());
        if (w != welcomed_.end()) it = sent_.emplace(s->id(), w->second).first;
      }
      if (it != sent_.end() && it->second == text) continue;
    }
    if (!s->Send(m)) continue;  // gone; its next session starts afresh
    absl::MutexLock l(&mu_);
    sent_[s->id()] = std::move(text);
    ++pushed;
  }
  absl::MutexLock l(&mu_);
  for (auto it = sent_.begin(); it != sent_.end();) {
    it = live.count(it->first) ? std::next(it) : sent_.erase(it);
  }
  if (pushed > 0) spdlog::debug("plan_updates_sent n={}", pushed);
  return pushed;
}

}  // namespace netvigil::collector
