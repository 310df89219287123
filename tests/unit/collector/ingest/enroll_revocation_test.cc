// The collector's side of enrollment and revocation with an in-memory
// CertStore: what the Enroll RPC signs and refuses, and that a revocation
// cancels exactly the revoked agent's live session.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "collector/ingest/enroll_service.h"
#include "collector/ingest/revocation_watcher.h"
#include "collector/ingest/session_registry.h"
#include "common/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

// Tokens and certificates in maps; the same rules as PgCertStore.
class FakeCertStore final : public CertStore {
 public:
  struct Token {
    std::string name;
    absl::Time expires;
    bool used = false;
  };
  absl::Status CreateToken(const std::string& name, const std::string& sha,
                           bool, absl::Time, absl::Time expires) override {
    absl::MutexLock l(&mu_);
    tokens_[sha] = {name, expires};
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Enroll(const std::string& sha,
                                     const std::string& name, absl::Time now,
                                     const Signer& sign) override {
    absl::MutexLock l(&mu_);
    auto it = tokens_.find(sha);
    if (it == tokens_.end()) return absl::PermissionDeniedError("unknown");
    if (it->second.used) return absl::PermissionDeniedError("already used");
    if (it->second.expires <= now)
      return absl::PermissionDeniedError("expired");
    if (it->second.name != name) return absl::PermissionDeniedError("for");
    auto cert = sign();
    if (!cert.ok()) return cert.status();
    it->second.used = true;
    auto info = pki::ParseCert(*cert);
    certs_[info->serial_hex] = {name, false};
    return cert;
  }
  absl::Status RecordCertificate(const pki::CertInfo& c, absl::Time) override {
    absl::MutexLock l(&mu_);
    certs_[c.serial_hex] = {c.common_name, false};
    return absl::OkStatus();
  }
  absl::Status CheckCertificate(const std::string& serial, const std::string&,
                                const std::string& name) override {
    absl::MutexLock l(&mu_);
    auto it = certs_.find(serial);
    if (it == certs_.end() || it->second.first != name || it->second.second) {
      return absl::PermissionDeniedError("no");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int> Revoke(const std::string&, const std::string& name,
                             absl::Time) override {
    absl::MutexLock l(&mu_);
    int n = 0;
    for (auto& [serial, c] : certs_) {
      if (c.first == name && !c.second) {
        c.second = true;
        ++n;
      }
    }
    revocations_.push_back(
        {static_cast<int64_t>(revocations_.size()) + 1, name});
    return n;
  }
  absl::StatusOr<std::vector<Revocation>> AgentRevocationsAfter(
      int64_t after) override {
    absl::MutexLock l(&mu_);
    if (down_) return absl::UnavailableError("database down");
    std::vector<Revocation> out;
    for (const auto& r : revocations_) {
      if (r.id > after) out.push_back(r);
    }
    return out;
  }
  absl::StatusOr<int64_t> LastRevocationId() override {
    absl::MutexLock l(&mu_);
    if (down_) return absl::UnavailableError("database down");
    return static_cast<int64_t>(revocations_.size());
  }
  void SetDown(bool down) {
    absl::MutexLock l(&mu_);
    down_ = down;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, Token> tokens_;
  std::map<std::string, std::pair<std::string, bool>> certs_;
  std::vector<Revocation> revocations_;
  bool down_ = false;
};

class EnrollServiceTest : public ::testing::Test {
 protected:
  EnrollServiceTest() {
    ca_key_ = *pki::NewPrivateKey();
    pki::CertSpec spec;
    spec.common_name = "ca";
    spec.role = pki::kRoleCa;
    spec.not_before = clock_.Now() - absl::Hours(1);
    spec.not_after = clock_.Now() + pki::kCaValidity;
    ca_cert_ = *pki::SelfSignedCa(ca_key_, spec);
    EnrollServiceOptions o;
    o.ca_cert_pem = ca_cert_;
    o.ca_key_pem = ca_key_;
    service_ = std::make_unique<EnrollService>(o, store_, clock_);
  }

  v1::EnrollRequest Request(const std::string& name, const std::string& token,
                            const std::string& key) {
    v1::EnrollRequest r;
    r.set_agent_name(name);
    r.set_token(token);
    r.set_csr_pem(*pki::MakeCsr(key, name));
    return r;
  }

  FakeClock clock_{absl::Now()};
  FakeCertStore store_;
  std::string ca_key_, ca_cert_;
  std::unique_ptr<EnrollService> service_;
};

TEST_F(EnrollServiceTest, SignsTheAgentsOwnKeyForOneYearAndOnlyOnce) {
  const std::string key = *pki::NewPrivateKey();
  ASSERT_THAT(store_.CreateToken("alice", pki::Sha256Hex("t1"), false,
                                 clock_.Now(), clock_.Now() + absl::Hours(24)),
              IsOk());
  auto r = service_->DoEnroll(Request("alice", "t1", key), "peer");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->ca_pem(), ca_cert_);
  EXPECT_TRUE(pki::KeyMatchesCert(key, r->certificate_pem()));
  auto info = pki::ParseCert(r->certificate_pem());
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->common_name, "alice");
  EXPECT_EQ(info->role, pki::kRoleAgent);
  EXPECT_GE(info->not_after - clock_.Now(),
            pki::kAgentValidity - absl::Seconds(1));
  EXPECT_LE(info->not_after - clock_.Now(), pki::kAgentValidity);
  EXPECT_THAT(pki::VerifyIssuedBy(r->certificate_pem(), ca_cert_, clock_.Now()),
              IsOk());
  EXPECT_THAT(service_->DoEnroll(Request("alice", "t1", key), "peer"),
              StatusIs(absl::StatusCode::kPermissionDenied, "already used"));
}

TEST_F(EnrollServiceTest, RefusesExpiredUnknownAndOtherNamesTokens) {
  const std::string key = *pki::NewPrivateKey();
  ASSERT_THAT(store_.CreateToken("bob", pki::Sha256Hex("t2"), false,
                                 clock_.Now(), clock_.Now() + absl::Minutes(5)),
              IsOk());
  EXPECT_THAT(service_->DoEnroll(Request("eve", "t2", key), "p"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(service_->DoEnroll(Request("bob", "nope", key), "p"),
              StatusIs(absl::StatusCode::kPermissionDenied, "unknown"));
  clock_.Advance(absl::Minutes(6));
  EXPECT_THAT(service_->DoEnroll(Request("bob", "t2", key), "p"),
              StatusIs(absl::StatusCode::kPermissionDenied, "expired"));
}

TEST_F(EnrollServiceTest, BadRequestsAreInvalidArgumentAndSpendNoToken) {
  ASSERT_THAT(store_.CreateToken("carol", pki::Sha256Hex("t3"), false,
                                 clock_.Now(), clock_.Now() + absl::Hours(1)),
              IsOk());
  v1::EnrollRequest r = Request("carol", "t3", *pki::NewPrivateKey());
  r.set_csr_pem("not a request");
  EXPECT_THAT(service_->DoEnroll(r, "p"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_csr_pem(std::string(20000, 'x'));
  EXPECT_THAT(service_->DoEnroll(r, "p"),
              StatusIs(absl::StatusCode::kInvalidArgument, "csr_pem"));
  r = Request("carol", "t3", *pki::NewPrivateKey());
  r.set_agent_name("../etc");
  EXPECT_THAT(service_->DoEnroll(r, "p"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The failed attempts did not use the token up.
  EXPECT_THAT(
      service_->DoEnroll(Request("carol", "t3", *pki::NewPrivateKey()), "p"),
      IsOk());
}

std::shared_ptr<AgentSession> Session(const std::string& name, int* cancels) {
  return std::make_shared<AgentSession>(
      name, name + "-1", "peer",
      [](const v1::CollectorMessage&) { return true; },
      [cancels] { ++*cancels; }, absl::Now());
}

TEST(RevocationWatcherTest, CancelsOnlyTheRevokedAgentsSession) {
  FakeCertStore store;
  SessionRegistry sessions;
  int alice_cancels = 0, bob_cancels = 0;
  ASSERT_THAT(sessions.Claim(Session("alice", &alice_cancels), absl::Now(),
                             absl::Seconds(20)),
              IsOk());
  ASSERT_THAT(sessions.Claim(Session("bob", &bob_cancels), absl::Now(),
                             absl::Seconds(20)),
              IsOk());
  // A revocation from before the watcher started cuts nothing.
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "bob", absl::Now()), IsOk());
  RevocationWatcher watcher(store, sessions);
  EXPECT_EQ(watcher.PollOnce(), 0);
  EXPECT_EQ(bob_cancels, 0);
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "alice", absl::Now()), IsOk());
  EXPECT_EQ(watcher.PollOnce(), 1);
  EXPECT_EQ(alice_cancels, 1);
  EXPECT_EQ(bob_cancels, 0);
  EXPECT_EQ(watcher.PollOnce(), 0) << "each revocation is acted on once";
  EXPECT_EQ(alice_cancels, 1);
}

// `enroll NAME --replace` revokes the name's older certificates; the agent
// already streaming on its new one keeps its stream, one still on an old
// one is cut. (The quickstart's first streams were cut before this.)
TEST(RevocationWatcherTest, ASessionOnTheNewCertificateOfAReplacedNameStays) {
  FakeCertStore store;
  SessionRegistry sessions;
  pki::CertInfo old_cert, new_cert;
  old_cert.serial_hex = "01";
  old_cert.common_name = new_cert.common_name = "alice";
  new_cert.serial_hex = "02";
  ASSERT_THAT(store.RecordCertificate(old_cert, absl::Now()), IsOk());
  RevocationWatcher watcher(store, sessions);
  EXPECT_EQ(watcher.PollOnce(), 0);
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "alice", absl::Now()), IsOk());
  ASSERT_THAT(store.RecordCertificate(new_cert, absl::Now()), IsOk());
  int cancels = 0;
  auto session = Session("alice", &cancels);
  session->set_cert_serial("02");
  ASSERT_THAT(sessions.Claim(session, absl::Now(), absl::Seconds(20)), IsOk());
  EXPECT_EQ(watcher.PollOnce(), 0);
  EXPECT_EQ(cancels, 0);

  // The same revocation seen while the old key still streams: cut.
  RevocationWatcher second(store, sessions);
  ASSERT_THAT(store.RecordCertificate(old_cert, absl::Now()), IsOk());
  EXPECT_EQ(second.PollOnce(), 0);
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "alice", absl::Now()), IsOk());
  session->set_cert_serial("01");
  EXPECT_EQ(second.PollOnce(), 1);
  EXPECT_EQ(cancels, 1);
}

TEST(RevocationWatcherTest, DatabaseDownAtStartThenRevocationStillCuts) {
  FakeCertStore store;
  SessionRegistry sessions;
  int cancels = 0;
  ASSERT_THAT(sessions.Claim(Session("alice", &cancels), absl::Now(),
                             absl::Seconds(20)),
              IsOk());
  store.SetDown(true);
  RevocationWatcher watcher(store, sessions);
  EXPECT_EQ(watcher.PollOnce(), 0);
  store.SetDown(false);
  EXPECT_EQ(watcher.PollOnce(), 0);
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "alice", absl::Now()), IsOk());
  store.SetDown(true);
  EXPECT_EQ(watcher.PollOnce(), 0) << "nothing to read while down";
  store.SetDown(false);
  EXPECT_EQ(watcher.PollOnce(), 1) << "read when the database is back";
  EXPECT_EQ(cancels, 1);
}

TEST(RevocationWatcherTest, ItsThreadCutsWithinAPoll) {
  FakeCertStore store;
  SessionRegistry sessions;
  std::atomic<int> cancels{0};
  ASSERT_THAT(
      sessions.Claim(std::make_shared<AgentSession>(
                         "alice", "a-1", "peer",
                         [](const v1::CollectorMessage&) { return true; },
                         [&] { ++cancels; }, absl::Now()),
                     absl::Now(), absl::Seconds(20)),
      IsOk());
  RevocationWatcher watcher(store, sessions, absl::Milliseconds(10));
  watcher.Start();
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_THAT(store.Revoke(pki::kRoleAgent, "alice", absl::Now()), IsOk());
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (cancels.load() == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  watcher.Stop();
  EXPECT_EQ(cancels.load(), 1);
}

}  // namespace
}  // namespace netvigil::collector
