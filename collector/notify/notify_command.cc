#include "collector/notify/notify_command.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/notify/notify_channel.h"
#include "collector/notify/notify_message.h"
#include "common/collector_config.h"
#include "common/escape.h"

namespace netvigil::collector {

void RegisterNotifyCommands(CLI::App& app, const std::string* config_path) {
  auto* notify = app.add_subcommand("notify", "notification channels");
  notify->require_subcommand(1);
  auto* test = notify->add_subcommand(
      "test", "send a test message through CHANNEL and print its answer");
  auto channel = std::make_shared<std::string>();
  test->add_option("channel", *channel, "a name from notify.channels")
      ->required();
  test->callback([=] {
    absl::StatusOr<CollectorConfig> c = LoadCollectorConfig(*config_path);
    if (!c.ok()) {
      std::fprintf(stderr, "netvigil-collector: %s\n",
                   std::string(c.status().message()).c_str());
      std::exit(2);
    }
    const NotifyChannelConfig* found = nullptr;
    std::vector<std::string> names;
    for (const NotifyChannelConfig& ch : c->notify.channels) {
      names.push_back(ch.name);
      if (ch.name == *channel) found = &ch;
    }
    if (found == nullptr) {
      std::fprintf(stderr,
                   "netvigil-collector: no channel %s in %s (notify.channels: "
                   "%s)\n",
                   Escape(*channel).c_str(), config_path->c_str(),
                   names.empty() ? "none" : absl::StrJoin(names, ", ").c_str());
      std::exit(2);
    }
    absl::StatusOr<std::unique_ptr<NotifyChannel>> ch = MakeChannel(*found);
    if (!ch.ok()) {
      std::fprintf(stderr, "netvigil-collector: %s\n",
                   std::string(ch.status().message()).c_str());
      std::exit(1);
    }
    const NotifyMessage m = TestMessage(found->name, absl::Now());
    absl::StatusOr<std::string> answer = (*ch)->Send(m);
    if (!answer.ok()) {
      std::printf("channel %s (%s): refused: %s\n", found->name.c_str(),
                  found->type.c_str(),
                  std::string(answer.status().message()).c_str());
      std::exit(1);
    }
    std::printf("channel %s (%s): accepted event_id=%s: %s\n",
                found->name.c_str(), found->type.c_str(), m.event_id.c_str(),
                answer->c_str());
    std::exit(0);
  });
}

}  // namespace netvigil::collector
