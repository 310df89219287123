// Spool throughput, durable (synchronous=FULL, so every COMMIT is fsynced):
// results/s for single Append (1, 4, 16 threads) and for AppendBatch, with ~2
// KB socket snapshots, beside the disk's own rate of fsynced 2 KB writes.
// Usage: spool_bench DIR [SINGLE_COUNT] [BATCH_COUNT] [BATCH_SIZE] [CAP_MIB]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/spool.h"
#include "common/clock.h"
#include "netvigil/v1/probes.pb.h"
#include "spdlog/spdlog.h"

namespace {

using netvigil::agent::Spool;
namespace v1 = netvigil::v1;

// A socket snapshot of about 2 KB, different for every n.
v1::Result Realistic(uint64_t n) {
  v1::Result r;
  v1::SocketSnapshot* snap = r.mutable_sockets();
  snap->mutable_taken_at()->set_seconds(1'700'000'000 +
                                        static_cast<int64_t>(n));
  for (int i = 0; i < 18; ++i) {
    v1::SocketEntry* e = snap->add_sockets();
    e->set_proto(v1::TRANSPORT_TCP);
    e->set_family(4);
    e->set_state("ESTAB");
    e->set_local_address(absl::StrCat("192.168.1.", 10 + i));
    e->set_local_port(static_cast<uint32_t>(30000 + (n + i) % 30000));
    e->set_remote_address(absl::StrCat("203.0.113.", (n + i) % 250));
    e->set_remote_port(443);
    e->set_uid(1000);
    e->set_inode(n * 100 + i);
    v1::ProcessRef* p = e->add_processes();
    p->set_pid(static_cast<uint32_t>(2000 + i));
    p->set_name("firefox-esr");
    p->set_exe("/usr/lib/firefox-esr/firefox-esr");
    p->set_uid(1000);
  }
  return r;
}

std::unique_ptr<Spool> OpenFresh(const std::string& dir, const char* name) {
  std::string path = absl::StrCat(dir, "/", name);
  for (const char* suffix : {"", "-wal", "-shm", ".seq"}) {
    unlink((path + suffix).c_str());
  }
  auto spool = Spool::Open(Spool::Options{path}, netvigil::RealClock());
  if (!spool.ok()) {
    fprintf(stderr, "open %s: %s\n", path.c_str(),
            std::string(spool.status().message()).c_str());
    exit(1);
  }
  return std::move(*spool);
}

double Rate(uint64_t n, absl::Duration d) {
  return static_cast<double>(n) / absl::ToDoubleSeconds(d);
}

// The disk's floor: 2 KB appends each followed by fdatasync.
double FsyncRate(const std::string& dir, int n) {
  std::string path = dir + "/fsync_probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  std::string block(2048, 'x');
  absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    if (write(fd, block.data(), block.size()) < 0 || fdatasync(fd) != 0) break;
  }
  absl::Duration d = absl::Now() - t0;
  close(fd);
  unlink(path.c_str());
  return Rate(n, d);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(
        stderr,
        "usage: %s DIR [SINGLE_COUNT] [BATCH_COUNT] [BATCH_SIZE] [CAP_MIB]\n",
        argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int single = argc > 2 ? atoi(argv[2]) : 5000;
  const int batched = argc > 3 ? atoi(argv[3]) : 100000;
  const int batch_size = argc > 4 ? atoi(argv[4]) : 100;
  const uint64_t cap_mib = argc > 5 ? strtoull(argv[5], nullptr, 10) : 8;
  printf("result_bytes=%zu synchronous=FULL journal=WAL\n",
         Realistic(1).ByteSizeLong());
  spdlog::set_level(spdlog::level::warn);
  // The disk is shared: its fsync rate is measured before and after.
  printf("disk_fsync_2k_writes_per_s=%.0f (before)\n", FsyncRate(dir, 1000));

  {
    auto spool = OpenFresh(dir, "single.db");
    absl::Time t0 = absl::Now();
    for (int i = 0; i < single; ++i) {
      if (!spool->Append(Realistic(i)).ok()) return 1;
    }
    printf("append_single threads=1 results=%d results_per_s=%.0f\n", single,
           Rate(single, absl::Now() - t0));
  }
  // Concurrent single Appends share commits (group commit).
  for (int threads : {4, 16}) {
    auto spool = OpenFresh(dir, "threads.db");
    absl::Time t0 = absl::Now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < single / threads; ++i) {
          if (!spool->Append(Realistic(t * single + i)).ok()) exit(1);
        }
      });
    }
    for (auto& t : ts) t.join();
    int n = single / threads * threads;
    printf("append_single threads=%d results=%d results_per_s=%.0f\n", threads,
           n, Rate(n, absl::Now() - t0));
  }
  {
    auto spool = OpenFresh(dir, "batch.db");
    absl::Time t0 = absl::Now();
    for (int i = 0; i < batched; i += batch_size) {
      std::vector<v1::Result> batch;
      for (int k = 0; k < batch_size; ++k) batch.push_back(Realistic(i + k));
      if (!spool->AppendBatch(std::move(batch)).ok()) return 1;
    }
    int n = batched / batch_size * batch_size;
    printf("append_batch batch=%d results=%d results_per_s=%.0f\n", batch_size,
           n, Rate(n, absl::Now() - t0));
    // Drain as the collector link would: read a page, ack it.
    t0 = absl::Now();
    uint64_t after = 0, read = 0;
    for (;;) {
      auto page = spool->ReadAfter(after, 500, 4 << 20);
      if (!page.ok() || page->empty()) break;
      after = page->back().seq();
      read += page->size();
      if (!spool->AckThrough(after).ok()) return 1;
    }
    printf("read_and_ack results=%llu results_per_s=%.0f\n",
           static_cast<unsigned long long>(read), Rate(read, absl::Now() - t0));
  }
  {
    // Past the cap every batch also drops the oldest and grows the gap.
    std::string path = dir + "/capped.db";
    auto opened =
        Spool::Open(Spool::Options{path, cap_mib << 20}, netvigil::RealClock());
    if (!opened.ok()) return 1;
    Spool& spool = **opened;
    int n = 0;
    while (spool.dropped_total() == 0 && n < 1'000'000) {
      std::vector<v1::Result> batch;
      for (int k = 0; k < batch_size; ++k) batch.push_back(Realistic(n++));
      if (!spool.AppendBatch(std::move(batch)).ok()) return 1;
    }
    absl::Time t0 = absl::Now();
    const int at_cap = std::min(batched, 20000) / batch_size * batch_size;
    for (int i = 0; i < at_cap; i += batch_size) {
      std::vector<v1::Result> batch;
      for (int k = 0; k < batch_size; ++k) batch.push_back(Realistic(n++));
      if (!spool.AppendBatch(std::move(batch)).ok()) return 1;
    }
    printf(
        "append_batch_over_cap cap_mib=%llu batch=%d results=%d "
        "results_per_s=%.0f dropped_total=%llu\n",
        static_cast<unsigned long long>(cap_mib), batch_size, at_cap,
        Rate(at_cap, absl::Now() - t0),
        static_cast<unsigned long long>(spool.dropped_total()));
    // Start-up cost of a full spool: quick_check plus a checksum of every row.
    uint64_t pending = spool.pending();
    opened->reset();
    t0 = absl::Now();
    auto again =
        Spool::Open(Spool::Options{path, cap_mib << 20}, netvigil::RealClock());
    if (!again.ok()) return 1;
    printf("open_full_spool cap_mib=%llu results=%llu ms=%.0f\n",
           static_cast<unsigned long long>(cap_mib),
           static_cast<unsigned long long>(pending),
           absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  printf("disk_fsync_2k_writes_per_s=%.0f (after)\n", FsyncRate(dir, 1000));
  for (const char* name :
       {"single.db", "threads.db", "batch.db", "capped.db"}) {
    std::string path = absl::StrCat(dir, "/", name);
    for (const char* suffix : {"", "-wal", ".seq"})
      unlink((path + suffix).c_str());
  }
  return 0;
}
