// Synthetic results and a ready Analyzer over a fake clock and an in-memory
// store, for the analysis and alerts unit tests. Thread-compatible.
#ifndef NETVIGIL_TESTS_UNIT_COLLECTOR_ANALYSIS_ANALYSIS_TEST_UTIL_H_
#define NETVIGIL_TESTS_UNIT_COLLECTOR_ANALYSIS_ANALYSIS_TEST_UTIL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collector/alerts/memory_alert_store.h"
#include "collector/analysis/analyzer.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace netvigil::collector::testing {

struct Hop {
  std::string address;  // "" = no reply at this TTL
  uint32_t sent = 10;
  uint32_t received = 10;
  double avg_ms = 1;
};

// A path run of `hops`; the last hop is the destination when `reached`.
inline v1::Result PathResult(const std::string& target,
                             const std::vector<Hop>& hops,
                             bool reached = true) {
  v1::Result r;
  v1::PathRun* run = r.mutable_path();
  run->set_target(target);
  run->set_resolved_address(target);
  run->set_count(10);
  for (size_t i = 0; i < hops.size(); ++i) {
    v1::PathHop* h = run->add_hops();
    h->set_ttl(i + 1);
    if (!hops[i].address.empty()) {
      v1::HopAddress* a = h->add_addresses();
      a->set_address(hops[i].address);
      a->set_received(hops[i].received);
    }
    h->set_sent(hops[i].sent);
    h->set_received(hops[i].received);
    h->set_loss_percent(
        hops[i].sent ? 100.0 * (hops[i].sent - hops[i].received) / hops[i].sent
                     : 0);
    h->set_avg_ms(hops[i].avg_ms);
    if (reached && i + 1 == hops.size()) {
      h->set_is_destination(true);
      *run->mutable_destination() = *h;
    }
  }
  run->set_destination_reached(reached);
  return r;
}

struct Sock {
  std::string proto = "tcp";
  std::string state = "LISTEN";
  std::string local = "0.0.0.0";
  uint32_t lport = 0;
  std::string remote = "0.0.0.0";
  uint32_t rport = 0;
  std::string exe = "/usr/sbin/sshd";
  uint32_t pid = 100;
  bool agent_own = false;  // the agent's or its iperf3's
};

inline v1::Result SocketsResult(const std::vector<Sock>& socks) {
  v1::Result r;
  v1::SocketSnapshot* s = r.mutable_sockets();
  for (const Sock& k : socks) {
    v1::SocketEntry* e = s->add_sockets();
    e->set_proto(k.proto == "udp" ? v1::TRANSPORT_UDP : v1::TRANSPORT_TCP);
    e->set_family(k.local.find(':') == std::string::npos ? 4 : 6);
    e->set_state(k.state);
    e->set_local_address(k.local);
    e->set_local_port(k.lport);
    e->set_remote_address(k.remote);
    e->set_remote_port(k.rport);
    e->set_agent_own(k.agent_own);
    v1::ProcessRef* p = e->add_processes();
    p->set_pid(k.pid);
    p->set_exe(k.exe);
    p->set_name(k.exe.substr(k.exe.rfind('/') + 1));
  }
  return r;
}

struct FileUse {
  std::string exe;
  std::string path;
  uint32_t pid = 200;
  bool exe_deleted = false;
};

inline v1::Result FilesResult(const std::vector<FileUse>& uses) {
  v1::Result r;
  v1::FileSnapshot* s = r.mutable_files();
  s->add_watched_dirs("/home");
  for (const FileUse& u : uses) {
    v1::FileEntry* e = s->add_entries();
    e->mutable_process()->set_pid(u.pid);
    e->mutable_process()->set_exe(u.exe);
    e->mutable_process()->set_exe_deleted(u.exe_deleted);
    e->mutable_process()->set_name(u.exe.substr(u.exe.rfind('/') + 1));
    e->set_path(u.path);
    e->set_kind(v1::FILE_ACCESS_FD);
  }
  return r;
}

inline v1::Result SpeedResult(const std::string& client,
                              const std::string& server, double bps,
                              bool external = false) {
  v1::Result r;
  v1::SpeedResult* s = r.mutable_speed();
  s->set_client(client);
  s->set_server(server);
  s->set_external(external);
  s->set_outcome(v1::SPEED_OUTCOME_OK);
  s->mutable_forward()->set_sent_bps(bps);
  s->mutable_forward()->set_received_bps(bps);
  return r;
}

// Options for tests: no learning period, and new things open at once (no
// multi-host hold: the tests of the hold set multi_host_window themselves).
inline AnalysisOptions TestOptions() {
  AnalysisOptions o;
  o.learning_period = absl::ZeroDuration();
  o.multi_host_window = absl::ZeroDuration();
  return o;
}

class AnalyzerTest : public ::testing::Test {
 protected:
  explicit AnalyzerTest(AnalysisOptions o = TestOptions()) : options_(o) {
    Restart();
  }

  // A new Analyzer over the same store, as after a collector restart;
  // events_ then holds only the new Analyzer's events.
  void Restart() {
    events_.clear();
    analyzer_ = std::make_unique<Analyzer>(options_, store_, clock_);
    ASSERT_TRUE(analyzer_->Load().ok());
    analyzer_->AddListener(
        [this](const v1::AlertEvent& e) { events_.push_back(e); });
  }

  void Send(const std::string& agent, v1::Result r) {
    r.set_seq(++seq_[agent]);
    analyzer_->OnResult(agent, r);
  }

  std::vector<v1::Alert> Open() { return analyzer_->Open(); }

  // Events of one type, in order.
  std::vector<v1::AlertEvent> Events(v1::AlertEvent::Type t) const {
    std::vector<v1::AlertEvent> out;
    for (const auto& e : events_) {
      if (e.type() == t) out.push_back(e);
    }
    return out;
  }
  size_t Opened() const { return Events(v1::AlertEvent::TYPE_OPENED).size(); }

  std::vector<std::string> Hosts(const v1::Alert& a) const {
    return std::vector<std::string>(a.hosts().begin(), a.hosts().end());
  }

  AnalysisOptions options_;
  netvigil::testing::FakeClock clock_;
  MemoryAlertStore store_;
  std::unique_ptr<Analyzer> analyzer_;
  std::vector<v1::AlertEvent> events_;
  std::map<std::string, uint64_t> seq_;
};

}  // namespace netvigil::collector::testing

#endif  // NETVIGIL_TESTS_UNIT_COLLECTOR_ANALYSIS_ANALYSIS_TEST_UTIL_H_
