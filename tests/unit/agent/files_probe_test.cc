// Tests of FileProbe over recorded /proc trees.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/probes/file_probe.h"
#include "common/report/files_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_proc_reader.h"
#include "tests/testing/fixtures.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::FakeProcReader;
using ::netvigil::testing::IsOk;
using ::netvigil::testing::ReadFixture;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// (path, kind, fd, mode, deleted) of each entry.
using Row = std::tuple<std::string, v1::FileAccessKind, int, std::string, bool>;
std::vector<Row> Rows(const v1::FileSnapshot& snap) {
  std::vector<Row> rows;
  for (const v1::FileEntry& e : snap.entries()) {
    rows.emplace_back(e.path(), e.kind(), e.fd(), e.mode(), e.deleted());
  }
  return rows;
}

TEST(FileProbeTest, RecordedProcessUnderWatchedFolder) {
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  FileProbe probe(proc);
  absl::StatusOr<v1::FileSnapshot> snap = probe.Collect({"/tmp/nvfix/"});
  ASSERT_THAT(snap, IsOk());
  EXPECT_THAT(snap->watched_dirs(), UnorderedElementsAre("/tmp/nvfix"));
  EXPECT_THAT(
      Rows(*snap),
      UnorderedElementsAre(
          Row{"/tmp/nvfix/read.txt", v1::FILE_ACCESS_FD, 9, "r", false},
          Row{"/tmp/nvfix/write.log", v1::FILE_ACCESS_FD, 11, "w", false},
          Row{"/tmp/nvfix/both.db", v1::FILE_ACCESS_FD, 12, "u", false},
          Row{"/tmp/nvfix/gone.tmp", v1::FILE_ACCESS_FD, 13, "u", true},
          Row{"/tmp/nvfix", v1::FILE_ACCESS_CWD, -1, "", false},
          Row{"/tmp/nvfix/mapped.bin", v1::FILE_ACCESS_MMAP, -1, "", false}));
  for (const v1::FileEntry& e : snap->entries()) {
    EXPECT_EQ(e.process().pid(), 14295u);
    EXPECT_EQ(e.process().name(), "recorder");
  }
  EXPECT_EQ(snap->skipped_processes(), 0u);
  EXPECT_EQ(snap->unreadable_entries(), 0u);
}

// Out of file descriptors (EMFILE) while reading a process: its files would
// read as closed (`prlimit --nofile=4 netvigil-agent probe files` gave an
// empty snapshot, exit 0), which the history stores as "gone". The probe
// fails, naming why.
TEST(FileProbeTest, OutOfDescriptorsFailsTheSnapshotInsteadOfMissingFiles) {
  const std::string tree = ReadFixture("proc/sockets_and_files.txt");
  for (const std::string& broken :
       {absl::StrCat(tree, "@error 14295/fd EMFILE\n"),
        absl::StrReplaceAll(tree,
                            {{"@file 14295/maps", "@error 14295/maps EMFILE"}}),
        absl::StrReplaceAll(
            tree, {{"@file 14295/status", "@error 14295/status EMFILE"}})}) {
    FakeProcReader proc(broken);
    EXPECT_THAT(FileProbe(proc).Collect({"/tmp/nvfix"}),
                StatusIs(absl::StatusCode::kResourceExhausted, "14295/"));
  }
}

// Found by tests/fuzz/proc_fuzz.cc: a file, process or executable name that
// is not UTF-8 made a snapshot the collector could not parse, so the agent
// resent it forever. Such bytes are now written \xNN.
TEST(FileProbeTest, NamesThatAreNotUtf8AreEscaped) {
  FakeProcReader proc(
      "@file 7/status\nName:\tbad\xff\nUid:\t1000\t1000\t1000\t1000\n"
      "@link 7/exe /home/zo\xeb/bin/tool\n"
      "@link 7/cwd /home/zo\xeb\n"
      "@link 7/fd/3 /home/zo\xeb/caf\xe9.txt\n"
      "@file 7/fdinfo/3\nflags:\t0100000\n");
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe(proc).Collect({"/home"});
  ASSERT_THAT(snap, IsOk());
  EXPECT_THAT(
      Rows(*snap),
      UnorderedElementsAre(
          Row{"/home/zo\\xEB/caf\\xE9.txt", v1::FILE_ACCESS_FD, 3, "r", false},
          Row{"/home/zo\\xEB", v1::FILE_ACCESS_CWD, -1, "", false},
          Row{"/home/zo\\xEB/bin/tool", v1::FILE_ACCESS_EXE, -1, "", false}));
  ASSERT_GT(snap->entries_size(), 0);
  EXPECT_EQ(snap->entries(0).process().name(), "bad\\xFF");
  EXPECT_EQ(snap->entries(0).process().exe(), "/home/zo\\xEB/bin/tool");
  v1::FileSnapshot back;
  EXPECT_TRUE(back.ParseFromString(snap->SerializeAsString()));
}

TEST(FileProbeTest, NothingOutsideTheWatchedFolders) {
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  absl::StatusOr<v1::FileSnapshot> snap =
      FileProbe(proc).Collect({"/home", "/tmp/nvfi"});
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(snap->entries_size(), 0);
}

TEST(FileProbeTest, DeletedExeAndMapsVanishedAndHiddenProcesses) {
  FakeProcReader proc(ReadFixture("proc/vanishing.txt"));
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe(proc).Collect({"/home"});
  ASSERT_THAT(snap, IsOk());
  // The deleted executable is reported once, as exe, not again as a mapping.
  EXPECT_THAT(
      Rows(*snap),
      UnorderedElementsAre(
          Row{"/home/alice/notes.txt", v1::FILE_ACCESS_FD, 3, "u", false},
          Row{"/home/alice", v1::FILE_ACCESS_CWD, -1, "", false},
          Row{"/home/alice/bin/editor", v1::FILE_ACCESS_EXE, -1, "", true},
          Row{"/home/alice/cache.bin", v1::FILE_ACCESS_MMAP, -1, "", true}));
  for (const v1::FileEntry& e : snap->entries()) {
    EXPECT_EQ(e.process().pid(), 100u);
    EXPECT_TRUE(e.process().exe_deleted());
  }
  // 200 gone before its fds, 400 gone after them.
  EXPECT_EQ(snap->skipped_processes(), 2u);
  // 100's fd 5; 300's fd table and exe; the mode of 400's fd 3 (it exited).
  EXPECT_EQ(snap->unreadable_entries(), 4u);
}

TEST(FileProbeTest, RelativeFolderIsRejected) {
  FakeProcReader proc("");
  EXPECT_THAT(FileProbe(proc).Collect({"home"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Folders as a FolderResolver map gives them; anything else does not exist.
class FakeFolders final : public FolderResolver {
 public:
  explicit FakeFolders(std::map<std::string, std::string> real)
      : real_(std::move(real)) {}
  absl::StatusOr<std::string> Resolve(const std::string& dir) override {
    auto it = real_.find(dir);
    if (it == real_.end()) {
      return absl::NotFoundError("watched folder does not exist: " + dir);
    }
    return it->second;
  }

 private:
  std::map<std::string, std::string> real_;
};

TEST(FileProbeTest, SymlinkedFolderIsWatchedAsItsRealPath) {
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  FakeFolders folders(
      std::map<std::string, std::string>{{"/data/link", "/tmp/nvfix"}});
  absl::StatusOr<v1::FileSnapshot> snap =
      FileProbe(proc, folders).Collect({"/data/link/"});
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(snap->error(), "");
  EXPECT_THAT(snap->watched_dirs(), ElementsAre("/tmp/nvfix"));
  EXPECT_EQ(snap->entries_size(), 6);
}

TEST(FileProbeTest, MissingFolderIsAnErrorNotAnEmptySnapshot) {
  FakeProcReader proc(ReadFixture("proc/sockets_and_files.txt"));
  FakeFolders folders(
      std::map<std::string, std::string>{{"/tmp/nvfix", "/tmp/nvfix"}});
  absl::StatusOr<v1::FileSnapshot> snap =
      FileProbe(proc, folders).Collect({"/srv/gone", "/tmp/nvfix", "/x/y"});
  ASSERT_THAT(snap, IsOk());
  EXPECT_EQ(snap->error(),
            "watched folder does not exist: /srv/gone; watched folder does "
            "not exist: /x/y");
  // The folder that is there is still watched.
  EXPECT_THAT(snap->watched_dirs(), ElementsAre("/tmp/nvfix"));
  EXPECT_EQ(snap->entries_size(), 6);

  absl::StatusOr<v1::FileSnapshot> none =
      FileProbe(proc, folders).Collect({"/srv/gone"});
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->error(), "watched folder does not exist: /srv/gone");
  EXPECT_EQ(none->watched_dirs_size(), 0);
  EXPECT_EQ(none->entries_size(), 0);
}

TEST(FileProbeTest, RealResolverFollowsSymlinksAndNamesWhatFails) {
  char tmpl[] = "/tmp/nvfolders.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string d = tmpl;
  const std::string real = d + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(symlink(real.c_str(), (d + "/link").c_str()), 0);
  ASSERT_EQ(symlink((d + "/gone").c_str(), (d + "/dangling").c_str()), 0);
  { std::ofstream(d + "/file") << "x"; }
  std::unique_ptr<FolderResolver> folders = CreateRealFolderResolver();
  absl::StatusOr<std::string> link = folders->Resolve(d + "/link");
  ASSERT_THAT(link, IsOk());
  EXPECT_EQ(*link, real);
  absl::StatusOr<std::string> dots = folders->Resolve(d + "/link/../link");
  ASSERT_THAT(dots, IsOk());
  EXPECT_EQ(*dots, real);
  EXPECT_THAT(
      folders->Resolve(d + "/nope"),
      StatusIs(absl::StatusCode::kNotFound, "does not exist: " + d + "/nope"));
  EXPECT_THAT(folders->Resolve(d + "/dangling"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(folders->Resolve(d + "/file"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "not a folder: " + d + "/file"));
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
}

// Found by trying it: a process running a deleted executable outside the
// watched folder showed no mark at all.
TEST(FileProbeTest, TableMarksAProcessWhoseExecutableWasDeleted) {
  FakeProcReader proc(ReadFixture("proc/vanishing.txt"));
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe(proc).Collect({"/home"});
  ASSERT_THAT(snap, IsOk());
  std::string table = report::FormatFilesTable(*snap);
  EXPECT_THAT(table, HasSubstr("3u /home/alice/notes.txt [exe "
                               "/home/alice/bin/editor (deleted)]\n"));
  EXPECT_THAT(table, HasSubstr("cwd /home/alice [exe /home/alice/bin/editor "
                               "(deleted)]\n"));
  // Its own txt row says it once.
  EXPECT_THAT(table, HasSubstr("txt /home/alice/bin/editor (deleted)\n"));
}

TEST(FileProbeTest, TableLooksLikeLsof) {
  FakeProcReader proc(ReadFixture("proc/vanishing.txt"));
  absl::StatusOr<v1::FileSnapshot> snap = FileProbe(proc).Collect({"/home"});
  ASSERT_THAT(snap, IsOk());
  std::string table = report::FormatFilesTable(*snap);
  EXPECT_THAT(table, HasSubstr("COMMAND"));
  EXPECT_THAT(table, HasSubstr("3u /home/alice/notes.txt"));
  EXPECT_THAT(table, HasSubstr("cwd /home/alice"));
  EXPECT_THAT(table, HasSubstr("txt /home/alice/bin/editor (deleted)"));
  EXPECT_THAT(table, HasSubstr("DEL /home/alice/cache.bin (deleted)"));
}

}  // namespace
}  // namespace netvigil::agent
