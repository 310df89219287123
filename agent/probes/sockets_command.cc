#include "agent/probes/sockets_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/probes/socket_probe.h"
#include "common/report/sockets_table.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/util/json_util.h"

namespace netvigil::agent {

absl::Status PrintProbeSnapshot(absl::string_view command,
                                const absl::Status& status,
                                const google::protobuf::Message& snapshot,
                                bool json,
                                absl::FunctionRef<std::string()> table) {
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("netvigil-agent probe ", command, ": ",
                                     status.ToString()));
  }
  if (!json) {
    std::cout << table();
    return absl::OkStatus();
  }
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  auto st =
      google::protobuf::util::MessageToJsonString(snapshot, &out, options);
  if (!st.ok()) {
    return absl::InternalError(
        absl::StrCat("netvigil-agent probe ", command, ": ", st.ToString()));
  }
  std::cout << out;
  return absl::OkStatus();
}

void RegisterSocketsProbeCommand(CLI::App& probe, absl::Status* outcome) {
  CLI::App* cmd = probe.add_subcommand(
      "sockets",
      "List TCP and UDP sockets with their processes, like ss -tanup");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print the snapshot as proto3 JSON");
  cmd->callback([json, outcome] {
    // On an arena: a large snapshot costs less memory and time.
    google::protobuf::Arena arena;
    auto* snap =
        google::protobuf::Arena::CreateMessage<v1::SocketSnapshot>(&arena);
    const absl::Status st = SocketProbe::CreateReal()->Collect(snap);
    *outcome = PrintProbeSnapshot("sockets", st, *snap, *json, [&] {
      return report::FormatSocketsTable(*snap);
    });
  });
}

}  // namespace netvigil::agent
