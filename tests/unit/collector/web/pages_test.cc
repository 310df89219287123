// The dashboard's pure parts: escaping, the heat map's classes, the
// resolution names, sessions and the login limit on a fake
// clock, the password file.
#include "collector/web/pages.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "collector/web/web_admin.h"
#include "collector/web/web_auth.h"
#include "collector/web/web_server.h"
#include "common/collector_config.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace netvigil::collector::web {
namespace {

TEST(WebPagesTest, TextEscapesMarkupAndControls) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  // Agent text is first put in netvigil's notation: a newline cannot break
  // a table cell, a bidi override cannot reorder it.
  EXPECT_EQ(Text("a\n<b>"), "a\\n&lt;b&gt;");
  EXPECT_EQ(Text("x\u202Ey"), "x\\u{202E}y");
}

TEST(WebPagesTest, RatioClassBoundaries) {
  EXPECT_EQ(RatioClass(true, false, 0.8), "ok");
  EXPECT_EQ(RatioClass(true, false, 1.7), "ok");
  EXPECT_EQ(RatioClass(true, false, 0.79), "warn");
  EXPECT_EQ(RatioClass(true, false, 0.5), "warn");
  EXPECT_EQ(RatioClass(true, false, 0.49), "bad");
  EXPECT_EQ(RatioClass(true, true, 1.0), "fail");
  EXPECT_EQ(RatioClass(false, false, 1.0), "none");
  EXPECT_EQ(RatioClass(true, false, 0), "none");  // no baseline yet
}

TEST(WebPagesTest, ResolutionNames) {
  // An answer that leaves the field unset holds raw rows only.
  EXPECT_EQ(ResolutionName(v1::PathHistoryResponse().resolution()), "raw");
  EXPECT_EQ(ResolutionName(v1::RESOLUTION_RAW), "raw");
  EXPECT_EQ(ResolutionName(v1::RESOLUTION_HOURLY), "hourly");
  EXPECT_EQ(ResolutionName(v1::RESOLUTION_COARSE), "coarse");
  EXPECT_EQ(ResolutionName(v1::RESOLUTION_MIXED), "mixed");
}

TEST(WebPagesTest, HomeHeatMapCellPerOrderedPairWithItsClass) {
  HomeData d;
  for (const char* n : {"a", "b"}) {
    d.overview.add_hosts()->mutable_agent()->set_name(n);
    d.overview.mutable_speed()->add_hosts(n);
  }
  auto* c = d.overview.mutable_speed()->add_cells();
  c->set_client("a");
  c->set_server("b");
  c->set_bps(40e6);
  c->set_outcome(v1::SPEED_OUTCOME_OK);
  d.baseline_bps[{"a", "b"}] = 100e6;
  const std::string html = RenderHomeLive(d);
  EXPECT_NE(html.find("class=\"cell bad\" data-client=\"a\" data-server=\"b\" "
                      "data-ratio=\"0.400\""),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("class=\"cell none\" data-client=\"b\" "
                      "data-server=\"a\""),
            std::string::npos)
      << html;
}

TEST(WebServerTest, LoopbackListenAddresses) {
  EXPECT_TRUE(IsLoopbackListen("127.0.0.1:8080"));
  EXPECT_TRUE(IsLoopbackListen("127.0.0.2:8080"));
  EXPECT_TRUE(IsLoopbackListen("[::1]:8080"));
  EXPECT_TRUE(IsLoopbackListen("localhost:8080"));
  EXPECT_FALSE(IsLoopbackListen("0.0.0.0:8080"));
  EXPECT_FALSE(IsLoopbackListen("[::]:8080"));
  EXPECT_FALSE(IsLoopbackListen("192.168.1.2:8080"));
  EXPECT_FALSE(IsLoopbackListen("127.0.0.1.example.org:8080"));
}

TEST(WebAuthTest, SessionsExpireWhenIdleAndEnd) {
  testing::FakeClock clock;
  SessionTable t(clock, absl::Minutes(10), 2);
  const std::string a = t.Create();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_TRUE(t.Touch(a));
  clock.Advance(absl::Minutes(9));
  EXPECT_TRUE(t.Touch(a));  // used: the idle time starts again
  clock.Advance(absl::Minutes(9));
  EXPECT_TRUE(t.Touch(a));
  clock.Advance(absl::Minutes(11));
  EXPECT_FALSE(t.Touch(a));
  const std::string b = t.Create();
  EXPECT_NE(a, b);
  EXPECT_FALSE(t.Touch(std::string(64, '0')));
  t.End(b);
  EXPECT_FALSE(t.Touch(b));
  // Past the cap the least recently used session ends.
  const std::string c = t.Create();
  clock.Advance(absl::Seconds(1));
  const std::string d = t.Create();
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(t.Touch(c));
  const std::string e = t.Create();
  EXPECT_TRUE(t.Touch(c));
  EXPECT_FALSE(t.Touch(d));
  EXPECT_TRUE(t.Touch(e));
}

TEST(WebAuthTest, LoginLimiterPerSourceAndWindow) {
  testing::FakeClock clock;
  LoginLimiter l(clock, 3, absl::Minutes(1), 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(l.Wait("10.0.0.1"), absl::ZeroDuration());
    l.Failed("10.0.0.1");
  }
  EXPECT_GT(l.Wait("10.0.0.1"), absl::ZeroDuration());
  EXPECT_EQ(l.Wait("10.0.0.2"), absl::ZeroDuration());
  clock.Advance(absl::Minutes(1));
  EXPECT_EQ(l.Wait("10.0.0.1"), absl::ZeroDuration());
  l.Failed("10.0.0.1");
  l.Succeeded("10.0.0.1");
  EXPECT_EQ(l.Wait("10.0.0.1"), absl::ZeroDuration());
}

TEST(WebAuthTest, PasswordFileHoldsOnlyTheHash) {
  char dir[] = "/tmp/nv-web-auth-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/web-password";
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckWebPassword(path, "whatever1")));
  EXPECT_TRUE(absl::IsInvalidArgument(SetWebPassword(path, "short")));
  EXPECT_TRUE(absl::IsInvalidArgument(SetWebPassword(path, "new\nline pw")));
  ASSERT_TRUE(SetWebPassword(path, "a good password").ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::string stored;
  std::getline(in, stored);
  EXPECT_EQ(stored.rfind("$argon2id$", 0), 0u) << stored;
  EXPECT_EQ(stored.find("a good password"), std::string::npos);
  EXPECT_TRUE(CheckWebPassword(path, "a good password").ok());
  EXPECT_TRUE(
      absl::IsPermissionDenied(CheckWebPassword(path, "a good passwore")));
  unlink(path.c_str());
  rmdir(dir);
}

TEST(WebConfigTest, ListenWebAndWebSection) {
  auto d = ParseCollectorConfig("{}\n", "c.yaml");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->web_listen, "");  // off by default
  EXPECT_EQ(d->web_session_idle, absl::Hours(12));
  EXPECT_EQ(WebPasswordFile(*d), "/var/lib/netvigil/web-password");
  auto c = ParseCollectorConfig(
      "listen:\n  web: \"127.0.0.1:7480\"\nweb:\n  session_idle: 30m\n"
      "  password_file: /etc/netvigil/web.hash\n",
      "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->web_listen, "127.0.0.1:7480");
  EXPECT_EQ(c->web_session_idle, absl::Minutes(30));
  EXPECT_EQ(WebPasswordFile(*c), "/etc/netvigil/web.hash");
  auto bad = ParseCollectorConfig("listen:\n  web: \"localhost\"\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("listen.web"), std::string::npos)
      << bad.status();
  auto clash = ParseCollectorConfig(
      "listen:\n  agents: \"0.0.0.0:7411\"\n  web: \"127.0.0.1:7411\"\n",
      "c.yaml");
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("same port"), std::string::npos)
      << clash.status();
  auto idle = ParseCollectorConfig("web:\n  session_idle: 0s\n", "c.yaml");
  EXPECT_FALSE(idle.ok());
}

// The value of the first attribute `name` in `html` ("" when none).
std::string Attr(const std::string& html, const std::string& name) {
  const std::string key = " " + name + "=\"";
  const size_t at = html.find(key);
  if (at == std::string::npos) return "";
  const size_t from = at + key.size();
  return html.substr(from, html.find('"', from) - from);
}

// A target's name goes into the click's link percent-encoded and into the
// page escaped: a name that is markup stays text.
TEST(WebPagesTest, TimelineRunLinkEncodesTheTarget) {
  HostData d;
  d.host = "a b";
  d.range = "3h";
  d.known = true;
  d.until = absl::FromUnixSeconds(1'800'000'000);
  d.since = d.until - absl::Hours(3);
  HostTarget t;
  t.target = "x\"><script>";
  v1::StoredPathRun* r = t.history.add_runs();
  r->set_seq(7);
  *r->mutable_run()->mutable_started_at() =
      ToProtoTime(d.since + absl::Seconds(90));
  r->mutable_run()->set_destination_reached(true);
  r->mutable_run()->mutable_destination()->set_avg_ms(12.25);
  r->mutable_run()->mutable_destination()->set_best_ms(10);
  r->mutable_run()->mutable_destination()->set_worst_ms(15.5);
  d.targets.push_back(t);
  const std::string html = RenderHost(d);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(Attr(html, "data-run"),
            "/run?host=a%20b&amp;target=x%22%3E%3Cscript%3E&amp;range=3h");
  // One raw point: its start, figures, loss, one run, its seq; no second
  // start (it is the point's own), no aggregate flag.
  EXPECT_EQ(Attr(html, "data-pts"), "90000000,12.2,10,15.5,0,1,7");
  EXPECT_NE(html.find("<path class=\"pts loss0\" d=\"M"), std::string::npos);
}

// A host's timeline from runs read without hops: the destination's
// figures, the route changes it is given, and points linking to /run with
// the linked run's own start, also when points are buckets (more than 500
// runs), where the bucket's time is its first run's, not the linked one's.
TEST(WebPagesTest, HopLessTimelineLinksEachPointToItsRun) {
  HostData d;
  d.host = "alpha";
  d.range = "1d";
  d.known = true;
  d.until = absl::FromUnixSeconds(1'800'000'000);
  d.since = d.until - absl::Hours(24);
  HostTarget t;
  t.target = "gw";
  constexpr int kRuns = 1440;
  for (int i = 0; i < kRuns; ++i) {
    v1::StoredPathRun* r = t.history.add_runs();
    r->set_seq(1000 + i);
    r->set_resolution(v1::RESOLUTION_RAW);
    *r->mutable_run()->mutable_started_at() =
        ToProtoTime(d.since + absl::Seconds(60 * i + 30));
    const bool reached = i != 700;
    r->mutable_run()->set_destination_reached(reached);
    r->mutable_run()->mutable_destination()->set_avg_ms(10);
    r->mutable_run()->mutable_destination()->set_best_ms(8);
    r->mutable_run()->mutable_destination()->set_worst_ms(14);
    r->mutable_run()->mutable_destination()->set_loss_percent(reached ? 0
                                                                      : 100);
  }
  t.route_changes.push_back(d.since + absl::Seconds(60 * 900 + 30));
  d.targets.push_back(t);
  const std::string html = RenderHost(d);
  EXPECT_NE(html.find("data-bucketed=\"1\""), std::string::npos);
  // One data entry per bucket, in the order of the dots drawn (one
  // zero-length segment each, in one path per loss class).
  const std::string pts = Attr(html, "data-pts");
  const std::vector<std::string> entries = absl::StrSplit(pts, ' ');
  EXPECT_EQ(entries.size(), 450u);
  size_t dots = 0;
  for (size_t at = html.find("h0"); at != std::string::npos;
       at = html.find("h0", at + 2)) {
    ++dots;
  }
  EXPECT_EQ(dots, entries.size());
  EXPECT_EQ(Attr(html, "data-t0"), absl::StrCat(absl::ToUnixMicros(d.since)));
  EXPECT_EQ(Attr(html, "data-run"),
            "/run?host=alpha&amp;target=gw&amp;range=1d");
  // The bucket holding run 700 (no answer: loss 100) links to that run, at
  // its own start (the bucket's time is its first run's, 698's), and is
  // drawn in the loss4 path.
  const int64_t at700 =
      absl::ToUnixMicros(d.since + absl::Seconds(60 * 700 + 30));
  const int64_t at698 =
      absl::ToUnixMicros(d.since + absl::Seconds(60 * 698 + 30));
  const int64_t t0 = absl::ToUnixMicros(d.since);
  int found = 0;
  for (const std::string& e : entries) {
    const std::vector<std::string> f = absl::StrSplit(e, ',');
    ASSERT_GE(f.size(), 6u) << e;
    if (f.size() > 6 && f[6] == "1700") {
      ++found;
      EXPECT_EQ(f[0], absl::StrCat(at698 - t0)) << e;
      EXPECT_EQ(f[4], "100") << e;  // the worst loss of its runs
      EXPECT_EQ(f[5], "3") << e;    // runs 698, 699, 700
      ASSERT_EQ(f.size(), 8u) << e;
      EXPECT_EQ(f[7], absl::StrCat(at700 - t0)) << e;
    }
  }
  EXPECT_EQ(found, 1) << pts.substr(0, 500);
  EXPECT_NE(html.find("<path class=\"pts loss4\" d=\"M"), std::string::npos);
  // No element per point: no circle, no link, no title of a point.
  EXPECT_EQ(html.find("<circle"), std::string::npos);
  EXPECT_EQ(html.find("<a href=\"/run"), std::string::npos);
  EXPECT_NE(html.find(absl::StrCat(
                "class=\"route-change\" data-at=\"",
                absl::ToUnixSeconds(d.since + absl::Seconds(60 * 900 + 30)))),
            std::string::npos);
  EXPECT_EQ(html.find("#run"), std::string::npos);  // no hops on this page
}

}  // namespace
}  // namespace netvigil::collector::web
