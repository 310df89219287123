// The alert log: one line per alert event, key=value fields in a fixed
// order, for people, scripts and fail2ban (deploy/fail2ban/). Thread-safe.
//
// A line:
//   2023-11-14T22:13:20Z netvigil[alert]: event=opened id=7 kind=new_inbound
//   severity=warning scope=host ip=192.0.2.7 hosts=laptop subject="..."
//   summary="..."
// `ip=` is always the seventh field, before anything a process or a peer can
// influence (subject, summary), and is "-" when the alert has no remote
// address, so a filter anchored on it cannot be fooled by text in a process
// name. Values with spaces, quotes, '=', backslashes or anything not
// printable are quoted "..." and written with common/escape.h's Printable
// (\\ \n \xHH \u{XXXX}, and \" for a quote).
#ifndef NETVIGIL_COLLECTOR_ALERTS_ALERT_LOG_H_
#define NETVIGIL_COLLECTOR_ALERTS_ALERT_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil::collector {

// The line for one event, with its trailing '\n'. Pure.
std::string FormatAlertLogLine(const v1::AlertEvent& event);

// A value as the log writes it (quoted and escaped when needed). Pure.
std::string AlertLogValue(const std::string& v);

class AlertLog {
 public:
  explicit AlertLog(std::string path);
  ~AlertLog();
  AlertLog(const AlertLog&) = delete;
  AlertLog& operator=(const AlertLog&) = delete;

  // Opens (creating, mode 0640) for appending.
  absl::Status Open();
  // Closes and opens the path again: after logrotate moved the file (hook it
  // to SIGHUP or logrotate's postrotate).
  absl::Status Reopen();

  // Appends the event's line with a single write(2) on an O_APPEND fd, so a
  // line is never interleaved with another writer's. A short write (disk
  // full) is finished with '\n' so the next line starts whole, and counted.
  absl::Status Write(const v1::AlertEvent& event);

  uint64_t lines_written();
  uint64_t failed_writes();

 private:
  absl::Status OpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  uint64_t lines_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ALERTS_ALERT_LOG_H_
