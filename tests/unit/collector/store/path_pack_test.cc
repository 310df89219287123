// The packed path route and figures (migration 0018): a run rebuilt from
// its route, its figures and path_runs' columns is the run the agent sent,
// its millisecond figures within half a microsecond; what the pack cannot
// hold is refused (the run keeps its payload); an unreadable value is an
// error, never a crash.
#include "collector/store/path_pack.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/pg_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace netvigil::collector::history {
namespace {

using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

// The stored rounding: one microsecond, to the nearest.
constexpr double kHalfMicro = 0.0005 + 1e-9;

// A run as the probe makes it (path_probe.cc): ten hops, one silent, one
// with two routers answering, one with an ICMP error, the destination a
// copy of the last hop.
v1::PathRun SomeRun() {
  v1::PathRun run;
  run.set_target("internet");
  run.set_resolved_address("192.0.2.1");
  run.set_ip_version(4);
  *run.mutable_started_at() = TimeUtil::NanosecondsToTimestamp(
      int64_t{1733450000} * 1'000'000'000 + 123'456'789);
  *run.mutable_finished_at() = TimeUtil::NanosecondsToTimestamp(
      int64_t{1733450010} * 1'000'000'000 + 987'654'321);
  run.set_count(10);
  run.set_interval_s(1.0);
  run.set_max_ttl(30);
  run.set_payload_bytes(56);
  run.set_socket_kind(v1::PATH_SOCKET_KIND_DGRAM);
  for (uint32_t ttl = 1; ttl <= 10; ++ttl) {
    v1::PathHop* h = run.add_hops();
    h->set_ttl(ttl);
    h->set_sent(10);
    if (ttl == 4) {  // silent
      h->set_loss_percent(100);
      continue;
    }
    const uint32_t received = ttl == 6 ? 7 : 10;
    h->set_received(received);
    h->set_loss_percent(100.0 * (10 - received) / 10);
    v1::HopAddress* a = h->add_addresses();
    a->set_address(absl::StrCat("198.51.100.", ttl));
    a->set_received(received);
    if (ttl == 7) {  // two routers: the counts are each address'
      a->set_received(6);
      v1::HopAddress* b = h->add_addresses();
      b->set_address("198.51.100.77");
      b->set_hostname("r77.example.net");
      b->set_received(4);
    }
    if (ttl == 8) h->add_errors("host unreachable");
    const double base = 1.234567 * ttl;
    h->set_best_ms(base);
    h->set_avg_ms(base + 0.3333333);
    h->set_worst_ms(base + 2.71828);
    h->set_last_ms(base + 0.1);
    h->set_stdev_ms(0.4142135);
  }
  v1::PathHop* d = run.mutable_hops(9);
  d->set_is_destination(true);
  run.set_destination_reached(true);
  *run.mutable_destination() = *d;
  return run;
}

// What path_runs' columns give UnpackPathFigures.
v1::PathRun Columns(const v1::PathRun& sent) {
  v1::PathRun run;
  run.set_target(sent.target());
  run.set_resolved_address(sent.resolved_address());
  *run.mutable_started_at() =
      EpochMicrosToProtoTime(ProtoTimeToEpochMicros(sent.started_at()));
  run.set_destination_reached(sent.destination_reached());
  run.set_error(sent.error());
  return run;
}

absl::StatusOr<v1::PathRun> RoundTrip(const v1::PathRun& sent) {
  absl::StatusOr<std::string> figures = PackPathFigures(sent);
  if (!figures.ok()) return figures.status();
  absl::StatusOr<std::vector<v1::PathHop>> route =
      UnpackPathRoute(PackPathRoute(sent));
  if (!route.ok()) return route.status();
  v1::PathRun run = Columns(sent);
  if (absl::Status s = UnpackPathFigures(*figures, *route, run); !s.ok()) {
    return s;
  }
  return run;
}

// Equal but for the millisecond figures (within the rounding) and times
// (to the microsecond).
bool SameRun(const v1::PathRun& got, const v1::PathRun& want) {
  MessageDifferencer d;
  d.set_float_comparison(MessageDifferencer::APPROXIMATE);
  google::protobuf::util::DefaultFieldComparator cmp;
  cmp.set_float_comparison(
      google::protobuf::util::DefaultFieldComparator::APPROXIMATE);
  cmp.SetDefaultFractionAndMargin(0, kHalfMicro);
  d.set_field_comparator(&cmp);
  v1::PathRun w = want;
  for (auto* t : {w.mutable_started_at(), w.mutable_finished_at()}) {
    if (t->seconds() || t->nanos()) t->set_nanos(t->nanos() / 1000 * 1000);
  }
  if (!want.has_started_at()) w.clear_started_at();
  if (!want.has_finished_at()) w.clear_finished_at();
  std::string diff;
  d.ReportDifferencesToString(&diff);
  const bool same = d.Compare(got, w);
  if (!same) ADD_FAILURE() << diff;
  return same;
}

void ExpectSameRun(const v1::PathRun& got, const v1::PathRun& want) {
  EXPECT_TRUE(SameRun(got, want));
}

TEST(PathPackTest, ARunRoundTripsWithItsFiguresToTheMicrosecond) {
  const v1::PathRun sent = SomeRun();
  absl::StatusOr<v1::PathRun> back = RoundTrip(sent);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameRun(*back, sent);
  // The comparison sees a difference of two microseconds.
  v1::PathRun off = *back;
  off.mutable_hops(2)->set_avg_ms(off.hops(2).avg_ms() + 0.002);
  EXPECT_NONFATAL_FAILURE(SameRun(off, sent), "avg_ms");
  // The figures are rounded, not truncated, and nothing more.
  for (int i = 0; i < sent.hops_size(); ++i) {
    const v1::PathHop& a = sent.hops(i);
    const v1::PathHop& b = back->hops(i);
    for (auto [x, y] : {std::pair{a.best_ms(), b.best_ms()},
                        {a.avg_ms(), b.avg_ms()},
                        {a.worst_ms(), b.worst_ms()},
                        {a.last_ms(), b.last_ms()},
                        {a.stdev_ms(), b.stdev_ms()}}) {
      EXPECT_EQ(y, std::llround(x * 1000) / 1000.0) << i;
    }
    EXPECT_EQ(b.loss_percent(), a.loss_percent()) << "loss is exact";
  }
  EXPECT_EQ(back->hops(6).addresses(1).hostname(), "r77.example.net");
  EXPECT_EQ(back->hops(6).addresses(0).received(), 6u);
  EXPECT_EQ(back->hops(7).errors(0), "host unreachable");
  EXPECT_TRUE(back->has_destination());
  EXPECT_TRUE(back->destination().is_destination());
}

TEST(PathPackTest, RunsWithoutHopsTimesOrDestinationRoundTrip) {
  v1::PathRun failed;
  failed.set_target("nowhere.invalid");
  failed.set_error("name does not resolve");
  absl::StatusOr<v1::PathRun> back = RoundTrip(failed);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameRun(*back, failed);
  EXPECT_FALSE(back->has_started_at());
  EXPECT_FALSE(back->has_destination());

  // Unreached: no destination; a finished time but no start.
  v1::PathRun unreached = SomeRun();
  unreached.clear_destination();
  unreached.set_destination_reached(false);
  unreached.mutable_hops(9)->set_is_destination(false);
  unreached.clear_started_at();
  back = RoundTrip(unreached);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameRun(*back, unreached);
  EXPECT_EQ(back->finished_at().seconds(), 1733450010);
}

TEST(PathPackTest, AnOddLossIsKeptExactly) {
  v1::PathRun run = SomeRun();
  run.mutable_hops(2)->set_loss_percent(33.333333333333336);
  run.mutable_hops(3)->set_loss_percent(0);  // silent, yet "no loss"
  absl::StatusOr<v1::PathRun> back = RoundTrip(run);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->hops(2).loss_percent(), 33.333333333333336);
  EXPECT_EQ(back->hops(3).loss_percent(), 0);
}

TEST(PathPackTest, AHopIsAboutTwelveBytesAndTheRouteIsApart) {
  const v1::PathRun run = SomeRun();
  absl::StatusOr<std::string> figures = PackPathFigures(run);
  ASSERT_TRUE(figures.ok());
  // The payload this replaces was about 80 bytes a hop.
  EXPECT_LT(figures->size(), 20u + 14u * run.hops_size()) << figures->size();
  // No address is in the figures: they are the route's.
  EXPECT_EQ(figures->find("198.51.100."), std::string::npos);
  // The same route for other figures packs to the same bytes.
  v1::PathRun other = run;
  other.mutable_hops(0)->set_avg_ms(99);
  other.mutable_hops(0)->mutable_addresses(0)->set_received(3);
  EXPECT_EQ(PackPathRoute(other), PackPathRoute(run));
  other.mutable_hops(1)->mutable_addresses(0)->set_address("203.0.113.9");
  EXPECT_NE(PackPathRoute(other), PackPathRoute(run));
}

TEST(PathPackTest, WhatThePackCannotHoldIsRefused) {
  auto refused = [](v1::PathRun run) {
    return PackPathFigures(run).status().code() ==
           absl::StatusCode::kFailedPrecondition;
  };
  v1::PathRun r = SomeRun();
  r.mutable_hops(1)->set_avg_ms(std::nan(""));
  EXPECT_TRUE(refused(r));
  r = SomeRun();
  r.mutable_hops(1)->set_worst_ms(-1);
  EXPECT_TRUE(refused(r));
  r = SomeRun();
  r.mutable_hops(1)->set_stdev_ms(kPathPackMaxMs * 2);
  EXPECT_TRUE(refused(r));
  r = SomeRun();
  r.mutable_destination()->set_avg_ms(1);  // not a copy of a hop
  EXPECT_TRUE(refused(r));
  r = SomeRun();
  r.set_interval_s(std::numeric_limits<double>::infinity());
  EXPECT_TRUE(refused(r));
  r = SomeRun();
  r.mutable_hops(0)
      ->GetReflection()
      ->MutableUnknownFields(r.mutable_hops(0))
      ->AddVarint(99, 1);
  EXPECT_TRUE(refused(r));
}

TEST(PathPackTest, AnythingElseIsAnErrorNotACrash) {
  const v1::PathRun run = SomeRun();
  const std::string route = PackPathRoute(run);
  const std::string figures = *PackPathFigures(run);
  const std::vector<v1::PathHop> hops = *UnpackPathRoute(route);
  auto figures_ok = [&](const std::string& f) {
    v1::PathRun r = Columns(run);
    return UnpackPathFigures(f, hops, r).ok();
  };
  EXPECT_FALSE(UnpackPathRoute("").ok());
  EXPECT_FALSE(UnpackPathRoute(std::string(1, '\2')).ok()) << "format 2";
  EXPECT_FALSE(figures_ok(""));
  EXPECT_FALSE(figures_ok(std::string(1, '\2')));
  // Every prefix is cut short; every longer value has bytes after.
  for (size_t n = 0; n < route.size(); ++n) {
    EXPECT_FALSE(UnpackPathRoute(route.substr(0, n)).ok()) << n;
  }
  for (size_t n = 0; n < figures.size(); ++n) {
    EXPECT_FALSE(figures_ok(figures.substr(0, n))) << n;
  }
  EXPECT_FALSE(UnpackPathRoute(route + "x").ok());
  EXPECT_FALSE(figures_ok(figures + "x"));
  // Figures of another route (one hop fewer) are refused by name.
  std::vector<v1::PathHop> fewer(hops.begin(), hops.end() - 1);
  v1::PathRun r = Columns(run);
  absl::Status s = UnpackPathFigures(figures, fewer, r);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("10 hops"));
  // A count larger than the value, a varint longer than ten bytes.
  EXPECT_FALSE(UnpackPathRoute(std::string("\1\x7f", 2)).ok());
  EXPECT_FALSE(
      UnpackPathRoute(std::string(1, '\1') + std::string(11, '\xff')).ok());
  // Every single-byte change either decodes or is an error: never a crash.
  for (size_t i = 0; i < route.size(); ++i) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string bad = route;
      bad[i] = static_cast<char>(b);
      (void)UnpackPathRoute(bad);
    }
  }
  for (size_t i = 0; i < figures.size(); ++i) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string bad = figures;
      bad[i] = static_cast<char>(b);
      (void)figures_ok(bad);
    }
  }
}

}  // namespace
}  // namespace netvigil::collector::history
