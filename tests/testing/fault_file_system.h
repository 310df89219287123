// An in-memory spool::FileSystem for tests that fills up, fails an fsync or
// a rename on purpose, records the writes of a commit so they can be replayed
// torn at any byte, and loses what was never fsynced when it "crashes" (in
// the manner of LevelDB's fault-injection test Env; our own code).
// Thread-safe (one mutex); a File must not outlive its FileSystem.
//
// The durability model: a file's bytes are durable once the file is fsynced;
// a file's name (its creation, a rename onto it, its removal) once its folder
// is fsynced. Crash() drops everything else, as a power cut would.
#ifndef NETVIGIL_TESTS_TESTING_FAULT_FILE_SYSTEM_H_
#define NETVIGIL_TESTS_TESTING_FAULT_FILE_SYSTEM_H_

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/spool/file_system.h"

namespace netvigil::testing {

class FaultFileSystem final : public agent::spool::FileSystem {
 public:
  using File = agent::spool::File;
  using FileLock = agent::spool::FileLock;

  // The calls a fault can be armed on.
  enum class Op { kWrite, kSync, kRename, kSyncDir, kOpen, kTruncate };

  // One write as it reached the file system, for torn-write replays.
  struct WriteRecord {
    std::string path;
    uint64_t offset;
    std::string data;
  };

  FaultFileSystem() = default;
  FaultFileSystem(const FaultFileSystem&) = delete;
  FaultFileSystem& operator=(const FaultFileSystem&) = delete;

  // A deep copy of the files (live and durable state); no faults, no
  // records, no locks.
  std::unique_ptr<FaultFileSystem> Clone() const {
    auto copy = std::make_unique<FaultFileSystem>();
    absl::MutexLock l(&mu_);
    absl::MutexLock c(&copy->mu_);
    std::map<const Node*, std::shared_ptr<Node>> done;
    auto dup = [&](const std::shared_ptr<Node>& n) {
      auto& d = done[n.get()];
      if (d == nullptr) d = std::make_shared<Node>(*n);
      return d;
    };
    for (const auto& [name, node] : live_) copy->live_[name] = dup(node);
    for (const auto& [name, node] : durable_) copy->durable_[name] = dup(node);
    return copy;
  }

  // Fails the `nth` (0-based, counted from now) call of `op` on a path
  // containing `path_part` with `error`; `sticky`: that call and every later
  // one fail until Disarm (a disk that stays full). A failed write writes
  // `torn_bytes` of its data first (at most all of it).
  void Arm(Op op, int nth, absl::Status error, std::string path_part = "",
           bool sticky = false, size_t torn_bytes = 0) {
    absl::MutexLock l(&mu_);
    faults_.push_back(Fault{op, nth, std::move(error), std::move(path_part),
                            sticky, torn_bytes});
  }
  void Disarm() {
    absl::MutexLock l(&mu_);
    faults_.clear();
  }
  // Calls of `op` since the last ResetCounts (failed ones included).
  int Count(Op op) const {
    absl::MutexLock l(&mu_);
    auto it = counts_.find(op);
    return it == counts_.end() ? 0 : it->second;
  }
  void ResetCounts() {
    absl::MutexLock l(&mu_);
    counts_.clear();
  }

  // Records every successful write from now until StopRecording.
  void StartRecording() {
    absl::MutexLock l(&mu_);
    recording_ = true;
    records_.clear();
  }
  std::vector<WriteRecord> StopRecording() {
    absl::MutexLock l(&mu_);
    recording_ = false;
    return std::move(records_);
  }
  // Applies `records` in order, stopping after `bytes` bytes of them (the
  // last one cut there), as a write torn by a crash leaves the files.
  void ApplyPrefix(const std::vector<WriteRecord>& records, uint64_t bytes) {
    absl::MutexLock l(&mu_);
    for (const WriteRecord& r : records) {
      if (bytes == 0) break;
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(bytes, r.data.size()));
      auto it = live_.find(r.path);
      if (it == live_.end()) break;
      WriteAt(*it->second, r.offset, absl::string_view(r.data).substr(0, n));
      bytes -= n;
    }
  }

  // A power cut: every file goes back to what was last fsynced, every
  // folder to what was last fsynced. Open Files keep working on the new
  // state (a test reopens the spool anyway).
  void Crash() {
    absl::MutexLock l(&mu_);
    live_ = durable_;
    for (auto& [name, node] : live_) node->data = node->synced;
    locks_.clear();
  }

  // The live bytes of `path` (empty when missing); for assertions.
  std::string Contents(const std::string& path) const {
    absl::MutexLock l(&mu_);
    auto it = live_.find(path);
    return it == live_.end() ? std::string() : it->second->data;
  }
  bool Has(const std::string& path) const {
    absl::MutexLock l(&mu_);
    return live_.count(path) != 0;
  }
  // Replaces `path` with `data`, durable at once; for fixtures and damage.
  void Put(const std::string& path, std::string data) {
    absl::MutexLock l(&mu_);
    auto node = std::make_shared<Node>();
    node->data = data;
    node->synced = std::move(data);
    live_[path] = node;
    durable_[path] = node;
  }
  // Copies a real file in (durable); false when it cannot be read.
  bool PutFromDisk(const std::string& path, const std::string& disk_path) {
    std::ifstream in(disk_path, std::ios::binary);
    if (!in) return false;
    Put(path, std::string(std::istreambuf_iterator<char>(in), {}));
    return true;
  }

  // FileSystem.
  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             Mode mode) override {
    absl::MutexLock l(&mu_);
    if (const Fault* f = Hit(Op::kOpen, path)) return Named(*f, "open", path);
    auto it = live_.find(path);
    if (it == live_.end()) {
      if (mode == Mode::kRead || mode == Mode::kWrite) {
        return absl::NotFoundError(
            absl::StrCat("open ", path, ": no such file"));
      }
      it = live_.emplace(path, std::make_shared<Node>()).first;
    } else if (mode == Mode::kCreateTruncate) {
      it->second->data.clear();
    }
    return std::unique_ptr<File>(new MemFile(this, path, it->second));
  }

  absl::StatusOr<bool> Exists(const std::string& path) override {
    absl::MutexLock l(&mu_);
    return live_.count(path) != 0;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    absl::MutexLock l(&mu_);
    if (const Fault* f = Hit(Op::kRename, from)) {
      return Named(*f, "rename", absl::StrCat(from, " to ", to));
    }
    auto it = live_.find(from);
    if (it == live_.end()) {
      return absl::NotFoundError(
          absl::StrCat("rename ", from, ": no such file"));
    }
    live_[to] = it->second;
    live_.erase(from);
    return absl::OkStatus();
  }

  absl::Status Unlink(const std::string& path) override {
    absl::MutexLock l(&mu_);
    if (live_.erase(path) == 0) {
      return absl::NotFoundError(
          absl::StrCat("unlink ", path, ": no such file"));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    absl::MutexLock l(&mu_);
    if (const Fault* f = Hit(Op::kSyncDir, dir)) {
      return Named(*f, "fsync folder", dir);
    }
    const std::string prefix = dir + "/";
    auto in_dir = [&](const std::string& p) {
      return absl::StartsWith(p, prefix) &&
             p.find('/', prefix.size()) == std::string::npos;
    };
    for (auto it = durable_.begin(); it != durable_.end();) {
      it = in_dir(it->first) ? durable_.erase(it) : std::next(it);
    }
    for (const auto& [name, node] : live_) {
      if (in_dir(name)) durable_[name] = node;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> List(
      const std::string& dir) override {
    absl::MutexLock l(&mu_);
    std::vector<std::string> names;
    const std::string prefix = dir + "/";
    for (const auto& [name, node] : live_) {
      if (absl::StartsWith(name, prefix) &&
          name.find('/', prefix.size()) == std::string::npos) {
        names.push_back(name.substr(prefix.size()));
      }
    }
    return names;
  }

  absl::StatusOr<std::unique_ptr<FileLock>> Lock(
      const std::string& path) override {
    absl::MutexLock l(&mu_);
    if (live_.count(path) == 0) {
      return absl::NotFoundError(absl::StrCat("lock ", path, ": no such file"));
    }
    if (!locks_.insert(path).second) {
      return absl::UnavailableError(absl::StrCat("lock ", path, ": held"));
    }
    return std::unique_ptr<FileLock>(new MemLock(this, path));
  }

 private:
  struct Node {
    std::string data;
    std::string synced;
  };
  struct Fault {
    Op op;
    int nth;
    absl::Status error;
    std::string path_part;
    bool sticky;
    size_t torn_bytes;
  };

  // The armed error, worded as the POSIX file system words its own.
  static absl::Status Named(const Fault& f, absl::string_view call,
                            absl::string_view path) {
    return absl::Status(f.error.code(),
                        absl::StrCat(call, " ", path, ": ", f.error.message()));
  }

  // Counts a call of `op` on `path`; the fault it trips, if any.
  const Fault* Hit(Op op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++counts_[op];
    for (Fault& f : faults_) {
      if (f.op != op || f.nth < 0 || !absl::StrContains(path, f.path_part)) {
        continue;
      }
      if (f.nth > 0) {
        --f.nth;
        continue;
      }
      if (!f.sticky) f.nth = -1;  // spent
      return &f;
    }
    return nullptr;
  }
  static void WriteAt(Node& n, uint64_t offset, absl::string_view data) {
    if (n.data.size() < offset + data.size())
      n.data.resize(offset + data.size());
    memcpy(n.data.data() + offset, data.data(), data.size());
  }

  class MemFile final : public File {
   public:
    MemFile(FaultFileSystem* fs, std::string path, std::shared_ptr<Node> node)
        : fs_(fs), path_(std::move(path)), node_(std::move(node)) {}

    absl::StatusOr<size_t> Read(uint64_t offset, char* buf, size_t n) override {
      absl::MutexLock l(&fs_->mu_);
      const std::string& d = node_->data;
      if (offset >= d.size()) return 0;
      const size_t k = std::min<uint64_t>(n, d.size() - offset);
      memcpy(buf, d.data() + offset, k);
      return k;
    }
    absl::Status Write(uint64_t offset, absl::string_view data) override {
      return fs_->DoWrite(path_, *node_, offset, data);
    }
    absl::Status Truncate(uint64_t size) override {
      absl::MutexLock l(&fs_->mu_);
      if (const Fault* f = fs_->Hit(Op::kTruncate, path_)) {
        return Named(*f, "truncate", path_);
      }
      node_->data.resize(size);
      return absl::OkStatus();
    }
    absl::Status Sync() override {
      absl::MutexLock l(&fs_->mu_);
      if (const Fault* f = fs_->Hit(Op::kSync, path_)) {
        return Named(*f, "fsync", path_);
      }
      node_->synced = node_->data;
      return absl::OkStatus();
    }
    absl::StatusOr<uint64_t> Size() override {
      absl::MutexLock l(&fs_->mu_);
      return node_->data.size();
    }

   private:
    FaultFileSystem* fs_;
    std::string path_;
    std::shared_ptr<Node> node_;
  };

  class MemLock final : public FileLock {
   public:
    MemLock(FaultFileSystem* fs, std::string path)
        : fs_(fs), path_(std::move(path)) {}
    ~MemLock() override {
      absl::MutexLock l(&fs_->mu_);
      fs_->locks_.erase(path_);
    }

   private:
    FaultFileSystem* fs_;
    std::string path_;
  };

  absl::Status DoWrite(const std::string& path, Node& node, uint64_t offset,
                       absl::string_view data) {
    absl::MutexLock l(&mu_);
    if (const Fault* f = Hit(Op::kWrite, path)) {
      WriteAt(node, offset,
              data.substr(0, std::min(f->torn_bytes, data.size())));
      return Named(*f, "write", path);
    }
    WriteAt(node, offset, data);
    if (recording_) records_.push_back({path, offset, std::string(data)});
    return absl::OkStatus();
  }

  mutable absl::Mutex mu_;
  // Names as the running program sees them, and as a crash would leave them.
  std::map<std::string, std::shared_ptr<Node>> live_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Node>> durable_ ABSL_GUARDED_BY(mu_);
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  std::map<Op, int> counts_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> locks_ ABSL_GUARDED_BY(mu_);
  bool recording_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<WriteRecord> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAULT_FILE_SYSTEM_H_
