// The `notify:` section of the collector config (README "Notifications"):
// the channels alerts are sent to and the sender's timings. Parsed strictly
// like the rest of the file (common/yaml_fields.h). Secrets are named here
// (a file or an environment variable), never held: ReadNotifySecret reads
// one when a channel is built. Thread-compatible: values.
#ifndef NETVIGIL_COMMON_NOTIFY_CONFIG_H_
#define NETVIGIL_COMMON_NOTIFY_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netvigil/v1/alerts.pb.h"

namespace netvigil {

class YamlFields;

// Where a secret is: `secret_file:` (its contents, one trailing newline
// dropped) or `secret_env:` (an environment variable). Neither: none.
struct NotifySecret {
  std::string file;
  std::string env;
  bool given() const { return !file.empty() || !env.empty(); }
};

// The secret's value. The error names the file or the variable, never
// the value.
absl::StatusOr<std::string> ReadNotifySecret(const NotifySecret& secret);

struct NotifyChannelConfig {
  std::string name;
  std::string type;                // webhook, command, sendmail
  std::vector<std::string> kinds;  // empty: every kind
  v1::Severity min_severity = v1::SEVERITY_INFO;
  absl::Duration timeout = absl::Seconds(10);

  // webhook
  std::string url;          // https://, or http:// to a loopback address only
  std::string ca_file;      // empty: the system's trust store
  std::string header_name;  // optional extra header; its value is a secret
  NotifySecret header_value;
  std::string hmac_header = "X-Netvigil-Signature";
  NotifySecret hmac_secret;  // given: HMAC-SHA256 of the body, hex

  // command: argv, no shell
  std::vector<std::string> argv;

  // sendmail
  std::string sendmail_path = "/usr/sbin/sendmail";
  std::vector<std::string> to;
  std::string from = "netvigil";
};

struct NotifyConfig {
  std::vector<NotifyChannelConfig> channels;
  // At most one message per alert per channel this often; events of one
  // alert in between fold into the latest.
  absl::Duration min_interval = absl::Minutes(5);
  // More alerts opening in one send round than this: one digest message.
  uint32_t digest_after = 10;
  // A message not accepted by then is given up (state expired, logged).
  absl::Duration expire_after = absl::Hours(24);
  // A channel failing this long raises a notify_failed alert.
  absl::Duration fail_alert_after = absl::Minutes(10);
  absl::Duration retry_initial = absl::Seconds(10);
  absl::Duration retry_max = absl::Minutes(10);
  // How long after an event its message first becomes due, so a burst of
  // alerts lands in one round.
  absl::Duration gather = absl::Seconds(2);
  // How long a claimed message is the claiming sender's: another sender (or
  // this one restarted after a crash) sends it only after the lease.
  // Zero: a minute plus three timeouts of the slowest channel.
  absl::Duration claim_lease = absl::ZeroDuration();
  // How often the sender looks for due messages.
  absl::Duration poll_interval = absl::Seconds(1);
  // Links in messages: the web dashboard's base URL (empty: the CLI
  // command only).
  std::string web_url;
};

// Reads the `notify:` mapping `f` into `out`. Errors go to f's shared
// status (file, line, field).
void ParseNotifyConfig(YamlFields& f, NotifyConfig* out);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_NOTIFY_CONFIG_H_
