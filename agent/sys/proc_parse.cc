#include "agent/sys/proc_parse.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace netvigil::agent {
namespace {

constexpr absl::string_view kDeletedSuffix = " (deleted)";

// The value after "KEY:" on its own line of a "Key:\tvalue" file.
std::optional<absl::string_view> FindField(absl::string_view text,
                                           absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, key) && absl::ConsumePrefix(&line, ":")) {
      return absl::StripAsciiWhitespace(line);
    }
  }
  return std::nullopt;
}

// The kernel writes the name in status with a newline as `\n` and a
// backslash as `\\` (fs/proc/array.c); undone here, so the name is the
// bytes the process set and is escaped once, by the sinks, not twice.
std::string StatusNameBytes(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() &&
        (s[i + 1] == 'n' || s[i + 1] == '\\')) {
      out.push_back(s[++i] == 'n' ? '\n' : '\\');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Skips one whitespace-separated field and the whitespace after it.
void SkipField(absl::string_view* s) {
  size_t end = s->find_first_of(" \t");
  if (end == absl::string_view::npos) {
    *s = absl::string_view();
    return;
  }
  s->remove_prefix(end);
  size_t next = s->find_first_not_of(" \t");
  if (next == absl::string_view::npos) next = s->size();
  s->remove_prefix(next);
}

}  // namespace

absl::StatusOr<uint32_t> ParseStatusUid(absl::string_view status) {
  std::optional<absl::string_view> uids = FindField(status, "Uid");
  if (!uids) return absl::InvalidArgumentError("status has no Uid: line");
  absl::string_view real = uids->substr(0, uids->find_first_of(" \t"));
  uint32_t uid;
  if (!absl::SimpleAtoi(real, &uid)) {
    return absl::InvalidArgumentError("status has a malformed Uid: line");
  }
  return uid;
}

absl::StatusOr<std::string> ParseFdinfoMode(absl::string_view fdinfo) {
  std::optional<absl::string_view> flags = FindField(fdinfo, "flags");
  if (!flags) return absl::InvalidArgumentError("fdinfo has no flags: line");
  uint32_t value = 0;
  for (char c : *flags) {
    if (c < '0' || c > '7') {
      return absl::InvalidArgumentError("fdinfo flags: is not octal");
    }
    value = value * 8 + static_cast<uint32_t>(c - '0');
  }
  switch (value & O_ACCMODE) {
    case O_RDONLY:
      return std::string("r");
    case O_WRONLY:
      return std::string("w");
    default:
      return std::string("u");
  }
}

char ModeFromFdLinkPermissions(uint32_t st_mode) {
  const bool r = st_mode & S_IRUSR;
  const bool w = st_mode & S_IWUSR;
  if (r && w) return 'u';
  if (r) return 'r';
  if (w) return 'w';
  return '\0';
}

std::vector<std::string> ParseMapsPaths(absl::string_view maps) {
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(maps, '\n')) {
    // address perms offset dev inode path
    for (int i = 0; i < 5 && !line.empty(); ++i) SkipField(&line);
    if (line.empty() || line[0] != '/') continue;
    // Consecutive mappings of one file are the common case; a full scan for
    // duplicates keeps the list exact for the rare interleaved ones.
    bool seen = false;
    for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
      if (*it == line) {
        seen = true;
        break;
      }
    }
    if (!seen) paths.emplace_back(line);
  }
  return paths;
}

bool StripDeletedSuffix(std::string* path) {
  if (!absl::EndsWith(*path, kDeletedSuffix)) return false;
  path->resize(path->size() - kDeletedSuffix.size());
  return true;
}

std::optional<uint64_t> ParseSocketInode(absl::string_view target) {
  if (!absl::ConsumePrefix(&target, "socket:[") ||
      !absl::ConsumeSuffix(&target, "]")) {
    return std::nullopt;
  }
  uint64_t inode;
  if (!absl::SimpleAtoi(target, &inode)) return std::nullopt;
  return inode;
}

bool PathIsUnder(absl::string_view path, absl::string_view dir) {
  if (dir == "/") return absl::StartsWith(path, "/");
  if (!absl::StartsWith(path, dir)) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

absl::StatusOr<v1::ProcessRef> ReadProcessRef(ProcReader& proc, int pid) {
  v1::ProcessRef ref;
  ref.set_pid(static_cast<uint32_t>(pid));
  NV_ASSIGN_OR_RETURN(std::string status, proc.ReadFile(pid, "status"));
  NV_ASSIGN_OR_RETURN(uint32_t uid, ParseStatusUid(status));
  ref.set_uid(uid);
  if (std::optional<absl::string_view> ppid = FindField(status, "PPid")) {
    uint32_t parent = 0;
    if (absl::SimpleAtoi(*ppid, &parent)) ref.set_ppid(parent);
  }
  // comm is also the status "Name:" line; status saves a read.
  // A name (prctl PR_SET_NAME) and a path are any bytes; the proto's
  // strings must be UTF-8.
  std::optional<absl::string_view> name = FindField(status, "Name");
  if (name) ref.set_name(ToValidUtf8(StatusNameBytes(*name)));
  absl::StatusOr<std::string> exe = proc.ReadLink(pid, "exe");
  if (exe.ok()) {
    ref.set_exe_deleted(StripDeletedSuffix(&*exe));
    ref.set_exe(ToValidUtf8(*exe));
  }
  return ref;
}

}  // namespace netvigil::agent
