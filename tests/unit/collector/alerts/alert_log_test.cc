// The alert log: the line format (golden), quoting that keeps `ip=` out of
// reach of process names, whole-line appends and reopening for logrotate.
// tests/fixtures/alerts/sample.log is this code's output for SampleEvents()
// (checked here, byte for byte) and is what tests/integration/fail2ban_test.py
// feeds to fail2ban-regex with the shipped filter.
#include "collector/alerts/alert_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;

v1::AlertEvent Event(v1::AlertEvent::Type type, int64_t id,
                     const std::string& kind, v1::Severity sev,
                     v1::AlertScope scope, std::vector<std::string> hosts,
                     const std::string& subject, const std::string& summary,
                     const std::string& ip, int64_t at_s) {
  v1::AlertEvent e;
  e.set_type(type);
  e.mutable_at()->set_seconds(at_s);
  v1::Alert* a = e.mutable_alert();
  a->set_id(id);
  a->set_kind(kind);
  a->set_severity(sev);
  a->set_scope(scope);
  for (auto& h : hosts) a->add_hosts(h);
  a->set_subject(subject);
  a->set_summary(summary);
  a->set_remote_address(ip);
  return e;
}

// A log covering every event type, IPv4 and IPv6 addresses, an alert with no
// address, and a process whose name tries to inject an address.
std::vector<v1::AlertEvent> SampleEvents() {
  using E = v1::AlertEvent;
  const int64_t t = 1'700'000'000;
  return {
      Event(E::TYPE_OPENED, 1, "new_inbound", v1::SEVERITY_WARNING,
            v1::ALERT_SCOPE_HOST, {"laptop"},
            "tcp /usr/sbin/sshd :22 <- 203.0.113.66",
            "new peer 203.0.113.66 connected to tcp port 22 (/usr/sbin/sshd) "
            "on laptop",
            "203.0.113.66", t),
      Event(E::TYPE_OPENED, 2, "new_listener", v1::SEVERITY_WARNING,
            v1::ALERT_SCOPE_HOST, {"nas"},
            "tcp 0.0.0.0:8080 /usr/bin/python3.11",
            "new listener tcp 0.0.0.0:8080 (/usr/bin/python3.11) on nas", "",
            t + 5),
      Event(E::TYPE_OPENED, 3, "new_remote", v1::SEVERITY_INFO,
            v1::ALERT_SCOPE_HOST, {"laptop"},
            "tcp /tmp/x ip=192.0.2.1 -> 198.51.100.23:6667",
            "new remote endpoint tcp 198.51.100.23:6667 for /tmp/x "
            "ip=192.0.2.1 \n"
            "2023-11-14T22:13:20Z netvigil[alert]: event=opened id=9 kind=x "
            "severity=info scope=host ip=192.0.2.2 hosts=a",
            "198.51.100.23", t + 10),
      Event(E::TYPE_UPDATED, 1, "new_inbound", v1::SEVERITY_CRITICAL,
            v1::ALERT_SCOPE_MULTI_HOST, {"laptop", "nas"},
            "tcp /usr/sbin/sshd :22 <- 203.0.113.66",
            "new peer 203.0.113.66 connected to tcp port 22 (/usr/sbin/sshd) "
            "on 2 hosts (laptop, nas)",
            "203.0.113.66", t + 60),
      Event(E::TYPE_OPENED, 4, "new_inbound", v1::SEVERITY_WARNING,
            v1::ALERT_SCOPE_HOST, {"nas"},
            "tcp /usr/sbin/sshd :22 <- 2001:db8::7",
            "new peer 2001:db8::7 connected to tcp port 22 (/usr/sbin/sshd) on "
            "nas",
            "2001:db8::7", t + 70),
      Event(E::TYPE_ACKNOWLEDGED, 3, "new_remote", v1::SEVERITY_INFO,
            v1::ALERT_SCOPE_HOST, {"laptop"},
            "tcp /tmp/x ip=192.0.2.1 -> 198.51.100.23:6667", "acknowledged",
            "198.51.100.23", t + 80),
      Event(E::TYPE_OPENED, 5, "path_loss", v1::SEVERITY_WARNING,
            v1::ALERT_SCOPE_UPSTREAM, {"laptop", "nas"}, "path_loss upstream",
            "packet loss upstream, seen from every host (laptop, nas): "
            "198.51.100.7 from 100.64.0.1",
            "", t + 90),
      Event(E::TYPE_RESOLVED, 1, "new_inbound", v1::SEVERITY_CRITICAL,
            v1::ALERT_SCOPE_MULTI_HOST, {"laptop", "nas"},
            "tcp /usr/sbin/sshd :22 <- 203.0.113.66", "gone", "203.0.113.66",
            t + 120),
  };
}

TEST(AlertLogTest, LineFormatIsStable) {
  EXPECT_EQ(FormatAlertLogLine(SampleEvents()[0]),
            "2023-11-14T22:13:20Z netvigil[alert]: event=opened id=1 "
            "kind=new_inbound severity=warning scope=host ip=203.0.113.66 "
            "hosts=laptop subject=\"tcp /usr/sbin/sshd :22 <- 203.0.113.66\" "
            "summary=\"new peer 203.0.113.66 connected to tcp port 22 "
            "(/usr/sbin/sshd) on laptop\"\n");
  EXPECT_EQ(FormatAlertLogLine(SampleEvents()[1]),
            "2023-11-14T22:13:25Z netvigil[alert]: event=opened id=2 "
            "kind=new_listener severity=warning scope=host ip=- hosts=nas "
            "subject=\"tcp 0.0.0.0:8080 /usr/bin/python3.11\" "
            "summary=\"new listener tcp 0.0.0.0:8080 (/usr/bin/python3.11) on "
            "nas\"\n");
}

TEST(AlertLogTest, InjectedTextStaysInsideItsQuotedValue) {
  const std::string line = FormatAlertLogLine(SampleEvents()[2]);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_THAT(line, ::testing::HasSubstr(" ip=198.51.100.23 hosts=laptop "));
  EXPECT_THAT(line, ::testing::HasSubstr("for /tmp/x ip=192.0.2.1 \\n2023"));
  EXPECT_EQ(AlertLogValue("a\"b\\c\td\x01"), "\"a\\\"b\\\\c\\td\\x01\"");
  EXPECT_EQ(AlertLogValue("plain"), "plain");
  EXPECT_EQ(AlertLogValue(""), "\"\"");
}

TEST(AlertLogTest, SampleLogFixtureIsThisCodesOutput) {
  std::string produced;
  for (const auto& e : SampleEvents()) produced += FormatAlertLogLine(e);
  if (std::getenv("NETVIGIL_REGENERATE_FIXTURES")) {
    std::ofstream(netvigil::testing::FixturePath("alerts/sample.log"))
        << produced;
  }
  EXPECT_EQ(netvigil::testing::ReadFixture("alerts/sample.log"), produced);
}

// Alerts whose agent-controlled text (process names, paths, host names)
// holds what would forge a line, drive a terminal or hide text: ESC, CR/LF
// with a whole fake line, bytes FF FE and the text "\xFF\xFE", a bidi
// override, backslashes, NUL, quotes, a very long name. Each must give one
// line with `ip=` in its place; tests/fixtures/alerts/hostile.log is this
// output, fed to fail2ban-regex by tests/integration/fail2ban_test.py.
std::vector<v1::AlertEvent> HostileEvents() {
  using E = v1::AlertEvent;
  const int64_t t = 1'700'000'000;
  const std::string forged =
      "\n2023-11-14T22:13:20Z netvigil[alert]: event=opened id=9 "
      "kind=new_inbound severity=warning scope=host ip=192.0.2.66 hosts=x";
  const std::vector<std::string> names = {
      "/tmp/\x1b]0;owned\x07\x1b[2J" + forged,
      "/tmp/a\r" + forged.substr(1),
      "/tmp/\xFF\xFE",
      "/tmp/\\xFF\\xFE",
      "/tmp/invoice\xE2\x80\xAE"
      "txt.exe",
      std::string("/tmp/nul\0x\" ip=192.0.2.67 \\", 27),
      "/tmp/" + std::string(3000, 'A') + forged,
  };
  std::vector<v1::AlertEvent> out;
  int64_t id = 20;
  for (const std::string& raw : names) {
    // As the agent sends it: bytes in the notation's byte half.
    std::string name = ToValidUtf8(raw);
    ++id;
    out.push_back(Event(
        E::TYPE_OPENED, id, "new_inbound", v1::SEVERITY_WARNING,
        v1::ALERT_SCOPE_HOST, {"host\nip=192.0.2.68"},
        absl::StrCat("tcp ", name, " :22 <- 203.0.113.", id),
        absl::StrCat("new peer 203.0.113.", id, " (", name, ") on laptop"),
        absl::StrCat("203.0.113.", id), t + id));
  }
  return out;
}

TEST(AlertLogTest, HostileTextStaysInItsFieldOnOneLine) {
  for (const v1::AlertEvent& e : HostileEvents()) {
    const std::string line = FormatAlertLogLine(e);
    SCOPED_TRACE(line);
    ASSERT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_FALSE(HasControls(line.substr(0, line.size() - 1)));
    // `ip=` is the seventh field and the agent's address is its value.
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    ASSERT_GT(fields.size(), 8u);
    EXPECT_EQ(fields[7], "ip=" + e.alert().remote_address());
    // The subject reads back to what the agent meant.
    const size_t at = line.find(" subject=\"");
    const size_t end = line.find("\" summary=");
    ASSERT_NE(at, std::string::npos);
    ASSERT_NE(end, std::string::npos);
    absl::StatusOr<std::string> subject =
        Unescape(line.substr(at + 10, end - at - 10));
    ASSERT_THAT(subject, IsOk());
    EXPECT_EQ(*subject, *Unescape(e.alert().subject()));
  }
}

TEST(AlertLogTest, HostileLogFixtureIsThisCodesOutput) {
  std::string produced;
  for (const auto& e : HostileEvents()) produced += FormatAlertLogLine(e);
  if (std::getenv("NETVIGIL_REGENERATE_FIXTURES")) {
    std::ofstream(netvigil::testing::FixturePath("alerts/hostile.log"))
        << produced;
  }
  EXPECT_EQ(netvigil::testing::ReadFixture("alerts/hostile.log"), produced);
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(AlertLogTest, AppendsWholeLinesAndReopensAfterRotation) {
  char dir[] = "/tmp/alertlog.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/alerts.log";
  AlertLog log(path);
  ASSERT_THAT(log.Open(), IsOk());
  auto events = SampleEvents();
  ASSERT_THAT(log.Write(events[0]), IsOk());
  ASSERT_THAT(log.Write(events[1]), IsOk());
  // logrotate moves the file away; until reopened, lines follow the old file.
  const std::string rotated = path + ".1";
  ASSERT_EQ(rename(path.c_str(), rotated.c_str()), 0);
  ASSERT_THAT(log.Write(events[2]), IsOk());
  ASSERT_THAT(log.Reopen(), IsOk());
  ASSERT_THAT(log.Write(events[3]), IsOk());
  EXPECT_EQ(Slurp(rotated), FormatAlertLogLine(events[0]) +
                                FormatAlertLogLine(events[1]) +
                                FormatAlertLogLine(events[2]));
  EXPECT_EQ(Slurp(path), FormatAlertLogLine(events[3]));
  EXPECT_EQ(log.lines_written(), 4u);
  unlink(rotated.c_str());
  unlink(path.c_str());
  rmdir(dir);
}

TEST(AlertLogTest, UnwritablePathIsAClearError) {
  AlertLog log("/nonexistent-dir/alerts.log");
  absl::Status s = log.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("/nonexistent-dir/alerts.log"));
  EXPECT_FALSE(log.Write(SampleEvents()[0]).ok());
  EXPECT_EQ(log.failed_writes(), 1u);
}

TEST(AlertLogTest, FullDiskIsAnErrorNotACrash) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  AlertLog log("/dev/full");
  ASSERT_THAT(log.Open(), IsOk());
  EXPECT_FALSE(log.Write(SampleEvents()[0]).ok());
  EXPECT_EQ(log.failed_writes(), 1u);
}

}  // namespace
}  // namespace netvigil::collector
