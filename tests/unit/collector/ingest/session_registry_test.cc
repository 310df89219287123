// SessionRegistry::MarkLive: online state comes from the live streams, not
// from the database's last_seen (stale while the database was away).
#include "collector/ingest/session_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

std::shared_ptr<AgentSession> Session(const std::string& name, absl::Time at) {
  return std::make_shared<AgentSession>(
      name, "s-" + name, "ipv4:10.0.0.1:5555",
      [](const v1::CollectorMessage&) { return true; }, [] {}, at);
}

v1::AgentInfo Info(const std::string& name, bool online) {
  v1::AgentInfo a;
  a.set_name(name);
  a.set_online(online);
  return a;
}

TEST(SessionRegistryTest, ALiveStreamIsOnlineWhateverTheDatabaseSays) {
  SessionRegistry r;
  ASSERT_THAT(r.Claim(Session("h1", kT0), kT0, absl::Seconds(20)), IsOk());
  auto h2 = Session("h2", kT0);
  ASSERT_THAT(r.Claim(h2, kT0, absl::Seconds(20)), IsOk());
  h2->Touch(kT0 + absl::Seconds(30));
  // What the database says right after it returns: last_seen is older than
  // the timeout for everyone, so nobody is online there.
  std::vector<v1::AgentInfo> agents = {Info("h1", false), Info("h2", false),
                                       Info("h3", false), Info("h4", true)};
  r.MarkLive(&agents, kT0 + absl::Seconds(35), kT0 + absl::Seconds(35),
             absl::Seconds(20));
  EXPECT_FALSE(agents[0].online()) << "h1's stream is silent past the timeout";
  EXPECT_TRUE(agents[1].online()) << "h2 was heard 5 s ago";
  EXPECT_EQ(FromProtoTime(agents[1].connected_since()), kT0);
  EXPECT_EQ(FromProtoTime(agents[1].last_seen()), kT0 + absl::Seconds(30))
      << "heard later than the database recorded";
  EXPECT_FALSE(agents[2].online()) << "no stream here";
  EXPECT_TRUE(agents[3].online())
      << "the database's online (a stream at another collector) stays";
}

// Sessions run on the monotonic clock, which has nothing to do with the
// wall clock's epoch (a machine's uptime): liveness is judged on it, and
// what a person reads is wall time.
TEST(SessionRegistryTest, MonotonicSessionTimesShowAsWallTimes) {
  const absl::Time mono0 = absl::UnixEpoch() + absl::Hours(3);  // "uptime"
  SessionRegistry r;
  auto s = Session("h1", mono0);
  ASSERT_THAT(r.Claim(s, mono0, absl::Seconds(20)), IsOk());
  s->Touch(mono0 + absl::Seconds(30));
  std::vector<v1::AgentInfo> agents = {Info("h1", false)};
  r.MarkLive(&agents, kT0 + absl::Seconds(35), mono0 + absl::Seconds(35),
             absl::Seconds(20));
  EXPECT_TRUE(agents[0].online());
  EXPECT_EQ(FromProtoTime(agents[0].connected_since()), kT0);
  EXPECT_EQ(FromProtoTime(agents[0].last_seen()), kT0 + absl::Seconds(30));
  // Asked again a little later (clocks read a moment apart): the same
  // connected_since, to the nanosecond.
  std::vector<v1::AgentInfo> again = {Info("h1", false)};
  r.MarkLive(&again, kT0 + absl::Seconds(36) + absl::Nanoseconds(3),
             mono0 + absl::Seconds(36), absl::Seconds(20));
  EXPECT_EQ(FromProtoTime(again[0].connected_since()), kT0);
}

TEST(SessionRegistryTest, AReleasedStreamIsNotLive) {
  SessionRegistry r;
  auto s = Session("h1", kT0);
  ASSERT_THAT(r.Claim(s, kT0, absl::Seconds(20)), IsOk());
  r.Release(*s);
  std::vector<v1::AgentInfo> agents = {Info("h1", false)};
  r.MarkLive(&agents, kT0 + absl::Seconds(1), kT0 + absl::Seconds(1),
             absl::Seconds(20));
  EXPECT_FALSE(agents[0].online());
  EXPECT_FALSE(agents[0].has_connected_since());
}

}  // namespace
}  // namespace netvigil::collector
