// Helpers shared by the spool's tests: temp folders, realistic ~2 KB results,
// captured log lines and the delivery invariant ("every seq is a result or
// covered by a gap"). Thread-compatible.
#ifndef NETVIGIL_TESTS_UNIT_AGENT_SPOOL_TESTING_H_
#define NETVIGIL_TESTS_UNIT_AGENT_SPOOL_TESTING_H_

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/spool.h"
#include "gtest/gtest.h"
#include "netvigil/v1/probes.pb.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent::spool_testing {

// A fresh folder under $TMPDIR (or /var/tmp: a real disk), removed at the end.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base != nullptr ? base : "/var/tmp", "/spool_test.XXXXXX");
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A socket snapshot of `entries` sockets (about 113 bytes each), different
// for every `n`, with a marker string that can be found in the file.
inline v1::Result MakeResult(uint64_t n, int entries = 18) {
  v1::Result r;
  v1::SocketSnapshot* snap = r.mutable_sockets();
  snap->mutable_taken_at()->set_seconds(1'700'000'000 +
                                        static_cast<int64_t>(n));
  for (int i = 0; i < entries; ++i) {
    v1::SocketEntry* e = snap->add_sockets();
    e->set_proto(i % 3 == 0 ? v1::TRANSPORT_UDP : v1::TRANSPORT_TCP);
    e->set_family(i % 4 == 0 ? 6 : 4);
    e->set_state(i % 3 == 0 ? "UNCONN" : "ESTAB");
    e->set_local_address(absl::StrCat("192.168.1.", 10 + i % 200));
    e->set_local_port(static_cast<uint32_t>(30000 + (n * 7 + i) % 30000));
    e->set_remote_address(absl::StrCat("2001:db8::", n % 9973, ":", i));
    e->set_remote_port(443);
    e->set_uid(1000);
    e->set_inode(n * 1000 + i);
    v1::ProcessRef* p = e->add_processes();
    p->set_pid(static_cast<uint32_t>(1000 + i));
    p->set_name(absl::StrCat("marker-", n, "-", i));
    p->set_exe("/usr/lib/firefox-esr/firefox-esr");
    p->set_uid(1000);
  }
  return r;
}

// Every row, read in pages the way the collector link does.
inline std::vector<v1::Result> ReadAll(Spool& spool, uint64_t after = 0) {
  std::vector<v1::Result> all;
  for (;;) {
    absl::StatusOr<std::vector<v1::Result>> page =
        spool.ReadAfter(after, 100, 1 << 20);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->empty()) break;
    for (v1::Result& r : *page) {
      after = r.seq();
      all.push_back(std::move(r));
    }
  }
  return all;
}

// Checks the collector's invariant over `all` (from ReadAll after `acked`):
// seqs strictly increase and every seq in (acked, below) is a row or inside a
// gap's [first_seq, last_seq]. Returns the gaps by seq.
inline std::map<uint64_t, v1::Gap> CheckCovered(
    const std::vector<v1::Result>& all, uint64_t acked, uint64_t below) {
  std::map<uint64_t, v1::Gap> gaps;
  std::set<uint64_t> covered;
  uint64_t prev = acked;
  for (const v1::Result& r : all) {
    EXPECT_GT(r.seq(), prev) << "seqs must strictly increase";
    prev = r.seq();
    covered.insert(r.seq());
    if (r.has_gap()) {
      gaps[r.seq()] = r.gap();
      for (uint64_t s = r.gap().first_seq(); s <= r.gap().last_seq(); ++s) {
        covered.insert(s);
      }
    }
  }
  for (uint64_t s = acked + 1; s < below; ++s) {
    if (covered.count(s) == 0) {
      ADD_FAILURE() << "seq " << s << " is neither a result nor in a gap";
      break;
    }
  }
  return gaps;
}

// Sends spdlog's default logger into a string for the scope.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("spool_test", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace netvigil::agent::spool_testing

#endif  // NETVIGIL_TESTS_UNIT_AGENT_SPOOL_TESTING_H_
