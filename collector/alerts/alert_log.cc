#include "collector/alerts/alert_log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

using google::protobuf::util::TimeUtil;

std::string Lower(absl::string_view prefix, const std::string& enum_name) {
  std::string s = enum_name;
  if (absl::StartsWith(s, prefix)) s = s.substr(prefix.size());
  return absl::AsciiStrToLower(s);
}

}  // namespace

// The one escaping (common/escape.h) with its key=value quoting: every
// agent-controlled value (subject, summary, hosts, even kind and ip) goes
// through it, so no value can hold a line break, a terminal control or an
// unescaped quote.
std::string AlertLogValue(const std::string& v) { return LogValue(v); }

std::string FormatAlertLogLine(const v1::AlertEvent& event) {
  const v1::Alert& a = event.alert();
  const absl::Time at = FromProtoTime(event.at());
  const std::string type =
      Lower("TYPE_", v1::AlertEvent::Type_Name(event.type()));
  const std::string ip = a.remote_address().empty() ? "-" : a.remote_address();
  std::vector<std::string> hosts(a.hosts().begin(), a.hosts().end());
  return absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone()),
      " netvigil[alert]: event=", type, " id=", a.id(),
      " kind=", AlertLogValue(a.kind()),
      " severity=", Lower("SEVERITY_", v1::Severity_Name(a.severity())),
      " scope=", Lower("ALERT_SCOPE_", v1::AlertScope_Name(a.scope())),
      " ip=", AlertLogValue(ip),
      " hosts=", AlertLogValue(hosts.empty() ? "-" : absl::StrJoin(hosts, ",")),
      " subject=", AlertLogValue(a.subject()),
      " summary=", AlertLogValue(a.summary()), "\n");
}

AlertLog::AlertLog(std::string path) : path_(std::move(path)) {}

AlertLog::~AlertLog() {
  absl::MutexLock l(&mu_);
  if (fd_ >= 0) close(fd_);
}

absl::Status AlertLog::OpenLocked() {
  int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open alert log ", path_, ": ", strerror(errno)));
  }
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  return absl::OkStatus();
}

absl::Status AlertLog::Open() {
  absl::MutexLock l(&mu_);
  return OpenLocked();
}

absl::Status AlertLog::Reopen() {
  absl::MutexLock l(&mu_);
  absl::Status s = OpenLocked();
  spdlog::info("event=alert_log_reopen path={} ok={}", path_, s.ok());
  return s;
}

absl::Status AlertLog::Write(const v1::AlertEvent& event) {
  const std::string line = FormatAlertLogLine(event);
  absl::MutexLock l(&mu_);
  if (fd_ < 0) {
    absl::Status s = OpenLocked();
    if (!s.ok()) {
      ++failed_;
      return s;
    }
  }
  ssize_t n;
  do {
    n = write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(line.size())) {
    ++lines_;
    return absl::OkStatus();
  }
  ++failed_;
  const int err = n < 0 ? errno : ENOSPC;
  if (n > 0) {
    // Best effort: end the torn line so that the next one is whole.
    (void)!write(fd_, "\n", 1);
  }
  return absl::UnavailableError(absl::StrCat("alert log ", path_, ": wrote ",
                                             n < 0 ? 0 : n, " of ", line.size(),
                                             " bytes: ", strerror(err)));
}

uint64_t AlertLog::lines_written() {
  absl::MutexLock l(&mu_);
  return lines_;
}

uint64_t AlertLog::failed_writes() {
  absl::MutexLock l(&mu_);
  return failed_;
}

}  // namespace netvigil::collector
