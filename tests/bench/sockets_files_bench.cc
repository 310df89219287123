// Benchmark of the socket and open-file probes beside `ss -tanup` and lsof,
// measured in the same run on load it makes itself. Run through
// tests/bench/sockets_files.sh BUILD_DIR.
//
//   sockets_files_bench run [--sockets 10000,25000,50000] [--files 100000]
//                           [--reps 3]
//   sockets_files_bench snapshot sockets|files [DIR] [--print|--count]
//   sockets_files_bench bare THREADS [DIR]
//   sockets_files_bench hold sockets N | hold files DIR N
//
// `run` forks holder processes (each under the per-process fd limit, which it
// raises to the hard limit) that keep loopback TCP pairs or open files, then
// times, as whole processes from exec to exit with output to /dev/null:
//   ours: `sockets_files_bench snapshot sockets --print` (a table like ss's)
//   ss -tanup
// and, as the floor under both, a bare /proc fd pass and `ss -tan` (no owners)
// and at the file level:
//   ours: `sockets_files_bench snapshot files DIR --print`
//   lsof -n -P +D DIR, lsof -n -P
// The median of --reps runs of each is printed with the ratio; the probe and
// ss, and the probe and lsof +D, run in turn. Peak RSS is
// getrusage's ru_maxrss of a process that does one snapshot and nothing else.
// Beside the file figures, the bound that no /proc reader passes: `bare`, a
// plain readdir + readlink of every /proc/PID/fd on 1 and 2 threads, with no
// project code, and with DIR the lstat of the kept fds that lsof's r/w/u mode
// costs on top of it.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/socket_probe.h"
#include "common/report/files_table.h"
#include "common/report/sockets_table.h"
#include "google/protobuf/arena.h"

namespace netvigil::agent {
namespace {

constexpr int kSocketsPerHolder = 5000;  // 2500 pairs.
constexpr int kFilesPerHolder = 12500;   // Under a 20,000 fd limit.

void RaiseFdLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(2);
}

// A holder process; SIGKILLed by pid at the end.
struct Holder {
  pid_t pid;
};
std::vector<Holder> holders;

void KillHolders() {
  for (const Holder& h : holders) kill(h.pid, SIGKILL);
  for (const Holder& h : holders) waitpid(h.pid, nullptr, 0);
  holders.clear();
}

// Forks a holder that runs `fill` (returns false on failure), reports to the
// parent and waits to be killed.
template <typename Fill>
void StartHolder(Fill fill) {
  int ready[2];
  if (pipe(ready) != 0) Die("pipe");
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    close(ready[0]);
    RaiseFdLimit();
    char ok = fill() ? 1 : 0;
    (void)!write(ready[1], &ok, 1);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  if (read(ready[0], &ok, 1) != 1 || ok != 1) {
    std::fprintf(stderr, "a holder process failed to make its load\n");
    holders.push_back({pid});
    KillHolders();
    std::exit(2);
  }
  close(ready[0]);
  holders.push_back({pid});
}

// A listener on 127.0.0.1 and pairs connected to it. SO_LINGER 0 so that the
// kill at the end resets them instead of leaving thousands in TIME-WAIT.
bool FillSockets(int sockets) {
  linger lg{1, 0};
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(l, 4096) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return false;
  }
  for (int i = 0; i < (sockets - 1) / 2; ++i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) return false;
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return false;
    }
    int s = accept(l, nullptr, nullptr);
    if (s < 0) return false;
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  return true;
}

// Opens `files` of DIR's f0..f<distinct - 1>, from number `offset` on and
// round again when the files are fewer than the fds.
bool FillFiles(const std::string& dir, int files, int offset, int distinct) {
  for (int i = 0; i < files; ++i) {
    std::string path = dir + "/f" + std::to_string((i + offset) % distinct);
    if (open(path.c_str(), (i % 3 == 0) ? O_RDWR : O_RDONLY) < 0) return false;
  }
  return true;
}

struct Run {
  double wall_s;
  double cpu_s;  // user + system
  long maxrss_kib;
};

// Runs argv with stdout to /dev/null; wall time and the child's peak RSS.
Run Time(const std::vector<std::string>& argv) {
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> args;
    for (const std::string& s : argv)
      args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  // lsof exits 1 when some /proc entry could not be read; that is not a
  // failed run.
  const bool lsof_warning =
      argv[0] == "lsof" && WIFEXITED(status) && WEXITSTATUS(status) == 1;
  if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && !lsof_warning) {
    std::fprintf(stderr, "%s exited with status %d\n", argv[0].c_str(), status);
  }
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  return {wall, cpu, ru.ru_maxrss};
}

// Median wall and CPU time of `reps` runs (each median on its own).
struct Figures {
  double wall_s;
  double cpu_s;
};
Figures MedianOf(std::vector<double> wall, std::vector<double> cpu) {
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}
Figures Median(const std::vector<std::string>& argv, int reps) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    Run r = Time(argv);
    wall.push_back(r.wall_s);
    cpu.push_back(r.cpu_s);
  }
  return MedianOf(std::move(wall), std::move(cpu));
}
// The same for two commands run in turn (a, b, a, b, ...), so that a change
// in the machine's other load falls on both alike.
std::pair<Figures, Figures> MedianPair(const std::vector<std::string>& a,
                                       const std::vector<std::string>& b,
                                       int reps) {
  std::vector<double> wa, ca, wb, cb;
  for (int i = 0; i < reps; ++i) {
    Run ra = Time(a);
    wa.push_back(ra.wall_s);
    ca.push_back(ra.cpu_s);
    Run rb = Time(b);
    wb.push_back(rb.wall_s);
    cb.push_back(rb.cpu_s);
  }
  return {MedianOf(std::move(wa), std::move(ca)),
          MedianOf(std::move(wb), std::move(cb))};
}

void PrintPair(const char* label, const Figures& ours, const char* tool,
               const Figures& theirs) {
  std::printf("  %-24s wall %8.3f s  cpu %8.3f s\n", label, ours.wall_s,
              ours.cpu_s);
  std::printf(
      "  %-24s wall %8.3f s  cpu %8.3f s   ratio wall %5.1fx  cpu "
      "%5.1fx\n",
      tool, theirs.wall_s, theirs.cpu_s, theirs.wall_s / ours.wall_s,
      theirs.cpu_s / ours.cpu_s);
}

std::string Self() { return std::filesystem::read_symlink("/proc/self/exe"); }

// Entries of one snapshot, counted in a child process: the driver itself
// stays small, since a child's ru_maxrss starts from the driver's (fork
// copies its pages and execve keeps the high-water mark).
int CountEntries(const std::string& self, const std::string& what,
                 const std::string& dir = "") {
  std::string cmd = self + " snapshot " + what + " " + dir + " --count";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  int n = -1;
  if (std::fscanf(p, "%d", &n) != 1) n = -1;
  pclose(p);
  return n;
}

// Makes DIR/f0..f<n - 1>, empty.
void MakeFiles(const std::string& dir, int n) {
  for (int i = 0; i < n; ++i) {
    std::string path = dir + "/f" + std::to_string(i);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) Die("create");
    close(fd);
  }
}

// One file level: `files` fds on `distinct` files under a temporary folder,
// the probe beside lsof +D and lsof, and the bare-pass bound.
void FileLevel(const std::string& self, int files, int distinct, int reps) {
  char tmpl[] = "/tmp/nvbench_files.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  const std::string dir = tmpl;
  MakeFiles(dir, distinct);
  for (int opened = 0; opened < files; opened += kFilesPerHolder) {
    int n = std::min(kFilesPerHolder, files - opened);
    StartHolder([&, n, opened] { return FillFiles(dir, n, opened, distinct); });
  }
  int entries = CountEntries(self, "files", dir);
  auto [ours, lsof_d] = MedianPair({self, "snapshot", "files", dir, "--print"},
                                   {"lsof", "-n", "-P", "+D", dir}, reps);
  Figures lsof_all = Median({"lsof", "-n", "-P"}, reps);
  std::printf("\n%d open fds on %d files under %s (probe entries: %d)\n", files,
              distinct, dir.c_str(), entries);
  PrintPair("netvigil probe files", ours, "lsof -n -P +D DIR", lsof_d);
  PrintPair("netvigil probe files", ours, "lsof -n -P", lsof_all);
  // The bound: what a pass over the same fds costs with nothing but the
  // system calls, in the same run.
  std::printf(
      "  bound: bare readdir+readlink of every /proc/PID/fd, no project "
      "code (15x lsof +D needs <= %.3f s wall):\n",
      lsof_d.wall_s / 15);
  auto bound = [&](const char* label, const Figures& bare) {
    std::printf("  %-24s wall %8.3f s  cpu %8.3f s   lsof +D / it %5.1fx\n",
                label, bare.wall_s, bare.cpu_s, lsof_d.wall_s / bare.wall_s);
  };
  bound("bare pass, 1 thread", Median({self, "bare", "1"}, reps));
  bound("bare pass, 2 threads", Median({self, "bare", "2"}, reps));
  bound("bare + lstat, 2 threads", Median({self, "bare", "2", dir}, reps));
  Run frss = Time({self, "snapshot", "files", dir});
  std::printf("peak RSS of one file snapshot: %.1f MiB\n",
              frss.maxrss_kib / 1024.0);
  std::fflush(stdout);
  KillHolders();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

int RunAll(const std::vector<int>& socket_levels, int files, int reps) {
  const std::string self = Self();
  std::printf(
      "netvigil sockets/files benchmark: median of %d runs, whole "
      "processes (exec to exit, output to /dev/null);\ncpu = the "
      "process's user + system time, which other load on the machine "
      "does not inflate\n",
      reps);
  // Sockets other programs hold count towards a level: the tools list them
  // too.
  int made = CountEntries(self, "sockets");
  std::printf("sockets already open on this host: %d\n", made);
  std::vector<double> per_socket;
  for (int level : socket_levels) {
    while (made + kSocketsPerHolder / 2 < level) {
      StartHolder([] { return FillSockets(kSocketsPerHolder); });
      made += kSocketsPerHolder;
    }
    int total = CountEntries(self, "sockets");
    auto [ours, ss] = MedianPair({self, "snapshot", "sockets", "--print"},
                                 {"ss", "-tanup"}, reps);
    per_socket.push_back(ours.wall_s / total * 1e6);
    std::printf("\n%d sockets (netvigil %.2f us/socket wall)\n", total,
                per_socket.back());
    PrintPair("netvigil probe sockets", ours, "ss -tanup", ss);
    // The floor under any reader that finds owners through /proc: the
    // kernel's part of the fd pass (a bare readdir + readlink of every
    // /proc/PID/fd, no project code) and of the dump with a table printed
    // (`ss -tan`, no owners), as CPU time spread perfectly on every core.
    const Figures bare = Median({self, "bare", "1"}, reps);
    const Figures dump = Median({"ss", "-tan"}, reps);
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::printf(
        "  floor: bare fd pass cpu %.3f s + ss -tan (dump and table, no "
        "owners) cpu %.3f s, over %u cores = %.3f s wall; 6x ss -tanup "
        "needs <= %.3f s\n",
        bare.cpu_s, dump.cpu_s, cores, (bare.cpu_s + dump.cpu_s) / cores,
        ss.wall_s / 6);
    std::fflush(stdout);
  }
  Run rss = Time({self, "snapshot", "sockets"});
  Run base = Time({self, "snapshot", "none"});
  std::printf(
      "peak RSS of one socket snapshot at %d sockets: %.1f MiB "
      "(same binary doing no snapshot: %.1f MiB)\n",
      CountEntries(self, "sockets"), rss.maxrss_kib / 1024.0,
      base.maxrss_kib / 1024.0);
  if (per_socket.size() > 1) {
    std::printf(
        "per-socket cost, largest level / smallest: %.2f (1.0 = "
        "linear)\n",
        per_socket.back() / per_socket.front());
  }
  KillHolders();

  if (files > 0) {
    // The target's shape: every fd a file of its own, as "100,000 open
    // files" reads. lsof +D stats each file it finds under DIR and then
    // every open fd, and is much slower there than where a few files are
    // each open many times, which is measured second as lsof's best case.
    FileLevel(self, files, files, reps);
    FileLevel(self, files, std::min(files, 1000), reps);
  }
  return 0;
}

// The bare /proc pass: getdents64 and readlinkat over every /proc/PID/fd,
// processes handed out one at a time to `threads` threads, nothing kept.
// With `dir`, fds whose target lies under it are also lstat'ed, as the file
// probe does for their mode. Prints how many fds it read.
int Bare(int threads, const std::string& dir) {
  std::vector<int> pids;
  if (DIR* proc = opendir("/proc")) {
    while (dirent* e = readdir(proc)) {
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
        pids.push_back(std::atoi(e->d_name));
      }
    }
    closedir(proc);
  }
  std::atomic<size_t> next{0};
  std::atomic<long> fds{0};
  auto run = [&] {
    long n = 0;
    alignas(8) char buf[32 * 1024];
    char target[4096];
    for (size_t i = next++; i < pids.size(); i = next++) {
      char path[64];
      std::snprintf(path, sizeof(path), "/proc/%d/fd", pids[i]);
      int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0) continue;
      for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        if (got <= 0) break;
        for (long off = 0; off < got;) {
          auto* e = reinterpret_cast<dirent64*>(buf + off);
          off += e->d_reclen;
          if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
          ssize_t len = readlinkat(dfd, e->d_name, target, sizeof(target));
          if (len < 0) continue;
          ++n;
          if (!dir.empty() && static_cast<size_t>(len) > dir.size() &&
              std::memcmp(target, dir.data(), dir.size()) == 0 &&
              target[dir.size()] == '/') {
            struct stat st;
            fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW);
          }
        }
      }
      close(dfd);
    }
    fds += n;
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  std::printf("%ld\n", fds.load());
  return 0;
}

// Makes load and keeps it until stdin closes: for looking at one level by
// hand (`hold sockets N` or `hold files DIR N`: DIR gets f0..f<N - 1>, one
// fd each).
int Hold(int argc, char** argv) {
  std::string what = argc > 2 ? argv[2] : "";
  int n = std::atoi(argv[argc - 1]);
  if (what == "sockets") {
    for (int made = 0; made < n; made += kSocketsPerHolder) {
      StartHolder([] { return FillSockets(kSocketsPerHolder); });
    }
  } else if (what == "files" && argc > 4) {
    const std::string dir = argv[3];
    MakeFiles(dir, n);
    for (int opened = 0; opened < n; opened += kFilesPerHolder) {
      int k = std::min(kFilesPerHolder, n - opened);
      StartHolder([&, k, opened, n] { return FillFiles(dir, k, opened, n); });
    }
  } else {
    std::fprintf(stderr, "usage: hold sockets N | hold files DIR N\n");
    return 2;
  }
  std::printf("holding\n");
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  KillHolders();
  return 0;
}

int Snapshot(int argc, char** argv) {
  std::string what = argc > 2 ? argv[2] : "";
  bool print = std::string(argv[argc - 1]) == "--print";
  bool count = std::string(argv[argc - 1]) == "--count";
  if (what == "none") return 0;
  if (what == "sockets") {
    // As `netvigil-agent probe sockets` does: the snapshot on an arena.
    google::protobuf::Arena arena;
    auto* snap =
        google::protobuf::Arena::CreateMessage<v1::SocketSnapshot>(&arena);
    if (!SocketProbe::CreateReal()->Collect(snap).ok()) return 1;
    if (print) std::fputs(report::FormatSocketsTable(*snap).c_str(), stdout);
    if (count) std::printf("%d\n", snap->sockets_size());
    return 0;
  }
  if (what == "files" && argc > 3) {
    absl::StatusOr<v1::FileSnapshot> snap =
        FileProbe::CreateReal()->Collect({argv[3]});
    if (!snap.ok()) return 1;
    if (print) std::fputs(report::FormatFilesTable(*snap).c_str(), stdout);
    if (count) std::printf("%d\n", snap->entries_size());
    return 0;
  }
  std::fprintf(stderr, "usage: snapshot sockets|files DIR|none [--print]\n");
  return 2;
}

std::vector<int> Levels(const std::string& text) {
  std::vector<int> out;
  for (absl::string_view s : absl::StrSplit(text, ',')) {
    int v;
    if (absl::SimpleAtoi(s, &v)) out.push_back(v);
  }
  return out;
}

}  // namespace
}  // namespace netvigil::agent

int main(int argc, char** argv) {
  using namespace netvigil::agent;  // NOLINT: a benchmark's main.
  if (argc >= 2 && std::string(argv[1]) == "snapshot") {
    return Snapshot(argc, argv);
  }
  if (argc >= 2 && std::string(argv[1]) == "hold") return Hold(argc, argv);
  if (argc >= 3 && std::string(argv[1]) == "bare") {
    return Bare(std::max(1, std::atoi(argv[2])), argc > 3 ? argv[3] : "");
  }
  if (argc >= 2 && std::string(argv[1]) == "run") {
    std::vector<int> levels = {10000, 25000, 50000};
    int files = 100000;
    int reps = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
      std::string flag = argv[i];
      if (flag == "--sockets") levels = Levels(argv[i + 1]);
      if (flag == "--files") files = std::atoi(argv[i + 1]);
      if (flag == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = RunAll(levels, files, reps);
    KillHolders();
    return rc;
  }
  std::fprintf(stderr,
               "usage: %s run [--sockets 10000,25000,50000] [--files 100000] "
               "[--reps 3] | snapshot sockets|files DIR|none [--print] | bare "
               "THREADS [DIR]\n",
               argv[0]);
  return 2;
}
