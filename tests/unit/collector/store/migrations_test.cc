#include "collector/store/migrations.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

using Files = std::vector<std::pair<std::string_view, std::string_view>>;

std::vector<std::string> Names(const std::vector<Migration>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.name);
  return out;
}

TEST(MigrationsTest, OrderedByNumberNotByInputOrder) {
  auto m =
      OrderMigrations(Files{{"0002_b", "B"}, {"0003_c", "C"}, {"0001_a", "A"}});
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(Names(*m),
            (std::vector<std::string>{"0001_a", "0002_b", "0003_c"}));
  EXPECT_EQ((*m)[0].sql, "A");
  EXPECT_EQ((*m)[2].version, 3);
}

TEST(MigrationsTest, GapsRepeatsAndBadNamesAreRefused) {
  EXPECT_THAT(OrderMigrations(Files{{"0001_a", ""}, {"0003_c", ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "0003_c"));
  EXPECT_THAT(OrderMigrations(Files{{"0001_a", ""}, {"0001_b", ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OrderMigrations(Files{{"1_a", ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "NNNN_"));
  EXPECT_THAT(OrderMigrations(Files{{"0000_zero", ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MigrationsTest, PendingAreTheOnesAfterTheAppliedPrefix) {
  auto all =
      OrderMigrations(Files{{"0001_a", ""}, {"0002_b", ""}, {"0003_c", ""}});
  ASSERT_THAT(all, IsOk());
  auto p = PendingMigrations(*all, {"0001_a"});
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(Names(*p), (std::vector<std::string>{"0002_b", "0003_c"}));
  auto none = PendingMigrations(*all, {"0003_c", "0001_a", "0002_b"});
  ASSERT_THAT(none, IsOk());
  EXPECT_TRUE(none->empty());
}

TEST(MigrationsTest, ADatabaseNewerThanTheBinaryIsAnError) {
  auto all = OrderMigrations(Files{{"0001_a", ""}});
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(PendingMigrations(*all, {"0001_a", "0002_future"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "newer"));
}

TEST(MigrationsTest, ASkippedMigrationIsAnError) {
  auto all =
      OrderMigrations(Files{{"0001_a", ""}, {"0002_b", ""}, {"0003_c", ""}});
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(PendingMigrations(*all, {"0001_a", "0003_c"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "0002_b"));
}

TEST(MigrationsTest, TheEmbeddedMigrationsAreWellFormed) {
  auto m = OrderMigrations(EmbeddedMigrations());
  ASSERT_THAT(m, IsOk());
  ASSERT_FALSE(m->empty());
  EXPECT_EQ(m->front().name, "0001_agents");
}

}  // namespace
}  // namespace netvigil::collector
