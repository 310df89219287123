// Oracle test: FileProbe against lsof on this host at the same moment. Child
// processes hold files under a temporary folder (read, write and read-write
// fds, a cwd, an mmapped file, an executable, a deleted open file and a
// deleted mapping, and threads); the probe's (pid, path, kind, fd, mode) set
// must equal lsof's for those processes.
//
// lsof's quirks the comparison allows for:
// - `lsof +D DIR` finds files by walking DIR, so it never lists deleted files;
//   those are compared with `lsof -p PIDS` instead, where a deleted open file
//   is named "PATH (deleted)" and a deleted mapping has FD "DEL".
// - lsof writes cwd as FD "cwd", the executable as "txt" (and does not list
//   its mapping again as "mem"), mappings as "mem", fds as number + mode.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/probes/file_probe.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;

// (pid, path, kind, fd, mode, deleted)
using Tuple = std::tuple<int, std::string, int, int, std::string, bool>;

std::string TupleText(const Tuple& t) {
  return absl::StrCat("pid ", std::get<0>(t), " ", std::get<1>(t), " kind ",
                      std::get<2>(t), " fd ", std::get<3>(t), std::get<4>(t),
                      std::get<5>(t) ? " deleted" : "");
}

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[64 * 1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Parses `lsof -F pfan` output into tuples of the processes in `pids` whose
// path lies under `dir`.
std::set<Tuple> LsofTuples(const std::string& args, const std::set<int>& pids,
                           const std::string& dir) {
  std::string text = RunCommand("lsof -n -P -F pfan " + args + " 2>/dev/null");
  std::set<Tuple> out;
  int pid = -1;
  std::string fd, mode;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) continue;
    char field = line[0];
    absl::string_view value = line.substr(1);
    if (field == 'p') {
      if (!absl::SimpleAtoi(value, &pid)) pid = -1;
    } else if (field == 'f') {
      fd = std::string(value);
      mode.clear();
    } else if (field == 'a') {
      mode = std::string(absl::StripAsciiWhitespace(value));
    } else if (field == 'n') {
      if (!pids.count(pid)) continue;
      std::string path(value);
      bool deleted = false;
      if (absl::ConsumeSuffix(&value, " (deleted)")) {
        deleted = true;
        path = std::string(value);
      }
      if (path != dir && !absl::StartsWith(path, dir + "/")) continue;
      int kind, number = -1;
      if (fd == "cwd") {
        kind = v1::FILE_ACCESS_CWD;
      } else if (fd == "txt") {
        kind = v1::FILE_ACCESS_EXE;
      } else if (fd == "mem" || fd == "DEL") {
        kind = v1::FILE_ACCESS_MMAP;
        deleted = deleted || fd == "DEL";
      } else if (fd == "rtd") {
        kind = v1::FILE_ACCESS_ROOT;
      } else if (absl::SimpleAtoi(fd, &number)) {
        kind = v1::FILE_ACCESS_FD;
      } else {
        ADD_FAILURE() << "unexpected lsof FD " << fd << " for " << path;
        continue;
      }
      out.emplace(pid, path, kind, number,
                  kind == v1::FILE_ACCESS_FD ? mode : "", deleted);
    }
  }
  return out;
}

void ExpectSameSets(const std::set<Tuple>& ours, const std::set<Tuple>& lsof,
                    const std::string& what) {
  for (const Tuple& t : ours) {
    if (!lsof.count(t))
      ADD_FAILURE() << what << ": only in probe: " << TupleText(t);
  }
  for (const Tuple& t : lsof) {
    if (!ours.count(t))
      ADD_FAILURE() << what << ": only in lsof: " << TupleText(t);
  }
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// A child process holding files until the test ends; killed by pid.
struct Child {
  pid_t pid = -1;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

class FilesOracleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nvfiles_oracle.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    holder_.reset();
    runner_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<Child> holder_ = std::make_unique<Child>();
  std::unique_ptr<Child> runner_ = std::make_unique<Child>();
};

TEST_F(FilesOracleTest, SameEntriesAsLsof) {
  const std::string d = dir_;
  ASSERT_EQ(mkdir((d + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((d + "/bin").c_str(), 0755), 0);
  WriteFile(d + "/r.txt", "read me\n");
  WriteFile(d + "/u.db", "both\n");
  WriteFile(d + "/del.txt", "soon gone\n");
  WriteFile(d + "/map.bin", std::string(8192, 'm'));
  std::filesystem::copy_file("/bin/sleep", d + "/bin/sleepy");
  ASSERT_EQ(chmod((d + "/bin/sleepy").c_str(), 0755), 0);

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  holder_->pid = fork();
  ASSERT_GE(holder_->pid, 0);
  if (holder_->pid == 0) {
    close(ready[0]);
    bool ok = chdir((d + "/sub").c_str()) == 0;
    ok &= open((d + "/r.txt").c_str(), O_RDONLY) >= 0;
    ok &=
        open((d + "/w.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644) >= 0;
    ok &= open((d + "/u.db").c_str(), O_RDWR) >= 0;
    int m = open((d + "/map.bin").c_str(), O_RDONLY);
    ok &= m >= 0 &&
          mmap(nullptr, 8192, PROT_READ, MAP_SHARED, m, 0) != MAP_FAILED;
    close(m);
    ok &= open((d + "/del.txt").c_str(), O_RDONLY) >= 0;
    ok &= unlink((d + "/del.txt").c_str()) == 0;
    int dm = open((d + "/delmap.bin").c_str(), O_RDWR | O_CREAT, 0644);
    ok &= dm >= 0 && ftruncate(dm, 4096) == 0 &&
          mmap(nullptr, 4096, PROT_READ, MAP_SHARED, dm, 0) != MAP_FAILED;
    close(dm);
    ok &= unlink((d + "/delmap.bin").c_str()) == 0;
    // Threads share the fd table; their files must not be listed twice.
    for (int i = 0; i < 2; ++i) std::thread([] { pause(); }).detach();
    char c = ok ? 1 : 0;
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 1) << "the holder child could not set up its files";

  runner_->pid = fork();
  ASSERT_GE(runner_->pid, 0);
  if (runner_->pid == 0) {
    if (chdir(d.c_str()) == 0) {
      execl((d + "/bin/sleepy").c_str(), "sleepy", "600", nullptr);
    }
    _exit(127);
  }
  // Wait until the exec has happened (at most 5 s).
  const std::string exe_link = absl::StrCat("/proc/", runner_->pid, "/exe");
  for (int i = 0; i < 500; ++i) {
    std::error_code ec;
    if (std::filesystem::read_symlink(exe_link, ec).string() ==
        d + "/bin/sleepy") {
      break;
    }
    usleep(10000);
  }

  const std::set<int> pids = {holder_->pid, runner_->pid};
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe::CreateReal()->Collect({d});
  std::set<Tuple> lsof_dir = LsofTuples("+D " + d, pids, d);
  std::set<Tuple> lsof_pids =
      LsofTuples(absl::StrCat("-p ", holder_->pid, ",", runner_->pid), pids, d);
  ASSERT_THAT(snap, IsOk());

  std::set<Tuple> ours_present, ours_deleted;
  size_t rows = 0;
  for (const v1::FileEntry& e : snap->entries()) {
    if (!pids.count(static_cast<int>(e.process().pid()))) continue;
    ++rows;
    Tuple t(e.process().pid(), e.path(), e.kind(), e.fd(), e.mode(),
            e.deleted());
    (e.deleted() ? ours_deleted : ours_present).insert(t);
  }
  std::set<Tuple> lsof_deleted;
  for (const Tuple& t : lsof_pids) {
    if (std::get<5>(t)) lsof_deleted.insert(t);
  }

  // Holder: 3 fds + cwd + mapping; runner: cwd + exe. Deleted: fd + mapping.
  EXPECT_EQ(ours_present.size(), 7u);
  EXPECT_EQ(ours_deleted.size(), 2u);
  EXPECT_EQ(rows, ours_present.size() + ours_deleted.size())
      << "an entry was listed twice (threads?)";
  ExpectSameSets(ours_present, lsof_dir, "lsof +D");
  ExpectSameSets(ours_deleted, lsof_deleted, "lsof -p, deleted files");

  // What lsof's set does not show but the probe must get right.
  for (const v1::FileEntry& e : snap->entries()) {
    if (static_cast<int>(e.process().pid()) == runner_->pid) {
      EXPECT_EQ(e.process().name(), "sleepy");
      EXPECT_EQ(e.process().exe(), d + "/bin/sleepy");
      EXPECT_EQ(e.process().uid(), 0u);
    }
  }
}

// lsof +D follows a folder given as a symlink (the kernel names the real
// path in /proc); the probe must too, and say which folder it watched. A
// folder that is not there is an error, not an empty snapshot.
TEST_F(FilesOracleTest, SymlinkedFolderIsFollowedAsLsofDoes) {
  const std::string real = dir_ + "/real";
  const std::string link = dir_ + "/link";
  ASSERT_EQ(mkdir(real.c_str(), 0755), 0);
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  for (int i = 0; i < 4; ++i) WriteFile(absl::StrCat(real, "/f", i), "x\n");

  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  holder_->pid = fork();
  ASSERT_GE(holder_->pid, 0);
  if (holder_->pid == 0) {
    close(ready[0]);
    // Opened through the link: the kernel still writes the real path.
    bool ok = chdir(link.c_str()) == 0;
    for (int i = 0; i < 4; ++i) {
      ok &= open(absl::StrCat(link, "/f", i).c_str(),
                 i % 2 ? O_RDWR : O_RDONLY) >= 0;
    }
    char c = ok ? 1 : 0;
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 1) << "the holder child could not open its files";

  const std::set<int> pids = {holder_->pid};
  absl::StatusOr<v1::FileSnapshot> snap =
      FileProbe::CreateReal()->Collect({link + "/"});
  std::set<Tuple> lsof = LsofTuples("+D " + link, pids, real);
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(snap->error(), "");
  EXPECT_THAT(snap->watched_dirs(), ::testing::ElementsAre(real));
  std::set<Tuple> ours;
  for (const v1::FileEntry& e : snap->entries()) {
    if (!pids.count(static_cast<int>(e.process().pid()))) continue;
    ours.emplace(e.process().pid(), e.path(), e.kind(), e.fd(), e.mode(),
                 e.deleted());
  }
  EXPECT_EQ(lsof.size(), 5u) << "4 fds and the cwd, as lsof +D sees them";
  EXPECT_EQ(ours.size(), 5u);
  ExpectSameSets(ours, lsof, "lsof +D on a symlinked folder");

  // A folder that does not exist: named in the error; the others still
  // watched.
  const std::string missing = dir_ + "/not-there";
  absl::StatusOr<v1::FileSnapshot> partly =
      FileProbe::CreateReal()->Collect({missing, link});
  ASSERT_THAT(partly, IsOk());
  EXPECT_EQ(partly->error(), "watched folder does not exist: " + missing);
  EXPECT_THAT(partly->watched_dirs(), ::testing::ElementsAre(real));
  EXPECT_GE(partly->entries_size(), 5);
}

}  // namespace
}  // namespace netvigil::agent
