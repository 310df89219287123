// netvigil-loadgen: N simulated agents streaming realistic results to a
// collector over real gRPC, for the ingest benchmark and the kill tests.
//
// Each simulated agent speaks the agent protocol like netvigil-agent: a
// hello, then numbered results; it keeps every result until the collector
// acknowledges it (its "spool" is memory), reconnects after any failure and
// resends from the acknowledged number. Results: a socket snapshot of
// --sockets entries (listeners and outbound connections) with --churn of
// the connections replaced each time, every 10th result a path run of 10
// hops, every 20th a file snapshot of 40 entries (the mix offset per
// agent, so they are not in step). A replaced connection
// goes to one of the host's usual endpoints from a new ephemeral port, and
// with --new-remote-share somewhere the host never talked to before.
//
// With --plan-start the results follow the default probe plan instead, in
// simulated time (tests/bench/sizing.sh): path runs to two targets and a
// socket snapshot every 60 s, a file snapshot every 5 min, a speed test
// every hour, their timestamps advancing at the plan's rate from
// --plan-start (Unix seconds) while they are sent every --interval seconds
// of real time, until --plan-until. The socket table is a desktop's:
// --sockets connections that each live a while, to the host's usual
// endpoints, plus a connection to an endpoint never seen before every
// --plan-new-remote-s simulated seconds (the adversarial desktop); with
// --plan-pool, a realistic one: that connection goes to an endpoint drawn
// by Zipf popularity from a pool, and only --plan-never-seen-share of them
// somewhere never seen before (README "Sizing" says why).
//
// The report (JSON on stdout, at the end) gives per agent the range of
// sequence numbers produced, so a test can check that every one is in the
// database exactly once; progress goes to stderr.
//
//   netvigil-loadgen --collector 127.0.0.1:7443 --agents 1000 --interval 3
//       --duration 300    (one command line)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/process_setup.h"
#include "common/proto_time.h"
#include "common/tls_client.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/agent.grpc.pb.h"

namespace netvigil::loadgen {
namespace {

using google::protobuf::util::TimeUtil;

struct Options {
  std::string collector;
  int agents = 50;
  std::string prefix = "sim";
  double interval_s = 3;
  int sockets = 300;
  double churn = 0.02;
  double new_remote_share = 0.001;
  double duration_s = 60;
  double drain_timeout_s = 180;
  int window = 256;     // unacknowledged results before production pauses
  int connections = 0;  // TCP connections; 0 = one per 50 agents
  // mTLS: DIR/<agent name>/ holds each agent's client.crt, client.key,
  // ca.crt and server_name; every agent then has a connection of its own
  // (a connection carries one identity).
  std::string tls_dir;
  // Plan mode (0: off): simulated time of the first result, and the end.
  int64_t plan_start = 0;
  int64_t plan_until = 0;
  double plan_new_remote_s = 5;
  // Plan mode's realistic desktop (0: off, every new connection goes to an
  // endpoint never seen before, the adversarial desktop): the new
  // connection every --plan-new-remote-s goes to one of --plan-pool
  // endpoints drawn by Zipf popularity (rank k with weight 1/k^s), except a
  // --plan-never-seen-share of them, which go somewhere never seen before.
  int plan_pool = 0;
  double plan_zipf_s = 1.0;
  double plan_never_seen_share = 0.02;
  // With --plan-pool: the first snapshot also holds a connection to every
  // endpoint of the pool (gone by the next one), standing for the months a
  // real desktop has run before: each has been met once, so the measured
  // day's never-seen endpoints are the steady state's, not a first week's.
  bool plan_pool_learned = false;
};

google::protobuf::Timestamp Now() {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

// What one simulated host looks like: a stable set of listeners and a
// changing set of outbound connections.
class Host {
 public:
  Host(int index, const Options& o) : index_(index), o_(o), rng_(index) {
    // The places this host talks to: a churned connection goes to one of
    // them again from a new ephemeral port (not news); a small share goes
    // somewhere new (news, as on a real host).
    for (int i = 0; i < std::max(1, o_.sockets / 2); ++i) {
      pool_.push_back(NewEndpoint());
    }
    for (int i = 0; i < o_.sockets; ++i) conns_.push_back(NewConn());
  }

  // The next result of the default plan at simulated time `t` (seconds):
  // `kind` 0/1 path to target 0/1, 2 sockets, 3 files, 4 speed.
  v1::Result Planned(uint64_t seq, int64_t t, int kind) {
    v1::Result r;
    r.set_seq(seq);
    sim_now_ = t;
    *r.mutable_produced_at() = TimeUtil::SecondsToTimestamp(t);
    switch (kind) {
      case 0:
      case 1:
        Path(*r.mutable_path(), kind * 10);
        break;
      case 2:
        DesktopSockets(t);
        Sockets(*r.mutable_sockets());
        break;
      case 3:
        Files(*r.mutable_files());
        break;
      default:
        Speed(*r.mutable_speed(), t);
        break;
    }
    return r;
  }

  v1::Result Next(uint64_t seq) {
    v1::Result r;
    r.set_seq(seq);
    *r.mutable_produced_at() = Now();
    // The mix is offset per host: agents are not in step, so the load has
    // no wave of path runs (and a gap in socket entries) every 10 results.
    const uint64_t k = seq + index_;
    if (k % 10 == 0) {
      Path(*r.mutable_path(), k);
    } else if (k % 20 == 5) {
      Files(*r.mutable_files());
    } else {
      Sockets(*r.mutable_sockets());
    }
    return r;
  }

 private:
  struct Conn {
    std::string exe, remote;
    uint32_t rport, lport, pid;
  };

  Conn NewEndpoint() {
    static const char* kExes[] = {
        "/usr/bin/firefox", "/usr/bin/ssh",      "/usr/lib/slack/slack",
        "/usr/bin/curl",    "/usr/sbin/chronyd", "/usr/bin/python3.11"};
    std::uniform_int_distribution<int> exe(0, 5), octet(1, 254),
        port(32768, 60999);
    static const uint32_t kPorts[] = {443, 443, 443, 80, 22, 993, 5222, 8443};
    return Conn{kExes[exe(rng_)],
                absl::StrCat("203.0.", octet(rng_) % 64, ".", octet(rng_)),
                kPorts[octet(rng_) % 8], static_cast<uint32_t>(port(rng_)),
                static_cast<uint32_t>(1000 + exe(rng_) * 7)};
  }

  Conn NewConn() {
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < o_.new_remote_share) pool_.push_back(NewEndpoint());
    Conn c =
        pool_[std::uniform_int_distribution<size_t>(0, pool_.size() - 1)(rng_)];
    c.lport = std::uniform_int_distribution<uint32_t>(32768, 60999)(rng_);
    return c;
  }

  // Plan mode's socket table at simulated time `t`: connections past their
  // life go; brand-new endpoints arrive at their rate (short lives, as a
  // browser's); the table is topped up to --sockets with connections to
  // the host's usual endpoints (longer lives, new ephemeral ports).
  void DesktopSockets(int64_t t) {
    std::uniform_int_distribution<int64_t> short_life(20, 180),
        long_life(60, 3600);
    if (last_snapshot_ == 0) {
      last_snapshot_ = t;
      if (o_.plan_pool_learned) {
        while (until_.size() < conns_.size()) {
          until_.push_back(t + long_life(rng_));
        }
        for (int k = 0; k < o_.plan_pool; ++k) {
          conns_.push_back(PopularEndpoint(k));
          until_.push_back(t + 1);
        }
      }
    }
    std::vector<Conn> kept;
    std::vector<int64_t> kept_until;
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (i < until_.size() && until_[i] <= t) continue;
      kept.push_back(conns_[i]);
      kept_until.push_back(i < until_.size() ? until_[i] : t + long_life(rng_));
    }
    new_remote_credit_ += (t - last_snapshot_) / o_.plan_new_remote_s;
    last_snapshot_ = t;
    std::uniform_real_distribution<double> u(0, 1);
    for (; new_remote_credit_ >= 1; new_remote_credit_ -= 1) {
      if (o_.plan_pool > 0 && u(rng_) >= o_.plan_never_seen_share) {
        kept.push_back(PopularEndpoint(ZipfRank()));
        kept_until.push_back(t + short_life(rng_));
        continue;
      }
      Conn c = NewEndpoint();
      c.remote = absl::StrCat("100.", 64 + fresh_ / 65536 % 64, ".",
                              fresh_ / 256 % 256, ".", fresh_ % 256);
      ++fresh_;
      kept.push_back(c);
      kept_until.push_back(t + short_life(rng_));
    }
    while (static_cast<int>(kept.size()) < o_.sockets) {
      Conn c = pool_[std::uniform_int_distribution<size_t>(
          0, pool_.size() - 1)(rng_)];
      c.lport = std::uniform_int_distribution<uint32_t>(32768, 60999)(rng_);
      kept.push_back(c);
      kept_until.push_back(t + long_life(rng_));
    }
    conns_ = std::move(kept);
    until_ = std::move(kept_until);
  }

  // A rank of --plan-pool drawn with probability proportional to
  // 1/rank^s (0-based here): a few endpoints take most connections, a long
  // tail is met now and then.
  size_t ZipfRank() {
    if (zipf_cdf_.empty()) {
      double sum = 0;
      for (int k = 1; k <= o_.plan_pool; ++k) {
        sum += 1.0 / std::pow(static_cast<double>(k), o_.plan_zipf_s);
        zipf_cdf_.push_back(sum);
      }
    }
    const double x =
        std::uniform_real_distribution<double>(0, zipf_cdf_.back())(rng_);
    return std::min<size_t>(
        std::lower_bound(zipf_cdf_.begin(), zipf_cdf_.end(), x) -
            zipf_cdf_.begin(),
        zipf_cdf_.size() - 1);
  }

  // The endpoint of popularity rank `rank`: the same program, address and
  // port every time (and on every host: they share the internet's popular
  // places), from a new ephemeral port.
  Conn PopularEndpoint(size_t rank) {
    static const char* kExes[] = {
        "/usr/bin/firefox", "/usr/bin/ssh",      "/usr/lib/slack/slack",
        "/usr/bin/curl",    "/usr/sbin/chronyd", "/usr/bin/python3.11"};
    static const uint32_t kPorts[] = {443, 443, 443, 80, 22, 993, 5222, 8443};
    const uint64_t h = rank * 0x9E3779B97F4A7C15ull;
    return Conn{kExes[(h >> 32) % 6],
                absl::StrCat("172.", 16 + rank / 65536 % 16, ".",
                             rank / 256 % 256, ".", rank % 256),
                kPorts[(h >> 40) % 8],
                std::uniform_int_distribution<uint32_t>(32768, 60999)(rng_),
                static_cast<uint32_t>(1000 + (h >> 32) % 6 * 7)};
  }

  void Speed(v1::SpeedResult& s, int64_t t) {
    s.set_client(absl::StrFormat("%s-%04d", o_.prefix, index_));
    s.set_server(absl::StrFormat("%s-%04d", o_.prefix,
                                 (index_ + 1) % std::max(1, o_.agents)));
    s.set_server_address("198.18.0.1");
    s.set_server_port(5201);
    *s.mutable_started_at() = TimeUtil::SecondsToTimestamp(t);
    *s.mutable_finished_at() = TimeUtil::SecondsToTimestamp(t + 10);
    s.set_duration_s(10);
    s.set_outcome(v1::SPEED_OUTCOME_OK);
    std::normal_distribution<double> bps(9.0e8, 2.0e7);
    s.mutable_forward()->set_received_bps(bps(rng_));
    s.mutable_forward()->set_sent_bps(s.forward().received_bps());
    s.mutable_reverse_figures()->set_received_bps(bps(rng_));
    s.mutable_reverse_figures()->set_sent_bps(
        s.reverse_figures().received_bps());
  }

  google::protobuf::Timestamp Stamp() {
    return o_.plan_start > 0 ? TimeUtil::SecondsToTimestamp(sim_now_) : Now();
  }

  void Sockets(v1::SocketSnapshot& s) {
    *s.mutable_taken_at() = Stamp();
    const int replace = o_.plan_start > 0
                            ? 0
                            : static_cast<int>(o_.churn * conns_.size() + 0.5);
    for (int i = 0; i < replace; ++i) {
      conns_[std::uniform_int_distribution<size_t>(
          0, conns_.size() - 1)(rng_)] = NewConn();
    }
    const std::string local =
        absl::StrCat("198.18.", 1 + index_ / 250, ".", 10 + index_ % 240);
    static const std::pair<uint32_t, const char*> kListeners[] = {
        {22, "/usr/sbin/sshd"},
        {631, "/usr/sbin/cupsd"},
        {5353, "/usr/sbin/avahi-daemon"},
        {5201, "/usr/bin/iperf3"}};
    for (const auto& [port, exe] : kListeners) {
      v1::SocketEntry* e = s.add_sockets();
      e->set_proto(port == 5353 ? v1::TRANSPORT_UDP : v1::TRANSPORT_TCP);
      e->set_family(4);
      e->set_state(port == 5353 ? "UNCONN" : "LISTEN");
      e->set_local_address("0.0.0.0");
      e->set_local_port(port);
      e->set_remote_address("0.0.0.0");
      e->set_inode(port * 13);
      auto* p = e->add_processes();
      p->set_pid(port);
      p->set_exe(exe);
      p->set_name(std::string(exe).substr(std::string(exe).rfind('/') + 1));
    }
    for (const Conn& c : conns_) {
      v1::SocketEntry* e = s.add_sockets();
      e->set_proto(v1::TRANSPORT_TCP);
      e->set_family(4);
      e->set_state("ESTAB");
      e->set_local_address(local);
      e->set_local_port(c.lport);
      e->set_remote_address(c.remote);
      e->set_remote_port(c.rport);
      e->set_uid(1000);
      e->set_inode(c.lport * 7 + c.rport);
      auto* p = e->add_processes();
      p->set_pid(c.pid);
      p->set_exe(c.exe);
      p->set_name(c.exe.substr(c.exe.rfind('/') + 1));
    }
    s.set_duration_ms(3.5);
  }

  void Path(v1::PathRun& run, uint64_t seq) {
    run.set_target("target-" + std::to_string(seq / 10 % 5));
    run.set_resolved_address(absl::StrCat("198.19.0.", 1 + seq / 10 % 5));
    run.set_ip_version(4);
    *run.mutable_started_at() = Stamp();
    *run.mutable_finished_at() = Stamp();
    run.set_count(10);
    run.set_interval_s(1);
    run.set_max_ttl(30);
    std::normal_distribution<double> jitter(0, 0.3);
    for (uint32_t ttl = 1; ttl <= 10; ++ttl) {
      v1::PathHop* h = run.add_hops();
      h->set_ttl(ttl);
      auto* a = h->add_addresses();
      a->set_address(absl::StrCat("198.18.", ttl, ".1"));
      h->set_sent(10);
      h->set_received(10);
      const double ms = 1.0 + 2.5 * ttl + jitter(rng_);
      h->set_last_ms(ms);
      h->set_avg_ms(ms);
      h->set_best_ms(ms - 0.2);
      h->set_worst_ms(ms + 0.5);
      h->set_stdev_ms(0.2);
      h->set_is_destination(ttl == 10);
    }
    run.set_destination_reached(true);
    *run.mutable_destination() = run.hops(9);
    run.set_socket_kind(v1::PATH_SOCKET_KIND_RAW);
  }

  void Files(v1::FileSnapshot& f) {
    *f.mutable_taken_at() = Stamp();
    f.add_watched_dirs("/home");
    for (int i = 0; i < 40; ++i) {
      v1::FileEntry* e = f.add_entries();
      e->set_path(absl::StrCat("/home/user", index_ % 3, "/doc", i, ".txt"));
      e->set_kind(i == 0 ? v1::FILE_ACCESS_CWD : v1::FILE_ACCESS_FD);
      e->set_fd(i == 0 ? -1 : i + 3);
      e->set_mode(i == 0 ? "" : "r");
      e->mutable_process()->set_pid(2000 + i % 4);
      e->mutable_process()->set_exe("/usr/bin/vim");
      e->mutable_process()->set_name("vim");
      e->mutable_process()->set_uid(1000);
    }
  }

  const int index_;
  const Options& o_;
  std::mt19937_64 rng_;
  std::vector<Conn> pool_, conns_;
  // Plan mode: each connection's end (simulated seconds), the simulated
  // clock, and brand-new endpoints owed.
  std::vector<int64_t> until_;
  int64_t sim_now_ = 0, last_snapshot_ = 0, fresh_ = 0;
  double new_remote_credit_ = 0;
  std::vector<double> zipf_cdf_;  // plan mode, realistic desktop
};

struct Totals {
  std::atomic<int64_t> produced{0}, sent{0}, acked{0}, socket_entries{0},
      reconnects{0}, failures{0};
  absl::Mutex mu;
  std::vector<double> latency_ms ABSL_GUARDED_BY(mu);
};

class SimAgent {
 public:
  SimAgent(int index, const Options& o, std::shared_ptr<grpc::Channel> ch,
           Totals& totals)
      : index_(index),
        name_(absl::StrFormat("%s-%04d", o.prefix, index)),
        o_(o),
        channel_(ch),
        stub_(v1::Agent::NewStub(ch)),
        host_(index, o),
        totals_(totals) {}

  const std::string& name() const { return name_; }
  uint64_t first_seq() const { return first_seq_; }
  uint64_t last_seq() const { return next_seq_ - 1; }
  bool drained() {
    absl::MutexLock l(&mu_);
    return unacked_.empty();
  }

  // Runs until production is over (`produce_until`) and everything is
  // acknowledged, or `give_up` passes.
  void Run(absl::Time produce_until, absl::Time give_up) {
    // Start spread over one interval, as real agents would be.
    absl::SleepFor(absl::Seconds(o_.interval_s) * (index_ % 997) / 997.0);
    next_due_ = absl::Now();
    absl::Duration backoff = absl::Milliseconds(100);
    while (absl::Now() < give_up) {
      if (Session(produce_until, give_up)) return;
      totals_.reconnects++;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(2));
    }
  }

 private:
  // One stream; true when done.
  bool Session(absl::Time produce_until, absl::Time give_up) {
    // Wait for the connection while polling it, as the agent does. A
    // fail-fast call on a channel nobody polls learns that a connect
    // attempt finished only from gRPC's backup poller, every 5 s: after a
    // collector restart, reconnecting took 5-10 s instead of under one.
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::seconds(2))) {
      totals_.failures++;
      return false;
    }
    grpc::ClientContext ctx;
    auto stream = stub_->Stream(&ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_name(name_);
    hello.mutable_hello()->set_boot_id("loadgen");
    hello.mutable_hello()->set_version("loadgen");
    hello.mutable_hello()->set_hostname(name_);
    hello.mutable_hello()->set_next_seq(next_seq_);
    v1::CollectorMessage in;
    if (!stream->Write(hello) || !stream->Read(&in) || !in.has_welcome()) {
      ctx.TryCancel();
      stream->Finish();
      totals_.failures++;
      return false;
    }
    OnAck(in.welcome().acked_through_seq());
    // Heartbeats on the plan's interval, as a real agent sends them
    // (agent/collector_link.cc): a simulated agent whose window is full
    // waits for acks, and silence that long is a dead agent to the
    // collector.
    absl::Duration heartbeat = absl::Seconds(5);
    if (in.welcome().plan().has_heartbeat_interval()) {
      heartbeat =
          std::max(FromProtoDuration(in.welcome().plan().heartbeat_interval()),
                   absl::Milliseconds(100));
    }
    absl::Time next_heartbeat = absl::Now();
    {
      absl::MutexLock l(&mu_);
      // A database that already has this agent's numbers: go on after them.
      if (next_seq_ <= in.welcome().acked_through_seq()) {
        next_seq_ = in.welcome().acked_through_seq() + 1;
        if (first_seq_ == 0) first_seq_ = next_seq_;
      }
    }
    {
      absl::MutexLock l(&mu_);
      reader_done_ = false;
    }
    std::thread reader([&] {
      v1::CollectorMessage m;
      while (stream->Read(&m)) {
        if (m.has_ack()) OnAck(m.ack().acked_through_seq());
      }
      absl::MutexLock l(&mu_);
      reader_done_ = true;
      ++wakeups_;
    });
    // Results fall due on schedule whether or not a collector is there
    // (a real agent spools them); on each stream everything not yet
    // acknowledged is sent in order, at most `window` ahead of the acks.
    bool ok = true, done = false;
    uint64_t sent_through = 0;
    {
      absl::MutexLock l(&mu_);
      sent_through = acked_through_;
    }
    for (;;) {
      const absl::Time now = absl::Now();
      if (now >= give_up) break;
      uint64_t seen = 0;
      {
        absl::MutexLock l(&mu_);
        if (reader_done_) break;
        seen = wakeups_;
      }
      ProduceDue(std::min(now, produce_until));
      std::vector<std::shared_ptr<const v1::AgentMessage>> to_send;
      {
        absl::MutexLock l(&mu_);
        sent_through = std::max(sent_through, acked_through_);
        for (auto& u : unacked_) {
          if (u.seq <= sent_through) continue;
          if (u.seq > acked_through_ + o_.window) break;
          u.sent = now;
          to_send.push_back(u.message);
          sent_through = u.seq;
        }
      }
      for (const auto& m : to_send) {
        if (!Send(*stream, *m)) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
      if (now >= next_heartbeat) {
        v1::AgentMessage hb;
        *hb.mutable_heartbeat()->mutable_sent_at() = ToProtoTime(now);
        if (!stream->Write(hb)) break;
        next_heartbeat = now + heartbeat;
      }
      if ((now >= produce_until || plan_done_) && drained()) {
        done = true;
        break;
      }
      // Sleep until the next result falls due, or an acknowledgement (it
      // may open the window or finish the drain), or the stream ends: a
      // thousand agents polling would spend the machine the benchmark
      // measures.
      const absl::Time wake =
          std::min(next_heartbeat, now < produce_until && !plan_done_
                                       ? std::min(next_due_, give_up)
                                       : give_up);
      struct Wait {
        SimAgent* agent;
        uint64_t seen;
      } wait{this, seen};
      absl::MutexLock l(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return w->agent->wakeups_ != w->seen;
                                },
                                &wait),
                            wake);
    }
    if (done) {
      stream->WritesDone();
    } else {
      ctx.TryCancel();
    }
    reader.join();
    grpc::Status st = stream->Finish();
    if (!done && !st.ok()) totals_.failures++;
    return done;
  }

  bool Send(
      grpc::ClientReaderWriter<v1::AgentMessage, v1::CollectorMessage>& stream,
      const v1::AgentMessage& m) {
    totals_.sent++;
    return stream.Write(m);
  }

  void OnAck(uint64_t through) {
    const absl::Time now = absl::Now();
    std::vector<double> lat;
    {
      absl::MutexLock l(&mu_);
      acked_through_ = std::max(acked_through_, through);
      ++wakeups_;
      while (!unacked_.empty() && unacked_.front().seq <= through) {
        if (unacked_.front().sent != absl::InfiniteFuture()) {
          lat.push_back(
              absl::ToDoubleMilliseconds(now - unacked_.front().sent));
        }
        unacked_.pop_front();
      }
    }
    totals_.acked += lat.size();
    absl::MutexLock l(&totals_.mu);
    totals_.latency_ms.insert(totals_.latency_ms.end(), lat.begin(), lat.end());
  }

  // Produces every result due by `until`, on its schedule.
  // Plan mode: the next event of the default plan (path to two targets and
  // sockets every 60 s, files every 300 s, speed every 3600 s), offset per
  // agent; false once past --plan-until.
  bool NextPlanned(int64_t& t, int& kind) {
    static constexpr int64_t kEvery[] = {60, 60, 60, 300, 3600};
    if (plan_due_.empty()) {
      for (int k = 0; k < 5; ++k) {
        plan_due_.push_back(o_.plan_start + (index_ * 7 + k * 13) % kEvery[k]);
      }
    }
    kind =
        static_cast<int>(std::min_element(plan_due_.begin(), plan_due_.end()) -
                         plan_due_.begin());
    t = plan_due_[kind];
    if (t >= o_.plan_until) return false;
    plan_due_[kind] += kEvery[kind];
    return true;
  }

 public:
  bool plan_done() const { return plan_done_.load(); }

 private:
  void ProduceDue(absl::Time until) {
    while (next_due_ <= until && !plan_done_) {
      // Built once, sent as it is (again after a reconnect).
      auto m = std::make_shared<v1::AgentMessage>();
      v1::Result& r = *m->mutable_result();
      if (o_.plan_start > 0) {
        int64_t t = 0;
        int kind = 0;
        if (!NextPlanned(t, kind)) {
          plan_done_ = true;
          break;
        }
        r = host_.Planned(next_seq_, t, kind);
      } else {
        r = host_.Next(next_seq_);
        *r.mutable_produced_at() =
            TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(next_due_));
      }
      if (first_seq_ == 0) first_seq_ = next_seq_;
      ++next_seq_;
      totals_.produced++;
      if (r.has_sockets()) totals_.socket_entries += r.sockets().sockets_size();
      {
        absl::MutexLock l(&mu_);
        unacked_.push_back({r.seq(), std::move(m), absl::InfiniteFuture()});
      }
      next_due_ += absl::Seconds(o_.interval_s);
    }
  }

  struct Unacked {
    uint64_t seq;
    std::shared_ptr<const v1::AgentMessage> message;
    absl::Time sent;
  };

  const int index_;
  const std::string name_;
  const Options& o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  Host host_;
  Totals& totals_;
  uint64_t next_seq_ = 1, first_seq_ = 0;  // the Run thread's
  absl::Time next_due_ = absl::InfinitePast();
  std::vector<int64_t> plan_due_;  // plan mode: each kind's next time
  std::atomic<bool> plan_done_{false};
  absl::Mutex mu_;
  uint64_t acked_through_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by every acknowledgement and by the end of a stream: what the
  // sending loop sleeps on.
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Unacked> unacked_ ABSL_GUARDED_BY(mu_);
};

double Pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"netvigil-loadgen: simulated agents for ingest tests"};
  app.add_option("--collector", o.collector, "host:port")->required();
  app.add_option("--agents", o.agents)->check(CLI::Range(1, 20000));
  app.add_option("--prefix", o.prefix, "agent names are PREFIX-NNNN");
  app.add_option("--interval", o.interval_s,
                 "seconds between one agent's results")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--sockets", o.sockets, "entries per socket snapshot")
      ->check(CLI::Range(1, 100000));
  app.add_option("--churn", o.churn,
                 "share of connections replaced per "
                 "snapshot")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--new-remote-share", o.new_remote_share,
                 "share of replaced connections that go somewhere new")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--duration", o.duration_s, "seconds of production")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "seconds to wait for the last acknowledgements");
  app.add_option("--window", o.window, "unacknowledged results per agent");
  app.add_option("--connections", o.connections,
                 "TCP connections (default one per 50 agents)");
  app.add_option("--tls-dir", o.tls_dir,
                 "mTLS with DIR/PREFIX-NNNN/{client.crt,client.key,ca.crt,"
                 "server_name} (netvigil-collector pki issue ... --record)");
  app.add_option("--plan-start", o.plan_start,
                 "plan mode: simulated Unix time of the first result");
  app.add_option("--plan-until", o.plan_until,
                 "plan mode: simulated Unix time to stop at");
  app.add_option("--plan-new-remote-s", o.plan_new_remote_s,
                 "plan mode: simulated seconds between brand-new endpoints")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--plan-pool", o.plan_pool,
                 "plan mode: endpoints the new connections are drawn from by"
                 " Zipf popularity (0: each one never seen before)")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--plan-zipf-s", o.plan_zipf_s,
                 "plan mode: the Zipf exponent of --plan-pool")
      ->check(CLI::Range(0.0, 5.0));
  app.add_option("--plan-never-seen-share", o.plan_never_seen_share,
                 "plan mode with --plan-pool: share of new connections that"
                 " go somewhere never seen before")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag(
      "--plan-pool-learned", o.plan_pool_learned,
      "plan mode with --plan-pool: the first snapshot meets every"
      " endpoint of the pool once (a desktop that has run for months)");
  CLI11_PARSE(app, argc, argv);

  const int nconn = !o.tls_dir.empty()  ? o.agents
                    : o.connections > 0 ? o.connections
                                        : (o.agents + 49) / 50;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < nconn; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("netvigil.loadgen.channel", i);  // a connection of its own
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    if (o.tls_dir.empty()) {
      channels.push_back(grpc::CreateCustomChannel(
          o.collector, grpc::InsecureChannelCredentials(), args));
      continue;
    }
    const std::string dir =
        absl::StrFormat("%s/%s-%04d", o.tls_dir, o.prefix, i);
    absl::StatusOr<ClientTls> tls = LoadClientTls(dir);
    if (!tls.ok()) {
      std::fprintf(stderr, "loadgen: %s\n",
                   std::string(tls.status().message()).c_str());
      return 2;
    }
    PinServerName(*tls, args);
    channels.push_back(
        grpc::CreateCustomChannel(o.collector, ClientCredentials(*tls), args));
  }
  Totals totals;
  std::vector<std::unique_ptr<SimAgent>> agents;
  for (int i = 0; i < o.agents; ++i) {
    agents.push_back(
        std::make_unique<SimAgent>(i, o, channels[i % nconn], totals));
  }
  const absl::Time start = absl::Now();
  const absl::Time produce_until = start + absl::Seconds(o.duration_s);
  const absl::Time give_up = produce_until + absl::Seconds(o.drain_timeout_s);
  std::vector<std::thread> threads;
  for (auto& a : agents) {
    threads.emplace_back([&, p = a.get()] { p->Run(produce_until, give_up); });
  }
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    int64_t last = 0;
    absl::Time t = absl::Now();
    while (!finished) {
      for (int i = 0; i < 100 && !finished; ++i)
        absl::SleepFor(absl::Milliseconds(100));
      const int64_t acked = totals.acked.load();
      const absl::Time now = absl::Now();
      std::fprintf(stderr,
                   "loadgen t=%.0fs produced=%ld acked=%ld acked_per_s=%.0f "
                   "reconnects=%ld\n",
                   absl::ToDoubleSeconds(now - start),
                   static_cast<long>(totals.produced.load()),
                   static_cast<long>(acked),
                   (acked - last) / absl::ToDoubleSeconds(now - t),
                   static_cast<long>(totals.reconnects.load()));
      last = acked;
      t = now;
    }
  });
  for (auto& t : threads) t.join();
  finished = true;
  progress.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);

  bool all_drained = true;
  std::string per_agent;
  for (auto& a : agents) {
    all_drained = all_drained && a->drained();
    absl::StrAppend(
        &per_agent, per_agent.empty() ? "" : ",\n    ",
        absl::StrFormat(R"({"name": "%s", "first_seq": %d, "last_seq": %d})",
                        a->name(), a->first_seq(), a->last_seq()));
  }
  std::vector<double> lat;
  {
    absl::MutexLock l(&totals.mu);
    lat = totals.latency_ms;
  }
  const double produce_s = std::min(elapsed, o.duration_s);
  std::printf(
      "{\n  \"agents\": %d,\n  \"elapsed_s\": %.1f,\n  \"produced\": %ld,\n"
      "  \"acked\": %ld,\n  \"sent\": %ld,\n  \"socket_entries\": %ld,\n"
      "  \"results_per_s\": %.1f,\n  \"socket_entries_per_s\": %.1f,\n"
      "  \"send_to_ack_p50_ms\": %.1f,\n  \"send_to_ack_p99_ms\": %.1f,\n"
      "  \"send_to_ack_max_ms\": %.1f,\n  \"reconnects\": %ld,\n"
      "  \"all_acked\": %s,\n  \"per_agent\": [\n    %s\n  ]\n}\n",
      o.agents, elapsed, static_cast<long>(totals.produced.load()),
      static_cast<long>(totals.acked.load()),
      static_cast<long>(totals.sent.load()),
      static_cast<long>(totals.socket_entries.load()),
      produce_s > 0 ? totals.produced.load() / produce_s : 0.0,
      produce_s > 0 ? totals.socket_entries.load() / produce_s : 0.0,
      Pct(lat, 0.5), Pct(lat, 0.99),
      lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()),
      static_cast<long>(totals.reconnects.load()),
      all_drained ? "true" : "false", per_agent.c_str());
  return all_drained ? 0 : 1;
}

}  // namespace
}  // namespace netvigil::loadgen

int main(int argc, char** argv) {
  netvigil::SetUpProcess();
  return netvigil::loadgen::Main(argc, argv);
}
