// A notification channel: one way of getting a message to a person
// (webhook, command, sendmail; README "Notifications"). Send blocks until the
// channel accepted or refused the message, bounded by the channel's timeout.
// Implementations are thread-compatible: the sender calls one Send at a time.
#ifndef NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_CHANNEL_H_
#define NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "collector/notify/notify_message.h"
#include "common/notify_config.h"

namespace netvigil::collector {

class NotifyChannel {
 public:
  virtual ~NotifyChannel() = default;
  // OK when the channel accepted the message, with what it answered
  // ("HTTP 200: ...", "exit status 0"), escaped, one line. An error says
  // why not, escaped, one line; it never holds a secret.
  virtual absl::StatusOr<std::string> Send(const NotifyMessage& message) = 0;
};

// The channel `config` describes, with its secrets read (an error names the
// secret's file or variable, never its value).
absl::StatusOr<std::unique_ptr<NotifyChannel>> MakeChannel(
    const NotifyChannelConfig& config);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_CHANNEL_H_
