// The Collector (collector/collector.h) built from injected parts: what it
// refuses to start without, and how it waits for the database's preparation
// (the migrations) before the analysis and the alert methods start.
#include "collector/collector.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/in_process_collector.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeStore;
using ::netvigil::testing::InProcessCollector;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

grpc::Status ListAlerts(InProcessCollector& c) {
  auto stub = c.QueryStub();
  grpc::ClientContext ctx;
  v1::ListAlertsResponse resp;
  return stub->ListAlerts(&ctx, {}, &resp);
}

TEST(CollectorTest, RefusesToStartWithoutAStore) {
  MemoryAlertStore alerts;
  CollectorParts parts;
  parts.alerts = &alerts;
  parts.host = std::make_unique<testing::InProcessHost>();
  Collector c(CollectorConfig(), AnalysisOptions(), /*insecure=*/true,
              std::move(parts));
  EXPECT_THAT(c.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "a store, an alert store, a service host"));
}

TEST(CollectorTest, RefusesToStartWithTlsButNoCertificateStore) {
  FakeStore store;
  MemoryAlertStore alerts;
  CollectorParts parts;
  parts.store = &store;
  parts.alerts = &alerts;
  parts.host = std::make_unique<testing::InProcessHost>();
  Collector c(CollectorConfig(), AnalysisOptions(), /*insecure=*/false,
              std::move(parts));
  EXPECT_THAT(c.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                  "a certificate store"));
}

TEST(CollectorTest, RetriesTheDatabasePreparationUntilItSucceeds) {
  std::atomic<int> calls{0};
  InProcessCollector c(CollectorConfig(), [&] {
    return ++calls <= 2 ? absl::UnavailableError("connection refused")
                        : absl::OkStatus();
  });
  ASSERT_THAT(c.Start(), IsOk());
  // Serving at once: the agents' and queries' services do not wait for the
  // database; the alert methods say it is not up yet.
  const grpc::Status before = ListAlerts(c);
  if (!c.collector->analyzing()) {
    EXPECT_EQ(before.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  const absl::Time deadline = absl::Now() + kWait;
  while (!c.collector->analyzing() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(c.collector->analyzing());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_TRUE(ListAlerts(c).ok());
}

TEST(CollectorTest, ASchemaNewerThanTheBinaryIsNotRetried) {
  std::atomic<int> calls{0};
  InProcessCollector c(CollectorConfig(), [&] {
    ++calls;
    return absl::FailedPreconditionError("schema version 99 is newer");
  });
  ASSERT_THAT(c.Start(), IsOk());
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(c.collector->analyzing());
  // The Query service stays up to say so.
  const grpc::Status s = ListAlerts(c);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace netvigil::collector
