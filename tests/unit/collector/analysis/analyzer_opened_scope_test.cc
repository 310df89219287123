// The opened line carries the alert's final scope: a new thing is held for
// multi_host_window after its first sighting, so the OPENED event (the line
// fail2ban reads) already says MULTI_HOST, the higher severity and every
// host, each once.
#include "collector/alerts/alert_log.h"
#include "gmock/gmock.h"
#include "tests/unit/collector/analysis/analysis_test_util.h"

namespace netvigil::collector::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const Sock kSsh{.lport = 22, .exe = "/usr/sbin/sshd"};
const Sock kBackdoor{.lport = 31337, .exe = "/tmp/.x/backdoor"};

AnalysisOptions WithHold() {
  AnalysisOptions o = TestOptions();
  o.multi_host_window = absl::Minutes(10);
  return o;
}

class OpenedScopeTest : public AnalyzerTest {
 protected:
  OpenedScopeTest() : AnalyzerTest(WithHold()) {}

  // Every host has sent its first (teaching) snapshot.
  void Learn(const std::vector<std::string>& hosts) {
    for (const auto& h : hosts) Send(h, SocketsResult({kSsh}));
  }
};

TEST_F(OpenedScopeTest, AListenerOnThreeHostsOpensOnceAsMultiHost) {
  Learn({"h1", "h2", "h3"});
  for (const std::string h : {"h1", "h2", "h3"}) {
    Send(h, SocketsResult({kSsh, kBackdoor}));
    EXPECT_THAT(events_, IsEmpty()) << "held while the window is open";
    clock_.Advance(absl::Seconds(5));
  }
  // Each host shows it again before the window is over: still one host each.
  for (const std::string h : {"h1", "h2", "h3"}) {
    Send(h, SocketsResult({kSsh, kBackdoor}));
  }
  clock_.Advance(absl::Minutes(10));
  analyzer_->Tick();
  ASSERT_EQ(events_.size(), 1u);
  const v1::AlertEvent& e = events_[0];
  EXPECT_EQ(e.type(), v1::AlertEvent::TYPE_OPENED);
  EXPECT_EQ(e.alert().scope(), v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_EQ(e.alert().severity(), v1::SEVERITY_CRITICAL);
  EXPECT_THAT(Hosts(e.alert()), ElementsAre("h1", "h2", "h3"));
  std::vector<std::string> evidence_hosts;
  for (const auto& ev : e.alert().evidence()) {
    evidence_hosts.push_back(ev.agent());
  }
  EXPECT_THAT(evidence_hosts, ElementsAre("h1", "h2", "h3"))
      << "each host once";
  // first_seen is the first sighting, not the end of the hold.
  EXPECT_EQ(e.alert().first_seen().seconds(),
            absl::ToUnixSeconds(clock_.Now() - absl::Minutes(10) -
                                absl::Seconds(15)));
  const std::string line = FormatAlertLogLine(e);
  EXPECT_THAT(line, HasSubstr("event=opened"));
  EXPECT_THAT(line, HasSubstr("severity=critical scope=multi_host"));
  EXPECT_THAT(line, HasSubstr("hosts=h1,h2,h3 "));
  EXPECT_THAT(line, HasSubstr("on 3 hosts (h1, h2, h3)"));
  // Later snapshots that still show it: no more OPENED, no new host.
  Send("h2", SocketsResult({kSsh, kBackdoor}));
  EXPECT_EQ(Opened(), 1u);
}

TEST_F(OpenedScopeTest, NothingOpensBeforeTheWindowIsOver) {
  Learn({"h1", "h2"});
  Send("h1", SocketsResult({kSsh, kBackdoor}));
  clock_.Advance(absl::Minutes(9));
  analyzer_->Tick();
  Send("h2", SocketsResult({kSsh}));
  EXPECT_THAT(events_, IsEmpty());
  clock_.Advance(absl::Minutes(1));
  // Any result releases what is due, as Tick does.
  Send("h2", SocketsResult({kSsh}));
  ASSERT_EQ(Opened(), 1u);
  EXPECT_EQ(events_[0].alert().scope(), v1::ALERT_SCOPE_HOST);
  EXPECT_EQ(events_[0].alert().severity(), v1::SEVERITY_WARNING);
  EXPECT_THAT(Hosts(events_[0].alert()), ElementsAre("h1"));
  EXPECT_THAT(FormatAlertLogLine(events_[0]),
              HasSubstr("severity=warning scope=host"));
}

TEST_F(OpenedScopeTest, AThingGoneBeforeTheWindowIsOverStillOpens) {
  Learn({"h1"});
  Send("h1", SocketsResult({kSsh, kBackdoor}));
  clock_.Advance(absl::Minutes(1));
  Send("h1", SocketsResult({kSsh}));
  EXPECT_THAT(events_, IsEmpty());
  clock_.Advance(absl::Minutes(10));
  analyzer_->Tick();
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].type(), v1::AlertEvent::TYPE_OPENED);
  EXPECT_EQ(events_[1].type(), v1::AlertEvent::TYPE_RESOLVED);
  EXPECT_THAT(Open(), IsEmpty());
}

TEST_F(OpenedScopeTest, AHostLaterThanTheWindowGetsItsOwnAlert) {
  Learn({"h1", "h2"});
  Send("h1", SocketsResult({kSsh, kBackdoor}));
  clock_.Advance(absl::Minutes(11));
  Send("h2", SocketsResult({kSsh, kBackdoor}));
  ASSERT_EQ(Opened(), 1u) << "h1's, released by h2's result";
  EXPECT_THAT(Hosts(events_[0].alert()), ElementsAre("h1"));
  clock_.Advance(absl::Minutes(10));
  analyzer_->Tick();
  std::vector<v1::AlertEvent> opened = Events(v1::AlertEvent::TYPE_OPENED);
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_THAT(Hosts(opened[1].alert()), ElementsAre("h2"));
  EXPECT_THAT(opened[1].alert().subject(), HasSubstr(" @h2"));
  EXPECT_TRUE(Events(v1::AlertEvent::TYPE_UPDATED).empty());
}

TEST_F(OpenedScopeTest, AFileProcessOnTwoHostsOpensAsMultiHost) {
  const FileUse editor{"/usr/bin/vim", "/home/ann/notes", 300};
  const FileUse x{"/usr/local/bin/exfil", "/home/ann/doc", 1};
  Send("a", FilesResult({editor}));
  Send("b", FilesResult({editor}));
  Send("a", FilesResult({editor, x}));
  clock_.Advance(absl::Minutes(3));
  Send("b", FilesResult({editor, x}));
  clock_.Advance(absl::Minutes(10));
  analyzer_->Tick();
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].alert().kind(), "new_file_process");
  EXPECT_EQ(events_[0].alert().scope(), v1::ALERT_SCOPE_MULTI_HOST);
  EXPECT_THAT(Hosts(events_[0].alert()), ElementsAre("a", "b"));
}

}  // namespace
}  // namespace netvigil::collector::testing
