// Golden output of every CLI table: the renderers are pure, so each table is
// checked byte for byte against tests/fixtures/cli/NAME.txt. To update after
// a deliberate change: NETVIGIL_UPDATE_GOLDEN=1 build/tests/cli_tables_test,
// then review the diff.
#include <cstdlib>
#include <fstream>

#include "collector/cli/commands.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace netvigil::cli {
namespace {

using google::protobuf::util::TimeUtil;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

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
  f->set_key_kind("listener");
  f->set_proto(v1::TRANSPORT_TCP);
  f->set_local_address("0.0.0.0");
  f->set_local_port(22);
  f->set_exe("/usr/sbin/sshd");
  *f->mutable_first_seen() = Ago(absl::Hours(50));
  f = cur.add_facts();
  f->set_key_kind("remote");
  f->set_proto(v1::TRANSPORT_TCP);
  f->set_remote_address("2001:db8::7");
  f->set_remote_port(443);
  f->set_exe("/usr/bin/firefox");
  *f->mutable_first_seen() = Ago(absl::Minutes(2));
  f = cur.add_facts();
  f->set_key_kind("inbound");
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
    run->set_socket_kind("raw");
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

}  // namespace
}  // namespace netvigil::cli
