// Golden output of every CLI view (common/report/query_views.h): the renderers
// are pure, so each table is checked byte for byte against
// tests/fixtures/cli/NAME.txt. To update after a deliberate change:
// NETVIGIL_UPDATE_GOLDEN=1 build/tests/query_views_test, then review the diff.
#include "common/report/query_views.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/report/human_text.h"
#include "common/report/table.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace netvigil::report {
namespace {

using google::protobuf::util::TimeUtil;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

google::protobuf::Timestamp At(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

google::protobuf::Timestamp Ago(absl::Duration d) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kNow - d));
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = testing::FixturePath("cli/" + name + ".txt");
  if (std::getenv("NETVIGIL_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  EXPECT_EQ(actual, testing::ReadFixture("cli/" + name + ".txt"))
      << "golden " << path;
}

v1::SpeedMatrixResponse Matrix() {
  v1::SpeedMatrixResponse m;
  for (const char* h : {"h1", "h2", "h3"}) m.add_hosts(h);
  auto cell = [&](const char* a, const char* b, double bps, v1::SpeedOutcome o,
                  const char* err, absl::Duration ago) {
    auto* c = m.add_cells();
    c->set_client(a);
    c->set_server(b);
    c->set_bps(bps);
    c->set_outcome(o);
    c->set_error(err);
    *c->mutable_at() = Ago(ago);
  };
  cell("h1", "h2", 941.3e6, v1::SPEED_OUTCOME_OK, "", absl::Minutes(3));
  cell("h2", "h1", 48.0e6, v1::SPEED_OUTCOME_OK, "", absl::Minutes(14));
  cell("h1", "h3", 0, v1::SPEED_OUTCOME_FAILED,
       "server busy: the server is busy", absl::Minutes(20));
  cell("h3", "h1", 0, v1::SPEED_OUTCOME_SKIPPED, "agent h3 offline",
       absl::Hours(2));
  m.add_notices("the mesh of 6 tests does not fit the 1m period (3 slots)");
  return m;
}

TEST(CliTablesTest, SpeedMatrix) {
  ExpectGolden("speed_matrix", RenderSpeedMatrix(Matrix(), kNow));
}

TEST(CliTablesTest, Overview) {
  v1::OverviewResponse o;
  auto* h = o.add_hosts();
  h->mutable_agent()->set_name("h1");
  h->mutable_agent()->set_online(true);
  *h->mutable_agent()->mutable_last_seen() = Ago(absl::Seconds(2));
  auto* p = h->add_paths();
  p->set_target("gateway");
  p->set_destination_reached(true);
  p->set_avg_ms(0.42);
  p->set_hop_count(1);
  *p->mutable_at() = Ago(absl::Seconds(30));
  p = h->add_paths();
  p->set_target("internet");
  p->set_destination_reached(true);
  p->set_loss_percent(20);
  p->set_avg_ms(12.34);
  p->set_hop_count(4);
  *p->mutable_at() = Ago(absl::Seconds(30));
  h = o.add_hosts();
  h->mutable_agent()->set_name("h2");
  *h->mutable_agent()->mutable_last_seen() = Ago(absl::Hours(3));
  p = h->add_paths();
  p->set_target("internet");
  p->set_error("name does not resolve: nowhere.example");
  *p->mutable_at() = Ago(absl::Hours(3));
  *o.mutable_speed() = Matrix();
  auto* a = o.add_open_alerts();
  a->set_id(7);
  a->set_severity(v1::SEVERITY_WARNING);
  a->set_scope(v1::ALERT_SCOPE_HOST);
  a->add_hosts("h1");
  a->set_kind("path_loss");
  a->set_summary("20% loss to internet from h1, from hop 1 (198.18.1.1) on");
  *a->mutable_first_seen() = Ago(absl::Minutes(5));
  o.add_notices("the mesh of 6 tests does not fit the 1m period (3 slots)");
  o.add_notices("alerts are not available yet (database starting)");
  ExpectGolden("overview", RenderOverview(o, kNow));
}

TEST(CliTablesTest, SocketsAndChanges) {
  v1::CurrentSocketsResponse cur;
  *cur.mutable_taken_at() = Ago(absl::Seconds(12));
  auto* f = cur.add_facts();
  f->set_key_kind(v1::SOCKET_KEY_KIND_LISTENER);
  f->set_proto(v1::TRANSPORT_TCP);
  f->set_local_address("0.0.0.0");
  f->set_local_port(22);
  f->set_exe("/usr/sbin/sshd");
  *f->mutable_first_seen() = Ago(absl::Hours(50));
  f = cur.add_facts();
  f->set_key_kind(v1::SOCKET_KEY_KIND_REMOTE);
  f->set_proto(v1::TRANSPORT_TCP);
  f->set_remote_address("2001:db8::7");
  f->set_remote_port(443);
  f->set_exe("/usr/bin/firefox");
  *f->mutable_first_seen() = Ago(absl::Minutes(2));
  f = cur.add_facts();
  f->set_key_kind(v1::SOCKET_KEY_KIND_INBOUND);
  f->set_proto(v1::TRANSPORT_TCP);
  f->set_local_port(22);
  f->set_remote_address("198.51.100.9");
  f->set_exe("/usr/sbin/sshd");
  *f->mutable_first_seen() = Ago(absl::Minutes(9));
  ExpectGolden("sockets", RenderSocketFacts(cur, kNow));

  v1::SocketChangesResponse ch;
  for (int i = 0; i < 2; ++i) {
    auto* c = ch.add_changes();
    c->set_change(i == 0 ? "appeared" : "gone");
    *c->mutable_at() = Ago(absl::Minutes(10 - i * 8));
    *c->mutable_fact() = cur.facts(i);
  }
  ExpectGolden("socket_changes", RenderSocketChanges(ch, kNow));
}

TEST(CliTablesTest, Files) {
  v1::FileAccessResponse r;
  auto* f = r.add_facts();
  f->set_exe("/usr/bin/vim");
  f->set_uid(1000);
  f->set_kind(v1::FILE_ACCESS_FD);
  f->set_path("/home/ann/notes.txt");
  f->set_present(true);
  *f->mutable_first_seen() = Ago(absl::Minutes(40));
  f = r.add_facts();
  f->set_exe("/tmp/.x/miner");
  f->set_uid(1000);
  f->set_kind(v1::FILE_ACCESS_MMAP);
  f->set_path("/home/ann/.cache/lib.so");
  f->set_deleted(true);
  f->set_exe_deleted(true);
  *f->mutable_first_seen() = Ago(absl::Hours(6));
  *f->mutable_last_seen() = Ago(absl::Hours(1));
  ExpectGolden("files", RenderFileAccess(r, kNow));
}

TEST(CliTablesTest, SpeedHistory) {
  v1::SpeedHistoryResponse r;
  auto* s = r.add_results();
  s->set_outcome(v1::SPEED_OUTCOME_OK);
  s->mutable_forward()->set_received_bps(936.2e6);
  s->mutable_forward()->set_retransmits(12);
  *s->mutable_started_at() = Ago(absl::Hours(2));
  s = r.add_results();
  s->set_outcome(v1::SPEED_OUTCOME_FAILED);
  s->set_error("connection refused: unable to connect to server");
  *s->mutable_started_at() = Ago(absl::Hours(1));
  ExpectGolden("speed_history", RenderSpeedHistory(r, kNow));
}

TEST(CliTablesTest, PathHistory) {
  v1::PathHistoryResponse r;
  for (int i = 0; i < 2; ++i) {
    auto* s = r.add_runs();
    auto* run = s->mutable_run();
    run->set_target("internet");
    run->set_resolved_address("198.19.0.1");
    *run->mutable_started_at() = Ago(absl::Minutes(2 - i));
    run->set_count(10);
    run->set_interval_s(0.1);
    run->set_max_ttl(30);
    run->set_payload_bytes(56);
    run->set_socket_kind(v1::PATH_SOCKET_KIND_RAW);
    run->set_destination_reached(true);
    for (uint32_t ttl = 1; ttl <= 2; ++ttl) {
      auto* h = run->add_hops();
      h->set_ttl(ttl);
      h->add_addresses()->set_address(ttl == 1 ? "198.18.1.1" : "198.19.0.1");
      h->set_sent(10);
      h->set_received(ttl == 2 && i == 1 ? 8 : 10);
      h->set_loss_percent(ttl == 2 && i == 1 ? 20 : 0);
      h->set_last_ms(0.5 * ttl);
      h->set_avg_ms(0.5 * ttl);
      h->set_best_ms(0.4 * ttl);
      h->set_worst_ms(0.9 * ttl);
      h->set_stdev_ms(0.1);
      h->set_is_destination(ttl == 2);
    }
    *run->mutable_destination() = run->hops(1);
  }
  // The report itself is the agent's FormatPathReport (its own golden test);
  // this checks the history table under it.
  const std::string out = RenderPathHistory(r, kNow);
  ExpectGolden("path_history", out.substr(out.find("\nHISTORY")));
}

TEST(CliTablesTest, PathHistoryAtTwoResolutions) {
  v1::PathHistoryResponse r;
  r.set_resolution(v1::RESOLUTION_MIXED);
  r.set_bucket_seconds(3600);
  *r.mutable_raw_since() = Ago(absl::Hours(24 * 7));
  auto* h = r.add_runs();
  h->set_agent("h1");
  h->mutable_run()->set_target("internet");
  *h->mutable_run()->mutable_started_at() = Ago(absl::Hours(24 * 60));
  h->set_resolution(v1::RESOLUTION_HOURLY);
  auto* a = h->mutable_aggregate();
  a->set_bucket_seconds(3600);
  a->set_runs(60);
  a->set_reached_runs(59);
  a->set_avg_loss_percent(1.5);
  a->set_max_loss_percent(20);
  a->set_median_ms(11.2);
  a->set_spread_ms(2.5);
  a->set_avg_ms(12.0);
  a->set_best_ms(9.1);
  a->set_worst_ms(48.3);
  auto* raw = r.add_runs();
  raw->set_agent("h1");
  raw->set_resolution(v1::RESOLUTION_RAW);
  raw->mutable_run()->set_target("internet");
  *raw->mutable_run()->mutable_started_at() = Ago(absl::Minutes(1));
  raw->mutable_run()->set_destination_reached(true);
  raw->mutable_run()->add_hops()->set_ttl(1);
  raw->mutable_run()->mutable_destination()->set_avg_ms(10.5);
  const std::string out = RenderPathHistory(r, kNow);
  ExpectGolden("path_history_mixed", out.substr(out.find("\nHISTORY")));
  // Aggregates only: no mtr report (there is no raw run to show).
  r.mutable_runs()->RemoveLast();
  r.set_resolution(v1::RESOLUTION_COARSE);
  r.set_bucket_seconds(86400);
  r.mutable_runs(0)->set_resolution(v1::RESOLUTION_COARSE);
  r.mutable_runs(0)->mutable_aggregate()->set_bucket_seconds(86400);
  ExpectGolden("path_history_days", RenderPathHistory(r, kNow));
}

TEST(CliTablesTest, SpeedHistoryAtTwoResolutions) {
  v1::SpeedHistoryResponse r;
  r.set_resolution(v1::RESOLUTION_MIXED);
  r.set_bucket_seconds(3600);
  *r.mutable_raw_since() = Ago(absl::Hours(24 * 7));
  auto* p = r.add_points();
  *p->mutable_at() = Ago(absl::Hours(24 * 30));
  p->set_resolution(v1::RESOLUTION_HOURLY);
  auto* a = p->mutable_aggregate();
  a->set_bucket_seconds(3600);
  a->set_runs(2);
  a->set_ok_runs(1);
  a->set_median_bps(900e6);
  a->set_avg_bps(900e6);
  a->set_min_bps(900e6);
  a->set_max_bps(900e6);
  p = r.add_points();
  *p->mutable_at() = Ago(absl::Hours(2));
  p->set_resolution(v1::RESOLUTION_RAW);
  p->mutable_result()->set_outcome(v1::SPEED_OUTCOME_OK);
  p->mutable_result()->mutable_forward()->set_received_bps(936.2e6);
  *p->mutable_result()->mutable_started_at() = p->at();
  *r.add_results() = p->result();
  ExpectGolden("speed_history_mixed", RenderSpeedHistory(r, kNow));
}

TEST(CliTablesTest, AlertsAndEvents) {
  v1::ListAlertsResponse r;
  auto* a = r.add_alerts();
  a->set_id(3);
  a->set_severity(v1::SEVERITY_CRITICAL);
  a->set_scope(v1::ALERT_SCOPE_MULTI_HOST);
  a->set_kind("new_listener");
  a->add_hosts("h1");
  a->add_hosts("h2");
  a->set_summary(
      "new listener tcp 0.0.0.0:8765 (/usr/bin/python3.11) on h1, h2");
  *a->mutable_first_seen() = Ago(absl::Minutes(8));
  *a->mutable_last_seen() = Ago(absl::Minutes(1));
  a = r.add_alerts();
  a->set_id(2);
  a->set_severity(v1::SEVERITY_WARNING);
  a->set_scope(v1::ALERT_SCOPE_UPSTREAM);
  a->set_kind("path_loss");
  a->add_hosts("h1");
  a->add_hosts("h2");
  a->add_hosts("h3");
  a->set_summary(
      "loss to internet from every host, from hop 2 (198.18.2.2) on");
  *a->mutable_first_seen() = Ago(absl::Hours(3));
  *a->mutable_last_seen() = Ago(absl::Hours(2));
  *a->mutable_resolved_at() = Ago(absl::Hours(2));
  a->set_acknowledged(true);
  ExpectGolden("alerts", RenderAlerts(r, kNow));
  v1::AlertEvent e;
  e.set_type(v1::AlertEvent::TYPE_OPENED);
  *e.mutable_alert() = r.alerts(0);
  ExpectGolden("alert_event", RenderAlertEvent(e, kNow));
  EXPECT_EQ(RenderAlerts(v1::ListAlertsResponse(), kNow), "no alerts\n");
}

// A home of `n` hosts as the collector would describe it: two path targets
// each, one host offline with a path error, a full speed mesh at about
// 940 Mbit/s with one slow pair, one failed and one skipped test, and open
// alerts of each severity.
v1::OverviewResponse Home(int n) {
  static const char* kNames[] = {"router-pi",   "laptop-anna", "nas-basement",
                                 "desktop-ben", "tv-living",   "printer",
                                 "pi-hole",     "laptop-carl", "phone-dock",
                                 "garage-cam",  "office-mac",  "media-server"};
  v1::OverviewResponse o;
  *o.mutable_generated_at() = Ago(absl::ZeroDuration());
  v1::SpeedMatrixResponse* m = o.mutable_speed();
  for (int i = 0; i < n; ++i) {
    const std::string name = kNames[i];
    auto* h = o.add_hosts();
    h->mutable_agent()->set_name(name);
    const bool offline = i == 2;
    h->mutable_agent()->set_online(!offline);
    *h->mutable_agent()->mutable_last_seen() =
        Ago(offline ? absl::Hours(3) : absl::Seconds(i));
    for (const char* target : {"gateway", "internet"}) {
      auto* p = h->add_paths();
      p->set_target(target);
      *p->mutable_at() = Ago(offline ? absl::Hours(3) : absl::Seconds(20 + i));
      if (offline && std::string(target) == "internet") {
        p->set_error(
            "name does not resolve: speedtest.isp.example (temporary failure "
            "in name resolution)");
        continue;
      }
      p->set_destination_reached(true);
      p->set_loss_percent(i == 1 && std::string(target) == "internet" ? 20 : 0);
      p->set_avg_ms(std::string(target) == "gateway" ? 0.4 + 0.01 * i
                                                     : 11.8 + 0.3 * i);
      p->set_hop_count(std::string(target) == "gateway" ? 1 : 4);
    }
    m->add_hosts(name);
  }
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b) continue;
      auto* c = m->add_cells();
      c->set_client(kNames[a]);
      c->set_server(kNames[b]);
      *c->mutable_at() = Ago(absl::Minutes(2 + (a * n + b) % 50));
      c->set_outcome(v1::SPEED_OUTCOME_OK);
      c->set_bps(935e6 + 1e6 * ((a + 2 * b) % 9));
      if (a == 1 && b == 0) c->set_bps(46.8e6);  // the slow pair
      if (a == 0 && b == n - 1) {
        c->set_outcome(v1::SPEED_OUTCOME_FAILED);
        c->set_bps(0);
        c->set_error(
            "server busy: the server is busy running a test. try "
            "again later");
      }
      if (a == 2 && b == 1) {
        c->set_outcome(v1::SPEED_OUTCOME_SKIPPED);
        c->set_bps(0);
        c->set_error(absl::StrCat("agent ", kNames[2], " offline"));
      }
    }
  }
  m->add_notices(
      "mesh did not fit its period (13 slots needed, 12 fit): 12 slots of "
      "1m56.983384057s (max 1 at once), the 23m23.8s left of period 30m0s");
  *o.add_notices() = m->notices(0);
  auto alert = [&](int64_t id, v1::Severity sev, const char* kind,
                   std::vector<std::string> hosts, const std::string& summary,
                   absl::Duration ago) {
    auto* a = o.add_open_alerts();
    a->set_id(id);
    a->set_severity(sev);
    a->set_scope(hosts.size() > 1 ? v1::ALERT_SCOPE_MULTI_HOST
                                  : v1::ALERT_SCOPE_HOST);
    a->set_kind(kind);
    for (auto& h : hosts) a->add_hosts(h);
    a->set_summary(summary);
    *a->mutable_first_seen() = Ago(ago);
    *a->mutable_last_seen() = Ago(absl::Seconds(30));
  };
  alert(4, v1::SEVERITY_INFO, "new_remote", {kNames[0]},
        "new remote endpoint tcp 93.184.216.34:443 for /usr/bin/curl",
        absl::Minutes(40));
  alert(7, v1::SEVERITY_WARNING, "path_loss", {kNames[1]},
        absl::StrCat("20% loss to internet from ", kNames[1],
                     ", from hop 1 (198.18.1.1) on"),
        absl::Minutes(5));
  alert(9, v1::SEVERITY_CRITICAL, "new_listener", {kNames[0], kNames[1]},
        absl::StrCat("new listener tcp 0.0.0.0:8765 (/usr/bin/python3.11) on ",
                     kNames[0], ", ", kNames[1]),
        absl::Minutes(8));
  alert(11, v1::SEVERITY_WARNING, "speed_low", {kNames[1], kNames[0]},
        absl::StrCat("throughput low on ", kNames[1], ">", kNames[0]),
        absl::Minutes(12));
  return o;
}

void ExpectPageWidth(const std::string& text) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    EXPECT_LE(line.size(), kPageWidth) << "line " << n << ": " << line;
  }
}

TEST(CliTablesTest, OverviewOfAHomeFitsAPageAt3And5And12Hosts) {
  for (int n : {3, 5, 12}) {
    SCOPED_TRACE(n);
    const std::string out = RenderOverview(Home(n), kNow);
    ExpectGolden(absl::StrCat("overview_", n, "_hosts"), out);
    ExpectPageWidth(out);
    // Never nanoseconds, never a bare exponent, always an absolute time.
    EXPECT_EQ(out.find("983384057"), std::string::npos);
    EXPECT_EQ(out.find("e+0"), std::string::npos);
    EXPECT_NE(out.find("as of 2027-01-15 08:00:00 UTC"), std::string::npos);
    // The slow pair is marked, with what is usual for it.
    EXPECT_NE(out.find("46.8 Mbit/s"), std::string::npos);
    EXPECT_NE(out.find("under half"), std::string::npos);
    // Open alerts: most severe first, KIND shown.
    const size_t critical = out.find("CRITICAL  new_listener");
    const size_t warning = out.find("WARNING   speed_low");
    const size_t info = out.find("INFO      new_remote");
    EXPECT_NE(out.find("KIND"), std::string::npos);
    ASSERT_NE(critical, std::string::npos);
    ASSERT_NE(warning, std::string::npos);
    ASSERT_NE(info, std::string::npos);
    EXPECT_LT(critical, warning);
    EXPECT_LT(warning, info);
  }
}

TEST(CliTablesTest, AHostWithOpenAlertsIsMarked) {
  const std::string out = RenderOverview(Home(3), kNow);
  // laptop-anna is in three open alerts, the worst critical; the offline
  // nas-basement in none.
  EXPECT_NE(out.find("laptop-anna   online   just now   3 (critical)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("nas-basement  offline  3 h ago    -   "),
            std::string::npos)
      << out;
}

TEST(CliTablesTest, SpeedMatrixOfManyHostsIsAListOfEveryPair) {
  const std::string out = RenderSpeedMatrix(Home(12).speed(), kNow);
  ExpectPageWidth(out);
  // 132 ordered pairs, one line each (some wrap), under a header.
  EXPECT_NE(out.find("FROM "), std::string::npos);
  EXPECT_GE(std::count(out.begin(), out.end(), '\n'), 133);
}

TEST(CliTablesTest, AnOverviewOf200HostsIsQuickAndShort) {
  // The scheduler's benchmark size: 39,800 pairs, none tested yet but one.
  v1::OverviewResponse o;
  v1::SpeedMatrixResponse* m = o.mutable_speed();
  for (int i = 0; i < 200; ++i) m->add_hosts(absl::StrCat("host-", i));
  for (int a = 0; a < 200; ++a) {
    for (int b = 0; b < 200; ++b) {
      if (a == b || (a + b) % 3 == 0) continue;
      auto* c = m->add_cells();
      c->set_client(m->hosts(a));
      c->set_server(m->hosts(b));
      c->set_outcome(v1::SPEED_OUTCOME_OK);
      c->set_bps(a == 7 && b == 9 ? 10e6 : 940e6);
      *c->mutable_at() = Ago(absl::Minutes(3));
    }
  }
  const absl::Time started = absl::Now();
  const std::string out = RenderOverview(o, kNow);
  EXPECT_LT(absl::Now() - started, absl::Seconds(5));
  ExpectPageWidth(out);
  // The slow pair comes first, before the untested ones.
  const size_t slow = out.find("10.0 Mbit/s !");
  ASSERT_NE(slow, std::string::npos) << out;
  EXPECT_LT(slow, out.find("not yet"));
  EXPECT_NE(out.find("more (`netvigil speed matrix` lists them)"),
            std::string::npos);
  EXPECT_LT(std::count(out.begin(), out.end(), '\n'), 40);
}

TEST(AgentsTableTest, Golden) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  v1::ListAgentsResponse resp;
  auto* a = resp.add_agents();
  a->set_name("laptop");
  a->add_addresses("198.18.1.11");
  a->set_version("0.1.0");
  a->set_online(true);
  a->set_clock_offset_ms(7'200'400);  // two hours ahead
  *a->mutable_last_seen() = At(now - absl::Seconds(1));
  auto* b = resp.add_agents();
  b->set_name("nas-basement");
  b->add_addresses("198.18.1.12");
  b->add_addresses("fd4e:7669:6c00:1::12");
  b->set_version("0.1.0");
  b->set_online(false);
  *b->mutable_last_seen() = At(now - absl::Minutes(7));
  EXPECT_EQ(RenderAgents(resp, now),
            "NAME          ADDRESS                           VERSION  STATE    "
            "LAST SEEN  CLOCK\n"
            "laptop        198.18.1.11                       0.1.0    online   "
            "just now   +2h\n"
            "nas-basement  198.18.1.12,fd4e:7669:6c00:1::12  0.1.0    offline  "
            "7 min ago  -\n");
}

TEST(AgentsTableTest, ARevokedAgentSaysSo) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  v1::ListAgentsResponse resp;
  auto* a = resp.add_agents();
  a->set_name("old-pi");
  a->set_version("0.1.0");
  a->set_revoked(true);
  *a->mutable_last_seen() = At(now - absl::Hours(3));
  EXPECT_EQ(RenderAgents(resp, now),
            "NAME    ADDRESS  VERSION  STATE    LAST SEEN  CLOCK\n"
            "old-pi  -        0.1.0    revoked  3 h ago    -\n");
}

TEST(AgentsTableTest, NoAgentsSaysSo) {
  EXPECT_EQ(RenderAgents(v1::ListAgentsResponse(), absl::Now()),
            "no agents have connected yet\n");
}

}  // namespace
}  // namespace netvigil::report
