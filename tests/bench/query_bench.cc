// The Query service on a month of history: 30 days of one-minute path runs
// for 10 hosts x 5 targets x 10 hops (2,160,000 runs, each with its
// netvigil.v1.Result payload as the agent sends it) and the hourly speed mesh
// (90 ordered pairs plus one external target per host), seeded into a private
// PostgreSQL built by the collector's own migrations. Then PathHistory (one
// host and target, 24 h, every run and hop) and Overview are timed through
// the real Query service over gRPC on a UNIX socket, as the CLI calls them,
// and the store calls they make are timed on their own. Prints p50/p99 and
// the row counts.
//
// cpu= is this process's CPU time per call (the client and the service; the
// PostgreSQL backend's is not in it): unlike wall time it hardly moves with
// the machine's load.
//
// Usage: query_bench [DAYS] [ITERATIONS]   (defaults 30 and 300; run as root
// or as a user that can start PostgreSQL: see deploy/pgcluster.sh)
//
// Seeding uses binary COPY through libpq: the store's own INSERT path would
// take hours for 2 M runs, and what is measured here is the reading.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/ingest/command_broker.h"
#include "collector/ingest/session_registry.h"
#include "collector/query/query_service.h"
#include "collector/store/pg_store.h"
#include "common/clock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "netvigil/v1/query.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "tests/testing/pg_cluster.h"

namespace {

namespace v1 = netvigil::v1;
using google::protobuf::util::TimeUtil;

constexpr int kHosts = 10;
constexpr int kTargets = 5;
constexpr int kHops = 10;
constexpr int kSpeedSlotS = 20;  // the scheduler's default slot
const char* const kTargetNames[kTargets] = {"1.1.1.1", "9.9.9.9", "gateway",
                                            "nas.lan", "example.org"};
const char* const kTargetAddresses[kTargets] = {
    "1.1.1.1", "9.9.9.9", "192.168.1.1", "192.168.1.20", "93.184.215.14"};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "query_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string HostName(int i) {
  return absl::StrCat("host", i < 10 ? "0" : "", i);
}

// A cheap deterministic generator, so every run seeds the same history.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
};

google::protobuf::Timestamp Ts(int64_t us) {
  return TimeUtil::MicrosecondsToTimestamp(us);
}

// The hops of one run: home router, ISP access, a few carrier routers, then
// the destination (fewer for LAN targets, where the router is the last hop
// before the destination). Figures as mtr reports them for 10 rounds.
v1::Result PathResult(uint64_t seq, int target, int64_t started_us, Rng& rng) {
  v1::Result r;
  r.set_seq(seq);
  v1::PathRun* run = r.mutable_path();
  run->set_target(kTargetNames[target]);
  run->set_resolved_address(kTargetAddresses[target]);
  run->set_ip_version(4);
  *run->mutable_started_at() = Ts(started_us);
  *run->mutable_finished_at() = Ts(started_us + 10'000'000);
  *r.mutable_produced_at() = run->finished_at();
  run->set_count(10);
  run->set_interval_s(1.0);
  run->set_max_ttl(30);
  run->set_payload_bytes(64);
  run->set_socket_kind(v1::PATH_SOCKET_KIND_RAW);
  // One run in 200 sees some loss at the destination, one in 2000 fails.
  const double roll = rng.Uniform();
  const bool reached = roll >= 0.0005;
  const uint32_t dest_received = roll < 0.005 ? 7 + rng.Next() % 3 : 10;
  double base_ms = 0.4;
  for (int ttl = 1; ttl <= kHops; ++ttl) {
    v1::PathHop* h = run->add_hops();
    h->set_ttl(ttl);
    const bool last = ttl == kHops;
    v1::HopAddress* a = h->add_addresses();
    a->set_address(last ? kTargetAddresses[target]
                   : ttl == 1
                       ? "192.168.1.1"
                       : absl::StrCat("100.", 64 + target, ".", ttl, ".1"));
    // Middle routers rate-limit their time-exceeded replies now and then.
    uint32_t received = 10;
    if (last) {
      received = reached ? dest_received : 0;
    } else if (ttl > 2 && rng.Uniform() < 0.05) {
      received = 8 + rng.Next() % 2;
    }
    a->set_received(received);
    h->set_sent(10);
    h->set_received(received);
    h->set_loss_percent(100.0 * (10 - received) / 10.0);
    base_ms += ttl == 2 ? 6.0 : 1.5 * rng.Uniform();
    const double jitter = 0.5 + rng.Uniform();
    if (received > 0) {
      h->set_best_ms(base_ms);
      h->set_avg_ms(base_ms + jitter / 2);
      h->set_last_ms(base_ms + jitter * rng.Uniform());
      h->set_worst_ms(base_ms + jitter * 2);
      h->set_stdev_ms(jitter / 3);
    }
    h->set_is_destination(last && reached);
  }
  run->set_destination_reached(reached);
  *run->mutable_destination() = run->hops(kHops - 1);
  return r;
}

v1::Result SpeedResult(uint64_t seq, const std::string& client,
                       const std::string& server, bool external,
                       int64_t started_us, Rng& rng) {
  v1::Result r;
  r.set_seq(seq);
  v1::SpeedResult* s = r.mutable_speed();
  s->set_client(client);
  s->set_server(server);
  s->set_server_address(external ? "203.0.113.5" : "192.168.1.50");
  s->set_server_port(5201);
  s->set_external(external);
  s->set_bidirectional(true);
  *s->mutable_started_at() = Ts(started_us);
  *s->mutable_finished_at() = Ts(started_us + 10'000'000);
  *r.mutable_produced_at() = s->finished_at();
  s->set_duration_s(10);
  s->set_outcome(v1::SPEED_OUTCOME_OK);
  s->set_schedule_id(absl::StrCat("mesh-", started_us / 3'600'000'000));
  const double bps = (external ? 95e6 : 940e6) * (0.85 + 0.15 * rng.Uniform());
  for (v1::SpeedFigures* f :
       {s->mutable_forward(), s->mutable_reverse_figures()}) {
    f->set_sent_bps(bps);
    f->set_received_bps(bps * 0.999);
    f->set_bytes_sent(static_cast<uint64_t>(bps * 10 / 8));
    f->set_bytes_received(static_cast<uint64_t>(bps * 10 / 8 * 0.999));
    f->set_retransmits(rng.Next() % 40);
  }
  return r;
}

// PostgreSQL's binary COPY format, written by hand: a header, rows of
// (length, bytes) fields in network order, a trailer.
class CopyRows {
 public:
  void Begin(int16_t fields) { Put16(fields); }
  void Int64(int64_t v) {
    Put32(8);
    PutBE(static_cast<uint64_t>(v), 8);
  }
  void Int32(int32_t v) {
    Put32(4);
    PutBE(static_cast<uint32_t>(v), 4);
  }
  void Int16(int16_t v) {
    Put32(2);
    PutBE(static_cast<uint16_t>(v), 2);
  }
  void Bool(bool v) {
    Put32(1);
    buf_.push_back(v ? 1 : 0);
  }
  void Double(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    Put32(8);
    PutBE(bits, 8);
  }
  void Bytes(const std::string& v) {
    Put32(static_cast<int32_t>(v.size()));
    buf_ += v;
  }
  // timestamptz: microseconds since 2000-01-01 UTC.
  void Time(int64_t unix_us) { Int64(unix_us - 946'684'800'000'000); }

  std::string& buf() { return buf_; }
  void Put16(int16_t v) { PutBE(static_cast<uint16_t>(v), 2); }
  void Put32(int32_t v) { PutBE(static_cast<uint32_t>(v), 4); }

 private:
  void PutBE(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) buf_.push_back(char(v >> (8 * i)));
  }
  std::string buf_;
};

// One COPY ... FROM STDIN (FORMAT binary) on its own connection.
class CopyIn {
 public:
  CopyIn(const std::string& dsn, const std::string& table_and_columns)
      : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) Die(PQerrorMessage(conn_));
    Exec("SET synchronous_commit = off");
    PGresult* r = PQexec(conn_, absl::StrCat("COPY ", table_and_columns,
                                             " FROM STDIN (FORMAT binary)")
                                    .c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) Die(PQerrorMessage(conn_));
    PQclear(r);
    rows_.buf().append("PGCOPY\n\xff\r\n\0", 11);
    rows_.Put32(0);  // flags
    rows_.Put32(0);  // header extension length
  }
  ~CopyIn() { PQfinish(conn_); }

  CopyRows& rows() { return rows_; }
  void FlushIfBig() {
    if (rows_.buf().size() >= (4 << 20)) Flush();
  }
  void End() {
    rows_.Put16(-1);
    Flush();
    if (PQputCopyEnd(conn_, nullptr) != 1) Die(PQerrorMessage(conn_));
    PGresult* r = PQgetResult(conn_);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(PQerrorMessage(conn_));
    PQclear(r);
  }

 private:
  void Exec(const char* sql) {
    PGresult* r = PQexec(conn_, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die(PQerrorMessage(conn_));
    PQclear(r);
  }
  void Flush() {
    std::string& b = rows_.buf();
    if (PQputCopyData(conn_, b.data(), static_cast<int>(b.size())) != 1) {
      Die(PQerrorMessage(conn_));
    }
    b.clear();
  }
  PGconn* conn_;
  CopyRows rows_;
};

struct SpeedSlot {
  int64_t start_us;
  std::string server;
  bool external;
};

// Every test `client` runs as the scheduler would place them: each hour,
// 90 LAN pairs and 10 external tests in 20 s slots, the order rotated by
// hour so no pair always runs at the same minute.
std::vector<SpeedSlot> SpeedSlotsOf(int client, int64_t base_us, int hours) {
  constexpr int kTests = kHosts * (kHosts - 1) + kHosts;
  std::vector<SpeedSlot> out;
  for (int h = 0; h < hours; ++h) {
    for (int k = 0; k < kTests; ++k) {
      int c, s = -1;
      if (k < kHosts * (kHosts - 1)) {
        c = k / (kHosts - 1);
        s = k % (kHosts - 1);
        if (s >= c) ++s;
      } else {
        c = k - kHosts * (kHosts - 1);
      }
      if (c != client) continue;
      const int slot = (k + h * 7) % kTests;
      out.push_back(
          {base_us + (int64_t{h} * 3600 + slot * kSpeedSlotS) * 1'000'000,
           s < 0 ? "iperf.example.net" : HostName(s), s < 0});
    }
  }
  std::sort(out.begin(), out.end(), [](const SpeedSlot& a, const SpeedSlot& b) {
    return a.start_us < b.start_us;
  });
  return out;
}

struct SeedCounts {
  int64_t path_runs = 0;
  int64_t speed_results = 0;
  int64_t payload_bytes = 0;
  int64_t last_seq[kHosts] = {};
};

// Seeds the hosts h with h % workers == worker, in time order per host so
// sequence numbers rise with time as an agent's do.
void SeedWorker(const std::string& dsn, const std::vector<int64_t>& ids,
                int worker, int workers, int64_t base_us, int days,
                SeedCounts* counts) {
  CopyIn results(dsn,
                 "results (agent_id, seq, kind, produced_at, received_at,"
                 " command_id, payload)");
  CopyIn paths(dsn,
               "path_runs (agent_id, seq, target, resolved_address,"
               " started_at, destination_reached, loss_percent, avg_ms,"
               " best_ms, worst_ms, hop_count, error)");
  CopyIn speeds(dsn,
                "speed_results (agent_id, seq, client, server, external,"
                " started_at, finished_at, outcome, error, forward_bps,"
                " reverse_bps, retransmits, schedule_id)");
  std::string bytes;
  for (int host = worker; host < kHosts; host += workers) {
    Rng rng{0x9e3779b97f4a7c15ULL * (host + 1)};
    const int64_t id = ids[host];
    const std::string name = HostName(host);
    const std::vector<SpeedSlot> slots = SpeedSlotsOf(host, base_us, days * 24);
    size_t next_slot = 0;
    int64_t seq = 0;
    auto add_result = [&](const v1::Result& r, const char* kind) {
      r.SerializeToString(&bytes);
      counts->payload_bytes += static_cast<int64_t>(bytes.size());
      const int64_t produced =
          TimeUtil::TimestampToMicroseconds(r.produced_at());
      CopyRows& w = results.rows();
      w.Begin(7);
      w.Int64(id);
      w.Int64(static_cast<int64_t>(r.seq()));
      w.Bytes(kind);
      w.Time(produced);
      w.Time(produced + 40'000);
      w.Bytes("");
      w.Bytes(bytes);
      results.FlushIfBig();
    };
    for (int64_t minute = 0; minute < int64_t{days} * 1440; ++minute) {
      const int64_t minute_us = base_us + minute * 60'000'000;
      for (int t = 0; t < kTargets; ++t) {
        // The agent staggers its targets a little within the minute.
        const int64_t started = minute_us + t * 2'000'000;
        v1::Result r = PathResult(++seq, t, started, rng);
        add_result(r, "path");
        const v1::PathRun& run = r.path();
        const v1::PathHop& d = run.destination();
        CopyRows& w = paths.rows();
        w.Begin(12);
        w.Int64(id);
        w.Int64(seq);
        w.Bytes(run.target());
        w.Bytes(run.resolved_address());
        w.Time(started);
        w.Bool(run.destination_reached());
        w.Double(run.destination_reached() ? d.loss_percent() : 100.0);
        w.Double(d.avg_ms());
        w.Double(d.best_ms());
        w.Double(d.worst_ms());
        w.Int32(run.hops_size());
        w.Bytes(run.error());
        paths.FlushIfBig();
        ++counts->path_runs;
      }
      while (next_slot < slots.size() &&
             slots[next_slot].start_us < minute_us + 60'000'000) {
        const SpeedSlot& sl = slots[next_slot++];
        v1::Result r =
            SpeedResult(++seq, name, sl.server, sl.external, sl.start_us, rng);
        add_result(r, "speed");
        const v1::SpeedResult& s = r.speed();
        CopyRows& w = speeds.rows();
        w.Begin(13);
        w.Int64(id);
        w.Int64(seq);
        w.Bytes(s.client());
        w.Bytes(s.server());
        w.Bool(s.external());
        w.Time(sl.start_us);
        w.Time(sl.start_us + 10'000'000);
        w.Int16(static_cast<int16_t>(s.outcome()));
        w.Bytes(s.error());
        w.Double(s.forward().received_bps());
        w.Double(s.reverse_figures().received_bps());
        w.Int64(static_cast<int64_t>(s.forward().retransmits() +
                                     s.reverse_figures().retransmits()));
        w.Bytes(s.schedule_id());
        speeds.FlushIfBig();
        ++counts->speed_results;
      }
    }
    counts->last_seq[host] = seq;
  }
  results.End();
  paths.End();
  speeds.End();
}

void Exec(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) Die(PQerrorMessage(c));
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) Die(PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

std::string Scalar(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) Die(PQerrorMessage(c));
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) Die(PQerrorMessage(c));
  std::string out = PQgetvalue(r, 0, 0);
  PQclear(r);
  PQfinish(c);
  return out;
}

// The 1-minute load average: the figures are wall times on a shared
// machine, so they are printed beside the load they were taken under.
std::string LoadAverage() {
  char buf[64] = {};
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
  std::fclose(f);
  if (!ok) return "?";
  return std::string(buf, std::strcspn(buf, " "));
}

struct Stats {
  double p50, p99, max;
  double cpu_ms;  // this process's CPU time per call (client and service)
};

double ProcessCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Stats Percentiles(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const size_t i99 = std::max<size_t>(1, (n * 99 + 99) / 100) - 1;
  return {ms[n / 2], ms[i99], ms.back(), 0};
}

template <typename Fn>
Stats Time(int warmup, int iterations, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn(i);
  std::vector<double> ms;
  const double cpu0 = ProcessCpuMs();
  for (int i = 0; i < iterations; ++i) {
    const absl::Time t0 = absl::Now();
    fn(i);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  Stats s = Percentiles(std::move(ms));
  s.cpu_ms = (ProcessCpuMs() - cpu0) / iterations;
  return s;
}

void Report(const char* name, const Stats& s, const std::string& rows) {
  std::printf(
      "%-30s p50=%7.2f ms  p99=%7.2f ms  max=%7.2f ms  cpu=%6.2f ms  %s\n",
      name, s.p50, s.p99, s.max, s.cpu_ms, rows.c_str());
}

// Seeds `days` of history ending now and prints what it wrote.
void Seed(const std::string& dsn, netvigil::collector::PgStore& store,
          int days) {
  // Fewer checkpoints while 3 GB are written; reads are not affected.
  Exec(dsn, "ALTER SYSTEM SET max_wal_size = '8GB'");
  Exec(dsn, "SELECT pg_reload_conf()");

  // Agents come in the way they do in the collector: connected sessions.
  const absl::Time now = absl::Now();
  std::vector<int64_t> ids;
  for (int h = 0; h < kHosts; ++h) {
    v1::Hello hello;
    hello.set_agent_name(HostName(h));
    hello.set_hostname(HostName(h));
    hello.add_addresses(absl::StrCat("192.168.1.", 50 + h));
    hello.set_version("bench");
    auto r = store.AgentConnected(hello, absl::StrCat("bench-session-", h),
                                  now - absl::Hours(24 * days));
    if (!r.ok()) Die(r.status().ToString());
    ids.push_back(std::stoll(
        Scalar(dsn, absl::StrCat("SELECT id FROM agents WHERE name = '",
                                 HostName(h), "'"))));
  }

  // The month ends at the last whole minute before now.
  const int64_t end_us = absl::ToUnixSeconds(now) / 60 * 60 * 1'000'000;
  const int64_t base_us = end_us - int64_t{days} * 86'400'000'000;
  std::printf(
      "seeding %d days: %d hosts x %d targets x %d hops, one run a "
      "minute, and the hourly speed mesh\n",
      days, kHosts, kTargets, kHops);
  std::fflush(stdout);
  const absl::Time seed0 = absl::Now();
  constexpr int kWorkers = 2;
  SeedCounts counts[kWorkers];
  {
    std::vector<std::thread> threads;
    for (int w = 0; w < kWorkers; ++w) {
      threads.emplace_back(SeedWorker, dsn, ids, w, kWorkers, base_us, days,
                           &counts[w]);
    }
    for (auto& t : threads) t.join();
  }
  const absl::Duration copy_time = absl::Now() - seed0;
  // What the store keeps beside each committed result: the agent's acked
  // sequence number and its latest result of each kind.
  for (int h = 0; h < kHosts; ++h) {
    const SeedCounts& c = counts[h % kWorkers];
    Exec(dsn,
         absl::StrCat("UPDATE agents SET acked_through_seq = ", c.last_seq[h],
                      ", last_seen = now() WHERE id = ", ids[h]));
    Exec(dsn, absl::StrCat("INSERT INTO probe_state (agent_id, kind, last_seq,"
                           " last_at) SELECT agent_id, kind, max(seq),"
                           " max(produced_at) FROM results WHERE agent_id = ",
                           ids[h], " GROUP BY agent_id, kind"));
  }
  const absl::Time vac0 = absl::Now();
  Exec(dsn, "VACUUM ANALYZE");
  const absl::Duration vacuum_time = absl::Now() - vac0;
  int64_t path_runs = 0, speed_results = 0, payload_bytes = 0;
  for (const SeedCounts& c : counts) {
    path_runs += c.path_runs;
    speed_results += c.speed_results;
    payload_bytes += c.payload_bytes;
  }
  std::printf(
      "seeded path_runs=%lld speed_results=%lld results=%s"
      " (avg payload %lld B) in %.1f s (COPY) + %.1f s (VACUUM ANALYZE)\n",
      static_cast<long long>(path_runs), static_cast<long long>(speed_results),
      Scalar(dsn, "SELECT count(*) FROM results").c_str(),
      static_cast<long long>(payload_bytes / (path_runs + speed_results)),
      absl::ToDoubleSeconds(copy_time), absl::ToDoubleSeconds(vacuum_time));
  std::printf("database size %s (results %s, path_runs %s with indexes)\n",
              Scalar(dsn,
                     "SELECT pg_size_pretty(pg_database_size("
                     "current_database()))")
                  .c_str(),
              Scalar(dsn,
                     "SELECT pg_size_pretty("
                     "pg_total_relation_size('results'))")
                  .c_str(),
              Scalar(dsn,
                     "SELECT pg_size_pretty("
                     "pg_total_relation_size('path_runs'))")
                  .c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int days = argc > 1 ? std::atoi(argv[1]) : 30;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 300;
  if (days <= 0 || iterations <= 0)
    Die("usage: query_bench [DAYS] [ITERATIONS]");
  spdlog::set_level(spdlog::level::warn);

  // QUERY_BENCH_DSN: time a database an earlier run seeded (one held with
  // QUERY_BENCH_HOLD), skipping the two-minute seed.
  const char* reuse = std::getenv("QUERY_BENCH_DSN");
  std::unique_ptr<netvigil::testing::PgCluster> pg;
  std::string dsn, socket_dir;
  if (reuse != nullptr) {
    dsn = reuse;
    socket_dir = "/tmp";
  } else {
    auto cluster = netvigil::testing::PgCluster::Start();
    if (!cluster.ok()) Die(std::string(cluster.status().message()));
    pg.reset(*cluster);
    dsn = pg->dsn();
    socket_dir = pg->dir();
  }
  netvigil::collector::PgStore store(dsn, 4);
  if (absl::Status s = store.Migrate(); !s.ok()) Die(s.ToString());
  if (reuse == nullptr) Seed(dsn, store, days);
  if (std::getenv("QUERY_BENCH_HOLD") != nullptr) {
    // For looking at query plans by hand before the timing starts.
    std::printf("holding: psql '%s'; press Enter to go on\n", dsn.c_str());
    std::fflush(stdout);
    std::getchar();
  }

  // The real Query service over gRPC on a UNIX socket, as the collector
  // serves it. Sessions are not held here: online comes from the database,
  // so a generous heartbeat timeout keeps every host online for the run.
  netvigil::collector::SessionRegistry sessions;
  netvigil::collector::CommandBroker broker(sessions, netvigil::RealClock());
  netvigil::collector::QueryServiceOptions options;
  options.heartbeat_timeout = absl::Hours(1);
  netvigil::collector::QueryService service(
      options, store, netvigil::RealClock(), sessions, broker);
  const std::string socket =
      absl::StrCat(socket_dir, "/query_bench.", getpid(), ".sock");
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) Die("cannot listen on " + socket);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  auto stub = v1::Query::NewStub(grpc::CreateCustomChannel(
      "unix:" + socket, grpc::InsecureChannelCredentials(), args));

  const int warmup = std::max(5, iterations / 20);
  std::printf(
      "timing %d calls each (after %d warm-up calls), host and target "
      "rotating over all %d pairs; load average %s\n",
      iterations, warmup, kHosts * kTargets, LoadAverage().c_str());

  // PathHistory: one host and target, the last 24 h, every run.
  size_t ph_runs = 0, ph_hops = 0, ph_bytes = 0;
  Stats ph = Time(warmup, iterations, [&](int i) {
    v1::PathHistoryRequest req;
    req.set_host(HostName(i % kHosts));
    req.set_target(kTargetNames[(i / kHosts) % kTargets]);
    *req.mutable_since() = TimeUtil::MicrosecondsToTimestamp(
        absl::ToUnixMicros(absl::Now()) - 86'400'000'000);
    req.set_limit(2000);  // above a day's 1440 runs: all of them
    grpc::ClientContext ctx;
    v1::PathHistoryResponse resp;
    grpc::Status s = stub->PathHistory(&ctx, req, &resp);
    if (!s.ok()) Die("PathHistory: " + s.error_message());
    ph_runs = resp.runs_size();
    ph_hops = 0;
    for (const auto& r : resp.runs()) ph_hops += r.run().hops_size();
    ph_bytes = resp.ByteSizeLong();
  });
  Report("PathHistory 24h (gRPC)", ph,
         absl::StrCat("runs=", ph_runs, " hops=", ph_hops,
                      " response_bytes=", ph_bytes));

  size_t ov_hosts = 0, ov_online = 0, ov_paths = 0, ov_cells = 0;
  Stats ov = Time(warmup, iterations, [&](int) {
    grpc::ClientContext ctx;
    v1::OverviewResponse resp;
    grpc::Status s = stub->Overview(&ctx, v1::OverviewRequest(), &resp);
    if (!s.ok()) Die("Overview: " + s.error_message());
    ov_hosts = resp.hosts_size();
    ov_online = ov_paths = 0;
    for (const auto& h : resp.hosts()) {
      ov_online += h.agent().online();
      ov_paths += h.paths_size();
    }
    ov_cells = resp.speed().cells_size();
  });
  Report("Overview (gRPC)", ov,
         absl::StrCat("hosts=", ov_hosts, " online=", ov_online,
                      " latest_paths=", ov_paths, " speed_cells=", ov_cells));

  // The store calls underneath, without gRPC.
  Stats st_ph = Time(warmup, iterations, [&](int i) {
    const int64_t now_us = absl::ToUnixMicros(absl::Now());
    auto r = store.PathHistory(HostName(i % kHosts),
                               kTargetNames[(i / kHosts) % kTargets],
                               now_us - 86'400'000'000, now_us, 2000);
    if (!r.ok()) Die(r.status().ToString());
  });
  Report("  store.PathHistory 24h", st_ph, "");
  Stats st_lp = Time(warmup, iterations, [&](int i) {
    auto r = store.LatestPaths(HostName(i % kHosts));
    if (!r.ok() || r->size() != kTargets) Die("LatestPaths");
  });
  Report("  store.LatestPaths (one host)", st_lp, "");
  Stats st_sm = Time(warmup, iterations, [&](int) {
    auto r = store.SpeedMatrix();
    if (!r.ok()) Die(r.status().ToString());
  });
  Report("  store.SpeedMatrix", st_sm, "");

  server->Shutdown();
  unlink(socket.c_str());
  const bool met = ph.p99 < 50 && ov.p99 < 50;
  std::printf("load average %s; target p99 < 50 ms for both: %s\n",
              LoadAverage().c_str(), met ? "met" : "MISSED");
  return met ? 0 : 1;
}
