// fuzz_seeds OUT_DIR: writes the seed inputs of validation_fuzz, whose input
// is one serialized v1.AgentMessage. No fixture is one, so the seeds are
// made from the fixtures as the agent would make them: the socket and file
// probes over the recorded /proc tree and inet_diag dumps, the speed probe's
// parser over the recorded iperf3 output, plus a hello, a heartbeat, a path
// run and a gap. Every result is dated just before the harness's "now".
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/socket_probe.h"
#include "agent/probes/speed_probe.h"
#include "google/protobuf/util/time_util.h"
#include "netvigil/v1/agent.pb.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/recorded.h"
#include "tests/testing/fake_proc_reader.h"

namespace netvigil::fuzz {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Before(int seconds) {
  return TimeUtil::SecondsToTimestamp(kNowUnixS - seconds);
}

class Writer {
 public:
  explicit Writer(std::string dir) : dir_(std::move(dir)) {}

  void Write(const std::string& name, const v1::AgentMessage& m) {
    std::ofstream out(absl::StrCat(dir_, "/", name, ".bin"), std::ios::binary);
    out << m.SerializeAsString();
    if (!out) Fail("cannot write seed " + name);
    ++count_;
  }

  void Result(const std::string& name, v1::Result r) {
    r.set_seq(++seq_);
    *r.mutable_produced_at() = Before(60);
    v1::AgentMessage m;
    *m.mutable_result() = std::move(r);
    Write(name, m);
  }

  int count() const { return count_; }

 private:
  std::string dir_;
  uint64_t seq_ = 0;
  int count_ = 0;
};

void Sockets(Writer& w) {
  std::unique_ptr<testing::FakeNetlinkSource> netlink = RecordedNetlink();
  testing::FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  agent::SocketProbe probe(*netlink, proc);
  absl::StatusOr<v1::SocketSnapshot> snap = probe.Collect();
  if (!snap.ok()) Fail("socket probe: " + std::string(snap.status().message()));
  *snap->mutable_taken_at() = Before(61);
  v1::Result r;
  *r.mutable_sockets() = *snap;
  w.Result("sockets", r);
}

void Files(Writer& w) {
  for (const char* tree : {"sockets_and_files", "vanishing"}) {
    testing::FakeProcReader proc(
        ReadFixture(absl::StrCat("proc/", tree, ".txt")));
    agent::FileProbe probe(proc);
    absl::StatusOr<v1::FileSnapshot> snap =
        probe.Collect({"/tmp/nvfix", "/home"});
    if (!snap.ok()) Fail("file probe: " + std::string(snap.status().message()));
    *snap->mutable_taken_at() = Before(61);
    v1::Result r;
    *r.mutable_files() = *snap;
    w.Result(absl::StrCat("files_", tree), r);
  }
}

void Speed(Writer& w) {
  for (const char* run :
       {"tcp_forward", "tcp_reverse", "tcp_bidir", "udp_forward", "udp_loss",
        "udp_bidir", "error_busy", "error_refused"}) {
    absl::StatusOr<v1::SpeedResult> s = agent::ParseIperf3Json(
        ReadFixture(absl::StrCat("iperf3/", run, ".json")));
    if (!s.ok()) Fail("iperf3 fixture " + std::string(run));
    s->set_client("alice-laptop");
    s->set_server("nas");
    *s->mutable_started_at() = Before(75);
    *s->mutable_finished_at() = Before(64);
    v1::Result r;
    *r.mutable_speed() = *s;
    w.Result(absl::StrCat("speed_", run), r);
  }
}

void Path(Writer& w) {
  v1::Result r;
  v1::PathRun& run = *r.mutable_path();
  run.set_target("isp-dns");
  run.set_resolved_address("10.91.4.2");
  run.set_ip_version(4);
  *run.mutable_started_at() = Before(70);
  *run.mutable_finished_at() = Before(61);
  run.set_count(10);
  run.set_max_ttl(30);
  for (uint32_t ttl = 1; ttl <= 3; ++ttl) {
    v1::PathHop& h = *run.add_hops();
    h.set_ttl(ttl);
    v1::HopAddress& a = *h.add_addresses();
    a.set_address(absl::StrCat("10.91.", ttl, ".2"));
    a.set_received(9);
    h.set_sent(10);
    h.set_received(9);
    h.set_loss_percent(10);
    h.set_avg_ms(ttl * 1.5);
    h.set_is_destination(ttl == 3);
  }
  run.mutable_hops(1)->add_errors("host unreachable");
  run.set_destination_reached(true);
  *run.mutable_destination() = run.hops(2);
  run.set_socket_kind(v1::PATH_SOCKET_KIND_RAW);
  w.Result("path", r);
}

void Others(Writer& w) {
  v1::AgentMessage hello;
  v1::Hello& h = *hello.mutable_hello();
  h.set_agent_name("alice-laptop");
  h.set_boot_id("6b1c3f7e-9d0a-4a2e-8f51-0c7d2e9b4a10");
  h.set_version("0.1.0");
  h.add_addresses("192.168.1.20");
  h.add_addresses("fd00::20");
  h.set_hostname("alice-laptop.lan");
  h.set_iperf_port(5201);
  h.set_next_seq(42);
  h.add_probe_kinds(v1::PROBE_KIND_PATH);
  w.Write("hello", hello);

  v1::AgentMessage hb;
  *hb.mutable_heartbeat()->mutable_sent_at() = Before(1);
  hb.mutable_heartbeat()->set_spooled(3);
  w.Write("heartbeat", hb);

  v1::Result r;
  v1::Gap& g = *r.mutable_gap();
  g.set_first_seq(10);
  g.set_last_seq(19);
  g.set_count(10);
  *g.mutable_first_produced_at() = Before(3600);
  *g.mutable_last_produced_at() = Before(3000);
  g.set_reason("spool full");
  w.Result("gap", r);
}

}  // namespace
}  // namespace netvigil::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  netvigil::fuzz::Writer w(argv[1]);
  netvigil::fuzz::Others(w);
  netvigil::fuzz::Path(w);
  netvigil::fuzz::Sockets(w);
  netvigil::fuzz::Files(w);
  netvigil::fuzz::Speed(w);
  std::printf("fuzz_seeds: %d seeds in %s\n", w.count(), argv[1]);
  return 0;
}
