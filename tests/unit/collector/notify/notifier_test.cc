// The notification outbox and sender on a fake clock, a fake channel and
// the memory alert store: which events are news, folding, digests, backoff,
// expiry and the notify_failed health reports (README "Notifications").
#include "collector/notify/notifier.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collector/alerts/memory_alert_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::FakeClock;
using ::netvigil::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records every message; fails while `down` is set.
class FakeChannel final : public NotifyChannel {
 public:
  struct State {
    bool down = false;
    std::vector<NotifyMessage> got;
    int attempts = 0;
  };
  explicit FakeChannel(State* s) : s_(s) {}
  absl::StatusOr<std::string> Send(const NotifyMessage& m) override {
    ++s_->attempts;
    if (s_->down) return absl::UnavailableError("connection refused");
    s_->got.push_back(m);
    return std::string("HTTP 200: ok");
  }

 private:
  State* s_;
};

google::protobuf::Struct Json(const std::string& text) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &s).ok());
  return s;
}

class NotifySenderTest : public ::testing::Test {
 protected:
  void Build(NotifyConfig config) {
    NotifyChannelConfig a;
    a.name = "a";
    a.type = "webhook";
    NotifyChannelConfig b;
    b.name = "b";
    b.type = "command";
    b.kinds = {"new_listener", "notify_failed"};
    b.min_severity = v1::SEVERITY_WARNING;
    config.channels = {a, b};
    config_ = config;
    store_.SetOutboxOptions(Notifier::OutboxOptionsFor(config));
    Notifier::Channels channels;
    channels["a"] = std::make_unique<FakeChannel>(&a_);
    channels["b"] = std::make_unique<FakeChannel>(&b_);
    notifier_ = std::make_unique<Notifier>(config, std::move(channels), store_,
                                           clock_, [] { return 1.0; });
    notifier_->SetHealthListener(
        [this](const std::string& ch, bool failing, const std::string& why) {
          health_.push_back(ch + (failing ? " failing: " + why : " ok"));
        });
  }

  // An alert event now, with the alert saved first (it gets its id).
  int64_t Event(v1::AlertEvent::Type type, int64_t id, const std::string& kind,
                v1::Severity sev, const std::string& host = "h1") {
    v1::Alert a;
    a.set_id(id);
    a.set_kind(kind);
    a.set_severity(sev);
    a.set_scope(v1::ALERT_SCOPE_HOST);
    a.add_hosts(host);
    a.set_summary("new listener tcp 0.0.0.0:8080 (nc)");
    *a.mutable_first_seen() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
            absl::ToUnixMicros(clock_.Now()));
    if (type == v1::AlertEvent::TYPE_RESOLVED) {
      *a.mutable_resolved_at() = a.first_seen();
    }
    if (id == 0) {
      auto saved = store_.SaveAlert(a);
      EXPECT_THAT(saved, IsOk());
      a.set_id(*saved);
    }
    v1::AlertEvent e;
    e.set_type(type);
    *e.mutable_alert() = a;
    *e.mutable_at() = a.first_seen();
    EXPECT_THAT(store_.AppendEvent(e), IsOk());
    return a.id();
  }

  int Round() {
    absl::StatusOr<int> n = notifier_->RunOnce();
    EXPECT_THAT(n, IsOk());
    return n.ok() ? *n : -1;
  }

  FakeClock clock_;
  MemoryAlertStore store_;
  NotifyConfig config_;
  FakeChannel::State a_, b_;
  std::unique_ptr<Notifier> notifier_;
  std::vector<std::string> health_;
};

TEST_F(NotifySenderTest, OnlyNewsIsQueuedAndRoutedByKindAndSeverity) {
  Build(NotifyConfig());
  const int64_t id =
      Event(v1::AlertEvent::TYPE_OPENED, 0, "new_listener", v1::SEVERITY_INFO);
  // An update without a rise in severity (a new host) is not news.
  Event(v1::AlertEvent::TYPE_UPDATED, id, "new_listener", v1::SEVERITY_INFO);
  Event(v1::AlertEvent::TYPE_UPDATED, id, "new_listener",
        v1::SEVERITY_WARNING);  // escalated
  Event(v1::AlertEvent::TYPE_MERGED, id, "new_listener", v1::SEVERITY_WARNING);
  Event(v1::AlertEvent::TYPE_ACKNOWLEDGED, id, "new_listener",
        v1::SEVERITY_WARNING);
  Event(v1::AlertEvent::TYPE_RESOLVED, id, "new_listener",
        v1::SEVERITY_WARNING);
  Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_CRITICAL);
  std::vector<std::string> rows;
  for (const OutboxRow& r : store_.outbox()) {
    rows.push_back(r.channel + " " + r.news + " " + r.event.alert().kind());
  }
  // b takes new_listener at warning and above only.
  EXPECT_THAT(rows,
              ElementsAre("a opened new_listener", "a escalated new_listener",
                          "b escalated new_listener", "a resolved new_listener",
                          "b resolved new_listener", "a opened path_loss"));
}

TEST_F(NotifySenderTest, NotifyFailedGoesToTheOtherChannelsOnly) {
  Build(NotifyConfig());
  v1::Alert a;
  a.set_kind(kNotifyFailedKind);
  a.set_severity(v1::SEVERITY_WARNING);
  (*a.mutable_details())["channel"] = "a";
  auto id = store_.SaveAlert(a);
  ASSERT_THAT(id, IsOk());
  a.set_id(*id);
  v1::AlertEvent e;
  e.set_type(v1::AlertEvent::TYPE_OPENED);
  *e.mutable_alert() = a;
  ASSERT_THAT(store_.AppendEvent(e), IsOk());
  ASSERT_THAT(store_.outbox(), SizeIs(1));
  EXPECT_EQ(store_.outbox()[0].channel, "b");
}

TEST_F(NotifySenderTest, SentOnceAfterTheGatherDelayWithAStableEventId) {
  NotifyConfig c;
  c.gather = absl::Seconds(2);
  Build(c);
  Event(v1::AlertEvent::TYPE_OPENED, 0, "new_listener", v1::SEVERITY_WARNING);
  EXPECT_EQ(Round(), 0);  // not due yet
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(Round(), 2);
  EXPECT_EQ(Round(), 0);
  ASSERT_THAT(a_.got, SizeIs(1));
  ASSERT_THAT(b_.got, SizeIs(1));
  EXPECT_EQ(a_.got[0].event_id, "netvigil-event-1");
  EXPECT_EQ(b_.got[0].event_id, a_.got[0].event_id);
  google::protobuf::Struct j = Json(a_.got[0].json);
  EXPECT_EQ(j.fields().at("event").string_value(), "opened");
  EXPECT_EQ(j.fields().at("kind").string_value(), "new_listener");
  EXPECT_EQ(j.fields().at("severity").string_value(), "warning");
  EXPECT_EQ(j.fields().at("scope").string_value(), "host");
  EXPECT_EQ(j.fields().at("alert_id").number_value(), 1);
  EXPECT_EQ(j.fields().at("hosts").list_value().values(0).string_value(), "h1");
  EXPECT_EQ(
      j.fields().at("link").struct_value().fields().at("cli").string_value(),
      "netvigil alerts --id 1");
  for (const OutboxRow& r : store_.outbox()) {
    EXPECT_EQ(r.state, OutboxState::kSent);
  }
}

TEST_F(NotifySenderTest, EventsOfOneAlertFoldIntoOneMessagePerInterval) {
  NotifyConfig c;
  c.gather = absl::ZeroDuration();
  c.min_interval = absl::Minutes(5);
  Build(c);
  const int64_t id =
      Event(v1::AlertEvent::TYPE_OPENED, 0, "new_listener", v1::SEVERITY_INFO);
  EXPECT_EQ(Round(), 1);  // a only (b wants warning)
  clock_.Advance(absl::Minutes(1));
  Event(v1::AlertEvent::TYPE_UPDATED, id, "new_listener", v1::SEVERITY_WARNING);
  clock_.Advance(absl::Minutes(1));
  Event(v1::AlertEvent::TYPE_RESOLVED, id, "new_listener",
        v1::SEVERITY_WARNING);
  // b has sent nothing about the alert: its two events go now, folded.
  EXPECT_EQ(Round(), 1);
  ASSERT_THAT(b_.got, SizeIs(1));
  google::protobuf::Struct j = Json(b_.got[0].json);
  EXPECT_EQ(j.fields().at("event").string_value(), "resolved");
  EXPECT_EQ(j.fields().at("folded_event_ids").list_value().values_size(), 1);
  // a sent the opening 2 minutes ago: it waits until 5 minutes are over.
  EXPECT_THAT(a_.got, SizeIs(1));
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(Round(), 0);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Round(), 1);
  ASSERT_THAT(a_.got, SizeIs(2));
  j = Json(a_.got[1].json);
  EXPECT_EQ(j.fields().at("event").string_value(), "resolved");
  EXPECT_EQ(
      j.fields().at("folded_event_ids").list_value().values(0).string_value(),
      "netvigil-event-2");
  for (const OutboxRow& r : store_.outbox()) {
    EXPECT_EQ(r.state, OutboxState::kSent) << r.id;
  }
}

TEST_F(NotifySenderTest, MoreThanDigestAfterOpeningsInOneRoundIsOneDigest) {
  NotifyConfig c;
  c.gather = absl::ZeroDuration();
  c.digest_after = 10;
  Build(c);
  for (int i = 0; i < 11; ++i) {
    Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING,
          "h" + std::to_string(i));
  }
  EXPECT_EQ(Round(), 1);
  ASSERT_THAT(a_.got, SizeIs(1));
  google::protobuf::Struct j = Json(a_.got[0].json);
  EXPECT_EQ(j.fields().at("event").string_value(), "digest");
  EXPECT_EQ(j.fields().at("count").number_value(), 11);
  EXPECT_EQ(j.fields().at("events").list_value().values_size(), 11);
  EXPECT_EQ(a_.got[0].event_id, "netvigil-digest-1-11");
  // Exactly digest_after: one message each.
  for (int i = 0; i < 10; ++i) {
    Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING,
          "g" + std::to_string(i));
  }
  EXPECT_EQ(Round(), 10);
}

TEST_F(NotifySenderTest, AFloodOverSeveralSecondsIsStillOneDigest) {
  NotifyConfig c;
  c.gather = absl::Seconds(3);
  c.digest_after = 10;
  Build(c);
  // Two snapshots a second apart: 8 alerts, then 6.
  for (int i = 0; i < 8; ++i) {
    Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING,
          "h" + std::to_string(i));
  }
  clock_.Advance(absl::Seconds(1));
  for (int i = 0; i < 6; ++i) {
    Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING,
          "g" + std::to_string(i));
  }
  for (int s = 0; s < 5; ++s) {
    clock_.Advance(absl::Seconds(1));
    Round();
  }
  ASSERT_THAT(a_.got, SizeIs(1));
  EXPECT_EQ(Json(a_.got[0].json).fields().at("count").number_value(), 14);
}

TEST_F(NotifySenderTest, AStreamThatNeverPausesStillFlows) {
  NotifyConfig c;
  c.gather = absl::Seconds(2);
  Build(c);
  // An event every second for 30 s: the sender waits 5 gathers at most.
  for (int s = 0; s < 30; ++s) {
    Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING,
          "h" + std::to_string(s));
    Round();
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_GE(a_.got.size(), 2u);
}

TEST_F(NotifySenderTest, FailuresBackOffExponentiallyUntilAccepted) {
  NotifyConfig c;
  c.gather = absl::ZeroDuration();
  c.retry_initial = absl::Seconds(10);
  c.retry_max = absl::Seconds(40);
  Build(c);
  a_.down = true;
  Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING);
  // The jitter draws 1.0: the delays are the ceilings 10, 20, 40, 40 s.
  std::vector<int> attempts_at;
  for (int s = 0; s <= 120; ++s) {
    const int before = a_.attempts;
    Round();
    if (a_.attempts != before) attempts_at.push_back(s);
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_THAT(attempts_at, ElementsAre(0, 10, 30, 70, 110));
  EXPECT_EQ(store_.outbox()[0].last_error, "connection refused");
  a_.down = false;
  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(Round(), 1);
  EXPECT_THAT(a_.got, SizeIs(1));
  EXPECT_EQ(store_.outbox()[0].state, OutboxState::kSent);
}

TEST_F(NotifySenderTest, AMessageNotAcceptedInTimeExpires) {
  NotifyConfig c;
  c.gather = absl::ZeroDuration();
  c.retry_initial = absl::Minutes(1);
  c.retry_max = absl::Minutes(1);
  c.expire_after = absl::Minutes(10);
  Build(c);
  a_.down = true;
  Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING);
  for (int m = 0; m <= 12; ++m) {
    Round();
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(store_.outbox()[0].state, OutboxState::kExpired);
  EXPECT_EQ(a_.attempts, 10);  // minutes 0..9; at 10 it expired unsent
  a_.down = false;
  Round();
  EXPECT_THAT(a_.got, IsEmpty());
}

TEST_F(NotifySenderTest, AChannelFailingLongerThanFailAlertAfterIsReported) {
  NotifyConfig c;
  c.gather = absl::ZeroDuration();
  c.retry_initial = absl::Minutes(1);
  c.retry_max = absl::Minutes(1);
  c.fail_alert_after = absl::Minutes(10);
  Build(c);
  a_.down = true;
  Event(v1::AlertEvent::TYPE_OPENED, 0, "path_loss", v1::SEVERITY_WARNING);
  for (int m = 0; m < 10; ++m) {
    Round();
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_THAT(health_, IsEmpty());  // failing for 9 minutes: not yet
  Round();
  EXPECT_THAT(health_, ElementsAre("a failing: connection refused"));
  clock_.Advance(absl::Minutes(1));
  Round();
  EXPECT_THAT(health_, SizeIs(1));  // reported once
  a_.down = false;
  clock_.Advance(absl::Minutes(1));
  Round();
  EXPECT_THAT(health_, ElementsAre("a failing: connection refused", "a ok"));
}

TEST_F(NotifySenderTest, RowsOfAChannelNoLongerConfiguredExpire) {
  NotifyConfig c;
  Build(c);
  Event(v1::AlertEvent::TYPE_OPENED, 0, "new_listener", v1::SEVERITY_WARNING);
  auto gone = store_.ExpireUnknownChannels({"a"});
  ASSERT_THAT(gone, IsOk());
  EXPECT_EQ(gone->at("b"), 1);
  for (const OutboxRow& r : store_.outbox()) {
    EXPECT_EQ(r.state,
              r.channel == "b" ? OutboxState::kExpired : OutboxState::kPending);
  }
}

}  // namespace
}  // namespace netvigil::collector
