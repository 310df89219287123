// iperf3's credentials as the collector makes them: the hash iperf3 checks,
// the authorized-users file, the per-agent password and the key pair.
#include "common/iperf_credentials.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(IperfPasswordSha256Test, MatchesTheExampleInIperf3sManual) {
  // iperf3(1), EXAMPLES: S_USER=mario S_PASSWD=rossi,
  // echo -n "{$S_USER}$S_PASSWD" | sha256sum.
  EXPECT_EQ(IperfPasswordSha256("mario", "rossi"),
            "bf7a49a846d44b454a5d11e7acfaf13d138bbe0b7483aa3e050879700572709b");
}

TEST(DeriveIperfPasswordTest, StablePerAgentAndSecret) {
  const std::string a = DeriveIperfPassword("secret-1", "nas");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, DeriveIperfPassword("secret-1", "nas"));
  EXPECT_NE(a, DeriveIperfPassword("secret-1", "laptop"));
  EXPECT_NE(a, DeriveIperfPassword("secret-2", "nas"));
}

TEST(AuthorizedUsersFileTest, OneLinePerUserInIperf3sFormat) {
  v1::IperfUser u1, u2;
  u1.set_username("nas");
  u1.set_password_sha256(IperfPasswordSha256("nas", "pw1"));
  u2.set_username("lab-h2.home");
  u2.set_password_sha256(std::string(64, 'A'));
  absl::StatusOr<std::string> f = AuthorizedUsersFile({u1, u2});
  ASSERT_THAT(f, IsOk());
  EXPECT_THAT(*f, StartsWith("#"));
  EXPECT_THAT(*f,
              HasSubstr("\nnas," + IperfPasswordSha256("nas", "pw1") + "\n"));
  EXPECT_THAT(*f, HasSubstr("\nlab-h2.home," + std::string(64, 'a') + "\n"));
}

TEST(AuthorizedUsersFileTest, RefusesWhatWouldBreakTheFile) {
  v1::IperfUser u;
  u.set_password_sha256(std::string(64, 'a'));
  for (const char* bad : {"", "a,b", "a\nb", "#root", "a b"}) {
    u.set_username(bad);
    EXPECT_THAT(AuthorizedUsersFile({u}),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  u.set_username("ok");
  u.set_password_sha256("not-a-hash");
  EXPECT_THAT(AuthorizedUsersFile({u}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NewIperfKeyPairTest, PemAsIperf3WantsIt) {
  absl::StatusOr<IperfKeyPair> k = NewIperfKeyPair(1024);  // small: fast
  ASSERT_THAT(k, IsOk());
  EXPECT_THAT(k->private_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
  EXPECT_THAT(k->public_pem, StartsWith("-----BEGIN PUBLIC KEY-----"));
  absl::StatusOr<IperfKeyPair> k2 = NewIperfKeyPair(1024);
  ASSERT_THAT(k2, IsOk());
  EXPECT_NE(k->private_pem, k2->private_pem);
}

}  // namespace
}  // namespace netvigil
