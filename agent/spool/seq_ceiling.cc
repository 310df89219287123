#include "agent/spool/seq_ceiling.h"

#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace netvigil::agent::spool {
namespace {

absl::Status Annotate(const absl::Status& st, absl::string_view step) {
  return absl::Status(
      st.code(), absl::StrCat("spool seq file ", step, ": ", st.message()));
}

}  // namespace

uint64_t SeqCeiling::Load() {
  value_ = 0;
  absl::StatusOr<std::unique_ptr<File>> f =
      fs_.Open(path_, FileSystem::Mode::kRead);
  if (!f.ok()) {
    if (!absl::IsNotFound(f.status())) {
      spdlog::warn("event=spool_seq_file_unreadable path={} error=\"{}\"",
                   path_, std::string(f.status().message()));
    }
    return 0;
  }
  char buf[64];
  absl::StatusOr<size_t> n = (*f)->Read(0, buf, sizeof(buf) - 1);
  uint64_t v = 0;
  if (!n.ok() || *n == 0 ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, *n)),
                        &v)) {
    spdlog::warn("event=spool_seq_file_unreadable path={}", path_);
    return 0;
  }
  value_ = v;
  return v;
}

absl::Status SeqCeiling::Ensure(uint64_t next_seq) {
  if (next_seq <= value_) return absl::OkStatus();
  const uint64_t target = next_seq + kStep;
  NV_RETURN_IF_ERROR(Write(target));
  value_ = target;
  return absl::OkStatus();
}

absl::Status SeqCeiling::Write(uint64_t value) {
  const std::string tmp = path_ + ".tmp";
  const std::string text = absl::StrCat(value, "\n");
  absl::Status st;
  {
    absl::StatusOr<std::unique_ptr<File>> f =
        fs_.Open(tmp, FileSystem::Mode::kCreateTruncate);
    if (!f.ok()) return Annotate(f.status(), "open");
    st = (*f)->Write(0, text);
    if (!st.ok()) {
      st = Annotate(st, "write");
    } else if (absl::Status s = (*f)->Sync(); !s.ok()) {
      st = Annotate(s, "fsync");
    }
  }
  if (st.ok()) {
    if (absl::Status s = fs_.Rename(tmp, path_); !s.ok()) {
      st = Annotate(s, "rename");
    }
  }
  if (!st.ok()) {
    fs_.Unlink(tmp).IgnoreError();
    return st;
  }
  // The rename is durable only once the folder is: a crash before that may
  // bring back the old value, which is why the ceiling is a step ahead.
  if (absl::Status s = fs_.SyncDir(DirName(path_)); !s.ok()) {
    return Annotate(s, "folder fsync");
  }
  return absl::OkStatus();
}

}  // namespace netvigil::agent::spool
